//! Running slot moves: one MoveSlots call followed to its end with a
//! progress display, and a plan's moves one after the other.

use std::time::Instant;

use crate::conn::Admin;
use damselfly_proto::admin::{MoveSlotsRequest, StatusReply};

use crate::conn::status_err;
use crate::output::node_label;
use crate::plan::Move;
use crate::progress::{Moved, Progress};
use crate::slots::ranges_text;
use crate::Res;

/// Runs `moves` in order, stopping at the first failure. The error says
/// which move failed, why, and (`again`) how to continue once the cause is
/// fixed: moves that completed stay done.
pub async fn run_moves(admin: &mut Admin, st: &StatusReply, moves: &[Move], again: &str) -> Res<Moved> {
    let mut total = Moved::default();
    for (i, mv) in moves.iter().enumerate() {
        let (from, to) = (node_label(st, &mv.from), node_label(st, &mv.to));
        let step = if moves.len() > 1 { format!("[{}/{}] ", i + 1, moves.len()) } else { String::new() };
        let label = format!("{step}{from} -> {to}, {} slots", mv.slot_count());
        match run_move(admin, mv, label).await {
            Ok(m) => total.add(&m),
            Err(e) => {
                let done = if i > 0 { format!("; the {i} move(s) before it are done") } else { String::new() };
                let again = if again.is_empty() { String::new() } else { format!("; {again}") };
                return Err(format!("moving slots {} from {from} to {to} failed: {e}{done}{again}", ranges_text(&mv.ranges)));
            }
        }
    }
    Ok(total)
}

/// One MoveSlots call, its progress shown on stderr.
async fn run_move(admin: &mut Admin, mv: &Move, label: String) -> Res<Moved> {
    let mut progress = Progress::stderr(label);
    let start = Instant::now();
    match follow(admin, mv, &mut progress).await {
        Ok(last) => {
            let m = Moved { keys: last.keys_sent, bytes: last.bytes_sent, pause_ms: last.pause_ms, seconds: start.elapsed().as_secs_f64() };
            progress.finish(&m);
            Ok(m)
        }
        Err(e) => {
            progress.fail();
            Err(e)
        }
    }
}

/// Calls MoveSlots and reads its progress stream up to the message marked
/// done, which it returns.
async fn follow(admin: &mut Admin, mv: &Move, progress: &mut Progress<std::io::Stderr>) -> Res<damselfly_proto::admin::MoveProgress> {
    let req = MoveSlotsRequest { from: mv.from.clone(), to: mv.to.clone(), ranges: mv.ranges.clone() };
    let mut stream = admin.move_slots(req).await.map_err(status_err)?.into_inner();
    loop {
        match stream.message().await.map_err(status_err)? {
            Some(p) if p.done => return Ok(p),
            Some(p) => progress.update(&p, Instant::now()),
            None => {
                return Err("the node ended the move without confirming it: see `cluster-admin status` for where the slots are".into());
            }
        }
    }
}
