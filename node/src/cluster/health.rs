//! Failure detection. Every node pings every other member over the cluster
//! bus (`Migration.Ping`) ten times per node timeout (at most every 100
//! ms) and records the answers in the slot map's `Health` (what CLUSTER
//! NODES shows: ping/pong times, link state, `fail?`). The Raft leader
//! turns what its own probes see into the group's decisions:
//!
//! - a member silent for `cluster-node-timeout` is declared failed
//!   (`Change::NodeFailed`): every node shows it `fail`, its slots are not
//!   served, and the cluster is down while `cluster-require-full-coverage`
//!   is on;
//! - a failed member that answers again with its data (the same process,
//!   or one that reloaded its persistence) is accepted back
//!   (`Change::NodeRecovered` with its incarnation);
//! - a member that came back without the data of the slots it owns (it
//!   restarted without persistence) is declared failed, and stays so until
//!   an operator accepts the loss (`cluster-admin accept NODE`); one that
//!   owns no slots is accepted at once, having nothing to lose.
//!
//! A node that starts without its data fences itself until the group
//! accepts its new incarnation, so it never serves empty slots in the
//! meantime (`Health::fenced`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use damselfly_proto::migration::migration_client::MigrationClient;
use damselfly_proto::migration::PingRequest;
use tracing::{info, warn};

use super::migration::Control;
use super::raft::Change;
use super::{channel, BusChannel};
use crate::slot::health::{bus_received, bus_sent, BusMsg, Pong};
use crate::slot::map::ClusterView;
use crate::util::now_ms;

/// Probes the other members forever; on the leader, also decides.
pub async fn run(ctl: Arc<Control>) {
    let mut channels: HashMap<String, BusChannel> = HashMap::new();
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let deciding = Arc::new(AtomicBool::new(false));
    loop {
        let timeout = ctl.map.health.node_timeout();
        let view = ctl.map.load();
        let now = now_ms();
        let peers: Vec<_> = view.members.iter().filter(|m| m.id != ctl.myself.id).collect();
        let ids: Vec<&str> = peers.iter().map(|m| m.id.as_str()).collect();
        ctl.map.health.track(&ids, now);
        let url_of = |m: &crate::slot::map::Member| format!("http://{}:{}", m.host, m.grpc_port);
        channels.retain(|url, _| peers.iter().any(|m| &url_of(m) == url));
        for m in peers {
            let url = url_of(m);
            if !lock(&in_flight).insert(m.id.clone()) {
                continue;
            }
            let ch = match channels.get(&url) {
                Some(ch) => ch.clone(),
                None => match channel(&url) {
                    Ok(ch) => channels.entry(url.clone()).or_insert(ch).clone(),
                    Err(e) => {
                        warn!(%url, "cannot probe: {e}");
                        lock(&in_flight).remove(&m.id);
                        continue;
                    }
                },
            };
            ctl.map.health.ping_sent(&m.id, now);
            bus_sent(BusMsg::Ping);
            let (ctl, in_flight, id) = (ctl.clone(), in_flight.clone(), m.id.clone());
            tokio::spawn(async move {
                let limit = Duration::from_millis(timeout.clamp(100, 2000));
                let mut req = tonic::Request::new(PingRequest { from: ctl.myself.id.clone() });
                req.set_timeout(limit);
                let answer = tokio::time::timeout(limit, MigrationClient::new(ch).ping(req)).await;
                match answer {
                    Ok(Ok(r)) if r.get_ref().node_id == id => {
                        bus_received(BusMsg::Pong);
                        let r = r.into_inner();
                        let pong =
                            Pong { incarnation: r.incarnation, lost_data: r.lost_data, repl_offset: r.repl_offset, log_index: r.log_index };
                        ctl.map.health.pong(&id, now_ms(), now, pong, applied_index(&ctl));
                    }
                    _ => ctl.map.health.ping_failed(&id),
                }
                lock(&in_flight).remove(&id);
            });
        }
        isolation(&ctl, &view, now, timeout);
        if is_leader(&ctl) && !deciding.swap(true, Ordering::AcqRel) {
            let (ctl, deciding) = (ctl.clone(), deciding.clone());
            tokio::spawn(async move {
                decide(&ctl, &view).await;
                deciding.store(false, Ordering::Release);
            });
        }
        tokio::time::sleep(Duration::from_millis((timeout / 10).clamp(10, 100))).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last Raft log index this node applied to its configuration.
fn applied_index(ctl: &Control) -> u64 {
    ctl.raft.metrics().borrow().last_applied.map_or(0, |l| l.index)
}

fn is_leader(ctl: &Control) -> bool {
    let m = ctl.raft.metrics().borrow().clone();
    m.current_leader == Some(m.id)
}

/// Marks this node isolated while it has heard from no majority of the
/// Raft voters (itself included) for half the node timeout: it then
/// refuses writes, before the majority's leader could declare it failed
/// and promote one of its replicas, so two primaries never take writes
/// for the same slots. Only answers to recent pings from peers whose log
/// this node has applied count (`Health::current_within`): a node waking
/// from a stall takes writes again only once it has applied whatever the
/// majority decided meanwhile — if that was its failure, its slots are
/// out of service by then.
fn isolation(ctl: &Control, view: &ClusterView, now: u64, timeout: u64) {
    ctl.map.health.confirm(applied_index(ctl));
    let voters: Vec<&crate::slot::map::Member> = view.members.iter().filter(|m| m.voter).collect();
    if voters.is_empty() {
        ctl.map.health.set_isolated(false);
        ctl.map.health.note_majority(now);
        return;
    }
    let heard = voters.iter().filter(|m| m.id == ctl.myself.id || ctl.map.health.current_within(&m.id, now, timeout / 2)).count();
    let isolated = heard * 2 <= voters.len();
    if !isolated {
        ctl.map.health.note_majority(now);
    }
    if isolated != ctl.map.health.isolated() {
        if isolated {
            warn!(heard, voters = voters.len(), "cut off from the majority of the cluster: refusing writes");
        } else {
            info!("the majority of the cluster is reachable again: taking writes");
        }
        ctl.map.health.set_isolated(isolated);
    }
}

/// What the leader's probes say of a member.
struct Seen {
    /// Answered within the node timeout.
    alive: bool,
    /// Silent for longer than the node timeout.
    silent: bool,
    lost_data: bool,
    incarnation: String,
}

/// The changes the leader proposes for what its probes see, one member at
/// a time (each waits for its commit).
async fn decide(ctl: &Control, view: &ClusterView) {
    let health = &ctl.map.health;
    let now = now_ms();
    let timeout = health.node_timeout();
    let cfg = ctl.sm.config();
    for (i, m) in view.members.iter().enumerate() {
        let seen = if m.id == ctl.myself.id {
            let incarnation = health.incarnation.get().cloned().unwrap_or_default();
            Seen { alive: true, silent: false, lost_data: health.fenced(), incarnation }
        } else {
            let Some(p) = health.peer(&m.id) else { continue };
            let alive = p.pong_recv > 0 && now.saturating_sub(p.pong_recv) <= timeout;
            Seen { alive, silent: health.suspect(&m.id, now), lost_data: p.lost_data, incarnation: p.incarnation }
        };
        let failed = cfg.failed.contains(&m.id);
        // This process of the member was accepted (by an operator, or back
        // with its data): a pong sent before it heard so may still say it
        // lost its data; its next ones will not.
        let incarnation_accepted = cfg.incarnations.get(&m.id) == Some(&seen.incarnation);
        // Accepted already (its next pong will say so).
        let accepted = !failed && incarnation_accepted;
        let owns = !view.ranges_of(i).is_empty();
        let change = match (failed, seen) {
            (false, s) if s.silent => Some((Change::NodeFailed { id: m.id.clone() }, "unreachable for the node timeout")),
            (false, s) if s.alive && s.lost_data && owns && !incarnation_accepted => {
                Some((Change::NodeFailed { id: m.id.clone() }, "restarted without the data of its slots"))
            }
            (_, s) if s.alive && !accepted && (!s.lost_data || !owns) && (failed || s.lost_data) => {
                Some((Change::NodeRecovered { id: m.id.clone(), incarnation: s.incarnation }, "reachable again with its data"))
            }
            _ => None,
        };
        let Some((change, why)) = change else { continue };
        let failing = matches!(change, Change::NodeFailed { .. });
        match ctl.propose_here(change).await {
            Ok(_) if failing => warn!(node = %m.id, "node declared failed: {why}"),
            Ok(_) => info!(node = %m.id, "node serving again: {why}"),
            Err(e) => warn!(node = %m.id, "could not record the node's state ({why}): {e}"),
        }
    }
    promote(ctl, now, timeout).await;
}

/// Failover: every failed primary that owns slots and has a live replica
/// hands them to the replica that applied the most of its stream.
async fn promote(ctl: &Control, now: u64, timeout: u64) {
    let cfg = ctl.sm.config();
    let health = &ctl.map.health;
    for primary in cfg.failed.iter().filter(|p| cfg.count_of(p) > 0) {
        let best = cfg
            .replicas
            .iter()
            .filter(|(r, p)| *p == primary && !cfg.failed.contains(r))
            .filter_map(|(r, _)| {
                if *r == ctl.myself.id {
                    Some((ctl.engine.repl.offset.load(std::sync::atomic::Ordering::Relaxed), r))
                } else if health.heard_within(r, now, timeout) {
                    health.peer(r).map(|p| (p.repl_offset, r))
                } else {
                    None
                }
            })
            .max();
        let Some((offset, replica)) = best else { continue };
        let change = Change::Promote { replica: replica.clone(), primary: primary.clone() };
        match ctl.propose_here(change).await {
            Ok(_) => warn!(%primary, %replica, offset, "failover: replica promoted in place of its failed primary"),
            Err(e) => warn!(%primary, %replica, "failover not recorded: {e}"),
        }
    }
}
