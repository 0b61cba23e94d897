//! Property test of the JSON commands with serde_json as the oracle:
//! seeded random documents go through JSON.SET (compact or pretty text) and
//! come back through JSON.GET byte for byte; random static paths read the
//! same through a document kept as text and one kept as a tree, and match
//! the value serde_json finds; random updates (SET, DEL, NUMINCRBY,
//! STRAPPEND, ARRAPPEND, ARRINSERT, ARRPOP, ARRTRIM, TOGGLE, CLEAR, MERGE)
//! leave both documents equal to the same update applied to the
//! `serde_json::Value`, with the same replies.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value as Sj};

use super::*;
use crate::store::Value;
use crate::types::json::text::{is_canonical, TEXT_MAX};
use crate::types::json::{Json, JsonDoc};

const KEYS: &[&str] = &["a", "b", "id", "name", "price", "x y", "k.1", "é", "n\"q", "a_key_longer_than_22_bytes"];
const CHARS: &[char] = &['a', 'z', ' ', '"', '\\', '/', '\n', '\t', '\u{1}', '\u{1f}', '\u{7f}', 'é', '✓', '😀'];

fn string(rng: &mut StdRng) -> String {
    let n = if rng.random_bool(0.2) { rng.random_range(20..40) } else { rng.random_range(0..8) };
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())]).collect()
}

fn number(rng: &mut StdRng) -> Sj {
    match rng.random_range(0..8) {
        0 => Sj::from(rng.random_range(-100..100)),
        1 => Sj::from([i64::MAX, i64::MIN, 0][rng.random_range(0..3)]),
        2 => Sj::from(rng.random::<i64>()),
        3 => Sj::from(rng.random_range(-1_000_000..1_000_000) as f64 / 100.0),
        4 => Sj::from([1e20, 2.0, -0.0, 1.5e-7, 0.1, 1e300][rng.random_range(0..6)]),
        _ => loop {
            let f = f64::from_bits(rng.random::<u64>());
            if f.is_finite() {
                break Sj::from(f);
            }
        },
    }
}

fn value(rng: &mut StdRng, depth: usize) -> Sj {
    let kind = if depth >= 4 { rng.random_range(0..7) } else { rng.random_range(0..10) };
    match kind {
        0 => Sj::Null,
        1 => Sj::Bool(rng.random()),
        2..=4 => number(rng),
        5 | 6 => Sj::String(string(rng)),
        7 | 8 => {
            let n = if rng.random_bool(0.1) { rng.random_range(0..20) } else { rng.random_range(0..5) };
            Sj::Array((0..n).map(|_| value(rng, depth + 1)).collect())
        }
        _ => {
            let n = if rng.random_bool(0.1) { rng.random_range(8..16) } else { rng.random_range(0..6) };
            let mut m = Map::new();
            for i in 0..n {
                let k = if i < KEYS.len() && rng.random_bool(0.7) {
                    KEYS[rng.random_range(0..KEYS.len())].to_string()
                } else {
                    format!("k{i}")
                };
                m.insert(k, value(rng, depth + 1));
            }
            Sj::Object(m)
        }
    }
}

fn document(rng: &mut StdRng) -> Sj {
    match rng.random_range(0..10) {
        0 => value(rng, 4),
        1 | 2 => Sj::Array((0..rng.random_range(0..6)).map(|_| value(rng, 1)).collect()),
        _ => {
            let mut m = Map::new();
            for k in KEYS {
                if rng.random_bool(0.6) {
                    m.insert(k.to_string(), value(rng, 1));
                }
            }
            Sj::Object(m)
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Idx(i64),
}

/// A random static path; with `exists`, one that selects a value.
fn path(rng: &mut StdRng, doc: &Sj, exists: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut cur = doc;
    while rng.random_bool(0.7) {
        match cur {
            Sj::Object(m) if !m.is_empty() => {
                if !exists && rng.random_bool(0.1) {
                    steps.push(Step::Key("zz".into()));
                    break;
                }
                let i = rng.random_range(0..m.len());
                let (k, v) = m.iter().nth(i).expect("in range");
                steps.push(Step::Key(k.clone()));
                cur = v;
            }
            Sj::Array(a) if !a.is_empty() => {
                if !exists && rng.random_bool(0.1) {
                    steps.push(Step::Idx(a.len() as i64 + rng.random_range(0..3)));
                    break;
                }
                let i = rng.random_range(0..a.len());
                steps.push(Step::Idx(if rng.random_bool(0.3) { i as i64 - a.len() as i64 } else { i as i64 }));
                cur = &a[i];
            }
            _ => break,
        }
    }
    steps
}

/// The path as an argument: `$`-based or legacy.
fn path_arg(steps: &[Step], legacy: bool) -> String {
    let mut s = String::from(if legacy { "" } else { "$" });
    for st in steps {
        match st {
            Step::Key(k) if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                s.push('.');
                s.push_str(k);
            }
            Step::Key(k) => s.push_str(&format!("['{k}']")),
            Step::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

fn get<'a>(doc: &'a Sj, steps: &[Step]) -> Option<&'a Sj> {
    let mut cur = doc;
    for st in steps {
        cur = match (st, cur) {
            (Step::Key(k), Sj::Object(m)) => m.get(k)?,
            (Step::Idx(i), Sj::Array(a)) => a.get(usize::try_from(if *i < 0 { a.len() as i64 + i } else { *i }).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(doc: &'a mut Sj, steps: &[Step]) -> Option<&'a mut Sj> {
    let mut cur = doc;
    for st in steps {
        cur = match (st, cur) {
            (Step::Key(k), Sj::Object(m)) => m.get_mut(k)?,
            (Step::Idx(i), Sj::Array(a)) => {
                let n = a.len() as i64;
                a.get_mut(usize::try_from(if *i < 0 { n + i } else { *i }).ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// serde_json's compact text, with floats in ryu's shortest form as
/// RedisJSON prints them (`1e300`, where this serde_json writes `1e+300`).
fn text(v: &Sj) -> String {
    struct Ryu;
    impl serde_json::ser::Formatter for Ryu {
        fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, f: f64) -> std::io::Result<()> {
            w.write_all(ryu::Buffer::new().format_finite(f).as_bytes())
        }
    }
    let mut out = Vec::new();
    serde::Serialize::serialize(v, &mut serde_json::Serializer::with_formatter(&mut out, Ryu)).expect("serialises");
    String::from_utf8(out).expect("UTF-8")
}

/// RFC 7396, as JSON.MERGE applies it.
fn merge(target: &mut Sj, patch: &Sj) {
    let Sj::Object(pm) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Sj::Object(Map::new());
    }
    let Sj::Object(tm) = target else { return };
    for (k, pv) in pm {
        if pv.is_null() {
            tm.shift_remove(k);
        } else {
            merge(tm.entry(k.clone()).or_insert(Sj::Null), pv);
        }
    }
}

fn exec(sh: &mut Shard, args: &[&str]) -> String {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let mut out = Out::new(false);
    let spec = commands::lookup(&args[0]).expect("known command");
    crate::commands::exec_one(sh, 0, spec, &args, &mut out);
    show(&out.buf).0
}

fn bulk(s: &str) -> String {
    format!("'{s}'")
}

/// Every static read of `steps` must agree between the text document `k`,
/// the tree document `t` and serde_json.
fn check_read(sh: &mut Shard, doc: &Sj, steps: &[Step]) {
    let found = get(doc, steps).map(text);
    for legacy in [false, true] {
        let p = path_arg(steps, legacy);
        let want = match (&found, legacy) {
            (Some(v), true) => bulk(v),
            (Some(v), false) => bulk(&format!("[{v}]")),
            // Checked by prefix below: the message names the normalized path.
            (None, true) => String::new(),
            (None, false) => bulk("[]"),
        };
        for key in ["k", "t"] {
            let got = exec(sh, &["JSON.GET", key, &p]);
            if found.is_none() && legacy {
                assert!(got.starts_with("-ERR Path '"), "JSON.GET {key} {p}: {got}");
            } else {
                assert_eq!(got, want, "JSON.GET {key} {p}");
            }
        }
        if found.is_some() || !legacy {
            let mget = exec(sh, &["JSON.MGET", "k", "t", &p]);
            assert_eq!(mget, format!("[{want}, {want}]"), "JSON.MGET k t {p}");
        }
    }
}

/// One random update applied to key `k` and to the oracle.
fn update(rng: &mut StdRng, sh: &mut Shard, doc: &mut Sj) {
    let steps = path(rng, doc, true);
    let p = path_arg(&steps, rng.random_bool(0.5));
    let node = get(doc, &steps).expect("path exists").clone();
    let fresh = value(rng, 3);
    let cmd: Vec<String> = match (rng.random_range(0..4), &node) {
        (0, Sj::Object(m)) if rng.random_bool(0.5) => {
            // A new member goes at the end of its object.
            let Some(k) = KEYS.iter().chain(&["zz", "new key"]).find(|k| !m.contains_key(**k)) else { return };
            let mut new = steps.clone();
            new.push(Step::Key(k.to_string()));
            let Some(Sj::Object(m)) = get_mut(doc, &steps) else { unreachable!("an object") };
            m.insert(k.to_string(), fresh.clone());
            vec!["JSON.SET".into(), "k".into(), path_arg(&new, rng.random_bool(0.5)), text(&fresh)]
        }
        (0, _) => {
            *get_mut(doc, &steps).expect("exists") = fresh.clone();
            vec!["JSON.SET".into(), "k".into(), p, text(&fresh)]
        }
        (1, _) if !steps.is_empty() => {
            let (last, parent) = steps.split_last().expect("non-empty");
            match (get_mut(doc, parent).expect("exists"), last) {
                (Sj::Object(m), Step::Key(k)) => {
                    m.shift_remove(k);
                }
                (Sj::Array(a), Step::Idx(i)) => {
                    let n = a.len() as i64;
                    a.remove((if *i < 0 { n + i } else { *i }) as usize);
                }
                _ => unreachable!("the path was walked from the document"),
            }
            vec!["JSON.DEL".into(), "k".into(), p]
        }
        (_, Sj::Number(n)) if n.as_i64().is_some_and(|n| n.unsigned_abs() < 1 << 40) => {
            let by = rng.random_range(-1000..1000);
            *get_mut(doc, &steps).expect("exists") = Sj::from(n.as_i64().expect("checked") + by);
            vec!["JSON.NUMINCRBY".into(), "k".into(), p, by.to_string()]
        }
        (_, Sj::String(s)) => {
            let add = string(rng);
            *get_mut(doc, &steps).expect("exists") = Sj::String(format!("{s}{add}"));
            vec!["JSON.STRAPPEND".into(), "k".into(), p, text(&Sj::String(add))]
        }
        (_, Sj::Bool(b)) => {
            *get_mut(doc, &steps).expect("exists") = Sj::Bool(!b);
            vec!["JSON.TOGGLE".into(), "k".into(), p]
        }
        (_, Sj::Array(a)) => {
            let Some(Sj::Array(arr)) = get_mut(doc, &steps) else { unreachable!("an array") };
            let len = a.len();
            match rng.random_range(0..5) {
                0 => {
                    arr.push(fresh.clone());
                    vec!["JSON.ARRAPPEND".into(), "k".into(), p, text(&fresh)]
                }
                1 => {
                    let at = rng.random_range(0..=len);
                    arr.insert(at, fresh.clone());
                    vec!["JSON.ARRINSERT".into(), "k".into(), p, at.to_string(), text(&fresh)]
                }
                2 if len > 0 => {
                    let at = rng.random_range(0..len);
                    arr.remove(at);
                    vec!["JSON.ARRPOP".into(), "k".into(), p, at.to_string()]
                }
                3 if len > 0 => {
                    let start = rng.random_range(0..len);
                    let stop = rng.random_range(start..len);
                    *arr = arr[start..=stop].to_vec();
                    vec!["JSON.ARRTRIM".into(), "k".into(), p, start.to_string(), stop.to_string()]
                }
                _ => {
                    arr.clear();
                    vec!["JSON.CLEAR".into(), "k".into(), p]
                }
            }
        }
        (_, Sj::Object(_)) => {
            if rng.random_bool(0.3) {
                let Some(Sj::Object(m)) = get_mut(doc, &steps) else { unreachable!("an object") };
                m.clear();
                vec!["JSON.CLEAR".into(), "k".into(), p]
            } else {
                let mut patch = Map::new();
                for _ in 0..rng.random_range(0..4) {
                    let v = if rng.random_bool(0.3) { Sj::Null } else { value(rng, 3) };
                    patch.insert(KEYS[rng.random_range(0..KEYS.len())].to_string(), v);
                }
                let patch = Sj::Object(patch);
                merge(get_mut(doc, &steps).expect("exists"), &patch);
                vec!["JSON.MERGE".into(), "k".into(), p, text(&patch)]
            }
        }
        _ => return,
    };
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let reply = exec(sh, &args);
    assert!(!reply.starts_with('-'), "{cmd:?}: {reply}");
    assert_eq!(exec(sh, &["JSON.GET", "k"]), bulk(&text(doc)), "after {cmd:?}");
    // The same update on the tree.
    let mut on_tree = args.clone();
    on_tree[1] = "t";
    assert_eq!(exec(sh, &on_tree), reply, "{cmd:?} on the tree");
    assert_eq!(exec(sh, &["JSON.GET", "t"]), bulk(&text(doc)), "after {cmd:?} on the tree");
}

/// JSON.DEBUG MEMORY of a document kept as text: an array or object of at
/// most 16 KiB of text (a scalar may be kept in the header instead).
fn text_memory(doc: &Sj) -> Option<String> {
    let len = text(doc).len();
    (matches!(doc, Sj::Array(_) | Sj::Object(_)) && len <= TEXT_MAX).then(|| (40 + len).to_string())
}

/// Stores `text` at `key` as a tree, the form documents past 16 KiB take.
fn put_tree(sh: &mut Shard, key: &str, text: &str) {
    let doc = JsonDoc::new(Json::parse(text.as_bytes()).expect("parses"));
    sh.db(0).set(key.as_bytes(), Value::Json(Box::new(doc)), false, 0);
}

#[test]
fn random_documents_against_serde_json() {
    let mut rng = StdRng::seed_from_u64(0x6a73_6f6e);
    let mut sh = shard();
    for round in 0..400 {
        let mut doc = document(&mut rng);
        let compact = text(&doc);
        // Pretty input is accepted and kept in the compact form.
        let input = if round % 3 == 0 { serde_json::to_string_pretty(&doc).expect("serialises") } else { compact.clone() };
        // The compact text takes the one-pass path; anything else is parsed.
        assert!(is_canonical(compact.as_bytes()), "{compact}");
        assert_eq!(is_canonical(input.as_bytes()), input == compact, "{input}");
        assert_eq!(exec(&mut sh, &["JSON.SET", "k", "$", &input]), "+OK", "{input}");
        put_tree(&mut sh, "t", &input);
        // Reads leave the text a text.
        let memory = exec(&mut sh, &["JSON.DEBUG", "MEMORY", "k"]);
        if let Some(m) = text_memory(&doc) {
            assert_eq!(memory, m, "{compact}");
        }
        for key in ["k", "t"] {
            assert_eq!(exec(&mut sh, &["JSON.GET", key]), bulk(&compact), "JSON.GET {key} of {input}");
        }
        for _ in 0..8 {
            let steps = path(&mut rng, &doc, false);
            check_read(&mut sh, &doc, &steps);
        }
        // Paths that are not static read through a temporary tree.
        for p in ["$..a", "$.*", "$..[0]", "$[*].id"] {
            assert_eq!(exec(&mut sh, &["JSON.GET", "k", p]), exec(&mut sh, &["JSON.GET", "t", p]), "{p}");
        }
        assert_eq!(exec(&mut sh, &["JSON.DEBUG", "MEMORY", "k"]), memory);
        for _ in 0..10 {
            update(&mut rng, &mut sh, &mut doc);
            // Updates leave a small document as text.
            if let Some(m) = text_memory(&doc) {
                assert_eq!(exec(&mut sh, &["JSON.DEBUG", "MEMORY", "k"]), m, "{}", text(&doc));
            }
        }
    }
}
