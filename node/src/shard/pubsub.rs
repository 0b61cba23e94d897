//! Pub/sub: the node-wide registry of subscribed connections, by channel, by
//! pattern and by shard channel (SSUBSCRIBE). PUBLISH and SPUBLISH hand
//! each subscriber a message through its connection's channel; the
//! connection writes it (as RESP2 arrays or RESP3 pushes) between commands
//! or while it waits for input. This registry is the node's: in cluster
//! mode `cluster::publish` carries PUBLISH messages to the other nodes,
//! whose registries deliver them; a shard channel's slot is served by one
//! node, which its subscribers and publishers are routed to.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use crate::util::glob_match;

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
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, UnboundedSender<Message>>>,
    patterns: HashMap<Bytes, HashMap<u64, UnboundedSender<Message>>>,
    shard_channels: HashMap<Bytes, HashMap<u64, UnboundedSender<Message>>>,
}

#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
}

impl PubSub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, pattern: bool, name: &Bytes, client: u64, tx: &UnboundedSender<Message>) {
        let mut r = self.lock();
        let map = if pattern { &mut r.patterns } else { &mut r.channels };
        map.entry(name.clone()).or_default().insert(client, tx.clone());
    }

    pub fn unsubscribe(&self, pattern: bool, name: &[u8], client: u64) {
        let mut r = self.lock();
        let map = if pattern { &mut r.patterns } else { &mut r.channels };
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&client);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `payload` to the subscribers of `channel` and of matching
    /// patterns; how many received it.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let r = self.lock();
        let mut n = 0;
        if let Some(subs) = r.channels.get(channel) {
            for tx in subs.values() {
                n += tx
                    .send(Message {
                        pattern: None,
                        sharded: false,
                        unsubscribed: false,
                        channel: channel.clone(),
                        payload: payload.clone(),
                    })
                    .is_ok() as usize;
            }
        }
        for (p, subs) in &r.patterns {
            if glob_match(p, channel, false) {
                for tx in subs.values() {
                    n += tx
                        .send(Message {
                            pattern: Some(p.clone()),
                            sharded: false,
                            unsubscribed: false,
                            channel: channel.clone(),
                            payload: payload.clone(),
                        })
                        .is_ok() as usize;
                }
            }
        }
        n
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

    pub fn subscribe_shard(&self, name: &Bytes, client: u64, tx: &UnboundedSender<Message>) {
        self.lock().shard_channels.entry(name.clone()).or_default().insert(client, tx.clone());
    }

    pub fn unsubscribe_shard(&self, name: &[u8], client: u64) {
        let mut r = self.lock();
        if let Some(subs) = r.shard_channels.get_mut(name) {
            subs.remove(&client);
            if subs.is_empty() {
                r.shard_channels.remove(name);
            }
        }
    }

    /// Delivers `payload` to the subscribers of the shard channel
    /// `channel`; how many received it.
    pub fn publish_shard(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let r = self.lock();
        let Some(subs) = r.shard_channels.get(channel) else { return 0 };
        subs.values()
            .filter(|tx| {
                tx.send(Message { pattern: None, sharded: true, unsubscribed: false, channel: channel.clone(), payload: payload.clone() })
                    .is_ok()
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
            for tx in r.shard_channels.remove(c).into_iter().flat_map(|subs| subs.into_values()) {
                let _ = tx.send(Message { pattern: None, sharded: true, unsubscribed: true, channel: c.clone(), payload: Bytes::new() });
            }
        }
        names.len()
    }
}
