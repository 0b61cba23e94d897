//! Small helpers shared by command families: number parsing with Redis's
//! error texts, glob matching (KEYS, SCAN MATCH, CONFIG GET), the clock,
//! giving back the room of mostly emptied maps, and cache prefetch hints.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use crate::error::{CmdError, CmdResult};

/// Asks the CPU to start loading the cache line holding `p`, so that
/// several independent lookups' misses overlap. A hint that reads nothing
/// and cannot fault, whatever the address.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction never faults, even on a bad address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `prefetch` of both ends of `v`, which may straddle two cache lines.
#[inline]
pub fn prefetch_whole<T>(v: &T) {
    let start = v as *const T as *const u8;
    prefetch(start);
    prefetch(start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

/// A hash map or set, for `shrink_map`.
pub trait Room {
    fn used(&self) -> usize;
    fn room(&self) -> usize;
    fn shrink(&mut self, to: usize);
}

/// `Room` for a collection with `len`, `capacity` and `shrink_to`.
macro_rules! room {
    ($($head:tt)*) => {
        $($head)* {
            fn used(&self) -> usize {
                self.len()
            }
            fn room(&self) -> usize {
                self.capacity()
            }
            fn shrink(&mut self, to: usize) {
                self.shrink_to(to);
            }
        }
    };
}
room!(impl<K: Hash + Eq, V, S: BuildHasher> Room for HashMap<K, V, S>);
room!(impl<K: Hash + Eq, S: BuildHasher> Room for HashSet<K, S>);

/// Gives back a map's room once it holds under an eighth of it, as Redis
/// resizes a dict under a tenth full: a registry that once held many
/// entries (channels, WATCHed keys, blocked keys, tracked keys) does not
/// keep their room when they are gone. Amortised O(1) per removal: after a
/// shrink to twice its length, three quarters must go before the next.
pub fn shrink_map(map: &mut impl Room) {
    if map.room() > 64 && map.used() < map.room() / 8 {
        map.shrink(map.used() * 2);
    }
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Current Unix time in milliseconds from the coarse clock: no hardware
/// counter read, a few ms behind `now_ms` at most. For checks made on every
/// command that compare against timeouts of seconds.
pub fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the current time into `ts`, which we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return now_ms();
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// A `%f`-style number without its trailing zeros (and point): `99.9`,
/// `50`.
pub fn trim_float(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Current Unix time in microseconds.
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Parses an integer argument strictly, as Redis's `string2ll`: canonical
/// decimal only (`ERR value is not an integer or out of range`).
pub fn parse_i64(b: &[u8]) -> CmdResult<i64> {
    canonical_int(b).ok_or(CmdError::NotInteger)
}

/// Parses `b` as an i64 only when it is the exact canonical decimal form
/// (no sign on zero, no leading zeros, no '+'), so that formatting the integer
/// gives back the same bytes.
pub fn canonical_int(b: &[u8]) -> Option<i64> {
    // `parse_int` takes an optional '-' and 1 to 19 digits; of those, the
    // forms that do not format back the same are a leading zero before
    // another digit and "-0".
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.first() == Some(&b'0') && (digits.len() > 1 || digits.len() < b.len()) {
        return None;
    }
    parse_int(b)
}

/// Parses a signed decimal integer with no surrounding text.
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg { v.checked_sub(d)? } else { v.checked_add(d)? };
    }
    Some(v)
}

/// Parses a float the way Redis's `strtold` checks do: decimal or exponent
/// notation, C99 hexadecimal (`0x10`, `0x1p-2`), `inf`/`-inf`; no spaces,
/// no NaN.
pub fn parse_f64(b: &[u8]) -> CmdResult<f64> {
    let s = std::str::from_utf8(b).map_err(|_| CmdError::NotFloat)?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NotFloat);
    }
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        l if l.trim_start_matches(['+', '-']).starts_with("0x") => parse_hex_f64(l).ok_or(CmdError::NotFloat)?,
        _ => s.parse::<f64>().map_err(|_| CmdError::NotFloat)?,
    };
    // Out of range, as `strtod` reports it (ERANGE): a number too large
    // (not a literal infinity, handled above) or one so small it rounds to
    // zero although its digits are not all zero. Redis refuses both.
    if v.is_nan() || v.is_infinite() || (v == 0.0 && mantissa_nonzero(s)) {
        return Err(CmdError::NotFloat);
    }
    Ok(v)
}

/// Parses a float as Redis's `strtold` checks do (INCRBYFLOAT,
/// HINCRBYFLOAT): as `parse_f64`, but within a long double's range, which
/// reaches far beyond a double's. A value too small for a double yet within
/// that range reads as 0 (Redis prints such a sum as 0 too); one too large
/// for a double yet within it reads as infinity (the caller then reports
/// that the increment would produce infinity).
pub fn parse_long_double(b: &[u8]) -> CmdResult<f64> {
    match parse_f64(b) {
        Err(CmdError::NotFloat) => {}
        r => return r,
    }
    let s = std::str::from_utf8(b).map_err(|_| CmdError::NotFloat)?;
    let v = match s.to_ascii_lowercase().as_str() {
        l if l.trim_start_matches(['+', '-']).starts_with("0x") => parse_hex_f64(l).ok_or(CmdError::NotFloat)?,
        _ => s.parse::<f64>().map_err(|_| CmdError::NotFloat)?,
    };
    if v.is_nan() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NotFloat);
    }
    // Out of range for a double only: judge against a long double's.
    match decimal_magnitude(s) {
        Some(m) if m > -4950.0 && m < 4932.0 => Ok(if v == 0.0 { 0.0 } else { v }),
        _ => Err(CmdError::NotFloat),
    }
}

/// About log10 of a float's magnitude, from its text (`None` when it
/// cannot tell).
fn decimal_magnitude(s: &str) -> Option<f64> {
    let l = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let (mant, exp, per_unit) = match l.strip_prefix("0x") {
        Some(rest) => {
            let (m, e) = rest.split_once('p').unwrap_or((rest, "0"));
            (parse_hex_f64(&format!("0x{m}"))?, e, std::f64::consts::LOG10_2)
        }
        None => {
            let (m, e) = l.split_once('e').unwrap_or((&l, "0"));
            (m.parse::<f64>().ok()?, e, 1.0)
        }
    };
    let exp: f64 = match exp.parse::<i64>() {
        Ok(e) => e as f64,
        // Beyond i64: far out of any range.
        Err(_) if exp.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') => {
            if exp.starts_with('-') {
                -1e30
            } else {
                1e30
            }
        }
        Err(_) => return None,
    };
    (mant != 0.0).then(|| exp * per_unit + mant.abs().log10())
}

/// Whether a float's digits before its exponent are not all zero.
fn mantissa_nonzero(s: &str) -> bool {
    let l = s.trim_start_matches(['+', '-']);
    let (hex, digits) = match l.strip_prefix("0x").or_else(|| l.strip_prefix("0X")) {
        Some(rest) => (true, rest),
        None => (false, l),
    };
    let end = digits.find(if hex { ['p', 'P'] } else { ['e', 'E'] }).unwrap_or(digits.len());
    digits[..end].bytes().any(|b| b.is_ascii_hexdigit() && b != b'0')
}

/// A C99 hexadecimal float (lowercase): `[sign]0x` hex digits with an
/// optional point, then an optional binary exponent `p[sign]digits`.
fn parse_hex_f64(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix("0x")?;
    let (mant, exp) = match rest.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (rest, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let digits = e.trim_start_matches(['+', '-']);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || e.len() - digits.len() > 1 {
            return None;
        }
        let e: i32 = e.parse().unwrap_or(if e.starts_with('-') { i32::MIN } else { i32::MAX });
        v *= 2f64.powi(e.clamp(-2000, 2000));
    }
    // Out of a double's range strtod fails (ERANGE), as for decimals.
    v.is_finite().then_some(if neg { -v } else { v })
}

/// ASCII case-insensitive comparison of an argument with a keyword.
#[inline]
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's glob-style matching: `*`, `?`, `[abc]`, `[^a-z]`, `\\x`.
///
/// Every token but `*` matches exactly one byte, so a mismatch only ever
/// needs to retry from the most recent `*`, one byte further on: the work is
/// at most `pattern.len() * s.len()` steps, whatever the pattern (a
/// backtracking matcher is exponential in the number of stars). KEYS, SCAN
/// MATCH, pub/sub patterns and CONFIG GET all match through here.
pub fn glob_match(p: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*`: (pattern after it, subject start).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() && p[pi] == b'*' {
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi == p.len() && si == s.len() {
            return true;
        }
        if pi < p.len() && si < s.len() {
            if let Some(next) = glob_token(p, pi, s[si], nocase) {
                pi = next;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Whether the one-byte token at `p[i]` (not `*`) matches `c`; the index
/// after the token if so. A `[` class left open runs to the end of the
/// pattern, as in Redis.
fn glob_token(p: &[u8], mut i: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    match p[i] {
        b'?' => Some(i + 1),
        b'[' => {
            i += 1;
            let not = p.get(i) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= eq(p[i], c);
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (mut lo, mut hi) = (p[i], p[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    matched |= if nocase {
                        let c = c.to_ascii_lowercase();
                        c >= lo.to_ascii_lowercase() && c <= hi.to_ascii_lowercase()
                    } else {
                        c >= lo && c <= hi
                    };
                    i += 2;
                } else {
                    matched |= eq(p[i], c);
                }
                i += 1;
            }
            // Past the closing `]` (or at the end of an open class).
            (matched != not).then_some((i + 1).min(p.len()))
        }
        b'\\' if i + 1 < p.len() => eq(p[i + 1], c).then_some(i + 2),
        lit => eq(lit, c).then_some(i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_is_close_to_the_precise_one() {
        let (before, coarse, after) = (now_ms(), coarse_now_ms(), now_ms());
        assert!(coarse + 50 >= before && coarse <= after, "{before} {coarse} {after}");
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"1a"), None);
        assert_eq!(parse_int(b""), None);
    }

    #[test]
    fn canonical_int_is_what_formats_back() {
        let reference = |b: &[u8]| {
            let n = parse_int(b)?;
            (itoa::Buffer::new().format(n).as_bytes() == b).then_some(n)
        };
        let mut cases: Vec<Vec<u8>> = [
            "",
            "-",
            "0",
            "-0",
            "00",
            "-00",
            "01",
            "-01",
            "10",
            "-10",
            "7",
            "+7",
            " 7",
            "7 ",
            "1a",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "09223372036854775807",
            "123456789012345678901",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for n in [0i64, 1, -1, 42, -42, i64::MAX, i64::MIN, 1_000_000, -999] {
            cases.push(n.to_string().into_bytes());
        }
        for c in &cases {
            assert_eq!(canonical_int(c), reference(c), "{:?}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn globs_agree_with_the_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pat_alphabet = b"ab*?[]^-\\";
        for _ in 0..50_000 {
            let pl = rng.random_range(0..8);
            let sl = rng.random_range(0..8);
            let p: Vec<u8> = (0..pl).map(|_| pat_alphabet[rng.random_range(0..pat_alphabet.len())]).collect();
            let s: Vec<u8> = (0..sl).map(|_| b"ab-]"[rng.random_range(0..4)]).collect();
            let nocase = rng.random_bool(0.2);
            assert_eq!(
                glob_match(&p, &s, nocase),
                crate::fuzzing::glob_reference(&p, &s, nocase),
                "{:?} vs {:?}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s)
            );
        }
    }

    #[test]
    fn many_stars_take_linear_work() {
        // KEYS "a*a*...*a*b" against 200 a's backtracks exponentially in a
        // recursive matcher; here it is at most |p| * |s| steps.
        let s = vec![b'a'; 200];
        let mut p = b"a*".repeat(30);
        p.push(b'b');
        let t = std::time::Instant::now();
        assert!(!glob_match(&p, &s, false));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        let long = vec![b'a'; 100_000];
        assert!(!glob_match(&b"*a".repeat(500).into_iter().chain(*b"b").collect::<Vec<u8>>(), &long, false));
    }

    #[test]
    fn floats_parse_as_strtod_does() {
        for (text, want) in [("0x10", 16.0), ("-0x.8", -0.5), ("0x1p-2", 0.25), ("0X1P+2", 4.0), ("+0x1E", 30.0), ("1e3", 1000.0)] {
            assert_eq!(parse_f64(text.as_bytes()), Ok(want), "{text}");
        }
        for text in ["0x", "0x1g", "0x1p", "0x1p+-1", "0xp1", " 0x1", "0x1 ", "0x1p99999"] {
            assert!(parse_f64(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn globs() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("user:*:cart", "user:42:cart", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("", "", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes(), false), *want, "{p} vs {s}");
        }
        assert!(glob_match(b"MAX*", b"maxmemory", true));
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5").unwrap(), 1.5);
        assert_eq!(parse_f64(b"-inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse_f64(b"1e3").unwrap(), 1000.0);
        assert!(parse_f64(b"nan").is_err());
        // Out of range as strtod reports it: refused, as Redis does.
        assert!(parse_f64(b"1e400").is_err());
        assert!(parse_f64(b"-1e400").is_err());
        assert!(parse_f64(b"1e-9223372036854775808").is_err());
        assert!(parse_f64(b"0x1p-2000").is_err());
        assert_eq!(parse_f64(b"0e-400").unwrap(), 0.0);
        assert_eq!(parse_f64(b"-0.0").unwrap(), 0.0);
        assert!(parse_f64(b"1e-310").unwrap() > 0.0);
        // A long double reaches further; beyond it, refused too.
        assert_eq!(parse_long_double(b"1e-400").unwrap(), 0.0);
        assert_eq!(parse_long_double(b"1e400").unwrap(), f64::INFINITY);
        assert_eq!(parse_long_double(b"-1e400").unwrap(), f64::NEG_INFINITY);
        assert!(parse_long_double(b"1e-9223372036854775808").is_err());
        assert!(parse_long_double(b"1e5000").is_err());
        assert!(parse_long_double(b"1e-5000").is_err());
        assert_eq!(parse_long_double(b"2.5").unwrap(), 2.5);
        assert!(parse_long_double(b"abc").is_err());
        assert!(parse_long_double(b" 1e400").is_err());
        assert!(parse_f64(b" 1").is_err());
        assert!(parse_f64(b"abc").is_err());
    }
}
