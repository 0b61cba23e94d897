//! A client connection's state that commands change: authentication, the
//! transaction being queued, watched keys, subscriptions, cluster
//! redirection flags. The connection (`server::conn`) owns one; scripts
//! have none (the commands that need it are `noscript`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;

use super::CommandSpec;
use crate::cluster::slots::ConnCluster;
use crate::shard::clients::ClientInfo;
use crate::shard::pubsub::Message;
use crate::shard::{Engine, NO_TX};

pub struct Session {
    pub authed: bool,
    pub info: Arc<ClientInfo>,
    /// Set by QUIT: close after flushing replies.
    pub closing: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Multi>,
    /// Keys watched since WATCH.
    pub watch: Option<Watch>,
    /// Pub/sub: this connection's subscriptions and its message inbox.
    pub sub: Option<Box<Subscription>>,
    /// Cluster mode: the cached slot map and ASKING/READONLY state.
    pub cluster: Option<ConnCluster>,
    /// The client hung up (or was killed) while a command waited: nothing
    /// more is run or answered.
    pub gone: bool,
}

/// A transaction being queued (between MULTI and EXEC).
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// A command failed to queue: EXEC will abort.
    pub failed: bool,
}

/// WATCHed keys and the flag shards raise when one of them changes.
pub struct Watch {
    pub dirty: Arc<AtomicBool>,
    /// (shard, database, key)
    pub keys: Vec<(usize, usize, Bytes)>,
}

/// A connection's pub/sub state.
pub struct Subscription {
    pub tx: tokio::sync::mpsc::UnboundedSender<Message>,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Message>,
    pub channels: std::collections::BTreeSet<Bytes>,
    pub patterns: std::collections::BTreeSet<Bytes>,
}

impl Subscription {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

impl Session {
    /// Forgets every watched key (the shards drop their entries
    /// asynchronously).
    pub fn unwatch(&mut self, engine: &Engine) {
        let Some(w) = self.watch.take() else { return };
        for (shard, db, key) in w.keys {
            let flag = w.dirty.clone();
            engine.send(shard, NO_TX, Box::new(move |sh| sh.db(db).unwatch(&key, &flag)));
        }
    }

    /// Cluster mode: a future that completes once a slot of `keys` is no
    /// longer served here (a blocked client is then redirected; see
    /// `SlotMap::moved_away`); never outside cluster mode. It borrows
    /// nothing, so it can wait beside the command's other waits.
    pub fn keys_moving(&self, keys: &[Bytes]) -> impl std::future::Future<Output = ()> + 'static {
        let map = self.cluster.as_ref().map(|c| c.map.clone());
        let slots: Vec<u16> = keys.iter().map(|k| crate::slot::key_slot(k)).collect();
        async move {
            match map {
                Some(map) => map.moved_away(&slots).await,
                None => std::future::pending().await,
            }
        }
    }
}
