//! A stream's consumer groups: per group the last delivered ID, the
//! logical count of entries read, the pending entries list (PEL: entry ID
//! to owning consumer, last delivery time and delivery count) and the
//! consumers (seen time and the IDs they own). Groups and consumers are
//! ordered by name, as Redis's radix trees order them.
//!
//! A stream holds this only once it has a group (`Option<Box<Groups>>`).

use std::collections::{BTreeMap, BTreeSet};

use super::stream::StreamId;

/// Redis's SCG_INVALID_ENTRIES_READ: the group's read counter is unknown.
pub const UNKNOWN_READ: i64 = -1;

/// One pending (delivered, not acknowledged) entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Box<[u8]>,
    pub delivered_ms: u64,
    pub deliveries: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// When it last tried to read or claim (Redis's `seen-time`).
    pub seen_ms: u64,
    /// When it last got an entry, by XREADGROUP or a claim (7.2's
    /// `active-time`); `None` while it never did.
    pub active_ms: Option<u64>,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Creates the consumer unless it exists; whether it was created.
    pub fn create_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(name.into(), Consumer { seen_ms: now, active_ms: None, pending: BTreeSet::new() });
        true
    }

    /// The consumer got entries at `now` (XREADGROUP delivered some, or a
    /// claim took some).
    pub fn mark_active(&mut self, name: &[u8], now: u64) {
        if let Some(c) = self.consumers.get_mut(name) {
            c.active_ms = Some(now);
        }
    }

    /// Refreshes the consumer's seen time, creating it when missing;
    /// whether it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: u64) -> bool {
        let created = self.create_consumer(name, now);
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen_ms = now;
        }
        created
    }

    /// Deletes a consumer and its pending entries; how many it had, or
    /// `None` when there is no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pending {
            self.pel.remove(id);
        }
        Some(c.pending.len())
    }

    /// Records `id` as delivered to `consumer` (taking it from another
    /// consumer that had it, with a fresh delivery count, as Redis does).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        self.claim(id, consumer, now, 1);
    }

    /// Gives the pending entry `id` (created when missing, as XCLAIM's
    /// FORCE does) to `consumer`, which must exist, with a new delivery
    /// time and count.
    pub fn claim(&mut self, id: StreamId, consumer: &[u8], delivered_ms: u64, deliveries: u64) {
        if let Some(old) = self.pel.get(&id) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pending.remove(&id);
            }
        }
        self.pel.insert(id, Pending { consumer: consumer.into(), delivered_ms, deliveries });
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Acknowledges `id`; whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    pub fn heap_size(&self) -> usize {
        self.pel.values().map(|p| 64 + p.consumer.len()).sum::<usize>()
            + self.consumers.iter().map(|(n, c)| 64 + n.len() + c.pending.len() * 24).sum::<usize>()
    }
}

/// The groups of one stream, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub by_name: BTreeMap<Box<[u8]>, Group>,
}

impl Groups {
    pub fn heap_size(&self) -> usize {
        self.by_name.iter().map(|(n, g)| 96 + n.len() + g.heap_size()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    #[test]
    fn delivery_moves_ownership_and_ack_clears_both_lists() {
        let mut g = Group::new(StreamId::default(), 0);
        g.touch_consumer(b"a", 1);
        g.touch_consumer(b"b", 1);
        g.deliver(id(1), b"a", 5);
        g.deliver(id(2), b"a", 5);
        g.deliver(id(1), b"b", 6);
        assert_eq!(g.consumers[&b"a"[..]].pending.len(), 1);
        assert_eq!(g.consumers[&b"b"[..]].pending.len(), 1);
        assert_eq!(&*g.pel[&id(1)].consumer, b"b");
        assert!(g.ack(id(1)));
        assert!(!g.ack(id(1)));
        assert!(g.consumers[&b"b"[..]].pending.is_empty());
        assert_eq!(g.delete_consumer(b"a"), Some(1));
        assert!(g.pel.is_empty());
        assert_eq!(g.delete_consumer(b"a"), None);
        assert!(!g.create_consumer(b"b", 9));
    }
}
