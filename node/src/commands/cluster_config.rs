//! The CLUSTER subcommands Redis's cluster tooling (`redis-cli --cluster
//! create`, `add-node`, `del-node`, ...) changes the configuration with:
//! MEET, ADDSLOTS, ADDSLOTSRANGE, DELSLOTS, DELSLOTSRANGE, FORGET, RESET,
//! SET-CONFIG-EPOCH, BUMPEPOCH, SAVECONFIG and COUNT-FAILURE-REPORTS. They
//! check their arguments with Redis's error texts here and ask the control
//! plane (`cluster::tooling`) for the matching Raft change; a node in no
//! cluster yet records ADDSLOTS and SET-CONFIG-EPOCH in the slot map's
//! `Pending` until it joins one.

use bytes::Bytes;

use super::Coord;
use crate::error::{CmdError, CmdResult};
use crate::slot::map::{AdminOp, ClusterView, Request, SlotMap};
use crate::slot::SLOTS;
use crate::util::{eq_ic, parse_i64};

/// Runs `sub` when it is one of this module's subcommands; `None` when it
/// is not.
pub async fn run(cx: &mut dyn Coord, map: &SlotMap, view: &ClusterView, args: &[Bytes]) -> Option<CmdResult> {
    let sub = &args[1];
    let r = if eq_ic(sub, "meet") {
        meet(map, args).await.map(|()| cx.out().ok())
    } else if eq_ic(sub, "addslots") || eq_ic(sub, "delslots") {
        let del = eq_ic(sub, "delslots");
        match args[2..].iter().map(|a| slot_arg(a).map(|s| (s, s))).collect::<CmdResult<Vec<_>>>() {
            Ok(ranges) => change_slots(map, view, ranges, del).await.map(|()| cx.out().ok()),
            Err(e) => Err(e),
        }
    } else if eq_ic(sub, "addslotsrange") || eq_ic(sub, "delslotsrange") {
        let del = eq_ic(sub, "delslotsrange");
        match slot_ranges(sub, &args[2..]) {
            Ok(ranges) => change_slots(map, view, ranges, del).await.map(|()| cx.out().ok()),
            Err(e) => Err(e),
        }
    } else if eq_ic(sub, "flushslots") {
        flush_slots(cx, map, view).await.map(|()| cx.out().ok())
    } else if eq_ic(sub, "forget") {
        forget(map, view, &args[2]).await.map(|()| cx.out().ok())
    } else if eq_ic(sub, "reset") {
        reset(cx, map, view, args).await
    } else if eq_ic(sub, "saveconfig") {
        // The configuration is on disk once it commits: each Raft entry is
        // fsynced before it counts.
        cx.out().ok();
        Ok(())
    } else if eq_ic(sub, "set-config-epoch") {
        set_config_epoch(map, view, &args[2]).map(|()| cx.out().ok())
    } else if eq_ic(sub, "bumpepoch") {
        bump_epoch(map, view).await.map(|(bumped, e)| cx.out().simple(&format!("{} {e}", if bumped { "BUMPED" } else { "STILL" })))
    } else if eq_ic(sub, "count-failure-reports") {
        // Failures are decided by the Raft leader from its own probes: no
        // node sends another failure reports.
        known(map, view, &args[2]).map(|()| cx.out().int(0))
    } else {
        return None;
    };
    Some(r)
}

/// A slot number argument, with Redis's error.
fn slot_arg(a: &[u8]) -> CmdResult<u16> {
    parse_i64(a)
        .ok()
        .filter(|s| (0..SLOTS as i64).contains(s))
        .map(|s| s as u16)
        .ok_or_else(|| CmdError::err("Invalid or out of range slot"))
}

/// ADDSLOTSRANGE / DELSLOTSRANGE's start/end pairs.
fn slot_ranges(sub: &[u8], args: &[Bytes]) -> CmdResult<Vec<(u16, u16)>> {
    if args.len() % 2 == 1 {
        return Err(CmdError::wrong_arity(&format!("cluster|{}", String::from_utf8_lossy(sub))));
    }
    let mut ranges = Vec::new();
    for pair in args.chunks(2) {
        let (a, b) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
        if a > b {
            return Err(CmdError::err(format!("start slot number {a} is greater than end slot number {b}")));
        }
        ranges.push((a, b));
    }
    Ok(ranges)
}

/// Asks the control plane for a change and waits for it to commit.
async fn ask(map: &SlotMap, op: AdminOp) -> CmdResult<u64> {
    let control = map.control.get().ok_or_else(|| CmdError::err("the cluster control plane is not running"))?;
    let (reply, done) = tokio::sync::oneshot::channel();
    control.send(Request::Admin { op, reply }).map_err(|_| CmdError::err("the cluster control plane is not running"))?;
    match done.await {
        Ok(r) => r.map_err(CmdError::err),
        Err(_) => Err(CmdError::err("the cluster control plane stopped")),
    }
}

/// Whether this node is in no cluster (it knows no member, itself
/// included).
fn alone(view: &ClusterView) -> bool {
    view.members.is_empty()
}

/// CLUSTER MEET ip port [bus-port].
async fn meet(map: &SlotMap, args: &[Bytes]) -> CmdResult<()> {
    if args.len() > 5 {
        return Err(CmdError::subcommand_syntax("cluster", &args[1]));
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let port = parse_i64(&args[3]).map_err(|_| CmdError::err(format!("Invalid TCP base port specified: {}", text(&args[3]))))?;
    let bus = match args.get(4) {
        Some(b) => parse_i64(b).map_err(|_| CmdError::err(format!("Invalid TCP bus port specified: {}", text(b))))?,
        None => port + 10000,
    };
    let host: Option<std::net::IpAddr> = text(&args[2]).parse().ok();
    let valid = |p: i64| (1..=65535).contains(&p);
    let (Some(host), true, true) = (host, valid(port), valid(bus)) else {
        return Err(CmdError::err(format!("Invalid node address specified: {}:{}", text(&args[2]), text(&args[3]))));
    };
    ask(map, AdminOp::Meet { host: host.to_string(), port: port as u16, bus_port: bus as u16 }).await.map(|_| ())
}

/// ADDSLOTS / DELSLOTS and their RANGE forms: every slot must be free (for
/// ADDSLOTS) or owned (DELSLOTS) and given once, as Redis checks them.
async fn change_slots(map: &SlotMap, view: &ClusterView, ranges: Vec<(u16, u16)>, del: bool) -> CmdResult<()> {
    let mut seen = vec![false; SLOTS];
    let pending = map.pending.lock().unwrap_or_else(|e| e.into_inner()).slots.clone();
    for &(a, b) in &ranges {
        for s in a..=b {
            let owned = if alone(view) { pending.contains(&s) } else { view.owner_of(s).is_some() };
            if del && !owned {
                return Err(CmdError::err(format!("Slot {s} is already unassigned")));
            }
            if !del && owned {
                return Err(CmdError::err(format!("Slot {s} is already busy")));
            }
            if std::mem::replace(&mut seen[s as usize], true) {
                return Err(CmdError::err(format!("Slot {s} specified multiple times")));
            }
        }
    }
    if alone(view) {
        let mut p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (a, b) in ranges {
            for s in a..=b {
                if del {
                    p.slots.remove(&s);
                } else {
                    p.slots.insert(s);
                }
            }
        }
        return Ok(());
    }
    let ranges = coalesce(&seen);
    ask(map, if del { AdminOp::DelSlots(ranges) } else { AdminOp::AddSlots(ranges) }).await.map(|_| ())
}

/// The marked slots as ascending inclusive ranges (ADDSLOTS of 5461 single
/// slots is one range in the Raft log).
fn coalesce(marked: &[bool]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in (0..marked.len()).filter(|&s| marked[s]) {
        let s = s as u16;
        match out.last_mut() {
            Some(r) if r.1 + 1 == s => r.1 = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// Redis's error for a node id this node does not know.
fn known(map: &SlotMap, view: &ClusterView, id: &[u8]) -> CmdResult<()> {
    let known = view.members.iter().any(|m| m.id.as_bytes() == id) || map.myself.id.as_bytes() == id;
    if known {
        Ok(())
    } else {
        Err(CmdError::err(format!("Unknown node {}", String::from_utf8_lossy(id))))
    }
}

/// CLUSTER FORGET node-id: the member leaves the cluster (it must own no
/// slots). A member that left within the last minute is forgotten
/// already: `redis-cli --cluster del-node` sends FORGET to every node.
async fn forget(map: &SlotMap, view: &ClusterView, id: &[u8]) -> CmdResult<()> {
    let text = String::from_utf8_lossy(id).into_owned();
    if map.departed_lately(&text) {
        return Ok(());
    }
    known(map, view, id)?;
    if text == map.myself.id {
        return Err(CmdError::err("I tried hard but I can't forget myself..."));
    }
    let primary = view.my_primary().map(|p| view.members[p].id.as_str());
    if primary == Some(text.as_str()) {
        return Err(CmdError::err("Can't forget my master!"));
    }
    ask(map, AdminOp::Forget(text)).await.map(|_| ())
}

/// CLUSTER RESET [HARD|SOFT]: refused on a primary holding keys, as in
/// Redis. A node in no cluster drops what ADDSLOTS (and, HARD,
/// SET-CONFIG-EPOCH) recorded; a member leaves its cluster.
async fn reset(cx: &mut dyn Coord, map: &SlotMap, view: &ClusterView, args: &[Bytes]) -> CmdResult {
    let hard = match args.get(2) {
        None => false,
        Some(a) if args.len() == 3 && eq_ic(a, "hard") => true,
        Some(a) if args.len() == 3 && eq_ic(a, "soft") => false,
        Some(_) if args.len() > 3 => return Err(CmdError::subcommand_syntax("cluster", &args[1])),
        Some(_) => return Err(CmdError::Syntax),
    };
    if view.my_primary().is_none() && keys_in_db(cx).await > 0 {
        return Err(CmdError::err("CLUSTER RESET can't be called with master nodes containing keys"));
    }
    if alone(view) {
        let mut p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.slots.clear();
        if hard {
            p.epoch = 0;
        }
    } else {
        ask(map, AdminOp::Reset { hard }).await?;
    }
    cx.out().ok();
    Ok(())
}

/// CLUSTER FLUSHSLOTS: an empty node gives up every slot it owns (or, in
/// no cluster, was given by ADDSLOTS), as Redis's clusterDelNodeSlots.
async fn flush_slots(cx: &mut dyn Coord, map: &SlotMap, view: &ClusterView) -> CmdResult<()> {
    if keys_in_db(cx).await > 0 {
        return Err(CmdError::err("DB must be empty to perform CLUSTER FLUSHSLOTS."));
    }
    if alone(view) {
        map.pending.lock().unwrap_or_else(|e| e.into_inner()).slots.clear();
        return Ok(());
    }
    let Some(me) = view.me else { return Ok(()) };
    let ranges = view.ranges_of(me);
    if ranges.is_empty() {
        return Ok(());
    }
    ask(map, AdminOp::DelSlots(ranges)).await.map(|_| ())
}

/// Keys in the client's database, over every shard.
async fn keys_in_db(cx: &mut dyn Coord) -> usize {
    let db = cx.db();
    let mut n = 0;
    for s in 0..cx.engine().nshards() {
        n += cx.run_on(s, move |sh| sh.db_if_exists(db).map_or(0, |d| d.len())).await;
    }
    n
}

/// CLUSTER SET-CONFIG-EPOCH epoch: only on a node that knows no other and
/// has no epoch yet (a fresh one); it reports the epoch until it joins a
/// cluster, whose configuration epoch then counts.
fn set_config_epoch(map: &SlotMap, view: &ClusterView, arg: &[u8]) -> CmdResult<()> {
    let epoch = parse_i64(arg)?;
    if epoch < 0 {
        return Err(CmdError::err(format!("Invalid config epoch specified: {epoch}")));
    }
    if view.members.iter().any(|m| m.id != map.myself.id) {
        return Err(CmdError::err("The user can assign a config epoch only when the node does not know any other node."));
    }
    let mut p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
    if !alone(view) || p.epoch != 0 {
        return Err(CmdError::err("Node config epoch is already non-zero"));
    }
    p.epoch = epoch as u64;
    Ok(())
}

/// CLUSTER BUMPEPOCH: a member commits a change that only raises the
/// cluster's configuration epoch (whether it was bumped, and the epoch); a
/// node in no cluster takes epoch 1 unless it has one, as Redis's does.
async fn bump_epoch(map: &SlotMap, view: &ClusterView) -> CmdResult<(bool, u64)> {
    if alone(view) {
        let mut p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
        let bumped = p.epoch == 0;
        if bumped {
            p.epoch = 1;
        }
        return Ok((bumped, p.epoch));
    }
    Ok((true, ask(map, AdminOp::BumpEpoch).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_coalesced() {
        let mut marked = vec![false; SLOTS];
        for s in [0, 1, 2, 5, 16383] {
            marked[s] = true;
        }
        assert_eq!(coalesce(&marked), vec![(0, 2), (5, 5), (16383, 16383)]);
        assert!(coalesce(&vec![false; SLOTS]).is_empty());
    }
}
