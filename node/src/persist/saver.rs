//! Who takes snapshots, and when.
//!
//! One saver task (on the first shard's thread) starts every snapshot —
//! for SAVE, BGSAVE, DEBUG RELOAD, shutdown, and the save points — so at
//! most one runs at a time. It starts one by locking every shard in one
//! transaction, marking the point in time on each, and starting the file
//! writer's thread. Each shard thread has a snapshot task that serialises
//! its keys in small steps between the thread's other work and streams
//! them to the writer; it also publishes the shard's change count for the
//! save points and INFO.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use super::writer::{self, Header};
use crate::shard::journal::Feeds;
use crate::shard::repl::Feed;
use crate::shard::snapshot::{Part, SaveKind, SaveRequest};
use crate::shard::tx::Tx;
use crate::shard::{Engine, LocalShard, NO_TX};
use std::path::PathBuf;

/// Bytes a shard serialises per step before it lets other work run.
const STEP: usize = 32 * 1024;
/// While clients keep a shard busy, its snapshot steps are followed by
/// pauses this many times as long.
const BUSY_SHARE: u32 = 8;
/// Commands served during one step that make the thread count as busy.
const BUSY_COMMANDS: u64 = 32;
/// Records in flight to the writer per shard (each about `STEP` bytes).
const QUEUE_PER_SHARD: usize = 4;
/// After a failed save, the save points try again only this much later.
const RETRY_SECS: u64 = 5;
/// How long an automatic journal rewrite waits after a failed one (Redis
/// delays them by a minute and more after repeated failures).
const REWRITE_RETRY_SECS: u64 = 60;
/// How often save points are checked and change counts published.
const TICK: Duration = Duration::from_millis(100);

type Reply = oneshot::Sender<Result<(), String>>;

/// A snapshot the saver started: when its writer is done it reports here.
struct Finished {
    result: Result<u64, String>,
    /// Changes the snapshot covers.
    changes: u64,
    started_ms: u64,
    /// A journal rewrite's base file name (not a dump.rdb).
    rewrite: Option<String>,
    /// A replicas' snapshot: their feeds, and its file (none: diskless).
    replica: Option<(Feeds, Option<PathBuf>)>,
}

/// What a snapshot is for.
enum Mode {
    Dump,
    Rewrite,
    /// For these replicas, streamed to them (`diskless`) or through a file.
    Replica {
        feeds: Feeds,
        diskless: bool,
    },
}

/// A replica that asked for a full sync and when (ms).
type Waiting = Vec<(Arc<Feed>, u64)>;

/// The saver: serves save requests and the save points, forever.
pub async fn run(local: Rc<LocalShard>, engine: Arc<Engine>, mut requests: mpsc::UnboundedReceiver<SaveRequest>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<Finished>();
    // Waiting for the running snapshot: SAVE callers, and DEBUG RELOAD
    // callers (which load the file once it is written).
    let mut savers: Vec<Reply> = Vec::new();
    let mut reloaders: Vec<Reply> = Vec::new();
    // A journal rewrite asked for while a snapshot ran (Redis schedules it).
    let mut rewrite_due = false;
    // When a journal rewrite last started or ended: one that turns the
    // journal on is retried `RETRY_SECS` after a failure (Redis retries
    // while in `AOF_WAIT_REWRITE`).
    let mut rewrite_seen = std::time::Instant::now();
    // Replicas waiting for their snapshot: one starts when no other runs
    // (a diskless one after `repl-diskless-sync-delay`), for all of them.
    let mut waiting: Waiting = Vec::new();
    loop {
        tokio::select! {
            Some(req) = requests.recv() => {
                let rewrite = matches!(req.kind, SaveKind::AofRewrite);
                if let SaveKind::Replica(feed) = req.kind {
                    waiting.push((feed, crate::util::now_ms()));
                    let _ = req.reply.send(Ok(()));
                    start_for_replicas(&local, &engine, &finished_tx, &mut waiting).await;
                    continue;
                }
                if engine.saves.in_progress.load(Relaxed) {
                    if rewrite {
                        rewrite_due = true;
                        let _ = req.reply.send(Err("scheduled".into()));
                    } else if engine.journal.rewriting.load(Relaxed) {
                        let _ = req.reply.send(Err("Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into()));
                    } else {
                        let _ = req.reply.send(Err("Background save already in progress".into()));
                    }
                    continue;
                }
                let mode = match &req.kind {
                    SaveKind::AofRewrite => Mode::Rewrite,
                    _ => Mode::Dump,
                };
                if rewrite {
                    rewrite_seen = std::time::Instant::now();
                }
                if let Err(e) = start(&local, &engine, finished_tx.clone(), mode).await {
                    let _ = req.reply.send(Err(e));
                    continue;
                }
                match req.kind {
                    SaveKind::Background | SaveKind::AofRewrite | SaveKind::Replica(_) => { let _ = req.reply.send(Ok(())); }
                    SaveKind::Foreground => savers.push(req.reply),
                    SaveKind::Reload => reloaders.push(req.reply),
                }
            }
            Some(done) = finished.recv() => {
                let ok = done.result.as_ref().map(|_| ()).map_err(|e| e.clone());
                let was_rewrite = done.rewrite.is_some();
                if was_rewrite {
                    rewrite_seen = std::time::Instant::now();
                }
                // SAVE's (and SHUTDOWN's) snapshot: a failure is the
                // caller's error, not the background status that refuses
                // writes (-MISCONF), as in Redis.
                let foreground = !savers.is_empty() || !reloaders.is_empty();
                finish(&engine, done, foreground);
                if rewrite_due && !was_rewrite {
                    rewrite_due = false;
                    rewrite_seen = std::time::Instant::now();
                    if let Err(e) = start(&local, &engine, finished_tx.clone(), Mode::Rewrite).await {
                        warn!("cannot start the scheduled journal rewrite: {e}");
                    }
                } else {
                    start_for_replicas(&local, &engine, &finished_tx, &mut waiting).await;
                }
                for r in savers.drain(..) {
                    let _ = r.send(ok.clone());
                }
                for r in reloaders.drain(..) {
                    let res = match &ok {
                        Ok(()) => super::reload(&local, &engine).await,
                        Err(e) => Err(e.clone()),
                    };
                    let _ = r.send(res);
                }
            }
            _ = tick.tick() => {
                start_for_replicas(&local, &engine, &finished_tx, &mut waiting).await;
                let j = &engine.journal;
                let idle = !engine.saves.in_progress.load(Relaxed) && !j.rewriting.load(Relaxed) && !rewrite_due;
                if idle && j.enabling.load(Relaxed) && rewrite_seen.elapsed() >= Duration::from_secs(RETRY_SECS) {
                    rewrite_seen = std::time::Instant::now();
                    info!("retrying the rewrite that turns the append-only journal on");
                    if let Err(e) = start(&local, &engine, finished_tx.clone(), Mode::Rewrite).await {
                        warn!("cannot start the journal rewrite: {e}");
                    }
                    continue;
                }
                if idle {
                    if let Some(growth) = aof_rewrite_due(&engine, rewrite_seen) {
                        rewrite_seen = std::time::Instant::now();
                        info!("Starting automatic rewriting of AOF on {growth}% growth");
                        if let Err(e) = start(&local, &engine, finished_tx.clone(), Mode::Rewrite).await {
                            warn!("cannot start the automatic journal rewrite: {e}");
                        }
                        continue;
                    }
                }
                if let Some(why) = save_point_reached(&engine) {
                    info!("{why}. Saving...");
                    if let Err(e) = start(&local, &engine, finished_tx.clone(), Mode::Dump).await {
                        warn!("cannot start a snapshot: {e}");
                    }
                }
            }
        }
    }
}

/// Starts one snapshot for every waiting replica when none runs: at once
/// through a file when `repl-diskless-sync` is off or a replica did not
/// announce `capa eof`; otherwise streamed to them all once the first has
/// waited `repl-diskless-sync-delay` seconds, or
/// `repl-diskless-sync-max-replicas` of them wait (Redis's rule).
async fn start_for_replicas(
    local: &Rc<LocalShard>,
    engine: &Arc<Engine>,
    finished: &mpsc::UnboundedSender<Finished>,
    waiting: &mut Waiting,
) {
    waiting.retain(|(f, _)| f.phase() != crate::shard::repl::Phase::Dropped);
    if waiting.is_empty() || engine.saves.in_progress.load(Relaxed) {
        return;
    }
    let cfg = &engine.cfg.repl;
    let diskless = cfg.diskless_sync.load(Relaxed) && waiting.iter().all(|(f, _)| f.eof);
    if diskless {
        let first = waiting.iter().map(|(_, at)| *at).min().unwrap_or(0);
        let waited = crate::util::now_ms().saturating_sub(first);
        let max = cfg.diskless_sync_max_replicas.load(Relaxed);
        let enough = max > 0 && waiting.len() as u64 >= max;
        if !enough && waited < cfg.diskless_sync_delay.load(Relaxed).saturating_mul(1000) {
            return;
        }
    }
    let feeds: Feeds = std::mem::take(waiting).into_iter().map(|(f, _)| f).collect();
    for f in feeds.iter() {
        f.lock().diskless = diskless;
    }
    info!(replicas = feeds.len(), "starting a snapshot for replication, target: {}", if diskless { "replicas sockets" } else { "disk" });
    if let Err(e) = start(local, engine, finished.clone(), Mode::Replica { feeds: feeds.clone(), diskless }).await {
        for f in feeds.iter() {
            f.rdb_done(Err(e.clone()));
        }
    }
}

/// Whether the journal's files have grown enough since the last rewrite
/// for an automatic one (`auto-aof-rewrite-percentage` and `-min-size`;
/// Redis's rule), and by how much; after a failed rewrite the next waits
/// `REWRITE_RETRY_SECS` (`last` is when the last one started or ended).
fn aof_rewrite_due(engine: &Engine, last: std::time::Instant) -> Option<u64> {
    let j = &engine.journal;
    if !j.aof_on() || j.enabling.load(Relaxed) || engine.saves.loading() {
        return None;
    }
    if j.last_rewrite_failed.load(Relaxed) && last.elapsed() < Duration::from_secs(REWRITE_RETRY_SECS) {
        return None;
    }
    engine.cfg.aof.rewrite_due(j.current_size.load(Relaxed), j.base_size.load(Relaxed))
}

/// Which save point calls for a snapshot now, if any (Redis's rule: enough
/// changes and enough time since the last save, and not right after a
/// failed attempt).
fn save_point_reached(engine: &Engine) -> Option<String> {
    let st = &engine.saves;
    if st.in_progress.load(Relaxed) || st.loading() {
        return None;
    }
    let now = crate::util::now_ms() / 1000;
    let changes = st.changes_since_save();
    let since = now.saturating_sub(st.last_save.load(Relaxed));
    let may_retry = st.last_ok.load(Relaxed) || now.saturating_sub(st.last_attempt.load(Relaxed)) > RETRY_SECS;
    engine
        .cfg
        .save_points()
        .into_iter()
        .find(|&(secs, n)| changes >= n && since > secs && may_retry)
        .map(|(secs, _)| format!("{changes} changes in {secs} seconds"))
}

/// Starts a snapshot: marks the point in time on every shard under one
/// transaction and starts the writer. A journal rewrite (`rewrite`) writes
/// the journal's next base file, and each shard marks the same point in
/// its journal stream.
async fn start(local: &Rc<LocalShard>, engine: &Arc<Engine>, finished: mpsc::UnboundedSender<Finished>, mode: Mode) -> Result<(), String> {
    let n = engine.nshards();
    let st = &engine.saves;
    let rewrite = matches!(mode, Mode::Rewrite);
    let dump = matches!(mode, Mode::Dump);
    if rewrite && !engine.journal.aof_on() {
        return Err("the append-only journal is off (--appendonly yes)".into());
    }
    let (feeds, diskless) = match mode {
        Mode::Replica { feeds, diskless } => {
            // From now on the journal feeds replicas, with or without files.
            super::aof::start_sink(engine)?;
            engine.repl.active.store(true, Relaxed);
            (Some(feeds), diskless)
        }
        _ => (None, false),
    };
    let (to_writer, parts) = mpsc::channel::<Part>(QUEUE_PER_SHARD * n);
    let now = crate::util::now_ms();
    let layout = super::aof::Layout::from_config(engine);
    let seq = engine.journal.base_seq.load(Relaxed) + 1;
    // A base of commands is written as a snapshot first, then turned into
    // commands (`commands_base`).
    let commands = rewrite && !engine.cfg.aof.rdb_preamble.load(Relaxed);
    let base = rewrite.then(|| if commands { layout.commands_base_name(seq) } else { layout.base_name(seq) });
    let commands_to = base.as_ref().filter(|_| commands).map(|b| layout.dir.join(b));
    let path = match (&base, &feeds) {
        (Some(b), _) if commands => layout.dir.join(format!("temp-{b}.rdb")),
        (Some(b), _) => layout.dir.join(b),
        (None, Some(f)) => engine.cfg.rdb_path().with_file_name(format!("temp-repl-{}.rdb", f.first().map_or(0, |f| f.client))),
        (None, None) => engine.cfg.rdb_path(),
    };
    st.in_progress.store(true, Relaxed);
    st.dump_running.store(dump, Relaxed);
    st.started_ms.store(now, Relaxed);
    if rewrite {
        engine.journal.rewriting.store(true, Relaxed);
    }
    // Created before the shards start: they may write to it at once. A
    // file that cannot be created fails the snapshot as a failed write
    // does (INFO, MISCONF), after it was reported started. A diskless sync
    // has no file: its records all go through the writer thread.
    let aof = &engine.cfg.aof;
    let incremental = if rewrite { &aof.aof_incremental_fsync } else { &aof.rdb_incremental_fsync };
    let sync_every = if incremental.load(Relaxed) { crate::config::aof::INCREMENTAL_FSYNC_BYTES } else { 0 };
    let file = match (!diskless).then(|| writer::open(&path, sync_every)).transpose() {
        Ok(f) => f,
        Err(e) => {
            let replica = feeds.map(|f| (f, Some(path)));
            let _ = finished.send(Finished { result: Err(e), changes: 0, started_ms: now, rewrite: base, replica });
            return Ok(());
        }
    };
    let mut changes = 0;
    let functions;
    // On a replica the stream is its link's: the link applies nothing
    // while the shards cut, and the feed starts at the offset of exactly
    // what they hold (the writer, which does not count a replica's
    // offset, then finds it attached).
    let gate = match (&feeds, engine.repl.is_replica()) {
        (Some(_), true) => Some(engine.repl.apply_gate.clone().lock_owned().await),
        _ => None,
    };
    {
        let mut tx = Tx::new(engine, local);
        for s in 0..n {
            let to_writer = to_writer.clone();
            let feeds = feeds.clone();
            let direct = file.clone().map(|f| f as crate::store::snapshot::Direct);
            changes += tx
                .lock_and_run(s, move |sh| {
                    if rewrite || feeds.is_some() {
                        sh.journal_cut(feeds);
                    }
                    sh.snapshot_begin(now, to_writer, direct)
                })
                .await;
        }
        functions = engine.scripting.libraries().libs.values().map(|l| l.code.clone()).collect();
        if let (Some(feeds), Some(_)) = (&feeds, &gate) {
            let _order = engine.repl.lock_backlog();
            for f in feeds.iter() {
                f.attach(engine.repl.offset.load(Relaxed));
            }
        }
    }
    drop(gate);
    drop(to_writer);
    let header = Header { aux: aux_fields(now, rewrite), functions };
    let replica = feeds.map(|f| (f, (!diskless).then(|| path.clone())));
    let streamed = diskless.then(|| replica.as_ref().map(|(f, _)| f.clone())).flatten();
    let patience = Duration::from_secs(engine.cfg.repl.timeout.load(Relaxed));
    let spawned = std::thread::Builder::new().name("snapshot".into()).spawn(move || {
        background_priority();
        let result = match (streamed, file) {
            // A replica that takes none of its diskless payload for
            // `repl-timeout` is dropped, so it cannot hold the snapshot,
            // and every later one, forever.
            (Some(feeds), _) => writer::stream(header, parts, n, feeds, patience),
            (None, Some(file)) => match (writer::write(&path, file, header, parts, n), commands_to) {
                (Ok(keys), Some(target)) => super::commands_base::from_snapshot(&path, &target).map(|()| keys),
                (written, _) => written,
            },
            (None, None) => Err("no snapshot file".into()),
        };
        let _ = finished.send(Finished { result, changes, started_ms: now, rewrite: base, replica });
    });
    if let Err(e) = spawned {
        // The receiver went with the closure: the shards stop on their own.
        st.in_progress.store(false, Relaxed);
        return Err(format!("cannot start the snapshot thread: {e}"));
    }
    Ok(())
}

/// Lowers the calling thread's scheduling priority (nice 10; on Linux
/// the nice value is per thread): where cores are short, the shard
/// threads serving clients win them over the snapshot's file writing.
fn background_priority() {
    // SAFETY: setpriority with who = 0 changes the calling thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Redis's AUX fields.
fn aux_fields(now_ms: u64, aof_base: bool) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("redis-ver", crate::REDIS_VERSION.as_bytes().to_vec()),
        ("redis-bits", b"64".to_vec()),
        ("ctime", (now_ms / 1000).to_string().into_bytes()),
        ("used-mem", crate::alloc::used_memory().to_string().into_bytes()),
        ("aof-base", if aof_base { b"1".to_vec() } else { b"0".to_vec() }),
    ]
}

/// Records a finished snapshot in the node's status (`foreground`: one a
/// client waits for).
fn finish(engine: &Engine, done: Finished, foreground: bool) {
    let st = &engine.saves;
    let now = crate::util::now_ms();
    st.in_progress.store(false, Relaxed);
    st.dump_running.store(false, Relaxed);
    let aborted = st.abort_dump.swap(false, Relaxed);
    if let Some((feeds, path)) = done.replica {
        match (done.result, path) {
            (Ok(keys), None) => info!(keys, ms = now.saturating_sub(done.started_ms), "snapshot streamed to the replicas"),
            (Ok(keys), Some(path)) => {
                info!(keys, ms = now.saturating_sub(done.started_ms), "snapshot for the replicas written");
                // Each replica reads its own handle; the file goes now.
                for f in feeds.iter() {
                    let opened = std::fs::File::open(&path).and_then(|file| Ok((file.metadata()?.len(), file)));
                    f.rdb_done(opened.map(|(len, file)| (file, len)).map_err(|e| format!("reading {}: {e}", path.display())));
                }
                let _ = std::fs::remove_file(&path);
            }
            (Err(e), path) => {
                warn!("snapshot for the replicas failed: {e}");
                for f in feeds.iter() {
                    f.rdb_done(Err(e.clone()));
                }
                if let Some(p) = path {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        return;
    }
    if let Some(base) = done.rewrite {
        let ok = done.result.is_ok();
        match &done.result {
            Ok(keys) => info!(keys, ms = now.saturating_sub(done.started_ms), "journal rewritten"),
            Err(e) => warn!("journal rewrite error: {e}"),
        }
        engine.journal.send(crate::shard::journal::JournalMsg::RewriteDone { base, ok });
        return;
    }
    if aborted && done.result.is_err() {
        // Not a failure (Redis's SIGUSR1): the data it held is gone.
        info!("Background saving terminated by FLUSHALL");
        return;
    }
    st.last_duration.store((now.saturating_sub(done.started_ms) / 1000) as i64, Relaxed);
    match done.result {
        Ok(keys) => {
            st.last_ok.store(true, Relaxed);
            st.last_save.store(now / 1000, Relaxed);
            st.saved_changes.store(done.changes, Relaxed);
            st.last_keys.store(keys, Relaxed);
            st.saves.fetch_add(1, Relaxed);
            info!(keys, ms = now.saturating_sub(done.started_ms), "DB saved on disk");
        }
        Err(e) if foreground => warn!("Error saving DB on disk: {e}"),
        Err(e) => {
            st.last_ok.store(false, Relaxed);
            st.last_attempt.store(now / 1000, Relaxed);
            warn!("Background saving error: {e}");
        }
    }
}

/// Each shard thread's snapshot task: publishes the shard's change count
/// and, while a snapshot runs, serialises the shard's keys step by step.
pub async fn shard_task(local: Rc<LocalShard>, engine: Arc<Engine>) {
    let id = local.id();
    let wake = engine.saves.wake[id].clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        let (changes, sender) = {
            let sh = local.cell.borrow();
            (sh.changes(), sh.snapshot_sender())
        };
        engine.saves.changes[id].store(changes, Relaxed);
        if let Some(sender) = sender {
            serialise(&local, sender, &engine.saves.abort_dump).await;
        }
    }
}

/// Streams this shard's part of the running snapshot to the writer.
/// While the thread's clients keep it busy, the snapshot takes about a
/// `BUSY_SHARE + 1`th of its time (the writes themselves still serialise
/// the keys they touch first); on an idle thread it runs flat out.
async fn serialise(local: &LocalShard, to_writer: mpsc::Sender<Part>, abort: &std::sync::atomic::AtomicBool) {
    let mut served = local.cell.borrow().stats.commands;
    let mut written = 0;
    loop {
        if abort.load(Relaxed) {
            // The writer, missing this shard's end, abandons the file.
            local.run(NO_TX, |sh| sh.snapshot_end()).await;
            return;
        }
        let mut parts = Vec::new();
        let started = std::time::Instant::now();
        // `rdb-key-save-delay` (a test setting): the smallest steps, each
        // followed by the delay of the keys it wrote (the thread serves
        // its clients meanwhile).
        let delay = local.cell.borrow().cfg.rdb_key_save_delay.load(Relaxed);
        let step = if delay != 0 { 1 } else { STEP };
        let (end, keys) = local
            .run(NO_TX, |sh| {
                let done = sh.snapshot_step(step, &mut parts);
                let keys = sh.snapshot_keys_written();
                (done.then(|| sh.snapshot_end()), keys)
            })
            .await;
        if delay != 0 {
            let new = keys.saturating_sub(written);
            written = keys;
            let us = if delay > 0 { new * delay as u64 } else { new / delay.unsigned_abs() };
            if us > 0 {
                tokio::time::sleep(Duration::from_micros(us)).await;
            }
        }
        let spent = started.elapsed();
        for p in parts {
            if to_writer.send(p).await.is_err() {
                // The writer gave up (and says why): stop.
                local.run(NO_TX, |sh| sh.snapshot_end()).await;
                return;
            }
        }
        if let Some(keys) = end {
            let _ = to_writer.send(Part::Done { keys }).await;
            return;
        }
        let now_served = local.cell.borrow().stats.commands;
        let busy = now_served.saturating_sub(served) >= BUSY_COMMANDS;
        served = now_served;
        if busy {
            tokio::time::sleep(spent * BUSY_SHARE).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Asks the saver for a snapshot; the reply comes when it has started
/// (`Background`) or finished (otherwise).
pub fn request(engine: &Engine, kind: SaveKind) -> oneshot::Receiver<Result<(), String>> {
    let (reply, rx) = oneshot::channel();
    match engine.saves.saver.get() {
        Some(s) => {
            if let Err(mpsc::error::SendError(req)) = s.send(SaveRequest { kind, reply }) {
                let _ = req.reply.send(Err("the node is shutting down".into()));
            }
        }
        None => {
            let _ = reply.send(Err("snapshots are not available".into()));
        }
    }
    rx
}
