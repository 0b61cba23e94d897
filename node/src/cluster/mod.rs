//! Cluster mode. The node-wide slot map itself (which node serves each of
//! the 16384 hash slots, as the last committed cluster configuration says)
//! lives below the shards, in `slot::map`; here `slots` is the per-command
//! routing check that turns a key's slot into "serve it here", `-MOVED`,
//! `-CLUSTERDOWN` or `-CROSSSLOT`; `identity` owns this node's persistent
//! 40-hex id; `raft` the metadata group (its state machine, durable storage
//! and gRPC transport); `admin` the admin service cluster-admin drives;
//! `migration` live slot migration; `health` failure detection;
//! `replicas` makes the node follow the primary the configuration names;
//! `tooling` the configuration changes of Redis's cluster tooling (CLUSTER
//! MEET, ADDSLOTS, FORGET, ...). Standalone mode (the default) has none
//! of this: the node owns every slot and nothing is checked.

pub mod admin;
pub mod health;
pub mod identity;
pub mod migration;
pub mod publish;
pub mod raft;
pub mod replicas;
pub mod takeover;
pub mod tooling;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use damselfly_proto::bus_auth;
use tonic::service::interceptor::InterceptedService;
use tracing::{error, info, warn};

use crate::shard::Engine;
use crate::slot::map::SlotMap;
use raft::{LogStore, NodeAddr, StateMachine};

/// The cluster bus secret (`--cluster-secret`), set once at start; none:
/// the bus is open.
static SECRET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sets the cluster bus secret every call this node makes carries and every
/// call it serves must carry. Before `start`; later calls are ignored.
pub fn set_secret(secret: Option<String>) {
    let _ = SECRET.set(secret);
}

fn secret() -> Option<&'static str> {
    SECRET.get().and_then(|s| s.as_deref())
}

/// Mutual TLS on the cluster bus (`tls-cluster yes`): this node's
/// certificate and key (PEM), presented as server and as client, and the
/// CA a peer's certificate must be signed by.
struct BusTls {
    identity: tonic::transport::Identity,
    ca: tonic::transport::Certificate,
}

static TLS: std::sync::OnceLock<Option<BusTls>> = std::sync::OnceLock::new();

/// Reads the files of the bus's TLS, when `tls-cluster` is on. Before
/// `start`; later calls are ignored.
pub fn set_tls(p: &crate::config::tls::TlsParams) -> std::io::Result<()> {
    if !p.cluster {
        let _ = TLS.set(None);
        return Ok(());
    }
    let read = |path: &str| std::fs::read(path).map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")));
    let identity = tonic::transport::Identity::from_pem(read(&p.cert_file)?, read(&p.key_file)?);
    let ca = crate::config::tls::ca_pem(p).map_err(std::io::Error::other)?;
    let _ = TLS.set(Some(BusTls { identity, ca: tonic::transport::Certificate::from_pem(ca) }));
    Ok(())
}

fn bus_tls() -> Option<&'static BusTls> {
    TLS.get().and_then(Option::as_ref)
}

/// A channel to a peer whose calls carry the cluster bus secret.
pub type BusChannel = InterceptedService<tonic::transport::Channel, bus_auth::Attach>;

/// A lazily connecting gRPC channel to `url` (http://host:port), adding the
/// cluster secret to every call.
pub fn channel(url: &str) -> Result<BusChannel, tonic::transport::Error> {
    let ep = match bus_tls() {
        // The peer's certificate must be the CA's and name the host it is
        // reached at; ours goes with every connection.
        Some(tls) => tonic::transport::Endpoint::from_shared(url.replacen("http://", "https://", 1))?
            .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(tls.ca.clone()).identity(tls.identity.clone()))?,
        None => tonic::transport::Endpoint::from_shared(url.to_string())?,
    };
    let ch = ep.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true).connect_lazy();
    // The secret was checked at start-up (config), so this cannot fail.
    let auth = bus_auth::Attach::new(secret()).unwrap_or_default();
    Ok(InterceptedService::new(ch, auth))
}

/// What the metrics endpoint reads of the control plane, set by `start`
/// once the Raft node runs.
static OBSERVED: std::sync::OnceLock<Observed> = std::sync::OnceLock::new();

struct Observed {
    raft: raft::Raft,
    log: LogStore,
    ctl: Arc<migration::Control>,
}

/// The metadata group as this node sees it (openraft's metrics plus the
/// commit index the log store keeps).
#[derive(Debug)]
pub struct RaftFigures {
    pub term: u64,
    /// The leader's Raft id, if one is known.
    pub leader: Option<u64>,
    pub is_leader: bool,
    /// leader, follower, candidate or learner.
    pub state: &'static str,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub committed: Option<u64>,
    pub voters: usize,
}

/// The control plane's figures; `None` before it started (or in
/// standalone mode).
pub fn figures() -> Option<(RaftFigures, migration::MigrationFigures)> {
    let o = OBSERVED.get()?;
    let m = o.raft.metrics().borrow().clone();
    let state = match m.state {
        openraft::ServerState::Leader => "leader",
        openraft::ServerState::Follower => "follower",
        openraft::ServerState::Candidate => "candidate",
        openraft::ServerState::Learner => "learner",
        openraft::ServerState::Shutdown => "shutdown",
    };
    let raft = RaftFigures {
        term: m.current_term,
        leader: m.current_leader,
        is_leader: m.current_leader == Some(m.id),
        state,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        committed: o.log.committed_index(),
        voters: m.membership_config.membership().voter_ids().count(),
    };
    Some((raft, o.ctl.migration_figures()))
}

/// Raft timing: heartbeats every 100 ms, elections after 0.5-1 s of
/// silence (loopback and LAN clusters; a leader's loss is noticed within
/// about a second).
fn raft_config() -> Result<Arc<openraft::Config>, String> {
    let c = openraft::Config {
        cluster_name: "damselfly".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        ..Default::default()
    };
    Ok(Arc::new(c.validate().map_err(|e| e.to_string())?))
}

/// Starts the control plane on its own thread: the Raft node (state under
/// `<dir>/raft/`) and the gRPC server (Raft transport and admin service) on
/// `bind:grpc_port`. Errors opening the state or binding the port are
/// returned before the thread starts serving. `has_data`: the node loads
/// its data at start (a journal or a snapshot file); a member restarting
/// without it fences its slots until the group accepts it
/// (`cluster::health`).
pub fn start(engine: Arc<Engine>, map: Arc<SlotMap>, dir: &std::path::Path, bind: &str, has_data: bool) -> std::io::Result<()> {
    let me = &map.myself;
    let myself = NodeAddr { id: me.id.clone(), host: me.host.clone(), port: me.port, grpc_port: me.grpc_port };
    let nid = raft::raft_id(&me.id).ok_or_else(|| std::io::Error::other("bad node id"))?;
    let raft_dir = dir.join("raft");
    let incarnation = identity::random_id();
    let _ = map.health.incarnation.set(incarnation.clone());
    // A member before: its Raft log holds entries (an earlier start that
    // never joined a cluster leaves it empty) or a snapshot replaced them.
    let logged = std::fs::metadata(raft_dir.join("log.jsonl")).is_ok_and(|m| m.len() > 0);
    let member_before = logged || raft_dir.join("snapshot.json").exists();
    if member_before && !has_data {
        map.health.set_fenced(true);
        warn!("restarted without the data of this node's slots (no journal, no snapshot file): they stay out of service until the cluster accepts the loss (cluster-admin accept) or a replica takes over");
    }
    let log = LogStore::open(&raft_dir)?;
    let log_view = log.clone();
    let sm = StateMachine::open(&raft_dir, map.clone())?;
    let _ = sm.engine.set(engine.clone());
    let addr: SocketAddr = format!("{bind}:{}", me.grpc_port)
        .parse()
        .or_else(|_| format!("[{bind}]:{}", me.grpc_port).parse())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad gRPC bind address: {e}")))?;
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let config = raft_config().map_err(std::io::Error::other)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("cluster").enable_all().build()?;
    std::thread::Builder::new().name("cluster".into()).spawn(move || {
        rt.block_on(async move {
            let raft = match raft::Raft::new(nid, config, raft::network::Network, log, sm.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    error!("cannot start Raft: {e}");
                    std::process::exit(1);
                }
            };
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    error!("gRPC listener unusable: {e}");
                    std::process::exit(1);
                }
            };
            info!(%addr, "cluster gRPC service listening");
            let ctl = Arc::new(migration::Control {
                raft: raft.clone(),
                sm: sm.clone(),
                engine: engine.clone(),
                map,
                myself: myself.clone(),
                running: Default::default(),
                imports: Default::default(),
                incarnation,
                current: Default::default(),
                sent: Default::default(),
                completed: Default::default(),
                last_pause_us: Default::default(),
            });
            let _ = OBSERVED.set(Observed { raft: raft.clone(), log: log_view, ctl: ctl.clone() });
            tokio::spawn(migration::purge::run(ctl.clone()));
            tokio::spawn(health::run(ctl.clone()));
            tokio::spawn(replicas::run(ctl.clone()));
            tokio::spawn(tooling::claim_on_join(ctl.clone()));
            let (requests, rx) = tokio::sync::mpsc::unbounded_channel();
            let _ = ctl.map.control.set(requests);
            tokio::spawn(migration::serve(ctl.clone(), rx));
            let (published, rx) = tokio::sync::mpsc::channel(publish::BACKLOG);
            let _ = ctl.map.publish.set(published);
            tokio::spawn(publish::forward(ctl.clone(), rx));
            let admin = admin::AdminService { raft: raft.clone(), sm, engine, myself, ctl: ctl.clone() };
            let max = migration::MAX_MESSAGE;
            // Every service goes through the secret check.
            let check = bus_auth::Check::new(secret());
            if secret().is_none() {
                warn!(%addr, "no --cluster-secret: the cluster bus accepts calls from anyone who reaches it; firewall this port");
            }
            let mut server = tonic::transport::Server::builder();
            if let Some(tls) = bus_tls() {
                // Mutual TLS: a peer (node or cluster-admin) without a
                // certificate the CA signed does not get past the handshake.
                let cfg = tonic::transport::ServerTlsConfig::new().identity(tls.identity.clone()).client_ca_root(tls.ca.clone());
                server = match server.tls_config(cfg) {
                    Ok(s) => s,
                    Err(e) => {
                        error!("cluster bus TLS: {e}");
                        std::process::exit(1);
                    }
                };
                info!(%addr, "cluster bus: mutual TLS");
            }
            let served = server
                .timeout(Duration::from_secs(60))
                .add_service(damselfly_proto::raft::raft_server::RaftServer::with_interceptor(
                    raft::network::RaftService { raft },
                    check.clone(),
                ))
                .add_service(damselfly_proto::admin::admin_server::AdminServer::with_interceptor(admin, check.clone()))
                .add_service(InterceptedService::new(
                    damselfly_proto::migration::migration_server::MigrationServer::new(migration::target::MigrationService(ctl))
                        .max_decoding_message_size(max)
                        .max_encoding_message_size(max),
                    check,
                ))
                .serve_with_incoming(tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
                    // Replies go out at once (Nagle would hold small ones
                    // back for the peer's delayed ACK: tens of ms per call).
                    s.inspect(|s| {
                        let _ = s.set_nodelay(true);
                    })
                }))
                .await;
            if let Err(e) = served {
                error!("gRPC server stopped: {e}");
            }
        })
    })?;
    Ok(())
}
