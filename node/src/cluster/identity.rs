//! This node's cluster identity: a Redis-style 40-hex node id, chosen once
//! and kept in the data directory (`<dir>/cluster-node-id`) so a restarted
//! node comes back as the same member.

use std::path::Path;

/// File (under the data directory) holding the node id.
pub const NODE_ID_FILE: &str = "cluster-node-id";

/// Whether `s` is a valid node id: exactly 40 lower-case hex digits.
pub fn is_node_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random node id.
pub fn random_id() -> String {
    (0..40).map(|_| char::from_digit(rand::random_range(0..16u32), 16).unwrap_or('0')).collect()
}

/// The node id to use: `given` (which must then match a stored one, if any),
/// else the stored one, else a new one, which is stored.
pub fn load_or_create(dir: &Path, given: Option<&str>) -> Result<String, String> {
    let path = dir.join(NODE_ID_FILE);
    let stored = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if let Some(s) = &stored {
        if !is_node_id(s) {
            return Err(format!("{} does not hold a 40-hex node id; remove it to get a new identity", path.display()));
        }
    }
    let id = match (given, stored) {
        (Some(g), _) if !is_node_id(g) => return Err(format!("--cluster-node-id must be 40 lower-case hex digits, got '{g}'")),
        (Some(g), Some(s)) if g != s => {
            return Err(format!(
                "--cluster-node-id {g} differs from the id {s} stored in {}; a data directory belongs to one node",
                path.display()
            ))
        }
        (Some(g), _) => g.to_string(),
        (None, Some(s)) => return Ok(s),
        (None, None) => random_id(),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!("{NODE_ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_node_id(&random_id()));
        assert!(!is_node_id("abc"));
        assert!(!is_node_id(&"G".repeat(40)));
    }

    #[test]
    fn persisted_across_restarts() {
        let dir = std::env::temp_dir().join(format!("damselfly-id-{}", random_id()));
        let a = load_or_create(&dir, None).unwrap();
        assert_eq!(load_or_create(&dir, None).unwrap(), a);
        assert_eq!(load_or_create(&dir, Some(&a)).unwrap(), a);
        assert!(load_or_create(&dir, Some(&random_id())).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
