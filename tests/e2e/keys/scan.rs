//! SCAN: its options, every stable key returned under concurrent writes,
//! and cursors that are slot numbers whatever the shard count.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use damselfly_tests::Server;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::{conn_db, pairs, payload};

/// Runs a whole SCAN with the given options; returns every key returned (with
/// repetitions) and the number of calls.
async fn full_scan(c: &mut MultiplexedConnection, opts: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    for calls in 1..=200_000 {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN").arg(&cursor).arg(opts).query_async(c).await.unwrap();
        keys.extend(batch);
        if next == "0" {
            return (keys, calls);
        }
        assert!(next.bytes().all(|b| b.is_ascii_digit()), "cursor {next:?}");
        cursor = next;
    }
    panic!("SCAN did not finish");
}

#[tokio::test]
async fn scan_options() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let (keys, _) = full_scan(&mut c, &[]).await;
    assert!(keys.is_empty());
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("s:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let h = payload::hash(&pairs(2, 3));
    for i in 0..10 {
        let _: () = redis::cmd("RESTORE").arg(format!("h:{i}")).arg(0).arg(&h).query_async(&mut c).await.unwrap();
    }

    // Default COUNT: every key exactly once, in many calls.
    let (keys, calls) = full_scan(&mut c, &[]).await;
    assert_eq!(keys.len(), 1010);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 1010, "no key twice");
    assert!(calls > 50, "COUNT 10 over 1010 keys took {calls} calls");
    // A large COUNT takes every shard in one call, as Redis answers a
    // small keyspace.
    let (keys, calls) = full_scan(&mut c, &["COUNT", "100000"]).await;
    assert_eq!(keys.len(), 1010);
    assert_eq!(calls, 1);
    // A COUNT of a bit more than a shard's keys moves on to the next shard
    // within the call: fewer calls than shards.
    let (keys, calls) = full_scan(&mut c, &["COUNT", "400"]).await;
    assert_eq!(keys.len(), 1010);
    assert!(calls < 4, "COUNT 400 over 4 shards of about 250 keys took {calls} calls");
    // MATCH and TYPE filter; unknown types match nothing.
    let (keys, _) = full_scan(&mut c, &["MATCH", "s:1?", "COUNT", "50"]).await;
    let mut keys: Vec<String> = keys;
    keys.sort();
    assert_eq!(keys, (10..20).map(|i| format!("s:{i}")).collect::<Vec<_>>());
    let (keys, _) = full_scan(&mut c, &["TYPE", "HASH", "COUNT", "100"]).await;
    assert_eq!(keys.len(), 10);
    assert!(keys.iter().all(|k| k.starts_with("h:")));
    let (keys, _) = full_scan(&mut c, &["TYPE", "string", "MATCH", "h:*"]).await;
    assert!(keys.is_empty());
    let (keys, _) = full_scan(&mut c, &["TYPE", "nosuchtype"]).await;
    assert!(keys.is_empty());
    // Another database is scanned separately.
    let mut c2 = conn_db(&s, 2).await;
    let (keys, _) = full_scan(&mut c2, &[]).await;
    assert!(keys.is_empty());
}

/// SCAN's guarantee: a full iteration returns every key that existed for the
/// whole iteration, while other clients add and delete keys (and tables grow).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_returns_every_stable_key_under_concurrent_writes() {
    let s = Server::start_with(&["--shards", "4"]);
    const STABLE: usize = 10_000;
    let mut c = s.conn().await;
    for chunk in (0..STABLE).collect::<Vec<_>>().chunks(1000) {
        let kv: Vec<(String, usize)> = chunk.iter().map(|i| (format!("stable:{i}"), *i)).collect();
        let _: () = c.mset(&kv).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, stop, writes) = (s.client(), stop.clone(), writes.clone());
        writers.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut round = 0u64;
            // Bounded even if the scanner were to stall.
            while !stop.load(Ordering::Relaxed) && round < 2_000 {
                let mut pipe = redis::pipe();
                for i in 0..50 {
                    pipe.cmd("SET").arg(format!("churn:{w}:{round}:{i}")).arg(i).ignore();
                }
                // Delete half of an earlier round: the keyspace keeps growing.
                if round >= 2 {
                    for i in (0..50).step_by(2) {
                        pipe.cmd("DEL").arg(format!("churn:{w}:{}:{i}", round - 2)).ignore();
                    }
                }
                let _: () = pipe.query_async(&mut c).await.unwrap();
                writes.fetch_add(1, Ordering::Relaxed);
                round += 1;
            }
        }));
    }
    // Let the writers get going, then scan in small steps.
    let start = Instant::now();
    while writes.load(Ordering::Relaxed) < 20 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = writes.load(Ordering::Relaxed);
    let mut returned: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(20).query_async(&mut c).await.unwrap();
        for k in batch {
            assert!(k.starts_with("stable:") || k.starts_with("churn:"), "SCAN returned a key nobody wrote: {k}");
            returned.insert(k);
        }
        calls += 1;
        assert!(calls < 100_000, "SCAN did not finish");
        if next == "0" {
            break;
        }
        cursor = next;
        // Interleave with the writers.
        if calls % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let during = writes.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let missing: Vec<usize> = (0..STABLE).filter(|i| !returned.contains(&format!("stable:{i}"))).collect();
    assert!(missing.is_empty(), "{} stable keys were never returned, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(during > 0, "the writers did not run during the scan");
    assert!(calls > 100, "the scan took {calls} calls");
}

/// A SCAN cursor is a slot number: each call returns the keys of the slots
/// from its cursor up to the cursor it answers, whatever the shard count,
/// and a cursor taken from a node with one shard count resumes correctly on
/// a node with another.
#[test]
fn scan_cursors_are_slots_whatever_the_shard_count() {
    let keys: Vec<String> = (0..3000).map(|i| format!("k:{i}")).collect();
    let mut cursors_by_count = Vec::new();
    for shards in ["1", "2", "3"] {
        let s = Server::start_with(&["--shards", shards]);
        let mut c = s.sync_conn();
        for chunk in keys.chunks(500) {
            let pairs: Vec<(&str, i32)> = chunk.iter().map(|k| (k.as_str(), 1)).collect();
            let _: () = redis::cmd("MSET").arg(&pairs).query(&mut c).expect("MSET");
        }
        let (mut cursor, mut seen, mut cursors) = (0u64, HashSet::new(), Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(100).query(&mut c).expect("SCAN");
            let hi = if next == 0 { 16384 } else { next };
            for k in batch {
                let slot = damselfly_tests::key_slot(k.as_bytes()) as u64;
                assert!(cursor <= slot && slot < hi, "{k} (slot {slot}) returned by SCAN {cursor} -> {next}");
                assert!(seen.insert(k), "a key returned twice");
            }
            cursors.push(next);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), keys.len(), "--shards {shards}");
        cursors_by_count.push(cursors);
    }
    // The same data gives the same cursors with 1, 2 and 3 shards.
    assert_eq!(cursors_by_count[0], cursors_by_count[1]);
    assert_eq!(cursors_by_count[0], cursors_by_count[2]);
}
