//! HyperLogLog against a real server: estimates equal to redis-server 7's
//! for the same elements (checked when these figures were taken), merging
//! across shards, the errors, and the strings they are stored as.

use damselfly_tests::Server;

#[test]
fn estimates_and_errors() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.sync_conn();
    let mut raw = s.raw();
    assert_eq!(raw.cmd(&["PFADD", "h"]), ":1\r\n");
    assert_eq!(raw.cmd(&["PFADD", "h", "a", "b", "c"]), ":1\r\n");
    assert_eq!(raw.cmd(&["PFADD", "h", "a"]), ":0\r\n");
    assert_eq!(raw.cmd(&["PFCOUNT", "h"]), ":3\r\n");
    assert_eq!(raw.cmd(&["PFCOUNT", "nx"]), ":0\r\n");
    assert_eq!(raw.cmd(&["SET", "s", "plain"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["PFADD", "s", "x"]), "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n");
    for n in [1000usize, 20000] {
        let key = format!("k{n}");
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let els: Vec<String> = chunk.iter().map(|j| format!("el{n}-{j}")).collect();
            let _: i64 = redis::cmd("PFADD").arg(&key).arg(els).query(&mut c).expect("PFADD");
        }
    }
    // The figures redis-server gives for the same elements.
    let count = |c: &mut redis::Connection, keys: &[&str]| -> i64 { redis::cmd("PFCOUNT").arg(keys).query(c).expect("PFCOUNT") };
    assert_eq!(count(&mut c, &["k1000"]), 996);
    assert_eq!(count(&mut c, &["k20000"]), 20250);
    assert_eq!(count(&mut c, &["k1000", "k20000"]), 21282);
    let _: () = redis::cmd("PFMERGE").arg("m").arg("k1000").arg("k20000").query(&mut c).expect("PFMERGE");
    assert_eq!(count(&mut c, &["m"]), 21282);
    assert_eq!(raw.cmd(&["TYPE", "m"]), "+string\r\n");
}

/// Commands and the exact replies redis-server 7.0 gives: the layout of
/// the strings (sparse while small, dense past `hll-sparse-max-bytes`'
/// default 3000, dense after a merge with a dense one), the cardinality
/// cached in the header by PFCOUNT, and the two kinds
/// of damaged value (a broken header: WRONGTYPE; sparse runs that do not
/// cover the registers: INVALIDOBJ).
fn layouts_and_damage(port: u16) -> Vec<String> {
    let mut c = damselfly_tests::Raw::connect(port);
    let many: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let mut big = vec!["PFADD", "big{t}"];
    big.extend(many.iter().map(|s| s.as_str()));
    let cmds: &[&[&str]] = &[
        &["PFADD", "h{t}", "a", "b", "c"],
        &["GET", "h{t}"],
        &["PFADD", "h{t}", "d"],
        &["GET", "h{t}"],
        &big,
        &["STRLEN", "big{t}"],
        &["GETRANGE", "big{t}", "4", "4"],
        &["PFMERGE", "m{t}", "h{t}"],
        &["GET", "m{t}"],
        &["PFMERGE", "m{t}", "big{t}"],
        &["STRLEN", "m{t}"],
        &["PFCOUNT", "m{t}"],
        // PFCOUNT of one key stores the count in the header's cache (bytes
        // 8-15; the top bit of byte 15 marks it stale) and tells watchers;
        // a PFADD that changes a register marks it stale again.
        &["GET", "m{t}"],
        &["PFCOUNT", "h{t}"],
        &["GETRANGE", "h{t}", "8", "15"],
        &["PFADD", "h{t}", "a", "b"],
        &["GETRANGE", "h{t}", "15", "15"],
        &["PFADD", "h{t}", "zz"],
        &["GETRANGE", "h{t}", "15", "15"],
        &["PFCOUNT", "h{t}", "m{t}"],
        &["GETRANGE", "h{t}", "15", "15"],
        &["WATCH", "h{t}"],
        &["PFCOUNT", "h{t}"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
        &["WATCH", "h{t}"],
        &["PFCOUNT", "h{t}"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
        // Extra bytes after the runs (PFADD is left out: redis-server edits
        // the runs in place and may keep the junk; this server refuses).
        &["APPEND", "h{t}", "hello"],
        &["PFCOUNT", "h{t}"],
        &["PFMERGE", "m{t}", "h{t}"],
        // A dense header on a sparse string.
        &["DEL", "h{t}"],
        &["PFADD", "h{t}", "a", "b", "c"],
        &["SETRANGE", "h{t}", "4", "\0"],
        &["PFCOUNT", "h{t}"],
        // An unknown encoding.
        &["SETRANGE", "h{t}", "4", "\x02"],
        &["PFCOUNT", "h{t}"],
    ];
    cmds.iter().map(|cmd| c.cmd(cmd)).collect()
}

#[test]
fn layouts_and_damaged_values_match_redis() {
    let r = damselfly_tests::Redis::start();
    let want = layouts_and_damage(r.port);
    assert!(want.iter().any(|w| w.starts_with("-INVALIDOBJ")), "{want:?}");
    let s = Server::start_with(&["--shards", "2"]);
    let got = layouts_and_damage(s.port);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // Dense strings are 12 KB: show where they part, not all of them.
        let (g, w) = (g.as_bytes(), w.as_bytes());
        let at = g.iter().zip(w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
        let part = |b: &[u8]| String::from_utf8_lossy(&b[at..(at + 40).min(b.len())]).into_owned();
        assert!(g == w, "reply {i} differs from byte {at}: {:?} vs redis-server's {:?}", part(g), part(w));
    }
}

/// `hll-sparse-max-bytes`: the string's length after each PFADD of one
/// element, sparse until it would pass 100 bytes, then dense.
fn lengths_under_a_sparse_limit(port: u16) -> Vec<String> {
    let mut c = damselfly_tests::Raw::connect(port);
    let mut got = vec![c.cmd(&["CONFIG", "SET", "hll-sparse-max-bytes", "100"]), c.cmd(&["CONFIG", "GET", "hll-sparse-max-bytes"])];
    for i in 0..30 {
        c.cmd(&["PFADD", "hs", &format!("e{i}")]);
        got.push(c.cmd(&["STRLEN", "hs"]));
    }
    got.push(c.cmd(&["CONFIG", "SET", "hll-sparse-max-bytes", "1x"]));
    got
}

#[test]
fn the_sparse_limit_is_followed_as_redis_follows_it() {
    let r = damselfly_tests::Redis::start();
    let want = lengths_under_a_sparse_limit(r.port);
    assert!(want.contains(&":12304\r\n".to_string()), "{want:?}");
    let s = Server::start();
    assert_eq!(lengths_under_a_sparse_limit(s.port), want);
}

/// PFDEBUG's subcommands give redis-server's replies: the sparse opcodes,
/// the layout, the registers (converting a sparse string to dense, which
/// stays dense), TODENSE, and the errors.
#[test]
fn pfdebug_matches_redis() {
    let s = damselfly_tests::Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut theirs) = (s.raw(), r.raw());
    let cases: &[&[&str]] = &[
        &["PFADD", "h", "a", "b", "c", "d", "e", "f", "g"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["PFDEBUG", "GETREG", "h"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["PFADD", "h2", "x", "y"],
        &["PFDEBUG", "TODENSE", "h2"],
        &["PFDEBUG", "TODENSE", "h2"],
        &["PFDEBUG", "ENCODING", "h2"],
        &["PFCOUNT", "h2"],
        &["GET", "h2"],
        &["PFDEBUG", "ENCODING", "nosuch"],
        &["PFDEBUG", "BOGUS", "h"],
        &["SET", "s", "notahll"],
        &["PFDEBUG", "ENCODING", "s"],
        &["PFDEBUG", "GETREG"],
        // The sketch's own checks (registers, layouts, error bounds).
        &["PFSELFTEST"],
        &["PFSELFTEST", "extra"],
    ];
    ours.same_replies(&mut theirs, cases);
}
