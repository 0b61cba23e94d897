//! Shutdown as Redis 7 does it: a primary gives lagging replicas
//! `shutdown-timeout` to catch up (writes paused meanwhile) and logs how
//! many are in sync; SHUTDOWN ABORT cancels a shutdown still waiting;
//! NOW skips the wait; `shutdown-on-sigterm` says what SIGTERM does.

use std::time::{Duration, Instant};

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::repl::{conn, link_up};
use damselfly_tests::{Raw, Server};

fn log_has(path: &str, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|l| l.contains(text))
}

#[test]
fn a_primary_waits_for_a_lagging_replica_and_shutdown_abort_cancels() {
    let dir = TempDir::new("shutdown-wait");
    let log = format!("{}/primary.log", dir.path());
    let mut primary = Server::start_with(&["--logfile", &log, "--loglevel", "info", "--shutdown-timeout", "2", "--save", ""]);
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    let mut p = primary.raw();
    assert_eq!(p.cmd(&["SET", "k", "1"]), "+OK\r\n");
    assert!(wait_until(30, || Raw::connect(replica.port).cmd(&["GET", "k"]) == "$1\r\n1\r\n"));

    // A replica that does not answer: the shutdown waits, and ABORT stops it.
    replica.signal("STOP");
    assert_eq!(p.cmd(&["SET", "k", "2"]), "+OK\r\n");
    let mut shutting = primary.raw();
    shutting.send_cmd(&[b"SHUTDOWN"]);
    assert!(wait_until(30, || log_has(&log, "Waiting for replicas before shutting down.")));
    assert_eq!(p.cmd(&["SHUTDOWN", "ABORT"]), "+OK\r\n");
    assert!(shutting.read_reply().starts_with(b"-ERR Errors trying to SHUTDOWN"));
    assert!(log_has(&log, "Shutdown manually aborted."));
    assert_eq!(p.cmd(&["SET", "k", "3"]), "+OK\r\n", "writes go on after ABORT");
    assert_eq!(p.cmd(&["SHUTDOWN", "ABORT"]), "-ERR No shutdown in progress.\r\n");

    // Not aborted: after shutdown-timeout the primary stops anyway, and
    // says which replica lagged.
    let started = Instant::now();
    p.send_cmd(&[b"SHUTDOWN"]);
    assert!(wait_until(30, || primary.exited()));
    assert!(started.elapsed() >= Duration::from_millis(1900), "{:?}", started.elapsed());
    assert!(log_has(&log, "0 of 1 replicas are in sync when shutting down."));
    assert!(log_has(&log, "Lagging replica"));
    replica.signal("CONT");
}

#[test]
fn replicas_in_sync_let_the_primary_stop_at_once_and_now_skips_the_wait() {
    let dir = TempDir::new("shutdown-sync");
    let log = format!("{}/primary.log", dir.path());
    let mut primary = Server::start_with(&["--logfile", &log, "--loglevel", "info", "--save", ""]);
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    let mut p = primary.raw();
    assert_eq!(p.cmd(&["SET", "k", "1"]), "+OK\r\n");
    let started = Instant::now();
    p.send_cmd(&[b"SHUTDOWN"]);
    assert!(wait_until(30, || primary.exited()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(log_has(&log, "1 of 1 replicas are in sync when shutting down."));

    // NOW: a silent replica is not waited for (shutdown-timeout 10).
    let log2 = format!("{}/primary2.log", dir.path());
    let mut primary = Server::start_with(&["--logfile", &log2, "--loglevel", "info", "--save", ""]);
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = conn(replica.port);
    assert!(wait_until(30, || link_up(&mut r)));
    replica.signal("STOP");
    let started = Instant::now();
    primary.raw().send_cmd(&[b"SHUTDOWN", b"NOW"]);
    assert!(wait_until(30, || primary.exited()));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(!log_has(&log2, "Waiting for replicas"));
    replica.signal("CONT");
}

#[test]
fn shutdown_on_sigterm_says_whether_sigterm_saves() {
    let dir = TempDir::new("shutdown-sigterm");
    let dump = format!("{}/dump.rdb", dir.path());
    // Save points set, but `nosave`: no file.
    let mut s = Server::start_with(&["--dir", dir.path(), "--save", "3600 1", "--shutdown-on-sigterm", "nosave"]);
    assert_eq!(s.raw().cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(s.raw().cmd(&["CONFIG", "GET", "shutdown-on-sigterm"]), "*2\r\n$19\r\nshutdown-on-sigterm\r\n$6\r\nnosave\r\n");
    assert!(s.terminate(Duration::from_secs(30)));
    assert!(!std::path::Path::new(&dump).exists());
    // No save points, but `save`: a file.
    let mut s = Server::start_with(&["--dir", dir.path(), "--save", "", "--shutdown-on-sigterm", "save"]);
    assert_eq!(s.raw().cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(s.terminate(Duration::from_secs(30)));
    assert!(std::path::Path::new(&dump).exists());
}
