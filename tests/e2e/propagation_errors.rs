//! `propagation-error-behavior`: a command from the primary's stream or
//! from the journal that fails is logged (Redis's `== CRITICAL ==` line)
//! and counted in INFO's `unexpected_error_replies`; under `ignore` the
//! node goes on, under `panic` a read-only replica stops and so does the
//! loading of a journal, under `panic-on-replicas` only the replica does.
//! A writable replica never stops for it (its own writes may diverge on
//! purpose), as in Redis.

use std::time::Duration;

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::repl::{conn, link_up};
use damselfly_tests::{start_refused, Raw, Server};

#[test]
fn a_failing_command_from_the_primary_is_logged_counted_or_fatal() {
    let primary = Server::start();
    let dir = TempDir::new("prop-replica");
    let log = format!("{}/replica.log", dir.path());
    let mut replica =
        Server::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string(), "--logfile", &log, "--replica-read-only", "no"]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)), "the replica's link did not come up");
    let mut p = primary.raw();
    let mut rr = replica.raw();
    assert_eq!(rr.cmd(&["CONFIG", "GET", "propagation-error-behavior"]), "*2\r\n$26\r\npropagation-error-behavior\r\n$6\r\nignore\r\n");

    // A writable replica's own write makes the primary's INCRBY fail there.
    assert_eq!(rr.cmd(&["SET", "number", "foo"]), "+OK\r\n");
    assert_eq!(p.cmd(&["INCRBY", "number", "1"]), ":1\r\n");
    assert_eq!(p.cmd(&["SET", "after", "1"]), "+OK\r\n");
    assert!(wait_until(30, || rr.cmd(&["GET", "after"]) == "$1\r\n1\r\n"));
    assert_eq!(rr.cmd(&["GET", "number"]), "$3\r\nfoo\r\n");
    assert!(rr.cmd(&["INFO", "stats"]).contains("\r\nunexpected_error_replies:1\r\n"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("== CRITICAL == This replica is sending an error to its master: 'WRONGTYPE")
            || text.contains("== CRITICAL == This replica is sending an error to its master: 'ERR value is not an integer"),
        "{text}"
    );
    assert!(text.contains("after processing the command 'incrby'"), "{text}");

    // Writable, under panic: it still goes on.
    assert_eq!(rr.cmd(&["CONFIG", "SET", "propagation-error-behavior", "panic"]), "+OK\r\n");
    assert_eq!(p.cmd(&["INCRBY", "number", "1"]), ":2\r\n");
    assert_eq!(p.cmd(&["SET", "after", "2"]), "+OK\r\n");
    assert!(wait_until(30, || rr.cmd(&["GET", "after"]) == "$1\r\n2\r\n"));
    assert!(rr.cmd(&["INFO", "stats"]).contains("\r\nunexpected_error_replies:2\r\n"));

    // Read-only under panic-on-replicas: the replica stops.
    assert_eq!(rr.cmd(&["CONFIG", "SET", "propagation-error-behavior", "panic-on-replicas"]), "+OK\r\n");
    assert_eq!(rr.cmd(&["CONFIG", "SET", "replica-read-only", "yes"]), "+OK\r\n");
    assert_eq!(p.cmd(&["INCRBY", "number", "1"]), ":3\r\n");
    assert!(wait_until(30, || replica.exited()), "the replica did not stop");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("This replica panicked sending an error to its master after processing the command 'incrby'"), "{text}");
    // The primary is untouched.
    assert_eq!(p.cmd(&["GET", "number"]), "$1\r\n3\r\n");
}

/// Appends `INCR k` to the journal's increment file of a node whose `k`
/// holds text: replaying it fails.
fn journal_with_a_failing_command(dir: &str) {
    let mut s = Server::start_with(&["--dir", dir, "--appendonly", "yes", "--save", ""]);
    let mut c = s.raw();
    assert!(wait_until(30, || !c.cmd(&["INFO", "persistence"]).contains("loading:1")));
    assert_eq!(c.cmd(&["SET", "k", "abc"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "other", "1"]), "+OK\r\n");
    assert!(s.terminate(Duration::from_secs(30)));
    let aof = std::path::Path::new(dir).join("appendonlydir");
    let manifest = std::fs::read_to_string(aof.join("appendonly.aof.manifest")).unwrap();
    let incr = manifest
        .lines()
        .find(|l| l.contains("type i"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no increment file in {manifest}"))
        .to_string();
    let mut text = std::fs::read(aof.join(&incr)).unwrap();
    text.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$4\r\nlast\r\n$1\r\n1\r\n");
    std::fs::write(aof.join(&incr), text).unwrap();
}

#[test]
fn a_failing_command_in_the_journal_is_skipped_or_stops_the_loading() {
    let dir = TempDir::new("prop-journal");
    journal_with_a_failing_command(dir.path());
    // panic: the node does not start, and says why.
    let err = start_refused(&["--dir", dir.path(), "--appendonly", "yes", "--save", "", "--propagation-error-behavior", "panic"]);
    assert!(err.contains("This server panicked sending an error to its AOF-loading-client after processing the command 'incr'"), "{err}");
    // ignore (the default; panic-on-replicas too): it loads everything
    // else, the failed command left out.
    let s = Server::start_with(&[
        "--dir",
        dir.path(),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--propagation-error-behavior",
        "panic-on-replicas",
    ]);
    let mut c: Raw = s.raw();
    assert!(wait_until(30, || c.cmd(&["GET", "last"]) == "$1\r\n1\r\n"));
    assert_eq!(c.cmd(&["GET", "k"]), "$3\r\nabc\r\n");
    let info = c.cmd(&["INFO", "stats"]);
    assert!(info.contains("unexpected_error_replies:1\r\n"), "{info}");
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    assert!(c.cmd(&["INFO", "stats"]).contains("unexpected_error_replies:0\r\n"));
}
