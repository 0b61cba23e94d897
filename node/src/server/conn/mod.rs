//! One client connection: read, parse, execute, write. Commands available in
//! one read (a pipeline) are executed together: consecutive single-shard
//! commands are grouped per shard, so a pipeline costs at most one message
//! round trip per remote shard rather than one per command. Commands with
//! connection scope or keys on several shards are barriers that run alone.
//!
//! While a command waits for data (BLPOP & co., XREAD BLOCK, WAIT), the
//! connection still watches its socket (`Coord::client_closed`): when it
//! becomes readable, what arrived is read into the input buffer, behind
//! what was there, and parsed once the command ends, so later commands run
//! after it, in order; end of stream means the client hung up, and the
//! command ends without a reply.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;
use tracing::debug;

mod coord;
mod cutover;
mod pipeline;
mod push;
mod replica;
mod segment;
pub mod stream;

pub use stream::{RawSocket, Stream};

use crate::commands::routing::ConnCluster;
use crate::commands::session::Session;
use crate::commands::{CommandSpec, Coord, LocalFut};
use crate::config::{CLASS_NORMAL, CLASS_PUBSUB};
use crate::error::CmdResult;
use crate::resp::{Out, Parser};
use crate::shard::tx::Tx;
use crate::shard::{run_on, Engine, Job, LocalShard, TxId, NO_TX};
use crate::util::now_ms;
pub use push::write_message;
use push::{next_invalidation, next_line, next_message, write_invalidation};

/// A client connection: what `serve` drives and what commands run against
/// (it implements `Coord`).
pub struct Conn {
    pub engine: Arc<Engine>,
    pub local: Rc<LocalShard>,
    sock: Stream,
    /// Input not parsed yet. It holds what arrived after the last complete
    /// command; while a command waits (a blocking pop), what the client
    /// sends meanwhile is read into it too, to notice the client hanging up
    /// (see `client_closed`).
    inbuf: BytesMut,
    parser: Parser,
    /// Input was read while a command waited: it is parsed before the
    /// connection waits for more.
    read_ahead: bool,
    pub out: Out,
    pub db: usize,
    /// The state commands change (authentication, MULTI, WATCH, ...).
    pub s: Session,
    /// The shards the running command holds (EXEC's, for its whole queue).
    tx: Option<Tx>,
    /// EXEC is running its queue.
    in_exec: bool,
    /// While EXEC runs its queue: the time every queued command sees (keys
    /// expire against it), taken when EXEC started, as Redis 7 freezes
    /// time for one command and all it runs.
    exec_now: u64,
    /// A command that may write ran since the last replies went out: under
    /// `appendfsync always` they wait until the journal has it on disk.
    wrote: bool,
    /// The coordinator command running, while keyspace events are on
    /// (`crate::commands::notify::wrap`).
    running: Option<crate::commands::notify::Running>,
    /// A command runs alone because its reply is not to be sent (CLIENT
    /// REPLY OFF or SKIP).
    quiet: bool,
    /// Times the output buffer was written out (and emptied).
    flushes: u32,
    /// Vectors and buffers pipeline segments reuse.
    spares: segment::Spares,
}

/// How long a command held by a migration's cut-over waits before its
/// routing is checked again, and how many times.
const CUTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const CUTOVER_RETRIES: usize = 60;

/// Pub/sub messages taken from the connection's channel for one write, in
/// bytes (at least one message).
const MESSAGES_PER_WRITE: usize = 256 * 1024;

/// Input read ahead while a command waits, at most: past this much the
/// connection stops reading (and so noticing a hang-up) until the command
/// ends.
const READ_AHEAD_MAX: usize = 1 << 20;

pub async fn serve(sock: Stream, engine: Arc<Engine>, local: Rc<LocalShard>) {
    let (addr, laddr) = sock.names();
    let fd = sock.fd();
    // A busy script's hook reads plain sockets only: a TLS client waits
    // for the script to end (see `busy`).
    let hook_serves = !sock.is_tls();
    let info = engine.clients.register(addr, laddr, fd, sock.is_unix());
    // connected_clients was counted when the listener accepted the socket.
    engine.stats.total_connections.fetch_add(1, Relaxed);
    let authed = !engine.cfg.has_password.load(Relaxed);
    let max_bulk = engine.cfg.proto_max_bulk_len.load(Relaxed) as usize;
    let mut conn = Conn {
        engine: engine.clone(),
        local,
        sock,
        // Holds only what is not parsed yet: empty (no allocation) while the
        // client is idle, so an idle connection costs a few hundred bytes.
        inbuf: BytesMut::new(),
        parser: Parser::new(max_bulk),
        read_ahead: false,
        out: Out::new(false),
        db: 0,
        s: Session {
            authed,
            acl_gen: engine.acl.generation.load(Relaxed),
            user: engine.acl.default_user(),
            info: info.clone(),
            closing: false,
            multi: None,
            watch: None,
            sub: None,
            cluster: engine.cluster.clone().map(ConnCluster::new),
            gone: false,
            monitor: None,
            replica: None,
            repl_port: 0,
            repl_ip: None,
            repl_psync2: false,
            repl_eof: false,
            reply: Default::default(),
            pushed: false,
            unblocked: false,
            tracking: None,
        },
        tx: None,
        in_exec: false,
        exec_now: 0,
        wrote: false,
        running: None,
        quiet: false,
        flushes: 0,
        spares: Default::default(),
    };
    // Scripts the client runs on other threads read its user from here.
    info.set_acl_user(conn.s.user.clone());
    let mut cmds: Vec<Vec<Bytes>> = Vec::new();
    // While this task waits for input, a busy script's hook may serve it.
    let slot = super::busy::register(fd, busy_state(&conn), max_bulk, hook_serves);
    // Replies of the last input not written yet (see below).
    let mut deferred = false;
    // Whether the socket was set up for a replica's stream.
    let mut replica_socket_set = false;
    'conn: loop {
        // Input read while the last command waited is handled before the
        // connection waits for more.
        let n = if std::mem::take(&mut conn.read_ahead) {
            0
        } else {
            conn.s.publish_waiting(conn.out.buf.capacity(), &conn.inbuf, &conn.parser);
            let state = busy_state(&conn);
            slot.park(&mut conn.inbuf, &mut conn.parser, state);
            if deferred {
                slot.lend_output(&mut conn.out.buf);
            }
            tokio::select! {
                // The thread's other ready connections have run: write.
                () = after_ready_tasks(), if deferred => {
                    deferred = false;
                    let woke = conn.resume(&slot, &mut cmds);
                    if !conn.send_replies().await {
                        break 'conn;
                    }
                    if !woke {
                        continue;
                    }
                    0
                }
                r = slot.read(&mut conn.sock) => match r {
                    Ok(n) if n > 0 => n,
                    // End of input: what a busy script's hook left is handled first.
                    _ if slot.touched() => 0,
                    Ok(_) if deferred => {
                        // The client stopped sending: its last replies still go.
                        conn.resume(&slot, &mut cmds);
                        conn.send_replies().await;
                        break;
                    }
                    _ => break,
                },
                () = slot.resumed() => 0,
                _ = info.killed_signal() => break,
                Some(m) = next_message(&mut conn.s.sub) => {
                    let woke = conn.resume(&slot, &mut cmds);
                    let taken = conn.write_queued(m, false);
                    if !conn.write_pushed(taken).await {
                        break 'conn;
                    }
                    if !woke {
                        continue;
                    }
                    // What the hook left (commands, input) is handled now.
                    0
                }
                Some(m) = next_invalidation(&mut conn.s.tracking) => {
                    let woke = conn.resume(&slot, &mut cmds);
                    let taken = conn.write_queued(m, true);
                    if !conn.write_pushed(taken).await {
                        break 'conn;
                    }
                    if !woke {
                        continue;
                    }
                    0
                }
                n = replica::next(&conn.s.replica, &engine) => {
                    let woke = conn.resume(&slot, &mut cmds);
                    // `repl-disable-tcp-nodelay`, as the replica's sync starts.
                    if !std::mem::replace(&mut replica_socket_set, true) && engine.cfg.repl.disable_tcp_nodelay.load(Relaxed) {
                        if let Some(tcp) = conn.sock.tcp() {
                            let _ = tcp.set_nodelay(false);
                        }
                    }
                    match n {
                        // Taken whole (no copy) when nothing else waits.
                        replica::Next::Bytes(b) if conn.out.buf.is_empty() => conn.out.buf = b,
                        replica::Next::Bytes(b) => conn.out.buf.extend_from_slice(&b),
                        replica::Next::Close(why) => {
                            tracing::warn!(client = info.id, addr = %info.addr, "closing a replica: {why}");
                            break 'conn;
                        }
                    }
                    if !conn.write_pushed(0).await {
                        break 'conn;
                    }
                    if !woke {
                        continue;
                    }
                    0
                }
                Some(line) = next_line(&mut conn.s.monitor) => {
                    let woke = conn.resume(&slot, &mut cmds);
                    conn.out.buf.extend_from_slice(&line);
                    let taken = line.len() + conn.take_monitor_lines();
                    if !conn.write_pushed(taken).await {
                        break 'conn;
                    }
                    if !woke {
                        continue;
                    }
                    0
                }
            }
        };
        conn.resume(&slot, &mut cmds);
        // A monitor's lines for what ran before this input go out ahead of
        // the replies to it (its own commands' lines too, as in Redis).
        if conn.s.monitor.is_some() {
            let taken = conn.take_monitor_lines();
            // No longer queued: they leave with the replies.
            conn.s.info.unqueued(taken);
        }
        // Invalidations already queued for this client go out ahead of
        // the replies to this input, as Redis has them in the output
        // buffer first (a client told of a write acknowledged before it
        // sent this input reads the invalidation before the reply).
        if conn.s.tracking.is_some() {
            conn.take_invalidations();
        }
        let replies_from = (conn.out.buf.len(), conn.flushes);
        {
            let stats = &mut conn.local.cell.borrow_mut().stats;
            stats.net_input_bytes += n as u64;
            stats.reads_processed += 1;
        }
        // Until it authenticates, a connection parses (under tight limits)
        // and runs one command at a time, so that the command after a
        // pipelined AUTH is parsed with the authenticated limits.
        // CONFIG SET proto-max-bulk-len applies to connections already open.
        conn.parser.max_bulk = engine.cfg.proto_max_bulk_len.load(Relaxed) as usize;
        loop {
            conn.parser.unauthenticated = !conn.s.authed;
            let mut protocol_error = None;
            let mut more = false;
            loop {
                match conn.parser.next(&mut conn.inbuf) {
                    Ok(Some(args)) => {
                        if !args.is_empty() {
                            cmds.push(args);
                            if conn.parser.unauthenticated || cmds.len() >= PARSE_BATCH {
                                more = true;
                                break;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
            }
            conn.s.publish_input(&conn.inbuf, &conn.parser, &cmds);
            if conn.query_over_limit() {
                tracing::warn!(client = info.id, addr = %info.addr, "closing a client that reached the max query buffer length");
                break 'conn;
            }
            // In its own allocation while it runs: the state machine of a
            // pipeline's execution is most of a connection task's size, and
            // an idle connection should not carry it.
            Box::pin(conn.execute(&mut cmds)).await;
            if conn.s.gone {
                // It hung up while a command waited: nobody to answer.
                break 'conn;
            }
            if let Some(e) = protocol_error {
                debug!(client = info.id, "protocol error: {e}");
                conn.out.error_text(&e.to_string());
                conn.s.closing = true;
            }
            if !more || conn.s.closing {
                break;
            }
        }
        if cmds.capacity() > SPARE_PARSED {
            // A long pipeline's vector is not kept by an idle connection.
            cmds = Vec::new();
        }
        if conn.s.tracking.is_some() {
            conn.order_invalidations(replies_from);
        }
        if conn.s.closing || info.killed.load(Relaxed) || conn.read_ahead || !hook_serves || first_of_round() {
            if !conn.send_replies().await {
                break 'conn;
            }
        } else if !conn.out.buf.is_empty() {
            // Except for the first connection to answer in a round (its
            // reply wakes the client; waiting would only cost a turn when
            // it is alone), the replies wait one event-loop turn, so that
            // the thread's other ready connections run first and the
            // round's replies go out back to back, as Redis writes them
            // before its event loop sleeps: a client woken by one reply is
            // still running when the next arrive, where one woken per
            // reply costs the writing thread most (on loopback the wake-up
            // is charged to it: 17% of the server's CPU at GET -P 16 over
            // 1M keys, against redis-server's 2.7%). Meanwhile the
            // connection is parked with them, so a script turning busy on
            // this thread does not hold them: its hook sends them. (A TLS
            // connection, which the hook cannot serve, writes at once.)
            if std::mem::take(&mut conn.wrote) {
                conn.journal_durable().await;
            }
            deferred = true;
        }
        if conn.s.closing || info.killed.load(Relaxed) {
            break;
        }
        if conn.inbuf.is_empty() {
            stream::keep_input_buffer(&mut conn.inbuf);
        }
    }
    drop(slot);
    let _ = conn.sock.shutdown().await;
    conn.s.unwatch(&engine);
    conn.s.stop_monitor(&engine);
    conn.s.stop_tracking();
    conn.s.set_push_target(false);
    replica::gone(conn.s.replica.take(), &engine);
    crate::commands::pubsub::unsubscribe_all(&engine, &mut conn.s);
    engine.clients.unregister(info.id);
    engine.stats.connected_clients.fetch_sub(1, Relaxed);
}

thread_local! {
    /// Connections that answered input since the thread last went idle.
    static ANSWERED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Ready once the thread's tasks that are ready now have run: the task
/// wakes itself, which puts it at the back of the thread's run queue.
/// Unlike `tokio::task::yield_now`, this does not make the runtime poll
/// its sockets first (one `epoll_wait` more per round of replies).
fn after_ready_tasks() -> impl std::future::Future<Output = ()> {
    let mut queued = false;
    std::future::poll_fn(move |cx| {
        if std::mem::replace(&mut queued, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
}

/// The shard thread is about to go idle: a new round starts.
pub fn new_round() {
    ANSWERED.with(|a| a.set(0));
}

/// Counts a connection answering input; whether it is the first since
/// the thread last went idle.
fn first_of_round() -> bool {
    ANSWERED.with(|a| {
        a.set(a.get() + 1);
        a.get() == 1
    })
}

/// Largest read into the per-thread scratch buffer: a pipeline of 16
/// commands with 1 KB values (about 17 KB) arrives in one read and gets
/// one write of replies, as in redis-server, which reads as much as its
/// query buffer holds.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The most commands parsed out of the input before they run: a long
/// pipeline already read runs in rounds of this many, so its parsed form
/// (a vector and the argument handles of each command, several times the
/// input's size for small commands) never exists whole.
const PARSE_BATCH: usize = 1024;
/// The room for parsed commands a connection keeps between inputs.
const SPARE_PARSED: usize = 64;

thread_local! {
    /// Each shard thread reads small requests here first and copies only
    /// the bytes that arrived into the connection's buffer, so connections
    /// do not each hold a read buffer while idle.
    pub(crate) static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Reads what the socket has without blocking. A big argument in progress
/// is read straight into its own buffer (only as much as it still needs),
/// a buffer with room to spare (a bulk the parser reserved for) directly
/// too; otherwise the bytes go through the thread's scratch buffer.
pub fn read_some(sock: &impl RawSocket, inbuf: &mut BytesMut, parser: &mut Parser) -> std::io::Result<usize> {
    if let Some(big) = parser.big_target() {
        let room = big.capacity() - big.len();
        return read_draining(sock, room, || sock.try_read_buf(big));
    }
    let room = inbuf.capacity() - inbuf.len();
    if room >= READ_CHUNK {
        return read_draining(sock, room, || sock.try_read_buf(inbuf));
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let n = read_draining(sock, s.len(), || sock.try_read(&mut s[..]))?;
        inbuf.extend_from_slice(&s[..n]);
        Ok(n)
    })
}

/// One read (`read`, of at most `room` bytes). A read that returns less
/// than it had room for took all the socket held, so the socket's
/// readiness is cleared as a WouldBlock clears it: the connection then
/// waits for new input rather than asking again only to be told there is
/// none (a system call per request, or per pipeline, saved). Tokio clears
/// it only if no readiness event came after the one this read answered,
/// and never clears end-of-stream.
fn read_draining(sock: &impl RawSocket, room: usize, read: impl FnOnce() -> std::io::Result<usize>) -> std::io::Result<usize> {
    use std::io::ErrorKind::WouldBlock;
    let mut got = 0;
    let mut read = Some(read);
    let r = sock.try_io_readable(|| {
        let read = read.take().ok_or(WouldBlock)?;
        got = read()?;
        if got > 0 && got < room {
            return Err(WouldBlock.into());
        }
        Ok(())
    });
    match r {
        Err(e) if e.kind() == WouldBlock && got > 0 => Ok(got),
        Err(e) => Err(e),
        Ok(()) => Ok(got),
    }
}

/// What a busy script's hook needs to know to answer for a connection.
fn busy_state(conn: &Conn) -> u8 {
    use super::busy::{AUTHED, MULTI, RESP3, RESTRICTED, SUBSCRIBED};
    let bit = |on: bool, b: u8| if on { b } else { 0 };
    bit(conn.s.authed, AUTHED)
        | bit(conn.out.resp3, RESP3)
        | bit(conn.s.sub.is_some(), SUBSCRIBED)
        | bit(conn.s.multi.is_some(), MULTI)
        | bit(!conn.s.user.unrestricted(), RESTRICTED)
}

impl Conn {
    /// Counts the output buffer as written: to a replica, as replication
    /// output (INFO's `total_net_repl_output_bytes`, apart from the
    /// clients' `total_net_output_bytes`, as Redis counts them).
    fn count_output(&self) {
        let n = self.out.buf.len() as u64;
        let mut local = self.local.cell.borrow_mut();
        local.stats.writes_processed += 1;
        if self.s.replica.is_some() {
            local.stats.repl_output_bytes += n;
        } else {
            local.stats.net_output_bytes += n;
        }
    }

    /// Writes the replies waiting in the output buffer; false when the
    /// client is gone.
    pub(super) async fn send_replies(&mut self) -> bool {
        if self.out.buf.is_empty() {
            return true;
        }
        if std::mem::take(&mut self.wrote) {
            self.journal_durable().await;
        }
        // client-output-buffer-limit, for the class the client is in now.
        let class = if self.s.sub.is_some() { CLASS_PUBSUB } else { CLASS_NORMAL };
        let pending = self.out.buf.len() + self.s.info.out_pending.load(Relaxed);
        if self.s.info.output_over(pending, &self.engine.cfg.output_limits[class], crate::util::coarse_now_ms()) {
            tracing::warn!(client = self.s.info.id, addr = %self.s.info.addr, "closing a client over its output buffer limit");
            self.s.info.close_async();
            return false;
        }
        crate::shard::flush_broadcasts();
        self.count_output();
        self.s.info.writing(self.out.buf.len(), self.out.buf.capacity());
        let kill = self.s.info.clone();
        // A killed client's pending reply still goes out when the socket
        // takes it at once (CLIENT KILL ... SKIPME no answers its caller).
        let written = tokio::select! {
            biased;
            r = self.sock.write_all(&self.out.buf) => r.is_ok(),
            _ = kill.killed_signal() => false,
        };
        if !written {
            return false;
        }
        self.out.buf.clear();
        self.flushes = self.flushes.wrapping_add(1);
        if self.out.buf.capacity() > 64 * 1024 {
            self.out.buf = Vec::with_capacity(256);
        }
        self.s.info.written(self.out.buf.capacity());
        true
    }

    /// Before replies to writes go out, with the journal on: everything
    /// the connection wrote is in the journal's stream — jobs on other
    /// shards sent their records before answering, and shards this thread
    /// released transactions on without waiting are visited once, so those
    /// parts are sent too. A client that reads a reply and then writes
    /// elsewhere finds its writes in that order in the files and on the
    /// replicas. Under `appendfsync always` it also waits until they are on
    /// disk: one fsync of the writer covers them (and everybody else's).
    async fn journal_durable(&mut self) {
        if !self.engine.journal.on() {
            return;
        }
        crate::shard::tx::await_releases(&self.engine, &self.local).await;
        let j = &self.engine.journal;
        if !j.aof_on() || self.engine.cfg.appendfsync() != crate::config::Fsync::Always {
            return;
        }
        let target = j.sent.load(std::sync::atomic::Ordering::Acquire);
        loop {
            let changed = j.durable_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if j.durable.load(std::sync::atomic::Ordering::Acquire) >= target {
                return;
            }
            changed.await;
        }
    }

    /// Whether the input held for the command being received (its bytes in
    /// the input buffer and its big arguments) plus the commands queued in
    /// MULTI pass `client-query-buffer-limit`, as Redis counts its query
    /// buffer.
    fn query_over_limit(&self) -> bool {
        let (got, _, owned) = self.parser.held();
        let queued = self.s.multi.as_ref().map_or(0, |m| m.mem);
        let held = self.inbuf.len() + got + owned + queued;
        held as u64 > self.engine.cfg.client_query_buffer_limit.load(Relaxed)
    }

    /// Takes back the input lent while waiting, with what a busy script's
    /// hook did meanwhile (replies it could not send go out first); true
    /// when the hook did something.
    fn resume(&mut self, slot: &super::busy::Slot, cmds: &mut Vec<Vec<Bytes>>) -> bool {
        let Some(r) = slot.unpark(&mut self.inbuf, &mut self.parser, cmds, &mut self.out.buf) else { return false };
        self.s.authed = r.authed;
        if r.multi && self.s.multi.is_none() {
            crate::commands::transactions::begin(&mut self.s);
        } else if !r.multi && self.s.multi.is_some() {
            crate::commands::transactions::end(&mut self.s, &self.engine);
        }
        if r.rejected {
            if let Some(m) = &mut self.s.multi {
                m.failed = true;
            }
        }
        self.s.closing |= r.close;
        true
    }

    /// The transaction this connection's work runs under (the shards the
    /// running command holds), if any.
    pub fn tx_id(&self) -> TxId {
        self.tx.as_ref().map_or(NO_TX, |t| t.id)
    }
}
