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
pub mod json;
pub mod lcs;
pub mod list;
pub mod set;
pub mod stream;
pub mod stream_group;
pub mod zset;

pub use self::bytes::SmallBytes;
