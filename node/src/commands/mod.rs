//! The command table. Every command is declared once, as a `CommandSpec` in
//! its family's module (`strings`, `keys`, `hashes`, `zsets`, `json`, `connection`,
//! `server`); the declaration's arity, flags and key positions drive argument
//! checks, routing to shards and the output of `COMMAND`. A container
//! (CLIENT, CONFIG, OBJECT, ...) declares its subcommands the same way, each
//! with its own arity, flags and keys (`CommandSpec::resolve` finds the one
//! a command line names). Helper modules (`scan`) hold the implementation of
//! commands declared by a family.

pub mod acl;
pub mod bitmaps;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod cluster_config;
pub mod connection;
pub mod coord;
pub mod debug;
pub mod docs;
pub mod gather;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod info;
pub mod internal;
pub mod json;
pub mod keys;
pub mod keyspec;
pub mod latency;
pub mod lists;
pub mod lolwut;
pub mod memory_stats;
pub mod migrate;
pub mod module;
pub mod monitor;
mod names;
pub mod notify;
pub mod observe;
pub mod persistence;
pub mod pops;
pub mod pubsub;
pub mod replication;
pub mod routing;
pub mod run;
pub mod scan;
pub mod scripting;
pub mod server;
pub mod session;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod stats;
pub mod stream_claims;
pub mod stream_groups;
pub mod stream_info;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod transactions;
pub mod zsets;

use bytes::Bytes;

pub use coord::{Coord, CoordFn, Flow, LocalFut};
pub use gather::{distinct_keys, gather, Write};
pub use keyspec::{Begin, Find, KeyIter, KeyRule, KeySpecs};
pub use names::{lookup, lookup_args, lookup_args_original, lookup_full, lookup_full_original, lookup_original, rename};
pub use run::{exec_one, exec_one_at, run_command};

use crate::error::CmdResult;
use crate::resp::Out;
use crate::shard::Shard;
use crate::store::Db;

/// What a shard-side handler sees: the shard, the client's database, and the
/// time the command started (for TTL checks). A `Split` command running as
/// one shard's part of a multi-shard call also gets `part`, where it
/// reports what the combining step needs as typed values.
pub struct Ctx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now: u64,
    pub part: Option<&'a mut PartReply>,
}

/// What one shard's part of a split command reports besides its RESP
/// output: its count (`Combine::Sum`), and where its header and each of
/// its elements end in the output (`Combine::Array`).
#[derive(Default, Debug)]
pub struct PartReply {
    pub count: i64,
    pub ends: Vec<usize>,
}

impl Ctx<'_> {
    /// A `Combine::Sum` handler's result.
    #[inline]
    pub fn count(&mut self, n: i64) {
        if let Some(p) = &mut self.part {
            p.count = n;
        }
    }

    /// A `Combine::Array` handler marks the end of its array header and of
    /// each element.
    #[inline]
    pub fn mark(&mut self, out: &Out) {
        if let Some(p) = &mut self.part {
            p.ends.push(out.buf.len());
        }
    }
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
    /// Coordinates shards or uses the connection: runs against a `Coord`
    /// (a client connection or a running script).
    Coord(CoordFn),
    /// Runs a script: on the shard of its declared keys when they share one
    /// (batched there with a pipeline's other commands), else holding every
    /// shard (`scripting::eval`).
    Script(ScriptCall),
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

/// Which script a script-running command names (EVAL & co., FCALL & co.).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScriptCall {
    /// EVAL / EVAL_RO (`sha: false`), EVALSHA / EVALSHA_RO.
    Eval { sha: bool, ro: bool },
    /// FCALL / FCALL_RO.
    Fcall { ro: bool },
}

/// Command flags, as COMMAND reports them.
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    /// Redis 6's `random` flag. Redis 7 no longer prints it (the
    /// `nondeterministic_output` tip says it instead), so neither does
    /// COMMAND here; nothing else reads it.
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MOVABLEKEYS: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    /// Runs at once even between MULTI and EXEC (EXEC, DISCARD, ...); not
    /// shown by COMMAND.
    pub const NO_QUEUE: u32 = 1 << 13;
    /// May block the client (BZPOPMIN & co.).
    pub const BLOCKING: u32 = 1 << 14;
    /// May run while a script is busy (SCRIPT KILL, AUTH, ...); a busy
    /// thread's own clients get it answered by `CommandSpec::busy` when
    /// the command declares one, else once the script ends.
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// May run on a RESP2 connection with subscriptions (the subscription
    /// commands, PING, QUIT, RESET); not shown by COMMAND.
    pub const SUBSCRIBED: u32 = 1 << 16;
    /// Not logged in the slow log (EXEC: its commands are, one by one).
    pub const SKIP_SLOWLOG: u32 = 1 << 17;
    /// The journal may record the command as sent (it is deterministic,
    /// touches only its keys and does not depend on the time) instead of
    /// the resulting state of its keys: a ZINCRBY on a big sorted set then
    /// journals one command, not the set. Not shown by COMMAND.
    pub const JOURNAL_ARGS: u32 = 1 << 18;
    /// Not shown to MONITOR when it ends (the script commands, which show
    /// themselves before the commands they call).
    pub const SKIP_MONITOR: u32 = 1 << 19;
    /// The command changes only its key's expiry (or deletes the key): the
    /// journal records the effect as Redis propagates it — `PEXPIREAT key
    /// <ms>`, `PERSIST key` or `DEL key` — not the key's whole state (an
    /// EXPIRE on a big hash then journals one short command). Not shown by
    /// COMMAND.
    pub const JOURNAL_TTL: u32 = 1 << 20;
    /// The handler journals the command's effect itself
    /// (`Shard::journal_as`) as this same command in a deterministic form
    /// (XADD with the ID it got, XTRIM MINID of the first entry left),
    /// which the journal's replay may therefore run. Not shown by COMMAND.
    pub const JOURNAL_REPLAY: u32 = 1 << 21;
    /// May produce replication traffic without being a write (PUBLISH,
    /// PFCOUNT, EVAL, FCALL: Redis's `may_replicate`): held by CLIENT PAUSE
    /// WRITE and refused in read-only scripts. Not shown by COMMAND (Redis
    /// 7.0 does not print it either).
    pub const MAY_REPLICATE: u32 = 1 << 22;

    /// The flags COMMAND prints, in the order Redis prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Where the keys are (`keyspec`).
    pub keys: KeySpecs,
    /// Routing tips for cluster clients, as COMMAND reports them.
    pub tips: &'static [&'static str],
    /// ACL categories (without the '@'): those Redis declares; COMMAND
    /// adds those the flags imply (`acl_categories`).
    pub acl: &'static [&'static str],
    /// Redis's command group (COMMAND DOCS); a subcommand's is its
    /// container's.
    pub group: &'static str,
    pub summary: &'static str,
    pub exec: Exec,
    /// A container's subcommands (`client|kill`, ...), empty otherwise.
    pub subs: &'static [CommandSpec],
    /// How the busy hook of a thread running a busy script answers the
    /// command for that thread's clients (`flag::ALLOW_BUSY` commands that
    /// can be answered without the connection).
    pub busy: Option<BusyFn>,
    /// Where the keys really are when the key rules can only say it
    /// loosely (Redis's `getkeys_proc`; MIGRATE, whose rules also name the
    /// empty key argument of its KEYS form): every user of key positions
    /// follows it, COMMAND INFO still prints the rules.
    pub key_finder: Option<KeyFinder>,
    /// Keys the key specs cannot find (Redis's `getkeys_proc`: SORT's
    /// STORE key), as COMMAND GETKEYS reports them after the specs' keys.
    pub extra_keys: Option<ExtraKeysFn>,
    /// The keyspace event it publishes for the keys it changes.
    pub notify: notify::Notify,
    /// The argument naming the first field or member it looks up inside
    /// its key's hash, set or sorted set (0: none): a pipelined batch prefetches where
    /// the value keeps it (`Db::prefetch_members`).
    pub member: u8,
}

/// A command's own key finder: the first and last index of its keys, one
/// argument apart, or `None` for no keys.
pub type KeyFinder = fn(&[Bytes]) -> Option<(usize, usize)>;

/// The argument indices of keys a command finds itself, with their access
/// flags (`args` include the name).
pub type ExtraKeysFn = fn(&[Bytes]) -> Option<(usize, &'static [&'static str])>;

/// What a command answered by the busy hook did beyond its reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BusyAnswer {
    /// Replied (written to the output).
    Replied,
    /// Replied, and the client is now authenticated.
    Authenticated,
    /// The server is stopping: no reply, the connection closes.
    Shutdown,
    /// Nothing written: the connection runs the command once the script
    /// ends (it needs the connection's state, an AUTH as another user).
    Defer,
    /// MULTI: the hook starts the client's transaction (replies +OK) if it
    /// has none; a nested MULTI is left to the connection.
    Multi,
}

/// A command's answer from the busy hook: the engine, the arguments,
/// whether the client is authenticated, and where to reply.
pub type BusyFn = fn(&crate::shard::Engine, &[Bytes], bool, &mut Out) -> CmdResult<BusyAnswer>;

/// What the client registry records as a connection's last command.
impl From<&'static CommandSpec> for crate::shard::clients::CmdName {
    fn from(spec: &'static CommandSpec) -> Self {
        crate::shard::clients::CmdName(&spec.name)
    }
}

impl CommandSpec {
    /// The declaration that applies to a command line (`args` include the
    /// name): a container called with a subcommand, the subcommand's; else
    /// the command's own (a container called without one fails its arity
    /// check). `None` for a subcommand the container does not have.
    #[inline]
    pub fn resolve(&self, args: &[Bytes]) -> Option<&CommandSpec> {
        match args.get(1) {
            Some(sub) if !self.subs.is_empty() => self.sub(sub),
            _ => Some(self),
        }
    }

    /// The subcommand named `name` (case-insensitively), if declared.
    pub fn sub(&self, name: &[u8]) -> Option<&CommandSpec> {
        self.subs.iter().find(|s| s.sub_name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// A subcommand's own name (`kill` for `client|kill`); the name of a
    /// command that is not one.
    pub fn sub_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }

    /// Whether this is a container command (it has subcommands).
    pub fn is_container(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Arity check, including that a trailing list of key groups (as MSET's
    /// key-value pairs) is complete, so a malformed command is refused before
    /// any part of it runs.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        let count_ok = if a >= 0 { argc == a as usize } else { argc >= (-a) as usize };
        // A trailing list of key groups (MSET's pairs) must be complete.
        let groups_ok = match self.keys.rules() {
            [KeyRule { begin: Begin::Index(first), find: Find::Range { last: -1, step, .. }, .. }] if *step > 1 && *first > 0 => {
                argc.saturating_sub(*first).is_multiple_of(*step)
            }
            _ => true,
        };
        count_ok && groups_ok
    }

    /// Redis's legacy (first key, last key, step) triple, as COMMAND reports it.
    pub fn legacy_keys(&self) -> (i32, i32, i32) {
        keyspec::legacy_triple(self.keys.rules())
    }

    /// Indices of the key arguments in `args` (which include the name),
    /// following every key rule (of the subcommand `args` name, for a
    /// container: `resolve`). Arguments that do not hold the keys a rule
    /// expects (a bad `numkeys`, no `STREAMS`) yield none for it: the
    /// command itself reports the error.
    #[inline]
    pub fn key_indices<'a>(&'a self, args: &'a [Bytes]) -> KeyIter<'a> {
        let spec = self.resolve(args).unwrap_or(self);
        match spec.key_finder {
            Some(find) => KeyIter::span(find(args)),
            None => KeyIter::new(spec.keys.rules(), args),
        }
    }

    /// Declares the command's own key finder (see `key_finder`).
    pub const fn find_keys(mut self, f: KeyFinder) -> Self {
        self.key_finder = Some(f);
        self
    }

    /// The step between key groups of a single fixed range (MSET's pairs
    /// are 2 arguments wide); 1 otherwise.
    pub fn step(&self) -> usize {
        match self.keys.rules() {
            [KeyRule { find: Find::Range { step, .. }, .. }] => (*step).max(1),
            _ => 1,
        }
    }

    /// Replaces the key rules (for shapes other than one fixed range);
    /// a rule whose keys can move makes the command `movablekeys`.
    pub const fn keys(mut self, rules: &[KeyRule]) -> Self {
        self.keys = KeySpecs::new(rules);
        if self.keys.movable() {
            self.flags |= flag::MOVABLEKEYS;
        }
        self
    }

    /// Sets the access flags COMMAND reports for the keys of every rule
    /// declared so far (so after `.keys(..)`), in Redis's order: one of
    /// `RO`, `RW`, `OW` (overwrites), `RM` (removes), then `access`,
    /// `update`, `insert`, `delete`, `incomplete`, `variable_flags` as
    /// Redis's key specs have them. Rules with flags of their own
    /// (`KeyRule::with_flags`) need not use this.
    pub const fn key_flags(mut self, flags: &'static [&'static str]) -> Self {
        self.keys = self.keys.with_flags(flags);
        self
    }

    /// Declares the keys the command finds itself (`extra_keys`).
    pub const fn extra_keys(mut self, f: ExtraKeysFn) -> Self {
        self.extra_keys = Some(f);
        self
    }

    /// Declares argument `at` the first field or member it looks up in its
    /// key's value (see `member`).
    pub const fn member_at(mut self, at: u8) -> Self {
        self.member = at;
        self
    }

    /// Sets the keyspace event it publishes.
    pub const fn notify(mut self, n: notify::Notify) -> Self {
        self.notify = n;
        self
    }

    pub const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    /// Declares a container's subcommands (declared with `sub`).
    pub const fn subcommands(mut self, subs: &'static [CommandSpec]) -> Self {
        self.subs = subs;
        self
    }

    /// How the busy hook answers the command (see `busy`); the command
    /// must be `flag::ALLOW_BUSY`.
    pub const fn when_busy(mut self, f: BusyFn) -> Self {
        self.busy = Some(f);
        self
    }

    pub fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// The ACL categories COMMAND prints, in Redis's order: the declared
    /// ones and those Redis derives from the flags (`write`, `read` unless
    /// `scripting`, `admin` and `dangerous`, `pubsub`, `fast`, `blocking`,
    /// and `slow` for whatever is not `fast`), then any category Redis does
    /// not know (RedisJSON's `json`).
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let declared = |c: &str| self.acl.contains(&c);
        let implied = |c: &str| match c {
            "write" => self.has_flag(flag::WRITE),
            "read" => self.has_flag(flag::READONLY) && !declared("scripting"),
            "admin" | "dangerous" => self.has_flag(flag::ADMIN),
            "pubsub" => self.has_flag(flag::PUBSUB),
            "fast" => self.has_flag(flag::FAST),
            "blocking" => self.has_flag(flag::BLOCKING),
            "slow" => !self.has_flag(flag::FAST) && !declared("fast"),
            _ => false,
        };
        let mut cats: Vec<&'static str> = ACL_CATEGORIES.iter().copied().filter(|c| declared(c) || implied(c)).collect();
        cats.extend(self.acl.iter().filter(|c| !ACL_CATEGORIES.contains(c)));
        cats
    }
}

/// Redis's ACL categories, in the order COMMAND prints them.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Shorthand used by the family modules' tables: `keys` is Redis's legacy
/// (first, last, step) triple, `(0, 0, 0)` for none; other shapes follow
/// with `.keys(..)`.
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
    let keys = if keys.0 > 0 { KeySpecs::new(&[KeyRule::range(keys.0 as usize, keys.1, keys.2 as usize)]) } else { KeySpecs::NONE };
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        tips: &[],
        acl,
        group,
        summary,
        exec,
        subs: &[],
        busy: None,
        key_finder: None,
        extra_keys: None,
        notify: notify::Notify::None,
        member: 0,
    }
}

/// A container's subcommand, named in full (`"client|kill"`); otherwise as
/// `cmd` (its group is its container's). Its arity counts the container's
/// name and its own, as Redis's does.
pub const fn sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static [&'static str],
    summary: &'static str,
    exec: Exec,
) -> CommandSpec {
    cmd(name, arity, flags, keys, acl, "", summary, exec)
}

/// A command whose keys follow a `numkeys` argument at index `at`.
#[allow(clippy::too_many_arguments)]
pub const fn cmd_numkeys(
    name: &'static str,
    arity: i32,
    flags: u32,
    at: usize,
    acl: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
    exec: Exec,
) -> CommandSpec {
    cmd(name, arity, flags, (0, 0, 0), acl, group, summary, exec).keys(&[KeyRule::numkeys(at)])
}

/// The slab index of the live key `key` when its value is of the type `is`
/// accepts; WRONGTYPE for another type. The type-family modules' `find`.
pub fn find_of(db: &mut crate::store::Db, key: &[u8], now: u64, is: fn(&crate::store::Value) -> bool) -> CmdResult<Option<u32>> {
    match db.lookup(key, now) {
        None => Ok(None),
        Some(idx) if is(&db.entry(idx).value) => Ok(Some(idx)),
        Some(_) => Err(crate::error::CmdError::WrongType),
    }
}

/// Every command, from every family.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    connection::COMMANDS
        .iter()
        .chain(client::COMMANDS)
        .chain(acl::COMMANDS)
        .chain(server::COMMANDS)
        .chain(persistence::COMMANDS)
        .chain(slowlog::COMMANDS)
        .chain(monitor::COMMANDS)
        .chain(replication::COMMANDS)
        .chain(latency::COMMANDS)
        .chain(strings::COMMANDS)
        .chain(keys::COMMANDS)
        .chain(migrate::COMMANDS)
        .chain(hashes::COMMANDS)
        .chain(transactions::COMMANDS)
        .chain(json::COMMANDS)
        .chain(zsets::COMMANDS)
        .chain(lists::COMMANDS)
        .chain(sets::COMMANDS)
        .chain(sort::COMMANDS)
        .chain(pubsub::COMMANDS)
        .chain(streams::COMMANDS)
        .chain(stream_groups::COMMANDS)
        .chain(stream_claims::COMMANDS)
        .chain(stream_info::COMMANDS)
        .chain(debug::COMMANDS)
        .chain(module::COMMANDS)
        .chain(lolwut::COMMANDS)
        .chain(bitmaps::COMMANDS)
        .chain(hyperloglog::COMMANDS)
        .chain(geo::COMMANDS)
        .chain(scripting::COMMANDS)
        .chain(cluster::COMMANDS)
}

/// Redis's arity error for the command line `args` names (a subcommand's:
/// `wrong number of arguments for 'client|kill' command`), for handlers
/// whose checks go beyond the declared arity (CONFIG SET's pairs).
pub fn arity_error(args: &[Bytes]) -> crate::error::CmdError {
    let name = match lookup_args(args) {
        Ok(spec) => spec.name,
        Err(Some(container)) => container.name,
        Err(None) => return crate::error::CmdError::wrong_arity(&String::from_utf8_lossy(args.first().map_or(&[][..], |a| a))),
    };
    crate::error::CmdError::wrong_arity(name)
}

/// Whether a command of this name exists (what the scripting registry is
/// given for `redis.acl_check_cmd`).
pub fn is_command(name: &[u8]) -> bool {
    lookup(name).is_some()
}

pub fn count() -> usize {
    names::table().len()
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
    fn subcommands_are_declared_in_full() {
        for c in all() {
            assert!(!c.name.contains('|'), "{}: a subcommand at the top level", c.name);
            let mut seen = std::collections::HashSet::new();
            for s in c.subs {
                assert_eq!(s.name, s.name.to_ascii_lowercase());
                assert!(s.name.strip_prefix(c.name).is_some_and(|r| r.starts_with('|')), "{} is not named {}|...", s.name, c.name);
                assert!(seen.insert(s.sub_name()), "{} declared twice", s.name);
                assert!(s.subs.is_empty(), "{}: one level of subcommands only", s.name);
                assert!(s.arity.unsigned_abs() >= 2, "{}: the arity counts the container and the subcommand", s.name);
                assert!(s.group.is_empty(), "{}: a subcommand's group is its container's", s.name);
            }
            assert!(c.busy.is_none() || c.has_flag(flag::ALLOW_BUSY), "{}: a busy answer without allow_busy", c.name);
            assert!(
                c.subs.iter().all(|s| s.busy.is_none() || s.has_flag(flag::ALLOW_BUSY)),
                "{}: a busy answer without allow_busy",
                c.name
            );
        }
    }

    #[test]
    fn subcommands_resolve() {
        let object = lookup(b"OBJECT").unwrap();
        assert_eq!(object.resolve(&args(&["object", "Encoding", "k"])).map(|s| s.name), Some("object|encoding"));
        assert_eq!(object.resolve(&args(&["object"])).map(|s| s.name), Some("object"));
        assert!(object.resolve(&args(&["object", "nosuch", "k"])).is_none());
        let get = lookup(b"get").unwrap();
        assert_eq!(get.resolve(&args(&["get", "k"])).map(|s| s.name), Some("get"));
        let names = |a: &[&str]| lookup_args(&args(a)).map(|s| s.name).map_err(|e| e.map(|c| c.name));
        assert_eq!(names(&["client", "KILL", "id", "1"]), Ok("client|kill"));
        assert_eq!(names(&["client", "nosuch"]), Err(Some("client")));
        assert_eq!(names(&["nosuch"]), Err(None));
        assert_eq!(lookup_full(b"CLIENT|Kill").map(|s| s.name), Some("client|kill"));
        assert_eq!(lookup_full(b"client").map(|s| s.name), Some("client"));
        assert!(lookup_full(b"get|x").is_none());
        assert!(lookup_full(b"client|nosuch").is_none());
        assert_eq!(
            arity_error(&args(&["config", "SET", "a", "b", "c"])).to_string(),
            "ERR wrong number of arguments for 'config|set' command"
        );
    }

    #[test]
    fn subcommand_keys_and_flags() {
        // The container has no keys; its subcommands do, and the key
        // positions follow the subcommand a command line names.
        let object = lookup(b"object").unwrap();
        assert_eq!(object.keys.rules().len(), 0);
        assert_eq!(object.key_indices(&args(&["object", "encoding", "k"])).collect::<Vec<_>>(), vec![2]);
        assert_eq!(object.key_indices(&args(&["object", "help"])).count(), 0);
        let memory = lookup(b"memory").unwrap();
        assert_eq!(memory.key_indices(&args(&["memory", "usage", "k", "samples", "5"])).collect::<Vec<_>>(), vec![2]);
        let find = |a: &[&str]| lookup_args(&args(a)).ok().expect("declared");
        let kill = find(&["client", "kill", "id", "1"]);
        assert!(kill.has_flag(flag::NOSCRIPT) && kill.has_flag(flag::ADMIN));
        assert!(!kill.arity_ok(2) && kill.arity_ok(3));
        let script_kill = find(&["script", "kill"]);
        assert!(script_kill.has_flag(flag::ALLOW_BUSY) && script_kill.busy.is_some());
        assert!(!find(&["script", "load", "x"]).has_flag(flag::ALLOW_BUSY));
    }

    #[test]
    fn incomplete_key_value_lists_fail_arity() {
        let mset = lookup(b"mset").unwrap();
        assert!(mset.arity_ok(5));
        assert!(!mset.arity_ok(4));
        assert!(!mset.arity_ok(2));
    }

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"MSET").unwrap();
        assert_eq!(mset.key_indices(&args(&["mset", "a", "1", "b", "2"])).collect::<Vec<_>>(), vec![1, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_indices(&args(&["get", "a"])).collect::<Vec<_>>(), vec![1]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_indices(&args(&["del", "a", "b", "c"])).collect::<Vec<_>>(), vec![1, 2, 3]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_indices(&args(&["ping"])).count(), 0);
    }

    #[test]
    fn numkeys_positions() {
        let eval = lookup(b"eval").unwrap();
        assert_eq!(eval.key_indices(&args(&["eval", "s", "2", "a", "b", "x"])).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(eval.key_indices(&args(&["eval", "s", "0", "x"])).count(), 0);
        // Invalid counts name no keys; EVAL itself reports the error.
        assert_eq!(eval.key_indices(&args(&["eval", "s", "3", "a"])).count(), 0);
        assert_eq!(eval.key_indices(&args(&["eval", "s", "-1", "a"])).count(), 0);
        assert_eq!(eval.key_indices(&args(&["eval", "s", "x", "a"])).count(), 0);
        assert_eq!(eval.legacy_keys(), (0, 0, 0));
        assert!(eval.has_flag(flag::MOVABLEKEYS));
    }
}
