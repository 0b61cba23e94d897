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
mod local;
pub mod monitor;
pub mod notify;
pub mod pubsub;
pub mod repl;
pub mod scripts;
pub mod slowlog;
pub mod snapshot;
pub mod tracking;
pub mod tx;

pub use local::{answer, backlog, broadcast, flush_broadcasts, run_on, LocalShard};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::Notify;

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
    /// The current job is the shard's own upkeep (expiry or eviction
    /// tick, a nudge to evict), not a command: the invalidations it sends
    /// go ahead of replies (`pubsub::Message::ahead`). Reset for every job.
    pub upkeep: bool,
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
    /// How many keys it could evict then (`evict::recheck_failing`).
    evict_failing_keys: usize,
    /// Over the limit, it left eviction to a shard with better candidates
    /// (`evict::Balance`) since it last evicted.
    evict_deferred: bool,
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
            upkeep: false,
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
            evict_failing_keys: 0,
            evict_deferred: false,
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
        self.drop_db(i, false, true);
        self.flushed(false);
    }

    /// FLUSHDB / FLUSHALL ASYNC: as `flush_db` / `flush_all` (`db` None),
    /// the dropped keys freed in the background (`store::lazyfree`).
    /// `selected` is the database of whoever flushes (see `flush_all`).
    pub fn flush_async(&mut self, db: Option<usize>, selected: usize) {
        match db {
            Some(i) => self.drop_db(i, true, true),
            None => self.drop_all(selected, true),
        }
        self.flushed(db.is_none());
    }

    /// Empties every database (FLUSHALL, a replica's full sync, DEBUG
    /// RELOAD). The journal gets one FLUSHALL, in `selected` (the
    /// database of whoever flushes), as Redis propagates it.
    pub fn flush_all(&mut self, selected: usize) {
        self.drop_all(selected, false);
        self.flushed(true);
    }

    fn drop_all(&mut self, selected: usize, lazy: bool) {
        self.journal_db_command(selected, &[b"FLUSHALL"]);
        for i in 0..self.dbs.len() {
            self.drop_db(i, lazy, false);
        }
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

    fn drop_db(&mut self, i: usize, lazy: bool, journal: bool) {
        if journal {
            self.journal_db_command(i, &[b"FLUSHDB"]);
        }
        let Some(old) = self.dbs[i].as_mut() else { return };
        let mut watchers = old.take_watchers();
        crate::store::db::raise_after_flush(&mut watchers, Some(old), None, crate::util::now_ms());
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
        let mut wa = self.dbs[a].as_mut().map(|d| d.take_watchers()).unwrap_or_default();
        let mut wb = self.dbs[b].as_mut().map(|d| d.take_watchers()).unwrap_or_default();
        let (da, db) = (self.dbs[a].as_deref(), self.dbs[b].as_deref());
        let now = crate::util::now_ms();
        crate::store::db::raise_after_flush(&mut wa, da, db, now);
        crate::store::db::raise_after_flush(&mut wb, db, da, now);
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
    /// The shards' best eviction candidates.
    pub evict_balance: evict::Balance,
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
    /// Commands from a primary's stream or the journal that failed.
    pub unexpected_error_replies: AtomicU64,
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
            evict_balance: evict::Balance::new(nshards),
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
