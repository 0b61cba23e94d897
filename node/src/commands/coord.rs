//! The coordinator interface: what a command that is not one shard job runs
//! against. A `Coord` handler (RENAME across shards, SINTERSTORE, KEYS,
//! BLPOP, HELLO, EXEC, ...) sees the client's database, its reply buffer,
//! "hold these shards" and "run this on that shard", and, from a client,
//! the connection's session. The client connection (`server::conn`),
//! whose jobs travel to the shard threads, and a running script
//! (`scripting::exec`), which already holds every shard and runs its jobs
//! at once, implement it, and so does the node's own runner of such
//! commands from a primary or the journal (`internal`). So every command
//! has one handler, and a script reaches every command a client can.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::session::Session;
use super::CommandSpec;
use crate::error::CmdResult;
use crate::resp::Out;
use crate::shard::{Engine, Job, Shard, TxId};

/// A future that stays on the connection's thread.
pub type LocalFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What a coordinator handler returns: its result at once (most
/// connection commands), or a future to drive (anything that waits on a
/// shard or a client).
pub enum Flow<'a> {
    Done(CmdResult),
    Wait(LocalFut<'a, CmdResult>),
}

/// The handler of a command that coordinates shards or uses the
/// connection.
pub type CoordFn = for<'a> fn(&'a mut dyn Coord, &'a [Bytes]) -> Flow<'a>;

/// Declares a coordinator handler in a command table:
/// `handler!(|cx, args| ping(cx, args))` for one that finishes at once,
/// `handler!(async |cx, args| rename(cx, args, false))` for an async one.
#[macro_export]
macro_rules! handler {
    (async |$cx:ident, $args:ident| $body:expr) => {{
        fn h<'a>($cx: &'a mut dyn $crate::commands::Coord, $args: &'a [bytes::Bytes]) -> $crate::commands::Flow<'a> {
            $crate::commands::Flow::Wait(Box::pin($body))
        }
        h
    }};
    (|$cx:ident, $args:ident| $body:expr) => {{
        fn h<'a>($cx: &'a mut dyn $crate::commands::Coord, $args: &'a [bytes::Bytes]) -> $crate::commands::Flow<'a> {
            $crate::commands::Flow::Done($body)
        }
        h
    }};
}

/// The future of a job that ran at once (ready) or could not (never
/// ready): what a coordinator that runs its jobs in place returns.
pub fn finished(ran: bool) -> LocalFut<'static, ()> {
    if ran {
        Box::pin(std::future::ready(()))
    } else {
        Box::pin(std::future::pending())
    }
}

/// What a coordinator handler runs against. The provided methods are
/// those of a coordinator without a client (a script, the node's own
/// commands): no session, nothing to wait for, no EXEC, no cluster gate.
pub trait Coord {
    fn engine(&self) -> &Arc<Engine>;
    /// The client's selected database.
    fn db(&self) -> usize;
    fn set_db(&mut self, db: usize);
    /// The time keys expire against (a script keeps its start time).
    fn now(&self) -> u64;
    /// Where the reply goes (in the client's protocol).
    fn out(&mut self) -> &mut Out;
    /// The shard of the thread the command runs on.
    fn home(&self) -> usize;
    /// The transaction the command's jobs run under.
    fn tx_id(&self) -> TxId;
    /// Holds `shards` (ascending, duplicates allowed) until the command
    /// ends, so its jobs there see no one else's changes in between.
    fn lock<'a>(&'a mut self, shards: &'a [usize]) -> LocalFut<'a, ()>;
    /// Lets go of the shards `lock` took (before the command ends: to wait
    /// for something without holding them).
    fn release(&mut self);
    /// Runs `job` on `shard`, under the held locks. The future does not
    /// complete when the job cannot run (the node is stopping, or a script
    /// must start over holding every shard).
    fn send(&mut self, shard: usize, job: Job) -> LocalFut<'_, ()>;
    /// Runs several jobs (on distinct shards) at once.
    fn send_many(&mut self, jobs: Vec<(usize, Job)>) -> LocalFut<'_, ()>;
    /// The client connection's state; `None` inside a script.
    fn session(&mut self) -> Option<&mut Session> {
        None
    }
    /// The ACL user the command runs as, when its access to keys must be
    /// checked beyond the key specs (SORT's BY and GET patterns): the
    /// connection's user, or a script caller's restricted one (`None`: a
    /// script of an unrestricted user).
    fn acl_user(&self) -> Option<Arc<crate::shard::acl::User>>;
    /// Completes when the client hangs up (or is killed) while the command
    /// waits, and from then on at once; never inside a script. Input the
    /// client sends meanwhile is kept, in order, for after the command.
    fn client_closed(&mut self) -> LocalFut<'_, ()> {
        // Without a client, nobody hangs up.
        Box::pin(std::future::pending())
    }
    /// Whether the command may wait for data (not inside EXEC or a
    /// script, where blocking commands answer at once as if timed out).
    /// Asked only right before waiting: from a `true` answer until the
    /// command ends, the connection shows as blocked (CLIENT LIST's `b`).
    fn may_block(&self) -> bool {
        false
    }
    /// EXEC is running its queue (its shards stay held between commands).
    fn in_exec(&self) -> bool {
        false
    }
    fn set_exec(&mut self, _on: bool) {}
    /// Cluster mode: whether a migration's cut-over holds a slot of the
    /// command's keys.
    fn held(&self, _spec: &CommandSpec, _args: &[Bytes]) -> bool {
        false
    }
    /// Cluster mode: waits until no cut-over holds a slot of the command's
    /// keys, then checks its routing again (a redirect is the error).
    /// Keyspace events: the coordinator command now running (its jobs
    /// publish its events, `notify::wrap`), set around its handler by
    /// `run_command`.
    fn set_running(&mut self, cmd: Option<super::notify::Running>);
    fn after_cutover<'a>(&'a mut self, _spec: &'static CommandSpec, _args: &'a [Bytes]) -> LocalFut<'a, CmdResult> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl dyn Coord + '_ {
    /// Runs `f` on `shard` under the held locks and returns its result.
    pub async fn run_on<R: Send + 'static>(&mut self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        let slot = Arc::new(Mutex::new(None));
        let put = slot.clone();
        self.send(shard, Box::new(move |sh| *put.lock().unwrap_or_else(|e| e.into_inner()) = Some(f(sh)))).await;
        let got = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match got {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }

    /// Holds `shard` (as `lock`) and runs `f` there.
    pub async fn lock_run<R: Send + 'static>(&mut self, shard: usize, f: impl FnOnce(&mut Shard) -> R + Send + 'static) -> R {
        self.lock(&[shard]).await;
        self.run_on(shard, f).await
    }

    /// Runs `f` on every shard and returns the results in shard order.
    pub async fn broadcast<R: Send + 'static>(&mut self, f: impl Fn(&mut Shard) -> R + Send + Sync + Clone + 'static) -> Vec<R> {
        let n = self.engine().nshards();
        let slots: Arc<Mutex<Vec<Option<R>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
        let jobs = (0..n)
            .map(|s| {
                let (f, put) = (f.clone(), slots.clone());
                let job: Job = Box::new(move |sh| {
                    let r = f(sh);
                    put.lock().unwrap_or_else(|e| e.into_inner())[s] = Some(r);
                });
                (s, job)
            })
            .collect();
        self.send_many(jobs).await;
        let got: Option<Vec<R>> = std::mem::take(&mut *slots.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
        match got {
            Some(v) => v,
            None => std::future::pending().await,
        }
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.engine().shard_of(key)
    }

    /// Whether the client has gone while the command waited, as far as
    /// `client_closed` found (never, for a script).
    pub fn client_gone(&mut self) -> bool {
        self.session().is_some_and(|s| s.gone)
    }

    /// Whether the client has gone by now: what the socket says already,
    /// without waiting.
    pub async fn client_gone_now(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.client_closed() => true,
            () = std::future::ready(()) => false,
        }
    }

    /// The connection's session, for a command scripts may not call
    /// (declared `noscript`, so a script never gets here).
    pub fn client(&mut self) -> CmdResult<&mut Session> {
        self.session().ok_or_else(|| crate::error::CmdError::err("This Redis command is not allowed from script"))
    }
}
