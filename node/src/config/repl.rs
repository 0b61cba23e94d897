//! Replication settings, Redis's names and defaults: `repl-backlog-size`
//! (1mb; at least 16kb, as Redis stores it), `repl-backlog-ttl` (seconds a
//! primary without replicas keeps its backlog; 0: forever) and
//! `replica-read-only` (alias `slave-read-only`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::{int_between, parse_memory, yes_no, yes_no_text, ConfigError};

/// Redis's smallest backlog (`CONFIG_REPL_BACKLOG_MIN_SIZE`).
pub const BACKLOG_MIN_SIZE: u64 = 16 * 1024;

pub struct ReplConfig {
    pub backlog_size: AtomicU64,
    pub backlog_ttl: AtomicU64,
    pub read_only: AtomicBool,
}

impl Default for ReplConfig {
    fn default() -> Self {
        ReplConfig { backlog_size: AtomicU64::new(1 << 20), backlog_ttl: AtomicU64::new(3600), read_only: AtomicBool::new(true) }
    }
}

impl ReplConfig {
    pub fn owns(name: &str) -> bool {
        matches!(name, "repl-backlog-size" | "repl-backlog-ttl" | "replica-read-only" | "slave-read-only")
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "repl-backlog-size" => {
                let n = parse_memory(value).filter(|n| (1..=i64::MAX as u64).contains(n)).ok_or(ConfigError::NotMemory)?;
                self.backlog_size.store(n.max(BACKLOG_MIN_SIZE), Relaxed);
            }
            "repl-backlog-ttl" => self.backlog_ttl.store(int_between(value, 0, i64::MAX as u64)?, Relaxed),
            _ => self.read_only.store(yes_no(value)?, Relaxed),
        }
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        let ro = yes_no_text(self.read_only.load(Relaxed)).to_string();
        vec![
            ("repl-backlog-size".into(), self.backlog_size.load(Relaxed).to_string()),
            ("repl-backlog-ttl".into(), self.backlog_ttl.load(Relaxed).to_string()),
            ("replica-read-only".into(), ro.clone()),
            ("slave-read-only".into(), ro),
        ]
    }
}
