//! Finding a command's declaration by name: the table clients' command
//! names are looked up in, and `rename-command` (config file only, as in
//! Redis), which gives a command another name in that table or (an empty
//! name) takes it out. What the node runs on its own behalf — replaying the
//! journal, applying a primary's stream — and ACL rules keep the declared
//! names (`lookup_original`), as Redis's `orig_commands`.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::{all, stats, CommandSpec};

type Table = HashMap<&'static str, &'static CommandSpec, foldhash::fast::FixedState>;

static TABLE: OnceLock<Table> = OnceLock::new();
static ORIGINAL: OnceLock<Table> = OnceLock::new();

fn declared() -> Table {
    let _ = crate::resp::reply::ERROR_COUNTER.set(stats::error_reply);
    all().map(|c| (c.name, c)).collect()
}

/// The table clients' command names are looked up in.
pub(super) fn table() -> &'static Table {
    TABLE.get_or_init(declared)
}

fn original() -> &'static Table {
    ORIGINAL.get_or_init(declared)
}

/// Applies `rename-command` lines (from, to) before the first command is
/// looked up; Redis's errors for an unknown command or a name taken.
pub fn rename(renames: &[(String, String)]) -> Result<(), String> {
    if renames.is_empty() {
        return Ok(());
    }
    let mut t = declared();
    for (from, to) in renames {
        let (from, to) = (from.to_ascii_lowercase(), to.to_ascii_lowercase());
        let spec = t.remove(from.as_str()).ok_or_else(|| format!("No such command in rename-command: {from}"))?;
        if to.is_empty() {
            continue;
        }
        if t.contains_key(to.as_str()) {
            return Err(format!("Target command name already exists in rename-command: {to}"));
        }
        // Names live as long as the process (the table is built once).
        t.insert(Box::leak(to.into_boxed_str()), spec);
    }
    TABLE.set(t).map_err(|_| "rename-command: the command table is already in use".to_string())
}

fn find(t: &Table, name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    t.get(lower).copied()
}

/// Looks a command up by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find(table(), name)
}

/// Looks a command up by its declared name, whatever `rename-command` did.
pub fn lookup_original(name: &[u8]) -> Option<&'static CommandSpec> {
    find(original(), name)
}

/// The declaration a command line names (`resolve`): `Err(None)` for an
/// unknown command, `Err(Some(container))` for an unknown subcommand.
#[inline]
pub fn lookup_args(args: &[Bytes]) -> Result<&'static CommandSpec, Option<&'static CommandSpec>> {
    let spec = lookup(args.first().map_or(&[][..], |a| &a[..])).ok_or(None)?;
    spec.resolve(args).ok_or(Some(spec))
}

/// `lookup_args` by declared names (the journal's replay, a primary's
/// stream).
pub fn lookup_args_original(args: &[Bytes]) -> Result<&'static CommandSpec, Option<&'static CommandSpec>> {
    let spec = lookup_original(args.first().map_or(&[][..], |a| &a[..])).ok_or(None)?;
    spec.resolve(args).ok_or(Some(spec))
}

/// Looks a command up by its full name, as COMMAND INFO and COMMAND DOCS
/// take it: `get`, `client` (the container), `client|kill`.
pub fn lookup_full(name: &[u8]) -> Option<&'static CommandSpec> {
    full(name, lookup)
}

/// `lookup_full` by declared names (ACL rules, as Redis's).
pub fn lookup_full_original(name: &[u8]) -> Option<&'static CommandSpec> {
    full(name, lookup_original)
}

fn full(name: &[u8], by: fn(&[u8]) -> Option<&'static CommandSpec>) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => by(name),
        Some(i) => by(&name[..i]).filter(|c| c.is_container())?.sub(&name[i + 1..]),
    }
}
