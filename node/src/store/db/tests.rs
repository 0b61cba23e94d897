//! Unit tests of `Db`: expiry and TTL bookkeeping, change tracking, WATCH
//! flags, the undo log, slot ownership.

use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn db() -> Db {
    Db::new(0, 1, 7)
}

#[test]
fn entry_is_compact() {
    // The 24 bits of access metadata live beside the entries (`Slab`).
    // So is the expiry time, only for keys that have one.
    assert_eq!(std::mem::size_of::<Option<Entry>>(), 48);
}

#[test]
fn avg_ttl_follows_every_ttl_change() {
    let mut d = db();
    assert_eq!(d.avg_ttl(0), 0);
    d.insert_new(b"a", Value::string(b"v"), 1000);
    d.insert_new(b"b", Value::string(b"v"), 3000);
    d.insert_new(b"c", Value::string(b"v"), 0);
    assert_eq!(d.avg_ttl(0), 2000);
    assert_eq!(d.avg_ttl(500), 1500);
    let idx = d.lookup(b"b", 0).expect("b");
    d.set_expire(idx, 5000);
    assert_eq!(d.avg_ttl(0), 3000);
    let idx = d.lookup(b"c", 0).expect("c");
    d.set_expire(idx, 6000);
    assert_eq!(d.avg_ttl(0), 4000);
    d.remove(b"a", 0);
    assert_eq!(d.avg_ttl(0), 5500);
    d.set(b"b", Value::string(b"w"), false, 0);
    assert_eq!(d.avg_ttl(0), 6000);
    // Past the deadlines (not expired yet): 0.
    assert_eq!(d.avg_ttl(7000), 0);
}

#[test]
fn set_get_remove() {
    let mut d = db();
    for i in 0..5000 {
        d.set(format!("k{i}").as_bytes(), Value::string(b"v"), false, 0);
    }
    assert_eq!(d.len(), 5000);
    assert!(d.exists(b"k42", 0));
    assert!(d.remove(b"k42", 0).is_some());
    assert!(!d.exists(b"k42", 0));
    assert_eq!(d.len(), 4999);
    let total: usize = d.slots().map(|s| d.slot_len(s)).sum();
    assert_eq!(total, 4999);
}

#[test]
fn tracking_notes_every_write_path_of_tracked_slots() {
    let mut d = db();
    // foo -> 12182, bar -> 5061.
    d.set(b"foo", Value::string(b"1"), false, 0);
    d.set(b"bar", Value::string(b"1"), false, 0);
    d.set(b"{foo}ttl", Value::string(b"1"), false, 0);
    d.track(&[12182]);
    assert!(d.take_changed().is_empty());
    d.set(b"foo", Value::string(b"2"), false, 0);
    d.set(b"bar", Value::string(b"2"), false, 0);
    let idx = d.lookup(b"{foo}ttl", 0).unwrap();
    d.set_expire(idx, 10);
    let mut changed: Vec<Vec<u8>> = d.take_changed().iter().map(|k| k.to_vec()).collect();
    changed.sort();
    assert_eq!(changed, vec![b"foo".to_vec(), b"{foo}ttl".to_vec()]);
    // Expiry and deletion count; each key once per round.
    assert!(d.get(b"{foo}ttl", 20).is_none());
    d.remove(b"foo", 0);
    d.insert_new(b"{foo}new", Value::string(b"x"), 0);
    let idx = d.lookup(b"{foo}new", 0).unwrap();
    d.entry_mut(idx).value = Value::string(b"y");
    assert_eq!(d.take_changed().len(), 3);
    assert_eq!(d.slot_keys(12182).len(), 1);
    assert_eq!(d.drain_slot(12182, 10), 1);
    assert_eq!(d.take_changed().len(), 1);
    d.untrack();
    d.set(b"foo", Value::string(b"3"), false, 0);
    assert!(d.take_changed().is_empty());
}

#[test]
fn lazy_and_active_expiry() {
    let mut d = db();
    let a = d.set(b"a", Value::string(b"1"), false, 0);
    d.set_expire(a, 100);
    let b = d.set(b"b", Value::string(b"1"), false, 0);
    d.set_expire(b, 200);
    d.set(b"c", Value::string(b"1"), false, 0);
    assert!(d.exists(b"a", 99));
    assert!(!d.exists(b"a", 100), "lazy expiry at the deadline");
    assert_eq!(d.volatile_len(), 1);
    assert_eq!(d.expire_cycle(150, 10), 0);
    assert_eq!(d.expire_cycle(250, 10), 1);
    assert_eq!(d.len(), 1);
    assert_eq!(d.volatile_len(), 0);
}

#[test]
fn overwrite_clears_ttl_unless_kept() {
    let mut d = db();
    let i = d.set(b"k", Value::string(b"1"), false, 0);
    d.set_expire(i, 1000);
    d.set(b"k", Value::string(b"2"), true, 0);
    let i = d.lookup(b"k", 0).unwrap();
    assert_eq!(d.expire_of(i), Some(1000));
    d.set(b"k", Value::string(b"3"), false, 0);
    let i = d.lookup(b"k", 0).unwrap();
    assert_eq!(d.expire_of(i), None);
    assert_eq!(d.volatile_len(), 0);
}

#[test]
fn writes_and_expiry_raise_watch_flags() {
    let mut d = db();
    let flag = Arc::new(AtomicBool::new(false));
    d.watch(b"w", flag.clone(), 0);
    d.set(b"other", Value::string(b"1"), false, 0);
    assert!(!flag.load(Relaxed), "a write to another key leaves the flag");
    let _ = d.get(b"w", 0);
    assert!(!flag.load(Relaxed), "a read leaves the flag");
    d.set(b"w", Value::string(b"1"), false, 0);
    assert!(flag.load(Relaxed), "creating the key raises it");

    let flag2 = Arc::new(AtomicBool::new(false));
    d.watch(b"w", flag2.clone(), 0);
    let idx = d.lookup(b"w", 0).unwrap();
    d.set_expire(idx, 50);
    assert!(flag2.load(Relaxed), "setting a TTL raises it");

    let flag3 = Arc::new(AtomicBool::new(false));
    d.watch(b"w", flag3.clone(), 0);
    assert_eq!(d.expire_cycle(100, 10), 1);
    assert!(flag3.load(Relaxed), "expiry raises it");
    d.unwatch(b"w", &flag);
    d.unwatch(b"w", &flag2);
    d.unwatch(b"w", &flag3);
    assert!(d.watched.is_empty());
}

#[test]
fn undo_log_restores_values_ttls_and_absence() {
    let mut d = db();
    let a = d.set(b"a", Value::string(b"1"), false, 0);
    d.set_expire(a, 5000);
    d.set(b"b", Value::string(b"keep"), false, 0);
    d.undo_begin();
    let a = d.lookup(b"a", 0).unwrap();
    d.entry_mut(a).value = Value::string(b"2");
    d.set_expire(a, 0);
    d.entry_mut(a).value = Value::string(b"3");
    d.remove(b"b", 0);
    d.set(b"new", Value::string(b"x"), false, 0);
    d.undo_rollback();
    let a = d.lookup(b"a", 0).unwrap();
    assert!(matches!(d.entry(a).value, Value::Int(1)));
    assert_eq!(d.expire_of(a), Some(5000));
    assert!(d.exists(b"b", 0));
    assert!(!d.exists(b"new", 0));
    assert_eq!(d.len(), 2);
    assert_eq!(d.volatile_len(), 1);
    // Many keys (past the linear-scan size), each changed twice.
    d.undo_begin();
    for round in 0..2 {
        for i in 0..40 {
            d.set(format!("m{i}").as_bytes(), Value::string(format!("{round}").as_bytes()), false, 0);
        }
    }
    d.undo_rollback();
    assert_eq!(d.len(), 2);
    // After a commit, changes stay and nothing is recorded any more.
    d.undo_begin();
    d.set(b"c", Value::string(b"1"), false, 0);
    d.undo_commit();
    d.undo_rollback();
    assert!(d.exists(b"c", 0));
}

#[test]
fn shard_owns_its_slots_only() {
    let d = Db::new(1, 3, 0);
    assert!(d.slots().all(|s| s % 3 == 1));
    assert_eq!(d.slots().count(), (SLOTS - 1).div_ceil(3));
}

#[test]
fn expiry_times_stay_with_their_keys_as_slab_positions_are_reused() {
    let mut d = db();
    for i in 0..3000u32 {
        let at = if i % 7 == 0 { 10_000 + u64::from(i) } else { 0 };
        d.insert_new(format!("k{i}").as_bytes(), Value::string(b"v"), at);
    }
    assert_eq!(d.volatile_len(), 429);
    for i in (0..3000u32).step_by(2) {
        d.remove(format!("k{i}").as_bytes(), 0);
    }
    // New keys take the freed positions: none inherits a TTL.
    for i in 0..1500u32 {
        d.insert_new(format!("n{i}").as_bytes(), Value::string(b"v"), 0);
    }
    for i in 0..1500u32 {
        let idx = d.lookup(format!("n{i}").as_bytes(), 0).expect("new key");
        assert_eq!(d.expire_of(idx), None);
    }
    for i in (1..3000u32).step_by(2) {
        let idx = d.lookup(format!("k{i}").as_bytes(), 0).expect("kept key");
        let want = (i % 7 == 0).then_some(10_000 + u64::from(i));
        assert_eq!(d.expire_of(idx), want);
    }
    assert_eq!(d.expire_cycle(20_000, 10_000), 214);
    assert_eq!(d.len(), 3000 - 214);
}

#[test]
fn prefetch_reads_nothing_into_the_keyspace() {
    // More keys than one probe round (16), present, absent and expired,
    // several per slot and in empty slots: a prefetch changes nothing.
    let mut d = db();
    for i in 0..40 {
        let at = if i % 3 == 0 { 1000 } else { 0 };
        d.insert_new(format!("k{i}").as_bytes(), Value::string(b"v"), at);
    }
    let keys: Vec<Vec<u8>> = (0..80).map(|i| format!("k{i}").into_bytes()).collect();
    d.prefetch(keys.iter().map(|k| (&k[..], key_slot(k))));
    assert_eq!(d.len(), 40);
    assert_eq!(d.volatile_len(), 14);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(d.contains(k), i < 40, "{}", String::from_utf8_lossy(k));
    }
    // A run of one key (a pipeline of pushes to one list) is looked at once.
    let run = std::iter::repeat_n((&b"k0"[..], key_slot(b"k0")), 20);
    d.prefetch(run.chain(std::iter::once((&b"k1"[..], key_slot(b"k1")))));
    assert_eq!((d.len(), d.volatile_len()), (40, 14));
    Db::new(0, 1, 7).prefetch(std::iter::once((&b"none"[..], key_slot(b"none"))));
    // A shard's database passes over the keys of other shards' slots.
    let other: Vec<(Vec<u8>, u16)> = (0..50)
        .map(|i| format!("o{i}").into_bytes())
        .map(|k| {
            let slot = key_slot(&k);
            (k, slot)
        })
        .collect();
    Db::new(1, 2, 7).prefetch(other.iter().map(|(k, s)| (&k[..], *s)));
}

#[test]
fn a_key_watched_expired_changes_nothing_by_its_deletion() {
    let mut d = db();
    d.set(b"w", Value::string(b"1"), false, 0);
    let idx = d.lookup(b"w", 0).unwrap();
    d.set_expire(idx, 50);
    let (stale, live) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    d.watch(b"w", stale.clone(), 100);
    assert!(!d.expired_since_watched(b"w", &stale, 100), "watched expired: EXEC does not fail on it");
    assert_eq!(d.expire_cycle(100, 10), 1);
    assert!(!stale.load(Relaxed), "deleting a key watched expired changes nothing");
    d.watch(b"w", live.clone(), 100);
    d.set(b"w", Value::string(b"2"), false, 0);
    assert!(stale.load(Relaxed) && live.load(Relaxed), "once deleted, it is missing: creating it is a change");
    let later = Arc::new(AtomicBool::new(false));
    let idx = d.lookup(b"w", 0).unwrap();
    d.set_expire(idx, 150);
    d.watch(b"w", later.clone(), 120);
    assert!(!d.expired_since_watched(b"w", &later, 140));
    assert!(d.expired_since_watched(b"w", &later, 150), "watched live, expired since: EXEC fails");
}
