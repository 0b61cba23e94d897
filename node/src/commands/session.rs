//! A client connection's state that commands change: authentication, the
//! transaction being queued, watched keys, subscriptions, cluster
//! redirection flags. The connection (`server::conn`) owns one; scripts
//! have none (the commands that need it are `noscript`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;

use super::CommandSpec;
use crate::commands::routing::ConnCluster;
use crate::resp::Parser;
use crate::shard::clients::{argv_len, ClientInfo, SessionView};
use crate::shard::pubsub::Message;
use crate::shard::{Engine, NO_TX};

pub struct Session {
    pub authed: bool,
    /// The ACL user the connection runs as (`default` until it
    /// authenticates as another), as of `acl_gen`.
    pub user: Arc<crate::shard::acl::User>,
    /// The node's ACL generation when `user` was looked up: when it
    /// moves, the user is looked up again (`refresh_user`).
    pub acl_gen: u64,
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
    /// MONITOR is on: the lines of the commands that run arrive here.
    pub monitor: Option<tokio::sync::mpsc::UnboundedReceiver<Bytes>>,
    /// The connection is a replica's (after PSYNC or SYNC): its stream.
    pub replica: Option<std::sync::Arc<crate::shard::repl::Feed>>,
    /// The port a replica announced (REPLCONF listening-port).
    pub repl_port: u16,
    /// The address a replica announced (REPLCONF ip-address).
    pub repl_ip: Option<String>,
    /// The replica announced `REPLCONF capa psync2` (`+CONTINUE <replid>`).
    pub repl_psync2: bool,
    /// It announced `REPLCONF capa eof` (reads a diskless payload).
    pub repl_eof: bool,
    /// CLIENT REPLY: whether commands' replies are sent.
    pub reply: Reply,
    /// A (un)subscribe confirmation was written: it is a push, which goes
    /// out even under CLIENT REPLY OFF or SKIP (as Redis's CLIENT_PUSHING).
    pub pushed: bool,
    /// CLIENT UNBLOCK ended the last wait as a timeout.
    pub unblocked: bool,
    /// Client-side caching: where this connection's invalidations arrive
    /// (made by the first CLIENT TRACKING ON).
    pub tracking: Option<Box<Inbox>>,
}

/// A tracking connection's inbox of invalidations (`shard::tracking`).
pub struct Inbox {
    pub tx: tokio::sync::mpsc::UnboundedSender<Message>,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Message>,
}

/// CLIENT REPLY's modes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Reply {
    #[default]
    On,
    Off,
    /// SKIP was sent: the next command's reply is not sent.
    SkipNext,
    /// The command whose reply is skipped is running.
    Skipping,
}

/// A transaction being queued (between MULTI and EXEC).
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// A command failed to queue: EXEC will abort.
    pub failed: bool,
    /// The queued commands' memory (CLIENT LIST's `multi-mem`): their
    /// argument bytes and one handle per argument.
    pub mem: usize,
}

impl Multi {
    pub fn push(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) {
        self.mem += argv_len(&args) + args.len() * std::mem::size_of::<Bytes>();
        self.queued.push((spec, args));
    }
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
    /// Shard channels (SSUBSCRIBE).
    pub shard_channels: std::collections::BTreeSet<Bytes>,
}

impl Subscription {
    /// Channels and patterns: what SUBSCRIBE's and PSUBSCRIBE's replies
    /// count (shard channels are counted apart, as in Redis).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Every subscription: the connection is in subscribed mode while
    /// this is not 0.
    pub fn total(&self) -> usize {
        self.count() + self.shard_channels.len()
    }
}

impl Session {
    /// Runs as `user` from now on (AUTH, HELLO AUTH, RESET).
    pub fn set_user(&mut self, engine: &Engine, user: Arc<crate::shard::acl::User>) {
        self.acl_gen = engine.acl.generation.load(std::sync::atomic::Ordering::Relaxed);
        self.info.set_acl_user(user.clone());
        self.user = user;
    }

    /// Looks the user up again after the node's users changed: the new
    /// rules apply at once. False when the user was deleted (or replaced
    /// by a new one of the same name, as ACL LOAD does): the connection is
    /// then closed, as Redis closes it.
    pub fn refresh_user(&mut self, engine: &Engine) -> bool {
        let gen = engine.acl.generation.load(std::sync::atomic::Ordering::Relaxed);
        match engine.acl.get(&self.user.name) {
            Some(u) if u.serial == self.user.serial => {
                self.acl_gen = gen;
                self.info.set_acl_user(u.clone());
                self.user = u;
                true
            }
            _ => false,
        }
    }

    /// Publishes what CLIENT LIST shows of this session (after a pipeline
    /// ran; `out_cap` is the output buffer's capacity).
    pub fn publish(&self, out_cap: usize) {
        let (sub, psub, ssub) = self.sub.as_ref().map_or((0, 0, 0), |s| (s.channels.len(), s.patterns.len(), s.shard_channels.len()));
        let (watch, dirty) = self.watch.as_ref().map_or((0, None), |w| (w.keys.len(), Some(&w.dirty)));
        self.info.publish_session(SessionView {
            sub,
            psub,
            ssub,
            multi: self.multi.as_ref().map(|m| (m.queued.len(), m.mem)),
            watch,
            watch_mem: watch * std::mem::size_of::<(usize, usize, Bytes)>(),
            dirty,
            closing: self.closing,
            readonly: self.cluster.as_ref().is_some_and(|c| c.readonly),
            out_cap,
            fixed: std::mem::size_of::<Session>(),
        });
    }

    /// Publishes the buffers as the connection starts waiting for input
    /// (the session was published when its last pipeline ended).
    pub fn publish_waiting(&self, out_cap: usize, inbuf: &bytes::BytesMut, parser: &Parser) {
        self.info.set_out_cap(out_cap);
        self.publish_input(inbuf, parser, &[]);
    }

    /// Publishes the input the connection holds (`inbuf`, and what the
    /// parser set aside) and the commands about to run (`running`: none
    /// while waiting for input).
    pub fn publish_input(&self, inbuf: &bytes::BytesMut, parser: &Parser, running: &[Vec<Bytes>]) {
        let (big, big_room, big_done) = parser.held();
        self.info.publish_input(inbuf.len() + big, inbuf.capacity() - inbuf.len() + big_room, big_done, running);
    }

    /// Ends client tracking (CLIENT TRACKING OFF, RESET, the connection
    /// closing). The inbox stays: invalidations already sent are written.
    pub fn stop_tracking(&mut self) {
        if self.info.tracking.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            crate::shard::tracking::disable(&self.info);
        }
    }

    /// The connection speaks RESP3 (`on`) or not: redirected invalidations
    /// may be pushed to it (its tracking inbox, made for it here), or no
    /// longer.
    pub fn set_push_target(&mut self, on: bool) {
        let tx = on.then(|| {
            let inbox = self.tracking.get_or_insert_with(|| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                Box::new(Inbox { tx, rx })
            });
            inbox.tx.clone()
        });
        crate::shard::tracking::set_push_target(&self.info, tx);
    }

    /// Ends MONITOR (RESET, the connection closing).
    pub fn stop_monitor(&mut self, engine: &Engine) {
        let Some(mut rx) = self.monitor.take() else { return };
        engine.monitors.remove(self.info.id);
        self.info.set_monitor(false);
        // Lines not written are no longer owed (nothing is sent after
        // `remove`).
        let mut dropped = 0;
        while let Ok(line) = rx.try_recv() {
            dropped += line.len();
        }
        let pending = &self.info.out_pending;
        pending.fetch_sub(dropped.min(pending.load(std::sync::atomic::Ordering::Relaxed)), std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets every watched key (the shards drop their entries
    /// asynchronously).
    pub fn unwatch(&mut self, engine: &Engine) {
        let Some(w) = self.watch.take() else { return };
        // One job per shard, whatever the number of keys.
        let mut by_shard: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); engine.nshards()];
        for (shard, db, key) in w.keys {
            by_shard[shard].push((db, key));
        }
        for (shard, keys) in by_shard.into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
            let flag = w.dirty.clone();
            engine.send(
                shard,
                NO_TX,
                Box::new(move |sh| {
                    for (db, key) in &keys {
                        sh.db(*db).unwatch(key, &flag);
                    }
                }),
            );
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
