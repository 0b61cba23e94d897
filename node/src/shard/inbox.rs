//! A shard thread's inbox: jobs from other threads, and the replies to the
//! jobs this thread's tasks sent. A sender wakes the thread only when it
//! sleeps (an eventfd write and a context switch); a thread that is running
//! looks at its inbox itself, after each piece of shard work and before it
//! goes to sleep, so messages between busy threads cost no system call.
//!
//! A thread waiting for replies to jobs it sent spins briefly (yielding
//! its core) before it parks: the reply usually comes sooner than a sleep
//! and a wake-up would take.
//!
//! The handshake: a sender queues its message and then reads `sleeping`;
//! the thread, about to sleep, sets `sleeping` and then reads the queue's
//! length (both sequentially consistent). One of the two sees the other,
//! so no message is left behind a sleeping thread.

use std::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Msg;

/// What arrives in an inbox.
pub enum Inbound {
    /// Work for the shard (queued behind a transaction's lock if need be).
    Job(Msg),
    /// The reply to a job this thread sent: hands it to the waiting task.
    /// Never waits for the shard (the task may hold its lock).
    Reply(Box<dyn FnOnce() + Send>),
}

/// How long a thread waiting for replies looks at its inbox before it parks.
const SPIN: Duration = Duration::from_micros(20);

#[derive(Default)]
pub struct Inbox {
    queue: Mutex<Vec<Inbound>>,
    /// The queue's length, readable without the lock.
    len: AtomicUsize,
    /// The thread is parked (or about to park) in its runtime.
    sleeping: AtomicBool,
    /// Wakes the thread's inbox task.
    notify: Notify,
    /// Replies this thread's tasks wait for.
    awaiting: AtomicUsize,
}

impl Inbox {
    /// Queues `m`; wakes the thread if it sleeps.
    pub fn push(&self, m: Inbound) {
        {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.push(m);
            self.len.store(q.len(), SeqCst);
        }
        if self.sleeping.load(SeqCst) {
            self.notify.notify_one();
        }
    }

    /// Moves everything queued into `into` (which is empty).
    pub fn take(&self, into: &mut Vec<Inbound>) {
        if self.len.load(Relaxed) == 0 {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *q, into);
        self.len.store(0, Relaxed);
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Called on the inbox's thread while it runs: wakes the inbox task
    /// (on this thread, no system call) when messages wait.
    #[inline]
    pub fn poke(&self) {
        if self.len.load(Relaxed) != 0 {
            self.notify.notify_one();
        }
    }

    /// A task of this thread sent a job and waits for its reply.
    pub fn expect_reply(&self) {
        self.awaiting.fetch_add(1, Relaxed);
    }

    /// A reply reached its task.
    pub fn replied(&self) {
        self.awaiting.fetch_sub(1, Relaxed);
    }

    /// The runtime is about to park the thread: a thread waiting for
    /// replies first looks at its inbox for a while; then senders wake it,
    /// and what is already queued wakes it at once.
    pub fn before_park(&self) {
        if self.awaiting.load(Relaxed) != 0 && self.spin() {
            self.notify.notify_one();
            return;
        }
        self.sleeping.store(true, SeqCst);
        if self.len.load(SeqCst) != 0 {
            self.notify.notify_one();
        }
    }

    /// Whether a message came within `SPIN`.
    fn spin(&self) -> bool {
        let start = Instant::now();
        loop {
            if self.len.load(Relaxed) != 0 {
                return true;
            }
            if start.elapsed() >= SPIN {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// The thread runs again.
    pub fn after_unpark(&self) {
        self.sleeping.store(false, Relaxed);
    }

    /// Waits until the inbox task should look at the queue again.
    pub async fn wait(&self) {
        self.notify.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// Whether `wait` returns without waiting (polled once).
    fn ready(i: &Inbox) -> bool {
        let mut f = std::pin::pin!(i.wait());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.as_mut().poll(&mut cx).is_ready()
    }

    fn job() -> Inbound {
        Inbound::Job(Msg { tx: 0, job: Box::new(|_| {}) })
    }

    #[test]
    fn take_moves_everything_queued() {
        let i = Inbox::default();
        i.push(job());
        i.push(Inbound::Reply(Box::new(|| {})));
        assert_eq!(i.len(), 2);
        let mut v = Vec::new();
        i.take(&mut v);
        assert_eq!(v.len(), 2);
        assert!(i.is_empty());
    }

    #[test]
    fn a_sleeping_thread_is_woken_a_running_one_is_not() {
        let i = Inbox::default();
        // Running: the push wakes nobody.
        i.push(job());
        assert!(!ready(&i));
        // Parking with messages queued wakes the inbox task.
        i.before_park();
        assert!(ready(&i));
        i.after_unpark();
        let mut v = Vec::new();
        i.take(&mut v);
        // Asleep: a push wakes it.
        i.before_park();
        assert!(!ready(&i));
        i.push(job());
        assert!(ready(&i));
        // Running again, a poke wakes the task when something waits.
        i.after_unpark();
        i.poke();
        assert!(ready(&i));
    }

    #[test]
    fn a_thread_waiting_for_a_reply_finds_it_without_sleeping() {
        let i = Inbox::default();
        i.expect_reply();
        i.push(Inbound::Reply(Box::new(|| {})));
        i.before_park();
        assert!(!i.sleeping.load(SeqCst));
        assert!(ready(&i));
        i.replied();
        let mut v = Vec::new();
        i.take(&mut v);
        // Nothing comes: after the spin it sleeps.
        i.expect_reply();
        i.before_park();
        assert!(i.sleeping.load(SeqCst));
    }
}
