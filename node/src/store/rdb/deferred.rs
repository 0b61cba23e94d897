//! String keys handed over unencoded: a shard thread taking part in a
//! snapshot copies a string key's name, value and expiry into a plain
//! frame (`push`), and the thread writing the file turns the frames into
//! RDB records (`encode`, LZF included) off the shard thread. Strings are
//! most keys of a cache, and their encoding (compression above all) was
//! most of what a snapshot cost the thread serving their clients.
//!
//! A frame: expiry time (Unix ms, 0: none) as 8 bytes little endian, the
//! name's length as 4 bytes and the name, the value's length as 4 bytes and
//! the value.

use super::encode::put_string;
use super::{opcode, types};

/// Appends the frame of one string key.
pub fn push(out: &mut Vec<u8>, key: &[u8], value: &[u8], expire_at_ms: u64) {
    out.reserve(16 + key.len() + value.len());
    out.extend_from_slice(&expire_at_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Appends the RDB records of the frames in `frames` (as `write_entry`
/// writes a string key); stops at a frame cut short, which `push` never
/// leaves.
pub fn encode(frames: &[u8], out: &mut Vec<u8>) {
    let mut rest = frames;
    while !rest.is_empty() {
        let Some((Frame { at, key, value }, next)) = frame(rest) else { return };
        if at != 0 {
            out.push(opcode::EXPIRETIME_MS);
            out.extend_from_slice(&at.to_le_bytes());
        }
        out.push(types::STRING);
        put_string(out, key);
        put_string(out, value);
        rest = next;
    }
}

/// One string key as a frame holds it.
struct Frame<'a> {
    at: u64,
    key: &'a [u8],
    value: &'a [u8],
}

/// The first frame of `b`, and what follows it.
fn frame(b: &[u8]) -> Option<(Frame<'_>, &[u8])> {
    let (at, b) = b.split_first_chunk::<8>()?;
    let (klen, b) = b.split_first_chunk::<4>()?;
    let (key, b) = b.split_at_checked(u32::from_le_bytes(*klen) as usize)?;
    let (vlen, b) = b.split_first_chunk::<4>()?;
    let (value, b) = b.split_at_checked(u32::from_le_bytes(*vlen) as usize)?;
    Some((Frame { at: u64::from_le_bytes(*at), key, value }, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SmallBytes, Value};

    #[test]
    fn frames_encode_as_write_entry_does() {
        let long = b"0123456789".repeat(30);
        let keys: [(&[u8], &[u8], u64); 4] =
            [(b"a", b"", 0), (b"with ttl", b"v", 1_700_000_000_123), (b"long", &long, 0), (&long, b"name compressed", 42)];
        let (mut frames, mut direct) = (Vec::new(), Vec::new());
        for (k, v, at) in keys {
            push(&mut frames, k, v, at);
            super::super::write_entry(&mut direct, k, &Value::Str(SmallBytes::new(v)), (at != 0).then_some(at));
        }
        let mut encoded = Vec::new();
        encode(&frames, &mut encoded);
        assert_eq!(encoded, direct);
        // A frame cut short is left out, with what follows it.
        let mut cut = Vec::new();
        encode(&frames[..frames.len() - 1], &mut cut);
        assert!(cut.len() < encoded.len() && encoded.starts_with(&cut));
    }
}
