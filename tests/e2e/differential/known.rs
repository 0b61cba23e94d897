//! Documented differences between damselfly and redis-server 7.0 (see
//! docs/COMPATIBILITY.md): reply pairs the differential test accepts, each
//! with the reason it is deliberate.

use super::gen::Cmd;
use super::V;

/// Damselfly reports itself as Redis 7.2 and prints doubles as 7.2 does:
/// the shortest string that reads back as the same double (7.2's
/// `fpconv_dtoa`), where 7.0's `addReplyDouble` printed `%.17g`
/// (`0.1` vs `0.10000000000000001`).
pub const SHORTEST_DOUBLES: &str = "doubles printed shortest-round-trip (Redis 7.2) instead of %.17g (7.0)";

/// INCRBYFLOAT/HINCRBYFLOAT add short decimals exactly and print the
/// decimal sum; Redis adds x87 80-bit long doubles and prints `%.17Lf`,
/// which shows the binary rounding once a result needs more than about 18
/// significant digits (1000000000000 + 0.1 is 1000000000000.10000002384185791
/// there, 1000000000000.1 here), and accepts values beyond a double's range
/// (up to about 1e4932) that are NaN/Infinity here. The test then copies
/// Redis's value over so both go on from the same data.
pub const LONG_DOUBLE: &str = "INCRBYFLOAT sums exact, not rounded to 80-bit long double";

/// Damselfly writes a HyperLogLog's string afresh from its registers
/// (sparse while small, as Redis); Redis edits its sparse runs in place, so
/// the bytes string commands see (GET, STRLEN, GETRANGE, SETBIT, ...) are
/// not guaranteed to match, nor what a damaged string does afterwards: the
/// test does not send those to HyperLogLog keys.
pub const HLL_BYTES: &str = "HyperLogLog strings are rewritten, not edited (string commands on them skipped)";

/// Redis documents BYLEX ranges only for sorted sets whose members all have
/// one score ("unspecified" otherwise): such commands are not sent then.
pub const LEX_MIXED_SCORES: &str = "BYLEX over members with different scores is unspecified (skipped)";

/// LPOS ... RANK -9223372036854775808: Redis 7.2 (redis#12167) refuses
/// the rank (its negation overflows), 7.0 took it as -1 by accident.
pub const LPOS_RANK_MIN: &str = "LPOS RANK LONG_MIN is out of range (Redis 7.2)";

/// GEOSEARCH/GEORADIUS sort by distance; members at the same distance
/// (the same coordinates) come in the order each server's search visits
/// them, which Redis leaves unspecified: the same members, in another
/// order among equals, are accepted.
pub const GEO_TIES: &str = "members at equal distance in another order (unspecified)";

/// Redis 7.2 added ZRANK/ZREVRANK ... WITHSCORE, so a third argument is
/// a syntax error rather than a wrong number of arguments.
pub const ZRANK_WITHSCORE: &str = "ZRANK/ZREVRANK take WITHSCORE (Redis 7.2)";

/// MSET/MSETNX with a key but no value are refused when queued (the
/// transaction then aborts with EXECABORT); Redis queues them and fails
/// the command inside EXEC. The check belongs to command dispatch (whose
/// arity check also keeps a split multi-shard MSET from half applying).
/// The test does not queue such commands.
pub const MSET_ODD_QUEUED: &str = "MSET/MSETNX missing a value refused at queue time (skipped in MULTI)";

/// SORT's numeric conversion: Redis checks `errno == ERANGE` after strtod
/// without clearing `errno` first, and strtod leaves it alone when it
/// succeeds, so after an out-of-range conversion anywhere earlier (ZADD
/// 1e400, a SORT of 1e400) Redis refuses numeric sorts of valid numbers
/// until some other call resets `errno`. Damselfly judges each value by
/// itself. The generator never stores a numeric sort, so only the reply
/// differs.
pub const SORT_STALE_ERRNO: &str = "SORT judges each number by itself (Redis may see a stale ERANGE)";

/// The reason `ours` may differ from redis-server's `redis` reply to the
/// commands `cmds` (one command, or the queued commands of an EXEC), or
/// `None` when the difference is a bug.
pub fn explain(cmds: &[Cmd], exec: bool, redis: &V, ours: &V) -> Option<&'static str> {
    if same_but_doubles(redis, ours) {
        return Some(SHORTEST_DOUBLES);
    }
    if let (V::Arr(Some(r)), V::Arr(Some(o)), true) = (redis, ours, exec) {
        // An EXEC reply: each element against its own command.
        if r.len() != o.len() || r.len() != cmds.len() {
            return None;
        }
        let mut why = None;
        for ((c, r), o) in cmds.iter().zip(r).zip(o) {
            if r != o {
                why = Some(explain(std::slice::from_ref(c), false, r, o)?);
            }
        }
        return why;
    }
    let name = String::from_utf8_lossy(&cmds.first()?[0]).to_ascii_uppercase();
    let err = |v: &V, text: &str| matches!(v, V::Err(e) if e.starts_with(text.as_bytes()));
    match name.as_str() {
        "INCRBYFLOAT" | "HINCRBYFLOAT" if long_double_rounding(redis, ours) => Some(LONG_DOUBLE),
        "LPOS" if cmds[0].iter().any(|a| a == b"-9223372036854775808") && err(ours, "ERR value is out of range, value must between") => {
            Some(LPOS_RANK_MIN)
        }
        "GEOSEARCH" | "GEORADIUS" | "GEORADIUSBYMEMBER" | "GEORADIUS_RO" | "GEORADIUSBYMEMBER_RO" if same_members(redis, ours) => {
            Some(GEO_TIES)
        }
        "ZRANK" | "ZREVRANK" if err(redis, "ERR wrong number of arguments") && err(ours, "ERR syntax error") => Some(ZRANK_WITHSCORE),
        "SORT" | "SORT_RO" if err(redis, "ERR One or more scores can't be converted into double") && matches!(ours, V::Arr(Some(_))) => {
            Some(SORT_STALE_ERRNO)
        }
        _ => None,
    }
}

/// Whether two array replies hold the same elements, in any order.
fn same_members(redis: &V, ours: &V) -> bool {
    match (redis, ours) {
        (V::Arr(Some(r)), V::Arr(Some(o))) => {
            let (mut r, mut o) = (r.clone(), o.clone());
            r.sort();
            o.sort();
            r == o
        }
        _ => false,
    }
}

/// Whether two INCRBYFLOAT results are the same sum but for the rounding
/// of Redis's long double.
pub fn long_double_rounding(redis: &V, ours: &V) -> bool {
    let num = |v: &V| match v {
        V::Bulk(Some(b)) => std::str::from_utf8(b).ok().and_then(|s| s.parse::<f64>().ok()),
        _ => None,
    };
    let out_of_double =
        |v: &V| num(v).is_some_and(|n| n.is_infinite()) || matches!(v, V::Err(e) if e.starts_with(b"ERR value is not a valid float"));
    let nan_inf = matches!(ours, V::Err(e) if e.starts_with(b"ERR increment would produce NaN or Infinity"));
    // Only where the long double shows: 18 or more significant digits.
    let long = matches!(redis, V::Bulk(Some(b)) if b.iter().filter(|c| c.is_ascii_digit()).count() >= 18);
    // A value past a double's range that a long double still holds.
    let too_big = matches!(ours, V::Err(e) if e.starts_with(b"ERR value is not a valid float"));
    (nan_inf && out_of_double(redis))
        || (too_big && out_of_double(redis))
        || (long && matches!((num(redis), num(ours)), (Some(r), Some(o)) if (r - o).abs() <= r.abs().max(1.0) * 1e-12))
}

/// Whether the replies differ only in bulk strings that are the same double
/// printed `%.17g` by Redis 7.0 and shortest by damselfly.
fn same_but_doubles(redis: &V, ours: &V) -> bool {
    match (redis, ours) {
        (V::Arr(Some(a)), V::Arr(Some(b))) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_but_doubles(x, y)),
        (V::Bulk(Some(a)), V::Bulk(Some(b))) if a != b => {
            let num = |s: &[u8]| std::str::from_utf8(s).ok().and_then(|s| s.parse::<f64>().ok());
            let digits = a.iter().filter(|c| c.is_ascii_digit()).count();
            matches!((num(a), num(b)), (Some(x), Some(y)) if x == y) && digits >= 16 && b.len() < a.len()
        }
        (a, b) => a == b,
    }
}
