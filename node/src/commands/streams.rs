//! Stream commands without consumer groups: XADD (with MAXLEN/MINID
//! trimming), XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID on the key's shard, and
//! XREAD (with BLOCK) on the connection: it reads each stream on its shard
//! and, to block, waits through `shard::blocking` to be woken by a write.
//!
//! Reply shapes and error texts follow Redis 7.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::notify::Notify;
use super::pops::Kind;
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::stream::{Fields, FieldsRef, StreamId, StreamValue, Trim};
use crate::util::{eq_ic, now_ms, parse_i64};

const G: &str = "stream";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "xadd",
        -5,
        WRITE | DENYOOM | FAST | JOURNAL_REPLAY,
        (1, 1, 1),
        &["write", "stream", "fast"],
        G,
        "Appends a new message to a stream. Creates the key if it doesn't exist.",
        Exec::Shard(xadd),
    )
    .notify(Notify::Each(ks::STREAM, "xadd"))
    .tips(&["nondeterministic_output"])
    .key_flags(&["RW", "update"]),
    cmd(
        "xlen",
        2,
        READONLY | FAST,
        (1, 1, 1),
        &["read", "stream", "fast"],
        G,
        "Return the number of messages in a stream.",
        Exec::Shard(xlen),
    ),
    cmd(
        "xrange",
        -4,
        READONLY,
        (1, 1, 1),
        &["read", "stream", "slow"],
        G,
        "Returns the messages from a stream within a range of IDs.",
        Exec::Shard(xrange),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "xrevrange",
        -4,
        READONLY,
        (1, 1, 1),
        &["read", "stream", "slow"],
        G,
        "Returns the messages from a stream within a range of IDs in reverse order.",
        Exec::Shard(xrevrange),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "xdel",
        -3,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "stream", "fast"],
        G,
        "Returns the number of messages after removing them from a stream.",
        Exec::Shard(xdel),
    )
    .notify(Notify::Counted(ks::STREAM, "xdel"))
    .key_flags(&["RW", "delete"]),
    cmd(
        "xtrim",
        -4,
        WRITE | JOURNAL_REPLAY,
        (1, 1, 1),
        &["write", "stream", "slow"],
        G,
        "Deletes messages from the beginning of a stream.",
        Exec::Shard(xtrim),
    )
    .notify(Notify::Counted(ks::STREAM, "xtrim"))
    .tips(&["nondeterministic_output"])
    .key_flags(&["RW", "delete"]),
    cmd(
        "xsetid",
        -3,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "stream", "fast"],
        G,
        "An internal command for replicating stream values.",
        Exec::Shard(xsetid),
    )
    .notify(Notify::Each(ks::STREAM, "xsetid"))
    .key_flags(&["RW", "update"]),
    cmd(
        "xread",
        -4,
        READONLY | BLOCKING | MOVABLEKEYS,
        (0, 0, 0),
        &["read", "stream", "slow", "blocking"],
        G,
        "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
        Exec::Coord(handler!(async |cx, a| xread(cx, a))),
    )
    .keys(&[super::KeyRule::after_keyword("STREAMS", 1, 2).with_flags(&["RO", "access"])]),
];

pub(super) fn invalid_id() -> CmdError {
    CmdError::err("Invalid stream ID specified as stream command argument")
}

pub(super) fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    super::find_of(db, key, now, |v| matches!(v, Value::Stream(_)))
}

pub(super) fn stream_at(db: &mut Db, idx: u32) -> &mut StreamValue {
    match &mut db.entry_mut(idx).value {
        Value::Stream(s) => s,
        _ => unreachable!("checked by find"),
    }
}

pub(super) fn read_stream(db: &Db, idx: u32) -> &StreamValue {
    match &db.entry(idx).value {
        Value::Stream(s) => s,
        _ => unreachable!("checked by find"),
    }
}

pub(super) fn write_entry(out: &mut Out, id: &StreamId, fields: FieldsRef) {
    out.array(2);
    out.bulk(id.text().as_bytes());
    out.array(fields.len() * 2);
    for (f, v) in fields {
        out.bulk(f);
        out.bulk(v);
    }
}

/// `stream-node-max-entries` (`usize::MAX`: no limit).
fn node_entries(ctx: &Ctx) -> usize {
    let n = ctx.shard.engine.as_ref().map_or(Trim::NODE_ENTRIES as u64, |e| e.cfg.encoding.stream_node_max_entries.load(Relaxed));
    if n == 0 {
        usize::MAX
    } else {
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

/// A trimming clause: MAXLEN|MINID [=|~] threshold [LIMIT count], starting
/// at `args[i]`; the clause and the index after it. Approximate trimming
/// goes by nodes of `stream-node-max-entries` entries.
fn parse_trim(ctx: &Ctx, args: &[Bytes], i: usize) -> CmdResult<(Trim, usize)> {
    let minid = eq_ic(&args[i], "MINID");
    let mut j = i + 1;
    let mut t = Trim { node: node_entries(ctx), ..Trim::default() };
    if args.get(j).is_some_and(|a| &a[..] == b"~" || &a[..] == b"=") {
        t.approx = &args[j][..] == b"~";
        j += 1;
    }
    let v = args.get(j).ok_or(CmdError::Syntax)?;
    if minid {
        t.minid = Some(StreamId::parse(v, 0).ok_or_else(invalid_id)?);
    } else {
        let n = parse_i64(v).map_err(|_| CmdError::err("value is not an integer or out of range"))?;
        if n < 0 {
            return Err(CmdError::err("The MAXLEN argument must be >= 0."));
        }
        t.maxlen = Some(n as usize);
    }
    j += 1;
    if args.get(j).is_some_and(|a| eq_ic(a, "LIMIT")) {
        if !t.approx {
            return Err(CmdError::err("syntax error, LIMIT cannot be used without the special ~ option"));
        }
        let l = parse_i64(args.get(j + 1).ok_or(CmdError::Syntax)?)?;
        if l < 0 {
            return Err(CmdError::err("The LIMIT argument must be >= 0."));
        }
        t.limit = Some(l as usize);
        j += 2;
    }
    Ok((t, j))
}

/// What XADD did: the ID it gave, and if it trimmed, the oldest entry
/// left (none: the trim emptied the stream).
type Added = (StreamId, Option<Option<StreamId>>);

fn xadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let mut i = 2;
    let mut nomk = false;
    let mut trim = None;
    loop {
        let a = args.get(i).ok_or(CmdError::Syntax)?;
        if eq_ic(a, "NOMKSTREAM") {
            nomk = true;
            i += 1;
        } else if eq_ic(a, "MAXLEN") || eq_ic(a, "MINID") {
            let (t, next) = parse_trim(ctx, args, i)?;
            trim = Some(t);
            i = next;
        } else {
            break;
        }
    }
    let id_arg = &args[i];
    // The ID's syntax is checked before the arguments' count, as in Redis.
    let auto_seq = id_arg.strip_suffix(b"-*").is_some_and(|ms| std::str::from_utf8(ms).ok().and_then(|m| m.parse::<u64>().ok()).is_some());
    if &id_arg[..] != b"*" && !auto_seq && StreamId::parse(id_arg, 0).is_none() {
        return Err(invalid_id());
    }
    let pairs = &args[i + 1..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("xadd"));
    }
    let now = ctx.now;
    let per_node = node_entries(ctx);
    let key = &args[1];
    // Journaled as Redis propagates it: with the ID it got, and a trim as
    // what it removed (XTRIM MINID of the first entry left, exact).
    let form = |r: &CmdResult<Option<Added>>| {
        let Ok(Some((id, trimmed))) = r else { return None };
        let mut add = vec![b"XADD".to_vec(), key.to_vec(), id.text().into_bytes()];
        add.extend(pairs.iter().map(|a| a.to_vec()));
        let mut cmds = vec![add];
        if let Some(first) = trimmed {
            cmds.push(trim_form(key, *first));
        }
        Some(cmds)
    };
    let add = |db: &mut Db| -> CmdResult<Option<Added>> {
        let idx = find(db, key, now)?;
        if idx.is_none() && nomk {
            return Ok(None);
        }
        let last = idx.map_or(StreamId::default(), |i| read_stream(db, i).last_id);
        let id = if &id_arg[..] == b"*" {
            let ms = now.max(last.ms);
            if ms == last.ms {
                last.next().ok_or_else(|| CmdError::err("The stream has exhausted the last possible ID, unable to add more items"))?
            } else {
                StreamId { ms, seq: 0 }
            }
        } else if let Some(ms) = id_arg.strip_suffix(b"-*") {
            let ms: u64 = std::str::from_utf8(ms).ok().and_then(|m| m.parse().ok()).ok_or_else(invalid_id)?;
            if ms == last.ms && idx.is_some() {
                // The sequence never carries over into the next millisecond:
                // at its end the ID is not above the top item (Redis 7.2).
                let seq = last
                    .seq
                    .checked_add(1)
                    .ok_or_else(|| CmdError::err("The ID specified in XADD is equal or smaller than the target stream top item"))?;
                StreamId { ms, seq }
            } else {
                StreamId { ms, seq: if ms == 0 { 1 } else { 0 } }
            }
        } else {
            StreamId::parse(id_arg, 0).ok_or_else(invalid_id)?
        };
        if id == StreamId::default() {
            return Err(CmdError::err("The ID specified in XADD must be greater than 0-0"));
        }
        if idx.is_some() && id <= last {
            return Err(CmdError::err("The ID specified in XADD is equal or smaller than the target stream top item"));
        }
        let idx = match idx {
            Some(i) => i,
            None => db.insert_new(key, Value::Stream(Box::default()), 0),
        };
        let s = stream_at(db, idx);
        s.append(id, pairs.chunks_exact(2).map(|p| (&p[0][..], &p[1][..])), per_node);
        let mut trimmed = None;
        if let Some(t) = &trim {
            if s.trim(t) > 0 {
                trimmed = Some((s.len() > 0).then(|| s.first_id()));
                db.push_event(ks::STREAM, "xtrim", key);
            }
        }
        Ok(Some((id, trimmed)))
    };
    let dbi = ctx.db;
    match ctx.shard.journal_as(dbi, add, form)? {
        Some((id, _)) => out.bulk(id.text().as_bytes()),
        None => out.nil(),
    }
    Ok(())
}

/// What a trim that left `first` as the oldest entry (none: it emptied the
/// stream) is journaled as: the exact trim that removes the same entries.
fn trim_form(key: &[u8], first: Option<StreamId>) -> Vec<Vec<u8>> {
    match first {
        Some(first) => vec![b"XTRIM".to_vec(), key.to_vec(), b"MINID".to_vec(), first.text().into_bytes()],
        None => vec![b"XTRIM".to_vec(), key.to_vec(), b"MAXLEN".to_vec(), b"0".to_vec()],
    }
}

fn xlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = find(db, &args[1], now)?.map_or(0, |i| read_stream(db, i).len());
    out.int(n as i64);
    Ok(())
}

/// A range bound: `-`, `+`, an ID, or `(`ID (exclusive).
pub(super) fn bound(b: &[u8], start: bool) -> CmdResult<StreamId> {
    match b {
        b"-" => Ok(StreamId::default()),
        b"+" => Ok(StreamId::MAX),
        _ => {
            let (excl, id) = match b.strip_prefix(b"(") {
                Some(rest) => (true, rest),
                None => (false, b),
            };
            let id = StreamId::parse(id, if start { 0 } else { u64::MAX }).ok_or_else(invalid_id)?;
            if !excl {
                return Ok(id);
            }
            let moved = if start { id.next() } else { id.prev() };
            moved.ok_or_else(|| CmdError::err("invalid start ID for the interval"))
        }
    }
}

fn range(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, rev: bool) -> CmdResult {
    let (lo, hi) = if rev { (bound(&args[3], true)?, bound(&args[2], false)?) } else { (bound(&args[2], true)?, bound(&args[3], false)?) };
    let count = match args.len() {
        4 => None,
        6 if eq_ic(&args[4], "COUNT") => Some(parse_i64(&args[5])?.max(0) as usize),
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.array(0);
        return Ok(());
    };
    let s = read_stream(db, idx);
    let limit = count.unwrap_or(usize::MAX);
    let items: Vec<(StreamId, FieldsRef)> =
        if rev { s.range(lo, hi).rev().take(limit).collect() } else { s.range(lo, hi).take(limit).collect() };
    out.array(items.len());
    for (id, f) in items {
        write_entry(out, &id, f);
    }
    Ok(())
}

fn xrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range(ctx, args, out, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range(ctx, args, out, true)
}

fn xdel(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    // A missing key answers 0 before the IDs are looked at, as in Redis.
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let ids: Vec<StreamId> = args[2..].iter().map(|a| StreamId::parse(a, 0).ok_or_else(invalid_id)).collect::<CmdResult<_>>()?;
    // Only a deletion writes (watchers and keyspace events see nothing else).
    if !ids.iter().any(|id| read_stream(db, idx).contains(*id)) {
        out.int(0);
        return Ok(());
    }
    let s = stream_at(db, idx);
    let n = ids.iter().filter(|id| s.remove(**id)).count();
    out.int(n as i64);
    Ok(())
}

fn xtrim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if !(eq_ic(&args[2], "MAXLEN") || eq_ic(&args[2], "MINID")) {
        return Err(CmdError::Syntax);
    }
    let (t, next) = parse_trim(ctx, args, 2)?;
    if next != args.len() {
        return Err(CmdError::Syntax);
    }
    let now = ctx.now;
    let key = &args[1];
    let trim = |db: &mut Db| -> CmdResult<(usize, Option<StreamId>)> {
        let Some(idx) = find(db, key, now)? else { return Ok((0, None)) };
        // Only a removal writes (watchers and keyspace events see nothing else).
        if read_stream(db, idx).trim_count(&t) == 0 {
            return Ok((0, None));
        }
        let s = stream_at(db, idx);
        let n = s.trim(&t);
        Ok((n, (s.len() > 0).then(|| s.first_id())))
    };
    // An approximate trim is journaled as the exact one that removes the
    // same entries (a replay's node layout may differ).
    let form = |r: &CmdResult<(usize, Option<StreamId>)>| match r {
        Ok((n, first)) if *n > 0 => Some(vec![trim_form(key, *first)]),
        _ => None,
    };
    let dbi = ctx.db;
    let (n, _) = ctx.shard.journal_as(dbi, trim, form)?;
    out.int(n as i64);
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]: sets a stream's
/// last ID, entries-added counter and highest deleted ID.
fn xsetid(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let id = StreamId::parse(&args[2], 0).ok_or_else(invalid_id)?;
    let (mut added, mut max_deleted) = (None, StreamId::default());
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq_ic(&args[i], "ENTRIESADDED") && more {
            let n = parse_i64(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            added = Some(n as u64);
        } else if eq_ic(&args[i], "MAXDELETEDID") && more {
            max_deleted = StreamId::parse(&args[i + 1], 0).ok_or_else(invalid_id)?;
            if id < max_deleted {
                return Err(CmdError::err("The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else { return Err(CmdError::NoSuchKey) };
    let s = read_stream(db, idx);
    if s.len() > 0 {
        if s.iter().next_back().is_some_and(|(top, _)| id < top) {
            return Err(CmdError::err("The ID specified in XSETID is smaller than the target stream top item"));
        }
        if added.is_some_and(|a| (s.len() as u64) > a) {
            return Err(CmdError::err("The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    let s = stream_at(db, idx);
    s.last_id = id;
    if let Some(a) = added {
        s.added = a;
    }
    if max_deleted != StreamId::default() {
        s.max_deleted = max_deleted;
    }
    out.ok();
    Ok(())
}

/// Entries of `key` after `after`, at most `count`; `None` when there are
/// none (or no such stream).
fn read_after(db: &mut Db, key: &[u8], after: StreamId, count: usize, now: u64) -> CmdResult<Option<Vec<(StreamId, Fields)>>> {
    let Some(idx) = find(db, key, now)? else { return Ok(None) };
    let Some(from) = after.next() else { return Ok(None) };
    let items: Vec<(StreamId, Fields)> =
        read_stream(db, idx).range(from, StreamId::MAX).take(count).map(|(i, f)| (i, f.to_fields())).collect();
    Ok((!items.is_empty()).then_some(items))
}

/// The last ID of the stream at `key` (`$`), 0-0 when none.
fn last_id(db: &mut Db, key: &[u8], now: u64) -> CmdResult<StreamId> {
    Ok(find(db, key, now)?.map_or(StreamId::default(), |i| read_stream(db, i).last_id))
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...].
pub async fn xread(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (mut count, mut block) = (usize::MAX, None);
    let mut i = 1;
    while i < args.len() && !eq_ic(&args[i], "STREAMS") {
        let val = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if eq_ic(&args[i], "COUNT") {
            let c = parse_i64(val)?;
            count = if c <= 0 { usize::MAX } else { c as usize };
        } else if eq_ic(&args[i], "BLOCK") {
            let ms = parse_i64(val).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            block = Some(ms as u64);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    if block.is_some() && cx.session().is_none() {
        // Named as the script wrote it, as Redis does.
        return Err(CmdError::err(format!("{} command is not allowed with BLOCK option from scripts", String::from_utf8_lossy(&args[0]))));
    }
    let rest = &args[(i + 1).min(args.len())..];
    if i >= args.len() || rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::err("Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
    }
    let n = rest.len() / 2;
    let keys: Vec<Bytes> = rest[..n].to_vec();
    let db = cx.db();
    let mut after = Vec::with_capacity(n);
    for (k, id) in keys.iter().zip(&rest[n..]) {
        if &id[..] == b"$" {
            let k2 = k.clone();
            let shard = cx.engine().shard_of(k);
            after.push(cx.run_on(shard, move |sh| last_id(sh.db(db), &k2, now_ms())).await?);
        } else {
            after.push(StreamId::parse(id, 0).ok_or_else(invalid_id)?);
        }
    }
    let deadline = block.map(|ms| (ms > 0).then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(ms)));
    loop {
        let mut found: Vec<(Bytes, Vec<(StreamId, Fields)>)> = Vec::new();
        // A stream named many times is read as many times: bounded by
        // reply-max-bytes as the reply would be.
        let mut bytes = 0;
        for (k, a) in keys.iter().zip(&after) {
            let (k2, a) = (k.clone(), *a);
            let shard = cx.engine().shard_of(k);
            if let Some(items) = cx.run_on(shard, move |sh| read_after(sh.db(db), &k2, a, count, now_ms())).await? {
                crate::resp::tally_reply(&mut bytes, items.iter().map(|(_, f)| f.heap_size()).sum())?;
                found.push((k.clone(), items));
            }
        }
        if !found.is_empty() {
            // RESP3: a map of key to entries; RESP2: [key, entries] pairs.
            if cx.out().resp3 {
                cx.out().map(found.len());
            } else {
                cx.out().array(found.len());
            }
            for (k, items) in found {
                if !cx.out().resp3 {
                    cx.out().array(2);
                }
                cx.out().bulk(&k);
                cx.out().array(items.len());
                for (id, f) in &items {
                    write_entry(cx.out(), id, f.view());
                }
            }
            return Ok(());
        }
        if !wait_for_entries(cx, &keys, deadline, args, false).await? {
            return Ok(());
        }
    }
}

/// XREAD / XREADGROUP BLOCK with nothing to read yet: waits until a write
/// to one of `keys` (then true: read again) or the deadline (`None` inside
/// it: no limit), answering nil when it passes, when the client may not
/// block (MULTI/EXEC, a script) or has gone (then false).
pub(super) async fn wait_for_entries(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    deadline: Option<Option<tokio::time::Instant>>,
    args: &[Bytes],
    group: bool,
) -> CmdResult<bool> {
    let Some(limit) = deadline.filter(|_| cx.may_block()) else {
        cx.out().nil_array();
        return Ok(false);
    };
    let remaining = match limit {
        None => None,
        Some(d) => match d.checked_duration_since(tokio::time::Instant::now()) {
            Some(r) if !r.is_zero() => Some(r),
            _ => {
                cx.out().nil_array();
                return Ok(false);
            }
        },
    };
    let woke = super::pops::wait_pop(cx, keys, Kind::Stream { group }, 1, Some(remaining), args).await?;
    let unblocked = cx.session().is_some_and(|s| std::mem::take(&mut s.unblocked));
    if woke.is_none() && (unblocked || cx.client_gone() || limit.is_some_and(|d| tokio::time::Instant::now() >= d)) {
        if !cx.client_gone() {
            cx.out().nil_array();
        }
        return Ok(false);
    }
    Ok(true)
}
