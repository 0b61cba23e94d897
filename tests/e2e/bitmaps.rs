//! Bit operations against a real server: exact replies (compared with
//! redis-server 7 when they were written), BITOP over keys of several
//! shards.

use damselfly_tests::Server;

#[test]
fn replies_are_exact() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["SETBIT", "b", "7", "1"], ":0\r\n"),
        (&["SETBIT", "b", "7", "1"], ":1\r\n"),
        (&["SETBIT", "b", "100", "1"], ":0\r\n"),
        (&["GETBIT", "b", "7"], ":1\r\n"),
        (&["GETBIT", "b", "100000"], ":0\r\n"),
        (&["STRLEN", "b"], ":13\r\n"),
        (&["SETBIT", "b", "-1", "1"], "-ERR bit offset is not an integer or out of range\r\n"),
        (&["SETBIT", "b", "1", "2"], "-ERR bit is not an integer or out of range\r\n"),
        (&["BITCOUNT", "b"], ":2\r\n"),
        (&["BITCOUNT", "b", "-1", "-1"], ":1\r\n"),
        (&["BITCOUNT", "b", "5", "30", "BIT"], ":1\r\n"),
        (&["BITCOUNT", "b", "0"], "-ERR syntax error\r\n"),
        (&["SET", "ones", "\u{7f}"], "+OK\r\n"),
        (&["BITPOS", "ones", "0"], ":0\r\n"),
        (&["BITPOS", "ones", "1"], ":1\r\n"),
        (&["BITPOS", "nx", "0"], ":0\r\n"),
        (&["BITPOS", "nx", "1"], ":-1\r\n"),
        (&["BITPOS", "ones", "2"], "-ERR The bit argument must be 1 or 0.\r\n"),
        (&["BITPOS", "ones", "x"], "-ERR value is not an integer or out of range\r\n"),
        // Two negative indexes with start after end: empty for BITCOUNT
        // (before clamping), clamped to the first byte for BITPOS.
        (&["BITCOUNT", "ones", "-3", "-6"], ":0\r\n"),
        (&["BITCOUNT", "ones", "-3", "-6", "bad"], ":0\r\n"),
        (&["BITCOUNT", "ones", "-2", "-1"], ":7\r\n"),
        (&["BITPOS", "ones", "1", "-3", "-6"], ":1\r\n"),
        // Too many arguments is a syntax error before any is parsed.
        (&["BITCOUNT", "ones", "x", "1", "BIT", "y"], "-ERR syntax error\r\n"),
        (&["BITPOS", "ones", "1", "x", "1", "BIT", "y"], "-ERR syntax error\r\n"),
        (&["BITPOS", "ones", "1", "1", "x", "y"], "-ERR syntax error\r\n"),
        (&["BITPOS", "ones", "1", "x", "1", "y"], "-ERR value is not an integer or out of range\r\n"),
        (&["BITCOUNT", "ones", "x", "1", "y"], "-ERR value is not an integer or out of range\r\n"),
        // A missing key counts 0 before the arguments are checked (Redis 7;
        // Redis 8 checks them first).
        (&["BITCOUNT", "nx", "0"], ":0\r\n"),
        (&["BITCOUNT", "nx", "x", "y"], ":0\r\n"),
        (&["SET", "empty", ""], "+OK\r\n"),
        (&["BITCOUNT", "empty", "0"], "-ERR syntax error\r\n"),
        (&["SET", "a", "abc"], "+OK\r\n"),
        (&["SET", "c", "xyzw"], "+OK\r\n"),
        (&["BITOP", "AND", "r", "a", "c"], ":4\r\n"),
        (&["GET", "r"], "$4\r\n``b\0\r\n"),
        (&["BITOP", "OR", "r", "a", "c", "nx"], ":4\r\n"),
        (&["GET", "r"], "$4\r\ny{{w\r\n"),
        (&["BITOP", "NOT", "r", "a", "c"], "-ERR BITOP NOT must be called with a single source key.\r\n"),
        (&["BITOP", "AND", "r", "nx"], ":0\r\n"),
        (&["EXISTS", "r"], ":0\r\n"),
        (&["HSET", "h", "f", "v"], ":1\r\n"),
        (&["SETBIT", "h", "1", "1"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

/// BITFIELD and BITFIELD_RO: every operation, width and overflow mode,
/// `#` offsets and the error texts, as redis-server 7.0 answers them.
#[test]
fn bitfield_replies_are_exact() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    let ty = "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n";
    let off = "-ERR bit offset is not an integer or out of range\r\n";
    let cases: &[(&[&str], &str)] = &[
        // GETs alone create nothing.
        (&["BITFIELD", "k", "GET", "u8", "0"], "*1\r\n:0\r\n"),
        (&["EXISTS", "k"], ":0\r\n"),
        (
            &["BITFIELD", "k", "SET", "u8", "0", "255", "GET", "u8", "0", "GET", "i8", "0", "GET", "i4", "4"],
            "*4\r\n:0\r\n:255\r\n:-1\r\n:-1\r\n",
        ),
        (&["STRLEN", "k"], ":1\r\n"),
        (
            &[
                "BITFIELD", "k", "INCRBY", "u8", "0", "10", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300", "OVERFLOW", "FAIL", "INCRBY",
                "u8", "0", "1",
            ],
            "*3\r\n:9\r\n:255\r\n$-1\r\n",
        ),
        (
            &[
                "BITFIELD", "k", "SET", "i8", "#1", "-100", "INCRBY", "i8", "#1", "-100", "OVERFLOW", "SAT", "INCRBY", "i8", "#1", "-100",
                "GET", "i8", "8",
            ],
            "*4\r\n:0\r\n:56\r\n:-44\r\n:-44\r\n",
        ),
        (
            &["BITFIELD", "k", "SET", "u63", "0", "9223372036854775807", "GET", "u63", "0", "GET", "i64", "0"],
            "*3\r\n:9217179587367141376\r\n:9223372036854775807\r\n:-2\r\n",
        ),
        (
            &[
                "BITFIELD",
                "k",
                "SET",
                "i64",
                "0",
                "-9223372036854775808",
                "INCRBY",
                "i64",
                "0",
                "-1",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "i64",
                "0",
                "-1",
            ],
            "*3\r\n:-2\r\n:9223372036854775807\r\n:9223372036854775806\r\n",
        ),
        (
            &["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", "1", "SET", "u8", "0", "256", "GET", "u8", "0"],
            "*3\r\n:9223372036854775807\r\n$-1\r\n:127\r\n",
        ),
        (
            &["BITFIELD", "k", "SET", "u8", "0", "-1", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "GET", "u8", "0"],
            "*3\r\n:127\r\n:255\r\n:255\r\n",
        ),
        (
            &["BITFIELD", "k", "SET", "u1", "100", "1", "GET", "u1", "100", "GET", "u2", "99", "GET", "i2", "99"],
            "*4\r\n:0\r\n:1\r\n:1\r\n:1\r\n",
        ),
        (&["STRLEN", "k"], ":13\r\n"),
        (&["BITFIELD", "k", "GET", "u8", "#0", "GET", "u8", "#1", "GET", "i64", "#2"], "*3\r\n:255\r\n:255\r\n:0\r\n"),
        (&["BITFIELD", "k", "GET", "u64", "0"], ty),
        (&["BITFIELD", "k", "GET", "i65", "0"], ty),
        (&["BITFIELD", "k", "GET", "x8", "0"], ty),
        (&["BITFIELD", "k", "GET", "u0", "0"], ty),
        (&["BITFIELD", "k", "GET", "u08", "0"], ty),
        (&["BITFIELD", "k", "GET", "u8", "-1"], off),
        (&["BITFIELD", "k", "GET", "u8", "#-1"], off),
        (&["BITFIELD", "k", "GET", "u8", "4294967296"], off),
        (&["BITFIELD", "k", "GET", "u8", "#536870912"], off),
        (&["BITFIELD", "k", "GET", "u8", "4294967295"], "*1\r\n:0\r\n"),
        (&["BITFIELD", "k", "SET", "u8", "0", "1.5"], "-ERR value is not an integer or out of range\r\n"),
        (&["BITFIELD", "k", "OVERFLOW", "bad", "GET", "u8", "0"], "-ERR Invalid OVERFLOW type specified\r\n"),
        (&["BITFIELD", "k", "OVERFLOW"], "-ERR syntax error\r\n"),
        (&["BITFIELD", "k", "GET", "u8"], "-ERR syntax error\r\n"),
        (&["BITFIELD", "k"], "*0\r\n"),
        (&["BITFIELD"], "-ERR wrong number of arguments for 'bitfield' command\r\n"),
        (&["BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i16", "#3"], "*2\r\n:255\r\n:-1\r\n"),
        (&["BITFIELD_RO", "k", "SET", "u8", "0", "1"], "-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        (&["BITFIELD_RO", "k", "OVERFLOW", "SAT"], "*0\r\n"),
        (&["BITFIELD_RO", "nokey", "GET", "u8", "0"], "*1\r\n:0\r\n"),
        (&["LPUSH", "l", "a"], ":1\r\n"),
        (&["BITFIELD", "l", "GET", "u8", "0"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["BITFIELD_RO", "l", "GET", "u8", "0"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (&["BITFIELD_RO", "l", "SET", "u8", "0", "1"], "-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        // A write that fails its overflow check still creates the key.
        (&["BITFIELD", "nokey2", "OVERFLOW", "FAIL", "SET", "u8", "0", "300"], "*1\r\n$-1\r\n"),
        (&["GET", "nokey2"], "$1\r\n\0\r\n"),
        // Integer-encoded strings are read as their digits.
        (&["SET", "n", "12345"], "+OK\r\n"),
        (&["BITFIELD", "n", "GET", "u8", "0", "GET", "i16", "8"], "*2\r\n:49\r\n:12851\r\n"),
        (&["BITFIELD", "n", "SET", "u8", "0", "50"], "*1\r\n:49\r\n"),
        (&["GET", "n"], "$5\r\n22345\r\n"),
        (
            &["BITFIELD", "n", "INCRBY", "u4", "#3", "20", "INCRBY", "i4", "#3", "20", "INCRBY", "i4", "#3", "-20"],
            "*3\r\n:6\r\n:-6\r\n:6\r\n",
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
    // RESP3: a FAIL overflow is a null.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "0", "256"]), "*1\r\n_\r\n");
}
