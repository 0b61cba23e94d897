//! Journal files as redis-server writes and reads them: a journal of
//! increments without a base (as Redis leaves one, or an operator writes
//! one) loads with every command a Redis journal may hold and goes on in
//! the same file, giving the data redis-server gives for the same files;
//! `#TS:` annotations (`aof-timestamp-enabled`) are written once a second,
//! never sent to replicas, skipped when loading, and let
//! `redis-check-aof --truncate-to-timestamp` cut the journal back in time;
//! a journal that cannot be loaded stops the start with Redis's words.

use std::process::Command;

use damselfly_tests::cluster::TempDir;
use damselfly_tests::{Raw, Redis, Server};

use super::{check_aof, loaded};

fn resp(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s += &format!("${}\r\n{a}\r\n", a.len());
    }
    s
}

/// `dir/appendonlydir` holding one increment file of `body` and a
/// manifest naming only it (no base).
fn increments_only(dir: &str, body: &str) -> String {
    let d = format!("{dir}/appendonlydir");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(format!("{d}/appendonly.aof.1.incr.aof"), body).unwrap();
    std::fs::write(format!("{d}/appendonly.aof.manifest"), "file appendonly.aof.1.incr.aof seq 1 type i\n").unwrap();
    d
}

fn wait_loaded(c: &mut Raw) {
    damselfly_tests::wait_for("the journal to load", || c.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
}

#[test]
fn increments_without_a_base_load_as_redis_loads_them_and_go_on() {
    let body: String = [
        &["SELECT", "0"][..],
        &["RPUSH", "list", "a", "b", "c"],
        &["LPOP", "list"],
        &["HSET", "hash", "f", "v", "g", "w"],
        &["SADD", "one", "only"],
        &["SPOP", "one"],
        &["SADD", "set", "x", "y"],
        &["INCR", "counter"],
        &["GET", "counter"],
        &["PING"],
        &["INCRBY", "counter", "41"],
        &["ZADD", "zset", "1.5", "a", "2", "b"],
        &["PEXPIREAT", "hash", "99999999999999"],
        &["SET", "gone", "soon"],
        &["SELECT", "3"],
        &["SET", "elsewhere", "db3"],
        &["FLUSHDB", "ASYNC"],
        &["SET", "kept", "db3"],
        &["SELECT", "0"],
        &["MULTI"],
        &["SET", "tx", "1"],
        &["DEL", "gone"],
        &["EXEC"],
    ]
    .iter()
    .map(|c| resp(c))
    .collect::<Vec<_>>()
    .join("#TS:1700000000\r\n");
    let ours = TempDir::new("journal-incr-only");
    let theirs = TempDir::new("journal-incr-only-redis");
    let files = increments_only(ours.path(), &body);
    increments_only(theirs.path(), &body);
    let manifest = std::fs::read_to_string(format!("{files}/appendonly.aof.manifest")).unwrap();
    let s =
        Server::start_with(&["--dir", ours.path(), "--shards", "2", "--save", "", "--appendonly", "yes", "--enable-debug-command", "yes"]);
    drop(loaded(&s));
    let r = Redis::start_with(&["--dir", theirs.path(), "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let (mut a, mut b) = (s.raw(), r.raw());
    wait_loaded(&mut b);
    for c in [&["LRANGE", "list", "0", "-1"][..], &["SCARD", "one"], &["GET", "counter"], &["ZSCORE", "zset", "a"], &["EXISTS", "gone"]] {
        assert_eq!(a.cmd(c), b.cmd(c), "{c:?}");
    }
    assert_eq!(a.cmd(&["DEBUG", "DIGEST"]), b.cmd(&["DEBUG", "DIGEST"]));
    // The files are the journal still: no rewrite replaced them, and the
    // next write goes on in the same increment file.
    let before = std::fs::metadata(format!("{files}/appendonly.aof.1.incr.aof")).unwrap().len();
    assert_eq!(a.cmd(&["SET", "after", "load"]), "+OK\r\n");
    damselfly_tests::wait_for("the write in the file", || {
        (std::fs::metadata(format!("{files}/appendonly.aof.1.incr.aof")).ok()?.len() > before).then_some(())
    });
    assert_eq!(std::fs::read_to_string(format!("{files}/appendonly.aof.manifest")).unwrap(), manifest);
    drop(a);
    drop(s);
    check_aof(ours.path());
}

/// Starts on `body` as the only increment file; what the refusal said.
fn refused(body: &str, extra: &[&str]) -> String {
    let dir = TempDir::new("journal-refused");
    increments_only(dir.path(), body);
    let mut args = vec!["--dir", dir.path(), "--appendonly", "yes", "--save", ""];
    args.extend_from_slice(extra);
    damselfly_tests::start_refused(&args)
}

#[test]
fn a_journal_that_cannot_load_stops_the_start_with_redis_words() {
    let set = resp(&["SET", "foo", "hello"]);
    let unknown = refused(&format!("{set}{}{set}", resp(&["bla", "foo", "hello"])), &[]);
    assert!(unknown.contains("Unknown command 'bla' reading the append only file"), "{unknown}");
    let bad = refused(&format!("{set}!!!\r\n{set}"), &[]);
    assert!(bad.contains("Bad file format reading the append only file"), "{bad}");
    let torn = format!("{set}{}", &resp(&["SET", "bar", "world"])[..20]);
    let short = refused(&torn, &["--aof-load-truncated", "no"]);
    assert!(short.contains("Unexpected end of file reading the append only file"), "{short}");
    let open_multi = format!("{set}{}{}", resp(&["MULTI"]), resp(&["SET", "bar", "world"]));
    let multi = refused(&open_multi, &["--aof-load-truncated", "no"]);
    assert!(multi.contains("Unexpected end of file reading the append only file"), "{multi}");
    // A script is not skipped: the start stops (Redis 7 journals its
    // effects, never the script).
    let script = refused(&format!("{set}{}", resp(&["EVAL", "return redis.call('SET', 'a', 'b')", "0"])), &[]);
    assert!(script.contains("EVAL in the append only file cannot be run here"), "{script}");
}

/// A redis-server journal has one keyspace: its RENAMEs, SMOVEs, STOREs,
/// ... name keys this node keeps on two shards, and FUNCTION LOAD concerns
/// every shard. Each replays holding every shard and the data is
/// redis-server's for the same file.
#[test]
fn writes_across_shards_replay_as_redis_replays_them() {
    let library = "#!lua name=shop\nredis.register_function('put', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";
    let mut cmds = damselfly_tests::repl::cross_shard_writes();
    cmds.push(vec!["FUNCTION".into(), "LOAD".into(), library.into()]);
    let body: String = cmds.iter().map(|c| resp(&c.iter().map(String::as_str).collect::<Vec<_>>())).collect();
    let ours = TempDir::new("journal-across");
    let theirs = TempDir::new("journal-across-redis");
    increments_only(ours.path(), &body);
    increments_only(theirs.path(), &body);
    let common = ["--appendonly", "yes", "--save", "", "--enable-debug-command", "yes"];
    let s = Server::start_with(&[&["--dir", ours.path(), "--shards", "2"][..], &common].concat());
    drop(loaded(&s));
    let r = Redis::start_with(&[&["--dir", theirs.path()][..], &common].concat());
    let (mut a, mut b) = (s.raw(), r.raw());
    wait_loaded(&mut b);
    assert_eq!(a.cmd(&["DEBUG", "DIGEST"]), b.cmd(&["DEBUG", "DIGEST"]));
    assert_eq!(a.cmd(&["FCALL", "put", "1", "after-load", "v"]), "+OK\r\n");
    assert!(a.cmd(&["INFO", "stats"]).contains("unexpected_error_replies:0\r\n"));
}

fn annotations(file: &str) -> Vec<u64> {
    std::fs::read_to_string(file).unwrap().lines().filter_map(|l| l.strip_prefix("#TS:")?.parse().ok()).collect()
}

#[test]
fn timestamp_annotations_mark_each_second_and_cut_the_journal_back() {
    let dir = TempDir::new("journal-ts");
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--appendonly", "yes", "--aof-timestamp-enabled", "yes"]);
    let mut c = s.raw();
    wait_loaded(&mut c);
    assert_eq!(c.cmd(&["CONFIG", "GET", "aof-timestamp-enabled"]), "*2\r\n$21\r\naof-timestamp-enabled\r\n$3\r\nyes\r\n");
    // A replica gets the writes, never the annotations.
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &s.port.to_string()]);
    let mut r = replica.raw();
    damselfly_tests::wait_for("the replica's link", || r.cmd(&["INFO", "replication"]).contains("master_link_status:up").then_some(()));
    let file = super::incr_file(dir.path());
    // Three writes in three different seconds (each waits for the clock
    // to turn, seen through the file's annotations).
    for (i, key) in ["foo1", "foo2", "foo3"].iter().enumerate() {
        let seen = annotations(&file).len();
        if i > 0 {
            let last = *annotations(&file).last().unwrap();
            damselfly_tests::wait_for("the next second", || (now() > last).then_some(()));
        }
        assert_eq!(c.cmd(&["SET", key, "bar"]), "+OK\r\n");
        damselfly_tests::wait_for("an annotation", || (annotations(&file).len() == seen + 1).then_some(()));
    }
    let stamps = annotations(&file);
    assert_eq!(stamps.len(), 3, "{stamps:?}");
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert_eq!(c.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    assert_eq!(r.cmd(&["MGET", "foo1", "foo2", "foo3"]), "*3\r\n$3\r\nbar\r\n$3\r\nbar\r\n$3\r\nbar\r\n");
    drop((c, r));
    drop(replica);
    drop(s);
    check_aof(dir.path());
    // Back to the second of the second write: the third is cut off.
    let manifest = format!("{}/appendonlydir/appendonly.aof.manifest", dir.path());
    let out = Command::new("redis-check-aof").args(["--truncate-to-timestamp", &stamps[1].to_string(), &manifest]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--appendonly", "yes"]);
    let mut c = s.raw();
    wait_loaded(&mut c);
    assert_eq!(c.cmd(&["MGET", "foo1", "foo2", "foo3"]), "*3\r\n$3\r\nbar\r\n$3\r\nbar\r\n$-1\r\n");
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Writes of every type, through `c`.
fn every_type(c: &mut Raw, tag: &str) {
    for cmd in [
        &["RPUSH", "list", "a", "b", "c"][..],
        &["HSET", "hash", "f", "v", "g", "w"],
        &["SADD", "set", "x", "y", "1"],
        &["ZADD", "zset", "1.5", "a", "2", "b"],
        &["SET", "ttl", "v", "PXAT", "4102444800000"],
        &["INCRBY", "counter", "7"],
        &["XADD", "stream", "1-1", "f", "v"],
        &["PFADD", "hll", "a", "b"],
    ] {
        let mut args: Vec<String> = cmd.iter().map(|a| a.to_string()).collect();
        args[1] = format!("{tag}:{}", args[1]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(!c.cmd(&args).starts_with('-'), "{args:?}");
    }
}

/// Base files in Redis's other forms load as redis-server loads them:
/// commands (Redis's `aof-use-rdb-preamble no`), and a snapshot followed by
/// commands (a Redis 6 appendonly.aof, which Redis 7 takes over as its
/// base). They used to be read as snapshots only.
#[test]
fn base_files_of_commands_or_a_snapshot_and_commands_load() {
    // Commands: redis-server's own rewrite.
    let theirs = TempDir::new("base-commands-redis");
    let args = ["--dir", theirs.path(), "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "no"];
    let r = Redis::start_with(&[&args[..], &["--enable-debug-command", "yes"]].concat());
    let mut b = r.raw();
    wait_loaded(&mut b);
    every_type(&mut b, "before");
    assert!(b.cmd(&["BGREWRITEAOF"]).starts_with('+'));
    let dir = format!("{}/appendonlydir", theirs.path());
    damselfly_tests::wait_for("redis-server's rewrite", || {
        let manifest = std::fs::read_to_string(format!("{dir}/appendonly.aof.manifest")).ok()?;
        let done = b.cmd(&["INFO", "persistence"]).contains("aof_rewrite_in_progress:0\r\n");
        (done && manifest.contains(".base.aof")).then_some(())
    });
    every_type(&mut b, "after");
    let want = b.cmd(&["DEBUG", "DIGEST"]);
    drop(b);
    drop(r);
    let ours = TempDir::new("base-commands");
    std::fs::create_dir_all(format!("{}/appendonlydir", ours.path())).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), format!("{}/appendonlydir/{}", ours.path(), f.file_name().to_string_lossy())).unwrap();
    }
    let common = ["--appendonly", "yes", "--save", "", "--enable-debug-command", "yes", "--shards", "2"];
    let s = Server::start_with(&[&["--dir", ours.path()][..], &common].concat());
    drop(loaded(&s));
    assert_eq!(s.raw().cmd(&["DEBUG", "DIGEST"]), want);
    drop(s);

    // A snapshot followed by commands, loaded by both.
    let src = TempDir::new("base-mixed-source");
    let r = Redis::start_with(&["--dir", src.path(), "--enable-debug-command", "yes"]);
    let mut b = r.raw();
    every_type(&mut b, "snap");
    assert_eq!(b.cmd(&["SAVE"]), "+OK\r\n");
    drop(b);
    drop(r);
    let mut base = std::fs::read(format!("{}/dump.rdb", src.path())).unwrap();
    base.extend_from_slice(format!("{}{}", resp(&["SELECT", "0"]), resp(&["RPUSH", "snap:list", "after-the-snapshot"])).as_bytes());
    let (ours, theirs) = (TempDir::new("base-mixed"), TempDir::new("base-mixed-redis"));
    for d in [ours.path(), theirs.path()] {
        std::fs::create_dir_all(format!("{d}/appendonlydir")).unwrap();
        std::fs::write(format!("{d}/appendonlydir/appendonly.aof"), &base).unwrap();
        std::fs::write(format!("{d}/appendonlydir/appendonly.aof.manifest"), "file appendonly.aof seq 1 type b\n").unwrap();
    }
    let r = Redis::start_with(&["--dir", theirs.path(), "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut b = r.raw();
    wait_loaded(&mut b);
    let s = Server::start_with(&[&["--dir", ours.path()][..], &common].concat());
    drop(loaded(&s));
    let mut a = s.raw();
    assert_eq!(a.cmd(&["LRANGE", "snap:list", "0", "-1"]), b.cmd(&["LRANGE", "snap:list", "0", "-1"]));
    assert_eq!(a.cmd(&["DEBUG", "DIGEST"]), b.cmd(&["DEBUG", "DIGEST"]));
}

/// A Redis 6 journal (one appendonly.aof in the data directory: a
/// snapshot, then commands) is taken over as Redis 7 takes it over: moved
/// into the journal's directory as its base, named in a new manifest, and
/// loaded; the journal goes on from there.
#[test]
fn a_redis_6_appendonly_file_is_taken_over_as_the_base() {
    let src = TempDir::new("redis6-source");
    let r = Redis::start_with(&["--dir", src.path()]);
    let mut b = r.raw();
    every_type(&mut b, "old");
    assert_eq!(b.cmd(&["SAVE"]), "+OK\r\n");
    drop(b);
    drop(r);
    let mut old = std::fs::read(format!("{}/dump.rdb", src.path())).unwrap();
    old.extend_from_slice(format!("{}{}", resp(&["SELECT", "0"]), resp(&["SET", "old:after", "commands"])).as_bytes());
    let (ours, theirs) = (TempDir::new("redis6"), TempDir::new("redis6-redis"));
    for d in [ours.path(), theirs.path()] {
        std::fs::write(format!("{d}/appendonly.aof"), &old).unwrap();
    }
    let r = Redis::start_with(&["--dir", theirs.path(), "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut b = r.raw();
    wait_loaded(&mut b);
    let want = b.cmd(&["DEBUG", "DIGEST"]);
    let args = ["--dir", ours.path(), "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--enable-debug-command", "yes"];
    let s = Server::start_with(&args);
    drop(loaded(&s));
    let mut a = s.raw();
    assert_eq!(a.cmd(&["DEBUG", "DIGEST"]), want);
    assert!(!std::path::Path::new(&format!("{}/appendonly.aof", ours.path())).exists(), "the old file stayed where it was");
    let manifest = std::fs::read_to_string(format!("{}/appendonlydir/appendonly.aof.manifest", ours.path())).unwrap();
    assert!(manifest.starts_with("file appendonly.aof seq 1 type b\n"), "{manifest}");
    assert_eq!(a.cmd(&["SET", "new", "write"]), "+OK\r\n");
    let want = a.cmd(&["DEBUG", "DIGEST"]);
    drop(a);
    drop(s);
    let again = Server::start_with(&args);
    drop(loaded(&again));
    assert_eq!(again.raw().cmd(&["DEBUG", "DIGEST"]), want);
}
