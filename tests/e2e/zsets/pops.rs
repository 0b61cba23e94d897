//! Popping: ZMPOP, the blocking pops answered at once, and blocked
//! clients served in order, only after EXEC, and never when they left.

use damselfly_tests::{Raw, Server};

use super::{err, int, run};

#[test]
fn zmpop_and_immediate_blocking_pops() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    c.cmd(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
    c.cmd(&["ZADD", "z2", "5", "x"]);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["ZMPOP", "2", "z0", "z1", "MIN", "COUNT", "2"],
            "*2\r\n$2\r\nz1\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n".into(),
        ),
        (vec!["ZMPOP", "1", "z0", "MIN"], "*-1\r\n".into()),
        (vec!["ZMPOP", "0", "z1", "MIN"], err("ERR numkeys should be greater than 0")),
        (vec!["ZMPOP", "1", "z1", "FOO"], err("ERR syntax error")),
        (vec!["ZMPOP", "1", "z1", "MAX", "COUNT", "0"], err("ERR count should be greater than 0")),
        (vec!["ZMPOP", "3", "z1", "MAX"], err("ERR syntax error")),
        (vec!["BZPOPMIN", "z0", "z2", "0"], "*3\r\n$2\r\nz2\r\n$1\r\nx\r\n$1\r\n5\r\n".into()),
        (vec!["BZPOPMAX", "z0", "-1"], err("ERR timeout is negative")),
        (vec!["BZPOPMAX", "z0", "abc"], err("ERR timeout is not a float or out of range")),
        (vec!["BZMPOP", "0.01", "1", "z1", "MAX", "COUNT", "5"], "*2\r\n$2\r\nz1\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n".into()),
        (vec!["BZMPOP", "0.01", "1", "z1", "MAX"], "*-1\r\n".into()),
        (vec!["EXISTS", "z1"], int(0)),
    ];
    run(&mut c, &cases);
    c.cmd(&["SET", "s", "x"]);
    assert_eq!(c.cmd(&["BZPOPMIN", "s", "0.01"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    // Inside a transaction nothing blocks.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["BZPOPMIN", "z0", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n*-1\r\n");
}

/// Sends a blocking command on a fresh connection without reading.
fn blocked(s: &Server, cmd: &[&str]) -> Raw {
    let mut r = s.raw();
    let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    r.send_cmd(&args);
    r
}

#[test]
fn blocked_clients_are_served_in_order_and_only_after_exec() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["BZPOPMIN", "none", "0.2"]), "*-1\r\n");
    assert!(started.elapsed() >= std::time::Duration::from_millis(190));
    let mut first = blocked(&s, &["BZPOPMIN", "q", "5"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut second = blocked(&s, &["BZPOPMAX", "q", "other", "5"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // A transaction that adds and removes wakes nobody.
    c.cmd(&["MULTI"]);
    c.cmd(&["ZADD", "q", "9", "ghost"]);
    c.cmd(&["ZREM", "q", "ghost"]);
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(c.cmd(&["ZADD", "q", "1", "a", "2", "b", "3", "c"]), ":3\r\n");
    // First come, first served: the first gets the lowest, the second the
    // highest of what is left.
    assert_eq!(String::from_utf8_lossy(&first.read_reply()), "*3\r\n$1\r\nq\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(String::from_utf8_lossy(&second.read_reply()), "*3\r\n$1\r\nq\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(c.cmd(&["ZRANGE", "q", "0", "-1"]), "*1\r\n$1\r\nb\r\n");
    // Keys on other shards wake the same client; a RESP3 client gets a double.
    let mut third = s.raw();
    assert!(third.cmd(&["HELLO", "3"]).starts_with('%'));
    third.send_cmd(&[b"BZMPOP", b"5", b"3", b"k1", b"k2", b"k3", b"MIN", b"COUNT", b"2"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.cmd(&["ZADD", "k3", "1.5", "m"]);
    assert_eq!(String::from_utf8_lossy(&third.read_reply()), "*2\r\n$2\r\nk3\r\n*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n");
}

#[test]
fn a_blocked_client_that_leaves_takes_nothing() {
    let s = Server::start();
    let mut c = s.raw();
    let gone: Vec<Raw> = (0..5).map(|_| blocked(&s, &["BZPOPMIN", "jobs", "0"])).collect();
    c.wait_blocked(5);
    drop(gone);
    // Noticed without a timeout or a new element to wake them.
    c.wait_blocked(0);
    assert_eq!(c.cmd(&["ZADD", "jobs", "1", "j1"]), ":1\r\n");
    assert_eq!(c.cmd(&["ZCARD", "jobs"]), ":1\r\n");
    // A live client still gets it.
    let mut w = blocked(&s, &["BZPOPMIN", "jobs", "5"]);
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*3\r\n$4\r\njobs\r\n$2\r\nj1\r\n$1\r\n1\r\n");
}
