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
