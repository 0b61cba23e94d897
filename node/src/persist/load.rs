//! Loads a snapshot file into the shards.
//!
//! Runs on a thread of its own: it reads and decodes the file and sends
//! each shard batches of its keys as jobs, a few batches ahead at most, so
//! the memory in flight stays small whatever the file's size. Keys whose
//! TTL has passed are skipped, as Redis skips them on a primary.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use crate::shard::{Engine, TxId};
use crate::store::rdb::{self, Item};
use crate::store::{SmallBytes, Value};

/// Keys per batch sent to a shard.
const BATCH: usize = 256;
/// Bytes of strings past which a batch is sent with fewer keys.
const BATCH_BYTES: usize = 1 << 20;
/// Batches on their way to the shards at most, per shard.
const IN_FLIGHT: usize = 4;

/// What a load found.
#[derive(Default, Debug)]
pub struct Loaded {
    pub keys: u64,
    pub expired: u64,
    /// Function library codes, to be loaded by the caller.
    pub functions: Vec<Vec<u8>>,
    pub seconds: f64,
}

/// A shard's answer to a batch.
type Ack = Result<(), String>;

/// What a batch applies, in order: a key's new state (its value and
/// expiry, or gone), or a journaled command run again.
pub enum Put {
    State(usize, SmallBytes, Option<(Value, u64)>),
    /// A string key's state (`SET key value [PXAT at]` of a journal or a
    /// primary's stream): its key and value are in the batch's `bytes`.
    Str {
        db: usize,
        key: Range<usize>,
        value: Range<usize>,
        at: u64,
    },
    Command(usize, Vec<bytes::Bytes>),
    /// Any write command a primary sent (`REPLICA_COMMAND`).
    Replicated(usize, Vec<bytes::Bytes>),
}

/// What one job gives a shard: the writes, and the bytes of the strings
/// among them in one buffer. The shard makes each string value itself: a
/// value is then freed by the thread that allocated it when it is replaced
/// (allocators free across threads much more slowly), and the sender
/// allocates one buffer per batch instead of one per value.
#[derive(Default)]
pub struct Batch {
    puts: Vec<Put>,
    bytes: Vec<u8>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch { puts: Vec::with_capacity(n), bytes: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }

    fn push_bytes(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }
}

/// Runs a journaled command again on a shard (set by the command layer,
/// which has the commands): database, arguments; an error reply is `Err`.
pub static REPLAY_COMMAND: std::sync::OnceLock<ReplayFn> = std::sync::OnceLock::new();

/// Runs a write command a primary sent on the shard of its keys (set by
/// the command layer): database, arguments.
pub static REPLICA_COMMAND: std::sync::OnceLock<ReplayFn> = std::sync::OnceLock::new();

/// Where a journaled or replicated command runs (set by the command
/// layer): a split command (MSET, DEL, ...) whose keys this node spreads
/// over several shards as one part per shard, a command for one shard
/// whole on the shard of its first key as its declaration places it
/// (XGROUP's key is its third argument), and one that coordinates shards
/// (RENAME, SUNIONSTORE, FUNCTION LOAD, ...) across all of them
/// (`WIDE_COMMAND`).
pub static PARTS: std::sync::OnceLock<PartsFn> = std::sync::OnceLock::new();

pub type PartsFn = fn(&Engine, Vec<bytes::Bytes>) -> Route;

/// What `PARTS` decides.
pub enum Route {
    /// Run on these shards, each its part, in order with the batches.
    Parts(Vec<(usize, Vec<bytes::Bytes>)>),
    /// Run holding every shard, once everything before it is applied.
    Wide(Vec<bytes::Bytes>),
}

/// Runs a command that coordinates shards, from the loader's or the
/// link's thread (set by the command layer): the transaction already
/// holding every shard (`NO_TX`: none; it takes them), the database, the
/// arguments, whether it comes from a primary (else from the journal).
pub static WIDE_COMMAND: std::sync::OnceLock<WideFn> = std::sync::OnceLock::new();

pub type WideFn = fn(&Arc<Engine>, TxId, usize, &[bytes::Bytes], bool) -> Result<(), String>;

/// `PARTS`, or the shard of the first argument when it is not set.
fn route_of_command(engine: &Engine, args: Vec<bytes::Bytes>) -> Route {
    match PARTS.get() {
        Some(f) => f(engine, args),
        None => Route::Parts(vec![(args.get(1).map_or(0, |k| engine.shard_of(k)), args)]),
    }
}

pub type ReplayFn = fn(&mut crate::shard::Shard, usize, &[bytes::Bytes]) -> Result<(), String>;

/// Sends keys to their shards in batches, a few batches in flight per
/// shard at most, and collects the shards' answers.
pub struct Sink<'a> {
    engine: &'a Arc<Engine>,
    tx: TxId,
    /// Whether a key already present is an error (a snapshot names each key
    /// once) or replaced (a journal replays states).
    replace: bool,
    batches: Vec<Batch>,
    acks: (std_mpsc::Sender<Ack>, std_mpsc::Receiver<Ack>),
    in_flight: usize,
    /// Applies the replication stream: journaled as `Applied`.
    link: bool,
}

impl<'a> Sink<'a> {
    pub fn new(engine: &'a Arc<Engine>, tx: TxId, replace: bool) -> Sink<'a> {
        let batches = (0..engine.nshards()).map(|_| Batch::with_capacity(BATCH)).collect();
        Sink { engine, tx, replace, batches, acks: std_mpsc::channel(), in_flight: 0, link: false }
    }

    /// A sink of the replication link (see `JournalMsg::Applied`).
    pub fn for_link(mut self) -> Sink<'a> {
        self.link = true;
        self
    }

    pub fn put(&mut self, db: usize, key: &[u8], state: Option<(Value, u64)>) -> Result<(), String> {
        self.key_load_delay();
        let shard = self.engine.shard_of(key);
        self.batches[shard].puts.push(Put::State(db, SmallBytes::new(key), state));
        self.after_push(shard)
    }

    fn key_load_delay(&self) {
        key_load_delay(self.engine);
    }

    /// A string key's state: `value`, expiring at `at` (0: never).
    pub fn put_string(&mut self, db: usize, key: &[u8], value: &[u8], at: u64) -> Result<(), String> {
        self.key_load_delay();
        let shard = self.engine.shard_of(key);
        let b = &mut self.batches[shard];
        let (key, value) = (b.push_bytes(key), b.push_bytes(value));
        b.puts.push(Put::Str { db, key, value, at });
        self.after_push(shard)
    }

    /// Queues a journaled command for the shard of its keys (each shard's
    /// part of a split command for its shard: `PARTS`), in order with the
    /// states queued there.
    pub fn command(&mut self, db: usize, args: Vec<bytes::Bytes>) -> Result<(), String> {
        self.route(db, args, false)
    }

    /// A command from a primary, run on the shard of its keys (as
    /// `command`).
    pub fn replicated(&mut self, db: usize, args: Vec<bytes::Bytes>) -> Result<(), String> {
        self.route(db, args, true)
    }

    fn route(&mut self, db: usize, args: Vec<bytes::Bytes>, replicated: bool) -> Result<(), String> {
        match route_of_command(self.engine, args) {
            Route::Parts(parts) => {
                for (shard, part) in parts {
                    let put = if replicated { Put::Replicated(db, part) } else { Put::Command(db, part) };
                    self.batches[shard].puts.push(put);
                    self.after_push(shard)?;
                }
                Ok(())
            }
            Route::Wide(args) => {
                // In order: what came before is applied first, and what
                // follows queues behind the command's release.
                self.barrier()?;
                let run = WIDE_COMMAND.get().ok_or("commands across shards cannot be run here")?;
                run(self.engine, self.tx, db, &args, replicated)
            }
        }
    }

    fn after_push(&mut self, shard: usize) -> Result<(), String> {
        let b = &self.batches[shard];
        if b.puts.len() >= BATCH || b.bytes.len() >= BATCH_BYTES {
            let full = std::mem::replace(&mut self.batches[shard], Batch::with_capacity(BATCH));
            self.send(shard, full)?;
        }
        Ok(())
    }

    fn send(&mut self, shard: usize, batch: Batch) -> Result<(), String> {
        while self.in_flight >= IN_FLIGHT * self.engine.nshards() {
            self.wait_one()?;
        }
        let ack = self.acks.0.clone();
        let (replace, link) = (self.replace, self.link);
        self.engine.send(
            shard,
            self.tx,
            Box::new(move |sh| {
                if link {
                    sh.journal_link_job();
                }
                let _ = ack.send(insert_batch(sh, batch, replace));
            }),
        );
        self.in_flight += 1;
        Ok(())
    }

    fn wait_one(&mut self) -> Result<(), String> {
        let done = self.acks.1.recv().map_err(|_| "the node is shutting down".to_string())?;
        self.in_flight -= 1;
        done
    }

    /// Sends every partial batch and waits until the shards have applied
    /// everything.
    pub fn barrier(&mut self) -> Result<(), String> {
        for shard in 0..self.batches.len() {
            if !self.batches[shard].is_empty() {
                let batch = std::mem::take(&mut self.batches[shard]);
                self.send(shard, batch)?;
            }
        }
        while self.in_flight > 0 {
            self.wait_one()?;
        }
        Ok(())
    }

    /// Runs `f` on every shard after everything sent so far (a barrier).
    pub fn on_every_shard(&mut self, f: impl Fn(&mut crate::shard::Shard) + Send + Sync + Clone + 'static) -> Result<(), String> {
        self.barrier()?;
        for s in 0..self.engine.nshards() {
            let (ack, f) = (self.acks.0.clone(), f.clone());
            self.engine.send(
                s,
                self.tx,
                Box::new(move |sh| {
                    f(sh);
                    let _ = ack.send(Ok(()));
                }),
            );
            self.in_flight += 1;
        }
        self.barrier()
    }
}

/// Loads `path` into the shards, as transaction `tx` (`NO_TX` at start-up,
/// the holder of every shard for DEBUG RELOAD). Blocks the calling thread.
/// `keep_expired`: keys whose TTL has passed are loaded too (a journal's
/// base: the journal after it may still touch them; they expire once
/// loading ends), as Redis keeps them in an AOF preamble.
pub fn load_file(path: &Path, engine: &Arc<Engine>, tx: TxId, keep_expired: bool) -> Result<Loaded, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    load_from(std::io::BufReader::with_capacity(1 << 20, file), engine, tx, keep_expired)
}

/// `load_file` from any reader (a replica's socket, for a diskless load):
/// the keys go to the shards as they are decoded.
pub fn load_from(input: impl Read, engine: &Arc<Engine>, tx: TxId, keep_expired: bool) -> Result<Loaded, String> {
    let mut sink = Sink::new(engine, tx, false);
    let loaded = decode(input, engine, keep_expired, |db, key, value, expire| sink.put(db, &key, Some((value, expire))))?;
    sink.barrier()?;
    Ok(loaded)
}

/// A decoded snapshot held in memory, not yet in the shards (a replica's
/// `repl-diskless-load swapdb`: the current data serves until it is whole).
pub struct Staged {
    pub loaded: Loaded,
    keys: Vec<(usize, Vec<u8>, Value, u64)>,
}

/// `key-load-delay` (a test setting): microseconds to wait per key.
fn key_load_delay(engine: &Engine) {
    let delay = engine.cfg.key_load_delay.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 {
        std::thread::sleep(std::time::Duration::from_micros(delay));
    }
}

/// Decodes a whole snapshot into memory.
pub fn stage(input: impl Read, engine: &Engine) -> Result<Staged, String> {
    let mut keys = Vec::new();
    let loaded = decode(input, engine, false, |db, key, value, expire| {
        key_load_delay(engine);
        keys.push((db, key, value, expire));
        Ok(())
    })?;
    Ok(Staged { loaded, keys })
}

impl Staged {
    /// Puts the staged keys into the shards.
    pub fn apply(self, engine: &Arc<Engine>, tx: TxId) -> Result<Loaded, String> {
        let mut sink = Sink::new(engine, tx, false);
        for (db, key, value, expire) in self.keys {
            sink.put(db, &key, Some((value, expire)))?;
        }
        sink.barrier()?;
        Ok(self.loaded)
    }
}

/// Decodes a snapshot, handing each live key (database, key, value,
/// expiry) to `put`.
fn decode(
    input: impl Read,
    engine: &Engine,
    keep_expired: bool,
    mut put: impl FnMut(usize, Vec<u8>, Value, u64) -> Result<(), String>,
) -> Result<Loaded, String> {
    let started = Instant::now();
    // Values take the encodings this server's limits give them.
    let mut reader = rdb::Reader::with_limits(input, engine.cfg.limits()).map_err(|e| e.to_string())?;
    let now = crate::util::now_ms();
    let databases = engine.cfg.databases;
    let mut loaded = Loaded::default();
    let mut db = 0usize;
    while let Some(item) = reader.next().map_err(|e| e.to_string())? {
        match item {
            Item::SelectDb(n) => {
                if n as usize >= databases {
                    return Err(format!("the file holds keys of database {n}, and this server has {databases} databases (--databases)"));
                }
                db = n as usize;
            }
            Item::Entry { key, value, expire_at_ms, .. } => {
                let expire = expire_at_ms.unwrap_or(0);
                if expire != 0 && expire <= now && !keep_expired {
                    loaded.expired += 1;
                    continue;
                }
                put(db, key, value, expire)?;
                loaded.keys += 1;
            }
            Item::Function(code) => loaded.functions.push(code),
            _ => {}
        }
    }
    loaded.seconds = started.elapsed().as_secs_f64();
    Ok(loaded)
}

/// Applies a batch to a shard's databases. Without `replace`, a key
/// already there means the file names it twice.
fn insert_batch(sh: &mut crate::shard::Shard, batch: Batch, replace: bool) -> Result<(), String> {
    let bytes = &batch.bytes;
    for put in batch.puts {
        let (db, key, state) = match put {
            Put::State(db, key, state) => (db, key, state),
            Put::Str { db, key, value, at } => {
                let state = Some((Value::string(&bytes[value]), at));
                put_state(sh, db, &bytes[key], state, replace)?;
                continue;
            }
            Put::Command(db, args) => {
                let run = REPLAY_COMMAND.get().ok_or("journaled commands cannot be replayed here")?;
                run(sh, db, &args)?;
                continue;
            }
            Put::Replicated(db, args) => {
                let run = REPLICA_COMMAND.get().ok_or("replicated commands cannot be run here")?;
                run(sh, db, &args)?;
                continue;
            }
        };
        put_state(sh, db, &key, state, replace)?;
    }
    Ok(())
}

/// Sets a key's state (`None`: gone).
fn put_state(sh: &mut crate::shard::Shard, db: usize, key: &[u8], state: Option<(Value, u64)>, replace: bool) -> Result<(), String> {
    let d = sh.db(db);
    // With `now` 0 nothing expires while checking. One lookup: a key
    // already there is overwritten in place (a replica's stream
    // mostly rewrites keys it has).
    match (d.lookup_quiet(key, 0), state) {
        (Some(_), _) if !replace => {
            return Err(format!("the file holds key '{}' of database {db} twice", String::from_utf8_lossy(key)));
        }
        (Some(idx), Some((value, expire))) => {
            d.set_expire(idx, expire);
            d.entry_mut(idx).value = value;
        }
        (Some(idx), None) => {
            d.remove_idx(idx);
        }
        (None, Some((value, expire))) => {
            d.insert_new(key, value, expire);
        }
        (None, None) => {}
    }
    Ok(())
}
