//! Running work on this thread's shard fairly (`LocalShard`: one FIFO
//! queue for local tasks and other threads' jobs behind a transaction's
//! lock), and on other shards (`run_on`, `broadcast`, `answer`).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::inbox::{Inbound, Inbox};
use super::{evict, tracking, Engine, Msg, Shard, TxId, NO_TX};
/// A caller waiting for its turn on a locked shard.
enum Waiting {
    /// A job from another thread.
    Remote(Msg),
    /// A task on this thread; signalled when its turn comes.
    Local(oneshot::Sender<()>),
}

/// This thread's shard plus the machinery to run work on it fairly.
///
/// Work that cannot run at once (the shard is locked by another
/// transaction, or others are already waiting) joins one FIFO queue, whether
/// it comes from another thread or from a task on this one, so no caller can
/// be starved. Only the lock owner's own work bypasses the queue.
pub struct LocalShard {
    pub cell: RefCell<Shard>,
    queue: RefCell<VecDeque<Waiting>>,
    /// A local task has been given the next turn and has not taken it yet.
    granted: Cell<bool>,
    /// Jobs from other threads and replies to this thread's jobs
    /// (`make_current`), read by `serve_inbox`.
    inbox: OnceCell<Arc<Inbox>>,
}

thread_local! {
    /// This thread's shard, once the server made it current: jobs read its
    /// backlog through it (`backlog`).
    static CURRENT: RefCell<Weak<LocalShard>> = const { RefCell::new(Weak::new()) };
}

/// Work waiting for this thread's shard: queued behind a transaction's
/// lock, plus jobs sent from other threads and not received yet. Zero on
/// a thread without a current shard.
pub fn backlog() -> usize {
    CURRENT.with(|c| c.borrow().upgrade().map_or(0, |s| s.queue.borrow().len() + s.inbox.get().map_or(0, |i| i.len())))
}

/// Something of this thread is about to be written to a client (or the
/// thread is about to sleep): its shard sends the invalidations it
/// gathered for broadcasting tracking clients first, as Redis sends them
/// before it writes the replies of an event-loop turn. Cheap when there
/// are none (one thread-local flag). While a transaction holds the shard
/// its writes are not acknowledged yet: their broadcasts go when it lets
/// the shard go (`unlock_tx`), one message per client and prefix for the
/// whole transaction, as Redis sends an EXEC's.
pub fn flush_broadcasts() {
    if !tracking::UNSENT.with(std::cell::Cell::get) {
        return;
    }
    CURRENT.with(|c| {
        if let Some(s) = c.borrow().upgrade() {
            if let Ok(mut sh) = s.cell.try_borrow_mut() {
                if !sh.is_locked() {
                    sh.send_broadcasts();
                }
            }
        }
    });
}

impl LocalShard {
    pub fn new(shard: Shard) -> Rc<LocalShard> {
        Rc::new(LocalShard {
            cell: RefCell::new(shard),
            queue: RefCell::new(VecDeque::new()),
            granted: Cell::new(false),
            inbox: OnceCell::new(),
        })
    }

    /// Makes this the thread's shard and hands it its inbox (jobs from
    /// other threads, served by `serve_inbox`).
    pub fn make_current(self: &Rc<Self>, inbox: Arc<Inbox>) {
        let _ = self.inbox.set(inbox);
        CURRENT.with(|c| *c.borrow_mut() = Rc::downgrade(self));
    }

    /// The thread's inbox task: runs (or queues) the jobs other threads
    /// send and hands replies to the tasks waiting for them, a batch at a
    /// time; between batches the thread's other tasks get their turn.
    pub async fn serve_inbox(&self) {
        let Some(inbox) = self.inbox.get().cloned() else { return };
        let mut batch = Vec::new();
        loop {
            inbox.take(&mut batch);
            if batch.is_empty() {
                inbox.wait().await;
                continue;
            }
            for m in batch.drain(..) {
                match m {
                    Inbound::Job(msg) => self.deliver(msg),
                    Inbound::Reply(f) => {
                        inbox.replied();
                        f()
                    }
                }
            }
            if batch.capacity() > 1024 {
                // A burst's room is not kept (it would pass to the queue).
                batch = Vec::new();
            }
            yield_local().await;
        }
    }

    pub fn id(&self) -> usize {
        self.cell.borrow().id
    }

    /// Whether work of `tx` may run right now.
    fn can_run(&self, tx: TxId) -> bool {
        let lock = self.cell.borrow().lock;
        if lock != NO_TX {
            return lock == tx;
        }
        !self.granted.get() && self.queue.borrow().is_empty()
    }

    /// Runs `f` on the shard, now or when its turn in the queue comes.
    pub async fn run<R>(&self, tx: TxId, f: impl FnOnce(&mut Shard) -> R) -> R {
        if !self.can_run(tx) {
            self.cell.borrow_mut().stats.lock_waits += 1;
            let (turn_tx, turn_rx) = oneshot::channel();
            self.queue.borrow_mut().push_back(Waiting::Local(turn_tx));
            if turn_rx.await.is_err() {
                // The shard is being torn down (node shutdown).
                return std::future::pending().await;
            }
            self.granted.set(false);
        }
        let r = self.apply(tx, f);
        self.drain();
        r
    }

    fn apply<R>(&self, tx: TxId, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut sh = self.cell.borrow_mut();
        sh.upkeep = false;
        // Over maxmemory: make room first, unless a transaction holds the
        // shard (its keys must not vanish between its parts; eviction runs
        // before the transaction's first part and after it ends).
        if !sh.is_locked() && evict::over_limit(&sh.cfg) {
            sh.evict_before_job();
        }
        sh.limit_tracked();
        let r = f(&mut sh);
        sh.recheck_failing();
        sh.release_captured();
        sh.publish_notes();
        // Broadcasts wait for this thread's next write to a client
        // (`flush_broadcasts`), so a turn's jobs share them; a
        // transaction's go when it releases the shard.
        sh.bound_broadcasts();
        sh.journal_after_job(tx);
        if !sh.blocked.is_empty() {
            if !sh.is_locked() {
                // Served clients may be answered from other threads.
                sh.send_broadcasts();
            }
            sh.serve_blocked();
            // What the served clients took goes to the journal before they
            // are answered (their wait for durability covers it).
            sh.journal_after_job(tx);
        }
        drop(sh);
        // Messages that came meanwhile: the inbox task runs next (the
        // senders did not wake this thread, which was running).
        if let Some(i) = self.inbox.get() {
            i.poke();
        }
        r
    }

    /// Handles a job from the inbox: runs it now, or queues it.
    pub fn deliver(&self, msg: Msg) {
        if self.can_run(msg.tx) {
            self.apply_remote(msg);
            self.drain();
        } else {
            self.cell.borrow_mut().stats.lock_waits += 1;
            self.queue.borrow_mut().push_back(Waiting::Remote(msg));
        }
    }

    /// Runs a job another thread sent, counting the hop.
    fn apply_remote(&self, msg: Msg) {
        let job = msg.job;
        self.apply(msg.tx, |sh| {
            sh.stats.hops += 1;
            job(sh)
        })
    }

    /// Runs queued work in arrival order while the shard is free: remote jobs
    /// run here, a local task is handed the turn and draining pauses until it
    /// has run.
    fn drain(&self) {
        loop {
            if self.granted.get() || self.cell.borrow().lock != NO_TX {
                return;
            }
            let Some(next) = self.queue.borrow_mut().pop_front() else { return };
            match next {
                Waiting::Remote(msg) => self.apply_remote(msg),
                Waiting::Local(turn) => {
                    if turn.send(()).is_ok() {
                        self.granted.set(true);
                    }
                }
            }
        }
    }

    /// Releases a lock held by `tx` on this shard, synchronously.
    pub fn release(&self, tx: TxId) {
        self.release_tx(tx, 1);
    }

    /// Releases a lock held by `tx`, a transaction of `total` shards.
    pub fn release_tx(&self, tx: TxId, total: usize) {
        {
            let mut sh = self.cell.borrow_mut();
            sh.unlock_tx(tx, total);
            if !sh.blocked.is_empty() {
                sh.serve_blocked();
                // What the served clients took, before they are answered.
                sh.journal_after_job(NO_TX);
            }
        }
        self.drain();
    }
}

/// Runs `f` on shard `target` and returns its result: inline when `target` is
/// this thread's shard, otherwise as a job through its inbox.
pub async fn run_on<R: Send + 'static>(
    engine: &Engine,
    local: &LocalShard,
    target: usize,
    tx: TxId,
    f: impl FnOnce(&mut Shard) -> R + Send + 'static,
) -> R {
    let home = local.id();
    if target == home {
        return local.run(tx, f).await;
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    engine.send(
        target,
        tx,
        Box::new(move |sh| {
            let r = f(sh);
            answer(sh, home, reply_tx, r);
        }),
    );
    engine.inbox(home).expect_reply();
    match reply_rx.await {
        Ok(r) => r,
        // The shard thread is gone: the node is shutting down.
        Err(_) => std::future::pending().await,
    }
}

/// Hands `r`, the result of a job that shard `home`'s thread sent, to the
/// task waiting on `reply`: through that thread's inbox, so a running
/// thread is not woken for it.
pub fn answer<R: Send + 'static>(sh: &mut Shard, home: usize, reply: oneshot::Sender<R>, r: R) {
    // The answer may be written to a client at once over there: its
    // broadcasts go first, and its journal records, which the client's
    // wait for durability (`appendfsync always`) then covers.
    if !sh.is_locked() {
        sh.send_broadcasts();
        sh.journal_after_job(NO_TX);
    }
    match &sh.engine {
        Some(e) if home < e.nshards() => e.inboxes[home].push(Inbound::Reply(Box::new(move || {
            let _ = reply.send(r);
        }))),
        _ => {
            let _ = reply.send(r);
        }
    }
}

/// Gives this thread's other tasks a turn: the task is woken at once and
/// goes to the back of the queue (no trip through the event loop).
async fn yield_local() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// Runs `f` on every shard (concurrently), as transaction `tx`, and returns
/// the results in shard order.
pub async fn broadcast<R: Send + 'static>(
    engine: &Engine,
    local: &LocalShard,
    tx: TxId,
    f: impl Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
) -> Vec<R> {
    let (me, txid) = (local.id(), tx);
    let mut waits = Vec::with_capacity(engine.nshards());
    for s in 0..engine.nshards() {
        if s == me {
            waits.push(None);
            continue;
        }
        let (reply, rx) = oneshot::channel();
        let f = f.clone();
        engine.send(
            s,
            txid,
            Box::new(move |sh| {
                let r = f(sh);
                answer(sh, me, reply, r);
            }),
        );
        engine.inbox(me).expect_reply();
        waits.push(Some(rx));
    }
    let mine = local.run(txid, f).await;
    let mut out = Vec::with_capacity(waits.len());
    let mut mine = Some(mine);
    for w in waits {
        match w {
            None => out.push(mine.take().expect("local result taken once")),
            Some(rx) => match rx.await {
                Ok(r) => out.push(r),
                Err(_) => std::future::pending().await,
            },
        }
    }
    out
}
