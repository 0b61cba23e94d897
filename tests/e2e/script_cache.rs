//! The script cache is bounded as Redis 7.4 bounds it: at most 500 scripts
//! cached by EVAL alone, the least recently run evicted first (EVALSHA of
//! it answers NOSCRIPT), SCRIPT LOAD's kept until SCRIPT FLUSH, evictions
//! counted in INFO's `evicted_scripts`; distinct EVALs no longer grow the
//! server for good (redis-server 7.0 keeps every one).

use damselfly_tests::{Raw, Server};

fn info_field(c: &mut Raw, section: &str, field: &str) -> u64 {
    let text = c.cmd(&["INFO", section]);
    let at = text.find(&format!("{field}:")).unwrap_or_else(|| panic!("INFO {section} has no {field}")) + field.len() + 1;
    text[at..].split('\r').next().and_then(|v| v.parse().ok()).expect("a number")
}

/// The SHA1 of a script, as SCRIPT LOAD returns it.
fn load(c: &mut Raw, body: &str) -> String {
    let reply = c.cmd(&["SCRIPT", "LOAD", body]);
    reply.lines().nth(1).expect("a bulk reply").to_string()
}

/// EVALs `n` distinct scripts numbered from `from`, pipelined.
fn eval_distinct(c: &mut Raw, from: usize, n: usize) {
    let mut pipe = String::new();
    for i in from..from + n {
        let body = format!("return {i}");
        pipe.push_str(&format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{body}\r\n$1\r\n0\r\n", body.len()));
    }
    c.send(pipe.as_bytes());
    for i in from..from + n {
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), format!(":{i}\r\n"));
    }
}

#[test]
fn eval_scripts_are_evicted_least_recently_run_first() {
    let s = Server::start();
    let mut c = s.raw();
    let loaded = load(&mut c, "return 'loaded'");
    let first = load(&mut c, "return 'first'");
    // EVAL'd before it is loaded, and loaded again: SCRIPT LOAD keeps it.
    assert_eq!(c.cmd(&["EVAL", "return 'both'", "0"]), "$4\r\nboth\r\n");
    let both = load(&mut c, "return 'both'");
    assert_eq!(c.cmd(&["EVAL", "return 'kept'", "0"]), "$4\r\nkept\r\n");
    assert_eq!(c.cmd(&["EVAL", "return 'old'", "0"]), "$3\r\nold\r\n");
    let (kept, old) = (sha_of("return 'kept'"), sha_of("return 'old'"));
    // Each step on its own millisecond: recency is told apart by the clock.
    std::thread::sleep(std::time::Duration::from_millis(20));
    eval_distinct(&mut c, 0, 400);
    // Run again, `kept` is now among the most recently used.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(c.cmd(&["EVALSHA", &kept, "0"]), "$4\r\nkept\r\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    eval_distinct(&mut c, 400, 200);
    assert_eq!(info_field(&mut c, "memory", "number_of_cached_scripts"), 503);
    assert_eq!(info_field(&mut c, "stats", "evicted_scripts"), 102);
    let exists = c.cmd(&["SCRIPT", "EXISTS", &loaded, &first, &both, &kept, &old]);
    assert_eq!(exists, "*5\r\n:1\r\n:1\r\n:1\r\n:1\r\n:0\r\n");
    assert_eq!(c.cmd(&["EVALSHA", &old, "0"]), "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    assert_eq!(c.cmd(&["EVALSHA", &loaded, "0"]), "$6\r\nloaded\r\n");
    assert_eq!(c.cmd(&["EVAL", "return 'old'", "0"]), "$3\r\nold\r\n");
    assert_eq!(c.cmd(&["EVALSHA", &old, "0"]), "$3\r\nold\r\n");
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), "+OK\r\n");
    assert_eq!(info_field(&mut c, "memory", "number_of_cached_scripts"), 0);
}

/// The SHA1 of a script, without loading it (SCRIPT LOAD would keep it).
fn sha_of(body: &str) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// 20,000 distinct EVALs leave the server within a few MB of where it was
/// (every one was kept: about 550 bytes each, 11 MB here).
#[test]
fn distinct_evals_do_not_grow_the_server() {
    let s = Server::start();
    let mut c = s.raw();
    eval_distinct(&mut c, 0, 1000);
    let base = c.used_memory();
    eval_distinct(&mut c, 1000, 20_000);
    let used = c.used_memory();
    assert!(used < base + 3 * 1024 * 1024, "20,000 distinct EVALs took used_memory from {base} to {used}");
    assert_eq!(info_field(&mut c, "memory", "number_of_cached_scripts"), 500);
}
