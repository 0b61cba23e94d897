//! What Redis's cluster tooling (`redis-cli --cluster`) asks of the control
//! plane through CLUSTER MEET, ADDSLOTS/DELSLOTS, FORGET, RESET and
//! BUMPEPOCH, done as the matching Raft changes: MEET runs the admin
//! service's add-node flow (forming a cluster of the met node first when it
//! has none), FORGET its remove-node flow, ADDSLOTS/DELSLOTS commit
//! `ClaimSlots`/`ReleaseSlots`. A node in no cluster keeps the slots
//! ADDSLOTS gave it in the slot map's `Pending` and claims them once it is
//! a member.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use damselfly_proto::admin::{AddNodeRequest, RemoveNodeRequest, StatusRequest};
use tonic::Request;

use super::admin::{admin_client, AdminService};
use super::migration::{Control, ProposeError};
use super::raft::Change;
use crate::slot::map::{AdminOp, ClusterView};
use damselfly_proto::admin::admin_server::Admin;

/// How long MEET waits for the other node to add this one and for the
/// change to reach this node.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Set once CLUSTER RESET took this node out of its cluster: its Raft node
/// is stopped, so it can join another only after a restart.
static LEFT: AtomicBool = AtomicBool::new(false);

/// Runs one request; the reply is BUMPEPOCH's new epoch, else 0.
pub async fn run(ctl: &Arc<Control>, op: AdminOp) -> Result<u64, String> {
    if LEFT.load(Ordering::Acquire) {
        return Err("this node left its cluster (CLUSTER RESET): restart it to join a cluster again".into());
    }
    match op {
        AdminOp::Meet { host, port, bus_port } => meet(ctl, &host, port, bus_port).await.map(|()| 0),
        AdminOp::AddSlots(ranges) => commit(ctl, Change::ClaimSlots { ranges, owner: ctl.myself.id.clone() }).await.map(|_| 0),
        AdminOp::DelSlots(ranges) => commit(ctl, Change::ReleaseSlots { ranges }).await.map(|_| 0),
        AdminOp::Forget(id) => forget(ctl, id).await.map(|()| 0),
        AdminOp::Reset { hard } => reset(ctl, hard).await.map(|()| 0),
        AdminOp::BumpEpoch => commit(ctl, Change::BumpEpoch).await,
    }
}

/// Commits a change through the leader and waits until this node applied
/// it; returns the configuration epoch this node then sees.
async fn commit(ctl: &Arc<Control>, c: Change) -> Result<u64, String> {
    let done = ctl.propose(c).await.map_err(|e| e.to_string())?;
    if !ctl.applied(done.log_index, Duration::from_secs(5)).await {
        return Err("the change committed but this node has not applied it yet; retry".into());
    }
    Ok(ctl.map.load().epoch)
}

/// Claims the slots CLUSTER ADDSLOTS gave this node before it was a member
/// (this node must be one now). Slots another member took meanwhile are
/// not claimed: the error names the first.
pub async fn claim_pending(ctl: &Arc<Control>) -> Result<(), String> {
    // One claim at a time (MEET's and the join watcher's).
    static CLAIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = CLAIMING.lock().await;
    let ranges = ctl.map.pending.lock().unwrap_or_else(|e| e.into_inner()).ranges();
    if ranges.is_empty() {
        return Ok(());
    }
    let r = ctl.propose(Change::ClaimSlots { ranges, owner: ctl.myself.id.clone() }).await;
    match r {
        Ok(done) => {
            ctl.applied(done.log_index, Duration::from_secs(5)).await;
            *ctl.map.pending.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
            Ok(())
        }
        Err(ProposeError::Rejected(why)) => {
            *ctl.map.pending.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
            Err(why)
        }
        Err(ProposeError::Unknown(why)) => Err(why),
    }
}

/// Claims pending slots whenever this node finds itself a member (another
/// node's MEET added it).
pub async fn claim_on_join(ctl: Arc<Control>) {
    let mut changed = ctl.map.subscribe();
    loop {
        let member = ctl.map.load().me.is_some();
        let waiting = !ctl.map.pending.lock().unwrap_or_else(|e| e.into_inner()).slots.is_empty();
        if member && waiting {
            if let Err(e) = claim_pending(&ctl).await {
                tracing::warn!("slots given by CLUSTER ADDSLOTS before this node joined were not claimed: {e}");
            }
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// CLUSTER MEET: when this node is in a cluster, the other node joins it
/// (unless it is already a member, or belongs to another cluster: clusters
/// are not merged); else this node asks the other to add it, the other
/// forming a cluster of itself first if it has none.
async fn meet(ctl: &Arc<Control>, host: &str, port: u16, bus_port: u16) -> Result<(), String> {
    if host == ctl.myself.host && port == ctl.myself.port {
        return Ok(());
    }
    let grpc_addr = host_port(host, bus_port);
    let url = format!("http://{grpc_addr}");
    let initialized = ctl.raft.is_initialized().await.map_err(|e| e.to_string())?;
    let mut other = admin_client(&url).await.map_err(|e| e.message().to_string())?;
    if initialized {
        let mut req = Request::new(StatusRequest {});
        req.set_timeout(Duration::from_secs(5));
        let st = other.status(req).await.map_err(|e| format!("cannot reach {grpc_addr}: {}", e.message()))?.into_inner();
        if st.members.iter().any(|m| m.node_id == ctl.myself.id) {
            return Ok(());
        }
        if !st.members.is_empty() {
            return Err(format!(
                "{host}:{port} belongs to another cluster, and clusters cannot be merged: CLUSTER RESET it (or start it afresh) first"
            ));
        }
        let req = Request::new(AddNodeRequest { grpc_addr, form_cluster: false });
        AdminService::of(ctl).add_node(req).await.map_err(|e| e.message().to_string())?;
        return Ok(());
    }
    let mine = host_port(&ctl.myself.host, ctl.myself.grpc_port);
    let mut req = Request::new(AddNodeRequest { grpc_addr: mine, form_cluster: true });
    req.set_timeout(JOIN_TIMEOUT);
    other.add_node(req).await.map_err(|e| format!("{host}:{port} did not add this node: {}", e.message()))?;
    if !joined(ctl).await {
        return Err("added to the cluster, but this node has not heard so yet; check CLUSTER NODES".into());
    }
    claim_pending(ctl).await
}

/// `host:port`, an IPv6 host in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Waits (bounded) until this node's configuration lists it as a member.
async fn joined(ctl: &Control) -> bool {
    let mut changed = ctl.map.subscribe();
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        if ctl.map.load().me.is_some() {
            return true;
        }
        if !matches!(tokio::time::timeout_at(deadline, changed.changed()).await, Ok(Ok(()))) {
            return false;
        }
    }
}

/// CLUSTER FORGET: removes the member from the group; one another node's
/// FORGET removed already counts as done.
async fn forget(ctl: &Arc<Control>, id: String) -> Result<(), String> {
    match AdminService::of(ctl).remove_node(Request::new(RemoveNodeRequest { node_id: id })).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == tonic::Code::NotFound => Ok(()),
        Err(e) => Err(e.message().to_string()),
    }
}

/// CLUSTER RESET on a member: it gives up its slots (its keys were checked
/// to be none) and leaves the group, stops its Raft node and deletes its
/// Raft state, so that after a restart it is a fresh node (with a new id
/// when `hard`). Until then it knows no other node and joins none.
async fn reset(ctl: &Arc<Control>, hard: bool) -> Result<(), String> {
    let me = ctl.myself.id.clone();
    let mine: Vec<(u16, u16)> = ctl.sm.config().slots.iter().filter(|r| r.2 == me).map(|r| (r.0, r.1)).collect();
    if !mine.is_empty() {
        commit(ctl, Change::ReleaseSlots { ranges: mine }).await?;
    }
    // A node other nodes' FORGET removed may not hear of it (the leader
    // stops replicating to it): its own membership then lacks it.
    let (still_member, members) = {
        let m = ctl.raft.metrics().borrow().membership_config.clone();
        let ms = m.membership();
        let found = ms.nodes().any(|(_, n)| n.id == me);
        (found, ms.nodes().count())
    };
    // The only member has no one to leave (and a group cannot be empty).
    if still_member && members > 1 {
        forget(ctl, me).await?;
    }
    LEFT.store(true, Ordering::Release);
    if let Err(e) = ctl.raft.shutdown().await {
        tracing::warn!("stopping the Raft node: {e}");
    }
    let raft_dir = ctl.sm.dir().to_path_buf();
    if let Err(e) = std::fs::remove_dir_all(&raft_dir) {
        tracing::warn!("removing {}: {e}", raft_dir.display());
    }
    if hard {
        if let Some(data) = raft_dir.parent() {
            let _ = std::fs::remove_file(data.join(super::identity::NODE_ID_FILE));
        }
    }
    *ctl.map.pending.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
    ctl.map.install(ClusterView::empty());
    tracing::warn!("CLUSTER RESET: this node left its cluster; restart it to join one again");
    Ok(())
}
