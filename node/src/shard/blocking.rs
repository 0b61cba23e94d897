//! Clients blocked on keys (BLPOP & co. on lists, BZPOPMIN & co. on sorted
//! sets): each
//! waits with a `Waiter` registered, per key, with the shard that owns the
//! key. When a write touches such a key (`Db::touch` marks it ready), the
//! shard serves the key's waiters in the order they blocked, right after
//! the job that wrote it, or when the transaction holding the shard ends,
//! so no waiter sees a transaction's intermediate state.
//!
//! A waiter blocked on keys of several shards is served once: whoever
//! claims it first (a shard serving it, or its connection giving up on a
//! timeout or a closed client) decides. A reply that can no longer be
//! delivered is put back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Shard;
use crate::store::SmallBytes;

/// What a served waiter receives: the key and the members popped from it.
pub struct Popped {
    pub key: Bytes,
    pub items: Vec<(Vec<u8>, f64)>,
}

/// What a blocked client pops.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Sorted-set members with the highest (else lowest) scores.
    ZSet { max: bool },
    /// List elements from the head (else the tail).
    List { left: bool },
    /// Nothing is taken: the client (XREAD) is woken by a write to a
    /// stream and reads it again.
    Stream,
}

/// Pops up to `count` items of `kind` from `key` (list items carry score 0).
pub fn pop_kind(db: &mut crate::store::Db, key: &[u8], kind: Kind, count: usize, now: u64) -> crate::error::CmdResult<Vec<(Vec<u8>, f64)>> {
    match kind {
        Kind::ZSet { max } => crate::commands::zsets::pop_members(db, key, max, count, now),
        Kind::List { left } => {
            Ok(crate::commands::lists::pop_items(db, key, left, count, now)?.into_iter().map(|v| (v.to_vec(), 0.0)).collect())
        }
        Kind::Stream => Ok(Vec::new()),
    }
}

/// Whether `key` holds items of `kind`.
pub fn has_kind(db: &mut crate::store::Db, key: &[u8], kind: Kind, now: u64) -> bool {
    match kind {
        Kind::ZSet { .. } => crate::commands::zsets::has_members(db, key, now),
        Kind::List { .. } => crate::commands::lists::has_items(db, key, now),
        Kind::Stream => db.exists(key, now),
    }
}

/// Puts popped items back where they came from.
pub fn push_back(
    db: &mut crate::store::Db,
    key: &[u8],
    kind: Kind,
    items: Vec<(Vec<u8>, f64)>,
    limits: crate::types::zset::ZLimits,
    now: u64,
) {
    match kind {
        Kind::ZSet { .. } => crate::commands::zsets::push_back(db, key, items, limits, now),
        Kind::List { left } => {
            let _ = crate::commands::lists::push_items(db, key, left, items.iter().rev().map(|(v, _)| &v[..]), now);
        }
        Kind::Stream => {}
    }
}

/// One blocked client's request.
/// Counts a client as blocked (INFO's `blocked_clients`) for as long as it
/// lives: from when it starts waiting until it is served, times out or
/// leaves, whichever way the wait ends.
pub struct BlockedClient(std::sync::Arc<super::Engine>);

impl BlockedClient {
    pub fn new(engine: std::sync::Arc<super::Engine>) -> BlockedClient {
        engine.stats.blocked_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BlockedClient(engine)
    }
}

impl Drop for BlockedClient {
    fn drop(&mut self) {
        self.0.stats.blocked_clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub struct Waiter {
    claimed: AtomicBool,
    /// What to pop, and at most how many.
    pub kind: Kind,
    pub count: usize,
    tx: Mutex<Option<oneshot::Sender<Popped>>>,
}

impl Waiter {
    pub fn new(kind: Kind, count: usize) -> (Arc<Waiter>, oneshot::Receiver<Popped>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Waiter { claimed: AtomicBool::new(false), kind, count, tx: Mutex::new(Some(tx)) }), rx)
    }

    /// Takes the waiter for serving (or for giving up); false when someone
    /// else already did.
    pub fn claim(&self) -> bool {
        self.claimed.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn live(&self) -> bool {
        !self.claimed.load(Ordering::Acquire) && self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|t| !t.is_closed())
    }

    /// Hands over a reply; gives it back when the client is gone.
    pub fn deliver(&self, p: Popped) -> Result<(), Popped> {
        match self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(tx) => tx.send(p),
            None => Err(p),
        }
    }
}

/// The waiters of one shard, per (database, key), in blocking order.
#[derive(Default)]
pub struct Blocked {
    waiters: HashMap<(usize, SmallBytes), VecDeque<Arc<Waiter>>>,
}

impl Blocked {
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}

impl Shard {
    /// Registers `w` as blocked on `key` of database `db`.
    pub fn block(&mut self, db: usize, key: &[u8], w: Arc<Waiter>) {
        self.db(db).set_wake(key, true);
        self.blocked.waiters.entry((db, SmallBytes::new(key))).or_default().push_back(w);
    }

    /// Forgets the waiters of `key` that are served or gone.
    pub fn prune_waiters(&mut self, db: usize, key: &[u8]) {
        let k = (db, SmallBytes::new(key));
        if let Some(q) = self.blocked.waiters.get_mut(&k) {
            q.retain(|w| w.live());
            if q.is_empty() {
                self.blocked.waiters.remove(&k);
                self.db(db).set_wake(key, false);
            }
        }
    }

    /// Serves the waiters of every key written since the last call (called
    /// after each job, and when a transaction releases the shard).
    pub fn serve_blocked(&mut self) {
        if self.blocked.is_empty() || self.is_locked() {
            return;
        }
        for db in 0..self.db_count() {
            let ready = match self.db_if_exists(db) {
                Some(d) => d.take_ready(),
                None => continue,
            };
            for key in ready {
                self.serve_key(db, &key);
            }
        }
    }

    fn serve_key(&mut self, db: usize, key: &[u8]) {
        let k = (db, SmallBytes::new(key));
        loop {
            let Some(w) = self.blocked.waiters.get_mut(&k).and_then(|q| q.front().cloned()) else { break };
            if !w.live() {
                self.blocked.waiters.get_mut(&k).map(VecDeque::pop_front);
                continue;
            }
            let now = crate::util::now_ms();
            if !has_kind(self.db(db), key, w.kind, now) {
                // Nothing to give (gone again, or not a sorted set): the
                // waiters keep waiting.
                break;
            }
            self.blocked.waiters.get_mut(&k).map(VecDeque::pop_front);
            if !w.claim() {
                continue;
            }
            let items = pop_kind(self.db(db), key, w.kind, w.count, now).unwrap_or_default();
            if let Err(back) = w.deliver(Popped { key: Bytes::copy_from_slice(key), items }) {
                let limits = self.cfg.zset_limits();
                push_back(self.db(db), key, w.kind, back.items, limits, now);
            }
        }
        self.prune_waiters(db, key);
    }
}
