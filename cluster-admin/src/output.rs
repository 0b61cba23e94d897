//! What commands print: the status table (with the migration in progress)
//! and rebalance plans, as text or JSON.

use damselfly_proto::admin::{Migration, NodeInfoReply, StatusReply};

use crate::plan::Move;
use crate::slots::{count, ranges_text};

/// How a member is shown: its client address, else its id.
pub fn node_label<'a>(st: &'a StatusReply, id: &'a str) -> &'a str {
    st.members.iter().find(|m| m.node_id == id && !m.client_addr.is_empty()).map_or(id, |m| m.client_addr.as_str())
}

/// Lays out rows (the first is the header) in columns.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `migration ID: SLOTS (N slots) from A to B`.
pub fn migration_text(st: &StatusReply, m: &Migration) -> String {
    format!(
        "migration {}: slots {} ({} slots) from {} to {}",
        m.id,
        ranges_text(&m.ranges),
        count(&m.ranges),
        node_label(st, &m.from),
        node_label(st, &m.to)
    )
}

/// The moves of a plan as a table with a total line.
pub fn plan_table(st: &StatusReply, moves: &[Move]) -> String {
    let mut rows = vec![["FROM", "TO", "SLOTS", "RANGES"].map(String::from).to_vec()];
    for m in moves {
        rows.push(vec![
            node_label(st, &m.from).to_string(),
            node_label(st, &m.to).to_string(),
            m.slot_count().to_string(),
            ranges_text(&m.ranges),
        ]);
    }
    let slots: u32 = moves.iter().map(Move::slot_count).sum();
    let plural = if moves.len() == 1 { "" } else { "s" };
    format!("{}{} move{plural}, {slots} slots\n", columns(&rows), moves.len())
}

pub fn plan_json(st: &StatusReply, moves: &[Move]) -> serde_json::Value {
    moves
        .iter()
        .map(|m| {
            serde_json::json!({
                "from": m.from,
                "from_addr": node_label(st, &m.from),
                "to": m.to,
                "to_addr": node_label(st, &m.to),
                "slot_count": m.slot_count(),
                "slots": m.ranges.iter().map(|r| [r.first, r.last]).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Bytes as people read them (`1.50M`).
pub fn human_bytes(n: u64) -> String {
    let f = n as f64;
    match n {
        0..1024 => format!("{n}B"),
        1024..1048576 => format!("{:.2}K", f / 1024.0),
        1048576..1073741824 => format!("{:.2}M", f / 1048576.0),
        _ => format!("{:.2}G", f / 1073741824.0),
    }
}

/// The members with their own reports (`health`, in member order; `None`:
/// the node did not answer).
pub fn table(st: &StatusReply, health: &[Option<NodeInfoReply>]) -> String {
    let header =
        ["NODE ID", "ADDRESS", "GRPC", "ROLE", "SLOTS", "RANGES", "OFFSET", "LAG", "UP", "STATE", "KEYS", "MEMORY", "OPS/S", "CLIENTS"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for (i, (m, h)) in st.members.iter().zip(health).enumerate() {
        let mut role = if m.node_id == st.leader_id { format!("{} (leader)", m.role) } else { m.role.clone() };
        if !m.replica_of.is_empty() {
            role.push_str(&format!(" replica of {}", node_label(st, &m.replica_of)));
        }
        if m.failed {
            role.push_str(" FAILED");
        }
        let mut row =
            vec![m.node_id.clone(), m.client_addr.clone(), m.grpc_addr.clone(), role, m.slot_count.to_string(), ranges_text(&m.ranges)];
        let offset = h.as_ref().map_or("?".to_string(), |h| h.repl_offset.to_string());
        let lag = match (m.replica_of.is_empty(), h, lag_bytes(st, health, i)) {
            (true, _, _) => "-".to_string(),
            (false, _, Some(n)) => human_bytes(n),
            (false, Some(h), None) if h.repl_link != "up" => h.repl_link.clone(),
            (false, _, None) => "?".to_string(),
        };
        row.extend([offset, lag]);
        match h {
            Some(h) => {
                let memory = match h.maxmemory {
                    0 => human_bytes(h.used_memory),
                    max => format!("{}/{}", human_bytes(h.used_memory), human_bytes(max)),
                };
                let state = if h.raft_state.is_empty() { "?".to_string() } else { h.raft_state.clone() };
                row.extend(["yes".into(), state, h.keys.to_string(), memory, h.ops_per_sec.to_string(), h.connected_clients.to_string()]);
            }
            None => row.extend(["no", "?", "?", "?", "?", "?"].map(String::from)),
        }
        rows.push(row);
    }
    let mut out = columns(&rows);
    let assigned: u32 = st.members.iter().map(|m| m.slot_count).sum();
    let leader = if st.leader_id.is_empty() { "none" } else { &st.leader_id };
    let down = health.iter().filter(|h| h.is_none()).count();
    let down = if down == 0 { String::new() } else { format!(", {down} unreachable") };
    out.push_str(&format!("epoch {}, leader {leader}, {assigned}/16384 slots assigned{down}\n", st.epoch));
    for m in &st.migrations {
        out.push_str(&migration_text(st, m));
        out.push_str(" (in progress)\n");
    }
    out
}

/// How far a replica (member `i`) is behind its primary, in bytes of the
/// replication stream, from both nodes' own reports; `None` for a primary,
/// or when it cannot be told: either node did not answer, the link is not
/// up, or they are not in the same history (a full sync is due).
pub fn lag_bytes(st: &StatusReply, health: &[Option<NodeInfoReply>], i: usize) -> Option<u64> {
    let m = st.members.get(i)?;
    let r = health.get(i)?.as_ref()?;
    let pi = st.members.iter().position(|p| p.node_id == m.replica_of)?;
    let p = health.get(pi)?.as_ref()?;
    // The two reports are taken at about the same time: a replica a
    // little ahead of its primary's sample is not behind.
    (r.repl_link == "up" && r.repl_id == p.repl_id).then(|| p.repl_offset.saturating_sub(r.repl_offset))
}

pub fn to_json(st: &StatusReply, health: &[Option<NodeInfoReply>]) -> serde_json::Value {
    let members: Vec<serde_json::Value> = st
        .members
        .iter()
        .zip(health)
        .enumerate()
        .map(|(i, (m, h))| {
            serde_json::json!({
                "node_id": m.node_id,
                "client_addr": m.client_addr,
                "grpc_addr": m.grpc_addr,
                "role": m.role,
                "leader": m.node_id == st.leader_id,
                "failed": m.failed,
                "replica_of": (!m.replica_of.is_empty()).then_some(m.replica_of.as_str()),
                "slot_count": m.slot_count,
                "slots": m.ranges.iter().map(|r| [r.first, r.last]).collect::<Vec<_>>(),
                "reachable": h.is_some(),
                "keys": h.as_ref().map(|h| h.keys),
                "raft_state": h.as_ref().map(|h| h.raft_state.as_str()),
                "used_memory": h.as_ref().map(|h| h.used_memory),
                "maxmemory": h.as_ref().map(|h| h.maxmemory),
                "ops_per_sec": h.as_ref().map(|h| h.ops_per_sec),
                "connected_clients": h.as_ref().map(|h| h.connected_clients),
                "uptime_seconds": h.as_ref().map(|h| h.uptime_seconds),
                "repl_offset": h.as_ref().map(|h| h.repl_offset),
                "repl_link": h.as_ref().filter(|h| !h.repl_link.is_empty()).map(|h| h.repl_link.as_str()),
                "repl_lag_bytes": lag_bytes(st, health, i),
            })
        })
        .collect();
    let migrations: Vec<serde_json::Value> = st
        .migrations
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "from": m.from,
                "from_addr": node_label(st, &m.from),
                "to": m.to,
                "to_addr": node_label(st, &m.to),
                "slot_count": count(&m.ranges),
                "slots": m.ranges.iter().map(|r| [r.first, r.last]).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "epoch": st.epoch, "leader_id": st.leader_id, "members": members, "migrations": migrations })
}

#[cfg(test)]
mod tests {
    use super::*;
    use damselfly_proto::admin::{MemberStatus, SlotRange};

    fn cluster() -> StatusReply {
        let m = |id: &str, addr: &str, first, last| MemberStatus {
            node_id: id.into(),
            client_addr: addr.into(),
            grpc_addr: String::new(),
            role: "voter".into(),
            ranges: vec![SlotRange { first, last }],
            slot_count: last - first + 1,
            failed: false,
            replica_of: String::new(),
        };
        StatusReply {
            leader_id: "aa".into(),
            epoch: 4,
            members: vec![m("aa", "10.0.0.1:7001", 0, 8191), m("bb", "10.0.0.2:7001", 8192, 16383)],
            migrations: vec![Migration {
                id: "m1".into(),
                from: "aa".into(),
                to: "bb".into(),
                ranges: vec![SlotRange { first: 100, last: 200 }, SlotRange { first: 250, last: 250 }],
            }],
        }
    }

    #[test]
    fn status_shows_the_migration() {
        let st = cluster();
        let up = NodeInfoReply { keys: 5, used_memory: 3 << 20, ops_per_sec: 120, raft_state: "leader".into(), ..Default::default() };
        let health = [Some(up), None];
        let text = table(&st, &health);
        assert!(
            text.contains("\nmigration m1: slots 100-200,250 (102 slots) from 10.0.0.1:7001 to 10.0.0.2:7001 (in progress)\n"),
            "{text}"
        );
        let json = to_json(&st, &health);
        let m = &json["migrations"][0];
        assert_eq!((m["id"].as_str(), m["from_addr"].as_str(), m["to"].as_str()), (Some("m1"), Some("10.0.0.1:7001"), Some("bb")));
        assert_eq!(m["slot_count"], 102);
        assert_eq!(m["slots"], serde_json::json!([[100, 200], [250, 250]]));
        let idle = StatusReply { migrations: vec![], ..st };
        assert!(!table(&idle, &[None, None]).contains("migration"));
        assert!(table(&idle, &[None, None]).contains(", 2 unreachable\n"));
        assert_eq!(to_json(&idle, &[None, None])["migrations"], serde_json::json!([]));
    }

    #[test]
    fn status_shows_each_members_health() {
        let st = cluster();
        let up = NodeInfoReply {
            keys: 5,
            used_memory: 3 << 20,
            maxmemory: 64 << 20,
            ops_per_sec: 120,
            connected_clients: 2,
            raft_state: "leader".into(),
            ..Default::default()
        };
        let health = [Some(up), None];
        let text = table(&st, &health);
        fn tail(line: &str) -> Vec<&str> {
            let mut v: Vec<&str> = line.split_whitespace().rev().take(6).collect();
            v.reverse();
            v
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(tail(lines[0]), ["UP", "STATE", "KEYS", "MEMORY", "OPS/S", "CLIENTS"]);
        assert_eq!(tail(lines[1]), ["yes", "leader", "5", "3.00M/64.00M", "120", "2"]);
        assert_eq!(tail(lines[2]), ["no", "?", "?", "?", "?", "?"]);
        assert!(lines[3].ends_with("slots assigned, 1 unreachable"), "{text}");
        let json = to_json(&st, &health);
        let (a, b) = (&json["members"][0], &json["members"][1]);
        assert_eq!((a["reachable"].as_bool(), a["keys"].as_u64(), a["raft_state"].as_str()), (Some(true), Some(5), Some("leader")));
        assert_eq!((a["used_memory"].as_u64(), a["ops_per_sec"].as_u64()), (Some(3 << 20), Some(120)));
        assert_eq!((b["reachable"].as_bool(), b["keys"].is_null(), b["used_memory"].is_null()), (Some(false), true, true));
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.50K");
    }

    #[test]
    fn status_shows_how_far_each_replica_is_behind() {
        let mut st = cluster();
        let replica =
            |id: &str, of: &str| MemberStatus { node_id: id.into(), client_addr: id.into(), replica_of: of.into(), ..Default::default() };
        st.members.extend([replica("r1", "aa"), replica("r2", "aa"), replica("r3", "bb"), replica("r4", "bb")]);
        let info = |id: &str, offset, link: &str| NodeInfoReply {
            repl_id: id.into(),
            repl_offset: offset,
            repl_link: link.into(),
            ..Default::default()
        };
        let health = [
            Some(info("h1", 5000, "")),
            Some(info("h2", 100, "")),
            // 1200 bytes behind; caught up (a sample after its primary's).
            Some(info("h1", 3800, "up")),
            Some(info("h1", 5100, "up")),
            // Syncing (another history still); unreachable.
            Some(info("h0", 0, "sync")),
            None,
        ];
        let lags: Vec<Option<u64>> = (0..6).map(|i| lag_bytes(&st, &health, i)).collect();
        assert_eq!(lags, [None, None, Some(1200), Some(0), None, None]);
        let text = table(&st, &health);
        let cells: Vec<Vec<&str>> = text.lines().skip(1).take(6).map(|l| l.split_whitespace().collect()).collect();
        // OFFSET and LAG come before the six health columns.
        let repl = |row: &Vec<&str>| (row[row.len() - 8].to_string(), row[row.len() - 7].to_string());
        let want = [("5000", "-"), ("100", "-"), ("3800", "1.17K"), ("5100", "0B"), ("0", "sync"), ("?", "?")];
        for (row, (offset, lag)) in cells.iter().zip(want) {
            assert_eq!(repl(row), (offset.to_string(), lag.to_string()), "{text}");
        }
        let json = to_json(&st, &health);
        let r1 = &json["members"][2];
        assert_eq!(
            (r1["repl_offset"].as_u64(), r1["repl_link"].as_str(), r1["repl_lag_bytes"].as_u64()),
            (Some(3800), Some("up"), Some(1200))
        );
        let p = &json["members"][0];
        assert_eq!((p["repl_offset"].as_u64(), p["repl_link"].is_null(), p["repl_lag_bytes"].is_null()), (Some(5000), true, true));
    }

    #[test]
    fn plans() {
        let st = cluster();
        let moves = vec![
            Move { from: "aa".into(), to: "bb".into(), ranges: vec![SlotRange { first: 0, last: 9 }] },
            Move { from: "bb".into(), to: "cc".into(), ranges: vec![SlotRange { first: 20, last: 20 }, SlotRange { first: 30, last: 31 }] },
        ];
        assert_eq!(
            plan_table(&st, &moves),
            "FROM           TO             SLOTS  RANGES\n\
             10.0.0.1:7001  10.0.0.2:7001  10     0-9\n\
             10.0.0.2:7001  cc             3      20,30-31\n\
             2 moves, 13 slots\n"
        );
        let json = plan_json(&st, &moves);
        assert_eq!(json[1]["to_addr"], "cc");
        assert_eq!(json[1]["slots"], serde_json::json!([[20, 20], [30, 31]]));
        assert_eq!(json[0]["slot_count"], 10);
    }
}
