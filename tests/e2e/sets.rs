//! Sets against a real server: exact replies (compared with redis-server 7
//! when they were written), multi-key operations over keys of several
//! shards, RESP3 set replies, and sets through DUMP/RESTORE.

use std::collections::BTreeSet;

use damselfly_tests::Server;

#[test]
fn replies_are_exact() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["SADD", "s", "a", "b", "c", "a"], ":3\r\n"),
        (&["SCARD", "s"], ":3\r\n"),
        (&["SISMEMBER", "s", "a"], ":1\r\n"),
        (&["SMISMEMBER", "s", "a", "z", "b"], "*3\r\n:1\r\n:0\r\n:1\r\n"),
        (&["SREM", "s", "a", "z"], ":1\r\n"),
        (&["SMEMBERS", "nx"], "*0\r\n"),
        (&["SADD", "t", "b", "x"], ":2\r\n"),
        (&["SINTER", "s", "t"], "*1\r\n$1\r\nb\r\n"),
        (&["SDIFF", "nx", "s"], "*0\r\n"),
        (&["SINTERSTORE", "d", "s", "t"], ":1\r\n"),
        (&["SMEMBERS", "d"], "*1\r\n$1\r\nb\r\n"),
        (&["SUNIONSTORE", "d", "s", "t"], ":3\r\n"),
        (&["SDIFFSTORE", "d", "nx"], ":0\r\n"),
        (&["EXISTS", "d"], ":0\r\n"),
        (&["SINTERCARD", "2", "s", "t", "LIMIT", "1"], ":1\r\n"),
        (&["SINTERCARD", "0", "s"], "-ERR numkeys should be greater than 0\r\n"),
        (&["SINTERCARD", "3", "s", "t"], "-ERR Number of keys can't be greater than number of args\r\n"),
        (&["SET", "str", "v"], "+OK\r\n"),
        (&["SADD", "str", "x"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["SINTER", "s", "str"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["SINTERSTORE", "str", "s"], ":2\r\n"),
        (&["TYPE", "str"], "+set\r\n"),
        (&["SMOVE", "s", "t", "c"], ":1\r\n"),
        (&["SMOVE", "s", "t", "zz"], ":0\r\n"),
        (&["SMOVE", "t", "hash", "b"], ":1\r\n"),
        // A missing source answers 0 before the destination's type is checked.
        (&["SET", "str2", "v"], "+OK\r\n"),
        (&["SMOVE", "nx", "str2", "b"], ":0\r\n"),
        (&["SMOVE", "s", "str2", "zz"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["SPOP", "nx"], "$-1\r\n"),
        (&["SPOP", "s", "-1"], "-ERR value is out of range, must be positive\r\n"),
        (&["SRANDMEMBER", "nx", "3"], "*0\r\n"),
        (&["SRANDMEMBER", "t", "x"], "-ERR value is not an integer or out of range\r\n"),
        (
            &["SRANDMEMBER", "str2", "-9223372036854775808"],
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n",
        ),
        (&["SADD", "i", "1", "2", "3"], ":3\r\n"),
        (&["OBJECT", "ENCODING", "i"], "$6\r\nintset\r\n"),
        (&["SPOP", "i", "10"], "*3\r\n"),
    ];
    for (cmd, want) in cases {
        let got = c.cmd(cmd);
        assert!(got.starts_with(want), "command {cmd:?}: {got:?}");
    }
    assert_eq!(c.cmd(&["EXISTS", "i"]), ":0\r\n");
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(c.cmd(&["SMEMBERS", "hash"]), "~1\r\n$1\r\nb\r\n");
}

#[test]
fn operations_across_shards_and_dump() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.sync_conn();
    for i in 0..8 {
        let members: Vec<String> = (0..50).filter(|m| m % (i + 2) == 0).map(|m| m.to_string()).collect();
        let _: () = redis::cmd("SADD").arg(format!("set{i}")).arg(&members).query(&mut c).expect("SADD");
    }
    let inter: BTreeSet<String> = redis::cmd("SINTER").arg("set0").arg("set1").query(&mut c).expect("SINTER");
    assert_eq!(inter, (0..50).filter(|m| m % 6 == 0).map(|m| m.to_string()).collect());
    let n: usize =
        redis::cmd("SUNIONSTORE").arg("all").arg((0..8).map(|i| format!("set{i}")).collect::<Vec<_>>()).query(&mut c).expect("SUNIONSTORE");
    assert_eq!(n, (0..50).filter(|m| (2..10).any(|d| m % d == 0)).count());
    let d: Vec<u8> = redis::cmd("DUMP").arg("all").query(&mut c).expect("DUMP");
    let _: () = redis::cmd("RESTORE").arg("copy").arg(0).arg(&d).query(&mut c).expect("RESTORE");
    let a: BTreeSet<String> = redis::cmd("SMEMBERS").arg("all").query(&mut c).expect("SMEMBERS");
    let b: BTreeSet<String> = redis::cmd("SMEMBERS").arg("copy").query(&mut c).expect("SMEMBERS");
    assert_eq!(a, b);
    let mut seen = BTreeSet::new();
    for _ in 0..a.len() {
        let m: String = redis::cmd("SPOP").arg("copy").query(&mut c).expect("SPOP");
        assert!(seen.insert(m));
    }
    assert_eq!(seen, a);
}

/// `set-max-intset-entries` decides when a set of integers stops being an
/// intset: OBJECT ENCODING says so, and DUMP writes the set in the same RDB
/// encoding redis-server's DUMP does (intset, or a plain set) under the
/// same setting, SADD, SMOVE and SUNIONSTORE alike.
#[test]
fn the_intset_limit_is_a_setting() {
    let s = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    // The RDB type byte of a key's DUMP payload.
    let kind = |c: &mut damselfly_tests::Raw, key: &str| -> u8 {
        c.send_cmd(&[b"DUMP", key.as_bytes()]);
        let reply = c.read_reply();
        let at = reply.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
        reply[at]
    };
    for limit in ["3", "512"] {
        for cmds in [
            &[&["CONFIG", "SET", "set-max-intset-entries", limit][..], &["FLUSHALL"]][..],
            &[&["SADD", "{s}three", "1", "2", "3"], &["SADD", "{s}four", "1", "2", "3", "4"], &["SADD", "{s}mixed", "1", "x"]],
            &[&["SMOVE", "{s}four", "{s}three", "4"], &["SUNIONSTORE", "{s}union", "{s}four", "{s}mixed"]],
            &[&["SUNIONSTORE", "{s}ints", "{s}three", "{s}four"], &["SREM", "{s}three", "4"], &["CONFIG", "GET", "set-max-intset-entries"]],
        ] {
            c.same_replies(&mut r, cmds);
        }
        for key in ["{s}three", "{s}four", "{s}mixed", "{s}union", "{s}ints"] {
            assert_eq!(kind(&mut c, key), kind(&mut r, key), "RDB type of {key} with set-max-intset-entries {limit}");
        }
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "set-max-intset-entries", "2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SADD", "n", "1", "2"]), ":2\r\n");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "n"]), "$6\r\nintset\r\n");
    assert_eq!(c.cmd(&["SADD", "n", "3"]), ":1\r\n");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "n"]), "$8\r\nlistpack\r\n");
}

/// SSCAN pages through a large set as Redis's does, and random picks read
/// a large set without walking it: small sets (intset, listpack) come back
/// whole with cursor 0 on both servers; a hashtable set comes in pages of
/// about COUNT members, and a scan with members added and removed between
/// pages returns every member present throughout, each once. SPOP and
/// SRANDMEMBER pick members that are there, distinct where asked.
#[test]
fn sscan_pages_through_a_large_set() {
    let s = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    c.same_replies(
        &mut r,
        &[
            &["SADD", "ints", "3", "1", "2"],
            &["SSCAN", "ints", "0", "COUNT", "1"],
            &["SSCAN", "ints", "7"],
            &["SSCAN", "ints", ""],
            &["SSCAN", "ints", "-1"],
            &["SSCAN", "ints", "x"],
            &["SSCAN", "ints", "0", "COUNT", "0"],
            &["SSCAN", "ints", "0", "COUNT"],
            &["SSCAN", "nx", "0"],
        ],
    );
    // A listpack set (Redis 7.2's encoding; 7.0 has none) comes back whole.
    assert_eq!(c.cmd(&["SADD", "small", "b", "a", "c"]), ":3\r\n");
    assert_eq!(c.cmd(&["SSCAN", "small", "0", "COUNT", "1", "MATCH", "[ab]"]), "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n");
    let mut con = s.sync_conn();
    let members: Vec<String> = (0..2000).map(|i| format!("m{i}")).collect();
    let _: () = redis::cmd("SADD").arg("big").arg(&members).query(&mut con).expect("SADD");
    let page: (u64, Vec<String>) = redis::cmd("SSCAN").arg("big").arg(0).arg("COUNT").arg(10).query(&mut con).expect("SSCAN");
    assert!(page.0 != 0 && (10..=20).contains(&page.1.len()), "first page: cursor {}, {} members", page.0, page.1.len());

    let mut returned = std::collections::HashMap::<String, usize>::new();
    let (mut cursor, mut calls) = (0u64, 0);
    loop {
        let (next, got): (u64, Vec<String>) =
            redis::cmd("SSCAN").arg("big").arg(cursor).arg("COUNT").arg(25).query(&mut con).expect("SSCAN");
        for m in got {
            *returned.entry(m).or_default() += 1;
        }
        // Between pages: some members go, new ones come.
        let _: () = redis::cmd("SREM").arg("big").arg(format!("m{}", calls * 7)).query(&mut con).expect("SREM");
        let _: () = redis::cmd("SADD").arg("big").arg(format!("new{calls}")).query(&mut con).expect("SADD");
        calls += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 400, "SSCAN did not finish");
    }
    assert!(calls > 40, "a 2,000-member set took {calls} pages of 25");
    for (i, m) in members.iter().enumerate() {
        let removed = i % 7 == 0 && i / 7 < calls;
        assert!(removed || returned.contains_key(m), "{m} was never returned");
    }
    assert!(returned.values().all(|&n| n == 1), "a member was returned twice");
    assert!(returned.keys().all(|m| m.starts_with('m') || m.starts_with("new")));

    let card: usize = redis::cmd("SCARD").arg("big").query(&mut con).expect("SCARD");
    let distinct: Vec<String> = redis::cmd("SRANDMEMBER").arg("big").arg(300).query(&mut con).expect("SRANDMEMBER");
    let unique: BTreeSet<&String> = distinct.iter().collect();
    assert_eq!((distinct.len(), unique.len()), (300, 300));
    let popped: Vec<String> = redis::cmd("SPOP").arg("big").arg(100).query(&mut con).expect("SPOP");
    let one: String = redis::cmd("SPOP").arg("big").query(&mut con).expect("SPOP");
    let unique: BTreeSet<&String> = popped.iter().chain([&one]).collect();
    assert_eq!(unique.len(), 101);
    let left: usize = redis::cmd("SCARD").arg("big").query(&mut con).expect("SCARD");
    assert_eq!(left, card - 101);
    for m in unique {
        let there: bool = redis::cmd("SISMEMBER").arg("big").arg(m).query(&mut con).expect("SISMEMBER");
        assert!(!there && (m.starts_with('m') || m.starts_with("new")), "{m}");
    }
    let picks: Vec<String> = redis::cmd("SRANDMEMBER").arg("big").arg(-500).query(&mut con).expect("SRANDMEMBER");
    assert_eq!(picks.len(), 500);
    for m in picks.iter().take(20) {
        let there: bool = redis::cmd("SISMEMBER").arg("big").arg(m).query(&mut con).expect("SISMEMBER");
        assert!(there, "{m}");
    }
}

/// Small sets are held as Redis holds them: a set of integers as a sorted
/// array of the narrowest integer width (MEMORY USAGE within 10% of
/// redis-server's intset; it took 15x as a table), a few short strings
/// packed in one buffer (under redis-server 7.0's hashtable); an intset
/// lists its members in increasing order, as redis-server's does.
#[test]
fn small_sets_are_as_compact_as_redis_encodings() {
    let s = Server::start();
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    let usage = |c: &mut damselfly_tests::Raw, key: &str| -> u64 {
        let reply = c.cmd(&["MEMORY", "USAGE", key]);
        reply.trim_start_matches(':').trim().parse().unwrap_or_else(|_| panic!("MEMORY USAGE {key}: {reply}"))
    };
    let ids: Vec<String> = (0..20).map(|i| (1740 - i * 37).to_string()).collect();
    let mut add = vec!["SADD", "ids"];
    add.extend(ids.iter().map(String::as_str));
    c.same_replies(
        &mut r,
        &[&add[..], &["SADD", "tags", "red", "green", "blue", "large", "cotton"], &["SMEMBERS", "ids"], &["OBJECT", "ENCODING", "ids"]],
    );
    let (ours, theirs) = (usage(&mut c, "ids"), usage(&mut r, "ids"));
    assert!(ours * 10 <= theirs * 11, "intset: {ours} bytes against redis-server's {theirs}");
    let (ours, theirs) = (usage(&mut c, "tags"), usage(&mut r, "tags"));
    assert!(ours <= theirs, "five short members: {ours} bytes against redis-server's {theirs}");
    // A wider integer widens the array; members keep their order.
    c.same_replies(
        &mut r,
        &[
            &["SADD", "ids", "-70000", "9000000000"],
            &["SREM", "ids", "1740"],
            &["SMEMBERS", "ids"],
            &["SSCAN", "ids", "0"],
            &["SISMEMBER", "ids", "9000000000"],
        ],
    );
}
