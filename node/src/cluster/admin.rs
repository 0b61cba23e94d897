//! The admin gRPC service cluster-admin talks to (any node will do): node
//! identity, status, and configuration changes. A change sent to a node that
//! is not the Raft leader is forwarded to the leader; with no leader (the
//! majority of voters is gone) it fails with an error saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use damselfly_proto::admin::admin_client::AdminClient;
use damselfly_proto::admin::admin_server::Admin;
use damselfly_proto::admin::{
    AbortMigrationRequest, AcceptNodeRequest, AddNodeRequest, AddReplicaRequest, AssignSlotsRequest, CreateRequest, MemberStatus,
    Migration, MoveProgress, MoveSlotsRequest, NodeInfoReply, NodeInfoRequest, RemoveNodeRequest, SlotRange, StatusReply, StatusRequest,
};
use openraft::ChangeMembers;
use tonic::{Request, Response, Status};

use super::channel;
use super::migration::{source, Control, ProposeError};
use super::raft::{even_ranges, raft_id, Change, NodeAddr, NodeId, Raft, StateMachine};
use crate::shard::Engine;
use crate::slot::SLOTS;

/// At most this many voters; further nodes join as learners.
const MAX_VOTERS: usize = 5;

pub struct AdminService {
    pub raft: Raft,
    pub sm: StateMachine,
    pub engine: Arc<Engine>,
    pub myself: NodeAddr,
    pub ctl: Arc<Control>,
}

type Reply<T> = Result<Response<T>, Status>;

fn failed(e: impl std::fmt::Display) -> Status {
    Status::failed_precondition(e.to_string())
}

/// Parses "host:port" into a gRPC URL.
fn grpc_url(addr: &str) -> Result<String, Status> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| Status::invalid_argument(format!("'{addr}' is not host:port")))?;
    port.parse::<u16>().map_err(|_| Status::invalid_argument(format!("bad port in '{addr}'")))?;
    Ok(format!("http://{host}:{port}"))
}

pub(super) async fn admin_client(url: &str) -> Result<AdminClient<crate::cluster::BusChannel>, Status> {
    Ok(AdminClient::new(channel(url).map_err(|e| Status::unavailable(format!("{url}: {e}")))?))
}

/// Asks the node at a gRPC address who it is.
async fn describe(addr: &str) -> Result<NodeAddr, Status> {
    let url = grpc_url(addr)?;
    let mut c = admin_client(&url).await?;
    let mut req = Request::new(NodeInfoRequest {});
    req.set_timeout(Duration::from_secs(5));
    let info = c.node_info(req).await.map_err(|e| Status::unavailable(format!("cannot reach {addr}: {}", e.message())))?.into_inner();
    let (host, port) = info.client_addr.rsplit_once(':').ok_or_else(|| Status::internal("bad client address"))?;
    let grpc_port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_default();
    Ok(NodeAddr { id: info.node_id, host: host.to_string(), port: port.parse().unwrap_or_default(), grpc_port })
}

/// How long a change may wait for a majority of voters to accept it.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long ACCEPT waits for a just-restarted node to answer this one's
/// prober before it reports the node unreachable.
const ACCEPT_PATIENCE: Duration = Duration::from_secs(5);

/// Awaits a Raft write, bounded: without a majority of voters nothing can
/// commit, and the caller is told so rather than left waiting.
async fn committed<T, E: std::fmt::Display>(f: impl std::future::Future<Output = Result<T, E>>) -> Result<(), Status> {
    match tokio::time::timeout(COMMIT_TIMEOUT, f).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(e)),
        Err(_) => Err(not_committed()),
    }
}

fn not_committed() -> Status {
    Status::unavailable(format!(
        "the change was not committed within {} s: a majority of voters is probably down; restart them and retry (nodes keep serving their slots meanwhile)",
        COMMIT_TIMEOUT.as_secs()
    ))
}

impl AdminService {
    /// The service over a running control plane (CLUSTER MEET, FORGET and
    /// RESET go through the same flows as cluster-admin's calls).
    pub fn of(ctl: &Arc<Control>) -> AdminService {
        AdminService {
            raft: ctl.raft.clone(),
            sm: ctl.sm.clone(),
            engine: ctl.engine.clone(),
            myself: ctl.myself.clone(),
            ctl: ctl.clone(),
        }
    }

    /// Forms a cluster of this node alone, when it is in none, and gives it
    /// the slots CLUSTER ADDSLOTS claimed for it meanwhile.
    async fn form_alone(&self) -> Result<(), Status> {
        if !self.raft.is_initialized().await.map_err(failed)? {
            let mine = raft_id(&self.myself.id).ok_or_else(|| Status::internal("bad node id"))?;
            // A concurrent call may have formed it first: that is fine.
            if let Err(e) = self.raft.initialize(BTreeMap::from([(mine, self.myself.clone())])).await {
                if !self.raft.is_initialized().await.map_err(failed)? {
                    return Err(failed(e));
                }
            }
        }
        self.await_leader().await?;
        super::tooling::claim_pending(&self.ctl).await.map_err(failed)
    }

    /// The leader's address when it is another node; an error when there is
    /// no leader.
    async fn leader_elsewhere(&self) -> Result<Option<NodeAddr>, Status> {
        let m = self.raft.metrics().borrow().clone();
        let Some(leader) = m.current_leader else {
            return Err(Status::unavailable(
                "no Raft leader: the cluster has not been created, or a majority of voters is down; restart the lost nodes and retry",
            ));
        };
        if leader == m.id {
            return Ok(None);
        }
        let node = m.membership_config.membership().get_node(&leader).cloned();
        node.map(Some).ok_or_else(|| Status::unavailable("the leader is not in the membership yet; retry"))
    }

    /// Forwards a write RPC to the leader when this node is not it.
    async fn forward<Req, F, Fut>(&self, req: Req, f: F) -> Result<Option<Response<StatusReply>>, Status>
    where
        F: FnOnce(AdminClient<crate::cluster::BusChannel>, Req) -> Fut,
        Fut: std::future::Future<Output = Result<Response<StatusReply>, Status>>,
    {
        match self.leader_elsewhere().await? {
            None => Ok(None),
            Some(l) => match f(admin_client(&l.grpc_url()).await?, req).await {
                Ok(r) => Ok(Some(r)),
                Err(e) if e.code() == tonic::Code::Unavailable && !e.message().contains("majority") => Err(Status::unavailable(format!(
                    "the Raft leader {}:{} is unreachable ({}); if a majority of voters is down, restart them and retry",
                    l.host,
                    l.grpc_port,
                    e.message()
                ))),
                Err(e) => Err(e),
            },
        }
    }

    /// Commits a configuration change on this node (the leader); a change
    /// the state machine refuses fails with its reason.
    async fn write(&self, c: Change) -> Result<(), Status> {
        let r = tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(c)).await;
        match r {
            Ok(Ok(r)) => r.data.rejected.map_or(Ok(()), |why| Err(failed(why))),
            Ok(Err(e)) => Err(failed(e)),
            Err(_) => Err(not_committed()),
        }
    }

    fn status(&self) -> StatusReply {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let cfg = self.sm.config();
        let leader_id = m.current_leader.and_then(|l| membership.get_node(&l)).map(|n| n.id.clone()).unwrap_or_default();
        let mut members: Vec<MemberStatus> = membership
            .nodes()
            .map(|(nid, n)| {
                let ranges: Vec<SlotRange> =
                    cfg.slots.iter().filter(|r| r.2 == n.id).map(|r| SlotRange { first: r.0 as u32, last: r.1 as u32 }).collect();
                MemberStatus {
                    node_id: n.id.clone(),
                    client_addr: format!("{}:{}", n.host, n.port),
                    grpc_addr: format!("{}:{}", n.host, n.grpc_port),
                    role: if voters.contains(nid) { "voter" } else { "learner" }.into(),
                    slot_count: cfg.count_of(&n.id) as u32,
                    ranges,
                    failed: cfg.failed.contains(&n.id),
                    replica_of: cfg.replicas.get(&n.id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let migrations = cfg
            .migrations
            .iter()
            .map(|m| Migration {
                id: m.id.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                ranges: m.ranges.iter().map(|&(a, b)| SlotRange { first: a as u32, last: b as u32 }).collect(),
            })
            .collect();
        StatusReply { leader_id, epoch: cfg.epoch, members, migrations }
    }

    /// Waits (bounded) until this node sees a leader.
    async fn await_leader(&self) -> Result<(), Status> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if rx.borrow().current_leader.is_some() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(Status::unavailable("no leader elected within 10 s; check that every node is reachable")),
            }
        }
    }

    /// Keys held by this node, over every shard and database.
    /// Keys across all databases and commands per second lately, summed
    /// over the shards (one job each).
    async fn load(&self) -> (u64, u64) {
        let mut waits = Vec::new();
        for s in 0..self.engine.nshards() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.engine.send(
                s,
                crate::shard::NO_TX,
                Box::new(move |sh| {
                    let n: usize = (0..sh.db_count()).map(|i| sh.db_if_exists(i).map_or(0, |d| d.len())).sum();
                    let _ = tx.send((n as u64, sh.rates.get()[0]));
                }),
            );
            waits.push(rx);
        }
        let (mut keys, mut ops) = (0, 0);
        for w in waits {
            let (k, o) = w.await.unwrap_or((0, 0));
            keys += k;
            ops += o;
        }
        (keys, ops)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn node_info(&self, _: Request<NodeInfoRequest>) -> Reply<NodeInfoReply> {
        use std::sync::atomic::Ordering::Relaxed;
        let (keys, ops_per_sec) = self.load().await;
        Ok(Response::new(NodeInfoReply {
            node_id: self.myself.id.clone(),
            client_addr: format!("{}:{}", self.myself.host, self.myself.port),
            version: env!("CARGO_PKG_VERSION").into(),
            shards: self.engine.nshards() as u32,
            keys,
            used_memory: crate::alloc::used_memory(),
            maxmemory: self.engine.cfg.maxmemory.load(Relaxed),
            ops_per_sec,
            connected_clients: self.engine.stats.connected_clients.load(Relaxed),
            raft_state: crate::cluster::figures().map_or("", |(r, _)| r.state).into(),
            uptime_seconds: crate::util::now_ms().saturating_sub(self.engine.stats.start_ms.load(Relaxed)) / 1000,
            repl_id: self.engine.repl.replid(),
            repl_offset: self.engine.repl.offset.load(Relaxed),
            repl_link: match self.engine.repl.master() {
                None => String::new(),
                Some(m) if m.link_up.load(Relaxed) => "up".into(),
                Some(m) if m.syncing.load(Relaxed) => "sync".into(),
                Some(_) => "down".into(),
            },
        }))
    }

    async fn create(&self, req: Request<CreateRequest>) -> Reply<StatusReply> {
        if self.raft.is_initialized().await.map_err(failed)? {
            return Err(failed("this node is already part of a cluster: use status, add-node or remove-node"));
        }
        let mut nodes: BTreeMap<NodeId, NodeAddr> = BTreeMap::new();
        let mine = raft_id(&self.myself.id).ok_or_else(|| Status::internal("bad node id"))?;
        nodes.insert(mine, self.myself.clone());
        for addr in &req.get_ref().grpc_addrs {
            let n = describe(addr).await?;
            let nid = raft_id(&n.id).ok_or_else(|| Status::internal(format!("{addr} has a bad node id")))?;
            if nodes.insert(nid, n).is_some() {
                return Err(Status::invalid_argument(format!("{addr} is listed twice (or shares an id prefix with another node)")));
            }
        }
        if nodes.len() > MAX_VOTERS {
            return Err(Status::invalid_argument(format!(
                "create takes at most {MAX_VOTERS} nodes (the voters); add the others with add-node"
            )));
        }
        self.raft.initialize(nodes.clone()).await.map_err(failed)?;
        self.await_leader().await?;
        let ids: Vec<String> = nodes.values().map(|n| n.id.clone()).collect();
        for (owner, range) in ids.iter().zip(even_ranges(ids.len())) {
            let c = Change::AssignSlots { ranges: vec![range], owner: owner.clone() };
            match self.leader_elsewhere().await? {
                None => self.write(c).await?,
                Some(l) => {
                    let req = AssignSlotsRequest {
                        node_id: owner.clone(),
                        ranges: vec![SlotRange { first: range.0 as u32, last: range.1 as u32 }],
                    };
                    admin_client(&l.grpc_url()).await?.assign_slots(req).await?;
                }
            }
        }
        Ok(Response::new(self.status()))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Reply<StatusReply> {
        Ok(Response::new(self.status()))
    }

    async fn add_node(&self, req: Request<AddNodeRequest>) -> Reply<StatusReply> {
        let mut req = req.into_inner();
        if req.form_cluster {
            self.form_alone().await?;
            req.form_cluster = false;
        }
        if let Some(r) = self.forward(req.clone(), |mut c, r| async move { c.add_node(r).await }).await? {
            return Ok(r);
        }
        let n = describe(&req.grpc_addr).await?;
        let nid = raft_id(&n.id).ok_or_else(|| Status::internal("bad node id"))?;
        let (voters, existing) = {
            let m = self.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            (membership.voter_ids().count(), membership.get_node(&nid).map(|e| e.id.clone()))
        };
        match existing {
            Some(id) if id == n.id => return Err(failed(format!("{} is already a member", req.grpc_addr))),
            Some(id) => {
                return Err(failed(format!(
                    "{} shares the first 16 hex digits of its id with member {id}: give it another --cluster-node-id",
                    req.grpc_addr
                )))
            }
            None => {}
        }
        committed(self.raft.add_learner(nid, n, true)).await?;
        if voters < MAX_VOTERS {
            committed(self.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([nid])), false)).await?;
        }
        Ok(Response::new(self.status()))
    }

    async fn remove_node(&self, req: Request<RemoveNodeRequest>) -> Reply<StatusReply> {
        let req = req.into_inner();
        if let Some(r) = self.forward(req.clone(), |mut c, r| async move { c.remove_node(r).await }).await? {
            return Ok(r);
        }
        let owned = self.sm.config().count_of(&req.node_id);
        if owned > 0 {
            return Err(failed(format!("node {} still owns {owned} slots: assign them to other nodes first", req.node_id)));
        }
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let Some((&nid, _)) = membership.nodes().find(|(_, n)| n.id == req.node_id) else {
            return Err(Status::not_found(format!("no member with id {}", req.node_id)));
        };
        let is_voter = membership.voter_ids().any(|v| v == nid);
        let change =
            if is_voter { ChangeMembers::RemoveVoters(BTreeSet::from([nid])) } else { ChangeMembers::RemoveNodes(BTreeSet::from([nid])) };
        committed(self.raft.change_membership(change, false)).await?;
        Ok(Response::new(self.status()))
    }

    async fn assign_slots(&self, req: Request<AssignSlotsRequest>) -> Reply<StatusReply> {
        let req = req.into_inner();
        if let Some(r) = self.forward(req.clone(), |mut c, r| async move { c.assign_slots(r).await }).await? {
            return Ok(r);
        }
        let known = self.raft.metrics().borrow().membership_config.membership().nodes().any(|(_, n)| n.id == req.node_id);
        if !known {
            return Err(Status::not_found(format!("no member with id {}: add the node first", req.node_id)));
        }
        let ranges = check_ranges(&req.ranges)?;
        self.write(Change::AssignSlots { ranges, owner: req.node_id }).await?;
        Ok(Response::new(self.status()))
    }

    type MoveSlotsStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<MoveProgress, Status>> + Send>>;

    async fn move_slots(&self, req: Request<MoveSlotsRequest>) -> Reply<Self::MoveSlotsStream> {
        let req = req.into_inner();
        let ranges = check_ranges(&req.ranges)?;
        if ranges.is_empty() {
            return Err(Status::invalid_argument("no slots given"));
        }
        let membership = self.raft.metrics().borrow().membership_config.membership().clone();
        let find = |id: &str| membership.nodes().find(|(_, n)| n.id == id).map(|(_, n)| n.clone());
        let from = find(&req.from).ok_or_else(|| Status::not_found(format!("no member with id {}", req.from)))?;
        let to = find(&req.to).ok_or_else(|| Status::not_found(format!("no member with id {}", req.to)))?;
        if from.id == to.id {
            return Err(Status::invalid_argument("source and target are the same node"));
        }
        let cfg = self.sm.config();
        if let Some(m) = cfg.migrations.first() {
            return Err(failed(format!("migration {} ({} -> {}) is already running: wait for it or abort it", m.id, m.from, m.to)));
        }
        if from.id != self.myself.id {
            // The source runs the migration: relay its progress.
            let mut c = admin_client(&from.grpc_url()).await?;
            let upstream = c.move_slots(req).await?.into_inner();
            return Ok(Response::new(Box::pin(upstream)));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let progress = Arc::new(source::Progress::default());
        let ctl = self.ctl.clone();
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let p = progress.clone();
            let mut work = Box::pin(source::run(ctl, to, ranges, progress));
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let report = |phase: &str, done: bool, pause_ms: u64| MoveProgress {
                keys_sent: p.keys.load(std::sync::atomic::Ordering::Relaxed),
                bytes_sent: p.bytes.load(std::sync::atomic::Ordering::Relaxed),
                phase: phase.to_string(),
                done,
                pause_ms,
            };
            let outcome = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tick.tick() => {
                        let phase = *p.phase.lock().unwrap_or_else(|e| e.into_inner());
                        // The operator may have gone away; the migration goes on.
                        let _ = tx.try_send(Ok(report(phase, false, 0)));
                    }
                }
            };
            let last = match outcome {
                Ok(m) => Ok(report("done", true, m.pause.as_millis() as u64)),
                Err(e) => Err(failed(e)),
            };
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "move-slots finished");
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn accept_node(&self, req: Request<AcceptNodeRequest>) -> Reply<StatusReply> {
        let req = req.into_inner();
        if let Some(r) = self.forward(req.clone(), |mut c, r| async move { c.accept_node(r).await }).await? {
            return Ok(r);
        }
        let health = &self.ctl.map.health;
        let incarnation = if req.node_id == self.myself.id {
            health.incarnation.get().cloned().unwrap_or_default()
        } else {
            // A node restarted just now may not have answered this one's
            // prober yet: give it a few probe rounds.
            let deadline = tokio::time::Instant::now() + ACCEPT_PATIENCE;
            loop {
                let Some(p) = health.peer(&req.node_id) else {
                    return Err(Status::not_found(format!("no member with id {}", req.node_id)));
                };
                if p.link_up && !p.incarnation.is_empty() {
                    break p.incarnation;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(failed(format!("node {} is not reachable: start it, then accept it", req.node_id)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        self.write(Change::NodeRecovered { id: req.node_id, incarnation }).await?;
        Ok(Response::new(self.status()))
    }

    async fn add_replica(&self, req: Request<AddReplicaRequest>) -> Reply<StatusReply> {
        let req = req.into_inner();
        if let Some(r) = self.forward(req.clone(), |mut c, r| async move { c.add_replica(r).await }).await? {
            return Ok(r);
        }
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        for id in [&req.node_id, &req.primary_id] {
            if !membership.nodes().any(|(_, n)| &n.id == id) {
                return Err(Status::not_found(format!("no member with id {id}")));
            }
        }
        self.write(Change::SetReplica { id: req.node_id, of: req.primary_id }).await?;
        Ok(Response::new(self.status()))
    }

    async fn abort_migration(&self, _: Request<AbortMigrationRequest>) -> Reply<StatusReply> {
        let Some(m) = self.sm.config().migrations.first().cloned() else {
            return Err(failed("no migration is running"));
        };
        match self.ctl.propose(Change::AbortMigration { id: m.id }).await {
            Ok(_) | Err(ProposeError::Rejected(_)) => Ok(Response::new(self.status())),
            Err(ProposeError::Unknown(e)) => Err(Status::unavailable(e)),
        }
    }
}

/// Checks slot ranges from a request.
fn check_ranges(ranges: &[SlotRange]) -> Result<Vec<(u16, u16)>, Status> {
    let mut out = Vec::new();
    for r in ranges {
        if r.first > r.last || r.last as usize >= SLOTS {
            return Err(Status::invalid_argument(format!("bad slot range {}-{}: slots are 0-16383", r.first, r.last)));
        }
        out.push((r.first as u16, r.last as u16));
    }
    Ok(out)
}
