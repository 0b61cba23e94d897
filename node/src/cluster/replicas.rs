//! Replicas inside a cluster: the configuration says which primary each
//! replica follows (`Change::SetReplica`); this task makes the node's
//! replication match it. A node the view makes a replica follows its
//! primary's client address with the standalone replication
//! (`persist::replica::follow`: full sync, then the stream); a node that
//! is no longer one stops following (`ReplState::set_master(None)`) and
//! takes writes again. Checked on every new view, and every second.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::migration::Control;

pub async fn run(ctl: Arc<Control>) {
    let mut changed = ctl.map.subscribe();
    loop {
        sync(&ctl);
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Follows the primary the view names, or none.
fn sync(ctl: &Control) {
    let view = ctl.map.load();
    let want = view.my_primary().map(|p| &view.members[p]);
    let have = ctl.engine.repl.master();
    match (want, have) {
        (Some(p), Some(m)) if m.host == p.host && m.port == p.port => {}
        (Some(p), _) => {
            info!(primary = %p.id, addr = %format!("{}:{}", p.host, p.port), "replica of a primary per the cluster configuration: following it");
            crate::persist::replica::follow(&ctl.engine, p.host.clone(), p.port);
        }
        (None, Some(m)) => {
            info!(addr = %format!("{}:{}", m.host, m.port), "no longer a replica per the cluster configuration: taking writes");
            ctl.engine.repl.set_master(None);
        }
        (None, None) => {}
    }
}
