//! Pub/sub: the node-wide registry of subscribed connections, by channel and
//! by pattern. PUBLISH hands each subscriber a message through its
//! connection's channel; the connection writes it (as RESP2 arrays or RESP3
//! pushes) between commands or while it waits for input. In cluster mode a
//! message reaches the subscribers of the node it is published on.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use crate::util::glob_match;

/// A delivery to one subscriber.
pub struct Message {
    /// The pattern that matched (`pmessage`), or `None` (`message`).
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, UnboundedSender<Message>>>,
    patterns: HashMap<Bytes, HashMap<u64, UnboundedSender<Message>>>,
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
                n += tx.send(Message { pattern: None, channel: channel.clone(), payload: payload.clone() }).is_ok() as usize;
            }
        }
        for (p, subs) in &r.patterns {
            if glob_match(p, channel, false) {
                for tx in subs.values() {
                    n += tx.send(Message { pattern: Some(p.clone()), channel: channel.clone(), payload: payload.clone() }).is_ok() as usize;
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
}
