//! Sorted sets across shards: multi-key commands whose keys live on
//! different shards, concurrent ZINCRBY counting exactly, and stores into
//! each other's sources that never deadlock.

use std::collections::{BTreeMap, HashMap};

use damselfly_tests::Server;
use redis::AsyncCommands;

/// Multi-key commands whose keys live on different shards.
#[tokio::test]
async fn multi_key_commands_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    // Keys without hash tags: spread over the shards.
    let keys: Vec<String> = (0..6).map(|i| format!("zs:{i}")).collect();
    let mut model: Vec<BTreeMap<String, f64>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let mut m = BTreeMap::new();
        for j in 0..200 {
            if (j + i) % (i + 2) == 0 {
                let score = (j * (i + 1)) as f64 / 4.0;
                m.insert(format!("m{j}"), score);
                let _: () = c.zadd(k, format!("m{j}"), score).await.unwrap();
            }
        }
        model.push(m);
    }
    let sort = |m: HashMap<String, f64>| {
        let mut v: Vec<(String, f64)> = m.into_iter().collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    };
    // Union with weights.
    let mut union: HashMap<String, f64> = HashMap::new();
    for (i, m) in model.iter().enumerate() {
        for (k, v) in m {
            *union.entry(k.clone()).or_insert(0.0) += v * (i + 1) as f64;
        }
    }
    let want_union = sort(union);
    let got: Vec<(String, f64)> =
        redis::cmd("ZUNION").arg(6).arg(&keys).arg("WEIGHTS").arg(&[1, 2, 3, 4, 5, 6]).arg("WITHSCORES").query_async(&mut c).await.unwrap();
    assert_eq!(got, want_union);
    let n: usize =
        redis::cmd("ZUNIONSTORE").arg("dst:u").arg(6).arg(&keys).arg("WEIGHTS").arg(&[1, 2, 3, 4, 5, 6]).query_async(&mut c).await.unwrap();
    assert_eq!(n, want_union.len());
    let stored: Vec<(String, f64)> = c.zrange_withscores("dst:u", 0, -1).await.unwrap();
    assert_eq!(stored, want_union);
    // Intersection of the first three, aggregate MAX.
    let mut inter: HashMap<String, f64> = HashMap::new();
    for (k, v) in &model[0] {
        if model[1].contains_key(k) && model[2].contains_key(k) {
            inter.insert(k.clone(), v.max(model[1][k]).max(model[2][k]));
        }
    }
    let want_inter = sort(inter);
    let got: Vec<(String, f64)> =
        redis::cmd("ZINTER").arg(3).arg(&keys[..3]).arg("AGGREGATE").arg("MAX").arg("WITHSCORES").query_async(&mut c).await.unwrap();
    assert_eq!(got, want_inter);
    let n: usize =
        redis::cmd("ZINTERSTORE").arg("dst:i").arg(3).arg(&keys[..3]).arg("AGGREGATE").arg("MAX").query_async(&mut c).await.unwrap();
    assert_eq!(n, want_inter.len());
    let card: usize = redis::cmd("ZINTERCARD").arg(3).arg(&keys[..3]).query_async(&mut c).await.unwrap();
    assert_eq!(card, want_inter.len());
    let card: usize = redis::cmd("ZINTERCARD").arg(3).arg(&keys[..3]).arg("LIMIT").arg(2).query_async(&mut c).await.unwrap();
    assert_eq!(card, want_inter.len().min(2));
    // Difference: first minus the others.
    let diff: HashMap<String, f64> =
        model[0].iter().filter(|(k, _)| model[1..].iter().all(|m| !m.contains_key(*k))).map(|(k, v)| (k.clone(), *v)).collect();
    let want_diff = sort(diff);
    let got: Vec<(String, f64)> = redis::cmd("ZDIFF").arg(6).arg(&keys).arg("WITHSCORES").query_async(&mut c).await.unwrap();
    assert_eq!(got, want_diff);
    let n: usize = redis::cmd("ZDIFFSTORE").arg("dst:d").arg(6).arg(&keys).query_async(&mut c).await.unwrap();
    assert_eq!(n, want_diff.len());
    // ZRANGESTORE from one shard to another (try several destinations).
    for d in ["rs:a", "rs:b", "rs:c", "rs:d"] {
        let n: usize = redis::cmd("ZRANGESTORE").arg(d).arg(&keys[1]).arg(0).arg(9).query_async(&mut c).await.unwrap();
        assert_eq!(n, 10);
        let got: Vec<(String, f64)> = c.zrange_withscores(d, 0, -1).await.unwrap();
        let want: Vec<(String, f64)> = c.zrange_withscores(&keys[1], 0, 9).await.unwrap();
        assert_eq!(got, want);
    }
    // A wrong type anywhere is refused and nothing is written.
    let _: () = c.set("zs:str", "x").await.unwrap();
    let r: redis::RedisResult<usize> = redis::cmd("ZUNIONSTORE").arg("dst:w").arg(2).arg(&keys[0]).arg("zs:str").query_async(&mut c).await;
    assert!(r.unwrap_err().to_string().contains("WRONGTYPE"));
    assert!(!c.exists::<_, bool>("dst:w").await.unwrap());
    // An empty result deletes the destination.
    let n: usize = redis::cmd("ZINTERSTORE").arg("dst:u").arg(2).arg(&keys[0]).arg("zs:none").query_async(&mut c).await.unwrap();
    assert_eq!(n, 0);
    assert!(!c.exists::<_, bool>("dst:u").await.unwrap());
}

/// 20 clients increment the same members concurrently: scores are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_zincrby_is_exact() {
    let s = Server::start_with(&["--shards", "4"]);
    const CLIENTS: usize = 20;
    const OPS: usize = 250;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            for j in 0..OPS {
                let _: f64 = c.zincr("board", "hot", 1).await.unwrap();
                let _: f64 = c.zincr("board", format!("m{}", (i + j) % 7), 0.5).await.unwrap();
                // Another set on (most likely) another shard.
                let _: f64 = c.zincr("board:2", "hot", 2).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    assert_eq!(c.zscore::<_, _, f64>("board", "hot").await.unwrap(), (CLIENTS * OPS) as f64);
    assert_eq!(c.zscore::<_, _, f64>("board:2", "hot").await.unwrap(), (2 * CLIENTS * OPS) as f64);
    let all: Vec<(String, f64)> = c.zrange_withscores("board", 0, -1).await.unwrap();
    let halves: f64 = all.iter().filter(|(m, _)| m != "hot").map(|(_, s)| s).sum();
    assert_eq!(halves, (CLIENTS * OPS) as f64 * 0.5);
    let top: Vec<String> = c.zrevrange("board", 0, 0).await.unwrap();
    assert_eq!(top, vec!["hot".to_string()]);
}

/// Clients storing into each other's sources across shards, in opposite
/// orders, while others read them all: shards are locked in one global
/// order, so this never deadlocks, and every set keeps the same members.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_shard_stores_do_not_deadlock() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys: Vec<String> = (0..4).map(|i| format!("ring:{i}")).collect();
    {
        let mut c = s.conn().await;
        for k in &keys {
            let _: usize = c.zadd_multiple(k, &[(1, "a"), (2, "b"), (3, "c")]).await.unwrap();
        }
    }
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (client, keys) = (s.client(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            for round in 0..100usize {
                let dst = &keys[(w + round) % 4];
                let (x, y) = (&keys[(w + 1) % 4], &keys[(w + 3) % 4]);
                let cmd = if round % 2 == 0 { "ZUNIONSTORE" } else { "ZINTERSTORE" };
                let n: usize = redis::cmd(cmd).arg(dst).arg(2).arg(x).arg(y).arg("AGGREGATE").arg("MAX").query_async(&mut c).await.unwrap();
                assert_eq!(n, 3);
                let n: usize = redis::cmd("ZRANGESTORE").arg(y).arg(x).arg(0).arg(-1).query_async(&mut c).await.unwrap();
                assert_eq!(n, 3);
            }
            0usize
        }));
    }
    for _ in 0..2 {
        let (client, keys) = (s.client(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let mut bad = 0;
            for _ in 0..200 {
                let n: usize = redis::cmd("ZINTERCARD").arg(4).arg(&keys).query_async(&mut c).await.unwrap();
                let u: Vec<String> = redis::cmd("ZUNION").arg(4).arg(&keys).query_async(&mut c).await.unwrap();
                if n != 3 || u.len() != 3 {
                    bad += 1;
                }
            }
            bad
        }));
    }
    let mut bad = 0;
    for t in tasks {
        bad += t.await.unwrap();
    }
    assert_eq!(bad, 0, "a reader saw a set without all its members");
}
