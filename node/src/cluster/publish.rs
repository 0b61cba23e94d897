//! PUBLISH across the cluster: a message published on one node reaches the
//! subscribers of every node, as Redis Cluster broadcasts it over its bus.
//! Connections hand their PUBLISH messages to `forward` through the slot
//! map's queue; it sends them to every other member over the cluster bus
//! (`Migration.Publish`), one ordered stream per peer, in batches of what
//! queued up meanwhile. The receiving node delivers them to its own
//! subscribers only (`deliver`), so nothing is forwarded twice.
//!
//! Bounded: each queue holds at most `BACKLOG` messages; past that (a peer
//! down or too slow) messages are dropped, as a best-effort bus does.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use damselfly_proto::migration::migration_client::MigrationClient;
use damselfly_proto::migration::{PubMessage, PublishBatch};
use tokio::sync::mpsc;
use tracing::debug;

use super::migration::{Control, MAX_MESSAGE};
use super::{channel, BusChannel};
use crate::slot::health;

/// Messages waiting in one queue, at most.
pub const BACKLOG: usize = 65536;
/// Messages per call, at most.
const BATCH: usize = 1024;

type Batch = Arc<Vec<(Bytes, Bytes)>>;

/// Sends what connections publish here to every other member.
pub async fn forward(ctl: Arc<Control>, mut rx: mpsc::Receiver<(Bytes, Bytes)>) {
    // One queue and task per peer (by id and address), made when the peer
    // first appears in the configuration, dropped when it leaves it.
    let mut peers: HashMap<(String, String), mpsc::Sender<Batch>> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let batch: Batch = Arc::new(batch);
        let view = ctl.map.load();
        let me = view.me.map(|i| view.members[i].id.clone());
        let current: Vec<(String, String)> = view
            .members
            .iter()
            .filter(|m| Some(&m.id) != me.as_ref())
            .map(|m| (m.id.clone(), format!("http://{}:{}", m.host, m.grpc_port)))
            .collect();
        peers.retain(|k, _| current.contains(k));
        for key in current {
            let tx = peers.entry(key.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(BACKLOG / BATCH);
                tokio::spawn(send_to(key.1.clone(), rx));
                tx
            });
            if tx.try_send(batch.clone()).is_err() {
                debug!(peer = %key.0, "PUBLISH backlog full: messages dropped");
            }
        }
    }
}

/// Sends the batches queued for one peer, in order.
async fn send_to(url: String, mut rx: mpsc::Receiver<Batch>) {
    let mut client: Option<MigrationClient<BusChannel>> = None;
    while let Some(batch) = rx.recv().await {
        if client.is_none() {
            client = channel(&url)
                .ok()
                .map(|ch| MigrationClient::new(ch).max_encoding_message_size(MAX_MESSAGE).max_decoding_message_size(MAX_MESSAGE));
        }
        let Some(c) = client.as_mut() else { continue };
        let messages = batch.iter().map(|(c, p)| PubMessage { channel: c.to_vec(), payload: p.to_vec() }).collect();
        health::bus_sent(health::BusMsg::Publish);
        if let Err(e) = c.publish(PublishBatch { messages }).await {
            debug!(%url, "PUBLISH to a peer failed: {e}");
        }
    }
}

/// Delivers messages published on another node to this node's
/// subscribers; how many deliveries were made.
pub fn deliver(ctl: &Control, batch: PublishBatch) -> u64 {
    health::bus_received(health::BusMsg::Publish);
    let limit = &ctl.engine.cfg.output_limits[crate::config::CLASS_PUBSUB];
    batch.messages.into_iter().map(|m| ctl.engine.pubsub.publish(&Bytes::from(m.channel), &Bytes::from(m.payload), limit) as u64).sum()
}
