//! List commands. Single-key commands (LPUSH, RPUSH, LPOP, LRANGE, LINDEX,
//! LSET, LREM, LTRIM, LINSERT, LPOS, ...) run on the key's shard. LMOVE and
//! RPOPLPUSH touch two keys and LMPOP several: they run on the connection,
//! under one transaction when the keys live on several shards. The blocking
//! forms (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH) wait through
//! `shard::blocking` like the sorted-set pops.
//!
//! Options, reply shapes and error texts follow Redis 7.

use bytes::Bytes;

use super::notify::{self, Notify};
use super::pops::Kind;
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::shard::blocking::{Popped, Take};
use crate::shard::journal::JournalForm;
use crate::shard::Shard;
use crate::store::{Db, SmallBytes, Value};
use crate::types::list::{ListShape, ListValue};
use crate::util::{eq_ic, now_ms, parse_i64};

const RS: &[&str] = &["read", "list", "slow"];
const RF: &[&str] = &["read", "list", "fast"];
const WF: &[&str] = &["write", "list", "fast"];
const WS: &[&str] = &["write", "list", "slow"];
const G: &str = "list";

pub static COMMANDS: &[CommandSpec] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Prepends one or more elements to a list. Creates the key if it doesn't exist.", Exec::Shard(lpush)).notify(Notify::Each(ks::LIST, "lpush")).key_flags(&["RW", "insert"]),
    cmd("rpush", -3, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Appends one or more elements to a list. Creates the key if it doesn't exist.", Exec::Shard(rpush)).notify(Notify::Each(ks::LIST, "rpush")).key_flags(&["RW", "insert"]),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Prepends one or more elements to a list only when the list exists.", Exec::Shard(lpushx)).notify(Notify::Counted(ks::LIST, "lpush")).key_flags(&["RW", "insert"]),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Appends an element to a list only when the list exists.", Exec::Shard(rpushx)).notify(Notify::Counted(ks::LIST, "rpush")).key_flags(&["RW", "insert"]),
    cmd("lpop", -2, WRITE | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", Exec::Shard(lpop)).notify(Notify::Each(ks::LIST, "lpop")).key_flags(&["RW", "access", "delete"]),
    cmd("rpop", -2, WRITE | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", Exec::Shard(rpop)).notify(Notify::Each(ks::LIST, "rpop")).key_flags(&["RW", "access", "delete"]),
    cmd("llen", 2, READONLY | FAST, (1, 1, 1), RF, G, "Returns the length of a list.", Exec::Shard(llen)),
    cmd("lindex", 3, READONLY, (1, 1, 1), RS, G, "Returns an element from a list by its index.", Exec::Shard(lindex)).key_flags(&["RO", "access"]),
    cmd("lset", 4, WRITE | DENYOOM | JOURNAL_ARGS, (1, 1, 1), WS, G, "Sets the value of an element in a list by its index.", Exec::Shard(lset)).notify(Notify::Each(ks::LIST, "lset")).key_flags(&["RW", "update"]),
    cmd("lrange", 4, READONLY, (1, 1, 1), RS, G, "Returns a range of elements from a list.", Exec::Shard(lrange)).key_flags(&["RO", "access"]),
    cmd("lrem", 4, WRITE | JOURNAL_ARGS, (1, 1, 1), WS, G, "Removes elements from a list. Deletes the list if the last element was removed.", Exec::Shard(lrem)).notify(Notify::Counted(ks::LIST, "lrem")).key_flags(&["RW", "delete"]),
    cmd("ltrim", 4, WRITE | JOURNAL_ARGS, (1, 1, 1), WS, G, "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", Exec::Shard(ltrim)).notify(Notify::Each(ks::LIST, "ltrim")).key_flags(&["RW", "delete"]),
    cmd("linsert", 5, WRITE | DENYOOM | JOURNAL_ARGS, (1, 1, 1), WS, G, "Inserts an element before or after another element in a list.", Exec::Shard(linsert)).notify(Notify::Counted(ks::LIST, "linsert")).key_flags(&["RW", "insert"]),
    cmd("lpos", -3, READONLY, (1, 1, 1), RS, G, "Returns the index of matching elements in a list.", Exec::Shard(lpos)).key_flags(&["RO", "access"]),
    cmd(
        "lmove",
        5,
        WRITE | DENYOOM,
        (1, 2, 1),
        WS,
        G,
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        Exec::Coord(handler!(async |cx, a| lmove(cx, a, false))),
    ).notify(Notify::Pick(notify::lmove)).keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["RW", "insert"])]),
    cmd(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        (1, 2, 1),
        WS,
        G,
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| lmove(cx, a, true))),
    ).notify(Notify::Pick(notify::lmove)).keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["RW", "insert"])]),
    super::cmd_numkeys(
        "lmpop",
        -4,
        WRITE,
        1,
        WS,
        G,
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| lmpop(cx, a))),
    ).notify(Notify::Pick(notify::lmpop)).key_flags(&["RW", "access", "delete"]),
    cmd(
        "blpop",
        -3,
        WRITE | BLOCKING,
        (1, -2, 1),
        &["write", "list", "slow", "blocking"],
        G,
        "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| bpop(cx, a, true))),
    ).notify(Notify::Each(ks::LIST, "lpop")).key_flags(&["RW", "access", "delete"]),
    cmd(
        "brpop",
        -3,
        WRITE | BLOCKING,
        (1, -2, 1),
        &["write", "list", "slow", "blocking"],
        G,
        "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| bpop(cx, a, false))),
    ).notify(Notify::Each(ks::LIST, "rpop")).key_flags(&["RW", "access", "delete"]),
    super::cmd_numkeys(
        "blmpop",
        -5,
        WRITE | BLOCKING,
        2,
        &["write", "list", "slow", "blocking"],
        G,
        "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| blmpop(cx, a))),
    ).notify(Notify::Pick(notify::lmpop)).key_flags(&["RW", "access", "delete"]),
    cmd(
        "blmove",
        6,
        WRITE | DENYOOM | BLOCKING,
        (1, 2, 1),
        &["write", "list", "slow", "blocking"],
        G,
        "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        Exec::Coord(handler!(async |cx, a| blmove(cx, a, false))),
    ).notify(Notify::Pick(notify::lmove)).keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["RW", "insert"])]),
    cmd(
        "brpoplpush",
        4,
        WRITE | DENYOOM | BLOCKING,
        (1, 2, 1),
        &["write", "list", "slow", "blocking"],
        G,
        "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| blmove(cx, a, true))),
    ).notify(Notify::Pick(notify::lmove)).keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["RW", "insert"])]),
];

// ------------------------------------------------------------------ helpers

fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    super::find_of(db, key, now, |v| matches!(v, Value::List(_)))
}

fn list_at(db: &mut Db, idx: u32) -> &mut ListValue {
    match &mut db.entry_mut(idx).value {
        Value::List(l) => l,
        _ => unreachable!("checked by find"),
    }
}

fn read_list(db: &mut Db, idx: u32) -> &ListValue {
    match &db.entry(idx).value {
        Value::List(l) => l,
        _ => unreachable!("checked by find"),
    }
}

fn drop_if_empty(db: &mut Db, idx: u32) {
    if matches!(&db.entry(idx).value, Value::List(l) if l.is_empty()) {
        db.remove_idx(idx);
    }
}

/// Pops up to `count` elements from one end; none when there is no key.
pub fn pop_items(db: &mut Db, key: &[u8], left: bool, count: usize, now: u64) -> CmdResult<Vec<SmallBytes>> {
    let Some(idx) = find(db, key, now)? else { return Ok(Vec::new()) };
    if count == 0 {
        // Nothing taken: the list is not written (no event, no watcher).
        return Ok(Vec::new());
    }
    let l = list_at(db, idx);
    let items: Vec<SmallBytes> = (0..count).map_while(|_| l.pop(left)).collect();
    drop_if_empty(db, idx);
    Ok(items)
}

/// WRONGTYPE when `key` holds something other than a list.
pub fn check_list(db: &mut Db, key: &[u8], now: u64) -> CmdResult<()> {
    find(db, key, now).map(|_| ())
}

/// LMPOP's arguments: (keys, from the left, count).
pub fn parse_mpop_args(args: &[Bytes]) -> CmdResult<(Vec<Bytes>, bool, usize)> {
    let (keys, right, count) = super::pops::parse_mpop(args, 1, "LEFT", "RIGHT")?;
    Ok((keys, !right, count))
}

/// Whether `key` holds a non-empty list.
pub fn has_items(db: &mut Db, key: &[u8], now: u64) -> bool {
    matches!(find(db, key, now), Ok(Some(_)))
}

/// Pushes `items` in order to one end, creating the list; its new length.
pub fn push_items<'a>(
    db: &mut Db,
    key: &[u8],
    left: bool,
    items: impl IntoIterator<Item = &'a [u8]>,
    shape: ListShape,
    now: u64,
) -> CmdResult<usize> {
    let idx = match find(db, key, now)? {
        Some(idx) => idx,
        None => db.insert_new(key, Value::List(Box::new(ListValue::new(shape))), 0),
    };
    let l = list_at(db, idx);
    for v in items {
        l.push(left, v);
    }
    let n = l.len();
    drop_if_empty(db, idx);
    Ok(n)
}

/// A Redis index (negative from the end) into a list of `len`.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// LRANGE/LTRIM's start and stop, clamped: `None` for an empty range.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

fn left_or_right(a: &[u8]) -> CmdResult<bool> {
    if eq_ic(a, "LEFT") {
        Ok(true)
    } else if eq_ic(a, "RIGHT") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

// ----------------------------------------------------------- single key

fn push(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, left: bool, only_existing: bool) -> CmdResult {
    let (now, shape) = (ctx.now, ctx.shard.cfg.encoding.list_shape());
    let db = ctx.db();
    if only_existing && find(db, &args[1], now)?.is_none() {
        out.int(0);
        return Ok(());
    }
    let n = push_items(db, &args[1], left, args[2..].iter().map(|a| &a[..]), shape, now)?;
    out.int(n as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    push(ctx, args, out, true, false)
}

fn rpush(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    push(ctx, args, out, false, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    push(ctx, args, out, true, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    push(ctx, args, out, false, true)
}

fn pop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, left: bool) -> CmdResult {
    if args.len() > 3 {
        // Unlike SPOP and ZPOPMIN (syntax error), LPOP/RPOP call this arity.
        return Err(CmdError::WrongArity(String::from_utf8_lossy(&args[0]).to_lowercase()));
    }
    let count = super::pops::parse_count(args)?;
    let now = ctx.now;
    let db = ctx.db();
    if find(db, &args[1], now)?.is_none() {
        match count {
            None => out.nil(),
            Some(_) => out.nil_array(),
        }
        return Ok(());
    }
    let items = pop_items(db, &args[1], left, count.unwrap_or(1), now)?;
    match count {
        None => out.bulk(&items[0]),
        Some(_) => {
            out.array(items.len());
            for i in &items {
                out.bulk(i);
            }
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop(ctx, args, out, true)
}

fn rpop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop(ctx, args, out, false)
}

fn llen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = match find(db, &args[1], now)? {
        Some(idx) => read_list(db, idx).len(),
        None => 0,
    };
    out.int(n as i64);
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    // Redis looks the key up (nil, WRONGTYPE) before parsing the index.
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.nil();
        return Ok(());
    };
    let i = parse_i64(&args[2])?;
    let l = read_list(db, idx);
    match index(i, l.len()).and_then(|i| l.get(i)) {
        Some(v) => out.bulk(&v),
        None => out.nil(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    // Redis looks the key up (no such key, WRONGTYPE) before parsing the index.
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else { return Err(CmdError::err("no such key")) };
    let i = parse_i64(&args[2])?;
    let len = read_list(db, idx).len();
    let Some(i) = index(i, len) else { return Err(CmdError::err("index out of range")) };
    list_at(db, idx).set(i, &args[3]);
    out.ok();
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (start, stop) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.array(0);
        return Ok(());
    };
    let l = read_list(db, idx);
    match range(start, stop, l.len()) {
        None => out.array(0),
        Some((a, b)) => {
            out.array(b - a + 1);
            for v in l.range(a, b) {
                out.bulk(&v);
            }
        }
    }
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let count = parse_i64(&args[2])?;
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    // Only a list holding a match counts as written.
    if !read_list(db, idx).iter().any(|v| *v == args[3][..]) {
        out.int(0);
        return Ok(());
    }
    let removed = list_at(db, idx).remove_matching(&args[3], limit, count < 0);
    drop_if_empty(db, idx);
    out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (start, stop) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    let now = ctx.now;
    let db = ctx.db();
    if let Some(idx) = find(db, &args[1], now)? {
        let len = read_list(db, idx).len();
        let l = list_at(db, idx);
        match range(start, stop, len) {
            Some((a, b)) => l.keep(a, b),
            None => l.keep(1, 0),
        }
        drop_if_empty(db, idx);
    }
    out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let after = if eq_ic(&args[2], "AFTER") {
        true
    } else if eq_ic(&args[2], "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let pivot = read_list(db, idx).iter().position(|v| *v == args[3][..]);
    match pivot {
        None => out.int(-1),
        Some(p) => {
            let l = list_at(db, idx);
            l.insert(if after { p + 1 } else { p }, &args[4]);
            out.int(l.len() as i64);
        }
    }
    Ok(())
}

fn lpos(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut i = 3;
    while i < args.len() {
        let val = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if eq_ic(&args[i], "RANK") {
            rank = parse_i64(val)?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            if rank == i64::MIN {
                // Redis 7.2's wording (7.0 took it and overflowed).
                return Err(CmdError::err("value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
            }
        } else if eq_ic(&args[i], "COUNT") {
            // Redis words any bad COUNT/MAXLEN (also a non-number) this way.
            let c = parse_i64(val).unwrap_or(-1);
            if c < 0 {
                return Err(CmdError::err("COUNT can't be negative"));
            }
            count = Some(c as usize);
        } else if eq_ic(&args[i], "MAXLEN") {
            let m = parse_i64(val).unwrap_or(-1);
            if m < 0 {
                return Err(CmdError::err("MAXLEN can't be negative"));
            }
            maxlen = m as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        match count {
            Some(_) => out.array(0),
            None => out.nil(),
        }
        return Ok(());
    };
    let l = read_list(db, idx);
    let want = &args[2][..];
    let scan = if maxlen == 0 { l.len() } else { maxlen.min(l.len()) };
    let len = l.len();
    let matches = |(_, v): &(usize, std::borrow::Cow<'_, [u8]>)| **v == *want;
    let order: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(l.iter().take(scan).enumerate().filter(matches).map(|(i, _)| i))
    } else {
        Box::new(l.iter().rev().take(scan).enumerate().filter(matches).map(move |(i, _)| len - 1 - i))
    };
    let skip = rank.unsigned_abs() as usize - 1;
    let limit = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let found: Vec<usize> = order.skip(skip).take(limit).collect();
    match count {
        Some(_) => {
            out.array(found.len());
            for i in found {
                out.int(i as i64);
            }
        }
        None => match found.first() {
            Some(&i) => out.int(i as i64),
            None => out.nil(),
        },
    }
    Ok(())
}

// -------------------------------------------------------- several keys

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT, and RPOPLPUSH.
pub async fn lmove(cx: &mut dyn Coord, args: &[Bytes], rpoplpush: bool) -> CmdResult {
    let (from_left, to_left) = if rpoplpush { (false, true) } else { (left_or_right(&args[3])?, left_or_right(&args[4])?) };
    move_gated(cx, args, from_left, to_left).await.map(|v| match v {
        Some(v) => cx.out().bulk(&v),
        None => cx.out().nil(),
    })
}

/// `move_one`, waiting out a migration's cut-over of the keys' slot (in
/// cluster mode both keys share a slot, so one shard job checks it).
async fn move_gated(cx: &mut dyn Coord, args: &[Bytes], from_left: bool, to_left: bool) -> CmdResult<Option<SmallBytes>> {
    let spec = super::lookup(&args[0]).ok_or(CmdError::Syntax)?;
    for _ in 0..60 {
        match move_one(cx, &args[1], &args[2], from_left, to_left).await? {
            Some(moved) => return Ok(moved),
            None => cx.after_cutover(spec, args).await?,
        }
    }
    Err(CmdError::Other("TRYAGAIN the slot is still being migrated".into()))
}

/// `LPOP key` or `RPOP key`.
fn pop_form(key: &[u8], left: bool) -> Vec<Vec<u8>> {
    vec![if left { b"LPOP".to_vec() } else { b"RPOP".to_vec() }, key.to_vec()]
}

/// `LPUSH key v` or `RPUSH key v`.
fn push_form(key: &[u8], left: bool, v: &[u8]) -> Vec<Vec<u8>> {
    vec![if left { b"LPUSH".to_vec() } else { b"RPUSH".to_vec() }, key.to_vec(), v.to_vec()]
}

/// Pops one element, journaled as the pop (LMOVE's and BLMOVE's halves: a
/// move out of a big list is not journaled as all that is left).
fn pop_journaled(sh: &mut Shard, db: usize, key: &[u8], left: bool, now: u64) -> CmdResult<Vec<SmallBytes>> {
    let form = |r: &CmdResult<Vec<SmallBytes>>| r.as_ref().ok().filter(|g| !g.is_empty()).map(|_| vec![pop_form(key, left)]);
    sh.journal_as(db, |d| pop_items(d, key, left, 1, now), form)
}

/// Pushes one element, journaled as the push.
fn push_journaled(sh: &mut Shard, db: usize, key: &[u8], left: bool, v: &[u8], now: u64) -> CmdResult<usize> {
    let form = |r: &CmdResult<usize>| r.is_ok().then(|| vec![push_form(key, left, v)]);
    let shape = sh.cfg.encoding.list_shape();
    sh.journal_as(db, |d| push_items(d, key, left, [v], shape, now), form)
}

/// How a blocked BLMOVE or BRPOPLPUSH whose destination lives on its
/// source's shard is served: the shard pops the element and pushes it onto
/// the destination in the same step (journaled as RPOPLPUSH or LMOVE, as
/// Redis propagates a served one).
#[derive(Clone)]
struct MoveTake {
    from_left: bool,
    to_left: bool,
    dst: Bytes,
    shape: ListShape,
    rpoplpush: bool,
}

impl Take for MoveTake {
    fn ready(&self, db: &mut Db, key: &[u8], now: u64) -> bool {
        has_items(db, key, now)
    }

    fn take(&self, db: &mut Db, key: &[u8], _count: usize, now: u64) -> CmdResult<Vec<(Vec<u8>, f64)>> {
        // A destination of another type fails the move before the pop.
        find(db, &self.dst, now)?;
        let got = pop_items(db, key, self.from_left, 1, now)?;
        if let Some(v) = got.first() {
            push_items(db, &self.dst, self.to_left, [&v[..]], self.shape, now)?;
            // Redis's order: the push, then the pop (and `del`).
            db.push_event(ks::LIST, if self.to_left { "lpush" } else { "rpush" }, &self.dst);
            super::pops::popped_events(db, key, Kind::List { left: self.from_left, mpop: false });
        }
        Ok(got.into_iter().map(|v| (v.to_vec(), 0.0)).collect())
    }

    /// Undoes the move: off the destination, back onto the source.
    fn put_back(&self, db: &mut Db, key: &[u8], items: Vec<(Vec<u8>, f64)>, _cfg: &crate::config::Config, now: u64) {
        for _ in &items {
            let _ = pop_items(db, &self.dst, self.to_left, 1, now);
        }
        let _ = push_items(db, key, self.from_left, items.iter().map(|(v, _)| &v[..]), self.shape, now);
    }

    fn journal_form(&self, key: &[u8], n: usize) -> Option<JournalForm> {
        if n != 1 {
            return None;
        }
        let side = |left: bool| if left { b"LEFT".to_vec() } else { b"RIGHT".to_vec() };
        Some(vec![if self.rpoplpush {
            vec![b"RPOPLPUSH".to_vec(), key.to_vec(), self.dst.to_vec()]
        } else {
            vec![b"LMOVE".to_vec(), key.to_vec(), self.dst.to_vec(), side(self.from_left), side(self.to_left)]
        }])
    }
}

/// LMOVE or RPOPLPUSH from the journal or a primary's stream (a served
/// blocked move is journaled so, as Redis propagates it), run on the
/// shard of its keys: the pop and the push in one step, journaled as the
/// command. `Err` when the destination lives on another shard here.
pub fn move_on_shard(sh: &mut Shard, db: usize, args: &[Bytes]) -> CmdResult {
    let rpoplpush = args[0].eq_ignore_ascii_case(b"rpoplpush");
    let (from_left, to_left) = if rpoplpush { (false, true) } else { (left_or_right(&args[3])?, left_or_right(&args[4])?) };
    if crate::slot::key_slot(&args[2]) as usize % sh.nshards() != sh.id {
        return Err(CmdError::Other(format!(
            "ERR {} with its keys on two shards cannot be applied here (start this node with --shards 1)",
            String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
        )));
    }
    let take = MoveTake { from_left, to_left, dst: args[2].clone(), shape: sh.cfg.encoding.list_shape(), rpoplpush };
    let src = &args[1];
    let form = |r: &CmdResult<Vec<(Vec<u8>, f64)>>| r.as_ref().ok().filter(|got| !got.is_empty()).and_then(|_| take.journal_form(src, 1));
    sh.journal_as(db, |d| take.take(d, src, 1, 0), form)?;
    Ok(())
}

/// Pops from `src` and pushes onto `dst` atomically (one job, or one
/// transaction over both shards); the element moved. `None` when the gate
/// holds the keys' slot (cluster mode).
async fn move_one(cx: &mut dyn Coord, src: &Bytes, dst: &Bytes, from_left: bool, to_left: bool) -> CmdResult<Option<Option<SmallBytes>>> {
    let db = cx.db();
    let (s, d) = (src.clone(), dst.clone());
    let (ss, ds) = (cx.engine().shard_of(src), cx.engine().shard_of(dst));
    if ss == ds {
        return cx
            .run_on(ss, move |sh| {
                let admitted = |k: &[u8]| sh.cluster.as_ref().is_none_or(|m| m.gate.admits_write(crate::slot::key_slot(k)));
                if !admitted(&s) || !admitted(&d) {
                    return Ok(None);
                }
                let now = now_ms();
                // Redis's order: a missing source answers nil before the
                // destination's type is looked at.
                let Some(idx) = find(sh.db(db), &s, now)? else {
                    return Ok(Some(None));
                };
                if s == d {
                    // A rotation: the list never empties, so it keeps its
                    // TTL (journaled as a pop and a push, which keep it
                    // too unless the list holds one element).
                    let rotate = |db: &mut Db| {
                        let l = list_at(db, idx);
                        let v = l.pop(from_left);
                        if let Some(v) = &v {
                            l.push(to_left, v);
                        }
                        (v, l.len())
                    };
                    let form = |r: &(Option<SmallBytes>, usize)| match r {
                        (Some(v), len) if *len > 1 => Some(vec![pop_form(&s, from_left), push_form(&s, to_left, v)]),
                        _ => None,
                    };
                    return Ok(Some(sh.journal_as(db, rotate, form).0));
                }
                find(sh.db(db), &d, now)?;
                let got = pop_journaled(sh, db, &s, from_left, now)?;
                if let Some(v) = got.first() {
                    push_journaled(sh, db, &d, to_left, v, now)?;
                }
                Ok(Some(got.into_iter().next()))
            })
            .await;
    }
    cx.lock(&[ss.min(ds), ss.max(ds)]).await;
    let d2 = d.clone();
    let s2 = s.clone();
    let r = async {
        if cx.run_on(ss, move |sh| find(sh.db(db), &s2, now_ms())).await?.is_none() {
            return Ok(Some(None));
        }
        cx.run_on(ds, move |sh| find(sh.db(db), &d2, now_ms()).map(|_| ())).await?;
        let got = cx.run_on(ss, move |sh| pop_journaled(sh, db, &s, from_left, now_ms())).await?;
        if let Some(v) = got.first().cloned() {
            cx.run_on(ds, move |sh| push_journaled(sh, db, &d, to_left, &v, now_ms())).await?;
        }
        Ok(Some(got.into_iter().next()))
    }
    .await;
    r
}

/// LMPOP.
pub async fn lmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (keys, left, count) = parse_mpop_args(args)?;
    super::pops::pop_first(cx, &keys, Kind::List { left, mpop: true }, count, super::pops::PopReply::NestedList, None, args).await
}

/// BLPOP / BRPOP key [key ...] timeout.
pub async fn bpop(cx: &mut dyn Coord, args: &[Bytes], left: bool) -> CmdResult {
    let timeout = super::pops::parse_timeout(&args[args.len() - 1])?;
    let keys = args[1..args.len() - 1].to_vec();
    super::pops::pop_first(cx, &keys, Kind::List { left, mpop: false }, 1, super::pops::PopReply::Pair, Some(timeout), args).await
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
pub async fn blmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let timeout = super::pops::parse_timeout(&args[1])?;
    let (keys, right, count) = super::pops::parse_mpop(args, 2, "LEFT", "RIGHT")?;
    let left = !right;
    super::pops::pop_first(cx, &keys, Kind::List { left, mpop: true }, count, super::pops::PopReply::NestedList, Some(timeout), args).await
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, and
/// BRPOPLPUSH source destination timeout: as LMOVE when the source has
/// elements; otherwise waits for one, then pushes it onto the destination.
pub async fn blmove(cx: &mut dyn Coord, args: &[Bytes], brpoplpush: bool) -> CmdResult {
    let (from_left, to_left, t) =
        if brpoplpush { (false, true, &args[3]) } else { (left_or_right(&args[3])?, left_or_right(&args[4])?, &args[5]) };
    let timeout = super::pops::parse_timeout(t)?;
    if let Some(v) = move_gated(cx, args, from_left, to_left).await? {
        cx.out().bulk(&v);
        return Ok(());
    }
    let keys = [args[1].clone()];
    let kind = Kind::List { left: from_left, mpop: false };
    let engine = cx.engine().clone();
    if engine.shard_of(&args[1]) == engine.shard_of(&args[2]) {
        // Both lists on one shard: it moves the element when it serves
        // the wait, in one step, as Redis does (no client sees it between
        // the two lists, none finds the destination unchanged after).
        let shape = engine.cfg.encoding.list_shape();
        let take = MoveTake { from_left, to_left, dst: args[2].clone(), shape, rpoplpush: brpoplpush };
        let popped = super::pops::wait_take(cx, &keys, kind, take, 1, Some(timeout)).await?;
        match popped {
            Some(Popped { error: Some(e), .. }) => return Err(e),
            Some(Popped { items, .. }) if !items.is_empty() => cx.out().bulk(&items[0].0),
            _ if cx.client_gone() => {}
            _ => cx.out().nil_array(),
        }
        return Ok(());
    }
    let popped = super::pops::wait_pop(cx, &keys, kind, 1, Some(timeout), args).await?;
    let Some(p) = popped else {
        if !cx.client_gone() {
            cx.out().nil_array();
        }
        return Ok(());
    };
    let Some((v, _)) = p.items.into_iter().next() else {
        cx.out().nil_array();
        return Ok(());
    };
    let (dst, db) = (args[2].clone(), cx.db());
    let shard = cx.engine().shard_of(&dst);
    let v2 = v.clone();
    let pushed = cx.run_on(shard, move |sh| push_journaled(sh, db, &dst, to_left, &v2, now_ms())).await;
    if let Err(e) = pushed {
        // The destination is not a list: the element goes back.
        let (src, shard) = (args[1].clone(), cx.engine().shard_of(&args[1]));
        cx.run_on(shard, move |sh| push_journaled(sh, db, &src, from_left, &v, now_ms())).await?;
        return Err(e);
    }
    cx.out().bulk(&v);
    Ok(())
}
