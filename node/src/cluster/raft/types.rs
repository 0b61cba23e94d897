//! The metadata group's vocabulary: openraft's type configuration, a
//! member's identity and addresses (`NodeAddr`), the configuration changes
//! proposed to the leader (`Change`) and what applying one returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A member's identity and addresses, carried in Raft's membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// 40-hex node id.
    pub id: String,
    pub host: String,
    /// Client (RESP) port.
    pub port: u16,
    pub grpc_port: u16,
}

impl NodeAddr {
    pub fn grpc_url(&self) -> String {
        format!("http://{}:{}", self.host, self.grpc_port)
    }
}

/// A change to the cluster configuration, as proposed to the leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Change {
    /// Gives the slots of the inclusive ranges to a member (by node id).
    AssignSlots { ranges: Vec<(u16, u16)>, owner: String },
    /// Records a slot migration from `from` (which must own every slot) to
    /// `to`. Refused while another migration runs.
    BeginMigration { id: String, ranges: Vec<(u16, u16)>, from: String, to: String },
    /// Ends migration `id` with the target owning its slots. Refused (no-op)
    /// when `id` is no longer the running migration, e.g. after an abort.
    CompleteMigration { id: String },
    /// Ends migration `id` (any running one when `id` is empty) with the
    /// source keeping its slots.
    AbortMigration { id: String },
    /// Declares member `id` failed (unreachable for the node timeout, or
    /// back without its data): its slots are not served until it recovers
    /// or they move.
    NodeFailed { id: String },
    /// Accepts process `incarnation` of member `id` as serving its slots
    /// again (reachable again with its data, or an operator's decision).
    NodeRecovered { id: String, incarnation: String },
    /// Makes member `id` (which owns no slots) a replica of primary `of`.
    SetReplica { id: String, of: String },
    /// Failover: `replica` (a replica of `primary`) takes every slot of
    /// `primary`; `primary` and its other replicas become its replicas,
    /// and migrations involving `primary` are dropped.
    Promote { replica: String, primary: String },
    /// Gives slots no member owns to `owner` (CLUSTER ADDSLOTS). Refused,
    /// with Redis's `Slot N is already busy`, when one of them is owned.
    ClaimSlots { ranges: Vec<(u16, u16)>, owner: String },
    /// Leaves slots without an owner (CLUSTER DELSLOTS). Refused, with
    /// Redis's `Slot N is already unassigned`, when one of them has none.
    ReleaseSlots { ranges: Vec<(u16, u16)> },
    /// Raises the configuration epoch, nothing else (CLUSTER BUMPEPOCH).
    BumpEpoch,
}

/// What applying a change returns: the epoch of the configuration it made,
/// or why the change was refused (the configuration is then unchanged).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeResult {
    pub epoch: u64,
    pub rejected: Option<String>,
}

openraft::declare_raft_types!(
    /// The metadata group's types.
    pub TypeConfig: D = Change, R = ChangeResult, Node = NodeAddr
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;

/// Raft's numeric id for a node: the first 16 hex digits of its node id.
pub fn raft_id(node_id: &str) -> Option<NodeId> {
    u64::from_str_radix(node_id.get(..16)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(raft_id(&"0".repeat(40)), Some(0));
        assert_eq!(raft_id("xyz"), None);
    }
}
