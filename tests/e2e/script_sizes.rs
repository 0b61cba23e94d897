//! Scripts at the edges of Lua's stack and the stats of what they were
//! refused, compared with redis-server 7.0: `redis.call` with 7999
//! arguments from `unpack()`, cmsgpack round trips of 100000-element
//! tables, and a command a script was refused counted as a rejected call.

use damselfly_tests::{Raw, Redis, Server};

const CASES: &[(&[&str], &str)] = &[
    (
        &["EVAL", "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', KEYS[1], unpack(a))", "1", "l"],
        ":7999\r\n",
    ),
    (
        &["EVAL", "local a = {} for i=1,7999 do a[i] = tostring(i) end return #redis.call('mget', unpack(a))", "0"],
        ":7999\r\n",
    ),
    (
        &[
            "EVAL",
            "local arr, map = {}, {} \
             for i=1,100000 do arr[i] = i; map[tostring(i)] = i end \
             local d = cmsgpack.unpack(cmsgpack.pack({a=arr, m=map})) \
             local n = 0 for _ in pairs(d.m) do n = n + 1 end \
             return {#d.a, d.a[100000], n, d.m['77777']}",
            "0",
        ],
        "*4\r\n:100000\r\n:100000\r\n:100000\r\n:77777\r\n",
    ),
    // A write refused in a read-only script: a rejected call of SET,
    // raised or returned by pcall.
    (&["CONFIG", "RESETSTAT"], "+OK\r\n"),
    (&["EVAL_RO", "return redis.call('set', KEYS[1], 'v')", "1", "k"], "-ERR Write commands are not allowed from read-only scripts. script: b0e7bbc2efc136be74cdebcb73a106ad46ea881b, on @user_script:1.\r\n"),
    (&["EVAL_RO", "return redis.pcall('set', KEYS[1], 'v')['err']", "1", "k"], "$58\r\nERR Write commands are not allowed from read-only scripts.\r\n"),
];

/// The replies, then the `cmdstat_set` counters (without the timings).
fn run(port: u16) -> Vec<String> {
    let mut c = Raw::connect(port);
    let mut got: Vec<String> = CASES.iter().map(|(cmd, _)| c.cmd(cmd)).collect();
    let stats = c.cmd(&["INFO", "commandstats"]);
    let set = stats.lines().find(|l| l.starts_with("cmdstat_set:")).unwrap_or("").to_string();
    got.push(set.split(',').filter(|f| !f.contains("usec")).collect::<Vec<_>>().join(","));
    got
}

#[test]
fn scripts_at_the_stack_limit_and_rejected_calls_match_redis() {
    let r = Redis::start();
    let mut want: Vec<String> = CASES.iter().map(|c| c.1.to_string()).collect();
    want.push("cmdstat_set:calls=0,rejected_calls=2,failed_calls=0".into());
    assert_eq!(run(r.port), want, "redis-server");
    let s = Server::start();
    assert_eq!(run(s.port), want);
}
