//! The append-only journal against real processes: kill -9 under load
//! with `appendfsync always` loses no acknowledged write and adds none, a
//! cross-shard MULTI/EXEC is all or nothing after a crash, a torn tail is
//! cut off with a warning (or refused), corruption refuses to start,
//! BGREWRITEAOF replaces the files, and redis-check-aof and redis-server
//! 7.0 accept what is written.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use damselfly_tests::cluster::TempDir;
use damselfly_tests::{Redis, Server};
use redis::{Commands, Connection};

fn journaled(dir: &str, fsync: &str) -> Server {
    Server::start_with(&["--dir", dir, "--shards", "2", "--save", "", "--appendonly", "yes", "--appendfsync", fsync])
}

fn info_field(con: &mut Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).expect("info");
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}")).trim().to_string()
}

fn loaded(s: &Server) -> Connection {
    let mut con = s.sync_conn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut con, "loading") != "0" {
        assert!(Instant::now() < deadline, "still loading");
        std::thread::sleep(Duration::from_millis(20));
    }
    con
}

fn check_aof(dir: &str) {
    let manifest = format!("{dir}/appendonlydir/appendonly.aof.manifest");
    let out =
        Command::new("redis-check-aof").arg(&manifest).output().expect("redis-check-aof (apt-get install redis-tools) must be installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("are valid"), "redis-check-aof refused {manifest}: {text}");
}

/// Clients INCR their own counters and run cross-shard MULTI/EXECs, then
/// the server is killed -9: every acknowledged write is there after the
/// restart, nothing that was not sent is, and every transaction is whole.
#[test]
fn kill_9_with_appendfsync_always_loses_no_acknowledged_write() {
    let dir = TempDir::new("journal-always");
    let s = journaled(dir.path(), "always");
    drop(loaded(&s));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let mut con = s.sync_conn();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (counter, x, y) = (format!("counter:{w}"), format!("pair:{w}:x"), format!("pair:{w}:y"));
                let mut acked = 0i64;
                let mut pairs = 0i64;
                while !stop.load(Relaxed) {
                    match con.incr::<_, _, i64>(&counter, 1) {
                        Ok(v) => acked = v,
                        Err(_) => break,
                    }
                    let r: redis::RedisResult<(i64, i64)> = redis::pipe().atomic().incr(&x, 1).incr(&y, 1).query(&mut con);
                    match r {
                        Ok((a, _)) => pairs = a,
                        Err(_) => break,
                    }
                }
                (w, acked, pairs)
            })
        })
        .collect();
    // Let them run, then crash the server while they write.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut probe = s.sync_conn();
    while probe.get::<_, Option<i64>>("counter:0").unwrap().unwrap_or(0) < 200 {
        assert!(Instant::now() < deadline, "the writers did not get going");
        std::thread::sleep(Duration::from_millis(10));
    }
    s.signal("KILL");
    let results: Vec<(usize, i64, i64)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Relaxed);
    drop(s);

    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    for (w, acked, pairs) in results {
        let v: i64 = con.get(format!("counter:{w}")).unwrap();
        // The last INCR may have been journaled without its reply arriving.
        assert!(v == acked || v == acked + 1, "counter {w}: {v} after {acked} acknowledged");
        let (x, y): (i64, i64) = (con.get(format!("pair:{w}:x")).unwrap(), con.get(format!("pair:{w}:y")).unwrap());
        assert_eq!(x, y, "a torn transaction for worker {w}");
        assert!(x == pairs || x == pairs + 1, "pair {w}: {x} after {pairs} acknowledged");
    }
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// Group commit fsyncs when a shard thread runs out of work: writes
/// acknowledged while other clients keep every shard busy (pipelines of
/// reads that never let it idle) are on disk all the same, and so are
/// writes made after the journal writer has had nothing to do.
#[test]
fn always_acknowledges_writes_on_busy_and_on_idle_shards_only_once_on_disk() {
    let dir = TempDir::new("journal-busy");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = s.sync_conn();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut p = redis::pipe();
                for i in 0..200 {
                    p.get(format!("r{i}"));
                }
                while !stop.load(Relaxed) && p.query::<Vec<Option<String>>>(&mut c).is_ok() {}
            })
        })
        .collect();
    for _ in 0..200 {
        let _: i64 = con.incr("busy", 1).unwrap();
    }
    stop.store(true, Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    // Nothing is written for a while: the writer goes idle, a write wakes it.
    let mut probe = s.sync_conn();
    for i in 0..20 {
        let _: Option<String> = probe.get(format!("r{i}")).unwrap();
    }
    let _: i64 = con.incr("idle", 1).unwrap();
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, i64>("busy").unwrap(), 200);
    assert_eq!(con.get::<_, i64>("idle").unwrap(), 1);
}

/// everysec: what was written more than a second or so before a crash is
/// there after it.
#[test]
fn everysec_keeps_what_is_a_second_old() {
    let dir = TempDir::new("journal-everysec");
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.set(format!("k{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    // The documented bound: one fsync a second.
    std::thread::sleep(Duration::from_millis(2500));
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap(), 1000);
}

/// SHUTDOWN NOSAVE, and waits for the process to exit (it syncs the
/// journal on its way out).
fn shutdown(mut s: Server, mut con: Connection) {
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.exited() {
        assert!(Instant::now() < deadline, "no exit after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until `n` rewrites have finished and none runs.
fn wait_rewrites(con: &mut Connection, n: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(con, "aof_rewrites") != n || info_field(con, "aof_rewrite_in_progress") != "0" {
        assert!(Instant::now() < deadline, "the rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn incr_file(dir: &str) -> String {
    let text = std::fs::read_to_string(format!("{dir}/appendonlydir/appendonly.aof.manifest")).unwrap();
    let name = text.lines().rfind(|l| l.contains("type i")).and_then(|l| l.split_whitespace().nth(1)).unwrap().to_string();
    format!("{dir}/appendonlydir/{name}")
}

/// Starts a server on `dir`'s journal, expected to refuse it; its stderr.
fn refused_start(dir: &str, extra: &[&str]) -> String {
    let mut args = vec!["--dir", dir, "--appendonly", "yes"];
    args.extend_from_slice(extra);
    damselfly_tests::start_refused(&args)
}

#[test]
fn a_torn_tail_is_cut_off_and_corruption_refuses_to_start() {
    let dir = TempDir::new("journal-torn");
    {
        let s = journaled(dir.path(), "always");
        let mut con = loaded(&s);
        wait_rewrites(&mut con, "1");
        let _: () = con.set("before", "crash").unwrap();
        shutdown(s, con);
    }
    let file = incr_file(dir.path());
    let whole = std::fs::metadata(&file).unwrap().len();
    // A command cut off by the crash, and a transaction without its EXEC.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    std::io::Write::write_all(&mut f, b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$6\r\nbefore\r\n*2\r\n$3\r\nDEL\r\n$3\r\nabc").unwrap();
    drop(f);
    let err = refused_start(dir.path(), &["--aof-load-truncated", "no"]);
    assert!(err.contains("aof-load-truncated"), "{err}");
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--appendonly", "yes"]);
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("before").unwrap(), "crash", "the torn transaction was applied");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), whole, "the torn tail is cut off");
    drop(con);
    drop(s);
    check_aof(dir.path());
    // Garbage in the middle is not a torn tail.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] = b'?';
    std::fs::write(&file, &bytes).unwrap();
    let err = refused_start(dir.path(), &[]);
    assert!(err.contains("offset 0"), "{err}");
}

#[test]
fn bgrewriteaof_replaces_the_files_and_redis_server_loads_them() {
    let dir = TempDir::new("journal-rewrite");
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    // The first start wrote the journal's first base file.
    wait_rewrites(&mut con, "1");
    let _: () = con.set("k", "v1").unwrap();
    let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    let _: () = con.set("k", "v2").unwrap();
    let _: () = con.zadd("z", "m", 1.5).unwrap();
    redis::cmd("SELECT").arg(3).query::<()>(&mut con).unwrap();
    let _: () = con.set("in3", "x").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    let before = std::fs::read_to_string(format!("{}/appendonlydir/appendonly.aof.manifest", dir.path())).unwrap();
    let r: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    assert!(r.starts_with("Background append only file rewriting"), "{r}");
    wait_rewrites(&mut con, "2");
    let after = std::fs::read_to_string(format!("{}/appendonlydir/appendonly.aof.manifest", dir.path())).unwrap();
    assert_ne!(before, after);
    assert!(after.contains(".2.base.rdb") && after.lines().count() == 2, "{after}");
    let files = std::fs::read_dir(format!("{}/appendonlydir", dir.path())).unwrap().count();
    assert_eq!(files, 3, "old files deleted: {after}");
    let _: () = con.set("after", "rewrite").unwrap();
    shutdown(s, con);
    check_aof(dir.path());

    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("k").unwrap(), "v2");
    assert_eq!(con.get::<_, String>("after").unwrap(), "rewrite");
    drop(con);
    drop(s);
    let r = Redis::start_with(&["--dir", dir.path(), "--appendonly", "yes"]);
    let mut rc = redis::Client::open(format!("redis://127.0.0.1:{}/", r.port)).unwrap().get_connection().unwrap();
    // redis-server answers -LOADING while it replays the files.
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut rc, "loading") != "0" {
        assert!(Instant::now() < deadline, "redis-server still loading");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rc.get::<_, String>("k").unwrap(), "v2");
    assert_eq!(rc.get::<_, String>("after").unwrap(), "rewrite");
    assert_eq!(rc.hget::<_, _, String>("h", "b").unwrap(), "2");
    let _: () = redis::cmd("SELECT").arg(3).query(&mut rc).unwrap();
    assert_eq!(rc.get::<_, String>("in3").unwrap(), "x");
}

/// A script's writes on one shard are journaled inside MULTI/EXEC: a crash
/// in the middle of writing them keeps none of them.
#[test]
fn a_script_is_journaled_whole_or_not_at_all() {
    let dir = TempDir::new("journal-script");
    {
        let s = journaled(dir.path(), "always");
        let mut con = loaded(&s);
        wait_rewrites(&mut con, "1");
        let _: () = con.set("before", "1").unwrap();
        let _: () = redis::cmd("EVAL")
            .arg("redis.call('SET', KEYS[1], 'a'); redis.call('SET', KEYS[2], 'b')")
            .arg(2)
            .arg("{s}x")
            .arg("{s}y")
            .query(&mut con)
            .unwrap();
        shutdown(s, con);
    }
    let file = incr_file(dir.path());
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let multi = text.find("MULTI").expect("the script's writes in MULTI/EXEC");
    let x = text.find("{s}x").expect("the first write");
    let exec = text.rfind("EXEC").expect("EXEC");
    assert!(multi < x && x < exec, "{text}");
    // The crash came before EXEC reached the disk.
    std::fs::write(&file, &bytes[..exec - 8]).unwrap();
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, Option<String>>("before").unwrap().as_deref(), Some("1"));
    assert_eq!(con.get::<_, Option<String>>("{s}x").unwrap(), None, "half a script was replayed");
    assert_eq!(con.get::<_, Option<String>>("{s}y").unwrap(), None);
}

/// Writes to collections are journaled as the commands sent (a ZINCRBY on a
/// big sorted set costs a few dozen bytes, not the set) and replay to the
/// same data.
#[test]
fn collection_writes_are_journaled_as_sent_and_replay_the_same() {
    let dir = TempDir::new("journal-args");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let members: Vec<(f64, String)> = (0..10_000).map(|i| (i as f64, format!("member:{i}"))).collect();
    let _: () = con.zadd_multiple("board", &members).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    for i in 0..200 {
        let _: f64 = con.zincr("board", format!("member:{}", i * 37 % 10_000), 2.5).unwrap();
    }
    let grown = std::fs::metadata(&file).unwrap().len() - before;
    assert!(grown < 200 * 100, "200 ZINCRBYs took {grown} bytes of journal");
    let _: () = con.hset_multiple("cart:1", &[("sku-1", "2"), ("sku-2", "1")]).unwrap();
    let _: i64 = con.hincr("cart:1", "sku-1", 3).unwrap();
    let _: () = con.rpush("queue", &["a", "b", "c"]).unwrap();
    let _: Option<String> = con.lpop("queue", None).unwrap();
    let _: () = con.sadd("tags", &["x", "y"]).unwrap();
    let _: String = redis::cmd("JSON.SET").arg("doc").arg("$").arg(r#"{"n":1,"a":[1]}"#).query(&mut con).unwrap();
    let _: String = redis::cmd("JSON.NUMINCRBY").arg("doc").arg("$.n").arg(41).query(&mut con).unwrap();
    let want = (
        con.zrange_withscores::<_, Vec<(String, f64)>>("board", 0, -1).unwrap(),
        con.hgetall::<_, std::collections::BTreeMap<String, String>>("cart:1").unwrap(),
        con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        redis::cmd("JSON.GET").arg("doc").query::<String>(&mut con).unwrap(),
    );
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let got = (
        con.zrange_withscores::<_, Vec<(String, f64)>>("board", 0, -1).unwrap(),
        con.hgetall::<_, std::collections::BTreeMap<String, String>>("cart:1").unwrap(),
        con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        redis::cmd("JSON.GET").arg("doc").query::<String>(&mut con).unwrap(),
    );
    assert_eq!(got, want);
    assert_eq!(con.scard::<_, i64>("tags").unwrap(), 2);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

fn config_set(con: &mut Connection, name: &str, value: &str) {
    redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query::<()>(con).unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
}

/// Every file the journal's directory holds, sorted.
fn journal_files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{dir}/appendonlydir"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// `CONFIG SET appendonly yes` on a node started without the journal
/// writes a base file of the data it holds plus an increment file, while
/// clients keep writing (none of their acknowledged writes is lost to a
/// kill -9 after it); `no` closes the files (later writes are not in
/// them); `yes` again replaces the old files.
#[test]
fn appendonly_turns_on_and_off_at_run_time() {
    let dir = TempDir::new("journal-config-set");
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "2", "--save", ""]);
    let mut con = s.sync_conn();
    assert_eq!(info_field(&mut con, "aof_enabled"), "0");
    let mut p = redis::pipe();
    for i in 0..2000 {
        p.set(format!("k{i}"), i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
    // A client keeps writing while the journal is turned on.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (mut c, stop) = (s.sync_conn(), stop.clone());
        std::thread::spawn(move || {
            let mut acked = 0;
            while !stop.load(Relaxed) {
                match c.incr::<_, _, i64>("counter", 1) {
                    Ok(v) => acked = v,
                    Err(_) => break,
                }
            }
            acked
        })
    };
    config_set(&mut con, "appendfsync", "always");
    config_set(&mut con, "appendonly", "yes");
    assert_eq!(info_field(&mut con, "aof_enabled"), "1");
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("appendonly").query(&mut con).unwrap();
    assert_eq!(got, ["appendonly", "yes"]);
    wait_rewrites(&mut con, "1");
    assert_eq!(journal_files(dir.path()), ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]);
    let _: () = con.set("after", "on").unwrap();
    // Crash while the client writes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while con.get::<_, Option<i64>>("counter").unwrap().unwrap_or(0) < 2000 {
        assert!(Instant::now() < deadline, "the writer did not get going");
        std::thread::sleep(Duration::from_millis(10));
    }
    s.signal("KILL");
    let acked = writer.join().unwrap();
    stop.store(true, Relaxed);
    drop(s);
    check_aof(dir.path());

    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap(), 2002);
    assert_eq!(con.get::<_, String>("k1999").unwrap(), "1999");
    assert_eq!(con.get::<_, String>("after").unwrap(), "on");
    let v: i64 = con.get("counter").unwrap();
    assert!(v == acked || v == acked + 1, "counter {v} after {acked} acknowledged");

    // Off: the files stay as they were, later writes are not in them.
    config_set(&mut con, "appendonly", "no");
    assert_eq!(info_field(&mut con, "aof_enabled"), "0");
    let _: () = con.set("while", "off").unwrap();
    let err = redis::cmd("BGREWRITEAOF").query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("journal is off"), "{err}");
    let files = journal_files(dir.path());
    s.signal("KILL");
    drop(s);
    assert_eq!(journal_files(dir.path()), files);
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, Option<String>>("while").unwrap(), None);
    assert_eq!(con.get::<_, String>("after").unwrap(), "on");

    // Off and on again: a new base replaces the old files.
    let rewrites = info_field(&mut con, "aof_rewrites");
    config_set(&mut con, "appendonly", "no");
    let _: () = con.set("while", "off again").unwrap();
    config_set(&mut con, "appendonly", "yes");
    wait_rewrites(&mut con, &(rewrites.parse::<u64>().unwrap() + 1).to_string());
    let files = journal_files(dir.path());
    assert_eq!(files.len(), 3, "the old files are deleted: {files:?}");
    assert!(!files.contains(&"appendonly.aof.1.base.rdb".to_string()), "{files:?}");
    let _: () = con.set("on", "again").unwrap();
    shutdown(s, con);
    check_aof(dir.path());
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("while").unwrap(), "off again");
    assert_eq!(con.get::<_, String>("on").unwrap(), "again");
    assert_eq!(con.get::<_, String>("k7").unwrap(), "7");
}

/// A command journaled as sent (HSET, RPUSH, RPUSHX) that finds its key's
/// TTL passed works on a new key: the journal deletes the old one first,
/// since the replay expires nothing (it was replayed onto the old value,
/// and the key then expired with the new write in it).
#[test]
fn a_write_to_a_key_found_expired_replays_onto_nothing() {
    let dir = TempDir::new("journal-lazy-expiry");
    let start = || {
        Server::start_with(&[
            "--dir",
            dir.path(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--enable-debug-command",
            "yes",
        ])
    };
    let s = start();
    let mut con = loaded(&s);
    redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).query::<()>(&mut con).unwrap();
    let _: () = con.hset("h", "old", 1).unwrap();
    let _: () = con.rpush("l", "old").unwrap();
    let _: () = con.rpush("m", "old").unwrap();
    for k in ["h", "l", "m"] {
        let _: () = con.pexpire(k, 50).unwrap();
    }
    // Found expired by the writes themselves (active expiry is off).
    std::thread::sleep(Duration::from_millis(100));
    let _: () = con.hset("h", "new", 2).unwrap();
    let _: () = con.rpush("l", "new").unwrap();
    assert_eq!(redis::cmd("RPUSHX").arg("m").arg("new").query::<i64>(&mut con).unwrap(), 0);
    s.signal("KILL");
    drop(s);
    let s = start();
    let mut con = loaded(&s);
    let h: Vec<(String, String)> = con.hgetall("h").unwrap();
    assert_eq!(h, [("new".to_string(), "2".to_string())]);
    assert_eq!(con.ttl::<_, i64>("h").unwrap(), -1);
    assert_eq!(con.lrange::<_, Vec<String>>("l", 0, -1).unwrap(), ["new"]);
    assert!(!con.exists::<_, bool>("m").unwrap());
}

/// Expiry changes are journaled as their effect (PEXPIREAT, PERSIST,
/// DEL), not as the key's whole state: an EXPIRE on a big hash adds one
/// short command, and the TTLs replay exactly.
#[test]
fn expiry_changes_are_journaled_as_their_effect() {
    let dir = TempDir::new("journal-ttl");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let fields: Vec<(String, String)> = (0..5000).map(|i| (format!("field{i}"), "x".repeat(20))).collect();
    let _: () = con.hset_multiple("big", &fields).unwrap();
    let _: () = con.set("s", "v").unwrap();
    let _: () = con.set("gone", "v").unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    redis::cmd("EXPIREAT").arg("big").arg(4102444800u64).query::<()>(&mut con).unwrap();
    redis::cmd("PEXPIREAT").arg("s").arg(4102444800123u64).query::<()>(&mut con).unwrap();
    redis::cmd("PERSIST").arg("s").query::<()>(&mut con).unwrap();
    redis::cmd("GETEX").arg("s").arg("PXAT").arg(4102444800456u64).query::<()>(&mut con).unwrap();
    redis::cmd("PEXPIREAT").arg("gone").arg(1).query::<()>(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 300, "{added} bytes journaled for four expiry changes");
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let at = |con: &mut Connection, k: &str| redis::cmd("PEXPIRETIME").arg(k).query::<i64>(con).unwrap();
    assert_eq!(at(&mut con, "big"), 4102444800000);
    assert_eq!(at(&mut con, "s"), 4102444800456);
    assert_eq!(at(&mut con, "gone"), -2);
    assert_eq!(con.hlen::<_, usize>("big").unwrap(), 5000);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// SET and MSET are journaled as Redis propagates them (SET KEEPTTL as
/// sent less GET, a relative expiry as PXAT, an expiry in the past as DEL;
/// an MSET over both shards as each shard's part, whole or not at all),
/// and replay to the same keys and expiry.
#[test]
fn set_and_mset_are_journaled_as_redis_propagates_them() {
    let dir = TempDir::new("journal-keepttl");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    redis::cmd("SET").arg("k").arg("v1").arg("PXAT").arg(4102444800123u64).query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg("k").arg("v2").arg("GET").arg("KEEPTTL").query::<String>(&mut con).unwrap();
    let pairs: Vec<(String, String)> = (0..20).map(|i| (format!("m{i}"), format!("v{i}"))).collect();
    let _: () = con.mset(&pairs).unwrap();
    // The other forms as Redis 7 propagates them: a relative expiry as
    // PXAT, NX/XX and GET dropped once the write happened, an expiry in
    // the past as DEL.
    redis::cmd("SET").arg("plain").arg("p").arg("NX").arg("GET").query::<Option<String>>(&mut con).unwrap();
    redis::cmd("SET").arg("rel").arg("r").arg("EX").arg(100000).query::<()>(&mut con).unwrap();
    let rel_at: i64 = redis::cmd("PEXPIRETIME").arg("rel").query(&mut con).unwrap();
    redis::cmd("SET").arg("plain").arg("gone").arg("XX").arg("EXAT").arg(1).query::<()>(&mut con).unwrap();
    let text = std::fs::read(incr_file(dir.path())).unwrap();
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv2\r\n$7\r\nKEEPTTL\r\n"), "SET KEEPTTL as sent, less GET");
    assert!(has(b"*3\r\n$3\r\nSET\r\n$5\r\nplain\r\n$1\r\np\r\n"), "SET NX GET as SET");
    let pxat = format!("*5\r\n$3\r\nSET\r\n$3\r\nrel\r\n$1\r\nr\r\n$4\r\nPXAT\r\n$13\r\n{rel_at}\r\n");
    assert!(has(pxat.as_bytes()), "SET EX as PXAT");
    assert!(has(b"*2\r\n$3\r\nDEL\r\n$5\r\nplain\r\n"), "SET EXAT in the past as DEL");
    assert!(has(b"$4\r\nMSET\r\n"), "MSET as sent");
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("k").unwrap(), "v2");
    assert_eq!(redis::cmd("PEXPIRETIME").arg("k").query::<i64>(&mut con).unwrap(), 4102444800123);
    assert_eq!(redis::cmd("PEXPIRETIME").arg("rel").query::<i64>(&mut con).unwrap(), rel_at);
    assert_eq!(con.get::<_, Option<String>>("plain").unwrap(), None);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<String> = con.mget(&keys).unwrap();
    assert_eq!(values, pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    drop(con);
    drop(s);
    check_aof(dir.path());
    // With more shards, an MSET part's keys live on several: split again.
    assert!(std::fs::read(incr_file(dir.path())).unwrap().windows(4).any(|w| w == b"MSET"));
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "3", "--save", "", "--appendonly", "yes"]);
    let mut con = loaded(&s);
    assert_eq!(con.mget::<_, Vec<String>>(&keys).unwrap(), values);
}

/// Pops from big collections are journaled as what they took (LPOP,
/// ZPOPMIN, SREM), not as everything left: a job queue's BLPOP adds one
/// short command, and the collections replay to what they held.
#[test]
fn pops_from_big_collections_are_journaled_as_what_they_took() {
    let dir = TempDir::new("journal-pops");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let items: Vec<String> = (0..5000).map(|i| format!("job-{i:05}-{}", "x".repeat(20))).collect();
    let _: () = con.rpush("queue", &items).unwrap();
    let members: Vec<(f64, String)> = items.iter().enumerate().map(|(i, m)| (i as f64, m.clone())).collect();
    let _: () = con.zadd_multiple("ranked", &members).unwrap();
    let _: () = con.sadd("pool", &items).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let _: Vec<String> = redis::cmd("BLPOP").arg("queue").arg(1).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("LMPOP").arg(1).arg("queue").arg("RIGHT").arg("COUNT").arg(2).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("BZPOPMIN").arg("ranked").arg(1).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("ZMPOP").arg(1).arg("ranked").arg("MAX").arg("COUNT").arg(3).query(&mut con).unwrap();
    let _: Vec<String> = redis::cmd("SPOP").arg("pool").arg(2).query(&mut con).unwrap();
    // Members moved out of the pool, to sets on either shard.
    let remaining: Vec<String> = con.smembers("pool").unwrap();
    for (i, dst) in ["claimed", "claimed2", "claimed3"].iter().enumerate() {
        assert!(con.smove::<_, _, _, bool>("pool", *dst, &remaining[i]).unwrap());
    }
    // Moves out of the queue: to another list (on either shard), and a
    // rotation of the queue itself.
    for dst in ["taken", "taken2", "taken3", "queue"] {
        let _: String = redis::cmd("LMOVE").arg("queue").arg(dst).arg("LEFT").arg("RIGHT").query(&mut con).unwrap();
    }
    let _: String = redis::cmd("RPOPLPUSH").arg("queue").arg("taken").query(&mut con).unwrap();
    let _: String = redis::cmd("BLMOVE").arg("queue").arg("taken2").arg("RIGHT").arg("LEFT").arg(1).query(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 2000, "{added} bytes journaled for five pops and nine moves");
    // A client blocked on an empty list, served by a later push.
    let mut waiter = s.sync_conn();
    let blocked = std::thread::spawn(move || redis::cmd("BLPOP").arg("waitq").arg(10).query::<Vec<String>>(&mut waiter).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("INFO").arg("clients").query::<String>(&mut con).unwrap().contains("blocked_clients:0") {
        assert!(Instant::now() < deadline, "BLPOP did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _: () = con.rpush("waitq", &["a", "b", "c"]).unwrap();
    assert_eq!(blocked.join().unwrap(), ["waitq", "a"]);
    let want_list: Vec<String> = con.lrange("queue", 0, -1).unwrap();
    let moved: Vec<Vec<String>> = ["taken", "taken2", "taken3"].iter().map(|k| con.lrange(*k, 0, -1).unwrap()).collect();
    let claimed: Vec<Vec<String>> = ["claimed", "claimed2", "claimed3"].iter().map(|k| con.smembers(*k).unwrap()).collect();
    let want_z: Vec<(String, f64)> = con.zrange_withscores("ranked", 0, -1).unwrap();
    let mut want_s: Vec<String> = con.smembers("pool").unwrap();
    want_s.sort();
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(), want_list);
    assert_eq!(want_list.len(), 4992);
    let got: Vec<Vec<String>> = ["taken", "taken2", "taken3"].iter().map(|k| con.lrange(*k, 0, -1).unwrap()).collect();
    assert_eq!(got, moved);
    assert_eq!(con.zrange_withscores::<_, Vec<(String, f64)>>("ranked", 0, -1).unwrap(), want_z);
    let mut got_s: Vec<String> = con.smembers("pool").unwrap();
    got_s.sort();
    assert_eq!(got_s, want_s);
    assert_eq!(want_s.len(), 4995);
    let got: Vec<Vec<String>> = ["claimed", "claimed2", "claimed3"].iter().map(|k| con.smembers(*k).unwrap()).collect();
    assert_eq!(got, claimed);
    assert_eq!(con.lrange::<_, Vec<String>>("waitq", 0, -1).unwrap(), ["b", "c"]);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// Appends to big values are journaled as what they added: XADD with the
/// ID it got (its trim as the exact XTRIM that removes the same entries),
/// APPEND, SETBIT and SETRANGE as sent; the values replay exactly.
#[test]
fn appends_to_big_values_are_journaled_as_what_they_added() {
    let dir = TempDir::new("journal-appends");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("XADD").arg("events").arg("*").arg("order").arg(format!("o-{i:05}")).arg("status").arg("paid").ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let _: () = con.set("log", "x".repeat(100_000)).unwrap();
    let _: () = con.setbit("bits", 800_000, true).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    for _ in 0..3 {
        let _: String =
            redis::cmd("XADD").arg("events").arg("MAXLEN").arg("~").arg(2000).arg("*").arg("order").arg("o").query(&mut con).unwrap();
    }
    let _: i64 = redis::cmd("XTRIM").arg("events").arg("MAXLEN").arg("~").arg(1500).query(&mut con).unwrap();
    let _: i64 = con.append("log", "more").unwrap();
    let _: () = con.setbit("bits", 7, true).unwrap();
    let _: i64 = con.setrange("log", 10, "edit").unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 800, "{added} bytes journaled for eight edits of big values");
    let events: redis::Value = redis::cmd("XRANGE").arg("events").arg("-").arg("+").query(&mut con).unwrap();
    let info: redis::Value = redis::cmd("XINFO").arg("STREAM").arg("events").query(&mut con).unwrap();
    let log: String = con.get("log").unwrap();
    let bits: Vec<u8> = con.get("bits").unwrap();
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(redis::cmd("XRANGE").arg("events").arg("-").arg("+").query::<redis::Value>(&mut con).unwrap(), events);
    assert_eq!(redis::cmd("XINFO").arg("STREAM").arg("events").query::<redis::Value>(&mut con).unwrap(), info);
    assert_eq!(con.get::<_, String>("log").unwrap(), log);
    assert_eq!(con.get::<_, Vec<u8>>("bits").unwrap(), bits);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// Consumer-group reads change the group, not the entries: XREADGROUP is
/// journaled as Redis propagates it (XCLAIM per entry delivered, XGROUP
/// SETID, XGROUP CREATECONSUMER), not as the whole stream, and the groups
/// replay to the same pending entries, owners, delivery counts and last
/// IDs.
#[test]
fn group_reads_are_journaled_as_what_they_changed() {
    let dir = TempDir::new("journal-groups");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("XADD").arg("orders").arg("*").arg("order").arg(format!("o-{i:05}")).arg("status").arg("paid").ignore();
    }
    p.query::<()>(&mut con).unwrap();
    redis::cmd("XGROUP").arg("CREATE").arg("orders").arg("billing").arg("0").query::<()>(&mut con).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let read = |con: &mut Connection, consumer: &str, count: usize, id: &str, noack: bool| {
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP").arg("billing").arg(consumer).arg("COUNT").arg(count);
        if noack {
            c.arg("NOACK");
        }
        c.arg("STREAMS").arg("orders").arg(id).query::<redis::Value>(con).unwrap();
    };
    read(&mut con, "alice", 3, ">", false);
    read(&mut con, "bob", 2, ">", false);
    read(&mut con, "alice", 10, "0", false);
    read(&mut con, "carol", 1, ">", true);
    read(&mut con, "dave", 5, "0", false);
    let pending: Vec<(String, String, u64, u64)> =
        redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(1).query(&mut con).unwrap();
    let _: i64 = redis::cmd("XACK").arg("orders").arg("billing").arg(&pending[0].0).query(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 3000, "{added} bytes journaled for five group reads and an XACK");
    // Pending entries without their idle times (they move on).
    let pel = |con: &mut Connection| -> Vec<(String, String, u64)> {
        let v: Vec<(String, String, u64, u64)> =
            redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(100).query(con).unwrap();
        v.into_iter().map(|(id, owner, _, n)| (id, owner, n)).collect()
    };
    let consumers = |con: &mut Connection| -> Vec<(String, u64)> {
        let v: Vec<std::collections::HashMap<String, redis::Value>> =
            redis::cmd("XINFO").arg("CONSUMERS").arg("orders").arg("billing").query(con).unwrap();
        v.iter()
            .map(|c| (redis::from_redis_value(c["name"].clone()).unwrap(), redis::from_redis_value(c["pending"].clone()).unwrap()))
            .collect()
    };
    let want =
        (pel(&mut con), consumers(&mut con), redis::cmd("XINFO").arg("GROUPS").arg("orders").query::<redis::Value>(&mut con).unwrap());
    assert_eq!(want.0.len(), 4, "{:?}", want.0);
    assert_eq!(want.1.len(), 4);
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let got =
        (pel(&mut con), consumers(&mut con), redis::cmd("XINFO").arg("GROUPS").arg("orders").query::<redis::Value>(&mut con).unwrap());
    assert_eq!(got, want);
    // The restored times are the deliveries' own: nothing reads as idle for
    // longer than the test has run.
    let v: Vec<(String, String, u64, u64)> =
        redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(100).query(&mut con).unwrap();
    assert!(v.iter().all(|p| p.2 < 60_000), "{v:?}");
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// A script's writes are journaled as the commands it ran where they are
/// deterministic (an RPUSH onto a big list adds one short command, not
/// the list), and a script that starts on one shard and then needs
/// another (its first run is undone and it runs again) leaves exactly one
/// run's effects behind.
#[test]
fn a_script_on_a_big_list_journals_its_commands_once() {
    let dir = TempDir::new("journal-script-args");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let items: Vec<String> = (0..5000).map(|i| format!("order-{i:05}-{}", "x".repeat(20))).collect();
    let _: () = con.rpush("orders", &items).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let push = "redis.call('DECR', KEYS[2]); return redis.call('RPUSH', KEYS[1], ARGV[1])";
    for i in 0..20 {
        let _: i64 =
            redis::cmd("EVAL").arg(push).arg(2).arg("orders").arg("{orders}stock").arg(format!("new-{i}")).query(&mut con).unwrap();
    }
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 4000, "{added} bytes journaled for 20 scripts");
    // A key the script did not declare, on whichever shard it lives: the
    // script may have to start over with both shards held.
    let widen = "redis.call('RPUSH', KEYS[1], 'w'); redis.call('INCR', ARGV[1]); return 1";
    for i in 0..10 {
        let _: i64 = redis::cmd("EVAL").arg(widen).arg(1).arg("orders").arg(format!("elsewhere-{i}")).query(&mut con).unwrap();
    }
    let want: Vec<String> = con.lrange("orders", 0, -1).unwrap();
    assert_eq!(want.len(), 5030);
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.lrange::<_, Vec<String>>("orders", 0, -1).unwrap(), want);
    assert_eq!(con.get::<_, i64>("{orders}stock").unwrap(), -20);
    for i in 0..10 {
        assert_eq!(con.get::<_, i64>(format!("elsewhere-{i}")).unwrap(), 1);
    }
    drop(con);
    drop(s);
    check_aof(dir.path());
}
