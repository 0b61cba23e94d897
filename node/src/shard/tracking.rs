//! Client-side caching (CLIENT TRACKING), the node's part, as Redis 7.0's
//! tracking.c: the node's tracking clients (by id: their options and where
//! their invalidations go) and each shard's table of the keys tracking
//! clients read (key -> client ids). A change to a key the databases note
//! (`store::notify`, on while any client tracks) invalidates it: each
//! client that read it gets one invalidation message and the key leaves
//! the table; broadcasting clients (BCAST) get every changed key matching
//! their prefixes. Messages go to the client's connection like pub/sub
//! messages (`pubsub::Message`, counted against its output limit): a RESP3
//! push `invalidate`, or through REDIRECT a `message` on
//! `__redis__:invalidate` to a RESP2 connection subscribed to it.
//!
//! The tracked-keys table of a shard holds at most its share of
//! `tracking-table-max-keys`; past it, keys leave the table (their readers
//! are sent an invalidation), as Redis bounds its table.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::clients::ClientInfo;
use super::pubsub::{Invalidation, Message};
use super::Shard;
use crate::config::CLASS_PUBSUB;

/// The channel RESP2 connections receive redirected invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's tracking state (`ClientInfo::tracking`, one byte read with
/// one relaxed load on the command path).
pub mod flag {
    pub const ON: u8 = 1;
    pub const BCAST: u8 = 2;
    pub const OPTIN: u8 = 4;
    pub const OPTOUT: u8 = 8;
    pub const NOLOOP: u8 = 16;
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) was sent: it holds for
    /// the next command other than CLIENT.
    pub const CACHING: u8 = 32;
    /// The redirect target is gone.
    pub const BROKEN: u8 = 128;
}

/// A tracking client: where its invalidations go.
pub struct Tracker {
    pub info: Arc<ClientInfo>,
    pub inbox: UnboundedSender<Message>,
    /// REDIRECT's client id (0: none).
    pub redirect: u64,
    /// BCAST's prefixes (none: every key).
    pub prefixes: Vec<Bytes>,
}

static TRACKERS: LazyLock<Mutex<HashMap<u64, Tracker>>> = LazyLock::new(Default::default);
/// RESP3 connections (HELLO 3), by id, and where pushes to them go: a
/// tracking client may redirect its invalidations to one of them whether
/// or not it tracks or subscribes itself, as Redis pushes them to any
/// RESP3 redirect target.
static PUSH_TARGETS: LazyLock<Mutex<HashMap<u64, PushTarget>>> = LazyLock::new(Default::default);

/// A connection's details and the inbox its pushes go to.
type PushTarget = (Arc<ClientInfo>, UnboundedSender<Message>);

fn push_targets() -> MutexGuard<'static, HashMap<u64, PushTarget>> {
    PUSH_TARGETS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection speaks RESP3 from now on (`inbox`: its pushes), or
/// (`None`) no longer does or is gone.
pub fn set_push_target(info: &Arc<ClientInfo>, inbox: Option<UnboundedSender<Message>>) {
    match inbox {
        Some(tx) => push_targets().insert(info.id, (info.clone(), tx)),
        None => push_targets().remove(&info.id),
    };
}
/// Clients in BCAST mode (a changed key is matched against their prefixes
/// only while some).
static BCASTING: AtomicUsize = AtomicUsize::new(0);
/// Bumped whenever a client starts or stops tracking: shards rebuild their
/// copy of the broadcasting clients (`Table::bcasters`) when it moves, so a
/// changed key is matched without taking the node-wide lock.
static GENERATION: AtomicU64 = AtomicU64::new(1);
thread_local! {
    /// This thread's shard holds broadcasts not sent yet (read before each
    /// write to a socket: `shard::flush_broadcasts`).
    pub(super) static UNSENT: Cell<bool> = const { Cell::new(false) };
}
/// Gathered keys past which a shard sends its broadcasts without waiting
/// for a reply or the end of the event-loop turn.
const BCAST_BATCH: usize = 4096;
/// Keys in the shards' tables, and client ids under them.
static TOTAL_KEYS: AtomicUsize = AtomicUsize::new(0);
static TOTAL_ITEMS: AtomicUsize = AtomicUsize::new(0);

fn trackers() -> MutexGuard<'static, HashMap<u64, Tracker>> {
    TRACKERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn refresh_noting() {
    GENERATION.fetch_add(1, Relaxed);
    crate::store::notify::set_tracking(!trackers().is_empty());
}

/// Turns tracking on for `t.info`'s client (or changes its options),
/// with `flags` (`flag::ON` and its modes).
pub fn enable(t: Tracker, flags: u8) {
    let id = t.info.id;
    {
        let mut all = trackers();
        if flags & flag::BCAST != 0 && all.get(&id).is_none_or(|o| o.info.tracking.load(Relaxed) & flag::BCAST == 0) {
            BCASTING.fetch_add(1, Relaxed);
        }
        t.info.tracking.store(flags | flag::ON, Relaxed);
        all.insert(id, t);
    }
    refresh_noting();
}

/// Turns tracking off for client `id` (CLIENT TRACKING OFF, disconnect).
/// Keys it read stay in the tables until they change, as in Redis.
pub fn disable(info: &ClientInfo) {
    let gone = trackers().remove(&info.id);
    if gone.is_some() && info.tracking.load(Relaxed) & flag::BCAST != 0 {
        BCASTING.fetch_sub(1, Relaxed);
    }
    info.tracking.store(0, Relaxed);
    refresh_noting();
}

/// A tracking client's redirect and prefixes (CLIENT TRACKINGINFO).
pub fn options(id: u64) -> Option<(u64, Vec<Bytes>)> {
    trackers().get(&id).map(|t| (t.redirect, t.prefixes.clone()))
}

/// INFO: tracking clients, tracked keys, (key, client) pairs, prefixes.
pub fn stats() -> (usize, usize, usize, usize) {
    let all = trackers();
    let mut prefixes: Vec<&Bytes> = all.values().flat_map(|t| t.prefixes.iter()).collect();
    prefixes.sort();
    prefixes.dedup();
    (all.len(), TOTAL_KEYS.load(Relaxed), TOTAL_ITEMS.load(Relaxed), prefixes.len())
}

/// A shard's tracked keys: key -> ids of the clients that read it.
#[derive(Default)]
pub struct Table {
    keys: HashMap<Bytes, Vec<u64>>,
    /// This shard's copy of the broadcasting clients, with the changed
    /// keys not sent yet under each prefix, as of `GENERATION`
    /// `bcasters_gen`.
    bcasters: Vec<Bcaster>,
    bcasters_gen: u64,
    /// Keys waiting in `bcasters` (one per client and key).
    bcast_pending: usize,
    /// While keys are evicted before a job runs (`capture`), the
    /// invalidations of clients without REDIRECT are kept here: the
    /// command of the job's client writes its own ahead of its reply
    /// (`take_captured`), the rest are sent after the job
    /// (`release_captured`).
    capture: bool,
    captured: Vec<(u64, Invalidation, Source)>,
}

/// What an invalidation comes from: the tracked-keys table (a key a
/// client read changed), a broadcast of changed keys, or a flush.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Table,
    Bcast,
    Flush,
}

/// Keys `limit_tracked` lets go of per call at most.
const LIMIT_EFFORT: usize = 100;

/// A broadcasting client as a shard sees it: its id, and per prefix the
/// changed keys gathered for it.
struct Bcaster {
    id: u64,
    prefixes: Vec<Gathered>,
    /// Without REDIRECT: the client and its inbox, so a broadcast goes
    /// straight there without the node-wide registry's lock.
    direct: Option<PushTarget>,
}

/// The changed keys gathered under one prefix, already written as the
/// RESP bulk strings of the invalidation's array (no allocation per key).
struct Gathered {
    prefix: Bytes,
    count: usize,
    bulks: Vec<u8>,
}

impl Drop for Table {
    fn drop(&mut self) {
        TOTAL_KEYS.fetch_sub(self.keys.len(), Relaxed);
        TOTAL_ITEMS.fetch_sub(self.keys.values().map(Vec::len).sum(), Relaxed);
    }
}

impl Shard {
    /// Remembers that client `id` read `key` (its next change is sent to
    /// it). A full table first lets go of a key, invalidating it.
    pub fn track_read(&mut self, key: &[u8], id: u64) {
        if let Some(ids) = self.tracked.keys.get_mut(key) {
            if !ids.contains(&id) {
                ids.push(id);
                TOTAL_ITEMS.fetch_add(1, Relaxed);
            }
            return;
        }
        // A full table (the node's: the limit is shared) first lets go of
        // one of this shard's keys; one with none left over runs over by a
        // key until the shard holding more trims (`limit_tracked`).
        let max = self.cfg.tracking_table_max_keys.load(Relaxed) as usize;
        if max > 0 && TOTAL_KEYS.load(Relaxed) >= max {
            if let Some(old) = self.tracked.keys.keys().next().cloned() {
                self.invalidate_tracked(&old);
            }
        }
        self.tracked.keys.insert(Bytes::copy_from_slice(key), vec![id]);
        TOTAL_KEYS.fetch_add(1, Relaxed);
        TOTAL_ITEMS.fetch_add(1, Relaxed);
    }

    /// `key` changed: the clients that read it, and broadcasting clients
    /// whose prefixes match it, are told (broadcasts at the end of the job:
    /// `send_broadcasts`). The tracking client whose command changed it
    /// (`self.caller`) is not told in NOLOOP mode.
    pub fn invalidate_key(&mut self, key: &[u8]) {
        self.invalidate_keys(std::iter::once((key, true)));
    }

    /// `invalidate_key` for each of `keys`, with what does not depend on
    /// the key (is any key read, who broadcasts) looked at once. With each
    /// key, whether the caller's command changed it (false: it expired or
    /// was evicted, which a broadcasting NOLOOP client still hears of; a
    /// client that read the key does not, as in Redis, which judges that
    /// by the client running).
    pub fn invalidate_keys<'k>(&mut self, keys: impl Iterator<Item = (&'k [u8], bool)>) {
        let read = !self.tracked.keys.is_empty();
        let bcasting = BCASTING.load(Relaxed) != 0;
        if !read && !bcasting {
            return;
        }
        if bcasting {
            self.refresh_bcasters();
        }
        let noloop = if self.caller_mode & flag::NOLOOP != 0 { self.caller } else { 0 };
        for (key, by_caller) in keys {
            if read {
                self.invalidate_tracked(key);
            }
            if !bcasting {
                continue;
            }
            let t = &mut self.tracked;
            for b in &mut t.bcasters {
                // NOLOOP: the caller's own writes are left out.
                if by_caller && b.id == noloop {
                    continue;
                }
                let Some(g) = b.prefixes.iter_mut().find(|g| g.prefix.is_empty() || key.starts_with(&g.prefix)) else { continue };
                crate::resp::write_bulk(&mut g.bulks, key);
                g.count += 1;
                t.bcast_pending += 1;
            }
        }
        if self.tracked.bcast_pending > 0 {
            UNSENT.with(|u| u.set(true));
        }
    }

    /// Brings this shard's copy of the broadcasting clients up to date
    /// when one started or stopped broadcasting since it was made.
    fn refresh_bcasters(&mut self) {
        let gen = GENERATION.load(Relaxed);
        if self.tracked.bcasters_gen == gen {
            return;
        }
        // Keys gathered for the old set of clients go out first.
        self.send_broadcasts();
        let all = trackers();
        let bcasting = all.values().filter(|t| t.info.tracking.load(Relaxed) & flag::BCAST != 0);
        let gathered = |p: &Bytes| Gathered { prefix: p.clone(), count: 0, bulks: Vec::new() };
        let copy = |t: &Tracker| Bcaster {
            id: t.info.id,
            prefixes: t.prefixes.iter().map(gathered).collect(),
            direct: (t.redirect == 0).then(|| (t.info.clone(), t.inbox.clone())),
        };
        self.tracked.bcasters = bcasting.map(copy).collect();
        self.tracked.bcasters_gen = gen;
    }

    /// Sends the gathered broadcasts when many keys wait (called after
    /// each job; otherwise they go before the next reply leaves the
    /// thread, see `send_broadcasts`).
    pub fn bound_broadcasts(&mut self) {
        if self.tracked.bcast_pending >= BCAST_BATCH && !self.is_locked() {
            self.send_broadcasts();
        }
    }

    /// Sends what `invalidate_key` gathered for broadcasting clients: one
    /// message per client and prefix with every key changed under it, as
    /// Redis sends them once per event loop, before any reply of the
    /// writes leaves (a client that saw a write acknowledged, then asks
    /// the broadcasting client something, finds the invalidation there
    /// first, as with Redis): before a connection of this thread writes to
    /// its socket (`shard::flush_broadcasts`), before the answer of a job
    /// another thread sent (`shard::answer`) and before blocked clients
    /// are served, when a transaction releases the shard, before a busy
    /// script's hook writes other clients' replies, and when the thread is
    /// about to sleep (keys expired or evicted between jobs).
    pub fn send_broadcasts(&mut self) {
        if self.tracked.bcast_pending == 0 {
            return;
        }
        self.tracked.bcast_pending = 0;
        UNSENT.with(|u| u.set(false));
        // A client that started or stopped tracking since the copy was made
        // is looked up in the registry (it may be gone).
        let current = self.tracked.bcasters_gen == GENERATION.load(Relaxed);
        for i in 0..self.tracked.bcasters.len() {
            for j in 0..self.tracked.bcasters[i].prefixes.len() {
                let b = &mut self.tracked.bcasters[i];
                let g = &mut b.prefixes[j];
                if g.count == 0 {
                    continue;
                }
                // The next batch starts with room for as much as this one.
                let room = g.bulks.len();
                let bulks = std::mem::replace(&mut g.bulks, Vec::with_capacity(room));
                let (id, count) = (b.id, std::mem::take(&mut g.count));
                let inv = Invalidation::Encoded(count, Bytes::from(bulks));
                match b.direct.as_ref().filter(|_| current) {
                    Some((info, inbox)) => {
                        super::pubsub::deliver_to(inbox, info, Message::invalidation(inv), &self.cfg.output_limits[CLASS_PUBSUB]);
                    }
                    None => self.send_invalidation(id, inv, Source::Bcast),
                }
            }
        }
    }

    /// Lets go of keys of this shard (their readers are sent an
    /// invalidation) while the node's tables hold more than
    /// `tracking-table-max-keys` (which CONFIG SET may have lowered), at
    /// most `LIMIT_EFFORT` per call; as Redis's trackingLimitUsedSlots does
    /// before each command and in its cron (here: each shard's tick). Each
    /// key let go is first taken off the node's count while that is over
    /// the limit, so shards trimming at once stop at it together.
    pub fn limit_tracked(&mut self) {
        if self.tracked.keys.is_empty() {
            return;
        }
        let max = self.cfg.tracking_table_max_keys.load(Relaxed) as usize;
        if max == 0 {
            return;
        }
        for _ in 0..LIMIT_EFFORT {
            if TOTAL_KEYS.fetch_update(Relaxed, Relaxed, |t| (t > max).then(|| t - 1)).is_err() {
                return;
            }
            let Some(key) = self.tracked.keys.keys().next().cloned() else {
                TOTAL_KEYS.fetch_add(1, Relaxed);
                return;
            };
            self.untrack(&key, false);
        }
    }

    fn invalidate_tracked(&mut self, key: &[u8]) {
        self.untrack(key, true);
    }

    /// Forgets `key` and sends its readers an invalidation; `count`: takes
    /// it off the node's key count (false: the caller did).
    fn untrack(&mut self, key: &[u8], count: bool) {
        if self.tracked.keys.is_empty() {
            return;
        }
        let Some(ids) = self.tracked.keys.remove(key) else { return };
        crate::util::shrink_map(&mut self.tracked.keys);
        if count {
            TOTAL_KEYS.fetch_sub(1, Relaxed);
        }
        TOTAL_ITEMS.fetch_sub(ids.len(), Relaxed);
        for id in ids {
            self.send_invalidation(id, Invalidation::Keys(vec![Bytes::copy_from_slice(key)]), Source::Table);
        }
    }

    /// A flush: every tracking client is sent the null invalidation (once,
    /// by the first shard: `announce`) and this shard's table is emptied.
    pub fn invalidate_all(&mut self, announce: bool) {
        self.send_broadcasts();
        let table = std::mem::take(&mut self.tracked);
        drop(table);
        if announce {
            let ids: Vec<u64> = trackers().keys().copied().collect();
            for id in ids {
                self.send_invalidation(id, Invalidation::All, Source::Flush);
            }
        }
    }

    /// Keeps the invalidations of clients without REDIRECT (see
    /// `Table::captured`) from now on, or (false) stops.
    pub fn capture(&mut self, on: bool) {
        self.tracked.capture = on;
    }

    /// Those kept for client `id`, for its output ahead of its reply.
    pub fn take_captured(&mut self, id: u64) -> Vec<Invalidation> {
        if self.tracked.captured.is_empty() {
            return Vec::new();
        }
        let (mine, rest) = std::mem::take(&mut self.tracked.captured).into_iter().partition(|(c, _, _)| *c == id);
        self.tracked.captured = rest;
        mine.into_iter().map(|(_, inv, _)| inv).collect()
    }

    /// Evicts while over `maxmemory` before a job runs, as Redis evicts
    /// before each command: the evicted keys' events go out now, and their
    /// invalidations wait for the job, whose client's command writes its
    /// own ahead of its reply (`take_captured`); `release_captured` sends
    /// the others once the job is done.
    pub fn evict_before_job(&mut self) {
        self.evict_captured(false);
    }

    /// `evict_before_job` evicting this shard's own keys whatever the
    /// other shards hold (`Shard::evict_here`).
    pub fn evict_here_before_job(&mut self) {
        self.evict_captured(true);
    }

    fn evict_captured(&mut self, here: bool) {
        self.capture(true);
        if here {
            self.evict_here();
        } else {
            self.evict();
        }
        self.publish_notes();
        self.capture(false);
    }

    /// Sends the kept invalidations no command took.
    pub fn release_captured(&mut self) {
        for (id, inv, source) in std::mem::take(&mut self.tracked.captured) {
            self.send_invalidation(id, inv, source);
        }
    }

    /// Sends client `id` an invalidation, to it or to its redirect target.
    fn send_invalidation(&mut self, id: u64, inv: Invalidation, source: Source) {
        let Some(engine) = self.engine.clone() else { return };
        let all = trackers();
        let Some(t) = all.get(&id) else { return };
        let flags = t.info.tracking.load(Relaxed);
        // A client that read the key and has since switched to BCAST hears
        // of it by its prefixes only, as in Redis.
        if source == Source::Table && flags & flag::BCAST != 0 {
            return;
        }
        // NOLOOP was applied to broadcasts key by key as they were gathered.
        if source != Source::Bcast && flags & flag::NOLOOP != 0 && self.caller == id {
            return;
        }
        if t.redirect == 0 && self.tracked.capture {
            drop(all);
            self.tracked.captured.push((id, inv, source));
            return;
        }
        let limit = &self.cfg.output_limits[CLASS_PUBSUB];
        let msg = |inv| Message::invalidation(inv);
        if t.redirect == 0 {
            let m = Message { ahead: self.upkeep, ..msg(inv) };
            super::pubsub::deliver_to(&t.inbox, &t.info, m, limit);
            return;
        }
        if let Some(target) = all.get(&t.redirect) {
            super::pubsub::deliver_to(&target.inbox, &target.info, msg(inv), limit);
        } else if let Some((info, inbox)) = push_targets().get(&t.redirect) {
            super::pubsub::deliver_to(inbox, info, msg(inv), limit);
        } else if engine.pubsub.deliver_to_subscriber(CHANNEL, t.redirect, msg(inv), limit) {
        } else if engine.clients.get(t.redirect).is_none() {
            // The target is gone: the client is told (RESP3), each time
            // an invalidation is lost, as Redis does.
            t.info.tracking.fetch_or(flag::BROKEN, Relaxed);
            super::pubsub::deliver_to(&t.inbox, &t.info, msg(Invalidation::RedirBroken(t.redirect)), limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::sync::atomic::Ordering::Relaxed;

    fn shard() -> Shard {
        use clap::Parser;
        let cfg = Config::from_args(&crate::config::Args::parse_from(["damselfly"])).expect("config");
        Shard::new(0, 1, Arc::new(cfg), crate::shard::scripts::Scripting::new(|_| false))
    }

    #[test]
    fn a_key_is_remembered_once_per_reader_and_forgotten_when_it_changes() {
        let mut sh = shard();
        sh.track_read(b"k", 7);
        sh.track_read(b"k", 7);
        sh.track_read(b"k", 8);
        assert_eq!(sh.tracked.keys.get(&b"k"[..]).map(Vec::as_slice), Some(&[7, 8][..]));
        sh.invalidate_key(b"other");
        assert_eq!(sh.tracked.keys.len(), 1);
        sh.invalidate_key(b"k");
        assert!(sh.tracked.keys.is_empty());
    }

    #[test]
    fn the_table_holds_at_most_its_bound() {
        let mut sh = shard();
        sh.cfg.tracking_table_max_keys.store(3, Relaxed);
        for k in [&b"a"[..], b"b", b"c", b"d", b"e"] {
            sh.track_read(k, 1);
        }
        assert_eq!(sh.tracked.keys.len(), 3);
        assert!(sh.tracked.keys.contains_key(&b"e"[..]));
        sh.cfg.tracking_table_max_keys.store(0, Relaxed);
        for k in [&b"f"[..], b"g"] {
            sh.track_read(k, 1);
        }
        assert_eq!(sh.tracked.keys.len(), 5, "0: no bound");
        sh.invalidate_all(false);
        assert!(sh.tracked.keys.is_empty());
    }
}
