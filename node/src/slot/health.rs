//! What this node knows of the other members' liveness: when it last sent
//! each a ping and got a pong, whether the link works, and what the peer
//! said of itself (its process incarnation, whether it lost its data). The
//! cluster's prober (`cluster::health`) fills it in; CLUSTER NODES and
//! CLUSTER INFO read it (`fail?` is this node's own suspicion; `fail` is
//! the group's decision, in the view). Also holds the settings the prober
//! and the routing check follow (`cluster-node-timeout`,
//! `cluster-require-full-coverage`) and this process's data fence.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

/// Default `cluster-node-timeout`, ms: short enough for a failover within
/// 2 s (detection, then one Raft commit).
pub const DEFAULT_NODE_TIMEOUT_MS: u64 = 1000;

/// Kinds of cluster bus message CLUSTER INFO counts, with Redis's names
/// where one fits: `ping` is a liveness probe and `pong` its answer,
/// `publish` a batch of PUBLISH fan-out; `raft` is a control-plane RPC
/// (append entries, vote, snapshot) or its answer.
#[derive(Clone, Copy)]
pub enum BusMsg {
    Ping,
    Pong,
    Publish,
    Raft,
}

const BUS_KINDS: [&str; 4] = ["ping", "pong", "publish", "raft"];
static BUS_SENT: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static BUS_RECEIVED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// This node sent a message of `kind` on the cluster bus.
pub fn bus_sent(kind: BusMsg) {
    BUS_SENT[kind as usize].fetch_add(1, Relaxed);
}

/// This node received a message of `kind` on the cluster bus.
pub fn bus_received(kind: BusMsg) {
    BUS_RECEIVED[kind as usize].fetch_add(1, Relaxed);
}

/// CLUSTER INFO's message counts, as Redis lays them out: per kind (kinds
/// never seen left out), then the total, for sent and then received.
pub fn bus_stats_text() -> String {
    let mut out = String::new();
    for (dir, counts) in [("sent", &BUS_SENT), ("received", &BUS_RECEIVED)] {
        let mut total = 0;
        for (kind, n) in BUS_KINDS.iter().zip(counts.iter().map(|c| c.load(Relaxed))) {
            if n > 0 {
                total += n;
                out.push_str(&format!("cluster_stats_messages_{kind}_{dir}:{n}\r\n"));
            }
        }
        out.push_str(&format!("cluster_stats_messages_{dir}:{total}\r\n"));
    }
    out
}

/// One peer as this node's probes see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Unix ms of the ping awaiting its pong; 0 when none is outstanding.
    pub ping_sent: u64,
    /// Unix ms of the last pong; 0 when none came yet.
    pub pong_recv: u64,
    /// Unix ms this node started probing the peer: a peer that never
    /// answered counts as silent from then.
    pub first_seen: u64,
    /// The last ping got an answer.
    pub link_up: bool,
    /// What the peer said of itself in its last pong.
    pub incarnation: String,
    pub lost_data: bool,
    /// The peer's replication offset (what a replica applied).
    pub repl_offset: u64,
    /// The last Raft log index the peer had stored when it answered.
    pub log_index: u64,
    /// When the newest ping was sent whose answer this node can count
    /// towards a majority: the peer's log held nothing this node has not
    /// applied (see `Health::confirm`). 0 until one is.
    pub confirmed_at: u64,
    /// The oldest answer not confirmed yet: (its ping's send time, the
    /// peer's log index).
    pending: Option<(u64, u64)>,
}

/// What a peer said of itself in a pong.
#[derive(Clone, Debug, Default)]
pub struct Pong {
    pub incarnation: String,
    pub lost_data: bool,
    pub repl_offset: u64,
    pub log_index: u64,
}

impl Peer {
    /// Unix ms of the last sign of life (or of the start of probing).
    pub fn last_heard(&self) -> u64 {
        self.pong_recv.max(self.first_seen)
    }
}

pub struct Health {
    /// `cluster-node-timeout`, ms.
    pub node_timeout_ms: AtomicU64,
    /// `cluster-require-full-coverage`.
    pub full_coverage: AtomicBool,
    /// This process started without the data of the slots the
    /// configuration gives it: it serves none of them until the group
    /// accepts its incarnation (`ClusterView::accepted`).
    fenced: AtomicBool,
    /// See `isolated`.
    isolated: AtomicBool,
    /// When the isolation check last found a majority (ms; the creation
    /// time until then).
    majority_at: AtomicU64,
    /// This process's incarnation (random per start), set by the cluster
    /// control plane when it starts.
    pub incarnation: OnceLock<String>,
    peers: Mutex<HashMap<String, Peer>>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            node_timeout_ms: AtomicU64::new(DEFAULT_NODE_TIMEOUT_MS),
            full_coverage: AtomicBool::new(true),
            fenced: AtomicBool::new(false),
            isolated: AtomicBool::new(false),
            majority_at: AtomicU64::new(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            ),
            incarnation: OnceLock::new(),
            peers: Mutex::new(HashMap::new()),
        }
    }
}

impl Health {
    pub fn node_timeout(&self) -> u64 {
        self.node_timeout_ms.load(Relaxed).max(1)
    }

    pub fn full_coverage(&self) -> bool {
        self.full_coverage.load(Relaxed)
    }

    pub fn fenced(&self) -> bool {
        self.fenced.load(Relaxed)
    }

    /// Sets the data fence (at start) or lifts it (once accepted).
    pub fn set_fenced(&self, on: bool) {
        self.fenced.store(on, Relaxed);
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer's state, if it is probed.
    pub fn peer(&self, id: &str) -> Option<Peer> {
        self.peers().get(id).cloned()
    }

    /// Keeps exactly the peers in `ids`, adding new ones as first seen
    /// `now`.
    pub fn track(&self, ids: &[&str], now: u64) {
        let mut p = self.peers();
        p.retain(|id, _| ids.contains(&id.as_str()));
        for id in ids {
            p.entry(id.to_string()).or_insert_with(|| Peer { first_seen: now, ..Peer::default() });
        }
    }

    /// A ping to `id` leaves at `now` (unless one is outstanding already).
    pub fn ping_sent(&self, id: &str, now: u64) {
        if let Some(p) = self.peers().get_mut(id) {
            if p.ping_sent == 0 {
                p.ping_sent = now;
            }
        }
    }

    /// `id` answered at `now` the ping sent at `asked_at`; this node had
    /// applied the Raft log up to `applied` then.
    pub fn pong(&self, id: &str, now: u64, asked_at: u64, pong: Pong, applied: u64) {
        if let Some(p) = self.peers().get_mut(id) {
            p.ping_sent = 0;
            p.pong_recv = now;
            p.link_up = true;
            p.incarnation = pong.incarnation;
            p.lost_data = pong.lost_data;
            p.repl_offset = pong.repl_offset;
            p.log_index = pong.log_index;
            if pong.log_index <= applied {
                p.confirmed_at = p.confirmed_at.max(asked_at);
                p.pending = None;
            } else if p.pending.is_none() {
                p.pending = Some((asked_at, pong.log_index));
            }
        }
    }

    /// This node has applied the Raft log up to `applied`: the answers
    /// that were waiting for it count from now on.
    pub fn confirm(&self, applied: u64) {
        for p in self.peers().values_mut() {
            if let Some((asked_at, index)) = p.pending {
                if index <= applied {
                    p.confirmed_at = p.confirmed_at.max(asked_at);
                    p.pending = None;
                }
            }
        }
    }

    /// Whether `id` counts towards a majority at `now`: it answered a ping
    /// sent within `within` ms having stored no Raft entry this node has
    /// not applied (or it is new and has not been asked for that long).
    ///
    /// A ping's send time, not its answer's arrival, is what counts: an
    /// answer that waited in the socket while this process was stopped
    /// says nothing of the cluster now. And a peer whose log holds an
    /// entry this node has not applied yet may be holding the entry that
    /// declared this node failed or promoted its replica: it counts only
    /// once this node has applied that far, so a majority is never
    /// "heard" by a node that has not yet learnt it lost its slots.
    pub fn current_within(&self, id: &str, now: u64, within: u64) -> bool {
        self.peer(id).is_some_and(|p| {
            let new = p.pong_recv == 0 && now.saturating_sub(p.first_seen) <= within;
            new || (p.confirmed_at > 0 && now.saturating_sub(p.confirmed_at) <= within)
        })
    }

    /// Whether `id` answered within `within` ms of `now`.
    pub fn heard_within(&self, id: &str, now: u64, within: u64) -> bool {
        self.peer(id).is_some_and(|p| p.pong_recv > 0 && now.saturating_sub(p.pong_recv) <= within)
    }

    /// Whether this node has been cut off from a majority of the Raft
    /// voters (writes are then refused: the majority may have promoted a
    /// replica meanwhile).
    pub fn isolated(&self) -> bool {
        self.isolated.load(Relaxed)
    }

    pub fn set_isolated(&self, on: bool) {
        self.isolated.store(on, Relaxed);
    }

    /// The isolation check found a majority at `now`.
    pub fn note_majority(&self, now: u64) {
        self.majority_at.fetch_max(now, Relaxed);
    }

    /// Whether writes must be refused at `now`: cut off from the majority,
    /// or no check has found one for the node timeout. The second covers
    /// a process that was stalled (paused, swapped out) for that long: the
    /// majority may have promoted a replica meanwhile, so it must not take
    /// the writes waiting in its sockets before its periodic check (every
    /// tenth of the timeout) has heard the majority again.
    pub fn refuses_writes(&self, now: u64) -> bool {
        self.isolated() || now.saturating_sub(self.majority_at.load(Relaxed)) > self.node_timeout()
    }

    /// The ping to `id` failed (refused, timed out): the link is down; the
    /// ping stays outstanding.
    pub fn ping_failed(&self, id: &str) {
        if let Some(p) = self.peers().get_mut(id) {
            p.link_up = false;
        }
    }

    /// Whether `id` has not been heard from for the node timeout (this
    /// node's own suspicion: `fail?`).
    pub fn suspect(&self, id: &str, now: u64) -> bool {
        self.peer(id).is_some_and(|p| now.saturating_sub(p.last_heard()) > self.node_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_when_no_majority_was_found_for_the_node_timeout() {
        let h = Health::default();
        let t0 = h.majority_at.load(Relaxed);
        assert!(!h.refuses_writes(t0 + 10));
        // A stall longer than the timeout: refused until a check finds
        // the majority again.
        assert!(h.refuses_writes(t0 + DEFAULT_NODE_TIMEOUT_MS + 1));
        h.note_majority(t0 + 5000);
        assert!(!h.refuses_writes(t0 + 5001));
        h.set_isolated(true);
        assert!(h.refuses_writes(t0 + 5001));
    }

    #[test]
    fn suspicion_follows_the_node_timeout() {
        let h = Health::default();
        h.node_timeout_ms.store(1000, Relaxed);
        h.track(&["a", "b"], 10_000);
        assert!(!h.suspect("a", 10_500));
        assert!(h.suspect("a", 11_001), "never answered since probing began");
        h.ping_sent("a", 11_000);
        h.pong("a", 11_010, 11_000, Pong { incarnation: "inc".into(), repl_offset: 7, ..Pong::default() }, 0);
        assert!(h.heard_within("a", 11_500, 500) && !h.heard_within("a", 11_600, 500));
        assert!(!h.suspect("a", 11_500));
        let p = h.peer("a").unwrap();
        assert_eq!((p.ping_sent, p.pong_recv, p.link_up), (0, 11_010, true));
        h.ping_sent("a", 11_100);
        h.ping_failed("a");
        h.ping_sent("a", 11_200);
        let p = h.peer("a").unwrap();
        assert_eq!((p.ping_sent, p.link_up), (11_100, false));
        assert!(h.suspect("a", 12_100));
        h.track(&["a"], 13_000);
        assert!(h.peer("b").is_none());
        assert!(!h.suspect("unknown", 99_999));
    }

    #[test]
    fn an_answer_counts_once_this_node_applied_what_the_peer_stored() {
        let h = Health::default();
        h.track(&["a"], 10_000);
        assert!(h.current_within("a", 10_100, 500), "new and not asked for long");
        h.pong("a", 10_210, 10_200, Pong { log_index: 9, ..Pong::default() }, 8);
        assert!(!h.current_within("a", 10_300, 500), "its log is ahead of ours");
        // The next answer, still ahead, does not displace the first.
        h.pong("a", 10_310, 10_300, Pong { log_index: 12, ..Pong::default() }, 8);
        h.confirm(9);
        assert!(h.current_within("a", 10_400, 500));
        assert!(!h.current_within("a", 10_701, 500), "the confirmed ping is too old");
        h.pong("a", 10_810, 10_800, Pong { log_index: 12, ..Pong::default() }, 12);
        assert!(h.current_within("a", 10_900, 500));
    }

    #[test]
    fn an_answer_to_a_ping_sent_before_a_stall_does_not_count() {
        let h = Health::default();
        h.track(&["a"], 10_000);
        // Sent at 10_000, read at 20_000 after the process was stopped.
        h.pong("a", 20_000, 10_000, Pong::default(), 0);
        assert!(!h.current_within("a", 20_001, 500));
    }
}
