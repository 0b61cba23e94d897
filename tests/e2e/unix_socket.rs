//! `unixsocket` and `unixsocketperm`: clients on the same machine reach the
//! node through a Unix domain socket as they reach redis-server's, with
//! redis-cli's `-s` and with a plain socket; CLIENT LIST shows them as
//! Redis does; maxclients counts them; the socket file is replaced at
//! start and removed at shutdown. Also: a config file's quoting is Redis's
//! (`logfile ''`, what the Redis test suite writes, is an empty value).

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use damselfly_tests::cluster::TempDir;
use damselfly_tests::{binary, wait_for, Server};

/// The node, killed however the test ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(sock: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-s").arg(sock).args(args).output().expect("redis-cli (scripts/test installs redis-tools)");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// One RESP request over a Unix socket; the first reply line back.
fn unix_cmd(s: &mut UnixStream, req: &[u8]) -> String {
    s.write_all(req).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[test]
fn clients_connect_through_the_unix_socket() {
    let dir = TempDir::new("unixsocket");
    let path = format!("{}/node.sock", dir.path());
    // A socket file left by an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let server = Server::start_with(&["--unixsocket", &path, "--unixsocketperm", "700", "--maxclients", "3"]);
    let meta = std::fs::metadata(&path).expect("the socket file exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);

    assert_eq!(cli(&path, &["SET", "k", "v"]), "OK");
    let mut tcp = server.raw();
    assert_eq!(tcp.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(tcp.cmd(&["CONFIG", "GET", "unixsocketperm"]), "*2\r\n$14\r\nunixsocketperm\r\n$3\r\n700\r\n");
    assert!(tcp.cmd(&["CONFIG", "SET", "unixsocketperm", "777"]).contains("can't set immutable config"));
    assert!(tcp.cmd(&["CONFIG", "SET", "unixsocket", "/tmp/x"]).contains("can't set immutable config"));

    // CLIENT LIST as redis-server shows a Unix client: the path, port 0,
    // flag U.
    let mut u = UnixStream::connect(&path).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let info = unix_cmd(&mut u, b"CLIENT INFO\r\n");
    let want = format!("addr={path}:0 laddr={path}:0 ");
    assert!(info.contains(&want), "{info}");
    assert!(info.contains(" flags=U "), "{info}");
    let tcp_info = tcp.cmd(&["CLIENT", "INFO"]);
    assert!(tcp_info.contains(" flags=N "), "{tcp_info}");
    // Pipelined requests, a blocking command woken from TCP.
    u.write_all(&b"PING\r\n".repeat(100)).unwrap();
    let mut got = Vec::new();
    while got.len() < 700 {
        let mut buf = [0u8; 4096];
        let n = u.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"+PONG\r\n".repeat(100));
    u.write_all(b"BLPOP q 0\r\n").unwrap();
    wait_for("the blocked client", || tcp.cmd(&["INFO", "clients"]).contains("blocked_clients:1").then_some(()));
    assert_eq!(tcp.cmd(&["RPUSH", "q", "x"]), ":1\r\n");
    let mut buf = [0u8; 64];
    let n = u.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");

    // maxclients counts Unix clients: 3 are connected (tcp, u, and this one).
    let mut third = UnixStream::connect(&path).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(unix_cmd(&mut third, b"PING\r\n"), "+PONG\r\n");
    let mut fourth = UnixStream::connect(&path).unwrap();
    fourth.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut refused = String::new();
    let _ = fourth.read_to_string(&mut refused);
    assert_eq!(refused, "-ERR max number of clients reached\r\n");
    drop(third);
    // CLIENT KILL by the Unix address.
    let killed = tcp.cmd(&["CLIENT", "KILL", "ADDR", &format!("{path}:0")]);
    assert_eq!(killed, ":1\r\n");
    let mut rest = Vec::new();
    assert_eq!(u.read_to_end(&mut rest).unwrap_or(0), 0);

    // SHUTDOWN removes the socket file.
    tcp.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    wait_for("the socket file to go", || (!std::path::Path::new(&path).exists()).then_some(()));
    drop(server);
}

#[test]
fn a_node_may_listen_on_the_unix_socket_only() {
    let dir = TempDir::new("unixonly");
    let path = format!("{}/only.sock", dir.path());
    let conf = format!("{}/redis.conf", dir.path());
    // What Redis's test suite writes: an empty log file name in single
    // quotes (standard output), a relative socket path under `dir`.
    std::fs::write(&conf, format!("port 0\nlogfile ''\ndir \"{}\"\nunixsocket only.sock\nsave \"\"\n", dir.path())).unwrap();
    let child = Command::new(binary())
        .arg(&conf)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Stopped(child);
    wait_for("the socket", || UnixStream::connect(&path).ok());
    assert_eq!(cli(&path, &["CONFIG", "GET", "port"]), "port\n0");
    assert_eq!(cli(&path, &["CONFIG", "GET", "logfile"]), "logfile");
    assert!(!std::path::Path::new(&format!("{}/''", dir.path())).exists(), "'' is an empty value, not a file name");
    cli(&path, &["SHUTDOWN", "NOSAVE"]);
    let status = child.0.wait().unwrap();
    assert!(status.success());
    let mut out = String::new();
    child.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("Ready to accept connections"), "{out}");
    assert!(!std::path::Path::new(&path).exists());
    // Without any port or socket the node refuses to start, as Redis does.
    let out = Command::new(binary()).args(["--port", "0", "--dir", dir.path()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Configured to not listen anywhere"));
}
