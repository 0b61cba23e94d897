//! The shard engine. Each shard thread owns one `Shard` (its slots' keys in
//! every database) and nobody else touches it: local connections run commands
//! on it inline, other threads send it jobs through its inbox. Multi-shard
//! work goes through `tx::Tx`, which locks the shards it needs in ascending
//! order; while a shard is locked, work of other callers waits in the
//! shard's FIFO queue (see `LocalShard`). Clients blocked on keys wait in
//! each shard's `blocking::Blocked`.
//!
//! The `Engine` holds what every thread shares: the shards' inboxes and the
//! node-wide registries (connected clients in `clients`, pub/sub
//! subscriptions in `pubsub`, the script cache and function libraries in
//! `scripts`).

pub mod acl;
pub mod backlog;
pub mod blocking;
pub mod clients;
pub mod evict;
pub mod inbox;
pub mod journal;
pub mod latency;
pub mod listen;
pub mod monitor;
pub mod notify;
pub mod pubsub;
pub mod repl;
pub mod scripts;
pub mod slowlog;
pub mod snapshot;
pub mod tracking;
pub mod tx;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::{oneshot, Notify};

use crate::config::Config;
use crate::slot::key_slot;
use crate::store::Db;
use inbox::{Inbound, Inbox};
use scripts::Scripting;

/// Whether keys past their TTL are deleted in the background (DEBUG
/// SET-ACTIVE-EXPIRE turns it off for tests, as in Redis); lookups still
/// delete them.
pub static ACTIVE_EXPIRE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Identifies a multi-shard transaction; 0 means "no transaction".
pub type TxId = u64;
pub const NO_TX: TxId = 0;

/// Work sent to a shard: runs with exclusive access to it.
pub type Job = Box<dyn FnOnce(&mut Shard) + Send>;

pub struct Msg {
    pub tx: TxId,
    pub job: Job,
}

/// INFO's instantaneous rates, as Redis's serverCron samples them: every
/// 100 ms the change of a counter per second since the last sample, and
/// the rate is the mean of the last 16 samples.
#[derive(Default, Clone, Copy)]
pub struct Rates {
    /// Per sample, per second: commands, input bytes, output bytes, and
    /// the replication link's input and output bytes.
    samples: [[u64; RATE_COUNTERS]; RATE_SAMPLES],
    idx: usize,
    /// The last reading: time (ms) and the counters.
    last: (u64, [u64; RATE_COUNTERS]),
}

const RATE_COUNTERS: usize = 5;

const RATE_SAMPLES: usize = 16;

impl Rates {
    /// Takes a sample of the shard's counters at `now` (Unix ms);
    /// `repl_input`: the bytes read from a primary, which shard 0 samples
    /// for the node (0 on the others).
    pub fn track(&mut self, now: u64, s: &ShardStats, repl_input: u64) {
        let cur = [s.commands, s.net_input_bytes, s.net_output_bytes, repl_input, s.repl_output_bytes];
        let (t, prev) = self.last;
        if t != 0 {
            let dt = now.saturating_sub(t);
            for k in 0..RATE_COUNTERS {
                self.samples[self.idx][k] = (cur[k].saturating_sub(prev[k]) * 1000).checked_div(dt).unwrap_or(0);
            }
            self.idx = (self.idx + 1) % RATE_SAMPLES;
        }
        self.last = (now, cur);
    }

    /// Commands, input bytes, output bytes, replication input and output
    /// bytes per second.
    pub fn get(&self) -> [u64; RATE_COUNTERS] {
        let mut r = [0; RATE_COUNTERS];
        for s in &self.samples {
            for k in 0..RATE_COUNTERS {
                r[k] += s[k];
            }
        }
        r.map(|v| v / RATE_SAMPLES as u64)
    }
}

/// Counters a shard keeps about itself (read by INFO).
#[derive(Default, Clone, Copy, Debug)]
pub struct ShardStats {
    /// Commands run by the connections of this shard's thread.
    pub commands: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    /// Reads from client sockets that brought data, and writes of
    /// replies (INFO's `total_reads_processed`, `total_writes_processed`).
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// Bytes written to replicas (not counted in `net_output_bytes`, as
    /// Redis counts them apart).
    pub repl_output_bytes: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    /// Jobs other threads sent this shard (cross-shard hops), counted
    /// when they run.
    pub hops: u64,
    /// Work that had to wait in the shard's queue because a transaction
    /// held the shard (or others were already waiting behind one).
    pub lock_waits: u64,
}

pub struct Shard {
    pub id: usize,
    nshards: usize,
    seed: u64,
    dbs: Vec<Option<Box<Db>>>,
    /// Reused by `invalidate_notes`.
    note_buf: Vec<crate::store::notify::Note>,
    pub stats: ShardStats,
    /// Instantaneous rates of `stats` (sampled by the expiry tick).
    pub rates: Rates,
    pub cfg: Arc<Config>,
    /// The node's script cache and function libraries (this thread's VM
    /// is created from it on first use).
    pub scripting: Arc<Scripting>,
    /// Cluster mode: the node's slot map (whose gate holds the slots a
    /// migration is cutting over).
    pub cluster: Option<Arc<crate::slot::map::SlotMap>>,
    /// Clients blocked on keys of this shard.
    pub blocked: blocking::Blocked,
    /// The node's engine (set when the shard's thread starts; scripts on
    /// this shard reach the others through it).
    pub engine: Option<Arc<Engine>>,
    lock: TxId,
    /// This shard's part of a running snapshot.
    snapshot: Option<snapshot::ShardSnapshot>,
    /// Wakes the thread's snapshot task when a snapshot starts.
    pub snapshot_wake: Arc<Notify>,
    /// Changes counted by databases since dropped (flushed, swapped out).
    dropped_changes: u64,
    /// Changes not to count (made while loading a file).
    changes_offset: u64,
    /// The append-only journal's pending work, when it is on.
    journal: Option<journal::ShardJournal>,
    /// Eviction's candidates, the policy they were scored for, the next
    /// database random eviction looks at, and whether this shard last
    /// found nothing to evict (`evict`): the round of `FAILING` it counted
    /// itself in.
    pool: evict::Pool,
    evict_policy: crate::config::Policy,
    evict_next_db: usize,
    evict_failing: Option<u64>,
    /// Keyspace events held back (see `notify`).
    held_events: Option<notify::Held>,
    /// Keys tracking clients read (client-side caching).
    pub tracked: tracking::Table,
    /// The tracking client whose command is running (0: none, or one that
    /// does not track) and its mode: NOLOOP's own writes are not reported
    /// to it, and its reads are remembered (`commands::tracking`).
    pub caller: u64,
    pub caller_mode: u8,
    /// While that client's script runs here: the keys it declared, which
    /// its read commands make the client track (as Redis remembers the
    /// script's keys, not those of the commands it calls).
    pub script_keys: Option<Vec<bytes::Bytes>>,
}

impl Shard {
    pub fn new(id: usize, nshards: usize, cfg: Arc<Config>, scripting: Arc<Scripting>) -> Shard {
        let dbs = (0..cfg.databases).map(|_| None).collect();
        Shard {
            id,
            nshards,
            seed: rand::random(),
            dbs,
            note_buf: Vec::new(),
            stats: ShardStats::default(),
            rates: Rates::default(),
            cfg,
            scripting,
            cluster: None,
            blocked: Default::default(),
            engine: None,
            lock: NO_TX,
            snapshot: None,
            snapshot_wake: Arc::new(Notify::new()),
            dropped_changes: 0,
            changes_offset: 0,
            journal: None,
            pool: Default::default(),
            evict_policy: crate::config::Policy::NoEviction,
            evict_next_db: 0,
            evict_failing: None,
            held_events: None,
            tracked: Default::default(),
            caller: 0,
            caller_mode: 0,
            script_keys: None,
        }
    }

    /// Number of shards in the node.
    pub fn nshards(&self) -> usize {
        self.nshards
    }

    /// Database `i`, created on first use.
    pub fn db(&mut self, i: usize) -> &mut Db {
        let (id, n, seed, journal) = (self.id, self.nshards, self.seed, self.journal.is_some());
        self.dbs[i].get_or_insert_with(|| {
            let mut d = Box::new(Db::new(id, n, seed));
            d.journal_on(journal);
            d
        })
    }

    /// Database `i` if it has ever been used.
    pub fn db_if_exists(&mut self, i: usize) -> Option<&mut Db> {
        self.dbs.get_mut(i)?.as_deref_mut()
    }

    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    /// Empties database `i`; its watchers are told and stay registered,
    /// and so are tracking clients (`flushed`).
    pub fn flush_db(&mut self, i: usize) {
        self.drop_db(i, false);
        self.flushed(false);
    }

    /// FLUSHDB / FLUSHALL ASYNC: as `flush_db` / `flush_all` (`db` None),
    /// the dropped keys freed in the background (`store::lazyfree`).
    pub fn flush_async(&mut self, db: Option<usize>) {
        match db {
            Some(i) => self.drop_db(i, true),
            None => (0..self.dbs.len()).for_each(|i| self.drop_db(i, true)),
        }
        self.flushed(db.is_none());
    }

    /// Empties every database (FLUSHALL, a replica's full sync, DEBUG
    /// RELOAD).
    pub fn flush_all(&mut self) {
        for i in 0..self.dbs.len() {
            self.drop_db(i, false);
        }
        self.flushed(true);
    }

    /// After a flush, whatever ran it (a client, the primary's stream, a
    /// full sync): tracking clients are told once, by the first shard,
    /// that every key changed (Redis's null invalidation); a FLUSHALL also
    /// empties the tracked-keys tables of keys read by clients that have
    /// stopped tracking since (as Redis frees them).
    fn flushed(&mut self, all: bool) {
        if all || crate::store::notify::tracking() {
            self.invalidate_all(self.id == 0);
        }
    }

    fn drop_db(&mut self, i: usize, lazy: bool) {
        self.journal_db_command(i, &[b"FLUSHDB"]);
        let Some(old) = self.dbs[i].as_mut() else { return };
        let watchers = old.take_watchers();
        Db::raise_watchers(&watchers, |k| old.contains(k));
        let tracking = old.take_tracking();
        let wake = old.take_wake();
        if let Some(mut old) = self.dbs[i].take() {
            self.stats.expired_keys += old.take_expired();
            // A flush changes every key it drops.
            self.dropped_changes += old.changes() + old.len() as u64;
            match self.keep_for_snapshot(old) {
                Some(old) if lazy => {
                    let keys = old.len() as u64;
                    crate::store::lazyfree::free_later(old, keys);
                }
                old => drop(old),
            }
        }
        if !wake.is_empty() {
            // The keys clients wait on are gone: their waiters look again
            // (a consumer-group reader's wait ends with an error).
            let d = self.db(i);
            for k in &wake {
                d.mark_ready(k);
            }
            d.set_wake_all(wake);
        }
        if !watchers.is_empty() {
            self.db(i).set_watchers(watchers);
        }
        if tracking.is_some() {
            self.db(i).set_tracking(tracking);
        }
    }

    /// Exchanges the contents of databases `a` and `b` (SWAPDB). Connections
    /// address databases by index, so clients of both see the swap at once.
    /// WATCH registrations and blocked clients stay with their database
    /// number (a watcher of db 0 now sees the other data): the watchers of a
    /// key that exists in either database are told, and clients blocked on
    /// a key the swap brought in are served.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let (ta, tb) = (a.to_string(), b.to_string());
        self.journal_db_command(a, &[b"SWAPDB", ta.as_bytes(), tb.as_bytes()]);
        let wa = self.dbs[a].as_mut().map(|d| d.take_watchers()).unwrap_or_default();
        let wb = self.dbs[b].as_mut().map(|d| d.take_watchers()).unwrap_or_default();
        let (da, db) = (self.dbs[a].as_deref(), self.dbs[b].as_deref());
        let in_either = |k: &[u8]| da.is_some_and(|d| d.contains(k)) || db.is_some_and(|d| d.contains(k));
        Db::raise_watchers(&wa, in_either);
        Db::raise_watchers(&wb, in_either);
        let blocked_a = self.dbs[a].as_mut().map(|d| d.take_wake()).unwrap_or_default();
        let blocked_b = self.dbs[b].as_mut().map(|d| d.take_wake()).unwrap_or_default();
        self.dbs.swap(a, b);
        if !wa.is_empty() {
            self.db(a).set_watchers(wa);
        }
        if !wb.is_empty() {
            self.db(b).set_watchers(wb);
        }
        for (i, blocked) in [(a, blocked_a), (b, blocked_b)] {
            if !blocked.is_empty() {
                let d = self.db(i);
                for k in blocked.iter().filter(|k| d.contains(k)) {
                    d.mark_ready(k);
                }
                d.set_wake_all(blocked);
            }
        }
    }

    /// The shard's counters, with the keys its databases have expired
    /// (on lookup or in the active cycle) taken in.
    pub fn counted_stats(&mut self) -> ShardStats {
        for d in self.dbs.iter_mut().flatten() {
            self.stats.expired_keys += d.take_expired();
        }
        self.stats
    }

    /// Active expiry: delete expired keys across databases, at most `budget`.
    pub fn expire_cycle(&mut self, now: u64, budget: usize) -> usize {
        // Nothing expires while the data loads (the journal may still touch
        // a key whose TTL has passed, as Redis replays it).
        // Nor while CLIENT PAUSE holds the data still: keys keep their
        // state, as in Redis (the same rule lookups follow,
        // `store::db::KEEP_EXPIRED_UNTIL`).
        // Nor while DEBUG SET-ACTIVE-EXPIRE 0 says so.
        if !ACTIVE_EXPIRE.load(Relaxed)
            || now < crate::store::db::KEEP_EXPIRED_UNTIL.load(Relaxed)
            || self.engine.as_ref().is_some_and(|e| e.saves.loading())
        {
            return 0;
        }
        // The latency monitor's `expire-cycle` (timed only when it is on).
        let start = (self.cfg.latency_monitor_threshold.load(Relaxed) > 0).then(std::time::Instant::now);
        let mut n = 0;
        for d in self.dbs.iter_mut().flatten() {
            n += d.expire_cycle(now, budget - n);
            if n >= budget {
                break;
            }
        }
        if let (Some(start), Some(e)) = (start, &self.engine) {
            e.latency.add_if_needed(&self.cfg, "expire-cycle", start.elapsed().as_millis() as u64);
        }
        n
    }

    /// Whether a transaction holds the shard.
    pub fn is_locked(&self) -> bool {
        self.lock != NO_TX
    }

    pub fn is_locked_against(&self, tx: TxId) -> bool {
        self.lock != NO_TX && self.lock != tx
    }

    pub fn lock(&mut self, tx: TxId) {
        debug_assert!(!self.is_locked_against(tx));
        self.lock = tx;
    }

    pub fn unlock(&mut self, tx: TxId) {
        if self.lock == tx {
            self.lock = NO_TX;
        }
    }

    /// Releases the lock of a transaction that held `total` shards; its
    /// journal part goes out.
    pub fn unlock_tx(&mut self, tx: TxId, total: usize) {
        if self.lock == tx {
            self.journal_release(tx, total);
            self.lock = NO_TX;
            self.send_broadcasts();
        }
    }
}

/// The node-wide handles every thread shares: each shard's inbox, the
/// configuration, and node counters.
pub struct Engine {
    inboxes: Vec<Arc<Inbox>>,
    pub cfg: Arc<Config>,
    next_tx: AtomicU64,
    pub stats: NodeStats,
    pub clients: clients::Clients,
    pub scripting: Arc<Scripting>,
    /// Notified by SHUTDOWN.
    pub shutdown: Notify,
    /// Pub/sub subscriptions of every connection.
    pub pubsub: pubsub::PubSub,
    /// MONITOR's connections.
    pub monitors: monitor::Monitors,
    /// The latency monitor's events.
    pub latency: latency::Latency,
    /// Cluster mode: which node serves each slot. `None` in standalone mode,
    /// where this node owns every slot.
    pub cluster: Option<Arc<crate::slot::map::SlotMap>>,
    /// Snapshot and loading status.
    pub saves: snapshot::SaveStatus,
    /// The append-only journal's status.
    pub journal: journal::JournalStatus,
    /// Replication (primary side): id, offset, replicas' feeds.
    pub repl: repl::ReplState,
    /// ACL users and the ACL LOG.
    pub acl: acl::Acl,
    /// The accept loops' new sockets when CONFIG SET moves the port.
    pub listeners: listen::Listeners,
}

#[derive(Default)]
/// Node-wide counters touched rarely (per connection, not per command);
/// per-command counters live in each shard's `ShardStats`.
pub struct NodeStats {
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    /// Clients waiting in a blocking command (BLPOP, XREAD BLOCK, WAIT, ...).
    pub blocked_clients: AtomicU64,
    pub start_ms: AtomicU64,
    /// `used_memory` when the node had started its shards.
    pub used_memory_startup: AtomicU64,
    /// SLOWLOG's entries.
    pub slowlog: slowlog::SlowLog,
    /// Clients closed for `maxmemory-clients` (INFO's `evicted_clients`).
    pub evicted_clients: AtomicU64,
}

impl Engine {
    /// `scripting` is the node's script registry, built by the caller
    /// (it is handed the command table, which lives above this layer).
    pub fn new(cfg: Arc<Config>, cluster: Option<Arc<crate::slot::map::SlotMap>>, scripting: Arc<Scripting>) -> Arc<Engine> {
        let nshards = cfg.shards;
        let e = Engine {
            inboxes: (0..nshards).map(|_| Arc::default()).collect(),
            cfg,
            next_tx: AtomicU64::new(1),
            stats: NodeStats::default(),
            clients: Default::default(),
            scripting,
            shutdown: Notify::new(),
            pubsub: Default::default(),
            monitors: Default::default(),
            latency: Default::default(),
            saves: snapshot::SaveStatus::new(nshards, crate::util::now_ms() / 1000),
            journal: Default::default(),
            repl: Default::default(),
            cluster,
            acl: Default::default(),
            listeners: Default::default(),
        };
        e.stats.start_ms.store(crate::util::now_ms(), Relaxed);
        e.stats.used_memory_startup.store(crate::alloc::used_memory(), Relaxed);
        evict::configure(&e.cfg);
        notify::configure(&e.cfg);
        crate::resp::set_reply_max(e.cfg.reply_max_bytes.load(Relaxed));
        Arc::new(e)
    }

    pub fn nshards(&self) -> usize {
        self.inboxes.len()
    }

    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        match self.inboxes.len() {
            1 => 0,
            n => key_slot(key) as usize % n,
        }
    }

    pub fn new_tx_id(&self) -> TxId {
        self.next_tx.fetch_add(1, Relaxed)
    }

    /// Sends a job to a shard's inbox without waiting.
    pub fn send(&self, shard: usize, tx: TxId, job: Job) {
        self.inboxes[shard].push(Inbound::Job(Msg { tx, job }));
    }

    /// Shard `shard`'s inbox.
    pub fn inbox(&self, shard: usize) -> &Arc<Inbox> {
        &self.inboxes[shard]
    }
}

/// A caller waiting for its turn on a locked shard.
enum Waiting {
    /// A job from another thread.
    Remote(Msg),
    /// A task on this thread; signalled when its turn comes.
    Local(oneshot::Sender<()>),
}

/// This thread's shard plus the machinery to run work on it fairly.
///
/// Work that cannot run at once (the shard is locked by another
/// transaction, or others are already waiting) joins one FIFO queue, whether
/// it comes from another thread or from a task on this one, so no caller can
/// be starved. Only the lock owner's own work bypasses the queue.
pub struct LocalShard {
    pub cell: RefCell<Shard>,
    queue: RefCell<VecDeque<Waiting>>,
    /// A local task has been given the next turn and has not taken it yet.
    granted: Cell<bool>,
    /// Jobs from other threads and replies to this thread's jobs
    /// (`make_current`), read by `serve_inbox`.
    inbox: OnceCell<Arc<Inbox>>,
}

thread_local! {
    /// This thread's shard, once the server made it current: jobs read its
    /// backlog through it (`backlog`).
    static CURRENT: RefCell<Weak<LocalShard>> = const { RefCell::new(Weak::new()) };
}

/// Work waiting for this thread's shard: queued behind a transaction's
/// lock, plus jobs sent from other threads and not received yet. Zero on
/// a thread without a current shard.
pub fn backlog() -> usize {
    CURRENT.with(|c| c.borrow().upgrade().map_or(0, |s| s.queue.borrow().len() + s.inbox.get().map_or(0, |i| i.len())))
}

/// Something of this thread is about to be written to a client (or the
/// thread is about to sleep): its shard sends the invalidations it
/// gathered for broadcasting tracking clients first, as Redis sends them
/// before it writes the replies of an event-loop turn. Cheap when there
/// are none (one thread-local flag). While a transaction holds the shard
/// its writes are not acknowledged yet: their broadcasts go when it lets
/// the shard go (`unlock_tx`), one message per client and prefix for the
/// whole transaction, as Redis sends an EXEC's.
pub fn flush_broadcasts() {
    if !tracking::UNSENT.with(std::cell::Cell::get) {
        return;
    }
    CURRENT.with(|c| {
        if let Some(s) = c.borrow().upgrade() {
            if let Ok(mut sh) = s.cell.try_borrow_mut() {
                if !sh.is_locked() {
                    sh.send_broadcasts();
                }
            }
        }
    });
}

impl LocalShard {
    pub fn new(shard: Shard) -> Rc<LocalShard> {
        Rc::new(LocalShard {
            cell: RefCell::new(shard),
            queue: RefCell::new(VecDeque::new()),
            granted: Cell::new(false),
            inbox: OnceCell::new(),
        })
    }

    /// Makes this the thread's shard and hands it its inbox (jobs from
    /// other threads, served by `serve_inbox`).
    pub fn make_current(self: &Rc<Self>, inbox: Arc<Inbox>) {
        let _ = self.inbox.set(inbox);
        CURRENT.with(|c| *c.borrow_mut() = Rc::downgrade(self));
    }

    /// The thread's inbox task: runs (or queues) the jobs other threads
    /// send and hands replies to the tasks waiting for them, a batch at a
    /// time; between batches the thread's other tasks get their turn.
    pub async fn serve_inbox(&self) {
        let Some(inbox) = self.inbox.get().cloned() else { return };
        let mut batch = Vec::new();
        loop {
            inbox.take(&mut batch);
            if batch.is_empty() {
                inbox.wait().await;
                continue;
            }
            for m in batch.drain(..) {
                match m {
                    Inbound::Job(msg) => self.deliver(msg),
                    Inbound::Reply(f) => {
                        inbox.replied();
                        f()
                    }
                }
            }
            if batch.capacity() > 1024 {
                // A burst's room is not kept (it would pass to the queue).
                batch = Vec::new();
            }
            yield_local().await;
        }
    }

    pub fn id(&self) -> usize {
        self.cell.borrow().id
    }

    /// Whether work of `tx` may run right now.
    fn can_run(&self, tx: TxId) -> bool {
        let lock = self.cell.borrow().lock;
        if lock != NO_TX {
            return lock == tx;
        }
        !self.granted.get() && self.queue.borrow().is_empty()
    }

    /// Runs `f` on the shard, now or when its turn in the queue comes.
    pub async fn run<R>(&self, tx: TxId, f: impl FnOnce(&mut Shard) -> R) -> R {
        if !self.can_run(tx) {
            self.cell.borrow_mut().stats.lock_waits += 1;
            let (turn_tx, turn_rx) = oneshot::channel();
            self.queue.borrow_mut().push_back(Waiting::Local(turn_tx));
            if turn_rx.await.is_err() {
                // The shard is being torn down (node shutdown).
                return std::future::pending().await;
            }
            self.granted.set(false);
        }
        let r = self.apply(tx, f);
        self.drain();
        r
    }

    fn apply<R>(&self, tx: TxId, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut sh = self.cell.borrow_mut();
        // Over maxmemory: make room first, unless a transaction holds the
        // shard (its keys must not vanish between its parts; eviction runs
        // before the transaction's first part and after it ends).
        if !sh.is_locked() && evict::over_limit(&sh.cfg) {
            sh.evict_before_job();
        }
        sh.limit_tracked();
        let r = f(&mut sh);
        sh.release_captured();
        sh.publish_notes();
        // Broadcasts wait for this thread's next write to a client
        // (`flush_broadcasts`), so a turn's jobs share them; a
        // transaction's go when it releases the shard.
        sh.bound_broadcasts();
        sh.journal_after_job(tx);
        if !sh.blocked.is_empty() {
            if !sh.is_locked() {
                // Served clients may be answered from other threads.
                sh.send_broadcasts();
            }
            sh.serve_blocked();
            // What the served clients took goes to the journal before they
            // are answered (their wait for durability covers it).
            sh.journal_after_job(tx);
        }
        drop(sh);
        // Messages that came meanwhile: the inbox task runs next (the
        // senders did not wake this thread, which was running).
        if let Some(i) = self.inbox.get() {
            i.poke();
        }
        r
    }

    /// Handles a job from the inbox: runs it now, or queues it.
    pub fn deliver(&self, msg: Msg) {
        if self.can_run(msg.tx) {
            self.apply_remote(msg);
            self.drain();
        } else {
            self.cell.borrow_mut().stats.lock_waits += 1;
            self.queue.borrow_mut().push_back(Waiting::Remote(msg));
        }
    }

    /// Runs a job another thread sent, counting the hop.
    fn apply_remote(&self, msg: Msg) {
        let job = msg.job;
        self.apply(msg.tx, |sh| {
            sh.stats.hops += 1;
            job(sh)
        })
    }

    /// Runs queued work in arrival order while the shard is free: remote jobs
    /// run here, a local task is handed the turn and draining pauses until it
    /// has run.
    fn drain(&self) {
        loop {
            if self.granted.get() || self.cell.borrow().lock != NO_TX {
                return;
            }
            let Some(next) = self.queue.borrow_mut().pop_front() else { return };
            match next {
                Waiting::Remote(msg) => self.apply_remote(msg),
                Waiting::Local(turn) => {
                    if turn.send(()).is_ok() {
                        self.granted.set(true);
                    }
                }
            }
        }
    }

    /// Releases a lock held by `tx` on this shard, synchronously.
    pub fn release(&self, tx: TxId) {
        self.release_tx(tx, 1);
    }

    /// Releases a lock held by `tx`, a transaction of `total` shards.
    pub fn release_tx(&self, tx: TxId, total: usize) {
        {
            let mut sh = self.cell.borrow_mut();
            sh.unlock_tx(tx, total);
            if !sh.blocked.is_empty() {
                sh.serve_blocked();
                // What the served clients took, before they are answered.
                sh.journal_after_job(NO_TX);
            }
        }
        self.drain();
    }
}

/// Runs `f` on shard `target` and returns its result: inline when `target` is
/// this thread's shard, otherwise as a job through its inbox.
pub async fn run_on<R: Send + 'static>(
    engine: &Engine,
    local: &LocalShard,
    target: usize,
    tx: TxId,
    f: impl FnOnce(&mut Shard) -> R + Send + 'static,
) -> R {
    let home = local.id();
    if target == home {
        return local.run(tx, f).await;
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    engine.send(
        target,
        tx,
        Box::new(move |sh| {
            let r = f(sh);
            answer(sh, home, reply_tx, r);
        }),
    );
    engine.inbox(home).expect_reply();
    match reply_rx.await {
        Ok(r) => r,
        // The shard thread is gone: the node is shutting down.
        Err(_) => std::future::pending().await,
    }
}

/// Hands `r`, the result of a job that shard `home`'s thread sent, to the
/// task waiting on `reply`: through that thread's inbox, so a running
/// thread is not woken for it.
pub fn answer<R: Send + 'static>(sh: &mut Shard, home: usize, reply: oneshot::Sender<R>, r: R) {
    // The answer may be written to a client at once over there: its
    // broadcasts go first, and its journal records, which the client's
    // wait for durability (`appendfsync always`) then covers.
    if !sh.is_locked() {
        sh.send_broadcasts();
        sh.journal_after_job(NO_TX);
    }
    match &sh.engine {
        Some(e) if home < e.nshards() => e.inboxes[home].push(Inbound::Reply(Box::new(move || {
            let _ = reply.send(r);
        }))),
        _ => {
            let _ = reply.send(r);
        }
    }
}

/// Gives this thread's other tasks a turn: the task is woken at once and
/// goes to the back of the queue (no trip through the event loop).
async fn yield_local() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// Runs `f` on every shard (concurrently), as transaction `tx`, and returns
/// the results in shard order.
pub async fn broadcast<R: Send + 'static>(
    engine: &Engine,
    local: &LocalShard,
    tx: TxId,
    f: impl Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
) -> Vec<R> {
    let (me, txid) = (local.id(), tx);
    let mut waits = Vec::with_capacity(engine.nshards());
    for s in 0..engine.nshards() {
        if s == me {
            waits.push(None);
            continue;
        }
        let (reply, rx) = oneshot::channel();
        let f = f.clone();
        engine.send(
            s,
            txid,
            Box::new(move |sh| {
                let r = f(sh);
                answer(sh, me, reply, r);
            }),
        );
        engine.inbox(me).expect_reply();
        waits.push(Some(rx));
    }
    let mine = local.run(txid, f).await;
    let mut out = Vec::with_capacity(waits.len());
    let mut mine = Some(mine);
    for w in waits {
        match w {
            None => out.push(mine.take().expect("local result taken once")),
            Some(rx) => match rx.await {
                Ok(r) => out.push(r),
                Err(_) => std::future::pending().await,
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Rates, ShardStats};

    #[test]
    fn rates_are_the_mean_of_the_last_16_samples() {
        let mut r = Rates::default();
        let mut s = ShardStats::default();
        r.track(1000, &s, 0);
        assert_eq!(r.get(), [0; 5]);
        // 100 commands and 1600 input bytes per 100 ms tick.
        for t in 1..=16 {
            s.commands += 100;
            s.net_input_bytes += 1600;
            r.track(1000 + t * 100, &s, t * 50);
        }
        assert_eq!(r.get(), [1000, 16000, 0, 500, 0]);
        // Idle for 8 ticks: half the window is quiet.
        for t in 17..=24 {
            r.track(1000 + t * 100, &s, 800);
        }
        assert_eq!(r.get(), [500, 8000, 0, 250, 0]);
    }
}
