//! Writes one snapshot file from the records the shards stream to it.
//!
//! Runs on its own thread so disk waits never stall a shard. The file is
//! written under a temporary name next to the target, fsynced, renamed
//! over the target, and the directory fsynced: a crash at any moment
//! leaves either the previous file or the new one, never a torn file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

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
    let mut w = Checksummed { out: BufWriter::with_capacity(1 << 20, file), crc: rdb::Crc64::new() };
    let io = |e: std::io::Error| format!("writing {}: {e}", tmp.display());
    let mut buf = Vec::with_capacity(4096);
    let aux: Vec<(&str, &[u8])> = header.aux.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    rdb::write_header(&mut buf, &aux);
    for code in &header.functions {
        rdb::write_function(&mut buf, code);
    }
    w.put(&buf).map_err(io)?;
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
                    w.put(&buf).map_err(io)?;
                    current_db = Some(db);
                }
                w.put(&bytes).map_err(io)?;
            }
            Part::Done { keys: k } => {
                done += 1;
                keys += k;
            }
        }
    }
    buf.clear();
    rdb::write_eof(&mut buf);
    w.put(&buf).map_err(io)?;
    let crc = w.crc.finish();
    w.out.write_all(&crc.to_le_bytes()).map_err(io)?;
    let file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(keys)
}

/// A writer that checksums what goes through it.
struct Checksummed {
    out: BufWriter<File>,
    crc: rdb::Crc64,
}

impl Checksummed {
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
