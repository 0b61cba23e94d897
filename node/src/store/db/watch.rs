//! WATCH registrations of a database, with Redis's rules (multi.c): a
//! watcher's flag is raised when its key changes; a key already expired
//! when it was watched ("stale") changes nothing by being deleted, nor by
//! a flush or swap that leaves it missing or still expired; a key watched
//! while live that has expired since fails the EXEC even before anything
//! deletes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use super::Db;
use crate::store::SmallBytes;

/// One client's WATCH of a key.
pub struct Watcher {
    flag: Arc<AtomicBool>,
    /// The key was there with its TTL passed when it was watched.
    stale: bool,
}

/// WATCHed keys of a database and their watchers.
pub type Watchers = HashMap<SmallBytes, Vec<Watcher>>;

impl Db {
    /// Registers a WATCH on `key`, raising `flag` when it changes.
    pub fn watch(&mut self, key: &[u8], flag: Arc<AtomicBool>, now: u64) {
        let stale = self.has_expired(key, now);
        self.watched.entry(SmallBytes::new(key)).or_default().push(Watcher { flag, stale });
    }

    /// Removes a WATCH registered with `flag`.
    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        if let Some(v) = self.watched.get_mut(key) {
            v.retain(|w| !Arc::ptr_eq(&w.flag, flag));
            if v.is_empty() {
                self.watched.remove(key);
                crate::util::shrink_map(&mut self.watched);
            }
        }
    }

    /// Whether `key`, watched with `flag` while it was live, has expired
    /// since (Redis's isWatchedKeyExpired: EXEC fails).
    pub fn expired_since_watched(&self, key: &[u8], flag: &Arc<AtomicBool>, now: u64) -> bool {
        let live_when_watched = self.watched.get(key).is_some_and(|v| v.iter().any(|w| Arc::ptr_eq(&w.flag, flag) && !w.stale));
        live_when_watched && self.has_expired(key, now)
    }

    /// The key is there and its TTL has passed.
    fn has_expired(&self, key: &[u8], now: u64) -> bool {
        self.find(key).is_some_and(|i| {
            let at = self.entries.expiry(i);
            at != 0 && at <= now
        })
    }

    /// Hands the watch registrations over (the database is flushed or
    /// swapped), so they survive; `raise_after_flush` tells those whose
    /// key the flush or swap changed.
    pub fn take_watchers(&mut self) -> Watchers {
        std::mem::take(&mut self.watched)
    }

    pub fn set_watchers(&mut self, w: Watchers) {
        self.watched = w;
    }
}

/// Tells the watchers of `key` that it changes; `expired`: the change is
/// its deletion because its TTL passed, which changes nothing for a
/// watcher that watched it expired already (from then on it is missing).
pub(super) fn raise(watched: &mut Watchers, key: &[u8], expired: bool) {
    let Some(v) = watched.get_mut(key) else { return };
    for w in v {
        if w.stale && expired {
            w.stale = false;
            continue;
        }
        w.flag.store(true, Relaxed);
    }
}

/// Tells the watchers `w` of a database that is flushed (`emptied` its
/// old data, `replaced` None) or swapped (`replaced` the data that takes
/// its place), as Redis's touchAllWatchedKeysInDb: a key missing on both
/// sides is untouched; a stale key that ends missing or still expired
/// changes nothing; a missing key replaced with an expired one is stale
/// from then on; anything else is a change.
pub fn raise_after_flush(w: &mut Watchers, emptied: Option<&Db>, replaced: Option<&Db>, now: u64) {
    for (key, watchers) in w.iter_mut() {
        let in_emptied = emptied.is_some_and(|d| d.contains(key));
        let in_replaced = replaced.is_some_and(|d| d.contains(key));
        if !in_emptied && !in_replaced {
            continue;
        }
        let replaced_expired = replaced.is_some_and(|d| d.has_expired(key, now));
        for wt in watchers {
            if wt.stale {
                if !in_replaced {
                    wt.stale = false;
                    continue;
                }
                if replaced_expired {
                    continue;
                }
            } else if !in_emptied && replaced_expired {
                wt.stale = true;
                continue;
            }
            wt.flag.store(true, Relaxed);
        }
    }
}
