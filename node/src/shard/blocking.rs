//! Clients blocked on keys (BLPOP & co. on lists, BZPOPMIN & co. on sorted
//! sets, XREAD BLOCK on streams): each waits with a `Waiter` registered,
//! per key, with the shard that owns the key. When a write touches such a
//! key (`Db::touch` marks it ready), the shard serves the key's waiters in
//! the order they blocked, right after the job that wrote it, or when the
//! transaction holding the shard ends, so no waiter sees a transaction's
//! intermediate state.
//!
//! A waiter blocked on keys of several shards is served once: whoever
//! claims it first (a shard serving it, or its connection giving up on a
//! timeout or a closed client) decides. A reply that can no longer be
//! delivered is put back.
//!
//! The controller knows nothing of the data types: each waiter carries a
//! `Take`, supplied by the command family that blocked (`commands::pops`),
//! which says whether a key has something to give, takes it, and puts it
//! back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Shard;
use crate::config::Config;
use crate::error::CmdResult;
use crate::store::{Db, SmallBytes};

/// What a served waiter receives: the key and the members popped from it,
/// or the error taking them met (a BLMOVE's destination of another type).
pub struct Popped {
    pub key: Bytes,
    pub items: Vec<(Vec<u8>, f64)>,
    pub error: Option<crate::error::CmdError>,
}

/// How a blocked client takes items from a key: what it waits for, popping
/// it, and putting popped items back when they cannot be delivered. Items
/// are (member, score) pairs; types without scores use 0.
pub trait Take: Send + Sync {
    /// Whether `key` holds something to take.
    fn ready(&self, db: &mut Db, key: &[u8], now: u64) -> bool;
    /// Takes up to `count` items from `key`.
    fn take(&self, db: &mut Db, key: &[u8], count: usize, now: u64) -> CmdResult<Vec<(Vec<u8>, f64)>>;
    /// Puts taken items back where they came from.
    fn put_back(&self, db: &mut Db, key: &[u8], items: Vec<(Vec<u8>, f64)>, cfg: &Config, now: u64);
    /// The command the journal records for taking `n` items from `key`
    /// (LPOP, ZPOPMIN, ...), if any.
    fn journal_form(&self, key: &[u8], n: usize) -> Option<super::journal::JournalForm>;
}

/// One blocked client's request.
/// Counts a client as blocked (INFO's `blocked_clients`) for as long as it
/// lives: from when it starts waiting until it is served, times out or
/// leaves, whichever way the wait ends.
pub struct BlockedClient {
    engine: std::sync::Arc<super::Engine>,
    /// The waiting client, told how long it waited (a command's own time
    /// leaves its waits out, as Redis counts it); `started`: when.
    client: Option<std::sync::Arc<super::clients::ClientInfo>>,
    started: std::time::Instant,
}

impl BlockedClient {
    pub fn new(engine: std::sync::Arc<super::Engine>, client: Option<std::sync::Arc<super::clients::ClientInfo>>) -> BlockedClient {
        engine.stats.blocked_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BlockedClient { engine, client, started: std::time::Instant::now() }
    }
}

impl Drop for BlockedClient {
    fn drop(&mut self) {
        self.engine.stats.blocked_clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(c) = &self.client {
            c.add_waited(self.started.elapsed().as_nanos() as u64);
        }
    }
}

pub struct Waiter {
    claimed: AtomicBool,
    /// What to take, and at most how many.
    pub take: Box<dyn Take>,
    pub count: usize,
    tx: Mutex<Option<oneshot::Sender<Popped>>>,
}

impl Waiter {
    pub fn new(take: impl Take + 'static, count: usize) -> (Arc<Waiter>, oneshot::Receiver<Popped>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Waiter { claimed: AtomicBool::new(false), take: Box::new(take), count, tx: Mutex::new(Some(tx)) }), rx)
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
                crate::util::shrink_map(&mut self.blocked.waiters);
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
            if !w.take.ready(self.db(db), key, now) {
                // Nothing to give (gone again, or of another type): the
                // waiters keep waiting.
                break;
            }
            self.blocked.waiters.get_mut(&k).map(VecDeque::pop_front);
            if !w.claim() {
                continue;
            }
            let take = &w.take;
            let taken = self.journal_as(
                db,
                |d| take.take(d, key, w.count, now),
                |r| r.as_ref().ok().filter(|v| !v.is_empty()).and_then(|v| take.journal_form(key, v.len())),
            );
            let (items, error) = match taken {
                Ok(items) => (items, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            // Journaled before the client is answered: its wait for
            // durability (`appendfsync always`) must cover the pop.
            self.journal_after_job(crate::shard::NO_TX);
            // Its keyspace events and invalidations go out before its
            // reply, as Redis's.
            self.publish_notes();
            if let Err(back) = w.deliver(Popped { key: Bytes::copy_from_slice(key), items, error }) {
                let cfg = self.cfg.clone();
                w.take.put_back(self.db(db), key, back.items, &cfg, now);
            }
        }
        self.prune_waiters(db, key);
    }
}
