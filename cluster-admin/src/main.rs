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

use clap::{Parser, Subcommand};
use damselfly_proto::admin::{AbortMigrationRequest, AddNodeRequest, AssignSlotsRequest, CreateRequest, RemoveNodeRequest, StatusReply};
use serde_json::{Map, Value};

use conn::{connect, connect_for_moves, grpc_addr_of, key_counts, resolve_id, resolve_in, status, status_err};
use migrate::run_moves;
use output::{migration_text, node_label, table, to_json};
use plan::Move;
use slots::parse_slots;

#[derive(Parser, Debug)]
#[command(name = "cluster-admin", version, about = "Operate a damselfly cluster")]
struct Cli {
    /// Any node's client address (HOST:PORT).
    #[arg(long, global = true, default_value = "127.0.0.1:6379")]
    seed: String,
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
    /// Show members, leader, slot ranges, key counts and the migration in
    /// progress, if any.
    Status,
    /// Add a node (client address HOST:PORT) to the cluster.
    AddNode { node: String },
    /// Remove a node (node id or client address); refused while it owns slots.
    RemoveNode { node: String },
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
    /// Abandon the migration in progress (e.g. when its source node died):
    /// the source keeps the slots.
    AbortMigration,
}

pub type Res<T> = Result<T, String>;

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

async fn run(cli: Cli) -> Res<()> {
    let seed_grpc = grpc_addr_of(&cli.seed)?;
    let mut admin = connect(&seed_grpc)?;
    // Extra top-level fields of the JSON output ("moved").
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
        Command::AddNode { node } => {
            let grpc_addr = grpc_addr_of(&node)?;
            admin.add_node(AddNodeRequest { grpc_addr }).await.map_err(status_err)?.into_inner()
        }
        Command::RemoveNode { node } => {
            let node_id = resolve_id(&mut admin, &node).await?;
            admin.remove_node(RemoveNodeRequest { node_id }).await.map_err(status_err)?.into_inner()
        }
        Command::AssignSlots { node, slots } => {
            let node_id = resolve_id(&mut admin, &node).await?;
            let ranges = parse_slots(&slots)?;
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
        Command::AbortMigration => admin.abort_migration(AbortMigrationRequest {}).await.map_err(status_err)?.into_inner(),
    };
    print_status(&reply, extra, cli.json).await;
    Ok(())
}

/// Prints the status table, or its JSON with the `extra` fields added.
async fn print_status(st: &StatusReply, extra: Map<String, Value>, json: bool) {
    let keys = key_counts(st).await;
    if json {
        let mut v = to_json(st, &keys);
        if let Value::Object(o) = &mut v {
            o.extend(extra);
        }
        println!("{v}");
    } else {
        print!("{}", table(st, &keys));
    }
}

/// Refuses to start moves while the configuration records a migration.
fn refuse_while_migrating(st: &StatusReply) -> Res<()> {
    match st.migrations.first() {
        None => Ok(()),
        Some(m) => Err(format!("a migration is already running: {}; wait for it or run abort-migration", migration_text(st, m))),
    }
}
