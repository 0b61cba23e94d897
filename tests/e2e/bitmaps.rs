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
