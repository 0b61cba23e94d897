//! A shard's part of a snapshot, and the node's save status.
//!
//! A snapshot starts while every shard is held by one transaction, so it is
//! one point in time across shards: each shard marks its databases
//! (`Db::snapshot_begin`) and from then on serialises them between
//! commands, handing the RDB records to the file writer as `Part`s. A
//! database flushed meanwhile is kept, frozen, until it is written out.
//! The writer, the save scheduler and loading live in `persist`; this
//! module is what the shard itself owns.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot, Notify};

use super::Shard;
use crate::store::snapshot::Direct;
use crate::store::Db;

/// What a shard sends the file writer.
pub enum Part {
    /// RDB records of keys of database `db`, and string keys of it the
    /// writer encodes (`rdb::deferred` frames).
    Records { db: u32, bytes: Vec<u8>, strings: Vec<u8> },
    /// The shard has written all of its keys (`keys` of them).
    Done { keys: u64 },
}

/// What a caller asks the node's saver for.
pub enum SaveKind {
    /// SAVE: reply when the file is written.
    Foreground,
    /// BGSAVE: reply when the snapshot has started.
    Background,
    /// DEBUG RELOAD: write the file, then load it in place of the data.
    Reload,
    /// BGREWRITEAOF: write the journal's next base file (reply when it
    /// has started).
    AofRewrite,
    /// A replica's full sync: a snapshot to a temporary file, cut in the
    /// journal stream at its point in time for the replica's feed (reply
    /// when it has started; the feed hears when the file is written).
    Replica(std::sync::Arc<super::repl::Feed>),
}

pub struct SaveRequest {
    pub kind: SaveKind,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// A running snapshot, as one shard sees it.
pub struct ShardSnapshot {
    /// Where the records go.
    pub to_writer: mpsc::Sender<Part>,
    /// Databases flushed since the start, still owed to the file (boxed
    /// as the shard holds them: moved here, not copied).
    #[allow(clippy::vec_box)]
    detached: Vec<Box<Db>>,
    /// Keys of detached databases already written.
    detached_keys: u64,
}

impl Shard {
    /// Starts this shard's part of a snapshot (under a transaction that
    /// holds every shard); returns the changes made so far, which the
    /// snapshot will cover. Records past a bound, and big values' records,
    /// the databases write straight to the file (`direct`; none for a
    /// diskless sync, whose records all go through the writer thread).
    pub fn snapshot_begin(&mut self, now: u64, to_writer: mpsc::Sender<Part>, direct: Option<Direct>) -> u64 {
        for (i, d) in self.dbs.iter_mut().enumerate() {
            if let Some(d) = d {
                d.snapshot_begin(i as u32, now, direct.clone());
            }
        }
        self.snapshot = Some(ShardSnapshot { to_writer, detached: Vec::new(), detached_keys: 0 });
        self.snapshot_wake.notify_one();
        self.changes()
    }

    /// Keys this shard's part of the running snapshot has written so far.
    pub fn snapshot_keys_written(&self) -> u64 {
        let Some(snap) = &self.snapshot else { return 0 };
        let live: u64 = self.dbs.iter().flatten().map(|d| d.snapshot_keys()).sum();
        snap.detached_keys + snap.detached.iter().map(|d| d.snapshot_keys()).sum::<u64>() + live
    }

    /// Serialises up to about `budget` bytes of records into `out`; true
    /// when every key of the shard has been written.
    pub fn snapshot_step(&mut self, budget: usize, out: &mut Vec<Part>) -> bool {
        let Some(snap) = &mut self.snapshot else { return true };
        let mut size = 0;
        while let Some(d) = snap.detached.last_mut() {
            let done = d.snapshot_step(budget);
            size += take_part(d, out);
            if !done {
                return false;
            }
            snap.detached_keys += d.snapshot_end();
            snap.detached.pop();
            if size >= budget {
                return false;
            }
        }
        // Records written by the write paths come first, then more slots.
        for d in self.dbs.iter_mut().flatten() {
            size += take_part(d, out);
        }
        for d in self.dbs.iter_mut().flatten() {
            if !d.snapshotting() {
                continue;
            }
            let done = d.snapshot_step(budget.saturating_sub(size));
            size += take_part(d, out);
            if !done || size >= budget {
                return false;
            }
        }
        true
    }

    /// Ends this shard's part (finished or abandoned): write paths stop
    /// serialising and frozen databases are dropped. Returns the number of
    /// keys written.
    pub fn snapshot_end(&mut self) -> u64 {
        let Some(snap) = self.snapshot.take() else { return 0 };
        let mut keys = snap.detached_keys;
        for mut d in snap.detached {
            keys += d.snapshot_end();
        }
        for d in self.dbs.iter_mut().flatten() {
            keys += d.snapshot_end();
        }
        keys
    }

    /// Where this shard's records go, while it takes part in a snapshot.
    pub fn snapshot_sender(&self) -> Option<mpsc::Sender<Part>> {
        self.snapshot.as_ref().map(|s| s.to_writer.clone())
    }

    /// Whether this shard is taking part in a snapshot.
    pub fn snapshotting(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Keeps a database being dropped (FLUSHDB, FLUSHALL) for the running
    /// snapshot, which still owes its keys; true if it was kept.
    pub(super) fn keep_for_snapshot(&mut self, db: Box<Db>) -> Option<Box<Db>> {
        match &mut self.snapshot {
            Some(snap) if db.snapshotting() => {
                snap.detached.push(db);
                None
            }
            _ => Some(db),
        }
    }

    /// Changes made to this shard's keys since it started (or since its
    /// data was last loaded).
    pub fn changes(&self) -> u64 {
        let live: u64 = self.dbs.iter().flatten().map(|d| d.changes()).sum();
        (live + self.dropped_changes).saturating_sub(self.changes_offset)
    }

    /// Counts the present state as unchanged (after loading a file).
    pub fn forget_changes(&mut self) {
        self.changes_offset = 0;
        self.changes_offset = self.changes();
    }
}

/// Moves the records `d` has serialised since the last call into `out`;
/// returns their size in bytes.
fn take_part(d: &mut Db, out: &mut Vec<Part>) -> usize {
    let Some((db, bytes, strings)) = d.snapshot_take() else { return 0 };
    let size = bytes.len() + strings.len();
    out.push(Part::Records { db, bytes, strings });
    size
}

/// The node's snapshot and loading status (INFO `persistence`, LASTSAVE,
/// MISCONF), shared by every thread.
pub struct SaveStatus {
    /// Each shard's change count, as last published by the shard.
    pub changes: Vec<AtomicU64>,
    /// The sum of those counts when the last successful snapshot started.
    pub saved_changes: AtomicU64,
    pub in_progress: AtomicBool,
    /// Unix seconds of the last successful save (start-up time before one).
    pub last_save: AtomicU64,
    /// Whether the last save succeeded (true before any).
    pub last_ok: AtomicBool,
    /// Seconds the last save took; -1 before any.
    pub last_duration: AtomicI64,
    /// Unix milliseconds when the running save started.
    pub started_ms: AtomicU64,
    /// Unix seconds of the last failed attempt (saves are retried only
    /// after a pause).
    pub last_attempt: AtomicU64,
    pub saves: AtomicU64,
    /// Keys in the last file written.
    pub last_keys: AtomicU64,
    /// Keys loaded from the last file read, and those left out as expired.
    pub load_keys: AtomicU64,
    pub load_expired: AtomicU64,
    /// The running snapshot writes the data file (not a journal rewrite or
    /// a replica's), and FLUSHALL has asked it to stop (Redis kills its
    /// child: the file would hold the keys just flushed).
    pub dump_running: AtomicBool,
    pub abort_dump: AtomicBool,
    /// A data file is being loaded: clients get -LOADING.
    pub loading: AtomicBool,
    /// A replica's snapshot is decoded while the old data keeps serving
    /// (`repl-diskless-load swapdb`; Redis's async loading).
    pub async_loading: AtomicBool,
    /// Wakes a shard's snapshot task.
    pub wake: Vec<Arc<Notify>>,
    /// The saver's inbox (set when it starts).
    pub saver: OnceLock<mpsc::UnboundedSender<SaveRequest>>,
}

impl SaveStatus {
    pub fn new(nshards: usize, now_secs: u64) -> SaveStatus {
        SaveStatus {
            changes: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            saved_changes: AtomicU64::new(0),
            in_progress: AtomicBool::new(false),
            last_save: AtomicU64::new(now_secs),
            last_ok: AtomicBool::new(true),
            last_duration: AtomicI64::new(-1),
            started_ms: AtomicU64::new(0),
            last_attempt: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            last_keys: AtomicU64::new(0),
            load_keys: AtomicU64::new(0),
            load_expired: AtomicU64::new(0),
            dump_running: AtomicBool::new(false),
            abort_dump: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            wake: (0..nshards).map(|_| Arc::new(Notify::new())).collect(),
            saver: OnceLock::new(),
        }
    }

    /// Changes since the last successful snapshot started.
    pub fn changes_since_save(&self) -> u64 {
        let now: u64 = self.changes.iter().map(|c| c.load(Relaxed)).sum();
        now.saturating_sub(self.saved_changes.load(Relaxed))
    }

    pub fn loading(&self) -> bool {
        self.loading.load(Relaxed)
    }
}
