//! The DUMP / RESTORE payload, in Redis's format so payloads move between
//! Redis and Damselfly both ways: the value's RDB object (type byte, then
//! its encoding, see `store::rdb`), the RDB version as two little-endian
//! bytes, then the CRC-64 (Redis's) of everything before it as eight
//! little-endian bytes.
//!
//! A payload of a newer RDB version than ours, or whose checksum does not
//! match, is refused as Redis refuses it ("DUMP payload version or checksum
//! are wrong"); one that passes those checks but does not hold a value we
//! can build ("Bad data format").

use super::rdb::{self, Input, Limits, SliceInput};
use super::Value;

/// The version written by [`encode`] and the newest one [`decode`] accepts.
pub const FORMAT_VERSION: u16 = rdb::RDB_VERSION;

pub use rdb::crc64;

/// Version and CRC.
const TRAILER: usize = 10;

/// Why a payload was refused. The two kinds map to Redis's two RESTORE
/// errors: an envelope that fails its checks, and a body that passes them but
/// does not describe a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// Too short, unsupported version or checksum mismatch.
    VersionOrChecksum,
    /// Intact envelope, malformed body (unknown type, bad length, trailing
    /// bytes, a module type we do not have...).
    BadFormat,
}

/// Serialises a value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER + 16 + value.heap_size());
    out.push(rdb::object_type(value));
    rdb::write_object(&mut out, value);
    seal(&mut out);
    out
}

/// Serialises a value without compressing its strings: cheaper to make,
/// for payloads that are written once and seldom read (the journal's).
pub fn encode_plain(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER + 16 + value.heap_size());
    out.push(rdb::object_type(value));
    rdb::write_object_with(&mut out, value, false);
    seal(&mut out);
    out
}

/// Appends the version and checksum to an RDB object.
pub fn seal(out: &mut Vec<u8>) {
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc64(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks a payload's envelope and rebuilds its value, built with `limits`
/// so it takes the encoding the current configuration gives it.
pub fn decode(payload: &[u8], limits: Limits) -> Result<Value, DumpError> {
    let body = verify(payload)?;
    let mut inp = SliceInput::new(body);
    let t = inp.u8().map_err(|_| DumpError::BadFormat)?;
    match rdb::read_object(&mut inp, t, b"", limits) {
        Ok(Some(v)) if inp.is_empty() => Ok(v),
        _ => Err(DumpError::BadFormat),
    }
}

/// The RDB object of a payload whose version and checksum are good.
pub fn verify(payload: &[u8]) -> Result<&[u8], DumpError> {
    if payload.len() < TRAILER {
        return Err(DumpError::VersionOrChecksum);
    }
    let (data, crc) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([data[data.len() - 2], data[data.len() - 1]]);
    if version > FORMAT_VERSION {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut want = [0u8; 8];
    want.copy_from_slice(crc);
    let skip = rdb::SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed);
    if !skip && crc64(data) != u64::from_le_bytes(want) {
        return Err(DumpError::VersionOrChecksum);
    }
    Ok(&data[..data.len() - 2])
}
