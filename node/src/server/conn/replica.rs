//! A replica's connection after PSYNC or SYNC: what its feed
//! (`shard::repl::Feed`) owes it, in order — `+FULLRESYNC <id> <offset>`,
//! the snapshot as an RDB payload (`$<len>\r\n<rdb>`, read from its
//! temporary file a chunk at a time), then the stream.

use std::io::Read;
use std::sync::Arc;

use crate::shard::repl::{Feed, Phase};
use crate::shard::Engine;

/// The snapshot is sent this many bytes at a time.
const RDB_CHUNK: u64 = 1 << 20;

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
            // The snapshot goes in chunks (the file is unlinked once open):
            // a replica's sync never holds the whole of it in memory.
            let mut out = Vec::new();
            if s.sending.is_none() {
                let path = s.rdb.take()?;
                let opened = std::fs::File::open(&path).and_then(|f| Ok((f.metadata()?.len(), f)));
                let _ = std::fs::remove_file(&path);
                match opened {
                    Ok((len, f)) => {
                        out = format!("${len}\r\n").into_bytes();
                        s.sending = Some((f, len));
                    }
                    Err(e) => {
                        s.phase = Phase::Dropped;
                        return Some(Next::Close(format!("reading the snapshot {}: {e}", path.display())));
                    }
                }
            }
            let (f, left) = s.sending.as_mut()?;
            let n = (*left).min(RDB_CHUNK) as usize;
            let at = out.len();
            out.resize(at + n, 0);
            if let Err(e) = f.read_exact(&mut out[at..]) {
                s.phase = Phase::Dropped;
                s.sending = None;
                return Some(Next::Close(format!("reading the snapshot: {e}")));
            }
            *left -= n as u64;
            if *left == 0 {
                s.sending = None;
                s.phase = Phase::Online;
                // What the stream has so far follows at once.
                out.append(&mut s.pending);
            }
            Some(Next::Bytes(out))
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
    s.sending = None;
    if let Some(p) = s.rdb.take() {
        let _ = std::fs::remove_file(p);
    }
}
