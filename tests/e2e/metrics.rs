//! The Prometheus endpoint (`--metrics-port`) and the log options
//! (`--logfile`, `--log-format`), against a real process: a scrape parses
//! with a Prometheus text parser, its figures move with a workload
//! (commands, keys, hits and misses, expiry, eviction, cross-shard hops)
//! and agree with INFO; only `GET /metrics` answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use damselfly_tests::cluster::{wait_until, TempDir};
use damselfly_tests::{free_port, Raw, Server};
use prometheus_parse::{Scrape, Value};

/// An HTTP/1.1 request to the endpoint: (status code, body).
fn http(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (code, body.to_string())
}

fn scrape(port: u16) -> Scrape {
    let (code, body) = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(code, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples.iter().find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))).map(|x| match &x.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is not a single value: {other:?}"),
    })
}

fn must(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(s, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in the scrape"))
}

fn info_field(c: &mut Raw, field: &str) -> f64 {
    let text = c.cmd(&["INFO", "everything"]);
    let at = text.find(&format!("\r\n{field}:")).unwrap_or_else(|| panic!("INFO has no {field}"));
    let rest = &text[at + field.len() + 3..];
    rest[..rest.find('\r').expect("line end")].parse().expect("a number")
}

/// A server with the endpoint on, and its metrics port.
fn start(extra: &[&str]) -> (Server, u16) {
    for _ in 0..5 {
        let port = free_port();
        let p = port.to_string();
        let mut args = vec!["--metrics-port", p.as_str(), "--save", ""];
        args.extend_from_slice(extra);
        // Either port may have been taken meanwhile: then try other ones.
        if let Some(server) = Server::start_at(free_port(), &args) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (server, port);
            }
        }
    }
    panic!("no metrics endpoint came up");
}

#[test]
fn figures_follow_the_workload_and_agree_with_info() {
    let (server, mport) = start(&["--shards", "2"]);
    let mut c = server.raw();
    let before = scrape(mport);
    assert_eq!(must(&before, "redis_up", &[]), 1.0);
    let sets_before = value(&before, "redis_commands_total", &[("cmd", "set")]).unwrap_or(0.0);
    let hits_before = must(&before, "redis_keyspace_hits_total", &[]);
    let misses_before = must(&before, "redis_keyspace_misses_total", &[]);
    let hops_before: f64 = (0..2).map(|s| must(&before, "damselfly_shard_hops_total", &[("shard", &s.to_string())])).sum();

    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    for i in 0..5 {
        assert_eq!(c.cmd(&["SET", &format!("t{i}"), "v", "EX", "1000"]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["GET", "k1"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "k2"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
    // Keys on both shards: the multi-key command visits the other one.
    assert_eq!(c.cmd(&["MGET", "k1", "k2", "k3", "k4", "k5", "k6"]).matches("$1\r\nv").count(), 6);
    assert_eq!(c.cmd(&["SET", "gone", "v", "PX", "1"]), "+OK\r\n");
    assert!(wait_until(10, || c.cmd(&["DBSIZE"]) == ":25\r\n"), "the short-lived key did not expire");

    let after = scrape(mport);
    assert_eq!(must(&after, "redis_commands_total", &[("cmd", "set")]) - sets_before, 26.0);
    assert_eq!(must(&after, "redis_commands_total", &[("cmd", "get")]), 3.0);
    assert!(must(&after, "redis_commands_duration_seconds_total", &[("cmd", "set")]) > 0.0);
    assert_eq!(must(&after, "redis_db_keys", &[("db", "db0")]), 25.0);
    assert_eq!(must(&after, "redis_db_keys_expiring", &[("db", "db0")]), 5.0);
    assert!(must(&after, "redis_db_avg_ttl_seconds", &[("db", "db0")]) > 900.0);
    assert_eq!(must(&after, "redis_keyspace_hits_total", &[]) - hits_before, 8.0);
    assert_eq!(must(&after, "redis_keyspace_misses_total", &[]) - misses_before, 1.0);
    assert!(must(&after, "redis_expired_keys_total", &[]) >= 1.0);
    assert!(must(&after, "redis_net_input_bytes_total", &[]) > must(&before, "redis_net_input_bytes_total", &[]));
    assert!(must(&after, "redis_net_output_bytes_total", &[]) > must(&before, "redis_net_output_bytes_total", &[]));
    assert_eq!(must(&after, "redis_connected_clients", &[]), 1.0);
    let shard_keys: f64 = (0..2).map(|s| must(&after, "damselfly_shard_keys", &[("shard", &s.to_string())])).sum();
    assert_eq!(shard_keys, 25.0);
    let hops: f64 = (0..2).map(|s| must(&after, "damselfly_shard_hops_total", &[("shard", &s.to_string())])).sum();
    assert!(hops > hops_before, "MGET across shards made no hop ({hops_before} -> {hops})");
    for s in 0..2 {
        let shard = s.to_string();
        assert!(value(&after, "damselfly_shard_busy_seconds_total", &[("shard", &shard)]).is_some());
        assert!(value(&after, "damselfly_shard_queue_depth", &[("shard", &shard)]).is_some());
        assert!(value(&after, "damselfly_shard_lock_waits_total", &[("shard", &shard)]).is_some());
    }
    // The per-command histogram counts every SET, in ascending buckets.
    let hist = after
        .samples
        .iter()
        .find(|x| {
            x.metric.starts_with("damselfly_command_latency_seconds")
                && x.labels.get("cmd") == Some("set")
                && matches!(x.value, Value::Histogram(_))
        })
        .map(|x| x.value.clone());
    let Some(Value::Histogram(buckets)) = hist else { panic!("no latency histogram for set: {hist:?}") };
    let last = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
    assert_eq!(last, must(&after, "redis_commands_total", &[("cmd", "set")]));
    assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count), "{buckets:?}");

    // Figures that INFO shows too are the same.
    let now = scrape(mport);
    for (metric, field) in [
        ("redis_expired_keys_total", "expired_keys"),
        ("redis_keyspace_hits_total", "keyspace_hits"),
        ("redis_keyspace_misses_total", "keyspace_misses"),
        ("redis_evicted_keys_total", "evicted_keys"),
        ("redis_memory_max_bytes", "maxmemory"),
        ("redis_connections_received_total", "total_connections_received"),
        ("redis_rdb_last_save_timestamp_seconds", "rdb_last_save_time"),
    ] {
        assert_eq!(must(&now, metric, &[]), info_field(&mut c, field), "{metric} vs INFO {field}");
    }
}

#[test]
fn evictions_and_the_slow_log_are_counted() {
    let (server, mport) = start(&[]);
    let mut c = server.raw();
    assert_eq!(must(&scrape(mport), "redis_evicted_keys_total", &[]), 0.0);
    let used = info_field(&mut c, "used_memory") as u64;
    let limit = (used + (4 << 20)).to_string();
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit]), "+OK\r\n");
    let value = "x".repeat(4000);
    for i in 0..3000 {
        assert_eq!(c.cmd(&["SET", &format!("fill{i}"), &value]), "+OK\r\n");
    }
    let s = scrape(mport);
    assert_eq!(must(&s, "redis_memory_max_bytes", &[]), limit.parse::<f64>().unwrap());
    // Lift the limit so nothing is evicted between the readings below.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    let s = scrape(mport);
    let evicted = must(&s, "redis_evicted_keys_total", &[]);
    assert!(evicted > 0.0, "nothing evicted under a 4 MB budget");
    assert_eq!(evicted, info_field(&mut c, "evicted_keys"));
    assert_eq!(must(&s, "redis_db_keys", &[("db", "db0")]) + evicted, 3000.0);

    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    // The scrape adds no entry; SLOWLOG LEN counts what came before it.
    let s = scrape(mport);
    let len = c.cmd(&["SLOWLOG", "LEN"]);
    assert_eq!(format!(":{}\r\n", must(&s, "redis_slowlog_length", &[])), len);
}

#[test]
fn only_get_metrics_answers() {
    let (server, mport) = start(&[]);
    let cases: &[(&str, u16)] = &[
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    ];
    for (req, want) in cases {
        assert_eq!(http(mport, req).0, *want, "{req:?}");
    }
    assert!(http(mport, "HEAD /metrics HTTP/1.1\r\n\r\n").1.is_empty());
    // A head past 8 KB is refused rather than read on.
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(http(mport, &big).0, 431);
    let mut c = server.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "metrics-port"]),
        format!("*2\r\n$12\r\nmetrics-port\r\n${}\r\n{mport}\r\n", mport.to_string().len())
    );
    assert!(c.cmd(&["CONFIG", "SET", "metrics-port", "1"]).starts_with("-ERR"));
}

#[test]
fn the_endpoint_is_off_unless_set() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "metrics-port"]), "*2\r\n$12\r\nmetrics-port\r\n$1\r\n0\r\n");
}

#[test]
fn logfile_receives_the_log_as_text_or_json() {
    for format in ["text", "json"] {
        let dir = TempDir::new("logfile");
        let path = format!("{}/node.log", dir.path());
        let server = Server::start_with(&["--logfile", &path, "--log-format", format, "--loglevel", "info"]);
        let mut c = server.raw();
        assert_eq!(c.cmd(&["CONFIG", "GET", "logfile"]), format!("*2\r\n$7\r\nlogfile\r\n${}\r\n{path}\r\n", path.len()));
        let text = std::fs::read_to_string(&path).expect("the log file exists");
        // The harness may have tried another port first (appending to the
        // same file): the line of the server that came up is there.
        let port = if format == "json" { format!("\"port\":{}", server.port) } else { format!("port={}", server.port) };
        let ready: Vec<&str> = text.lines().filter(|l| l.contains("Ready to accept connections") && l.contains(&port)).collect();
        assert_eq!(ready.len(), 1, "{format}: {text}");
        if format == "json" {
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert!(v.get("level").is_some() && v.get("fields").is_some(), "{line}");
            }
        } else {
            assert!(!ready[0].starts_with('{'), "{}", ready[0]);
        }
        drop(server);
    }
    // A bad format is refused at start.
    let out = damselfly_tests::start_refused(&["--log-format", "xml"]);
    assert!(out.contains("text, json"), "{out}");
}

#[test]
fn cluster_figures_follow_raft_and_migration() {
    use damselfly_tests::cluster::{admin, slot_owner_port, RawAt};
    let dirs = [TempDir::new("metrics-a"), TempDir::new("metrics-b")];
    let (a, pa) = start(&["--cluster", "--dir", dirs[0].path()]);
    let (b, pb) = start(&["--cluster", "--dir", dirs[1].path()]);
    // Before the cluster forms, a node shows no leader.
    assert_eq!(must(&scrape(pa), "damselfly_raft_has_leader", &[]), 0.0);
    let (ok, out, err) = admin(a.port, &["create", &format!("127.0.0.1:{}", b.port)]);
    assert!(ok, "create failed: {out}{err}");
    let leaders = || [pa, pb].map(|p| value(&scrape(p), "damselfly_raft_is_leader", &[]).unwrap_or(0.0));
    assert!(wait_until(20, || leaders().iter().sum::<f64>() == 1.0), "no single leader: {:?}", leaders());
    assert!(wait_until(20, || [a.port, b.port].iter().all(|&p| Server::raw_at(p).cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))));
    for p in [pa, pb] {
        let s = scrape(p);
        assert_eq!(must(&s, "redis_cluster_enabled", &[]), 1.0);
        assert_eq!(must(&s, "damselfly_raft_has_leader", &[]), 1.0);
        assert!(must(&s, "damselfly_raft_term", &[]) >= 1.0);
        assert_eq!(must(&s, "damselfly_raft_voters", &[]), 2.0);
        let applied = must(&s, "damselfly_raft_last_applied_index", &[]);
        assert!(applied >= 1.0 && must(&s, "damselfly_raft_commit_index", &[]) >= applied, "applied {applied}");
        let state = s.samples.iter().find(|x| x.metric == "damselfly_raft_state").and_then(|x| x.labels.get("state").map(String::from));
        let leads = must(&s, "damselfly_raft_is_leader", &[]) == 1.0;
        assert_eq!(state.as_deref(), Some(if leads { "leader" } else { "follower" }));
        assert_eq!(must(&s, "damselfly_migration_running", &[]), 0.0);
    }

    // Move one slot, with its keys, away from its owner: the source counts
    // what it sent.
    let slot = damselfly_tests::key_slot(b"m");
    let owner = slot_owner_port(a.port, slot).expect("the slot has an owner");
    let (from, to, mport) = if owner == a.port { (a.port, b.port, pa) } else { (b.port, a.port, pb) };
    let mut c = Server::raw_at(from);
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("{{m}}:{i}"), "value"]), "+OK\r\n");
    }
    let before = scrape(mport);
    let (ok, out, err) = admin(
        from,
        &["move-slots", "--from", &format!("127.0.0.1:{from}"), "--to", &format!("127.0.0.1:{to}"), "--slots", &slot.to_string()],
    );
    assert!(ok, "move-slots failed: {out}{err}");
    let after = scrape(mport);
    let sent = |s: &Scrape, m: &str| must(s, m, &[]);
    assert_eq!(sent(&after, "damselfly_migration_keys_sent_total") - sent(&before, "damselfly_migration_keys_sent_total"), 50.0);
    assert!(sent(&after, "damselfly_migration_bytes_sent_total") > sent(&before, "damselfly_migration_bytes_sent_total"));
    assert_eq!(must(&after, "damselfly_migration_running", &[]), 0.0);
    assert_eq!(sent(&after, "damselfly_migrations_completed_total") - sent(&before, "damselfly_migrations_completed_total"), 1.0);
    assert!(value(&before, "damselfly_migration_last_pause_seconds", &[]).is_none());
    assert!(must(&after, "damselfly_migration_last_pause_seconds", &[]) > 0.0);
    assert_eq!(slot_owner_port(from, slot), Some(to));
}

#[test]
fn the_directives_work_from_a_config_file() {
    let dir = TempDir::new("metrics-conf");
    let conf = format!("{}/damselfly.conf", dir.path());
    let log = format!("{}/node.log", dir.path());
    for _ in 0..5 {
        let mport = free_port();
        std::fs::write(&conf, format!("metrics-port {mport}\nlogfile \"{log}\"\nlog-format json\n")).expect("write the config");
        let Some(server) = Server::start_at(free_port(), &[&conf, "--loglevel", "info"]) else { continue };
        assert_eq!(http(mport, "GET /metrics HTTP/1.1\r\n\r\n").0, 200);
        let text = std::fs::read_to_string(&log).expect("the log file exists");
        let ready = format!("\"port\":{}", server.port);
        assert!(text.lines().any(|l| l.starts_with('{') && l.contains("Ready to accept connections") && l.contains(&ready)), "{text}");
        return;
    }
    panic!("no node started from the config file");
}
