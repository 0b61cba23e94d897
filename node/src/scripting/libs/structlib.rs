//! `struct`: binary packing as in Roberto Ierusalimschy's struct library
//! (as bundled with Redis): `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, s [, pos])` (values, then the next position) and
//! `struct.size(fmt)`.
//!
//! Format: `>` big endian, `<` little, `=` native (little), `![n]` maximum
//! alignment; `b/B` char, `h/H` short, `l/L` long (8), `T` size_t (8),
//! `i[n]/I[n]` integers of n bytes (default 4), `f` float, `d` double,
//! `s` zero-terminated string, `c[n]` fixed-size string (`c0`: whole
//! string when packing, size from the previous value when unpacking),
//! `x` padding byte; spaces are ignored. Lower case is signed.

use mlua::{Lua, MultiValue, Table, Value};

use super::{bad_arg, to_number};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

struct Header {
    little: bool,
    align: usize,
}

struct Fmt<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Fmt<'_> {
    /// The number after an option (a size or an alignment), `default` if
    /// none. Like Redis's lua_struct, refuses numbers above INT_MAX, so
    /// sizes added up in `size` and `unpack` cannot overflow.
    fn num(&mut self, default: usize) -> mlua::Result<usize> {
        if !matches!(self.s.get(self.pos), Some(c) if c.is_ascii_digit()) {
            return Ok(default);
        }
        let mut n: usize = 0;
        while let Some(c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
            n = n * 10 + (c - b'0') as usize;
            if n > i32::MAX as usize {
                return Err(err("integral size overflow"));
            }
            self.pos += 1;
        }
        Ok(n)
    }

    /// The next option and its size.
    fn next(&mut self) -> Option<mlua::Result<(u8, usize)>> {
        let opt = *self.s.get(self.pos)?;
        self.pos += 1;
        let size = match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => match self.num(1) {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            },
            b'i' | b'I' => {
                let n = match self.num(4) {
                    Ok(n) => n,
                    Err(e) => return Some(Err(e)),
                };
                if n > MAX_INT_SIZE {
                    return Some(Err(err(format!("integral size {n} is larger than limit of {MAX_INT_SIZE}"))));
                }
                n
            }
            _ => 0,
        };
        Some(Ok((opt, size)))
    }
}

/// Handles the non-data options; errors on unknown ones.
fn control(opt: u8, fmt: &mut Fmt, h: &mut Header, fname: &str) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' | b'=' => h.little = true,
        b'!' => {
            let a = fmt.num(MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(err(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        c => return Err(err(format!("bad argument #1 to '{fname}' (invalid format option '{}')", c as char))),
    }
    Ok(())
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    if !size.is_power_of_two() {
        return 0;
    }
    (size - (len & (size - 1))) & (size - 1)
}

fn put_int(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let v: u64 = if n < 0.0 { (n as i64) as u64 } else { n as u64 };
    let fill = if n < 0.0 { 0xff } else { 0 };
    let mut bytes: Vec<u8> = (0..size).map(|i| if i < 8 { (v >> (8 * i)) as u8 } else { fill }).collect();
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let size = b.len();
    for i in 0..size {
        let byte = if little { b[size - 1 - i] } else { b[i] };
        v = (v << 8) | byte as u64;
    }
    if signed && size > 0 && size < 8 {
        let shift = 64 - 8 * size as u32;
        ((v << shift) as i64 >> shift) as f64
    } else if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::LuaString> {
    let fmt_v = args.front().cloned().unwrap_or(Value::Nil);
    let Value::String(fmt_s) = &fmt_v else { return Err(bad_arg(1, "pack", "string", &fmt_v)) };
    let fmt_b = fmt_s.as_bytes().to_vec();
    let mut fmt = Fmt { s: &fmt_b, pos: 0 };
    let mut h = Header { little: true, align: 1 };
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(next) = fmt.next() {
        let (opt, mut size) = next?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = args.get(arg).cloned().unwrap_or(Value::Nil);
                let n = to_number(&v).ok_or_else(|| bad_arg(arg + 1, "pack", "number", &v))?;
                put_int(&mut out, n, h.little, size);
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let v = args.get(arg).cloned().unwrap_or(Value::Nil);
                let n = to_number(&v).ok_or_else(|| bad_arg(arg + 1, "pack", "number", &v))?;
                let mut bytes = if opt == b'f' { (n as f32).to_le_bytes().to_vec() } else { n.to_le_bytes().to_vec() };
                if !h.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
                arg += 1;
            }
            b'c' | b's' => {
                let v = args.get(arg).cloned().unwrap_or(Value::Nil);
                let s = match &v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(_) | Value::Number(_) => super::super::convert::value_bytes(&v).unwrap_or_default(),
                    _ => return Err(bad_arg(arg + 1, "pack", "string", &v)),
                };
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(err(format!("bad argument #{} to 'pack' (string too short)", arg + 1)));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
                arg += 1;
            }
            other => control(other, &mut fmt, &mut h, "pack")?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt_v = args.front().cloned().unwrap_or(Value::Nil);
    let Value::String(fmt_s) = &fmt_v else { return Err(bad_arg(1, "unpack", "string", &fmt_v)) };
    let data_v = args.get(1).cloned().unwrap_or(Value::Nil);
    let Value::String(data_s) = &data_v else { return Err(bad_arg(2, "unpack", "string", &data_v)) };
    let fmt_b = fmt_s.as_bytes().to_vec();
    let data = data_s.as_bytes().to_vec();
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(v) => to_number(v).ok_or_else(|| bad_arg(3, "unpack", "number", v))? as i64,
    };
    if start < 1 {
        return Err(err("bad argument #3 to 'unpack' (offset must be 1 or greater)"));
    }
    let mut pos = (start - 1) as usize;
    let mut fmt = Fmt { s: &fmt_b, pos: 0 };
    let mut h = Header { little: true, align: 1 };
    let mut values = MultiValue::new();
    let short = || err("bad argument #2 to 'unpack' (data string too short)");
    while let Some(next) = fmt.next() {
        let (opt, mut size) = next?;
        pos += to_align(pos, &h, opt, size);
        if pos.checked_add(size).is_none_or(|e| e > data.len()) {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                values.push_back(Value::Number(get_int(&data[pos..pos + size], h.little, opt.is_ascii_lowercase())));
            }
            b'x' => {}
            b'f' | b'd' => {
                let mut bytes = data[pos..pos + size].to_vec();
                if !h.little {
                    bytes.reverse();
                }
                let n = if opt == b'f' {
                    f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64
                } else {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&bytes);
                    f64::from_le_bytes(a)
                };
                values.push_back(Value::Number(n));
            }
            b'c' => {
                if size == 0 {
                    let prev = values.pop_back().and_then(|v| to_number(&v)).ok_or_else(|| err("format 'c0' needs a previous size"))?;
                    size = prev.max(0.0) as usize;
                    if pos.checked_add(size).is_none_or(|e| e > data.len()) {
                        return Err(short());
                    }
                }
                values.push_back(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(err("unfinished string in data"));
                };
                values.push_back(Value::String(lua.create_string(&data[pos..pos + len])?));
                size = len + 1;
            }
            other => control(other, &mut fmt, &mut h, "unpack")?,
        }
        pos += size;
    }
    values.push_back(Value::Integer(pos as i64 + 1));
    Ok(values)
}

fn size(_: &Lua, fmt_v: Value) -> mlua::Result<i64> {
    let Value::String(fmt_s) = &fmt_v else { return Err(bad_arg(1, "size", "string", &fmt_v)) };
    let fmt_b = fmt_s.as_bytes().to_vec();
    let mut fmt = Fmt { s: &fmt_b, pos: 0 };
    let mut h = Header { little: true, align: 1 };
    let mut total = 0usize;
    while let Some(next) = fmt.next() {
        let (opt, size) = next?;
        if opt == b's' {
            return Err(err("bad argument #1 to 'size' (options 'c0' - 's' have undefined sizes)"));
        }
        if opt == b'c' && size == 0 {
            return Err(err("bad argument #1 to 'size' (options 'c0' - 's' have undefined sizes)"));
        }
        if !matches!(opt, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' | b'x' | b'f' | b'd' | b'c') {
            control(opt, &mut fmt, &mut h, "size")?;
        }
        total += to_align(total, &h, opt, size) + size;
    }
    Ok(total as i64)
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", open(&lua).unwrap()).unwrap();
        lua
    }

    fn hex(lua: &Lua, code: &str) -> String {
        let s: mlua::LuaString = lua.load(format!("return {code}")).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pack_formats() {
        let lua = lua();
        let cases: &[(&str, &str)] = &[
            ("struct.pack('>I2', 258)", "0102"),
            ("struct.pack('<I2', 258)", "0201"),
            ("struct.pack('>i4', -2)", "fffffffe"),
            ("struct.pack('b', -1)", "ff"),
            ("struct.pack('>d', 1.5)", "3ff8000000000000"),
            ("struct.pack('s', 'ab')", "616200"),
            ("struct.pack('c3', 'abcd')", "616263"),
            ("struct.pack('c0', 'xyz')", "78797a"),
            ("struct.pack('!4 b i4', 1, 2)", "0100000002000000"),
            ("struct.pack('bxb', 1, 2)", "010002"),
        ];
        for (code, want) in cases {
            assert_eq!(hex(&lua, code), *want, "{code}");
        }
    }

    #[test]
    fn unpack_and_size() {
        let lua = lua();
        let got: String = lua
            .load(
                r#"local a, b, c, nxt = struct.unpack('>i2 s B c0', struct.pack('>i2 s B', -3, 'hi', 2) .. 'xyz')
                return table.concat({a, b, c, nxt}, ',')"#,
            )
            .eval()
            .unwrap();
        // B reads 2, then c0 takes that as its size.
        assert_eq!(got, "-3,hi,xy,9");
        let n: i64 = lua.load("return struct.size('>i4 h d')").eval().unwrap();
        assert_eq!(n, 14);
        let n: i64 = lua.load("return struct.size('!8 b d')").eval().unwrap();
        assert_eq!(n, 16);
        let nxt: i64 = lua.load("local v, n = struct.unpack('b', 'ab', 2) return n").eval().unwrap();
        assert_eq!(nxt, 3);
        assert!(lua.load("return struct.unpack('i4', 'ab')").exec().is_err());
        assert!(lua.load("return struct.pack('q', 1)").exec().is_err());
        assert!(lua.load("return struct.size('s')").exec().is_err());
    }

    /// Found by fuzzing: a size past usize made `struct.size` overflow its
    /// running total. Sizes above INT_MAX are refused, as in Redis.
    #[test]
    fn huge_sizes_are_refused() {
        let lua = lua();
        let st: Table = lua.globals().get("struct").unwrap();
        let fmt = lua.create_string([&b"c"[..], &[b'9'; 42], b"c\x18\x00"].concat()).unwrap();
        let size: mlua::Function = st.get("size").unwrap();
        let e = size.call::<i64>(fmt.clone()).unwrap_err();
        assert!(e.to_string().contains("integral size overflow"), "{e}");
        let unpack: mlua::Function = st.get("unpack").unwrap();
        assert!(unpack.call::<MultiValue>((fmt, "")).is_err());
        assert!(lua.load("return struct.size('!4294967296 i')").exec().is_err());
        let n: i64 = lua.load("return struct.size('c2147483647 c2147483647')").eval().unwrap();
        assert_eq!(n, 2 * 2147483647);
    }
}
