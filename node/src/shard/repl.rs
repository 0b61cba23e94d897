//! The primary's side of replication, as the node sees it: the replication
//! id and offset, and one `Feed` per replica.
//!
//! A replica's feed is filled by the journal writer (`persist::aof`): once
//! every shard has passed the point in time of the replica's snapshot, the
//! writer attaches the feed and from then on appends every byte of RESP it
//! produces (SELECT, the journaled commands, MULTI/EXEC) to it, counting
//! the replication offset. The replica's connection drains the feed: first
//! `+FULLRESYNC <id> <offset>`, then the snapshot as an RDB payload, then
//! the stream. A feed over `client-output-buffer-limit replica` is dropped
//! by the writer: a slow replica never holds up writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The node's replication state (primary side).
pub struct ReplState {
    /// The replication id of this node's history (`master_replid`).
    pub replid: Mutex<String>,
    /// Bytes of replication stream produced so far (`master_repl_offset`).
    pub offset: AtomicU64,
    /// Replicas being fed (attached or waiting for their cut).
    pub feeds: Mutex<Vec<Arc<Feed>>>,
    /// A replica has asked for a sync: the writer counts the offset and
    /// feeds replicas from then on.
    pub active: AtomicBool,
    /// A replica acknowledged an offset (WAIT waits for these).
    pub acks: Notify,
    /// The primary this node follows (REPLICAOF), if any.
    pub master: Mutex<Option<Arc<Master>>>,
    /// Bumped by every REPLICAOF: a link of an older generation stops.
    pub generation: AtomicU64,
    /// `master` is set (read on every write command: no lock).
    pub following: AtomicBool,
}

/// The primary a replica follows, and its link's state.
pub struct Master {
    pub host: String,
    pub port: u16,
    /// Synchronised and streaming.
    pub link_up: AtomicBool,
    /// A full resync is under way.
    pub syncing: AtomicBool,
    /// When the primary last sent something (ms).
    pub last_io_ms: AtomicU64,
    /// The link's socket, shut down when the node stops following.
    pub sock: Mutex<Option<std::net::TcpStream>>,
}

impl Master {
    pub fn new(host: String, port: u16) -> Master {
        Master {
            host,
            port,
            link_up: AtomicBool::new(false),
            syncing: AtomicBool::new(false),
            last_io_ms: AtomicU64::new(0),
            sock: Mutex::new(None),
        }
    }

    /// Ends the link (its thread sees the generation moved on).
    pub fn close(&self) {
        if let Some(s) = self.sock.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn touch(&self) {
        self.last_io_ms.store(crate::util::now_ms(), Relaxed);
    }
}

impl Default for ReplState {
    fn default() -> Self {
        ReplState {
            replid: Mutex::new(random_id()),
            offset: AtomicU64::new(0),
            feeds: Mutex::new(Vec::new()),
            active: AtomicBool::new(false),
            acks: Notify::new(),
            master: Mutex::new(None),
            generation: AtomicU64::new(0),
            following: AtomicBool::new(false),
        }
    }
}

/// A new random 40-hex replication id.
pub fn random_id() -> String {
    (0..40).map(|_| format!("{:x}", rand::random_range(0..16u8))).collect()
}

impl ReplState {
    pub fn replid(&self) -> String {
        self.replid.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The primary this node follows (`None`: it is a primary).
    pub fn master(&self) -> Option<Arc<Master>> {
        self.master.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Follows `master` (or none); returns the new link generation. A node
    /// that stops following gets a new replication id, as Redis does.
    pub fn set_master(&self, master: Option<Arc<Master>>) -> u64 {
        let mut m = self.master.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_some() && master.is_none() {
            *self.replid.lock().unwrap_or_else(|e| e.into_inner()) = random_id();
        }
        let gen = self.generation.fetch_add(1, Relaxed) + 1;
        self.following.store(master.is_some(), Relaxed);
        if let Some(old) = std::mem::replace(&mut *m, master) {
            old.close();
        }
        gen
    }

    /// Whether this node is a replica (clients' writes are refused).
    pub fn is_replica(&self) -> bool {
        self.following.load(Relaxed)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    pub fn remove(&self, feed: &Arc<Feed>) {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner()).retain(|f| !Arc::ptr_eq(f, feed));
    }
}

/// Where a replica's synchronisation is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Waiting for the snapshot's cut to reach the writer.
    WaitCut,
    /// `+FULLRESYNC` may go; the snapshot is being written.
    WaitRdb,
    /// The payload is owed.
    RdbReady,
    /// Streaming.
    Online,
    /// Dropped (over its buffer limit, or the snapshot failed).
    Dropped,
}

/// One replica's stream.
pub struct Feed {
    pub state: Mutex<FeedState>,
    pub changed: Notify,
    /// The offset the replica last acknowledged (REPLCONF ACK).
    pub acked: AtomicU64,
    /// When it last acknowledged (ms).
    pub acked_ms: AtomicU64,
    /// The connection's client id, address and announced port.
    pub client: u64,
    pub ip: String,
    pub port: AtomicU64,
    /// The connection, closed when the feed is dropped (its task may be
    /// stuck writing to a replica that does not read).
    pub conn: Option<Arc<super::clients::ClientInfo>>,
}

pub struct FeedState {
    pub phase: Phase,
    /// The offset the stream starts at (the `+FULLRESYNC` offset).
    pub start: u64,
    /// The snapshot file, once written.
    pub rdb: Option<PathBuf>,
    /// Stream bytes not yet taken by the connection.
    pub pending: Vec<u8>,
    pub why: String,
    /// `+FULLRESYNC` was sent (or is not owed: SYNC).
    pub told: bool,
}

impl Feed {
    pub fn new(client: u64, ip: String, port: u64, conn: Option<Arc<super::clients::ClientInfo>>) -> Feed {
        Feed {
            state: Mutex::new(FeedState {
                phase: Phase::WaitCut,
                start: 0,
                rdb: None,
                pending: Vec::new(),
                why: String::new(),
                told: false,
            }),
            changed: Notify::new(),
            acked: AtomicU64::new(0),
            acked_ms: AtomicU64::new(crate::util::now_ms()),
            client,
            ip,
            port: AtomicU64::new(port),
            conn,
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// The writer reached the cut: the stream starts at `offset`.
    pub fn attach(&self, offset: u64) {
        let mut s = self.lock();
        if s.phase == Phase::WaitCut {
            s.phase = Phase::WaitRdb;
            s.start = offset;
        }
        drop(s);
        self.changed.notify_one();
    }

    /// The snapshot is written (`Ok(path)`) or failed.
    pub fn rdb_done(&self, result: Result<PathBuf, String>) {
        let mut s = self.lock();
        match result {
            Ok(p) => {
                s.rdb = Some(p);
                if s.phase == Phase::WaitRdb || s.phase == Phase::WaitCut {
                    s.phase = Phase::RdbReady;
                }
            }
            Err(e) => {
                s.phase = Phase::Dropped;
                s.why = format!("the snapshot failed: {e}");
            }
        }
        drop(s);
        self.changed.notify_one();
    }

    /// Appends stream bytes (from the writer); false when the feed is over
    /// `limit` bytes (0: no limit) and was dropped.
    pub fn push(&self, bytes: &[u8], limit: u64) -> bool {
        let mut s = self.lock();
        if s.phase == Phase::Dropped {
            return false;
        }
        s.pending.extend_from_slice(bytes);
        if limit > 0 && s.pending.len() as u64 > limit {
            s.phase = Phase::Dropped;
            s.why = format!("its output buffer passed client-output-buffer-limit replica ({limit} bytes)");
            s.pending = Vec::new();
            drop(s);
            self.changed.notify_one();
            if let Some(c) = &self.conn {
                c.close_async();
            }
            return false;
        }
        drop(s);
        self.changed.notify_one();
        true
    }

    /// The replica's state as INFO shows it.
    pub fn info_state(&self) -> &'static str {
        match self.phase() {
            Phase::WaitCut | Phase::WaitRdb => "wait_bgsave",
            Phase::RdbReady => "send_bulk",
            Phase::Online => "online",
            Phase::Dropped => "dropped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_over_its_limit_is_dropped() {
        let f = Feed::new(1, "127.0.0.1".into(), 6380, None);
        f.attach(10);
        assert_eq!(f.phase(), Phase::WaitRdb);
        assert!(f.push(b"12345", 8));
        assert!(!f.push(b"6789", 8));
        assert_eq!(f.phase(), Phase::Dropped);
        assert!(f.lock().pending.is_empty());
    }

    #[test]
    fn attach_keeps_the_first_offset() {
        let f = Feed::new(1, "127.0.0.1".into(), 6380, None);
        f.attach(10);
        f.attach(20);
        assert_eq!(f.lock().start, 10);
        f.rdb_done(Ok(PathBuf::from("x")));
        assert_eq!(f.phase(), Phase::RdbReady);
    }
}
