//! Writes one snapshot file from the records the shards stream to it, or
//! streams it to replicas without a file (a diskless sync).
//!
//! Runs on its own thread so disk and socket waits never stall a shard. The file is
//! written under a temporary name next to the target, fsynced, renamed
//! over the target, and the directory fsynced: a crash at any moment
//! leaves either the previous file or the new one, never a torn file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::shard::journal::Feeds;
use crate::shard::snapshot::Part;
use crate::store::rdb;

/// What goes into the file besides the shards' records.
pub struct Header {
    pub aux: Vec<(&'static str, Vec<u8>)>,
    /// Function library codes.
    pub functions: Vec<bytes::Bytes>,
}

/// Streams a file: the header, then every shard's records until all
/// `shards` have reported `Done`. Returns the number of keys written.
/// Dropping `parts` on failure tells the shards to stop.
pub fn write(target: &Path, header: Header, mut parts: mpsc::Receiver<Part>, shards: usize) -> Result<u64, String> {
    let tmp = temp_name(target);
    let result = write_to(&tmp, header, &mut parts, shards).and_then(|keys| {
        std::fs::rename(&tmp, target).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), target.display()))?;
        sync_dir(target);
        Ok(keys)
    });
    if result.is_err() {
        parts.close();
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `temp-<pid>.rdb` in the target's directory, as Redis names it.
fn temp_name(target: &Path) -> PathBuf {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join(format!("temp-{}.rdb", std::process::id()))
}

fn write_to(tmp: &Path, header: Header, parts: &mut mpsc::Receiver<Part>, shards: usize) -> Result<u64, String> {
    let file = File::create(tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let io = |e: std::io::Error| format!("writing {}: {e}", tmp.display());
    let (keys, out) = write_rdb(BufWriter::with_capacity(1 << 20, file), header, parts, shards, io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(keys)
}

/// Writes the RDB (header, every shard's records, EOF, checksum) to `out`;
/// returns the keys written and `out`.
fn write_rdb<W: Write>(
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
            Part::Records { db, bytes } => {
                if current_db != Some(db) {
                    buf.clear();
                    rdb::write_select_db(&mut buf, db);
                    w.put(&buf).map_err(&io)?;
                    current_db = Some(db);
                }
                w.put(&bytes).map_err(&io)?;
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

/// A diskless sync: streams the snapshot to `feeds` as Redis's
/// `$EOF:<mark>\r\n<rdb><mark>` payload (one random 40-character mark for
/// all of them), in chunks, waiting for the slowest replica to take them
/// (`Feed::push_payload`; one that takes nothing for `patience` is
/// dropped). Returns the keys written; fails when no replica is left.
pub fn stream(header: Header, mut parts: mpsc::Receiver<Part>, shards: usize, feeds: Feeds, patience: Duration) -> Result<u64, String> {
    let mark = crate::shard::repl::random_id();
    let mut out = FanOut { feeds, buf: format!("$EOF:{mark}\r\n").into_bytes(), patience };
    let io = |e: std::io::Error| format!("streaming to the replicas: {e}");
    let result = write_rdb(&mut out, header, &mut parts, shards, io).and_then(|(keys, out)| {
        out.buf.extend_from_slice(mark.as_bytes());
        out.send(true).map_err(io)?;
        Ok(keys)
    });
    if result.is_err() {
        parts.close();
    }
    result
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
struct Checksummed<W> {
    out: W,
    crc: rdb::Crc64,
}

impl<W: Write> Checksummed<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.out.write_all(b)
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
