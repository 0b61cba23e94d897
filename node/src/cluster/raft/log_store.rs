//! The Raft log store: the log (`log.jsonl`, one JSON entry per line), the
//! vote, the committed and last purged log ids (`meta.json`), all under
//! `<dir>/raft/` and fsynced before openraft is told they are durable.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use super::types::{NodeId, TypeConfig};
use super::{io_write, lock, write_file, SErr};

/// Small durable facts about the log: the vote, the committed and the last
/// purged log id.
#[derive(Default, Serialize, Deserialize)]
struct LogMeta {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

struct LogInner {
    dir: PathBuf,
    meta: LogMeta,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    /// `log.jsonl`, opened for appending.
    file: std::fs::File,
}

impl LogInner {
    fn save_meta(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.meta).map_err(std::io::Error::other)?;
        write_file(&self.dir.join("meta.json"), &bytes)
    }

    /// Rewrites the log file from memory (after truncation or purging).
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut text = Vec::new();
        for e in self.log.values() {
            serde_json::to_writer(&mut text, e).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let path = self.dir.join("log.jsonl");
        write_file(&path, &text)?;
        self.file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

/// The Raft log, vote and commit index, kept under `<dir>/raft/`.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

impl LogStore {
    /// The last commit index saved (what openraft reported committed).
    pub fn committed_index(&self) -> Option<u64> {
        lock(&self.inner).meta.committed.map(|l| l.index)
    }

    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let meta: LogMeta = match std::fs::read(dir.join("meta.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LogMeta::default(),
            Err(e) => return Err(e),
        };
        let path = dir.join("log.jsonl");
        let mut log = BTreeMap::new();
        if let Ok(text) = std::fs::read(&path) {
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                // A torn last line (crash mid-append) was never acknowledged.
                let Ok(e) = serde_json::from_slice::<Entry<TypeConfig>>(line) else { break };
                log.insert(e.log_id.index, e);
            }
        }
        if let Some(p) = meta.last_purged {
            log.retain(|&i, _| i > p.index);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let mut inner = LogInner { dir: dir.to_path_buf(), meta, log, file };
        inner.rewrite()?;
        Ok(LogStore { inner: Arc::new(Mutex::new(inner)) })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        Ok(lock(&self.inner).log.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let g = lock(&self.inner);
        let last = g.log.values().next_back().map(|e| e.log_id).or(g.meta.last_purged);
        Ok(LogState { last_purged_log_id: g.meta.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SErr> {
        let mut g = lock(&self.inner);
        g.meta.vote = Some(*vote);
        g.save_meta().map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SErr> {
        Ok(lock(&self.inner).meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SErr> {
        let mut g = lock(&self.inner);
        g.meta.committed = committed;
        g.save_meta().map_err(io_write)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SErr> {
        Ok(lock(&self.inner).meta.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = {
            let mut g = lock(&self.inner);
            let mut text = Vec::new();
            let mut added = Vec::new();
            for e in entries {
                serde_json::to_writer(&mut text, &e).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
                text.push(b'\n');
                added.push(e);
            }
            let r = g.file.write_all(&text).and_then(|_| g.file.sync_data());
            if r.is_ok() {
                for e in added {
                    g.log.insert(e.log_id.index, e);
                }
            }
            r
        };
        let failed = result.as_ref().err().map(|e| StorageIOError::write_logs(AnyError::new(e)));
        callback.log_io_completed(result);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        let mut g = lock(&self.inner);
        g.log.retain(|&i, _| i < log_id.index);
        g.rewrite().map_err(io_write)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        let mut g = lock(&self.inner);
        g.meta.last_purged = Some(log_id);
        g.save_meta().map_err(io_write)?;
        g.log.retain(|&i, _| i > log_id.index);
        g.rewrite().map_err(io_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;

    use crate::cluster::raft::tests::DirGuard;

    #[test]
    fn log_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("damselfly-raft-{}", crate::cluster::identity::random_id()));
        let _g = DirGuard(dir.clone());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut log = LogStore::open(&dir).unwrap();
            let vote = Vote::new(3, 7);
            log.save_vote(&vote).await.unwrap();
            log.save_committed(Some(LogId::new(openraft::CommittedLeaderId::new(3, 7), 1))).await.unwrap();
            {
                let mut g = lock(&log.inner);
                let e = Entry::<TypeConfig> { log_id: LogId::new(openraft::CommittedLeaderId::new(3, 7), 1), payload: EntryPayload::Blank };
                let mut line = serde_json::to_vec(&e).unwrap();
                line.push(b'\n');
                g.file.write_all(&line).unwrap();
                // A torn second entry, as after a crash mid-append.
                g.file.write_all(b"{\"log_id\":").unwrap();
            }
            drop(log);
            let mut log = LogStore::open(&dir).unwrap();
            assert_eq!(log.read_vote().await.unwrap(), Some(vote));
            assert_eq!(log.read_committed().await.unwrap().map(|l| l.index), Some(1));
            let st = log.get_log_state().await.unwrap();
            assert_eq!(st.last_log_id.map(|l| l.index), Some(1));
        });
    }
}
