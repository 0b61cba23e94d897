//! The keyspace of one shard: typed values, the per-database table that
//! indexes keys by hash slot and expiry time, and the DUMP/RESTORE
//! serialisation of values (Redis's RDB encoding, `rdb`). Keys are `types::SmallBytes` (re-exported here).

pub mod access;
pub mod db;
pub mod digest;
pub mod dump;
pub mod lazyfree;
pub mod notify;
pub mod rdb;
pub mod sketch;
pub mod slab;
pub mod snapshot;
pub mod value;

pub use crate::types::SmallBytes;
pub use db::Db;
pub use value::Value;
