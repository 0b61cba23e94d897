//! What the replication tests share: connections, INFO fields, a round
//! of writes of every kind, and a node's whole contents to compare.

use redis::Connection;

pub fn conn(port: u16) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client").get_connection().expect("connect")
}

pub fn info_field(c: &mut Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg("replication").query(c).expect("INFO");
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.to_string()))
}

/// Writes of every kind: `n` keys per type, expiries, a transaction, a
/// script and a multi-shard MSET, tagged with `round`.
pub fn write_round(c: &mut Connection, round: &str, n: usize) {
    for i in 0..n {
        let _: () = redis::cmd("SET").arg(format!("s:{round}:{i}")).arg(format!("v{i}")).query(c).unwrap();
        let _: () = redis::cmd("SET").arg(format!("ttl:{round}:{i}")).arg(i).arg("EX").arg(1000).query(c).unwrap();
        let _: () = redis::cmd("INCRBY").arg(format!("n:{round}")).arg(i).query(c).unwrap();
        let _: () = redis::cmd("RPUSH").arg(format!("l:{round}:{}", i % 7)).arg(i).query(c).unwrap();
        let _: () = redis::cmd("HSET").arg(format!("h:{round}:{}", i % 5)).arg(format!("f{i}")).arg(i).query(c).unwrap();
        let _: () = redis::cmd("SADD").arg(format!("set:{round}:{}", i % 3)).arg(i).query(c).unwrap();
        let _: () = redis::cmd("ZADD").arg(format!("z:{round}")).arg(i as f64 / 2.0).arg(format!("m{i}")).query(c).unwrap();
    }
    let _: () = redis::cmd("DEL").arg(format!("s:{round}:0")).query(c).unwrap();
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(format!("tx:{round}:a"))
        .arg("1")
        .cmd("LPUSH")
        .arg(format!("tx:{round}:b"))
        .arg("x")
        .cmd("INCR")
        .arg(format!("tx:{round}:a"))
        .query(c)
        .unwrap();
    let _: i64 = redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], ARGV[1]); redis.call('HSET', KEYS[2], 'f', ARGV[1]); return 1")
        .arg(2)
        .arg(format!("{{sc:{round}}}:1"))
        .arg(format!("{{sc:{round}}}:2"))
        .arg("scripted")
        .query::<i64>(c)
        .unwrap();
    let mut mset = redis::cmd("MSET");
    for i in 0..20 {
        mset.arg(format!("m:{round}:{i}")).arg(i);
    }
    let _: () = mset.query(c).unwrap();
}

/// Every key's type and contents (and whether it expires) on a node.
pub fn contents(c: &mut Connection) -> Vec<(String, String, String, bool)> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let t: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let v = match t.as_str() {
                "string" => redis::cmd("GET").arg(&k).query::<String>(c).unwrap(),
                "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query::<Vec<String>>(c).unwrap().join(","),
                "hash" => {
                    let mut v: Vec<(String, String)> = redis::cmd("HGETALL").arg(&k).query(c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<String> = redis::cmd("SMEMBERS").arg(&k).query(c).unwrap();
                    v.sort();
                    v.join(",")
                }
                "zset" => format!("{:?}", redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES").query::<Vec<String>>(c).unwrap()),
                other => panic!("unexpected type {other} of {k}"),
            };
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            (k, t, v, ttl > 0)
        })
        .collect()
}

/// The keys whose type, contents or expiry differ between two nodes.
pub fn differences(a: &mut Connection, b: &mut Connection) -> Vec<String> {
    let (x, y) = (contents(a), contents(b));
    let mut d: Vec<String> = x.iter().filter(|k| !y.contains(k)).map(|k| format!("only first: {k:?}")).collect();
    d.extend(y.iter().filter(|k| !x.contains(k)).map(|k| format!("only second: {k:?}")));
    d
}

/// WAIT 1 0 on the primary: once it answers 1, the replica acknowledged
/// every write made before it.
pub fn wait_one(primary: &mut Connection) {
    let n: i64 = redis::cmd("WAIT").arg(1).arg(0).query(primary).unwrap();
    assert_eq!(n, 1);
}

pub fn link_up(replica: &mut Connection) -> bool {
    info_field(replica, "master_link_status").as_deref() == Some("up")
}

pub fn stat(c: &mut Connection, field: &str) -> i64 {
    let info: String = redis::cmd("INFO").arg("stats").query(c).expect("INFO");
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).and_then(|v| v.parse().ok())).expect(field)
}

/// `n` key names `prefix:j` that alternate between the two shards of a
/// `--shards 2` node (key i lives on shard i % 2).
pub fn apart(prefix: &str, n: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(n);
    let mut j = 0;
    while keys.len() < n {
        let k = format!("{prefix}:{j}");
        if crate::key_slot(k.as_bytes()) as usize % 2 == keys.len() % 2 {
            keys.push(k);
        }
        j += 1;
    }
    keys
}

/// Writes that coordinate shards on a `--shards 2` node (each names keys
/// on both shards), as a redis-server primary sends them and as its AOF
/// holds them: RENAME, RENAMENX and COPY (one with a TTL), SMOVE, the
/// set and sorted set STORE commands, LMOVE and RPOPLPUSH, MSETNX,
/// PFMERGE, BITOP, SORT and GEOSEARCHSTORE with STORE, in two databases
/// and inside MULTI/EXEC.
pub fn cross_shard_writes() -> Vec<Vec<String>> {
    let k = |p: &str| apart(p, 4);
    let (s, n, t, l, z, h, b, g, e, d, x, m) =
        (k("s"), k("n"), k("t"), k("l"), k("z"), k("h"), k("b"), k("g"), k("e"), k("d"), k("x"), k("m"));
    let text = [
        format!("SET {} v", s[0]),
        format!("RENAME {} {}", s[0], s[1]),
        format!("COPY {} {}", s[1], s[2]),
        format!("SET {} w", n[0]),
        format!("RENAMENX {} {}", n[0], n[1]),
        format!("SADD {} x y", t[0]),
        format!("SADD {} y z", t[1]),
        format!("SUNIONSTORE {} {} {}", t[2], t[0], t[1]),
        format!("SINTERSTORE {} {} {}", t[3], t[0], t[1]),
        format!("SMOVE {} {} x", t[0], t[1]),
        format!("SDIFFSTORE {} {} {}", t[0], t[1], t[3]),
        format!("RPUSH {} a b c d", l[0]),
        format!("LMOVE {} {} LEFT RIGHT", l[0], l[1]),
        format!("RPOPLPUSH {} {}", l[0], l[1]),
        format!("SORT {} ALPHA STORE {}", l[1], l[2]),
        format!("ZADD {} 1 a 2 b", z[0]),
        format!("ZADD {} 3 b 4 c", z[1]),
        format!("ZUNIONSTORE {} 2 {} {}", z[2], z[0], z[1]),
        format!("ZINTERSTORE {} 2 {} {} WEIGHTS 1 2", z[3], z[0], z[1]),
        format!("ZRANGESTORE {} {} 0 -1", z[3], z[1]),
        format!("ZDIFFSTORE {} 2 {} {}", z[2], z[0], z[1]),
        format!("PFADD {} a b", h[0]),
        format!("PFADD {} c", h[1]),
        format!("PFMERGE {} {} {}", h[2], h[0], h[1]),
        format!("SET {} abc", b[0]),
        format!("SET {} xyz", b[1]),
        format!("BITOP OR {} {} {}", b[2], b[0], b[1]),
        format!("GEOADD {} 13.361389 38.115556 palermo 15.087269 37.502669 catania", g[0]),
        format!("GEOSEARCHSTORE {} {} FROMLONLAT 15 37 BYRADIUS 200 km ASC", g[1], g[0]),
        format!("SET {} v PXAT 4102444800000", e[0]),
        format!("RENAME {} {}", e[0], e[1]),
        format!("COPY {} {}", e[1], e[2]),
        format!("MSETNX {} 1 {} 2 {} 3", m[0], m[1], m[2]),
        "SELECT 2".to_string(),
        format!("SET {} in-db-2", d[0]),
        format!("RENAME {} {}", d[0], d[1]),
        "SELECT 0".to_string(),
        "MULTI".to_string(),
        format!("SET {} 1", x[0]),
        format!("RENAME {} {}", x[0], x[1]),
        format!("SMOVE {} {} y", t[1], t[0]),
        "EXEC".to_string(),
    ];
    text.iter().map(|c| c.split(' ').map(String::from).collect()).collect()
}
