//! Node configuration: command-line flags (Redis's names), an optional
//! redis.conf-style file, and the runtime parameters CONFIG GET/SET read and
//! change. Parameters that take effect are atomics read on the hot path;
//! the ones this server cannot change yet are reported with the value that
//! describes it and refuse any other (`FIXED`).

pub mod conn;
pub mod encoding;
pub mod repl;
pub mod rewrite;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use clap::Parser;

use crate::types::hash::HashLimits;
use crate::types::zset::ZLimits;

#[derive(Parser, Debug, Clone)]
#[command(name = "damselfly", version, about = "A Redis-compatible, shared-nothing, in-memory data store", args_override_self = true)]
pub struct Args {
    /// Optional redis.conf-style file (`name value` per line).
    pub config_file: Option<String>,
    /// TCP port to listen on.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address(es) to bind, space separated. Default 127.0.0.1.
    #[arg(long)]
    pub bind: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Password a replica AUTHs with on its primary.
    #[arg(long)]
    pub masterauth: Option<String>,
    /// User a replica AUTHs as on its primary (with `--masterauth`).
    #[arg(long)]
    pub masteruser: Option<String>,
    /// ACL users file (Redis's users.acl syntax: `user <name> <rules>...`
    /// per line), loaded at start-up and by ACL LOAD, written by ACL SAVE.
    #[arg(long)]
    pub aclfile: Option<String>,
    /// Protected mode (yes/no, default yes): with no password set, only
    /// clients on the loopback interface are accepted.
    #[arg(long)]
    pub protected_mode: Option<String>,
    /// Number of logical databases (SELECT 0..N-1).
    #[arg(long)]
    pub databases: Option<usize>,
    /// Maximum simultaneous clients.
    #[arg(long)]
    pub maxclients: Option<u64>,
    /// Working directory: snapshots (and, in cluster mode, the node's
    /// identity and Raft state) are kept there.
    #[arg(long)]
    pub dir: Option<String>,
    /// Snapshot save points, Redis's syntax: "<seconds> <changes> ..." (a
    /// snapshot is taken when at least <changes> writes happened within
    /// <seconds>); "" turns automatic snapshots off. Default
    /// "3600 1 300 100 60 10000".
    #[arg(long, allow_hyphen_values = true)]
    pub save: Option<String>,
    /// File name of snapshots, inside `--dir` (default dump.rdb).
    #[arg(long)]
    pub dbfilename: Option<String>,
    /// The append-only journal: yes or no (default).
    #[arg(long)]
    pub appendonly: Option<String>,
    /// When the journal is fsynced: always, everysec (default) or no.
    #[arg(long)]
    pub appendfsync: Option<String>,
    /// Start as a replica of this primary: `--replicaof <host> <port>`.
    #[arg(long, num_args = 2, value_names = ["HOST", "PORT"])]
    pub replicaof: Option<Vec<String>>,
    /// Whether DEBUG may run: no (default), yes, or local (from loopback
    /// clients only).
    #[arg(long)]
    pub enable_debug_command: Option<String>,
    /// Whether MODULE LOAD, LOADEX and UNLOAD may run: no (default), yes,
    /// or local (from loopback clients only). Modules are never loaded
    /// here; allowed, they fail as a failed load fails in Redis.
    #[arg(long)]
    pub enable_module_command: Option<String>,
    /// Whether CONFIG SET may change `dir` and `dbfilename` (where SAVE
    /// writes files): no (default), yes, or local (loopback clients only).
    #[arg(long)]
    pub enable_protected_configs: Option<String>,
    /// Memory limit in bytes (accepts 100mb, 2gb, ...). 0 = unlimited.
    #[arg(long)]
    pub maxmemory: Option<String>,
    /// Number of shard threads; default: one per available core (one in all
    /// on machines with two cores or fewer).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Log level filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub loglevel: String,
    /// Start in cluster mode: serve only the slots the cluster configuration
    /// assigns to this node and redirect the rest (see README, "Cluster").
    #[arg(long)]
    pub cluster: bool,
    /// Cluster node id (40 hex digits); default: the one stored in `--dir`,
    /// or a new random one, stored there.
    #[arg(long, requires = "cluster")]
    pub cluster_node_id: Option<String>,
    /// Host clients and peers reach this node at (MOVED replies, CLUSTER
    /// SLOTS); default: the first `--bind` address.
    #[arg(long, requires = "cluster")]
    pub cluster_advertise_host: Option<String>,
    /// Port of the node's gRPC service (Raft and admin); default: client
    /// port + 10000.
    #[arg(long, requires = "cluster")]
    pub cluster_grpc_port: Option<u16>,
    /// Shared secret of the cluster bus: every gRPC call between nodes and
    /// from cluster-admin must carry it. Without one (and without
    /// `--cluster-secret-file`) the bus is open: firewall its port.
    #[arg(long, requires = "cluster", conflicts_with = "cluster_secret_file")]
    pub cluster_secret: Option<String>,
    /// File holding the cluster bus secret (read at start; the trailing
    /// newline is dropped; an empty secret is refused).
    #[arg(long, requires = "cluster")]
    pub cluster_secret_file: Option<String>,
    /// Any other parameter, as `--name value` (Redis's command-line form:
    /// `--notify-keyspace-events KEA`, `--maxmemory-policy allkeys-lru`),
    /// applied after the config file (`Args::from_argv` collects them).
    #[arg(skip)]
    pub params: Vec<(String, String)>,
}

impl Args {
    /// Parses the command line: the options above, and `--name value` for
    /// any other parameter (Redis's form, applied after the config file).
    /// Exits with clap's message on an error, as `Args::parse` does.
    pub fn from_argv(argv: impl IntoIterator<Item = String>) -> Args {
        use clap::CommandFactory;
        let cmd = Args::command();
        let known = |name: &str| name == "help" || name == "version" || cmd.get_arguments().any(|a| a.get_long() == Some(name));
        let (mut own, mut params) = (Vec::new(), Vec::new());
        let mut it = argv.into_iter();
        own.extend(it.next());
        while let Some(a) = it.next() {
            match a.strip_prefix("--").filter(|n| !n.is_empty() && !n.contains('=') && !known(n)) {
                Some(name) => {
                    let value = it.next().unwrap_or_default();
                    params.push((name.to_ascii_lowercase(), value));
                }
                None => own.push(a),
            }
        }
        let mut args = Args::parse_from(own);
        args.params = params;
        args
    }
}

/// Cluster-mode settings (`--cluster` and its companions).
#[derive(Clone)]
pub struct ClusterArgs {
    pub node_id: Option<String>,
    pub advertise_host: Option<String>,
    pub grpc_port: Option<u16>,
    /// The cluster bus secret, if any.
    pub secret: Option<String>,
}

impl std::fmt::Debug for ClusterArgs {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterArgs")
            .field("node_id", &self.node_id)
            .field("advertise_host", &self.advertise_host)
            .field("grpc_port", &self.grpc_port)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Parameters that have an effect, plus the fixed ones.
pub struct Config {
    /// The client port and the addresses it listens on: `port()` and
    /// `bind()` (CONFIG SET changes them; the listeners follow).
    port: AtomicU16,
    bind: Mutex<Vec<String>>,
    pub databases: usize,
    pub shards: usize,
    pub requirepass: Mutex<Option<String>>,
    /// `masterauth` and `masteruser`: what a replica AUTHs with on its
    /// primary (empty: no AUTH; no user: the default user).
    pub masterauth: Mutex<String>,
    pub masteruser: Mutex<String>,
    pub has_password: AtomicBool,
    /// `protected-mode`: with no password, refuse non-loopback clients.
    pub protected_mode: AtomicBool,
    pub maxclients: AtomicU64,
    pub maxmemory: AtomicU64,
    /// `maxmemory-clients`: bytes, or a percentage of `maxmemory` when
    /// `CLIENTS_PERCENT` is set in it (`clients_limit` says which). 0: none.
    pub maxmemory_clients: AtomicU64,
    /// `maxmemory-policy`, a `Policy` as its index in `Policy::ALL`.
    maxmemory_policy: AtomicU8,
    /// `maxmemory-samples`: keys sampled per eviction.
    pub maxmemory_samples: AtomicU64,
    /// `tracking-table-max-keys`: the keys client-side caching remembers
    /// at most, over all shards (0: no bound; `shard::tracking`).
    pub tracking_table_max_keys: AtomicU64,
    /// `maxmemory-eviction-tenacity` (0..100): how long one command may
    /// spend evicting (`Policy::time_limit_us`).
    pub maxmemory_eviction_tenacity: AtomicU64,
    pub lfu_log_factor: AtomicU64,
    pub lfu_decay_time: AtomicU64,
    /// `client-output-buffer-limit` per class (normal, replica, pubsub).
    pub output_limits: [OutputLimit; 3],
    /// `client-query-buffer-limit`: the most a client's pending input may
    /// hold.
    pub client_query_buffer_limit: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
    /// `lua-time-limit` (alias `busy-reply-threshold`), ms: past it a running
    /// script makes other clients get -BUSY and can be killed. 0: never.
    pub lua_time_limit: AtomicU64,
    /// `lua-memory-limit`, bytes: the most each shard thread's Lua heap
    /// may hold (a script past it fails with a memory error). 0: no limit.
    pub lua_memory_limit: AtomicU64,
    /// `reply-max-bytes`: the most the reply of one command that writes
    /// nothing may take (past it the client gets an error instead). 0: no
    /// limit.
    pub reply_max_bytes: AtomicU64,
    /// `slowlog-log-slower-than`, µs: commands that run at least this long
    /// go to the slow log. Negative: none; 0: every command.
    pub slowlog_log_slower_than: AtomicI64,
    /// `slowlog-max-len`: the slow log keeps this many newest entries.
    pub slowlog_max_len: AtomicU64,
    /// `notify-keyspace-events`: the event classes published
    /// (`keyspace_events` bits).
    pub notify_keyspace_events: AtomicU32,
    /// `latency-monitor-threshold`, ms: events at least this slow are
    /// sampled by the latency monitor; 0: off.
    pub latency_monitor_threshold: AtomicU64,
    /// `latency-tracking`: per-command latency histograms (LATENCY
    /// HISTOGRAM, INFO latencystats).
    pub latency_tracking: AtomicBool,
    /// `latency-tracking-info-percentiles`: what INFO latencystats shows.
    pub latency_percentiles: Mutex<Vec<f64>>,
    /// `acllog-max-len`: the ACL LOG keeps this many newest entries.
    pub acllog_max_len: AtomicU64,
    /// `aclfile`: the ACL users file (empty: none). Start-up only.
    pub aclfile: String,
    /// The config file's `user` directives, each as its words after
    /// `user` (applied to the ACL at start-up).
    pub users: Vec<Vec<String>>,
    /// `key-load-delay`: microseconds to pause after each key loaded from a
    /// snapshot or journal (Redis's test knob for slow loads); 0: none.
    pub key_load_delay: AtomicU64,
    pub dir: Mutex<String>,
    /// Save points: (seconds, changes) pairs.
    pub save: Mutex<Vec<(u64, u64)>>,
    pub dbfilename: Mutex<String>,
    /// `stop-writes-on-bgsave-error`: while the last snapshot failed (and
    /// save points are set), writes get -MISCONF.
    pub stop_writes_on_bgsave_error: AtomicBool,
    /// `enable-debug-command`: "no" (default), "yes" or "local" (loopback
    /// clients only); set at start-up, as in Redis.
    pub enable_debug_command: String,
    /// `enable-module-command`: "no" (default), "yes" or "local"; set at
    /// start-up, as in Redis.
    pub enable_module_command: String,
    /// `enable-protected-configs`: "no" (default), "yes" or "local"; set at
    /// start-up, as in Redis.
    pub enable_protected_configs: String,
    /// `appendonly`: whether the journal is on. CONFIG SET changes it here
    /// and the command layer switches the journal (`persist::aof`).
    pub appendonly: AtomicBool,
    /// `--replicaof`: the primary to follow from the start.
    pub replicaof: Option<(String, u16)>,
    /// `appendfsync`: 0 always, 1 everysec, 2 no.
    appendfsync: std::sync::atomic::AtomicU8,
    /// `appenddirname`, `appendfilename` (start-up only).
    pub appenddirname: String,
    pub appendfilename: String,
    /// `aof-load-truncated`: a journal cut short by a crash loads up to
    /// its last whole command (yes, default) or stops the start.
    pub aof_load_truncated: AtomicBool,
    /// Cluster mode, when started with `--cluster`.
    pub cluster: Option<ClusterArgs>,
    /// `cluster-node-timeout`, ms: a member silent this long is suspected
    /// (`fail?`), and the group then declares it failed.
    pub cluster_node_timeout: AtomicU64,
    /// `cluster-require-full-coverage`: while some slot has no live owner,
    /// the whole cluster refuses keyed commands (`yes`), or only those
    /// slots do (`no`).
    pub cluster_require_full_coverage: AtomicBool,
    /// The config file read at start, as an absolute path ("" when none).
    pub config_file: String,
    /// `metrics-port`: the port of the Prometheus endpoint (`GET
    /// /metrics`); `None` (0) leaves it off. Start-up only.
    pub metrics_port: Option<u16>,
    /// `logfile`: where the log goes ("": standard error). Start-up only.
    pub logfile: String,
    /// `log-format`: `text` (default) or `json` (one object per line).
    pub log_json: bool,
    /// Parameters whose value cannot change here, by name (`FIXED`).
    fixed: BTreeMap<String, String>,
    /// `tls-*`: the TLS port, its files and settings (`tls`).
    pub tls: tls::Tls,
    /// `repl-backlog-*`, `replica-read-only` (`repl`).
    pub repl: repl::ReplConfig,
    /// `timeout`, `tcp-keepalive` (`conn`).
    pub conn: conn::ConnConfig,
    pub encoding: encoding::Encoding,
}

/// The cluster bus secret from `--cluster-secret` or `--cluster-secret-file`.
fn cluster_secret(args: &Args) -> Result<Option<String>, ConfigError> {
    let secret = match (&args.cluster_secret, &args.cluster_secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => damselfly_proto::bus_auth::from_file(path).map_err(ConfigError::Invalid)?,
        (None, None) => return Ok(None),
    };
    damselfly_proto::bus_auth::validate(&secret).map_err(ConfigError::Invalid)?;
    Ok(Some(secret))
}

/// Parameters Redis tooling reads or sets whose behaviour this server has
/// but does not let change: each is reported with the value that describes
/// what the server does (how encodings are chosen, no lazy freeing,
/// ...), and `CONFIG SET`, the config
/// file and start-up refuse any other value with an error that says so —
/// a setting is never accepted and then ignored. docs/CONFIG.md lists them.
const FIXED: &[(&str, &str)] = &[
    ("hz", "10"),
    ("set-max-listpack-entries", "128"),
    ("set-max-listpack-value", "64"),
    ("stream-node-max-bytes", "4096"),
    ("activerehashing", "yes"),
    ("lazyfree-lazy-eviction", "no"),
    ("lazyfree-lazy-expire", "no"),
    ("lazyfree-lazy-server-del", "no"),
    ("lazyfree-lazy-user-del", "no"),
    ("lazyfree-lazy-user-flush", "no"),
    ("rdbcompression", "yes"),
    ("rdbchecksum", "yes"),
    ("daemonize", "no"),
    ("cluster-enabled", "no"),
    ("io-threads", "1"),
    // New users get no channels, as `reset` gives (Redis 7's default).
    ("acl-pubsub-default", "resetchannels"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("argument couldn't be parsed into an integer")]
    NotInteger,
    #[error("argument must be a memory value")]
    NotMemory,
    #[error("can't read config file {0}: {1}")]
    File(String, String),
    #[error("{0}")]
    Immutable(String),
    #[error("'{0}' is fixed at '{1}' in this server (not supported yet)")]
    Fixed(String, String),
    #[error("{0}")]
    Invalid(String),
}

/// The default shard count: one shard thread per core, except on machines
/// with two cores or fewer, where a single shard is faster. There the
/// network stack and the clients need a core too, and a second shard thread
/// only adds cross-thread wake-ups (measured in docs/BENCHMARKS.md: about a
/// third more CPU per request at -P 1 on 2 vCPUs).
pub fn default_shards(cores: usize) -> usize {
    if cores <= 2 {
        1
    } else {
        cores
    }
}

/// The settings redis-server 7.0 flags IMMUTABLE_CONFIG (CONFIG SET
/// refuses them with its "can't set immutable config" text) among those
/// fixed here.
/// Start-up-only parameters that CONFIG SET takes when the value is the
/// one they have (see `Config::set`).
const SAME_VALUE_ONLY: &[&str] = &["port", "bind", "shards", "metrics-port", "log-format", "tls-port", "tls-cluster"];

/// Parameters Redis lists only when asked for by their exact name
/// (Redis's hidden configs), never for a pattern.
const HIDDEN: &[&str] = &["key-load-delay"];

const REDIS_IMMUTABLE: &[&str] = &[
    "rdbchecksum",
    "daemonize",
    "io-threads-do-reads",
    "always-show-logo",
    "set-proc-title",
    "syslog-enabled",
    "cluster-enabled",
    "disable-thp",
    "unixsocket",
    "pidfile",
    "cluster-config-file",
    "syslog-ident",
    "supervised",
    "syslog-facility",
    "io-threads",
    "tcp-backlog",
    "cluster-port",
    "unixsocketperm",
    "socket-mark-id",
];

/// Whether `value` sets a fixed parameter to the value it already has
/// (yes/no case-insensitively, lists of words regardless of spacing).
fn fixed_value_eq(name: &str, current: &str, value: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(|w| w.to_ascii_lowercase()).collect::<Vec<_>>();
    let _ = name;
    words(current) == words(value)
}

/// Parses Redis memory notation: `100`, `1k`, `5mb`, `2GB`, `1gb`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("kb") {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("mb") {
        (n, 1024 * 1024)
    } else if let Some(n) = s.strip_suffix("gb") {
        (n, 1024 * 1024 * 1024)
    } else if let Some(n) = s.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1000 * 1000)
    } else if let Some(n) = s.strip_suffix('g') {
        (n, 1000 * 1000 * 1000)
    } else {
        (&s[..], 1)
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Parameters CONFIG SET changes only as `enable-protected-configs` allows
/// (Redis 7's protected configs): they say where SAVE writes a file.
pub const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// `appendfsync`: when the journal reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before the client gets its reply.
    Always,
    /// Once a second.
    EverySec,
    /// When the kernel writes it.
    No,
}

/// Redis's default save points.
pub const DEFAULT_SAVE: &[(u64, u64)] = &[(3600, 1), (300, 100), (60, 10000)];

/// Parses save points: "<seconds> <changes> ..." pairs; "" is none.
fn parse_save(value: &str) -> Result<Vec<(u64, u64)>, ConfigError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(ConfigError::Invalid("Invalid save parameters".into()));
    }
    words
        .chunks(2)
        .map(|p| match (p[0].parse::<u64>(), p[1].parse::<u64>()) {
            (Ok(secs), Ok(changes)) => Ok((secs, changes)),
            _ => Err(ConfigError::Invalid("Invalid save parameters".into())),
        })
        .collect()
}

fn yes_no_text(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A yes/no parameter's value, as Redis spells it.
fn yes_no(value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(ConfigError::Invalid("argument must be 'yes' or 'no'".into()))
    }
}

/// An integer parameter with Redis's bounds and error text.
fn int_between(value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: i64 = value.trim().parse().map_err(|_| ConfigError::NotInteger)?;
    if n < min as i64 || n as u64 > max {
        return Err(ConfigError::Invalid(format!("argument must be between {min} and {max} inclusive")));
    }
    Ok(n as u64)
}

/// A memory parameter with a lower bound, refused below it as Redis does.
/// Marks a `maxmemory-clients` value as a percentage of `maxmemory`.
pub const CLIENTS_PERCENT: u64 = 1 << 63;

/// A memory size, or `N%` (0 to 100) stored with `CLIENTS_PERCENT`.
fn parse_memory_or_percent(value: &str) -> Result<u64, ConfigError> {
    let invalid = || ConfigError::Invalid("argument must be a memory or percent value".into());
    if let Some(p) = value.strip_suffix('%') {
        let n = p.parse::<u64>().map_err(|_| invalid())?;
        if n > 100 {
            return Err(ConfigError::Invalid("percentage argument must be less or equal to 100".into()));
        }
        return Ok(if n == 0 { 0 } else { CLIENTS_PERCENT | n });
    }
    parse_memory(value).filter(|n| *n < CLIENTS_PERCENT).ok_or_else(invalid)
}

fn memory_or_percent_text(v: u64) -> String {
    if v & CLIENTS_PERCENT != 0 {
        format!("{}%", v & !CLIENTS_PERCENT)
    } else {
        v.to_string()
    }
}

/// A memory limit of our own: 0 (none) or at least 1 MB.
fn limit_or_none(value: &str) -> Result<u64, ConfigError> {
    let n = parse_memory(value).ok_or(ConfigError::NotMemory)?;
    if n != 0 && n < 1 << 20 {
        return Err(ConfigError::Invalid("argument must be 0 (no limit) or at least 1mb".into()));
    }
    Ok(n)
}

fn memory_at_least(value: &str, min: u64) -> Result<u64, ConfigError> {
    let n = parse_memory(value).ok_or(ConfigError::NotMemory)?;
    if n < min {
        return Err(ConfigError::Invalid(format!("argument must be between {min} and {} inclusive", i64::MAX)));
    }
    Ok(n)
}

/// `maxmemory-policy`: what happens when used memory passes `maxmemory`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    NoEviction,
    /// Not one of Redis's: LRU order within frequency classes estimated by
    /// a sketch that remembers evicted keys (`store::sketch`).
    AllKeysTinyLfu,
}

impl Policy {
    /// In Redis's order (its error message lists them so), then ours.
    pub const ALL: [Policy; 9] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::NoEviction,
        Policy::AllKeysTinyLfu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::NoEviction => "noeviction",
            Policy::AllKeysTinyLfu => "allkeys-tinylfu",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    pub fn lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllKeysLfu)
    }
}

/// The classes of `notify-keyspace-events`, as Redis numbers them, and
/// their letters.
pub mod keyspace_events {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class but key misses and new keys.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// The classes and their letters, in the order Redis prints them.
    const LETTERS: &[(u32, char)] = &[
        (GENERIC, 'g'),
        (STRING, '$'),
        (LIST, 'l'),
        (SET, 's'),
        (HASH, 'h'),
        (ZSET, 'z'),
        (EXPIRED, 'x'),
        (EVICTED, 'e'),
        (STREAM, 't'),
        (MODULE, 'd'),
        (NEW, 'n'),
    ];

    /// The bits of a class string (`KEA`, `Kx`, ...); `None` for an unknown
    /// letter.
    pub fn parse(s: &str) -> Option<u32> {
        s.chars().try_fold(0, |flags, c| {
            let bit = match c {
                'A' => ALL,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                'm' => KEY_MISS,
                c => LETTERS.iter().find(|l| l.1 == c)?.0,
            };
            Some(flags | bit)
        })
    }

    /// The class string of `flags`, as CONFIG GET shows it.
    pub fn format(flags: u32) -> String {
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
            if flags & NEW != 0 {
                s.push('n');
            }
        } else {
            s.extend(LETTERS.iter().filter(|l| flags & l.0 != 0).map(|l| l.1));
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// Whether any event would be published: a class and a channel kind.
    pub fn active(flags: u32) -> bool {
        flags & (KEYSPACE | KEYEVENT) != 0 && flags & !(KEYSPACE | KEYEVENT) != 0
    }
}

/// The output-buffer limit of one client class: past `hard` bytes, or past
/// `soft` bytes for `soft_secs` seconds in a row, the client is
/// disconnected. 0 disables a limit.
pub struct OutputLimit {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_secs: AtomicU64,
}

impl OutputLimit {
    const fn new(hard: u64, soft: u64, soft_secs: u64) -> OutputLimit {
        OutputLimit { hard: AtomicU64::new(hard), soft: AtomicU64::new(soft), soft_secs: AtomicU64::new(soft_secs) }
    }
}

/// The classes of `client-output-buffer-limit`, in `Config::output_limits`
/// order.
pub const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
pub const CLASS_NORMAL: usize = 0;
pub const CLASS_PUBSUB: usize = 2;

impl Config {
    /// The client port (0: none; the TLS port may still be open).
    pub fn port(&self) -> u16 {
        self.port.load(Relaxed)
    }

    /// The addresses the client ports listen on.
    pub fn bind(&self) -> Vec<String> {
        self.bind.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `port` or `bind` (`-addr` marks an optional address; a lone `-`
    /// names none). Only the values: CONFIG SET opens the listeners.
    fn set_listen(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        if name == "port" {
            self.port.store(value.parse().map_err(|_| ConfigError::NotInteger)?, Relaxed);
        } else {
            let addrs = value.split_whitespace().map(|s| s.trim_start_matches('-')).filter(|s| !s.is_empty()).map(String::from);
            *self.bind.lock().unwrap_or_else(|e| e.into_inner()) = addrs.collect();
        }
        Ok(())
    }

    /// `maxmemory-clients` in bytes (a percentage is of `maxmemory`; 0:
    /// no limit).
    pub fn clients_limit(&self) -> u64 {
        let v = self.maxmemory_clients.load(Relaxed);
        if v & CLIENTS_PERCENT != 0 {
            self.maxmemory.load(Relaxed) / 100 * (v & !CLIENTS_PERCENT)
        } else {
            v
        }
    }

    pub fn policy(&self) -> Policy {
        Policy::ALL.get(self.maxmemory_policy.load(Relaxed) as usize).copied().unwrap_or(Policy::NoEviction)
    }

    /// `client-output-buffer-limit <class> <hard> <soft> <soft-seconds>
    /// ...`: every group is checked before any applies, as Redis does.
    fn set_output_limits(&self, value: &str) -> Result<(), ConfigError> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err(ConfigError::Invalid("Wrong number of arguments in buffer limit configuration.".into()));
        }
        let mut parsed = Vec::with_capacity(words.len() / 4);
        for g in words.chunks_exact(4) {
            let class = match g[0].to_ascii_lowercase().as_str() {
                "normal" => 0,
                "slave" | "replica" => 1,
                "pubsub" => 2,
                _ => return Err(ConfigError::Invalid("Invalid client class specified in buffer limit configuration.".into())),
            };
            let bad = || ConfigError::Invalid("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
            let hard = parse_memory(g[1]).ok_or_else(bad)?;
            let soft = parse_memory(g[2]).ok_or_else(bad)?;
            let secs: u64 = g[3].parse().map_err(|_| bad())?;
            parsed.push((class, hard, soft, secs));
        }
        for (class, hard, soft, secs) in parsed {
            let l = &self.output_limits[class];
            l.hard.store(hard, Relaxed);
            l.soft.store(soft, Relaxed);
            l.soft_secs.store(secs, Relaxed);
        }
        Ok(())
    }

    fn output_limits_text(&self) -> String {
        let groups: Vec<String> = OUTPUT_CLASSES
            .iter()
            .zip(&self.output_limits)
            .map(|(name, l)| format!("{name} {} {} {}", l.hard.load(Relaxed), l.soft.load(Relaxed), l.soft_secs.load(Relaxed)))
            .collect();
        groups.join(" ")
    }

    /// Protected mode applies: it is on and no password is set, so only
    /// loopback clients may connect.
    pub fn protecting(&self) -> bool {
        self.protected_mode.load(Relaxed) && !self.has_password.load(Relaxed)
    }

    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let cfg = Config {
            port: AtomicU16::new(6379),
            bind: Mutex::new(vec!["127.0.0.1".into()]),
            databases: 16,
            shards: default_shards(cores),
            requirepass: Mutex::new(None),
            masterauth: Mutex::new(String::new()),
            masteruser: Mutex::new(String::new()),
            has_password: AtomicBool::new(false),
            protected_mode: AtomicBool::new(true),
            maxclients: AtomicU64::new(10000),
            maxmemory: AtomicU64::new(0),
            maxmemory_clients: AtomicU64::new(0),
            maxmemory_policy: AtomicU8::new(Policy::NoEviction as u8),
            maxmemory_samples: AtomicU64::new(5),
            tracking_table_max_keys: AtomicU64::new(1_000_000),
            maxmemory_eviction_tenacity: AtomicU64::new(10),
            lfu_log_factor: AtomicU64::new(10),
            lfu_decay_time: AtomicU64::new(1),
            output_limits: [OutputLimit::new(0, 0, 0), OutputLimit::new(256 << 20, 64 << 20, 60), OutputLimit::new(32 << 20, 8 << 20, 60)],
            client_query_buffer_limit: AtomicU64::new(1 << 30),
            proto_max_bulk_len: AtomicU64::new(512 * 1024 * 1024),
            hash_max_listpack_entries: AtomicU64::new(128),
            hash_max_listpack_value: AtomicU64::new(64),
            zset_max_listpack_entries: AtomicU64::new(128),
            zset_max_listpack_value: AtomicU64::new(64),
            lua_time_limit: AtomicU64::new(5000),
            lua_memory_limit: AtomicU64::new(1 << 30),
            reply_max_bytes: AtomicU64::new(1 << 30),
            slowlog_log_slower_than: AtomicI64::new(10000),
            slowlog_max_len: AtomicU64::new(128),
            notify_keyspace_events: AtomicU32::new(0),
            latency_monitor_threshold: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(true),
            latency_percentiles: Mutex::new(vec![50.0, 99.0, 99.9]),
            acllog_max_len: AtomicU64::new(128),
            aclfile: String::new(),
            users: Vec::new(),
            key_load_delay: AtomicU64::new(0),
            dir: Mutex::new(std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| ".".into())),
            save: Mutex::new(DEFAULT_SAVE.to_vec()),
            dbfilename: Mutex::new("dump.rdb".into()),
            stop_writes_on_bgsave_error: AtomicBool::new(true),
            enable_debug_command: "no".into(),
            enable_module_command: "no".into(),
            enable_protected_configs: "no".into(),
            appendonly: AtomicBool::new(false),
            replicaof: None,
            appendfsync: std::sync::atomic::AtomicU8::new(1),
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
            aof_load_truncated: AtomicBool::new(true),
            cluster: None,
            cluster_node_timeout: AtomicU64::new(crate::slot::health::DEFAULT_NODE_TIMEOUT_MS),
            cluster_require_full_coverage: AtomicBool::new(true),
            config_file: String::new(),
            metrics_port: None,
            logfile: String::new(),
            log_json: false,
            fixed: FIXED.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tls: tls::Tls::default(),
            repl: repl::ReplConfig::default(),
            conn: conn::ConnConfig::default(),
            encoding: encoding::Encoding::default(),
        };
        let mut cfg = cfg;
        if let Some(path) = &args.config_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File(path.clone(), e.to_string()))?;
            cfg.apply_file(&text)?;
            cfg.config_file = std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.clone());
        }
        for (name, value) in &args.params {
            cfg.apply_startup(name, value)?;
        }
        if let Some(p) = args.port {
            cfg.port.store(p, Relaxed);
        }
        if let Some(b) = &args.bind {
            cfg.apply_startup("bind", b)?;
        }
        if let Some(p) = &args.masterauth {
            cfg.set("masterauth", p)?;
        }
        if let Some(u) = &args.masteruser {
            cfg.set("masteruser", u)?;
        }
        if let Some(p) = &args.requirepass {
            cfg.set("requirepass", p)?;
        }
        if let Some(f) = &args.aclfile {
            cfg.aclfile = f.clone();
        }
        if let Some(p) = &args.protected_mode {
            cfg.set("protected-mode", p)?;
        }
        if let Some(d) = args.databases {
            cfg.databases = d.max(1);
        }
        if let Some(m) = args.maxclients {
            cfg.maxclients.store(m, Relaxed);
        }
        if let Some(d) = &args.dir {
            cfg.set("dir", d)?;
        }
        if let Some(m) = &args.maxmemory {
            cfg.set("maxmemory", m)?;
        }
        if let Some(v) = &args.save {
            cfg.set("save", v)?;
        }
        if let Some(v) = &args.dbfilename {
            cfg.set("dbfilename", v)?;
        }
        if let Some(v) = &args.replicaof {
            let port = v.get(1).and_then(|p| p.parse::<u16>().ok()).filter(|&p| p > 0);
            match (v.first(), port) {
                (Some(h), Some(p)) => cfg.replicaof = Some((h.clone(), p)),
                _ => return Err(ConfigError::Invalid("--replicaof takes a host and a port".into())),
            }
        }
        if let Some(v) = &args.appendonly {
            cfg.apply_startup("appendonly", v)?;
        }
        if let Some(v) = &args.appendfsync {
            cfg.set("appendfsync", v)?;
        }
        if let Some(v) = &args.enable_protected_configs {
            cfg.apply_startup("enable-protected-configs", v)?;
        }
        if let Some(v) = &args.enable_debug_command {
            cfg.apply_startup("enable-debug-command", v)?;
        }
        if let Some(v) = &args.enable_module_command {
            cfg.apply_startup("enable-module-command", v)?;
        }
        if let Some(s) = args.shards {
            cfg.shards = s.clamp(1, 1024);
        }
        // Logging is set up once, from --loglevel.
        cfg.fixed.insert("loglevel".into(), args.loglevel.clone());
        if args.cluster {
            cfg.cluster = Some(ClusterArgs {
                node_id: args.cluster_node_id.clone(),
                advertise_host: args.cluster_advertise_host.clone(),
                grpc_port: args.cluster_grpc_port,
                secret: cluster_secret(args)?,
            });
            cfg.fixed.insert("cluster-enabled".into(), "yes".into());
        }
        if cfg.tls.params().cluster && cfg.cluster.is_none() {
            return Err(ConfigError::Invalid("tls-cluster needs --cluster".into()));
        }
        cfg.tls.start()?;
        Ok(cfg)
    }

    /// Applies the text of a redis.conf-style file: `name value` per line,
    /// blank lines and `#` comments skipped, surrounding quotes dropped.
    pub fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        let mut saw_save = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim().trim_matches('"');
            let name = name.to_ascii_lowercase();
            // Each `save` line adds save points to those of the lines
            // before it (the first replaces the default), as in redis.conf.
            if name == "save" && saw_save && !value.is_empty() {
                let more = parse_save(value)?;
                self.save.lock().unwrap_or_else(|e| e.into_inner()).extend(more);
                continue;
            }
            saw_save |= name == "save";
            // `user <name> <rules>...`: a user defined in the file (the
            // words as they are, not unquoted as one value).
            if name == "user" {
                let words: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
                if words.is_empty() {
                    return Err(ConfigError::Invalid("user directive without a user name".into()));
                }
                self.users.push(words);
                continue;
            }
            self.apply_startup(&name, value)?;
        }
        Ok(())
    }

    /// Parameters only settable at start-up; the rest go through `set`.
    fn apply_startup(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "port" | "bind" => self.set_listen(name, value)?,
            "aclfile" => self.aclfile = value.to_string(),
            "databases" => self.databases = value.parse::<usize>().map_err(|_| ConfigError::NotInteger)?.max(1),
            "shards" => self.shards = value.parse::<usize>().map_err(|_| ConfigError::NotInteger)?.clamp(1, 1024),
            "metrics-port" => self.metrics_port = Some(value.parse::<u16>().map_err(|_| ConfigError::NotInteger)?).filter(|&p| p != 0),
            "logfile" => self.logfile = value.to_string(),
            "log-format" => {
                self.log_json = match value.to_ascii_lowercase().as_str() {
                    "text" => false,
                    "json" => true,
                    _ => return Err(ConfigError::Invalid("argument(s) must be one of the following: text, json".into())),
                }
            }
            "appendonly" => self.appendonly.store(yes_no(value)?, Relaxed),
            "appenddirname" | "appendfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(ConfigError::Invalid(format!("{name} can't be a path, just a filename")));
                }
                if name == "appenddirname" {
                    self.appenddirname = value.to_string();
                } else {
                    self.appendfilename = value.to_string();
                }
            }
            "enable-debug-command" | "enable-module-command" | "enable-protected-configs" => {
                let v = value.to_ascii_lowercase();
                if !["no", "yes", "local"].contains(&v.as_str()) {
                    return Err(ConfigError::Invalid("argument(s) must be one of the following: no, yes, local".into()));
                }
                match name {
                    "enable-debug-command" => self.enable_debug_command = v,
                    "enable-module-command" => self.enable_module_command = v,
                    _ => self.enable_protected_configs = v,
                }
            }
            name if tls::Tls::owns(name) => self.tls.set(name, value, true)?,
            // A fixed parameter given the value it has (a rewritten config
            // file lists them all), Redis's immutable ones included.
            name if self.fixed.get(name).is_some_and(|v| fixed_value_eq(name, v, value)) => {}
            _ => self.set(name, value)?,
        }
        Ok(())
    }

    /// `appendfsync`.
    pub fn appendfsync(&self) -> Fsync {
        match self.appendfsync.load(Relaxed) {
            0 => Fsync::Always,
            1 => Fsync::EverySec,
            _ => Fsync::No,
        }
    }

    /// The save points as CONFIG GET shows them.
    pub fn save_text(&self) -> String {
        let points = self.save.lock().unwrap_or_else(|e| e.into_inner());
        points.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" ")
    }

    /// The save points.
    pub fn save_points(&self) -> Vec<(u64, u64)> {
        self.save.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where snapshots are written: `dir`/`dbfilename`.
    pub fn rdb_path(&self) -> std::path::PathBuf {
        let dir = self.dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
        std::path::Path::new(&dir).join(&*self.dbfilename.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What values are built with (loads, RESTORE, migration).
    pub fn limits(&self) -> crate::types::Limits {
        crate::types::Limits {
            hash: self.hash_limits(),
            zset: self.zset_limits(),
            list: self.encoding.list_shape(),
            set: self.encoding.set_limits(),
        }
    }

    pub fn hash_limits(&self) -> HashLimits {
        HashLimits {
            max_entries: self.hash_max_listpack_entries.load(Relaxed) as usize,
            max_value: self.hash_max_listpack_value.load(Relaxed) as usize,
        }
    }

    pub fn zset_limits(&self) -> ZLimits {
        ZLimits {
            max_entries: self.zset_max_listpack_entries.load(Relaxed) as usize,
            max_value: self.zset_max_listpack_value.load(Relaxed) as usize,
        }
    }

    /// `latency-tracking-info-percentiles` as Redis prints it (`%f`
    /// trimmed of trailing zeros).
    pub fn percentiles_text(&self) -> String {
        let v = self.latency_percentiles.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().map(|p| crate::util::trim_float(&format!("{p:.6}"))).collect::<Vec<_>>().join(" ")
    }

    /// CONFIG SET of one parameter.
    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        // Parameters taken at start-up here that Redis can change at run
        // time (or that are this server's own): setting one to the value
        // it has changes nothing, so it succeeds (Redis's own immutable
        // ones are refused whatever the value, as Redis refuses them).
        if self.start_up_unchanged(name, value) {
            return Ok(());
        }
        let int = || value.parse::<u64>().map_err(|_| ConfigError::NotInteger);
        match name {
            "requirepass" => {
                let pw = (!value.is_empty()).then(|| value.to_string());
                self.has_password.store(pw.is_some(), Relaxed);
                *self.requirepass.lock().unwrap_or_else(|e| e.into_inner()) = pw;
            }
            "masterauth" => *self.masterauth.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string(),
            "masteruser" => *self.masteruser.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string(),
            "maxclients" => self.maxclients.store(int()?, Relaxed),
            "protected-mode" => self.protected_mode.store(yes_no(value)?, Relaxed),
            "maxmemory" => self.maxmemory.store(parse_memory(value).ok_or(ConfigError::NotMemory)?, Relaxed),
            "maxmemory-clients" => self.maxmemory_clients.store(parse_memory_or_percent(value)?, Relaxed),
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(memory_at_least(value, 1 << 20)?, Relaxed),
            "client-query-buffer-limit" => self.client_query_buffer_limit.store(memory_at_least(value, 1 << 20)?, Relaxed),
            "maxmemory-policy" => {
                let p = Policy::parse(value).ok_or_else(|| {
                    // Redis's list, as its error text has it.
                    let names: Vec<&str> = Policy::ALL[..8].iter().map(|p| p.name()).collect();
                    ConfigError::Invalid(format!("argument(s) must be one of the following: {}", names.join(", ")))
                })?;
                self.maxmemory_policy.store(p as u8, Relaxed);
            }
            "maxmemory-samples" => self.maxmemory_samples.store(int_between(value, 1, i32::MAX as u64)?, Relaxed),
            "tracking-table-max-keys" => self.tracking_table_max_keys.store(int_between(value, 0, i64::MAX as u64)?, Relaxed),
            "maxmemory-eviction-tenacity" => self.maxmemory_eviction_tenacity.store(int_between(value, 0, 100)?, Relaxed),
            "lfu-log-factor" => self.lfu_log_factor.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "lfu-decay-time" => self.lfu_decay_time.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "client-output-buffer-limit" => self.set_output_limits(value)?,
            "hash-max-listpack-entries" | "hash-max-ziplist-entries" => self.hash_max_listpack_entries.store(int()?, Relaxed),
            "hash-max-listpack-value" | "hash-max-ziplist-value" => self.hash_max_listpack_value.store(int()?, Relaxed),
            "zset-max-listpack-entries" | "zset-max-ziplist-entries" => self.zset_max_listpack_entries.store(int()?, Relaxed),
            "zset-max-listpack-value" | "zset-max-ziplist-value" => self.zset_max_listpack_value.store(int()?, Relaxed),
            "lua-time-limit" | "busy-reply-threshold" => self.lua_time_limit.store(int()?, Relaxed),
            "lua-memory-limit" => self.lua_memory_limit.store(limit_or_none(value)?, Relaxed),
            "reply-max-bytes" => self.reply_max_bytes.store(limit_or_none(value)?, Relaxed),
            "cluster-node-timeout" => self.cluster_node_timeout.store(int_between(value, 1, i64::MAX as u64)?, Relaxed),
            "cluster-require-full-coverage" => self.cluster_require_full_coverage.store(yes_no(value)?, Relaxed),
            "slowlog-log-slower-than" => {
                self.slowlog_log_slower_than.store(value.parse::<i64>().map_err(|_| ConfigError::NotInteger)?, Relaxed)
            }
            "slowlog-max-len" => self.slowlog_max_len.store(int()?, Relaxed),
            "notify-keyspace-events" => self.notify_keyspace_events.store(
                keyspace_events::parse(value)
                    .ok_or_else(|| ConfigError::Invalid("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()))?,
                Relaxed,
            ),
            "latency-monitor-threshold" => self.latency_monitor_threshold.store(int_between(value, 0, i64::MAX as u64)?, Relaxed),
            "latency-tracking" => self.latency_tracking.store(yes_no(value)?, Relaxed),
            "latency-tracking-info-percentiles" => {
                let v: Option<Vec<f64>> =
                    value.split_whitespace().map(|p| p.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p))).collect();
                let v = v.ok_or_else(|| ConfigError::Invalid("Invalid latency-tracking-info-percentiles parameters".into()))?;
                *self.latency_percentiles.lock().unwrap_or_else(|e| e.into_inner()) = v;
            }
            "acllog-max-len" => self.acllog_max_len.store(int()?, Relaxed),
            "key-load-delay" => self.key_load_delay.store(int()?, Relaxed),
            "dir" => *self.dir.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string(),
            "save" => *self.save.lock().unwrap_or_else(|e| e.into_inner()) = parse_save(value)?,
            "dbfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(ConfigError::Invalid("dbfilename can't be a path, just a filename".into()));
                }
                *self.dbfilename.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string()
            }
            "stop-writes-on-bgsave-error" => self.stop_writes_on_bgsave_error.store(yes_no(value)?, Relaxed),
            "appendfsync" => {
                let v = match value.to_ascii_lowercase().as_str() {
                    "always" => 0,
                    "everysec" => 1,
                    "no" => 2,
                    _ => return Err(ConfigError::Invalid("argument(s) must be one of the following: always, everysec, no".into())),
                };
                self.appendfsync.store(v, Relaxed);
            }
            "aof-load-truncated" => self.aof_load_truncated.store(yes_no(value)?, Relaxed),
            "appendonly" => self.appendonly.store(yes_no(value)?, Relaxed),
            // A cluster node's client address is in the cluster's map.
            "port" | "bind" if self.cluster.is_some() => {
                return Err(ConfigError::Immutable("can't set immutable config (a cluster node's address is in the cluster map)".into()))
            }
            "port" | "bind" => self.set_listen(name, value)?,
            "databases"
            | "shards"
            | "enable-debug-command"
            | "enable-module-command"
            | "enable-protected-configs"
            | "appenddirname"
            | "appendfilename"
            | "aclfile"
            | "metrics-port"
            | "logfile"
            | "log-format" => return Err(ConfigError::Immutable("can't set immutable config".into())),
            name if tls::Tls::owns(name) => self.tls.set(name, value, false)?,
            name if repl::ReplConfig::owns(name) => self.repl.set(name, value)?,
            name if conn::ConnConfig::owns(name) => self.conn.set(name, value)?,
            name if encoding::Encoding::owns(name) => self.encoding.set(name, value)?,
            _ => match self.fixed.get(name) {
                // Settings redis-server itself takes at start-up only
                // (refused whatever the value, as Redis refuses them).
                Some(_) if REDIS_IMMUTABLE.contains(&name) => return Err(ConfigError::Immutable("can't set immutable config".into())),
                Some(v) if fixed_value_eq(name, v, value) => {}
                Some(v) => return Err(ConfigError::Fixed(name.to_string(), v.clone())),
                None => return Err(ConfigError::Unknown(name.to_string())),
            },
        }
        Ok(())
    }

    /// All parameters with their current values, sorted by name.
    pub fn all(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("port".into(), self.port().to_string()),
            ("bind".into(), self.bind().join(" ")),
            ("databases".into(), self.databases.to_string()),
            ("shards".into(), self.shards.to_string()),
            ("requirepass".into(), self.requirepass.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()),
            ("masterauth".into(), self.masterauth.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            ("masteruser".into(), self.masteruser.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            ("maxclients".into(), self.maxclients.load(Relaxed).to_string()),
            ("protected-mode".into(), if self.protected_mode.load(Relaxed) { "yes" } else { "no" }.into()),
            ("maxmemory".into(), self.maxmemory.load(Relaxed).to_string()),
            ("maxmemory-clients".into(), memory_or_percent_text(self.maxmemory_clients.load(Relaxed))),
            ("proto-max-bulk-len".into(), self.proto_max_bulk_len.load(Relaxed).to_string()),
            ("client-query-buffer-limit".into(), self.client_query_buffer_limit.load(Relaxed).to_string()),
            ("maxmemory-policy".into(), self.policy().name().into()),
            ("maxmemory-samples".into(), self.maxmemory_samples.load(Relaxed).to_string()),
            ("tracking-table-max-keys".into(), self.tracking_table_max_keys.load(Relaxed).to_string()),
            ("maxmemory-eviction-tenacity".into(), self.maxmemory_eviction_tenacity.load(Relaxed).to_string()),
            ("lfu-log-factor".into(), self.lfu_log_factor.load(Relaxed).to_string()),
            ("lfu-decay-time".into(), self.lfu_decay_time.load(Relaxed).to_string()),
            ("client-output-buffer-limit".into(), self.output_limits_text()),
            ("hash-max-listpack-entries".into(), self.hash_max_listpack_entries.load(Relaxed).to_string()),
            ("hash-max-listpack-value".into(), self.hash_max_listpack_value.load(Relaxed).to_string()),
            ("hash-max-ziplist-entries".into(), self.hash_max_listpack_entries.load(Relaxed).to_string()),
            ("hash-max-ziplist-value".into(), self.hash_max_listpack_value.load(Relaxed).to_string()),
            ("zset-max-listpack-entries".into(), self.zset_max_listpack_entries.load(Relaxed).to_string()),
            ("zset-max-listpack-value".into(), self.zset_max_listpack_value.load(Relaxed).to_string()),
            ("zset-max-ziplist-entries".into(), self.zset_max_listpack_entries.load(Relaxed).to_string()),
            ("zset-max-ziplist-value".into(), self.zset_max_listpack_value.load(Relaxed).to_string()),
            ("lua-time-limit".into(), self.lua_time_limit.load(Relaxed).to_string()),
            ("busy-reply-threshold".into(), self.lua_time_limit.load(Relaxed).to_string()),
            ("lua-memory-limit".into(), self.lua_memory_limit.load(Relaxed).to_string()),
            ("reply-max-bytes".into(), self.reply_max_bytes.load(Relaxed).to_string()),
            ("cluster-node-timeout".into(), self.cluster_node_timeout.load(Relaxed).to_string()),
            ("cluster-require-full-coverage".into(), yes_no_text(self.cluster_require_full_coverage.load(Relaxed)).into()),
            ("slowlog-log-slower-than".into(), self.slowlog_log_slower_than.load(Relaxed).to_string()),
            ("slowlog-max-len".into(), self.slowlog_max_len.load(Relaxed).to_string()),
            ("notify-keyspace-events".into(), keyspace_events::format(self.notify_keyspace_events.load(Relaxed))),
            ("latency-monitor-threshold".into(), self.latency_monitor_threshold.load(Relaxed).to_string()),
            ("latency-tracking".into(), yes_no_text(self.latency_tracking.load(Relaxed)).into()),
            ("latency-tracking-info-percentiles".into(), self.percentiles_text()),
            ("acllog-max-len".into(), self.acllog_max_len.load(Relaxed).to_string()),
            ("aclfile".into(), self.aclfile.clone()),
            ("key-load-delay".into(), self.key_load_delay.load(Relaxed).to_string()),
            ("dir".into(), self.dir.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            ("save".into(), self.save_text()),
            ("enable-debug-command".into(), self.enable_debug_command.clone()),
            ("enable-module-command".into(), self.enable_module_command.clone()),
            ("enable-protected-configs".into(), self.enable_protected_configs.clone()),
            ("appendonly".into(), yes_no_text(self.appendonly.load(Relaxed)).into()),
            ("appendfsync".into(), ["always", "everysec", "no"][self.appendfsync.load(Relaxed).min(2) as usize].into()),
            ("appenddirname".into(), self.appenddirname.clone()),
            ("appendfilename".into(), self.appendfilename.clone()),
            ("metrics-port".into(), self.metrics_port.unwrap_or(0).to_string()),
            ("logfile".into(), self.logfile.clone()),
            ("log-format".into(), if self.log_json { "json" } else { "text" }.into()),
            ("aof-load-truncated".into(), yes_no_text(self.aof_load_truncated.load(Relaxed)).into()),
            ("dbfilename".into(), self.dbfilename.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            ("stop-writes-on-bgsave-error".into(), yes_no_text(self.stop_writes_on_bgsave_error.load(Relaxed)).into()),
        ];
        v.extend(self.fixed.iter().map(|(k, v)| (k.clone(), v.clone())));
        v.extend(self.tls.all());
        v.extend(self.repl.all());
        v.extend(self.conn.all());
        v.extend(self.encoding.all());
        v.sort();
        v
    }

    /// Whether `name` is a start-up-only parameter that `value` would not
    /// change (CONFIG SET takes it as a no-op).
    pub fn start_up_unchanged(&self, name: &str, value: &str) -> bool {
        SAME_VALUE_ONLY.contains(&name) && self.get(name.as_bytes()).first().is_some_and(|(_, v)| fixed_value_eq(name, v, value))
    }

    /// The parameters whose names match a glob pattern (a hidden one only
    /// when named exactly).
    pub fn get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        self.all()
            .into_iter()
            .filter(|(k, _)| {
                if HIDDEN.contains(&k.as_str()) {
                    pattern.eq_ignore_ascii_case(k.as_bytes())
                } else {
                    crate::util::glob_match(pattern, k.as_bytes(), true)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_secret_from_flag_or_file() {
        let cfg = |a: &[&str]| Config::from_args(&Args::try_parse_from(a.iter().copied()).unwrap());
        assert_eq!(cfg(&["damselfly", "--cluster"]).unwrap().cluster.unwrap().secret, None);
        let c = cfg(&["damselfly", "--cluster", "--cluster-secret", "abc"]).unwrap().cluster.unwrap();
        assert_eq!(c.secret.as_deref(), Some("abc"));
        assert!(!format!("{c:?}").contains("abc"));
        assert!(cfg(&["damselfly", "--cluster", "--cluster-secret", ""]).is_err());
        let p = std::env::temp_dir().join(format!("damselfly-cfg-secret-{}", std::process::id()));
        std::fs::write(&p, "from-file\n").unwrap();
        let path = p.to_str().unwrap();
        assert_eq!(
            cfg(&["damselfly", "--cluster", "--cluster-secret-file", path]).unwrap().cluster.unwrap().secret.as_deref(),
            Some("from-file")
        );
        std::fs::write(&p, "").unwrap();
        assert!(cfg(&["damselfly", "--cluster", "--cluster-secret-file", path]).is_err());
        let _ = std::fs::remove_file(&p);
        assert!(Args::try_parse_from(["damselfly", "--cluster-secret", "x"]).is_err(), "needs --cluster");
    }

    #[test]
    fn shard_defaults() {
        assert_eq!(default_shards(1), 1);
        assert_eq!(default_shards(2), 1);
        assert_eq!(default_shards(4), 4);
        assert_eq!(default_shards(16), 16);
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("x"), None);
    }

    /// Found by fuzzing: a lone `-` in `bind` became an empty address
    /// (which no listener can bind), and the list no longer read back the
    /// same from CONFIG GET's text.
    #[test]
    fn bind_skips_empty_addresses() {
        let mut cfg = Config::from_args(&Args::parse_from(["damselfly"])).unwrap();
        let file = "bind sssss\x0b\x0b-\x0b\x0b\x0b\x0b\x0b\x0b0\x0b,\0\0\0\0\0\0!\x0b\x0bdataba\x0b\x0b\x03\x0b\x0f\x0b`ss";
        cfg.apply_file(file).unwrap();
        assert!(cfg.bind().iter().all(|a| !a.is_empty()), "{:?}", cfg.bind());
        assert_eq!(cfg.bind()[..2], ["sssss", "0"]);
        cfg.apply_file("bind - 127.0.0.1 -::1").unwrap();
        assert_eq!(cfg.bind(), ["127.0.0.1", "::1"]);
    }

    #[test]
    fn set_and_get() {
        let cfg = Config::from_args(&Args::parse_from(["damselfly"])).unwrap();
        cfg.set("maxmemory", "10mb").unwrap();
        assert_eq!(cfg.get(b"maxmemory"), vec![("maxmemory".into(), "10485760".into())]);
        cfg.set("appendonly", "yes").unwrap();
        assert_eq!(cfg.get(b"appendonly")[0].1, "yes");
        assert!(cfg.set("appendonly", "maybe").is_err());
        cfg.set("appendfsync", "always").unwrap();
        assert_eq!(cfg.appendfsync(), Fsync::Always);
        assert!(cfg.set("appendfsync", "sometimes").is_err());
        assert_eq!(cfg.get(b"client-output-buffer-limit")[0].1, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        cfg.set("client-output-buffer-limit", "pubsub 1mb 2 3 replica 0 0 0").unwrap();
        assert_eq!(cfg.get(b"client-output-buffer-limit")[0].1, "normal 0 0 0 slave 0 0 0 pubsub 1048576 2 3");
        assert!(cfg.set("client-output-buffer-limit", "normal 1 1 1 pubsub 1 2").is_err());
        assert!(cfg.set("client-output-buffer-limit", "normal 5 5 5 foo 1 2 3").is_err());
        assert_eq!(cfg.output_limits[0].hard.load(Relaxed), 0, "nothing applies when a group is wrong");
        assert!(cfg.set("maxmemory-policy", "lru").is_err());
        cfg.set("maxmemory-policy", "ALLKEYS-LFU").unwrap();
        assert_eq!(cfg.policy(), Policy::AllKeysLfu);
        assert_eq!(cfg.get(b"maxmemory-policy")[0].1, "allkeys-lfu");
        assert!(cfg.set("maxmemory-eviction-tenacity", "101").is_err());
        assert!(cfg.set("maxmemory-samples", "0").is_err());
        assert!(cfg.set("proto-max-bulk-len", "1000").is_err());
        assert!(cfg.set("no-such-thing", "1").is_err());
        assert!(cfg.get(b"hash-max-*").len() >= 2);
        assert_eq!(cfg.zset_limits().max_entries, 128);
        assert_eq!(cfg.zset_limits().max_value, 64);
        cfg.set("zset-max-ziplist-entries", "7").unwrap();
        assert_eq!(cfg.get(b"zset-max-listpack-entries")[0].1, "7");
        assert_eq!(cfg.zset_limits().max_entries, 7);
    }
}
