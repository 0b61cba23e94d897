//! The one transaction mechanism for work that spans shards (MSET, MGET, DEL
//! over several keys, RENAME across shards; later MULTI/EXEC and Lua).
//!
//! A transaction locks the shards it needs in ascending shard order, running
//! its first piece of work on each shard in the same message that takes the
//! lock. Ordered acquisition rules out deadlock; holding every lock until
//! `finish` (strict two-phase locking) means no other client observes a
//! half-applied transaction: single-shard commands on a locked shard wait
//! until it is released.

use super::{run_on, Engine, LocalShard, Shard, TxId};

pub struct Tx<'a> {
    engine: &'a Engine,
    local: &'a LocalShard,
    pub id: TxId,
    locked: Vec<usize>,
}

impl<'a> Tx<'a> {
    pub fn new(engine: &'a Engine, local: &'a LocalShard) -> Tx<'a> {
        Tx { engine, local, id: engine.new_tx_id(), locked: Vec::new() }
    }

    /// Locks `shard` and runs `f` on it in one step. Shards must be locked in
    /// ascending order.
    pub async fn lock_and_run<R: Send + 'static>(&mut self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        debug_assert!(self.locked.last().is_none_or(|&l| l < shard), "shards locked out of order");
        let id = self.id;
        let r = run_on(self.engine, self.local, shard, id, move |sh| {
            sh.lock(id);
            f(sh)
        })
        .await;
        self.locked.push(shard);
        r
    }

    /// Locks every shard in `shards` (ascending) without running anything.
    pub async fn lock_all(&mut self, shards: &[usize]) {
        for &s in shards {
            self.lock_and_run(s, |_| ()).await;
        }
    }

    /// Runs `f` on a shard this transaction already holds.
    pub async fn run<R: Send + 'static>(&self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        debug_assert!(self.locked.contains(&shard), "shard not locked by this transaction");
        run_on(self.engine, self.local, shard, self.id, f).await
    }

    /// Releases every lock (also done on drop).
    pub fn finish(self) {}

    fn release_all(&mut self) {
        let id = self.id;
        for s in self.locked.drain(..) {
            if s == self.local.id() {
                self.local.release(id);
            } else {
                self.engine.send(s, id, Box::new(move |sh| sh.unlock(id)));
            }
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        self.release_all();
    }
}
