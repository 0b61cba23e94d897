//! One client connection: read, parse, execute, write. Commands available in
//! one read (a pipeline) are executed together: consecutive single-shard
//! commands are grouped per shard, so a pipeline costs at most one message
//! round trip per remote shard rather than one per command. Commands with
//! connection scope or keys on several shards are barriers that run alone.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::debug;

use super::clients::ClientInfo;
use crate::commands::{self, flag, Combine, CommandSpec, Ctx, Exec};
use crate::error::{CmdError, CmdResult};
use crate::resp::parse::split_flat_array;
use crate::resp::{Out, Parser};
use crate::shard::tx::Tx;
use crate::shard::{run_on, Engine, LocalShard, Shard, NO_TX};
use crate::util::now_ms;

/// Connection state visible to connection-level commands.
pub struct Conn {
    pub engine: Arc<Engine>,
    pub local: Rc<LocalShard>,
    pub out: Out,
    pub db: usize,
    pub authed: bool,
    pub info: Arc<ClientInfo>,
    /// Set by QUIT: close after flushing replies.
    pub closing: bool,
}

/// A parsed command waiting in a pipeline segment.
struct Pending {
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    shard: usize,
}

pub async fn serve(mut sock: TcpStream, engine: Arc<Engine>, local: Rc<LocalShard>) {
    let addr = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let info = engine.clients.register(addr, laddr);
    engine.stats.connected_clients.fetch_add(1, Relaxed);
    engine.stats.total_connections.fetch_add(1, Relaxed);
    let authed = !engine.cfg.has_password.load(Relaxed);
    let mut conn = Conn { engine: engine.clone(), local, out: Out::new(false), db: 0, authed, info: info.clone(), closing: false };
    let max_bulk = engine.cfg.proto_max_bulk_len.load(Relaxed) as usize;
    let mut parser = Parser::new(max_bulk);
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut cmds: Vec<Vec<Bytes>> = Vec::new();
    'conn: loop {
        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(16 * 1024);
        }
        let n = tokio::select! {
            r = sock.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = info.kill.notified() => break,
        };
        conn.local.cell.borrow_mut().stats.net_input_bytes += n as u64;
        let mut protocol_error = None;
        loop {
            match parser.next(&mut inbuf) {
                Ok(Some(args)) => {
                    if !args.is_empty() {
                        cmds.push(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        conn.execute(&mut cmds).await;
        if let Some(e) = protocol_error {
            debug!(client = info.id, "protocol error: {e}");
            conn.out.error_text(&e.to_string());
            conn.closing = true;
        }
        if !conn.out.buf.is_empty() {
            conn.local.cell.borrow_mut().stats.net_output_bytes += conn.out.buf.len() as u64;
            if sock.write_all(&conn.out.buf).await.is_err() {
                break 'conn;
            }
            conn.out.buf.clear();
            if conn.out.buf.capacity() > 1 << 20 {
                conn.out.buf.shrink_to(64 * 1024);
            }
        }
        if conn.closing || info.killed.load(Relaxed) {
            break;
        }
        if inbuf.is_empty() && inbuf.capacity() > 1 << 20 {
            inbuf = BytesMut::with_capacity(16 * 1024);
        }
    }
    let _ = sock.shutdown().await;
    engine.clients.unregister(info.id);
    engine.stats.connected_clients.fetch_sub(1, Relaxed);
}

impl Conn {
    /// Executes a pipeline of commands, appending every reply to `self.out`.
    async fn execute(&mut self, cmds: &mut Vec<Vec<Bytes>>) {
        let mut segment: Vec<Pending> = Vec::new();
        let mut commands = 0;
        for args in cmds.drain(..) {
            let spec = match self.check(&args) {
                Ok(spec) => spec,
                Err(e) => {
                    self.run_segment(&mut segment).await;
                    self.out.error(&e);
                    continue;
                }
            };
            commands += 1;
            self.info.set_last_cmd(spec);
            match &spec.exec {
                Exec::Shard(_) | Exec::Split(..) => match self.single_shard(spec, &args) {
                    Some(shard) => segment.push(Pending { spec, args, shard }),
                    None => {
                        self.run_segment(&mut segment).await;
                        self.run_split(spec, args).await;
                    }
                },
                Exec::Conn(c) => {
                    self.run_segment(&mut segment).await;
                    let c = *c;
                    if let Err(e) = commands::connection::dispatch(self, c, &args).await {
                        self.out.error(&e);
                    }
                    if self.closing {
                        break;
                    }
                }
            }
        }
        self.run_segment(&mut segment).await;
        self.local.cell.borrow_mut().stats.commands += commands;
        self.info.last_ms.store(now_ms(), Relaxed);
    }

    /// Looks the command up and checks arity and authentication.
    fn check(&self, args: &[Bytes]) -> CmdResult<&'static CommandSpec> {
        let Some(spec) = commands::lookup(&args[0]) else {
            if !self.authed {
                return Err(CmdError::NoAuth);
            }
            return Err(CmdError::unknown_command(&args[0], &args[1..]));
        };
        if !self.authed && !spec.has_flag(flag::NO_AUTH) {
            return Err(CmdError::NoAuth);
        }
        if !spec.arity_ok(args.len()) {
            return Err(CmdError::wrong_arity(spec.name));
        }
        Ok(spec)
    }

    /// The shard all of a command's keys live on, or `None` when they span
    /// several. Keyless shard commands run on the local shard.
    fn single_shard(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        let mut keys = spec.key_indices(args.len());
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
        // Merge replies back into command order.
        let mut order: Vec<(usize, usize, usize)> = Vec::new(); // (cmd index, result, reply number)
        for (ri, r) in results.iter().enumerate() {
            for (k, &(ci, _)) in r.ends.iter().enumerate() {
                order.push((ci, ri, k));
            }
        }
        order.sort_unstable();
        for (_, ri, k) in order {
            let r = &results[ri];
            let start = if k == 0 { 0 } else { r.ends[k - 1].1 };
            self.out.buf.extend_from_slice(&r.buf[start..r.ends[k].1]);
        }
    }

    async fn run_one(&mut self, p: Pending) {
        let db = self.db;
        if p.shard == self.local.id() {
            let out = &mut self.out;
            self.local.run(NO_TX, |sh| exec_one(sh, db, p.spec, &p.args, out)).await;
        } else {
            let resp3 = self.out.resp3;
            let r = run_on(&self.engine, &self.local, p.shard, NO_TX, move |sh| exec_batch(sh, db, resp3, vec![(0, p)])).await;
            self.out.buf.extend_from_slice(&r.buf);
        }
    }

    /// A multi-key command whose keys span shards: split it per shard and run
    /// the parts in one transaction.
    async fn run_split(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) {
        let Exec::Split(_, combine) = spec.exec else {
            // A single-shard command whose keys span shards: only reachable
            // through a table error, reported rather than run.
            self.out.error(&CmdError::err("keys of this command must be on one shard"));
            return;
        };
        let step = spec.step.max(1) as usize;
        let key_idx: Vec<usize> = spec.key_indices(args.len()).collect();
        // shard -> (sub-command args, positions of its keys in the original)
        let mut parts: Vec<(usize, Vec<Bytes>, Vec<usize>)> = Vec::new();
        for (n, &ki) in key_idx.iter().enumerate() {
            let shard = self.engine.shard_of(&args[ki]);
            let part = match parts.iter_mut().find(|p| p.0 == shard) {
                Some(p) => p,
                None => {
                    parts.push((shard, vec![args[0].clone()], Vec::new()));
                    parts.last_mut().expect("just pushed")
                }
            };
            part.1.extend(args[ki..(ki + step).min(args.len())].iter().cloned());
            part.2.push(n);
        }
        // Arguments after the last key group (JSON.MGET's path) go to every part.
        let trailing = key_idx.last().map_or(args.len(), |&k| (k + step).min(args.len()));
        for p in &mut parts {
            p.1.extend(args[trailing..].iter().cloned());
        }
        parts.sort_by_key(|p| p.0);
        let (db, resp3) = (self.db, self.out.resp3);
        let mut tx = Tx::new(&self.engine, &self.local);
        let mut replies = Vec::with_capacity(parts.len());
        for (shard, sub, _) in &parts {
            let sub = sub.clone();
            let r = tx
                .lock_and_run(*shard, move |sh| {
                    let mut out = Out::new(resp3);
                    exec_one(sh, db, spec, &sub, &mut out);
                    out.buf
                })
                .await;
            replies.push(r);
        }
        tx.finish();
        if let Some(err) = replies.iter().find(|r| r.first() == Some(&b'-')) {
            self.out.buf.extend_from_slice(err);
            return;
        }
        match combine {
            Combine::Ok => self.out.ok(),
            Combine::Sum => {
                let total: i64 = replies
                    .iter()
                    .map(|r| std::str::from_utf8(&r[1..r.len() - 2]).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0))
                    .sum();
                self.out.int(total);
            }
            Combine::Array => {
                let mut slots: Vec<&[u8]> = vec![&[]; key_idx.len()];
                for (r, (_, _, positions)) in replies.iter().zip(&parts) {
                    let elems = split_flat_array(r).unwrap_or_default();
                    for (e, &pos) in elems.into_iter().zip(positions) {
                        slots[pos] = e;
                    }
                }
                self.out.array(slots.len());
                for s in slots {
                    self.out.buf.extend_from_slice(s);
                }
            }
        }
    }
}

/// Replies of a batch of commands run on one shard: the concatenated replies
/// and, for each command, its position in the segment and where its reply ends.
struct BatchResult {
    buf: Vec<u8>,
    ends: Vec<(usize, usize)>,
}

fn exec_batch(sh: &mut Shard, db: usize, resp3: bool, batch: Vec<(usize, Pending)>) -> BatchResult {
    let mut out = Out::new(resp3);
    let mut ends = Vec::with_capacity(batch.len());
    for (i, p) in batch {
        exec_one(sh, db, p.spec, &p.args, &mut out);
        ends.push((i, out.buf.len()));
    }
    BatchResult { buf: out.buf, ends }
}

/// Runs one shard command, writing its reply or its error.
pub fn exec_one(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], out: &mut Out) {
    let f = match spec.exec {
        Exec::Shard(f) | Exec::Split(f, _) => f,
        Exec::Conn(_) => return out.error(&CmdError::err("connection command routed to a shard")),
    };
    let mut ctx = Ctx { shard: sh, db, now: now_ms() };
    let mark = out.buf.len();
    if let Err(e) = f(&mut ctx, args, out) {
        out.buf.truncate(mark);
        out.error(&e);
    }
}
