//! Conversions between Redis replies and Lua values, following Redis's
//! scripting reference.
//!
//! Redis -> Lua (`push_resp`, applied to the RESP a command wrote):
//! integer -> number; bulk -> string; null bulk / null array -> false;
//! array -> table; status -> `{ok=...}`; error -> `{err=...}`; and, after
//! `redis.setresp(3)`: map -> `{map={...}}`, set -> `{set={k=true}}`,
//! null -> nil, boolean -> boolean, double -> `{double=n}`, big number ->
//! `{big_number=s}`, verbatim -> `{verbatim_string={format=,string=}}`.
//!
//! Lua -> Redis (`lua_to_resp`, for a script's return value): number ->
//! integer (truncated); string -> bulk; true -> 1 (RESP3 scripts: boolean);
//! false and nil -> null (RESP3 scripts: false -> boolean); a table with
//! `err`/`ok`/`double`/`big_number`/`map`/`set`/`verbatim_string` -> that
//! reply; any other table -> array of its elements up to the first nil.

#[cfg(test)]
use mlua::Lua;
use mlua::{ffi, Table, Value};

use crate::resp::Out;
use crate::util::parse_int;

/// How deep a returned table may nest before the reply gives up on it.
const MAX_DEPTH: usize = 500;

/// Parses one RESP value this server wrote into a Lua value (a safe
/// wrapper over `push_resp`, for tests).
#[cfg(test)]
pub fn resp_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Value> {
    let mut ok = true;
    // SAFETY: `push_resp` only uses the Lua C API on the given state and
    // holds no value that needs dropping while it may raise.
    let v = unsafe {
        lua.exec_raw::<Value>((), |state| {
            let mut pos = 0;
            ok = push_resp(state, buf, &mut pos, 0);
        })
    }?;
    if ok {
        Ok(v)
    } else {
        Err(mlua::Error::RuntimeError("malformed reply".into()))
    }
}

fn line(buf: &[u8], pos: &mut usize) -> Option<(u8, usize, usize)> {
    let tag = *buf.get(*pos)?;
    let start = *pos + 1;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some((tag, start, start + rel))
}

fn blob<'a>(buf: &'a [u8], pos: &mut usize, n: i64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok()?;
    let b = buf.get(*pos..pos.checked_add(n)?)?;
    *pos += n + 2;
    Some(b)
}

/// Pushes a byte string. The plain C API calls here and in `seti`: the
/// compatibility layer's versions read the string back, check the type of
/// what they pushed, or convert indices with a panic on overflow.
///
/// # Safety
/// `state` must be valid with room for one more value; may raise (out of
/// memory).
pub unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    let p = if b.is_empty() { c"".as_ptr() } else { b.as_ptr() as *const std::os::raw::c_char };
    ffi::lua_pushlstring_(state, p, b.len());
}

/// `t[i] = v` for the table at `t` and the value on top (popped); `i` is a
/// 1-based position, saturated to the C API's int.
///
/// # Safety
/// `t` must be a table of the valid state `state`; may raise (out of
/// memory) when the table grows.
pub unsafe fn seti(state: *mut ffi::lua_State, t: i32, i: usize) {
    ffi::lua_rawseti_(state, t, i.min(i32::MAX as usize) as i32);
}

/// Pushes registry slot `id`.
///
/// # Safety
/// `state` must be valid with room for one more value.
pub unsafe fn push_registry(state: *mut ffi::lua_State, id: i32) {
    ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, id);
}

/// Pushes `{key=<value on top>}` in place of the value on top.
/// The field Redis sets on the error tables of `redis.call`/`pcall`
/// replies (`ignore_error_stats_update`).
pub const IGNORE_ERROR_STATS: &[u8] = b"ignore_error_stats_update";

/// Whether an error table came from a command's reply, whose error INFO
/// errorstats counted already.
pub fn error_counted(t: &Table) -> bool {
    matches!(t.raw_get::<Value>("ignore_error_stats_update"), Ok(Value::Boolean(true)))
}

unsafe fn wrap(state: *mut ffi::lua_State, key: &[u8]) {
    ffi::lua_createtable(state, 0, 1);
    push_bytes(state, key);
    ffi::lua_pushvalue(state, -3);
    ffi::lua_rawset(state, -3);
    ffi::lua_remove(state, -2);
}

/// Pushes one RESP value this server wrote onto the Lua stack as a Lua
/// value (nil and false when malformed). Used by `redis.call` on the replies
/// of the commands it runs, without intermediate handles.
///
/// # Safety
/// `state` must be a valid Lua state with room to grow its stack. Lua may
/// raise (out of memory) from here: the function holds nothing that needs
/// dropping.
pub unsafe fn push_resp(state: *mut ffi::lua_State, buf: &[u8], pos: &mut usize, depth: usize) -> bool {
    if depth > MAX_DEPTH || ffi::lua_checkstack(state, 6) == 0 {
        ffi::lua_pushnil(state);
        return false;
    }
    let Some((tag, s, e)) = line(buf, pos) else {
        ffi::lua_pushnil(state);
        return false;
    };
    let l = &buf[s..e];
    match tag {
        b'+' => {
            push_bytes(state, l);
            wrap(state, b"ok");
        }
        b'-' => {
            push_bytes(state, l);
            wrap(state, b"err");
            // As Redis marks it: the command's error was counted in INFO
            // errorstats already, so the script's reply of it is not.
            push_bytes(state, IGNORE_ERROR_STATS);
            ffi::lua_pushboolean(state, 1);
            ffi::lua_rawset(state, -3);
        }
        b':' => match parse_int(l) {
            Some(n) => ffi::lua_pushnumber(state, n as f64),
            None => {
                ffi::lua_pushnil(state);
                return false;
            }
        },
        b'$' => match parse_int(l) {
            Some(n) if n < 0 => ffi::lua_pushboolean(state, 0),
            Some(n) => match blob(buf, pos, n) {
                Some(b) => push_bytes(state, b),
                None => {
                    ffi::lua_pushnil(state);
                    return false;
                }
            },
            None => {
                ffi::lua_pushnil(state);
                return false;
            }
        },
        b'*' | b'>' => {
            let Some(n) = parse_int(l) else {
                ffi::lua_pushnil(state);
                return false;
            };
            if n < 0 {
                ffi::lua_pushboolean(state, 0);
                return true;
            }
            ffi::lua_createtable(state, n.min(1 << 16) as i32, 0);
            for i in 1..=n {
                let ok = push_resp(state, buf, pos, depth + 1);
                seti(state, -2, i as usize);
                if !ok {
                    return false;
                }
            }
        }
        b'_' => ffi::lua_pushnil(state),
        b'#' => ffi::lua_pushboolean(state, (l == b"t") as i32),
        b',' => {
            let d = match std::str::from_utf8(l).unwrap_or("") {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                t => match t.parse::<f64>() {
                    Ok(d) => d,
                    Err(_) => {
                        ffi::lua_pushnil(state);
                        return false;
                    }
                },
            };
            ffi::lua_pushnumber(state, d);
            wrap(state, b"double");
        }
        b'(' => {
            push_bytes(state, l);
            wrap(state, b"big_number");
        }
        b'=' => {
            let Some(b) = parse_int(l).and_then(|n| blob(buf, pos, n)) else {
                ffi::lua_pushnil(state);
                return false;
            };
            let (fmt, text) = if b.len() >= 4 && b[3] == b':' { (&b[..3], &b[4..]) } else { (&b"txt"[..], b) };
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, b"format");
            push_bytes(state, fmt);
            ffi::lua_rawset(state, -3);
            push_bytes(state, b"string");
            push_bytes(state, text);
            ffi::lua_rawset(state, -3);
            wrap(state, b"verbatim_string");
        }
        b'%' | b'~' => {
            let Some(n) = parse_int(l) else {
                ffi::lua_pushnil(state);
                return false;
            };
            ffi::lua_createtable(state, 0, n.clamp(0, 1 << 16) as i32);
            for _ in 0..n {
                if !push_resp(state, buf, pos, depth + 1) {
                    ffi::lua_pop(state, 1);
                    return false;
                }
                let ok = if tag == b'%' {
                    push_resp(state, buf, pos, depth + 1)
                } else {
                    ffi::lua_pushboolean(state, 1);
                    true
                };
                if ffi::lua_isnil(state, -2) != 0 {
                    ffi::lua_pop(state, 2);
                } else {
                    ffi::lua_rawset(state, -3);
                }
                if !ok {
                    return false;
                }
            }
            wrap(state, if tag == b'%' { b"map" } else { b"set" });
        }
        b'|' => {
            // Attributes are skipped; the value follows them.
            let n = parse_int(l).unwrap_or(0);
            for _ in 0..2 * n {
                let ok = push_resp(state, buf, pos, depth + 1);
                ffi::lua_pop(state, 1);
                if !ok {
                    ffi::lua_pushnil(state);
                    return false;
                }
            }
            return push_resp(state, buf, pos, depth + 1);
        }
        _ => {
            ffi::lua_pushnil(state);
            return false;
        }
    }
    true
}

/// Writes a script's return value as a reply. `script_resp3` is the
/// protocol the script chose with `redis.setresp` (it decides how booleans
/// convert); `out` knows the client's protocol.
pub fn lua_to_resp(v: &Value, out: &mut Out, script_resp3: bool) {
    write(v, out, script_resp3, 0)
}

/// `lua_to_resp` for the value at `idx` of the stack when it is not a
/// table: writes it and returns true; for a table writes nothing and
/// returns false. Strings are read in place.
///
/// # Safety
/// `state` must be a valid Lua state and `idx` a valid index. Uses no Lua
/// function that can raise.
pub unsafe fn write_scalar(state: *mut ffi::lua_State, idx: i32, out: &mut Out, script_resp3: bool) -> bool {
    match ffi::lua_type(state, idx) {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, idx, &mut len);
            out.bulk(if p.is_null() { &[] } else { std::slice::from_raw_parts(p as *const u8, len) });
        }
        ffi::LUA_TNUMBER => out.int(lua_number_to_i64(&Value::Number(ffi::lua_tonumber(state, idx)))),
        ffi::LUA_TBOOLEAN => write(&Value::Boolean(ffi::lua_toboolean(state, idx) != 0), out, script_resp3, 0),
        ffi::LUA_TTABLE => return false,
        _ => out.nil(),
    }
    true
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// A Lua number as Redis converts it to an integer reply: truncated; out of
/// range and NaN give i64::MIN, as the C cast Redis uses does on x86-64.
pub fn lua_number_to_i64(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        Value::Number(n) if n.is_nan() || *n >= 9.223_372_036_854_776e18 || *n < -9.223_372_036_854_776e18 => i64::MIN,
        Value::Number(n) => *n as i64,
        _ => 0,
    }
}

fn write(v: &Value, out: &mut Out, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.error_text("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::Integer(_) | Value::Number(_) => out.int(lua_number_to_i64(v)),
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                out.boolean(*b)
            } else if *b {
                out.int(1)
            } else {
                out.nil()
            }
        }
        Value::Table(t) => write_table(t, out, resp3, depth),
        _ => out.nil(),
    }
}

fn write_table(t: &Table, out: &mut Out, resp3: bool, depth: usize) {
    let field = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        let text = String::from_utf8_lossy(&e.as_bytes()).into_owned();
        let text = text.trim_end_matches(['\r', '\n']);
        if error_counted(t) {
            out.error_uncounted(text);
        } else {
            out.error_text(text);
        }
        return;
    }
    if let Value::String(s) = field("ok") {
        let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        out.simple(&text);
        return;
    }
    if let Some(d) = number(&field("double")) {
        out.double(d);
        return;
    }
    if let Value::String(s) = field("big_number") {
        let b = s.as_bytes();
        if out.resp3 {
            out.buf.push(b'(');
            out.buf.extend(b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
            out.buf.extend_from_slice(b"\r\n");
        } else {
            out.bulk(&b);
        }
        return;
    }
    if let Value::Table(m) = field("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            write(k, out, resp3, depth + 1);
            write(v, out, resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field("set") {
        let keys: Vec<Value> = s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
        out.set(keys.len());
        for k in &keys {
            write(k, out, resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(vt) = field("verbatim_string") {
        let fmt = vt.raw_get::<Value>("format").ok();
        let text = vt.raw_get::<Value>("string").ok();
        if let (Some(Value::String(fmt)), Some(Value::String(text))) = (fmt, text) {
            let (fmt, text) = (fmt.as_bytes(), text.as_bytes());
            if out.resp3 && fmt.len() == 3 {
                out.buf.push(b'=');
                out.buf.extend_from_slice(itoa::Buffer::new().format(text.len() + 4).as_bytes());
                out.buf.extend_from_slice(b"\r\n");
                out.buf.extend_from_slice(&fmt);
                out.buf.push(b':');
                out.buf.extend_from_slice(&text);
                out.buf.extend_from_slice(b"\r\n");
            } else {
                out.bulk(&text);
            }
            return;
        }
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    out.array(items.len());
    for v in &items {
        write(v, out, resp3, depth + 1);
    }
}

/// Reads a Lua value as bytes when it is a string or a number (as Lua's
/// `tostring` would, integers without a decimal point).
pub fn value_bytes(v: &mlua::Value) -> Option<Vec<u8>> {
    match v {
        mlua::Value::String(s) => Some(s.as_bytes().to_vec()),
        mlua::Value::Integer(i) => Some(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
        mlua::Value::Number(n) => Some(crate::resp::reply::format_double(*n).into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        Lua::new()
    }

    /// RESP in, through Lua (as a script would see it), back out as RESP.
    fn round_trip(input: &[u8], script_resp3: bool, client_resp3: bool) -> String {
        let lua = lua();
        let v = resp_to_lua(&lua, input).unwrap();
        let mut out = Out::new(client_resp3);
        lua_to_resp(&v, &mut out, script_resp3);
        String::from_utf8(out.buf).unwrap()
    }

    #[test]
    fn redis_to_lua_types() {
        let lua = lua();
        let cases: &[(&[u8], &str)] = &[
            (b":42\r\n", "number 42"),
            (b"$3\r\nfoo\r\n", "string foo"),
            (b"$-1\r\n", "boolean false"),
            (b"*-1\r\n", "boolean false"),
            (b"+OK\r\n", "ok OK"),
            (b"-ERR bad\r\n", "err ERR bad"),
            (b"_\r\n", "nil"),
            (b"#t\r\n", "boolean true"),
            (b",1.5\r\n", "double 1.5"),
            (b"(12345678901234567890\r\n", "big_number 12345678901234567890"),
        ];
        let describe: mlua::Function = lua
            .load(
                r#"return function(v)
                    local t = type(v)
                    if t == 'table' then
                        for _, k in ipairs({'ok', 'err', 'double', 'big_number'}) do
                            if v[k] ~= nil then return k .. ' ' .. tostring(v[k]) end
                        end
                        return 'table'
                    elseif t == 'nil' then return 'nil' end
                    return t .. ' ' .. tostring(v)
                end"#,
            )
            .eval()
            .unwrap();
        for (input, want) in cases {
            let v = resp_to_lua(&lua, input).unwrap();
            let got: String = describe.call(v).unwrap();
            assert_eq!(got, *want, "input {:?}", String::from_utf8_lossy(input));
        }
        let v = resp_to_lua(&lua, b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n$-1\r\n").unwrap();
        let t = v.as_table().unwrap();
        assert_eq!(t.raw_len(), 3);
        let m = resp_to_lua(&lua, b"%1\r\n$1\r\nk\r\n:7\r\n").unwrap();
        let inner: Table = m.as_table().unwrap().raw_get("map").unwrap();
        assert_eq!(inner.raw_get::<i64>("k").unwrap(), 7);
        let s = resp_to_lua(&lua, b"~2\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap();
        let inner: Table = s.as_table().unwrap().raw_get("set").unwrap();
        assert!(inner.raw_get::<bool>("a").unwrap());
        let vb = resp_to_lua(&lua, b"=7\r\ntxt:abc\r\n").unwrap();
        let inner: Table = vb.as_table().unwrap().raw_get("verbatim_string").unwrap();
        assert_eq!(inner.raw_get::<String>("format").unwrap(), "txt");
        assert_eq!(inner.raw_get::<String>("string").unwrap(), "abc");
        assert!(resp_to_lua(&lua, b"$5\r\nab").is_err());
    }

    #[test]
    fn lua_to_redis_types() {
        let lua = lua();
        // (Lua expression, script RESP3?, client RESP3?, reply)
        let cases: &[(&str, bool, bool, &str)] = &[
            ("42", false, false, ":42\r\n"),
            ("3.99", false, false, ":3\r\n"),
            ("-3.99", false, false, ":-3\r\n"),
            ("'x'", false, false, "$1\r\nx\r\n"),
            ("true", false, false, ":1\r\n"),
            ("false", false, false, "$-1\r\n"),
            ("false", false, true, "_\r\n"),
            ("nil", false, false, "$-1\r\n"),
            ("true", true, true, "#t\r\n"),
            ("false", true, true, "#f\r\n"),
            ("false", true, false, ":0\r\n"),
            ("{ok='fine'}", false, false, "+fine\r\n"),
            ("{err='MY oops'}", false, false, "-MY oops\r\n"),
            ("{1, 2, nil, 4}", false, false, "*2\r\n:1\r\n:2\r\n"),
            ("{1, 'a', {2.5, {}}}", false, false, "*3\r\n:1\r\n$1\r\na\r\n*2\r\n:2\r\n*0\r\n"),
            ("{double=3.5}", true, true, ",3.5\r\n"),
            ("{double=3.5}", true, false, "$3\r\n3.5\r\n"),
            ("{big_number='123'}", true, true, "(123\r\n"),
            ("{big_number='123'}", true, false, "$3\r\n123\r\n"),
            ("{map={a=1}}", true, true, "%1\r\n$1\r\na\r\n:1\r\n"),
            ("{map={a=1}}", true, false, "*2\r\n$1\r\na\r\n:1\r\n"),
            ("{set={a=true}}", true, true, "~1\r\n$1\r\na\r\n"),
            ("{verbatim_string={format='txt', string='hi'}}", true, true, "=6\r\ntxt:hi\r\n"),
            ("{err='ERR line\\nbreak'}", false, false, "-ERR line break\r\n"),
            ("function() end", false, false, "$-1\r\n"),
        ];
        for (expr, s3, c3, want) in cases {
            let v: Value = lua.load(format!("return {expr}")).eval().unwrap();
            let mut out = Out::new(*c3);
            lua_to_resp(&v, &mut out, *s3);
            assert_eq!(String::from_utf8_lossy(&out.buf), *want, "expr {expr} script3={s3} client3={c3}");
        }
        // A table that contains itself stops at the depth limit with an error element.
        let v: Value = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        let mut out = Out::new(false);
        lua_to_resp(&v, &mut out, false);
        assert!(String::from_utf8_lossy(&out.buf).ends_with("-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn round_trips() {
        assert_eq!(round_trip(b"*2\r\n$1\r\na\r\n:5\r\n", false, false), "*2\r\n$1\r\na\r\n:5\r\n");
        assert_eq!(round_trip(b"+OK\r\n", false, false), "+OK\r\n");
        assert_eq!(round_trip(b"-WRONGTYPE x\r\n", false, false), "-WRONGTYPE x\r\n");
        // A null bulk becomes false, which comes back as a null.
        assert_eq!(round_trip(b"$-1\r\n", false, false), "$-1\r\n");
        assert_eq!(round_trip(b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n", true, true), "%1\r\n$1\r\nk\r\n$1\r\nv\r\n");
        assert_eq!(round_trip(b"#f\r\n", true, true), "#f\r\n");
        assert_eq!(round_trip(b",2.5\r\n", true, true), ",2.5\r\n");
    }
}
