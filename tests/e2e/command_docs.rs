//! COMMAND's introspection against a real server, side by side with
//! redis-server 7.0: DOCS (whose summaries and argument `display_text`
//! follow Redis 7.2's definitions, which 7.0 predates), GETKEYS and
//! GETKEYSANDFLAGS, LIST with its filters, COUNT.

use damselfly_tests::{Raw, Redis, Server};

/// A parsed RESP2 reply.
#[derive(Debug, PartialEq, Clone)]
enum V {
    Str(String),
    Int(i64),
    Nil,
    Arr(Vec<V>),
    Err(String),
}

fn parse(b: &[u8], at: &mut usize) -> V {
    let eol = at.to_owned() + b[*at..].windows(2).position(|w| w == b"\r\n").expect("line");
    let line = String::from_utf8_lossy(&b[*at + 1..eol]).into_owned();
    let kind = b[*at];
    *at = eol + 2;
    match kind {
        b'+' => V::Str(line),
        b'-' => V::Err(line),
        b':' => V::Int(line.parse().expect("int")),
        b'$' => {
            let n: i64 = line.parse().expect("len");
            if n < 0 {
                return V::Nil;
            }
            let s = String::from_utf8_lossy(&b[*at..*at + n as usize]).into_owned();
            *at += n as usize + 2;
            V::Str(s)
        }
        b'*' => {
            let n: i64 = line.parse().expect("len");
            if n < 0 {
                return V::Nil;
            }
            V::Arr((0..n).map(|_| parse(b, at)).collect())
        }
        k => panic!("unexpected {}", k as char),
    }
}

fn query(c: &mut Raw, args: &[&str]) -> V {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send_cmd(&a);
    parse(&c.read_reply(), &mut 0)
}

/// Drops, from every map (a flat array of pairs) inside `v`, the pairs
/// whose key is one of `keys`.
fn strip(v: &V, keys: &[&str]) -> V {
    match v {
        V::Arr(items) if items.len() % 2 == 0 && items.chunks(2).all(|p| matches!(&p[0], V::Str(_))) && !items.is_empty() => {
            let mut out = Vec::new();
            for p in items.chunks(2) {
                if let V::Str(k) = &p[0] {
                    if keys.contains(&k.as_str()) {
                        continue;
                    }
                }
                out.push(strip(&p[0], keys));
                out.push(strip(&p[1], keys));
            }
            V::Arr(out)
        }
        V::Arr(items) => V::Arr(items.iter().map(|i| strip(i, keys)).collect()),
        v => v.clone(),
    }
}

#[test]
fn docs_match_redis() {
    let s = Server::start();
    let r = Redis::start();
    let (mut a, mut b) = (s.raw(), r.raw());
    // Arguments (blocks, choices, tokens, flags), history. (Commands whose
    // arguments Redis renamed after 7.0 differ, and are left out.)
    for name in ["get", "set", "lmove", "incr", "lpush", "expire", "getex", "blpop", "scan", "restore", "pfadd", "subscribe"] {
        let ours = strip(&query(&mut a, &["COMMAND", "DOCS", name]), &["summary", "display_text"]);
        let theirs = strip(&query(&mut b, &["COMMAND", "DOCS", name]), &["summary", "display_text"]);
        assert_eq!(ours, theirs, "{name}");
    }
    // A deprecated command says so, and what replaces it.
    let V::Arr(geo) = query(&mut a, &["COMMAND", "DOCS", "georadius"]) else { panic!("map") };
    let V::Arr(fields) = &geo[1] else { panic!("map") };
    let get = |k: &str| fields.chunks(2).find(|p| p[0] == V::Str(k.into())).map(|p| p[1].clone());
    assert_eq!(get("doc_flags"), Some(V::Arr(vec![V::Str("deprecated".into())])));
    assert_eq!(get("deprecated_since"), Some(V::Str("6.2.0".into())));
    assert_eq!(get("replaced_by"), Some(V::Str("`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument".into())));
    // Unknown names are left out; the reply is a map of those found.
    assert_eq!(query(&mut a, &["COMMAND", "DOCS", "nosuch"]), V::Arr(vec![]));
    let V::Arr(get) = query(&mut a, &["COMMAND", "DOCS", "GET"]) else { panic!("map") };
    assert_eq!(get[0], V::Str("get".into()));
    let V::Arr(fields) = &get[1] else { panic!("map") };
    let names: Vec<&V> = fields.iter().step_by(2).collect();
    let want = ["summary", "since", "group", "complexity", "arguments"].map(|s| V::Str(s.into()));
    assert_eq!(names, want.iter().collect::<Vec<_>>());
    assert_eq!(
        fields[9],
        V::Arr(vec![V::Arr(
            ["name", "key", "type", "key", "display_text", "key", "key_spec_index"]
                .iter()
                .map(|s| V::Str(s.to_string()))
                .chain([V::Int(0)])
                .collect()
        )])
    );
}

#[test]
fn getkeys_and_list_match_redis() {
    let s = Server::start();
    let r = Redis::start();
    let (mut a, mut b) = (s.raw(), r.raw());
    let cases: &[&[&str]] = &[
        &["COMMAND", "GETKEYS", "SET", "a", "b"],
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
        &["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "XREAD", "STREAMS", "a", "b", "1", "2"],
        &["COMMAND", "GETKEYS", "SORT", "k", "BY", "x", "STORE", "d"],
        &["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "a", "b", "c"],
        &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"],
        &["COMMAND", "GETKEYS", "NOSUCH", "a"],
        &["COMMAND", "GETKEYS", "SET", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "OBJECT", "ENCODING", "k"],
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "json"],
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"],
        &["COMMAND", "LIST", "FILTERBY", "FOO", "x"],
        &["COMMAND", "LIST", "x"],
        &["COMMAND", "INFO", "nosuch"],
        &["COMMAND", "NOSUCH"],
    ];
    for args in cases {
        assert_eq!(query(&mut a, args), query(&mut b, args), "{args:?}");
    }
    // LIST's filters select by name pattern (subcommands included) and by
    // ACL category.
    let names = |v: V| -> Vec<String> {
        let V::Arr(items) = v else { panic!("array") };
        let mut n: Vec<String> = items.into_iter().map(|i| if let V::Str(s) = i { s } else { panic!("name") }).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(query(&mut a, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*i*"])),
        [
            "client|caching",
            "client|getredir",
            "client|id",
            "client|info",
            "client|kill",
            "client|list",
            "client|no-evict",
            "client|setinfo",
            "client|tracking",
            "client|trackinginfo"
        ]
    );
    assert_eq!(
        names(query(&mut a, &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog"])),
        ["pfadd", "pfcount", "pfdebug", "pfmerge", "pfselftest"]
    );
    // COUNT counts the top-level commands LIST names.
    let V::Int(count) = query(&mut a, &["COMMAND", "COUNT"]) else { panic!("int") };
    let top = names(query(&mut a, &["COMMAND", "LIST"])).into_iter().filter(|n| !n.contains('|')).count();
    assert_eq!(count as usize, top);
}
