//! The client ports' listening sockets, as the configuration names them
//! (`port`, `tls-port`, `bind`): opened at start-up, and again when CONFIG
//! SET changes the plain port or the addresses (`relisten`), the new ones
//! handed to the server's accept loops (`Listeners`), which close the old.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

/// The plain client port's new port and addresses, for the accept loops;
/// `done` is answered once the new sockets listen and the old are closed,
/// or with why not (the old then still listen).
pub struct Relisten {
    pub addrs: Vec<String>,
    pub port: u16,
    pub done: oneshot::Sender<io::Result<()>>,
}

/// Where `relisten` hands its sockets (set by the server at start-up).
#[derive(Default)]
pub struct Listeners {
    tx: Mutex<Option<mpsc::UnboundedSender<Relisten>>>,
}

impl Listeners {
    fn tx(&self) -> MutexGuard<'_, Option<mpsc::UnboundedSender<Relisten>>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server takes the plain port's sockets from `rx` from now on.
    pub fn serve(&self) -> mpsc::UnboundedReceiver<Relisten> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.tx() = Some(tx);
        rx
    }

    /// Has the accept loops listen on `port` (none when 0) at `addrs`
    /// instead of what they listen on; an address that cannot be bound
    /// fails the whole change, and the old sockets stay.
    pub async fn relisten(&self, addrs: &[String], port: u16) -> io::Result<()> {
        let Some(tx) = self.tx().clone() else {
            return Err(io::Error::other("the server takes no new listeners"));
        };
        let (done, wait) = oneshot::channel();
        let stopping = || io::Error::other("the server is stopping");
        tx.send(Relisten { addrs: addrs.to_vec(), port, done }).map_err(|_| stopping())?;
        wait.await.map_err(|_| stopping())?
    }
}

/// Listening sockets for `port` on each of `addrs` (IPv4 or IPv6),
/// non-blocking, for a tokio listener, with room for `backlog` connections
/// not yet accepted (`tcp-backlog`; the kernel caps it at
/// net.core.somaxconn).
pub fn open(addrs: &[String], port: u16, backlog: u32) -> io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let sa: SocketAddr = format!("{addr}:{port}")
            .parse()
            .or_else(|_| format!("[{addr}]:{port}").parse())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad bind address {addr}: {e}")))?;
        let l = bind(sa, backlog).map_err(|e| io::Error::new(e.kind(), format!("{sa}: {e}")))?;
        l.set_nonblocking(true)?;
        out.push(l);
    }
    Ok(out)
}

/// What `TcpListener::bind` does (address reuse on Unix, as Redis sets
/// it), with our backlog.
fn bind(sa: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(sa), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    s.bind(&sa.into())?;
    s.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_bound_or_none_is() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(open(&["127.0.0.1".into()], port, 511).is_err(), "in use");
        assert!(open(&["999.999.999.999".into()], 0, 511).is_err(), "no such address");
        let ls = open(&["127.0.0.1".into(), "::1".into()], 0, 511);
        // ::1 may be missing on a host without IPv6.
        if let Ok(ls) = ls {
            assert_eq!(ls.len(), 2);
        }
    }
}
