//! Node-wide scripting state, one of the registries the `Engine` owns: the
//! script cache (SHA1 -> source, shared by every connection and shard; at
//! most `EVAL_SCRIPTS_MAX` scripts cached by EVAL alone, the least recently
//! used going first, as Redis 7.4 bounds it), the
//! function libraries, and the registry of scripts running past the time
//! limit (for BUSY and SCRIPT/FUNCTION KILL). The Lua side is `scripting`.
//!
//! None of it is on the per-command path: each shard thread's VM keeps its
//! own copy of what it has compiled and checks a generation counter (one
//! atomic load) to notice SCRIPT FLUSH or a library change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

/// A script's SHA1 digest as 40 lower-case hex digits.
pub type Sha = [u8; 40];

/// The most scripts EVAL keeps cached that SCRIPT LOAD did not load (Redis
/// 7.4's limit; 7.0 kept every one, so distinct EVALs grew the server for
/// good). Past it, the one used least recently is evicted: an EVALSHA of it
/// gets NOSCRIPT, and clients send the body again, as they must after
/// SCRIPT FLUSH or a restart.
pub const EVAL_SCRIPTS_MAX: usize = 500;

/// A cached EVAL script.
pub struct ScriptInfo {
    pub body: Bytes,
    /// `flags::*` from its shebang line.
    pub flags: u32,
    /// Set once the script has touched keys on a shard other than the one
    /// its declared keys live on: from then on it runs under the wide lock
    /// straight away.
    pub wide: AtomicBool,
    /// Cached by EVAL only (SCRIPT LOAD never loaded it): may be evicted.
    evictable: AtomicBool,
    /// When it last ran (coarse Unix ms), for eviction.
    used: AtomicU64,
    /// Gone from the node's cache: a VM that meets it drops its copy.
    pub evicted: AtomicBool,
}

impl ScriptInfo {
    /// Notes a run (a store only when the clock moved, so the scripts all
    /// shards run do not bounce a cache line on every call).
    #[inline]
    pub fn touch(&self) {
        let now = crate::util::coarse_now_ms();
        if self.used.load(Relaxed) != now {
            self.used.store(now, Relaxed);
        }
    }
}

/// The node's scripts, and which of them EVAL alone cached.
#[derive(Default)]
struct ScriptCache {
    map: HashMap<Sha, Arc<ScriptInfo>>,
    evictable: HashSet<Sha>,
}

/// A function registered by a library.
pub struct FunctionInfo {
    pub name: String,
    pub library: String,
    pub flags: u32,
    pub description: Option<String>,
    pub wide: AtomicBool,
}

/// A loaded function library.
#[derive(Clone)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<Arc<FunctionInfo>>,
}

#[derive(Default, Clone)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    /// By lowercase name: FCALL finds a function whatever the case, as
    /// Redis's function dictionary compares names.
    pub funcs: HashMap<String, Arc<FunctionInfo>>,
}

/// The `funcs` key of a function name.
pub fn function_key(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

impl Libraries {
    /// Bytes the libraries hold outside the VMs (code, names, function
    /// entries): INFO's `used_memory_functions`.
    pub fn memory(&self) -> usize {
        let libs: usize = self.libs.iter().map(|(k, l)| k.len() + l.name.len() + l.code.len() + std::mem::size_of::<Library>()).sum();
        let funcs: usize = self
            .funcs
            .iter()
            .map(|(k, f)| {
                k.len()
                    + f.name.len()
                    + f.library.len()
                    + f.description.as_ref().map_or(0, String::len)
                    + std::mem::size_of::<FunctionInfo>()
            })
            .sum();
        libs + funcs
    }

    /// Adds a library (replacing one of the same name when `replace`);
    /// errors with Redis's texts.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        let old = self.libs.get(&lib.name);
        if old.is_some() && !replace {
            return Err(format!("Library '{}' already exists", lib.name));
        }
        for f in &lib.functions {
            if let Some(existing) = self.funcs.get(&*function_key(&f.name)) {
                if existing.library != lib.name {
                    return Err(format!("Function {} already exists", f.name));
                }
            }
        }
        self.remove(&lib.name);
        for f in &lib.functions {
            self.funcs.insert(function_key(&f.name).into_owned(), f.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in &lib.functions {
            self.funcs.remove(&*function_key(&f.name));
        }
        Some(lib)
    }
}

/// A script running past the time limit.
pub struct Busy {
    pub id: u64,
    pub kill: Arc<AtomicBool>,
    pub wrote: Arc<AtomicBool>,
    /// The function's name, or `None` for an EVAL script.
    pub function: Option<String>,
    /// The command that started it (FUNCTION STATS).
    pub command: Vec<Bytes>,
    pub started: Instant,
    /// The shard thread it runs on (blocked until it ends).
    pub thread: usize,
}

/// Outcome of SCRIPT KILL / FUNCTION KILL.
#[derive(Debug, PartialEq, Eq)]
pub enum KillResult {
    Killed,
    NotBusy,
    Unkillable,
    /// SCRIPT KILL while a function runs, or FUNCTION KILL while a script
    /// runs: the BUSY text that names the right command.
    WrongKind,
}

pub struct Scripting {
    /// Whether a command of this name exists (`redis.acl_check_cmd`). The
    /// command table sits above the scripting layer, so the node hands
    /// this in when it builds the registry.
    pub command_exists: fn(&[u8]) -> bool,
    scripts: Mutex<ScriptCache>,
    /// Scripts evicted from the cache (INFO's `evicted_scripts`).
    pub evicted: AtomicU64,
    /// Bumped by SCRIPT FLUSH: VMs drop what they compiled.
    pub script_gen: AtomicU64,
    libraries: Mutex<Libraries>,
    /// Bumped by every library change.
    pub lib_gen: AtomicU64,
    busy: Mutex<Vec<Busy>>,
    /// Number of scripts past the time limit; read by every command.
    pub busy_count: AtomicUsize,
    next_busy: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scripting {
    pub fn new(command_exists: fn(&[u8]) -> bool) -> Arc<Scripting> {
        Arc::new(Scripting {
            command_exists,
            scripts: Default::default(),
            evicted: Default::default(),
            script_gen: Default::default(),
            libraries: Default::default(),
            lib_gen: Default::default(),
            busy: Default::default(),
            busy_count: Default::default(),
            next_busy: Default::default(),
        })
    }

    pub fn script(&self, sha: &Sha) -> Option<Arc<ScriptInfo>> {
        lock(&self.scripts).map.get(sha).cloned()
    }

    /// Caches a script (already known to compile) for EVAL or, `load`, for
    /// SCRIPT LOAD (never evicted, even if EVAL cached it first); returns
    /// the cached entry. The body is copied: the argument is a slice of the
    /// input buffer it arrived in, which it would otherwise keep alive whole.
    pub fn add_script(&self, sha: Sha, body: Bytes, flags: u32, load: bool) -> Arc<ScriptInfo> {
        let mut c = lock(&self.scripts);
        if let Some(s) = c.map.get(&sha).cloned() {
            if load && s.evictable.swap(false, Relaxed) {
                c.evictable.remove(&sha);
            }
            s.touch();
            return s;
        }
        let info = Arc::new(ScriptInfo {
            body: Bytes::copy_from_slice(&body),
            flags,
            wide: AtomicBool::new(false),
            evictable: AtomicBool::new(!load),
            used: AtomicU64::new(crate::util::coarse_now_ms()),
            evicted: AtomicBool::new(false),
        });
        c.map.insert(sha, info.clone());
        if !load {
            c.evictable.insert(sha);
            while c.evictable.len() > EVAL_SCRIPTS_MAX {
                // The least recently run, never the one just added.
                let oldest = c.evictable.iter().filter(|s| **s != sha).min_by_key(|s| c.map.get(*s).map_or(0, |i| i.used.load(Relaxed)));
                let Some(old) = oldest.copied() else { break };
                c.evictable.remove(&old);
                if let Some(gone) = c.map.remove(&old) {
                    gone.evicted.store(true, Relaxed);
                }
                self.evicted.fetch_add(1, Relaxed);
            }
        }
        info
    }

    pub fn script_exists(&self, sha: &Sha) -> bool {
        lock(&self.scripts).map.contains_key(sha)
    }

    pub fn flush_scripts(&self) {
        *lock(&self.scripts) = ScriptCache::default();
        self.script_gen.fetch_add(1, Relaxed);
    }

    pub fn scripts_count(&self) -> usize {
        lock(&self.scripts).map.len()
    }

    /// Bytes the cached scripts hold outside the VMs (their bodies and
    /// entries): INFO's `used_memory_scripts_eval`.
    pub fn scripts_memory(&self) -> usize {
        let c = lock(&self.scripts);
        let entry = std::mem::size_of::<(Sha, Arc<ScriptInfo>)>() + std::mem::size_of::<ScriptInfo>();
        c.map.values().map(|i| i.body.len() + entry).sum::<usize>() + c.evictable.len() * std::mem::size_of::<Sha>()
    }

    pub fn libraries(&self) -> MutexGuard<'_, Libraries> {
        lock(&self.libraries)
    }

    /// Call after changing the libraries.
    pub fn libraries_changed(&self) {
        self.lib_gen.fetch_add(1, Relaxed);
    }

    pub fn function(&self, name: &str) -> Option<(Arc<FunctionInfo>, Bytes)> {
        let libs = lock(&self.libraries);
        let f = libs.funcs.get(&*function_key(name))?.clone();
        let code = libs.libs.get(&f.library)?.code.clone();
        Some((f, code))
    }

    /// Registers a script that has run past the time limit.
    pub fn mark_busy(&self, function: Option<String>, command: Vec<Bytes>, started: Instant, wrote: bool, thread: usize) -> Busy {
        let id = self.next_busy.fetch_add(1, Relaxed);
        let kill = Arc::new(AtomicBool::new(false));
        let wrote = Arc::new(AtomicBool::new(wrote));
        let mine =
            Busy { id, kill: kill.clone(), wrote: wrote.clone(), function: function.clone(), command: command.clone(), started, thread };
        lock(&self.busy).push(Busy { id, kill, wrote, function, command, started, thread });
        self.busy_count.fetch_add(1, Relaxed);
        mine
    }

    pub fn unmark_busy(&self, id: u64) {
        let mut b = lock(&self.busy);
        let before = b.len();
        b.retain(|x| x.id != id);
        if b.len() < before {
            self.busy_count.fetch_sub(1, Relaxed);
        }
    }

    /// Shard threads blocked by a busy script: new connections go elsewhere,
    /// so a client can still reach SCRIPT KILL.
    pub fn busy_threads(&self) -> Vec<usize> {
        lock(&self.busy).iter().map(|b| b.thread).collect()
    }

    /// Whether the busy script (if any) is a function: picks the BUSY text.
    pub fn busy_is_function(&self) -> bool {
        lock(&self.busy).first().is_some_and(|b| b.function.is_some())
    }

    /// The busy function's name, command and run time (FUNCTION STATS
    /// reports functions only, not EVAL scripts).
    pub fn running_function(&self) -> Option<(String, Vec<Bytes>, u128)> {
        let b = lock(&self.busy);
        let f = b.iter().find(|b| b.function.is_some())?;
        Some((f.function.clone().unwrap_or_default(), f.command.clone(), f.started.elapsed().as_millis()))
    }

    /// SCRIPT KILL (`functions == false`) or FUNCTION KILL.
    pub fn kill(&self, functions: bool) -> KillResult {
        let b = lock(&self.busy);
        if b.is_empty() {
            return KillResult::NotBusy;
        }
        if b.iter().any(|x| x.wrote.load(Relaxed)) {
            return KillResult::Unkillable;
        }
        if b.iter().any(|x| x.function.is_some() != functions) {
            return KillResult::WrongKind;
        }
        for x in b.iter() {
            x.kill.store(true, Relaxed);
        }
        KillResult::Killed
    }
}
