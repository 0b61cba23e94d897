//! Stream consumer-group commands: XGROUP (CREATE, SETID, DESTROY,
//! CREATECONSUMER, DELCONSUMER, HELP), XACK, XPENDING and XINFO GROUPS /
//! CONSUMERS on the key's shard, and XREADGROUP on the connection: it
//! checks every stream and group first, then serves each stream on its
//! shard and, with BLOCK and only `>` IDs, waits like XREAD to be woken
//! by a write.
//!
//! Reply shapes and error texts follow Redis 7.0 (t_stream.c).

use bytes::Bytes;

use super::notify::Notify;
use super::streams::{bound, find, invalid_id, read_stream, stream_at, write_entry};
use super::{cmd, flag::*, sub, CommandSpec, Coord, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::shard::journal::JournalForm;
use crate::store::{Db, Value};
use crate::types::stream::{Fields, StreamId, StreamValue};
use crate::types::stream_group::{Group, UNKNOWN_READ};
use crate::util::{eq_ic, now_ms, parse_i64};

const G: &str = "stream";
const HELP: &str = "Returns helpful text about the different subcommands.";
const RW: &[&str] = &["write", "stream", "slow"];
const RO: &[&str] = &["read", "stream", "slow"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("xgroup", -2, 0, (0, 0, 0), &["slow"], G, "A container for consumer groups commands.", Exec::Shard(xgroup)).subcommands(&[
        sub("xgroup|create", -5, WRITE | DENYOOM | JOURNAL_ARGS, (2, 2, 1), RW, "Creates a consumer group.", Exec::Shard(xgroup))
            .notify(Notify::Each(ks::STREAM, "xgroup-create"))
            .key_flags(&["RW", "insert"]),
        sub(
            "xgroup|createconsumer",
            5,
            WRITE | DENYOOM | JOURNAL_ARGS,
            (2, 2, 1),
            RW,
            "Creates a consumer in a consumer group.",
            Exec::Shard(xgroup),
        )
        .notify(Notify::Each(ks::STREAM, "xgroup-createconsumer"))
        .key_flags(&["RW", "insert"]),
        sub("xgroup|delconsumer", 5, WRITE | JOURNAL_ARGS, (2, 2, 1), RW, "Deletes a consumer from a consumer group.", Exec::Shard(xgroup))
            .notify(Notify::Each(ks::STREAM, "xgroup-delconsumer"))
            .key_flags(&["RW", "delete"]),
        sub("xgroup|destroy", 4, WRITE | JOURNAL_ARGS, (2, 2, 1), RW, "Destroys a consumer group.", Exec::Shard(xgroup))
            .notify(Notify::Each(ks::STREAM, "xgroup-destroy"))
            .key_flags(&["RW", "delete"]),
        sub("xgroup|help", 2, LOADING | STALE, (0, 0, 0), &["stream", "slow"], HELP, Exec::Shard(xgroup)),
        sub(
            "xgroup|setid",
            -5,
            WRITE | JOURNAL_ARGS,
            (2, 2, 1),
            RW,
            "Sets the last-delivered ID of a consumer group.",
            Exec::Shard(xgroup),
        )
        .notify(Notify::Each(ks::STREAM, "xgroup-setid"))
        .key_flags(&["RW", "update"]),
    ]),
    cmd(
        "xack",
        -4,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "stream", "fast"],
        G,
        "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
        Exec::Shard(xack),
    )
    .key_flags(&["RW", "update"]),
    cmd(
        "xpending",
        -3,
        READONLY,
        (1, 1, 1),
        RO,
        G,
        "Returns the information and entries from a stream consumer group's pending entries list.",
        Exec::Shard(xpending),
    )
    .tips(&["nondeterministic_output"])
    .key_flags(&["RO", "access"]),
    cmd(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MOVABLEKEYS,
        (0, 0, 0),
        &["write", "stream", "slow", "blocking"],
        G,
        "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
        Exec::Coord(handler!(async |cx, a| xreadgroup(cx, a))),
    )
    .keys(&[super::KeyRule::after_keyword("STREAMS", 4, 2).with_flags(&["RO", "access"])]),
];

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// An argument as Redis's `%s` prints it in an error: up to its first NUL.
pub(super) fn lossy(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub(super) fn no_group_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::Other(format!("NOGROUP No such consumer group '{}' for key name '{}'", lossy(group), lossy(key)))
}

/// A strict ID (no `-`/`+`), as Redis's streamParseStrictIDOrReply.
pub(super) fn strict_id(b: &[u8]) -> CmdResult<StreamId> {
    StreamId::parse(b, 0).ok_or_else(invalid_id)
}

pub(super) fn group_mut<'a>(s: &'a mut StreamValue, name: &[u8]) -> Option<&'a mut Group> {
    s.groups.as_mut()?.by_name.get_mut(name)
}

pub(super) fn group_of<'a>(s: &'a StreamValue, name: &[u8]) -> Option<&'a Group> {
    s.groups.as_ref()?.by_name.get(name)
}

fn xgroup(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if args.len() == 2 && eq_ic(sub, "HELP") {
        out.help(XGROUP_HELP);
        return Ok(());
    }
    let syntax = || CmdError::subcommand_syntax("xgroup", sub);
    if args.len() < 4 {
        return Err(syntax());
    }
    let (create, setid) = (eq_ic(sub, "CREATE"), eq_ic(sub, "SETID"));
    let (mut mkstream, mut entries_read) = (false, UNKNOWN_READ);
    let mut i = 5;
    while i < args.len() {
        if create && eq_ic(&args[i], "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && eq_ic(&args[i], "ENTRIESREAD") && i + 1 < args.len() {
            entries_read = parse_i64(&args[i + 1])?;
            if entries_read < 0 && entries_read != UNKNOWN_READ {
                return Err(CmdError::err("value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            return Err(syntax());
        }
    }
    let (key, name) = (&args[2], &args[3][..]);
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, key, now)?;
    if !mkstream {
        let Some(idx) = idx else {
            return Err(CmdError::err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        };
        let needs_group = setid || eq_ic(sub, "CREATECONSUMER") || eq_ic(sub, "DELCONSUMER");
        if needs_group && group_of(read_stream(db, idx), name).is_none() {
            return Err(no_group_for_key(name, key));
        }
    }
    let n = args.len();
    if create && (5..=8).contains(&n) {
        let id = if &args[4][..] == b"$" { idx.map_or(StreamId::default(), |i| read_stream(db, i).last_id) } else { strict_id(&args[4])? };
        if idx.is_some_and(|i| group_of(read_stream(db, i), name).is_some()) {
            return Err(CmdError::Other("BUSYGROUP Consumer Group name already exists".into()));
        }
        let idx = match idx {
            Some(i) => i,
            None => db.insert_new(key, Value::Stream(Box::default()), 0),
        };
        let s = stream_at(db, idx);
        s.groups.get_or_insert_with(Box::default).by_name.insert(name.into(), Group::new(id, entries_read));
        out.ok();
    } else if setid && (n == 5 || n == 7) {
        let Some(idx) = idx else { return Err(syntax()) };
        let s = stream_at(db, idx);
        let id = match &args[4][..] {
            b"$" => s.last_id,
            b"-" => StreamId::default(),
            b"+" => StreamId::MAX,
            other => strict_id(other)?,
        };
        if let Some(g) = group_mut(s, name) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        out.ok();
    } else if eq_ic(sub, "DESTROY") && n == 4 {
        let Some(idx) = idx else { return Err(syntax()) };
        let exists = group_of(read_stream(db, idx), name).is_some();
        if exists {
            let s = stream_at(db, idx);
            if let Some(gs) = s.groups.as_mut() {
                gs.by_name.remove(name);
                if gs.by_name.is_empty() {
                    s.groups = None;
                }
            }
        }
        out.int(exists as i64);
    } else if eq_ic(sub, "CREATECONSUMER") && n == 5 {
        let Some(idx) = idx else { return Err(syntax()) };
        let exists = group_of(read_stream(db, idx), name).is_some_and(|g| g.consumers.contains_key(&args[4][..]));
        if !exists {
            if let Some(g) = group_mut(stream_at(db, idx), name) {
                // A replay looks keys up at time 0 (nothing expires); the
                // consumer is seen now.
                g.create_consumer(&args[4], if now == 0 { now_ms() } else { now });
            }
        }
        out.int(!exists as i64);
    } else if eq_ic(sub, "DELCONSUMER") && n == 5 {
        let Some(idx) = idx else { return Err(syntax()) };
        let exists = group_of(read_stream(db, idx), name).is_some_and(|g| g.consumers.contains_key(&args[4][..]));
        let mut pending = 0;
        if exists {
            if let Some(g) = group_mut(stream_at(db, idx), name) {
                pending = g.delete_consumer(&args[4]).unwrap_or(0);
            }
        }
        out.int(pending as i64);
    } else {
        return Err(syntax());
    }
    Ok(())
}

fn xack(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    let Some(idx) = idx.filter(|i| group_of(read_stream(db, *i), &args[2]).is_some()) else {
        out.int(0);
        return Ok(());
    };
    let ids: Vec<StreamId> = args[3..].iter().map(|a| strict_id(a)).collect::<CmdResult<_>>()?;
    let pending = |db: &Db| group_of(read_stream(db, idx), &args[2]).map_or(0, |g| ids.iter().filter(|id| g.pel.contains_key(id)).count());
    let mut n = 0;
    if pending(db) > 0 {
        if let Some(g) = group_mut(stream_at(db, idx), &args[2]) {
            n = ids.iter().filter(|id| g.ack(**id)).count();
        }
    }
    out.int(n as i64);
    Ok(())
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]].
fn xpending(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if n >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if eq_ic(&args[3], "IDLE") {
            min_idle = parse_i64(&args[4])?;
            if n < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = parse_i64(args.get(at + 2).ok_or(CmdError::Syntax)?)?.max(0) as usize;
        let start = pending_bound(&args[at], true)?;
        let end = pending_bound(&args[at + 1], false)?;
        range = Some((min_idle, start, end, count, args.get(at + 3).cloned()));
    }
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    let Some(g) = idx.and_then(|i| group_of(read_stream(db, i), &args[2])) else {
        return Err(CmdError::Other(format!("NOGROUP No such key '{}' or consumer group '{}'", lossy(&args[1]), lossy(&args[2]))));
    };
    let Some((min_idle, start, end, count, consumer)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                out.bulk(first.text().as_bytes());
                out.bulk(last.text().as_bytes());
                let owners: Vec<_> = g.consumers.iter().filter(|(_, c)| !c.pending.is_empty()).collect();
                out.array(owners.len());
                for (name, c) in owners {
                    out.array(2);
                    out.bulk(name);
                    out.bulk(c.pending.len().to_string().as_bytes());
                }
            }
            _ => {
                out.nil();
                out.nil();
                out.nil_array();
            }
        }
        return Ok(());
    };
    // Lazily, so a small COUNT reads only that much of a long PEL.
    let hi = end.max(start);
    let ids: Box<dyn Iterator<Item = StreamId> + '_> = match &consumer {
        Some(c) => match g.consumers.get(&c[..]) {
            Some(c) => Box::new(c.pending.range(start..=hi).copied()),
            None => Box::new(std::iter::empty()),
        },
        None => Box::new(g.pel.range(start..=hi).map(|(id, _)| *id)),
    };
    let idle_of = |p: &crate::types::stream_group::Pending| now.saturating_sub(p.delivered_ms) as i64;
    let rows: Vec<_> = ids
        .filter(|id| *id <= end)
        .filter_map(|id| g.pel.get(&id).map(|p| (id, p)))
        .filter(|(_, p)| min_idle == 0 || idle_of(p) >= min_idle)
        .take(count)
        .collect();
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        out.bulk(id.text().as_bytes());
        out.bulk(&p.consumer);
        out.int(idle_of(p));
        out.int(p.deliveries as i64);
    }
    Ok(())
}

/// XPENDING's interval bounds (as XRANGE's, with its own error texts).
pub(super) fn pending_bound(b: &[u8], start: bool) -> CmdResult<StreamId> {
    match bound(b, start) {
        Err(_) if b.starts_with(b"(") && StreamId::parse(&b[1..], 0).is_some() => {
            Err(CmdError::err(if start { "invalid start ID for the interval" } else { "invalid end ID for the interval" }))
        }
        r => r,
    }
}

/// What XREADGROUP serves from one stream: entries (`None` fields for a
/// pending ID whose entry is gone).
type Served = Vec<(StreamId, Option<Fields>)>;

/// Checks that `key` is a stream with group `group` (XREADGROUP's first
/// pass, in argument order).
fn check_group(db: &mut Db, key: &[u8], group: &[u8], now: u64) -> CmdResult {
    let idx = find(db, key, now)?;
    if idx.is_some_and(|i| group_of(read_stream(db, i), group).is_some()) {
        return Ok(());
    }
    Err(CmdError::Other(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        lossy(key),
        lossy(group)
    )))
}

/// What one XREADGROUP asks of each of its streams.
#[derive(Clone, Copy)]
struct GroupRead<'a> {
    group: &'a [u8],
    consumer: &'a [u8],
    /// The consumer's pending entries after this ID; `None`: the `>` ID.
    history: Option<StreamId>,
    count: usize,
    noack: bool,
}

/// Serves one stream of an XREADGROUP: the consumer's pending entries
/// after `history`, or (`None`, the `>` ID) new entries after the group's
/// last delivered ID, which it then owns unless `noack`. `None` when there
/// is nothing to serve now (a `>` read with nothing new).
fn serve(db: &mut Db, key: &[u8], req: GroupRead, now: u64) -> CmdResult<Option<Served>> {
    let GroupRead { group, consumer, history, count, noack } = req;
    let Some(idx) = find(db, key, now)? else { return Ok(None) };
    let s = read_stream(db, idx);
    let Some(g) = group_of(s, group) else {
        return Err(CmdError::Other("NOGROUP the consumer group this client was blocked on no longer exists".into()));
    };
    if let Some(after) = history {
        let ids: Vec<StreamId> = match (after.next(), g.consumers.get(consumer)) {
            (Some(start), Some(c)) => c.pending.range(start..).take(count).copied().collect(),
            _ => Vec::new(),
        };
        let items: Served = ids.iter().map(|id| (*id, s.get(*id).map(|f| f.to_fields()))).collect();
        let g = group_mut(stream_at(db, idx), group).expect("checked above");
        let created = g.touch_consumer(consumer, now);
        for (id, f) in &items {
            if let (Some(_), Some(p)) = (f, g.pel.get_mut(id)) {
                p.delivered_ms = now;
                p.deliveries += 1;
            }
        }
        if created {
            db.push_event(ks::STREAM, "xgroup-createconsumer", key);
        }
        return Ok(Some(items));
    }
    let Some(from) = g.last_id.next().filter(|_| s.len() > 0 && s.iter().next_back().is_some_and(|(id, _)| id > g.last_id)) else {
        return Ok(None);
    };
    let mut read = g.entries_read;
    let mut items: Served = Vec::new();
    for (id, f) in s.range(from, StreamId::MAX).take(count) {
        read = if read != UNKNOWN_READ && !s.tombstones_after(id) {
            read + 1
        } else if s.added > 0 {
            s.estimate_read(id)
        } else {
            read
        };
        items.push((id, Some(f.to_fields())));
    }
    let g = group_mut(stream_at(db, idx), group).expect("checked above");
    let created = g.touch_consumer(consumer, now);
    if let Some((last, _)) = items.last() {
        g.last_id = *last;
        g.entries_read = read;
    }
    if !noack {
        for (id, _) in &items {
            g.deliver(*id, consumer, now);
        }
        if !items.is_empty() {
            g.mark_active(consumer, now);
        }
    }
    if created {
        db.push_event(ks::STREAM, "xgroup-createconsumer", key);
    }
    Ok(Some(items))
}

/// `serve`, journaled as Redis propagates a read of a group (the read
/// changes the group, not the entries: journaling the stream's state
/// would copy all of it on every read): per entry delivered, `XCLAIM key
/// group consumer 0 id TIME <delivered> RETRYCOUNT <n> FORCE JUSTID LASTID
/// <group's last>`; for new entries `XGROUP SETID key group <last>
/// ENTRIESREAD <n>`; before them, for a consumer the read created,
/// `XGROUP CREATECONSUMER`.
fn serve_journaled(sh: &mut crate::shard::Shard, db: usize, key: &[u8], req: GroupRead, now: u64) -> CmdResult<Option<Served>> {
    if !sh.journaling() {
        return serve(sh.db(db), key, req, now);
    }
    let GroupRead { group, consumer, history, noack, .. } = req;
    let existed = |d: &mut Db| {
        find(d, key, now).ok().flatten().and_then(|i| group_of(read_stream(d, i), group).map(|g| g.consumers.contains_key(consumer)))
    };
    let run = |d: &mut Db| -> CmdResult<(Option<Served>, Option<JournalForm>)> {
        let had = existed(d).unwrap_or(true);
        let served = serve(d, key, req, now)?;
        let Some(idx) = find(d, key, now)? else { return Ok((served, None)) };
        let Some(g) = group_of(read_stream(d, idx), group) else { return Ok((served, None)) };
        let arg = |b: &[u8]| b.to_vec();
        let last = g.last_id.text().into_bytes();
        let mut cmds: JournalForm = Vec::new();
        if !had && g.consumers.contains_key(consumer) {
            cmds.push(vec![arg(b"XGROUP"), arg(b"CREATECONSUMER"), arg(key), arg(group), arg(consumer)]);
        }
        let items = served.as_deref().unwrap_or_default();
        for (id, f) in items {
            let Some(p) = g.pel.get(id).filter(|_| f.is_some() && !noack) else { continue };
            cmds.push(vec![
                arg(b"XCLAIM"),
                arg(key),
                arg(group),
                arg(consumer),
                arg(b"0"),
                id.text().into_bytes(),
                arg(b"TIME"),
                p.delivered_ms.to_string().into_bytes(),
                arg(b"RETRYCOUNT"),
                p.deliveries.to_string().into_bytes(),
                arg(b"FORCE"),
                arg(b"JUSTID"),
                arg(b"LASTID"),
                last.clone(),
            ]);
        }
        if history.is_none() && !items.is_empty() {
            let read = g.entries_read.to_string().into_bytes();
            cmds.push(vec![arg(b"XGROUP"), arg(b"SETID"), arg(key), arg(group), last.clone(), arg(b"ENTRIESREAD"), read]);
        }
        Ok((served, Some(cmds)))
    };
    let form = |r: &CmdResult<(Option<Served>, Option<JournalForm>)>| r.as_ref().ok().and_then(|(_, f)| f.clone());
    sh.journal_as(db, run, form).map(|(served, _)| served)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK]
/// STREAMS key [key ...] id [id ...].
pub async fn xreadgroup(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (mut count, mut block, mut noack, mut names) = (usize::MAX, None, false, None);
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let a = &args[i];
        if eq_ic(a, "BLOCK") && more > 0 {
            let ms = parse_i64(&args[i + 1]).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            block = Some(ms as u64);
            i += 1;
        } else if eq_ic(a, "COUNT") && more > 0 {
            let c = parse_i64(&args[i + 1])?;
            count = if c <= 0 { usize::MAX } else { c as usize };
            i += 1;
        } else if eq_ic(a, "STREAMS") && more > 0 {
            if !more.is_multiple_of(2) {
                return Err(CmdError::err("Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            streams_at = Some(i + 1);
            break;
        } else if eq_ic(a, "GROUP") && more >= 2 {
            names = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if eq_ic(a, "NOACK") {
            noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if block.is_some() && cx.session().is_none() {
        // Named as the script wrote it, as Redis does.
        return Err(CmdError::err(format!("{} command is not allowed with BLOCK option from scripts", String::from_utf8_lossy(&args[0]))));
    }
    let Some(at) = streams_at else { return Err(CmdError::Syntax) };
    let Some((group, consumer)) = names else { return Err(CmdError::err("Missing GROUP option for XREADGROUP")) };
    let n = (args.len() - at) / 2;
    let keys: Vec<Bytes> = args[at..at + n].to_vec();
    let db = cx.db();
    let mut history = Vec::with_capacity(n);
    for (k, id) in keys.iter().zip(&args[at + n..]) {
        let (k2, g2) = (k.clone(), group.clone());
        let shard = cx.engine().shard_of(k);
        cx.run_on(shard, move |sh| check_group(sh.db(db), &k2, &g2, now_ms())).await?;
        history.push(match &id[..] {
            b"$" => return Err(CmdError::err("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")),
            b">" => None,
            _ => Some(strict_id(id)?),
        });
    }
    let deadline = block.map(|ms| (ms > 0).then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(ms)));
    let mut waited = false;
    loop {
        let mut found: Vec<(Bytes, Served)> = Vec::new();
        // A stream's history named many times is read as many times:
        // bounded by reply-max-bytes (entries already delivered stay
        // pending, to be read again or claimed).
        let mut bytes = 0;
        for (k, h) in keys.iter().zip(&history) {
            let (k2, g2, c2, h) = (k.clone(), group.clone(), consumer.clone(), *h);
            let shard = cx.engine().shard_of(k);
            let run = move |sh: &mut crate::shard::Shard| {
                // A stream deleted (or replaced by another type) while the
                // reader waited ends the wait, as Redis's
                // unblockDeletedStreamReadgroupClients does.
                if waited && !matches!(find(sh.db(db), &k2, now_ms()), Ok(Some(_))) {
                    return Err(CmdError::Other("UNBLOCKED the stream key no longer exists".into()));
                }
                let req = GroupRead { group: &g2, consumer: &c2, history: h, count, noack };
                serve_journaled(sh, db, &k2, req, now_ms())
            };
            if let Some(items) = cx.run_on(shard, run).await? {
                crate::resp::tally_reply(&mut bytes, items.iter().map(|(_, f)| f.as_ref().map_or(0, |f| f.heap_size())).sum())?;
                found.push((k.clone(), items));
            }
        }
        if !found.is_empty() {
            let out = cx.out();
            if out.resp3 {
                out.map(found.len());
            } else {
                out.array(found.len());
            }
            for (k, items) in found {
                if !out.resp3 {
                    out.array(2);
                }
                out.bulk(&k);
                out.array(items.len());
                for (id, f) in &items {
                    match f {
                        Some(f) => write_entry(out, id, f.view()),
                        None => {
                            out.array(2);
                            out.bulk(id.text().as_bytes());
                            out.nil_array();
                        }
                    }
                }
            }
            return Ok(());
        }
        if !super::streams::wait_for_entries(cx, &keys, deadline, args, true).await? {
            return Ok(());
        }
        waited = true;
    }
}
