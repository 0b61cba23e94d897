//! Keyspace notifications (`notify-keyspace-events`): the events each write
//! path publishes, compared with redis-server 7.0 on random command
//! sequences, plus the paths a random sequence does not reach (active
//! expiry, eviction, scripts, MULTI/EXEC, class masks, RESP3 pushes).
//!
//! `NOTIFY_SEED` replays a random run, `NOTIFY_OPS` sets its length
//! (default 4000 commands). redis-server is found on PATH or at
//! `$REDIS_SERVER`; the test fails when it is missing.

#[path = "differential/gen.rs"]
mod gen;

use damselfly_tests::resp2::{parse, V};
use damselfly_tests::{Raw, Redis, Server};
use gen::{Cmd, Gen};

/// One event as a subscriber of `__key*__:*` receives it: (channel, message).
type Event = (String, String);

/// A server under test: a connection for commands and a subscriber to
/// every keyspace and keyevent channel.
struct Side {
    cmd: Raw,
    sub: Raw,
    /// Publishes the sentinels (the command connection may be in MULTI).
    publisher: Raw,
    sentinel: u64,
}

impl Side {
    fn new(port: u16, classes: &str) -> Side {
        let mut cmd = Raw::connect(port);
        assert_eq!(cmd.cmd(&["CONFIG", "SET", "notify-keyspace-events", classes]), "+OK\r\n");
        let mut sub = Raw::connect(port);
        sub.send_cmd(&[b"PSUBSCRIBE", b"__key*__:*", b"sentinel"]);
        sub.read_reply();
        sub.read_reply();
        Side { cmd, sub, publisher: Raw::connect(port), sentinel: 0 }
    }

    /// Runs `c` and returns its reply and the events it published, in the
    /// order received. Events are published before the reply is sent, so a
    /// PUBLISH sent after the reply arrives behind all of them.
    fn run(&mut self, c: &Cmd) -> (V, Vec<Event>) {
        let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
        self.cmd.send_cmd(&args);
        let reply = self.cmd.read_reply();
        (parse(&reply, &mut 0), self.events_so_far())
    }

    /// The events received up to now (marked by a PUBLISH to `sentinel`).
    fn events_so_far(&mut self) -> Vec<Event> {
        self.sentinel += 1;
        let mark = self.sentinel.to_string();
        self.publisher.cmd(&["PUBLISH", "sentinel", &mark]);
        let mut events = Vec::new();
        loop {
            let m = self.sub.read_reply();
            let V::Arr(Some(parts)) = parse(&m, &mut 0) else { panic!("not a message: {m:?}") };
            let text = |v: &V| match v {
                V::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk string: {other:?}"),
            };
            let (channel, payload) = (text(&parts[parts.len() - 2]), text(&parts[parts.len() - 1]));
            if channel == "sentinel" {
                assert_eq!(payload, mark, "sentinels arrive in order");
                return events;
            }
            events.push((channel, payload));
        }
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.cmd.cmd(args)
    }
}

/// The key an event is about.
fn key_of(e: &Event) -> &str {
    match e.0.strip_prefix("__keyspace@") {
        Some(rest) => rest.split_once("__:").map_or("", |p| p.1),
        None => &e.1,
    }
}

/// Events grouped by key, each key's in the order published: a command's
/// keys on different shards publish side by side, so only the order of
/// one key's events is defined.
fn by_key(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    events
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Commands whose events are not compared: their replies depend on time
/// or randomness, so the two servers' states may part.
fn skipped(c: &Cmd) -> bool {
    let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
    matches!(name.as_str(), "SPOP" | "SRANDMEMBER" | "RANDOMKEY" | "HRANDFIELD" | "ZRANDMEMBER" | "DEBUG" | "OBJECT")
}

#[test]
fn events_match_redis_server() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
    let seed = env_num("NOTIFY_SEED", now.unwrap_or(1) % 1_000_000_000);
    let ops = env_num("NOTIFY_OPS", 4000);
    println!("keyspace events: NOTIFY_SEED={seed} NOTIFY_OPS={ops}");
    let redis = Redis::start();
    let ours = Server::start_with(&["--shards", "4"]);
    let mut r = Side::new(redis.port, "KEAn");
    let mut o = Side::new(ours.port, "KEAn");
    let flush: Cmd = vec![b"FLUSHALL".to_vec()];
    r.run(&flush);
    o.run(&flush);
    let mut g = Gen::new(seed);
    let (mut compared, mut parted) = (0, 0);
    for i in 0..ops {
        let c = g.command();
        let (rr, re) = r.run(&c);
        let (or, oe) = o.run(&c);
        if skipped(&c) || rr != or {
            // Replies differ (a documented difference, or randomness):
            // start both from empty again so their states stay the same.
            parted += 1;
            r.run(&flush);
            o.run(&flush);
            continue;
        }
        compared += 1;
        let (oe, re) = (by_key(oe), by_key(re));
        let show = |c: &Cmd| c.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ");
        assert_eq!(oe, re, "command #{i} (NOTIFY_SEED={seed}): {}", show(&c));
    }
    println!("compared the events of {compared} commands ({parted} skipped)");
    assert!(compared > ops / 2, "too few commands compared: {compared} of {ops}");
}

/// Sends `cmds` to a fresh server with `classes` on and returns the events
/// each one published.
fn events_of(classes: &str, cmds: &[&[&str]]) -> Vec<Vec<Event>> {
    let s = Server::start_with(&["--shards", "4"]);
    let mut side = Side::new(s.port, classes);
    cmds.iter()
        .map(|c| {
            let c: Cmd = c.iter().map(|a| a.as_bytes().to_vec()).collect();
            side.run(&c).1
        })
        .collect()
}

fn ev(pairs: &[(&str, &str)]) -> Vec<Event> {
    pairs.iter().map(|(c, m)| (c.to_string(), m.to_string())).collect()
}

#[test]
fn classes_select_events_and_channels() {
    // Only list events, only on keyspace channels.
    let got = events_of("Kl", &[&["SET", "s", "1"], &["LPUSH", "l", "a"], &["DEL", "l"]]);
    assert_eq!(got, vec![vec![], ev(&[("__keyspace@0__:l", "lpush")]), vec![]]);
    // Generic events on keyevent channels only, in the database selected.
    let got = events_of("Eg", &[&["SELECT", "3"], &["SET", "k", "v"], &["EXPIRE", "k", "100"], &["DEL", "k"]]);
    assert_eq!(got, vec![vec![], vec![], ev(&[("__keyevent@3__:expire", "k")]), ev(&[("__keyevent@3__:del", "k")])]);
    // A class without a channel kind publishes nothing.
    let got = events_of("A", &[&["SET", "k", "v"]]);
    assert_eq!(got, vec![vec![]]);
}

/// An increment that leaves a score as it is (infinite) writes nothing: no
/// event, as redis-server (found by `events_match_redis_server`).
#[test]
fn an_increment_that_changes_nothing_is_silent() {
    let got = events_of(
        "Kz",
        &[&["ZADD", "z", "inf", "m"], &["ZINCRBY", "z", "1e3", "m"], &["ZADD", "z", "INCR", "5", "m"], &["ZINCRBY", "z", "1", "n"]],
    );
    assert_eq!(got, vec![ev(&[("__keyspace@0__:z", "zadd")]), vec![], vec![], ev(&[("__keyspace@0__:z", "zincr")])]);
}

#[test]
fn config_reads_back_as_redis_prints_it() {
    let s = Server::start();
    let mut c = s.raw();
    for (set, get) in [("KEA", "AKE"), ("Elg$", "g$lE"), ("Kx", "xK"), ("mK", "Km"), ("", "")] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", set]), "+OK\r\n");
        let want = format!("*2\r\n$22\r\nnotify-keyspace-events\r\n${}\r\n{}\r\n", get.len(), get);
        assert_eq!(c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]), want, "after setting {set:?}");
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEQ"]),
        "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n"
    );
}

#[test]
fn expiry_eviction_and_misses_publish_their_events() {
    let s = Server::start_with(&["--notify-keyspace-events", "Exem"]);
    let mut side = Side { cmd: s.raw(), sub: s.raw(), publisher: s.raw(), sentinel: 0 };
    side.sub.send_cmd(&[b"PSUBSCRIBE", b"__key*__:*", b"sentinel"]);
    side.sub.read_reply();
    side.sub.read_reply();
    // Active expiry (nobody reads the key).
    assert_eq!(side.cmd(&["SET", "gone", "1", "PX", "1"]), "+OK\r\n");
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen.extend(side.events_so_far());
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(seen, ev(&[("__keyevent@0__:expired", "gone")]));
    // Lazy expiry, then the read misses.
    side.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    side.cmd(&["SET", "lazy", "1", "PX", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let c: Cmd = vec![b"GET".to_vec(), b"lazy".to_vec()];
    assert_eq!(side.run(&c).1, ev(&[("__keyevent@0__:expired", "lazy"), ("__keyevent@0__:keymiss", "lazy")]));
    // EXISTS looks without telling.
    let c: Cmd = vec![b"EXISTS".to_vec(), b"nothing".to_vec()];
    assert_eq!(side.run(&c).1, vec![]);
    // Eviction: over maxmemory, the next write makes room.
    side.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    let big = "x".repeat(100_000);
    for i in 0..20 {
        side.cmd(&["SET", &format!("big{i}"), &big]);
    }
    side.events_so_far();
    side.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    let c: Cmd = vec![b"SET".to_vec(), b"one-more".to_vec(), b"v".to_vec()];
    let (_, events) = side.run(&c);
    assert!(!events.is_empty() && events.iter().all(|(ch, _)| ch == "__keyevent@0__:evicted"), "{events:?}");
}

#[test]
fn scripts_and_transactions_publish_once_per_change() {
    let got = events_of(
        "KEA",
        &[
            &["EVAL", "redis.call('SET', KEYS[1], 'v') redis.call('LPUSH', KEYS[2], 'a') return 1", "2", "{k}1", "{k}2"],
            &["MULTI"],
            &["INCR", "n"],
            &["HSET", "h", "f", "v"],
            &["EXEC"],
            // A script that first writes on its own shard and then reaches
            // another key starts over holding every shard: its first try
            // must publish nothing.
            &["EVAL", "redis.call('SET', KEYS[1], 'w') redis.call('SET', 'elsewhere', 'w') return 1", "1", "{k}1"],
        ],
    );
    let both = |k: &str, e: &str| vec![(format!("__keyspace@0__:{k}"), e.to_string()), (format!("__keyevent@0__:{e}"), k.to_string())];
    assert_eq!(got[0], [both("{k}1", "set"), both("{k}2", "lpush")].concat());
    assert_eq!(got[1], vec![]);
    assert_eq!(got[4], [both("n", "incrby"), both("h", "hset")].concat());
    assert_eq!(got[5], [both("{k}1", "set"), both("elsewhere", "set")].concat());
}

#[test]
fn resp3_clients_get_pushes() {
    let s = Server::start();
    let mut c = s.raw();
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$"]);
    let mut sub = s.raw();
    sub.cmd(&["HELLO", "3"]);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "__keyspace@0__:k"]), ">3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:k\r\n:1\r\n");
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(sub.read_reply(), b">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n");
}

/// A pop of no elements (LPOP/RPOP/SPOP/ZPOPMIN with a count of 0) writes
/// nothing: no event, as in redis-server (SPOP is left out of the random
/// comparison above, which found the list case).
#[test]
fn popping_nothing_publishes_nothing() {
    let s = Server::start_with(&["--shards", "2"]);
    let redis = Redis::start();
    let (mut ours, mut theirs) = (Side::new(s.port, "KEA"), Side::new(redis.port, "KEA"));
    for side in [&mut ours, &mut theirs] {
        side.cmd(&["RPUSH", "l", "a", "b"]);
        side.cmd(&["SADD", "s", "a", "b"]);
        side.cmd(&["ZADD", "z", "1", "a"]);
        side.events_so_far();
    }
    for c in [&["LPOP", "l", "0"][..], &["RPOP", "l", "0"], &["SPOP", "s", "0"], &["ZPOPMIN", "z", "0"], &["ZPOPMAX", "z", "0"]] {
        let cmd: Cmd = c.iter().map(|a| a.as_bytes().to_vec()).collect();
        let (a, b) = (ours.run(&cmd), theirs.run(&cmd));
        assert_eq!(a, b, "{c:?}");
    }
}

/// A blocked pop served by a push publishes what Redis publishes, in its
/// order: the pop (`lpop`, `zpopmin`, ...) and `del` when it emptied the
/// key; a served BLMOVE the push on the destination first (four shards,
/// the lists sharing a shard or not).
#[test]
fn served_blocked_pops_publish_their_events() {
    let s = Server::start_with(&["--shards", "4"]);
    let redis = Redis::start();
    let cases: &[(&[&str], &[&str])] = &[
        (&["BLPOP", "l", "0"], &["RPUSH", "l", "x"]),
        (&["BRPOP", "l", "0"], &["RPUSH", "l", "x", "y"]),
        (&["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "5"], &["RPUSH", "l", "x", "y"]),
        (&["BZPOPMIN", "z", "0"], &["ZADD", "z", "1", "a", "2", "b"]),
        (&["BZPOPMAX", "z", "0"], &["ZADD", "z", "3", "c"]),
        (&["BLMOVE", "s{t}", "d{t}", "RIGHT", "LEFT", "0"], &["LPUSH", "s{t}", "x"]),
        (&["BRPOPLPUSH", "s{t}", "s{t}", "0"], &["LPUSH", "s{t}", "x"]),
    ];
    let mut sides = [(Side::new(s.port, "KEA"), s.port), (Side::new(redis.port, "KEA"), redis.port)];
    for (block, push) in cases {
        let mut seen = Vec::new();
        for (side, port) in sides.iter_mut() {
            side.cmd(&["DEL", "l", "z", "s{t}", "d{t}"]);
            side.events_so_far();
            let mut b = Raw::connect(*port);
            let args: Vec<&[u8]> = block.iter().map(|a| a.as_bytes()).collect();
            b.send_cmd(&args);
            side.cmd.wait_blocked(1);
            side.cmd(push);
            let reply = String::from_utf8_lossy(&b.read_reply()).into_owned();
            seen.push((reply, side.events_so_far()));
        }
        assert_eq!(seen[0], seen[1], "{block:?} then {push:?}: this server (left), redis-server (right)");
    }
}
