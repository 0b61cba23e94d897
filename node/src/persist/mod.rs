//! Durability: snapshots in Redis's RDB format, written without a fork and
//! without stalling the shards, and loaded at start.
//!
//! - `saver`: the one task that starts snapshots (SAVE, BGSAVE, save
//!   points, shutdown, DEBUG RELOAD) and the per-shard tasks that stream
//!   each shard's keys to the file;
//! - `writer`: the thread that writes a file safely (temporary name,
//!   fsync, rename, directory fsync);
//! - `load`: reading a file back into the shards;
//! - `aof`, `manifest`, `aof_load`: the append-only journal's writer
//!   thread, its files and their manifest, and its replay at start (the
//!   shard's side is `shard::journal`);
//! - `replica`, `payload`: a replica's link to its primary and the full
//!   sync's payload it reads (Redis's `$<len>` and `$EOF:<mark>` forms).
//!
//! The shard's side (point-in-time cut, slot-by-slot serialisation, the
//! status INFO reads) is `shard::snapshot`; the byte format is
//! `store::rdb`.

pub mod aof;
pub mod aof_load;
pub mod commands_base;
pub mod duplex;
pub mod load;
pub mod manifest;
pub mod payload;
pub mod replica;
pub mod saver;
pub mod writer;

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;
use tracing::{error, info};

use crate::shard::tx::Tx;
use crate::shard::{Engine, LocalShard, NO_TX};

pub use saver::request;

/// Replaces the node's function libraries with these codes (set by the
/// command layer, which compiles them).
pub static RESTORE_FUNCTIONS: OnceLock<RestoreFunctions> = OnceLock::new();

pub type RestoreFunctions = fn(&Engine, &[Vec<u8>]) -> Result<(), String>;

fn restore_functions(engine: &Engine, codes: &[Vec<u8>]) -> Result<(), String> {
    match RESTORE_FUNCTIONS.get() {
        Some(f) => f(engine, codes),
        None if codes.is_empty() => Ok(()),
        None => Err("function libraries cannot be loaded here".into()),
    }
}

/// Loads the data at start-up on a thread of its own (clients get
/// -LOADING meanwhile): the journal when `appendonly` is on (its base and
/// increments; the snapshot file only when no journal exists yet, which a
/// rewrite then creates), the snapshot file otherwise. A file that cannot
/// be read stops the process, as it stops Redis: serving without the data
/// would look like data loss.
pub fn load_at_start(engine: &Arc<Engine>) {
    let rdb = engine.cfg.rdb_path();
    let journal = engine.cfg.appendonly.load(Relaxed);
    if !journal && !rdb.exists() {
        return;
    }
    engine.saves.loading.store(true, Relaxed);
    let engine = engine.clone();
    let spawned = std::thread::Builder::new().name("loading".into()).spawn(move || {
        let result = if journal { load_journal(&engine) } else { load_snapshot(&engine, &rdb) };
        match result {
            Ok(loaded) => {
                forget_changes(&engine);
                engine.saves.load_keys.store(loaded.keys, Relaxed);
                engine.saves.load_expired.store(loaded.expired, Relaxed);
                engine.saves.loading.store(false, Relaxed);
                info!(keys = loaded.keys, expired = loaded.expired, seconds = loaded.seconds, "DB loaded from disk");
            }
            Err(e) => {
                // Redis's words, which its tests and operators look for.
                error!("Fatal error loading the DB: {e}. Exiting.");
                eprintln!("damselfly: Fatal error loading the DB: {e}. Exiting.");
                std::process::exit(1);
            }
        }
    });
    if let Err(e) = spawned {
        error!("cannot start loading: {e}");
        std::process::exit(1);
    }
}

fn load_snapshot(engine: &Arc<Engine>, path: &std::path::Path) -> Result<load::Loaded, String> {
    info!(file = %path.display(), "loading the snapshot");
    let loaded = load::load_file(path, engine, NO_TX, false).map_err(|e| format!("{}: {e}", path.display()))?;
    run_functions_on_shard(engine, loaded.functions.clone(), NO_TX)?;
    Ok(loaded)
}

/// Replays the journal, then turns it on for every shard and starts its
/// writer; without a journal yet, loads the snapshot file (if any) and
/// starts one with a rewrite.
fn load_journal(engine: &Arc<Engine>) -> Result<load::Loaded, String> {
    let layout = aof::Layout::from_config(engine);
    layout.take_over_single_file()?;
    let manifest = layout.read_manifest()?;
    let loaded = match &manifest {
        Some(m) => {
            info!(dir = %layout.dir.display(), "loading the append-only journal");
            aof_load::load(engine, &layout, m, NO_TX)?
        }
        None if engine.cfg.rdb_path().exists() => load_snapshot(engine, &engine.cfg.rdb_path())?,
        None => load::Loaded::default(),
    };
    let (to_writer, from_shards) = std::sync::mpsc::channel();
    let _ = engine.journal.to_writer.set(to_writer);
    aof::start(engine, layout, manifest.clone().unwrap_or_default(), from_shards)?;
    on_every_shard(engine, |sh| sh.journal_start());
    if manifest.as_ref().is_none_or(|m| m.base.is_none() && m.incrs.is_empty()) {
        // The journal's first base file: what was loaded (maybe nothing).
        // A journal of increments alone goes on as it is, as Redis's
        // does (a rewrite at start would drop files an operator gave it).
        drop(request(engine, crate::shard::snapshot::SaveKind::AofRewrite));
    }
    Ok(loaded)
}

/// `CONFIG SET appendonly yes|no` (Redis's startAppendOnly and
/// stopAppendOnly). On: the writer (running already if replicas are fed)
/// is told to write files from the next rewrite's point in time, every
/// shard journals its writes, and that rewrite is asked for; the journal
/// counts as on (INFO `aof_enabled`) at once, and its files hold the data
/// once the rewrite's base is written. Off: what was received is written
/// and fsynced, the files are closed (kept on disk, as Redis keeps them),
/// and shards stop journaling unless replicas need it.
pub async fn set_appendonly(engine: &Arc<Engine>, on: bool) -> Result<(), String> {
    if engine.saves.loading() {
        return Err("the data is still loading; try again once it is loaded".into());
    }
    if on {
        aof::start_sink(engine)?;
    } else if !engine.journal.on() {
        return Ok(());
    }
    let (done, answer) = oneshot::channel();
    engine.journal.send(crate::shard::journal::JournalMsg::SetFiles { on, done });
    answer.await.map_err(|_| "the journal writer stopped".to_string())??;
    let e = engine.clone();
    broadcast(engine, move |sh| {
        let replicas = e.repl.active.load(Relaxed) || e.repl.is_replica();
        match (on, sh.journaling()) {
            (true, false) => sh.journal_start(),
            (false, true) if !replicas => sh.journal_stop(),
            _ => {}
        }
    })
    .await;
    if on && engine.journal.enabling.load(Relaxed) && !engine.journal.rewriting.load(Relaxed) {
        match request(engine, crate::shard::snapshot::SaveKind::AofRewrite).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e == "scheduled" => {}
            // The saver retries it (`saver::run`).
            Ok(Err(e)) => tracing::warn!("cannot start the rewrite that turns the journal on: {e}"),
            Err(_) => return Err("the node is shutting down".into()),
        }
    }
    Ok(())
}

/// Sends `f` to every shard; one answer per shard once it has run there.
fn send_to_every_shard(
    engine: &Engine,
    f: impl Fn(&mut crate::shard::Shard) + Send + Sync + Clone + 'static,
) -> Vec<oneshot::Receiver<()>> {
    (0..engine.nshards())
        .map(|s| {
            let (tx, rx) = oneshot::channel();
            let f = f.clone();
            engine.send(
                s,
                NO_TX,
                Box::new(move |sh| {
                    f(sh);
                    let _ = tx.send(());
                }),
            );
            rx
        })
        .collect()
}

/// Runs `f` on every shard and waits for all, without blocking the
/// calling thread (which may be a shard's).
async fn broadcast(engine: &Engine, f: impl Fn(&mut crate::shard::Shard) + Send + Sync + Clone + 'static) {
    for answer in send_to_every_shard(engine, f) {
        let _ = answer.await;
    }
}

/// Runs `f` on every shard and waits for all, blocking the calling thread
/// (one outside the runtime: loading).
fn on_every_shard(engine: &Engine, f: impl Fn(&mut crate::shard::Shard) + Send + Sync + Clone + 'static) {
    for answer in send_to_every_shard(engine, f) {
        let _ = answer.blocking_recv();
    }
}

/// Loads function libraries on the first shard's thread (where a script
/// VM can compile them) and waits for the result.
fn run_functions_on_shard(engine: &Arc<Engine>, codes: Vec<Vec<u8>>, tx: crate::shard::TxId) -> Result<(), String> {
    if codes.is_empty() {
        return Ok(());
    }
    let (done, rx) = std::sync::mpsc::channel();
    let e = engine.clone();
    engine.send(
        0,
        tx,
        Box::new(move |_| {
            let _ = done.send(restore_functions(&e, &codes));
        }),
    );
    rx.recv().map_err(|_| "the node is shutting down".to_string())?
}

/// DEBUG LOADAOF's loading, every shard held by `tx`, emptied and not
/// journaling: what the journal has received is written and fsynced, then
/// its base and increments are replayed (Redis's loadAppendOnlyFiles).
/// Blocks the calling thread. `Ok(None)`: there is no journal on disk.
pub fn load_journal_again(engine: &Arc<Engine>, tx: crate::shard::TxId) -> Result<Option<load::Loaded>, String> {
    if engine.journal.aof_on() {
        let (done, wait) = std::sync::mpsc::channel();
        engine.journal.send(crate::shard::journal::JournalMsg::Sync(done));
        wait.recv().map_err(|_| "the journal's writer has stopped".to_string())?;
    }
    let layout = aof::Layout::from_config(engine);
    match layout.read_manifest()? {
        Some(m) => aof_load::load(engine, &layout, &m, tx).map(Some),
        None => Ok(None),
    }
}

/// Whether a journal's files are on disk (its manifest).
pub fn journal_exists(engine: &Engine) -> bool {
    aof::Layout::from_config(engine).read_manifest().is_ok_and(|m| m.is_some())
}

/// Counts the loaded data as unchanged on every shard (waiting for each).
fn forget_changes(engine: &Engine) {
    on_every_shard(engine, |sh| sh.forget_changes());
}

/// DEBUG RELOAD's second half: with every shard held, empties the data and
/// loads the file just written.
async fn reload(local: &Rc<LocalShard>, engine: &Arc<Engine>) -> Result<(), String> {
    let n = engine.nshards();
    let mut tx = Tx::new(engine, local);
    for s in 0..n {
        tx.lock_and_run(s, |sh| sh.flush_all(0)).await;
    }
    let (done_tx, done_rx) = oneshot::channel();
    let (e, path, id) = (engine.clone(), engine.cfg.rdb_path(), tx.id);
    std::thread::Builder::new()
        .name("loading".into())
        .spawn(move || {
            let _ = done_tx.send(load::load_file(&path, &e, id, false));
        })
        .map_err(|e| format!("cannot start loading: {e}"))?;
    let loaded = done_rx.await.map_err(|_| "loading stopped".to_string())??;
    restore_functions(engine, &loaded.functions)?;
    engine.saves.load_keys.store(loaded.keys, Relaxed);
    engine.saves.load_expired.store(loaded.expired, Relaxed);
    for s in 0..n {
        tx.run(s, |sh| sh.forget_changes()).await;
    }
    engine.saves.saved_changes.store(0, Relaxed);
    Ok(())
}
