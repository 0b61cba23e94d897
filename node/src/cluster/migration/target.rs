//! The receiving side of a migration, and the node-to-node calls around it:
//! `Import` applies a batch of key states on the shards that own them,
//! `AwaitApplied` lets the source wait for this node to see a change,
//! `Propose` commits a change on the leader for a node that is not it, and
//! `Publish` delivers another node's PUBLISH messages (`cluster::publish`),
//! `Ping` answers the other nodes' liveness probes (`cluster::health`).
//!
//! A batch is applied only while the configuration says this node imports
//! the key's slot; the check runs in the shard job that writes the key, so
//! a batch racing with an abort cannot leave keys behind the purge.

use std::sync::Arc;
use std::time::Duration;

use damselfly_proto::migration::migration_server::Migration;
use damselfly_proto::migration::{
    AwaitAppliedReply, AwaitAppliedRequest, ImportBatch, ImportReply, KeyState, PauseWritesReply, PauseWritesRequest, PingReply,
    PingRequest, ProposeReply, ProposeRequest, PublishBatch, PublishReply,
};
use tonic::{Request, Response, Status};

use super::{on_shard, Control, ProposeError};
use crate::cluster::raft::Change;
use crate::slot::{health, key_slot};
use crate::store::dump;
use crate::util::now_ms;

pub struct MigrationService(pub Arc<Control>);

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Migration for MigrationService {
    async fn import(&self, req: Request<ImportBatch>) -> Reply<ImportReply> {
        let b = req.into_inner();
        let ctl = &self.0;
        if !ctl.applied(b.log_index, Duration::from_secs(5)).await {
            return Err(Status::unavailable("this node has not applied the migration's start yet"));
        }
        let view = ctl.map.load();
        let mine = view.migration.as_ref().is_some_and(|m| m.id == b.migration_id && m.to == ctl.myself.id);
        if !mine {
            return Err(Status::failed_precondition(format!("migration {} is not importing into this node", b.migration_id)));
        }
        let stream = (b.migration_id.clone(), b.stream);
        {
            let mut imports = ctl.imports.lock().unwrap_or_else(|e| e.into_inner());
            imports.retain(|(id, _), _| *id == b.migration_id);
            let next = imports.get(&stream).copied().unwrap_or(0);
            if b.seq != next {
                return Err(Status::failed_precondition(format!(
                    "batch {} of stream {} arrived, {next} was expected (did this node restart?)",
                    b.seq, b.stream
                )));
            }
        }
        let n = b.keys.len() as u64;
        apply(ctl, b.keys).await?;
        ctl.imports.lock().unwrap_or_else(|e| e.into_inner()).insert(stream, b.seq + 1);
        Ok(Response::new(ImportReply { applied: n, incarnation: ctl.incarnation.clone() }))
    }

    async fn publish(&self, req: Request<PublishBatch>) -> Reply<PublishReply> {
        let delivered = crate::cluster::publish::deliver(&self.0, req.into_inner());
        Ok(Response::new(PublishReply { delivered }))
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Reply<PingReply> {
        let ctl = &self.0;
        health::bus_received(health::BusMsg::Ping);
        health::bus_sent(health::BusMsg::Pong);
        Ok(Response::new(PingReply {
            node_id: ctl.myself.id.clone(),
            incarnation: ctl.incarnation.clone(),
            lost_data: ctl.map.health.fenced(),
            repl_offset: ctl.engine.repl.offset.load(std::sync::atomic::Ordering::Relaxed),
            log_index: ctl.raft.metrics().borrow().last_log_index.unwrap_or(0),
        }))
    }

    async fn pause_writes(&self, req: Request<PauseWritesRequest>) -> Reply<PauseWritesReply> {
        let limit = Duration::from_millis(req.get_ref().timeout_ms.clamp(100, 10_000) as u64);
        let offset = crate::cluster::takeover::pause(&self.0, limit).await.map_err(Status::failed_precondition)?;
        Ok(Response::new(PauseWritesReply { offset }))
    }

    async fn await_applied(&self, req: Request<AwaitAppliedRequest>) -> Reply<AwaitAppliedReply> {
        let r = req.into_inner();
        let limit = Duration::from_millis(r.timeout_ms.min(30_000) as u64);
        self.0.applied(r.index, limit).await;
        let applied = self.0.raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        Ok(Response::new(AwaitAppliedReply { applied, incarnation: self.0.incarnation.clone() }))
    }

    async fn propose(&self, req: Request<ProposeRequest>) -> Reply<ProposeReply> {
        let change: Change = serde_json::from_slice(&req.get_ref().change).map_err(|e| Status::invalid_argument(e.to_string()))?;
        match self.0.propose_here(change).await {
            Ok(c) => Ok(Response::new(ProposeReply { log_index: c.log_index, epoch: 0, rejected: String::new() })),
            Err(ProposeError::Rejected(why)) => Ok(Response::new(ProposeReply { log_index: 0, epoch: 0, rejected: why })),
            Err(ProposeError::Unknown(why)) => Err(Status::unavailable(why)),
        }
    }
}

/// Writes key states on their shards (in parallel), each key replacing
/// whatever the node held under its name.
async fn apply(ctl: &Control, keys: Vec<KeyState>) -> Result<(), Status> {
    let engine = &ctl.engine;
    let mut per_shard: Vec<Vec<KeyState>> = (0..engine.nshards()).map(|_| Vec::new()).collect();
    for k in keys {
        per_shard[engine.shard_of(&k.key)].push(k);
    }
    let mut waits = Vec::new();
    for (s, batch) in per_shard.into_iter().enumerate().filter(|(_, b)| !b.is_empty()) {
        let map = ctl.map.clone();
        waits.push(on_shard(engine, s, move |sh| {
            let view = map.load();
            let limits = sh.cfg.limits();
            let now = now_ms();
            let db = sh.db(0);
            for k in batch {
                if !view.importing(key_slot(&k.key)) {
                    return Err(format!("slot {} is not being imported", key_slot(&k.key)));
                }
                db.remove(&k.key, now);
                if k.deleted || (k.expire_at_ms != 0 && k.expire_at_ms <= now) {
                    continue;
                }
                let value = dump::decode(&k.dump, limits).map_err(|e| format!("bad payload for a key: {e:?}"))?;
                db.insert_new(&k.key, value, k.expire_at_ms);
            }
            Ok(())
        }));
    }
    for w in waits {
        match w.await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Status::failed_precondition(e)),
            None => return Err(Status::unavailable("shutting down")),
        }
    }
    Ok(())
}
