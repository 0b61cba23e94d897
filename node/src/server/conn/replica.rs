//! A replica's connection after PSYNC or SYNC: what its feed
//! (`shard::repl::Feed`) owes it, in order — `+FULLRESYNC <id> <offset>`,
//! the snapshot as an RDB payload (`$<len>\r\n<rdb>`), then the stream.

use std::sync::Arc;

use crate::shard::repl::{Feed, Phase};
use crate::shard::Engine;

/// What to write next.
pub enum Next {
    Bytes(Vec<u8>),
    /// The feed was dropped: close the connection.
    Close(String),
}

/// Waits for the next bytes owed to a replica (never, for a connection
/// that is not one).
pub async fn next(feed: &Option<Arc<Feed>>, engine: &Engine) -> Next {
    let Some(feed) = feed else { return std::future::pending().await };
    loop {
        let changed = feed.changed.notified();
        if let Some(n) = take(feed, engine) {
            return n;
        }
        changed.await;
    }
}

fn take(feed: &Feed, engine: &Engine) -> Option<Next> {
    let mut s = feed.lock();
    if s.phase == Phase::Dropped {
        return Some(Next::Close(s.why.clone()));
    }
    if s.phase != Phase::WaitCut && !s.told {
        s.told = true;
        return Some(Next::Bytes(format!("+FULLRESYNC {} {}\r\n", engine.repl.replid(), s.start).into_bytes()));
    }
    match s.phase {
        Phase::RdbReady => {
            let path = s.rdb.take()?;
            let rdb = std::fs::read(&path);
            let _ = std::fs::remove_file(&path);
            match rdb {
                Ok(rdb) => {
                    s.phase = Phase::Online;
                    let mut out = format!("${}\r\n", rdb.len()).into_bytes();
                    out.extend_from_slice(&rdb);
                    // What the stream has so far follows at once.
                    out.append(&mut s.pending);
                    Some(Next::Bytes(out))
                }
                Err(e) => {
                    s.phase = Phase::Dropped;
                    Some(Next::Close(format!("reading the snapshot {}: {e}", path.display())))
                }
            }
        }
        Phase::Online if !s.pending.is_empty() => Some(Next::Bytes(std::mem::take(&mut s.pending))),
        _ => None,
    }
}

/// The connection of a replica closes: it is fed no more.
pub fn gone(feed: Option<Arc<Feed>>, engine: &Engine) {
    let Some(feed) = feed else { return };
    engine.repl.remove(&feed);
    let mut s = feed.lock();
    s.phase = Phase::Dropped;
    if let Some(p) = s.rdb.take() {
        let _ = std::fs::remove_file(p);
    }
}
