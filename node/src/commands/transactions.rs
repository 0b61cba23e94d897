//! MULTI, EXEC, DISCARD, WATCH, UNWATCH. Queuing happens in the connection
//! (`server::conn`); EXEC holds every shard the queue involves and runs it
//! through `run_command`, so the transaction is atomic across shards.
//! WATCH registers a flag on each key's shard; any write to the key
//! (including expiry, FLUSHDB, SWAPDB) raises it and EXEC then fails.

use bytes::Bytes;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use super::session::{Multi, Watch};
use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;

const T: &[&str] = &["transaction"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Starts a transaction.",
        Exec::Coord(handler!(|cx, _a| multi(cx))),
    )
    .when_busy(|_, _, _, _| Ok(super::BusyAnswer::Multi)),
    cmd(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Executes all commands in a transaction.",
        Exec::Coord(handler!(async |cx, _a| exec(cx))),
    ),
    cmd(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Discards a transaction.",
        Exec::Coord(handler!(|cx, _a| discard(cx))),
    ),
    cmd(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_QUEUE,
        (1, -1, 1),
        T,
        "transactions",
        "Monitors changes to keys to determine the execution of a transaction.",
        Exec::Coord(handler!(async |cx, a| watch(cx, a))),
    ),
    cmd(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        T,
        "transactions",
        "Forgets about watched keys of a transaction.",
        Exec::Coord(handler!(|cx, _a| unwatch(cx))),
    ),
];

pub fn multi(cx: &mut dyn Coord) -> CmdResult {
    let s = cx.client()?;
    if s.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    begin(s);
    cx.out().ok();
    Ok(())
}

/// Starts queueing a transaction (MULTI, or MULTI answered by a busy
/// script's hook).
pub fn begin(s: &mut super::session::Session) {
    s.multi = Some(Multi::default());
    if let Some(c) = &mut s.cluster {
        let _ = c.finish_tx();
    }
}

/// Runs the queued commands of a transaction atomically: every shard they
/// (and the watched keys) touch is locked first, the watch flag is checked
/// under those locks, then the commands run in order.
pub async fn exec(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    let s = cx.client()?;
    let Some(multi) = s.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    let routed = s.cluster.as_mut().map_or(Ok(()), |c| c.finish_tx());
    if multi.failed || routed.is_err() {
        s.unwatch(&engine);
        routed?;
        return Err(CmdError::Other("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    let mut shards: Vec<usize> = Vec::new();
    let mut all = false;
    for (spec, args) in &multi.queued {
        match spec.exec {
            Exec::Shard(_) | Exec::Split(..) => shards.extend(spec.key_indices(args).map(|i| engine.shard_of(&args[i]))),
            Exec::Coord(_) | Exec::Script(_) => all = true,
        }
    }
    if let Some(w) = &s.watch {
        shards.extend(w.keys.iter().map(|k| k.0));
    }
    if all {
        shards = (0..engine.nshards()).collect();
    }
    shards.sort_unstable();
    shards.dedup();
    cx.lock(&shards).await;
    // A migration's cut-over holds the transaction's slot: release, wait
    // and route again (the slot has usually moved: EXEC is redirected).
    let mut tries = 0;
    while multi.queued.iter().any(|(spec, args)| cx.held(spec, args)) {
        cx.release();
        tries += 1;
        for (spec, args) in &multi.queued {
            let routed = if tries > CUTOVER_RETRIES {
                Err(CmdError::Other("TRYAGAIN the slot is still being migrated".into()))
            } else {
                cx.after_cutover(spec, args).await
            };
            if let Err(e) = routed {
                cx.client()?.unwatch(&engine);
                return Err(e);
            }
        }
        cx.lock(&shards).await;
    }
    let aborted = watch_failed(cx).await?;
    let s = cx.client()?;
    s.unwatch(&engine);
    if aborted {
        cx.release();
        cx.out().nil_array();
        return Ok(());
    }
    // The rules may have changed since the commands were queued: each is
    // checked again (the connection looked its user up for EXEC itself).
    let (user, info) = (s.user.clone(), s.info.clone());
    let writes = multi.queued.iter().any(|(spec, _)| spec.has_flag(super::flag::WRITE) || matches!(spec.exec, Exec::Script(_)));
    let mark = cx.out().buf.len();
    let mut over = false;
    cx.out().array(multi.queued.len());
    cx.set_exec(true);
    for (spec, args) in multi.queued {
        let at = cx.out().buf.len();
        if !user.unrestricted() {
            if let Err(d) = super::acl::check(&user, spec, &args) {
                super::acl::check::log_denied(&engine, d, super::acl::Context::Multi, spec, &args, &user.name, &info);
                cx.out().error(&d.exec_error());
                continue;
            }
        }
        super::run_command(cx, spec, &args).await;
        // Every command runs; past reply-max-bytes their replies are dropped.
        over |= crate::resp::reply_over(cx.out().buf.len() - mark);
        if over {
            cx.out().buf.truncate(at);
        }
    }
    cx.set_exec(false);
    if over {
        cx.out().buf.truncate(mark);
        if writes {
            // The writes are done but their replies cannot be sent: the
            // client is closed, as Redis closes one past its output
            // buffer limit, rather than told of a failure that did not
            // happen.
            tracing::warn!(client = info.id, addr = %info.addr, "closing a client whose EXEC reply passed reply-max-bytes");
            info.close_async();
        }
        return Err(crate::resp::reply_too_big());
    }
    Ok(())
}

/// Whether EXEC fails on its watched keys (their shards held): one
/// changed, or one watched while live has expired since, though nothing
/// deleted it yet (Redis's isWatchedKeyExpired).
async fn watch_failed(cx: &mut dyn Coord) -> CmdResult<bool> {
    let Some(w) = &cx.client()?.watch else { return Ok(false) };
    if w.dirty.load(Relaxed) {
        return Ok(true);
    }
    let (flag, keys) = (w.dirty.clone(), w.keys.clone());
    let now = cx.now();
    let mut shards: Vec<usize> = keys.iter().map(|k| k.0).collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let mine: Vec<(usize, Bytes)> = keys.iter().filter(|k| k.0 == shard).map(|k| (k.1, k.2.clone())).collect();
        let flag = flag.clone();
        let expired = cx.run_on(shard, move |sh| mine.iter().any(|(db, k)| sh.db(*db).expired_since_watched(k, &flag, now))).await;
        if expired {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many times EXEC waits out a migration's cut-over before giving up.
const CUTOVER_RETRIES: usize = 60;

pub fn discard(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    let s = cx.client()?;
    if s.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    end(s, &engine);
    cx.out().ok();
    Ok(())
}

/// Drops the transaction being queued and the watched keys (DISCARD, or
/// an EXEC a busy script's hook refused).
pub fn end(s: &mut super::session::Session, engine: &crate::shard::Engine) {
    s.multi = None;
    if let Some(c) = &mut s.cluster {
        let _ = c.finish_tx();
    }
    s.unwatch(engine);
}

/// Adds keys to the watch list: from now on, any change to them makes EXEC
/// fail.
pub async fn watch(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let s = cx.client()?;
    if s.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let dirty = match &s.watch {
        Some(w) => w.dirty.clone(),
        None => Arc::new(AtomicBool::new(false)),
    };
    // A key is watched once (as Redis: CLIENT LIST's `watch` counts keys).
    let db = cx.db();
    let s = cx.client()?;
    let mut seen: std::collections::HashSet<Bytes> =
        s.watch.iter().flat_map(|w| w.keys.iter().filter(|k| k.1 == db).map(|k| k.2.clone())).collect();
    let mut added = Vec::with_capacity(args.len() - 1);
    for k in &args[1..] {
        if !seen.insert(k.clone()) {
            continue;
        }
        let shard = cx.shard_of(k);
        let (key, flag) = (k.clone(), dirty.clone());
        let now = cx.now();
        cx.run_on(shard, move |sh| sh.db(db).watch(&key, flag, now)).await;
        added.push((shard, db, k.clone()));
    }
    let s = cx.client()?;
    match &mut s.watch {
        Some(w) => w.keys.extend(added),
        None => s.watch = Some(Watch { dirty, keys: added }),
    }
    cx.out().ok();
    Ok(())
}

pub fn unwatch(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    cx.client()?.unwatch(&engine);
    cx.out().ok();
    Ok(())
}
