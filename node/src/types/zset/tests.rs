//! Unit tests of the sorted-set type: both encodings against a model.

use std::collections::{BTreeMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The reference model: member -> score, and the sorted order derived
/// from it.
#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, f64>,
}

impl Model {
    fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = self.map.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

fn contents(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
    let mut v = Vec::new();
    z.for_each(|m, s| v.push((m.to_vec(), s)));
    v
}

fn check(z: &ZSet, model: &Model) {
    let want = model.sorted();
    assert_eq!(z.len(), want.len());
    assert_eq!(contents(z), want);
    if let Repr::Big(b) = &z.0 {
        b.tree.check();
        assert_eq!(b.index.len, want.len());
    }
}

fn member(rng: &mut StdRng, universe: u32, long_every: u32) -> Vec<u8> {
    let n = rng.random_range(0..universe);
    let mut m = format!("m{n}").into_bytes();
    if long_every > 0 && n % long_every == 0 {
        // A few long members, some beyond the arena's inline limit.
        let extra = if n % (long_every * 3) == 0 { 1500 } else { 70 };
        m.extend(std::iter::repeat_n(b'x', extra));
    }
    m
}

fn score(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..10) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => 0.0,
        3 => -0.0,
        4 => rng.random_range(-5..5) as f64,
        5 => rng.random_range(-1e12..1e12),
        _ => rng.random_range(-100.0..100.0),
    }
}

/// Random operation sequences against the model. Sizes swing above and
/// below the listpack threshold so both encodings and the conversion
/// between them are exercised; every query is compared too.
fn run(seed: u64, limits: ZLimits, universe: u32, long_every: u32, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut z = ZSet::with_hint(0, 0, limits);
    let mut model = Model::default();
    let mut saw_both = (false, false);
    for step in 0..steps {
        // Phases: grow, then shrink, then grow again...
        let growing = (step / (steps / 6).max(1)).is_multiple_of(2);
        let op = rng.random_range(0..100);
        match op {
            0..=44 => {
                let add = rng.random_bool(if growing { 0.85 } else { 0.15 });
                if add {
                    let m = member(&mut rng, universe, long_every);
                    let s = score(&mut rng);
                    let was = model.map.insert(m.clone(), s);
                    let new = z.insert(&m, s, limits).expect("room");
                    assert_eq!(new, was.is_none());
                } else if let Some(m) = model.map.keys().nth(rng.random_range(0..model.map.len().max(1))).cloned() {
                    assert_eq!(z.remove(&m), model.map.remove(&m));
                }
            }
            45..=54 => {
                // ZINCRBY-like update through upsert.
                let m = member(&mut rng, universe, long_every);
                let d = rng.random_range(-3.0..3.0f64).round();
                let cur = model.map.get(&m).copied();
                let out = z.upsert(&m, limits, |c| Some(c.unwrap_or(0.0) + d)).expect("room");
                let want = cur.unwrap_or(0.0) + d;
                model.map.insert(m.clone(), want);
                match cur {
                    None => assert_eq!(out, Outcome::Added),
                    Some(c) if c == want => assert_eq!(out, Outcome::Same),
                    Some(_) => assert_eq!(out, Outcome::Updated),
                }
                assert_eq!(z.score(&m), Some(want));
            }
            55..=62 => {
                let m = member(&mut rng, universe, long_every);
                let want = model.sorted();
                let r = want.iter().position(|e| e.0 == m);
                assert_eq!(z.rank(&m), r.map(|r| (r, want[r].1)));
                assert_eq!(z.score(&m), model.map.get(&m).copied());
            }
            63..=70 => {
                let want = model.sorted();
                let (a, b) = (score(&mut rng), score(&mut rng));
                let r = ScoreRange { min: a.min(b), min_ex: rng.random_bool(0.5), max: a.max(b), max_ex: rng.random_bool(0.5) };
                let (s, e) = z.score_ranks(&r);
                let inside: Vec<_> =
                    want.iter().enumerate().filter(|(_, x)| r.above_min(x.1) && r.below_max(x.1)).map(|(i, _)| i).collect();
                assert_eq!(e - s, inside.len(), "{r:?}");
                if let Some(&first) = inside.first() {
                    assert_eq!(s, first);
                }
                let rev = rng.random_bool(0.5);
                let mut got = Vec::new();
                z.for_range(s, e, rev, |m, sc| got.push((m.to_vec(), sc)));
                let mut exp: Vec<_> = want[s..e.max(s)].to_vec();
                if rev {
                    exp.reverse();
                }
                assert_eq!(got, exp);
            }
            71..=76 => {
                // Lex ranges, on the model's member order (meaningful
                // when all scores are equal; checked for consistency
                // with a set of equal scores below).
                let want = model.sorted();
                if want.iter().all(|e| e.1 == want[0].1) {
                    let a = member(&mut rng, universe, long_every);
                    let b = member(&mut rng, universe, long_every);
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    let r = LexRange { min: LexBound::Incl(&lo), max: LexBound::Excl(&hi) };
                    let (s, e) = z.lex_ranks(&r);
                    let n = want.iter().filter(|x| x.0 >= lo && x.0 < hi).count();
                    assert_eq!(e - s, n);
                }
            }
            77..=82 => {
                let max = rng.random_bool(0.5);
                let want = model.sorted();
                let mut got = None;
                let popped = z.pop(max, |m, s| got = Some((m.to_vec(), s)));
                assert_eq!(popped, !want.is_empty());
                if let Some(g) = got {
                    let e = if max { want.last() } else { want.first() };
                    assert_eq!(Some(&g), e);
                    model.map.remove(&g.0);
                }
            }
            83..=86 => {
                let n = model.map.len();
                if n > 0 {
                    let a = rng.random_range(0..n);
                    let b = (a + rng.random_range(0..4)).min(n);
                    let want = model.sorted();
                    for (m, _) in &want[a..b] {
                        model.map.remove(m);
                    }
                    assert_eq!(z.remove_ranks(a, b), b - a);
                }
            }
            87..=90 => {
                let want = model.sorted();
                if !want.is_empty() {
                    let r = rng.random_range(0..want.len());
                    assert_eq!(z.get(r).map(|(m, s)| (m.to_vec(), s)), Some(want[r].clone()));
                }
            }
            91..=93 => {
                // A complete scan returns every member at least once.
                let mut seen = HashSet::new();
                let mut cursor = 0;
                loop {
                    cursor = z.scan(cursor, rng.random_range(1..20), |m, s| {
                        assert_eq!(model.map.get(m), Some(&s));
                        seen.insert(m.to_vec());
                    });
                    if cursor == 0 {
                        break;
                    }
                }
                assert_eq!(seen.len(), model.map.len());
            }
            _ => {
                let mut buf = Vec::new();
                z.dump_into(&mut buf);
                let back = ZSet::from_dump_with(&buf, limits).expect("round trip");
                assert_eq!(contents(&back), model.sorted());
            }
        }
        if z.is_compact() {
            saw_both.0 = true;
        } else {
            saw_both.1 = true;
        }
        if step % 50 == 0 {
            check(&z, &model);
        }
        if z.is_empty() {
            // An emptied key is deleted by the commands; start afresh.
            z = ZSet::with_hint(0, 0, limits);
        }
    }
    check(&z, &model);
    assert!(saw_both.0 && saw_both.1, "both encodings exercised");
}

#[test]
fn model_small_threshold() {
    run(1, ZLimits { max_entries: 16, max_value: 8 }, 60, 0, 20_000);
}

#[test]
fn model_with_long_members() {
    run(2, ZLimits { max_entries: 16, max_value: 64 }, 80, 7, 20_000);
}

#[test]
fn model_default_limits() {
    run(3, ZLimits::default(), 400, 0, 30_000);
}

#[test]
fn model_equal_scores_lex() {
    // All scores equal: lex ranges are meaningful.
    let limits = ZLimits { max_entries: 8, max_value: 64 };
    let mut rng = StdRng::seed_from_u64(4);
    for round in 0..40 {
        let mut z = ZSet::default();
        let mut names: Vec<Vec<u8>> = (0..rng.random_range(1..60)).map(|i| format!("{:03}", (i * 7 + round) % 101).into_bytes()).collect();
        for n in &names {
            z.insert(n, 0.0, limits).expect("room");
        }
        names.sort();
        names.dedup();
        let bounds = [b"-".to_vec(), b"+".to_vec(), b"[010".to_vec(), b"(010".to_vec(), b"[050".to_vec(), b"(077".to_vec(), b"[".to_vec()];
        for lo in &bounds {
            for hi in &bounds {
                let r = LexRange::parse(lo, hi).expect("valid");
                let (s, e) = z.lex_ranks(&r);
                let want: Vec<&Vec<u8>> = names.iter().filter(|m| !r.before_min(m) && r.within_max(m)).collect();
                assert_eq!(e - s, want.len(), "{lo:?} {hi:?}");
                let mut got = Vec::new();
                z.for_range(s, e, false, |m, _| got.push(m.to_vec()));
                assert_eq!(got.iter().collect::<Vec<_>>(), want);
            }
        }
    }
}

#[test]
fn churn_compacts_the_arena() {
    let limits = ZLimits::default();
    let mut z = ZSet::default();
    let mut rng = StdRng::seed_from_u64(5);
    let mut live: Vec<Vec<u8>> = Vec::new();
    for i in 0..30_000u32 {
        let m = format!("member-{i:010}").into_bytes();
        z.insert(&m, rng.random_range(0.0..1e6), limits).expect("room");
        live.push(m);
    }
    let full = z.heap_size();
    // Delete four in five at random, then check the memory came back.
    let mut kept = Vec::new();
    for m in live {
        if rng.random_range(0..5) == 0 {
            kept.push(m);
        } else {
            assert!(z.remove(&m).is_some());
        }
    }
    assert_eq!(z.len(), kept.len());
    for m in &kept {
        assert!(z.score(m).is_some());
    }
    if let Repr::Big(b) = &z.0 {
        b.tree.check();
        let arena_live: usize = (0..b.arena.chunks.len()).map(|c| b.arena.live_in(c).len()).sum();
        assert_eq!(arena_live, kept.len());
        assert!(!b.arena.free_chunks.is_empty(), "half-dead chunks were compacted and freed");
    }
    assert!(z.heap_size() < full / 2, "{} of {}", z.heap_size(), full);
}

#[test]
fn scan_cursor_survives_resizes() {
    let limits = ZLimits { max_entries: 0, max_value: 0 };
    let mut z = ZSet::default();
    for i in 0..2000 {
        z.insert(format!("a{i}").as_bytes(), i as f64, limits).expect("room");
    }
    let mut seen = HashSet::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        cursor = z.scan(cursor, 10, |m, _| {
            seen.insert(m.to_vec());
        });
        // Grow and shrink the set between calls.
        round += 1;
        if round % 2 == 0 {
            for j in 0..50 {
                z.insert(format!("b{round}-{j}").as_bytes(), 0.0, limits).expect("room");
            }
        } else {
            for j in 0..50 {
                z.remove(format!("b{}-{j}", round - 1).as_bytes());
            }
        }
        if cursor == 0 {
            break;
        }
    }
    for i in 0..2000 {
        assert!(seen.contains(format!("a{i}").as_bytes()), "a{i} missed");
    }
}

#[test]
fn index_segments_split_and_merge() {
    let limits = ZLimits::default();
    let mut z = ZSet::default();
    let n = 100_000u32;
    for i in 0..n {
        z.insert(format!("k{i}").as_bytes(), i as f64, limits).expect("room");
    }
    let Repr::Big(b) = &z.0 else { panic!("tree encoding") };
    assert!(b.index.segs.len() > 4, "{} segments", b.index.segs.len());
    let mut cover = 0;
    for s in &b.index.segs {
        assert_eq!(s.lo, cover, "segments are contiguous");
        cover = s.hi;
        assert!(s.homes <= SEG_MAX_HOMES);
        let hs: Vec<u32> = s.entries().map(slot_hash).collect();
        assert!(hs.windows(2).all(|w| w[0] <= w[1]), "sorted by hash");
        assert!(hs.iter().all(|&h| (h as u64) >= s.lo && (h as u64) < s.hi));
        assert_eq!(hs.len(), s.len);
    }
    assert_eq!(cover, 1 << 32);
    for i in (0..n).step_by(7) {
        assert_eq!(z.score(format!("k{i}").as_bytes()), Some(i as f64));
    }
    let mut seen = HashSet::new();
    let mut cursor = 0;
    loop {
        cursor = z.scan(cursor, 100, |m, _| {
            seen.insert(m.to_vec());
        });
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), n as usize);
    for i in 0..n - 10 {
        assert!(z.remove(format!("k{i}").as_bytes()).is_some());
    }
    let Repr::Big(b) = &z.0 else { panic!("tree encoding") };
    assert_eq!(b.index.len, 10);
    assert!(b.index.heap_size() < 64 * 1024, "shrunk: {}", b.index.heap_size());
    for i in n - 10..n {
        assert_eq!(z.score(format!("k{i}").as_bytes()), Some(i as f64));
    }
}

#[test]
fn dump_round_trip_and_bad_input() {
    let limits = ZLimits::default();
    for n in [0usize, 1, 5, 128, 129, 3000] {
        let mut z = ZSet::default();
        for i in 0..n {
            z.insert(format!("m{i}").as_bytes(), (i as f64) * 1.5 - 7.0, limits).expect("room");
        }
        z.insert(b"long", f64::INFINITY, limits).expect("room");
        let mut buf = Vec::new();
        z.dump_into(&mut buf);
        let back = ZSet::from_dump(&buf).expect("round trip");
        assert_eq!(contents(&back), contents(&z));
        assert_eq!(back.encoding(), z.encoding());
        // Truncations and garbage never panic and are refused.
        for cut in 0..buf.len().min(64) {
            assert!(ZSet::from_dump(&buf[..cut]).is_none());
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert!(ZSet::from_dump(&extra).is_none());
    }
    assert!(ZSet::from_dump(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_none());
    let mut nan = vec![1, 1];
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    nan.extend_from_slice(&[1, b'a']);
    assert!(ZSet::from_dump(&nan).is_none());
}

#[test]
fn encoding_follows_limits() {
    let limits = ZLimits { max_entries: 3, max_value: 5 };
    let mut z = ZSet::with_hint(1, 1, limits);
    assert_eq!(z.encoding(), "listpack");
    for m in [b"a", b"b", b"c"] {
        z.insert(m, 1.0, limits).expect("room");
    }
    assert_eq!(z.encoding(), "listpack");
    z.insert(b"d", 1.0, limits).expect("room");
    assert_eq!(z.encoding(), "skiplist");
    let mut z = ZSet::default();
    z.insert(b"toolong", 1.0, limits).expect("room");
    assert_eq!(z.encoding(), "skiplist");
    assert_eq!(ZSet::with_hint(4, 1, limits).encoding(), "skiplist");
    assert_eq!(ZSet::from_sorted(&[(b"a", 1.0), (b"b", 2.0)], limits).expect("room").encoding(), "listpack");
}

#[test]
fn ranges_parse_like_redis() {
    let r = ScoreRange::parse(b"(1.5", b"+inf").expect("valid");
    assert!(r.min_ex && r.min == 1.5 && r.max == f64::INFINITY && !r.max_ex);
    assert!(ScoreRange::parse(b"nan", b"1").is_none());
    assert!(ScoreRange::parse(b"1x", b"2").is_none());
    assert_eq!(ScoreRange::parse(b"", b"(").map(|r| (r.min, r.max, r.max_ex)), Some((0.0, 0.0, true)));
    assert_eq!(ScoreRange::parse(b" 5", b"-INF").map(|r| (r.min, r.max)), Some((5.0, f64::NEG_INFINITY)));
    assert!(LexRange::parse(b"a", b"+").is_none());
    assert!(LexRange::parse(b"++", b"+").is_none());
    assert_eq!(LexRange::parse(b"[a", b"(b").map(|r| (r.min, r.max)), Some((LexBound::Incl(b"a"), LexBound::Excl(b"b"))));
}

#[test]
fn small_int_scores_are_compact_and_exact() {
    let limits = ZLimits::default();
    let mut z = ZSet::default();
    for (i, s) in [0.0, -0.0, 1.0, -1.0, 9007199254740992.0, 9007199254740994.0, 0.5, -1e300].iter().enumerate() {
        z.insert(format!("m{i}").as_bytes(), *s, limits).expect("room");
    }
    // -0 is stored as the integer 0 in the compact encoding, as in Redis.
    assert_eq!(z.score(b"m1").map(|s| s.is_sign_negative()), Some(false));
    let mut t = ZSet::with_hint(1000, 0, limits);
    t.insert(b"neg", -0.0, limits).expect("room");
    assert_eq!(t.score(b"neg").map(|s| s.is_sign_negative()), Some(true));
    assert_eq!(z.score(b"m5"), Some(9007199254740994.0));
    assert_eq!(z.score(b"m7"), Some(-1e300));
}

#[test]
fn prefetch_steps_change_nothing() {
    let limits = ZLimits { max_entries: 8, max_value: 64 };
    let mut z = ZSet::default();
    z.insert(b"a", 1.0, limits).expect("room");
    assert_eq!(z.prefetch_head(b"a"), None, "a packed set has nothing to prefetch");
    for i in 0..1000 {
        z.insert(format!("m{i}").as_bytes(), i as f64, limits).expect("room");
    }
    for i in 0..2000 {
        let m = format!("m{i}");
        let h = z.prefetch_head(m.as_bytes()).expect("big");
        z.prefetch_chain(h);
        z.prefetch_chain(!h);
    }
    assert_eq!(z.len(), 1001);
    assert_eq!(z.score(b"m999"), Some(999.0));
    assert_eq!(z.score(b"m1000"), None);
}
