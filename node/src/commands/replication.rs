//! The primary's replication commands: PSYNC (continuing from the
//! backlog when it can, a full resync otherwise) and SYNC, REPLCONF from
//! replicas, and what ROLE, INFO and WAIT see of the replicas. The stream
//! itself is the journal's (`shard::repl`, `persist::aof`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::repl::{Feed, Phase};
use crate::shard::snapshot::SaveKind;
use crate::util::eq_ic;

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        &["admin", "slow", "dangerous"],
        "server",
        "Configures a server as replica of another, or promotes it to a master.",
        Exec::Coord(handler!(async |cx, a| replicaof(cx, a))),
    ),
    cmd(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        &["admin", "slow", "dangerous"],
        "server",
        "Sets a Redis server as a replica of another, or promotes it to being a master.",
        Exec::Coord(handler!(async |cx, a| replicaof(cx, a))),
    ),
    cmd(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        &["admin", "slow", "dangerous"],
        "server",
        "An internal command used in replication.",
        Exec::Coord(handler!(async |cx, a| sync(cx, Some(a)))),
    ),
    cmd(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        &["admin", "slow", "dangerous"],
        "server",
        "An internal command used in replication.",
        Exec::Coord(handler!(async |cx, _a| sync(cx, None))),
    ),
    cmd(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        (0, 0, 0),
        &["admin", "slow", "dangerous"],
        "server",
        "An internal command for configuring the replication stream.",
        Exec::Coord(handler!(|cx, a| replconf(cx, a))),
    ),
];

/// REPLICAOF host port: follow that primary (a full resync, then its
/// stream); REPLICAOF NO ONE: stop following and take writes again.
async fn replicaof(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    if engine.cluster.is_some() {
        return Err(CmdError::err("REPLICAOF not allowed in cluster mode."));
    }
    if eq_ic(&args[1], "NO") && eq_ic(&args[2], "ONE") {
        if engine.repl.master().is_some() {
            engine.repl.set_master(None);
            crate::persist::replica::oom_score_for_role(&engine, false);
            tracing::info!("MASTER MODE enabled (user request)");
        }
        cx.out().ok();
        return Ok(());
    }
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port =
        crate::util::parse_i64(&args[2]).ok().and_then(|p| u16::try_from(p).ok()).ok_or_else(|| CmdError::err("Invalid master port"))?;
    if engine.repl.master().is_some_and(|m| m.host == host && m.port == port) {
        cx.out().simple("OK Already connected to specified master");
        return Ok(());
    }
    // The replicas get the writes made before this command (which they
    // are owed) before they are dropped.
    if !engine.repl.feeds().is_empty() {
        crate::persist::aof::feed_replicas_now(&engine).await;
    }
    crate::persist::replica::follow(&engine, host, port);
    cx.out().ok();
    Ok(())
}

/// PSYNC <replid> <offset> (`psync`) or SYNC: the connection becomes a
/// replica's. A PSYNC continuing this node's history from an offset the
/// backlog still holds is answered `+CONTINUE` and fed from there (as
/// Redis, a replica can continue from what it had of this node's previous
/// history, `master_replid2`, up to `second_repl_offset`). Otherwise a
/// snapshot is taken for it and its feed attached at the snapshot's point
/// in time (`+FULLRESYNC`). The rest is written by the connection as the
/// feed fills (`server::conn::replica`).
async fn sync(cx: &mut dyn Coord, psync: Option<&[Bytes]>) -> CmdResult {
    let engine = cx.engine().clone();
    // A replica serves its own replicas only while its data is its
    // primary's (not while it is resynchronising or cut off), as Redis.
    if engine.repl.master().is_some_and(|m| !m.link_up.load(Relaxed)) {
        return Err(CmdError::Other("NOMASTERLINK Can't SYNC while not connected with my master".into()));
    }
    let s = cx.client()?;
    if s.replica.is_some() {
        return Ok(());
    }
    let ip = match &s.repl_ip {
        Some(announced) => announced.clone(),
        None => s.info.addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default(),
    };
    let feed = Arc::new(Feed::new(s.info.id, ip, s.repl_port as u64, Some(s.info.clone())).with_eof(s.repl_eof));
    s.info.replica.store(true, Relaxed);
    let repl = &engine.repl;
    if let Some(a) = psync {
        let (replid, from) = (String::from_utf8_lossy(&a[1]), crate::util::parse_i64(&a[2]).unwrap_or(-1));
        if from > 0 && repl.try_continue(&feed, &replid, from as u64, s.repl_psync2) {
            repl.sync_partial_ok.fetch_add(1, Relaxed);
            tracing::info!(
                client = s.info.id,
                "Partial resynchronization request from {} accepted, continuing from offset {from}",
                s.info.addr
            );
            s.replica = Some(feed);
            return Ok(());
        }
        if replid != "?" {
            repl.sync_partial_err.fetch_add(1, Relaxed);
        }
    } else {
        feed.lock().told = true;
    }
    repl.sync_full.fetch_add(1, Relaxed);
    // The first replica starts the backlog, with a new history (nothing
    // before it was counted).
    if !repl.lock_backlog().active {
        repl.new_history(None, repl.offset.load(Relaxed));
    }
    repl.feeds.lock().unwrap_or_else(|e| e.into_inner()).push(feed.clone());
    let started = crate::persist::request(&engine, SaveKind::Replica(feed.clone())).await;
    let why = match started {
        Ok(Ok(())) => {
            cx.client()?.replica = Some(feed);
            return Ok(());
        }
        Ok(Err(e)) => e,
        Err(_) => "the node is shutting down".into(),
    };
    engine.repl.remove(&feed);
    cx.client()?.info.replica.store(false, Relaxed);
    Err(CmdError::Other(format!("ERR cannot start a snapshot for the replica: {why}")))
}

/// REPLCONF <option> <value> ...: `listening-port`, `ip-address`, `capa`
/// (answered OK), `ack <offset> [fack <offset>]` from a replica (no
/// answer, as Redis: it records the replica's offset).
fn replconf(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let engine = cx.engine().clone();
    let s = cx.client()?;
    for pair in args[1..].chunks_exact(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if eq_ic(opt, "listening-port") {
            let port = crate::util::parse_i64(val)?;
            s.repl_port = u16::try_from(port).map_err(|_| CmdError::err("value is out of range"))?;
        } else if eq_ic(opt, "capa") {
            // `psync2`: `+CONTINUE` names the replication id; `eof`: the
            // replica reads a diskless `$EOF:<mark>` payload (others get
            // a file's `$<len>`).
            s.repl_psync2 |= eq_ic(val, "psync2");
            s.repl_eof |= eq_ic(val, "eof");
        } else if eq_ic(opt, "ip-address") {
            // The replica's `replica-announce-ip`: INFO and ROLE show it.
            if val.len() > 255 {
                return Err(CmdError::err("REPLCONF ip-address provided by replica instance is too long"));
            }
            s.repl_ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if eq_ic(opt, "ack") || eq_ic(opt, "fack") {
            if eq_ic(opt, "ack") {
                if let (Some(f), Ok(off)) = (&s.replica, crate::util::parse_i64(val)) {
                    f.acked.fetch_max(off.max(0) as u64, Relaxed);
                    f.acked_ms.store(crate::util::now_ms(), Relaxed);
                    f.acknowledged();
                    engine.repl.acks.notify_waiters();
                }
            }
            return Ok(());
        } else if eq_ic(opt, "getack") {
            // Sent by a primary to its replicas; this node is not one.
            return Ok(());
        } else {
            return Err(CmdError::Other(format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt))));
        }
    }
    cx.out().ok();
    Ok(())
}

/// The replicas that are streaming, with what they acknowledged.
pub fn online(engine: &crate::shard::Engine) -> Vec<Arc<Feed>> {
    engine.repl.feeds().into_iter().filter(|f| f.phase() == Phase::Online).collect()
}

/// ROLE on a primary: `master`, the offset, and each replica's address
/// and acknowledged offset.
pub fn role(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    if let Some(m) = engine.repl.master() {
        let state = m.state();
        let out = cx.out();
        out.array(5);
        out.bulk(b"slave");
        out.bulk(m.host.as_bytes());
        out.int(m.port as i64);
        out.bulk(state.as_bytes());
        out.int(engine.repl.offset.load(Relaxed) as i64);
        return Ok(());
    }
    let feeds = online(&engine);
    let out = cx.out();
    out.array(3);
    out.bulk(b"master");
    out.int(engine.repl.offset.load(Relaxed) as i64);
    out.array(feeds.len());
    for f in feeds {
        out.array(3);
        out.bulk(f.ip.as_bytes());
        out.bulk(f.port.load(Relaxed).to_string().as_bytes());
        out.bulk(f.acked.load(Relaxed).to_string().as_bytes());
    }
    Ok(())
}

/// INFO's replication section on a primary.
pub fn info(engine: &crate::shard::Engine) -> String {
    let feeds = online(engine);
    let now = crate::util::now_ms();
    let mut t = match engine.repl.master() {
        None => format!("# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n", feeds.len()),
        Some(m) => {
            let up = m.link_up.load(Relaxed);
            let last_io = match m.last_io_ms.load(Relaxed) {
                0 => -1,
                ms => (now.saturating_sub(ms) / 1000) as i64,
            };
            let off = engine.repl.offset.load(Relaxed);
            // As Redis: how long the link has been down (-1: never up).
            let down = match (up, m.down_since_ms.load(Relaxed)) {
                (true, _) => String::new(),
                (false, 0) => "master_link_down_since_seconds:-1\r\n".into(),
                (false, ms) => format!("master_link_down_since_seconds:{}\r\n", now.saturating_sub(ms) / 1000),
            };
            format!(
                "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{off}\r\nslave_repl_offset:{off}\r\n{down}slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\nconnected_slaves:{}\r\n",
                m.host,
                m.port,
                if up { "up" } else { "down" },
                m.syncing.load(Relaxed) as u8,
                engine.cfg.repl.priority.load(Relaxed),
                engine.cfg.repl.read_only.load(Relaxed) as u8,
                engine.cfg.repl.announced.load(Relaxed) as u8,
                feeds.len()
            )
        }
    };
    // As Redis: the count `min-replicas-to-write` goes by, when it is on.
    let (need, lag) = (engine.cfg.repl.min_replicas_to_write.load(Relaxed), engine.cfg.repl.min_replicas_max_lag.load(Relaxed));
    if need > 0 && lag > 0 {
        t.push_str(&format!("min_slaves_good_slaves:{}\r\n", engine.repl.good_replicas(lag)));
    }
    for (i, f) in engine.repl.feeds().iter().filter(|f| f.phase() != Phase::Dropped).enumerate() {
        let lag = now.saturating_sub(f.acked_ms.load(Relaxed)) / 1000;
        t.push_str(&format!(
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
            f.ip,
            f.port.load(Relaxed),
            f.info_state(),
            f.acked.load(Relaxed)
        ));
    }
    let repl = &engine.repl;
    let (active, histlen, first, off) = {
        let b = repl.lock_backlog();
        let off = repl.offset.load(Relaxed);
        (b.active, b.histlen(), if b.active { b.first_byte(off) } else { 0 }, off)
    };
    t.push_str(&format!(
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{off}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n\r\n",
        repl.replid(),
        repl.replid2(),
        repl.second_offset.load(Relaxed),
        active as u8,
        engine.cfg.repl.backlog_size.load(Relaxed),
    ));
    t
}

/// How many replicas have acknowledged `offset`.
pub fn acked(engine: &crate::shard::Engine, offset: u64) -> i64 {
    online(engine).iter().filter(|f| f.acked.load(Relaxed) >= offset).count() as i64
}

/// The replication offset that covers what this client wrote: every shard
/// is visited once (so the journal parts of transactions it was released
/// from are sent), then the journal writer is waited for.
pub async fn client_offset(cx: &mut dyn Coord) -> u64 {
    let engine = cx.engine().clone();
    if !engine.repl.active.load(Relaxed) {
        return 0;
    }
    for s in 0..engine.nshards() {
        cx.run_on(s, |_| ()).await;
    }
    node_offset(&engine).await
}

/// The replication offset once the journal writer has sent everything the
/// shards gave it so far.
async fn node_offset(engine: &crate::shard::Engine) -> u64 {
    if !engine.repl.active.load(Relaxed) {
        return 0;
    }
    let j = &engine.journal;
    let target = j.sent.load(std::sync::atomic::Ordering::Acquire);
    loop {
        let changed = j.durable_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if j.durable.load(std::sync::atomic::Ordering::Acquire) >= target {
            return engine.repl.offset.load(Relaxed);
        }
        changed.await;
    }
}

/// A shutdown is waiting for its replicas (SHUTDOWN ABORT may cancel it).
static SHUTDOWN_WAITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn shutdown_abort() -> &'static tokio::sync::Notify {
    static ABORT: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    ABORT.get_or_init(tokio::sync::Notify::new)
}

/// Redis 7's grace period before a shutdown: with replicas online and
/// `shutdown-timeout` above 0, clients' writes are paused and the replicas
/// get up to that long to acknowledge everything sent, so that a primary
/// stopping does not leave them behind; the log says how many are in sync
/// (and which lag), in Redis's words. False when SHUTDOWN ABORT cancelled
/// the shutdown (the writes then go on).
pub async fn wait_for_replicas_before_shutdown(engine: &crate::shard::Engine) -> bool {
    let secs = u64::from(engine.cfg.process.shutdown_timeout.load(Relaxed));
    let n = online(engine).len();
    if secs == 0 || n == 0 || engine.repl.is_replica() {
        return true;
    }
    tracing::info!("Waiting for replicas before shutting down.");
    engine.clients.pause(crate::util::now_ms(), (secs + 5) * 1000, false);
    SHUTDOWN_WAITING.store(true, Relaxed);
    let abort = shutdown_abort().notified();
    tokio::pin!(abort);
    abort.as_mut().enable();
    let offset = node_offset(engine).await;
    request_acks(engine);
    let aborted = tokio::select! {
        _ = tokio::time::timeout(std::time::Duration::from_secs(secs), until_acked(engine, offset, n as i64)) => false,
        () = abort => true,
    };
    SHUTDOWN_WAITING.store(false, Relaxed);
    if aborted {
        engine.clients.unpause();
        tracing::warn!("Shutdown manually aborted.");
        return false;
    }
    let now = crate::util::now_ms();
    let replicas = online(engine);
    for f in replicas.iter().filter(|f| f.acked.load(Relaxed) < offset) {
        tracing::warn!(
            "Lagging replica {}:{} reported offset {} behind master, lag={}, state=online.",
            f.ip,
            f.port.load(Relaxed),
            offset - f.acked.load(Relaxed),
            now.saturating_sub(f.acked_ms.load(Relaxed)) / 1000
        );
    }
    tracing::info!("{} of {} replicas are in sync when shutting down.", acked(engine, offset), replicas.len());
    true
}

/// SHUTDOWN ABORT: cancels a shutdown waiting for its replicas; false when
/// there is none.
pub fn abort_shutdown() -> bool {
    if !SHUTDOWN_WAITING.load(Relaxed) {
        return false;
    }
    shutdown_abort().notify_waiters();
    true
}

/// Asks the replicas to acknowledge their offset now (`REPLCONF GETACK *`
/// in the stream, as Redis's WAIT does) instead of at their next periodic
/// acknowledgement. A replica relays its primary's stream: it asks nobody.
pub fn request_acks(engine: &crate::shard::Engine) {
    let repl = &engine.repl;
    if !repl.active.load(Relaxed) || repl.is_replica() || online(engine).is_empty() {
        return;
    }
    const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
    let cfg = &engine.cfg;
    repl.propagate(GETACK, cfg.repl.backlog_size.load(Relaxed), cfg.output_limits[1].hard.load(Relaxed));
}

/// Waits until `want` replicas acknowledged `offset` (forever: the caller
/// bounds it).
pub async fn until_acked(engine: &crate::shard::Engine, offset: u64, want: i64) {
    loop {
        let acks = engine.repl.acks.notified();
        tokio::pin!(acks);
        acks.as_mut().enable();
        if acked(engine, offset) >= want {
            return;
        }
        acks.await;
    }
}
