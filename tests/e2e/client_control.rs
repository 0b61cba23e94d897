//! CLIENT REPLY, PAUSE / UNPAUSE, UNBLOCK and GETREDIR against a real
//! server: argument errors side by side with redis-server 7, replies
//! dropped and restored, paused commands waiting (not failing) until the
//! pause ends, blocked commands ended as timed out or with an error. Waits
//! are on observable state (CLIENT LIST's `b` flag), never on time.

use std::time::{Duration, Instant};

use damselfly_tests::{Raw, Redis, Server};

const ERRORS: &[(&[&str], &str)] = &[
    (&["CLIENT", "PAUSE"], "-ERR wrong number of arguments for 'client|pause' command\r\n"),
    (&["CLIENT", "PAUSE", "x"], "-ERR timeout is not an integer or out of range\r\n"),
    (&["CLIENT", "PAUSE", "-1"], "-ERR timeout is negative\r\n"),
    (&["CLIENT", "PAUSE", "10", "foo"], "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"),
    (&["CLIENT", "PAUSE", "10", "write", "x"], "-ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.\r\n"),
    (&["CLIENT", "UNPAUSE", "x"], "-ERR wrong number of arguments for 'client|unpause' command\r\n"),
    (&["CLIENT", "UNBLOCK", "x"], "-ERR value is not an integer or out of range\r\n"),
    (&["CLIENT", "UNBLOCK", "1", "foo"], "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"),
    (
        &["CLIENT", "UNBLOCK", "1", "timeout", "x"],
        "-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n",
    ),
    (&["CLIENT", "UNBLOCK", "99999"], ":0\r\n"),
    (&["CLIENT", "REPLY", "foo"], "-ERR syntax error\r\n"),
    (&["CLIENT", "REPLY"], "-ERR wrong number of arguments for 'client|reply' command\r\n"),
    (&["CLIENT", "GETREDIR"], ":-1\r\n"),
    (&["CLIENT", "UNPAUSE"], "+OK\r\n"),
];

#[test]
fn errors_match_redis() {
    let s = Server::start();
    let r = Redis::start();
    let (mut a, mut b) = (s.raw(), r.raw());
    for (args, want) in ERRORS {
        assert_eq!(a.cmd(args), *want, "{args:?}");
        assert_eq!(b.cmd(args), *want, "redis: {args:?}");
    }
}

/// CLIENT REPLY OFF / SKIP / ON, the same on both servers: only the
/// replies that are not switched off arrive.
fn reply_modes(c: &mut Raw) -> Vec<String> {
    let mut got = Vec::new();
    c.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send_cmd(&[b"SET", b"k", b"1"]);
    c.send_cmd(&[b"GET", b"nosuchkey"]);
    c.send_cmd(&[b"NOSUCHCOMMAND"]);
    c.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    c.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send_cmd(&[b"INCR", b"k"]);
    c.send_cmd(&[b"GET", b"k"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    // SKIP, then OFF: the OFF itself is skipped, and stays.
    c.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send_cmd(&[b"PING"]);
    c.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    got.push(c.cmd(&["ECHO", "end"]));
    got
}

#[test]
fn reply_modes_match_redis() {
    let s = Server::start_with(&["--shards", "2"]);
    let r = Redis::start();
    let ours = reply_modes(&mut s.raw());
    assert_eq!(ours, ["+OK\r\n", "$1\r\n2\r\n", "+OK\r\n", "$3\r\nend\r\n"]);
    assert_eq!(ours, reply_modes(&mut r.raw()));
    // A blocking command's reply is dropped too, after the replies before
    // it went out.
    let mut c = s.raw();
    let mut other = s.raw();
    c.send_cmd(&[b"PING"]);
    c.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send_cmd(&[b"BLPOP", b"bl", b"0"]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+PONG\r\n");
    other.wait_blocked(1);
    assert_eq!(other.cmd(&["RPUSH", "bl", "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["LLEN", "bl"]), ":0\r\n");
    // RESET turns replies back on.
    let mut c = s.raw();
    c.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

/// Pub/sub confirmations and messages are pushes: they arrive under
/// CLIENT REPLY OFF and SKIP too (Redis 7's CLIENT_PUSHING), in RESP2 and
/// RESP3; the replies of other commands stay dropped.
fn pushes_under_reply_off(port: u16, resp3: bool) -> Vec<String> {
    let mut c = Raw::connect(port);
    let mut publ = Raw::connect(port);
    let mut got = Vec::new();
    if resp3 {
        c.cmd(&["HELLO", "3"]);
    }
    c.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send_cmd(&[b"SUBSCRIBE", b"ch"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    c.send_cmd(&[b"PSUBSCRIBE", b"c*"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    got.push(publ.cmd(&["PUBLISH", "ch", "hello"]));
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    if resp3 {
        c.send_cmd(&[b"GET", b"x"]);
        c.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    }
    c.send_cmd(&[b"UNSUBSCRIBE", b"ch"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    c.send_cmd(&[b"PUNSUBSCRIBE"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    c.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    got.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
    got
}

#[test]
fn pubsub_pushes_ignore_reply_off() {
    let s = Server::start_with(&["--shards", "2"]);
    let r = Redis::start();
    let resp2 = [
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n",
        ":2\r\n",
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
        "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$5\r\nhello\r\n",
        "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:1\r\n",
        "*3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:0\r\n",
        "+OK\r\n",
    ];
    let resp3: Vec<String> = resp2.iter().map(|r| if r.starts_with('*') { r.replacen('*', ">", 1) } else { r.to_string() }).collect();
    for (is3, want) in [(false, resp2.iter().map(|s| s.to_string()).collect::<Vec<_>>()), (true, resp3)] {
        assert_eq!(pushes_under_reply_off(s.port, is3), want, "resp3: {is3}");
        assert_eq!(pushes_under_reply_off(r.port, is3), want, "redis, resp3: {is3}");
    }
}

/// The `flags=` of client `id` in CLIENT LIST.
fn flags_of(c: &mut Raw, id: &str) -> String {
    let list = c.cmd(&["CLIENT", "LIST", "ID", id]);
    let at = list.find("flags=").expect("flags") + 6;
    list[at..].split(' ').next().expect("flags").to_string()
}

fn id_of(c: &mut Raw) -> String {
    c.cmd(&["CLIENT", "ID"]).trim_start_matches(':').trim_end().to_string()
}

/// Waits until client `id` shows flag `b` (it waits for something).
fn wait_flag_b(admin: &mut Raw, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flags_of(admin, id).contains('b') {
        assert!(Instant::now() < deadline, "client {id} never waited");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pause_write_holds_writes_until_unpause() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut admin = s.raw();
    let mut w = s.raw();
    let wid = id_of(&mut w);
    assert_eq!(admin.cmd(&["SET", "k", "before"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), "+OK\r\n");
    // Reads go on; a write (and PUBLISH, EVAL) waits.
    assert_eq!(w.cmd(&["GET", "k"]), "$6\r\nbefore\r\n");
    w.send_cmd(&[b"SET", b"k", b"after"]);
    wait_flag_b(&mut admin, &wid);
    assert_eq!(admin.cmd(&["GET", "k"]), "$6\r\nbefore\r\n");
    // A paused client counts as blocked, as in Redis 7.0.
    assert!(admin.cmd(&["INFO", "clients"]).contains("\r\nblocked_clients:1\r\n"));
    // A stricter pause or a shorter one keeps the writer waiting.
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "10", "WRITE"]), "+OK\r\n");
    assert!(flags_of(&mut admin, &wid).contains('b'));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "+OK\r\n");
    assert_eq!(admin.cmd(&["GET", "k"]), "$5\r\nafter\r\n");
    assert!(!flags_of(&mut admin, &wid).contains('b'));
}

#[test]
fn pause_all_holds_everything_until_it_ends() {
    let s = Server::start();
    let mut admin = s.raw();
    let mut c = s.raw();
    let cid = id_of(&mut c);
    // Everything waits, the pausing client too, until the time is up: a
    // pipeline's earlier replies come first.
    c.send_cmd(&[b"PING"]);
    c.send_cmd(&[b"CLIENT", b"PAUSE", b"300", b"ALL"]);
    c.send_cmd(&[b"GET", b"k"]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+PONG\r\n");
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    // (CLIENT LIST itself waits too: the flag is seen once it ends.)
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "$-1\r\n");
    assert!(!flags_of(&mut admin, &cid).contains('b'));
}

#[test]
fn unblock_ends_waits_as_timeout_or_error() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut admin = s.raw();
    let mut c = s.raw();
    let cid = id_of(&mut c);
    let cases: &[(&[&str], &str, &str)] = &[
        (&["BLPOP", "list", "0"], "TIMEOUT", "*-1\r\n"),
        (&["BLPOP", "list", "0"], "ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"),
        (&["BZPOPMIN", "z", "0"], "TIMEOUT", "*-1\r\n"),
        (&["BLMOVE", "a", "b", "LEFT", "LEFT", "0"], "TIMEOUT", "*-1\r\n"),
        (&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"], "TIMEOUT", "*-1\r\n"),
        (&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"], "ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"),
        (&["WAIT", "1", "0"], "TIMEOUT", ":0\r\n"),
        (&["WAIT", "1", "0"], "ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"),
    ];
    for (args, how, want) in cases {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        c.send_cmd(&a);
        wait_flag_b(&mut admin, &cid);
        assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &cid, how]), ":1\r\n", "{args:?}");
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), *want, "{args:?} {how}");
        // Not waiting any more: nothing to unblock.
        assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &cid]), ":0\r\n");
    }
    // The connection goes on as usual.
    assert_eq!(c.cmd(&["RPUSH", "list", "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["BLPOP", "list", "0"]), "*2\r\n$4\r\nlist\r\n$1\r\nx\r\n");
}

#[test]
fn help_names_every_subcommand() {
    let s = Server::start();
    let mut c = s.raw();
    let help = c.cmd(&["CLIENT", "HELP"]);
    let subs = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*"]);
    let names: Vec<&str> = subs.split("\r\n").filter_map(|l| l.strip_prefix("client|")).collect();
    assert_eq!(names.len(), 18, "{subs}");
    for n in names {
        let up = n.to_ascii_uppercase();
        assert!(help.split("\r\n").any(|l| l.strip_prefix('+').is_some_and(|l| l.starts_with(&up))), "{n} missing from CLIENT HELP");
    }
}

/// `timeout`: a client that sends nothing for longer than it is closed;
/// subscribers, monitors and clients waiting in a blocking command stay,
/// as in Redis.
#[test]
fn timeout_closes_idle_clients_only() {
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "GET", "timeout"]), "*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "timeout", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive\r\n"
    );
    let mut sub = s.raw();
    assert_eq!(sub.cmd(&["SUBSCRIBE", "ch"]), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let mut mon = s.raw();
    assert_eq!(mon.cmd(&["MONITOR"]), "+OK\r\n");
    let mut blocked = s.raw();
    blocked.send_cmd(&[b"BLPOP", b"list", b"0"]);
    admin.wait_blocked(1);
    let mut idle = s.raw();
    assert_eq!(idle.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "1"]), "+OK\r\n");
    // Reads block until the server closes the connection.
    assert!(idle.is_closed(), "an idle client outlived the timeout");
    // One more, idle from later on: once it is closed too, the others have
    // been idle past the timeout for several checks.
    let mut late = s.raw();
    assert_eq!(late.cmd(&["PING"]), "+PONG\r\n");
    assert!(late.is_closed());
    let mut fresh = s.raw();
    assert_eq!(fresh.cmd(&["PUBLISH", "ch", "hi"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    assert_eq!(fresh.cmd(&["RPUSH", "list", "v"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&blocked.read_reply()), "*2\r\n$4\r\nlist\r\n$1\r\nv\r\n");
    assert_eq!(fresh.cmd(&["SET", "probe", "1"]), "+OK\r\n");
    // The monitor's lines up to the probe's, its connection still open.
    while !String::from_utf8_lossy(&mon.read_reply()).contains("\"probe\"") {}
    assert_eq!(fresh.cmd(&["CONFIG", "SET", "timeout", "0"]), "+OK\r\n");
}

/// `tcp-keepalive` (default 300 s, as Redis): client sockets accepted
/// while it is set carry TCP keepalive (seen in `ss`'s timer column); 0
/// leaves new sockets without it.
#[test]
fn tcp_keepalive_arms_new_client_sockets() {
    let ss_works = std::process::Command::new("ss").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(ss_works, "ss (iproute2) is not installed: scripts/test installs it");
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "GET", "tcp-keepalive"]), "*2\r\n$13\r\ntcp-keepalive\r\n$3\r\n300\r\n");
    // The server side of a connection from `c`, as ss lists it.
    let server_side = |c: &std::net::TcpStream| {
        let peer = format!("127.0.0.1:{}", c.local_addr().expect("local addr").port());
        let filter = format!("( sport = :{} )", s.port);
        let out = std::process::Command::new("ss").args(["-tno", "state", "established", &filter]).output().expect("run ss");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find(|l| l.contains(&peer)).map(String::from).unwrap_or_else(|| panic!("no socket for {peer} in {text}"))
    };
    let connect = || {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        use std::io::{Read, Write};
        c.write_all(b"PING\r\n").expect("write");
        let mut b = [0u8; 7];
        c.read_exact(&mut b).expect("read");
        assert_eq!(&b, b"+PONG\r\n");
        c
    };
    let c1 = connect();
    assert!(server_side(&c1).contains("timer:(keepalive,"), "{}", server_side(&c1));
    assert_eq!(admin.cmd(&["CONFIG", "SET", "tcp-keepalive", "0"]), "+OK\r\n");
    let c2 = connect();
    assert!(!server_side(&c2).contains("keepalive"), "{}", server_side(&c2));
}

/// Under CLIENT PAUSE WRITE a script or function that declares `no-writes`
/// runs (Redis's "Test RO scripts are not blocked by pause RO"), as do
/// EVAL_RO and FCALL_RO; a script without flags, or with flags that allow
/// writes, waits for the pause to end.
#[test]
fn pause_write_lets_read_only_scripts_run() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut admin = s.raw();
    let lib = "#!lua name=lib\nredis.register_function{function_name='ro', callback=function() return 'ro' end, flags={'no-writes'}}\nredis.register_function('rw', function() return 'rw' end)";
    assert_eq!(admin.cmd(&["FUNCTION", "LOAD", lib]), "$3\r\nlib\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), "+OK\r\n");
    let mut c = s.raw();
    let runs: &[(&[&str], &str)] = &[
        (&["EVAL", "#!lua flags=no-writes\nreturn 'fresh'", "0"], "$5\r\nfresh\r\n"),
        (&["EVAL", "#!lua flags=no-writes\nreturn 'fresh'", "0"], "$5\r\nfresh\r\n"),
        (&["EVAL_RO", "return 'ro'", "0"], "$2\r\nro\r\n"),
        (&["FCALL", "ro", "0"], "$2\r\nro\r\n"),
        (&["FCALL_RO", "ro", "0"], "$2\r\nro\r\n"),
    ];
    for (cmd, want) in runs {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }
    // Commands that may replicate are writes to a read-only script, as
    // in Redis: so it can run under the pause.
    for cmd in [
        &["EVAL_RO", "return redis.call('publish','ch','msg')", "0"][..],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.call('pfcount','h')", "0"],
    ] {
        let reply = c.cmd(cmd);
        assert!(reply.starts_with("-ERR Write commands are not allowed from read-only scripts. script: "), "{cmd:?}: {reply}");
    }
    let cid = id_of(&mut c);
    for (cmd, want) in [
        (&["EVAL", "return 1", "0"][..], ":1\r\n"),
        (&["EVAL", "#!lua\nreturn 2", "0"], ":2\r\n"),
        (&["EVAL", "#!lua flags=allow-stale\nreturn 3", "0"], ":3\r\n"),
        (&["FCALL", "rw", "0"], "$2\r\nrw\r\n"),
    ] {
        assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), "+OK\r\n");
        let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        c.send_cmd(&a);
        wait_flag_b(&mut admin, &cid);
        assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), want, "{cmd:?}");
    }
}

/// While CLIENT PAUSE holds writes, a key whose TTL passes reads as
/// missing but is not deleted (nor counted in `expired_keys`), by lookups
/// or the active cycle; once the pause ends, reading it deletes and counts
/// it (Redis's "active and passive expires are skipped during client
/// pause"). Keys expired by a lookup count as the active cycle's do.
#[test]
fn expiry_waits_for_a_pause_to_end() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    let expired = |c: &mut Raw| -> u64 {
        let info = c.cmd(&["INFO", "stats"]);
        let at = info.find("expired_keys:").expect("expired_keys") + "expired_keys:".len();
        info[at..].split("\r\n").next().and_then(|v| v.parse().ok()).expect("a count")
    };
    // A lookup of an expired key deletes and counts it.
    assert_eq!(c.cmd(&["SET", "early", "v", "PX", "1"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.cmd(&["GET", "early"]), "$-1\r\n");
    assert_eq!(expired(&mut c), 1);
    for cmd in
        [&["MULTI"][..], &["SET", "foo{t}", "a", "PX", "10"], &["SET", "bar{t}", "b", "PX", "10"], &["CLIENT", "PAUSE", "50000", "WRITE"]]
    {
        c.cmd(cmd);
    }
    assert_eq!(c.cmd(&["EXEC"]), "*3\r\n+OK\r\n+OK\r\n+OK\r\n");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["GET", "foo{t}"]), "$-1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "bar{t}"]), ":0\r\n");
    // Two active expiry cycles (every 100 ms) pass too.
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(c.cmd(&["DBSIZE"]), ":2\r\n");
    assert_eq!(expired(&mut c), 1);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "foo{t}"]), "$-1\r\n");
    assert_eq!(c.cmd(&["GET", "bar{t}"]), "$-1\r\n");
    assert_eq!(expired(&mut c), 3);
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
}
