//! RDB interoperability with redis-server 7.0, the format's reference:
//! DUMP payloads restore across both ways for every type and encoding; a
//! `dump.rdb` saved by redis-server reads through our `Reader`; a file from
//! our writer passes `redis-check-rdb` and loads into redis-server. Values
//! are compared through read commands (GET, LRANGE, SMEMBERS, HGETALL,
//! ZRANGE WITHSCORES, XRANGE, PFCOUNT). redis-server and redis-check-rdb
//! come from PATH; the tests fail when they are missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use damselfly::store::dump;
use damselfly::store::rdb::{self, Item, Reader};
use damselfly::types::Limits;
use damselfly_tests::{Redis, Server};
use redis::Connection;

fn conn(port: u16) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client").get_connection().expect("connect")
}

fn run(c: &mut Connection, args: &[&[u8]]) -> redis::Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("command name"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// The commands that build the data set: every type, each in its small and
/// large encodings, integers of each width, long compressible strings.
fn data_set() -> Vec<Vec<Vec<u8>>> {
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut add = |parts: Vec<Vec<u8>>| cmds.push(parts);
    let s = |x: &str| x.as_bytes().to_vec();
    add(vec![s("SET"), s("str:small"), s("hello")]);
    add(vec![s("SET"), s("str:empty"), s("")]);
    for (k, v) in [("int8", "-100"), ("int16", "30000"), ("int32", "-2000000000"), ("int64", "9223372036854775807"), ("lead0", "007")] {
        add(vec![s("SET"), format!("str:{k}").into_bytes(), s(v)]);
    }
    add(vec![s("SET"), s("str:long"), "abcdefgh".repeat(2000).into_bytes()]);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..3000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    add(vec![s("SET"), s("str:random"), random]);
    // Lists: one node; many nodes; a big element; integers.
    add(vec![s("RPUSH"), s("list:small"), s("a"), s("1"), s("-300"), s(""), s("b")]);
    let mut big = vec![s("RPUSH"), s("list:big")];
    big.extend((0..3000).map(|i| {
        if i % 3 == 0 {
            i.to_string().into_bytes()
        } else {
            format!("element-{i}-{}", "x".repeat(i % 120)).into_bytes()
        }
    }));
    add(big);
    add(vec![s("RPUSH"), s("list:huge-element"), s("a"), "z".repeat(20_000).into_bytes(), s("c")]);
    // Sets: intsets of 16/32/64-bit members, a large integer set, strings.
    add(vec![s("SADD"), s("set:int16"), s("1"), s("-2"), s("300")]);
    add(vec![s("SADD"), s("set:int64"), s("1"), s("-9223372036854775808"), s("70000")]);
    let mut ints = vec![s("SADD"), s("set:ints-big")];
    ints.extend((0..700).map(|i| (i * 7).to_string().into_bytes()));
    add(ints);
    add(vec![s("SADD"), s("set:small"), s("a"), s("b"), s("1")]);
    let mut strs = vec![s("SADD"), s("set:big")];
    strs.extend((0..400).map(|i| format!("member:{i}").into_bytes()));
    add(strs);
    // Hashes: listpack, many fields, a long value.
    add(vec![s("HSET"), s("hash:small"), s("f"), s("v"), s("n"), s("12"), s("e"), s("")]);
    let mut h = vec![s("HSET"), s("hash:big")];
    for i in 0..300 {
        h.push(format!("field{i}").into_bytes());
        h.push(format!("value{i}").into_bytes());
    }
    add(h);
    add(vec![s("HSET"), s("hash:wide"), s("f"), "w".repeat(100).into_bytes()]);
    // Sorted sets: listpack (integer, fractional, infinite scores), skiplist.
    add(vec![s("ZADD"), s("zset:small"), s("1"), s("a"), s("2.5"), s("b"), s("-inf"), s("c"), s("0.1"), s("d"), s("1e300"), s("e")]);
    let mut z = vec![s("ZADD"), s("zset:big")];
    for i in 0..300 {
        z.push(format!("{}", i as f64 / 7.0).into_bytes());
        z.push(format!("m{i}").into_bytes());
    }
    add(z);
    add(vec![s("ZADD"), s("zset:wide"), s("3"), "q".repeat(100).into_bytes()]);
    // Streams: several nodes, differing fields, deletions.
    for i in 1..=250u64 {
        let fields: Vec<Vec<u8>> = if i % 5 == 0 {
            vec![s("other"), format!("{i}").into_bytes()]
        } else {
            vec![s("a"), format!("{i}").into_bytes(), s("b"), s("x")]
        };
        let mut cmd = vec![s("XADD"), s("stream:big"), format!("{}-{}", 1000 + i / 4, i % 4).into_bytes()];
        cmd.extend(fields);
        add(cmd);
    }
    add(vec![s("XDEL"), s("stream:big"), s("1010-2"), s("1001-0")]);
    add(vec![s("XADD"), s("stream:small"), s("5-1"), s("f"), s("v")]);
    // HyperLogLogs: sparse and dense in Redis.
    add(vec![s("PFADD"), s("hll:small"), s("a"), s("b"), s("c")]);
    let mut hl = vec![s("PFADD"), s("hll:big")];
    hl.extend((0..5000).map(|i| format!("e{i}").into_bytes()));
    add(hl);
    cmds
}

fn keys_of(cmds: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = cmds.iter().filter(|c| c[0] != b"XDEL").map(|c| c[1].clone()).collect();
    keys.dedup();
    keys
}

fn populate(c: &mut Connection) {
    for cmd in data_set() {
        let args: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
        run(c, &args);
    }
}

/// What a key holds, as read commands show it (unordered replies sorted).
fn view(c: &mut Connection, key: &[u8]) -> String {
    let t: String = redis::cmd("TYPE").arg(key).query(c).expect("TYPE");
    let name = String::from_utf8_lossy(key);
    let v = match t.as_str() {
        "string" if name.starts_with("hll:") => {
            let n: i64 = redis::cmd("PFCOUNT").arg(key).query(c).expect("PFCOUNT");
            format!("{n}")
        }
        "string" => format!("{:?}", redis::cmd("GET").arg(key).query::<Vec<u8>>(c).expect("GET")),
        "list" => format!("{:?}", redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query::<Vec<Vec<u8>>>(c).expect("LRANGE")),
        "set" => {
            let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(c).expect("SMEMBERS");
            m.sort();
            format!("{m:?}")
        }
        "hash" => {
            let mut m: Vec<(Vec<u8>, Vec<u8>)> =
                redis::cmd("HGETALL").arg(key).query::<HashMap<Vec<u8>, Vec<u8>>>(c).expect("HGETALL").into_iter().collect();
            m.sort();
            format!("{m:?}")
        }
        // Scores compared as doubles: Redis 7.0 prints them with %.17g,
        // Damselfly with the shortest text that reads back the same.
        "zset" => {
            let items: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query(c).expect("ZRANGE");
            format!("{:?}", items.iter().map(|(m, s)| (String::from_utf8_lossy(m), s.to_bits())).collect::<Vec<_>>())
        }
        "stream" => format!("{:?}", redis::cmd("XRANGE").arg(key).arg("-").arg("+").query::<redis::Value>(c).expect("XRANGE")),
        other => panic!("{name}: unexpected type {other}"),
    };
    format!("{t}:{v}")
}

/// Asserts two views are equal, showing where they first differ.
#[track_caller]
fn same(got: &str, want: &str, what: &str) {
    if got != want {
        let at = got.bytes().zip(want.bytes()).take_while(|(a, b)| a == b).count();
        let from = at.saturating_sub(40);
        let clip = |s: &str| s.get(from..(at + 80).min(s.len())).unwrap_or("").to_string();
        panic!("{what}: values differ at byte {at}:\n got: ...{}\nwant: ...{}", clip(got), clip(want));
    }
}

fn dump_key(c: &mut Connection, key: &[u8]) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query(c).expect("DUMP")
}

fn restore(c: &mut Connection, key: &[u8], payload: &[u8]) {
    let r: redis::RedisResult<()> = redis::cmd("RESTORE").arg(key).arg(0).arg(payload).query(c);
    r.unwrap_or_else(|e| panic!("RESTORE {}: {e}", String::from_utf8_lossy(key)));
}

fn renamed(key: &[u8], suffix: &str) -> Vec<u8> {
    [key, suffix.as_bytes()].concat()
}

#[test]
fn dump_restore_both_ways_for_every_type_and_encoding() {
    let redis = Redis::start();
    let ours = Server::start();
    let (mut r, mut d) = (conn(redis.port), ours.sync_conn());
    populate(&mut r);
    populate(&mut d);
    for key in keys_of(&data_set()) {
        let name = String::from_utf8_lossy(&key).to_string();
        let want = view(&mut r, &key);
        same(&view(&mut d, &key), &want, &format!("{name}: the two servers built different values"));
        // Redis -> Damselfly.
        let from_redis = renamed(&key, ":from-redis");
        restore(&mut d, &from_redis, &dump_key(&mut r, &key));
        same(&view(&mut d, &from_redis), &want, &format!("{name}: Redis's DUMP restored here"));
        // Damselfly -> Redis.
        let from_ours = renamed(&key, ":from-damselfly");
        restore(&mut r, &from_ours, &dump_key(&mut d, &key));
        same(&view(&mut r, &from_ours), &want, &format!("{name}: our DUMP restored on Redis"));
    }
    // HyperLogLogs keep working after the move both ways (Redis's sparse
    // layout here; our dense one there).
    for (c, key) in [(&mut d, &b"hll:small:from-redis"[..]), (&mut r, &b"hll:small:from-damselfly"[..])] {
        let n: i64 = redis::cmd("PFADD").arg(key).arg("d").arg("e").query(c).expect("PFADD");
        assert_eq!(n, 1);
        let n: i64 = redis::cmd("PFCOUNT").arg(key).query(c).expect("PFCOUNT");
        assert_eq!(n, 5, "{}", String::from_utf8_lossy(key));
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("damselfly-rdb-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const LIBRARY: &str = "#!lua name=mylib\nredis.register_function('answer', function() return 42 end)";

fn read_file(path: &Path) -> Vec<(u32, Item)> {
    let f = std::fs::File::open(path).expect("open rdb");
    let mut reader = Reader::new(std::io::BufReader::new(f)).unwrap_or_else(|e| panic!("{e}"));
    let mut db = 0;
    let mut items = Vec::new();
    while let Some(item) = reader.next().unwrap_or_else(|e| panic!("{e}")) {
        if let Item::SelectDb(n) = item {
            db = n;
        }
        items.push((db, item));
    }
    assert_eq!(reader.offset(), std::fs::metadata(path).expect("stat").len());
    items
}

#[test]
fn reader_loads_a_file_saved_by_redis() {
    let dir = TempDir::new("from-redis");
    let redis = Redis::start_with(&["--dir", dir.0.to_str().expect("utf-8 path"), "--dbfilename", "dump.rdb"]);
    let mut r = conn(redis.port);
    populate(&mut r);
    run(&mut r, &[b"PEXPIREAT", b"str:small", b"4102444800123"]);
    run(&mut r, &[b"FUNCTION", b"LOAD", LIBRARY.as_bytes()]);
    // A stream with a consumer group, pending entries and consumers: the
    // entries load, the groups are read past.
    run(&mut r, &[b"XGROUP", b"CREATE", b"stream:small", b"g1", b"0"]);
    run(&mut r, &[b"XREADGROUP", b"GROUP", b"g1", b"alice", b"COUNT", b"1", b"STREAMS", b"stream:small", b">"]);
    run(&mut r, &[b"SELECT", b"3"]);
    run(&mut r, &[b"SET", b"in-db-3", b"x"]);
    run(&mut r, &[b"SELECT", b"0"]);
    run(&mut r, &[b"SAVE"]);

    let items = read_file(&dir.0.join("dump.rdb"));
    let aux: HashMap<Vec<u8>, Vec<u8>> =
        items.iter().filter_map(|(_, i)| if let Item::Aux(k, v) = i { Some((k.clone(), v.clone())) } else { None }).collect();
    assert_eq!(aux.get(&b"redis-ver"[..]).map(|v| &v[..2]), Some(&b"7."[..]));
    assert!(items.iter().any(|(_, i)| matches!(i, Item::Function(code) if code == LIBRARY.as_bytes())), "the function library");
    // Every key restores here (through our own DUMP encoding) to what
    // Redis shows.
    let ours = Server::start();
    let mut d = ours.sync_conn();
    let mut seen = 0;
    for (db, item) in items {
        let Item::Entry { key, value, expire_at_ms } = item else { continue };
        seen += 1;
        if db == 3 {
            assert_eq!(key, b"in-db-3");
            continue;
        }
        assert_eq!(expire_at_ms, (key == b"str:small").then_some(4_102_444_800_123), "{}", String::from_utf8_lossy(&key));
        restore(&mut d, &key, &dump::encode(&value));
        same(&view(&mut d, &key), &view(&mut r, &key), &String::from_utf8_lossy(&key));
    }
    assert_eq!(seen, keys_of(&data_set()).len() + 1);
}

#[test]
fn a_file_we_write_passes_redis_check_rdb_and_loads_into_redis() {
    // The values as Damselfly builds them, taken through DUMP.
    let ours = Server::start();
    let mut d = ours.sync_conn();
    populate(&mut d);
    let keys = keys_of(&data_set());
    let mut out = Vec::new();
    let aux: &[(&str, &[u8])] =
        &[("redis-ver", b"7.0.15"), ("redis-bits", b"64"), ("ctime", b"1700000000"), ("used-mem", b"1000000"), ("aof-base", b"0")];
    rdb::write_header(&mut out, aux);
    rdb::write_function(&mut out, LIBRARY.as_bytes());
    rdb::write_select_db(&mut out, 0);
    rdb::write_resize_db(&mut out, keys.len() as u64, 1);
    for key in &keys {
        let value = dump::decode(&dump_key(&mut d, key), Limits::default()).expect("our DUMP decodes");
        let expire = (key == b"str:small").then_some(4_102_444_800_123);
        rdb::write_entry(&mut out, key, &value, expire);
    }
    rdb::write_select_db(&mut out, 2);
    rdb::write_resize_db(&mut out, 1, 0);
    rdb::write_entry(&mut out, b"in-db-2", &damselfly::store::Value::string(b"y"), None);
    rdb::write_eof(&mut out);
    let mut crc = rdb::Crc64::new();
    crc.update(&out);
    out.extend_from_slice(&crc.finish().to_le_bytes());

    let dir = TempDir::new("to-redis");
    let file = dir.0.join("ours.rdb");
    std::fs::write(&file, &out).expect("write rdb");
    let check = Command::new("redis-check-rdb")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-check-rdb ({e}): this test needs redis 7 tools (apt-get install redis-tools)"));
    assert!(check.status.success(), "redis-check-rdb refused our file:\n{}", String::from_utf8_lossy(&check.stdout));
    // JSON documents are RedisJSON's module values: redis-check-rdb walks
    // them without the module (redis-server would need RedisJSON to load them).
    let mut json_file = Vec::new();
    rdb::write_header(&mut json_file, aux);
    rdb::write_select_db(&mut json_file, 0);
    run(
        &mut d,
        &[
            b"JSON.SET",
            b"doc",
            b"$",
            br#"{"name":"damselfly","tags":["a","b"],"n":1.5,"big":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        ],
    );
    let doc = dump::decode(&dump_key(&mut d, b"doc"), Limits::default()).expect("JSON DUMP decodes");
    rdb::write_entry(&mut json_file, b"doc", &doc, None);
    rdb::write_eof(&mut json_file);
    let crc = rdb::crc64(&json_file);
    json_file.extend_from_slice(&crc.to_le_bytes());
    let json_path = dir.0.join("json.rdb");
    std::fs::write(&json_path, &json_file).expect("write rdb");
    let check = Command::new("redis-check-rdb").arg(&json_path).output().expect("redis-check-rdb");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && report.contains("1 keys read"), "redis-check-rdb on a JSON key:\n{report}");
    let back = read_file(&json_path);
    assert!(back.iter().any(|(_, i)| matches!(i, Item::Entry { key, value, .. } if key == b"doc" && value.type_name() == "ReJSON-RL")));

    // Our reader reads it back too.
    assert_eq!(read_file(&file).iter().filter(|(_, i)| matches!(i, Item::Entry { .. })).count(), keys.len() + 1);

    let redis = Redis::start_with(&["--dir", dir.0.to_str().expect("utf-8 path"), "--dbfilename", "ours.rdb"]);
    let mut r = conn(redis.port);
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).expect("DBSIZE");
    assert_eq!(n as usize, keys.len());
    for key in &keys {
        same(&view(&mut r, key), &view(&mut d, key), &String::from_utf8_lossy(key));
    }
    let at: i64 = redis::cmd("PEXPIRETIME").arg("str:small").query(&mut r).expect("PEXPIRETIME");
    assert_eq!(at, 4_102_444_800_123);
    let answer: i64 = redis::cmd("FCALL").arg("answer").arg(0).query(&mut r).expect("FCALL");
    assert_eq!(answer, 42);
    run(&mut r, &[b"SELECT", b"2"]);
    let y: Vec<u8> = redis::cmd("GET").arg("in-db-2").query(&mut r).expect("GET");
    assert_eq!(y, b"y");
}

/// Files written by older Redis versions (from Redis's test suite): what
/// redis-server 7.0 loads from each, our reader reads the same.
#[test]
fn reader_agrees_with_redis_on_files_of_older_versions() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/redis-rdb");
    for name in [
        "encodings.rdb",
        "hash-zipmap.rdb",
        "hash-ziplist.rdb",
        "list-quicklist.rdb",
        "zset-ziplist.rdb",
        "scriptbackup.rdb",
        "corrupt_empty_keys.rdb",
    ] {
        let dir = TempDir::new("assets");
        std::fs::copy(assets.join(name), dir.0.join(name)).expect("copy fixture");
        let items = read_file(&dir.0.join(name));
        let redis = Redis::start_with(&["--dir", dir.0.to_str().expect("utf-8 path"), "--dbfilename", name]);
        let mut r = conn(redis.port);
        let ours = Server::start();
        let mut d = ours.sync_conn();
        let mut entries = 0;
        for (db, item) in items {
            let Item::Entry { key, value, expire_at_ms } = item else { continue };
            entries += 1;
            let what = format!("{name}: {}", String::from_utf8_lossy(&key));
            for c in [&mut r, &mut d] {
                run(c, &[b"SELECT", db.to_string().as_bytes()]);
            }
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut r).expect("PEXPIRETIME");
            assert_eq!(expire_at_ms.map_or(-1, |t| t as i64), at, "{what}: expiry");
            restore(&mut d, &key, &dump::encode(&value));
            same(&view(&mut d, &key), &view(&mut r, &key), &what);
        }
        let info: String = redis::cmd("INFO").arg("keyspace").query(&mut r).expect("INFO");
        let redis_keys: usize = info
            .lines()
            .filter_map(|l| l.split_once(":keys="))
            .map(|(_, rest)| rest.split(',').next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0))
            .sum();
        assert_eq!(entries, redis_keys, "{name}: keys read");
    }
}

/// A `dump.rdb` written by redis-server 7.0 with the RedisJSON module
/// (2.6) loads here: every JSON document (module type `ReJSON-RL`, LZF
/// compressed when long), its expiry and database, as RedisJSON itself
/// showed them (`expected.tsv`: database, key, TYPE, PEXPIRETIME, JSON.GET
/// of the root or GET). Regenerated with `scripts/redisjson-rdb.py
/// fixture`, which needs the module; `scripts/redisjson-rdb.py check`
/// proves both directions against the module itself.
#[test]
fn a_dump_written_by_redis_server_with_redisjson_loads_here() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/redisjson");
    let dir = TempDir::new("redisjson-fixture");
    std::fs::copy(assets.join("dump.rdb"), dir.0.join("dump.rdb")).expect("copy fixture");
    let expected = std::fs::read_to_string(assets.join("expected.tsv")).expect("expected.tsv");
    let ours = Server::start_with(&["--dir", dir.0.to_str().expect("utf-8 path"), "--shards", "2"]);
    let mut d = ours.sync_conn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !redis::cmd("INFO").arg("persistence").query::<String>(&mut d).expect("INFO").contains("loading:0") {
        assert!(std::time::Instant::now() < deadline, "the file did not load");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut per_db: HashMap<i64, i64> = HashMap::new();
    let mut json_keys = 0;
    for line in expected.lines() {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        let [db, key, kind, at, value] = f[..] else { panic!("expected.tsv: bad line {line:?}") };
        let db: i64 = db.parse().expect("database number");
        *per_db.entry(db).or_default() += 1;
        run(&mut d, &[b"SELECT", db.to_string().as_bytes()]);
        let t: String = redis::cmd("TYPE").arg(key).query(&mut d).expect("TYPE");
        assert_eq!(t, kind, "{key}: type");
        let got: String = if kind == "string" {
            redis::cmd("GET").arg(key).query(&mut d).expect("GET")
        } else {
            json_keys += 1;
            redis::cmd("JSON.GET").arg(key).query(&mut d).expect("JSON.GET")
        };
        assert_eq!(got, value, "{key}: value");
        let pat: i64 = redis::cmd("PEXPIRETIME").arg(key).query(&mut d).expect("PEXPIRETIME");
        assert_eq!(pat.to_string(), at, "{key}: expiry");
    }
    assert!(json_keys >= 5, "the fixture holds JSON documents");
    for (db, n) in per_db {
        run(&mut d, &[b"SELECT", db.to_string().as_bytes()]);
        let size: i64 = redis::cmd("DBSIZE").query(&mut d).expect("DBSIZE");
        assert_eq!(size, n, "keys in database {db}");
    }
}
