//! The command table. Every command is declared once, as a `CommandSpec` in
//! its family's module (`strings`, `keys`, `hashes`, `json`, `connection`,
//! `server`); the declaration's arity, flags and key positions drive argument
//! checks, routing to shards and the output of `COMMAND`. Helper modules
//! (`scan`) hold the implementation of commands declared by a family.

pub mod cluster;
pub mod connection;
pub mod hashes;
pub mod json;
pub mod keys;
pub mod scan;
pub mod server;
pub mod strings;
pub mod transactions;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::error::CmdResult;
use crate::resp::Out;
use crate::shard::Shard;
use crate::store::Db;

/// What a shard-side handler sees: the shard, the client's database, and the
/// time the command started (for TTL checks).
pub struct Ctx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now: u64,
}

impl Ctx<'_> {
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        self.shard.db(self.db)
    }
}

/// A handler that runs on the shard owning the command's keys.
pub type ShardFn = fn(&mut Ctx, &[Bytes], &mut Out) -> CmdResult;

/// How a command executes.
pub enum Exec {
    /// All keys on one shard (or keyless but shard-local): runs there.
    Shard(ShardFn),
    /// Keys may span shards: the key groups are split per shard, each part
    /// runs the handler inside one transaction, and the replies are combined.
    Split(ShardFn, Combine),
    /// Runs on the connection: changes connection state or consults several
    /// shards itself.
    Conn(ConnCmd),
}

/// How the per-shard replies of a `Split` command combine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Combine {
    /// Integer replies are added (DEL, EXISTS, TOUCH, UNLINK).
    Sum,
    /// Array replies are merged back into key order (MGET).
    Array,
    /// Every part replies OK (MSET).
    Ok,
}

/// Connection-level commands, implemented in `connection` and `server` and
/// the families' `conn_*` functions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnCmd {
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    Client,
    Quit,
    Reset,
    Command,
    Info,
    Config,
    DbSize,
    FlushDb,
    FlushAll,
    Time,
    Shutdown,
    Keys,
    RandomKey,
    MSetNx,
    Rename,
    RenameNx,
    Scan,
    Copy,
    SwapDb,
    Lastsave,
    Role,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    // JSON commands that span shards.
    JsonMSet,
    // Cluster mode.
    Cluster,
    Asking,
    ReadOnly,
    ReadWrite,
}

/// Command flags, as COMMAND reports them.
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const RANDOM: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MOVABLEKEYS: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    /// Runs at once even between MULTI and EXEC (EXEC, DISCARD, ...); not
    /// shown by COMMAND.
    pub const NO_QUEUE: u32 = 1 << 13;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (RANDOM, "random"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MOVABLEKEYS, "movablekeys"),
        (NO_MULTI, "no_multi"),
    ];
}

pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Position of the first key (0 = no keys), of the last (negative counts
    /// from the end) and the step between keys.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL categories, as COMMAND reports them (without the '@').
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub exec: Exec,
}

impl CommandSpec {
    /// Arity check, including that a trailing list of key groups (as MSET's
    /// key-value pairs) is complete, so a malformed command is refused before
    /// any part of it runs.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        let count_ok = if a >= 0 { argc == a as usize } else { argc >= (-a) as usize };
        let groups_ok = !(self.last_key == -1 && self.step > 1 && self.first_key > 0)
            || (argc.saturating_sub(self.first_key as usize)).is_multiple_of(self.step as usize);
        count_ok && groups_ok
    }

    /// Indices of the key arguments in `args` (which include the name).
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key.max(0) as usize, self.step.max(1) as usize);
        let last = if self.first_key <= 0 {
            0
        } else if self.last_key < 0 {
            (argc as i64 + self.last_key as i64).max(0) as usize
        } else {
            (self.last_key as usize).min(argc.saturating_sub(1))
        };
        let end = if first == 0 || argc <= first { 0 } else { last + 1 };
        (first..end.max(first)).step_by(step)
    }

    pub fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }
}

/// Shorthand used by the family modules' tables.
#[allow(clippy::too_many_arguments)]
pub const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
    exec: Exec,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, acl, group, summary, exec }
}

/// Every command, from every family.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    connection::COMMANDS
        .iter()
        .chain(server::COMMANDS)
        .chain(strings::COMMANDS)
        .chain(keys::COMMANDS)
        .chain(hashes::COMMANDS)
        .chain(transactions::COMMANDS)
        .chain(json::COMMANDS)
        .chain(cluster::COMMANDS)
}

type Table = HashMap<&'static str, &'static CommandSpec, foldhash::fast::FixedState>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| all().map(|c| (c.name, c)).collect())
}

/// Looks a command up by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    table().get(lower).copied()
}

pub fn count() -> usize {
    table().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "{} declared twice", c.name);
        }
    }

    #[test]
    fn incomplete_key_value_lists_fail_arity() {
        let mset = lookup(b"mset").unwrap();
        assert!(mset.arity_ok(5));
        assert!(!mset.arity_ok(4));
        assert!(!mset.arity_ok(2));
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"MSET").unwrap();
        assert_eq!(mset.key_indices(5).collect::<Vec<_>>(), vec![1, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_indices(2).collect::<Vec<_>>(), vec![1]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_indices(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_indices(1).count(), 0);
    }
}
