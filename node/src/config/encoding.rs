//! Settings of how values are laid out (Redis's names and defaults):
//! `hll-sparse-max-bytes` (3000), the longest string a HyperLogLog keeps in
//! the sparse layout before it turns dense, for good;
//! `stream-node-max-entries` (100; 0: no limit), the entries of a stream
//! node, the unit approximate trimming (`~`) removes;
//! `list-max-listpack-size` (alias `list-max-ziplist-size`, -2) and
//! `list-compress-depth` (0), the node size and compressed middle of lists
//! made from then on (`types::list`); `set-max-intset-entries` (512), the
//! most members of a set held (and written) as an intset (`types::set`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::{int_between, parse_memory, ConfigError};
use crate::types::hll::SPARSE_MAX_DEFAULT;
use crate::types::list::ListShape;
use crate::types::set::SetLimits;

pub struct Encoding {
    pub hll_sparse_max_bytes: AtomicU64,
    pub stream_node_max_entries: AtomicU64,
    list_max_listpack_size: AtomicI64,
    list_compress_depth: AtomicU64,
    set_max_intset_entries: AtomicU64,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            hll_sparse_max_bytes: AtomicU64::new(SPARSE_MAX_DEFAULT),
            stream_node_max_entries: AtomicU64::new(100),
            list_max_listpack_size: AtomicI64::new(-2),
            list_compress_depth: AtomicU64::new(0),
            set_max_intset_entries: AtomicU64::new(512),
        }
    }
}

impl Encoding {
    pub fn owns(name: &str) -> bool {
        matches!(
            name,
            "hll-sparse-max-bytes"
                | "stream-node-max-entries"
                | "list-max-listpack-size"
                | "list-max-ziplist-size"
                | "list-compress-depth"
                | "set-max-intset-entries"
        )
    }

    /// How lists made now are laid out.
    pub fn list_shape(&self) -> ListShape {
        ListShape::new(self.list_max_listpack_size.load(Relaxed), self.list_compress_depth.load(Relaxed))
    }

    /// How sets are encoded.
    pub fn set_limits(&self) -> SetLimits {
        SetLimits { intset_max: self.set_max_intset_entries.load(Relaxed) as usize }
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "set-max-intset-entries" => {
                self.set_max_intset_entries.store(int_between(value, 0, i64::MAX as u64)?, Relaxed);
                return Ok(());
            }
            "stream-node-max-entries" => {
                self.stream_node_max_entries.store(int_between(value, 0, i64::MAX as u64)?, Relaxed);
                return Ok(());
            }
            // Redis takes any int for the fill (and clamps it when used)
            // and 0 to INT_MAX for the depth.
            "list-max-listpack-size" | "list-max-ziplist-size" => {
                let v: i32 = value.trim().parse().map_err(|_| ConfigError::NotInteger)?;
                self.list_max_listpack_size.store(v as i64, Relaxed);
                return Ok(());
            }
            "list-compress-depth" => {
                self.list_compress_depth.store(int_between(value, 0, i32::MAX as u64)?, Relaxed);
                return Ok(());
            }
            _ => {}
        }
        let n = parse_memory(value).filter(|n| *n <= i64::MAX as u64).ok_or(ConfigError::NotMemory)?;
        self.hll_sparse_max_bytes.store(n, Relaxed);
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        vec![
            ("hll-sparse-max-bytes".into(), self.hll_sparse_max_bytes.load(Relaxed).to_string()),
            ("stream-node-max-entries".into(), self.stream_node_max_entries.load(Relaxed).to_string()),
            ("list-max-listpack-size".into(), self.list_max_listpack_size.load(Relaxed).to_string()),
            ("list-max-ziplist-size".into(), self.list_max_listpack_size.load(Relaxed).to_string()),
            ("list-compress-depth".into(), self.list_compress_depth.load(Relaxed).to_string()),
            ("set-max-intset-entries".into(), self.set_max_intset_entries.load(Relaxed).to_string()),
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

    #[test]
    fn list_settings_shape_new_lists() {
        let e = Encoding::default();
        assert_eq!(e.list_shape(), ListShape::default());
        e.set("list-max-ziplist-size", "5").unwrap();
        e.set("list-compress-depth", "2").unwrap();
        assert_eq!(e.list_shape(), ListShape::new(5, 2));
        e.set("list-max-listpack-size", "-100").unwrap();
        assert_eq!(e.list_shape().fill.0, -5, "clamped as Redis clamps it");
        assert!(e.set("list-compress-depth", "-1").is_err());
        assert!(e.set("list-max-listpack-size", "big").is_err());
        let all = e.all();
        assert!(all.contains(&("list-max-ziplist-size".to_string(), "-100".to_string())));
        assert!(all.contains(&("list-compress-depth".to_string(), "2".to_string())));
    }
}
