//! Data structures behind the aggregate value types.

pub mod btree;
pub mod decimal;
pub mod field_table;
pub mod hash;
pub mod hll;
pub mod json;
pub mod lcs;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;
