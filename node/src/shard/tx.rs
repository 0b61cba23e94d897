//! The one transaction mechanism for work that spans shards: multi-key
//! commands (MSET, MGET, DEL over several keys, RENAME, ...), MULTI/EXEC, and
//! later Lua scripts.
//!
//! A transaction locks the shards it needs in ascending shard order, running
//! its first piece of work on each shard in the same message that takes the
//! lock. Ordered acquisition rules out deadlock; holding every lock until the
//! transaction ends (strict two-phase locking) means no other client
//! observes a half-applied transaction: other work for a locked shard waits
//! in the shard's queue until it is released.
//!
//! Locking is idempotent: EXEC locks every shard its queued commands need up
//! front, and the commands then run through the same `Tx` (see
//! `Conn::begin_tx`), so a multi-key command inside EXEC reuses the held
//! locks instead of taking new ones.

use std::rc::Rc;
use std::sync::Arc;

use super::{run_on, Engine, LocalShard, Shard, TxId};

pub struct Tx {
    engine: Arc<Engine>,
    local: Rc<LocalShard>,
    pub id: TxId,
    /// Shards held, ascending.
    locked: Vec<usize>,
}

impl Tx {
    pub fn new(engine: &Arc<Engine>, local: &Rc<LocalShard>) -> Tx {
        Tx { engine: engine.clone(), local: local.clone(), id: engine.new_tx_id(), locked: Vec::new() }
    }

    pub fn holds(&self, shard: usize) -> bool {
        self.locked.binary_search(&shard).is_ok()
    }

    /// Locks `shard` (if not already held) and runs `f` on it in one step.
    /// New shards must be taken in ascending order.
    pub async fn lock_and_run<R: Send + 'static>(&mut self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        if self.holds(shard) {
            return self.run(shard, f).await;
        }
        debug_assert!(self.locked.last().is_none_or(|&l| l < shard), "shards locked out of order");
        let id = self.id;
        let r = run_on(&self.engine, &self.local, shard, id, move |sh| {
            sh.lock(id);
            f(sh)
        })
        .await;
        self.locked.push(shard);
        r
    }

    /// Locks every shard in `shards` (ascending, duplicates allowed) without
    /// running anything else.
    pub async fn lock_all(&mut self, shards: &[usize]) {
        for &s in shards {
            if !self.holds(s) {
                self.lock_and_run(s, |_| ()).await;
            }
        }
    }

    /// Runs `f` as one job on a shard this transaction does not hold and
    /// will not need again: the job is exclusive by itself, so it takes no
    /// lock (and needs no unlock message). Only for the highest shard of the
    /// transaction, so the lock order is kept.
    pub async fn run_unlocked<R: Send + 'static>(&mut self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        // With the journal on, this shard's writes must travel with the
        // transaction's other parts: it is locked like the others.
        if self.engine.journal.on() {
            return self.lock_and_run(shard, f).await;
        }
        debug_assert!(self.locked.last().is_none_or(|&l| l < shard), "shards visited out of order");
        run_on(&self.engine, &self.local, shard, self.id, f).await
    }

    /// Runs `f` on a shard this transaction holds.
    pub async fn run<R: Send + 'static>(&self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        debug_assert!(self.holds(shard), "shard not locked by this transaction");
        run_on(&self.engine, &self.local, shard, self.id, f).await
    }

    fn release_all(&mut self) {
        let id = self.id;
        let me = self.local.id();
        let total = self.locked.len();
        for s in self.locked.drain(..) {
            if s == me {
                self.local.release_tx(id, total);
            } else {
                self.engine.send(s, id, Box::new(move |sh| sh.unlock_tx(id, total)));
                RELEASES.with(|r| r.borrow_mut().sent(s));
            }
        }
    }
}

/// Per thread and shard: releases sent to the shard without waiting (a
/// transaction's part reaches the journal when the shard takes it), and
/// how many of them a round trip has since been seen to follow.
#[derive(Default)]
struct Releases {
    sent: Vec<u64>,
    covered: Vec<u64>,
}

impl Releases {
    fn sent(&mut self, shard: usize) {
        if self.sent.len() <= shard {
            self.sent.resize(shard + 1, 0);
            self.covered.resize(shard + 1, 0);
        }
        self.sent[shard] += 1;
    }
}

thread_local! {
    static RELEASES: std::cell::RefCell<Releases> = std::cell::RefCell::new(Releases::default());
}

/// Makes sure every transaction this thread released on other shards has
/// handed its journal part over: a round trip to each shard that was sent
/// a release since the last one (its inbox is in order), none otherwise.
pub async fn await_releases(engine: &Engine, local: &LocalShard) {
    let me = local.id();
    for s in (0..engine.nshards()).filter(|&s| s != me) {
        let at = RELEASES.with(|r| {
            let r = r.borrow();
            let (sent, covered) = (r.sent.get(s).copied().unwrap_or(0), r.covered.get(s).copied().unwrap_or(0));
            (sent > covered).then_some(sent)
        });
        let Some(at) = at else { continue };
        run_on(engine, local, s, super::NO_TX, |_| ()).await;
        RELEASES.with(|r| {
            let mut r = r.borrow_mut();
            r.covered[s] = r.covered[s].max(at);
        });
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.release_all();
    }
}
