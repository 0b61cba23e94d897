//! The keyspace of one shard: compact byte strings, typed values, and the
//! per-database table that indexes keys by hash slot and expiry time, and the
//! DUMP/RESTORE serialisation of values.

pub mod bytes;
pub mod codec;
pub mod db;
pub mod dump;
pub mod slab;
pub mod value;

pub use self::bytes::SmallBytes;
pub use db::Db;
pub use value::Value;
