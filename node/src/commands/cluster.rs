//! Cluster commands: CLUSTER (SLOTS, SHARDS, NODES, INFO, MYID, MYSHARDID,
//! KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, SETSLOT, REPLICATE, HELP,
//! REPLICAS/SLAVES, FAILOVER; MEET, ADDSLOTS, FORGET, RESET & co. are in
//! `cluster_config`), ASKING, READONLY and READWRITE,
//! with Redis's reply shapes and error texts. The replies describe the
//! committed configuration in the node's slot map (`slot::map`); the
//! configuration itself changes only through the Raft group
//! (`cluster-admin`, or the subcommands Redis's tooling sends). In standalone mode they all answer, as Redis does,
//! that cluster support is disabled.

use bytes::Bytes;

use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::slot::map::{ClusterView, Member, Request, Route, SlotMap};
use crate::slot::{key_slot, SLOTS};
use crate::util::{eq_ic, now_ms, parse_i64};

const CLUSTER: Exec = Exec::Coord(handler!(async |cx, a| cluster(cx, a)));
const S: &[&str] = &["slow"];
const NONDET: &[&str] = &["nondeterministic_output"];
const ADM: &[&str] = &["admin", "slow", "dangerous"];

/// An administrative CLUSTER subcommand without keys (Redis's flags for
/// those that change the configuration).
const fn admin_sub(name: &'static str, arity: i32, summary: &'static str) -> CommandSpec {
    sub(name, arity, ADMIN | STALE, (0, 0, 0), ADM, summary, CLUSTER)
}

pub static COMMANDS: &[CommandSpec] = &[
    cmd("cluster", -2, 0, (0, 0, 0), S, "cluster", "A container for Redis Cluster commands.", CLUSTER).subcommands(&[
        sub("cluster|slots", 2, LOADING | STALE, (0, 0, 0), S, "Returns the mapping of cluster slots to nodes.", CLUSTER).tips(NONDET),
        sub("cluster|shards", 2, LOADING | STALE, (0, 0, 0), S, "Returns the mapping of cluster slots to shards.", CLUSTER).tips(NONDET),
        sub("cluster|nodes", 2, STALE, (0, 0, 0), S, "Returns the cluster configuration for a node.", CLUSTER).tips(NONDET),
        sub("cluster|info", 2, STALE, (0, 0, 0), S, "Returns information about the state of a node.", CLUSTER).tips(NONDET),
        sub("cluster|myid", 2, STALE, (0, 0, 0), S, "Returns the ID of a node.", CLUSTER),
        sub("cluster|help", 2, LOADING | STALE, (0, 0, 0), S, "Returns helpful text about the different subcommands.", CLUSTER),
        sub("cluster|myshardid", 2, STALE, (0, 0, 0), S, "Returns the shard ID of a node.", CLUSTER).tips(NONDET),
        sub("cluster|keyslot", 3, STALE, (0, 0, 0), S, "Returns the hash slot for a key.", CLUSTER),
        sub("cluster|countkeysinslot", 3, STALE, (0, 0, 0), S, "Returns the number of keys in a hash slot.", CLUSTER),
        sub("cluster|getkeysinslot", 4, STALE, (0, 0, 0), S, "Returns the key names in a hash slot.", CLUSTER).tips(NONDET),
        admin_sub("cluster|setslot", -4, "Binds a hash slot to a node."),
        admin_sub("cluster|failover", -2, "Forces a replica to perform a manual failover of its master."),
        admin_sub("cluster|replicate", 3, "Configure a node as replica of a master node."),
        admin_sub("cluster|replicas", 3, "Lists the replica nodes of a master node.").tips(NONDET),
        admin_sub("cluster|slaves", 3, "Lists the replica nodes of a master node.").tips(NONDET),
        admin_sub("cluster|meet", -4, "Forces a node to handshake with another node."),
        admin_sub("cluster|addslots", -3, "Assigns new hash slots to a node."),
        admin_sub("cluster|addslotsrange", -4, "Assigns new hash slot ranges to a node."),
        admin_sub("cluster|delslots", -3, "Sets hash slots as unbound for a node."),
        admin_sub("cluster|delslotsrange", -4, "Sets hash slot ranges as unbound for a node."),
        admin_sub("cluster|forget", 3, "Removes a node from the nodes table."),
        admin_sub("cluster|flushslots", 2, "Deletes all slots information from a node."),
        sub("cluster|reset", -2, ADMIN | NOSCRIPT | STALE, (0, 0, 0), ADM, "Resets a node.", CLUSTER),
        admin_sub("cluster|saveconfig", 2, "Forces a node to save the cluster configuration to disk."),
        admin_sub("cluster|set-config-epoch", 3, "Sets the configuration epoch for a new node."),
        admin_sub("cluster|bumpepoch", 2, "Advances the cluster config epoch.").tips(NONDET),
        admin_sub("cluster|count-failure-reports", 3, "Returns the number of active failure reports active for a node.").tips(NONDET),
    ]),
    cmd(
        "asking",
        1,
        FAST,
        (0, 0, 0),
        &["fast", "connection"],
        "cluster",
        "Signals that a cluster client is following an -ASK redirect.",
        Exec::Coord(handler!(|cx, _a| asking(cx))),
    ),
    cmd(
        "readonly",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        &["fast", "connection"],
        "cluster",
        "Enables read-only queries for a connection to a Redis Cluster replica node.",
        Exec::Coord(handler!(|cx, _a| readonly(cx, true))),
    ),
    cmd(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        &["fast", "connection"],
        "cluster",
        "Enables read-write queries for a connection to a Reids Cluster replica node.",
        Exec::Coord(handler!(|cx, _a| readonly(cx, false))),
    ),
];

/// Hands the failure-detection settings (`cluster-node-timeout`,
/// `cluster-require-full-coverage`) to the slot map, which the prober and
/// the routing check read: at start and after every CONFIG SET.
pub fn configure(engine: &crate::shard::Engine) {
    use std::sync::atomic::Ordering::Relaxed;
    if let Some(map) = &engine.cluster {
        map.health.node_timeout_ms.store(engine.cfg.cluster_node_timeout.load(Relaxed), Relaxed);
        map.health.full_coverage.store(engine.cfg.cluster_require_full_coverage.load(Relaxed), Relaxed);
    }
}

fn disabled() -> CmdError {
    CmdError::err("This instance has cluster support disabled")
}

/// The connection's cluster state; the "disabled" error in standalone
/// mode.
fn conn_cluster(cx: &mut dyn Coord) -> CmdResult<&mut crate::commands::routing::ConnCluster> {
    if cx.engine().cluster.is_none() {
        return Err(disabled());
    }
    cx.client()?.cluster.as_mut().ok_or_else(disabled)
}

/// ASKING.
fn asking(cx: &mut dyn Coord) -> CmdResult {
    conn_cluster(cx)?.asking = true;
    cx.out().ok();
    Ok(())
}

/// READONLY (`on`) and READWRITE.
fn readonly(cx: &mut dyn Coord, on: bool) -> CmdResult {
    conn_cluster(cx)?.readonly = on;
    cx.out().ok();
    Ok(())
}

const CLUSTER_HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to this node (a change the cluster's Raft group commits).",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slot ranges to this node.",
    "BUMPEPOCH",
    "    Raise the cluster's configuration epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Failure reports about a node (0: failures are decided by the Raft leader).",
    "COUNTKEYSINSLOT <slot>",
    "    Number of keys in <slot> held by this node.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Leave slots without an owner.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Leave slot ranges without an owner.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote this replica in its primary's place.",
    "FORGET <node-id>",
    "    Remove a node that owns no slots from the cluster.",
    "FLUSHSLOTS",
    "    Give up every slot of this (empty) node.",
    "GETKEYSINSLOT <slot> <count>",
    "    Up to <count> key names in <slot> held by this node.",
    "INFO",
    "    The cluster's state and figures.",
    "KEYSLOT <key>",
    "    The hash slot of <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Add a node to the cluster, or join this node to the cluster of <ip>:<port>.",
    "MYID",
    "    This node's id.",
    "MYSHARDID",
    "    The id of this node's shard (its primary and replicas).",
    "NODES",
    "    The cluster's nodes, in Redis's CLUSTER NODES format.",
    "REPLICATE <node-id>",
    "    Make this node a replica of <node-id>.",
    "REPLICAS <node-id>",
    "    The replicas of a primary, in CLUSTER NODES format.",
    "RESET [HARD|SOFT]",
    "    Leave the cluster (a node holding keys is refused).",
    "SAVECONFIG",
    "    Accepted: every committed change is already on disk.",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set the configuration epoch of a node in no cluster.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Redis's manual slot migration steps.",
    "SHARDS",
    "    The cluster's shards, their slots and nodes.",
    "SLAVES <node-id>",
    "    Same as REPLICAS.",
    "SLOTS",
    "    The slot ranges and the nodes serving them.",
    "HELP",
    "    Print this help.",
];

pub async fn cluster(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let Some(map) = cx.engine().cluster.clone() else { return Err(disabled()) };
    let view = map.load();
    let sub = &args[1];
    let offset = cx.engine().repl.offset.load(std::sync::atomic::Ordering::Relaxed);
    let out = cx.out();
    if eq_ic(sub, "help") {
        out.help(CLUSTER_HELP);
    } else if eq_ic(sub, "slots") {
        slots_reply(&view, out);
    } else if eq_ic(sub, "shards") {
        shards_reply(&view, &map, offset, out);
    } else if eq_ic(sub, "nodes") {
        out.verbatim(&nodes_text(&view, &map, now_ms()));
    } else if eq_ic(sub, "info") {
        out.verbatim(&info_text(&view, &map, now_ms()));
    } else if eq_ic(sub, "myid") {
        out.bulk(map.myself.id.as_bytes());
    } else if eq_ic(sub, "myshardid") {
        out.bulk(map.myself.shard_id.as_bytes());
    } else if eq_ic(sub, "keyslot") {
        out.int(key_slot(&args[2]) as i64);
    } else if eq_ic(sub, "countkeysinslot") {
        let slot = parse_i64(&args[2])?;
        if !(0..SLOTS as i64).contains(&slot) {
            return Err(CmdError::err("Invalid slot"));
        }
        let n = keys_in_slot(cx, slot as u16, None).await.len();
        cx.out().int(n as i64);
    } else if eq_ic(sub, "getkeysinslot") {
        let slot = parse_i64(&args[2])?;
        let max = parse_i64(&args[3])?;
        if !(0..SLOTS as i64).contains(&slot) || max < 0 {
            return Err(CmdError::err("Invalid slot or number of keys"));
        }
        let keys = keys_in_slot(cx, slot as u16, Some(max as usize)).await;
        cx.out().array(keys.len());
        for k in keys {
            cx.out().bulk(&k);
        }
    } else if eq_ic(sub, "setslot") {
        setslot(cx, &map, &view, args).await?;
    } else if eq_ic(sub, "replicas") || eq_ic(sub, "slaves") {
        replicas_reply(&view, &map, &args[2], out)?;
    } else if eq_ic(sub, "failover") {
        let force = match args.get(2) {
            None if args.len() == 2 => false,
            Some(a) if args.len() == 3 && (eq_ic(a, "force") || eq_ic(a, "takeover")) => true,
            _ => return Err(CmdError::Syntax),
        };
        failover(&map, &view, force).await?;
        cx.out().ok();
    } else if eq_ic(sub, "replicate") {
        replicate(&map, &view, &args[2]).await?;
        cx.out().ok();
    } else if let Some(r) = super::cluster_config::run(cx, &map, &view, args).await {
        r?;
    } else {
        return Err(CmdError::unknown_subcommand("cluster", sub));
    }
    Ok(())
}

/// The node id serving `slot`, if any.
fn owner_of<'a>(view: &'a ClusterView, map: &'a SlotMap, slot: u16) -> Option<&'a str> {
    match view.route(slot) {
        Route::Local => Some(map.myself.id.as_str()),
        Route::Moved(i) | Route::Down(i) => Some(view.members[i].id.as_str()),
        Route::Unassigned => None,
    }
}

/// Waits (up to 5 s) for this node's configuration to give `slot` to `id`.
async fn owned_soon_by(map: &SlotMap, slot: u16, id: &str) -> bool {
    let mut changed = map.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if owner_of(&map.load(), map, slot) == Some(id) {
            return true;
        }
        if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
            return false;
        }
    }
}

/// CLUSTER SETSLOT slot IMPORTING|MIGRATING|NODE node-id, or STABLE, for
/// Redis's resharding tools (`redis-cli --cluster reshard` and
/// `rebalance`). Slots move here by live migration rather than key by key,
/// so MIGRATING, sent to the owner, moves the slot with its keys before it
/// answers (GETKEYSINSLOT then finds nothing left to MIGRATE); IMPORTING and
/// STABLE have nothing to record; NODE confirms the owner, or moves the
/// slot when sent to the node still serving it.
async fn setslot(cx: &mut dyn Coord, map: &SlotMap, view: &ClusterView, args: &[Bytes]) -> CmdResult {
    let slot =
        parse_i64(&args[2]).ok().filter(|s| (0..SLOTS as i64).contains(s)).ok_or_else(|| CmdError::err("Invalid or out of range slot"))?
            as u16;
    let action = &args[3];
    let bad = || CmdError::err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
    if eq_ic(action, "stable") {
        if args.len() != 4 {
            return Err(bad());
        }
        cx.out().ok();
        return Ok(());
    }
    if args.len() != 5 {
        return Err(bad());
    }
    let id = String::from_utf8_lossy(&args[4]).into_owned();
    let known = view.members.iter().any(|m| m.id == id);
    let owner = owner_of(view, map, slot).map(str::to_string);
    let mine = owner.as_deref() == Some(map.myself.id.as_str());
    let request = if eq_ic(action, "importing") {
        if !known {
            return Err(CmdError::err(format!("I don't know about node {id}")));
        }
        if mine {
            return Err(CmdError::err(format!("I'm already the owner of hash slot {slot}")));
        }
        None
    } else if eq_ic(action, "migrating") {
        if !mine {
            return Err(CmdError::err(format!("I'm not the owner of hash slot {slot}")));
        }
        if !known {
            return Err(CmdError::err(format!("I don't know about node {id}")));
        }
        (id != map.myself.id).then_some(())
    } else if eq_ic(action, "node") {
        if !known {
            return Err(CmdError::err(format!("Unknown node {id}")));
        }
        if owner.as_deref() == Some(id.as_str()) {
            None
        } else if mine {
            // Moved as MIGRATING would (also when empty: a write racing a
            // plain reassignment would be lost).
            Some(())
        } else if owned_soon_by(map, slot, &id).await {
            // Another node moved it; this one had not applied that yet.
            None
        } else {
            return Err(CmdError::err(format!(
                "hash slot {slot} is served by {}: send SETSLOT to it",
                owner.as_deref().unwrap_or("no node")
            )));
        }
    } else {
        return Err(bad());
    };
    if request.is_some() {
        let control = map.control.get().ok_or_else(|| CmdError::err("the cluster control plane is not running"))?;
        let (reply, done) = tokio::sync::oneshot::channel();
        control.send(Request::Move { slot, to: id, reply }).map_err(|_| CmdError::err("the cluster control plane is not running"))?;
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(CmdError::err(format!("slot {slot} did not move: {e}"))),
            Err(_) => return Err(CmdError::err("the cluster control plane stopped")),
        }
    }
    cx.out().ok();
    Ok(())
}

/// The keys of `slot` in the connection's database (all of them, or at most
/// `max`), read on the shard holding the slot.
async fn keys_in_slot(cx: &mut dyn Coord, slot: u16, max: Option<usize>) -> Vec<Vec<u8>> {
    let shard = slot as usize % cx.engine().nshards();
    let db = cx.db();
    cx.run_on(shard, move |sh| {
        let mut keys = Vec::new();
        let limit = max.unwrap_or(usize::MAX);
        if let Some(d) = sh.db_if_exists(db) {
            d.for_each_in_slot(slot, now_ms(), |e| {
                if keys.len() < limit {
                    keys.push(e.key.to_vec());
                }
            });
        }
        keys
    })
    .await
}

/// CLUSTER SLOTS: one entry per run of consecutive slots with one owner:
/// start, end, then the serving node and its replicas (failed ones left
/// out), each as [host, port, id, {metadata}].
pub fn slots_reply(view: &ClusterView, out: &mut Out) {
    let runs = view.runs();
    out.array(runs.len());
    for (first, last, i) in runs {
        let replicas: Vec<usize> = view.replicas_of(i).into_iter().filter(|&r| !view.is_failed(r)).collect();
        out.array(3 + replicas.len());
        out.int(first as i64);
        out.int(last as i64);
        for n in std::iter::once(i).chain(replicas) {
            let m = &view.members[n];
            out.array(4);
            out.bulk(m.host.as_bytes());
            out.int(m.port as i64);
            out.bulk(m.id.as_bytes());
            out.map(0);
        }
    }
}

/// The members to describe: the configuration's, plus this node while it
/// is not one of them (it has joined no cluster, or is catching up on a
/// configuration from before it joined); a node always lists itself.
fn members<'a>(view: &'a ClusterView, map: &'a SlotMap) -> Vec<(usize, &'a Member)> {
    let mut ms: Vec<(usize, &Member)> = view.members.iter().enumerate().collect();
    if view.me.is_none() {
        ms.push((usize::MAX, &map.myself));
    }
    ms
}

/// CLUSTER SHARDS: per shard (a primary and its replicas), its slot
/// ranges (flat start/end integers) and its nodes with their attributes.
pub fn shards_reply(view: &ClusterView, map: &SlotMap, offset: u64, out: &mut Out) {
    let ms: Vec<(usize, &Member)> = members(view, map).into_iter().filter(|&(i, _)| view.primary_of(i).is_none()).collect();
    out.array(ms.len());
    for (i, m) in ms {
        out.map(2);
        out.bulk(b"slots");
        let ranges = if i == usize::MAX { Vec::new() } else { view.ranges_of(i) };
        out.array(ranges.len() * 2);
        for (a, b) in ranges {
            out.int(a as i64);
            out.int(b as i64);
        }
        out.bulk(b"nodes");
        let replicas = if i == usize::MAX { Vec::new() } else { view.replicas_of(i) };
        out.array(1 + replicas.len());
        for (n, node) in std::iter::once((i, m)).chain(replicas.into_iter().map(|r| (r, &view.members[r]))) {
            out.map(7);
            out.bulk(b"id");
            out.bulk(node.id.as_bytes());
            out.bulk(b"port");
            out.int(node.port as i64);
            out.bulk(b"ip");
            out.bulk(node.host.as_bytes());
            out.bulk(b"endpoint");
            out.bulk(node.host.as_bytes());
            out.bulk(b"role");
            out.bulk(if n == i { &b"master"[..] } else { b"replica" });
            out.bulk(b"replication-offset");
            // Known for this node only (peers do not report theirs).
            out.int(if node.id == map.myself.id { offset as i64 } else { 0 });
            out.bulk(b"health");
            out.bulk(if n != usize::MAX && view.is_failed(n) { &b"fail"[..] } else { b"online" });
        }
    }
}

/// CLUSTER NODES: one line per node, as Redis writes them:
/// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv>
/// <config-epoch> <link-state> <slot ranges...>`. The cluster bus port is
/// the node's gRPC port. `fail` is the group's decision (the view),
/// `fail?` this node's own suspicion (no pong for the node timeout); the
/// ping and pong times and the link state are this node's probes'.
pub fn nodes_text(view: &ClusterView, map: &SlotMap, now: u64) -> String {
    let mut text = String::new();
    for (i, m) in members(view, map) {
        text.push_str(&node_line(view, map, i, m, now));
        text.push('\n');
    }
    text
}

/// One node's CLUSTER NODES line (no newline); `i` is its index in the
/// view (`usize::MAX` for this node before it is a member).
fn node_line(view: &ClusterView, map: &SlotMap, i: usize, m: &Member, now: u64) -> String {
    use std::fmt::Write;
    let myself = m.id == map.myself.id;
    let primary = view.primary_of(i);
    let mut flags = String::from(if myself { "myself," } else { "" });
    flags.push_str(if primary.is_some() { "slave" } else { "master" });
    let (mut ping, mut pong, mut link) = (0, if myself { 0 } else { now }, "connected");
    if !myself {
        if let Some(p) = map.health.peer(&m.id) {
            (ping, pong, link) = (p.ping_sent, p.pong_recv, if p.link_up { "connected" } else { "disconnected" });
        }
    }
    if view.is_failed(i) {
        flags.push_str(",fail");
    } else if !myself && map.health.suspect(&m.id, now) {
        flags.push_str(",fail?");
    }
    let master = primary.map_or("-", |p| view.members[p].id.as_str());
    // Before it joins a cluster, the node shows what ADDSLOTS and
    // SET-CONFIG-EPOCH gave it.
    let (epoch, ranges) = if i == usize::MAX {
        let p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
        (p.epoch, p.ranges())
    } else {
        (view.epoch, view.ranges_of(i))
    };
    let mut line = format!("{} {}:{}@{} {flags} {master} {ping} {pong} {epoch} {link}", m.id, m.host, m.port, m.grpc_port);
    {
        for (a, b) in ranges {
            if a == b {
                let _ = write!(line, " {a}");
            } else {
                let _ = write!(line, " {a}-{b}");
            }
        }
    }
    line
}

/// CLUSTER REPLICAS / SLAVES <node-id>: the CLUSTER NODES lines of the
/// primary's replicas.
fn replicas_reply(view: &ClusterView, map: &SlotMap, id: &[u8], out: &mut Out) -> CmdResult {
    let Some(i) = view.members.iter().position(|m| m.id.as_bytes() == id) else {
        return Err(CmdError::err(format!("Unknown node {}", String::from_utf8_lossy(id))));
    };
    if view.primary_of(i).is_some() {
        return Err(CmdError::err("The specified node is not a master"));
    }
    let replicas = view.replicas_of(i);
    out.array(replicas.len());
    for r in replicas {
        out.bulk(node_line(view, map, r, &view.members[r], now_ms()).as_bytes());
    }
    Ok(())
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] on a replica: it takes over its
/// primary's slots (`cluster::takeover`); the reply comes once the change
/// is committed (Redis answers at once and fails over in the background).
async fn failover(map: &SlotMap, view: &ClusterView, force: bool) -> CmdResult<()> {
    if view.my_primary().is_none() {
        return Err(CmdError::err("You should send CLUSTER FAILOVER to a replica"));
    }
    let control = map.control.get().ok_or_else(|| CmdError::err("the cluster control plane is not running"))?;
    let (reply, done) = tokio::sync::oneshot::channel();
    control.send(Request::Failover { force, reply }).map_err(|_| CmdError::err("the cluster control plane is not running"))?;
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CmdError::err(e)),
        Err(_) => Err(CmdError::err("the cluster control plane stopped")),
    }
}

/// CLUSTER REPLICATE <node-id>: this node becomes a replica of that
/// primary, recorded in the Raft group (the state machine refuses a node
/// that owns slots, a replica as primary, and the node itself).
async fn replicate(map: &SlotMap, view: &ClusterView, id: &[u8]) -> CmdResult<()> {
    let id = String::from_utf8_lossy(id).into_owned();
    if !view.members.iter().any(|m| m.id == id) {
        return Err(CmdError::err(format!("Unknown node {id}")));
    }
    let control = map.control.get().ok_or_else(|| CmdError::err("the cluster control plane is not running"))?;
    let (reply, done) = tokio::sync::oneshot::channel();
    control.send(Request::Replicate { of: id, reply }).map_err(|_| CmdError::err("the cluster control plane is not running"))?;
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CmdError::err(e)),
        Err(_) => Err(CmdError::err("the cluster control plane stopped")),
    }
}

/// CLUSTER INFO. The state is `fail` while some slot has no live owner and
/// `cluster-require-full-coverage` is on (the node then refuses keyed
/// commands with `-CLUSTERDOWN The cluster is down`).
pub fn info_text(view: &ClusterView, map: &SlotMap, now: u64) -> String {
    let (mut assigned, mut size, mut epoch) = (view.assigned(), view.size(), view.epoch);
    if view.members.is_empty() {
        // In no cluster yet: what ADDSLOTS and SET-CONFIG-EPOCH gave it.
        let p = map.pending.lock().unwrap_or_else(|e| e.into_inner());
        (assigned, size, epoch) = (p.slots.len(), usize::from(!p.slots.is_empty()), p.epoch);
    }
    let ok = view.covered || !map.health.full_coverage();
    let state = if ok { "ok" } else { "fail" };
    let (mut fail, mut pfail) = (0, 0);
    for (a, b, i) in view.runs() {
        let n = (b - a) as usize + 1;
        if view.is_down(i) {
            fail += n;
        } else if Some(i) != view.me && map.health.suspect(&view.members[i].id, now) {
            pfail += n;
        }
    }
    format!(
        "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n{}total_cluster_links_buffer_limit_exceeded:0\r\n",
        assigned - fail - pfail,
        view.members.len().max(1),
        size,
        epoch,
        epoch,
        crate::slot::health::bus_stats_text(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8, port: u16) -> Member {
        let id = format!("{:040x}", n);
        Member { id: id.clone(), shard_id: id, host: "127.0.0.1".into(), port, grpc_port: port + 10000, voter: true }
    }

    fn two() -> (SlotMap, ClusterView) {
        let map = SlotMap::new(member(1, 7001));
        let ms = vec![member(1, 7001), member(2, 7002)];
        let mut v = ClusterView::new(&ms[0].id.clone(), 5, ms, []);
        v.assign(0..8192, &format!("{:040x}", 1));
        v.assign(8192..16384, &format!("{:040x}", 2));
        v.assign([100], &format!("{:040x}", 2));
        v.derive(false);
        (map, v)
    }

    #[test]
    fn slots_shape() {
        let (_, v) = two();
        let mut out = Out::new(false);
        slots_reply(&v, &mut out);
        let text = String::from_utf8(out.buf).unwrap();
        assert!(text.starts_with("*4\r\n*3\r\n:0\r\n:99\r\n*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n"), "{text}");
        assert!(text.contains(":100\r\n:100\r\n*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n"));
        assert!(text.ends_with("*0\r\n"));
    }

    #[test]
    fn nodes_and_info() {
        let (map, v) = two();
        let t = nodes_text(&v, &map, 42);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{:040x} 127.0.0.1:7001@17001 myself,master - 0 0 5 connected 0-99 101-8191", 1));
        assert_eq!(lines[1], format!("{:040x} 127.0.0.1:7002@17002 master - 0 42 5 connected 100 8192-16383", 2));
        let i = info_text(&v, &map, 42);
        assert!(i.contains("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"));
        assert!(i.contains("cluster_known_nodes:2\r\ncluster_size:2\r\ncluster_current_epoch:5\r\n"));
        assert!(info_text(&ClusterView::empty(), &map, 42).contains("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"));
        // The second node: suspected by this one, then failed by the group.
        map.health.track(&[&format!("{:040x}", 2)], 1000);
        map.health.ping_sent(&format!("{:040x}", 2), 1500);
        map.health.ping_failed(&format!("{:040x}", 2));
        let t = nodes_text(&v, &map, 3000);
        assert!(t.contains("7002@17002 master,fail? - 1500 0 5 disconnected 100 8192-16383\n"), "{t}");
        let i = info_text(&v, &map, 3000);
        assert!(
            i.contains("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:8191\r\ncluster_slots_pfail:8193\r\n"),
            "{i}"
        );
        let mut f = v.clone();
        f.failed = vec![false, true];
        f.derive(false);
        assert!(nodes_text(&f, &map, 3000).contains("master,fail - 1500 0 5 disconnected"));
        let i = info_text(&f, &map, 3000);
        assert!(i.contains("cluster_state:fail\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:8191\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:8193\r\n"), "{i}");
    }

    #[test]
    fn shards_shape() {
        let (map, v) = two();
        let mut out = Out::new(true);
        shards_reply(&v, &map, 0, &mut out);
        let text = String::from_utf8(out.buf).unwrap();
        assert!(
            text.starts_with("*2\r\n%2\r\n$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:101\r\n:8191\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\nid\r\n"),
            "{text}"
        );
    }
}
