//! Libraries Redis provides to scripts that Lua 5.1 does not ship: `bit`
//! (LuaBitOp), `cjson` (JSON), `cmsgpack` (MessagePack) and `struct`
//! (binary packing), each with the API and behaviour scripts rely on.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use mlua::Value;

/// Reads a Lua number (or a numeric string, as Lua's arithmetic coercion
/// does) as f64.
pub fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => std::str::from_utf8(&s.as_bytes()).ok().and_then(|t| t.trim().parse::<f64>().ok()),
        _ => None,
    }
}

/// "bad argument #n to 'f' (number expected, got x)", as Lua's auxiliary
/// library words it.
pub fn bad_arg(n: usize, fname: &str, expected: &str, got: &Value) -> mlua::Error {
    mlua::Error::RuntimeError(format!("bad argument #{n} to '{fname}' ({expected} expected, got {})", type_name(got)))
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        _ => "value",
    }
}
