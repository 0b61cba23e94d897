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
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::debug;

use crate::commands::routing::ConnCluster;
use crate::commands::run::{combine_replies, exec_one_at, split_by_shard, Part};
use crate::commands::session::{Session, Subscription};
use crate::commands::{self, flag, Combine, CommandSpec, Coord, Exec, LocalFut};
use crate::error::{CmdError, CmdResult};
use crate::resp::{Out, Parser};
use crate::shard::tx::Tx;
use crate::shard::{run_on, Engine, Job, LocalShard, Shard, TxId, NO_TX};
use crate::util::now_ms;

/// A client connection: what `serve` drives and what commands run against
/// (it implements `Coord`).
pub struct Conn {
    pub engine: Arc<Engine>,
    pub local: Rc<LocalShard>,
    sock: TcpStream,
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
}

/// The next pub/sub message for a connection (never, without a
/// subscription).
async fn next_message(sub: &mut Option<Box<Subscription>>) -> Option<crate::shard::pubsub::Message> {
    match sub {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes a pub/sub message as Redis does (`message` / `pmessage`).
pub fn write_message(out: &mut Out, m: &crate::shard::pubsub::Message) {
    match &m.pattern {
        None => {
            out.push(3);
            out.bulk(b"message");
        }
        Some(p) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(p);
        }
    }
    out.bulk(&m.channel);
    out.bulk(&m.payload);
}

/// A parsed command waiting in a pipeline segment.
struct Pending {
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    shard: usize,
    /// Cluster mode: the one slot of the command's keys, as the routing
    /// check found it (so the shard's gate check need not hash them again).
    slot: Option<u16>,
}

/// How long a command held by a migration's cut-over waits before its
/// routing is checked again, and how many times.
const CUTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const CUTOVER_RETRIES: usize = 60;

/// Input read ahead while a command waits, at most: past this much the
/// connection stops reading (and so noticing a hang-up) until the command
/// ends.
const READ_AHEAD_MAX: usize = 1 << 20;

pub async fn serve(sock: TcpStream, engine: Arc<Engine>, local: Rc<LocalShard>) {
    let addr = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let info = engine.clients.register(addr, laddr, fd);
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
            info: info.clone(),
            closing: false,
            multi: None,
            watch: None,
            sub: None,
            cluster: engine.cluster.clone().map(ConnCluster::new),
            gone: false,
        },
        tx: None,
        in_exec: false,
    };
    let mut cmds: Vec<Vec<Bytes>> = Vec::new();
    // While this task waits for input, a busy script's hook may serve it.
    let slot = super::busy::register(fd, busy_state(&conn), max_bulk);
    'conn: loop {
        // Input read while the last command waited is handled before the
        // connection waits for more.
        let n = if std::mem::take(&mut conn.read_ahead) {
            0
        } else {
            conn.s.publish_waiting(conn.out.buf.capacity(), &conn.inbuf, &conn.parser);
            let state = busy_state(&conn);
            slot.park(&mut conn.inbuf, &mut conn.parser, state);
            tokio::select! {
                r = slot.read(&conn.sock) => match r {
                    Ok(n) if n > 0 => n,
                    // End of input: what a busy script's hook left is handled first.
                    _ if slot.touched() => 0,
                    _ => break,
                },
                () = slot.resumed() => 0,
                _ = info.kill.notified() => break,
                Some(m) = next_message(&mut conn.s.sub) => {
                    let woke = conn.resume(&slot, &mut cmds);
                    write_message(&mut conn.out, &m);
                    // Whatever else is queued goes in the same write.
                    while let Some(m) = conn.s.sub.as_mut().and_then(|s| s.rx.try_recv().ok()) {
                        write_message(&mut conn.out, &m);
                    }
                    info.writing(conn.out.buf.len(), conn.out.buf.capacity());
                    if conn.sock.write_all(&conn.out.buf).await.is_err() {
                        break 'conn;
                    }
                    conn.out.buf.clear();
                    info.written(conn.out.buf.capacity());
                    if !woke {
                        continue;
                    }
                    // What the hook left (commands, input) is handled now.
                    0
                }
            }
        };
        conn.resume(&slot, &mut cmds);
        conn.local.cell.borrow_mut().stats.net_input_bytes += n as u64;
        // Until it authenticates, a connection parses (under tight limits)
        // and runs one command at a time, so that the command after a
        // pipelined AUTH is parsed with the authenticated limits.
        loop {
            conn.parser.unauthenticated = !conn.s.authed;
            let mut protocol_error = None;
            let mut more = false;
            loop {
                match conn.parser.next(&mut conn.inbuf) {
                    Ok(Some(args)) => {
                        if !args.is_empty() {
                            cmds.push(args);
                            if conn.parser.unauthenticated {
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
        if !conn.out.buf.is_empty() {
            conn.local.cell.borrow_mut().stats.net_output_bytes += conn.out.buf.len() as u64;
            info.writing(conn.out.buf.len(), conn.out.buf.capacity());
            if conn.sock.write_all(&conn.out.buf).await.is_err() {
                break 'conn;
            }
            conn.out.buf.clear();
            if conn.out.buf.capacity() > 64 * 1024 {
                conn.out.buf = Vec::with_capacity(256);
            }
            info.written(conn.out.buf.capacity());
        }
        if conn.s.closing || info.killed.load(Relaxed) {
            break;
        }
        if conn.inbuf.is_empty() {
            // Frees the buffer once the last argument parsed out of it goes.
            conn.inbuf = BytesMut::new();
        }
    }
    drop(slot);
    let _ = conn.sock.shutdown().await;
    conn.s.unwatch(&engine);
    crate::commands::pubsub::unsubscribe_all(&engine, &mut conn.s);
    engine.clients.unregister(info.id);
    engine.stats.connected_clients.fetch_sub(1, Relaxed);
}

/// Largest read into the per-thread scratch buffer.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Each shard thread reads small requests here first and copies only
    /// the bytes that arrived into the connection's buffer, so connections
    /// do not each hold a 16 KB read buffer while idle.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Reads what the socket has without blocking. A big argument in progress
/// is read straight into its own buffer (only as much as it still needs),
/// a buffer with room to spare (a bulk the parser reserved for) directly
/// too; otherwise the bytes go through the thread's scratch buffer.
pub fn read_some(sock: &TcpStream, inbuf: &mut BytesMut, parser: &mut Parser) -> std::io::Result<usize> {
    if let Some(big) = parser.big_target() {
        return sock.try_read_buf(big);
    }
    if inbuf.capacity() - inbuf.len() >= READ_CHUNK {
        return sock.try_read_buf(inbuf);
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let n = sock.try_read(&mut s[..])?;
        inbuf.extend_from_slice(&s[..n]);
        Ok(n)
    })
}

/// What a busy script's hook needs to know to answer for a connection.
fn busy_state(conn: &Conn) -> u8 {
    use super::busy::{AUTHED, MULTI, RESP3, SUBSCRIBED};
    let bit = |on: bool, b: u8| if on { b } else { 0 };
    bit(conn.s.authed, AUTHED) | bit(conn.out.resp3, RESP3) | bit(conn.s.sub.is_some(), SUBSCRIBED) | bit(conn.s.multi.is_some(), MULTI)
}

impl Conn {
    /// Takes back the input lent while waiting, with what a busy script's
    /// hook did meanwhile (replies it could not send go out first); true
    /// when the hook did something.
    fn resume(&mut self, slot: &super::busy::Slot, cmds: &mut Vec<Vec<Bytes>>) -> bool {
        let Some(r) = slot.unpark(&mut self.inbuf, &mut self.parser, cmds, &mut self.out.buf) else { return false };
        self.s.authed = r.authed;
        if r.rejected {
            if let Some(m) = &mut self.s.multi {
                m.failed = true;
            }
        }
        self.s.closing |= r.close;
        true
    }

    /// Executes a pipeline of commands, appending every reply to `self.out`.
    /// Consecutive single-shard commands gather in `segment`, consecutive
    /// multi-shard ones in `splits`; whichever is pending runs before a
    /// command of another kind, so replies keep their order.
    async fn execute(&mut self, cmds: &mut Vec<Vec<Bytes>>) {
        let mut segment: Vec<Pending> = Vec::new();
        let mut splits: Vec<(&'static CommandSpec, Vec<Bytes>)> = Vec::new();
        // The segment holds a script (and so only commands for its shard);
        // the segment holds commands for several shards.
        let (mut seg_script, mut seg_mixed) = (false, false);
        let mut commands = 0;
        for args in cmds.drain(..) {
            let checked = match self.check(&args) {
                Err(_) if self.cutting_over(&args) => {
                    // The slot is leaving this node and its cut-over is
                    // not finished: the new owner may not know yet, so a
                    // redirect now could bounce back. Hold the command
                    // until the cut-over ends, then route it again.
                    self.flush(&mut segment, &mut splits).await;
                    self.hold_for_cutover(&args).await;
                    self.check(&args)
                }
                r => r,
            };
            // Taken now: running earlier commands below may check others.
            let slot = self.checked_slot();
            let spec = match checked {
                Ok(spec) => spec,
                Err(e) => {
                    self.flush(&mut segment, &mut splits).await;
                    if let Some(m) = &mut self.s.multi {
                        m.failed = true;
                    }
                    self.out.error(&e);
                    continue;
                }
            };
            commands += 1;
            self.s.info.set_last_cmd(spec);
            let scripting = &self.engine.scripting;
            if scripting.busy_count.load(Relaxed) > 0 && !commands::scripting::allowed_when_busy(spec, &args) {
                let e = commands::scripting::busy_error(scripting.busy_is_function());
                self.flush(&mut segment, &mut splits).await;
                if let Some(m) = &mut self.s.multi {
                    m.failed = true;
                }
                self.out.error(&e);
                continue;
            }
            if self.s.multi.is_some() && !spec.has_flag(flag::NO_QUEUE) {
                self.flush(&mut segment, &mut splits).await;
                self.queue(spec, args);
                continue;
            }
            if segment.is_empty() {
                seg_script = false;
                seg_mixed = false;
            }
            match &spec.exec {
                Exec::Shard(_) | Exec::Split(..) => match self.single_shard(spec, &args) {
                    Some(shard) => {
                        if !splits.is_empty() {
                            self.run_splits(std::mem::take(&mut splits)).await;
                        }
                        // A script may reach beyond its shard: nothing for
                        // another shard may overtake it (see below).
                        if segment.first().is_some_and(|p| p.shard != shard) {
                            if seg_script {
                                self.run_segment(&mut segment).await;
                                seg_script = false;
                            } else {
                                seg_mixed = true;
                            }
                        }
                        segment.push(Pending { spec, args, shard, slot });
                    }
                    None => {
                        self.run_segment(&mut segment).await;
                        splits.push((spec, args));
                    }
                },
                Exec::Script(_) => match self.single_shard(spec, &args) {
                    // Scripts batch with the commands for the shard that owns
                    // their declared keys, and only with those: a script
                    // that turns out to touch other shards must see every
                    // earlier command applied and no later one.
                    Some(shard) => {
                        if !splits.is_empty() {
                            self.run_splits(std::mem::take(&mut splits)).await;
                        }
                        if seg_mixed || segment.first().is_some_and(|p| p.shard != shard) {
                            self.run_segment(&mut segment).await;
                            seg_mixed = false;
                        }
                        seg_script = true;
                        segment.push(Pending { spec, args, shard, slot })
                    }
                    None => {
                        self.flush(&mut segment, &mut splits).await;
                        self.run_top(spec, &args).await;
                    }
                },
                Exec::Coord(_) => {
                    self.flush(&mut segment, &mut splits).await;
                    if let Err(e) = self.dispatch_gated(spec, &args).await {
                        self.out.error(&e);
                    }
                    if self.s.closing {
                        break;
                    }
                }
            }
        }
        self.flush(&mut segment, &mut splits).await;
        self.local.cell.borrow_mut().stats.commands += commands;
        self.s.publish(self.out.buf.capacity());
    }

    /// Runs whatever is pending (at most one of the two is non-empty).
    async fn flush(&mut self, segment: &mut Vec<Pending>, splits: &mut Vec<(&'static CommandSpec, Vec<Bytes>)>) {
        self.run_segment(segment).await;
        if !splits.is_empty() {
            self.run_splits(std::mem::take(splits)).await;
        }
    }

    /// The transaction this connection's work runs under (the shards the
    /// running command holds), if any.
    pub fn tx_id(&self) -> TxId {
        self.tx.as_ref().map_or(NO_TX, |t| t.id)
    }

    /// Queues a command between MULTI and EXEC.
    fn queue(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) {
        let Some(m) = &mut self.s.multi else { return };
        if spec.has_flag(flag::NO_MULTI) {
            m.failed = true;
            self.out.error(&CmdError::err("Command not allowed inside a transaction"));
            return;
        }
        m.push(spec, args);
        self.out.simple("QUEUED");
    }

    /// Runs a coordinator command or a script at the top level (not inside
    /// EXEC), then lets go of whatever shards it held.
    async fn run_top(&mut self, spec: &'static CommandSpec, args: &[Bytes]) {
        commands::run_command(self, spec, args).await;
        self.tx = None;
        self.s.info.set_blocked(false);
    }

    /// Looks the command up and checks arity and authentication.
    fn check(&mut self, args: &[Bytes]) -> CmdResult<&'static CommandSpec> {
        let Some(spec) = commands::lookup(&args[0]) else {
            if !self.s.authed {
                return Err(CmdError::NoAuth);
            }
            return Err(CmdError::unknown_command(&args[0], &args[1..]));
        };
        if !self.s.authed && !spec.has_flag(flag::NO_AUTH) {
            return Err(CmdError::NoAuth);
        }
        if !spec.arity_ok(args.len()) {
            return Err(CmdError::wrong_arity(spec.name));
        }
        if self.s.sub.is_some() && !self.out.resp3 && !commands::pubsub::allowed_when_subscribed(spec.name) {
            return Err(CmdError::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )));
        }
        // Cluster mode: the keys' slot must be served here; a transaction's
        // commands must share one slot (else EXEC fails and is discarded).
        if let Some(c) = &mut self.s.cluster {
            let in_multi = self.s.multi.is_some();
            let queued = in_multi && !spec.has_flag(flag::NO_QUEUE);
            let scripting = &self.engine.scripting;
            c.check(spec, args, queued, in_multi, || commands::scripting::allows_cross_slot(scripting, spec, args))?;
        }
        // maxmemory under the noeviction policy: commands that may grow
        // memory are refused while the node is over the limit; reads and
        // deletes go on (Redis's order: after routing).
        if spec.has_flag(flag::DENYOOM) {
            let max = self.engine.cfg.maxmemory.load(Relaxed);
            if max > 0 && crate::alloc::used_memory() > max {
                return Err(CmdError::Oom);
            }
        }
        Ok(spec)
    }

    /// The shard all of a command's keys live on, or `None` when they span
    /// several. Keyless shard commands run on the local shard.
    fn single_shard(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        let mut keys = spec.key_indices(args);
        let Some(first) = keys.next() else { return Some(self.local.id()) };
        let shard = self.engine.shard_of(&args[first]);
        keys.all(|i| self.engine.shard_of(&args[i]) == shard).then_some(shard)
    }

    /// Runs the buffered single-shard commands, one job per shard, and writes
    /// their replies in order.
    async fn run_segment(&mut self, segment: &mut Vec<Pending>) {
        match segment.len() {
            0 => return,
            1 => {
                let p = segment.pop().expect("one command");
                self.run_one(p).await;
                return;
            }
            _ => {}
        }
        let me = self.local.id();
        let resp3 = self.out.resp3;
        let db = self.db;
        if segment.iter().all(|p| p.shard == me) {
            // All local: run them in one go, straight into the output
            // buffer. A script that must run on the connection instead (it
            // needs every shard) stops the batch; it and the rest then run
            // one by one, in order.
            let out = &mut self.out;
            let rest = self
                .local
                .run(NO_TX, |sh| {
                    let now = now_ms();
                    let mut items = segment.drain(..);
                    while let Some(p) = items.next() {
                        if !exec_or_defer(sh, db, &p, out, now) {
                            let mut rest = vec![p];
                            rest.extend(items);
                            return rest;
                        }
                    }
                    Vec::new()
                })
                .await;
            for p in rest {
                self.run_one(p).await;
            }
            return;
        }
        // Per shard: the commands' positions in the segment.
        let mut by_shard: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, p) in segment.iter().enumerate() {
            match by_shard.iter_mut().find(|(s, _)| *s == p.shard) {
                Some((_, v)) => v.push(i),
                None => by_shard.push((p.shard, vec![i])),
            }
        }
        let mut items: Vec<Option<Pending>> = segment.drain(..).map(Some).collect();
        let mut waits = Vec::new();
        let mut local_batch = None;
        for (shard, idxs) in by_shard {
            let batch: Vec<(usize, Pending)> = idxs.into_iter().map(|i| (i, items[i].take().expect("each once"))).collect();
            if shard == me {
                local_batch = Some(batch);
                continue;
            }
            let (tx, rx) = oneshot::channel();
            self.engine.send(
                shard,
                NO_TX,
                Box::new(move |sh| {
                    let _ = tx.send(exec_batch(sh, db, resp3, batch));
                }),
            );
            waits.push(rx);
        }
        let mut results: Vec<BatchResult> = Vec::with_capacity(waits.len() + 1);
        if let Some(batch) = local_batch {
            results.push(self.local.run(NO_TX, |sh| exec_batch(sh, db, resp3, batch)).await);
        }
        for rx in waits {
            match rx.await {
                Ok(r) => results.push(r),
                Err(_) => return std::future::pending().await,
            }
        }
        // Commands a shard handed back (a script that needs every shard, and
        // what followed it on that shard) run now, in order.
        let mut rest: Vec<(usize, Pending)> = results.iter_mut().flat_map(|r| r.rest.drain(..)).collect();
        rest.sort_unstable_by_key(|(i, _)| *i);
        let mut late: Vec<(usize, Vec<u8>)> = Vec::with_capacity(rest.len());
        for (i, p) in rest {
            let saved = std::mem::take(&mut self.out.buf);
            self.run_one(p).await;
            late.push((i, std::mem::replace(&mut self.out.buf, saved)));
        }
        // Merge replies back into command order.
        let mut order: Vec<(usize, usize, usize)> = Vec::new(); // (cmd index, result, reply number)
        for (ri, r) in results.iter().enumerate() {
            for (k, &(ci, _)) in r.ends.iter().enumerate() {
                order.push((ci, ri, k));
            }
        }
        for (k, (ci, _)) in late.iter().enumerate() {
            order.push((*ci, usize::MAX, k));
        }
        order.sort_unstable();
        for (_, ri, k) in order {
            if ri == usize::MAX {
                self.out.buf.extend_from_slice(&late[k].1);
                continue;
            }
            let r = &results[ri];
            let start = if k == 0 { 0 } else { r.ends[k - 1].1 };
            self.out.buf.extend_from_slice(&r.buf[start..r.ends[k].1]);
        }
    }

    async fn run_one(&mut self, p: Pending) {
        let mut p = p;
        for _ in 0..CUTOVER_RETRIES {
            let Some(back) = self.try_one(p).await else { return };
            if !self.gate_holds(back.spec, &back.args) && matches!(back.spec.exec, Exec::Script(_)) {
                // A script its shard handed back: it needs every shard.
                return self.run_top(back.spec, &back.args).await;
            }
            // Held by a migration's cut-over: wait, then route it again (it
            // is usually MOVED now; if the migration failed, it runs here).
            if let Err(e) = self.reroute(back.spec, &back.args).await {
                return self.out.error(&e);
            }
            let shard = self.single_shard(back.spec, &back.args).unwrap_or(back.shard);
            p = Pending { shard, ..back };
        }
        self.out.error(&CmdError::Other("TRYAGAIN the slot is still being migrated".into()));
    }

    /// Runs one command on its shard; hands it back unrun when the
    /// connection must handle it (a script that needs every shard, or a
    /// slot held by a migration's cut-over).
    async fn try_one(&mut self, p: Pending) -> Option<Pending> {
        let db = self.db;
        if p.shard == self.local.id() {
            let out = &mut self.out;
            let ran = self.local.run(NO_TX, |sh| exec_or_defer(sh, db, &p, out, now_ms())).await;
            (!ran).then_some(p)
        } else {
            let resp3 = self.out.resp3;
            let mut r = run_on(&self.engine, &self.local, p.shard, NO_TX, move |sh| exec_batch(sh, db, resp3, vec![(0, p)])).await;
            self.out.buf.extend_from_slice(&r.buf);
            r.rest.pop().map(|(_, p)| p)
        }
    }

    /// Runs a coordinator command. In cluster mode, one that reads or
    /// writes keys (RENAME, COPY, ZUNIONSTORE, ...: one slot, so one shard)
    /// runs holding that shard's lock, taken before the gate is checked, as
    /// EXEC does; so it cannot touch a slot that moved or is cutting over
    /// meanwhile. Blocking commands check the gate themselves (they must
    /// not hold a shard while they wait).
    async fn dispatch_gated(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
        let keyed = self.s.cluster.is_some()
            && (spec.has_flag(flag::WRITE) || spec.has_flag(flag::READONLY))
            && !spec.has_flag(flag::BLOCKING)
            && spec.key_indices(args).next().is_some();
        if !keyed {
            self.run_top(spec, args).await;
            return Ok(());
        }
        let shard = self.single_shard(spec, args).unwrap_or(self.local.id());
        for _ in 0..CUTOVER_RETRIES {
            let mut tx = Tx::new(&self.engine, &self.local);
            tx.lock_all(&[shard]).await;
            if !self.gate_holds(spec, args) {
                self.tx = Some(tx);
                self.run_top(spec, args).await;
                return Ok(());
            }
            drop(tx);
            self.reroute(spec, args).await?;
        }
        Err(CmdError::Other("TRYAGAIN the slot is still being migrated".into()))
    }

    /// The single slot of the last command's keys, as its routing check
    /// found it (cluster mode).
    fn checked_slot(&self) -> Option<u16> {
        self.s.cluster.as_ref().and_then(|c| c.last_slot)
    }

    /// Whether a migration's cut-over holds a slot of the command's keys.
    fn cutting_over(&self, args: &[Bytes]) -> bool {
        let Some(c) = &self.s.cluster else { return false };
        if !c.map.gate.any_closed() {
            return false;
        }
        let Some(spec) = commands::lookup(&args[0]) else { return false };
        let mut closed = false;
        crate::commands::routing::for_each_key(spec, args, |k| closed = closed || c.map.gate.is_closed(crate::slot::key_slot(k)));
        closed
    }

    /// Waits (bounded) until no slot of the command's keys is held by a
    /// cut-over.
    async fn hold_for_cutover(&mut self, args: &[Bytes]) {
        let (Some(c), Some(spec)) = (&self.s.cluster, commands::lookup(&args[0])) else { return };
        let map = c.map.clone();
        let mut slots = Vec::new();
        crate::commands::routing::for_each_key(spec, args, |k| slots.push(crate::slot::key_slot(k)));
        for s in slots {
            map.gate.wait_open(Some(s), CUTOVER_WAIT * CUTOVER_RETRIES as u32).await;
        }
    }

    /// Whether the gate holds back a slot of the command's keys (see
    /// `slot::gate`).
    fn gate_holds(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        self.s.cluster.as_ref().is_some_and(|c| crate::commands::routing::held_back(&c.map, spec, args))
    }

    /// Waits until no slot of the command's keys is held by a migration's
    /// cut-over, then checks the command's routing again.
    async fn reroute(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
        let Some(c) = &mut self.s.cluster else { return Ok(()) };
        let map = c.map.clone();
        let mut slots = Vec::new();
        crate::commands::routing::for_each_key(spec, args, |k| slots.push(crate::slot::key_slot(k)));
        for s in slots {
            map.gate.wait_open(Some(s), CUTOVER_WAIT).await;
        }
        let scripting = &self.engine.scripting;
        c.check(spec, args, false, false, || commands::scripting::allows_cross_slot(scripting, spec, args))
    }

    /// Multi-key commands whose keys span shards (consecutive ones of a
    /// pipeline together): each is split per shard, and all the parts run in
    /// one transaction that visits each shard once, in shard order, with
    /// that shard's parts in command order. The last shard needs no lock: its
    /// single job is exclusive by itself. Then each command's parts combine.
    async fn run_splits(&mut self, cmds: Vec<(&'static CommandSpec, Vec<Bytes>)>) {
        // Per command: its combine rule and its parts (ascending by shard).
        let mut plans: Vec<(Combine, Vec<Part>)> = Vec::with_capacity(cmds.len());
        // Per shard: the sub-commands to run there, in command order.
        let mut per_shard: Vec<(usize, Vec<SubCommand>)> = Vec::new();
        for (ci, (spec, args)) in cmds.into_iter().enumerate() {
            let Exec::Split(_, combine) = spec.exec else {
                // A single-shard command whose keys are on several shards
                // (GEORADIUS ... STORE): no parts, answered with an error below.
                plans.push((Combine::Ok, Vec::new()));
                continue;
            };
            let parts = split_by_shard(&self.engine, spec, &args);
            for part in &parts {
                let sub = SubCommand { cmd: ci, spec, args: part.args.clone() };
                match per_shard.iter().position(|p| p.0 == part.shard) {
                    Some(i) => per_shard[i].1.push(sub),
                    None => per_shard.push((part.shard, vec![sub])),
                }
            }
            plans.push((combine, parts));
        }
        per_shard.sort_by_key(|p| p.0);
        let (db, resp3) = (self.db, self.out.resp3);
        let mut tx = Tx::new(&self.engine, &self.local);
        let mut replies: Vec<(usize, ShardReplies)> = Vec::with_capacity(per_shard.len());
        let last = per_shard.len().saturating_sub(1);
        for (i, (shard, subs)) in per_shard.into_iter().enumerate() {
            let job = move |sh: &mut Shard| {
                let now = now_ms();
                subs.into_iter()
                    .map(|sc| {
                        let mut out = Out::new(resp3);
                        exec_one_at(sh, db, sc.spec, &sc.args, &mut out, now);
                        (sc.cmd, out.buf)
                    })
                    .collect::<Vec<_>>()
            };
            let r = if i == last { tx.run_unlocked(shard, job).await } else { tx.lock_and_run(shard, job).await };
            replies.push((shard, r));
        }
        drop(tx);
        for (ci, (combine, parts)) in plans.into_iter().enumerate() {
            if parts.is_empty() {
                // A split command has a key, so a part; this one ran nowhere.
                self.out.error(&CmdError::err("keys of this command must be on one shard"));
                continue;
            }
            let part_replies: Vec<Vec<u8>> = parts
                .iter()
                .map(|part| {
                    replies
                        .iter()
                        .find(|r| r.0 == part.shard)
                        .and_then(|r| r.1.iter().find(|(c, _)| *c == ci))
                        .map(|(_, b)| b.clone())
                        .unwrap_or_else(|| b"-ERR internal error\r\n".to_vec())
                })
                .collect();
            combine_replies(combine, &parts, &part_replies, &mut self.out);
        }
    }
}

/// One shard's replies to its sub-commands: (command index, reply), in order.
type ShardReplies = Vec<(usize, Vec<u8>)>;

/// One shard's part of a split command.
struct SubCommand {
    /// Index of the command in its squashed group.
    cmd: usize,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
}

/// Replies of a batch of commands run on one shard: the concatenated replies
/// and, for each command, its position in the segment and where its reply
/// ends. `rest`: commands not run because one of them (the first) must run
/// on the connection instead (a script needing every shard).
struct BatchResult {
    buf: Vec<u8>,
    ends: Vec<(usize, usize)>,
    rest: Vec<(usize, Pending)>,
}

fn exec_batch(sh: &mut Shard, db: usize, resp3: bool, batch: Vec<(usize, Pending)>) -> BatchResult {
    let mut out = Out::new(resp3);
    let mut ends = Vec::with_capacity(batch.len());
    let now = now_ms();
    let mut items = batch.into_iter();
    while let Some((i, p)) = items.next() {
        if !exec_or_defer(sh, db, &p, &mut out, now) {
            let mut rest = vec![(i, p)];
            rest.extend(items);
            return BatchResult { buf: out.buf, ends, rest };
        }
        ends.push((i, out.buf.len()));
    }
    BatchResult { buf: out.buf, ends, rest: Vec::new() }
}

/// Runs a command batched for a shard: a shard command, or a script on the
/// shard of its declared keys. False (nothing written) when the connection
/// must run it instead.
fn exec_or_defer(sh: &mut Shard, db: usize, p: &Pending, out: &mut Out, now: u64) -> bool {
    let (spec, args) = (p.spec, &p.args[..]);
    if let Some(map) = &sh.cluster {
        let held = match p.slot {
            Some(slot) => !map.gate.admits(slot),
            None => crate::commands::routing::held_back(map, spec, args),
        };
        if held {
            return false;
        }
    }
    match spec.exec {
        Exec::Script(call) => commands::scripting::run_on_shard(sh, db, spec, call, args, out),
        _ => {
            exec_one_at(sh, db, spec, args, out, now);
            true
        }
    }
}

impl Coord for Conn {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn db(&self) -> usize {
        self.db
    }

    fn set_db(&mut self, db: usize) {
        self.db = db;
        self.s.info.db.store(db, Relaxed);
    }

    fn now(&self) -> u64 {
        now_ms()
    }

    fn out(&mut self) -> &mut Out {
        &mut self.out
    }

    fn home(&self) -> usize {
        self.local.id()
    }

    fn tx_id(&self) -> TxId {
        Conn::tx_id(self)
    }

    fn lock<'a>(&'a mut self, shards: &'a [usize]) -> LocalFut<'a, ()> {
        Box::pin(async move {
            let tx = self.tx.get_or_insert_with(|| Tx::new(&self.engine, &self.local));
            tx.lock_all(shards).await;
        })
    }

    fn release(&mut self) {
        if !self.in_exec {
            self.tx = None;
        }
    }

    fn send(&mut self, shard: usize, job: Job) -> LocalFut<'_, ()> {
        let id = Conn::tx_id(self);
        Box::pin(run_on(&self.engine, &self.local, shard, id, job))
    }

    fn send_many(&mut self, jobs: Vec<(usize, Job)>) -> LocalFut<'_, ()> {
        let id = Conn::tx_id(self);
        Box::pin(async move {
            let me = self.local.id();
            let mut waits = Vec::with_capacity(jobs.len());
            let mut mine = None;
            for (shard, job) in jobs {
                if shard == me {
                    mine = Some(job);
                    continue;
                }
                let (done, wait) = oneshot::channel::<()>();
                self.engine.send(
                    shard,
                    id,
                    Box::new(move |sh| {
                        job(sh);
                        let _ = done.send(());
                    }),
                );
                waits.push(wait);
            }
            if let Some(job) = mine {
                self.local.run(id, job).await;
            }
            for w in waits {
                if w.await.is_err() {
                    // The shard thread is gone: the node is shutting down.
                    return std::future::pending().await;
                }
            }
        })
    }

    fn session(&mut self) -> Option<&mut Session> {
        Some(&mut self.s)
    }

    fn client_closed(&mut self) -> LocalFut<'_, ()> {
        Box::pin(async move {
            let info = self.s.info.clone();
            loop {
                if self.s.gone {
                    return;
                }
                if info.killed.load(Relaxed) {
                    break;
                }
                if self.inbuf.len() >= READ_AHEAD_MAX {
                    // Enough kept: the socket waits until the command ends.
                    info.kill.notified().await;
                    break;
                }
                // Readiness, then a real read: whatever the client sent
                // goes into the input buffer, after what was there, and is
                // parsed once the command ends (as Redis reads a blocked
                // client's pipeline and runs it later); end of stream or an
                // error is the hang-up.
                tokio::select! {
                    r = self.sock.readable() => {
                        if r.is_err() {
                            break;
                        }
                    }
                    _ = info.kill.notified() => break,
                }
                match read_some(&self.sock, &mut self.inbuf, &mut self.parser) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.read_ahead = true;
                        self.local.cell.borrow_mut().stats.net_input_bytes += n as u64;
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
                    Err(_) => break,
                }
            }
            // Gone: the rest of the pipeline is dropped and the connection
            // closes without answering.
            self.s.gone = true;
            self.s.closing = true;
        })
    }

    fn may_block(&self) -> bool {
        // Asked right before a command waits: it shows as blocked (CLIENT
        // LIST's `b`) until it ends (`run_top`).
        self.s.info.set_blocked(!self.in_exec);
        !self.in_exec
    }

    fn in_exec(&self) -> bool {
        self.in_exec
    }

    fn set_exec(&mut self, on: bool) {
        self.in_exec = on;
    }

    fn held(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        self.gate_holds(spec, args)
    }

    fn after_cutover<'a>(&'a mut self, spec: &'static CommandSpec, args: &'a [Bytes]) -> LocalFut<'a, CmdResult> {
        Box::pin(self.reroute(spec, args))
    }
}
