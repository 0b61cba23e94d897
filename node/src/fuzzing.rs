//! Fuzzing entry points: one function per fuzz target, each feeding raw
//! bytes to a parser or decoder that reads client-controlled input and
//! checking the invariants it must keep. The cargo-fuzz targets under
//! `fuzz/` are one-line wrappers around these, and the corpus replay test
//! (`tests/fuzz_corpus.rs`) runs the committed corpora through the same
//! functions on stable Rust. Every check panics on failure.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Value as LuaValue};

use crate::config::{Args, Config};
use crate::resp::parse::{ParseError, Parser};
use crate::store::dump;
use crate::types::hash::HashLimits;
use crate::types::json::value::{ParseError as JsonError, MAX_DEPTH};
use crate::types::json::{ops, Json, JsonDoc, JsonPath};

/// A target's entry function.
pub type Entry = fn(&[u8]);

/// Every target by name (the name of its corpus directory).
pub const TARGETS: &[(&str, Entry)] = &[
    ("resp_parser", resp_parser),
    ("glob_match", glob_match),
    ("json_path", json_path),
    ("json_value", json_value),
    ("restore_payload", restore_payload),
    ("lua_decoders", lua_decoders),
    ("config_file", config_file),
];

/// The entry function for a target name.
pub fn target(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
}

// ---------------------------------------------------------------- RESP

/// What a connection sees from one input: the commands parsed, the protocol
/// error that ends it (if any) and the bytes left unparsed.
type Stream = (Vec<Vec<Vec<u8>>>, Option<ParseError>, Vec<u8>);

fn drain(p: &mut Parser, buf: &mut BytesMut, out: &mut Vec<Vec<Vec<u8>>>) -> Result<(), ParseError> {
    while let Some(cmd) = p.next(buf)? {
        out.push(cmd.iter().map(|b| b.to_vec()).collect());
    }
    Ok(())
}

/// Parses `data` as it would arrive from a socket in reads of the given
/// sizes (cycled), or all at once.
fn parse_stream(data: &[u8], max_bulk: usize, chunks: &[usize]) -> Stream {
    let mut p = Parser::new(max_bulk);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = chunks.get(i % chunks.len().max(1)).copied().unwrap_or(data.len()).clamp(1, data.len() - at);
        buf.extend_from_slice(&data[at..at + n]);
        at += n;
        i += 1;
        if let Err(e) = drain(&mut p, &mut buf, &mut out) {
            // The connection closes: what was left unread does not matter.
            return (out, Some(e), Vec::new());
        }
    }
    (out, None, buf.to_vec())
}

fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The request parser (multibulk and inline): the same commands and the
/// same error whether the bytes arrive at once or in pieces, under a tight
/// and a generous bulk limit; every command it yields survives a RESP
/// re-encoding unchanged.
pub fn resp_parser(data: &[u8]) {
    for max_bulk in [16, 1 << 20] {
        let whole = parse_stream(data, max_bulk, &[]);
        // Lines longer than the inline limit are refused only when they
        // arrive in pieces (as in Redis), so compare below that size.
        if data.len() <= 64 * 1024 {
            let sizes = [1 + data.len() % 5, 1, 3, 7, 2];
            assert_eq!(parse_stream(data, max_bulk, &sizes), whole, "split reads must parse as one read");
            assert_eq!(parse_stream(data, max_bulk, &[1]), whole, "byte-at-a-time must parse as one read");
        }
        for cmd in &whole.0 {
            let enc = encode_command(cmd);
            let (again, err, rest) = parse_stream(&enc, 1 << 20, &[]);
            assert!(err.is_none() && rest.is_empty(), "re-encoded command must parse cleanly");
            assert_eq!(&again, std::slice::from_ref(cmd));
        }
    }
}

// ---------------------------------------------------------------- glob

/// Splits `flags pattern '\n' string`: flag bit 0 is NOCASE.
fn glob_input(data: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (&flags, rest) = data.split_first()?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    Some((flags & 1 == 1, &rest[..nl], &rest[nl + 1..]))
}

/// Reference matcher: Redis's `stringmatchlen` rules as a table over
/// (pattern position, string position); quadratic, never exponential.
pub fn glob_reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
    let (np, ns) = (p.len(), s.len());
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    // m[i][j]: does p[i..] match s[j..]?
    let mut m = vec![vec![false; ns + 1]; np + 1];
    m[np][ns] = true;
    for i in (0..np).rev() {
        for j in (0..=ns).rev() {
            m[i][j] = match p[i] {
                b'*' => m[i + 1][j] || (j < ns && m[i][j + 1]),
                b'?' => j < ns && m[i + 1][j + 1],
                b'[' => {
                    if j == ns {
                        false
                    } else {
                        let (matched, close) = glob_class(p, i + 1, s[j], nocase);
                        match close {
                            Some(c) => matched && m[c + 1][j + 1],
                            // Unterminated: the class ends the pattern.
                            None => matched && j + 1 == ns,
                        }
                    }
                }
                b'\\' if i + 1 < np => j < ns && eq(p[i + 1], s[j]) && m[i + 2][j + 1],
                c => j < ns && eq(c, s[j]) && m[i + 1][j + 1],
            };
        }
    }
    m[0][0]
}

/// Matches `c` against the class starting after `[` at `q`: whether it
/// matches and where the closing `]` is.
fn glob_class(p: &[u8], mut q: usize, c: u8, nocase: bool) -> (bool, Option<usize>) {
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    let not = p.get(q) == Some(&b'^');
    if not {
        q += 1;
    }
    let mut matched = false;
    let close = loop {
        if q >= p.len() {
            break None;
        }
        if p[q] == b'\\' && p.len() - q >= 2 {
            q += 1;
            matched |= eq(p[q], c);
        } else if p[q] == b']' {
            break Some(q);
        } else if p.len() - q >= 3 && p[q + 1] == b'-' {
            let (lo, hi) = (p[q].min(p[q + 2]), p[q].max(p[q + 2]));
            matched |= if nocase {
                let c = c.to_ascii_lowercase();
                c >= lo.to_ascii_lowercase() && c <= hi.to_ascii_lowercase()
            } else {
                c >= lo && c <= hi
            };
            q += 2;
        } else {
            matched |= eq(p[q], c);
        }
        q += 1;
    };
    (matched != not, close)
}

/// Most time one match of a fuzz-sized input may take: generous for a
/// linear matcher, far below what backtracking blow-up costs.
const GLOB_BUDGET: Duration = Duration::from_secs(1);

/// `util::glob_match` (KEYS, SCAN MATCH, CONFIG GET): agrees with the
/// reference matcher and finishes within a fixed time budget.
pub fn glob_match(data: &[u8]) {
    let Some((nocase, pattern, s)) = glob_input(data) else { return };
    let start = Instant::now();
    let got = crate::util::glob_match(pattern, s, nocase);
    let took = start.elapsed();
    assert!(took < GLOB_BUDGET, "glob_match took {took:?} on a {}-byte pattern and {}-byte string", pattern.len(), s.len());
    // The matcher gives up past 1000 nested stars; stay well below.
    if pattern.len() <= 512 && s.len() <= 512 {
        assert_eq!(got, glob_reference(pattern, s, nocase), "pattern {:?} string {:?} nocase {nocase}", pattern, s);
    }
}

// ---------------------------------------------------------------- JSON

thread_local! {
    /// Documents paths are evaluated against: objects, arrays, scalars
    /// and nesting, small enough that a path cannot cost much per node.
    static DOCS: Vec<Json> = [
        r#"{"a":1,"b":[1,2.5,"x",null,true,{"c":[3,4]}],"d":{"e":{"f":"g","h":[]},"i":{}},"n":-7,"s":"str"}"#,
        r#"[[1,[2,[3,[4]]]],{"k":"v","k2":[{"k":1},{"k":"2"}]},0,"",false]"#,
        r#""scalar""#,
    ]
    .iter()
    .map(|t| Json::parse(t.as_bytes()).expect("fixed document parses"))
    .collect();
}

/// Checks one parsed path against one document: `select`, `first` and
/// `locate` agree, and every location leads to the value it came with.
fn check_path(path: &JsonPath, doc: &Json) -> usize {
    let selected = path.select(doc);
    let located = path.locate(doc);
    assert_eq!(selected.len(), located.len(), "select and locate disagree on {}", path.normalized);
    assert_eq!(path.first(doc).is_some(), !selected.is_empty());
    let mut copy = doc.clone();
    for ((v, loc), w) in located.iter().zip(&selected) {
        assert!(v.same(w), "select and locate order differ on {}", path.normalized);
        let at = ops::node_mut(&mut copy, loc).expect("a located node exists");
        assert!(at.same(v), "location {loc:?} does not lead to its match on {}", path.normalized);
    }
    if let Some((parents, _)) = path.static_parent(doc) {
        for (_, loc) in &parents {
            assert!(ops::node_mut(&mut copy, loc).is_some(), "static parent location must exist");
        }
    }
    selected.len()
}

/// JSONPath and legacy path parsing (every JSON.* command's path
/// argument), and evaluation of what parses. A path's normalised form
/// parses to a path with the same matches.
pub fn json_path(data: &[u8]) {
    let Ok(path) = JsonPath::parse(data) else { return };
    assert_eq!(path.legacy, data.first() != Some(&b'$'));
    DOCS.with(|docs| {
        for doc in docs {
            let n = check_path(&path, doc);
            if std::str::from_utf8(data).is_ok() {
                let again = JsonPath::parse(path.normalized.as_bytes()).expect("normalised path parses");
                assert!(!again.legacy);
                assert_eq!(check_path(&again, doc), n, "normalised {} matches differently", path.normalized);
            }
        }
    });
}

/// JSON.SET's value parser: accepts what serde_json accepts (up to the
/// depth limit); what it accepts prints to text that parses back to the
/// same document and prints identically, and survives the DUMP encoding.
pub fn json_value(data: &[u8]) {
    let ours = Json::parse(data);
    let reference = serde_json::from_slice::<serde_json::Value>(data);
    match (&ours, &reference) {
        (Err(JsonError::TooDeep), _) => {}
        (_, Err(e)) if e.to_string().contains("recursion limit") => {}
        (Ok(_), Err(e)) => panic!("accepted what serde_json refuses: {e}"),
        (Err(e), Ok(_)) => panic!("refused what serde_json accepts: {e:?}"),
        _ => {}
    }
    let Ok(v) = ours else { return };
    assert!(v.depth() <= MAX_DEPTH);
    let text = v.to_text();
    let back = Json::parse(&text).expect("printed JSON parses");
    assert!(back.same(&v), "printed JSON parses to a different document");
    assert_eq!(back.to_text(), text, "printing is not stable");
    let mut dumped = Vec::new();
    JsonDoc::new(v.clone()).dump_into(&mut dumped);
    let restored = JsonDoc::from_dump(&dumped).expect("dumped JSON restores");
    assert!(restored.view().same(&v), "dumped JSON restores to a different document");
    // The budget is for heap bytes: half the document's is refused, not
    // overrun.
    let budget = v.heap_size() / 2;
    if let Ok(w) = Json::parse_limited(data, budget) {
        assert!(w.heap_size() <= budget, "parse_limited overran its budget");
    }
}

// ---------------------------------------------------------------- RESTORE

fn check_restored(v: &crate::store::Value, limits: crate::types::Limits) {
    let enc = dump::encode(v);
    let again = dump::decode(&enc, limits).unwrap_or_else(|e| panic!("re-encoded {} does not decode: {e:?}", v.type_name()));
    assert_eq!(again.type_name(), v.type_name());
    assert_eq!(dump::encode(&again).len(), enc.len(), "re-encoding changed the payload size");
}

/// RESTORE's payload decoder, on the input as given and with its body
/// (the RDB object, when the input passes the version and checksum
/// checks, else all of it) re-sealed with a valid version and checksum so
/// mutations get past them. A decoded value re-encodes to a payload that
/// decodes.
pub fn restore_payload(data: &[u8]) {
    let limits = crate::types::Limits::default();
    if let Ok(v) = dump::decode(data, limits) {
        check_restored(&v, limits);
    }
    let mut sealed = dump::verify(data).unwrap_or(data).to_vec();
    dump::seal(&mut sealed);
    // Small encodings, and lists in compressed nodes of two elements.
    let small = crate::types::Limits {
        hash: HashLimits { max_entries: 2, max_value: 4 },
        zset: crate::types::zset::ZLimits { max_entries: 2, max_value: 4 },
        list: crate::types::list::ListShape::new(2, 1),
        set: crate::types::set::SetLimits { intset_max: 2 },
    };
    for limits in [limits, small] {
        if let Ok(v) = dump::decode(&sealed, limits) {
            check_restored(&v, limits);
        }
    }
}

// ---------------------------------------------------------------- Lua

struct LuaLibs {
    lua: Lua,
    cjson_decode: Function,
    cjson_encode: Function,
    msgpack_unpack: Function,
    msgpack_unpack_limit: Function,
    msgpack_pack: Function,
    struct_unpack: Function,
    struct_size: Function,
}

fn lua_libs() -> mlua::Result<LuaLibs> {
    // The standard libraries and value libraries scripts get (scripting::vm).
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::new())?;
    let cjson = crate::scripting::libs::cjson::open(&lua)?;
    let msgpack = crate::scripting::libs::cmsgpack::open(&lua)?;
    let st = crate::scripting::libs::structlib::open(&lua)?;
    Ok(LuaLibs {
        cjson_decode: cjson.get("decode")?,
        cjson_encode: cjson.get("encode")?,
        msgpack_unpack: msgpack.get("unpack")?,
        msgpack_unpack_limit: msgpack.get("unpack_limit")?,
        msgpack_pack: msgpack.get("pack")?,
        struct_unpack: st.get("unpack")?,
        struct_size: st.get("size")?,
        lua,
    })
}

thread_local! {
    static LUA: RefCell<Option<LuaLibs>> = const { RefCell::new(None) };
}

/// The decoders scripts can call on data they read from keys: the first
/// byte picks `cjson.decode`, `cmsgpack.unpack`, `cmsgpack.unpack_limit`
/// (with a limit and offset from the next bytes) or `struct.unpack`
/// (`format '|' data`); the rest is the input. Decoded values re-encode,
/// and re-encoded values decode again.
pub fn lua_decoders(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    LUA.with(|cell| {
        let mut slot = cell.borrow_mut();
        let libs = slot.get_or_insert_with(|| lua_libs().expect("Lua state with the script libraries"));
        lua_decode(libs, which, rest).expect("Lua state usable");
        if libs.lua.used_memory() > 64 << 20 {
            libs.lua.gc_collect().ok();
        }
    });
}

fn lua_decode(libs: &LuaLibs, which: u8, rest: &[u8]) -> mlua::Result<()> {
    let lua = &libs.lua;
    match which % 4 {
        0 => {
            if let Ok(v) = libs.cjson_decode.call::<LuaValue>(lua.create_string(rest)?) {
                if let Ok(LuaValue::String(text)) = libs.cjson_encode.call::<LuaValue>(v) {
                    let r = libs.cjson_decode.call::<LuaValue>(text.clone());
                    assert!(r.is_ok(), "cjson cannot decode its own encoding {:?}: {r:?}", text.as_bytes());
                }
            }
        }
        1 => {
            if let Ok(vals) = libs.msgpack_unpack.call::<MultiValue>(lua.create_string(rest)?) {
                check_msgpack(libs, vals)?;
            }
        }
        2 => {
            let limit = rest.first().map_or(0, |&b| b as i64 % 8 - 1);
            let offset = rest.get(1).map_or(0, |&b| b as i64 % 16);
            let input = rest.get(2..).unwrap_or_default();
            if let Ok(mut vals) = libs.msgpack_unpack_limit.call::<MultiValue>((lua.create_string(input)?, limit, offset)) {
                match vals.pop_front() {
                    Some(LuaValue::Integer(next)) => assert!(next == -1 || (next > offset && next as usize <= input.len())),
                    other => panic!("unpack_limit must start with the next offset, got {other:?}"),
                }
                check_msgpack(libs, vals)?;
            }
        }
        _ => {
            let bar = rest.iter().position(|&b| b == b'|').unwrap_or(rest.len());
            let (fmt, input) = (&rest[..bar], rest.get(bar + 1..).unwrap_or_default());
            let fmt_s = lua.create_string(fmt)?;
            let _ = libs.struct_unpack.call::<MultiValue>((fmt_s.clone(), lua.create_string(input)?));
            let _ = libs.struct_size.call::<LuaValue>(fmt_s);
        }
    }
    Ok(())
}

/// Values cmsgpack decoded pack again, to as many values.
fn check_msgpack(libs: &LuaLibs, vals: MultiValue) -> mlua::Result<()> {
    let n = vals.len();
    if n == 0 {
        return Ok(());
    }
    let packed: mlua::LuaString = libs.msgpack_pack.call(vals)?;
    let again: MultiValue = libs.msgpack_unpack.call(packed)?;
    assert_eq!(again.len(), n, "cmsgpack re-pack changed the value count");
    Ok(())
}

// ---------------------------------------------------------------- config

thread_local! {
    static ARGS: Args = <Args as clap::Parser>::parse_from(["damselfly"]);
}

fn fresh_config() -> Config {
    ARGS.with(Config::from_args).expect("the default configuration loads")
}

/// The config-file parser: whatever a file sets, the resulting settings
/// written back as a file (as CONFIG REWRITE writes lines) load to the
/// same settings.
pub fn config_file(data: &[u8]) {
    // The server reads the file as UTF-8 text.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut cfg = fresh_config();
    if cfg.apply_file(text).is_err() {
        return;
    }
    let all = cfg.all();
    let _ = cfg.get(b"*max*");
    let rewritten: String = all.iter().map(|(k, v)| crate::config::rewrite::line(k, v) + "\n").collect();
    let mut again = fresh_config();
    if let Err(e) = again.apply_file(&rewritten) {
        panic!("rewritten config does not load: {e}\n{rewritten}");
    }
    assert_eq!(again.all(), all, "rewritten config loads differently");
}
