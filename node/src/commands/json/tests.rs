//! Table-driven tests of the JSON commands through their handlers: every
//! path feature in `$` and legacy form, each command's reply shapes in RESP2
//! and RESP3, and the error cases, each asserting the exact reply.
//!
//! Commands are written as in a shell, with `` `...` `` quoting one
//! argument. Replies are shown in a compact but exact notation: `'text'` a bulk
//! string, `+text` a simple string, `-text` an error, `7` an integer, `nil`
//! a null (bulk or RESP3), `nil*` a RESP2 null array, `[a, b]` an array,
//! `{k: v}` a RESP3 map, `,1.5` a RESP3 double, `#t`/`#f` RESP3 booleans.

use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;

use crate::commands;
use crate::config::{Args, Config};
use crate::resp::Out;
use crate::shard::Shard;

const DOC: &str = r#"{"a":1,"b":{"a":2,"c":[1,2,3,{"a":3}]},"s":"str","n":null,"t":true,"f":1.5,"arr":[10,20,30,40,50],"items":[{"price":5,"tag":"x","name":"p1"},{"price":15,"tag":"x","name":"p2"},{"price":8,"tag":"y","name":"p3"}],"weird key":{"x.y":7},"e":{},"ea":[]}"#;

fn shard() -> Shard {
    let cfg = Config::from_args(&Args::parse_from(["damselfly"])).expect("default config");
    Shard::new(0, 1, Arc::new(cfg), crate::shard::scripts::Scripting::new(crate::commands::is_command))
}

/// Splits a command line: whitespace separates arguments, '...' quotes one
/// literally.
fn split(line: &str) -> Vec<Bytes> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for c in line.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has {
                    args.push(Bytes::from(std::mem::take(&mut cur)));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        args.push(Bytes::from(cur));
    }
    args
}

/// Runs one command as the connection would (lookup, arity, handler).
fn run(sh: &mut Shard, resp3: bool, line: &str) -> String {
    let args = split(line);
    let mut out = Out::new(resp3);
    match commands::lookup(&args[0]) {
        None => return format!("-unknown command {line}"),
        Some(spec) if !spec.arity_ok(args.len()) => out.error(&crate::error::CmdError::wrong_arity(spec.name)),
        Some(spec) => crate::commands::exec_one(sh, 0, spec, &args, &mut out),
    }
    let (s, used) = show(&out.buf);
    assert_eq!(used, out.buf.len(), "one reply for {line}");
    s
}

/// Renders one RESP value; returns it and the bytes it used.
fn show(b: &[u8]) -> (String, usize) {
    let eol = b.windows(2).position(|w| w == b"\r\n").expect("line");
    let line = std::str::from_utf8(&b[1..eol]).expect("utf8");
    let after = eol + 2;
    let items = |n: usize, from: usize| {
        let mut pos = from;
        let mut v = Vec::new();
        for _ in 0..n {
            let (s, u) = show(&b[pos..]);
            v.push(s);
            pos += u;
        }
        (v, pos)
    };
    match b[0] {
        b'+' => (format!("+{line}"), after),
        b'-' => (format!("-{line}"), after),
        b':' => (line.to_string(), after),
        b',' => (format!(",{line}"), after),
        b'#' => (format!("#{line}"), after),
        b'_' => ("nil".into(), after),
        b'$' => {
            let n: i64 = line.parse().expect("len");
            if n < 0 {
                return ("nil".into(), after);
            }
            let end = after + n as usize;
            (format!("'{}'", String::from_utf8_lossy(&b[after..end])), end + 2)
        }
        b'*' => {
            let n: i64 = line.parse().expect("len");
            if n < 0 {
                return ("nil*".into(), after);
            }
            let (v, pos) = items(n as usize, after);
            (format!("[{}]", v.join(", ")), pos)
        }
        b'%' => {
            let n: usize = line.parse().expect("len");
            let (v, pos) = items(2 * n, after);
            let pairs: Vec<String> = v.chunks(2).map(|p| format!("{}: {}", p[0], p[1])).collect();
            (format!("{{{}}}", pairs.join(", ")), pos)
        }
        other => panic!("unexpected reply type {}", other as char),
    }
}

/// Runs each case on a fresh shard holding `DOC` at key `d`: every step's
/// reply must match exactly.
fn check(cases: &[&[(&str, &str)]], resp3: bool) -> usize {
    let mut n = 0;
    for steps in cases {
        let mut sh = shard();
        assert_eq!(run(&mut sh, false, &format!("JSON.SET d $ `{DOC}`")), "+OK");
        for (line, want) in steps.iter() {
            assert_eq!(run(&mut sh, resp3, line), *want, "{line}");
            n += 1;
        }
    }
    n
}

/// Path features, `$` and legacy forms, through JSON.GET.
const PATHS: &[&[(&str, &str)]] = &[
    // Root.
    &[("JSON.GET d $.e", "'[{}]'"), ("JSON.GET x", "nil")],
    &[("JSON.GET d $", const_format_root())],
    &[("JSON.GET d .e", "'{}'")],
    &[("JSON.GET d e", "'{}'")],
    // Dot and bracket children.
    &[("JSON.GET d $.a", "'[1]'")],
    &[("JSON.GET d $.b.a", "'[2]'")],
    &[("JSON.GET d $['b']['a']", "'[2]'")],
    &[(r#"JSON.GET d $["b"]["a"]"#, "'[2]'")],
    &[("JSON.GET d `$[\"weird key\"][\"x.y\"]`", "'[7]'")],
    &[("JSON.GET d `$.weird key`", "-Error occurred on position 7, expected one of the following: '.', '..', '['")],
    &[("JSON.GET d $.missing", "'[]'")],
    &[("JSON.GET d $.a.b", "'[]'")],
    &[("JSON.GET d .b.a", "'2'")],
    &[("JSON.GET d b.a", "'2'")],
    &[("JSON.GET d ['b'].a", "'2'")],
    &[("JSON.GET d .missing", "-ERR Path '$.missing' does not exist")],
    &[("JSON.GET d missing", "-ERR Path '$.missing' does not exist")],
    // Wildcards.
    &[("JSON.GET d $.b.*", "'[2,[1,2,3,{\"a\":3}]]'")],
    &[("JSON.GET d $.b[*]", "'[2,[1,2,3,{\"a\":3}]]'")],
    &[("JSON.GET d $.arr.*", "'[10,20,30,40,50]'")],
    &[("JSON.GET d .arr[*]", "'10'")],
    &[("JSON.GET d $.s.*", "'[]'")],
    // Recursive descent.
    &[("JSON.GET d $..a", "'[1,2,3]'")],
    &[("JSON.GET d ..a", "'1'")],
    &[("JSON.GET d $..price", "'[5,15,8]'")],
    &[("JSON.GET d $.b..*", "'[2,[1,2,3,{\"a\":3}],1,2,3,{\"a\":3},3]'")],
    &[("JSON.GET d $..c[0]", "'[1]'")],
    &[("JSON.GET d $..[0]", "'[1,10,{\"price\":5,\"tag\":\"x\",\"name\":\"p1\"}]'")],
    &[("JSON.GET d $..['x.y']", "'[7]'")],
    &[("JSON.GET d $..nothing", "'[]'")],
    // Indexes.
    &[("JSON.GET d $.arr[0]", "'[10]'")],
    &[("JSON.GET d $.arr[4]", "'[50]'")],
    &[("JSON.GET d $.arr[5]", "'[]'")],
    &[("JSON.GET d $.arr[-1]", "'[50]'")],
    &[("JSON.GET d $.arr[-5]", "'[10]'")],
    &[("JSON.GET d $.arr[-6]", "'[]'")],
    &[("JSON.GET d .arr[-1]", "'50'")],
    &[("JSON.GET d arr[1]", "'20'")],
    &[("JSON.GET d .arr[9]", "-ERR Path '$.arr[9]' does not exist")],
    &[("JSON.GET d $.b.c[3].a", "'[3]'")],
    &[("JSON.GET d $.a[0]", "'[]'")],
    // Slices.
    &[("JSON.GET d $.arr[1:3]", "'[20,30]'")],
    &[("JSON.GET d $.arr[:2]", "'[10,20]'")],
    &[("JSON.GET d $.arr[3:]", "'[40,50]'")],
    &[("JSON.GET d $.arr[-2:]", "'[40,50]'")],
    &[("JSON.GET d $.arr[::2]", "'[10,30,50]'")],
    &[("JSON.GET d $.arr[::-1]", "'[50,40,30,20,10]'")],
    &[("JSON.GET d $.arr[3:1:-1]", "'[40,30]'")],
    &[("JSON.GET d $.arr[0:100]", "'[10,20,30,40,50]'")],
    &[("JSON.GET d $.arr[3:1]", "'[]'")],
    &[("JSON.GET d $.arr[::0]", "'[]'")],
    &[("JSON.GET d .arr[1:3]", "'20'")],
    // Unions.
    &[("JSON.GET d $.arr[0,2,-1]", "'[10,30,50]'")],
    &[("JSON.GET d $['a','s']", "'[1,\"str\"]'")],
    &[("JSON.GET d $.arr[0,1:3]", "'[10,20,30]'")],
    &[("JSON.GET d $['a',\"missing\",'t']", "'[1,true]'")],
    // Filters.
    &[("JSON.GET d $.items[?(@.price<10)].name", "'[\"p1\",\"p3\"]'")],
    &[("JSON.GET d `$.items[?(@.price < 10 && @.tag == \"x\")].name`", "'[\"p1\"]'")],
    &[("JSON.GET d `$.items[?(@.price > 10 || @.tag == \"y\")].name`", "'[\"p2\",\"p3\"]'")],
    &[("JSON.GET d $.items[?(@.price>=8)].price", "'[15,8]'")],
    &[("JSON.GET d $.items[?(@.price<=8)].price", "'[5,8]'")],
    &[("JSON.GET d $.items[?(@.price!=8)].price", "'[5,15]'")],
    &[("JSON.GET d $.items[?(@.price==15.0)].name", "'[\"p2\"]'")],
    &[("JSON.GET d `$.items[?(@.name =~ \"^p[12]$\")].price`", "'[5,15]'")],
    &[("JSON.GET d `$.items[?(@.name =~ \"(?i)P3\")].price`", "'[8]'")],
    &[("JSON.GET d $.items[?@.price<6].name", "'[\"p1\"]'")],
    &[("JSON.GET d $.arr[?(@>25)]", "'[30,40,50]'")],
    &[("JSON.GET d `$.arr[?(@ > 25 && @ < 45)]`", "'[30,40]'")],
    &[("JSON.GET d $.items[?(@.missing)]", "'[]'")],
    &[("JSON.GET d $.items[?(!@.missing)].price", "'[5,15,8]'")],
    &[("JSON.GET d $.items[?(@.tag)].price", "'[5,15,8]'")],
    &[("JSON.GET d `$.items[?((@.price < 6 || @.price > 10) && @.tag == \"x\")].name`", "'[\"p1\",\"p2\"]'")],
    &[("JSON.GET d $.items[?(@.price>$.b.a*)]", "-Error occurred on position 23, expected one of the following: ')', '&&', '||'")],
    &[("JSON.GET d $.items[?(@.price>$.arr[0])].name", "'[\"p2\"]'")],
    &[("JSON.GET d $.items[?(@.tag=='y')].name", "'[\"p3\"]'")],
    &[("JSON.GET d $.items[?(@.tag<'y')].name", "'[\"p1\",\"p2\"]'")],
    &[("JSON.GET d $.*[?(@.a==3)]", "'[]'")],
    &[("JSON.GET d $..[?(@.a==3)]", "'[{\"a\":3}]'")],
    &[("JSON.GET d $.b[?(@==2)]", "'[2]'")],
    &[("JSON.GET d $.*[?(@==true)]", "'[]'")],
    &[("JSON.GET d $[?(@==true)]", "'[true]'")],
    &[("JSON.GET d $[?(@==null)]", "'[null]'")],
    &[("JSON.GET d $[?(@=='str')]", "'[\"str\"]'")],
    &[("JSON.GET d $.items[?(@.price==\"5\")]", "'[]'")],
    &[("JSON.GET d $.items[?(@.price<\"z\")]", "'[]'")],
    &[("JSON.GET d .items[?(@.price>6)].name", "'\"p2\"'")],
    &[("JSON.GET d $.items[?(@.price>100)].name", "'[]'")],
    &[("JSON.GET d .items[?(@.price>100)].name", "-ERR Path '$.items[?(@.price>100)].name' does not exist")],
    // Several paths.
    &[("JSON.GET d $.a $.s", "'{\"$.a\":[1],\"$.s\":[\"str\"]}'")],
    &[("JSON.GET d .a .s", "'{\".a\":1,\".s\":\"str\"}'")],
    &[("JSON.GET d .a $.s", "'{\".a\":[1],\"$.s\":[\"str\"]}'")],
    &[("JSON.GET d .a .nope", "-ERR Path '.nope' does not exist")],
    &[("JSON.GET d $.a $.nope", "'{\"$.a\":[1],\"$.nope\":[]}'")],
    &[("JSON.GET d $.a $.a", "'{\"$.a\":[1]}'")],
    // Syntax errors.
    &[("JSON.GET d $.", "-Error occurred on position 2, expected one of the following: <string>, '*', '['")],
    &[("JSON.GET d $..", "-Error occurred on position 3, expected one of the following: <string>, '*', '['")],
    &[("JSON.GET d $[", "-Error occurred on position 2, expected one of the following: <string>, <number>, '*', '?', ':'")],
    &[("JSON.GET d $[0", "-Error occurred on position 3, expected one of the following: ',', ']'")],
    &[("JSON.GET d $['a'", "-Error occurred on position 5, expected one of the following: ',', ']'")],
    &[("JSON.GET d $['a]", "-Error occurred on position 2, unterminated string")],
    &[("JSON.GET d $a", "-Error occurred on position 1, expected one of the following: '.', '..', '['")],
    &[(
        "JSON.GET d $[?(@.a==)]",
        "-Error occurred on position 9, expected one of the following: '@', '$', <string>, <number>, 'true', 'false', 'null'",
    )],
    &[("JSON.GET d $[?(@.a)", "-Error occurred on position 8, expected one of the following: ',', ']'")],
    &[("JSON.GET d $[?(1)]", "-Error occurred on position 5, expected one of the following: '==', '!=', '<', '<=', '>', '>=', '=~'")],
    &[("JSON.GET d $[99999999999999999999]", "-Error occurred on position 2, integer out of range")],
    &[("JSON.GET d a..", "-Error occurred on position 5, expected one of the following: <string>, '*', '['")],
];

/// `$` of the whole test document: an array holding it.
const fn const_format_root() -> &'static str {
    r#"'[{"a":1,"b":{"a":2,"c":[1,2,3,{"a":3}]},"s":"str","n":null,"t":true,"f":1.5,"arr":[10,20,30,40,50],"items":[{"price":5,"tag":"x","name":"p1"},{"price":15,"tag":"x","name":"p2"},{"price":8,"tag":"y","name":"p3"}],"weird key":{"x.y":7},"e":{},"ea":[]}]'"#
}

#[test]
fn path_cases() {
    let n = check(PATHS, false);
    assert!(n >= 80, "only {n} path cases");
    // The same replies in RESP3: JSON.GET answers bulk text in both.
    check(PATHS, true);
}

/// Every other command's reply shapes and errors.
const COMMANDS: &[&[(&str, &str)]] = &[
    // SET: update, create where the parent exists, NX / XX, errors.
    &[("JSON.SET d $.a 5", "+OK"), ("JSON.GET d .a", "'5'")],
    &[("JSON.SET d $..a 0", "+OK"), ("JSON.GET d $..a", "'[0,0,0]'")],
    &[("JSON.SET d $.new `{\"x\":[]}`", "+OK"), ("JSON.GET d $.new", "'[{\"x\":[]}]'")],
    &[("JSON.SET d .b.new 1", "+OK"), ("JSON.GET d .b", "'{\"a\":2,\"c\":[1,2,3,{\"a\":3}],\"new\":1}'")],
    &[("JSON.SET d $.x.y 1", "nil"), ("JSON.GET d $.x", "'[]'")],
    &[("JSON.SET d $.arr[9] 1", "-ERR index out of bounds")],
    &[("JSON.SET d $.arr[-1] 1", "+OK"), ("JSON.GET d $.arr", "'[[10,20,30,40,1]]'")],
    &[("JSON.SET d $..zz 1", "-ERR wrong static path")],
    // Still kept as text: the member is added to the text (DEBUG MEMORY
    // reports the bytes of its text).
    &[("JSON.SET d $.e.x 1", "+OK"), ("JSON.GET d .e", "'{\"x\":1}'"), ("JSON.DEBUG MEMORY d .e", "7"), ("JSON.SET d $.arr.x 1", "nil"), ("JSON.SET d $.zz.x 1", "nil")],
    &[("JSON.SET d $.a 2 NX", "nil"), ("JSON.SET d $.z 2 NX", "+OK"), ("JSON.GET d .z", "'2'")],
    &[("JSON.SET d $.z 2 XX", "nil"), ("JSON.SET d $.a 2 XX", "+OK"), ("JSON.GET d .a", "'2'")],
    &[("JSON.SET d $ 1 NX", "nil"), ("JSON.SET d $ 1 XX", "+OK"), ("JSON.GET d", "'1'")],
    &[("JSON.SET d $.a 1 NX XX", "-ERR syntax error"), ("JSON.SET d $.a 1 FOO", "-ERR syntax error")],
    &[("JSON.SET n $.a 1", "-ERR new objects must be created at the root"), ("JSON.SET n $ 1 XX", "nil"), ("JSON.GET n", "nil")],
    &[("JSON.SET d $.a `{bad`", "-key must be a string at line 1 column 2"), ("JSON.GET d .a", "'1'")],
    &[("JSON.SET d $ `[1,`", "-EOF while parsing a value at line 1 column 3"), ("JSON.GET d .a", "'1'")],
    &[("JSON.SET d $.a `1 2`", "-trailing characters at line 1 column 3")],
    &[("JSON.SET d $.a", "-ERR wrong number of arguments for 'json.set' command")],
    &[("JSON.SET d $[ 1", "-Error occurred on position 2, expected one of the following: <string>, <number>, '*', '?', ':'")],
    &[("SET str v", "+OK"), ("JSON.SET str $ 1", "-WRONGTYPE Operation against a key holding the wrong kind of value"), ("JSON.GET str", "-WRONGTYPE Operation against a key holding the wrong kind of value")],
    &[("JSON.SET d $.s `\"a\\u00e9\\n\"`", "+OK"), ("JSON.GET d .s", "'\"aé\\n\"'")],
    &[("JSON.SET d $.f 2.0", "+OK"), ("JSON.GET d .f", "'2.0'"), ("JSON.TYPE d .f", "'number'")],
    // GET formatting.
    &[("JSON.GET d INDENT `\t` NEWLINE `\n` SPACE ` ` $.b.c[3]", "'[\n\t{\n\t\t\"a\": 3\n\t}\n]'")],
    &[("JSON.GET d SPACE ` ` .b", "'{\"a\": 2,\"c\": [1,2,3,{\"a\": 3}]}'")],
    &[("JSON.GET d NOESCAPE .a", "'1'"), ("JSON.GET d INDENT", "-ERR wrong number of arguments for 'json.get' command")],
    &[("JSON.GET d FORMAT EXPAND .a", "-ERR FORMAT argument is not supported on RESP2")],
    // MGET (one shard here; across shards in the end-to-end tests).
    &[("JSON.SET d2 $ `{\"a\":9}`", "+OK"), ("SET s x", "+OK"), ("JSON.MGET d d2 s none $.a", "['[1]', '[9]', nil, nil]")],
    &[("JSON.MGET d none .b.a", "['2', nil]"), ("JSON.MGET d .zz", "[nil]"), ("JSON.MGET d $[", "[nil]")],
    // MERGE.
    &[("JSON.MERGE d $ `{\"a\":null,\"s\":\"new\",\"b\":{\"c\":7}}`", "+OK"), ("JSON.GET d $.a $.s $.b", "'{\"$.a\":[],\"$.s\":[\"new\"],\"$.b\":[{\"a\":2,\"c\":7}]}'")],
    &[("JSON.MERGE d $.b.a null", "+OK"), ("JSON.GET d .b", "'{\"c\":[1,2,3,{\"a\":3}]}'")],
    &[("JSON.MERGE d $..a 9", "+OK"), ("JSON.GET d $..a", "'[9,9,9]'")],
    &[("JSON.MERGE d $.nn `{\"x\":1,\"y\":null}`", "+OK"), ("JSON.GET d .nn", "'{\"x\":1}'")],
    &[("JSON.MERGE d $.x.y 1", "nil"), ("JSON.MERGE n $.a 1", "-ERR new objects must be created at the root"), ("JSON.MERGE n $ `{\"a\":1}`", "+OK")],
    // DEL / FORGET.
    &[("JSON.DEL d $..a", "3"), ("JSON.GET d $..a", "'[]'")],
    &[("JSON.DEL d $.arr[1,3]", "2"), ("JSON.GET d .arr", "'[10,30,50]'")],
    &[("JSON.DEL d $.b $.b.c", "-ERR wrong number of arguments for 'json.del' command")],
    &[("JSON.DEL d $..c $.b", "-ERR wrong number of arguments for 'json.del' command")],
    &[("JSON.DEL d $.b..*", "2"), ("JSON.GET d .b", "'{}'")],
    &[("JSON.FORGET d .nope", "0"), ("JSON.DEL none", "0"), ("JSON.DEL d", "1"), ("JSON.GET d", "nil")],
    &[("JSON.DEL d $", "1"), ("EXISTS d", "0")],
    // TYPE.
    &[("JSON.TYPE d", "'object'"), ("JSON.TYPE d $..a", "['integer', 'integer', 'integer']"), ("JSON.TYPE d .n", "'null'")],
    &[("JSON.TYPE d $.*", "['integer', 'object', 'string', 'null', 'boolean', 'number', 'array', 'array', 'object', 'object', 'array']")],
    &[("JSON.TYPE d .nope", "nil"), ("JSON.TYPE d $.nope", "[]"), ("JSON.TYPE none", "nil"), ("TYPE d", "+ReJSON-RL")],
    // CLEAR.
    &[("JSON.CLEAR d $.*", "6"), ("JSON.GET d $", "'[{\"a\":0,\"b\":{},\"s\":\"str\",\"n\":null,\"t\":true,\"f\":0,\"arr\":[],\"items\":[],\"weird key\":{},\"e\":{},\"ea\":[]}]'")],
    &[("JSON.CLEAR d .arr", "1"), ("JSON.CLEAR d .arr", "0"), ("JSON.CLEAR none", "-ERR could not perform this operation on a key that doesn't exist")],
    &[("JSON.CLEAR d", "1"), ("JSON.GET d", "'{}'")],
    // TOGGLE.
    &[("JSON.TOGGLE d $.t", "[0]"), ("JSON.TOGGLE d .t", "'true'"), ("JSON.TOGGLE d $.*", "[nil, nil, nil, nil, 0, nil, nil, nil, nil, nil, nil]")],
    &[("JSON.TOGGLE d .a", "-ERR Path does not exist or not a bool"), ("JSON.TOGGLE none $", "-ERR could not perform this operation on a key that doesn't exist")],
    // NUMINCRBY / NUMMULTBY.
    &[("JSON.NUMINCRBY d $.a 2", "'[3]'"), ("JSON.NUMINCRBY d .a 2", "'5'"), ("JSON.NUMINCRBY d $..a 1.5", "'[6.5,3.5,4.5]'")],
    &[("JSON.NUMINCRBY d $.* 1", "'[2,null,null,null,null,2.5,null,null,null,null,null]'")],
    &[("JSON.NUMMULTBY d $.f 2", "'[3.0]'"), ("JSON.NUMMULTBY d .a 10", "'10'"), ("JSON.NUMMULTBY d $.s 2", "'[null]'")],
    &[("JSON.NUMINCRBY d .s 1", "-ERR Path does not exist or does not contains a number"), ("JSON.NUMINCRBY d $.a x", "-expected value at line 1 column 1"), ("JSON.NUMINCRBY d $.a `\"1\"`", "-ERR bad input number")],
    &[("JSON.NUMMULTBY d $.f 1e308", "'[1.5e308]'"), ("JSON.NUMMULTBY d $..* 1e308", "-ERR result is not a number"), ("JSON.GET d .a", "'1'")],
    &[("JSON.NUMINCRBY d $.a 9223372036854775807", "'[9.223372036854776e18]'"), ("JSON.NUMINCRBY none $.a 1", "-ERR could not perform this operation on a key that doesn't exist")],
    // STRAPPEND / STRLEN.
    &[("JSON.STRAPPEND d $.s `\"ing\"`", "[6]"), ("JSON.STRAPPEND d .s `\"!\"`", "7"), ("JSON.GET d .s", "'\"string!\"'"), ("JSON.STRLEN d .s", "7")],
    &[("JSON.STRAPPEND d $.* `\"x\"`", "[nil, nil, 4, nil, nil, nil, nil, nil, nil, nil, nil]"), ("JSON.STRAPPEND d .a `\"x\"`", "-ERR Path does not exist or not a string")],
    &[("JSON.STRAPPEND d $.s bad", "-expected value at line 1 column 1"), ("JSON.STRAPPEND d $.s 1", "-WRONGTYPE wrong type of path value - expected string but found integer")],
    &[("JSON.SET q $ `\"abc\"`", "+OK"), ("JSON.STRAPPEND q `\"d\"`", "4"), ("JSON.STRLEN q", "4")],
    &[("JSON.STRLEN d $.items[*].*", "[nil, 1, 2, nil, 1, 2, nil, 1, 2]")],
    &[("JSON.STRLEN d .a", "-WRONGTYPE wrong type of path value - expected string but found integer"), ("JSON.STRLEN d .zz", "-ERR Path '$.zz' does not exist"), ("JSON.STRLEN none", "nil"), ("JSON.STRLEN none $", "-ERR could not perform this operation on a key that doesn't exist")],
    // ARRAPPEND / ARRINSERT / ARRLEN / ARRINDEX / ARRPOP / ARRTRIM.
    &[("JSON.ARRAPPEND d $.arr 60 `\"x\"`", "[7]"), ("JSON.ARRAPPEND d .ea `{}`", "1"), ("JSON.GET d $.arr $.ea", "'{\"$.arr\":[[10,20,30,40,50,60,\"x\"]],\"$.ea\":[[{}]]}'")],
    &[("JSON.ARRAPPEND d $..c 0", "[5]"), ("JSON.ARRAPPEND d $.* 0", "[nil, nil, nil, nil, nil, nil, 6, 4, nil, nil, 1]"), ("JSON.ARRAPPEND d .a 1", "-ERR Path does not exist or not an array")],
    &[("JSON.ARRAPPEND d $.arr `[bad`", "-expected value at line 1 column 2"), ("JSON.ARRLEN d .arr", "5"), ("JSON.ARRAPPEND d $.arr", "-ERR wrong number of arguments for 'json.arrappend' command")],
    &[("JSON.ARRINSERT d $.arr 1 15", "[6]"), ("JSON.ARRINSERT d .arr -1 45 46", "8"), ("JSON.GET d .arr", "'[10,15,20,30,40,45,46,50]'")],
    &[("JSON.ARRINSERT d $.arr 5 0", "[6]"), ("JSON.ARRINSERT d $.arr -6 0", "[7]"), ("JSON.ARRINSERT d $.arr 8 0", "-ERR index out of bounds"), ("JSON.ARRINSERT d $.arr -8 0", "-ERR index out of bounds")],
    &[("JSON.ARRINSERT d $.arr x 0", "-ERR value is not an integer or out of range"), ("JSON.ARRINSERT d .s 0 1", "-ERR Path does not exist or not an array")],
    &[("JSON.ARRLEN d $..c", "[4]"), ("JSON.ARRLEN d $.*", "[nil, nil, nil, nil, nil, nil, 5, 3, nil, nil, 0]"), ("JSON.ARRLEN d .a", "-ERR Path does not exist or not an array")],
    &[("JSON.ARRLEN d .zz", "-ERR Path does not exist"), ("JSON.ARRLEN none", "nil"), ("JSON.ARRLEN none $", "-ERR could not perform this operation on a key that doesn't exist")],
    &[("JSON.ARRINDEX d $.arr 30", "[2]"), ("JSON.ARRINDEX d .arr 30", "2"), ("JSON.ARRINDEX d .arr 35", "-1"), ("JSON.ARRINDEX d $..c `{\"a\":3}`", "[3]")],
    &[("JSON.ARRINDEX d .arr 10 1", "-1"), ("JSON.ARRINDEX d .arr 50 -2", "4"), ("JSON.ARRINDEX d .arr 50 0 -1", "-1"), ("JSON.ARRINDEX d .arr 40 0 -1", "3")],
    &[("JSON.ARRINDEX d $.* 1", "[nil, nil, nil, nil, nil, nil, -1, -1, nil, nil, -1]"), ("JSON.ARRINDEX d .a 1", "-WRONGTYPE wrong type of path value - expected array but found integer")],
    &[("JSON.ARRINDEX d .b.c 1.0", "-1"), ("JSON.ARRINDEX d .zz 1", "-ERR Path '$.zz' does not exist"), ("JSON.ARRINDEX none $ 1", "-ERR Path does not exist"), ("JSON.ARRINDEX d .arr `[x`", "-expected value at line 1 column 2")],
    &[("JSON.ARRPOP d $.arr", "['50']"), ("JSON.ARRPOP d .arr 0", "'10'"), ("JSON.ARRPOP d $.ea", "[nil]"), ("JSON.ARRPOP d .ea", "nil"), ("JSON.GET d .arr", "'[20,30,40]'")],
    &[("JSON.ARRPOP d $.items 1", "['{\"price\":15,\"tag\":\"x\",\"name\":\"p2\"}']"), ("JSON.ARRPOP d .a", "-ERR Path does not exist or not an array"), ("JSON.ARRPOP none", "-ERR could not perform this operation on a key that doesn't exist")],
    &[("JSON.ARRPOP d $.arr 99", "['50']"), ("JSON.ARRPOP d $.arr -99", "['10']"), ("JSON.ARRPOP d $.arr x", "-ERR value is not an integer or out of range")],
    &[("JSON.ARRTRIM d $.arr 1 3", "[3]"), ("JSON.GET d .arr", "'[20,30,40]'"), ("JSON.ARRTRIM d .arr 0 -2", "2"), ("JSON.ARRTRIM d .arr 5 9", "0"), ("JSON.ARRTRIM d .a 0 1", "-ERR Path does not exist or not an array")],
    &[("JSON.ARRTRIM d $.* 0 0", "[nil, nil, nil, nil, nil, nil, 1, 1, nil, nil, 0]"), ("JSON.GET d .items", "'[{\"price\":5,\"tag\":\"x\",\"name\":\"p1\"}]'")],
    // Nested arrays: mutations deepest first so every match stays valid.
    &[("JSON.SET w $ `[[1,2],[3,4]]`", "+OK"), ("JSON.ARRPOP w $..*", "['2', '4', nil, nil, nil, nil]"), ("JSON.ARRPOP w $[*]", "['1', '3']"), ("JSON.GET w", "'[[],[]]'")],
    &[("JSON.SET w $ `[[1,2],[3,4]]`", "+OK"), ("JSON.ARRINSERT w $ 0 0", "[3]"), ("JSON.ARRAPPEND w $..* 5", "[nil, 3, 3, nil, nil, nil, nil]"), ("JSON.GET w", "'[0,[1,2,5],[3,4,5]]'")],
    // OBJKEYS / OBJLEN.
    &[("JSON.OBJKEYS d .b", "['a', 'c']"), ("JSON.OBJKEYS d $..c[3]", "[['a']]"), ("JSON.OBJKEYS d $.*", "[nil, ['a', 'c'], nil, nil, nil, nil, nil, nil, ['x.y'], [], nil]")],
    &[("JSON.OBJKEYS d .a", "-ERR Path does not exist or not an object"), ("JSON.OBJKEYS d .zz", "nil"), ("JSON.OBJKEYS none", "nil"), ("JSON.OBJKEYS none $", "-ERR could not perform this operation on a key that doesn't exist")],
    &[("JSON.OBJLEN d", "11"), ("JSON.OBJLEN d $.b", "[2]"), ("JSON.OBJLEN d $.a", "[nil]"), ("JSON.OBJLEN d .a", "-WRONGTYPE wrong type of path value - expected object but found integer")],
    &[("JSON.OBJLEN d .zz", "nil"), ("JSON.OBJLEN none", "nil"), ("JSON.OBJLEN none $", "-ERR Path does not exist or not an object")],
    // RESP.
    &[("JSON.RESP d .b", "[+{, 'a', 2, 'c', [+[, 1, 2, 3, [+{, 'a', 3]]]"), ("JSON.RESP d $.t", "[+true]"), ("JSON.RESP d .f", "'1.5'"), ("JSON.RESP d .n", "nil")],
    &[("JSON.RESP d $..a", "[1, 2, 3]"), ("JSON.RESP d .zz", "-ERR Path '$.zz' does not exist"), ("JSON.RESP none", "nil")],
    // DEBUG.
    // A document of at most 16 KiB is kept as text, also after updates
    // through paths that are not static: a static path reports the bytes
    // of its value's text, the root the text plus the document's 40-byte
    // header; other paths the nodes of a temporary tree.
    &[("JSON.DEBUG MEMORY d .a", "1"), ("JSON.DEBUG MEMORY d $.a", "[1]"), ("JSON.DEBUG MEMORY d $.b.c", "[15]"), ("JSON.DEBUG MEMORY d $.zz", "[]"), ("JSON.DEBUG MEMORY d .zz", "-ERR Path '$.zz' does not exist")],
    &[("JSON.DEBUG MEMORY d $..a", "[32, 32, 32]"), ("JSON.SET t $ `[1,\"ab\"]`", "+OK"), ("JSON.DEBUG MEMORY t", "48"), ("JSON.NUMINCRBY t $[0] 1", "'[2]'"), ("JSON.DEBUG MEMORY t", "48"), ("JSON.NUMINCRBY t $[*] 1", "'[3,null]'"), ("JSON.DEBUG MEMORY t", "48"), ("JSON.DEBUG MEMORY t $[0]", "[1]"), ("JSON.DEBUG MEMORY t $[*]", "[32, 32]")],
    &[("JSON.SET s $ 5", "+OK"), ("JSON.DEBUG MEMORY s", "41"), ("JSON.DEBUG MEMORY s $", "[41]")],
    &[("JSON.DEBUG MEMORY none", "0"), ("JSON.DEBUG MEMORY none $", "[]")],
    &[("JSON.DEBUG HELP", "[+MEMORY <key> [path] - reports memory usage, +HELP                - this message]"), ("JSON.DEBUG FOO", "-ERR unknown subcommand - try `JSON.DEBUG HELP`")],
];

/// A JSON.SET whose value would put the document past 128 levels.
fn deep_set() -> String {
    format!("JSON.SET d $.b.c `{}{}`", "[".repeat(127), "]".repeat(127))
}

#[test]
fn depth_limit_holds_after_updates() {
    let mut sh = shard();
    assert_eq!(run(&mut sh, false, &format!("JSON.SET d $ `{DOC}`")), "+OK");
    assert_eq!(run(&mut sh, false, &deep_set()), "-ERR recursion limit exceeded");
    let ok = format!("JSON.SET d $.b.c `{}{}`", "[".repeat(126), "]".repeat(126));
    assert_eq!(run(&mut sh, false, &ok), "+OK");
    assert_eq!(run(&mut sh, false, "JSON.ARRAPPEND d $..c 1"), "[2]");
    let too_deep = format!("JSON.GET d $.b.c{}", "[0]".repeat(125));
    assert_eq!(run(&mut sh, false, &too_deep), "'[[]]'");
    assert_eq!(run(&mut sh, false, &format!("JSON.ARRAPPEND d $.b.c{} []", "[0]".repeat(125))), "-ERR recursion limit exceeded");
}

#[test]
fn command_cases() {
    let n = check(COMMANDS, false);
    assert!(n > 150, "{n}");
}

/// Replies whose RESP3 shape differs from RESP2.
const RESP3: &[&[(&str, &str)]] = &[
    &[
        ("JSON.NUMINCRBY d $.a 2", "[3]"),
        ("JSON.NUMINCRBY d .a 2", "[5]"),
        ("JSON.NUMINCRBY d $.b..* 0.5", "[,2.5, nil, ,1.5, ,2.5, ,3.5, nil, ,3.5]"),
    ],
    &[("JSON.TYPE d .a", "['integer']"), ("JSON.TYPE d $.a", "[['integer']]"), ("JSON.TYPE none", "[nil]")],
    &[
        ("JSON.GET d FORMAT EXPAND $.b", "[[{'a': 2, 'c': [1, 2, 3, {'a': 3}]}]]"),
        ("JSON.GET d FORMAT EXPAND1 $.b $.t", "[['{\"a\":2,\"c\":[1,2,3,{\"a\":3}]}'], [#t]]"),
    ],
    &[("JSON.GET d FORMAT STRING .a", "'1'"), ("JSON.GET d FORMAT XML .a", "-ERR wrong reply format"), ("JSON.GET none", "nil")],
    &[("JSON.RESP d .f", ",1.5"), ("JSON.RESP d .n", "nil"), ("JSON.MGET d none .a", "['1', nil]")],
];

#[test]
fn resp3_cases() {
    check(RESP3, true);
}

mod prop;
