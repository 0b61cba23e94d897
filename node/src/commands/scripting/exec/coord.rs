//! The coordinator the commands a script calls run under
//! (`ScriptCoord`): jobs on this thread's shard at once, the others' sent
//! as jobs of the script's transaction (wide mode) or, on the fast path, a
//! reason to escalate.

use super::*;
use crate::commands::coord::finished;

/// A running script as the coordinator of the commands it calls. In wide
/// mode the script's transaction holds every shard: jobs for this thread's
/// shard run at once, the others' are sent as jobs of that transaction and
/// waited for (blocking the thread, which is safe: every other shard
/// thread is free to run them, and no other script can be running). In a
/// fast run a job anywhere means the script needs wide mode.
pub(super) struct ScriptCoord<'s> {
    pub(super) engine: Arc<Engine>,
    pub(super) local: &'s mut Shard,
    /// Wide mode: the transaction holding every shard.
    pub(super) tx: Option<TxId>,
    pub(super) db: &'s mut usize,
    pub(super) out: &'s mut Out,
    pub(super) now: u64,
    /// A fast run reached for a shard.
    pub(super) escalate: bool,
    /// The coordinator command running (`notify::wrap`).
    pub(super) running: Option<commands::notify::Running>,
    /// The caller's restricted ACL user (`Coord::acl_user`).
    pub(super) acl: Option<Arc<crate::shard::acl::User>>,
}

impl ScriptCoord<'_> {
    /// Runs a command to its end: every job completes at once, so one poll
    /// of its future does.
    pub(super) fn run(&mut self, spec: &'static CommandSpec, argv: &[Bytes]) -> Result<(), Escalate> {
        let done = {
            let mut fut = std::pin::pin!(commands::run_command(self, spec, argv));
            let mut task = std::task::Context::from_waker(std::task::Waker::noop());
            fut.as_mut().poll(&mut task).is_ready()
        };
        if self.escalate {
            return Err(Escalate);
        }
        if !done {
            // A shard thread is gone: the node is stopping.
            self.out.error_text("ERR server is shutting down");
        }
        Ok(())
    }

    /// Runs `job` on `shard` now; false when it cannot run here.
    fn run_job(&mut self, shard: usize, job: Job) -> bool {
        let Some(tx) = self.tx else {
            self.escalate = true;
            return false;
        };
        if shard == self.local.id {
            job(self.local);
            return true;
        }
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        self.engine.send(
            shard,
            tx,
            Box::new(move |sh| {
                job(sh);
                let _ = done.send(());
            }),
        );
        wait.recv().is_ok()
    }
}

impl Coord for ScriptCoord<'_> {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn acl_user(&self) -> Option<Arc<crate::shard::acl::User>> {
        self.acl.clone()
    }

    fn db(&self) -> usize {
        *self.db
    }

    fn set_db(&mut self, db: usize) {
        *self.db = db;
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn out(&mut self) -> &mut Out {
        self.out
    }

    fn home(&self) -> usize {
        self.local.id
    }

    fn tx_id(&self) -> TxId {
        self.tx.unwrap_or(crate::shard::NO_TX)
    }

    fn lock<'a>(&'a mut self, _shards: &'a [usize]) -> LocalFut<'a, ()> {
        // Wide mode holds every shard already; a fast run escalates at its
        // first job.
        finished(true)
    }

    fn release(&mut self) {}

    fn send(&mut self, shard: usize, job: Job) -> LocalFut<'_, ()> {
        let job = commands::notify::wrap(&self.running, job);
        finished(self.run_job(shard, job))
    }

    fn set_running(&mut self, cmd: Option<commands::notify::Running>) {
        self.running = cmd;
    }

    fn send_many(&mut self, jobs: Vec<(usize, Job)>) -> LocalFut<'_, ()> {
        let mut ran = true;
        for (shard, job) in jobs {
            let job = commands::notify::wrap(&self.running, job);
            ran = ran && self.run_job(shard, job);
        }
        finished(ran)
    }
}

/// The fast path wants other shards.
pub(super) struct Escalate;
