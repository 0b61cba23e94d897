//! Settings of the snapshot files' and the append-only journal's upkeep,
//! Redis's names and defaults: `auto-aof-rewrite-percentage` (100) and
//! `auto-aof-rewrite-min-size` (64mb) start a rewrite when the files have
//! grown by that percentage over their size after the last rewrite (or
//! load) and are at least that large (a percentage of 0 turns automatic
//! rewrites off); `no-appendfsync-on-rewrite` (no) leaves the journal
//! unfsynced while a snapshot or rewrite is being written;
//! `aof-rewrite-incremental-fsync` and `rdb-save-incremental-fsync` (yes)
//! fsync a file being written every 4 MB; `rdb-del-sync-files` (no) says
//! whether a snapshot written only to synchronise a replica is deleted
//! afterwards when the node persists nothing (no save points, no journal);
//! `aof-timestamp-enabled` (no) writes a `#TS:<unix seconds>` line into
//! the journal's increment files before the first write of each second
//! (Redis's annotations, which `redis-check-aof --truncate-to-timestamp`
//! reads; never sent to replicas); `aof-use-rdb-preamble` (yes) writes a
//! rewrite's base file as a snapshot, or (no) as the commands that make
//! the data (`<name>.<seq>.base.aof`), as Redis does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::values::{parse_memory, yes_no, yes_no_text};
use super::{int_between, ConfigError};

/// How often a file being written is fsynced with the incremental
/// settings on (Redis's `REDIS_AUTOSYNC_BYTES`).
pub const INCREMENTAL_FSYNC_BYTES: u64 = 4 << 20;

pub struct AofConfig {
    pub rewrite_percentage: AtomicU64,
    pub rewrite_min_size: AtomicU64,
    pub no_fsync_on_rewrite: AtomicBool,
    pub aof_incremental_fsync: AtomicBool,
    pub rdb_incremental_fsync: AtomicBool,
    pub rdb_del_sync_files: AtomicBool,
    pub timestamps: AtomicBool,
    pub rdb_preamble: AtomicBool,
}

impl Default for AofConfig {
    fn default() -> Self {
        AofConfig {
            rewrite_percentage: AtomicU64::new(100),
            rewrite_min_size: AtomicU64::new(64 << 20),
            no_fsync_on_rewrite: AtomicBool::new(false),
            aof_incremental_fsync: AtomicBool::new(true),
            rdb_incremental_fsync: AtomicBool::new(true),
            rdb_del_sync_files: AtomicBool::new(false),
            timestamps: AtomicBool::new(false),
            rdb_preamble: AtomicBool::new(true),
        }
    }
}

impl AofConfig {
    pub fn owns(name: &str) -> bool {
        matches!(
            name,
            "auto-aof-rewrite-percentage"
                | "auto-aof-rewrite-min-size"
                | "no-appendfsync-on-rewrite"
                | "aof-rewrite-incremental-fsync"
                | "rdb-save-incremental-fsync"
                | "rdb-del-sync-files"
                | "aof-timestamp-enabled"
                | "aof-use-rdb-preamble"
        )
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "auto-aof-rewrite-percentage" => self.rewrite_percentage.store(int_between(value, 0, i32::MAX as u64)?, Relaxed),
            "no-appendfsync-on-rewrite" => self.no_fsync_on_rewrite.store(yes_no(value)?, Relaxed),
            "aof-rewrite-incremental-fsync" => self.aof_incremental_fsync.store(yes_no(value)?, Relaxed),
            "rdb-save-incremental-fsync" => self.rdb_incremental_fsync.store(yes_no(value)?, Relaxed),
            "rdb-del-sync-files" => self.rdb_del_sync_files.store(yes_no(value)?, Relaxed),
            "aof-timestamp-enabled" => self.timestamps.store(yes_no(value)?, Relaxed),
            "aof-use-rdb-preamble" => self.rdb_preamble.store(yes_no(value)?, Relaxed),
            _ => {
                let n = parse_memory(value).filter(|&n| n <= i64::MAX as u64).ok_or(ConfigError::NotMemory)?;
                self.rewrite_min_size.store(n, Relaxed);
            }
        }
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        vec![
            ("auto-aof-rewrite-percentage".into(), self.rewrite_percentage.load(Relaxed).to_string()),
            ("auto-aof-rewrite-min-size".into(), self.rewrite_min_size.load(Relaxed).to_string()),
            ("no-appendfsync-on-rewrite".into(), yes_no_text(self.no_fsync_on_rewrite.load(Relaxed)).into()),
            ("aof-rewrite-incremental-fsync".into(), yes_no_text(self.aof_incremental_fsync.load(Relaxed)).into()),
            ("rdb-save-incremental-fsync".into(), yes_no_text(self.rdb_incremental_fsync.load(Relaxed)).into()),
            ("rdb-del-sync-files".into(), yes_no_text(self.rdb_del_sync_files.load(Relaxed)).into()),
            ("aof-timestamp-enabled".into(), yes_no_text(self.timestamps.load(Relaxed)).into()),
            ("aof-use-rdb-preamble".into(), yes_no_text(self.rdb_preamble.load(Relaxed)).into()),
        ]
    }

    /// Redis's rule for an automatic rewrite: the files hold `current`
    /// bytes, `base` after the last rewrite or load; the growth in percent
    /// when it calls for one.
    pub fn rewrite_due(&self, current: u64, base: u64) -> Option<u64> {
        let perc = self.rewrite_percentage.load(Relaxed);
        if perc == 0 || current <= self.rewrite_min_size.load(Relaxed) {
            return None;
        }
        let growth = (current.saturating_mul(100) / base.max(1)).saturating_sub(100);
        (growth >= perc).then_some(growth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_defaults_and_rule() {
        let c = AofConfig::default();
        assert_eq!(c.all()[0].1, "100");
        assert_eq!(c.all()[1].1, "67108864");
        // Below the minimum size nothing is due, whatever the growth.
        assert_eq!(c.rewrite_due(64 << 20, 1), None);
        // Doubled since the last rewrite: due at 100%.
        assert_eq!(c.rewrite_due(200 << 20, 100 << 20), Some(100));
        assert_eq!(c.rewrite_due(199 << 20, 100 << 20), None);
        // No base yet (files turned on empty): counts from one byte.
        assert!(c.rewrite_due(65 << 20, 0).is_some());
        c.set("auto-aof-rewrite-min-size", "1mb").unwrap();
        c.set("auto-aof-rewrite-percentage", "50").unwrap();
        assert_eq!(c.rewrite_due(3 << 20, 2 << 20), Some(50));
        c.set("auto-aof-rewrite-percentage", "0").unwrap();
        assert_eq!(c.rewrite_due(300 << 20, 1 << 20), None);
        assert!(c.set("auto-aof-rewrite-percentage", "-1").is_err());
        let all: std::collections::BTreeMap<_, _> = c.all().into_iter().collect();
        assert_eq!(all["no-appendfsync-on-rewrite"], "no");
        assert_eq!(all["aof-rewrite-incremental-fsync"], "yes");
        assert_eq!(all["rdb-save-incremental-fsync"], "yes");
        assert_eq!(all["rdb-del-sync-files"], "no");
        c.set("rdb-del-sync-files", "yes").unwrap();
        assert!(c.rdb_del_sync_files.load(Relaxed));
        assert!(c.set("no-appendfsync-on-rewrite", "maybe").is_err());
        assert!(c.set("auto-aof-rewrite-min-size", "lots").is_err());
    }
}
