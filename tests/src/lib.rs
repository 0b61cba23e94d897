//! Test harness: starts real `damselfly` processes on random loopback ports
//! and stops them when dropped; raw-socket helpers for exact protocol checks.

pub mod cluster;
pub mod repl;
pub mod resp2;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the server binary: `$DAMSELFLY_BIN`, or `damselfly` in the same
/// target directory as the running test.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("DAMSELFLY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/damselfly
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("damselfly");
    assert!(bin.exists(), "{} not found: build it first (cargo build -p damselfly)", bin.display());
    bin
}

/// Whether process `pid` holds the listening socket of `port` (read from
/// /proc; true where /proc is not available).
fn listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        readable = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && f[1].ends_with(&format!(":{port:04X}")) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return !readable };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| inodes.iter().any(|i| l.to_string_lossy() == *i)))
}

/// A port nothing listens on now (the OS's pick).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// The data directory made for it when the test gave none (snapshots
    /// land there, never in the test's working directory).
    own_dir: Option<cluster::TempDir>,
}

impl Server {
    /// Starts a server with default settings.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        for _ in 0..5 {
            if let Some(s) = Self::try_start(free_port(), extra) {
                return s;
            }
        }
        panic!("damselfly did not start");
    }

    /// Starts a server on a given port (e.g. to restart a node where it
    /// was); `None` when it does not come up.
    pub fn start_at(port: u16, extra: &[&str]) -> Option<Server> {
        Self::try_start(port, extra)
    }

    fn try_start(port: u16, extra: &[&str]) -> Option<Server> {
        let own_dir = (!extra.contains(&"--dir")).then(|| cluster::TempDir::new("server"));
        let mut cmd = Command::new(binary());
        let extra = config_file_first(&mut cmd, extra);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--loglevel", "warn"]);
        // A full sync starts at once rather than after Redis's 5 s wait for
        // more replicas (`extra` may set it again).
        cmd.args(["--repl-diskless-sync-delay", "0"]);
        if let Some(d) = &own_dir {
            cmd.args(["--dir", d.path()]);
        }
        let mut child =
            cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("spawn damselfly");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: most likely the port was taken; try another
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Another test's server may have taken the port between
                // our probe and our child's bind: make sure it is ours.
                if listens_on(child.id(), port) {
                    return Some(Server { child, port, own_dir });
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// A fresh multiplexed async connection (with generous timeouts: CI
    /// machines are small and busy).
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.client()).await
    }

    /// A blocking connection (for simple sequential tests).
    pub fn sync_conn(&self) -> redis::Connection {
        self.client().get_connection().expect("connect")
    }

    /// A raw socket for exact protocol checks.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        Raw { s, buf: Vec::new() }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it
    /// exited within the timeout.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        unsafe_kill_term(self.child.id());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal by name (`STOP`, `CONT`, `KILL`...) to the process.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status();
    }

    /// The data directory the harness made for this server, if the test
    /// gave none.
    pub fn dir(&self) -> Option<&str> {
        self.own_dir.as_ref().map(|d| d.path())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident set size in bytes, from /proc.
    pub fn rss(&self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id())).expect("read /proc statm");
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm rss field");
        pages * 4096
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// How the process ended, once it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Runs the server with `args` where it must refuse to start (a damaged
/// data file, ...): waits (bounded) for it to exit with a failure and
/// returns what it printed on stderr.
pub fn start_refused(args: &[&str]) -> String {
    // The free port may be taken by another test before the node binds it:
    // that refusal is not the one asked about, so try another port.
    for _ in 0..5 {
        let err = start_refused_once(args);
        if !err.contains("Address already in use") {
            return err;
        }
    }
    panic!("no free port for the node");
}

/// Puts a config file at the head of `args` (their first element when it
/// is not an option) on the command line first, as redis-server reads it
/// (words after an option are that option's values); returns the rest.
fn config_file_first<'a>(cmd: &mut Command, args: &'a [&'a str]) -> &'a [&'a str] {
    match args.split_first() {
        Some((file, rest)) if !file.starts_with('-') => {
            cmd.arg(file);
            rest
        }
        _ => args,
    }
}

/// Waits (up to 30 s) for `f` to give a value; fails naming `what`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_refused_once(args: &[&str]) -> String {
    // A real port: a node with no port at all is itself refused.
    let port = free_port().to_string();
    let mut cmd = Command::new(binary());
    let args = config_file_first(&mut cmd, args);
    let mut child = cmd
        .args(["--port", &port, "--loglevel", "warn"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn damselfly");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(!st.success(), "the server exited successfully");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    let _ = child.stderr.as_mut().map(|e| e.read_to_string(&mut err));
    err
}

/// A multiplexed async connection with timeouts generous enough for a
/// loaded CI machine running a debug build (the client's defaults are 1 s to
/// connect and 500 ms per reply).
pub async fn connect(client: &redis::Client) -> redis::aio::MultiplexedConnection {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(20)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    client.get_multiplexed_async_connection_with_config(&cfg).await.expect("connect")
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server child process (the reference the differential tests
/// compare with), killed on drop. Found on PATH or at `$REDIS_SERVER`;
/// starting it panics when it is missing, so a test that needs it fails
/// rather than skips (scripts/test installs it).
pub struct Redis {
    child: Child,
    pub port: u16,
    /// Its working directory when the caller gave none (a replica writes
    /// the file it receives there), removed with it.
    _dir: Option<cluster::TempDir>,
}

impl Redis {
    /// Starts a redis-server with persistence off on a free loopback port.
    pub fn start() -> Redis {
        Self::start_with(&[])
    }

    /// `start`, with extra arguments (later ones override earlier ones).
    pub fn start_with(extra: &[&str]) -> Redis {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        for _ in 0..5 {
            let port = free_port();
            let dir = (!extra.contains(&"--dir")).then(|| cluster::TempDir::new("redis"));
            let mut cmd = Command::new(&bin);
            if let Some(d) = &dir {
                cmd.args(["--dir", d.path()]);
            }
            let child = cmd
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--loglevel", "warning"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn();
            let child = match child {
                Ok(c) => c,
                Err(e) => panic!("cannot run {bin} ({e}): this test needs redis-server 7 (apt-get install redis-server)"),
            };
            let mut r = Redis { child, port, _dir: dir };
            if r.wait_ready() {
                return r;
            }
        }
        panic!("redis-server did not start");
    }

    /// Waits until this process (not another one that took the port)
    /// answers on the port.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            // A connection refused or reset while the server starts: try again.
            if let Some(mut c) = Raw::try_connect(self.port) {
                let info = c.cmd(&["INFO", "server"]);
                return info.contains(&format!("process_id:{}\r\n", self.child.id()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A raw socket for exact protocol checks.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw client connection that reads whole RESP replies as bytes.
pub struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// A raw connection to a server on `port`, if it accepts one.
    pub fn try_connect(port: u16) -> Option<Raw> {
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        Some(Raw { s, buf: Vec::new() })
    }

    /// A raw connection to a server on `port`.
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP array of bulk strings.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.send(&req);
    }

    /// Reads exactly one reply and returns its encoded bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read reply");
            assert!(n > 0, "connection closed; got so far: {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server closes the connection (up to the read
    /// timeout); returns what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut got = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 65536];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
                Err(e) => panic!("read until closed: {e}"),
            }
        }
    }

    /// Sends a command and returns its reply as text.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send_cmd(&a);
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }

    /// INFO's `used_memory`.
    pub fn used_memory(&mut self) -> u64 {
        self.memory_field("used_memory")
    }

    /// INFO's `used_memory_peak`.
    pub fn used_memory_peak(&mut self) -> u64 {
        self.memory_field("used_memory_peak")
    }

    fn memory_field(&mut self, name: &str) -> u64 {
        let text = self.cmd(&["INFO", "memory"]);
        let at = text.find(&format!("\n{name}:")).unwrap_or_else(|| panic!("{name}")) + name.len() + 2;
        text[at..].split('\r').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} is a number"))
    }

    /// Waits (up to 10 s) for `used_memory` to fall below `limit`; fails
    /// with `what(used)` if it does not.
    pub fn wait_used_below(&mut self, limit: u64, what: impl Fn(u64) -> String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let used = self.used_memory();
            if used < limit {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{}", what(used));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends each of `cases` here and to `other` (a redis-server) and
    /// asserts the two replies are the same bytes.
    pub fn same_replies(&mut self, other: &mut Raw, cases: &[&[&str]]) {
        for cmd in cases {
            assert_eq!(self.cmd(cmd), other.cmd(cmd), "{cmd:?}");
        }
    }

    /// Waits (bounded) until INFO reports `n` blocked clients: a client
    /// counts once its wait is registered on every key's shard, and stops
    /// counting when it is served, times out or is found gone.
    pub fn wait_blocked(&mut self, n: usize) {
        let want = format!("blocked_clients:{n}\r\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cmd(&["INFO", "clients"]).contains(&want) {
            assert!(Instant::now() < deadline, "never saw {want}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// True once the server has closed the connection (reads EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0) | Err(_))
    }
}

/// Length of the first complete RESP value in `b`, if complete.
pub fn reply_len(b: &[u8]) -> Option<usize> {
    let eol = b.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&b[1..eol]).ok()?;
    let after = eol + 2;
    match b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = line.parse().ok()?;
            let items = if matches!(b[0], b'%' | b'|') { n * 2 } else { n };
            let mut pos = after;
            for _ in 0..items.max(0) {
                pos += reply_len(&b[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// The cluster hash slot of `key` (CRC16/XMODEM of its hash tag, mod
/// 16384), as the server computes it: with `--shards n` a key lives on shard
/// `key_slot(key) % n`. Lets a test check that its keys really are spread
/// over shards.
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in tag {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc & 16383
}
