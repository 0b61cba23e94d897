//! The node's slow log (SLOWLOG): commands that ran at least
//! `slowlog-log-slower-than` µs, newest first, at most `slowlog-max-len`.
//! One mutex-protected ring for the node; only slow commands touch it.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// Redis's limits on what an entry keeps of a command line.
pub const MAX_ARGC: usize = 32;
pub const MAX_ARG_LEN: usize = 128;

#[derive(Clone, Debug)]
pub struct Entry {
    pub id: u64,
    /// Unix time (seconds) the entry was logged.
    pub time: u64,
    pub duration_us: u64,
    pub argv: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

#[derive(Default)]
pub struct SlowLog {
    inner: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    next_id: u64,
    entries: VecDeque<Entry>,
}

/// A command line as an entry keeps it: at most 32 arguments (the last one
/// kept replaced by `... (N more arguments)`), each at most 128 bytes (a
/// longer one cut, with `... (N more bytes)`), as Redis does.
pub fn trim_argv(args: &[Bytes]) -> Vec<Bytes> {
    let keep = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(keep);
    for (i, a) in args[..keep].iter().enumerate() {
        if keep != args.len() && i == keep - 1 {
            out.push(Bytes::from(format!("... ({} more arguments)", args.len() - keep + 1)));
        } else if a.len() > MAX_ARG_LEN {
            let mut v = a[..MAX_ARG_LEN].to_vec();
            v.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(Bytes::from(v));
        } else {
            // A copy: a slice would keep the whole input buffer it came in
            // alive for as long as the entry (megabytes, for a big command).
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

impl SlowLog {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a command line that ran `duration_us`; keeps the newest
    /// `max_len` entries.
    pub fn push(&self, args: &[Bytes], duration_us: u64, addr: &str, name: String, max_len: usize) {
        let argv = trim_argv(args);
        let time = crate::util::now_ms() / 1000;
        let mut r = self.ring();
        let id = r.next_id;
        r.next_id += 1;
        r.entries.push_front(Entry { id, time, duration_us, argv, addr: addr.to_string(), name });
        r.entries.truncate(max_len);
    }

    /// The newest `count` entries (all for `None`), newest first.
    pub fn get(&self, count: Option<usize>) -> Vec<Entry> {
        let r = self.ring();
        r.entries.iter().take(count.unwrap_or(usize::MAX)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.ring().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.ring().entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_trimmed_as_redis_does() {
        let args: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        let t = trim_argv(&args);
        assert_eq!(t.len(), 32);
        assert_eq!(&t[31][..], b"... (9 more arguments)");
        assert_eq!(&t[30][..], b"a30");
        let long = [Bytes::from(vec![b'x'; 130])];
        let t = trim_argv(&long);
        assert_eq!(t[0].len(), 128 + "... (2 more bytes)".len());
        assert!(t[0].ends_with(b"... (2 more bytes)"));
    }

    #[test]
    fn ring_keeps_the_newest() {
        let log = SlowLog::default();
        for i in 0..5 {
            log.push(&[Bytes::from(format!("c{i}"))], 1, "a:1", String::new(), 3);
        }
        let got = log.get(None);
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 3, 2]);
        assert_eq!(log.get(Some(1)).len(), 1);
        log.reset();
        assert!(log.is_empty());
    }
}
