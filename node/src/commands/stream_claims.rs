//! Taking over pending entries of a consumer group: XCLAIM (IDLE, TIME,
//! RETRYCOUNT, FORCE, JUSTID, LASTID) and XAUTOCLAIM (COUNT, JUSTID), on
//! the key's shard. Pending entries whose stream entry is gone are
//! dropped from the group instead of claimed, as Redis 7 does.

use bytes::Bytes;

use super::stream_groups::{group_mut, group_of, lossy, pending_bound, strict_id};
use super::streams::{find, read_stream, stream_at, write_entry};
use super::{cmd, flag::*, CommandSpec, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::Db;
use crate::types::stream::{Fields, StreamId};
use crate::util::{eq_ic, parse_i64};

const G: &str = "stream";
const ACL: &[&str] = &["write", "stream", "fast"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "xclaim",
        -6,
        WRITE | FAST | JOURNAL_REPLAY,
        (1, 1, 1),
        ACL,
        G,
        "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
        Exec::Shard(xclaim),
    )
    .tips(&["nondeterministic_output"])
    .key_flags(&["RW", "update"]),
    cmd(
        "xautoclaim",
        -6,
        WRITE | FAST,
        (1, 1, 1),
        ACL,
        G,
        "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
        Exec::Shard(xautoclaim),
    )
    .tips(&["nondeterministic_output"])
    .key_flags(&["RW", "delete"]),
];

fn no_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Other(format!("NOGROUP No such key '{}' or consumer group '{}'", lossy(key), lossy(group)))
}

/// An integer argument, or `ERR <text>` when it is not one.
fn int_or(b: &[u8], text: &str) -> CmdResult<i64> {
    parse_i64(b).map_err(|_| CmdError::err(text))
}

/// The stream at `key` holding group `group`, or NOGROUP.
fn stream_with_group(db: &mut Db, args: &[Bytes], now: u64) -> CmdResult<u32> {
    let idx = find(db, &args[1], now)?;
    idx.filter(|i| group_of(read_stream(db, *i), &args[2]).is_some()).ok_or_else(|| no_group(&args[1], &args[2]))
}

/// A claimed entry in the reply: its ID alone (JUSTID) or the entry.
fn write_claimed(out: &mut Out, id: &StreamId, fields: Option<&Fields>) {
    match fields {
        Some(f) => write_entry(out, id, f.view()),
        None => out.bulk(id.text().as_bytes()),
    }
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
/// [TIME unix-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id].
fn xclaim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let idx = stream_with_group(db, args, now)?;
    let min_idle = int_or(&args[4], "Invalid min-idle-time argument for XCLAIM")?.max(0) as u64;
    let mut ids = Vec::new();
    let mut j = 5;
    while let Some(id) = args.get(j).and_then(|a| StreamId::parse(a, 0)) {
        ids.push(id);
        j += 1;
    }
    let (mut force, mut justid, mut retry, mut time, mut last_id) = (false, false, None, None, StreamId::default());
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if eq_ic(opt, "FORCE") {
            force = true;
        } else if eq_ic(opt, "JUSTID") {
            justid = true;
        } else if eq_ic(opt, "IDLE") && more {
            j += 1;
            time = Some(now as i64 - int_or(&args[j], "Invalid IDLE option argument for XCLAIM")?);
        } else if eq_ic(opt, "TIME") && more {
            j += 1;
            time = Some(int_or(&args[j], "Invalid TIME option argument for XCLAIM")?);
        } else if eq_ic(opt, "RETRYCOUNT") && more {
            j += 1;
            retry = Some(int_or(&args[j], "Invalid RETRYCOUNT option argument for XCLAIM")?);
        } else if eq_ic(opt, "LASTID") && more {
            j += 1;
            last_id = strict_id(&args[j])?;
        } else {
            return Err(CmdError::err(format!("Unrecognized XCLAIM option '{}'", lossy(opt))));
        }
        j += 1;
    }
    // Lookups during a replay see time 0 (nothing expires); the times this
    // command records are the clock's.
    let clock = if now == 0 { crate::util::now_ms() } else { now };
    let delivered = match time {
        Some(t) if t >= 0 && t <= clock as i64 => t as u64,
        _ => clock,
    };
    let s = stream_at(db, idx);
    // The entries first (a read), then the group (a write).
    let found: Vec<(StreamId, Option<Fields>)> =
        ids.iter().map(|id| (*id, s.get(*id).map(|f| if justid { Fields::new() } else { f.to_fields() }))).collect();
    let consumer = &args[3][..];
    let g = group_mut(s, &args[2]).expect("checked above");
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let mut claimed: Vec<(StreamId, Option<Fields>)> = Vec::new();
    let (mut touched, mut created) = (false, false);
    for (id, fields) in found {
        let Some(fields) = fields else {
            g.ack(id);
            continue;
        };
        let pending = g.pel.get(&id);
        let (deliveries, idle_ok) = match pending {
            Some(p) => (p.deliveries, min_idle == 0 || now.saturating_sub(p.delivered_ms) >= min_idle),
            None if force => (1, true),
            None => continue,
        };
        if !idle_ok {
            continue;
        }
        if !touched {
            created = g.touch_consumer(consumer, clock);
            touched = true;
        }
        let deliveries = match retry {
            Some(r) if r >= 0 => r as u64,
            _ if !justid => deliveries + 1,
            _ => deliveries,
        };
        g.claim(id, consumer, delivered, deliveries);
        g.mark_active(consumer, clock);
        claimed.push((id, (!justid).then_some(fields)));
    }
    if created {
        db.push_event(ks::STREAM, "xgroup-createconsumer", &args[1]);
    }
    out.array(claimed.len());
    for (id, f) in &claimed {
        write_claimed(out, id, f.as_ref());
    }
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count]
/// [JUSTID]: claims up to COUNT idle entries from `start`, looking at no
/// more than ten times COUNT; replies the next start ID (0-0 at the end),
/// the claimed entries and the IDs it dropped because they were deleted.
fn xautoclaim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let min_idle = int_or(&args[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0) as u64;
    let start = pending_bound(&args[5], true)?;
    let (mut count, mut justid) = (100u64, false);
    let max_count = i64::MAX / 16;
    let mut j = 6;
    while j < args.len() {
        if eq_ic(&args[j], "COUNT") && j + 1 < args.len() {
            let c = parse_i64(&args[j + 1]).map_err(|_| CmdError::err("COUNT must be > 0"))?;
            if !(1..=max_count).contains(&c) {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            count = c as u64;
            j += 1;
        } else if eq_ic(&args[j], "JUSTID") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let now = ctx.now;
    let db = ctx.db();
    let idx = stream_with_group(db, args, now)?;
    let s = stream_at(db, idx);
    let consumer = &args[3][..];
    let mut attempts = count.saturating_mul(10);
    let mut pos = Some(start);
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let (mut touched, mut created) = (false, false);
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let g = group_of(s, &args[2]).expect("checked above");
        let Some((id, p)) = pos.and_then(|p| g.pel.range(p..).next().map(|(id, p)| (*id, p.clone()))) else {
            pos = None;
            break;
        };
        pos = id.next();
        let fields = s.get(id).map(|f| if justid { Fields::new() } else { f.to_fields() });
        let g = group_mut(s, &args[2]).expect("checked above");
        let Some(fields) = fields else {
            g.ack(id);
            deleted.push(id);
            count -= 1;
            continue;
        };
        if min_idle > 0 && now.saturating_sub(p.delivered_ms) < min_idle {
            continue;
        }
        if !touched {
            created = g.touch_consumer(consumer, now);
            touched = true;
        }
        g.claim(id, consumer, now, if justid { p.deliveries } else { p.deliveries + 1 });
        g.mark_active(consumer, now);
        claimed.push((id, (!justid).then_some(fields)));
        count -= 1;
    }
    let g = group_of(s, &args[2]).expect("checked above");
    let next = pos.and_then(|p| g.pel.range(p..).next().map(|(id, _)| *id)).unwrap_or_default();
    if created {
        db.push_event(ks::STREAM, "xgroup-createconsumer", &args[1]);
    }
    out.array(3);
    out.bulk(next.text().as_bytes());
    out.array(claimed.len());
    for (id, f) in &claimed {
        write_claimed(out, id, f.as_ref());
    }
    out.array(deleted.len());
    for id in &deleted {
        out.bulk(id.text().as_bytes());
    }
    Ok(())
}
