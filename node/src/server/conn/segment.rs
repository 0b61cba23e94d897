//! A pipeline segment: consecutive single-shard commands, run as one batch
//! per shard (the connection's own shard's inline, each other shard's as one
//! job) with the replies merged back into command order. A batch's vectors
//! and reply buffer belong to the connection and are reused from segment to
//! segment; a remote batch hands its commands back with its replies, so what
//! the connection allocated is freed on its own thread.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::*;
use crate::commands::observe;
use crate::commands::run::exec_uncounted;
use crate::commands::{self, clock, CommandSpec, Exec};
use crate::error::CmdError;
use crate::resp::parse::give_back;
use crate::resp::Out;
use crate::shard::clients::ClientInfo;
use crate::shard::{Shard, NO_TX};
use crate::slot::key_slot;
use crate::util::now_ms;

/// A parsed command waiting in a pipeline segment.
pub(super) struct Pending {
    pub spec: &'static CommandSpec,
    pub args: Vec<Bytes>,
    pub shard: usize,
    /// Cluster mode: the one slot of the command's keys, as the routing
    /// check found it (so the shard's gate check need not hash them again).
    pub slot: Option<u16>,
    /// The first key's position in `args` and its slot, when routing found
    /// it: the keyspace takes it instead of hashing the key again.
    pub hint: Option<(u32, u16)>,
    /// Whether every shard must evict before it runs (`exec_or_defer`).
    pub evict: EvictAll,
}

/// A tracking client's command whose shard cannot get the node under
/// `maxmemory` while others might: the keys they evict must be invalidated
/// ahead of its reply, as Redis (which evicts node-wide before each command)
/// sends them. The shard hands it back (`Wanted`), the connection has every
/// shard evict, writes the client's invalidations, and runs it (`Done`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum EvictAll {
    #[default]
    Not,
    Wanted,
    Done,
}

/// A batch: (position in the segment, command), in segment order.
type Batch = Vec<(usize, Pending)>;

/// Vectors segments need, kept by the connection between segments (a few,
/// and none that grew large).
#[derive(Default)]
pub(super) struct Spares {
    batches: Vec<Batch>,
    bufs: Vec<Vec<u8>>,
    ends: Vec<Vec<usize>>,
    results: Vec<BatchResult>,
    waits: Vec<oneshot::Receiver<BatchResult>>,
}

/// How many of each vector the connection keeps, the largest reply buffer
/// it keeps, and the most commands a kept batch vector may have room for
/// (a long pipeline's vectors are freed, not held by an idle connection).
const SPARES: usize = 4;
const SPARE_BYTES: usize = 16 * 1024;
const SPARE_COMMANDS: usize = 256;

impl Spares {
    fn batch(&mut self) -> Batch {
        self.batches.pop().unwrap_or_default()
    }

    fn buf(&mut self) -> Vec<u8> {
        self.bufs.pop().unwrap_or_else(|| Vec::with_capacity(256))
    }

    fn ends(&mut self) -> Vec<usize> {
        self.ends.pop().unwrap_or_default()
    }

    /// Takes back a finished batch's vectors (its commands are dropped here).
    fn recycle(&mut self, mut r: BatchResult) {
        r.batch.clear();
        r.buf.clear();
        r.ends.clear();
        if self.batches.len() < SPARES && r.batch.capacity() <= SPARE_COMMANDS {
            self.batches.push(r.batch);
        }
        if self.bufs.len() < SPARES && r.buf.capacity() <= SPARE_BYTES {
            self.bufs.push(r.buf);
        }
        if self.ends.len() < SPARES && r.ends.capacity() <= SPARE_COMMANDS {
            self.ends.push(r.ends);
        }
    }
}

/// A batch after it ran on its shard: the batch itself, how many of its
/// commands ran (the first one not run, and every one after it, must run
/// on the connection instead: a script needing every shard), their
/// replies, one after the other in `buf`, and where each one ends.
pub(super) struct BatchResult {
    batch: Batch,
    ran: usize,
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// The next reply to merge, and where it starts in `buf`.
    next: usize,
    start: usize,
    /// The client, handed back so that its reference count moves on the
    /// connection's thread only.
    _client: Arc<ClientInfo>,
}

impl BatchResult {
    /// Whether the next reply to merge is the one of segment position `ci`.
    fn has_next(&self, ci: usize) -> bool {
        self.next < self.ran && self.batch[self.next].0 == ci
    }

    /// The next reply to merge.
    fn take_next(&mut self) -> &[u8] {
        let (start, end) = (self.start, self.ends[self.next]);
        self.next += 1;
        self.start = end;
        &self.buf[start..end]
    }
}

impl Conn {
    /// The shard all of a command's keys live on, or `None` when they span
    /// several. Keyless shard commands run on the local shard.
    pub(super) fn single_shard(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        self.route(spec, args, None).map(|(shard, _)| shard)
    }

    /// As `single_shard`, with the first key's position and slot when it
    /// is known: computed here to find the shard, or `slot`, the one slot
    /// of the command's keys that the cluster check found.
    pub(super) fn route(&self, spec: &CommandSpec, args: &[Bytes], slot: Option<u16>) -> Option<(usize, Option<(u32, u16)>)> {
        let mut keys = spec.key_indices(args);
        let Some(first) = keys.next() else { return Some((self.local.id(), None)) };
        let n = self.engine.nshards();
        if n == 1 {
            return Some((0, slot.map(|s| (first as u32, s))));
        }
        let slot = slot.unwrap_or_else(|| key_slot(&args[first]));
        let shard = slot as usize % n;
        keys.all(|i| self.engine.shard_of(&args[i]) == shard).then_some((shard, Some((first as u32, slot))))
    }

    /// Runs the buffered single-shard commands, one job per shard, and writes
    /// their replies in order.
    pub(super) async fn run_segment(&mut self, segment: &mut Vec<Pending>) {
        match segment.len() {
            0 => return,
            1 => {
                let p = segment.pop().expect("one command");
                self.run_one(p).await;
                return;
            }
            _ => {}
        }
        let me = self.local.id();
        let resp3 = self.out.resp3;
        let db = self.db;
        if segment.iter().all(|p| p.shard == me) {
            // All local: run them in one go, straight into the output
            // buffer. A script that must run on the connection instead (it
            // needs every shard) stops the batch; it and the rest then run
            // one by one, in order.
            let out = &mut self.out;
            let client = &self.s.info;
            let rest = self
                .local
                .run(NO_TX, |sh| {
                    lend_slots(segment.iter_mut());
                    let now = now_ms();
                    let mut clock = clock::now();
                    let mut items = segment.drain(..);
                    for k in 0.. {
                        if k % PREFETCH_WINDOW == 0 {
                            prefetch_keys(sh, db, items.as_slice().iter().take(PREFETCH_WINDOW));
                        }
                        let Some(mut p) = items.next() else { break };
                        if !exec_or_defer(sh, db, &mut p, out, now, client, &mut clock) {
                            let mut rest = vec![p];
                            rest.extend(items);
                            return rest;
                        }
                        give_back(p.args);
                    }
                    Vec::new()
                })
                .await;
            for p in rest {
                self.run_one(p).await;
            }
            return;
        }
        // One batch per shard, in segment order within each.
        let total = segment.len();
        let mut batches: Vec<(usize, Batch)> = Vec::with_capacity(4);
        for (i, p) in segment.drain(..).enumerate() {
            match batches.iter_mut().find(|(s, _)| *s == p.shard) {
                Some((_, b)) => b.push((i, p)),
                None => {
                    let mut b = self.spares.batch();
                    let shard = p.shard;
                    b.push((i, p));
                    batches.push((shard, b));
                }
            }
        }
        let mut waits = std::mem::take(&mut self.spares.waits);
        let mut results = std::mem::take(&mut self.spares.results);
        let mut local_batch = None;
        for (shard, batch) in batches {
            if shard == me {
                local_batch = Some(batch);
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let (buf, ends, client) = (self.spares.buf(), self.spares.ends(), self.s.info.clone());
            self.engine.send(
                shard,
                NO_TX,
                Box::new(move |sh| {
                    let r = exec_batch(sh, db, resp3, batch, buf, ends, client);
                    crate::shard::answer(sh, me, tx, r);
                }),
            );
            self.engine.inbox(me).expect_reply();
            waits.push(rx);
        }
        if let Some(batch) = local_batch {
            let (buf, ends, client) = (self.spares.buf(), self.spares.ends(), self.s.info.clone());
            results.push(self.local.run(NO_TX, |sh| exec_batch(sh, db, resp3, batch, buf, ends, client)).await);
        }
        for rx in waits.drain(..) {
            match rx.await {
                Ok(r) => results.push(r),
                Err(_) => return std::future::pending().await,
            }
        }
        self.spares.waits = waits;
        // Commands a shard handed back (a script that needs every shard, and
        // what followed it on that shard) run now, in order, each into a
        // buffer of its own.
        let mut late: Vec<(usize, Vec<u8>)> = Vec::new();
        if results.iter().any(|r| r.ran < r.batch.len()) {
            let mut rest: Batch = results.iter_mut().flat_map(|r| r.batch.drain(r.ran..)).collect();
            rest.sort_unstable_by_key(|(i, _)| *i);
            for (i, p) in rest {
                let saved = std::mem::take(&mut self.out.buf);
                self.run_one(p).await;
                late.push((i, std::mem::replace(&mut self.out.buf, saved)));
            }
        }
        // Merge the replies back into command order: each batch's replies
        // are in segment order already.
        let mut late = late.into_iter().peekable();
        for ci in 0..total {
            if let Some(r) = results.iter_mut().find(|r| r.has_next(ci)) {
                self.out.buf.extend_from_slice(r.take_next());
            } else if let Some((_, buf)) = late.next_if(|(i, _)| *i == ci) {
                self.out.buf.extend_from_slice(&buf);
            }
        }
        for r in results.drain(..) {
            self.recycle(r);
        }
        self.spares.results = results;
    }

    pub(super) async fn run_one(&mut self, p: Pending) {
        let mut p = p;
        for _ in 0..CUTOVER_RETRIES {
            let Some(back) = self.try_one(p).await else { return };
            if back.evict == EvictAll::Wanted {
                self.evict_everywhere().await;
                p = Pending { evict: EvictAll::Done, ..back };
                continue;
            }
            if !self.gate_holds(back.spec, &back.args) && matches!(back.spec.exec, Exec::Script(_)) {
                // A script its shard handed back: it needs every shard.
                return self.run_top(back.spec, &back.args).await;
            }
            // Held by a migration's cut-over: wait, then route it again (it
            // is usually MOVED now; if the migration failed, it runs here).
            if let Err(e) = self.reroute(back.spec, &back.args).await {
                return self.out.error(&e);
            }
            let shard = self.single_shard(back.spec, &back.args).unwrap_or(back.shard);
            p = Pending { shard, ..back };
        }
        self.out.error(&CmdError::Other("TRYAGAIN the slot is still being migrated".into()));
    }

    /// Runs one command on its shard; hands it back unrun when the
    /// connection must handle it (a script that needs every shard, or a
    /// slot held by a migration's cut-over).
    async fn try_one(&mut self, mut p: Pending) -> Option<Pending> {
        let db = self.db;
        if p.shard == self.local.id() {
            let out = &mut self.out;
            let client = &self.s.info;
            let ran = self
                .local
                .run(NO_TX, |sh| {
                    prefetch_keys(sh, db, std::iter::once(&p));
                    exec_or_defer(sh, db, &mut p, out, now_ms(), client, &mut clock::now())
                })
                .await;
            if ran {
                give_back(p.args);
                return None;
            }
            Some(p)
        } else {
            let resp3 = self.out.resp3;
            let (shard, client) = (p.shard, self.s.info.clone());
            let mut batch = self.spares.batch();
            batch.push((0, p));
            let (buf, ends) = (self.spares.buf(), self.spares.ends());
            let mut r = crate::shard::run_on(&self.engine, &self.local, shard, NO_TX, move |sh| {
                exec_batch(sh, db, resp3, batch, buf, ends, client)
            })
            .await;
            self.out.buf.extend_from_slice(&r.buf);
            let back = (r.ran == 0).then(|| r.batch.pop()).flatten().map(|(_, p)| p);
            self.recycle(r);
            back
        }
    }

    /// Takes back a finished batch: its commands' argument vectors go to
    /// the thread's parsers, its other vectors to the spares.
    fn recycle(&mut self, mut r: BatchResult) {
        for (_, p) in r.batch.drain(..) {
            give_back(p.args);
        }
        self.spares.recycle(r);
    }

    /// Has every shard evict while the node is over `maxmemory`, and
    /// writes the invalidations of the keys they evicted that this client
    /// tracks (see `EvictAll`).
    async fn evict_everywhere(&mut self) {
        let id = self.s.info.id;
        // Each shard evicts before the job runs (`LocalShard::apply`), its
        // own keys if that left the node over the limit, and keeps the
        // invalidations for the job to take.
        let taken = crate::shard::broadcast(&self.engine, &self.local, NO_TX, move |sh| {
            sh.evict_here_before_job();
            sh.take_captured(id)
        })
        .await;
        // The command's own shard sent those of its first attempt.
        self.take_invalidations();
        for inv in taken.iter().flatten() {
            write_invalidation(&mut self.out, false, inv);
        }
    }
}

/// Runs a batch on its shard, each reply appended to `buf`, until a command
/// must run on the connection instead.
fn exec_batch(
    sh: &mut Shard,
    db: usize,
    resp3: bool,
    mut batch: Batch,
    buf: Vec<u8>,
    mut ends: Vec<usize>,
    client: Arc<ClientInfo>,
) -> BatchResult {
    lend_slots(batch.iter_mut().map(|(_, p)| p));
    let mut out = Out { buf, resp3 };
    let now = now_ms();
    let mut clock = clock::now();
    let mut ran = 0;
    for k in 0..batch.len() {
        if k % PREFETCH_WINDOW == 0 {
            prefetch_keys(sh, db, batch[k..].iter().take(PREFETCH_WINDOW).map(|(_, p)| p));
        }
        let p = &mut batch[k].1;
        if !exec_or_defer(sh, db, p, &mut out, now, &client, &mut clock) {
            break;
        }
        ends.push(out.buf.len());
        ran += 1;
    }
    BatchResult { batch, ran, buf: out.buf, ends, next: 0, start: 0, _client: client }
}

/// How many commands of a batch are prefetched at a time, just before
/// they run: enough for their cache misses to overlap, few enough that
/// what was loaded is still there when they run.
const PREFETCH_WINDOW: usize = 16;

/// Lends each command of a batch its first key's slot where routing did
/// not compute it (one shard hashes no key to route): the prefetch needs
/// it, and the keyspace takes it when the command runs instead of hashing
/// the key again.
fn lend_slots<'p>(batch: impl Iterator<Item = &'p mut Pending>) {
    for p in batch {
        if p.hint.is_none() {
            let first = p.spec.key_indices(&p.args).next();
            if let Some((i, key)) = first.and_then(|i| Some((i, p.args.get(i)?))) {
                p.hint = Some((i as u32, key_slot(key)));
            }
        }
    }
}

/// At most how many keys one prefetch asks for (an MGET of thousands would
/// push out what it loaded first before it got there).
const PREFETCH_KEYS: usize = 64;

/// Has the shard start loading what the next commands of a batch will
/// read: their keys' entries (`Db::prefetch`; a multi-key command's every
/// key, MGET's and MSET's included), then where big hashes and sets keep
/// the fields and members they name (`Db::prefetch_members`). A single
/// command with a single key gains nothing (it would look its key
/// up twice) and is left alone.
fn prefetch_keys<'p>(sh: &mut Shard, db: usize, window: impl Iterator<Item = &'p Pending> + Clone) {
    let mut next = window.clone();
    match (next.next(), next.next()) {
        (None, _) => return,
        (Some(p), None) if p.spec.key_indices(&p.args).nth(1).is_none() => return,
        _ => {}
    }
    let keys = window
        .clone()
        .flat_map(|p| {
            p.spec.key_indices(&p.args).filter_map(move |i| {
                let key = p.args.get(i)?;
                let slot = match p.hint {
                    Some((first, slot)) if first as usize == i => slot,
                    _ => key_slot(key),
                };
                Some((&key[..], slot))
            })
        })
        .take(PREFETCH_KEYS);
    let d = sh.db(db);
    d.prefetch(keys);
    let members = window.filter(|p| p.spec.member != 0).filter_map(|p| {
        let (i, slot) = p.hint?;
        Some((&p.args.get(i as usize)?[..], slot, &p.args.get(p.spec.member as usize)?[..]))
    });
    d.prefetch_members(members);
}

/// Runs a command batched for a shard: a shard command, or a script on the
/// shard of its declared keys. False (nothing written) when the connection
/// must run it instead. Counts it (INFO commandstats, SLOWLOG) with the
/// time from `clock` (the end of the batch's previous command, or its
/// start) to its end, which becomes the next command's start: one clock
/// read per command.
fn exec_or_defer(
    sh: &mut Shard,
    db: usize,
    p: &mut Pending,
    out: &mut Out,
    now: u64,
    client: &Arc<ClientInfo>,
    clock: &mut clock::Ticks,
) -> bool {
    let (spec, args) = (p.spec, &p.args[..]);
    if let Some(map) = &sh.cluster {
        let held = match p.slot {
            Some(slot) => !map.gate.admits_for(slot, spec.has_flag(crate::commands::flag::WRITE)),
            None => crate::commands::routing::held_back(map, spec, args),
        };
        if held {
            return false;
        }
    }
    // Over maxmemory: evict first, or refuse a command that may grow
    // memory when nothing can be evicted; each command of a batch is
    // judged as it comes, as if it had arrived alone.
    if !sh.is_locked() && crate::shard::evict::over_limit(&sh.cfg) {
        sh.evict_before_job();
        if crate::shard::evict::oom(&sh.cfg) && commands::scripting::denies_oom(&sh.scripting, spec, args) {
            commands::stats::reject(spec);
            out.error(&CmdError::Oom);
            return true;
        }
        if p.evict == EvictAll::Not
            && out.resp3
            && client.tracking.load(Relaxed) & crate::shard::tracking::flag::ON != 0
            && sh.others_may_evict()
        {
            p.evict = EvictAll::Wanted;
            return false;
        }
    }
    // A RESP3 tracking client reads the invalidations of keys evicted
    // before its command (here or before the job) ahead of the command's
    // reply, as Redis sends them.
    if out.resp3 {
        for inv in sh.take_captured(client.id) {
            super::write_invalidation(out, false, &inv);
        }
    }
    // CLIENT NO-TOUCH: the command's lookups leave keys' access metadata
    // alone (TOUCH itself still counts).
    let touch = !client.no_touch.load(Relaxed) || spec.name == "touch";
    // Client-side caching: a tracking client's writes are its own (NOLOOP)
    // and its reads are remembered.
    let failed = commands::tracking::as_caller(sh, client, |sh| {
        crate::store::access::touching(touch, || match spec.exec {
            Exec::Script(call) => {
                let mark = out.buf.len();
                if !commands::scripting::run_on_shard(sh, db, spec, call, args, out, client) {
                    return None;
                }
                Some(out.buf.get(mark) == Some(&b'-'))
            }
            _ => Some(exec_hinted(sh, db, p, out, now)),
        })
    });
    let Some(failed) = failed else { return false };
    let end = clock::now();
    let nanos = clock.nanos_to(end);
    *clock = end;
    commands::stats::record(spec, nanos, failed);
    if let Some(engine) = &sh.engine {
        observe::done(engine, spec, args, db, nanos, Some(client), true);
    }
    true
}

/// Runs a shard command with its first key's slot lent to the keyspace for
/// the command's duration (its arguments live that long).
fn exec_hinted(sh: &mut Shard, db: usize, p: &Pending, out: &mut Out, now: u64) -> bool {
    let key = p.hint.and_then(|(i, slot)| Some((p.args.get(i as usize)?, slot)));
    if let Some((key, slot)) = key {
        sh.db(db).set_slot_hint(key, slot);
    }
    let failed = exec_uncounted(sh, db, p.spec, &p.args, out, now);
    if key.is_some() {
        sh.db(db).clear_slot_hint();
    }
    failed
}
