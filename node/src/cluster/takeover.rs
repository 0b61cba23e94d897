//! Planned failover (CLUSTER FAILOVER on a replica, `cluster-admin
//! failover`). The replica asks its primary to hold writes to its slots
//! (`Migration.PauseWrites`: the migration cut-over's gate) and to say the
//! replication offset every write before the hold reached; the replica
//! waits until it has applied that much, then commits `Change::Promote`.
//! The held commands then find their slots moved and are redirected
//! (`-MOVED`) to the new primary: nothing acknowledged is lost. FORCE and
//! TAKEOVER skip the primary (it may be unreachable): the promotion is
//! committed at once.

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::Duration;

use damselfly_proto::migration::migration_client::MigrationClient;
use damselfly_proto::migration::PauseWritesRequest;
use tracing::{info, warn};

use super::channel;
use super::migration::{on_shard, Control};
use super::raft::Change;

/// How long the primary holds writes at most (also the bound of the
/// replica's catch-up).
const HOLD: Duration = Duration::from_secs(5);

/// Runs a failover from this node, a replica.
pub async fn run(ctl: &Control, force: bool) -> Result<(), String> {
    let view = ctl.map.load();
    let Some(p) = view.my_primary() else { return Err("You should send CLUSTER FAILOVER to a replica".into()) };
    let primary = view.members[p].clone();
    if !force {
        let url = format!("http://{}:{}", primary.host, primary.grpc_port);
        let ch = channel(&url).map_err(|e| e.to_string())?;
        let mut req = tonic::Request::new(PauseWritesRequest { timeout_ms: HOLD.as_millis() as u32 });
        req.set_timeout(HOLD);
        let offset = MigrationClient::new(ch)
            .pause_writes(req)
            .await
            .map_err(|e| format!("the primary did not pause its writes: {}", e.message()))?
            .into_inner()
            .offset;
        let deadline = tokio::time::Instant::now() + HOLD;
        // The offset counts the primary's stream only once the link is up
        // (during a full sync it still holds this node's old count).
        let linked = || ctl.engine.repl.master().is_some_and(|m| m.link_up.load(Relaxed));
        while !linked() || ctl.engine.repl.offset.load(Relaxed) < offset {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "did not catch up with the primary in time ({} of {offset}); its writes resume",
                    ctl.engine.repl.offset.load(Relaxed)
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        info!(primary = %primary.id, offset, "caught up with the paused primary");
    }
    let done =
        ctl.propose(Change::Promote { replica: ctl.myself.id.clone(), primary: primary.id.clone() }).await.map_err(|e| e.to_string())?;
    // Answer once this node routes the slots to itself.
    ctl.applied(done.log_index, HOLD).await;
    warn!(primary = %primary.id, force, "failover: this replica is now the primary");
    Ok(())
}

/// On the primary: holds writes to every slot it serves, lets the commands
/// already running finish and the journal writer hand their effects to the
/// replicas, and returns the replication offset reached. The hold ends
/// when the configuration moves the slots away (the held commands are then
/// redirected) or after `limit`.
pub async fn pause(ctl: &Control, limit: Duration) -> Result<u64, String> {
    let view = ctl.map.load();
    let Some(me) = view.me else { return Err("not a member".into()) };
    let slots: Vec<u16> = view.ranges_of(me).into_iter().flat_map(|(a, b)| a..=b).collect();
    if slots.is_empty() {
        return Err("this node serves no slots".into());
    }
    ctl.map.gate.close(&slots);
    let map = ctl.map.clone();
    let first = slots[0];
    tokio::spawn(async move {
        let mut changed = map.subscribe();
        let given_away = async {
            while map.load().owner_of(first) == Some(me) {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(limit, given_away).await;
        map.gate.open_all();
    });
    // Commands that passed the gate before it closed finish on their shard.
    for s in 0..ctl.engine.nshards() {
        on_shard(&ctl.engine, s, |_| ()).await;
    }
    // Their effects reach the replication stream through the journal
    // writer.
    let j = &ctl.engine.journal;
    if ctl.engine.repl.active.load(Relaxed) {
        let target = j.sent.load(Acquire);
        let waited = tokio::time::timeout(limit, async {
            loop {
                let changed = j.durable_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if j.durable.load(Acquire) >= target {
                    return;
                }
                changed.await;
            }
        })
        .await;
        if waited.is_err() {
            return Err("the replication stream did not catch up in time".into());
        }
    }
    Ok(ctl.engine.repl.offset.load(Relaxed))
}
