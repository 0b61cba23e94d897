//! Serving clients while a script is busy.
//!
//! A script runs synchronously on its shard thread, so while it runs no
//! task of that thread is polled: the connections living there, and new
//! connections handed to it, would hang until it ends — with one shard,
//! that is every connection, and SCRIPT KILL could never arrive. So, as
//! Redis does from inside its script hook, the script's instruction hook
//! serves them once the script is past the time limit (`service`, called
//! every `SERVICE_EVERY` of script time).
//!
//! Each connection registers a `Slot` in its thread's registry. While its
//! task waits for input with nothing unsent, the connection is *parked*: it
//! lends its input buffer and parser to the slot (`Slot::park`), so bytes
//! the hook reads continue exactly where the task stopped, and takes them
//! back (with whatever the hook left: unparsed bytes, commands it held
//! back, replies not yet sent, AUTH state) when it wakes (`Slot::unpark`).
//! The hook reads what is available with non-blocking `recv`, answers
//! complete commands as a busy Redis does (-BUSY, except for the commands
//! declared `allow_busy`: SCRIPT KILL, FUNCTION KILL, FUNCTION STATS,
//! SHUTDOWN NOSAVE and AUTH run, through their declared `busy` answer, and
//! MULTI starts the client's transaction, which the commands refused
//! meanwhile make EXEC abort, as in Redis; the others, such as HELLO, are
//! left to the connection, which runs them once the script ends; -NOAUTH
//! before AUTH), and writes with
//! non-blocking `send`; what does not fit waits in
//! the slot, and the hook reads no more from that client until it is sent.
//!
//! Reading behind tokio's back loses no wakeup: tokio only clears a
//! socket's readiness after a read that would block, so the task at worst
//! wakes once for nothing. Input the hook leaves for the task (a command it
//! cannot run, replies not sent, end of stream) does not come with a socket
//! event, so the hook also wakes the task itself (`Slot::resumed`).
//!
//! New connections for a thread that is running a busy script are taken
//! from its connection channel by the hook, served the same way, and given
//! to the thread's accept loop (`next_conn`), which starts them as ordinary
//! connections when the script ends. A connection the accept loop took
//! just before a script started is registered, parked, before its task
//! first runs (`expect`), so the hook serves it too.
//!
//! TLS connections (`tls-port`) are not served by the hook: their bytes
//! are records only rustls, in the connection's task, can read and write.
//! A TLS client's commands (SCRIPT KILL included) wait until the script
//! ends; a TLS connection arriving meanwhile is handed to the accept loop
//! untouched and makes its handshake then. A script can be killed from a
//! plain connection (`port`), or ends at its own pace.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::commands::{self, flag};
use crate::error::CmdError;
use crate::resp::{Out, Parser};
use crate::shard::Engine;

use super::conn::Stream;
use super::Incoming;

/// How often (in script time) a busy script serves its thread's clients...
pub const SERVICE_EVERY: Duration = Duration::from_millis(20);

/// ... at least: a round costs a system call or two per waiting client, so
/// with very many of them rounds are spaced by this much per client (about
/// a twentieth of the time goes to them).
const SERVICE_PER_CLIENT: Duration = Duration::from_micros(20);

/// Input read from one client in one round, at most.
const READ_PER_ROUND: usize = 64 * 1024;

/// Unparsed input the hook keeps for one client, at most (a large command
/// arriving during a busy script waits in the socket beyond this).
const MAX_HELD_INPUT: usize = 1 << 20;

/// The connection is authenticated.
pub const AUTHED: u8 = 1;
/// It speaks RESP3.
pub const RESP3: u8 = 2;
/// It has subscriptions (RESP2: only a few commands are allowed).
pub const SUBSCRIBED: u8 = 4;
/// It is queueing a transaction (MULTI).
pub const MULTI: u8 = 8;
/// Its ACL user is restricted: the hook answers nothing for it but
/// refusals (the connection runs the allowed commands, after the ACL
/// check, once the script ends).
pub const RESTRICTED: u8 = 16;

/// A connection as its thread's busy hook sees it.
pub struct Slot {
    fd: i32,
    /// The hook may serve it (a plain socket; not TLS).
    hook: bool,
    /// Waiting for input with nothing unsent: the hook may serve it.
    parked: Cell<bool>,
    /// `AUTHED` | `RESP3` | `SUBSCRIBED` | `MULTI`, as of parking (AUTH
    /// served by the hook updates it).
    state: Cell<u8>,
    /// While parked: the connection's unconsumed input and its parser.
    input: RefCell<(BytesMut, Parser)>,
    /// Commands the hook parsed but left to the connection, in order.
    held: RefCell<Vec<Vec<Bytes>>>,
    /// Replies the hook wrote that the socket did not take yet.
    unsent: RefCell<Vec<u8>>,
    /// The hook did something the task must see when it wakes.
    touched: Cell<bool>,
    /// The hook refused a command (a transaction being queued fails).
    rejected: Cell<bool>,
    /// Close after the input already received (end of stream, protocol
    /// error, SHUTDOWN, write error): the hook leaves it alone.
    close: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// What the hook did while the connection was parked.
pub struct Resumed {
    pub authed: bool,
    /// The connection is queueing a transaction: the hook answered MULTI,
    /// or (false while the connection has one) it refused EXEC, which
    /// ends it.
    pub multi: bool,
    /// A command was refused with -BUSY or an error.
    pub rejected: bool,
    /// The connection must close once what it has received is handled.
    pub close: bool,
}

impl Slot {
    fn new(fd: i32, state: u8, max_bulk: usize, parked: bool, hook: bool) -> Slot {
        Slot {
            fd,
            hook,
            parked: Cell::new(parked),
            state: Cell::new(state),
            input: RefCell::new((BytesMut::new(), Parser::new(max_bulk))),
            held: RefCell::new(Vec::new()),
            unsent: RefCell::new(Vec::new()),
            touched: Cell::new(false),
            rejected: Cell::new(false),
            close: Cell::new(false),
            waker: RefCell::new(None),
        }
    }

    /// Parked with replies not written yet (the task writes them one
    /// event-loop turn later, `conn::serve`): they wait in the slot, where
    /// a busy script's hook sends them before it serves anything else.
    pub fn lend_output(&self, out: &mut Vec<u8>) {
        move_all(out, &mut self.unsent.borrow_mut());
    }

    /// The task is about to wait for input, with every reply written:
    /// lends the input buffer and parser to the slot. A slot the hook
    /// created for a new connection is parked already and keeps its own.
    #[inline]
    pub fn park(&self, inbuf: &mut BytesMut, parser: &mut Parser, state: u8) {
        if self.parked.replace(true) {
            return;
        }
        self.state.set(state);
        let mut input = self.input.borrow_mut();
        std::mem::swap(inbuf, &mut input.0);
        std::mem::swap(parser, &mut input.1);
    }

    /// Reads from the socket into the lent buffer (the buffer is borrowed
    /// only while polled, never across a wait, so the hook can use it).
    pub fn read<'a>(&'a self, sock: &'a mut Stream) -> impl Future<Output = std::io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| {
            let mut input = self.input.borrow_mut();
            let (buf, parser) = &mut *input;
            sock.poll_read_some(cx, buf, parser)
        })
    }

    /// Ready when the hook has left something for the task (the socket
    /// may stay quiet).
    pub fn resumed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.touched.get() {
                return Poll::Ready(());
            }
            let mut w = self.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// The task has woken: takes back the input buffer and parser, with
    /// whatever the hook left. Commands the hook held back go to `cmds`
    /// (they come before anything parsed next), unsent replies to `out`
    /// (before the next replies). `None` when the hook did nothing.
    #[inline]
    pub fn unpark(&self, inbuf: &mut BytesMut, parser: &mut Parser, cmds: &mut Vec<Vec<Bytes>>, out: &mut Vec<u8>) -> Option<Resumed> {
        if !self.parked.replace(false) {
            return None;
        }
        {
            let mut input = self.input.borrow_mut();
            std::mem::swap(inbuf, &mut input.0);
            std::mem::swap(parser, &mut input.1);
        }
        // Replies lent at parking (`lend_output`) that the hook did not
        // send come back whether or not it did anything else.
        move_all(&mut self.unsent.borrow_mut(), out);
        if !self.touched.replace(false) {
            return None;
        }
        move_all(&mut self.held.borrow_mut(), cmds);
        let state = self.state.get();
        Some(Resumed {
            authed: state & AUTHED != 0,
            multi: state & MULTI != 0,
            rejected: self.rejected.replace(false),
            close: self.close.get(),
        })
    }

    /// Whether the hook left something for the task.
    pub fn touched(&self) -> bool {
        self.touched.get()
    }

    fn touch(&self) {
        if !self.touched.replace(true) {
            if let Some(w) = self.waker.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// Moves everything in `from` to the end of `to`: by swapping the vectors
/// when `to` is empty, so the bytes are not copied and the larger
/// allocation goes along (the slot does not keep a long reply's room for
/// as long as the connection lives).
fn move_all<T>(from: &mut Vec<T>, to: &mut Vec<T>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.append(from);
    }
}

/// A connection's registration with its thread; unregisters on drop.
pub struct Registration(Rc<Slot>);

impl std::ops::Deref for Registration {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let fd = self.0.fd;
        with_thread(|t| {
            let mut slots = t.slots.borrow_mut();
            if slots.get(&fd).is_some_and(|s| Rc::ptr_eq(s, &self.0)) {
                slots.remove(&fd);
            }
        });
    }
}

/// Registers a connection with its thread (taking over the slot the hook
/// made if it arrived during a busy script); `hook`: the hook may serve it.
pub fn register(fd: i32, state: u8, max_bulk: usize, hook: bool) -> Registration {
    let found = with_thread(|t| {
        let mut slots = t.slots.borrow_mut();
        slots.entry(fd).or_insert_with(|| Rc::new(Slot::new(fd, state, max_bulk, false, hook))).clone()
    });
    Registration(found.unwrap_or_else(|| Rc::new(Slot::new(fd, state, max_bulk, false, hook))))
}

/// Registers a new plain connection's slot, parked, before its task first
/// runs (the task takes it over in `register`). A script that starts on
/// this thread before the task is polled then still finds the connection,
/// and its hook serves it; without this, such a connection waited
/// unserved until the script ended, and could not even SCRIPT KILL it.
pub fn expect(fd: i32) {
    with_thread(|t| {
        t.slots.borrow_mut().entry(fd).or_insert_with(|| t.parked_slot(fd));
    });
}

/// Drops the slot the hook made for a new connection that could not be
/// started after all.
pub fn forget(fd: i32) {
    with_thread(|t| t.slots.borrow_mut().remove(&fd));
}

/// A shard thread's registry.
struct Thread {
    engine: Arc<Engine>,
    slots: RefCell<HashMap<i32, Rc<Slot>>>,
    /// New connections for this thread (from the listener).
    conns: RefCell<UnboundedReceiver<Incoming>>,
    /// New connections the hook took while a script was busy.
    adopted: RefCell<Vec<Incoming>>,
    acceptor: RefCell<Option<Waker>>,
}

impl Thread {
    /// A parked slot, with its own input buffer, for a connection whose
    /// task has not run yet.
    fn parked_slot(&self, fd: i32) -> Rc<Slot> {
        let authed = if self.engine.cfg.has_password.load(Relaxed) { 0 } else { AUTHED };
        let max_bulk = self.engine.cfg.proto_max_bulk_len.load(Relaxed) as usize;
        Rc::new(Slot::new(fd, authed, max_bulk, true, true))
    }
}

thread_local! {
    static THREAD: OnceCell<Thread> = const { OnceCell::new() };
}

fn with_thread<R>(f: impl FnOnce(&Thread) -> R) -> Option<R> {
    THREAD.with(|t| t.get().map(f))
}

/// Sets up the calling shard thread's registry.
pub fn init_thread(engine: Arc<Engine>, conns: UnboundedReceiver<Incoming>) {
    THREAD.with(|t| {
        let _ = t.set(Thread {
            engine,
            slots: RefCell::new(HashMap::new()),
            conns: RefCell::new(conns),
            adopted: RefCell::new(Vec::new()),
            acceptor: RefCell::new(None),
        });
    });
}

/// The next new connection for this thread: one the hook took during a
/// busy script, else one from the listener. `None` when the listener is
/// gone.
pub async fn next_conn() -> Option<Incoming> {
    std::future::poll_fn(|cx| {
        with_thread(|t| {
            if let Some(s) = t.adopted.borrow_mut().pop() {
                return Poll::Ready(Some(s));
            }
            *t.acceptor.borrow_mut() = Some(cx.waker().clone());
            t.conns.borrow_mut().poll_recv(cx)
        })
        .unwrap_or(Poll::Ready(None))
    })
    .await
}

/// Called by a busy script's hook: serves this thread's new and parked
/// connections. Returns how long to wait before the next round.
pub fn service() -> Duration {
    let served = with_thread(|t| {
        // New connections, from now on served here until the script ends.
        while let Some(new) = t.conns.try_borrow_mut().ok().and_then(|mut c| c.try_recv().ok()) {
            if !new.tls {
                let fd = new.sock.as_raw_fd();
                t.slots.borrow_mut().insert(fd, t.parked_slot(fd));
            }
            t.adopted.borrow_mut().push(new);
            if let Some(w) = t.acceptor.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
        let parked: Vec<Rc<Slot>> = t.slots.borrow().values().filter(|s| s.hook && s.parked.get() && !s.close.get()).cloned().collect();
        let n = parked.len();
        for s in parked {
            serve(&s, &t.engine);
        }
        n
    });
    SERVICE_EVERY.max(SERVICE_PER_CLIENT * served.unwrap_or(0) as u32)
}

/// One round for one parked client: send what is pending, read what is
/// available, answer the complete commands.
fn serve(s: &Slot, engine: &Engine) {
    if !s.held.borrow().is_empty() || !flush(s) {
        return;
    }
    let Ok(mut input) = s.input.try_borrow_mut() else { return };
    let (buf, parser) = &mut *input;
    if parser.big_target().is_some() {
        // In the middle of a big argument: its bytes go to the argument's
        // own buffer, which the connection fills when it runs again.
        return;
    }
    let mut got = 0;
    let mut chunk = [0u8; 16 * 1024];
    while got < READ_PER_ROUND && buf.len() < MAX_HELD_INPUT {
        // SAFETY: `recv` writes at most `chunk.len()` bytes into the local
        // buffer; `s.fd` is the open socket of a live connection (its slot
        // leaves the registry before the socket is closed).
        let n = unsafe { libc::recv(s.fd, chunk.as_mut_ptr().cast(), chunk.len(), libc::MSG_DONTWAIT) };
        match n {
            n if n > 0 => {
                let n = n as usize;
                buf.extend_from_slice(&chunk[..n]);
                got += n;
            }
            0 => {
                s.close.set(true);
                break;
            }
            _ => {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock => break,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => {
                        s.close.set(true);
                        break;
                    }
                }
            }
        }
    }
    if got > 0 || s.close.get() {
        s.touch();
    }
    let mut state = s.state.get();
    let mut out = Out::new(state & RESP3 != 0);
    let mut broken = false;

    loop {
        parser.unauthenticated = state & AUTHED == 0;
        match parser.next(buf) {
            Ok(Some(args)) if args.is_empty() => {}
            Ok(Some(args)) => match answer(engine, &mut state, &args, &mut out) {
                Answer::Done => {}
                // Refusals before a transaction (or in one EXEC ended) do
                // not fail the next.
                Answer::Multi => s.rejected.set(false),
                Answer::Rejected => s.rejected.set(true),
                Answer::Hold => {
                    s.held.borrow_mut().push(args);
                    s.touch();
                    break;
                }
                Answer::Shutdown => {
                    buf.clear();
                    s.close.set(true);
                    break;
                }
            },
            Ok(None) => break,
            Err(e) => {
                out.error_text(&e.to_string());
                *parser = Parser::new(parser.max_bulk);
                buf.clear();
                s.close.set(true);
                broken = true;
                break;
            }
        }
    }
    drop(input);
    s.state.set(state);
    if !out.buf.is_empty() {
        s.unsent.borrow_mut().extend_from_slice(&out.buf);
        s.touch();
        // After a protocol error, the client is disconnected once told,
        // as the connection does (not when the script ends).
        if flush(s) && broken {
            // SAFETY: shuts down the open socket of a live connection (its
            // task closes the descriptor later).
            unsafe { libc::shutdown(s.fd, libc::SHUT_RDWR) };
        }
    }
}

/// What the hook did with a command.
enum Answer {
    Done,
    /// MULTI started a transaction, or a refused EXEC ended one.
    Multi,
    Rejected,
    /// Left to the connection (a transaction is being queued, or the
    /// command needs the connection).
    Hold,
    Shutdown,
}

/// Answers one command as a busy node does; the checks come in the order
/// the connection makes them.
fn answer(engine: &Engine, state: &mut u8, args: &[Bytes], out: &mut Out) -> Answer {
    let authed = *state & AUTHED != 0;
    let refuse = |out: &mut Out, e: CmdError| {
        out.error(&e);
        Answer::Rejected
    };
    let spec = match commands::lookup_args(args) {
        Ok(spec) => spec,
        Err(_) if !authed => return refuse(out, CmdError::NoAuth),
        Err(None) => return refuse(out, CmdError::unknown_command(&args[0], &args[1..])),
        Err(Some(container)) => return refuse(out, CmdError::unknown_subcommand(container.name, &args[1])),
    };
    if !authed && !spec.has_flag(flag::NO_AUTH) {
        return refuse(out, CmdError::NoAuth);
    }
    if !spec.arity_ok(args.len()) {
        return refuse(out, CmdError::wrong_arity(spec.name));
    }
    if *state & SUBSCRIBED != 0 && *state & RESP3 == 0 && !spec.has_flag(flag::SUBSCRIBED) {
        return refuse(
            out,
            CmdError::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )),
        );
    }
    if !spec.has_flag(flag::ALLOW_BUSY) {
        let e = commands::scripting::busy_error(engine.scripting.busy_is_function());
        if *state & MULTI != 0 && spec.name == "exec" {
            // As Redis: the refused EXEC ends the transaction.
            *state &= !MULTI;
            out.error_text(&format!("EXECABORT Transaction discarded because of: {e}"));
            return Answer::Multi;
        }
        return refuse(out, e);
    }
    if *state & MULTI != 0 && !spec.has_flag(flag::NO_QUEUE) {
        return Answer::Hold;
    }
    // Commands the hook cannot answer without the connection (MULTI,
    // HELLO, ...) run there once the script ends.
    let Some(busy) = spec.busy else { return Answer::Hold };
    if *state & RESTRICTED != 0 {
        return Answer::Hold;
    }
    let result = match busy(engine, args, authed, out) {
        Ok(commands::BusyAnswer::Replied) => Ok(()),
        Ok(commands::BusyAnswer::Authenticated) => {
            *state |= AUTHED;
            Ok(())
        }
        Ok(commands::BusyAnswer::Defer) => return Answer::Hold,
        // As Redis, MULTI runs during a busy script, and the commands the
        // script refuses meanwhile make EXEC abort.
        Ok(commands::BusyAnswer::Multi) if *state & MULTI == 0 => {
            *state |= MULTI;
            out.ok();
            return Answer::Multi;
        }
        Ok(commands::BusyAnswer::Multi) => return Answer::Hold,
        Ok(commands::BusyAnswer::Shutdown) => {
            tracing::warn!("SHUTDOWN NOSAVE while a script is busy");
            return Answer::Shutdown;
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Answer::Done,
        Err(e) => refuse(out, e),
    }
}

/// Sends what is pending without blocking; true when all of it went.
fn flush(s: &Slot) -> bool {
    let mut unsent = s.unsent.borrow_mut();
    let mut sent = 0;
    while sent < unsent.len() {
        let rest = &unsent[sent..];
        // SAFETY: `send` reads at most `rest.len()` bytes from the slice;
        // `s.fd` is the open socket of a live connection.
        let n = unsafe { libc::send(s.fd, rest.as_ptr().cast(), rest.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n > 0 {
            sent += n as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => break,
            _ => {
                s.close.set(true);
                unsent.clear();
                s.touch();
                return false;
            }
        }
    }
    unsent.drain(..sent);
    unsent.is_empty()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use clap::Parser as _;

    use super::*;
    use crate::config::{Args, Config};

    const BUSY: &[u8] = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

    #[test]
    fn replies_that_do_not_fit_wait_and_keep_their_order() {
        let cfg = Config::from_args(&Args::parse_from(["damselfly"])).expect("config");
        let engine = Engine::new(Arc::new(cfg), None, crate::shard::scripts::Scripting::new(crate::commands::is_command));
        let busy = engine.scripting.mark_busy(None, Vec::new(), Instant::now(), false, 0);
        let (ours, mut peer) = UnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("nonblocking");
        peer.set_nonblocking(true).expect("nonblocking");
        let slot = Slot::new(ours.as_raw_fd(), AUTHED, 1 << 20, true, true);
        // 3000 commands, then a partial one: 276 KB of replies, more than
        // the socket takes while the peer does not read.
        let n = 3000;
        peer.write_all(&b"PING\r\n".repeat(n)).expect("write");
        peer.write_all(b"*1\r\n$4\r\nPI").expect("write");
        serve(&slot, &engine);
        assert!(!slot.unsent.borrow().is_empty(), "the replies should not all fit");
        assert!(slot.touched.get());
        // The rest of the partial command arrives; replies drain as the
        // peer reads.
        peer.write_all(b"NG\r\n").expect("write");
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        for _ in 0..10_000 {
            if got.len() == (n + 1) * BUSY.len() {
                break;
            }
            match peer.read(&mut chunk) {
                Ok(k) => got.extend_from_slice(&chunk[..k]),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
            }
            serve(&slot, &engine);
        }
        assert_eq!(got.len(), (n + 1) * BUSY.len());
        assert!(got.chunks(BUSY.len()).all(|r| r == BUSY));
        assert!(slot.unsent.borrow().is_empty());
        assert!(slot.input.borrow().0.is_empty());
        // The connection takes back nothing but the state.
        let (mut inbuf, mut parser, mut cmds, mut out) = (BytesMut::new(), Parser::new(0), Vec::new(), Vec::new());
        let r = slot.unpark(&mut inbuf, &mut parser, &mut cmds, &mut out).expect("touched");
        assert!(r.authed && r.rejected && !r.close);
        assert!(inbuf.is_empty() && cmds.is_empty() && out.is_empty());
        engine.scripting.unmark_busy(busy.id);
    }
}
