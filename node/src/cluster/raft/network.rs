//! The Raft transport over gRPC: one `Call` RPC carries a JSON-serialised
//! openraft request (append entries, vote, install snapshot) to a peer, and
//! the peer's JSON-serialised `Result` back. `Network` is the client side
//! openraft uses; `RaftService` is the server side every node runs.

use std::time::Duration;

use damselfly_proto::raft::raft_client::RaftClient;
use damselfly_proto::raft::raft_server;
use damselfly_proto::raft::RaftMessage;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::types::{NodeAddr, NodeId, Raft, TypeConfig};
use crate::cluster::channel;

/// Creates a client per peer.
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Peer {
        Peer { target, url: node.grpc_url(), client: None }
    }
}

/// One peer, connected lazily.
pub struct Peer {
    target: NodeId,
    url: String,
    client: Option<RaftClient<Channel>>,
}

impl Peer {
    async fn call<Req, Resp, E>(&mut self, kind: &str, req: &Req, ttl: Duration) -> Result<Resp, RPCError<NodeId, NodeAddr, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let client = match &mut self.client {
            Some(c) => c,
            None => self.client.insert(RaftClient::new(channel(&self.url).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?)),
        };
        let mut request = tonic::Request::new(RaftMessage { kind: kind.to_string(), payload });
        request.set_timeout(ttl);
        let reply = match client.call(request).await {
            Ok(r) => r.into_inner(),
            // A slow reply (a busy peer) is worth retrying at once; only a
            // peer that cannot be reached earns openraft's backoff.
            Err(status) if matches!(status.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled) => {
                return Err(RPCError::Network(NetworkError::new(&status)));
            }
            Err(status) => {
                // Drop the channel so the next attempt reconnects.
                self.client = None;
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
        };
        let result: Result<Resp, E> = serde_json::from_slice(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
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
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.call("append", &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>> {
        self.call("snapshot", &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}

/// The server side: hands each request to the local Raft node.
pub struct RaftService {
    pub raft: Raft,
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, tonic::Status> {
    serde_json::from_slice(payload).map_err(|e| tonic::Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<tonic::Response<RaftMessage>, tonic::Status> {
    let payload = serde_json::to_vec(v).map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(tonic::Response::new(RaftMessage { kind: String::new(), payload }))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn call(&self, request: tonic::Request<RaftMessage>) -> Result<tonic::Response<RaftMessage>, tonic::Status> {
        let m = request.into_inner();
        match m.kind.as_str() {
            "append" => encode(&self.raft.append_entries(decode(&m.payload)?).await),
            "vote" => encode(&self.raft.vote(decode(&m.payload)?).await),
            "snapshot" => encode(&self.raft.install_snapshot(decode(&m.payload)?).await),
            other => Err(tonic::Status::invalid_argument(format!("unknown raft call '{other}'"))),
        }
    }
}
