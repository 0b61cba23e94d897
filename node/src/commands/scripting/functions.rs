//! Function libraries: the `#!lua name=<lib>` header, and the payload of
//! FUNCTION DUMP / FUNCTION RESTORE in Redis's format (one
//! `RDB_OPCODE_FUNCTION2` record per library holding its code as an RDB
//! string, then the RDB version and a CRC64), so dumps move between this
//! server and Redis. The bytes are `store::rdb`'s.

use crate::store::rdb;

/// What a library's first line declares.
#[derive(Debug, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    /// Bytes of the header line, without its newline (the compiled code
    /// keeps the newline so line numbers hold).
    pub header_len: usize,
}

/// Parses `#!lua name=<lib>`; errors carry Redis's texts.
pub fn parse_metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match crate::resp::parse::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2..]).into_owned();
    let mut name: Option<String> = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(String::from_utf8_lossy(&p[5..]).into_owned());
        } else {
            return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(p)));
        }
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !super::exec::valid_name(&name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok(Metadata { name, header_len: end })
}

/// Written into payloads: RDB 10 (Redis 7.0) carries functions exactly as 11
/// (Redis 7.2) does, and every Redis with functions accepts it.
const RDB_VERSION_WRITTEN: u16 = 10;
/// The newest RDB version whose payloads we read (Redis 7.2's).
const RDB_VERSION_READ: u16 = 11;

/// FUNCTION DUMP's payload for these library codes.
pub fn dump(codes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        rdb::write_function(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION_WRITTEN.to_le_bytes());
    let crc = rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes in a FUNCTION RESTORE payload.
pub fn restore(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let bad = || "DUMP payload version or checksum are wrong".to_string();
    if payload.len() < 10 {
        return Err(bad());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let crc = u64::from_le_bytes(crc);
    if version > RDB_VERSION_READ || (crc != 0 && crc != rdb::crc64(&payload[..payload.len() - 8])) {
        return Err(bad());
    }
    let mut input = rdb::SliceInput::new(body);
    let mut codes = Vec::new();
    while !input.is_empty() {
        let op = input.take(1).map_err(|_| bad())?[0];
        if op != rdb::opcode::FUNCTION2 {
            return Err("given type is not a function".into());
        }
        codes.push(rdb::read_string(&mut input).map_err(|_| "failed loading the library payload".to_string())?);
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        assert_eq!(parse_metadata(b"#!lua name=mylib\nreturn"), Ok(Metadata { name: "mylib".into(), header_len: 16 }));
        assert_eq!(parse_metadata(b"#!LUA NAME=x\n").map(|m| m.name), Ok("x".into()));
        assert_eq!(parse_metadata(b"return 1"), Err("Missing library metadata".into()));
        assert_eq!(parse_metadata(b"#!lua\n"), Err("Library name was not given".into()));
        assert_eq!(parse_metadata(b"#!lua name=a name=b\n"), Err("Invalid metadata value, name argument was given multiple times".into()));
        assert_eq!(parse_metadata(b"#!lua foo=bar\n"), Err("Invalid metadata value given: foo=bar".into()));
        assert_eq!(parse_metadata(b"#!js name=x\n"), Err("Engine 'js' not found".into()));
        assert!(parse_metadata(b"#!lua name=bad-name\n").is_err());
    }

    #[test]
    fn dump_restore_round_trip() {
        let a = b"#!lua name=a\nredis.register_function('f', function() return 1 end)".to_vec();
        let b = vec![b'x'; 20000];
        let payload = dump(&[&a, &b]);
        assert_eq!(restore(&payload).unwrap(), vec![a, b]);
        let mut broken = payload.clone();
        broken[3] ^= 1;
        assert!(restore(&broken).is_err());
        assert!(restore(b"short").is_err());
    }

    #[test]
    fn restores_a_redis_dump() {
        // FUNCTION DUMP of redis-server 7.0 (its library code is LZF-compressed).
        let hex = "f5c34047406d1f23216c7561206e616d653d6c7a660a72656469732e72656769737465725f66750b6e6374696f6e282766272c20e0000d0a292072657475726e202761e01e00052720656e64290a00ecdda8618a2cfc59";
        let payload: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let codes = restore(&payload).unwrap();
        let want = format!("#!lua name=lzf\nredis.register_function('f', function() return '{}' end)", "a".repeat(40));
        assert_eq!(codes, vec![want.into_bytes()]);
    }
}
