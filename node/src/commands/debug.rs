//! DEBUG, the subcommands test suites use: RELOAD, LOADAOF, SLEEP,
//! SET-ACTIVE-EXPIRE, SET-SKIP-CHECKSUM-VALIDATION, OBJECT, POPULATE, PROTOCOL, ERROR, LOG, DIGEST,
//! DIGEST-VALUE, SEGFAULT, PANIC. Refused unless
//! `enable-debug-command` allows it, as in Redis 7.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::persistence::{ask, protection_allows};
use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::snapshot::SaveKind;
use crate::store::{digest, Value};
use crate::util::{now_ms, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[cmd(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    &["admin", "slow", "dangerous"],
    "server",
    "A container for debugging commands.",
    Exec::Coord(handler!(async |cx, a| debug(cx, a))),
)];

const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about the `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD",
    "    Save the RDB on disk and reload it back to memory.",
    "PANIC",
    "    Panic the server by calling abort(): the crash report, then the end.",
    "SEGFAULT",
    "    Crash the server with sigsegv: the crash report, then the end.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Print this help.",
];

/// DEBUG LOADAOF: the journal written and fsynced, the data emptied and
/// loaded again from it (its base and increments), every shard held
/// meanwhile and nothing of it journaled again; the libraries are the
/// journal's too. As in Redis, a journal that cannot be loaded ends the
/// process; without a journal on disk the data is left alone (Redis
/// exits).
async fn load_aof(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    if !crate::persist::journal_exists(&engine) {
        return Err(CmdError::err("there is no append only file to load: turn the journal on with CONFIG SET appendonly yes"));
    }
    let all: Vec<usize> = (0..engine.nshards()).collect();
    cx.lock(&all).await;
    cx.broadcast(|sh| {
        sh.journal_mute(true);
        sh.flush_all(0);
    })
    .await;
    let e = engine.clone();
    cx.run_on(0, move |_| super::scripting::restore_libraries(&e, &[])).await.map_err(CmdError::Other)?;
    let (tx, e) = (cx.tx_id(), engine.clone());
    let (done, loaded) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("loading".into())
        .spawn(move || {
            let _ = done.send(crate::persist::load_journal_again(&e, tx));
        })
        .map_err(|e| CmdError::err(format!("cannot start loading: {e}")))?;
    let loaded = loaded.await.map_err(|_| CmdError::err("the node is shutting down"))?;
    cx.broadcast(|sh| {
        sh.journal_mute(false);
        sh.forget_changes();
    })
    .await;
    match loaded {
        Ok(Some(l)) => {
            engine.saves.load_keys.store(l.keys, Relaxed);
            engine.saves.saved_changes.store(0, Relaxed);
            tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
            cx.out().ok();
            Ok(())
        }
        Ok(None) => Err(CmdError::err("the append only file went away while it was loaded")),
        Err(e) => {
            tracing::error!("Fatal error loading the DB: {e}. Exiting.");
            std::process::exit(1);
        }
    }
}

/// Keys DEBUG POPULATE writes per job: a shard is never held for long.
const POPULATE_CHUNK: usize = 10_000;

async fn debug(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    let allowed = protection_allows(cx, &engine.cfg.enable_debug_command)?;
    if !allowed {
        return Err(CmdError::err(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    let sub = args[1].to_ascii_uppercase();
    match (sub.as_slice(), args.len()) {
        (b"HELP", 2) => cx.out().help(HELP),
        (b"RELOAD", 2) => {
            ask(cx.engine(), SaveKind::Reload).await?;
            cx.out().ok();
        }
        (b"LOADAOF", 2) => load_aof(cx).await?,
        (b"RELOAD", _) => return Err(CmdError::err("DEBUG RELOAD only supports the plain form here (no MERGE/NOFLUSH/NOSAVE)")),
        (b"SLEEP", 3) => {
            // Redis stops its one thread; here every shard thread stops
            // (together), and with them the connections they serve.
            let secs = std::str::from_utf8(&args[2]).ok().and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(0.0);
            let pause = std::time::Duration::from_secs_f64(secs.clamp(0.0, 1e9));
            if !pause.is_zero() {
                cx.broadcast(move |_| std::thread::sleep(pause)).await;
            }
            cx.out().ok();
        }
        (b"SET-SKIP-CHECKSUM-VALIDATION", 3) => {
            let on = std::str::from_utf8(&args[2]).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0) != 0;
            crate::store::rdb::SKIP_CHECKSUM.store(on, Relaxed);
            cx.out().ok();
        }
        (b"SET-ACTIVE-EXPIRE", 3) => {
            let on = std::str::from_utf8(&args[2]).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0) != 0;
            crate::shard::ACTIVE_EXPIRE.store(on, Relaxed);
            cx.out().ok();
        }
        (b"OBJECT", 3) => object(cx, &args[2]).await?,
        (b"DIGEST", 2) => {
            let d = dataset_digest(cx).await;
            cx.out().simple(&digest::hex(&d));
        }
        (b"DIGEST-VALUE", _) => digest_values(cx, &args[2..]).await,
        (b"POPULATE", 3..=5) => populate(cx, args).await?,
        (b"PROTOCOL", 3) => protocol(cx, &args[2])?,
        (b"ERROR", 3) => {
            // As given, without a prefix; no line breaks in an error.
            let text: String = String::from_utf8_lossy(&args[2]).chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
            return Err(CmdError::Other(text));
        }
        (b"SEGFAULT", 2) => {
            // Redis writes through a bad pointer; the signal that raises is
            // raised here without one: the crash report, then the end.
            // SAFETY: raising a signal at this process.
            unsafe { libc::raise(libc::SIGSEGV) };
            std::process::abort();
        }
        (b"PANIC", 2) => {
            tracing::error!("DEBUG PANIC called at Unix time {}", now_ms() / 1000);
            if crate::config::process::EXIT_ON_PANIC.load(Relaxed) {
                std::process::exit(1);
            }
            std::process::abort();
        }
        (b"LOG", 3) => {
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            cx.out().ok();
        }
        _ => return Err(CmdError::subcommand_syntax("DEBUG", &args[1])),
    }
    Ok(())
}

/// DEBUG OBJECT: Redis's line, from the key's own shard. The value's
/// address is where it lives now; `serializedlength` is its RDB
/// encoding's size; `lru` the 24 bits of access metadata beside it.
async fn object(cx: &mut dyn Coord, key: &Bytes) -> CmdResult {
    let (db, shard, key) = (cx.db(), cx.shard_of(key), key.clone());
    let line = cx
        .run_on(shard, move |sh| {
            let now = now_ms();
            let (e, meta) = sh.db(db).peek(&key, now)?;
            let mut body = Vec::new();
            crate::store::rdb::write_object(&mut body, &e.value);
            let idle = crate::store::access::idle_ms(meta, now) / 1000;
            Some(format!(
                "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                &e.value as *const Value,
                e.value.encoding(),
                body.len(),
                meta,
                idle
            ))
        })
        .await;
    match line {
        Some(l) => cx.out().simple(&l),
        None => return Err(CmdError::NoSuchKey),
    }
    Ok(())
}

/// DEBUG DIGEST: every shard XORs the digests of its keys per database;
/// the databases are then mixed in in order, as Redis's one loop does.
async fn dataset_digest(cx: &mut dyn Coord) -> digest::Digest {
    let per_shard = cx
        .broadcast(|sh| {
            let mut dbs = Vec::new();
            for i in 0..sh.db_count() {
                let Some(d) = sh.db_if_exists(i) else { continue };
                let (mut x, mut held) = ([0u8; 20], false);
                d.for_each_held(|e, ttl| {
                    held = true;
                    digest::xor_into(&mut x, &digest::key_share(&e.key, &e.value, ttl));
                });
                if held {
                    dbs.push((i, x));
                }
            }
            dbs
        })
        .await;
    let mut dbs = std::collections::BTreeMap::<usize, digest::Digest>::new();
    for (i, x) in per_shard.into_iter().flatten() {
        digest::xor_into(dbs.entry(i).or_insert([0; 20]), &x);
    }
    digest::dataset(dbs)
}

/// DEBUG DIGEST-VALUE key...: each value's digest (zeros for a missing
/// key; a key whose TTL passed still counts, as in Redis).
async fn digest_values(cx: &mut dyn Coord, keys: &[Bytes]) {
    let db = cx.db();
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let (shard, key) = (cx.shard_of(key), key.clone());
        let d = cx
            .run_on(shard, move |sh| {
                let mut d = [0u8; 20];
                if let Some((e, at)) = sh.db_if_exists(db).and_then(|x| x.entry_as_is(&key)) {
                    digest::value(&mut d, &e.value, at.is_some());
                }
                d
            })
            .await;
        found.push(d);
    }
    let out = cx.out();
    out.array(found.len());
    for d in &found {
        out.simple(&digest::hex(d));
    }
}

/// DEBUG POPULATE count [prefix] [size]: `prefix:N` = `value:N` (cut or
/// zero-padded to `size`) for each N below count whose key is free.
async fn populate(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let positive =
        |b: &Bytes| parse_i64(b).ok().filter(|n| *n >= 0).ok_or_else(|| CmdError::err("value is out of range, must be positive"));
    let count = positive(&args[2])? as u64;
    let size = match args.get(4) {
        Some(s) => Some(positive(s)? as usize),
        None => None,
    };
    let prefix = args.get(3).map_or(&b"key"[..], |p| &p[..]).to_vec();
    let (db, nshards) = (cx.db(), cx.engine().nshards());
    let mut next = 0u64;
    while next < count {
        let end = (next + (POPULATE_CHUNK * nshards) as u64).min(count);
        let mut per_shard: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![Vec::new(); nshards];
        for n in next..end {
            let mut key = prefix.clone();
            key.push(b':');
            key.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            let mut val = format!("value:{n}").into_bytes();
            if let Some(size) = size.filter(|s| *s > 0) {
                val.resize(size, 0);
            }
            per_shard[cx.shard_of(&key)].push((key, val));
        }
        for (shard, keys) in per_shard.into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
            cx.run_on(shard, move |sh| {
                let now = now_ms();
                let d = sh.db(db);
                for (k, v) in keys {
                    if !d.exists(&k, now) {
                        d.insert_new(&k, Value::string_from_vec(v), 0);
                    }
                }
            })
            .await;
        }
        next = end;
    }
    cx.out().ok();
    Ok(())
}

/// DEBUG PROTOCOL type: one reply of that RESP type, as Redis's.
fn protocol(cx: &mut dyn Coord, name: &[u8]) -> CmdResult {
    let out = cx.out();
    match name.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        // Redis's test value (not pi).
        #[allow(clippy::approx_constant)]
        b"double" => out.double(3.141),
        b"bignum" => out.bignum("1234567999999999999999999999999999999"),
        b"null" => out.nil(),
        b"array" => {
            out.array(3);
            (0..3).for_each(|j| out.int(j));
        }
        b"set" => {
            out.set(3);
            (0..3).for_each(|j| out.int(j));
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.boolean(j == 1);
            }
        }
        b"attrib" => {
            if out.resp3 {
                out.attribute(1);
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.resp3 {
                return Err(CmdError::err("RESP2 is not supported by this command"));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.boolean(true),
        b"false" => out.boolean(false),
        b"verbatim" => out.verbatim("This is a verbatim\nstring"),
        _ => {
            return Err(CmdError::err(
                "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    }
    Ok(())
}
