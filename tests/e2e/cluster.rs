//! Cluster mode against real processes: routing errors, CLUSTER reply
//! shapes, the redis crate's cluster client and redis-cli on a node started
//! with `--cluster`, and standalone mode answering as Redis does without
//! cluster support.

use std::path::PathBuf;
use std::process::Command;

use damselfly_tests::Server;

/// A fresh data directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("damselfly-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node in cluster mode that has been given every slot (ADDSLOTSRANGE).
fn single_node_cluster(dir: &TempDir) -> Server {
    let s = Server::start_with(&["--cluster", "--dir", dir.path()]);
    assert_eq!(s.raw().cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "+OK\r\n");
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
    assert_eq!(c.cmd(&["MGET", "{u1}a", "{u1}b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "KEYSLOT", "foo"]), ":12182\r\n");
    let slot = c.cmd(&["CLUSTER", "KEYSLOT", "{u1}a"]);
    let slot = slot.trim_start_matches(':').trim();
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", slot]), ":2\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", slot, "1"]).matches("{u1}").count(), 1);
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "16384"]), "-ERR Invalid slot\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", "0", "-1"]), "-ERR Invalid slot or number of keys\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "5"]), "-ERR Slot 5 is already busy\r\n");
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
    let line = format!("{id} 127.0.0.1:{}@{} myself,master - 0 0 1 connected 0-16383\n", s.port, s.port as u32 + 10000);
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

fn redis_cli() -> Option<&'static str> {
    Command::new("redis-cli").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "redis-cli")
}

#[test]
fn redis_cli_cluster_check_passes() {
    let Some(cli) = redis_cli() else {
        eprintln!("redis-cli not installed: skipped");
        return;
    };
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
