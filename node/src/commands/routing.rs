//! The routing check every keyed command passes in cluster mode, built on
//! the node's slot map (`slot::map`): a connection's cached view of it,
//! and the check that turns the slot of a command's keys (found through its
//! declared key rules) into "serve it here", `-MOVED`, `-CLUSTERDOWN` or
//! `-CROSSSLOT`.

use std::sync::Arc;

use bytes::Bytes;

use crate::commands::{flag, CommandSpec};
use crate::error::CmdError;
use crate::slot::key_slot;
use crate::slot::map::{ClusterView, Member, Route, SlotMap};

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
        let full = self.map.health.full_coverage();
        // READONLY: a replica serves reads of its primary's slots.
        let replica_read = self.readonly && !spec.has_flag(crate::commands::flag::WRITE);
        let view = self.view();
        if replica_read && view.my_primary().is_some_and(|p| view.route(slot) == Route::Moved(p)) {
            return if full && !view.covered { Err(CmdError::Other("CLUSTERDOWN The cluster is down".into())) } else { Ok(()) };
        }
        route_result(view, slot, full)?;
        // Cut off from the majority: another node may own these slots by
        // now (`cluster::health`). The coarse clock: this runs for every
        // write, against a timeout of seconds.
        if spec.has_flag(crate::commands::flag::WRITE) && self.map.health.refuses_writes(crate::util::coarse_now_ms()) {
            return Err(CmdError::Other("CLUSTERDOWN The cluster is down".into()));
        }
        Ok(())
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
        let full = self.map.health.full_coverage();
        let view = self.view().clone();
        let mut err = None;
        for_each_key(spec, args, |k| {
            if err.is_none() {
                err = route_result(&view, key_slot(k), full).err();
            }
        });
        err.map_or(Ok(()), Err)
    }

    /// Every key is in a slot served here; else the error for the first one
    /// that is not.
    pub fn keys_served_here(&mut self, keys: &[Bytes]) -> Result<(), CmdError> {
        let full = self.map.health.full_coverage();
        let view = self.view().clone();
        keys.iter().find_map(|k| route_result(&view, key_slot(k), full).err()).map_or(Ok(()), Err)
    }
}

/// Whether `slot` is served here, else the error, in Redis's order: a slot
/// nobody (live) serves, then a cluster that is down as a whole (some slot
/// unserved while `cluster-require-full-coverage` is on), then `-MOVED`.
fn route_result(view: &ClusterView, slot: u16, full_coverage: bool) -> Result<(), CmdError> {
    match view.route(slot) {
        Route::Unassigned | Route::Down(_) => Err(CmdError::Other("CLUSTERDOWN Hash slot not served".into())),
        _ if full_coverage && !view.covered => Err(CmdError::Other("CLUSTERDOWN The cluster is down".into())),
        Route::Local => Ok(()),
        Route::Moved(i) => Err(moved(slot, &view.members[i])),
    }
}

/// Whether the gate holds back one of the command's keys (its slot is not
/// served here now, or a migration's cut-over holds it): the command must
/// then go back to its connection to wait and be routed again.
pub fn held_back(map: &SlotMap, spec: &CommandSpec, args: &[Bytes]) -> bool {
    let (mut held, write) = (false, spec.has_flag(flag::WRITE));
    for_each_key(spec, args, |k| held = held || !map.gate.admits_for(key_slot(k), write));
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
    use crate::slot::map::tests::{member, three};

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
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
        // A container's subcommand is routed by its own key.
        let object = lookup(b"object").unwrap();
        assert_eq!(
            c.check(object, &args(&["object", "encoding", "foo"]), false, false, || false).unwrap_err().to_string(),
            "MOVED 12182 127.0.0.1:7003"
        );
        assert!(c.check(object, &args(&["object", "encoding", "bar"]), false, false, || false).is_ok());
        assert!(c.check(object, &args(&["object", "help"]), false, false, || false).is_ok());
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
    fn failed_owners_and_coverage() {
        use std::sync::atomic::Ordering::Relaxed;
        let map = Arc::new(SlotMap::new(member(1, 7001)));
        let mut v = three();
        v.failed = vec![false, false, true];
        map.install(v);
        let mut c = ConnCluster::new(map.clone());
        let get = lookup(b"get").unwrap();
        let err = |c: &mut ConnCluster, k: &str| c.check(get, &args(&["get", k]), false, false, || false).map_err(|e| e.to_string());
        // foo (12182) is on the failed third node; bar (5061) is local,
        // c (7365) on the second node.
        assert_eq!(err(&mut c, "foo"), Err("CLUSTERDOWN Hash slot not served".into()));
        assert_eq!(err(&mut c, "bar"), Err("CLUSTERDOWN The cluster is down".into()));
        assert_eq!(err(&mut c, "c"), Err("CLUSTERDOWN The cluster is down".into()));
        map.health.full_coverage.store(false, Relaxed);
        assert_eq!(err(&mut c, "foo"), Err("CLUSTERDOWN Hash slot not served".into()));
        assert_eq!(err(&mut c, "bar"), Ok(()));
        assert_eq!(err(&mut c, "c"), Err("MOVED 7365 127.0.0.1:7002".into()));
        // A fenced node serves none of its slots until its incarnation is
        // accepted, and keeps their keys meanwhile.
        map.health.full_coverage.store(true, Relaxed);
        let _ = map.health.incarnation.set("i1".into());
        map.health.set_fenced(true);
        map.install(three());
        assert_eq!(err(&mut c, "bar"), Err("CLUSTERDOWN Hash slot not served".into()));
        assert!(map.load().keeps(5061) && !map.gate.admits(5061));
        let mut v = three();
        v.accepted = Some("i1".into());
        map.install(v);
        assert!(!map.health.fenced());
        assert_eq!(err(&mut c, "bar"), Ok(()));
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
