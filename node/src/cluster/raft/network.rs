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
use tonic::transport::Channel;

use super::convert::{FromPb, Malformed, ToPb};
use super::types::{NodeAddr, NodeId, Raft, TypeConfig};
use crate::cluster::channel;

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
    client: Option<RaftClient<Channel>>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>;

impl Peer {
    /// The client, connecting (lazily) if there is none.
    fn client(&mut self) -> Result<RaftClient<Channel>, Unreachable> {
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
        let sent = self.client().map_err(RPCError::Unreachable)?.append_entries(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => self.settle(reply.into_inner()),
            Err(status) => Err(self.failed(status)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let sent = self.client().map_err(RPCError::Unreachable)?.install_snapshot(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => self.settle(reply.into_inner()),
            Err(status) => Err(self.failed(status)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>, Infallible> {
        let sent = self.client().map_err(RPCError::Unreachable)?.vote(Self::request(rpc.to_pb(), &option)).await;
        match sent {
            Ok(reply) => self.settle(reply.into_inner()),
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
        let rpc = AppendEntriesRequest::from_pb(request.into_inner()).map_err(refuse)?;
        Ok(tonic::Response::new(self.raft.append_entries(rpc).await.to_pb()))
    }

    async fn vote(&self, request: tonic::Request<pb::VoteRequest>) -> Result<tonic::Response<pb::VoteReply>, tonic::Status> {
        let rpc = VoteRequest::from_pb(request.into_inner()).map_err(refuse)?;
        Ok(tonic::Response::new(self.raft.vote(rpc).await.to_pb()))
    }

    async fn install_snapshot(
        &self,
        request: tonic::Request<pb::InstallSnapshotRequest>,
    ) -> Result<tonic::Response<pb::InstallSnapshotReply>, tonic::Status> {
        let rpc = InstallSnapshotRequest::from_pb(request.into_inner()).map_err(refuse)?;
        Ok(tonic::Response::new(self.raft.install_snapshot(rpc).await.to_pb()))
    }
}
