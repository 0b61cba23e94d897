//! Generic key commands against a real server: exact replies and errors,
//! the EXPIRE family's options and edge cases, lazy and active expiry,
//! RENAME/COPY across shards and databases, MOVE, SWAPDB (and its atomicity),
//! OBJECT, MEMORY, DUMP/RESTORE, and SCAN's guarantee under concurrent writes.
//! The moves between keys and databases are in `relocate`, SCAN in `scan`.

#[path = "keys/relocate.rs"]
mod relocate;
#[path = "keys/scan.rs"]
mod scan;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use damselfly_tests::Server;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

/// DUMP payloads in Redis's format (`node/src/store/dump.rs`), built here
/// independently of the server: an RDB object, the RDB version (2 bytes LE),
/// then Redis's CRC-64 (Jones polynomial, reflected) of all that (8 bytes
/// LE). They check the server's output from the outside and build values the
/// tests cannot create otherwise.
mod payload {

    /// Redis's CRC-64, bit by bit.
    pub fn crc64(data: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &b in data {
            crc ^= b as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5 } else { crc >> 1 };
            }
        }
        crc
    }

    /// An RDB length (6, 14 or 32 bits).
    fn put_len(out: &mut Vec<u8>, n: usize) {
        if n < 64 {
            out.push(n as u8);
        } else if n < 16384 {
            out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
        } else {
            out.push(0x80);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        put_len(out, b.len());
        out.extend_from_slice(b);
    }

    fn seal(mut p: Vec<u8>) -> Vec<u8> {
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    /// A string in the raw encoding (type 0).
    pub fn string(b: &[u8]) -> Vec<u8> {
        let mut p = vec![0];
        put_bytes(&mut p, b);
        seal(p)
    }

    /// A string holding an integer of -128..=127: the 8-bit integer encoding.
    pub fn int8(n: i8) -> Vec<u8> {
        seal(vec![0, 0xc0, n as u8])
    }

    /// A hash in the plain encoding (type 4): count, then fields and values.
    pub fn hash(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![4];
        put_len(&mut p, pairs.len());
        for (f, v) in pairs {
            put_bytes(&mut p, f);
            put_bytes(&mut p, v);
        }
        seal(p)
    }

    /// `HSET h b 2 a 1; DUMP h` on redis-server 7.0.15: a listpack hash.
    pub const REDIS_SMALL_HASH: &str = "101111000000040081620202018161020101ff0a007218a9d76e7f3088";

    pub fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }
}

fn pairs(n: usize, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n).map(|i| (format!("field{i}").into_bytes(), vec![b'a' + (i % 26) as u8; value_len])).collect()
}

/// A RESP bulk string.
fn bulk(b: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", b.len()).into_bytes();
    v.extend_from_slice(b);
    v.extend_from_slice(b"\r\n");
    v
}

/// A connection to database `db`.
async fn conn_db(s: &Server, db: usize) -> MultiplexedConnection {
    let client = redis::Client::open(format!("{}{db}", s.url())).expect("client");
    damselfly_tests::connect(&client).await
}

async fn dbsize(c: &mut MultiplexedConnection) -> i64 {
    redis::cmd("DBSIZE").query_async(c).await.unwrap()
}

/// (command, exact reply), run in order on one RESP2 connection.
const CASES: &[(&[&str], &str)] = &[
    // DEL / UNLINK / EXISTS / TOUCH / TYPE
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["SET", "n", "10"], "+OK\r\n"),
    (&["EXISTS", "k", "n", "k", "missing"], ":3\r\n"),
    (&["TOUCH", "k", "missing", "n"], ":2\r\n"),
    (&["TYPE", "k"], "+string\r\n"),
    (&["TYPE", "missing"], "+none\r\n"),
    (&["DEL", "k", "missing"], ":1\r\n"),
    (&["UNLINK", "n", "n"], ":1\r\n"),
    (&["EXISTS", "k"], ":0\r\n"),
    (&["DEL"], "-ERR wrong number of arguments for 'del' command\r\n"),
    // EXPIRE options
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["EXPIRE", "k", "100", "NX"], ":1\r\n"),
    (&["EXPIRE", "k", "200", "NX"], ":0\r\n"),
    (&["EXPIRE", "k", "50", "XX", "GT"], ":0\r\n"),
    (&["EXPIRE", "k", "200", "xx", "gt"], ":1\r\n"),
    (&["TTL", "k"], ":200\r\n"),
    (&["EXPIRE", "k", "300", "LT"], ":0\r\n"),
    (&["EXPIRE", "k", "100", "LT"], ":1\r\n"),
    (&["TTL", "k"], ":100\r\n"),
    (&["EXPIRE", "k", "10", "NX", "XX"], "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
    (&["EXPIRE", "k", "10", "NX", "GT"], "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
    (&["EXPIRE", "k", "10", "GT", "LT"], "-ERR GT and LT options at the same time are not compatible\r\n"),
    (&["EXPIRE", "k", "10", "FOO"], "-ERR Unsupported option FOO\r\n"),
    (&["EXPIRE", "k", "abc", "FOO"], "-ERR Unsupported option FOO\r\n"),
    // The option is shown as C shows a string: up to a NUL.
    (&["EXPIRE", "k", "10", "A\0B"], "-ERR Unsupported option A\r\n"),
    (&["EXPIRE", "k", "abc"], "-ERR value is not an integer or out of range\r\n"),
    (&["EXPIRE", "k", "1.5"], "-ERR value is not an integer or out of range\r\n"),
    (&["EXPIRE", "k"], "-ERR wrong number of arguments for 'expire' command\r\n"),
    (&["EXPIRE", "k", "9223372036854775807"], "-ERR invalid expire time in 'expire' command\r\n"),
    (&["EXPIRE", "k", "-9223372036854775808"], "-ERR invalid expire time in 'expire' command\r\n"),
    (&["PEXPIRE", "k", "9223372036854775807"], "-ERR invalid expire time in 'pexpire' command\r\n"),
    (&["EXPIREAT", "k", "9223372036854775807"], "-ERR invalid expire time in 'expireat' command\r\n"),
    (&["EXPIRE", "missing", "10"], ":0\r\n"),
    (&["PEXPIRE", "missing", "-10"], ":0\r\n"),
    // Absolute times and the *TIME / TTL replies
    (&["EXPIREAT", "k", "4102444800"], ":1\r\n"),
    (&["EXPIRETIME", "k"], ":4102444800\r\n"),
    (&["PEXPIRETIME", "k"], ":4102444800000\r\n"),
    (&["PEXPIREAT", "k", "4102444800123"], ":1\r\n"),
    (&["EXPIRETIME", "k"], ":4102444800\r\n"),
    (&["PEXPIRETIME", "k"], ":4102444800123\r\n"),
    (&["PEXPIREAT", "k", "9223372036854775807"], ":1\r\n"),
    (&["PEXPIRETIME", "k"], ":9223372036854775807\r\n"),
    (&["EXPIRETIME", "missing"], ":-2\r\n"),
    (&["PEXPIRETIME", "missing"], ":-2\r\n"),
    (&["TTL", "missing"], ":-2\r\n"),
    (&["PTTL", "missing"], ":-2\r\n"),
    // PERSIST
    (&["PERSIST", "k"], ":1\r\n"),
    (&["PERSIST", "k"], ":0\r\n"),
    (&["PERSIST", "missing"], ":0\r\n"),
    (&["TTL", "k"], ":-1\r\n"),
    (&["PTTL", "k"], ":-1\r\n"),
    (&["EXPIRETIME", "k"], ":-1\r\n"),
    // GT/LT treat "no TTL" as infinite
    (&["EXPIRE", "k", "100", "GT"], ":0\r\n"),
    (&["EXPIRE", "k", "100", "XX"], ":0\r\n"),
    (&["EXPIRE", "k", "100", "LT"], ":1\r\n"),
    // A time that is not in the future deletes the key and replies 1
    (&["EXPIRE", "k", "0"], ":1\r\n"),
    (&["EXISTS", "k"], ":0\r\n"),
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["EXPIRE", "k", "-10"], ":1\r\n"),
    (&["GET", "k"], "$-1\r\n"),
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["PEXPIREAT", "k", "1"], ":1\r\n"),
    (&["TYPE", "k"], "+none\r\n"),
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["EXPIRE", "k", "100"], ":1\r\n"),
    (&["EXPIRE", "k", "-1", "LT"], ":1\r\n"),
    (&["EXISTS", "k"], ":0\r\n"),
    // RENAME / RENAMENX
    (&["RENAME", "missing", "x"], "-ERR no such key\r\n"),
    (&["RENAMENX", "missing", "x"], "-ERR no such key\r\n"),
    (&["SET", "a", "1"], "+OK\r\n"),
    (&["SET", "b", "2"], "+OK\r\n"),
    (&["RENAME", "a", "a"], "+OK\r\n"),
    (&["RENAMENX", "a", "a"], ":0\r\n"),
    (&["RENAMENX", "a", "b"], ":0\r\n"),
    (&["RENAMENX", "a", "c"], ":1\r\n"),
    (&["RENAME", "c", "b"], "+OK\r\n"),
    (&["GET", "b"], "$1\r\n1\r\n"),
    (&["EXISTS", "a", "c"], ":0\r\n"),
    // COPY
    (&["COPY", "b", "b"], "-ERR source and destination objects are the same\r\n"),
    (&["COPY", "b", "b", "DB", "0"], "-ERR source and destination objects are the same\r\n"),
    (&["COPY", "b", "x", "DB", "16"], "-ERR DB index is out of range\r\n"),
    (&["COPY", "b", "x", "DB", "-1"], "-ERR DB index is out of range\r\n"),
    (&["COPY", "b", "x", "DB", "x"], "-ERR value is not an integer or out of range\r\n"),
    (&["COPY", "b", "x", "DB", "9999999999"], "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"),
    (&["COPY", "b", "x", "DB"], "-ERR syntax error\r\n"),
    (&["COPY", "b", "x", "FOO"], "-ERR syntax error\r\n"),
    (&["COPY", "missing", "x"], ":0\r\n"),
    (&["COPY", "b", "x"], ":1\r\n"),
    (&["COPY", "b", "x"], ":0\r\n"),
    (&["COPY", "b", "x", "replace"], ":1\r\n"),
    (&["COPY", "b", "b", "DB", "1"], ":1\r\n"),
    (&["COPY"], "-ERR wrong number of arguments for 'copy' command\r\n"),
    // MOVE
    (&["MOVE", "b", "0"], "-ERR source and destination objects are the same\r\n"),
    (&["MOVE", "b", "16"], "-ERR DB index is out of range\r\n"),
    (&["MOVE", "b", "x"], "-ERR value is not an integer or out of range\r\n"),
    (&["MOVE", "missing", "1"], ":0\r\n"),
    (&["MOVE", "b", "1"], ":0\r\n"),
    (&["MOVE", "x", "2"], ":1\r\n"),
    (&["EXISTS", "x"], ":0\r\n"),
    // SWAPDB
    (&["SWAPDB", "x", "0"], "-ERR invalid first DB index\r\n"),
    (&["SWAPDB", "0", "x"], "-ERR invalid second DB index\r\n"),
    (&["SWAPDB", "0", "16"], "-ERR DB index is out of range\r\n"),
    (&["SWAPDB", "-1", "0"], "-ERR DB index is out of range\r\n"),
    (&["SWAPDB", "0", "0"], "+OK\r\n"),
    (&["SWAPDB", "0", "2"], "+OK\r\n"),
    (&["GET", "x"], "$1\r\n1\r\n"),
    (&["EXISTS", "b"], ":0\r\n"),
    (&["SWAPDB", "2", "0"], "+OK\r\n"),
    // OBJECT
    (&["SET", "s", "hello"], "+OK\r\n"),
    (&["SET", "i", "12345"], "+OK\r\n"),
    (&["SET", "r", "this string is longer than forty-four bytes, so raw"], "+OK\r\n"),
    (&["OBJECT", "ENCODING", "s"], "$6\r\nembstr\r\n"),
    (&["OBJECT", "encoding", "i"], "$3\r\nint\r\n"),
    (&["OBJECT", "ENCODING", "r"], "$3\r\nraw\r\n"),
    (&["OBJECT", "ENCODING", "missing"], "$-1\r\n"),
    (&["OBJECT", "REFCOUNT", "s"], ":1\r\n"),
    (&["OBJECT", "IDLETIME", "s"], ":0\r\n"),
    (&["OBJECT", "FREQ", "missing"], "$-1\r\n"),
    (&[
        "OBJECT", "FREQ", "s",
    ], "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"),
    (&["OBJECT", "FOO", "s"], "-ERR unknown subcommand 'FOO'. Try OBJECT HELP.\r\n"),
    (&["OBJECT", "ENCODING"], "-ERR wrong number of arguments for 'object|encoding' command\r\n"),
    (&["OBJECT", "ENCODING", "s", "extra"], "-ERR wrong number of arguments for 'object|encoding' command\r\n"),
    (&["OBJECT", "HELP", "extra"], "-ERR wrong number of arguments for 'object|help' command\r\n"),
    (&["OBJECT"], "-ERR wrong number of arguments for 'object' command\r\n"),
    // Under an LFU policy FREQ answers (a new key starts at 5, a read
    // counts) and IDLETIME is refused; EXISTS and OBJECT do not count.
    (&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"], "+OK\r\n"),
    (&["SET", "f", "hello"], "+OK\r\n"),
    (&["OBJECT", "FREQ", "f"], ":5\r\n"),
    (&["GET", "f"], "$5\r\nhello\r\n"),
    (&["EXISTS", "f"], ":1\r\n"),
    (&["OBJECT", "FREQ", "f"], ":6\r\n"),
    (&[
        "OBJECT", "IDLETIME", "f",
    ], "-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"),
    (&["CONFIG", "SET", "maxmemory-policy", "noeviction"], "+OK\r\n"),
    // MEMORY
    (&["MEMORY", "USAGE", "s"], ":48\r\n"),
    (&["MEMORY", "USAGE", "s", "SAMPLES", "0"], ":48\r\n"),
    (&["MEMORY", "USAGE", "missing"], "$-1\r\n"),
    (&["MEMORY", "USAGE", "s", "SAMPLES", "-1"], "-ERR syntax error\r\n"),
    (&["MEMORY", "USAGE", "s", "SAMPLES", "x"], "-ERR value is not an integer or out of range\r\n"),
    (&["MEMORY", "USAGE", "s", "FOO"], "-ERR syntax error\r\n"),
    (&["MEMORY", "USAGE"], "-ERR wrong number of arguments for 'memory|usage' command\r\n"),
    (&["MEMORY", "FOO"], "-ERR unknown subcommand 'FOO'. Try MEMORY HELP.\r\n"),
    (&["MEMORY", "PURGE"], "+OK\r\n"),
    // DUMP / RESTORE argument checks (payload cases are in their own test)
    (&["DUMP", "missing"], "$-1\r\n"),
    (&["RESTORE", "s", "0", "junk"], "-BUSYKEY Target key name already exists.\r\n"),
    (&["RESTORE", "new", "0", "junk"], "-ERR DUMP payload version or checksum are wrong\r\n"),
    (&["RESTORE", "new", "-1", "junk"], "-ERR Invalid TTL value, must be >= 0\r\n"),
    (&["RESTORE", "new", "x", "junk"], "-ERR value is not an integer or out of range\r\n"),
    (&["RESTORE", "new", "0", "junk", "FOO"], "-ERR syntax error\r\n"),
    (&["RESTORE", "new", "0", "junk", "IDLETIME"], "-ERR syntax error\r\n"),
    (&["RESTORE", "new", "0", "junk", "IDLETIME", "-1"], "-ERR Invalid IDLETIME value, must be >= 0\r\n"),
    (&["RESTORE", "new", "0", "junk", "FREQ", "256"], "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"),
    (&["RESTORE", "new", "0", "junk", "FREQ", "1", "IDLETIME", "1"], "-ERR syntax error\r\n"),
    (&["RESTORE", "new", "0"], "-ERR wrong number of arguments for 'restore' command\r\n"),
    // SCAN argument checks
    (&["SCAN", "x"], "-ERR invalid cursor\r\n"),
    (&["SCAN", " 1"], "-ERR invalid cursor\r\n"),
    (&["SCAN", "0", "COUNT", "0"], "-ERR syntax error\r\n"),
    (&["SCAN", "0", "COUNT", "x"], "-ERR value is not an integer or out of range\r\n"),
    (&["SCAN", "0", "MATCH"], "-ERR syntax error\r\n"),
    (&["SCAN", "0", "FOO", "bar"], "-ERR syntax error\r\n"),
    (&["SCAN", "99999"], "*2\r\n$1\r\n0\r\n*0\r\n"),
    (&["SCAN", "0", "MATCH", "nothing-matches-*"], "*2\r\n$1\r\n0\r\n*0\r\n"),
];

#[test]
fn exact_replies() {
    // One shard, so that a SCAN with few keys finishes in one call.
    let s = Server::start_with(&["--shards", "1"]);
    let mut c = s.raw();
    for (cmd, want) in CASES {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

#[test]
fn dump_payload_bytes_are_the_documented_format() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&str, Vec<u8>)] =
        &[("hello", payload::string(b"hello")), ("-42", payload::int8(-42)), ("", payload::string(b"")), ("007", payload::string(b"007"))];
    for (value, want) in cases {
        assert_eq!(c.cmd(&["SET", "k", value]), "+OK\r\n");
        c.send_cmd(&[b"DUMP", b"k"]);
        assert_eq!(c.read_reply(), bulk(want), "DUMP of {value:?}");
    }
    // A hash from a Redis payload comes back byte for byte (small hashes
    // keep their field order and listpack encoding).
    let h = payload::unhex(payload::REDIS_SMALL_HASH);
    c.send_cmd(&[b"RESTORE", b"h", b"0", &h]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    c.send_cmd(&[b"DUMP", b"h"]);
    assert_eq!(c.read_reply(), bulk(&h));
    // Corruption anywhere is refused with the checksum error; a body that is
    // intact but meaningless with the format error.
    for i in [0, 2, 5, h.len() - 10, h.len() - 1] {
        let mut bad = h.clone();
        bad[i] ^= 0x10;
        c.send_cmd(&[b"RESTORE", b"bad", b"0", &bad]);
        assert_eq!(c.read_reply(), b"-ERR DUMP payload version or checksum are wrong\r\n", "flip at {i}");
    }
    let mut future = h.clone();
    let v = future.len() - 10;
    future[v] = 11;
    let n = future.len() - 8;
    let crc = payload::crc64(&future[..n]);
    future[n..].copy_from_slice(&crc.to_le_bytes());
    c.send_cmd(&[b"RESTORE", b"bad", b"0", &future]);
    assert_eq!(c.read_reply(), b"-ERR DUMP payload version or checksum are wrong\r\n", "newer version");
    let empty_hash = payload::hash(&[]);
    c.send_cmd(&[b"RESTORE", b"bad", b"0", &empty_hash]);
    assert_eq!(c.read_reply(), b"-ERR Bad data format\r\n");
    assert_eq!(c.cmd(&["EXISTS", "bad"]), ":0\r\n");
}

#[tokio::test]
async fn dump_restore_round_trips() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let long = "x".repeat(10_000);
    let _: () = c.set("str", "hello world").await.unwrap();
    let _: () = c.set("int", -123456789).await.unwrap();
    let _: () = c.set("long", &long).await.unwrap();
    for key in ["str", "int", "long"] {
        let p: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut c).await.unwrap();
        for target in 0..8 {
            let dst = format!("{key}:copy{target}");
            let _: () = redis::cmd("RESTORE").arg(&dst).arg(0).arg(&p).query_async(&mut c).await.unwrap();
            let a: Vec<u8> = c.get(key).await.unwrap();
            let b: Vec<u8> = c.get(&dst).await.unwrap();
            assert_eq!(a, b, "{dst}");
            assert_eq!(c.ttl::<_, i64>(&dst).await.unwrap(), -1);
        }
    }
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("int:copy3").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "int");
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("long:copy3").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "raw");

    // Hashes: a small one (listpack) and one past the thresholds (hashtable),
    // restored from the plain encoding; each DUMPs in the encoding it took
    // and restores again on another key (most likely on another shard).
    for (key, fields, value_len, encoding) in [("small", 5, 10, "listpack"), ("big", 300, 10, "hashtable"), ("wide", 3, 100, "hashtable")] {
        let want = pairs(fields, value_len);
        let p = payload::hash(&want);
        let _: () = redis::cmd("RESTORE").arg(key).arg(0).arg(&p).query_async(&mut c).await.unwrap();
        let t: String = redis::cmd("TYPE").arg(key).query_async(&mut c).await.unwrap();
        assert_eq!(t, "hash");
        let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(key).query_async(&mut c).await.unwrap();
        assert_eq!(enc, encoding, "{key}");
        let back: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut c).await.unwrap();
        let rdb_type = if encoding == "listpack" { 16 } else { 4 };
        assert_eq!(back[0], rdb_type, "{key}: RDB type of its DUMP");
        let dst = format!("{key}:restored");
        let _: () = redis::cmd("RESTORE").arg(&dst).arg(0).arg(&back).query_async(&mut c).await.unwrap();
        let want: HashMap<Vec<u8>, Vec<u8>> = want.into_iter().collect();
        for k in [key, &dst[..]] {
            let got: HashMap<Vec<u8>, Vec<u8>> = c.hgetall(k).await.unwrap();
            assert_eq!(got, want, "{k}");
        }
        let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(&mut c).await.unwrap();
        assert!(usage as usize > fields * value_len, "{key}: MEMORY USAGE {usage}");
    }

    // TTLs: relative, absolute, already past; REPLACE and BUSYKEY.
    let p: Vec<u8> = redis::cmd("DUMP").arg("str").query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("RESTORE").arg("ttl").arg(50_000).arg(&p).query_async(&mut c).await.unwrap();
    let pttl: i64 = c.pttl("ttl").await.unwrap();
    assert!(pttl > 45_000 && pttl <= 50_000, "{pttl}");
    let busy: redis::RedisResult<()> = redis::cmd("RESTORE").arg("ttl").arg(0).arg(&p).query_async(&mut c).await;
    assert!(busy.unwrap_err().to_string().contains("Target key name already exists"));
    let at = 4_102_444_800_000i64;
    let _: () = redis::cmd("RESTORE").arg("ttl").arg(at).arg(&p).arg("REPLACE").arg("ABSTTL").query_async(&mut c).await.unwrap();
    let t: i64 = redis::cmd("PEXPIRETIME").arg("ttl").query_async(&mut c).await.unwrap();
    assert_eq!(t, at);
    let _: () = redis::cmd("RESTORE")
        .arg("ttl")
        .arg(1000)
        .arg(&p)
        .arg("ABSTTL")
        .arg("REPLACE")
        .arg("IDLETIME")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!c.exists::<_, bool>("ttl").await.unwrap(), "an absolute TTL in the past leaves no key");
    let _: () = redis::cmd("RESTORE").arg("ttl").arg(1000).arg(&p).arg("ABSTTL").arg("FREQ").arg(5).query_async(&mut c).await.unwrap();
    assert!(!c.exists::<_, bool>("ttl").await.unwrap());
}

#[tokio::test]
async fn ttl_values_and_lazy_expiry() {
    let s = Server::start();
    let mut c = s.conn().await;
    let _: () = c.set("k", "v").await.unwrap();
    assert!(c.expire::<_, bool>("k", 100).await.unwrap());
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), 100);
    let pttl: i64 = c.pttl("k").await.unwrap();
    assert!(pttl > 99_000 && pttl <= 100_000, "{pttl}");
    assert!(c.pexpire::<_, bool>("k", 1_700).await.unwrap());
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), 2, "TTL rounds to the nearest second");

    // A key with PX is there before its deadline and gone on access after it.
    let _: () = redis::cmd("SET").arg("lazy").arg("v").arg("PX").arg(300).query_async(&mut c).await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("lazy").await.unwrap().as_deref(), Some("v"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.get::<_, Option<String>>("lazy").await.unwrap(), None);
    assert!(!c.exists::<_, bool>("lazy").await.unwrap());
    assert_eq!(c.ttl::<_, i64>("lazy").await.unwrap(), -2);
}

#[tokio::test]
async fn active_expiry_removes_untouched_keys() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("short:{i}")).arg(i).arg("PX").arg(2000).ignore();
    }
    for i in 0..10 {
        pipe.cmd("SET").arg(format!("kept:{i}")).arg(i).ignore();
        pipe.cmd("SET").arg(format!("later:{i}")).arg(i).arg("EX").arg(3600).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    assert_eq!(dbsize(&mut c).await, 3020);
    // DBSIZE does not touch the keys: only active expiry can shrink it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut size = 3020;
    while Instant::now() < deadline {
        size = dbsize(&mut c).await;
        if size == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(size, 20, "expired keys were not reclaimed in time");
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    let expired: u64 =
        info.lines().find_map(|l| l.strip_prefix("expired_keys:")).and_then(|v| v.trim().parse().ok()).expect("expired_keys in INFO");
    assert_eq!(expired, 3000);
}

#[tokio::test]
async fn keys_and_randomkey() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.conn().await;
    assert_eq!(redis::cmd("RANDOMKEY").query_async::<Option<String>>(&mut c).await.unwrap(), None);
    let all: Vec<String> = (0..40).map(|i| format!("user:{i}")).chain((0..5).map(|i| format!("order:{i}"))).collect();
    for k in &all {
        let _: () = c.set(k, 1).await.unwrap();
    }
    let mut users: Vec<String> = c.keys("user:*").await.unwrap();
    users.sort();
    let mut want: Vec<String> = all.iter().filter(|k| k.starts_with("user:")).cloned().collect();
    want.sort();
    assert_eq!(users, want);
    let mut some: Vec<String> = c.keys("user:1?").await.unwrap();
    some.sort();
    assert_eq!(some, (10..20).map(|i| format!("user:{i}")).collect::<Vec<_>>());
    assert_eq!(c.keys::<_, Vec<String>>("*").await.unwrap().len(), 45);
    for _ in 0..20 {
        let k: String = redis::cmd("RANDOMKEY").query_async(&mut c).await.unwrap();
        assert!(all.contains(&k), "{k}");
    }
}

#[tokio::test]
async fn object_and_memory() {
    let s = Server::start();
    let mut c = s.conn().await;
    let _: () = c.set("small", "abc").await.unwrap();
    let _: () = c.set("big", "x".repeat(1000)).await.unwrap();
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query_async(&mut c).await.unwrap();
    let big: i64 = redis::cmd("MEMORY").arg("USAGE").arg("big").query_async(&mut c).await.unwrap();
    assert_eq!(small, 48, "a short key and value live inside the entry");
    assert_eq!(big, 48 + 1000);
    let long_key = "k".repeat(100);
    let _: () = c.set(&long_key, 1).await.unwrap();
    let n: i64 = redis::cmd("MEMORY").arg("USAGE").arg(&long_key).query_async(&mut c).await.unwrap();
    assert_eq!(n, 48 + 100);
    let help: Vec<String> = redis::cmd("OBJECT").arg("HELP").query_async(&mut c).await.unwrap();
    for sub in ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "HELP"] {
        assert!(help.iter().any(|l| l.starts_with(sub)), "OBJECT HELP lists {sub}");
    }
    let help: Vec<String> = redis::cmd("MEMORY").arg("HELP").query_async(&mut c).await.unwrap();
    assert!(help.iter().any(|l| l.starts_with("USAGE")));
    // Keys of container subcommands are found for routing and COMMAND GETKEYS.
    let keys: Vec<String> = redis::cmd("COMMAND").arg("GETKEYS").arg("OBJECT").arg("ENCODING").arg("k1").query_async(&mut c).await.unwrap();
    assert_eq!(keys, vec!["k1"]);
    let keys: Vec<String> =
        redis::cmd("COMMAND").arg("GETKEYS").arg("COPY").arg("a").arg("b").arg("DB").arg(1).query_async(&mut c).await.unwrap();
    assert_eq!(keys, vec!["a", "b"]);
}

/// TTL, PTTL, TYPE and EXISTS are not accesses (a key's LFU counter and
/// idle time stay, Redis's LOOKUP_NOTOUCH) while GET is; SET's key flags
/// depend on GET; CONFIG SET refuses a parameter named twice, and
/// settings redis-server takes at start-up only with its text. Replies
/// compared with redis-server's.
#[test]
fn lookups_that_do_not_touch_and_command_introspection_match_redis() {
    let s = damselfly_tests::Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut theirs) = (s.raw(), r.raw());
    let cases: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        &["SET", "k", "v", "EX", "1000"],
        &["OBJECT", "FREQ", "k"],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["EXPIRETIME", "k"],
        &["TYPE", "k"],
        &["EXISTS", "k"],
        &["OBJECT", "FREQ", "k"],
        &["GET", "k"],
        &["OBJECT", "FREQ", "k"],
        &["COMMAND", "GETKEYSANDFLAGS", "SET", "k1", "v1"],
        &["COMMAND", "GETKEYSANDFLAGS", "SET", "k1", "v1", "NX", "GET"],
        &["COMMAND", "GETKEYSANDFLAGS", "MSET", "k1", "v1", "k2", "v2"],
        &["CONFIG", "SET", "maxmemory", "100000001", "maxmemory", "100000002"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
        &["CONFIG", "SET", "daemonize", "yes"],
        &["CONFIG", "SET", "databases", "3"],
        &["CONFIG", "SET", "io-threads", "4"],
    ];
    for cmd in cases {
        let (a, b) = (ours.cmd(cmd), theirs.cmd(cmd));
        if cmd[0] == "PTTL" || cmd[0] == "EXPIRETIME" {
            assert!(a.starts_with(':') && b.starts_with(':'), "{cmd:?}: {a:?} {b:?}");
            continue;
        }
        assert_eq!(a, b, "{cmd:?}");
    }
}
