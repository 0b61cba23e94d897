//! Writes one snapshot file from the records the shards stream to it, or
//! streams it to replicas without a file (a diskless sync).
//!
//! Runs on its own thread so disk waits never stall a shard (a shard
//! writes to the file itself only what it must not hold: records past a
//! bound, a big value's record in chunks). The file is
//! written under a temporary name next to the target, fsynced, renamed
//! over the target, and the directory fsynced: a crash at any moment
//! leaves either the previous file or the new one, never a torn file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::shard::journal::Feeds;
use crate::shard::snapshot::Part;
use crate::store::rdb;
use crate::store::snapshot::RecordSink;

/// What goes into the file besides the shards' records.
pub struct Header {
    pub aux: Vec<(&'static str, Vec<u8>)>,
    /// Function library codes.
    pub functions: Vec<bytes::Bytes>,
}

/// The file being written: its writer thread appends what the shards
/// stream to it, and shard threads append straight to it what they must
/// not hold in memory (`store::snapshot::Direct`).
pub struct FileOut {
    /// None once finished or failed.
    w: Option<Checksummed>,
    tmp: PathBuf,
    /// The database the last records were of.
    db: Option<u32>,
    /// Records put before the header was written (a shard may start
    /// before the writer thread does).
    held: Vec<(u32, Vec<u8>)>,
    header_done: bool,
    error: Option<String>,
    scratch: Vec<u8>,
}

impl RecordSink for FileOut {
    fn put(&mut self, db: u32, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.header_done {
            return self.held.push((db, bytes.to_vec()));
        }
        self.append(db, bytes);
    }
}

impl FileOut {
    fn append(&mut self, db: u32, bytes: &[u8]) {
        let Some(w) = &mut self.w else { return };
        let mut put = |b: &[u8]| w.put(b);
        let mut result = Ok(());
        if self.db != Some(db) {
            self.scratch.clear();
            rdb::write_select_db(&mut self.scratch, db);
            result = put(&self.scratch);
            self.db = Some(db);
        }
        if let Err(e) = result.and_then(|()| put(bytes)) {
            self.fail(format!("writing {}: {e}", self.tmp.display()));
        }
    }

    fn fail(&mut self, e: String) {
        self.w = None;
        self.error.get_or_insert(e);
    }

    fn check(&self) -> Result<(), String> {
        self.error.clone().map_or(Ok(()), Err)
    }
}

/// Creates the temporary file a snapshot of `target` is written to
/// (`temp-<pid>.rdb` next to it, as Redis names it), fsynced every
/// `sync_every` bytes on the way when not 0 (`rdb-save-incremental-fsync`,
/// `aof-rewrite-incremental-fsync`: the kernel never holds much of it
/// unwritten, so the final fsync does not stall the disk for others).
pub fn open(target: &Path, sync_every: u64) -> Result<Arc<Mutex<FileOut>>, String> {
    let tmp = temp_name(target);
    let file = File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let file = SyncEvery { file, every: sync_every, unsynced: 0 };
    let w = Checksummed { out: BufWriter::with_capacity(1 << 20, file), crc: rdb::Crc64::new() };
    Ok(Arc::new(Mutex::new(FileOut { w: Some(w), tmp, db: None, held: Vec::new(), header_done: false, error: None, scratch: Vec::new() })))
}

fn lock(out: &Mutex<FileOut>) -> std::sync::MutexGuard<'_, FileOut> {
    out.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Streams the file `open` created: the header, then every shard's records
/// until all `shards` have reported `Done`; then renames it over `target`.
/// Returns the number of keys written. Dropping `parts` on failure tells
/// the shards to stop.
pub fn write(
    target: &Path,
    out: Arc<Mutex<FileOut>>,
    header: Header,
    mut parts: mpsc::Receiver<Part>,
    shards: usize,
) -> Result<u64, String> {
    let tmp = lock(&out).tmp.clone();
    let result = write_to(&out, header, &mut parts, shards).and_then(|keys| {
        std::fs::rename(&tmp, target).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), target.display()))?;
        sync_dir(target);
        Ok(keys)
    });
    if result.is_err() {
        parts.close();
        lock(&out).fail("abandoned".into());
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The RDB records of the string keys a shard left unencoded, in `out`
/// (cleared first; a big spare capacity is not kept).
fn encode_strings(frames: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if out.capacity() > 4 << 20 {
        *out = Vec::new();
    }
    rdb::deferred::encode(frames, out);
}

/// `temp-<pid>.rdb` in the target's directory, as Redis names it.
fn temp_name(target: &Path) -> PathBuf {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join(format!("temp-{}.rdb", std::process::id()))
}

fn write_to(out: &Mutex<FileOut>, header: Header, parts: &mut mpsc::Receiver<Part>, shards: usize) -> Result<u64, String> {
    {
        let mut f = lock(out);
        let mut buf = Vec::with_capacity(4096);
        let aux: Vec<(&str, &[u8])> = header.aux.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        rdb::write_header(&mut buf, &aux);
        for code in &header.functions {
            rdb::write_function(&mut buf, code);
        }
        if let Some(w) = &mut f.w {
            if let Err(e) = w.put(&buf) {
                let e = format!("writing {}: {e}", f.tmp.display());
                f.fail(e);
            }
        }
        f.header_done = true;
        for (db, bytes) in std::mem::take(&mut f.held) {
            f.append(db, &bytes);
        }
        f.check()?;
    }
    let (mut done, mut keys) = (0, 0);
    let mut encoded = Vec::new();
    while done < shards {
        let Some(part) = parts.blocking_recv() else {
            return Err("a shard stopped before writing all of its keys".into());
        };
        match part {
            Part::Records { db, bytes, strings } => {
                // Encoded before the file is locked: shards may be waiting
                // to write to it.
                encode_strings(&strings, &mut encoded);
                let mut f = lock(out);
                f.append(db, &bytes);
                if !encoded.is_empty() {
                    f.append(db, &encoded);
                }
                f.check()?;
            }
            Part::Done { keys: k } => {
                done += 1;
                keys += k;
            }
        }
    }
    let mut f = lock(out);
    f.check()?;
    let tmp = f.tmp.clone();
    let io = |e: std::io::Error| format!("writing {}: {e}", tmp.display());
    let Some(mut w) = f.w.take() else { return Err("the snapshot file was closed".into()) };
    // Shards still holding the file (they let go at their `Done`) write
    // nothing more.
    f.error = Some("finished".into());
    drop(f);
    let mut buf = Vec::new();
    rdb::write_eof(&mut buf);
    w.put(&buf).map_err(io)?;
    let crc = w.crc.finish();
    w.out.write_all(&crc.to_le_bytes()).map_err(io)?;
    let file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    file.file.sync_all().map_err(io)?;
    Ok(keys)
}

/// A diskless sync: streams the snapshot to `feeds` as Redis's
/// `$EOF:<mark>\r\n<rdb><mark>` payload (one random 40-character mark for
/// all of them), in chunks, waiting for the slowest replica to take them
/// (`Feed::push_payload`; one that takes nothing for `patience` is
/// dropped). The shards write nothing directly here (no `Direct`): a shard
/// thread must never wait for a replica. Returns the keys written; fails
/// when no replica is left.
pub fn stream(header: Header, mut parts: mpsc::Receiver<Part>, shards: usize, feeds: Feeds, patience: Duration) -> Result<u64, String> {
    let mark = crate::shard::repl::random_id();
    let out = FanOut { feeds, buf: format!("$EOF:{mark}\r\n").into_bytes(), patience };
    let io = |e: std::io::Error| format!("streaming to the replicas: {e}");
    let result = stream_rdb(out, header, &mut parts, shards, io).and_then(|(keys, mut out)| {
        out.buf.extend_from_slice(mark.as_bytes());
        out.send(true).map_err(io)?;
        Ok(keys)
    });
    if result.is_err() {
        parts.close();
    }
    result
}

/// Writes the RDB (header, every shard's records, EOF, checksum) to `out`;
/// returns the keys written and `out`.
fn stream_rdb<W: Write>(
    out: W,
    header: Header,
    parts: &mut mpsc::Receiver<Part>,
    shards: usize,
    io: impl Fn(std::io::Error) -> String,
) -> Result<(u64, W), String> {
    let mut w = Checksummed { out, crc: rdb::Crc64::new() };
    let mut buf = Vec::with_capacity(4096);
    let aux: Vec<(&str, &[u8])> = header.aux.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    rdb::write_header(&mut buf, &aux);
    for code in &header.functions {
        rdb::write_function(&mut buf, code);
    }
    w.put(&buf).map_err(&io)?;
    let mut current_db = None;
    let (mut done, mut keys) = (0, 0);
    while done < shards {
        let Some(part) = parts.blocking_recv() else {
            return Err("a shard stopped before writing all of its keys".into());
        };
        match part {
            Part::Records { db, bytes, strings } => {
                if current_db != Some(db) {
                    buf.clear();
                    rdb::write_select_db(&mut buf, db);
                    w.put(&buf).map_err(&io)?;
                    current_db = Some(db);
                }
                w.put(&bytes).map_err(&io)?;
                encode_strings(&strings, &mut buf);
                w.put(&buf).map_err(&io)?;
            }
            Part::Done { keys: k } => {
                done += 1;
                keys += k;
            }
        }
    }
    buf.clear();
    rdb::write_eof(&mut buf);
    w.put(&buf).map_err(&io)?;
    let crc = w.crc.finish();
    w.out.write_all(&crc.to_le_bytes()).map_err(&io)?;
    Ok((keys, w.out))
}

/// Payload bytes handed to the feeds at a time.
const PAYLOAD_CHUNK: usize = 64 * 1024;

/// Hands what is written to every live feed, a chunk at a time.
struct FanOut {
    feeds: Feeds,
    buf: Vec<u8>,
    patience: Duration,
}

impl FanOut {
    fn send(&mut self, last: bool) -> std::io::Result<()> {
        let mut alive = false;
        for f in self.feeds.iter() {
            alive |= f.push_payload(&self.buf, last, self.patience);
        }
        self.buf.clear();
        if !alive {
            return Err(std::io::Error::other("every replica of this sync has gone"));
        }
        Ok(())
    }
}

impl Write for FanOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= PAYLOAD_CHUNK {
            self.send(false)?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that checksums what goes through it.
struct Checksummed<W = BufWriter<SyncEvery>> {
    out: W,
    crc: rdb::Crc64,
}

impl<W: Write> Checksummed<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.out.write_all(b)
    }
}

/// A file fsynced each time `every` more bytes were written to it (0:
/// never on the way).
struct SyncEvery {
    file: File,
    every: u64,
    unsynced: u64,
}

impl Write for SyncEvery {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(b)?;
        self.unsynced += n as u64;
        if self.every != 0 && self.unsynced >= self.every {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Makes a rename in `path`'s directory durable (best effort: some file
/// systems cannot sync a directory).
pub(super) fn sync_dir(path: &Path) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
