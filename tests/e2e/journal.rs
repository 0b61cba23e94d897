//! The append-only journal against real processes: kill -9 under load
//! with `appendfsync always` loses no acknowledged write and adds none, a
//! cross-shard MULTI/EXEC is all or nothing after a crash, a torn tail is
//! cut off with a warning (or refused), corruption refuses to start,
//! BGREWRITEAOF replaces the files, and redis-check-aof and redis-server
//! 7.0 accept what is written. What each kind of write is journaled as is
//! checked in `propagation`, DEBUG LOADAOF in `loadaof`.

#[path = "journal/files.rs"]
mod files;
#[path = "journal/loadaof.rs"]
mod loadaof;
#[path = "journal/propagation.rs"]
mod propagation;

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

fn info_size(con: &mut Connection, field: &str) -> u64 {
    info_field(con, field).parse().unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// With `auto-aof-rewrite-percentage` and `-min-size`, files that have
/// grown past both are rewritten without being asked (Redis's rule), INFO
/// reports the sizes compared, and a percentage of 0 turns it off.
#[test]
fn the_journal_is_rewritten_when_it_has_grown_enough() {
    let dir = TempDir::new("journal-auto-rewrite");
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let base = info_size(&mut con, "aof_base_size");
    assert!(base > 0 && info_size(&mut con, "aof_current_size") >= base);
    // Off first: 2 MB of writes to one key grow the files past 1 MB and
    // past twice their size, and nothing rewrites them.
    config_set(&mut con, "auto-aof-rewrite-percentage", "0");
    config_set(&mut con, "auto-aof-rewrite-min-size", "1mb");
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("auto-aof-rewrite-*").query(&mut con).unwrap();
    assert_eq!(got, ["auto-aof-rewrite-min-size", "1048576", "auto-aof-rewrite-percentage", "0"]);
    let value = "v".repeat(10_000);
    for _ in 0..200 {
        let _: () = con.set("big", &value).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_size(&mut con, "aof_current_size") < 2_000_000 {
        assert!(Instant::now() < deadline, "the writes did not reach the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Several of the saver's 100 ms looks later, still no rewrite.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(info_field(&mut con, "aof_rewrites"), "1");
    // On: the files are rewritten down to about one value.
    config_set(&mut con, "auto-aof-rewrite-percentage", "100");
    wait_rewrites(&mut con, "2");
    let (current, base) = (info_size(&mut con, "aof_current_size"), info_size(&mut con, "aof_base_size"));
    assert!(current < 100_000 && base == current, "after the rewrite: current {current}, base {base}");
    assert!(std::fs::read_to_string(format!("{}/appendonlydir/appendonly.aof.manifest", dir.path())).unwrap().contains(".2.base.rdb"));
    shutdown(s, con);
    check_aof(dir.path());
    let s = journaled(dir.path(), "everysec");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("big").unwrap(), value);
    // After a load both sizes are the files' size.
    assert_eq!(info_size(&mut con, "aof_current_size"), info_size(&mut con, "aof_base_size"));
}
