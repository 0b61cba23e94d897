//! A replica's connection after PSYNC or SYNC: what its feed
//! (`shard::repl::Feed`) owes it, in order — `+FULLRESYNC <id> <offset>`,
//! the snapshot (from its unlinked temporary file as `$<len>\r\n<rdb>`, a
//! chunk at a time, or, diskless, the `$EOF:<mark>\r\n<rdb><mark>` bytes
//! the snapshot's writer hands over as it makes them), then the stream.
//! While the replica waits for its snapshot it gets a newline every
//! second, as Redis sends: the link looks alive.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crate::shard::repl::{Feed, Phase};
use crate::shard::Engine;

/// The snapshot is sent this many bytes at a time.
const RDB_CHUNK: u64 = 1 << 20;
/// A replica waiting for its snapshot hears a newline this often.
const KEEPALIVE: Duration = Duration::from_secs(1);

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
        if tokio::time::timeout(KEEPALIVE, changed).await.is_err() && waiting_for_snapshot(feed) {
            return Next::Bytes(b"\n".to_vec());
        }
    }
}

/// Before `+FULLRESYNC`, or before a file payload's `$<len>`, a newline is
/// ignored by the replica; inside a diskless payload it would not be.
fn waiting_for_snapshot(feed: &Feed) -> bool {
    let s = feed.lock();
    s.phase == Phase::WaitCut || (s.phase == Phase::WaitRdb && !s.diskless)
}

fn take(feed: &Feed, engine: &Engine) -> Option<Next> {
    let mut s = feed.lock();
    if s.phase == Phase::Dropped {
        // Ended (`Feed::end`): what it was owed goes first.
        if !s.pending.is_empty() && !s.await_ack {
            return Some(Next::Bytes(std::mem::take(&mut s.pending)));
        }
        return Some(Next::Close(s.why.clone()));
    }
    if s.phase != Phase::WaitCut && !s.told {
        s.told = true;
        return Some(Next::Bytes(format!("+FULLRESYNC {} {}\r\n", engine.repl.replid(), s.start).into_bytes()));
    }
    if s.phase != Phase::WaitCut && !s.payload.is_empty() {
        // Diskless: the payload's bytes as the writer made them.
        let out = std::mem::take(&mut s.payload);
        drop(s);
        feed.room.notify_all();
        return Some(Next::Bytes(out));
    }
    match s.phase {
        Phase::RdbReady => {
            // The snapshot goes in chunks (the file is unlinked): a
            // replica's sync never holds the whole of it in memory.
            let s = &mut *s;
            let (f, left) = s.sending.as_mut()?;
            let mut out = if s.header_sent { Vec::new() } else { format!("${left}\r\n").into_bytes() };
            let n = (*left).min(RDB_CHUNK) as usize;
            let at = out.len();
            out.resize(at + n, 0);
            if let Err(e) = f.read_exact(&mut out[at..]) {
                s.phase = Phase::Dropped;
                s.sending = None;
                return Some(Next::Close(format!("reading the snapshot: {e}")));
            }
            *left -= n as u64;
            s.header_sent = true;
            if *left == 0 {
                s.sending = None;
                s.phase = Phase::Online;
                // Its silence counts from now (`repl-timeout`).
                feed.acked_ms.store(crate::util::now_ms(), std::sync::atomic::Ordering::Relaxed);
                // What the stream has so far follows at once.
                out.append(&mut s.pending);
            }
            Some(Next::Bytes(out))
        }
        Phase::Online if !s.await_ack && !s.pending.is_empty() => Some(Next::Bytes(std::mem::take(&mut s.pending))),
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
    s.payload = Vec::new();
    drop(s);
    // A diskless snapshot's writer stops waiting for this one.
    feed.room.notify_all();
}
