//! A script that never ends must not wedge the node: every client — on any
//! thread, connected before or after the script started — gets -BUSY once
//! the script is past the time limit, and can stop it (SCRIPT KILL,
//! FUNCTION KILL, SHUTDOWN NOSAVE), with one shard or several. Error texts
//! are Redis 7's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use damselfly_tests::{Raw, Server};

const BUSY_SCRIPT: &str = "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str = "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
const UNKILLABLE: &str = "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n";
const SPIN_LIBRARY: &str =
    "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}";

/// A server with `shards` shards and a 100 ms busy threshold.
fn server(shards: usize, extra: &[&str]) -> Server {
    let n = shards.to_string();
    let mut args = vec!["--shards", &n];
    args.extend_from_slice(extra);
    let s = Server::start_with(&args);
    let mut admin = s.raw();
    for a in extra.windows(2).filter(|w| w[0] == "--requirepass") {
        assert_eq!(admin.cmd(&["AUTH", a[1]]), "+OK\r\n");
    }
    assert_eq!(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]), "+OK\r\n");
    s
}

/// Connections spread over every thread (the listener hands them out in
/// turn), each checked to be served.
fn clients(s: &Server, shards: usize) -> Vec<Raw> {
    (0..2 * shards)
        .map(|_| {
            let mut c = s.raw();
            c.send(b"*1\r\n$4\r\nPING\r\n");
            c
        })
        .collect()
}

/// Reads each client's reply to the PING `clients` sent (those that were
/// accepted during the busy script are answered by it: -BUSY).
fn replies(cs: &mut [Raw]) -> Vec<String> {
    cs.iter_mut().map(|c| String::from_utf8_lossy(&c.read_reply()).into_owned()).collect()
}

/// Sends PING on `c` until it answers `want` (bounded); returns how long
/// it took.
fn wait_for(c: &mut Raw, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let got = c.cmd(&["PING"]);
        if got == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still {got:?}, waiting for {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `cmd` (a never-ending script or function) and returns the
/// client running it and the clients connected before.
fn start_busy(s: &Server, shards: usize, cmd: &[&[u8]], busy: &str) -> (Raw, Vec<Raw>) {
    let mut before = clients(s, shards);
    assert!(replies(&mut before).iter().all(|r| r == "+PONG\r\n"));
    let mut runner = s.raw();
    let started = Instant::now();
    runner.send_cmd(cmd);
    // The first client to notice: BUSY reaches every thread.
    let waited = wait_for(&mut before[0], busy);
    eprintln!("shards={shards}: -BUSY {:?} after the script started, {waited:?} of polling (threshold 100 ms)", started.elapsed());
    (runner, before)
}

/// A client parked mid-command: its first bytes arrived before the
/// script, the rest come during it, and it completes afterwards.
const PARTIAL_SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$7\r\npartial\r\n$5\r\nva";

fn busy_then_kill(shards: usize, function: bool) {
    let s = server(shards, &[]);
    let (cmd, busy, kill): (&[&[u8]], &str, [&str; 2]) = if function {
        let mut c = s.raw();
        assert_eq!(c.cmd(&["FUNCTION", "LOAD", SPIN_LIBRARY]), "$4\r\nspin\r\n");
        (&[b"FCALL", b"spin", b"0"], BUSY_FUNCTION, ["FUNCTION", "KILL"])
    } else {
        (&[b"EVAL", b"while true do end", b"0"], BUSY_SCRIPT, ["SCRIPT", "KILL"])
    };
    let mut early = s.raw();
    early.send(&PARTIAL_SET[..10]);
    let (mut runner, mut before) = start_busy(&s, shards, cmd, busy);
    // Connected before: every command but the allowed ones is refused,
    // whatever shard its key lives on.
    for c in &mut before {
        assert_eq!(c.cmd(&["PING"]), busy);
        for key in ["a", "b", "c", "d"] {
            assert_eq!(c.cmd(&["GET", key]), busy);
        }
    }
    // Connected after (on every thread, the busy one included).
    let mut after = clients(&s, shards);
    assert!(replies(&mut after).iter().all(|r| r == busy), "new clients must get -BUSY");
    for c in &mut after {
        assert_eq!(c.cmd(&["SET", "k", "v"]), busy);
    }
    // A pipeline whose last command is incomplete: the complete ones are
    // answered, the rest waits.
    early.send(&PARTIAL_SET[10..]);
    after[0].send(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$7\r\npar");
    assert_eq!(String::from_utf8_lossy(&after[0].read_reply()), busy);
    // The wrong KILL names the right one.
    let wrong = if function { ["SCRIPT", "KILL"] } else { ["FUNCTION", "KILL"] };
    assert_eq!(before[0].cmd(&wrong), busy);
    assert!(after[1].cmd(&["FUNCTION", "STATS"]).starts_with("*4\r\n$14\r\nrunning_script\r\n"));
    // Killed from a client that arrived during the script.
    let killer = after.len() - 1;
    assert_eq!(after[killer].cmd(&kill), "+OK\r\n");
    let got = String::from_utf8_lossy(&runner.read_reply()).into_owned();
    assert!(got.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{got:?}");
    // Everybody is served normally again.
    for c in before.iter_mut().chain(after.iter_mut().skip(1)).chain([&mut runner]) {
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    }
    assert_eq!(s.raw().cmd(&["PING"]), "+PONG\r\n");
    // The partial commands complete.
    early.send(b"lue\r\n");
    assert_eq!(String::from_utf8_lossy(&early.read_reply()), "+OK\r\n");
    after[0].send(b"tial\r\n");
    assert_eq!(String::from_utf8_lossy(&after[0].read_reply()), "$5\r\nvalue\r\n");
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "-NOTBUSY No scripts in execution right now.\r\n");
}

#[test]
fn script_kill_reaches_a_busy_single_shard() {
    busy_then_kill(1, false);
}

#[test]
fn script_kill_reaches_every_thread() {
    busy_then_kill(2, false);
}

#[test]
fn function_kill_reaches_a_busy_single_shard() {
    busy_then_kill(1, true);
}

#[test]
fn function_kill_reaches_every_thread() {
    busy_then_kill(2, true);
}

/// Waits (bounded) for the process to exit.
fn wait_exit(s: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.exited() {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(TcpStream::connect(("127.0.0.1", s.port)).is_err(), "still listening");
}

fn shutdown_nosave(shards: usize, wrote: bool) {
    let mut s = server(shards, &[]);
    let body: &[u8] = if wrote { b"redis.call('SET', 'w', '1') while true do end" } else { b"while true do end" };
    let (_runner, mut before) = start_busy(&s, shards, &[b"EVAL", body, b"0"], BUSY_SCRIPT);
    let mut after = s.raw();
    assert_eq!(after.cmd(&["PING"]), BUSY_SCRIPT);
    if wrote {
        assert_eq!(after.cmd(&["SCRIPT", "KILL"]), UNKILLABLE);
        assert_eq!(before[0].cmd(&["SCRIPT", "KILL"]), UNKILLABLE);
    }
    // SHUTDOWN's options are checked, and only NOSAVE stops a busy node;
    // then the client gets no reply.
    assert_eq!(after.cmd(&["SHUTDOWN", "NOSAVE", "BOGUS"]), "-ERR syntax error\r\n");
    for c in before.iter_mut().chain([&mut after]) {
        assert_eq!(c.cmd(&["SHUTDOWN"]), BUSY_SCRIPT);
        assert_eq!(c.cmd(&["SHUTDOWN", "NOW"]), BUSY_SCRIPT);
    }
    let last = before.len() - 1;
    before[last].send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    wait_exit(&mut s);
}

#[test]
fn shutdown_nosave_stops_a_busy_single_shard() {
    shutdown_nosave(1, false);
}

#[test]
fn shutdown_nosave_stops_a_busy_node() {
    shutdown_nosave(2, false);
}

#[test]
fn a_script_that_wrote_is_unkillable_but_shutdown_works() {
    shutdown_nosave(1, true);
    shutdown_nosave(2, true);
}

/// The other commands Redis allows during a busy script (`allow_busy`:
/// MULTI, DISCARD, WATCH, HELLO, ...) are not refused: a client of another
/// thread runs them at once, one of the busy thread waits for the script.
#[test]
fn allow_busy_commands_are_not_refused() {
    let shards = 2;
    let s = server(shards, &[]);
    let (mut runner, mut before) = start_busy(&s, shards, &[b"EVAL", b"while true do end", b"0"], BUSY_SCRIPT);
    for c in &mut before {
        c.send_cmd(&[b"MULTI"]);
    }
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(String::from_utf8_lossy(&runner.read_reply()).starts_with("-ERR Script killed by user"));
    for c in &mut before {
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
        assert_eq!(c.cmd(&["SET", "k", "v"]), "+QUEUED\r\n");
        assert_eq!(c.cmd(&["DISCARD"]), "+OK\r\n");
    }
}

#[test]
fn busy_clients_must_authenticate_first() {
    let s = server(1, &["--requirepass", "sesame"]);
    let mut runner = s.raw();
    assert_eq!(runner.cmd(&["AUTH", "sesame"]), "+OK\r\n");
    let mut before = s.raw();
    assert_eq!(before.cmd(&["AUTH", "sesame"]), "+OK\r\n");
    runner.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
    wait_for(&mut before, BUSY_SCRIPT);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["SHUTDOWN", "NOSAVE"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd(&["AUTH", "sesame"]), "+OK\r\n");
    assert_eq!(c.cmd(&["PING"]), BUSY_SCRIPT);
    assert_eq!(c.cmd(&["SCRIPT", "KILL", "now"]), "-ERR wrong number of arguments for 'script|kill' command\r\n");
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let got = String::from_utf8_lossy(&runner.read_reply()).into_owned();
    assert!(got.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{got:?}");
    // The login made during the script holds afterwards.
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_transaction_refused_during_a_busy_script_is_aborted() {
    let s = server(1, &[]);
    let mut tx = s.raw();
    assert_eq!(tx.cmd(&["MULTI"]), "+OK\r\n");
    let mut eof = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    eof.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    eof.write_all(b"MULTI\r\n").expect("write");
    let mut ok = [0u8; 5];
    eof.read_exact(&mut ok).expect("+OK");
    assert_eq!(&ok, b"+OK\r\n");
    let (mut runner, _before) = start_busy(&s, 1, &[b"EVAL", b"while true do end", b"0"], BUSY_SCRIPT);
    assert_eq!(tx.cmd(&["SET", "t", "1"]), BUSY_SCRIPT);
    // The rest of a transaction, sent by a client that then stops sending:
    // it still runs once the script ends.
    eof.write_all(b"SCRIPT KILL\r\nEXEC\r\n").expect("write");
    eof.shutdown(std::net::Shutdown::Write).expect("shutdown");
    // Allowed while busy, but queued inside MULTI: it waits for the script.
    tx.send_cmd(&[b"SCRIPT", b"KILL"]);
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(String::from_utf8_lossy(&runner.read_reply()).starts_with("-ERR Script killed by user"));
    assert_eq!(String::from_utf8_lossy(&tx.read_reply()), "+QUEUED\r\n");
    assert_eq!(tx.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(tx.cmd(&["EXISTS", "t"]), ":0\r\n");
    let mut rest = Vec::new();
    eof.read_to_end(&mut rest).expect("replies");
    assert_eq!(String::from_utf8_lossy(&rest), "+QUEUED\r\n*1\r\n-NOTBUSY No scripts in execution right now.\r\n");
}

/// EXEC while a script is busy discards the transaction with EXECABORT,
/// on the script's thread (its hook answers) and on the others, as Redis's
/// "EXEC and script timeout"; the clients are out of MULTI after it.
#[test]
fn exec_during_a_busy_script_aborts_on_every_thread() {
    let s = server(2, &[]);
    let mut txs: Vec<Raw> = (0..4)
        .map(|_| {
            let mut c = s.raw();
            assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
            assert_eq!(c.cmd(&["INCR", "xx"]), "+QUEUED\r\n");
            c
        })
        .collect();
    let (mut runner, _before) = start_busy(&s, 2, &[b"EVAL", b"while true do end", b"0"], BUSY_SCRIPT);
    let abort = format!("-EXECABORT Transaction discarded because of: {}", &BUSY_SCRIPT[1..]);
    for tx in &mut txs {
        assert_eq!(tx.cmd(&["EXEC"]), abort);
    }
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(String::from_utf8_lossy(&runner.read_reply()).starts_with("-ERR Script killed by user"));
    for tx in &mut txs {
        assert_eq!(tx.cmd(&["PING"]), "+PONG\r\n");
    }
    assert_eq!(s.raw().cmd(&["GET", "xx"]), "$-1\r\n");
}

#[test]
fn the_busy_hook_copes_with_odd_clients() {
    let s = server(1, &[]);
    let (mut runner, _before) = start_busy(&s, 1, &[b"EVAL", b"while true do end", b"0"], BUSY_SCRIPT);
    // A protocol error: the error, then the connection closes.
    let mut bad = s.raw();
    bad.send(b"*x\r\n");
    assert!(String::from_utf8_lossy(&bad.read_reply()).starts_with("-ERR Protocol error"));
    assert!(bad.is_closed());
    // A client that leaves with a command in flight.
    let mut gone = s.raw();
    gone.send(b"*1\r\n$4\r\nPING\r\n*1\r\n$4");
    drop(gone);
    // A large pipeline whose replies do not fit the socket: they wait, and
    // come in order (written from another thread, as the server stops
    // reading from a client that does not read its replies).
    let n = 50_000;
    let mut many = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    many.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut w = many.try_clone().expect("clone");
    let pings = std::thread::spawn(move || w.write_all(&b"*1\r\n$4\r\nPING\r\n".repeat(n)).expect("write"));
    // Not reading for a while: the replies pile up on the server's side.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !pings.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut got = vec![0u8; n * BUSY_SCRIPT.len()];
    many.read_exact(&mut got).expect("replies");
    assert!(got.chunks(BUSY_SCRIPT.len()).all(|r| r == BUSY_SCRIPT.as_bytes()));
    pings.join().expect("writer");
    // A value larger than what the hook keeps for a client: the rest waits
    // in the socket (written from another thread: it does not all fit).
    let big = 3 << 20;
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut c = Raw::connect(port);
        let mut req = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${big}\r\n").into_bytes();
        req.extend(std::iter::repeat_n(b'x', big));
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        c
    });
    // All of it is sent, or what is not waits for the script's end.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !writer.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(String::from_utf8_lossy(&runner.read_reply()).starts_with("-ERR Script killed by user"));
    let mut c = writer.join().expect("writer");
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "big"]), format!(":{big}\r\n"));
    many.write_all(b"PING\r\n").expect("write");
    let mut pong = [0u8; 7];
    many.read_exact(&mut pong).expect("pong");
    assert_eq!(&pong, b"+PONG\r\n");
}

/// A reply computed in the same round as a script that turns busy is not
/// held back by the script: a connection that is not the first to answer
/// in a round writes its replies a turn later and meanwhile lends them to
/// the busy hook, which sends them and serves the client.
#[test]
fn a_reply_ready_before_a_busy_script_is_sent_during_it() {
    let s = server(1, &["--enable-debug-command", "yes"]);
    let (mut sleeper, mut first, mut second, mut runner) = (s.raw(), s.raw(), s.raw(), s.raw());
    // Every connection accepted and served once before the thread sleeps,
    // so after it the order their requests arrived in is the order they
    // are read in.
    for c in [&mut sleeper, &mut first, &mut second, &mut runner] {
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    }
    // The thread sleeps; two PINGs and then the script arrive meanwhile,
    // so all three are read in one round when it wakes, in that order.
    sleeper.send_cmd(&[b"DEBUG", b"SLEEP", b"0.3"]);
    std::thread::sleep(Duration::from_millis(50));
    first.send_cmd(&[b"PING"]);
    second.send_cmd(&[b"PING"]);
    std::thread::sleep(Duration::from_millis(50));
    runner.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
    for c in [&mut first, &mut second] {
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+PONG\r\n");
        wait_for(c, BUSY_SCRIPT);
    }
    assert_eq!(s.raw().cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(String::from_utf8_lossy(&runner.read_reply()).starts_with("-ERR Script killed by user"));
    assert_eq!(String::from_utf8_lossy(&sleeper.read_reply()), "+OK\r\n");
    assert_eq!(second.cmd(&["PING"]), "+PONG\r\n");
}

/// A script cannot take the node's memory: each thread's Lua heap is
/// bounded by `lua-memory-limit` (Redis has no bound; one EVAL building a
/// string by doubling took 12 GB here). The script fails with Lua's memory
/// error, the garbage is collected at once, and the VM keeps serving.
#[test]
fn a_script_cannot_grow_its_heap_past_lua_memory_limit() {
    const MB: u64 = 1 << 20;
    let s = server(2, &["--lua-memory-limit", "64mb"]);
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "GET", "lua-memory-limit"]), "*2\r\n$16\r\nlua-memory-limit\r\n$8\r\n67108864\r\n");
    let greedy = [
        "local s = string.rep('x', 2^28) return #s",
        "local s = 'x' for i = 1, 30 do s = s .. s end return #s",
        "local t = {} for i = 1, 1e8 do t[i] = tostring(i) end return #t",
    ];
    // Connections on every thread, so every VM meets the limit.
    let mut cs: Vec<Raw> = (0..4).map(|_| s.raw()).collect();
    for c in &mut cs {
        for script in greedy {
            let got = c.cmd(&["EVAL", script, "0"]);
            assert!(
                got.starts_with("-ERR Error running script") && got.contains("not enough memory") && got.contains("lua-memory-limit"),
                "{script}: {got:?}"
            );
        }
        assert_eq!(c.cmd(&["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "k"]), "+OK\r\n");
    }
    let peak = admin.used_memory_peak();
    assert!(peak < 64 * MB * 2 + 32 * MB, "used_memory_peak {peak} with a 64 MB Lua limit per thread");
    admin.wait_used_below(16 * MB, |used| format!("the failed scripts' garbage still holds {used} bytes"));
    // Functions run in the same VMs: a library's load and its function's run.
    let lib = "#!lua name=greedy\nlocal t = {} for i = 1, 1e8 do t[i] = i end\nredis.register_function('f', function() return 1 end)";
    assert!(admin.cmd(&["FUNCTION", "LOAD", lib]).contains("not enough memory"));
    let lib = "#!lua name=greedy\nredis.register_function{function_name='f', callback=function() return #string.rep('x', 2^28) end, flags={'no-writes'}}";
    assert_eq!(admin.cmd(&["FUNCTION", "LOAD", lib]), "$6\r\ngreedy\r\n");
    assert!(admin.cmd(&["FCALL", "f", "0"]).contains("not enough memory"));
    // The limit follows CONFIG SET; 0 lifts it; tiny limits are refused.
    assert!(admin.cmd(&["CONFIG", "SET", "lua-memory-limit", "100"]).starts_with("-ERR CONFIG SET failed"));
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-memory-limit", "0"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["EVAL", "local s = string.rep('x', 2^26 + 2^25) return #s", "0"]), ":100663296\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-memory-limit", "32mb"]), "+OK\r\n");
    assert!(admin.cmd(&["EVAL", "local s = string.rep('x', 2^25) return #s", "0"]).contains("not enough memory"));
}
