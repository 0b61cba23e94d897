//! SCAN: cursor-based iteration over the keys of a database, spread over the
//! shards. This module owns the cursor format and the per-shard step.
//!
//! # Cursor format
//!
//! A cursor is the number of the next hash slot to visit: slots are visited
//! in ascending order, 0 to 16383, whatever the number of shards (shard k
//! owns the slots s with s % n == k), so a cursor means the same to a node
//! restarted with another `--shards`. Cursor 0 starts an iteration, and a
//! reply cursor of 0 means it is complete. A cursor at or past 16384 (which
//! no reply contains) ends the iteration at once.
//!
//! # One call
//!
//! A call visits a window of slots from the cursor: each shard owning slots
//! in the window reads them in one job. While fewer than COUNT keys were
//! visited and slots remain, the next window, twice as wide, follows. The
//! reply holds the keys of every visited slot that pass MATCH and TYPE (so
//! fewer than COUNT, even none, before the iteration is over, or more: a slot
//! is never split) and the first slot not visited.
//!
//! # Guarantee
//!
//! A key's slot never changes, every slot is visited exactly once per full
//! iteration, and a slot is always read whole inside a single job that has the
//! shard to itself. So a key that exists for the whole iteration is returned
//! exactly once, whatever writes, deletes and table growth happen between
//! calls; keys created or deleted during the iteration may or may not appear.

use bytes::Bytes;

use super::Coord;

use crate::error::{CmdError, CmdResult};
use crate::shard::Shard;
use crate::slot::SLOTS;
use crate::util::{eq_ic, glob_match, now_ms, parse_i64};

/// Default number of keys a call visits.
const DEFAULT_COUNT: usize = 10;

/// Parses a SCAN-family cursor as Redis does (C's `strtoul`): decimal digits with
/// an optional sign, a negative value wrapping around; the empty string is
/// cursor 0; anything else, or a value past 64 bits, is an invalid cursor.
pub fn parse_cursor(b: &[u8]) -> CmdResult<u64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if b.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CmdError::InvalidCursor);
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add((d - b'0') as u64)).ok_or(CmdError::InvalidCursor)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The filters of one call.
#[derive(Clone)]
pub struct Filter {
    /// `None` when there is no pattern or it is `*`.
    pub pattern: Option<Bytes>,
    /// Lower-cased type name wanted (`Value::type_name`), if any.
    pub type_name: Option<Vec<u8>>,
}

impl Filter {
    fn accepts(&self, key: &[u8], type_name: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| glob_match(p, key, false))
            && self.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(type_name.as_bytes()))
    }
}

/// Runs on the shard: visits the slots of database `db` it owns in
/// `lo..hi`, whole. Returns the keys that pass the filter and how many keys
/// were visited.
pub fn scan_shard(sh: &mut Shard, db: usize, lo: usize, hi: usize, filter: &Filter, now: u64) -> (Vec<Bytes>, usize) {
    let (k, n) = (sh.id, sh.nshards());
    let Some(d) = sh.db_if_exists(db) else { return (Vec::new(), 0) };
    let mut keys = Vec::new();
    let mut visited = 0;
    // The first slot at or after `lo` that this shard owns.
    let mut slot = lo + (k + n - lo % n) % n;
    while slot < hi.min(SLOTS) {
        d.for_each_in_slot(slot as u16, now, |e| {
            visited += 1;
            if filter.accepts(&e.key, e.value.type_name()) {
                keys.push(Bytes::copy_from_slice(&e.key));
            }
        });
        slot += n;
    }
    (keys, visited)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub async fn scan(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let mut count = DEFAULT_COUNT;
    let mut filter = Filter { pattern: None, type_name: None };
    let mut i = 2;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if eq_ic(&args[i], "COUNT") && has_value {
            let c = parse_i64(&args[i + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if eq_ic(&args[i], "MATCH") && has_value {
            let p = &args[i + 1];
            filter.pattern = (&p[..] != b"*").then(|| p.clone());
        } else if eq_ic(&args[i], "TYPE") && has_value {
            // Unknown type names match nothing (Redis 7.2 does not reject them).
            filter.type_name = Some(args[i + 1].to_ascii_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // Windows of slots, each twice as wide as the last, until `count` keys
    // were visited (so a small keyspace comes back in one call, as from
    // Redis); each shard reads its slots of a window in one job.
    let n = cx.engine().nshards();
    let db = cx.db();
    let (mut lo, mut width, mut keys, mut visited) = (usize::try_from(cursor).unwrap_or(SLOTS), 1, Vec::new(), 0);
    while lo < SLOTS && visited < count {
        let hi = (lo + width).min(SLOTS);
        for k in 0..n.min(hi - lo) {
            let shard = (lo + k) % n;
            let f = filter.clone();
            let (found, seen) = cx.run_on(shard, move |sh| scan_shard(sh, db, lo, hi, &f, now_ms())).await;
            keys.extend(found);
            visited += seen;
        }
        lo = hi;
        width = width.saturating_mul(2);
    }
    let next = if lo >= SLOTS { 0 } else { lo as u64 };
    let out = cx.out();
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(keys.len());
    for k in &keys {
        out.bulk(k);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Value;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"+12"), Ok(12));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), Err(CmdError::InvalidCursor));
        for bad in [&b"abc"[..], b" 1", b"1 ", b"-", b"1x", b"0x10"] {
            assert_eq!(parse_cursor(bad), Err(CmdError::InvalidCursor), "{bad:?}");
        }
    }

    fn shard(id: usize, n: usize) -> Shard {
        use clap::Parser;
        let cfg = crate::config::Config::from_args(&crate::config::Args::parse_from(["damselfly"])).expect("config");
        Shard::new(id, n, std::sync::Arc::new(cfg), crate::shard::scripts::Scripting::new(crate::commands::is_command))
    }

    #[test]
    fn a_shard_reads_its_slots_of_a_window_whole() {
        let n = 3;
        let mut sh = shard(1, n);
        let keys: Vec<String> =
            (0..3000).map(|i| format!("key:{i}")).filter(|k| crate::slot::key_slot(k.as_bytes()) as usize % n == 1).collect();
        for k in &keys {
            sh.db(0).insert_new(k.as_bytes(), Value::Int(1), 0);
        }
        let all = Filter { pattern: None, type_name: None };
        let mut found = Vec::new();
        // Windows of every width and alignment cover each slot once.
        let mut lo = 0;
        let mut width = 1;
        while lo < SLOTS {
            let hi = (lo + width).min(SLOTS);
            let (got, visited) = scan_shard(&mut sh, 0, lo, hi, &all, 0);
            let expected: usize = (lo..hi).filter(|s| s % n == 1).map(|s| sh.db(0).slot_len(s as u16)).sum();
            assert_eq!((got.len(), visited), (expected, expected), "window {lo}..{hi}");
            found.extend(got);
            lo = hi;
            width = width % 7 + 1;
        }
        found.sort();
        let mut want: Vec<Bytes> = keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect();
        want.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn filters_and_missing_databases() {
        let mut sh = shard(0, 1);
        sh.db(0).insert_new(b"user:1", Value::Int(1), 0);
        sh.db(0).insert_new(b"user:2", Value::string(b"x"), 0);
        sh.db(0).insert_new(b"other", Value::Int(3), 0);
        sh.db(0).insert_new(b"user:expired", Value::Int(3), 5);
        let f = Filter { pattern: Some(Bytes::from_static(b"user:*")), type_name: Some(b"string".to_vec()) };
        let (mut got, visited) = scan_shard(&mut sh, 0, 0, SLOTS, &f, 10);
        got.sort();
        assert_eq!(got, vec![Bytes::from_static(b"user:1"), Bytes::from_static(b"user:2")]);
        assert_eq!(visited, 3);
        let f = Filter { pattern: None, type_name: Some(b"hash".to_vec()) };
        assert!(scan_shard(&mut sh, 0, 0, SLOTS, &f, 10).0.is_empty());
        assert_eq!(scan_shard(&mut sh, 3, 0, SLOTS, &f, 10), (Vec::new(), 0));
    }
}
