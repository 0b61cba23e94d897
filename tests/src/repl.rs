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
