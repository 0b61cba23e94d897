//! TLS test helpers: throw-away certificates made with the `openssl`
//! command-line tool (a test that needs them fails, never skips, when the
//! tool is missing), and redis-cli runs over TLS.

use std::process::{Command, Output};

use crate::cluster::TempDir;

/// A CA, a server certificate it signed (for `localhost` and 127.0.0.1,
/// usable as a client certificate too, as nodes of a cluster use it), a
/// client certificate it signed, and a client certificate of another CA.
pub struct Certs {
    pub dir: TempDir,
}

impl Certs {
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.path())
    }
    pub fn ca(&self) -> String {
        self.path("ca.crt")
    }
    pub fn server_cert(&self) -> String {
        self.path("server.crt")
    }
    pub fn server_key(&self) -> String {
        self.path("server.key")
    }
    pub fn client_cert(&self) -> String {
        self.path("client.crt")
    }
    pub fn client_key(&self) -> String {
        self.path("client.key")
    }
    /// A certificate signed by another CA.
    pub fn rogue_cert(&self) -> String {
        self.path("rogue.crt")
    }
    pub fn rogue_key(&self) -> String {
        self.path("rogue.key")
    }

    /// The server arguments for a TLS port with these files.
    pub fn server_args(&self, tls_port: u16) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.server_cert(),
            "--tls-key-file".into(),
            self.server_key(),
            "--tls-ca-cert-file".into(),
            self.ca(),
        ]
    }
}

fn openssl(dir: &str, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap_or_else(|e| {
        panic!("the TLS tests need the openssl command-line tool (apt-get install openssl): {e}");
    });
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Makes a CA and the certificates it signs (P-256 keys: quick to make).
pub fn make() -> Certs {
    let dir = TempDir::new("tls");
    let d = dir.path().to_string();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for ca in ["ca", "rogue-ca"] {
        let mut a = vec!["req", "-x509"];
        a.extend_from_slice(&ec);
        let (key, crt, subj) = (format!("{ca}.key"), format!("{ca}.crt"), format!("/CN=damselfly test {ca}"));
        a.extend_from_slice(&["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        openssl(&d, &a);
    }
    std::fs::write(
        format!("{d}/ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write ext");
    for (name, ca) in [("server", "ca"), ("client", "ca"), ("rogue", "rogue-ca")] {
        let (key, csr, crt, subj) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("/CN={name}"));
        let mut a = vec!["req"];
        a.extend_from_slice(&ec);
        a.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(&d, &a);
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        openssl(
            &d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
    }
    Certs { dir }
}

/// Runs redis-cli over TLS against `port` (trusting the test CA), with the
/// given client certificate and key, if any.
pub fn cli(certs: &Certs, port: u16, client: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls", "--cacert", &certs.ca()]);
    if let Some((cert, key)) = client {
        cmd.args(["--cert", cert, "--key", key]);
    }
    cmd.args(args).output().expect("redis-cli (redis-tools) is needed")
}

/// redis-cli over TLS with the CA's client certificate: its output.
pub fn cli_ok(certs: &Certs, port: u16, args: &[&str]) -> String {
    let out = cli(certs, port, Some((&certs.client_cert(), &certs.client_key())), args);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// What a test client offers: its certificate, protocol versions, suites.
#[derive(Clone, Copy, Default)]
pub struct Offer<'a> {
    /// Client certificate and key files.
    pub cert: Option<(&'a str, &'a str)>,
    /// Only TLS 1.2 (else 1.2 and 1.3).
    pub tls12_only: bool,
    /// Only TLS 1.3.
    pub tls13_only: bool,
}

/// A TLS client connection that reads whole RESP replies, as `crate::Raw`
/// does over plain TCP.
pub struct TlsRaw {
    s: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsRaw {
    /// Connects and completes the handshake and a first round trip (a
    /// server that refuses the client's certificate says so only after a
    /// TLS 1.3 handshake, on the first read): `Err` when refused.
    pub fn connect(certs: &Certs, port: u16, offer: Offer) -> std::io::Result<TlsRaw> {
        Self::connect_at(certs, std::net::Ipv4Addr::LOCALHOST.into(), port, offer)
    }

    /// `connect` to another address of this machine.
    pub fn connect_at(certs: &Certs, ip: std::net::IpAddr, port: u16, offer: Offer) -> std::io::Result<TlsRaw> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(certs.ca()).expect("ca") {
            roots.add(c.expect("ca cert")).expect("add ca");
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if offer.tls12_only {
            &[&rustls::version::TLS12]
        } else if offer.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let cfg = match offer.cert {
            Some((cert, key)) => {
                let chain: Vec<_> = CertificateDer::pem_file_iter(cert).expect("cert").map(|c| c.expect("cert")).collect();
                b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).expect("key")).expect("client auth")
            }
            None => b.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").expect("name"))
            .map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect((ip, port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = TlsRaw { s: rustls::StreamOwned::new(conn, tcp), buf: Vec::new() };
        c.s.write_all(b"PING\r\n")?;
        c.s.flush()?;
        match c.try_read_reply()? {
            r if r == b"+PONG\r\n" => Ok(c),
            r => Err(std::io::Error::other(format!("unexpected reply {:?}", String::from_utf8_lossy(&r)))),
        }
    }

    /// The protocol version and suite agreed on.
    pub fn negotiated(&self) -> (rustls::ProtocolVersion, rustls::CipherSuite) {
        let c = &self.s.conn;
        (c.protocol_version().expect("version"), c.negotiated_cipher_suite().expect("suite").suite())
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
        self.s.flush().expect("flush");
    }

    fn try_read_reply(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(n) = crate::reply_len(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn read_reply(&mut self) -> Vec<u8> {
        self.try_read_reply().expect("read reply")
    }

    /// Sends a command (RESP array) and returns its reply as text.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.send(&req);
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }
}
