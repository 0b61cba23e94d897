//! The DUMP / RESTORE serialisation of one value. This is Damselfly's own
//! format (a payload made by Redis will not restore here, nor the reverse).
//! It owns the byte layout, its version number and its checksum.
//!
//! A payload is (integers little-endian):
//!
//! ```text
//! +-------+-------------+-----+------------------+-------------------+
//! | "DF"  | version u16 | tag | body (per tag)   | CRC-64 u64        |
//! +-------+-------------+-----+------------------+-------------------+
//!   0..2     2..4         4     5..len-8           last 8 bytes
//! ```
//!
//! - the CRC is CRC-64/XZ (ECMA-182 polynomial, reflected, all-ones initial
//!   value and final xor) of every byte before it;
//! - `version` is [`FORMAT_VERSION`]; a payload of a newer version is refused
//!   like a corrupted one, older versions stay readable;
//! - lengths and counts are unsigned LEB128 varints ("len" below); a byte
//!   string is `len` followed by that many bytes.
//!
//! Bodies by tag:
//!
//! | tag | type | body |
//! |---|---|---|
//! | 0 | string (bytes) | byte string |
//! | 1 | string (integer) | i64, 8 bytes |
//! | 2 | hash | len = field count (> 0), then per field: field, value (byte strings) |
//! | 3 | JSON | the document's own encoding (`JsonDoc::dump_into`), to the end of the body |
//! | 4 | sorted set | the set's own encoding (`ZSet::dump_into`), to the end of the body |
//!
//! A new type (sorted set, JSON, ...) gets the next tag; decoders refuse tags
//! they do not know. Any layout change that is not a new tag bumps the version.

use super::Value;
use crate::types::codec::{put_bytes, put_len, Reader};
use crate::types::hash::{HashLimits, HashValue};
use crate::types::json::JsonDoc;
use crate::types::zset::ZSet;

/// The version written by [`encode`] and the newest one [`decode`] accepts.
pub const FORMAT_VERSION: u16 = 1;

const MAGIC: &[u8; 2] = b"DF";
/// Magic, version and tag.
const HEADER: usize = 5;
const TRAILER: usize = 8;

/// Type tags.
mod tag {
    pub const STRING: u8 = 0;
    pub const INT: u8 = 1;
    pub const HASH: u8 = 2;
    pub const JSON: u8 = 3;
    pub const ZSET: u8 = 4;
    pub const LIST: u8 = 5;
    pub const SET: u8 = 6;
    pub const STREAM: u8 = 7;
}

/// Why a payload was refused. The two kinds map to Redis's two RESTORE
/// errors: an envelope that fails its checks, and a body that passes them but
/// does not describe a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// Too short, wrong magic, unsupported version or checksum mismatch.
    VersionOrChecksum,
    /// Intact envelope, malformed body (unknown tag, bad length, trailing bytes...).
    BadFormat,
}

/// Serialises a value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + TRAILER + 16 + value.heap_size());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    match value {
        Value::Str(s) => {
            out.push(tag::STRING);
            put_bytes(&mut out, s);
        }
        Value::Int(n) => {
            out.push(tag::INT);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Hash(h) => {
            out.push(tag::HASH);
            put_len(&mut out, h.len());
            for (f, v) in h.iter() {
                put_bytes(&mut out, f);
                put_bytes(&mut out, v);
            }
        }
        Value::Json(doc) => {
            out.push(tag::JSON);
            doc.dump_into(&mut out);
        }
        Value::ZSet(z) => {
            out.push(tag::ZSET);
            z.dump_into(&mut out);
        }
        Value::Stream(st) => {
            out.push(tag::STREAM);
            out.extend_from_slice(&st.last_id.ms.to_le_bytes());
            out.extend_from_slice(&st.last_id.seq.to_le_bytes());
            out.extend_from_slice(&st.added.to_le_bytes());
            put_len(&mut out, st.len());
            for (id, fields) in st.range(Default::default(), crate::types::stream::StreamId::MAX) {
                out.extend_from_slice(&id.ms.to_le_bytes());
                out.extend_from_slice(&id.seq.to_le_bytes());
                put_len(&mut out, fields.len());
                for (f, v) in fields {
                    put_bytes(&mut out, f);
                    put_bytes(&mut out, v);
                }
            }
        }
        Value::Set(set) => {
            out.push(tag::SET);
            put_len(&mut out, set.len());
            for m in set.iter() {
                put_bytes(&mut out, m);
            }
        }
        Value::List(l) => {
            out.push(tag::LIST);
            put_len(&mut out, l.len());
            for e in l.iter() {
                put_bytes(&mut out, e);
            }
        }
    }
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a payload's envelope and rebuilds its value. Hashes are built with
/// `limits`, so they take the encoding the current configuration gives them.
pub fn decode(payload: &[u8], limits: HashLimits) -> Result<Value, DumpError> {
    let body = verify(payload)?;
    let mut r = Reader::new(body);
    let value = decode_body(&mut r, limits).ok_or(DumpError::BadFormat)?;
    if r.remaining() != 0 {
        return Err(DumpError::BadFormat);
    }
    Ok(value)
}

/// The value in a verified body; `None` for any malformed body.
fn decode_body(r: &mut Reader, limits: HashLimits) -> Option<Value> {
    Some(match r.u8()? {
        tag::STRING => Value::string_from_vec(r.bytes()?.to_vec()),
        tag::INT => Value::Int(r.u64()? as i64),
        tag::HASH => {
            let n = r.len()?;
            // Each field costs at least two bytes (two empty strings).
            if n == 0 || n > r.remaining() / 2 {
                return None;
            }
            let mut h = HashValue::default();
            for _ in 0..n {
                let f = r.bytes()?;
                let v = r.bytes()?;
                if !h.set(f, v, limits) {
                    // A field listed twice: no encoder writes that.
                    return None;
                }
            }
            Value::Hash(Box::new(h))
        }
        tag::JSON => {
            let rest = r.take(r.remaining())?;
            Value::Json(Box::new(JsonDoc::from_dump(rest)?))
        }
        tag::ZSET => {
            let rest = r.take(r.remaining())?;
            Value::ZSet(Box::new(ZSet::from_dump(rest)?))
        }
        tag::STREAM => {
            use crate::types::stream::{StreamId, StreamValue};
            let last = StreamId { ms: r.u64()?, seq: r.u64()? };
            let added = r.u64()?;
            let n = r.len()?;
            if n > r.remaining() / 17 {
                return None;
            }
            let mut st = StreamValue::default();
            for _ in 0..n {
                let id = StreamId { ms: r.u64()?, seq: r.u64()? };
                let k = r.len()?;
                if k > r.remaining() / 2 {
                    return None;
                }
                let mut fields = Vec::with_capacity(k);
                for _ in 0..k {
                    fields.push((crate::store::SmallBytes::new(r.bytes()?), crate::store::SmallBytes::new(r.bytes()?)));
                }
                st.append(id, fields);
            }
            st.last_id = last;
            st.added = added;
            Value::Stream(Box::new(st))
        }
        tag::SET => {
            let n = r.len()?;
            if n == 0 || n > r.remaining() {
                return None;
            }
            let mut set = crate::types::set::SetValue::default();
            for _ in 0..n {
                if !set.add(r.bytes()?) {
                    // A member listed twice: no encoder writes that.
                    return None;
                }
            }
            Value::Set(Box::new(set))
        }
        tag::LIST => {
            let n = r.len()?;
            // Each element costs at least one byte (its length).
            if n == 0 || n > r.remaining() {
                return None;
            }
            let mut l = crate::types::list::ListValue::default();
            for _ in 0..n {
                l.push(false, r.bytes()?);
            }
            Value::List(Box::new(l))
        }
        _ => return None,
    })
}

/// Checks magic, version and checksum; returns the tag and body.
fn verify(payload: &[u8]) -> Result<&[u8], DumpError> {
    if payload.len() < HEADER + TRAILER || &payload[..2] != MAGIC {
        return Err(DumpError::VersionOrChecksum);
    }
    let version = u16::from_le_bytes([payload[2], payload[3]]);
    if version == 0 || version > FORMAT_VERSION {
        return Err(DumpError::VersionOrChecksum);
    }
    let (data, trailer) = payload.split_at(payload.len() - TRAILER);
    let mut want = [0u8; 8];
    want.copy_from_slice(trailer);
    if crc64(data) != u64::from_le_bytes(want) {
        return Err(DumpError::VersionOrChecksum);
    }
    Ok(&data[4..])
}

/// CRC-64/XZ: the ECMA-182 polynomial, bit-reflected (0xC96C5795D7870F42),
/// initial value and final xor all ones.
pub fn crc64(data: &[u8]) -> u64 {
    !data.iter().fold(!0u64, |crc, &b| CRC64_TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8))
}

const CRC64_POLY: u64 = 0xC96C_5795_D787_0F42;

static CRC64_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ CRC64_POLY } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::SmallBytes;

    /// A `Str` holding digits (bypassing the integer check of `Value::string`).
    fn raw_str(b: &[u8]) -> Value {
        Value::Str(SmallBytes::new(b))
    }

    fn limits() -> HashLimits {
        HashLimits::default()
    }

    fn hash(pairs: &[(&[u8], &[u8])], limits: HashLimits) -> Value {
        let mut h = HashValue::default();
        for (f, v) in pairs {
            h.set(f, v, limits);
        }
        Value::Hash(Box::new(h))
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// Values compared through their canonical content.
    fn content(v: &Value) -> (String, Pairs) {
        let mut buf = itoa::Buffer::new();
        match v {
            Value::Hash(h) => {
                let mut pairs: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                pairs.sort();
                ("hash".into(), pairs)
            }
            other => (other.encoding().into(), vec![(other.as_bytes(&mut buf).unwrap_or_default().to_vec(), Vec::new())]),
        }
    }

    #[test]
    fn crc64_check_value() {
        // The standard check value of CRC-64/XZ.
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn round_trips() {
        let long = vec![b'x'; 100_000];
        let big_hash: Vec<(Vec<u8>, Vec<u8>)> = (0..500).map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes())).collect();
        let big_pairs: Vec<(&[u8], &[u8])> = big_hash.iter().map(|(f, v)| (&f[..], &v[..])).collect();
        let values = vec![
            Value::string(b""),
            Value::string(b"hello"),
            Value::string(&long),
            Value::Int(0),
            Value::Int(-42),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            hash(&[(b"a", b"1"), (b"", b""), (b"c", &long)], limits()),
            hash(&[(b"field", b"value")], limits()),
            hash(&big_pairs, limits()),
        ];
        for v in &values {
            let p = encode(v);
            let back = decode(&p, limits()).expect("round trip");
            assert_eq!(content(&back), content(v));
            assert_eq!(back.type_name(), v.type_name());
            assert_eq!(encode(&back).len(), p.len());
        }
    }

    #[test]
    fn strings_holding_integers_restore_int_encoded() {
        let back = decode(&encode(&raw_str(b"12345")), limits()).unwrap();
        assert!(matches!(back, Value::Int(12345)));
    }

    #[test]
    fn hash_encoding_follows_the_limits_at_restore() {
        let small = hash(&[(b"a", b"1"), (b"b", b"2")], limits());
        let p = encode(&small);
        assert_eq!(decode(&p, limits()).unwrap().encoding(), "listpack");
        let tight = HashLimits { max_entries: 1, max_value: 64 };
        assert_eq!(decode(&p, tight).unwrap().encoding(), "hashtable");
    }

    /// The exact bytes of a few payloads: the format is a stable contract
    /// (payloads may be stored by clients and restored by a later version).
    #[test]
    fn golden_payloads() {
        let p = encode(&Value::string(b"hi"));
        assert_eq!(&p[..8], &[b'D', b'F', 1, 0, tag::STRING, 2, b'h', b'i']);
        assert_eq!(p.len(), 16);
        let p = encode(&Value::Int(-2));
        assert_eq!(&p[..13], &[b'D', b'F', 1, 0, tag::INT, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let p = encode(&hash(&[(b"f", b"v")], limits()));
        assert_eq!(&p[..10], &[b'D', b'F', 1, 0, tag::HASH, 1, 1, b'f', 1, b'v']);
        assert_eq!(hex(&p), "444601000201016601769f0091aa668b89a7");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let p = encode(&hash(&[(b"name", b"damselfly"), (b"n", b"1")], limits()));
        for i in 0..p.len() {
            for bit in 0..8 {
                let mut q = p.clone();
                q[i] ^= 1 << bit;
                assert!(decode(&q, limits()).is_err(), "flip of bit {bit} in byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn truncation_and_extension_are_detected() {
        let p = encode(&Value::string(b"some value"));
        for n in 0..p.len() {
            assert_eq!(decode(&p[..n], limits()).err(), Some(DumpError::VersionOrChecksum), "truncated to {n}");
        }
        let mut longer = p.clone();
        longer.push(0);
        assert_eq!(decode(&longer, limits()).err(), Some(DumpError::VersionOrChecksum));
    }

    /// Re-signs a hand-made header + body with a valid checksum.
    fn seal(mut data: Vec<u8>) -> Vec<u8> {
        let crc = crc64(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        data
    }

    #[test]
    fn versions() {
        assert_eq!(decode(&seal(vec![b'D', b'F', 2, 0, tag::STRING, 0]), limits()).err(), Some(DumpError::VersionOrChecksum));
        assert_eq!(decode(&seal(vec![b'D', b'F', 0, 0, tag::STRING, 0]), limits()).err(), Some(DumpError::VersionOrChecksum));
        assert_eq!(decode(&seal(vec![b'R', b'F', 1, 0, tag::STRING, 0]), limits()).err(), Some(DumpError::VersionOrChecksum));
        assert!(decode(&seal(vec![b'D', b'F', 1, 0, tag::STRING, 0]), limits()).is_ok());
    }

    #[test]
    fn malformed_bodies_with_valid_checksums() {
        let bad: &[&[u8]] = &[
            &[9, 0],                                                                    // unknown tag
            &[tag::STRING, 5, b'a'],                                                    // length past the end
            &[tag::STRING, 1, b'a', b'b'],                                              // trailing byte
            &[tag::INT, 1, 2, 3],                                                       // short integer
            &[tag::HASH, 0],                                                            // empty hash
            &[tag::HASH, 2, 1, b'f', 1, b'v'],                                          // count larger than content
            &[tag::HASH, 2, 1, b'f', 0, 1, b'f', 0],                                    // duplicate field
            &[tag::STRING, 0x80, 0],                                                    // padded varint
            &[tag::STRING, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // varint overflow
        ];
        for body in bad {
            let mut data = vec![b'D', b'F', 1, 0];
            data.extend_from_slice(body);
            assert_eq!(decode(&seal(data), limits()).err(), Some(DumpError::BadFormat), "body {body:?}");
        }
    }
}
