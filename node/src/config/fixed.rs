//! The parameters CONFIG SET does not change here: Redis's own immutable
//! ones, ours taken at start-up, and those fixed at the value that
//! describes this server.

/// Parameters Redis tooling reads or sets whose behaviour this server has
/// but does not let change: each is reported with the value that describes
/// what the server does (how encodings are chosen, no lazy freeing,
/// ...), and `CONFIG SET`, the config
/// file and start-up refuse any other value with an error that says so —
/// a setting is never accepted and then ignored. docs/CONFIG.md lists them.
pub(super) const FIXED: &[(&str, &str)] = &[
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
    ("rdbchecksum", "yes"),
    ("cluster-enabled", "no"),
    ("io-threads", "1"),
    // RESTORE payloads and RDB files are always checked whole as they are
    // decoded (every length, encoding and checksum), which is Redis's
    // deep sanitization.
    ("sanitize-dump-payload", "yes"),
    // A crash report has no memory test after it.
    ("crash-memcheck-enabled", "no"),
    // Every client is visited each second whatever their number (idle
    // timeouts, buffers), which is what Redis's dynamic hz ensures.
    ("dynamic-hz", "yes"),
    // New users get no channels, as `reset` gives (Redis 7's default).
    ("acl-pubsub-default", "resetchannels"),
];

/// Start-up-only parameters that CONFIG SET takes when the value is the
/// one they have (see `Config::set`).
pub(super) const SAME_VALUE_ONLY: &[&str] = &["port", "bind", "shards", "metrics-port", "log-format", "tls-port", "tls-cluster"];

/// Parameters Redis lists only when asked for by their exact name
/// (Redis's hidden configs), never for a pattern.
pub(super) const HIDDEN: &[&str] = &["key-load-delay", "rdb-key-save-delay", "use-exit-on-panic"];

/// The settings redis-server 7.0 flags IMMUTABLE_CONFIG (CONFIG SET
/// refuses them with its "can't set immutable config" text) among those
/// fixed here.
pub(super) const REDIS_IMMUTABLE: &[&str] = &[
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
pub(super) fn fixed_value_eq(name: &str, current: &str, value: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(|w| w.to_ascii_lowercase()).collect::<Vec<_>>();
    let _ = name;
    words(current) == words(value)
}
