//! Snapshots against real processes: SAVE/BGSAVE/DEBUG RELOAD/SHUTDOWN,
//! restarts that load the file, files exchanged with redis-server 7.0 in
//! both directions, a point-in-time cut under concurrent writes, save
//! points, a failed save (MISCONF) and a corrupted file.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use damselfly_tests::cluster::TempDir;
use damselfly_tests::{Raw, Redis, Server};
use redis::{Commands, Connection, Value};

/// Every key of every database, each described by its type and content in
/// a canonical form, plus whether it has a TTL.
fn state(con: &mut Connection, dbs: &[i64]) -> BTreeMap<(i64, String), String> {
    let mut out = BTreeMap::new();
    for &db in dbs {
        redis::cmd("SELECT").arg(db).query::<()>(con).expect("select");
        let keys: Vec<String> = con.keys("*").expect("keys");
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(con).expect("type");
            let body = match t.as_str() {
                "string" => format!("{:?}", con.get::<_, Vec<u8>>(&k).expect("get")),
                "hash" => format!("{:?}", con.hgetall::<_, BTreeMap<String, String>>(&k).expect("hgetall")),
                "list" => format!("{:?}", con.lrange::<_, Vec<String>>(&k, 0, -1).expect("lrange")),
                "set" => {
                    let mut m: Vec<String> = con.smembers(&k).expect("smembers");
                    m.sort();
                    format!("{m:?}")
                }
                // Scores as numbers: Redis 7.0 prints them with 17
                // digits, 7.2 (and we) with the fewest that read back.
                "zset" => format!("{:?}", con.zrange_withscores::<_, Vec<(String, f64)>>(&k, 0, -1).expect("zrange")),
                "stream" => format!("{:?}", redis::cmd("XRANGE").arg(&k).arg("-").arg("+").query::<Value>(con).expect("xrange")),
                "ReJSON-RL" => format!("{:?}", redis::cmd("JSON.GET").arg(&k).query::<String>(con).expect("json.get")),
                other => panic!("unexpected type {other} of {k}"),
            };
            let ttl: i64 = con.pttl(&k).expect("pttl");
            out.insert((db, k), format!("{t} ttl={} {body}", ttl > 0));
        }
    }
    redis::cmd("SELECT").arg(0).query::<()>(con).expect("select");
    out
}

/// Keys of every type and encoding Redis 7.0 writes (small and large
/// hashes, sets, sorted sets and lists; integer, short and long strings;
/// a stream; a HyperLogLog), in databases 0 and 5, some with TTLs.
fn populate(con: &mut Connection) {
    for db in [0, 5] {
        redis::cmd("SELECT").arg(db).query::<()>(con).expect("select");
        let _: () = con.set("int", 12345).unwrap();
        let _: () = con.set("neg", -9_000_000_000i64).unwrap();
        let _: () = con.set("short", "hello").unwrap();
        let _: () = con.set("long", "abc".repeat(400)).unwrap();
        let _: () = con.set_ex("ttl", "soon", 1000).unwrap();
        let _: () = con.hset_multiple("hsmall", &[("a", "1"), ("b", "two")]).unwrap();
        let big: Vec<(String, String)> = (0..300).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
        let _: () = con.hset_multiple("hbig", &big).unwrap();
        let _: () = con.sadd("sint", &[1, 2, 3, 300000]).unwrap();
        let _: () = con.sadd("sstr", &["x", "y", "z"]).unwrap();
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let _: () = con.sadd("sbig", &members).unwrap();
        let _: () = con.zadd_multiple("zsmall", &[(1.5, "a"), (2.0, "b"), (-3.25, "c")]).unwrap();
        let zbig: Vec<(f64, String)> = (0..400).map(|i| (i as f64 / 3.0, format!("z{i}"))).collect();
        let _: () = con.zadd_multiple("zbig", &zbig).unwrap();
        let _: () = con.rpush("lsmall", &["1", "two", "3"]).unwrap();
        let lbig: Vec<String> = (0..5000).map(|i| format!("item-{i}")).collect();
        let _: () = con.rpush("lbig", &lbig).unwrap();
        let _: () = con.expire("lbig", 5000).unwrap();
        for i in 0..50 {
            let _: String = redis::cmd("XADD")
                .arg("stream")
                .arg(format!("{}-{i}", 1_700_000_000_000u64 + i))
                .arg("n")
                .arg(i)
                .arg("f")
                .arg("v")
                .query(con)
                .unwrap();
        }
        let _: i64 = redis::cmd("XDEL").arg("stream").arg("1700000000005-5").query(con).unwrap();
        let _: i64 = redis::cmd("PFADD").arg("hll").arg("a").arg("b").arg("c").query(con).unwrap();
    }
    redis::cmd("SELECT").arg(0).query::<()>(con).expect("select");
}

/// Compares two `state`s key by key, naming the keys that differ.
fn assert_same(got: &BTreeMap<(i64, String), String>, want: &BTreeMap<(i64, String), String>, what: &str) {
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{k:?}: got {:.300} want {:.300}", g, w)),
            None => diffs.push(format!("{k:?}: missing")),
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{k:?}: unexpected"));
    }
    assert!(diffs.is_empty(), "{what}: {} keys differ:\n{}", diffs.len(), diffs.join("\n"));
}

fn info_field(con: &mut Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).expect("info");
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field} in INFO")).trim().to_string()
}

/// Waits (bounded) until an INFO persistence field has a value.
fn wait_field(con: &mut Connection, field: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = info_field(con, field);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{field} stayed {got}, wanted {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects to a restarted server once it has loaded its file.
fn loaded(s: &Server) -> Connection {
    let mut con = s.sync_conn();
    wait_field(&mut con, "loading", "0");
    con
}

fn check_rdb(path: &str) {
    let out = Command::new("redis-check-rdb").arg(path).output().expect("redis-check-rdb (apt-get install redis-tools) must be installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb refused {path}: {text}");
}

/// INFO's `rdb_changes_since_last_save` counts each write as soon as it
/// is acknowledged (Redis's own suite reads it right after commands), and
/// a write that changes nothing does not count.
#[test]
fn changes_since_last_save_count_each_write_at_once() {
    let s = Server::start_with(&["--shards", "2", "--save", ""]);
    let mut con = s.sync_conn();
    let changes = |con: &mut redis::Connection| info_field(con, "rdb_changes_since_last_save").parse::<u64>().unwrap();
    let base = changes(&mut con);
    let _: i64 = redis::cmd("SETBIT").arg("b{t}").arg(0).arg(0).query(&mut con).unwrap();
    let _: () = con.set("s{t}", "v").unwrap();
    let _: () = con.set("other", "v").unwrap();
    assert_eq!(changes(&mut con), base + 3);
    let _: i64 = redis::cmd("SETBIT").arg("b{t}").arg(0).arg(0).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("BITFIELD").arg("b{t}").arg("SET").arg("i5").arg(0).arg(0).query(&mut con).unwrap();
    assert_eq!(changes(&mut con), base + 3, "writes that changed nothing");
    let _: i64 = redis::cmd("SETBIT").arg("b{t}").arg(0).arg(1).query(&mut con).unwrap();
    assert_eq!(changes(&mut con), base + 4);
}

#[test]
fn save_then_restart_keeps_every_type_and_redis_reads_the_file() {
    let dir = TempDir::new("persist-save");
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2"]);
    let mut con = s.sync_conn();
    populate(&mut con);
    let _: String = redis::cmd("JSON.SET").arg("doc").arg("$").arg(r#"{"a":[1,2.5,"x"],"b":{"c":null,"d":true}}"#).query(&mut con).unwrap();
    let before = state(&mut con, &[0, 5]);
    let last: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert_eq!(redis::cmd("SAVE").query::<String>(&mut con).unwrap(), "OK");
    let after_save: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(after_save >= last);
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
    drop(con);
    s.signal("KILL");
    drop(s);

    let file = format!("{}/dump.rdb", dir.path());
    check_rdb(&file);
    let again = Server::start_with(&["--dir", dir.path(), "--shards", "3"]);
    let mut con = loaded(&again);
    assert_same(&state(&mut con, &[0, 5]), &before, "the keys after a restart");
    assert_eq!(info_field(&mut con, "rdb_last_load_keys_loaded"), before.len().to_string());
    drop(con);
    drop(again);

    // redis-server 7.0 loads the same data (without the JSON key, which
    // needs the RedisJSON module there).
    let s = Server::start_with(&["--dir", dir.path()]);
    let mut con = loaded(&s);
    let _: i64 = con.del("doc").unwrap();
    let before = state(&mut con, &[0, 5]);
    assert_eq!(redis::cmd("SAVE").query::<String>(&mut con).unwrap(), "OK");
    drop(s);
    let r = Redis::start_with(&["--dir", dir.path(), "--dbfilename", "dump.rdb"]);
    let mut rc = redis::Client::open(format!("redis://127.0.0.1:{}/", r.port)).unwrap().get_connection().unwrap();
    assert_same(&state(&mut rc, &[0, 5]), &before, "redis-server's view of our file");
}

#[test]
fn a_file_written_by_redis_server_loads_here() {
    let dir = TempDir::new("persist-from-redis");
    let before = {
        let r = Redis::start_with(&["--dir", dir.path(), "--dbfilename", "dump.rdb"]);
        let mut rc = redis::Client::open(format!("redis://127.0.0.1:{}/", r.port)).unwrap().get_connection().unwrap();
        populate(&mut rc);
        let _: () = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("#!lua name=lib\nredis.register_function('hello', function() return 'hi' end)")
            .query::<String>(&mut rc)
            .map(|_| ())
            .unwrap();
        let st = state(&mut rc, &[0, 5]);
        assert_eq!(redis::cmd("SAVE").query::<String>(&mut rc).unwrap(), "OK");
        st
    };
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2"]);
    let mut con = loaded(&s);
    assert_same(&state(&mut con, &[0, 5]), &before, "a redis-server file loaded here");
    let hi: String = redis::cmd("FCALL").arg("hello").arg(0).query(&mut con).unwrap();
    assert_eq!(hi, "hi");
    let n: i64 = redis::cmd("PFCOUNT").arg("hll").query(&mut con).unwrap();
    assert_eq!(n, 3);
}

/// A BGSAVE under a stream of cross-shard MSETs writes one point in time:
/// every MSET is in the file whole or not at all.
#[test]
fn bgsave_is_a_point_in_time_under_concurrent_writes() {
    let dir = TempDir::new("persist-pit");
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2", "--save", ""]);
    let mut con = s.sync_conn();
    // Filler, so the snapshot takes many steps.
    let mut p = redis::pipe();
    for i in 0..60_000 {
        p.set(format!("filler:{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let keys = keys.clone();
        let mut w = s.sync_conn();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pairs: Vec<(String, u64)> = keys.iter().map(|k| (k.clone(), i)).collect();
                let _: () = w.mset(&pairs).unwrap();
                let _: () = w.set(format!("filler:{}", i % 60_000), "changed").unwrap();
                i += 1;
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let r: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(r, "Background saving started");
    let again = redis::cmd("BGSAVE").query::<String>(&mut con);
    if let Err(e) = again {
        assert!(e.to_string().contains("Background save already in progress"), "{e}");
    }
    wait_field(&mut con, "rdb_bgsave_in_progress", "0");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 0);
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    drop(con);
    drop(s);

    let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
    let mut con = loaded(&s);
    let values: Vec<Option<u64>> = con.mget(&keys).unwrap();
    assert!(values.iter().all(|v| *v == values[0]), "a torn MSET in the snapshot: {values:?}");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 60_000 + keys.len() as i64 * values[0].is_some() as i64);
}

/// Values too big to hold as one record (a sorted set, set, hash and list
/// of megabytes) are written to the file in chunks, by the shard that owns
/// them, between other shards' records: the file passes redis-check-rdb
/// and loads them whole. A sorted set written while the BGSAVE runs (its
/// old value then goes to the file from the write path) is in the file as
/// it was at one moment: the members added meanwhile are a prefix of the
/// ones added in order.
#[test]
fn big_values_are_written_in_chunks_and_load_whole() {
    let dir = TempDir::new("persist-big");
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2", "--save", ""]);
    let mut con = s.sync_conn();
    // 40,000 members: each value takes well over the 256 KB past which a
    // record is written in chunks.
    let n = 40_000;
    for chunk in (0..n).collect::<Vec<u32>>().chunks(5_000) {
        let mut p = redis::pipe();
        for i in chunk {
            let m = format!("member-{i:08}-{}", "m".repeat((*i % 16) as usize));
            p.zadd("big:zset", &m, *i)
                .ignore()
                .sadd("big:set", &m)
                .ignore()
                .hset("big:hash", &m, i)
                .ignore()
                .rpush("big:list", &m)
                .ignore();
        }
        p.query::<()>(&mut con).unwrap();
    }
    let mut p = redis::pipe();
    for i in 0..2_000 {
        p.set(format!("filler:{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let before = state(&mut con, &[0]);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = s.sync_conn();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: i64 = w.zadd("big:zset", format!("new-{i:08}"), -1).unwrap();
                i += 1;
            }
            i
        })
    };
    let r: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(r, "Background saving started");
    wait_field(&mut con, "rdb_bgsave_in_progress", "0");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let added = writer.join().unwrap();
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    drop(con);
    drop(s);
    check_rdb(&format!("{}/dump.rdb", dir.path()));

    let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
    let mut con = loaded(&s);
    let mut after = state(&mut con, &[0]);
    // The sorted set: what it held before, plus new-0 .. new-k for some k.
    let new: Vec<String> = con.zrangebyscore("big:zset", -1, -1).unwrap();
    assert!(new.len() as u64 <= added);
    for (i, m) in new.iter().enumerate() {
        assert_eq!(*m, format!("new-{i:08}"), "members added during the snapshot are not a prefix");
    }
    let _: i64 = con.zrembyscore("big:zset", -1, -1).unwrap();
    after.insert((0, "big:zset".into()), state(&mut con, &[0]).remove(&(0, "big:zset".into())).expect("big:zset"));
    assert_same(&after, &before, "big values after a restart");
}

/// A FLUSHDB while a snapshot runs does not take the data out of it (the
/// snapshot is of the moment it started).
#[test]
fn flushdb_during_bgsave_keeps_the_snapshot_whole() {
    let dir = TempDir::new("persist-flush");
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2", "--save", ""]);
    let mut con = s.sync_conn();
    let mut p = redis::pipe();
    for i in 0..50_000 {
        p.set(format!("key:{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let (started, flushed): (String, String) = redis::pipe().cmd("BGSAVE").cmd("FLUSHDB").query(&mut con).unwrap();
    assert_eq!((started.as_str(), flushed.as_str()), ("Background saving started", "OK"));
    wait_field(&mut con, "rdb_bgsave_in_progress", "0");
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    drop(s);
    let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
    let mut con = loaded(&s);
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 50_000);
}

/// FLUSHALL abandons a running BGSAVE (its file would bring the flushed
/// keys back at the next start; Redis kills its child): the save ends at
/// once, is not a failure, and writes no file; the changes stay unsaved.
/// Checked on redis-server too.
fn flushall_during_bgsave(port: u16, dir: &str) {
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]), "+OK\r\n");
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.set(format!("key:{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert_eq!(info_field(&mut con, "rdb_bgsave_in_progress"), "1");
    let flushed = Instant::now();
    assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
    wait_field(&mut con, "rdb_bgsave_in_progress", "0");
    assert!(flushed.elapsed() < Duration::from_secs(3), "the save went on ({:?})", flushed.elapsed());
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    assert!(info_field(&mut con, "rdb_changes_since_last_save").parse::<u64>().unwrap() > 999);
    assert!(!std::path::Path::new(&format!("{dir}/dump.rdb")).exists());
    assert_eq!(c.cmd(&["SET", "x", "xx"]), "+OK\r\n");
}

#[test]
fn flushall_abandons_a_running_bgsave() {
    let (ours, theirs) = (TempDir::new("flushall-bgsave"), TempDir::new("flushall-bgsave-redis"));
    let s = Server::start_with(&["--dir", ours.path(), "--shards", "2", "--save", ""]);
    let r = Redis::start_with(&["--dir", theirs.path()]);
    flushall_during_bgsave(r.port, theirs.path());
    flushall_during_bgsave(s.port, ours.path());
}

/// With save points set, FLUSHALL saves the empty data set at once (and
/// the changes count starts again from 0): a restart does not bring the
/// flushed keys back from the last file. Without save points it saves
/// nothing. As redis-server.
#[test]
fn flushall_saves_the_empty_data_set_when_save_points_are_set() {
    for redis_server in [true, false] {
        let dir = TempDir::new("flushall-save");
        let args = ["--dir", dir.path(), "--save", "3600 1"];
        let start = || -> (Option<Redis>, Option<Server>, u16) {
            if redis_server {
                let r = Redis::start_with(&args);
                let port = r.port;
                (Some(r), None, port)
            } else {
                let s = Server::start_with(&args);
                let port = s.port;
                (None, Some(s), port)
            }
        };
        let (r, s, port) = start();
        let mut c = Raw::connect(port);
        assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
        assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
        assert_eq!(c.cmd(&["SET", "k2", "v"]), "+OK\r\n");
        assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
        assert!(c.cmd(&["INFO", "persistence"]).contains("rdb_changes_since_last_save:0\r\n"), "redis-server: {redis_server}");
        drop((c, r, s));
        let (_r, _s, port) = start();
        let mut c = Raw::connect(port);
        damselfly_tests::wait_for("loading", || c.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
        assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n", "redis-server: {redis_server}");
    }
    let s = Server::start_with(&["--save", ""]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert!(!c.cmd(&["INFO", "persistence"]).contains("rdb_changes_since_last_save:0\r\n"));
}

#[test]
fn save_points_sigterm_and_shutdown_variants() {
    let dir = TempDir::new("persist-points");
    let file = format!("{}/dump.rdb", dir.path());
    // A save point of one change per second.
    let mut s = Server::start_with(&["--dir", dir.path(), "--save", "1 1"]);
    let mut con = s.sync_conn();
    let _: () = con.set("a", 1).unwrap();
    wait_field(&mut con, "rdb_saves", "1");
    assert!(std::path::Path::new(&file).exists());
    // DEBUG is off unless enable-debug-command allows it, as in Redis 7.
    let e = redis::cmd("DEBUG").arg("RELOAD").query::<String>(&mut con).unwrap_err();
    assert!(e.to_string().contains("DEBUG command not allowed"), "{e}");
    // SIGTERM saves too, when save points are set.
    let _: () = con.set("b", 2).unwrap();
    drop(con);
    assert!(s.terminate(Duration::from_secs(30)));
    let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, Option<i64>>("b").unwrap(), Some(2));
    // Without save points SHUTDOWN does not save, SHUTDOWN SAVE does.
    let _: () = con.set("c", 3).unwrap();
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut con);
    drop(s);
    let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, Option<i64>>("c").unwrap(), None);
    let _: () = con.set("d", 4).unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con);
    drop(s);
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--enable-debug-command", "local"]);
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, Option<i64>>("d").unwrap(), Some(4));
    // DEBUG RELOAD: saved and read back in place.
    let _: () = con.set("e", 5).unwrap();
    assert_eq!(redis::cmd("DEBUG").arg("RELOAD").query::<String>(&mut con).unwrap(), "OK");
    assert_eq!(con.get::<_, Option<i64>>("e").unwrap(), Some(5));
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap(), 4, "a, b, d and e");
}

/// A background save that fails (its directory is gone) keeps the old
/// status visible, refuses writes with -MISCONF while save points are set,
/// and a later successful save lifts that. A failed SAVE (or SHUTDOWN's
/// save) is only its caller's error, as in Redis.
#[test]
fn a_failed_save_refuses_writes_until_a_save_succeeds() {
    let root = TempDir::new("persist-fail");
    let dir = format!("{}/data", root.path());
    std::fs::create_dir(&dir).unwrap();
    let s = Server::start_with(&["--dir", &dir]);
    let mut con = s.sync_conn();
    let _: () = con.set("k", "v").unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let e = redis::cmd("SAVE").query::<String>(&mut con).unwrap_err();
    assert!(e.to_string().contains("No such file"), "{e}");
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    let e = redis::cmd("SHUTDOWN").query::<String>(&mut con).unwrap_err();
    assert!(e.to_string().contains("Errors trying to SHUTDOWN"), "{e}");
    let _: () = con.set("k", "v").unwrap();
    assert_eq!(redis::cmd("BGSAVE").query::<String>(&mut con).unwrap(), "Background saving started");
    wait_field(&mut con, "rdb_last_bgsave_status", "err");
    let misconf = |r: redis::RedisResult<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Some("MISCONF"), "{e}");
    };
    misconf(con.set("k", "w"));
    misconf(redis::cmd("PING").query(&mut con));
    assert_eq!(con.get::<_, String>("k").unwrap(), "v");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("stop-writes-on-bgsave-error").arg("no").query(&mut con).unwrap();
    let _: () = con.set("k", "w").unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("stop-writes-on-bgsave-error").arg("yes").query(&mut con).unwrap();
    misconf(con.set("k", "x"));
    std::fs::create_dir(&dir).unwrap();
    assert_eq!(redis::cmd("BGSAVE").query::<String>(&mut con).unwrap(), "Background saving started");
    wait_field(&mut con, "rdb_last_bgsave_status", "ok");
    let _: () = con.set("k", "x").unwrap();
}

/// A damaged file stops the server at start with a message that says so,
/// instead of serving without the data.
#[test]
fn a_corrupted_file_refuses_to_start() {
    let dir = TempDir::new("persist-corrupt");
    {
        let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
        let mut con = s.sync_conn();
        for i in 0..100 {
            let _: () = con.set(format!("key{i}"), "x".repeat(50)).unwrap();
        }
        assert_eq!(redis::cmd("SAVE").query::<String>(&mut con).unwrap(), "OK");
    }
    let file = format!("{}/dump.rdb", dir.path());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&file, &bytes).unwrap();
    let err = damselfly_tests::start_refused(&["--dir", dir.path()]);
    assert!(err.contains("Fatal error loading the DB") && err.contains("dump.rdb"), "{err}");
    // Only the checksum changed: Redis's words for it.
    bytes[mid] ^= 0x5a;
    let end = bytes.len();
    bytes[end - 8..].copy_from_slice(b"foobar00");
    std::fs::write(&file, &bytes).unwrap();
    let err = damselfly_tests::start_refused(&["--dir", dir.path()]);
    assert!(err.contains("RDB CRC error"), "{err}");
}

/// In cluster mode a node restarted after SIGTERM comes back with the keys
/// of the slots it serves; keys of a slot given to another node while it
/// was down are dropped once it learns the new configuration.
#[test]
fn a_cluster_node_restarted_after_sigterm_keeps_its_slots_keys() {
    use damselfly_tests::cluster::{admin, myid, slot_owner_port, wait_until, Cluster};
    use damselfly_tests::{key_slot, Raw};
    let (mut c, _) = Cluster::start(3);
    let seed = c.ports[0];
    let keys: Vec<(String, u16)> =
        (0..300).map(|i| format!("k{i}")).map(|k| (k.clone(), slot_owner_port(seed, key_slot(k.as_bytes())).expect("owner"))).collect();
    for (k, port) in &keys {
        assert_eq!(Raw::connect(*port).cmd(&["SET", k, k]), "+OK\r\n");
    }
    let (node, port) = (1, c.ports[1]);
    let mine: Vec<&String> = keys.iter().filter(|(_, p)| *p == port).map(|(k, _)| k).collect();
    assert!(!mine.is_empty());
    let moved_slot = key_slot(mine[0].as_bytes());
    let kept = mine.iter().filter(|k| key_slot(k.as_bytes()) != moved_slot).count();

    let mut stopped = c.nodes[node].take().expect("node");
    assert!(stopped.terminate(Duration::from_secs(30)), "no exit on SIGTERM");
    drop(stopped);
    // While it is down, one of its slots goes to another node.
    let other = c.ports[2];
    let (ok, out, err) = admin(seed, &["assign-slots", &myid(other), &moved_slot.to_string()]);
    assert!(ok, "{out}{err}");
    let dir = c.dirs[node].path().to_string();
    c.nodes[node] = Some(Server::start_at(port, &["--cluster", "--dir", &dir]).expect("restart on the same port"));
    assert!(c.wait_all_ok(30), "the restarted node did not catch up:\n{}", c.describe());
    assert_eq!(slot_owner_port(port, moved_slot), Some(other));
    for k in mine.iter().filter(|k| key_slot(k.as_bytes()) != moved_slot) {
        assert_eq!(Raw::connect(port).cmd(&["GET", k]), format!("${}\r\n{k}\r\n", k.len()), "{k} after the restart");
    }
    let dbsize = || Raw::connect(port).cmd(&["DBSIZE"]);
    assert!(wait_until(30, || dbsize() == format!(":{kept}\r\n")), "the moved slot's keys stayed: {}", dbsize());
}

/// While the file loads, commands that need the data get Redis's
/// -LOADING and INFO says so; then the data is served.
#[test]
fn clients_get_loading_while_the_file_loads() {
    let dir = TempDir::new("persist-loading");
    {
        let s = Server::start_with(&["--dir", dir.path(), "--save", ""]);
        let mut con = s.sync_conn();
        for i in 0..300 {
            let _: () = con.set(format!("key{i}"), i).unwrap();
        }
        assert_eq!(redis::cmd("SAVE").query::<String>(&mut con).unwrap(), "OK");
    }
    // Redis's knob for slow loads: 10 ms a key, 3 s in all.
    let conf = format!("{}/slow.conf", dir.path());
    std::fs::write(&conf, "key-load-delay 10000\n").unwrap();
    let s = Server::start_with(&[&conf, "--dir", dir.path(), "--save", ""]);
    let mut raw = s.raw();
    assert_eq!(raw.cmd(&["GET", "key1"]), "-LOADING Redis is loading the dataset in memory\r\n");
    assert!(raw.cmd(&["INFO", "persistence"]).contains("loading:1\r\n"));
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, i64>("key299").unwrap(), 299);
    assert_eq!(info_field(&mut con, "rdb_last_load_keys_loaded"), "300");
}

/// Where SAVE writes a file is a protected config, as in Redis 7: a client
/// cannot point it elsewhere (CONFIG SET dir ... then SAVE) unless
/// `enable-protected-configs` allows it.
#[test]
fn where_save_writes_is_a_protected_config() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", "/tmp"]),
        "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "5mb", "dbfilename", "x.rdb"]),
        "-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", "nothing changed");
    assert!(c.cmd(&["CONFIG", "SET", "enable-protected-configs", "yes"]).starts_with("-ERR CONFIG SET failed"));
    let dir = TempDir::new("persist-protected");
    let s = Server::start_with(&["--enable-protected-configs", "local"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "dir", dir.path(), "dbfilename", "x.rdb"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    assert!(std::path::Path::new(&format!("{}/x.rdb", dir.path())).exists());
}

/// `rdbcompression no`: strings are written without LZF in DUMP payloads
/// and snapshots (a bigger file that loads the same), as Redis writes them.
#[test]
fn rdbcompression_no_writes_strings_raw() {
    let dir = TempDir::new("persist-nocompress");
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--enable-debug-command", "local"]);
    let mut c = s.raw();
    let long = "a".repeat(2000);
    assert_eq!(c.cmd(&["SET", "long", &long]), "+OK\r\n");
    let dump_len = |c: &mut Raw| c.cmd(&["DUMP", "long"]).split("\r\n").next().unwrap()[1..].parse::<usize>().unwrap();
    assert!(dump_len(&mut c) < 200, "compressed by default");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    let file = format!("{}/dump.rdb", dir.path());
    let compressed = std::fs::metadata(&file).unwrap().len();
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdbcompression", "no"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "rdbcompression"]), "*2\r\n$14\r\nrdbcompression\r\n$2\r\nno\r\n");
    assert!(dump_len(&mut c) > 2000);
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    assert!(std::fs::metadata(&file).unwrap().len() > compressed + 1500);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "long"]), ":2000\r\n");
}
