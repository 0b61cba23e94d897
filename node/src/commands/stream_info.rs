//! XINFO: what a stream holds (STREAM, with FULL the entries, groups,
//! pending entries and consumers), its consumer groups (GROUPS) and a
//! group's consumers (CONSUMERS), in Redis 7.0's reply shapes.

use bytes::Bytes;

use super::stream_groups::{group_of, no_group_for_key};
use super::streams::{find, read_stream, write_entry};
use super::{cmd, flag::*, sub, CommandSpec, Ctx, Exec};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::types::stream::{StreamId, StreamValue};
use crate::types::stream_group::UNKNOWN_READ;
use crate::util::{eq_ic, parse_i64};

const G: &str = "stream";
const RO: &[&str] = &["read", "stream", "slow"];

pub static COMMANDS: &[CommandSpec] =
    &[cmd("xinfo", -2, 0, (0, 0, 0), &["slow"], G, "A container for stream introspection commands.", Exec::Shard(xinfo)).subcommands(&[
        sub("xinfo|consumers", 4, READONLY, (2, 2, 1), RO, "Returns a list of the consumers in a consumer group.", Exec::Shard(xinfo))
            .tips(&["nondeterministic_output"])
            .key_flags(&["RO", "access"]),
        sub("xinfo|groups", 3, READONLY, (2, 2, 1), RO, "Returns a list of the consumer groups of a stream.", Exec::Shard(xinfo))
            .key_flags(&["RO", "access"]),
        sub(
            "xinfo|help",
            2,
            LOADING | STALE,
            (0, 0, 0),
            &["stream", "slow"],
            "Returns helpful text about the different subcommands.",
            Exec::Shard(xinfo),
        ),
        sub("xinfo|stream", -3, READONLY, (2, 2, 1), RO, "Returns information about a stream.", Exec::Shard(xinfo))
            .key_flags(&["RO", "access"]),
    ])];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn xinfo(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "HELP") {
        if args.len() != 2 {
            return Err(CmdError::subcommand_syntax("xinfo", sub));
        }
        out.help(XINFO_HELP);
        return Ok(());
    }
    if args.len() < 3 {
        return Err(CmdError::subcommand_syntax("xinfo", sub));
    }
    // STREAM's options are checked before the key, as Redis does.
    let full = if eq_ic(sub, "STREAM") { Some(stream_options(sub, &args[3..])?) } else { None };
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[2], now)? else { return Err(CmdError::NoSuchKey) };
    let s = read_stream(db, idx);
    if eq_ic(sub, "CONSUMERS") && args.len() == 4 {
        let Some(g) = group_of(s, &args[3]) else { return Err(no_group_for_key(&args[3], &args[2])) };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pending.len() as i64);
            out.bulk(b"idle");
            out.int(now.saturating_sub(c.seen_ms) as i64);
            // Redis 7.2: ms since it last got an entry, -1 if it never did.
            out.bulk(b"inactive");
            out.int(c.active_ms.map_or(-1, |a| now as i64 - a as i64));
        }
    } else if eq_ic(sub, "GROUPS") && args.len() == 3 {
        let groups: Vec<_> = s.groups.iter().flat_map(|gs| gs.by_name.iter()).collect();
        out.array(groups.len());
        for (name, g) in groups {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            out.bulk(g.last_id.text().as_bytes());
            entries_read_and_lag(out, s, g.last_id, g.entries_read);
        }
    } else if let Some(full) = full {
        stream(out, s, full);
    } else {
        return Err(CmdError::subcommand_syntax("xinfo", sub));
    }
    Ok(())
}

/// `entries-read` and `lag` of a group.
fn entries_read_and_lag(out: &mut Out, s: &StreamValue, last_id: StreamId, entries_read: i64) {
    out.bulk(b"entries-read");
    if entries_read == UNKNOWN_READ {
        out.nil();
    } else {
        out.int(entries_read);
    }
    out.bulk(b"lag");
    match s.lag(last_id, entries_read) {
        Some(l) => out.int(l),
        None => out.nil(),
    }
}

/// XINFO STREAM's options: `None` for the summary, `Some(count)` for FULL
/// (0: everything; default 10, as Redis, so one call stays bounded).
fn stream_options(sub: &[u8], opts: &[Bytes]) -> CmdResult<Option<usize>> {
    match opts {
        [] => Ok(None),
        [f] if eq_ic(f, "FULL") => Ok(Some(10)),
        [f, c, n] if eq_ic(f, "FULL") && eq_ic(c, "COUNT") => {
            let n = parse_i64(n)?;
            Ok(Some(if n < 0 { 10 } else { n as usize }))
        }
        _ => Err(CmdError::subcommand_syntax("xinfo", sub)),
    }
}

fn stream(out: &mut Out, s: &StreamValue, full: Option<usize>) {
    out.map(if full.is_some() { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    // Nodes are not held in a radix tree here: both count the nodes.
    let nodes = s.nodes() as i64;
    out.bulk(b"radix-tree-keys");
    out.int(nodes);
    out.bulk(b"radix-tree-nodes");
    out.int(nodes);
    out.bulk(b"last-generated-id");
    out.bulk(s.last_id.text().as_bytes());
    out.bulk(b"max-deleted-entry-id");
    out.bulk(s.max_deleted.text().as_bytes());
    out.bulk(b"entries-added");
    out.int(s.added as i64);
    out.bulk(b"recorded-first-entry-id");
    out.bulk(s.first_id().text().as_bytes());
    let Some(count) = full else {
        out.bulk(b"groups");
        out.int(s.groups.as_ref().map_or(0, |g| g.by_name.len()) as i64);
        for (name, e) in [(&b"first-entry"[..], s.iter().next()), (b"last-entry", s.iter().next_back())] {
            out.bulk(name);
            match e {
                Some((id, f)) => write_entry(out, &id, f),
                None => out.nil(),
            }
        }
        return;
    };
    let limit = if count == 0 { usize::MAX } else { count };
    out.bulk(b"entries");
    let n = s.len().min(limit);
    out.array(n);
    for (id, f) in s.iter().take(n) {
        write_entry(out, &id, f);
    }
    out.bulk(b"groups");
    let groups: Vec<_> = s.groups.iter().flat_map(|gs| gs.by_name.iter()).collect();
    out.array(groups.len());
    for (name, g) in groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        out.bulk(g.last_id.text().as_bytes());
        entries_read_and_lag(out, s, g.last_id, g.entries_read);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let n = g.pel.len().min(limit);
        out.array(n);
        for (id, p) in g.pel.iter().take(n) {
            out.array(4);
            out.bulk(id.text().as_bytes());
            out.bulk(&p.consumer);
            out.int(p.delivered_ms as i64);
            out.int(p.deliveries as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(5);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_ms as i64);
            out.bulk(b"active-time");
            out.int(c.active_ms.map_or(-1, |a| a as i64));
            out.bulk(b"pel-count");
            out.int(c.pending.len() as i64);
            out.bulk(b"pending");
            let n = c.pending.len().min(limit);
            out.array(n);
            for id in c.pending.iter().take(n) {
                let p = g.pel.get(id);
                out.array(3);
                out.bulk(id.text().as_bytes());
                out.int(p.map_or(0, |p| p.delivered_ms) as i64);
                out.int(p.map_or(0, |p| p.deliveries) as i64);
            }
        }
    }
}
