//! MULTI, EXEC, DISCARD, WATCH, UNWATCH. Queuing happens in the connection
//! (`Conn::queue`); EXEC runs the queue through one `Tx` holding every shard
//! involved (`Conn::exec`), so the transaction is atomic across shards.
//! WATCH registers a flag on each key's shard; any write to the key
//! (including expiry, FLUSHDB, SWAPDB) raises it and EXEC then fails.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, ConnCmd, Exec};
use crate::error::{CmdError, CmdResult};
use crate::server::conn::{Conn, Multi};

const T: &[&str] = &["transaction"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Starts a transaction.",
        Exec::Conn(ConnCmd::Multi),
    ),
    cmd(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Executes all commands in a transaction.",
        Exec::Conn(ConnCmd::Exec),
    ),
    cmd(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE,
        (0, 0, 0),
        T,
        "transactions",
        "Discards a transaction.",
        Exec::Conn(ConnCmd::Discard),
    ),
    cmd(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE,
        (1, -1, 1),
        T,
        "transactions",
        "Monitors changes to keys to determine the execution of a transaction.",
        Exec::Conn(ConnCmd::Watch),
    ),
    cmd(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        T,
        "transactions",
        "Forgets about watched keys of a transaction.",
        Exec::Conn(ConnCmd::Unwatch),
    ),
];

pub fn multi(conn: &mut Conn) -> CmdResult {
    if conn.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    conn.multi = Some(Multi::default());
    conn.out.ok();
    Ok(())
}

pub async fn exec(conn: &mut Conn) -> CmdResult {
    let Some(multi) = conn.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if multi.failed {
        conn.unwatch();
        return Err(CmdError::Other("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    conn.exec(multi).await
}

pub fn discard(conn: &mut Conn) -> CmdResult {
    if conn.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    conn.unwatch();
    conn.out.ok();
    Ok(())
}

pub async fn watch(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    if conn.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    conn.watch_keys(&args[1..]).await;
    conn.out.ok();
    Ok(())
}

pub fn unwatch(conn: &mut Conn) -> CmdResult {
    conn.unwatch();
    conn.out.ok();
    Ok(())
}
