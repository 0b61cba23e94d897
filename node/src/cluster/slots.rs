//! The slot map: the committed cluster configuration as this node's engine
//! sees it (members, the owner of each of the 16384 slots, the config
//! epoch), and the routing check every keyed command passes in cluster mode.
//!
//! Reading it costs one atomic load per command: the map keeps the current
//! `ClusterView` behind an `RwLock<Arc<..>>` plus a version counter; each
//! connection caches an `Arc` of the view and only takes the (uncontended,
//! read) lock when the version moved, i.e. once per configuration change.
//! Configuration changes are rare (Raft commits), commands are not, so the
//! hot path is a relaxed load of a read-mostly cache line and a compare.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::migration::gate::Gate;
use crate::commands::CommandSpec;
use crate::error::CmdError;
use crate::slot::{key_slot, SLOTS};

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
}

impl ClusterView {
    /// A configuration with no members and no slot assigned (a node in
    /// cluster mode before it joins a cluster).
    pub fn empty() -> ClusterView {
        ClusterView { epoch: 0, members: Vec::new(), owner: vec![UNASSIGNED; SLOTS].into_boxed_slice(), me: None, migration: None }
    }

    /// Whether this node is the target of a migration moving `slot` (it
    /// holds the slot's keys as they arrive but does not serve them yet).
    pub fn importing(&self, slot: u16) -> bool {
        match (&self.migration, self.me) {
            (Some(m), Some(me)) => m.to == self.members[me].id && m.contains(slot),
            _ => false,
        }
    }

    /// Whether this node keeps keys of `slot`: it serves it or imports it.
    pub fn keeps(&self, slot: u16) -> bool {
        self.route(slot) == Route::Local || self.importing(slot)
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
    /// Bumped with every installed view (for tasks that react to changes).
    changed: tokio::sync::watch::Sender<u64>,
    /// Requests to the control plane (set when it starts).
    pub control: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<super::migration::Request>>,
}

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
            changed,
            control: std::sync::OnceLock::new(),
        }
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
    pub fn install(&self, view: ClusterView) {
        self.gate.set_served(|s| view.route(s) == Route::Local);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
        let v = self.version.fetch_add(1, Ordering::Release) + 1;
        self.changed.send_replace(v);
    }

    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// A connection's cluster state: its cached view and the ASKING/READONLY
/// flags.
pub struct ConnCluster {
    pub map: Arc<SlotMap>,
    view: Arc<ClusterView>,
    version: u64,
    /// Set by ASKING; consumed by the next command.
    pub asking: bool,
    /// Set by READONLY, cleared by READWRITE. Without replicas it only
    /// changes what the connection reports.
    pub readonly: bool,
    /// Between MULTI and EXEC: the slot of the queued commands' keys, and
    /// whether they span several slots (EXEC then fails with CROSSSLOT).
    tx_slot: Option<u16>,
    tx_cross: bool,
    /// The one slot of the keys of the command last checked, when they
    /// share one (`None` for keyless commands and cross-slot scripts).
    pub last_slot: Option<u16>,
}

impl ConnCluster {
    pub fn new(map: Arc<SlotMap>) -> ConnCluster {
        let version = map.version();
        let view = map.load();
        ConnCluster { map, view, version, asking: false, readonly: false, tx_slot: None, tx_cross: false, last_slot: None }
    }

    /// The current view, refreshed if the configuration changed.
    #[inline]
    pub fn view(&mut self) -> &Arc<ClusterView> {
        let v = self.map.version();
        if v != self.version {
            self.view = self.map.load();
            self.version = v;
        }
        &self.view
    }

    /// The routing check of one command (Redis's order: CROSSSLOT while
    /// gathering keys, then the owner of their slot). Keyless commands pass.
    /// `queued`: the command is being queued after MULTI; `in_multi`: a
    /// transaction is open (EXEC then checks its slot with `finish_tx`).
    /// `cross_ok` says whether keys may span slots (a script declaring
    /// `allow-cross-slot-keys`); it is only asked when they do, and then
    /// every key's slot must be served here.
    pub fn check(
        &mut self,
        spec: &CommandSpec,
        args: &[Bytes],
        queued: bool,
        in_multi: bool,
        cross_ok: impl FnOnce() -> bool,
    ) -> Result<(), CmdError> {
        // ASKING lasts one command. It will admit commands for slots this
        // node is importing once migrations exist; until then nothing is.
        self.asking = false;
        self.last_slot = None;
        if !queued && !in_multi {
            self.tx_slot = None;
            self.tx_cross = false;
        }
        let slot = match command_slot(spec, args) {
            Ok(Some(slot)) => slot,
            Ok(None) => return Ok(()),
            Err(_) if !queued && cross_ok() => return self.all_local(spec, args),
            Err(e) => return Err(e),
        };
        self.last_slot = Some(slot);
        if queued {
            match self.tx_slot {
                None => self.tx_slot = Some(slot),
                Some(s) if s != slot => self.tx_cross = true,
                _ => {}
            }
        }
        let view = self.view();
        match view.route(slot) {
            Route::Local => Ok(()),
            Route::Unassigned => Err(CmdError::Other("CLUSTERDOWN Hash slot not served".into())),
            Route::Moved(i) => Err(moved(slot, &view.members[i])),
        }
    }
}

impl ConnCluster {
    /// Ends a transaction's routing: CROSSSLOT when its queued commands'
    /// keys spanned slots (EXEC fails), and the next one starts afresh.
    pub fn finish_tx(&mut self) -> Result<(), CmdError> {
        let cross = std::mem::take(&mut self.tx_cross);
        self.tx_slot = None;
        if cross {
            Err(crossslot())
        } else {
            Ok(())
        }
    }

    /// Every key of the command is in a slot served here; else the error for
    /// the first one that is not.
    fn all_local(&mut self, spec: &CommandSpec, args: &[Bytes]) -> Result<(), CmdError> {
        let view = self.view().clone();
        let mut err = None;
        for_each_key(spec, args, |k| {
            if err.is_none() {
                err = route_error(&view, key_slot(k));
            }
        });
        err.map_or(Ok(()), Err)
    }

    /// Every key is in a slot served here; else the error for the first one
    /// that is not.
    pub fn keys_served_here(&mut self, keys: &[Bytes]) -> Result<(), CmdError> {
        let view = self.view().clone();
        keys.iter().find_map(|k| route_error(&view, key_slot(k))).map_or(Ok(()), Err)
    }
}

/// The error for a slot not served here, if it is not.
fn route_error(view: &ClusterView, slot: u16) -> Option<CmdError> {
    match view.route(slot) {
        Route::Local => None,
        Route::Unassigned => Some(CmdError::Other("CLUSTERDOWN Hash slot not served".into())),
        Route::Moved(i) => Some(moved(slot, &view.members[i])),
    }
}

/// Whether the gate holds back one of the command's keys (its slot is not
/// served here now, or a migration's cut-over holds it): the command must
/// then go back to its connection to wait and be routed again.
pub fn held_back(map: &SlotMap, spec: &CommandSpec, args: &[Bytes]) -> bool {
    let mut held = false;
    for_each_key(spec, args, |k| held = held || !map.gate.admits(key_slot(k)));
    held
}

/// The `-MOVED` error for `slot`, served by `m`.
pub fn moved(slot: u16, m: &Member) -> CmdError {
    CmdError::Other(format!("MOVED {slot} {}:{}", m.host, m.port))
}

/// The single slot all of a command's keys hash to (`None` for a keyless
/// command), or CROSSSLOT.
pub fn command_slot(spec: &CommandSpec, args: &[Bytes]) -> Result<Option<u16>, CmdError> {
    let mut slot = None;
    let mut cross = false;
    for_each_key(spec, args, |k| {
        let s = key_slot(k);
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => cross = true,
            _ => {}
        }
    });
    if cross {
        return Err(crossslot());
    }
    Ok(slot)
}

fn crossslot() -> CmdError {
    CmdError::Other("CROSSSLOT Keys in request don't hash to the same slot".into())
}

/// Calls `f` with every key argument of a command, as its key rules find
/// them (none for a rule whose count or keyword is not there: the command
/// then reports its own error).
pub fn for_each_key<'a>(spec: &'a CommandSpec, args: &'a [Bytes], mut f: impl FnMut(&'a [u8])) {
    for i in spec.key_indices(args) {
        f(&args[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::lookup;

    fn member(n: u8, port: u16) -> Member {
        let id = format!("{:040x}", n);
        Member { id: id.clone(), shard_id: id, host: "127.0.0.1".into(), port, grpc_port: port + 10000, voter: true }
    }

    fn three() -> ClusterView {
        let ms = vec![member(1, 7001), member(2, 7002), member(3, 7003)];
        let mut v = ClusterView::new(&ms[0].id.clone(), 3, ms, []);
        v.assign(0..5461, &format!("{:040x}", 1));
        v.assign(5461..10923, &format!("{:040x}", 2));
        v.assign(10923..16384, &format!("{:040x}", 3));
        v
    }

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
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

    #[test]
    fn routing_errors() {
        let map = Arc::new(SlotMap::new(member(1, 7001)));
        map.install(three());
        let mut c = ConnCluster::new(map.clone());
        let get = lookup(b"get").unwrap();
        // foo -> 12182, on the third node.
        assert_eq!(c.check(get, &args(&["get", "foo"]), false, false, || false).unwrap_err().to_string(), "MOVED 12182 127.0.0.1:7003");
        // bar -> 5061, local.
        assert!(c.check(get, &args(&["get", "bar"]), false, false, || false).is_ok());
        let mget = lookup(b"mget").unwrap();
        assert_eq!(
            c.check(mget, &args(&["mget", "foo", "bar"]), false, false, || false).unwrap_err().to_string(),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        assert!(c.check(mget, &args(&["mget", "{bar}1", "{bar}2"]), false, false, || false).is_ok());
        let ping = lookup(b"ping").unwrap();
        assert!(c.check(ping, &args(&["ping"]), false, false, || false).is_ok());
        // A script declaring allow-cross-slot-keys may span slots served
        // here (bar 5061, b 3300), never one served elsewhere (foo).
        let eval = lookup(b"eval").unwrap();
        let two = args(&["eval", "return 1", "2", "bar", "b"]);
        assert!(c.check(eval, &two, false, false, || true).is_ok());
        assert!(c.check(eval, &two, false, false, || false).unwrap_err().to_string().starts_with("CROSSSLOT"));
        let remote = args(&["eval", "return 1", "2", "bar", "foo"]);
        assert_eq!(c.check(eval, &remote, false, false, || true).unwrap_err().to_string(), "MOVED 12182 127.0.0.1:7003");
        // A new configuration is picked up by the next command.
        map.install(ClusterView::empty());
        assert_eq!(
            c.check(get, &args(&["get", "bar"]), false, false, || false).unwrap_err().to_string(),
            "CLUSTERDOWN Hash slot not served"
        );
    }

    #[test]
    fn numkeys_commands() {
        // The real declarations: their key rules drive the slot check.
        let (eval, zus) = (lookup(b"eval").unwrap(), lookup(b"zunionstore").unwrap());
        let slot = |spec: &CommandSpec, a: &[&str]| command_slot(spec, &args(a)).map_err(|e| e.to_string());
        assert_eq!(slot(eval, &["eval", "return 1", "0"]), Ok(None));
        assert_eq!(slot(eval, &["eval", "return 1", "1", "foo", "bar"]), Ok(Some(12182)));
        assert!(slot(eval, &["eval", "s", "2", "foo", "bar"]).is_err());
        assert_eq!(slot(eval, &["eval", "s", "x", "foo"]), Ok(None));
        assert_eq!(slot(eval, &["eval", "s", "5", "foo"]), Ok(None));
        assert!(slot(zus, &["zunionstore", "bar", "1", "foo"]).is_err());
        assert_eq!(slot(zus, &["zunionstore", "{foo}d", "2", "foo", "{foo}x"]), Ok(Some(12182)));
    }
}
