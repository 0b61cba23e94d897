//! DEBUG DIGEST and DIGEST-VALUE: Redis's SHA1 digests of a value and of
//! a whole data set (debug.c `xorObjectDigest`, `computeDatasetDigest`),
//! computed the same way, so a digest taken here equals redis-server's for
//! the same data. Elements whose order is part of the value (a list, a
//! stream, a string) are mixed in order; members of a set, a hash or a
//! sorted set are XORed, so their order does not count. A key with a TTL
//! adds `!!expire!!` (its time does not count).
//!
//! JSON documents are RedisJSON's module type, which gives no digest
//! function, so redis-server mixes in their type and TTL only; here the
//! document's compact text is mixed in as a module's digest callback
//! would add it (one string buffer, one end of sequence), so replicas
//! whose documents differ do not compare equal.

use super::value::Value;

/// A 20-byte SHA1 digest, or the running state of one.
pub type Digest = [u8; 20];

fn sha1(parts: &[&[u8]]) -> Digest {
    let mut h = sha1_smol::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.digest().bytes()
}

/// `digest ^= SHA1(bytes)`.
pub fn xor(digest: &mut Digest, bytes: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(&[bytes])) {
        *d ^= h;
    }
}

/// `digest = SHA1(digest ^ SHA1(bytes))`: order-dependent mixing.
pub fn mix(digest: &mut Digest, bytes: &[u8]) {
    xor(digest, bytes);
    *digest = sha1(&[&digest[..]]);
}

/// Redis's object type numbers (`OBJ_STRING` ... `OBJ_STREAM`).
fn type_number(v: &Value) -> u32 {
    match v {
        Value::Str(_) | Value::Int(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Json(_) => 5,
        Value::Stream(_) => 6,
    }
}

/// Mixes a value (and whether it has a TTL) into `digest`: DIGEST-VALUE
/// starts it from zeros.
pub fn value(digest: &mut Digest, v: &Value, has_ttl: bool) {
    mix(digest, &type_number(v).to_be_bytes());
    match v {
        Value::Str(s) => mix(digest, s),
        Value::Int(n) => mix(digest, itoa::Buffer::new().format(*n).as_bytes()),
        Value::List(l) => {
            for e in l.iter() {
                mix(digest, &e);
            }
        }
        Value::Set(s) => {
            for m in s.iter() {
                xor(digest, &m);
            }
        }
        Value::ZSet(z) => z.for_each(|m, score| {
            let mut e = [0u8; 20];
            mix(&mut e, m);
            mix(&mut e, &crate::resp::reply::format_g17(score));
            xor(digest, &e);
        }),
        Value::Hash(h) => {
            for (f, val) in h.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, val);
                xor(digest, &e);
            }
        }
        Value::Stream(s) => {
            for (id, fields) in s.iter() {
                mix(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (f, val) in fields {
                    mix(digest, f);
                    mix(digest, val);
                }
            }
        }
        Value::Json(doc) => {
            let mut o = [0u8; 20];
            mix(&mut o, &doc.to_text());
            let mut x = [0u8; 20];
            xor(&mut x, &o);
            xor(digest, &x);
        }
    }
    if has_ttl {
        xor(digest, b"!!expire!!");
    }
}

/// One key's share of a data set's digest, to be XORed with the others'
/// (`xor_into`): the SHA1 of the key mixed, then its value.
pub fn key_share(key: &[u8], v: &Value, has_ttl: bool) -> Digest {
    let mut d = [0u8; 20];
    mix(&mut d, key);
    value(&mut d, v, has_ttl);
    sha1(&[&d[..]])
}

/// XORs `b` into `a`.
pub fn xor_into(a: &mut Digest, b: &Digest) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// The data set's digest from each non-empty database's index and the XOR
/// of its keys' shares, in ascending index order.
pub fn dataset(dbs: impl IntoIterator<Item = (usize, Digest)>) -> Digest {
    let mut out = [0u8; 20];
    for (index, keys) in dbs {
        mix(&mut out, &(index as u32).to_be_bytes());
        xor_into(&mut out, &keys);
    }
    out
}

/// Forty lower-case hex digits.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_set_is_zeros() {
        assert_eq!(hex(&dataset([])), "0".repeat(40));
    }

    #[test]
    fn integer_and_text_strings_agree() {
        let a = key_share(b"k", &Value::Int(42), false);
        let b = key_share(b"k", &Value::Str(crate::store::SmallBytes::new(b"42")), false);
        assert_eq!(a, b);
        assert_ne!(a, key_share(b"k", &Value::Int(42), true));
    }
}
