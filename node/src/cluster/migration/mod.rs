//! Live slot migration (docs/MIGRATION.md has the protocol and its failure
//! cases). The gate that holds writes to slots during cut-over is
//! `slot::gate`, in the slot map shards consult; `source` runs a
//! migration on the node that owns the slots; `target` applies the key
//! batches on the receiving node; `purge` deletes the keys of slots a node
//! neither serves nor imports (after a move, or an aborted import) and
//! abandons migrations whose source restarted.
//!
//! `Control` is what these parts share: the Raft handle, the applied
//! configuration, the engine and the slot map. `Request`s let connections
//! (CLUSTER SETSLOT) ask the control plane for a move.

pub mod purge;
pub mod source;
pub mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use damselfly_proto::migration::migration_client::MigrationClient;
use damselfly_proto::migration::ProposeRequest;

use super::channel;
use super::raft::{Change, NodeAddr, Raft, StateMachine};
use crate::shard::{Engine, Shard, NO_TX};
use crate::slot::map::{Request, SlotMap};

/// Largest gRPC message between nodes (one key's DUMP payload may be big).
pub const MAX_MESSAGE: usize = 512 << 20;

/// How long a proposed change may take to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Control {
    pub raft: Raft,
    pub sm: StateMachine,
    pub engine: Arc<Engine>,
    pub map: Arc<SlotMap>,
    pub myself: NodeAddr,
    /// The migration this process is running as the source, if any.
    pub running: Mutex<Option<String>>,
    /// Target side: per (migration, stream), the next batch expected.
    pub imports: Mutex<HashMap<(String, u32), u64>>,
    /// Random per process start (see `ImportReply::incarnation`).
    pub incarnation: String,
    /// The figures of the migration this process is running as the
    /// source (its `running` one), for the metrics endpoint.
    pub current: Mutex<Option<Arc<source::Progress>>>,
    /// Keys and bytes sent by the migrations this process finished (or
    /// abandoned) as the source; `current`'s are added when it ends.
    pub sent: source::Progress,
    /// Migrations this process completed as the source, and the write
    /// pause of the last one (µs).
    pub completed: std::sync::atomic::AtomicU64,
    pub last_pause_us: std::sync::atomic::AtomicU64,
}

/// What the metrics endpoint shows of live migration: keys and bytes this
/// node has sent as a source since it started, and the phase of the
/// migration it is running, if any.
#[derive(Debug)]
pub struct MigrationFigures {
    pub keys_sent: u64,
    pub bytes_sent: u64,
    pub phase: Option<&'static str>,
    pub completed: u64,
    /// The last completed migration's write pause, if there was one.
    pub last_pause_secs: Option<f64>,
}

impl Control {
    pub fn migration_figures(&self) -> MigrationFigures {
        use std::sync::atomic::Ordering::Relaxed;
        // Under `current`'s lock, so a migration ending now is counted once.
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (mut keys_sent, mut bytes_sent) = (self.sent.keys.load(Relaxed), self.sent.bytes.load(Relaxed));
        let phase = current.as_ref().map(|p| {
            keys_sent += p.keys.load(Relaxed);
            bytes_sent += p.bytes.load(Relaxed);
            *p.phase.lock().unwrap_or_else(|e| e.into_inner())
        });
        let completed = self.completed.load(Relaxed);
        let last_pause_secs = (completed > 0).then(|| self.last_pause_us.load(Relaxed) as f64 / 1e6);
        MigrationFigures { keys_sent, bytes_sent, phase, completed, last_pause_secs }
    }
}

/// A committed change.
pub struct Committed {
    pub log_index: u64,
}

/// Why a proposal did not commit.
#[derive(Debug)]
pub enum ProposeError {
    /// Committed, and refused by the state machine (nothing changed).
    Rejected(String),
    /// Unknown outcome: no leader, a timeout, a network error.
    Unknown(String),
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::Rejected(s) | ProposeError::Unknown(s) => f.write_str(s),
        }
    }
}

impl Control {
    /// Proposes a change through the leader, wherever it is, and waits
    /// (bounded) for it to commit.
    pub async fn propose(&self, c: Change) -> Result<Committed, ProposeError> {
        let m = self.raft.metrics().borrow().clone();
        let Some(leader) = m.current_leader else {
            return Err(ProposeError::Unknown("no Raft leader".into()));
        };
        if leader == m.id {
            return self.propose_here(c).await;
        }
        let node =
            m.membership_config.membership().get_node(&leader).cloned().ok_or_else(|| ProposeError::Unknown("leader unknown".into()))?;
        let change = serde_json::to_vec(&c).map_err(|e| ProposeError::Unknown(e.to_string()))?;
        let ch = channel(&node.grpc_url()).map_err(|e| ProposeError::Unknown(e.to_string()))?;
        let mut req = tonic::Request::new(ProposeRequest { change });
        req.set_timeout(COMMIT_TIMEOUT + Duration::from_secs(1));
        let r = MigrationClient::new(ch).propose(req).await.map_err(|e| ProposeError::Unknown(e.message().to_string()))?.into_inner();
        if !r.rejected.is_empty() {
            return Err(ProposeError::Rejected(r.rejected));
        }
        Ok(Committed { log_index: r.log_index })
    }

    /// Proposes a change on this node, which must be the leader.
    pub async fn propose_here(&self, c: Change) -> Result<Committed, ProposeError> {
        match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(c)).await {
            Ok(Ok(r)) => {
                // Followers learn of a commit with the next append; send it
                // now, so they apply the change without waiting for a
                // heartbeat (this is on a migration's cut-over path).
                let _ = self.raft.trigger().heartbeat().await;
                match r.data.rejected {
                    Some(why) => Err(ProposeError::Rejected(why)),
                    None => Ok(Committed { log_index: r.log_id.index }),
                }
            }
            Ok(Err(e)) => Err(ProposeError::Unknown(e.to_string())),
            Err(_) => Err(ProposeError::Unknown("the change did not commit in time".into())),
        }
    }

    /// Waits (bounded) until this node has applied the log up to `index`.
    pub async fn applied(&self, index: u64, limit: Duration) -> bool {
        self.raft.wait(Some(limit)).applied_index_at_least(Some(index), "migration").await.is_ok()
    }
}

/// Serves connections' requests, one at a time.
pub async fn serve(ctl: Arc<Control>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Request>) {
    while let Some(r) = rx.recv().await {
        match r {
            Request::Move { slot, to, reply } => {
                let r = move_one(&ctl, slot, &to).await;
                let _ = reply.send(r);
            }
            Request::Failover { force, reply } => {
                let ctl = ctl.clone();
                tokio::spawn(async move {
                    let _ = reply.send(crate::cluster::takeover::run(&ctl, force).await);
                });
            }
            Request::Admin { op, reply } => {
                let ctl = ctl.clone();
                tokio::spawn(async move {
                    let _ = reply.send(crate::cluster::tooling::run(&ctl, op).await);
                });
            }
            Request::Replicate { of, reply } => {
                let ctl = ctl.clone();
                tokio::spawn(async move {
                    let change = Change::SetReplica { id: ctl.myself.id.clone(), of };
                    let _ = reply.send(ctl.propose(change).await.map(|_| ()).map_err(|e| e.to_string()));
                });
            }
        }
    }
}

async fn move_one(ctl: &Arc<Control>, slot: u16, to: &str) -> Result<(), String> {
    let target = {
        let m = ctl.raft.metrics().borrow().clone();
        let found = m.membership_config.membership().nodes().find(|(_, n)| n.id == to).map(|(_, n)| n.clone());
        found
    };
    let Some(target) = target else { return Err(format!("Unknown node {to}")) };
    source::run(ctl.clone(), target, vec![(slot, slot)], Arc::new(source::Progress::default())).await?;
    purge::purge(ctl).await;
    Ok(())
}

/// Runs `f` on shard `s` from outside the shard threads.
pub async fn on_shard<R: Send + 'static>(engine: &Engine, s: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.send(
        s,
        NO_TX,
        Box::new(move |sh| {
            let _ = tx.send(f(sh));
        }),
    );
    rx.await.ok()
}
