//! The registry of connected clients, for CLIENT LIST / INFO / KILL. Each
//! connection owns an `Arc<ClientInfo>` it updates with relaxed atomics; the
//! registry's mutex is only taken on connect, disconnect and CLIENT calls.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use tokio::sync::Notify;

use super::acl::User;
use crate::config::OutputLimit;
use crate::util::{coarse_now_ms, now_ms};

/// A command's name as the registry records it (CLIENT LIST's `cmd=`): the
/// name field of a static command declaration, by reference, so that it is
/// one word and a connection can store it per command with a relaxed
/// atomic. The command table provides the conversion from its declarations.
#[derive(Clone, Copy)]
pub struct CmdName(pub &'static &'static str);

pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    /// The client socket's descriptor.
    pub fd: i32,
    /// Connected through `unixsocket` (flag `U`).
    pub unix: bool,
    pub created_ms: u64,
    /// When the client last sent or was answered (coarse clock: a few ms
    /// behind at most, read on every command).
    pub last_ms: AtomicU64,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// The last command run (a `CmdName`; null = none).
    last_cmd: AtomicPtr<&'static str>,
    pub name: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    pub killed: AtomicBool,
    /// Wakes the connection's task once `killed` is set; that task is the
    /// only one to wait for it (`killed_signal`).
    kill: AtomicWaker,
    /// CLIENT NO-EVICT / NO-TOUCH (flags `e` and `T`). NO-EVICT holds
    /// trivially: no client is ever evicted (there is no
    /// `maxmemory-clients`). With NO-TOUCH, the client's commands batched
    /// to a shard (single-shard commands and scripts) leave keys' access
    /// metadata as they are (`store::access::touching`).
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    /// A replica's connection (PSYNC/SYNC): type `replica`, flag `S`.
    pub replica: AtomicBool,
    /// This replica's link to its primary: type `master`, flag `M`.
    pub master: AtomicBool,
    /// How a client not served by a connection task (the link to the
    /// primary, a thread of its own) is closed when killed.
    pub on_kill: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// CLIENT TRACKING: its mode (`shard::tracking::flag`; 0 when off).
    pub tracking: std::sync::atomic::AtomicU8,
    /// MONITOR is on (flag `O`).
    monitor: AtomicBool,
    /// CLIENT UNBLOCK asked the blocked command to end: 0 no, `UNBLOCK_TIMEOUT`
    /// or `UNBLOCK_ERROR`; announced through `unblock_notify`.
    unblock: std::sync::atomic::AtomicU8,
    unblock_notify: Notify,
    /// Nanoseconds the running command spent waiting (`BlockedClient`).
    waited_ns: AtomicU64,
    /// Bytes of pub/sub messages handed to the connection and not written
    /// to its socket yet (publishers add, the connection subtracts once
    /// written): what `client-output-buffer-limit` weighs for a subscriber.
    pub out_pending: AtomicUsize,
    /// When the output was first seen over the class's soft limit (Unix
    /// ms; 0: it is not).
    soft_since: AtomicU64,
    /// What the connection publishes about itself (see `State`).
    st: State,
    /// The ACL user the client is authenticated as (`None`: `default`,
    /// not looked up yet), as the connection last saw it; scripts the
    /// client runs on other threads check their commands against it.
    acl_user: Mutex<Option<Arc<User>>>,
}

/// A connection's state as CLIENT LIST shows it, published by the
/// connection with relaxed stores at a few natural points, never per
/// command: the session after each pipeline (`publish_session`), the input
/// buffers before a pipeline runs and when waiting for input starts
/// (`publish_input`), the output buffer when a write starts and ends
/// (`writing`, `written`), and the blocked flag around a wait. CLIENT
/// publishes its own connection's session before describing it. Each field
/// is exact as of its last store; a line is not a snapshot of one instant.
#[derive(Default)]
struct State {
    /// Subscribed channels, patterns and shard channels.
    sub: AtomicUsize,
    psub: AtomicUsize,
    ssub: AtomicUsize,
    /// Commands queued since MULTI, plus one (0 = not in MULTI), and their
    /// arguments' memory.
    multi: AtomicUsize,
    multi_mem: AtomicUsize,
    /// Watched keys and the memory their entries take.
    watch: AtomicUsize,
    watch_mem: AtomicUsize,
    /// The flag a shard raises when a watched key changes (`d`), kept while
    /// keys are watched; `dirty_id` is its address, so that republishing an
    /// unchanged watch takes no lock.
    dirty: Mutex<Option<Arc<AtomicBool>>>,
    dirty_id: AtomicUsize,
    /// QUIT was received (`c`), READONLY is on (`r`), a command is waiting
    /// for data (`b`).
    closing: AtomicBool,
    readonly: AtomicBool,
    blocked: AtomicBool,
    /// Bytes of input held that are not a whole command yet, and the spare
    /// room of the buffers holding them.
    qbuf: AtomicUsize,
    qbuf_free: AtomicUsize,
    /// The RESP bytes of the commands being run: Redis's query buffer
    /// still holds them while they run (not once the client blocks).
    qbuf_run: AtomicUsize,
    /// Argument bytes of the commands being run, and of the complete big
    /// arguments of a command still being received.
    argv_run: AtomicUsize,
    argv_held: AtomicUsize,
    /// The output buffer: its capacity, the most it held in the current
    /// window (since `rbp_since`), the bytes waiting to be sent, and
    /// whether a write of them is in flight.
    rbs: AtomicUsize,
    rbp: AtomicUsize,
    rbp_since: AtomicU64,
    obl: AtomicUsize,
    writing: AtomicBool,
    /// The connection's records (`SessionView::fixed`).
    fixed: AtomicUsize,
}

/// Redis resets the output buffer's peak (`rbp`) every 5 seconds.
const PEAK_WINDOW_MS: u64 = 5000;

/// The session state CLIENT LIST reports, as the connection's session
/// (`commands::session`) sees it.
pub struct SessionView<'a> {
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// In MULTI: the queued commands and the memory of their arguments.
    pub multi: Option<(usize, usize)>,
    /// Watched keys, the memory their entries take, and the flag raised
    /// when one changes.
    pub watch: usize,
    pub watch_mem: usize,
    pub dirty: Option<&'a Arc<AtomicBool>>,
    pub closing: bool,
    pub readonly: bool,
    /// The output buffer's capacity.
    pub out_cap: usize,
    /// The size of the connection's own records (counted in `tot-mem`).
    pub fixed: usize,
}

/// A client's type, as CLIENT LIST TYPE and CLIENT KILL TYPE filter on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientType {
    Normal,
    /// Has at least one channel or pattern subscription.
    PubSub,
    /// A replica's link to its primary (its own thread, registered as a
    /// client so that CLIENT LIST shows it and CLIENT KILL breaks it).
    Master,
    /// A replica's connection, after PSYNC or SYNC.
    Replica,
}

impl ClientType {
    /// Parses a type name as Redis does (`slave` is `replica`).
    pub fn parse(name: &[u8]) -> Option<ClientType> {
        let n = name.to_ascii_lowercase();
        match n.as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"pubsub" => Some(ClientType::PubSub),
            b"master" => Some(ClientType::Master),
            b"replica" | b"slave" => Some(ClientType::Replica),
            _ => None,
        }
    }
}

/// The bytes of a batch of commands' arguments.
pub fn args_len(cmds: &[Vec<Bytes>]) -> usize {
    cmds.iter().map(|c| argv_len(c)).sum()
}

/// The bytes `cmds` took as RESP arrays of bulk strings.
fn framed_len(cmds: &[Vec<Bytes>]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    cmds.iter().map(|c| 3 + digits(c.len()) + c.iter().map(|a| 5 + digits(a.len()) + a.len()).sum::<usize>()).sum()
}

/// The bytes of one command's arguments.
pub fn argv_len(args: &[Bytes]) -> usize {
    args.iter().map(|a| a.len()).sum()
}

impl ClientInfo {
    /// Whether `pending` output bytes break `limit` at `now` (Unix ms), as
    /// Redis's checkClientOutputBufferLimits judges: over the hard limit,
    /// or over the soft one for more than its seconds in a row. Remembers
    /// when the soft limit was first passed.
    pub fn output_over(&self, pending: usize, limit: &OutputLimit, now: u64) -> bool {
        let (hard, soft) = (limit.hard.load(Relaxed) as usize, limit.soft.load(Relaxed) as usize);
        if hard > 0 && pending >= hard {
            return true;
        }
        if soft == 0 || pending < soft {
            if self.soft_since.load(Relaxed) != 0 {
                self.soft_since.store(0, Relaxed);
            }
            return false;
        }
        let since = self.soft_since.load(Relaxed);
        if since == 0 {
            self.soft_since.store(now.max(1), Relaxed);
            return false;
        }
        now.saturating_sub(since) / 1000 > limit.soft_secs.load(Relaxed)
    }

    /// Closes the connection as soon as it can (CLIENT KILL, output
    /// limits): marks the client killed and wakes its connection, which
    /// writes no more replies. False when it was killed before.
    pub fn close_async(&self) -> bool {
        if self.killed.swap(true, Relaxed) {
            return false;
        }
        self.kill.wake();
        if let Some(close) = self.on_kill.get() {
            close();
        }
        true
    }

    /// Ready once the client is killed (and from then on). For the
    /// client's own connection task: a waker registered elsewhere would
    /// take its place.
    pub fn killed_signal(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.killed.load(Relaxed) {
                return std::task::Poll::Ready(());
            }
            self.kill.register(cx.waker());
            if self.killed.load(Relaxed) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
    pub fn set_last_cmd(&self, cmd: impl Into<CmdName>) {
        let CmdName(name) = cmd.into();
        self.last_cmd.store(std::ptr::from_ref(name).cast_mut(), Relaxed);
    }

    pub fn last_cmd(&self) -> &'static str {
        let p = self.last_cmd.load(Relaxed);
        if p.is_null() {
            return "NULL";
        }
        // SAFETY: the only non-null values stored come from a `CmdName`'s
        // `&'static &'static str`.
        unsafe { *p }
    }

    pub fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Publishes the session's state (after each pipeline, and before
    /// CLIENT describes the client running it). Ends the pipeline's
    /// commands: their arguments are no longer held.
    pub fn publish_session(&self, v: SessionView<'_>) {
        let st = &self.st;
        st.sub.store(v.sub, Relaxed);
        st.psub.store(v.psub, Relaxed);
        st.ssub.store(v.ssub, Relaxed);
        let (multi, multi_mem) = v.multi.map_or((0, 0), |(n, mem)| (n + 1, mem));
        st.multi.store(multi, Relaxed);
        st.multi_mem.store(multi_mem, Relaxed);
        st.watch.store(v.watch, Relaxed);
        st.watch_mem.store(v.watch_mem, Relaxed);
        let id = v.dirty.map_or(0, |d| Arc::as_ptr(d) as usize);
        if id != st.dirty_id.load(Relaxed) {
            // Only when WATCH, UNWATCH, EXEC or DISCARD changed the watch.
            *st.dirty.lock().unwrap_or_else(|e| e.into_inner()) = v.dirty.cloned();
            st.dirty_id.store(id, Relaxed);
        }
        st.closing.store(v.closing, Relaxed);
        st.readonly.store(v.readonly, Relaxed);
        st.rbs.store(v.out_cap, Relaxed);
        st.fixed.store(v.fixed, Relaxed);
        st.argv_run.store(0, Relaxed);
        self.touched();
    }

    /// The client did something now. The coarse clock may be a few ms
    /// behind the one `created_ms` came from: never earlier than that, so
    /// that CLIENT LIST's `idle` never exceeds its `age`.
    fn touched(&self) {
        self.last_ms.store(coarse_now_ms().max(self.created_ms), Relaxed);
    }

    /// The output buffer's capacity, while no write is in flight.
    pub fn set_out_cap(&self, cap: usize) {
        self.st.rbs.store(cap, Relaxed);
    }

    /// Publishes the input side: `held` bytes received that are not a whole
    /// command yet (in the input buffer and a big argument's own buffer),
    /// `spare` room in those buffers, `argv_held` bytes of a partly
    /// received command's complete big arguments, and the arguments of the
    /// commands about to run (`running`, empty while waiting for input).
    pub fn publish_input(&self, held: usize, spare: usize, argv_held: usize, running: &[Vec<Bytes>]) {
        let st = &self.st;
        if held > 0 && running.is_empty() {
            // Part of a command arrived: the client is not idle (`timeout`).
            self.touched();
        }
        st.qbuf.store(held, Relaxed);
        st.qbuf_run.store(framed_len(running), Relaxed);
        st.qbuf_free.store(spare, Relaxed);
        st.argv_held.store(argv_held, Relaxed);
        st.argv_run.store(args_len(running), Relaxed);
    }

    /// The command being run is one of these arguments (CLIENT describing
    /// its own connection, mid-pipeline).
    pub fn set_running(&self, args: &[Bytes]) {
        self.st.argv_run.store(argv_len(args), Relaxed);
    }

    /// Bytes waiting in the output buffer, not being written yet (CLIENT
    /// describing its own connection: the replies before it in a pipeline).
    pub fn set_pending(&self, len: usize) {
        self.st.obl.store(len, Relaxed);
    }

    /// A write of the output buffer's `len` bytes starts (buffer capacity
    /// `cap`).
    pub fn writing(&self, len: usize, cap: usize) {
        let st = &self.st;
        st.obl.store(len, Relaxed);
        st.rbs.store(cap, Relaxed);
        st.writing.store(true, Relaxed);
        let now = coarse_now_ms();
        if now.saturating_sub(st.rbp_since.load(Relaxed)) >= PEAK_WINDOW_MS {
            st.rbp_since.store(now, Relaxed);
            st.rbp.store(len, Relaxed);
        } else if len > st.rbp.load(Relaxed) {
            st.rbp.store(len, Relaxed);
        }
    }

    /// `bytes` counted in `out_pending` left the queue (taken into the
    /// output buffer, or written).
    pub fn unqueued(&self, bytes: usize) {
        self.out_pending.fetch_sub(bytes.min(self.out_pending.load(Relaxed)), Relaxed);
    }

    /// The write finished (the buffer, emptied, has capacity `cap`).
    pub fn written(&self, cap: usize) {
        let st = &self.st;
        st.obl.store(0, Relaxed);
        st.rbs.store(cap, Relaxed);
        st.writing.store(false, Relaxed);
    }

    /// Whether a command of this client waits for data (flag `b`).
    pub fn is_blocked(&self) -> bool {
        self.st.blocked.load(Relaxed)
    }

    /// CLIENT UNBLOCK: ends the command this client waits in, as if it
    /// timed out or (`error`) with an error; false when it waits for
    /// nothing.
    pub fn unblock(&self, error: bool) -> bool {
        if !self.is_blocked() {
            return false;
        }
        self.unblock.store(if error { UNBLOCK_ERROR } else { UNBLOCK_TIMEOUT }, Relaxed);
        self.unblock_notify.notify_waiters();
        true
    }

    /// Completes when CLIENT UNBLOCK ends the wait: true for its ERROR
    /// form. A blocking command waits on this beside its data.
    pub async fn unblocked(&self) -> bool {
        loop {
            let n = self.unblock_notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            match self.unblock.swap(0, Relaxed) {
                0 => n.await,
                m => return m == UNBLOCK_ERROR,
            }
        }
    }

    /// The running command waited `nanos` more.
    pub fn add_waited(&self, nanos: u64) {
        self.waited_ns.fetch_add(nanos, Relaxed);
    }

    /// How long the command that just ran waited (and forgets it).
    pub fn take_waited(&self) -> u64 {
        self.waited_ns.swap(0, Relaxed)
    }

    /// MONITOR starts or stops (flag `O`).
    pub fn set_monitor(&self, on: bool) {
        self.monitor.store(on, Relaxed);
    }

    /// A command starts or stops waiting for data (flag `b`). A CLIENT
    /// UNBLOCK meant for an earlier wait is forgotten.
    pub fn set_blocked(&self, on: bool) {
        if on && !self.st.blocked.load(Relaxed) {
            self.unblock.store(0, Relaxed);
        }
        self.st.blocked.store(on, Relaxed);
    }

    /// Whether `timeout` closes the client at `now`: nothing came from it
    /// for more than `secs` seconds, and it is not a replica, a monitor, a
    /// subscriber, waiting in a blocking command or running a command
    /// (Redis exempts the same clients).
    pub fn idle_beyond(&self, now: u64, secs: u64) -> bool {
        let st = &self.st;
        now.saturating_sub(self.last_ms.load(Relaxed)) / 1000 > secs
            && !self.replica.load(Relaxed)
            && !self.monitor.load(Relaxed)
            && !st.blocked.load(Relaxed)
            && st.argv_run.load(Relaxed) == 0
            && self.subscriptions() == 0
    }

    pub fn subscriptions(&self) -> usize {
        self.st.sub.load(Relaxed) + self.st.psub.load(Relaxed) + self.st.ssub.load(Relaxed)
    }

    pub fn client_type(&self) -> ClientType {
        if self.replica.load(Relaxed) {
            ClientType::Replica
        } else if self.master.load(Relaxed) {
            ClientType::Master
        } else if self.subscriptions() > 0 {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }

    /// Seconds since the client connected (CLIENT LIST's `age`).
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.created_ms) / 1000
    }

    /// The name of the user the client is authenticated as (`default`
    /// before it authenticates, as in Redis).
    pub fn user(&self) -> String {
        self.acl_user.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or_else(|| "default".to_string(), |u| u.name.clone())
    }

    /// The ACL user the client runs as (`None`: the default user).
    pub fn acl_user(&self) -> Option<Arc<User>> {
        self.acl_user.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the client's ACL user (the connection calls it on AUTH and
    /// when the user changes).
    pub fn set_acl_user(&self, user: Arc<User>) {
        *self.acl_user.lock().unwrap_or_else(|e| e.into_inner()) = Some(user);
    }

    /// CLIENT LIST's flags, in Redis's order. Never here: `u` (a woken
    /// client goes on in its own task, never queued to run again).
    fn flags(&self) -> String {
        let st = &self.st;
        let mut f = String::with_capacity(4);
        let on = |f: &mut String, b: bool, c: char| {
            if b {
                f.push(c);
            }
        };
        on(&mut f, self.replica.load(Relaxed), 'S');
        on(&mut f, self.monitor.load(Relaxed), 'O');
        on(&mut f, self.master.load(Relaxed), 'M');
        on(&mut f, self.subscriptions() > 0, 'P');
        on(&mut f, st.multi.load(Relaxed) > 0, 'x');
        on(&mut f, st.blocked.load(Relaxed), 'b');
        let tracking = self.tracking.load(Relaxed);
        on(&mut f, tracking & super::tracking::flag::ON != 0, 't');
        on(&mut f, tracking & super::tracking::flag::BROKEN != 0, 'R');
        on(&mut f, tracking & super::tracking::flag::BCAST != 0, 'B');
        let dirty =
            st.dirty_id.load(Relaxed) != 0 && st.dirty.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|d| d.load(Relaxed));
        on(&mut f, dirty, 'd');
        on(&mut f, st.closing.load(Relaxed), 'c');
        on(&mut f, self.killed.load(Relaxed), 'A');
        on(&mut f, self.unix, 'U');
        on(&mut f, st.readonly.load(Relaxed), 'r');
        on(&mut f, self.no_evict.load(Relaxed), 'e');
        on(&mut f, self.no_touch.load(Relaxed), 'T');
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// One line of CLIENT LIST / CLIENT INFO output: Redis 7.4's fields in
    /// its order (7.2's, plus `watch` after `multi`).
    ///
    /// Memory: `argv-mem` is the argument bytes of the commands being run
    /// (a pipeline's commands are parsed, and so held, together) plus the
    /// complete big arguments of a command still arriving; `multi-mem` the
    /// queued commands' argument bytes plus one `Bytes` handle per
    /// argument (Redis adds one pointer per argument). There is a single
    /// output buffer: `rbs` is its capacity, `rbp` the most it held in the
    /// last 5-second window, `obl` the bytes waiting to be sent (all of
    /// them until a write of them completes), `oll` 0 (no reply list) and
    /// `omem` the bytes waiting: `obl` plus the pushed messages queued and
    /// not yet in the buffer, what the output buffer limits judge. `tot-mem` adds
    /// this record and the session's, the input buffers (`qbuf` +
    /// `qbuf-free`), the output buffer (`rbs`), `argv-mem`, `multi-mem`,
    /// the watched keys' entries, one handle per subscription (the names
    /// are counted once, by the registry) and the pushed messages (pub/sub,
    /// invalidations) queued for the connection but not yet in its buffer.
    /// `qbuf`: the input held, and while they run (unless blocked) the
    /// commands being run, as Redis's query buffer still holds them.
    fn qbuf(&self) -> usize {
        let st = &self.st;
        let running = if st.blocked.load(Relaxed) { 0 } else { st.qbuf_run.load(Relaxed) };
        st.qbuf.load(Relaxed) + running
    }

    /// The memory the client takes (`tot-mem`; see `describe`).
    pub fn memory(&self) -> usize {
        let st = &self.st;
        std::mem::size_of::<ClientInfo>()
            + st.fixed.load(Relaxed)
            + self.qbuf()
            + st.qbuf_free.load(Relaxed)
            + st.rbs.load(Relaxed)
            + st.argv_run.load(Relaxed)
            + st.argv_held.load(Relaxed)
            + st.multi_mem.load(Relaxed)
            + st.watch_mem.load(Relaxed)
            + self.subscriptions() * std::mem::size_of::<Bytes>()
            + self.out_pending.load(Relaxed)
    }

    /// The input buffers' size (`qbuf` + `qbuf-free`) and the output
    /// waiting (`obl`): what INFO's `client_recent_max_*_buffer` weigh.
    pub fn buffers(&self) -> (usize, usize) {
        let st = &self.st;
        (st.qbuf.load(Relaxed) + st.qbuf_free.load(Relaxed), st.obl.load(Relaxed))
    }

    pub fn describe(&self) -> String {
        let st = &self.st;
        let now = now_ms();
        let multi = st.multi.load(Relaxed) as i64 - 1;
        let (qbuf, qbuf_free) = (self.qbuf(), st.qbuf_free.load(Relaxed));
        let argv = st.argv_run.load(Relaxed) + st.argv_held.load(Relaxed);
        let multi_mem = st.multi_mem.load(Relaxed);
        let rbs = st.rbs.load(Relaxed);
        let obl = st.obl.load(Relaxed);
        let rbp = if now.saturating_sub(st.rbp_since.load(Relaxed)) >= PEAK_WINDOW_MS { obl } else { st.rbp.load(Relaxed).max(obl) };
        let tot = self.memory();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll=0 omem={} tot-mem={} events={} cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name(),
            self.age(now),
            now.saturating_sub(self.last_ms.load(Relaxed)) / 1000,
            self.flags(),
            self.db.load(Relaxed),
            st.sub.load(Relaxed),
            st.psub.load(Relaxed),
            st.ssub.load(Relaxed),
            multi,
            qbuf,
            qbuf_free,
            argv,
            multi_mem,
            rbs,
            rbp,
            obl,
            obl + self.out_pending.load(Relaxed),
            tot,
            if st.writing.load(Relaxed) { "rw" } else { "r" },
            self.last_cmd(),
            self.user(),
            self.resp.load(Relaxed),
            self.lib_name.lock().unwrap_or_else(|e| e.into_inner()),
            self.lib_ver.lock().unwrap_or_else(|e| e.into_inner()),
        )
    }
}

pub const UNBLOCK_TIMEOUT: u8 = 1;
pub const UNBLOCK_ERROR: u8 = 2;

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// CLIENT PAUSE: until when (Unix ms; 0: no pause), and whether every
    /// command waits (ALL) or only those that may write (WRITE).
    pause_until: AtomicU64,
    pause_all: AtomicBool,
    /// Announces UNPAUSE and a pause that became less strict.
    pause_changed: Notify,
}

/// What CLIENT PAUSE holds back now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Paused {
    /// Commands that may write (and scripts, PUBLISH, PFCOUNT), until the
    /// time given (Unix ms).
    Writes(u64),
    All(u64),
}

impl Clients {
    pub fn register(&self, addr: String, laddr: String, fd: i32, unix: bool) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let now = now_ms();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            fd,
            unix,
            created_ms: now,
            last_ms: AtomicU64::new(now),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            name: Mutex::default(),
            lib_name: Mutex::default(),
            lib_ver: Mutex::default(),
            killed: AtomicBool::new(false),
            kill: AtomicWaker::new(),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            master: AtomicBool::new(false),
            on_kill: std::sync::OnceLock::new(),
            tracking: std::sync::atomic::AtomicU8::new(0),
            monitor: AtomicBool::new(false),
            unblock: std::sync::atomic::AtomicU8::new(0),
            unblock_notify: Notify::new(),
            waited_ns: AtomicU64::new(0),
            out_pending: AtomicUsize::new(0),
            soft_since: AtomicU64::new(0),
            st: State::default(),
            acl_user: Mutex::default(),
        });
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(id, info.clone());
        info
    }

    /// CLIENT PAUSE for `ms` milliseconds from `now`: a pause already on
    /// keeps the stricter mode and the later end, as in Redis.
    pub fn pause(&self, now: u64, ms: u64, all: bool) {
        let until = now.saturating_add(ms).max(1);
        let on = self.paused(now).is_some();
        let (was_all, was_until) = (on && self.pause_all.load(Relaxed), if on { self.pause_until.load(Relaxed) } else { 0 });
        self.pause_all.store(all || was_all, Relaxed);
        self.pause_until.store(until.max(was_until), Relaxed);
        crate::store::db::KEEP_EXPIRED_UNTIL.store(until.max(was_until), Relaxed);
        self.pause_changed.notify_waiters();
    }

    /// CLIENT UNPAUSE: everybody held goes on.
    pub fn unpause(&self) {
        self.pause_until.store(0, Relaxed);
        self.pause_all.store(false, Relaxed);
        crate::store::db::KEEP_EXPIRED_UNTIL.store(0, Relaxed);
        self.pause_changed.notify_waiters();
    }

    /// Whether a pause may be on (one relaxed load: what every command
    /// checks).
    #[inline]
    pub fn pausing(&self) -> bool {
        self.pause_until.load(Relaxed) != 0
    }

    /// The pause in force at `now`, if any.
    pub fn paused(&self, now: u64) -> Option<Paused> {
        let until = self.pause_until.load(Relaxed);
        if until == 0 || now >= until {
            return None;
        }
        Some(if self.pause_all.load(Relaxed) { Paused::All(until) } else { Paused::Writes(until) })
    }

    /// Completes when the pause changes (UNPAUSE, a new PAUSE).
    pub fn pause_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.pause_changed.notified()
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Marks matching clients killed and wakes them; returns how many.
    /// Clients killed before, still closing, are not counted again.
    pub fn kill(&self, pred: impl Fn(&ClientInfo) -> bool) -> usize {
        let mut n = 0;
        for c in self.list() {
            if !c.killed.load(Relaxed) && pred(&c) && c.close_async() {
                n += 1;
            }
        }
        n
    }
}
