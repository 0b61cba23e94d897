//! `cjson`: JSON encoding and decoding with lua-cjson's API and behaviour
//! (as bundled with Redis): `encode`, `decode`, `null`, the configuration
//! functions (`encode_max_depth`, `decode_max_depth`,
//! `encode_number_precision`, `encode_sparse_array`, `encode_invalid_numbers`,
//! `decode_invalid_numbers`, `encode_keep_buffer`) and `new`.
//!
//! Encoding: a table whose keys are all positive integers is an array (holes
//! become null; an excessively sparse one is an error), any other table an
//! object; an empty table is `{}`; numbers use 14 significant digits; `/` is
//! escaped as lua-cjson does. Decoding: objects and arrays become tables,
//! `null` becomes `cjson.null`.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{bad_arg, type_name};

struct Config {
    encode_max_depth: AtomicI64,
    decode_max_depth: AtomicI64,
    precision: AtomicI64,
    sparse_convert: AtomicBool,
    sparse_ratio: AtomicI64,
    sparse_safe: AtomicI64,
    encode_invalid: AtomicBool,
    decode_invalid: AtomicBool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_max_depth: AtomicI64::new(1000),
            decode_max_depth: AtomicI64::new(1000),
            precision: AtomicI64::new(14),
            sparse_convert: AtomicBool::new(false),
            sparse_ratio: AtomicI64::new(2),
            sparse_safe: AtomicI64::new(10),
            encode_invalid: AtomicBool::new(false),
            decode_invalid: AtomicBool::new(false),
        }
    }
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg = Arc::new(Config::default());
    let c = cfg.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(err("bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let mut out = Vec::new();
            encode(&args[0], &mut out, 0, &c)?;
            lua.create_string(out)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: MultiValue| {
            let v = args.front().cloned().unwrap_or(Value::Nil);
            let Value::String(s) = &v else {
                return Err(bad_arg(1, "decode", "string", &v));
            };
            let bytes = s.as_bytes();
            let mut d = Decoder { lua, s: &bytes, pos: 0, depth: 0, max_depth: c.decode_max_depth.load(Relaxed) as usize };
            d.document()
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    fn int_setter(lua: &Lua, cfg: &Arc<Config>, pick: fn(&Config) -> &AtomicI64, lo: i64, hi: i64) -> mlua::Result<mlua::Function> {
        let c = cfg.clone();
        lua.create_function(move |_, v: Option<f64>| {
            let cell = pick(&c);
            if let Some(v) = v {
                let v = v as i64;
                if v < lo || v > hi {
                    return Err(err(format!("bad argument #1 to '?' (expected integer between {lo} and {hi})")));
                }
                cell.store(v, Relaxed);
            }
            Ok(cell.load(Relaxed))
        })
    }
    t.raw_set("encode_max_depth", int_setter(lua, &cfg, |c| &c.encode_max_depth, 1, i32::MAX as i64)?)?;
    t.raw_set("decode_max_depth", int_setter(lua, &cfg, |c| &c.decode_max_depth, 1, i32::MAX as i64)?)?;
    t.raw_set("encode_number_precision", int_setter(lua, &cfg, |c| &c.precision, 1, 14)?)?;
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, (convert, ratio, safe): (Option<Value>, Option<i64>, Option<i64>)| {
            if let Some(v) = convert {
                c.sparse_convert.store(truthy(&v), Relaxed);
            }
            if let Some(r) = ratio {
                c.sparse_ratio.store(r.max(0), Relaxed);
            }
            if let Some(s) = safe {
                c.sparse_safe.store(s.max(0), Relaxed);
            }
            Ok((c.sparse_convert.load(Relaxed), c.sparse_ratio.load(Relaxed), c.sparse_safe.load(Relaxed)))
        })?,
    )?;
    fn bool_setter(lua: &Lua, cfg: &Arc<Config>, pick: fn(&Config) -> &AtomicBool) -> mlua::Result<mlua::Function> {
        let c = cfg.clone();
        lua.create_function(move |_, v: Option<Value>| {
            let cell = pick(&c);
            if let Some(v) = v {
                cell.store(truthy(&v), Relaxed);
            }
            Ok(cell.load(Relaxed))
        })
    }
    t.raw_set("encode_invalid_numbers", bool_setter(lua, &cfg, |c| &c.encode_invalid)?)?;
    t.raw_set("decode_invalid_numbers", bool_setter(lua, &cfg, |c| &c.decode_invalid)?)?;
    t.raw_set("encode_keep_buffer", lua.create_function(|_, _: MultiValue| Ok(true))?)?;
    t.raw_set("new", lua.create_function(|lua, ()| open(lua))?)?;
    Ok(t)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Boolean(b) => *b,
        Value::Nil => false,
        Value::String(s) => s.as_bytes().as_ref() != b"off",
        _ => true,
    }
}

/// C's `%.<prec>g`.
pub fn format_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn number_text(n: f64, cfg: &Config) -> mlua::Result<String> {
    if !n.is_finite() {
        if !cfg.encode_invalid.load(Relaxed) {
            return Err(err("Cannot serialise number: must not be NaN or Inf"));
        }
        return Ok(if n.is_nan() {
            "nan".into()
        } else if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        });
    }
    Ok(format_g(n, cfg.precision.load(Relaxed) as usize))
}

fn encode_string(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in b {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize, cfg: &Config) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(number_text(*i as f64, cfg)?.as_bytes()),
        Value::Number(n) => out.extend_from_slice(number_text(*n, cfg)?.as_bytes()),
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth as i64 > cfg.encode_max_depth.load(Relaxed) {
                return Err(err(format!("Cannot serialise, excessive nesting ({depth})")));
            }
            let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
            let mut max = 0usize;
            let mut is_array = true;
            for (k, _) in &pairs {
                let idx = match k {
                    Value::Integer(i) if *i >= 1 => Some(*i as usize),
                    Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Some(*n as usize),
                    _ => None,
                };
                match idx {
                    Some(i) => max = max.max(i),
                    None => {
                        is_array = false;
                        break;
                    }
                }
            }
            if is_array && max > 0 {
                let items = pairs.len();
                let (ratio, safe) = (cfg.sparse_ratio.load(Relaxed) as usize, cfg.sparse_safe.load(Relaxed) as usize);
                let sparse = ratio > 0 && max > safe && max > items * ratio;
                if sparse && !cfg.sparse_convert.load(Relaxed) {
                    return Err(err("Cannot serialise table: excessively sparse array"));
                }
                if !sparse {
                    out.push(b'[');
                    for i in 1..=max {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i)?;
                        encode(&item, out, depth, cfg)?;
                    }
                    out.push(b']');
                    return Ok(());
                }
            }
            out.push(b'{');
            for (n, (k, item)) in pairs.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                match k {
                    Value::String(s) => encode_string(&s.as_bytes(), out),
                    Value::Integer(i) => encode_string(number_text(*i as f64, cfg)?.as_bytes(), out),
                    Value::Number(f) => encode_string(number_text(*f, cfg)?.as_bytes(), out),
                    _ => return Err(err("Cannot serialise table: table key must be a number or string")),
                }
                out.push(b':');
                encode(item, out, depth, cfg)?;
            }
            out.push(b'}');
        }
        other => return Err(err(format!("Cannot serialise {}: type not supported", type_name(other)))),
    }
    Ok(())
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl Decoder<'_> {
    /// lua-cjson's parse error: "Expected <what> but found <token> at
    /// character <n>", naming tokens as it does (T_ARR_END, ...).
    fn fail(&self, expected: &str) -> mlua::Error {
        let rest = &self.s[self.pos.min(self.s.len())..];
        let found = match rest.first() {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            Some(b'"') => "T_STRING",
            Some(c) if c.is_ascii_digit() || *c == b'-' => "T_NUMBER",
            Some(_) if rest.starts_with(b"true") || rest.starts_with(b"false") => "T_BOOLEAN",
            Some(_) if rest.starts_with(b"null") => "T_NULL",
            Some(_) => "invalid token",
        };
        err(format!("Expected {expected} but found {found} at character {}", self.pos + 1))
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn document(&mut self) -> mlua::Result<Value> {
        let v = self.value()?;
        self.ws();
        if self.pos < self.s.len() {
            return Err(self.fail("the end"));
        }
        Ok(v)
    }

    fn value(&mut self) -> mlua::Result<Value> {
        self.ws();
        match self.s.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let s = self.string()?;
                Ok(Value::String(self.lua.create_string(s)?))
            }
            Some(b't') if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(null())
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => self.number(),
            _ => Err(self.fail("value")),
        }
    }

    fn nest(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(err(format!("Found too many nested data structures ({}) at character {}", self.depth, self.pos + 1)));
        }
        Ok(())
    }

    fn object(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.fail("object key string"));
            }
            let k = self.string()?;
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.fail("colon"));
            }
            self.pos += 1;
            let v = self.value()?;
            t.raw_set(self.lua.create_string(k)?, v)?;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.fail("comma or object end")),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value()?;
            t.raw_set(i, v)?;
            i += 1;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.fail("comma or array end")),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(err(format!("Expected value but found unexpected end of string at character {}", start + 1)));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let backslash = self.pos - 1;
                    let Some(&e) = self.s.get(self.pos) else { return Err(self.fail("value")) };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let bad =
                                |pos: usize| err(format!("Expected value but found invalid unicode escape code at character {}", pos + 1));
                            let mut cp = self.hex4().ok_or_else(|| bad(start))?;
                            if (0xd800..0xdc00).contains(&cp) {
                                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(bad(start));
                                }
                                self.pos += 2;
                                let lo = self.hex4().ok_or_else(|| bad(start))?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(bad(start));
                                }
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                            } else if (0xdc00..0xe000).contains(&cp) {
                                return Err(bad(start));
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| bad(start))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(err(format!("Expected value but found invalid escape code at character {}", backslash + 1)));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.pos;
        while matches!(self.s.get(self.pos), Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => {
                self.pos = start;
                Err(self.fail("value"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cjson", open(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn encodes() {
        let lua = lua();
        let cases: &[(&str, &str)] = &[
            ("cjson.encode(nil)", "null"),
            ("cjson.encode(true)", "true"),
            ("cjson.encode(42)", "42"),
            ("cjson.encode(0.1)", "0.1"),
            ("cjson.encode(1/3)", "0.33333333333333"),
            ("cjson.encode(1e20)", "1e+20"),
            ("cjson.encode('a\"b/c\\n')", r#""a\"b\/c\n""#),
            ("cjson.encode({1, 2, 3})", "[1,2,3]"),
            ("cjson.encode({})", "{}"),
            ("cjson.encode({a = {b = cjson.null}})", r#"{"a":{"b":null}}"#),
            ("cjson.encode({[1] = 'x', [3] = 'z'})", r#"["x",null,"z"]"#),
            ("cjson.encode({[2] = 'x'})", r#"[null,"x"]"#),
        ];
        for (code, want) in cases {
            let got: String = lua.load(format!("return {code}")).eval().unwrap();
            assert_eq!(got, *want, "{code}");
        }
        let e = lua.load("return cjson.encode({[1000] = 1})").exec().unwrap_err().to_string();
        assert!(e.contains("Cannot serialise table: excessively sparse array"), "{e}");
        let e = lua.load("return cjson.encode(function() end)").exec().unwrap_err().to_string();
        assert!(e.contains("Cannot serialise function: type not supported"), "{e}");
        let e = lua.load("return cjson.encode(0/0)").exec().unwrap_err().to_string();
        assert!(e.contains("must not be NaN or Inf"), "{e}");
    }

    #[test]
    fn nesting_limits() {
        // Deep recursion: run with a stack as large as the shard threads'.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let lua = lua();
                let e = lua.load("local t = {} t[1] = t return cjson.encode(t)").exec().unwrap_err().to_string();
                assert!(e.contains("excessive nesting"), "{e}");
                assert!(lua.load("return cjson.decode(string.rep('[', 2000))").exec().is_err());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn decodes() {
        let lua = lua();
        let got: String = lua
            .load(
                r#"local v = cjson.decode('{"a":[1,2.5,"x",true,null],"b":{"c":"\\u00e9\\ud83d\\ude00"}}')
                return table.concat({v.a[1], v.a[2], v.a[3], tostring(v.a[4]), tostring(v.a[5] == cjson.null), v.b.c}, ',')"#,
            )
            .eval()
            .unwrap();
        assert_eq!(got, "1,2.5,x,true,true,é😀");
        let round: String = lua.load(r#"return cjson.encode(cjson.decode('[1,{"k":"v"},[]]'))"#).eval().unwrap();
        assert_eq!(round, r#"[1,{"k":"v"},{}]"#);
        for bad in ["'{'", "'[1,'", "'{\"a\" 1}'", "'nope'", "'[1] x'", "'\"abc'"] {
            assert!(lua.load(format!("return cjson.decode({bad})")).exec().is_err(), "{bad}");
        }
        let e = lua.load("return cjson.decode('[1,]')").exec().unwrap_err().to_string();
        assert!(e.contains("Expected value but found"), "{e}");
    }

    #[test]
    fn g_format() {
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(format_g(-2.5, 14), "-2.5");
    }
}
