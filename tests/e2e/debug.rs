//! DEBUG's subcommands that test suites use, compared with redis-server 7.0
//! (both started with `enable-debug-command yes`).

use damselfly_tests::{Raw, Redis, Server};

/// Hides what differs by nature: the value's address and its access clock.
fn mask_object(reply: &str) -> String {
    reply
        .split(' ')
        .map(|w| match w.split_once(':') {
            Some(("at" | "lru" | "lru_seconds_idle", _)) => format!("{}:X", w.split(':').next().unwrap_or("")),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn replies_match_redis() {
    let s = Server::start_with(&["--enable-debug-command", "yes", "--shards", "2"]);
    let r = Redis::start_with(&["--enable-debug-command", "yes"]);
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let setup: &[&[&str]] = &[
        &["SET", "int", "12345"],
        &["SET", "short", "hello"],
        &["SET", "long", &"abcd".repeat(100)],
        &["RPUSH", "list", "a", "b", "c"],
        &["HSET", "hash", "f", "v", "g", "w"],
        &["SADD", "intset", "1", "2", "3"],
        &["SADD", "set", "a", "b"],
        &["ZADD", "zset", "1", "a", "2.5", "b"],
    ];
    for cmd in setup {
        assert_eq!(ours.cmd(cmd), redis.cmd(cmd), "{cmd:?}");
    }
    let mut cases: Vec<Vec<&str>> =
        ["string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true", "false", "nope"]
            .iter()
            .map(|t| vec!["DEBUG", "PROTOCOL", t])
            .collect();
    for c in [
        &["DEBUG", "ERROR", "MYERR something broke"][..],
        &["DEBUG", "LOG", "hello from a test"],
        &["DEBUG", "SLEEP", "0"],
        &["DEBUG", "SLEEP", "0.01"],
        &["DEBUG", "OBJECT", "nokey"],
        &["DEBUG", "NOSUCH"],
        &["DEBUG", "POPULATE", "-1"],
        &["DEBUG", "POPULATE", "100"],
        &["DBSIZE"],
        &["GET", "key:42"],
        &["DEBUG", "POPULATE", "150", "p", "12"],
        &["GET", "p:7"],
        &["DEBUG", "POPULATE", "10", "p", "3"],
        &["GET", "p:7"],
        &["DBSIZE"],
    ] {
        cases.push(c.to_vec());
    }
    for protocol in ["2", "3"] {
        ours.cmd(&["HELLO", protocol]);
        redis.cmd(&["HELLO", protocol]);
        for c in &cases {
            assert_eq!(ours.cmd(c), redis.cmd(c), "RESP{protocol} {c:?}");
            if protocol == "3" && (c.get(2) == Some(&"push") || c.get(2) == Some(&"attrib")) {
                // The push (or attribute), then the reply that follows it.
                assert_eq!(ours.read_reply(), redis.read_reply(), "RESP3 {c:?}, second reply");
            }
        }
    }
    for key in ["int", "short", "long", "list", "hash", "intset", "set", "zset"] {
        let c = ["DEBUG", "OBJECT", key];
        let (a, b) = (ours.cmd(&c), redis.cmd(&c));
        // Redis 7.0 adds quicklist details for lists (and calls a small
        // one quicklist, where 7.2, as we do, says listpack); its LZF compressor
        // makes other (longer) output than ours for a compressible string;
        // the rest must agree.
        let b = if key == "list" {
            b.split(" ql_nodes").next().unwrap_or("").replace("encoding:quicklist", "encoding:listpack") + "\r\n"
        } else if key == "set" {
            // 7.2's small-set listpack; 7.0 had none.
            b.replace("encoding:hashtable", "encoding:listpack")
        } else {
            b
        };
        let (a, b) = (mask_object(&a), mask_object(&b));
        if key == "long" {
            assert_eq!(a.split(" serializedlength").next(), b.split(" serializedlength").next(), "{key}");
        } else {
            assert_eq!(a, b, "{key}");
        }
    }
}

#[test]
fn active_expiry_can_be_paused() {
    let s = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    c.cmd(&["SET", "k", "v", "PX", "1"]);
    // Several expiry ticks (100 ms each) pass: the key is still stored.
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert_eq!(c.cmd(&["DBSIZE"]), ":1\r\n");
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), "+OK\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.cmd(&["DBSIZE"]) != ":0\r\n" {
        assert!(std::time::Instant::now() < deadline, "the key never expired");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn refused_unless_enabled() {
    let s = Server::start();
    let mut c: Raw = s.raw();
    assert!(c.cmd(&["DEBUG", "PROTOCOL", "string"]).starts_with("-ERR DEBUG command not allowed."));
}

/// DEBUG DIGEST and DIGEST-VALUE equal redis-server's for the same data:
/// every type in its small and its big form, integers, float scores,
/// TTLs, several databases, keys spread over two shards.
#[test]
fn digests_match_redis() {
    let s = Server::start_with(&["--enable-debug-command", "yes", "--shards", "2"]);
    let r = Redis::start_with(&["--enable-debug-command", "yes"]);
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let zero = format!("+{}\r\n", "0".repeat(40));
    assert_eq!(ours.cmd(&["DEBUG", "DIGEST"]), zero);
    let many: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut big_hash = vec!["HSET".to_string(), "bighash".into()];
    let mut big_zset = vec!["ZADD".to_string(), "bigzset".into()];
    let mut big_list = vec!["RPUSH".to_string(), "biglist".into()];
    let mut big_set = vec!["SADD".to_string(), "bigset".into()];
    for (i, m) in many.iter().enumerate() {
        big_hash.extend([m.clone(), format!("v{i}")]);
        big_zset.extend([format!("{}", i as f64 / 7.0), m.clone()]);
        big_list.push(m.clone());
        big_set.push(m.clone());
    }
    let setup: Vec<Vec<String>> = [
        &["SET", "int", "-12345"][..],
        &["SET", "short", "hello"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["RPUSH", "list", "a", "1", "c"],
        &["HSET", "hash", "f", "v", "g", "12"],
        &["SADD", "intset", "1", "2", "-3"],
        &["SADD", "set", "a", "b", "7"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "0.1", "3", "-inf", "x"],
        &["XADD", "stream", "5-1", "f", "v", "g", "w"],
        &["XADD", "stream", "6-0", "f", "v2"],
        &["PEXPIRE", "hash", "500000"],
        &["SELECT", "4"],
        &["SET", "k", "in db 4"],
        &["SELECT", "0"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .chain([big_hash, big_zset, big_list, big_set])
    .collect();
    for cmd in &setup {
        let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(ours.cmd(&c), redis.cmd(&c), "{:?}", &c[..2]);
    }
    let digest = ["DEBUG", "DIGEST"];
    let theirs = redis.cmd(&digest);
    assert_ne!(theirs, zero);
    assert_eq!(ours.cmd(&digest), theirs);
    let values = [
        "DEBUG",
        "DIGEST-VALUE",
        "int",
        "short",
        "ttl",
        "list",
        "hash",
        "intset",
        "set",
        "zset",
        "stream",
        "bighash",
        "bigzset",
        "biglist",
        "bigset",
        "missing",
    ];
    assert_eq!(ours.cmd(&values), redis.cmd(&values));
    // A change anywhere changes the digest.
    for c in [&["LSET", "biglist", "100", "x"][..], &["SELECT", "4"], &["DEL", "k"]] {
        assert_eq!(ours.cmd(c), redis.cmd(c), "{c:?}");
        let now = redis.cmd(&digest);
        assert_ne!(now, theirs);
        assert_eq!(ours.cmd(&digest), now, "after {c:?}");
    }
}

/// Waits (bounded) for the process to end; what its log file holds then.
fn log_after_exit(s: &mut Server, log: &str) -> String {
    damselfly_tests::wait_for("the process to end", || s.exited().then_some(()));
    std::fs::read_to_string(log).unwrap_or_default()
}

/// A fatal signal writes Redis's crash report to the log (the signal, the
/// stack trace, the START and END lines) before the process ends;
/// `crash-log-enabled no` leaves it out. DEBUG SEGFAULT and SIGABRT, as
/// Redis's logging tests send them.
#[test]
fn a_crash_writes_a_report_to_the_log() {
    let dir = damselfly_tests::cluster::TempDir::new("crash");
    let log = format!("{}/segv.log", dir.path());
    let mut s = Server::start_with(&["--enable-debug-command", "yes", "--logfile", &log]);
    s.raw().send_cmd(&[b"DEBUG", b"SEGFAULT"]);
    let text = log_after_exit(&mut s, &log);
    for want in ["BUG REPORT START", "crashed by signal: 11", "------ STACK TRACE ------", "BUG REPORT END"] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let log = format!("{}/abrt.log", dir.path());
    let mut s = Server::start_with(&["--logfile", &log]);
    s.signal("ABRT");
    let text = log_after_exit(&mut s, &log);
    assert!(text.contains("crashed by signal: 6") && text.contains("STACK TRACE"), "{text}");
    let log = format!("{}/quiet.log", dir.path());
    let mut s = Server::start_with(&["--enable-debug-command", "yes", "--logfile", &log, "--crash-log-enabled", "no"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "crash-log-enabled"]), "*2\r\n$17\r\ncrash-log-enabled\r\n$2\r\nno\r\n");
    c.send_cmd(&[b"DEBUG", b"SEGFAULT"]);
    let text = log_after_exit(&mut s, &log);
    assert!(!text.contains("crashed by signal"), "{text}");
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: with it on, a payload whose CRC-64
/// is wrong restores (and a damaged body is still refused by the
/// decoder's own checks); off again, it is refused. The same transcript
/// as redis-server's.
fn skip_checksum(port: u16) -> Vec<String> {
    let mut c = Raw::connect(port);
    let mut got = vec![c.cmd(&["SET", "s", "hello"])];
    c.send_cmd(&[b"DUMP", b"s"]);
    let reply = c.read_reply();
    let start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = reply[start..reply.len() - 2].to_vec();
    let mut bad_crc = payload.clone();
    *bad_crc.last_mut().unwrap() ^= 0xff;
    let mut bad_body = bad_crc.clone();
    bad_body[0] = 200;
    let restore = |c: &mut Raw, key: &[u8], p: &[u8]| {
        c.send_cmd(&[b"RESTORE", key, b"0", p]);
        String::from_utf8_lossy(&c.read_reply()).into_owned()
    };
    got.push(restore(&mut c, b"a", &bad_crc));
    got.push(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]));
    got.push(restore(&mut c, b"a", &bad_crc));
    got.push(c.cmd(&["GET", "a"]));
    got.push(restore(&mut c, b"b", &bad_body));
    got.push(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"]));
    got.push(restore(&mut c, b"c", &bad_crc));
    got
}

#[test]
fn checksum_validation_can_be_skipped() {
    let r = Redis::start_with(&["--enable-debug-command", "yes"]);
    let s = Server::start_with(&["--enable-debug-command", "yes"]);
    let want = skip_checksum(r.port);
    assert_eq!(want[1], "-ERR DUMP payload version or checksum are wrong\r\n");
    assert_eq!(want[4], "$5\r\nhello\r\n");
    assert_eq!(skip_checksum(s.port), want);
}

/// `use-exit-on-panic yes` (a hidden setting, as Redis's): DEBUG PANIC
/// ends the process with exit status 1 after its log line; by default it
/// aborts (a signal, with a core dump where the system keeps them).
#[test]
fn use_exit_on_panic_exits_with_status_1() {
    let dir = damselfly_tests::cluster::TempDir::new("exit-on-panic");
    let log = format!("{}/panic.log", dir.path());
    let mut s = Server::start_with(&["--enable-debug-command", "yes", "--logfile", &log, "--use-exit-on-panic", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "use-exit-on-panic"]), "*2\r\n$17\r\nuse-exit-on-panic\r\n$3\r\nyes\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "use-exit*"]), "*0\r\n", "hidden from patterns");
    c.send_cmd(&[b"DEBUG", b"PANIC"]);
    let text = log_after_exit(&mut s, &log);
    assert!(text.contains("DEBUG PANIC called"), "{text}");
    assert_eq!(s.exit_status().and_then(|st| st.code()), Some(1));
    let mut s = Server::start_with(&["--enable-debug-command", "yes"]);
    s.raw().send_cmd(&[b"DEBUG", b"PANIC"]);
    damselfly_tests::wait_for("the process to end", || s.exited().then_some(()));
    assert_eq!(s.exit_status().and_then(|st| st.code()), None, "aborted by a signal");
}
