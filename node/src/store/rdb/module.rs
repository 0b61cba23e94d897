//! Module values (RDB_TYPE_MODULE_2): a 64-bit module type ID (a 9-character
//! name in Redis's 6-bit charset, then a 10-bit encoding version), then
//! what the module saved, each item preceded by its kind (unsigned, signed,
//! float, double, string) and closed by an EOF marker. The one module type
//! we hold is RedisJSON's `ReJSON-RL`: encoding version 3 (what RedisJSON
//! 2.x writes: the document as one JSON text), also read in versions 2 and
//! 0 (RedisJSON 1.x's node-by-node form). Module AUX records are read past.

use super::decode::{read_binary_double, read_len, read_string};
use super::encode::{put_len, put_string_with};
use super::input::Input;
use super::RdbError;
use crate::store::{SmallBytes, Value};
use crate::types::json::{Json, JsonDoc};

const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub const JSON_TYPE_NAME: &str = "ReJSON-RL";
/// The encoding version written (RedisJSON 2.x's).
pub const JSON_ENCVER: u64 = 3;

mod op {
    pub const EOF: u64 = 0;
    pub const SINT: u64 = 1;
    pub const UINT: u64 = 2;
    pub const FLOAT: u64 = 3;
    pub const DOUBLE: u64 = 4;
    pub const STRING: u64 = 5;
}

/// The module type ID of `name` (9 characters of the charset) at `encver`.
pub fn module_id(name: &str, encver: u64) -> u64 {
    let mut id = 0u64;
    for c in name.bytes() {
        let i = CHARSET.iter().position(|&x| x == c).unwrap_or(0) as u64;
        id = (id << 6) | i;
    }
    (id << 10) | (encver & 1023)
}

/// The name in a module type ID.
pub fn module_name(id: u64) -> String {
    (0..9).map(|i| CHARSET[((id >> (10 + 6 * (8 - i))) & 63) as usize] as char).collect()
}

pub fn write_json(out: &mut Vec<u8>, doc: &JsonDoc, compress: bool) {
    put_len(out, module_id(JSON_TYPE_NAME, JSON_ENCVER));
    put_len(out, op::STRING);
    put_string_with(out, &doc.to_text(), compress);
    put_len(out, op::EOF);
}

fn expect<I: Input + ?Sized>(inp: &mut I, want: u64) -> Result<(), RdbError> {
    let got = read_len(inp)?;
    if got != want {
        return Err(inp.corrupt(format!("module value: expected item kind {want}, found {got}")));
    }
    Ok(())
}

fn parse_json(at: u64, text: &[u8]) -> Result<JsonDoc, RdbError> {
    JsonDoc::parse(text).map_err(|e| RdbError::corrupt(at, format!("invalid JSON document: {e:?}")))
}

/// A module value; only RedisJSON's type is known.
pub fn read_module_value<I: Input + ?Sized>(inp: &mut I, key: &[u8]) -> Result<Value, RdbError> {
    let id = read_len(inp)?;
    let (name, encver) = (module_name(id), id & 1023);
    // A value we cannot hold is read past before it is refused, so a
    // reader may go on with the next record.
    if name != JSON_TYPE_NAME {
        skip_module_items(inp)?;
        return Err(RdbError::UnsupportedType { key: key.to_vec(), type_name: name });
    }
    let doc = match encver {
        2 | 3 => {
            expect(inp, op::STRING)?;
            let at = inp.offset();
            let text = read_string(inp)?;
            if encver == 2 {
                // A RediSearch index hint some 2.0 versions wrote after it.
                expect(inp, op::UINT)?;
                if read_len(inp)? > 0 {
                    expect(inp, op::STRING)?;
                    read_string(inp)?;
                    expect(inp, op::STRING)?;
                    read_string(inp)?;
                }
            }
            parse_json(at, &text)?
        }
        0 => JsonDoc::from_tree(read_v0_node(inp, 0)?),
        v => {
            skip_module_items(inp)?;
            return Err(RdbError::UnsupportedType { key: key.to_vec(), type_name: format!("{JSON_TYPE_NAME} (encoding version {v})") });
        }
    };
    expect(inp, op::EOF)?;
    Ok(Value::Json(Box::new(doc)))
}

fn read_uint<I: Input + ?Sized>(inp: &mut I) -> Result<u64, RdbError> {
    expect(inp, op::UINT)?;
    read_len(inp)
}

fn read_utf8<I: Input + ?Sized>(inp: &mut I) -> Result<SmallBytes, RdbError> {
    expect(inp, op::STRING)?;
    let at = inp.offset();
    let s = read_string(inp)?;
    if std::str::from_utf8(&s).is_err() {
        return Err(RdbError::corrupt(at, "JSON string is not UTF-8"));
    }
    Ok(SmallBytes::from_vec(s))
}

/// One node of RedisJSON 1.x's form: a type flag, then its content.
fn read_v0_node<I: Input + ?Sized>(inp: &mut I, depth: usize) -> Result<Json, RdbError> {
    if depth > crate::types::json::value::MAX_DEPTH {
        return Err(inp.corrupt("JSON document nested too deep"));
    }
    Ok(match read_uint(inp)? {
        0x1 => Json::Null,
        0x2 => Json::Str(read_utf8(inp)?),
        0x4 => {
            expect(inp, op::DOUBLE)?;
            let d = read_binary_double(inp)?;
            if !d.is_finite() {
                return Err(inp.corrupt("JSON number is not finite"));
            }
            Json::Float(d)
        }
        0x8 => {
            expect(inp, op::SINT)?;
            Json::Int(read_len(inp)? as i64)
        }
        0x10 => {
            expect(inp, op::STRING)?;
            Json::Bool(read_string(inp)?.first() == Some(&b'1'))
        }
        0x20 => {
            let n = read_uint(inp)?;
            inp.check_count(n, 4)?;
            let mut members: Vec<(SmallBytes, Json)> = Vec::new();
            for _ in 0..n {
                if read_uint(inp)? != 0x80 {
                    return Err(inp.corrupt("JSON object member expected"));
                }
                let k = read_utf8(inp)?;
                let v = read_v0_node(inp, depth + 1)?;
                match members.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(slot) => slot.1 = v,
                    None => members.push((k, v)),
                }
            }
            Json::Object(members)
        }
        0x40 => {
            let n = read_uint(inp)?;
            inp.check_count(n, 2)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(read_v0_node(inp, depth + 1)?);
            }
            Json::Array(items)
        }
        t => return Err(inp.corrupt(format!("unknown JSON node type {t}"))),
    })
}

/// Reads past one module value's items up to its EOF marker.
pub fn skip_module_items<I: Input + ?Sized>(inp: &mut I) -> Result<(), RdbError> {
    loop {
        match read_len(inp)? {
            op::EOF => return Ok(()),
            op::SINT | op::UINT => {
                read_len(inp)?;
            }
            op::FLOAT => {
                inp.array::<4>()?;
            }
            op::DOUBLE => {
                inp.array::<8>()?;
            }
            op::STRING => {
                read_string(inp)?;
            }
            k => return Err(inp.corrupt(format!("unknown module item kind {k}"))),
        }
    }
}

/// Reads past a module AUX record (after its opcode): module ID, when it
/// was saved, then the module's items.
pub fn skip_module_aux<I: Input + ?Sized>(inp: &mut I) -> Result<(), RdbError> {
    let _id = read_len(inp)?;
    if read_len(inp)? != op::UINT {
        return Err(inp.corrupt("module AUX record without its 'when' field"));
    }
    read_len(inp)?;
    skip_module_items(inp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_ids() {
        let id = module_id(JSON_TYPE_NAME, 3);
        assert_eq!(module_name(id), JSON_TYPE_NAME);
        assert_eq!(id & 1023, 3);
    }
}
