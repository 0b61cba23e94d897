//! String commands through redis-rs, plus concurrency: counters hammered by
//! many clients must count exactly, and MSET must never be seen half done.

use damselfly_tests::Server;
use redis::AsyncCommands;

#[tokio::test]
async fn set_options_and_get_family() {
    let s = Server::start();
    let mut c = s.conn().await;
    let _: () = c.set("k", "v1").await.unwrap();
    let old: Option<String> = redis::cmd("SET").arg("k").arg("v2").arg("GET").query_async(&mut c).await.unwrap();
    assert_eq!(old.as_deref(), Some("v1"));
    let r: Option<String> = redis::cmd("SET").arg("k").arg("v3").arg("NX").query_async(&mut c).await.unwrap();
    assert_eq!(r, None);
    let r: Option<String> = redis::cmd("SET").arg("absent").arg("v").arg("XX").query_async(&mut c).await.unwrap();
    assert_eq!(r, None);
    let _: () = redis::cmd("SET").arg("k").arg("v4").arg("PX").arg(100_000).query_async(&mut c).await.unwrap();
    let pttl: i64 = c.pttl("k").await.unwrap();
    assert!(pttl > 99_000 && pttl <= 100_000, "{pttl}");
    let _: () = redis::cmd("SET").arg("k").arg("v5").arg("KEEPTTL").query_async(&mut c).await.unwrap();
    let ttl: i64 = c.ttl("k").await.unwrap();
    assert!(ttl > 98, "KEEPTTL kept the TTL: {ttl}");
    let _: () = c.set("k", "v6").await.unwrap();
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), -1, "plain SET clears the TTL");

    assert_eq!(c.getset::<_, _, String>("k", "v7").await.unwrap(), "v6");
    assert_eq!(c.get_del::<_, String>("k").await.unwrap(), "v7");
    assert!(!c.exists::<_, bool>("k").await.unwrap());
    assert!(c.set_nx::<_, _, bool>("nx", "1").await.unwrap());
    assert!(!c.set_nx::<_, _, bool>("nx", "2").await.unwrap());
    let _: () = c.set_ex("ex", "v", 50).await.unwrap();
    assert!(c.ttl::<_, i64>("ex").await.unwrap() > 0);
    let _: () = c.pset_ex("pex", "v", 50_000).await.unwrap();
    assert!(c.pttl::<_, i64>("pex").await.unwrap() > 0);
    let v: String = redis::cmd("GETEX").arg("pex").arg("PERSIST").query_async(&mut c).await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(c.ttl::<_, i64>("pex").await.unwrap(), -1);
}

#[tokio::test]
async fn counters_and_ranges() {
    let s = Server::start();
    let mut c = s.conn().await;
    assert_eq!(c.incr::<_, _, i64>("n", 1).await.unwrap(), 1);
    assert_eq!(c.incr::<_, _, i64>("n", 10).await.unwrap(), 11);
    assert_eq!(c.decr::<_, _, i64>("n", 5).await.unwrap(), 6);
    let f: String = redis::cmd("INCRBYFLOAT").arg("f").arg("10.5").query_async(&mut c).await.unwrap();
    assert_eq!(f, "10.5");
    let f: String = redis::cmd("INCRBYFLOAT").arg("f").arg("0.1").query_async(&mut c).await.unwrap();
    assert_eq!(f, "10.6");
    // Decimal sums print as Redis's long double arithmetic shows them,
    // not with binary-float noise (0.30000000000000004).
    for (incr, want) in [("0.1", "0.1"), ("0.2", "0.3"), ("-1.4", "-1.1"), ("1.1", "0"), ("5.0e3", "5000"), ("-2.0e2", "4800")] {
        let f: String = redis::cmd("INCRBYFLOAT").arg("price").arg(incr).query_async(&mut c).await.unwrap();
        assert_eq!(f, want, "INCRBYFLOAT price {incr}");
    }
    let f: String = redis::cmd("HINCRBYFLOAT").arg("cart").arg("total").arg("19.99").query_async(&mut c).await.unwrap();
    assert_eq!(f, "19.99");
    let f: String = redis::cmd("HINCRBYFLOAT").arg("cart").arg("total").arg("0.02").query_async(&mut c).await.unwrap();
    assert_eq!(f, "20.01");
    assert_eq!(c.append::<_, _, i64>("s", "Hello").await.unwrap(), 5);
    assert_eq!(c.append::<_, _, i64>("s", " World").await.unwrap(), 11);
    assert_eq!(c.strlen::<_, i64>("s").await.unwrap(), 11);
    assert_eq!(c.getrange::<_, String>("s", 0, 4).await.unwrap(), "Hello");
    assert_eq!(c.getrange::<_, String>("s", -5, -1).await.unwrap(), "World");
    assert_eq!(c.setrange::<_, _, i64>("s", 6, "Redis").await.unwrap(), 11);
    assert_eq!(c.get::<_, String>("s").await.unwrap(), "Hello Redis");
    assert_eq!(c.setrange::<_, _, i64>("pad", 3, "x").await.unwrap(), 4);
    assert_eq!(c.get::<_, Vec<u8>>("pad").await.unwrap(), b"\0\0\0x");
}

#[tokio::test]
async fn multi_key_commands_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let pairs: Vec<(String, String)> = (0..50).map(|i| (format!("mk:{i}"), format!("v{i}"))).collect();
    let _: () = c.mset(&pairs).await.unwrap();
    let keys: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
    let vals: Vec<String> = c.mget(&keys).await.unwrap();
    assert_eq!(vals, pairs.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
    assert_eq!(c.exists::<_, i64>(&keys).await.unwrap(), 50);
    let ok: bool = c.mset_nx(&[("mk:0", "x"), ("fresh", "y")]).await.unwrap();
    assert!(!ok, "MSETNX must not set anything when one key exists");
    assert!(!c.exists::<_, bool>("fresh").await.unwrap());
    let ok: bool = c.mset_nx(&[("fresh1", "x"), ("fresh2", "y"), ("fresh3", "z")]).await.unwrap();
    assert!(ok);
    assert_eq!(c.del::<_, i64>(&keys).await.unwrap(), 50);
    assert_eq!(c.exists::<_, i64>(&keys).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_incr_decr_count_exactly() {
    let s = Server::start();
    const CLIENTS: i64 = 50;
    const OPS: i64 = 200;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for _ in 0..OPS {
                let _: i64 = c.incr("counter", 1).await.unwrap();
                if i % 2 == 0 {
                    let _: i64 = c.decr("stock", 1).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    assert_eq!(c.get::<_, i64>("counter").await.unwrap(), CLIENTS * OPS);
    assert_eq!(c.get::<_, i64>("stock").await.unwrap(), -(CLIENTS / 2) * OPS);
}

/// Writers MSET a group of keys spread over every shard to the same value;
/// readers MGET the group and must always see all values equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mset_is_atomic_for_concurrent_readers() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys: Vec<String> = (0..16).map(|i| format!("atomic:{i}")).collect();
    {
        let mut c = s.conn().await;
        let init: Vec<(String, i64)> = keys.iter().map(|k| (k.clone(), 0)).collect();
        let _: () = c.mset(&init).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (client, keys) = (s.client(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for round in 0..300 {
                let v = w * 1000 + round;
                let pairs: Vec<(String, i64)> = keys.iter().map(|k| (k.clone(), v)).collect();
                let _: () = c.mset(&pairs).await.unwrap();
            }
            0usize
        }));
    }
    for _ in 0..4 {
        let (client, keys) = (s.client(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut torn = 0;
            for _ in 0..300 {
                let vals: Vec<i64> = c.mget(&keys).await.unwrap();
                if vals.iter().any(|v| *v != vals[0]) {
                    torn += 1;
                }
            }
            torn
        }));
    }
    let mut torn = 0;
    for t in tasks {
        torn += t.await.unwrap();
    }
    assert_eq!(torn, 0, "a reader saw a half-applied MSET");
}

/// A malformed MSET whose keys span shards must be refused whole, never
/// half applied.
#[test]
fn malformed_mset_sets_nothing() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let mut args = vec!["MSET"];
    let keys: Vec<String> = (0..9).map(|i| format!("odd:{i}")).collect();
    for k in &keys {
        args.push(k);
        args.push("v");
    }
    args.pop();
    assert_eq!(c.cmd(&args), "-ERR wrong number of arguments for 'mset' command\r\n");
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(|k| k.as_str()));
    assert_eq!(c.cmd(&exists), ":0\r\n");
    assert_eq!(c.cmd(&["MSETNX", "a", "1", "b"]), "-ERR wrong number of arguments for 'msetnx' command\r\n");
}

/// LCS with Redis's documented example, on keys of two shards; exact
/// replies in RESP2 and RESP3.
#[test]
fn lcs_replies() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["MSET", "key1", "ohmytext", "key2", "mynewtext", "h", "x"]), "+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "hash", "f", "v"]), ":1\r\n");
    let idx = "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n";
    let cases: &[(&[&str], &str)] = &[
        (&["LCS", "key1", "key2"], "$6\r\nmytext\r\n"),
        (&["LCS", "key1", "key2", "LEN"], ":6\r\n"),
        (&["LCS", "key1", "key2", "IDX"], idx),
        (
            &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
            "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n",
        ),
        (&["LCS", "key1", "nokey"], "$0\r\n\r\n"),
        (&["LCS", "key1", "key2", "LEN", "IDX"], "-ERR If you want both the length and indexes, please just use IDX.\r\n"),
        (&["LCS", "key1", "key2", "MINMATCHLEN"], "-ERR syntax error\r\n"),
        (&["LCS", "key1", "hash"], "-ERR The specified keys must contain string values\r\n"),
        // The keys' types are checked before the options.
        (&["LCS", "key1", "hash", "MINMATCHLEN", "x"], "-ERR The specified keys must contain string values\r\n"),
        (&["LCS", "key1", "hash", "BAD"], "-ERR The specified keys must contain string values\r\n"),
        (&["LCS", "key1", "key2", "MINMATCHLEN", "x"], "-ERR value is not an integer or out of range\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    assert!(c.cmd(&["LCS", "key1", "key2", "IDX"]).starts_with("%2\r\n$7\r\nmatches\r\n"));
}

/// Which error wins when several apply, as redis-server 7 decides (found
/// by the differential test).
#[test]
fn error_precedence() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["HSET", "h", "f", "v"], ":1\r\n"),
        // GETEX validates the expire time only for an existing string.
        (&["GETEX", "nokey", "EX", "0"], "$-1\r\n"),
        (&["GETEX", "h", "EX", "0"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["SET", "s", "v"], "+OK\r\n"),
        (&["GETEX", "s", "EX", "0"], "-ERR invalid expire time in 'getex' command\r\n"),
        (&["GETEX", "s", "PX", "x"], "-ERR value is not an integer or out of range\r\n"),
        (&["GETEX", "s", "EX", "100"], "$1\r\nv\r\n"),
        // SET checks all its syntax before the expire time.
        (&["SET", "s", "v", "PX", "-5", "KEEPTTL"], "-ERR syntax error\r\n"),
        (&["SET", "s", "v", "EX", "abc", "PX", "100"], "-ERR syntax error\r\n"),
        (&["SET", "s", "v", "EX", "0"], "-ERR invalid expire time in 'set' command\r\n"),
        // INCRBYFLOAT checks the key's type before the increment.
        (&["INCRBYFLOAT", "h", "nan"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["INCRBYFLOAT", "s", "1"], "-ERR value is not a valid float\r\n"),
        (&["INCRBYFLOAT", "nokey", "nan"], "-ERR value is not a valid float\r\n"),
        // Floats parse as strtod parses them, hexadecimal included.
        (&["SET", "hex", "0x10"], "+OK\r\n"),
        (&["INCRBYFLOAT", "hex", "0x1p-2"], "$5\r\n16.25\r\n"),
        (&["HSET", "hh", "f", "0x10"], ":1\r\n"),
        (&["HINCRBYFLOAT", "hh", "f", "1"], "$2\r\n17\r\n"),
        (&["ZADD", "z", "0X1E", "m"], ":1\r\n"),
        (&["ZSCORE", "z", "m"], "$2\r\n30\r\n"),
        (&["ZADD", "z", "0x1g", "m"], "-ERR value is not a valid float\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }
}
