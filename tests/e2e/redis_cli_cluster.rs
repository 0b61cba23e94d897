//! Redis's own cluster tooling against Damselfly nodes: unmodified
//! `redis-cli --cluster create` (with replicas), `check`, `add-node` (as a
//! primary and as a replica), `reshard` and `del-node`, and the exact
//! replies of the CLUSTER subcommands they send (MEET, ADDSLOTS, DELSLOTS,
//! FORGET, RESET, SET-CONFIG-EPOCH, BUMPEPOCH, ...), errors included.

use std::io::Write;
use std::process::{Command, Stdio};

use damselfly_tests::cluster::*;
use damselfly_tests::Server;

/// redis-cli, which scripts/test installs: a missing tool fails the test
/// rather than letting it pass without checking anything.
fn require_redis_cli() {
    let ok = Command::new("redis-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "redis-cli is not installed (scripts/test installs Debian's redis-tools)");
}

/// Runs redis-cli; (success, stdout and stderr).
fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new("redis-cli").args(args).stdin(Stdio::null()).output().expect("run redis-cli");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Feeds `commands` (one per line) to `redis-cli -c` connected to `port`,
/// which follows the redirections; returns its replies, one per line (its
/// notes of the redirections left out).
fn redis_cli_c(port: u16, commands: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-c", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    child.stdin.take().expect("stdin").write_all(commands.as_bytes()).expect("write commands");
    let out = child.wait_with_output().expect("redis-cli output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with("-> Redirected")).map(|l| format!("{l}\n")).collect()
}

fn node(dir: &TempDir) -> Server {
    Server::start_with(&["--cluster", "--dir", dir.path()])
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn nodes(port: u16) -> String {
    redis_cli(&["-p", &port.to_string(), "CLUSTER", "NODES"]).1
}

fn dbsize(port: u16) -> usize {
    Server::raw_at(port).cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse().expect("DBSIZE")
}

/// Whether `port`'s CLUSTER NODES has node `id`'s line ending in `tail`.
fn has_line(port: u16, id: &str, tail: &str) -> bool {
    nodes(port).lines().any(|l| l.starts_with(id) && l.ends_with(tail))
}

/// The client ports of the primaries owning slots, per `port`'s CLUSTER
/// NODES.
fn primaries_with_slots(port: u16) -> Vec<u16> {
    nodes(port)
        .lines()
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|f| f.contains("master")) && l.split_whitespace().count() > 8)
        .filter_map(|l| l.split_whitespace().nth(1)?.split('@').next()?.rsplit_once(':')?.1.parse().ok())
        .collect()
}

#[test]
fn redis_cli_creates_grows_reshards_and_shrinks_a_cluster() {
    require_redis_cli();
    let dirs: Vec<TempDir> = (0..9).map(|i| TempDir::new(&format!("cli{i}"))).collect();
    let servers: Vec<Server> = dirs[..6].iter().map(node).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let seed = addr(ports[0]);

    // create: three primaries with a replica each.
    let mut args = vec!["--cluster".to_string(), "create".into()];
    args.extend(ports.iter().map(|&p| addr(p)));
    args.extend(["--cluster-replicas".into(), "1".into(), "--cluster-yes".into()]);
    let (ok, out) = redis_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    let c = Cluster { nodes: servers.into_iter().map(Some).collect(), ports: ports.clone(), dirs: Vec::new() };
    assert!(c.wait_all_ok(60), "cluster_state:ok not reached on every node:\n{}", c.describe());
    let view = nodes(ports[0]);
    assert_eq!(view.lines().filter(|l| l.contains("master")).count(), 3, "{view}");
    assert_eq!(view.lines().filter(|l| l.contains("slave")).count(), 3, "{view}");
    let (ok, out) = redis_cli(&["--cluster", "check", &seed]);
    assert!(ok && out.contains("[OK] All nodes agree about slots configuration."), "{out}");

    // A replica cannot forget its primary.
    let replica = view.lines().find(|l| l.contains(" slave ")).expect("a replica");
    let f: Vec<&str> = replica.split_whitespace().collect();
    let rport: u16 = f[1].split('@').next().and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok()).expect("port");
    assert_eq!(Server::raw_at(rport).cmd(&["CLUSTER", "FORGET", f[3]]), "-ERR Can't forget my master!\r\n");

    // Keys written through redis-cli -c (which follows MOVED) read back.
    let writes: String = (0..2000).map(|i| format!("SET key:{i} v{i}\n")).collect();
    let out = redis_cli_c(ports[1], &writes);
    assert_eq!(out.lines().filter(|l| *l == "OK").count(), 2000, "{out}");
    assert_eq!(redis_cli_c(ports[2], "GET key:7\nGET key:1999\n"), "v7\nv1999\n");
    let primaries = primaries_with_slots(ports[0]);
    assert_eq!(primaries.len(), 3);
    let before: usize = primaries.iter().map(|&p| dbsize(p)).sum();
    assert_eq!(before, 2000);

    // add-node: an empty node as a primary, another as its replica.
    let fresh = node(&dirs[6]);
    let (ok, out) = redis_cli(&["--cluster", "add-node", &addr(fresh.port), &seed]);
    assert!(ok && out.contains("[OK] New node added correctly."), "{out}");
    let fresh_id = myid(fresh.port);
    let follower = node(&dirs[7]);
    let (ok, out) = redis_cli(&["--cluster", "add-node", &addr(follower.port), &seed, "--cluster-slave", "--cluster-master-id", &fresh_id]);
    assert!(ok && out.contains("[OK] New node added correctly."), "{out}");
    let follower_id = myid(follower.port);
    assert!(
        wait_until(10, || nodes(ports[0]).lines().any(|l| l.starts_with(&follower_id) && l.contains(&format!(" slave {fresh_id} ")))),
        "{}",
        nodes(ports[0])
    );

    // reshard: slots move to the new primary with their keys.
    let (ok, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &seed,
        "--cluster-from",
        "all",
        "--cluster-to",
        &fresh_id,
        "--cluster-slots",
        "120",
        "--cluster-yes",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = redis_cli(&["--cluster", "check", &seed]);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(nodes(ports[0]).lines().any(|l| l.starts_with(&fresh_id) && l.split_whitespace().count() > 8));
    let primaries = primaries_with_slots(ports[0]);
    assert_eq!(primaries.len(), 4);
    assert!(wait_until(20, || primaries.iter().map(|&p| dbsize(p)).sum::<usize>() == before), "keys lost or left behind");
    assert!(dbsize(fresh.port) > 0, "no key moved with the slots");
    assert_eq!(redis_cli_c(ports[3], "GET key:7\nGET key:1999\nDBSIZE\n").lines().take(2).collect::<Vec<_>>(), ["v7", "v1999"]);
    let (ok, out) = redis_cli(&["--cluster", "info", &seed]);
    assert!(ok && out.contains("[OK] 2000 keys in 4 masters."), "{out}");

    // del-node of an empty node (one that owns no slots: a new one).
    let spare = node(&dirs[8]);
    let (ok, out) = redis_cli(&["--cluster", "add-node", &addr(spare.port), &seed]);
    assert!(ok, "{out}");
    let spare_id = myid(spare.port);
    let (ok, out) = redis_cli(&["--cluster", "del-node", &seed, &spare_id]);
    assert!(ok, "{out}");
    for &p in &ports {
        assert!(wait_until(10, || !nodes(p).contains(&spare_id)), "{}", nodes(p));
    }
    assert!(Server::raw_at(spare.port).cmd(&["CLUSTER", "INFO"]).contains("cluster_known_nodes:1\r\n"));
    let (ok, out) = redis_cli(&["--cluster", "check", &seed]);
    assert!(ok && out.contains("[OK] All nodes agree about slots configuration."), "{out}");
}

/// The subcommands' replies on a node in no cluster yet, exactly as
/// redis-server 7.0 gives them.
#[test]
fn subcommand_replies_on_a_fresh_node() {
    let dir = TempDir::new("fresh");
    let s = node(&dir);
    let mut raw = s.raw();
    let me = myid(s.port);
    let zeros = "0".repeat(40);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["CLUSTER", "ADDSLOTS", "16384"], "-ERR Invalid or out of range slot\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTS", "abc"], "-ERR Invalid or out of range slot\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTS", "1", "2", "1"], "-ERR Slot 1 specified multiple times\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTSRANGE", "5", "1"], "-ERR start slot number 5 is greater than end slot number 1\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"], "-ERR wrong number of arguments for 'cluster|addslotsrange' command\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTS"], "-ERR wrong number of arguments for 'cluster|addslots' command\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTS", "1", "2", "3"], "+OK\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTS", "2"], "-ERR Slot 2 is already busy\r\n".into()),
        (vec!["CLUSTER", "DELSLOTS", "5"], "-ERR Slot 5 is already unassigned\r\n".into()),
        (vec!["CLUSTER", "DELSLOTSRANGE", "3", "3"], "+OK\r\n".into()),
        (vec!["CLUSTER", "SET-CONFIG-EPOCH", "-1"], "-ERR Invalid config epoch specified: -1\r\n".into()),
        (vec!["CLUSTER", "SET-CONFIG-EPOCH", "abc"], "-ERR value is not an integer or out of range\r\n".into()),
        (vec!["CLUSTER", "SET-CONFIG-EPOCH", "7"], "+OK\r\n".into()),
        (vec!["CLUSTER", "SET-CONFIG-EPOCH", "8"], "-ERR Node config epoch is already non-zero\r\n".into()),
        (vec!["CLUSTER", "BUMPEPOCH"], "+STILL 7\r\n".into()),
        (vec!["CLUSTER", "MEET", "127.0.0.1", "abc"], "-ERR Invalid TCP base port specified: abc\r\n".into()),
        (vec!["CLUSTER", "MEET", "127.0.0.1", "1", "x"], "-ERR Invalid TCP bus port specified: x\r\n".into()),
        (vec!["CLUSTER", "MEET", "nosuchhost", "7000"], "-ERR Invalid node address specified: nosuchhost:7000\r\n".into()),
        (vec!["CLUSTER", "MEET", "127.0.0.1", "70000"], "-ERR Invalid node address specified: 127.0.0.1:70000\r\n".into()),
        (
            vec!["CLUSTER", "MEET", "127.0.0.1", "7000", "1", "2"],
            "-ERR unknown subcommand or wrong number of arguments for 'MEET'. Try CLUSTER HELP.\r\n".into(),
        ),
        (vec!["CLUSTER", "FORGET", &zeros], format!("-ERR Unknown node {zeros}\r\n")),
        (vec!["CLUSTER", "FORGET", &me], "-ERR I tried hard but I can't forget myself...\r\n".into()),
        (vec!["CLUSTER", "COUNT-FAILURE-REPORTS", "nobody"], "-ERR Unknown node nobody\r\n".into()),
        (vec!["CLUSTER", "COUNT-FAILURE-REPORTS", &me], ":0\r\n".into()),
        (vec!["CLUSTER", "RESET", "foo"], "-ERR syntax error\r\n".into()),
        (
            vec!["CLUSTER", "RESET", "soft", "hard"],
            "-ERR unknown subcommand or wrong number of arguments for 'RESET'. Try CLUSTER HELP.\r\n".into(),
        ),
        (vec!["CLUSTER", "SAVECONFIG"], "+OK\r\n".into()),
    ];
    for (cmd, want) in &cases {
        assert_eq!(&raw.cmd(cmd), want, "{cmd:?}");
    }
    // The errors above point at CLUSTER HELP: it lists every subcommand.
    let help = raw.cmd(&["CLUSTER", "HELP"]);
    assert!(help.contains("\r\n+CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"), "{help}");
    for name in ["ADDSLOTS", "DELSLOTSRANGE", "FAILOVER", "FORGET", "MEET", "NODES", "RESET", "SETSLOT", "SHARDS", "SLOTS", "HELP"] {
        assert!(help.contains(&format!("\r\n+{name}")), "{name} missing from {help}");
    }
    // The node shows what it was given before it joins a cluster.
    let info = raw.cmd(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:fail\r\ncluster_slots_assigned:2\r\ncluster_slots_ok:2\r\n"), "{info}");
    assert!(info.contains("cluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:7\r\ncluster_my_epoch:7\r\n"), "{info}");
    assert!(nodes(s.port).contains(&format!("{me} 127.0.0.1:{}@{} myself,master - 0 0 7 connected 1-2\n", s.port, s.port as u32 + 10000)));
    // FLUSHSLOTS drops them.
    assert_eq!(raw.cmd(&["CLUSTER", "FLUSHSLOTS"]), "+OK\r\n");
    assert!(nodes(s.port).ends_with(" myself,master - 0 0 7 connected\n"), "{}", nodes(s.port));
    assert_eq!(raw.cmd(&["CLUSTER", "RESET", "HARD"]), "+OK\r\n");
    assert!(nodes(s.port).ends_with(" myself,master - 0 0 0 connected\n"), "{}", nodes(s.port));
    assert_eq!(raw.cmd(&["CLUSTER", "BUMPEPOCH"]), "+BUMPED 1\r\n");
}

/// Two nodes joined by hand the way redis-cli does it (ADDSLOTSRANGE on
/// each, then MEET), the subcommands' replies on members, `redis-cli
/// --cluster fix` covering a slot DELSLOTS left without an owner, and a
/// member leaving with CLUSTER RESET.
#[test]
fn subcommands_on_members() {
    require_redis_cli();
    let dirs = [TempDir::new("m0"), TempDir::new("m1")];
    let (a, b) = (node(&dirs[0]), node(&dirs[1]));
    let (ida, idb) = (myid(a.port), myid(b.port));
    let mut ra = a.raw();
    let mut rb = b.raw();
    assert_eq!(ra.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), "+OK\r\n");
    assert_eq!(rb.cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]), "+OK\r\n");
    assert_eq!(rb.cmd(&["CLUSTER", "MEET", "127.0.0.1", &a.port.to_string()]), "+OK\r\n");
    for p in [a.port, b.port] {
        assert!(wait_until(10, || has_line(p, &ida, " connected 0-8191") && has_line(p, &idb, " connected 8192-16383")), "{}", nodes(p));
        assert!(wait_until(10, || Server::raw_at(p).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")));
    }
    // Meeting a member again changes nothing.
    assert_eq!(ra.cmd(&["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string()]), "+OK\r\n");
    let epoch = epoch_of(&ra.cmd(&["CLUSTER", "INFO"])).expect("epoch");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["CLUSTER", "ADDSLOTS", "0"], "-ERR Slot 0 is already busy\r\n".into()),
        (vec!["CLUSTER", "ADDSLOTSRANGE", "9000", "9001"], "-ERR Slot 9000 is already busy\r\n".into()),
        (vec!["CLUSTER", "DELSLOTS", "100"], "+OK\r\n".into()),
        (vec!["CLUSTER", "DELSLOTS", "100"], "-ERR Slot 100 is already unassigned\r\n".into()),
        (
            vec!["CLUSTER", "SET-CONFIG-EPOCH", "1"],
            "-ERR The user can assign a config epoch only when the node does not know any other node.\r\n".into(),
        ),
        (vec!["CLUSTER", "FORGET", &ida], "-ERR I tried hard but I can't forget myself...\r\n".into()),
        (vec!["CLUSTER", "FORGET", &idb], format!("-ERR node {idb} still owns 8192 slots: assign them to other nodes first\r\n")),
        (vec!["CLUSTER", "COUNT-FAILURE-REPORTS", &idb], ":0\r\n".into()),
    ];
    for (cmd, want) in &cases {
        assert_eq!(&ra.cmd(cmd), want, "{cmd:?}");
    }
    // BUMPEPOCH commits a change: the epoch is past the DELSLOTS one's.
    let bumped = ra.cmd(&["CLUSTER", "BUMPEPOCH"]);
    let e: u64 = bumped.strip_prefix("+BUMPED ").and_then(|e| e.trim().parse().ok()).unwrap_or_else(|| panic!("{bumped}"));
    assert!(e >= epoch + 2, "{bumped} after epoch {epoch}");
    // The other member takes the released slot.
    assert!(wait_until(10, || has_line(b.port, &ida, " connected 0-99 101-8191")), "{}", nodes(b.port));
    assert_eq!(rb.cmd(&["CLUSTER", "ADDSLOTS", "100"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(a.port, &idb, " connected 100 8192-16383")), "{}", nodes(a.port));
    // A member meeting a fresh node adds it; the new node claims the slot
    // ADDSLOTS gave it before.
    let dir = TempDir::new("m2");
    let c = node(&dir);
    let idc = myid(c.port);
    assert_eq!(ra.cmd(&["CLUSTER", "DELSLOTS", "200"]), "+OK\r\n");
    assert_eq!(c.raw().cmd(&["CLUSTER", "ADDSLOTS", "200"]), "+OK\r\n");
    assert_eq!(ra.cmd(&["CLUSTER", "MEET", "127.0.0.1", &c.port.to_string()]), "+OK\r\n");
    for p in [a.port, b.port, c.port] {
        assert!(wait_until(10, || has_line(p, &idc, " connected 200")), "{}", nodes(p));
    }
    // An empty member gives up its slots with FLUSHSLOTS; the others take
    // the slot back.
    assert_eq!(c.raw().cmd(&["CLUSTER", "FLUSHSLOTS"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(a.port, &idc, " connected") && !nodes(a.port).contains(" connected 200")), "{}", nodes(a.port));
    assert_eq!(ra.cmd(&["CLUSTER", "ADDSLOTS", "200"]), "+OK\r\n");
    // Two clusters are not merged.
    let (d1, d2) = (TempDir::new("m3"), TempDir::new("m4"));
    let (x, y) = (node(&d1), node(&d2));
    assert_eq!(y.raw().cmd(&["CLUSTER", "MEET", "127.0.0.1", &x.port.to_string()]), "+OK\r\n");
    assert_eq!(
        ra.cmd(&["CLUSTER", "MEET", "127.0.0.1", &x.port.to_string()]),
        format!(
            "-ERR 127.0.0.1:{} belongs to another cluster, and clusters cannot be merged: CLUSTER RESET it (or start it afresh) first\r\n",
            x.port
        )
    );
    assert!(!nodes(a.port).contains(&myid(x.port)));
    // A member leaves its cluster with RESET: the other forgets it, and it
    // joins none before a restart.
    let idy = myid(y.port);
    assert_eq!(y.raw().cmd(&["CLUSTER", "RESET", "SOFT"]), "+OK\r\n");
    assert!(wait_until(10, || !nodes(x.port).contains(&idy)), "{}", nodes(x.port));
    assert_eq!(nodes(y.port).lines().count(), 1, "{}", nodes(y.port));
    assert_eq!(
        y.raw().cmd(&["CLUSTER", "MEET", "127.0.0.1", &x.port.to_string()]),
        "-ERR this node left its cluster (CLUSTER RESET): restart it to join a cluster again\r\n"
    );
    // --cluster fix gives an uncovered slot to a primary.
    assert_eq!(ra.cmd(&["CLUSTER", "DELSLOTS", "300"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(b.port, &ida, " connected 0-99 101-299 301-8191")), "{}", nodes(b.port));
    let seed = format!("127.0.0.1:{}", a.port);
    let mut fix = Command::new("redis-cli")
        .args(["--cluster", "fix", &seed])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    fix.stdin.take().expect("stdin").write_all(b"yes\n").expect("answer");
    let out = fix.wait_with_output().expect("redis-cli output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(">>> Covering slot 300 with "), "{text}");
    let (ok, out) = redis_cli(&["--cluster", "check", &seed]);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    // A primary holding keys is not reset.
    assert_eq!(ra.cmd(&["CLUSTER", "KEYSLOT", "bar"]), ":5061\r\n");
    assert_eq!(ra.cmd(&["SET", "bar", "v"]), "+OK\r\n");
    assert_eq!(ra.cmd(&["CLUSTER", "RESET"]), "-ERR CLUSTER RESET can't be called with master nodes containing keys\r\n");
    assert_eq!(ra.cmd(&["CLUSTER", "FLUSHSLOTS"]), "-ERR DB must be empty to perform CLUSTER FLUSHSLOTS.\r\n");
}

/// Keys of a slot DELSLOTS left without an owner stay on their node,
/// unserved, as in Redis: ADDSLOTS on the same node serves them again (what
/// redis-py's cluster suite checks), and the slot going to another node
/// drops them there.
#[test]
fn keys_of_an_unassigned_slot_wait_for_its_next_owner() {
    let dirs = [TempDir::new("k0"), TempDir::new("k1")];
    let (a, b) = (node(&dirs[0]), node(&dirs[1]));
    let (ida, idb) = (myid(a.port), myid(b.port));
    let (mut ra, mut rb) = (a.raw(), b.raw());
    assert_eq!(ra.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), "+OK\r\n");
    assert_eq!(rb.cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]), "+OK\r\n");
    assert_eq!(rb.cmd(&["CLUSTER", "MEET", "127.0.0.1", &a.port.to_string()]), "+OK\r\n");
    for p in [a.port, b.port] {
        assert!(wait_until(10, || Server::raw_at(p).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")), "{}", nodes(p));
    }
    // "bar" is in slot 5061, a's.
    assert_eq!(ra.cmd(&["SET", "bar", "v"]), "+OK\r\n");
    assert_eq!(ra.cmd(&["CLUSTER", "DELSLOTS", "5061"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(a.port, &ida, " connected 0-5060 5062-8191")), "{}", nodes(a.port));
    let unserved: Vec<(Vec<&str>, &str)> = vec![
        (vec!["GET", "bar"], "-CLUSTERDOWN Hash slot not served\r\n"),
        (vec!["SET", "bar", "w"], "-CLUSTERDOWN Hash slot not served\r\n"),
        (vec!["EXISTS", "bar"], "-CLUSTERDOWN Hash slot not served\r\n"),
        (vec!["CLUSTER", "COUNTKEYSINSLOT", "5061"], ":1\r\n"),
        (vec!["CLUSTER", "GETKEYSINSLOT", "5061", "10"], "*1\r\n$3\r\nbar\r\n"),
        (vec!["DBSIZE"], ":1\r\n"),
    ];
    for (cmd, want) in &unserved {
        assert_eq!(ra.cmd(cmd), *want, "{cmd:?}");
    }
    // The cluster's background purge had its chance: the key is still there.
    assert!(wait_until(10, || has_line(b.port, &ida, " connected 0-5060 5062-8191")), "{}", nodes(b.port));
    assert_eq!(ra.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "5061"]), ":1\r\n");
    assert_eq!(ra.cmd(&["CLUSTER", "ADDSLOTS", "5061"]), "+OK\r\n");
    assert!(wait_until(10, || ra.cmd(&["GET", "bar"]) == "$1\r\nv\r\n"));
    // Given to b instead, the slot's keys go from a.
    assert_eq!(ra.cmd(&["CLUSTER", "DELSLOTS", "5061"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(b.port, &ida, " connected 0-5060 5062-8191")), "{}", nodes(b.port));
    assert_eq!(rb.cmd(&["CLUSTER", "ADDSLOTS", "5061"]), "+OK\r\n");
    assert!(wait_until(10, || has_line(a.port, &idb, " connected 5061 8192-16383")), "{}", nodes(a.port));
    assert!(wait_until(10, || dbsize(a.port) == 0), "a keeps {} keys", dbsize(a.port));
    assert_eq!(rb.cmd(&["GET", "bar"]), "$-1\r\n");
}

/// `redis-cli --cluster import`: the keys of a standalone redis-server move
/// into a Damselfly cluster through MIGRATE (SCAN, then MIGRATE ... KEYS to
/// each key's owner), every type with its TTL; `--cluster-copy` leaves them
/// on the source, without it they leave the source; `--cluster-replace`
/// overwrites a key the cluster already has.
#[test]
fn redis_cli_imports_a_standalone_redis_server() {
    require_redis_cli();
    let dirs = [TempDir::new("i0"), TempDir::new("i1")];
    let (a, b) = (node(&dirs[0]), node(&dirs[1]));
    assert_eq!(a.raw().cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), "+OK\r\n");
    assert_eq!(b.raw().cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]), "+OK\r\n");
    assert_eq!(b.raw().cmd(&["CLUSTER", "MEET", "127.0.0.1", &a.port.to_string()]), "+OK\r\n");
    for p in [a.port, b.port] {
        assert!(wait_until(10, || Server::raw_at(p).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")), "{}", nodes(p));
    }
    // redis-cli checks the cluster before importing: every node must show
    // the same configuration.
    let seed = addr(a.port);
    assert!(wait_until(10, || redis_cli(&["--cluster", "check", &seed]).1.contains("[OK] All nodes agree about slots configuration.")));
    let source = damselfly_tests::Redis::start();
    let mut src = source.raw();
    let setup: &[&[&str]] = &[
        &["HSET", "cart:1", "sku:1", "2", "sku:2", "1"],
        &["ZADD", "top", "1", "a", "2.5", "b"],
        &["RPUSH", "orders", "o1", "o2", "o3"],
        &["SADD", "tags", "x", "y"],
        &["SET", "stock:1", "17"],
        &["SET", "session", "s", "EX", "1000"],
        &["XADD", "events", "1-1", "k", "v"],
        &["PFADD", "visitors", "u1", "u2", "u3"],
    ];
    for cmd in setup {
        src.cmd(cmd);
    }
    for i in 0..200 {
        assert_eq!(src.cmd(&["SET", &format!("key:{i}"), &format!("v{i}")]), "+OK\r\n");
    }
    let from = addr(source.port);
    let (ok, out) = redis_cli(&["--cluster", "import", &addr(a.port), "--cluster-from", &from, "--cluster-copy"]);
    assert!(ok && !out.contains("ERR"), "{out}");
    assert_eq!(dbsize(a.port) + dbsize(b.port), 208);
    assert_eq!(src.cmd(&["DBSIZE"]), ":208\r\n", "--cluster-copy keeps the source's keys");
    let reads = "HGETALL cart:1\nZRANGE top 0 -1 WITHSCORES\nLRANGE orders 0 -1\nSCARD tags\nGET stock:1\nXLEN events\nPFCOUNT visitors\nGET key:199\n";
    let want = "sku:1\n2\nsku:2\n1\na\n1\nb\n2.5\no1\no2\no3\n2\n17\n1\n3\nv199\n";
    assert_eq!(redis_cli_c(a.port, reads), want);
    let ttl: i64 = redis_cli_c(b.port, "TTL session\n").trim().parse().expect("TTL");
    assert!((900..=1000).contains(&ttl), "session TTL {ttl}");
    // A key the cluster has already is refused without --cluster-replace
    // (redis-cli reports MIGRATE's BUSYKEY) and overwritten with it.
    assert_eq!(src.cmd(&["SET", "stock:1", "16"]), "+OK\r\n");
    let (_, out) = redis_cli(&["--cluster", "import", &addr(a.port), "--cluster-from", &from, "--cluster-copy"]);
    assert!(out.contains("BUSYKEY"), "{out}");
    assert_eq!(redis_cli_c(a.port, "GET stock:1\n"), "17\n");
    let (ok, out) = redis_cli(&["--cluster", "import", &addr(a.port), "--cluster-from", &from, "--cluster-copy", "--cluster-replace"]);
    assert!(ok && !out.contains("ERR"), "{out}");
    assert_eq!(redis_cli_c(a.port, "GET stock:1\n"), "16\n");
    // Without --cluster-copy the keys leave the source.
    assert_eq!(src.cmd(&["SET", "late", "1"]), "+OK\r\n");
    assert_eq!(src.cmd(&["DEL", "stock:1"]), ":1\r\n");
    let (ok, out) = redis_cli(&["--cluster", "import", &addr(a.port), "--cluster-from", &from, "--cluster-replace"]);
    assert!(ok && !out.contains("ERR"), "{out}");
    assert_eq!(src.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(dbsize(a.port) + dbsize(b.port), 209);
    assert_eq!(redis_cli_c(a.port, "GET late\n"), "1\n");
}
