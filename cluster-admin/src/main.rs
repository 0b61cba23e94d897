//! `cluster-admin`: the operator's CLI for damselfly clusters. Cluster mode is
//! not built yet, so every subcommand explains that and exits non-zero; the
//! command-line surface is fixed here so scripts can be written against it.

use clap::{Parser, Subcommand};

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
    /// Form a cluster from the given nodes and spread the slots evenly.
    Create { nodes: Vec<String> },
    /// Show members, leader, slot ranges and key counts.
    Status,
    /// Add a node to the cluster.
    AddNode { node: String },
    /// Remove a node (refused while it owns slots).
    RemoveNode { node: String },
    /// Assign slots to a node.
    AssignSlots { node: String, slots: String },
}

fn main() {
    let cli = Cli::parse();
    eprintln!(
        "cluster-admin: '{}' needs cluster mode, which this version of damselfly does not have yet (seed {}).",
        match cli.command {
            Command::Create { .. } => "create",
            Command::Status => "status",
            Command::AddNode { .. } => "add-node",
            Command::RemoveNode { .. } => "remove-node",
            Command::AssignSlots { .. } => "assign-slots",
        },
        cli.seed
    );
    std::process::exit(2);
}
