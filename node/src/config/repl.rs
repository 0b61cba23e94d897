//! Replication settings, Redis's names and defaults: `repl-backlog-size`
//! (1mb; at least 16kb, as Redis stores it), `repl-backlog-ttl` (seconds a
//! primary without replicas keeps its backlog; 0: forever),
//! `replica-read-only` (alias `slave-read-only`), and how full syncs
//! travel: `repl-diskless-sync` (yes: the snapshot streams to replicas
//! that announced `capa eof`, with no file), `repl-diskless-sync-delay`
//! (seconds a diskless sync waits for more replicas to share it),
//! `repl-diskless-sync-max-replicas` (start as soon as that many wait; 0:
//! no limit) and, on a replica, `repl-diskless-load` (what it does with
//! the payload: `disabled` writes it to a file first, `on-empty-db` loads
//! it from the socket when the node holds no key, `swapdb` parses it from
//! the socket while the current data keeps serving). On a primary:
//! `repl-ping-replica-period` (seconds between the PINGs its replication
//! stream carries) and `min-replicas-to-write` / `min-replicas-max-lag`
//! (writes are refused unless that many online replicas acknowledged within
//! the lag, in seconds; either at 0 turns the check off); on a replica,
//! `replica-serve-stale-data` (no: while its link is down it refuses the
//! commands not flagged `stale`, with MASTERDOWN), `replica-priority`
//! (reported in INFO for Sentinel; 100), `replica-lazy-flush` (no: a full
//! sync's old data set is freed before the load goes on; yes: by the lazy
//! free thread) and, on a primary, `repl-disable-tcp-nodelay` (no: the
//! stream to a replica goes out at once; yes: the kernel may gather it into
//! fewer packets, set when the replica's sync starts); `repl-timeout` (60
//! seconds: a replica drops a link its primary sent nothing on for that
//! long, a primary drops an online replica that acknowledged nothing for
//! that long, and a replica that takes none of its diskless payload);
//! `propagation-error-behavior` (what a command that fails in a primary's
//! stream or in the journal being loaded does: `ignore` logs it and goes
//! on, `panic` stops the node, or its loading, `panic-on-replicas` only a
//! replica's stream); on a replica, `replica-announce-ip` and
//! `replica-announce-port` (the address its primary shows for it, in INFO
//! and ROLE, instead of the one the connection comes from: a replica
//! behind NAT or in a container; empty and 0: the real ones) and
//! `replica-announced` (yes: Sentinel lists it; INFO's
//! `replica_announced`). The `slave` spellings are aliases.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use super::values::one_of;
use super::{int_between, parse_memory, yes_no, yes_no_text, ConfigError};

/// Redis's smallest backlog (`CONFIG_REPL_BACKLOG_MIN_SIZE`).
pub const BACKLOG_MIN_SIZE: u64 = 16 * 1024;

/// `repl-diskless-load`'s values, in Redis's order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DisklessLoad {
    Disabled,
    OnEmptyDb,
    Swapdb,
}

impl DisklessLoad {
    const NAMES: [&'static str; 3] = ["disabled", "on-empty-db", "swapdb"];

    fn from_index(i: u8) -> DisklessLoad {
        match i {
            1 => DisklessLoad::OnEmptyDb,
            2 => DisklessLoad::Swapdb,
            _ => DisklessLoad::Disabled,
        }
    }
}

pub struct ReplConfig {
    pub backlog_size: AtomicU64,
    pub backlog_ttl: AtomicU64,
    pub read_only: AtomicBool,
    pub diskless_sync: AtomicBool,
    pub diskless_sync_delay: AtomicU64,
    pub diskless_sync_max_replicas: AtomicU64,
    diskless_load: AtomicU8,
    pub ping_period: AtomicU64,
    pub min_replicas_to_write: AtomicU64,
    pub min_replicas_max_lag: AtomicU64,
    pub serve_stale: AtomicBool,
    pub priority: AtomicU64,
    pub lazy_flush: AtomicBool,
    pub disable_tcp_nodelay: AtomicBool,
    pub timeout: AtomicU64,
    propagation_error: AtomicU8,
    pub announce_ip: Mutex<String>,
    pub announce_port: AtomicU64,
    pub announced: AtomicBool,
}

/// `propagation-error-behavior`'s values, in Redis's order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PropagationError {
    Ignore,
    Panic,
    PanicOnReplicas,
}

impl PropagationError {
    const NAMES: [&'static str; 3] = ["ignore", "panic", "panic-on-replicas"];

    /// Whether a failed command stops the node: from a primary's stream
    /// (`replica`), or from the journal.
    pub fn stops(self, replica: bool) -> bool {
        match self {
            PropagationError::Ignore => false,
            PropagationError::Panic => true,
            PropagationError::PanicOnReplicas => replica,
        }
    }
}

impl Default for ReplConfig {
    fn default() -> Self {
        ReplConfig {
            backlog_size: AtomicU64::new(1 << 20),
            backlog_ttl: AtomicU64::new(3600),
            read_only: AtomicBool::new(true),
            diskless_sync: AtomicBool::new(true),
            diskless_sync_delay: AtomicU64::new(5),
            diskless_sync_max_replicas: AtomicU64::new(0),
            diskless_load: AtomicU8::new(DisklessLoad::Disabled as u8),
            ping_period: AtomicU64::new(10),
            min_replicas_to_write: AtomicU64::new(0),
            min_replicas_max_lag: AtomicU64::new(10),
            serve_stale: AtomicBool::new(true),
            priority: AtomicU64::new(100),
            lazy_flush: AtomicBool::new(false),
            disable_tcp_nodelay: AtomicBool::new(false),
            timeout: AtomicU64::new(60),
            propagation_error: AtomicU8::new(0),
            announce_ip: Mutex::new(String::new()),
            announce_port: AtomicU64::new(0),
            announced: AtomicBool::new(true),
        }
    }
}

impl ReplConfig {
    pub fn owns(name: &str) -> bool {
        matches!(
            name,
            "repl-backlog-size"
                | "repl-backlog-ttl"
                | "replica-read-only"
                | "slave-read-only"
                | "repl-diskless-sync"
                | "repl-diskless-sync-delay"
                | "repl-diskless-sync-max-replicas"
                | "repl-diskless-load"
                | "repl-ping-replica-period"
                | "repl-ping-slave-period"
                | "min-replicas-to-write"
                | "min-slaves-to-write"
                | "min-replicas-max-lag"
                | "min-slaves-max-lag"
                | "replica-serve-stale-data"
                | "slave-serve-stale-data"
                | "replica-priority"
                | "slave-priority"
                | "replica-lazy-flush"
                | "slave-lazy-flush"
                | "repl-disable-tcp-nodelay"
                | "repl-timeout"
                | "propagation-error-behavior"
                | "replica-announce-ip"
                | "slave-announce-ip"
                | "replica-announce-port"
                | "slave-announce-port"
                | "replica-announced"
        )
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "repl-backlog-size" => {
                let n = parse_memory(value).filter(|n| (1..=i64::MAX as u64).contains(n)).ok_or(ConfigError::NotMemory)?;
                self.backlog_size.store(n.max(BACKLOG_MIN_SIZE), Relaxed);
            }
            "repl-backlog-ttl" => self.backlog_ttl.store(int_between(value, 0, i64::MAX as u64)?, Relaxed),
            "repl-diskless-sync" => self.diskless_sync.store(yes_no(value)?, Relaxed),
            "repl-diskless-sync-delay" => self.diskless_sync_delay.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "repl-diskless-sync-max-replicas" => self.diskless_sync_max_replicas.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "repl-diskless-load" => self.diskless_load.store(one_of(value, &DisklessLoad::NAMES)? as u8, Relaxed),
            "repl-ping-replica-period" | "repl-ping-slave-period" => {
                self.ping_period.store(int_between(value, 1, i32::MAX as u64)?, Relaxed)
            }
            "min-replicas-to-write" | "min-slaves-to-write" => {
                self.min_replicas_to_write.store(int_between(value, 0, i32::MAX as u64)?, Relaxed)
            }
            "min-replicas-max-lag" | "min-slaves-max-lag" => {
                self.min_replicas_max_lag.store(int_between(value, 0, i32::MAX as u64)?, Relaxed)
            }
            "replica-serve-stale-data" | "slave-serve-stale-data" => self.serve_stale.store(yes_no(value)?, Relaxed),
            "replica-priority" | "slave-priority" => self.priority.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "replica-lazy-flush" | "slave-lazy-flush" => self.lazy_flush.store(yes_no(value)?, Relaxed),
            "repl-disable-tcp-nodelay" => self.disable_tcp_nodelay.store(yes_no(value)?, Relaxed),
            "repl-timeout" => self.timeout.store(int_between(value, 1, i32::MAX as u64)?, Relaxed),
            "propagation-error-behavior" => self.propagation_error.store(one_of(value, &PropagationError::NAMES)? as u8, Relaxed),
            "replica-announce-ip" | "slave-announce-ip" => *self.announce_ip.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string(),
            "replica-announce-port" | "slave-announce-port" => self.announce_port.store(int_between(value, 0, 65535)?, Relaxed),
            "replica-announced" => self.announced.store(yes_no(value)?, Relaxed),
            _ => self.read_only.store(yes_no(value)?, Relaxed),
        }
        Ok(())
    }

    pub fn announce_ip(&self) -> String {
        self.announce_ip.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn diskless_load(&self) -> DisklessLoad {
        DisklessLoad::from_index(self.diskless_load.load(Relaxed))
    }

    pub fn propagation_error(&self) -> PropagationError {
        match self.propagation_error.load(Relaxed) {
            1 => PropagationError::Panic,
            2 => PropagationError::PanicOnReplicas,
            _ => PropagationError::Ignore,
        }
    }

    pub fn all(&self) -> Vec<(String, String)> {
        let ro = yes_no_text(self.read_only.load(Relaxed)).to_string();
        let ping = self.ping_period.load(Relaxed).to_string();
        let to_write = self.min_replicas_to_write.load(Relaxed).to_string();
        let lag = self.min_replicas_max_lag.load(Relaxed).to_string();
        let stale = yes_no_text(self.serve_stale.load(Relaxed)).to_string();
        vec![
            ("repl-backlog-size".into(), self.backlog_size.load(Relaxed).to_string()),
            ("repl-backlog-ttl".into(), self.backlog_ttl.load(Relaxed).to_string()),
            ("replica-read-only".into(), ro.clone()),
            ("slave-read-only".into(), ro),
            ("repl-diskless-sync".into(), yes_no_text(self.diskless_sync.load(Relaxed)).into()),
            ("repl-diskless-sync-delay".into(), self.diskless_sync_delay.load(Relaxed).to_string()),
            ("repl-diskless-sync-max-replicas".into(), self.diskless_sync_max_replicas.load(Relaxed).to_string()),
            ("repl-diskless-load".into(), DisklessLoad::NAMES[self.diskless_load.load(Relaxed) as usize].into()),
            ("repl-ping-replica-period".into(), ping.clone()),
            ("repl-ping-slave-period".into(), ping),
            ("min-replicas-to-write".into(), to_write.clone()),
            ("min-slaves-to-write".into(), to_write),
            ("min-replicas-max-lag".into(), lag.clone()),
            ("min-slaves-max-lag".into(), lag),
            ("replica-serve-stale-data".into(), stale.clone()),
            ("slave-serve-stale-data".into(), stale),
            ("replica-priority".into(), self.priority.load(Relaxed).to_string()),
            ("slave-priority".into(), self.priority.load(Relaxed).to_string()),
            ("replica-lazy-flush".into(), yes_no_text(self.lazy_flush.load(Relaxed)).into()),
            ("slave-lazy-flush".into(), yes_no_text(self.lazy_flush.load(Relaxed)).into()),
            ("repl-disable-tcp-nodelay".into(), yes_no_text(self.disable_tcp_nodelay.load(Relaxed)).into()),
            ("repl-timeout".into(), self.timeout.load(Relaxed).to_string()),
            ("propagation-error-behavior".into(), PropagationError::NAMES[self.propagation_error.load(Relaxed).min(2) as usize].into()),
            ("replica-announce-ip".into(), self.announce_ip()),
            ("slave-announce-ip".into(), self.announce_ip()),
            ("replica-announce-port".into(), self.announce_port.load(Relaxed).to_string()),
            ("slave-announce-port".into(), self.announce_port.load(Relaxed).to_string()),
            ("replica-announced".into(), yes_no_text(self.announced.load(Relaxed)).into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diskless_settings_take_redis_values_and_refuse_others() {
        let c = ReplConfig::default();
        let get = |c: &ReplConfig, n: &str| c.all().into_iter().find(|(k, _)| k == n).map(|(_, v)| v).unwrap();
        assert_eq!(get(&c, "repl-diskless-sync"), "yes");
        assert_eq!(get(&c, "repl-diskless-sync-delay"), "5");
        assert_eq!(get(&c, "repl-diskless-sync-max-replicas"), "0");
        assert_eq!(get(&c, "repl-diskless-load"), "disabled");
        c.set("repl-diskless-load", "SWAPDB").unwrap();
        assert_eq!(c.diskless_load(), DisklessLoad::Swapdb);
        c.set("repl-diskless-load", "on-empty-db").unwrap();
        assert_eq!(get(&c, "repl-diskless-load"), "on-empty-db");
        let err = c.set("repl-diskless-load", "always").unwrap_err().to_string();
        assert!(err.contains("argument(s) must be one of the following: disabled, on-empty-db, swapdb"), "{err}");
        c.set("repl-diskless-sync", "no").unwrap();
        c.set("repl-diskless-sync-delay", "0").unwrap();
        c.set("repl-diskless-sync-max-replicas", "2").unwrap();
        assert_eq!(get(&c, "repl-diskless-sync"), "no");
        assert_eq!(get(&c, "repl-diskless-sync-max-replicas"), "2");
        assert!(c.set("repl-diskless-sync-delay", "-1").is_err());
        assert!(c.set("repl-diskless-sync", "maybe").is_err());
    }

    #[test]
    fn primary_settings_have_redis_defaults_ranges_and_aliases() {
        let c = ReplConfig::default();
        let get = |c: &ReplConfig, n: &str| c.all().into_iter().find(|(k, _)| k == n).map(|(_, v)| v).unwrap();
        assert_eq!(get(&c, "repl-ping-replica-period"), "10");
        assert_eq!(get(&c, "min-replicas-to-write"), "0");
        assert_eq!(get(&c, "min-replicas-max-lag"), "10");
        c.set("min-slaves-to-write", "2").unwrap();
        c.set("min-replicas-max-lag", "0").unwrap();
        c.set("repl-ping-slave-period", "3600").unwrap();
        assert_eq!(get(&c, "min-replicas-to-write"), "2");
        assert_eq!(get(&c, "min-slaves-max-lag"), "0");
        assert_eq!(get(&c, "repl-ping-replica-period"), "3600");
        assert!(c.set("repl-ping-replica-period", "0").is_err());
        assert!(c.set("min-replicas-to-write", "-1").is_err());
        assert_eq!(get(&c, "replica-serve-stale-data"), "yes");
        c.set("slave-serve-stale-data", "no").unwrap();
        assert_eq!(get(&c, "replica-serve-stale-data"), "no");
        assert!(c.set("replica-serve-stale-data", "maybe").is_err());
        assert_eq!(get(&c, "propagation-error-behavior"), "ignore");
        assert!(!c.propagation_error().stops(true));
        c.set("propagation-error-behavior", "panic-on-replicas").unwrap();
        assert!(c.propagation_error().stops(true) && !c.propagation_error().stops(false));
        c.set("propagation-error-behavior", "PANIC").unwrap();
        assert_eq!(get(&c, "propagation-error-behavior"), "panic");
        assert!(c.set("propagation-error-behavior", "abort").is_err());
    }
}
