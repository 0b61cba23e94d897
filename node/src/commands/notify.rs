//! The keyspace events of commands. Each write command declares what it
//! publishes for the keys it changed (`CommandSpec::notify`, Redis's event
//! names and classes); after the command, every key its database noted
//! (`store::notify`) gets that event, preceded by `new` for a key it created
//! and followed by `del` for one it left empty and deleted. Expiry and
//! eviction during the command publish their own events. Commands that run
//! through a coordinator (RENAME across shards, SINTERSTORE, ...) get the
//! same treatment for each job they send (`wrap`).

use std::sync::Arc;

use bytes::Bytes;

use super::CommandSpec;
use crate::config::keyspace_events::*;
use crate::shard::{Job, Shard};
use crate::store::notify::NoteKind;

/// Events: (class, name).
pub type Events = &'static [(u32, &'static str)];

/// What a command publishes for each key it changed.
#[derive(Clone, Copy)]
pub enum Notify {
    /// Nothing (reads, and writes Redis publishes nothing for).
    None,
    /// This event.
    Each(u32, &'static str),
    /// This event once per time the key is named (MSET k 1 k 2 sets `k`
    /// twice).
    EachArg(u32, &'static str),
    /// This event, unless the command's integer reply is 0 or negative
    /// (it counts what changed: SADD, SREM, SMOVE, LREM, EXPIRE ... NX).
    Counted(u32, &'static str),
    /// A destination key: this event if the key exists afterwards,
    /// `del` if the command deleted it (an empty result).
    Store(u32, &'static str),
    /// Chosen from the arguments for each key (LMOVE's source and
    /// destination, SET with a TTL, ...).
    Pick(PickFn),
    /// `Pick`, unless the integer reply is 0 or negative (as `Counted`).
    PickCounted(PickFn),
}

/// Picks the events of one changed key from what the command did to it.
pub type PickFn = fn(args: &[Bytes], key: &Changed) -> Events;

/// A key a command changed.
pub struct Changed<'a> {
    pub key: &'a [u8],
    /// In the command's database (not MOVE's or COPY ... DB's target).
    pub home_db: bool,
    /// It exists after the command.
    pub exists: bool,
    /// The command created it (`new` is already published).
    pub created: bool,
}

/// Publishes the events of the command that just ran on `sh` in database
/// `db` (nothing unless notifications are on). A command that failed
/// publishes nothing of its own (what expired or was evicted meanwhile is
/// still told).
#[inline]
pub fn after_command(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], reply: &[u8], failed: bool) {
    if crate::store::notify::on() {
        let unchanged =
            matches!(spec.notify, Notify::Counted(..) | Notify::PickCounted(_)) && (reply == b":0\r\n" || reply.starts_with(b":-"));
        publish(sh, db, if failed || unchanged { Notify::None } else { spec.notify }, args, failed);
        key_misses(sh, db, spec, args);
    }
}

/// The keys of MSET/MSETNX (every other argument from the first).
fn spec_keys(args: &[Bytes]) -> impl Iterator<Item = &Bytes> {
    args.iter().skip(1).step_by(2)
}

/// `keymiss` for each key a read command looked for and did not find (as
/// Redis's reads do; EXISTS looks without telling).
fn key_misses(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes]) {
    if !crate::store::notify::events() {
        return;
    }
    let flags = sh.cfg.notify_keyspace_events.load(std::sync::atomic::Ordering::Relaxed);
    if flags & KEY_MISS == 0 || !spec.has_flag(super::flag::READONLY) || spec.name == "exists" {
        return;
    }
    for i in spec.key_indices(args) {
        if !sh.db(db).contains(&args[i]) {
            sh.notify(db, KEY_MISS, "keymiss", &args[i]);
        }
    }
}

fn publish(sh: &mut Shard, db: usize, notify: Notify, args: &[Bytes], failed: bool) {
    if !crate::store::notify::events() {
        sh.invalidate_notes();
        return;
    }
    // EachArg: keys already told (a key named twice is noted twice).
    let mut told: Vec<crate::store::SmallBytes> = Vec::new();
    for (d, note) in sh.take_notes() {
        if sh.notify_note(d, &note) && note.kind != NoteKind::New {
            continue;
        }
        let exists = sh.db(d).contains(&note.key);
        let one;
        let events: &[(u32, &str)] = match notify {
            Notify::None => &[],
            Notify::Store(_, _) if !exists => &[(GENERIC, "del")],
            Notify::Each(class, event) | Notify::EachArg(class, event) | Notify::Counted(class, event) | Notify::Store(class, event) => {
                one = [(class, event)];
                &one
            }
            Notify::Pick(f) | Notify::PickCounted(f) => {
                f(args, &Changed { key: &note.key, home_db: d == db, exists, created: note.kind == NoteKind::New })
            }
        };
        let times = match notify {
            Notify::EachArg(..) if told.contains(&note.key) => 0,
            Notify::EachArg(..) => {
                told.push(note.key.clone());
                spec_keys(args).filter(|k| **k == *note.key).count().max(1)
            }
            _ => 1,
        };
        for _ in 0..times {
            for &(class, event) in events {
                sh.notify(d, class, event, &note.key);
            }
        }
        let removal = |e: &str| matches!(e, "del" | "rename_from" | "move_from");
        if !exists && events.last().is_some_and(|e| !removal(e.1)) {
            sh.notify(d, GENERIC, "del", &note.key);
        }
    }
    if failed {
        sh.drop_extra_events();
    } else {
        sh.publish_extra_events();
    }
}

/// A coordinator command whose jobs publish its events: its declaration,
/// database and arguments.
pub type Running = Arc<(&'static CommandSpec, usize, Vec<Bytes>)>;

/// What `run_command` records for a coordinator command while
/// notifications are on.
pub fn running(spec: &'static CommandSpec, db: usize, args: &[Bytes]) -> Option<Running> {
    crate::store::notify::on().then(|| Arc::new((spec, db, args.to_vec())))
}

/// `job`, followed by publishing the events of `running`'s command for
/// what the job changed.
pub fn wrap(running: &Option<Running>, job: Job) -> Job {
    match running {
        Some(r) if crate::store::notify::on() => {
            let r = r.clone();
            Box::new(move |sh: &mut Shard| {
                job(sh);
                publish(sh, r.1, r.0.notify, &r.2, false);
            })
        }
        _ => job,
    }
}

// The events of commands whose events depend on their arguments.

fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// SET: `set`, and `expire` when it set a TTL.
pub fn set(args: &[Bytes], _: &Changed) -> Events {
    if args.iter().skip(3).any(|a| ["EX", "PX", "EXAT", "PXAT"].iter().any(|o| is(a, o))) {
        &[(STRING, "set"), (GENERIC, "expire")]
    } else {
        &[(STRING, "set")]
    }
}

/// SETEX, PSETEX.
pub fn set_with_ttl(_: &[Bytes], _: &Changed) -> Events {
    &[(STRING, "set"), (GENERIC, "expire")]
}

/// EXPIRE & co.: `expire`, or `del` when the time had passed.
pub fn expire(_: &[Bytes], k: &Changed) -> Events {
    if k.exists {
        &[(GENERIC, "expire")]
    } else {
        &[(GENERIC, "del")]
    }
}

/// GETEX: `persist`, `expire` or `del`, as its option did.
pub fn getex(args: &[Bytes], k: &Changed) -> Events {
    match args.get(2) {
        Some(a) if is(a, "PERSIST") => &[(GENERIC, "persist")],
        Some(_) => expire(args, k),
        None => &[],
    }
}

/// ZADD: `zincr` with INCR.
pub fn zadd(args: &[Bytes], _: &Changed) -> Events {
    let opts = args.iter().skip(2).take_while(|a| ["NX", "XX", "GT", "LT", "CH", "INCR"].iter().any(|o| is(a, o)));
    if opts.clone().any(|a| is(a, "INCR")) {
        &[(ZSET, "zincr")]
    } else {
        &[(ZSET, "zadd")]
    }
}

/// LMOVE, BLMOVE, RPOPLPUSH, BRPOPLPUSH: a pop on the source, a push on the
/// destination (both on one key that is both).
pub fn lmove(args: &[Bytes], k: &Changed) -> Events {
    let key = k.key;
    let (from_left, to_left) = match args.get(3) {
        Some(w) if !is(&args[0], "brpoplpush") => (is(w, "LEFT"), args.get(4).is_some_and(|w| is(w, "LEFT"))),
        _ => (false, true),
    };
    let (src, dst) = (key == &args[1][..], key == &args[2][..]);
    match (src, dst, from_left, to_left) {
        // Redis tells the push first when both ends are one list.
        (true, true, true, true) => &[(LIST, "lpush"), (LIST, "lpop")],
        (true, true, true, false) => &[(LIST, "rpush"), (LIST, "lpop")],
        (true, true, false, true) => &[(LIST, "lpush"), (LIST, "rpop")],
        (true, true, false, false) => &[(LIST, "rpush"), (LIST, "rpop")],
        (true, false, true, _) => &[(LIST, "lpop")],
        (true, false, false, _) => &[(LIST, "rpop")],
        (false, true, _, true) => &[(LIST, "lpush")],
        (false, true, _, false) => &[(LIST, "rpush")],
        _ => &[],
    }
}

/// The direction argument of LMPOP/BLMPOP/ZMPOP/BZMPOP (after the keys).
fn mpop_dir(args: &[Bytes]) -> Option<&Bytes> {
    let at = if args[0].len() > 1 && (args[0][0] | 0x20) == b'b' { 2 } else { 1 };
    let n: usize = std::str::from_utf8(args.get(at)?).ok()?.parse().ok()?;
    args.get(at + 1 + n)
}

/// LMPOP, BLMPOP.
pub fn lmpop(args: &[Bytes], _: &Changed) -> Events {
    match mpop_dir(args) {
        Some(d) if is(d, "LEFT") => &[(LIST, "lpop")],
        _ => &[(LIST, "rpop")],
    }
}

/// ZMPOP, BZMPOP.
pub fn zmpop(args: &[Bytes], _: &Changed) -> Events {
    match mpop_dir(args) {
        Some(d) if is(d, "MIN") => &[(ZSET, "zpopmin")],
        _ => &[(ZSET, "zpopmax")],
    }
}

/// RENAME, RENAMENX: the destination is deleted and added again, so it
/// is always `new`.
pub fn rename(args: &[Bytes], k: &Changed) -> Events {
    if k.key == &args[1][..] {
        &[(GENERIC, "rename_from")]
    } else if k.created {
        &[(GENERIC, "rename_to")]
    } else {
        &[(NEW, "new"), (GENERIC, "rename_to")]
    }
}

/// MOVE: the key leaves the command's database for the other one.
pub fn move_key(_: &[Bytes], k: &Changed) -> Events {
    if k.home_db {
        &[(GENERIC, "move_from")]
    } else {
        &[(GENERIC, "move_to")]
    }
}

/// COPY: only the destination changes (deleted and added again with
/// REPLACE, so always `new`).
pub fn copy(args: &[Bytes], k: &Changed) -> Events {
    if k.key != &args[2][..] && k.home_db {
        &[]
    } else if k.created {
        &[(GENERIC, "copy_to")]
    } else {
        &[(NEW, "new"), (GENERIC, "copy_to")]
    }
}

/// RESTORE (REPLACE deletes the key and adds it again: always `new`).
pub fn restore(_: &[Bytes], k: &Changed) -> Events {
    if k.created {
        &[(GENERIC, "restore")]
    } else {
        &[(NEW, "new"), (GENERIC, "restore")]
    }
}

/// SMOVE.
pub fn smove(args: &[Bytes], k: &Changed) -> Events {
    if k.key == &args[1][..] {
        &[(SET, "srem")]
    } else {
        &[(SET, "sadd")]
    }
}

/// PFMERGE: its destination.
pub fn pfmerge(args: &[Bytes], k: &Changed) -> Events {
    if k.key == &args[1][..] {
        &[(STRING, "pfadd")]
    } else {
        &[]
    }
}
