//! TLS parameters (`tls-*`, Redis 7's names and defaults) and the rustls
//! server configuration built from them: what connections to `tls-port`
//! are accepted with. Certificates and keys are PEM files. Changing a file
//! or a setting with CONFIG SET while TLS is on builds a new configuration
//! from the files on disk (Redis reloads them the same way): new
//! connections use it, open ones keep theirs; a configuration that cannot
//! be built is refused and the old one stays. `tls-port` and `tls-cluster`
//! are set at start-up. What rustls cannot do (TLS 1.0/1.1, OpenSSL cipher
//! rules such as `HIGH:!aNULL`) is refused, never accepted and ignored.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, CipherSuite, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::ConfigError;

/// `tls-auth-clients`: whether clients must present a certificate the CA
/// signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthClients {
    #[default]
    Yes,
    No,
    Optional,
}

impl AuthClients {
    fn name(self) -> &'static str {
        match self {
            AuthClients::Yes => "yes",
            AuthClients::No => "no",
            AuthClients::Optional => "optional",
        }
    }
}

/// The `tls-*` parameters as set.
#[derive(Clone, Debug, Default)]
pub struct TlsParams {
    pub port: u16,
    pub cert_file: String,
    pub key_file: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: AuthClients,
    /// "" (TLS 1.2 and 1.3) or a list of `TLSv1.2`, `TLSv1.3`.
    pub protocols: String,
    /// TLS 1.3 suites, OpenSSL's names, `:`-separated; "": rustls's.
    pub ciphersuites: String,
    /// TLS 1.2 suites, OpenSSL's names, `:`-separated; "": rustls's.
    pub ciphers: String,
    pub prefer_server_ciphers: bool,
    /// The cluster bus uses mutual TLS with the same files.
    pub cluster: bool,
    /// A replica's link to its primary is TLS (`tls-replication`), and a
    /// primary's replicas are expected on its TLS port.
    pub replication: bool,
}

/// The TLS parameters and, once TLS is on, the configuration new client
/// connections are accepted with.
#[derive(Default)]
pub struct Tls {
    params: Mutex<TlsParams>,
    server: RwLock<Option<Arc<ServerConfig>>>,
}

/// OpenSSL's names of the TLS 1.3 suites rustls (ring) implements.
const SUITES_13: &[(&str, CipherSuite)] = &[
    ("TLS_AES_128_GCM_SHA256", CipherSuite::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", CipherSuite::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
];

/// OpenSSL's names of the TLS 1.2 suites rustls (ring) implements.
const SUITES_12: &[(&str, CipherSuite)] = &[
    ("ECDHE-ECDSA-AES128-GCM-SHA256", CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ("ECDHE-RSA-AES128-GCM-SHA256", CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-RSA-AES256-GCM-SHA384", CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-RSA-CHACHA20-POLY1305", CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
];

/// The suites a list names, in its order; an unknown name is an error
/// that lists the known ones.
fn suites(list: &str, known: &[(&str, CipherSuite)], param: &str) -> Result<Vec<CipherSuite>, String> {
    list.split([':', ',', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            known.iter().find(|(n, _)| n.eq_ignore_ascii_case(w)).map(|(_, s)| *s).ok_or_else(|| {
                let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                format!("'{w}' is not supported here ({param} takes a list of these suites: {})", names.join(":"))
            })
        })
        .collect()
}

/// The protocol versions `tls-protocols` allows.
fn versions(protocols: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let mut v = Vec::new();
    for w in protocols.split_whitespace() {
        let version = match w.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => return Err(format!("{w} is not supported here (TLS 1.2 and 1.3 only)")),
            _ => return Err(format!("unknown TLS protocol '{w}' (TLSv1.2, TLSv1.3)")),
        };
        if !v.contains(&version) {
            v.push(version);
        }
    }
    if v.is_empty() {
        v = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    }
    Ok(v)
}

/// The ring provider restricted to (and ordered by) the configured suites.
/// ring rather than aws-lc-rs (rustls's default): no C library build of
/// its own, and tonic's bus TLS uses ring too; it offers no post-quantum
/// key exchange, which rustls marks by deprecating its constructor.
#[allow(deprecated)]
fn provider(p: &TlsParams) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    let by_list = |list: &str, known, param, tls13: bool, all: &[rustls::SupportedCipherSuite]| -> Result<Vec<_>, String> {
        let of_version = |s: &&rustls::SupportedCipherSuite| matches!(s, rustls::SupportedCipherSuite::Tls13(_)) == tls13;
        if list.trim().is_empty() {
            return Ok(all.iter().filter(of_version).cloned().collect());
        }
        let wanted = suites(list, known, param)?;
        Ok(wanted.iter().filter_map(|w| all.iter().find(|s| s.suite() == *w).cloned()).collect())
    };
    let all = provider.cipher_suites.clone();
    let mut chosen = by_list(&p.ciphersuites, SUITES_13, "tls-ciphersuites", true, &all)?;
    chosen.extend(by_list(&p.ciphers, SUITES_12, "tls-ciphers", false, &all)?);
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// The certificates of the CA file and of every file of the CA directory
/// that holds some (Redis's `tls-ca-cert-dir` is OpenSSL's hashed
/// directory: `<hash>.0` files, one certificate each).
pub fn ca_certificates(p: &TlsParams) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    if !p.ca_cert_file.is_empty() {
        certs.extend(read_certs(Path::new(&p.ca_cert_file))?);
    }
    if !p.ca_cert_dir.is_empty() {
        let dir = std::fs::read_dir(&p.ca_cert_dir).map_err(|e| format!("tls-ca-cert-dir {}: {e}", p.ca_cert_dir))?;
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                certs.extend(read_certs(&path).unwrap_or_default());
            }
        }
    }
    Ok(certs)
}

/// The CA certificates as PEM text (what tonic takes for the cluster bus).
pub fn ca_pem(p: &TlsParams) -> Result<Vec<u8>, String> {
    let mut pem = Vec::new();
    let mut add = |path: &Path| -> Result<(), String> {
        read_certs(path)?;
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        pem.extend_from_slice(&text);
        pem.push(b'\n');
        Ok(())
    };
    if !p.ca_cert_file.is_empty() {
        add(Path::new(&p.ca_cert_file))?;
    }
    if !p.ca_cert_dir.is_empty() {
        let dir = std::fs::read_dir(&p.ca_cert_dir).map_err(|e| format!("tls-ca-cert-dir {}: {e}", p.ca_cert_dir))?;
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                // Files without a certificate are not the CA's.
                let _ = add(&path);
            }
        }
    }
    if pem.is_empty() {
        return Err("tls-cluster needs tls-ca-cert-file or tls-ca-cert-dir".into());
    }
    Ok(pem)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

/// The server configuration the parameters describe, from the files.
pub fn build(p: &TlsParams) -> Result<ServerConfig, String> {
    if p.cert_file.is_empty() || p.key_file.is_empty() {
        return Err("TLS needs tls-cert-file and tls-key-file".into());
    }
    let versions = versions(&p.protocols)?;
    let provider = Arc::new(provider(p)?);
    let certs = read_certs(Path::new(&p.cert_file))?;
    let key = PrivateKeyDer::from_pem_file(&p.key_file).map_err(|e| format!("cannot read the private key in {}: {e}", p.key_file))?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions).map_err(|e| e.to_string())?;
    let builder = if p.auth_clients == AuthClients::No && !p.cluster {
        builder.with_no_client_auth()
    } else {
        let ca = ca_certificates(p)?;
        if ca.is_empty() {
            return Err("either tls-ca-cert-file or tls-ca-cert-dir must be given when tls-auth-clients or tls-cluster is enabled".into());
        }
        let mut roots = RootCertStore::empty();
        for c in ca {
            roots.add(c).map_err(|e| format!("bad CA certificate: {e}"))?;
        }
        match p.auth_clients {
            AuthClients::No => builder.with_no_client_auth(),
            AuthClients::Yes => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(|e| e.to_string())?,
            ),
            AuthClients::Optional => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
        }
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| format!("tls-cert-file and tls-key-file: {e}"))?;
    cfg.ignore_client_order = p.prefer_server_ciphers;
    Ok(cfg)
}

/// The client configuration a replica's TLS link uses: the primary's
/// certificate must be signed by the CA (`tls-ca-cert-file` / `-dir`) and
/// name the host it is reached by (rustls checks the name, where Redis's
/// OpenSSL setup checks only the chain); this node's certificate and key,
/// when set, are presented for `tls-auth-clients` on the primary.
pub fn client(p: &TlsParams) -> Result<rustls::ClientConfig, String> {
    let versions = versions(&p.protocols)?;
    let provider = Arc::new(provider(p)?);
    let ca = ca_certificates(p)?;
    if ca.is_empty() {
        return Err("tls-replication needs tls-ca-cert-file or tls-ca-cert-dir".into());
    }
    let mut roots = RootCertStore::empty();
    for c in ca {
        roots.add(c).map_err(|e| format!("bad CA certificate: {e}"))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    if p.cert_file.is_empty() || p.key_file.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let certs = read_certs(Path::new(&p.cert_file))?;
    let key = PrivateKeyDer::from_pem_file(&p.key_file).map_err(|e| format!("cannot read the private key in {}: {e}", p.key_file))?;
    builder.with_client_auth_cert(certs, key).map_err(|e| format!("tls-cert-file and tls-key-file: {e}"))
}

fn yes_no(value: &str) -> Result<bool, ConfigError> {
    super::yes_no(value)
}

impl Tls {
    /// A copy of the parameters.
    pub fn params(&self) -> TlsParams {
        self.params.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The configuration new TLS client connections use; `None` when the
    /// TLS port is off.
    pub fn server(&self) -> Option<Arc<ServerConfig>> {
        self.server.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `name` is one of these parameters.
    pub fn owns(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// At start-up, after every parameter is read: builds the configuration
    /// when the TLS port or the cluster bus needs it.
    pub fn start(&self) -> Result<(), ConfigError> {
        let p = self.params();
        if p.port == 0 && !p.cluster {
            return Ok(());
        }
        let cfg = build(&p).map_err(ConfigError::Invalid)?;
        *self.server.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(cfg));
        Ok(())
    }

    /// Sets a parameter (at start-up when `startup`, else CONFIG SET): once
    /// TLS is on, the configuration is rebuilt from the files, and the
    /// change is refused, and undone, if that fails.
    pub fn set(&self, name: &str, value: &str, startup: bool) -> Result<(), ConfigError> {
        self.set_many(&[(name, value)], startup)
    }

    /// Sets several parameters at once (CONFIG SET of a new certificate and
    /// its key): the configuration is rebuilt once, from all of them.
    pub fn set_many(&self, pairs: &[(&str, &str)], startup: bool) -> Result<(), ConfigError> {
        let mut p = self.params();
        for &(name, value) in pairs {
            Self::apply(&mut p, name, value, startup)?;
        }
        let mut server = self.server.write().unwrap_or_else(|e| e.into_inner());
        if server.is_some() {
            let cfg = build(&p).map_err(|e| ConfigError::Invalid(format!("Unable to update TLS configuration: {e}")))?;
            *server = Some(Arc::new(cfg));
        }
        *self.params.lock().unwrap_or_else(|e| e.into_inner()) = p;
        Ok(())
    }

    /// Puts back parameters `params` returned (a CONFIG SET that failed
    /// past the TLS ones); they built once, so they build again.
    pub fn restore(&self, p: TlsParams) {
        let mut server = self.server.write().unwrap_or_else(|e| e.into_inner());
        if server.is_some() {
            if let Ok(cfg) = build(&p) {
                *server = Some(Arc::new(cfg));
            }
        }
        *self.params.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    fn apply(p: &mut TlsParams, name: &str, value: &str, startup: bool) -> Result<(), ConfigError> {
        match name {
            "tls-port" | "tls-cluster" if !startup => {
                return Err(ConfigError::Immutable(format!("can't set immutable config '{name}' (set at start-up here)")))
            }
            "tls-port" => p.port = value.parse().map_err(|_| ConfigError::NotInteger)?,
            "tls-cluster" => p.cluster = yes_no(value)?,
            "tls-cert-file" => p.cert_file = value.into(),
            "tls-key-file" => p.key_file = value.into(),
            "tls-ca-cert-file" => p.ca_cert_file = value.into(),
            "tls-ca-cert-dir" => p.ca_cert_dir = value.into(),
            "tls-auth-clients" => {
                p.auth_clients = match value.to_ascii_lowercase().as_str() {
                    "yes" => AuthClients::Yes,
                    "no" => AuthClients::No,
                    "optional" => AuthClients::Optional,
                    _ => return Err(ConfigError::Invalid("argument(s) must be one of the following: no, yes, optional".into())),
                }
            }
            "tls-protocols" => {
                versions(value).map_err(ConfigError::Invalid)?;
                p.protocols = value.into();
            }
            "tls-ciphersuites" => {
                suites(value, SUITES_13, name).map_err(ConfigError::Invalid)?;
                p.ciphersuites = value.into();
            }
            "tls-ciphers" => {
                suites(value, SUITES_12, name).map_err(ConfigError::Invalid)?;
                p.ciphers = value.into();
            }
            "tls-prefer-server-ciphers" => p.prefer_server_ciphers = yes_no(value)?,
            "tls-replication" => p.replication = yes_no(value)?,
            _ => return Err(ConfigError::Unknown(name.into())),
        }
        Ok(())
    }

    /// The parameters as CONFIG GET shows them.
    pub fn all(&self) -> Vec<(String, String)> {
        let p = self.params();
        let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            ("tls-port".into(), p.port.to_string()),
            ("tls-cert-file".into(), p.cert_file),
            ("tls-key-file".into(), p.key_file),
            ("tls-ca-cert-file".into(), p.ca_cert_file),
            ("tls-ca-cert-dir".into(), p.ca_cert_dir),
            ("tls-auth-clients".into(), p.auth_clients.name().into()),
            ("tls-protocols".into(), p.protocols),
            ("tls-ciphersuites".into(), p.ciphersuites),
            ("tls-ciphers".into(), p.ciphers),
            ("tls-prefer-server-ciphers".into(), yn(p.prefer_server_ciphers)),
            ("tls-cluster".into(), yn(p.cluster)),
            ("tls-replication".into(), yn(p.replication)),
        ]
    }
}

/// The parameters this module owns.
const NAMES: &[&str] = &[
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-ciphers",
    "tls-prefer-server-ciphers",
    "tls-cluster",
    "tls-replication",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_rustls_cannot_honour_are_refused() {
        let t = Tls::default();
        for (name, value) in [
            ("tls-protocols", "TLSv1.1 TLSv1.2"),
            ("tls-protocols", "SSLv3"),
            ("tls-ciphers", "HIGH:!aNULL"),
            ("tls-ciphers", "DEFAULT"),
            ("tls-ciphersuites", "TLS_AES_128_CCM_SHA256"),
            ("tls-auth-clients", "maybe"),
        ] {
            assert!(t.set(name, value, false).is_err(), "{name} {value}");
        }
        t.set("tls-protocols", "TLSv1.3", false).unwrap();
        t.set("tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384", false).unwrap();
        t.set("tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256", false).unwrap();
        assert!(t.set("tls-port", "6380", false).is_err(), "start-up only");
        t.set("tls-port", "6380", true).unwrap();
        let all = t.all();
        assert!(all.contains(&("tls-port".into(), "6380".into())));
        assert!(all.contains(&("tls-protocols".into(), "TLSv1.3".into())));
    }

    #[test]
    fn suites_follow_the_lists_in_order() {
        let p = TlsParams {
            ciphersuites: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256".into(),
            ciphers: "ECDHE-RSA-AES256-GCM-SHA384".into(),
            ..Default::default()
        };
        let got: Vec<CipherSuite> = provider(&p).unwrap().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            got,
            [
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS13_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            ]
        );
        #[allow(deprecated)]
        let all = ring::default_provider().cipher_suites.len();
        assert_eq!(provider(&TlsParams::default()).unwrap().cipher_suites.len(), all);
    }

    #[test]
    fn tls_needs_the_files() {
        let t = Tls::default();
        t.set("tls-port", "6380", true).unwrap();
        assert!(t.start().is_err(), "no certificate");
        t.set("tls-cert-file", "/nonexistent/cert.pem", true).unwrap();
        t.set("tls-key-file", "/nonexistent/key.pem", true).unwrap();
        let e = t.start().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
