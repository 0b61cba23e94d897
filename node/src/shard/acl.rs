//! The node's ACL users and ACL LOG, as data: Redis 7's model of a user
//! (enabled or not, password hashes, a root selector and more selectors,
//! each with a command bitmap, key patterns and channel patterns). The
//! rules that build users and the permission checks read the command table
//! and live above this layer (`commands::acl`); connections keep an
//! `Arc<User>` and look their user up again when `generation` moves.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

/// A key pattern and the access it grants (`~` both, `%R~` read, `%W~`
/// write).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
    /// How many leading bytes of the pattern are literal (before any of
    /// `*?[\\`): a key must start with them, checked before any globbing.
    pub literal: usize,
}

impl KeyPattern {
    pub fn new(pattern: &[u8], read: bool, write: bool) -> KeyPattern {
        let literal = pattern.iter().position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\')).unwrap_or(pattern.len());
        KeyPattern { pattern: pattern.to_vec(), read, write, literal }
    }

    /// Whether `key` matches (Redis's glob, case-sensitive): the literal
    /// prefix is compared first, a lone `*` after it matches at once.
    #[inline]
    pub fn matches(&self, key: &[u8]) -> bool {
        let (lit, rest) = self.pattern.split_at(self.literal);
        // The first byte inline: most patterns of a user differ there, and
        // a mismatch then costs no call to compare the rest.
        if let Some(&first) = lit.first() {
            if key.first() != Some(&first) {
                return false;
            }
        }
        if !key.starts_with(lit) {
            return false;
        }
        match rest {
            [] => key.len() == lit.len(),
            [b'*'] => true,
            _ => crate::util::glob_match(rest, &key[lit.len()..], false),
        }
    }
}

/// One selector: what a user may run and touch. A user is allowed a
/// command when any of its selectors allows it.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Selector {
    /// One bit per command id (`commands::acl::id`).
    pub commands: Vec<u64>,
    /// Every command, without looking at the bitmap (Redis's
    /// `SELECTOR_FLAG_ALLCOMMANDS`: set by `+@all`, cleared by any removal).
    pub all_commands: bool,
    /// `+@all` was given and not undone by `-@all` (Redis's reserved bit):
    /// described as `+@all` and removals rather than `-@all` and additions.
    pub future: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`),
    /// by command id.
    pub firstargs: Vec<(u16, Vec<String>)>,
    pub all_keys: bool,
    pub keys: Vec<KeyPattern>,
    pub all_channels: bool,
    pub channels: Vec<Vec<u8>>,
}

/// Bits in a command bitmap (Redis's `USER_COMMAND_BITS_COUNT`): command
/// ids stay below it.
pub const COMMAND_BITS: usize = 1024;

impl Selector {
    /// A selector allowing every command (`+@all`), and nothing else.
    pub fn all_commands() -> Selector {
        Selector { commands: vec![u64::MAX; COMMAND_BITS / 64], all_commands: true, future: true, ..Selector::default() }
    }

    #[inline]
    pub fn allows_id(&self, id: usize) -> bool {
        self.commands.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn set_id(&mut self, id: usize, on: bool) {
        if self.commands.len() <= id / 64 {
            self.commands.resize(id / 64 + 1, 0);
        }
        if on {
            self.commands[id / 64] |= 1 << (id % 64);
        } else {
            self.commands[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Whether this selector allows everything: every command, key and
    /// channel.
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }
}

/// Redis's user flags, as ACL LIST and GETUSER name them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Sanitize {
    /// Neither flag set (a user never `reset`).
    #[default]
    Unset,
    Sanitize,
    Skip,
}

/// An ACL user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize: Sanitize,
    /// SHA-256 digests of the passwords, lower-case hex, in the order added.
    pub passwords: Vec<String>,
    /// The root selector first, then the others (`(...)`).
    pub selectors: Vec<Selector>,
    /// Which incarnation of the name this is: kept across ACL SETUSER,
    /// new when the user is deleted and created again or reloaded, so the
    /// connections authenticated as the old one are closed.
    pub serial: u64,
}

static SERIALS: AtomicU64 = AtomicU64::new(1);

impl User {
    /// A new user as Redis creates one: off, no passwords, no permissions.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selectors: vec![Selector::default()],
            serial: SERIALS.fetch_add(1, Relaxed),
        }
    }

    /// The default user as Redis creates it: `on nopass ~* &* +@all`.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        u.enabled = true;
        u.nopass = true;
        u.selectors[0] = Selector { all_keys: true, all_channels: true, ..Selector::all_commands() };
        u
    }

    /// Gives the user a fresh serial (a new incarnation of its name).
    pub fn renew(&mut self) {
        self.serial = SERIALS.fetch_add(1, Relaxed);
    }

    /// Whether every check passes for this user: the permission checks are
    /// skipped (the default user's `+@all ~* &*`).
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.selectors.first().is_some_and(Selector::unrestricted)
    }

    /// Whether `password` logs in as this user (enabled, and `nopass` or a
    /// matching hash; compared in constant time).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = hash_password(password);
        self.passwords.iter().fold(false, |ok, p| ok | ct_eq(p.as_bytes(), h.as_bytes()))
    }
}

/// Compares two equally long strings without an early exit.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The SHA-256 of a password, as lower-case hex (what Redis stores).
pub fn hash_password(password: &[u8]) -> String {
    let digest = Sha256::digest(password);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Whether `h` is a hash Redis accepts after `#` or `!`: 64 lower-case
/// hex digits.
pub fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// One ACL LOG entry (Redis 7.0's fields).
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    /// Unix ms of the last occurrence.
    pub ctime: u64,
    /// CLIENT LIST's line for the client, at the last occurrence.
    pub client_info: String,
}

/// Entries closer than this in time (and otherwise equal) are one entry
/// with a count, as in Redis.
const LOG_GROUPING_MS: u64 = 60_000;

/// The users and the log.
pub struct Acl {
    users: Mutex<BTreeMap<String, Arc<User>>>,
    /// Bumped by every change to any user: connections compare it with
    /// the value they saw and look their user up again when it moved.
    pub generation: AtomicU64,
    log: Mutex<VecDeque<LogEntry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new(User::default_user())
    }
}

impl Acl {
    /// A registry holding only `default` (which the caller builds: its
    /// permissions come from the command table).
    pub fn new(default: User) -> Acl {
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), Arc::new(default));
        Acl { users: Mutex::new(users), generation: AtomicU64::new(1), log: Mutex::new(VecDeque::new()) }
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        lock(&self.users).get(name).cloned()
    }

    /// The default user (always present).
    pub fn default_user(&self) -> Arc<User> {
        self.get("default").unwrap_or_else(|| Arc::new(User::new("default")))
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        lock(&self.users).values().cloned().collect()
    }

    /// Creates or changes a user: `f` gets the current one (or `None`) and
    /// returns the new one, or an error that leaves everything as it was.
    pub fn update<E>(&self, name: &str, f: impl FnOnce(Option<&User>) -> Result<User, E>) -> Result<Arc<User>, E> {
        let mut users = lock(&self.users);
        let new = Arc::new(f(users.get(name).map(|u| &**u))?);
        users.insert(name.to_string(), new.clone());
        drop(users);
        self.generation.fetch_add(1, Relaxed);
        Ok(new)
    }

    /// Deletes the named users (never `default`); how many existed.
    pub fn delete(&self, names: &[&str]) -> usize {
        let mut users = lock(&self.users);
        let n = names.iter().filter(|n| users.remove(**n).is_some()).count();
        drop(users);
        self.generation.fetch_add(1, Relaxed);
        n
    }

    /// Replaces every user (ACL LOAD, start-up).
    pub fn replace_all(&self, all: BTreeMap<String, Arc<User>>) {
        *lock(&self.users) = all;
        self.generation.fetch_add(1, Relaxed);
    }

    /// Adds a log entry, or counts it on a recent equal one (among the
    /// last 10, as Redis looks), keeping at most `max` entries.
    pub fn log(&self, entry: LogEntry, max: usize) {
        let mut log = lock(&self.log);
        let same = log.iter().take(10).position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && e.ctime.abs_diff(entry.ctime) <= LOG_GROUPING_MS
        });
        if let Some(i) = same {
            let mut e = log.remove(i).expect("found");
            e.count += 1;
            e.ctime = entry.ctime;
            e.client_info = entry.client_info;
            log.push_front(e);
            return;
        }
        log.push_front(entry);
        log.truncate(max);
    }

    /// The newest `n` entries, newest first.
    pub fn log_entries(&self, n: usize) -> Vec<LogEntry> {
        lock(&self.log).iter().take(n).cloned().collect()
    }

    pub fn log_reset(&self) {
        lock(&self.log).clear();
    }

    /// Trims the log to `max` entries (CONFIG SET acllog-max-len).
    pub fn log_trim(&self, max: usize) {
        lock(&self.log).truncate(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_redis_sha256_hex() {
        assert_eq!(hash_password(b"p1"), "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a");
        assert!(valid_hash(hash_password(b"x").as_bytes()));
        assert!(!valid_hash(b"F64551FCD6F07823CB87971CFB91446425DA18286B3AB1EF935E0CBD7A69F68A"));
    }

    #[test]
    fn key_patterns_match_as_globs() {
        for (p, k) in [("key:*", "key:1"), ("k?y", "key"), ("*", ""), ("a[bc]d*", "acdx"), ("a\\*", "a*"), ("exact", "exact"), ("", "")] {
            assert!(KeyPattern::new(p.as_bytes(), true, true).matches(k.as_bytes()), "{p} {k}");
            assert!(crate::util::glob_match(p.as_bytes(), k.as_bytes(), false));
        }
        for (p, k) in [("key:*", "kex:1"), ("exact", "exactly"), ("a\\*", "ab"), ("p0:*", "key:1"), ("x", "")] {
            assert!(!KeyPattern::new(p.as_bytes(), true, true).matches(k.as_bytes()), "{p} {k}");
        }
    }

    #[test]
    fn passwords() {
        let mut u = User::new("u");
        u.passwords.push(hash_password(b"pw"));
        assert!(!u.password_ok(b"pw"), "a disabled user cannot log in");
        u.enabled = true;
        assert!(u.password_ok(b"pw"));
        assert!(!u.password_ok(b"pW"));
        u.nopass = true;
        assert!(u.password_ok(b"anything"));
    }

    #[test]
    fn log_groups_equal_entries() {
        let acl = Acl::default();
        let e = |object: &str, t: u64| LogEntry {
            count: 1,
            reason: "command",
            context: "toplevel",
            object: object.into(),
            username: "u".into(),
            ctime: t,
            client_info: String::new(),
        };
        acl.log(e("get", 1000), 128);
        acl.log(e("set", 1000), 128);
        acl.log(e("get", 2000), 128);
        let l = acl.log_entries(10);
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].object.as_str(), l[0].count, l[0].ctime), ("get", 2, 2000));
        acl.log(e("get", 2000 + LOG_GROUPING_MS + 1), 128);
        assert_eq!(acl.log_entries(10).len(), 3);
        acl.log(e("x", 0), 2);
        assert_eq!(acl.log_entries(10).len(), 2);
    }
}
