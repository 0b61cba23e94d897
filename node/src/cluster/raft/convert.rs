//! The protobuf form of openraft's messages (`proto/proto/raft.proto`):
//! conversions both ways between openraft's types (and ours: `Change`,
//! `NodeAddr`) and the generated ones. Everything received is checked: a
//! missing required field, an out-of-range port or slot, a voter without an
//! address or an error kind that the RPC cannot return is `Malformed`,
//! never a panic or a guessed default.
//!
//! Both sides of most conversions are foreign types (openraft's and the
//! generated ones), so the conversions are this module's `ToPb`/`FromPb`
//! traits rather than `From`/`TryFrom`.

use std::collections::{BTreeMap, BTreeSet};

use damselfly_proto::raft as pb;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{
    AnyError, CommittedLeaderId, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, Membership, SnapshotMeta, SnapshotSegmentId,
    StorageIOError, StoredMembership, Vote,
};

use super::types::{Change, NodeAddr, NodeId, TypeConfig};

/// A message from a peer that is not a valid openraft message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed raft message: {0}")]
pub struct Malformed(pub String);

fn missing(what: &str) -> Malformed {
    Malformed(format!("{what} is missing"))
}

/// Converts an openraft (or our) value into its protobuf form.
pub trait ToPb {
    type Pb;
    fn to_pb(self) -> Self::Pb;
}

/// Converts a received protobuf message back, refusing a malformed one.
pub trait FromPb<P>: Sized {
    fn from_pb(p: P) -> Result<Self, Malformed>;
}

impl<T: ToPb> ToPb for Option<T> {
    type Pb = Option<T::Pb>;
    fn to_pb(self) -> Option<T::Pb> {
        self.map(T::to_pb)
    }
}

/// A required field.
fn req<T: FromPb<P>, P>(p: Option<P>, what: &str) -> Result<T, Malformed> {
    T::from_pb(p.ok_or_else(|| missing(what))?)
}

/// An optional field.
fn opt<T: FromPb<P>, P>(p: Option<P>) -> Result<Option<T>, Malformed> {
    p.map(T::from_pb).transpose()
}

fn u16_of(v: u32, what: &str) -> Result<u16, Malformed> {
    u16::try_from(v).map_err(|_| Malformed(format!("{what} {v} is out of range")))
}

// ------------------------------------------------------------------ basics

impl ToPb for Vote<NodeId> {
    type Pb = pb::Vote;
    fn to_pb(self) -> pb::Vote {
        pb::Vote { term: self.leader_id.term, node_id: self.leader_id.node_id, committed: self.committed }
    }
}

impl FromPb<pb::Vote> for Vote<NodeId> {
    fn from_pb(p: pb::Vote) -> Result<Self, Malformed> {
        Ok(if p.committed { Vote::new_committed(p.term, p.node_id) } else { Vote::new(p.term, p.node_id) })
    }
}

impl ToPb for LogId<NodeId> {
    type Pb = pb::LogId;
    fn to_pb(self) -> pb::LogId {
        pb::LogId { term: self.leader_id.term, node_id: self.leader_id.node_id, index: self.index }
    }
}

impl FromPb<pb::LogId> for LogId<NodeId> {
    fn from_pb(p: pb::LogId) -> Result<Self, Malformed> {
        Ok(LogId::new(CommittedLeaderId::new(p.term, p.node_id), p.index))
    }
}

impl ToPb for NodeAddr {
    type Pb = pb::Node;
    fn to_pb(self) -> pb::Node {
        pb::Node { id: self.id, host: self.host, port: self.port.into(), grpc_port: self.grpc_port.into() }
    }
}

impl FromPb<pb::Node> for NodeAddr {
    fn from_pb(p: pb::Node) -> Result<Self, Malformed> {
        Ok(NodeAddr { port: u16_of(p.port, "port")?, grpc_port: u16_of(p.grpc_port, "gRPC port")?, id: p.id, host: p.host })
    }
}

impl ToPb for Membership<NodeId, NodeAddr> {
    type Pb = pb::Membership;
    fn to_pb(self) -> pb::Membership {
        pb::Membership {
            configs: self.get_joint_config().iter().map(|c| pb::VoterSet { ids: c.iter().copied().collect() }).collect(),
            nodes: self.nodes().map(|(id, n)| (*id, n.clone().to_pb())).collect(),
        }
    }
}

impl FromPb<pb::Membership> for Membership<NodeId, NodeAddr> {
    fn from_pb(p: pb::Membership) -> Result<Self, Malformed> {
        let configs: Vec<BTreeSet<NodeId>> = p.configs.into_iter().map(|c| c.ids.into_iter().collect()).collect();
        let nodes = p.nodes.into_iter().map(|(id, n)| Ok((id, NodeAddr::from_pb(n)?))).collect::<Result<BTreeMap<_, _>, Malformed>>()?;
        if let Some(v) = configs.iter().flatten().find(|v| !nodes.contains_key(v)) {
            return Err(Malformed(format!("voter {v} has no address")));
        }
        Ok(Membership::new(configs, nodes))
    }
}

// ------------------------------------------------------ the state machine

fn ranges_to_pb(ranges: Vec<(u16, u16)>) -> Vec<pb::SlotRange> {
    ranges.into_iter().map(|(a, b)| pb::SlotRange { first: a.into(), last: b.into() }).collect()
}

fn ranges_from_pb(ranges: Vec<pb::SlotRange>) -> Result<Vec<(u16, u16)>, Malformed> {
    ranges.into_iter().map(|r| Ok((u16_of(r.first, "slot")?, u16_of(r.last, "slot")?))).collect()
}

impl ToPb for Change {
    type Pb = pb::Change;
    fn to_pb(self) -> pb::Change {
        use pb::change::Change as C;
        let c = match self {
            Change::AssignSlots { ranges, owner } => C::AssignSlots(pb::AssignSlots { ranges: ranges_to_pb(ranges), owner }),
            Change::BeginMigration { id, ranges, from, to } => {
                C::BeginMigration(pb::BeginMigration { id, ranges: ranges_to_pb(ranges), from, to })
            }
            Change::CompleteMigration { id } => C::CompleteMigration(pb::CompleteMigration { id }),
            Change::AbortMigration { id } => C::AbortMigration(pb::AbortMigration { id }),
            Change::NodeFailed { id } => C::NodeFailed(pb::NodeFailed { id }),
            Change::NodeRecovered { id, incarnation } => C::NodeRecovered(pb::NodeRecovered { id, incarnation }),
            Change::SetReplica { id, of } => C::SetReplica(pb::SetReplica { id, of }),
            Change::Promote { replica, primary } => C::Promote(pb::Promote { replica, primary }),
            Change::ClaimSlots { ranges, owner } => C::ClaimSlots(pb::ClaimSlots { ranges: ranges_to_pb(ranges), owner }),
            Change::ReleaseSlots { ranges } => C::ReleaseSlots(pb::ReleaseSlots { ranges: ranges_to_pb(ranges) }),
            Change::BumpEpoch => C::BumpEpoch(pb::BumpEpoch {}),
        };
        pb::Change { change: Some(c) }
    }
}

impl FromPb<pb::Change> for Change {
    fn from_pb(p: pb::Change) -> Result<Self, Malformed> {
        use pb::change::Change as C;
        Ok(match p.change.ok_or_else(|| missing("change"))? {
            C::AssignSlots(c) => Change::AssignSlots { ranges: ranges_from_pb(c.ranges)?, owner: c.owner },
            C::BeginMigration(c) => Change::BeginMigration { id: c.id, ranges: ranges_from_pb(c.ranges)?, from: c.from, to: c.to },
            C::CompleteMigration(c) => Change::CompleteMigration { id: c.id },
            C::AbortMigration(c) => Change::AbortMigration { id: c.id },
            C::NodeFailed(c) => Change::NodeFailed { id: c.id },
            C::NodeRecovered(c) => Change::NodeRecovered { id: c.id, incarnation: c.incarnation },
            C::SetReplica(c) => Change::SetReplica { id: c.id, of: c.of },
            C::Promote(c) => Change::Promote { replica: c.replica, primary: c.primary },
            C::ClaimSlots(c) => Change::ClaimSlots { ranges: ranges_from_pb(c.ranges)?, owner: c.owner },
            C::ReleaseSlots(c) => Change::ReleaseSlots { ranges: ranges_from_pb(c.ranges)? },
            C::BumpEpoch(_) => Change::BumpEpoch,
        })
    }
}

impl ToPb for Entry<TypeConfig> {
    type Pb = pb::Entry;
    fn to_pb(self) -> pb::Entry {
        use pb::entry::Payload;
        let payload = match self.payload {
            EntryPayload::Blank => Payload::Blank(pb::Empty {}),
            EntryPayload::Normal(c) => Payload::Normal(c.to_pb()),
            EntryPayload::Membership(m) => Payload::Membership(m.to_pb()),
        };
        pb::Entry { log_id: Some(self.log_id.to_pb()), payload: Some(payload) }
    }
}

impl FromPb<pb::Entry> for Entry<TypeConfig> {
    fn from_pb(p: pb::Entry) -> Result<Self, Malformed> {
        use pb::entry::Payload;
        let payload = match p.payload.ok_or_else(|| missing("entry payload"))? {
            Payload::Blank(_) => EntryPayload::Blank,
            Payload::Normal(c) => EntryPayload::Normal(Change::from_pb(c)?),
            Payload::Membership(m) => EntryPayload::Membership(Membership::from_pb(m)?),
        };
        Ok(Entry { log_id: req(p.log_id, "entry log id")?, payload })
    }
}

// ---------------------------------------------------------------- errors

fn fatal_to_pb(f: Fatal<NodeId>) -> pb::RaftError {
    use pb::raft_error::Error as E;
    let e = match f {
        Fatal::StorageError(e) => E::Storage(e.to_string()),
        Fatal::Panicked => E::Panicked(pb::Empty {}),
        Fatal::Stopped => E::Stopped(pb::Empty {}),
    };
    pb::RaftError { error: Some(e) }
}

/// A fatal error of the peer, or the API error's message for the caller.
fn fatal_from_pb(p: pb::RaftError) -> Result<Result<Fatal<NodeId>, SnapshotMismatch>, Malformed> {
    use pb::raft_error::Error as E;
    Ok(Ok(match p.error.ok_or_else(|| missing("error"))? {
        // The peer's own storage error, kept as its text.
        E::Storage(text) => Fatal::StorageError(StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, AnyError::error(text)).into()),
        E::Panicked(_) => Fatal::Panicked,
        E::Stopped(_) => Fatal::Stopped,
        E::SnapshotMismatch(m) => {
            let seg = |s: Option<pb::SnapshotSegmentId>| {
                s.map(|s| SnapshotSegmentId { id: s.id, offset: s.offset }).ok_or_else(|| missing("snapshot segment"))
            };
            return Ok(Err(SnapshotMismatch { expect: seg(m.expect)?, got: seg(m.got)? }));
        }
    }))
}

impl ToPb for RaftError<NodeId> {
    type Pb = pb::RaftError;
    fn to_pb(self) -> pb::RaftError {
        match self {
            RaftError::APIError(never) => match never {},
            RaftError::Fatal(f) => fatal_to_pb(f),
        }
    }
}

impl FromPb<pb::RaftError> for RaftError<NodeId> {
    fn from_pb(p: pb::RaftError) -> Result<Self, Malformed> {
        match fatal_from_pb(p)? {
            Ok(f) => Ok(RaftError::Fatal(f)),
            Err(_) => Err(Malformed("snapshot mismatch outside install snapshot".into())),
        }
    }
}

impl ToPb for RaftError<NodeId, InstallSnapshotError> {
    type Pb = pb::RaftError;
    fn to_pb(self) -> pb::RaftError {
        match self {
            RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m)) => {
                let seg = |s: SnapshotSegmentId| Some(pb::SnapshotSegmentId { id: s.id, offset: s.offset });
                let m = pb::SnapshotMismatch { expect: seg(m.expect), got: seg(m.got) };
                pb::RaftError { error: Some(pb::raft_error::Error::SnapshotMismatch(m)) }
            }
            RaftError::Fatal(f) => fatal_to_pb(f),
        }
    }
}

impl FromPb<pb::RaftError> for RaftError<NodeId, InstallSnapshotError> {
    fn from_pb(p: pb::RaftError) -> Result<Self, Malformed> {
        Ok(match fatal_from_pb(p)? {
            Ok(f) => RaftError::Fatal(f),
            Err(m) => RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m)),
        })
    }
}

// --------------------------------------------------------- append entries

impl ToPb for AppendEntriesRequest<TypeConfig> {
    type Pb = pb::AppendEntriesRequest;
    fn to_pb(self) -> pb::AppendEntriesRequest {
        pb::AppendEntriesRequest {
            vote: Some(self.vote.to_pb()),
            prev_log_id: self.prev_log_id.to_pb(),
            entries: self.entries.into_iter().map(ToPb::to_pb).collect(),
            leader_commit: self.leader_commit.to_pb(),
        }
    }
}

impl FromPb<pb::AppendEntriesRequest> for AppendEntriesRequest<TypeConfig> {
    fn from_pb(p: pb::AppendEntriesRequest) -> Result<Self, Malformed> {
        Ok(AppendEntriesRequest {
            vote: req(p.vote, "vote")?,
            prev_log_id: opt(p.prev_log_id)?,
            entries: p.entries.into_iter().map(Entry::from_pb).collect::<Result<_, _>>()?,
            leader_commit: opt(p.leader_commit)?,
        })
    }
}

impl ToPb for AppendEntriesResponse<NodeId> {
    type Pb = pb::AppendEntriesResponse;
    fn to_pb(self) -> pb::AppendEntriesResponse {
        use pb::append_entries_response::Result as R;
        let r = match self {
            AppendEntriesResponse::Success => R::Success(pb::Empty {}),
            AppendEntriesResponse::PartialSuccess(m) => R::PartialSuccess(pb::PartialSuccess { matching: m.to_pb() }),
            AppendEntriesResponse::Conflict => R::Conflict(pb::Empty {}),
            AppendEntriesResponse::HigherVote(v) => R::HigherVote(v.to_pb()),
        };
        pb::AppendEntriesResponse { result: Some(r) }
    }
}

impl FromPb<pb::AppendEntriesResponse> for AppendEntriesResponse<NodeId> {
    fn from_pb(p: pb::AppendEntriesResponse) -> Result<Self, Malformed> {
        use pb::append_entries_response::Result as R;
        Ok(match p.result.ok_or_else(|| missing("append entries result"))? {
            R::Success(_) => AppendEntriesResponse::Success,
            R::PartialSuccess(m) => AppendEntriesResponse::PartialSuccess(opt(m.matching)?),
            R::Conflict(_) => AppendEntriesResponse::Conflict,
            R::HigherVote(v) => AppendEntriesResponse::HigherVote(Vote::from_pb(v)?),
        })
    }
}

// ------------------------------------------------------------------- vote

impl ToPb for VoteRequest<NodeId> {
    type Pb = pb::VoteRequest;
    fn to_pb(self) -> pb::VoteRequest {
        pb::VoteRequest { vote: Some(self.vote.to_pb()), last_log_id: self.last_log_id.to_pb() }
    }
}

impl FromPb<pb::VoteRequest> for VoteRequest<NodeId> {
    fn from_pb(p: pb::VoteRequest) -> Result<Self, Malformed> {
        Ok(VoteRequest { vote: req(p.vote, "vote")?, last_log_id: opt(p.last_log_id)? })
    }
}

impl ToPb for VoteResponse<NodeId> {
    type Pb = pb::VoteResponse;
    fn to_pb(self) -> pb::VoteResponse {
        pb::VoteResponse { vote: Some(self.vote.to_pb()), vote_granted: self.vote_granted, last_log_id: self.last_log_id.to_pb() }
    }
}

impl FromPb<pb::VoteResponse> for VoteResponse<NodeId> {
    fn from_pb(p: pb::VoteResponse) -> Result<Self, Malformed> {
        Ok(VoteResponse { vote: req(p.vote, "vote")?, vote_granted: p.vote_granted, last_log_id: opt(p.last_log_id)? })
    }
}

// ------------------------------------------------------- install snapshot

impl ToPb for SnapshotMeta<NodeId, NodeAddr> {
    type Pb = pb::SnapshotMeta;
    fn to_pb(self) -> pb::SnapshotMeta {
        pb::SnapshotMeta {
            last_log_id: self.last_log_id.to_pb(),
            last_membership_log_id: self.last_membership.log_id().to_pb(),
            last_membership: Some(self.last_membership.membership().clone().to_pb()),
            snapshot_id: self.snapshot_id,
        }
    }
}

impl FromPb<pb::SnapshotMeta> for SnapshotMeta<NodeId, NodeAddr> {
    fn from_pb(p: pb::SnapshotMeta) -> Result<Self, Malformed> {
        Ok(SnapshotMeta {
            last_log_id: opt(p.last_log_id)?,
            last_membership: StoredMembership::new(opt(p.last_membership_log_id)?, req(p.last_membership, "snapshot membership")?),
            snapshot_id: p.snapshot_id,
        })
    }
}

impl ToPb for InstallSnapshotRequest<TypeConfig> {
    type Pb = pb::InstallSnapshotRequest;
    fn to_pb(self) -> pb::InstallSnapshotRequest {
        pb::InstallSnapshotRequest {
            vote: Some(self.vote.to_pb()),
            meta: Some(self.meta.to_pb()),
            offset: self.offset,
            data: self.data,
            done: self.done,
        }
    }
}

impl FromPb<pb::InstallSnapshotRequest> for InstallSnapshotRequest<TypeConfig> {
    fn from_pb(p: pb::InstallSnapshotRequest) -> Result<Self, Malformed> {
        Ok(InstallSnapshotRequest {
            vote: req(p.vote, "vote")?,
            meta: req(p.meta, "snapshot meta")?,
            offset: p.offset,
            data: p.data,
            done: p.done,
        })
    }
}

impl ToPb for InstallSnapshotResponse<NodeId> {
    type Pb = pb::InstallSnapshotResponse;
    fn to_pb(self) -> pb::InstallSnapshotResponse {
        pb::InstallSnapshotResponse { vote: Some(self.vote.to_pb()) }
    }
}

impl FromPb<pb::InstallSnapshotResponse> for InstallSnapshotResponse<NodeId> {
    fn from_pb(p: pb::InstallSnapshotResponse) -> Result<Self, Malformed> {
        Ok(InstallSnapshotResponse { vote: req(p.vote, "vote")? })
    }
}

// ---------------------------------------------------------------- replies

/// The replies: the peer's response, or the error its Raft node returned.
macro_rules! reply {
    ($reply:ident, $mod:ident, $resp:ty, $err:ty) => {
        impl ToPb for Result<$resp, $err> {
            type Pb = pb::$reply;
            fn to_pb(self) -> pb::$reply {
                use pb::$mod::Result as R;
                pb::$reply {
                    result: Some(match self {
                        Ok(r) => R::Ok(r.to_pb()),
                        Err(e) => R::Error(e.to_pb()),
                    }),
                }
            }
        }

        impl FromPb<pb::$reply> for Result<$resp, $err> {
            fn from_pb(p: pb::$reply) -> Result<Self, Malformed> {
                use pb::$mod::Result as R;
                Ok(match p.result.ok_or_else(|| missing("reply"))? {
                    R::Ok(r) => Ok(<$resp>::from_pb(r)?),
                    R::Error(e) => Err(<$err>::from_pb(e)?),
                })
            }
        }
    };
}

reply!(AppendEntriesReply, append_entries_reply, AppendEntriesResponse<NodeId>, RaftError<NodeId>);
reply!(VoteReply, vote_reply, VoteResponse<NodeId>, RaftError<NodeId>);
reply!(InstallSnapshotReply, install_snapshot_reply, InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>);

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use prost::Message;

    use super::*;

    fn node(n: u8) -> NodeAddr {
        NodeAddr { id: format!("{n:02x}").repeat(20), host: format!("10.0.0.{n}"), port: 6379, grpc_port: 7379 + u16::from(n) }
    }

    fn log_id(term: u64, node: NodeId, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    /// Converts `v` to protobuf, through bytes on the wire and back, and
    /// checks nothing changed (openraft's messages compare by their Debug
    /// form: not all of them implement PartialEq).
    fn round_trip<T>(v: T)
    where
        T: ToPb + FromPb<<T as ToPb>::Pb> + Debug,
        T::Pb: Message + Default,
    {
        let want = format!("{v:?}");
        let bytes = v.to_pb().encode_to_vec();
        let back = T::from_pb(T::Pb::decode(bytes.as_slice()).expect("decodes")).expect("converts");
        assert_eq!(format!("{back:?}"), want);
    }

    fn membership() -> Membership<NodeId, NodeAddr> {
        Membership::new(vec![BTreeSet::from([1, 2, 3])], BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3)), (4, node(4))]))
    }

    fn entries() -> Vec<Entry<TypeConfig>> {
        let joint = Membership::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
            BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3)), (4, node(4))]),
        );
        let changes = vec![
            Change::AssignSlots { ranges: vec![(0, 5460), (16383, 16383)], owner: node(1).id },
            Change::BeginMigration { id: "m1".into(), ranges: vec![(10, 20)], from: node(1).id, to: node(2).id },
            Change::CompleteMigration { id: "m1".into() },
            Change::AbortMigration { id: String::new() },
            Change::NodeFailed { id: node(2).id },
            Change::NodeRecovered { id: node(2).id, incarnation: "abc".into() },
            Change::SetReplica { id: node(3).id, of: node(1).id },
            Change::Promote { replica: node(3).id, primary: node(1).id },
            Change::ClaimSlots { ranges: vec![(7, 9)], owner: node(2).id },
            Change::ReleaseSlots { ranges: vec![(7, 7), (9, 9)] },
            Change::BumpEpoch,
        ];
        let mut out = vec![
            Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Blank },
            Entry { log_id: log_id(1, 1, 2), payload: EntryPayload::Membership(membership()) },
            Entry { log_id: log_id(2, 2, 3), payload: EntryPayload::Membership(joint) },
        ];
        for (i, c) in changes.into_iter().enumerate() {
            out.push(Entry { log_id: log_id(2, 2, 4 + i as u64), payload: EntryPayload::Normal(c) });
        }
        out
    }

    #[test]
    fn append_entries_round_trip() {
        // A heartbeat from a leader with an empty log: no entries, no ids.
        round_trip(AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        });
        round_trip(AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 2),
            prev_log_id: Some(log_id(1, 1, 0)),
            entries: entries(),
            leader_commit: Some(log_id(2, 2, 3)),
        });
        round_trip(AppendEntriesResponse::Success);
        round_trip(AppendEntriesResponse::PartialSuccess(None));
        round_trip(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 1, 9))));
        round_trip(AppendEntriesResponse::Conflict);
        round_trip(AppendEntriesResponse::HigherVote(Vote::new(5, 3)));
    }

    #[test]
    fn vote_round_trip() {
        round_trip(VoteRequest { vote: Vote::new(1, 7), last_log_id: None });
        round_trip(VoteRequest { vote: Vote::new(4, u64::MAX), last_log_id: Some(log_id(3, 2, 17)) });
        round_trip(VoteResponse { vote: Vote::new_committed(4, 2), vote_granted: false, last_log_id: Some(log_id(3, 2, 18)) });
        round_trip(VoteResponse { vote: Vote::new(0, 0), vote_granted: true, last_log_id: None });
    }

    #[test]
    fn snapshot_round_trip() {
        // The first snapshot of a fresh group: nothing applied, no membership.
        round_trip(InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(1, 1),
            meta: SnapshotMeta { last_log_id: None, last_membership: StoredMembership::default(), snapshot_id: "0-0-1".into() },
            offset: 0,
            data: vec![],
            done: true,
        });
        // A middle chunk.
        round_trip(InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 2),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 2, 40)),
                last_membership: StoredMembership::new(Some(log_id(2, 2, 12)), membership()),
                snapshot_id: "3-40-2".into(),
            },
            offset: 3 << 20,
            data: (0..=255).collect(),
            done: false,
        });
        round_trip(InstallSnapshotResponse { vote: Vote::new(3, 2) });
    }

    #[test]
    fn replies_round_trip() {
        type Append = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
        type Snap = Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;
        round_trip::<Append>(Ok(AppendEntriesResponse::Conflict));
        round_trip::<Append>(Err(RaftError::Fatal(Fatal::Stopped)));
        round_trip::<Append>(Err(RaftError::Fatal(Fatal::Panicked)));
        round_trip::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(Err(RaftError::Fatal(Fatal::Stopped)));
        round_trip::<Snap>(Ok(InstallSnapshotResponse { vote: Vote::new(1, 1) }));
        let mismatch = SnapshotMismatch {
            expect: SnapshotSegmentId { id: "a".into(), offset: 0 },
            got: SnapshotSegmentId { id: "b".into(), offset: 4096 },
        };
        round_trip::<Snap>(Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch))));
        // A storage error keeps the peer's description.
        let e: RaftError<NodeId> = RaftError::Fatal(Fatal::StorageError(StorageIOError::write_logs(AnyError::error("disk full")).into()));
        let text = e.to_string();
        let back = Append::from_pb(Err::<AppendEntriesResponse<NodeId>, _>(e).to_pb()).expect("converts");
        assert!(matches!(&back, Err(RaftError::Fatal(Fatal::StorageError(_)))), "{back:?}");
        assert!(back.unwrap_err().to_string().contains(&text));
    }

    fn malformed<T: FromPb<P> + Debug, P>(p: P, why: &str) {
        match T::from_pb(p) {
            Err(Malformed(m)) => assert!(m.contains(why), "{m}"),
            Ok(v) => panic!("accepted {v:?}"),
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 2),
            prev_log_id: None,
            entries: entries(),
            leader_commit: None,
        }
        .to_pb();
        type Req = AppendEntriesRequest<TypeConfig>;

        malformed::<Req, _>(pb::AppendEntriesRequest { vote: None, ..good.clone() }, "vote is missing");
        let mut p = good.clone();
        p.entries[0].payload = None;
        malformed::<Req, _>(p, "entry payload is missing");
        let mut p = good.clone();
        p.entries[0].log_id = None;
        malformed::<Req, _>(p, "entry log id is missing");
        let mut p = good.clone();
        p.entries[3].payload = Some(pb::entry::Payload::Normal(pb::Change { change: None }));
        malformed::<Req, _>(p, "change is missing");
        let mut p = good.clone();
        p.entries[3].payload = Some(pb::entry::Payload::Normal(pb::Change {
            change: Some(pb::change::Change::AssignSlots(pb::AssignSlots {
                ranges: vec![pb::SlotRange { first: 0, last: 70000 }],
                owner: "x".into(),
            })),
        }));
        malformed::<Req, _>(p, "slot 70000 is out of range");
        let mut p = good.clone();
        let Some(pb::entry::Payload::Membership(m)) = &mut p.entries[1].payload else { panic!("entry 1 is membership") };
        m.nodes.remove(&2);
        malformed::<Req, _>(p.clone(), "voter 2 has no address");
        let Some(pb::entry::Payload::Membership(m)) = &mut p.entries[1].payload else { panic!("entry 1 is membership") };
        m.nodes.insert(2, pb::Node { port: 65536, ..node(2).to_pb() });
        malformed::<Req, _>(p, "port 65536 is out of range");

        malformed::<VoteRequest<NodeId>, _>(pb::VoteRequest::default(), "vote is missing");
        malformed::<VoteResponse<NodeId>, _>(pb::VoteResponse::default(), "vote is missing");
        malformed::<InstallSnapshotResponse<NodeId>, _>(pb::InstallSnapshotResponse::default(), "vote is missing");
        malformed::<InstallSnapshotRequest<TypeConfig>, _>(
            pb::InstallSnapshotRequest { vote: Some(Vote::new(1, 1).to_pb()), ..Default::default() },
            "snapshot meta is missing",
        );
        malformed::<InstallSnapshotRequest<TypeConfig>, _>(
            pb::InstallSnapshotRequest {
                vote: Some(Vote::new(1, 1).to_pb()),
                meta: Some(pb::SnapshotMeta::default()),
                ..Default::default()
            },
            "snapshot membership is missing",
        );
        malformed::<AppendEntriesResponse<NodeId>, _>(pb::AppendEntriesResponse::default(), "append entries result is missing");

        // Replies: no result, an empty error, and an error the RPC cannot return.
        type Append = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
        malformed::<Append, _>(pb::AppendEntriesReply::default(), "reply is missing");
        let error = |e| pb::AppendEntriesReply { result: Some(pb::append_entries_reply::Result::Error(e)) };
        malformed::<Append, _>(error(pb::RaftError::default()), "error is missing");
        let mismatch = |seg: Option<pb::SnapshotSegmentId>| pb::RaftError {
            error: Some(pb::raft_error::Error::SnapshotMismatch(pb::SnapshotMismatch { expect: seg.clone(), got: seg })),
        };
        let seg = pb::SnapshotSegmentId { id: "a".into(), offset: 0 };
        malformed::<Append, _>(error(mismatch(Some(seg))), "snapshot mismatch outside install snapshot");
        let snap = pb::InstallSnapshotReply { result: Some(pb::install_snapshot_reply::Result::Error(mismatch(None))) };
        malformed::<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>, _>(
            snap,
            "snapshot segment is missing",
        );
    }

    #[test]
    fn garbage_bytes_do_not_decode() {
        // What a peer sends is decoded by prost first: garbage is an error.
        assert!(pb::AppendEntriesRequest::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
