//! Parameter values as Redis writes them: memory sizes, yes/no, bounded
//! integers, save points, `maxmemory-policy`, `notify-keyspace-events`,
//! client output limits.

use std::sync::atomic::AtomicU64;

use super::ConfigError;

/// Parses Redis memory notation: `100`, `1k`, `5mb`, `2GB`, `1gb`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("kb") {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("mb") {
        (n, 1024 * 1024)
    } else if let Some(n) = s.strip_suffix("gb") {
        (n, 1024 * 1024 * 1024)
    } else if let Some(n) = s.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1000 * 1000)
    } else if let Some(n) = s.strip_suffix('g') {
        (n, 1000 * 1000 * 1000)
    } else {
        (&s[..], 1)
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Parameters CONFIG SET changes only as `enable-protected-configs` allows
/// (Redis 7's protected configs): they say where SAVE writes a file.
pub const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// `appendfsync`: when the journal reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before the client gets its reply.
    Always,
    /// Once a second.
    EverySec,
    /// When the kernel writes it.
    No,
}

/// Redis's default save points.
pub const DEFAULT_SAVE: &[(u64, u64)] = &[(3600, 1), (300, 100), (60, 10000)];

/// Parses save points: "<seconds> <changes> ..." pairs; "" is none.
pub(super) fn parse_save(value: &str) -> Result<Vec<(u64, u64)>, ConfigError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(ConfigError::Invalid("Invalid save parameters".into()));
    }
    words
        .chunks(2)
        .map(|p| match (p[0].parse::<u64>(), p[1].parse::<u64>()) {
            (Ok(secs), Ok(changes)) => Ok((secs, changes)),
            _ => Err(ConfigError::Invalid("Invalid save parameters".into())),
        })
        .collect()
}

pub(super) fn yes_no_text(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A yes/no parameter's value, as Redis spells it.
pub(super) fn yes_no(value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(ConfigError::Invalid("argument must be 'yes' or 'no'".into()))
    }
}

/// An enumerated parameter's value: its position in `names`, matched
/// case-insensitively, or Redis's error listing them.
pub(super) fn one_of(value: &str, names: &[&str]) -> Result<usize, ConfigError> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(value.trim()))
        .ok_or_else(|| ConfigError::Invalid(format!("argument(s) must be one of the following: {}", names.join(", "))))
}

/// An integer parameter with Redis's bounds and error text.
pub(super) fn int_between(value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: i64 = value.trim().parse().map_err(|_| ConfigError::NotInteger)?;
    if n < min as i64 || n as u64 > max {
        return Err(ConfigError::Invalid(format!("argument must be between {min} and {max} inclusive")));
    }
    Ok(n as u64)
}

/// A memory parameter with a lower bound, refused below it as Redis does.
/// Marks a `maxmemory-clients` value as a percentage of `maxmemory`.
pub const CLIENTS_PERCENT: u64 = 1 << 63;

/// A memory size, or `N%` (0 to 100) stored with `CLIENTS_PERCENT`.
pub(super) fn parse_memory_or_percent(value: &str) -> Result<u64, ConfigError> {
    let invalid = || ConfigError::Invalid("argument must be a memory or percent value".into());
    if let Some(p) = value.strip_suffix('%') {
        let n = p.parse::<u64>().map_err(|_| invalid())?;
        if n > 100 {
            return Err(ConfigError::Invalid("percentage argument must be less or equal to 100".into()));
        }
        return Ok(if n == 0 { 0 } else { CLIENTS_PERCENT | n });
    }
    parse_memory(value).filter(|n| *n < CLIENTS_PERCENT).ok_or_else(invalid)
}

pub(super) fn memory_or_percent_text(v: u64) -> String {
    if v & CLIENTS_PERCENT != 0 {
        format!("{}%", v & !CLIENTS_PERCENT)
    } else {
        v.to_string()
    }
}

/// A memory limit of our own: 0 (none) or at least 1 MB.
pub(super) fn limit_or_none(value: &str) -> Result<u64, ConfigError> {
    let n = parse_memory(value).ok_or(ConfigError::NotMemory)?;
    if n != 0 && n < 1 << 20 {
        return Err(ConfigError::Invalid("argument must be 0 (no limit) or at least 1mb".into()));
    }
    Ok(n)
}

pub(super) fn memory_at_least(value: &str, min: u64) -> Result<u64, ConfigError> {
    let n = parse_memory(value).ok_or(ConfigError::NotMemory)?;
    if n < min {
        return Err(ConfigError::Invalid(format!("argument must be between {min} and {} inclusive", i64::MAX)));
    }
    Ok(n)
}

/// `maxmemory-policy`: what happens when used memory passes `maxmemory`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    NoEviction,
    /// Not one of Redis's: LRU order within frequency classes estimated by
    /// a sketch that remembers evicted keys (`store::sketch`).
    AllKeysTinyLfu,
}

impl Policy {
    /// In Redis's order (its error message lists them so), then ours.
    pub const ALL: [Policy; 9] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::NoEviction,
        Policy::AllKeysTinyLfu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::NoEviction => "noeviction",
            Policy::AllKeysTinyLfu => "allkeys-tinylfu",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    pub fn lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllKeysLfu)
    }

    /// Victims are drawn at random (no order among keys).
    pub fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// The classes of `notify-keyspace-events`, as Redis numbers them, and
/// their letters.
pub mod keyspace_events {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class but key misses and new keys.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// The classes and their letters, in the order Redis prints them.
    const LETTERS: &[(u32, char)] = &[
        (GENERIC, 'g'),
        (STRING, '$'),
        (LIST, 'l'),
        (SET, 's'),
        (HASH, 'h'),
        (ZSET, 'z'),
        (EXPIRED, 'x'),
        (EVICTED, 'e'),
        (STREAM, 't'),
        (MODULE, 'd'),
        (NEW, 'n'),
    ];

    /// The bits of a class string (`KEA`, `Kx`, ...); `None` for an unknown
    /// letter.
    pub fn parse(s: &str) -> Option<u32> {
        s.chars().try_fold(0, |flags, c| {
            let bit = match c {
                'A' => ALL,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                'm' => KEY_MISS,
                c => LETTERS.iter().find(|l| l.1 == c)?.0,
            };
            Some(flags | bit)
        })
    }

    /// The class string of `flags`, as CONFIG GET shows it.
    pub fn format(flags: u32) -> String {
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
            if flags & NEW != 0 {
                s.push('n');
            }
        } else {
            s.extend(LETTERS.iter().filter(|l| flags & l.0 != 0).map(|l| l.1));
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// Whether any event would be published: a class and a channel kind.
    pub fn active(flags: u32) -> bool {
        flags & (KEYSPACE | KEYEVENT) != 0 && flags & !(KEYSPACE | KEYEVENT) != 0
    }
}

/// The output-buffer limit of one client class: past `hard` bytes, or past
/// `soft` bytes for `soft_secs` seconds in a row, the client is
/// disconnected. 0 disables a limit.
pub struct OutputLimit {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_secs: AtomicU64,
}

impl OutputLimit {
    pub(super) const fn new(hard: u64, soft: u64, soft_secs: u64) -> OutputLimit {
        OutputLimit { hard: AtomicU64::new(hard), soft: AtomicU64::new(soft), soft_secs: AtomicU64::new(soft_secs) }
    }
}

/// The classes of `client-output-buffer-limit`, in `Config::output_limits`
/// order.
pub const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
pub const CLASS_NORMAL: usize = 0;
pub const CLASS_PUBSUB: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("x"), None);
    }
}
