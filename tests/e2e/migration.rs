//! Live slot migration against real processes: keys of every type (lists
//! and sets included) move with their TTLs; a fuzz run where cluster clients write while
//! cluster-admin moves slots back and forth, adds a node, rebalances and
//! drains it, after which every acknowledged write is there exactly once;
//! and failures (a node killed mid-migration) that leave the source owning
//! the slots with nothing duplicated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use damselfly_tests::cluster::*;
use damselfly_tests::Server;
use rand::{Rng, SeedableRng};

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `cluster-admin move-slots`; (success, stdout, stderr).
fn move_slots(seed: u16, from: u16, to: u16, slots: &str) -> (bool, String, String) {
    admin(seed, &["move-slots", "--from", &addr(from), "--to", &addr(to), "--slots", slots])
}

fn keyslot(port: u16, key: &str) -> u16 {
    let r = Server::raw_at(port).cmd(&["CLUSTER", "KEYSLOT", key]);
    r.trim_start_matches(':').trim().parse().expect("KEYSLOT")
}

fn count_in_slot(port: u16, slot: u16) -> usize {
    let r = Server::raw_at(port).cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    r.trim_start_matches(':').trim().parse().expect("COUNTKEYSINSLOT")
}

#[test]
fn keys_of_every_type_move_with_their_ttls() {
    let (c, _) = Cluster::start(2);
    let slot = keyslot(c.ports[0], "{order}");
    let src = slot_owner_port(c.ports[0], slot).expect("owner");
    let dst = *c.ports.iter().find(|&&p| p != src).expect("other node");
    let mut raw = Server::raw_at(src);
    for cmd in [
        &["SET", "{order}s", "hello", "EX", "1000"][..],
        &["SET", "{order}n", "42"],
        &["HSET", "{order}h", "f1", "v1", "f2", "v2"],
        &["PEXPIRE", "{order}h", "500000"],
        &["ZADD", "{order}z", "1.5", "a", "2", "b"],
        &["JSON.SET", "{order}j", "$", r#"{"items":[1,2],"paid":true}"#],
        &["RPUSH", "{order}l", "x", "y", "z"],
        &["SADD", "{order}set", "m"],
        &["XADD", "{order}x", "1-1", "f", "v"],
        &["XGROUP", "CREATE", "{order}x", "workers", "0"],
        &["XREADGROUP", "GROUP", "workers", "w1", "STREAMS", "{order}x", ">"],
    ] {
        assert!(!raw.cmd(cmd).starts_with('-'), "{cmd:?}");
    }
    for i in 0..2000 {
        assert_eq!(raw.cmd(&["SET", &format!("{{order}}k{i}"), &i.to_string()]), "+OK\r\n");
    }
    assert_eq!(count_in_slot(src, slot), 2008);
    // assign-slots changes owners only: it refuses a slot that holds keys.
    let (ok, _, err) = admin(c.ports[1], &["assign-slots", &addr(dst), &slot.to_string()]);
    assert!(!ok && err.contains("use move-slots"), "{err}");

    let (ok, out, err) = move_slots(c.ports[0], src, dst, &slot.to_string());
    assert!(ok, "move-slots failed: {out}{err}");
    // The source redirects at once and drops its copies soon after.
    assert_eq!(raw.cmd(&["GET", "{order}s"]), format!("-MOVED {slot} 127.0.0.1:{dst}\r\n"));
    assert!(wait_until(10, || count_in_slot(src, slot) == 0), "source kept keys");
    let mut t = Server::raw_at(dst);
    assert_eq!(count_in_slot(dst, slot), 2008);
    assert_eq!(t.cmd(&["LRANGE", "{order}l", "0", "-1"]), "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n");
    assert_eq!(t.cmd(&["SMEMBERS", "{order}set"]), "*1\r\n$1\r\nm\r\n");
    // A stream moves with its group and the entry its consumer holds.
    assert_eq!(t.cmd(&["XPENDING", "{order}x", "workers"]), "*4\r\n:1\r\n$3\r\n1-1\r\n$3\r\n1-1\r\n*1\r\n*2\r\n$2\r\nw1\r\n$1\r\n1\r\n");
    assert_eq!(t.cmd(&["GET", "{order}s"]), "$5\r\nhello\r\n");
    assert_eq!(t.cmd(&["GET", "{order}n"]), "$2\r\n42\r\n");
    assert_eq!(t.cmd(&["OBJECT", "ENCODING", "{order}n"]), "$3\r\nint\r\n");
    assert_eq!(t.cmd(&["HGET", "{order}h", "f2"]), "$2\r\nv2\r\n");
    assert_eq!(t.cmd(&["ZSCORE", "{order}z", "a"]), "$3\r\n1.5\r\n");
    assert_eq!(t.cmd(&["JSON.GET", "{order}j", "$.items[1]"]), "$3\r\n[2]\r\n");
    assert_eq!(t.cmd(&["GET", "{order}k1999"]), "$4\r\n1999\r\n");
    let ttl = |t: &mut damselfly_tests::Raw, k: &str| -> i64 { t.cmd(&["PTTL", k]).trim_start_matches(':').trim().parse().expect("PTTL") };
    assert!((990_000..=1_000_000).contains(&ttl(&mut t, "{order}s")));
    assert!((490_000..=500_000).contains(&ttl(&mut t, "{order}h")));
    assert_eq!(ttl(&mut t, "{order}z"), -1);

    // And back, after a write on the new owner.
    assert_eq!(t.cmd(&["INCR", "{order}n"]), ":43\r\n");
    let (ok, out, err) = move_slots(c.ports[1], dst, src, &slot.to_string());
    assert!(ok, "move back failed: {out}{err}");
    assert_eq!(raw.cmd(&["GET", "{order}n"]), "$2\r\n43\r\n");
    assert!(wait_until(10, || count_in_slot(dst, slot) == 0), "target kept keys");
    assert_eq!(count_in_slot(src, slot), 2008);
    let st = status_json(c.ports[0]).expect("status");
    assert_eq!(st["migrations"].as_array().map(Vec::len).unwrap_or(0), 0, "{st}");

    // Refusals: slots the source does not own, unknown nodes.
    let (ok, _, err) = move_slots(c.ports[0], dst, src, &slot.to_string());
    assert!(!ok && err.contains("not owned"), "{err}");
}

/// A cluster client with timeouts for a busy CI machine running a debug
/// build (a cut-over there may hold writes for a few hundred ms).
fn cluster_client(nodes: Vec<String>) -> redis::RedisResult<redis::cluster::ClusterClient> {
    redis::cluster::ClusterClient::builder(nodes)
        .retries(30)
        .connection_timeout(std::time::Duration::from_secs(20))
        .response_timeout(std::time::Duration::from_secs(30))
        .build()
}

/// What a fuzz client saw acknowledged.
#[derive(Default)]
struct Acked {
    /// Per counter: acknowledged INCRs.
    incrs: Vec<AtomicU64>,
    /// (command kind, key) -> last acknowledged value.
    last: Mutex<HashMap<(char, String), u64>>,
    errors: Mutex<Vec<String>>,
}

const COUNTERS: usize = 10_000;
const CLIENTS: usize = 20;
const KEYS_PER_CLIENT: u64 = 40;

async fn fuzz_client(id: usize, nodes: Vec<String>, acked: Arc<Acked>, stop: Arc<AtomicBool>) {
    let seeds = nodes.clone();
    let client = match cluster_client(nodes) {
        Ok(c) => c,
        Err(e) => return acked.errors.lock().unwrap().push(format!("client {id}: {e}")),
    };
    let mut conn = match client.get_async_connection().await {
        Ok(c) => c,
        Err(e) => return acked.errors.lock().unwrap().push(format!("client {id}: {e}")),
    };
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    let mut seq: u64 = 0;
    while !stop.load(Relaxed) {
        seq += 1;
        let k = rng.random_range(0..KEYS_PER_CLIENT);
        let (kind, key, r): (char, String, redis::RedisResult<()>) = match rng.random_range(0..10) {
            0..=5 => {
                let i = rng.random_range(0..COUNTERS);
                let r: redis::RedisResult<i64> = redis::cmd("INCR").arg(format!("counter:{i}")).query_async(&mut conn).await;
                if r.is_ok() {
                    acked.incrs[i].fetch_add(1, Relaxed);
                }
                ('i', String::new(), r.map(|_| ()))
            }
            6 => {
                let key = format!("str:{id}:{k}");
                let r = redis::cmd("SET").arg(&key).arg(seq).query_async(&mut conn).await;
                ('s', key, r)
            }
            7 => {
                let key = format!("hash:{id}:{k}");
                let r: redis::RedisResult<i64> = redis::cmd("HSET").arg(&key).arg("f").arg(seq).query_async(&mut conn).await;
                ('h', key, r.map(|_| ()))
            }
            8 => {
                let key = format!("zset:{id}:{k}");
                let r: redis::RedisResult<i64> = redis::cmd("ZADD").arg(&key).arg(seq).arg("m").query_async(&mut conn).await;
                ('z', key, r.map(|_| ()))
            }
            _ => {
                let key = format!("json:{id}:{k}");
                let doc = format!(r#"{{"v":{seq}}}"#);
                let r = redis::cmd("JSON.SET").arg(&key).arg("$").arg(doc).query_async(&mut conn).await;
                ('j', key, r)
            }
        };
        match r {
            Ok(()) if kind != 'i' => {
                acked.last.lock().unwrap().insert((kind, key), seq);
            }
            Ok(()) => {}
            Err(e) => {
                // Each node's idea of the slot's owner, to tell a routing
                // disagreement from a client problem.
                let views: Vec<String> = seeds
                    .iter()
                    .map(|n| {
                        let p: u16 = n.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                        let slot = e.redirect_node().map(|(_, s)| s).unwrap_or(0);
                        format!("{p} thinks {:?}", slot_owner_port(p, slot))
                    })
                    .collect();
                acked.errors.lock().unwrap().push(format!("client {id}: {kind} {key}: {e} views {views:?}"))
            }
        }
    }
}

/// Reads back everything the clients saw acknowledged; returns mismatches.
async fn verify(nodes: Vec<String>, acked: &Acked) -> Vec<String> {
    let client = cluster_client(nodes).expect("client");
    let mut conn = client.get_async_connection().await.expect("connect");
    let mut bad = Vec::new();
    for (i, n) in acked.incrs.iter().enumerate() {
        let v: Option<u64> = redis::cmd("GET").arg(format!("counter:{i}")).query_async(&mut conn).await.expect("GET counter");
        if v.unwrap_or(0) != n.load(Relaxed) {
            bad.push(format!("counter:{i} = {v:?}, {} INCRs acknowledged", n.load(Relaxed)));
        }
    }
    let last = acked.last.lock().unwrap().clone();
    for ((kind, key), seq) in last {
        let got: Option<String> = match kind {
            's' => redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET"),
            'h' => redis::cmd("HGET").arg(&key).arg("f").query_async(&mut conn).await.expect("HGET"),
            'z' => redis::cmd("ZSCORE").arg(&key).arg("m").query_async(&mut conn).await.expect("ZSCORE"),
            _ => redis::cmd("JSON.GET").arg(&key).arg("$.v").query_async(&mut conn).await.expect("JSON.GET"),
        };
        let want = if kind == 'j' { format!("[{seq}]") } else { seq.to_string() };
        if got.as_deref() != Some(want.as_str()) {
            bad.push(format!("{key} = {got:?}, last acknowledged {want}"));
        }
    }
    bad
}

/// Random slot ranges move between the nodes of a 3-node cluster while 20
/// cluster clients write; a 4th node joins, gets a share by rebalance and
/// is drained again by remove-node. Every acknowledged INCR is counted
/// exactly once and every key holds its last acknowledged value.
#[test]
fn fuzz_moves_under_write_load_lose_nothing() {
    // Several shards per node: commands cross threads, and each shard
    // streams its own part of a move.
    let (mut c, _) = Cluster::start_with(3, &["--shards", "3"]);
    let nodes: Vec<String> = c.ports.iter().map(|&p| format!("redis://127.0.0.1:{p}")).collect();
    let acked = Arc::new(Acked { incrs: (0..COUNTERS).map(|_| AtomicU64::new(0)).collect(), ..Default::default() });
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let workers: Vec<_> = (0..CLIENTS).map(|id| rt.spawn(fuzz_client(id, nodes.clone(), acked.clone(), stop.clone()))).collect();

    let mut rng = rand::rng();
    let mut moves = 0;
    let started = Instant::now();
    let step = |c: &Cluster, rng: &mut rand::rngs::ThreadRng| {
        let ports = c.live_ports();
        let from = ports[rng.random_range(0..ports.len())];
        let to = *ports.iter().filter(|&&p| p != from).nth(rng.random_range(0..ports.len() - 1)).expect("another node");
        // A random run of up to 300 slots the source owns.
        let st = status_json(from).expect("status");
        let me = st["members"].as_array().expect("members").iter().find(|m| m["client_addr"] == addr(from)).cloned().expect("me");
        let ranges = me["slots"].as_array().cloned().unwrap_or_default();
        assert!(!ranges.is_empty(), "{from} owns no slots: {st}");
        let r = &ranges[rng.random_range(0..ranges.len())];
        let (a, b) = (r[0].as_u64().expect("first slot"), r[1].as_u64().expect("last slot"));
        let first = rng.random_range(a..=b);
        let last = (first + rng.random_range(0..300)).min(b);
        let (ok, out, err) = move_slots(from, from, to, &format!("{first}-{last}"));
        assert!(ok, "move {first}-{last} {from}->{to} failed: {out}{err}");
        eprintln!("moved {first}-{last} {from} -> {to}: {}", err.lines().last().unwrap_or_default());
    };
    for _ in 0..4 {
        step(&c, &mut rng);
        moves += 1;
    }
    // A 4th node joins, takes its share, then is drained and removed.
    let dir = TempDir::new("node3");
    let fourth = Server::start_with(&["--cluster", "--dir", dir.path(), "--shards", "2"]);
    let (ok, out, err) = admin(c.ports[0], &["add-node", &addr(fourth.port)]);
    assert!(ok, "add-node: {out}{err}");
    let (ok, out, err) = admin(c.ports[1], &["rebalance"]);
    assert!(ok, "rebalance: {out}{err}");
    let st = status_json(c.ports[0]).expect("status");
    let share = st["members"].as_array().expect("members").iter().find(|m| m["client_addr"] == addr(fourth.port)).expect("4th")
        ["slot_count"]
        .as_u64()
        .unwrap_or(0);
    assert!((4000..=4200).contains(&share), "4th node got {share} slots");
    c.ports.push(fourth.port);
    c.nodes.push(Some(fourth));
    for _ in 0..3 {
        step(&c, &mut rng);
        moves += 1;
    }
    let (ok, out, err) = admin(c.ports[0], &["remove-node", &addr(c.ports[3])]);
    assert!(ok, "remove-node: {out}{err}");
    c.nodes[3] = None;
    for _ in 0..3 {
        step(&c, &mut rng);
        moves += 1;
    }
    eprintln!("{moves} moves plus a rebalance and a drain in {:?}", started.elapsed());
    stop.store(true, Relaxed);
    for w in workers {
        rt.block_on(w).expect("worker");
    }
    let errors = acked.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "{} client errors, first: {:?}", errors.len(), &errors[..errors.len().min(5)]);
    let total: u64 = acked.incrs.iter().map(|n| n.load(Relaxed)).sum();
    eprintln!("{total} INCRs and {} other keys acknowledged", acked.last.lock().unwrap().len());
    assert!(total > 1000, "too little load: {total}");
    let live: Vec<String> = c.live_ports().iter().map(|&p| format!("redis://127.0.0.1:{p}")).collect();
    let bad = rt.block_on(verify(live, &acked));
    assert!(bad.is_empty(), "{} mismatches, first: {:?}", bad.len(), &bad[..bad.len().min(10)]);
    drop(dir);
}

// ------------------------------------------------------------- failures

/// Hash tags whose slots `port` serves, `n` of them, with their slots.
fn local_tags(port: u16, n: usize) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for i in 0..10_000 {
        let tag = format!("t{i}");
        let slot = keyslot(port, &format!("{{{tag}}}"));
        if slot_owner_port(port, slot) == Some(port) && !out.iter().any(|(_, s)| *s == slot) {
            out.push((tag, slot));
            if out.len() == n {
                break;
            }
        }
    }
    assert_eq!(out.len(), n, "not enough local slots");
    out
}

/// Writes `per_tag` keys `{tag}:i` = a 100-byte value derived from i, per
/// tag, pipelined; returns how many.
fn fill(port: u16, tags: &[(String, u16)], per_tag: usize) -> usize {
    let mut raw = Server::raw_at(port);
    let mut n = 0;
    for (tag, _) in tags {
        for chunk in (0..per_tag).collect::<Vec<_>>().chunks(1000) {
            let mut buf = Vec::new();
            for &i in chunk {
                let (k, v) = (format!("{{{tag}}}:{i}"), value(i));
                buf.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).as_bytes());
            }
            raw.send(&buf);
            for _ in chunk {
                assert_eq!(raw.read_reply(), b"+OK\r\n");
                n += 1;
            }
        }
    }
    n
}

fn value(i: usize) -> String {
    format!("{i:0>100}")
}

fn slot_list(tags: &[(String, u16)]) -> String {
    tags.iter().map(|(_, s)| s.to_string()).collect::<Vec<_>>().join(",")
}

fn keys_in(port: u16, tags: &[(String, u16)]) -> usize {
    tags.iter().map(|(_, s)| count_in_slot(port, *s)).sum()
}

/// Starts `move-slots` in the background.
fn spawn_move(seed: u16, from: u16, to: u16, slots: &str) -> std::process::Child {
    std::process::Command::new(cluster_admin())
        .args(["--seed", &addr(seed), "move-slots", "--from", &addr(from), "--to", &addr(to), "--slots", slots])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cluster-admin")
}

/// Waits for a background move; (success, stderr).
fn finish(child: std::process::Child) -> (bool, String) {
    let out = child.wait_with_output().expect("cluster-admin");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn no_migration(port: u16) -> bool {
    status_json(port).is_some_and(|st| st["migrations"].as_array().is_none_or(Vec::is_empty))
}

/// Every key `fill` wrote is on `port` with its value.
fn all_there(port: u16, tags: &[(String, u16)], per_tag: usize) {
    let mut raw = Server::raw_at(port);
    for (tag, _) in tags {
        for i in (0..per_tag).step_by(97) {
            let v = value(i);
            assert_eq!(raw.cmd(&["GET", &format!("{{{tag}}}:{i}")]), format!("${}\r\n{v}\r\n", v.len()));
        }
    }
}

struct Three {
    c: Cluster,
    src: usize,
    dst: usize,
    tags: Vec<(String, u16)>,
}

const TAGS: usize = 8;
const PER_TAG: usize = 12_000;

/// A 3-node cluster with ~100k keys in a few slots of one node; a move of
/// those slots to another node is started and has begun to arrive there.
fn moving() -> (Three, std::process::Child) {
    let (c, _) = Cluster::start(3);
    let (src, dst) = (0, 1);
    let tags = local_tags(c.ports[src], TAGS);
    assert_eq!(fill(c.ports[src], &tags, PER_TAG), TAGS * PER_TAG);
    let child = spawn_move(c.ports[2], c.ports[src], c.ports[dst], &slot_list(&tags));
    assert!(wait_until(30, || keys_in(c.ports[dst], &tags) > 0), "no key arrived");
    (Three { c, src, dst, tags }, child)
}

#[test]
fn target_killed_mid_migration_leaves_the_source_whole() {
    let (mut t, child) = moving();
    let arrived = keys_in(t.c.ports[t.dst], &t.tags);
    t.c.nodes[t.dst].take().expect("target").signal("KILL");
    let (ok, err) = finish(child);
    assert!(!ok, "the move succeeded without its target");
    assert!(err.contains("aborted"), "{err}");
    eprintln!("target killed with {arrived} keys arrived; move failed: {}", err.lines().last().unwrap_or_default());
    let src = t.c.ports[t.src];
    assert!(wait_until(10, || no_migration(src)), "migration still recorded");
    assert_eq!(keys_in(src, &t.tags), TAGS * PER_TAG);
    // The dead target's slots are lost: the source serves its own only
    // when the cluster does not require full coverage.
    assert_eq!(Server::raw_at(src).cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]), "+OK\r\n");
    all_there(src, &t.tags, PER_TAG);
    // The target comes back empty; once accepted back it takes part
    // again: a new move works.
    let dst_port = t.c.ports[t.dst];
    let back = Server::start_at(dst_port, &["--cluster", "--dir", t.c.dirs[t.dst].path()]).expect("restart target");
    t.c.nodes[t.dst] = Some(back);
    assert_eq!(keys_in(dst_port, &t.tags), 0);
    accept_back(src, dst_port);
    let (ok, out, err) = move_slots(src, src, dst_port, &slot_list(&t.tags));
    assert!(ok, "{out}{err}");
    assert_eq!(keys_in(dst_port, &t.tags), TAGS * PER_TAG);
    all_there(dst_port, &t.tags, PER_TAG);
}

#[test]
fn aborted_migration_cleans_the_target() {
    let (t, child) = moving();
    let (ok, out, err) = admin(t.c.ports[2], &["abort-migration"]);
    assert!(ok, "{out}{err}");
    let (ok, err) = finish(child);
    assert!(!ok && err.contains("aborted"), "{err}");
    let (src, dst) = (t.c.ports[t.src], t.c.ports[t.dst]);
    // The target drops what it received; the source kept everything.
    assert!(wait_until(10, || keys_in(dst, &t.tags) == 0), "target kept {} keys", keys_in(dst, &t.tags));
    assert_eq!(keys_in(src, &t.tags), TAGS * PER_TAG);
    all_there(src, &t.tags, PER_TAG);
    assert!(no_migration(src));
    assert_eq!(slot_owner_port(dst, t.tags[0].1), Some(src));
}

#[test]
fn stalled_target_times_out_and_the_source_keeps_the_slots() {
    let (t, child) = moving();
    // The target stops answering (as behind a dead link) for longer than
    // a batch may take.
    t.c.nodes[t.dst].as_ref().expect("target").signal("STOP");
    let (ok, err) = finish(child);
    t.c.nodes[t.dst].as_ref().expect("target").signal("CONT");
    assert!(!ok && err.contains("aborted"), "{err}");
    let (src, dst) = (t.c.ports[t.src], t.c.ports[t.dst]);
    assert!(wait_until(20, || keys_in(dst, &t.tags) == 0), "target kept {} keys", keys_in(dst, &t.tags));
    assert_eq!(keys_in(src, &t.tags), TAGS * PER_TAG);
    assert!(no_migration(src));
}

#[test]
fn source_killed_mid_migration_is_aborted_when_it_restarts() {
    let (mut t, child) = moving();
    let src = t.c.ports[t.src];
    t.c.nodes[t.src].take().expect("source").signal("KILL");
    let (ok, err) = finish(child);
    assert!(!ok, "the move succeeded without its source: {err}");
    let dst = t.c.ports[t.dst];
    // While the source is down the migration stays recorded.
    assert!(!no_migration(dst));
    let back = Server::start_at(src, &["--cluster", "--dir", t.c.dirs[t.src].path()]).expect("restart source");
    t.c.nodes[t.src] = Some(back);
    // On restart it abandons the migration: the configuration keeps the
    // slots with it, and the target drops its partial copy. (Its own keys
    // were in memory only and died with it: it serves its slots again once
    // an operator accepts that.)
    assert!(wait_until(20, || no_migration(dst)), "migration not abandoned");
    assert!(wait_until(10, || keys_in(dst, &t.tags) == 0), "target kept {} keys", keys_in(dst, &t.tags));
    for (_, slot) in &t.tags {
        assert_eq!(slot_owner_port(dst, *slot), Some(src));
    }
    accept_back(dst, src);
    assert!(wait_until(10, || Server::raw_at(src).cmd(&["SET", &format!("{{{}}}:x", t.tags[0].0), "1"]) == "+OK\r\n"));
}

// ------------------------------------------------- Redis's cluster tooling

/// redis-cli, which scripts/test installs: a missing tool fails the test
/// rather than letting it pass without checking anything.
fn require_redis_cli() {
    let ok = std::process::Command::new("redis-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "redis-cli is not installed (scripts/test installs Debian's redis-tools)");
}

fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("redis-cli").args(args).output().expect("run redis-cli");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// `redis-cli --cluster reshard` and `rebalance` drive CLUSTER SETSLOT; the
/// slots move with their keys and the cluster checks out afterwards.
#[test]
fn redis_cli_reshard_and_rebalance_move_keys() {
    require_redis_cli();
    let (c, _) = Cluster::start(3);
    let nodes: Vec<String> = c.ports.iter().map(|&p| format!("redis://127.0.0.1:{p}")).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = cluster_client(nodes.clone()).expect("client");
        let mut conn = client.get_async_connection().await.expect("connect");
        for i in 0..3000 {
            let _: () = redis::cmd("SET").arg(format!("k:{i}")).arg(i).query_async(&mut conn).await.expect("SET");
        }
    });
    let seed = addr(c.ports[0]);
    let (from, to) = (myid(c.ports[0]), myid(c.ports[1]));
    let (ok, out) =
        redis_cli(&["--cluster", "reshard", &seed, "--cluster-from", &from, "--cluster-to", &to, "--cluster-slots", "60", "--cluster-yes"]);
    assert!(ok, "{out}");
    let st = status_json(c.ports[2]).expect("status");
    let counts: Vec<u64> = st["members"].as_array().expect("members").iter().map(|m| m["slot_count"].as_u64().unwrap_or(0)).collect();
    assert!(counts.contains(&(5461 - 60)) || counts.contains(&(5462 - 60)), "{counts:?}");
    let (ok, out) = redis_cli(&["--cluster", "rebalance", &seed, "--cluster-yes"]);
    assert!(ok, "{out}");
    let (ok, out) = redis_cli(&["--cluster", "check", &seed]);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    rt.block_on(async {
        let client = cluster_client(nodes).expect("client");
        let mut conn = client.get_async_connection().await.expect("connect");
        for i in (0..3000).step_by(7) {
            let v: i64 = redis::cmd("GET").arg(format!("k:{i}")).query_async(&mut conn).await.expect("GET");
            assert_eq!(v, i);
        }
    });
    let total: usize =
        c.ports.iter().map(|&p| Server::raw_at(p).cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse::<usize>().unwrap_or(0)).sum();
    assert_eq!(total, 3000, "keys lost or left behind");
}

#[test]
fn setslot_replies() {
    let (c, _) = Cluster::start(2);
    let me = myid(c.ports[0]);
    let other = myid(c.ports[1]);
    let mine = slot_owner_port(c.ports[0], 0).expect("owner") == c.ports[0];
    let (p, slot) = if mine { (c.ports[0], "0") } else { (c.ports[1], "0") };
    let (own, peer) = if mine { (me.clone(), other.clone()) } else { (other.clone(), me.clone()) };
    let mut raw = Server::raw_at(p);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["CLUSTER", "SETSLOT", "16384", "STABLE"], "-ERR Invalid or out of range slot\r\n".into()),
        (vec!["CLUSTER", "SETSLOT", slot, "STABLE"], "+OK\r\n".into()),
        (
            vec!["CLUSTER", "SETSLOT", slot, "FOO", &peer],
            "-ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP\r\n".into(),
        ),
        (vec!["CLUSTER", "SETSLOT", slot, "IMPORTING", &peer], "-ERR I'm already the owner of hash slot 0\r\n".into()),
        (vec!["CLUSTER", "SETSLOT", slot, "NODE", "nobody"], "-ERR Unknown node nobody\r\n".into()),
        (vec!["CLUSTER", "SETSLOT", slot, "NODE", &own], "+OK\r\n".into()),
        (vec!["CLUSTER", "SETSLOT", slot, "MIGRATING", "nobody"], "-ERR I don't know about node nobody\r\n".into()),
    ];
    for (cmd, want) in &cases {
        assert_eq!(&raw.cmd(cmd), want, "{cmd:?}");
    }
    // The slot's keys move with it; the old owner then redirects.
    assert_eq!(raw.cmd(&["SET", "{06S}k", "v"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["CLUSTER", "KEYSLOT", "{06S}k"]), ":0\r\n");
    assert_eq!(raw.cmd(&["CLUSTER", "SETSLOT", "0", "MIGRATING", &peer]), "+OK\r\n");
    assert_eq!(raw.cmd(&["CLUSTER", "GETKEYSINSLOT", "0", "10"]), "*0\r\n");
    let q = if mine { c.ports[1] } else { c.ports[0] };
    assert_eq!(raw.cmd(&["GET", "{06S}k"]), format!("-MOVED 0 127.0.0.1:{q}\r\n"));
    assert_eq!(Server::raw_at(q).cmd(&["GET", "{06S}k"]), "$1\r\nv\r\n");
    assert_eq!(raw.cmd(&["CLUSTER", "SETSLOT", "0", "MIGRATING", &peer]), "-ERR I'm not the owner of hash slot 0\r\n");
}

/// A client blocked on a key whose slot moves away is redirected.
#[test]
fn blocked_client_follows_its_slot() {
    let (c, _) = Cluster::start(2);
    let slot = keyslot(c.ports[0], "{jobs}");
    let src = slot_owner_port(c.ports[0], slot).expect("owner");
    let dst = *c.ports.iter().find(|&&p| p != src).expect("other");
    let mut w = Server::raw_at(src);
    w.send_cmd(&[b"BZPOPMIN", b"{jobs}q", b"10"]);
    Server::raw_at(src).wait_blocked(1);
    let (ok, out, err) = move_slots(c.ports[0], src, dst, &slot.to_string());
    assert!(ok, "{out}{err}");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), format!("-MOVED {slot} 127.0.0.1:{dst}\r\n"));
    // On the new owner it blocks and is served as usual.
    let mut w = Server::raw_at(dst);
    w.send_cmd(&[b"BZPOPMIN", b"{jobs}q", b"10"]);
    Server::raw_at(dst).wait_blocked(1);
    assert_eq!(Server::raw_at(dst).cmd(&["ZADD", "{jobs}q", "1", "j"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*3\r\n$7\r\n{jobs}q\r\n$1\r\nj\r\n$1\r\n1\r\n");
}

/// Sharded pub/sub in a cluster: shard channels are routed by slot (MOVED
/// to the owner, CROSSSLOT for channels of several slots), SPUBLISH on the
/// owner reaches its subscribers, and when the slot moves to another node
/// its subscribers are told `sunsubscribe` and leave subscribed mode.
#[test]
fn shard_channel_subscribers_are_unsubscribed_when_their_slot_moves() {
    let (c, _) = Cluster::start(2);
    let slot = keyslot(c.ports[0], "{orders}");
    let src = slot_owner_port(c.ports[0], slot).expect("owner");
    let dst = *c.ports.iter().find(|&&p| p != src).expect("other node");
    let moved = format!("-MOVED {slot} 127.0.0.1:{src}\r\n");
    assert_eq!(Server::raw_at(dst).cmd(&["SPUBLISH", "{orders}new", "x"]), moved);
    assert_eq!(Server::raw_at(dst).cmd(&["SSUBSCRIBE", "{orders}new"]), moved);
    let mut sub = Server::raw_at(src);
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "{orders}new", "{other}x"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "{orders}new", "{orders}paid"]), "*3\r\n$10\r\nssubscribe\r\n$11\r\n{orders}new\r\n:1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*3\r\n$10\r\nssubscribe\r\n$12\r\n{orders}paid\r\n:2\r\n");
    let mut publ = Server::raw_at(src);
    assert_eq!(publ.cmd(&["SPUBLISH", "{orders}new", "o1"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*3\r\n$8\r\nsmessage\r\n$11\r\n{orders}new\r\n$2\r\no1\r\n");

    let (ok, out, err) = move_slots(c.ports[0], src, dst, &slot.to_string());
    assert!(ok, "move-slots failed: {out}{err}");
    // Both channels are dropped, each with its notice (in either order).
    let notices: Vec<String> = (0..2).map(|_| String::from_utf8_lossy(&sub.read_reply()).into_owned()).collect();
    let mut names: Vec<&str> = notices.iter().map(|n| n.split("\r\n").nth(4).unwrap_or_default()).collect();
    names.sort_unstable();
    assert_eq!(names, ["{orders}new", "{orders}paid"], "{notices:?}");
    assert!(notices.iter().all(|n| n.starts_with("*3\r\n$12\r\nsunsubscribe\r\n")), "{notices:?}");
    assert!(notices.iter().any(|n| n.ends_with(":0\r\n")), "{notices:?}");
    // Out of subscribed mode: an ordinary command is redirected.
    assert_eq!(sub.cmd(&["GET", "{orders}k"]), format!("-MOVED {slot} 127.0.0.1:{dst}\r\n"));
    assert_eq!(Server::raw_at(dst).cmd(&["SPUBLISH", "{orders}new", "o2"]), ":0\r\n");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDCHANNELS"]), "*0\r\n");
}

/// Client-side caching across a slot move: the source drops the keys of a
/// slot it no longer serves, and clients that read one (tracking table) or
/// broadcast its prefix (BCAST) are told, as Redis tells them when a
/// slot's keys are deleted.
#[test]
fn a_moved_slot_invalidates_the_keys_clients_track() {
    let (c, _) = Cluster::start(2);
    let slot = keyslot(c.ports[0], "{cart}");
    let src = slot_owner_port(c.ports[0], slot).expect("owner");
    let dst = *c.ports.iter().find(|&&p| p != src).expect("other node");
    let mut w = Server::raw_at(src);
    assert_eq!(w.cmd(&["SET", "{cart}a", "1"]), "+OK\r\n");
    let mut reader = Server::raw_at(src);
    reader.cmd(&["HELLO", "3"]);
    assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "ON"]), "+OK\r\n");
    assert_eq!(reader.cmd(&["GET", "{cart}a"]), "$1\r\n1\r\n");
    let mut bcast = Server::raw_at(src);
    bcast.cmd(&["HELLO", "3"]);
    assert_eq!(bcast.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "{cart}"]), "+OK\r\n");

    let (ok, out, err) = move_slots(c.ports[0], src, dst, &slot.to_string());
    assert!(ok, "move-slots failed: {out}{err}");
    let push = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\n{cart}a\r\n";
    assert_eq!(String::from_utf8_lossy(&reader.read_reply()), push);
    assert_eq!(String::from_utf8_lossy(&bcast.read_reply()), push);
    assert_eq!(reader.cmd(&["GET", "{cart}a"]), format!("-MOVED {slot} 127.0.0.1:{dst}\r\n"));
}
