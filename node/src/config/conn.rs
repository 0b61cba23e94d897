//! Client connection settings, Redis's names and defaults: `timeout`
//! (seconds a client may stay idle before the server closes it; 0: never)
//! and `tcp-keepalive` (seconds between TCP keepalive probes on client
//! sockets, set when a client connects; 0: off; default 300); and
//! `bind-source-addr`, the local address a replica's connection to its
//! primary is made from (empty: the kernel's choice).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::{int_between, ConfigError};

pub struct ConnConfig {
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
    bind_source_addr: Mutex<String>,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig { timeout: AtomicU64::new(0), tcp_keepalive: AtomicU64::new(300), bind_source_addr: Mutex::default() }
    }
}

impl ConnConfig {
    pub fn owns(name: &str) -> bool {
        matches!(name, "timeout" | "tcp-keepalive" | "bind-source-addr")
    }

    /// `bind-source-addr` as an address, when it is one.
    pub fn source_addr(&self) -> Option<std::net::IpAddr> {
        self.bind_source_addr.lock().unwrap_or_else(|e| e.into_inner()).parse().ok()
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        if name == "bind-source-addr" {
            // A string, as Redis takes it; one that is no address leaves
            // the choice to the kernel (Redis's best-effort bind).
            *self.bind_source_addr.lock().unwrap_or_else(|e| e.into_inner()) = value.to_string();
            return Ok(());
        }
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
            ("bind-source-addr".into(), self.bind_source_addr.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_redis_defaults_and_refuse_negative_values() {
        let c = ConnConfig::default();
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(c.all(), pairs(&[("timeout", "0"), ("tcp-keepalive", "300"), ("bind-source-addr", "")]));
        assert_eq!(c.source_addr(), None);
        c.set("bind-source-addr", "127.0.0.2").unwrap();
        assert_eq!(c.source_addr(), Some(std::net::Ipv4Addr::new(127, 0, 0, 2).into()));
        c.set("timeout", "70").unwrap();
        c.set("tcp-keepalive", "0").unwrap();
        assert_eq!(c.timeout.load(Relaxed), 70);
        assert_eq!(c.tcp_keepalive.load(Relaxed), 0);
        assert!(c.set("timeout", "-1").is_err());
        assert!(c.set("timeout", "x").is_err());
    }
}
