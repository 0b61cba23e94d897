//! Function libraries: the `#!lua name=<lib>` header, and the payload of
//! FUNCTION DUMP / FUNCTION RESTORE in Redis's format (one
//! `RDB_OPCODE_FUNCTION2` record per library holding its code as an RDB
//! string, then the RDB version and a CRC64), so dumps move between this
//! server and Redis.

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

const OPCODE_FUNCTION2: u8 = 245;
/// Written into payloads: RDB 10 (Redis 7.0) carries functions exactly as 11
/// (Redis 7.2) does, and every Redis with functions accepts it.
const RDB_VERSION_WRITTEN: u16 = 10;
/// The newest RDB version whose payloads we read (Redis 7.2's).
const RDB_VERSION_READ: u16 = 11;

/// FUNCTION DUMP's payload for these library codes.
pub fn dump(codes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        write_len(&mut out, code.len() as u64);
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION_WRITTEN.to_le_bytes());
    let crc = crc64(0, &out);
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
    if version > RDB_VERSION_READ || (crc != 0 && crc != crc64(0, &payload[..payload.len() - 8])) {
        return Err(bad());
    }
    let mut pos = 0;
    let mut codes = Vec::new();
    while pos < body.len() {
        if body[pos] != OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        pos += 1;
        codes.push(read_string(body, &mut pos).ok_or_else(|| "failed loading the library payload".to_string())?);
    }
    Ok(codes)
}

fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// An RDB length, or `Err(encoding)` for a specially encoded string.
fn read_len(b: &[u8], pos: &mut usize) -> Option<Result<u64, u8>> {
    let first = *b.get(*pos)?;
    *pos += 1;
    Some(match first >> 6 {
        0 => Ok((first & 0x3f) as u64),
        1 => {
            let next = *b.get(*pos)?;
            *pos += 1;
            Ok((((first & 0x3f) as u64) << 8) | next as u64)
        }
        2 if first == 0x80 => {
            let v = b.get(*pos..*pos + 4)?;
            *pos += 4;
            Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64)
        }
        2 if first == 0x81 => {
            let v = b.get(*pos..*pos + 8)?;
            *pos += 8;
            let mut a = [0u8; 8];
            a.copy_from_slice(v);
            Ok(u64::from_be_bytes(a))
        }
        3 => Err(first & 0x3f),
        _ => return None,
    })
}

fn read_string(b: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    match read_len(b, pos)? {
        Ok(n) => {
            let n = usize::try_from(n).ok()?;
            let s = b.get(*pos..pos.checked_add(n)?)?.to_vec();
            *pos += n;
            Some(s)
        }
        Err(enc) => match enc {
            0 => {
                let v = *b.get(*pos)? as i8;
                *pos += 1;
                Some(v.to_string().into_bytes())
            }
            1 => {
                let v = b.get(*pos..*pos + 2)?;
                *pos += 2;
                Some(i16::from_le_bytes([v[0], v[1]]).to_string().into_bytes())
            }
            2 => {
                let v = b.get(*pos..*pos + 4)?;
                *pos += 4;
                Some(i32::from_le_bytes([v[0], v[1], v[2], v[3]]).to_string().into_bytes())
            }
            3 => {
                let clen = usize::try_from(read_len(b, pos)?.ok()?).ok()?;
                let len = usize::try_from(read_len(b, pos)?.ok()?).ok()?;
                let data = b.get(*pos..pos.checked_add(clen)?)?;
                *pos += clen;
                lzf_decompress(data, len)
            }
            _ => None,
        },
    }
}

/// LZF decompression (Redis compresses RDB strings with it).
fn lzf_decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(1 << 26));
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            out.extend_from_slice(input.get(i..i + n)?);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..len + 2 {
                let c = out[start + k];
                out.push(c);
            }
        }
        if out.len() > out_len {
            return None;
        }
    }
    (out.len() == out_len).then_some(out)
}

/// CRC64 (Jones polynomial, reflected), as Redis checksums RDB payloads.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    for &b in data {
        crc = table[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // The check value of Redis's crc64 test.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

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

    #[test]
    fn lzf() {
        // "aaaaaaaaaa": one literal then a back reference of length 9.
        assert_eq!(lzf_decompress(&[0x00, b'a', 0xe0, 0x00, 0x00], 10), Some(vec![b'a'; 10]));
        assert_eq!(lzf_decompress(&[0x00, b'a', 0xc0, 0x00], 9), Some(vec![b'a'; 9]));
        assert_eq!(lzf_decompress(&[0x01, b'a', b'b'], 2), Some(b"ab".to_vec()));
    }
}
