//! The Raft transport over gRPC (`proto/proto/raft.proto`): one typed RPC
//! per openraft request (append entries, vote, install snapshot). `Network`
//! and `Peer` are the client side openraft uses; `RaftService` is the
//! server side every node runs. Messages are converted in `convert`.
//!
//! Failures reach openraft as it expects: a peer that cannot be reached is
//! `Unreachable` (openraft backs off), a slow or garbled exchange is a
//! `Network` error (retried at once), and an error the peer's Raft node
//! returned is a `RemoteError`. A malformed request is refused with
//! `InvalidArgument`; nothing received is trusted to be well formed.

use std::time::Duration;

use damselfly_proto::raft as pb;
use damselfly_proto::raft::raft_client::RaftClient;
use damselfly_proto::raft::raft_server;
use openraft::error::{Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};

use super::convert::{FromPb, Malformed, ToPb};
use super::types::{NodeAddr, NodeId, Raft, TypeConfig};
use crate::cluster::{channel, BusChannel};
use crate::slot::health::{bus_received, bus_sent, BusMsg};

/// Creates a client per peer.
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Peer {
        Peer { target, node: node.clone(), client: None }
    }
}

/// One peer, connected lazily.
pub struct Peer {
    target: NodeId,
    node: NodeAddr,
    client: Option<RaftClient<BusChannel>>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>;

impl Peer {
    /// The client, connecting (lazily) if there is none.
    fn client(&mut self) -> Result<RaftClient<BusChannel>, Unreachable> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = RaftClient::new(channel(&self.node.grpc_url()).map_err(|e| Unreachable::new(&e))?);
        Ok(self.client.insert(c).clone())
    }

    /// A request with openraft's deadline for it.
    fn request<T>(msg: T, option: &RPCOption) -> tonic::Request<T> {
        let mut request = tonic::Request::new(msg);
        request.set_timeout(option.hard_ttl());
        request
    }

    /// The RPC error for a failed call.
    fn failed<E: std::error::Error>(&mut self, status: tonic::Status) -> RPCError<NodeId, NodeAddr, E> {
        match status.code() {
            // A slow reply (a busy peer) is worth retrying at once, as is
            // a message either side could not decode; only a peer that
            // cannot be reached earns openraft's backoff.
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled | tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted => {
                RPCError::Network(NetworkError::new(&status))
            }
            _ => {
                // Drop the channel so the next attempt reconnects.
                self.client = None;
                RPCError::Unreachable(Unreachable::new(&status))
            }
        }
    }

    /// The outcome of a call the peer answered: its response, the error its
    /// Raft node returned, or a network error for a reply that does not
    /// decode. (The error type is openraft's, large as it is.)
    #[allow(clippy::result_large_err)]
    fn settle<P, T, E>(&self, reply: P) -> RpcResult<T, E>
    where
        Result<T, RaftError<NodeId, E>>: FromPb<P>,
        E: std::error::Error,
    {
        match <Result<T, RaftError<NodeId, E>>>::from_pb(reply) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e))),
            Err(m) => Err(RPCError::Network(NetworkError::new(&m))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    /// How long replication to an unreachable peer pauses between tries:
    /// two heartbeats (openraft's default is 500 ms, which a cut-over
    /// waiting for a commit would feel in full).
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, Infallible> {
        bus_sent(BusMsg::Raft);
        let sent = self.client().map_err(RPCError::Unreachable)?.append_entries(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => {
                bus_received(BusMsg::Raft);
                self.settle(reply.into_inner())
            }
            Err(status) => Err(self.failed(status)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        bus_sent(BusMsg::Raft);
        let sent = self.client().map_err(RPCError::Unreachable)?.install_snapshot(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => {
                bus_received(BusMsg::Raft);
                self.settle(reply.into_inner())
            }
            Err(status) => Err(self.failed(status)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>, Infallible> {
        bus_sent(BusMsg::Raft);
        let sent = self.client().map_err(RPCError::Unreachable)?.vote(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => {
                bus_received(BusMsg::Raft);
                self.settle(reply.into_inner())
            }
            Err(status) => Err(self.failed(status)),
        }
    }
}

/// The server side: hands each request to the local Raft node and returns
/// its response or error.
pub struct RaftService {
    pub raft: Raft,
}

fn refuse(m: Malformed) -> tonic::Status {
    tonic::Status::invalid_argument(m.to_string())
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: tonic::Request<pb::AppendEntriesRequest>,
    ) -> Result<tonic::Response<pb::AppendEntriesReply>, tonic::Status> {
        bus_received(BusMsg::Raft);
        let rpc = AppendEntriesRequest::from_pb(request.into_inner()).map_err(refuse)?;
        bus_sent(BusMsg::Raft);
        Ok(tonic::Response::new(self.raft.append_entries(rpc).await.to_pb()))
    }

    async fn vote(&self, request: tonic::Request<pb::VoteRequest>) -> Result<tonic::Response<pb::VoteReply>, tonic::Status> {
        bus_received(BusMsg::Raft);
        let rpc = VoteRequest::from_pb(request.into_inner()).map_err(refuse)?;
        bus_sent(BusMsg::Raft);
        Ok(tonic::Response::new(self.raft.vote(rpc).await.to_pb()))
    }

    async fn install_snapshot(
        &self,
        request: tonic::Request<pb::InstallSnapshotRequest>,
    ) -> Result<tonic::Response<pb::InstallSnapshotReply>, tonic::Status> {
        bus_received(BusMsg::Raft);
        let rpc = InstallSnapshotRequest::from_pb(request.into_inner()).map_err(refuse)?;
        bus_sent(BusMsg::Raft);
        Ok(tonic::Response::new(self.raft.install_snapshot(rpc).await.to_pb()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use openraft::{LogId, SnapshotMeta, Vote};

    use super::*;
    use crate::cluster::raft::tests::DirGuard;
    use crate::cluster::raft::{raft_id, LogStore, StateMachine};
    use crate::slot::map::{Member, SlotMap};

    /// A one-node group, leader of itself, serving the Raft service on a
    /// loopback port.
    async fn serve(dir: &std::path::Path) -> (Raft, NodeId, NodeAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let id = "ab".repeat(20);
        let addr = NodeAddr { id: id.clone(), host: "127.0.0.1".into(), port: 1, grpc_port: port };
        let me = Member { id: id.clone(), shard_id: id.clone(), host: addr.host.clone(), port: 1, grpc_port: port, voter: true };
        let log = LogStore::open(dir).expect("log");
        let sm = StateMachine::open(dir, Arc::new(SlotMap::new(me))).expect("state machine");
        let nid = raft_id(&id).expect("id");
        let raft = Raft::new(nid, crate::cluster::raft_config().expect("config"), Network, log, sm).await.expect("raft");
        raft.initialize(BTreeMap::from([(nid, addr.clone())])).await.expect("initialize");
        raft.wait(Some(Duration::from_secs(10))).current_leader(nid, "leader").await.expect("leader");
        let service = raft_server::RaftServer::new(RaftService { raft: raft.clone() });
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
        (raft, nid, addr)
    }

    fn option() -> RPCOption {
        RPCOption::new(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn calls_round_trip_and_errors_map_to_openraft_kinds() {
        let dir = std::env::temp_dir().join(format!("damselfly-raftnet-{}", crate::cluster::identity::random_id()));
        let _g = DirGuard(dir.clone());
        let (raft, nid, addr) = serve(&dir).await;
        let mut peer = Network.new_client(nid, &addr).await;

        // A candidate from the past is refused and told the leader's vote.
        let stale = Vote::new(0, 99);
        let r = peer.vote(VoteRequest { vote: stale, last_log_id: None }, option()).await.expect("vote");
        assert!(!r.vote_granted);
        assert!(r.vote.leader_id.term >= 1 && r.vote.committed, "{r:?}");
        assert!(r.last_log_id.is_some());

        let rpc = AppendEntriesRequest { vote: stale, prev_log_id: None, entries: vec![], leader_commit: None };
        let r = peer.append_entries(rpc, option()).await.expect("append");
        assert!(matches!(r, AppendEntriesResponse::HigherVote(v) if v.leader_id.node_id == nid), "{r:?}");

        let meta = SnapshotMeta { last_log_id: Some(LogId::default()), last_membership: Default::default(), snapshot_id: "s".into() };
        let rpc = InstallSnapshotRequest { vote: stale, meta, offset: 0, data: b"{}".to_vec(), done: true };
        let r = peer.install_snapshot(rpc, option()).await.expect("snapshot");
        assert!(r.vote.leader_id.term >= 1, "{r:?}");

        // A malformed request is refused, and the caller retries at once.
        let mut client = RaftClient::new(channel(&addr.grpc_url()).expect("channel"));
        let status = client.vote(pb::VoteRequest::default()).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("vote is missing"), "{status:?}");
        assert!(matches!(peer.failed::<Infallible>(status), RPCError::Network(_)));

        // The peer's Raft node stopped: its error comes back as remote.
        raft.shutdown().await.expect("shutdown");
        let e = peer.vote(VoteRequest { vote: stale, last_log_id: None }, option()).await.expect_err("stopped");
        assert!(
            matches!(&e, RPCError::RemoteError(r) if r.target == nid && matches!(r.source, RaftError::Fatal(openraft::error::Fatal::Stopped))),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_peer_not_listening_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let addr = NodeAddr { id: "cd".repeat(20), host: "127.0.0.1".into(), port: 1, grpc_port: port };
        let mut peer = Network.new_client(7, &addr).await;
        let e = peer.vote(VoteRequest { vote: Vote::new(1, 1), last_log_id: None }, option()).await.expect_err("nobody there");
        assert!(matches!(e, RPCError::Unreachable(_)), "{e:?}");
    }
}
