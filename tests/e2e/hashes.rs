//! Hash commands end to end: exact RESP2/RESP3 replies for every command and
//! option, the command table as COMMAND INFO reports it, the typed redis-rs
//! API, the listpack -> hashtable conversion under CONFIG SET, HSCAN
//! completeness while other clients write to the hash, and HINCRBY counting
//! exactly under concurrency.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use damselfly_tests::{Raw, Redis, Server};
use redis::AsyncCommands;

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

/// Runs (command, exact reply) pairs in order on one connection.
fn run_cases(c: &mut Raw, cases: &[(&[&str], &str)]) {
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

/// Every command and option in RESP2. Small hashes keep insertion order, so
/// whole-hash replies are deterministic.
const RESP2_CASES: &[(&[&str], &str)] = &[
    // Writes and point reads.
    (&["HSET", "h", "f1", "v1", "f2", "v2"], ":2\r\n"),
    (&["HSET", "h", "f1", "v1b"], ":0\r\n"),
    (&["HSET", "h", "f2", "v2", "f2", "v2"], ":0\r\n"),
    (&["HGET", "h", "f1"], "$3\r\nv1b\r\n"),
    (&["HGET", "h", "nope"], "$-1\r\n"),
    (&["HGET", "missing", "f"], "$-1\r\n"),
    (&["HSETNX", "h", "f1", "x"], ":0\r\n"),
    (&["HSETNX", "h", "f3", "v3"], ":1\r\n"),
    (&["HSETNX", "fresh", "f", "v"], ":1\r\n"),
    (&["HMSET", "h", "f4", "v4", "f1", "v1"], "+OK\r\n"),
    (&["HMGET", "h", "f1", "nope", "f4"], "*3\r\n$2\r\nv1\r\n$-1\r\n$2\r\nv4\r\n"),
    (&["HMGET", "missing", "a", "b"], "*2\r\n$-1\r\n$-1\r\n"),
    (&["HLEN", "h"], ":4\r\n"),
    (&["HLEN", "missing"], ":0\r\n"),
    (&["HEXISTS", "h", "f1"], ":1\r\n"),
    (&["HEXISTS", "h", "nope"], ":0\r\n"),
    (&["HEXISTS", "missing", "f1"], ":0\r\n"),
    (&["HSTRLEN", "h", "f1"], ":2\r\n"),
    (&["HSTRLEN", "h", "nope"], ":0\r\n"),
    (&["HSTRLEN", "missing", "f"], ":0\r\n"),
    // Whole-hash reads.
    (&["HKEYS", "h"], "*4\r\n$2\r\nf1\r\n$2\r\nf2\r\n$2\r\nf3\r\n$2\r\nf4\r\n"),
    (&["HVALS", "h"], "*4\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n$2\r\nv4\r\n"),
    (&["HGETALL", "h"], "*8\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nf3\r\n$2\r\nv3\r\n$2\r\nf4\r\n$2\r\nv4\r\n"),
    (&["HGETALL", "missing"], "*0\r\n"),
    (&["HKEYS", "missing"], "*0\r\n"),
    (&["HVALS", "missing"], "*0\r\n"),
    (&["TYPE", "h"], "+hash\r\n"),
    // Deletes; the last one removes the key.
    (&["HDEL", "h", "f2", "nope", "f2"], ":1\r\n"),
    (&["HDEL", "missing", "f"], ":0\r\n"),
    (&["HDEL", "fresh", "f"], ":1\r\n"),
    (&["EXISTS", "fresh"], ":0\r\n"),
    // HSCAN on the compact encoding: everything at once, cursor 0.
    (&["HSCAN", "h", "0"], "*2\r\n$1\r\n0\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf3\r\n$2\r\nv3\r\n$2\r\nf4\r\n$2\r\nv4\r\n"),
    (&["HSCAN", "h", "0", "COUNT", "1"], "*2\r\n$1\r\n0\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf3\r\n$2\r\nv3\r\n$2\r\nf4\r\n$2\r\nv4\r\n"),
    (&["HSCAN", "h", "0", "MATCH", "f[14]"], "*2\r\n$1\r\n0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf4\r\n$2\r\nv4\r\n"),
    (
        &["HSCAN", "h", "0", "match", "*", "count", "100"],
        "*2\r\n$1\r\n0\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf3\r\n$2\r\nv3\r\n$2\r\nf4\r\n$2\r\nv4\r\n",
    ),
    (&["HSCAN", "h", "0", "NOVALUES"], "*2\r\n$1\r\n0\r\n*3\r\n$2\r\nf1\r\n$2\r\nf3\r\n$2\r\nf4\r\n"),
    (&["HSCAN", "h", "0", "MATCH", "x*", "NOVALUES"], "*2\r\n$1\r\n0\r\n*0\r\n"),
    (&["HSCAN", "missing", "0"], "*2\r\n$1\r\n0\r\n*0\r\n"),
    (&["HSCAN", "h", "0", "COUNT", "0"], "-ERR syntax error\r\n"),
    (&["HSCAN", "h", "0", "COUNT", "x"], NOT_INT),
    (&["HSCAN", "h", "0", "COUNT"], "-ERR syntax error\r\n"),
    (&["HSCAN", "h", "0", "BOGUS"], "-ERR syntax error\r\n"),
    (&["HSCAN", "h", "abc"], "-ERR invalid cursor\r\n"),
    (&["HSCAN", "h", "1x"], "-ERR invalid cursor\r\n"),
    (&["HSCAN", "h", "-1", "NOVALUES"], "*2\r\n$1\r\n0\r\n*3\r\n$2\r\nf1\r\n$2\r\nf3\r\n$2\r\nf4\r\n"),
    // HRANDFIELD: a count at least the size returns the whole hash in order.
    (&["HRANDFIELD", "h", "3"], "*3\r\n$2\r\nf1\r\n$2\r\nf3\r\n$2\r\nf4\r\n"),
    (&["HRANDFIELD", "h", "10", "WITHVALUES"], "*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf3\r\n$2\r\nv3\r\n$2\r\nf4\r\n$2\r\nv4\r\n"),
    (&["HSET", "one", "only", "val"], ":1\r\n"),
    (&["HRANDFIELD", "one"], "$4\r\nonly\r\n"),
    (&["HRANDFIELD", "one", "1"], "*1\r\n$4\r\nonly\r\n"),
    (&["HRANDFIELD", "one", "-3"], "*3\r\n$4\r\nonly\r\n$4\r\nonly\r\n$4\r\nonly\r\n"),
    (&["HRANDFIELD", "one", "-2", "withvalues"], "*4\r\n$4\r\nonly\r\n$3\r\nval\r\n$4\r\nonly\r\n$3\r\nval\r\n"),
    (&["HRANDFIELD", "one", "0"], "*0\r\n"),
    (&["HRANDFIELD", "one", "0", "WITHVALUES"], "*0\r\n"),
    (&["HRANDFIELD", "missing"], "$-1\r\n"),
    (&["HRANDFIELD", "missing", "3"], "*0\r\n"),
    (&["HRANDFIELD", "missing", "-3", "WITHVALUES"], "*0\r\n"),
    (&["HRANDFIELD", "one", "1", "WITHSCORES"], "-ERR syntax error\r\n"),
    (&["HRANDFIELD", "one", "1", "WITHVALUES", "x"], "-ERR syntax error\r\n"),
    (&["HRANDFIELD", "one", "x"], NOT_INT),
    (
        &["HRANDFIELD", "one", "-9223372036854775808"],
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n",
    ),
    (&["HRANDFIELD", "one", "-9223372036854775807", "WITHVALUES"], "-ERR value is out of range\r\n"),
    (&["HRANDFIELD", "one", "9223372036854775807", "WITHVALUES"], "-ERR value is out of range\r\n"),
    (&["HRANDFIELD", "one", "9223372036854775807"], "*1\r\n$4\r\nonly\r\n"),
    // Counters.
    (&["HINCRBY", "c", "n", "10"], ":10\r\n"),
    (&["HINCRBY", "c", "n", "-13"], ":-3\r\n"),
    (&["HGET", "c", "n"], "$2\r\n-3\r\n"),
    (&["HINCRBY", "c", "n", "1.5"], NOT_INT),
    (&["HINCRBY", "c", "n", "x"], NOT_INT),
    (&["HINCRBY", "h", "f1", "1"], "-ERR hash value is not an integer\r\n"),
    (&["HSET", "c", "big", "9223372036854775807", "small", "-9223372036854775808", "padded", "007"], ":3\r\n"),
    (&["HINCRBY", "c", "big", "1"], "-ERR increment or decrement would overflow\r\n"),
    (&["HINCRBY", "c", "small", "-1"], "-ERR increment or decrement would overflow\r\n"),
    (&["HINCRBY", "c", "padded", "1"], "-ERR hash value is not an integer\r\n"),
    (&["HGET", "c", "big"], "$19\r\n9223372036854775807\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "10.5"], "$4\r\n10.5\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "0.1"], "$4\r\n10.6\r\n"),
    (&["HGET", "c", "fl"], "$4\r\n10.6\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "5.0e3"], "$6\r\n5010.6\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "-5010.6"], "$1\r\n0\r\n"),
    (&["HINCRBYFLOAT", "c", "n", "1.5"], "$4\r\n-1.5\r\n"),
    (&["HINCRBYFLOAT", "c", "e", "1e21"], "$22\r\n1000000000000000000000\r\n"),
    (&["HINCRBYFLOAT", "h", "f1", "1"], "-ERR hash value is not a float\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "abc"], "-ERR value is not a valid float\r\n"),
    (&["HINCRBYFLOAT", "c", "fl", "inf"], "-ERR value is NaN or Infinity\r\n"),
    (&["HSET", "c", "huge", "1.7e308"], ":1\r\n"),
    (&["HINCRBYFLOAT", "c", "huge", "1.7e308"], "-ERR increment would produce NaN or Infinity\r\n"),
    (&["HGET", "c", "huge"], "$7\r\n1.7e308\r\n"),
    // Arity and type errors.
    (&["HSET", "h", "odd"], "-ERR wrong number of arguments for 'hset' command\r\n"),
    (&["HSET", "h", "a", "1", "b"], "-ERR wrong number of arguments for 'hset' command\r\n"),
    (&["HMSET", "h", "a", "1", "b"], "-ERR wrong number of arguments for 'hmset' command\r\n"),
    (&["HGET", "h"], "-ERR wrong number of arguments for 'hget' command\r\n"),
    (&["HDEL", "h"], "-ERR wrong number of arguments for 'hdel' command\r\n"),
    (&["HSCAN", "h"], "-ERR wrong number of arguments for 'hscan' command\r\n"),
    (&["HRANDFIELD"], "-ERR wrong number of arguments for 'hrandfield' command\r\n"),
    (&["HINCRBY", "h", "f"], "-ERR wrong number of arguments for 'hincrby' command\r\n"),
    (&["SET", "s", "str"], "+OK\r\n"),
    (&["HSET", "s", "f", "v"], WRONGTYPE),
    (&["HSETNX", "s", "f", "v"], WRONGTYPE),
    (&["HMSET", "s", "f", "v"], WRONGTYPE),
    (&["HGET", "s", "f"], WRONGTYPE),
    (&["HMGET", "s", "f"], WRONGTYPE),
    (&["HGETALL", "s"], WRONGTYPE),
    (&["HKEYS", "s"], WRONGTYPE),
    (&["HVALS", "s"], WRONGTYPE),
    (&["HDEL", "s", "f"], WRONGTYPE),
    (&["HLEN", "s"], WRONGTYPE),
    (&["HEXISTS", "s", "f"], WRONGTYPE),
    (&["HSTRLEN", "s", "f"], WRONGTYPE),
    (&["HINCRBY", "s", "f", "1"], WRONGTYPE),
    (&["HINCRBYFLOAT", "s", "f", "1"], WRONGTYPE),
    (&["HRANDFIELD", "s"], WRONGTYPE),
    (&["HRANDFIELD", "s", "0"], WRONGTYPE),
    (&["HSCAN", "s", "0"], WRONGTYPE),
    (&["GET", "s"], "$3\r\nstr\r\n"),
    (&["GET", "h"], WRONGTYPE),
    // Deleting every field deletes the key.
    (&["HDEL", "h", "f1", "f3", "f4", "f9"], ":3\r\n"),
    (&["EXISTS", "h"], ":0\r\n"),
    (&["TYPE", "h"], "+none\r\n"),
];

#[test]
fn resp2_replies_are_exact() {
    let s = Server::start();
    let mut c = s.raw();
    run_cases(&mut c, RESP2_CASES);
}

/// The RESP3 shapes: maps for HGETALL, nulls, [field, value] pairs for
/// HRANDFIELD ... WITHVALUES.
const RESP3_CASES: &[(&[&str], &str)] = &[
    (&["HSET", "h", "a", "1", "b", "2"], ":2\r\n"),
    (&["HGETALL", "h"], "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
    (&["HGETALL", "missing"], "%0\r\n"),
    (&["HGET", "h", "nope"], "_\r\n"),
    (&["HGET", "missing", "a"], "_\r\n"),
    (&["HMGET", "h", "a", "nope"], "*2\r\n$1\r\n1\r\n_\r\n"),
    (&["HKEYS", "h"], "*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
    (&["HVALS", "h"], "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
    (&["HEXISTS", "h", "a"], ":1\r\n"),
    (&["HRANDFIELD", "missing"], "_\r\n"),
    (&["HRANDFIELD", "missing", "2", "WITHVALUES"], "*0\r\n"),
    (&["HRANDFIELD", "h", "5"], "*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
    (&["HRANDFIELD", "h", "5", "WITHVALUES"], "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"),
    (&["HSET", "one", "only", "val"], ":1\r\n"),
    (&["HRANDFIELD", "one", "-2", "WITHVALUES"], "*2\r\n*2\r\n$4\r\nonly\r\n$3\r\nval\r\n*2\r\n$4\r\nonly\r\n$3\r\nval\r\n"),
    (&["HRANDFIELD", "one", "-2"], "*2\r\n$4\r\nonly\r\n$4\r\nonly\r\n"),
    (&["HSCAN", "h", "0"], "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
    (&["HSCAN", "missing", "0"], "*2\r\n$1\r\n0\r\n*0\r\n"),
    (&["HINCRBYFLOAT", "h", "a", "0.5"], "$3\r\n1.5\r\n"),
    (&["HINCRBY", "h", "b", "3"], ":5\r\n"),
    (&["HSET", "h", "a"], "-ERR wrong number of arguments for 'hset' command\r\n"),
];

#[test]
fn resp3_replies_use_resp3_types() {
    let s = Server::start();
    let mut c = s.raw();
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    run_cases(&mut c, RESP3_CASES);
}

/// COMMAND INFO reports Redis 7.2's arity, flags, key positions and ACL
/// categories for every hash command.
#[test]
fn command_info_matches_redis() {
    // (name, arity, flags, ACL categories)
    let table: &[(&str, i64, &[&str], &[&str])] = &[
        ("hset", -4, &["write", "denyoom", "fast"], &["@write", "@hash", "@fast"]),
        ("hsetnx", 4, &["write", "denyoom", "fast"], &["@write", "@hash", "@fast"]),
        ("hmset", -4, &["write", "denyoom", "fast"], &["@write", "@hash", "@fast"]),
        ("hget", 3, &["readonly", "fast"], &["@read", "@hash", "@fast"]),
        ("hmget", -3, &["readonly", "fast"], &["@read", "@hash", "@fast"]),
        ("hgetall", 2, &["readonly"], &["@read", "@hash", "@slow"]),
        ("hdel", -3, &["write", "fast"], &["@write", "@hash", "@fast"]),
        ("hlen", 2, &["readonly", "fast"], &["@read", "@hash", "@fast"]),
        ("hexists", 3, &["readonly", "fast"], &["@read", "@hash", "@fast"]),
        ("hkeys", 2, &["readonly"], &["@read", "@hash", "@slow"]),
        ("hvals", 2, &["readonly"], &["@read", "@hash", "@slow"]),
        ("hstrlen", 3, &["readonly", "fast"], &["@read", "@hash", "@fast"]),
        ("hincrby", 4, &["write", "denyoom", "fast"], &["@write", "@hash", "@fast"]),
        ("hincrbyfloat", 4, &["write", "denyoom", "fast"], &["@write", "@hash", "@fast"]),
        ("hrandfield", -2, &["readonly"], &["@read", "@hash", "@slow"]),
        ("hscan", -3, &["readonly"], &["@read", "@hash", "@slow"]),
    ];
    let s = Server::start();
    let mut c = s.raw();
    for (name, arity, flags, acl) in table {
        let mut want = format!("*1\r\n*10\r\n${}\r\n{name}\r\n:{arity}\r\n*{}\r\n", name.len(), flags.len());
        for f in *flags {
            want.push_str(&format!("+{f}\r\n"));
        }
        want.push_str(&format!(":1\r\n:1\r\n:1\r\n*{}\r\n", acl.len()));
        for a in *acl {
            want.push_str(&format!("+{a}\r\n"));
        }
        let got = c.cmd(&["COMMAND", "INFO", name]);
        assert!(got.starts_with(&want), "COMMAND INFO {name}:\n got {got:?}\nwant prefix {want:?}");
    }
    let keys = c.cmd(&["COMMAND", "GETKEYS", "HSET", "k", "f", "v"]);
    assert_eq!(keys, "*1\r\n$1\r\nk\r\n");
}

#[tokio::test]
async fn typed_api_through_redis_rs() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.conn().await;
    assert_eq!(c.hset::<_, _, _, i64>("user:1", "name", "Ada").await.unwrap(), 1);
    let _: () = c.hset_multiple("user:1", &[("lang", "en"), ("age", "36")]).await.unwrap();
    assert_eq!(c.hget::<_, _, Option<String>>("user:1", "name").await.unwrap().as_deref(), Some("Ada"));
    assert_eq!(c.hget::<_, _, Option<String>>("user:1", "nope").await.unwrap(), None);
    assert!(c.hset_nx::<_, _, _, bool>("user:1", "email", "ada@example.invalid").await.unwrap());
    assert!(!c.hset_nx::<_, _, _, bool>("user:1", "email", "other").await.unwrap());
    let all: HashMap<String, String> = c.hgetall("user:1").await.unwrap();
    let want: HashMap<String, String> = [("name", "Ada"), ("lang", "en"), ("age", "36"), ("email", "ada@example.invalid")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, want);
    let mut keys: Vec<String> = c.hkeys("user:1").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["age", "email", "lang", "name"]);
    let mut vals: Vec<String> = c.hvals("user:1").await.unwrap();
    vals.sort();
    assert_eq!(vals, ["36", "Ada", "ada@example.invalid", "en"]);
    assert_eq!(c.hlen::<_, i64>("user:1").await.unwrap(), 4);
    assert!(c.hexists::<_, _, bool>("user:1", "lang").await.unwrap());
    let got: Vec<Option<String>> = redis::cmd("HMGET").arg("user:1").arg("name").arg("x").arg("age").query_async(&mut c).await.unwrap();
    assert_eq!(got, [Some("Ada".to_string()), None, Some("36".to_string())]);
    let len: i64 = redis::cmd("HSTRLEN").arg("user:1").arg("email").query_async(&mut c).await.unwrap();
    assert_eq!(len, 19);
    assert_eq!(c.hincr::<_, _, _, i64>("user:1", "age", 1).await.unwrap(), 37);
    assert_eq!(c.hincr::<_, _, _, f64>("user:1", "score", 2.5).await.unwrap(), 2.5);
    assert_eq!(c.hdel::<_, _, i64>("user:1", &["lang", "email", "absent"]).await.unwrap(), 2);
    let field: String = redis::cmd("HRANDFIELD").arg("user:1").query_async(&mut c).await.unwrap();
    assert!(["name", "age", "score"].contains(&field.as_str()), "{field}");
    let picks: Vec<String> = redis::cmd("HRANDFIELD").arg("user:1").arg(-20).query_async(&mut c).await.unwrap();
    assert_eq!(picks.len(), 20);
    assert!(picks.iter().all(|f| ["name", "age", "score"].contains(&f.as_str())));
    let pairs: Vec<(String, String)> = redis::cmd("HRANDFIELD").arg("user:1").arg(2).arg("WITHVALUES").query_async(&mut c).await.unwrap();
    assert_eq!(pairs.len(), 2);
    assert_ne!(pairs[0].0, pairs[1].0, "a positive count picks distinct fields");
    for (f, v) in &pairs {
        let stored: String = c.hget("user:1", f).await.unwrap();
        assert_eq!(&stored, v);
    }
    assert_eq!(c.hdel::<_, _, i64>("user:1", &["name", "age", "score"]).await.unwrap(), 3);
    assert!(!c.exists::<_, bool>("user:1").await.unwrap(), "deleting the last field deletes the key");
    let empty: HashMap<String, String> = c.hgetall("user:1").await.unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn resp3_map_through_redis_rs() {
    let s = Server::start();
    let client = redis::Client::open(format!("{}?protocol=resp3", s.url())).unwrap();
    let mut c = damselfly_tests::connect(&client).await;
    let _: () = c.hset_multiple("h", &[("x", "1"), ("y", "2")]).await.unwrap();
    let v: redis::Value = redis::cmd("HGETALL").arg("h").query_async(&mut c).await.unwrap();
    assert!(matches!(v, redis::Value::Map(ref m) if m.len() == 2), "{v:?}");
    let all: HashMap<String, i64> = c.hgetall("h").await.unwrap();
    assert_eq!(all, HashMap::from([("x".to_string(), 1), ("y".to_string(), 2)]));
}

/// Pages through a hash with HSCAN; returns every (field, value) seen and the
/// number of calls. Panics if the scan does not finish within `max_calls`.
async fn full_scan(c: &mut redis::aio::MultiplexedConnection, key: &str, count: usize, max_calls: usize) -> (Vec<(String, String)>, usize) {
    let mut cursor: u64 = 0;
    let mut seen = Vec::new();
    for call in 1..=max_calls {
        let (next, items): (u64, Vec<(String, String)>) =
            redis::cmd("HSCAN").arg(key).arg(cursor).arg("COUNT").arg(count).query_async(c).await.unwrap();
        seen.extend(items);
        if next == 0 {
            return (seen, call);
        }
        cursor = next;
    }
    panic!("HSCAN of {key} did not finish in {max_calls} calls");
}

/// Lowering the listpack limits with CONFIG SET converts hashes on their next
/// write; every command keeps working across the conversion. HSCAN shows the
/// encoding: the compact one returns everything with cursor 0 whatever the
/// COUNT, the table pages.
#[tokio::test]
async fn listpack_to_hashtable_conversion() {
    let s = Server::start();
    let mut c = s.conn().await;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("hash-max-listpack-entries").arg(8).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("hash-max-listpack-value").arg(16).query_async(&mut c).await.unwrap();

    // Up to the entry limit: compact.
    for i in 0..8 {
        let _: i64 = c.hset("h", format!("f{i}"), format!("v{i}")).await.unwrap();
    }
    let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN").arg("h").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_eq!((next, items.len()), (0, 16), "compact encoding scans in one call");

    // One more field: a table, which pages.
    let _: i64 = c.hset("h", "f8", "v8").await.unwrap();
    let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN").arg("h").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_ne!(next, 0, "a table pages");
    assert!(items.len() < 18);
    let (seen, calls) = full_scan(&mut c, "h", 2, 100).await;
    assert!(calls > 1);
    let want: Vec<(String, String)> = (0..9).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every field exactly once, with its value");
    let all: HashMap<String, String> = c.hgetall("h").await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(all["f3"], "v3");
    assert_eq!(c.hlen::<_, i64>("h").await.unwrap(), 9);
    assert_eq!(c.hincr::<_, _, _, i64>("h", "n", 5).await.unwrap(), 5);
    assert_eq!(c.hincr::<_, _, _, i64>("h", "n", 5).await.unwrap(), 10);
    let mut fields: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(10).query_async(&mut c).await.unwrap();
    fields.sort();
    fields.dedup();
    assert_eq!(fields.len(), 10, "distinct picks from the table");
    let repeats: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(-50).query_async(&mut c).await.unwrap();
    assert_eq!(repeats.len(), 50);
    assert!(repeats.iter().all(|f| all.contains_key(f) || f == "n"));
    let dels: Vec<String> = (0..9).map(|i| format!("f{i}")).chain(["n".to_string()]).collect();
    assert_eq!(c.hdel::<_, _, i64>("h", &dels).await.unwrap(), 10);
    assert!(!c.exists::<_, bool>("h").await.unwrap());

    // A value over the length limit converts a small hash.
    let _: () = c.hset_multiple("v", &[("a", "1"), ("b", "2"), ("c", "3")]).await.unwrap();
    let (next, _): (u64, Vec<String>) = redis::cmd("HSCAN").arg("v").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_eq!(next, 0);
    let long = "x".repeat(17);
    let _: i64 = c.hset("v", "b", &long).await.unwrap();
    let (next, _): (u64, Vec<String>) = redis::cmd("HSCAN").arg("v").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_ne!(next, 0, "a long value converts the hash");
    assert_eq!(c.hget::<_, _, String>("v", "b").await.unwrap(), long);
    assert_eq!(c.hget::<_, _, String>("v", "a").await.unwrap(), "1");
    let (seen, _) = full_scan(&mut c, "v", 1, 10).await;
    assert_eq!(seen.len(), 3);

    // A long field name converts too; HINCRBYFLOAT results count as values.
    let _: i64 = c.hset("w", "a-field-name-longer-than-16", "1").await.unwrap();
    let (next, _): (u64, Vec<String>) = redis::cmd("HSCAN").arg("w").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_eq!(next, 0, "a single-field table scans in one call too");
    assert_eq!(c.hincr::<_, _, _, f64>("w", "a-field-name-longer-than-16", 0.5).await.unwrap(), 1.5);

    // Limits lowered below an existing compact hash apply on its next write.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("hash-max-listpack-entries").arg(128).query_async(&mut c).await.unwrap();
    let pairs: Vec<(String, String)> = (0..20).map(|i| (format!("g{i}"), "v".to_string())).collect();
    let _: () = c.hset_multiple("g", &pairs).await.unwrap();
    let (next, _): (u64, Vec<String>) = redis::cmd("HSCAN").arg("g").arg(0).arg("COUNT").arg(1).query_async(&mut c).await.unwrap();
    assert_eq!(next, 0);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("hash-max-listpack-entries").arg(4).query_async(&mut c).await.unwrap();
    let _: i64 = c.hset("g", "g0", "changed").await.unwrap();
    let (seen, calls) = full_scan(&mut c, "g", 1, 100).await;
    assert!(calls > 1, "converted on write");
    assert_eq!(seen.len(), 20);
    assert!(seen.contains(&("g0".to_string(), "changed".to_string())));
}

/// HSCAN of a ~5000-field hash while other clients insert and delete other
/// fields (growing the table under the scan): every field that exists for
/// the whole scan comes back, with its value, and nothing foreign appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hscan_is_complete_under_concurrent_writes() {
    const BASE: usize = 5000;
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.conn().await;
    for chunk in (0..BASE).collect::<Vec<_>>().chunks(500) {
        let pairs: Vec<(String, String)> = chunk.iter().map(|i| (format!("base:{i}"), format!("v{i}"))).collect();
        let _: () = c.hset_multiple("big", &pairs).await.unwrap();
    }
    assert_eq!(c.hlen::<_, usize>("big").await.unwrap(), BASE);

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (client, stop) = (s.client(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            let mut ops = 0usize;
            // Bounded: each writer adds then removes batches of 4000 fields.
            'outer: for round in 0..1000 {
                for i in 0..4000 {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    let f = format!("extra:{w}:{i}");
                    if round % 2 == 0 {
                        let _: i64 = c.hset("big", &f, "x").await.unwrap();
                    } else {
                        let _: i64 = c.hdel("big", &f).await.unwrap();
                    }
                    ops += 1;
                }
            }
            ops
        }));
    }

    // Start scanning only once the writers are visibly at work.
    for _ in 0..400 {
        if c.hlen::<_, usize>("big").await.unwrap() > BASE + 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(c.hlen::<_, usize>("big").await.unwrap() > BASE, "writers started");
    let mut scans = 0;
    for count in [7, 50, 200] {
        let (seen, _) = full_scan(&mut c, "big", count, 20_000).await;
        scans += 1;
        let mut base_seen = HashSet::new();
        for (f, v) in &seen {
            if let Some(i) = f.strip_prefix("base:") {
                assert_eq!(v, &format!("v{i}"), "value of {f}");
                assert!(base_seen.insert(f.clone()), "{f} returned twice");
            } else {
                assert!(f.starts_with("extra:") && v == "x", "foreign field {f}={v}");
            }
        }
        assert_eq!(base_seen.len(), BASE, "HSCAN (COUNT {count}) missed fields that existed throughout");
    }
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for w in writers {
        ops += w.await.unwrap();
    }
    assert!(ops > 0, "the writers ran during the scans");
    assert_eq!(scans, 3);
    let len: usize = c.hlen("big").await.unwrap();
    assert!(len >= BASE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hincrby_counts_exactly() {
    const CLIENTS: i64 = 20;
    const OPS: i64 = 250;
    let s = Server::start_with(&["--shards", "2"]);
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let client = s.client();
        tasks.push(tokio::spawn(async move {
            let mut c = damselfly_tests::connect(&client).await;
            for _ in 0..OPS {
                let _: i64 = c.hincr("counters", "total", 1).await.unwrap();
                let _: i64 = c.hincr("counters", format!("client:{id}"), 2).await.unwrap();
                let _: i64 = c.hincr("other", "down", -1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    assert_eq!(c.hget::<_, _, i64>("counters", "total").await.unwrap(), CLIENTS * OPS);
    for id in 0..CLIENTS {
        assert_eq!(c.hget::<_, _, i64>("counters", format!("client:{id}")).await.unwrap(), 2 * OPS);
    }
    assert_eq!(c.hlen::<_, i64>("counters").await.unwrap(), CLIENTS + 1);
    assert_eq!(c.hget::<_, _, i64>("other", "down").await.unwrap(), -CLIENTS * OPS);
}

/// A pipeline of hash writes and reads over several keys (and so shards)
/// replies in order with the right values.
#[test]
fn pipelined_hash_commands_reply_in_order() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let mut req = Vec::new();
    for i in 0..2000 {
        let k = format!("ph:{}", i % 37);
        let f = format!("f{i}");
        req.extend_from_slice(format!("*4\r\n$4\r\nHSET\r\n${}\r\n{k}\r\n${}\r\n{f}\r\n$1\r\n1\r\n", k.len(), f.len()).as_bytes());
        req.extend_from_slice(
            format!("*4\r\n$7\r\nHINCRBY\r\n${}\r\n{k}\r\n${}\r\n{f}\r\n$1\r\n{}\r\n", k.len(), f.len(), i % 10).as_bytes(),
        );
    }
    c.send(&req);
    for i in 0..2000 {
        assert_eq!(c.read_reply(), b":1\r\n", "HSET #{i}");
        assert_eq!(c.read_reply(), format!(":{}\r\n", 1 + i % 10).into_bytes(), "HINCRBY #{i}");
    }
    let mut total = 0;
    for k in 0..37 {
        let r = c.cmd(&["HLEN", &format!("ph:{k}")]);
        total += r.trim_start_matches(':').trim_end().parse::<usize>().unwrap();
    }
    assert_eq!(total, 2000);
}

/// A small hash packs its fields and values in one buffer as Redis's
/// listpack does: MEMORY USAGE within 10% of redis-server's for shapes a
/// cache stores (a slot and, past 22 bytes, an allocation per field and
/// value took 1.7x), and the listpack's order (insertion, updates in
/// place, removals closing up) in HGETALL.
#[test]
fn a_small_hash_is_as_compact_as_a_listpack() {
    let s = Server::start();
    let redis = Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    let usage = |c: &mut Raw, key: &str| -> u64 {
        let reply = c.cmd(&["MEMORY", "USAGE", key]);
        reply.trim_start_matches(':').trim().parse().unwrap_or_else(|_| panic!("MEMORY USAGE {key}: {reply}"))
    };
    for (key, fields, len) in [("h10x10", 10, 10), ("h5x30", 5, 30), ("h100x8", 100, 8)] {
        let mut cmd = vec!["HSET".to_string(), key.to_string()];
        for i in 0..fields {
            cmd.push(format!("{i:0len$}"));
            cmd.push(format!("{:0len$}", i * 7));
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        c.same_replies(&mut r, &[&cmd[..]]);
        let (ours, theirs) = (usage(&mut c, key), usage(&mut r, key));
        assert!(ours * 10 <= theirs * 11, "{key}: {ours} bytes against redis-server's {theirs}");
    }
    c.same_replies(
        &mut r,
        &[
            &["HSET", "order", "a", "1", "b", "2", "c", "3", "d", "4"],
            &["HDEL", "order", "b"],
            &["HSET", "order", "a", "one", "e", "5", "c", "a longer value than before"],
            &["HINCRBY", "order", "d", "10"],
            &["HDEL", "order", "e", "zz"],
            &["HGETALL", "order"],
            &["HKEYS", "order"],
            &["HVALS", "order"],
            &["HSCAN", "order", "0"],
            &["HRANDFIELD", "order", "10", "WITHVALUES"],
            &["OBJECT", "ENCODING", "order"],
        ],
    );
}
