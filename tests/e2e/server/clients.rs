//! CLIENT LIST, CLIENT INFO and CLIENT KILL: each field against the
//! connection's real state, the filters, and Redis's fields in Redis's
//! order.

use std::time::Duration;

use damselfly_tests::Server;

/// The `name=value` fields of each line of a CLIENT LIST / CLIENT INFO
/// reply (RESP2: a bulk string).
fn client_lines(reply: &str) -> Vec<Vec<(String, String)>> {
    let body = reply.split_once("\r\n").map_or(reply, |(_, b)| b);
    body.lines()
        .filter(|l| l.starts_with("id="))
        .map(|l| {
            l.split(' ')
                .map(|f| {
                    let (k, v) = f.split_once('=').unwrap_or((f, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn get<'a>(line: &'a [(String, String)], name: &str) -> &'a str {
    line.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no field {name} in {line:?}"))
}

fn num(line: &[(String, String)], name: &str) -> i64 {
    get(line, name).parse().unwrap_or_else(|_| panic!("{name} is not a number in {line:?}"))
}

fn client_id(c: &mut damselfly_tests::Raw) -> String {
    c.cmd(&["CLIENT", "ID"]).trim_start_matches(':').trim().to_string()
}

/// `id`'s line of CLIENT LIST, as `observer` sees it.
fn line_of(observer: &mut damselfly_tests::Raw, id: &str) -> Vec<(String, String)> {
    client_lines(&observer.cmd(&["CLIENT", "LIST", "ID", id])).pop().unwrap_or_else(|| panic!("client {id} is not listed"))
}

/// Polls `id`'s line until `ok` holds (bounded): for state another
/// connection's input makes, which the server sees when it reads it.
fn line_when(observer: &mut damselfly_tests::Raw, id: &str, ok: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let line = line_of(observer, id);
        if ok(&line) {
            return line;
        }
        assert!(std::time::Instant::now() < deadline, "state not reached: {line:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each field of CLIENT LIST reports the connection's real state.
#[test]
fn client_list_reports_connection_state() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut obs = s.raw();

    // In MULTI with two commands queued.
    let mut m = s.raw();
    let m_id = client_id(&mut m);
    assert_eq!(m.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(m.cmd(&["SET", "a", "1"]), "+QUEUED\r\n");
    assert_eq!(m.cmd(&["SET", "b", "22"]), "+QUEUED\r\n");
    let l = line_of(&mut obs, &m_id);
    assert_eq!((get(&l, "flags"), num(&l, "multi")), ("x", 2), "{l:?}");
    // The queued arguments' bytes (3+1+1, 3+1+2) and one handle each.
    let multi_mem = num(&l, "multi-mem");
    assert!(multi_mem >= 11 + 6 * 8, "{l:?}");
    assert!(num(&l, "tot-mem") > multi_mem);
    assert_eq!(get(&l, "cmd"), "set");
    assert_eq!(m.cmd(&["EXEC"]), "*2\r\n+OK\r\n+OK\r\n");
    let l = line_of(&mut obs, &m_id);
    assert_eq!((get(&l, "flags"), num(&l, "multi"), num(&l, "multi-mem")), ("N", -1, 0), "{l:?}");

    // Subscribed to two channels and a pattern.
    let mut p = s.raw();
    let p_id = client_id(&mut p);
    p.send_cmd(&[b"SUBSCRIBE", b"c1", b"c2"]);
    p.read_reply();
    p.read_reply();
    p.send_cmd(&[b"PSUBSCRIBE", b"news.*"]);
    p.read_reply();
    let l = line_of(&mut obs, &p_id);
    assert_eq!((get(&l, "flags"), num(&l, "sub"), num(&l, "psub"), num(&l, "ssub")), ("P", 2, 1, 0), "{l:?}");

    // Watching keys; a write to one of them makes the client's transaction
    // dirty.
    let mut w = s.raw();
    let w_id = client_id(&mut w);
    assert_eq!(w.cmd(&["WATCH", "k1", "k2", "k3", "k1"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "N", "{l:?}");
    assert_eq!(obs.cmd(&["SET", "k2", "v"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "d", "{l:?}");
    assert_eq!(w.cmd(&["UNWATCH"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "N", "{l:?}");

    // Half a command: its bytes wait in the input buffer.
    let mut h = s.raw();
    let h_id = client_id(&mut h);
    h.send(b"*3\r\n$3\r\nSET\r\n");
    let l = line_when(&mut obs, &h_id, |l| num(l, "qbuf") > 0);
    assert_eq!(num(&l, "qbuf"), 13, "{l:?}");
    h.send(b"$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(String::from_utf8_lossy(&h.read_reply()), "+OK\r\n");
    let l = line_of(&mut obs, &h_id);
    assert_eq!((num(&l, "qbuf"), num(&l, "argv-mem")), (0, 0), "{l:?}");

    // Blocked: the waiting command's arguments are held.
    let mut b = s.raw();
    let b_id = client_id(&mut b);
    b.send_cmd(&[b"BLPOP", b"nolist", b"0"]);
    let l = line_when(&mut obs, &b_id, |l| get(l, "flags") == "b");
    assert_eq!((num(&l, "argv-mem"), get(&l, "cmd")), (12, "blpop"), "{l:?}");
    assert_eq!(obs.cmd(&["RPUSH", "nolist", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&b.read_reply()), "*2\r\n$6\r\nnolist\r\n$1\r\nx\r\n");
    let l = line_when(&mut obs, &b_id, |l| get(l, "flags") == "N");
    assert_eq!(num(&l, "argv-mem"), 0, "{l:?}");

    // NO-EVICT and NO-TOUCH, cleared by RESET.
    let mut e = s.raw();
    let e_id = client_id(&mut e);
    assert_eq!(e.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(e.cmd(&["CLIENT", "NO-TOUCH", "ON"]), "+OK\r\n");
    assert_eq!(e.cmd(&["CLIENT", "NO-TOUCH", "maybe"]), "-ERR syntax error\r\n");
    assert_eq!(get(&line_of(&mut obs, &e_id), "flags"), "eT");
    assert_eq!(e.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(get(&line_of(&mut obs, &e_id), "flags"), "N");

    // The real descriptors: distinct, and not the standard streams.
    let all = client_lines(&obs.cmd(&["CLIENT", "LIST"]));
    let mut fds: Vec<i64> = all.iter().map(|l| num(l, "fd")).collect();
    assert!(fds.iter().all(|&fd| fd > 2), "{fds:?}");
    fds.sort_unstable();
    fds.dedup();
    assert_eq!(fds.len(), all.len());
    for l in &all {
        assert_eq!((get(l, "user"), num(l, "redir"), num(l, "oll")), ("default", -1, 0), "{l:?}");
        assert!(num(l, "rbs") > 0 && num(l, "tot-mem") > 0, "{l:?}");
    }

    // The caller's own line: its command's arguments, and the reply before
    // it in the same pipeline waiting in the output buffer.
    obs.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n");
    assert_eq!(String::from_utf8_lossy(&obs.read_reply()), "$5\r\nhello\r\n");
    let me = client_lines(&String::from_utf8_lossy(&obs.read_reply())).pop().expect("one line");
    assert_eq!((num(&me, "argv-mem"), num(&me, "obl"), num(&me, "omem"), get(&me, "events")), (10, 11, 11, "r"), "{me:?}");

    // TYPE filters on the real type; ID lists the ids asked, in order.
    let pubsub = client_lines(&obs.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]));
    assert_eq!(pubsub.iter().map(|l| get(l, "id")).collect::<Vec<_>>(), [p_id.as_str()]);
    let normal = client_lines(&obs.cmd(&["CLIENT", "LIST", "TYPE", "NORMAL"]));
    assert_eq!(normal.len(), all.len() - 1);
    assert!(normal.iter().all(|l| get(l, "id") != p_id));
    for t in ["master", "replica", "slave"] {
        assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", t]), "$0\r\n\r\n");
    }
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", "bogus"]), "-ERR Unknown client type 'bogus'\r\n");
    let ids = client_lines(&obs.cmd(&["CLIENT", "LIST", "ID", &w_id, "999999", &m_id]));
    assert_eq!(ids.iter().map(|l| get(l, "id")).collect::<Vec<_>>(), [w_id.as_str(), m_id.as_str()]);
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "ID", "x"]), "-ERR Invalid client ID\r\n");
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "ID"]), "-ERR syntax error\r\n");
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", "normal", "ID", "1"]), "-ERR syntax error\r\n");
}

/// A reply the client does not read stays in the output buffer: `obl`,
/// `omem` and `events=rw` show it until the write completes.
#[test]
fn client_list_shows_pending_output() {
    let s = Server::start();
    let mut obs = s.raw();
    let big = "x".repeat(32 * 1024 * 1024);
    assert_eq!(obs.cmd(&["SET", "big", &big]), "+OK\r\n");
    let mut slow = s.raw();
    let id = client_id(&mut slow);
    // More than the socket buffers take: the write cannot complete.
    slow.send_cmd(&[b"GET", b"big"]);
    // (Another thread may still be finishing the write of CLIENT ID's
    // reply: the state looked for is the big reply's.)
    let l = line_when(&mut obs, &id, |l| get(l, "events") == "rw" && num(l, "obl") > 0);
    assert!(num(&l, "obl") > 32 * 1024 * 1024 && num(&l, "omem") == num(&l, "obl"), "{l:?}");
    assert!(num(&l, "rbs") >= num(&l, "obl") && num(&l, "rbp") >= num(&l, "obl"), "{l:?}");
    assert!(num(&l, "tot-mem") > num(&l, "rbs"), "{l:?}");
    let reply = slow.read_reply();
    assert_eq!(reply.len(), big.len() + 13);
    let l = line_when(&mut obs, &id, |l| get(l, "events") == "r");
    assert_eq!(num(&l, "obl"), 0, "{l:?}");
}

/// CLIENT KILL's TYPE, USER and MAXAGE filters select clients by their
/// real type, user and age.
#[test]
fn client_kill_filters() {
    let s = Server::start();
    let mut old = s.raw();
    let old_id = client_id(&mut old);
    let mut killer = s.raw();
    let mut sub = s.raw();
    sub.send_cmd(&[b"SUBSCRIBE", b"c"]);
    sub.read_reply();
    let mut plain = s.raw();
    let plain_id = client_id(&mut plain);

    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "bogus"]), "-ERR Unknown client type 'bogus'\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "USER", "nobody"]), "-ERR No such user 'nobody'\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "0"]), "-ERR maxage should be greater than 0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "x"]), "-ERR maxage is not an integer or out of range\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", "0"]), "-ERR client-id should be greater than 0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", "1", "TYPE"]), "-ERR syntax error\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), ":0\r\n");

    // TYPE pubsub: only the subscriber.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), ":1\r\n");
    assert!(sub.is_closed());
    assert_eq!(plain.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(old.cmd(&["PING"]), "+PONG\r\n");

    // MAXAGE: once `old` and `plain` (the later) are a second old, a client
    // that connects now is younger and survives.
    line_when(&mut killer, &plain_id, |l| num(l, "age") >= 1);
    assert!(num(&line_of(&mut killer, &old_id), "age") >= 1);
    let mut young = s.raw();
    let young_id = client_id(&mut young);
    assert_eq!(num(&line_of(&mut killer, &young_id), "age"), 0);
    // Every client but the killer (skipped) and `young`.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "1"]), ":2\r\n");
    assert!(old.is_closed());
    assert!(plain.is_closed());
    assert_eq!(young.cmd(&["PING"]), "+PONG\r\n");

    // USER default with TYPE normal: everyone else of that type.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "USER", "default", "TYPE", "normal"]), ":1\r\n");
    assert!(young.is_closed());
    // SKIPME no: the caller too, after its reply.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]), ":1\r\n");
    assert!(killer.is_closed());
}

/// CLIENT INFO prints Redis's fields in Redis's order: redis-server 7.0's
/// (the reference installed for the differential test) plus what came
/// later: `lib-name` and `lib-ver` (7.2) and `watch` (7.4, after `multi`).
/// And for the same connection states both servers print the same flags
/// and counts.
#[test]
fn client_info_fields_match_redis() {
    const REDIS_7_2: &[&str] = &[
        "id",
        "addr",
        "laddr",
        "fd",
        "name",
        "age",
        "idle",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "multi-mem",
        "rbs",
        "rbp",
        "obl",
        "oll",
        "omem",
        "tot-mem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
        "lib-name",
        "lib-ver",
    ];
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let names = |reply: String| -> Vec<String> { client_lines(&reply).pop().expect("a line").into_iter().map(|(k, _)| k).collect() };
    let ours = names(s.raw().cmd(&["CLIENT", "INFO"]));
    assert_eq!(ours, REDIS_7_2);
    let later = ["lib-name", "lib-ver"];
    let ours_as_7_0: Vec<String> = ours.into_iter().filter(|n| !later.contains(&n.as_str())).collect();
    let theirs: Vec<String> = names(r.raw().cmd(&["CLIENT", "INFO"])).into_iter().filter(|n| !later.contains(&n.as_str())).collect();
    assert_eq!(ours_as_7_0, theirs);

    // The same states on both servers.
    let compare = ["flags", "db", "sub", "psub", "ssub", "multi", "oll", "events", "user", "redir", "resp"];
    let states: &[(&str, &[&[&str]])] = &[
        ("multi", &[&["MULTI"], &["SET", "a", "1"], &["INCR", "n"]]),
        ("watch, dirty", &[&["WATCH", "w"], &["SET", "w", "1"]]),
        ("select, resp3, no-evict", &[&["SELECT", "3"], &["HELLO", "3"], &["CLIENT", "NO-EVICT", "on"]]),
        ("multi in db 1", &[&["SELECT", "1"], &["MULTI"], &["PING"]]),
    ];
    for (what, cmds) in states {
        let mut lines = Vec::new();
        for port in [s.port, r.port] {
            let mut c = damselfly_tests::Raw::connect(port);
            let id = client_id(&mut c);
            for cmd in *cmds {
                c.cmd(cmd);
            }
            let mut o = damselfly_tests::Raw::connect(port);
            // The client has read its last reply, but the thread that wrote
            // it may not have marked the write done yet (`events=rw`) when
            // the observer runs on another shard's thread.
            let l = line_when(&mut o, &id, |l| get(l, "events") != "rw");
            lines.push(compare.map(|f| format!("{f}={}", get(&l, f))));
            drop(c);
        }
        assert_eq!(lines[0], lines[1], "{what}");
    }
    // A subscriber and a blocked client.
    let mut lines = Vec::new();
    for port in [s.port, r.port] {
        let mut o = damselfly_tests::Raw::connect(port);
        let mut p = damselfly_tests::Raw::connect(port);
        let p_id = client_id(&mut p);
        p.send_cmd(&[b"SUBSCRIBE", b"a", b"b"]);
        p.read_reply();
        p.read_reply();
        p.send_cmd(&[b"PSUBSCRIBE", b"x*"]);
        p.read_reply();
        let mut b = damselfly_tests::Raw::connect(port);
        let b_id = client_id(&mut b);
        b.send_cmd(&[b"BLPOP", b"none", b"0"]);
        let bl = line_when(&mut o, &b_id, |l| get(l, "flags") == "b");
        let pl = line_of(&mut o, &p_id);
        lines.push([&pl, &bl].map(|l| compare.map(|f| format!("{f}={}", get(l, f)))));
    }
    assert_eq!(lines[0], lines[1]);
}
