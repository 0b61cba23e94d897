//! The slot map: the committed cluster configuration as this node's engine
//! sees it (members, the owner of each of the 16384 slots, the config
//! epoch, the migration in flight), with the gate of the slots commands may
//! touch now (`super::gate`). Shards and connections consult it; the Raft
//! state machine (`cluster::raft`) installs new views, and the routing
//! check built on it is `commands::routing`.
//!
//! Reading it costs one atomic load per command: the map keeps the current
//! `ClusterView` behind an `RwLock<Arc<..>>` plus a version counter; each
//! connection caches an `Arc` of the view and only takes the (uncontended,
//! read) lock when the version moved, i.e. once per configuration change.
//! Configuration changes are rare (Raft commits), commands are not, so the
//! hot path is a relaxed load of a read-mostly cache line and a compare.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::gate::Gate;
use super::health::Health;
use super::SLOTS;

/// Owner value of a slot no member serves.
pub const UNASSIGNED: u16 = u16::MAX;

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Redis-style 40-hex node id.
    pub id: String,
    /// Shard id (MYSHARDID): one primary per shard, so by default the node id.
    pub shard_id: String,
    /// Address clients reach the node at.
    pub host: String,
    pub port: u16,
    /// Port of the node's gRPC service (Raft and admin), on `host`.
    pub grpc_port: u16,
    /// Raft voter (else learner).
    pub voter: bool,
}

/// One committed cluster configuration, seen from this node.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub epoch: u64,
    pub members: Vec<Member>,
    /// Per slot: index into `members`, or `UNASSIGNED`.
    owner: Box<[u16]>,
    /// This node's index in `members`, when it is one.
    pub me: Option<usize>,
    /// The migration in progress, if any.
    pub migration: Option<Arc<MigrationView>>,
    /// Per member (same order): the group declared it failed.
    pub failed: Vec<bool>,
    /// The incarnation of this node the group accepts as serving.
    pub accepted: Option<String>,
    /// Per member: the member it replicates (`None`: a primary).
    pub primary_of: Vec<Option<usize>>,
    /// Per member: its slots are not served (failed, or this node while
    /// fenced). Set by `SlotMap::install`.
    down: Vec<bool>,
    /// Every slot has an owner that is not down. Set by `SlotMap::install`.
    pub covered: bool,
}

/// A migration as the engine sees it: which slots move, between whom.
#[derive(Clone, Debug)]
pub struct MigrationView {
    pub id: String,
    pub from: String,
    pub to: String,
    pub ranges: Vec<(u16, u16)>,
}

impl MigrationView {
    pub fn contains(&self, slot: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// Every slot that moves, ascending.
    pub fn slots(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.ranges.iter().flat_map(|&(a, b)| a..=b).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Where a command's slot is served.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Local,
    /// Served by this member.
    Moved(usize),
    Unassigned,
    /// Owned by this member, whose slots are out of service (it failed, or
    /// it is this node and came back without its data).
    Down(usize),
}

impl ClusterView {
    /// A configuration with no members and no slot assigned (a node in
    /// cluster mode before it joins a cluster).
    pub fn empty() -> ClusterView {
        ClusterView {
            epoch: 0,
            members: Vec::new(),
            owner: vec![UNASSIGNED; SLOTS].into_boxed_slice(),
            me: None,
            migration: None,
            failed: Vec::new(),
            accepted: None,
            primary_of: Vec::new(),
            down: Vec::new(),
            covered: false,
        }
    }

    /// Whether this node is the target of a migration moving `slot` (it
    /// holds the slot's keys as they arrive but does not serve them yet).
    pub fn importing(&self, slot: u16) -> bool {
        match (&self.migration, self.me) {
            (Some(m), Some(me)) => m.to == self.members[me].id && m.contains(slot),
            _ => false,
        }
    }

    /// Whether this node keeps keys of `slot`: it serves it, imports it,
    /// or nobody owns it. Keys of a slot left without an owner (CLUSTER
    /// DELSLOTS) stay where they are, unserved, as in Redis: ADDSLOTS on
    /// the same node serves them again; the slot going to another node
    /// drops them here.
    pub fn keeps(&self, slot: u16) -> bool {
        let owner = self.owner_of(slot);
        owner.is_none() || owner == self.me || owner == self.my_primary() || self.importing(slot)
    }

    /// The member member `i` replicates, if it is a replica.
    pub fn primary_of(&self, i: usize) -> Option<usize> {
        self.primary_of.get(i).copied().flatten()
    }

    /// The primary this node replicates, if it is a replica.
    pub fn my_primary(&self) -> Option<usize> {
        self.me.and_then(|me| self.primary_of(me))
    }

    /// The replicas of member `i`.
    pub fn replicas_of(&self, i: usize) -> Vec<usize> {
        (0..self.members.len()).filter(|&r| self.primary_of(r) == Some(i)).collect()
    }

    /// The member owning `slot`, whether or not it serves it now.
    pub fn owner_of(&self, slot: u16) -> Option<usize> {
        match self.owner.get(slot as usize).copied().unwrap_or(UNASSIGNED) {
            UNASSIGNED => None,
            o if (o as usize) < self.members.len() => Some(o as usize),
            _ => None,
        }
    }

    /// Whether member `i` was declared failed by the group.
    pub fn is_failed(&self, i: usize) -> bool {
        self.failed.get(i).copied().unwrap_or(false)
    }

    /// Whether member `i`'s slots are out of service.
    pub fn is_down(&self, i: usize) -> bool {
        self.down.get(i).copied().unwrap_or(false)
    }

    /// Builds a view from members and per-slot owner ids (`None` =
    /// unassigned). Owners that are not members count as unassigned.
    pub fn new(my_id: &str, epoch: u64, members: Vec<Member>, owners: impl IntoIterator<Item = (u16, String)>) -> ClusterView {
        let mut v = ClusterView::empty();
        v.epoch = epoch;
        v.me = members.iter().position(|m| m.id == my_id);
        v.members = members;
        for (slot, id) in owners {
            if let (Some(o), Some(i)) = (v.owner.get_mut(slot as usize), v.members.iter().position(|m| m.id == id)) {
                *o = i as u16;
            }
        }
        v
    }

    /// Assigns `slots` to the member with id `id` (no-op for unknown ids).
    #[cfg(test)]
    pub fn assign(&mut self, slots: impl IntoIterator<Item = u16>, id: &str) {
        let Some(i) = self.members.iter().position(|m| m.id == id) else { return };
        for s in slots {
            if let Some(o) = self.owner.get_mut(s as usize) {
                *o = i as u16;
            }
        }
    }

    #[inline]
    pub fn route(&self, slot: u16) -> Route {
        match self.owner.get(slot as usize).copied().unwrap_or(UNASSIGNED) {
            UNASSIGNED => Route::Unassigned,
            o if self.is_down(o as usize) => Route::Down(o as usize),
            o if Some(o as usize) == self.me => Route::Local,
            o if (o as usize) < self.members.len() => Route::Moved(o as usize),
            _ => Route::Unassigned,
        }
    }

    /// Slot ranges served by member `i`, ascending, as (first, last).
    pub fn ranges_of(&self, i: usize) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            if o as usize != i || o == UNASSIGNED {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.1 as usize + 1 == s => r.1 = s as u16,
                _ => out.push((s as u16, s as u16)),
            }
        }
        out
    }

    /// Every maximal run of consecutive slots with the same owner:
    /// (first, last, member index), ascending, unassigned runs left out.
    pub fn runs(&self) -> Vec<(u16, u16, usize)> {
        let mut out: Vec<(u16, u16, usize)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            if o == UNASSIGNED || o as usize >= self.members.len() {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.1 as usize + 1 == s && r.2 == o as usize => r.1 = s as u16,
                _ => out.push((s as u16, s as u16, o as usize)),
            }
        }
        out
    }

    /// Marks the members whose slots are out of service (failed ones, and
    /// this node when `fenced`) and whether every slot is served.
    pub fn derive(&mut self, fenced: bool) {
        self.down = (0..self.members.len()).map(|i| self.is_failed(i) || (fenced && Some(i) == self.me)).collect();
        self.covered = self.owner.iter().all(|&o| (o as usize) < self.members.len() && !self.down[o as usize]);
    }

    /// Number of slots whose owner is down.
    pub fn slots_down(&self) -> usize {
        self.owner.iter().filter(|&&o| self.is_down(o as usize)).count()
    }

    /// Number of slots with an owner.
    pub fn assigned(&self) -> usize {
        self.owner.iter().filter(|&&o| (o as usize) < self.members.len()).count()
    }

    /// Number of members serving at least one slot (CLUSTER INFO's size).
    pub fn size(&self) -> usize {
        (0..self.members.len()).filter(|&i| self.owner.contains(&(i as u16))).count()
    }
}

/// The node-wide slot map: the current view plus a version counter that
/// connections poll to refresh their cached copy, and the cut-over gate of
/// a migration leaving this node.
pub struct SlotMap {
    /// This node, as it announces itself (also before it is a member).
    pub myself: Member,
    version: AtomicU64,
    current: RwLock<Arc<ClusterView>>,
    /// Slots whose writes are held during a migration's cut-over.
    pub gate: Gate,
    /// The other members' liveness as this node probes it, and the
    /// settings failure detection follows.
    pub health: Health,
    /// Bumped with every installed view (for tasks that react to changes).
    changed: tokio::sync::watch::Sender<u64>,
    /// Requests to the control plane (set when it starts).
    pub control: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Request>>,
    /// PUBLISH messages (channel, payload) for the other nodes (set when
    /// the cluster bus starts; `cluster::publish` forwards them).
    pub publish: std::sync::OnceLock<tokio::sync::mpsc::Sender<(bytes::Bytes, bytes::Bytes)>>,
    /// What CLUSTER ADDSLOTS and SET-CONFIG-EPOCH recorded while this node
    /// is in no cluster; its slots are claimed when it joins one.
    pub pending: std::sync::Mutex<Pending>,
    /// Members that left the configuration lately, with when this node
    /// saw them go (CLUSTER FORGET of one of them is already done).
    departed: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
}

/// The slots and config epoch given to a node that is in no cluster yet
/// (`redis-cli --cluster create` sets them before CLUSTER MEET).
#[derive(Debug, Default)]
pub struct Pending {
    /// Slots claimed with CLUSTER ADDSLOTS, ascending.
    pub slots: std::collections::BTreeSet<u16>,
    /// CLUSTER SET-CONFIG-EPOCH's value (and BUMPEPOCH's increments).
    pub epoch: u64,
}

impl Pending {
    /// The slots as ascending inclusive ranges.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for &s in &self.slots {
            match out.last_mut() {
                Some(r) if r.1 + 1 == s => r.1 = s,
                _ => out.push((s, s)),
            }
        }
        out
    }
}

/// How long a member that left stays known as departed.
const DEPARTED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many departed members are remembered.
const DEPARTED_MAX: usize = 64;

impl SlotMap {
    /// A map for node `myself` holding no configuration yet.
    pub fn new(myself: Member) -> SlotMap {
        let view = ClusterView::empty();
        let (changed, _) = tokio::sync::watch::channel(1);
        SlotMap {
            myself,
            version: AtomicU64::new(1),
            current: RwLock::new(Arc::new(view)),
            gate: Gate::default(),
            health: Health::default(),
            changed,
            control: std::sync::OnceLock::new(),
            publish: std::sync::OnceLock::new(),
            pending: Default::default(),
            departed: Default::default(),
        }
    }

    /// Whether member `id` left the configuration within the last minute
    /// (Redis keeps a forgotten node out for as long).
    pub fn departed_lately(&self, id: &str) -> bool {
        let d = self.departed.lock().unwrap_or_else(|e| e.into_inner());
        d.iter().any(|(i, at)| i == id && at.elapsed() < DEPARTED_FOR)
    }

    fn note_departures(&self, old: &ClusterView, new: &ClusterView) {
        let gone: Vec<String> = old.members.iter().filter(|m| !new.members.iter().any(|n| n.id == m.id)).map(|m| m.id.clone()).collect();
        if gone.is_empty() {
            return;
        }
        let mut d = self.departed.lock().unwrap_or_else(|e| e.into_inner());
        d.retain(|(i, at)| at.elapsed() < DEPARTED_FOR && !gone.contains(i));
        let now = std::time::Instant::now();
        d.extend(gone.into_iter().map(|i| (i, now)));
        let excess = d.len().saturating_sub(DEPARTED_MAX);
        d.drain(..excess);
    }

    /// A receiver told of every new view.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The current view.
    pub fn load(&self) -> Arc<ClusterView> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the view; connections pick it up before their next command.
    /// A fenced node (back without its data) keeps its slots out of service
    /// until the view accepts this process's incarnation.
    pub fn install(&self, mut view: ClusterView) {
        if self.health.fenced() && view.me.is_some_and(|me| view.ranges_of(me).is_empty() && view.primary_of(me).is_some()) {
            // A replica: its data comes from its primary.
            self.health.set_fenced(false);
        }
        if self.health.fenced() && view.accepted.is_some() && view.accepted.as_ref() == self.health.incarnation.get() {
            self.health.set_fenced(false);
            tracing::info!("the cluster accepted this node back: serving its slots again");
        }
        view.derive(self.health.fenced());
        // A replica's shards also admit its primary's slots: READONLY
        // clients read them there (writes are redirected before).
        let primary = view.my_primary();
        let local = |s| view.route(s) == Route::Local;
        self.gate.set_served(|s| local(s) || (primary.is_some() && view.owner_of(s) == primary), local);
        let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), Arc::new(view));
        self.note_departures(&old, &self.load());
        let v = self.version.fetch_add(1, Ordering::Release) + 1;
        self.changed.send_replace(v);
    }

    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Completes once one of `slots` is no longer served here: a new
    /// configuration gave it away and no migration's cut-over holds it (a
    /// held slot still counts as served until the cut-over ends). Woken by
    /// the two things that can make it so, a new view and the gate
    /// reopening; nothing polls.
    pub async fn moved_away(&self, slots: &[u16]) {
        let mut changed = self.subscribe();
        loop {
            let opened = self.gate.opened();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if slots.iter().any(|&s| !self.gate.admits(s) && !self.gate.is_closed(s)) {
                return;
            }
            tokio::select! {
                // (`self` holds the sender: it cannot go away.)
                _ = changed.changed() => {}
                () = opened => {}
            }
        }
    }
}

/// What a connection may ask of the cluster control plane (CLUSTER
/// SETSLOT, CLUSTER REPLICATE); `cluster::migration` serves these.
pub enum Request {
    /// Move `slot`, keys included, from this node to member `to`, then
    /// purge this node's copy; the reply comes when it is done.
    Move { slot: u16, to: String, reply: tokio::sync::oneshot::Sender<Result<(), String>> },
    /// Make this node a replica of member `of` (CLUSTER REPLICATE); the
    /// reply comes once the change is committed.
    Replicate { of: String, reply: tokio::sync::oneshot::Sender<Result<(), String>> },
    /// Take over this replica's primary's slots (CLUSTER FAILOVER): with
    /// the primary's cooperation, or without it (`force`).
    Failover { force: bool, reply: tokio::sync::oneshot::Sender<Result<(), String>> },
    /// A configuration change of Redis's cluster tooling; the reply (a
    /// config epoch for BUMPEPOCH, else 0) comes once it is committed.
    Admin { op: AdminOp, reply: tokio::sync::oneshot::Sender<Result<u64, String>> },
}

/// The configuration changes CLUSTER MEET, ADDSLOTS, DELSLOTS, FORGET,
/// RESET and BUMPEPOCH ask of the control plane (`cluster::tooling`).
#[derive(Debug)]
pub enum AdminOp {
    /// Join the node at `host`:`port` (cluster bus `bus_port`): whichever
    /// of the two is in no cluster joins the other's.
    Meet { host: String, port: u16, bus_port: u16 },
    /// Give these unowned slots to this node.
    AddSlots(Vec<(u16, u16)>),
    /// Leave these slots without an owner.
    DelSlots(Vec<(u16, u16)>),
    /// Remove member `id` from the cluster.
    Forget(String),
    /// Leave the cluster (`hard`: also drop the node id for the next start).
    Reset { hard: bool },
    /// Raise the configuration epoch.
    BumpEpoch,
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn member(n: u8, port: u16) -> Member {
        let id = format!("{:040x}", n);
        Member { id: id.clone(), shard_id: id, host: "127.0.0.1".into(), port, grpc_port: port + 10000, voter: true }
    }

    /// Three members with a third of the slots each, seen from the first.
    pub fn three() -> ClusterView {
        let ms = vec![member(1, 7001), member(2, 7002), member(3, 7003)];
        let mut v = ClusterView::new(&ms[0].id.clone(), 3, ms, []);
        v.assign(0..5461, &format!("{:040x}", 1));
        v.assign(5461..10923, &format!("{:040x}", 2));
        v.assign(10923..16384, &format!("{:040x}", 3));
        v
    }

    #[tokio::test(start_paused = true)]
    async fn moved_away_wakes_on_a_new_view_and_on_reopening() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let map = Arc::new(SlotMap::new(member(1, 7001)));
        map.install(three());
        // 0 is served here, 6000 by the second member.
        let pending = |f: &mut std::pin::Pin<Box<dyn Future<Output = ()> + '_>>| {
            f.as_mut().poll(&mut Context::from_waker(Waker::noop())) == Poll::Pending
        };
        let mut away: std::pin::Pin<Box<dyn Future<Output = ()>>> = Box::pin(map.moved_away(&[6000]));
        assert!(!pending(&mut away), "a slot served elsewhere has moved already");
        let mut waits: std::pin::Pin<Box<dyn Future<Output = ()>>> = Box::pin(map.moved_away(&[0, 1]));
        assert!(pending(&mut waits));
        // A cut-over holds slot 0 and the new view gives it away: still
        // served until the cut-over ends.
        map.gate.close(&[0]);
        let mut v = three();
        v.assign([0], &format!("{:040x}", 2));
        map.install(v);
        assert!(pending(&mut waits));
        let m = map.clone();
        let opener = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            m.gate.open_all();
        });
        tokio::time::timeout(std::time::Duration::from_secs(60), waits).await.expect("woken by the gate reopening");
        opener.await.unwrap();
        // A new view alone wakes a waiter too.
        let m = map.clone();
        let waits = tokio::spawn(async move { m.moved_away(&[1]).await });
        tokio::task::yield_now().await;
        assert!(!waits.is_finished());
        let mut v = three();
        v.assign([0, 1], &format!("{:040x}", 2));
        map.install(v);
        tokio::time::timeout(std::time::Duration::from_secs(60), waits).await.expect("woken by the new view").unwrap();
    }

    #[test]
    fn ranges_and_counts() {
        let v = three();
        assert_eq!(v.ranges_of(0), vec![(0, 5460)]);
        assert_eq!(v.ranges_of(2), vec![(10923, 16383)]);
        assert_eq!(v.runs().len(), 3);
        assert_eq!(v.assigned(), SLOTS);
        assert_eq!(v.size(), 3);
        assert_eq!(v.route(0), Route::Local);
        assert_eq!(v.route(12182), Route::Moved(2));
        let mut e = ClusterView::empty();
        assert_eq!(e.route(5), Route::Unassigned);
        e.assign([5], "nobody");
        assert_eq!(e.assigned(), 0);
    }
}
