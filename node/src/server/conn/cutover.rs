//! Cluster mode: a connection's commands whose slot a migration's cut-over
//! holds wait for it to end and are routed again (usually redirected).

use bytes::Bytes;

use super::*;
use crate::commands::{self, CommandSpec};
use crate::error::CmdResult;

impl Conn {
    /// The single slot of the last command's keys, as its routing check
    /// found it (cluster mode).
    pub(super) fn checked_slot(&self) -> Option<u16> {
        self.s.cluster.as_ref().and_then(|c| c.last_slot)
    }

    /// Whether a migration's cut-over holds a slot of the command's keys.
    pub(super) fn cutting_over(&self, args: &[Bytes]) -> bool {
        let Some(c) = &self.s.cluster else { return false };
        if !c.map.gate.any_closed() {
            return false;
        }
        let Ok(spec) = commands::lookup_args(args) else { return false };
        let mut closed = false;
        crate::commands::routing::for_each_key(spec, args, |k| closed = closed || c.map.gate.is_closed(crate::slot::key_slot(k)));
        closed
    }

    /// Waits (bounded) until no slot of the command's keys is held by a
    /// cut-over.
    pub(super) async fn hold_for_cutover(&mut self, args: &[Bytes]) {
        let (Some(c), Ok(spec)) = (&self.s.cluster, commands::lookup_args(args)) else { return };
        let map = c.map.clone();
        let mut slots = Vec::new();
        crate::commands::routing::for_each_key(spec, args, |k| slots.push(crate::slot::key_slot(k)));
        for s in slots {
            map.gate.wait_open(Some(s), CUTOVER_WAIT * CUTOVER_RETRIES as u32).await;
        }
    }

    /// Whether the gate holds back a slot of the command's keys (see
    /// `slot::gate`).
    pub(super) fn gate_holds(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        self.s.cluster.as_ref().is_some_and(|c| crate::commands::routing::held_back(&c.map, spec, args))
    }

    /// Waits until no slot of the command's keys is held by a migration's
    /// cut-over, then checks the command's routing again.
    pub(super) async fn reroute(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
        let Some(c) = &mut self.s.cluster else { return Ok(()) };
        let map = c.map.clone();
        let mut slots = Vec::new();
        crate::commands::routing::for_each_key(spec, args, |k| slots.push(crate::slot::key_slot(k)));
        for s in slots {
            map.gate.wait_open(Some(s), CUTOVER_WAIT).await;
        }
        let scripting = &self.engine.scripting;
        c.check(spec, args, false, false, || commands::scripting::allows_cross_slot(scripting, spec, args))
    }
}
