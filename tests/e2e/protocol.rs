//! Wire-level behaviour, asserted byte for byte: RESP2/RESP3 reply shapes,
//! inline commands, pipelining, and protocol errors.

use damselfly_tests::Server;

/// (command, exact reply) pairs run in order on one RESP2 connection.
const RESP2_CASES: &[(&[&str], &str)] = &[
    (&["PING"], "+PONG\r\n"),
    (&["PING", "hi"], "$2\r\nhi\r\n"),
    (&["ECHO", "x y"], "$3\r\nx y\r\n"),
    (&["SET", "k", "v"], "+OK\r\n"),
    (&["GET", "k"], "$1\r\nv\r\n"),
    (&["GET", "missing"], "$-1\r\n"),
    (&["INCR", "k"], "-ERR value is not an integer or out of range\r\n"),
    (&["SET", "n", "9223372036854775807"], "+OK\r\n"),
    (&["INCR", "n"], "-ERR increment or decrement would overflow\r\n"),
    (&["INCRBYFLOAT", "k", "1"], "-ERR value is not a valid float\r\n"),
    (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
    (&["SET", "k", "v", "EX", "0"], "-ERR invalid expire time in 'set' command\r\n"),
    (&["GET"], "-ERR wrong number of arguments for 'get' command\r\n"),
    (&["NOSUCH", "a", "b"], "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n"),
    (&["SELECT", "99"], "-ERR DB index is out of range\r\n"),
    (&["MGET", "k", "missing"], "*2\r\n$1\r\nv\r\n$-1\r\n"),
    (&["EXISTS", "k", "k", "missing"], ":2\r\n"),
    (&["TYPE", "k"], "+string\r\n"),
    (&["TYPE", "missing"], "+none\r\n"),
    (&["TTL", "k"], ":-1\r\n"),
    (&["TTL", "missing"], ":-2\r\n"),
    (&["DEL", "k", "n", "missing"], ":2\r\n"),
];

#[test]
fn resp2_replies_are_exact() {
    let s = Server::start();
    let mut c = s.raw();
    for (cmd, want) in RESP2_CASES {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

#[test]
fn resp3_replies_use_resp3_types() {
    let s = Server::start();
    let mut c = s.raw();
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"));
    assert_eq!(c.cmd(&["GET", "missing"]), "_\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    assert_eq!(c.cmd(&["HELLO", "4"]), "-NOPROTO unsupported protocol version\r\n");
    let back = c.cmd(&["HELLO", "2"]);
    assert!(back.starts_with("*14\r\n"), "{back}");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
}

#[test]
fn inline_commands_work() {
    let s = Server::start();
    let mut c = s.raw();
    c.send(b"SET greeting \"hello world\"\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    c.send(b"GET greeting\n");
    assert_eq!(c.read_reply(), b"$11\r\nhello world\r\n");
    c.send(b"\r\nPING\r\n");
    assert_eq!(c.read_reply(), b"+PONG\r\n");
    // Arguments are separated by C's isspace (vertical tab and form feed
    // too), and end only at space, tab, CR or LF; replies as redis-server
    // 7.0's.
    let cases: &[(&[u8], &[u8])] = &[
        (b"ECHO \x0b\x0c\r\n", b"-ERR wrong number of arguments for 'echo' command\r\n"),
        (b"ECHO \x0c\x0bz\r\n", b"$1\r\nz\r\n"),
        (b"ECHO a\x0bb\r\n", b"$3\r\na\x0bb\r\n"),
        (b"ECHO \"x\"\x0b\r\n", b"$1\r\nx\r\n"),
        (b"ECHO \"x\"\x0cy\r\n", b"-ERR wrong number of arguments for 'echo' command\r\n"),
        (b"  ECHO\t  hi  \r\n", b"$2\r\nhi\r\n"),
    ];
    for (line, want) in cases {
        c.send(line);
        assert_eq!(c.read_reply(), *want, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn large_pipeline_replies_in_order() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let mut req = Vec::new();
    for i in 0..10_000 {
        let k = format!("key:{i}");
        let v = format!("{i}");
        req.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).as_bytes());
        req.extend_from_slice(format!("*2\r\n$4\r\nINCR\r\n${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    c.send(&req);
    for i in 0..10_000 {
        assert_eq!(c.read_reply(), b"+OK\r\n");
        assert_eq!(c.read_reply(), format!(":{}\r\n", i + 1).into_bytes(), "INCR #{i}");
    }
    assert_eq!(c.cmd(&["DBSIZE"]), ":10000\r\n");
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let s = Server::start();
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"),
        (b"SET k \"unterminated\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"),
    ];
    for (input, want) in cases {
        let mut bad = s.raw();
        bad.send(input);
        assert_eq!(String::from_utf8_lossy(&bad.read_reply()), *want);
        assert!(bad.is_closed(), "connection should close after {want}");
        let mut good = s.raw();
        assert_eq!(good.cmd(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn commands_before_a_protocol_error_still_run() {
    let s = Server::start();
    let mut c = s.raw();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\n$-2\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert!(String::from_utf8_lossy(&c.read_reply()).starts_with("-ERR Protocol error"));
    assert_eq!(s.raw().cmd(&["GET", "a"]), "$1\r\n1\r\n");
}

#[test]
fn large_bulk_value_round_trips() {
    let s = Server::start();
    let mut c = s.raw();
    let big = vec![b'x'; 8 * 1024 * 1024];
    c.send_cmd(&[b"SET", b"big", &big]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    c.send_cmd(&[b"STRLEN", b"big"]);
    assert_eq!(c.read_reply(), b":8388608\r\n");
    c.send_cmd(&[b"GET", b"big"]);
    let r = c.read_reply();
    assert_eq!(r.len(), big.len() + "$8388608\r\n\r\n".len());
}

/// Random garbage and random well-formed commands with random arguments must
/// never take the node down: afterwards it still answers and holds its data.
#[test]
fn random_input_never_crashes_the_node() {
    use rand::{Rng, SeedableRng};
    let s = Server::start_with(&["--shards", "3"]);
    assert_eq!(s.raw().cmd(&["SET", "canary", "alive"]), "+OK\r\n");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xda55e1f1);
    let names = "GET SET INCR INCRBYFLOAT APPEND SETRANGE GETRANGE MSET MGET DEL EXPIRE PEXPIREAT TTL RENAME GETEX CLIENT CONFIG \
        COMMAND HELLO SELECT ECHO MSETNX KEYS TYPE OBJECT HSET HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN HGETALL SCAN COPY DUMP RESTORE \
        MEMORY ZADD ZINCRBY ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZUNIONSTORE ZINTER ZRANDMEMBER ZPOPMIN ZSCAN JSON.SET JSON.GET \
        JSON.ARRAPPEND JSON.NUMINCRBY JSON.DEL JSON.MGET MULTI EXEC WATCH DISCARD SWAPDB"
        .split_whitespace()
        .collect::<Vec<_>>();
    let words = [
        "EX",
        "PX",
        "NX",
        "XX",
        "GET",
        "KEEPTTL",
        "-1",
        "0",
        "1",
        "2",
        "9223372036854775807",
        "-9223372036854775808",
        "1e400",
        "inf",
        "-inf",
        "nan",
        "k",
        "{k}x",
        "",
        "$",
        "$..a",
        ".a[0]",
        "$[?(@.a>1)]",
        "{\"a\":[1,2]}",
        "[",
        "(1",
        "[a",
        "-",
        "+",
        "WITHSCORES",
        "LIMIT",
        "REV",
        "BYSCORE",
        "BYLEX",
        "COUNT",
        "MATCH",
        "*",
        "REPLACE",
    ];
    for round in 0..150 {
        let mut c = s.raw();
        if round % 4 == 0 {
            let junk: Vec<u8> = (0..rng.random_range(1..512)).map(|_| rng.random()).collect();
            c.send(&junk);
            c.send(b"\r\n");
            continue;
        }
        for _ in 0..50 {
            let mut args: Vec<Vec<u8>> = vec![names[rng.random_range(0..names.len())].as_bytes().to_vec()];
            for _ in 0..rng.random_range(0..6) {
                args.push(if rng.random_bool(0.7) {
                    words[rng.random_range(0..words.len())].as_bytes().to_vec()
                } else {
                    (0..rng.random_range(0..20)).map(|_| rng.random()).collect()
                });
            }
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            c.send_cmd(&refs);
            let _ = c.read_reply();
        }
    }
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["GET", "canary"]), "$5\r\nalive\r\n");
}

/// A pipeline mixing multi-shard commands (squashed into one transaction)
/// with single-shard ones keeps every reply in order and every effect in
/// order: each GET sees the MSET just before it.
#[test]
fn mixed_pipeline_keeps_order_across_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let mut req = Vec::new();
    let enc = |args: &[String]| {
        let mut v = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        v
    };
    let keys: Vec<String> = (0..8).map(|i| format!("mix:{i}")).collect();
    let mut expected = Vec::new();
    for round in 0..200 {
        let mut mset = vec!["MSET".to_string()];
        for k in &keys {
            mset.push(k.clone());
            mset.push(format!("{round}"));
        }
        req.extend(enc(&mset));
        expected.push("+OK\r\n".to_string());
        req.extend(enc(&["MSET".into(), keys[0].clone(), format!("{round}a"), keys[5].clone(), format!("{round}b")]));
        expected.push("+OK\r\n".to_string());
        req.extend(enc(&["GET".into(), keys[0].clone()]));
        let v = format!("{round}a");
        expected.push(format!("${}\r\n{v}\r\n", v.len()));
        let mut mget = vec!["MGET".to_string()];
        mget.extend(keys.iter().cloned());
        req.extend(enc(&mget));
        let mut arr = format!("*{}\r\n", keys.len());
        for (i, _) in keys.iter().enumerate() {
            let v = match i {
                0 => format!("{round}a"),
                5 => format!("{round}b"),
                _ => format!("{round}"),
            };
            arr.push_str(&format!("${}\r\n{v}\r\n", v.len()));
        }
        expected.push(arr);
        req.extend(enc(&["DEL".into(), keys[1].clone(), keys[2].clone(), keys[3].clone()]));
        expected.push(":3\r\n".to_string());
        req.extend(enc(&["EXISTS".into(), keys[1].clone(), keys[4].clone()]));
        expected.push(":1\r\n".to_string());
    }
    c.send(&req);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), *want, "reply #{i}");
    }
}
