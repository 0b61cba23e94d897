//! Failure detection against real processes: a 3-node cluster formed by
//! cluster-admin loses a node to kill -9; every survivor shows it `fail`
//! with its link `disconnected` and reports `cluster_state:fail`, keyed
//! commands get Redis's `-CLUSTERDOWN` errors (all of them with
//! `cluster-require-full-coverage yes`, only the lost slots with `no`);
//! the node restarted without its data stays out of service for its slots
//! until an operator accepts it back with `cluster-admin accept`.

use damselfly_tests::cluster::*;
use damselfly_tests::{key_slot, Raw, Server};

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

    c.nodes[victim].take().expect("victim").signal("KILL");
    let failed = wait_until(15, || survivors.iter().all(|&p| flags_and_link(p, &vid) == ("master,fail".into(), "disconnected".into())));
    assert!(failed, "not failed everywhere: {:?}", survivors.map(|p| line_of(p, &vid)));
    for &p in &survivors {
        let info = Server::raw_at(p).cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:fail\r\n"), "{info}");
        assert!(info.contains("cluster_slots_fail:5461\r\n"), "{info}");
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
    assert!(c.wait_all_ok(15), "not ok everywhere after accept");
    assert_eq!(back.cmd(&["GET", &lost]), "$-1\r\n");
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
    assert!(c.wait_all_ok(15), "did not recover");
    assert_eq!(Raw::connect(vport).cmd(&["GET", &key]), "$1\r\nv\r\n");
}
