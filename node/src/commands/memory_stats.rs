//! MEMORY STATS and MEMORY DOCTOR. STATS is Redis's breakdown of the
//! node's memory, from the same
//! sources as INFO memory (the allocator's counters, the client registry,
//! the replication backlog and queues) plus each database's index
//! overheads and key counts, gathered from every shard in one broadcast.
//! Fields Redis reports for machinery measured nowhere here (cluster bus
//! links, the AOF buffer, Lua and function caches, jemalloc's `allocator.*`
//! and `rss-overhead.*` figures) are
//! left out rather than invented. DOCTOR reads the same figures and
//! reports the conditions Redis's doctor looks for (a node too empty to
//! judge, a past peak far above current use, RSS far above the
//! allocations, big client or replica buffers, a swollen script cache), in
//! its own words.

use std::sync::atomic::Ordering::Relaxed;

use super::info::human;
use super::Coord;
use crate::error::CmdResult;
use crate::shard::Engine;

/// The node-wide memory figures INFO memory, MEMORY STATS and MEMORY
/// DOCTOR read, taken once.
pub struct Figures {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    /// The replication backlog's allocation.
    pub backlog: u64,
    /// Replica connections and what waits for them; other clients.
    pub replicas: u64,
    pub normal: u64,
    pub replica_count: usize,
    pub normal_count: usize,
}

impl Figures {
    pub fn now(e: &Engine) -> Figures {
        Self::with_used(e, crate::alloc::used_memory())
    }

    /// The figures with `used_memory` as read earlier (INFO reads it
    /// before it gathers anything, so that the report does not count the
    /// memory its own gathering takes).
    pub fn with_used(e: &Engine, used: u64) -> Figures {
        let (mut replicas, mut normal, mut replica_count, mut normal_count) = (e.repl.queued_for_replicas() as u64, 0, 0, 0);
        for c in e.clients.list() {
            if c.replica.load(Relaxed) {
                replicas += c.memory() as u64;
                replica_count += 1;
            } else {
                normal += c.memory() as u64;
                normal_count += 1;
            }
        }
        Figures {
            used,
            peak: crate::alloc::used_memory_peak().max(used),
            startup: e.stats.used_memory_startup.load(Relaxed),
            rss: crate::alloc::rss(),
            backlog: e.repl.lock_backlog().memory() as u64,
            replicas,
            normal,
            replica_count,
            normal_count,
        }
    }
}

pub async fn memory_stats(cx: &mut dyn Coord) -> CmdResult {
    // Per database: (keys, keys with a TTL, main index, expiry index).
    let shards = cx
        .broadcast(|sh| {
            (0..sh.db_count())
                .map(|i| {
                    sh.db_if_exists(i).map_or((0, 0, 0, 0), |d| {
                        let (main, expires) = d.overhead();
                        (d.len(), d.volatile_len(), main, expires)
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
    let e = cx.engine().clone();
    let ndb = shards.iter().map(|s| s.len()).max().unwrap_or(0);
    let dbs: Vec<(usize, usize, usize)> = (0..ndb)
        .map(|i| {
            shards.iter().filter_map(|s| s.get(i)).fold((0, 0, 0), |(k, m, x), &(keys, _, main, expires)| (k + keys, m + main, x + expires))
        })
        .collect();
    let Figures { used: total, peak, startup, rss, backlog, replicas, normal, .. } = Figures::now(&e);
    let keys: usize = dbs.iter().map(|d| d.0).sum();
    let db_overhead: u64 = dbs.iter().map(|d| (d.1 + d.2) as u64).sum();
    let overhead = startup + backlog + replicas + normal + db_overhead;
    let net = total.saturating_sub(startup);
    let dataset = total.saturating_sub(overhead);
    let listed: Vec<(usize, &(usize, usize, usize))> = dbs.iter().enumerate().filter(|(_, d)| d.0 > 0).collect();
    let out = cx.out();
    out.map(14 + listed.len());
    let mut field = |name: &str, v: u64| {
        out.bulk(name.as_bytes());
        out.int(v as i64);
    };
    field("peak.allocated", peak);
    field("total.allocated", total);
    field("startup.allocated", startup);
    field("replication.backlog", backlog);
    field("clients.slaves", replicas);
    field("clients.normal", normal);
    for (i, (_, main, expires)) in listed {
        out.bulk(format!("db.{i}").as_bytes());
        out.map(2);
        out.bulk(b"overhead.hashtable.main");
        out.int(*main as i64);
        out.bulk(b"overhead.hashtable.expires");
        out.int(*expires as i64);
    }
    let mut field = |name: &str, v: u64| {
        out.bulk(name.as_bytes());
        out.int(v as i64);
    };
    field("overhead.total", overhead);
    field("keys.count", keys as u64);
    field("keys.bytes-per-key", if keys > 0 { net / keys as u64 } else { 0 });
    field("dataset.bytes", dataset);
    let pct = |a: u64, b: u64| if b > 0 { a as f64 * 100.0 / b as f64 } else { 0.0 };
    out.bulk(b"dataset.percentage");
    out.double(pct(dataset, net));
    out.bulk(b"peak.percentage");
    out.double(pct(total, peak));
    out.bulk(b"fragmentation");
    out.double(if total > 0 { rss as f64 / total as f64 } else { 0.0 });
    out.bulk(b"fragmentation.bytes");
    out.int(rss as i64 - total as i64);
    Ok(())
}

/// MEMORY DOCTOR: a verbatim text naming what looks wrong, or saying
/// nothing does.
pub async fn memory_doctor(cx: &mut dyn Coord) -> CmdResult {
    let e = cx.engine().clone();
    let f = Figures::now(&e);
    let (total, peak, rss) = (f.used, f.peak, f.rss);
    let mut issues: Vec<String> = Vec::new();
    let text = if total < 5 << 20 {
        "This node uses under 5 MB: too little for a diagnosis to mean anything. Ask again once it holds data.\n".to_string()
    } else {
        if peak as f64 / total as f64 > 1.5 {
            issues.push(format!(
                "Peak: memory use once reached {}, more than 1.5 times today's {}. The allocator keeps some freed memory for reuse, which RSS still counts; it is reused as data grows, and MEMORY PURGE returns what it can now.",
                human(peak),
                human(total)
            ));
        }
        if total > 0 && rss as f64 / total as f64 > 1.4 && rss.saturating_sub(total) > 10 << 20 {
            issues.push(format!(
                "RSS: the process's resident memory ({}) is more than 1.4 times what is allocated ({}). After a peak (see above) this is expected; otherwise the workload fragments memory (allocator: mimalloc). MEMORY PURGE returns free pages to the system.",
                human(rss),
                human(total)
            ));
        }
        if f.normal_count > 0 && f.normal / f.normal_count as u64 > 200 * 1024 {
            issues.push(format!(
                "Client buffers: the {} clients hold {} on average (over 200 KB each): subscribers that do not read, large replies, or long pipelines. CLIENT LIST shows each client's buffers (qbuf, omem).",
                f.normal_count,
                human(f.normal / f.normal_count as u64)
            ));
        }
        if f.replica_count > 0 && f.replicas / f.replica_count as u64 > 10 << 20 {
            issues.push(format!(
                "Replica buffers: {} is waiting to be sent to each replica on average (over 10 MB): a replica is slow or its link is. INFO replication shows each replica's offset and lag.",
                human(f.replicas / f.replica_count as u64)
            ));
        }
        let scripts = e.scripting.scripts_count();
        if scripts > 1000 {
            issues.push(format!(
                "Scripts: {scripts} scripts are cached (over 1000), usually scripts built with their values inside instead of passing them as KEYS and ARGV. SCRIPT FLUSH empties the cache."
            ));
        }
        if issues.is_empty() {
            "No memory issue found: use, peak, RSS, client and replica buffers and the script cache all look normal.\n".to_string()
        } else {
            let mut t = String::from("Memory issues found:\n\n");
            for i in &issues {
                t.push_str(" * ");
                t.push_str(i);
                t.push_str("\n\n");
            }
            t
        }
    };
    cx.out().verbatim(&text);
    Ok(())
}
