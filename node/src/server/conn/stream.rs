//! A client connection's byte stream: a plain TCP socket, TLS over one
//! (`tls-port`), or a Unix socket (`unixsocket`). Plain and Unix sockets
//! are read without blocking straight into the connection's buffers
//! (`read_some`), as before TLS existed; a TLS stream
//! decrypts into the thread's scratch buffer first. Writes to a TLS stream
//! are flushed, so records leave at once.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;

use super::{read_some, READ_CHUNK, SCRATCH};
use crate::resp::Parser;

/// How long a closing TLS connection waits for the peer to take its
/// close_notify alert.
const CLOSE_NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    /// The TCP socket underneath, if any.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(s.get_ref().0),
            Stream::Unix(_) => None,
        }
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// The client's address and the one it connected to, as CLIENT LIST
    /// shows them: `ip:port`, or for a Unix socket its path and port 0
    /// both times (as Redis shows them).
    pub fn names(&self) -> (String, String) {
        let name = |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
            Stream::Unix(s) => {
                let path = s.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.display().to_string())).unwrap_or_default();
                let name = format!("{path}:0");
                return (name.clone(), name);
            }
        };
        (name(tcp.peer_addr()), name(tcp.local_addr()))
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }

    /// Closes the writing side (TLS: with a close_notify alert first,
    /// which a client that does not read, one closed over its output
    /// limit, may never take: it gets `CLOSE_NOTIFY_WAIT`).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Unix(s) => s.shutdown().await,
            Stream::Tls(s) => match tokio::time::timeout(CLOSE_NOTIFY_WAIT, s.shutdown()).await {
                Ok(r) => r,
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            },
        }
    }

    /// Waits for input and reads some of it into `inbuf` (or the big
    /// argument the parser is filling); `Ok(0)` is the end of the stream.
    pub fn poll_read_some(&mut self, cx: &mut Context<'_>, inbuf: &mut BytesMut, parser: &mut Parser) -> Poll<std::io::Result<usize>> {
        match self {
            Stream::Plain(sock) => loop {
                ready!(sock.poll_read_ready(cx))?;
                match read_some(sock, inbuf, parser) {
                    // Readiness was stale and is now cleared: wait again.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return Poll::Ready(r),
                }
            },
            Stream::Unix(sock) => loop {
                ready!(sock.poll_read_ready(cx))?;
                match read_some(sock, inbuf, parser) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return Poll::Ready(r),
                }
            },
            Stream::Tls(tls) => SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                let (target, room) = match parser.big_target() {
                    // A big argument takes only what it still has room for
                    // (`big_target` leaves it some).
                    Some(big) => {
                        let room = (big.capacity() - big.len()).clamp(1, READ_CHUNK);
                        (big, room)
                    }
                    None => (inbuf, READ_CHUNK),
                };
                let mut buf = ReadBuf::new(&mut s[..room]);
                ready!(Pin::new(&mut **tls).poll_read(cx, &mut buf))?;
                let got = buf.filled();
                target.extend_from_slice(got);
                Poll::Ready(Ok(got.len()))
            }),
        }
    }
}

/// A socket read without blocking (`read_some`): TCP or Unix, whose
/// tokio types have the same calls.
pub trait RawSocket {
    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn try_read_buf(&self, buf: &mut BytesMut) -> std::io::Result<usize>;
    fn try_io_readable<R>(&self, f: impl FnOnce() -> std::io::Result<R>) -> std::io::Result<R>;
}

macro_rules! raw_socket {
    ($t:ty) => {
        impl RawSocket for $t {
            fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_read_buf(&self, buf: &mut BytesMut) -> std::io::Result<usize> {
                <$t>::try_read_buf(self, buf)
            }
            fn try_io_readable<R>(&self, f: impl FnOnce() -> std::io::Result<R>) -> std::io::Result<R> {
                self.try_io(tokio::io::Interest::READABLE, f)
            }
        }
    };
}
raw_socket!(TcpStream);
raw_socket!(UnixStream);

/// The largest emptied input buffer a connection keeps for its next read.
const KEEP_INPUT: usize = 1024;

/// Takes back an emptied input buffer whole for the next read when no
/// argument parsed out of it is still held (a queued MULTI command, a
/// blocked one) and it is small, so that a connection sending one small
/// command at a time reuses one buffer instead of allocating one per
/// request; otherwise lets it go, to be freed once the last argument in
/// it goes.
pub(super) fn keep_input_buffer(buf: &mut BytesMut) {
    // Asking for one byte more than is left reclaims the bytes already
    // parsed out, which is possible only when nothing else refers to them.
    if !(buf.try_reclaim(buf.capacity() + 1) && buf.capacity() <= KEEP_INPUT) {
        *buf = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_input_buffer_nobody_else_holds_is_kept_whole() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let arg = buf.split_to(buf.len()).freeze();
        // An argument still held: the buffer goes.
        keep_input_buffer(&mut buf);
        assert_eq!(buf.capacity(), 0);
        drop(arg);

        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let at = buf.as_ptr();
        drop(buf.split_to(buf.len()).freeze());
        keep_input_buffer(&mut buf);
        assert_eq!(buf.as_ptr(), at);
        assert!(buf.capacity() >= 14);

        // A big one goes even when nobody holds it.
        let mut big = BytesMut::new();
        big.extend_from_slice(&[b'x'; KEEP_INPUT + 1]);
        drop(big.split_to(big.len()).freeze());
        keep_input_buffer(&mut big);
        assert_eq!(big.capacity(), 0);
    }
}
