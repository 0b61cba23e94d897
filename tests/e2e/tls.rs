//! TLS: the client port (`tls-port`) next to the plain one, client
//! certificates as `tls-auth-clients` asks, the `tls-*` parameters, TLS
//! clients under the same limits and counts as plain ones, a busy script,
//! and a cluster whose gRPC bus runs mutual TLS (`tls-cluster yes`).
//! Certificates are made by each test with the openssl tool; redis-cli
//! 7.0 (built with TLS) and a rustls client talk to the server.

use std::process::Command;
use std::time::{Duration, Instant};

use damselfly_tests::cluster::{admin, slot_owner_port, wait_until, Cluster, RawAt};
use damselfly_tests::tls::{self, Certs, Offer, TlsRaw};
use damselfly_tests::{free_port, key_slot, Redis, Server};
use tokio_rustls::rustls::{CipherSuite, ProtocolVersion};

/// A server with a plain port and a TLS port (and `extra` arguments).
fn server(certs: &Certs, extra: &[&str]) -> (Server, u16) {
    for _ in 0..5 {
        let tls_port = free_port();
        let mut args: Vec<String> = certs.server_args(tls_port);
        args.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let s = Server::start_with(&a);
        if wait_until(5, || std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()) {
            return (s, tls_port);
        }
    }
    panic!("no server with a TLS port");
}

fn with_client(certs: &Certs) -> Offer<'static> {
    let (c, k) = (certs.client_cert(), certs.client_key());
    Offer { cert: Some((Box::leak(c.into_boxed_str()), Box::leak(k.into_boxed_str()))), ..Default::default() }
}

fn rogue(certs: &Certs) -> Offer<'static> {
    let (c, k) = (certs.rogue_cert(), certs.rogue_key());
    Offer { cert: Some((Box::leak(c.into_boxed_str()), Box::leak(k.into_boxed_str()))), ..Default::default() }
}

#[test]
fn redis_cli_runs_commands_over_tls_next_to_the_plain_port() {
    let certs = tls::make();
    let (s, tls_port) = server(&certs, &[]);
    for (args, want) in [
        (vec!["SET", "k", "over-tls"], "OK"),
        (vec!["GET", "k"], "over-tls"),
        (vec!["RPUSH", "l", "a", "b", "c"], "3"),
        (vec!["LRANGE", "l", "0", "-1"], "a\nb\nc"),
        (vec!["CONFIG", "GET", "tls-port"], &*format!("tls-port\n{tls_port}")),
    ] {
        assert_eq!(tls::cli_ok(&certs, tls_port, &args).trim(), want, "{args:?}");
    }
    // The plain port serves the same data.
    let mut plain = s.raw();
    assert_eq!(plain.cmd(&["GET", "k"]), "$8\r\nover-tls\r\n");
    // A TLS client shows in CLIENT LIST (at the TLS port) and is counted.
    let mut c = TlsRaw::connect(&certs, tls_port, with_client(&certs)).expect("TLS client");
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "tls-one"]), "+OK\r\n");
    let list = plain.cmd(&["CLIENT", "LIST"]);
    let line = list.lines().find(|l| l.contains("name=tls-one")).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains(&format!("laddr=127.0.0.1:{tls_port}")), "{line}");
    assert!(plain.cmd(&["INFO", "clients"]).contains("connected_clients:2\r\n"));
    // Pipelined commands and a large value go through the TLS stream.
    let big = "x".repeat(300_000);
    assert_eq!(c.cmd(&["SET", "big", &big]), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "big"]), ":300000\r\n");
    c.send(&b"*1\r\n$4\r\nPING\r\n".repeat(500));
    for _ in 0..500 {
        assert_eq!(c.read_reply(), b"+PONG\r\n");
    }
    drop(c);
    assert!(wait_until(10, || plain.cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n")));
}

#[test]
fn client_certificates_as_tls_auth_clients_asks() {
    let certs = tls::make();
    let none = Offer::default();
    for (mode, no_cert, ca_cert, other_ca) in [("yes", false, true, false), ("optional", true, true, false), ("no", true, true, true)] {
        let (s, port) = server(&certs, &["--tls-auth-clients", mode]);
        assert_eq!(TlsRaw::connect(&certs, port, none).is_ok(), no_cert, "{mode}: without a certificate");
        assert_eq!(TlsRaw::connect(&certs, port, with_client(&certs)).is_ok(), ca_cert, "{mode}: the CA's certificate");
        assert_eq!(TlsRaw::connect(&certs, port, rogue(&certs)).is_ok(), other_ca, "{mode}: another CA's certificate");
        // redis-cli the same way.
        let out = tls::cli(&certs, port, None, &["PING"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim() == "PONG", no_cert, "{mode}: redis-cli without a certificate");
        // Refused handshakes are not clients.
        assert!(s.raw().cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n"));
    }
    // CONFIG SET applies to the next connections.
    let (s, port) = server(&certs, &[]);
    assert!(TlsRaw::connect(&certs, port, none).is_err());
    assert_eq!(s.raw().cmd(&["CONFIG", "SET", "tls-auth-clients", "no"]), "+OK\r\n");
    assert!(TlsRaw::connect(&certs, port, none).is_ok());
}

/// Redis 7.0 refuses a client without a certificate the same way.
#[test]
fn redis_refuses_a_client_without_a_certificate_too() {
    let certs = tls::make();
    let tls_port = free_port();
    let args = certs.server_args(tls_port);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let _r = Redis::start_with(&a);
    assert!(wait_until(5, || std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()));
    assert!(TlsRaw::connect(&certs, tls_port, Offer::default()).is_err());
    assert!(TlsRaw::connect(&certs, tls_port, with_client(&certs)).is_ok());
    assert!(TlsRaw::connect(&certs, tls_port, rogue(&certs)).is_err());
}

#[test]
fn port_0_leaves_only_tls() {
    let certs = tls::make();
    let tls_port = free_port();
    let mut args = certs.server_args(tls_port);
    let dir = damselfly_tests::cluster::TempDir::new("tlsonly");
    args.extend(["--port", "0", "--bind", "127.0.0.1", "--dir", dir.path(), "--loglevel", "warn"].map(String::from));
    let mut child = Command::new(damselfly_tests::binary()).args(&args).spawn().expect("spawn");
    let up = wait_until(10, || TlsRaw::connect(&certs, tls_port, with_client(&certs)).is_ok());
    let port = TlsRaw::connect(&certs, tls_port, with_client(&certs)).map(|mut c| c.cmd(&["CONFIG", "GET", "port"]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the TLS port did not come up");
    assert_eq!(port.expect("client"), "*2\r\n$4\r\nport\r\n$1\r\n0\r\n");
    // Neither port: refused at start.
    let out = Command::new(damselfly_tests::binary()).args(["--port", "0", "--dir", dir.path()]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Configured to not listen anywhere"), "{out:?}");
}

#[test]
fn tls_parameters_in_config_get_and_set() {
    let certs = tls::make();
    let (s, port) = server(&certs, &[]);
    let mut a = s.raw();
    let get = |a: &mut damselfly_tests::Raw, name: &str| a.cmd(&["CONFIG", "GET", name]);
    assert_eq!(get(&mut a, "tls-auth-clients"), "*2\r\n$16\r\ntls-auth-clients\r\n$3\r\nyes\r\n");
    assert_eq!(get(&mut a, "tls-protocols"), "*2\r\n$13\r\ntls-protocols\r\n$0\r\n\r\n");
    let cert = certs.server_cert();
    assert_eq!(get(&mut a, "tls-cert-file"), format!("*2\r\n$13\r\ntls-cert-file\r\n${}\r\n{cert}\r\n", cert.len()));
    assert_eq!(get(&mut a, "tls-cluster"), "*2\r\n$11\r\ntls-cluster\r\n$2\r\nno\r\n");
    // Refused: what rustls cannot honour, start-up-only parameters, files
    // that do not make a configuration (the old one stays).
    for (name, value, why) in [
        ("tls-protocols", "TLSv1.1", "TLSv1.1 is not supported here"),
        ("tls-ciphers", "HIGH:!aNULL", "'HIGH' is not supported here"),
        ("tls-ciphersuites", "TLS_AES_128_CCM_SHA256", "'TLS_AES_128_CCM_SHA256' is not supported here"),
        ("tls-auth-clients", "maybe", "argument(s) must be one of the following: no, yes, optional"),
        ("tls-port", "7000", "can't set immutable config 'tls-port'"),
        ("tls-cluster", "yes", "can't set immutable config 'tls-cluster'"),
        ("tls-cert-file", "/nonexistent.pem", "Unable to update TLS configuration: cannot read certificates from /nonexistent.pem"),
        ("tls-key-file", &certs.rogue_key(), "Unable to update TLS configuration"),
    ] {
        let r = a.cmd(&["CONFIG", "SET", name, value]);
        assert!(r.starts_with(&format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")), "{name} {value}: {r}");
    }
    assert_eq!(get(&mut a, "tls-cert-file"), format!("*2\r\n$13\r\ntls-cert-file\r\n${}\r\n{cert}\r\n", cert.len()));
    assert!(TlsRaw::connect(&certs, port, with_client(&certs)).is_ok());
    // A new certificate and its key in one CONFIG SET: the next clients
    // get it (the client certificate names localhost too).
    let (cc, ck) = (certs.client_cert(), certs.client_key());
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-cert-file", &cc, "tls-key-file", &ck]), "+OK\r\n");
    assert!(TlsRaw::connect(&certs, port, with_client(&certs)).is_ok());
    assert_eq!(get(&mut a, "tls-key-file"), format!("*2\r\n$12\r\ntls-key-file\r\n${}\r\n{ck}\r\n", ck.len()));
    // The CA from a directory instead of a file.
    let ca_dir = damselfly_tests::cluster::TempDir::new("cadir");
    std::fs::copy(certs.ca(), format!("{}/ca.pem", ca_dir.path())).expect("copy ca");
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-ca-cert-file", "", "tls-ca-cert-dir", ca_dir.path()]), "+OK\r\n");
    assert!(TlsRaw::connect(&certs, port, with_client(&certs)).is_ok());
    assert!(TlsRaw::connect(&certs, port, rogue(&certs)).is_err());
    // The same parameters from a config file.
    let dir = damselfly_tests::cluster::TempDir::new("tlsconf");
    let conf = format!("{}/d.conf", dir.path());
    let tls_port = free_port();
    std::fs::write(
        &conf,
        format!(
            "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients optional\n",
            certs.server_cert(),
            certs.server_key(),
            certs.ca()
        ),
    )
    .expect("write conf");
    let s2 = Server::start_with(&[&conf]);
    assert!(wait_until(5, || TlsRaw::connect(&certs, tls_port, Offer::default()).is_ok()));
    assert_eq!(s2.raw().cmd(&["CONFIG", "GET", "tls-auth-clients"]), "*2\r\n$16\r\ntls-auth-clients\r\n$8\r\noptional\r\n");
}

#[test]
fn protocols_and_suites_follow_the_parameters() {
    let certs = tls::make();
    let only12 = Offer { tls12_only: true, ..with_client(&certs) };
    let only13 = Offer { tls13_only: true, ..with_client(&certs) };
    let (s, port) = server(&certs, &[]);
    let negotiated = |o| TlsRaw::connect(&certs, port, o).map(|c| c.negotiated());
    assert_eq!(negotiated(only12).expect("1.2").0, ProtocolVersion::TLSv1_2);
    assert_eq!(negotiated(with_client(&certs)).expect("1.3").0, ProtocolVersion::TLSv1_3);
    let mut a = s.raw();
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-protocols", "TLSv1.3"]), "+OK\r\n");
    assert!(negotiated(only12).is_err(), "TLS 1.2 is off");
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-protocols", "TLSv1.2"]), "+OK\r\n");
    assert!(negotiated(only13).is_err(), "TLS 1.3 is off");
    // A call refused past its TLS parameters undoes them too.
    let reply = a.cmd(&["CONFIG", "SET", "tls-protocols", "TLSv1.3", "maxmemory", "lots"]);
    assert!(reply.starts_with("-ERR CONFIG SET failed (possibly related to argument 'maxmemory')"), "{reply}");
    assert_eq!(a.cmd(&["CONFIG", "GET", "tls-protocols"]), "*2\r\n$13\r\ntls-protocols\r\n$7\r\nTLSv1.2\r\n");
    assert!(negotiated(only13).is_err(), "TLS 1.3 is still off");
    // P-256 keys: the ECDSA suites.
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"]), "+OK\r\n");
    assert_eq!(negotiated(only12).expect("1.2"), (ProtocolVersion::TLSv1_2, CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256));
    // Only suites the key cannot use: nothing to agree on.
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"]), "+OK\r\n");
    assert!(negotiated(only12).is_err());
    assert_eq!(a.cmd(&["CONFIG", "SET", "tls-protocols", "", "tls-ciphersuites", "TLS_AES_128_GCM_SHA256"]), "+OK\r\n");
    assert_eq!(negotiated(only13).expect("1.3"), (ProtocolVersion::TLSv1_3, CipherSuite::TLS13_AES_128_GCM_SHA256));
}

#[test]
fn tls_clients_are_under_maxclients_and_output_limits() {
    let certs = tls::make();
    let (s, port) = server(&certs, &[]);
    let mut a = s.raw();
    // The probe that found the TLS port open may not be gone yet.
    assert!(wait_until(10, || a.cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n")));
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "2"]), "+OK\r\n");
    let first = TlsRaw::connect(&certs, port, with_client(&certs)).expect("second client");
    // The third is told why, over TLS.
    let e = TlsRaw::connect(&certs, port, with_client(&certs)).err().expect("refused").to_string();
    assert!(e.contains("-ERR max number of clients reached"), "{e}");
    assert!(a.cmd(&["INFO", "stats"]).contains("rejected_connections:1\r\n"));
    drop(first);
    assert!(wait_until(10, || a.cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n")));
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "100"]), "+OK\r\n");
    // A TLS subscriber that does not read is closed past its limit.
    assert_eq!(a.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 0 0"]), "+OK\r\n");
    let mut sub = TlsRaw::connect(&certs, port, with_client(&certs)).expect("subscriber");
    assert_eq!(sub.cmd(&["SUBSCRIBE", "ch"]), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let payload = "p".repeat(64 * 1024);
    assert!(
        wait_until(20, || {
            a.cmd(&["PUBLISH", "ch", &payload]);
            a.cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n")
        }),
        "the subscriber was not disconnected"
    );
}

/// An address of this machine outside the loopback interface (the test
/// needs one: without it, it fails).
fn outside_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    // No packet is sent: connecting a UDP socket only picks the route.
    probe.connect("192.0.2.254:9").expect("a route to a non-loopback network (this test needs a network interface)");
    let ip = probe.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback(), "no non-loopback address on this machine");
    ip
}

#[test]
fn protected_mode_refuses_tls_clients_from_outside_over_tls() {
    let certs = tls::make();
    let ip = outside_ip();
    let (s, port) = server(&certs, &["--bind", "0.0.0.0"]);
    let e = TlsRaw::connect_at(&certs, ip, port, with_client(&certs)).err().expect("refused").to_string();
    assert!(e.contains("-DENIED Redis is running in protected mode"), "{e}");
    assert!(TlsRaw::connect(&certs, port, with_client(&certs)).is_ok(), "loopback is let in");
    assert_eq!(s.raw().cmd(&["CONFIG", "SET", "protected-mode", "no"]), "+OK\r\n");
    assert!(TlsRaw::connect_at(&certs, ip, port, with_client(&certs)).is_ok());
}

#[test]
fn a_tls_client_waits_for_a_busy_script() {
    let certs = tls::make();
    let (s, port) = server(&certs, &["--shards", "1"]);
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]), "+OK\r\n");
    let mut t = TlsRaw::connect(&certs, port, with_client(&certs)).expect("TLS client");
    let mut runner = s.raw();
    runner.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
    // The plain client is answered by the script's hook.
    let start = Instant::now();
    while admin.cmd(&["PING"]) != "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n" {
        assert!(start.elapsed() < Duration::from_secs(20), "no -BUSY");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The TLS client's command is in the server's socket before the kill;
    // it is answered after the script, as an ordinary command.
    t.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n");
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let killed = String::from_utf8_lossy(&runner.read_reply()).into_owned();
    assert!(killed.contains("Script killed by user with SCRIPT KILL"), "{killed}");
    assert_eq!(t.read_reply(), b"$5\r\nafter\r\n");
    assert_eq!(t.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_cluster_over_mutual_tls() {
    let certs = tls::make();
    let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
    let node_args = ["--tls-cluster", "yes", "--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca];
    let (cc, ck) = (certs.client_cert(), certs.client_key());
    let admin_tls = ["--tls", "--tls-cert", &cc, "--tls-key", &ck, "--tls-ca", &ca];
    let (c, _) = Cluster::start_full(3, &node_args, &admin_tls);
    let seed = c.ports[0];
    // It serves: a cluster client writes and reads across the nodes.
    let out = Command::new("redis-cli").args(["-c", "-p", &seed.to_string(), "SET", "tls-key", "v"]).output().expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    for &p in &c.ports {
        let out = Command::new("redis-cli").args(["-c", "-p", &p.to_string(), "GET", "tls-key"]).output().expect("redis-cli");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    }
    let mut args = admin_tls.to_vec();
    args.push("status");
    let (ok, out, err) = admin(seed, &args);
    assert!(ok, "{out}{err}");
    // A live move, keys included: the migration calls between the nodes
    // run over the TLS bus too.
    let slot = key_slot(b"tls-key");
    let from = slot_owner_port(seed, slot).expect("owner");
    let to = *c.ports.iter().find(|&&p| p != from).expect("another node");
    let (from_a, to_a, slot_s) = (format!("127.0.0.1:{from}"), format!("127.0.0.1:{to}"), slot.to_string());
    let mut args = admin_tls.to_vec();
    args.extend(["move-slots", "--from", &from_a, "--to", &to_a, "--slots", &slot_s]);
    let (ok, out, err) = admin(seed, &args);
    assert!(ok, "{out}{err}");
    assert!(wait_until(10, || slot_owner_port(from, slot) == Some(to)), "slot {slot} did not move");
    assert_eq!(Server::raw_at(to).cmd(&["GET", "tls-key"]), "$1\r\nv\r\n");
    // cluster-admin without TLS, or with another CA's certificate: refused.
    let (ok, out, err) = admin(seed, &["status"]);
    assert!(!ok, "plain cluster-admin: {out}");
    let (rc, rk) = (certs.rogue_cert(), certs.rogue_key());
    let (ok, out, err2) = admin(seed, &["--tls", "--tls-cert", &rc, "--tls-key", &rk, "--tls-ca", &ca, "status"]);
    assert!(!ok, "another CA's certificate: {out}");
    // The message depends on when the connection drops (during the
    // handshake, or right after it under TLS 1.3).
    for e in [err, err2] {
        assert!(e.starts_with("cluster-admin: "), "{e}");
    }
    // A plain gRPC client does not get an answer from the bus.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use damselfly_proto::admin::admin_client::AdminClient;
        let url = format!("http://127.0.0.1:{}", c.ports[1] + 10000);
        let ep = tonic::transport::Endpoint::from_shared(url).expect("url").timeout(Duration::from_secs(5));
        match ep.connect().await {
            Err(_) => {}
            Ok(ch) => {
                let s = AdminClient::new(ch).status(damselfly_proto::admin::StatusRequest {}).await.expect_err("refused");
                assert_ne!(s.code(), tonic::Code::Ok);
            }
        }
    });
}

/// The value of `key` on the server at `port` (its plain port), as RESP.
fn get_at(port: u16, key: &str) -> String {
    damselfly_tests::Raw::try_connect(port).map(|mut c| c.cmd(&["GET", key])).unwrap_or_default()
}

/// Writes `n` keys `prefix:i` = `i` to the server at `port`.
fn write_keys(port: u16, prefix: &str, n: usize) {
    let mut c = damselfly_tests::Raw::connect(port);
    for i in 0..n {
        assert_eq!(c.cmd(&["SET", &format!("{prefix}:{i}"), &i.to_string()]), "+OK\r\n");
    }
}

/// Whether the replica at `port` has every key of `write_keys(prefix, n)`.
fn has_keys(port: u16, prefix: &str, n: usize) -> bool {
    (0..n).all(|i| get_at(port, &format!("{prefix}:{i}")) == format!("${}\r\n{i}\r\n", i.to_string().len()))
}

/// `tls-replication yes`: a damselfly replica follows a damselfly primary
/// through its TLS port, presenting its certificate where
/// `tls-auth-clients yes` asks for one; redis-server 7.0 follows a
/// damselfly primary over TLS, and damselfly follows redis-server over TLS.
/// A replica whose certificate the primary's CA did not sign gets nothing.
#[test]
fn replication_links_run_over_tls() {
    let certs = tls::make();
    let (primary, p_tls) = server(&certs, &["--tls-auth-clients", "yes"]);
    write_keys(primary.port, "before", 50);
    let (ca, cert, key) = (certs.ca(), certs.client_cert(), certs.client_key());
    let tls_args = |cert: &str, key: &str| -> Vec<String> {
        ["--tls-replication", "yes", "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", &ca].map(String::from).to_vec()
    };
    let with = |base: Vec<String>, primary_port: u16| -> Vec<String> {
        let mut a = base;
        a.extend(["--replicaof".to_string(), "127.0.0.1".into(), primary_port.to_string()]);
        a
    };
    let args = with(tls_args(&cert, &key), p_tls);
    let replica = Server::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = with(tls_args(&cert, &key), p_tls);
    let redis_replica = Redis::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = with(tls_args(&certs.rogue_cert(), &certs.rogue_key()), p_tls);
    let rogue_replica = Server::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(wait_until(30, || has_keys(replica.port, "before", 50)), "the damselfly replica did not sync over TLS");
    assert!(wait_until(30, || has_keys(redis_replica.port, "before", 50)), "redis-server did not sync from damselfly over TLS");
    write_keys(primary.port, "after", 50);
    assert!(wait_until(30, || has_keys(replica.port, "after", 50)), "the stream did not reach the damselfly replica");
    assert!(wait_until(30, || has_keys(redis_replica.port, "after", 50)), "the stream did not reach redis-server");
    let info = damselfly_tests::Raw::connect(replica.port).cmd(&["INFO", "replication"]);
    assert!(info.contains("master_link_status:up"), "{info}");
    let info = damselfly_tests::Raw::connect(primary.port).cmd(&["INFO", "replication"]);
    assert!(info.contains("connected_slaves:2\r\n"), "{info}");
    // The rogue certificate is refused: that replica never gets a key.
    let rogue = damselfly_tests::Raw::connect(rogue_replica.port).cmd(&["INFO", "replication"]);
    assert!(rogue.contains("master_link_status:down"), "{rogue}");
    assert_eq!(get_at(rogue_replica.port, "before:1"), "$-1\r\n");

    // damselfly follows redis-server over TLS.
    let r_tls = free_port();
    let mut rargs = certs.server_args(r_tls);
    rargs.extend(["--tls-auth-clients".to_string(), "yes".into()]);
    let redis_primary = Redis::start_with(&rargs.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(wait_until(5, || std::net::TcpStream::connect(("127.0.0.1", r_tls)).is_ok()));
    write_keys(redis_primary.port, "r", 50);
    let args = with(tls_args(&cert, &key), r_tls);
    let follower = Server::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(wait_until(30, || has_keys(follower.port, "r", 50)), "damselfly did not sync from redis-server over TLS");
    write_keys(redis_primary.port, "r2", 20);
    assert!(wait_until(30, || has_keys(follower.port, "r2", 20)), "the stream from redis-server did not arrive");
}

/// With `--tls-cluster yes`, failure detection, a replica's registration
/// and the automatic failover run over the mutual-TLS bus: a killed
/// primary's replica takes its slots, with the keys WAIT confirmed.
#[test]
fn a_tls_cluster_fails_over_to_a_replica() {
    let certs = tls::make();
    let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
    let node_args = ["--tls-cluster", "yes", "--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca];
    let (cc, ck) = (certs.client_cert(), certs.client_key());
    let admin_tls = ["--tls", "--tls-cert", &cc, "--tls-key", &ck, "--tls-ca", &ca];
    let (mut c, _) = Cluster::start_full(3, &node_args, &admin_tls);
    let primary = c.ports[0];
    c.dirs.push(damselfly_tests::cluster::TempDir::new("tls-replica"));
    let mut rargs = vec!["--cluster", "--dir", c.dirs[3].path(), "--save", ""];
    rargs.extend(node_args);
    let replica = Server::start_with(&rargs);
    let (r_addr, p_addr) = (format!("127.0.0.1:{}", replica.port), format!("127.0.0.1:{primary}"));
    let mut args = admin_tls.to_vec();
    args.extend(["add-replica", &r_addr, "--of", &p_addr]);
    let (ok, out, err) = admin(primary, &args);
    assert!(ok, "{out}{err}");
    assert!(wait_until(20, || Server::raw_at(replica.port).cmd(&["ROLE"]).contains("connected")), "the replica did not sync");
    // A key of the primary's slots, confirmed by the replica.
    let k =
        (0..10_000).map(|i| format!("k{i}")).find(|k| slot_owner_port(primary, key_slot(k.as_bytes())) == Some(primary)).expect("a key");
    let mut p = Server::raw_at(primary);
    assert_eq!(p.cmd(&["SET", &k, "kept"]), "+OK\r\n");
    assert_eq!(p.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    c.nodes[0].take().expect("primary").signal("KILL");
    let slot = key_slot(k.as_bytes());
    let survivor = c.ports[1];
    assert!(wait_until(20, || slot_owner_port(survivor, slot) == Some(replica.port)), "the replica did not take the slots");
    // The promoted replica serves the slot once it has applied its own
    // promotion too, which may come a moment after the survivor's.
    let mut last = String::new();
    let served = wait_until(20, || {
        last = Server::raw_at(replica.port).cmd(&["GET", &k]);
        last != "-CLUSTERDOWN Hash slot not served\r\n"
    });
    assert!(served, "{last}");
    assert_eq!(last, "$4\r\nkept\r\n");
    assert_eq!(Server::raw_at(replica.port).cmd(&["SET", &k, "new"]), "+OK\r\n");
}

/// `repl-timeout` on a TLS link: a replica whose primary goes silent
/// (SIGSTOP) drops the link and makes it again once the primary runs.
#[test]
fn a_tls_replica_drops_the_link_to_a_silent_primary() {
    let certs = tls::make();
    let (primary, p_tls) = server(&certs, &["--tls-auth-clients", "yes", "--repl-ping-replica-period", "1"]);
    let (ca, cert, key) = (certs.ca(), certs.client_cert(), certs.client_key());
    let p = p_tls.to_string();
    let replica = Server::start_with(&[
        "--tls-replication",
        "yes",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--repl-timeout",
        "2",
        "--replicaof",
        "127.0.0.1",
        &p,
    ]);
    let link = |want: &str| damselfly_tests::Raw::connect(replica.port).cmd(&["INFO", "replication"]).contains(want);
    assert!(wait_until(30, || link("master_link_status:up")));
    primary.signal("STOP");
    assert!(wait_until(30, || link("master_link_status:down")), "the TLS link to a silent primary stayed up");
    primary.signal("CONT");
    assert!(wait_until(30, || link("master_link_status:up")));
    write_keys(primary.port, "after", 10);
    assert!(wait_until(30, || has_keys(replica.port, "after", 10)));
}
