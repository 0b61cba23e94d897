//! Diskless full syncs, as Redis 7.0 makes them. A primary with
//! `repl-diskless-sync yes` streams its snapshot to replicas that announced
//! `REPLCONF capa eof` as `$EOF:<mark>\r\n<rdb><mark>`; others, or with the
//! setting off, get `$<len>\r\n<rdb>` (checked on the wire, the RDB by
//! redis-check-rdb, and the stream after it, which waits for the
//! replica's first REPLCONF ACK). `repl-diskless-sync-delay` holds a sync
//! so that replicas arriving meanwhile share one snapshot (the same mark
//! and offset), `repl-diskless-sync-max-replicas` starts it once that many
//! wait; a Damselfly and a redis-server 7.0 replica sharing one get every
//! key and the stream after it. A Damselfly replica reads redis-server's
//! `$EOF` payloads with each `repl-diskless-load`, and that setting decides
//! whether the payload goes through a file: with the data directory gone,
//! `disabled` (and `on-empty-db` on a node holding keys) cannot sync, the
//! socket loads can. While the snapshot loads, INFO shows `loading` or
//! (swapdb) `async_loading`. Waits are on observable state, never on
//! sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::repl::{conn, contents, link_up, stat, write_round};
use damselfly_tests::{Redis, Server};
use redis::Connection;

/// A replica played by the test: the handshake, then the raw stream.
struct Fake {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Fake {
    /// Connects, announces `capa eof` (or not) and psync2, sends `PSYNC ? -1`.
    fn psync(port: u16, eof: bool) -> Fake {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut f = Fake { r: BufReader::new(w.try_clone().unwrap()), w };
        let capa: &[&str] = if eof { &["REPLCONF", "capa", "eof", "capa", "psync2"] } else { &["REPLCONF", "capa", "psync2"] };
        f.send(capa);
        assert_eq!(f.line(), "+OK");
        f.send(&["PSYNC", "?", "-1"]);
        f
    }

    fn send(&mut self, args: &[&str]) {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.w.write_all(req.as_bytes()).unwrap();
    }

    /// The next line, skipping the newlines a waiting replica is sent.
    fn line(&mut self) -> String {
        loop {
            let mut l = String::new();
            assert!(self.r.read_line(&mut l).unwrap() > 0, "the primary closed the connection");
            if l != "\n" {
                return l.trim_end().to_string();
            }
        }
    }

    /// The payload's RDB after its head line.
    fn payload(&mut self, head: &str) -> Vec<u8> {
        let mut rdb = Vec::new();
        if let Some(mark) = head.strip_prefix("$EOF:") {
            while !rdb.ends_with(mark.as_bytes()) {
                let mut b = [0u8; 1];
                self.r.read_exact(&mut b).unwrap();
                rdb.push(b[0]);
            }
            rdb.truncate(rdb.len() - mark.len());
        } else {
            let len: usize = head[1..].parse().expect("payload length");
            rdb.resize(len, 0);
            self.r.read_exact(&mut rdb).unwrap();
        }
        rdb
    }

    /// Reads until `needle` has arrived in the stream.
    fn stream_until(&mut self, needle: &str) -> String {
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains(needle) {
            let buf = self.r.fill_buf().unwrap();
            assert!(!buf.is_empty(), "the primary closed the stream; got {:?}", String::from_utf8_lossy(&got));
            let n = buf.len();
            got.extend_from_slice(buf);
            self.r.consume(n);
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

fn config_set(c: &mut Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query(c).unwrap();
}

/// What redis-check-rdb says of an RDB.
fn check_rdb(rdb: &[u8]) -> String {
    let dir = TempDir::new("check-rdb");
    let path = format!("{}/payload.rdb", dir.path());
    std::fs::write(&path, rdb).unwrap();
    let out = std::process::Command::new("redis-check-rdb")
        .arg(&path)
        .output()
        .expect("this test needs redis-check-rdb 7 (apt-get install redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_payload_form_follows_the_replicas_capa_and_the_setting() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    // (repl-diskless-sync, the replica announces capa eof, $EOF form)
    for (setting, eof, diskless) in [("yes", true, true), ("yes", false, false), ("no", true, false)] {
        config_set(&mut p, "repl-diskless-sync", setting);
        let keys: i64 = redis::cmd("DBSIZE").query(&mut p).unwrap();
        let mut f = Fake::psync(primary.port, eof);
        let full = f.line();
        let offset = full.strip_prefix("+FULLRESYNC ").and_then(|r| r.split(' ').nth(1)).expect(&full).to_string();
        let head = f.line();
        let case = format!("repl-diskless-sync {setting}, capa eof {eof}: {head}");
        assert_eq!(head.starts_with("$EOF:") && head.len() == 45, diskless, "{case}");
        let rdb = f.payload(&head);
        let check = check_rdb(&rdb);
        assert!(check.contains("RDB looks OK") && check.contains(&format!("[info] {keys} keys read")), "{case}: {check}");
        // The stream follows; after a diskless payload, once the replica
        // has acknowledged it.
        if diskless {
            f.send(&["REPLCONF", "ACK", &offset]);
        }
        let _: () = redis::cmd("SET").arg(format!("after-{setting}-{eof}")).arg("x").query(&mut p).unwrap();
        f.stream_until(&format!("after-{setting}-{eof}"));
    }
    assert_eq!(stat(&mut p, "sync_full"), 3);
}

/// The primary's `slaveN` lines.
fn slave_states(c: &mut Connection) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg("replication").query(c).unwrap();
    info.lines().filter(|l| l.starts_with("slave") && l.contains("state=")).map(|l| l.to_string()).collect()
}

#[test]
fn replicas_waiting_for_a_diskless_sync_share_one_snapshot() {
    let primary = Server::start_with(&["--shards", "2", "--repl-diskless-sync-delay", "3600"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 100);
    // The delay holds the first replica's sync; it hears newlines meanwhile.
    let mut a = Fake::psync(primary.port, true);
    assert!(wait_until(30, || slave_states(&mut p).iter().any(|l| l.contains("state=wait_bgsave"))));
    let mut nl = [0u8; 1];
    a.r.read_exact(&mut nl).unwrap();
    assert_eq!(&nl, b"\n");
    // With two waiting (repl-diskless-sync-max-replicas 2) it starts at
    // once, for both: one snapshot, one offset, one end mark.
    config_set(&mut p, "repl-diskless-sync-max-replicas", "2");
    let mut b = Fake::psync(primary.port, true);
    let (full_a, full_b) = (a.line(), b.line());
    assert!(full_a.starts_with("+FULLRESYNC "), "{full_a}");
    assert_eq!(full_a, full_b);
    let (head_a, head_b) = (a.line(), b.line());
    assert!(head_a.starts_with("$EOF:"), "{head_a}");
    assert_eq!(head_a, head_b);
    assert_eq!(a.payload(&head_a), b.payload(&head_b));
    drop((a, b));
    assert!(wait_until(30, || slave_states(&mut p).is_empty()), "the fake replicas stay listed");

    // A Damselfly replica and a redis-server one (which announces capa
    // eof) wait together, then get one snapshot and the stream after it.
    config_set(&mut p, "repl-diskless-sync-max-replicas", "0");
    let port = primary.port.to_string();
    let ours = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let redis = Redis::start_with(&["--replicaof", "127.0.0.1", &port]);
    assert!(wait_until(30, || slave_states(&mut p).iter().filter(|l| l.contains("state=wait_bgsave")).count() == 2));
    config_set(&mut p, "repl-diskless-sync-delay", "0");
    let (mut r1, mut r2) = (conn(ours.port), conn(redis.port));
    assert!(wait_until(30, || link_up(&mut r1) && link_up(&mut r2)), "the replicas' links did not come up");
    assert_eq!(stat(&mut p, "sync_full"), 4);
    write_round(&mut p, "after", 100);
    let n: i64 = redis::cmd("WAIT").arg(2).arg(0).query(&mut p).unwrap();
    assert_eq!(n, 2);
    let want = contents(&mut p);
    assert!(want.len() > 400, "{} keys", want.len());
    assert_eq!(contents(&mut r1), want);
    assert_eq!(contents(&mut r2), want);
}

#[test]
fn a_damselfly_replica_reads_redis_servers_diskless_payload_with_each_load_setting() {
    let primary = Redis::start_with(&["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 100);
    let port = primary.port.to_string();
    for load in ["disabled", "on-empty-db", "swapdb"] {
        let replica = Server::start_with(&["--shards", "1", "--repl-diskless-load", load, "--replicaof", "127.0.0.1", &port]);
        let mut r = conn(replica.port);
        assert!(wait_until(30, || link_up(&mut r)), "{load}: the link did not come up");
        write_round(&mut p, load, 50);
        let n: i64 = redis::cmd("WAIT").arg(1).arg(0).query(&mut p).unwrap();
        assert_eq!(n, 1, "{load}");
        assert_eq!(contents(&mut r), contents(&mut p), "{load}");
    }
}

#[test]
fn repl_diskless_load_decides_whether_the_payload_goes_through_a_file() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "data", 100);
    // The replica's data directory is gone: a sync through a file fails.
    let dir = TempDir::new("gone");
    let replica = Server::start_with(&["--shards", "2", "--dir", dir.path(), "--repl-diskless-load", "on-empty-db"]);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let mut r = conn(replica.port);
    let follow = |r: &mut Connection| {
        let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(r).unwrap();
    };
    // Empty: on-empty-db loads from the socket.
    follow(&mut r);
    assert!(wait_until(30, || link_up(&mut r)), "on-empty-db did not load from the socket");
    assert_eq!(contents(&mut r), contents(&mut p));

    // Holding a key: on-empty-db goes through the file, and so does
    // disabled; the syncs fail (the primary counts them) and the data stays.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("local").arg("1").query(&mut r).unwrap();
    for load in ["on-empty-db", "disabled"] {
        config_set(&mut r, "repl-diskless-load", load);
        let before = stat(&mut p, "sync_full");
        follow(&mut r);
        assert!(wait_until(60, || stat(&mut p, "sync_full") >= before + 2), "{load}: no sync attempts");
        assert!(!link_up(&mut r), "{load}: synced without its data directory");
        assert_eq!(redis::cmd("GET").arg("local").query::<String>(&mut r).unwrap(), "1", "{load}");
        let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    }
    // swapdb parses the socket into memory, then replaces the data.
    config_set(&mut r, "repl-diskless-load", "swapdb");
    follow(&mut r);
    assert!(wait_until(30, || link_up(&mut r)), "swapdb did not load from the socket");
    write_round(&mut p, "later", 20);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(0).query(&mut p).unwrap();
    assert_eq!(n, 1);
    assert_eq!(contents(&mut r), contents(&mut p));
}

#[test]
fn the_diskless_settings_are_redis_configs() {
    let server = Server::start();
    let mut c = conn(server.port);
    let get = |c: &mut Connection, name: &str| -> Vec<String> { redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap() };
    // Server::start sets the delay to 0; Redis's defaults otherwise.
    for (name, default) in [
        ("repl-diskless-sync", "yes"),
        ("repl-diskless-sync-delay", "0"),
        ("repl-diskless-sync-max-replicas", "0"),
        ("repl-diskless-load", "disabled"),
    ] {
        assert_eq!(get(&mut c, name), vec![name.to_string(), default.to_string()]);
    }
    // Redis's replies to bad values.
    let mut raw = server.raw();
    for (name, value, reply) in [
        ("repl-diskless-load", "sometimes", "-ERR CONFIG SET failed (possibly related to argument 'repl-diskless-load') - argument(s) must be one of the following: disabled, on-empty-db, swapdb\r\n"),
        ("repl-diskless-sync", "maybe", "-ERR CONFIG SET failed (possibly related to argument 'repl-diskless-sync') - argument must be 'yes' or 'no'\r\n"),
        ("repl-diskless-sync-delay", "-1", "-ERR CONFIG SET failed (possibly related to argument 'repl-diskless-sync-delay') - argument must be between 0 and 2147483647 inclusive\r\n"),
        ("repl-diskless-sync-max-replicas", "x", "-ERR CONFIG SET failed (possibly related to argument 'repl-diskless-sync-max-replicas') - argument couldn't be parsed into an integer\r\n"),
        ("repl-diskless-load", "swapdb", "+OK\r\n"),
    ] {
        assert_eq!(raw.cmd(&["CONFIG", "SET", name, value]), reply, "{name} {value}");
    }
}

/// A replica that loads its primary's snapshot through a file keeps it as
/// its `dbfilename`, as Redis's replica does, unless `rdb-del-sync-files
/// yes` and it persists nothing; INFO shows its `replica-priority`.
#[test]
fn a_replica_keeps_the_snapshot_it_received_unless_told_otherwise() {
    let primary = Server::start_with(&["--shards", "1"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "data", 100);
    let port = primary.port.to_string();
    for (del, kept) in [("no", true), ("yes", false)] {
        let dir = TempDir::new("sync-file");
        let args = ["--shards", "1", "--dir", dir.path(), "--save", "", "--repl-diskless-load", "disabled"];
        let more = ["--rdb-del-sync-files", del, "--replica-priority", "7", "--replicaof", "127.0.0.1", &port];
        let replica = Server::start_with(&[&args[..], &more[..]].concat());
        let mut r = conn(replica.port);
        assert!(wait_until(30, || link_up(&mut r)), "{del}: the link did not come up");
        assert_eq!(contents(&mut r), contents(&mut p), "{del}");
        let file = std::path::Path::new(dir.path()).join("dump.rdb");
        assert_eq!(file.exists(), kept, "rdb-del-sync-files {del}");
        let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
        assert!(info.contains("slave_priority:7\r\n"), "{info}");
    }
}

fn persistence_field(c: &mut damselfly_tests::Raw, name: &str) -> String {
    let info = c.cmd(&["INFO", "persistence"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().to_string()
}

/// While a full sync's snapshot loads, INFO says so as Redis's does: with
/// `repl-diskless-load swapdb` the snapshot is decoded while the old data
/// keeps serving (`async_loading:1`), then the data is swapped; with a
/// file (`disabled`) clients get -LOADING (`loading:1`) instead of a
/// half-loaded data set. `key-load-delay` (microseconds per key) makes the
/// load last long enough to be seen.
#[test]
fn info_and_clients_see_a_full_syncs_load() {
    let primary = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut p = conn(primary.port);
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(400).query(&mut p).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut p).unwrap();
    assert_eq!(n, 400);
    let port = primary.port.to_string();
    for (load, flag) in [("swapdb", "async_loading"), ("disabled", "loading")] {
        let replica = Server::start_with(&["--repl-diskless-load", load, "--key-load-delay", "5000"]);
        let mut r = replica.raw();
        assert_eq!(r.cmd(&["SET", "old", "data"]), "+OK\r\n");
        assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
        damselfly_tests::wait_for("the load to start", || (persistence_field(&mut r, flag) == "1").then_some(()));
        if load == "swapdb" {
            assert_eq!(persistence_field(&mut r, "loading"), "0");
            assert_eq!(r.cmd(&["GET", "old"]), "$4\r\ndata\r\n", "the old data serves meanwhile");
        } else {
            assert!(r.cmd(&["GET", "old"]).starts_with("-LOADING"));
        }
        damselfly_tests::wait_for("the link", || r.cmd(&["INFO", "replication"]).contains("master_link_status:up").then_some(()));
        assert_eq!(persistence_field(&mut r, flag), "0");
        assert_eq!(r.cmd(&["DBSIZE"]), ":400\r\n");
        assert_eq!(r.cmd(&["GET", "old"]), "$-1\r\n");
    }
}
