//! Eviction under `maxmemory`: the node's memory budget is the counting
//! allocator's live bytes, shared by every shard; a shard that finds the node
//! over it evicts keys of its own, chosen by `maxmemory-policy` as Redis's
//! evict.c chooses them: sample `maxmemory-samples` keys per database, keep
//! the best candidates in a small pool across rounds, delete the best.
//!
//! A shard evicts before it runs work that is not part of a transaction
//! (`LocalShard::apply`), at most for the time `maxmemory-eviction-tenacity`
//! allows, so a node at its limit keeps its latency; its expiry tick also
//! evicts (`server::expiry`), so an idle shard gives memory back after
//! CONFIG SET lowers the limit. When a shard over the limit finds nothing
//! it may evict (volatile policies without keys with a TTL), it says so in
//! `FAILING`, and commands that would grow memory are refused with -OOM as
//! under noeviction (`oom`).
//!
//! With several shards the node evicts the keys its policy rates worst
//! wherever they live (`Balance`), as Redis's one pool over every database
//! does, rather than the keys of whichever shard ran a command first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use super::{Shard, NO_TX};
use crate::config::{Config, Policy};
use crate::store::{access, sketch, SmallBytes};

/// Candidates kept between rounds (Redis's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;
/// Keys sampled per database per round at most, whatever
/// `maxmemory-samples` says (bounds the work of one round).
const MAX_SAMPLES: usize = 64;

/// How many shards, when they last looked, were over the limit with
/// nothing left to evict (each shard counts itself in and out), in the
/// low 24 bits, and the look's round above them: a new round (the node
/// went under the limit, or the configuration changed) starts at 0, so a
/// shard that has gained keys since it looked is not counted out.
static FAILING: AtomicU64 = AtomicU64::new(0);
const COUNT_BITS: u32 = 24;

fn failing_count(word: u64) -> usize {
    (word & ((1 << COUNT_BITS) - 1)) as usize
}

fn failing_round(word: u64) -> u64 {
    word >> COUNT_BITS
}

/// Starts a new round of looks (see `FAILING`).
fn new_failing_round() {
    let _ = FAILING.fetch_update(Relaxed, Relaxed, |w| Some((failing_round(w) + 1) << COUNT_BITS));
}

/// When the node last went over `maxmemory` (Unix ms; 0: it is not over), and the milliseconds of the episodes that
/// ended (INFO's `current_eviction_exceeded_time` and
/// `total_eviction_exceeded_time`).
static EXCEEDED_SINCE: AtomicU64 = AtomicU64::new(0);
static EXCEEDED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Notes whether the node is over its limit now (an eviction episode
/// starts, goes on or ends). Called by evicting shards and by each
/// shard's tick.
pub fn note_exceeded(over: bool) {
    let since = EXCEEDED_SINCE.load(Relaxed);
    match (over, since) {
        (true, 0) => {
            let _ = EXCEEDED_SINCE.compare_exchange(0, crate::util::coarse_now_ms().max(1), Relaxed, Relaxed);
        }
        (false, s) if s != 0 && EXCEEDED_SINCE.compare_exchange(s, 0, Relaxed, Relaxed).is_ok() => {
            EXCEEDED_TOTAL.fetch_add(crate::util::coarse_now_ms().saturating_sub(s), Relaxed);
            new_failing_round();
        }
        _ => {}
    }
}

/// (current, total) milliseconds the node has spent over `maxmemory`: the
/// running episode, and all of them (the running one included).
pub fn exceeded_ms() -> (u64, u64) {
    let since = EXCEEDED_SINCE.load(Relaxed);
    let current = if since == 0 { 0 } else { crate::util::coarse_now_ms().saturating_sub(since) };
    (current, EXCEEDED_TOTAL.load(Relaxed) + current)
}

/// Applies the configuration's eviction parameters to the per-key access
/// metadata (LRU clock or LFU counter). Called when the node starts and
/// after CONFIG SET.
pub fn configure(cfg: &Config) {
    new_failing_round();
    let p = cfg.policy();
    access::set_lfu(p.lfu());
    sketch::set_on(p == Policy::AllKeysTinyLfu);
    let clamp = |v: u64| v.min(u32::MAX as u64) as u32;
    access::set_lfu_params(clamp(cfg.lfu_log_factor.load(Relaxed)), clamp(cfg.lfu_decay_time.load(Relaxed)));
}

/// Memory `maxmemory` does not weigh (bytes queued for replicas, as Redis
/// leaves them out so that a slow replica does not evict the keyspace),
/// refreshed every 100 ms by `server::housekeeping::cron`.
static NOT_COUNTED: AtomicU64 = AtomicU64::new(0);

pub fn set_not_counted(bytes: u64) {
    NOT_COUNTED.store(bytes, Relaxed);
}

/// INFO's `mem_not_counted_for_evict`.
pub fn not_counted() -> u64 {
    NOT_COUNTED.load(Relaxed)
}

/// Whether the node is over `maxmemory`.
pub fn over_limit(cfg: &Config) -> bool {
    let max = cfg.maxmemory.load(Relaxed);
    max > 0 && counted_memory() > max
}

/// The memory `maxmemory` weighs.
fn counted_memory() -> u64 {
    crate::alloc::used_memory().saturating_sub(NOT_COUNTED.load(Relaxed))
}

/// Whether commands that may grow memory must be refused now: the node is
/// over `maxmemory` and eviction cannot bring it down (noeviction, or
/// every shard had nothing left to evict).
pub fn oom(cfg: &Config) -> bool {
    over_limit(cfg) && (cfg.policy() == Policy::NoEviction || failing_count(FAILING.load(Relaxed)) >= cfg.shards)
}

/// How long one eviction call may run, from `maxmemory-eviction-tenacity`
/// (Redis's evictionTimeLimitUs): linear up to 500 µs at 10, then 15% more
/// per step; unlimited at 100.
pub fn time_limit_us(tenacity: u64) -> u64 {
    match tenacity {
        0..=10 => 50 * tenacity,
        11..=99 => (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        _ => u64::MAX,
    }
}

/// How long a shard's published best candidate counts: idle times and
/// LFU counters move, so a shard that published longer ago is asked to
/// sample again.
const FRESH_MS: u64 = 1000;

/// What the shards know of each other's eviction candidates. Each shard
/// publishes the score of the best candidate it sampled (for the random
/// policies: how many keys it may evict). A shard over the limit whose best
/// is worse than another's leaves the eviction to that one — it nudges it,
/// with a job that makes it evict before it runs — unless the node is
/// already over by more than `slack`; a shard whose best is unknown or old
/// is nudged to sample. Without this, the shard that runs a connection's
/// commands first (its own thread's) finds the node over the limit first
/// every time and gives up its keys before any other shard's.
pub struct Balance {
    /// Per shard: the best candidate's score + 1 (0: nothing to evict),
    /// and when it was published (coarse Unix ms; 0: never).
    best: Box<[AtomicU64]>,
    at: Box<[AtomicU64]>,
    /// A nudge is on its way to the shard.
    nudged: Box<[AtomicBool]>,
}

impl Balance {
    pub fn new(shards: usize) -> Balance {
        let zeros = || (0..shards).map(|_| AtomicU64::new(0)).collect();
        Balance { best: zeros(), at: zeros(), nudged: (0..shards).map(|_| AtomicBool::new(false)).collect() }
    }

    fn publish(&self, shard: usize, score: Option<u64>) {
        self.best[shard].store(score.map_or(0, |s| s.saturating_add(1)), Relaxed);
        self.at[shard].store(crate::util::coarse_now_ms().max(1), Relaxed);
    }
}

/// How far over `maxmemory` a shard lets the node go while it leaves
/// eviction to shards with better candidates: past it, it evicts its own.
fn slack(max: u64) -> u64 {
    (max / 32).max(64 * 1024)
}

/// One candidate: a key of database `db` and how good a victim it is
/// (higher is better: idle time, inverse frequency, or nearness of expiry).
struct Candidate {
    score: u64,
    db: usize,
    /// Where the key was sampled in its database's slab.
    idx: u32,
    key: SmallBytes,
}

/// The best candidates seen, ascending by score (the best last).
#[derive(Default)]
pub struct Pool {
    items: Vec<Candidate>,
}

impl Pool {
    /// Keeps the key sampled at slab index `idx` of database `db` if it
    /// is among the best. Most offers lose on score alone; a key already
    /// in the pool is known by where it was sampled (no key comparison).
    fn offer(&mut self, score: u64, db: usize, idx: u32, key: &SmallBytes) {
        let full = self.items.len() == POOL_SIZE;
        if full && self.items[0].score >= score {
            return;
        }
        if self.items.iter().any(|c| c.idx == idx && c.db == db) {
            return;
        }
        if full {
            self.items.remove(0);
        }
        let at = self.items.partition_point(|c| c.score < score);
        self.items.insert(at, Candidate { score, db, idx, key: key.clone() });
    }

    fn clear(&mut self) {
        self.items.clear();
    }

    /// Returns the best candidate, taken but not evicted.
    fn put_back(&mut self, c: Candidate) {
        let at = self.items.partition_point(|o| o.score <= c.score);
        self.items.insert(at, c);
        if self.items.len() > POOL_SIZE {
            self.items.remove(0);
        }
    }
}

impl Shard {
    /// Evicts keys of this shard while the node is over `maxmemory`, for
    /// at most the time tenacity allows; returns how many. Does nothing
    /// under noeviction.
    pub fn evict(&mut self) -> usize {
        let limit = time_limit_us(self.cfg.maxmemory_eviction_tenacity.load(Relaxed));
        self.evict_for(limit)
    }

    /// `evict` with an explicit time budget in microseconds.
    pub fn evict_for(&mut self, limit_us: u64) -> usize {
        self.evict_balanced(limit_us, true)
    }

    /// Evicts this shard's own keys while the node is over the limit,
    /// better candidates elsewhere or not (a tracking client's command
    /// that needs the room before its reply, `Conn::evict_everywhere`).
    pub fn evict_here(&mut self) -> usize {
        let limit = time_limit_us(self.cfg.maxmemory_eviction_tenacity.load(Relaxed));
        self.evict_balanced(limit, false)
    }

    /// `evict_for`; `balance`: leave the eviction to a shard with better
    /// candidates (see `Balance`).
    fn evict_balanced(&mut self, limit_us: u64, balance: bool) -> usize {
        let policy = self.cfg.policy();
        if !over_limit(&self.cfg) {
            self.set_failing(false);
            note_exceeded(false);
            return 0;
        }
        // Over the limit: under noeviction too, as Redis counts it.
        note_exceeded(true);
        // Nor while CLIENT PAUSE holds writes (as Redis).
        if policy == Policy::NoEviction
            || self.engine.as_ref().is_some_and(|e| e.clients.pausing() && e.clients.paused(crate::util::now_ms()).is_some())
        {
            return 0;
        }
        if policy != self.evict_policy {
            // Scores of another policy mean nothing to this one.
            self.pool.clear();
            self.evict_policy = policy;
        }
        let start = Instant::now();
        let now = crate::util::now_ms();
        if policy == Policy::AllKeysTinyLfu {
            let keys = (0..self.db_count()).filter_map(|i| self.dbs[i].as_ref()).map(|d| d.len()).sum();
            sketch::fit(keys);
        }
        let samples = (self.cfg.maxmemory_samples.load(Relaxed) as usize).clamp(1, MAX_SAMPLES);
        let balance = balance && self.nshards > 1 && self.engine.is_some();
        let mut n = 0;
        while over_limit(&self.cfg) {
            let Some(c) = self.victim(policy, samples, now) else {
                // Nothing this shard may evict: the others may still have
                // something, but if they are in the same state commands
                // must get -OOM rather than grow memory further.
                self.set_failing(true);
                if balance {
                    self.publish_best(None);
                    self.nudge_others();
                }
                break;
            };
            if balance {
                let score = if policy.random() { self.evictable() as u64 } else { c.score };
                self.publish_best(Some(score));
                if self.leave_to_others(score) {
                    self.pool.put_back(c);
                    self.evict_deferred = true;
                    break;
                }
            }
            self.evict_deferred = false;
            let Candidate { db, idx, key, .. } = c;
            // The latency monitor's `eviction-del`: one key's deletion
            // (timed only when the monitor is on).
            let del_start = (self.cfg.latency_monitor_threshold.load(Relaxed) > 0).then(Instant::now);
            if let Some(d) = self.db_if_exists(db) {
                if d.evict_at(idx, &key) {
                    n += 1;
                    self.set_failing(false);
                }
            }
            if let (Some(t), Some(e)) = (del_start, &self.engine) {
                e.latency.add_if_needed(&self.cfg, "eviction-del", t.elapsed().as_millis() as u64);
            }
            if n % 16 == 0 && start.elapsed().as_micros() as u64 >= limit_us {
                break;
            }
        }
        self.stats.evicted_keys += n as u64;
        if let Some(e) = &self.engine {
            e.latency.add_if_needed(&self.cfg, "eviction-cycle", start.elapsed().as_millis() as u64);
        }
        if !over_limit(&self.cfg) {
            note_exceeded(false);
        }
        n
    }

    /// After `evict_before_job` found the node over `maxmemory`: this shard
    /// had nothing it may evict while other shards may have something, or
    /// it left the eviction to a shard with better candidates. (Whether the
    /// node is still over the limit does not matter: the shards it nudged
    /// may have evicted meanwhile, and their invalidations must still
    /// precede the command's reply.)
    pub fn others_may_evict(&self) -> bool {
        let word = FAILING.load(Relaxed);
        let failing = self.evict_failing == Some(failing_round(word)) && failing_count(word) < self.cfg.shards;
        failing || self.evict_deferred
    }

    fn publish_best(&self, score: Option<u64>) {
        if let Some(e) = &self.engine {
            e.evict_balance.publish(self.id, score);
        }
    }

    /// Whether this shard, whose best candidate scores `score`, leaves the
    /// eviction to another shard (see `Balance`): one has published a
    /// better one, and the node is not over by more than the slack. The
    /// best such shard is nudged; so is every shard whose best is unknown
    /// or old, to sample.
    fn leave_to_others(&self, score: u64) -> bool {
        let Some(e) = &self.engine else { return false };
        let b = &e.evict_balance;
        let now = crate::util::coarse_now_ms();
        let mut best: Option<(u64, usize)> = None;
        for o in (0..b.best.len()).filter(|&o| o != self.id) {
            let at = b.at[o].load(Relaxed);
            if at == 0 || now.saturating_sub(at) > FRESH_MS {
                self.nudge(o);
                continue;
            }
            let theirs = b.best[o].load(Relaxed);
            if theirs > score.saturating_add(1) && best.is_none_or(|(s, _)| theirs > s) {
                best = Some((theirs, o));
            }
        }
        let Some((_, o)) = best else { return false };
        let max = self.cfg.maxmemory.load(Relaxed);
        if counted_memory().saturating_sub(max) > slack(max) {
            return false;
        }
        self.nudge(o);
        true
    }

    /// This shard has nothing to evict: every other shard is nudged, so
    /// that the node gets back under its limit before this shard's next
    /// writes rather than at the others' next expiry tick — or, when they
    /// have nothing either, each counts itself in `FAILING`'s current round
    /// and writes get -OOM at once.
    fn nudge_others(&self) {
        if let Some(e) = &self.engine {
            for o in (0..e.evict_balance.best.len()).filter(|&o| o != self.id) {
                self.nudge(o);
            }
        }
    }

    /// Sends shard `o` a job, unless one is on its way: it evicts before
    /// running it, as before any job while the node is over the limit.
    fn nudge(&self, o: usize) {
        let Some(e) = &self.engine else { return };
        if e.evict_balance.nudged[o].swap(true, Relaxed) {
            return;
        }
        e.send(
            o,
            NO_TX,
            Box::new(move |sh: &mut Shard| {
                // What it evicted before this job is upkeep.
                sh.upkeep = true;
                if let Some(e) = &sh.engine {
                    e.evict_balance.nudged[o].store(false, Relaxed);
                }
            }),
        );
    }

    /// Keys this shard's policy may evict: every key, or (volatile
    /// policies) those with a TTL.
    fn evictable(&self) -> usize {
        let volatile = self.cfg.policy().volatile();
        self.dbs.iter().flatten().map(|d| if volatile { d.volatile_len() } else { d.len() }).sum()
    }

    /// After a job on a shard counted as having nothing to evict: if it
    /// has gained keys its policy may evict (EXPIRE gave a key a TTL, a
    /// write was let in), it counts itself out again, so the node does
    /// not refuse writes with -OOM while they could be made room for.
    pub fn recheck_failing(&mut self) {
        if self.evict_failing.is_some() && self.evictable() > self.evict_failing_keys {
            self.set_failing(false);
        }
    }

    /// Counts this shard in or out of `FAILING`'s current round.
    fn set_failing(&mut self, on: bool) {
        if !on && self.evict_failing.is_none() {
            return;
        }
        if on {
            // What it could evict when it last gave up.
            self.evict_failing_keys = self.evictable();
        }
        let mut round = None;
        let _ = FAILING.fetch_update(Relaxed, Relaxed, |w| {
            let counted = self.evict_failing == Some(failing_round(w));
            round = Some(failing_round(w));
            match (on, counted) {
                (true, false) => Some(w + 1),
                (false, true) => Some(w - 1),
                _ => None,
            }
        });
        self.evict_failing = if on { round } else { None };
    }

    /// The next key to evict, as the policy chooses (taken out of the
    /// pool; the random policies score it 0).
    fn victim(&mut self, policy: Policy, samples: usize, now: u64) -> Option<Candidate> {
        let volatile = policy.volatile();
        if policy.random() {
            // Databases in turn from a rotating start, a random key of the
            // first that has one.
            let count = self.db_count();
            for k in 0..count {
                let db = (self.evict_next_db + k) % count;
                let mut found = None;
                if let Some(d) = self.db_if_exists(db) {
                    d.sample(volatile, 1, |key, _, _, idx| found = Some((idx, key.clone())));
                }
                if let Some((idx, key)) = found {
                    self.evict_next_db = db + 1;
                    return Some(Candidate { score: 0, db, idx, key });
                }
            }
            return None;
        }
        // Candidates found dead (deleted, or expired and now removed) may
        // empty the pool: sample again, a few times.
        for _ in 0..3 {
            self.fill_pool(policy, samples, now);
            // The best candidate that still exists.
            while let Some(c) = self.pool.items.pop() {
                if self.db_if_exists(c.db).is_some_and(|d| d.live_at(c.idx, &c.key, now)) {
                    return Some(c);
                }
            }
        }
        None
    }

    /// Samples every database into the pool, scored for `policy`.
    fn fill_pool(&mut self, policy: Policy, samples: usize, now: u64) {
        let volatile = policy.volatile();
        for db in 0..self.db_count() {
            let mut pool = std::mem::take(&mut self.pool);
            if let Some(d) = self.db_if_exists(db) {
                if policy == Policy::VolatileTtl {
                    // The expiry index is ordered: the nearest expiries
                    // exactly, not a sample's.
                    d.soonest_expiring(samples, |key, at, idx| pool.offer(u64::MAX - at, db, idx, key));
                } else {
                    let d = &*d;
                    let score = |key: &SmallBytes, meta: u32| match policy {
                        // The least often looked up first (misses count),
                        // the longest idle among equals.
                        Policy::AllKeysTinyLfu => {
                            let rare = (15 - sketch::estimate(d.key_hash(key)).min(15)) as u64;
                            rare << 40 | access::idle_ms(meta, now).min((1 << 40) - 1)
                        }
                        p if p.lfu() => 255 - access::decayed(meta, now) as u64,
                        _ => access::idle_ms(meta, now),
                    };
                    d.sample(volatile, samples, |key, meta, _, idx| pool.offer(score(key, meta), db, idx, key));
                    if policy == Policy::AllKeysTinyLfu {
                        // Admission: a newcomer no more often looked up
                        // than the keys it would displace is the one to go
                        // (it loses ties, as if idle the longest).
                        d.newest(|key, meta, idx| pool.offer(score(key, meta) | ((1 << 40) - 1), db, idx, key));
                    }
                }
            }
            self.pool = pool;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenacity_time_limits_follow_redis() {
        assert_eq!(time_limit_us(0), 0);
        assert_eq!(time_limit_us(10), 500);
        assert_eq!(time_limit_us(11), 575);
        assert_eq!(time_limit_us(100), u64::MAX);
    }

    fn shard() -> Shard {
        use clap::Parser;
        let cfg = Config::from_args(&crate::config::Args::parse_from(["damselfly"])).expect("config");
        Shard::new(0, 1, std::sync::Arc::new(cfg), crate::shard::scripts::Scripting::new(|_| false))
    }

    #[test]
    fn victims_follow_the_policy() {
        use crate::store::Value;
        let mut sh = shard();
        let now = crate::util::now_ms();
        let d = sh.db(0);
        let old = d.insert_new(b"old", Value::Int(1), 0);
        d.set_access_meta(old, access::restored(Some(1000), None, now).expect("LRU metadata"));
        d.insert_new(b"fresh", Value::Int(1), 0);
        let soon = d.insert_new(b"soon", Value::Int(1), 0);
        d.set_expire(soon, now + 10_000);
        let later = d.insert_new(b"later", Value::Int(1), 0);
        d.set_expire(later, now + 20_000);
        // Enough samples that every one of the four keys is seen (missing
        // one among 64 independent samples: (3/4)^64).
        let victim = |sh: &mut Shard, p: Policy| sh.victim(p, 64, now).map(|c| (c.db, c.key.to_vec()));
        assert_eq!(victim(&mut sh, Policy::AllKeysLru), Some((0, b"old".to_vec())));
        sh.pool.clear();
        assert_eq!(victim(&mut sh, Policy::VolatileTtl), Some((0, b"soon".to_vec())));
        sh.pool.clear();
        for p in [Policy::VolatileLru, Policy::VolatileRandom] {
            let (_, k) = victim(&mut sh, p).expect("keys with a TTL");
            assert!(k == b"soon" || k == b"later", "{p:?} took a key without a TTL");
            sh.pool.clear();
        }
        // No key with a TTL left: nothing for volatile policies.
        for k in [&b"soon"[..], b"later"] {
            assert!(sh.db(0).evict(k));
        }
        assert_eq!(victim(&mut sh, Policy::VolatileLru), None);
        assert_eq!(victim(&mut sh, Policy::VolatileRandom), None);
        assert!(victim(&mut sh, Policy::AllKeysRandom).is_some());
    }

    #[test]
    fn pool_keeps_the_best_candidates() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.offer(i * 7 % 40, 0, i as u32, &SmallBytes::new(format!("k{i}").as_bytes()));
        }
        p.offer(39, 0, 17, &SmallBytes::new(b"k17"));
        assert_eq!(p.items.len(), POOL_SIZE);
        let scores: Vec<u64> = p.items.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
        assert_eq!(p.items.pop().map(|c| c.score), Some(39));
    }
}
