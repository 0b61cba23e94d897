//! Unit tests of running scripts.
use super::*;

#[test]
fn command_cache_matches_the_table() {
    let mut cache = CommandCache::default();
    let names: &[&[u8]] = &[
        b"GET",
        b"get",
        b"GeT",
        b"set",
        b"incrby",
        b"decrby",
        b"hset",
        b"zadd",
        b"nosuchcmd",
        b"",
        b"get\0",
        b"ge",
        b"zrangebyscore",
        b"georadiusbymember_ro",
        b"this-name-is-longer-than-sixteen",
        b"expire",
        b"pexpire",
        b"del",
    ];
    for _ in 0..3 {
        for n in names {
            let want = commands::lookup(n).map(|s| s.name);
            assert_eq!(cache.lookup(n).map(|s| s.name), want, "{:?}", String::from_utf8_lossy(n));
        }
    }
}

#[test]
fn number_arguments() {
    let cases: &[(f64, &str)] = &[
        (10.0, "10"),
        (-3.0, "-3"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (1e-7, "1e-7"),
        (123.456, "123.456"),
        (1e20, "1e+20"),
        (-(2f64.powi(63)), "-9223372036854776000"),
        (2.5e-10, "2.5e-10"),
    ];
    for (n, want) in cases {
        assert_eq!(String::from_utf8(number_arg(*n)).unwrap(), *want, "{n}");
    }
}
