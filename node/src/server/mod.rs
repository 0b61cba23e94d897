//! Process start-up: one thread per shard, each with its own single-threaded
//! tokio runtime running that shard's inbox, its active-expiry timer and a
//! share of the client connections. The listeners (`port`, and `tls-port`
//! for TLS clients) hand accepted sockets to the threads in turn; a TLS
//! connection makes its handshake on the thread that serves it.

pub mod busy;
pub mod conn;
pub mod crash;
pub mod expiry;
pub mod housekeeping;
pub mod metrics;
pub mod unix;

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::shard::inbox::Inbox;
use crate::shard::listen;
use crate::shard::scripts::Scripting;
use crate::shard::{Engine, LocalShard, Shard};
use crate::slot::map::{Member, SlotMap};

/// Stack of each shard thread: deep enough for Lua scripts' recursion
/// (nested tables in replies, cjson's 1000 levels); only touched pages cost
/// memory.
const SHARD_STACK: usize = 64 << 20;

pub fn run(cfg: Config) -> std::io::Result<()> {
    // A busy script serves this layer's parked connections from its hook.
    let _ = crate::commands::scripting::exec::BUSY_SERVICE.set(busy::service);
    // The command table is built before the first client (it also installs
    // the error counter replies use), with the config file's renames.
    crate::commands::rename(&cfg.renames).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let _ = crate::commands::count();
    // The command clock's rate, measured before the first command is timed.
    crate::commands::clock::calibrate();
    let cfg = Arc::new(cfg);
    crate::store::rdb::set_compression(cfg.rdbcompression.load(Relaxed));
    let nshards = cfg.shards;
    let cluster = match &cfg.cluster {
        Some(c) => Some(Arc::new(cluster_map(&cfg, c)?)),
        None => None,
    };
    let engine = Engine::new(cfg.clone(), cluster.clone(), Scripting::new(crate::commands::is_command));
    // Users: requirepass, then the config file's `user` lines or the ACL file.
    crate::commands::acl::init(&engine).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let _ = crate::persist::RESTORE_FUNCTIONS.set(crate::commands::scripting::restore_libraries);
    let _ = crate::persist::load::REPLAY_COMMAND.set(crate::commands::persistence::replay);
    let _ = crate::persist::load::REPLICA_COMMAND.set(crate::commands::persistence::replicated);
    let _ = crate::persist::load::PARTS.set(crate::commands::persistence::parts);
    let _ = crate::persist::load::WIDE_COMMAND.set(crate::commands::internal::run_wide);
    let (save_tx, save_rx) = mpsc::unbounded_channel();
    let _ = engine.saves.saver.set(save_tx);
    let mut save_rx = Some(save_rx);
    if let Some(map) = cluster {
        crate::cluster::set_secret(cfg.cluster.as_ref().and_then(|c| c.secret.clone()));
        crate::cluster::set_tls(&cfg.tls.params())?;
        let dir = cfg.dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let bind = cfg.bind().first().cloned().unwrap_or_else(|| "127.0.0.1".into());
        crate::commands::cluster::configure(&engine);
        let has_data = cfg.appendonly.load(std::sync::atomic::Ordering::Relaxed) || cfg.rdb_path().exists();
        crate::cluster::start(engine.clone(), map, std::path::Path::new(&dir), &bind, has_data)?;
    }

    // Bind before starting threads so start-up errors are reported plainly.
    // `--port 0` leaves the plain port closed, as in Redis.
    let tls_port = cfg.tls.params().port;
    let bind = cfg.bind();
    let unix_path = unix::path(&cfg);
    if cfg.port() == 0 && tls_port == 0 && unix_path.is_none() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "Configured to not listen anywhere, exiting."));
    }
    let backlog = cfg.process.tcp_backlog.load(Relaxed);
    let plain = if cfg.port() == 0 { Vec::new() } else { listen::open(&bind, cfg.port(), backlog)? };
    let tls_sockets = if tls_port == 0 { Vec::new() } else { listen::open(&bind, tls_port, backlog)? };
    let unix_socket = match &unix_path {
        Some(path) => Some(unix::open(&cfg, path)?),
        None => None,
    };

    let metrics_listener = match cfg.metrics_port {
        Some(port) => {
            let addr = metrics::bind_addr(&bind, port);
            let l = std::net::TcpListener::bind(&addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("metrics endpoint on {addr}: {e}")))?;
            l.set_nonblocking(true)?;
            info!(%addr, "metrics endpoint: GET /metrics");
            Some(l)
        }
        None => None,
    };

    let mut conn_txs = Vec::new();
    let mut threads = Vec::new();
    for id in 0..nshards {
        let inbox = engine.inbox(id).clone();
        let (ctx, crx) = mpsc::unbounded_channel::<Incoming>();
        conn_txs.push(ctx);
        let engine = engine.clone();
        let saver = save_rx.take();
        threads.push(
            std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .stack_size(SHARD_STACK)
                .spawn(move || shard_thread(id, nshards, engine, inbox, crx, saver))?,
        );
    }
    // The snapshot file, if any, loads while clients already get -LOADING.
    crate::persist::load_at_start(&engine);
    if let Some((host, port)) = cfg.replicaof.clone() {
        crate::persist::replica::follow(&engine, host, port);
    }

    info!(port = cfg.port(), tls_port, shards = nshards, ?bind, "damselfly listening");
    announce_when_loaded(&engine);
    set_title(&cfg, &bind, tls_port);
    let relisten = engine.listeners.serve();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let node = engine.clone();
    rt.block_on(async move {
        for l in tls_sockets {
            tokio::spawn(accept_loop(TcpListener::from_std(l)?, true, conn_txs.clone(), engine.clone()));
        }
        if let Some(l) = unix_socket {
            tokio::spawn(unix::accept_loop(tokio::net::UnixListener::from_std(l)?, conn_txs.clone(), engine.clone()));
        }
        tokio::spawn(plain_port(plain, relisten, conn_txs.clone(), engine.clone()));
        if let Some(l) = metrics_listener {
            tokio::spawn(metrics::serve(TcpListener::from_std(l)?, engine.clone()));
        }
        // A signal shuts down as `shutdown-on-sigterm` / `-sigint` say
        // (by default as Redis: lagging replicas get `shutdown-timeout`, a
        // save when save points are set); if the save fails the server
        // stays up, unless `force`.
        while let Stop::Signal(flags) = wait_for_shutdown(&engine).await {
            use crate::config::process::shutdown::{FORCE, NOSAVE, NOW, SAVE};
            if flags & NOW == 0 && !crate::commands::replication::wait_for_replicas_before_shutdown(&engine).await {
                continue;
            }
            let save = flags & SAVE != 0 || (flags & NOSAVE == 0 && !engine.cfg.save_points().is_empty());
            if !save || engine.saves.loading() {
                break;
            }
            match crate::commands::persistence::save_for_shutdown(&engine).await {
                Ok(()) => break,
                Err(e) => {
                    error!("Error trying to save the DB, can't exit: {e}");
                    if flags & FORCE != 0 {
                        break;
                    }
                    error!("SIGTERM received but errors trying to shut down the server, check the logs for more information");
                    engine.clients.unpause();
                }
            }
        }
        // Graceful stop: no new connections (the listeners go with this
        // runtime); every client finishes the commands it already sent, gets
        // the replies, and is disconnected. Bounded wait.
        info!("shutting down: closing client connections");
        engine.clients.kill(|_| true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        // Clients of a thread running a busy script cannot leave: SHUTDOWN
        // NOSAVE then stops the process at once, as in Redis.
        while engine.stats.connected_clients.load(Relaxed) > 0
            && engine.scripting.busy_count.load(Relaxed) == 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<(), std::io::Error>(())
    })?;
    // What the journal holds reaches the disk before the process ends.
    crate::persist::aof::sync_on_exit(&node);
    if let Some(path) = &unix_path {
        unix::remove(path);
    }
    info!("Damselfly is now ready to exit, bye bye...");
    Ok(())
}

/// Once the data is loaded (a thread watches the loading flag, checking
/// every 10 ms): the log says "Ready to accept connections", as Redis's
/// does at that point (tools and test harnesses wait for that line), and
/// under `supervised` the service manager hears that the node is ready.
fn announce_when_loaded(engine: &Arc<Engine>) {
    let announce = |engine: &Engine| {
        let cfg = &engine.cfg;
        info!(port = cfg.port(), tls_port = cfg.tls.params().port, shards = cfg.shards, bind = ?cfg.bind(), "Ready to accept connections");
        if cfg.process.supervised.load(Relaxed) != 0 {
            crate::config::process::notify_ready(&cfg.process, "Ready to accept connections");
        }
    };
    if !engine.saves.loading() {
        return announce(engine);
    }
    let engine = engine.clone();
    let spawned = std::thread::Builder::new().name("loaded".into()).spawn(move || {
        while engine.saves.loading() {
            std::thread::sleep(Duration::from_millis(10));
        }
        announce(&engine);
    });
    if let Err(e) = spawned {
        warn!("cannot watch the loading: {e}");
    }
}

/// `set-proc-title`: the process's title as `ps` shows it, from
/// `proc-title-template` (CONFIG SET of the template sets it again).
fn set_title(cfg: &Config, bind: &[String], tls_port: u16) {
    use crate::config::process::{set_title, TitleVars, TITLE_VARS};
    let port = cfg.port();
    let host = bind.first().map_or("*", |b| b.trim_start_matches('-'));
    let vars = TitleVars {
        title: std::env::args().next().unwrap_or_else(|| "damselfly".into()),
        listen_addr: match (port, tls_port) {
            (0, 0) => format!("unixsocket:{}", cfg.process.unixsocket.lock().unwrap_or_else(|e| e.into_inner())),
            (0, tls) => format!("{host}:{tls}"),
            (port, _) => format!("{host}:{port}"),
        },
        cluster: cfg.cluster.is_some(),
        port,
        tls_port,
        config_file: cfg.config_file.clone(),
    };
    if cfg.process.set_proc_title.load(Relaxed) {
        set_title(&cfg.process.title(&vars));
    }
    let _ = TITLE_VARS.set(vars);
}

/// The slot map of a node started with `--cluster`: its identity (kept in
/// the data directory) and advertised addresses, no configuration yet.
fn cluster_map(cfg: &Config, c: &crate::config::ClusterArgs) -> std::io::Result<SlotMap> {
    let dir = cfg.dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let id = crate::cluster::identity::load_or_create(std::path::Path::new(&dir), c.node_id.as_deref())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let host = c.advertise_host.clone().or_else(|| cfg.bind().first().cloned()).unwrap_or_else(|| "127.0.0.1".into());
    // The port clients are sent to: the plain one, or the TLS one when
    // the plain port is off.
    let port = if cfg.port() != 0 { cfg.port() } else { cfg.tls.params().port };
    let grpc_port = match c.grpc_port.or_else(|| port.checked_add(10000)) {
        Some(p) => p,
        None => {
            let msg = format!("client port {port} + 10000 is past 65535: give --cluster-grpc-port");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
        }
    };
    info!(node_id = %id, %host, port, grpc_port, "cluster mode");
    Ok(SlotMap::new(Member { id: id.clone(), shard_id: id, host, port, grpc_port, voter: true }))
}

/// Redis's reply to a client protected mode refuses.
const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (no password set): a client from outside the loopback
/// interface gets Redis's `-DENIED` and is disconnected; the first one is
/// logged with what to do about it.
fn deny_protected(sock: tokio::net::TcpStream, tls: bool, peer: std::net::SocketAddr, engine: &Engine) {
    static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !LOGGED.swap(true, Relaxed) {
        tracing::warn!(
            client = %peer,
            "protected mode refused a connection from outside the loopback interface: no password is set. \
             Set one (--requirepass, or CONFIG SET requirepass), or turn protected mode off \
             (--protected-mode no, or CONFIG SET protected-mode no) if this network is private"
        );
    }
    engine.stats.rejected_connections.fetch_add(1, Relaxed);
    refuse(sock, tls, DENIED, engine);
}

/// Tells a refused client why and closes the connection; a TLS client is
/// told over TLS once its handshake is done (as Redis does), in a task of
/// its own so the listener goes on accepting.
fn refuse(mut sock: tokio::net::TcpStream, tls: bool, why: &'static [u8], engine: &Engine) {
    use tokio::io::AsyncWriteExt;
    let Some(cfg) = engine.cfg.tls.server().filter(|_| tls) else {
        // Plain: the socket takes these few bytes at once.
        tokio::spawn(async move {
            let _ = sock.write_all(why).await;
        });
        return;
    };
    tokio::spawn(async move {
        let talk = async {
            let mut s = tokio_rustls::TlsAcceptor::from(cfg).accept(sock).await?;
            s.write_all(why).await?;
            s.shutdown().await
        };
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, talk).await;
    });
}

/// A connection accepted for a shard thread.
pub struct Incoming {
    pub sock: Socket,
    /// From the TLS port: the thread makes the handshake.
    pub tls: bool,
}

/// An accepted client socket: from a TCP port, or from `unixsocket`.
pub enum Socket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl std::os::fd::AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// Counts a new client against `maxclients`: false (and counted as
/// rejected) when the node has as many as it takes. Counted at accept,
/// not when the connection reaches its shard, so a burst of connects
/// cannot overshoot the limit.
fn admit(engine: &Engine) -> bool {
    let max = engine.cfg.maxclients.load(Relaxed);
    if engine.stats.connected_clients.fetch_add(1, Relaxed) >= max {
        engine.stats.connected_clients.fetch_sub(1, Relaxed);
        engine.stats.rejected_connections.fetch_add(1, Relaxed);
        return false;
    }
    true
}

/// Redis's reply to a client over `maxclients`.
const TOO_MANY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Hands an admitted connection to the next shard thread in turn. A thread
/// blocked by a script past its time limit serves new clients only from
/// the script's hook (see `busy`), which answers little but -BUSY: another
/// thread is preferred.
fn hand_over(new: Incoming, conn_txs: &[mpsc::UnboundedSender<Incoming>], next: &mut usize, engine: &Engine) {
    let n = conn_txs.len();
    if engine.scripting.busy_count.load(Relaxed) > 0 {
        let busy = engine.scripting.busy_threads();
        for _ in 0..n {
            if !busy.contains(&(*next % n)) {
                break;
            }
            *next += 1;
        }
    }
    if conn_txs[*next % n].send(new).is_err() {
        engine.stats.connected_clients.fetch_sub(1, Relaxed);
    }
    *next += 1;
}

/// How long a TLS client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The plain client port's accept loops, moved by CONFIG SET of `port` or
/// `bind` (`shard::listen`): a new port is opened before the old one
/// closes; new addresses on the same port can only be bound once the old
/// sockets are closed, which are opened again if that fails (as Redis
/// does). The change is answered once the old loops have ended.
async fn plain_port(
    first: Vec<std::net::TcpListener>,
    mut relisten: mpsc::UnboundedReceiver<listen::Relisten>,
    conn_txs: Vec<mpsc::UnboundedSender<Incoming>>,
    engine: Arc<Engine>,
) {
    let start = |sockets: Vec<std::net::TcpListener>| {
        let mut loops = Vec::with_capacity(sockets.len());
        for l in sockets {
            match TcpListener::from_std(l) {
                Ok(l) => loops.push(tokio::spawn(accept_loop(l, false, conn_txs.clone(), engine.clone()))),
                Err(e) => error!("cannot listen on a new client socket: {e}"),
            }
        }
        loops
    };
    let stop = |loops: Vec<tokio::task::JoinHandle<()>>| async move {
        for l in loops {
            l.abort();
            let _ = l.await;
        }
    };
    let backlog = engine.cfg.process.tcp_backlog.load(Relaxed);
    let open = |addrs: &[String], port: u16| if port == 0 { Ok(Vec::new()) } else { listen::open(addrs, port, backlog) };
    let mut now = (engine.cfg.bind(), engine.cfg.port());
    let mut loops = start(first);
    while let Some(r) = relisten.recv().await {
        let result = if r.port != now.1 {
            open(&r.addrs, r.port).map(|sockets| (sockets, std::mem::take(&mut loops)))
        } else {
            stop(std::mem::take(&mut loops)).await;
            open(&r.addrs, r.port).map(|s| (s, Vec::new())).inspect_err(|_| match open(&now.0, now.1) {
                Ok(old) => loops = start(old),
                Err(e) => error!("the client port {} is closed: it could not be opened again: {e}", now.1),
            })
        };
        match result {
            Ok((sockets, old)) => {
                stop(old).await;
                loops = start(sockets);
                now = (r.addrs, r.port);
                let _ = r.done.send(Ok(()));
            }
            Err(e) => {
                let _ = r.done.send(Err(e));
            }
        }
    }
}

/// Protected mode, maxclients and the counts apply to both ports alike:
/// the checks run here, before any handshake.
async fn accept_loop(l: TcpListener, tls: bool, conn_txs: Vec<mpsc::UnboundedSender<Incoming>>, engine: Arc<Engine>) {
    let mut next = 0usize;
    loop {
        match l.accept().await {
            Ok((sock, peer)) => {
                if engine.cfg.protecting() && !peer.ip().to_canonical().is_loopback() {
                    deny_protected(sock, tls, peer, &engine);
                    continue;
                }
                if !admit(&engine) {
                    refuse(sock, tls, TOO_MANY, &engine);
                    continue;
                }
                let _ = sock.set_nodelay(true);
                keepalive(&sock, engine.cfg.conn.tcp_keepalive.load(Relaxed));
                match sock.into_std() {
                    Ok(sock) => hand_over(Incoming { sock: Socket::Tcp(sock), tls }, &conn_txs, &mut next, &engine),
                    Err(e) => {
                        engine.stats.connected_clients.fetch_sub(1, Relaxed);
                        warn!("accepted socket unusable: {e}");
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                error!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `tcp-keepalive`: probes after `secs` of silence, every third of that,
/// three unanswered ones dropping the connection (Redis's settings).
fn keepalive(sock: &tokio::net::TcpStream, secs: u64) {
    if secs == 0 {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(secs))
        .with_interval(Duration::from_secs((secs / 3).max(1)))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(sock).set_tcp_keepalive(&ka) {
        warn!("cannot set TCP keepalive on a client socket: {e}");
    }
}

/// Why the server stops.
enum Stop {
    /// SIGTERM or SIGINT, with what its `shutdown-on-sig*` setting says
    /// (`config::process::shutdown` bits).
    Signal(u8),
    /// SHUTDOWN, which has saved already if it had to.
    Command,
}

async fn wait_for_shutdown(engine: &Engine) -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                engine.shutdown.notified().await;
                return Stop::Command;
            }
        };
        tokio::select! {
            _ = term.recv() => {
                info!("Received SIGTERM scheduling shutdown...");
                Stop::Signal(engine.cfg.process.shutdown_on_sigterm.load(Relaxed))
            }
            _ = tokio::signal::ctrl_c() => {
                info!("Received SIGINT scheduling shutdown...");
                Stop::Signal(engine.cfg.process.shutdown_on_sigint.load(Relaxed))
            }
            _ = engine.shutdown.notified() => { info!("SHUTDOWN requested by a client"); Stop::Command }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Stop::Signal(engine.cfg.process.shutdown_on_sigint.load(Relaxed)),
            _ = engine.shutdown.notified() => Stop::Command,
        }
    }
}

fn shard_thread(
    id: usize,
    nshards: usize,
    engine: Arc<Engine>,
    inbox: Arc<Inbox>,
    conns: mpsc::UnboundedReceiver<Incoming>,
    saver: Option<mpsc::UnboundedReceiver<crate::shard::snapshot::SaveRequest>>,
) {
    // Senders wake the thread only while it sleeps (see `shard::inbox`).
    // A thread out of work also lets the journal writer fsync what it
    // sent (group commit, `persist::aof`).
    let (parking, unparked, idle) = (inbox.clone(), inbox.clone(), engine.clone());
    let commit = Arc::new(tokio::sync::Notify::new());
    let commit_due = commit.clone();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || {
            crate::shard::flush_broadcasts();
            conn::new_round();
            if idle.journal.uncommitted() {
                commit_due.notify_one();
            }
            parking.before_park()
        })
        .on_thread_unpark(move || unparked.after_unpark())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("shard {id}: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    busy::init_thread(engine.clone(), conns);
    let local = tokio::task::LocalSet::new();
    let mut shard = Shard::new(id, nshards, engine.cfg.clone(), engine.scripting.clone());
    shard.engine = Some(engine.clone());
    shard.cluster = engine.cluster.clone();
    shard.snapshot_wake = engine.saves.wake[id].clone();
    let shard = LocalShard::new(shard);
    shard.make_current(inbox);
    local.block_on(&rt, async move {
        // Group commit: when the thread runs out of work with records
        // waiting, the commit comes one event-loop turn later (the yield
        // lets the runtime poll the sockets once more), so the writes of
        // clients whose requests arrived meanwhile join this fsync rather
        // than wait for the next: with 50 clients at -P 1, 25 writes per
        // fsync became 36, where redis-server makes 29.
        let journal = engine.clone();
        tokio::task::spawn_local(async move {
            loop {
                commit.notified().await;
                tokio::task::yield_now().await;
                journal.journal.shard_idle();
            }
        });
        // Inbox: jobs from other threads.
        let s = shard.clone();
        tokio::task::spawn_local(async move { s.serve_inbox().await });
        // Active expiry, against the wall clock.
        tokio::task::spawn_local(expiry::run(shard.clone(), crate::util::now_ms));
        // Memory back to the system when the thread goes quiet.
        tokio::task::spawn_local(housekeeping::run(shard.clone(), engine.clone()));
        if id == 0 {
            tokio::task::spawn_local(housekeeping::cron(engine.clone()));
        }
        // Snapshots: this shard's part of each, and (on one thread) the
        // saver that starts them.
        tokio::task::spawn_local(crate::persist::saver::shard_task(shard.clone(), engine.clone()));
        if let Some(requests) = saver {
            tokio::task::spawn_local(crate::persist::saver::run(shard.clone(), engine.clone(), requests));
        }
        // Connections.
        while let Some(Incoming { sock, tls }) = busy::next_conn().await {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
            let registered = match sock {
                Socket::Tcp(sock) => tokio::net::TcpStream::from_std(sock).map(conn::Stream::Plain),
                Socket::Unix(sock) => tokio::net::UnixStream::from_std(sock).map(conn::Stream::Unix),
            };
            match registered {
                Ok(conn::Stream::Plain(sock)) if tls => {
                    tokio::task::spawn_local(serve_tls(sock, engine.clone(), Rc::clone(&shard)));
                }
                Ok(stream) => {
                    busy::expect(fd);
                    tokio::task::spawn_local(conn::serve(stream, engine.clone(), Rc::clone(&shard)));
                }
                Err(e) => {
                    engine.stats.connected_clients.fetch_sub(1, Relaxed);
                    busy::forget(fd);
                    warn!("cannot register connection: {e}");
                }
            }
        }
    });
}

/// A TLS client: the handshake (with the configuration in force now, and
/// a time limit), then the connection as any other. A client that fails
/// the handshake (no certificate, one the CA did not sign, a protocol or
/// suite refused) is dropped, as Redis does, and logged at debug level.
async fn serve_tls(sock: tokio::net::TcpStream, engine: Arc<Engine>, shard: Rc<LocalShard>) {
    let peer = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let accepted = match engine.cfg.tls.server() {
        Some(cfg) => tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_rustls::TlsAcceptor::from(cfg).accept(sock)).await,
        None => Ok(Err(std::io::Error::other("TLS is not configured"))),
    };
    match accepted {
        Ok(Ok(tls)) => conn::serve(conn::Stream::Tls(Box::new(tls)), engine, shard).await,
        Ok(Err(e)) => {
            tracing::debug!(client = %peer, "TLS handshake failed: {e}");
            engine.stats.connected_clients.fetch_sub(1, Relaxed);
        }
        Err(_) => {
            tracing::debug!(client = %peer, "TLS handshake timed out");
            engine.stats.connected_clients.fetch_sub(1, Relaxed);
        }
    }
}
