//! What commands run against: the connection as a `Coord` (its engine,
//! session, output, database, transaction and the shards it runs work on).

use super::*;

impl Coord for Conn {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn acl_user(&self) -> Option<Arc<crate::shard::acl::User>> {
        Some(self.s.user.clone())
    }

    fn db(&self) -> usize {
        self.db
    }

    fn set_db(&mut self, db: usize) {
        self.db = db;
        self.s.info.db.store(db, Relaxed);
    }

    fn now(&self) -> u64 {
        if self.exec_now != 0 {
            return self.exec_now;
        }
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
        let job = crate::commands::notify::wrap(&self.running, job);
        Box::pin(run_on(&self.engine, &self.local, shard, id, job))
    }

    fn set_running(&mut self, cmd: Option<crate::commands::notify::Running>) {
        self.running = cmd;
    }

    fn send_many(&mut self, jobs: Vec<(usize, Job)>) -> LocalFut<'_, ()> {
        let id = Conn::tx_id(self);
        let jobs: Vec<(usize, Job)> = jobs.into_iter().map(|(s, j)| (s, crate::commands::notify::wrap(&self.running, j))).collect();
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
                        crate::shard::answer(sh, me, done, ());
                    }),
                );
                self.engine.inbox(me).expect_reply();
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
                    info.killed_signal().await;
                    break;
                }
                // Readiness, then a real read: whatever the client sent
                // goes into the input buffer, after what was there, and is
                // parsed once the command ends (as Redis reads a blocked
                // client's pipeline and runs it later); end of stream or an
                // error is the hang-up.
                let (sock, inbuf, parser) = (&mut self.sock, &mut self.inbuf, &mut self.parser);
                let read = tokio::select! {
                    r = std::future::poll_fn(|cx| sock.poll_read_some(cx, inbuf, parser)) => r,
                    _ = info.killed_signal() => break,
                };
                match read {
                    Ok(0) => break,
                    Ok(n) => {
                        self.read_ahead = true;
                        let stats = &mut self.local.cell.borrow_mut().stats;
                        stats.net_input_bytes += n as u64;
                        stats.reads_processed += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
        self.exec_now = if on { now_ms() } else { 0 };
    }

    fn held(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        self.gate_holds(spec, args)
    }

    fn after_cutover<'a>(&'a mut self, spec: &'static CommandSpec, args: &'a [Bytes]) -> LocalFut<'a, CmdResult> {
        Box::pin(self.reroute(spec, args))
    }
}
