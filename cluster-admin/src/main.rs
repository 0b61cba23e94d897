//! `cluster-admin`: the operator's CLI for damselfly clusters. It reaches the
//! cluster through any node's client address (`--seed HOST:PORT`): it asks
//! that node for its gRPC port (`CLUSTER NODES`, the bus port of `myself`)
//! and then calls the node's admin service, which forwards changes to the
//! Raft leader. Output is a table, or JSON with `--json`.

mod conn;
mod migrate;
mod output;
mod plan;
mod progress;
mod slots;

use std::collections::BTreeMap;

use clap::{Parser, Subcommand};
use damselfly_proto::admin::{
    AbortMigrationRequest, AcceptNodeRequest, AddNodeRequest, AddReplicaRequest, AssignSlotsRequest, CreateRequest, RemoveNodeRequest,
    SlotRange, StatusReply,
};
use serde_json::{Map, Value};

use conn::{connect, connect_for_moves, grpc_addr_of, health, resolve_in, status, status_err, Admin};
use migrate::run_moves;
use output::{migration_text, node_label, plan_json, plan_table, table, to_json};
use plan::{drain, parse_weight, plan, Move};
use progress::{moved_text, Moved};
use slots::{count, parse_slots, SLOTS};

#[derive(Parser, Debug)]
#[command(name = "cluster-admin", version, about = "Operate a damselfly cluster")]
struct Cli {
    /// Any node's client address (HOST:PORT).
    #[arg(long, global = true, default_value = "127.0.0.1:6379")]
    seed: String,
    /// The cluster bus secret (the nodes' `--cluster-secret`); also read
    /// from DAMSELFLY_CLUSTER_SECRET. Needed when the nodes have one.
    #[arg(long, global = true, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// File holding the cluster bus secret (trailing newline dropped).
    #[arg(long, global = true)]
    secret_file: Option<String>,
    /// Reach the nodes' gRPC bus over mutual TLS (nodes started with
    /// `--tls-cluster yes`); needs --tls-cert, --tls-key and --tls-ca.
    #[arg(long, global = true, requires_all = ["tls_cert", "tls_key", "tls_ca"])]
    tls: bool,
    /// Client certificate (PEM) presented to the nodes, signed by their CA.
    #[arg(long, global = true, requires = "tls")]
    tls_cert: Option<String>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, requires = "tls")]
    tls_key: Option<String>,
    /// CA certificate (PEM) the nodes' certificates must be signed by.
    #[arg(long, global = true, requires = "tls")]
    tls_ca: Option<String>,
    /// User the RESP connections to the nodes authenticate as (with
    /// --password; without, the default user).
    #[arg(long, global = true)]
    user: Option<String>,
    /// Password for the nodes' client port (`requirepass` or the ACL user's);
    /// also read from DAMSELFLY_PASSWORD.
    #[arg(long, global = true)]
    password: Option<String>,
    /// Machine-readable JSON output instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Form a cluster of the seed and the given nodes (client addresses
    /// HOST:PORT) and spread the slots evenly.
    Create { nodes: Vec<String> },
    /// Show members, leader, slot ranges and the migration in progress, if
    /// any, with each member's health as it reports it: reachable, Raft
    /// state, keys, memory (used/maxmemory), commands per second, clients,
    /// replication offset and, for a replica, how far it is behind its
    /// primary (bytes of the replication stream; its link state when it is
    /// not up).
    Status,
    /// `status`, refreshed in place every second until Ctrl-C (or
    /// `--count` samples). With `--json`, one sample, as `status --json`.
    Top {
        /// Stop after this many samples.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Add a node (client address HOST:PORT) to the cluster.
    AddNode { node: String },
    /// Remove a node (node id or client address), first moving its slots
    /// away.
    ///
    /// A node that owns slots is drained first: its slots move, keys
    /// included, to the other members (spread as `rebalance` would with the
    /// node's weight 0; slots elsewhere stay put), one move at a time with
    /// progress on stderr. Then the node leaves the cluster. If a move fails
    /// or is interrupted, the moves done stay done: run the command again to
    /// continue.
    RemoveNode {
        /// Node id or client address (HOST:PORT).
        node: String,
    },
    /// Assign slots (e.g. `0-99,250`) to a node (node id or client address)
    /// without moving keys: for slots that hold none.
    AssignSlots { node: String, slots: String },
    /// Move slots, keys included, from one member to another while clients
    /// keep using them.
    ///
    /// Progress (phase, keys and bytes sent) is shown on stderr; then the
    /// cluster status is printed, with what moved (keys, bytes, the longest
    /// write pause, seconds; under "moved" with --json).
    MoveSlots {
        /// Source: node id or client address (HOST:PORT); it must own every slot given.
        #[arg(long)]
        from: String,
        /// Target: node id or client address (HOST:PORT).
        #[arg(long)]
        to: String,
        /// Slots and ranges, e.g. `0-99,250`.
        #[arg(long)]
        slots: String,
    },
    /// Spread the slots over the members in proportion to their weights,
    /// moving keys with them.
    ///
    /// Prints the plan (moves from members above their share to members
    /// below it, in as few moves and contiguous ranges as possible), then
    /// runs the moves one at a time with progress on stderr. The plan is
    /// computed from the current slot layout, so after an interruption
    /// running the same command again continues the job. A member within one
    /// slot of its share counts as balanced. Refused while a migration runs.
    Rebalance {
        /// A member's weight, NODE=W (node id or client address, whole
        /// number; default 1). Weight 0 moves all of a member's slots away.
        /// Repeat for several members.
        #[arg(long = "weight", value_name = "NODE=W")]
        weights: Vec<String>,
        /// Print the plan and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Abandon the migration in progress (e.g. when its source node died):
    /// the source keeps the slots.
    AbortMigration,
    /// Make a node a replica of a primary: it follows the primary's data
    /// (full sync, then the stream of writes) and serves reads to READONLY
    /// clients. A node that is not a member yet (client address HOST:PORT)
    /// is added first; it must own no slots.
    AddReplica {
        /// Node id or client address (HOST:PORT).
        node: String,
        /// The primary: node id or client address.
        #[arg(long = "of")]
        of: String,
    },
    /// Planned failover: the replica NODE takes over its primary's slots.
    /// The primary holds writes while the replica catches up, so no
    /// acknowledged write is lost (CLUSTER FAILOVER sent to the replica).
    Failover {
        /// The replica: node id or client address (HOST:PORT).
        node: String,
        /// Do not wait for the primary (it may be down): CLUSTER FAILOVER
        /// FORCE.
        #[arg(long)]
        force: bool,
    },
    /// Accept a member back after it restarted without the data of its
    /// slots (no persistence): it serves them again, empty. Until then the
    /// cluster keeps it failed and those slots are not served (unless a
    /// replica takes them over).
    Accept {
        /// Node id or client address (HOST:PORT).
        node: String,
    },
}

pub type Res<T> = Result<T, String>;

/// assign-slots only changes owners: refuse slots whose current (reachable)
/// owner still holds keys in them (those keys would be dropped), pointing
/// to move-slots.
fn refuse_slots_with_keys(st: &StatusReply, to: &str, ranges: &[SlotRange]) -> Res<()> {
    for m in st.members.iter().filter(|m| m.node_id != to) {
        let slots: Vec<u32> =
            ranges.iter().flat_map(|r| r.first..=r.last).filter(|s| m.ranges.iter().any(|o| o.first <= *s && *s <= o.last)).collect();
        if slots.is_empty() {
            continue;
        }
        // An owner that cannot be reached has no keys to lose any more
        // (taking over a dead node's slots is what assign-slots is for).
        let Ok(counts) = conn::keys_in_slots(&m.client_addr, &slots) else { continue };
        let (full, keys): (Vec<u32>, u64) =
            slots.iter().zip(&counts).filter(|(_, &n)| n > 0).fold((Vec::new(), 0), |(mut v, k), (s, n)| {
                v.push(*s);
                (v, k + n)
            });
        if let Some(first) = full.first() {
            return Err(format!(
                "{} still holds {keys} keys in {} of these slots (slot {first} first): assign-slots only changes the owner and those keys would be dropped; use move-slots to move slots with their keys",
                m.client_addr,
                full.len()
            ));
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail(format!("cannot start runtime: {e}")),
    };
    if let Err(e) = rt.block_on(run(cli)) {
        fail(e);
    }
}

fn fail(msg: String) -> ! {
    eprintln!("cluster-admin: {msg}");
    std::process::exit(1);
}

/// The secret from --secret, --secret-file or DAMSELFLY_CLUSTER_SECRET, in
/// that order.
fn secret_of(cli: &Cli) -> Res<Option<String>> {
    if let Some(s) = &cli.secret {
        damselfly_proto::bus_auth::validate(s).map_err(|e| format!("--secret: {e}"))?;
        return Ok(Some(s.clone()));
    }
    if let Some(path) = &cli.secret_file {
        return damselfly_proto::bus_auth::from_file(path).map(Some);
    }
    match std::env::var("DAMSELFLY_CLUSTER_SECRET") {
        Ok(s) if !s.is_empty() => {
            damselfly_proto::bus_auth::validate(&s).map_err(|e| format!("DAMSELFLY_CLUSTER_SECRET: {e}"))?;
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

async fn run(cli: Cli) -> Res<()> {
    conn::set_secret(secret_of(&cli)?.as_deref())?;
    let password = cli.password.clone().or_else(|| std::env::var("DAMSELFLY_PASSWORD").ok().filter(|p| !p.is_empty()));
    if cli.user.is_some() && password.is_none() {
        return Err("--user needs --password (or DAMSELFLY_PASSWORD)".into());
    }
    conn::set_resp_auth(cli.user.clone(), password);
    if cli.tls {
        conn::set_tls(
            cli.tls_cert.as_deref().unwrap_or_default(),
            cli.tls_key.as_deref().unwrap_or_default(),
            cli.tls_ca.as_deref().unwrap_or_default(),
        )?;
    }
    let seed_grpc = grpc_addr_of(&cli.seed)?;
    let mut admin = connect(&seed_grpc)?;
    // Extra top-level fields of the JSON output ("moved", "plan").
    let mut extra = Map::new();
    let reply = match cli.command {
        Command::Create { nodes } => {
            let mut grpc_addrs = Vec::new();
            for n in &nodes {
                let g = grpc_addr_of(n)?;
                if g != seed_grpc && !grpc_addrs.contains(&g) {
                    grpc_addrs.push(g);
                }
            }
            admin.create(CreateRequest { grpc_addrs }).await.map_err(status_err)?.into_inner()
        }
        Command::Status => status(&mut admin).await?,
        Command::Top { count } => return top(&mut admin, count, cli.json).await,
        Command::AddNode { node } => {
            let grpc_addr = grpc_addr_of(&node)?;
            admin.add_node(AddNodeRequest { grpc_addr, form_cluster: false }).await.map_err(status_err)?.into_inner()
        }
        Command::RemoveNode { node } => {
            let st = status(&mut admin).await?;
            let node_id = resolve_in(&st, &node)?;
            let moves = drain_moves(&st, &node_id)?;
            if !moves.is_empty() {
                refuse_while_migrating(&st)?;
                human(cli.json, &format!("draining {}:\n{}", node_label(&st, &node_id), plan_table(&st, &moves)));
                let again = "fix the cause and run remove-node again to continue";
                let moved = run_moves(&mut connect_for_moves(&seed_grpc)?, &st, &moves, again).await?;
                extra.insert("plan".into(), plan_json(&st, &moves));
                extra.insert("moved".into(), moved.to_json());
                human(cli.json, &format!("drained: {}\n", moved_text(&moved)));
            }
            admin.remove_node(RemoveNodeRequest { node_id }).await.map_err(status_err)?.into_inner()
        }
        Command::AssignSlots { node, slots } => {
            let ranges = parse_slots(&slots)?;
            let st = status(&mut admin).await?;
            let node_id = resolve_in(&st, &node)?;
            refuse_slots_with_keys(&st, &node_id, &ranges)?;
            admin.assign_slots(AssignSlotsRequest { node_id, ranges }).await.map_err(status_err)?.into_inner()
        }
        Command::MoveSlots { from, to, slots } => {
            let ranges = parse_slots(&slots)?;
            let st = status(&mut admin).await?;
            let (from, to) = (resolve_in(&st, &from)?, resolve_in(&st, &to)?);
            if from == to {
                return Err(format!("--from and --to are the same member ({})", node_label(&st, &from)));
            }
            refuse_while_migrating(&st)?;
            let mv = Move { from, to, ranges };
            let moved = run_moves(&mut connect_for_moves(&seed_grpc)?, &st, std::slice::from_ref(&mv), "").await?;
            extra.insert("moved".into(), moved.to_json());
            status(&mut admin).await?
        }
        Command::Rebalance { weights, dry_run } => {
            let st = status(&mut admin).await?;
            refuse_while_migrating(&st)?;
            let mut by_id = BTreeMap::new();
            for w in &weights {
                let (node, weight) = parse_weight(w)?;
                let id = resolve_in(&st, &node)?;
                if by_id.insert(id, weight).is_some() {
                    return Err(format!("two weights given for {node}"));
                }
            }
            let moves = plan(&st.members, &by_id)?;
            let assigned: u32 = st.members.iter().map(|m| count(&m.ranges)).sum();
            if assigned < SLOTS {
                eprintln!("note: {} slots are not assigned to any member and are left alone", SLOTS - assigned);
            }
            if moves.is_empty() {
                if cli.json {
                    extra.insert("plan".into(), Value::Array(vec![]));
                    extra.insert("moved".into(), Moved::default().to_json());
                    print_status(&st, extra, true).await;
                } else {
                    println!("nothing to move: every member owns its share of the slots");
                }
                return Ok(());
            }
            if dry_run {
                if cli.json {
                    println!("{}", serde_json::json!({ "dry_run": true, "plan": plan_json(&st, &moves) }));
                } else {
                    print!("{}", plan_table(&st, &moves));
                    println!("dry run: nothing moved");
                }
                return Ok(());
            }
            human(cli.json, &plan_table(&st, &moves));
            let again = "fix the cause and run rebalance again to continue";
            let moved = run_moves(&mut connect_for_moves(&seed_grpc)?, &st, &moves, again).await?;
            human(cli.json, &format!("rebalanced: {}\n", moved_text(&moved)));
            extra.insert("plan".into(), plan_json(&st, &moves));
            extra.insert("moved".into(), moved.to_json());
            status(&mut admin).await?
        }
        Command::AbortMigration => admin.abort_migration(AbortMigrationRequest {}).await.map_err(status_err)?.into_inner(),
        Command::AddReplica { node, of } => {
            let mut st = status(&mut admin).await?;
            if resolve_in(&st, &node).is_err() {
                let grpc_addr = grpc_addr_of(&node)?;
                st = admin.add_node(AddNodeRequest { grpc_addr, form_cluster: false }).await.map_err(status_err)?.into_inner();
            }
            let (node_id, primary_id) = (resolve_in(&st, &node)?, resolve_in(&st, &of)?);
            admin.add_replica(AddReplicaRequest { node_id, primary_id }).await.map_err(status_err)?.into_inner()
        }
        Command::Failover { node, force } => {
            let st = status(&mut admin).await?;
            let id = resolve_in(&st, &node)?;
            let addr = st.members.iter().find(|m| m.node_id == id).map(|m| m.client_addr.clone()).unwrap_or_default();
            let mut args = vec!["CLUSTER", "FAILOVER"];
            if force {
                args.push("FORCE");
            }
            let reply = conn::resp_command(&addr, &args)?;
            if reply.starts_with('-') {
                return Err(format!("{addr}: {}", reply.trim_end()));
            }
            status(&mut admin).await?
        }
        Command::Accept { node } => {
            let st = status(&mut admin).await?;
            let node_id = resolve_in(&st, &node)?;
            admin.accept_node(AcceptNodeRequest { node_id }).await.map_err(status_err)?.into_inner()
        }
    };
    print_status(&reply, extra, cli.json).await;
    Ok(())
}

/// Prints the status table, or its JSON with the `extra` fields added.
async fn print_status(st: &StatusReply, extra: Map<String, Value>, json: bool) {
    let health = health(st).await;
    if json {
        let mut v = to_json(st, &health);
        if let Value::Object(o) = &mut v {
            o.extend(extra);
        }
        println!("{v}");
    } else {
        print!("{}", table(st, &health));
    }
}

/// `top`: the status with health, redrawn every second (in place on a
/// terminal, one sample after another otherwise) until Ctrl-C or `count`
/// samples; with `json`, one sample.
async fn top(admin: &mut Admin, count: Option<u64>, json: bool) -> Res<()> {
    if json {
        print_status(&status(admin).await?, Map::new(), true).await;
        return Ok(());
    }
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    let mut samples = 0;
    loop {
        let mut out = String::new();
        if tty {
            // Cursor home, clear the screen.
            out.push_str("\x1b[H\x1b[2J");
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86400;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        out.push_str(&format!("cluster-admin top, every 1 s (Ctrl-C stops), {h:02}:{m:02}:{s:02} UTC\n"));
        // The seed may be restarting: say so and try again next second.
        match status(admin).await {
            Ok(st) => out.push_str(&table(&st, &health(&st).await)),
            Err(e) => out.push_str(&format!("status: {e}\n")),
        }
        if !tty {
            out.push('\n');
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
        drop(stdout);
        samples += 1;
        if count.is_some_and(|c| samples >= c) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Text for people: on stdout, or on stderr when stdout carries JSON.
fn human(json: bool, text: &str) {
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// Refuses to start moves while the configuration records a migration.
fn refuse_while_migrating(st: &StatusReply) -> Res<()> {
    match st.migrations.first() {
        None => Ok(()),
        Some(m) => Err(format!("a migration is already running: {}; wait for it or run abort-migration", migration_text(st, m))),
    }
}

/// The moves that empty `node` before it is removed.
fn drain_moves(st: &StatusReply, node: &str) -> Res<Vec<Move>> {
    let owns = st.members.iter().any(|m| m.node_id == node && !m.ranges.is_empty());
    if owns && st.members.len() < 2 {
        return Err(format!("{} is the only member: no other node can take its slots", node_label(st, node)));
    }
    drain(&st.members, node)
}
