//! What commands print: the status table and its JSON form.

use damselfly_proto::admin::StatusReply;

use crate::slots::ranges_text;

pub fn table(st: &StatusReply, keys: &[Option<u64>]) -> String {
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

pub fn to_json(st: &StatusReply, keys: &[Option<u64>]) -> serde_json::Value {
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
