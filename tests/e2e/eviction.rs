//! maxmemory and eviction, against a real process: per policy, a node filled
//! well past its limit keeps the keys the policy says it keeps and stays
//! near the limit; under noeviction (or with nothing left to evict) writes,
//! writing scripts and transactions get Redis's -OOM while reads and
//! deletes go on; a lower limit set at run time is reached by evicting.

use std::time::{Duration, Instant};

use damselfly_tests::{Raw, Server};

/// Size of the filler values: a few KB, as a cache holds.
const VALUE: usize = 4000;
/// The limit above the node's memory at start (tests set it at run time).
const BUDGET: u64 = 24 << 20;
/// How far above the limit used memory may be seen between commands: the
/// command in flight, the connection's buffers, a pipeline's replies.
const MARGIN: u64 = 2 << 20;
/// Commands per pipelined batch when filling.
const BATCH: usize = 200;

const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn info_u64(c: &mut Raw, field: &str) -> u64 {
    let text = c.cmd(&["INFO", "everything"]);
    let at = text.find(&format!("\r\n{field}:")).unwrap_or_else(|| panic!("INFO has no {field}"));
    let rest = &text[at + field.len() + 3..];
    rest[..rest.find('\r').expect("line end")].parse().expect("a number")
}

/// Sends commands pipelined in batches and returns their replies.
fn pipeline(c: &mut Raw, cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
    let mut replies = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(BATCH) {
        for args in chunk {
            let a: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
            c.send_cmd(&a);
        }
        for _ in chunk {
            replies.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
        }
    }
    replies
}

fn set_cmd(key: &str, ttl: Option<u64>) -> Vec<Vec<u8>> {
    let mut v = vec![b"SET".to_vec(), key.as_bytes().to_vec(), vec![b'x'; VALUE]];
    if let Some(t) = ttl {
        v.extend([b"EX".to_vec(), t.to_string().into_bytes()]);
    }
    v
}

fn exists(c: &mut Raw, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == ":1\r\n"
}

/// A server whose limit is `BUDGET` above its memory at start, with `policy`.
fn limited(policy: &str) -> (Server, Raw, u64) {
    limited_with(policy, &[])
}

fn limited_with(policy: &str, args: &[&str]) -> (Server, Raw, u64) {
    let s = Server::start_with(args);
    let mut c = s.raw();
    let max = info_u64(&mut c, "used_memory") + BUDGET;
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &max.to_string()]), "+OK\r\n");
    (s, c, max)
}

/// Writes `n` keys `<prefix>:<i>` (TTL from `ttl(i)`), checking after each
/// batch that memory stays near the limit; returns the replies.
fn fill(c: &mut Raw, max: u64, prefix: &str, n: usize, ttl: impl Fn(usize) -> Option<u64>) -> Vec<String> {
    let mut replies = Vec::new();
    for start in (0..n).step_by(BATCH) {
        let cmds: Vec<_> = (start..n.min(start + BATCH)).map(|i| set_cmd(&format!("{prefix}:{i}"), ttl(i))).collect();
        replies.extend(pipeline(c, &cmds));
        let used = info_u64(c, "used_memory");
        assert!(used <= max + MARGIN, "used_memory {used} > maxmemory {max} + {MARGIN}");
    }
    replies
}

/// How many of `<prefix>:0..n` exist.
fn surviving(c: &mut Raw, prefix: &str, n: usize) -> Vec<usize> {
    (0..n).filter(|i| exists(c, &format!("{prefix}:{i}"))).collect()
}

/// Keys this many times the budget are written in each policy test.
const OVERFILL: usize = 3 * (BUDGET as usize) / VALUE;

#[test]
fn noeviction_refuses_growth_with_redis_errors() {
    let s = Server::start();
    let mut c = s.raw();
    let mut other = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory-policy"]), "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n");
    let lib = "#!lua name=lib\n\
        redis.register_function('put', function(k) return redis.call('set', k[1], 'x') end)\n\
        redis.register_function{function_name='peek', callback=function(k) return redis.call('get', k[1]) end, flags={'no-writes'}}";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$3\r\nlib\r\n");
    // A transaction queued before memory ran out holds a write.
    assert_eq!(other.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(other.cmd(&["SET", "q", "1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), "+OK\r\n");
    let sha = "71e6319f97b0fe8bdfa1c5df3ce4489946dda479";
    let cases: &[(&[&str], String)] = &[
        (&["SET", "k2", "v"], OOM.into()),
        (&["APPEND", "k", "more"], OOM.into()),
        (&["GET", "k"], "$1\r\nv\r\n".into()),
        (&["EXISTS", "k"], ":1\r\n".into()),
        // A script without flags fails at its first write.
        (
            &["EVAL", "return redis.call('set','x','y')", "0"],
            format!("-OOM command not allowed when used memory > 'maxmemory'. script: {sha}, on @user_script:1.\r\n"),
        ),
        (&["EVAL", "return redis.pcall('set','x','y')", "0"], OOM.into()),
        (&["EVAL", "return redis.call('get','k')", "0"], "$1\r\nv\r\n".into()),
        // A script with flags that may write is refused before it runs.
        (&["EVAL", "#!lua\nreturn redis.call('set','x','y')", "0"], OOM.into()),
        (&["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','k')", "0"], "$1\r\nv\r\n".into()),
        (&["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','y')", "0"], "+OK\r\n".into()),
        (&["DEL", "x"], ":1\r\n".into()),
        // Functions: refused unless declared no-writes (or allow-oom).
        (&["FCALL", "put", "1", "x"], OOM.into()),
        (&["FCALL", "peek", "1", "k"], "$1\r\nv\r\n".into()),
        (&["FCALL_RO", "peek", "1", "k"], "$1\r\nv\r\n".into()),
        // EXEC of a queue holding a write aborts the transaction.
    ];
    for (cmd, want) in cases {
        assert_eq!(&c.cmd(cmd), want, "{cmd:?}");
    }
    assert_eq!(
        other.cmd(&["EXEC"]),
        "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(other.cmd(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    // Inside MULTI every command is refused, reads too; EXEC then aborts.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), OOM);
    assert_eq!(c.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DISCARD"]), "+OK\r\n");
    // A pipeline is judged command by command.
    c.send(b"GET k\r\nSET a b\r\nDEL k\r\n");
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "$1\r\nv\r\n");
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), OOM);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), ":1\r\n");
    let errors = c.cmd(&["INFO", "errorstats"]);
    assert!(errors.contains("errorstat_OOM:count=8\r\n"), "{errors}");
    assert!(errors.contains("errorstat_EXECABORT:count=2\r\n"), "{errors}");
    let stats = c.cmd(&["INFO", "commandstats"]);
    let set_line = stats.lines().find(|l| l.starts_with("cmdstat_set:")).expect("SET's line");
    // The SETs refused directly, in the pipeline, and in the two scripts
    // that reached theirs (redis-server 7.0 counts those too).
    assert!(set_line.ends_with(",rejected_calls=4,failed_calls=0"), "{set_line}");
    assert!(info_u64(&mut c, "current_eviction_exceeded_time") > 0 || info_u64(&mut c, "total_eviction_exceeded_time") > 0);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k2", "v"]), "+OK\r\n");
    assert_eq!(info_u64(&mut c, "evicted_keys"), 0);
    assert_eq!(info_u64(&mut c, "evicted_clients"), 0);
    // Under the limit again: the episode ends at the shard's next tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_u64(&mut c, "current_eviction_exceeded_time") != 0 {
        assert!(Instant::now() < deadline, "the episode never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(info_u64(&mut c, "total_eviction_exceeded_time") > 0);
}

#[test]
fn eviction_settings_come_from_the_config_file() {
    let dir = std::env::temp_dir().join(format!("damselfly-evict-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damselfly.conf");
    std::fs::write(&path, "maxmemory 64mb\nmaxmemory-policy allkeys-lfu\nlfu-log-factor 3\nmaxmemory-samples 7\n").unwrap();
    let s = Server::start_with(&[path.to_str().unwrap()]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory-policy"]), "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lfu\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "lfu-log-factor"]), "*2\r\n$14\r\nlfu-log-factor\r\n$1\r\n3\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory-samples"]), "*2\r\n$17\r\nmaxmemory-samples\r\n$1\r\n7\r\n");
    // The policy is in force from the start: FREQ answers.
    assert_eq!(c.cmd(&["SET", "k", "hello"]), "+OK\r\n");
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "k"]), ":5\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eviction_settings_are_validated_and_reported() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "SET", "maxmemory-policy", "lru"], "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction\r\n"),
        (&["CONFIG", "SET", "maxmemory-samples", "0"], "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - argument must be between 1 and 2147483647 inclusive\r\n"),
        (&["CONFIG", "SET", "maxmemory-eviction-tenacity", "101"], "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-eviction-tenacity') - argument must be between 0 and 100 inclusive\r\n"),
        (&["CONFIG", "SET", "lfu-log-factor", "-1"], "-ERR CONFIG SET failed (possibly related to argument 'lfu-log-factor') - argument must be between 0 and 2147483647 inclusive\r\n"),
        (&["CONFIG", "SET", "lfu-decay-time", "x"], "-ERR CONFIG SET failed (possibly related to argument 'lfu-decay-time') - argument couldn't be parsed into an integer\r\n"),
        (&["CONFIG", "SET", "maxmemory-policy", "VOLATILE-TTL", "maxmemory-samples", "10", "maxmemory-eviction-tenacity", "20"], "+OK\r\n"),
        (&["CONFIG", "GET", "maxmemory-policy"], "*2\r\n$16\r\nmaxmemory-policy\r\n$12\r\nvolatile-ttl\r\n"),
        (&["CONFIG", "GET", "maxmemory-samples"], "*2\r\n$17\r\nmaxmemory-samples\r\n$2\r\n10\r\n"),
        (&["CONFIG", "GET", "maxmemory-eviction-tenacity"], "*2\r\n$27\r\nmaxmemory-eviction-tenacity\r\n$2\r\n20\r\n"),
        (&["CONFIG", "GET", "lfu-*"], "*4\r\n$14\r\nlfu-decay-time\r\n$1\r\n1\r\n$14\r\nlfu-log-factor\r\n$2\r\n10\r\n"),
        (&["CONFIG", "SET", "maxmemory", "100mb"], "+OK\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(&c.cmd(cmd), want, "{cmd:?}");
    }
    let mem = c.cmd(&["INFO", "memory"]);
    for line in
        ["maxmemory:104857600\r\n", "maxmemory_human:100.00M\r\n", "maxmemory_policy:volatile-ttl\r\n", "mem_not_counted_for_evict:0\r\n"]
    {
        assert!(mem.contains(line), "{line} in {mem}");
    }
}

#[test]
fn no_touch_clients_leave_access_counters_alone() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"], "+OK\r\n"),
        (&["SET", "f", "hello"], "+OK\r\n"),
        (&["CLIENT", "NO-TOUCH", "ON"], "+OK\r\n"),
        (&["GET", "f"], "$5\r\nhello\r\n"),
        (&["APPEND", "f", "!"], ":6\r\n"),
        (&["OBJECT", "FREQ", "f"], ":5\r\n"),
        // TOUCH still counts (the first access after creation always does).
        (&["TOUCH", "f"], ":1\r\n"),
        (&["OBJECT", "FREQ", "f"], ":6\r\n"),
        (&["CLIENT", "NO-TOUCH", "OFF"], "+OK\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(&c.cmd(cmd), want, "{cmd:?}");
    }
}

#[test]
fn allkeys_lru_keeps_the_recently_read_keys() {
    let (_s, mut c, max) = limited("allkeys-lru");
    // Fillers restored with an idle time of 1000 s (as a cache's cold
    // keys); the hot keys are written and read now.
    assert_eq!(c.cmd(&["SET", "model", &"x".repeat(VALUE)]), "+OK\r\n");
    c.send_cmd(&[b"DUMP", b"model"]);
    let reply = c.read_reply();
    let payload = &reply[reply.iter().position(|&b| b == b'\n').unwrap() + 1..reply.len() - 2];
    let hot: Vec<String> = (0..100).map(|i| format!("hot:{i}")).collect();
    for k in &hot {
        assert_eq!(c.cmd(&["SET", k, "v"]), "+OK\r\n");
    }
    for start in (0..OVERFILL).step_by(BATCH) {
        let cmds: Vec<Vec<Vec<u8>>> = (start..OVERFILL.min(start + BATCH))
            .map(|i| {
                vec![
                    b"RESTORE".to_vec(),
                    format!("cold:{i}").into_bytes(),
                    b"0".to_vec(),
                    payload.to_vec(),
                    b"IDLETIME".to_vec(),
                    b"1000".to_vec(),
                ]
            })
            .collect();
        assert!(pipeline(&mut c, &cmds).iter().all(|r| r == "+OK\r\n"));
        let reads: Vec<Vec<Vec<u8>>> = hot.iter().map(|k| vec![b"GET".to_vec(), k.as_bytes().to_vec()]).collect();
        assert!(pipeline(&mut c, &reads).iter().all(|r| r == "$1\r\nv\r\n"), "every hot key is still there");
        assert!(info_u64(&mut c, "used_memory") <= max + MARGIN);
    }
    let last = format!("cold:{}", OVERFILL - 1);
    let idle: u64 = c.cmd(&["OBJECT", "IDLETIME", &last])[1..].trim().parse().unwrap();
    assert!((1000..1100).contains(&idle), "RESTORE's IDLETIME is the key's idle time: {idle}");
    assert!(info_u64(&mut c, "evicted_keys") as usize >= OVERFILL / 2);
}

/// allkeys-lfu and allkeys-tinylfu keep a set of keys read more often than
/// the keys written since.
fn keeps_the_frequently_read_keys(policy: &str) {
    let (_s, mut c, max) = limited(policy);
    let hot: Vec<String> = (0..100).map(|i| format!("hot:{i}")).collect();
    for k in &hot {
        assert_eq!(c.cmd(&["SET", k, "v"]), "+OK\r\n");
        // Under LFU the first read always counts: 5 becomes 6, above any
        // filler; the sketch counts every read.
        for _ in 0..3 {
            assert_eq!(c.cmd(&["GET", k]), "$1\r\nv\r\n");
        }
    }
    let replies = fill(&mut c, max, "cold", OVERFILL, |_| None);
    assert!(replies.iter().all(|r| r == "+OK\r\n"));
    assert_eq!(surviving(&mut c, "hot", hot.len()).len(), hot.len(), "{policy}");
    let cold = surviving(&mut c, "cold", OVERFILL).len();
    assert!(cold > 0 && cold < OVERFILL / 2, "{policy}: {cold} cold keys left");
}

#[test]
fn allkeys_lfu_keeps_the_frequently_read_keys() {
    keeps_the_frequently_read_keys("allkeys-lfu");
    let (_s, mut c, _) = limited("allkeys-lfu");
    assert_eq!(c.cmd(&["SET", "new", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "new"]), ":5\r\n", "a new key starts at 5");
}

#[test]
fn allkeys_tinylfu_keeps_the_frequently_read_keys() {
    keeps_the_frequently_read_keys("allkeys-tinylfu");
}

/// allkeys-tinylfu remembers keys it evicted: a key looked up often while
/// absent (a cache's misses) is kept over the keys written since, where
/// LRU and Redis's LFU see a newcomer like any other.
#[test]
fn allkeys_tinylfu_admits_keys_by_their_past_lookups() {
    let (_s, mut c, max) = limited("allkeys-tinylfu");
    // Misses count: each of these keys was asked for 6 times before it was
    // written.
    let wanted: Vec<String> = (0..100).map(|i| format!("wanted:{i}")).collect();
    for k in &wanted {
        for _ in 0..6 {
            assert_eq!(c.cmd(&["GET", k]), "$-1\r\n");
        }
    }
    assert!(fill(&mut c, max, "cold", OVERFILL / 2, |_| None).iter().all(|r| r == "+OK\r\n"));
    let cmds: Vec<_> = wanted.iter().map(|k| set_cmd(k, None)).collect();
    assert!(pipeline(&mut c, &cmds).iter().all(|r| r == "+OK\r\n"));
    assert!(fill(&mut c, max, "later", OVERFILL / 2, |_| None).iter().all(|r| r == "+OK\r\n"));
    assert_eq!(surviving(&mut c, "wanted", wanted.len()).len(), wanted.len());
    // Under the sketch policy OBJECT reads the access time, not a counter.
    assert!(c.cmd(&["OBJECT", "FREQ", "wanted:0"]).starts_with("-ERR An LFU maxmemory policy is not selected"));
    let idle: u64 = c.cmd(&["OBJECT", "IDLETIME", "wanted:0"])[1..].trim().parse().unwrap();
    assert!(idle < 60, "{idle}");
}

#[test]
fn allkeys_random_evicts_keys_with_and_without_ttl() {
    let (_s, mut c, max) = limited("allkeys-random");
    let replies = fill(&mut c, max, "k", OVERFILL, |i| (i % 2 == 0).then_some(100_000));
    assert!(replies.iter().all(|r| r == "+OK\r\n"));
    let left = surviving(&mut c, "k", OVERFILL);
    let with_ttl = left.iter().filter(|i| *i % 2 == 0).count();
    assert!(with_ttl > 0 && with_ttl < left.len(), "both kinds survive: {with_ttl} of {}", left.len());
    assert!(left.len() < OVERFILL / 2);
    // Random eviction does not favour the newest keys: old ones survive.
    assert!(left.iter().any(|&i| i < OVERFILL / 3), "some of the first third survive");
}

/// volatile-lru, -lfu, -random: keys without a TTL are never evicted; once
/// no key with a TTL is left, writes are refused.
fn volatile_never_evicts_persistent_keys(policy: &str) {
    volatile_never_evicts_persistent_keys_with(policy, &[]);
}

fn volatile_never_evicts_persistent_keys_with(policy: &str, args: &[&str]) {
    let (_s, mut c, max) = limited_with(policy, args);
    let persistent = (BUDGET as usize / VALUE) / 4;
    assert!(fill(&mut c, max, "p", persistent, |_| None).iter().all(|r| r == "+OK\r\n"));
    assert!(fill(&mut c, max, "v", OVERFILL, |_| Some(100_000)).iter().all(|r| r == "+OK\r\n"));
    assert_eq!(surviving(&mut c, "p", persistent).len(), persistent, "{policy}: no key without a TTL went");
    let volatile = surviving(&mut c, "v", OVERFILL).len();
    assert!(volatile < OVERFILL / 2, "{policy}: {volatile} keys with a TTL left");
    assert!(info_u64(&mut c, "evicted_keys") as usize >= OVERFILL / 2);
    // Without TTLs nothing can go: writes end up refused (bounded).
    let mut refused = false;
    for i in 0..OVERFILL {
        let r = pipeline(&mut c, &[set_cmd(&format!("more:{i}"), None)]).remove(0);
        if r == OOM {
            refused = true;
            break;
        }
        assert_eq!(r, "+OK\r\n");
    }
    assert!(refused, "{policy}: writes are refused once only keys without a TTL are left");
    assert_eq!(surviving(&mut c, "p", persistent).len(), persistent);
    assert_eq!(c.cmd(&["GET", "p:0"]).len(), format!("${VALUE}\r\n").len() + VALUE + 2);
    assert_eq!(c.cmd(&["DEL", "p:0"]), ":1\r\n");
}

#[test]
fn volatile_lru_never_evicts_keys_without_ttl() {
    volatile_never_evicts_persistent_keys("volatile-lru");
}

#[test]
fn volatile_lfu_never_evicts_keys_without_ttl() {
    volatile_never_evicts_persistent_keys("volatile-lfu");
}

/// With several shards the budget is shared: each shard evicts its own
/// keys, and writes are refused only once every shard has nothing left.
#[test]
fn shards_share_the_budget() {
    volatile_never_evicts_persistent_keys_with("volatile-lru", &["--shards", "3"]);
    let (_s, mut c, max) = limited_with("allkeys-lru", &["--shards", "3"]);
    assert!(fill(&mut c, max, "k", OVERFILL, |_| None).iter().all(|r| r == "+OK\r\n"));
    let left = surviving(&mut c, "k", OVERFILL).len();
    assert!(left > 0 && left < OVERFILL / 2, "{left}");
}

#[test]
fn volatile_random_never_evicts_keys_without_ttl() {
    volatile_never_evicts_persistent_keys("volatile-random");
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_first() {
    nearest_expiries_go_first(&[]);
}

/// With four shards the node's nearest expiries go, not those of the
/// shard that runs the writes first (the connection's own thread's).
#[test]
fn volatile_ttl_evicts_the_nodes_nearest_expiries_across_shards() {
    nearest_expiries_go_first(&["--shards", "4"]);
}

fn nearest_expiries_go_first(args: &[&str]) {
    let (_s, mut c, max) = limited_with("volatile-ttl", args);
    let persistent = 500;
    assert!(fill(&mut c, max, "p", persistent, |_| None).iter().all(|r| r == "+OK\r\n"));
    // Later keys expire sooner: they are the ones to go.
    assert!(fill(&mut c, max, "v", OVERFILL, |i| Some(1_000_000 - i as u64)).iter().all(|r| r == "+OK\r\n"));
    let left = surviving(&mut c, "v", OVERFILL);
    assert!(!left.is_empty() && left.len() < OVERFILL / 2);
    // The keys expiring last survive, and the newest writes (each evicts
    // the nearest expiry before it is stored). Eviction samples keys, as
    // Redis's does: a key the samples never met may stay out of order, a
    // handful at most. With several shards each evicts the keys the node
    // rates worst wherever they live (not those of the shard that runs
    // the writes first: hundreds stayed out of order then), but shards
    // evicting at the same moment may free a key more than needed, and
    // the first writes after that are stored without evicting: a few
    // more per shard.
    let prefix = left.iter().enumerate().take_while(|(j, i)| j == *i).count();
    assert!(prefix > 0, "{left:?}");
    let stragglers = left[prefix..].iter().filter(|&&i| i < OVERFILL - BATCH).count();
    let shards: usize = c.cmd(&["CONFIG", "GET", "shards"]).lines().nth(4).and_then(|n| n.parse().ok()).expect("shards");
    assert!(stragglers <= 3 * shards, "out of order: {:?}", &left[prefix..]);
    assert_eq!(surviving(&mut c, "p", persistent).len(), persistent);
}

#[test]
fn a_lower_limit_set_at_run_time_is_reached_by_evicting() {
    let s = Server::start();
    let mut c = s.raw();
    let base = info_u64(&mut c, "used_memory");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "+OK\r\n");
    let n = (BUDGET as usize) / VALUE;
    assert!(fill(&mut c, u64::MAX / 2, "k", n, |_| None).iter().all(|r| r == "+OK\r\n"));
    let lower = base + BUDGET / 3;
    assert!(info_u64(&mut c, "used_memory") > lower + MARGIN);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &lower.to_string()]), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let used = info_u64(&mut c, "used_memory");
        if used <= lower + MARGIN {
            break;
        }
        assert!(Instant::now() < deadline, "used_memory stayed at {used} > {lower}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Key count and evictions from one INFO (eviction may still be going).
    let info = c.cmd(&["INFO", "everything"]);
    let field = |name: &str, end: char| -> usize {
        let at = info.find(name).unwrap_or_else(|| panic!("no {name}")) + name.len();
        info[at..].split(end).next().unwrap().parse().unwrap()
    };
    let keys = field("db0:keys=", ',');
    assert!(keys < n / 2, "{keys} keys left of {n}");
    assert_eq!(field("evicted_keys:", '\r'), n - keys);
}

/// A node refusing writes because no shard had anything its volatile policy
/// may evict takes them again once a key gets a TTL (EXPIRE is not refused):
/// the shard that holds it no longer counts as empty, whichever shard the
/// next write lands on, and the key is evicted to make room.
#[test]
fn a_key_given_a_ttl_makes_room_again() {
    let s = Server::start_with(&["--shards", "2", "--maxmemory-policy", "volatile-lru"]);
    let mut c = s.raw();
    let key_on = |shard: u16, prefix: &str| -> String {
        (0..).map(|i| format!("{prefix}{i}")).find(|k| damselfly_tests::key_slot(k.as_bytes()) % 2 == shard).expect("a key")
    };
    let (big, x, y) = (key_on(0, "big"), key_on(1, "x"), key_on(0, "y"));
    let value = "v".repeat(1 << 20);
    assert_eq!(c.cmd(&["SET", &big, &value]), "+OK\r\n");
    let limit = info_u64(&mut c, "used_memory") - (512 << 10);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]), "+OK\r\n");
    // Nothing has a TTL: once both shards have looked (the first write
    // goes in while the other may still have something), writes are
    // refused.
    c.cmd(&["SET", &x, "1"]);
    assert_eq!(c.cmd(&["SET", &y, "1"]), OOM);
    assert_eq!(c.cmd(&["SET", &x, "2"]), OOM);
    assert_eq!(c.cmd(&["EXPIRE", &big, "1000"]), ":1\r\n");
    // The write lands on the other shard than the key with a TTL.
    assert_eq!(c.cmd(&["SET", &x, "1"]), "+OK\r\n");
    let start = Instant::now();
    while exists(&mut c, &big) {
        assert!(start.elapsed() < Duration::from_secs(10), "the key with a TTL is evicted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.cmd(&["SET", &y, "1"]), "+OK\r\n");
}

/// A shard with nothing its policy may evict (volatile-lru, keys without a
/// TTL) that keeps taking writes has the shards that hold keys with a TTL
/// evict at once: memory stays at the limit between writes, rather than
/// growing until their next expiry tick; once they have nothing left
/// either, the writes get -OOM.
#[test]
fn a_shard_without_victims_has_the_others_evict_at_once() {
    let (_s, mut c, max) = limited_with("volatile-lru", &["--shards", "4"]);
    let on_shard = |shard: u16, n: usize| -> Vec<String> {
        (0..).map(|i| format!("t{i}")).filter(|t| damselfly_tests::key_slot(t.as_bytes()) % 4 == shard).take(n).collect()
    };
    // Keys with a TTL on shards 1 to 3, about half the budget.
    let tags: Vec<String> = (1..4).flat_map(|s| on_shard(s, 4)).collect();
    let volatile: Vec<_> =
        (0..BUDGET as usize / VALUE / 2).map(|i| set_cmd(&format!("{{{}}}:v{i}", tags[i % tags.len()]), Some(1000))).collect();
    assert!(pipeline(&mut c, &volatile).iter().all(|r| r == "+OK\r\n"));
    // Then keys without one, all on shard 0.
    // No INFO between the writes: its job on every shard would make them
    // evict. The peak is exact (counted at each allocation).
    let tag = &on_shard(0, 1)[0];
    let cmds: Vec<_> = (0..2 * BUDGET as usize / VALUE).map(|i| set_cmd(&format!("{{{tag}}}:p{i}"), None)).collect();
    let refused = pipeline(&mut c, &cmds).iter().filter(|r| r.as_str() == OOM).count();
    let peak = c.used_memory_peak();
    assert!(peak <= max + MARGIN, "used_memory_peak {peak} > maxmemory {max} + {MARGIN}");
    assert!(refused > 0, "writes were never refused once no key with a TTL was left");
    assert_eq!(c.cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse::<u64>().ok().map(|n| n > 0), Some(true));
}
