//! The replica's link to its primary as Redis shows it: a client with flag
//! `M` and the primary's address in the replica's CLIENT LIST, which CLIENT
//! KILL (by address or TYPE master) breaks and the replica makes again,
//! continuing from the backlog; ROLE's `handshake` while the primary has
//! not answered PSYNC; and a primary gone silent during the handshake
//! logged with Redis's words once `repl-timeout` passes.

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::repl::{conn, contents, link_up, wait_one, write_round};
use damselfly_tests::Server;
use redis::Connection;

use super::syncs;

fn role(c: &mut Connection) -> Vec<redis::Value> {
    redis::cmd("ROLE").query(c).expect("ROLE")
}

fn link_state(c: &mut Connection) -> String {
    match role(c).get(3) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

fn master_clients(c: &mut Connection) -> Vec<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("master").query(c).expect("CLIENT LIST");
    list.lines().map(str::to_string).collect()
}

#[test]
fn the_link_is_a_client_that_client_kill_breaks_and_psync_continues() {
    let primary = Server::start();
    let mut p = conn(primary.port);
    write_round(&mut p, "before", 20);
    let replica = Server::start();
    let mut r = conn(replica.port);
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    assert!(wait_until(30, || link_up(&mut r)));
    let listed = master_clients(&mut r);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let addr = format!("addr=127.0.0.1:{} ", primary.port);
    assert!(listed[0].contains(&addr) && listed[0].contains(" flags=M "), "{}", listed[0]);
    // No other type lists it.
    let normal: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("normal").query(&mut r).unwrap();
    assert!(!normal.contains("flags=M"), "{normal}");

    let (full, ok, _) = syncs(&mut p);
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut r).unwrap();
    assert_eq!(killed, 1);
    assert!(wait_until(30, || syncs(&mut p).1 == ok + 1 && link_up(&mut r)), "{:?}", syncs(&mut p));
    // The old form, by address.
    let target = format!("127.0.0.1:{}", primary.port);
    let _: () = redis::cmd("CLIENT").arg("KILL").arg(&target).query(&mut r).unwrap();
    assert!(wait_until(30, || syncs(&mut p).1 == ok + 2 && link_up(&mut r)), "{:?}", syncs(&mut p));
    assert_eq!(syncs(&mut p).0, full, "a partial resync, never a full one");
    write_round(&mut p, "after", 20);
    wait_one(&mut p);
    assert_eq!(contents(&mut r), contents(&mut p));
    // REPLICAOF NO ONE: the link is gone from the list.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    assert!(wait_until(30, || master_clients(&mut r).is_empty()));
}

#[test]
fn a_replica_waits_in_handshake_and_times_out_on_a_silent_primary() {
    let primary =
        Server::start_with(&["--enable-debug-command", "yes", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "1000"]);
    let dir = TempDir::new("link-log");
    let log = format!("{}/replica.log", dir.path());
    let replica = Server::start_with(&["--repl-timeout", "2", "--logfile", &log, "--loglevel", "notice"]);
    let mut r = conn(replica.port);
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port).query(&mut r).unwrap();
    // The primary holds its answer to PSYNC (it waits for more replicas)
    // and keeps the link alive with newlines.
    assert!(wait_until(30, || link_state(&mut r) == "handshake"), "{}", link_state(&mut r));
    let waited = std::time::Instant::now();
    while waited.elapsed() < std::time::Duration::from_secs(3) {
        assert_eq!(link_state(&mut r), "handshake");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!std::fs::read_to_string(&log).unwrap_or_default().contains("Timeout connecting to the MASTER"));
    // Then the primary stops: not even newlines come.
    let mut p = conn(primary.port);
    let sleeper = std::thread::spawn(move || {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg("5").query(&mut p);
    });
    assert!(
        wait_until(30, || std::fs::read_to_string(&log).unwrap_or_default().contains("Timeout connecting to the MASTER...")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    sleeper.join().expect("sleeper");
}

/// `replica-announce-ip` / `-port`: the primary shows the announced
/// address (INFO's slaveN, ROLE) instead of the connection's, from a
/// damselfly replica and from a redis-server one; `replica-announced`
/// is INFO's `replica_announced`.
#[test]
fn a_replica_announces_the_address_it_is_reached_at() {
    use damselfly_tests::repl::info_field;
    let primary = Server::start();
    let mut p = conn(primary.port);
    let port = primary.port.to_string();
    let replica =
        Server::start_with(&["--replicaof", "127.0.0.1", &port, "--replica-announce-ip", "10.1.2.3", "--replica-announce-port", "4242"]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    let slave0 = info_field(&mut p, "slave0").expect("slave0");
    assert!(slave0.starts_with("ip=10.1.2.3,port=4242,"), "{slave0}");
    let roles = format!("{:?}", role(&mut p));
    assert!(roles.contains("10.1.2.3") && roles.contains("4242"), "{roles}");
    assert_eq!(info_field(&mut r, "replica_announced").as_deref(), Some("1"));
    let _: () = redis::cmd("CONFIG").arg("SET").arg("replica-announced").arg("no").query(&mut r).unwrap();
    assert_eq!(info_field(&mut r, "replica_announced").as_deref(), Some("0"));
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG").arg("SET").arg("replica-announce-port").arg("70000").query(&mut r);
    assert!(bad.is_err());
    drop(r);
    drop(replica);
    let theirs = damselfly_tests::Redis::start_with(&["--replicaof", "127.0.0.1", &port, "--replica-announce-ip", "10.9.8.7"]);
    let mut t = conn(theirs.port);
    assert!(wait_until(30, || link_up(&mut t)));
    assert!(
        wait_until(30, || info_field(&mut p, "slave0").is_some_and(|s| s.starts_with("ip=10.9.8.7,"))),
        "{:?}",
        info_field(&mut p, "slave0")
    );
}
