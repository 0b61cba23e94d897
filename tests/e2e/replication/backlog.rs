//! Partial resynchronisation from the backlog: a replica whose link is cut
//! continues with `+CONTINUE` (Damselfly and redis-server, as primary and
//! as replica), PSYNC's exact answers in and out of the backlog, the
//! backlog freed after its TTL, and a promoted replica serving its former
//! siblings from its second replication id.

use damselfly_tests::cluster::wait_until;
use damselfly_tests::repl::{conn, contents, differences, info_field, link_up, stat, wait_one, write_round};
use damselfly_tests::{Redis, Server};

use super::{kill_replicas, offsets_agree, syncs};

#[test]
fn a_damselfly_replica_continues_from_the_backlog_after_its_link_breaks() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    let replica = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    wait_one(&mut p);
    assert_eq!(syncs(&mut p), (1, 0, 0));
    // Cut from the primary's side, twice; writes go on while the link is
    // down, and the replica continues where it was each time.
    for (round, n) in [("cut1", 1), ("cut2", 2)] {
        assert_eq!(kill_replicas(&mut p), 1);
        write_round(&mut p, round, 50);
        assert!(wait_until(30, || syncs(&mut p) == (1, n, 0)), "{:?}", syncs(&mut p));
        assert!(wait_until(30, || link_up(&mut r)));
    }
    // The stream does not repeat a SELECT after a partial resync: the
    // replica goes on in the database it was in.
    let mut p3 = conn(primary.port);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut p3).unwrap();
    let _: () = redis::cmd("SET").arg("in-db-3").arg("a").query(&mut p3).unwrap();
    wait_one(&mut p);
    assert_eq!(kill_replicas(&mut p), 1);
    let _: () = redis::cmd("SET").arg("also-in-db-3").arg("b").query(&mut p3).unwrap();
    assert!(wait_until(30, || syncs(&mut p) == (1, 3, 0)), "{:?}", syncs(&mut p));
    wait_one(&mut p);
    let mut r3 = conn(replica.port);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut r3).unwrap();
    assert_eq!(redis::cmd("MGET").arg("in-db-3").arg("also-in-db-3").query::<Vec<String>>(&mut r3).unwrap(), ["a", "b"]);
    write_round(&mut p, "after", 50);
    wait_one(&mut p);
    assert_eq!(differences(&mut r, &mut p), Vec::<String>::new());
    assert!(wait_until(30, || offsets_agree(&mut p, &mut r)));
    assert_eq!(info_field(&mut r, "master_replid"), info_field(&mut p, "master_replid"));
    // Both keep a backlog of the same stream: the replica's ends where the
    // primary's does.
    for c in [&mut p, &mut r] {
        let mut f = |n: &str| info_field(c, n).unwrap();
        let (off, hist, first): (u64, u64, u64) = (
            f("master_repl_offset").parse().unwrap(),
            f("repl_backlog_histlen").parse().unwrap(),
            f("repl_backlog_first_byte_offset").parse().unwrap(),
        );
        assert_eq!(f("repl_backlog_active"), "1");
        assert_eq!(f("repl_backlog_size"), "1048576");
        assert!(hist > 0 && first == off + 1 - hist, "offset {off}, histlen {hist}, first {first}");
    }
    // The replica's connection is typed as Redis types it.
    let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("replica").query(&mut p).unwrap();
    assert!(list.contains(" flags=S "), "{list}");
}

#[test]
fn psync_answers_continue_only_within_the_backlog() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    // The first replica starts the backlog (and the history it records).
    let mut first = primary.raw();
    first.send_cmd(&[b"PSYNC", b"?", b"-1"]);
    let full = String::from_utf8(first.read_reply()).unwrap();
    let replid = info_field(&mut p, "master_replid").unwrap();
    assert!(full.starts_with(&format!("+FULLRESYNC {replid} ")), "{full}");
    drop(first);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut p).unwrap();
    let mut off = 0;
    assert!(wait_until(10, || {
        off = info_field(&mut p, "master_repl_offset").unwrap().parse().unwrap();
        off > 0
    }));
    let cont = format!("+CONTINUE {replid}\r\n");
    let start = (off + 1).to_string();
    let cases: Vec<(bool, Vec<String>, String)> = vec![
        // With `capa psync2` the reply names the id, and the stream follows.
        (true, vec!["PSYNC".into(), replid.clone(), start.clone()], cont.clone()),
        (false, vec!["PSYNC".into(), replid.clone(), start.clone()], "+CONTINUE\r\n".into()),
        // From the first byte of the backlog: the SET comes with it.
        (true, vec!["PSYNC".into(), replid.clone(), "1".into()], cont.clone()),
    ];
    for (capa, args, want) in cases {
        let mut raw = primary.raw();
        if capa {
            assert_eq!(raw.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]), "+OK\r\n");
        }
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        raw.send_cmd(&args);
        assert_eq!(String::from_utf8(raw.read_reply()).unwrap(), want, "{args:?}");
        if args[2] == b"1" {
            let stream = String::from_utf8_lossy(&raw.read_reply()).into_owned();
            assert!(stream.starts_with("*2\r\n$6\r\nSELECT\r\n"), "{stream}");
        }
    }
    // Unknown histories and offsets the backlog does not hold: full.
    let mut err = 0;
    for (id, from) in
        [("0123456789012345678901234567890123456789".to_string(), start.clone()), (replid.clone(), (off + 1_000_000).to_string())]
    {
        let mut raw = primary.raw();
        raw.send_cmd(&[b"PSYNC", id.as_bytes(), from.as_bytes()]);
        let got = String::from_utf8(raw.read_reply()).unwrap();
        assert!(got.starts_with("+FULLRESYNC "), "{id} {from}: {got}");
        err += 1;
    }
    assert!(wait_until(10, || syncs(&mut p) == (1 + err, 3, err)), "{:?}", syncs(&mut p));

    // A backlog of 16kb at least (Redis's floor), resized at run time: once
    // the stream has moved past it, the start is gone.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("repl-backlog-size").arg("1").query(&mut p).unwrap();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("repl-backlog-size").query(&mut p).unwrap();
    assert_eq!(got, ["repl-backlog-size", "16384"]);
    let _: () = redis::cmd("SET").arg("big").arg("x".repeat(40_000)).query(&mut p).unwrap();
    assert!(wait_until(10, || info_field(&mut p, "repl_backlog_histlen").as_deref() == Some("16384")));
    assert_eq!(info_field(&mut p, "repl_backlog_size").as_deref(), Some("16384"));
    let mut raw = primary.raw();
    raw.send_cmd(&[b"PSYNC", replid.as_bytes(), b"1"]);
    assert!(String::from_utf8(raw.read_reply()).unwrap().starts_with("+FULLRESYNC "));
}

#[test]
fn the_backlog_is_freed_after_repl_backlog_ttl_without_replicas() {
    let primary = Server::start_with(&["--repl-backlog-ttl", "1"]);
    let mut p = conn(primary.port);
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("repl-backlog-ttl").query(&mut p).unwrap();
    assert_eq!(got, ["repl-backlog-ttl", "1"]);
    assert_eq!(info_field(&mut p, "repl_backlog_active").as_deref(), Some("0"));
    let mut raw = primary.raw();
    raw.send_cmd(&[b"PSYNC", b"?", b"-1"]);
    assert!(String::from_utf8(raw.read_reply()).unwrap().starts_with("+FULLRESYNC "));
    assert_eq!(info_field(&mut p, "repl_backlog_active").as_deref(), Some("1"));
    let replid = info_field(&mut p, "master_replid").unwrap();
    drop(raw);
    // Gone a second after the last replica left, with the history's id.
    assert!(wait_until(30, || info_field(&mut p, "repl_backlog_active").as_deref() == Some("0")));
    assert_ne!(info_field(&mut p, "master_replid").unwrap(), replid);
    assert_eq!(info_field(&mut p, "repl_backlog_histlen").as_deref(), Some("0"));
}

#[test]
fn a_promoted_replica_lets_its_former_siblings_continue() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    let port = primary.port.to_string();
    let a = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let b = Server::start_with(&["--shards", "2", "--replicaof", "127.0.0.1", &port]);
    let c = Redis::start_with(&["--replicaof", "127.0.0.1", &port]);
    let (mut ra, mut rb, mut rc) = (conn(a.port), conn(b.port), conn(c.port));
    for r in [&mut ra, &mut rb, &mut rc] {
        assert!(wait_until(30, || link_up(r)));
    }
    write_round(&mut p, "during", 50);
    let n: i64 = redis::cmd("WAIT").arg(3).arg(0).query(&mut p).unwrap();
    assert_eq!(n, 3);
    // Every replica has the whole stream: stop the primary, promote `a`.
    assert!(wait_until(30, || [&mut ra, &mut rb, &mut rc].into_iter().all(|r| offsets_agree(&mut p, r))));
    let (old_id, old_off) = (info_field(&mut p, "master_replid").unwrap(), info_field(&mut p, "master_repl_offset").unwrap());
    drop(primary);
    let ok: String = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut ra).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(info_field(&mut ra, "master_replid2"), Some(old_id.clone()));
    let second: u64 = info_field(&mut ra, "second_repl_offset").unwrap().parse().unwrap();
    assert_eq!(second, old_off.parse::<u64>().unwrap() + 1);
    assert_ne!(info_field(&mut ra, "master_replid"), Some(old_id));
    // It takes writes at once; its former siblings (a Damselfly node and a
    // redis-server) follow it with a partial resync and get those writes.
    write_round(&mut ra, "promoted", 30);
    for r in [&mut rb, &mut rc] {
        let ok: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(a.port).query(r).unwrap();
        assert_eq!(ok, "OK");
    }
    for r in [&mut rb, &mut rc] {
        assert!(wait_until(30, || link_up(r)));
    }
    assert_eq!(syncs(&mut ra), (0, 2, 0));
    write_round(&mut ra, "after", 30);
    let n: i64 = redis::cmd("WAIT").arg(2).arg(0).query(&mut ra).unwrap();
    assert_eq!(n, 2);
    let want = contents(&mut ra);
    assert_eq!(contents(&mut rb), want);
    assert_eq!(contents(&mut rc), want);
    assert_eq!(info_field(&mut rc, "master_replid"), info_field(&mut ra, "master_replid"));
}

#[test]
fn redis_server_continues_from_a_damselfly_backlog() {
    let primary = Server::start_with(&["--shards", "2"]);
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    wait_one(&mut p);
    assert_eq!(kill_replicas(&mut p), 1);
    write_round(&mut p, "cut", 50);
    assert!(wait_until(30, || syncs(&mut p) == (1, 1, 0)), "{:?}", syncs(&mut p));
    write_round(&mut p, "after", 50);
    wait_one(&mut p);
    assert_eq!(differences(&mut r, &mut p), Vec::<String>::new());
    assert!(wait_until(30, || offsets_agree(&mut p, &mut r)));
}

#[test]
fn a_damselfly_replica_continues_with_redis_server_after_its_link_breaks() {
    let primary = Redis::start();
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 50);
    // One shard: redis-server's MSET over keys a node spreads over shards
    // cannot be applied (see a_damselfly_replica_follows_redis_server).
    let replica = Server::start_with(&["--shards", "1", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    wait_one(&mut p);
    assert_eq!(kill_replicas(&mut p), 1);
    write_round(&mut p, "cut", 50);
    assert!(wait_until(30, || syncs(&mut p).1 == 1), "{:?}", syncs(&mut p));
    write_round(&mut p, "after", 50);
    wait_one(&mut p);
    assert_eq!(contents(&mut r), contents(&mut p));
    assert_eq!(stat(&mut p, "sync_full"), 1);
    assert!(wait_until(30, || offsets_agree(&mut p, &mut r)));
}
