//! Data structures behind the value types, and the byte-level pieces they
//! are built from: `SmallBytes` (compact byte strings, also the keyspace's
//! keys) and `codec` (the varints and bounds-checked reader of our binary
//! encodings).

pub mod btree;
pub mod bytes;
pub mod codec;
pub mod decimal;
pub mod field_table;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod intset;
pub mod json;
pub mod lcs;
pub mod list;
pub mod lzf;
pub mod pack;
pub mod set;
pub mod stream;
pub mod stream_group;
pub mod zset;

pub use self::bytes::SmallBytes;

/// The encoding thresholds and list layout values are built with (from
/// the configuration: `Config::limits`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub hash: hash::HashLimits,
    pub zset: zset::ZLimits,
    pub list: list::ListShape,
    pub set: set::SetLimits,
}
