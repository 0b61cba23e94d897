//! The permission check (Redis's ACLCheckAllUserCommandPerm): a command
//! line against each of a user's selectors — the command's bit, its keys
//! with the access their key specs declare (%R / %W patterns), its
//! channels — and the errors and ACL LOG entries a denial produces in each
//! context (top level, MULTI/EXEC, scripts).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;

use super::rules::{id, key_access, NOT_KEY, READ, WRITE};
use crate::commands::{flag, CommandSpec, KeyIter};
use crate::error::CmdError;
use crate::shard::acl::{LogEntry, Selector, User};
use crate::shard::clients::ClientInfo;
use crate::shard::Engine;
use crate::util::glob_match;

/// Why a command was refused, with the index of the argument at fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// Redis's ACL_DENIED_* order, used to pick the error to report
    /// when several selectors refuse.
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(i) => (2, i),
            Denied::Channel(i) => (4, i),
        }
    }

    /// The error a command gets at the top level (or when queued).
    pub fn error(self, spec: &CommandSpec) -> CmdError {
        CmdError::Other(match self {
            Denied::Command => format!("NOPERM this user has no permissions to run the '{}' command", spec.name),
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        })
    }

    /// The error a queued command gets at EXEC when the rules changed.
    pub fn exec_error(self) -> CmdError {
        let reason = match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        CmdError::Other(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
        ))
    }

    /// The error text `redis.call` raises.
    pub fn script_error(self) -> String {
        let what = match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => "can't access at least one of the keys mentioned in the command arguments",
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        };
        format!("ERR The user executing the script {what}")
    }

    /// ACL DRYRUN's answer (`args` start with the command name).
    pub fn dryrun_text(self, spec: &CommandSpec, args: &[Bytes]) -> String {
        let arg = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
        match self {
            Denied::Command => format!("This user has no permissions to run the '{}' command", spec.name),
            Denied::Key(i) => format!("This user has no permissions to access the '{}' key", arg(i)),
            Denied::Channel(i) => format!("This user has no permissions to access the '{}' channel", arg(i)),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }
}

/// Checks a command line (`args` include the name; `spec` is what it
/// resolves to) against every selector of `user`: allowed when one allows
/// it, else the most relevant denial, as Redis picks it.
pub fn check(user: &User, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
    let cid = id(spec);
    // Most users have one selector: its answer is the user's.
    if let [sel] = &user.selectors[..] {
        return check_selector(sel, spec, cid, args);
    }
    let mut worst = Denied::Command;
    for sel in &user.selectors {
        match check_selector(sel, spec, cid, args) {
            Ok(()) => return Ok(()),
            Err(d) if d.rank() > worst.rank() => worst = d,
            Err(_) => {}
        }
    }
    Err(worst)
}

fn check_selector(sel: &Selector, spec: &CommandSpec, cid: usize, args: &[Bytes]) -> Result<(), Denied> {
    if !sel.all_commands && !spec.has_flag(flag::NO_AUTH) && !sel.allows_id(cid) {
        let at = if spec.name.contains('|') { 2 } else { 1 };
        let allowed = match (args.get(at), sel.firstargs.iter().find(|(i, _)| *i as usize == cid)) {
            (Some(a), Some((_, list))) => list.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(a)),
            _ => false,
        };
        if !allowed {
            return Err(Denied::Command);
        }
    }
    if !sel.all_keys {
        let mut denied = None;
        for_each_key(spec, cid, args, |i, read, write| {
            let ok = sel.keys.iter().any(|k| (!read || k.read) && (!write || k.write) && k.matches(&args[i]));
            if !ok {
                denied = Some(i);
            }
            ok
        });
        if let Some(i) = denied {
            return Err(Denied::Key(i));
        }
    }
    if !sel.all_channels {
        if let Some((pattern, channels)) = channels(spec, args) {
            for i in channels {
                let c = &args[i];
                let ok = sel.channels.iter().any(|p| if pattern { p[..] == c[..] } else { glob_match(p, c, false) });
                if !ok {
                    return Err(Denied::Channel(i));
                }
            }
        }
    }
    Ok(())
}

/// Whether one of the user's selectors allows the command and reading
/// every key (`~*`, `%R~*`, `allkeys`): what SORT's BY and GET patterns
/// need (Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess).
pub fn reads_every_key(user: &User, spec: &CommandSpec, args: &[Bytes]) -> bool {
    let cid = id(spec);
    user.selectors
        .iter()
        .any(|sel| check_selector(sel, spec, cid, args).is_ok() && (sel.all_keys || sel.keys.iter().any(|k| k.read && k.pattern == b"*")))
}

/// Calls `f(index, read, write)` for each key of the command line (not
/// the shard channels declared as `not_key`), until it returns false. The
/// access comes from the key specs' flags (Redis's ACLSelectorCheckKey:
/// read for `access`, write for `insert`, `update`, `delete`).
fn for_each_key(spec: &CommandSpec, cid: usize, args: &[Bytes], mut f: impl FnMut(usize, bool, bool) -> bool) {
    let rules = spec.keys.rules();
    let access = key_access(cid);
    let rw = |a: u8| (a & READ != 0, a & WRITE != 0);
    if spec.key_finder.is_some() {
        let (read, write) = rw(access[0]);
        for i in spec.key_indices(args) {
            if !f(i, read, write) {
                return;
            }
        }
    } else {
        for (r, &a) in rules.iter().zip(access) {
            if a & NOT_KEY != 0 {
                continue;
            }
            let (read, write) = rw(a);
            for i in KeyIter::new(std::slice::from_ref(r), args) {
                if !f(i, read, write) {
                    return;
                }
            }
        }
    }
    if let Some((i, flags)) = spec.extra_keys.and_then(|e| e(args)) {
        let read = flags.contains(&"access");
        let write = flags.iter().any(|f| matches!(*f, "insert" | "delete" | "update"));
        f(i, read, write);
    }
}

/// The channels a command publishes to or subscribes to (Redis's
/// `commands_with_channels`, unsubscribing aside): whether they are
/// patterns, and their argument indices.
fn channels(spec: &CommandSpec, args: &[Bytes]) -> Option<(bool, std::ops::Range<usize>)> {
    match spec.name {
        "subscribe" | "ssubscribe" => Some((false, 1..args.len())),
        "psubscribe" => Some((true, 1..args.len())),
        "publish" | "spublish" => Some((false, 1..args.len().min(2))),
        _ => None,
    }
}

/// Whether `user` may be subscribed to `name` (a pattern subscription
/// must equal an allowed pattern).
pub fn channel_allowed(user: &User, pattern: bool, name: &[u8]) -> bool {
    user.selectors
        .iter()
        .any(|sel| sel.all_channels || sel.channels.iter().any(|p| if pattern { p[..] == name[..] } else { glob_match(p, name, false) }))
}

/// After a user's rules changed: its clients subscribed to a channel or
/// pattern it may no longer use are closed, as Redis closes them.
pub fn kill_pubsub_clients(engine: &Engine, user: &User) {
    if user.selectors.iter().any(|s| s.all_channels) {
        return;
    }
    for (pattern, name, client) in engine.pubsub.subscriptions() {
        if client.user() == user.name && !channel_allowed(user, pattern, &name) {
            client.close_async();
        }
    }
}

/// Where a denial happened, as ACL LOG names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Context {
    TopLevel,
    Multi,
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::TopLevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// Records a denial in the ACL LOG.
pub fn log_denied(engine: &Engine, d: Denied, ctx: Context, spec: &CommandSpec, args: &[Bytes], user: &str, client: &ClientInfo) {
    let object = match d {
        Denied::Command => spec.name.to_string(),
        Denied::Key(i) | Denied::Channel(i) => String::from_utf8_lossy(&args[i]).into_owned(),
    };
    log(engine, d.reason(), ctx, object, user.to_string(), client);
}

/// Records a failed AUTH (or HELLO ... AUTH) in the ACL LOG.
pub fn log_auth(engine: &Engine, in_multi: bool, command: &[u8], user: &[u8], client: &ClientInfo) {
    let ctx = if in_multi { Context::Multi } else { Context::TopLevel };
    log(engine, "auth", ctx, String::from_utf8_lossy(command).into_owned(), String::from_utf8_lossy(user).into_owned(), client);
}

fn log(engine: &Engine, reason: &'static str, ctx: Context, object: String, username: String, client: &ClientInfo) {
    let entry =
        LogEntry { count: 1, reason, context: ctx.name(), object, username, ctime: crate::util::now_ms(), client_info: client.describe() };
    engine.acl.log(entry, engine.cfg.acllog_max_len.load(Relaxed) as usize);
}

/// What a script needs to check its commands: the caller's user and
/// client (for the log).
#[derive(Clone)]
pub struct Caller {
    pub user: Arc<User>,
    pub client: Arc<ClientInfo>,
}

impl Caller {
    /// The caller of a script run by `client`, when its user is
    /// restricted (an unrestricted one needs no checks).
    pub fn of(client: &Arc<ClientInfo>) -> Option<Caller> {
        let user = client.acl_user()?;
        (!user.unrestricted()).then(|| Caller { user, client: client.clone() })
    }

    /// Checks a command a script calls; on a denial, logs it and returns
    /// the error `redis.call` raises.
    pub fn check(&self, engine: Option<&Engine>, spec: &CommandSpec, args: &[Bytes]) -> Result<(), String> {
        check(&self.user, spec, args).map_err(|d| {
            if let Some(e) = engine {
                log_denied(e, d, Context::Lua, spec, args, &self.user.name, &self.client);
            }
            d.script_error()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::acl::rules::apply;

    fn user(ops: &[&str]) -> User {
        let ops: Vec<&[u8]> = ops.iter().map(|o| o.as_bytes()).collect();
        apply(None, "u", &ops).unwrap()
    }

    fn run(u: &User, a: &[&str]) -> Result<(), Denied> {
        let args: Vec<Bytes> = a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        let spec = crate::commands::lookup_args(&args).ok().unwrap();
        check(u, spec, &args)
    }

    #[test]
    fn commands_keys_channels() {
        let u = user(&["+get", "+set", "+lpush", "+lrange", "+client|id", "~a*", "%R~r*", "%W~w*", "&news.*", "+publish", "+psubscribe"]);
        assert_eq!(run(&u, &["get", "a1"]), Ok(()));
        assert_eq!(run(&u, &["get", "b1"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["del", "a1"]), Err(Denied::Command));
        assert_eq!(run(&u, &["client", "id"]), Ok(()));
        assert_eq!(run(&u, &["client", "list"]), Err(Denied::Command));
        // %R: reads only; %W: writes only (LPUSH inserts, GET reads).
        assert_eq!(run(&u, &["get", "r1"]), Ok(()));
        assert_eq!(run(&u, &["lpush", "r1", "x"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["lpush", "w1", "x"]), Ok(()));
        assert_eq!(run(&u, &["lrange", "w1", "0", "1"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(run(&u, &["publish", "other", "m"]), Err(Denied::Channel(1)));
        // A pattern subscription must equal an allowed pattern.
        assert_eq!(run(&u, &["psubscribe", "news.*"]), Ok(()));
        assert_eq!(run(&u, &["psubscribe", "news.a*"]), Err(Denied::Channel(1)));
        // AUTH is no_auth: always allowed.
        assert_eq!(run(&u, &["auth", "x"]), Ok(()));
    }

    #[test]
    fn selectors_and_first_args() {
        let u = user(&["+get", "~a*", "(+set ~b*)", "+select|0"]);
        assert_eq!(run(&u, &["get", "a"]), Ok(()));
        assert_eq!(run(&u, &["set", "b", "1"]), Ok(()));
        assert_eq!(run(&u, &["set", "a", "1"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["get", "b"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["select", "0"]), Ok(()));
        assert_eq!(run(&u, &["select", "1"]), Err(Denied::Command));
        assert!(User::default_user().unrestricted());
        assert!(!u.unrestricted());
    }
}
