//! Moving values: RENAME and COPY across shards and databases, MOVE, and
//! SWAPDB as other clients see it (and its atomicity for readers).

use std::collections::HashSet;

use damselfly_tests::Server;
use redis::AsyncCommands;

use super::{conn_db, dbsize, pairs, payload};

/// Pairs of keys that live on different shards (the test servers use 4).
fn cross_shard_pairs(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("src:{i}"), format!("dst:{i}"))).collect()
}

#[tokio::test]
async fn rename_across_shards_keeps_ttl() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    for (src, dst) in cross_shard_pairs(32) {
        let _: () = redis::cmd("SET").arg(&src).arg(&src).arg("EX").arg(1000).query_async(&mut c).await.unwrap();
        let _: () = c.rename(&src, &dst).await.unwrap();
        assert!(!c.exists::<_, bool>(&src).await.unwrap());
        assert_eq!(c.get::<_, String>(&dst).await.unwrap(), src);
        let ttl: i64 = c.ttl(&dst).await.unwrap();
        assert!(ttl > 990 && ttl <= 1000, "{dst}: {ttl}");
        // RENAMENX refuses an existing destination and keeps both keys.
        let _: () = c.set(&src, "other").await.unwrap();
        assert!(!c.rename_nx::<_, _, bool>(&src, &dst).await.unwrap());
        assert_eq!(c.get::<_, String>(&src).await.unwrap(), "other");
        // RENAME overwrites it, dropping the destination's TTL with its value.
        let _: () = c.rename(&src, &dst).await.unwrap();
        assert_eq!(c.get::<_, String>(&dst).await.unwrap(), "other");
        assert_eq!(c.ttl::<_, i64>(&dst).await.unwrap(), -1);
    }
    assert_eq!(dbsize(&mut c).await, 32);
}

#[tokio::test]
async fn copy_across_shards_and_databases() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let mut c1 = conn_db(&s, 1).await;
    for (src, dst) in cross_shard_pairs(32) {
        let _: () = redis::cmd("SET").arg(&src).arg("v").arg("EX").arg(500).query_async(&mut c).await.unwrap();
        let n: i64 = redis::cmd("COPY").arg(&src).arg(&dst).query_async(&mut c).await.unwrap();
        assert_eq!(n, 1);
        // Deep copy: changing the source leaves the copy alone.
        let _: i64 = c.append(&src, "-changed").await.unwrap();
        assert_eq!(c.get::<_, String>(&dst).await.unwrap(), "v");
        let ttl: i64 = c.ttl(&dst).await.unwrap();
        assert!(ttl > 490 && ttl <= 500, "COPY keeps the TTL: {ttl}");
        // Into database 1, then refused there without REPLACE.
        let n: i64 = redis::cmd("COPY").arg(&src).arg(&dst).arg("DB").arg(1).query_async(&mut c).await.unwrap();
        assert_eq!(n, 1);
        let n: i64 = redis::cmd("COPY").arg(&dst).arg(&dst).arg("DB").arg(1).query_async(&mut c).await.unwrap();
        assert_eq!(n, 0);
        assert_eq!(c1.get::<_, String>(&dst).await.unwrap(), "v-changed");
        let n: i64 = redis::cmd("COPY").arg(&dst).arg(&dst).arg("DB").arg(1).arg("REPLACE").query_async(&mut c).await.unwrap();
        assert_eq!(n, 1);
        assert_eq!(c1.get::<_, String>(&dst).await.unwrap(), "v");
    }
    assert_eq!(dbsize(&mut c).await, 64);
    assert_eq!(dbsize(&mut c1).await, 32);

    // A hash copies deeply too (checked through DUMP).
    let h = payload::hash(&pairs(3, 5));
    let _: () = redis::cmd("RESTORE").arg("h:src").arg(0).arg(&h).query_async(&mut c).await.unwrap();
    for i in 0..8 {
        let dst = format!("h:dst{i}");
        let n: i64 = redis::cmd("COPY").arg("h:src").arg(&dst).query_async(&mut c).await.unwrap();
        assert_eq!(n, 1);
        let p: Vec<u8> = redis::cmd("DUMP").arg(&dst).query_async(&mut c).await.unwrap();
        let src: Vec<u8> = redis::cmd("DUMP").arg("h:src").query_async(&mut c).await.unwrap();
        assert_eq!(p, src);
    }
}

#[tokio::test]
async fn move_between_databases() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let mut c3 = conn_db(&s, 3).await;
    let _: () = redis::cmd("SET").arg("m").arg("v").arg("EX").arg(300).query_async(&mut c).await.unwrap();
    let n: i64 = redis::cmd("MOVE").arg("m").arg(3).query_async(&mut c).await.unwrap();
    assert_eq!(n, 1);
    assert!(!c.exists::<_, bool>("m").await.unwrap());
    assert_eq!(c3.get::<_, String>("m").await.unwrap(), "v");
    let ttl: i64 = c3.ttl("m").await.unwrap();
    assert!(ttl > 290 && ttl <= 300, "MOVE keeps the TTL: {ttl}");
    // Refused when the key exists in the target database.
    let _: () = c.set("m", "again").await.unwrap();
    let n: i64 = redis::cmd("MOVE").arg("m").arg(3).query_async(&mut c).await.unwrap();
    assert_eq!(n, 0);
    assert_eq!(c.get::<_, String>("m").await.unwrap(), "again");
    assert_eq!(c3.get::<_, String>("m").await.unwrap(), "v");
}

#[tokio::test]
async fn swapdb_is_seen_by_clients_of_both_databases() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c0 = s.conn().await;
    let mut c1 = conn_db(&s, 1).await;
    for i in 0..20 {
        let _: () = c0.set(format!("zero:{i}"), 0).await.unwrap();
    }
    let _: () = redis::cmd("SET").arg("one").arg(1).arg("EX").arg(100).query_async(&mut c1).await.unwrap();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query_async(&mut c0).await.unwrap();
    assert_eq!(dbsize(&mut c0).await, 1);
    assert_eq!(dbsize(&mut c1).await, 20);
    assert_eq!(c0.get::<_, i64>("one").await.unwrap(), 1);
    assert!(c0.ttl::<_, i64>("one").await.unwrap() > 0, "TTLs travel with the database");
    assert_eq!(c1.get::<_, i64>("zero:7").await.unwrap(), 0);
    // Writes after the swap land in the swapped database.
    let _: () = c0.set("after", 1).await.unwrap();
    let _: () = redis::cmd("SWAPDB").arg(1).arg(0).query_async(&mut c1).await.unwrap();
    assert_eq!(c1.get::<_, Option<i64>>("after").await.unwrap(), Some(1));
    assert_eq!(dbsize(&mut c0).await, 20);
}

/// Database 0 holds "a" in 16 keys over every shard, database 1 holds "b".
/// While one client swaps them over and over, readers' MGETs must always see
/// one database whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapdb_is_atomic_for_readers() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys: Vec<String> = (0..16).map(|i| format!("swap:{i}")).collect();
    {
        let mut c0 = s.conn().await;
        let mut c1 = conn_db(&s, 1).await;
        let a: Vec<(String, &str)> = keys.iter().map(|k| (k.clone(), "a")).collect();
        let b: Vec<(String, &str)> = keys.iter().map(|k| (k.clone(), "b")).collect();
        let _: () = c0.mset(&a).await.unwrap();
        let _: () = c1.mset(&b).await.unwrap();
    }
    let swapper = {
        let client = s.client();
        tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for _ in 0..300 {
                let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query_async(&mut c).await.unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (client, keys) = (s.client(), keys.clone());
        readers.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let (mut torn, mut seen) = (0, HashSet::new());
            for _ in 0..300 {
                let vals: Vec<String> = c.mget(&keys).await.unwrap();
                if vals.iter().any(|v| *v != vals[0]) {
                    torn += 1;
                }
                seen.insert(vals[0].clone());
            }
            (torn, seen)
        }));
    }
    swapper.await.unwrap();
    let mut seen_all = HashSet::new();
    for r in readers {
        let (torn, seen) = r.await.unwrap();
        assert_eq!(torn, 0, "a reader saw a half-swapped keyspace");
        seen_all.extend(seen);
    }
    assert!(seen_all.iter().all(|v| v == "a" || v == "b"));
}
