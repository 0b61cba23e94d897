//! The registry of connected clients, for CLIENT LIST / INFO / KILL. Each
//! connection owns an `Arc<ClientInfo>` it updates with relaxed atomics; the
//! registry's mutex is only taken on connect, disconnect and CLIENT calls.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::util::now_ms;

/// A command's name as the registry records it (CLIENT LIST's `cmd=`): the
/// name field of a static command declaration, by reference, so that it is
/// one word and a connection can store it per command with a relaxed
/// atomic. The command table provides the conversion from its declarations.
#[derive(Clone, Copy)]
pub struct CmdName(pub &'static &'static str);

pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created_ms: u64,
    pub last_ms: AtomicU64,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// The last command run (a `CmdName`; null = none).
    last_cmd: AtomicPtr<&'static str>,
    pub name: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    pub killed: AtomicBool,
    pub kill: Notify,
}

impl ClientInfo {
    pub fn set_last_cmd(&self, cmd: impl Into<CmdName>) {
        let CmdName(name) = cmd.into();
        self.last_cmd.store(std::ptr::from_ref(name).cast_mut(), Relaxed);
    }

    pub fn last_cmd(&self) -> &'static str {
        let p = self.last_cmd.load(Relaxed);
        if p.is_null() {
            return "NULL";
        }
        // SAFETY: the only non-null values stored come from a `CmdName`'s
        // `&'static &'static str`.
        unsafe { *p }
    }

    pub fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One line of CLIENT LIST / CLIENT INFO output.
    pub fn describe(&self) -> String {
        let now = now_ms();
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name(),
            now.saturating_sub(self.created_ms) / 1000,
            now.saturating_sub(self.last_ms.load(Relaxed)) / 1000,
            self.db.load(Relaxed),
            self.last_cmd(),
            self.resp.load(Relaxed),
            self.lib_name.lock().unwrap_or_else(|e| e.into_inner()),
            self.lib_ver.lock().unwrap_or_else(|e| e.into_inner()),
        )
    }
}

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    pub fn register(&self, addr: String, laddr: String) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let now = now_ms();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created_ms: now,
            last_ms: AtomicU64::new(now),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            name: Mutex::default(),
            lib_name: Mutex::default(),
            lib_ver: Mutex::default(),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Marks matching clients killed and wakes them; returns how many.
    pub fn kill(&self, pred: impl Fn(&ClientInfo) -> bool) -> usize {
        let mut n = 0;
        for c in self.list() {
            if pred(&c) {
                c.killed.store(true, Relaxed);
                c.kill.notify_one();
                n += 1;
            }
        }
        n
    }
}
