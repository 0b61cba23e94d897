//! MULTI/EXEC/DISCARD/WATCH against a real process: exact replies, error
//! handling, WATCH invalidation (writes, expiry, flush), and atomicity under
//! concurrent clients across shards.

use std::time::Duration;

use damselfly_tests::{Raw, Redis, Server};
use redis::AsyncCommands;

#[test]
fn queued_replies_and_errors() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["EXEC"], "-ERR EXEC without MULTI\r\n"),
        (&["DISCARD"], "-ERR DISCARD without MULTI\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["MULTI"], "-ERR MULTI calls can not be nested\r\n"),
        (&["SET", "a", "1"], "+QUEUED\r\n"),
        (&["INCR", "a"], "+QUEUED\r\n"),
        (&["MSET", "b", "x", "c", "y"], "+QUEUED\r\n"),
        (&["INCR", "b"], "+QUEUED\r\n"),
        (&["MGET", "a", "b", "c"], "+QUEUED\r\n"),
        (&["WATCH", "a"], "-ERR WATCH inside MULTI is not allowed\r\n"),
        (&["EXEC"], "*5\r\n+OK\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n*3\r\n$1\r\n2\r\n$1\r\nx\r\n$1\r\ny\r\n"),
        // A queue-time error aborts the whole transaction.
        (&["MULTI"], "+OK\r\n"),
        (&["SET", "a", "changed"], "+QUEUED\r\n"),
        (&["GET"], "-ERR wrong number of arguments for 'get' command\r\n"),
        (&["NOSUCH"], "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"),
        (&["EXEC"], "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        (&["GET", "a"], "$1\r\n2\r\n"),
        // DISCARD drops the queue.
        (&["MULTI"], "+OK\r\n"),
        (&["SET", "a", "discarded"], "+QUEUED\r\n"),
        (&["DISCARD"], "+OK\r\n"),
        (&["GET", "a"], "$1\r\n2\r\n"),
        // Connection-level commands queue and run in order.
        (&["MULTI"], "+OK\r\n"),
        (&["SELECT", "1"], "+QUEUED\r\n"),
        (&["SET", "a", "db1"], "+QUEUED\r\n"),
        (&["DBSIZE"], "+QUEUED\r\n"),
        (&["EXEC"], "*3\r\n+OK\r\n+OK\r\n:1\r\n"),
        (&["GET", "a"], "$3\r\ndb1\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["EXEC"], "*0\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

/// FLUSHDB, FLUSHALL and SWAPDB against WATCH: (setup by another client,
/// what the watcher watches, the flush or swap, EXEC's reply). As in Redis,
/// only watched keys that exist in the flushed database (or in either
/// swapped one) are touched.
type Cmd = &'static [&'static str];

const FLUSH_WATCH: &[(&[Cmd], &str, Cmd, &str)] = &[
    (&[&["DEL", "x"]], "x", &["FLUSHALL"], "*1\r\n+PONG\r\n"),
    (&[&["DEL", "x"]], "x", &["FLUSHDB"], "*1\r\n+PONG\r\n"),
    (&[&["SET", "x", "1"]], "x", &["FLUSHDB"], "*-1\r\n"),
    (&[&["SET", "x", "1"]], "x", &["FLUSHALL"], "*-1\r\n"),
    (&[&["SET", "y", "1"]], "x", &["FLUSHALL"], "*1\r\n+PONG\r\n"),
    (&[&["DEL", "x"]], "x", &["SWAPDB", "0", "1"], "*1\r\n+PONG\r\n"),
    (&[&["SET", "x", "1"]], "x", &["SWAPDB", "0", "1"], "*-1\r\n"),
    (&[&["SELECT", "1"], &["SET", "x", "1"], &["SELECT", "0"]], "x", &["SWAPDB", "0", "1"], "*-1\r\n"),
];

fn flush_watch(port: u16) -> Vec<String> {
    let (mut a, mut b) = (Raw::connect(port), Raw::connect(port));
    let mut got = Vec::new();
    for (setup, key, flush, _) in FLUSH_WATCH {
        assert_eq!(b.cmd(&["FLUSHALL"]), "+OK\r\n");
        for c in *setup {
            b.cmd(c);
        }
        assert_eq!(a.cmd(&["WATCH", key]), "+OK\r\n");
        assert_eq!(b.cmd(flush), "+OK\r\n");
        assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(a.cmd(&["PING"]), "+QUEUED\r\n");
        got.push(a.cmd(&["EXEC"]));
    }
    got
}

/// WATCH and keys whose TTL passes, with active expiry off (Redis 7.0's
/// rules): (setup, the watched key, what happens between WATCH and EXEC,
/// EXEC's reply). `["SLEEP", ms]` waits, the clock being what the TTLs
/// wait for. A key watched while live that expires fails EXEC though
/// nothing deleted it; a key already expired when watched ("stale")
/// changes nothing by being deleted, flushed or swapped with a missing or
/// expired key, and is changed by being written.
const STALE_WATCH: &[(&[Cmd], &str, &[Cmd], &str)] = &[
    (&[&["SET", "x", "1", "PX", "20"]], "x", &[&["SLEEP", "40"]], "*-1\r\n"),
    (&[&["SET", "x", "1", "PX", "1"], &["SLEEP", "10"]], "x", &[], "*1\r\n+PONG\r\n"),
    (&[&["SET", "x", "1", "PX", "1"], &["SLEEP", "10"]], "x", &[&["DEL", "x"]], "*1\r\n+PONG\r\n"),
    (&[&["SET", "x", "1", "PX", "1"], &["SLEEP", "10"]], "x", &[&["FLUSHDB"]], "*1\r\n+PONG\r\n"),
    (&[&["SET", "x", "1", "PX", "1"], &["SLEEP", "10"]], "x", &[&["SWAPDB", "0", "1"]], "*1\r\n+PONG\r\n"),
    (
        &[&["SELECT", "1"], &["SET", "x", "1", "PX", "1"], &["SELECT", "0"], &["SLEEP", "10"]],
        "x",
        &[&["SWAPDB", "0", "1"]],
        "*1\r\n+PONG\r\n",
    ),
    (
        &[&["SET", "x", "1", "PX", "1"], &["SELECT", "1"], &["SET", "x", "2", "PX", "1"], &["SELECT", "0"], &["SLEEP", "10"]],
        "x",
        &[&["SWAPDB", "0", "1"]],
        "*1\r\n+PONG\r\n",
    ),
    (&[&["SET", "x", "1", "PX", "1"], &["SLEEP", "10"]], "x", &[&["SET", "x", "2"]], "*-1\r\n"),
    (
        &[&["SET", "x", "1", "PX", "1"], &["SELECT", "1"], &["SET", "x", "2"], &["SELECT", "0"], &["SLEEP", "10"]],
        "x",
        &[&["SWAPDB", "0", "1"]],
        "*-1\r\n",
    ),
];

fn stale_watch(port: u16) -> Vec<String> {
    let (mut a, mut b) = (Raw::connect(port), Raw::connect(port));
    assert_eq!(b.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    let run = |c: &mut Raw, cmds: &[Cmd]| {
        for cmd in cmds {
            match cmd {
                ["SLEEP", ms] => std::thread::sleep(Duration::from_millis(ms.parse().unwrap())),
                _ => drop(c.cmd(cmd)),
            }
        }
    };
    let mut got = Vec::new();
    for (setup, key, between, _) in STALE_WATCH {
        assert_eq!(b.cmd(&["FLUSHALL"]), "+OK\r\n");
        run(&mut b, setup);
        assert_eq!(a.cmd(&["WATCH", key]), "+OK\r\n");
        run(&mut b, between);
        assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(a.cmd(&["PING"]), "+QUEUED\r\n");
        got.push(a.cmd(&["EXEC"]));
    }
    assert_eq!(b.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), "+OK\r\n");
    got
}

#[test]
fn watched_keys_that_expire_follow_redis_rules() {
    let s = Server::start_with(&["--shards", "2", "--enable-debug-command", "yes"]);
    let r = Redis::start_with(&["--enable-debug-command", "yes"]);
    let want: Vec<String> = STALE_WATCH.iter().map(|t| t.3.to_string()).collect();
    assert_eq!(stale_watch(r.port), want, "redis-server");
    assert_eq!(stale_watch(s.port), want);
}

#[test]
fn flush_and_swapdb_touch_only_existing_watched_keys() {
    let s = Server::start_with(&["--shards", "2"]);
    let r = Redis::start();
    let want: Vec<String> = FLUSH_WATCH.iter().map(|t| t.3.to_string()).collect();
    assert_eq!(flush_watch(s.port), want);
    assert_eq!(flush_watch(r.port), want, "redis-server");
}

/// MULTI during a busy script: MULTI runs, the command the script refuses
/// (-BUSY) makes EXEC abort once the script is killed, and nothing of the
/// transaction runs.
fn multi_during_busy_script(port: u16) -> Vec<String> {
    let (mut admin, mut tx, mut runner) = (Raw::connect(port), Raw::connect(port), Raw::connect(port));
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["SET", "xx", "1"]), "+OK\r\n");
    runner.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !admin.cmd(&["PING"]).starts_with("-BUSY") {
        assert!(std::time::Instant::now() < deadline, "the script never got busy");
    }
    let mut got = vec![tx.cmd(&["MULTI"]), tx.cmd(&["INCR", "xx"])];
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let killed = String::from_utf8_lossy(&runner.read_reply()).into_owned();
    assert!(killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{killed:?}");
    for c in [&["INCR", "xx"][..], &["EXEC"], &["PING", "asdf"]] {
        got.push(tx.cmd(c));
    }
    got.push(admin.cmd(&["GET", "xx"]));
    got
}

/// EXEC during a busy script ends the transaction with EXECABORT (the
/// watched keys are dropped too); nothing of it runs.
fn exec_during_busy_script(port: u16) -> Vec<String> {
    let (mut admin, mut tx, mut runner) = (Raw::connect(port), Raw::connect(port), Raw::connect(port));
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["SET", "xx", "1"]), "+OK\r\n");
    let mut got = vec![tx.cmd(&["WATCH", "xx"]), tx.cmd(&["MULTI"]), tx.cmd(&["INCR", "xx"])];
    runner.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !admin.cmd(&["PING"]).starts_with("-BUSY") {
        assert!(std::time::Instant::now() < deadline, "the script never got busy");
    }
    got.push(tx.cmd(&["EXEC"]));
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let killed = String::from_utf8_lossy(&runner.read_reply()).into_owned();
    assert!(killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{killed:?}");
    got.push(tx.cmd(&["EXEC"]));
    // The watch went with the transaction: a later write does not fail the next one.
    got.push(tx.cmd(&["MULTI"]));
    got.push(tx.cmd(&["INCR", "xx"]));
    got.push(admin.cmd(&["SET", "xx", "5"]));
    got.push(tx.cmd(&["EXEC"]));
    got
}

#[test]
fn exec_during_a_busy_script_matches_redis() {
    let s = Server::start();
    let r = Redis::start();
    let want = [
        "+OK\r\n",
        "+OK\r\n",
        "+QUEUED\r\n",
        "-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        "-ERR EXEC without MULTI\r\n",
        "+OK\r\n",
        "+QUEUED\r\n",
        "+OK\r\n",
        "*1\r\n:6\r\n",
    ];
    assert_eq!(exec_during_busy_script(s.port), want);
    assert_eq!(exec_during_busy_script(r.port), want, "redis-server");
}

#[test]
fn multi_during_a_busy_script_matches_redis() {
    let s = Server::start();
    let r = Redis::start();
    let want = [
        "+OK\r\n",
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        "+QUEUED\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
        "$4\r\nasdf\r\n",
        "$1\r\n1\r\n",
    ];
    assert_eq!(multi_during_busy_script(s.port), want);
    assert_eq!(multi_during_busy_script(r.port), want, "redis-server");
}

#[test]
fn watch_is_invalidated_by_writes_expiry_and_flush() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut a = s.raw();
    let mut b = s.raw();
    // Untouched watch: EXEC runs.
    assert_eq!(a.cmd(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "1"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*1\r\n+OK\r\n");
    // Another client writes the key: EXEC fails with a null reply.
    assert_eq!(a.cmd(&["WATCH", "w", "other"]), "+OK\r\n");
    assert_eq!(b.cmd(&["INCR", "w"]), ":2\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "mine"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*-1\r\n");
    assert_eq!(a.cmd(&["GET", "w"]), "$1\r\n2\r\n");
    // A write that changes nothing does not invalidate (SET NX on an existing key).
    assert_eq!(a.cmd(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "w", "x", "NX"]), "$-1\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*0\r\n");
    // UNWATCH forgets.
    assert_eq!(a.cmd(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(a.cmd(&["UNWATCH"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "w", "3"]), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*0\r\n");
    // Expiry of a watched key invalidates.
    assert_eq!(a.cmd(&["SET", "ttl", "v", "PX", "50"]), "+OK\r\n");
    assert_eq!(a.cmd(&["WATCH", "ttl"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "ttl", "again"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*-1\r\n");
    // FLUSHALL invalidates.
    assert_eq!(a.cmd(&["SET", "f", "1"]), "+OK\r\n");
    assert_eq!(a.cmd(&["WATCH", "f"]), "+OK\r\n");
    assert_eq!(b.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*-1\r\n");
    // SWAPDB invalidates watchers of both databases.
    assert_eq!(a.cmd(&["SET", "s", "1"]), "+OK\r\n");
    assert_eq!(a.cmd(&["WATCH", "s"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*-1\r\n");
    assert_eq!(b.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
    // Multi-shard and connection-level commands inside EXEC reuse its locks.
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["COPY", "s", "s-copy"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["RENAME", "s-copy", "s-renamed"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["KEYS", "s-*"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*3\r\n:1\r\n+OK\r\n*1\r\n$9\r\ns-renamed\r\n");
    // RESP3: the aborted EXEC is a null.
    assert!(a.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(a.cmd(&["WATCH", "f"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "f", "2"]), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "_\r\n");
}

/// Writers move 1 unit between two accounts on different shards inside
/// MULTI/EXEC; readers MGET both and must always see the same total.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_is_atomic_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    // Two keys on different shards (slot % 4 differs).
    let (a, b) = ("acct:{a}", "acct:{b}");
    {
        let mut c = s.conn().await;
        let _: () = c.mset(&[(a, 1000), (b, 1000)]).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for _ in 0..200 {
                let (_, _): (i64, i64) = redis::pipe().atomic().decr(a, 1).incr(b, 1).query_async(&mut c).await.unwrap();
            }
            0
        }));
    }
    for _ in 0..4 {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut bad = 0;
            for _ in 0..200 {
                let (x, y): (i64, i64) = redis::cmd("MGET").arg(a).arg(b).query_async(&mut c).await.unwrap();
                if x + y != 2000 {
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
    assert_eq!(bad, 0, "a reader saw a transaction half applied");
    let mut c = s.conn().await;
    let (x, y): (i64, i64) = redis::cmd("MGET").arg(a).arg(b).query_async(&mut c).await.unwrap();
    assert_eq!((x, y), (200, 1800));
}

/// Optimistic increments with WATCH from many clients: every successful
/// EXEC counts exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_based_increments_never_lose_updates() {
    let s = Server::start_with(&["--shards", "2"]);
    const CLIENTS: usize = 10;
    const PER: usize = 30;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut done = 0;
            let mut attempts = 0;
            while done < PER {
                attempts += 1;
                assert!(attempts < 100_000, "too many retries");
                let _: () = redis::cmd("WATCH").arg("opt").query_async(&mut c).await.unwrap();
                let cur: Option<i64> = c.get("opt").await.unwrap();
                let r: Option<(String,)> = redis::pipe().atomic().set("opt", cur.unwrap_or(0) + 1).query_async(&mut c).await.unwrap();
                if r.is_some() {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    assert_eq!(c.get::<_, i64>("opt").await.unwrap(), (CLIENTS * PER) as i64);
}
