//! Keyspace notifications (`notify-keyspace-events`), published on the
//! node's pub/sub registry as Redis does: `__keyspace@<db>__:<key>` with the
//! event as the message, `__keyevent@<db>__:<event>` with the key. Node-local
//! in cluster mode, as in Redis. The databases note what their write paths
//! did (`store::notify`); this module publishes `new`, `expired` and
//! `evicted` from the notes by itself, and a command names the event for
//! the keys it changed (`commands::notify`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::Shard;
use crate::config::{keyspace_events as ev, Config, CLASS_PUBSUB};
use crate::store::notify::{self, Note, NoteKind};

/// Turns the databases' noting on when some event would be published.
pub fn configure(cfg: &Config) {
    notify::set_on(ev::active(cfg.notify_keyspace_events.load(Relaxed)));
}

/// Events held back while a script runs on its fast path (a rolled-back
/// run publishes nothing): (channel, message).
pub type Held = Vec<(Bytes, Bytes)>;

impl Shard {
    /// Publishes `event` (of `class`) for `key` in database `db`, if the
    /// node publishes that class.
    pub fn notify(&mut self, db: usize, class: u32, event: &str, key: &[u8]) {
        let flags = self.cfg.notify_keyspace_events.load(Relaxed);
        // Nothing is published for what a file load or replay does.
        if flags & class == 0 || self.engine.as_ref().is_some_and(|e| e.saves.loading()) {
            return;
        }
        let mut msgs: [Option<(Bytes, Bytes)>; 2] = [None, None];
        if flags & ev::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            msgs[0] = Some((Bytes::from(ch), Bytes::copy_from_slice(event.as_bytes())));
        }
        if flags & ev::KEYEVENT != 0 {
            msgs[1] = Some((Bytes::from(format!("__keyevent@{db}__:{event}")), Bytes::copy_from_slice(key)));
        }
        for (ch, msg) in msgs.into_iter().flatten() {
            match &mut self.held_events {
                Some(held) => held.push((ch, msg)),
                None => self.publish_event(&ch, &msg),
            }
        }
    }

    fn publish_event(&self, ch: &Bytes, msg: &Bytes) {
        if let Some(e) = &self.engine {
            e.pubsub.publish(ch, msg, &self.cfg.output_limits[CLASS_PUBSUB]);
        }
    }

    /// Holds events back until `release_events` (a script on its fast
    /// path, whose changes may yet be rolled back).
    pub fn hold_events(&mut self) {
        if notify::on() && self.held_events.is_none() {
            self.held_events = Some(Vec::new());
        }
    }

    /// Publishes the held events, or drops them (`publish` false: the
    /// changes were rolled back).
    pub fn release_events(&mut self, publish: bool) {
        let Some(held) = self.held_events.take() else { return };
        if publish {
            for (ch, msg) in &held {
                self.publish_event(ch, msg);
            }
        }
    }

    /// Every database's notes, in order per database: (db, note).
    pub fn take_notes(&mut self) -> Vec<(usize, Note)> {
        let mut all = Vec::new();
        for (i, d) in self.dbs.iter_mut().enumerate() {
            if let Some(d) = d.as_deref_mut().filter(|d| d.has_notes()) {
                all.extend(d.take_notes().into_iter().map(|n| (i, n)));
            }
        }
        // Client-side caching: each noted key is invalidated as its change
        // is drained (every write path's notes pass here); broadcasts go
        // at the end of the job.
        if notify::tracking() {
            self.invalidate_keys(all.iter().map(|(_, n)| (&n.key[..], n.kind.by_command())));
        }
        all
    }

    /// Drops the events a failed command added.
    pub fn drop_extra_events(&mut self) {
        for d in self.dbs.iter_mut().flatten() {
            d.take_events();
        }
    }

    /// Publishes the events commands added (`Db::push_event`).
    pub fn publish_extra_events(&mut self) {
        for i in 0..self.dbs.len() {
            let Some(d) = self.dbs[i].as_deref_mut() else { continue };
            for (class, event, key) in d.take_events() {
                self.notify(i, class, event, &key);
            }
        }
    }

    /// Publishes the event a note carries by itself (`new`, `expired`,
    /// `evicted`); false for a change, whose event is its command's.
    pub fn notify_note(&mut self, db: usize, note: &Note) -> bool {
        let (class, event) = match note.kind {
            NoteKind::Changed => return false,
            NoteKind::New => (ev::NEW, "new"),
            NoteKind::Expired => (ev::EXPIRED, "expired"),
            NoteKind::Evicted => (ev::EVICTED, "evicted"),
        };
        self.notify(db, class, event, &note.key);
        true
    }

    /// Only client tracking reads the notes (keyspace events are off):
    /// the noted keys are invalidated and the notes dropped, without
    /// building a list per command or looking the keys up again.
    pub fn invalidate_notes(&mut self) {
        let mut notes = std::mem::take(&mut self.note_buf);
        for d in self.dbs.iter_mut().flatten() {
            d.move_notes_into(&mut notes);
            // Events added while keyspace events were still on.
            if d.has_notes() {
                d.take_events();
            }
        }
        self.invalidate_keys(notes.iter().map(|n| (&n.key[..], n.kind.by_command())));
        notes.clear();
        self.note_buf = notes;
    }

    /// Publishes what the notes say by themselves and drops the changes
    /// no command claimed (after every job; expiry and eviction end here).
    pub fn publish_notes(&mut self) {
        if !notify::on() {
            return;
        }
        if !notify::events() {
            self.invalidate_notes();
            return;
        }
        for (db, note) in self.take_notes() {
            self.notify_note(db, &note);
        }
        self.publish_extra_events();
    }
}
