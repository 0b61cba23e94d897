//! `cluster-admin`: the operator's CLI for damselfly clusters. It reaches the
//! cluster through any node's client address (`--seed HOST:PORT`): it asks
//! that node for its gRPC port (`CLUSTER NODES`, the bus port of `myself`)
//! and then calls the node's admin service, which forwards changes to the
//! Raft leader. Output is a table, or JSON with `--json`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use clap::{Parser, Subcommand};
use damselfly_proto::admin::admin_client::AdminClient;
use damselfly_proto::admin::{
    AddNodeRequest, AssignSlotsRequest, CreateRequest, NodeInfoRequest, RemoveNodeRequest, SlotRange, StatusReply, StatusRequest,
};
use tonic::transport::{Channel, Endpoint};

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
    /// Show members, leader, slot ranges and key counts.
    Status,
    /// Add a node (client address HOST:PORT) to the cluster.
    AddNode { node: String },
    /// Remove a node (node id or client address); refused while it owns slots.
    RemoveNode { node: String },
    /// Assign slots (e.g. `0-99,250`) to a node (node id or client address).
    AssignSlots { node: String, slots: String },
}

type Res<T> = Result<T, String>;

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
        Command::Status => admin.status(StatusRequest {}).await.map_err(status_err)?.into_inner(),
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
    };
    let keys = key_counts(&reply).await;
    if cli.json {
        println!("{}", to_json(&reply, &keys));
    } else {
        print!("{}", table(&reply, &keys));
    }
    Ok(())
}

fn status_err(s: tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable if s.message().is_empty() => "node unreachable: check --seed and that the node runs with --cluster".into(),
        _ => s.message().to_string(),
    }
}

fn connect(grpc_addr: &str) -> Res<AdminClient<Channel>> {
    let ep = Endpoint::from_shared(format!("http://{grpc_addr}")).map_err(|e| format!("bad address {grpc_addr}: {e}"))?;
    Ok(AdminClient::new(ep.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(30)).connect_lazy()))
}

/// A node's id, given its id or its client address, from the cluster status.
async fn resolve_id(admin: &mut AdminClient<Channel>, node: &str) -> Res<String> {
    let st = admin.status(StatusRequest {}).await.map_err(status_err)?.into_inner();
    st.members
        .iter()
        .find(|m| m.node_id == node || m.client_addr == node)
        .map(|m| m.node_id.clone())
        .ok_or_else(|| format!("no member '{node}': give a node id or client address shown by `cluster-admin status`"))
}

/// Parses `0-99,250,300-310` into ranges.
fn parse_slots(s: &str) -> Res<Vec<SlotRange>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |x: &str| x.trim().parse::<u32>().ok().filter(|&n| n < 16384);
        match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a <= b => out.push(SlotRange { first: a, last: b }),
            _ => return Err(format!("bad slot range '{part}': use slots 0-16383 like 0-99,250")),
        }
    }
    if out.is_empty() {
        return Err("no slots given: use e.g. 0-99,250".into());
    }
    Ok(out)
}

/// Sends one RESP command over a plain socket and returns the reply text.
fn resp_command(addr: &str, args: &[&str]) -> Res<String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("{addr}: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(text) = complete_reply(&buf) {
            return Ok(text);
        }
    }
    complete_reply(&buf).ok_or_else(|| format!("{addr}: incomplete reply"))
}

/// The text of a complete simple/error/bulk/verbatim reply.
fn complete_reply(b: &[u8]) -> Option<String> {
    let eol = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[..eol]).ok()?;
    match head.as_bytes().first()? {
        b'$' | b'=' => {
            let n: usize = head[1..].parse().ok()?;
            let body = b.get(eol + 2..eol + 2 + n)?;
            let text = String::from_utf8_lossy(body).into_owned();
            Some(text.strip_prefix("txt:").map(str::to_string).unwrap_or(text))
        }
        _ => Some(head.to_string()),
    }
}

/// The gRPC address of the node with client address `addr`: its host and the
/// bus port of `myself` in its CLUSTER NODES.
fn grpc_addr_of(addr: &str) -> Res<String> {
    let (host, _) = addr.rsplit_once(':').ok_or_else(|| format!("'{addr}' is not HOST:PORT"))?;
    let nodes = resp_command(addr, &["CLUSTER", "NODES"])?;
    if nodes.starts_with('-') {
        return Err(format!("{addr} answered {nodes}: start it with --cluster"));
    }
    let line = nodes.lines().find(|l| l.contains("myself")).ok_or_else(|| format!("{addr}: no 'myself' in CLUSTER NODES"))?;
    let port = line
        .split_whitespace()
        .nth(1)
        .and_then(|a| a.split_once('@'))
        .and_then(|(_, p)| p.split(',').next())
        .ok_or_else(|| format!("{addr}: unexpected CLUSTER NODES line '{line}'"))?;
    Ok(format!("{host}:{port}"))
}

/// Keys per member, asked of each node (None when unreachable).
async fn key_counts(st: &StatusReply) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for m in &st.members {
        let n = async {
            let mut c = connect(&m.grpc_addr).ok()?;
            let mut req = tonic::Request::new(NodeInfoRequest {});
            req.set_timeout(Duration::from_secs(2));
            Some(c.node_info(req).await.ok()?.into_inner().keys)
        };
        out.push(n.await);
    }
    out
}

fn ranges_text(ranges: &[SlotRange]) -> String {
    let parts: Vec<String> =
        ranges.iter().map(|r| if r.first == r.last { r.first.to_string() } else { format!("{}-{}", r.first, r.last) }).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn table(st: &StatusReply, keys: &[Option<u64>]) -> String {
    let mut rows = vec![["NODE ID", "ADDRESS", "GRPC", "ROLE", "SLOTS", "RANGES", "KEYS"].map(String::from).to_vec()];
    for (m, k) in st.members.iter().zip(keys) {
        let role = if m.node_id == st.leader_id { format!("{} (leader)", m.role) } else { m.role.clone() };
        rows.push(vec![
            m.node_id.clone(),
            m.client_addr.clone(),
            m.grpc_addr.clone(),
            role,
            m.slot_count.to_string(),
            ranges_text(&m.ranges),
            k.map_or("?".into(), |n| n.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let assigned: u32 = st.members.iter().map(|m| m.slot_count).sum();
    let leader = if st.leader_id.is_empty() { "none" } else { &st.leader_id };
    out.push_str(&format!("epoch {}, leader {leader}, {assigned}/16384 slots assigned\n", st.epoch));
    out
}

fn to_json(st: &StatusReply, keys: &[Option<u64>]) -> serde_json::Value {
    let members: Vec<serde_json::Value> = st
        .members
        .iter()
        .zip(keys)
        .map(|(m, k)| {
            serde_json::json!({
                "node_id": m.node_id,
                "client_addr": m.client_addr,
                "grpc_addr": m.grpc_addr,
                "role": m.role,
                "leader": m.node_id == st.leader_id,
                "slot_count": m.slot_count,
                "slots": m.ranges.iter().map(|r| [r.first, r.last]).collect::<Vec<_>>(),
                "keys": k,
            })
        })
        .collect();
    serde_json::json!({ "epoch": st.epoch, "leader_id": st.leader_id, "members": members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_lists() {
        let r = parse_slots("0-99, 250").unwrap();
        assert_eq!((r[0].first, r[0].last, r[1].first, r[1].last), (0, 99, 250, 250));
        assert!(parse_slots("5-1").is_err());
        assert!(parse_slots("16384").is_err());
        assert!(parse_slots("").is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(complete_reply(b"$3\r\nabc\r\n").as_deref(), Some("abc"));
        assert_eq!(complete_reply(b"$3\r\nab"), None);
        assert_eq!(complete_reply(b"-ERR x\r\n").as_deref(), Some("-ERR x"));
    }
}
