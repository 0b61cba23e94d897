//! `cmsgpack`: MessagePack with lua-cmsgpack's API (as bundled with Redis):
//! `pack(...)` concatenates the encodings of its arguments; `unpack(s)`
//! returns every value; `unpack_one(s [, offset])` and
//! `unpack_limit(s, limit [, offset])` return the next offset (-1 at the
//! end) followed by the values.
//!
//! Tables whose keys are exactly 1..n encode as arrays, others as maps;
//! integral numbers as the smallest integer type, others as float32 when
//! that is exact, float64 otherwise. Nesting deeper than 16 encodes nil.

use mlua::{Lua, MultiValue, Table, Value};

use super::bad_arg;

const MAX_NESTING: usize = 16;

fn err(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(err("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, &mut out, 0)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let s = string_arg(&args, 0, "unpack")?;
            let mut d = Decoder { lua, s: &s, pos: 0 };
            let mut out = MultiValue::new();
            while d.pos < s.len() {
                out.push_back(d.value(0)?);
            }
            Ok(out)
        })?,
    )?;
    t.raw_set("unpack_one", lua.create_function(|lua, args: MultiValue| unpack_limited(lua, &args, Some(1), 1, "unpack_one"))?)?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = match args.get(1) {
                Some(Value::Integer(i)) => *i,
                Some(Value::Number(n)) => *n as i64,
                other => return Err(bad_arg(2, "unpack_limit", "number", other.unwrap_or(&Value::Nil))),
            };
            unpack_limited(lua, &args, (limit > 0).then_some(limit as usize), 2, "unpack_limit")
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

fn string_arg(args: &MultiValue, i: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        other => Err(bad_arg(i + 1, fname, "string", other.unwrap_or(&Value::Nil))),
    }
}

fn unpack_limited(lua: &Lua, args: &MultiValue, limit: Option<usize>, offset_arg: usize, fname: &str) -> mlua::Result<MultiValue> {
    let s = string_arg(args, 0, fname)?;
    let offset = match args.get(offset_arg) {
        Some(Value::Integer(i)) => *i,
        Some(Value::Number(n)) => *n as i64,
        _ => 0,
    };
    if offset < 0 || offset as usize > s.len() {
        return Err(err("Start offset greater than input length for unpack."));
    }
    let mut d = Decoder { lua, s: &s, pos: offset as usize };
    let mut values = MultiValue::new();
    let mut n = 0;
    while d.pos < s.len() && limit.is_none_or(|l| n < l) {
        values.push_back(d.value(0)?);
        n += 1;
    }
    let next = if d.pos >= s.len() { -1 } else { d.pos as i64 };
    values.push_front(Value::Integer(next));
    Ok(values)
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => {
            if n.fract() == 0.0 && *n >= -9.2e18 && *n <= 9.2e18 {
                encode_int(*n as i64, out);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => {
            // Two walks, each holding one pair at a time: a table of many
            // entries would not fit in Lua's stack as values held at once.
            let (mut n, mut max, mut is_array) = (0usize, 0i64, true);
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                n += 1;
                let i = match k {
                    Value::Integer(i) => i,
                    Value::Number(f) if f.fract() == 0.0 => f as i64,
                    _ => {
                        is_array = false;
                        continue;
                    }
                };
                max = max.max(i);
                is_array &= i >= 1;
            }
            let is_array = is_array && max as usize == n;
            if is_array {
                if n < 16 {
                    out.push(0x90 | n as u8);
                } else if n <= 0xffff {
                    out.push(0xdc);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    out.push(0xdd);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
                for i in 1..=n {
                    let item: Value = t.raw_get(i)?;
                    encode(&item, out, depth + 1)?;
                }
            } else {
                if n < 16 {
                    out.push(0x80 | n as u8);
                } else if n <= 0xffff {
                    out.push(0xde);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    out.push(0xdf);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
                for pair in t.pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    encode(&k, out, depth + 1)?;
                    encode(&item, out, depth + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        if i < 128 {
            out.push(i as u8);
        } else if i <= 0xff {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let b = self.s.get(self.pos..self.pos + n).ok_or_else(|| err("Missing bytes in input."))?;
        self.pos += n;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn int(&mut self, n: usize) -> mlua::Result<i64> {
        let u = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((u << shift) as i64) >> shift)
    }

    fn string(&mut self, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(b)?))
    }

    fn array(&mut self, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table_with_capacity(n.min(4096), 0)?;
        for i in 1..=n {
            let v = self.value(depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }

    fn value(&mut self, depth: usize) -> mlua::Result<Value> {
        if depth > 1000 {
            return Err(err("Bad data format in input."));
        }
        let c = self.take(1)?[0];
        Ok(match c {
            0x00..=0x7f => Value::Integer(c as i64),
            0x80..=0x8f => return self.map((c & 0x0f) as usize, depth),
            0x90..=0x9f => return self.array((c & 0x0f) as usize, depth),
            0xa0..=0xbf => return self.string((c & 0x1f) as usize),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                return self.string(n);
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                return self.string(n);
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                return self.string(n);
            }
            0xca => {
                let b = self.take(4)?;
                Value::Number(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
            0xcb => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Number(f64::from_be_bytes(a))
            }
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Integer(self.int(1)?),
            0xd1 => Value::Integer(self.int(2)?),
            0xd2 => Value::Integer(self.int(4)?),
            0xd3 => Value::Integer(self.int(8)?),
            0xdc => {
                let n = self.uint(2)? as usize;
                return self.array(n, depth);
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                return self.array(n, depth);
            }
            0xde => {
                let n = self.uint(2)? as usize;
                return self.map(n, depth);
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Integer(c as i8 as i64),
            _ => return Err(err("Bad data format in input.")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cmsgpack", open(&lua).unwrap()).unwrap();
        lua
    }

    fn hex(lua: &Lua, expr: &str) -> String {
        let s: mlua::LuaString = lua.load(format!("return cmsgpack.pack({expr})")).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn encodings() {
        let lua = lua();
        let cases: &[(&str, &str)] = &[
            ("nil", "c0"),
            ("true, false", "c3c2"),
            ("1, 127, 128, 256, 65536", "017fcc80cd0100ce00010000"),
            ("-1, -33, -129", "ffd0dfd1ff7f"),
            ("1.5", "ca3fc00000"),
            ("0.1", "cb3fb999999999999a"),
            ("'abc'", "a3616263"),
            ("{1, 2}", "920102"),
            ("{}", "90"),
            ("{a = 1}", "81a16101"),
        ];
        for (expr, want) in cases {
            assert_eq!(hex(&lua, expr), *want, "{expr}");
        }
        assert!(hex(&lua, "string.rep('x', 40)").starts_with("d928"));
    }

    #[test]
    fn round_trips() {
        let lua = lua();
        let got: String = lua
            .load(
                r#"local a, b, c = cmsgpack.unpack(cmsgpack.pack({1, {x = 'y'}, -5}, 'str', 2.25))
                return table.concat({a[1], a[2].x, a[3], b, c}, ',')"#,
            )
            .eval()
            .unwrap();
        assert_eq!(got, "1,y,-5,str,2.25");
        let got: String = lua
            .load(
                r#"local s = cmsgpack.pack(1, 2, 3)
                local off, v = cmsgpack.unpack_one(s)
                local off2, v2, v3 = cmsgpack.unpack_limit(s, 2, off)
                return table.concat({off, v, off2, v2, v3}, ',')"#,
            )
            .eval()
            .unwrap();
        assert_eq!(got, "1,1,-1,2,3");
        assert!(lua.load("return cmsgpack.unpack(string.char(0xcd, 1))").exec().is_err());
        assert!(lua.load("return cmsgpack.pack()").exec().is_err());
    }
}
