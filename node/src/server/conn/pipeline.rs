//! A connection's pipeline: the commands one read brought are checked
//! (lookup, arity, authentication, cluster routing, OOM), queued inside
//! MULTI, or run — consecutive single-shard commands batched per shard (one
//! message per shard), multi-shard ones split per shard under one
//! transaction, coordinator commands and scripts one at a time — with the
//! replies written in command order.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::segment::{EvictAll, Pending};
use super::*;
use crate::commands::observe;
use crate::commands::run::{combine_replies, exec_part, split_by_shard, Part, PartResult};
use crate::commands::session::Reply;
use crate::commands::{self, clock, flag, Combine, CommandSpec, Exec};
use crate::error::{CmdError, CmdResult};
use crate::shard::tx::Tx;
use crate::shard::Shard;
use crate::util::now_ms;

impl Conn {
    /// Executes a pipeline of commands, appending every reply to `self.out`.
    /// Consecutive single-shard commands gather in `segment`, consecutive
    /// multi-shard ones in `splits`; whichever is pending runs before a
    /// command of another kind, so replies keep their order.
    pub(super) async fn execute(&mut self, cmds: &mut Vec<Vec<Bytes>>) {
        let mut segment: Vec<Pending> = Vec::new();
        let mut splits: Vec<(&'static CommandSpec, Vec<Bytes>)> = Vec::new();
        // The segment holds a script (and so only commands for its shard);
        // the segment holds commands for several shards.
        let (mut seg_script, mut seg_mixed) = (false, false);
        let mut commands = 0;
        for args in cmds.drain(..) {
            // CLIENT REPLY OFF / SKIP: the command runs alone, and its
            // reply is dropped.
            if self.s.reply != Reply::On && !self.quiet {
                self.flush(&mut segment, &mut splits).await;
                self.run_quiet(args).await;
                if self.s.gone || self.s.closing {
                    break;
                }
                continue;
            }
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
                    // Refused before running: counted for the command (or
                    // subcommand) it names, when there is one.
                    if let Ok(spec) = commands::lookup_args(&args) {
                        commands::stats::reject(spec);
                    }
                    self.out.error(&e);
                    continue;
                }
            };
            commands += 1;
            self.s.info.set_last_cmd(spec);
            let scripting = &self.engine.scripting;
            if scripting.busy_count.load(Relaxed) > 0 && !spec.has_flag(flag::ALLOW_BUSY) {
                let e = commands::scripting::busy_error(scripting.busy_is_function());
                self.flush(&mut segment, &mut splits).await;
                commands::stats::reject(spec);
                if let Some(m) = &mut self.s.multi {
                    m.failed = true;
                }
                // A script busy on another thread: EXEC aborts, as on the
                // script's own thread (`server::busy`) and in Redis.
                let e = self.refuse_write(spec, e);
                self.out.error(&e);
                continue;
            }
            // CLIENT PAUSE: the command waits (after the earlier ones,
            // whose replies go out first) until the pause ends.
            if self.engine.clients.pausing() && self.paused_for(spec, &args) {
                self.flush(&mut segment, &mut splits).await;
                if !self.send_replies().await {
                    self.s.gone = true;
                    break;
                }
                self.wait_unpaused(spec, &args).await;
                if self.s.gone {
                    break;
                }
            }
            if self.s.multi.is_some() && !spec.has_flag(flag::NO_QUEUE) {
                self.flush(&mut segment, &mut splits).await;
                self.queue(spec, args);
                continue;
            }
            // CLIENT CACHING's flag holds for the next command alone: it runs
            // by itself, then the flag goes (one relaxed load otherwise).
            let caching = commands::tracking::caching_for(&self.s.info, spec);
            if caching {
                self.flush(&mut segment, &mut splits).await;
            }
            if segment.is_empty() {
                seg_script = false;
                seg_mixed = false;
            }
            match &spec.exec {
                Exec::Shard(_) | Exec::Split(..) => match self.route(spec, &args, slot) {
                    Some((shard, hint)) => {
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
                        segment.push(Pending { spec, args, shard, slot, hint, evict: EvictAll::Not });
                    }
                    None => {
                        self.run_segment(&mut segment).await;
                        splits.push((spec, args));
                    }
                },
                Exec::Script(_) => match self.route(spec, &args, slot) {
                    // Scripts batch with the commands for the shard that owns
                    // their declared keys, and only with those: a script
                    // that turns out to touch other shards must see every
                    // earlier command applied and no later one.
                    Some((shard, hint)) => {
                        if !splits.is_empty() {
                            self.run_splits(std::mem::take(&mut splits)).await;
                        }
                        if seg_mixed || segment.first().is_some_and(|p| p.shard != shard) {
                            self.run_segment(&mut segment).await;
                            seg_mixed = false;
                        }
                        seg_script = true;
                        segment.push(Pending { spec, args, shard, slot, hint, evict: EvictAll::Not })
                    }
                    None => {
                        self.flush(&mut segment, &mut splits).await;
                        self.run_top(spec, &args).await;
                    }
                },
                Exec::Coord(_) => {
                    self.flush(&mut segment, &mut splits).await;
                    // A command that may wait for data: the replies before
                    // it go out first, as Redis sends them.
                    if spec.has_flag(flag::BLOCKING) && !self.send_replies().await {
                        self.s.gone = true;
                        break;
                    }
                    if let Err(e) = self.dispatch_gated(spec, &args).await {
                        self.out.error(&e);
                    }
                    if self.s.closing {
                        break;
                    }
                }
            }
            if caching {
                self.flush(&mut segment, &mut splits).await;
                commands::tracking::caching_used(&self.s.info);
            }
        }
        self.flush(&mut segment, &mut splits).await;
        self.local.cell.borrow_mut().stats.commands += commands;
        self.s.publish(self.out.buf.capacity());
    }

    /// Runs one command whose reply is not sent (CLIENT REPLY OFF, or the
    /// command after SKIP), unless it turns replies back on (CLIENT REPLY
    /// ON answers).
    async fn run_quiet(&mut self, args: Vec<Bytes>) {
        if self.s.reply == Reply::SkipNext {
            self.s.reply = Reply::Skipping;
        }
        // The replies before it go out first: a command that waits (a
        // blocking one, a paused one) sends what is pending, and its own
        // reply must be what is left after.
        if !self.out.buf.is_empty() && !self.send_replies().await {
            self.s.gone = true;
            return;
        }
        let mark = self.out.buf.len();
        self.quiet = true;
        self.s.pushed = false;
        Box::pin(self.execute(&mut vec![args])).await;
        self.quiet = false;
        // (Un)subscribe confirmations are pushes: Redis sends them
        // whatever CLIENT REPLY says.
        let keep = std::mem::take(&mut self.s.pushed);
        match self.s.reply {
            Reply::On => {}
            Reply::Skipping => {
                self.s.reply = Reply::On;
                if !keep {
                    self.out.buf.truncate(mark);
                }
            }
            Reply::Off | Reply::SkipNext if !keep => self.out.buf.truncate(mark),
            Reply::Off | Reply::SkipNext => {}
        }
    }

    /// Whether CLIENT PAUSE holds this command now: every command under
    /// ALL; under WRITE, those that may write or propagate (Redis's
    /// `write` and `may_replicate`: PUBLISH, SPUBLISH, PFCOUNT, scripts and
    /// functions unless they declare `no-writes`, EXEC of such commands).
    fn paused_for(&self, spec: &'static CommandSpec, args: &[Bytes]) -> bool {
        use crate::shard::clients::Paused;
        match self.engine.clients.paused(now_ms()) {
            None => false,
            Some(Paused::All(_)) => true,
            Some(Paused::Writes(_)) => {
                let may_write = |spec: &CommandSpec, args: &[Bytes]| commands::scripting::may_write(&self.engine.scripting, spec, args);
                may_write(spec, args)
                    || (spec.name == "exec" && self.s.multi.as_ref().is_some_and(|m| m.queued.iter().any(|(s, a)| may_write(s, a))))
            }
        }
    }

    /// Waits while CLIENT PAUSE holds the command (flag `b` meanwhile), or
    /// until the client goes.
    async fn wait_unpaused(&mut self, spec: &'static CommandSpec, args: &[Bytes]) {
        let engine = self.engine.clone();
        let info = self.s.info.clone();
        // Counted in INFO's blocked_clients, as Redis counts a postponed
        // client (before the flag shows, so whoever sees it sees both).
        let blocked = crate::shard::blocking::BlockedClient::new(engine.clone(), None);
        info.set_blocked(true);
        loop {
            let changed = engine.clients.pause_changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(p) = engine.clients.paused(now_ms()).filter(|_| self.paused_for(spec, args)) else { break };
            let until = match p {
                crate::shard::clients::Paused::All(t) | crate::shard::clients::Paused::Writes(t) => t,
            };
            let left = std::time::Duration::from_millis(until.saturating_sub(now_ms()));
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(left) => {}
                () = self.client_closed() => break,
            }
        }
        info.set_blocked(false);
        // The pause is not the command's own time, and not a later
        // blocking command's wait either.
        drop(blocked);
        info.take_waited();
    }

    /// Runs whatever is pending (at most one of the two is non-empty).
    async fn flush(&mut self, segment: &mut Vec<Pending>, splits: &mut Vec<(&'static CommandSpec, Vec<Bytes>)>) {
        self.run_segment(segment).await;
        if !splits.is_empty() {
            self.run_splits(std::mem::take(splits)).await;
        }
    }

    /// Queues a command between MULTI and EXEC.
    fn queue(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) {
        let Some(m) = &mut self.s.multi else { return };
        if spec.has_flag(flag::NO_MULTI) {
            m.failed = true;
            commands::stats::reject(spec);
            self.out.error(&CmdError::err("Command not allowed inside a transaction"));
            return;
        }
        m.push(spec, args);
        self.out.simple("QUEUED");
    }

    /// Runs a coordinator command or a script at the top level (not inside
    /// EXEC), then lets go of whatever shards it held.
    pub(super) async fn run_top(&mut self, spec: &'static CommandSpec, args: &[Bytes]) {
        commands::run_command(self, spec, args).await;
        self.tx = None;
        self.s.info.set_blocked(false);
    }

    /// Looks the command (or a container's subcommand) up and checks arity
    /// and authentication.
    fn check(&mut self, args: &[Bytes]) -> CmdResult<&'static CommandSpec> {
        let spec = match commands::lookup_args(args) {
            Ok(spec) => spec,
            Err(_) if !self.s.authed => return Err(CmdError::NoAuth),
            Err(None) => return Err(CmdError::unknown_command(&args[0], &args[1..])),
            Err(Some(container)) => return Err(CmdError::unknown_subcommand(container.name, &args[1])),
        };
        if !self.s.authed && !spec.has_flag(flag::NO_AUTH) {
            return Err(CmdError::NoAuth);
        }
        if !spec.arity_ok(args.len()) {
            return Err(CmdError::wrong_arity(spec.name));
        }
        self.acl_check(spec, args)?;
        if self.s.sub.is_some() && !self.out.resp3 && !spec.has_flag(flag::SUBSCRIBED) {
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
        // A read-only replica takes writes from its primary only. A script
        // or function that declares flags without `no-writes` counts as a
        // write (Redis's scriptFlagsToCmdFlags); scripts without a shebang
        // are stopped at their first write.
        if self.engine.repl.read_only(&self.engine.cfg) && self.writes(spec, args) {
            return Err(self.refuse_write(spec, CmdError::ReadOnlyReplica));
        }
        // `replica-serve-stale-data no` with the link down: only commands
        // flagged `stale` run (an EXEC only when all of its queue is).
        if self.engine.repl.stale(&self.engine.cfg) {
            let scripting = &self.engine.scripting;
            let allowed = |spec: &CommandSpec, args: &[Bytes]| commands::scripting::allows_stale(scripting, spec, args);
            let denied = !allowed(spec, args)
                || (spec.name == "exec" && self.s.multi.as_ref().is_some_and(|m| m.queued.iter().any(|(s, a)| !allowed(s, a))));
            if denied {
                return Err(self.refuse_write(spec, CmdError::MasterDown));
            }
        }
        if self.engine.cfg.maxmemory.load(Relaxed) > 0 {
            self.check_memory(spec, args)?;
        }
        // The last snapshot failed: writes (and PING, as in Redis) are
        // refused until one succeeds.
        if (spec.has_flag(flag::WRITE) || spec.name == "ping") && commands::persistence::writes_refused(&self.engine) {
            return Err(CmdError::Misconf);
        }
        // `min-replicas-to-write`: a primary without enough good replicas
        // refuses writes.
        if !self.engine.repl.enough_replicas(&self.engine.cfg) && self.writes(spec, args) {
            return Err(self.refuse_write(spec, CmdError::NoReplicas));
        }
        if self.engine.saves.loading() && !spec.has_flag(flag::LOADING) {
            return Err(CmdError::Loading);
        }
        let may_write = spec.has_flag(flag::WRITE) || matches!(spec.exec, commands::Exec::Script(_)) || spec.name == "exec";
        if may_write && self.engine.journal.write_failed.load(Relaxed) && spec.has_flag(flag::WRITE) {
            let e = self.engine.journal.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(CmdError::Other(format!("MISCONF Errors writing to the AOF file: {e}")));
        }
        self.wrote |= may_write;
        Ok(spec)
    }

    /// Whether the command counts as a write for the node-state checks:
    /// write commands, scripts that declare writes, and an EXEC whose queue
    /// holds one of those (Redis's mstate.cmd_flags).
    fn writes(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        let scripting = &self.engine.scripting;
        let is_write =
            |spec: &CommandSpec, args: &[Bytes]| spec.has_flag(flag::WRITE) || commands::scripting::declares_writes(scripting, spec, args);
        is_write(spec, args) || (spec.name == "exec" && self.s.multi.as_ref().is_some_and(|m| m.queued.iter().any(|(s, a)| is_write(s, a))))
    }

    /// A command refused by the node's state (a write on a replica or
    /// without enough replicas, anything on a stale replica or while a
    /// script is busy): an EXEC so
    /// refused discards the transaction and answers EXECABORT, as Redis's
    /// execCommandAbort.
    fn refuse_write(&mut self, spec: &CommandSpec, e: CmdError) -> CmdError {
        if spec.name != "exec" || self.s.multi.is_none() {
            return e;
        }
        commands::transactions::end(&mut self.s, &self.engine);
        CmdError::Other(format!("EXECABORT Transaction discarded because of: {e}"))
    }

    /// The ACL check: a flag test for an unrestricted user (the default
    /// one's `+@all ~* &*`), else the user's selectors against the
    /// command, its keys (by their key specs) and channels. The user is
    /// looked up again first when the node's users changed.
    #[inline]
    fn acl_check(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
        if self.engine.acl.generation.load(Relaxed) != self.s.acl_gen && !self.s.refresh_user(&self.engine) {
            // The user was deleted: the connection is closing.
            self.s.closing = true;
            return Err(CmdError::NoAuth);
        }
        if self.s.user.unrestricted() {
            return Ok(());
        }
        commands::acl::check(&self.s.user, spec, args).map_err(|d| {
            // The log's client info names the refused command, as Redis's.
            self.s.info.set_last_cmd(spec);
            let ctx = if self.s.multi.is_some() { commands::acl::Context::Multi } else { commands::acl::Context::TopLevel };
            commands::acl::check::log_denied(&self.engine, d, ctx, spec, args, &self.s.user.name, &self.s.info);
            d.error(spec)
        })
    }

    /// Out of memory (over maxmemory, and eviction cannot help): commands
    /// that may grow memory are refused; reads and deletes go on (Redis's
    /// order: after routing). Inside MULTI every command but EXEC, DISCARD,
    /// QUIT and RESET is refused (queuing takes memory too), and EXEC of a
    /// queue holding such a command aborts the transaction.
    fn check_memory(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
        let scripting = &self.engine.scripting;
        let is = |name: &str| spec.name == name;
        let refuse = match &self.s.multi {
            Some(m) if is("exec") => m.queued.iter().any(|(spec, args)| commands::scripting::denies_oom(scripting, spec, args)),
            Some(_) => !(is("discard") || is("quit") || is("reset")),
            None => commands::scripting::denies_oom(scripting, spec, args),
        };
        if !refuse || !crate::shard::evict::oom(&self.engine.cfg) {
            return Ok(());
        }
        if is("exec") {
            self.s.multi = None;
            if let Some(c) = &mut self.s.cluster {
                let _ = c.finish_tx();
            }
            self.s.unwatch(&self.engine);
            return Err(CmdError::Other(format!("EXECABORT Transaction discarded because of: {}", CmdError::Oom)));
        }
        Err(CmdError::Oom)
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
        for (ci, &(spec, ref args)) in cmds.iter().enumerate() {
            let Exec::Split(_, combine) = spec.exec else {
                // A single-shard command whose keys are on several shards
                // (GEORADIUS ... STORE): no parts, answered with an error below.
                plans.push((Combine::Ok, Vec::new()));
                continue;
            };
            let parts = split_by_shard(&self.engine, spec, args);
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
        // Only a tracking client's jobs carry it (`tracking::as_caller`).
        let tracker = (self.s.info.tracking.load(Relaxed) != 0).then(|| self.s.info.clone());
        let start = clock::now();
        let mut tx = Tx::new(&self.engine, &self.local);
        let mut replies: Vec<(usize, ShardReplies)> = Vec::with_capacity(per_shard.len());
        let last = per_shard.len().saturating_sub(1);
        for (i, (shard, subs)) in per_shard.into_iter().enumerate() {
            let tracker = tracker.clone();
            let job = move |sh: &mut Shard| {
                let now = now_ms();
                let run = |sh: &mut Shard| {
                    subs.into_iter().map(|sc| (sc.cmd, exec_part(sh, db, sc.spec, &sc.args, resp3, now))).collect::<Vec<_>>()
                };
                match &tracker {
                    Some(c) => commands::tracking::as_caller(sh, c, run),
                    None => run(sh),
                }
            };
            let r = if i == last { tx.run_unlocked(shard, job).await } else { tx.lock_and_run(shard, job).await };
            replies.push((shard, r));
        }
        drop(tx);
        // Each command counts here, on the connection's thread, with an
        // even share of the transaction's time.
        let share = start.elapsed_nanos() / plans.len().max(1) as u64;
        for (ci, (combine, parts)) in plans.into_iter().enumerate() {
            let (spec, args) = (cmds[ci].0, &cmds[ci].1);
            if parts.is_empty() {
                // A split command has a key, so a part; this one ran nowhere.
                self.out.error(&CmdError::err("keys of this command must be on one shard"));
                continue;
            }
            let mut part_replies: Vec<PartResult> = Vec::with_capacity(parts.len());
            for part in &parts {
                let found = replies.iter_mut().find(|r| r.0 == part.shard).and_then(|r| r.1.iter_mut().find(|(c, _)| *c == ci));
                part_replies.push(match found {
                    Some((_, r)) => std::mem::replace(r, PartResult { buf: Vec::new(), typed: None }),
                    None => PartResult { buf: b"-ERR internal error\r\n".to_vec(), typed: None },
                });
            }
            let mark = self.out.buf.len();
            combine_replies(combine, &parts, &part_replies, &mut self.out);
            commands::stats::record(spec, share, self.out.buf.get(mark) == Some(&b'-'));
            observe::done(&self.engine, spec, args, self.db, share, Some(&self.s.info), true);
        }
    }
}

/// One shard's replies to its sub-commands: (command index, reply), in order.
type ShardReplies = Vec<(usize, PartResult)>;

/// One shard's part of a split command.
struct SubCommand {
    /// Index of the command in its squashed group.
    cmd: usize,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
}
