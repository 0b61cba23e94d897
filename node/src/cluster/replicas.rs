//! Replicas inside a cluster: the configuration says which primary each
//! replica follows (`Change::SetReplica`); this task makes the node's
//! replication match it. A node the view makes a replica follows its
//! primary's client address with the standalone replication
//! (`persist::replica::follow`: full sync, then the stream); a node that
//! is no longer one stops following (`ReplState::set_master(None)`) and
//! takes writes again (a promoted replica). Checked on every new view,
//! and every second. A primary that becomes a replica (an old primary
//! back after a failover) logs how many keys it discards.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::migration::{on_shard, Control};

/// Keys this node holds, over every shard and database.
async fn held_keys(ctl: &Control) -> u64 {
    let mut n = 0;
    for s in 0..ctl.engine.nshards() {
        n += on_shard(&ctl.engine, s, |sh| (0..sh.db_count()).map(|i| sh.db_if_exists(i).map_or(0, |d| d.len() as u64)).sum::<u64>())
            .await
            .unwrap_or(0);
    }
    n
}

pub async fn run(ctl: Arc<Control>) {
    let mut changed = ctl.map.subscribe();
    loop {
        sync(&ctl).await;
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Follows the primary the view names, or none.
async fn sync(ctl: &Control) {
    let view = ctl.map.load();
    let want = view.my_primary().map(|p| &view.members[p]);
    let have = ctl.engine.repl.master();
    match (want, have) {
        (Some(p), Some(m)) if m.host == p.host && m.port == p.port => {}
        (Some(p), have) => {
            let (primary, host, port) = (p.id.clone(), p.host.clone(), p.port);
            if have.is_none() {
                // What this node held (as a primary) gives way to the full
                // sync: writes it took that were not replicated are lost.
                let (keys, bytes) = (held_keys(ctl).await, crate::alloc::used_memory());
                warn!(%primary, keys, used_memory = bytes, "becoming a replica: the keys held now are discarded for the primary's data");
            }
            info!(%primary, addr = %format!("{host}:{port}"), "replica of a primary per the cluster configuration: following it");
            crate::persist::replica::follow(&ctl.engine, host, port);
        }
        (None, Some(m)) if view.me.is_some() => {
            // (Normally done by the state machine as it installs the view.)
            info!(addr = %format!("{}:{}", m.host, m.port), "no longer a replica per the cluster configuration: taking writes");
            ctl.engine.repl.set_master(None);
            crate::persist::replica::oom_score_for_role(&ctl.engine, false);
        }
        (None, _) => {}
    }
}
