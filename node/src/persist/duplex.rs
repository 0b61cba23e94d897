//! The replica link's connection to its primary: plain TCP, or TLS when
//! `tls-replication` is on. The link reads on its own thread while another
//! thread writes acknowledgements; a TLS connection is one state machine,
//! so its reads wait for data a short time at a time and let a writer in
//! between.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ClientConnection, StreamOwned};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// One connection, readable and writable from clones of it.
pub enum Duplex {
    Plain(TcpStream),
    /// The TLS state, the socket, and how long a read may wait for data
    /// (`None`: for ever).
    Tls(Arc<Mutex<Tls>>, TcpStream, Option<Duration>),
}

/// How long a TLS read holds the connection before letting a writer in.
const SLICE: Duration = Duration::from_millis(50);

/// A TCP connection to `host:port`, its local end bound to `source` when
/// that is set and can be bound (else where the kernel chooses); each
/// address of `host` is tried in turn.
fn connect_from(host: &str, port: u16, source: Option<std::net::IpAddr>) -> io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let Some(source) = source else { return TcpStream::connect((host, port)) };
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (host, port).to_socket_addrs()? {
        let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if source.is_ipv4() == addr.is_ipv4() {
            if let Err(e) = sock.bind(&std::net::SocketAddr::new(source, 0).into()) {
                tracing::warn!("bind-source-addr {source}: {e}; connecting from any address");
            }
        }
        match sock.connect(&addr.into()) {
            Ok(()) => return Ok(sock.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Duplex {
    /// Connects to `host:port` (from `source` when given, if that address
    /// can be bound: Redis's best-effort bind), over TLS with `tls` (the
    /// primary's certificate must name `host`).
    pub fn connect(host: &str, port: u16, source: Option<std::net::IpAddr>, tls: Option<Arc<ClientConfig>>) -> Result<Duplex, String> {
        let sock = connect_from(host, port, source).map_err(|e| format!("connecting: {e}"))?;
        sock.set_nodelay(true).ok();
        let Some(cfg) = tls else { return Ok(Duplex::Plain(sock)) };
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        let conn = ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))?;
        let raw = sock.try_clone().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(SLICE)).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, sock);
        // The handshake now, so that a refused certificate is the error
        // (within 10 s).
        let mut slices = 0;
        while tls.conn.is_handshaking() {
            match tls.conn.complete_io(&mut tls.sock) {
                Ok(_) => {}
                Err(e) if timed_out(&e) && slices < 200 => slices += 1,
                Err(e) => return Err(format!("TLS handshake: {e}")),
            }
        }
        Ok(Duplex::Tls(Arc::new(Mutex::new(tls)), raw, None))
    }

    pub fn try_clone(&self) -> io::Result<Duplex> {
        Ok(match self {
            Duplex::Plain(s) => Duplex::Plain(s.try_clone()?),
            Duplex::Tls(t, raw, limit) => Duplex::Tls(t.clone(), raw.try_clone()?, *limit),
        })
    }

    /// The TCP socket underneath (shut down to end the link).
    pub fn tcp(&self) -> io::Result<TcpStream> {
        match self {
            Duplex::Plain(s) | Duplex::Tls(_, s, _) => s.try_clone(),
        }
    }

    pub fn shutdown(&self) {
        let (Duplex::Plain(s) | Duplex::Tls(_, s, _)) = self;
        let _ = s.shutdown(Shutdown::Both);
    }

    /// How long a read waits for data before it fails with `TimedOut`
    /// (`repl-timeout`); clones made afterwards keep it.
    pub fn set_read_limit(&mut self, limit: Duration) -> io::Result<()> {
        match self {
            Duplex::Plain(s) => s.set_read_timeout(Some(limit)),
            Duplex::Tls(_, _, l) => {
                *l = Some(limit);
                Ok(())
            }
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn lock(t: &Mutex<Tls>) -> MutexGuard<'_, Tls> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Duplex::Plain(s) => s.read(buf),
            Duplex::Tls(t, _, limit) => {
                let started = std::time::Instant::now();
                loop {
                    match lock(t).read(buf) {
                        Err(e) if timed_out(&e) => {
                            if limit.is_some_and(|l| started.elapsed() >= l) {
                                return Err(io::ErrorKind::TimedOut.into());
                            }
                        }
                        r => return r,
                    }
                }
            }
        }
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Duplex::Plain(s) => s.write(buf),
            Duplex::Tls(t, _, _) => {
                let mut t = lock(t);
                t.write_all(buf)?;
                t.flush()?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Duplex::Plain(s) => s.flush(),
            Duplex::Tls(t, _, _) => lock(t).flush(),
        }
    }
}
