//! What each kind of write is journaled as: collection writes as sent,
//! expiry changes, SET and MSET, pops, appends, consumer-group reads and
//! scripts as Redis propagates them (never as a big value's whole state),
//! each replaying to the same data.

use std::time::{Duration, Instant};

use damselfly_tests::cluster::TempDir;
use damselfly_tests::Server;
use redis::{Commands, Connection};

use super::{check_aof, incr_file, journaled, loaded, wait_rewrites};

/// Writes to collections are journaled as the commands sent (a ZINCRBY on a
/// big sorted set costs a few dozen bytes, not the set) and replay to the
/// same data.
#[test]
fn collection_writes_are_journaled_as_sent_and_replay_the_same() {
    let dir = TempDir::new("journal-args");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let members: Vec<(f64, String)> = (0..10_000).map(|i| (i as f64, format!("member:{i}"))).collect();
    let _: () = con.zadd_multiple("board", &members).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    for i in 0..200 {
        let _: f64 = con.zincr("board", format!("member:{}", i * 37 % 10_000), 2.5).unwrap();
    }
    let grown = std::fs::metadata(&file).unwrap().len() - before;
    assert!(grown < 200 * 100, "200 ZINCRBYs took {grown} bytes of journal");
    let _: () = con.hset_multiple("cart:1", &[("sku-1", "2"), ("sku-2", "1")]).unwrap();
    let _: i64 = con.hincr("cart:1", "sku-1", 3).unwrap();
    let _: () = con.rpush("queue", &["a", "b", "c"]).unwrap();
    let _: Option<String> = con.lpop("queue", None).unwrap();
    let _: () = con.sadd("tags", &["x", "y"]).unwrap();
    let _: String = redis::cmd("JSON.SET").arg("doc").arg("$").arg(r#"{"n":1,"a":[1]}"#).query(&mut con).unwrap();
    let _: String = redis::cmd("JSON.NUMINCRBY").arg("doc").arg("$.n").arg(41).query(&mut con).unwrap();
    let want = (
        con.zrange_withscores::<_, Vec<(String, f64)>>("board", 0, -1).unwrap(),
        con.hgetall::<_, std::collections::BTreeMap<String, String>>("cart:1").unwrap(),
        con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        redis::cmd("JSON.GET").arg("doc").query::<String>(&mut con).unwrap(),
    );
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let got = (
        con.zrange_withscores::<_, Vec<(String, f64)>>("board", 0, -1).unwrap(),
        con.hgetall::<_, std::collections::BTreeMap<String, String>>("cart:1").unwrap(),
        con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        redis::cmd("JSON.GET").arg("doc").query::<String>(&mut con).unwrap(),
    );
    assert_eq!(got, want);
    assert_eq!(con.scard::<_, i64>("tags").unwrap(), 2);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// A command journaled as sent (HSET, RPUSH, RPUSHX) that finds its key's
/// TTL passed works on a new key: the journal deletes the old one first,
/// since the replay expires nothing (it was replayed onto the old value,
/// and the key then expired with the new write in it).
#[test]
fn a_write_to_a_key_found_expired_replays_onto_nothing() {
    let dir = TempDir::new("journal-lazy-expiry");
    let start = || {
        Server::start_with(&[
            "--dir",
            dir.path(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--enable-debug-command",
            "yes",
        ])
    };
    let s = start();
    let mut con = loaded(&s);
    redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).query::<()>(&mut con).unwrap();
    let _: () = con.hset("h", "old", 1).unwrap();
    let _: () = con.rpush("l", "old").unwrap();
    let _: () = con.rpush("m", "old").unwrap();
    for k in ["h", "l", "m"] {
        let _: () = con.pexpire(k, 50).unwrap();
    }
    // Found expired by the writes themselves (active expiry is off).
    std::thread::sleep(Duration::from_millis(100));
    let _: () = con.hset("h", "new", 2).unwrap();
    let _: () = con.rpush("l", "new").unwrap();
    assert_eq!(redis::cmd("RPUSHX").arg("m").arg("new").query::<i64>(&mut con).unwrap(), 0);
    s.signal("KILL");
    drop(s);
    let s = start();
    let mut con = loaded(&s);
    let h: Vec<(String, String)> = con.hgetall("h").unwrap();
    assert_eq!(h, [("new".to_string(), "2".to_string())]);
    assert_eq!(con.ttl::<_, i64>("h").unwrap(), -1);
    assert_eq!(con.lrange::<_, Vec<String>>("l", 0, -1).unwrap(), ["new"]);
    assert!(!con.exists::<_, bool>("m").unwrap());
}

/// Expiry changes are journaled as their effect (PEXPIREAT, PERSIST,
/// DEL), not as the key's whole state: an EXPIRE on a big hash adds one
/// short command, and the TTLs replay exactly.
#[test]
fn expiry_changes_are_journaled_as_their_effect() {
    let dir = TempDir::new("journal-ttl");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let fields: Vec<(String, String)> = (0..5000).map(|i| (format!("field{i}"), "x".repeat(20))).collect();
    let _: () = con.hset_multiple("big", &fields).unwrap();
    let _: () = con.set("s", "v").unwrap();
    let _: () = con.set("gone", "v").unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    redis::cmd("EXPIREAT").arg("big").arg(4102444800u64).query::<()>(&mut con).unwrap();
    redis::cmd("PEXPIREAT").arg("s").arg(4102444800123u64).query::<()>(&mut con).unwrap();
    redis::cmd("PERSIST").arg("s").query::<()>(&mut con).unwrap();
    redis::cmd("GETEX").arg("s").arg("PXAT").arg(4102444800456u64).query::<()>(&mut con).unwrap();
    redis::cmd("PEXPIREAT").arg("gone").arg(1).query::<()>(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 300, "{added} bytes journaled for four expiry changes");
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let at = |con: &mut Connection, k: &str| redis::cmd("PEXPIRETIME").arg(k).query::<i64>(con).unwrap();
    assert_eq!(at(&mut con, "big"), 4102444800000);
    assert_eq!(at(&mut con, "s"), 4102444800456);
    assert_eq!(at(&mut con, "gone"), -2);
    assert_eq!(con.hlen::<_, usize>("big").unwrap(), 5000);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// SET and MSET are journaled as Redis propagates them (SET KEEPTTL as
/// sent less GET, a relative expiry as PXAT, an expiry in the past as DEL;
/// an MSET over both shards as each shard's part, whole or not at all),
/// and replay to the same keys and expiry.
#[test]
fn set_and_mset_are_journaled_as_redis_propagates_them() {
    let dir = TempDir::new("journal-keepttl");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    redis::cmd("SET").arg("k").arg("v1").arg("PXAT").arg(4102444800123u64).query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg("k").arg("v2").arg("GET").arg("KEEPTTL").query::<String>(&mut con).unwrap();
    let pairs: Vec<(String, String)> = (0..20).map(|i| (format!("m{i}"), format!("v{i}"))).collect();
    let _: () = con.mset(&pairs).unwrap();
    // The other forms as Redis 7 propagates them: a relative expiry as
    // PXAT, NX/XX and GET dropped once the write happened, an expiry in
    // the past as DEL.
    redis::cmd("SET").arg("plain").arg("p").arg("NX").arg("GET").query::<Option<String>>(&mut con).unwrap();
    redis::cmd("SET").arg("rel").arg("r").arg("EX").arg(100000).query::<()>(&mut con).unwrap();
    let rel_at: i64 = redis::cmd("PEXPIRETIME").arg("rel").query(&mut con).unwrap();
    redis::cmd("SET").arg("plain").arg("gone").arg("XX").arg("EXAT").arg(1).query::<()>(&mut con).unwrap();
    let text = std::fs::read(incr_file(dir.path())).unwrap();
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv2\r\n$7\r\nKEEPTTL\r\n"), "SET KEEPTTL as sent, less GET");
    assert!(has(b"*3\r\n$3\r\nSET\r\n$5\r\nplain\r\n$1\r\np\r\n"), "SET NX GET as SET");
    let pxat = format!("*5\r\n$3\r\nSET\r\n$3\r\nrel\r\n$1\r\nr\r\n$4\r\nPXAT\r\n$13\r\n{rel_at}\r\n");
    assert!(has(pxat.as_bytes()), "SET EX as PXAT");
    assert!(has(b"*2\r\n$3\r\nDEL\r\n$5\r\nplain\r\n"), "SET EXAT in the past as DEL");
    assert!(has(b"$4\r\nMSET\r\n"), "MSET as sent");
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.get::<_, String>("k").unwrap(), "v2");
    assert_eq!(redis::cmd("PEXPIRETIME").arg("k").query::<i64>(&mut con).unwrap(), 4102444800123);
    assert_eq!(redis::cmd("PEXPIRETIME").arg("rel").query::<i64>(&mut con).unwrap(), rel_at);
    assert_eq!(con.get::<_, Option<String>>("plain").unwrap(), None);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<String> = con.mget(&keys).unwrap();
    assert_eq!(values, pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    drop(con);
    drop(s);
    check_aof(dir.path());
    // With more shards, an MSET part's keys live on several: split again.
    assert!(std::fs::read(incr_file(dir.path())).unwrap().windows(4).any(|w| w == b"MSET"));
    let s = Server::start_with(&["--dir", dir.path(), "--shards", "3", "--save", "", "--appendonly", "yes"]);
    let mut con = loaded(&s);
    assert_eq!(con.mget::<_, Vec<String>>(&keys).unwrap(), values);
}

/// Pops from big collections are journaled as what they took (LPOP,
/// ZPOPMIN, SREM), not as everything left: a job queue's BLPOP adds one
/// short command, and the collections replay to what they held.
#[test]
fn pops_from_big_collections_are_journaled_as_what_they_took() {
    let dir = TempDir::new("journal-pops");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let items: Vec<String> = (0..5000).map(|i| format!("job-{i:05}-{}", "x".repeat(20))).collect();
    let _: () = con.rpush("queue", &items).unwrap();
    let members: Vec<(f64, String)> = items.iter().enumerate().map(|(i, m)| (i as f64, m.clone())).collect();
    let _: () = con.zadd_multiple("ranked", &members).unwrap();
    let _: () = con.sadd("pool", &items).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let _: Vec<String> = redis::cmd("BLPOP").arg("queue").arg(1).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("LMPOP").arg(1).arg("queue").arg("RIGHT").arg("COUNT").arg(2).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("BZPOPMIN").arg("ranked").arg(1).query(&mut con).unwrap();
    let _: redis::Value = redis::cmd("ZMPOP").arg(1).arg("ranked").arg("MAX").arg("COUNT").arg(3).query(&mut con).unwrap();
    let _: Vec<String> = redis::cmd("SPOP").arg("pool").arg(2).query(&mut con).unwrap();
    // Members moved out of the pool, to sets on either shard.
    let remaining: Vec<String> = con.smembers("pool").unwrap();
    for (i, dst) in ["claimed", "claimed2", "claimed3"].iter().enumerate() {
        assert!(con.smove::<_, _, _, bool>("pool", *dst, &remaining[i]).unwrap());
    }
    // Moves out of the queue: to another list (on either shard), and a
    // rotation of the queue itself.
    for dst in ["taken", "taken2", "taken3", "queue"] {
        let _: String = redis::cmd("LMOVE").arg("queue").arg(dst).arg("LEFT").arg("RIGHT").query(&mut con).unwrap();
    }
    let _: String = redis::cmd("RPOPLPUSH").arg("queue").arg("taken").query(&mut con).unwrap();
    let _: String = redis::cmd("BLMOVE").arg("queue").arg("taken2").arg("RIGHT").arg("LEFT").arg(1).query(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 2000, "{added} bytes journaled for five pops and nine moves");
    // A client blocked on an empty list, served by a later push.
    let mut waiter = s.sync_conn();
    let blocked = std::thread::spawn(move || redis::cmd("BLPOP").arg("waitq").arg(10).query::<Vec<String>>(&mut waiter).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("INFO").arg("clients").query::<String>(&mut con).unwrap().contains("blocked_clients:0") {
        assert!(Instant::now() < deadline, "BLPOP did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _: () = con.rpush("waitq", &["a", "b", "c"]).unwrap();
    assert_eq!(blocked.join().unwrap(), ["waitq", "a"]);
    let want_list: Vec<String> = con.lrange("queue", 0, -1).unwrap();
    let moved: Vec<Vec<String>> = ["taken", "taken2", "taken3"].iter().map(|k| con.lrange(*k, 0, -1).unwrap()).collect();
    let claimed: Vec<Vec<String>> = ["claimed", "claimed2", "claimed3"].iter().map(|k| con.smembers(*k).unwrap()).collect();
    let want_z: Vec<(String, f64)> = con.zrange_withscores("ranked", 0, -1).unwrap();
    let mut want_s: Vec<String> = con.smembers("pool").unwrap();
    want_s.sort();
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(), want_list);
    assert_eq!(want_list.len(), 4992);
    let got: Vec<Vec<String>> = ["taken", "taken2", "taken3"].iter().map(|k| con.lrange(*k, 0, -1).unwrap()).collect();
    assert_eq!(got, moved);
    assert_eq!(con.zrange_withscores::<_, Vec<(String, f64)>>("ranked", 0, -1).unwrap(), want_z);
    let mut got_s: Vec<String> = con.smembers("pool").unwrap();
    got_s.sort();
    assert_eq!(got_s, want_s);
    assert_eq!(want_s.len(), 4995);
    let got: Vec<Vec<String>> = ["claimed", "claimed2", "claimed3"].iter().map(|k| con.smembers(*k).unwrap()).collect();
    assert_eq!(got, claimed);
    assert_eq!(con.lrange::<_, Vec<String>>("waitq", 0, -1).unwrap(), ["b", "c"]);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// Appends to big values are journaled as what they added: XADD with the
/// ID it got (its trim as the exact XTRIM that removes the same entries),
/// APPEND, SETBIT and SETRANGE as sent; the values replay exactly.
#[test]
fn appends_to_big_values_are_journaled_as_what_they_added() {
    let dir = TempDir::new("journal-appends");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("XADD").arg("events").arg("*").arg("order").arg(format!("o-{i:05}")).arg("status").arg("paid").ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let _: () = con.set("log", "x".repeat(100_000)).unwrap();
    let _: () = con.setbit("bits", 800_000, true).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    for _ in 0..3 {
        let _: String =
            redis::cmd("XADD").arg("events").arg("MAXLEN").arg("~").arg(2000).arg("*").arg("order").arg("o").query(&mut con).unwrap();
    }
    let _: i64 = redis::cmd("XTRIM").arg("events").arg("MAXLEN").arg("~").arg(1500).query(&mut con).unwrap();
    let _: i64 = con.append("log", "more").unwrap();
    let _: () = con.setbit("bits", 7, true).unwrap();
    let _: i64 = con.setrange("log", 10, "edit").unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 800, "{added} bytes journaled for eight edits of big values");
    let events: redis::Value = redis::cmd("XRANGE").arg("events").arg("-").arg("+").query(&mut con).unwrap();
    let info: redis::Value = redis::cmd("XINFO").arg("STREAM").arg("events").query(&mut con).unwrap();
    let log: String = con.get("log").unwrap();
    let bits: Vec<u8> = con.get("bits").unwrap();
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(redis::cmd("XRANGE").arg("events").arg("-").arg("+").query::<redis::Value>(&mut con).unwrap(), events);
    assert_eq!(redis::cmd("XINFO").arg("STREAM").arg("events").query::<redis::Value>(&mut con).unwrap(), info);
    assert_eq!(con.get::<_, String>("log").unwrap(), log);
    assert_eq!(con.get::<_, Vec<u8>>("bits").unwrap(), bits);
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// Consumer-group reads change the group, not the entries: XREADGROUP is
/// journaled as Redis propagates it (XCLAIM per entry delivered, XGROUP
/// SETID, XGROUP CREATECONSUMER), not as the whole stream, and the groups
/// replay to the same pending entries, owners, delivery counts and last
/// IDs.
#[test]
fn group_reads_are_journaled_as_what_they_changed() {
    let dir = TempDir::new("journal-groups");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("XADD").arg("orders").arg("*").arg("order").arg(format!("o-{i:05}")).arg("status").arg("paid").ignore();
    }
    p.query::<()>(&mut con).unwrap();
    redis::cmd("XGROUP").arg("CREATE").arg("orders").arg("billing").arg("0").query::<()>(&mut con).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let read = |con: &mut Connection, consumer: &str, count: usize, id: &str, noack: bool| {
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP").arg("billing").arg(consumer).arg("COUNT").arg(count);
        if noack {
            c.arg("NOACK");
        }
        c.arg("STREAMS").arg("orders").arg(id).query::<redis::Value>(con).unwrap();
    };
    read(&mut con, "alice", 3, ">", false);
    read(&mut con, "bob", 2, ">", false);
    read(&mut con, "alice", 10, "0", false);
    read(&mut con, "carol", 1, ">", true);
    read(&mut con, "dave", 5, "0", false);
    let pending: Vec<(String, String, u64, u64)> =
        redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(1).query(&mut con).unwrap();
    let _: i64 = redis::cmd("XACK").arg("orders").arg("billing").arg(&pending[0].0).query(&mut con).unwrap();
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 3000, "{added} bytes journaled for five group reads and an XACK");
    // Pending entries without their idle times (they move on).
    let pel = |con: &mut Connection| -> Vec<(String, String, u64)> {
        let v: Vec<(String, String, u64, u64)> =
            redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(100).query(con).unwrap();
        v.into_iter().map(|(id, owner, _, n)| (id, owner, n)).collect()
    };
    let consumers = |con: &mut Connection| -> Vec<(String, u64)> {
        let v: Vec<std::collections::HashMap<String, redis::Value>> =
            redis::cmd("XINFO").arg("CONSUMERS").arg("orders").arg("billing").query(con).unwrap();
        v.iter()
            .map(|c| (redis::from_redis_value(c["name"].clone()).unwrap(), redis::from_redis_value(c["pending"].clone()).unwrap()))
            .collect()
    };
    let want =
        (pel(&mut con), consumers(&mut con), redis::cmd("XINFO").arg("GROUPS").arg("orders").query::<redis::Value>(&mut con).unwrap());
    assert_eq!(want.0.len(), 4, "{:?}", want.0);
    assert_eq!(want.1.len(), 4);
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    let got =
        (pel(&mut con), consumers(&mut con), redis::cmd("XINFO").arg("GROUPS").arg("orders").query::<redis::Value>(&mut con).unwrap());
    assert_eq!(got, want);
    // The restored times are the deliveries' own: nothing reads as idle for
    // longer than the test has run.
    let v: Vec<(String, String, u64, u64)> =
        redis::cmd("XPENDING").arg("orders").arg("billing").arg("-").arg("+").arg(100).query(&mut con).unwrap();
    assert!(v.iter().all(|p| p.2 < 60_000), "{v:?}");
    drop(con);
    drop(s);
    check_aof(dir.path());
}

/// A script's writes are journaled as the commands it ran where they are
/// deterministic (an RPUSH onto a big list adds one short command, not
/// the list), and a script that starts on one shard and then needs
/// another (its first run is undone and it runs again) leaves exactly one
/// run's effects behind.
#[test]
fn a_script_on_a_big_list_journals_its_commands_once() {
    let dir = TempDir::new("journal-script-args");
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let items: Vec<String> = (0..5000).map(|i| format!("order-{i:05}-{}", "x".repeat(20))).collect();
    let _: () = con.rpush("orders", &items).unwrap();
    let file = incr_file(dir.path());
    let before = std::fs::metadata(&file).unwrap().len();
    let push = "redis.call('DECR', KEYS[2]); return redis.call('RPUSH', KEYS[1], ARGV[1])";
    for i in 0..20 {
        let _: i64 =
            redis::cmd("EVAL").arg(push).arg(2).arg("orders").arg("{orders}stock").arg(format!("new-{i}")).query(&mut con).unwrap();
    }
    let added = std::fs::metadata(&file).unwrap().len() - before;
    assert!(added < 4000, "{added} bytes journaled for 20 scripts");
    // A key the script did not declare, on whichever shard it lives: the
    // script may have to start over with both shards held.
    let widen = "redis.call('RPUSH', KEYS[1], 'w'); redis.call('INCR', ARGV[1]); return 1";
    for i in 0..10 {
        let _: i64 = redis::cmd("EVAL").arg(widen).arg(1).arg("orders").arg(format!("elsewhere-{i}")).query(&mut con).unwrap();
    }
    let want: Vec<String> = con.lrange("orders", 0, -1).unwrap();
    assert_eq!(want.len(), 5030);
    s.signal("KILL");
    drop(s);
    let s = journaled(dir.path(), "always");
    let mut con = loaded(&s);
    assert_eq!(con.lrange::<_, Vec<String>>("orders", 0, -1).unwrap(), want);
    assert_eq!(con.get::<_, i64>("{orders}stock").unwrap(), -20);
    for i in 0..10 {
        assert_eq!(con.get::<_, i64>(format!("elsewhere-{i}")).unwrap(), 1);
    }
    drop(con);
    drop(s);
    check_aof(dir.path());
}
