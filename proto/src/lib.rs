//! gRPC schemas shared by damselfly nodes and cluster-admin, generated from
//! `proto/*.proto` at build time.

/// The admin service: node identity and, with cluster mode, cluster
/// administration.
pub mod admin {
    tonic::include_proto!("damselfly.admin");
}

/// Node-to-node slot migration (key batches from source to target).
pub mod migration {
    tonic::include_proto!("damselfly.migration");
}

/// The cluster bus's shared-secret check (server) and header (client).
pub mod bus_auth;

/// The Raft transport between the nodes of a cluster.
pub mod raft {
    tonic::include_proto!("damselfly.raft");
}

#[cfg(test)]
mod tests {
    use super::admin::NodeInfoReply;
    use prost::Message;

    #[test]
    fn messages_round_trip() {
        let m = NodeInfoReply {
            node_id: "ab".repeat(20),
            client_addr: "127.0.0.1:6379".into(),
            version: "0.1.0".into(),
            shards: 2,
            keys: 7,
            used_memory: 1 << 20,
            maxmemory: 0,
            ops_per_sec: 15,
            connected_clients: 3,
            raft_state: "follower".into(),
            uptime_seconds: 9,
            repl_id: "cd".repeat(20),
            repl_offset: 1234,
            repl_link: "up".into(),
        };
        let bytes = m.encode_to_vec();
        assert_eq!(NodeInfoReply::decode(bytes.as_slice()).unwrap(), m);
    }
}
