//! The native JSON type behind the JSON.* commands: the value tree
//! (`value`), JSONPath parsing and evaluation with RedisJSON's legacy paths
//! (`path`), and the per-location update operations (`ops`). The error
//! replies RedisJSON uses are worded here once.
//!
//! # Representation
//!
//! Measured before choosing (`cargo test -p damselfly --bin damselfly
//! json_memory -- --ignored --nocapture --test-threads=1`, which counts live
//! heap bytes through the node's allocator, 1,000 copies averaged; each
//! figure includes the value's own slot): one ~1 KB e-commerce order (999
//! bytes of compact text: customer, addresses, 3 line items, totals; 63
//! nodes) costs
//!
//! | representation                                   | bytes  |
//! |--------------------------------------------------|-------:|
//! | the same text as a string value                  |  1,023 |
//! | `serde_json::Value` with `preserve_order`        | 10,913 |
//! | `Json` (this module)                             |  3,354 |
//!
//! `serde_json::Value` pays for an `IndexMap` per object (a hash index plus
//! entries that each own a heap `String` key, with growth slack) and a heap
//! `String` for every string value: 3.3 times our size. `Json` keeps objects
//! as exact-size vectors of `(SmallBytes, Json)` pairs in insertion order (56
//! bytes a member, no index), keys and strings up to 22 bytes inline, and
//! integers apart from floats, in 32-byte nodes. Member lookup is a linear
//! scan, which for the object sizes documents have (tens of members) is as
//! fast as hashing; parsing removes duplicate keys in O(n log n) for large
//! objects. The remaining ~3.3x over plain text is the price of updating
//! paths in place without re-parsing the document on every command.
//!
//! # Limits
//!
//! Nesting is limited to `value::MAX_DEPTH` (128, as RedisJSON) on input
//! and after every update; a document may use at most `value::MAX_DOC_BYTES`
//! (128 MiB). Arguments are parsed and checked before a key is touched, so
//! invalid JSON leaves it unchanged.

pub mod ops;
pub mod path;
pub mod text;
pub mod value;

pub use path::JsonPath;
pub use value::{Json, JsonDoc};

use crate::error::CmdError;

/// Error replies, worded as RedisJSON words them.
pub mod err {
    use super::*;

    pub fn path_missing(path: &str) -> CmdError {
        CmdError::Other(format!("ERR Path '{path}' does not exist"))
    }

    pub fn path_missing_plain() -> CmdError {
        CmdError::Other("ERR Path does not exist".into())
    }

    pub fn path_missing_or(what: &str) -> CmdError {
        CmdError::Other(format!("ERR Path does not exist or {what}"))
    }

    pub fn wrong_type(expected: &str, found: &Json) -> CmdError {
        CmdError::Other(format!("WRONGTYPE wrong type of path value - expected {expected} but found {}", found.type_name()))
    }

    pub fn no_key() -> CmdError {
        CmdError::Other("ERR could not perform this operation on a key that doesn't exist".into())
    }

    pub fn new_at_root() -> CmdError {
        CmdError::Other("ERR new objects must be created at the root".into())
    }

    pub fn index_out_of_bounds() -> CmdError {
        CmdError::Other("ERR index out of bounds".into())
    }

    pub fn wrong_static_path() -> CmdError {
        CmdError::Other("ERR wrong static path".into())
    }

    pub fn not_a_number() -> CmdError {
        CmdError::Other("ERR result is not a number".into())
    }

    pub fn bad_number() -> CmdError {
        CmdError::Other("ERR bad input number".into())
    }

    pub fn too_deep() -> CmdError {
        CmdError::Other("ERR recursion limit exceeded".into())
    }

    pub fn too_large() -> CmdError {
        CmdError::Other(format!("ERR JSON document exceeds the maximum size ({} bytes)", value::MAX_DOC_BYTES))
    }

    pub fn parse(e: value::ParseError) -> CmdError {
        match e {
            value::ParseError::Syntax(s) => CmdError::Other(s),
            value::ParseError::TooDeep => too_deep(),
            value::ParseError::TooLarge => too_large(),
        }
    }

    pub fn path(e: path::PathError) -> CmdError {
        CmdError::Other(e.to_string())
    }
}

/// Parses a JSON argument (never building more than the document size
/// limit); errors as RedisJSON replies them.
pub fn parse_arg(b: &[u8]) -> Result<Json, CmdError> {
    Json::parse(b).map_err(err::parse)
}

/// Parses a whole document argument (a JSON.SET at the root): canonical
/// text is kept as it is, without building a tree.
pub fn parse_doc(b: &[u8]) -> Result<JsonDoc, CmdError> {
    JsonDoc::parse(b).map_err(err::parse)
}

/// Parses a path argument.
pub fn parse_path(b: &[u8]) -> Result<JsonPath, CmdError> {
    JsonPath::parse(b).map_err(err::path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measurement quoted in the module doc. Run alone (it reads the
    /// process-wide live-bytes counter).
    #[test]
    #[ignore]
    fn json_memory() {
        let text = crate::types::json::tests::ORDER.as_bytes();
        let n = 1000;
        let live = crate::alloc::used_memory;
        let base = live();
        let strings: Vec<crate::store::Value> = (0..n).map(|_| crate::store::Value::string(text)).collect();
        let as_string = (live() - base) / n;
        drop(strings);
        let base = live();
        let serde: Vec<serde_json::Value> = (0..n).map(|_| serde_json::from_slice(text).unwrap()).collect();
        let as_serde = (live() - base) / n;
        drop(serde);
        let base = live();
        let ours: Vec<Json> = (0..n).map(|_| Json::parse(text).unwrap()).collect();
        let as_ours = (live() - base) / n;
        let nodes = count_nodes(&ours[0]);
        println!(
            "order: {} bytes of text, {nodes} nodes; string {as_string} B, serde_json::Value {as_serde} B, Json {as_ours} B (mem_size {})",
            text.len(),
            ours[0].mem_size()
        );
    }

    fn count_nodes(v: &Json) -> usize {
        1 + match v {
            Json::Array(a) => a.iter().map(count_nodes).sum(),
            Json::Object(m) => m.iter().map(|(_, x)| count_nodes(x)).sum(),
            _ => 0,
        }
    }

    /// A ~1 KB e-commerce order, as shops cache them.
    pub const ORDER: &str = r#"{"id":"order:1","created":"2026-11-02T10:15:00Z","status":"paid","customer":{"id":"cust-7731","name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"shipping":{"name":"Ada Lovelace","street":"12 Analytical Row","city":"London","zip":"N1 9GU","country":"GB","method":"express"},"billing":{"same_as_shipping":true,"card":"visa","last4":"4242"},"items":[{"sku":"SKU-1001","name":"Brass gear set","quantity":1,"price":24.5,"tags":["mechanical","brass"]},{"sku":"SKU-2002","name":"Punched card pack (500)","quantity":3,"price":9.99,"tags":["paper"]},{"sku":"SKU-3003","name":"Difference engine manual","quantity":1,"price":45.0,"tags":["book","history"]}],"subtotal":99.47,"discount":{"code":"AUTUMN10","amount":9.95},"tax":17.9,"shipping_cost":6.5,"total":113.92,"currency":"GBP","channel":"web","gift_wrap":false,"loyalty_points":113,"notes":"Leave with the concierge if nobody answers.","history":[{"at":"2026-11-02T10:15:00Z","event":"created"},{"at":"2026-11-02T10:16:12Z","event":"paid"}]}"#;
}
