//! Failure detection against real processes: a 3-node cluster formed by
//! cluster-admin loses a node to kill -9; every survivor shows it `fail`
//! with its link `disconnected` and reports `cluster_state:fail`, keyed
//! commands get Redis's `-CLUSTERDOWN` errors (all of them with
//! `cluster-require-full-coverage yes`, only the lost slots with `no`);
//! the node restarted without its data stays out of service for its slots
//! until an operator accepts it back with `cluster-admin accept`. Replicas
//! added through cluster-admin or CLUSTER REPLICATE follow their primary
//! and serve READONLY reads.

use std::time::Duration;

use damselfly_tests::cluster::*;
use damselfly_tests::{key_slot, Raw, Server};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

/// CLUSTER NODES's line for `id`, as node `port` sees it.
fn line_of(port: u16, id: &str) -> String {
    let nodes = Server::raw_at(port).cmd(&["CLUSTER", "NODES"]);
    nodes.lines().find(|l| l.starts_with(id)).unwrap_or_default().to_string()
}

/// The flags and link state of `id` in `port`'s CLUSTER NODES.
fn flags_and_link(port: u16, id: &str) -> (String, String) {
    let line = line_of(port, id);
    let f: Vec<&str> = line.split_whitespace().collect();
    (f.get(2).unwrap_or(&"").to_string(), f.get(7).unwrap_or(&"").to_string())
}

/// A key whose slot node `port` serves, per `seed`'s view.
fn key_on(seed: u16, port: u16) -> String {
    (0..10_000).map(|i| format!("k{i}")).find(|k| slot_owner_port(seed, key_slot(k.as_bytes())) == Some(port)).expect("a key on the node")
}

#[test]
fn a_killed_node_is_failed_everywhere_and_stays_out_of_service_after_an_empty_restart() {
    let (mut c, _) = Cluster::start(3);
    let mut raw = Server::raw_at(c.ports[0]);
    assert_eq!(raw.cmd(&["CONFIG", "GET", "cluster-node-timeout"]), "*2\r\n$20\r\ncluster-node-timeout\r\n$4\r\n1000\r\n");
    assert_eq!(raw.cmd(&["CONFIG", "GET", "cluster-require-full-coverage"]), "*2\r\n$29\r\ncluster-require-full-coverage\r\n$3\r\nyes\r\n");
    let (victim, survivors) = (2, [c.ports[0], c.ports[1]]);
    let vport = c.ports[victim];
    let vid = myid(vport);
    let lost = key_on(c.ports[0], vport);
    let kept = key_on(c.ports[0], c.ports[0]);
    assert_eq!(Raw::connect(vport).cmd(&["SET", &lost, "v"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", &kept, "v"]), "+OK\r\n");
    // Before the loss every node sees the others connected, with pongs.
    assert!(wait_until(10, || survivors.iter().all(|&p| flags_and_link(p, &vid) == ("master".into(), "connected".into()))));

    let owned = slot_owners(c.ports[0]).expect("slots").iter().filter(|&&p| p == vport).count();
    c.nodes[victim].take().expect("victim").signal("KILL");
    let failed = wait_until(15, || survivors.iter().all(|&p| flags_and_link(p, &vid) == ("master,fail".into(), "disconnected".into())));
    assert!(failed, "not failed everywhere: {:?}", survivors.map(|p| line_of(p, &vid)));
    for &p in &survivors {
        let info = Server::raw_at(p).cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:fail\r\n"), "{info}");
        assert!(
            info.contains(&format!("cluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{owned}\r\n", 16384 - owned)),
            "{info}"
        );
    }
    // Full coverage required (the default): the cluster refuses keyed
    // commands; the lost slots are not served at all.
    assert_eq!(raw.cmd(&["GET", &kept]), "-CLUSTERDOWN The cluster is down\r\n");
    assert_eq!(raw.cmd(&["GET", &lost]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
    // Without it, the other slots keep serving.
    for &p in &survivors {
        assert_eq!(Server::raw_at(p).cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]), "+OK\r\n");
    }
    assert_eq!(raw.cmd(&["GET", &kept]), "$1\r\nv\r\n");
    assert_eq!(raw.cmd(&["GET", &lost]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert!(raw.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok\r\n"));
    for &p in &survivors {
        assert_eq!(Server::raw_at(p).cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "yes"]), "+OK\r\n");
    }

    // Back without its data (kill -9, no persistence): reachable again, yet
    // it serves none of its slots, and the others keep it failed.
    let dir = c.dirs[victim].path().to_string();
    let back = Server::start_at(vport, &["--cluster", "--dir", &dir, "--save", ""]).expect("restart on the same port");
    c.nodes[victim] = Some(back);
    assert!(wait_until(15, || survivors.iter().all(|&p| flags_and_link(p, &vid) == ("master,fail".into(), "connected".into()))));
    assert!(wait_until(15, || flags_and_link(vport, &vid).0 == "myself,master,fail"), "{}", line_of(vport, &vid));
    let mut back = Raw::connect(vport);
    assert_eq!(back.cmd(&["GET", &lost]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(back.cmd(&["SET", &lost, "new"]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert!(Server::raw_at(c.ports[1]).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:fail\r\n"));
    let (ok, out, err) = admin(c.ports[1], &["--json", "status"]);
    assert!(ok, "{err}");
    let st: serde_json::Value = serde_json::from_str(&out).expect("status json");
    let failed: Vec<&str> =
        st["members"].as_array().expect("members").iter().filter(|m| m["failed"] == true).filter_map(|m| m["node_id"].as_str()).collect();
    assert_eq!(failed, [vid.as_str()]);

    // The operator accepts the loss: it serves its slots again, empty.
    let (ok, out, err) = admin(c.ports[0], &["accept", &vid]);
    assert!(ok, "{out}{err}");
    assert!(c.wait_all_ok(15), "not ok everywhere after accept:\n{}", c.describe());
    // The node installs the configuration that accepts it (and any the
    // leader's next health pass commits) before it serves the slots again.
    let mut last = String::new();
    assert!(
        wait_until(15, || {
            last = back.cmd(&["GET", &lost]);
            last == "$-1\r\n"
        }),
        "the accepted node does not serve its slots: {last}"
    );
    assert_eq!(raw.cmd(&["GET", &kept]), "$1\r\nv\r\n");
    for &p in &survivors {
        assert_eq!(flags_and_link(p, &vid), ("master".into(), "connected".into()));
    }
}

/// A node that stops answering for a while (SIGSTOP) and comes back with
/// its data in memory is failed, then serves again without an operator.
#[test]
fn a_paused_node_is_failed_then_recovers_by_itself() {
    let (c, _) = Cluster::start(3);
    let vport = c.ports[1];
    let vid = myid(vport);
    let key = key_on(c.ports[0], vport);
    assert_eq!(Raw::connect(vport).cmd(&["SET", &key, "v"]), "+OK\r\n");
    let node = c.nodes[1].as_ref().expect("node");
    node.signal("STOP");
    let failed = wait_until(15, || [c.ports[0], c.ports[2]].iter().all(|&p| flags_and_link(p, &vid).0 == "master,fail"));
    node.signal("CONT");
    assert!(failed, "not failed: {}", line_of(c.ports[0], &vid));
    assert!(c.wait_all_ok(15), "did not recover:\n{}", c.describe());
    assert_eq!(Raw::connect(vport).cmd(&["GET", &key]), "$1\r\nv\r\n");
}

/// Replicas join through cluster-admin (add-replica) or CLUSTER REPLICATE,
/// follow their primary, redirect writes, serve READONLY reads, and show
/// in CLUSTER NODES / SLOTS / SHARDS / REPLICAS and ROLE.
#[test]
fn replicas_follow_their_primary_and_serve_readonly_reads() {
    let (c, _) = Cluster::start(3);
    let (p0, p1) = (c.ports[0], c.ports[1]);
    let (id0, id1) = (myid(p0), myid(p1));
    let dirs = [TempDir::new("replica0"), TempDir::new("replica1")];
    let replicas: Vec<Server> = dirs.iter().map(|d| Server::start_with(&["--cluster", "--dir", d.path()])).collect();
    let (r0, r1) = (replicas[0].port, replicas[1].port);
    let key = key_on(p0, p0);
    let mut primary = Raw::connect(p0);
    assert_eq!(primary.cmd(&["SET", &key, "before"]), "+OK\r\n");

    // cluster-admin adds the first as a member and makes it a replica.
    let (ok, out, err) = admin(p0, &["add-replica", &format!("127.0.0.1:{r0}"), "--of", &format!("127.0.0.1:{p0}")]);
    assert!(ok, "{out}{err}");
    // The second joins, then asks for it itself.
    let (ok, out, err) = admin(p0, &["add-node", &format!("127.0.0.1:{r1}")]);
    assert!(ok, "{out}{err}");
    let mut raw1 = Raw::connect(r1);
    assert!(wait_until(15, || raw1.cmd(&["CLUSTER", "NODES"]).contains(&id1)), "the new member has not seen the configuration");
    assert_eq!(raw1.cmd(&["CLUSTER", "REPLICATE", &id1]), "+OK\r\n");
    let (rid0, rid1) = (myid(r0), myid(r1));

    let all = [p0, p1, c.ports[2], r0, r1];
    for (rid, pid) in [(&rid0, &id0), (&rid1, &id1)] {
        let seen = wait_until(15, || all.iter().all(|&p| line_of(p, rid).split_whitespace().nth(3) == Some(pid.as_str())));
        assert!(seen, "{}", line_of(p0, rid));
    }
    assert!(line_of(r0, &rid0).contains(" myself,slave "), "{}", line_of(r0, &rid0));
    assert!(line_of(p1, &rid0).contains(" slave "), "{}", line_of(p1, &rid0));
    let mut raw0 = Raw::connect(r0);
    assert!(wait_until(15, || raw0.cmd(&["ROLE"]).contains("connected")), "{}", raw0.cmd(&["ROLE"]));
    assert!(raw0.cmd(&["ROLE"]).starts_with(&format!("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{p0}\r\n")));

    // Writes acknowledged by the replica (WAIT) can be read there.
    assert_eq!(primary.cmd(&["SET", &key, "after"]), "+OK\r\n");
    assert_eq!(primary.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    // cluster-admin status: each member's replication offset, and each
    // replica's link and distance behind its primary (caught up here).
    let mut last = String::new();
    let reported = wait_until(15, || {
        let Some(st) = status_json(p0) else { return false };
        let members = st["members"].as_array().cloned().unwrap_or_default();
        let of = |id: &str| members.iter().find(|m| m["node_id"] == id).cloned().unwrap_or_default();
        let (p, r) = (of(&id0), of(&rid0));
        let (_, text, _) = admin(p0, &["status"]);
        let row: Vec<String> = text.lines().find(|l| l.starts_with(&rid0)).unwrap_or("").split_whitespace().map(String::from).collect();
        last = format!("{p}\n{r}\n{text}");
        p["repl_offset"].as_u64().is_some_and(|o| o > 0)
            && p["repl_link"].is_null()
            && p["repl_lag_bytes"].is_null()
            && r["repl_link"] == "up"
            && r["repl_offset"] == p["repl_offset"]
            && r["repl_lag_bytes"] == 0
            && row.len() > 8
            && row[row.len() - 7] == "0B"
    });
    assert!(reported, "{last}");
    let slot = key_slot(key.as_bytes());
    assert_eq!(raw0.cmd(&["GET", &key]), format!("-MOVED {slot} 127.0.0.1:{p0}\r\n"));
    assert_eq!(raw0.cmd(&["READONLY"]), "+OK\r\n");
    assert_eq!(raw0.cmd(&["GET", &key]), "$5\r\nafter\r\n");
    assert_eq!(raw0.cmd(&["SET", &key, "x"]), format!("-MOVED {slot} 127.0.0.1:{p0}\r\n"));
    // Another primary's slot still redirects there.
    let elsewhere = key_on(p0, p1);
    let s1 = key_slot(elsewhere.as_bytes());
    assert_eq!(raw0.cmd(&["GET", &elsewhere]), format!("-MOVED {s1} 127.0.0.1:{p1}\r\n"));
    assert_eq!(raw0.cmd(&["READWRITE"]), "+OK\r\n");
    assert_eq!(raw0.cmd(&["GET", &key]), format!("-MOVED {slot} 127.0.0.1:{p0}\r\n"));

    // CLUSTER SLOTS lists the replica after its primary; SHARDS groups them.
    let slots = primary.cmd(&["CLUSTER", "SLOTS"]);
    assert!(
        slots.contains(&format!(
            "*4\r\n$9\r\n127.0.0.1\r\n:{p0}\r\n$40\r\n{id0}\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:{r0}\r\n$40\r\n{rid0}\r\n"
        )),
        "{slots}"
    );
    let shards = primary.cmd(&["CLUSTER", "SHARDS"]);
    assert_eq!(shards.matches("replica\r\n").count(), 2, "{shards}");
    assert!(shards.starts_with("*3\r\n"), "{shards}");
    // CLUSTER REPLICAS / SLAVES.
    let reps = primary.cmd(&["CLUSTER", "REPLICAS", &id0]);
    assert!(
        reps.starts_with("*1\r\n$") && reps.contains(&format!("{rid0} 127.0.0.1:{r0}@")) && reps.contains(&format!(" slave {id0} ")),
        "{reps}"
    );
    assert_eq!(primary.cmd(&["CLUSTER", "SLAVES", &id1]).matches(&rid1).count(), 1);
    assert_eq!(primary.cmd(&["CLUSTER", "REPLICAS", &c.ports[2].to_string()]), format!("-ERR Unknown node {}\r\n", c.ports[2]));
    assert_eq!(primary.cmd(&["CLUSTER", "REPLICAS", &rid0]), "-ERR The specified node is not a master\r\n");
    // CLUSTER REPLICATE's refusals.
    assert_eq!(raw0.cmd(&["CLUSTER", "REPLICATE", &rid0]), "-ERR Can't replicate myself\r\n");
    assert_eq!(primary.cmd(&["CLUSTER", "REPLICATE", &id1]), "-ERR To set a master the node must be empty and without assigned slots.\r\n");
    assert_eq!(raw1.cmd(&["CLUSTER", "REPLICATE", &rid0]), "-ERR I can only replicate a master, not a replica.\r\n");
    assert_eq!(raw1.cmd(&["CLUSTER", "REPLICATE", "nope"]), "-ERR Unknown node nope\r\n");
    let st = status_json(p1).expect("status");
    let reported: Vec<(String, String)> = st["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| Some((m["node_id"].as_str()?.to_string(), m["replica_of"].as_str()?.to_string())))
        .collect();
    assert_eq!(reported.len(), 2);
    assert!(reported.contains(&(rid0.clone(), id0.clone())) && reported.contains(&(rid1.clone(), id1.clone())));
}

/// Each node's client address as CLUSTER SLOTS gives the owner of every
/// slot, per node `port`.
fn slot_owners(port: u16) -> Option<Vec<u16>> {
    let mut con =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
    con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let slots: Vec<(u16, u16, (String, u16))> =
        redis::cmd("CLUSTER").arg("SLOTS").query::<Vec<redis::Value>>(&mut con).ok()?.into_iter().filter_map(range_of).collect();
    let mut owners = vec![0; 16384];
    for (a, b, (_, p)) in slots {
        for o in &mut owners[a as usize..=b as usize] {
            *o = p;
        }
    }
    owners.iter().all(|&p| p != 0).then_some(owners)
}

fn range_of(v: redis::Value) -> Option<(u16, u16, (String, u16))> {
    let redis::Value::Array(parts) = v else { return None };
    let a: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
    let b: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
    let node: (String, u16, String) = redis::from_redis_value(parts.get(2)?.clone()).ok().or_else(|| {
        let redis::Value::Array(n) = parts.get(2)? else { return None };
        Some((redis::from_redis_value(n.first()?.clone()).ok()?, redis::from_redis_value(n.get(1)?.clone()).ok()?, String::new()))
    })?;
    Some((a, b, (node.0, node.1)))
}

/// The client ports of the primaries (members owning slots), per `port`.
fn primaries(port: u16) -> Vec<u16> {
    let mut ports: Vec<u16> = slot_owners(port).unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// 3 primaries with a replica each; the redis crate's cluster client
/// INCRs 10,000 counters and sends `WAIT 1` to the same node after each; a
/// primary is killed (kill -9) five times and brought back empty. Every
/// INCR that WAIT confirmed survives, no counter exceeds the INCRs
/// attempted, every slot is served, and the killed nodes come back as
/// replicas.
#[test]
fn killed_primaries_fail_over_to_their_replicas_without_losing_confirmed_writes() {
    const COUNTERS: usize = 10_000;
    const KILLS: usize = 5;
    const INCRS_PER_ROUND: usize = 400;
    let (mut c, _) = Cluster::start(3);
    for i in 0..3 {
        c.dirs.push(TempDir::new(&format!("replica{i}")));
        let r = Server::start_with(&["--cluster", "--dir", c.dirs[3 + i].path(), "--save", ""]);
        let (ok, out, err) =
            admin(c.ports[0], &["add-replica", &format!("127.0.0.1:{}", r.port), "--of", &format!("127.0.0.1:{}", c.ports[i])]);
        assert!(ok, "{out}{err}");
        c.ports.push(r.port);
        c.nodes.push(Some(r));
    }
    let synced = |port: u16| Server::raw_at(port).cmd(&["ROLE"]).contains("connected");
    assert!(wait_until(20, || c.ports[3..].iter().all(|&p| synced(p))), "replicas did not sync");

    // Every node, killed or not, as a seed: the client asks the live ones
    // for the slot map. It never retries by itself (a retried INCR whose
    // first try was applied would count twice); after any error the test
    // reconnects, which reads the slot map again.
    let client = redis::cluster::ClusterClientBuilder::new(c.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")))
        .retries(0)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("cluster client");
    let mut attempts = vec![0u64; COUNTERS];
    let mut confirmed = vec![0u64; COUNTERS];
    let mut rng_state = 0x9e3779b97f4a7c15u64 ^ std::process::id() as u64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let incr_round = |attempts: &mut [u64], confirmed: &mut [u64], next: &mut dyn FnMut() -> u64| {
        let mut con: Option<redis::cluster::ClusterConnection> = None;
        for _ in 0..INCRS_PER_ROUND {
            let i = (next() % COUNTERS as u64) as usize;
            let key = format!("counter:{i}");
            let cc = match &mut con {
                Some(cc) => cc,
                None => match client.get_connection() {
                    Ok(cc) => con.insert(cc),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                },
            };
            attempts[i] += 1;
            if redis::cmd("INCR").arg(&key).query::<i64>(cc).is_err() {
                con = None;
                continue;
            }
            // WAIT on the node (and connection) the INCR went to, bounded:
            // a replica that never acknowledges leaves the write
            // unconfirmed, not the test hanging.
            let route = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
            match cc.route_command(redis::cmd("WAIT").arg(1).arg(1500), RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)))
            {
                Ok(redis::Value::Int(n)) if n >= 1 => confirmed[i] += 1,
                Ok(_) => {}
                Err(_) => con = None,
            }
        }
    };

    for round in 0..KILLS {
        incr_round(&mut attempts, &mut confirmed, &mut next);
        let live = c.live_ports();
        let ps = primaries(live[0]);
        assert_eq!(ps.len(), 3, "round {round}: primaries {ps:?}");
        let victim_port = ps[(next() % 3) as usize];
        let victim = c.ports.iter().position(|&p| p == victim_port).expect("victim is a node");
        let vid = myid(victim_port);
        c.nodes[victim].take().expect("victim").signal("KILL");
        let live = c.live_ports();
        // Writes go on (and fail for a while) during the failover.
        incr_round(&mut attempts, &mut confirmed, &mut next);
        // Every slot is served again, by primaries other than the victim.
        let served = wait_until(20, || {
            live.iter().all(|&p| Server::raw_at(p).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok\r\n"))
                && live.iter().all(|&p| !primaries(p).contains(&victim_port) && primaries(p).len() == 3)
        });
        assert!(served, "round {round}: slots not taken over: {}", Server::raw_at(live[0]).cmd(&["CLUSTER", "NODES"]));
        // The victim comes back empty and rejoins as a replica.
        let dir = c.dirs[victim].path().to_string();
        c.nodes[victim] = Some(Server::start_at(victim_port, &["--cluster", "--dir", &dir, "--save", ""]).expect("restart"));
        let rejoined = wait_until(20, || {
            synced(victim_port) && c.live_ports().iter().all(|&p| line_of(p, &vid).contains("slave") && !line_of(p, &vid).contains("fail"))
        });
        assert!(rejoined, "round {round}: {} / {}", Server::raw_at(victim_port).cmd(&["ROLE"]), line_of(c.ports[0], &vid));
    }
    incr_round(&mut attempts, &mut confirmed, &mut next);

    // The cluster client reads every counter back.
    let mut con = client.get_connection().expect("connect");
    let (mut total_confirmed, mut total_attempts) = (0, 0);
    for i in 0..COUNTERS {
        let v: Option<u64> = redis::cmd("GET").arg(format!("counter:{i}")).query(&mut con).expect("GET");
        let v = v.unwrap_or(0);
        assert!(v >= confirmed[i], "counter:{i} is {v}, but {} INCRs were confirmed by WAIT", confirmed[i]);
        assert!(v <= attempts[i], "counter:{i} is {v}, above the {} INCRs attempted", attempts[i]);
        total_confirmed += confirmed[i];
        total_attempts += attempts[i];
    }
    eprintln!("{total_attempts} INCRs attempted, {total_confirmed} confirmed by WAIT, {KILLS} primaries killed");
    assert!(total_confirmed > total_attempts / 2, "too few writes confirmed: {total_confirmed}/{total_attempts}");
}

/// A 3-node cluster whose first primary gets a replica (through
/// cluster-admin), synced: the cluster, the primary's port, the replica's.
fn three_primaries_and_a_replica() -> (Cluster, u16, u16) {
    let (mut c, _) = Cluster::start(3);
    let p0 = c.ports[0];
    c.dirs.push(TempDir::new("replica"));
    let r = Server::start_with(&["--cluster", "--dir", c.dirs[3].path()]);
    let rport = r.port;
    c.ports.push(rport);
    c.nodes.push(Some(r));
    let (ok, out, err) = admin(p0, &["add-replica", &format!("127.0.0.1:{rport}"), "--of", &format!("127.0.0.1:{p0}")]);
    assert!(ok, "{out}{err}");
    assert!(wait_until(20, || Server::raw_at(rport).cmd(&["ROLE"]).contains("connected")), "replica did not sync");
    (c, p0, rport)
}

/// A planned failover (cluster-admin failover, i.e. CLUSTER FAILOVER on the
/// replica) under a stream of INCRs: every acknowledged INCR is in the new
/// primary, the writer is redirected there, the old primary becomes its
/// replica.
#[test]
fn planned_failover_loses_no_acknowledged_write() {
    let (c, p0, rport) = three_primaries_and_a_replica();
    assert_eq!(Server::raw_at(p0).cmd(&["CLUSTER", "FAILOVER"]), "-ERR You should send CLUSTER FAILOVER to a replica\r\n");
    assert_eq!(Server::raw_at(rport).cmd(&["CLUSTER", "FAILOVER", "NOW"]), "-ERR syntax error\r\n");
    let key = key_on(p0, p0);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, key) = (stop.clone(), key.clone());
        std::thread::spawn(move || {
            let connect = |port: u16| {
                let con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("url").get_connection().expect("connect");
                con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                con
            };
            let (mut port, mut con, mut acked, mut moved) = (p0, connect(p0), 0u64, 0u64);
            // Until the failover is over and a write succeeded on the new
            // primary; redirections are followed (a node that has not
            // applied the change yet may send the client back).
            let mut done_on_new = false;
            while !(stop.load(std::sync::atomic::Ordering::Relaxed) && done_on_new) {
                match redis::cmd("INCR").arg(&key).query::<i64>(&mut con) {
                    Ok(_) => {
                        acked += 1;
                        done_on_new = port == rport;
                    }
                    Err(e) if e.code() == Some("MOVED") => {
                        let to = e.redirect_node().expect("MOVED target").0.rsplit_once(':').expect("addr").1.parse().expect("port");
                        (port, con) = (to, connect(to));
                        moved += 1;
                        assert!(moved < 1000, "redirected back and forth");
                    }
                    Err(e) => panic!("INCR failed: {e}"),
                }
            }
            (acked, port)
        })
    };
    assert!(wait_until(10, || Server::raw_at(p0).cmd(&["GET", &key]).len() > 6), "the writer did not start");
    let (ok, out, err) = admin(p0, &["failover", &format!("127.0.0.1:{rport}")]);
    assert!(ok, "{out}{err}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, last) = writer.join().expect("writer");
    assert_eq!(
        last,
        rport,
        "the writer ends on the new primary (nodes {:?}): {}",
        c.ports,
        Server::raw_at(rport).cmd(&["CLUSTER", "NODES"])
    );
    assert_eq!(Server::raw_at(rport).cmd(&["GET", &key]), format!("${}\r\n{acked}\r\n", acked.to_string().len()));
    // The old primary follows the new one.
    let old = myid(p0);
    assert!(wait_until(20, || Server::raw_at(p0).cmd(&["ROLE"]).contains("connected")), "{}", Server::raw_at(p0).cmd(&["ROLE"]));
    assert!(line_of(rport, &old).contains(&format!(" slave {} ", myid(rport))), "{}", line_of(rport, &old));
    assert!(c.wait_all_ok(10), "{}", c.describe());
}

/// A partition: a primary with a replica is paused (SIGSTOP) long enough
/// for the group to promote its replica, which takes new writes. A write
/// sent to the old primary while it was cut off is not acknowledged when it
/// wakes (it has not heard the majority; it redirects or refuses), it
/// rejoins as a replica, and afterwards no key has two values: every node
/// that holds a key agrees with its new primary.
#[test]
fn a_paused_primary_is_replaced_and_no_key_ends_with_two_values() {
    const KEYS: usize = 50;
    let (c, p0, rport) = three_primaries_and_a_replica();
    // Keys the old primary serves, each written once and replicated.
    let keys: Vec<String> =
        (0..100_000).map(|i| format!("k{i}")).filter(|k| Server::raw_at(p0).cmd(&["SET", k, "before"]) == "+OK\r\n").take(KEYS).collect();
    assert_eq!(keys.len(), KEYS);
    let mut old = Raw::connect(p0);
    assert_eq!(old.cmd(&["WAIT", "1", "5000"]), ":1\r\n");

    let node = c.nodes[0].as_ref().expect("node");
    node.signal("STOP");
    let rid = myid(rport);
    let promoted = wait_until(20, || {
        line_of(c.ports[1], &rid).contains(" master ") && Server::raw_at(rport).cmd(&["SET", &keys[0], "after"]) == "+OK\r\n"
    });
    // Sent while the old primary sleeps: read once it wakes.
    old.send_cmd(&[b"SET", keys[1].as_bytes(), b"split"]);
    for k in &keys[1..] {
        if promoted {
            assert_eq!(Server::raw_at(rport).cmd(&["SET", k, "after"]), "+OK\r\n");
        }
    }
    node.signal("CONT");
    assert!(promoted, "the replica was not promoted: {}", line_of(c.ports[1], &rid));
    let reply = String::from_utf8_lossy(&old.read_reply()).into_owned();
    assert_ne!(reply, "+OK\r\n", "the cut-off primary acknowledged a write");
    // The old primary follows the new one; every copy of every key agrees.
    assert!(wait_until(30, || Server::raw_at(p0).cmd(&["ROLE"]).contains("connected")), "{}", Server::raw_at(p0).cmd(&["ROLE"]));
    let mut replica = Raw::connect(p0);
    assert_eq!(replica.cmd(&["READONLY"]), "+OK\r\n");
    assert_eq!(Server::raw_at(rport).cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    for k in &keys {
        assert_eq!(Server::raw_at(rport).cmd(&["GET", k]), "$5\r\nafter\r\n", "{k} on the new primary");
        assert_eq!(replica.cmd(&["GET", k]), "$5\r\nafter\r\n", "{k} on the old primary, now a replica");
    }
    assert!(c.wait_all_ok(20), "{}", c.describe());
}
