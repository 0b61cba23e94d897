//! A rewrite's base file as commands (`aof-use-rdb-preamble no`): the
//! snapshot just written is read back and each key becomes the command
//! that sets its whole state (SET, or RESTORE of a payload, with its
//! expiry) after the SELECT of its database, the libraries FUNCTION LOADs
//! before them, as Redis's rewrite writes commands. redis-server and
//! redis-check-aof read it as any AOF; loading tells the forms apart
//! (`aof_load::load_base`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use crate::shard::journal::{command, state_command};
use crate::store::rdb::{Item, Reader};

/// Writes `target` from the snapshot file `snapshot` (then removed):
/// through a temporary file, fsynced and renamed, as every file here.
pub fn from_snapshot(snapshot: &Path, target: &Path) -> Result<(), String> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!("temp-{name}"));
    let written = write(snapshot, &tmp)
        .and_then(|()| std::fs::rename(&tmp, target).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), target.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let _ = std::fs::remove_file(snapshot);
    written?;
    super::writer::sync_dir(target);
    Ok(())
}

fn write(snapshot: &Path, to: &Path) -> Result<(), String> {
    let input = File::open(snapshot).map_err(|e| format!("opening {}: {e}", snapshot.display()))?;
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, input)).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("writing {}: {e}", to.display());
    let file = File::create(to).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let (mut db, mut selected) = (0u32, None);
    while let Some(item) = reader.next().map_err(|e| e.to_string())? {
        buf.clear();
        match item {
            Item::Function(code) => command(&mut buf, &[b"FUNCTION", b"LOAD", &code]),
            Item::SelectDb(n) => db = n,
            Item::Entry { key, value, expire_at_ms, .. } => {
                if selected != Some(db) {
                    command(&mut buf, &[b"SELECT", db.to_string().as_bytes()]);
                    selected = Some(db);
                }
                state_command(&mut buf, &key, &value, expire_at_ms);
            }
            _ => {}
        }
        out.write_all(&buf).map_err(io)?;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}
