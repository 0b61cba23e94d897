//! `unixsocket`: clients on the same machine may connect through a Unix
//! domain socket instead of TCP (`redis-cli -s <path>`), as Redis allows.
//! The socket file is made at start-up (a file left at that path by an
//! earlier run is removed first), given `unixsocketperm` when that is set,
//! and removed at shutdown. Its clients are admitted, counted and spread
//! over the shard threads as TCP ones are; protected mode does not apply
//! (they are local by construction).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{admit, hand_over, Incoming, Socket, TOO_MANY};
use crate::config::Config;
use crate::shard::Engine;

/// The socket's path: `unixsocket` as given, or under `dir` when relative
/// (Redis changes its working directory to `dir`, which is where a
/// relative path lands there). `None` when the setting is empty.
pub fn path(cfg: &Config) -> Option<PathBuf> {
    let given = cfg.process.unixsocket.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if given.is_empty() {
        return None;
    }
    let p = PathBuf::from(&given);
    if p.is_absolute() {
        return Some(p);
    }
    let dir = cfg.dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Some(Path::new(&dir).join(p))
}

/// Makes the listening socket at `path`, with the client ports' backlog
/// and `unixsocketperm`.
pub fn open(cfg: &Config, path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let fail = |e: std::io::Error| std::io::Error::new(e.kind(), format!("Failed opening Unix socket {}: {e}", path.display()));
    // A socket file left by a run that did not stop cleanly; anything else
    // there makes the bind below fail, as it should.
    if std::fs::symlink_metadata(path).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())) {
        let _ = std::fs::remove_file(path);
    }
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(fail)?;
    sock.bind(&socket2::SockAddr::unix(path).map_err(fail)?).map_err(fail)?;
    let perm = cfg.process.unixsocketperm.load(Relaxed);
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).map_err(fail)?;
    }
    let backlog = cfg.process.tcp_backlog.load(Relaxed).min(i32::MAX as u32) as i32;
    sock.listen(backlog).map_err(fail)?;
    sock.set_nonblocking(true).map_err(fail)?;
    info!(path = %path.display(), "accepting connections on a Unix socket");
    Ok(sock.into())
}

/// Accepts the socket's clients until the server stops.
pub async fn accept_loop(l: UnixListener, conn_txs: Vec<mpsc::UnboundedSender<Incoming>>, engine: Arc<Engine>) {
    let mut next = 0usize;
    loop {
        match l.accept().await {
            Ok((mut sock, _)) => {
                if !admit(&engine) {
                    tokio::spawn(async move {
                        let _ = sock.write_all(TOO_MANY).await;
                    });
                    continue;
                }
                match sock.into_std() {
                    Ok(sock) => hand_over(Incoming { sock: Socket::Unix(sock), tls: false }, &conn_txs, &mut next, &engine),
                    Err(e) => {
                        engine.stats.connected_clients.fetch_sub(1, Relaxed);
                        warn!("accepted socket unusable: {e}");
                    }
                }
            }
            Err(e) => {
                error!("accept failed on the Unix socket: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Removes the socket file as the server stops (Redis's "Removing the
/// unix socket file").
pub fn remove(path: &Path) {
    info!("removing the unix socket file");
    if let Err(e) = std::fs::remove_file(path) {
        warn!("error removing the unix socket file {}: {e}", path.display());
    }
}
