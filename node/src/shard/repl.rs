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
//!
//! Every byte of the stream also goes to the backlog (`shard::backlog`),
//! under its lock together with the offset and the feeds, so that a
//! replica continuing from an offset (`PSYNC <replid> <offset>`) gets what
//! the backlog holds from there and then exactly what follows. On a
//! replica the stream is the primary's, as applied by the link
//! (`persist::replica`), which fills the backlog and feeds sub-replicas;
//! its own journal's records are not replicated.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::Notify;

use super::backlog::Backlog;

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
    /// The database the applied stream last selected (a partial resync
    /// continues in it: the primary does not repeat its SELECT).
    pub link_db: std::sync::atomic::AtomicUsize,
    /// The id of the history this node had before its current one
    /// (`master_replid2`, all zeros: none) and the first offset that is not
    /// part of it (`second_repl_offset`, -1: none).
    pub replid2: Mutex<String>,
    pub second_offset: AtomicI64,
    /// The stream's last bytes; its lock also orders the offset and the
    /// feeds' bytes (`propagate`).
    pub backlog: Mutex<Backlog>,
    /// When this node last had a replica, or stopped being one (ms), for
    /// `repl-backlog-ttl`.
    pub last_replica_ms: AtomicU64,
    /// INFO stats: full resyncs served, partial ones accepted and refused.
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// INFO's `total_net_repl_input_bytes`: what this node read from its
    /// primary (handshake, snapshot and stream).
    pub input_bytes: AtomicU64,
    /// Held by a replica's link from applying stream bytes until they count
    /// (`propagate`), and by a snapshot for a sub-replica while the shards
    /// cut: the snapshot then matches the offset exactly.
    pub apply_gate: Arc<tokio::sync::Mutex<()>>,
}

/// `master_replid2` when there is no previous history.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// The primary a replica follows, and its link's state.
pub struct Master {
    pub host: String,
    pub port: u16,
    /// Synchronised and streaming.
    pub link_up: AtomicBool,
    /// A full resync is under way.
    pub syncing: AtomicBool,
    /// Connected, the handshake (PING ... PSYNC) not yet answered: ROLE's
    /// `handshake`.
    pub handshake: AtomicBool,
    /// When the primary last sent something (ms).
    pub last_io_ms: AtomicU64,
    /// When the link last went down (ms; 0: it never was up).
    pub down_since_ms: AtomicU64,
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
            handshake: AtomicBool::new(false),
            last_io_ms: AtomicU64::new(0),
            down_since_ms: AtomicU64::new(0),
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

    /// The link's state as ROLE names it (Redis's replicationStateToString
    /// states a link thread goes through).
    pub fn state(&self) -> &'static str {
        if self.link_up.load(Relaxed) {
            "connected"
        } else if self.syncing.load(Relaxed) {
            "sync"
        } else if self.handshake.load(Relaxed) {
            "handshake"
        } else {
            "connect"
        }
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
            link_db: std::sync::atomic::AtomicUsize::new(0),
            replid2: Mutex::new(NO_REPLID.into()),
            second_offset: AtomicI64::new(-1),
            backlog: Mutex::new(Backlog::new(1 << 20)),
            last_replica_ms: AtomicU64::new(crate::util::now_ms()),
            sync_full: AtomicU64::new(0),
            input_bytes: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            apply_gate: Arc::new(tokio::sync::Mutex::new(())),
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
    /// that stops following starts a new history whose offsets continue
    /// the old one, which stays its second id up to here (so that the
    /// replicas of its former primary can continue from it, as Redis 4+).
    /// Its own replicas are dropped when it starts following: they resync
    /// with the new history.
    pub fn set_master(&self, master: Option<Arc<Master>>) -> u64 {
        let mut m = self.master.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_some() && master.is_none() {
            let _b = self.lock_backlog();
            let old = std::mem::replace(&mut *self.replid.lock().unwrap_or_else(|e| e.into_inner()), random_id());
            *self.replid2.lock().unwrap_or_else(|e| e.into_inner()) = old;
            self.second_offset.store(self.offset.load(Relaxed) as i64 + 1, Relaxed);
            self.last_replica_ms.store(crate::util::now_ms(), Relaxed);
        }
        let gen = self.generation.fetch_add(1, Relaxed) + 1;
        self.following.store(master.is_some(), Relaxed);
        if master.is_some() {
            for f in std::mem::take(&mut *self.feeds.lock().unwrap_or_else(|e| e.into_inner())) {
                f.end("this node now replicates another");
            }
        }
        if let Some(old) = std::mem::replace(&mut *m, master) {
            old.close();
        }
        gen
    }

    /// Bytes queued for replicas and not yet taken by their connections
    /// (stream and diskless payload): what Redis leaves out of the memory
    /// `maxmemory` weighs (`mem_not_counted_for_evict`).
    pub fn queued_for_replicas(&self) -> usize {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.iter().map(|f| f.queued()).sum()
    }

    pub fn lock_backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn replid2(&self) -> String {
        self.replid2.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds `bytes` to the stream: the offset, the backlog (resized first
    /// if `repl-backlog-size` changed), and every feed past its cut; a feed
    /// over `limit` (0: none) is dropped and removed.
    pub fn propagate(&self, bytes: &[u8], size: u64, limit: u64) {
        let mut b = self.lock_backlog();
        b.resize(size);
        self.offset.fetch_add(bytes.len() as u64, Relaxed);
        b.push(bytes);
        for f in self.feeds() {
            if f.phase() != Phase::WaitCut && !f.push(bytes, limit) {
                tracing::warn!(
                    client = f.client,
                    "dropping a replica: its output buffer is over client-output-buffer-limit replica ({limit} bytes)"
                );
                self.remove(&f);
            }
        }
    }

    /// Starts a new history at offset `offset` with an empty backlog (this
    /// node synchronised with a primary whose stream is `replid`, or its
    /// first replica asked for a full resync: `None`, a new random id).
    pub fn new_history(&self, replid: Option<String>, offset: u64) {
        let mut b = self.lock_backlog();
        *self.replid.lock().unwrap_or_else(|e| e.into_inner()) = replid.unwrap_or_else(random_id);
        *self.replid2.lock().unwrap_or_else(|e| e.into_inner()) = NO_REPLID.into();
        self.second_offset.store(-1, Relaxed);
        self.offset.store(offset, Relaxed);
        self.link_db.store(0, Relaxed);
        b.activate();
        self.active.store(true, Relaxed);
    }

    /// Frees the backlog of a primary that has had no replica for `ttl`
    /// seconds (0: never); its history gets a new id, as Redis does, since
    /// writes from now on are not counted.
    pub fn expire_backlog(&self, ttl: u64) {
        let now = crate::util::now_ms();
        if self.is_replica() || !self.feeds().is_empty() {
            self.last_replica_ms.store(now, Relaxed);
            return;
        }
        if ttl == 0 || now.saturating_sub(self.last_replica_ms.load(Relaxed)) < ttl.saturating_mul(1000) {
            return;
        }
        let mut b = self.lock_backlog();
        if !b.active {
            return;
        }
        b.free();
        self.active.store(false, Relaxed);
        *self.replid.lock().unwrap_or_else(|e| e.into_inner()) = random_id();
        *self.replid2.lock().unwrap_or_else(|e| e.into_inner()) = NO_REPLID.into();
        self.second_offset.store(-1, Relaxed);
        tracing::info!("replication backlog freed after {ttl} seconds without replicas");
    }

    /// A replica continuing the history `replid` from byte `from`: when
    /// this node's history is it (or contains it, as its second id, up to
    /// `second_repl_offset`) and the backlog holds the stream from there,
    /// `feed` is attached streaming, owed `+CONTINUE [<replid>]` and the
    /// backlog from `from`; false (a full resync is owed) otherwise.
    pub fn try_continue(&self, feed: &Arc<Feed>, replid: &str, from: u64, psync2: bool) -> bool {
        let b = self.lock_backlog();
        let ours = self.replid();
        let known = ours.eq_ignore_ascii_case(replid)
            || (self.replid2().eq_ignore_ascii_case(replid) && from as i64 <= self.second_offset.load(Relaxed));
        let end = self.offset.load(Relaxed);
        let Some(data) = known.then(|| b.since(from, end)).flatten() else {
            return false;
        };
        {
            let mut s = feed.lock();
            s.phase = Phase::Online;
            s.start = from - 1;
            s.told = true;
            s.pending = if psync2 { format!("+CONTINUE {ours}\r\n") } else { "+CONTINUE\r\n".into() }.into_bytes();
            s.pending.extend_from_slice(&data);
        }
        self.feeds.lock().unwrap_or_else(|e| e.into_inner()).push(feed.clone());
        self.active.store(true, Relaxed);
        drop(b);
        feed.changed.notify_one();
        true
    }

    /// Drops every replica (their connections close; they resync).
    pub fn drop_feeds(&self, why: &str) {
        for f in std::mem::take(&mut *self.feeds.lock().unwrap_or_else(|e| e.into_inner())) {
            f.drop_now(why);
        }
    }

    /// Whether this node is a replica (clients' writes are refused).
    pub fn is_replica(&self) -> bool {
        self.following.load(Relaxed)
    }

    /// A replica with `replica-read-only yes`: clients' writes are refused.
    pub fn read_only(&self, cfg: &crate::config::Config) -> bool {
        self.is_replica() && cfg.repl.read_only.load(Relaxed)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Online replicas whose last acknowledgement is at most `max_lag`
    /// seconds old, counted in whole seconds as Redis does
    /// (`refreshGoodSlavesCount`).
    pub fn good_replicas(&self, max_lag: u64) -> u64 {
        let now = crate::util::now_ms() / 1000;
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.iter().filter(|f| f.phase() == Phase::Online && now.saturating_sub(f.acked_ms.load(Relaxed) / 1000) <= max_lag).count() as u64
    }

    /// A replica whose link is down with `replica-serve-stale-data no`:
    /// commands not flagged `stale` are refused (MASTERDOWN).
    pub fn stale(&self, cfg: &crate::config::Config) -> bool {
        self.is_replica() && !cfg.repl.serve_stale.load(Relaxed) && self.master().is_some_and(|m| !m.link_up.load(Relaxed))
    }

    /// `min-replicas-to-write`: false when this node is a primary with
    /// fewer good replicas than the setting asks (writes get NOREPLICAS).
    /// A replica, or either setting at 0, always allows writes
    /// (`checkGoodReplicasStatus`).
    pub fn enough_replicas(&self, cfg: &crate::config::Config) -> bool {
        let need = cfg.repl.min_replicas_to_write.load(Relaxed);
        if need == 0 {
            return true;
        }
        let lag = cfg.repl.min_replicas_max_lag.load(Relaxed);
        lag == 0 || self.is_replica() || self.good_replicas(lag) >= need
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
    /// `+FULLRESYNC` may go; the snapshot is being written (or, diskless,
    /// streamed).
    WaitRdb,
    /// The snapshot file is written: the payload is owed.
    RdbReady,
    /// Streaming.
    Online,
    /// Dropped (over its buffer limit, or the snapshot failed).
    Dropped,
}

/// Diskless payload bytes a feed may hold before the snapshot's writer
/// waits for its replica to take them.
pub const PAYLOAD_WINDOW: usize = 4 << 20;

/// One replica's stream.
pub struct Feed {
    pub state: Mutex<FeedState>,
    pub changed: Notify,
    /// Signalled when the connection took payload bytes (or the feed was
    /// dropped): a diskless snapshot's writer waits on it for room.
    pub room: Condvar,
    /// The offset the replica last acknowledged (REPLCONF ACK).
    pub acked: AtomicU64,
    /// When it last acknowledged (ms).
    pub acked_ms: AtomicU64,
    /// The connection's client id, address and announced port.
    pub client: u64,
    pub ip: String,
    pub port: AtomicU64,
    /// The replica announced `REPLCONF capa eof`: it reads an
    /// `$EOF:<mark>` payload, which a diskless sync sends.
    pub eof: bool,
    /// The connection, closed when the feed is dropped (its task may be
    /// stuck writing to a replica that does not read).
    pub conn: Option<Arc<super::clients::ClientInfo>>,
}

pub struct FeedState {
    pub phase: Phase,
    /// The offset the stream starts at (the `+FULLRESYNC` offset).
    pub start: u64,
    /// The snapshot file (already unlinked) and its bytes left to send.
    pub sending: Option<(std::fs::File, u64)>,
    /// `$<len>` was sent for it.
    pub header_sent: bool,
    /// The snapshot streams to the replica (no file).
    pub diskless: bool,
    /// A diskless payload's bytes not yet taken by the connection, and
    /// whether the writer has put in its last ones.
    pub payload: Vec<u8>,
    pub payload_done: bool,
    /// After a diskless payload the stream waits for the replica's first
    /// `REPLCONF ACK`: a replica reading the payload may read past its end
    /// mark, so nothing may follow it before the replica has loaded it.
    pub await_ack: bool,
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
                sending: None,
                header_sent: false,
                diskless: false,
                payload: Vec::new(),
                payload_done: false,
                await_ack: false,
                pending: Vec::new(),
                why: String::new(),
                told: false,
            }),
            changed: Notify::new(),
            room: Condvar::new(),
            acked: AtomicU64::new(0),
            acked_ms: AtomicU64::new(crate::util::now_ms()),
            client,
            ip,
            port: AtomicU64::new(port),
            eof: false,
            conn,
        }
    }

    /// A feed whose replica announced `capa eof`.
    pub fn with_eof(mut self, eof: bool) -> Feed {
        self.eof = eof;
        self
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
            s.advance();
        }
        drop(s);
        self.changed.notify_one();
    }

    /// The snapshot file is written (`Ok`: opened, with its length) or
    /// the snapshot failed.
    pub fn rdb_done(&self, result: Result<(std::fs::File, u64), String>) {
        let mut s = self.lock();
        match result {
            Ok(file) => {
                s.sending = Some(file);
                s.advance();
            }
            Err(e) => {
                s.phase = Phase::Dropped;
                s.sending = None;
                s.why = format!("the snapshot failed: {e}");
            }
        }
        drop(s);
        self.changed.notify_one();
        self.room.notify_all();
    }

    /// Adds diskless payload bytes; waits while the connection holds
    /// `PAYLOAD_WINDOW` bytes it has not sent, at most `patience` without
    /// progress (then the feed is dropped). False when the feed is dropped.
    pub fn push_payload(&self, bytes: &[u8], last: bool, patience: std::time::Duration) -> bool {
        let mut s = self.lock();
        let mut waited = std::time::Duration::ZERO;
        while s.phase != Phase::Dropped && s.payload.len() >= PAYLOAD_WINDOW {
            let before = s.payload.len();
            let step = std::time::Duration::from_millis(100);
            s = self.room.wait_timeout(s, step).unwrap_or_else(|e| e.into_inner()).0;
            waited = if s.payload.len() < before { std::time::Duration::ZERO } else { waited + step };
            if waited >= patience && s.phase != Phase::Dropped {
                drop(s);
                self.drop_now("the replica did not read its payload in time");
                return false;
            }
        }
        if s.phase == Phase::Dropped {
            return false;
        }
        s.payload.extend_from_slice(bytes);
        if last {
            s.payload_done = true;
            s.advance();
        }
        drop(s);
        self.changed.notify_one();
        true
    }

    /// Bytes allocated for what waits for the connection to take it.
    pub fn queued(&self) -> usize {
        let s = self.lock();
        s.pending.capacity() + s.payload.capacity()
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
            self.room.notify_all();
            if let Some(c) = &self.conn {
                c.close_async();
            }
            return false;
        }
        drop(s);
        self.changed.notify_one();
        true
    }

    /// The replica acknowledged an offset: a stream held back after a
    /// diskless payload may go.
    pub fn acknowledged(&self) {
        let mut s = self.lock();
        if s.await_ack {
            s.await_ack = false;
            drop(s);
            self.changed.notify_one();
        }
    }

    /// Online, acknowledged at least once, and silent for more than
    /// `timeout_ms` (`repl-timeout`): the primary drops it, as Redis's
    /// replication cron drops a timed-out replica.
    pub fn ack_overdue(&self, now_ms: u64, timeout_ms: u64) -> bool {
        let s = self.lock();
        s.phase == Phase::Online && !s.await_ack && now_ms.saturating_sub(self.acked_ms.load(Relaxed)) > timeout_ms
    }

    /// Drops this feed: its connection closes.
    pub fn drop_now(&self, why: &str) {
        let mut s = self.lock();
        s.phase = Phase::Dropped;
        s.why = why.to_string();
        s.pending = Vec::new();
        s.payload = Vec::new();
        s.sending = None;
        drop(s);
        self.changed.notify_one();
        self.room.notify_all();
        if let Some(c) = &self.conn {
            c.close_async();
        }
    }

    /// Ends this feed after what its replica is owed of the stream so far
    /// (a replica still synchronising gets nothing more): its connection
    /// sends that, then closes.
    pub fn end(&self, why: &str) {
        let mut s = self.lock();
        if s.phase != Phase::Online {
            drop(s);
            return self.drop_now(why);
        }
        s.phase = Phase::Dropped;
        s.why = why.to_string();
        s.payload = Vec::new();
        s.sending = None;
        drop(s);
        self.changed.notify_one();
        self.room.notify_all();
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

impl FeedState {
    /// Once attached: a written file is owed (`RdbReady`); a diskless
    /// payload all handed over makes the replica online, its stream held
    /// until its first acknowledgement.
    fn advance(&mut self) {
        if self.phase != Phase::WaitRdb {
            return;
        }
        if self.sending.is_some() {
            self.phase = Phase::RdbReady;
        } else if self.payload_done {
            self.phase = Phase::Online;
            self.await_ack = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(f: &Feed) -> String {
        String::from_utf8(f.lock().pending.clone()).unwrap()
    }

    #[test]
    fn a_replica_continues_from_the_backlog_and_gets_what_follows() {
        let r = ReplState::default();
        r.new_history(Some("a".repeat(40)), 100);
        r.propagate(b"0123456789", MIN, 0);
        assert_eq!(r.offset.load(Relaxed), 110);
        let id = "a".repeat(40);
        // From byte 105: the backlog's last six bytes, then the stream.
        let f = Arc::new(Feed::new(1, "127.0.0.1".into(), 6380, None));
        assert!(r.try_continue(&f, &id, 105, true));
        assert_eq!(pending(&f), format!("+CONTINUE {id}\r\n456789"));
        r.propagate(b"xy", MIN, 0);
        assert!(pending(&f).ends_with("456789xy"));
        // Without psync2 the id is not named; nothing owed from the end.
        let g = Arc::new(Feed::new(2, "127.0.0.1".into(), 6381, None));
        assert!(r.try_continue(&g, &id, 113, false));
        assert_eq!(pending(&g), "+CONTINUE\r\n");
        // Before the backlog, past the end, or another history: refused.
        for (rid, from) in [(id.as_str(), 100), (id.as_str(), 114), (&"b".repeat(40)[..], 105)] {
            assert!(!r.try_continue(&Arc::new(Feed::new(3, String::new(), 0, None)), rid, from, true), "{rid} {from}");
        }
        assert_eq!(r.feeds().len(), 2);
    }

    #[test]
    fn a_promoted_replica_serves_its_former_history_up_to_the_promotion() {
        let r = ReplState::default();
        let old = "c".repeat(40);
        r.set_master(Some(Arc::new(Master::new("127.0.0.1".into(), 1))));
        r.new_history(Some(old.clone()), 50);
        r.propagate(b"abcd", MIN, 0);
        r.set_master(None);
        assert_eq!(r.replid2(), old);
        assert_eq!(r.second_offset.load(Relaxed), 55);
        assert_ne!(r.replid(), old);
        // The new history's bytes follow in the same offsets.
        r.propagate(b"ef", MIN, 0);
        let f = Arc::new(Feed::new(1, String::new(), 0, None));
        assert!(r.try_continue(&f, &old, 53, true));
        assert_eq!(pending(&f), format!("+CONTINUE {}\r\ncdef", r.replid()));
        // A sibling that had more of the old history than this node cannot.
        assert!(!r.try_continue(&Arc::new(Feed::new(2, String::new(), 0, None)), &old, 56, true));
    }

    const MIN: u64 = crate::config::repl::BACKLOG_MIN_SIZE;

    #[test]
    fn good_replicas_are_online_and_acknowledged_within_the_lag() {
        let r = ReplState::default();
        use clap::Parser;
        let cfg = crate::config::Config::from_args(&crate::config::Args::parse_from(["damselfly"])).expect("config");
        assert!(r.enough_replicas(&cfg));
        cfg.repl.min_replicas_to_write.store(1, Relaxed);
        assert!(!r.enough_replicas(&cfg));
        let f = Arc::new(Feed::new(1, String::new(), 0, None));
        r.feeds.lock().unwrap().push(f.clone());
        // Not online yet.
        assert_eq!(r.good_replicas(10), 0);
        f.lock().phase = Phase::Online;
        assert!(r.enough_replicas(&cfg));
        // An acknowledgement older than the lag does not count.
        f.acked_ms.store(crate::util::now_ms() - 20_000, Relaxed);
        assert!(!r.enough_replicas(&cfg));
        cfg.repl.min_replicas_max_lag.store(0, Relaxed);
        assert!(r.enough_replicas(&cfg));
    }

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
        let file = std::fs::File::open("/dev/null").unwrap();
        f.rdb_done(Ok((file, 0)));
        assert_eq!(f.phase(), Phase::RdbReady);
    }

    #[test]
    fn a_diskless_payload_goes_before_the_stream_which_waits_for_the_first_ack() {
        let f = Feed::new(1, "127.0.0.1".into(), 6380, None).with_eof(true);
        let patience = std::time::Duration::from_secs(1);
        // The writer may hand over the payload before the cut is reached.
        assert!(f.push_payload(b"$EOF:", false, patience));
        assert!(f.push_payload(b"rdb", true, patience));
        assert_eq!(f.phase(), Phase::WaitCut);
        f.attach(7);
        assert_eq!(f.phase(), Phase::Online);
        assert!(f.push(b"SET", 0));
        let s = f.lock();
        assert_eq!((s.start, s.await_ack, s.payload.as_slice(), s.pending.as_slice()), (7, true, &b"$EOF:rdb"[..], &b"SET"[..]));
        drop(s);
        f.acknowledged();
        assert!(!f.lock().await_ack);
        // A dropped feed takes no more payload.
        f.drop_now("gone");
        assert!(!f.push_payload(b"x", false, patience));
    }

    #[test]
    fn a_replica_that_takes_nothing_of_its_payload_is_dropped() {
        let f = Feed::new(1, "127.0.0.1".into(), 6380, None).with_eof(true);
        let patience = std::time::Duration::from_millis(200);
        assert!(f.push_payload(&vec![0; PAYLOAD_WINDOW], false, patience));
        assert!(!f.push_payload(b"more", false, patience));
        assert_eq!(f.phase(), Phase::Dropped);
    }
}
