//! A blocked BRPOPLPUSH or BLMOVE that is served travels as RPOPLPUSH or
//! LMOVE (as Redis propagates it): a replica applies it on the shard of
//! its keys (it used to refuse it as a command for several shards, and
//! under `propagation-error-behavior panic` stop), and the journal
//! replays it after a restart.

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::{Raw, Server};

fn digest(c: &mut Raw) -> String {
    c.cmd(&["DEBUG", "DIGEST"])
}

#[test]
fn served_blocked_moves_reach_the_replica_and_the_journal() {
    let dir = TempDir::new("blocked-moves");
    let common = ["--enable-debug-command", "yes", "--shards", "2"];
    let mut args = vec!["--dir", dir.path(), "--appendonly", "yes", "--save", ""];
    args.extend(common);
    let primary = Server::start_with(&args);
    let port = primary.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port, "--propagation-error-behavior", "panic"];
    args.extend(common);
    let replica = Server::start_with(&args);
    let (mut p, mut r) = (primary.raw(), replica.raw());
    assert!(wait_until(30, || r.cmd(&["INFO", "replication"]).contains("master_link_status:up")));
    // Source and destination share a hash tag: one shard holds both.
    let mut waiters = Vec::new();
    for cmd in [&["BRPOPLPUSH", "{l}a", "{l}b", "5"][..], &["BLMOVE", "{l}c", "{l}d", "LEFT", "RIGHT", "5"]] {
        let mut w = primary.raw();
        w.send_cmd(&cmd.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        waiters.push(w);
    }
    p.wait_blocked(2);
    assert_eq!(p.cmd(&["LPUSH", "{l}a", "foo"]), ":1\r\n");
    assert_eq!(p.cmd(&["RPUSH", "{l}c", "x", "y"]), ":2\r\n");
    assert_eq!(String::from_utf8_lossy(&waiters[0].read_reply()), "$3\r\nfoo\r\n");
    assert_eq!(String::from_utf8_lossy(&waiters[1].read_reply()), "$1\r\nx\r\n");
    assert_eq!(p.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    let want = digest(&mut p);
    assert_eq!(digest(&mut r), want);
    assert_eq!(r.cmd(&["LRANGE", "{l}d", "0", "-1"]), "*1\r\n$1\r\nx\r\n");
    assert!(r.cmd(&["INFO", "stats"]).contains("unexpected_error_replies:0\r\n"));
    drop((p, r, waiters));
    drop(replica);
    drop(primary);
    let mut args = vec!["--dir", dir.path(), "--appendonly", "yes", "--save", ""];
    args.extend(common);
    let again = Server::start_with(&args);
    let mut c = again.raw();
    damselfly_tests::wait_for("the journal to load", || c.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
    assert_eq!(digest(&mut c), want);
}
