//! SORT and SORT_RO against real servers: a table of exact replies run on
//! damselfly (four shards, so BY/GET pattern keys and STORE destinations
//! live on other shards than the sorted key) and on redis-server 7.0,
//! which must both give them; pattern reads that stay consistent while
//! another client changes those keys in transactions; and cluster mode's
//! refusal of patterns that may leave the key's slot.

use damselfly_tests::cluster::{admin, wait_until, TempDir};
use damselfly_tests::{Raw, Redis, Server};

const CASES: &[(&[&str], &str)] = &[
        // Numeric and ALPHA sorts of a list, LIMIT's edges, DESC.
        (&["RPUSH", "l", "3", "1", "2", "10", "-5", "1.5"], ":6\r\n"),
        (&["SORT", "l"], "*6\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n"),
        (&["SORT", "l", "DESC"], "*6\r\n$2\r\n10\r\n$1\r\n3\r\n$1\r\n2\r\n$3\r\n1.5\r\n$1\r\n1\r\n$2\r\n-5\r\n"),
        (&["SORT", "l", "LIMIT", "1", "2"], "*2\r\n$1\r\n1\r\n$3\r\n1.5\r\n"),
        (&["SORT", "l", "LIMIT", "1", "2", "DESC"], "*2\r\n$1\r\n3\r\n$1\r\n2\r\n"),
        (&["SORT", "l", "LIMIT", "-5", "2"], "*2\r\n$2\r\n-5\r\n$1\r\n1\r\n"),
        (&["SORT", "l", "LIMIT", "4", "100"], "*2\r\n$1\r\n3\r\n$2\r\n10\r\n"),
        (&["SORT", "l", "LIMIT", "10", "1"], "*0\r\n"),
        (&["SORT", "l", "LIMIT", "0", "0"], "*0\r\n"),
        (&["SORT", "l", "LIMIT", "0", "-1"], "*6\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n"),
        (&["SORT", "l", "ALPHA"], "*6\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        (&["SORT", "l", "ALPHA", "DESC"], "*6\r\n$1\r\n3\r\n$1\r\n2\r\n$2\r\n10\r\n$3\r\n1.5\r\n$1\r\n1\r\n$2\r\n-5\r\n"),
        (&["SORT_RO", "l", "DESC", "LIMIT", "0", "2"], "*2\r\n$2\r\n10\r\n$1\r\n3\r\n"),
        (&["SORT", "l", "ASC", "DESC", "ASC"], "*6\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n"),
        // BY nosort keeps the list's (or sorted set's) order, reversed by DESC.
        (&["SORT", "l", "BY", "nosort"], "*6\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n$2\r\n-5\r\n$3\r\n1.5\r\n"),
        (&["SORT", "l", "BY", "nosort", "DESC"], "*6\r\n$3\r\n1.5\r\n$2\r\n-5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n"),
        (&["SORT", "l", "BY", "nosort", "LIMIT", "1", "2"], "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (&["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"], "*2\r\n$2\r\n-5\r\n$2\r\n10\r\n"),
        // BY and GET read other keys (on other shards), GET # is the element.
        (&["MSET", "w_3", "30", "w_1", "10", "w_2", "20", "w_10", "5", "w_-5", "50"], "+OK\r\n"),
        (&["SORT", "l", "BY", "w_*"], "*6\r\n$3\r\n1.5\r\n$2\r\n10\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n-5\r\n"),
        (&["SORT", "l", "BY", "w_*", "DESC"], "*6\r\n$2\r\n-5\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n$2\r\n10\r\n$3\r\n1.5\r\n"),
        (&["SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*"], "*12\r\n$3\r\n1.5\r\n$-1\r\n$2\r\n10\r\n$1\r\n5\r\n$1\r\n1\r\n$2\r\n10\r\n$1\r\n2\r\n$2\r\n20\r\n$1\r\n3\r\n$2\r\n30\r\n$2\r\n-5\r\n$2\r\n50\r\n"),
        (&["SORT", "l", "BY", "w_*", "GET", "nostar"], "*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"),
        (&["SORT", "l", "BY", "w_*", "LIMIT", "1", "3"], "*3\r\n$2\r\n10\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (&["SORT", "l", "BY", "w_*", "BY", "nosort"], "*6\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n$2\r\n-5\r\n$3\r\n1.5\r\n"),
        (&["SORT", "l", "BY", "nosort", "BY", "w_*"], "*6\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n$2\r\n-5\r\n$3\r\n1.5\r\n"),
        (&["SORT", "l", "BY", "missing_*", "GET", "#", "LIMIT", "0", "3"], "*3\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n"),
        (&["HSET", "h_1", "f", "a"], ":1\r\n"),
        (&["HSET", "h_2", "f", "b"], ":1\r\n"),
        (&["HSET", "h_3", "f", "c"], ":1\r\n"),
        (&["SORT", "l", "BY", "h_*->f", "ALPHA", "GET", "h_*->f", "GET", "#"], "*12\r\n$-1\r\n$2\r\n10\r\n$-1\r\n$2\r\n-5\r\n$-1\r\n$3\r\n1.5\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"),
        (&["SORT", "l", "BY", "h_*->f", "GET", "h_*->g"], "-ERR One or more scores can't be converted into double\r\n"),
        (&["SORT", "l", "GET", "h_*->"], "*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"),
        // STORE: a list (replacing any value and its TTL), or no key when empty.
        (&["SORT", "l", "STORE", "dst"], ":6\r\n"),
        (&["LRANGE", "dst", "0", "-1"], "*6\r\n$2\r\n-5\r\n$1\r\n1\r\n$3\r\n1.5\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n"),
        (&["SORT", "l", "BY", "w_*", "GET", "h_*->f", "STORE", "dst"], ":6\r\n"),
        (&["LRANGE", "dst", "0", "-1"], "*6\r\n$0\r\n\r\n$0\r\n\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$0\r\n\r\n"),
        (&["SORT", "l", "BY", "nosort", "LIMIT", "10", "1", "STORE", "dst"], ":0\r\n"),
        (&["EXISTS", "dst"], ":0\r\n"),
        (&["SET", "dst2", "x", "EX", "100"], "+OK\r\n"),
        (&["SORT", "l", "STORE", "dst2"], ":6\r\n"),
        (&["TTL", "dst2"], ":-1\r\n"),
        (&["TYPE", "dst2"], "+list\r\n"),
        // Conversion errors, option errors, types.
        (&["RPUSH", "bad", "a", "1", "b"], ":3\r\n"),
        (&["SORT", "bad"], "-ERR One or more scores can't be converted into double\r\n"),
        (&["SORT", "bad", "ALPHA"], "*3\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\nb\r\n"),
        (&["SORT", "bad", "BY", "nosort"], "*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n"),
        (&["RPUSH", "nums", "1e400", "2"], ":2\r\n"),
        (&["SORT", "nums"], "-ERR One or more scores can't be converted into double\r\n"),
        (&["SET", "w_x", "notnum"], "+OK\r\n"),
        (&["RPUSH", "lx", "1", "x"], ":2\r\n"),
        (&["SORT", "lx", "BY", "w_*"], "-ERR One or more scores can't be converted into double\r\n"),
        (&["SORT", "lx", "BY", "w_*", "ALPHA"], "*2\r\n$1\r\n1\r\n$1\r\nx\r\n"),
        (&["SORT", "l", "LIMIT", "x", "1"], "-ERR value is not an integer or out of range\r\n"),
        (&["SORT", "l", "LIMIT", "1"], "-ERR syntax error\r\n"),
        (&["SORT", "l", "GET"], "-ERR syntax error\r\n"),
        (&["SORT", "l", "BOGUS"], "-ERR syntax error\r\n"),
        (&["SORT_RO", "l", "STORE", "x"], "-ERR syntax error\r\n"),
        (&["SET", "str", "x"], "+OK\r\n"),
        (&["SORT", "str"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["SORT", "nokey"], "*0\r\n"),
        (&["SORT", "nokey", "STORE", "dst"], ":0\r\n"),
        (&["EXISTS", "dst"], ":0\r\n"),
        (&["SORT"], "-ERR wrong number of arguments for 'sort' command\r\n"),
        // Sets and sorted sets.
        (&["SADD", "s", "c", "a", "b", "10", "2"], ":5\r\n"),
        (&["SORT", "s", "ALPHA"], "*5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["SORT", "s", "ALPHA", "DESC", "LIMIT", "1", "2"], "*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
        (&["SORT", "s", "BY", "nosort", "STORE", "sd"], ":5\r\n"),
        (&["LRANGE", "sd", "0", "-1"], "*5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["EVAL", "return redis.call('sort', KEYS[1], 'by', 'nosort')", "1", "s"], "*5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["ZADD", "z", "3", "c", "1", "a", "2", "b", "0", "zz"], ":4\r\n"),
        (&["SORT", "z", "ALPHA"], "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$2\r\nzz\r\n"),
        (&["SORT", "z", "BY", "nosort"], "*4\r\n$2\r\nzz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"], "*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
        (&["SORT", "z"], "-ERR One or more scores can't be converted into double\r\n"),
        // COMMAND GETKEYS finds the STORE key as Redis does.
        (&["COMMAND", "GETKEYS", "SORT", "k", "BY", "w_*", "GET", "x", "STORE", "d", "STORE", "e"], "*2\r\n$1\r\nk\r\n$1\r\ne\r\n"),
        (&["COMMAND", "GETKEYS", "SORT", "k", "STORE", "limit", "x", "y"], "*2\r\n$1\r\nk\r\n$5\r\nlimit\r\n"),
        (&["COMMAND", "GETKEYSANDFLAGS", "SORT", "k", "STORE", "d"], "*2\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nd\r\n*2\r\n+OW\r\n+update\r\n"),
        (&["COMMAND", "GETKEYS", "SORT_RO", "k", "STORE", "x"], "*1\r\n$1\r\nk\r\n"),
        // SORT converts a sorted set to its large encoding for good, as Redis does.
        (&["ZADD", "zc", "1", "a"], ":1\r\n"),
        (&["OBJECT", "ENCODING", "zc"], "$8\r\nlistpack\r\n"),
        (&["SORT_RO", "zc", "ALPHA"], "*1\r\n$1\r\na\r\n"),
        (&["OBJECT", "ENCODING", "zc"], "$8\r\nskiplist\r\n"),
        (&["ZADD", "zc", "-0", "c"], ":1\r\n"),
        (&["ZSCORE", "zc", "c"], "$2\r\n-0\r\n"),
];

fn run(c: &mut Raw, who: &str) {
    for (cmd, want) in CASES {
        assert_eq!(c.cmd(cmd), *want, "{who}: command {cmd:?}");
    }
}

#[test]
fn replies_are_exact_and_match_redis_server() {
    let s = Server::start_with(&["--shards", "4"]);
    run(&mut s.raw(), "damselfly");
    let r = Redis::start();
    run(&mut r.raw(), "redis-server");
}

#[test]
fn resp3_missing_get_values_are_nulls() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["RPUSH", "l", "1", "2"]), ":2\r\n");
    assert_eq!(c.cmd(&["SET", "v_2", "x"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SORT", "l", "GET", "v_*"]), "*2\r\n_\r\n$1\r\nx\r\n");
}

/// The values BY and GET read on other shards come from one state: a
/// client rewrites both weights in MULTI/EXEC (keys on two shards), and
/// every SORT sees both old or both new.
#[test]
fn pattern_reads_are_consistent_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let (k1, k2) = ("w_1", "w_2");
    assert_ne!(
        damselfly_tests::key_slot(k1.as_bytes()) % 4,
        damselfly_tests::key_slot(k2.as_bytes()) % 4,
        "the weights must be on two shards"
    );
    assert_eq!(c.cmd(&["RPUSH", "l", "1", "2"]), ":2\r\n");
    assert_eq!(c.cmd(&["MSET", k1, "0", k2, "0"]), "+OK\r\n");
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut w = Raw::connect(port);
        for i in 1..=300 {
            let v = i.to_string();
            w.cmd(&["MULTI"]);
            w.cmd(&["SET", "w_1", &v]);
            w.cmd(&["SET", "w_2", &v]);
            assert_eq!(w.cmd(&["EXEC"]), "*2\r\n+OK\r\n+OK\r\n");
        }
    });
    let mut last = 0;
    while last < 300 {
        let r = c.cmd(&["SORT", "l", "BY", "w_*", "GET", "w_*", "STORE", "out"]);
        assert_eq!(r, ":2\r\n");
        let got = c.cmd(&["LRANGE", "out", "0", "-1"]);
        let vals: Vec<&str> = got.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$'])).collect();
        assert_eq!(vals.len(), 2, "{got}");
        assert_eq!(vals[0], vals[1], "a SORT saw one weight old and one new: {got}");
        last = vals[0].parse().expect("a number");
    }
    writer.join().expect("writer");
}

#[test]
fn cluster_mode_refuses_patterns_outside_the_slot() {
    let dir = TempDir::new("sort");
    let s = Server::start_with(&["--cluster", "--dir", dir.path()]);
    let (ok, out, err) = admin(s.port, &["create"]);
    assert!(ok, "create failed: {out}{err}");
    assert!(
        wait_until(10, || s.raw().cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")),
        "{} {}",
        s.raw().cmd(&["CLUSTER", "INFO"]),
        s.raw().cmd(&["CLUSTER", "NODES"])
    );
    let mut c = s.raw();
    let by = "-ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
    let get = "-ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
    let cases: &[(&[&str], &str)] = &[
        (&["RPUSH", "{t}l", "2", "1"], ":2\r\n"),
        (&["MSET", "{t}w1", "20", "{t}w2", "10"], "+OK\r\n"),
        (&["SORT", "{t}l", "BY", "w*"], by),
        (&["SORT", "{t}l", "GET", "w*"], get),
        (&["SORT", "{t}l", "GET", "#"], get),
        (&["SORT", "{t}l", "BY", "{u}w*"], by),
        (&["SORT", "{t}l", "BY", "nosort"], "*2\r\n$1\r\n2\r\n$1\r\n1\r\n"),
        (&["SORT", "{t}l", "BY", "{t}w*", "GET", "{t}w*"], "*2\r\n$2\r\n10\r\n$2\r\n20\r\n"),
        (&["SORT_RO", "{t}l", "BY", "{t}w*"], "*2\r\n$1\r\n2\r\n$1\r\n1\r\n"),
        (&["SORT", "{t}l", "STORE", "{t}out"], ":2\r\n"),
        (&["SORT", "{t}l", "STORE", "{u}out"], "-CROSSSLOT Keys in request don't hash to the same slot\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}
