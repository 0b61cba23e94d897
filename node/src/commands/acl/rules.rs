//! ACL rules: command ids and categories from the command table, applying
//! ACL SETUSER's modifiers to a user (Redis's ACLSetUser/ACLSetSelector,
//! with its error texts), and describing a user back as rules (ACL LIST,
//! GETUSER, the ACL file), with Redis's greedy choice of categories.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::commands::{self, CommandSpec};
use crate::shard::acl::{hash_password, valid_hash, KeyPattern, Sanitize, Selector, User, COMMAND_BITS};

/// Redis's ACL categories, in its order (`ACLCommandCategories`).
pub const CATEGORIES: &[&str] = commands::ACL_CATEGORIES;

/// Every command and subcommand with an id (its bit in a selector's
/// bitmap), and the members of each category.
struct Ids {
    specs: Vec<&'static CommandSpec>,
    /// Where each run of contiguous declarations sits in memory:
    /// (address of the first, how many, id of the first), by address.
    runs: Vec<(usize, usize, usize)>,
    /// Each command's subcommands' ids (empty unless a container).
    subs: Vec<Vec<usize>>,
    /// Each command's key rules' access, as `key_access` gives it.
    access: Vec<[u8; crate::commands::keyspec::MAX_RULES]>,
    /// Each category's commands, by id.
    members: Vec<Vec<usize>>,
}

/// A key rule's access for ACL: read (`access`), write (`insert`,
/// `update`, `delete`), or no key at all (`not_key`: shard channels).
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const NOT_KEY: u8 = 4;

fn rule_access(flags: &[&str]) -> u8 {
    let mut a = 0;
    for f in flags {
        a |= match *f {
            "access" => READ,
            "insert" | "update" | "delete" => WRITE,
            "not_key" => NOT_KEY,
            _ => 0,
        };
    }
    a
}

/// The ACL access of each of a command's key rules (`READ`, `WRITE`,
/// `NOT_KEY`), worked out once from the declarations.
#[inline]
pub fn key_access(id: usize) -> &'static [u8; crate::commands::keyspec::MAX_RULES] {
    &ids().access[id]
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut specs: Vec<&'static CommandSpec> = Vec::new();
        let mut subs = Vec::new();
        for c in commands::all() {
            specs.push(c);
        }
        let top = specs.len();
        for i in 0..top {
            let first = specs.len();
            specs.extend(specs[i].subs.iter());
            subs.push((first..specs.len()).collect());
        }
        subs.resize(specs.len(), Vec::new());
        assert!(specs.len() < COMMAND_BITS - 1, "more commands than ACL bitmap bits");
        let size = std::mem::size_of::<CommandSpec>();
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (id, s) in specs.iter().enumerate() {
            let addr = *s as *const CommandSpec as usize;
            match runs.last_mut() {
                Some((start, n, first)) if *start + *n * size == addr && *first + *n == id => *n += 1,
                _ => runs.push((addr, 1, id)),
            }
        }
        runs.sort_unstable();
        let cats: Vec<u32> = specs
            .iter()
            .map(|s| s.acl_categories().iter().filter_map(|c| CATEGORIES.iter().position(|k| k == c)).fold(0u32, |m, i| m | 1 << i))
            .collect();
        let access = specs
            .iter()
            .map(|s| {
                let mut a = [0u8; crate::commands::keyspec::MAX_RULES];
                for (i, r) in s.keys.rules().iter().enumerate() {
                    a[i] = rule_access(r.flags.unwrap_or(&[]));
                }
                a
            })
            .collect();
        let members = (0..CATEGORIES.len()).map(|j| (0..specs.len()).filter(|&i| cats[i] & (1 << j) != 0).collect()).collect();
        Ids { specs, runs, subs, access, members }
    })
}

/// The id of a declared command (its bit in a selector's bitmap): where
/// its declaration sits among the tables, found without hashing its name.
/// A memo of recent answers, direct-mapped by address: each entry packs
/// a declaration's address (48 bits) and its id (16 bits), so the common
/// case is one load and one compare instead of the search in `search_id`.
static ID_MEMO: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

#[inline]
pub fn id(spec: &CommandSpec) -> usize {
    let addr = spec as *const CommandSpec as usize;
    let slot = &ID_MEMO[(addr / std::mem::align_of::<CommandSpec>()) % ID_MEMO.len()];
    let memo = slot.load(Relaxed);
    if memo != 0 && (memo >> 16) as usize == addr & 0xffff_ffff_ffff {
        return (memo & 0xffff) as usize;
    }
    let id = search_id(addr);
    slot.store(((addr as u64 & 0xffff_ffff_ffff) << 16) | id as u64, Relaxed);
    id
}

fn search_id(addr: usize) -> usize {
    let ids = ids();
    let i = ids.runs.partition_point(|r| r.0 <= addr);
    match i.checked_sub(1).map(|i| ids.runs[i]) {
        Some((start, n, first)) if addr < start + n * std::mem::size_of::<CommandSpec>() => {
            first + (addr - start) / std::mem::size_of::<CommandSpec>()
        }
        // Not from the tables (cannot happen): an id no selector allows.
        _ => COMMAND_BITS - 2,
    }
}

/// The number of ids.
pub fn count() -> usize {
    ids().specs.len()
}

/// The command with this id.
pub fn spec(id: usize) -> &'static CommandSpec {
    ids().specs[id]
}

/// The bit of a category in a category mask (one bit set), or `None` if
/// unknown.
pub fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

/// The ids of the commands (and subcommands) in a category (`mask`:
/// its bit, as `category` gives it).
pub fn in_category(mask: u32) -> impl Iterator<Item = usize> {
    let i = mask.trailing_zeros() as usize;
    ids().members.get(i).map_or(&[][..], |m| &m[..]).iter().copied()
}

/// Why a modifier was refused: Redis's errno and its text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RuleError {
    /// ENOENT
    Unknown,
    /// EINVAL
    Syntax,
    /// EEXIST
    AfterAllKeys,
    /// EISDIR
    AfterAllChannels,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// ECHILD
    SubcommandFirstArg,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::AfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

fn is(op: &[u8], word: &str) -> bool {
    op.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's ACLStringHasSpaces: spaces and NULs are refused in patterns
/// and user names.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

/// Looks a command up as ACL rules name it: `get`, `config|get`.
fn lookup_rule(name: &[u8]) -> Option<&'static CommandSpec> {
    commands::lookup_full_original(name)
}

/// Allows or denies a command, and a container's subcommands with it.
fn change(sel: &mut Selector, spec: &CommandSpec, on: bool) {
    let cid = id(spec);
    sel.set_id(cid, on);
    sel.firstargs.retain(|(i, _)| *i as usize != cid);
    for &s in &ids().subs[cid] {
        sel.set_id(s, on);
    }
}

/// Applies one selector modifier (keys, channels, commands).
pub fn set_selector(sel: &mut Selector, op: &[u8]) -> Result<(), RuleError> {
    if is(op, "allkeys") || op == b"~*" {
        sel.all_keys = true;
        sel.keys.clear();
    } else if is(op, "resetkeys") {
        sel.all_keys = false;
        sel.keys.clear();
    } else if is(op, "allchannels") || op == b"&*" {
        sel.all_channels = true;
        sel.channels.clear();
    } else if is(op, "resetchannels") {
        sel.all_channels = false;
        sel.channels.clear();
    } else if is(op, "allcommands") || is(op, "+@all") {
        let keep = std::mem::take(sel);
        *sel = Selector {
            all_keys: keep.all_keys,
            keys: keep.keys,
            all_channels: keep.all_channels,
            channels: keep.channels,
            ..Selector::all_commands()
        };
    } else if is(op, "nocommands") || is(op, "-@all") {
        sel.commands.clear();
        sel.all_commands = false;
        sel.future = false;
        sel.firstargs.clear();
    } else if op[0] == b'~' || op[0] == b'%' {
        if sel.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        let (mut read, mut write) = (false, false);
        let mut offset = 1;
        if op[0] == b'%' {
            loop {
                match op.get(offset) {
                    Some(c) if c.eq_ignore_ascii_case(&b'R') && !read => read = true,
                    Some(c) if c.eq_ignore_ascii_case(&b'W') && !write => write = true,
                    Some(b'~') => {
                        offset += 1;
                        break;
                    }
                    // Redis stops at the end too (`%RW` is a pattern of "").
                    None => break,
                    Some(_) => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            // `%~p`: no access named.
            if !read && !write {
                return Err(RuleError::Syntax);
            }
        } else {
            (read, write) = (true, true);
        }
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match sel.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => sel.keys.push(KeyPattern::new(pattern, read, write)),
        }
        sel.all_keys = false;
    } else if op[0] == b'&' {
        if sel.all_channels {
            return Err(RuleError::AfterAllChannels);
        }
        let pattern = &op[1..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        if !sel.channels.iter().any(|c| c == pattern) {
            sel.channels.push(pattern.to_vec());
        }
        sel.all_channels = false;
    } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
        let name = &op[1..];
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let spec = lookup_rule(name).ok_or(RuleError::Unknown)?;
            change(sel, spec, true);
            return Ok(());
        };
        let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
        let spec = lookup_rule(cmd).ok_or(RuleError::Unknown)?;
        if cmd.contains(&b'|') {
            return Err(RuleError::SubcommandFirstArg);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if spec.is_container() {
            let s = lookup_rule(name).ok_or(RuleError::Unknown)?;
            change(sel, s, true);
        } else {
            let cid = id(spec) as u16;
            let sub = String::from_utf8_lossy(sub).into_owned();
            match sel.firstargs.iter_mut().find(|(i, _)| *i == cid) {
                Some((_, v)) => {
                    if !v.iter().any(|a| a.eq_ignore_ascii_case(&sub)) {
                        v.push(sub);
                    }
                }
                None => sel.firstargs.push((cid, vec![sub])),
            }
        }
    } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
        let spec = lookup_rule(&op[1..]).ok_or(RuleError::Unknown)?;
        change(sel, spec, false);
    } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
        let mask = category(&op[2..]).ok_or(RuleError::Unknown)?;
        let on = op[0] == b'+';
        for cid in in_category(mask) {
            change(sel, spec(cid), on);
        }
    } else {
        return Err(RuleError::Syntax);
    }
    Ok(())
}

/// Applies one user modifier (Redis's ACLSetUser).
pub fn set_user(u: &mut User, op: &[u8]) -> Result<(), RuleError> {
    if op.is_empty() {
        return Ok(());
    }
    if is(op, "on") {
        u.enabled = true;
    } else if is(op, "off") {
        u.enabled = false;
    } else if is(op, "skip-sanitize-payload") {
        u.sanitize = Sanitize::Skip;
    } else if is(op, "sanitize-payload") {
        u.sanitize = Sanitize::Sanitize;
    } else if is(op, "nopass") {
        u.nopass = true;
        u.passwords.clear();
    } else if is(op, "resetpass") {
        u.nopass = false;
        u.passwords.clear();
    } else if op[0] == b'>' || op[0] == b'#' {
        let h = if op[0] == b'>' {
            hash_password(&op[1..])
        } else {
            if !valid_hash(&op[1..]) {
                return Err(RuleError::BadHash);
            }
            String::from_utf8_lossy(&op[1..]).into_owned()
        };
        if !u.passwords.contains(&h) {
            u.passwords.push(h);
        }
        u.nopass = false;
    } else if op[0] == b'<' || op[0] == b'!' {
        let h = if op[0] == b'<' {
            hash_password(&op[1..])
        } else {
            if !valid_hash(&op[1..]) {
                return Err(RuleError::BadHash);
            }
            String::from_utf8_lossy(&op[1..]).into_owned()
        };
        let at = u.passwords.iter().position(|p| *p == h).ok_or(RuleError::NoSuchPassword)?;
        u.passwords.remove(at);
    } else if op[0] == b'(' && op.last() == Some(&b')') {
        let mut sel = Selector::default();
        for word in split_args(&op[1..op.len() - 1]).ok_or(RuleError::Syntax)? {
            set_selector(&mut sel, &word)?;
        }
        u.selectors.push(sel);
    } else if is(op, "clearselectors") {
        u.selectors.truncate(1);
    } else if is(op, "reset") {
        u.nopass = false;
        u.passwords.clear();
        u.enabled = false;
        u.sanitize = Sanitize::Sanitize;
        u.selectors = vec![Selector::default()];
    } else {
        set_selector(&mut u.selectors[0], op)?;
    }
    Ok(())
}

/// Splits a selector's inside on spaces (Redis's sdssplitargs, without
/// quotes: selector words have no spaces).
fn split_args(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    Some(s.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect())
}

/// Joins the words of a selector spread over several arguments (`(~a`,
/// `+get)`) into one; on an unmatched `(`, the index of its argument.
pub fn merge_selectors(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(args.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((_, sel)) = &mut open {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().expect("open").1);
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// ACL SETUSER's whole change: every modifier applied to a copy of the
/// user (a new one if `current` is `None`), or Redis's error for the first
/// that fails, leaving the user as it was.
pub fn apply(current: Option<&User>, name: &str, ops: &[&[u8]]) -> Result<User, String> {
    let merged = merge_selectors(ops)
        .map_err(|j| format!("ERR Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(ops[j])))?;
    let mut u = current.cloned().unwrap_or_else(|| User::new(name));
    for op in &merged {
        set_user(&mut u, op).map_err(|e| format!("ERR Error in ACL SETUSER modifier '{}': {}", String::from_utf8_lossy(op), e.text()))?;
    }
    Ok(u)
}

/// A selector's command rules as Redis describes them: `+@all` or
/// `-@all`, the categories that best fit (greedily), then single commands.
pub fn describe_commands(sel: &Selector) -> String {
    let n = count();
    let additive = !sel.future;
    let mut fake = if additive { Selector::default() } else { Selector::all_commands() };
    let mut rules = String::from(if additive { "-@all " } else { "+@all " });
    let mut temp = Selector { commands: sel.commands.clone(), ..Selector::default() };
    let mut applied = [false; 32];
    loop {
        let mut best = None;
        let (mut mindiff, mut maxsame) = (usize::MAX, 0);
        for (j, _) in CATEGORIES.iter().enumerate() {
            if applied[j] {
                continue;
            }
            let (mut on, mut off) = (0, 0);
            for cid in in_category(1 << j) {
                if temp.allows_id(cid) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                best = Some(j);
                mindiff = diff;
                maxsame = same;
            }
        }
        let Some(j) = best else { break };
        for cid in in_category(1 << j) {
            fake.set_id(cid, additive);
            temp.set_id(cid, !additive);
        }
        rules.push_str(if additive { "+@" } else { "-@" });
        rules.push_str(CATEGORIES[j]);
        rules.push(' ');
        applied[j] = true;
    }
    // Single commands: each top-level command, then its subcommands.
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for cid in 0..n {
        if !spec(cid).name.contains('|') {
            order.push(cid);
            order.extend(ids().subs[cid].iter().copied());
        }
    }
    for cid in order {
        let (user, have) = (sel.allows_id(cid), fake.allows_id(cid));
        if user != have {
            rules.push(if user { '+' } else { '-' });
            rules.push_str(spec(cid).name);
            rules.push(' ');
            fake.set_id(cid, user);
            for &s in &ids().subs[cid] {
                fake.set_id(s, user);
            }
        }
        if !user {
            if let Some((_, args)) = sel.firstargs.iter().find(|(i, _)| *i as usize == cid) {
                for a in args {
                    rules.push_str(&format!("+{}|{} ", spec(cid).name, a));
                }
            }
        }
    }
    rules.pop();
    rules
}

/// A key pattern as a rule: `~p`, `%R~p` or `%W~p`.
pub fn key_rule(k: &KeyPattern) -> String {
    let prefix = match (k.read, k.write) {
        (true, false) => "%R~",
        (false, true) => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&k.pattern))
}

/// A selector as rules (keys, channels, commands).
pub fn describe_selector(sel: &Selector) -> String {
    let mut s = String::new();
    if sel.all_keys {
        s.push_str("~* ");
    } else {
        for k in &sel.keys {
            s.push_str(&key_rule(k));
            s.push(' ');
        }
    }
    if sel.all_channels {
        s.push_str("&* ");
    } else {
        s.push_str("resetchannels ");
        for c in &sel.channels {
            s.push('&');
            s.push_str(&String::from_utf8_lossy(c));
            s.push(' ');
        }
    }
    s.push_str(&describe_commands(sel));
    s
}

/// The user's flags, in Redis's order.
pub fn flags(u: &User) -> Vec<&'static str> {
    let mut f = vec![if u.enabled { "on" } else { "off" }];
    if u.nopass {
        f.push("nopass");
    }
    match u.sanitize {
        Sanitize::Skip => f.push("skip-sanitize-payload"),
        Sanitize::Sanitize => f.push("sanitize-payload"),
        Sanitize::Unset => {}
    }
    f
}

/// A user as ACL LIST and the ACL file show it (without `user <name> `).
pub fn describe_user(u: &User) -> String {
    let mut s = String::new();
    for f in flags(u) {
        s.push_str(f);
        s.push(' ');
    }
    for p in &u.passwords {
        s.push('#');
        s.push_str(p);
        s.push(' ');
    }
    for (i, sel) in u.selectors.iter().enumerate() {
        if i == 0 {
            s.push_str(&describe_selector(sel));
        } else {
            s.push_str(&format!(" ({})", describe_selector(sel)));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &[&str]) -> Result<User, String> {
        let ops: Vec<&[u8]> = ops.iter().map(|o| o.as_bytes()).collect();
        apply(None, "u", &ops)
    }

    #[test]
    fn ids_are_found_from_declarations() {
        // Twice: found by the search, then from the memo (whose slots
        // several declarations share).
        for _ in 0..2 {
            for cid in 0..count() {
                assert_eq!(id(spec(cid)), cid, "{}", spec(cid).name);
            }
        }
        assert_eq!(spec(id(commands::lookup(b"get").unwrap())).name, "get");
    }

    #[test]
    fn describes_as_redis() {
        assert_eq!(describe_user(&user(&[]).unwrap()), "off resetchannels -@all");
        assert_eq!(describe_user(&User::default_user()), "on nopass ~* &* +@all");
        let u = user(&["on", ">p1", "~foo*", "%R~bar*", "&ch*", "+get", "-@all", "+@string"]).unwrap();
        assert_eq!(
            describe_user(&u),
            "on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~foo* %R~bar* resetchannels &ch* -@all +@string"
        );
        let u = user(&["+@all", "-get", "(~x*", "+get)"]).unwrap();
        assert_eq!(describe_user(&u), "off resetchannels +@all -get (~x* resetchannels -@all +get)");
        let u = user(&["+client|id", "+select|0"]).unwrap();
        assert_eq!(describe_user(&u), "off resetchannels -@all +select|0 +client|id");
        assert_eq!(describe_user(&user(&["reset"]).unwrap()), "off sanitize-payload resetchannels -@all");
    }

    #[test]
    fn errors_as_redis() {
        let err = |ops: &[&str]| user(ops).unwrap_err();
        assert_eq!(err(&["+nosuch"]), "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
        assert_eq!(err(&["bogus"]), "ERR Error in ACL SETUSER modifier 'bogus': Syntax error");
        assert_eq!(err(&["(~a", "+get"]), "ERR Unmatched parenthesis in acl selector starting at '(~a'.");
        assert_eq!(err(&["~*", "~a"]), format!("ERR Error in ACL SETUSER modifier '~a': {}", RuleError::AfterAllKeys.text()));
        assert_eq!(err(&["#abc"]), format!("ERR Error in ACL SETUSER modifier '#abc': {}", RuleError::BadHash.text()));
        assert_eq!(err(&["<nope"]), format!("ERR Error in ACL SETUSER modifier '<nope': {}", RuleError::NoSuchPassword.text()));
        assert_eq!(err(&["%X~a"]), "ERR Error in ACL SETUSER modifier '%X~a': Syntax error");
        assert_eq!(err(&["%~a"]), "ERR Error in ACL SETUSER modifier '%~a': Syntax error");
        assert_eq!(
            err(&["+client|id|x"]),
            format!("ERR Error in ACL SETUSER modifier '+client|id|x': {}", RuleError::SubcommandFirstArg.text())
        );
    }
}
