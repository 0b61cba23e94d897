//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, and the
//! INFO `persistence` section. Snapshots themselves are `persist`'s.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::persist;
use crate::persist::load::Route;
use crate::shard::snapshot::SaveKind;
use crate::shard::Engine;
use crate::util::eq_ic;

const SRV: &[&str] = &["admin", "slow", "dangerous"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        SRV,
        "server",
        "Synchronously saves the database(s) to disk.",
        Exec::Coord(handler!(async |cx, _a| save(cx))),
    ),
    cmd(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        SRV,
        "server",
        "Asynchronously saves the database(s) to disk.",
        Exec::Coord(handler!(async |cx, a| bgsave(cx, a))),
    ),
    cmd(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        SRV,
        "server",
        "Asynchronously rewrites the append-only file to disk.",
        Exec::Coord(handler!(async |cx, _a| bgrewriteaof(cx))),
    ),
    cmd(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        &["admin", "fast", "dangerous"],
        "server",
        "Returns the Unix timestamp of the last successful save to disk.",
        Exec::Coord(handler!(|cx, _a| lastsave(cx))),
    )
    .tips(&["nondeterministic_output"]),
];

/// Runs a command journaled as sent again, on the shard of its keys (the
/// journal's replay at start; `persist::load::REPLAY_COMMAND`; `parts`
/// sends one that coordinates shards to `internal::run_wide`). Nothing
/// expires meanwhile (`now` 0). An error reply means the journal and the
/// data disagree: see `unexpected_error`.
///
/// A journal written by redis-server (or by hand) may hold any command, as
/// Redis runs whatever its AOF holds: each known one runs; an unknown one
/// stops the load with Redis's words.
pub fn replay(sh: &mut crate::shard::Shard, db: usize, args: &[Bytes]) -> Result<(), String> {
    on_shard(sh, db, args, false)
}

/// Runs a command a primary sent on the shard of its keys (a replica's
/// link; `persist::load::REPLICA_COMMAND`; `parts` sends one that
/// coordinates shards to `internal::run_wide`). Nothing expires meanwhile
/// (`now` 0): a replica waits for its primary's DEL.
pub fn replicated(sh: &mut crate::shard::Shard, db: usize, args: &[Bytes]) -> Result<(), String> {
    on_shard(sh, db, args, true)
}

fn on_shard(sh: &mut crate::shard::Shard, db: usize, args: &[Bytes], replica: bool) -> Result<(), String> {
    let engine = sh.engine.clone();
    let unexpected = |name: &str, reply: &[u8]| match &engine {
        Some(e) => unexpected_error(e, replica, name, reply),
        None => Err(String::from_utf8_lossy(reply).into_owned()),
    };
    let spec = match super::lookup_args_original(args) {
        Ok(spec) if spec.arity_ok(args.len()) => spec,
        Ok(spec) => {
            let err = format!("-ERR wrong number of arguments for '{}' command", spec.name.to_ascii_lowercase());
            return unexpected(spec.name, err.as_bytes());
        }
        Err(_) if !replica => {
            return Err(format!("Unknown command '{}' reading the append only file", String::from_utf8_lossy(&args[0])));
        }
        Err(_) => {
            let name = String::from_utf8_lossy(&args[0]).into_owned();
            return unexpected(&name, format!("-ERR unknown command '{name}'").as_bytes());
        }
    };
    if is_move(spec) {
        return super::lists::move_on_shard(sh, db, args).or_else(|e| unexpected(spec.name, format!("-{e}").as_bytes()));
    }
    let mut out = crate::resp::Out::new(false);
    // Redis counts its master client's commands (INFO commandstats), not
    // those its AOF loading runs.
    let failed = if replica {
        super::run::exec_one_at(sh, db, spec, args, &mut out, 0);
        out.buf.first() == Some(&b'-')
    } else {
        super::run::exec_uncounted(sh, db, spec, args, &mut out, 0)
    };
    if failed {
        return unexpected(spec.name, &out.buf);
    }
    Ok(())
}

/// A command from the journal or a primary's stream answered with an
/// error, as Redis handles one its AOF-loading or master client gets: it
/// is logged and counted (INFO's `unexpected_error_replies`), and under
/// `propagation-error-behavior` `panic` the journal's loading stops (the
/// node does not start), under `panic` or `panic-on-replicas` a read-only
/// replica stops.
pub(super) fn unexpected_error(engine: &Engine, replica: bool, name: &str, reply: &[u8]) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    let (from, to) = if replica { ("replica", "master") } else { ("server", "AOF-loading-client") };
    let err = String::from_utf8_lossy(&reply[..reply.len().min(4096)]);
    let err = err.trim_end().trim_start_matches('-');
    tracing::warn!("== CRITICAL == This {from} is sending an error to its {to}: '{err}' after processing the command '{name}'");
    engine.stats.unexpected_error_replies.fetch_add(1, Relaxed);
    let repl = &engine.cfg.repl;
    let stops = repl.propagation_error().stops(replica) && (!replica || repl.read_only.load(Relaxed));
    if !stops {
        return Ok(());
    }
    let why = format!("This {from} panicked sending an error to its {to} after processing the command '{name}'");
    if replica {
        tracing::error!("{why}");
        std::process::abort();
    }
    Err(why)
}

/// Where a journaled or replicated command runs (`persist::load::PARTS`):
/// a split command whose keys live on several shards here (an MSET
/// journaled by a node with fewer shards, or sent by a redis-server
/// primary) as one part per shard; a shard command, or a move within one
/// shard (how a served blocked move travels), whole on the shard of its
/// keys; any other (it coordinates shards for a client: RENAME, SMOVE,
/// SUNIONSTORE, FUNCTION LOAD, ...) holding every shard. An unknown or
/// malformed command goes to a shard, which reports it.
pub fn parts(engine: &Engine, args: Vec<Bytes>) -> Route {
    let Some(spec) = super::lookup_args_original(&args).ok().filter(|s| s.arity_ok(args.len())) else {
        let shard = args.get(1).map_or(0, |k| engine.shard_of(k));
        return Route::Parts(vec![(shard, args)]);
    };
    let mut shards = spec.key_indices(&args).map(|i| engine.shard_of(&args[i]));
    let first = shards.next();
    let one = shards.all(|s| Some(s) == first);
    let shard = first.unwrap_or_else(|| args.get(1).map_or(0, |k| engine.shard_of(k)));
    match spec.exec {
        Exec::Shard(_) | Exec::Split(..) if one => Route::Parts(vec![(shard, args)]),
        Exec::Split(..) => Route::Parts(super::run::split_by_shard(engine, spec, &args).into_iter().map(|p| (p.shard, p.args)).collect()),
        Exec::Coord(_) if one && first.is_some() && is_move(spec) => Route::Parts(vec![(shard, args)]),
        _ => Route::Wide(args),
    }
}

/// LMOVE and RPOPLPUSH (how a served blocked move travels) run across
/// shards for a client; with both keys on one shard, from the journal or
/// a primary's stream, on that shard (`lists::move_on_shard`).
fn is_move(spec: &CommandSpec) -> bool {
    matches!(spec.name, "lmove" | "rpoplpush")
}

/// After FLUSHALL, as Redis's flushAllDataAndResetRDB: a running snapshot
/// of the data file (it holds the keys just flushed) is abandoned, and with
/// save points set the empty data set is saved at once, so that a restart
/// does not bring the flushed keys back. A client waits for the save; a
/// transaction, a script or a primary's stream (which hold shards the save
/// needs, or cannot wait) only asks for it.
pub(super) async fn after_flushall(cx: &mut dyn Coord) {
    let engine = cx.engine().clone();
    let st = &engine.saves;
    let waits = cx.session().is_some() && !cx.in_exec();
    if st.dump_running.load(Relaxed) {
        st.abort_dump.store(true, Relaxed);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waits && st.in_progress.load(Relaxed) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    if engine.cfg.save_points().is_empty() {
        return;
    }
    let saved = persist::request(&engine, SaveKind::Foreground);
    if waits {
        match saved.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("the save after FLUSHALL failed: {e}"),
            Err(_) => {}
        }
    }
}

/// Waits for the saver's answer.
pub(super) async fn ask(engine: &Engine, kind: SaveKind) -> CmdResult {
    match persist::request(engine, kind).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.contains("already in progress") => Err(CmdError::err(e)),
        Ok(Err(e)) => {
            tracing::warn!("save failed: {e}");
            Err(CmdError::err(e))
        }
        Err(_) => Err(CmdError::err("the node is shutting down")),
    }
}

/// SAVE: the caller waits until the file is on disk; everybody else goes
/// on (Redis blocks the whole server instead).
async fn save(cx: &mut dyn Coord) -> CmdResult {
    ask(cx.engine(), SaveKind::Foreground).await?;
    cx.out().ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]. Inside MULTI/EXEC the snapshot starts after the
/// transaction (it must hold every shard), as Redis schedules it.
async fn bgsave(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => {}
        2 if eq_ic(&args[1], "SCHEDULE") => {}
        _ => return Err(CmdError::Syntax),
    }
    if cx.engine().saves.in_progress.load(Relaxed) {
        return Err(CmdError::err("Background save already in progress"));
    }
    if cx.in_exec() {
        // The reply cannot wait for the start: the saver needs the shards
        // this transaction holds.
        drop(persist::request(cx.engine(), SaveKind::Background));
        cx.out().simple("Background saving scheduled");
        return Ok(());
    }
    ask(cx.engine(), SaveKind::Background).await?;
    cx.out().simple("Background saving started");
    Ok(())
}

/// BGREWRITEAOF: the journal's next base file is a snapshot; while another
/// snapshot runs, the rewrite is scheduled after it (as Redis does).
async fn bgrewriteaof(cx: &mut dyn Coord) -> CmdResult {
    let e = cx.engine();
    if !e.journal.aof_on() {
        return Err(CmdError::err("the append-only journal is off: turn it on with CONFIG SET appendonly yes (or --appendonly yes)"));
    }
    if e.journal.rewriting.load(Relaxed) {
        return Err(CmdError::err("Background append only file rewriting already in progress"));
    }
    if cx.in_exec() {
        drop(persist::request(cx.engine(), SaveKind::AofRewrite));
        cx.out().simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    match persist::request(cx.engine(), SaveKind::AofRewrite).await {
        Ok(Ok(())) => cx.out().simple("Background append only file rewriting started"),
        Ok(Err(e)) if e == "scheduled" => cx.out().simple("Background append only file rewriting scheduled"),
        Ok(Err(e)) => return Err(CmdError::err(e)),
        Err(_) => return Err(CmdError::err("the node is shutting down")),
    }
    Ok(())
}

fn lastsave(cx: &mut dyn Coord) -> CmdResult {
    let t = cx.engine().saves.last_save.load(Relaxed);
    cx.out().int(t as i64);
    Ok(())
}

/// Whether a protection setting (`enable-debug-command`,
/// `enable-module-command`, `enable-protected-configs`: no, yes or local)
/// lets this client through: `local` admits loopback clients only.
pub(super) fn protection_allows(cx: &mut dyn super::Coord, setting: &str) -> CmdResult<bool> {
    Ok(match setting {
        "yes" => true,
        "local" => is_loopback(&cx.client()?.info.addr),
        _ => false,
    })
}

/// Whether a client address (`ip:port`) is on the loopback interface.
pub(super) fn is_loopback(addr: &str) -> bool {
    let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip).trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The save SHUTDOWN (and SIGTERM) makes: waits for a running snapshot
/// to end first, then takes a fresh one.
pub async fn save_for_shutdown(engine: &Engine) -> Result<(), String> {
    for _ in 0..2 {
        match persist::request(engine, SaveKind::Foreground).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if e.contains("already in progress") => {
                while engine.saves.in_progress.load(Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("the node is shutting down".into()),
        }
    }
    Err("a snapshot kept running".into())
}

/// INFO's `persistence` section.
pub fn info_section(e: &Engine, text: &mut String) {
    let st = &e.saves;
    let running = st.in_progress.load(Relaxed);
    let now = crate::util::now_ms();
    let current = if running { (now.saturating_sub(st.started_ms.load(Relaxed)) / 1000) as i64 } else { -1 };
    let _ = write!(
        text,
        "# Persistence\r\nloading:{}\r\nasync_loading:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\nrdb_saves:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrites:{}\r\naof_last_bgrewrite_status:{}\r\naof_last_write_status:{}\r\n\r\n",
        st.loading() as u8,
        st.async_loading.load(Relaxed) as u8,
        st.changes_since_save(),
        running as u8,
        st.last_save.load(Relaxed),
        if st.last_ok.load(Relaxed) { "ok" } else { "err" },
        st.last_duration.load(Relaxed),
        st.saves.load(Relaxed),
        st.load_expired.load(Relaxed),
        st.load_keys.load(Relaxed),
        e.journal.aof_on() as u8,
        e.journal.rewriting.load(Relaxed) as u8,
        e.journal.rewrites.load(Relaxed),
        if e.journal.last_rewrite_failed.load(Relaxed) { "err" } else { "ok" },
        if e.journal.write_failed.load(Relaxed) { "err" } else { "ok" },
    );
    // As Redis, the files' sizes only while the journal is on.
    if e.journal.aof_on() {
        text.truncate(text.len() - 2);
        let j = &e.journal;
        let _ = write!(text, "aof_current_size:{}\r\naof_base_size:{}\r\n\r\n", j.current_size.load(Relaxed), j.base_size.load(Relaxed));
    }
}

/// Whether writes are refused because the last snapshot failed (Redis's
/// `stop-writes-on-bgsave-error`, which applies while save points are set).
pub fn writes_refused(e: &Engine) -> bool {
    !e.saves.last_ok.load(Relaxed) && e.cfg.stop_writes_on_bgsave_error.load(Relaxed) && !e.cfg.save_points().is_empty()
}
