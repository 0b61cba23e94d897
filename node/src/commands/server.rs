//! Server commands: COMMAND (generated from the command table), INFO, CONFIG,
//! DBSIZE, FLUSHDB, FLUSHALL, TIME, SHUTDOWN, ROLE.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, sub, Begin, BusyAnswer, CommandSpec, Coord, Exec, Find, KeyRule};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::shard::{Engine, ShardStats};
use crate::util::eq_ic;

const SRV: &[&str] = &["admin", "slow", "dangerous"];
const KS: &[&str] = &["keyspace"];
const CMD: &[&str] = &["slow", "connection"];
const HELP: &str = "Returns helpful text about the different subcommands.";

const COMMAND: Exec = Exec::Coord(handler!(|cx, a| command(cx, a)));
const CONFIG: Exec = Exec::Coord(handler!(async |cx, a| config(cx, a)));

pub static COMMANDS: &[CommandSpec] = &[
    cmd("command", -1, LOADING | STALE, (0, 0, 0), CMD, "server", "Returns detailed information about all commands.", COMMAND)
        .tips(&["nondeterministic_output_order"])
        .subcommands(&[
            sub("command|count", 2, LOADING | STALE, (0, 0, 0), CMD, "Returns a count of commands.", COMMAND),
            sub("command|info", -2, LOADING | STALE, (0, 0, 0), CMD, "Returns information about one, multiple or all commands.", COMMAND)
                .tips(&["nondeterministic_output_order"]),
            sub(
                "command|docs",
                -2,
                LOADING | STALE,
                (0, 0, 0),
                CMD,
                "Returns documentary information about one, multiple or all commands.",
                COMMAND,
            )
            .tips(&["nondeterministic_output_order"]),
            sub("command|list", -2, LOADING | STALE, (0, 0, 0), CMD, "Returns a list of command names.", COMMAND)
                .tips(&["nondeterministic_output_order"]),
            sub("command|getkeys", -3, LOADING | STALE, (0, 0, 0), CMD, "Extracts the key names from an arbitrary command.", COMMAND),
            sub(
                "command|getkeysandflags",
                -3,
                LOADING | STALE,
                (0, 0, 0),
                CMD,
                "Extracts the key names and access flags for an arbitrary command.",
                COMMAND,
            ),
            sub("command|help", 2, LOADING | STALE, (0, 0, 0), CMD, HELP, COMMAND),
        ]),
    cmd(
        "info",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "dangerous"],
        "server",
        "Returns information and statistics about the server.",
        Exec::Coord(handler!(async |cx, a| super::info::info(cx, a))),
    )
    .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    cmd("config", -2, 0, (0, 0, 0), &["slow"], "server", "A container for server configuration commands.", CONFIG).subcommands(&[
        sub(
            "config|get",
            -3,
            ADMIN | NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            SRV,
            "Returns the effective values of configuration parameters.",
            CONFIG,
        ),
        sub("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), SRV, "Sets configuration parameters in-flight.", CONFIG)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), SRV, "Resets the server's statistics.", CONFIG)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub(
            "config|rewrite",
            2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            SRV,
            "Persists the effective configuration to file.",
            CONFIG,
        )
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("config|help", 2, LOADING | STALE, (0, 0, 0), &["slow"], HELP, CONFIG),
    ]),
    cmd(
        "dbsize",
        1,
        READONLY | FAST,
        (0, 0, 0),
        KS,
        "server",
        "Returns the number of keys in the database.",
        Exec::Coord(handler!(async |cx, _a| dbsize(cx))),
    )
    .tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
    cmd(
        "flushdb",
        -1,
        WRITE,
        (0, 0, 0),
        &["keyspace", "write", "slow", "dangerous"],
        "server",
        "Remove all keys from the current database.",
        Exec::Coord(handler!(async |cx, a| flush(cx, a, false))),
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd(
        "flushall",
        -1,
        WRITE,
        (0, 0, 0),
        &["keyspace", "write", "slow", "dangerous"],
        "server",
        "Removes all keys from all databases.",
        Exec::Coord(handler!(async |cx, a| flush(cx, a, true))),
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd(
        "time",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        &["fast"],
        "server",
        "Returns the server time.",
        Exec::Coord(handler!(|cx, _a| time(cx))),
    )
    .tips(&["nondeterministic_output"]),
    // Allowed while a script is busy, but then only with NOSAVE
    // (`refuse_unless_nosave`), as in Redis.
    cmd(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        (0, 0, 0),
        SRV,
        "server",
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        Exec::Coord(handler!(async |cx, a| shutdown(cx, a))),
    )
    .when_busy(shutdown_busy),
    cmd(
        "wait",
        3,
        0,
        (0, 0, 0),
        &["slow", "connection"],
        "generic",
        "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
        Exec::Coord(handler!(async |cx, a| wait(cx, a))),
    )
    .tips(&["request_policy:all_shards", "response_policy:agg_min"]),
    cmd(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        &["admin", "fast", "dangerous"],
        "server",
        "Returns the replication role.",
        Exec::Coord(handler!(|cx, _a| role(cx))),
    ),
];

/// One command's COMMAND INFO entry (node/tests/command_info.rs checks it
/// against what Redis prints).
pub fn write_spec(out: &mut Out, c: &CommandSpec) {
    out.array(10);
    out.bulk(c.name.as_bytes());
    out.int(c.arity as i64);
    let flags: Vec<&str> = NAMES.iter().filter(|(f, _)| c.flags & f != 0).map(|(_, n)| *n).collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    let (first, last, step) = c.legacy_keys();
    out.int(first as i64);
    out.int(last as i64);
    out.int(step as i64);
    let acl = c.acl_categories();
    out.set(acl.len());
    for a in acl {
        out.simple(&format!("@{a}"));
    }
    out.set(c.tips.len());
    for t in c.tips {
        out.bulk(t.as_bytes());
    }
    let rules = c.keys.rules();
    out.set(rules.len());
    for r in rules {
        out.map(3);
        out.bulk(b"flags");
        let flags = key_flags(c, r);
        out.array(flags.len());
        for f in flags {
            out.simple(f);
        }
        out.bulk(b"begin_search");
        match r.begin {
            Begin::Index(i) => typed_spec(out, "index", &[("index", Spec::Int(i as i64))]),
            Begin::Keyword { word, from } => {
                typed_spec(out, "keyword", &[("keyword", Spec::Text(word)), ("startfrom", Spec::Int(from as i64))])
            }
            Begin::Unknown => typed_spec(out, "unknown", &[]),
        }
        out.bulk(b"find_keys");
        match r.find {
            Find::Range { last, step, limit } => typed_spec(
                out,
                "range",
                &[("lastkey", Spec::Int(last as i64)), ("keystep", Spec::Int(step as i64)), ("limit", Spec::Int(limit as i64))],
            ),
            Find::KeyNum { count, first, step } => typed_spec(
                out,
                "keynum",
                &[("keynumidx", Spec::Int(count as i64)), ("firstkey", Spec::Int(first as i64)), ("keystep", Spec::Int(step as i64))],
            ),
            Find::Unknown => typed_spec(out, "unknown", &[]),
        }
    }
    if c.subs.is_empty() {
        out.set(0);
    } else {
        out.array(c.subs.len());
        for s in c.subs {
            write_spec(out, s);
        }
    }
}

/// A value in a key spec's `spec` map.
enum Spec {
    Int(i64),
    Text(&'static str),
}

/// COMMAND's `{type: <kind>, spec: {field: value, ...}}` shape of a key
/// spec's begin_search and find_keys.
fn typed_spec(out: &mut Out, kind: &str, fields: &[(&str, Spec)]) {
    out.map(2);
    out.bulk(b"type");
    out.bulk(kind.as_bytes());
    out.bulk(b"spec");
    out.map(fields.len());
    for (name, v) in fields {
        out.bulk(name.as_bytes());
        match v {
            Spec::Int(i) => out.int(*i),
            Spec::Text(t) => out.bulk(t.as_bytes()),
        }
    }
}

/// The access flags of a key rule: its own, or RW / RO from the command.
fn key_flags(c: &CommandSpec, r: &KeyRule) -> &'static [&'static str] {
    r.flags.unwrap_or(if c.has_flag(WRITE) { &["RW"] } else { &["RO"] })
}

pub fn command(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let out = cx.out();
    if args.len() == 1 {
        let all: Vec<_> = super::all().collect();
        out.array(all.len());
        for c in all {
            write_spec(out, c);
        }
        return Ok(());
    }
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" => out.int(super::count() as i64),
        b"INFO" => {
            if args.len() == 2 {
                let all: Vec<_> = super::all().collect();
                out.array(all.len());
                for c in all {
                    write_spec(out, c);
                }
            } else {
                out.array(args.len() - 2);
                for name in &args[2..] {
                    match super::lookup_full(name) {
                        Some(c) => write_spec(out, c),
                        None => out.nil_array(),
                    }
                }
            }
        }
        b"DOCS" => {
            // With each, its group: a subcommand's is its container's.
            let specs: Vec<(&CommandSpec, &str)> = if args.len() == 2 {
                super::all().map(|c| (c, c.group)).collect()
            } else {
                args[2..]
                    .iter()
                    .filter_map(|n| {
                        let c = super::lookup_full(n)?;
                        let container = n.split(|&b| b == b'|').next().and_then(super::lookup).unwrap_or(c);
                        Some((c, container.group))
                    })
                    .collect()
            };
            out.map(specs.len());
            let docs = super::docs::load();
            for (c, group) in specs {
                out.bulk(c.name.as_bytes());
                super::docs::write_docs(&docs, out, c, group);
            }
        }
        b"LIST" => {
            // Subcommands too, after their container, as Redis lists them.
            let mut specs: Vec<&CommandSpec> = super::all().flat_map(|c| std::iter::once(c).chain(c.subs)).collect();
            if args.len() > 2 {
                if args.len() != 5 || !eq_ic(&args[2], "FILTERBY") {
                    return Err(CmdError::Syntax);
                }
                let v = &args[4];
                if eq_ic(&args[3], "PATTERN") {
                    specs.retain(|c| crate::util::glob_match(v, c.name.as_bytes(), true));
                } else if eq_ic(&args[3], "ACLCAT") {
                    let cat = String::from_utf8_lossy(v).to_ascii_lowercase();
                    specs.retain(|c| c.acl_categories().contains(&cat.as_str()));
                } else if eq_ic(&args[3], "MODULE") {
                    specs.clear();
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            out.array(specs.len());
            for c in specs {
                out.bulk(c.name.as_bytes());
            }
        }
        b"GETKEYS" | b"GETKEYSANDFLAGS" => {
            // The command's own declaration, or its subcommand's.
            let sub = &args[2..];
            let Ok(c) = super::lookup_args(sub) else {
                return Err(CmdError::err("Invalid command specified"));
            };
            // Redis's doesCommandHaveKeys: a key finder, or a rule that
            // is not `not_key` (shard channels are declared so).
            let has_keys =
                c.key_finder.is_some() || c.extra_keys.is_some() || c.keys.rules().iter().any(|r| !key_flags(c, r).contains(&"not_key"));
            if !has_keys {
                return Err(CmdError::err("The command has no key arguments"));
            }
            if !c.arity_ok(sub.len()) {
                return Err(CmdError::err("Invalid number of arguments specified for command"));
            }
            // Each key with the flags of the rule that found it (not the
            // channels declared `not_key`), then those the command finds.
            // As in Redis, when an `incomplete` rule finds keys, a command
            // with its own key finder answers instead (its keys with the
            // first rule's flags).
            let rules = c.keys.rules();
            fn by_rule<'a>(r: &'a KeyRule, sub: &'a [Bytes]) -> super::KeyIter<'a> {
                super::KeyIter::new(std::slice::from_ref(r), sub)
            }
            let incomplete = rules.iter().any(|r| key_flags(c, r).contains(&"incomplete") && by_rule(r, sub).next().is_some());
            let mut keys: Vec<(usize, &[&str])> = match (c.key_finder, rules.first()) {
                (Some(_), Some(r)) if incomplete => c.key_indices(sub).map(|i| (i, key_flags(c, r))).collect(),
                _ => rules
                    .iter()
                    .filter(|r| !key_flags(c, r).contains(&"not_key"))
                    .flat_map(|r| by_rule(r, sub).map(move |i| (i, key_flags(c, r))))
                    .collect(),
            };
            keys.extend(c.extra_keys.and_then(|f| f(sub)));
            // SET's key flags depend on its options, as Redis's setGetKeys
            // resolves its `variable_flags`: with GET it reads the old value.
            if c.name == "set" {
                let get = sub.iter().skip(3).any(|a| eq_ic(a, "GET"));
                let flags: &[&str] = if get { &["RW", "access", "update"] } else { &["OW", "update"] };
                keys.iter_mut().for_each(|k| k.1 = flags);
            }
            if keys.is_empty() {
                // Redis's `no_mandatory_keys` commands (the scripts') may
                // name none.
                if matches!(c.exec, Exec::Script(_)) {
                    out.array(0);
                    return Ok(());
                }
                return Err(CmdError::err("Invalid arguments specified for command"));
            }
            let with_flags = sub_is(&args[1], "GETKEYSANDFLAGS");
            out.array(keys.len());
            for (k, flags) in keys {
                if with_flags {
                    out.array(2);
                    out.bulk(&sub[k]);
                    out.array(flags.len());
                    for f in flags {
                        out.simple(f);
                    }
                } else {
                    out.bulk(&sub[k]);
                }
            }
        }
        b"HELP" => {
            let lines = [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full command.",
                "HELP",
                "    Print this help.",
            ];
            out.help(&lines);
        }
        _ => return Err(CmdError::unknown_subcommand("command", &args[1])),
    }
    Ok(())
}

fn sub_is(a: &[u8], w: &str) -> bool {
    eq_ic(a, w)
}

pub async fn config(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_uppercase();
    let cfg = cx.engine().cfg.clone();
    match sub.as_slice() {
        b"GET" => {
            // `replicaof` (alias `slaveof`) is the replication state:
            // "host port" of the primary followed, or empty.
            let primary = cx.engine().repl.master().map(|m| format!("{} {}", m.host, m.port)).unwrap_or_default();
            let mut found: Vec<(String, String)> = Vec::new();
            for pat in &args[2..] {
                let mut kvs = cfg.get(pat);
                for name in ["replicaof", "slaveof"] {
                    if crate::util::glob_match(pat, name.as_bytes(), true) {
                        kvs.push((name.to_string(), primary.clone()));
                    }
                }
                for kv in kvs {
                    if !found.contains(&kv) {
                        found.push(kv);
                    }
                }
            }
            cx.out().map(found.len());
            for (k, v) in found {
                cx.out().bulk(k.as_bytes());
                cx.out().bulk(v.as_bytes());
            }
        }
        b"SET" => {
            // Name-value pairs (the declared arity only says "at least one").
            if !args.len().is_multiple_of(2) {
                return Err(super::arity_error(args));
            }
            // Protected parameters first, before anything is changed.
            let allowed = super::persistence::protection_allows(cx, &cfg.enable_protected_configs)?;
            for (i, pair) in args[2..].chunks_exact(2).enumerate() {
                let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                if args[2..].chunks_exact(2).take(i).any(|p| eq_ic(&p[0], &name)) {
                    return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter")));
                }
                if !allowed && crate::config::PROTECTED.contains(&name.as_str()) {
                    return Err(CmdError::err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                    )));
                }
            }
            // The TLS parameters apply together: a new certificate and its
            // key make one new configuration.
            let pairs: Vec<(String, String)> = args[2..]
                .chunks_exact(2)
                .map(|p| (String::from_utf8_lossy(&p[0]).to_ascii_lowercase(), String::from_utf8_lossy(&p[1]).into_owned()))
                .collect();
            let tls: Vec<(&str, &str)> = pairs
                .iter()
                .filter(|(n, v)| crate::config::tls::Tls::owns(n) && !cfg.start_up_unchanged(n, v))
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let tls_before = cfg.tls.params();
            if !tls.is_empty() {
                cfg.tls
                    .set_many(&tls, false)
                    .map_err(|e| CmdError::err(format!("CONFIG SET failed (possibly related to argument '{}') - {e}", tls[0].0)))?;
            }
            // All or nothing, as Redis: a refused value puts back the ones
            // set before it in this call.
            let mut previous: Vec<(&str, String)> = Vec::new();
            let undo = |previous: &[(&str, String)]| {
                for (n, v) in previous.iter().rev() {
                    let _ = cfg.set(n, v);
                }
                if !tls.is_empty() {
                    cfg.tls.restore(tls_before.clone());
                }
            };
            let listen_before = (cfg.port(), cfg.bind());
            for (name, value) in pairs.iter().filter(|(n, _)| !crate::config::tls::Tls::owns(n)) {
                let before = cfg.get(name.as_bytes()).into_iter().find(|(n, _)| n == name).map(|(_, v)| v);
                if let Err(e) = cfg.set(name, value) {
                    undo(&previous);
                    return Err(match e {
                        crate::config::ConfigError::Unknown(n) => {
                            CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{n}'"))
                        }
                        other => CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {other}")),
                    });
                }
                if let Some(v) = before {
                    previous.push((name, v));
                }
            }
            // A new port or address list is opened before the change is
            // answered: one that cannot be bound undoes the whole call.
            let listen = (cfg.port(), cfg.bind());
            if listen != listen_before {
                let (name, why) = if listen.0 != listen_before.0 {
                    ("port", "Unable to listen on this port")
                } else {
                    ("bind", "Failed to bind to specified addresses")
                };
                let open = if listen.0 == 0 && cfg.tls.params().port == 0 {
                    Err(std::io::Error::other("no port would be left open (port 0 and tls-port 0)"))
                } else {
                    cx.engine().listeners.relisten(&listen.1, listen.0).await
                };
                if let Err(e) = open {
                    undo(&previous);
                    return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}: {e}")));
                }
            }
            // Then what the new values set in motion.
            for (name, value) in &pairs {
                match name.as_str() {
                    // The default user's password, as in Redis.
                    "requirepass" => super::acl::set_default_password(cx.engine(), (!value.is_empty()).then_some(value.as_str())),
                    "acllog-max-len" => cx.engine().acl.log_trim(cfg.acllog_max_len.load(Relaxed) as usize),
                    "rdbcompression" => crate::store::rdb::set_compression(cfg.rdbcompression.load(Relaxed)),
                    "appendonly" => {
                        let on = cfg.appendonly.load(Relaxed);
                        if let Err(e) = crate::persist::set_appendonly(cx.engine(), on).await {
                            cfg.appendonly.store(!on, Relaxed);
                            return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument 'appendonly') - {e}")));
                        }
                    }
                    _ => {}
                }
            }
            crate::shard::evict::configure(&cfg);
            crate::shard::notify::configure(&cfg);
            crate::resp::set_reply_max(cfg.reply_max_bytes.load(Relaxed));
            super::cluster::configure(cx.engine());
            cx.out().ok();
        }
        b"RESETSTAT" => {
            let st = &cx.engine().stats;
            for c in [
                &st.total_connections,
                &st.rejected_connections,
                &st.evicted_clients,
                &st.unexpected_error_replies,
                &cx.engine().repl.input_bytes,
            ] {
                c.store(0, Relaxed);
            }
            crate::store::lazyfree::reset_stats();
            cx.broadcast(|sh| {
                sh.counted_stats();
                sh.stats = ShardStats::default();
                sh.rates = Default::default();
                super::stats::reset();
            })
            .await;
            cx.out().ok();
        }
        b"REWRITE" => {
            crate::config::rewrite::rewrite(&cfg).map_err(CmdError::err)?;
            cx.out().ok();
        }
        b"HELP" => {
            let lines = [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
                "HELP",
                "    Print this help.",
            ];
            cx.out().help(&lines);
        }
        _ => return Err(CmdError::unknown_subcommand("config", &args[1])),
    }
    Ok(())
}

pub async fn dbsize(cx: &mut dyn Coord) -> CmdResult {
    let db = cx.db();
    let n: usize = cx.broadcast(move |sh| sh.db_if_exists(db).map(|d| d.len()).unwrap_or(0)).await.into_iter().sum();
    cx.out().int(n as i64);
    Ok(())
}

pub async fn flush(cx: &mut dyn Coord, args: &[Bytes], all: bool) -> CmdResult {
    // ASYNC frees the dropped keys in the background; SYNC, or nothing
    // (`lazyfree-lazy-user-flush no`), here.
    let lazy = match args.len() {
        1 => false,
        2 if eq_ic(&args[1], "SYNC") => false,
        2 if eq_ic(&args[1], "ASYNC") => true,
        _ => return Err(CmdError::Syntax),
    };
    let db = cx.db();
    // All shards are locked together so no client sees a half-flushed keyspace.
    for s in 0..cx.engine().nshards() {
        cx.lock_run(s, move |sh| match (lazy, all) {
            (true, true) => sh.flush_async(None, db),
            (true, false) => sh.flush_async(Some(db), db),
            (false, true) => sh.flush_all(db),
            (false, false) => sh.flush_db(db),
        })
        .await;
    }
    if all {
        // The shards go first: the snapshot to abandon, or the save to
        // take, needs them.
        cx.release();
        super::persistence::after_flushall(cx).await;
    }
    cx.out().ok();
    Ok(())
}

pub fn time(cx: &mut dyn Coord) -> CmdResult {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    cx.out().array(2);
    cx.out().bulk_int(now.as_secs() as i64);
    cx.out().bulk_int(now.subsec_micros() as i64);
    Ok(())
}

pub async fn shutdown(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    shutdown_args(args)?;
    if args.len() == 2 && eq_ic(&args[1], "ABORT") {
        if !super::replication::abort_shutdown() {
            return Err(CmdError::err("No shutdown in progress."));
        }
        cx.out().ok();
        return Ok(());
    }
    refuse_unless_nosave(cx.engine(), args)?;
    if !cx.client()?.authed {
        return Err(CmdError::NoAuth);
    }
    let has = |w: &str| args[1..].iter().any(|a| eq_ic(a, w));
    let engine = cx.engine().clone();
    // Lagging replicas get `shutdown-timeout` to catch up, unless NOW.
    if !has("NOW") && !super::replication::wait_for_replicas_before_shutdown(&engine).await {
        return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
    }
    // Saved when asked to, or when save points are set (and NOSAVE is not
    // given), as Redis does; a failed save keeps the server up unless FORCE.
    let save = has("SAVE") || (!has("NOSAVE") && !engine.cfg.save_points().is_empty());
    if save {
        if let Err(e) = super::persistence::save_for_shutdown(&engine).await {
            // Redis's words, which tools look for in the log.
            tracing::warn!("Error trying to save the DB, can't exit: {e}");
            tracing::warn!("Errors trying to shut down the server. Check the logs for more information.");
            if !has("FORCE") {
                engine.clients.unpause();
                return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    // Like Redis, the client gets no reply; its connection closes.
    engine.shutdown.notify_one();
    cx.client()?.closing = true;
    Ok(())
}

/// SHUTDOWN as the busy hook answers it: with NOSAVE, the process stops
/// (no reply).
fn shutdown_busy(engine: &Engine, args: &[Bytes], authed: bool, _out: &mut Out) -> CmdResult<BusyAnswer> {
    shutdown_args(args)?;
    refuse_unless_nosave(engine, args)?;
    if !authed {
        return Err(CmdError::NoAuth);
    }
    engine.shutdown.notify_one();
    Ok(BusyAnswer::Shutdown)
}

/// While a script is busy, SHUTDOWN runs only with NOSAVE (it is
/// `allow_busy` for that one form).
fn refuse_unless_nosave(engine: &Engine, args: &[Bytes]) -> CmdResult {
    let scripting = &engine.scripting;
    if scripting.busy_count.load(Relaxed) > 0 && !args[1..].iter().any(|a| eq_ic(a, "NOSAVE")) {
        return Err(super::scripting::busy_error(scripting.busy_is_function()));
    }
    Ok(())
}

/// Checks SHUTDOWN's options: ABORT goes alone, SAVE and NOSAVE not
/// together.
fn shutdown_args(args: &[Bytes]) -> CmdResult {
    let has = |w: &str| args[1..].iter().any(|a| eq_ic(a, w));
    for a in &args[1..] {
        if !["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"].iter().any(|w| eq_ic(a, w)) {
            return Err(CmdError::Syntax);
        }
    }
    if (has("ABORT") && args.len() > 2) || (has("SAVE") && has("NOSAVE")) {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

pub fn role(cx: &mut dyn Coord) -> CmdResult {
    super::replication::role(cx)
}

/// WAIT numreplicas timeout: the number of replicas that acknowledged the
/// offset covering this client's writes; like Redis, it answers at once
/// when enough have, and otherwise when they do, after the timeout (never,
/// for 0) or when the client leaves.
pub async fn wait(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let want = crate::util::parse_i64(&args[1])?;
    let ms = crate::util::parse_i64(&args[2]).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let engine = cx.engine().clone();
    let offset = super::replication::client_offset(cx).await;
    if super::replication::acked(&engine, offset) < want && cx.may_block() {
        super::replication::request_acks(&engine);
        let _blocked = crate::shard::blocking::BlockedClient::new(cx.engine().clone(), cx.session().map(|s| s.info.clone()));
        let timeout = async {
            match ms {
                0 => std::future::pending().await,
                ms => tokio::time::sleep(std::time::Duration::from_millis(ms as u64)).await,
            }
        };
        let me = cx.session().map(|s| s.info.clone());
        let unblocked = async {
            match &me {
                Some(me) => me.unblocked().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timeout => {}
            () = super::replication::until_acked(&engine, offset, want) => {}
            () = cx.client_closed() => return Ok(()),
            // CLIENT UNBLOCK: the error, or the timeout's answer.
            error = unblocked => if error {
                return Err(CmdError::Other("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()));
            },
        }
    }
    cx.out().int(super::replication::acked(&engine, offset));
    Ok(())
}
