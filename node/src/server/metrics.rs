//! The Prometheus endpoint (`metrics-port`): a minimal HTTP/1.1 server that
//! answers `GET /metrics` (and HEAD) with the Prometheus text format and
//! 404 to any other path, one request per connection.
//!
//! Every figure is read from state the node keeps anyway (the counters INFO
//! reads, the per-command statistics and latency histograms, the control
//! plane's Raft metrics): nothing is counted on the command path for this.
//! Per-shard figures come from one job per shard, run between commands, so
//! a scrape never holds a shard longer than it takes to copy its counters.
//! Names follow redis_exporter's where it has one, so existing Redis
//! dashboards work; the node's own are under `damselfly_`. Machinery the
//! node does not have (replicas) gets no metric rather than a constant 0.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use crate::commands::stats::{specs, Stats};
use crate::shard::{Engine, Shard, ShardStats, NO_TX};

/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once; more are closed at accept.
const MAX_CONNS: usize = 64;
/// Bound on one request, from accept to the last byte written.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on gathering the shards' figures (a shard busy in a long script
/// answers late): the scrape then fails with 503.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bounds (µs) of the per-command latency buckets: powers of two up
/// to the histograms' 1 s ceiling.
const BUCKETS_US: [u64; 21] = {
    let mut b = [0; 21];
    let mut i = 0;
    while i < 21 {
        b[i] = 1 << i;
        i += 1;
    }
    b
};

/// Serves the endpoint on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, engine: Arc<Engine>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNS));
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
        let engine = engine.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(sock, &engine)).await;
            drop(permit);
        });
    }
}

async fn handle(mut sock: TcpStream, engine: &Engine) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return respond(&mut sock, "431 Request Header Fields Too Large", "text/plain", "request head too large\n", false).await;
        }
        if sock.read_buf(&mut head).await? == 0 {
            return Ok(());
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path != b"/metrics" {
        return respond(&mut sock, "404 Not Found", "text/plain", "not found: the metrics are at /metrics\n", false).await;
    }
    let head_only = method == b"HEAD";
    if method != b"GET" && !head_only {
        return respond(&mut sock, "405 Method Not Allowed", "text/plain", "only GET\n", false).await;
    }
    match tokio::time::timeout(GATHER_TIMEOUT, render(engine)).await {
        Ok(Ok(body)) => respond(&mut sock, "200 OK", prometheus_client::encoding::prometheus_text::CONTENT_TYPE, &body, head_only).await,
        Ok(Err(_)) | Err(_) => {
            respond(&mut sock, "503 Service Unavailable", "text/plain", "the shards did not answer in time\n", head_only).await
        }
    }
}

async fn respond(sock: &mut TcpStream, status: &str, content_type: &str, body: &str, head_only: bool) -> std::io::Result<()> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    if !head_only {
        out.push_str(body);
    }
    sock.write_all(out.as_bytes()).await?;
    sock.shutdown().await
}

/// One shard's figures, copied by a job on its thread.
#[derive(Debug, Default)]
struct ShardFigures {
    stats: ShardStats,
    /// The per-command statistics of the shard's thread.
    cmds: Stats,
    /// (keys, keys with a TTL, average TTL in ms) per database.
    dbs: Vec<(usize, usize, u64)>,
    /// Work waiting for the shard (`shard::backlog`).
    backlog: usize,
    /// CPU time of the shard's thread, in seconds.
    busy: f64,
    /// Commands per second lately.
    ops: u64,
    /// The thread's Lua heap.
    lua: usize,
}

fn shard_figures(sh: &mut Shard) -> ShardFigures {
    let now = crate::util::now_ms();
    let dbs = (0..sh.db_count()).map(|i| sh.db_if_exists(i).map_or((0, 0, 0), |d| (d.len(), d.volatile_len(), d.avg_ttl(now)))).collect();
    ShardFigures {
        stats: sh.counted_stats(),
        cmds: crate::commands::stats::snapshot(),
        dbs,
        backlog: crate::shard::backlog(),
        busy: thread_cpu_seconds(),
        ops: sh.rates.get()[0],
        lua: crate::commands::scripting::vm::heap_size(),
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Every shard's figures, one job each, in shard order.
async fn gather(engine: &Engine) -> Result<Vec<ShardFigures>, ()> {
    let mut waits = Vec::with_capacity(engine.nshards());
    for s in 0..engine.nshards() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        engine.send(
            s,
            NO_TX,
            Box::new(move |sh| {
                let _ = tx.send(shard_figures(sh));
            }),
        );
        waits.push(rx);
    }
    let mut out = Vec::with_capacity(waits.len());
    for w in waits {
        out.push(w.await.map_err(|_| ())?);
    }
    Ok(out)
}

/// The text of one scrape.
async fn render(engine: &Engine) -> Result<String, ()> {
    let shards = gather(engine).await?;
    let mut cmds = Stats::default();
    for s in &shards {
        cmds.merge(&s.cmds);
    }
    Scrape { node: node_figures(engine), shards, cmds, cluster: crate::cluster::figures() }.text()
}

/// Node-wide figures (atomics and registries, read off the shards).
#[derive(Debug, Default)]
struct NodeFigures {
    uptime: u64,
    start: u64,
    port: u16,
    cluster: bool,
    policy: &'static str,
    connected: u64,
    blocked: u64,
    maxclients: u64,
    connections: u64,
    rejected: u64,
    used: u64,
    peak: u64,
    rss: u64,
    startup: u64,
    maxmemory: u64,
    pubsub_channels: usize,
    pubsub_patterns: usize,
    slowlog: usize,
    loading: bool,
    changes: u64,
    last_save: u64,
    bgsave_running: bool,
    last_bgsave_ok: bool,
    last_bgsave_secs: i64,
    aof: bool,
    aof_rewriting: bool,
    aof_rewrite_ok: bool,
    aof_write_ok: bool,
    cpu: (f64, f64),
}

fn node_figures(e: &Engine) -> NodeFigures {
    let st = &e.stats;
    let start = st.start_ms.load(Relaxed);
    let used = crate::alloc::used_memory();
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let cpu = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (t(ru.ru_utime), t(ru.ru_stime))
    } else {
        (0.0, 0.0)
    };
    NodeFigures {
        uptime: crate::util::now_ms().saturating_sub(start) / 1000,
        start: start / 1000,
        port: e.cfg.port(),
        cluster: e.cluster.is_some(),
        policy: e.cfg.policy().name(),
        connected: st.connected_clients.load(Relaxed),
        blocked: st.blocked_clients.load(Relaxed),
        maxclients: e.cfg.maxclients.load(Relaxed),
        connections: st.total_connections.load(Relaxed),
        rejected: st.rejected_connections.load(Relaxed),
        used,
        peak: crate::alloc::used_memory_peak().max(used),
        rss: crate::alloc::rss(),
        startup: st.used_memory_startup.load(Relaxed),
        maxmemory: e.cfg.maxmemory.load(Relaxed),
        pubsub_channels: e.pubsub.channels(None).len(),
        pubsub_patterns: e.pubsub.numpat(),
        slowlog: st.slowlog.len(),
        loading: e.saves.loading(),
        changes: e.saves.changes_since_save(),
        last_save: e.saves.last_save.load(Relaxed),
        bgsave_running: e.saves.in_progress.load(Relaxed),
        last_bgsave_ok: e.saves.last_ok.load(Relaxed),
        last_bgsave_secs: e.saves.last_duration.load(Relaxed),
        aof: e.journal.aof_on(),
        aof_rewriting: e.journal.rewriting.load(Relaxed),
        aof_rewrite_ok: !e.journal.last_rewrite_failed.load(Relaxed),
        aof_write_ok: !e.journal.write_failed.load(Relaxed),
        cpu,
    }
}

/// What one scrape shows, encoded by the registry it is registered with.
#[derive(Debug)]
struct Scrape {
    node: NodeFigures,
    shards: Vec<ShardFigures>,
    cmds: Stats,
    cluster: Option<(crate::cluster::RaftFigures, crate::cluster::migration::MigrationFigures)>,
}

type Enc<'a, 'b> = &'a mut DescriptorEncoder<'b>;

fn gauge(enc: Enc, name: &str, help: &str, v: impl EncodeGaugeValue) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&v)
}

/// A counter; the encoder adds `_total` to `name`.
fn counter(enc: Enc, name: &str, help: &str, v: impl EncodeCounterValue) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// A gauge or counter with one label, one sample per item.
fn labelled<V: EncodeGaugeValue + EncodeCounterValue>(
    enc: Enc,
    kind: MetricType,
    name: &str,
    help: &str,
    label: &str,
    items: impl IntoIterator<Item = (String, V)>,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (value, v) in items {
        let labels = [(label, value.as_str())];
        let mut f = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => f.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            _ => f.encode_gauge(&v)?,
        }
    }
    Ok(())
}

fn flag(b: bool) -> u64 {
    u64::from(b)
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let n = &self.node;
        let e = &mut enc;
        gauge(e, "redis_up", "Whether the node answered (always 1 when this is read)", 1u64)?;
        let mut m = e.encode_descriptor("redis_instance_info", "Information about the node", None, MetricType::Gauge)?;
        let port = n.port.to_string();
        let labels = [
            ("role", "master"),
            ("redis_version", crate::REDIS_VERSION),
            ("damselfly_version", env!("CARGO_PKG_VERSION")),
            ("redis_mode", if n.cluster { "cluster" } else { "standalone" }),
            ("maxmemory_policy", n.policy),
            ("tcp_port", &port),
        ];
        m.encode_family(&labels)?.encode_gauge(&1u64)?;
        gauge(e, "redis_uptime_in_seconds", "Seconds since the node started", n.uptime)?;
        gauge(e, "redis_start_time_seconds", "Start time of the node, Unix seconds", n.start)?;
        gauge(e, "redis_cluster_enabled", "Whether the node runs in cluster mode", flag(n.cluster))?;
        // Clients.
        gauge(e, "redis_connected_clients", "Client connections", n.connected)?;
        gauge(e, "redis_blocked_clients", "Clients waiting in a blocking command", n.blocked)?;
        gauge(e, "redis_max_clients", "maxclients", n.maxclients)?;
        counter(e, "redis_connections_received", "Connections accepted", n.connections)?;
        counter(e, "redis_rejected_connections", "Connections refused (maxclients, protected mode)", n.rejected)?;
        // Memory.
        gauge(e, "redis_memory_used_bytes", "Heap bytes in use (used_memory)", n.used)?;
        gauge(e, "redis_memory_used_peak_bytes", "Peak of used_memory", n.peak)?;
        gauge(e, "redis_memory_used_rss_bytes", "Resident set size", n.rss)?;
        gauge(e, "redis_memory_used_startup_bytes", "used_memory once the node had started", n.startup)?;
        gauge(e, "redis_memory_max_bytes", "maxmemory (0: no limit)", n.maxmemory)?;
        let lua: usize = self.shards.iter().map(|s| s.lua).sum();
        gauge(e, "redis_memory_used_lua_bytes", "Heap of the threads' Lua VMs (used_memory_lua)", lua as u64)?;
        // Persistence.
        gauge(e, "redis_loading_dump_file", "Whether a snapshot or journal is loading", flag(n.loading))?;
        gauge(e, "redis_rdb_changes_since_last_save", "Writes since the last snapshot", n.changes)?;
        gauge(e, "redis_rdb_last_save_timestamp_seconds", "Time of the last successful snapshot, Unix seconds", n.last_save)?;
        gauge(e, "redis_rdb_bgsave_in_progress", "Whether a snapshot is being written", flag(n.bgsave_running))?;
        gauge(e, "redis_rdb_last_bgsave_status", "Whether the last snapshot succeeded", flag(n.last_bgsave_ok))?;
        gauge(e, "redis_rdb_last_bgsave_duration_sec", "Seconds the last snapshot took (-1: none yet)", n.last_bgsave_secs)?;
        gauge(e, "redis_aof_enabled", "Whether the append-only journal is on", flag(n.aof))?;
        gauge(e, "redis_aof_rewrite_in_progress", "Whether the journal is being rewritten", flag(n.aof_rewriting))?;
        gauge(e, "redis_aof_last_bgrewrite_status", "Whether the last journal rewrite succeeded", flag(n.aof_rewrite_ok))?;
        gauge(e, "redis_aof_last_write_status", "Whether the last journal write succeeded", flag(n.aof_write_ok))?;
        // Stats.
        let sum = |f: fn(&ShardStats) -> u64| self.shards.iter().map(|s| f(&s.stats)).sum::<u64>();
        counter(e, "redis_commands_processed", "Commands run", sum(|s| s.commands))?;
        gauge(e, "redis_instantaneous_ops_per_sec", "Commands per second lately", self.shards.iter().map(|s| s.ops).sum::<u64>())?;
        counter(e, "redis_net_input_bytes", "Bytes read from clients", sum(|s| s.net_input_bytes))?;
        counter(e, "redis_net_output_bytes", "Bytes written to clients", sum(|s| s.net_output_bytes))?;
        counter(e, "redis_expired_keys", "Keys deleted because their TTL passed", sum(|s| s.expired_keys))?;
        counter(e, "redis_evicted_keys", "Keys evicted to stay under maxmemory", sum(|s| s.evicted_keys))?;
        counter(e, "redis_keyspace_hits", "Key lookups that found the key", sum(|s| s.keyspace_hits))?;
        counter(e, "redis_keyspace_misses", "Key lookups that did not find the key", sum(|s| s.keyspace_misses))?;
        counter(e, "redis_cpu_user_seconds", "User CPU time of the process", n.cpu.0)?;
        counter(e, "redis_cpu_sys_seconds", "System CPU time of the process", n.cpu.1)?;
        gauge(e, "redis_pubsub_channels", "Channels with subscribers", n.pubsub_channels as u64)?;
        gauge(e, "redis_pubsub_patterns", "Pattern subscriptions", n.pubsub_patterns as u64)?;
        gauge(e, "redis_slowlog_length", "Entries in the slow log", n.slowlog as u64)?;
        self.encode_commands(e)?;
        self.encode_keyspace(e)?;
        self.encode_shards(e)?;
        self.encode_cluster(e)
    }
}

impl Scrape {
    /// The Prometheus text of these figures.
    fn text(self) -> Result<String, ()> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).map_err(|_| ())?;
        Ok(text)
    }

    fn encode_commands(&self, e: Enc) -> std::fmt::Result {
        let used = || specs().iter().zip(&self.cmds.cmds).filter(|(_, c)| c.calls > 0 || c.rejected > 0 || c.failed > 0);
        let counter_of = |f: fn(&crate::commands::stats::CmdStat) -> u64| used().map(move |(s, c)| (s.name.to_string(), f(c)));
        labelled(e, MetricType::Counter, "redis_commands", "Calls per command", "cmd", counter_of(|c| c.calls))?;
        let secs = used().map(|(s, c)| (s.name.to_string(), c.nanos as f64 / 1e9));
        labelled(e, MetricType::Counter, "redis_commands_duration_seconds", "Seconds spent per command", "cmd", secs)?;
        labelled(
            e,
            MetricType::Counter,
            "redis_commands_rejected_calls",
            "Calls refused before running",
            "cmd",
            counter_of(|c| c.rejected),
        )?;
        labelled(e, MetricType::Counter, "redis_commands_failed_calls", "Calls that replied an error", "cmd", counter_of(|c| c.failed))?;
        let errors = self.cmds.errors.iter().map(|(code, n)| (code.clone(), *n));
        labelled(e, MetricType::Counter, "redis_errors", "Error replies by error code", "err", errors)?;
        // Per-command latency, from the histograms INFO latencystats and
        // LATENCY HISTOGRAM read (kept while latency-tracking is on).
        let mut m = e.encode_descriptor(
            "damselfly_command_latency_seconds",
            "Command latency (recorded while latency-tracking is on)",
            None,
            MetricType::Histogram,
        )?;
        let bounds: Vec<u64> = BUCKETS_US.iter().map(|us| us * 1000).collect();
        for (spec, c) in specs().iter().zip(&self.cmds.cmds) {
            let Some(h) = c.hist.as_ref().filter(|h| h.total > 0) else { continue };
            let counts = h.per_bound(&bounds);
            let buckets: Vec<(f64, u64)> = BUCKETS_US.iter().map(|us| *us as f64 / 1e6).zip(counts).collect();
            let labels = [("cmd", spec.name)];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(c.nanos as f64 / 1e9, h.total, &buckets, None)?;
        }
        Ok(())
    }

    fn encode_keyspace(&self, e: Enc) -> std::fmt::Result {
        let ndb = self.shards.iter().map(|s| s.dbs.len()).max().unwrap_or(0);
        let mut dbs = Vec::new();
        for db in 0..ndb {
            let (mut keys, mut expiring, mut ttl_sum) = (0u64, 0u64, 0u128);
            for s in &self.shards {
                let (k, x, avg) = s.dbs.get(db).copied().unwrap_or((0, 0, 0));
                keys += k as u64;
                expiring += x as u64;
                ttl_sum += u128::from(avg) * x as u128;
            }
            if keys > 0 {
                let avg = if expiring > 0 { (ttl_sum / u128::from(expiring)) as f64 / 1000.0 } else { 0.0 };
                dbs.push((format!("db{db}"), keys, expiring, avg));
            }
        }
        let keys = dbs.iter().map(|d| (d.0.clone(), d.1));
        labelled(e, MetricType::Gauge, "redis_db_keys", "Keys per database", "db", keys)?;
        let expiring = dbs.iter().map(|d| (d.0.clone(), d.2));
        labelled(e, MetricType::Gauge, "redis_db_keys_expiring", "Keys with a TTL per database", "db", expiring)?;
        let ttl = dbs.iter().map(|d| (d.0.clone(), d.3));
        labelled(e, MetricType::Gauge, "redis_db_avg_ttl_seconds", "Average TTL of the keys that have one", "db", ttl)
    }

    fn encode_shards(&self, e: Enc) -> std::fmt::Result {
        let per = |f: fn(&ShardFigures) -> u64| self.shards.iter().enumerate().map(move |(i, s)| (i.to_string(), f(s)));
        labelled(
            e,
            MetricType::Gauge,
            "damselfly_shard_keys",
            "Keys held by each shard",
            "shard",
            per(|s| s.dbs.iter().map(|d| d.0 as u64).sum()),
        )?;
        labelled(
            e,
            MetricType::Gauge,
            "damselfly_shard_queue_depth",
            "Work waiting for each shard: jobs from other threads not yet received, and work queued behind a transaction's lock",
            "shard",
            per(|s| s.backlog as u64),
        )?;
        let busy = self.shards.iter().enumerate().map(|(i, s)| (i.to_string(), s.busy));
        labelled(e, MetricType::Counter, "damselfly_shard_busy_seconds", "CPU time of each shard's thread", "shard", busy)?;
        labelled(
            e,
            MetricType::Counter,
            "damselfly_shard_commands",
            "Commands run by each shard thread's connections",
            "shard",
            per(|s| s.stats.commands),
        )?;
        labelled(
            e,
            MetricType::Counter,
            "damselfly_shard_hops",
            "Jobs each shard ran for another thread (cross-shard hops)",
            "shard",
            per(|s| s.stats.hops),
        )?;
        labelled(
            e,
            MetricType::Counter,
            "damselfly_shard_lock_waits",
            "Work that waited for a shard a transaction held",
            "shard",
            per(|s| s.stats.lock_waits),
        )
    }

    fn encode_cluster(&self, e: Enc) -> std::fmt::Result {
        let Some((raft, mig)) = &self.cluster else { return Ok(()) };
        gauge(e, "damselfly_raft_term", "Current Raft term", raft.term)?;
        gauge(e, "damselfly_raft_is_leader", "Whether this node leads the metadata group", flag(raft.is_leader))?;
        gauge(e, "damselfly_raft_has_leader", "Whether this node knows a leader", flag(raft.leader.is_some()))?;
        let mut m = e.encode_descriptor("damselfly_raft_leader", "The leader's Raft id, as a label", None, MetricType::Gauge)?;
        if let Some(l) = raft.leader {
            let id = l.to_string();
            m.encode_family(&[("leader_id", id.as_str())])?.encode_gauge(&1u64)?;
        }
        let mut m = e.encode_descriptor("damselfly_raft_state", "This node's Raft role, as a label", None, MetricType::Gauge)?;
        m.encode_family(&[("state", raft.state)])?.encode_gauge(&1u64)?;
        if let Some(i) = raft.committed {
            gauge(e, "damselfly_raft_commit_index", "Last committed log index", i)?;
        }
        if let Some(i) = raft.last_applied {
            gauge(e, "damselfly_raft_last_applied_index", "Last log index applied to the cluster configuration", i)?;
        }
        if let Some(i) = raft.last_log_index {
            gauge(e, "damselfly_raft_last_log_index", "Last log index stored", i)?;
        }
        gauge(e, "damselfly_raft_voters", "Voting members of the metadata group", raft.voters as u64)?;
        counter(e, "damselfly_migration_keys_sent", "Keys this node sent to migration targets", mig.keys_sent)?;
        counter(e, "damselfly_migration_bytes_sent", "Bytes of keys this node sent to migration targets", mig.bytes_sent)?;
        counter(e, "damselfly_migrations_completed", "Slot migrations this node completed as the source", mig.completed)?;
        if let Some(p) = mig.last_pause_secs {
            gauge(e, "damselfly_migration_last_pause_seconds", "How long the last completed migration held writes to its slots", p)?;
        }
        gauge(e, "damselfly_migration_running", "Whether this node runs a slot migration as the source", flag(mig.phase.is_some()))?;
        let mut m =
            e.encode_descriptor("damselfly_migration_phase", "The running migration's phase, as a label", None, MetricType::Gauge)?;
        if let Some(p) = mig.phase.filter(|p| !p.is_empty()) {
            m.encode_family(&[("phase", p)])?.encode_gauge(&1u64)?;
        }
        Ok(())
    }
}

/// The bind address of the endpoint: the node's first bind address.
pub fn bind_addr(bind: &[String], port: u16) -> String {
    let host = bind.first().map_or("127.0.0.1", |s| s.as_str());
    let mut a = String::new();
    if host.contains(':') {
        let _ = write!(a, "[{host}]:{port}");
    } else {
        let _ = write!(a, "{host}:{port}");
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::stats::{index, CmdStat};
    use crate::shard::latency::Hist;

    #[test]
    fn bind_addresses() {
        assert_eq!(bind_addr(&[], 9121), "127.0.0.1:9121");
        assert_eq!(bind_addr(&["0.0.0.0".into(), "::1".into()], 9121), "0.0.0.0:9121");
        assert_eq!(bind_addr(&["::".into()], 9121), "[::]:9121");
    }

    #[test]
    fn figures_are_encoded_with_exporter_names() {
        let get = crate::commands::lookup(b"get").expect("get");
        let mut cmds = Stats::default();
        cmds.cmds.resize(specs().len(), CmdStat::default());
        let mut hist = Hist::default();
        for ns in [3_000, 3_000, 700_000] {
            hist.record(ns);
        }
        cmds.cmds[index(get)] = CmdStat { calls: 3, nanos: 706_000, rejected: 0, failed: 1, hist: Some(hist) };
        cmds.errors.push(("WRONGTYPE".into(), 1));
        let shard = |keys, hops| ShardFigures {
            stats: ShardStats { hops, keyspace_hits: 2, ..Default::default() },
            dbs: vec![(keys, 1, 5_000), (0, 0, 0)],
            ..Default::default()
        };
        let scrape = Scrape { node: NodeFigures::default(), shards: vec![shard(3, 7), shard(4, 0)], cmds, cluster: None };
        let text = scrape.text().expect("encodes");
        for line in [
            "# TYPE redis_commands_total counter",
            "redis_commands_total{cmd=\"get\"} 3",
            "redis_commands_duration_seconds_total{cmd=\"get\"} 0.000706",
            "redis_commands_failed_calls_total{cmd=\"get\"} 1",
            "redis_errors_total{err=\"WRONGTYPE\"} 1",
            "redis_keyspace_hits_total 4",
            "redis_db_keys{db=\"db0\"} 7",
            "redis_db_keys_expiring{db=\"db0\"} 2",
            "redis_db_avg_ttl_seconds{db=\"db0\"} 5.0",
            "damselfly_shard_hops_total{shard=\"0\"} 7",
            "damselfly_shard_keys{shard=\"1\"} 4",
            "# TYPE damselfly_command_latency_seconds histogram",
            "damselfly_command_latency_seconds_bucket{cmd=\"get\",le=\"2e-06\"} 0",
            "damselfly_command_latency_seconds_bucket{cmd=\"get\",le=\"4e-06\"} 2",
            "damselfly_command_latency_seconds_bucket{cmd=\"get\",le=\"0.001024\"} 3",
            "damselfly_command_latency_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 3",
            "damselfly_command_latency_seconds_count{cmd=\"get\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        // Empty databases and commands never called are left out; no
        // cluster figures in standalone mode.
        assert!(!text.contains("db=\"db1\"") && !text.contains("cmd=\"set\"") && !text.contains("damselfly_raft"));
    }
}
