//! Sorted-set commands end to end: every command and option with exact
//! RESP2 and RESP3 replies (table driven over a raw socket), the tree
//! encoding on larger sets, multi-key commands across shards, and
//! concurrent ZINCRBY counting exactly. Multi-key commands across shards
//! are in `shards`, the pops and blocking pops in `pops`.

#[path = "zsets/pops.rs"]
mod pops;
#[path = "zsets/shards.rs"]
mod shards;

use std::collections::{HashMap, HashSet};

use damselfly_tests::{Raw, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::AsyncCommands;

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn arr(n: usize) -> String {
    format!("*{n}\r\n")
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn err(s: &str) -> String {
    format!("-{s}\r\n")
}

/// A RESP3 double.
fn dbl(s: &str) -> String {
    format!(",{s}\r\n")
}

/// An array of bulk strings.
fn bulks(items: &[&str]) -> String {
    let mut s = arr(items.len());
    for i in items {
        s += &bulk(i);
    }
    s
}

/// RESP3 (member, score) pairs: an array of two-element arrays.
fn pairs3(items: &[(&str, &str)]) -> String {
    let mut s = arr(items.len());
    for (m, sc) in items {
        s += &arr(2);
        s += &bulk(m);
        s += &dbl(sc);
    }
    s
}

const NIL: &str = "$-1\r\n";
const NULL3: &str = "_\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const RANGE_FLOAT: &str = "-ERR min or max is not a float\r\n";
const RANGE_LEX: &str = "-ERR min or max not valid string range item\r\n";

fn run(c: &mut Raw, cases: &[(Vec<&str>, String)]) {
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

fn resp2_cases() -> Vec<(Vec<&'static str>, String)> {
    vec![
        // ZADD and its options.
        (vec!["ZADD", "z", "1", "a", "2", "b", "3", "c"], int(3)),
        (vec!["ZADD", "z", "1.5", "a"], int(0)),
        (vec!["ZADD", "z", "CH", "1", "a", "4", "d"], int(2)),
        (vec!["ZADD", "z", "NX", "10", "a", "5", "e"], int(1)),
        (vec!["ZSCORE", "z", "a"], bulk("1")),
        (vec!["ZADD", "z", "XX", "7", "a", "9", "zz"], int(0)),
        (vec!["ZSCORE", "z", "zz"], NIL.into()),
        (vec!["ZSCORE", "z", "a"], bulk("7")),
        (vec!["ZADD", "z", "GT", "CH", "5", "a", "8", "b"], int(1)),
        (vec!["ZADD", "z", "LT", "CH", "6", "a", "9", "b"], int(1)),
        (vec!["ZADD", "z", "XX", "GT", "CH", "6", "a", "100", "new"], int(0)),
        (vec!["ZADD", "z", "GT", "1", "newm"], int(1)),
        (vec!["ZREM", "z", "newm"], int(1)),
        (vec!["ZADD", "z", "INCR", "2.5", "a"], bulk("8.5")),
        (vec!["ZADD", "z", "INCR", "NX", "1", "a"], NIL.into()),
        (vec!["ZADD", "z", "INCR", "XX", "1", "nope"], NIL.into()),
        (vec!["ZADD", "z", "INCR", "GT", "-1", "a"], NIL.into()),
        (vec!["ZADD", "z", "INCR", "LT", "0", "a"], NIL.into()),
        (vec!["ZADD", "z", "XX", "NX", "1", "a"], err("ERR XX and NX options at the same time are not compatible")),
        (vec!["ZADD", "z", "GT", "LT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
        (vec!["ZADD", "z", "NX", "GT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
        (vec!["ZADD", "z", "INCR", "1", "a", "2", "b"], err("ERR INCR option supports a single increment-element pair")),
        (vec!["ZADD", "z", "CH", "1"], SYNTAX.into()),
        (vec!["ZADD", "z", "1", "a", "2"], SYNTAX.into()),
        (vec!["ZADD", "z", "nan", "a"], NOT_FLOAT.into()),
        (vec!["ZADD", "z", "abc", "a"], NOT_FLOAT.into()),
        (vec!["ZADD", "z", "1e400", "a"], NOT_FLOAT.into()),
        (vec!["ZADD", "z", "1", "a", "x", "b"], NOT_FLOAT.into()),
        (vec!["ZADD", "z"], err("ERR wrong number of arguments for 'zadd' command")),
        (vec!["SET", "str", "x"], "+OK\r\n".into()),
        (vec!["ZADD", "str", "1", "a"], WRONGTYPE.into()),
        (vec!["ZADD", "fresh", "XX", "1", "a"], int(0)),
        (vec!["EXISTS", "fresh"], int(0)),
        (vec!["TYPE", "z"], "+zset\r\n".into()),
        // Score formatting: Redis 7.2 prints the shortest round-trip form.
        (
            vec![
                "ZADD", "fmt", "1.5", "a", "0.1", "b", "inf", "c", "-inf", "d", "1e300", "e", "0", "f", "-0", "g", "100", "h", "1.5e-7",
                "i",
            ],
            int(9),
        ),
        (
            vec!["ZRANGE", "fmt", "0", "-1", "WITHSCORES"],
            bulks(&["d", "-inf", "f", "0", "g", "0", "i", "1.5e-7", "b", "0.1", "a", "1.5", "h", "100", "e", "1e+300", "c", "inf"]),
        ),
        (vec!["ZSCORE", "fmt", "b"], bulk("0.1")),
        (vec!["ZSCORE", "fmt", "e"], bulk("1e+300")),
        // ZINCRBY.
        (vec!["ZINCRBY", "inc", "0.1", "x"], bulk("0.1")),
        (vec!["ZINCRBY", "inc", "0.2", "x"], bulk("0.30000000000000004")),
        (vec!["ZINCRBY", "inc", "1", "x"], bulk("1.3")),
        (vec!["ZINCRBY", "inc", "abc", "x"], NOT_FLOAT.into()),
        (vec!["ZINCRBY", "inc", "inf", "y"], bulk("inf")),
        (vec!["ZINCRBY", "inc", "-inf", "y"], err("ERR resulting score is not a number (NaN)")),
        (vec!["ZADD", "inc", "INCR", "-inf", "y"], err("ERR resulting score is not a number (NaN)")),
        (vec!["ZSCORE", "inc", "y"], bulk("inf")),
        (vec!["ZINCRBY", "str", "1", "x"], WRONGTYPE.into()),
        (vec!["ZINCRBY", "inc", "1"], err("ERR wrong number of arguments for 'zincrby' command")),
        // Point reads. z is now c=3 d=4 e=5 b=8 a=8.5.
        (vec!["ZMSCORE", "z", "a", "nope", "c"], format!("{}{}{}{}", arr(3), bulk("8.5"), NIL, bulk("3"))),
        (vec!["ZMSCORE", "missing", "a"], format!("{}{}", arr(1), NIL)),
        (vec!["ZMSCORE", "str", "a"], WRONGTYPE.into()),
        (vec!["ZCARD", "z"], int(5)),
        (vec!["ZCARD", "missing"], int(0)),
        (vec!["ZCARD", "str"], WRONGTYPE.into()),
        (vec!["ZSCORE", "missing", "a"], NIL.into()),
        (vec!["ZSCORE", "str", "a"], WRONGTYPE.into()),
        (vec!["ZRANK", "z", "e"], int(2)),
        (vec!["ZREVRANK", "z", "e"], int(2)),
        (vec!["ZRANK", "z", "c"], int(0)),
        (vec!["ZREVRANK", "z", "c"], int(4)),
        (vec!["ZRANK", "z", "a", "WITHSCORE"], format!("{}{}{}", arr(2), int(4), bulk("8.5"))),
        (vec!["ZREVRANK", "z", "a", "withscore"], format!("{}{}{}", arr(2), int(0), bulk("8.5"))),
        (vec!["ZRANK", "z", "nope"], NIL.into()),
        (vec!["ZRANK", "z", "nope", "WITHSCORE"], "*-1\r\n".into()),
        (vec!["ZRANK", "missing", "a"], NIL.into()),
        (vec!["ZRANK", "missing", "a", "WITHSCORE"], "*-1\r\n".into()),
        (vec!["ZRANK", "z", "a", "bogus"], SYNTAX.into()),
        (vec!["ZRANK", "z", "a", "WITHSCORE", "x"], err("ERR wrong number of arguments for 'zrank' command")),
        (vec!["ZRANK", "str", "a"], WRONGTYPE.into()),
        (vec!["ZCOUNT", "z", "4", "8"], int(3)),
        (vec!["ZCOUNT", "z", "(4", "(8"], int(1)),
        (vec!["ZCOUNT", "z", "-inf", "+inf"], int(5)),
        (vec!["ZCOUNT", "z", "9", "1"], int(0)),
        (vec!["ZCOUNT", "z", "(5", "5"], int(0)),
        (vec!["ZCOUNT", "z", "a", "1"], RANGE_FLOAT.into()),
        (vec!["ZCOUNT", "z", "1", "nan"], RANGE_FLOAT.into()),
        (vec!["ZCOUNT", "missing", "0", "1"], int(0)),
        // ZRANGE by rank, score and lex, with REV, LIMIT, WITHSCORES.
        (vec!["ZRANGE", "z", "0", "-1"], bulks(&["c", "d", "e", "b", "a"])),
        (vec!["ZRANGE", "z", "1", "2", "WITHSCORES"], bulks(&["d", "4", "e", "5"])),
        (vec!["ZRANGE", "z", "-2", "-1"], bulks(&["b", "a"])),
        (vec!["ZRANGE", "z", "-100", "0"], bulks(&["c"])),
        (vec!["ZRANGE", "z", "10", "20"], arr(0)),
        (vec!["ZRANGE", "z", "3", "1"], arr(0)),
        (vec!["ZRANGE", "z", "0", "-1", "REV"], bulks(&["a", "b", "e", "d", "c"])),
        (vec!["ZRANGE", "z", "0", "0", "REV", "WITHSCORES"], bulks(&["a", "8.5"])),
        (vec!["ZRANGE", "z", "(4", "8", "BYSCORE"], bulks(&["e", "b"])),
        (vec!["ZRANGE", "z", "8", "(4", "BYSCORE", "REV"], bulks(&["b", "e"])),
        (vec!["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"], bulks(&["d", "e"])),
        (vec!["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"], bulks(&["b", "8", "e", "5"])),
        (vec!["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"], arr(0)),
        (vec!["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "3", "-1"], bulks(&["b", "a"])),
        (vec!["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "0"], arr(0)),
        (vec!["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "9", "1"], arr(0)),
        (
            vec!["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"),
        ),
        (vec!["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
        (vec!["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], SYNTAX.into()),
        (vec!["ZRANGE", "z", "0", "-1", "REV", "REV"], SYNTAX.into()),
        (vec!["ZRANGE", "z", "0", "-1", "LIMIT", "1"], SYNTAX.into()),
        (vec!["ZRANGE", "z", "0", "-1", "BYSCORE", "LIMIT", "0", "x"], NOT_INT.into()),
        (vec!["ZRANGE", "z", "a", "b"], NOT_INT.into()),
        (vec!["ZRANGE", "z", "x", "1", "BYSCORE"], RANGE_FLOAT.into()),
        (vec!["ZRANGE", "z", "a", "b", "BYLEX"], RANGE_LEX.into()),
        (vec!["ZRANGE", "missing", "0", "-1"], arr(0)),
        (vec!["ZRANGE", "str", "0", "-1"], WRONGTYPE.into()),
        (vec!["ZREVRANGE", "z", "0", "1", "WITHSCORES"], bulks(&["a", "8.5", "b", "8"])),
        (vec!["ZREVRANGE", "z", "0", "1", "BYSCORE"], SYNTAX.into()),
        (vec!["ZREVRANGE", "z", "0", "1", "REV"], SYNTAX.into()),
        (vec!["ZRANGEBYSCORE", "z", "4", "5", "WITHSCORES"], bulks(&["d", "4", "e", "5"])),
        (vec!["ZRANGEBYSCORE", "z", "(3", "+inf", "LIMIT", "0", "2"], bulks(&["d", "e"])),
        (vec!["ZRANGEBYSCORE", "z", "0", "10", "REV"], SYNTAX.into()),
        (vec!["ZRANGEBYSCORE", "z", "0", "10", "BYLEX"], SYNTAX.into()),
        (vec!["ZREVRANGEBYSCORE", "z", "+inf", "(5"], bulks(&["a", "b"])),
        (vec!["ZREVRANGEBYSCORE", "z", "5", "4", "WITHSCORES"], bulks(&["e", "5", "d", "4"])),
        (vec!["ZREVRANGEBYSCORE", "z", "8.5", "-inf", "LIMIT", "1", "1"], bulks(&["b"])),
        // Lexicographic ranges (all scores equal).
        (vec!["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f"], int(6)),
        (vec!["ZRANGEBYLEX", "lex", "-", "+"], bulks(&["a", "b", "c", "d", "e", "f"])),
        (vec!["ZRANGEBYLEX", "lex", "[b", "(e"], bulks(&["b", "c", "d"])),
        (vec!["ZRANGEBYLEX", "lex", "(b", "[e", "LIMIT", "1", "10"], bulks(&["d", "e"])),
        (vec!["ZRANGEBYLEX", "lex", "[z", "+"], arr(0)),
        (vec!["ZREVRANGEBYLEX", "lex", "+", "-", "LIMIT", "0", "2"], bulks(&["f", "e"])),
        (vec!["ZREVRANGEBYLEX", "lex", "[e", "(b"], bulks(&["e", "d", "c"])),
        (vec!["ZRANGE", "lex", "[c", "+", "BYLEX"], bulks(&["c", "d", "e", "f"])),
        (vec!["ZRANGE", "lex", "+", "[c", "BYLEX", "REV", "LIMIT", "0", "2"], bulks(&["f", "e"])),
        (vec!["ZRANGEBYLEX", "lex", "b", "c"], RANGE_LEX.into()),
        (vec!["ZRANGEBYLEX", "lex", "-", "++"], RANGE_LEX.into()),
        (vec!["ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
        (vec!["ZLEXCOUNT", "lex", "-", "+"], int(6)),
        (vec!["ZLEXCOUNT", "lex", "[b", "[d"], int(3)),
        (vec!["ZLEXCOUNT", "lex", "(a", "(a"], int(0)),
        (vec!["ZLEXCOUNT", "lex", "+", "-"], int(0)),
        (vec!["ZLEXCOUNT", "lex", "a", "b"], RANGE_LEX.into()),
        (vec!["ZLEXCOUNT", "missing", "-", "+"], int(0)),
        (vec!["ZREMRANGEBYLEX", "lex", "[e", "+"], int(2)),
        (vec!["ZREMRANGEBYLEX", "lex", "x", "+"], RANGE_LEX.into()),
        (vec!["ZRANGE", "lex", "0", "-1"], bulks(&["a", "b", "c", "d"])),
        // Removals.
        (vec!["ZREM", "z", "a", "nope"], int(1)),
        (vec!["ZREM", "z", "nope"], int(0)),
        (vec!["ZREM", "missing", "a"], int(0)),
        (vec!["ZREM", "str", "a"], WRONGTYPE.into()),
        (vec!["ZREMRANGEBYSCORE", "z", "(4", "5"], int(1)),
        (vec!["ZREMRANGEBYSCORE", "z", "x", "y"], RANGE_FLOAT.into()),
        (vec!["ZREMRANGEBYRANK", "z", "0", "0"], int(1)),
        (vec!["ZREMRANGEBYRANK", "z", "5", "10"], int(0)),
        (vec!["ZREMRANGEBYRANK", "z", "x", "1"], NOT_INT.into()),
        (vec!["ZRANGE", "z", "0", "-1", "WITHSCORES"], bulks(&["d", "4", "b", "8"])),
        (vec!["ZREMRANGEBYRANK", "z", "0", "-1"], int(2)),
        (vec!["EXISTS", "z"], int(0)),
        (vec!["ZREMRANGEBYSCORE", "missing", "0", "1"], int(0)),
        // Pops.
        (vec!["ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d"], int(4)),
        (vec!["ZPOPMIN", "p"], bulks(&["a", "1"])),
        (vec!["ZPOPMAX", "p"], bulks(&["d", "4"])),
        (vec!["ZPOPMIN", "p", "5"], bulks(&["b", "2", "c", "3"])),
        (vec!["EXISTS", "p"], int(0)),
        (vec!["ZPOPMIN", "p"], arr(0)),
        (vec!["ZPOPMAX", "p", "0"], arr(0)),
        (vec!["ZPOPMIN", "p", "-1"], err("ERR value is out of range, must be positive")),
        (vec!["ZPOPMIN", "p", "x"], err("ERR value is out of range, must be positive")),
        (vec!["ZPOPMIN", "p", "1", "2"], SYNTAX.into()),
        (vec!["ZPOPMAX", "str"], WRONGTYPE.into()),
        // ZRANDMEMBER (a one-member set makes the picks deterministic).
        (vec!["ZADD", "r", "1", "a"], int(1)),
        (vec!["ZRANDMEMBER", "r"], bulk("a")),
        (vec!["ZRANDMEMBER", "r", "1", "WITHSCORES"], bulks(&["a", "1"])),
        (vec!["ZRANDMEMBER", "r", "-3"], bulks(&["a", "a", "a"])),
        (vec!["ZRANDMEMBER", "r", "-2", "WITHSCORES"], bulks(&["a", "1", "a", "1"])),
        (vec!["ZRANDMEMBER", "r", "5"], bulks(&["a"])),
        (vec!["ZRANDMEMBER", "r", "0"], arr(0)),
        (vec!["ZRANDMEMBER", "missing"], NIL.into()),
        (vec!["ZRANDMEMBER", "missing", "5"], arr(0)),
        (vec!["ZRANDMEMBER", "r", "1", "bad"], SYNTAX.into()),
        (vec!["ZRANDMEMBER", "r", "x"], NOT_INT.into()),
        (vec!["ZRANDMEMBER", "r", "9223372036854775807", "WITHSCORES"], err("ERR value is out of range")),
        (vec!["ZRANDMEMBER", "str"], WRONGTYPE.into()),
        // ZSCAN on the compact encoding: everything at once.
        (vec!["ZADD", "r", "0.5", "b"], int(1)),
        (vec!["ZSCAN", "r", "0"], format!("{}{}{}", arr(2), bulk("0"), bulks(&["b", "0.5", "a", "1"]))),
        (vec!["ZSCAN", "r", "0", "MATCH", "a*", "COUNT", "1"], format!("{}{}{}", arr(2), bulk("0"), bulks(&["a", "1"]))),
        (vec!["ZSCAN", "missing", "0"], format!("{}{}{}", arr(2), bulk("0"), arr(0))),
        (vec!["ZSCAN", "r", "x"], err("ERR invalid cursor")),
        (vec!["ZSCAN", "r", "0", "COUNT", "0"], SYNTAX.into()),
        (vec!["ZSCAN", "r", "0", "BOGUS"], SYNTAX.into()),
        (vec!["ZSCAN", "str", "0"], WRONGTYPE.into()),
    ]
}

#[test]
fn resp2_replies_are_exact() {
    let s = Server::start();
    let mut c = s.raw();
    run(&mut c, &resp2_cases());
}

#[test]
fn set_operations_resp2() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["ZADD", "{t}a", "1", "x", "2", "y", "3", "z"], int(3)),
        (vec!["ZADD", "{t}b", "10", "y", "20", "z", "30", "w"], int(3)),
        (vec!["SET", "{t}str", "v"], "+OK\r\n".into()),
        (vec!["ZUNION", "2", "{t}a", "{t}b", "WITHSCORES"], bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])),
        (vec!["ZUNION", "2", "{t}a", "{t}b"], bulks(&["x", "y", "z", "w"])),
        (
            vec!["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "2", "1", "AGGREGATE", "MIN", "WITHSCORES"],
            bulks(&["x", "2", "y", "4", "z", "6", "w", "30"]),
        ),
        (vec!["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE", "MAX", "WITHSCORES"], bulks(&["x", "1", "y", "10", "z", "20", "w", "30"])),
        (vec!["ZUNION", "2", "{t}a", "{t}nothing", "WITHSCORES"], bulks(&["x", "1", "y", "2", "z", "3"])),
        (vec!["ZINTER", "2", "{t}a", "{t}b", "WITHSCORES"], bulks(&["y", "12", "z", "23"])),
        (vec!["ZINTER", "2", "{t}a", "{t}b", "WEIGHTS", "1", "0.5", "WITHSCORES"], bulks(&["y", "7", "z", "13"])),
        (vec!["ZINTER", "2", "{t}a", "{t}b", "AGGREGATE", "MIN"], bulks(&["y", "z"])),
        (vec!["ZINTER", "2", "{t}a", "{t}nothing"], arr(0)),
        (vec!["ZDIFF", "2", "{t}a", "{t}b", "WITHSCORES"], bulks(&["x", "1"])),
        (vec!["ZDIFF", "1", "{t}a"], bulks(&["x", "y", "z"])),
        (vec!["ZDIFF", "2", "{t}nothing", "{t}a"], arr(0)),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b"], int(2)),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"], int(1)),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "0"], int(2)),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "-1"], err("ERR LIMIT can't be negative")),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "x"], err("ERR LIMIT can't be negative")),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}nothing"], int(0)),
        (vec!["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b"], int(4)),
        (vec!["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])),
        (vec!["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}b", "AGGREGATE", "MAX"], int(2)),
        (vec!["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], bulks(&["y", "10", "z", "20"])),
        (vec!["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}b", "WEIGHTS", "2", "3"], int(2)),
        (vec!["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], bulks(&["y", "34", "z", "66"])),
        (vec!["ZDIFFSTORE", "{t}d", "2", "{t}b", "{t}a"], int(1)),
        (vec!["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], bulks(&["w", "30"])),
        (vec!["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}nothing"], int(0)),
        (vec!["EXISTS", "{t}d"], int(0)),
        // The destination is replaced whatever it held, and loses its TTL.
        (vec!["SET", "{t}d", "x", "EX", "100"], "+OK\r\n".into()),
        (vec!["ZUNIONSTORE", "{t}d", "1", "{t}a"], int(3)),
        (vec!["TTL", "{t}d"], int(-1)),
        (vec!["TYPE", "{t}d"], "+zset\r\n".into()),
        // Redis's NaN conventions: inf * 0 and inf + -inf count as 0.
        (vec!["ZADD", "{t}i", "1", "m", "inf", "n"], int(2)),
        (vec!["ZADD", "{t}j", "-inf", "n"], int(1)),
        (vec!["ZUNION", "1", "{t}i", "WEIGHTS", "0", "WITHSCORES"], bulks(&["m", "0", "n", "0"])),
        (vec!["ZUNION", "2", "{t}i", "{t}j", "WITHSCORES"], bulks(&["n", "0", "m", "1"])),
        (vec!["ZINTER", "2", "{t}i", "{t}j", "WITHSCORES"], bulks(&["n", "0"])),
        // Errors.
        (vec!["ZUNION", "0", "{t}a"], err("ERR at least 1 input key is needed for 'zunion' command")),
        (vec!["ZUNIONSTORE", "{t}d", "0", "{t}a"], err("ERR at least 1 input key is needed for 'zunionstore' command")),
        (vec!["ZINTERCARD", "0", "{t}a"], err("ERR at least 1 input key is needed for 'zintercard' command")),
        (vec!["ZUNION", "3", "{t}a", "{t}b"], SYNTAX.into()),
        (vec!["ZUNION", "x", "{t}a"], NOT_INT.into()),
        (vec!["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1"], SYNTAX.into()),
        (vec!["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1", "x"], err("ERR weight value is not a float")),
        (vec!["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE", "AVG"], SYNTAX.into()),
        (vec!["ZDIFF", "2", "{t}a", "{t}b", "WEIGHTS", "1", "1"], SYNTAX.into()),
        (vec!["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b", "WITHSCORES"], SYNTAX.into()),
        (vec!["ZINTERCARD", "2", "{t}a", "{t}b", "WITHSCORES"], SYNTAX.into()),
        (vec!["ZUNION", "2", "{t}a", "{t}str"], WRONGTYPE.into()),
        (vec!["ZUNION", "2", "{t}str", "{t}a", "BOGUS"], WRONGTYPE.into()),
        (vec!["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}str"], WRONGTYPE.into()),
        // ZRANGESTORE.
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "0", "1"], int(2)),
        (vec!["ZRANGE", "{t}rs", "0", "-1", "WITHSCORES"], bulks(&["x", "1", "y", "2"])),
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"], int(1)),
        (vec!["ZRANGE", "{t}rs", "0", "-1", "WITHSCORES"], bulks(&["y", "2"])),
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "0", "0", "REV"], int(1)),
        (vec!["ZRANGE", "{t}rs", "0", "-1", "WITHSCORES"], bulks(&["z", "3"])),
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "0", "-1", "WITHSCORES"], SYNTAX.into()),
        (
            vec!["ZRANGESTORE", "{t}rs", "{t}a", "0", "-1", "LIMIT", "0", "1"],
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"),
        ),
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "x", "1", "BYSCORE"], RANGE_FLOAT.into()),
        (vec!["ZRANGESTORE", "{t}rs", "{t}nothing", "0", "-1"], int(0)),
        (vec!["EXISTS", "{t}rs"], int(0)),
        (vec!["ZRANGESTORE", "{t}rs", "{t}str", "0", "-1"], WRONGTYPE.into()),
        (vec!["ZRANGESTORE", "{t}rs", "{t}a", "0"], err("ERR wrong number of arguments for 'zrangestore' command")),
        // Plain sets are inputs too, every member scoring 1 (ZRANGESTORE's
        // source must still be a sorted set).
        (vec!["SADD", "{t}set", "y", "v"], int(2)),
        (vec!["ZUNION", "2", "{t}a", "{t}set", "WITHSCORES"], bulks(&["v", "1", "x", "1", "y", "3", "z", "3"])),
        (vec!["ZINTERSTORE", "{t}i", "2", "{t}set", "{t}b", "WEIGHTS", "5", "1"], int(1)),
        (vec!["ZRANGE", "{t}i", "0", "-1", "WITHSCORES"], bulks(&["y", "15"])),
        (vec!["ZDIFF", "2", "{t}set", "{t}a"], bulks(&["v"])),
        (vec!["ZINTERCARD", "2", "{t}set", "{t}a"], int(1)),
        (vec!["ZRANGESTORE", "{t}rs", "{t}set", "0", "-1"], WRONGTYPE.into()),
        // A new member's ZINCRBY score is the increment itself.
        (vec!["ZINCRBY", "{t}new", "-0", "m"], bulk("-0")),
    ];
    run(&mut c, &cases);
}

#[test]
fn resp3_replies_use_doubles_and_pairs() {
    let s = Server::start();
    let mut c = s.raw();
    c.cmd(&["HELLO", "3"]);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["ZADD", "z3", "1", "a", "2.5", "b"], int(2)),
        (vec!["ZSCORE", "z3", "b"], dbl("2.5")),
        (vec!["ZSCORE", "z3", "nope"], NULL3.into()),
        (vec!["ZINCRBY", "z3", "1", "a"], dbl("2")),
        (vec!["ZADD", "z3", "INCR", "0.5", "a"], dbl("2.5")),
        (vec!["ZADD", "z3", "INCR", "-0.5", "a"], dbl("2")),
        (vec!["ZADD", "z3", "INCR", "NX", "1", "a"], NULL3.into()),
        (vec!["ZRANGE", "z3", "0", "-1", "WITHSCORES"], pairs3(&[("a", "2"), ("b", "2.5")])),
        (vec!["ZRANGE", "z3", "0", "-1"], bulks(&["a", "b"])),
        (vec!["ZRANK", "z3", "b", "WITHSCORE"], format!("{}{}{}", arr(2), int(1), dbl("2.5"))),
        (vec!["ZRANK", "z3", "nope", "WITHSCORE"], NULL3.into()),
        (vec!["ZRANK", "z3", "nope"], NULL3.into()),
        (vec!["ZMSCORE", "z3", "a", "nope"], format!("{}{}{}", arr(2), dbl("2"), NULL3)),
        (vec!["ZADD", "z3", "1e300", "c", "inf", "d", "-inf", "e", "0.1", "f"], int(4)),
        (vec!["ZRANGE", "z3", "-2", "-1", "WITHSCORES"], pairs3(&[("c", "1e+300"), ("d", "inf")])),
        (vec!["ZRANGEBYSCORE", "z3", "-inf", "(1", "WITHSCORES"], pairs3(&[("e", "-inf"), ("f", "0.1")])),
        (vec!["ZREVRANGEBYSCORE", "z3", "+inf", "1e300", "WITHSCORES", "LIMIT", "0", "5"], pairs3(&[("d", "inf"), ("c", "1e+300")])),
        (vec!["ZPOPMIN", "z3"], format!("{}{}{}", arr(2), bulk("e"), dbl("-inf"))),
        (vec!["ZPOPMIN", "z3", "1"], pairs3(&[("f", "0.1")])),
        (vec!["ZPOPMAX", "z3", "2"], pairs3(&[("d", "inf"), ("c", "1e+300")])),
        (vec!["ZPOPMIN", "missing", "2"], arr(0)),
        (vec!["ZREM", "z3", "a"], int(1)),
        (vec!["ZRANDMEMBER", "z3", "1", "WITHSCORES"], pairs3(&[("b", "2.5")])),
        (vec!["ZRANDMEMBER", "z3", "-2", "WITHSCORES"], pairs3(&[("b", "2.5"), ("b", "2.5")])),
        (vec!["ZRANDMEMBER", "z3", "-2"], bulks(&["b", "b"])),
        (vec!["ZRANDMEMBER", "missing"], NULL3.into()),
        (vec!["ZUNION", "1", "z3", "WITHSCORES"], pairs3(&[("b", "2.5")])),
        (vec!["ZINTER", "2", "z3", "z3", "WITHSCORES"], pairs3(&[("b", "5")])),
        (vec!["ZDIFF", "1", "z3", "WITHSCORES"], pairs3(&[("b", "2.5")])),
        // ZSCAN replies with bulk strings in RESP3 too.
        (vec!["ZSCAN", "z3", "0"], format!("{}{}{}", arr(2), bulk("0"), bulks(&["b", "2.5"]))),
        (vec!["ZRANGE", "missing", "0", "-1"], arr(0)),
        (vec!["ZINCRBY", "z3", "-inf", "b"], dbl("-inf")),
        (vec!["ZINCRBY", "z3", "+inf", "b"], err("ERR resulting score is not a number (NaN)")),
    ];
    run(&mut c, &cases);
}

/// Larger sets use the tree encoding: compare every query with a model.
#[tokio::test]
async fn tree_encoding_matches_a_model() {
    let s = Server::start();
    let mut c = s.conn().await;
    let mut rng = StdRng::seed_from_u64(7);
    let mut model: HashMap<String, f64> = HashMap::new();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        let m = format!("member:{i:05}");
        let score = (rng.random_range(0..100_000) as f64) / 8.0;
        model.insert(m.clone(), score);
        pipe.cmd("ZADD").arg("big").arg(score).arg(&m).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let sorted = |model: &HashMap<String, f64>| {
        let mut v: Vec<(String, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    };
    let want = sorted(&model);
    assert_eq!(c.zcard::<_, usize>("big").await.unwrap(), 3000);
    let all: Vec<(String, f64)> = c.zrange_withscores("big", 0, -1).await.unwrap();
    assert_eq!(all, want);
    let top: Vec<(String, f64)> = c.zrevrange_withscores("big", 0, 9).await.unwrap();
    assert_eq!(top, want.iter().rev().take(10).cloned().collect::<Vec<_>>());
    for probe in [0usize, 1, 777, 2999] {
        let (m, _) = &want[probe];
        assert_eq!(c.zrank::<_, _, Option<usize>>("big", m).await.unwrap(), Some(probe));
        assert_eq!(c.zrevrank::<_, _, Option<usize>>("big", m).await.unwrap(), Some(2999 - probe));
    }
    let (lo, hi) = (1000.0, 5000.0);
    let n = want.iter().filter(|e| e.1 >= lo && e.1 <= hi).count();
    assert_eq!(c.zcount::<_, _, _, usize>("big", lo, hi).await.unwrap(), n);
    // A complete ZSCAN returns every member (paged: more than one call).
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, items): (u64, Vec<String>) =
            redis::cmd("ZSCAN").arg("big").arg(cursor).arg("COUNT").arg(100).query_async(&mut c).await.unwrap();
        for pair in items.chunks(2) {
            assert_eq!(pair[1].parse::<f64>().unwrap(), model[&pair[0]]);
            seen.insert(pair[0].clone());
        }
        calls += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(calls > 10, "the tree encoding pages ZSCAN ({calls} calls)");
    assert_eq!(seen.len(), 3000);
    // Removals by score and rank, pops, then compare again.
    let removed: usize = c.zrembyscore("big", lo, hi).await.unwrap();
    assert_eq!(removed, n);
    model.retain(|_, s| !(*s >= lo && *s <= hi));
    let removed: usize = redis::cmd("ZREMRANGEBYRANK").arg("big").arg(0).arg(99).query_async(&mut c).await.unwrap();
    assert_eq!(removed, 100);
    for (m, _) in sorted(&model).iter().take(100) {
        model.remove(m);
    }
    let popped: Vec<(String, f64)> = c.zpopmax("big", 5).await.unwrap();
    let expect_pop: Vec<(String, f64)> = sorted(&model).iter().rev().take(5).cloned().collect();
    assert_eq!(popped, expect_pop);
    for (m, _) in &expect_pop {
        model.remove(m);
    }
    let all: Vec<(String, f64)> = c.zrange_withscores("big", 0, -1).await.unwrap();
    assert_eq!(all, sorted(&model));
    // Scores of a tree-encoded set come back from ZSCAN as "%.17g".
    let _: () = redis::cmd("ZADD").arg("big").arg("0.1").arg("tenth").query_async(&mut c).await.unwrap();
    let mut cursor: u64 = 0;
    let mut tenth = None;
    loop {
        let (next, items): (u64, Vec<String>) =
            redis::cmd("ZSCAN").arg("big").arg(cursor).arg("MATCH").arg("tenth").query_async(&mut c).await.unwrap();
        if let Some(p) = items.chunks(2).find(|p| p[0] == "tenth") {
            tenth = Some(p[1].clone());
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(tenth.as_deref(), Some("0.10000000000000001"));
    let score: String = redis::cmd("ZSCORE").arg("big").arg("tenth").query_async(&mut c).await.unwrap();
    assert_eq!(score, "0.1");
}

/// The compact encoding converts to the tree past the configured limits.
#[test]
fn listpack_limits_are_configurable() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "zset-max-listpack-entries"]), bulks(&["zset-max-listpack-entries", "128"]));
    assert_eq!(c.cmd(&["CONFIG", "GET", "zset-max-ziplist-value"]), bulks(&["zset-max-ziplist-value", "64"]));
    assert_eq!(c.cmd(&["CONFIG", "SET", "zset-max-listpack-entries", "2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ZADD", "small", "0.1", "a", "0.2", "b"]), int(2));
    // Two entries: still compact, so ZSCAN prints the stored (shortest) form.
    let r = c.cmd(&["ZSCAN", "small", "0"]);
    assert_eq!(r, format!("{}{}{}", arr(2), bulk("0"), bulks(&["a", "0.1", "b", "0.2"])));
    assert_eq!(c.cmd(&["ZADD", "small", "0.3", "c"]), int(1));
    // Three: converted; ZSCAN now prints "%.17g" and the order is the hash order.
    let r = c.cmd(&["ZSCAN", "small", "0", "COUNT", "100"]);
    for want in ["0.10000000000000001", "0.20000000000000001", "0.29999999999999999"] {
        assert!(r.contains(want), "{r}");
    }
    assert_eq!(c.cmd(&["ZRANGE", "small", "0", "-1", "WITHSCORES"]), bulks(&["a", "0.1", "b", "0.2", "c", "0.3"]));
    // Long members also force the tree.
    assert_eq!(c.cmd(&["CONFIG", "SET", "zset-max-listpack-value", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ZADD", "long", "1", "abcd"]), int(1));
    let r = c.cmd(&["ZSCAN", "long", "0"]);
    assert!(r.ends_with(&bulks(&["abcd", "1"])), "{r}");
}

/// DUMP/RESTORE and COPY carry sorted sets of both encodings, and
/// cross-shard ZUNIONSTORE works inside MULTI/EXEC.
#[test]
fn zsets_survive_dump_restore_copy_and_exec() {
    let s = damselfly_tests::Server::start_with(&["--shards", "4"]);
    let mut c = s.sync_conn();
    for (key, n) in [("small", 5), ("large", 500)] {
        for i in 0..n {
            let _: i64 = redis::cmd("ZADD").arg(key).arg(i as f64 * 1.5).arg(format!("m{i}")).query(&mut c).unwrap();
        }
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        let restored = format!("{key}:restored");
        let _: () = redis::cmd("RESTORE").arg(&restored).arg(0).arg(&payload).query(&mut c).unwrap();
        let copy = format!("{key}:copy");
        let _: bool = redis::cmd("COPY").arg(key).arg(&copy).query(&mut c).unwrap();
        let want: Vec<(String, f64)> = redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query(&mut c).unwrap();
        for k in [&restored, &copy] {
            let got: Vec<(String, f64)> = redis::cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES").query(&mut c).unwrap();
            assert_eq!(got, want, "{k}");
        }
        let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(key).query(&mut c).unwrap();
        assert_eq!(enc, if n > 128 { "skiplist" } else { "listpack" });
    }
    let r: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("ZUNIONSTORE")
        .arg("{u}dst")
        .arg(2)
        .arg("small")
        .arg("large")
        .cmd("ZCARD")
        .arg("{u}dst")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, vec![redis::Value::Int(500), redis::Value::Int(500)]);
}
