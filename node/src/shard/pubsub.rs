//! Pub/sub: the node-wide registry of subscribed connections, by channel, by
//! pattern and by shard channel (SSUBSCRIBE). PUBLISH and SPUBLISH hand
//! each subscriber a message through its connection's channel; the
//! connection writes it (as RESP2 arrays or RESP3 pushes) between commands
//! or while it waits for input. This registry is the node's: in cluster
//! mode `cluster::publish` carries PUBLISH messages to the other nodes,
//! whose registries deliver them; a shard channel's slot is served by one
//! node, which its subscribers and publishers are routed to.
//!
//! A subscriber's messages not yet written to its socket count against the
//! `pubsub` class of `client-output-buffer-limit` (`ClientInfo::out_pending`):
//! a publisher that finds one over it drops its messages and closes it.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::clients::ClientInfo;
use crate::config::OutputLimit;
use crate::util::{glob_match, shrink_map};

/// A delivery to one subscriber.
pub struct Message {
    /// The pattern that matched (`pmessage`), or `None` (`message`).
    pub pattern: Option<Bytes>,
    /// Published to a shard channel (`smessage`).
    pub sharded: bool,
    /// Not a message: the subscriber lost the shard channel `channel`
    /// because its slot moved to another node (`sunsubscribe`).
    pub unsubscribed: bool,
    pub channel: Bytes,
    pub payload: Bytes,
    /// Not a message: a client-side caching invalidation
    /// (`shard::tracking`), written as a RESP3 push or, to a RESP2
    /// subscriber, as a message on `__redis__:invalidate`.
    pub invalidate: Option<Invalidation>,
    /// An invalidation of a key deleted by the shard's own upkeep (an
    /// expiry or eviction tick, an eviction another shard asked for), not
    /// by a command: it goes ahead of the replies of the input the client's
    /// connection is answering (`server::conn`), as Redis has it in the
    /// output buffer before the reply of any command that ran after it.
    pub ahead: bool,
}

/// What a tracking invalidation says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<Bytes>),
    /// These keys changed: how many, and their RESP bulk strings one after
    /// the other (a broadcast's keys, gathered that way).
    Encoded(usize, Bytes),
    /// Every key (a flush): the null invalidation.
    All,
    /// The redirect target (this id) is gone (`tracking-redir-broken`).
    RedirBroken(u64),
}

impl Message {
    pub fn invalidation(inv: Invalidation) -> Message {
        Message {
            pattern: None,
            sharded: false,
            unsubscribed: false,
            channel: Bytes::from_static(super::tracking::CHANNEL),
            payload: Bytes::new(),
            invalidate: Some(inv),
            ahead: false,
        }
    }
}

impl Message {
    /// The bytes it takes until written: its parts and the reply framing.
    pub fn size(&self) -> usize {
        let keys = match &self.invalidate {
            Some(Invalidation::Keys(k)) => k.iter().map(|k| k.len() + 16).sum(),
            Some(Invalidation::Encoded(_, bulks)) => bulks.len(),
            _ => 0,
        };
        self.channel.len() + self.payload.len() + self.pattern.as_ref().map_or(0, |p| p.len()) + 64 + keys
    }
}

/// Where a subscriber's messages go, and its connection's record.
type Subscriber = (UnboundedSender<Message>, Arc<ClientInfo>);

/// Removes `client` from channel (or pattern) `name`: a channel left
/// without subscribers goes, and a map mostly emptied gives back its room.
fn leave(map: &mut HashMap<Bytes, HashMap<u64, Subscriber>>, name: &[u8], client: u64) {
    let Some(subs) = map.get_mut(name) else { return };
    subs.remove(&client);
    if subs.is_empty() {
        map.remove(name);
        shrink_map(map);
    } else {
        shrink_map(subs);
    }
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, Subscriber>>,
    patterns: HashMap<Bytes, HashMap<u64, Subscriber>>,
    shard_channels: HashMap<Bytes, HashMap<u64, Subscriber>>,
}

/// Hands `m` to a subscriber unless that would break its output limit, in
/// which case the subscriber is closed instead; whether it was delivered.
fn deliver(sub: &Subscriber, m: Message, limit: &OutputLimit, now: u64) -> bool {
    let (tx, client) = sub;
    if client.killed.load(Relaxed) {
        return false;
    }
    let size = m.size();
    if client.output_over(client.out_pending.load(Relaxed) + size, limit, now) {
        tracing::warn!(client = client.id, addr = %client.addr, "closing a subscriber over the pubsub output buffer limit");
        client.close_async();
        return false;
    }
    client.out_pending.fetch_add(size, Relaxed);
    tx.send(m).is_ok()
}

/// Hands `m` to one connection's inbox (`deliver`'s limit applies).
pub fn deliver_to(tx: &UnboundedSender<Message>, client: &Arc<ClientInfo>, m: Message, limit: &OutputLimit) -> bool {
    deliver(&(tx.clone(), client.clone()), m, limit, crate::util::now_ms())
}

#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
}

impl PubSub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, pattern: bool, name: &Bytes, client: &Arc<ClientInfo>, tx: &UnboundedSender<Message>) {
        let mut r = self.lock();
        let map = if pattern { &mut r.patterns } else { &mut r.channels };
        map.entry(name.clone()).or_default().insert(client.id, (tx.clone(), client.clone()));
    }

    pub fn unsubscribe(&self, pattern: bool, name: &[u8], client: u64) {
        let mut r = self.lock();
        leave(if pattern { &mut r.patterns } else { &mut r.channels }, name, client);
    }

    /// Delivers `payload` to the subscribers of `channel` and of matching
    /// patterns; how many received it. `limit`: the pubsub class's output
    /// limit.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes, limit: &OutputLimit) -> usize {
        let r = self.lock();
        let now = crate::util::now_ms();
        let mut n = 0;
        if let Some(subs) = r.channels.get(channel) {
            for sub in subs.values() {
                let m = Message {
                    pattern: None,
                    sharded: false,
                    unsubscribed: false,
                    channel: channel.clone(),
                    payload: payload.clone(),
                    invalidate: None,
                    ahead: false,
                };
                n += deliver(sub, m, limit, now) as usize;
            }
        }
        for (p, subs) in &r.patterns {
            if glob_match(p, channel, false) {
                for sub in subs.values() {
                    let m = Message {
                        pattern: Some(p.clone()),
                        sharded: false,
                        unsubscribed: false,
                        channel: channel.clone(),
                        payload: payload.clone(),
                        invalidate: None,
                        ahead: false,
                    };
                    n += deliver(sub, m, limit, now) as usize;
                }
            }
        }
        n
    }

    /// Hands `m` to client `id` if it subscribes to `channel`; whether it
    /// does.
    pub fn deliver_to_subscriber(&self, channel: &[u8], id: u64, m: Message, limit: &OutputLimit) -> bool {
        let r = self.lock();
        let Some(sub) = r.channels.get(channel).and_then(|s| s.get(&id)) else { return false };
        deliver(sub, m, limit, crate::util::now_ms());
        true
    }

    /// Active channels (matching `pattern`, when given).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.lock().channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.lock().channels.get(channel).map_or(0, |s| s.len())
    }

    pub fn numpat(&self) -> usize {
        self.lock().patterns.len()
    }

    /// Every subscription of every client: (is a pattern, name, client).
    pub fn subscriptions(&self) -> Vec<(bool, Bytes, Arc<ClientInfo>)> {
        let r = self.lock();
        let mut v = Vec::new();
        for (pattern, map) in [(false, &r.channels), (true, &r.patterns), (false, &r.shard_channels)] {
            for (name, subs) in map {
                v.extend(subs.values().map(|(_, c)| (pattern, name.clone(), c.clone())));
            }
        }
        v
    }

    pub fn subscribe_shard(&self, name: &Bytes, client: &Arc<ClientInfo>, tx: &UnboundedSender<Message>) {
        self.lock().shard_channels.entry(name.clone()).or_default().insert(client.id, (tx.clone(), client.clone()));
    }

    pub fn unsubscribe_shard(&self, name: &[u8], client: u64) {
        leave(&mut self.lock().shard_channels, name, client);
    }

    /// Delivers `payload` to the subscribers of the shard channel
    /// `channel`; how many received it. `limit`: the pubsub class's output
    /// limit.
    pub fn publish_shard(&self, channel: &Bytes, payload: &Bytes, limit: &OutputLimit) -> usize {
        let r = self.lock();
        let Some(subs) = r.shard_channels.get(channel) else { return 0 };
        let now = crate::util::now_ms();
        subs.values()
            .filter(|sub| {
                let m = Message {
                    pattern: None,
                    sharded: true,
                    unsubscribed: false,
                    channel: channel.clone(),
                    payload: payload.clone(),
                    invalidate: None,
                    ahead: false,
                };
                deliver(sub, m, limit, now)
            })
            .count()
    }

    /// Active shard channels (matching `pattern`, when given).
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.lock().shard_channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.lock().shard_channels.get(channel).map_or(0, |s| s.len())
    }

    /// Unsubscribes everybody from the shard channels `gone` selects
    /// (their slot moved to another node), telling each subscriber's
    /// connection; how many channels were dropped.
    pub fn drop_shard_channels(&self, gone: impl Fn(&[u8]) -> bool) -> usize {
        let mut r = self.lock();
        let names: Vec<Bytes> = r.shard_channels.keys().filter(|c| gone(c)).cloned().collect();
        for c in &names {
            for (tx, _) in r.shard_channels.remove(c).into_iter().flat_map(|subs| subs.into_values()) {
                let _ = tx.send(Message {
                    pattern: None,
                    sharded: true,
                    unsubscribed: true,
                    channel: c.clone(),
                    payload: Bytes::new(),
                    invalidate: None,
                    ahead: false,
                });
            }
        }
        shrink_map(&mut r.shard_channels);
        names.len()
    }
}
