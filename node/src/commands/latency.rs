//! LATENCY: the latency monitor's events (`shard::latency`, sampled by
//! `observe::done`, the expiry and eviction cycles and the journal writer)
//! and the per-command latency histograms (`stats`), with Redis 7.0's
//! replies and texts.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::latency::{graph, Hist, Series};
use crate::shard::Engine;
use crate::util::eq_ic;

const LATENCY: Exec = Exec::Coord(handler!(async |cx, a| latency(cx, a)));
const ADM: &[&str] = &["admin", "slow", "dangerous"];
const TIPS: &[&str] = &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"];
const F: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[CommandSpec] =
    &[cmd("latency", -2, 0, (0, 0, 0), &["slow"], "server", "A container for latency diagnostics commands.", LATENCY).subcommands(&[
        sub("latency|doctor", 2, F, (0, 0, 0), ADM, "Returns a human-readable latency analysis report.", LATENCY).tips(TIPS),
        sub("latency|graph", 3, F, (0, 0, 0), ADM, "Returns a latency graph for an event.", LATENCY).tips(TIPS),
        sub("latency|help", 2, LOADING | STALE, (0, 0, 0), &["slow"], "Returns helpful text about the different subcommands.", LATENCY),
        sub(
            "latency|histogram",
            -2,
            F,
            (0, 0, 0),
            ADM,
            "Returns the cumulative distribution of latencies of a subset or all commands.",
            LATENCY,
        )
        .tips(TIPS),
        sub("latency|history", 3, F, (0, 0, 0), ADM, "Returns timestamp-latency samples for an event.", LATENCY).tips(TIPS),
        sub("latency|latest", 2, F, (0, 0, 0), ADM, "Returns the latest latency samples for all events.", LATENCY).tips(TIPS),
        sub("latency|reset", -2, F, (0, 0, 0), ADM, "Resets the latency data for one or more events.", LATENCY)
            .tips(&["request_policy:all_nodes", "response_policy:agg_sum"]),
    ])];

async fn latency(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    let lat = &engine.latency;
    let sub = &args[1];
    let now = crate::util::now_ms() / 1000;
    if eq_ic(sub, "history") && args.len() == 3 {
        let samples: Vec<_> = lat.get(&args[2]).map(|(_, s)| s.in_order().copied().collect()).unwrap_or_default();
        let out = cx.out();
        out.array(samples.len());
        for s in samples {
            out.array(2);
            out.int(s.time as i64);
            out.int(s.latency as i64);
        }
    } else if eq_ic(sub, "graph") && args.len() == 3 {
        let Some((name, s)) = lat.get(&args[2]) else {
            return Err(CmdError::err(format!("No samples available for event '{}'", String::from_utf8_lossy(&args[2]))));
        };
        cx.out().verbatim(&graph(name, &s, now));
    } else if eq_ic(sub, "latest") && args.len() == 2 {
        let all = lat.all();
        let out = cx.out();
        out.array(all.len());
        for (name, s) in all {
            let last = s.last();
            out.array(4);
            out.bulk(name.as_bytes());
            out.int(last.time as i64);
            out.int(last.latency as i64);
            out.int(s.max as i64);
        }
    } else if eq_ic(sub, "doctor") && args.len() == 2 {
        let report = doctor(&engine, &lat.all(), now);
        cx.out().verbatim(&report);
    } else if eq_ic(sub, "reset") && args.len() >= 2 {
        let n = if args.len() == 2 { lat.reset(None) } else { args[2..].iter().map(|e| lat.reset(Some(e))).sum() };
        cx.out().int(n as i64);
    } else if eq_ic(sub, "histogram") && args.len() >= 2 {
        let threads = cx.broadcast(|_| super::stats::snapshot()).await;
        let mut stats = super::stats::Stats::default();
        for t in &threads {
            stats.merge(t);
        }
        let specs = super::stats::specs();
        let hist = |spec: &CommandSpec| stats.cmds.get(super::stats::index(spec)).and_then(|c| c.hist.as_ref()).filter(|h| h.total > 0);
        let mut found: Vec<(&'static str, &Hist)> = Vec::new();
        if args.len() == 2 {
            found.extend(specs.iter().filter_map(|s| hist(s).map(|h| (s.name, h))));
        } else {
            for name in &args[2..] {
                let Some(spec) = lookup_full_name(name) else { continue };
                found.extend(hist(spec).map(|h| (spec.name, h)));
                found.extend(spec.subs.iter().filter_map(|s| hist(s).map(|h| (s.name, h))));
            }
        }
        let out = cx.out();
        out.map(found.len());
        for (name, h) in found {
            out.bulk(name.as_bytes());
            out.map(2);
            out.bulk(b"calls");
            out.int(h.total as i64);
            out.bulk(b"histogram_usec");
            let cdf = h.cdf();
            out.map(cdf.len());
            for (usec, n) in cdf {
                out.int(usec as i64);
                out.int(n as i64);
            }
        }
    } else if eq_ic(sub, "help") && args.len() == 2 {
        cx.out().help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ]);
    } else {
        return Err(CmdError::subcommand_syntax("latency", sub));
    }
    Ok(())
}

/// A command by its full name (`get`, `client|id`), case-insensitively.
fn lookup_full_name(name: &[u8]) -> Option<&'static CommandSpec> {
    super::stats::specs().iter().copied().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// An event's statistics over its samples (Redis's analyzeLatencyForEvent).
struct Analysis {
    samples: u64,
    avg: u64,
    mad: u64,
    period: u64,
}

fn analyze(s: &Series, now: u64) -> Analysis {
    let v: Vec<_> = s.in_order().collect();
    let n = v.len() as u64;
    if n == 0 {
        return Analysis { samples: 0, avg: 0, mad: 0, period: 0 };
    }
    let avg = v.iter().map(|x| x.latency).sum::<u64>() / n;
    let oldest = v.iter().map(|x| x.time).min().unwrap_or(now);
    let period = now.saturating_sub(oldest).max(1);
    let mad = v.iter().map(|x| (avg as i64 - x.latency as i64).unsigned_abs()).sum::<u64>() / n;
    Analysis { samples: n, avg, mad, period }
}

/// Bytes of transparent huge pages the process uses.
fn anon_huge_pages() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else { return 0 };
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// LATENCY DOCTOR's report, as Redis's createLatencyReport writes it
/// (its advice about what this server has: the slow log, `hz`,
/// `appendfsync always`, eviction, huge pages).
fn doctor(engine: &Engine, events: &[(&'static str, Series)], now: u64) -> String {
    let cfg = &engine.cfg;
    let threshold = cfg.latency_monitor_threshold.load(Relaxed);
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let mut r = String::new();
    let mut advices = 0;
    let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect, mut scheduler) = (false, false, false, false);
    let (mut relax_fsync, mut hz, mut large_objects, mut mass_eviction, mut local_disk, mut ssd, mut writeback) =
        (false, false, false, false, false, false, false);
    for (n, (event, s)) in events.iter().enumerate() {
        if n == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let a = analyze(s, now);
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            event,
            a.samples,
            a.avg,
            a.mad,
            a.period as f64 / a.samples.max(1) as f64,
            s.max
        ));
        match *event {
            "command" => {
                let slower = cfg.slowlog_log_slower_than.load(Relaxed);
                if slower < 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if slower as u64 / 1000 > threshold {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "aof-write-alone" => {
                (local_disk, writeback, ssd) = (true, true, true);
                advices += 3;
            }
            "aof-fsync-always" => {
                relax_fsync = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            "eviction-del" => {
                large_objects = true;
                advices += 1;
            }
            "eviction-cycle" => {
                mass_eviction = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    let thp = anon_huge_pages() > 0;
    if thp {
        advices += 1;
    }
    if events.is_empty() && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return r;
    }
    if !events.is_empty() && advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return r;
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if slowlog_enabled {
        r.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
    }
    if slowlog_tuning {
        r.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
    }
    if slowlog_inspect {
        r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if local_disk {
        r.push_str("- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote disks provided by platform-as-a-service providers are known to be slow.\n");
    }
    if ssd {
        r.push_str("- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a good option. However Redis should perform reasonably with high load using normal disks. Use this advice as a last resort.\n");
    }
    if writeback {
        r.push_str("- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to data=ordered, however this mode of operation provides less guarantees, and sometimes it can happen that after a hard crash the AOF file will have a half-written command at the end and will require to be repaired before Redis restarts.\n");
    }
    if relax_fsync && cfg.appendfsync() == crate::config::Fsync::Always {
        r.push_str("- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n");
    }
    // `hz` is 10 here.
    if hz {
        r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large_objects {
        r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if mass_eviction {
        r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
    }
    if thp {
        r.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n");
    }
    r
}
