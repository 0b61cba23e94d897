//! A shard's side of the append-only journal: after each job it records
//! the new state of every key the job wrote, as Redis commands, and hands
//! them to the journal writer (`persist::aof`).
//!
//! What is journaled is each written key's resulting state — `SET key
//! value [PXAT expiry]` for a string, `RESTORE key <expiry> <payload>
//! REPLACE ABSTTL` for other types, or `DEL key` when it is gone — not the
//! command that wrote it. So every command (scripts,
//! non-deterministic ones like SPOP, relative TTLs, multi-shard handlers)
//! replays to the same state without knowing its semantics, and a pipeline
//! of writes to one key in one job is journaled once.
//!
//! A transaction's records (MULTI/EXEC, a multi-key command, a script
//! over several shards) stay with the shard until the transaction lets it
//! go, then travel as one `Part` tagged with the transaction and the number
//! of shards it held; the writer writes a transaction only once all of its
//! parts are in, inside MULTI/EXEC, so a crash never leaves half of one.

use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use super::{Shard, TxId, NO_TX};
use crate::store::{dump, Db, Value};

/// Commands a write is journaled as (`Shard::journal_as`), each a list of
/// arguments.
pub type JournalForm = Vec<Vec<Vec<u8>>>;

/// Commands for one database.
pub struct Records {
    pub db: u32,
    /// RESP commands.
    pub bytes: Vec<u8>,
    /// How many.
    pub count: usize,
}

/// A job's records, one `Records` per database it wrote in order: inline
/// for the usual single database, so sending a job's records to the
/// writer allocates only their bytes.
pub type RecordList = smallvec::SmallVec<[Records; 1]>;

/// The replicas one snapshot serves.
pub type Feeds = std::sync::Arc<[std::sync::Arc<super::repl::Feed>]>;

/// What a shard sends the journal writer.
pub enum JournalMsg {
    /// Records of one job outside any transaction (a script on one shard,
    /// a pipeline's batch): written inside MULTI/EXEC when there are
    /// several, so a crash keeps all or none of them.
    Records(RecordList),
    /// Records of a job the replication link applied (this node is a
    /// replica): journaled, but not replicated again (the link feeds the
    /// primary's stream itself to this node's replicas).
    Applied(RecordList),
    /// One shard's part of transaction `tx`, which held `total` shards
    /// (`link`: the replication link's, written as `Applied`).
    Part { tx: TxId, total: usize, shard: usize, records: RecordList, link: bool },
    /// The shard has reached a snapshot's point in time: what follows goes
    /// to the new file (a rewrite) or to the replicas `feeds` (one
    /// snapshot may serve several).
    Cut { shard: usize, feeds: Option<Feeds> },
    /// A rewrite's base file is written (`ok`) or abandoned.
    RewriteDone { base: String, ok: bool },
    /// Write and fsync everything received so far, then answer (shutdown).
    Sync(std::sync::mpsc::Sender<()>),
    /// A command for the replicas only, in database `db` (PUBLISH: it
    /// changes no data, so the files do not get it; Redis's
    /// PROPAGATE_REPL).
    ReplOnly { db: u32, bytes: Vec<u8> },
    /// Turn the files on (`appendonly yes` at run time: the writer starts
    /// writing them at the next rewrite's point in time, and they count
    /// once that rewrite's base is written) or off (everything received
    /// is written and fsynced first); then answer.
    SetFiles { on: bool, done: tokio::sync::oneshot::Sender<Result<(), String>> },
    /// Give the replicas everything received so far, then answer (the
    /// node is about to follow another and drop them: what they were owed
    /// before goes out first).
    Fed(tokio::sync::oneshot::Sender<()>),
}

/// The journal as the node sees it.
#[derive(Default)]
pub struct JournalStatus {
    /// The journal has files (`appendonly yes`); without, the writer
    /// only feeds replicas.
    pub file: AtomicBool,
    /// The files were turned on at run time and the rewrite that makes
    /// their first base has not finished yet (Redis's `AOF_WAIT_REWRITE`):
    /// the saver retries it after a failure.
    pub enabling: AtomicBool,
    /// Where shards send their records (set when the journal is on).
    pub to_writer: OnceLock<std::sync::mpsc::Sender<JournalMsg>>,
    /// Messages sent to the writer, and those it has made durable (per
    /// `appendfsync`): a client waits for the second to reach the first.
    pub sent: AtomicU64,
    pub durable: AtomicU64,
    pub durable_changed: Notify,
    /// The last write or fsync of the journal failed (INFO
    /// `aof_last_write_status`); writes are refused meanwhile.
    pub write_failed: AtomicBool,
    pub last_error: Mutex<String>,
    /// A rewrite (BGREWRITEAOF) is running.
    pub rewriting: AtomicBool,
    pub rewrites: AtomicU64,
    pub last_rewrite_failed: AtomicBool,
    /// Bytes in the files the manifest names (INFO `aof_current_size`),
    /// and that figure after the last rewrite or load (`aof_base_size`):
    /// `auto-aof-rewrite-percentage` compares the two.
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    /// The manifest's base file sequence number (the next rewrite's base
    /// takes the one after).
    pub base_seq: AtomicU64,
    /// Group commit under `appendfsync always` (see `persist::aof`): the
    /// writer thread, records sent since a shard thread last went idle,
    /// a shard thread went idle after sending some (the writer fsyncs
    /// then), and the writer waits with nothing to write (a sender wakes
    /// it).
    pub writer: OnceLock<std::thread::Thread>,
    unflushed: AtomicBool,
    pub kick: AtomicBool,
    pub writer_idle: AtomicBool,
    /// The writer commits in groups (`appendfsync always` with files), and
    /// the writer itself, which a shard thread going idle may take to
    /// commit on its own thread.
    pub group_commit: AtomicBool,
    pub committer: OnceLock<Arc<Mutex<dyn Commit>>>,
}

/// The journal writer as a shard thread may drive it: write and fsync
/// everything received (group commit, `persist::aof`).
pub trait Commit: Send {
    fn commit(&mut self);
}

impl JournalStatus {
    /// Whether shards journal their writes (for the files or replicas).
    pub fn on(&self) -> bool {
        self.to_writer.get().is_some()
    }

    /// Whether the append-only files are written.
    pub fn aof_on(&self) -> bool {
        self.file.load(Relaxed)
    }

    /// Sends a message to the writer (the saver's rewrite notices, a
    /// shutdown's final sync), waking it if it waits.
    pub fn send(&self, msg: JournalMsg) {
        if self.send_quietly(msg) {
            // The writer, about to wait, sets `writer_idle` and then looks
            // at the channel: one of the two sees the other.
            if self.writer_idle.load(SeqCst) {
                self.wake_writer();
            }
        }
    }

    /// Sends a shard's records to the writer. Under group commit the
    /// writer is not woken: the sending shard thread commits them itself
    /// when it runs out of work, or after `COMMIT_AFTER_JOBS` more jobs if
    /// it never does (`shard_busy`) — so a round of writes costs no thread
    /// wake-up at all, as in Redis's event loop. Whether the writer should
    /// be told (group commit is on).
    fn send_quietly(&self, msg: JournalMsg) -> bool {
        let Some(to) = self.to_writer.get() else { return false };
        if to.send(msg).is_err() {
            return false;
        }
        self.sent.fetch_add(1, Relaxed);
        if !self.group_commit.load(Relaxed) {
            return false;
        }
        self.unflushed.store(true, SeqCst);
        true
    }

    /// Whether records sent under group commit wait for a shard thread to
    /// commit them.
    pub fn uncommitted(&self) -> bool {
        self.group_commit.load(Relaxed) && self.unflushed.load(Relaxed)
    }

    /// A shard thread has run out of work (its runtime parked with
    /// records `uncommitted`, and the thread's commit task runs one event-loop
    /// turn later, `server::shard_thread`): if records went to the writer
    /// since a thread last did, the writer may write and fsync them now —
    /// every write that arrived while the thread ran is in, as Redis
    /// fsyncs once per event-loop iteration, before it sleeps.
    ///
    /// Under group commit the thread does it itself when the writer is
    /// free (Redis's way: no thread hop before the fsync, no wake-up for
    /// the replies); when the writer is busy it is told to.
    pub fn shard_idle(&self) {
        if !self.group_commit.load(Relaxed) || !self.unflushed.load(Relaxed) || !self.unflushed.swap(false, Relaxed) {
            return;
        }
        if let Some(Ok(mut w)) = self.committer.get().map(|c| c.try_lock()) {
            return w.commit();
        }
        self.kick.store(true, SeqCst);
        self.wake_writer();
    }

    fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}

/// Group commit: the most jobs a shard thread that never runs out of work
/// runs while records wait, before it commits them itself.
const COMMIT_AFTER_JOBS: u32 = 1024;

/// The most a job's record buffer starts with (`ShardJournal::last_size`).
const MAX_START_SIZE: usize = 64 * 1024;

/// A shard's pending journal work.
#[derive(Default)]
pub struct ShardJournal {
    /// Jobs run since records waiting for their commit were sent (group
    /// commit, `COMMIT_AFTER_JOBS`).
    busy_jobs: u32,
    /// Records of the transaction holding the shard, sent when it lets go.
    tx_part: RecordList,
    /// Nothing is journaled (DEBUG LOADAOF replays the journal into the
    /// shard: `journal_mute`).
    muted: bool,
    /// Commands journaled as sent during the current job, in order (they
    /// go before the job's key states).
    commands: RecordList,
    /// The current job is the replication link's (`JournalMsg::Applied`).
    link: bool,
    /// How many bytes of commands the last job journaled as sent, capped
    /// (the next job's buffer starts that large).
    last_size: usize,
    /// While a script runs on its single-shard fast path: the commands
    /// journaled before it (records, and the last one's bytes and count),
    /// to take back if it is rolled back and run again elsewhere.
    script_mark: Option<(usize, usize, usize)>,
}

/// The most bytes `command` appends for `args`: `*<n>\r\n`, and
/// `$<len>\r\n<arg>\r\n` per argument, with lengths of up to 20 digits
/// (one reservation, no allocation per number).
fn command_room(args: &[&[u8]]) -> usize {
    24 + args.iter().map(|a| a.len() + 26).sum::<usize>()
}

/// Appends one RESP command.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut n = itoa::Buffer::new();
    out.reserve(command_room(args));
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the command that sets a key's whole state: a string's is a SET
/// (with its expiry: no encoding, no checksum), any other value travels as
/// a RESTORE payload.
pub fn state_command(out: &mut Vec<u8>, key: &[u8], value: &Value, at: Option<u64>) {
    let mut when = itoa::Buffer::new();
    let ttl = at.map(|t| when.format(t));
    let mut int = itoa::Buffer::new();
    let text: Option<&[u8]> = match value {
        Value::Str(s) => Some(s),
        Value::Int(n) => Some(int.format(*n).as_bytes()),
        _ => None,
    };
    match (text, &ttl) {
        (Some(v), None) => command(out, &[b"SET", key, v]),
        (Some(v), Some(t)) => command(out, &[b"SET", key, v, b"PXAT", t.as_bytes()]),
        (None, _) => {
            let payload = dump::encode_plain(value);
            let t = ttl.unwrap_or("0");
            command(out, &[b"RESTORE", key, t.as_bytes(), &payload, b"REPLACE", b"ABSTTL"]);
        }
    }
}

impl Shard {
    /// Turns journaling on for every database of this shard (existing and
    /// future ones).
    pub fn journal_start(&mut self) {
        self.journal = Some(ShardJournal::default());
        for d in self.dbs.iter_mut().flatten() {
            d.journal_on(true);
        }
    }

    /// Turns journaling off (`appendonly no` with no replica to feed),
    /// unless a transaction's records still wait here to be sent.
    pub fn journal_stop(&mut self) {
        if self.journal.as_ref().is_some_and(|j| j.tx_part.is_empty() && j.commands.is_empty()) {
            self.journal = None;
            for d in self.dbs.iter_mut().flatten() {
                d.journal_on(false);
            }
        }
    }

    /// Mutes journaling (`on`) or turns it back: while DEBUG LOADAOF
    /// empties the shard and replays the journal into it, nothing it does
    /// is journaled again.
    pub fn journal_mute(&mut self, on: bool) {
        if let Some(j) = &mut self.journal {
            j.muted = on;
        }
    }

    /// The current job applies the replication stream.
    pub fn journal_link_job(&mut self) {
        if let Some(j) = &mut self.journal {
            j.link = true;
        }
    }

    pub fn journaling(&self) -> bool {
        self.journal.is_some()
    }

    /// Before a command the journal may record as sent runs on database
    /// `db`: a mark of what is noted so far.
    pub fn journal_mark(&mut self, db: usize) -> Option<usize> {
        self.journal.as_ref()?;
        self.db(db).journal_mark()
    }

    /// After it ran: if it wrote, it is journaled as sent and the keys it
    /// wrote are not journaled as states.
    ///
    /// Keys the job found expired are deleted first, as Redis propagates
    /// the DEL of a key expired on lookup before the command: the replay
    /// expires nothing, and the command would land on the old value.
    pub fn journal_args(&mut self, db: usize, mark: usize, args: &[bytes::Bytes]) {
        if self.journal_written_since(db, mark) {
            let parts: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            self.journal_command(db, &parts);
        }
    }

    /// `journal_args` with the command the handler chose to journal
    /// (`parts`), for a command journaled as sent in some forms only.
    pub fn journal_parts(&mut self, db: usize, mark: usize, parts: &[&[u8]]) {
        if self.journal_written_since(db, mark) {
            self.journal_command(db, parts);
        }
    }

    /// Whether keys were written since `mark`: if so their states are
    /// forgotten (the caller journals a command instead) and keys found
    /// expired meanwhile are journaled as deleted first.
    fn journal_written_since(&mut self, db: usize, mark: usize) -> bool {
        if !self.db(db).journal_forget_since(mark) {
            return false;
        }
        for key in self.db(db).journal_take_expired() {
            self.journal_command(db, &[b"DEL", &key]);
        }
        true
    }

    /// After a command that changes only `key`'s expiry (or deletes it)
    /// ran: if it wrote, its effect is journaled as Redis propagates it —
    /// `DEL` when the key is gone, else `PEXPIREAT` with the expiry it has
    /// or `PERSIST` — instead of the key's state.
    pub fn journal_ttl(&mut self, db: usize, mark: usize, key: &[u8]) {
        let d = self.db(db);
        if !d.journal_forget_since(mark) {
            return;
        }
        d.journal_clear_expired();
        let at = match d.entry_as_is(key) {
            None => return self.journal_command(db, &[b"DEL", key]),
            Some((_, at)) => at,
        };
        match at {
            Some(at) => self.journal_command(db, &[b"PEXPIREAT", key, itoa::Buffer::new().format(at).as_bytes()]),
            None => self.journal_command(db, &[b"PERSIST", key]),
        }
    }

    /// Runs `f`, a write to keys of database `db`, and journals it as the
    /// commands `form` makes of its result (Redis's propagation of a BLPOP
    /// as LPOP, an SPOP as SREM) instead of the keys' states — which for a
    /// pop from a big list or sorted set would be all that is left. When
    /// `form` gives none, or nothing was written, the states are journaled
    /// as usual.
    pub fn journal_as<R>(&mut self, db: usize, f: impl FnOnce(&mut Db) -> R, form: impl FnOnce(&R) -> Option<JournalForm>) -> R {
        let Some(mark) = self.journal_mark(db) else { return f(self.db(db)) };
        let r = f(self.db(db));
        let Some(cmds) = form(&r) else { return r };
        if self.journal_written_since(db, mark) {
            for cmd in cmds {
                let parts: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
                self.journal_command(db, &parts);
            }
        }
        r
    }

    /// A script starts writing on its fast path (see `script_mark`).
    pub fn journal_script_begin(&mut self) {
        if let Some(j) = &mut self.journal {
            let last = j.commands.last().map_or((0, 0), |r| (r.bytes.len(), r.count));
            j.script_mark = Some((j.commands.len(), last.0, last.1));
        }
    }

    /// The fast-path script ended: its commands stay, or (`rollback`) go.
    pub fn journal_script_end(&mut self, rollback: bool) {
        let Some(j) = &mut self.journal else { return };
        let Some((n, bytes, count)) = j.script_mark.take() else { return };
        if !rollback {
            return;
        }
        j.commands.truncate(n);
        if let Some(r) = j.commands.last_mut() {
            r.bytes.truncate(bytes);
            r.count = count;
        }
    }

    /// Appends one command journaled as sent to the job's.
    fn journal_command(&mut self, db: usize, parts: &[&[u8]]) {
        let Some(j) = &mut self.journal else { return };
        match j.commands.last_mut() {
            Some(r) if r.db == db as u32 => {
                command(&mut r.bytes, parts);
                r.count += 1;
            }
            _ => {
                // Sized as the last job's records were, so that a
                // pipeline's batch does not grow the buffer a copy at a
                // time, and at least as `command` reserves, so that the
                // first command does not grow it either.
                let mut bytes = Vec::with_capacity(j.last_size.max(command_room(parts)));
                command(&mut bytes, parts);
                j.commands.push(Records { db: db as u32, bytes, count: 1 });
            }
        }
    }

    /// The records of the job so far: commands as sent, then the states of
    /// the keys written otherwise.
    fn journal_collect(&mut self) -> RecordList {
        let mut out = match &mut self.journal {
            Some(j) => {
                let commands = std::mem::take(&mut j.commands);
                if let Some(r) = commands.last() {
                    j.last_size = r.bytes.len().min(MAX_START_SIZE);
                }
                commands
            }
            None => RecordList::new(),
        };
        for (i, d) in self.dbs.iter_mut().enumerate() {
            let Some(d) = d else { continue };
            // Their deletion is among the written keys' states.
            d.journal_clear_expired();
            let keys = d.journal_take();
            if keys.is_empty() {
                continue;
            }
            let mut bytes = Vec::new();
            let count = keys.len();
            for k in &keys {
                let Some((e, at)) = d.entry_as_is(k) else {
                    command(&mut bytes, &[b"DEL", k]);
                    continue;
                };
                state_command(&mut bytes, k, &e.value, at);
            }
            d.journal_give_back(keys);
            out.push(Records { db: i as u32, bytes, count });
        }
        out
    }

    /// After a job run as `tx`: journals what it wrote — kept for the
    /// transaction's part while `tx` holds the shard, sent at once
    /// otherwise (with the journal on, a transaction locks every shard it
    /// writes: see `Tx::run_unlocked`).
    pub fn journal_after_job(&mut self, tx: TxId) {
        let Some(j) = &mut self.journal else { return };
        // A job of the replication link on a node that writes no journal
        // file: its records would only be written to the file (this node's
        // replicas get the link's stream as it came), so none are made.
        if j.muted || (j.link && tx == NO_TX && !self.cfg.appendonly.load(Relaxed)) {
            j.link = false;
            j.commands.clear();
            for d in self.dbs.iter_mut().flatten() {
                d.journal_forget();
            }
            return;
        }
        let records = self.journal_collect();
        if tx != NO_TX && self.lock == tx {
            if let Some(j) = &mut self.journal {
                j.tx_part.extend(records);
            }
        } else {
            if !records.is_empty() {
                self.journal_send(JournalMsg::Records(records));
            }
            if let Some(j) = &mut self.journal {
                j.link = false;
            }
        }
        self.journal_commit_if_busy();
    }

    /// Group commit on a thread that keeps working: records waiting for
    /// their fsync are committed after `COMMIT_AFTER_JOBS` jobs even though
    /// the thread has not run out of work.
    fn journal_commit_if_busy(&mut self) {
        let (Some(j), Some(engine)) = (&mut self.journal, &self.engine) else { return };
        if !engine.journal.uncommitted() {
            j.busy_jobs = 0;
            return;
        }
        j.busy_jobs += 1;
        if j.busy_jobs >= COMMIT_AFTER_JOBS {
            j.busy_jobs = 0;
            engine.journal.shard_idle();
        }
    }

    /// A transaction that held `total` shards lets this one go: its part
    /// goes to the writer (empty or not: the writer counts the parts).
    pub fn journal_release(&mut self, tx: TxId, total: usize) {
        if self.journal.is_none() || tx == NO_TX {
            return;
        }
        let (mut records, link) = match self.journal.as_mut() {
            Some(j) => (std::mem::take(&mut j.tx_part), std::mem::replace(&mut j.link, false)),
            None => return,
        };
        records.extend(self.journal_collect());
        let shard = self.id;
        self.journal_send(JournalMsg::Part { tx, total, shard, records, link });
    }

    /// A journal command about a whole database (FLUSHDB, SWAPDB) or the
    /// node (FUNCTION LOAD), recorded by the first shard only so that it
    /// replays once; records of the database's keys written before it are
    /// dropped (`drop_db`) or written first.
    pub fn journal_db_command(&mut self, db: usize, args: &[&[u8]]) {
        if self.journal.as_ref().is_none_or(|j| j.muted) || self.id != 0 {
            return;
        }
        let mut records = self.journal_collect();
        let mut bytes = Vec::new();
        command(&mut bytes, args);
        records.push(Records { db: db as u32, bytes, count: 1 });
        let tx = self.lock;
        match &mut self.journal {
            Some(j) if tx != NO_TX => j.tx_part.extend(records),
            _ => self.journal_send(JournalMsg::Records(records)),
        }
    }

    fn journal_send(&self, msg: JournalMsg) {
        let msg = match msg {
            JournalMsg::Records(r) if self.journal.as_ref().is_some_and(|j| j.link) => JournalMsg::Applied(r),
            m => m,
        };
        if let Some(engine) = &self.engine {
            engine.journal.send_quietly(msg);
        }
    }

    /// Marks a snapshot's point in time in this shard's stream: a
    /// rewrite's, or (`feeds`) replicas', for which journaling starts
    /// now if it is off.
    pub fn journal_cut(&mut self, feeds: Option<Feeds>) {
        if feeds.is_some() && self.journal.is_none() {
            self.journal_start();
        }
        if self.journal.is_none() {
            return;
        }
        let records = self.journal_collect();
        if !records.is_empty() {
            self.journal_send(JournalMsg::Records(records));
        }
        let shard = self.id;
        self.journal_send(JournalMsg::Cut { shard, feeds });
    }
}
