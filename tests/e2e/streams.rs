//! Streams (without consumer groups) against a real server: exact replies
//! (compared with redis-server 7 when they were written), XREAD BLOCK woken
//! by XADD, and streams through DUMP/RESTORE.

use damselfly_tests::Server;

#[test]
fn replies_are_exact() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["XADD", "s", "1-1", "f", "v"], "$3\r\n1-1\r\n"),
        (&["XADD", "s", "1-1", "f", "v"], "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"),
        (&["XADD", "s", "0-0", "f", "v"], "-ERR The ID specified in XADD must be greater than 0-0\r\n"),
        (&["XADD", "s", "1-*", "a", "b"], "$3\r\n1-2\r\n"),
        (&["XADD", "s", "2", "a", "b", "c", "d"], "$3\r\n2-0\r\n"),
        // The sequence of `ms-*` never carries over into the next ms.
        (&["XADD", "o", "1-18446744073709551615", "a", "b"], "$22\r\n1-18446744073709551615\r\n"),
        (&["XADD", "o", "1-*", "a", "b"], "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"),
        (&["XADD", "o", "2-*", "a", "b"], "$3\r\n2-0\r\n"),
        (&["XADD", "s", "3-0", "odd"], "-ERR wrong number of arguments for 'xadd' command\r\n"),
        (&["XADD", "nx", "NOMKSTREAM", "*", "f", "v"], "$-1\r\n"),
        (&["XLEN", "s"], ":3\r\n"),
        (&["XRANGE", "s", "(1-1", "+", "COUNT", "1"], "*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        (&["XREVRANGE", "s", "+", "-", "COUNT", "1"], "*1\r\n*2\r\n$3\r\n2-0\r\n*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"),
        (&["XRANGE", "s", "5", "1"], "*0\r\n"),
        (&["XRANGE", "s", "x", "+"], "-ERR Invalid stream ID specified as stream command argument\r\n"),
        (&["XDEL", "s", "1-2", "9-9"], ":1\r\n"),
        (&["XADD", "s", "MAXLEN", "1", "5-0", "x", "y"], "$3\r\n5-0\r\n"),
        (&["XLEN", "s"], ":1\r\n"),
        (
            &["XADD", "s", "MAXLEN", "=", "5", "LIMIT", "2", "6-0", "x", "y"],
            "-ERR syntax error, LIMIT cannot be used without the special ~ option\r\n",
        ),
        (&["XTRIM", "s", "MINID", "6"], ":1\r\n"),
        (&["XADD", "t", "10-0", "a", "1"], "$4\r\n10-0\r\n"),
        (
            &["XREAD", "COUNT", "1", "STREAMS", "t", "s", "0", "0"],
            "*1\r\n*2\r\n$1\r\nt\r\n*1\r\n*2\r\n$4\r\n10-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n",
        ),
        (&["XREAD", "STREAMS", "t", "$"], "*-1\r\n"),
        (&["XREAD", "STREAMS", "t"], "-ERR wrong number of arguments for 'xread' command\r\n"),
        (
            &["XREAD", "STREAMS", "t", "s", "0"],
            "-ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.\r\n",
        ),
        (&["SET", "str", "v"], "+OK\r\n"),
        (&["XADD", "str", "*", "f", "v"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["TYPE", "t"], "+stream\r\n"),
        // Inside MULTI, BLOCK does not block.
        (&["MULTI"], "+OK\r\n"),
        (&["XREAD", "BLOCK", "0", "STREAMS", "t", "$"], "+QUEUED\r\n"),
        (&["EXEC"], "*1\r\n*-1\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
    // A stream survives DUMP/RESTORE with its last ID.
    let mut sc = s.sync_conn();
    let d: Vec<u8> = redis::cmd("DUMP").arg("t").query(&mut sc).expect("DUMP");
    let _: () = redis::cmd("RESTORE").arg("t2").arg(0).arg(&d).query(&mut sc).expect("RESTORE");
    assert_eq!(
        c.cmd(&["XADD", "t2", "10-0", "a", "1"]),
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
    );
    assert_eq!(c.cmd(&["XLEN", "t2"]), ":1\r\n");
}

#[test]
fn blocked_reader_is_woken_by_xadd() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut reader = s.raw();
    reader.send_cmd(&[b"XREAD", b"BLOCK", b"5000", b"STREAMS", b"events", b"orders", b"$", b"$"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    let mut c = s.raw();
    assert_eq!(c.cmd(&["XADD", "orders", "7-1", "id", "42"]), "$3\r\n7-1\r\n");
    assert_eq!(
        String::from_utf8_lossy(&reader.read_reply()),
        "*1\r\n*2\r\n$6\r\norders\r\n*1\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$2\r\nid\r\n$2\r\n42\r\n"
    );
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["XREAD", "BLOCK", "200", "STREAMS", "orders", "$"]), "*-1\r\n");
    assert!(started.elapsed() >= std::time::Duration::from_millis(190));
}

/// A reader that hangs up while blocked stops counting as blocked at once;
/// the stream is untouched and the next reader is woken as usual.
#[test]
fn a_blocked_reader_that_hangs_up_is_noticed() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    let mut gone = s.raw();
    gone.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"events", b"orders", b"$", b"$"]);
    c.wait_blocked(1);
    drop(gone);
    c.wait_blocked(0);
    let mut reader = s.raw();
    reader.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"orders", b"$"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["XADD", "orders", "7-1", "id", "42"]), "$3\r\n7-1\r\n");
    assert_eq!(
        String::from_utf8_lossy(&reader.read_reply()),
        "*1\r\n*2\r\n$6\r\norders\r\n*1\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$2\r\nid\r\n$2\r\n42\r\n"
    );
    assert_eq!(c.cmd(&["XLEN", "orders"]), ":1\r\n");
    c.wait_blocked(0);
}

/// `~` trimming drops whole nodes of 100 entries, as Redis drops whole
/// listpacks of 100 small entries: the same commands give the same
/// replies and lengths as redis-server.
#[test]
fn approximate_trimming_matches_redis() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let mut both = |cmd: &[&str]| {
        let (a, b) = (ours.cmd(cmd), redis.cmd(cmd));
        assert_eq!(a, b, "{cmd:?}");
        a
    };
    for i in 1..=250 {
        both(&["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    for cmd in [
        &["XTRIM", "s", "MAXLEN", "~", "200"][..],
        &["XTRIM", "s", "MAXLEN", "~", "120"],
        &["XLEN", "s"],
        &["XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "50"],
        &["XTRIM", "s", "MINID", "~", "180"],
        &["XTRIM", "s", "MINID", "~", "201"],
        &["XLEN", "s"],
        &["XTRIM", "s", "MAXLEN", "=", "10", "LIMIT", "5"],
        &["XTRIM", "s", "MAXLEN", "~", "-1"],
        &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "-1"],
    ] {
        both(cmd);
    }
    // XADD's own trimming as a stream grows: the length saws between the
    // threshold and a node above it.
    for i in 1..=450 {
        both(&["XADD", "t", "MAXLEN", "~", "150", &format!("{i}-0"), "f", "v"]);
        if i % 50 == 0 {
            both(&["XLEN", "t"]);
        }
    }
    both(&["XRANGE", "t", "-", "+", "COUNT", "1"]);
}

/// Approximate trimming by nodes of `stream-node-max-entries` entries (set
/// before the stream is built, as nodes here are counted from the oldest
/// entry), with and without LIMIT: the lengths left, as redis-server 7.0
/// leaves them. (At 0, no entry limit, nodes end at 4 KB of their bytes,
/// and ours pack small entries tighter than a listpack: not compared.)
fn trims_by_node_size(port: u16) -> Vec<String> {
    let mut c = damselfly_tests::Raw::connect(port);
    let mut got = Vec::new();
    // (node size, entries, trim command after the key, ...)
    let cases: &[(&str, usize, &[&[&str]])] = &[
        (
            "10",
            100,
            &[
                &["XADD", "s", "MAXLEN", "~", "55", "LIMIT", "30", "*", "f", "v"],
                &["XADD", "s", "MAXLEN", "~", "55", "LIMIT", "30", "*", "f", "v"],
            ],
        ),
        ("1", 102, &[&["XTRIM", "s", "MAXLEN", "~", "1"], &["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "30"]]),
        ("1", 102, &[&["XTRIM", "s", "MAXLEN", "1"]]),
        ("2", 102, &[&["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "30"], &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "0"]]),
    ];
    for (node, n, trims) in cases {
        got.push(c.cmd(&["DEL", "s"]));
        got.push(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", node]));
        for _ in 0..*n {
            c.send_cmd(&[b"XADD", b"s", b"*", b"f", b"v"]);
        }
        for _ in 0..*n {
            c.read_reply();
        }
        for t in *trims {
            let r = c.cmd(t);
            got.push(if t[0] == "XADD" { String::new() } else { r });
            got.push(c.cmd(&["XLEN", "s"]));
        }
    }
    got.push(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "-1"]));
    got.push(c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "100"]));
    got
}

#[test]
fn approximate_trimming_follows_stream_node_max_entries_as_redis() {
    let r = damselfly_tests::Redis::start();
    let want = trims_by_node_size(r.port);
    let s = Server::start_with(&["--shards", "2"]);
    assert_eq!(trims_by_node_size(s.port), want);
}

/// A stream packs its entries in nodes as Redis's listpacks do: 50,000
/// entries take at most 1.2x redis-server's used_memory, fill as many
/// nodes (radix-tree-keys), and read, delete and trim as redis-server's.
#[test]
fn a_stream_is_as_compact_as_redis_listpacks() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let tree_keys = |c: &mut damselfly_tests::Raw| -> String {
        let info = c.cmd(&["XINFO", "STREAM", "events"]);
        info.split("radix-tree-keys\r\n").nth(1).and_then(|r| r.split("\r\n").next()).unwrap_or_default().to_string()
    };
    let mut grew = Vec::new();
    for c in [&mut ours, &mut redis] {
        assert_eq!(c.cmd(&["XADD", "warm", "1-1", "f", "v"]), "$3\r\n1-1\r\n");
        let before = c.used_memory();
        for batch in 0..50 {
            let mut pipe = String::new();
            for i in batch * 1000..(batch + 1) * 1000 {
                let (id, sku, qty) = (format!("{}-{}", 1_700_000_000_000u64 + i / 3, i % 3), format!("sku-{i:06}"), (i % 9).to_string());
                let args = ["XADD", "events", &id, "sku", &sku, "qty", &qty];
                pipe.push_str(&format!("*{}\r\n", args.len()));
                for a in args {
                    pipe.push_str(&format!("${}\r\n{a}\r\n", a.len()));
                }
            }
            c.send(pipe.as_bytes());
            for _ in 0..1000 {
                c.read_reply();
            }
        }
        grew.push(c.used_memory() - before);
    }
    assert!(grew[0] * 10 <= grew[1] * 12, "50,000 entries took {} bytes, redis-server {}", grew[0], grew[1]);
    assert_eq!(tree_keys(&mut ours), tree_keys(&mut redis));
    let cases: &[&[&str]] = &[
        &["XDEL", "events", "1700000000000-0", "1700000000033-1", "1700000000033-2", "1700000016666-1", "9-9"],
        &["XRANGE", "events", "-", "1700000000034", "COUNT", "5"],
        &["XREVRANGE", "events", "1700000000034", "1700000000030-1"],
        &["XRANGE", "events", "1700000016666", "1700000016666"],
        &["XREVRANGE", "events", "+", "-", "COUNT", "3"],
        &["XTRIM", "events", "MAXLEN", "~", "49000"],
        &["XTRIM", "events", "MINID", "1700000000500-1"],
        &["XTRIM", "events", "MAXLEN", "48000"],
        &["XLEN", "events"],
        &["XRANGE", "events", "-", "+", "COUNT", "2"],
        &["XADD", "events", "1800000000000-0", "other", "fields", "than", "before"],
        &["XREVRANGE", "events", "+", "-", "COUNT", "2"],
    ];
    ours.same_replies(&mut redis, cases);
    assert_eq!(tree_keys(&mut ours), tree_keys(&mut redis));
}

/// Nodes also end at 4 KB (`stream-node-max-bytes`), so approximate
/// trimming of big entries leaves what redis-server leaves.
#[test]
fn nodes_of_big_entries_end_at_four_kilobytes_as_redis() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let value = "v".repeat(1000);
    for i in 1..=100 {
        let id = format!("{i}-0");
        ours.same_replies(&mut redis, &[&["XADD", "big", &id, "f", &value]]);
    }
    ours.same_replies(
        &mut redis,
        &[&["XTRIM", "big", "MAXLEN", "~", "50"], &["XLEN", "big"], &["XTRIM", "big", "MINID", "~", "77"], &["XLEN", "big"]],
    );
}
