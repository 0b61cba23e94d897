//! The state machine: the replicated `ClusterConfig` (slot owners,
//! migration in flight, config epoch), how a committed entry changes it,
//! its snapshots (`<dir>/raft/snapshot.json`), and the engine's slot map it
//! keeps up to date after every apply or snapshot install.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};

use super::types::{Change, ChangeResult, NodeAddr, NodeId, TypeConfig};
use super::{io_read, io_write, lock, write_file, SErr};
use crate::slot::map::{ClusterView, Member, MigrationView, SlotMap};
use crate::slot::SLOTS;

/// target accepts their keys (see `cluster::migration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub id: String,
    pub ranges: Vec<(u16, u16)>,
    pub from: String,
    pub to: String,
    /// Raft log index of the entry that began it.
    pub log_index: u64,
}

/// The replicated configuration besides membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Raised by every applied change (membership ones included).
    pub epoch: u64,
    /// Owned slot ranges with their owner's node id, ascending, disjoint.
    pub slots: Vec<(u16, u16, String)>,
    pub migrations: Vec<Migration>,
    /// Members the group declared failed (`Change::NodeFailed`), ascending.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Per member, the process incarnation the group last accepted as
    /// serving (`Change::NodeRecovered`): a node that restarted without
    /// its data serves again only once its new incarnation is here.
    #[serde(default)]
    pub incarnations: std::collections::BTreeMap<String, String>,
    /// Replicas, each with the primary it follows.
    #[serde(default)]
    pub replicas: std::collections::BTreeMap<String, String>,
}

impl ClusterConfig {
    fn dense(&self) -> Vec<Option<&str>> {
        let mut owners = vec![None; SLOTS];
        for (a, b, id) in &self.slots {
            for o in owners.iter_mut().take(*b as usize + 1).skip(*a as usize) {
                *o = Some(id.as_str());
            }
        }
        owners
    }

    /// The slots owned by `id`.
    pub fn count_of(&self, id: &str) -> usize {
        self.slots.iter().filter(|r| r.2 == id).map(|r| (r.1 - r.0) as usize + 1).sum()
    }

    pub fn assign(&mut self, ranges: &[(u16, u16)], owner: &str) {
        self.set_owner(ranges, Some(owner));
    }

    /// Gives the slots of `ranges` to `owner`, or to nobody.
    fn set_owner(&mut self, ranges: &[(u16, u16)], owner: Option<&str>) {
        let mut dense: Vec<Option<String>> = self.dense().into_iter().map(|o| o.map(str::to_string)).collect();
        for &(a, b) in ranges {
            for o in dense.iter_mut().take((b as usize + 1).min(SLOTS)).skip(a as usize) {
                *o = owner.map(str::to_string);
            }
        }
        let mut slots: Vec<(u16, u16, String)> = Vec::new();
        for (s, o) in dense.into_iter().enumerate() {
            let Some(o) = o else { continue };
            match slots.last_mut() {
                Some(r) if r.1 as usize + 1 == s && r.2 == o => r.1 = s as u16,
                _ => slots.push((s as u16, s as u16, o)),
            }
        }
        self.slots = slots;
    }

    /// Applies a change made at log index `index`, or says why not.
    fn apply(&mut self, c: &Change, index: u64) -> Result<(), String> {
        match c {
            Change::AssignSlots { ranges, owner } => {
                if self.replicas.contains_key(owner) {
                    return Err(format!("node {owner} is a replica: it cannot own slots"));
                }
                if let Some(m) = self.migrations.first() {
                    if ranges.iter().any(|&(a, b)| m.ranges.iter().any(|&(c, d)| a <= d && c <= b)) {
                        return Err(format!("slots of migration {} are moving: abort it first", m.id));
                    }
                }
                self.assign(ranges, owner)
            }
            Change::BeginMigration { id, ranges, from, to } => {
                if let Some(m) = self.migrations.first() {
                    return Err(format!("migration {} ({} -> {}) is already running", m.id, m.from, m.to));
                }
                if from == to {
                    return Err("source and target are the same node".into());
                }
                if self.replicas.contains_key(to) {
                    return Err(format!("node {to} is a replica: it cannot own slots"));
                }
                let dense = self.dense();
                for &(a, b) in ranges {
                    if a > b || b as usize >= SLOTS {
                        return Err(format!("bad slot range {a}-{b}"));
                    }
                    if let Some(s) = (a..=b).find(|&s| dense[s as usize] != Some(from.as_str())) {
                        return Err(format!("slot {s} is not owned by {from}"));
                    }
                }
                self.migrations.push(Migration {
                    id: id.clone(),
                    ranges: ranges.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    log_index: index,
                });
            }
            Change::CompleteMigration { id } => {
                let Some(pos) = self.migrations.iter().position(|m| &m.id == id) else {
                    return Err(format!("migration {id} is not running (aborted?)"));
                };
                let m = self.migrations.remove(pos);
                self.assign(&m.ranges, &m.to);
            }
            Change::AbortMigration { id } => {
                let before = self.migrations.len();
                self.migrations.retain(|m| !id.is_empty() && &m.id != id);
                if self.migrations.len() == before {
                    return Err("no such migration is running".into());
                }
            }
            Change::NodeFailed { id } => match self.failed.binary_search(id) {
                Ok(_) => return Err(format!("node {id} is already failed")),
                Err(at) => self.failed.insert(at, id.clone()),
            },
            Change::NodeRecovered { id, incarnation } => {
                self.failed.retain(|f| f != id);
                self.incarnations.insert(id.clone(), incarnation.clone());
            }
            Change::SetReplica { id, of } => {
                if id == of {
                    return Err("Can't replicate myself".into());
                }
                if self.count_of(id) > 0 || self.migrations.iter().any(|m| &m.to == id) {
                    return Err("To set a master the node must be empty and without assigned slots.".into());
                }
                if self.replicas.contains_key(of) {
                    return Err("I can only replicate a master, not a replica.".into());
                }
                if self.replicas.values().any(|p| p == id) {
                    return Err(format!("node {id} has replicas of its own"));
                }
                self.replicas.insert(id.clone(), of.clone());
            }
            Change::Promote { replica, primary } => {
                if self.replicas.get(replica) != Some(primary) {
                    return Err(format!("node {replica} is not a replica of {primary}"));
                }
                let ranges: Vec<(u16, u16)> = self.slots.iter().filter(|r| &r.2 == primary).map(|r| (r.0, r.1)).collect();
                self.migrations.retain(|m| &m.from != primary && &m.to != primary);
                self.assign(&ranges, replica);
                self.replicas.remove(replica);
                for p in self.replicas.values_mut().filter(|p| *p == primary) {
                    *p = replica.clone();
                }
                self.replicas.insert(primary.clone(), replica.clone());
            }
            Change::ClaimSlots { ranges, owner } => {
                if self.replicas.contains_key(owner) {
                    return Err(format!("node {owner} is a replica: it cannot own slots"));
                }
                let dense = self.dense();
                // Slots it owns already stay its own (a claim repeated).
                let busy = |s: u16| {
                    dense[s as usize].is_some_and(|o| o != owner)
                        || self.migrations.iter().any(|m| m.ranges.iter().any(|&(a, b)| a <= s && s <= b))
                };
                if let Some(s) = ranges.iter().flat_map(|&(a, b)| a..=b.min(SLOTS as u16 - 1)).find(|&s| busy(s)) {
                    return Err(format!("Slot {s} is already busy"));
                }
                self.assign(ranges, owner);
            }
            Change::ReleaseSlots { ranges } => {
                let dense = self.dense();
                if let Some(s) = ranges.iter().flat_map(|&(a, b)| a..=b.min(SLOTS as u16 - 1)).find(|&s| dense[s as usize].is_none()) {
                    return Err(format!("Slot {s} is already unassigned"));
                }
                if let Some(m) = self.migrations.first() {
                    if ranges.iter().any(|&(a, b)| m.ranges.iter().any(|&(c, d)| a <= d && c <= b)) {
                        return Err(format!("slots of migration {} are moving: abort it first", m.id));
                    }
                }
                self.set_owner(ranges, None);
            }
            Change::BumpEpoch => {}
        }
        Ok(())
    }
}

/// Splits the 16384 slots into `n` contiguous, nearly equal ranges.
pub fn even_ranges(n: usize) -> Vec<(u16, u16)> {
    let n = n.max(1);
    (0..n).map(|i| ((i * SLOTS / n) as u16, (((i + 1) * SLOTS / n) - 1) as u16)).collect()
}
/// The applied state: what a snapshot holds.
#[derive(Clone, Default, Serialize, Deserialize)]
struct SmData {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeAddr>,
    config: ClusterConfig,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, NodeAddr>,
    data: Vec<u8>,
}

struct SmInner {
    data: SmData,
    snapshot: Option<StoredSnapshot>,
    snapshots_built: u64,
}

/// The state machine: the applied configuration, its latest snapshot (in
/// `<dir>/raft/snapshot.json`), and the slot map it keeps up to date.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<SmInner>>,
    dir: PathBuf,
    map: Arc<SlotMap>,
    /// The engine, once the node runs: a replica the configuration makes
    /// a primary stops following before the view that routes writes to it
    /// is installed (else its first writes would meet `-READONLY`).
    pub engine: Arc<std::sync::OnceLock<Arc<crate::shard::Engine>>>,
}

/// The engine's view of an applied state.
fn view_of(data: &SmData, my_id: &str) -> ClusterView {
    let m = data.membership.membership();
    let voters: Vec<NodeId> = m.voter_ids().collect();
    let mut members: Vec<Member> = m
        .nodes()
        .map(|(nid, n)| Member {
            id: n.id.clone(),
            shard_id: n.id.clone(),
            host: n.host.clone(),
            port: n.port,
            grpc_port: n.grpc_port,
            voter: voters.contains(nid),
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    let owners = data.config.slots.iter().flat_map(|(a, b, id)| (*a..=*b).map(move |s| (s, id.clone())));
    let mut view = ClusterView::new(my_id, data.config.epoch, members, owners);
    view.failed = view.members.iter().map(|m| data.config.failed.contains(&m.id)).collect();
    view.accepted = data.config.incarnations.get(my_id).cloned();
    let index = |id: &str| view.members.iter().position(|m| m.id == id);
    let primary_of: Vec<Option<usize>> = view.members.iter().map(|m| data.config.replicas.get(&m.id).and_then(|p| index(p))).collect();
    view.primary_of = primary_of;
    view.migration = data
        .config
        .migrations
        .first()
        .map(|m| Arc::new(MigrationView { id: m.id.clone(), from: m.from.clone(), to: m.to.clone(), ranges: m.ranges.clone() }));
    view
}

impl StateMachine {
    /// Loads the latest snapshot, if any, and publishes it to `map`.
    /// The directory of the Raft state (`<dir>/raft`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn open(dir: &Path, map: Arc<SlotMap>) -> std::io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let snapshot: Option<StoredSnapshot> = match std::fs::read(dir.join("snapshot.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(std::io::Error::other)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let data = match &snapshot {
            Some(s) => serde_json::from_slice(&s.data).map_err(std::io::Error::other)?,
            None => SmData::default(),
        };
        let sm = StateMachine {
            inner: Arc::new(Mutex::new(SmInner { data, snapshot, snapshots_built: 0 })),
            dir: dir.to_path_buf(),
            map,
            engine: Default::default(),
        };
        sm.publish();
        Ok(sm)
    }

    /// Installs the applied state in the engine's slot map.
    fn publish(&self) {
        let view = view_of(&lock(&self.inner).data, &self.map.myself.id);
        if let Some(engine) = self.engine.get() {
            if view.me.is_some() && view.my_primary().is_none() && engine.repl.master().is_some() {
                tracing::warn!("no longer a replica per the cluster configuration: taking writes");
                engine.repl.set_master(None);
                crate::persist::replica::oom_score_for_role(engine, false);
            }
        }
        self.map.install(view);
    }

    /// The applied configuration (for status replies).
    pub fn config(&self) -> ClusterConfig {
        lock(&self.inner).data.config.clone()
    }

    fn save_snapshot(&self, s: &StoredSnapshot) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        write_file(&self.dir.join("snapshot.json"), &bytes)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let stored = {
            let mut g = lock(&self.inner);
            let data = serde_json::to_vec(&g.data).map_err(io_read)?;
            g.snapshots_built += 1;
            let last = g.data.last_applied;
            let id = format!("{}-{}-{}", last.map_or(0, |l| l.leader_id.term), last.map_or(0, |l| l.index), g.snapshots_built);
            let meta = SnapshotMeta { last_log_id: last, last_membership: g.data.membership.clone(), snapshot_id: id };
            StoredSnapshot { meta, data }
        };
        self.save_snapshot(&stored).map_err(io_write)?;
        lock(&self.inner).snapshot = Some(stored.clone());
        Ok(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeAddr>), SErr> {
        let g = lock(&self.inner);
        Ok((g.data.last_applied, g.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ChangeResult>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        {
            let mut g = lock(&self.inner);
            for e in entries {
                g.data.last_applied = Some(e.log_id);
                match e.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(c) => match g.data.config.apply(&c, e.log_id.index) {
                        Ok(()) => g.data.config.epoch += 1,
                        Err(why) => {
                            out.push(ChangeResult { epoch: g.data.config.epoch, rejected: Some(why) });
                            continue;
                        }
                    },
                    EntryPayload::Membership(m) => {
                        // A node that left keeps no role: added again
                        // (CLUSTER MEET after FORGET), it starts as a primary.
                        let ids: Vec<String> = m.nodes().map(|(_, n)| n.id.clone()).collect();
                        g.data.config.replicas.retain(|r, _| ids.contains(r));
                        g.data.membership = StoredMembership::new(Some(e.log_id), m);
                        g.data.config.epoch += 1;
                    }
                }
                out.push(ChangeResult { epoch: g.data.config.epoch, rejected: None });
            }
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta<NodeId, NodeAddr>, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), SErr> {
        let bytes = snapshot.into_inner();
        let data: SmData = serde_json::from_slice(&bytes).map_err(io_read)?;
        let stored = StoredSnapshot { meta: meta.clone(), data: bytes };
        self.save_snapshot(&stored).map_err(io_write)?;
        {
            let mut g = lock(&self.inner);
            g.data = data;
            g.snapshot = Some(stored);
        }
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let g = lock(&self.inner);
        Ok(g.snapshot.clone().map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_merges_ranges() {
        let mut c = ClusterConfig::default();
        c.assign(&[(0, 99)], "a");
        c.assign(&[(100, 199)], "a");
        c.assign(&[(50, 60)], "b");
        assert_eq!(c.slots, vec![(0, 49, "a".into()), (50, 60, "b".into()), (61, 199, "a".into())]);
        assert_eq!(c.count_of("a"), 189);
    }

    #[test]
    fn migrations_are_checked() {
        let mut c = ClusterConfig::default();
        c.assign(&[(0, 99)], "a");
        let begin =
            |id: &str, from: &str| Change::BeginMigration { id: id.into(), ranges: vec![(10, 20)], from: from.into(), to: "b".into() };
        assert_eq!(c.apply(&begin("m1", "b"), 5), Err("source and target are the same node".into()));
        assert_eq!(
            c.apply(&Change::BeginMigration { id: "m".into(), ranges: vec![(90, 120)], from: "a".into(), to: "b".into() }, 5),
            Err("slot 100 is not owned by a".into())
        );
        assert_eq!(c.apply(&begin("m1", "a"), 5), Ok(()));
        assert_eq!(c.migrations[0].log_index, 5);
        assert!(c.apply(&begin("m2", "a"), 6).unwrap_err().contains("already running"));
        assert!(c.apply(&Change::AssignSlots { ranges: vec![(15, 15)], owner: "c".into() }, 7).is_err());
        // Abort wins over a later complete, and the source keeps the slots.
        assert_eq!(c.apply(&Change::AbortMigration { id: "m1".into() }, 8), Ok(()));
        assert!(c.apply(&Change::CompleteMigration { id: "m1".into() }, 9).is_err());
        assert_eq!(c.count_of("a"), 100);
        assert_eq!(c.apply(&begin("m3", "a"), 10), Ok(()));
        assert_eq!(c.apply(&Change::CompleteMigration { id: "m3".into() }, 11), Ok(()));
        assert_eq!(c.slots, vec![(0, 9, "a".into()), (10, 20, "b".into()), (21, 99, "a".into())]);
        assert!(c.migrations.is_empty());
        assert!(c.apply(&Change::AbortMigration { id: String::new() }, 12).is_err());
    }

    #[test]
    fn claim_and_release_check_ownership() {
        let mut c = ClusterConfig::default();
        assert_eq!(c.apply(&Change::ClaimSlots { ranges: vec![(0, 9)], owner: "a".into() }, 1), Ok(()));
        assert_eq!(
            c.apply(&Change::ClaimSlots { ranges: vec![(10, 10), (5, 5)], owner: "b".into() }, 2),
            Err("Slot 5 is already busy".into())
        );
        assert_eq!(c.count_of("b"), 0);
        assert_eq!(c.apply(&Change::ClaimSlots { ranges: vec![(9, 9)], owner: "a".into() }, 2), Ok(()));
        assert_eq!(c.apply(&Change::ReleaseSlots { ranges: vec![(3, 4)] }, 3), Ok(()));
        assert_eq!(c.slots, vec![(0, 2, "a".into()), (5, 9, "a".into())]);
        assert_eq!(c.apply(&Change::ReleaseSlots { ranges: vec![(2, 3)] }, 4), Err("Slot 3 is already unassigned".into()));
        assert_eq!(c.apply(&Change::BumpEpoch, 5), Ok(()));
    }

    #[test]
    fn failure_and_recovery() {
        let mut c = ClusterConfig::default();
        assert_eq!(c.apply(&Change::NodeFailed { id: "b".into() }, 1), Ok(()));
        assert_eq!(c.apply(&Change::NodeFailed { id: "a".into() }, 2), Ok(()));
        assert!(c.apply(&Change::NodeFailed { id: "a".into() }, 3).is_err());
        assert_eq!(c.failed, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(c.apply(&Change::NodeRecovered { id: "a".into(), incarnation: "i2".into() }, 4), Ok(()));
        assert_eq!(c.failed, vec!["b".to_string()]);
        assert_eq!(c.incarnations.get("a").map(String::as_str), Some("i2"));
        // An older snapshot (without these fields) still loads.
        let old: ClusterConfig = serde_json::from_str(r#"{"epoch":3,"slots":[],"migrations":[]}"#).unwrap();
        assert!(old.failed.is_empty() && old.incarnations.is_empty());
    }

    #[test]
    fn replicas_own_no_slots() {
        let mut c = ClusterConfig::default();
        c.assign(&[(0, 99)], "a");
        let set = |id: &str, of: &str| Change::SetReplica { id: id.into(), of: of.into() };
        assert_eq!(c.apply(&set("a", "b"), 1), Err("To set a master the node must be empty and without assigned slots.".into()));
        assert_eq!(c.apply(&set("b", "b"), 1), Err("Can't replicate myself".into()));
        assert_eq!(c.apply(&set("b", "a"), 1), Ok(()));
        assert_eq!(c.apply(&set("c", "b"), 1), Err("I can only replicate a master, not a replica.".into()));
        assert!(c.apply(&set("a", "c"), 1).is_err());
        assert!(c.apply(&Change::AssignSlots { ranges: vec![(5, 5)], owner: "b".into() }, 2).is_err());
        assert_eq!(c.replicas.get("b").map(String::as_str), Some("a"));
    }

    #[test]
    fn promotion_moves_the_slots_and_the_replicas() {
        let mut c = ClusterConfig::default();
        c.assign(&[(0, 99), (200, 299)], "a");
        c.assign(&[(100, 199)], "b");
        let set = |id: &str, of: &str| Change::SetReplica { id: id.into(), of: of.into() };
        for (id, of) in [("r1", "a"), ("r2", "a"), ("rb", "b")] {
            assert_eq!(c.apply(&set(id, of), 1), Ok(()));
        }
        let promote = |r: &str, p: &str| Change::Promote { replica: r.into(), primary: p.into() };
        assert!(c.apply(&promote("rb", "a"), 2).is_err());
        assert_eq!(c.apply(&promote("r1", "a"), 2), Ok(()));
        assert_eq!(c.slots, vec![(0, 99, "r1".into()), (100, 199, "b".into()), (200, 299, "r1".into())]);
        let of = |id: &str| c.replicas.get(id).cloned();
        assert_eq!((of("r1"), of("r2"), of("a"), of("rb")), (None, Some("r1".into()), Some("r1".into()), Some("b".into())));
    }

    #[test]
    fn even_split() {
        let r = even_ranges(3);
        assert_eq!(r, vec![(0, 5460), (5461, 10921), (10922, 16383)]);
        assert_eq!(even_ranges(1), vec![(0, 16383)]);
    }
}
