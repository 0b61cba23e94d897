//! `min-replicas-to-write` / `min-replicas-max-lag` against a real process,
//! compared with redis-server 7.0: a primary without enough good replicas
//! refuses writes, scripts that declare or make writes, and an EXEC whose
//! queue writes (discarding the transaction); a replica that acknowledges
//! lets writes through again.

use damselfly_tests::cluster::wait_until;
use damselfly_tests::repl::{conn, info_field, link_up};
use damselfly_tests::{Raw, Redis, Server};

const NOREPLICAS: &str = "-NOREPLICAS Not enough good replicas to write.\r\n";

/// Commands of one client (`a`) while another (`b`) changes the settings;
/// each step: which client, the command, and the exact reply wanted.
const WITHOUT_REPLICAS: &[(char, &[&str], &str)] = &[
    ('a', &["CONFIG", "GET", "min-replicas-max-lag"], "*2\r\n$20\r\nmin-replicas-max-lag\r\n$2\r\n10\r\n"),
    ('a', &["CONFIG", "GET", "min-slaves-to-write"], "*2\r\n$19\r\nmin-slaves-to-write\r\n$1\r\n0\r\n"),
    ('a', &["SET", "xx", "1"], "+OK\r\n"),
    // A write queued before the setting changes: EXEC is refused and the
    // transaction discarded.
    ('a', &["MULTI"], "+OK\r\n"),
    ('a', &["INCR", "xx"], "+QUEUED\r\n"),
    ('b', &["CONFIG", "SET", "min-replicas-to-write", "2"], "+OK\r\n"),
    ('a', &["EXEC"], "-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n"),
    ('a', &["EXEC"], "-ERR EXEC without MULTI\r\n"),
    ('a', &["GET", "xx"], "$1\r\n1\r\n"),
    // Reads go on, in a transaction too; writes are refused, and a write
    // refused while queuing fails the EXEC.
    ('a', &["MULTI"], "+OK\r\n"),
    ('a', &["GET", "xx"], "+QUEUED\r\n"),
    ('a', &["EXEC"], "*1\r\n$1\r\n1\r\n"),
    ('a', &["MULTI"], "+OK\r\n"),
    ('a', &["SET", "xx", "2"], NOREPLICAS),
    ('a', &["EXEC"], "-EXECABORT Transaction discarded because of previous errors.\r\n"),
    ('a', &["DEL", "xx"], NOREPLICAS),
    // Scripts: flags without no-writes are refused before running; a
    // script without flags at its first write.
    ('a', &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','xx')", "1", "xx"], "$1\r\n1\r\n"),
    ('a', &["EVAL", "return redis.call('get','xx')", "1", "xx"], "$1\r\n1\r\n"),
    ('a', &["EVAL", "#!lua\nreturn redis.call('get','xx')", "1", "xx"], NOREPLICAS),
    ('a', &["EVAL", "return redis.pcall('set','xx','3')", "1", "xx"], NOREPLICAS),
    ('a', &["INFO", "replication"], "min_slaves_good_slaves:0"),
    // A lag of 0 turns the check off.
    ('b', &["CONFIG", "SET", "min-slaves-max-lag", "0"], "+OK\r\n"),
    ('a', &["INCR", "xx"], ":2\r\n"),
    ('b', &["CONFIG", "SET", "min-replicas-max-lag", "10"], "+OK\r\n"),
    ('a', &["INCR", "xx"], NOREPLICAS),
    ('b', &["CONFIG", "SET", "min-replicas-to-write", "0"], "+OK\r\n"),
    ('a', &["INCR", "xx"], ":3\r\n"),
];

/// The replies to `WITHOUT_REPLICAS` (INFO: the line it names, if there).
fn without_replicas(port: u16) -> Vec<String> {
    let (mut a, mut b) = (Raw::connect(port), Raw::connect(port));
    WITHOUT_REPLICAS
        .iter()
        .map(|(who, cmd, want)| {
            let got = if *who == 'a' { a.cmd(cmd) } else { b.cmd(cmd) };
            if cmd[0] == "INFO" {
                got.lines().find(|l| l == want).unwrap_or("").to_string()
            } else {
                got
            }
        })
        .collect()
}

#[test]
fn without_enough_good_replicas_writes_are_refused_as_redis_does() {
    let want: Vec<String> = WITHOUT_REPLICAS.iter().map(|t| t.2.to_string()).collect();
    let s = Server::start_with(&["--shards", "2"]);
    assert_eq!(without_replicas(s.port), want);
    let r = Redis::start();
    assert_eq!(without_replicas(r.port), want, "redis-server");
}

/// With one replica online and acknowledging, `min-replicas-to-write 1`
/// lets writes through; asking for two refuses them again.
fn with_one_replica(primary: u16) -> Vec<String> {
    let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &primary.to_string()]);
    let (mut p, mut r) = (conn(primary), conn(replica.port));
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    let mut a = Raw::connect(primary);
    let mut got = vec![a.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"])];
    // The replica acknowledges every second: wait until the primary counts it.
    assert!(wait_until(30, || info_field(&mut p, "min_slaves_good_slaves").as_deref() == Some("1")));
    for cmd in [&["SET", "k", "v"][..], &["EVAL", "#!lua\nreturn redis.call('set','k','w')", "1", "k"]] {
        got.push(a.cmd(cmd));
    }
    got.push(a.cmd(&["CONFIG", "SET", "min-replicas-to-write", "2"]));
    got.push(a.cmd(&["SET", "k", "v"]));
    got
}

#[test]
fn a_replica_that_acknowledges_counts_as_good() {
    let want = ["+OK\r\n", "+OK\r\n", "+OK\r\n", "+OK\r\n", NOREPLICAS];
    let s = Server::start();
    assert_eq!(with_one_replica(s.port), want);
    let r = Redis::start();
    assert_eq!(with_one_replica(r.port), want, "redis-server");
}
