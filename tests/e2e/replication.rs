//! Replication with Redis's protocol. A Damselfly replica of a Damselfly
//! primary (both with two shards), and a redis-server 7.0 replica of a
//! Damselfly primary (`--replicaof`), get the data set through
//! PSYNC's full resync (RDB payload) and then every later write through
//! the stream (strings with expiries, lists, hashes, sets, sorted sets,
//! MULTI/EXEC, scripts, MSET over two shards); ROLE, INFO replication and
//! WAIT see it; a replica killed with SIGKILL and started again resyncs
//! and converges; a replica refuses clients' writes (READONLY) until
//! REPLICAOF NO ONE promotes it. Partial resynchronisation from the
//! backlog: a replica whose link is cut (CLIENT KILL TYPE replica)
//! continues with `+CONTINUE` (Damselfly and redis-server, as primary and
//! as replica), PSYNC's exact answers in and out of the backlog, its size
//! and TTL, and a promoted replica serving its former siblings from its
//! second replication id. Chained replicas (Damselfly and redis-server
//! replicas of a Damselfly replica) get the primary's stream and continue
//! from the middle replica's backlog. `replica-read-only`'s replies as Redis gives
//! them. Waits are on observable state (the replica's
//! `master_link_status`, WAIT's acknowledgements), never on sleeps.
//! redis-server comes from PATH; the tests fail when it is missing.
//! Partial resynchronisation is checked in `backlog`.

#[path = "replication/backlog.rs"]
mod backlog;
#[path = "replication/blocking.rs"]
mod blocking;
#[path = "replication/cross_shard.rs"]
mod cross_shard;
#[path = "replication/link.rs"]
mod link;

use damselfly_tests::cluster::wait_until;
use damselfly_tests::repl::{conn, contents, info_field, link_up, stat, wait_one, write_round};
use damselfly_tests::{Redis, Server};
use redis::Connection;

#[test]
fn redis_server_replicates_a_damselfly_primary() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 200);
    // Without replicas WAIT answers 0 at once.
    let n: i64 = redis::cmd("WAIT").arg(1).arg(10).query(&mut p).unwrap();
    assert_eq!(n, 0);

    let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    write_round(&mut p, "after", 300);
    wait_one(&mut p);
    let want = contents(&mut p);
    assert!(want.len() > 1000, "{} keys", want.len());
    assert_eq!(contents(&mut r), want);
    let size: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(size as usize, want.len());

    // The primary's view of its replica.
    assert_eq!(info_field(&mut p, "role").as_deref(), Some("master"));
    assert_eq!(info_field(&mut p, "connected_slaves").as_deref(), Some("1"));
    let slave0 = info_field(&mut p, "slave0").expect("slave0");
    assert!(slave0.starts_with(&format!("ip=127.0.0.1,port={},state=online,offset=", replica.port)), "{slave0}");
    let replid = info_field(&mut p, "master_replid").unwrap();
    assert_eq!(info_field(&mut r, "master_replid").unwrap(), replid);
    // Offsets agree once the replica has acknowledged (the primary's PING
    // every 10 s may move them in between: checked until consistent).
    let mut last = String::new();
    let agreed = wait_until(30, || {
        let offset: u64 = info_field(&mut p, "master_repl_offset").unwrap().parse().unwrap();
        let theirs = info_field(&mut r, "master_repl_offset").unwrap();
        let role: redis::Value = redis::cmd("ROLE").query(&mut p).unwrap();
        let want_role = redis::Value::Array(vec![
            redis::Value::BulkString(b"master".to_vec()),
            redis::Value::Int(offset as i64),
            redis::Value::Array(vec![redis::Value::Array(vec![
                redis::Value::BulkString(b"127.0.0.1".to_vec()),
                redis::Value::BulkString(replica.port.to_string().into_bytes()),
                redis::Value::BulkString(offset.to_string().into_bytes()),
            ])]),
        ]);
        last = format!("primary {offset}, replica {theirs}, ROLE {role:?}");
        offset > 0 && theirs == offset.to_string() && role == want_role
    });
    assert!(agreed, "{last}");
}

#[test]
fn a_killed_replica_resyncs_and_converges() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "one", 100);
    let dir = damselfly_tests::cluster::TempDir::new("replica");
    let args = ["--replicaof", "127.0.0.1", &primary.port.to_string(), "--dir", dir.path()];
    let replica = Redis::start_with(&args);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    // Writes keep coming while the replica dies.
    write_round(&mut p, "two", 100);
    // Dropping it kills it (SIGKILL).
    drop(replica);
    write_round(&mut p, "three", 100);
    // The primary drops the dead replica's feed.
    assert!(wait_until(30, || info_field(&mut p, "connected_slaves").as_deref() == Some("0")));
    let replica = Redis::start_with(&args);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    write_round(&mut p, "four", 100);
    wait_one(&mut p);
    assert_eq!(contents(&mut r), contents(&mut p));
    drop(replica);
}

#[test]
fn a_damselfly_replica_follows_a_damselfly_primary() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 150);
    let replica = Server::start_with(&["--shards", "2"]);
    let mut r = conn(replica.port);
    // A primary until told otherwise.
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("master"));
    let ok: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    assert_eq!(ok, "OK");
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    write_round(&mut p, "after", 150);
    wait_one(&mut p);
    let want = contents(&mut p);
    assert!(want.len() > 500, "{} keys", want.len());
    assert_eq!(contents(&mut r), want);

    // The replica's view.
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("slave"));
    assert_eq!(info_field(&mut r, "master_host").as_deref(), Some("127.0.0.1"));
    assert_eq!(info_field(&mut r, "master_port"), Some(primary.port.to_string()));
    assert_eq!(info_field(&mut r, "master_sync_in_progress").as_deref(), Some("0"));
    assert_eq!(info_field(&mut r, "master_replid"), info_field(&mut p, "master_replid"));
    // Checked until consistent: the primary's PING every 10 s may move the
    // offsets in between.
    let mut last = String::new();
    let agreed = wait_until(30, || {
        let offset = info_field(&mut p, "master_repl_offset").unwrap();
        let theirs = info_field(&mut r, "master_repl_offset");
        let role: redis::Value = redis::cmd("ROLE").query(&mut r).unwrap();
        let want_role = redis::Value::Array(vec![
            redis::Value::BulkString(b"slave".to_vec()),
            redis::Value::BulkString(b"127.0.0.1".to_vec()),
            redis::Value::Int(primary.port as i64),
            redis::Value::BulkString(b"connected".to_vec()),
            redis::Value::Int(offset.parse().unwrap()),
        ]);
        let slave0 = info_field(&mut p, "slave0").unwrap_or_default();
        let want_slave0 = format!("ip=127.0.0.1,port={},state=online,offset={offset},", replica.port);
        last = format!("primary {offset}, replica {theirs:?}, ROLE {role:?}, {slave0}");
        theirs.as_deref() == Some(offset.as_str()) && role == want_role && slave0.starts_with(&want_slave0)
    });
    assert!(agreed, "{last}");

    // Clients may not write to a replica.
    for args in [&["SET", "k", "v"][..], &["DEL", "s:before:1"], &["MSET", "a", "1", "b", "2"]] {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let err = c.query::<redis::Value>(&mut r).unwrap_err();
        assert_eq!(err.code(), Some("READONLY"), "{args:?}: {err}");
        assert_eq!(err.detail(), Some("You can't write against a read only replica."), "{args:?}");
    }
    // Nor through a script (reading is fine).
    let err = redis::cmd("EVAL").arg("return redis.call('SET', KEYS[1], 'x')").arg(1).arg("k").query::<redis::Value>(&mut r).unwrap_err();
    assert_eq!(err.code(), Some("READONLY"), "{err}");
    let got: String = redis::cmd("EVAL").arg("return redis.call('GET', KEYS[1])").arg(1).arg("s:before:1").query(&mut r).unwrap();
    assert_eq!(got, "v1");
    // WAIT counts the replicas that acknowledged: one, after the timeout,
    // when two are asked for.
    let n: i64 = redis::cmd("WAIT").arg(2).arg(50).query(&mut p).unwrap();
    assert_eq!(n, 1);
    // Promoted, it takes writes and the primary stops counting it.
    let ok: String = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("master"));
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut r).unwrap();
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut r).unwrap(), "v");
    assert!(wait_until(30, || info_field(&mut p, "connected_slaves").as_deref() == Some("0")));
    let _: () = redis::cmd("SET").arg("later").arg("x").query(&mut p).unwrap();
    assert_eq!(redis::cmd("EXISTS").arg("later").query::<i64>(&mut r).unwrap(), 0);
}

#[test]
fn a_damselfly_replica_started_with_replicaof_resyncs_after_sigkill() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "one", 100);
    let port = primary.port.to_string();
    let replica = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    write_round(&mut p, "two", 100);
    // Dropping it kills it (SIGKILL), in the middle of the stream.
    drop(replica);
    write_round(&mut p, "three", 100);
    assert!(wait_until(30, || info_field(&mut p, "connected_slaves").as_deref() == Some("0")));
    let replica = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    write_round(&mut p, "four", 100);
    wait_one(&mut p);
    assert_eq!(contents(&mut r), contents(&mut p));
}

fn used_memory(c: &mut Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:").and_then(|v| v.parse().ok())).unwrap()
}

/// `used_memory` once the journal writer has taken every write made so far
/// (WAIT 0 0 waits for it): what is held, not what is queued.
fn settled_memory(c: &mut Connection) -> i64 {
    let _: i64 = redis::cmd("WAIT").arg(0).arg(0).query(c).unwrap();
    used_memory(c)
}

#[test]
fn a_replica_that_does_not_read_is_dropped_past_its_buffer_limit() {
    let primary = Server::start_with(&["--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut p = conn(primary.port);
    let mut replica = primary.raw();
    replica.send_cmd(&[b"PSYNC", b"?", b"-1"]);
    // It is fed (the primary lists it) but never reads.
    assert!(wait_until(30, || info_field(&mut p, "slave0").is_some()));
    let value = "v".repeat(64 * 1024);
    let base = settled_memory(&mut p);
    let (mut writes, mut peak) = (0, 0);
    // One key overwritten: what grows is the replica's unsent stream, up
    // to its limit.
    while info_field(&mut p, "slave0").is_some() {
        let _: () = redis::cmd("SET").arg("big").arg(&value).query(&mut p).unwrap();
        peak = peak.max(settled_memory(&mut p) - base);
        writes += 1;
        assert!(writes < 2000, "the replica was never dropped");
    }
    // Writes went on regardless; memory grew far less than what was
    // written (up to 2000 x 64kb would have been, undropped); the dropped
    // replica's connection is closed.
    assert!(peak < 32 << 20, "{peak} bytes more after {writes} writes of 64kb");
    assert!(wait_until(30, || {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut p).unwrap();
        list.lines().count() == 1
    }));
    assert_eq!(info_field(&mut p, "connected_slaves").as_deref(), Some("0"));
    // Nothing grows for it any more: 12mb more written, and no more held
    // than the backlog filling up to its 1mb (in a buffer that may double).
    let dropped = settled_memory(&mut p);
    for _ in 0..200 {
        let _: () = redis::cmd("SET").arg("big").arg(&value).query(&mut p).unwrap();
    }
    let after = settled_memory(&mut p) - dropped;
    assert!(after < 4 << 20, "{after} bytes more after 200 writes without the replica (peak {peak})");
    drop(replica);
}

#[test]
fn a_replica_authenticates_with_masterauth_and_masteruser() {
    let primary = Server::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/", primary.port);
    let mut p = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("repl").arg("on").arg(">pw").arg("+@all").query(&mut p).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut p).unwrap();
    let port = primary.port.to_string();
    for auth in [&["--masterauth", "s3cret"][..], &["--masteruser", "repl", "--masterauth", "pw"]] {
        let replica = Server::start_with(&[auth, &["--replicaof", "127.0.0.1", &port]].concat());
        let mut r = conn(replica.port);
        assert!(wait_until(30, || link_up(&mut r)), "{auth:?}");
        assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut r).unwrap(), "v");
    }
    // Without the password the primary refuses the replica (its error
    // statistics count the refusals) and the link stays down.
    let refused = |p: &mut Connection| -> String {
        let info: String = redis::cmd("INFO").arg("errorstats").query(p).unwrap();
        info.lines().find(|l| l.starts_with("errorstat_NOAUTH:")).unwrap_or_default().to_string()
    };
    let before = refused(&mut p);
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || refused(&mut p) != before));
    assert_eq!(info_field(&mut r, "master_link_status").as_deref(), Some("down"));
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap(), 0);
}

#[test]
fn a_damselfly_replica_follows_redis_server() {
    let primary = Redis::start();
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 100);
    let port = primary.port.to_string();
    let replica = Server::start_with(&["--shards", "1", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    write_round(&mut p, "after", 100);
    let _: () = redis::cmd("EXPIRE").arg("s:after:1").arg(500).query(&mut p).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut p).unwrap();
    let _: () = redis::cmd("SET").arg("in-db-3").arg("x").query(&mut p).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut p).unwrap();
    wait_one(&mut p);
    let want = contents(&mut p);
    assert!(want.len() > 300, "{} keys", want.len());
    assert_eq!(contents(&mut r), want);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut r).unwrap();
    assert_eq!(redis::cmd("GET").arg("in-db-3").query::<String>(&mut r).unwrap(), "x");
    assert!(wait_until(30, || info_field(&mut r, "master_repl_offset") == info_field(&mut p, "master_repl_offset")));
}

/// Commands whose key is not their first argument (XGROUP's is the
/// third) reach the shard that holds the key on a replica with several,
/// which ends with the groups a redis-server replica of the same primary
/// has (Redis 7.0 propagates a group read as XCLAIMs with LASTID, which
/// leave entries-read unknown on both).
#[test]
fn a_damselfly_replica_with_two_shards_applies_xgroup_from_redis_server() {
    let primary = Redis::start();
    let mut p = conn(primary.port);
    let port = primary.port.to_string();
    let replica = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    let oracle = Redis::start_with(&["--replicaof", "127.0.0.1", &port]);
    let mut o = conn(oracle.port);
    assert!(wait_until(30, || link_up(&mut r) && link_up(&mut o)), "the replicas' links did not come up");
    for key in ["orders", "events", "stock", "carts"] {
        for i in 1..=3 {
            let _: String = redis::cmd("XADD").arg(key).arg(format!("{i}-1")).arg("f").arg("v").query(&mut p).unwrap();
        }
        redis::cmd("XGROUP").arg("CREATE").arg(key).arg("g").arg("0").query::<()>(&mut p).unwrap();
        let _: i64 = redis::cmd("XGROUP").arg("CREATECONSUMER").arg(key).arg("g").arg("idle").query(&mut p).unwrap();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query(&mut p)
            .unwrap();
    }
    // Both replicas have acknowledged every write.
    assert_eq!(redis::cmd("WAIT").arg(2).arg(0).query::<i64>(&mut p).unwrap(), 2);
    let offset = info_field(&mut p, "master_repl_offset");
    assert!(wait_until(30, || info_field(&mut r, "master_repl_offset") == offset && info_field(&mut o, "master_repl_offset") == offset));
    for key in ["orders", "events", "stock", "carts"] {
        let groups = |c: &mut Connection| redis::cmd("XINFO").arg("GROUPS").arg(key).query::<redis::Value>(c).unwrap();
        assert_eq!(groups(&mut r), groups(&mut o), "{key}");
        let pending = |c: &mut Connection| redis::cmd("XPENDING").arg(key).arg("g").query::<redis::Value>(c).unwrap();
        assert_eq!(pending(&mut r), pending(&mut p), "{key}");
        assert_eq!(pending(&mut o), pending(&mut p), "{key}");
    }
}

/// The primary's `sync_full`, `sync_partial_ok` and `sync_partial_err`.
fn syncs(c: &mut Connection) -> (i64, i64, i64) {
    (stat(c, "sync_full"), stat(c, "sync_partial_ok"), stat(c, "sync_partial_err"))
}

fn kill_replicas(c: &mut Connection) -> i64 {
    redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(c).unwrap()
}

fn offsets_agree(p: &mut Connection, r: &mut Connection) -> bool {
    info_field(p, "master_repl_offset") == info_field(r, "master_repl_offset")
}

#[test]
fn a_read_only_replica_refuses_clients_writes_as_redis_does() {
    let primary = Server::start();
    let mut p = conn(primary.port);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut p).unwrap();
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut raw = replica.raw();
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    let ro = "-READONLY You can't write against a read only replica.\r\n";
    // A replica whose link is down serves no sync (its data may not be its
    // primary's), as Redis.
    let cut_off = Server::start_with(&["--replicaof", "127.0.0.1", &damselfly_tests::free_port().to_string()]);
    assert_eq!(cut_off.raw().cmd(&["PSYNC", "?", "-1"]), "-NOMASTERLINK Can't SYNC while not connected with my master\r\n");
    let mut c = conn(cut_off.port);
    assert_eq!(info_field(&mut c, "master_link_down_since_seconds").as_deref(), Some("-1"));
    assert_eq!(info_field(&mut r, "master_link_down_since_seconds"), None);
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "GET", "replica-read-only"], "*2\r\n$17\r\nreplica-read-only\r\n$3\r\nyes\r\n"),
        (&["SET", "k", "x"], ro),
        // A script that declares flags without no-writes counts as a write.
        (&["EVAL", "#!lua\nreturn 1", "0"], ro),
        (&["EVAL", "#!lua flags=no-writes\nreturn redis.call('GET', 'k')", "0"], "$1\r\nv\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["SET", "k", "x"], ro),
        (&["GET", "k"], "+QUEUED\r\n"),
        (&["EXEC"], "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        // Writable when told so (the alias sets the same thing).
        (&["CONFIG", "SET", "slave-read-only", "no"], "+OK\r\n"),
        (&["CONFIG", "GET", "replica-read-only"], "*2\r\n$17\r\nreplica-read-only\r\n$2\r\nno\r\n"),
        (&["SET", "local", "1"], "+OK\r\n"),
        (&["CONFIG", "SET", "replica-read-only", "yes"], "+OK\r\n"),
        (&["SET", "local", "2"], ro),
    ];
    for (args, want) in cases {
        assert_eq!(raw.cmd(args), *want, "{args:?}");
    }
    assert_eq!(info_field(&mut r, "slave_read_only").as_deref(), Some("1"));
}

#[test]
fn replicas_of_a_replica_get_the_primarys_stream() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    let a = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut ra = conn(a.port);
    assert!(wait_until(30, || link_up(&mut ra)));
    // Sub-replicas sync from `a` while the primary keeps writing.
    let a_port = a.port.to_string();
    let b = Server::start_with(&["--shards", "3", "--replicaof", "127.0.0.1", &a_port]);
    let c = Redis::start_with(&["--replicaof", "127.0.0.1", &a_port]);
    let (mut rb, mut rc) = (conn(b.port), conn(c.port));
    write_round(&mut p, "during", 100);
    for r in [&mut rb, &mut rc] {
        assert!(wait_until(30, || link_up(r)));
    }
    write_round(&mut p, "after", 50);
    wait_one(&mut p);
    // The same history everywhere: the primary's id and offsets.
    for r in [&mut ra, &mut rb, &mut rc] {
        assert!(wait_until(30, || offsets_agree(&mut p, r)));
        assert_eq!(info_field(r, "master_replid"), info_field(&mut p, "master_replid"));
    }
    let want = contents(&mut p);
    for r in [&mut ra, &mut rb, &mut rc] {
        assert_eq!(contents(r), want);
    }
    assert_eq!(info_field(&mut ra, "connected_slaves").as_deref(), Some("2"));
    // A sub-replica whose link breaks continues from `a`'s backlog.
    assert_eq!(kill_replicas(&mut ra), 2);
    write_round(&mut p, "cut", 50);
    assert!(wait_until(30, || syncs(&mut ra) == (2, 2, 0)), "{:?}", syncs(&mut ra));
    wait_one(&mut p);
    for r in [&mut rb, &mut rc] {
        assert!(wait_until(30, || offsets_agree(&mut p, r)));
    }
    let want = contents(&mut p);
    for r in [&mut rb, &mut rc] {
        assert_eq!(contents(r), want);
    }
}

#[test]
fn a_replica_with_appendonly_journals_what_it_applies() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    let dir = damselfly_tests::cluster::TempDir::new("journaling-replica");
    let port = primary.port.to_string();
    let journal = ["--shards", "2", "--dir", dir.path(), "--appendonly", "yes", "--save", ""];
    let mut replica = Server::start_with(&[&journal[..], &["--replicaof", "127.0.0.1", &port]].concat());
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    write_round(&mut p, "after", 50);
    wait_one(&mut p);
    let want = contents(&mut p);
    assert_eq!(contents(&mut r), want);
    // Restarted on its own (not a replica any more), it has it all from
    // its journal: the synced data set and the stream after it.
    assert!(replica.terminate(std::time::Duration::from_secs(30)));
    let alone = Server::start_with(&journal);
    let mut a = conn(alone.port);
    assert!(wait_until(30, || redis::cmd("DBSIZE").query::<i64>(&mut a).is_ok()), "still loading");
    assert_eq!(contents(&mut a), want);
}

#[test]
fn a_snapshot_of_several_chunks_arrives_whole_and_leaves_no_file() {
    let dir = damselfly_tests::cluster::TempDir::new("chunked-sync");
    let primary = Server::start_with(&["--shards", "2", "--dir", dir.path()]);
    let mut p = conn(primary.port);
    // About 5mb: the snapshot goes out in 1mb chunks.
    for i in 0..50 {
        let _: () = redis::cmd("SET").arg(format!("big:{i}")).arg(format!("{i}").repeat(100_000)).query(&mut p).unwrap();
    }
    write_round(&mut p, "small", 50);
    let port = primary.port.to_string();
    let a = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let b = Redis::start_with(&["--replicaof", "127.0.0.1", &port]);
    let (mut ra, mut rb) = (conn(a.port), conn(b.port));
    for r in [&mut ra, &mut rb] {
        assert!(wait_until(30, || link_up(r)));
    }
    write_round(&mut p, "after", 20);
    let n: i64 = redis::cmd("WAIT").arg(2).arg(0).query(&mut p).unwrap();
    assert_eq!(n, 2);
    let want = contents(&mut p);
    assert_eq!(contents(&mut ra), want);
    assert_eq!(contents(&mut rb), want);
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("temp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A redis-server primary's MSET and DEL name keys this two-shard replica
/// keeps on both shards: each shard applies its part (the replica used to
/// drop the link, refusing them).
#[test]
fn a_damselfly_replica_with_two_shards_splits_mset_and_del_from_redis_server() {
    let primary = Redis::start();
    let mut p = conn(primary.port);
    let port = primary.port.to_string();
    let replica = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    let keys: Vec<String> = (0..16).map(|i| format!("stock:{i}")).collect();
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("{k}-v"))).collect();
    let _: () = redis::Commands::mset(&mut p, &pairs).unwrap();
    let _: i64 = redis::Commands::del(&mut p, &keys[..6]).unwrap();
    assert_eq!(redis::cmd("WAIT").arg(1).arg(5000).query::<i64>(&mut p).unwrap(), 1);
    let offset = info_field(&mut p, "master_repl_offset");
    assert!(wait_until(30, || info_field(&mut r, "master_repl_offset") == offset));
    let want: Vec<Option<String>> = redis::Commands::mget(&mut p, &keys).unwrap();
    assert_eq!(redis::Commands::mget::<_, Vec<Option<String>>>(&mut r, &keys).unwrap(), want);
    assert_eq!(want.iter().filter(|v| v.is_some()).count(), 10);
    assert_eq!(info_field(&mut r, "master_link_status").as_deref(), Some("up"));
    // One sync, never broken off.
    assert_eq!((stat(&mut p, "sync_full"), stat(&mut p, "sync_partial_ok")), (1, 0));
}

/// Client-side caching on a replica: a key the primary changes is
/// invalidated for the replica's tracking clients, and a FLUSHALL from the
/// primary or a full resynchronisation sends them the null invalidation
/// (Redis signals a flushed database in both cases).
#[test]
fn a_replicas_tracking_clients_hear_of_the_primarys_writes_and_flushes() {
    let primary = Server::start_with(&["--shards", "2"]);
    let replica = Server::start_with(&["--shards", "2"]);
    let mut r = conn(replica.port);
    let ok: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    assert_eq!(ok, "OK");
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    let mut t = replica.raw();
    t.cmd(&["HELLO", "3"]);
    assert_eq!(t.cmd(&["CLIENT", "TRACKING", "ON"]), "+OK\r\n");
    assert_eq!(t.cmd(&["GET", "cart:1"]), "_\r\n");
    let mut p = primary.raw();
    assert_eq!(p.cmd(&["SET", "cart:1", "3"]), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&t.read_reply()), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\ncart:1\r\n");
    assert_eq!(t.cmd(&["GET", "cart:1"]), "$1\r\n3\r\n");
    let null = ">2\r\n$10\r\ninvalidate\r\n_\r\n";
    assert_eq!(p.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&t.read_reply()), null);
    // A full resynchronisation (another primary's history) empties the
    // replica first.
    let other = Server::start_with(&["--shards", "1"]);
    assert_eq!(other.raw().cmd(&["SET", "cart:2", "1"]), "+OK\r\n");
    let ok: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(other.port).query(&mut r).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(String::from_utf8_lossy(&t.read_reply()), null);
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link to the other primary did not come up");
}

/// INFO counts replication traffic apart from clients' as Redis does: the
/// primary's `total_net_repl_output_bytes` and the replica's
/// `total_net_repl_input_bytes` carry the snapshot and the stream (here
/// 2 MB of values), the primary's `total_net_output_bytes` only its
/// replies; the per-second rates follow.
#[test]
fn replication_bytes_are_counted_apart() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    let replica = Server::start_with(&["--shards", "2"]);
    let mut r = conn(replica.port);
    let _: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    let value = "v".repeat(20_000);
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("big:{i}")).arg(&value).query(&mut p).unwrap();
    }
    wait_one(&mut p);
    let repl_out = stat(&mut p, "total_net_repl_output_bytes");
    let out = stat(&mut p, "total_net_output_bytes");
    let repl_in = stat(&mut r, "total_net_repl_input_bytes");
    assert!(repl_out >= 2_000_000, "primary sent {repl_out} bytes to its replica");
    assert!(repl_in >= 2_000_000 && repl_in <= repl_out + 10_000, "replica read {repl_in} of {repl_out} bytes");
    assert!(out < 100_000, "the primary's client output ({out} bytes) counts no stream");
    assert_eq!(stat(&mut r, "total_net_repl_output_bytes"), 0);
    // Sampled every 100 ms over the last 1.6 s.
    let rate = |c: &mut Connection, f: &str| -> f64 {
        let info: String = redis::cmd("INFO").arg("stats").query(c).expect("INFO");
        info.lines().find_map(|l| l.strip_prefix(&format!("{f}:")).and_then(|v| v.parse().ok())).expect(f)
    };
    assert!(wait_until(5, || rate(&mut p, "instantaneous_output_repl_kbps") > 0.0));
    assert!(wait_until(5, || rate(&mut r, "instantaneous_input_repl_kbps") > 0.0));
}

/// `repl-timeout`: a primary drops an online replica that stopped
/// acknowledging (SIGSTOP), and a replica drops the link to a primary that
/// went silent; each link comes back by itself once the peer runs again.
#[test]
fn repl_timeout_drops_a_silent_replica_and_a_silent_primary() {
    let slaves = |c: &mut Connection| info_field(c, "connected_slaves").and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
    let primary = Server::start_with(&["--shards", "1", "--repl-timeout", "2", "--repl-ping-replica-period", "1"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 20);
    let port = primary.port.to_string();
    let replica = Server::start_with(&["--shards", "1", "--repl-timeout", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r) && slaves(&mut p) == 1));
    replica.signal("STOP");
    assert!(wait_until(30, || slaves(&mut p) == 0), "the primary kept a silent replica");
    replica.signal("CONT");
    assert!(wait_until(30, || link_up(&mut r) && slaves(&mut p) == 1));
    primary.signal("STOP");
    assert!(wait_until(30, || !link_up(&mut r)), "the replica kept the link to a silent primary");
    primary.signal("CONT");
    assert!(wait_until(30, || link_up(&mut r)));
    write_round(&mut p, "after", 20);
    wait_one(&mut p);
    assert_eq!(contents(&mut r), contents(&mut p));
}

/// `bind-source-addr`: a replica connects to its primary from that local
/// address, which the primary then reports for it (INFO's `slaveN:ip=`).
#[test]
fn a_replica_connects_from_bind_source_addr() {
    let primary = Server::start();
    let mut p = conn(primary.port);
    let replica = Server::start();
    let mut r = conn(replica.port);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("bind-source-addr").arg("127.0.0.2").query(&mut r).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    assert!(wait_until(30, || link_up(&mut r)));
    let slave0 = info_field(&mut p, "slave0").expect("slave0");
    assert!(slave0.starts_with("ip=127.0.0.2,"), "{slave0}");
}
