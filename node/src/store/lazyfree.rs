//! Lazy freeing, as Redis's lazyfree.c: UNLINK and FLUSHALL / FLUSHDB ASYNC
//! hand what they delete to a background thread when freeing it would take
//! long (a value of more than `THRESHOLD` allocations, a whole database),
//! so the shard's thread goes on serving at once. INFO shows
//! `lazyfree_pending_objects` (handed over, not freed yet) and
//! `lazyfreed_objects` (freed that way since CONFIG RESETSTAT).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

use super::Value;

/// Allocations past which a value is freed in the background (Redis's
/// LAZYFREE_THRESHOLD).
pub const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// Something to drop, and how many objects it counts for.
type Job = (Box<dyn Send>, u64);

static FREER: OnceLock<Sender<Job>> = OnceLock::new();

/// About how many allocations freeing `v` takes (Redis's
/// lazyfreeGetFreeEffort): one for a string or a compact encoding, one
/// per element of a table, list node or stream node, and per consumer
/// group and pending entry.
pub fn free_effort(v: &Value) -> usize {
    match v {
        Value::Str(_) | Value::Int(_) => 1,
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::List(l) => l.nodes(),
        Value::Stream(s) => {
            let groups =
                s.groups.as_ref().map_or(0, |g| g.by_name.values().next().map_or(0, |first| g.by_name.len() * (1 + first.pel.len())));
            s.nodes() + groups
        }
        // A tree: about one allocation per 64 bytes of it.
        Value::Json(j) if !j.is_compact() => j.heap_size() / 64,
        _ => 1,
    }
}

/// Frees a deleted value: in the background when that takes long.
pub fn free(v: Value) {
    if free_effort(&v) > THRESHOLD {
        free_later(Box::new(v), 1);
    } else {
        drop(v);
    }
}

/// Frees `what` (counting as `objects`) on the background thread.
pub fn free_later(what: Box<dyn Send>, objects: u64) {
    PENDING.fetch_add(objects, Relaxed);
    let sent = FREER.get_or_init(spawn).send((what, objects));
    if let Err(e) = sent {
        // No thread to free it (it could not start): freed here.
        let (what, objects) = e.0;
        drop(what);
        done(objects);
    }
}

fn done(objects: u64) {
    PENDING.fetch_sub(objects, Relaxed);
    FREED.fetch_add(objects, Relaxed);
}

fn spawn() -> Sender<Job> {
    let (tx, rx) = channel::<Job>();
    let started = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
        for (what, objects) in rx {
            drop(what);
            done(objects);
        }
    });
    if let Err(e) = started {
        tracing::warn!("no lazy-free thread ({e}): deleted values are freed by the thread that deletes them");
    }
    tx
}

/// INFO: objects waiting to be freed, and freed in the background.
pub fn stats() -> (u64, u64) {
    (PENDING.load(Relaxed), FREED.load(Relaxed))
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_values_are_freed_in_the_background_and_counted() {
        use crate::types::set::{SetLimits, SetValue};
        let small = Value::string(b"x");
        assert_eq!(free_effort(&small), 1);
        let mut set = SetValue::default();
        for i in 0..1000 {
            set.add(format!("m{i}").as_bytes(), SetLimits::default());
        }
        let big = Value::Set(Box::new(set));
        assert!(free_effort(&big) > THRESHOLD, "{}", free_effort(&big));
        let before = stats().1;
        free(small);
        free(big);
        for _ in 0..1000 {
            if stats().1 > before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(stats().1 > before, "the set was freed in the background");
    }
}
