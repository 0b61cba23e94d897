//! SCAN: cursor-based iteration over the keys of a database, spread over the
//! shards. This module owns the cursor format and the per-shard step.
//!
//! # Cursor format
//!
//! A cursor is the position of the next slot to visit in one fixed ordering of
//! all 16384 hash slots. The ordering is shard-major: first the slots of shard
//! 0 in ascending order (0, n, 2n, ...), then those of shard 1 (1, n+1, ...),
//! and so on, where n is the number of shards and shard k owns the slots s with
//! s % n == k. With 16384 = q*n + r, shard k owns q+1 slots when k < r and q
//! otherwise, so its slots start at position k*q + min(k, r), and position p
//! inside shard k's range stands for slot (p - start(k))*n + k.
//!
//! Position 0 (shard 0's first slot) is the starting cursor; a reply cursor of
//! 0 means the iteration is complete. A cursor at or past 16384 (which no
//! reply contains) ends the iteration at once. Cursors depend on the shard
//! count, so one taken from a server started with another `--shards` value
//! visits the wrong slots (it cannot crash anything).
//!
//! # One call
//!
//! A call runs as one job on the shard that owns the cursor's position. It
//! takes whole slots in order until at least COUNT keys were visited or the
//! shard has no slots left, and replies with the position of the first slot
//! it did not visit (the first slot of the next shard when the shard is done).
//! MATCH and TYPE filter the visited keys, so a reply may hold fewer keys than
//! COUNT, even none, before the iteration is over.
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

/// Where shard `k`'s slots start in the ordering, for `n` shards.
fn shard_start(k: usize, n: usize) -> usize {
    let (q, r) = (SLOTS / n, SLOTS % n);
    k * q + k.min(r)
}

/// Number of slots shard `k` owns.
fn shard_len(k: usize, n: usize) -> usize {
    (SLOTS - k).div_ceil(n)
}

/// The shard and that shard's local slot index at `pos`; `None` past the end.
fn locate(pos: u64, n: usize) -> Option<(usize, usize)> {
    let pos = usize::try_from(pos).ok().filter(|&p| p < SLOTS)?;
    let (q, r) = (SLOTS / n, SLOTS % n);
    // The first r shards hold q+1 slots each.
    let k = if pos < r * (q + 1) { pos / (q + 1) } else { r + (pos - r * (q + 1)) / q };
    Some((k, pos - shard_start(k, n)))
}

/// The cursor that follows local index `next` of shard `k` (`next` may be
/// the shard's length: then the next shard's first slot, or 0 after the last).
fn cursor_after(k: usize, next: usize, n: usize) -> u64 {
    if next < shard_len(k, n) {
        (shard_start(k, n) + next) as u64
    } else if k + 1 < n {
        shard_start(k + 1, n) as u64
    } else {
        0
    }
}

/// Parses a cursor: an unsigned decimal, as Redis accepts it.
fn parse_cursor(b: &[u8]) -> CmdResult<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(CmdError::InvalidCursor);
    }
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or(CmdError::InvalidCursor)
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

/// Runs on the shard: visits whole slots of database `db` from local index
/// `from` until `count` keys were visited. Returns the keys that pass the
/// filter, the local index of the first slot not visited and how many keys
/// were visited.
pub fn scan_shard(sh: &mut Shard, db: usize, from: usize, count: usize, filter: &Filter, now: u64) -> (Vec<Bytes>, usize, usize) {
    let (k, n) = (sh.id, sh.nshards());
    let len = shard_len(k, n);
    let Some(d) = sh.db_if_exists(db) else { return (Vec::new(), len, 0) };
    let mut keys = Vec::new();
    let mut visited = 0;
    let mut l = from;
    while l < len && visited < count {
        let slot = (l * n + k) as u16;
        d.for_each_in_slot(slot, now, |e| {
            visited += 1;
            if filter.accepts(&e.key, e.value.type_name()) {
                keys.push(Bytes::copy_from_slice(&e.key));
            }
        });
        l += 1;
    }
    (keys, l, visited)
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
    // Shard by shard: a shard that is done before `count` keys were
    // visited hands the rest of the budget to the next (so a small keyspace
    // comes back in one call, as from Redis).
    let n = cx.engine().nshards();
    let db = cx.db();
    let (mut next, mut keys, mut budget) = (cursor, Vec::new(), count);
    while let Some((k, from)) = locate(next, n) {
        let f = filter.clone();
        let (found, stop, visited) = cx.run_on(k, move |sh| scan_shard(sh, db, from, budget, &f, now_ms())).await;
        keys.extend(found);
        next = cursor_after(k, stop, n);
        budget = budget.saturating_sub(visited);
        if stop < shard_len(k, n) || budget == 0 || next == 0 {
            break;
        }
    }
    if locate(next, n).is_none() {
        next = 0;
    }
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
    fn positions_cover_every_slot_once_in_shard_major_order() {
        for n in [1, 2, 3, 4, 7, 1024] {
            let mut seen = vec![false; SLOTS];
            let mut prev: Option<(usize, usize)> = None;
            for pos in 0..SLOTS as u64 {
                let (k, l) = locate(pos, n).expect("in range");
                assert!(l < shard_len(k, n));
                if let Some((pk, pl)) = prev {
                    assert!((k == pk && l == pl + 1) || (k == pk + 1 && l == 0 && pl + 1 == shard_len(pk, n)), "n={n} pos={pos}");
                }
                prev = Some((k, l));
                let slot = l * n + k;
                assert_eq!(slot % n, k);
                assert!(!seen[slot], "slot {slot} twice");
                seen[slot] = true;
                assert_eq!(cursor_after(k, l, n), pos);
            }
            assert!(seen.iter().all(|&s| s));
            assert_eq!(locate(SLOTS as u64, n), None);
            assert_eq!(cursor_after(n - 1, shard_len(n - 1, n), n), 0);
        }
        assert_eq!(locate(u64::MAX, 4), None);
    }

    #[test]
    fn cursor_parsing() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [&b""[..], b"-1", b"+1", b" 1", b"1x", b"18446744073709551616"] {
            assert_eq!(parse_cursor(bad), Err(CmdError::InvalidCursor), "{bad:?}");
        }
    }

    fn shard(id: usize, n: usize) -> Shard {
        use clap::Parser;
        let cfg = crate::config::Config::from_args(&crate::config::Args::parse_from(["damselfly"])).expect("config");
        Shard::new(id, n, std::sync::Arc::new(cfg), crate::shard::scripts::Scripting::new(crate::commands::is_command))
    }

    #[test]
    fn a_shard_is_visited_in_whole_slots() {
        let n = 3;
        let mut sh = shard(1, n);
        let keys: Vec<String> =
            (0..3000).map(|i| format!("key:{i}")).filter(|k| crate::slot::key_slot(k.as_bytes()) as usize % n == 1).collect();
        for k in &keys {
            sh.db(0).insert_new(k.as_bytes(), Value::Int(1), 0);
        }
        let all = Filter { pattern: None, type_name: None };
        let mut found = Vec::new();
        let mut from = 0;
        let mut calls = 0;
        while from < shard_len(1, n) {
            let (got, next, _) = scan_shard(&mut sh, 0, from, 5, &all, 0);
            assert!(next > from);
            // Whole slots: every key of the visited slots is in the reply.
            let expected: usize = (from..next).map(|l| sh.db(0).slot_len((l * n + 1) as u16)).sum();
            assert_eq!(got.len(), expected);
            if next < shard_len(1, n) {
                assert!(got.len() >= 5, "stopped early with {} keys", got.len());
            }
            found.extend(got);
            from = next;
            calls += 1;
        }
        assert!(calls > 1);
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
        let (mut got, next, _) = scan_shard(&mut sh, 0, 0, usize::MAX, &f, 10);
        got.sort();
        assert_eq!(got, vec![Bytes::from_static(b"user:1"), Bytes::from_static(b"user:2")]);
        assert_eq!(next, SLOTS);
        let f = Filter { pattern: None, type_name: Some(b"hash".to_vec()) };
        assert!(scan_shard(&mut sh, 0, 0, usize::MAX, &f, 10).0.is_empty());
        assert_eq!(scan_shard(&mut sh, 3, 0, 10, &f, 10), (Vec::new(), SLOTS, 0));
    }
}
