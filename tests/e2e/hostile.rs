//! Hostile clients: each attack a single connection could use to crash,
//! freeze or bloat a node, run against a real process. While an attack
//! runs, another client's PING must keep answering promptly, and the
//! node's memory must stay bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use damselfly_tests::{Raw, Server};

/// How long a PING from a bystander may take while an attack runs.
const PROMPT: Duration = Duration::from_millis(100);
/// Past this, the node is frozen, whatever the load on the test machine.
const FREEZE: Duration = Duration::from_secs(2);

/// A process's resident set size in bytes (`None` once it is gone).
fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// Runs `attack` while a bystander pings the server every few
/// milliseconds; returns the slowest PING round trip seen.
fn bystander_during(s: &Server, attack: impl FnOnce()) -> Duration {
    bystander_with_auth(s, None, attack)
}

/// `bystander_during` for a server with a password.
fn bystander_with_auth(s: &Server, password: Option<&str>, attack: impl FnOnce()) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let mut c = s.raw();
    if let Some(pw) = password {
        assert_eq!(c.cmd(&["AUTH", pw]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let flag = stop.clone();
    let pinger = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut pings = 0;
        while !flag.load(Ordering::Relaxed) || pings < 3 {
            let t = Instant::now();
            assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
            worst = worst.max(t.elapsed());
            pings += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        worst
    });
    attack();
    stop.store(true, Ordering::Relaxed);
    pinger.join().expect("bystander thread")
}

/// Waits (bounded) until `f` holds, polling.
fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the server closes the connection; returns what it sent.
fn read_to_close(c: &mut TcpStream) -> String {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the error reply also means closed.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read failed: {e}; got so far {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A Lua 5.1 bytecode header (what `string.dump` produces starts so).
const BYTECODE: &[u8] = b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00";

#[test]
fn scripts_must_be_text_not_bytecode() {
    let s = Server::start();
    let mut c = s.raw();
    let want = "-ERR Error compiling script (new function): user_script:1: unexpected symbol near 'char(27)'\r\n";
    for cmd in [&b"EVAL"[..], b"EVAL_RO"] {
        c.send_cmd(&[cmd, BYTECODE, b"0"]);
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), want);
    }
    c.send_cmd(&[b"SCRIPT", b"LOAD", BYTECODE]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), want);
    let mut lib = b"#!lua name=evil\n".to_vec();
    lib.extend_from_slice(BYTECODE);
    c.send_cmd(&[b"FUNCTION", b"LOAD", &lib]);
    assert!(String::from_utf8_lossy(&c.read_reply()).starts_with("-ERR Error compiling function"));
    // From inside a script, as redis-server: the dump loads as nothing.
    assert_eq!(c.cmd(&["EVAL", "return loadstring(string.dump(function() return 1 end))", "0"]), "$-1\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

/// LREM of every other element of a long list, SPOP of many members and
/// JSON.MERGE of a big object into another take one pass each (they took a
/// pass per element, quadratic: a debug build took 1.5 s for LREM of
/// 100,000 of 200,000 elements, 24 s for SPOP of 20,000 of 50,000 members,
/// 1.3 s to merge 5,000 members into 5,000), so a bystander on the same
/// shard is answered promptly.
#[test]
fn bulk_removals_take_linear_time() {
    let s = Server::start_with(&["--shards", "1"]);
    let mut c = s.raw();
    let pairs: Vec<&str> = ["a", "b"].repeat(5000);
    let members: Vec<String> = (0..10_000).map(|i| format!("m{i}")).collect();
    for round in 0..10 {
        let mut push = vec!["RPUSH", "l"];
        push.extend(&pairs);
        c.cmd(&push);
        if round < 3 {
            let mut add = vec!["SADD", "s"];
            let chunk: Vec<String> = members.iter().map(|m| format!("{m}-{round}")).collect();
            add.extend(chunk.iter().map(String::as_str));
            c.cmd(&add);
        }
    }
    let worst = bystander_during(&s, || {
        let mut a = s.raw();
        assert_eq!(a.cmd(&["LREM", "l", "0", "a"]), ":50000\r\n");
        assert_eq!(a.cmd(&["LLEN", "l"]), ":50000\r\n");
        let popped = a.cmd(&["SPOP", "s", "5000"]);
        assert!(popped.starts_with("*5000\r\n"), "{}", &popped[..popped.len().min(40)]);
        assert_eq!(a.cmd(&["SCARD", "s"]), ":25000\r\n");
        assert_eq!(a.cmd(&["JSON.SET", "doc", "$", &object("k")]), "+OK\r\n");
        assert_eq!(a.cmd(&["JSON.MERGE", "doc", "$", &object("p")]), "+OK\r\n");
        assert_eq!(a.cmd(&["JSON.OBJLEN", "doc", "$"]), "*1\r\n:10000\r\n");
    });
    assert!(worst < PROMPT, "a PING took {worst:?} while LREM, SPOP and JSON.MERGE ran");
}

/// A JSON object of 5,000 members named `prefix0`, `prefix1`, ...
fn object(prefix: &str) -> String {
    let members: Vec<String> = (0..5000).map(|i| format!("\"{prefix}{i}\":{i}")).collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn pathological_globs_take_linear_time() {
    let s = Server::start();
    let mut c = s.raw();
    let long = "a".repeat(200);
    assert_eq!(c.cmd(&["SET", &long, "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "h", &long, "1"]), ":1\r\n");
    assert_eq!(c.cmd(&["SADD", "s", &long]), ":1\r\n");
    assert_eq!(c.cmd(&["ZADD", "z", "1", &long]), ":1\r\n");
    let pattern = format!("{}b", "a*".repeat(30));
    let worst = bystander_during(&s, || {
        let mut a = s.raw();
        assert_eq!(a.cmd(&["KEYS", &pattern]), "*0\r\n");
        assert_eq!(a.cmd(&["SCAN", "0", "MATCH", &pattern, "COUNT", "1000"]), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(a.cmd(&["HSCAN", "h", "0", "MATCH", &pattern]), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(a.cmd(&["SSCAN", "s", "0", "MATCH", &pattern]), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(a.cmd(&["ZSCAN", "z", "0", "MATCH", &pattern]), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(a.cmd(&["CONFIG", "GET", &pattern]), "*0\r\n");
        assert_eq!(a.cmd(&["PUBSUB", "CHANNELS", &pattern]), "*0\r\n");
        let mut sub = s.raw();
        assert!(sub.cmd(&["PSUBSCRIBE", &pattern]).contains("psubscribe"));
        assert_eq!(a.cmd(&["PUBLISH", &long, "m"]), ":0\r\n");
        // And a pattern that does match still does.
        let hit = format!("{}a", "a*".repeat(30));
        assert_eq!(a.cmd(&["KEYS", &hit]), format!("*1\r\n$200\r\n{long}\r\n"));
    });
    assert!(worst < PROMPT, "a PING took {worst:?} while globs ran");
}

#[test]
fn unauthenticated_clients_cannot_make_the_node_buffer() {
    let s = Server::start_with(&["--requirepass", "secret"]);
    let before = s.rss();
    let worst = bystander_with_auth(&s, Some("secret"), || {
        // A 300 MB AUTH argument: refused at its header.
        let mut a = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        a.write_all(b"*2\r\n$4\r\nAUTH\r\n$300000000\r\n").unwrap();
        let _ = a.write_all(&vec![b'x'; 1 << 20]);
        assert!(read_to_close(&mut a).starts_with("-ERR Protocol error: unauthenticated bulk length\r\n"));
        // A 10M-element multibulk: refused at its header.
        let mut b = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        b.write_all(b"*10000000\r\n").unwrap();
        let _ = b.write_all(&b"$1\r\nx\r\n".repeat(100_000));
        assert!(read_to_close(&mut b).starts_with("-ERR Protocol error: unauthenticated multibulk length\r\n"));
    });
    assert!(worst < PROMPT, "a PING took {worst:?} during the attack");
    let grown = s.rss().saturating_sub(before);
    assert!(grown < 16 << 20, "RSS grew by {grown} bytes");
    // Within the limits an unauthenticated client gets NOAUTH, and once it
    // authenticates (even pipelined) the normal limits apply.
    let mut c = s.raw();
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    let big = "v".repeat(100_000);
    let mut req = b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n".to_vec();
    req.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{big}\r\n", big.len()).as_bytes());
    c.send(&req);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "k"]), ":100000\r\n");
}

#[test]
fn maxclients_holds_under_a_burst() {
    let s = Server::start_with(&["--maxclients", "100"]);
    // 400 connections at once, all kept open.
    let socks: Vec<TcpStream> = (0..400).map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect")).collect();
    let mut admitted = 0;
    let mut refused = 0;
    for mut sock in socks.iter() {
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // A refused connection may already be closed: ignore write errors.
        let _ = sock.write_all(b"PING\r\n");
    }
    for mut sock in socks.iter() {
        let mut buf = [0u8; 128];
        let n = sock.read(&mut buf).unwrap_or(0);
        match &buf[..n] {
            b"+PONG\r\n" => admitted += 1,
            b"-ERR max number of clients reached\r\n" => refused += 1,
            other => panic!("unexpected reply {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!((admitted, refused), (100, 300));
    drop(socks);
    // Their slots come back.
    eventually("connections released", Duration::from_secs(10), || {
        let mut c = Raw::connect(s.port);
        c.cmd(&["PING"]) == "+PONG\r\n"
    });
}

#[test]
fn settings_that_cannot_be_honoured_are_refused() {
    let s = Server::start();
    let mut c = s.raw();
    assert!(c
        .cmd(&["CONFIG", "SET", "activerehashing", "no"])
        .starts_with("-ERR CONFIG SET failed (possibly related to argument 'activerehashing')"));
    // Still serving: nothing was silently dropped.
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn maxmemory_refuses_growth_under_noeviction() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k2", "v"]), "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["DEL", "k"]), ":1\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k2", "v"]), "+OK\r\n");
}

#[test]
fn idle_connections_are_cheap() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let before = s.rss();
    let n = 5000;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(TcpStream::connect(("127.0.0.1", s.port)).expect("connect"));
    }
    eventually("all connections registered", Duration::from_secs(60), || {
        c.cmd(&["INFO", "clients"]).contains(&format!("connected_clients:{}\r\n", n + 1))
    });
    let per_conn = s.rss().saturating_sub(before) / n as u64;
    assert!(per_conn < 4096, "an idle connection costs {per_conn} bytes of RSS");
    drop(conns);
}

#[test]
fn memory_goes_back_after_a_burst() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let base = s.rss();
    // A 100 MB value is read into a buffer of its own (grown eightfold
    // steps as it arrives, the last one exact) and stored without a copy:
    // the node holds it about once, not two or three times. (How long it
    // stalls other clients is measured side by side with redis-server by
    // bench/hostile.py; here a bystander only checks the node never
    // freezes.)
    let big = vec![b'x'; 100 << 20];
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (pid, p) = (s.pid(), peak.clone());
    let worst = bystander_during(&s, || {
        let sampling = Arc::new(AtomicBool::new(true));
        let on = sampling.clone();
        let sampler = std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                if let Some(r) = rss_of(pid) {
                    p.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        c.send_cmd(&[b"SET", b"big", &big]);
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
        sampling.store(false, Ordering::Relaxed);
        sampler.join().expect("sampler");
    });
    assert!(worst < FREEZE, "a PING took {worst:?} during a 100 MB SET");
    let grown = peak.load(Ordering::Relaxed).saturating_sub(base);
    assert!(grown < 150 << 20, "a 100 MB SET peaked {grown} bytes above the base RSS");
    assert_eq!(c.cmd(&["STRLEN", "big"]), ":104857600\r\n");
    drop(big);
    assert_eq!(c.cmd(&["DEL", "big"]), ":1\r\n");
    // INFO keeps the peak, not the current figure.
    let info = c.cmd(&["INFO", "memory"]);
    let field = |name: &str| -> u64 {
        let line = info.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name} in {info}"));
        line[name.len() + 1..].trim().parse().expect("a number")
    };
    assert!(field("used_memory_peak") >= 100 << 20, "{info}");
    assert!(field("used_memory") < 50 << 20, "{info}");
    // A script that builds a large table and drops it.
    let r = c.cmd(&["EVAL", "local t = {} for i = 1, 300000 do t[i] = string.rep('x', 100) .. i end return #t", "0"]);
    assert_eq!(r, ":300000\r\n");
    // Once idle, the node returns to near where it started.
    eventually("RSS back near its start", Duration::from_secs(20), || s.rss() < base + (24 << 20));
}

#[test]
fn jsonpath_work_is_bounded() {
    let s = Server::start();
    let mut c = s.raw();
    // 40 nested arrays: every `..*` multiplies the matches by the depth.
    let doc = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    assert_eq!(c.cmd(&["JSON.SET", "doc", "$", &doc]), "+OK\r\n");
    let path = format!("${}", "..*".repeat(8));
    // One query alone: it stops at the work limit (the error says so).
    assert!(c.cmd(&["JSON.GET", "doc", &path]).starts_with("-ERR JSONPath query exceeds the work limit"));
    // The longest single query of the attack, timed under the same load
    // as the bystander.
    let mut longest = Duration::ZERO;
    let worst = bystander_during(&s, || {
        let mut a = s.raw();
        let mut timed = |args: &[&str]| {
            let t = Instant::now();
            let r = a.cmd(args);
            longest = longest.max(t.elapsed());
            r
        };
        assert_eq!(timed(&["JSON.GET", "doc", &path]), "-ERR JSONPath query exceeds the work limit (4000000 nodes visited or matched)\r\n");
        // A write through such a path changes nothing and says so.
        assert!(timed(&["JSON.SET", "doc", &path, "0"]).starts_with("-ERR JSONPath query exceeds"));
        assert_eq!(timed(&["JSON.GET", "doc"]), format!("${}\r\n{doc}\r\n", doc.len()));
    });
    // A bystander waits for at most the query running when its PING
    // arrived (and the one before it, on a loaded machine), never for the
    // whole attack: the work of each query is bounded (a debug build can
    // take a second or more over its 4M steps; a release build tens of
    // milliseconds).
    let bound = FREEZE.max(longest * 2 + longest / 2);
    assert!(worst < bound, "a PING took {worst:?} during the JSONPath queries (the longest of them: {longest:?})");
    // Ordinary descendant queries still work.
    assert_eq!(c.cmd(&["JSON.SET", "small", "$", r#"{"a":{"b":1},"c":[{"b":2}]}"#]), "+OK\r\n");
    assert_eq!(c.cmd(&["JSON.GET", "small", "$..b"]), "$5\r\n[1,2]\r\n");
}

/// A random pick with repetitions (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER
/// with a negative count) of a long member cannot make a huge reply: one
/// 10 KB member asked 100,000 times made the server build 1 GB (1.65 GB of
/// RSS under maxmemory 200mb); a reply past 64 MB is refused, and smaller
/// ones are served.
#[test]
fn repeated_random_picks_are_bounded() {
    let s = Server::start_with(&["--shards", "1", "--maxmemory", "200mb"]);
    let mut c = s.raw();
    let long = "x".repeat(10_000);
    assert_eq!(c.cmd(&["SADD", "s", &long]), ":1\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f", &long]), ":1\r\n");
    assert_eq!(c.cmd(&["ZADD", "z", "1", &long]), ":1\r\n");
    let too_large = "-ERR reply too large: random picks with repetitions are limited to 64 MB\r\n";
    for cmd in [&["SRANDMEMBER", "s", "-100000"][..], &["HRANDFIELD", "h", "-100000", "WITHVALUES"], &["ZRANDMEMBER", "z", "-100000"]] {
        let reply = c.cmd(cmd);
        assert!(reply == too_large, "{cmd:?}: {} bytes, {}", reply.len(), &reply[..reply.len().min(80)]);
    }
    let rss = rss_of(s.pid()).expect("RSS");
    assert!(rss < 300 << 20, "RSS {rss} after refusing the picks");
    // 1,000 picks (10 MB) are served.
    c.send_cmd(&[b"SRANDMEMBER", b"s", b"-1000"]);
    assert_eq!(c.read_reply().len(), 1000 * (10_000 + 10) + 7);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

/// A multi-key command naming one key many times reads and copies it
/// once: SUNIONSTORE, SINTERCARD, SDIFF, ZUNIONSTORE and BITOP over 300
/// mentions of a 20,000-member set (or a 1 MB string) copied it each time
/// (RSS grew by 340 MB; 7 MB now; 150 mentions here). Replies with
/// repeated keys are redis-server's.
#[test]
fn repeated_keys_are_read_once() {
    let s = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    // Semantics first, small: duplicates count as Redis counts them.
    let setup: &[&[&str]] = &[
        &["SADD", "{k}s", "a", "b", "c", "1"],
        &["SADD", "{k}t", "b", "d"],
        &["ZADD", "{k}z", "1", "a", "2", "x"],
        &["SET", "{k}b1", "\x0f\x0f"],
        &["SET", "{k}b2", "\x01"],
        &["PFADD", "{k}h", "a", "b"],
    ];
    let cases: &[&[&str]] = &[
        &["SDIFF", "{k}s", "{k}s"],
        &["SDIFFSTORE", "{k}dd", "{k}s", "{k}t", "{k}t"],
        &["SMISMEMBER", "{k}dd", "a", "b", "c", "d", "1"],
        &["SINTERCARD", "3", "{k}s", "{k}s", "{k}t"],
        &["SUNIONSTORE", "{k}u", "{k}t", "{k}t", "{k}t"],
        &["SCARD", "{k}u"],
        &["ZUNIONSTORE", "{k}d", "3", "{k}z", "{k}z", "{k}s", "WEIGHTS", "1", "2", "3"],
        &["ZRANGE", "{k}d", "0", "-1", "WITHSCORES"],
        &["ZINTER", "2", "{k}z", "{k}z", "WITHSCORES"],
        &["BITOP", "XOR", "{k}x", "{k}b1", "{k}b1", "{k}b2"],
        &["GET", "{k}x"],
        &["BITOP", "AND", "{k}x", "{k}b1", "{k}b1"],
        &["GET", "{k}x"],
        &["PFCOUNT", "{k}h", "{k}h"],
    ];
    c.same_replies(&mut r, setup);
    c.same_replies(&mut r, cases);
    // Then big: memory stays about flat.
    let members: Vec<String> = (0..20_000).map(|i| format!("member-{i:08}-padding-padding")).collect();
    for chunk in members.chunks(5000) {
        let mut add = vec!["SADD", "{k}big"];
        add.extend(chunk.iter().map(String::as_str));
        c.cmd(&add);
    }
    c.cmd(&["SET", "{k}mb", &"x".repeat(1 << 20)]);
    let before = rss_of(s.pid()).expect("RSS");
    let many = |cmd: &[&str], key: &str, tail: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(std::iter::repeat_n(key.to_string(), 150));
        v.extend(tail.iter().map(|s| s.to_string()));
        v
    };
    for cmd in [
        many(&["SUNIONSTORE", "{k}out"], "{k}big", &[]),
        many(&["SINTERCARD", "150"], "{k}big", &[]),
        many(&["SDIFF", "{k}big"], "{k}t", &[]),
        many(&["ZUNIONSTORE", "{k}zout", "150"], "{k}big", &[]),
        many(&["BITOP", "OR", "{k}bout"], "{k}mb", &[]),
    ] {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reply = c.cmd(&args);
        assert!(!reply.starts_with('-'), "{}: {}", args[0], &reply[..reply.len().min(80)]);
    }
    let after = rss_of(s.pid()).expect("RSS");
    assert!(after < before + (100 << 20), "RSS grew from {before} to {after}");
    assert_eq!(c.cmd(&["SCARD", "{k}out"]), ":20000\r\n");
    assert_eq!(c.cmd(&["ZCARD", "{k}zout"]), ":20000\r\n");
}
