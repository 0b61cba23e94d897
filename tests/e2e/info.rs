//! INFO against a real server, side by side with redis-server 7: which
//! sections each argument selects and in what order, that every field we
//! print is one Redis 7.0 prints in that section, and that the figures
//! follow the node's state (blocked clients, the instantaneous rates, the
//! keyspace's TTLs, the latency percentiles).

use std::time::{Duration, Instant};

use damselfly_tests::{Redis, Server};

/// Fields of ours that Redis does not have.
const OURS_ONLY: &[&str] = &[
    "damselfly_version",
    "shards",
    // Redis 7.4's count of EVAL scripts evicted from the bounded cache.
    "evicted_scripts",
];

/// The section headers of an INFO reply, in order.
fn headers(reply: &str) -> Vec<String> {
    reply.split("\r\n").filter(|l| l.starts_with("# ")).map(String::from).collect()
}

/// Section -> field names of an INFO reply.
fn fields(reply: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in reply.split("\r\n") {
        if let Some(h) = line.strip_prefix("# ") {
            out.push((h.to_string(), Vec::new()));
        } else if let (Some((name, _)), Some(last)) = (line.split_once(':'), out.last_mut()) {
            last.1.push(name.to_string());
        }
    }
    out
}

fn field(reply: &str, name: &str) -> String {
    let at = reply.find(&format!("\r\n{name}:")).unwrap_or_else(|| panic!("{name} missing"));
    reply[at + name.len() + 3..].split("\r\n").next().expect("value").to_string()
}

/// The text of a bulk (or verbatim) reply.
fn text(reply: String) -> String {
    let body = reply.split_once("\r\n").map_or("", |(_, b)| b);
    body.strip_prefix("txt:").unwrap_or(body).trim_end_matches("\r\n").to_string()
}

#[test]
fn sections_match_redis() {
    let s = Server::start();
    let r = Redis::start();
    let (mut a, mut b) = (s.raw(), r.raw());
    let cases: &[&[&str]] = &[
        &["INFO"],
        &["INFO", "default"],
        &["INFO", "all"],
        &["INFO", "everything"],
        &["INFO", "a", "b"],
        &["INFO", "default", "commandstats"],
        &["INFO", "keyspace", "SERVER", "cpu"],
        &["INFO", "latencystats"],
        &["INFO", "modules"],
        &["INFO", "errorstats", "errorstats"],
    ];
    for args in cases {
        assert_eq!(headers(&a.cmd(args)), headers(&b.cmd(args)), "{args:?}");
    }
    assert_eq!(a.cmd(&["INFO", "a", "b"]), "$0\r\n\r\n");
    // Every field we print is one Redis prints in the same section.
    assert_eq!(a.cmd(&["SET", "k", "v", "EX", "100"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "k", "v", "EX", "100"]), "+OK\r\n");
    let theirs = fields(&text(b.cmd(&["INFO", "everything"])));
    for (section, names) in fields(&text(a.cmd(&["INFO", "everything"]))) {
        let Some((_, known)) = theirs.iter().find(|(h, _)| *h == section) else { panic!("section {section} is not Redis's") };
        for n in names {
            let dynamic = n.starts_with("cmdstat_")
                || n.starts_with("errorstat_")
                || n.starts_with("latency_percentiles_usec_")
                || n.starts_with("db")
                // One line per loaded module; this Redis has none loaded.
                || (section == "Modules" && n == "module");
            assert!(dynamic || known.contains(&n) || OURS_ONLY.contains(&n.as_str()), "{section}: {n} is not Redis's");
        }
    }
}

#[test]
fn figures_follow_the_state() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    // blocked_clients counts a client waiting in BLPOP.
    assert_eq!(field(&c.cmd(&["INFO", "clients"]), "blocked_clients"), "0");
    let mut waiter = s.raw();
    waiter.send_cmd(&[b"BLPOP", b"list", b"0"]);
    c.wait_blocked(1);
    assert_eq!(c.cmd(&["RPUSH", "list", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&waiter.read_reply()), "*2\r\n$4\r\nlist\r\n$1\r\nx\r\n");
    c.wait_blocked(0);
    // avg_ttl: the mean time left of the keys with a TTL, on every shard.
    for (k, ms) in [("a", "100000"), ("b", "200000"), ("c", "300000")] {
        assert_eq!(c.cmd(&["SET", k, "v", "PX", ms]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["SET", "d", "v"]), "+OK\r\n");
    let ks = field(&c.cmd(&["INFO", "keyspace"]), "db0");
    let (head, avg) = ks.split_once(",avg_ttl=").expect("avg_ttl");
    assert_eq!(head, "keys=4,expires=3");
    let avg: u64 = avg.parse().expect("avg_ttl");
    assert!(avg > 150_000 && avg <= 200_000, "{ks}");
    // The instantaneous rates rise while commands come in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for _ in 0..50 {
            c.cmd(&["PING"]);
        }
        let stats = c.cmd(&["INFO", "stats"]);
        if field(&stats, "instantaneous_ops_per_sec") != "0" && field(&stats, "instantaneous_input_kbps") != "0.00" {
            break;
        }
        assert!(Instant::now() < deadline, "the rates never moved: {stats}");
    }
    // Reads and writes of client sockets are counted: one more each per
    // command sent and answered on its own.
    let stats = c.cmd(&["INFO", "stats"]);
    let (reads, writes) = (field(&stats, "total_reads_processed"), field(&stats, "total_writes_processed"));
    let (reads, writes): (u64, u64) = (reads.parse().expect("reads"), writes.parse().expect("writes"));
    for _ in 0..10 {
        c.cmd(&["PING"]);
    }
    let stats = c.cmd(&["INFO", "stats"]);
    let num = |n: &str| field(&stats, n).parse::<u64>().expect(n);
    assert_eq!((num("total_reads_processed") - reads, num("total_writes_processed") - writes), (11, 11), "{stats}");
    // The build: its commit as Redis prints it (8 hex digits, zeros
    // outside a git checkout), whether the tree had changes, an id.
    let server = c.cmd(&["INFO", "server"]);
    let sha = field(&server, "redis_git_sha1");
    assert!(sha.len() == 8 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{server}");
    assert!(["0", "1"].contains(&field(&server, "redis_git_dirty").as_str()), "{server}");
    assert!(!field(&server, "redis_build_id").is_empty());
    // Memory figures are consistent with each other.
    let mem = c.cmd(&["INFO", "memory"]);
    let num = |n: &str| field(&mem, n).parse::<u64>().expect(n);
    assert!(num("used_memory_peak") >= num("used_memory") && num("used_memory") > num("used_memory_startup"), "{mem}");
    assert!(num("mem_clients_normal") > 0 && num("total_system_memory") > 0, "{mem}");
}

#[test]
fn latencystats_follow_the_percentiles_setting() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    let line = field(&c.cmd(&["INFO", "latencystats"]), "latency_percentiles_usec_set");
    let keys: Vec<&str> = line.split(',').map(|p| p.split_once('=').expect("p=v").0).collect();
    assert_eq!(keys, ["p50", "p99", "p99.9"], "{line}");
    assert!(line.split(',').all(|p| p.split_once('=').is_some_and(|(_, v)| v.split_once('.').is_some_and(|(_, d)| d.len() == 3))));
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", "0.5 100"]), "+OK\r\n");
    let line = field(&c.cmd(&["INFO", "latencystats"]), "latency_percentiles_usec_set");
    assert!(line.starts_with("p0.5=") && line.contains(",p100="), "{line}");
    // Off: the section is empty, as in Redis.
    assert_eq!(c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]), "+OK\r\n");
    assert_eq!(text(c.cmd(&["INFO", "latencystats"])), "# Latencystats");
}

/// MEMORY STATS: Redis's field names in Redis's order (a subset: what is
/// measured here), the key count and per-database overheads following the
/// keyspace; INFO memory's replication figures follow a replica attaching.
#[test]
fn memory_stats_and_replication_memory_follow_the_state() {
    let s = Server::start();
    let mut c = s.raw();
    for i in 0..300 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    for i in 0..100 {
        assert_eq!(c.cmd(&["EXPIRE", &format!("k{i}"), "1000"]), ":1\r\n");
    }
    assert_eq!(c.cmd(&["SELECT", "2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "other", "v"]), "+OK\r\n");
    let reply = c.cmd(&["MEMORY", "STATS"]);
    let lines: Vec<&str> = reply.split("\r\n").collect();
    // Names: the bulk strings that are not numbers (RESP2 doubles).
    let names: Vec<&str> = lines
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1])
        .filter(|n| !n.starts_with(|c: char| c.is_numeric() || c == '-'))
        .collect();
    let want = [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "db.0",
        "overhead.hashtable.main",
        "overhead.hashtable.expires",
        "db.2",
        "overhead.hashtable.main",
        "overhead.hashtable.expires",
        "overhead.total",
        "keys.count",
        "keys.bytes-per-key",
        "dataset.bytes",
        "dataset.percentage",
        "peak.percentage",
        "fragmentation",
        "fragmentation.bytes",
    ];
    assert_eq!(names, want, "{reply}");
    let int_after = |name: &str, nth: usize| -> i64 {
        let at = lines.iter().enumerate().filter(|(_, l)| **l == name).nth(nth).unwrap_or_else(|| panic!("{name}")).0;
        lines[at + 1].trim_start_matches(':').parse().unwrap_or_else(|_| panic!("{name}: {}", lines[at + 1]))
    };
    assert_eq!(int_after("keys.count", 0), 301);
    let (main0, expires0, main2) =
        (int_after("overhead.hashtable.main", 0), int_after("overhead.hashtable.expires", 0), int_after("overhead.hashtable.main", 1));
    assert!(main0 > main2 && main2 > 0 && expires0 > 0, "{reply}");
    assert_eq!(int_after("overhead.hashtable.expires", 1), 0, "db 2 has no TTLs: {reply}");
    assert!(int_after("total.allocated", 0) >= int_after("startup.allocated", 0));
    assert!(int_after("clients.normal", 0) > 0 && int_after("clients.slaves", 0) == 0);
    assert_eq!(int_after("replication.backlog", 0), 0, "no replica yet");
    // A replica attaches: the primary's backlog holds the stream from then.
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &s.port.to_string()]);
    let mut r = replica.raw();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !r.cmd(&["INFO", "replication"]).contains("master_link_status:up") {
        assert!(Instant::now() < deadline, "the replica never synced");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.cmd(&["SET", "after", &"x".repeat(1000)]), "+OK\r\n");
    assert_eq!(c.cmd(&["WAIT", "1", "0"]), ":1\r\n");
    let mem = c.cmd(&["INFO", "memory"]);
    let backlog: u64 = field(&mem, "mem_replication_backlog").parse().expect("backlog");
    assert!(backlog >= 1000, "{mem}");
    let replicas: u64 = field(&mem, "mem_clients_slaves").parse().expect("replicas");
    assert!(replicas > 0, "{mem}");
    // What replicas have not taken is left out of maxmemory's count; the
    // figure is refreshed every 100 ms.
    let deadline = Instant::now() + Duration::from_secs(10);
    while field(&c.cmd(&["INFO", "memory"]), "mem_not_counted_for_evict") != "0" {
        assert!(Instant::now() < deadline, "still counted as queued once the replica acknowledged");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// MEMORY DOCTOR judges the same figures: a nearly empty node is too small
/// to judge; after a peak far above current use, it says so.
#[test]
fn memory_doctor_reports_a_past_peak() {
    let s = Server::start();
    let mut c = s.raw();
    assert!(c.cmd(&["MEMORY", "DOCTOR"]).contains("too little for a diagnosis"));
    let mb = "x".repeat(1 << 20);
    for i in 0..24 {
        assert_eq!(c.cmd(&["SET", &format!("big:{i}"), &mb]), "+OK\r\n");
    }
    for i in 0..16 {
        assert_eq!(c.cmd(&["DEL", &format!("big:{i}")]), ":1\r\n");
    }
    let report = c.cmd(&["MEMORY", "DOCTOR"]);
    assert!(report.contains("Memory issues found:") && report.contains(" * Peak: memory use once reached"), "{report}");
    assert!(c.cmd(&["MEMORY", "HELP"]).contains("+DOCTOR\r\n"));
}

/// INFO memory's split (overhead and dataset, as MEMORY STATS counts them)
/// and its Lua figures follow keys, scripts, libraries and what a library
/// keeps in its heap.
#[test]
fn memory_split_and_lua_figures_follow_the_state() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    let num = |c: &mut damselfly_tests::Raw, n: &str| field(&c.cmd(&["INFO", "memory"]), n).parse::<u64>().expect(n);
    let mem = c.cmd(&["INFO", "memory"]);
    let get = |m: &str, n: &str| field(m, n).parse::<u64>().expect(n);
    assert_eq!(get(&mem, "used_memory_overhead") + get(&mem, "used_memory_dataset"), get(&mem, "used_memory"), "{mem}");
    let overhead0 = get(&mem, "used_memory_overhead");
    let mut pipe = Vec::new();
    for i in 0..5000 {
        pipe.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$7\r\nk:{i:05}\r\n$1\r\nv\r\n").as_bytes());
    }
    c.send(&pipe);
    for _ in 0..5000 {
        c.read_reply();
    }
    assert!(num(&mut c, "used_memory_overhead") > overhead0 + 5000 * 8, "the keys' index and slab count as overhead");
    // Scripts: the cache's bodies, the libraries' code, the VMs' heaps.
    let eval0 = num(&mut c, "used_memory_scripts_eval");
    let body = format!("return '{}'", "x".repeat(1000));
    assert!(c.cmd(&["EVAL", &body, "0"]).starts_with("$1000"));
    let eval1 = num(&mut c, "used_memory_scripts_eval");
    assert!(eval1 >= eval0 + body.len() as u64, "{eval0} -> {eval1}");
    let lib = "#!lua name=keeper\nlocal kept = {}\nredis.register_function{function_name='keep', callback=function(keys, args) for i = 1, tonumber(args[1]) do kept[#kept + 1] = string.rep('y', 100) .. i end return #kept end, flags={'no-writes'}}";
    assert_eq!(num(&mut c, "used_memory_functions"), 0);
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$6\r\nkeeper\r\n");
    let funcs = num(&mut c, "used_memory_functions");
    assert!(funcs >= lib.len() as u64, "{funcs}");
    assert_eq!(num(&mut c, "used_memory_scripts"), eval1 + funcs);
    let lua0 = num(&mut c, "used_memory_lua");
    assert!(lua0 > 0);
    assert_eq!(c.cmd(&["FCALL", "keep", "0", "50000"]), ":50000\r\n");
    let mem = c.cmd(&["INFO", "memory"]);
    let lua1 = get(&mem, "used_memory_lua");
    assert!(lua1 > lua0 + 50000 * 100, "a library keeping 5 MB: used_memory_lua {lua0} -> {lua1}");
    assert_eq!(get(&mem, "used_memory_vm_eval"), lua1);
    assert_eq!(get(&mem, "used_memory_vm_total"), lua1);
    // A flush drops the library's heap with the library.
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert_eq!(c.cmd(&["EVAL", "return 1", "0"]), ":1\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while num(&mut c, "used_memory_lua") > lua0 + 1_000_000 {
        assert!(Instant::now() < deadline, "the flushed library's heap stays counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// UNLINK and FLUSHALL / FLUSHDB ASYNC free in the background what takes
/// long to free, and INFO counts it as redis-server does: a set of 1,000
/// members is one lazily freed object, a small set none, a flushed
/// database as many as it had keys; DEL and a plain FLUSHALL free at once.
#[test]
fn lazy_freeing_is_counted_as_redis_counts_it() {
    let s = Server::start();
    let r = Redis::start();
    let run = |c: &mut damselfly_tests::Raw| -> Vec<String> {
        let mut seen = Vec::new();
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let mut sadd = vec!["SADD", "big"];
        sadd.extend(members.iter().map(String::as_str));
        let settled = |c: &mut damselfly_tests::Raw| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let info = c.cmd(&["INFO", "memory"]);
                if field(&info, "lazyfree_pending_objects") == "0" || Instant::now() > deadline {
                    return field(&info, "lazyfreed_objects");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
        c.cmd(&sadd);
        c.cmd(&["SADD", "small", "a", "b"]);
        c.cmd(&sadd.iter().map(|a| if *a == "big" { "big2" } else { a }).collect::<Vec<_>>());
        seen.push(c.cmd(&["UNLINK", "big", "small", "nosuch"]));
        seen.push(settled(c));
        seen.push(c.cmd(&["DEL", "big2"]));
        seen.push(settled(c));
        for i in 0..100 {
            c.cmd(&["SET", &format!("k{i}"), "v"]);
        }
        seen.push(c.cmd(&["FLUSHALL"]));
        seen.push(settled(c));
        for i in 0..100 {
            c.cmd(&["SET", &format!("k{i}"), "v"]);
        }
        seen.push(c.cmd(&["FLUSHDB", "ASYNC"]));
        seen.push(settled(c));
        seen.push(c.cmd(&["FLUSHALL", "ASYNC"]));
        seen.push(c.cmd(&["FLUSHALL", "LATER"]));
        seen.push(c.cmd(&["DBSIZE"]));
        seen.push(settled(c));
        seen
    };
    let ours = run(&mut s.raw());
    assert_eq!(ours, run(&mut r.raw()));
    assert_eq!(ours[1], "1", "the big set was freed in the background, the small one at once");
    assert_eq!(ours[7], "101", "then the flushed database's 100 keys");
}
