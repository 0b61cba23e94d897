//! Lua scripting (EVAL and friends) and Redis 7 functions (FUNCTION, FCALL).
//!
//! One sandboxed Lua 5.1 VM per shard thread (`vm`); the node-wide script
//! cache and function libraries are a registry of the engine
//! (`shard::scripts`); Redis <-> Lua value conversion
//! (`convert`); the libraries scripts expect (`libs`: bit, cjson, cmsgpack,
//! struct); and execution (`exec`): a script whose declared keys live on
//! one shard runs there as one job, with `redis.call` executing commands
//! directly on that shard; a script that turns out to need other shards is
//! rolled back through the keyspace's undo log and run again while its
//! connection holds every shard (see docs/ARCHITECTURE.md, "Scripting").
//! The commands themselves are in `commands::scripting`.

pub mod convert;
pub mod libs;

pub use crate::shard::scripts::Sha;

/// SHA1 of `body`, as Redis names scripts.
pub fn sha1_hex(body: &[u8]) -> Sha {
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// Parses a client-given SHA (any case); `None` unless 40 hex digits.
pub fn parse_sha(b: &[u8]) -> Option<Sha> {
    if b.len() != 40 || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 40];
    for (d, s) in out.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(out)
}

/// Script and function flags (shebang `flags=` and `register_function`).
pub mod flags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang line: Redis's compatibility mode,
    /// where flags come from the commands the script runs.
    pub const EVAL_COMPAT: u32 = 1 << 5;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn by_name(name: &[u8]) -> Option<u32> {
        NAMES.iter().find(|(_, n)| n.as_bytes() == name).map(|(f, _)| *f)
    }
}

/// Reads an EVAL script's shebang line (`#!lua flags=no-writes,...`):
/// returns the flags and the length of the line (kept out of the compiled
/// code, its newline kept so line numbers stay right). No shebang means
/// compatibility mode. Errors carry Redis's texts.
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match crate::resp::parse::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", String::from_utf8_lossy(&parts[0])));
    }
    let mut f = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", String::from_utf8_lossy(p)));
        };
        for name in list.split(|&b| b == b',') {
            if name.is_empty() && list.is_empty() {
                continue;
            }
            match flags::by_name(name) {
                Some(bit) => f |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {}", String::from_utf8_lossy(name))),
            }
        }
    }
    Ok((f, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        // SCRIPT LOAD "return 1" in Redis.
        assert_eq!(&sha1_hex(b"return 1"), b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(&sha1_hex(b""), b"da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(parse_sha(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"), Some(sha1_hex(b"return 1")));
        assert_eq!(parse_sha(b"abc"), None);
    }

    #[test]
    fn shebangs() {
        assert_eq!(parse_shebang(b"return 1"), Ok((flags::EVAL_COMPAT, 0)));
        assert_eq!(parse_shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes,allow-cross-slot-keys\nreturn 1"),
            Ok((flags::NO_WRITES | flags::ALLOW_CROSS_SLOT, 43))
        );
        assert_eq!(parse_shebang(b"#!lua flags=\nreturn 1"), Ok((0, 12)));
        assert_eq!(parse_shebang(b"#!lua"), Err("Invalid script shebang".into()));
        assert_eq!(parse_shebang(b"#!python\n"), Err("Unexpected engine in script shebang: #!python".into()));
        assert_eq!(parse_shebang(b"#!lua flags=bogus\n"), Err("Unexpected flag in script shebang: bogus".into()));
        assert_eq!(parse_shebang(b"#!lua name=x\n"), Err("Unknown lua shebang option: name=x".into()));
    }
}
