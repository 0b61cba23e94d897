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
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "copy"]), "$9\r\nquicklist\r\n");
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
