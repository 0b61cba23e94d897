//! The journal's files on disk: where they live (`Layout`) and the
//! manifest naming them in order (`Manifest`, Redis 7's format).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::shard::Engine;

/// The files of one journal: `dir` is `<dir>/<appenddirname>`, `name` the
/// `appendfilename` they are all named after.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub base: Option<(String, u64)>,
    /// Increment files, oldest first.
    pub incrs: Vec<(String, u64)>,
}

impl Manifest {
    /// Parses a manifest's text (Redis 7's format).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let field = |k: &str| f.iter().position(|w| *w == k).and_then(|i| f.get(i + 1)).copied();
            let (Some(file), Some(seq), Some(kind)) = (field("file"), field("seq"), field("type")) else {
                return Err(format!("manifest line {}: expected 'file <name> seq <n> type <b|i|h>'", n + 1));
            };
            if file.contains('/') {
                return Err(format!("manifest line {}: file names must not contain '/'", n + 1));
            }
            let seq: u64 = seq.parse().map_err(|_| format!("manifest line {}: bad seq", n + 1))?;
            match kind {
                "b" => m.base = Some((file.to_string(), seq)),
                "i" => m.incrs.push((file.to_string(), seq)),
                "h" => {}
                _ => return Err(format!("manifest line {}: unknown type '{kind}'", n + 1)),
            }
        }
        Ok(m)
    }

    pub fn text(&self) -> String {
        let mut t = String::new();
        if let Some((f, s)) = &self.base {
            t.push_str(&format!("file {f} seq {s} type b\n"));
        }
        for (f, s) in &self.incrs {
            t.push_str(&format!("file {f} seq {s} type i\n"));
        }
        t
    }

    pub fn next_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(1, |(_, s)| s + 1)
    }
}

/// Where the journal lives.
#[derive(Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub name: String,
}

impl Layout {
    pub fn from_config(engine: &Engine) -> Layout {
        let cfg = &engine.cfg;
        let dir = Path::new(&*cfg.dir.lock().unwrap_or_else(|e| e.into_inner())).join(cfg.appenddirname.as_str());
        Layout { dir, name: cfg.appendfilename.clone() }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.name))
    }

    pub fn base_name(&self, seq: u64) -> String {
        format!("{}.{seq}.base.rdb", self.name)
    }

    /// A base file of commands (`aof-use-rdb-preamble no`).
    pub fn commands_base_name(&self, seq: u64) -> String {
        format!("{}.{seq}.base.aof", self.name)
    }

    pub fn incr_name(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.name)
    }

    pub fn read_manifest(&self) -> Result<Option<Manifest>, String> {
        match std::fs::read_to_string(self.manifest_path()) {
            Ok(t) => Manifest::parse(&t).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", self.manifest_path().display())),
        }
    }

    /// Takes over a Redis 6 journal (one `<appendfilename>` file in the
    /// data directory, no manifest) as this journal's base, as Redis 7
    /// does (aofUpgradePrepare): the directory and a manifest naming the
    /// file come first, then the file moves in, so a crash in between is
    /// taken over again at the next start. Whether it did.
    pub fn take_over_single_file(&self) -> Result<bool, String> {
        let Some(old) = self.dir.parent().map(|root| root.join(&self.name)) else { return Ok(false) };
        if !old.is_file() {
            return Ok(false);
        }
        let inside = self.dir.join(&self.name);
        let again = match self.read_manifest()? {
            None => true,
            Some(m) => m.incrs.is_empty() && m.base.as_ref().is_some_and(|(b, _)| *b == self.name) && !inside.exists(),
        };
        if !again {
            return Ok(false);
        }
        let io = |e: std::io::Error| format!("taking over {}: {e}", old.display());
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        self.write_manifest(&Manifest { base: Some((self.name.clone(), 1)), incrs: Vec::new() })?;
        std::fs::rename(&old, &inside).map_err(io)?;
        super::writer::sync_dir(&inside);
        super::writer::sync_dir(&old);
        tracing::info!("Successfully migrated an old-style AOF into the AOF directory ({})", inside.display());
        Ok(true)
    }

    /// Replaces the manifest atomically.
    pub fn write_manifest(&self, m: &Manifest) -> Result<(), String> {
        let tmp = self.dir.join(format!("temp-{}.manifest", self.name));
        let io = |e: std::io::Error| format!("writing the manifest in {}: {e}", self.dir.display());
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(m.text().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, self.manifest_path()).map_err(io)?;
        super::writer::sync_dir(&self.manifest_path());
        Ok(())
    }
}
