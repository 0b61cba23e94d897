//! Lua scripts reach every command family through `redis.call` and
//! `redis.pcall`, with their keys on several shards, and get the replies
//! redis-server 7.0 gives.
//!
//! A table of cases, each a script with its KEYS and ARGV, the commands
//! that set up the data before it and the commands that look at the data
//! after it, runs on a damselfly with `--shards 4` and on a redis-server;
//! every reply must be the same bytes (RESP2, and RESP3 after `HELLO 3` for
//! the cases marked so). The keys a case uses are declared in KEYS, as a
//! well-behaved script does, and are `k1`..`k7`: no hash tags, and the four
//! first are on four different shards (checked below). Scripts put one
//! command on a line, so an error's `@user_script:N` names the command that
//! failed. Every case reports on its own: all mismatches are listed in one
//! failure message.
//!
//! Only commands damselfly implements outside scripts are used (no stream
//! consumer groups; see the README).
//! Scripts refuse `noscript` commands and XREAD with BLOCK; BLMPOP and
//! BZMPOP return at once as if timed out.
//!
//! JSON.* has no counterpart in redis-server: those cases compare with the
//! replies RedisJSON documents. So do BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
//! BZPOPMIN and WAIT, which Redis 7.0 refuses in scripts and 7.2 (whose
//! command table Damselfly follows) runs without blocking. A last test runs a script that moves value
//! between keys on three shards in many steps while other clients read the
//! keys with MGET, which must never see a script half done.
//!
//! `SCRIPT_COMMANDS_REDIS_TWICE=1` runs the differential table against a
//! second redis-server instead of damselfly: every case must pass there
//! (a way to check that a new case is deterministic and right).
//! redis-server is found on PATH or at `$REDIS_SERVER`; the test fails when
//! it is missing (scripts/test installs it).

#[path = "script_commands/cases.rs"]
mod cases;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cases::CASES;
use damselfly_tests::{key_slot, Raw, Redis, Server};

const SHARDS: usize = 4;

/// One script run on both servers.
struct Case {
    name: &'static str,
    /// Commands sent by the client before the script (replies compared too).
    setup: &'static [&'static [&'static str]],
    script: &'static str,
    keys: &'static [&'static str],
    argv: &'static [&'static str],
    /// Commands sent by the client after the script, to look at its effects.
    after: &'static [&'static [&'static str]],
    /// Also run on a RESP3 connection.
    resp3: bool,
}

const BASE: Case = Case { name: "", setup: &[], script: "", keys: &[], argv: &[], after: &[], resp3: false };

/// The server the table compares with redis-server: damselfly, or with
/// `SCRIPT_COMMANDS_REDIS_TWICE=1` a second redis-server.
struct Subject {
    _damselfly: Option<Server>,
    _redis: Option<Redis>,
    port: u16,
}

impl Subject {
    fn start() -> Subject {
        if std::env::var("SCRIPT_COMMANDS_REDIS_TWICE").is_ok_and(|v| v == "1") {
            let r = Redis::start();
            Subject { port: r.port, _redis: Some(r), _damselfly: None }
        } else {
            let s = Server::start_with(&["--shards", &SHARDS.to_string()]);
            Subject { port: s.port, _damselfly: Some(s), _redis: None }
        }
    }
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

fn send(c: &mut Raw, args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send_cmd(&a);
    c.read_reply()
}

/// The script line an error reply names (`... on @user_script:N.`): the
/// command that failed, as scripts put one command on a line.
fn failing_line(script: &str, reply: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(reply);
    let at = text.find("@user_script:")? + "@user_script:".len();
    let n: usize = text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    let line = script.lines().nth(n.checked_sub(1)?)?;
    Some(format!("line {n}: `{}`", line.trim()))
}

/// Runs `case` on both connections; the first step whose replies differ.
fn run_case(redis: &mut Raw, ours: &mut Raw, case: &Case) -> Option<String> {
    for c in [&mut *redis, &mut *ours] {
        let flushed = send(c, &["FLUSHALL"]);
        assert_eq!(flushed, b"+OK\r\n", "FLUSHALL");
        assert_eq!(send(c, &["SELECT", "0"]), b"+OK\r\n", "SELECT 0");
    }
    let n = case.keys.len().to_string();
    let mut eval = vec!["EVAL", case.script, &n];
    eval.extend(case.keys);
    eval.extend(case.argv);
    let steps = case.setup.iter().map(|s| (*s, "setup")).chain([(&eval[..], "script")]).chain(case.after.iter().map(|s| (*s, "after")));
    for (args, what) in steps {
        let (r, o) = (send(redis, args), send(ours, args));
        if r != o {
            let shown = if what == "script" { "EVAL".to_string() } else { args.join(" ") };
            let mut msg = format!("{what} step `{shown}`\n      redis-server: {}\n      damselfly:    {}", show(&r), show(&o));
            if let Some(line) = failing_line(case.script, &o) {
                msg.push_str(&format!("\n      damselfly stopped at {line}"));
            }
            return Some(msg);
        }
    }
    None
}

#[test]
fn scripts_call_every_command_family_like_redis_server() {
    let shards: Vec<usize> = ["k1", "k2", "k3", "k4"].iter().map(|k| key_slot(k.as_bytes()) as usize % SHARDS).collect();
    assert_eq!(shards, [2, 1, 0, 3], "k1..k4 must be on four different shards");
    assert_eq!(key_slot(b"k5") as usize % SHARDS, 2);

    let redis = Redis::start();
    let subject = Subject::start();
    let port = subject.port;
    let mut r2 = redis.raw();
    let version = String::from_utf8_lossy(&send(&mut r2, &["INFO", "server"])).into_owned();
    assert!(version.contains("redis_version:7.0."), "redis-server 7.0 needed: {version}");
    let connect = |resp3: bool| {
        let (mut r, mut o) = (redis.raw(), Raw::connect(port));
        if resp3 {
            for c in [&mut r, &mut o] {
                assert!(send(c, &["HELLO", "3"]).starts_with(b"%"));
            }
        }
        (r, o)
    };
    // A subscriber on each server, for PUBLISH.
    let mut subs = [redis.raw(), Raw::connect(port)];
    for s in &mut subs {
        assert_eq!(send(s, &["SUBSCRIBE", "news"]), b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    }

    let mut conns = [connect(false), connect(true)];
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in CASES {
        for resp3 in [false, true] {
            if resp3 && !case.resp3 {
                continue;
            }
            runs += 1;
            let (r, o) = &mut conns[resp3 as usize];
            let outcome = catch_unwind(AssertUnwindSafe(|| run_case(r, o, case)));
            let problem = match outcome {
                Ok(p) => p,
                Err(e) => {
                    // No reply (or a broken connection): start afresh.
                    conns[resp3 as usize] = connect(resp3);
                    let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                    Some(format!("no usable reply: {}", msg.unwrap_or_default()))
                }
            };
            if let Some(p) = problem {
                failures.push(format!("[{}{}] {p}", case.name, if resp3 { ", RESP3" } else { "" }));
            }
        }
    }

    // What the subscribers received: PING marks the end.
    let received: Vec<Vec<Vec<u8>>> = subs
        .iter_mut()
        .map(|s| {
            s.send_cmd(&[b"PING"]);
            let mut got = Vec::new();
            for _ in 0..10 {
                let m = s.read_reply();
                if m.starts_with(b"*2\r\n$4\r\npong\r\n") {
                    break;
                }
                got.push(m);
            }
            got
        })
        .collect();
    let message = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$13\r\nfrom a script\r\n".to_vec();
    if received[0] != [message.clone()] || received[1] != [message] {
        failures.push(format!(
            "[pubsub/message delivered] redis-server's subscriber got {:?}\n      damselfly's got {:?}",
            received[0].iter().map(|m| show(m)).collect::<Vec<_>>(),
            received[1].iter().map(|m| show(m)).collect::<Vec<_>>()
        ));
    }

    println!("{runs} script runs compared, {} differ", failures.len());
    assert!(failures.is_empty(), "{} of {runs} script runs differ from redis-server:\n  {}", failures.len(), failures.join("\n  "));
}

/// A case run on damselfly only, compared with stated replies: JSON.*
/// (RedisJSON's documented replies), and what Redis 7.2 changed for
/// scripts since the 7.0 server the table above compares with.
struct JsonCase {
    name: &'static str,
    setup: &'static [&'static [&'static str]],
    script: &'static str,
    keys: &'static [&'static str],
    want: &'static str,
    /// Client commands after the script, with their expected replies.
    after: &'static [(&'static [&'static str], &'static str)],
}

const JSON_CASES: &[JsonCase] = &[
    // Redis 7.2 no longer flags BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN
    // and WAIT `noscript` (7.0 refused them): in a script they answer at
    // once, as if their timeout had passed.
    JsonCase {
        name: "7.2: blocking commands answer at once",
        setup: &[],
        script: "redis.call('RPUSH', KEYS[2], 'a')\n\
                 return {redis.call('BLPOP', KEYS[1], 0),\n\
                 redis.call('BRPOP', KEYS[1], KEYS[2], 0),\n\
                 redis.call('BLMOVE', KEYS[1], KEYS[2], 'LEFT', 'LEFT', 0),\n\
                 redis.call('BRPOPLPUSH', KEYS[1], KEYS[2], 0),\n\
                 redis.call('BZPOPMIN', KEYS[3], 0),\n\
                 redis.call('WAIT', 0, 0)}",
        keys: &["k1", "k2", "k3"],
        want: "*6\r\n$-1\r\n*2\r\n$2\r\nk2\r\n$1\r\na\r\n$-1\r\n$-1\r\n$-1\r\n:0\r\n",
        after: &[(&["EXISTS", "k2"], ":0\r\n")],
    },
    JsonCase {
        name: "JSON.SET JSON.GET",
        setup: &[],
        script: "redis.call('JSON.SET', KEYS[1], '$', '{\"n\":1,\"tags\":[\"a\"]}')\n\
                 redis.call('JSON.SET', KEYS[2], '$', '{\"n\":2}')\n\
                 return {redis.call('JSON.GET', KEYS[1]),\n\
                 redis.call('JSON.GET', KEYS[1], '$.n'),\n\
                 redis.call('JSON.GET', KEYS[2], '.n'),\n\
                 redis.call('JSON.GET', KEYS[3], '$'),\n\
                 redis.call('JSON.SET', KEYS[2], '$.n', '5', 'NX')}",
        keys: &["k1", "k2", "k3"],
        want: "*5\r\n$20\r\n{\"n\":1,\"tags\":[\"a\"]}\r\n$3\r\n[1]\r\n$1\r\n2\r\n$-1\r\n$-1\r\n",
        after: &[(&["JSON.GET", "k2", "$"], "$9\r\n[{\"n\":2}]\r\n")],
    },
    JsonCase {
        name: "JSON.MSET JSON.MGET",
        setup: &[],
        script: "return {redis.call('JSON.MSET', KEYS[1], '$', '{\"a\":1}', KEYS[2], '$', '{\"a\":2}', KEYS[3], '$', '{\"a\":3}'),\n\
                 redis.call('JSON.MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4], '$.a'),\n\
                 redis.call('JSON.MGET', KEYS[3], KEYS[1], '.a')}",
        keys: &["k1", "k2", "k3", "k4"],
        want: "*3\r\n+OK\r\n*4\r\n$3\r\n[1]\r\n$3\r\n[2]\r\n$3\r\n[3]\r\n$-1\r\n*2\r\n$1\r\n3\r\n$1\r\n1\r\n",
        after: &[(&["JSON.MGET", "k1", "k2", "k3", "$"], "*3\r\n$9\r\n[{\"a\":1}]\r\n$9\r\n[{\"a\":2}]\r\n$9\r\n[{\"a\":3}]\r\n")],
    },
    JsonCase {
        name: "JSON.NUMINCRBY moving value across shards",
        setup: &[&["JSON.SET", "k1", "$", "{\"n\":10}"], &["JSON.SET", "k2", "$", "{\"n\":2}"]],
        script: "return {redis.call('JSON.NUMINCRBY', KEYS[1], '$.n', -5),\n\
                 redis.call('JSON.NUMINCRBY', KEYS[2], '$.n', 5)}",
        keys: &["k1", "k2"],
        want: "*2\r\n$3\r\n[5]\r\n$3\r\n[7]\r\n",
        after: &[(&["JSON.MGET", "k1", "k2", "$.n"], "*2\r\n$3\r\n[5]\r\n$3\r\n[7]\r\n")],
    },
    JsonCase {
        name: "JSON.ARRAPPEND JSON.DEL JSON.TYPE",
        setup: &[&["JSON.SET", "k1", "$", "{\"n\":1,\"tags\":[\"a\"]}"]],
        script: "return {redis.call('JSON.ARRAPPEND', KEYS[1], '$.tags', '\"b\"'),\n\
                 redis.call('JSON.DEL', KEYS[1], '$.n'),\n\
                 redis.call('JSON.TYPE', KEYS[1], '$.tags'),\n\
                 redis.call('JSON.GET', KEYS[1])}",
        keys: &["k1"],
        want: "*4\r\n*1\r\n:2\r\n:1\r\n*1\r\n$5\r\narray\r\n$18\r\n{\"tags\":[\"a\",\"b\"]}\r\n",
        after: &[],
    },
    JsonCase {
        name: "JSON.GET of a string key",
        setup: &[&["SET", "k1", "text"]],
        script: "return redis.pcall('JSON.GET', KEYS[1], '$')",
        keys: &["k1"],
        want: "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        after: &[],
    },
];

#[test]
fn scripts_call_json_commands_across_shards() {
    let s = Server::start_with(&["--shards", &SHARDS.to_string()]);
    let mut c = s.raw();
    let mut failures = Vec::new();
    for case in JSON_CASES {
        assert_eq!(send(&mut c, &["FLUSHALL"]), b"+OK\r\n");
        let n = case.keys.len().to_string();
        let mut eval = vec!["EVAL", case.script, &n];
        eval.extend(case.keys);
        let steps = case
            .setup
            .iter()
            .map(|s| (*s, None))
            .chain([(&eval[..], Some(case.want))])
            .chain(case.after.iter().map(|(s, w)| (*s, Some(*w))));
        for (args, want) in steps {
            let got = send(&mut c, args);
            let want = want.map(str::as_bytes).unwrap_or(b"+OK\r\n");
            if got != want {
                let shown = if args[0] == "EVAL" { "EVAL".to_string() } else { args.join(" ") };
                let mut msg = format!("[{}] `{shown}`\n      expected:  {}\n      damselfly: {}", case.name, show(want), show(&got));
                if let Some(line) = failing_line(case.script, &got) {
                    msg.push_str(&format!("\n      damselfly stopped at {line}"));
                }
                failures.push(msg);
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} JSON cases differ:\n  {}", failures.len(), JSON_CASES.len(), failures.join("\n  "));
}

/// Moves one unit at a time from `a` to `b` and from `b` to `c` (keys on
/// three shards), `ARGV[1]` times: afterwards `a` has lost and `c` gained
/// `ARGV[1]`, `b` is unchanged, and in between the sum is off by one.
const MOVE: &str = "local n = tonumber(ARGV[1]) \
    for i = 1, n do \
      redis.call('DECRBY', KEYS[1], 1) redis.call('INCRBY', KEYS[2], 1) \
      redis.call('DECRBY', KEYS[2], 1) redis.call('INCRBY', KEYS[3], 1) \
    end \
    return redis.call('GET', KEYS[1])";

fn mget3(c: &mut Raw, keys: [&str; 3]) -> [i64; 3] {
    let reply = String::from_utf8_lossy(&send(c, &["MGET", keys[0], keys[1], keys[2]])).into_owned();
    let v: Vec<i64> = reply.split("\r\n").skip(1).filter(|l| !l.starts_with('$') && !l.is_empty()).map(|l| l.parse().unwrap()).collect();
    assert_eq!(v.len(), 3, "MGET reply {reply:?}");
    [v[0], v[1], v[2]]
}

/// Scripts that move value across shards in many steps, from two writers,
/// are never seen half done by readers using MGET (atomic across shards).
#[test]
fn multi_step_cross_shard_script_is_atomic_for_readers() {
    const WRITERS: usize = 2;
    const RUNS: i64 = 150;
    const STEPS: i64 = 20;
    const READERS: usize = 3;
    let keys = ["k1", "k2", "k4"];
    let shards: Vec<usize> = keys.iter().map(|k| key_slot(k.as_bytes()) as usize % SHARDS).collect();
    assert_eq!(shards, [2, 1, 3], "the keys must be on three different shards");
    let s = Server::start_with(&["--shards", &SHARDS.to_string()]);
    let start = WRITERS as i64 * RUNS * STEPS;
    let total = start + 1000;
    let mut c = s.raw();
    assert_eq!(send(&mut c, &["MSET", keys[0], &start.to_string(), keys[1], "1000", keys[2], "0"]), b"+OK\r\n");

    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (done, checks, started, port) = (done.clone(), checks.clone(), started.clone(), s.port);
        readers.push(std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            let mut bad = Vec::new();
            let mut first = true;
            // Bounded: the writers are done long before this many reads.
            for _ in 0..5_000_000 {
                let finished = done.load(SeqCst);
                let [a, b, cc] = mget3(&mut c, keys);
                if a + b + cc != total || b != 1000 || (start - a) % STEPS != 0 || cc != start - a {
                    bad.push([a, b, cc]);
                }
                checks.fetch_add(1, SeqCst);
                if first {
                    started.fetch_add(1, SeqCst);
                    first = false;
                }
                if finished {
                    break;
                }
            }
            bad
        }));
    }
    // The writers start once every reader is reading.
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.load(SeqCst) < READERS as u64 {
        assert!(Instant::now() < deadline, "readers did not start");
        std::thread::yield_now();
    }
    let before = checks.load(SeqCst);
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let port = s.port;
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                for _ in 0..RUNS {
                    let r = send(&mut c, &["EVAL", MOVE, "3", keys[0], keys[1], keys[2], &STEPS.to_string()]);
                    assert!(r.starts_with(b"$"), "script failed: {}", show(&r));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let during = checks.load(SeqCst) - before;
    done.store(true, SeqCst);
    let mut bad = Vec::new();
    for r in readers {
        bad.extend(r.join().unwrap());
    }
    assert_eq!(mget3(&mut c, keys), [0, 1000, start]);
    println!("{} MGET checks, {during} while scripts ran", checks.load(SeqCst));
    assert!(during > 0, "no reads overlapped the scripts");
    assert!(bad.is_empty(), "readers saw {} states of a script half done, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);
}
