//! The replica's side of replication: a link thread that connects to the
//! primary, makes Redis's handshake (PING, AUTH with `masterauth` /
//! `masteruser` when set, REPLCONF listening-port and capa, then
//! `PSYNC <replid> <offset + 1>` to continue this node's history). On
//! `+CONTINUE` the stream goes on from there; on `+FULLRESYNC` the
//! snapshot the primary sends (`persist::payload`) replaces the data, as
//! `repl-diskless-load` says. The stream of writes is
//! applied as the journal's replay does (`aof_load::apply`: SELECT,
//! SET/RESTORE/DEL states, commands journaled as sent, MULTI/EXEC); once
//! applied, its bytes as received count in the offset and go to the
//! backlog and this node's own replicas (`ReplState::propagate`), and the
//! offset is acknowledged every second (`REPLCONF ACK`). A transaction
//! counts once its EXEC is in, so a link that breaks inside one continues
//! before its MULTI. REPLICAOF NO ONE (or another REPLICAOF) ends the
//! link: each link has a generation, and a link whose generation is not
//! the node's stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::aof_load::{apply, read_command, upper_name, Read1};
use super::duplex::Duplex;
use super::load::{self, Sink};
use super::payload::{Form, Payload};
use crate::config::repl::DisklessLoad;
use crate::shard::repl::Master;
use crate::shard::{Engine, NO_TX};

/// Starts following `host:port` (replacing any link).
pub fn follow(engine: &Arc<Engine>, host: String, port: u16) {
    let master = Arc::new(Master::new(host, port));
    let gen = engine.repl.set_master(Some(master.clone()));
    oom_score_for_role(engine, true);
    let e = engine.clone();
    let spawned = std::thread::Builder::new().name("replica-link".into()).spawn(move || {
        while e.repl.generation() == gen {
            if let Err(err) = link(&e, &master, gen) {
                if e.repl.generation() == gen {
                    match timed_out(&e, &master) {
                        Some(words) => warn!("{words}"),
                        None => warn!("replication link with {}:{}: {err}", master.host, master.port),
                    }
                }
            }
            master.handshake.store(false, Relaxed);
            if master.link_up.swap(false, Relaxed) {
                master.down_since_ms.store(crate::util::now_ms(), Relaxed);
            }
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

/// When the link ended because the primary sent nothing for
/// `repl-timeout`, Redis's words for it in the phase it was in.
fn timed_out(engine: &Engine, master: &Master) -> Option<&'static str> {
    let limit = engine.cfg.repl.timeout.load(Relaxed).saturating_mul(1000);
    let silent = crate::util::now_ms().saturating_sub(master.last_io_ms.load(Relaxed));
    if silent + 100 < limit {
        return None;
    }
    Some(if master.link_up.load(Relaxed) {
        "MASTER timeout: no data nor PING received..."
    } else if master.syncing.load(Relaxed) {
        "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."
    } else {
        "Timeout connecting to the MASTER..."
    })
}

/// `oom-score-adj` for the role the node just took (a warning if the
/// kernel refuses it, as Redis logs it).
pub fn oom_score_for_role(engine: &Engine, replica: bool) {
    if let Err(e) = engine.cfg.process.apply_oom_score(replica) {
        warn!("{e}");
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

fn ask(sock: &mut Duplex, r: &mut impl BufRead, args: &[&str]) -> Result<String, String> {
    sock.write_all(&resp(args)).map_err(|e| e.to_string())?;
    let reply = line(r)?;
    if reply.starts_with('-') {
        return Err(format!("{} answered {reply}", args[0]));
    }
    Ok(reply)
}

fn link(engine: &Arc<Engine>, master: &Arc<Master>, gen: u64) -> Result<(), String> {
    // The data (and, with appendonly, the journal's writer) are set up
    // first, as Redis loads before it connects to its primary.
    while engine.saves.loading() {
        if engine.repl.generation() != gen {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let addr = format!("{}:{}", master.host, master.port);
    let params = engine.cfg.tls.params();
    let tls = if params.replication { Some(Arc::new(crate::config::tls::client(&params)?)) } else { None };
    // Silence is counted from the attempt on (`timed_out`).
    master.touch();
    let mut sock = Duplex::connect(&master.host, master.port, engine.cfg.conn.source_addr(), tls)?;
    *master.sock.lock().unwrap_or_else(|e| e.into_inner()) = sock.tcp().ok();
    let client = LinkClient::register(engine, &sock);
    master.handshake.store(true, Relaxed);
    // `repl-timeout`: a primary that sends nothing (not even its PINGs)
    // for that long ends the link, which is then made again (a TLS link
    // counts its short read slices against it, `Duplex`).
    let timeout = Duration::from_secs(engine.cfg.repl.timeout.load(Relaxed));
    sock.set_read_limit(timeout).map_err(|e| e.to_string())?;
    if engine.repl.generation() != gen {
        return Ok(());
    }
    master.touch();
    let counted = Counted {
        inner: sock.try_clone().map_err(|e| e.to_string())?,
        engine: engine.clone(),
        master: master.clone(),
        client: client.as_ref().map(|c| c.info.clone()),
    };
    let mut r = BufReader::with_capacity(1 << 16, counted);
    // A primary that wants AUTH first says so to the PING; that is fine.
    sock.write_all(&resp(&["PING"])).map_err(|e| e.to_string())?;
    let pong = line(&mut r)?;
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") && !pong.starts_with("-NOPERM") {
        return Err(format!("PING answered {pong}"));
    }
    let auth = engine.cfg.masterauth.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let user = engine.cfg.masteruser.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let authed = match (auth.is_empty(), user.is_empty()) {
        (true, _) => Ok(String::new()),
        (false, true) => ask(&mut sock, &mut r, &["AUTH", &auth]),
        (false, false) => ask(&mut sock, &mut r, &["AUTH", &user, &auth]),
    };
    // Redis's words, which operators and tools look for in the log.
    authed.map_err(|e| format!("Unable to AUTH to MASTER: {}", e.trim_start_matches("AUTH answered ")))?;
    // Over TLS this node's replicas are expected on its TLS port too.
    let port = if params.replication && params.port != 0 { params.port } else { engine.cfg.port() };
    // `replica-announce-port` / `-ip`: what the primary shows instead.
    let port = match engine.cfg.repl.announce_port.load(Relaxed) {
        0 => port.to_string(),
        announced => announced.to_string(),
    };
    ask(&mut sock, &mut r, &["REPLCONF", "listening-port", &port])?;
    let ip = engine.cfg.repl.announce_ip();
    if !ip.is_empty() {
        ask(&mut sock, &mut r, &["REPLCONF", "ip-address", &ip])?;
    }
    // As Redis 7: this replica reads diskless (`$EOF:<mark>`) payloads.
    ask(&mut sock, &mut r, &["REPLCONF", "capa", "eof", "capa", "psync2"])?;
    // Continue this node's history where it is, if the primary has it (a
    // node that never counted its stream has none: `PSYNC ? -1`).
    let (ours, from) = (engine.repl.replid(), engine.repl.offset.load(Relaxed) + 1);
    let fresh = from == 1 && !engine.repl.lock_backlog().active;
    let (id, at) = if fresh { ("?".to_string(), "-1".to_string()) } else { (ours.clone(), from.to_string()) };
    let reply = ask(&mut sock, &mut r, &["PSYNC", &id, &at])?;
    master.handshake.store(false, Relaxed);
    let mut sink = Sink::new(engine, NO_TX, true).for_link();
    if let Some(id) = reply.strip_prefix("+CONTINUE") {
        let id = id.trim();
        if !id.is_empty() && !id.eq_ignore_ascii_case(&ours) {
            // The primary's history has a new id from `from` on (it was
            // promoted): ours becomes the second one, and this node's
            // replicas learn the new id by resyncing.
            let _b = engine.repl.lock_backlog();
            *engine.repl.replid2.lock().unwrap_or_else(|e| e.into_inner()) = ours;
            *engine.repl.replid.lock().unwrap_or_else(|e| e.into_inner()) = id.to_string();
            engine.repl.second_offset.store(from as i64, Relaxed);
            drop(_b);
            engine.repl.drop_feeds("the primary's replication id changed");
        }
        // Redis's words, which operators and tools look for in the log.
        info!("Successful partial resynchronization with master {addr} from offset {from}");
    } else {
        full_sync(engine, master, gen, &mut r, &reply, &mut sink)?;
        if engine.repl.generation() != gen {
            return Ok(());
        }
    }
    // Shards journal what the link applies, so that once promoted this
    // node's stream continues its backlog (`JournalMsg::Applied`).
    super::aof::start_sink(engine)?;
    sink.on_every_shard(|sh| {
        if !sh.journaling() {
            sh.journal_start();
        }
    })?;
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
    let mut link = Link { engine, sink, raw: Vec::new(), committed: 0, held: None };
    let res = link.stream(master, gen, &mut sock, &mut r);
    // What was applied counts, however the link ended: a partial resync
    // continues after it.
    link.commit()?;
    res
}

/// `+FULLRESYNC <replid> <offset>`: the snapshot (`$<len>` or
/// `$EOF:<mark>`, then the RDB) replaces the data, and the primary's
/// history starts at its offset. `repl-diskless-load` says how: through a
/// temporary file (`disabled`), or from the socket — straight into the
/// shards when they hold no key (`on-empty-db`, else through the file), or
/// decoded into memory first while the current data keeps serving, which
/// it replaces only once the whole payload has arrived (`swapdb`).
fn full_sync(engine: &Arc<Engine>, master: &Master, gen: u64, r: &mut impl BufRead, reply: &str, sink: &mut Sink) -> Result<(), String> {
    let mut words = reply.split_whitespace();
    let (Some("+FULLRESYNC"), Some(replid), Some(offset)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("PSYNC answered {reply}"));
    };
    let offset: u64 = offset.parse().map_err(|_| format!("PSYNC answered {reply}"))?;
    master.syncing.store(true, Relaxed);
    // The data is about to be replaced: this node's history ends, and its
    // replicas resync.
    engine.repl.new_history(None, 0);
    engine.repl.drop_feeds("this node is resynchronising with its primary");
    let form = Form::parse(&line(r)?)?;
    let mut body = Payload::new(r, form);
    let lazy = engine.cfg.repl.lazy_flush.load(Relaxed);
    let how = match engine.cfg.repl.diskless_load() {
        DisklessLoad::Disabled => "disk",
        DisklessLoad::OnEmptyDb if holds_keys(sink)? => "disk",
        DisklessLoad::OnEmptyDb => "socket",
        DisklessLoad::Swapdb => "swapdb",
    };
    let io = |e: std::io::Error| e.to_string();
    info!(load = how, "MASTER <-> REPLICA sync: Loading DB in memory");
    let loaded = match how {
        "disk" => {
            let path = engine.cfg.rdb_path().with_file_name(format!("temp-sync-{}.rdb", std::process::id()));
            let copied = std::fs::File::create(&path)
                .map_err(|e| format!("creating {}: {e}", path.display()))
                .and_then(|mut f| std::io::copy(&mut body, &mut f).map_err(io));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            if engine.repl.generation() != gen {
                let _ = std::fs::remove_file(&path);
                return Ok(());
            }
            sink.on_every_shard(move |sh| drop_old_data(sh, lazy))?;
            let _loading = Flag::raise(&engine.saves.loading);
            let loaded = load::load_file(&path, engine, NO_TX, false);
            keep_sync_file(engine, &path, loaded.is_ok());
            loaded?
        }
        "socket" => {
            let _loading = Flag::raise(&engine.saves.loading);
            sink.on_every_shard(move |sh| drop_old_data(sh, lazy))?;
            let loaded = load::load_from(&mut body, engine, NO_TX, false).and_then(|l| end_of(&mut body).map(|()| l));
            if loaded.is_err() {
                // Half a snapshot is no data set: start from nothing again.
                sink.on_every_shard(move |sh| drop_old_data(sh, lazy))?;
            }
            loaded?
        }
        _ => {
            let staged = {
                let _async = Flag::raise(&engine.saves.async_loading);
                let staged = load::stage(&mut body, engine)?;
                end_of(&mut body)?;
                staged
            };
            if engine.repl.generation() != gen {
                return Ok(());
            }
            // The old data goes and the new comes in: clients wait.
            let _loading = Flag::raise(&engine.saves.loading);
            sink.on_every_shard(move |sh| drop_old_data(sh, lazy))?;
            staged.apply(engine, NO_TX)?
        }
    };
    info!(
        keys = loaded.keys,
        bytes = body.total(),
        load = how,
        "MASTER <-> REPLICA sync: Finished with success ({}:{})",
        master.host,
        master.port
    );
    engine.repl.new_history(Some(replid.to_string()), offset);
    Ok(())
}

/// INFO's `loading` (clients get -LOADING) or `async_loading` (the old
/// data keeps serving), raised while a full sync's snapshot loads and
/// lowered when dropped, whichever way the load ends.
struct Flag<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Flag<'a> {
    fn raise(flag: &'a std::sync::atomic::AtomicBool) -> Flag<'a> {
        flag.store(true, Relaxed);
        Flag(flag)
    }
}

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// A full sync empties the shards before the snapshot loads: their keys
/// freed at once, or (`replica-lazy-flush yes`) by the lazy free thread.
fn drop_old_data(sh: &mut crate::shard::Shard, lazy: bool) {
    if lazy {
        sh.flush_async(None, 0);
    } else {
        sh.flush_all(0);
    }
}

/// A snapshot received through a file becomes the node's `dbfilename`, as
/// Redis's replica keeps it, unless `rdb-del-sync-files yes` and the node
/// persists nothing (no save points, no journal); a failed one goes.
fn keep_sync_file(engine: &Engine, path: &std::path::Path, loaded: bool) {
    let cfg = &engine.cfg;
    let persists = !cfg.save_points().is_empty() || cfg.appendonly.load(Relaxed);
    if loaded && (persists || !cfg.aof.rdb_del_sync_files.load(Relaxed)) {
        let target = cfg.rdb_path();
        match std::fs::rename(path, &target) {
            Ok(()) => return super::writer::sync_dir(&target),
            Err(e) => warn!("keeping the synchronisation snapshot as {}: {e}", target.display()),
        }
    }
    let _ = std::fs::remove_file(path);
}

/// Whether any shard holds a key (for `repl-diskless-load on-empty-db`).
fn holds_keys(sink: &mut Sink) -> Result<bool, String> {
    let keys = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let k = keys.clone();
    sink.on_every_shard(move |sh| {
        let n: usize = (0..sh.db_count()).filter_map(|i| sh.db_if_exists(i).map(|d| d.len())).sum();
        k.fetch_add(n as u64, Relaxed);
    })?;
    Ok(keys.load(Relaxed) > 0)
}

/// After the RDB's checksum only the payload's end may follow.
fn end_of(body: &mut Payload<impl BufRead>) -> Result<(), String> {
    match body.finish() {
        Ok(true) => Ok(()),
        Ok(false) => Err("the snapshot payload goes on after the end of its RDB".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads through to `raw` every byte it consumes: the stream as the
/// primary sent it, which this node's backlog and replicas get.
/// The link's reading side, counting what it reads from the primary
/// (INFO's `total_net_repl_input_bytes`).
struct Counted {
    inner: Duplex,
    engine: Arc<Engine>,
    master: Arc<Master>,
    /// The link's client record (its `idle`).
    client: Option<Arc<crate::shard::clients::ClientInfo>>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.engine.repl.input_bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        self.master.touch();
        if let Some(c) = &self.client {
            c.last_ms.store(crate::util::coarse_now_ms(), Relaxed);
        }
        Ok(n)
    }
}

/// The link as a client of this node (flag `M`, type `master`, the
/// primary's address): CLIENT LIST shows it, CLIENT KILL breaks it (the
/// link is made again, continuing with PSYNC). Unregistered when the link
/// ends.
struct LinkClient<'a> {
    engine: &'a Engine,
    info: Arc<crate::shard::clients::ClientInfo>,
}

impl<'a> LinkClient<'a> {
    fn register(engine: &'a Engine, sock: &Duplex) -> Option<LinkClient<'a>> {
        let tcp = sock.tcp().ok()?;
        let (peer, local) = (tcp.peer_addr().ok()?, tcp.local_addr().ok()?);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&tcp);
        let info = engine.clients.register(peer.to_string(), local.to_string(), fd, false);
        info.master.store(true, Relaxed);
        let _ = info.on_kill.set(Box::new(move || {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }));
        Some(LinkClient { engine, info })
    }
}

impl Drop for LinkClient<'_> {
    fn drop(&mut self) {
        self.engine.clients.unregister(self.info.id);
    }
}

struct Tee<'a, R: BufRead> {
    r: &'a mut R,
    raw: &'a mut Vec<u8>,
}

impl<R: BufRead> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        self.raw.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tee<'_, R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.r.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(b) = self.r.fill_buf() {
            self.raw.extend_from_slice(&b[..amt.min(b.len())]);
        }
        self.r.consume(amt);
    }
}

/// The stream being applied.
struct Link<'a> {
    engine: &'a Engine,
    sink: Sink<'a>,
    /// Bytes read and not yet in the offset; the first `committed` of them
    /// are whole commands outside a transaction, sent to the shards.
    raw: Vec<u8>,
    committed: usize,
    /// `ReplState::apply_gate`, held from the first command sent to the
    /// shards until it counts.
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Link<'_> {
    /// Once the shards have applied what was sent, it counts: the offset,
    /// the backlog, this node's replicas.
    fn commit(&mut self) -> Result<(), String> {
        if self.committed == 0 {
            return Ok(());
        }
        let _gate = self.held.take();
        if let Err(e) = self.sink.barrier() {
            // A command could not be applied, and the batch it was in
            // stopped there: the data matches no offset of the primary's
            // stream any more, so the next sync is a full one.
            self.engine.repl.new_history(None, 0);
            self.engine.repl.drop_feeds("the replica's data no longer matches its primary's stream");
            return Err(e);
        }
        let cfg = &self.engine.cfg;
        let done = &self.raw[..self.committed];
        self.engine.repl.propagate(done, cfg.repl.backlog_size.load(Relaxed), cfg.output_limits[1].hard.load(Relaxed));
        self.raw.drain(..self.committed);
        self.committed = 0;
        Ok(())
    }

    fn hold(&mut self) {
        if self.held.is_none() {
            self.held = Some(self.engine.repl.apply_gate.clone().blocking_lock_owned());
        }
    }

    /// Applies the stream until the link breaks or is ended.
    fn stream(&mut self, master: &Master, gen: u64, sock: &mut Duplex, r: &mut BufReader<Counted>) -> Result<(), String> {
        let engine = self.engine;
        let mut db = engine.repl.link_db.load(Relaxed);
        let mut multi: Option<Vec<Vec<Vec<u8>>>> = None;
        loop {
            if r.buffer().is_empty() {
                self.commit()?;
                master.touch();
            }
            let mut at = 0;
            let cmd = match read_command(&mut Tee { r: &mut *r, raw: &mut self.raw }, &mut at)? {
                Read1::Command(args) => args,
                Read1::End | Read1::Torn => return Err("the primary closed the connection".into()),
            };
            if engine.repl.generation() != gen {
                sock.shutdown();
                return Ok(());
            }
            let mut up = [0; 16];
            match (upper_name(&cmd[0], &mut up), &mut multi) {
                (b"MULTI", None) => multi = Some(Vec::new()),
                (b"EXEC", Some(_)) => {
                    self.hold();
                    for c in multi.take().unwrap_or_default() {
                        apply_one(engine, &mut self.sink, &mut db, &c)?;
                    }
                }
                (b"PING", None) => {}
                (b"REPLCONF", None) if cmd.len() >= 2 && cmd[1].eq_ignore_ascii_case(b"GETACK") => {
                    // The offset acknowledged is the one before this command.
                    self.commit()?;
                    let off = engine.repl.offset.load(Relaxed).to_string();
                    sock.write_all(&resp(&["REPLCONF", "ACK", &off])).map_err(|e| e.to_string())?;
                }
                (_, Some(cmds)) => cmds.push(cmd),
                (_, None) => {
                    self.hold();
                    apply_one(engine, &mut self.sink, &mut db, &cmd)?
                }
            }
            if multi.is_none() {
                self.committed = self.raw.len();
                engine.repl.link_db.store(db, Relaxed);
            }
        }
    }
}

/// Applies one command of the stream: what the journal writes (a Damselfly
/// primary's records) as the journal's replay does, any other write (a
/// redis-server primary sends its clients' commands) run on its key's
/// shard.
fn apply_one(engine: &Engine, sink: &mut Sink, db: &mut usize, args: &[Vec<u8>]) -> Result<(), String> {
    let mut up = [0; 16];
    let name = upper_name(&args[0], &mut up);
    let journal_form = match (name, args.len()) {
        (b"SELECT", 2) | (b"SET", 3) | (b"FLUSHDB", 1) | (b"FLUSHALL", 1) | (b"SWAPDB", 3) => true,
        (b"SET", 5) => args[3].eq_ignore_ascii_case(b"PXAT"),
        (b"DEL", n) => n >= 2,
        (b"RESTORE", n) => n >= 4,
        _ => false,
    };
    if journal_form {
        return apply(engine, sink, db, args);
    }
    // A message for this node's subscribers (it changes no data).
    if name == b"PUBLISH" && args.len() == 3 {
        let (channel, message) = (bytes::Bytes::copy_from_slice(&args[1]), bytes::Bytes::copy_from_slice(&args[2]));
        engine.pubsub.publish(&channel, &message, &engine.cfg.output_limits[crate::config::CLASS_PUBSUB]);
        return Ok(());
    }
    // FLUSHALL / FLUSHDB ASYNC or SYNC: the same for every shard.
    if (name == b"FLUSHALL" || name == b"FLUSHDB") && args.len() == 2 {
        return apply(engine, sink, db, &args[..1]);
    }
    sink.replicated(*db, args.iter().map(|a| bytes::Bytes::copy_from_slice(a)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_records_exactly_the_bytes_read() {
        let stream = b"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*1\r\n$4\r\nPI";
        let mut r = std::io::BufReader::with_capacity(7, &stream[..]);
        let mut raw = Vec::new();
        let mut at = 0;
        for want in [&["PING"][..], &["SELECT", "3"]] {
            let Read1::Command(args) = read_command(&mut Tee { r: &mut r, raw: &mut raw }, &mut at).unwrap() else { panic!("no command") };
            assert_eq!(args, want.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>());
        }
        assert_eq!(raw, &stream[..raw.len()]);
        assert_eq!(raw.len(), 14 + 23);
        assert!(matches!(read_command(&mut Tee { r: &mut r, raw: &mut raw }, &mut at).unwrap(), Read1::Torn));
    }
}
