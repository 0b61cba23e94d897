//! MONITOR: the connection receives a line for every command the node
//! runs from then on (`shard::monitor` keeps the monitors and formats the
//! lines; `observe` feeds them), until RESET or it closes.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;

pub static COMMANDS: &[CommandSpec] = &[cmd(
    "monitor",
    1,
    ADMIN | NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    &["admin", "slow", "dangerous"],
    "server",
    "Listens for all requests received by the server in real-time.",
    Exec::Coord(handler!(|cx, _a| monitor(cx))),
)];

fn monitor(cx: &mut dyn Coord) -> CmdResult {
    // Inside EXEC a client expects one reply per command (Redis's
    // CLIENT_DENY_BLOCKING).
    if cx.in_exec() {
        return Err(CmdError::err("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    let engine = cx.engine().clone();
    let s = cx.client()?;
    // Already monitoring: ignored, without a reply, as Redis does.
    if s.monitor.is_some() {
        return Ok(());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    engine.monitors.add(&s.info, &tx);
    s.info.set_monitor(true);
    s.monitor = Some(rx);
    cx.out().ok();
    Ok(())
}
