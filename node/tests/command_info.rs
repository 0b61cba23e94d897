//! COMMAND INFO against Redis 7.2: for every command in our table, and
//! every subcommand a container (CLIENT, OBJECT, ...) declares, what
//! COMMAND INFO prints — arity, flags, first/last/step key, ACL categories,
//! tips, and each key spec (flags, begin_search, find_keys) — must equal
//! what redis-server 7.2 prints for it. Client libraries route and check
//! commands by these: cluster clients find keys through the key specs and
//! `movablekeys` and pick nodes by the request/response tips, some refuse
//! to send `write` commands to replicas, scripts check `noscript`, ACL
//! tools read the categories. Flags, categories and key-spec flags are
//! compared in order, as Redis prints them.
//! A container must declare subcommands exactly when Redis's has them, and
//! only subcommands Redis has (not all of them: those we do not implement
//! are not declared).
//!
//! The reference is node/tests/data/redis-7.2-commands.json, generated from
//! Redis's own command definitions by scripts/gen-redis-commands.py (see its
//! header to regenerate it). Our side is the real COMMAND INFO entry, as
//! `write_spec` writes it for a RESP3 client, parsed back.

use std::collections::{BTreeMap, BTreeSet};

use damselfly::commands::{self, CommandSpec, Exec};
use damselfly::resp::Out;
use serde_json::{Map, Value};

/// Our commands Redis 7.2 does not have (RedisJSON's): not compared. The
/// test checks that this is exactly the set of our commands missing from
/// the reference.
const NOT_IN_REDIS: &[&str] = &[
    "json.arrappend",
    "json.arrindex",
    "json.arrinsert",
    "json.arrlen",
    "json.arrpop",
    "json.arrtrim",
    "json.clear",
    "json.debug",
    "json.del",
    "json.forget",
    "json.get",
    "json.merge",
    "json.mget",
    "json.mset",
    "json.numincrby",
    "json.nummultby",
    "json.objkeys",
    "json.objlen",
    "json.resp",
    "json.set",
    "json.strappend",
    "json.strlen",
    "json.toggle",
    "json.type",
];

/// Command flags Redis prints that describe machinery we do not have, left
/// out of the comparison on both sides. (Redis hides `may_replicate`,
/// `sentinel`, `only_sentinel`, `protected` and `touches_arbitrary_keys`
/// itself, so they are not in the reference at all.)
const UNMODELLED_FLAGS: &[&str] = &[
    // Redis's cluster redirection for importing slots; ours differs.
    "asking",
    // Redis's async (replica) loading.
    "no_async_loading",
    // Only used by Redis's ACL key checks of commands with optional keys.
    "no_mandatory_keys",
];

/// Known differences, as (command or `container|subcommand`, field), in
/// declarations of coordinator commands (none today). Each entry must still be a difference (the test
/// fails once it is fixed, so the entry is removed with the fix), and only
/// coordinator commands may be listed. The failure
/// message of a run with an entry removed shows ours and Redis's values.
const KNOWN: &[(&str, &str)] = &[];

/// The compared fields of one COMMAND INFO entry: arity, command flags,
/// the legacy (first, last, step) key triple, ACL categories, tips, each
/// key spec's begin_search and find_keys, and each key spec's access flags.
const FIELDS: &[&str] = &["arity", "flags", "keys", "acl_categories", "tips", "key_specs", "key_spec_flags"];

fn reference() -> Map<String, Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/redis-7.2-commands.json");
    let text = std::fs::read_to_string(path).expect("reference data readable");
    let mut v: Value = serde_json::from_str(&text).expect("reference data is JSON");
    match v["commands"].take() {
        Value::Object(m) => m,
        _ => panic!("reference data has no \"commands\" object"),
    }
}

/// Parses one RESP3 value (as `Out` writes it) into JSON: maps become
/// objects, arrays and sets arrays, strings and integers themselves.
fn parse(buf: &[u8], at: &mut usize) -> Value {
    let end = at.to_owned() + buf[*at..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let line = std::str::from_utf8(&buf[*at + 1..end]).expect("UTF-8 header");
    let tag = buf[*at];
    *at = end + 2;
    let n = || line.parse::<i64>().expect("length");
    match tag {
        b'+' => Value::String(line.to_owned()),
        b':' => Value::from(n()),
        b'$' => {
            let len = n() as usize;
            let s = std::str::from_utf8(&buf[*at..*at + len]).expect("UTF-8 bulk").to_owned();
            *at += len + 2;
            Value::String(s)
        }
        b'*' | b'~' => Value::Array((0..n()).map(|_| parse(buf, at)).collect()),
        b'%' => Value::Object(
            (0..n())
                .map(|_| {
                    let Value::String(k) = parse(buf, at) else { panic!("map key is not a string") };
                    (k, parse(buf, at))
                })
                .collect(),
        ),
        t => panic!("unexpected RESP3 type {:?}", t as char),
    }
}

/// Our COMMAND INFO entry for `c`, in the reference's shape.
fn ours(c: &CommandSpec) -> Value {
    let mut out = Out::new(true);
    commands::server::write_spec(&mut out, c);
    let mut at = 0;
    let v = parse(&out.buf, &mut at);
    assert_eq!(at, out.buf.len(), "{}: trailing bytes after the entry", c.name);
    shape(c.name, v)
}

/// A parsed COMMAND INFO entry in the reference's shape: a container's
/// subcommands become an object keyed by their full names.
fn shape(name: &str, v: Value) -> Value {
    let Value::Array(f) = v else { panic!("{name}: entry is not an array") };
    assert_eq!(f.len(), 10, "{name}: entry has {} fields", f.len());
    assert_eq!(f[0], name, "{name}: name");
    let mut entry = serde_json::json!({
        "arity": f[1], "flags": f[2], "first_key": f[3], "last_key": f[4], "step": f[5],
        "acl_categories": f[6], "tips": f[7], "key_specs": f[8],
    });
    let subs = f[9].as_array().unwrap_or_else(|| panic!("{name}: subcommands is not an array"));
    if !subs.is_empty() {
        let subs: Map<String, Value> = subs
            .iter()
            .map(|s| {
                let n = s[0].as_str().unwrap_or_else(|| panic!("{name}: a subcommand has no name")).to_owned();
                (n.clone(), shape(&n, s.clone()))
            })
            .collect();
        entry["subcommands"] = Value::Object(subs);
    }
    entry
}

/// The compared fields of an entry (ours or the reference's), by name.
fn fields(v: &Value) -> BTreeMap<&'static str, Value> {
    let flags: Vec<Value> =
        v["flags"].as_array().expect("flags").iter().filter(|f| !UNMODELLED_FLAGS.contains(&f.as_str().unwrap_or(""))).cloned().collect();
    let specs = v["key_specs"].as_array().expect("key_specs");
    // COMMAND prints categories with their '@'; the reference has names.
    let acl = v["acl_categories"]
        .as_array()
        .expect("acl_categories")
        .iter()
        .map(|c| c.as_str().expect("category").trim_start_matches('@').into())
        .collect();
    BTreeMap::from([
        ("arity", v["arity"].clone()),
        ("flags", Value::Array(flags)),
        ("keys", Value::Array(vec![v["first_key"].clone(), v["last_key"].clone(), v["step"].clone()])),
        ("acl_categories", Value::Array(acl)),
        ("tips", v["tips"].clone()),
        ("key_specs", specs.iter().map(|s| serde_json::json!({"begin_search": s["begin_search"], "find_keys": s["find_keys"]})).collect()),
        ("key_spec_flags", specs.iter().map(|s| s["flags"].clone()).collect()),
    ])
}

#[test]
fn command_info_matches_redis_7_2() {
    let reference = reference();
    let table: BTreeMap<&str, &CommandSpec> = commands::all().map(|c| (c.name, c)).collect();

    // The reference covers exactly our commands but those Redis lacks.
    let missing: BTreeSet<&str> = table.keys().copied().filter(|n| !reference.contains_key(*n)).collect();
    assert_eq!(missing, NOT_IN_REDIS.iter().copied().collect(), "our commands without a Redis 7.2 reference (NOT_IN_REDIS)");
    let extra: Vec<&String> = reference.keys().filter(|n| !table.contains_key(n.as_str())).collect();
    assert!(extra.is_empty(), "reference commands we do not declare (regenerate the data?): {extra:?}");

    // Every entry to compare: our commands, and our containers' subcommands.
    let mut entries: Vec<(String, Value, &Value)> = Vec::new();
    let mut problems = Vec::new();
    for (name, c) in &table {
        let Some(want) = reference.get(*name) else { continue };
        let got = ours(c);
        match (got.get("subcommands"), want.get("subcommands")) {
            (None, None) => {}
            (Some(_), None) => problems.push(format!("{name}: declares subcommands, Redis's has none")),
            (None, Some(_)) => problems.push(format!("{name}: a container in Redis; declare its subcommands")),
            (Some(Value::Object(subs)), Some(Value::Object(redis))) => {
                for (sub, v) in subs {
                    match redis.get(sub) {
                        Some(w) => entries.push((sub.clone(), v.clone(), w)),
                        None => problems.push(format!("{sub}: a subcommand Redis 7.2 does not have")),
                    }
                }
            }
            _ => problems.push(format!("{name}: malformed subcommands")),
        }
        entries.push((name.to_string(), got, want));
    }

    let mut mismatches = BTreeMap::new();
    for (name, got, want) in &entries {
        let (got, want) = (fields(got), fields(want));
        for field in FIELDS {
            if got[field] != want[field] {
                mismatches.insert((name.clone(), *field), (got[field].to_string(), want[field].to_string()));
            }
        }
    }

    for ((name, field), (got, want)) in &mismatches {
        if !KNOWN.contains(&(name.as_str(), field)) {
            problems.push(format!("{name} {field}: ours {got}, redis {want}"));
        }
    }
    for (name, field) in KNOWN {
        assert!(FIELDS.contains(field), "KNOWN names an unknown field: {name} {field}");
        match commands::lookup_full(name.as_bytes()) {
            Some(c) if matches!(c.exec, Exec::Coord(_) | Exec::Script(_)) => {}
            _ => problems.push(format!("{name} {field}: in KNOWN but not a coordinator command (fix it instead)")),
        }
        if !mismatches.contains_key(&(name.to_string(), *field)) {
            problems.push(format!("{name} {field}: in KNOWN but matches Redis now; remove it from KNOWN"));
        }
    }
    assert!(problems.is_empty(), "COMMAND INFO differs from Redis 7.2 ({}):\n{}", problems.len(), problems.join("\n"));
}
