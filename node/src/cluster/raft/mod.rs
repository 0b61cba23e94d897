//! The Raft metadata group (openraft). `types` holds the type
//! configuration and what is replicated, `log_store` the durable log and
//! vote, `state_machine` the applied cluster configuration and its
//! snapshots, `network` the gRPC transport and `convert` the mapping between
//! openraft's messages and their protobuf form. Every applied change is
//! pushed into the engine's slot map.

pub mod convert;
pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod types;

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use openraft::{AnyError, StorageError, StorageIOError};

pub use log_store::LogStore;
pub use state_machine::{even_ranges, ClusterConfig, Migration, StateMachine};
pub use types::{raft_id, Change, ChangeResult, NodeAddr, NodeId, Raft, TypeConfig};

type SErr = StorageError<NodeId>;

fn io_write(e: impl std::error::Error + 'static) -> SErr {
    StorageIOError::write(AnyError::new(&e)).into()
}

fn io_read(e: impl std::error::Error + 'static) -> SErr {
    StorageIOError::read(AnyError::new(&e)).into()
}

/// Writes `bytes` to `path` atomically and durably (temp file, fsync, rename).
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(d) = path.parent() {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::slot::map::{Member, SlotMap};

    /// Removes a test's storage directory.
    pub(crate) struct DirGuard(pub(crate) PathBuf);

    impl Drop for DirGuard {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Builder;

    impl openraft::testing::StoreBuilder<TypeConfig, LogStore, StateMachine, DirGuard> for Builder {
        async fn build(&self) -> Result<(DirGuard, LogStore, StateMachine), SErr> {
            let dir = std::env::temp_dir().join(format!("damselfly-raft-{}", crate::cluster::identity::random_id()));
            let id = "ab".repeat(20);
            let me = Member { id: id.clone(), shard_id: id, host: "127.0.0.1".into(), port: 1, grpc_port: 2, voter: true };
            let map = Arc::new(SlotMap::new(me));
            let log = LogStore::open(&dir).map_err(io_write)?;
            let sm = StateMachine::open(&dir, map).map_err(io_write)?;
            Ok((DirGuard(dir), log, sm))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        openraft::testing::Suite::test_all(Builder).unwrap();
    }
}
