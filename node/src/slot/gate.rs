//! The gate: which slots a command may touch on this node right now. A
//! slot is admitted when the node serves it (as of the last installed
//! configuration) and no migration's cut-over holds it.
//!
//! The rule that makes cut-over safe: a command may touch a key of slot `s`
//! only if it saw `s` admitted while it had exclusive access to the key's
//! shard (inside a shard job, or holding the shard's transaction lock). The
//! routing check on the connection is not enough on its own: a command may
//! be checked, wait in a pipeline or a shard queue, and run after its slot
//! moved. A migration closes its slots here first and then collects its last
//! batch in a job on each shard, so every write it does not collect is one
//! that saw the slot closed and waited instead; after the commit the slots
//! are no longer served, so late commands are redirected.
//!
//! Checking costs the key's slot and two atomic loads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::slot::SLOTS;

pub struct Gate {
    /// Some slot is closed.
    any: AtomicBool,
    bits: Box<[AtomicU64]>,
    /// Slots this node serves (reads and writes, or reads only on a
    /// replica).
    served: Box<[AtomicU64]>,
    /// Slots this node serves as their primary: writes are admitted only
    /// there (a replica serves its primary's slots to READONLY reads).
    owned: Box<[AtomicU64]>,
    /// Woken when slots reopen.
    opened: Notify,
}

fn bitmap() -> Box<[AtomicU64]> {
    (0..SLOTS / 64).map(|_| AtomicU64::new(0)).collect()
}

impl Default for Gate {
    fn default() -> Gate {
        Gate { any: AtomicBool::new(false), bits: bitmap(), served: bitmap(), owned: bitmap(), opened: Notify::new() }
    }
}

impl Gate {
    /// Whether a command may touch keys of `slot` now.
    #[inline]
    pub fn admits(&self, slot: u16) -> bool {
        self.served[slot as usize / 64].load(Ordering::Acquire) & (1 << (slot % 64)) != 0 && !self.is_closed(slot)
    }

    /// Whether a write may touch keys of `slot` now: as `admits`, and
    /// this node is the slot's primary. A write that passed its routing
    /// check before this node became a replica (a failover) is held back
    /// here and routed again, to `-MOVED`.
    #[inline]
    pub fn admits_write(&self, slot: u16) -> bool {
        self.owned[slot as usize / 64].load(Ordering::Acquire) & (1 << (slot % 64)) != 0 && !self.is_closed(slot)
    }

    /// `admits` or `admits_write`, as `write` says.
    #[inline]
    pub fn admits_for(&self, slot: u16, write: bool) -> bool {
        if write {
            self.admits_write(slot)
        } else {
            self.admits(slot)
        }
    }

    /// Records the slots this node serves and those it owns as primary (a
    /// new configuration).
    pub fn set_served(&self, served: impl Fn(u16) -> bool, owned: impl Fn(u16) -> bool) {
        for (map, f) in [(&self.served, &served as &dyn Fn(u16) -> bool), (&self.owned, &owned)] {
            for (w, word) in map.iter().enumerate() {
                let mut bits = 0u64;
                for b in 0..64 {
                    if f((w * 64 + b) as u16) {
                        bits |= 1 << b;
                    }
                }
                word.store(bits, Ordering::SeqCst);
            }
        }
    }

    /// Whether writes to `slot` must wait.
    #[inline]
    pub fn is_closed(&self, slot: u16) -> bool {
        self.any.load(Ordering::Acquire) && self.bits[slot as usize / 64].load(Ordering::Acquire) & (1 << (slot % 64)) != 0
    }

    /// Whether any slot is closed.
    #[inline]
    pub fn any_closed(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Closes `slots`.
    pub fn close(&self, slots: &[u16]) {
        for &s in slots {
            self.bits[s as usize / 64].fetch_or(1 << (s % 64), Ordering::SeqCst);
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Reopens every slot and wakes the commands waiting.
    pub fn open_all(&self) {
        self.any.store(false, Ordering::SeqCst);
        for w in self.bits.iter() {
            w.store(0, Ordering::SeqCst);
        }
        self.opened.notify_waiters();
    }

    /// Completes when slots next reopen (`enable` it before checking what
    /// it waits for, so a reopening in between is not missed).
    pub fn opened(&self) -> tokio::sync::futures::Notified<'_> {
        self.opened.notified()
    }

    /// Waits until `slot` (every slot, for `None`) is open. Bounded by
    /// `limit` so a caller can re-check the configuration; returns whether
    /// it is open.
    pub async fn wait_open(&self, slot: Option<u16>, limit: Duration) -> bool {
        let closed = |g: &Gate| match slot {
            Some(s) => g.is_closed(s),
            None => g.any_closed(),
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.opened.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !closed(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !closed(self);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn close_wait_open() {
        let g = std::sync::Arc::new(Gate::default());
        assert!(!g.any_closed());
        g.set_served(|s| s < 1000, |s| s < 500);
        assert!(g.admits(5) && !g.admits(1000));
        // Served for reads only (a replica's primary's slots): no writes.
        assert!(g.admits(700) && !g.admits_write(700) && g.admits_write(6) && g.admits_for(700, false));
        g.close(&[5, 700]);
        assert!(g.is_closed(5) && g.is_closed(700) && !g.is_closed(6));
        assert!(!g.admits(5) && g.admits(6));
        assert!(g.wait_open(Some(6), Duration::from_secs(1)).await);
        assert!(!g.wait_open(Some(5), Duration::from_secs(1)).await);
        let g2 = g.clone();
        let waiter = tokio::spawn(async move { g2.wait_open(None, Duration::from_secs(60)).await });
        tokio::task::yield_now().await;
        g.open_all();
        assert!(waiter.await.unwrap());
        assert!(!g.is_closed(5));
    }
}
