//! Keeps each node holding only the keys it should: after every new
//! configuration (and once a second), the keys of slots this node neither
//! serves nor imports are deleted, a bounded number per shard job so clients
//! on the shard are not stalled. That is how a source drops the keys it
//! handed over, and how a target drops a half-imported slot when its
//! migration is aborted.
//!
//! The same task abandons a migration whose source is this node but which
//! this process is not running: the process that ran it restarted; and it
//! unsubscribes the subscribers of shard channels whose slot this node no
//! longer serves (they get `sunsubscribe`, as from Redis).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{on_shard, Control, ProposeError};
use crate::cluster::raft::Change;

/// Keys deleted per shard job, and the pause between two jobs on a shard,
/// so the shard's clients get their turns (a deletion that never lets go of
/// the shard stalled other writes for tens of ms in the benchmark).
const CHUNK: usize = 500;
const PAUSE: Duration = Duration::from_millis(1);

pub async fn run(ctl: Arc<Control>) {
    let mut changed = ctl.map.subscribe();
    loop {
        abandon_orphan(&ctl).await;
        drop_moved_shard_channels(&ctl);
        purge(&ctl).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
    }
}

/// Unsubscribes everybody from the shard channels of slots that are no
/// longer served here (a held slot counts as served until its cut-over
/// ends).
fn drop_moved_shard_channels(ctl: &Control) {
    if ctl.map.load().me.is_none() {
        return;
    }
    let gate = &ctl.map.gate;
    let n = ctl.engine.pubsub.drop_shard_channels(|c| {
        let slot = crate::slot::key_slot(c);
        !gate.admits(slot) && !gate.is_closed(slot)
    });
    if n > 0 {
        info!(channels = n, "unsubscribed the shard channels of slots this node no longer serves");
    }
}

/// Deletes, on every shard, the keys of slots this node does not keep.
pub async fn purge(ctl: &Control) {
    let view = ctl.map.load();
    if view.me.is_none() {
        // Not a member (yet): nothing here is anybody's.
        return;
    }
    let mut removed = 0;
    for s in 0..ctl.engine.nshards() {
        loop {
            let map = ctl.map.clone();
            let n = on_shard(&ctl.engine, s, move |sh| {
                // The view as of this job (imports check it the same way).
                let v = map.load();
                let mut n = 0;
                for i in 0..sh.db_count() {
                    let Some(db) = sh.db_if_exists(i) else { continue };
                    let slots: Vec<u16> = db.slots().filter(|&slot| db.slot_len(slot) > 0 && !v.keeps(slot)).collect();
                    for slot in slots {
                        n += db.drain_slot(slot, CHUNK - n);
                        if n >= CHUNK {
                            return n;
                        }
                    }
                }
                n
            })
            .await
            .unwrap_or(0);
            removed += n;
            if n < CHUNK || ctl.map.load().epoch != view.epoch {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
    if removed > 0 {
        info!(removed, "deleted the keys of slots this node no longer serves");
    }
}

/// Aborts a migration recorded with this node as its source when this
/// process is not running it.
async fn abandon_orphan(ctl: &Control) {
    let view = ctl.map.load();
    let Some(m) = &view.migration else { return };
    if m.from != ctl.myself.id {
        return;
    }
    if ctl.running.lock().unwrap_or_else(|e| e.into_inner()).as_deref() == Some(m.id.as_str()) {
        return;
    }
    match ctl.propose(Change::AbortMigration { id: m.id.clone() }).await {
        Ok(_) => warn!(id = %m.id, "aborted a migration this node was running before it restarted"),
        Err(ProposeError::Rejected(_)) => {}
        Err(e) => warn!(id = %m.id, "cannot abort an orphaned migration yet: {e}"),
    }
}
