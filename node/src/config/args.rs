//! Start-up: the command line (Redis's flag names, `--name value` for any
//! other parameter, the cluster-mode companions of `--cluster`), the
//! config file, and the configuration built from both.

use std::sync::atomic::Ordering::Relaxed;

use clap::Parser;

use super::*;

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
    /// Log level: Redis's debug, verbose, notice (default), warning,
    /// nothing, or error, warn, info, debug, trace (overrides the config
    /// file's `loglevel`; RUST_LOG overrides both).
    #[arg(long)]
    pub loglevel: Option<String>,
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
    /// Parses the command line as redis-server does: an optional config
    /// file first, then options, each `--name` followed by its values (one
    /// argument may also hold the name and its values, `"--maxmemory
    /// 700mb"`; words before the first `--name` form a line of their own,
    /// `loglevel verbose`; a `--name` given alone takes the next argument
    /// as its value even if that starts with `--`, except `--save`, which
    /// is then empty). Options this parser declares go to it; any other
    /// parameter is applied after the config file, as one more line of it
    /// (so `--save 100 100` adds to the file's save points, as in Redis).
    /// Exits with clap's message on an error, as `Args::parse` does.
    pub fn from_argv(argv: impl IntoIterator<Item = String>) -> Args {
        use clap::CommandFactory;
        let cmd = Args::command();
        let declared = |name: &str| cmd.get_arguments().find(|a| a.get_long() == Some(name) && name != "save");
        let mut argv = argv.into_iter();
        let mut own: Vec<String> = argv.next().into_iter().collect();
        let rest: Vec<String> = argv.collect();
        let mut rest = rest.as_slice();
        if let Some(first) = rest.first().filter(|a| !a.starts_with('-')) {
            own.push(first.clone());
            rest = &rest[1..];
        }
        let takes_values = |name: &str| match name {
            "help" | "version" => false,
            n => declared(n).is_none_or(|a| a.get_action().takes_values()),
        };
        let mut params = Vec::new();
        for (name, values) in redis_option_lines(rest, takes_values) {
            match declared(&name) {
                Some(a) if !a.get_action().takes_values() => {
                    own.push(format!("--{name}"));
                    own.extend(values);
                }
                // `--replicaof <host> <port>`: each value its own argument.
                Some(a) if a.get_num_args().is_some_and(|n| n.min_values() > 1) => {
                    own.push(format!("--{name}"));
                    own.extend(values);
                }
                Some(_) => {
                    own.push(format!("--{name}"));
                    if !values.is_empty() {
                        own.push(values.join(" "));
                    }
                }
                None if name == "help" || name == "version" => own.push(format!("--{name}")),
                None => params.push((name.to_ascii_lowercase(), values.join(" "))),
            }
        }
        let mut args = Args::parse_from(own);
        args.params = params;
        args
    }
}

/// Redis's reading of the options after the config file (server.c's
/// `main`): a list of (name, values). `takes_values` says whether a
/// `--name` given alone may take the next argument as its value.
fn redis_option_lines(args: &[String], takes_values: impl Fn(&str) -> bool) -> Vec<(String, Vec<String>)> {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    // Whether the last option has its value: a `--` argument is then a new
    // option, else the value.
    let mut has_value = true;
    for (i, a) in args.iter().enumerate() {
        if has_value && a.starts_with("--") && a.len() > 2 {
            let words: Vec<String> = crate::resp::parse::split_args(a.as_bytes())
                .unwrap_or_else(|| vec![a.as_bytes().to_vec()])
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let mut words = words.into_iter();
            let name = words.next().unwrap_or_default().trim_start_matches("--").to_string();
            let values: Vec<String> = words.collect();
            let alone = values.is_empty();
            let next_is_option = args.get(i + 1).is_none_or(|n| n.starts_with("--"));
            // `--save` alone (last, or before another option) is `save ""`.
            has_value = !alone || !takes_values(&name) || (name.eq_ignore_ascii_case("save") && next_is_option);
            lines.push((name, values));
        } else {
            match lines.last_mut() {
                Some((_, values)) => values.push(a.clone()),
                // Words before any option: a line of their own.
                None => lines.push((a.clone(), Vec::new())),
            }
            has_value = true;
        }
    }
    lines
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

impl Config {
    /// The configuration of a node started with `args`: defaults, then the
    /// config file, then the command line.
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
            renames: Vec::new(),
            key_load_delay: AtomicU64::new(0),
            rdb_key_save_delay: std::sync::atomic::AtomicI64::new(0),
            dir: Mutex::new(std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| ".".into())),
            save: Mutex::new(DEFAULT_SAVE.to_vec()),
            dbfilename: Mutex::new("dump.rdb".into()),
            stop_writes_on_bgsave_error: AtomicBool::new(true),
            rdbcompression: AtomicBool::new(true),
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
            aof: aof::AofConfig::default(),
            process: process::ProcessConfig::default(),
            encoding: encoding::Encoding::default(),
        };
        let mut cfg = cfg;
        // The command line's parameters are more lines of the config file
        // (Redis appends them to its text): `save` lines add up across both.
        let mut saw_save = false;
        if let Some(path) = &args.config_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File(path.clone(), e.to_string()))?;
            cfg.apply_lines(&text, &mut saw_save, 0)?;
            cfg.config_file = std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.clone());
        }
        let lines: String = args.params.iter().map(|(name, value)| super::rewrite::line(name, value) + "\n").collect();
        cfg.apply_lines(&lines, &mut saw_save, 0)?;
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
        if let Some(v) = &args.loglevel {
            cfg.process.set("loglevel", v, true)?;
        }
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
    /// blank lines and `#` comments skipped, words split and unquoted as
    /// Redis splits them (double quotes with escapes, single quotes; a
    /// value of several words is joined with spaces);
    /// `include <path>` applies another file there, as Redis does.
    pub fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        let mut saw_save = false;
        self.apply_lines(text, &mut saw_save, 0)
    }

    fn apply_lines(&mut self, text: &str, saw_save: &mut bool, depth: usize) -> Result<(), ConfigError> {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<String> = crate::resp::parse::split_args(line.as_bytes())
                .ok_or_else(|| ConfigError::Invalid(format!("Unbalanced quotes in configuration line: {line}")))?
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let Some((name, args)) = words.split_first() else { continue };
            let value = args.join(" ");
            let value = value.as_str();
            let name = name.to_ascii_lowercase();
            // Each `save` line adds save points to those of the lines
            // before it (the first replaces the default), as in redis.conf.
            if name == "save" && *saw_save && !value.is_empty() {
                let more = parse_save(value)?;
                self.save.lock().unwrap_or_else(|e| e.into_inner()).extend(more);
                continue;
            }
            *saw_save |= name == "save";
            if name == "include" {
                // Bounded: a file that includes itself stops at the limit.
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(ConfigError::Invalid(format!("include nested deeper than {MAX_INCLUDE_DEPTH} files at {value}")));
                }
                let text = std::fs::read_to_string(value).map_err(|e| ConfigError::File(value.to_string(), e.to_string()))?;
                self.apply_lines(&text, saw_save, depth + 1)?;
                continue;
            }
            // `rename-command <name> <new name>` (`""`: gone).
            if name == "rename-command" {
                match args {
                    [from, to] => self.renames.push((from.clone(), to.clone())),
                    _ => return Err(ConfigError::Invalid("rename-command takes a command name and a new name".into())),
                }
                continue;
            }
            // `replicaof <host> <port>` (or `slaveof`): start as a replica,
            // as `--replicaof` does.
            if name == "replicaof" || name == "slaveof" {
                let port = args.get(1).and_then(|p| p.parse::<u16>().ok()).filter(|&p| p > 0);
                match (args, port) {
                    ([host, _], Some(port)) => self.replicaof = Some((host.to_string(), port)),
                    _ => return Err(ConfigError::Invalid(format!("{name} takes a host and a port"))),
                }
                continue;
            }
            // `user <name> <rules>...`: a user defined in the file (its
            // words, each a rule).
            if name == "user" {
                if args.is_empty() {
                    return Err(ConfigError::Invalid("user directive without a user name".into()));
                }
                self.users.push(args.to_vec());
                continue;
            }
            self.apply_startup(&name, value)?;
        }
        Ok(())
    }

    /// Parameters only settable at start-up; the rest go through `set`.
    pub(super) fn apply_startup(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
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
            name if process::ProcessConfig::owns(name) => self.process.set(name, value, true)?,
            // A fixed parameter given the value it has (a rewritten config
            // file lists them all), Redis's immutable ones included.
            name if self.fixed.get(name).is_some_and(|v| fixed_value_eq(name, v, value)) => {}
            _ => self.set(name, value)?,
        }
        Ok(())
    }
}

/// How deep `include` lines may nest.
const MAX_INCLUDE_DEPTH: usize = 16;
