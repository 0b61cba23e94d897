//! The native JSON type behind the JSON.* commands: the value tree
//! (`value`), what a key holds (`doc`), documents kept as canonical text (`text`), JSONPath
//! parsing and evaluation with RedisJSON's legacy paths (`path`), and the
//! per-location update operations (`ops`). The error
//! replies RedisJSON uses are worded here once.
//!
//! # Representation
//!
//! A document lives in one of two forms (`doc::JsonDoc`):
//!
//! - **Text**: a document written whole (JSON.SET/MSET at the root, RDB
//!   load, RESTORE) of at most `text::TEXT_MAX` (16 KiB) compact bytes is
//!   kept as its canonical text, one exact-size allocation. `text` checks
//!   canonical form in one pass without building anything; non-canonical
//!   input (whitespace, `1E2`, `\/`, duplicate keys) is parsed and printed
//!   back once. JSON.GET/JSON.MGET of the whole document or of a static path
//!   (names and indexes only) reply with a slice of the text; other paths
//!   and INDENT/NEWLINE/SPACE read a temporary tree.
//! - **Tree** (`value::Json`): 32-byte nodes, objects as exact-size vectors
//!   of `(SmallBytes, Json)` pairs in insertion order (56 bytes a member, no
//!   index), keys and strings up to 22 bytes inline, integers apart from
//!   floats. JSON.SET, NUMINCRBY/NUMMULTBY, STRAPPEND, TOGGLE, ARRAPPEND,
//!   ARRINSERT and DEL of a static path edit a text document's text
//!   (splicing in or cutting out canonical text, one copy of at most
//!   16 KiB; the JSON commands' `in_text`). Any other update parses the text
//!   into a tree, updates that, and prints it back (the JSON commands'
//!   `Editing` guard, `JsonDoc::settle`), so a document of at most 16 KiB
//!   is text at rest whatever wrote it; only larger documents are kept as
//!   trees, whose in-place updates serve them. (A tree that an update
//!   shrinks below 16 KiB stays a tree until it is written whole, restored
//!   or loaded: only documents compact before an update are printed, so a
//!   write to a large tree never pays for printing it.) Reads never change the form: they read
//!   the text, or a temporary tree of the value a static path selects (of
//!   the whole document for other paths), dropped after the reply.
//!
//! Bytes a document uses (`JSON.DEBUG MEMORY` of its root; exact
//! allocation sizes, since texts and vectors are allocated at their exact
//! length; checked by `tests::document_sizes`), against the same text as a
//! `serde_json::Value` with `preserve_order` (measured with a counting
//! allocator when the tree form was chosen). The tree column counts the
//! nodes; JSON.DEBUG MEMORY of a tree document adds the 8 bytes the
//! 40-byte header holds beyond the root node:
//!
//! | document                           | text form | tree form | `serde_json::Value` |
//! |------------------------------------|----------:|----------:|--------------------:|
//! | 236-byte order (issue #21)         |       276 |     1,048 |                   - |
//! | 999-byte order (`tests::ORDER`)    |     1,039 |     3,354 |              10,913 |
//!
//! Per key in a server (bench/json.sh, docs/BENCHMARKS-json.md) the 236-byte
//! order costs 345 bytes of used_memory and 385 of RSS as text, also after
//! a JSON.TYPE or a JSON.STRAPPEND per key, against RedisJSON's 819 and 841
//! (the tree cost 1,129 and 1,480); the 1,880-byte product 1,992 and 2,180
//! against 4,043 and 4,123 (as a tree 6,391 and 8,177). Writes that parse
//! and print cost about 2 us more CPU than the tree's in-place updates on
//! the order; static-path STRAPPEND, TOGGLE, ARRINSERT, DEL and MERGE edit
//! the text instead, at 1.9 to 2.5 us a request at -P 16 against
//! RedisJSON's 1.9 to 3.0.
//! Member lookup in the tree is a linear scan, which for the object sizes
//! documents have (tens of members) is as fast as hashing; parsing removes
//! duplicate keys in O(n log n) for large objects.
//!
//! # Limits
//!
//! Nesting is limited to `value::MAX_DEPTH` (128, as RedisJSON) on input
//! and after every update; a document may use at most `value::MAX_DOC_BYTES`
//! (128 MiB). Arguments are parsed and checked before a key is touched, so
//! invalid JSON leaves it unchanged.

pub mod doc;
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

    /// The sizes quoted in the module doc.
    #[test]
    fn document_sizes() {
        for (text, as_text, as_tree, nodes) in [(SMALL_ORDER, 276, 1048, 20), (ORDER, 1039, 3354, 63)] {
            let doc = JsonDoc::parse(text.as_bytes()).unwrap();
            assert!(doc.text().is_some());
            assert_eq!(doc.heap_size(), as_text);
            let tree = doc.view();
            assert_eq!(tree.mem_size(), as_tree);
            assert_eq!(count_nodes(&tree), nodes);
        }
    }

    fn count_nodes(v: &Json) -> usize {
        1 + match v {
            Json::Array(a) => a.iter().map(count_nodes).sum(),
            Json::Object(m) => m.iter().map(|(_, x)| count_nodes(x)).sum(),
            _ => 0,
        }
    }

    /// The order document of issue #21 (236 bytes).
    pub const SMALL_ORDER: &str = r#"{"id":"o1","user":"u42","status":"paid","items":[{"id":"001","name":"Laptop","quantity":1,"price":1799.99},{"id":"002","name":"Mouse","quantity":2,"price":25.5}],"shipping":{"city":"Berlin","zip":"10115","express":true},"total":1850.99}"#;

    /// A ~1 KB e-commerce order, as shops cache them.
    pub const ORDER: &str = r#"{"id":"order:1","created":"2026-11-02T10:15:00Z","status":"paid","customer":{"id":"cust-7731","name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"shipping":{"name":"Ada Lovelace","street":"12 Analytical Row","city":"London","zip":"N1 9GU","country":"GB","method":"express"},"billing":{"same_as_shipping":true,"card":"visa","last4":"4242"},"items":[{"sku":"SKU-1001","name":"Brass gear set","quantity":1,"price":24.5,"tags":["mechanical","brass"]},{"sku":"SKU-2002","name":"Punched card pack (500)","quantity":3,"price":9.99,"tags":["paper"]},{"sku":"SKU-3003","name":"Difference engine manual","quantity":1,"price":45.0,"tags":["book","history"]}],"subtotal":99.47,"discount":{"code":"AUTUMN10","amount":9.95},"tax":17.9,"shipping_cost":6.5,"total":113.92,"currency":"GBP","channel":"web","gift_wrap":false,"loyalty_points":113,"notes":"Leave with the concierge if nobody answers.","history":[{"at":"2026-11-02T10:15:00Z","event":"created"},{"at":"2026-11-02T10:16:12Z","event":"paid"}]}"#;
}
