//! Node configuration: command-line flags (Redis's names), an optional
//! redis.conf-style file, and the runtime parameters CONFIG GET/SET read and
//! change. Parameters that take effect are atomics read on the hot path;
//! the ones this server cannot change yet are reported with the value that
//! describes it and refuse any other (`FIXED`).

pub mod aof;
mod args;
pub mod conn;
pub mod encoding;
mod fixed;
pub mod process;
pub mod repl;
pub mod rewrite;
pub mod tls;
mod values;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

pub use args::{default_shards, Args, ClusterArgs};
use fixed::{fixed_value_eq, FIXED, HIDDEN, REDIS_IMMUTABLE, SAME_VALUE_ONLY};
use values::{
    int_between, limit_or_none, memory_at_least, memory_or_percent_text, parse_memory_or_percent, parse_save, yes_no, yes_no_text,
};
pub use values::{
    keyspace_events, parse_memory, Fsync, OutputLimit, Policy, CLASS_NORMAL, CLASS_PUBSUB, CLIENTS_PERCENT, DEFAULT_SAVE, OUTPUT_CLASSES,
    PROTECTED,
};

use crate::types::hash::HashLimits;
use crate::types::zset::ZLimits;

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
    /// The config file's `rename-command` lines (from, to; to "" takes
    /// the command away), applied once before the first command.
    pub renames: Vec<(String, String)>,
    /// `key-load-delay`: microseconds to pause after each key loaded from a
    /// snapshot or journal (Redis's test knob for slow loads); 0: none.
    pub key_load_delay: AtomicU64,
    /// `rdb-key-save-delay`: microseconds to pause after each key a
    /// snapshot writes (Redis's test knob for slow saves and full syncs;
    /// negative -N: one microsecond per N keys); 0: none.
    pub rdb_key_save_delay: std::sync::atomic::AtomicI64,
    pub dir: Mutex<String>,
    /// Save points: (seconds, changes) pairs.
    pub save: Mutex<Vec<(u64, u64)>>,
    pub dbfilename: Mutex<String>,
    /// `stop-writes-on-bgsave-error`: while the last snapshot failed (and
    /// save points are set), writes get -MISCONF.
    pub stop_writes_on_bgsave_error: AtomicBool,
    /// `rdbcompression`: strings LZF-compressed in snapshots and DUMP
    /// payloads (the store reads it through `store::rdb::set_compression`).
    pub rdbcompression: AtomicBool,
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
    /// `auto-aof-rewrite-*` (`aof`).
    pub aof: aof::AofConfig,
    /// `daemonize`, `pidfile`, `loglevel`, ... (`process`).
    pub process: process::ProcessConfig,
    pub encoding: encoding::Encoding,
}

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
            "rdb-key-save-delay" => {
                let v = value.parse::<i32>().map_err(|_| ConfigError::NotInteger)?;
                self.rdb_key_save_delay.store(v as i64, Relaxed);
            }
            "dir" => *self.dir.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string(),
            "save" => *self.save.lock().unwrap_or_else(|e| e.into_inner()) = parse_save(value)?,
            "dbfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(ConfigError::Invalid("dbfilename can't be a path, just a filename".into()));
                }
                *self.dbfilename.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string()
            }
            "stop-writes-on-bgsave-error" => self.stop_writes_on_bgsave_error.store(yes_no(value)?, Relaxed),
            "rdbcompression" => self.rdbcompression.store(yes_no(value)?, Relaxed),
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
            name if aof::AofConfig::owns(name) => self.aof.set(name, value)?,
            name if process::ProcessConfig::owns(name) => self.process.set(name, value, false)?,
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
            ("rdb-key-save-delay".into(), self.rdb_key_save_delay.load(Relaxed).to_string()),
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
            ("rdbcompression".into(), yes_no_text(self.rdbcompression.load(Relaxed)).into()),
        ];
        v.extend(self.fixed.iter().map(|(k, v)| (k.clone(), v.clone())));
        v.extend(self.tls.all());
        v.extend(self.repl.all());
        v.extend(self.conn.all());
        v.extend(self.aof.all());
        v.extend(self.process.all());
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
    use clap::Parser;

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

    /// redis-server's command-line forms (its introspection tests' cases).
    #[test]
    fn command_lines_read_as_redis_reads_them() {
        let from = |argv: &[&str]| {
            let args = Args::from_argv(argv.iter().map(|s| s.to_string()));
            Config::from_args(&args).unwrap()
        };
        let get = |c: &Config, k: &str| c.get(k.as_bytes())[0].1.clone();
        let c = from(&["damselfly", "--maxmemory 700mb", "--maxmemory-policy volatile-lru"]);
        assert_eq!((get(&c, "maxmemory"), get(&c, "maxmemory-policy")), ("734003200".into(), "volatile-lru".into()));
        let file = std::env::temp_dir().join(format!("damselfly-argv-{}", std::process::id()));
        std::fs::write(&file, "save 900 1\n").unwrap();
        let conf = file.to_str().unwrap();
        // Words between the config file and the first option: a line.
        let c = from(&["damselfly", conf, "loglevel", "verbose", "--maxmemory '700mb'", "--maxmemory-policy 'volatile-lru'"]);
        assert_eq!((get(&c, "loglevel"), get(&c, "maxmemory")), ("verbose".into(), "734003200".into()));
        let c = from(&["damselfly", "--proc-title-template", "--my--title--template", "--loglevel", "verbose"]);
        assert_eq!((get(&c, "proc-title-template"), get(&c, "loglevel")), ("--my--title--template".into(), "verbose".into()));
        for argv in [
            &["damselfly", "--save", "--loglevel", "verbose"][..],
            &["damselfly", "--loglevel", "verbose", "--save"],
            &["damselfly", "--save", "", "--loglevel", "verbose"],
        ] {
            let c = from(argv);
            assert_eq!((get(&c, "save"), get(&c, "loglevel")), (String::new(), "verbose".into()), "{argv:?}");
        }
        assert_eq!(get(&from(&["damselfly", "--save", "100", "100"]), "save"), "100 100");
        let dir = std::env::temp_dir().join(format!("damselfly-argv-{}", std::process::id()));
        std::fs::write(
            &dir,
            "save 900 1
",
        )
        .unwrap();
        let conf = dir.to_str().unwrap();
        assert_eq!(get(&from(&["damselfly", conf, "--save", "100", "100"]), "save"), "900 1 100 100");
        assert_eq!(get(&from(&["damselfly", conf, "--save", ""]), "save"), "");
        let _ = std::fs::remove_file(&file);
        // Declared options keep working, values and flags alike.
        let c = from(&["damselfly", "--port", "7001", "--replicaof", "127.0.0.1", "7000", "--requirepass", ""]);
        assert_eq!(c.port(), 7001);
        assert_eq!(c.replicaof, Some(("127.0.0.1".to_string(), 7000)));
        assert!(Args::try_parse_from(["damselfly", "--port", "6379 6380"]).is_err());
    }

    #[test]
    fn shard_defaults() {
        assert_eq!(default_shards(1), 1);
        assert_eq!(default_shards(2), 1);
        assert_eq!(default_shards(4), 4);
        assert_eq!(default_shards(16), 16);
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
