//! Data structures behind the aggregate value types.

pub mod hash;
pub mod json;
