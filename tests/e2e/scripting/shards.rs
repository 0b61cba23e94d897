//! Scripts whose keys span shards: undeclared keys on another shard stay
//! atomic (the fast path rolls back and the script runs again under the
//! wide lock), transfers between declared keys on several shards, scripts
//! inside MULTI/EXEC, and scripts in pipelines keeping every reply's place.
//!
//! With `--shards 4`, `{a}` lives on shard 3, `{b}` on shard 0 and `{c}`
//! on shard 1 (slot % 4).

use damselfly_tests::Server;
use redis::AsyncCommands;

/// Scripts declare one key (shard 3) but also increment an undeclared key on
/// another shard (shard 0). Each run is a new script, so each starts on the
/// fast path, writes its declared key, then reaches the other shard: that
/// write must be rolled back and the script run again under the wide lock.
/// Readers (MGET, atomic across shards) must never see the two differ, and
/// no increment may be lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undeclared_keys_on_other_shards_stay_atomic() {
    let s = Server::start_with(&["--shards", "4"]);
    let (declared, undeclared) = ("cnt:{a}", "cnt:{b}");
    const WRITERS: usize = 6;
    const PER: usize = 40;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut bad = 0;
            for i in 0..PER {
                let body = format!(
                    "-- run {w}.{i}\nlocal a = redis.call('INCR', KEYS[1])\nlocal b = redis.call('INCR', ARGV[1])\nif a ~= b then return redis.error_reply('TORN ' .. a .. ' ' .. b) end\nreturn a"
                );
                let r: redis::RedisResult<i64> = redis::cmd("EVAL").arg(body).arg(1).arg(declared).arg(undeclared).query_async(&mut c).await;
                if r.is_err() {
                    bad += 1;
                }
            }
            bad
        }));
    }
    for _ in 0..3 {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut bad = 0;
            for _ in 0..300 {
                let (x, y): (Option<i64>, Option<i64>) =
                    redis::cmd("MGET").arg(declared).arg(undeclared).query_async(&mut c).await.unwrap();
                if x != y {
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
    assert_eq!(bad, 0, "a script was torn or a reader saw half of one");
    let mut c = s.conn().await;
    let (x, y): (i64, i64) = redis::cmd("MGET").arg(declared).arg(undeclared).query_async(&mut c).await.unwrap();
    assert_eq!((x, y), ((WRITERS * PER) as i64, (WRITERS * PER) as i64));
    // A known script: after its first escalation it goes straight to wide mode.
    let body = "redis.call('INCR', KEYS[1]) return redis.call('INCR', ARGV[1])";
    for _ in 0..5 {
        let _: i64 = redis::cmd("EVAL").arg(body).arg(1).arg(declared).arg(undeclared).query_async(&mut c).await.unwrap();
    }
    let (x, y): (i64, i64) = redis::cmd("MGET").arg(declared).arg(undeclared).query_async(&mut c).await.unwrap();
    assert_eq!(x, y);
    // Connection-level commands inside a script reach every shard.
    let n: i64 = redis::cmd("EVAL").arg("return redis.call('DBSIZE')").arg(0).query_async(&mut c).await.unwrap();
    assert_eq!(n, 2);
    let keys: Vec<String> = redis::cmd("EVAL").arg("return redis.call('KEYS', 'cnt:*')").arg(0).query_async(&mut c).await.unwrap();
    assert_eq!(keys.len(), 2);
    let moved: String = redis::cmd("EVAL")
        .arg("redis.call('RENAME', KEYS[1], KEYS[2]) return redis.call('GET', KEYS[2])")
        .arg(2)
        .arg(declared)
        .arg("moved:{c}")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(moved, (WRITERS * PER + 5).to_string());
}

/// Transfers between declared keys on different shards, concurrently with
/// readers: the total never changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_shard_declared_keys() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys = ["bal:{a}", "bal:{b}", "bal:{c}"];
    let transfer = "local n = tonumber(ARGV[1]) redis.call('DECRBY', KEYS[1], n) redis.call('INCRBY', KEYS[2], n) return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])";
    {
        let mut c = s.conn().await;
        let _: () = c.mset(&[(keys[0], 1000), (keys[1], 1000), (keys[2], 1000)]).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for i in 0..100 {
                let (from, to, rest) = (keys[(w + i) % 3], keys[(w + i + 1) % 3], keys[(w + i + 2) % 3]);
                let v: Vec<i64> =
                    redis::cmd("EVAL").arg(transfer).arg(3).arg(from).arg(to).arg(rest).arg(7).query_async(&mut c).await.unwrap();
                assert_eq!(v.iter().sum::<i64>(), 3000);
            }
            0
        }));
    }
    for _ in 0..3 {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut bad = 0;
            for _ in 0..200 {
                let v: Vec<i64> = redis::cmd("MGET").arg(&keys[..]).query_async(&mut c).await.unwrap();
                if v.iter().sum::<i64>() != 3000 {
                    bad += 1;
                }
                let v: Vec<i64> = redis::cmd("EVAL_RO")
                    .arg("return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])")
                    .arg(3)
                    .arg(&keys[..])
                    .query_async(&mut c)
                    .await
                    .unwrap();
                if v.iter().sum::<i64>() != 3000 {
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
    assert_eq!(bad, 0);
}

#[test]
fn scripts_inside_multi_exec() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "m:{a}", "1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "m:{a}"]), "+QUEUED\r\n");
    assert_eq!(
        c.cmd(&["EVAL", "redis.call('SET', 'm:{b}', 'x') return redis.call('MGET', KEYS[1], 'm:{b}')", "1", "m:{a}"]),
        "+QUEUED\r\n"
    );
    assert_eq!(c.cmd(&["EVAL", "return redis.call('INCR', 'm:{b}')", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["GET", "m:{a}"]), "+QUEUED\r\n");
    assert_eq!(
        c.cmd(&["EXEC"]),
        "*5\r\n+OK\r\n:2\r\n*2\r\n$1\r\n2\r\n$1\r\nx\r\n-ERR value is not an integer or out of range script: 4f1d0bb7b46cb3d0ab3df49ddb4e4ef4b85dc2b3, on @user_script:1.\r\n$1\r\n2\r\n"
            .replace("4f1d0bb7b46cb3d0ab3df49ddb4e4ef4b85dc2b3", &sha_of(&s, "return redis.call('INCR', 'm:{b}')"))
    );
    // EVALSHA of an unknown script inside MULTI fails at EXEC time.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n-NOSCRIPT No matching script. Please use EVAL.\r\n");
    // WATCH sees writes made by scripts.
    assert_eq!(c.cmd(&["WATCH", "m:{c}"]), "+OK\r\n");
    let mut other = s.raw();
    assert_eq!(other.cmd(&["EVAL", "return redis.call('SET', KEYS[1], 'changed')", "1", "m:{c}"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "m:{c}"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*-1\r\n");
}

/// Scripts in a pipeline, among commands for their shard and others: one
/// that reaches another shard mid-batch is handed back to the connection
/// and run under the wide lock, and every reply keeps its place and order.
#[test]
fn pipelined_scripts_keep_order() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let reach = "redis.call('INCR', KEYS[1]) redis.call('SET', 'p:{b}', redis.call('GET', KEYS[1])) return redis.call('GET', KEYS[1])";
    let cmds: Vec<Vec<&str>> = vec![
        vec!["SET", "p:{a}", "1"],
        vec!["SET", "p:{b}", "old"],
        vec!["EVAL", reach, "1", "p:{a}"],
        vec!["INCR", "p:{a}"],
        vec!["EVAL", "return redis.call('GET', KEYS[1])", "1", "p:{a}"],
        vec!["GET", "p:{b}"],
        vec!["EVAL", "return redis.call('GET', 'p:{b}')", "1", "p:{a}"],
        vec!["SET", "p:{c}", "z"],
        vec!["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "1", "p:{a}"],
        vec!["GET", "p:{a}"],
    ];
    let mut req = Vec::new();
    for cmd in &cmds {
        req.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in cmd {
            req.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
        }
    }
    c.send(&req);
    let replies: Vec<String> = (0..cmds.len()).map(|_| String::from_utf8_lossy(&c.read_reply()).into_owned()).collect();
    assert_eq!(
        replies,
        vec![
            "+OK\r\n",
            "+OK\r\n",
            "$1\r\n2\r\n",
            ":3\r\n",
            "$1\r\n3\r\n",
            "$1\r\n2\r\n",
            "$1\r\n2\r\n",
            "+OK\r\n",
            "-NOSCRIPT No matching script. Please use EVAL.\r\n",
            "$1\r\n3\r\n",
        ]
    );
}

fn sha_of(s: &Server, body: &str) -> String {
    let mut r = s.raw();
    r.cmd(&["SCRIPT", "LOAD", body]).lines().nth(1).unwrap_or_default().to_string()
}

/// A pipeline of local commands with a script that reaches an undeclared key
/// on the other shard: the script is rolled back and re-run under the wide
/// lock, and every reply and effect keeps its order. Two connections are
/// used so that one of them runs on the declared key's own shard (where the
/// whole pipeline is local).
#[test]
fn pipelined_script_touching_another_shard_keeps_order() {
    let s = Server::start_with(&["--shards", "2"]);
    // Different shards: CRC16 slots 12706 and 449 differ mod 2.
    let (a, b) = ("k1".to_string(), "k2".to_string());
    let script = "redis.call('SET', KEYS[1], 'x'); return redis.call('INCR', ARGV[1])";
    for round in 0..2 {
        let mut c = s.raw();
        let mut req = Vec::new();
        for args in [
            vec!["SET".to_string(), a.clone(), "before".into()],
            vec!["EVAL".into(), script.into(), "1".into(), a.clone(), b.clone()],
            vec!["GET".into(), a.clone()],
            vec!["GET".into(), b.clone()],
        ] {
            req.extend(format!("*{}\r\n", args.len()).into_bytes());
            for x in &args {
                req.extend(format!("${}\r\n{x}\r\n", x.len()).into_bytes());
            }
        }
        c.send(&req);
        assert_eq!(c.read_reply(), b"+OK\r\n");
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), format!(":{}\r\n", round + 1));
        assert_eq!(c.read_reply(), b"$1\r\nx\r\n");
        let n = (round + 1).to_string();
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), format!("${}\r\n{n}\r\n", n.len()));
    }
}
