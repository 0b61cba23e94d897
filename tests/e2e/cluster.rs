//! Cluster mode against real processes: routing errors, CLUSTER reply
//! shapes, the redis crate's cluster client and redis-cli on a node started
//! with `--cluster`; 3-node clusters formed by cluster-admin through the Raft
//! group, including losing and restarting the leader; and standalone mode
//! answering as Redis does without cluster support.

use std::process::Command;
use std::time::{Duration, Instant};

use damselfly_tests::cluster::*;
use damselfly_tests::{key_slot, Server};

/// A one-node cluster (created by cluster-admin: it owns every slot).
fn single_node_cluster(dir: &TempDir) -> Server {
    let s = Server::start_with(&["--cluster", "--dir", dir.path()]);
    let (ok, out, err) = admin(s.port, &["create"]);
    assert!(ok, "create failed: {out}{err}");
    assert!(wait_until(10, || s.raw().cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")));
    s
}

#[test]
fn standalone_has_cluster_support_disabled() {
    let s = Server::start();
    let mut c = s.raw();
    for cmd in [&["CLUSTER", "INFO"][..], &["CLUSTER", "KEYSLOT", "foo"], &["ASKING"], &["READONLY"], &["READWRITE"]] {
        assert_eq!(c.cmd(cmd), "-ERR This instance has cluster support disabled\r\n", "{cmd:?}");
    }
    // Multi-key commands across slots are fine without cluster mode.
    assert_eq!(c.cmd(&["MSET", "foo", "1", "bar", "2"]), "+OK\r\n");
    let info = c.cmd(&["INFO", "cluster"]);
    assert!(info.contains("cluster_enabled:0"), "{info}");
}

#[test]
fn unassigned_slots_are_not_served() {
    let dir = TempDir::new("unassigned");
    let s = Server::start_with(&["--cluster", "--dir", dir.path()]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["GET", "foo"]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let info = c.cmd(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"), "{info}");
    assert!(c.cmd(&["INFO", "cluster"]).contains("cluster_enabled:1"));
    // The client address is in the cluster map: it stays as started.
    let reply = c.cmd(&["CONFIG", "SET", "port", &damselfly_tests::free_port().to_string()]);
    assert!(reply.starts_with("-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"), "{reply}");
    // The node id is kept in the data directory.
    let id = c.cmd(&["CLUSTER", "MYID"]);
    drop(s);
    let s = Server::start_with(&["--cluster", "--dir", dir.path()]);
    assert_eq!(s.raw().cmd(&["CLUSTER", "MYID"]), id);
}

#[test]
fn routing_and_introspection_on_one_node() {
    let dir = TempDir::new("one");
    let s = single_node_cluster(&dir);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "foo", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MSET", "foo", "1", "bar", "2"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(c.cmd(&["MSET", "{u1}a", "1", "{u1}b", "2"]), "+OK\r\n");
    // One database in cluster mode: nothing may leave database 0.
    assert_eq!(c.cmd(&["MOVE", "{u1}a", "1"]), "-ERR MOVE is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["COPY", "{u1}a", "{u1}c", "DB", "1"]), "-ERR Copying to another database is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["COPY", "{u1}a", "{u2}c"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(c.cmd(&["MGET", "{u1}a", "{u1}b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "KEYSLOT", "foo"]), ":12182\r\n");
    let slot = c.cmd(&["CLUSTER", "KEYSLOT", "{u1}a"]);
    let slot = slot.trim_start_matches(':').trim();
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", slot]), ":2\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", slot, "1"]).matches("{u1}").count(), 1);
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "16384"]), "-ERR Invalid slot\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", "0", "-1"]), "-ERR Invalid slot or number of keys\r\n");
    // A transaction's keys must share a slot: else EXEC fails, discarded.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "{t}1", "a"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["SET", "other", "b"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(c.cmd(&["EXISTS", "{t}1"]), ":0\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "{t}1", "a"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["GET", "{t}2"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n+OK\r\n$-1\r\n");
    // Scripts: keys in several slots get CROSSSLOT unless the script
    // declares allow-cross-slot-keys (EVAL and, once cached, EVALSHA).
    let plain = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1";
    assert_eq!(c.cmd(&["EVAL", plain, "2", "foo", "bar", "x"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    let flagged = format!("#!lua flags=allow-cross-slot-keys\n{plain}");
    assert_eq!(c.cmd(&["EVAL", &flagged, "2", "foo", "bar", "y"]), ":1\r\n");
    assert_eq!(c.cmd(&["MGET", "foo"]), "*1\r\n$1\r\ny\r\n");
    let sha = c.cmd(&["SCRIPT", "LOAD", &flagged]);
    let sha = sha.lines().nth(1).expect("bulk sha").to_string();
    assert_eq!(c.cmd(&["EVALSHA", &sha, "2", "foo", "bar", "z"]), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "bar"]), "$1\r\nz\r\n");
    // Functions: the flag of the function called decides.
    let lib = "#!lua name=xs\n\
               redis.register_function{function_name='xs_set', callback=function(k, a) redis.call('SET', k[1], a[1]); redis.call('SET', k[2], a[1]); return 1 end, flags={'allow-cross-slot-keys'}}\n\
               redis.register_function('plain_set', function(k, a) redis.call('SET', k[1], a[1]); return 1 end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$2\r\nxs\r\n");
    assert_eq!(c.cmd(&["FCALL", "xs_set", "2", "foo", "bar", "f"]), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "foo"]), "$1\r\nf\r\n");
    assert_eq!(c.cmd(&["FCALL", "plain_set", "2", "foo", "bar", "g"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(c.cmd(&["SELECT", "1"]), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), "-ERR SWAPDB is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["ASKING"]), "+OK\r\n");
    assert_eq!(c.cmd(&["READONLY"]), "+OK\r\n");
    assert_eq!(c.cmd(&["READWRITE"]), "+OK\r\n");
    let id = c.cmd(&["CLUSTER", "MYID"]);
    let id = id.lines().nth(1).expect("bulk id").to_string();
    assert_eq!(id.len(), 40);
    let slots = c.cmd(&["CLUSTER", "SLOTS"]);
    assert_eq!(slots, format!("*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{id}\r\n*0\r\n", s.port));
    let nodes = c.cmd(&["CLUSTER", "NODES"]);
    // The bus port is the gRPC port: client port + 10000 by default.
    let epoch = epoch_of(&c.cmd(&["CLUSTER", "INFO"])).expect("epoch");
    let line = format!("{id} 127.0.0.1:{}@{} myself,master - 0 0 {epoch} connected 0-16383\n", s.port, s.port as u32 + 10000);
    assert_eq!(nodes, format!("${}\r\n{line}\r\n", line.len()));
    let shards = c.cmd(&["CLUSTER", "SHARDS"]);
    assert!(shards.starts_with("*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n"), "{shards}");
    assert_eq!(c.cmd(&["CLUSTER", "MYSHARDID"]).len(), 40 + 7);
    let info = c.cmd(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"), "{info}");
    assert!(info.contains("cluster_known_nodes:1\r\ncluster_size:1\r\n"), "{info}");
}

#[test]
fn cluster_client_reads_and_writes() {
    let dir = TempDir::new("client");
    let s = single_node_cluster(&dir);
    let client = redis::cluster::ClusterClient::new(vec![s.url()]).expect("cluster client");
    let mut c = client.get_connection().expect("connect");
    for i in 0..1000 {
        redis::cmd("SET").arg(format!("key:{i}")).arg(i).exec(&mut c).expect("SET");
    }
    for i in (0..1000).step_by(97) {
        let v: i64 = redis::cmd("GET").arg(format!("key:{i}")).query(&mut c).expect("GET");
        assert_eq!(v, i);
    }
}

/// redis-cli, which scripts/test installs: a missing tool fails the test
/// rather than letting it pass without checking anything.
fn redis_cli() -> &'static str {
    let ok = Command::new("redis-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "redis-cli is not installed (scripts/test installs Debian's redis-tools)");
    "redis-cli"
}

#[test]
fn redis_cli_cluster_check_passes() {
    let cli = redis_cli();
    let dir = TempDir::new("cli");
    let s = single_node_cluster(&dir);
    let addr = format!("127.0.0.1:{}", s.port);
    let out = Command::new(cli).args(["--cluster", "check", &addr]).output().expect("run redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("[OK] All 16384 slots covered."), "{text}");
    let out = Command::new(cli).args(["-c", "-p", &s.port.to_string(), "SET", "foo", "bar"]).output().expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

// ------------------------------------------------------- multi-node clusters

#[test]
fn three_nodes_serve_and_redirect() {
    let (c, took) = Cluster::start(3);
    eprintln!("3-node cluster formed by cluster-admin create in {took:?}");
    let ports = c.ports.clone();

    // Exactly one node serves foo; the others redirect to it.
    let replies: Vec<String> = ports.iter().map(|&p| Server::raw_at(p).cmd(&["GET", "foo"])).collect();
    let owner = replies.iter().position(|r| r == "$-1\r\n").expect("one node serves foo");
    for (i, r) in replies.iter().enumerate() {
        if i != owner {
            assert_eq!(r, &format!("-MOVED 12182 127.0.0.1:{}\r\n", ports[owner]));
        }
    }
    let mut raw = Server::raw_at(ports[owner]);
    assert_eq!(raw.cmd(&["MSET", "foo", "1", "{foo}x", "2"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["MSET", "foo", "1", "bar", "2"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    // A subcommand's key is routed like any other (OBJECT declares none
    // itself; OBJECT ENCODING has one).
    assert_eq!(raw.cmd(&["OBJECT", "ENCODING", "foo"]), "$3\r\nint\r\n");
    assert_eq!(raw.cmd(&["MEMORY", "USAGE", "{foo}x"]).as_bytes()[0], b':');
    let other = ports[(owner + 1) % ports.len()];
    let moved = format!("-MOVED 12182 127.0.0.1:{}\r\n", ports[owner]);
    assert_eq!(Server::raw_at(other).cmd(&["OBJECT", "ENCODING", "foo"]), moved);
    assert_eq!(Server::raw_at(other).cmd(&["MEMORY", "USAGE", "foo"]), moved);
    assert_eq!(Server::raw_at(other).cmd(&["OBJECT", "HELP"]).as_bytes()[0], b'*');

    // Reply shapes.
    let info = raw.cmd(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"), "{info}");
    assert!(info.contains("cluster_known_nodes:3\r\ncluster_size:3\r\n"), "{info}");
    // Bus messages are counted, per kind and in total (Redis's layout):
    // probes and their answers both ways, and the Raft group's RPCs.
    let field = |text: &str, name: &str| -> Option<u64> {
        text.split("\r\n").find_map(|l| l.strip_prefix(&format!("{name}:"))).and_then(|v| v.parse().ok())
    };
    let kinds = |info: &str, dir: &str| {
        ["ping", "pong", "publish", "raft"].map(|k| field(info, &format!("cluster_stats_messages_{k}_{dir}")).unwrap_or(0))
    };
    for &p in &ports {
        // A node that has just joined may not have probed every peer yet.
        let mut info = String::new();
        let seen = wait_until(10, || {
            info = Server::raw_at(p).cmd(&["CLUSTER", "INFO"]);
            ["sent", "received"].iter().all(|dir| kinds(&info, dir).iter().filter(|&&n| n > 0).count() == 3)
        });
        assert!(seen, "pings, pongs and Raft messages both ways: {info}");
        for dir in ["sent", "received"] {
            assert_eq!(field(&info, &format!("cluster_stats_messages_{dir}")), Some(kinds(&info, dir).iter().sum()), "{info}");
        }
        let at = |f: &str| info.find(f).unwrap_or(usize::MAX);
        assert!(at("_ping_sent:") < at("_messages_sent:") && at("_messages_sent:") < at("_ping_received:"), "{info}");
    }
    let nodes = raw.cmd(&["CLUSTER", "NODES"]);
    assert_eq!(nodes.matches(" connected").count(), 3, "{nodes}");
    assert_eq!(nodes.matches("myself,master").count(), 1, "{nodes}");
    assert!(raw.cmd(&["CLUSTER", "SLOTS"]).starts_with("*3\r\n*3\r\n:0\r\n"));
    assert!(raw.cmd(&["CLUSTER", "SHARDS"]).starts_with("*3\r\n*4\r\n$5\r\nslots\r\n"));

    // The cluster client over 10,000 keys spread over all slots.
    let urls: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let client = redis::cluster::ClusterClient::new(urls).expect("cluster client");
    let mut conn = client.get_connection().expect("connect");
    for i in 0..10_000 {
        redis::cmd("SET").arg(format!("k:{i}")).arg(i).exec(&mut conn).expect("SET");
    }
    for i in 0..10_000 {
        let v: i64 = redis::cmd("GET").arg(format!("k:{i}")).query(&mut conn).expect("GET");
        assert_eq!(v, i);
    }
    let _: () = redis::cmd("MSET").arg("{t}a").arg(1).arg("{t}b").arg(2).query(&mut conn).expect("hash-tagged MSET");
    let total: i64 = ports
        .iter()
        .map(|&p| {
            let r = Server::raw_at(p).cmd(&["DBSIZE"]);
            r.trim().trim_start_matches(':').parse::<i64>().unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 10_000 + 2 + 2);

    // Tools.
    let cli = redis_cli();
    let addr = format!("127.0.0.1:{}", ports[0]);
    let out = Command::new(cli).args(["--cluster", "check", &addr]).output().expect("redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[OK] All nodes agree about slots configuration."), "{text}");
    assert!(text.contains("[OK] All 16384 slots covered."), "{text}");
    let p = ports[(owner + 1) % 3].to_string();
    let out = Command::new(cli).args(["-c", "-p", &p, "GET", "k:7"]).output().expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    let st = status_json(ports[1]).expect("status");
    assert_eq!(st["members"].as_array().map(Vec::len), Some(3));
    assert!(st["leader_id"].as_str().is_some_and(|l| l.len() == 40));
    let (ok, _, err) = admin(ports[0], &["create", &format!("127.0.0.1:{}", ports[1])]);
    assert!(!ok && err.contains("already part of a cluster"), "{err}");
    // Removing a node that owns slots drains it first: its keys move.
    let owner_id = myid(ports[owner]);
    let (ok, out, err) = admin(ports[0], &["remove-node", &owner_id]);
    assert!(ok, "{out}{err}");
    let st = status_json(ports[(owner + 1) % 3]).expect("status");
    let members = st["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members.iter().map(|m| m["slot_count"].as_u64().unwrap_or(0)).sum::<u64>(), 16384);
    for i in (0..10_000).step_by(7) {
        let v: i64 = redis::cmd("GET").arg(format!("k:{i}")).query(&mut conn).expect("GET after drain");
        assert_eq!(v, i);
    }
}

#[test]
fn leader_loss_and_restart() {
    let (mut c, _) = Cluster::start(3);
    let st = status_json(c.ports[0]).expect("status");
    let leader = st["leader_id"].as_str().expect("leader").to_string();
    let li = c.index_of_id(&leader).expect("leader is a node");
    let leader_port = c.ports[li];
    let survivor = c.ports[(li + 1) % 3];
    let other = c.ports[(li + 2) % 3];

    // Kill the leader: another one is elected and cluster-admin still works.
    let t = Instant::now();
    drop(c.nodes[li].take());
    let elected = wait_until(20, || {
        status_json(survivor).and_then(|s| s["leader_id"].as_str().map(String::from)).is_some_and(|l| !l.is_empty() && l != leader)
    });
    assert!(elected, "no new leader");
    eprintln!("new leader visible through cluster-admin {:?} after killing the old one", t.elapsed());
    let target = myid(other);
    let t = Instant::now();
    let (ok, out, err) = admin(survivor, &["assign-slots", &target, "0-9"]);
    assert!(ok, "{out}{err}");
    // Both survivors serve the new configuration.
    assert!(wait_until(10, || [survivor, other].iter().all(|&p| slot_owner_port(p, 5) == Some(other))));
    eprintln!("config change visible on every live node after {:?}", t.elapsed());

    // Restart the old leader on its port and data dir: same id, new config.
    // It comes back without the keys of its slots (no persistence), so it
    // serves them only once an operator accepts it back.
    let dir = c.dirs[li].path().to_string();
    let restarted = Server::start_at(leader_port, &["--cluster", "--dir", &dir]).expect("restart on the same port");
    c.nodes[li] = Some(restarted);
    assert_eq!(myid(leader_port), leader);
    accept_back(survivor, leader_port);
    assert!(c.wait_all_ok(20), "restarted node did not catch up:\n{}", c.describe());
    assert_eq!(slot_owner_port(leader_port, 5), Some(other));
}

#[test]
fn majority_loss_freezes_changes_and_writes_but_not_reads() {
    let (mut c, _) = Cluster::start(3);
    let keep = c.ports[0];
    let keep_id = myid(keep);
    // A key this node serves, written before the loss.
    let mut raw = Server::raw_at(keep);
    let key = (0..1000).map(|i| format!("key{i}")).find(|k| raw.cmd(&["SET", k, "v"]) == "+OK\r\n").expect("a local key");
    drop(c.nodes[1].take());
    drop(c.nodes[2].take());
    // Cut off from the majority, it refuses writes (the majority could
    // have promoted a replica in its place) but still serves reads of its
    // own slots and still redirects the others.
    assert!(wait_until(10, || raw.cmd(&["SET", &key, "v"]) == "-CLUSTERDOWN The cluster is down\r\n"));
    assert_eq!(raw.cmd(&["GET", &key]), "$1\r\nv\r\n");
    assert!(raw.cmd(&["GET", "foo"]).starts_with("-MOVED 12182 ") || raw.cmd(&["GET", "foo"]) == "$-1\r\n");
    // Config changes fail with an error that says what to do.
    let t = Instant::now();
    let (ok, _, err) = admin(keep, &["assign-slots", &keep_id, "0-9"]);
    assert!(!ok, "a change without a majority succeeded");
    assert!(err.contains("majority"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(40), "took {:?}", t.elapsed());
    assert_eq!(raw.cmd(&["GET", &key]), "$1\r\nv\r\n");
}

#[test]
fn five_voters_and_a_learner() {
    let (c, took) = Cluster::start(5);
    eprintln!("5-node cluster formed by cluster-admin create in {took:?}");
    let sixth_dir = TempDir::new("node5");
    let sixth = Server::start_with(&["--cluster", "--dir", sixth_dir.path()]);
    let (ok, out, err) = admin(c.ports[2], &["add-node", &format!("127.0.0.1:{}", sixth.port)]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = admin(c.ports[0], &["add-node", &format!("127.0.0.1:{}", sixth.port)]);
    assert!(!ok && err.contains("already a member"), "{err}");
    let st = status_json(c.ports[4]).expect("status");
    let members = st["members"].as_array().expect("members");
    assert_eq!(members.len(), 6);
    assert_eq!(members.iter().filter(|m| m["role"] == "voter").count(), 5);
    let learner = members.iter().find(|m| m["role"] == "learner").expect("a learner");
    assert_eq!(learner["client_addr"], format!("127.0.0.1:{}", sixth.port));
    // The learner receives the configuration: it redirects every key.
    assert!(wait_until(10, || Server::raw_at(sixth.port).cmd(&["GET", "foo"]).starts_with("-MOVED 12182 ")));
    // Give it slots, then take them back and remove it.
    let id = learner["node_id"].as_str().expect("id").to_string();
    let (ok, out, err) = admin(c.ports[0], &["assign-slots", &format!("127.0.0.1:{}", sixth.port), "100-199"]);
    assert!(ok, "{out}{err}");
    assert!(wait_until(10, || Server::raw_at(sixth.port).cmd(&["CLUSTER", "COUNTKEYSINSLOT", "150"]) == ":0\r\n"));
    let (ok, out, err) = admin(c.ports[1], &["remove-node", &id]);
    assert!(ok, "{out}{err}");
    assert_eq!(status_json(c.ports[3]).expect("status")["members"].as_array().map(Vec::len), Some(5));
}

// --------------------------------------------------- the cluster bus secret

/// Runs cluster-admin with extra environment variables.
fn admin_env(seed: u16, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cluster_admin())
        .env_remove("DAMSELFLY_CLUSTER_SECRET")
        .envs(env.iter().copied())
        .args(["--seed", &format!("127.0.0.1:{seed}")])
        .args(args)
        .output()
        .expect("run cluster-admin");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn slots_everywhere(ports: &[u16]) -> Vec<String> {
    ports.iter().map(|&p| Server::raw_at(p).cmd(&["CLUSTER", "SLOTS"])).collect()
}

#[test]
fn a_cluster_with_a_secret_refuses_calls_without_it() {
    let secret_dir = TempDir::new("secret");
    let file = format!("{}/bus-secret", secret_dir.path());
    std::fs::write(&file, "correct-horse-battery\n").expect("write secret");
    let (c, _) = Cluster::start_full(3, &["--cluster-secret-file", &file], &["--secret-file", &file]);
    let ports = c.ports.clone();
    let seed = ports[0];

    // The right secret, each way cluster-admin takes it.
    let (ok, out, err) = admin_env(seed, &[], &["--secret", "correct-horse-battery", "status"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = admin_env(seed, &[("DAMSELFLY_CLUSTER_SECRET", "correct-horse-battery")], &["status"]);
    assert!(ok, "{out}{err}");

    // Without it, or with a wrong one: refused, and nothing changes.
    let before = slots_everywhere(&ports);
    let owner = slot_owner_port(seed, 0).expect("slot 0 has an owner");
    let other = *ports.iter().find(|&&p| p != owner).expect("another node");
    let target = format!("127.0.0.1:{other}");
    let victim = format!("127.0.0.1:{}", ports[2]);
    for (env, extra) in
        [(vec![], vec![]), (vec![], vec!["--secret", "wrong-secret"]), (vec![("DAMSELFLY_CLUSTER_SECRET", "wrong-secret")], vec![])]
    {
        for cmd in [vec!["assign-slots", target.as_str(), "0"], vec!["remove-node", victim.as_str()], vec!["status"]] {
            let args: Vec<&str> = extra.iter().chain(cmd.iter()).copied().collect();
            let (ok, out, err) = admin_env(seed, &env, &args);
            assert!(!ok, "{args:?} succeeded: {out}");
            assert!(err.contains("cluster bus authentication failed"), "{args:?}: {err}");
            let why = if extra.is_empty() && env.is_empty() { "carried none" } else { "wrong cluster secret" };
            assert!(err.contains(why), "{args:?}: {err}");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slots_everywhere(&ports), before, "a refused call changed the slot map");

    // Raw calls to every service without the secret are refused.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use damselfly_proto::admin::admin_client::AdminClient;
        use damselfly_proto::migration::migration_client::MigrationClient;
        use damselfly_proto::raft::raft_client::RaftClient;
        let url = format!("http://127.0.0.1:{}", ports[1] + 10000);
        let ch = tonic::transport::Endpoint::from_shared(url).expect("url").connect().await.expect("connect");
        let refused = |s: tonic::Status| assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        let mut raft = RaftClient::new(ch.clone());
        refused(raft.vote(damselfly_proto::raft::VoteRequest::default()).await.expect_err("refused"));
        refused(raft.append_entries(damselfly_proto::raft::AppendEntriesRequest::default()).await.expect_err("refused"));
        let mut mig = MigrationClient::new(ch.clone());
        refused(mig.propose(damselfly_proto::migration::ProposeRequest::default()).await.expect_err("refused"));
        refused(mig.import(damselfly_proto::migration::ImportBatch::default()).await.expect_err("refused"));
        let mut adm = AdminClient::new(ch.clone());
        refused(adm.node_info(damselfly_proto::admin::NodeInfoRequest {}).await.expect_err("refused"));

        // With the secret, the same malformed vote gets past the check.
        let mut req = tonic::Request::new(damselfly_proto::raft::VoteRequest::default());
        req.metadata_mut().insert(damselfly_proto::bus_auth::HEADER, "correct-horse-battery".parse().expect("header"));
        let s = raft.vote(req).await.expect_err("malformed vote");
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    });
    assert_eq!(slots_everywhere(&ports), before);

    // With the secret a change goes through, replicated over the bus.
    let (ok, out, err) = admin_env(seed, &[], &["--secret-file", &file, "assign-slots", &target, "0"]);
    assert!(ok, "{out}{err}");
    assert!(wait_until(10, || ports.iter().all(|&p| slot_owner_port(p, 0) == Some(other))), "slot 0 did not move everywhere");

    // A live move, keys included: node-to-node migration calls carry it too.
    let slot = key_slot(b"moved-key");
    let from = slot_owner_port(seed, slot).expect("owner");
    let to = *ports.iter().find(|&&p| p != from).expect("another node");
    // A node that missed the majority's heartbeats for a node timeout on
    // a loaded machine refuses writes (CLUSTERDOWN) until it hears again.
    assert!(wait_until(10, || Server::raw_at(from).cmd(&["SET", "moved-key", "v"]) == "+OK\r\n"), "the write was refused");
    let (from_a, to_a, slot_s) = (format!("127.0.0.1:{from}"), format!("127.0.0.1:{to}"), slot.to_string());
    let (ok, out, err) = admin_env(
        seed,
        &[("DAMSELFLY_CLUSTER_SECRET", "correct-horse-battery")],
        &["move-slots", "--from", &from_a, "--to", &to_a, "--slots", &slot_s],
    );
    assert!(ok, "{out}{err}");
    assert!(wait_until(10, || slot_owner_port(from, slot) == Some(to)), "slot {slot} did not move");
    assert_eq!(Server::raw_at(to).cmd(&["GET", "moved-key"]), "$1\r\nv\r\n");
}

#[test]
fn an_empty_secret_file_is_refused_at_start() {
    let dir = TempDir::new("emptysecret");
    let file = format!("{}/bus-secret", dir.path());
    std::fs::write(&file, "\n").expect("write");
    let out = Command::new(damselfly_tests::binary())
        .args(["--port", "0", "--cluster", "--dir", dir.path(), "--cluster-secret-file", &file])
        .output()
        .expect("run damselfly");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn status_and_top_show_each_members_health() {
    let (mut c, _) = Cluster::start(3);
    let urls: Vec<String> = c.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let client = redis::cluster::ClusterClient::new(urls).expect("cluster client");
    let mut conn = client.get_connection().expect("connect");
    for i in 0..300 {
        redis::cmd("SET").arg(format!("h:{i}")).arg(i).exec(&mut conn).expect("SET");
    }
    drop(conn);
    let st = status_json(c.ports[0]).expect("status");
    let members = st["members"].as_array().expect("members").clone();
    assert_eq!(members.len(), 3);
    let mut keys = 0;
    for m in &members {
        assert_eq!(m["reachable"], true, "{m}");
        let state = m["raft_state"].as_str().expect("raft_state");
        assert_eq!(state == "leader", m["leader"] == true, "{m}");
        assert!(["leader", "follower"].contains(&state), "{m}");
        assert!(m["used_memory"].as_u64().is_some_and(|n| n > 0), "{m}");
        assert!(m["ops_per_sec"].is_u64() && m["connected_clients"].is_u64() && m["uptime_seconds"].is_u64(), "{m}");
        keys += m["keys"].as_u64().expect("keys");
    }
    assert_eq!(keys, 300);

    // top --json is one sample of the same shape; top --count N prints N.
    let (ok, out, err) = admin(c.ports[1], &["--json", "top"]);
    assert!(ok, "{err}");
    let top: serde_json::Value = serde_json::from_str(&out).expect("top --json is JSON");
    assert_eq!(top["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(top["members"].as_array().expect("members").iter().filter_map(|m| m["keys"].as_u64()).sum::<u64>(), 300);
    let (ok, out, err) = admin(c.ports[1], &["top", "--count", "2"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("cluster-admin top, every 1 s").count(), 2, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("NODE ID")).count(), 2, "{out}");
    let health = ["UP", "STATE", "KEYS", "MEMORY", "OPS/S", "CLIENTS"];
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().ends_with(&health)), "{out}");

    // A member that is down shows as unreachable.
    let gone = members.iter().position(|m| m["leader"] != true).expect("a follower");
    let gone_id = members[gone]["node_id"].as_str().expect("id").to_string();
    let i = c.index_of_id(&gone_id).expect("a node");
    c.nodes[i] = None;
    let seed = c.ports[(i + 1) % 3];
    let st = status_json(seed).expect("status with a node down");
    let m = st["members"].as_array().expect("members").iter().find(|m| m["node_id"] == gone_id.as_str()).cloned().expect("member");
    assert_eq!((m["reachable"].as_bool(), m["keys"].is_null()), (Some(false), true), "{m}");
    let (ok, out, _) = admin(seed, &["status"]);
    assert!(ok && out.contains(", 1 unreachable\n"), "{out}");
}

/// cluster-admin authenticates its RESP connections to the nodes
/// (`requirepass`, or an ACL user) with --password / --user or
/// DAMSELFLY_PASSWORD; without them it says why it cannot proceed.
#[test]
fn cluster_admin_authenticates_to_password_protected_nodes() {
    let (c, _) = Cluster::start(3);
    for &p in &c.ports {
        assert_eq!(Server::raw_at(p).cmd(&["CONFIG", "SET", "requirepass", "s3cret"]), "+OK\r\n");
    }
    let seed = c.ports[0];
    let mut a = Server::raw_at(seed);
    assert_eq!(a.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(a.cmd(&["ACL", "SETUSER", "ops", "on", ">opspw", "+@all", "~*"]), "+OK\r\n");
    let (ok, out, err) = admin(seed, &["status"]);
    assert!(!ok, "{out}");
    assert!(err.contains("NOAUTH"), "{err}");
    let (ok, out, err) = admin(seed, &["--password", "wrong", "status"]);
    assert!(!ok, "{out}");
    assert!(err.contains("AUTH answered -WRONGPASS"), "{err}");
    let (ok, out, err) = admin(seed, &["--password", "s3cret", "status"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("127.0.0.1:{seed}")), "{out}");
    let (ok, out, err) = admin(seed, &["--user", "ops", "--password", "opspw", "status"]);
    assert!(ok, "{out}{err}");
    let with_env = Command::new(cluster_admin())
        .args(["--seed", &format!("127.0.0.1:{seed}"), "status"])
        .env("DAMSELFLY_PASSWORD", "s3cret")
        .output()
        .expect("cluster-admin");
    assert!(with_env.status.success(), "{}", String::from_utf8_lossy(&with_env.stderr));
}

/// A start that never joined a cluster (say one that stopped because its
/// port was taken, and was started again on the same directory) leaves an
/// empty Raft log: the next start is not a member coming back without its
/// data, and serves the slots `create` gives it.
#[test]
fn an_earlier_start_that_never_joined_does_not_fence_the_node() {
    let dir = TempDir::new("cluster-fresh");
    std::fs::create_dir_all(format!("{}/raft", dir.path())).unwrap();
    std::fs::write(format!("{}/raft/log.jsonl", dir.path()), b"").unwrap();
    let s = single_node_cluster(&dir);
    assert!(wait_until(10, || s.raw().cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")), "{}", s.raw().cmd(&["CLUSTER", "NODES"]));
}
