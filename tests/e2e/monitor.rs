//! MONITOR against a real server, side by side with redis-server 7: the
//! exact lines (timestamp aside) for commands on every shard, inside
//! MULTI/EXEC and scripts, redaction, what is never shown, RESET, and a
//! monitor that does not read being closed at its output limit.

use damselfly_tests::{Raw, Redis, Server};

/// A command sent by the client under watch, and the line a monitor sees
/// for it after the timestamp (`ADDR` stands for the client's address),
/// or `None` when nothing is shown.
const CASES: &[(&[&str], Option<&str>)] = &[
    (&["AUTH", "pw"], Some(r#"[0 ADDR] "AUTH" "(redacted)""#)),
    (&["HELLO", "2", "AUTH", "default", "pw"], Some(r#"[0 ADDR] "HELLO" "2" "AUTH" "(redacted)" "(redacted)""#)),
    (&["SET", "k", "v\n\"x\x01\\\t\r\x07\x08\x7f"], Some(r#"[0 ADDR] "SET" "k" "v\n\"x\x01\\\t\r\a\b\x7f""#)),
    // Keys on the other shard.
    (&["SET", "other", "1"], Some(r#"[0 ADDR] "SET" "other" "1""#)),
    (&["MSET", "k", "1", "other", "2"], Some(r#"[0 ADDR] "MSET" "k" "1" "other" "2""#)),
    (&["SELECT", "2"], Some(r#"[2 ADDR] "SELECT" "2""#)),
    (&["get", "k"], Some(r#"[2 ADDR] "get" "k""#)),
    (&["MULTI"], Some(r#"[2 ADDR] "MULTI""#)),
    (&["INCR", "n"], None),
    (&["EXEC"], Some("[2 ADDR] \"INCR\" \"n\"\n[2 ADDR] \"EXEC\"")),
    (
        &["EVAL", "redis.call('set','a','1') return redis.call('get','a')", "0"],
        Some("[2 ADDR] \"EVAL\" \"redis.call('set','a','1') return redis.call('get','a')\" \"0\"\n[2 lua] \"set\" \"a\" \"1\"\n[2 lua] \"get\" \"a\""),
    ),
    (&["EVALSHA", "abc", "0"], Some(r#"[2 ADDR] "EVALSHA" "abc" "0""#)),
    (&["FCALL", "nosuch", "0"], Some(r#"[2 ADDR] "FCALL" "nosuch" "0""#)),
    // Administrative commands are never shown.
    (&["CLIENT", "LIST"], None),
    (&["CONFIG", "GET", "maxmemory"], None),
    (&["CLIENT", "ID"], Some(r#"[2 ADDR] "CLIENT" "ID""#)),
    // Refused before running: not shown.
    (&["NOSUCH"], None),
    (&["GET"], None),
    (&["MIGRATE", "h", "1", "", "0", "5", "AUTH", "p", "KEYS", "a"], Some(r#"[2 ADDR] "MIGRATE" "h" "1" "" "0" "5" "AUTH" "(redacted)" "KEYS" "a""#)),
    // A transaction refused at EXEC shows MULTI and EXEC only.
    (&["MULTI"], Some(r#"[2 ADDR] "MULTI""#)),
    (&["GETX"], None),
    (&["EXEC"], Some(r#"[2 ADDR] "EXEC""#)),
    (&["ECHO", "done"], Some(r#"[2 ADDR] "ECHO" "done""#)),
];

/// Runs the cases against a server on `port` and returns what the monitor
/// saw (timestamps cut off, the client's address replaced by `ADDR`),
/// checking each timestamp's shape.
fn watch(port: u16) -> Vec<String> {
    let mut m = Raw::connect(port);
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let mut c = Raw::connect(port);
    for (args, _) in CASES {
        c.cmd(args);
    }
    let addr = {
        let info = c.cmd(&["CLIENT", "INFO"]);
        let at = info.find("addr=").expect("addr") + 5;
        info[at..].split(' ').next().expect("addr").to_string()
    };
    let mut lines = Vec::new();
    loop {
        let r = String::from_utf8(m.read_reply()).expect("utf8");
        let body = r.strip_prefix('+').and_then(|r| r.strip_suffix("\r\n")).expect("a simple string");
        let (ts, rest) = body.split_once(' ').expect("timestamp");
        let (sec, usec) = ts.split_once('.').expect("sec.usec");
        assert!(sec.parse::<u64>().is_ok() && usec.len() == 6 && usec.parse::<u32>().is_ok(), "{ts}");
        let line = rest.replace(&addr, "ADDR");
        let last = line.ends_with("\"ECHO\" \"done\"");
        lines.push(line);
        if last {
            return lines;
        }
    }
}

fn expected() -> Vec<String> {
    CASES.iter().filter_map(|(_, l)| *l).flat_map(|l| l.split('\n')).map(String::from).collect()
}

#[test]
fn lines_match_redis() {
    let s = Server::start_with(&["--shards", "2"]);
    let r = Redis::start();
    let ours = watch(s.port);
    assert_eq!(ours, expected());
    assert_eq!(ours, watch(r.port));
}

/// The next reply on a monitoring connection that is not a line, and the
/// lines before it (timestamps cut off).
fn reply_after_lines(m: &mut Raw) -> (String, Vec<String>) {
    let mut lines = Vec::new();
    loop {
        let r = String::from_utf8(m.read_reply()).expect("utf8");
        match r.strip_prefix('+').and_then(|l| l.split_once(" [")) {
            Some((ts, rest)) if ts.contains('.') => lines.push(format!("[{}", rest.trim_end())),
            _ => return (r, lines),
        }
    }
}

#[test]
fn reset_ends_monitoring_and_flags_show_it() {
    let s = Server::start();
    let mut m = s.raw();
    let mut c = s.raw();
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let list = c.cmd(&["CLIENT", "LIST"]);
    assert!(list.contains(" flags=O "), "{list}");
    // Inside EXEC, MONITOR is refused.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MONITOR"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n");
    // The monitor's own commands run, and it sees them too.
    m.send_cmd(&[b"ECHO", b"me"]);
    let (reply, lines) = reply_after_lines(&mut m);
    assert_eq!(reply, "$2\r\nme\r\n");
    assert_eq!(lines.iter().map(|l| l.split_once("] ").expect("line").1).collect::<Vec<_>>(), ["\"MULTI\"", "\"EXEC\""]);
    // RESET ends MONITOR: nothing more arrives.
    m.send_cmd(&[b"RESET"]);
    let (reply, lines) = reply_after_lines(&mut m);
    assert_eq!(reply, "+RESET\r\n");
    assert_eq!(lines.iter().map(|l| l.split_once("] ").expect("line").1).collect::<Vec<_>>(), ["\"ECHO\" \"me\""]);
    assert!(!c.cmd(&["CLIENT", "LIST"]).contains("flags=O"));
    assert_eq!(c.cmd(&["SET", "x", "1"]), "+OK\r\n");
    assert_eq!(m.cmd(&["PING"]), "+PONG\r\n");
}

/// A blocking command shows when it is called, before the command that
/// wakes it, as in Redis.
fn blocked_order(port: u16) -> Vec<String> {
    let mut m = Raw::connect(port);
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let mut waiter = Raw::connect(port);
    let mut c = Raw::connect(port);
    waiter.send_cmd(&[b"BLPOP", b"q", b"0"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&waiter.read_reply()), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    // (Without the INFO calls that waited for the client to block.)
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let line = next_line(&mut m);
        if !line.starts_with("\"INFO\"") {
            lines.push(line);
        }
    }
    lines
}

/// The next line a monitor receives, without its timestamp and source.
fn next_line(m: &mut Raw) -> String {
    let r = String::from_utf8(m.read_reply()).expect("utf8");
    let (_, rest) = r.strip_prefix('+').and_then(|l| l.split_once("] ")).expect("a line");
    rest.trim_end().to_string()
}

#[test]
fn blocking_commands_show_when_called() {
    let s = Server::start_with(&["--shards", "2"]);
    let r = Redis::start();
    let ours = blocked_order(s.port);
    assert_eq!(ours, ["\"BLPOP\" \"q\" \"0\"", "\"RPUSH\" \"q\" \"x\""]);
    assert_eq!(ours, blocked_order(r.port));
}

#[test]
fn a_monitor_that_does_not_read_is_closed() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"]), "+OK\r\n");
    let mut m = s.raw();
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let big = "x".repeat(100_000);
    // The socket's buffers take some megabytes; past them, the lines wait
    // in the server and reach the limit.
    let mut n = 0;
    while c.cmd(&["CLIENT", "LIST"]).contains("flags=O") {
        for _ in 0..50 {
            assert_eq!(c.cmd(&["SET", "k", &big]), "+OK\r\n");
        }
        n += 1;
        assert!(n < 400, "the monitor was never closed");
    }
    // Monitoring costs nothing once nobody monitors.
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
}
