//! Settings of how values are laid out: `hll-sparse-max-bytes` (Redis's
//! name and default, 3000): the longest string a HyperLogLog keeps in the
//! sparse layout before it turns dense, for good.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{parse_memory, ConfigError};
use crate::types::hll::SPARSE_MAX_DEFAULT;

pub struct Encoding {
    pub hll_sparse_max_bytes: AtomicU64,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding { hll_sparse_max_bytes: AtomicU64::new(SPARSE_MAX_DEFAULT) }
    }
}

impl Encoding {
    pub fn owns(name: &str) -> bool {
        name == "hll-sparse-max-bytes"
    }

    pub fn set(&self, _name: &str, value: &str) -> Result<(), ConfigError> {
        let n = parse_memory(value).filter(|n| *n <= i64::MAX as u64).ok_or(ConfigError::NotMemory)?;
        self.hll_sparse_max_bytes.store(n, Relaxed);
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        vec![("hll-sparse-max-bytes".into(), self.hll_sparse_max_bytes.load(Relaxed).to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_sparse_max_bytes_takes_memory_values() {
        let e = Encoding::default();
        assert_eq!(e.all(), vec![("hll-sparse-max-bytes".to_string(), "3000".to_string())]);
        e.set("hll-sparse-max-bytes", "1kb").unwrap();
        assert_eq!(e.hll_sparse_max_bytes.load(Relaxed), 1024);
        e.set("hll-sparse-max-bytes", "0").unwrap();
        assert!(e.set("hll-sparse-max-bytes", "lots").is_err());
    }
}
