//! `Value`: what a key holds. Strings that are canonical integers are stored
//! as `Int` (Redis's `int` encoding); other strings as `SmallBytes`; the
//! aggregate types live behind one box each so the enum stays 24 bytes.
//!
//! JSON documents (`Json`) report the type `ReJSON-RL` (RedisJSON's module
//! type name) and the encoding `json`: a parsed tree, see `types::json`.

use super::SmallBytes;
use crate::types::hash::HashValue;
use crate::types::json::JsonDoc;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::stream::StreamValue;
use crate::types::zset::ZSet;
use crate::util::canonical_int;

#[derive(Clone)]
pub enum Value {
    Str(SmallBytes),
    Int(i64),
    Hash(Box<HashValue>),
    Json(Box<JsonDoc>),
    ZSet(Box<ZSet>),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    Stream(Box<StreamValue>),
}

impl Value {
    /// The first of two steps prefetching a lookup of `member` inside a
    /// hash, set or sorted set kept as a table (see
    /// `FieldTable::prefetch_head`).
    #[inline]
    pub fn prefetch_member(&self, member: &[u8]) -> Option<u64> {
        match self {
            Value::Hash(h) => h.prefetch_head(member),
            Value::Set(s) => s.prefetch_head(member),
            Value::ZSet(z) => z.prefetch_head(member),
            _ => None,
        }
    }

    /// The second step of `prefetch_member`.
    #[inline]
    pub fn prefetch_member_chain(&self, pos: u64) {
        match self {
            Value::Hash(h) => h.prefetch_chain(pos),
            Value::Set(s) => s.prefetch_chain(pos),
            Value::ZSet(z) => z.prefetch_chain(pos),
            _ => {}
        }
    }

    /// A string value, integer-encoded when it is the canonical text of an i64.
    pub fn string(b: &[u8]) -> Value {
        match canonical_int(b) {
            Some(n) => Value::Int(n),
            None => Value::Str(SmallBytes::new(b)),
        }
    }

    /// A string value from a command argument: a big one keeps the buffer
    /// it arrived in (no copy, no fresh pages to fault in).
    pub fn string_arg(b: &bytes::Bytes) -> Value {
        if b.len() >= crate::resp::parse::BIG_ARG {
            return Value::Str(SmallBytes::from_arg(b));
        }
        Value::string(b)
    }

    pub fn string_from_vec(v: Vec<u8>) -> Value {
        match canonical_int(&v) {
            Some(n) => Value::Int(n),
            None => Value::Str(SmallBytes::from_vec(v)),
        }
    }

    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Int(_) => "string",
            Value::Hash(_) => "hash",
            Value::Json(_) => "ReJSON-RL",
            Value::ZSet(_) => "zset",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Stream(_) => "stream",
        }
    }

    /// The name `OBJECT ENCODING` replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(s) if s.len() <= 44 => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::Json(_) => "json",
            Value::ZSet(z) => z.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// The bytes of a string value (`None` for other types). Integers are
    /// formatted into `buf`.
    #[inline]
    pub fn as_bytes<'a>(&'a self, buf: &'a mut itoa::Buffer) -> Option<&'a [u8]> {
        match self {
            Value::Str(s) => Some(s),
            Value::Int(n) => Some(buf.format(*n).as_bytes()),
            _ => None,
        }
    }

    /// A deep copy (COPY): the copy shares nothing with the original and keeps
    /// its encoding.
    pub fn duplicate(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::Int(n) => Value::Int(*n),
            Value::Hash(h) => Value::Hash(Box::new(match &**h {
                HashValue::Pairs(v) => HashValue::Pairs(v.clone()),
                HashValue::Table(m) => HashValue::Table(m.clone()),
            })),
            Value::Json(j) => Value::Json(j.clone()),
            Value::ZSet(z) => Value::ZSet(z.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Set(s) => Value::Set(s.clone()),
            Value::Stream(s) => Value::Stream(s.clone()),
        }
    }

    /// Approximate heap bytes owned by the value (for MEMORY USAGE-style
    /// estimates; `used_memory` itself comes from the allocator).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::Int(_) => 0,
            Value::Hash(h) => h.heap_size(),
            Value::Json(j) => j.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::List(l) => l.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_compact() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn integer_encoding_is_canonical_only() {
        assert!(matches!(Value::string(b"123"), Value::Int(123)));
        assert!(matches!(Value::string(b"-5"), Value::Int(-5)));
        assert!(matches!(Value::string(b"0123"), Value::Str(_)));
        assert!(matches!(Value::string(b"+1"), Value::Str(_)));
        assert!(matches!(Value::string(b"-0"), Value::Str(_)));
        assert!(matches!(Value::string(b" 1"), Value::Str(_)));
    }

    #[test]
    fn duplicate_is_deep_and_keeps_encoding() {
        let limits = crate::types::hash::HashLimits::default();
        let mut h = HashValue::default();
        h.set(b"f", b"v", limits);
        let orig = Value::Hash(Box::new(h));
        let mut copy = orig.duplicate();
        if let Value::Hash(h) = &mut copy {
            h.set(b"f", b"changed", limits);
            h.set(b"g", b"new", limits);
        }
        let Value::Hash(h) = &orig else { panic!("hash") };
        assert_eq!(h.get(b"f"), Some(&b"v"[..]));
        assert_eq!(h.len(), 1);
        assert_eq!(copy.encoding(), "listpack");
        assert!(matches!(Value::Int(7).duplicate(), Value::Int(7)));
        let long = Value::string(&[b'x'; 100]);
        assert_eq!(long.duplicate().encoding(), "raw");
    }
}
