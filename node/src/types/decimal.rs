//! Exact decimal addition for INCRBYFLOAT and HINCRBYFLOAT.
//!
//! Redis adds in `long double` and prints the sum with 17 digits after the
//! point, trailing zeros removed, so `0.1 + 0.2` gives `0.3` and `1 - 1.1`
//! gives `-0.1`, where a plain `f64` sum prints `0.30000000000000004` and
//! `-0.10000000000000009`. Prices and stock levels are written as short
//! decimals, so this module adds two such decimals exactly; the callers
//! fall back to `f64` for anything else (exponents beyond range, more
//! digits than fit, results needing more than 17 decimals).

/// A decimal `mant * 10^-scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dec {
    mant: i128,
    scale: u32,
}

/// Digits after the point Redis prints.
const MAX_SCALE: u32 = 17;
/// Significant digits kept exactly (well inside i128).
const MAX_DIGITS: usize = 34;

/// Parses a plain decimal literal: optional sign, digits with an optional
/// point, optional exponent. `None` for anything else (inf, hex, spaces).
fn parse(s: &[u8]) -> Option<Dec> {
    let (neg, rest) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (num, exp) = match rest.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => {
            let e = std::str::from_utf8(&rest[i + 1..]).ok()?;
            if e.is_empty() || e.starts_with('+') && e.len() == 1 {
                return None;
            }
            (&rest[..i], e.parse::<i32>().ok()?)
        }
        None => (rest, 0),
    };
    let (int, frac) = match num.iter().position(|&c| c == b'.') {
        Some(i) => (&num[..i], &num[i + 1..]),
        None => (num, &num[..0]),
    };
    if int.is_empty() && frac.is_empty() || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let digits: Vec<u8> = int.iter().chain(frac).copied().skip_while(|&c| c == b'0').collect();
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mut mant: i128 = 0;
    for d in &digits {
        mant = mant * 10 + (d - b'0') as i128;
    }
    // value = mant * 10^(exp - frac.len())
    let mut scale = frac.len() as i64 - exp as i64;
    while scale < 0 {
        mant = mant.checked_mul(10)?;
        scale += 1;
    }
    if scale > 60 {
        return None;
    }
    Some(Dec { mant: if neg { -mant } else { mant }, scale: scale as u32 })
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// `a + b` as Redis prints it, when both are plain decimals whose exact sum
/// has at most 17 digits after the point; `None` otherwise.
pub fn add(a: &[u8], b: &[u8]) -> Option<String> {
    let (a, b) = (parse(a)?, parse(b)?);
    let scale = a.scale.max(b.scale);
    let am = a.mant.checked_mul(pow10(scale - a.scale)?)?;
    let bm = b.mant.checked_mul(pow10(scale - b.scale)?)?;
    let mut sum = Dec { mant: am.checked_add(bm)?, scale };
    // Trailing zeros of the fraction go.
    while sum.scale > 0 && sum.mant % 10 == 0 {
        sum.mant /= 10;
        sum.scale -= 1;
    }
    if sum.scale > MAX_SCALE {
        return None;
    }
    Some(format(sum))
}

fn format(d: Dec) -> String {
    let digits = d.mant.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 3);
    if d.mant < 0 {
        out.push('-');
    }
    let scale = d.scale as usize;
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_as_redis_prints_them() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("0.1", "0.2", Some("0.3")),
            ("1", "-1.1", Some("-0.1")),
            ("10.50", "0.1", Some("10.6")),
            ("5.0e3", "2.0e2", Some("5200")),
            ("5.0e3", "-2.0e2", Some("4800")),
            ("0", "0", Some("0")),
            ("-0.5", "0.5", Some("0")),
            ("17179869184", "1.5", Some("17179869185.5")),
            ("3", "1e-3", Some("3.001")),
            (".5", "1.", Some("1.5")),
            ("1e-17", "0", Some("0.00000000000000001")),
            ("1e-18", "0", None),
            ("inf", "1", None),
            ("1.5 ", "1", None),
            ("0x10", "1", None),
            ("", "1", None),
            ("1e400", "1", None),
            ("1e", "1", None),
        ];
        for &(a, b, want) in cases {
            assert_eq!(add(a.as_bytes(), b.as_bytes()).as_deref(), want, "{a} + {b}");
        }
    }
}
