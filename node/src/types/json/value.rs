//! The JSON value tree: `Json` (one node); `doc` has what a key holds.
//!
//! Owns parsing (serde_json's tokenizer driving our own visitor, with the
//! nesting-depth limit), serialisation (compact and RedisJSON's
//! INDENT/NEWLINE/SPACE formatting), equality as RedisJSON defines it and
//! memory accounting.
//!
//! Representation: objects are vectors of `(key, value)` pairs in insertion
//! order, strings and keys are `SmallBytes` (up to 22 bytes inline), numbers
//! keep the integer/float distinction (`Int(i64)` / `Float(f64)`). A node is
//! 32 bytes. See `types::json` for the measurements behind this choice.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::types::SmallBytes;

pub use super::doc::{JsonDoc, MAX_DOC_BYTES};

/// Deepest nesting of arrays/objects a document may have (RedisJSON's limit).
pub const MAX_DEPTH: usize = 128;

pub type Members = Vec<(SmallBytes, Json)>;

/// One JSON node.
#[derive(Clone, Debug)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Always valid UTF-8 (checked on the way in).
    Str(SmallBytes),
    Array(Vec<Json>),
    /// Members in insertion order; keys are unique.
    Object(Members),
}

/// Why a JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not JSON; serde_json's description ("expected value at
    /// line 1 column 1").
    Syntax(String),
    /// Nested deeper than `MAX_DEPTH`.
    TooDeep,
    /// Would use more than the document size limit.
    TooLarge,
}

impl Json {
    /// Parses one JSON text (surrounding whitespace allowed, nothing else)
    /// into a tree of at most `MAX_DOC_BYTES`.
    pub fn parse(text: &[u8]) -> Result<Json, ParseError> {
        Json::parse_limited(text, MAX_DOC_BYTES)
    }

    /// Parses with a memory budget: parsing stops as soon as the tree would
    /// use more than `limit` bytes, so no input can make it allocate more.
    pub fn parse_limited(text: &[u8], limit: usize) -> Result<Json, ParseError> {
        let st = ParseState { too_deep: Cell::new(false), left: Cell::new(Some(limit)) };
        let mut de = serde_json::Deserializer::from_slice(text);
        de.disable_recursion_limit();
        let v = Seed { depth: 0, st: &st }.deserialize(&mut de).map_err(|e| {
            if st.too_deep.get() {
                ParseError::TooDeep
            } else if st.left.get().is_none() {
                ParseError::TooLarge
            } else {
                ParseError::Syntax(e.to_string())
            }
        })?;
        de.end().map_err(|e| ParseError::Syntax(e.to_string()))?;
        Ok(v)
    }

    /// The type name JSON.TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Int(_) => "integer",
            Json::Float(_) => "number",
            Json::Str(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Json::Int(_) | Json::Float(_))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Int(n) => Some(*n as f64),
            Json::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The member `key` of an object, with its position.
    pub fn member(&self, key: &[u8]) -> Option<(usize, &Json)> {
        match self {
            Json::Object(m) => m.iter().enumerate().find(|(_, (k, _))| &**k == key).map(|(i, (_, v))| (i, v)),
            _ => None,
        }
    }

    pub fn child_mut(&mut self, pos: usize) -> Option<&mut Json> {
        match self {
            Json::Array(a) => a.get_mut(pos),
            Json::Object(m) => m.get_mut(pos).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Nesting depth: 0 for a scalar, 1 for `[]` or `[1]`, 2 for `[[1]]`.
    pub fn depth(&self) -> usize {
        match self {
            Json::Array(a) => 1 + a.iter().map(Json::depth).max().unwrap_or(0),
            Json::Object(m) => 1 + m.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Equality as RedisJSON's ARRINDEX defines it: same type and value;
    /// integers never equal floats; objects equal regardless of key order.
    pub fn same(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Int(a), Json::Int(b)) => a == b,
            (Json::Float(a), Json::Float(b)) => a == b,
            (Json::Str(a), Json::Str(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)),
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.member(k).is_some_and(|(_, w)| v.same(w)))
            }
            _ => false,
        }
    }

    /// Bytes this node uses: its own 32 bytes plus everything it owns.
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<Json>() + self.heap_size()
    }

    /// Heap bytes owned by this node (children included).
    pub fn heap_size(&self) -> usize {
        match self {
            Json::Str(s) => s.heap_size(),
            Json::Array(a) => a.capacity() * std::mem::size_of::<Json>() + a.iter().map(Json::heap_size).sum::<usize>(),
            Json::Object(m) => {
                m.capacity() * std::mem::size_of::<(SmallBytes, Json)>()
                    + m.iter().map(|(k, v)| k.heap_size() + v.heap_size()).sum::<usize>()
            }
            _ => 0,
        }
    }

    /// Compact JSON text.
    pub fn to_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, &Format::COMPACT);
        out
    }

    /// Appends the JSON text of this node, formatted per `fmt`.
    pub fn write(&self, out: &mut Vec<u8>, fmt: &Format) {
        write_value(self, out, fmt, 0);
    }
}

/// RedisJSON's output formatting options (JSON.GET INDENT / NEWLINE / SPACE).
#[derive(Clone, Copy, Debug, Default)]
pub struct Format<'a> {
    pub indent: &'a [u8],
    pub newline: &'a [u8],
    pub space: &'a [u8],
}

impl Format<'_> {
    pub const COMPACT: Format<'static> = Format { indent: b"", newline: b"", space: b"" };

    pub fn is_compact(&self) -> bool {
        self.indent.is_empty() && self.newline.is_empty() && self.space.is_empty()
    }

    /// A line break followed by `level` indents.
    pub fn line(&self, out: &mut Vec<u8>, level: usize) {
        out.extend_from_slice(self.newline);
        for _ in 0..level {
            out.extend_from_slice(self.indent);
        }
    }
}

/// Writes a sequence of values as one JSON array (the reply of `$` paths).
pub fn write_array<'a>(items: impl ExactSizeIterator<Item = &'a Json>, out: &mut Vec<u8>, fmt: &Format) {
    write_seq(items.map(Item::Value), out, fmt, 0);
}

/// An element of a reply array: a value or `null` (a match of the wrong type).
pub enum Item<'a> {
    Value(&'a Json),
    Null,
}

/// Writes an array of optional values (`null` for `None`).
pub fn write_items<'a>(items: impl ExactSizeIterator<Item = Item<'a>>, out: &mut Vec<u8>, fmt: &Format) {
    write_seq(items, out, fmt, 0);
}

/// Writes an array of items whose opening bracket is at nesting `level`.
pub fn write_seq<'a>(items: impl ExactSizeIterator<Item = Item<'a>>, out: &mut Vec<u8>, fmt: &Format, level: usize) {
    out.push(b'[');
    let empty = items.len() == 0;
    for (i, it) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        fmt.line(out, level + 1);
        match it {
            Item::Value(v) => write_value(v, out, fmt, level + 1),
            Item::Null => out.extend_from_slice(b"null"),
        }
    }
    if !empty {
        fmt.line(out, level);
    }
    out.push(b']');
}

/// Writes `v` at nesting `level` (for the indentation of what follows).
pub fn write_value(v: &Json, out: &mut Vec<u8>, fmt: &Format, level: usize) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Json::Float(f) => write_float(*f, out),
        Json::Str(s) => write_str(s, out),
        Json::Array(a) => {
            if fmt.is_compact() {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_value(x, out, fmt, level + 1);
                }
                out.push(b']');
            } else {
                write_seq(a.iter().map(Item::Value), out, fmt, level);
            }
        }
        Json::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                fmt.line(out, level + 1);
                write_str(k, out);
                out.push(b':');
                out.extend_from_slice(fmt.space);
                write_value(x, out, fmt, level + 1);
            }
            if !m.is_empty() {
                fmt.line(out, level);
            }
            out.push(b'}');
        }
    }
}

/// Writes `v`'s compact text unless it would be longer than `limit` bytes
/// (counting what `out` already holds); false, with `out` partly written,
/// once it passes. Stops early, so a large tree costs at most about `limit`
/// bytes of printing.
pub fn write_compact_within(v: &Json, out: &mut Vec<u8>, limit: usize) -> bool {
    let comma = |out: &mut Vec<u8>, i: usize| {
        if i > 0 {
            out.push(b',');
        }
    };
    match v {
        // A string's text is at least as long as its bytes.
        Json::Str(s) if out.len() + s.len() > limit => return false,
        Json::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                comma(out, i);
                if !write_compact_within(x, out, limit) {
                    return false;
                }
            }
            out.push(b']');
        }
        Json::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                comma(out, i);
                if out.len() + k.len() > limit {
                    return false;
                }
                write_str(k, out);
                out.push(b':');
                if !write_compact_within(x, out, limit) {
                    return false;
                }
            }
            out.push(b'}');
        }
        _ => write_value(v, out, &Format::COMPACT, 0),
    }
    out.len() <= limit
}

/// A float as serde_json writes it: shortest round-trip form, always with a
/// fraction or exponent (`2.0`, `1e20`); non-finite values (never stored)
/// as `null`.
pub fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A JSON string literal with serde_json's escaping.
pub fn write_str(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Removes duplicate keys from freshly parsed members: the first position
/// keeps the last value, as serde_json's ordered map does.
fn dedup_members(m: &mut Members) {
    if m.len() < 2 {
        return;
    }
    let dup_at: Vec<(usize, usize)> = if m.len() <= 16 {
        let mut v = Vec::new();
        for j in 1..m.len() {
            if let Some(i) = (0..j).find(|&i| m[i].0 == m[j].0) {
                v.push((i, j));
            }
        }
        v
    } else {
        let mut idx: Vec<usize> = (0..m.len()).collect();
        idx.sort_by(|&a, &b| m[a].0.cmp(&m[b].0).then(a.cmp(&b)));
        let mut v = Vec::new();
        let mut first = idx[0];
        for w in idx.windows(2) {
            if m[w[0]].0 == m[w[1]].0 {
                v.push((first, w[1]));
            } else {
                first = w[1];
            }
        }
        v
    };
    if dup_at.is_empty() {
        return;
    }
    let mut drop = vec![false; m.len()];
    for &(keep, dup) in &dup_at {
        drop[dup] = true;
        // Later duplicates are visited in increasing order, so the last
        // value wins.
        let v = std::mem::replace(&mut m[dup].1, Json::Null);
        m[keep].1 = v;
    }
    let mut i = 0;
    m.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
}

struct ParseState {
    too_deep: Cell<bool>,
    /// Bytes the tree may still use; `None` once exhausted.
    left: Cell<Option<usize>>,
}

impl ParseState {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().and_then(|l| l.checked_sub(bytes)) {
            Some(l) => {
                self.left.set(Some(l));
                Ok(())
            }
            None => {
                self.left.set(None);
                Err(E::custom("document too large"))
            }
        }
    }
}

/// Heap bytes a parsed string will own (short ones are inline).
fn str_cost(len: usize) -> usize {
    if len > 22 {
        len
    } else {
        0
    }
}

struct Seed<'c> {
    depth: usize,
    st: &'c ParseState,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed<'_> {
    fn nested<E: de::Error>(&self) -> Result<Seed<'_>, E> {
        if self.depth >= MAX_DEPTH {
            self.st.too_deep.set(true);
            return Err(E::custom("recursion limit exceeded"));
        }
        Ok(Seed { depth: self.depth + 1, st: self.st })
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        // Integers beyond i64 are kept as floats.
        Ok(i64::try_from(n).map(Json::Int).unwrap_or(Json::Float(n as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Json, E> {
        Ok(Json::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        self.st.charge(str_cost(s.len()))?;
        Ok(Json::Str(SmallBytes::new(s.as_bytes())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        self.st.charge(str_cost(s.len()))?;
        Ok(Json::Str(SmallBytes::from_vec(s.into_bytes())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let inner = self.nested()?;
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element_seed(Seed { depth: inner.depth, st: inner.st })? {
            self.st.charge(std::mem::size_of::<Json>())?;
            v.push(x);
        }
        v.shrink_to_fit();
        Ok(Json::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let inner = self.nested()?;
        let mut m = Members::new();
        while let Some(k) = map.next_key::<KeyBytes>()? {
            self.st.charge(std::mem::size_of::<(SmallBytes, Json)>() + str_cost(k.0.len()))?;
            let v = map.next_value_seed(Seed { depth: inner.depth, st: inner.st })?;
            m.push((k.0, v));
        }
        dedup_members(&mut m);
        m.shrink_to_fit();
        Ok(Json::Object(m))
    }
}

/// An object key, straight into `SmallBytes`.
struct KeyBytes(SmallBytes);

impl<'de> de::Deserialize<'de> for KeyBytes {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyBytes, E> {
                Ok(KeyBytes(SmallBytes::new(s.as_bytes())))
            }
            fn visit_string<E>(self, s: String) -> Result<KeyBytes, E> {
                Ok(KeyBytes(SmallBytes::from_vec(s.into_bytes())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Json {
        Json::parse(s.as_bytes()).unwrap()
    }

    fn text(v: &Json) -> String {
        String::from_utf8(v.to_text()).unwrap()
    }

    #[test]
    fn node_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Json>(), 32);
    }

    #[test]
    fn parse_and_print_round_trip() {
        for s in [
            "null",
            "true",
            "false",
            "0",
            "-12",
            "1.5",
            "2.0",
            "1e20",
            "\"a\\\"b\\\\c\\n\\u0001\"",
            "[]",
            "{}",
            "[1,[2,[3]],{\"a\":{}}]",
            "{\"b\":1,\"a\":2}",
            "\"héllo ✓\"",
        ] {
            assert_eq!(text(&p(s)), s, "{s}");
        }
        assert_eq!(text(&p(" { \"a\" : [ 1 , 2 ] } ")), "{\"a\":[1,2]}");
        assert_eq!(text(&p("1E2")), "100.0");
        assert_eq!(text(&p("\"\\/\"")), "\"/\"");
        assert_eq!(text(&p("9223372036854775807")), "9223372036854775807");
        assert_eq!(text(&p("18446744073709551615")), "1.8446744073709552e19");
    }

    #[test]
    fn integers_and_floats_stay_distinct() {
        assert!(matches!(p("3"), Json::Int(3)));
        assert!(matches!(p("3.0"), Json::Float(_)));
        assert!(!p("3").same(&p("3.0")));
        assert!(p("{\"a\":1,\"b\":[true]}").same(&p("{\"b\":[true],\"a\":1}")));
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        assert_eq!(text(&p("{\"a\":1,\"b\":2,\"a\":3}")), "{\"a\":3,\"b\":2}");
        let mut s = String::from("{");
        for i in 0..40 {
            s.push_str(&format!("\"k{}\":{},", i % 20, i));
        }
        s.push_str("\"z\":0}");
        let v = p(&s);
        let Json::Object(m) = &v else { panic!() };
        assert_eq!(m.len(), 21);
        assert_eq!(&*m[0].0, b"k0");
        assert!(matches!(m[0].1, Json::Int(20)));
    }

    #[test]
    fn invalid_text_and_depth() {
        assert_eq!(Json::parse(b"{bad").unwrap_err(), ParseError::Syntax("key must be a string at line 1 column 2".into()));
        assert!(matches!(Json::parse(b""), Err(ParseError::Syntax(_))));
        assert!(matches!(Json::parse(b"1 2"), Err(ParseError::Syntax(_))));
        assert!(matches!(Json::parse(b"\"\xff\""), Err(ParseError::Syntax(_))));
        assert!(matches!(Json::parse(b"NaN"), Err(ParseError::Syntax(_))));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(p(&ok).depth(), MAX_DEPTH);
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(Json::parse(deep.as_bytes()).unwrap_err(), ParseError::TooDeep);
        // Far deeper input fails the same way instead of overflowing the stack.
        let huge = "{\"a\":".repeat(100_000);
        assert_eq!(Json::parse(huge.as_bytes()).unwrap_err(), ParseError::TooDeep);
    }

    #[test]
    fn parsing_stops_at_the_size_budget() {
        let text = format!("[{}0]", "0,".repeat(1000));
        assert!(Json::parse_limited(text.as_bytes(), 1001 * 32).is_ok());
        assert_eq!(Json::parse_limited(text.as_bytes(), 1000 * 32).unwrap_err(), ParseError::TooLarge);
        let long = format!("{{\"k\":\"{}\"}}", "x".repeat(100));
        assert!(Json::parse_limited(long.as_bytes(), 56 + 100).is_ok());
        assert_eq!(Json::parse_limited(long.as_bytes(), 56 + 99).unwrap_err(), ParseError::TooLarge);
    }

    #[test]
    fn formatting_options() {
        let v = p("{\"a\":[1,2],\"b\":{},\"c\":[]}");
        let mut out = Vec::new();
        v.write(&mut out, &Format { indent: b"\t", newline: b"\n", space: b" " });
        assert_eq!(String::from_utf8(out).unwrap(), "{\n\t\"a\": [\n\t\t1,\n\t\t2\n\t],\n\t\"b\": {},\n\t\"c\": []\n}");
        let mut out = Vec::new();
        v.write(&mut out, &Format { indent: b"", newline: b"", space: b" " });
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\": [1,2],\"b\": {},\"c\": []}");
        let mut out = Vec::new();
        write_array([&v].into_iter(), &mut out, &Format { indent: b" ", newline: b"\n", space: b"" });
        assert_eq!(String::from_utf8(out).unwrap(), "[\n {\n  \"a\":[\n   1,\n   2\n  ],\n  \"b\":{},\n  \"c\":[]\n }\n]");
    }
}
