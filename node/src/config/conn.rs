//! Client connection settings, Redis's names and defaults: `timeout`
//! (seconds a client may stay idle before the server closes it; 0: never)
//! and `tcp-keepalive` (seconds between TCP keepalive probes on client
//! sockets, set when a client connects; 0: off; default 300).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{int_between, ConfigError};

pub struct ConnConfig {
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig { timeout: AtomicU64::new(0), tcp_keepalive: AtomicU64::new(300) }
    }
}

impl ConnConfig {
    pub fn owns(name: &str) -> bool {
        matches!(name, "timeout" | "tcp-keepalive")
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let v = int_between(value, 0, i32::MAX as u64)?;
        match name {
            "timeout" => self.timeout.store(v, Relaxed),
            _ => self.tcp_keepalive.store(v, Relaxed),
        }
        Ok(())
    }

    pub fn all(&self) -> Vec<(String, String)> {
        vec![
            ("timeout".into(), self.timeout.load(Relaxed).to_string()),
            ("tcp-keepalive".into(), self.tcp_keepalive.load(Relaxed).to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_redis_defaults_and_refuse_negative_values() {
        let c = ConnConfig::default();
        assert_eq!(c.all(), vec![("timeout".to_string(), "0".to_string()), ("tcp-keepalive".to_string(), "300".to_string())]);
        c.set("timeout", "70").unwrap();
        c.set("tcp-keepalive", "0").unwrap();
        assert_eq!(c.timeout.load(Relaxed), 70);
        assert_eq!(c.tcp_keepalive.load(Relaxed), 0);
        assert!(c.set("timeout", "-1").is_err());
        assert!(c.set("timeout", "x").is_err());
    }
}
