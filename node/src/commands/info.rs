//! INFO: Redis 7.0's sections, in its order, from the node's real state
//! (the shards' counters, gathered in one broadcast, the client registry,
//! the allocator, the latency histograms). Fields Redis has for machinery
//! this server does not have (forks, module machinery, client tracking,
//! lazy freeing) are shown with the value that machinery's absence gives,
//! as Redis shows them when it is idle; fields that would need figures we
//! do not keep are left out rather than invented.
//!
//! Sections: no argument or `default` is server, clients, memory,
//! persistence, stats, replication, cpu, modules, errorstats, cluster and
//! keyspace; `all` adds commandstats and latencystats; `everything` is
//! `all` (there are no module sections); names combine (`INFO default
//! commandstats`), unknown ones add nothing. `modules` lists the built-in
//! JSON module (`module::write_info`).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::Coord;
use crate::error::CmdResult;
use crate::shard::ShardStats;
use crate::util::now_ms;

/// Per-shard figures gathered for INFO.
struct ShardInfo {
    stats: ShardStats,
    /// Commands, input and output bytes per second, lately.
    rates: [u64; 5],
    /// Per-command counters of the shard's thread.
    cmds: super::stats::Stats,
    /// (keys, keys with a TTL, average TTL) per database.
    dbs: Vec<(usize, usize, u64)>,
    /// The shard's change count as of this INFO (the snapshot task
    /// publishes it only every tick).
    changes: u64,
    /// The keyspace's own structures (indexes, slab), when the memory
    /// section is wanted.
    db_overhead: usize,
    /// The shard thread's Lua heap.
    lua: usize,
}

const DEFAULT: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"];

pub async fn info(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    // Read before anything is gathered: what INFO allocates for its own
    // report (tens of KB with several shards) is not the node's memory.
    let used_before = crate::alloc::used_memory();
    let wanted: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let want = |s: &str| all || (default && DEFAULT.contains(&s)) || wanted.iter().any(|w| w == s);
    let now = now_ms();
    let memory = want("memory");
    let histograms = want("latencystats");
    let shards = cx
        .broadcast(move |sh| {
            let n = sh.db_count();
            let dbs =
                (0..n).map(|i| sh.db_if_exists(i).map(|d| (d.len(), d.volatile_len(), d.avg_ttl(now))).unwrap_or((0, 0, 0))).collect();
            let db_overhead = if memory {
                (0..n).filter_map(|i| sh.db_if_exists(i).map(|d| d.overhead())).map(|(main, expires)| main + expires).sum()
            } else {
                0
            };
            ShardInfo {
                stats: sh.counted_stats(),
                rates: sh.rates.get(),
                cmds: if histograms { super::stats::snapshot() } else { super::stats::counters() },
                dbs,
                changes: sh.changes(),
                db_overhead,
                lua: super::scripting::vm::heap_size(),
            }
        })
        .await;
    let mut cmds = super::stats::Stats::default();
    for s in &shards {
        cmds.merge(&s.cmds);
    }
    let e = cx.engine().clone();
    let st = &e.stats;
    let uptime = now.saturating_sub(st.start_ms.load(Relaxed)) / 1000;
    let mut text = String::new();
    if want("server") {
        let _ = write!(
            text,
            "# Server\r\nredis_version:{}\r\nredis_git_sha1:{}\r\nredis_git_dirty:{}\r\nredis_build_id:{}\r\ndamselfly_version:{}\r\nredis_mode:{}\r\nos:{} {} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshards:{}\r\n\r\n",
            crate::REDIS_VERSION,
            env!("DAMSELFLY_GIT_SHA1"),
            env!("DAMSELFLY_GIT_DIRTY"),
            env!("DAMSELFLY_BUILD_ID"),
            env!("CARGO_PKG_VERSION"),
            if e.cluster.is_some() { "cluster" } else { "standalone" },
            os_name(),
            os_release(),
            std::env::consts::ARCH,
            std::process::id(),
            run_id(),
            e.cfg.port(),
            crate::util::now_us(),
            uptime,
            uptime / 86400,
            // Redis's LRU clock: seconds, in 24 bits.
            (now / 1000) & ((1 << 24) - 1),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            e.cfg.config_file,
            e.nshards(),
        );
    }
    let clients = e.clients.list();
    if want("clients") {
        let max_in = clients.iter().map(|c| c.buffers().0).max().unwrap_or(0);
        let max_out = clients.iter().map(|c| c.buffers().1).max().unwrap_or(0);
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{max_in}\r\nclient_recent_max_output_buffer:{max_out}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\n\r\n",
            st.connected_clients.load(Relaxed),
            e.cfg.maxclients.load(Relaxed),
            st.blocked_clients.load(Relaxed),
            crate::shard::tracking::stats().0
        );
    }
    if want("memory") {
        let super::memory_stats::Figures { used, peak, startup, rss, backlog, replicas: replicas_mem, normal: clients_mem, .. } =
            super::memory_stats::Figures::with_used(&e, used_before);
        let maxmem = e.cfg.maxmemory.load(Relaxed);
        let system = total_system_memory();
        let scripts = e.scripting.scripts_count();
        let scripts_mem = e.scripting.scripts_memory();
        let (libraries, functions, functions_mem) = {
            let l = e.scripting.libraries();
            (l.libs.len(), l.funcs.len(), l.memory())
        };
        // As MEMORY STATS counts them (`memory_stats`).
        let db_overhead: u64 = shards.iter().map(|s| s.db_overhead as u64).sum();
        let overhead = startup + backlog + replicas_mem + clients_mem + db_overhead;
        let dataset = used.saturating_sub(overhead);
        let lua: usize = shards.iter().map(|s| s.lua).sum();
        let (lazy_pending, lazy_freed) = crate::store::lazyfree::stats();
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{overhead}\r\nused_memory_startup:{startup}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\ntotal_system_memory:{system}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{scripts_mem}\r\nnumber_of_cached_scripts:{scripts}\r\nnumber_of_functions:{functions}\r\nnumber_of_libraries:{libraries}\r\nused_memory_vm_total:{lua}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{functions_mem}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\nmaxmemory:{maxmem}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{}\r\nmem_replication_backlog:{backlog}\r\nmem_total_replication_buffers:{}\r\nmem_clients_slaves:{replicas_mem}\r\nmem_clients_normal:{clients_mem}\r\nmem_allocator:mimalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{lazy_pending}\r\nlazyfreed_objects:{lazy_freed}\r\n\r\n",
            human(used),
            human(rss),
            human(peak),
            if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 0.0 },
            // Redis's share: of what is above start-up.
            if used > startup { dataset as f64 * 100.0 / (used - startup) as f64 } else { 0.0 },
            human(system),
            human(lua as u64),
            human(lua as u64),
            scripts_mem + functions_mem,
            human((scripts_mem + functions_mem) as u64),
            human(maxmem),
            e.cfg.policy().name(),
            if used > 0 { rss as f64 / used as f64 } else { 0.0 },
            rss as i64 - used as i64,
            crate::shard::evict::not_counted(),
            backlog + replicas_mem,
        );
    }
    if want("persistence") {
        for (count, s) in e.saves.changes.iter().zip(&shards) {
            count.store(s.changes, Relaxed);
        }
        super::persistence::info_section(&e, &mut text);
    }
    if want("stats") {
        let tracked = crate::shard::tracking::stats();
        let sum = |f: fn(&ShardStats) -> u64| shards.iter().map(|s| f(&s.stats)).sum::<u64>();
        let rate = |k: usize| shards.iter().map(|s| s.rates[k]).sum::<u64>();
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:{}\r\ntotal_net_repl_output_bytes:{}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:{:.2}\r\ninstantaneous_output_repl_kbps:{:.2}\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nevicted_clients:{}\r\nevicted_scripts:{}\r\ntotal_eviction_exceeded_time:{}\r\ncurrent_eviction_exceeded_time:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\n\r\n",
            st.total_connections.load(Relaxed),
            sum(|s| s.commands),
            rate(0),
            sum(|s| s.net_input_bytes),
            sum(|s| s.net_output_bytes),
            e.repl.input_bytes.load(Relaxed),
            sum(|s| s.repl_output_bytes),
            rate(1) as f64 / 1024.0,
            rate(2) as f64 / 1024.0,
            rate(3) as f64 / 1024.0,
            rate(4) as f64 / 1024.0,
            st.rejected_connections.load(Relaxed),
            e.repl.sync_full.load(Relaxed),
            e.repl.sync_partial_ok.load(Relaxed),
            e.repl.sync_partial_err.load(Relaxed),
            sum(|s| s.expired_keys),
            sum(|s| s.evicted_keys),
            st.evicted_clients.load(Relaxed),
            e.scripting.evicted.load(Relaxed),
            crate::shard::evict::exceeded_ms().1,
            crate::shard::evict::exceeded_ms().0,
            sum(|s| s.keyspace_hits),
            sum(|s| s.keyspace_misses),
            e.pubsub.channels(None).len(),
            e.pubsub.numpat(),
            e.pubsub.shard_channels(None).len(),
            tracked.1,
            tracked.2,
            tracked.3,
            st.unexpected_error_replies.load(Relaxed),
            cmds.total_errors,
            sum(|s| s.reads_processed),
            sum(|s| s.writes_processed),
        );
    }
    if want("replication") {
        text.push_str(&super::replication::info(&e));
    }
    if want("cpu") {
        let (user, sys) = cpu_times(libc::RUSAGE_SELF);
        let (cuser, csys) = cpu_times(libc::RUSAGE_CHILDREN);
        let _ = write!(
            text,
            "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{csys:.6}\r\nused_cpu_user_children:{cuser:.6}\r\n\r\n"
        );
    }
    if want("modules") {
        text.push_str("# Modules\r\n");
        super::module::write_info(&mut text);
        text.push_str("\r\n");
    }
    if want("commandstats") && (all || wanted.iter().any(|w| w == "commandstats")) {
        super::stats::write_commandstats(&mut text, &cmds);
    }
    if want("errorstats") {
        super::stats::write_errorstats(&mut text, &cmds);
    }
    if all || wanted.iter().any(|w| w == "latencystats") {
        text.push_str("# Latencystats\r\n");
        if e.cfg.latency_tracking.load(Relaxed) {
            write_latencystats(&mut text, &cmds, &e.cfg.latency_percentiles.lock().unwrap_or_else(|p| p.into_inner()));
        }
        text.push_str("\r\n");
    }
    if want("cluster") {
        let _ = write!(text, "# Cluster\r\ncluster_enabled:{}\r\n\r\n", u8::from(e.cluster.is_some()));
    }
    if want("keyspace") {
        text.push_str("# Keyspace\r\n");
        for db in 0..e.cfg.databases {
            let (mut keys, mut expires, mut ttl_sum) = (0, 0, 0u128);
            for s in &shards {
                let (k, x, avg) = s.dbs.get(db).copied().unwrap_or((0, 0, 0));
                keys += k;
                expires += x;
                ttl_sum += u128::from(avg) * x as u128;
            }
            if keys > 0 {
                let avg_ttl = if expires > 0 { ttl_sum / expires as u128 } else { 0 };
                let _ = write!(text, "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
            }
        }
        text.push_str("\r\n");
    }
    while text.ends_with("\r\n\r\n") {
        text.truncate(text.len() - 2);
    }
    cx.out().verbatim(&text);
    Ok(())
}

/// INFO latencystats: each command's percentiles, in µs, as Redis prints
/// them (`latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=2.007`).
fn write_latencystats(text: &mut String, s: &super::stats::Stats, percentiles: &[f64]) {
    for (spec, c) in super::stats::specs().iter().zip(&s.cmds) {
        let Some(h) = c.hist.as_ref().filter(|h| h.total > 0) else { continue };
        let _ = write!(text, "latency_percentiles_usec_{}:", spec.name);
        for (i, p) in percentiles.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "p{}={:.3}", crate::util::trim_float(&format!("{p:.6}")), h.percentile(*p) as f64 / 1000.0);
        }
        text.push_str("\r\n");
    }
}

fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(random_hex_id)
}

fn random_hex_id() -> String {
    (0..40).map(|_| format!("{:x}", rand::random_range(0..16u8))).collect()
}

/// The kernel's name and release (`Linux 6.1.0`), as uname(2) gives them.
fn os_name() -> String {
    uname_field(|u| &u.sysname)
}

fn os_release() -> String {
    uname_field(|u| &u.release)
}

fn uname_field(f: impl Fn(&libc::utsname) -> &[libc::c_char; 65]) -> String {
    // SAFETY: uname fills the struct we own; its fields are NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let field = f(&u);
    let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The machine's memory (`MemTotal` of /proc/meminfo), in bytes.
fn total_system_memory() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes as Redis prints them for people (`1.50M`).
pub(crate) fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}G", f / (1024.0 * 1024.0 * 1024.0))
    } else if f >= 1024.0 * 1024.0 {
        format!("{:.2}M", f / (1024.0 * 1024.0))
    } else if f >= 1024.0 {
        format!("{:.2}K", f / 1024.0)
    } else {
        format!("{n}B")
    }
}

/// User and system CPU seconds of `who` (RUSAGE_SELF, RUSAGE_CHILDREN).
fn cpu_times(who: libc::c_int) -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}
