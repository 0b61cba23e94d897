//! Settings of how values are laid out (Redis's names and defaults):
//! `hll-sparse-max-bytes` (3000), the longest string a HyperLogLog keeps in
//! the sparse layout before it turns dense, for good;
//! `stream-node-max-entries` (100; 0: no limit), the entries of a stream
//! node, the unit approximate trimming (`~`) removes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{int_between, parse_memory, ConfigError};
use crate::types::hll::SPARSE_MAX_DEFAULT;

pub struct Encoding {
    pub hll_sparse_max_bytes: AtomicU64,
    pub stream_node_max_entries: AtomicU64,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding { hll_sparse_max_bytes: AtomicU64::new(SPARSE_MAX_DEFAULT), stream_node_max_entries: AtomicU64::new(100) }
    }
}

impl Encoding {
    pub fn owns(name: &str) -> bool {
        matches!(name, "hll-sparse-max-bytes" | "stream-node-max-entries")
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        if name == "stream-node-max-entries" {
            self.stream_node_max_entries.store(int_between(value, 0, i64::MAX as u64)?, Relaxed);
            return Ok(());
        }
        let n = parse_memory(value).filter(|n| *n <= i64::MAX as u64).ok_or(ConfigError::NotMemory)?;
        self.hll_sparse_max_bytes.store(n, Relaxed);
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        vec![
            ("hll-sparse-max-bytes".into(), self.hll_sparse_max_bytes.load(Relaxed).to_string()),
            ("stream-node-max-entries".into(), self.stream_node_max_entries.load(Relaxed).to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_sparse_max_bytes_takes_memory_values() {
        let e = Encoding::default();
        assert_eq!(e.all()[0], ("hll-sparse-max-bytes".to_string(), "3000".to_string()));
        e.set("hll-sparse-max-bytes", "1kb").unwrap();
        assert_eq!(e.hll_sparse_max_bytes.load(Relaxed), 1024);
        e.set("hll-sparse-max-bytes", "0").unwrap();
        assert!(e.set("hll-sparse-max-bytes", "lots").is_err());
        assert_eq!(e.all()[1], ("stream-node-max-entries".to_string(), "100".to_string()));
        e.set("stream-node-max-entries", "0").unwrap();
        assert_eq!(e.stream_node_max_entries.load(Relaxed), 0);
        assert!(e.set("stream-node-max-entries", "-1").is_err());
    }
}
