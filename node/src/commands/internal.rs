//! The coordinator of the commands the node runs for itself rather than
//! for a client: a write from the journal's replay or from a primary's
//! stream that coordinates shards (RENAME, SMOVE or SUNIONSTORE with keys
//! on several shards here, COPY, FUNCTION LOAD, ...). A redis-server
//! primary, or its AOF, has one keyspace and sends any of them; a client
//! runs them through its connection.
//!
//! It runs on the loader's or the link's own thread, which may wait: the
//! command holds every shard while it runs (no reader sees it half done)
//! and each of its jobs is waited for, so its future completes in one
//! poll, as a script's commands do.

use std::future::Future;
use std::sync::{mpsc, Arc};

use bytes::Bytes;

use super::coord::{finished, LocalFut};
use super::{flag, run, Coord, Exec};
use crate::resp::Out;
use crate::shard::{Engine, Job, TxId, NO_TX};

/// Runs `args` in database `db` holding every shard: under `held` when a
/// transaction holds them already (DEBUG RELOAD's), else under one it
/// takes and lets go. `replicated`: from a primary's stream (counted as
/// Redis counts its master client's commands, journaled as the link's);
/// else from the journal. A script cannot be run so, and a read changes
/// nothing (skipped).
pub fn run_wide(engine: &Arc<Engine>, held: TxId, db: usize, args: &[Bytes], replicated: bool) -> Result<(), String> {
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    let from = if replicated { "from the primary" } else { "in the append only file" };
    let Some(spec) = super::lookup_args_original(args).ok().filter(|s| s.arity_ok(args.len())) else {
        return Err(format!("{name} {from} cannot be run"));
    };
    if matches!(spec.exec, Exec::Script(_)) {
        return Err(format!("{name} {from} cannot be run here: a script (Redis 7 sends and journals a script's effects)"));
    }
    if !spec.has_flag(flag::WRITE) {
        return Ok(());
    }
    let n = engine.nshards();
    let tx = if held != NO_TX { held } else { engine.new_tx_id() };
    let mut cx = Internal { engine: engine.clone(), tx, db, out: Out::new(false), replicated, running: None };
    let mut ran = true;
    if held == NO_TX {
        // In ascending order, each taken before the next, as every
        // transaction takes them (no deadlock).
        for s in 0..n {
            ran = ran && cx.run_job(s, Box::new(move |sh| sh.lock(tx)));
        }
    }
    if ran {
        let mut fut = std::pin::pin!(async {
            if replicated {
                run::run_command(&mut cx, spec, args).await
            } else {
                run::run_command_uncounted(&mut cx, spec, args).await
            }
        });
        ran = fut.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())).is_ready();
    }
    if held == NO_TX {
        for s in 0..n {
            engine.send(
                s,
                tx,
                Box::new(move |sh| {
                    if replicated {
                        sh.journal_link_job();
                    }
                    sh.unlock_tx(tx, n)
                }),
            );
        }
    }
    if replicated {
        // Counted on this thread, which INFO does not sum: to shard 0's.
        let counted = super::stats::take();
        engine.send(0, NO_TX, Box::new(move |_| super::stats::absorb(&counted)));
    }
    if !ran {
        return Err("the node is shutting down".into());
    }
    if cx.out.buf.first() == Some(&b'-') {
        return super::persistence::unexpected_error(engine, replicated, spec.name, &cx.out.buf);
    }
    Ok(())
}

/// A command of the node's own, holding every shard.
struct Internal {
    engine: Arc<Engine>,
    tx: TxId,
    db: usize,
    out: Out,
    replicated: bool,
    running: Option<super::notify::Running>,
}

impl Internal {
    /// Runs `job` on `shard` and waits for it; false when it cannot run
    /// (the node is stopping).
    fn run_job(&mut self, shard: usize, job: Job) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        let link = self.replicated;
        self.engine.send(
            shard,
            self.tx,
            Box::new(move |sh| {
                if link {
                    sh.journal_link_job();
                }
                job(sh);
                let _ = done.send(());
            }),
        );
        wait.recv().is_ok()
    }
}

impl Coord for Internal {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn db(&self) -> usize {
        self.db
    }

    fn set_db(&mut self, db: usize) {
        self.db = db;
    }

    fn now(&self) -> u64 {
        // Nothing expires meanwhile: a replica waits for its primary's DEL,
        // and the journal holds the DELs of what expired.
        0
    }

    fn out(&mut self) -> &mut Out {
        &mut self.out
    }

    fn home(&self) -> usize {
        0
    }

    fn tx_id(&self) -> TxId {
        self.tx
    }

    fn lock<'a>(&'a mut self, _shards: &'a [usize]) -> LocalFut<'a, ()> {
        // Every shard is held already.
        finished(true)
    }

    fn release(&mut self) {}

    fn send(&mut self, shard: usize, job: Job) -> LocalFut<'_, ()> {
        let job = super::notify::wrap(&self.running, job);
        finished(self.run_job(shard, job))
    }

    fn send_many(&mut self, jobs: Vec<(usize, Job)>) -> LocalFut<'_, ()> {
        let mut ran = true;
        for (shard, job) in jobs {
            let job = super::notify::wrap(&self.running, job);
            ran = ran && self.run_job(shard, job);
        }
        finished(ran)
    }

    fn acl_user(&self) -> Option<Arc<crate::shard::acl::User>> {
        None
    }

    fn set_running(&mut self, cmd: Option<super::notify::Running>) {
        self.running = cmd;
    }
}
