//! LATENCY and its settings against a real server, side by side with
//! redis-server 7 for the exact texts and reply shapes: the monitor off,
//! an event recorded (a script that runs for a few milliseconds, timed by
//! the server's own TIME), LATEST / HISTORY / GRAPH / DOCTOR / RESET, and
//! the per-command histograms.

use damselfly_tests::{Raw, Redis, Server};

/// A script that keeps its server busy for at least 3 ms.
const BUSY: &str = "local s=redis.call('time') local t=s[1]*1000000+s[2] \
    while true do local n=redis.call('time') if n[1]*1000000+n[2]-t > 60000 then break end end return 1";

/// Replies that are the same on both servers, whatever the timing.
const EXACT: &[(&[&str], &str)] = &[
    (&["CONFIG", "GET", "latency-monitor-threshold"], "*2\r\n$25\r\nlatency-monitor-threshold\r\n$1\r\n0\r\n"),
    (&["CONFIG", "GET", "latency-tracking"], "*2\r\n$16\r\nlatency-tracking\r\n$3\r\nyes\r\n"),
    (&["CONFIG", "GET", "latency-tracking-info-percentiles"], "*2\r\n$33\r\nlatency-tracking-info-percentiles\r\n$10\r\n50 99 99.9\r\n"),
    (&["LATENCY", "LATEST"], "*0\r\n"),
    (&["LATENCY", "HISTORY", "command"], "*0\r\n"),
    (&["LATENCY", "RESET"], ":0\r\n"),
    (&["LATENCY", "GRAPH", "command"], "-ERR No samples available for event 'command'\r\n"),
    (&["LATENCY", "HISTOGRAM", "nosuch"], "*0\r\n"),
    (&["LATENCY", "HISTORY"], "-ERR wrong number of arguments for 'latency|history' command\r\n"),
    (&["LATENCY", "NOSUCH"], "-ERR unknown subcommand 'NOSUCH'. Try LATENCY HELP.\r\n"),
    (
        &["CONFIG", "SET", "latency-monitor-threshold", "-1"],
        "-ERR CONFIG SET failed (possibly related to argument 'latency-monitor-threshold') - argument must be between 0 and 9223372036854775807 inclusive\r\n",
    ),
    (
        &["CONFIG", "SET", "latency-tracking-info-percentiles", "50 x"],
        "-ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - Invalid latency-tracking-info-percentiles parameters\r\n",
    ),
    (&["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99 100 0.5"], "+OK\r\n"),
    (&["CONFIG", "GET", "latency-tracking-info-percentiles"], "*2\r\n$33\r\nlatency-tracking-info-percentiles\r\n$16\r\n50 99.99 100 0.5\r\n"),
];

fn run_exact(c: &mut Raw) -> Vec<String> {
    EXACT.iter().map(|(args, _)| c.cmd(args)).collect()
}

#[test]
fn replies_match_redis() {
    let s = Server::start();
    let r = Redis::start();
    let ours = run_exact(&mut s.raw());
    for ((args, want), got) in EXACT.iter().zip(&ours) {
        assert_eq!(got, want, "{args:?}");
    }
    assert_eq!(ours, run_exact(&mut r.raw()));
    // HELP and the report of a monitor that is off: identical texts.
    for args in [&["LATENCY", "HELP"][..], &["LATENCY", "DOCTOR"]] {
        assert_eq!(s.raw().cmd(args), r.raw().cmd(args), "{args:?}");
    }
}

/// The integers of a flat RESP array of integers and strings, in order.
fn ints(reply: &str) -> Vec<i64> {
    reply.split("\r\n").filter_map(|l| l.strip_prefix(':')).map(|n| n.parse().expect("int")).collect()
}

#[test]
fn an_event_is_sampled_and_reported() {
    let s = Server::start();
    let r = Redis::start();
    for port in [s.port, r.port] {
        let mut c = Raw::connect(port);
        // Far above what other commands take on a loaded machine: only
        // the script (60 ms) is sampled.
        assert_eq!(c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "30"]), "+OK\r\n");
        c.cmd(&["LATENCY", "RESET"]);
        assert_eq!(c.cmd(&["EVAL", BUSY, "0"]), ":1\r\n");
        // LATEST: [event, time, latency, max].
        let latest = c.cmd(&["LATENCY", "LATEST"]);
        assert!(latest.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n:"), "{latest}");
        let v = ints(&latest);
        assert!(v[1] >= 60 && v[2] == v[1], "{latest}");
        let history = c.cmd(&["LATENCY", "HISTORY", "command"]);
        assert_eq!(history, format!("*1\r\n*2\r\n:{}\r\n:{}\r\n", v[0], v[1]));
        let graph = c.cmd(&["LATENCY", "GRAPH", "command"]);
        // The label under the one column says how many seconds ago it
        // was, one character per line.
        let head = format!("command - high {0} ms, low {0} ms (all time high {0} ms)\n{1}\n \n \n \n_\n \n", v[1], "-".repeat(80));
        let at = graph.find(&head).expect("graph");
        let label: String = graph[at + head.len()..].trim_end_matches("\r\n").split('\n').collect();
        assert!(label.strip_suffix('s').is_some_and(|n| n.parse::<u32>().is_ok()), "{graph:?}");
        let doctor = c.cmd(&["LATENCY", "DOCTOR"]);
        let line = format!(
            "1. command: 1 latency spikes (average {0}ms, mean deviation 0ms, period 1.00 sec). Worst all time event {0}ms.\n",
            v[1]
        );
        assert!(doctor.contains("Dave, I have observed latency spikes in this Redis instance."), "{doctor}");
        assert!(doctor.contains(&line), "{doctor}");
        assert!(doctor.contains("- Check your Slow Log to understand what are the commands"), "{doctor}");
        assert_eq!(c.cmd(&["LATENCY", "RESET", "COMMAND", "nosuch"]), ":1\r\n");
        assert_eq!(c.cmd(&["LATENCY", "LATEST"]), "*0\r\n");
        // A fast command under the threshold adds nothing.
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
        assert_eq!(c.cmd(&["LATENCY", "LATEST"]), "*0\r\n");
    }
}

#[test]
fn histograms_count_every_call() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    for i in 0..10 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["CLIENT", "ID"]).chars().next(), Some(':'));
    // RESP2: a flat map; each command's calls, then power-of-two buckets
    // whose cumulative counts end at the calls.
    let h = c.cmd(&["LATENCY", "HISTOGRAM", "set", "client"]);
    assert!(h.starts_with("*4\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:10\r\n$14\r\nhistogram_usec\r\n*"), "{h}");
    let client_at = h.find("$9\r\nclient|id\r\n*4\r\n$5\r\ncalls\r\n:1\r\n$14\r\nhistogram_usec\r\n*2\r\n:").expect("client|id");
    let set_part = ints(&h[..client_at]);
    assert_eq!(set_part[0], 10);
    let buckets: Vec<(i64, i64)> = set_part[1..].chunks(2).map(|p| (p[0], p[1])).collect();
    assert!(!buckets.is_empty() && buckets.last().expect("bucket").1 == 10, "{h}");
    let bounds = [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16908, 33816, 67633, 135266, 270532, 541065, 1082130];
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{h}");
    assert!(buckets.iter().all(|(b, _)| bounds.contains(b)), "{h}");
    // RESP3: maps.
    let mut r3 = s.raw();
    assert!(r3.cmd(&["HELLO", "3"]).starts_with('%'));
    let h3 = r3.cmd(&["LATENCY", "HISTOGRAM", "hello"]);
    assert!(h3.starts_with("%1\r\n$5\r\nhello\r\n%2\r\n$5\r\ncalls\r\n:1\r\n$14\r\nhistogram_usec\r\n%1\r\n:"), "{h3}");
    // latency-tracking off: nothing more is counted.
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(c.cmd(&["LATENCY", "HISTOGRAM", "set"]).contains("$5\r\ncalls\r\n:10\r\n"));
}
