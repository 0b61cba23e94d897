//! The replication stream as a client attached with SYNC reads it (what
//! Redis's own tests read with `attach_to_replication_stream`), compared
//! byte for byte with redis-server 7.0: a transaction with one write is
//! not wrapped in MULTI/EXEC, the first command's SELECT goes before the
//! MULTI, PUBLISH is propagated, expiry changes travel as PEXPIREAT,
//! PERSIST or DEL and counters as sent, and REPLICAOF lets the replicas have the
//! writes made before it before it drops them; a replica's subscribers get
//! what is published on its primary.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use damselfly_tests::{Raw, Redis, Server};

/// A SYNC connection past its snapshot payload.
fn attach(port: u16) -> TcpStream {
    assert_eq!(Raw::connect(port).cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]), "+OK\r\n");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::io::Write::write_all(&mut s, b"SYNC\r\n").unwrap();
    // Newlines (keepalives) may come first, then `$<len>\r\n<rdb>`.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).expect("payload header");
        match (head.is_empty(), b[0]) {
            (true, b'\n') => {}
            (_, b'\n') => break,
            _ => head.push(b[0]),
        }
    }
    let len: usize = std::str::from_utf8(&head[1..head.len() - 1]).unwrap().parse().unwrap();
    let mut rdb = vec![0; len];
    s.read_exact(&mut rdb).unwrap();
    s
}

/// Reads the stream until it ends with `end`.
fn read_until(s: &mut TcpStream, end: &[u8]) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.ends_with(end) {
        let n = s.read(&mut chunk).unwrap_or_else(|e| panic!("stream: {e}; got so far {:?}", String::from_utf8_lossy(&got)));
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).replace("\r\n", " ")
}

const END: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nend\r\n$1\r\n1\r\n";

/// Commands run on one connection after attaching, and the stream they
/// make (SET end 1 follows each case as its end mark).
const CASES: &[(&[&[&str]], &str)] = &[
    (&[&["MULTI"], &["SET", "a{t}", "1"], &["GET", "a{t}"], &["EXEC"]], "*2 $6 SELECT $1 0 *3 $3 SET $4 a{t} $1 1 "),
    (
        &[&["MULTI"], &["SET", "a{t}", "1"], &["SET", "b{t}", "2"], &["EXEC"]],
        "*2 $6 SELECT $1 0 *1 $5 MULTI *3 $3 SET $4 a{t} $1 1 *3 $3 SET $4 b{t} $1 2 *1 $4 EXEC ",
    ),
    (
        &[&["MULTI"], &["SELECT", "1"], &["SET", "a{t}", "1"], &["SELECT", "2"], &["SET", "b{t}", "2"], &["EXEC"]],
        "*2 $6 SELECT $1 1 *1 $5 MULTI *3 $3 SET $4 a{t} $1 1 *2 $6 SELECT $1 2 *3 $3 SET $4 b{t} $1 2 *1 $4 EXEC ",
    ),
    (&[&["MULTI"], &["GET", "a{t}"], &["EXEC"]], "*2 $6 SELECT $1 0 "),
    // Pops travel as what they took: LPOP/RPOP/ZPOPMIN/ZPOPMAX with the
    // count popped, SPOP as SREM of its member or DEL of the whole set.
    (
        &[
            &["RPUSH", "l", "a", "b", "c", "d", "e"],
            &["BLPOP", "l", "1"],
            &["LMPOP", "1", "l", "LEFT"],
            &["LMPOP", "1", "l", "RIGHT", "COUNT", "2"],
            &["LMPOP", "2", "nol", "l", "LEFT", "COUNT", "10"],
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZMPOP", "1", "z", "MIN"],
            &["BZPOPMAX", "z", "1"],
            &["BZMPOP", "1", "1", "z", "MIN", "COUNT", "10"],
            &["SADD", "s", "x"],
            &["SPOP", "s"],
            &["SADD", "s", "x", "y"],
            &["SPOP", "s", "5"],
        ],
        "*2 $6 SELECT $1 0 *7 $5 RPUSH $1 l $1 a $1 b $1 c $1 d $1 e *2 $4 LPOP $1 l *3 $4 LPOP $1 l $1 1 *3 $4 RPOP $1 l $1 2 \
         *3 $4 LPOP $1 l $1 1 *10 $4 ZADD $1 z $1 1 $1 a $1 2 $1 b $1 3 $1 c $1 4 $1 d *3 $7 ZPOPMIN $1 z $1 1 \
         *2 $7 ZPOPMAX $1 z *3 $7 ZPOPMIN $1 z $1 2 *3 $4 SADD $1 s $1 x *3 $4 SREM $1 s $1 x \
         *4 $4 SADD $1 s $1 x $1 y *2 $3 DEL $1 s ",
    ),
    // Deterministic edits of big values travel as sent.
    (
        &[
            &["SETBIT", "b", "7", "1"],
            &["SETRANGE", "r", "0", "abc"],
            &["APPEND", "r", "def"],
            &["XADD", "st", "1-1", "f", "v"],
            &["XADD", "st", "2-1", "g", "w"],
            &["XDEL", "st", "1-1"],
        ],
        "*2 $6 SELECT $1 0 *4 $6 SETBIT $1 b $1 7 $1 1 *4 $8 SETRANGE $1 r $1 0 $3 abc *3 $6 APPEND $1 r $3 def \
         *5 $4 XADD $2 st $3 1-1 $1 f $1 v *5 $4 XADD $2 st $3 2-1 $1 g $1 w *3 $4 XDEL $2 st $3 1-1 ",
    ),
    // Expiry changes travel as their effect (PEXPIREAT with the absolute
    // time, PERSIST, DEL), counters as sent.
    (
        &[
            &["SET", "k", "v"],
            &["EXPIREAT", "k", "4102444800"],
            &["PERSIST", "k"],
            &["GETEX", "k", "PXAT", "4102444800001"],
            &["GETEX", "k"],
            &["GETEX", "k", "PERSIST"],
            &["EXPIRE", "k", "100", "GT"],
            &["PEXPIREAT", "k", "1"],
            &["EXPIRE", "gone", "100"],
            &["INCR", "n"],
            &["INCRBY", "n", "5"],
            &["DECR", "n"],
            &["DECRBY", "n", "2"],
        ],
        "*2 $6 SELECT $1 0 *3 $3 SET $1 k $1 v *3 $9 PEXPIREAT $1 k $13 4102444800000 *2 $7 PERSIST $1 k \
         *3 $9 PEXPIREAT $1 k $13 4102444800001 *2 $7 PERSIST $1 k *2 $3 DEL $1 k \
         *2 $4 INCR $1 n *3 $6 INCRBY $1 n $1 5 *2 $4 DECR $1 n *3 $6 DECRBY $1 n $1 2 ",
    ),
    // SET KEEPTTL travels as sent less GET (a SET that did not write, not
    // at all); MSET as sent, from a script too (as the script spelled it);
    // INCRBYFLOAT as SET of its result with KEEPTTL.
    (
        &[
            &["SET", "k", "1", "KEEPTTL"],
            &["SET", "k", "2", "GET", "KEEPTTL"],
            &["SET", "k", "3", "NX", "KEEPTTL"],
            &["SET", "k", "4", "XX", "KEEPTTL"],
            &["MSET", "a{t}", "1", "b{t}", "2"],
            &["EVAL", "redis.call('mset', KEYS[1], '3', KEYS[2], '4')", "2", "c{t}", "d{t}"],
            &["EVAL", "redis.call('set', KEYS[1], '5', 'KEEPTTL')", "1", "k"],
            &["INCRBYFLOAT", "k", "1.5"],
        ],
        "*2 $6 SELECT $1 0 *4 $3 SET $1 k $1 1 $7 KEEPTTL *4 $3 SET $1 k $1 2 $7 KEEPTTL \
         *5 $3 SET $1 k $1 4 $2 XX $7 KEEPTTL *5 $4 MSET $4 a{t} $1 1 $4 b{t} $1 2 \
         *5 $4 mset $4 c{t} $1 3 $4 d{t} $1 4 *4 $3 set $1 k $1 5 $7 KEEPTTL *4 $3 SET $1 k $3 6.5 $7 KEEPTTL ",
    ),
    // FLUSHDB and FLUSHALL travel as sent, each one, even on empty
    // databases; FLUSHALL in its client's database.
    (
        &[
            &["SET", "k", "v"],
            &["FLUSHDB"],
            &["FLUSHDB"],
            &["SET", "k", "v"],
            &["FLUSHALL"],
            &["FLUSHALL"],
            &["SELECT", "5"],
            &["FLUSHALL"],
            &["SELECT", "0"],
        ],
        "*2 $6 SELECT $1 0 *3 $3 SET $1 k $1 v *1 $7 FLUSHDB *1 $7 FLUSHDB *3 $3 SET $1 k $1 v *1 $8 FLUSHALL *1 $8 FLUSHALL \
         *2 $6 SELECT $1 5 *1 $8 FLUSHALL *2 $6 SELECT $1 0 ",
    ),
    // PUBLISH reaches replicas (in its client's database), in a
    // transaction too.
    (
        &[&["MULTI"], &["PUBLISH", "ch", "hi"], &["EXEC"], &["SELECT", "3"], &["PUBLISH", "ch", "yo"], &["SELECT", "0"]],
        "*2 $6 SELECT $1 0 *3 $7 PUBLISH $2 ch $2 hi *2 $6 SELECT $1 3 *3 $7 PUBLISH $2 ch $2 yo *2 $6 SELECT $1 0 ",
    ),
];

fn streams(port: u16) -> Vec<String> {
    let mut got = Vec::new();
    for (cmds, _) in CASES {
        let mut s = attach(port);
        let mut c = Raw::connect(port);
        for cmd in *cmds {
            c.cmd(cmd);
        }
        c.cmd(&["SET", "end", "1"]);
        let text = read_until(&mut s, END);
        got.push(text.strip_suffix("*3 $3 SET $3 end $1 1 ").unwrap_or(&text).to_string());
    }
    // REPLICAOF: the replicas still get what they were owed before it
    // (this server then drops them; redis-server keeps them connected).
    let mut s = attach(port);
    let mut c = Raw::connect(port);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["SET", "foo", "bar"]);
    let nobody = damselfly_tests::free_port().to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &nobody]), "+OK\r\n");
    got.push(read_until(&mut s, b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"));
    assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    got
}

#[test]
fn the_stream_of_transactions_and_replicaof_matches_redis() {
    let mut want: Vec<String> = CASES.iter().map(|c| c.1.to_string()).collect();
    want.push("*2 $6 SELECT $1 0 *3 $3 SET $3 foo $3 bar ".into());
    let s = Server::start_with(&["--shards", "2"]);
    assert_eq!(streams(s.port), want);
    let r = Redis::start();
    assert_eq!(streams(r.port), want, "redis-server");
}

/// A message published on the primary reaches a subscriber of its replica.
fn replica_subscriber_hears(primary: u16, replica: u16) -> String {
    let mut r = damselfly_tests::repl::conn(replica);
    assert!(damselfly_tests::cluster::wait_until(30, || damselfly_tests::repl::link_up(&mut r)), "the replica's link did not come up");
    let mut sub = Raw::connect(replica);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "news"]), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    assert_eq!(Raw::connect(primary).cmd(&["PUBLISH", "news", "hello"]), ":0\r\n");
    String::from_utf8_lossy(&sub.read_reply()).into_owned()
}

#[test]
fn a_replica_subscriber_gets_the_primary_messages() {
    let want = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
    let p = Redis::start();
    let r = Redis::start_with(&["--replicaof", "127.0.0.1", &p.port.to_string()]);
    assert_eq!(replica_subscriber_hears(p.port, r.port), want, "redis-server");
    let p = Server::start_with(&["--shards", "2"]);
    let r = Server::start_with(&["--replicaof", "127.0.0.1", &p.port.to_string()]);
    assert_eq!(replica_subscriber_hears(p.port, r.port), want);
}

/// Clients that run a transaction on one shard and, once it is answered,
/// a write on another find the two in that order in the stream: a
/// transaction's part reaches the journal before its reply goes out, even
/// when the shard that ran it takes its release after the answer.
#[test]
fn a_write_after_a_transaction_follows_it_in_the_stream() {
    const N: usize = 3000;
    let s = Server::start_with(&["--shards", "2"]);
    let mut stream = attach(s.port);
    // Connections on both threads: each is home to one of the shards.
    let mut clients: Vec<Raw> = (0..4).map(|_| Raw::connect(s.port)).collect();
    for i in 0..N {
        let c = &mut clients[i % 4];
        let n = i.to_string();
        assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
        c.cmd(&["SET", "a{t}", &n]);
        c.cmd(&["SET", "b{t}", &n]);
        assert_eq!(c.cmd(&["EXEC"]), "*2\r\n+OK\r\n+OK\r\n");
        assert_eq!(c.cmd(&["SET", "end", &n]), "+OK\r\n");
    }
    let last = (N - 1).to_string();
    let mark = format!("*3\r\n$3\r\nSET\r\n$3\r\nend\r\n${}\r\n{last}\r\n", last.len());
    let text = read_until(&mut stream, mark.as_bytes());
    let words: Vec<&str> = text.split(' ').collect();
    let (mut execs, mut out_of_order) = (0, Vec::new());
    for (i, w) in words.iter().enumerate() {
        if *w == "EXEC" {
            execs += 1;
        } else if *w == "end" && i >= 2 && words[i - 2] == "SET" {
            let n: usize = words[i + 2].parse().expect("a count");
            if n + 1 != execs {
                out_of_order.push((n, execs));
            }
        }
    }
    assert_eq!(execs, N);
    assert!(out_of_order.is_empty(), "SET end N after a number of EXECs other than N+1: {out_of_order:?}");
}
