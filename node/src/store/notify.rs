//! Keyspace notifications, the keyspace's part: while the node has any
//! turned on (`notify-keyspace-events`), or any client tracks keys
//! (client-side caching, `shard::tracking`), each database notes, in order, the
//! keys its write paths change, create, expire or evict (`Db::take_notes`).
//! The layers above turn the notes into events: the shard publishes `new`,
//! `expired` and `evicted` itself, and a command's declaration names the
//! event for the keys it changed.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::SmallBytes;

static ON: AtomicBool = AtomicBool::new(false);
static EVENTS: AtomicBool = AtomicBool::new(false);
static TRACKING: AtomicBool = AtomicBool::new(false);

/// Turns noting on or off for keyspace events.
pub fn set_on(on: bool) {
    EVENTS.store(on, Relaxed);
    ON.store(on || TRACKING.load(Relaxed), Relaxed);
}

/// Turns noting on or off for client tracking.
pub fn set_tracking(on: bool) {
    TRACKING.store(on, Relaxed);
    ON.store(on || EVENTS.load(Relaxed), Relaxed);
}

/// Whether databases note their changes.
#[inline]
pub fn on() -> bool {
    ON.load(Relaxed)
}

/// Whether keyspace events are on (else the notes serve tracking only).
#[inline]
pub fn events() -> bool {
    EVENTS.load(Relaxed)
}

/// Whether some client tracks keys.
#[inline]
pub fn tracking() -> bool {
    TRACKING.load(Relaxed)
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// A write path changed (or deleted) it.
    Changed,
    /// It was created.
    New,
    /// Its TTL passed and it was deleted.
    Expired,
    /// Eviction deleted it.
    Evicted,
}

impl NoteKind {
    /// Whether the command running made the change (an expiry or an
    /// eviction is nobody's: a broadcasting NOLOOP client hears of it
    /// even when its own command came upon it).
    pub fn by_command(self) -> bool {
        matches!(self, NoteKind::Changed | NoteKind::New)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub key: SmallBytes,
    pub kind: NoteKind,
}

/// Appends a note, folding a change into the note just before it when that
/// one is for the same key and already says it changed (one write path
/// often takes several steps: a TTL, then the value; or replaces a key by
/// deleting and creating it, which is no new key).
pub fn push(notes: &mut Vec<Note>, key: &[u8], kind: NoteKind) {
    if let Some(last) = notes.last() {
        let folds = match kind {
            NoteKind::Changed => matches!(last.kind, NoteKind::Changed | NoteKind::New),
            NoteKind::New => last.kind == NoteKind::Changed,
            _ => false,
        };
        if folds && &*last.key == key {
            return;
        }
    }
    notes.push(Note { key: SmallBytes::new(key), kind });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_changes_of_one_key_fold() {
        let mut n = Vec::new();
        push(&mut n, b"a", NoteKind::New);
        push(&mut n, b"a", NoteKind::Changed);
        push(&mut n, b"b", NoteKind::Changed);
        push(&mut n, b"b", NoteKind::Changed);
        push(&mut n, b"a", NoteKind::Changed);
        push(&mut n, b"a", NoteKind::New);
        push(&mut n, b"a", NoteKind::Expired);
        push(&mut n, b"a", NoteKind::New);
        let kinds: Vec<(&[u8], NoteKind)> = n.iter().map(|x| (&*x.key, x.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (&b"a"[..], NoteKind::New),
                (&b"b"[..], NoteKind::Changed),
                (&b"a"[..], NoteKind::Changed),
                (&b"a"[..], NoteKind::Expired),
                (&b"a"[..], NoteKind::New)
            ]
        );
    }
}
