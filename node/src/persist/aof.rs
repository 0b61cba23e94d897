//! The append-only journal's files and writer, laid out as Redis 7 lays
//! out `appendonlydir`: a base file (an RDB snapshot), increment files of
//! RESP commands, and a manifest naming them in order:
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b
//! file appendonly.aof.3.incr.aof seq 3 type i
//! ```
//!
//! One writer thread appends what the shards journal (`shard::journal`)
//! to the newest increment file: a job's records as they come, a
//! transaction once all of its shards' parts are in; either inside
//! MULTI/EXEC when it holds several commands (a script's effects stay
//! whole), preceded by its first command's SELECT as Redis's.
//! `appendfsync always` fsyncs every batch before clients get their replies
//! (one fsync covers every write that arrived meanwhile: group commit; a
//! shard thread out of work usually makes it itself, under the writer's
//! lock), `everysec` once a second, `no` leaves it to the kernel.
//!
//! A rewrite (BGREWRITEAOF, or the first start with the journal on) is a
//! snapshot written as the next base file; at its point in time every shard
//! marks its stream (`JournalMsg::Cut`) and the writer moves on to a new
//! increment file, so base + newer increments hold everything. Once the
//! base is written, the manifest is replaced (temporary file, fsync,
//! rename) and the older files are deleted.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{error, warn};

use crate::config::Fsync;
use crate::shard::journal::{command, Commit, JournalMsg, RecordList, Records};
use crate::shard::{Engine, TxId};

pub use super::manifest::{Layout, Manifest};

/// How long the writer lets messages gather between two writes while
/// they keep coming, when replicas are fed (what they wait for).
const BATCH_PAUSE: Duration = Duration::from_micros(500);
/// The same for the files alone (`everysec`, `no`): nobody waits for the
/// write, and each of the writer's wake-ups costs the node CPU (a
/// kill -9 loses at most this much more than with Redis's write per
/// event-loop iteration; `everysec` promises a second).
const FILE_BATCH_PAUSE: Duration = Duration::from_millis(2);
/// Empty looks after which the writer blocks instead of polling.
const IDLE_POLLS: u32 = 20;
/// Group commit: records the writer finds waiting (on a periodic look,
/// or woken for another message) are fsynced after at most this, even if
/// no shard thread has committed them.
const GATHER_MAX: Duration = Duration::from_micros(200);
/// How long the group-commit writer sleeps with nothing to write (it
/// looks at the replicas' PING and backlog in between).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// A transaction's parts so far: how many shards it held, and each part
/// (shard, records).
type Pending = (usize, Vec<(usize, RecordList)>);

/// The writer's state.
struct Writer {
    engine: Arc<Engine>,
    layout: Layout,
    manifest: Manifest,
    /// `None` when the writer only feeds replicas (`appendonly no`), or
    /// waits for the rewrite that turns the files on.
    file: Option<File>,
    /// The files were turned on at run time and have no base yet: from the
    /// rewrite's point in time `file` is its new increment file, which the
    /// manifest names once the base is written (Redis's
    /// `AOF_WAIT_REWRITE`).
    enabling: bool,
    /// Bytes at the start of `buf` already given to the replicas' feeds.
    fed: usize,
    /// Bytes written to `file` and not yet fsynced.
    unsynced: bool,
    /// The database the file's commands last selected.
    db: Option<u32>,
    /// The second of the last `#TS:` annotation (`aof-timestamp-enabled`).
    annotated: u64,
    buf: Vec<u8>,
    /// Transactions waiting for more parts: total, parts (shard, records).
    txs: HashMap<TxId, Pending>,
    /// While a rewrite's cut is under way: the shards past it, and what
    /// they sent since (it belongs to the next file).
    cut: Option<(Vec<bool>, Vec<JournalMsg>)>,
    last_fsync: Instant,
    handled: u64,
    /// Messages handled when `flush` last ran.
    flushed: u64,
    /// Group commit: since when records wait for their fsync.
    waiting_since: Option<Instant>,
    /// What the shards send.
    rx: Receiver<JournalMsg>,
    /// When the replicas last got a PING.
    last_ping: Instant,
    /// When replicas were last looked at for `repl-timeout`.
    last_timeout_check: Instant,
}

/// Starts the writer thread on `manifest`, appending to its newest
/// increment file (creating one if it has none).
pub fn start(engine: &Arc<Engine>, layout: Layout, mut manifest: Manifest, rx: Receiver<JournalMsg>) -> Result<(), String> {
    std::fs::create_dir_all(&layout.dir).map_err(|e| format!("creating {}: {e}", layout.dir.display()))?;
    if manifest.incrs.is_empty() {
        let seq = manifest.next_incr_seq().max(manifest.base.as_ref().map_or(1, |b| b.1));
        manifest.incrs.push((layout.incr_name(seq), seq));
        layout.write_manifest(&manifest)?;
    }
    let (name, _) = manifest.incrs.last().cloned().expect("an increment file");
    let file = open_append(&layout.dir.join(&name))?;
    engine.journal.base_seq.store(manifest.base.as_ref().map_or(0, |b| b.1), Relaxed);
    sizes_from_files(engine, &layout, &manifest);
    engine.journal.file.store(true, Relaxed);
    spawn(engine, layout, manifest, Some(file), rx)
}

/// Starts the writer without files, to feed replicas (`appendonly no`);
/// once only.
pub fn start_sink(engine: &Arc<Engine>) -> Result<(), String> {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if engine.journal.on() {
        return Ok(());
    }
    let (to_writer, rx) = std::sync::mpsc::channel();
    let _ = engine.journal.to_writer.set(to_writer);
    spawn(engine, Layout::from_config(engine), Manifest::default(), None, rx)
}

/// Takes the size of the files `manifest` names as both the current
/// size and the size after the last rewrite (at start, and once a
/// rewrite's base is in).
fn sizes_from_files(engine: &Engine, layout: &Layout, manifest: &Manifest) {
    let size: u64 = manifest
        .base
        .iter()
        .chain(manifest.incrs.iter())
        .filter_map(|(name, _)| std::fs::metadata(layout.dir.join(name)).ok())
        .map(|m| m.len())
        .sum();
    engine.journal.current_size.store(size, Relaxed);
    engine.journal.base_size.store(size, Relaxed);
}

fn spawn(engine: &Arc<Engine>, layout: Layout, manifest: Manifest, file: Option<File>, rx: Receiver<JournalMsg>) -> Result<(), String> {
    let w = Writer {
        engine: engine.clone(),
        layout,
        manifest,
        file,
        enabling: false,
        fed: 0,
        annotated: 0,
        unsynced: false,
        db: None,
        buf: Vec::with_capacity(1 << 16),
        txs: HashMap::new(),
        cut: None,
        last_fsync: Instant::now(),
        handled: 0,
        flushed: 0,
        waiting_since: None,
        rx,
        last_ping: Instant::now(),
        last_timeout_check: Instant::now(),
    };
    let shared = Arc::new(Mutex::new(w));
    std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || run(shared))
        .map_err(|e| format!("cannot start the journal thread: {e}"))?;
    Ok(())
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("opening {}: {e}", path.display()))
}

/// What the writer thread does after a turn of its loop.
enum Step {
    Again,
    Sleep(Duration),
    /// Until woken (`JournalStatus::wake_writer`) or the time passes.
    Park(Duration),
    Exit,
}

/// The writer thread: turns of the loop under the writer's lock (which a
/// shard thread may take to commit a group itself), waits outside it.
fn run(shared: Arc<Mutex<Writer>>) {
    let engine = lock(&shared).engine.clone();
    let _ = engine.journal.writer.set(std::thread::current());
    let committer: Arc<Mutex<dyn Commit>> = shared.clone();
    let _ = engine.journal.committer.set(committer);
    let mut idle = 0u32;
    loop {
        let step = lock(&shared).step(&mut idle);
        match step {
            Step::Again => {}
            Step::Sleep(d) => std::thread::sleep(d),
            Step::Park(d) => std::thread::park_timeout(d),
            Step::Exit => return,
        }
    }
}

fn lock(w: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Commit for Writer {
    /// Group commit by a shard thread that ran out of work (see
    /// `JournalStatus::shard_idle`): everything received is written and
    /// fsynced now, on that thread, as Redis fsyncs before its event loop
    /// sleeps — no wake-up of the writer, none back for the replies.
    fn commit(&mut self) {
        if self.file.is_none() || self.engine.cfg.appendfsync() != Fsync::Always || self.drain().is_none() {
            return;
        }
        if self.waiting() {
            self.flush(true);
        }
        self.after_commit();
    }
}

impl Writer {
    /// Writes and fsyncs what waits (group commit).
    fn commit_now(&mut self) {
        self.flush(true);
        self.after_commit();
    }

    /// A thread that went idle during the fsync did so before the clients
    /// it covered could write again: the next round waits for it to go
    /// idle after serving them (their writes then join the records already
    /// waiting, one fsync for both).
    fn after_commit(&mut self) {
        self.engine.journal.kick.store(false, SeqCst);
        self.waiting_since = None;
    }

    /// One turn of the writer's loop, under its lock; what the thread does
    /// next, outside it. Under `appendfsync always` with files it commits
    /// in groups (`commit_group`); otherwise, while writes keep coming it
    /// takes what arrived every `BATCH_PAUSE` (senders then never have to
    /// wake it: one write covers everything of that interval); once idle
    /// for a while it blocks until the next message.
    fn step(&mut self, idle: &mut u32) -> Step {
        let st = &self.engine.journal;
        st.writer_idle.store(false, Relaxed);
        let group = self.file.is_some() && self.engine.cfg.appendfsync() == Fsync::Always;
        st.group_commit.store(group, Relaxed);
        if group {
            *idle = 0;
            return self.commit_group();
        }
        let mut got = false;
        if *idle >= IDLE_POLLS {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => {
                    self.handle(m);
                    got = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.exit(),
            }
        }
        match self.drain() {
            Some(g) => got |= g,
            None => return self.exit(),
        }
        let sync = match self.engine.cfg.appendfsync() {
            Fsync::Always => true,
            Fsync::EverySec => self.last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        self.flush(sync);
        self.ping_replicas();
        let pause = if self.engine.repl.active.load(Relaxed) { BATCH_PAUSE } else { FILE_BATCH_PAUSE };
        if got {
            *idle = 0;
            // An fsync just made was the pause: what arrived during it is
            // the next batch.
            if !sync {
                return Step::Sleep(pause);
            }
        } else if *idle < IDLE_POLLS {
            *idle += 1;
            return Step::Sleep(pause);
        }
        Step::Again
    }

    fn exit(&mut self) -> Step {
        self.flush(true);
        Step::Exit
    }

    /// Handles every message waiting; whether there was any (`None`: the
    /// node is going away).
    fn drain(&mut self) -> Option<bool> {
        let mut got = false;
        loop {
            match self.rx.try_recv() {
                Ok(m) => {
                    self.handle(m);
                    got = true;
                    if self.buf.len() > 4 << 20 {
                        self.flush(false);
                    }
                }
                Err(TryRecvError::Empty) => return Some(got),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    /// One round of group commit (`appendfsync always`): clients wait for
    /// the fsync covering their writes, so one fsync should cover every
    /// write that arrived meanwhile. A shard thread that has run out of
    /// work after sending records commits them itself (`JournalStatus::
    /// shard_idle`: its clients' writes of that round are all in, as in
    /// Redis's event loop), or after a bound of jobs if it never runs out.
    /// The writer steps in when such a thread found it busy (`kick`), or
    /// once records it saw waited `GATHER_MAX`. Shards' records do not
    /// wake it (no wake-up per round); other messages do.
    fn commit_group(&mut self) -> Step {
        let engine = self.engine.clone();
        let st = &engine.journal;
        // Taken before the messages: a shard going idle after this round's
        // drain kicks the next round.
        let kicked = st.kick.swap(false, SeqCst);
        if self.drain().is_none() {
            return self.exit();
        }
        if !self.waiting() {
            self.waiting_since = None;
            st.writer_idle.store(true, SeqCst);
            // A message sent before the flag was set did not wake us.
            if self.drain().is_none() {
                return self.exit();
            }
            self.ping_replicas();
            return if self.waiting() { Step::Again } else { Step::Park(IDLE_WAIT) };
        }
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let waited = since.elapsed();
        if kicked || waited >= GATHER_MAX {
            self.commit_now();
            self.ping_replicas();
            return Step::Again;
        }
        Step::Park(GATHER_MAX - waited)
    }

    /// Whether records wait for their fsync.
    fn waiting(&self) -> bool {
        self.handled > self.flushed || self.unsynced || !self.buf.is_empty()
    }

    fn handle(&mut self, m: JournalMsg) {
        self.handled += 1;
        if let Some((cut, held)) = &mut self.cut {
            match m {
                JournalMsg::Cut { shard, feeds } => {
                    cut[shard] = true;
                    if cut.iter().all(|c| *c) {
                        let (_, held) = self.cut.take().expect("cut in progress");
                        self.cut_reached(feeds);
                        for m in held {
                            self.handle_now(m);
                        }
                    }
                }
                JournalMsg::Records(_) | JournalMsg::Applied(_) | JournalMsg::Part { .. } if past_cut(cut, &m) => held.push(m),
                // Answered once what came before it is handled.
                JournalMsg::Fed(_) | JournalMsg::ReplOnly { .. } if !held.is_empty() => held.push(m),
                m => self.handle_now(m),
            }
            return;
        }
        if let JournalMsg::Cut { shard, feeds } = m {
            let mut cut = vec![false; self.engine.nshards()];
            cut[shard] = true;
            if cut.iter().all(|c| *c) {
                self.cut_reached(feeds);
            } else {
                self.cut = Some((cut, Vec::new()));
            }
            return;
        }
        self.handle_now(m);
    }

    fn handle_now(&mut self, m: JournalMsg) {
        match m {
            JournalMsg::Applied(recs) => {
                // Written to the file only: the link fed them to the stream.
                self.feed_replicas();
                self.handle_now(JournalMsg::Records(recs));
                self.fed = self.buf.len();
                self.db = None;
            }
            JournalMsg::Records(recs) => self.put_whole(&[recs]),
            JournalMsg::Part { tx, total, shard, records, link } => {
                let e = self.txs.entry(tx).or_insert_with(|| (total, Vec::new()));
                e.1.push((shard, records));
                if e.1.len() >= e.0 {
                    let (_, mut parts) = self.txs.remove(&tx).expect("transaction parts");
                    // The first shard's part first: it holds FLUSHDB and
                    // SWAPDB, which the other shards' records follow.
                    parts.sort_by_key(|(s, _)| *s);
                    let parts: Vec<RecordList> = parts.into_iter().map(|(_, r)| r).collect();
                    if link {
                        // As `Applied`: the file's only.
                        self.feed_replicas();
                        self.put_whole(&parts);
                        self.fed = self.buf.len();
                        self.db = None;
                    } else {
                        self.put_whole(&parts);
                    }
                }
            }
            JournalMsg::Cut { .. } => {}
            JournalMsg::RewriteDone { base, ok } => self.rewrite_done(base, ok),
            JournalMsg::ReplOnly { db, bytes } => {
                // Its SELECT goes to the file too (harmless there): the
                // file and the stream share the selected database.
                if self.db != Some(db) {
                    command(&mut self.buf, &[b"SELECT", db.to_string().as_bytes()]);
                    self.db = Some(db);
                }
                self.feed_replicas();
                let repl = &self.engine.repl;
                if repl.active.load(Relaxed) && !repl.is_replica() {
                    self.propagate(&bytes);
                }
            }
            JournalMsg::SetFiles { on, done } => {
                let r = if on {
                    self.files_on()
                } else {
                    self.files_off();
                    Ok(())
                };
                let _ = done.send(r);
            }
            JournalMsg::Fed(done) => {
                self.feed_replicas();
                let _ = done.send(());
            }
            JournalMsg::Sync(done) => {
                self.flush(true);
                let _ = done.send(());
            }
        }
    }

    /// Records that must stay whole: inside MULTI/EXEC when they hold
    /// more than one command (one alone is atomic by itself, and Redis
    /// propagates a transaction with one write without MULTI/EXEC). The
    /// first command's SELECT goes before the MULTI, as Redis's does.
    fn put_whole(&mut self, groups: &[RecordList]) {
        let mut written = groups.iter().flatten().filter(|r| !r.bytes.is_empty());
        let Some(first) = written.next() else { return };
        let several = first.count > 1 || written.next().is_some();
        if !several {
            return self.put(std::slice::from_ref(first));
        }
        self.annotate();
        if self.db != Some(first.db) {
            command(&mut self.buf, &[b"SELECT", first.db.to_string().as_bytes()]);
            self.db = Some(first.db);
        }
        command(&mut self.buf, &[b"MULTI"]);
        for recs in groups {
            self.put(recs);
        }
        command(&mut self.buf, &[b"EXEC"]);
    }

    fn put(&mut self, recs: &[Records]) {
        for r in recs {
            if r.bytes.is_empty() {
                continue;
            }
            self.annotate();
            if self.db != Some(r.db) {
                command(&mut self.buf, &[b"SELECT", r.db.to_string().as_bytes()]);
                self.db = Some(r.db);
            }
            self.buf.extend_from_slice(&r.bytes);
        }
    }

    /// `aof-timestamp-enabled`: before the first write of a second, a
    /// `#TS:<unix seconds>` line in the file (Redis's annotation). The
    /// replicas' stream has no such line: what they have not had yet goes
    /// to them first, and the line is counted as had.
    fn annotate(&mut self) {
        if (self.file.is_none() && !self.enabling) || !self.engine.cfg.aof.timestamps.load(Relaxed) {
            return;
        }
        let now = crate::util::now_ms() / 1000;
        if now == self.annotated {
            return;
        }
        self.annotated = now;
        self.feed_replicas();
        self.buf.extend_from_slice(b"#TS:");
        self.buf.extend_from_slice(itoa::Buffer::new().format(now).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.fed = self.buf.len();
    }

    /// Every shard passed a snapshot's point in time: a rewrite moves on to
    /// a new file, a replica's feed starts here.
    fn cut_reached(&mut self, feeds: Option<crate::shard::journal::Feeds>) {
        let Some(feeds) = feeds else { return self.rotate() };
        self.flush(false);
        // The feeds' stream starts with a SELECT.
        self.db = None;
        for feed in feeds.iter() {
            feed.attach(self.engine.repl.offset.load(Relaxed));
        }
    }

    /// Every `repl-ping-replica-period` seconds the replicas' stream carries a PING (in the
    /// offset, as Redis sends it), so that a replica sees the link alive
    /// while nothing is written. Not in the files: it changes nothing.
    fn ping_replicas(&mut self) {
        let repl = &self.engine.repl;
        repl.expire_backlog(self.engine.cfg.repl.backlog_ttl.load(Relaxed));
        // `repl-timeout`, looked at once a second as Redis's replication
        // cron does: an online replica that acknowledged nothing for that
        // long is dropped (it resyncs when it comes back).
        if self.last_timeout_check.elapsed() >= Duration::from_secs(1) {
            self.last_timeout_check = Instant::now();
            let timeout_ms = self.engine.cfg.repl.timeout.load(Relaxed).saturating_mul(1000);
            let now = crate::util::now_ms();
            for f in repl.feeds() {
                if f.ack_overdue(now, timeout_ms) {
                    warn!(replica = f.client, "Disconnecting timedout replica (no acknowledgement for repl-timeout)");
                    f.drop_now("timeout: no acknowledgement for repl-timeout");
                }
            }
        }
        // A replica's sub-replicas get its primary's PINGs (the link's stream).
        let period = Duration::from_secs(self.engine.cfg.repl.ping_period.load(Relaxed));
        if !repl.active.load(Relaxed) || repl.is_replica() || self.last_ping.elapsed() < period {
            return;
        }
        self.last_ping = Instant::now();
        let mut ping = Vec::new();
        command(&mut ping, &[b"PING"]);
        self.propagate(&ping);
    }

    fn propagate(&self, bytes: &[u8]) {
        let cfg = &self.engine.cfg;
        self.engine.repl.propagate(bytes, cfg.repl.backlog_size.load(Relaxed), cfg.output_limits[1].hard.load(Relaxed));
    }

    /// Gives the replicas what `buf` holds that they have not had, and
    /// counts it in the replication offset. On a replica the stream is the
    /// link's: what its journal writes is not replicated.
    fn feed_replicas(&mut self) {
        if self.fed >= self.buf.len() {
            return;
        }
        let fresh = self.fed..self.buf.len();
        self.fed = self.buf.len();
        let repl = &self.engine.repl;
        if !repl.active.load(Relaxed) || repl.is_replica() {
            return;
        }
        self.propagate(&self.buf[fresh]);
    }

    /// Empties the batch buffer, giving back what a burst grew it to.
    fn clear_buf(buf: &mut Vec<u8>) {
        buf.clear();
        if buf.capacity() > 1 << 20 {
            buf.shrink_to(1 << 16);
        }
    }

    /// Writes what is buffered, and fsyncs when asked; then tells waiting
    /// clients what is durable.
    fn flush(&mut self, sync: bool) {
        self.flushed = self.handled;
        self.feed_replicas();
        let Some(file) = &mut self.file else {
            Self::clear_buf(&mut self.buf);
            self.fed = 0;
            let st = &self.engine.journal;
            st.durable.store(self.handled, Relaxed);
            st.durable_changed.notify_waiters();
            return;
        };
        let st = &self.engine.journal;
        // The latency monitor's journal events, as Redis names them (no
        // fsync or rewrite runs beside a write here: `aof-write-alone`).
        let (cfg, lat) = (&self.engine.cfg, &self.engine.latency);
        if !self.buf.is_empty() {
            let start = Instant::now();
            match file.write_all(&self.buf) {
                Ok(()) => {
                    st.current_size.fetch_add(self.buf.len() as u64, Relaxed);
                    Self::clear_buf(&mut self.buf);
                    self.fed = 0;
                    self.unsynced = true;
                }
                Err(e) => return self.failed(format!("writing the journal: {e}")),
            }
            let ms = start.elapsed().as_millis() as u64;
            lat.add_if_needed(cfg, "aof-write-alone", ms);
            lat.add_if_needed(cfg, "aof-write", ms);
        }
        // `no-appendfsync-on-rewrite yes`: no fsync while a snapshot or
        // rewrite writes its file (Redis's trade: less disk contention,
        // more lost on a crash meanwhile); writes count as durable.
        let held = sync
            && self.unsynced
            && cfg.aof.no_fsync_on_rewrite.load(Relaxed)
            && (st.rewriting.load(Relaxed) || self.engine.saves.in_progress.load(Relaxed));
        if sync && self.unsynced && !held {
            let start = Instant::now();
            if let Err(e) = file.sync_data() {
                return self.failed(format!("fsync of the journal: {e}"));
            }
            if cfg.appendfsync() == Fsync::Always {
                lat.add_if_needed(cfg, "aof-fsync-always", start.elapsed().as_millis() as u64);
            }
            self.unsynced = false;
            self.last_fsync = Instant::now();
        }
        if st.write_failed.swap(false, Relaxed) {
            warn!("the journal is written again");
        }
        // Under `always` a message counts once fsynced; otherwise once
        // handed to the kernel.
        if !self.unsynced || held || self.engine.cfg.appendfsync() != Fsync::Always {
            st.durable.store(self.handled, Relaxed);
            st.durable_changed.notify_waiters();
        }
    }

    fn failed(&mut self, e: String) {
        let st = &self.engine.journal;
        if self.engine.cfg.appendfsync() == Fsync::Always {
            // Clients were promised their writes are on disk: as Redis
            // does, stop rather than acknowledge writes that are not.
            error!("{e}: cannot recover from a journal write error with appendfsync always; exiting");
            eprintln!("damselfly: {e}: cannot recover from a journal write error with appendfsync always");
            std::process::exit(1);
        }
        if !st.write_failed.swap(true, Relaxed) {
            error!("{e}");
        }
        *st.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// Moves on to a new increment file (a rewrite's point in time).
    /// While the files are being turned on, this is where they start: the
    /// new file is named in the manifest only with the rewrite's base.
    fn rotate(&mut self) {
        self.flush(true);
        if self.file.is_none() && !self.enabling {
            return;
        }
        let seq = self.manifest.next_incr_seq();
        let name = self.layout.incr_name(seq);
        // A file of that name is a leftover no manifest names: replaced.
        let created = OpenOptions::new().create(true).write(true).truncate(true).open(self.layout.dir.join(&name));
        match created {
            Ok(f) => {
                self.file = Some(f);
                self.db = None;
                // A new file starts with its own annotation.
                self.annotated = 0;
                self.manifest.incrs.push((name, seq));
                if self.enabling {
                    return;
                }
                if let Err(e) = self.layout.write_manifest(&self.manifest) {
                    self.failed(e);
                }
            }
            Err(e) => self.failed(format!("creating {name}: {e}")),
        }
    }

    /// `appendonly yes` at run time: the files in `dir` as they are now
    /// (an earlier manifest's base and increments are replaced by the
    /// rewrite the caller asks for next).
    fn files_on(&mut self) -> Result<(), String> {
        let st = &self.engine.journal;
        if self.file.is_some() || self.enabling {
            return Ok(());
        }
        let layout = Layout::from_config(&self.engine);
        std::fs::create_dir_all(&layout.dir).map_err(|e| format!("creating {}: {e}", layout.dir.display()))?;
        self.manifest = layout.read_manifest()?.unwrap_or_default();
        self.layout = layout;
        self.enabling = true;
        st.base_seq.store(self.manifest.base.as_ref().map_or(0, |b| b.1), Relaxed);
        // Counted from the rewrite that starts the files.
        st.current_size.store(0, Relaxed);
        st.base_size.store(0, Relaxed);
        st.enabling.store(true, Relaxed);
        st.file.store(true, Relaxed);
        Ok(())
    }

    /// `appendonly no` at run time: what was received is written and
    /// fsynced, and the files are closed (a rewrite still running is
    /// dropped when it ends; files being turned on are deleted).
    fn files_off(&mut self) {
        let engine = self.engine.clone();
        let st = &engine.journal;
        self.flush(true);
        if self.enabling {
            self.drop_pending_incr();
        }
        self.file = None;
        self.enabling = false;
        self.db = None;
        st.enabling.store(false, Relaxed);
        st.file.store(false, Relaxed);
        st.write_failed.store(false, Relaxed);
    }

    /// Files being turned on: the increment file started at the rewrite's
    /// point in time, if it was, goes (the next attempt starts another).
    fn drop_pending_incr(&mut self) {
        if self.file.take().is_some() {
            if let Some((name, _)) = self.manifest.incrs.pop() {
                let _ = std::fs::remove_file(self.layout.dir.join(name));
            }
        }
    }

    /// A rewrite ended: on success its base replaces the old base and every
    /// increment before the cut, which are deleted.
    fn rewrite_done(&mut self, base: String, ok: bool) {
        let st = &self.engine.journal;
        st.rewriting.store(false, Relaxed);
        if !ok {
            st.last_rewrite_failed.store(true, Relaxed);
            if self.enabling {
                self.drop_pending_incr();
            }
            return;
        }
        if self.file.is_none() {
            // The files were turned off meanwhile, or are being turned on
            // by a later rewrite: this one's base describes neither.
            let _ = std::fs::remove_file(self.layout.dir.join(&base));
            return;
        }
        let Some(seq) = base.split('.').rev().nth(2).and_then(|s| s.parse::<u64>().ok()) else { return };
        let newest = self.manifest.incrs.last().cloned();
        let mut next = Manifest { base: Some((base, seq)), incrs: newest.into_iter().collect() };
        std::mem::swap(&mut next, &mut self.manifest);
        if let Err(e) = self.layout.write_manifest(&self.manifest) {
            self.manifest = next;
            st.last_rewrite_failed.store(true, Relaxed);
            return error!("{e}");
        }
        st.base_seq.store(seq, Relaxed);
        sizes_from_files(&self.engine, &self.layout, &self.manifest);
        if std::mem::take(&mut self.enabling) {
            st.enabling.store(false, Relaxed);
            tracing::info!("the append-only journal is on: its first base file is written");
        }
        st.last_rewrite_failed.store(false, Relaxed);
        st.rewrites.fetch_add(1, Relaxed);
        // The old files are history now.
        for (f, _) in next.base.iter().chain(next.incrs.iter()) {
            if !self.manifest.text().contains(&format!("file {f} ")) {
                let _ = std::fs::remove_file(self.layout.dir.join(f));
            }
        }
    }
}

/// Waits until the replicas have been given every write made so far
/// (their feeds hold it), when the writer runs.
pub async fn feed_replicas_now(engine: &Engine) {
    if engine.journal.to_writer.get().is_none() {
        return;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.journal.send(JournalMsg::Fed(tx));
    let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
}

/// Writes and fsyncs what the journal has received (at shutdown), waiting
/// a bounded time.
pub fn sync_on_exit(engine: &Engine) {
    if !engine.journal.on() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    engine.journal.send(JournalMsg::Sync(tx));
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        warn!("the journal was not synced before exiting");
    }
}

/// Whether a message comes from a shard already past the cut.
fn past_cut(cut: &[bool], m: &JournalMsg) -> bool {
    match m {
        JournalMsg::Part { shard, .. } => cut[*shard],
        // Records outside transactions do not say their shard: hold them
        // all (the ones from shards before the cut are independent of the
        // base, which includes what they describe or replays them after).
        _ => true,
    }
}
