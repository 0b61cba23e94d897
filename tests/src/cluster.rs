//! Cluster test helpers: temporary data directories, cluster-admin runs,
//! and multi-node clusters of real processes formed by cluster-admin.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Server;

/// A fresh data directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("damselfly-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn cluster_admin() -> PathBuf {
    let bin = crate::binary().with_file_name("cluster-admin");
    assert!(bin.exists(), "{} not found: build it first (cargo build -p cluster-admin)", bin.display());
    bin
}

/// Runs cluster-admin; (success, stdout, stderr).
pub fn admin(seed: u16, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cluster_admin()).args(["--seed", &format!("127.0.0.1:{seed}")]).args(args).output().expect("run cluster-admin");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn status_json(seed: u16) -> Option<serde_json::Value> {
    let (ok, out, _) = admin(seed, &["--json", "status"]);
    if !ok {
        return None;
    }
    serde_json::from_str(&out).ok()
}

/// Polls `f` every 50 ms until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub struct Cluster {
    pub nodes: Vec<Option<Server>>,
    pub ports: Vec<u16>,
    pub dirs: Vec<TempDir>,
}

impl Cluster {
    /// Starts `n` nodes in cluster mode and forms a cluster of them with
    /// cluster-admin; returns it and the time `create` took.
    pub fn start(n: usize) -> (Cluster, Duration) {
        Self::start_with(n, &[])
    }

    /// `start` with extra server arguments for every node.
    pub fn start_with(n: usize, extra: &[&str]) -> (Cluster, Duration) {
        Self::start_full(n, extra, &[])
    }

    /// `start_with`, also passing `admin_extra` to `cluster-admin create`
    /// (e.g. the cluster secret).
    pub fn start_full(n: usize, extra: &[&str], admin_extra: &[&str]) -> (Cluster, Duration) {
        let dirs: Vec<TempDir> = (0..n).map(|i| TempDir::new(&format!("node{i}"))).collect();
        let nodes: Vec<Server> = dirs
            .iter()
            .map(|d| {
                let mut args = vec!["--cluster", "--dir", d.path()];
                args.extend_from_slice(extra);
                Server::start_with(&args)
            })
            .collect();
        let ports: Vec<u16> = nodes.iter().map(|s| s.port).collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = admin_extra.to_vec();
        args.push("create");
        args.extend(addrs.iter().map(String::as_str));
        let t = Instant::now();
        let (ok, out, err) = admin(ports[0], &args);
        let took = t.elapsed();
        assert!(ok, "create failed: {out}{err}");
        let c = Cluster { nodes: nodes.into_iter().map(Some).collect(), ports, dirs };
        // Bounded generously: on a loaded machine a debug node can miss the
        // failure detector's probes for a moment while the cluster forms.
        assert!(c.wait_all_ok(60), "cluster_state:ok not reached on every node:\n{}", c.describe());
        (c, took)
    }

    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes.iter().flatten().map(|s| s.port).collect()
    }

    /// Every live node reports cluster_state:ok with all slots and the
    /// same epoch.
    /// Every live node's CLUSTER INFO and CLUSTER NODES (for a failure
    /// message).
    pub fn describe(&self) -> String {
        self.live_ports()
            .iter()
            .map(|&p| {
                let mut c = Server::raw_at(p);
                format!("--- node {p}\n{}\n{}", c.cmd(&["CLUSTER", "INFO"]), c.cmd(&["CLUSTER", "NODES"]))
            })
            .collect()
    }

    pub fn wait_all_ok(&self, secs: u64) -> bool {
        wait_until(secs, || {
            let infos: Vec<String> = self.live_ports().iter().map(|&p| Server::raw_at(p).cmd(&["CLUSTER", "INFO"])).collect();
            infos.iter().all(|i| i.contains("cluster_state:ok")) && infos.iter().all(|i| epoch_of(i) == epoch_of(&infos[0]))
        })
    }

    pub fn index_of_id(&self, id: &str) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.nodes[i].is_some() && myid(self.ports[i]) == id)
    }
}

/// Accepts back node `port`, restarted without the data of its slots:
/// waits until the group has declared it failed (it sees itself `fail`),
/// then runs `cluster-admin accept` through `seed`.
pub fn accept_back(seed: u16, port: u16) {
    let id = myid(port);
    let failed = wait_until(20, || {
        Server::raw_at(port).cmd(&["CLUSTER", "NODES"]).lines().any(|l| l.starts_with(&id) && l.contains(" myself,master,fail "))
    });
    assert!(failed, "the restarted node was not declared failed");
    let (ok, out, err) = admin(seed, &["accept", &id]);
    assert!(ok, "accept failed: {out}{err}");
}

pub fn epoch_of(info: &str) -> Option<u64> {
    info.lines().find_map(|l| l.strip_prefix("cluster_current_epoch:")).and_then(|v| v.trim().parse().ok())
}

/// The client port of the node serving `slot`, per node `port`'s CLUSTER NODES.
pub fn slot_owner_port(port: u16, slot: u16) -> Option<u16> {
    let nodes = Server::raw_at(port).cmd(&["CLUSTER", "NODES"]);
    nodes.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let owns = f.iter().skip(8).any(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
        });
        let addr = f.get(1)?.split('@').next()?;
        owns.then(|| addr.rsplit_once(':')?.1.parse().ok()).flatten()
    })
}

pub fn myid(port: u16) -> String {
    let r = Server::raw_at(port).cmd(&["CLUSTER", "MYID"]);
    r.lines().nth(1).unwrap_or_default().to_string()
}

pub trait RawAt {
    fn raw_at(port: u16) -> crate::Raw;
}

impl RawAt for Server {
    fn raw_at(port: u16) -> crate::Raw {
        crate::Raw::connect(port)
    }
}
