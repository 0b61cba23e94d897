//! A redis-server primary has one keyspace: it sends RENAME, SMOVE,
//! SUNIONSTORE, LMOVE, ... whose keys a replica with two shards keeps on
//! both, and FUNCTION LOAD, which every shard needs. The replica applies
//! each holding every shard, ends with the primary's data (DEBUG DIGEST),
//! passes the stream on to its own replica once, and journals what it
//! applied so that it has the same data after a restart. (It used to
//! refuse them, dropping the link and syncing in full again and again.)

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::repl::{apart, cross_shard_writes};
use damselfly_tests::{Raw, Redis, Server};

fn digest(c: &mut Raw) -> String {
    c.cmd(&["DEBUG", "DIGEST"])
}

fn field(c: &mut Raw, section: &str, name: &str) -> String {
    let info = c.cmd(&["INFO", section]);
    let line = info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")));
    line.unwrap_or_else(|| panic!("no {name} in {info}")).to_string()
}

const LIBRARY: &str =
    "#!lua name=shop\nredis.register_function('put', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";

#[test]
fn a_two_shard_replica_applies_a_redis_primarys_cross_shard_writes() {
    let primary = Redis::start_with(&["--enable-debug-command", "yes"]);
    let port = primary.port.to_string();
    let dir = TempDir::new("cross-shard-replica");
    let own = ["--shards", "2", "--enable-debug-command", "yes", "--dir", dir.path(), "--appendonly", "yes", "--save", ""];
    let link = ["--replicaof", "127.0.0.1", &port, "--propagation-error-behavior", "panic"];
    let mut replica = Server::start_with(&[&own[..], &link[..]].concat());
    let rport = replica.port.to_string();
    let chained = Server::start_with(&["--shards", "3", "--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &rport]);
    let (mut p, mut r, mut c) = (primary.raw(), replica.raw(), chained.raw());
    for x in [&mut r, &mut c] {
        assert!(wait_until(30, || field(x, "replication", "master_link_status") == "up"));
    }
    for cmd in cross_shard_writes() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reply = p.cmd(&args);
        assert!(!reply.starts_with('-'), "{cmd:?}: {reply}");
    }
    assert_eq!(p.cmd(&["FUNCTION", "LOAD", LIBRARY]), "$4\r\nshop\r\n");
    assert_eq!(p.cmd(&["FCALL", "put", "1", "by-function", "v"]), "+OK\r\n");
    // A served blocked move travels as LMOVE, here across shards.
    let w = apart("w", 2);
    let mut waiter = primary.raw();
    waiter.send_cmd(&[b"BLMOVE", w[0].as_bytes(), w[1].as_bytes(), b"LEFT", b"RIGHT", b"5"]);
    p.wait_blocked(1);
    assert_eq!(p.cmd(&["RPUSH", &w[0], "item"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&waiter.read_reply()), "$4\r\nitem\r\n");
    assert_eq!(p.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    let want = digest(&mut p);
    assert_eq!(digest(&mut r), want);
    assert!(wait_until(30, || digest(&mut c) == want), "the chained replica differs");
    for x in [&mut r, &mut c] {
        assert!(x.cmd(&["FUNCTION", "LIST"]).contains("shop"));
        assert_eq!(field(x, "stats", "unexpected_error_replies"), "0");
    }
    // Counted as Redis counts its master client's commands.
    assert!(field(&mut r, "commandstats", "cmdstat_rename").starts_with("calls=4,"));
    assert!(field(&mut r, "commandstats", "cmdstat_sadd").starts_with("calls=2,"));
    // One full sync, never broken off.
    assert_eq!(field(&mut p, "stats", "sync_full"), "1");
    assert_eq!(field(&mut r, "replication", "master_link_status"), "up");
    // Started on its own, the replica has it all from its journal.
    drop((r, c));
    drop(chained);
    assert!(replica.terminate(std::time::Duration::from_secs(30)));
    let alone = Server::start_with(&own);
    let mut a = alone.raw();
    damselfly_tests::wait_for("the journal to load", || a.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
    assert_eq!(digest(&mut a), want);
    assert!(a.cmd(&["FUNCTION", "LIST"]).contains("shop"));
}

/// FUNCTION LOAD, DELETE, FLUSH and RESTORE change no shard's data: they
/// travel as sent to the replicas (a damselfly and a redis-server one)
/// and into the journal, as Redis propagates them (a library loaded after
/// a replica's sync used to reach neither, and was lost by a restart from
/// the journal).
#[test]
fn function_changes_reach_the_replicas_and_the_journal() {
    let dir = TempDir::new("function-journal");
    let own = ["--shards", "2", "--dir", dir.path(), "--appendonly", "yes", "--appendfsync", "always", "--save", ""];
    let primary = Server::start_with(&own);
    let port = primary.port.to_string();
    let ours = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let theirs = Redis::start_with(&["--replicaof", "127.0.0.1", &port]);
    let (mut p, mut r, mut o) = (primary.raw(), ours.raw(), theirs.raw());
    for x in [&mut r, &mut o] {
        assert!(wait_until(30, || field(x, "replication", "master_link_status") == "up"));
    }
    let other = LIBRARY.replace("shop", "cart").replace("'put'", "'add'");
    assert_eq!(p.cmd(&["FUNCTION", "LOAD", LIBRARY]), "$4\r\nshop\r\n");
    assert_eq!(p.cmd(&["FUNCTION", "LOAD", &other]), "$4\r\ncart\r\n");
    assert_eq!(p.cmd(&["FUNCTION", "DELETE", "shop"]), "+OK\r\n");
    assert_eq!(p.cmd(&["WAIT", "2", "5000"]), ":2\r\n");
    let list = p.cmd(&["FUNCTION", "LIST"]);
    assert!(list.contains("cart") && !list.contains("shop"), "{list}");
    assert_eq!(r.cmd(&["FUNCTION", "LIST"]), list);
    assert_eq!(o.cmd(&["FUNCTION", "LIST"]), list);
    // Killed (-9) and started again: the journal has the libraries.
    drop((p, r, o));
    drop(primary);
    let again = Server::start_with(&own);
    let mut a = again.raw();
    damselfly_tests::wait_for("the journal to load", || a.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
    assert_eq!(a.cmd(&["FUNCTION", "LIST"]), list);
    assert_eq!(a.cmd(&["FCALL", "add", "1", "k", "v"]), "+OK\r\n");
}
