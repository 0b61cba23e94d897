//! Reading: RDB lengths, strings in every encoding (raw, integer, LZF),
//! doubles (binary and the old text form), and the object encodings of
//! strings, lists, sets, hashes and sorted sets, current and legacy, into
//! our value types (built through their own constructors, so they take the
//! encodings the configured limits give them). Streams and modules are in
//! their own files.

use std::collections::HashSet;

use super::input::{Input, SliceInput};
use super::listpack::{read_intset, read_listpack, read_ziplist, Elem};
use super::{types, RdbError};
use crate::store::Value;
use crate::types::hash::{HashLimits, HashValue};
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::zset::{ZLimits, ZSet};

pub use crate::types::Limits;

/// A length, or the marker of a specially encoded string.
pub enum Len {
    Len(u64),
    Enc(u8),
}

pub fn read_len_or_enc<I: Input + ?Sized>(inp: &mut I) -> Result<Len, RdbError> {
    let b = inp.u8()?;
    Ok(match b >> 6 {
        0 => Len::Len((b & 0x3f) as u64),
        1 => Len::Len((((b & 0x3f) as u64) << 8) | inp.u8()? as u64),
        2 => match b {
            0x80 => Len::Len(u32::from_be_bytes(inp.array()?) as u64),
            0x81 => Len::Len(u64::from_be_bytes(inp.array()?)),
            _ => return Err(inp.corrupt(format!("unknown length encoding 0x{b:02x}"))),
        },
        _ => Len::Enc(b & 0x3f),
    })
}

pub fn read_len<I: Input + ?Sized>(inp: &mut I) -> Result<u64, RdbError> {
    match read_len_or_enc(inp)? {
        Len::Len(n) => Ok(n),
        Len::Enc(_) => Err(inp.corrupt("a string encoding where a length was expected")),
    }
}

/// A string in any of its encodings (integers come back as their text).
pub fn read_string<I: Input + ?Sized>(inp: &mut I) -> Result<Vec<u8>, RdbError> {
    match read_len_or_enc(inp)? {
        Len::Len(n) => inp.read_vec(n),
        Len::Enc(0) => Ok(itoa::Buffer::new().format(inp.u8()? as i8).as_bytes().to_vec()),
        Len::Enc(1) => Ok(itoa::Buffer::new().format(i16::from_le_bytes(inp.array()?)).as_bytes().to_vec()),
        Len::Enc(2) => Ok(itoa::Buffer::new().format(i32::from_le_bytes(inp.array()?)).as_bytes().to_vec()),
        Len::Enc(3) => {
            let clen = read_len(inp)?;
            let len = read_len(inp)?;
            // One LZF back-reference of 3 bytes expands to at most 264.
            if len == 0 || clen == 0 || len > clen.saturating_mul(88).saturating_add(32) {
                return Err(inp.corrupt(format!("LZF string of {clen} bytes claims {len} bytes uncompressed")));
            }
            let at = inp.offset();
            let c = inp.read_vec(clen)?;
            match lzf::decompress(&c, len as usize) {
                Ok(v) if v.len() as u64 == len => Ok(v),
                _ => Err(RdbError::corrupt(at, "invalid LZF-compressed string")),
            }
        }
        Len::Enc(e) => Err(inp.corrupt(format!("unknown string encoding {e}"))),
    }
}

pub fn read_binary_double<I: Input + ?Sized>(inp: &mut I) -> Result<f64, RdbError> {
    Ok(f64::from_le_bytes(inp.array()?))
}

/// The text form of a double (RDB_TYPE_ZSET): a length byte (253 NaN,
/// 254 +inf, 255 -inf) then that many characters.
fn read_text_double<I: Input + ?Sized>(inp: &mut I) -> Result<f64, RdbError> {
    match inp.u8()? {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => {
            let mut buf = [0u8; 255];
            inp.read_into(&mut buf[..n as usize])?;
            parse_double(&buf[..n as usize]).ok_or_else(|| inp.corrupt("invalid double"))
        }
    }
}

/// A double written as text (also listpack scores): what strtod accepts
/// of what Redis writes.
pub fn parse_double(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    match s {
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ if s.is_empty() || s.bytes().any(|c| !matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) => None,
        _ => s.parse().ok(),
    }
}

/// A blob string decoded in place (listpacks, intsets, ziplists).
fn with_blob<I: Input + ?Sized, T>(inp: &mut I, what: &str, f: impl FnOnce(&[u8]) -> Result<T, &'static str>) -> Result<T, RdbError> {
    let at = inp.offset();
    let b = read_string(inp)?;
    f(&b).map_err(|e| RdbError::corrupt(at, format!("{what}: {e}")))
}

/// The value of type `rdb_type` next in `inp`; `None` for an empty
/// aggregate (Redis skips such keys when loading).
pub fn read_object<I: Input + ?Sized>(inp: &mut I, rdb_type: u8, key: &[u8], limits: Limits) -> Result<Option<Value>, RdbError> {
    let v = match rdb_type {
        types::STRING => Value::string_from_vec(read_string(inp)?),
        types::LIST => {
            let n = read_len(inp)?;
            inp.check_count(n, 1)?;
            let mut l = ListValue::new(limits.list);
            for _ in 0..n {
                l.push(false, &read_string(inp)?);
            }
            Value::List(Box::new(l))
        }
        types::LIST_ZIPLIST => {
            let mut l = ListValue::new(limits.list);
            with_blob(inp, "list ziplist", |b| {
                read_ziplist(b)?.iter().for_each(|e| l.push(false, e.bytes(&mut itoa::Buffer::new())));
                Ok(())
            })?;
            Value::List(Box::new(l))
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            Value::List(Box::new(read_quicklist(inp, rdb_type == types::LIST_QUICKLIST_2, limits)?))
        }
        types::SET => {
            let n = read_len(inp)?;
            inp.check_count(n, 1)?;
            let mut s = SetValue::default();
            for _ in 0..n {
                if !s.add(&read_string(inp)?, limits.set) {
                    return Err(inp.corrupt("duplicate set member"));
                }
            }
            Value::Set(Box::new(s))
        }
        types::SET_INTSET => {
            let mut s = SetValue::default();
            with_blob(inp, "intset", |b| {
                read_intset(b)?.iter().for_each(|&v| {
                    s.add(itoa::Buffer::new().format(v).as_bytes(), limits.set);
                });
                Ok(())
            })?;
            Value::Set(Box::new(s))
        }
        types::SET_LISTPACK => {
            let mut s = SetValue::default();
            with_blob(inp, "set listpack", |b| {
                for e in read_listpack(b)? {
                    if !s.add(e.bytes(&mut itoa::Buffer::new()), limits.set) {
                        return Err("duplicate set member");
                    }
                }
                Ok(())
            })?;
            Value::Set(Box::new(s))
        }
        types::HASH => {
            let n = read_len(inp)?;
            inp.check_count(n, 2)?;
            let mut h = HashValue::with_capacity((n as usize).min(1024), limits.hash);
            for _ in 0..n {
                let f = read_string(inp)?;
                let v = read_string(inp)?;
                if !h.set(&f, &v, limits.hash) {
                    return Err(inp.corrupt("duplicate hash field"));
                }
            }
            Value::Hash(Box::new(h))
        }
        types::HASH_LISTPACK | types::HASH_ZIPLIST => {
            let zip = rdb_type == types::HASH_ZIPLIST;
            let h =
                with_blob(inp, "hash listpack", |b| hash_from_elems(&if zip { read_ziplist(b)? } else { read_listpack(b)? }, limits.hash))?;
            Value::Hash(Box::new(h))
        }
        types::HASH_ZIPMAP => {
            let h = with_blob(inp, "hash zipmap", |b| read_zipmap(b, limits.hash))?;
            Value::Hash(Box::new(h))
        }
        types::ZSET | types::ZSET_2 => {
            let n = read_len(inp)?;
            inp.check_count(n, 2)?;
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                let m = read_string(inp)?;
                let s = if rdb_type == types::ZSET_2 { read_binary_double(inp)? } else { read_text_double(inp)? };
                items.push((m, s));
            }
            let at = inp.offset();
            zset_from(items, limits.zset).map_err(|e| RdbError::corrupt(at, e))?
        }
        types::ZSET_LISTPACK | types::ZSET_ZIPLIST => {
            let zip = rdb_type == types::ZSET_ZIPLIST;
            with_blob(inp, "sorted set listpack", |b| {
                let elems = if zip { read_ziplist(b)? } else { read_listpack(b)? };
                if !elems.len().is_multiple_of(2) {
                    return Err("odd number of elements");
                }
                let mut items = Vec::with_capacity(elems.len() / 2);
                for pair in elems.chunks_exact(2) {
                    let score = match pair[1] {
                        Elem::Int(n) => n as f64,
                        Elem::Str(s) => parse_double(s).ok_or("invalid score")?,
                    };
                    items.push((pair[0].to_owned_bytes(), score));
                }
                zset_from(items, limits.zset)
            })?
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 | types::STREAM_LISTPACKS_3 => super::stream::read_stream(inp, rdb_type)?,
        types::MODULE_2 => super::module::read_module_value(inp, key)?,
        types::MODULE_PRE_GA => {
            return Err(RdbError::UnsupportedType { key: key.to_vec(), type_name: "module value (pre-release module format)".into() });
        }
        types::HASH_METADATA_PRE_GA | types::HASH_LISTPACK_EX_PRE_GA | types::HASH_METADATA | types::HASH_LISTPACK_EX => {
            return Err(RdbError::UnsupportedType { key: key.to_vec(), type_name: "hash with field expirations (Redis 7.4)".into() });
        }
        t => return Err(inp.corrupt(format!("unknown value type {t} for key '{}'", String::from_utf8_lossy(key)))),
    };
    let empty = match &v {
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(v))
}

fn read_quicklist<I: Input + ?Sized>(inp: &mut I, v2: bool, limits: Limits) -> Result<ListValue, RdbError> {
    let nodes = read_len(inp)?;
    inp.check_count(nodes, 2)?;
    let mut l = ListValue::new(limits.list);
    for _ in 0..nodes {
        let container = if v2 { read_len(inp)? } else { 2 };
        match container {
            // A plain node: one element, as is (never empty: Redis makes
            // plain nodes of big elements only, and refuses an empty one).
            1 => {
                let e = read_string(inp)?;
                if e.is_empty() {
                    return Err(inp.corrupt("empty plain quicklist node"));
                }
                l.push(false, &e)
            }
            2 => with_blob(inp, "quicklist node", |b| {
                let elems = if v2 { read_listpack(b)? } else { read_ziplist(b)? };
                let mut buf = itoa::Buffer::new();
                for e in &elems {
                    l.push(false, e.bytes(&mut buf));
                }
                Ok(())
            })?,
            c => return Err(inp.corrupt(format!("unknown quicklist container {c}"))),
        }
    }
    Ok(l)
}

fn hash_from_elems(elems: &[Elem], limits: HashLimits) -> Result<HashValue, &'static str> {
    if !elems.len().is_multiple_of(2) {
        return Err("odd number of elements");
    }
    let mut h = HashValue::with_capacity(elems.len() / 2, limits);
    let (mut fb, mut vb) = (itoa::Buffer::new(), itoa::Buffer::new());
    for pair in elems.chunks_exact(2) {
        if !h.set(pair[0].bytes(&mut fb), pair[1].bytes(&mut vb), limits) {
            return Err("duplicate hash field");
        }
    }
    Ok(h)
}

/// A zipmap (hashes of RDB files before version 4): a count byte, then
/// field and value lengths (one byte below 254, else 254 and four
/// little-endian bytes), each value followed by unused padding.
fn read_zipmap(b: &[u8], limits: HashLimits) -> Result<HashValue, &'static str> {
    let mut inp = SliceInput::new(b);
    let err = |_| "zipmap entry runs past the end";
    let _count = inp.u8().map_err(err)?;
    let mut h = HashValue::default();
    loop {
        let len = |inp: &mut SliceInput| -> Result<Option<usize>, &'static str> {
            match inp.u8().map_err(err)? {
                255 => Ok(None),
                254 => Ok(Some(u32::from_le_bytes(inp.array().map_err(err)?) as usize)),
                n => Ok(Some(n as usize)),
            }
        };
        let Some(flen) = len(&mut inp)? else { break };
        let field = inp.take(flen).map_err(err)?;
        let vlen = len(&mut inp)?.ok_or("zipmap ends inside an entry")?;
        let free = inp.u8().map_err(err)? as usize;
        let value = inp.take(vlen).map_err(err)?;
        inp.take(free).map_err(err)?;
        if !h.set(field, value, limits) {
            return Err("duplicate hash field");
        }
    }
    if !inp.is_empty() {
        return Err("bytes after the zipmap end");
    }
    Ok(h)
}

/// A sorted set from (member, score) pairs in any order: refuses NaN scores
/// and repeated members.
fn zset_from(mut items: Vec<(Vec<u8>, f64)>, limits: ZLimits) -> Result<Value, &'static str> {
    if items.iter().any(|(_, s)| s.is_nan()) {
        return Err("NaN score in a sorted set");
    }
    {
        let mut seen = HashSet::with_capacity(items.len());
        if !items.iter().all(|(m, _)| seen.insert(&m[..])) {
            return Err("duplicate sorted set member");
        }
    }
    items.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
    let z = ZSet::from_sorted(&items, limits).map_err(|_| "sorted set too large")?;
    Ok(Value::ZSet(Box::new(z)))
}
