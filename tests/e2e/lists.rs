//! Lists against a real server: exact replies for every command (compared
//! with redis-server 7 when they were written), blocking pops served in
//! order, LMOVE across shards, and lists through DUMP/RESTORE.

use damselfly_tests::{Raw, Server};

fn run(c: &mut Raw, cases: &[(&[&str], &str)]) {
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

#[test]
fn replies_are_exact() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    run(
        &mut c,
        &[
            (&["RPUSH", "l", "a", "b", "c", "a", "b", "a"], ":6\r\n"),
            (&["LRANGE", "l", "0", "-1"], "*6\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n"),
            (&["LRANGE", "l", "-2", "100"], "*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
            (&["LRANGE", "l", "5", "2"], "*0\r\n"),
            (&["LINDEX", "l", "-1"], "$1\r\na\r\n"),
            (&["LINDEX", "l", "10"], "$-1\r\n"),
            (&["LINDEX", "l", "x"], "-ERR value is not an integer or out of range\r\n"),
            (&["LPOS", "l", "a", "RANK", "-1"], ":5\r\n"),
            (&["LPOS", "l", "a", "COUNT", "2", "RANK", "-1"], "*2\r\n:5\r\n:3\r\n"),
            (&["LPOS", "l", "a", "MAXLEN", "2", "COUNT", "0"], "*1\r\n:0\r\n"),
            (&["LPOS", "l", "z"], "$-1\r\n"),
            (
                &["LPOS", "l", "a", "RANK", "0"],
                "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n",
            ),
            (&["LINSERT", "l", "BEFORE", "b", "X"], ":7\r\n"),
            (&["LINSERT", "l", "AFTER", "zz", "Y"], ":-1\r\n"),
            (&["LINSERT", "l", "MIDDLE", "a", "Y"], "-ERR syntax error\r\n"),
            (&["LSET", "l", "100", "S"], "-ERR index out of range\r\n"),
            (&["LSET", "nx", "0", "S"], "-ERR no such key\r\n"),
            (&["LREM", "l", "-1", "a"], ":1\r\n"),
            (&["LPOP", "l", "2"], "*2\r\n$1\r\na\r\n$1\r\nX\r\n"),
            (&["LPOP", "nx", "2"], "*-1\r\n"),
            (&["LPOP", "l", "-1"], "-ERR value is out of range, must be positive\r\n"),
            (&["LTRIM", "l", "1", "-2"], "+OK\r\n"),
            (&["LRANGE", "l", "0", "-1"], "*2\r\n$1\r\nc\r\n$1\r\na\r\n"),
            (&["LPUSHX", "nx", "x"], ":0\r\n"),
            (&["SET", "s", "v"], "+OK\r\n"),
            (&["LPUSH", "s", "x"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            // The key is looked up before the index is parsed.
            (&["LINDEX", "s", "x"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (&["LINDEX", "nx", "x"], "$-1\r\n"),
            (&["LSET", "s", "x", "v"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (&["LSET", "nx", "x", "v"], "-ERR no such key\r\n"),
            (&["RPOP", "l", "1", "2"], "-ERR wrong number of arguments for 'rpop' command\r\n"),
            (&["LPOS", "l", "a", "COUNT", "abc"], "-ERR COUNT can't be negative\r\n"),
            (&["LPOS", "l", "a", "MAXLEN", "-0"], "-ERR MAXLEN can't be negative\r\n"),
            (
                &["LPOS", "l", "a", "RANK", "-9223372036854775808", "COUNT", "-1"],
                "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n",
            ),
            // LMOVE between keys of different shards, and onto itself.
            (&["RPUSH", "src", "a", "b", "c"], ":3\r\n"),
            (&["LMOVE", "src", "dst", "LEFT", "RIGHT"], "$1\r\na\r\n"),
            (&["RPOPLPUSH", "src", "dst"], "$1\r\nc\r\n"),
            (&["LMOVE", "src", "s", "LEFT", "LEFT"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (&["LRANGE", "dst", "0", "-1"], "*2\r\n$1\r\nc\r\n$1\r\na\r\n"),
            (&["LMOVE", "dst", "dst", "LEFT", "RIGHT"], "$1\r\nc\r\n"),
            (&["LMOVE", "nx", "dst", "LEFT", "RIGHT"], "$-1\r\n"),
            // A missing source answers nil before the destination's type is checked.
            (&["LMOVE", "nx", "s", "LEFT", "RIGHT"], "$-1\r\n"),
            (&["RPOPLPUSH", "nx", "s"], "$-1\r\n"),
            // Rotating a one-element list keeps the key and its TTL.
            (&["RPUSH", "one", "x"], ":1\r\n"),
            (&["EXPIRE", "one", "1000"], ":1\r\n"),
            (&["LMOVE", "one", "one", "LEFT", "LEFT"], "$1\r\nx\r\n"),
            (&["RPOPLPUSH", "one", "one"], "$1\r\nx\r\n"),
            (&["PERSIST", "one"], ":1\r\n"),
            (&["LMPOP", "2", "nx", "dst", "LEFT", "COUNT", "5"], "*2\r\n$3\r\ndst\r\n*2\r\n$1\r\na\r\n$1\r\nc\r\n"),
            (&["LMPOP", "1", "nx", "LEFT"], "*-1\r\n"),
            (&["LMPOP", "0", "a", "LEFT"], "-ERR numkeys should be greater than 0\r\n"),
            (&["BLMOVE", "nx", "n", "LEFT", "LEFT", "0.05"], "*-1\r\n"),
            (&["TYPE", "src"], "+list\r\n"),
            (&["OBJECT", "ENCODING", "src"], "$8\r\nlistpack\r\n"),
        ],
    );
    // A list survives DUMP/RESTORE (the format migrations carry too).
    let mut sc = s.sync_conn();
    let _: () = redis::cmd("RPUSH").arg("big").arg((0..300).map(|i| i.to_string()).collect::<Vec<_>>()).query(&mut sc).expect("RPUSH");
    let d: Vec<u8> = redis::cmd("DUMP").arg("big").query(&mut sc).expect("DUMP");
    let _: () = redis::cmd("RESTORE").arg("copy").arg(0).arg(&d).query(&mut sc).expect("RESTORE");
    let v: Vec<String> = redis::cmd("LRANGE").arg("copy").arg(0).arg(-1).query(&mut sc).expect("LRANGE");
    assert_eq!(v, (0..300).map(|i| i.to_string()).collect::<Vec<_>>());
    // 300 short elements fit one 8 KB node (`list-max-listpack-size -2`).
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "copy"]), "$8\r\nlistpack\r\n");
}

fn blocked(s: &Server, cmd: &[&str]) -> Raw {
    let mut r = s.raw();
    let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    r.send_cmd(&args);
    r
}

/// A job queue: workers block on BRPOP; jobs pushed later go to the
/// workers in the order they blocked; BLMOVE moves into a processing list.
#[test]
fn blocking_pops_serve_workers_in_order() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let mut w1 = blocked(&s, &["BRPOP", "jobs", "5"]);
    c.wait_blocked(1);
    let mut w2 = blocked(&s, &["BLPOP", "other", "jobs", "5"]);
    c.wait_blocked(2);
    let mut w3 = blocked(&s, &["BLMOVE", "jobs", "processing", "RIGHT", "LEFT", "5"]);
    c.wait_blocked(3);
    assert_eq!(c.cmd(&["LPUSH", "jobs", "j1", "j2", "j3"]), ":3\r\n");
    assert_eq!(String::from_utf8_lossy(&w1.read_reply()), "*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n");
    assert_eq!(String::from_utf8_lossy(&w2.read_reply()), "*2\r\n$4\r\njobs\r\n$2\r\nj3\r\n");
    assert_eq!(String::from_utf8_lossy(&w3.read_reply()), "$2\r\nj2\r\n");
    assert_eq!(c.cmd(&["LRANGE", "processing", "0", "-1"]), "*1\r\n$2\r\nj2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "jobs"]), ":0\r\n");
    // Served workers no longer count as blocked.
    c.wait_blocked(0);
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "jobs", "0.2"]), "*-1\r\n");
    assert!(started.elapsed() >= std::time::Duration::from_millis(190));
}

/// A blocked BRPOPLPUSH or BLMOVE served by a push moves the element in
/// the same step, as Redis: a transaction WATCHing the destination fails
/// when EXEC comes after the push (Redis's unit/type/list "PUSH resulting
/// from BRPOPLPUSH affect WATCH"), whichever threads the clients are on;
/// a destination of another type fails the move with WRONGTYPE and the
/// element stays.
#[test]
fn a_served_blocking_move_is_one_step() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    for round in 0..8 {
        let (src, dst, other) = (format!("src{{{round}}}"), format!("dst{{{round}}}"), format!("k{{{round}}}"));
        c.cmd(&["SET", &other, "v"]);
        let cmd: &[&str] = if round % 2 == 0 { &["BRPOPLPUSH", &src, &dst, "0"] } else { &["BLMOVE", &src, &dst, "RIGHT", "LEFT", "0"] };
        let mut b = blocked(&s, cmd);
        c.wait_blocked(1);
        let mut w = s.raw();
        assert_eq!(w.cmd(&["WATCH", &dst]), "+OK\r\n");
        assert_eq!(w.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(w.cmd(&["GET", &other]), "+QUEUED\r\n");
        assert_eq!(c.cmd(&["LPUSH", &src, "e"]), ":1\r\n");
        assert_eq!(w.cmd(&["EXEC"]), "*-1\r\n", "round {round}");
        assert_eq!(String::from_utf8_lossy(&b.read_reply()), "$1\r\ne\r\n");
        assert_eq!(c.cmd(&["LRANGE", &dst, "0", "-1"]), "*1\r\n$1\r\ne\r\n");
        c.wait_blocked(0);
    }
    // A destination of another type.
    c.cmd(&["SET", "dst{x}", "string"]);
    let mut b = blocked(&s, &["BLMOVE", "src{x}", "dst{x}", "LEFT", "LEFT", "0"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["RPUSH", "src{x}", "e"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&b.read_reply()), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(c.cmd(&["LRANGE", "src{x}", "0", "-1"]), "*1\r\n$1\r\ne\r\n");
    assert_eq!(c.cmd(&["GET", "dst{x}"]), "$6\r\nstring\r\n");
}

/// A key of the given shard (with `shards` shards).
fn key_on(shard: u16, shards: u16, prefix: &str) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|k| damselfly_tests::key_slot(k.as_bytes()) % shards == shard).expect("a key")
}

/// The node's total input bytes so far (INFO stats).
fn net_input(c: &mut Raw) -> usize {
    let info = c.cmd(&["INFO", "stats"]);
    let line = info.lines().find_map(|l| l.strip_prefix("total_net_input_bytes:")).expect("total_net_input_bytes");
    line.trim().parse().expect("a number")
}

/// A client that hangs up while blocked stops counting as blocked at
/// once, not when its timeout fires, and takes nothing: what is pushed
/// later stays for the next reader, on every shard it waited on.
#[test]
fn a_blocked_client_that_hangs_up_takes_nothing() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let (a, b) = (key_on(0, 4, "a"), key_on(3, 4, "b"));
    let w1 = blocked(&s, &["BLPOP", &a, &b, "1000"]);
    c.wait_blocked(1);
    let w2 = blocked(&s, &["BRPOP", &a, "0"]);
    c.wait_blocked(2);
    let w3 = blocked(&s, &["BLMOVE", &b, "dst", "LEFT", "RIGHT", "0"]);
    c.wait_blocked(3);
    drop(w1);
    drop(w2);
    drop(w3);
    c.wait_blocked(0);
    assert_eq!(c.cmd(&["LPUSH", &a, "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["RPUSH", &b, "y"]), ":1\r\n");
    assert_eq!(c.cmd(&["LLEN", &a]), ":1\r\n");
    assert_eq!(c.cmd(&["LLEN", &b]), ":1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "dst"]), ":0\r\n");
    // The next reader gets them.
    assert_eq!(c.cmd(&["BLPOP", &a, "1"]), format!("*2\r\n${}\r\n{a}\r\n$1\r\nx\r\n", a.len()));
    assert_eq!(c.cmd(&["BLPOP", &b, "1"]), format!("*2\r\n${}\r\n{b}\r\n$1\r\ny\r\n", b.len()));
}

/// A client killed while blocked is unblocked and disconnected then, not
/// when its timeout fires.
#[test]
fn a_blocked_client_that_is_killed_leaves_at_once() {
    let s = Server::start();
    let mut c = s.raw();
    let mut w = s.raw();
    let id = w.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    w.send_cmd(&[b"BLPOP", b"q", b"0"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", id]), ":1\r\n");
    c.wait_blocked(0);
    assert!(w.is_closed());
    assert_eq!(c.cmd(&["LPUSH", "q", "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["LLEN", "q"]), ":1\r\n");
}

/// A timeout fires when it is due, not earlier (nor on a coarse tick).
#[test]
fn a_blocking_pop_times_out_when_due() {
    let s = Server::start();
    let mut c = s.raw();
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "none", "0.3"]), "*-1\r\n");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(295), "answered after {took:?}");
    assert!(took < std::time::Duration::from_secs(5), "answered after {took:?}");
}

/// Commands pipelined after a blocking one, in the same write or sent
/// while it waits, run after it, in order; a QUIT among them closes the
/// connection only once the earlier ones are answered.
#[test]
fn commands_after_a_blocked_one_wait_their_turn() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    // In the same write.
    let mut w = s.raw();
    w.send(b"*3\r\n$5\r\nBRPOP\r\n$4\r\njobs\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n");
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["LPUSH", "jobs", "j1"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+PONG\r\n");
    // Sent while it waits (a command split over two writes among them),
    // then QUIT: the node reads them as they come, and keeps them.
    w.send_cmd(&[b"BLPOP", b"jobs", b"0"]);
    c.wait_blocked(1);
    let before = net_input(&mut c);
    let later: &[&[u8]] =
        &[b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPI", b"NG\r\n", b"*2\r\n$4\r\nLLEN\r\n$4\r\njobs\r\n", b"*1\r\n$4\r\nQUIT\r\n"];
    let sent: usize = later.iter().map(|b| b.len()).sum();
    for b in later {
        w.send(b);
    }
    // Each INFO stats request counts too (25 bytes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut asked = 0;
    while net_input(&mut c) < before + sent + 25 * (asked + 1) {
        asked += 1;
        assert!(std::time::Instant::now() < deadline, "the blocked client's input was not read");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["RPUSH", "jobs", "j2", "j3"]), ":2\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$4\r\njobs\r\n$2\r\nj2\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "$2\r\nhi\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+PONG\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+OK\r\n");
    assert!(w.is_closed());
    c.wait_blocked(0);
}

/// Replies to the commands pipelined before a blocking one are sent before
/// it waits, as Redis sends them (a client reading them must not wait for
/// the blocking command's data).
#[test]
fn replies_before_a_blocking_command_are_sent_first() {
    let s = Server::start();
    let mut c = s.raw();
    let mut w = s.raw();
    w.send_cmd(&[b"PING"]);
    w.send_cmd(&[b"SET", b"a", b"1"]);
    w.send_cmd(&[b"BLPOP", b"q", b"0"]);
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+PONG\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+OK\r\n");
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["LPUSH", "q", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
}

/// A small deterministic generator for the operation mix below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Lists made under `list-compress-depth` and `list-max-listpack-size`
/// (kept as quicklist nodes with the middle ones compressed) answer every
/// list command as redis-server's do under the same settings.
#[test]
fn compressed_lists_answer_as_redis_does() {
    let s = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    for (fill, depth) in [("4", "1"), ("-1", "2"), ("1", "1")] {
        c.same_replies(
            &mut r,
            &[
                &["CONFIG", "SET", "list-max-ziplist-size", fill],
                &["CONFIG", "SET", "list-compress-depth", depth],
                &["CONFIG", "GET", "list-max-listpack-size"],
                &["CONFIG", "GET", "list-compress-depth"],
                &["FLUSHALL"],
            ],
        );
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ depth.len() as u64 ^ fill.len() as u64);
        let keys = ["{l}a", "{l}b"];
        for step in 0..1500 {
            let key = keys[rng.below(2)];
            let other = keys[rng.below(2)];
            // Compressible values of varied length, some of them repeated.
            let v = format!("item-{}-{}", rng.below(40), "x".repeat(rng.below(120)));
            let (i, j) = ((rng.below(60) as i64 - 30).to_string(), (rng.below(60) as i64 - 20).to_string());
            let cmd: Vec<&str> = match rng.below(14) {
                0..=2 => vec!["RPUSH", key, &v, "tail"],
                3 | 4 => vec!["LPUSH", key, &v],
                5 => vec!["LPOP", key],
                6 => vec!["RPOP", key, "2"],
                7 => vec!["LINSERT", key, if step % 2 == 0 { "BEFORE" } else { "AFTER" }, "tail", &v],
                8 => vec!["LSET", key, &i, &v],
                9 => vec!["LREM", key, &i, "tail"],
                10 if rng.below(8) == 0 => vec!["LTRIM", key, &i, &j],
                11 => vec!["LMOVE", key, other, "LEFT", "RIGHT"],
                12 => vec!["LPOS", key, "tail", "RANK", if step % 3 == 0 { "-2" } else { "1" }, "COUNT", "3"],
                _ => vec!["LINDEX", key, &i],
            };
            c.same_replies(&mut r, &[&cmd]);
            if step % 50 == 0 {
                c.same_replies(&mut r, &[&["LRANGE", key, "0", "-1"], &["LRANGE", key, &i, &j], &["LLEN", key]]);
            }
        }
    }
}

/// With `list-compress-depth 1` a long list keeps its middle compressed: a
/// fraction of the memory of the same list made with depth 0. Its DUMP
/// restores in redis-server, and it survives DEBUG RELOAD.
#[test]
fn a_compressed_list_is_smaller_and_moves_to_redis() {
    let s = Server::start_with(&["--shards", "1", "--enable-debug-command", "yes"]);
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    let items: Vec<String> = (0..20_000).map(|i| format!("order:{i:08}:status:pending")).collect();
    let fill = |c: &mut Raw, key: &str| {
        for chunk in items.chunks(1000) {
            let mut cmd = vec!["RPUSH", key];
            cmd.extend(chunk.iter().map(String::as_str));
            c.cmd(&cmd);
        }
    };
    fill(&mut c, "plain");
    assert_eq!(c.cmd(&["CONFIG", "SET", "list-compress-depth", "1"]), "+OK\r\n");
    fill(&mut c, "packed");
    let usage = |c: &mut Raw, key: &str| -> u64 {
        let reply = c.cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"]);
        reply.trim_start_matches(':').trim().parse().unwrap_or_else(|_| panic!("MEMORY USAGE {key}: {reply}"))
    };
    let (plain, packed) = (usage(&mut c, "plain"), usage(&mut c, "packed"));
    assert!(packed * 3 < plain, "compressed {packed} bytes against {plain}");
    // Uncompressed, elements are packed as a listpack packs them: about
    // what redis-server's quicklist takes (a slot and an allocation per
    // element took 2.2x).
    fill(&mut r, "plain");
    let theirs = usage(&mut r, "plain");
    assert!(plain * 10 <= theirs * 11, "{plain} bytes against redis-server's {theirs}");
    assert_eq!(c.cmd(&["LINDEX", "packed", "12345"]), c.cmd(&["LINDEX", "plain", "12345"]));
    let whole = c.cmd(&["LRANGE", "plain", "0", "-1"]);
    assert_eq!(c.cmd(&["LRANGE", "packed", "0", "-1"]), whole);
    // An existing list keeps the depth it was made with.
    assert_eq!(c.cmd(&["CONFIG", "SET", "list-compress-depth", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["RPUSH", "packed", "more"]), ":20001\r\n");
    assert!(usage(&mut c, "packed") * 3 < plain);
    assert_eq!(c.cmd(&["RPOP", "packed"]), "$4\r\nmore\r\n");
    // DUMP in Redis's format: redis-server restores it.
    c.send_cmd(&[b"DUMP", b"packed"]);
    let dump = c.read_reply();
    let start = dump.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
    let payload = &dump[start..dump.len() - 2];
    r.send_cmd(&[b"RESTORE", b"packed", b"0", payload]);
    assert_eq!(String::from_utf8_lossy(&r.read_reply()), "+OK\r\n");
    assert_eq!(r.cmd(&["LRANGE", "packed", "0", "-1"]), whole);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LRANGE", "packed", "0", "-1"]), whole);
}

/// OBJECT ENCODING follows `list-max-listpack-size`: a list is a
/// `listpack` while it fits one node.
#[test]
fn the_encoding_follows_list_max_listpack_size() {
    let s = Server::start();
    let mut c = s.raw();
    run(
        &mut c,
        &[
            (&["CONFIG", "SET", "list-max-listpack-size", "3"], "+OK\r\n"),
            (&["CONFIG", "GET", "list-max-ziplist-size"], "*2\r\n$21\r\nlist-max-ziplist-size\r\n$1\r\n3\r\n"),
            (&["RPUSH", "l", "a", "b", "c"], ":3\r\n"),
            (&["OBJECT", "ENCODING", "l"], "$8\r\nlistpack\r\n"),
            (&["RPUSH", "l", "d"], ":4\r\n"),
            (&["OBJECT", "ENCODING", "l"], "$9\r\nquicklist\r\n"),
            (&["CONFIG", "SET", "list-compress-depth", "-1"], "-ERR CONFIG SET failed (possibly related to argument 'list-compress-depth') - argument must be between 0 and 2147483647 inclusive\r\n"),
            (&["CONFIG", "SET", "list-max-listpack-size", "x"], "-ERR CONFIG SET failed (possibly related to argument 'list-max-listpack-size') - argument couldn't be parsed into an integer\r\n"),
        ],
    );
}

/// SWAPDB serves a client blocked on a key the swap brings into its
/// database (Redis's "SWAPDB awakes blocked client").
#[test]
fn swapdb_serves_a_client_blocked_on_a_key_it_brings() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    run(&mut c, &[(&["SELECT", "1"], "+OK\r\n"), (&["RPUSH", "k", "hello"], ":1\r\n")]);
    let mut w = s.raw();
    assert_eq!(w.cmd(&["SELECT", "9"]), "+OK\r\n");
    w.send_cmd(&[b"BRPOP", b"k", b"5"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["SWAPDB", "1", "9"]), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$1\r\nk\r\n$5\r\nhello\r\n");
    c.wait_blocked(0);
    // A swap that takes the key away leaves a new waiter waiting.
    assert_eq!(c.cmd(&["RPUSH", "k", "again"]), ":1\r\n");
    w.send_cmd(&[b"BLPOP", b"nothing", b"5"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["SWAPDB", "1", "9"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "9"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LPUSH", "nothing", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$7\r\nnothing\r\n$1\r\nx\r\n");
}
