//! `damselfly` as a library: the modules the server binary (`main.rs`) is
//! built from, exposed so that fuzz targets and benchmarks can drive the
//! parsers and codecs directly. Its modules are the server's internals, not a stable API.

// Internal containers expose `len` for INFO and replies; an `is_empty`
// beside each would be unused.
#![allow(clippy::len_without_is_empty)]

pub mod alloc;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod persist;
pub mod resp;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod slot;
pub mod store;
pub mod types;
pub mod util;

/// The Redis version we report to clients (the command set and reply shapes
/// we follow).
pub const REDIS_VERSION: &str = "7.2.4";
