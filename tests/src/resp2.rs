//! A RESP2 reply parser for tests that compare replies structurally.

/// A parsed RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum V {
    Simple(Vec<u8>),
    Err(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Arr(Option<Vec<V>>),
}

pub fn parse(b: &[u8], pos: &mut usize) -> V {
    let eol = b[*pos..].windows(2).position(|w| w == b"\r\n").expect("complete reply") + *pos;
    let line = &b[*pos + 1..eol];
    let kind = b[*pos];
    *pos = eol + 2;
    let num = || String::from_utf8_lossy(line).parse::<i64>().expect("length");
    match kind {
        b'+' => V::Simple(line.to_vec()),
        b'-' => V::Err(line.to_vec()),
        b':' => V::Int(num()),
        b'$' if num() < 0 => V::Bulk(None),
        b'$' => {
            let n = num() as usize;
            let v = b[*pos..*pos + n].to_vec();
            *pos += n + 2;
            V::Bulk(Some(v))
        }
        b'*' if num() < 0 => V::Arr(None),
        b'*' => V::Arr(Some((0..num()).map(|_| parse(b, pos)).collect())),
        other => panic!("unexpected RESP2 type byte {:?}", other as char),
    }
}
