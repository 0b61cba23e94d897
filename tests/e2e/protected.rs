//! Protected mode: with no password set, a client from outside the loopback
//! interface gets Redis's `-DENIED` text and is disconnected, the same bytes
//! redis-server sends; loopback clients, a password, or `protected-mode no`
//! let clients in.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use damselfly_tests::{Redis, Server};

/// An address of this machine outside the loopback interface (the one its
/// default route leaves from). The test needs one: without it, it fails.
fn outside_ip() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    // No packet is sent: connecting a UDP socket only picks the route.
    probe.connect("192.0.2.254:9").expect("a route to a non-loopback network (this test needs a network interface)");
    let ip = probe.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback(), "no non-loopback address on this machine");
    ip
}

/// Connects from outside the loopback interface, sends PING and reads
/// everything until the server closes or stops answering.
fn ping_from_outside(ip: IpAddr, port: u16) -> Vec<u8> {
    let mut s = TcpStream::connect((ip, port)).expect("connect from outside the loopback interface");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.write_all(b"PING\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(b"\r\n") && !got.starts_with(b"-DENIED") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn outside_clients_are_denied_without_a_password() {
    let ip = outside_ip();
    let ours = Server::start_with(&["--bind", "0.0.0.0"]);
    let redis = Redis::start_with(&["--bind", "0.0.0.0", "--protected-mode", "yes"]);
    let denied = ping_from_outside(ip, ours.port);
    assert!(denied.starts_with(b"-DENIED Redis is running in protected mode"), "{}", String::from_utf8_lossy(&denied));
    // Redis 7.0's text has a typo 7.2 fixed ("Setup a an"); we send 7.2's.
    let theirs = String::from_utf8_lossy(&ping_from_outside(ip, redis.port)).replace("4) Setup a an ", "4) Set up an ");
    assert_eq!(String::from_utf8_lossy(&denied), theirs);
    // The loopback interface is served; the refusal was counted.
    let mut c = ours.raw();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert!(c.cmd(&["INFO", "stats"]).contains("rejected_connections:1\r\n"));
    assert_eq!(c.cmd(&["CONFIG", "GET", "protected-mode"]), "*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "protected-mode", "maybe"]),
        "-ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'\r\n"
    );
    // A password lets outside clients in (to authenticate).
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]), "+OK\r\n");
    assert_eq!(ping_from_outside(ip, ours.port), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
    assert!(ping_from_outside(ip, ours.port).starts_with(b"-DENIED"));
    // Turning protected mode off lets them in too.
    assert_eq!(c.cmd(&["CONFIG", "SET", "protected-mode", "no"]), "+OK\r\n");
    assert_eq!(ping_from_outside(ip, ours.port), b"+PONG\r\n");
}

#[test]
fn protected_mode_can_be_turned_off_at_start() {
    let ip = outside_ip();
    let ours = Server::start_with(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    assert_eq!(ping_from_outside(ip, ours.port), b"+PONG\r\n");
    assert_eq!(ours.raw().cmd(&["CONFIG", "GET", "protected-mode"]), "*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n");
}
