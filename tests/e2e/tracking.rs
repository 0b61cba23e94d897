//! Client-side caching (CLIENT TRACKING): invalidations as RESP3 pushes and,
//! through REDIRECT, as `__redis__:invalidate` messages to a RESP2
//! subscriber, for every write path; BCAST with prefixes, OPTIN/OPTOUT with
//! CLIENT CACHING, NOLOOP, TRACKINGINFO, GETREDIR and the INFO fields. Each
//! scenario runs the same commands on redis-server 7.0 and on this server
//! and the two transcripts must be equal (client ids are written as `ID`).
//! A reply that must not come is checked with a sentinel: a later
//! invalidation that must be the next thing the connection reads.

use damselfly_tests::{key_slot, Raw, Redis, Server};

/// The exact bytes of an invalidation push for `keys`.
fn push(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s += &format!("${}\r\n{k}\r\n", k.len());
    }
    s
}

/// A transcript: each reply read, as text.
struct Log {
    lines: Vec<String>,
    /// Client ids to write as `ID`.
    ids: Vec<String>,
}

impl Log {
    fn new() -> Log {
        Log { lines: Vec::new(), ids: Vec::new() }
    }

    fn add(&mut self, s: String) -> String {
        let mut t = s.clone();
        for id in &self.ids {
            t = t.replace(&format!(":{id}\r\n"), ":ID\r\n").replace(&format!(" {id} "), " ID ");
        }
        self.lines.push(t);
        s
    }

    fn cmd(&mut self, c: &mut Raw, args: &[&str]) -> String {
        let r = c.cmd(args);
        self.add(r)
    }

    fn read(&mut self, c: &mut Raw) -> String {
        let r = String::from_utf8_lossy(&c.read_reply()).into_owned();
        self.add(r)
    }

    fn id(&mut self, c: &mut Raw) -> String {
        let r = c.cmd(&["CLIENT", "ID"]);
        let id = r.trim_start_matches(':').trim_end().to_string();
        self.ids.push(id.clone());
        id
    }
}

/// A RESP3 connection tracking with `opts`.
fn tracker(port: u16, log: &mut Log, opts: &[&str]) -> Raw {
    let mut c = Raw::connect(port);
    c.cmd(&["HELLO", "3"]);
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend_from_slice(opts);
    log.cmd(&mut c, &args);
    c
}

/// Runs `scenario` on redis-server 7.0 and on this server (started with
/// `extra`), checks the transcripts are equal and returns ours.
fn both(extra: &[&str], scenario: fn(u16, &mut Log)) -> Vec<String> {
    let redis = Redis::start();
    let mut theirs = Log::new();
    scenario(redis.port, &mut theirs);
    let ours_server = Server::start_with(extra);
    let mut ours = Log::new();
    scenario(ours_server.port, &mut ours);
    assert_eq!(ours.lines, theirs.lines, "this server (left) and redis-server (right) differ");
    ours.lines
}

#[test]
fn a_read_key_changed_by_another_client_is_invalidated_once() {
    let lines = both(&[], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["SET", "k", "v"]);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut b, &["SET", "k", "w"]);
        log.read(&mut a);
        // Not tracked any more until read again: the next push is j's.
        log.cmd(&mut b, &["SET", "k", "x"]);
        log.cmd(&mut a, &["GET", "j"]);
        log.cmd(&mut b, &["MSET", "k", "y", "j", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["PING"]);
    });
    assert_eq!(
        lines,
        ["+OK\r\n", "+OK\r\n", "$1\r\nv\r\n", "+OK\r\n", &push(&["k"]), "+OK\r\n", "_\r\n", "+OK\r\n", &push(&["j"]), "+PONG\r\n"]
    );
}

#[test]
fn redirect_to_a_resp2_subscriber_and_flush_sends_null() {
    let lines = both(&[], |port, log| {
        let mut sub = Raw::connect(port);
        let id = log.id(&mut sub);
        log.cmd(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
        let mut a = Raw::connect(port);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
        log.cmd(&mut a, &["CLIENT", "GETREDIR"]);
        log.cmd(&mut a, &["GET", "k"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["SET", "k", "1"]);
        log.read(&mut sub);
        log.cmd(&mut b, &["FLUSHALL"]);
        log.read(&mut sub);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "off"]);
        log.cmd(&mut a, &["CLIENT", "GETREDIR"]);
    });
    assert_eq!(
        lines,
        [
            "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
            "+OK\r\n",
            ":ID\r\n",
            "$-1\r\n",
            "+OK\r\n",
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n",
            "+OK\r\n",
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n",
            "+OK\r\n",
            ":-1\r\n",
        ]
    );
}

#[test]
fn flushdb_sends_the_null_invalidation_as_a_push() {
    let lines = both(&[], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["FLUSHDB"]);
        log.read(&mut a);
    });
    assert_eq!(lines, ["+OK\r\n", "+OK\r\n", ">2\r\n$10\r\ninvalidate\r\n_\r\n"]);
}

#[test]
fn multi_scripts_and_expiry_invalidate() {
    both(&["--shards", "2"], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["GET", "m"]);
        log.cmd(&mut b, &["MULTI"]);
        log.cmd(&mut b, &["SET", "m", "1"]);
        log.cmd(&mut b, &["EXEC"]);
        log.read(&mut a);
        log.cmd(&mut a, &["GET", "s"]);
        log.cmd(&mut b, &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "s"]);
        log.read(&mut a);
        log.cmd(&mut b, &["SET", "e", "1", "PX", "30"]);
        log.cmd(&mut a, &["GET", "e"]);
        // Active expiry deletes it (observable: the push comes).
        log.read(&mut a);
    });
}

#[test]
fn mset_over_two_shards_invalidates_each_key() {
    let mut lines = both(&["--shards", "2"], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["MGET", "k1", "k2", "k3"]);
        log.cmd(&mut b, &["MSET", "k1", "1", "k2", "2", "k3", "3"]);
        let mut pushes = vec![log.read(&mut a), log.read(&mut a), log.read(&mut a)];
        pushes.sort();
        log.lines.truncate(log.lines.len() - 3);
        log.lines.extend(pushes);
    });
    let shards: std::collections::BTreeSet<u16> = [b"k1", b"k2", b"k3"].iter().map(|k| damselfly_tests::key_slot(*k) % 2).collect();
    assert_eq!(shards.len(), 2, "the keys are on both shards");
    let tail = lines.split_off(3);
    assert_eq!(tail, [push(&["k1"]), push(&["k2"]), push(&["k3"])]);
}

#[test]
fn bcast_sends_changed_keys_under_its_prefixes() {
    let lines = both(&[], |port, log| {
        let mut a = tracker(port, log, &["BCAST", "PREFIX", "user:", "PREFIX", "obj:"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["SET", "other", "1"]);
        log.cmd(&mut b, &["SET", "user:1", "1"]);
        log.read(&mut a);
        log.cmd(&mut b, &["SET", "obj:9", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:x"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "PREFIX", "z"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on"]);
    });
    assert_eq!(lines[3], push(&["user:1"]));
    assert_eq!(lines[5], push(&["obj:9"]));
    assert_eq!(lines[6], "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$4\r\nobj:\r\n$5\r\nuser:\r\n");
}

#[test]
fn optin_tracks_only_after_caching_yes_and_optout_skips_after_caching_no() {
    both(&[], |port, log| {
        let mut a = tracker(port, log, &["OPTIN"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "YES"]);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        log.cmd(&mut a, &["GET", "j"]);
        log.cmd(&mut a, &["GET", "i"]);
        log.cmd(&mut b, &["MSET", "k", "1", "i", "1"]);
        log.cmd(&mut b, &["SET", "j", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "CACHING", "NO"]);
        let mut o = tracker(port, log, &["OPTOUT"]);
        log.cmd(&mut o, &["CLIENT", "CACHING", "NO"]);
        log.cmd(&mut o, &["GET", "k"]);
        log.cmd(&mut o, &["GET", "j"]);
        log.cmd(&mut b, &["SET", "k", "2"]);
        log.cmd(&mut b, &["SET", "j", "2"]);
        log.read(&mut o);
        log.cmd(&mut o, &["CLIENT", "TRACKING", "on", "OPTIN"]);
    });
}

#[test]
fn noloop_leaves_out_the_clients_own_writes() {
    let lines = both(&[], |port, log| {
        let mut a = tracker(port, log, &["NOLOOP"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut a, &["SET", "k", "1"]);
        log.cmd(&mut a, &["GET", "j"]);
        log.cmd(&mut b, &["SET", "j", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
    });
    assert_eq!(lines[5], push(&["j"]));
}

#[test]
fn own_writes_are_reported_after_the_reply_without_noloop() {
    both(&[], |port, log| {
        let mut a = tracker(port, log, &[]);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut a, &["SET", "k", "1"]);
        log.read(&mut a);
    });
}

#[test]
fn option_errors_and_info_fields_match() {
    both(&[], |port, log| {
        let mut a = Raw::connect(port);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        log.cmd(&mut a, &["CLIENT", "GETREDIR"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "YES"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "PREFIX", "a"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "maybe"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "BOGUS"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "OPTIN"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "NO"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "MAYBE"]);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        log.cmd(&mut a, &["GET", "x"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "YES"]);
        log.cmd(&mut a, &["MGET", "x", "y"]);
        let info = a.cmd(&["INFO"]);
        let field = |name: &str| info.lines().find(|l| l.starts_with(name)).unwrap_or("missing").to_string();
        for f in ["tracking_clients:", "tracking_total_keys:", "tracking_total_items:", "tracking_total_prefixes:"] {
            log.lines.push(field(f));
        }
        let list = a.cmd(&["CLIENT", "INFO"]);
        log.lines.push(list.split(' ').find(|p| p.starts_with("flags=")).unwrap_or("").to_string());
    });
}

#[test]
fn reads_in_multi_and_scripts_are_tracked() {
    both(&["--shards", "2"], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["MULTI"]);
        log.cmd(&mut a, &["GET", "t1"]);
        log.cmd(&mut a, &["EXEC"]);
        log.cmd(&mut b, &["SET", "t1", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "t2"]);
        log.cmd(&mut b, &["SET", "t2", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["EVAL", "return redis.call('get', KEYS[1])", "1", "t3"]);
        log.cmd(&mut b, &["SET", "t3", "1"]);
        log.read(&mut a);
    });
}

/// The keys a tracking client read: INFO's `tracking_total_keys`.
fn total_keys(c: &mut Raw) -> String {
    let info = c.cmd(&["INFO", "stats"]);
    info.lines().find(|l| l.starts_with("tracking_total_keys:")).unwrap_or("missing").to_string()
}

#[test]
fn a_full_table_lets_go_of_a_key_invalidating_it() {
    // One shard: the whole bound is its own (redis-server picks the key
    // to let go at random, so this server is checked alone).
    let s = Server::start_with(&["--shards", "1"]);
    let mut log = Log::new();
    let mut a = tracker(s.port, &mut log, &[]);
    assert_eq!(a.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]), "+OK\r\n");
    assert_eq!(a.cmd(&["CONFIG", "GET", "tracking-table-max-keys"]), "%1\r\n$23\r\ntracking-table-max-keys\r\n$1\r\n2\r\n");
    assert_eq!(a.cmd(&["GET", "a"]), "_\r\n");
    assert_eq!(a.cmd(&["GET", "b"]), "_\r\n");
    assert_eq!(total_keys(&mut a), "tracking_total_keys:2");
    assert_eq!(a.cmd(&["GET", "c"]), "_\r\n");
    let p = String::from_utf8_lossy(&a.read_reply()).into_owned();
    assert!(p == push(&["a"]) || p == push(&["b"]), "{p:?}");
    assert_eq!(total_keys(&mut a), "tracking_total_keys:2");
}

/// `tracking-table-max-keys` bounds the node's keys, not each shard's:
/// lowered at run time, the shards' ticks let go of exactly the keys over
/// it, idle as the node is (Redis's unit/tracking "Server is able to
/// evacuate enough keys when num of keys surpasses limit by more than
/// defined initial effort", here on three shards).
#[test]
fn the_table_limit_is_the_nodes_across_shards() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut sub = s.raw();
    let id = sub.cmd(&["CLIENT", "ID"]).trim_start_matches(':').trim().to_string();
    sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut a = s.raw();
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id]), "+OK\r\n");
    let mut w = s.raw();
    for i in 0..250 {
        let k = format!("key{i}");
        w.cmd(&["SET", &k, "v"]);
        a.cmd(&["GET", &k]);
    }
    assert_eq!(total_keys(&mut a), "tracking_total_keys:250");
    assert_eq!(a.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]), "+OK\r\n");
    for _ in 0..249 {
        let m = String::from_utf8_lossy(&sub.read_reply()).into_owned();
        assert!(m.starts_with("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$"), "{m:?}");
    }
    // Not one more.
    assert_eq!(sub.cmd(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(total_keys(&mut a), "tracking_total_keys:1");
}

#[test]
fn eviction_invalidates_the_keys_it_deletes() {
    let s = Server::start_with(&["--shards", "1"]);
    let mut log = Log::new();
    let mut a = tracker(s.port, &mut log, &[]);
    let mut b = s.raw();
    let value = "x".repeat(1000);
    let keys: Vec<String> = (0..500).map(|i| format!("ev{i}")).collect();
    for k in &keys {
        assert_eq!(b.cmd(&["SET", k, &value]), "+OK\r\n");
        assert_eq!(a.cmd(&["GET", k]), format!("$1000\r\n{value}\r\n"));
    }
    let info = b.cmd(&["INFO", "memory"]);
    let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.parse().ok()).expect("used_memory");
    assert_eq!(b.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]), "+OK\r\n");
    assert_eq!(b.cmd(&["CONFIG", "SET", "maxmemory", &(used - 200_000).to_string()]), "+OK\r\n");
    // The next command makes room first: the deleted keys' readers are told.
    b.cmd(&["SET", "trigger", "1"]);
    let p = String::from_utf8_lossy(&a.read_reply()).into_owned();
    assert!(keys.iter().any(|k| p == push(&[k])), "{p:?}");
    let stats = b.cmd(&["INFO", "stats"]);
    assert!(!stats.contains("evicted_keys:0\r\n"), "{stats}");
}

#[test]
fn a_gone_redirect_target_is_reported_to_the_tracking_client() {
    let lines = both(&[], |port, log| {
        let mut target = Raw::connect(port);
        let id = log.id(&mut target);
        let mut a = Raw::connect(port);
        a.cmd(&["HELLO", "3"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
        log.cmd(&mut target, &["QUIT"]);
        // Gone once CLIENT LIST no longer names it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while a.cmd(&["CLIENT", "LIST"]).contains(&format!("id={id} ")) {
            assert!(std::time::Instant::now() < deadline, "the target never left");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        log.cmd(&mut a, &["GET", "k"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["SET", "k", "1"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        let info = a.cmd(&["CLIENT", "INFO"]);
        log.lines.push(info.split(' ').find(|p| p.starts_with("flags=")).unwrap_or("").to_string());
    });
    assert_eq!(lines[4], ">2\r\n$21\r\ntracking-redir-broken\r\n:ID\r\n");
    assert_eq!(lines[6], "flags=tR");
}

#[test]
fn caching_yes_applies_to_the_next_command_of_a_pipeline() {
    both(&["--shards", "2"], |port, log| {
        let mut a = tracker(port, log, &["OPTIN"]);
        let mut b = Raw::connect(port);
        a.send(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nCACHING\r\n$3\r\nYES\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nj\r\n");
        for _ in 0..3 {
            log.read(&mut a);
        }
        log.cmd(&mut b, &["SET", "j", "1"]);
        log.cmd(&mut b, &["SET", "k", "1"]);
        log.read(&mut a);
        // A command over both shards is tracked whole.
        log.cmd(&mut a, &["CLIENT", "CACHING", "YES"]);
        log.cmd(&mut a, &["MGET", "k1", "k2", "k3"]);
        log.cmd(&mut a, &["GET", "k4"]);
        log.cmd(&mut b, &["MSET", "k1", "1", "k2", "2", "k3", "3", "k4", "4"]);
        let mut pushes = vec![log.read(&mut a), log.read(&mut a), log.read(&mut a)];
        pushes.sort();
        log.lines.truncate(log.lines.len() - 3);
        log.lines.extend(pushes);
        log.cmd(&mut b, &["SET", "k4", "5"]);
        log.cmd(&mut a, &["CLIENT", "CACHING", "YES"]);
        log.cmd(&mut a, &["GET", "k5"]);
        log.cmd(&mut b, &["SET", "k5", "1"]);
        log.read(&mut a);
    });
}

#[test]
fn bcast_sends_a_commands_keys_under_one_prefix_together() {
    let lines = both(&["--shards", "1"], |port, log| {
        let mut a = tracker(port, log, &["BCAST", "PREFIX", "u:", "PREFIX", "o:", "NOLOOP"]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["MSET", "u:1", "a", "x", "b", "u:2", "c"]);
        log.read(&mut a);
        // Its own writes are left out (NOLOOP).
        log.cmd(&mut a, &["SET", "u:3", "1"]);
        log.cmd(&mut b, &["SET", "o:1", "1"]);
        log.read(&mut a);
    });
    assert_eq!(lines[2], push(&["u:1", "u:2"]));
    assert_eq!(lines[5], push(&["o:1"]));
}

#[test]
fn turning_keyspace_events_off_leaves_tracking_on() {
    both(&[], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut b, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        log.cmd(&mut b, &["CONFIG", "SET", "notify-keyspace-events", ""]);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut b, &["INCR", "k"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "off"]);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut b, &["INCR", "k"]);
        log.cmd(&mut a, &["CLIENT", "TRACKINGINFO"]);
        log.cmd(&mut a, &["PING"]);
    });
}

/// A script's read commands make its caller track the keys the script
/// declared, not the keys they read (Redis's rule); a client that read a
/// key and switched to BCAST hears of it by its prefixes only, and before
/// the reply to its next command; a RESP3 connection that neither tracks
/// nor subscribes receives the invalidations redirected to it; FLUSHALL
/// empties the table of keys read by clients that stopped tracking.
#[test]
fn scripts_bcast_switches_resp3_redirects_and_flushall_match_redis() {
    both(&["--shards", "2"], |port, log| {
        let mut a = tracker(port, log, &[]);
        let mut b = Raw::connect(port);
        log.cmd(&mut a, &["EVAL", "return redis.call('get', 'other')", "1", "declared"]);
        log.cmd(&mut b, &["SET", "other", "1"]);
        log.cmd(&mut b, &["SET", "declared", "1"]);
        log.read(&mut a);
        // A script that reads nothing tracks nothing.
        log.cmd(&mut a, &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "w"]);
        log.cmd(&mut b, &["SET", "w", "2"]);
        log.cmd(&mut a, &["PING"]);
        log.cmd(&mut a, &["GET", "k"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "OFF"]);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "ON", "BCAST"]);
        log.cmd(&mut b, &["INCR", "k"]);
        log.cmd(&mut a, &["PING"]);
        log.read(&mut a);
        log.cmd(&mut a, &["CLIENT", "TRACKING", "OFF"]);
        let mut target = Raw::connect(port);
        target.cmd(&["HELLO", "3"]);
        let id = log.id(&mut target);
        let mut c = Raw::connect(port);
        log.cmd(&mut c, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
        log.cmd(&mut c, &["GET", "rk"]);
        log.cmd(&mut b, &["SET", "rk", "1"]);
        log.read(&mut target);
        log.cmd(&mut c, &["GET", "left"]);
        log.cmd(&mut c, &["CLIENT", "TRACKING", "OFF"]);
        log.add(total_keys(&mut b));
        log.cmd(&mut b, &["FLUSHALL"]);
        log.add(total_keys(&mut b));
        log.cmd(&mut target, &["PING"]);
    });
}

/// Under load from other pipelining clients (so that replies of a round
/// are written together), a write acknowledged to one client has already
/// been broadcast: the tracking client's next reply comes after the
/// invalidation, whichever thread each connection lives on.
#[test]
fn a_broadcast_precedes_the_acknowledgement_under_load() {
    let server = Server::start_with(&["--shards", "2"]);
    let port = server.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut batch = Vec::new();
                for i in 0..16 {
                    batch.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$6\r\nbg{n}:{i:02}\r\n$1\r\nv\r\n").as_bytes());
                }
                let mut rounds = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && rounds < 100_000 {
                    c.send(&batch);
                    for _ in 0..16 {
                        assert_eq!(c.read_reply(), b"+OK\r\n");
                    }
                    rounds += 1;
                }
            })
        })
        .collect();
    let mut t = Raw::connect(port);
    t.cmd(&["HELLO", "3"]);
    assert_eq!(t.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "k:"]), "+OK\r\n");
    let mut writers: Vec<Raw> = (0..4).map(|_| Raw::connect(port)).collect();
    for i in 0..400 {
        let key = format!("k:{i}");
        assert_eq!(writers[i % 4].cmd(&["SET", &key, "1"]), "+OK\r\n");
        t.send(b"*1\r\n$4\r\nPING\r\n");
        let first = String::from_utf8_lossy(&t.read_reply()).into_owned();
        assert_eq!(first, push(&[&key]), "write {i}: the acknowledged write's invalidation came after the next reply");
        assert_eq!(t.read_reply(), b"+PONG\r\n");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.join().expect("load client");
    }
}

/// A key evicted before a command runs is invalidated ahead of that
/// command's reply, as Redis evicts before each command (its unit/tracking
/// "Tracking invalidation message of eviction keys should be before
/// response"); with several shards too, when the evicted key is on the
/// command's shard (both keys are on shard 0 of 3). A key another shard
/// evicts is invalidated when that shard gets to it, after the reply.
#[test]
fn a_key_evicted_before_a_command_is_invalidated_ahead_of_its_reply() {
    let scenario = |port: u16, log: &mut Log| {
        let mut a = tracker(port, log, &[]);
        // Each server's first call of a command allocates its latency
        // histogram (about 25 KB in both): made before the limit is set
        // from used_memory, so that only the scenario's keys count.
        // (A key never written is read: tracking it sends nothing.)
        for c in [&["INFO", "memory"][..], &["CONFIG", "SET", "maxmemory-policy", "volatile-random"], &["SETEX", "warm", "10000", "x"]] {
            a.cmd(c);
        }
        for c in [&["GET", "never-written"][..], &["DEL", "warm"], &["CONFIG", "SET", "maxmemory", "0"]] {
            a.cmd(c);
        }
        let info = a.cmd(&["INFO", "memory"]);
        let field = |name: &str| -> u64 {
            let at = info.find(&format!("\r\n{name}:")).expect("field");
            info[at + name.len() + 3..].split("\r\n").next().and_then(|v| v.parse().ok()).expect("number")
        };
        let limit = field("used_memory") - field("mem_not_counted_for_evict") + 100 * 1024;
        a.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
        a.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        log.cmd(&mut a, &["SETEX", "volatile-key", "10000", "x"]);
        log.cmd(&mut a, &["GET", "volatile-key"]);
        // 200 KB past the limit: the next command evicts first.
        log.cmd(&mut a, &["SETBIT", "big-key", "1600000", "0"]);
        log.cmd(&mut a, &["GETBIT", "big-key", "0"]);
        log.read(&mut a);
        a.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    };
    let lines = both(&[], scenario);
    assert_eq!(lines, ["+OK\r\n", "+OK\r\n", "$1\r\nx\r\n", ":0\r\n", &push(&["volatile-key"]), ":0\r\n"]);
    let multi = Server::start_with(&["--shards", "3"]);
    let mut log = Log::new();
    scenario(multi.port, &mut log);
    assert_eq!(log.lines, lines, "with three shards");
}

/// As above with the evicted key on another shard than the command's: the
/// command's shard has nothing to evict, so every shard evicts before it
/// runs and the invalidation still comes first (Redis's unit/tracking
/// "Tracking invalidation message of eviction keys should be before
/// response" on a multi-shard server).
#[test]
fn a_key_evicted_by_another_shard_is_invalidated_ahead_of_the_reply() {
    let server = Server::start_with(&["--shards", "2"]);
    let big_shard = key_slot(b"big-key") % 2;
    let names: Vec<String> =
        (0..200).map(|i| format!("volatile-{i}")).filter(|k| key_slot(k.as_bytes()) % 2 != big_shard).take(5).collect();
    let mut log = Log::new();
    let mut a = tracker(server.port, &mut log, &[]);
    a.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
    for name in &names {
        let info = a.cmd(&["INFO", "memory"]);
        let field = |name: &str| -> u64 {
            let at = info.find(&format!("\r\n{name}:")).expect("field");
            info[at + name.len() + 3..].split("\r\n").next().and_then(|v| v.parse().ok()).expect("number")
        };
        let limit = field("used_memory") - field("mem_not_counted_for_evict") + 100 * 1024;
        a.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        log.cmd(&mut a, &["SETEX", name, "10000", "x"]);
        log.cmd(&mut a, &["GET", name]);
        log.cmd(&mut a, &["SETBIT", "big-key", "1600000", "0"]);
        log.cmd(&mut a, &["GETBIT", "big-key", "0"]);
        log.read(&mut a);
        a.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        // big-key was read (GETBIT): the client's own deletion is
        // invalidated after its reply (as Redis 7 sends them).
        assert_eq!(a.cmd(&["DEL", "big-key"]), ":1\r\n");
        assert_eq!(String::from_utf8_lossy(&a.read_reply()), push(&["big-key"]));
        assert_eq!(&log.lines[log.lines.len() - 5..], ["+OK\r\n", "$1\r\nx\r\n", ":0\r\n", &push(&[name]), ":0\r\n"], "key {name}");
    }
}

/// A transaction's broadcasts go out when it ends, one message per
/// prefix, as Redis sends an EXEC's (two shards, the writer on either
/// thread; as Redis's unit/tracking: the tracking client writes, its
/// invalidations redirected to a RESP2 subscriber). The thread holding
/// the keys' shard must not send them when it parks between the
/// transaction's commands, which Redis's unit catches on a slower client;
/// here the commands come too fast for it to park.
#[test]
fn a_transaction_broadcasts_once_per_prefix() {
    both(&["--shards", "2"], |port, log| {
        let mut spare = Vec::new();
        for round in 0..4 {
            // New connections land on the threads in turn: a spare one
            // every other round moves the writer to the other thread.
            if round % 2 == 1 {
                spare.push(Raw::connect(port));
            }
            let mut sub = Raw::connect(port);
            let id = log.id(&mut sub);
            log.cmd(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
            let mut w = Raw::connect(port);
            log.cmd(&mut w, &["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &id, "PREFIX", "a:", "PREFIX", "b:"]);
            log.cmd(&mut w, &["MULTI"]);
            for k in ["a:1{t}", "a:2{t}", "b:1{t}", "b:2{t}", "c:1{t}"] {
                log.cmd(&mut w, &["SET", k, "v"]);
            }
            log.cmd(&mut w, &["EXEC"]);
            log.read(&mut sub);
            log.read(&mut sub);
            log.cmd(&mut w, &["CLIENT", "TRACKING", "OFF"]);
            log.cmd(&mut w, &["SET", "round", &round.to_string()]);
        }
    });
}

/// A key that expires is nobody's change: a broadcasting NOLOOP client
/// hears of it even when its own command came upon it (it used to be left
/// out). First Redis's "Tracking gets notification of lazy expired keys":
/// inside EXEC time stands still (Redis 7 freezes it for a command and all
/// it runs), so the GET after DEBUG SLEEP still reads the key and the
/// invalidation comes from its expiry after EXEC; then a GET that finds
/// the key expired, with active expiry off.
fn lazy_expiry_under_noloop(port: u16, log: &mut Log) {
    let mut sub = Raw::connect(port);
    let redir = log.id(&mut sub);
    log.cmd(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
    let mut c = Raw::connect(port);
    log.cmd(&mut c, &["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &redir, "NOLOOP"]);
    for cmd in [
        &["MULTI"][..],
        &["SET", "mykey{t}", "myval", "PX", "1"],
        &["SET", "mykeyotherkey{t}", "myval"],
        &["DEBUG", "SLEEP", "0.1"],
        &["GET", "mykey{t}"],
        &["EXEC"],
    ] {
        log.cmd(&mut c, cmd);
    }
    log.read(&mut sub);
    log.cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    log.cmd(&mut c, &["SET", "k", "v", "PX", "1"]);
    log.cmd(&mut c, &["DEBUG", "SLEEP", "0.05"]);
    log.cmd(&mut c, &["GET", "k"]);
    log.read(&mut sub);
    log.cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn a_lazily_expired_key_is_invalidated_under_noloop() {
    let debug = ["--enable-debug-command", "yes"];
    let redis = Redis::start_with(&debug);
    let mut theirs = Log::new();
    lazy_expiry_under_noloop(redis.port, &mut theirs);
    let s = Server::start_with(&[&debug[..], &["--shards", "2"]].concat());
    let mut ours = Log::new();
    lazy_expiry_under_noloop(s.port, &mut ours);
    assert_eq!(ours.lines, theirs.lines, "this server (left) and redis-server (right) differ");
    for key in ["mykey{t}", "k"] {
        assert!(ours.lines.iter().any(|l| l.contains("message") && l.contains(&format!("\r\n{key}\r\n"))), "{key}: {:?}", ours.lines);
    }
}
