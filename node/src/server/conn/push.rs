//! What a connection writes besides replies: pub/sub messages, client-side
//! caching invalidations (RESP3 pushes, or messages on
//! `__redis__:invalidate` to a RESP2 subscriber) and MONITOR lines —
//! waiting for them, writing them in Redis's forms, and ordering
//! invalidations against the replies of an input.

use bytes::Bytes;

use super::{Conn, MESSAGES_PER_WRITE};
use crate::commands::session::Subscription;
use crate::resp::Out;

/// The next pub/sub message for a connection (never, without a
/// subscription).
pub(super) async fn next_message(sub: &mut Option<Box<Subscription>>) -> Option<crate::shard::pubsub::Message> {
    match sub {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next invalidation for a tracking connection (never, for one that
/// never tracked).
pub(super) async fn next_invalidation(inbox: &mut Option<Box<crate::commands::session::Inbox>>) -> Option<crate::shard::pubsub::Message> {
    match inbox {
        Some(i) => i.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next MONITOR line for a connection (never, when it does not
/// monitor).
pub(super) async fn next_line(monitor: &mut Option<tokio::sync::mpsc::UnboundedReceiver<Bytes>>) -> Option<Bytes> {
    match monitor {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes a pub/sub message as Redis does (`message` / `pmessage` /
/// `smessage`), or, for a shard channel whose slot moved away, drops it
/// from the connection's subscriptions and says so (`sunsubscribe`, as
/// Redis tells the subscribers of a slot it gives away).
pub fn write_message(out: &mut Out, sub: &mut Option<Box<Subscription>>, m: &crate::shard::pubsub::Message) {
    if let Some(inv) = &m.invalidate {
        write_invalidation(out, sub.is_some(), inv);
        return;
    }
    if m.unsubscribed {
        let Some(s) = sub.as_mut() else { return };
        if !s.shard_channels.remove(&m.channel) {
            return;
        }
        out.push(3);
        out.bulk(b"sunsubscribe");
        out.bulk(&m.channel);
        out.int(s.shard_channels.len() as i64);
        if s.total() == 0 {
            *sub = None;
        }
        return;
    }
    match &m.pattern {
        None => {
            out.push(3);
            out.bulk(if m.sharded { b"smessage" } else { b"message" });
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

/// Writes a client-side caching invalidation as Redis does: a RESP3 push
/// (`invalidate` and the keys, or null after a flush), or to a RESP2
/// subscriber a message on `__redis__:invalidate`; a RESP2 connection not
/// subscribed can receive nothing.
pub(super) fn write_invalidation(out: &mut Out, subscribed: bool, inv: &crate::shard::pubsub::Invalidation) {
    use crate::shard::pubsub::Invalidation;
    if let Invalidation::RedirBroken(id) = inv {
        if out.resp3 {
            out.push(2);
            out.bulk(b"tracking-redir-broken");
            out.int(*id as i64);
        }
        return;
    }
    if out.resp3 {
        out.push(2);
        out.bulk(b"invalidate");
    } else if subscribed {
        out.push(3);
        out.bulk(b"message");
        out.bulk(crate::shard::tracking::CHANNEL);
    } else {
        return;
    }
    match inv {
        Invalidation::Keys(keys) => {
            out.array(keys.len());
            for k in keys {
                out.bulk(k);
            }
        }
        Invalidation::Encoded(count, bulks) => {
            out.array(*count);
            out.buf.extend_from_slice(bulks);
        }
        _ => out.nil(),
    }
}

impl Conn {
    /// Moves the MONITOR lines waiting in the inbox to the output buffer
    /// (up to one write's worth); returns their bytes.
    pub(super) fn take_monitor_lines(&mut self) -> usize {
        let mut taken = 0;
        while self.out.buf.len() < MESSAGES_PER_WRITE {
            let Some(l) = self.s.monitor.as_mut().and_then(|m| m.try_recv().ok()) else { break };
            taken += l.len();
            self.out.buf.extend_from_slice(&l);
        }
        taken
    }

    /// Writes what was pushed to the client (pub/sub messages, MONITOR
    /// lines: `taken` bytes of them, counted in `out_pending` until
    /// written); false when the client is gone. A client that does not
    /// read is closed by the sender that finds it over its output limit.
    pub(super) async fn write_pushed(&mut self, taken: usize) -> bool {
        crate::shard::flush_broadcasts();
        let info = self.s.info.clone();
        info.writing(self.out.buf.len(), self.out.buf.capacity());
        let written = tokio::select! {
            biased;
            r = self.sock.write_all(&self.out.buf) => r.is_ok(),
            _ = info.killed_signal() => false,
        };
        // Still counted while being written.
        info.unqueued(taken);
        if !written {
            return false;
        }
        self.count_output();
        self.out.buf.clear();
        self.flushes = self.flushes.wrapping_add(1);
        info.written(self.out.buf.capacity());
        true
    }

    /// Writes `first`, then whatever else is queued in the same inbox
    /// (pub/sub messages, or invalidations when `tracking`) up to a bound
    /// (the rest stays counted in the channel); the bytes they counted.
    pub(super) fn write_queued(&mut self, first: crate::shard::pubsub::Message, tracking: bool) -> usize {
        let mut taken = first.size();
        write_message(&mut self.out, &mut self.s.sub, &first);
        while self.out.buf.len() < MESSAGES_PER_WRITE {
            let next = if tracking {
                self.s.tracking.as_mut().and_then(|i| i.rx.try_recv().ok())
            } else {
                self.s.sub.as_mut().and_then(|s| s.rx.try_recv().ok())
            };
            let Some(m) = next else { break };
            taken += m.size();
            write_message(&mut self.out, &mut self.s.sub, &m);
        }
        taken
    }

    /// After an input's commands ran: the invalidations of keys a shard's
    /// upkeep deleted meanwhile (expiry, eviction ticks on any thread) go
    /// ahead of the input's replies (from `replies_from` in the output
    /// buffer), as Redis has them in the output buffer before the reply of
    /// a command that ran after they happened; the others (a client's own
    /// writes, which Redis 7 invalidates after the reply) follow them.
    pub(super) fn order_invalidations(&mut self, (replies_from, flushes): (usize, u32)) {
        // Replies written out meanwhile went first: ahead of the rest.
        let replies_from = if flushes == self.flushes { replies_from } else { 0 };
        let mut ahead = 0;
        let mut after = Vec::new();
        let mut taken = 0;
        while let Some(m) = self.s.tracking.as_mut().and_then(|i| i.rx.try_recv().ok()) {
            taken += m.size();
            if !m.ahead {
                after.push(m);
                continue;
            }
            let before = self.out.buf.len();
            write_message(&mut self.out, &mut self.s.sub, &m);
            ahead += self.out.buf.len() - before;
        }
        if ahead > 0 && replies_from < self.out.buf.len() - ahead {
            self.out.buf[replies_from..].rotate_right(ahead);
        }
        for m in &after {
            write_message(&mut self.out, &mut self.s.sub, m);
        }
        self.s.info.unqueued(taken);
    }

    /// Moves the invalidations queued for this tracking client into the
    /// output buffer, to leave with the replies.
    pub(super) fn take_invalidations(&mut self) {
        let mut taken = 0;
        while let Some(m) = self.s.tracking.as_mut().and_then(|i| i.rx.try_recv().ok()) {
            taken += m.size();
            write_message(&mut self.out, &mut self.s.sub, &m);
        }
        self.s.info.unqueued(taken);
    }
}
