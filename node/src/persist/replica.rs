//! The replica's side of replication: a link thread that connects to the
//! primary, makes Redis's handshake (PING, AUTH with `masterauth` /
//! `masteruser` when set, REPLCONF listening-port and capa, PSYNC ? -1), loads the snapshot the primary sends in place of the
//! data, then applies the stream of writes as the journal's replay does
//! (`aof_load::apply`: SELECT, SET/RESTORE/DEL states, commands journaled
//! as sent, MULTI/EXEC), counting the offset and acknowledging it every
//! second (`REPLCONF ACK`). When the link breaks it starts over with a
//! full resync. REPLICAOF NO ONE (or another REPLICAOF) ends it: each link
//! has a generation, and a link whose generation is not the node's stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::aof_load::{apply, read_command, Read1};
use super::load::{self, Sink};
use crate::shard::repl::Master;
use crate::shard::{Engine, NO_TX};

/// Starts following `host:port` (replacing any link).
pub fn follow(engine: &Arc<Engine>, host: String, port: u16) {
    let master = Arc::new(Master::new(host, port));
    let gen = engine.repl.set_master(Some(master.clone()));
    let e = engine.clone();
    let spawned = std::thread::Builder::new().name("replica-link".into()).spawn(move || {
        while e.repl.generation() == gen {
            if let Err(err) = link(&e, &master, gen) {
                if e.repl.generation() == gen {
                    warn!("replication link with {}:{}: {err}", master.host, master.port);
                }
            }
            master.link_up.store(false, Relaxed);
            master.syncing.store(false, Relaxed);
            if e.repl.generation() == gen {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
    if let Err(e) = spawned {
        warn!("cannot start the replication link: {e}");
    }
}

/// One command, RESP-encoded.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::shard::journal::command(&mut out, &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    out
}

/// Reads one reply line (without CRLF), skipping the newlines a primary
/// sends to keep the link alive while its snapshot is being made.
fn line(r: &mut impl BufRead) -> Result<String, String> {
    loop {
        let mut l = Vec::new();
        r.read_until(b'\n', &mut l).map_err(|e| e.to_string())?;
        if l.is_empty() {
            return Err("the primary closed the connection".into());
        }
        if l == b"\n" {
            continue;
        }
        if l.len() > 64 * 1024 {
            return Err("a reply line too long".into());
        }
        return Ok(String::from_utf8_lossy(&l).trim_end().to_string());
    }
}

fn ask(sock: &mut TcpStream, r: &mut impl BufRead, args: &[&str]) -> Result<String, String> {
    sock.write_all(&resp(args)).map_err(|e| e.to_string())?;
    let reply = line(r)?;
    if reply.starts_with('-') {
        return Err(format!("{} answered {reply}", args[0]));
    }
    Ok(reply)
}

fn link(engine: &Arc<Engine>, master: &Arc<Master>, gen: u64) -> Result<(), String> {
    let addr = format!("{}:{}", master.host, master.port);
    let mut sock = TcpStream::connect(&addr).map_err(|e| format!("connecting: {e}"))?;
    sock.set_nodelay(true).ok();
    *master.sock.lock().unwrap_or_else(|e| e.into_inner()) = sock.try_clone().ok();
    if engine.repl.generation() != gen {
        return Ok(());
    }
    master.touch();
    let mut r = BufReader::with_capacity(1 << 16, sock.try_clone().map_err(|e| e.to_string())?);
    // A primary that wants AUTH first says so to the PING; that is fine.
    sock.write_all(&resp(&["PING"])).map_err(|e| e.to_string())?;
    let pong = line(&mut r)?;
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") && !pong.starts_with("-NOPERM") {
        return Err(format!("PING answered {pong}"));
    }
    let auth = engine.cfg.masterauth.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let user = engine.cfg.masteruser.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match (auth.is_empty(), user.is_empty()) {
        (true, _) => {}
        (false, true) => drop(ask(&mut sock, &mut r, &["AUTH", &auth])?),
        (false, false) => drop(ask(&mut sock, &mut r, &["AUTH", &user, &auth])?),
    }
    let port = engine.cfg.port.to_string();
    ask(&mut sock, &mut r, &["REPLCONF", "listening-port", &port])?;
    ask(&mut sock, &mut r, &["REPLCONF", "capa", "psync2"])?;
    master.syncing.store(true, Relaxed);
    let full = ask(&mut sock, &mut r, &["PSYNC", "?", "-1"])?;
    let mut words = full.split_whitespace();
    let (Some("+FULLRESYNC"), Some(replid), Some(offset)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("PSYNC answered {full}"));
    };
    let mut offset: u64 = offset.parse().map_err(|_| format!("PSYNC answered {full}"))?;
    let replid = replid.to_string();
    // The snapshot: `$<len>` then the bytes, into a file that is loaded.
    let head = line(&mut r)?;
    let len: u64 =
        head.strip_prefix('$').and_then(|n| n.parse().ok()).ok_or_else(|| format!("expected the snapshot's length, got {head}"))?;
    let path = engine.cfg.rdb_path().with_file_name(format!("temp-sync-{}.rdb", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let copied = std::io::copy(&mut (&mut r).take(len), &mut f).map_err(|e| e.to_string())?;
        if copied != len {
            let _ = std::fs::remove_file(&path);
            return Err("the primary closed the connection during the snapshot".into());
        }
    }
    if engine.repl.generation() != gen {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let mut sink = Sink::new(engine, NO_TX, true);
    sink.on_every_shard(|sh| sh.flush_all())?;
    let loaded = load::load_file(&path, engine, NO_TX, false);
    let _ = std::fs::remove_file(&path);
    let loaded = loaded?;
    info!(keys = loaded.keys, "synchronised with the primary {addr}");
    *engine.repl.replid.lock().unwrap_or_else(|e| e.into_inner()) = replid;
    engine.repl.offset.store(offset, Relaxed);
    master.syncing.store(false, Relaxed);
    master.link_up.store(true, Relaxed);
    master.touch();
    // Acknowledgements, every second, from their own thread.
    let mut acks = sock.try_clone().map_err(|e| e.to_string())?;
    let (e2, m2) = (engine.clone(), master.clone());
    std::thread::Builder::new()
        .name("replica-ack".into())
        .spawn(move || {
            while e2.repl.generation() == gen && m2.link_up.load(Relaxed) {
                let off = e2.repl.offset.load(Relaxed).to_string();
                if acks.write_all(&resp(&["REPLCONF", "ACK", &off])).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .map_err(|e| e.to_string())?;
    stream(engine, master, gen, &mut sock, &mut r, &mut offset)
}

/// Applies the stream until the link breaks or is ended.
fn stream(
    engine: &Engine,
    master: &Master,
    gen: u64,
    sock: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    offset: &mut u64,
) -> Result<(), String> {
    let mut sink = Sink::new(engine, NO_TX, true);
    let mut db = 0usize;
    let mut multi: Option<Vec<Vec<Vec<u8>>>> = None;
    loop {
        if r.buffer().is_empty() {
            // Everything read so far is applied before the offset says so.
            sink.barrier()?;
            engine.repl.offset.store(*offset, Relaxed);
        }
        let mut at = *offset;
        let cmd = match read_command(r, &mut at)? {
            Read1::Command(args) => args,
            Read1::End | Read1::Torn => return Err("the primary closed the connection".into()),
        };
        if engine.repl.generation() != gen {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        master.touch();
        let name = cmd[0].to_ascii_uppercase();
        match (name.as_slice(), &mut multi) {
            (b"MULTI", None) => multi = Some(Vec::new()),
            (b"EXEC", Some(_)) => {
                for c in multi.take().unwrap_or_default() {
                    apply_one(engine, &mut sink, &mut db, &c)?;
                }
            }
            (b"PING", None) => {}
            (b"REPLCONF", None) if cmd.len() >= 2 && cmd[1].eq_ignore_ascii_case(b"GETACK") => {
                sink.barrier()?;
                let off = (*offset).to_string();
                sock.write_all(&resp(&["REPLCONF", "ACK", &off])).map_err(|e| e.to_string())?;
            }
            (_, Some(cmds)) => cmds.push(cmd),
            (_, None) => apply_one(engine, &mut sink, &mut db, &cmd)?,
        }
        *offset = at;
    }
}

/// Applies one command of the stream: what the journal writes (a Damselfly
/// primary's records) as the journal's replay does, any other write (a
/// redis-server primary sends its clients' commands) run on its key's
/// shard.
fn apply_one(engine: &Engine, sink: &mut Sink, db: &mut usize, args: &[Vec<u8>]) -> Result<(), String> {
    let name = args[0].to_ascii_uppercase();
    let journal_form = match (name.as_slice(), args.len()) {
        (b"SELECT", 2) | (b"SET", 3) | (b"FLUSHDB", 1) | (b"FLUSHALL", 1) | (b"SWAPDB", 3) => true,
        (b"SET", 5) => args[3].eq_ignore_ascii_case(b"PXAT"),
        (b"DEL", n) => n >= 2,
        (b"RESTORE", n) => n >= 4,
        _ => false,
    };
    if journal_form {
        return apply(engine, sink, db, args);
    }
    // FLUSHALL / FLUSHDB ASYNC or SYNC: the same for every shard.
    if (name == b"FLUSHALL" || name == b"FLUSHDB") && args.len() == 2 {
        return apply(engine, sink, db, &args[..1]);
    }
    sink.replicated(*db, args.iter().map(|a| bytes::Bytes::copy_from_slice(a)).collect())
}
