//! Settings of the process itself, with Redis's names, defaults and
//! meaning, and what applying them does to the process: `daemonize`,
//! `pidfile`, `tcp-backlog`, `unixsocket`, `unixsocketperm`, `disable-thp`,
//! `set-proc-title` (start-up only, as in Redis), `oom-score-adj`, `oom-score-adj-values`,
//! `proc-title-template` and `loglevel` (also at run time),
//! `always-show-logo`; and `jemalloc-bg-thread`, which concerns jemalloc's
//! purging thread: the allocator here is mimalloc, which has none, so the
//! value is kept and reported and changes nothing (as in a redis-server
//! built without jemalloc). A stock redis.conf sets all of them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use super::values::{yes_no, yes_no_text};
use super::ConfigError;

/// `crash-log-enabled` (yes): a fatal signal writes a crash report to the
/// log first (`server::crash`, which reads it from its signal handler).
pub static CRASH_LOG: AtomicBool = AtomicBool::new(true);

/// `use-exit-on-panic` (no; hidden, as Redis's): a panic (a Rust panic,
/// DEBUG PANIC) ends the process with exit status 1 after its report
/// instead of aborting (no core dump; test harnesses count the exit).
pub static EXIT_ON_PANIC: AtomicBool = AtomicBool::new(false);

pub struct ProcessConfig {
    pub daemonize: AtomicBool,
    pub pidfile: Mutex<String>,
    pub tcp_backlog: AtomicU32,
    /// The path of a Unix socket clients may connect to (none when empty).
    pub unixsocket: Mutex<String>,
    /// Its permissions (0: as the umask leaves them).
    pub unixsocketperm: AtomicU32,
    pub disable_thp: AtomicBool,
    pub set_proc_title: AtomicBool,
    pub proc_title_template: Mutex<String>,
    /// 0 `no`, 1 `relative` (`yes`), 2 `absolute`.
    pub oom_score_adj: AtomicU8,
    /// For a primary, a replica, and a background child (there is none
    /// here: snapshots do not fork).
    pub oom_score_adj_values: Mutex<[i32; 3]>,
    pub loglevel: Mutex<String>,
    pub always_show_logo: AtomicBool,
    pub jemalloc_bg_thread: AtomicBool,
    /// `supervised`: 0 `no`, 1 `upstart`, 2 `systemd`, 3 `auto`.
    pub supervised: AtomicU8,
    /// `shutdown-on-sigint`, `shutdown-on-sigterm`: `shutdown::*` bits
    /// (0: `default`).
    pub shutdown_on_sigint: AtomicU8,
    pub shutdown_on_sigterm: AtomicU8,
    /// `shutdown-timeout`: seconds a shutdown waits for lagging replicas.
    pub shutdown_timeout: AtomicU32,
}

/// What a shutdown does, as SHUTDOWN's options and the
/// `shutdown-on-sig*` settings say it.
pub mod shutdown {
    pub const SAVE: u8 = 1;
    pub const NOSAVE: u8 = 2;
    pub const NOW: u8 = 4;
    pub const FORCE: u8 = 8;
    /// The words, in the order Redis lists them.
    pub const WORDS: [(&str, u8); 4] = [("save", SAVE), ("nosave", NOSAVE), ("now", NOW), ("force", FORCE)];
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            daemonize: AtomicBool::new(false),
            pidfile: Mutex::new(String::new()),
            tcp_backlog: AtomicU32::new(511),
            unixsocket: Mutex::new(String::new()),
            unixsocketperm: AtomicU32::new(0),
            disable_thp: AtomicBool::new(true),
            set_proc_title: AtomicBool::new(true),
            proc_title_template: Mutex::new(DEFAULT_TEMPLATE.into()),
            oom_score_adj: AtomicU8::new(0),
            oom_score_adj_values: Mutex::new([0, 200, 800]),
            loglevel: Mutex::new("notice".into()),
            always_show_logo: AtomicBool::new(false),
            jemalloc_bg_thread: AtomicBool::new(true),
            supervised: AtomicU8::new(0),
            shutdown_on_sigint: AtomicU8::new(0),
            shutdown_on_sigterm: AtomicU8::new(0),
            shutdown_timeout: AtomicU32::new(10),
        }
    }
}

/// `shutdown-on-sig*`'s value: `default`, or words among `save`,
/// `nosave`, `now`, `force` (not both `save` and `nosave`).
fn shutdown_flags(value: &str) -> Result<u8, ConfigError> {
    let mut flags = 0;
    for w in value.split_whitespace() {
        flags |= match shutdown::WORDS.iter().find(|(n, _)| n.eq_ignore_ascii_case(w)) {
            Some((_, bit)) => *bit,
            None if w.eq_ignore_ascii_case("default") => 0,
            None => return Err(ConfigError::Invalid("argument(s) must be one of the following: default, save, nosave, now, force".into())),
        };
    }
    if flags & shutdown::SAVE != 0 && flags & shutdown::NOSAVE != 0 {
        return Err(ConfigError::Invalid("can't be both save and nosave".into()));
    }
    Ok(flags)
}

fn shutdown_text(flags: u8) -> String {
    let words: Vec<&str> = shutdown::WORDS.iter().filter(|(_, b)| flags & b != 0).map(|(n, _)| *n).collect();
    if words.is_empty() {
        "default".into()
    } else {
        words.join(" ")
    }
}

/// The role `oom-score-adj` was last applied for (a replica's value, or
/// a primary's).
static REPLICA: AtomicBool = AtomicBool::new(false);

const DEFAULT_TEMPLATE: &str = "{title} {listen-addr} {server-mode}";
const OOM_MODES: [&str; 3] = ["no", "relative", "absolute"];
const SUPERVISED: [&str; 4] = ["no", "upstart", "systemd", "auto"];
/// Redis's levels, and ours (what `--loglevel` has always taken).
const LEVELS: [&str; 10] = ["debug", "verbose", "notice", "warning", "nothing", "trace", "info", "warn", "error", "off"];

/// Changes the log's level at run time (installed by the binary, which
/// owns the log).
pub static LOG_LEVEL: OnceLock<LevelSetter> = OnceLock::new();

pub type LevelSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The filter a log level name stands for: Redis's `debug`, `verbose`,
/// `notice`, `warning` and `nothing`, or a filter of our own.
pub fn log_filter(level: &str) -> &str {
    match level {
        "verbose" => "debug",
        "notice" => "info",
        "warning" => "warn",
        "nothing" => "off",
        other => other,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProcessConfig {
    pub fn owns(name: &str) -> bool {
        Self::start_up_only(name)
            || matches!(
                name,
                "oom-score-adj"
                    | "oom-score-adj-values"
                    | "proc-title-template"
                    | "loglevel"
                    | "jemalloc-bg-thread"
                    | "shutdown-on-sigint"
                    | "shutdown-on-sigterm"
                    | "shutdown-timeout"
                    | "crash-log-enabled"
                    | "use-exit-on-panic"
            )
    }

    /// Redis takes these at start-up only.
    pub fn start_up_only(name: &str) -> bool {
        matches!(
            name,
            "daemonize"
                | "pidfile"
                | "tcp-backlog"
                | "unixsocket"
                | "unixsocketperm"
                | "disable-thp"
                | "set-proc-title"
                | "always-show-logo"
                | "supervised"
        )
    }

    /// Sets a parameter; `start_up` when it comes from the config file
    /// or the command line (CONFIG SET refuses the start-up-only ones).
    pub fn set(&self, name: &str, value: &str, start_up: bool) -> Result<(), ConfigError> {
        if Self::start_up_only(name) && !start_up {
            return Err(ConfigError::Immutable("can't set immutable config".into()));
        }
        match name {
            "daemonize" => self.daemonize.store(yes_no(value)?, Relaxed),
            "pidfile" => *lock(&self.pidfile) = value.to_string(),
            "tcp-backlog" => self.tcp_backlog.store(super::int_between(value, 0, i32::MAX as u64)? as u32, Relaxed),
            "unixsocket" => *lock(&self.unixsocket) = value.to_string(),
            "unixsocketperm" => {
                // Octal, as chmod takes it (Redis's OCTAL_CONFIG).
                let perm = u32::from_str_radix(value.trim(), 8)
                    .ok()
                    .filter(|p| *p <= 0o777)
                    .ok_or_else(|| ConfigError::Invalid("argument must be between 0 and 777 (octal)".into()))?;
                self.unixsocketperm.store(perm, Relaxed);
            }
            "disable-thp" => self.disable_thp.store(yes_no(value)?, Relaxed),
            "set-proc-title" => self.set_proc_title.store(yes_no(value)?, Relaxed),
            "always-show-logo" => self.always_show_logo.store(yes_no(value)?, Relaxed),
            "jemalloc-bg-thread" => self.jemalloc_bg_thread.store(yes_no(value)?, Relaxed),
            "shutdown-on-sigint" => self.shutdown_on_sigint.store(shutdown_flags(value)?, Relaxed),
            "shutdown-on-sigterm" => self.shutdown_on_sigterm.store(shutdown_flags(value)?, Relaxed),
            "shutdown-timeout" => self.shutdown_timeout.store(super::int_between(value, 0, i32::MAX as u64)? as u32, Relaxed),
            "crash-log-enabled" => CRASH_LOG.store(yes_no(value)?, Relaxed),
            "use-exit-on-panic" => EXIT_ON_PANIC.store(yes_no(value)?, Relaxed),
            "supervised" => self.supervised.store(super::values::one_of(value, &SUPERVISED)? as u8, Relaxed),
            "proc-title-template" => {
                check_template(value)?;
                *lock(&self.proc_title_template) = value.to_string();
                if !start_up {
                    self.refresh_title();
                }
            }
            "oom-score-adj" => {
                let v = value.to_ascii_lowercase();
                let mode = match v.as_str() {
                    "no" => 0,
                    "yes" | "relative" => 1,
                    "absolute" => 2,
                    _ => return Err(ConfigError::Invalid("argument(s) must be one of the following: no, yes, relative, absolute".into())),
                };
                self.oom_score_adj.store(mode, Relaxed);
                self.oom_score_changed(start_up)?;
            }
            "oom-score-adj-values" => {
                let v: Vec<i32> = value.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                if v.len() != 3 || value.split_whitespace().count() != 3 {
                    return Err(ConfigError::Invalid("Invalid oom-score-adj-values".into()));
                }
                if !v.iter().all(|n| (-2000..=2000).contains(n)) {
                    return Err(ConfigError::Invalid("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()));
                }
                *lock(&self.oom_score_adj_values) = [v[0], v[1], v[2]];
                self.oom_score_changed(start_up)?;
            }
            _ => {
                let v = value.to_ascii_lowercase();
                if !LEVELS.contains(&v.as_str()) {
                    return Err(ConfigError::Invalid(
                        "argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into(),
                    ));
                }
                if !start_up {
                    if let Some(set) = LOG_LEVEL.get() {
                        set(log_filter(&v)).map_err(ConfigError::Invalid)?;
                    }
                }
                *lock(&self.loglevel) = v;
            }
        }
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        let values = lock(&self.oom_score_adj_values).map(|n| n.to_string()).join(" ");
        vec![
            ("daemonize".into(), yes_no_text(self.daemonize.load(Relaxed)).into()),
            ("pidfile".into(), lock(&self.pidfile).clone()),
            ("tcp-backlog".into(), self.tcp_backlog.load(Relaxed).to_string()),
            ("unixsocket".into(), lock(&self.unixsocket).clone()),
            ("unixsocketperm".into(), format!("{:o}", self.unixsocketperm.load(Relaxed))),
            ("disable-thp".into(), yes_no_text(self.disable_thp.load(Relaxed)).into()),
            ("set-proc-title".into(), yes_no_text(self.set_proc_title.load(Relaxed)).into()),
            ("proc-title-template".into(), lock(&self.proc_title_template).clone()),
            ("oom-score-adj".into(), OOM_MODES[self.oom_score_adj.load(Relaxed).min(2) as usize].into()),
            ("oom-score-adj-values".into(), values),
            ("loglevel".into(), lock(&self.loglevel).clone()),
            ("always-show-logo".into(), yes_no_text(self.always_show_logo.load(Relaxed)).into()),
            ("jemalloc-bg-thread".into(), yes_no_text(self.jemalloc_bg_thread.load(Relaxed)).into()),
            ("crash-log-enabled".into(), yes_no_text(CRASH_LOG.load(Relaxed)).into()),
            ("use-exit-on-panic".into(), yes_no_text(EXIT_ON_PANIC.load(Relaxed)).into()),
            ("supervised".into(), SUPERVISED[self.supervised.load(Relaxed).min(3) as usize].into()),
            ("shutdown-on-sigint".into(), shutdown_text(self.shutdown_on_sigint.load(Relaxed))),
            ("shutdown-on-sigterm".into(), shutdown_text(self.shutdown_on_sigterm.load(Relaxed))),
            ("shutdown-timeout".into(), self.shutdown_timeout.load(Relaxed).to_string()),
        ]
    }

    /// CONFIG SET of `oom-score-adj` or its values applies them at once
    /// for the node's current role (Redis's error when it cannot).
    fn oom_score_changed(&self, start_up: bool) -> Result<(), ConfigError> {
        if start_up {
            return Ok(());
        }
        self.apply_oom_score(REPLICA.load(Relaxed)).map_err(|e| {
            tracing::warn!("{e}");
            ConfigError::Invalid("Failed to set current oom_score_adj. Check server logs.".into())
        })
    }

    /// Applies `oom-score-adj` to the process for its role (Linux's
    /// /proc/self/oom_score_adj, as Redis does): the score the process
    /// has when the setting is first turned on is kept as the base; under
    /// `relative` the role's value is added to it, under `absolute` the
    /// value replaces it, and turning the setting off puts the base back
    /// (with it off and never on, the score is left alone).
    pub fn apply_oom_score(&self, replica: bool) -> Result<(), String> {
        /// The base score while this process adjusts its own.
        static BASE: Mutex<Option<i32>> = Mutex::new(None);
        const PATH: &str = "/proc/self/oom_score_adj";
        let read = || std::fs::read_to_string(PATH).ok().and_then(|s| s.trim().parse::<i32>().ok());
        REPLICA.store(replica, Relaxed);
        let value = lock(&self.oom_score_adj_values)[replica as usize];
        let mut base = lock(&BASE);
        let score = match self.oom_score_adj.load(Relaxed) {
            0 => match base.take() {
                Some(b) => b,
                None => return Ok(()),
            },
            mode => {
                let b = *base.get_or_insert_with(|| read().unwrap_or(0));
                if mode == 1 {
                    (b + value).clamp(-1000, 1000)
                } else {
                    value.clamp(-1000, 1000)
                }
            }
        };
        if read() == Some(score) {
            return Ok(());
        }
        std::fs::write(PATH, score.to_string()).map_err(|e| format!("Unable to write oom_score_adj: {e}"))
    }

    /// The process title `proc-title-template` describes, with
    /// `{title}` the program name, `{listen-addr}` the first bound
    /// address and port (`unixsocket:<path>` with no TCP port),
    /// `{server-mode}` `[cluster]` or nothing, `{port}`, `{tls-port}`,
    /// `{unixsocket}`, `{config-file}`.
    pub fn title(&self, vars: &TitleVars) -> String {
        let t = lock(&self.proc_title_template).clone();
        let mut out = t
            .replace("{title}", &vars.title)
            .replace("{listen-addr}", &vars.listen_addr)
            .replace("{server-mode}", if vars.cluster { "[cluster]" } else { "" })
            .replace("{port}", &vars.port.to_string())
            .replace("{tls-port}", &vars.tls_port.to_string())
            .replace("{config-file}", &vars.config_file)
            .replace("{unixsocket}", &lock(&self.unixsocket));
        out.truncate(out.trim_end().len());
        out
    }

    /// Sets the title again after the template changed (when titles are
    /// on and the process has set one).
    fn refresh_title(&self) {
        if let Some(vars) = TITLE_VARS.get() {
            if self.set_proc_title.load(Relaxed) {
                set_title(&self.title(vars));
            }
        }
    }
}

/// `supervised`: tells the service manager the node is ready (its data
/// loaded), as Redis does — systemd through the datagram socket in
/// `NOTIFY_SOCKET` (`READY=1`), upstart by stopping itself (SIGSTOP) for
/// the manager to resume; `auto` picks whichever the environment shows.
pub fn notify_ready(cfg: &ProcessConfig, status: &str) {
    let mode = match cfg.supervised.load(Relaxed) {
        3 if std::env::var_os("NOTIFY_SOCKET").is_some() => 2,
        3 if std::env::var_os("UPSTART_JOB").is_some() => 1,
        m => m,
    };
    match mode {
        1 => {
            // SAFETY: raising a signal at this process.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        2 => {
            if let Err(e) = systemd_notify(&format!("STATUS={status}\nREADY=1\n")) {
                tracing::warn!("supervised systemd: {e}");
            }
        }
        _ => {}
    }
}

/// Sends `msg` to systemd's notification socket (`NOTIFY_SOCKET`: a path,
/// or an abstract name starting with `@`).
fn systemd_notify(msg: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Err(std::io::Error::other("NOTIFY_SOCKET is not set"));
    };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    #[cfg(target_os = "linux")]
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        return sock.send_to_addr(msg.as_bytes(), &addr).map(|_| ());
    }
    let _ = bytes;
    sock.send_to(msg.as_bytes(), &path).map(|_| ())
}

/// What a title template can name, fixed at start.
pub struct TitleVars {
    pub title: String,
    pub listen_addr: String,
    pub cluster: bool,
    pub port: u16,
    pub tls_port: u16,
    pub config_file: String,
}

pub static TITLE_VARS: OnceLock<TitleVars> = OnceLock::new();

/// Redis refuses a template with unknown or unbalanced `{...}`, or one
/// that names nothing.
fn check_template(t: &str) -> Result<(), ConfigError> {
    const KNOWN: [&str; 7] = ["title", "listen-addr", "server-mode", "port", "tls-port", "unixsocket", "config-file"];
    let bad = || ConfigError::Invalid("template format is invalid or contains unknown variables".into());
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(bad());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(bad)?;
        if !KNOWN.contains(&&after[..close]) {
            return Err(bad());
        }
        rest = &after[close + 1..];
    }
    if t.trim().is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// Replaces the process's command line as `ps` shows it (Linux: the
/// bytes between the kernel's `arg_start` and `arg_end` in
/// /proc/self/stat, where the program's arguments lie), as Redis's
/// setproctitle does; a title longer than the original arguments is
/// cut to their length. Arguments were parsed before this is called.
pub fn set_title(title: &str) {
    #[cfg(target_os = "linux")]
    {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
        // Fields after the parenthesised command name; arg_start is the
        // 48th field of the line, arg_end the 49th.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { return };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(start), Some(end)) =
            (fields.get(45).and_then(|f| f.parse::<usize>().ok()), fields.get(46).and_then(|f| f.parse::<usize>().ok()))
        else {
            return;
        };
        if end <= start + 1 {
            return;
        }
        let room = end - start;
        let bytes = title.as_bytes();
        let n = bytes.len().min(room - 1);
        // SAFETY: [start, end) is this process's argument area, mapped and
        // writable for the life of the process; the arguments were read
        // (and copied) at start-up, and nothing reads them afterwards
        // except the kernel for /proc/self/cmdline.
        unsafe {
            let p = start as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n);
            std::ptr::write_bytes(p.add(n), 0, room - n);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = title;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_defaults_values_and_refusals() {
        let c = ProcessConfig::default();
        let all: std::collections::BTreeMap<_, _> = c.all().into_iter().collect();
        assert_eq!(all["tcp-backlog"], "511");
        assert_eq!(all["oom-score-adj"], "no");
        assert_eq!(all["oom-score-adj-values"], "0 200 800");
        assert_eq!(all["proc-title-template"], DEFAULT_TEMPLATE);
        assert_eq!(all["loglevel"], "notice");
        assert!(c.set("daemonize", "yes", false).is_err());
        c.set("daemonize", "yes", true).unwrap();
        // (At start-up: at run time they would set this test's own score.)
        c.set("oom-score-adj", "yes", true).unwrap();
        assert_eq!(c.all().into_iter().find(|(k, _)| k == "oom-score-adj").unwrap().1, "relative");
        assert!(c.set("oom-score-adj-values", "0 200", true).is_err());
        assert!(c.set("oom-score-adj-values", "0 200 3000", true).is_err());
        c.set("oom-score-adj-values", "-100 100 500", true).unwrap();
        assert!(c.set("loglevel", "loud", true).is_err());
        c.set("loglevel", "WARNING", true).unwrap();
        assert_eq!(log_filter(&lock(&c.loglevel)), "warn");
        assert!(c.set("proc-title-template", "{title} {nope}", true).is_err());
        assert!(c.set("proc-title-template", " ", true).is_err());
        assert!(c.set("proc-title-template", "{title", true).is_err());
        c.set("proc-title-template", "{title} {port}{server-mode}", true).unwrap();
        let vars = TitleVars {
            title: "damselfly".into(),
            listen_addr: "127.0.0.1:6379".into(),
            cluster: true,
            port: 6379,
            tls_port: 0,
            config_file: String::new(),
        };
        assert_eq!(c.title(&vars), "damselfly 6379[cluster]");
        assert_eq!(all["shutdown-on-sigterm"], "default");
        assert_eq!(all["shutdown-timeout"], "10");
        c.set("shutdown-on-sigint", "nosave force now", false).unwrap();
        assert_eq!(shutdown_text(c.shutdown_on_sigint.load(Relaxed)), "nosave now force");
        assert!(c.set("shutdown-on-sigterm", "save nosave", false).is_err());
        assert!(c.set("shutdown-on-sigterm", "later", false).is_err());
        assert_eq!(all["unixsocket"], "");
        assert_eq!(all["unixsocketperm"], "0");
        assert!(c.set("unixsocketperm", "700", false).is_err());
        assert!(c.set("unixsocketperm", "800", true).is_err());
        assert!(c.set("unixsocketperm", "1000", true).is_err());
        c.set("unixsocketperm", "770", true).unwrap();
        assert_eq!(c.unixsocketperm.load(Relaxed), 0o770);
        c.set("unixsocket", "/tmp/d.sock", true).unwrap();
        c.set("proc-title-template", "{title} {unixsocket}", true).unwrap();
        assert_eq!(c.title(&vars), "damselfly /tmp/d.sock");
    }
}
