//! Idle housekeeping: the timer task each shard thread runs to give memory
//! back after a burst. A node that served a 500 MB Lua table, thousands of
//! connections or a big value keeps the freed memory in the Lua heap and in
//! the allocator's per-thread caches until later traffic reuses it; once
//! the thread has been quiet for a whole tick, this collects the thread's
//! Lua garbage and asks the allocator to return free pages to the system.
//! A busy thread is left alone (its freed memory is about to be reused).
//! Also the node-wide periodic work (`cron`): idle clients, memory not
//! counted for eviction.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::shard::clients::ClientInfo;
use crate::shard::{Engine, LocalShard};

/// Time between looks at the thread's activity.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What changes when the thread or the node does work: commands and bytes
/// read by this thread's connections, connections accepted by the node, and
/// the node's heap size (in 64 KB steps).
fn activity(shard: &LocalShard, engine: &Engine) -> (u64, u64, u64, u64) {
    let st = &shard.cell.borrow().stats;
    (st.commands, st.net_input_bytes, engine.stats.total_connections.load(Relaxed), crate::alloc::used_memory() >> 16)
}

/// Runs forever: after any activity, the first tick that finds the thread
/// and node quiet releases memory once.
pub async fn run(shard: Rc<LocalShard>, engine: Arc<Engine>) {
    let mut timer = tokio::time::interval(INTERVAL);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = activity(&shard, &engine);
    let mut dirty = true;
    loop {
        timer.tick().await;
        let now = activity(&shard, &engine);
        if now != last {
            last = now;
            dirty = true;
        } else if dirty {
            dirty = false;
            release_memory();
            // What the release itself freed must not count as activity.
            last = activity(&shard, &engine);
        }
    }
}

/// Frees this thread's Lua garbage and returns the thread's free allocator
/// pages to the system (also MEMORY PURGE).
pub fn release_memory() {
    crate::commands::scripting::vm::collect_garbage();
    crate::alloc::release_free_memory();
}

/// `maxmemory-clients`: while the clients together take more, the ones
/// taking the most are closed, biggest first, as Redis's client eviction
/// does. Replicas and clients in CLIENT NO-EVICT mode are never chosen
/// (their memory still counts). Returns how many were closed.
pub fn evict_clients(engine: &Engine) -> usize {
    let limit = engine.cfg.clients_limit() as usize;
    if limit == 0 {
        return 0;
    }
    // Clients already closing are on their way out: their memory goes.
    let clients: Vec<Arc<ClientInfo>> = engine.clients.list().into_iter().filter(|c| !c.killed.load(Relaxed)).collect();
    let mut total: usize = clients.iter().map(|c| c.memory()).sum();
    if total <= limit {
        return 0;
    }
    let mut eligible: Vec<(usize, &Arc<ClientInfo>)> =
        clients.iter().filter(|c| !c.no_evict.load(Relaxed) && !c.replica.load(Relaxed)).map(|c| (c.memory(), c)).collect();
    eligible.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    let mut closed = 0;
    for (mem, c) in eligible {
        if total <= limit {
            break;
        }
        tracing::info!(client = c.id, addr = %c.addr, memory = mem, "evicting a client: the clients' memory is over maxmemory-clients");
        c.close_async();
        total -= mem;
        closed += 1;
    }
    engine.stats.evicted_clients.fetch_add(closed as u64, Relaxed);
    closed
}

/// The node's own periodic work, on one thread: every 100 ms, the memory
/// `maxmemory` leaves out (`shard::evict::set_not_counted`) and client
/// eviction (`maxmemory-clients`); every second, `timeout`: the clients
/// that sent nothing for longer than it are closed
/// (`ClientInfo::idle_beyond` says which count).
pub async fn cron(engine: Arc<Engine>) {
    let mut timer = tokio::time::interval(Duration::from_millis(100));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tick = 0u64;
    loop {
        timer.tick().await;
        tick += 1;
        crate::shard::evict::set_not_counted(engine.repl.queued_for_replicas() as u64);
        evict_clients(&engine);
        let secs = engine.cfg.conn.timeout.load(Relaxed);
        if secs == 0 || !tick.is_multiple_of(10) {
            continue;
        }
        let now = crate::util::now_ms();
        let closed = engine.clients.kill(|c| c.idle_beyond(now, secs));
        if closed > 0 {
            tracing::debug!(closed, "closed idle clients");
        }
    }
}
