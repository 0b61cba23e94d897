//! INFO commandstats and errorstats, and SLOWLOG, compared with
//! redis-server's for the same sessions.

use damselfly_tests::Server;

use super::field;

/// A parsed RESP reply, for comparing replies whose shape matters.
#[derive(Debug, PartialEq, Clone)]
enum V {
    Int(i64),
    Str(String),
    Err(String),
    Arr(Vec<V>),
}

fn parse_resp(b: &[u8], at: &mut usize) -> V {
    let eol = *at + b[*at..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let line = String::from_utf8_lossy(&b[*at + 1..eol]).into_owned();
    let tag = b[*at];
    *at = eol + 2;
    match tag {
        b'+' => V::Str(line),
        b'-' => V::Err(line),
        b':' => V::Int(line.parse().expect("integer")),
        b'$' => {
            let n: usize = line.parse().expect("length");
            let s = String::from_utf8_lossy(&b[*at..*at + n]).into_owned();
            *at += n + 2;
            V::Str(s)
        }
        b'*' => V::Arr((0..line.parse::<usize>().expect("count")).map(|_| parse_resp(b, at)).collect()),
        t => panic!("unexpected RESP type {:?}", t as char),
    }
}

fn resp(c: &mut damselfly_tests::Raw, args: &[&str]) -> V {
    let text = c.cmd(args);
    parse_resp(text.as_bytes(), &mut 0)
}

/// SLOWLOG GET's entries with what differs between runs blanked: the unix
/// time and the duration become 0, the id is taken relative to `base`, a
/// client's port is dropped (a script's `?:0` stays).
fn normalize_slowlog(v: V, base: i64) -> V {
    let V::Arr(entries) = v else { return v };
    V::Arr(
        entries
            .into_iter()
            .map(|e| {
                let V::Arr(f) = e else { panic!("entry is not an array: {e:?}") };
                assert_eq!(f.len(), 6, "an entry has 6 fields: {f:?}");
                let V::Int(id) = f[0] else { panic!("id: {f:?}") };
                assert!(matches!(f[1], V::Int(t) if t > 1_600_000_000), "unix time: {f:?}");
                assert!(matches!(f[2], V::Int(d) if d >= 0), "duration: {f:?}");
                let addr = match &f[4] {
                    V::Str(a) if a == "?:0" => a.clone(),
                    V::Str(a) => a.rsplit_once(':').expect("addr:port").0.to_string(),
                    other => panic!("addr: {other:?}"),
                };
                V::Arr(vec![V::Int(id - base), V::Int(0), V::Int(0), f[3].clone(), V::Str(addr), f[5].clone()])
            })
            .collect(),
    )
}

/// What `run` sees of the slow log, on any server.
fn slowlog_session(c: &mut damselfly_tests::Raw) -> Vec<V> {
    let mut seen = Vec::new();
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), "+OK\r\n");
    // The oldest entry is now SLOWLOG RESET itself: ids count from it.
    let V::Arr(first) = resp(c, &["SLOWLOG", "GET", "-1"]) else { panic!() };
    let V::Arr(oldest) = &first[first.len() - 1] else { panic!() };
    let V::Int(base) = oldest[0] else { panic!() };
    c.cmd(&["CLIENT", "SETNAME", "slowpoke"]);
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["GET"]); // refused: not logged
    let many: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    let mut rpush = vec!["RPUSH", "list"];
    rpush.extend(many.iter().map(String::as_str));
    c.cmd(&rpush);
    let big = "x".repeat(200);
    c.cmd(&["SET", "big", &big]);
    c.cmd(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "m", "1"]);
    c.cmd(&["INCR", "m"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]);
    c.cmd(&["AUTH", "secret"]);
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET", "-1"]), base));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET"]), base));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET", "2"]), base));
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    // A shorter log keeps the newest entries.
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]);
    c.cmd(&["PING"]);
    c.cmd(&["ECHO", "hi"]);
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET"]), base));
    // RESET empties it (and is then logged itself).
    seen.push(resp(c, &["SLOWLOG", "RESET"]));
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "-2"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "x"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "1", "2"]));
    seen.push(resp(c, &["SLOWLOG", "NOSUCH"]));
    seen.push(resp(c, &["SLOWLOG"]));
    // A negative threshold logs nothing.
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v2"]);
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    // (Redis lists parameters in no particular order.)
    let V::Arr(kv) = resp(c, &["CONFIG", "GET", "slowlog-*"]) else { panic!() };
    let mut pairs: Vec<V> = kv.chunks(2).map(|p| V::Arr(p.to_vec())).collect();
    pairs.sort_by_key(|p| format!("{p:?}"));
    seen.push(V::Arr(pairs));
    seen
}

/// A blocking pop is logged once it is served (with its own time, not its
/// wait), after the transaction that served it, as redis-server logs it.
fn slowlog_of_a_served_pop(port: u16) -> V {
    let mut c = damselfly_tests::Raw::connect(port);
    let mut w = damselfly_tests::Raw::connect(port);
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    w.send_cmd(&[b"BLPOP", b"l", b"0"]);
    c.wait_blocked(1);
    for cmd in [&["MULTI"][..], &["LPUSH", "l", "foo"], &["SLOWLOG", "RESET"]] {
        c.cmd(cmd);
    }
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n:1\r\n+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$1\r\nl\r\n$3\r\nfoo\r\n");
    // A pop that times out is logged too; neither counts its wait.
    w.send_cmd(&[b"BLPOP", b"l", b"0.3"]);
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*-1\r\n");
    let V::Arr(entries) = resp(&mut c, &["SLOWLOG", "GET"]) else { panic!("SLOWLOG GET") };
    for e in &entries {
        let V::Arr(f) = e else { panic!("entry {e:?}") };
        assert!(matches!(f[2], V::Int(d) if d < 200_000), "a logged duration counts no wait: {f:?}");
    }
    normalize_slowlog(V::Arr(entries), 0)
}

#[test]
fn a_served_blocking_pop_is_logged_as_in_redis() {
    let ours = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (got, want) = (slowlog_of_a_served_pop(ours.port), slowlog_of_a_served_pop(redis.port));
    // Entry ids differ (each server's own count): compare the rest.
    let strip = |v: V| match v {
        V::Arr(es) => es
            .into_iter()
            .map(|e| {
                if let V::Arr(mut f) = e {
                    f[0] = V::Int(0);
                    V::Arr(f)
                } else {
                    e
                }
            })
            .collect::<Vec<_>>(),
        other => vec![other],
    };
    assert_eq!(strip(got), strip(want));
}

#[test]
fn slowlog_matches_redis() {
    let ours = Server::start_with(&["--shards", "3"]);
    let redis = damselfly_tests::Redis::start();
    let got = slowlog_session(&mut ours.raw());
    let want = slowlog_session(&mut redis.raw());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "step {i}");
    }
    assert_eq!(got.len(), want.len());
    // The shape, spelled out: argument truncation as Redis writes it.
    let V::Arr(all) = &got[0] else { panic!() };
    let argv = |i: usize| match &all[i] {
        V::Arr(f) => f[3].clone(),
        _ => panic!(),
    };
    let find = |name: &str| (0..all.len()).find(|&i| matches!(argv(i), V::Arr(a) if a[0] == V::Str(name.into()))).unwrap();
    let V::Arr(rp) = argv(find("RPUSH")) else { panic!() };
    assert_eq!(rp.len(), 32);
    assert_eq!(rp[31], V::Str("... (11 more arguments)".into()));
    let big = all.iter().find_map(|e| match e {
        V::Arr(f) => match &f[3] {
            V::Arr(a) if a.get(1) == Some(&V::Str("big".into())) => Some(a[2].clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(big, Some(V::Str(format!("{}... (72 more bytes)", "x".repeat(128)))));
    assert!(!ours.raw().cmd(&["SLOWLOG", "HELP"]).is_empty());
}

/// INFO commandstats as (name, calls, rejected_calls, failed_calls),
/// sorted; `usec` and `usec_per_call` are only checked to be there.
fn commandstats(c: &mut damselfly_tests::Raw) -> Vec<(String, u64, u64, u64)> {
    let V::Str(text) = resp(c, &["INFO", "commandstats"]) else { panic!() };
    let mut v: Vec<(String, u64, u64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .map(|l| {
            let (name, fields) = l.split_once(':').unwrap();
            let kv: Vec<(&str, &str)> = fields.split(',').map(|f| f.split_once('=').unwrap()).collect();
            let keys: Vec<&str> = kv.iter().map(|p| p.0).collect();
            assert_eq!(keys, ["calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"], "{l}");
            assert!(kv[2].1.split_once('.').is_some_and(|(_, d)| d.len() == 2), "{l}");
            let n = |i: usize| kv[i].1.parse::<u64>().unwrap();
            (name.to_string(), n(0), n(3), n(4))
        })
        .collect();
    v.sort();
    v
}

fn stats_session(c: &mut damselfly_tests::Raw) -> Vec<String> {
    let mut seen = Vec::new();
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET"]); // arity: rejected
    c.cmd(&["SET", "s", "x"]);
    c.cmd(&["INCR", "s"]); // failed
    c.cmd(&["LPUSH", "s", "x"]); // WRONGTYPE
    c.cmd(&["NOSUCHCMD"]); // no command to count; an error reply
    c.cmd(&["CLIENT", "NOSUCH"]);
    c.cmd(&["CLIENT", "ID"]);
    c.cmd(&["MSET", "k1", "1", "k2", "2", "k3", "3"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "m"]);
    c.cmd(&["SET", "m2", "1"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "a"]);
    c.cmd(&["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "s"]);
    c.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "a"]);
    c.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "s"]);
    c.cmd(&["EVAL", "return {err='MINE custom'}", "0"]);
    seen.push(format!("{:?}", commandstats(c)));
    let V::Str(errors) = resp(c, &["INFO", "errorstats"]) else { panic!() };
    seen.push(errors);
    let V::Str(st) = resp(c, &["INFO", "stats"]) else { panic!() };
    seen.push(format!("total_error_replies:{}", field(&st, "total_error_replies")));
    // RESETSTAT zeroes it all (then counts itself).
    c.cmd(&["CONFIG", "RESETSTAT"]);
    seen.push(format!("{:?}", commandstats(c)));
    let V::Str(errors) = resp(c, &["INFO", "errorstats"]) else { panic!() };
    seen.push(errors);
    seen
}

#[test]
fn commandstats_and_errorstats_match_redis() {
    let ours = Server::start_with(&["--shards", "3"]);
    let redis = damselfly_tests::Redis::start();
    let got = stats_session(&mut ours.raw());
    let want = stats_session(&mut redis.raw());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "step {i}");
    }
    // Spelled out for the commands the task names.
    let s = &got[0];
    for want in [
        "(\"set\", 4, 0, 0)",       // SET a, SET s, SET m2 in MULTI, one from a script
        "(\"get\", 2, 1, 0)",       // GET a, one from a script; GET without a key refused
        "(\"incr\", 4, 0, 3)",      // INCR s fails, INCR m in MULTI, INCR s from two scripts fail
        "(\"client|id\", 1, 0, 0)", // a subcommand by its full name
    ] {
        assert!(s.contains(want), "{want} in {s}");
    }
    // Not in the default INFO, as in Redis; errorstats is.
    let info = ours.raw().cmd(&["INFO"]);
    assert!(!info.contains("# Commandstats") && info.contains("# Errorstats"), "{info}");
    assert!(ours.raw().cmd(&["INFO", "all"]).contains("cmdstat_info:calls="));
}
