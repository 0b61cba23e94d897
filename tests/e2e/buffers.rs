//! Client buffers are bounded, against a real process: a subscriber that
//! never reads is closed at the pubsub output limit while PUBLISH pumps
//! hundreds of MB, a normal client over a configured output limit is closed
//! without its reply, a query buffer past client-query-buffer-limit or an
//! endless inline command closes the connection; the server's memory stays
//! flat meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use damselfly_tests::{Raw, Server};

const MB: u64 = 1 << 20;

/// Resident set size of a process, from /proc/<pid>/status (VmRSS).
fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("kB") * 1024
}

/// Reads until the server closes the connection (bounded by the socket's
/// read timeout); returns the bytes read.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn clients(c: &mut Raw) -> usize {
    let text = c.cmd(&["INFO", "clients"]);
    let at = text.find("connected_clients:").expect("connected_clients");
    text[at + 18..].split('\r').next().unwrap().parse().unwrap()
}

#[test]
fn output_buffer_limit_settings() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "GET", "client-output-buffer-limit"], "*2\r\n$26\r\nclient-output-buffer-limit\r\n$67\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60\r\n"),
        (&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 2 3 replica 0 0 0"], "+OK\r\n"),
        (&["CONFIG", "GET", "client-output-buffer-limit"], "*2\r\n$26\r\nclient-output-buffer-limit\r\n$43\r\nnormal 0 0 0 slave 0 0 0 pubsub 1048576 2 3\r\n"),
        (&["CONFIG", "SET", "client-output-buffer-limit", "foo 1 2 3"], "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration.\r\n"),
        (&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 2"], "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration.\r\n"),
        (&["CONFIG", "SET", "client-output-buffer-limit", "pubsub x 2 3"], "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Error in hard, soft or soft_seconds setting in buffer limit configuration.\r\n"),
        (&["CONFIG", "GET", "client-query-buffer-limit"], "*2\r\n$25\r\nclient-query-buffer-limit\r\n$10\r\n1073741824\r\n"),
        (&["CONFIG", "SET", "client-query-buffer-limit", "1"], "-ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n"),
        (&["CONFIG", "SET", "proto-max-bulk-len", "1"], "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n"),
        (&["CONFIG", "SET", "client-query-buffer-limit", "2mb"], "+OK\r\n"),
        (&["CONFIG", "GET", "client-query-buffer-limit"], "*2\r\n$25\r\nclient-query-buffer-limit\r\n$7\r\n2097152\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(&c.cmd(cmd), want, "{cmd:?}");
    }
}

#[test]
fn a_subscriber_that_never_reads_is_closed_at_the_pubsub_limit() {
    let s = Server::start();
    let mut publisher = s.raw();
    let mut sub = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sub.write_all(b"SUBSCRIBE news\r\n").unwrap();
    let mut confirm = [0u8; 33];
    sub.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    sub.read_exact(&mut confirm).unwrap();
    assert_eq!(&confirm, b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    assert_eq!(clients(&mut publisher), 2);
    let rss_before = vm_rss(s.pid());
    // 300 messages of 1 MB; the subscriber reads none of them.
    let payload = vec![b'm'; MB as usize];
    let mut delivered = 0;
    let mut peak = rss_before;
    for i in 0..300 {
        publisher.send_cmd(&[b"PUBLISH", b"news", &payload]);
        match String::from_utf8_lossy(&publisher.read_reply()).as_ref() {
            ":1\r\n" => delivered += 1,
            ":0\r\n" => {}
            other => panic!("PUBLISH: {other}"),
        }
        peak = peak.max(vm_rss(s.pid()));
        if i == 19 {
            // CLIENT LIST's omem shows what waits for the subscriber, as
            // the limit counts it: 20 MB less what the kernel took.
            let list = publisher.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]);
            let omem: u64 = list.split(' ').find_map(|w| w.strip_prefix("omem=")?.parse().ok()).expect("omem");
            assert!((5 * MB..=20 * MB).contains(&omem), "omem={omem}");
        }
    }
    // Up to the 32 MB hard limit, plus what the sockets' kernel buffers took.
    assert!((32..100).contains(&delivered), "{delivered} messages delivered");
    assert!(peak < rss_before + 32 * MB + 64 * MB, "RSS went from {rss_before} to {peak}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while clients(&mut publisher) != 1 {
        assert!(std::time::Instant::now() < deadline, "the subscriber is still connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(publisher.cmd(&["PUBSUB", "NUMSUB", "news"]), "*2\r\n$4\r\nnews\r\n:0\r\n");
    let got = read_to_close(&mut sub);
    assert!(got.len() < 40 * MB as usize, "it got only what was written before the limit: {}", got.len());
    assert_eq!(publisher.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_normal_client_over_its_output_limit_is_closed_without_the_reply() {
    let s = Server::start();
    let mut c = s.raw();
    let big = "x".repeat(2 * MB as usize);
    assert_eq!(c.cmd(&["SET", "big", &big]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "big"]), ":2097152\r\n");
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(b"GET big\r\n").unwrap();
    assert_eq!(read_to_close(&mut raw), b"");
    let mut other = s.raw();
    assert_eq!(other.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]), "+OK\r\n");
    assert_eq!(other.cmd(&["STRLEN", "big"]), ":2097152\r\n");
}

#[test]
fn an_endless_inline_command_is_refused_and_memory_stays_flat() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let rss_before = vm_rss(s.pid());
    let mut attacker = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let chunk = vec![b'A'; MB as usize];
    let mut sent = 0u64;
    // Up to 100 MB without a newline: the server answers and closes after
    // 64 KB, so the writes soon fail.
    for _ in 0..100 {
        if attacker.write_all(&chunk).is_err() {
            break;
        }
        sent += MB;
    }
    assert!(sent < 100 * MB, "the server kept reading {sent} bytes");
    let got = read_to_close(&mut attacker);
    assert!(got.starts_with(b"-ERR Protocol error: too big inline request\r\n"), "{:?}", String::from_utf8_lossy(&got));
    assert!(vm_rss(s.pid()) < rss_before + 8 * MB);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n", "only that connection closed");
}

#[test]
fn protocol_limits_close_only_the_offending_connection() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[u8], &str)] = &[
        (b"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"),
    ];
    for (req, want) in cases {
        let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        t.write_all(req).unwrap();
        assert_eq!(String::from_utf8_lossy(&read_to_close(&mut t)), *want);
    }
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    // A lower proto-max-bulk-len applies to connections already open.
    let mut open = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    open.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    open.read_exact(&mut pong).unwrap();
    assert_eq!(c.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), "+OK\r\n");
    open.write_all(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n").unwrap();
    assert_eq!(String::from_utf8_lossy(&read_to_close(&mut open)), "-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn a_query_buffer_past_its_limit_closes_the_connection() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "2mb"]), "+OK\r\n");
    let rss_before = vm_rss(s.pid());
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    // Two 1.5 MB arguments of a command that never completes.
    let arg = vec![b'a'; 3 * MB as usize / 2];
    let mut req = b"*3\r\n$3\r\nSET\r\n".to_vec();
    req.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
    req.extend_from_slice(&arg);
    req.extend_from_slice(format!("\r\n${}\r\n", arg.len()).as_bytes());
    req.extend_from_slice(&arg);
    let _ = t.write_all(&req);
    assert_eq!(read_to_close(&mut t), b"", "closed without a reply, as Redis does");
    assert!(vm_rss(s.pid()) < rss_before + 16 * MB);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    // A whole command of the same size is fine: it is not held.
    let mut ok = s.raw();
    let value = "v".repeat(3 * MB as usize / 2);
    assert_eq!(ok.cmd(&["SET", "k", &value]), "+OK\r\n");
}

#[test]
fn announcing_a_big_bulk_takes_no_memory_it_does_not_send() {
    let s = Server::start();
    let mut c = s.raw();
    // An evicting cache near its limit: what a client only announces must
    // not count, or it would evict the keys.
    let base = c.used_memory();
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &(base + 16 * MB).to_string()]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "kept", "v"]), "+OK\r\n");
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        t.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n").unwrap();
        t.write_all(&vec![b'x'; 100_000]).unwrap();
        attackers.push(t);
    }
    // Each connection holds what it sent, in a first step of its buffer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let holding = |c: &mut Raw| {
        let list = c.cmd(&["CLIENT", "LIST"]);
        let qbufs = list.split("qbuf=").skip(1).map(|r| r.split(' ').next().unwrap().parse::<u64>().unwrap());
        qbufs.filter(|&q| q >= 100_000).count()
    };
    while holding(&mut c) < 4 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let used = c.used_memory();
    assert!(used < base + 8 * MB, "used_memory went from {base} to {used}");
    assert_eq!(c.cmd(&["GET", "kept"]), "$1\r\nv\r\n");
    assert!(c.cmd(&["INFO", "stats"]).contains("evicted_keys:0\r\n"));
}

/// What the server keeps from a command (a slow log entry, a channel name,
/// a cached script) is a copy, not a slice of the input buffer it came in:
/// each of 100 subscriptions and scripts arriving behind a 30 KB argument
/// costs a few hundred bytes, not the 30 KB buffer; a logged command of
/// 100,000 arguments is gone once its set is (Redis's "UNLINK can reclaim
/// memory in background").
#[test]
fn kept_arguments_do_not_hold_their_input_buffers() {
    let s = Server::start_with(&["--shards", "1"]);
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    let filler = "x".repeat(30_000);
    let mut c = s.raw();
    c.cmd(&["HELLO", "3"]);
    // Buffers and statistics of these commands exist before measuring.
    c.cmd(&["ECHO", &filler]);
    c.cmd(&["SUBSCRIBE", "warm"]);
    c.cmd(&["EVAL", "return 0", "0"]);
    let base = admin.used_memory();
    for i in 0..100 {
        let mut pipe = Vec::new();
        for args in [
            vec!["ECHO".to_string(), filler.clone()],
            vec!["SUBSCRIBE".into(), format!("ch{i}")],
            vec!["EVAL".into(), format!("return {i}"), "0".into()],
        ] {
            pipe.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                pipe.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        c.send(&pipe);
        for _ in 0..3 {
            c.read_reply();
        }
    }
    let used = admin.used_memory();
    // Slices would hold 100 x 30 KB (3 MB); the copies, about 200 KB.
    assert!(used < base + MB, "100 subscriptions and scripts took used_memory from {base} to {used}");

    // The database and the commands' statistics exist before measuring.
    assert_eq!(admin.cmd(&["SADD", "myset", "w"]), ":1\r\n");
    assert_eq!(admin.cmd(&["UNLINK", "myset"]), ":1\r\n");
    let before = admin.used_memory();
    let mut big = Raw::connect(s.port);
    let mut args: Vec<String> = vec!["SADD".into(), "myset".into()];
    args.extend((0..100_000).map(|i| i.to_string()));
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    big.send_cmd(&refs);
    assert_eq!(big.read_reply(), b":100000\r\n");
    assert!(admin.cmd(&["SLOWLOG", "GET", "1"]).contains("more arguments"));
    assert_eq!(big.cmd(&["UNLINK", "myset"]), ":1\r\n");
    drop(big);
    admin.wait_used_below(before + MB / 2, |used| format!("used_memory stays at {used} after UNLINK (was {before})"));
}

/// A connection that sent a long pipeline and went idle keeps no room for
/// it: neither its parsed commands nor its replies (5 MB per round here)
/// stay allocated while it is open, as Redis frees an idle client's
/// buffers.
#[test]
fn an_idle_connection_keeps_no_room_from_a_long_pipeline() {
    let s = Server::start();
    let mut admin = s.raw();
    let mut c = s.raw();
    let word = "w".repeat(100);
    assert_eq!(c.cmd(&["ECHO", &word]), format!("$100\r\n{word}\r\n"));
    let base = admin.used_memory();
    let one = format!("*2\r\n$4\r\nECHO\r\n$100\r\n{word}\r\n");
    let pipe = one.repeat(50_000);
    for _ in 0..4 {
        c.send(pipe.as_bytes());
        for _ in 0..50_000 {
            assert_eq!(c.read_reply().len(), 108);
        }
    }
    admin.wait_used_below(base + MB, |used| format!("an idle connection holds used_memory at {used} (was {base})"));
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

/// Channels and patterns subscribed and left give their room back: 20,000
/// channels and 5,000 patterns take used_memory up by megabytes, and once
/// left it is back within 512 KB of where it was (the registries shrink,
/// as Redis resizes its dicts; they kept 2.6 MB).
#[test]
fn channels_left_give_back_their_room() {
    let s = Server::start();
    let mut admin = s.raw();
    let mut sub = s.raw();
    let round = |sub: &mut Raw, n: usize| {
        for (verb, unverb, prefix, count) in
            [("SUBSCRIBE", "UNSUBSCRIBE", "channel:", n), ("PSUBSCRIBE", "PUNSUBSCRIBE", "pattern*", n / 4)]
        {
            let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
            let mut args: Vec<&[u8]> = vec![verb.as_bytes()];
            args.extend(names.iter().map(|n| n.as_bytes()));
            sub.send_cmd(&args);
            for _ in 0..count {
                sub.read_reply();
            }
            sub.send_cmd(&[unverb.as_bytes()]);
            for _ in 0..count {
                sub.read_reply();
            }
        }
        assert_eq!(sub.cmd(&["PING"]), "+PONG\r\n");
    };
    round(&mut sub, 4);
    let base = admin.used_memory();
    round(&mut sub, 20_000);
    let used = admin.used_memory();
    assert!(used < base + MB / 2, "20,000 channels left took used_memory from {base} to {used}");
}

/// Keys WATCHed and blocked on give their room back: 20,000 of each took
/// used_memory up by megabytes and kept it after UNWATCH and the BLPOP's
/// timeout (a timed-out waiter stayed registered on every key never
/// written, so BLPOP on new keys grew the server without bound); now it is
/// back within 512 KB once the shards have pruned the waiter.
#[test]
fn watched_and_blocked_keys_give_back_their_room() {
    let s = Server::start();
    let mut admin = s.raw();
    let mut c = s.raw();
    let keys: Vec<String> = (0..20_000).map(|i| format!("key:{i}")).collect();
    let round = |c: &mut Raw, n: usize| {
        let mut watch: Vec<&[u8]> = vec![b"WATCH"];
        watch.extend(keys[..n].iter().map(|k| k.as_bytes()));
        c.send_cmd(&watch);
        assert_eq!(c.read_reply(), b"+OK\r\n");
        assert_eq!(c.cmd(&["UNWATCH"]), "+OK\r\n");
        let mut blpop: Vec<&[u8]> = vec![b"BLPOP"];
        blpop.extend(keys[..n].iter().map(|k| k.as_bytes()));
        blpop.push(b"0.05");
        c.send_cmd(&blpop);
        assert_eq!(c.read_reply(), b"*-1\r\n");
    };
    round(&mut c, 4);
    let base = admin.used_memory();
    round(&mut c, 20_000);
    admin.wait_used_below(base + MB / 2, |used| format!("20,000 keys watched and blocked on took used_memory from {base} to {used}"));
}

/// Keys that came and went together give their room back: 20,000 keys
/// set and deleted (one key staying) leave used_memory within 512 KB of
/// where it was (the staying key's chunk, a partly filled last chunk and
/// the free list); their slab chunks and slot tables were kept (1.8 MB).
#[test]
fn keys_deleted_give_back_their_room() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "stays", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DEL", "k"]), ":1\r\n");
    let base = c.used_memory();
    let keys: Vec<String> = (0..20_000).map(|i| format!("key:{i}")).collect();
    let mut pipe = String::new();
    for k in &keys {
        pipe.push_str(&format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$1\r\nv\r\n", k.len()));
    }
    c.send(pipe.as_bytes());
    for _ in &keys {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
    let full = c.used_memory();
    for chunk in keys.chunks(1000) {
        let mut del: Vec<&str> = vec!["DEL"];
        del.extend(chunk.iter().map(String::as_str));
        assert_eq!(c.cmd(&del), ":1000\r\n");
    }
    let used = c.used_memory();
    assert!(used < base + MB / 2, "20,000 keys set and deleted: used_memory {base} -> {full} -> {used}");
}

fn info_stat(c: &mut Raw, name: &str) -> u64 {
    let text = c.cmd(&["INFO", "stats"]);
    let at = text.find(&format!("{name}:")).unwrap_or_else(|| panic!("{name}")) + name.len() + 1;
    text[at..].split('\r').next().and_then(|v| v.parse().ok()).expect("a number")
}

/// `maxmemory-clients` (Redis 7's client eviction): while the clients
/// together take more, the biggest are closed, biggest first; a client in
/// CLIENT NO-EVICT mode stays, and so do the small ones. The setting takes
/// bytes or a percentage of maxmemory, with Redis's texts.
#[test]
fn clients_past_maxmemory_clients_are_evicted_biggest_first() {
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "GET", "maxmemory-clients"]), "*2\r\n$17\r\nmaxmemory-clients\r\n$1\r\n0\r\n");
    for (value, reply) in [
        ("abc", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value\r\n"),
        ("101%", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100\r\n"),
        ("50%", "+OK\r\n"),
    ] {
        assert_eq!(admin.cmd(&["CONFIG", "SET", "maxmemory-clients", value]), reply, "{value}");
    }
    assert_eq!(admin.cmd(&["CONFIG", "GET", "maxmemory-clients"]), "*2\r\n$17\r\nmaxmemory-clients\r\n$3\r\n50%\r\n");
    // Pub/sub limits off, so only client eviction closes anyone.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "8mb"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    // Five subscribers that never read, one of them in NO-EVICT mode.
    let mut subs: Vec<TcpStream> = (0..5)
        .map(|i| {
            let mut sub = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            sub.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            if i == 0 {
                sub.write_all(b"CLIENT NO-EVICT on\r\n").unwrap();
                let mut ok = [0u8; 5];
                sub.read_exact(&mut ok).unwrap();
            }
            sub.write_all(b"SUBSCRIBE news\r\n").unwrap();
            let mut confirm = [0u8; 33];
            sub.read_exact(&mut confirm).unwrap();
            sub
        })
        .collect();
    let payload = vec![b'm'; MB as usize];
    for _ in 0..40 {
        admin.send_cmd(&[b"PUBLISH", b"news", &payload]);
        admin.read_reply();
    }
    // The four evictable subscribers go; the NO-EVICT one and the
    // publisher stay, though the first alone holds more than the limit.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while clients(&mut admin) != 2 {
        assert!(std::time::Instant::now() < deadline, "{} clients still connected", clients(&mut admin));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_stat(&mut admin, "evicted_clients"), 4);
    assert_eq!(admin.cmd(&["PUBSUB", "NUMSUB", "news"]), "*2\r\n$4\r\nnews\r\n:1\r\n");
    for sub in &mut subs[1..] {
        read_to_close(sub);
    }
    // The survivor reads its backlog and goes on.
    let mut kept = subs.swap_remove(0);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    while got < 40 * (MB as usize) {
        got += kept.read(&mut buf).unwrap();
    }
    assert_eq!(admin.cmd(&["PUBLISH", "news", "x"]), ":1\r\n");
    // Small clients are never chosen while the total is under the limit.
    let mut small = s.raw();
    assert_eq!(small.cmd(&["PING"]), "+PONG\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(small.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(info_stat(&mut admin, "evicted_clients"), 4);
}
