//! Per-location update operations on a document: following a location,
//! ordering several locations so that applying one never invalidates
//! another, deleting, merging (RFC 7396), arithmetic, string and array edits.

use super::path::Loc;
use super::value::{Json, Members};
use crate::types::SmallBytes;

/// The node at `loc`.
pub fn node_mut<'a>(root: &'a mut Json, loc: &[u32]) -> Option<&'a mut Json> {
    let mut cur = root;
    for &p in loc {
        cur = cur.child_mut(p as usize)?;
    }
    Some(cur)
}

/// Orders `(reply slot, location)` pairs so that mutating them in turn is
/// safe: within one array higher indices come first, and a node comes
/// before its ancestors (descending lexicographic order of locations).
pub fn sort_for_mutation(locs: &mut [(usize, Loc)]) {
    locs.sort_by(|a, b| b.1.cmp(&a.1));
}

/// Keeps only the outermost of nested locations (a location whose ancestor
/// is also listed is dropped) and removes duplicates; the result is in
/// mutation order (see `sort_for_mutation`).
pub fn outermost(mut locs: Vec<Loc>) -> Vec<Loc> {
    locs.sort();
    let mut kept: Vec<Loc> = Vec::with_capacity(locs.len());
    for l in locs {
        if kept.last().is_some_and(|k| l.starts_with(k)) {
            continue;
        }
        kept.push(l);
    }
    kept.reverse();
    kept
}

/// Removes the node at a non-empty `loc`; returns it.
pub fn remove_at(root: &mut Json, loc: &[u32]) -> Option<Json> {
    let (&last, parent) = loc.split_last()?;
    match node_mut(root, parent)? {
        Json::Array(a) if (last as usize) < a.len() => Some(a.remove(last as usize)),
        Json::Object(m) if (last as usize) < m.len() => Some(m.remove(last as usize).1),
        _ => None,
    }
}

/// Above this many (patch key, target key) pairs a merge indexes the
/// target's keys instead of scanning them for each patch key (a patch of
/// 20,000 keys into as many took 20 s scanning).
const MERGE_SCAN_MAX: usize = 4096;

/// `merge` of the members `pm` into the members `tm` through a hash index
/// of `tm`'s keys: the same result (deleted keys gone, new ones appended in
/// the patch's order), in time linear in both.
fn merge_indexed(tm: &mut Members, pm: &Members) {
    let mut index: std::collections::HashMap<SmallBytes, usize> = tm.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
    let mut gone = vec![false; tm.len()];
    for (k, pv) in pm {
        match (index.get(&k[..]).copied(), pv) {
            (Some(i), Json::Null) => {
                gone[i] = true;
                index.remove(&k[..]);
            }
            (None, Json::Null) => {}
            (Some(i), _) => merge(&mut tm[i].1, pv),
            (None, _) => {
                let mut fresh = Json::Null;
                merge(&mut fresh, pv);
                index.insert(k.clone(), tm.len());
                tm.push((k.clone(), fresh));
                gone.push(false);
            }
        }
    }
    if gone.contains(&true) {
        let mut i = 0;
        tm.retain(|_| {
            i += 1;
            !gone[i - 1]
        });
    }
}

/// RFC 7396 merge of `patch` into `target`.
pub fn merge(target: &mut Json, patch: &Json) {
    let Json::Object(pm) = patch else {
        *target = patch.clone();
        return;
    };
    if !matches!(target, Json::Object(_)) {
        *target = Json::Object(Vec::new());
    }
    let Json::Object(tm) = target else { return };
    if pm.len().saturating_mul(tm.len()) > MERGE_SCAN_MAX {
        merge_indexed(tm, pm)
    } else {
        merge_scanned(tm, pm)
    }
}

/// `merge` of the members `pm` into `tm`, finding each patch key by a scan
/// of `tm` (small objects).
fn merge_scanned(tm: &mut Members, pm: &Members) {
    for (k, pv) in pm {
        let pos = tm.iter().position(|(tk, _)| tk == k);
        match (pos, pv) {
            (Some(i), Json::Null) => {
                tm.remove(i);
            }
            (None, Json::Null) => {}
            (Some(i), _) => merge(&mut tm[i].1, pv),
            (None, _) => {
                let mut fresh = Json::Null;
                merge(&mut fresh, pv);
                tm.push((k.clone(), fresh));
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumOp {
    Incr,
    Mult,
}

/// `cur op n` with RedisJSON's number rules: integer arithmetic when both
/// are integers (falling back to floats on overflow), float otherwise.
/// `None` when the result is not a finite number.
pub fn num_op(cur: &Json, n: &Json, op: NumOp) -> Option<Json> {
    if let (Json::Int(a), Json::Int(b)) = (cur, n) {
        let r = match op {
            NumOp::Incr => a.checked_add(*b),
            NumOp::Mult => a.checked_mul(*b),
        };
        if let Some(r) = r {
            return Some(Json::Int(r));
        }
    }
    let (a, b) = (cur.as_f64()?, n.as_f64()?);
    let r = match op {
        NumOp::Incr => a + b,
        NumOp::Mult => a * b,
    };
    r.is_finite().then_some(Json::Float(r))
}

/// Resolves ARRINSERT's index (negative counts from the end) to a position
/// in `0..=len`; `None` when out of range.
pub fn insert_position(len: usize, index: i64) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len.checked_add(index)? } else { index };
    (0..=len).contains(&i).then_some(i as usize)
}

/// ARRPOP: removes the element at `index` (clamped into the array);
/// `None` for an empty array.
pub fn arr_pop(a: &mut Vec<Json>, index: i64) -> Option<Json> {
    if a.is_empty() {
        return None;
    }
    let len = a.len() as i64;
    let i = if index < 0 { (len + index.max(-len)).max(0) } else { index.min(len - 1) };
    Some(a.remove(i as usize))
}

/// ARRTRIM: keeps the inclusive range `start..=stop` (negative values count
/// from the end, out-of-range values are clamped); returns the new length.
pub fn arr_trim(a: &mut Vec<Json>, start: i64, stop: i64) -> usize {
    let len = a.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i.max(-len)).max(0) } else { i };
    let (s, e) = (norm(start), norm(stop).min(len - 1));
    if len == 0 || s >= len || s > e {
        a.clear();
    } else {
        a.truncate(e as usize + 1);
        a.drain(..s as usize);
    }
    a.len()
}

/// ARRINDEX's search window: RedisJSON's normalisation (negative values
/// count from the end, `stop` 0 means the end, the window excludes `stop`).
pub fn index_window(len: usize, start: i64, stop: i64) -> (usize, usize) {
    let len = len as i64;
    let s = if start < 0 { (len + start).max(0) } else { start.min(len) };
    let e = if stop == 0 {
        len
    } else if stop < 0 {
        (len + stop).max(0)
    } else {
        stop.min(len)
    };
    (s as usize, e as usize)
}

/// JSON.CLEAR on one node: empties containers, zeroes numbers. Returns
/// whether anything changed.
pub fn clear(v: &mut Json) -> bool {
    match v {
        Json::Array(a) if !a.is_empty() => {
            *a = Vec::new();
            true
        }
        Json::Object(m) if !m.is_empty() => {
            *m = Vec::new();
            true
        }
        Json::Int(n) if *n != 0 => {
            *n = 0;
            true
        }
        Json::Float(f) if *f != 0.0 => {
            *v = Json::Int(0);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Json {
        Json::parse(s.as_bytes()).unwrap()
    }

    fn t(v: &Json) -> String {
        String::from_utf8(v.to_text()).unwrap()
    }

    #[test]
    fn merge_follows_rfc_7396() {
        let cases = [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
            (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
            (r#"{"a":{"b":"c"}}"#, r#"{"a":{"b":"d","c":null}}"#, r#"{"a":{"b":"d"}}"#),
            (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
            (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
            (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
            (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
            (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
            (r#"{}"#, r#"{"a":{"bb":{"ccc":null}}}"#, r#"{"a":{"bb":{}}}"#),
        ];
        for (target, patch, want) in cases {
            let mut v = p(target);
            merge(&mut v, &p(patch));
            assert_eq!(t(&v), want, "{target} + {patch}");
        }
    }

    /// Large objects merge through the index with the scan's result.
    #[test]
    fn indexed_merge_matches_the_scan() {
        let mut x = 11u64;
        let mut rnd = |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for _ in 0..20 {
            let members = |rnd: &mut dyn FnMut(u64) -> u64, n: u64| {
                let body: Vec<String> = (0..n)
                    .map(|_| {
                        let v = match rnd(4) {
                            0 => "null".to_string(),
                            1 => format!("{{\"x\":{}}}", rnd(9)),
                            _ => rnd(100).to_string(),
                        };
                        format!("\"k{}\":{v}", rnd(150))
                    })
                    .collect();
                p(&format!("{{{}}}", body.join(",")))
            };
            let (target, patch) = (members(&mut rnd, 120), members(&mut rnd, 80));
            let (Json::Object(tm), Json::Object(pm)) = (&target, &patch) else { panic!("objects") };
            assert!(pm.len() * tm.len() > MERGE_SCAN_MAX, "the index is used");
            let mut indexed = tm.clone();
            merge_indexed(&mut indexed, pm);
            let mut scanned = tm.clone();
            merge_scanned(&mut scanned, pm);
            assert_eq!(t(&Json::Object(indexed)), t(&Json::Object(scanned)));
        }
    }

    #[test]
    fn numbers() {
        assert!(matches!(num_op(&Json::Int(2), &Json::Int(3), NumOp::Incr), Some(Json::Int(5))));
        assert!(matches!(num_op(&Json::Int(2), &Json::Float(0.5), NumOp::Incr), Some(Json::Float(f)) if f == 2.5));
        assert!(matches!(num_op(&Json::Int(i64::MAX), &Json::Int(1), NumOp::Incr), Some(Json::Float(_))));
        assert!(num_op(&Json::Float(f64::MAX), &Json::Int(2), NumOp::Mult).is_none());
    }

    #[test]
    fn array_edits() {
        let arr = |s: &str| match p(s) {
            Json::Array(a) => a,
            _ => unreachable!(),
        };
        let mut a = arr("[0,1,2,3,4]");
        assert_eq!(arr_trim(&mut a, 1, -2), 3);
        assert_eq!(t(&Json::Array(a)), "[1,2,3]");
        let mut a = arr("[0,1,2,3,4]");
        assert_eq!(arr_trim(&mut a, 3, 1), 0);
        let mut a = arr("[0,1,2,3,4]");
        assert_eq!(arr_trim(&mut a, -100, 100), 5);
        let mut a = arr("[0,1,2]");
        assert!(matches!(arr_pop(&mut a, 100), Some(Json::Int(2))));
        assert!(matches!(arr_pop(&mut a, -100), Some(Json::Int(0))));
        assert_eq!(insert_position(3, -1), Some(2));
        assert_eq!(insert_position(3, 3), Some(3));
        assert_eq!(insert_position(3, 4), None);
        assert_eq!(insert_position(3, -4), None);
        assert_eq!(index_window(5, 0, 0), (0, 5));
        assert_eq!(index_window(5, -2, 0), (3, 5));
        assert_eq!(index_window(5, 1, -1), (1, 4));
    }

    #[test]
    fn mutation_order() {
        let mut v: Vec<(usize, Loc)> = vec![(0, vec![0]), (1, vec![0, 1]), (2, vec![1]), (3, vec![0, 0])];
        sort_for_mutation(&mut v);
        assert_eq!(v.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 1, 3, 0]);
        assert_eq!(outermost(vec![vec![0, 1], vec![0], vec![2], vec![2], vec![1, 5]]), vec![vec![2], vec![1, 5], vec![0]]);
    }
}
