//! Redis's RDB serialisation (format version 10, what Redis 7.0 writes):
//! the file layout (header, AUX fields, databases, key records, function
//! libraries, EOF and CRC-64), the object encodings of every value type, and
//! a streaming reader. DUMP/RESTORE payloads (`store::dump`) are one object
//! in the same encoding.
//!
//! Pure code: no threads, no files. The snapshot engine drives the writers
//! (`write_header`, `write_select_db`, ..., `write_eof`, checksumming the
//! bytes with `Crc64`) and reads files with `Reader`.
//!
//! Files:
//! - `input`: the byte sources (a slice, any `io::Read`) with offsets and
//!   the running checksum;
//! - `encode` / `decode`: lengths, strings (integer and LZF encodings),
//!   doubles, and the object encodings of strings, lists, sets, hashes and
//!   sorted sets;
//! - `listpack`: listpacks, ziplists (read only) and intsets;
//! - `stream`: the stream encoding (rax of listpacks, consumer groups);
//! - `module`: module values (RedisJSON's `ReJSON-RL`) and module AUX data;
//! - `reader`: the file reader.

mod decode;
pub mod deferred;
mod encode;
mod input;
mod listpack;
mod module;
mod reader;
mod stream;

use std::fmt;

pub use decode::{read_object, read_string, Limits};
pub use encode::{object_type, write_object, write_object_spilling, write_object_with, Spill};
pub use input::{Input, SliceInput};
pub use reader::{Item, Reader};

/// The RDB format version written (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION (a test setting, as Redis's): the
/// CRC-64 of DUMP payloads and snapshot files is not checked, so that a
/// damaged body reaches the decoder, whose checks then refuse it.
pub static SKIP_CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The newest version read: later files are read while they only use
/// encodings this module knows (Redis 7.2's set listpacks and stream
/// consumer active times among them).
pub const RDB_VERSION_MAX_READ: u16 = 12;

/// Object types (the byte before a key).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// Redis 7.4's hashes with field expirations (RDB 12): refused.
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;
}

/// File-level opcodes.
pub mod opcode {
    /// Redis 7.4 (cluster mode): a slot's key counts, a sizing hint.
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Why reading RDB data failed.
#[derive(Debug)]
pub enum RdbError {
    Io(std::io::Error),
    /// Malformed data at `offset` (bytes from the start of the input).
    Corrupt {
        offset: u64,
        what: String,
    },
    /// A value of a type this server cannot hold (a module type other than
    /// RedisJSON's, a RedisJSON encoding version it does not know, a Redis
    /// 7.4 hash with field expirations). For module values the reader has
    /// read past the value: `Reader::next` may be called again to go on
    /// with the next record.
    UnsupportedType {
        key: Vec<u8>,
        type_name: String,
    },
    /// A file of an RDB version newer than `RDB_VERSION_MAX_READ` (or 0).
    Version(u16),
    /// The file's CRC-64 does not match its content.
    Checksum,
}

impl RdbError {
    pub(crate) fn corrupt(offset: u64, what: impl Into<String>) -> RdbError {
        RdbError::Corrupt { offset, what: what.into() }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::Io(e) => write!(f, "RDB read error: {e}"),
            RdbError::Corrupt { offset, what } => write!(f, "corrupt RDB data at offset {offset}: {what}"),
            RdbError::UnsupportedType { key, type_name } => {
                write!(f, "key '{}' holds a value of type '{type_name}', which this server cannot load", String::from_utf8_lossy(key))
            }
            RdbError::Version(v) => write!(f, "unsupported RDB version {v} (this server reads versions 1 to {RDB_VERSION_MAX_READ})"),
            RdbError::Checksum => write!(f, "Wrong RDB checksum: the file is corrupt (RDB CRC error)"),
        }
    }
}

impl std::error::Error for RdbError {}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        RdbError::Io(e)
    }
}

/// Redis's CRC-64 (Jones polynomial, reflected, no final xor), computed
/// incrementally.
#[derive(Clone)]
pub struct Crc64 {
    digest: crc::Digest<'static, u64, crc::Table<16>>,
}

/// Sixteen tables (32 KiB) rather than one: every byte of a snapshot file
/// goes through this, some of it on a shard thread, and slicing by 16 is
/// several times faster than a byte at a time.
static CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

impl Crc64 {
    pub fn new() -> Crc64 {
        Crc64 { digest: CRC64.digest() }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    pub fn finish(self) -> u64 {
        self.digest.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64::new()
    }
}

/// The CRC-64 of `bytes` in one call.
pub fn crc64(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

/// "REDIS0010" then one AUX field per pair.
pub fn write_header(out: &mut Vec<u8>, aux: &[(&str, &[u8])]) {
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    for (k, v) in aux {
        out.push(opcode::AUX);
        encode::put_string(out, k.as_bytes());
        encode::put_string(out, v);
    }
}

pub fn write_select_db(out: &mut Vec<u8>, db: u32) {
    out.push(opcode::SELECTDB);
    encode::put_len(out, db as u64);
}

pub fn write_resize_db(out: &mut Vec<u8>, keys: u64, expires: u64) {
    out.push(opcode::RESIZEDB);
    encode::put_len(out, keys);
    encode::put_len(out, expires);
}

/// `rdbcompression`: whether snapshots, journal bases, full syncs and
/// DUMP payloads LZF-compress their strings (set from the configuration
/// by the server, at start and on CONFIG SET).
static COMPRESSION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn set_compression(on: bool) {
    COMPRESSION.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn compression() -> bool {
    COMPRESSION.load(std::sync::atomic::Ordering::Relaxed)
}

/// One key record: the expiry (when there is one), the type byte, the key
/// and the value in Redis 7.0's encoding.
pub fn write_entry(out: &mut Vec<u8>, key: &[u8], value: &crate::store::Value, expire_at_ms: Option<u64>) {
    write_entry_with(out, key, value, expire_at_ms, compression());
}

/// `write_entry` with LZF compression of strings on or off (Redis's
/// `rdbcompression`).
pub fn write_entry_with(out: &mut Vec<u8>, key: &[u8], value: &crate::store::Value, expire_at_ms: Option<u64>, compress: bool) {
    if let Some(at) = expire_at_ms {
        out.push(opcode::EXPIRETIME_MS);
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.push(object_type(value));
    encode::put_string_with(out, key, compress);
    write_object_with(out, value, compress);
}

/// `write_entry` for a big value, handing `spill` what is written each
/// time it reaches `chunk` bytes (see `write_object_spilling`); the rest
/// is left in `out`.
pub fn write_entry_spilling(
    out: &mut Vec<u8>,
    key: &[u8],
    value: &crate::store::Value,
    expire_at_ms: Option<u64>,
    chunk: usize,
    spill: Spill,
) {
    if let Some(at) = expire_at_ms {
        out.push(opcode::EXPIRETIME_MS);
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.push(object_type(value));
    encode::put_string(out, key);
    write_object_spilling(out, value, compression(), chunk, spill);
}

/// A function library: its code, as FUNCTION LOAD received it.
pub fn write_function(out: &mut Vec<u8>, code: &[u8]) {
    out.push(opcode::FUNCTION2);
    encode::put_string(out, code);
}

/// The EOF opcode; the caller appends the 8-byte little-endian CRC-64 of
/// every byte written, this one included.
pub fn write_eof(out: &mut Vec<u8>) {
    out.push(opcode::EOF);
}

#[cfg(test)]
mod tests;
