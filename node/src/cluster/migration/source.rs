//! The source side of a migration: the node that owns the slots runs it.
//!
//! 1. Commit `BeginMigration` in Raft (the target now accepts the slots'
//!    keys; the source still serves them) and start tracking which keys of
//!    the slots change.
//! 2. Snapshot: per shard, in parallel, send every key of the shard's moving
//!    slots in bounded batches (DUMP payload and absolute expiry).
//! 3. Catch-up: send the keys changed since, in rounds, until few remain.
//! 4. Cut-over: close the slots at the gate (writes to them wait), collect
//!    the last changed keys on each shard and send them, commit
//!    `CompleteMigration`, wait until this node and the target have applied
//!    it, then reopen: the held commands are now redirected to the target.
//!
//! Any failure before the commit aborts: the source keeps the slots and all
//! their keys, and the target's purge drops what it received.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use damselfly_proto::migration::migration_client::MigrationClient;
use damselfly_proto::migration::{AwaitAppliedRequest, ImportBatch, KeyState};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::{on_shard, Control, ProposeError, MAX_MESSAGE};
use crate::cluster::raft::{Change, NodeAddr};
use crate::cluster::{channel, BusChannel};
use crate::shard::{Engine, Shard};
use crate::store::{dump, SmallBytes};
use crate::util::now_ms;

/// Keys per shard job when reading them for a batch.
const READ_CHUNK: usize = 256;
/// A batch is sent once it holds this many keys or bytes.
const BATCH_KEYS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;
/// Catch-up stops when a round finds at most this many changed keys.
const SETTLED: usize = 256;
const MAX_ROUNDS: usize = 10;
/// Bound on one batch's round trip.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a running migration reports.
#[derive(Default)]
pub struct Progress {
    pub keys: AtomicU64,
    pub bytes: AtomicU64,
    pub phase: Mutex<&'static str>,
}

impl Progress {
    fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }
}

/// A finished migration.
pub struct Moved {
    /// How long writes to the slots were held.
    pub pause: Duration,
}

/// Clears `Control::running` however the migration ends, and moves its
/// figures into the node's totals (`Control::sent`).
struct Running<'a>(&'a Control, Arc<Progress>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut current = self.0.current.lock().unwrap_or_else(|e| e.into_inner());
        self.0.sent.keys.fetch_add(self.1.keys.load(Relaxed), Relaxed);
        self.0.sent.bytes.fetch_add(self.1.bytes.load(Relaxed), Relaxed);
        *current = None;
        drop(current);
        *self.0.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Moves `ranges` from this node to `to`.
pub async fn run(ctl: Arc<Control>, to: NodeAddr, ranges: Vec<(u16, u16)>, progress: Arc<Progress>) -> Result<Moved, String> {
    let id = crate::cluster::identity::random_id()[..16].to_string();
    {
        let mut running = ctl.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = running.as_ref() {
            return Err(format!("this node is already running migration {other}"));
        }
        *running = Some(id.clone());
    }
    *ctl.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress.clone());
    let _running = Running(&ctl, progress.clone());
    let begin = Change::BeginMigration { id: id.clone(), ranges, from: ctl.myself.id.clone(), to: to.id.clone() };
    let log_index = ctl.propose(begin).await.map_err(|e| e.to_string())?.log_index;
    if !ctl.applied(log_index, Duration::from_secs(10)).await {
        return Err(abort(&ctl, &id, &[], "this node did not apply the migration's start in time".into()).await);
    }
    let Some(m) = ctl.map.load().migration.clone().filter(|m| m.id == id) else {
        return Err("the migration was aborted before it started".into());
    };
    let slots = m.slots();
    info!(%id, to = %to.id, slots = slots.len(), "migration started");
    let engine = ctl.engine.clone();
    let n = engine.nshards();
    let by_shard: Vec<Vec<u16>> = (0..n).map(|s| slots.iter().copied().filter(|&sl| sl as usize % n == s).collect()).collect();
    let shards: Vec<usize> = (0..n).filter(|&s| !by_shard[s].is_empty()).collect();
    let client = match channel(&to.grpc_url()) {
        Ok(ch) => MigrationClient::new(ch).max_encoding_message_size(MAX_MESSAGE).max_decoding_message_size(MAX_MESSAGE),
        Err(e) => return Err(abort(&ctl, &id, &[], e.to_string()).await),
    };
    // The target process that receives the first batch must be the one
    // that gets the slots: a restart in between would have lost batches.
    let incarnation = match incarnation_of(&client).await {
        Ok(i) => i,
        Err(e) => return Err(abort(&ctl, &id, &[], e).await),
    };
    for &s in &shards {
        let mine = by_shard[s].clone();
        on_shard(&engine, s, move |sh| sh.db(0).track(&mine)).await;
    }
    let mut streams: Vec<Stream> = shards
        .iter()
        .map(|&s| Stream {
            client: client.clone(),
            engine: engine.clone(),
            shard: s,
            slots: by_shard[s].clone(),
            id: id.clone(),
            log_index,
            seq: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            progress: progress.clone(),
            incarnation: incarnation.clone(),
            in_flight: None,
        })
        .collect();

    progress.phase("snapshot");
    if let Err(e) = each(&mut streams, |st| Box::pin(async move { st.snapshot().await.map(|_| 0) })).await {
        return Err(abort(&ctl, &id, &shards, e).await);
    }
    progress.phase("catch-up");
    for round in 0..MAX_ROUNDS {
        match each(&mut streams, |st| Box::pin(async move { st.catch_up().await })).await {
            Ok(changed) if changed <= SETTLED => break,
            Ok(changed) => info!(%id, round, changed, "catch-up round"),
            Err(e) => return Err(abort(&ctl, &id, &shards, e).await),
        }
    }

    progress.phase("cut-over");
    let t0 = Instant::now();
    ctl.map.gate.close(&slots);
    if let Err(e) = each(&mut streams, |st| Box::pin(async move { st.last_batch().await.map(|_| 0) })).await {
        return Err(abort(&ctl, &id, &shards, e).await);
    }
    match incarnation_of(&client).await {
        Ok(i) if i == incarnation => {}
        Ok(_) => return Err(abort(&ctl, &id, &shards, RESTARTED.into()).await),
        Err(e) => return Err(abort(&ctl, &id, &shards, e).await),
    }
    let committed = match ctl.propose(Change::CompleteMigration { id: id.clone() }).await {
        Ok(c) => Some(c.log_index),
        Err(ProposeError::Rejected(why)) => return Err(abort(&ctl, &id, &shards, why).await),
        Err(ProposeError::Unknown(why)) => {
            warn!(%id, "cut-over commit outcome unknown ({why}); finding out");
            resolve(&ctl, &id, &to.id, slots[0]).await
        }
    };
    let Some(index) = committed else {
        ctl.map.gate.open_all();
        return Err("the migration was aborted during cut-over; the source keeps the slots".into());
    };
    let t_commit = t0.elapsed();
    ctl.applied(index, Duration::from_secs(10)).await;
    let t_applied = t0.elapsed();
    let mut req = tonic::Request::new(AwaitAppliedRequest { index, timeout_ms: 2000 });
    req.set_timeout(Duration::from_secs(3));
    if let Err(e) = client.clone().await_applied(req).await {
        warn!(%id, "target did not confirm the new configuration: {}", e.message());
    }
    ctl.map.gate.open_all();
    let pause = t0.elapsed();
    progress.phase("done");
    ctl.last_pause_us.store(pause.as_micros() as u64, Relaxed);
    ctl.completed.fetch_add(1, Relaxed);
    info!(
        %id,
        pause_ms = pause.as_millis() as u64,
        commit_ms = t_commit.as_millis() as u64,
        applied_ms = t_applied.as_millis() as u64,
        keys = progress.keys.load(Relaxed),
        "migration done"
    );
    Ok(Moved { pause })
}

const RESTARTED: &str = "the target restarted during the migration";

/// The target's incarnation (changes when its process restarts).
async fn incarnation_of(client: &MigrationClient<BusChannel>) -> Result<String, String> {
    let mut req = tonic::Request::new(AwaitAppliedRequest { index: 0, timeout_ms: 0 });
    req.set_timeout(BATCH_TIMEOUT);
    match client.clone().await_applied(req).await {
        Ok(r) => Ok(r.into_inner().incarnation),
        Err(e) => Err(format!("cannot reach the target: {}", e.message())),
    }
}

/// Runs `f` on every stream concurrently; sums their counts, or returns the
/// first error.
async fn each<F>(streams: &mut Vec<Stream>, f: F) -> Result<usize, String>
where
    F: Fn(&mut Stream) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + '_>>
        + Send
        + Sync
        + 'static
        + Clone,
{
    let mut set = JoinSet::new();
    for st in streams.drain(..) {
        let f = f.clone();
        set.spawn(async move {
            let mut st = st;
            let r = f(&mut st).await;
            (st, r)
        });
    }
    let mut total = 0;
    let mut err = None;
    while let Some(done) = set.join_next().await {
        match done {
            Ok((st, r)) => {
                streams.push(st);
                match r {
                    Ok(n) => total += n,
                    Err(e) => err = err.or(Some(e)),
                }
            }
            Err(e) => err = err.or(Some(format!("a migration stream failed: {e}"))),
        }
    }
    err.map_or(Ok(total), Err)
}

/// Stops tracking, reopens the gate and records the abort in Raft (retried;
/// if it never commits, the orphan check of `purge` aborts the migration
/// once this process no longer runs it). Returns `reason`.
async fn abort(ctl: &Control, id: &str, shards: &[usize], reason: String) -> String {
    warn!(%id, "migration aborted: {reason}");
    for &s in shards {
        on_shard(&ctl.engine, s, |sh| sh.db(0).untrack()).await;
    }
    ctl.map.gate.open_all();
    for _ in 0..5 {
        match ctl.propose(Change::AbortMigration { id: id.to_string() }).await {
            Ok(_) | Err(ProposeError::Rejected(_)) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    format!("migration aborted, the source keeps the slots: {reason}")
}

/// After a cut-over commit with unknown outcome: learns (or decides, by
/// racing an abort through Raft) whether the target got the slots; `slot`
/// is one of them. The slots stay closed until then. Returns the applied
/// index to wait for when the target got them.
async fn resolve(ctl: &Control, id: &str, to: &str, slot: u16) -> Option<u64> {
    loop {
        let cfg = ctl.sm.config();
        if !cfg.migrations.iter().any(|m| m.id == id) {
            // Gone: completed if the slot is the target's now, else aborted
            // (no other change may touch a migrating slot meanwhile).
            let owner = cfg.slots.iter().find(|r| r.0 <= slot && slot <= r.1).map(|r| r.2.as_str());
            let applied = ctl.raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
            return (owner == Some(to)).then_some(applied);
        }
        match ctl.propose(Change::AbortMigration { id: id.to_string() }).await {
            Ok(_) => return None,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// One ordered stream of batches, for one source shard.
struct Stream {
    client: MigrationClient<BusChannel>,
    engine: Arc<Engine>,
    shard: usize,
    slots: Vec<u16>,
    id: String,
    log_index: u64,
    seq: u64,
    pending: Vec<KeyState>,
    pending_bytes: usize,
    progress: Arc<Progress>,
    /// The target process every batch must reach.
    incarnation: String,
    /// The batch being sent, if any.
    in_flight: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Stream {
    /// Sends every key of the stream's slots.
    async fn snapshot(&mut self) -> Result<(), String> {
        for slot in self.slots.clone() {
            let keys = on_shard(&self.engine, self.shard, move |sh| sh.db(0).slot_keys(slot)).await.unwrap_or_default();
            self.send_keys(keys, false).await?;
        }
        self.finish().await
    }

    /// Sends the keys changed since the last round; returns how many.
    async fn catch_up(&mut self) -> Result<usize, String> {
        let keys = on_shard(&self.engine, self.shard, |sh| sh.db(0).take_changed()).await.unwrap_or_default();
        let n = keys.len();
        self.send_keys(keys, true).await?;
        self.finish().await?;
        Ok(n)
    }

    /// With the slots closed: reads the last changed keys and stops
    /// tracking in one job, and sends them.
    async fn last_batch(&mut self) -> Result<(), String> {
        let states = on_shard(&self.engine, self.shard, |sh| {
            let keys = sh.db(0).take_changed();
            sh.db(0).untrack();
            key_states(sh, &keys, true)
        })
        .await
        .unwrap_or_default();
        self.push(states).await?;
        self.finish().await
    }

    async fn send_keys(&mut self, keys: Vec<SmallBytes>, deletes: bool) -> Result<(), String> {
        let mut keys = keys;
        while !keys.is_empty() {
            let chunk: Vec<SmallBytes> = keys.drain(..keys.len().min(READ_CHUNK)).collect();
            let states = on_shard(&self.engine, self.shard, move |sh| key_states(sh, &chunk, deletes)).await.unwrap_or_default();
            self.push(states).await?;
        }
        Ok(())
    }

    async fn push(&mut self, states: Vec<KeyState>) -> Result<(), String> {
        for s in states {
            self.pending_bytes += s.key.len() + s.dump.len();
            self.pending.push(s);
            if self.pending.len() >= BATCH_KEYS || self.pending_bytes >= BATCH_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Sends the pending batch. One batch is in flight at a time, while the
    /// next one is read on the shard, so reading on the source and applying
    /// on the target overlap; the batch before is waited for first, which
    /// keeps the stream's batches in order.
    async fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.wait_in_flight().await?;
        let keys = std::mem::take(&mut self.pending);
        let (n, bytes) = (keys.len() as u64, std::mem::take(&mut self.pending_bytes) as u64);
        let batch =
            ImportBatch { migration_id: self.id.clone(), log_index: self.log_index, keys, stream: self.shard as u32, seq: self.seq };
        self.seq += 1;
        let mut req = tonic::Request::new(batch);
        req.set_timeout(BATCH_TIMEOUT);
        let (mut client, incarnation, progress) = (self.client.clone(), self.incarnation.clone(), self.progress.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let reply = client.import(req).await.map_err(|e| format!("target refused a batch: {}", e.message()))?;
            if reply.get_ref().incarnation != incarnation {
                return Err(RESTARTED.into());
            }
            progress.keys.fetch_add(n, Relaxed);
            progress.bytes.fetch_add(bytes, Relaxed);
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the batch in flight, if any.
    async fn wait_in_flight(&mut self) -> Result<(), String> {
        match self.in_flight.take() {
            Some(h) => h.await.map_err(|e| format!("a batch send failed: {e}"))?,
            None => Ok(()),
        }
    }

    /// Sends what is pending and waits until the target has applied it all.
    async fn finish(&mut self) -> Result<(), String> {
        self.flush().await?;
        self.wait_in_flight().await
    }
}

/// The current state of `keys` on this shard: value and expiry, or (with
/// `deletes`) absence.
fn key_states(sh: &mut Shard, keys: &[SmallBytes], deletes: bool) -> Vec<KeyState> {
    let now = now_ms();
    let db = sh.db(0);
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        match db.lookup(k, now) {
            Some(idx) => out.push(KeyState {
                key: k.to_vec(),
                dump: dump::encode(&db.entry(idx).value),
                expire_at_ms: db.expire_of(idx).unwrap_or(0),
                deleted: false,
            }),
            None if deletes => out.push(KeyState { key: k.to_vec(), dump: Vec::new(), expire_at_ms: 0, deleted: true }),
            None => {}
        }
    }
    out
}
