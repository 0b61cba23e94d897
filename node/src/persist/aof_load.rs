//! Replays the journal at start: the manifest's base file (an RDB
//! snapshot), then its increment files in order.
//!
//! An increment file holds the commands `shard::journal` writes: SELECT,
//! SET [PXAT], RESTORE ... REPLACE ABSTTL, DEL, FLUSHDB, SWAPDB, commands
//! journaled as sent (flagged `JOURNAL_ARGS`, run again through the command
//! layer's `load::REPLAY_COMMAND`), and MULTI/EXEC around transactions;
//! one written by redis-server may hold any other command, which runs the
//! same way (an unknown one stops the start, in Redis's words). Lines
//! starting with `#` are annotations (`#TS:`), skipped.
//! Nothing expires while it replays: a key's TTL may have passed and the
//! journal still touch it after, as Redis replays; it expires afterwards. A file that ends in the middle of a command or of
//! a transaction (a crash while it was written) is cut back to its last
//! whole one, with a warning, when `aof-load-truncated` is yes (default);
//! anything else that does not parse stops the start, naming the file and
//! the offset.

use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use tracing::warn;

use super::aof::{Layout, Manifest};
use super::load::{self, Loaded, Sink};
use crate::shard::{Engine, TxId};
use crate::store::dump;

/// Largest argument a journal command may have (a value's payload).
const MAX_ARG: usize = 1 << 30;
/// Most arguments a journal command may have (a command journaled as
/// sent has as many as its client sent).
const MAX_ARGS: usize = 1 << 27;

/// Loads base and increments, as transaction `tx` (`NO_TX` at start-up,
/// the holder of every shard for DEBUG LOADAOF); returns what the base
/// loaded. The base's function libraries are loaded before the
/// increments, whose FUNCTION commands change them.
pub fn load(engine: &std::sync::Arc<Engine>, layout: &Layout, m: &Manifest, tx: TxId) -> Result<Loaded, String> {
    let mut loaded = Loaded::default();
    let truncated_ok = engine.cfg.aof_load_truncated.load(Relaxed);
    if let Some((base, _)) = &m.base {
        loaded = load_base(engine, &layout.dir.join(base), m.incrs.is_empty() && truncated_ok, tx)?;
        super::run_functions_on_shard(engine, std::mem::take(&mut loaded.functions), tx)?;
    }
    let last = m.incrs.len().saturating_sub(1);
    for (i, (name, _)) in m.incrs.iter().enumerate() {
        let path = layout.dir.join(name);
        // Only the newest file can have been cut short by a crash.
        replay(engine, &path, i == last && truncated_ok, tx)?;
    }
    Ok(loaded)
}

/// One command read from a file, and where it ended.
pub(super) enum Read1 {
    Command(Vec<Vec<u8>>),
    /// The file ends inside a command.
    Torn,
    End,
}

/// Lines starting with `#` are annotations (Redis's `#TS:<seconds>`), not
/// commands: skipped.
pub(super) fn read_command(r: &mut impl BufRead, offset: &mut u64) -> Result<Read1, String> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(Read1::End);
        }
        if !line.ends_with(b"\r\n") {
            return Ok(Read1::Torn);
        }
        if line[0] != b'#' {
            break;
        }
        *offset += line.len() as u64;
    }
    let bad = |what: &str, at: u64| format!("{what} at offset {at}");
    let start = *offset;
    if line[0] != b'*' {
        return Err(bad("a command does not start with '*'", start));
    }
    let count: usize =
        std::str::from_utf8(&line[1..line.len() - 2]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad argument count", start))?;
    if count == 0 || count > MAX_ARGS {
        return Err(bad("unexpected argument count", start));
    }
    let mut used = line.len() as u64;
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if n == 0 || !line.ends_with(b"\r\n") {
            return Ok(Read1::Torn);
        }
        if line[0] != b'$' {
            return Err(bad("an argument does not start with '$'", start + used));
        }
        let len: usize = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad argument length", start + used))?;
        if len > MAX_ARG {
            return Err(bad("argument too long", start + used));
        }
        used += line.len() as u64;
        // Read into spare capacity (no zeroing first: a replica reads
        // every command of its primary's stream here).
        let mut arg = Vec::with_capacity(len + 2);
        let got = r.by_ref().take(len as u64 + 2).read_to_end(&mut arg).map_err(|e| e.to_string())?;
        if got < len + 2 {
            return Ok(Read1::Torn);
        }
        if &arg[len..] != b"\r\n" {
            return Err(bad("an argument is not followed by CRLF", start + used));
        }
        arg.truncate(len);
        used += len as u64 + 2;
        args.push(arg);
    }
    *offset += used;
    Ok(Read1::Command(args))
}

/// A command's name in capitals, without allocating: the journal and a
/// primary's stream name every command in capitals or not (a name longer
/// than `buf`, which none of the commands looked for has, comes back
/// empty).
pub(super) fn upper_name<'a>(arg: &[u8], buf: &'a mut [u8; 16]) -> &'a [u8] {
    let Some(b) = buf.get_mut(..arg.len()) else { return &[] };
    b.copy_from_slice(arg);
    b.make_ascii_uppercase();
    b
}

/// Loads a base file as Redis does (loadSingleAppendOnlyFile): a snapshot
/// (ours, and Redis's with `aof-use-rdb-preamble yes`), commands (Redis's
/// with `no`), or a snapshot followed by commands (a Redis 6
/// appendonly.aof), told apart by the snapshot's `REDIS` signature.
fn load_base(engine: &std::sync::Arc<Engine>, path: &Path, may_truncate: bool, tx: TxId) -> Result<Loaded, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let snapshot = r.fill_buf().map_err(|e| format!("reading {}: {e}", path.display()))?.starts_with(b"REDIS");
    let mut loaded = Loaded::default();
    if snapshot {
        // The snapshot's reader takes exactly its bytes: the commands, if
        // any, follow in `r`.
        loaded = load::load_from(&mut r, engine, tx, true).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let at = r.stream_position().map_err(|e| format!("reading {}: {e}", path.display()))?;
    replay_from(engine, path, r, at, may_truncate, tx)?;
    Ok(loaded)
}

/// Replays one increment file.
fn replay(engine: &std::sync::Arc<Engine>, path: &Path, may_truncate: bool, tx: TxId) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    replay_from(engine, path, BufReader::with_capacity(1 << 20, file), 0, may_truncate, tx)
}

/// Replays the commands of `path` from `r`, at `offset` in the file.
fn replay_from(
    engine: &std::sync::Arc<Engine>,
    path: &Path,
    mut r: BufReader<std::fs::File>,
    mut offset: u64,
    may_truncate: bool,
    tx: TxId,
) -> Result<(), String> {
    let mut sink = Sink::new(engine, tx, true);
    let mut db = 0usize;
    // A transaction being read: its commands and where it started.
    let mut multi: Option<(Vec<Vec<Vec<u8>>>, u64)> = None;
    let named = |e: String| format!("{}: {e}", path.display());
    let bad_format = |e: String| {
        format!(
            "Bad file format reading the append only file {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest> ({e})",
            path.display()
        )
    };
    loop {
        let before = offset;
        match read_command(&mut r, &mut offset).map_err(bad_format)? {
            Read1::Command(args) => {
                let mut up = [0; 16];
                match (upper_name(&args[0], &mut up), &mut multi) {
                    (b"MULTI", None) => multi = Some((Vec::new(), before)),
                    (b"EXEC", Some(_)) => {
                        let (cmds, _) = multi.take().expect("in a transaction");
                        for c in cmds {
                            apply(engine, &mut sink, &mut db, &c).map_err(named)?;
                        }
                    }
                    (b"MULTI" | b"EXEC", _) => return Err(bad_format(format!("unbalanced MULTI/EXEC at offset {before}"))),
                    (_, Some((cmds, _))) => cmds.push(args),
                    (_, None) => {
                        apply(engine, &mut sink, &mut db, &args).map_err(|e| named(format!("{e} (command at offset {before})")))?
                    }
                }
            }
            Read1::End if multi.is_none() => break,
            Read1::End | Read1::Torn => {
                // Cut back to the last whole command outside a transaction.
                let keep = multi.as_ref().map_or(offset, |(_, start)| *start);
                if !may_truncate {
                    return Err(format!(
                        "Unexpected end of file reading the append only file {} (inside a command or transaction from offset {keep}). You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                        path.display()
                    ));
                }
                // Redis's words: a crash while the file was written.
                warn!("!!! Warning: short read while loading the AOF file {}!!!", path.display());
                warn!("!!! Truncating the AOF {} at offset {keep} !!!", path.display());
                let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| named(e.to_string()))?;
                f.set_len(keep).map_err(|e| named(e.to_string()))?;
                f.sync_all().map_err(|e| named(e.to_string()))?;
                warn!("AOF {} loaded anyway because aof-load-truncated is enabled", path.display());
                break;
            }
        }
    }
    sink.barrier().map_err(named)
}

/// Applies one journal command.
pub(super) fn apply(engine: &Engine, sink: &mut Sink, db: &mut usize, args: &[Vec<u8>]) -> Result<(), String> {
    let mut up = [0; 16];
    let name = upper_name(&args[0], &mut up);
    let databases = engine.cfg.databases;
    let index = |a: &[u8]| -> Result<usize, String> {
        std::str::from_utf8(a)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n < databases)
            .ok_or_else(|| "a database index out of range".to_string())
    };
    match (name, args.len()) {
        (b"SELECT", 2) => *db = index(&args[1])?,
        (b"DEL", n) if n >= 2 => {
            for k in &args[1..] {
                sink.put(*db, k, None)?;
            }
        }
        // Keys whose TTL has passed are kept until the end of loading (the
        // journal may still touch them), then expire, as in Redis.
        (b"SET", 3) => sink.put_string(*db, &args[1], &args[2], 0)?,
        (b"SET", 5) if args[3].eq_ignore_ascii_case(b"PXAT") => {
            let at: u64 = std::str::from_utf8(&args[4]).ok().and_then(|s| s.parse().ok()).ok_or("SET with a bad PXAT")?;
            sink.put_string(*db, &args[1], &args[2], at)?;
        }
        (b"RESTORE", _) if args.len() >= 4 => {
            let ttl: u64 = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse().ok()).ok_or("RESTORE with a bad TTL")?;
            let value = dump::decode(&args[3], engine.cfg.limits()).map_err(|e| format!("RESTORE with a bad payload ({e:?})"))?;
            sink.put(*db, &args[1], Some((value, ttl)))?;
        }
        (b"FLUSHDB", 1) => {
            let d = *db;
            sink.on_every_shard(move |sh| sh.flush_db(d))?;
        }
        (b"FLUSHALL", 1) => {
            let d = *db;
            sink.on_every_shard(move |sh| sh.flush_all(d))?
        }
        // ASYNC or SYNC (a redis-server's journal): the same for the data.
        (b"FLUSHDB" | b"FLUSHALL", 2) => return apply(engine, sink, db, &args[..1]),
        (b"SWAPDB", 3) => {
            let (a, b) = (index(&args[1])?, index(&args[2])?);
            sink.on_every_shard(move |sh| sh.swap_dbs(a, b))?;
        }
        // A command journaled as sent (or any other a redis-server's
        // journal holds): run again on its key's shard.
        _ => sink.command(*db, args.iter().map(|a| bytes::Bytes::copy_from_slice(a)).collect())?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_in_capitals() {
        let mut up = [0; 16];
        assert_eq!(upper_name(b"set", &mut up), b"SET");
        assert_eq!(upper_name(b"Restore", &mut up), b"RESTORE");
        assert_eq!(upper_name(b"", &mut up), b"");
        assert_eq!(upper_name(b"a-name-longer-than-16", &mut up), b"", "no command looked for is that long");
    }
}
