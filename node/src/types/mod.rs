//! Data structures behind the aggregate value types.

pub mod btree;
pub mod hash;
pub mod zset;
