//! Writing: RDB lengths, strings (integer-encoded when short and canonical,
//! LZF-compressed when long and it saves space, as Redis with
//! `rdbcompression yes`), binary doubles, and each value type's object
//! encoding as Redis 7.0 chooses it.

use super::listpack::{write_intset, ListpackWriter};
use super::types;
use crate::store::Value;
use crate::types::hash::HashValue;
use crate::types::list::{entry_bytes, ListValue};
use crate::types::set::SetValue;
use crate::types::zset::ZSet;
use crate::util::canonical_int;

pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string: as an 8/16/32-bit integer when it is the canonical text of
/// one, LZF-compressed when longer than 20 bytes and compression saves at
/// least 4 bytes, else raw.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_string_with(out, s, super::compression());
}

/// `put_string`, compressing only when `compress` (Redis's `rdbcompression`).
pub fn put_string_with(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(n) = canonical_int(s) {
            if put_small_int(out, n) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        let done = crate::types::lzf::with_compressed(s, |c| {
            let Some(c) = c else { return false };
            out.push(0xc3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(c);
            true
        });
        if done {
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An integer string in the integer encoding when it fits 32 bits.
fn put_small_int(out: &mut Vec<u8>, n: i64) -> bool {
    if let Ok(v) = i8::try_from(n) {
        out.extend_from_slice(&[0xc0, v as u8]);
    } else if let Ok(v) = i16::try_from(n) {
        out.push(0xc1);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(n) {
        out.push(0xc2);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

pub fn put_int_string(out: &mut Vec<u8>, n: i64) {
    if !put_small_int(out, n) {
        // At most 20 characters: never compressed.
        put_string_with(out, itoa::Buffer::new().format(n).as_bytes(), false);
    }
}

pub fn put_binary_double(out: &mut Vec<u8>, d: f64) {
    out.extend_from_slice(&d.to_le_bytes());
}

/// A score as Redis puts it in a listpack: an integer when it is one
/// (within +-2^52), else the shortest text that reads back as the same
/// double.
fn push_score(lp: &mut ListpackWriter, d: f64) {
    if d.is_infinite() {
        lp.push_str(if d > 0.0 { b"inf" } else { b"-inf" });
    } else if d == 0.0 && d.is_sign_negative() {
        lp.push_str(b"-0");
    } else if d > -4_503_599_627_370_495.0 && d < 4_503_599_627_370_496.0 && d == (d as i64) as f64 {
        lp.push_int(d as i64);
    } else {
        lp.push_str(ryu::Buffer::new().format_finite(d).as_bytes());
    }
}

/// The RDB type byte `write_object` writes for `value`.
pub fn object_type(value: &Value) -> u8 {
    match value {
        Value::Str(_) | Value::Int(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Set(s) => {
            if s.is_intset() {
                types::SET_INTSET
            } else {
                types::SET
            }
        }
        Value::Hash(h) => match &**h {
            HashValue::Pairs(_) => types::HASH_LISTPACK,
            HashValue::Table(_) => types::HASH,
        },
        Value::ZSet(z) => {
            if z.is_compact() {
                types::ZSET_LISTPACK
            } else {
                types::ZSET_2
            }
        }
        Value::Stream(_) => types::STREAM_LISTPACKS_2,
        Value::Json(_) => types::MODULE_2,
    }
}

/// The value's encoding (after its type byte), strings compressed.
pub fn write_object(out: &mut Vec<u8>, value: &Value) {
    write_object_with(out, value, super::compression());
}

/// `write_object`, compressing strings only when `compress`.
pub fn write_object_with(out: &mut Vec<u8>, value: &Value, compress: bool) {
    write_object_spilling(out, value, compress, 0, &mut |_| {});
}

/// `write_object_with` for a big value: whenever `out` holds `chunk`
/// bytes or more (when not 0) between two elements of a list, set, hash or
/// sorted set, `spill` is given it to take away, so the record never sits
/// whole in memory. Strings, streams and JSON documents are written whole.
pub fn write_object_spilling(out: &mut Vec<u8>, value: &Value, compress: bool, chunk: usize, spill: Spill) {
    let z = compress;
    let mut sp = Spiller { chunk, spill };
    match value {
        Value::Str(s) => put_string_with(out, s, z),
        Value::Int(n) => put_int_string(out, *n),
        Value::List(l) => write_list(out, l, z, &mut sp),
        Value::Set(s) => write_set(out, s, z, &mut sp),
        Value::Hash(h) => write_hash(out, h, z, &mut sp),
        Value::ZSet(z2) => write_zset(out, z2, z, &mut sp),
        Value::Stream(s) => super::stream::write_stream(out, s, z),
        Value::Json(doc) => super::module::write_json(out, doc, z),
    }
}

/// Takes what a record's encoding wrote so far (and empties the buffer).
pub type Spill<'a> = &'a mut dyn FnMut(&mut Vec<u8>);

struct Spiller<'a> {
    chunk: usize,
    spill: Spill<'a>,
}

impl Spiller<'_> {
    #[inline]
    fn check(&mut self, out: &mut Vec<u8>) {
        if self.chunk != 0 && out.len() >= self.chunk {
            (self.spill)(out);
        }
    }
}

/// Quicklist nodes: listpacks as large as the list's fill
/// (`list-max-listpack-size`) lets a node grow. The node count comes
/// first: a list written in chunks builds its nodes twice (once to count
/// them) rather than hold them all.
fn write_list(out: &mut Vec<u8>, l: &ListValue, compress: bool, sp: &mut Spiller) {
    let nodes = |each: &mut dyn FnMut(Vec<u8>)| {
        let mut lp = ListpackWriter::new();
        for e in l.iter() {
            if lp.count() > 0 && !l.fill().allows(lp.count(), lp.bytes() + entry_bytes(e.len())) {
                each(std::mem::take(&mut lp).finish());
            }
            lp.push(&e);
        }
        if lp.count() > 0 {
            each(lp.finish());
        }
    };
    let mut count = 0u64;
    let mut held = Vec::new();
    if sp.chunk == 0 {
        nodes(&mut |n| held.push(n));
        count = held.len() as u64;
    } else {
        nodes(&mut |_| count += 1);
    }
    put_len(out, count);
    // Container kind 2: a packed (listpack) node.
    let put = |out: &mut Vec<u8>, n: Vec<u8>| {
        put_len(out, 2);
        put_string_with(out, &n, compress);
    };
    if sp.chunk == 0 {
        for n in held {
            put(out, n);
        }
    } else {
        nodes(&mut |n| {
            put(out, n);
            sp.check(out);
        });
    }
}

fn write_set(out: &mut Vec<u8>, s: &SetValue, compress: bool, sp: &mut Spiller) {
    if let Some(ints) = s.ints() {
        put_string_with(out, &write_intset(&ints.collect::<Vec<i64>>()), compress);
        return;
    }
    put_len(out, s.len() as u64);
    for m in s.iter() {
        put_string_with(out, &m, compress);
        sp.check(out);
    }
}

fn write_hash(out: &mut Vec<u8>, h: &HashValue, compress: bool, sp: &mut Spiller) {
    match h {
        HashValue::Pairs(pairs) => {
            let mut lp = ListpackWriter::new();
            for (f, v) in pairs.iter() {
                lp.push(f);
                lp.push(v);
            }
            put_string_with(out, &lp.finish(), compress);
        }
        HashValue::Table(_) => {
            put_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_string_with(out, f, compress);
                put_string_with(out, v, compress);
                sp.check(out);
            }
        }
    }
}

fn write_zset(out: &mut Vec<u8>, z: &ZSet, compress: bool, sp: &mut Spiller) {
    if z.is_compact() {
        let mut lp = ListpackWriter::new();
        z.for_each(|m, s| {
            lp.push(m);
            push_score(&mut lp, s);
        });
        put_string_with(out, &lp.finish(), compress);
        return;
    }
    put_len(out, z.len() as u64);
    // Highest score first, as Redis writes a skiplist.
    if !z.is_empty() {
        z.for_range(0, z.len(), true, |m, s| {
            put_string_with(out, m, compress);
            put_binary_double(out, s);
            sp.check(out);
        });
    }
}
