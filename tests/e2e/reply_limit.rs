//! A few bytes of request must not make a reply of gigabytes: a command
//! that names one big value many times (MGET, HMGET, XREAD, XREADGROUP's
//! history, the GET of SORT, a script's table, a transaction of reads)
//! gets an error once its reply would pass `reply-max-bytes`, and the
//! node's memory stays near that limit. Redis builds such replies whole (an MGET naming one 1 MB key
//! 2,000 times took 2 GB there).

use damselfly_tests::{Raw, Server};

const MB: usize = 1 << 20;
const TOO_BIG: &str = "-ERR the reply is larger than reply-max-bytes (8388608 bytes): ask for fewer or smaller elements\r\n";

/// Sends one command given as byte strings and reads its reply.
fn cmd(c: &mut Raw, args: &[&[u8]]) -> String {
    c.send_cmd(args);
    String::from_utf8_lossy(&c.read_reply()).into_owned()
}

/// `first` followed by `rest` repeated `n` times, as one argument list.
fn repeated<'a>(first: &[&'a [u8]], rest: &[&'a [u8]], n: usize) -> Vec<&'a [u8]> {
    let mut v = first.to_vec();
    for _ in 0..n {
        v.extend_from_slice(rest);
    }
    v
}

#[test]
fn replies_that_repeat_a_big_value_are_bounded() {
    let s = Server::start_with(&["--shards", "2", "--reply-max-bytes", "8mb"]);
    let mut c = s.raw();
    let big = vec![b'x'; MB];
    for k in ["big{a}", "big{b}"] {
        assert_eq!(cmd(&mut c, &[b"SET", k.as_bytes(), &big]), "+OK\r\n");
    }
    assert_eq!(cmd(&mut c, &[b"HSET", b"h", b"f", &big]), ":1\r\n");
    assert_eq!(cmd(&mut c, &[b"XADD", b"st", b"1-1", b"f", &big]), "$3\r\n1-1\r\n");
    assert_eq!(cmd(&mut c, &repeated(&[b"RPUSH", b"la"], &[b"a"], 200)), ":200\r\n");
    let base = c.used_memory_peak() as usize;
    // 200 MB of reply each, 25 times the limit.
    let n = 200;
    // MGET over both shards (each shard's part, and the two together).
    assert_eq!(cmd(&mut c, &repeated(&[b"MGET"], &[b"big{a}", b"big{b}"], n / 2)), TOO_BIG);
    assert_eq!(cmd(&mut c, &repeated(&[b"MGET"], &[b"big{a}"], n)), TOO_BIG);
    assert_eq!(cmd(&mut c, &repeated(&[b"HMGET", b"h"], &[b"f"], n)), TOO_BIG);
    let mut xread = repeated(&[b"XREAD", b"STREAMS"], &[b"st"], n);
    xread.extend(std::iter::repeat_n(&b"0"[..], n));
    assert_eq!(cmd(&mut c, &xread), TOO_BIG);
    // XREADGROUP of a consumer's history, named many times.
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "st", "g", "0"]), "+OK\r\n");
    assert!(c.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"]).starts_with("*1\r\n"));
    let mut history = repeated(&[b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS"], &[b"st"], n);
    history.extend(std::iter::repeat_n(&b"0"[..], n));
    assert_eq!(cmd(&mut c, &history), TOO_BIG);
    for sort in [&b"SORT"[..], b"SORT_RO"] {
        assert_eq!(cmd(&mut c, &[sort, b"la", b"BY", b"nosort", b"GET", b"big{*}"]), TOO_BIG);
    }
    assert_eq!(cmd(&mut c, &[b"SORT", b"la", b"BY", b"nosort", b"GET", b"big{*}", b"STORE", b"dst{a}"]), TOO_BIG);
    assert_eq!(c.cmd(&["EXISTS", "dst{a}"]), ":0\r\n");
    let script = format!("local v = redis.call('GET', KEYS[1]) local t = {{}} for i = 1, {n} do t[i] = v end return t");
    assert_eq!(cmd(&mut c, &[b"EVAL", script.as_bytes(), b"1", b"big{a}"]), TOO_BIG);
    // A transaction of reads: its reply is refused, the connection goes on.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    for _ in 0..n {
        assert_eq!(c.cmd(&["GET", "big{a}"]), "+QUEUED\r\n");
    }
    assert_eq!(c.cmd(&["EXEC"]), TOO_BIG);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let peak = c.used_memory_peak() as usize - base;
    assert!(peak < 80 * MB, "replies of 200 MB refused at 8 MB still raised used_memory_peak by {peak}");
    // Replies within the limit are whole.
    let got = cmd(&mut c, &repeated(&[b"MGET"], &[b"big{a}", b"big{b}"], 3));
    assert!(got.starts_with("*6\r\n$1048576\r\nxxx") && got.len() == 6 * (MB + 12) + 4, "{}", got.len());
    // A transaction that writes runs whole; the reply it cannot send
    // closes the client, as an output buffer limit does.
    let mut w = s.raw();
    assert_eq!(w.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(w.cmd(&["SET", "written", "1"]), "+QUEUED\r\n");
    for _ in 0..20 {
        assert_eq!(w.cmd(&["GET", "big{a}"]), "+QUEUED\r\n");
    }
    w.send_cmd(&[b"EXEC"]);
    let rest = w.read_to_close();
    assert!(rest.len() < 1000, "{} bytes of a reply that was cut", rest.len());
    assert_eq!(c.cmd(&["GET", "written"]), "$1\r\n1\r\n");
    // 0 lifts the limit; the reply of a command that writes is never refused.
    assert_eq!(c.cmd(&["CONFIG", "SET", "reply-max-bytes", "0"]), "+OK\r\n");
    assert!(cmd(&mut c, &repeated(&[b"MGET"], &[b"big{a}"], 10)).starts_with("*10\r\n$1048576\r\n"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "reply-max-bytes", "1mb"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "reply-max-bytes"]), "*2\r\n$15\r\nreply-max-bytes\r\n$7\r\n1048576\r\n");
    assert!(c.cmd(&["CONFIG", "SET", "reply-max-bytes", "1000"]).starts_with("-ERR CONFIG SET failed"));
    assert!(c.cmd(&["LRANGE", "la", "0", "-1"]).starts_with("*200\r\n"));
    assert!(c.cmd(&["GETDEL", "big{a}"]).starts_with("$1048576\r\n"));
}
