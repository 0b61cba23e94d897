//! MIGRATE between real processes: Damselfly to Damselfly, Damselfly to
//! redis-server, and redis-server's MIGRATE into Damselfly (its RESTOREs
//! carry redis-server's own payloads). Every value type, TTLs, COPY,
//! REPLACE, KEYS over several shards, AUTH / AUTH2, NOKEY, the target's
//! errors, a target that never answers, and argument errors (checked
//! against redis-server's replies).

use std::net::TcpListener;

use damselfly_tests::{key_slot, Raw, Redis, Server};

/// Either kind of server, as a port to reach and a raw connection.
trait Node {
    fn port(&self) -> u16;
    fn raw(&self) -> Raw {
        Raw::connect(self.port())
    }
}

impl Node for Server {
    fn port(&self) -> u16 {
        self.port
    }
}

impl Node for Redis {
    fn port(&self) -> u16 {
        self.port
    }
}

/// One key of every type, the commands that build it, and the reads whose
/// replies must be the same wherever the key lands.
struct Fixture {
    key: &'static str,
    build: &'static [&'static [&'static str]],
    reads: &'static [&'static [&'static str]],
}

const FIXTURES: &[Fixture] = &[
    Fixture { key: "str", build: &[&["SET", "str", "hello world"]], reads: &[&["GET", "str"], &["TYPE", "str"]] },
    Fixture { key: "int", build: &[&["SET", "int", "123456789"]], reads: &[&["GET", "int"], &["INCR", "int"]] },
    Fixture {
        key: "long",
        build: &[&["SET", "long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]],
        reads: &[&["GET", "long"]],
    },
    Fixture {
        key: "hash",
        build: &[&["HSET", "hash", "f1", "v1", "f2", "2", "f3", "v3"]],
        reads: &[&["HMGET", "hash", "f1", "f2", "f3", "f4"], &["HLEN", "hash"], &["TYPE", "hash"]],
    },
    Fixture { key: "list", build: &[&["RPUSH", "list", "a", "b", "3", "c"]], reads: &[&["LRANGE", "list", "0", "-1"], &["TYPE", "list"]] },
    Fixture {
        key: "set",
        build: &[&["SADD", "set", "x", "y", "z"]],
        reads: &[&["SMISMEMBER", "set", "x", "y", "z", "w"], &["SCARD", "set"], &["TYPE", "set"]],
    },
    Fixture { key: "iset", build: &[&["SADD", "iset", "3", "1", "2"]], reads: &[&["SMISMEMBER", "iset", "1", "2", "3", "4"]] },
    Fixture {
        key: "zset",
        build: &[&["ZADD", "zset", "1", "a", "2.5", "b", "-3", "c"]],
        reads: &[&["ZRANGE", "zset", "0", "-1", "WITHSCORES"], &["TYPE", "zset"]],
    },
    Fixture {
        key: "stream",
        build: &[
            &["XADD", "stream", "1-1", "f", "v"],
            &["XADD", "stream", "2-5", "g", "w", "h", "x"],
            &["XGROUP", "CREATE", "stream", "grp", "0"],
            &["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", "stream", ">"],
        ],
        reads: &[
            &["XRANGE", "stream", "-", "+"],
            &["XLEN", "stream"],
            &["TYPE", "stream"],
            &["XINFO", "GROUPS", "stream"],
            &["XPENDING", "stream", "grp"],
        ],
    },
];

fn build(node: &dyn Node) {
    let mut c = node.raw();
    for f in FIXTURES {
        for cmd in f.build {
            let r = c.cmd(cmd);
            assert!(!r.starts_with('-'), "{cmd:?}: {r}");
        }
    }
    assert_eq!(c.cmd(&["PEXPIRE", "hash", "500000"]), ":1\r\n");
}

fn reads(node: &dyn Node, db: &str) -> Vec<String> {
    let mut c = node.raw();
    assert_eq!(c.cmd(&["SELECT", db]), "+OK\r\n");
    FIXTURES.iter().flat_map(|f| f.reads).map(|cmd| c.cmd(cmd)).collect()
}

fn migrate(from: &dyn Node, to: &dyn Node, tail: &[&str]) -> String {
    let port = to.port().to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port];
    args.extend_from_slice(tail);
    from.raw().cmd(&args)
}

/// Moves every fixture key (one MIGRATE each, into database 2) and checks
/// that the target reads as the source did, the TTL came along and the
/// source no longer has the keys.
fn moves_every_type(from: &dyn Node, to: &dyn Node) {
    build(from);
    let want = reads(from, "0");
    // `reads` changed nothing but INCR's key: build again from scratch.
    assert_eq!(from.raw().cmd(&["FLUSHALL"]), "+OK\r\n");
    build(from);
    for f in FIXTURES {
        assert_eq!(migrate(from, to, &[f.key, "2", "5000"]), "+OK\r\n", "{}", f.key);
    }
    assert_eq!(reads(to, "2"), want);
    let mut src = from.raw();
    let exists: Vec<&str> = std::iter::once("EXISTS").chain(FIXTURES.iter().map(|f| f.key)).collect();
    assert_eq!(src.cmd(&exists), ":0\r\n");
    let mut dst = to.raw();
    assert_eq!(dst.cmd(&["SELECT", "2"]), "+OK\r\n");
    let ttl = dst.cmd(&["PTTL", "hash"]);
    let ms: i64 = ttl.trim_start_matches(':').trim_end().parse().expect("PTTL is an integer");
    assert!(ms > 0 && ms <= 500000, "TTL kept: {ttl}");
    assert_eq!(dst.cmd(&["PTTL", "str"]), ":-1\r\n");
    assert_eq!(dst.cmd(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(dst.cmd(&["DBSIZE"]), ":0\r\n");
}

#[test]
fn every_type_damselfly_to_damselfly() {
    moves_every_type(&Server::start_with(&["--shards", "2"]), &Server::start());
}

#[test]
fn every_type_damselfly_to_redis() {
    moves_every_type(&Server::start_with(&["--shards", "2"]), &Redis::start());
}

#[test]
fn every_type_redis_to_damselfly() {
    moves_every_type(&Redis::start(), &Server::start_with(&["--shards", "2"]));
}

/// Keys that land on both shards of a two-shard server.
fn spread_keys() -> Vec<String> {
    let keys: Vec<String> = (0..8).map(|i| format!("key:{i}")).collect();
    let shards: std::collections::HashSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes()) % 2).collect();
    assert_eq!(shards.len(), 2, "the keys cover both shards");
    keys
}

#[test]
fn keys_across_shards_copy_and_replace() {
    let src = Server::start_with(&["--shards", "2"]);
    for to in [&Server::start() as &dyn Node, &Redis::start()] {
        let keys = spread_keys();
        let mut s = src.raw();
        let mut d = to.raw();
        assert_eq!(s.cmd(&["FLUSHALL"]), "+OK\r\n");
        for k in &keys {
            assert_eq!(s.cmd(&["SET", k, &format!("v-{k}")]), "+OK\r\n");
        }
        let key_args: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();

        // COPY: the target gets them all, the source keeps them.
        let mut tail = vec!["", "0", "5000", "COPY", "KEYS"];
        tail.extend(&key_args);
        tail.push("missing");
        assert_eq!(migrate(&src, to, &tail), "+OK\r\n");
        let mut exists = vec!["EXISTS"];
        exists.extend(&key_args);
        assert_eq!(s.cmd(&exists), ":8\r\n");
        assert_eq!(d.cmd(&exists), ":8\r\n");

        // Again without REPLACE: every key is refused, none leaves.
        let mut tail = vec!["", "0", "5000", "KEYS"];
        tail.extend(&key_args);
        assert_eq!(migrate(&src, to, &tail), "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n");
        assert_eq!(s.cmd(&exists), ":8\r\n");

        // Only some refused: those stay, the others move.
        assert_eq!(d.cmd(&["DEL", key_args[0], key_args[5]]), ":2\r\n");
        assert_eq!(migrate(&src, to, &tail), "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n");
        assert_eq!(s.cmd(&exists), ":6\r\n");
        assert_eq!(s.cmd(&["EXISTS", key_args[0], key_args[5]]), ":0\r\n");

        // REPLACE: the target's values give way, the source is emptied.
        for k in &keys {
            assert_eq!(s.cmd(&["SET", k, &format!("v-{k}")]), "+OK\r\n");
            assert_eq!(d.cmd(&["SET", k, "old"]), "+OK\r\n");
        }
        let mut tail = vec!["", "0", "5000", "REPLACE", "KEYS"];
        tail.extend(&key_args);
        assert_eq!(migrate(&src, to, &tail), "+OK\r\n");
        assert_eq!(s.cmd(&["DBSIZE"]), ":0\r\n");
        for k in &keys {
            assert_eq!(d.cmd(&["GET", k]), format!("${}\r\nv-{k}\r\n", k.len() + 2));
        }

        // Nothing to move.
        assert_eq!(migrate(&src, to, &["nosuch", "0", "5000"]), "+NOKEY\r\n");
        assert_eq!(migrate(&src, to, &["", "0", "5000", "KEYS", "a", "b"]), "+NOKEY\r\n");
        assert_eq!(migrate(&src, to, &["", "0", "5000", "KEYS"]), "+NOKEY\r\n");
    }
}

#[test]
fn authentication_and_target_errors() {
    let src = Server::start();
    // redis-server's password is set once it runs (its helper checks it
    // started with an unauthenticated INFO).
    let redis = Redis::start();
    assert_eq!(redis.raw().cmd(&["CONFIG", "SET", "requirepass", "s3cret"]), "+OK\r\n");
    let targets: [Box<dyn Node>; 2] = [Box::new(Server::start_with(&["--requirepass", "s3cret"])), Box::new(redis)];
    for to in &targets {
        let to = to.as_ref();
        let mut s = src.raw();
        assert_eq!(s.cmd(&["SET", "k", "v"]), "+OK\r\n");
        assert_eq!(migrate(&src, to, &["k", "0", "5000"]), "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n");
        assert_eq!(
            migrate(&src, to, &["k", "0", "5000", "AUTH", "wrong"]),
            "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(
            migrate(&src, to, &["k", "99", "5000", "AUTH", "s3cret"]),
            "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
        );
        assert_eq!(s.cmd(&["GET", "k"]), "$1\r\nv\r\n");
        assert_eq!(migrate(&src, to, &["k", "1", "5000", "AUTH", "s3cret"]), "+OK\r\n");
        assert_eq!(s.cmd(&["EXISTS", "k"]), ":0\r\n");
        assert_eq!(s.cmd(&["SET", "k2", "v2"]), "+OK\r\n");
        assert_eq!(migrate(&src, to, &["k2", "1", "9223372036854775807", "AUTH2", "default", "s3cret"]), "+OK\r\n");
        let mut d = to.raw();
        assert_eq!(d.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
        assert_eq!(d.cmd(&["SELECT", "1"]), "+OK\r\n");
        assert_eq!(d.cmd(&["MGET", "k", "k2"]), "*2\r\n$1\r\nv\r\n$2\r\nv2\r\n");
    }
}

#[test]
fn unreachable_and_silent_targets() {
    let src = Server::start();
    let mut s = src.raw();
    assert_eq!(s.cmd(&["SET", "k", "v"]), "+OK\r\n");

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let closed = closed.to_string();
    assert_eq!(s.cmd(&["MIGRATE", "127.0.0.1", &closed, "k", "0", "1000"]), "-IOERR error or timeout connecting to the client\r\n");

    // A listener that accepts (the kernel does) but never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port().to_string();
    assert_eq!(s.cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "200"]), "-IOERR error or timeout reading to target instance\r\n");
    assert_eq!(s.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    drop(silent);
}

#[test]
fn argument_errors_as_redis() {
    let ours = Server::start();
    let redis = Redis::start();
    let cases: &[&[&str]] = &[
        &["MIGRATE", "127.0.0.1", "1", "k", "0"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "nope"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "AUTH"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "AUTH2", "user"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "10", "COPY", "KEYS", "a"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "soon"],
        &["MIGRATE", "127.0.0.1", "1", "k", "db", "10"],
        &["MIGRATE", "127.0.0.1", "1", "k", "db", "soon", "bad"],
        &["MIGRATE", "127.0.0.1", "1", "nosuch", "0", "10"],
        &["MIGRATE", "127.0.0.1", "1", "", "0", "10", "REPLACE", "KEYS", "a", "b"],
        &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "10"],
        &["COMMAND", "GETKEYSANDFLAGS", "MIGRATE", "h", "1", "", "0", "10", "AUTH", "KEYS", "KEYS", "a", "b"],
        &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "10", "KEYS"],
        &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "10", "KEYS", "a"],
        &["COMMAND", "GETKEYS", "RESTORE-ASKING", "k", "0", "x"],
        &["COMMAND", "GETKEYS", "EVAL", "return 1", "0"],
        &["COMMAND", "GETKEYS", "PING", "x"],
    ];
    for case in cases {
        assert_eq!(ours.raw().cmd(case), redis.raw().cmd(case), "{case:?}");
    }
}

#[test]
fn inside_exec_and_scripts() {
    let src = Server::start_with(&["--shards", "2"]);
    let to = Redis::start();
    let port = to.port.to_string();
    let mut s = src.raw();
    assert_eq!(s.cmd(&["MSET", "a", "1", "b", "2"]), "+OK\r\n");
    assert_eq!(s.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(s.cmd(&["MIGRATE", "127.0.0.1", &port, "a", "0", "5000"]), "+QUEUED\r\n");
    assert_eq!(s.cmd(&["GET", "a"]), "+QUEUED\r\n");
    assert_eq!(s.cmd(&["EXEC"]), "*2\r\n+OK\r\n$-1\r\n");
    let script = "return redis.call('MIGRATE', '127.0.0.1', ARGV[1], KEYS[1], '0', '5000')";
    assert_eq!(s.cmd(&["EVAL", script, "1", "b", &port]), "+OK\r\n");
    assert_eq!(s.cmd(&["EVAL", script, "1", "b", &port]), "+NOKEY\r\n");
    assert_eq!(to.raw().cmd(&["MGET", "a", "b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
}
