//! The form a JSON document is kept in, seen through JSON.DEBUG MEMORY: a
//! document of at most 16 KiB is kept as its canonical text (40 bytes of
//! header plus the text, so its memory is 40 + the length of JSON.GET's
//! reply), and no read command changes that.

use damselfly_tests::Server;

/// The order document of issue #21 (236 bytes).
const ORDER: &str = r#"{"id":"o1","user":"u42","status":"paid","items":[{"id":"001","name":"Laptop","quantity":1,"price":1799.99},{"id":"002","name":"Mouse","quantity":2,"price":25.5}],"shipping":{"city":"Berlin","zip":"10115","express":true},"total":1850.99}"#;

/// The reply to JSON.DEBUG MEMORY for a document kept as text.
fn text_memory(text: &str) -> String {
    format!(":{}\r\n", 40 + text.len())
}

#[test]
fn reads_leave_a_text_document_as_text() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["JSON.SET", "k", "$", ORDER]), "+OK\r\n");
    assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), ":276\r\n");
    let reads: &[(&[&str], &str)] = &[
        (&["JSON.TYPE", "k"], "$6\r\nobject\r\n"),
        (&["JSON.TYPE", "k", "$.total"], "*1\r\n$6\r\nnumber\r\n"),
        (&["JSON.TYPE", "k", ".items[0].quantity"], "$7\r\ninteger\r\n"),
        (&["JSON.TYPE", "k", "$.items[*].id"], "*2\r\n$6\r\nstring\r\n$6\r\nstring\r\n"),
        (&["JSON.TYPE", "k", ".nope"], "$-1\r\n"),
        (&["JSON.OBJKEYS", "k", ".shipping"], "*3\r\n$4\r\ncity\r\n$3\r\nzip\r\n$7\r\nexpress\r\n"),
        (&["JSON.OBJKEYS", "k", "$..shipping"], "*1\r\n*3\r\n$4\r\ncity\r\n$3\r\nzip\r\n$7\r\nexpress\r\n"),
        (&["JSON.OBJLEN", "k"], ":6\r\n"),
        (&["JSON.OBJLEN", "k", "$.items[*]"], "*2\r\n:4\r\n:4\r\n"),
        (&["JSON.STRLEN", "k", ".shipping.city"], ":6\r\n"),
        (&["JSON.STRLEN", "k", "$..name"], "*2\r\n:6\r\n:5\r\n"),
        (&["JSON.STRLEN", "k", ".total"], "-WRONGTYPE wrong type of path value - expected string but found number\r\n"),
        (&["JSON.ARRLEN", "k", ".items"], ":2\r\n"),
        (&["JSON.ARRLEN", "k", "$.*"], "*6\r\n$-1\r\n$-1\r\n$-1\r\n:2\r\n$-1\r\n$-1\r\n"),
        (&["JSON.ARRINDEX", "k", "$.items[*].quantity", "2"], "*2\r\n$-1\r\n$-1\r\n"),
        (&["JSON.ARRINDEX", "k", ".items", "1"], ":-1\r\n"),
        (
            &["JSON.RESP", "k", ".shipping"],
            "*7\r\n+{\r\n$4\r\ncity\r\n$6\r\nBerlin\r\n$3\r\nzip\r\n$5\r\n10115\r\n$7\r\nexpress\r\n+true\r\n",
        ),
        (&["JSON.RESP", "k", "$.items[1].price"], "*1\r\n$4\r\n25.5\r\n"),
        (&["JSON.GET", "k", "$..quantity"], "$5\r\n[1,2]\r\n"),
        (&["JSON.GET", "k", "INDENT", " ", ".shipping.zip"], "$7\r\n\"10115\"\r\n"),
        (&["JSON.GET", "k", ".id", ".user"], "$26\r\n{\".id\":\"o1\",\".user\":\"u42\"}\r\n"),
        (&["JSON.MGET", "k", "$.items[?(@.price<100)].name"], "*1\r\n$9\r\n[\"Mouse\"]\r\n"),
        (&["JSON.DEBUG", "MEMORY", "k", "$.items[*]"], "*2\r\n:256\r\n:256\r\n"),
    ];
    for (cmd, want) in reads {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
        assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), ":276\r\n", "after {cmd:?}");
    }
    assert_eq!(c.cmd(&["JSON.GET", "k"]), format!("${}\r\n{ORDER}\r\n", ORDER.len()));
    assert_eq!(text_memory(ORDER), ":276\r\n");
}

#[test]
fn writes_leave_a_small_document_as_text() {
    let s = Server::start();
    let mut c = s.raw();
    let item0 = r#"{"id":"001","name":"Laptop","quantity":1,"price":1799.99}"#;
    let item1 = r#"{"id":"002","name":"Mouse","quantity":2,"price":25.5}"#;
    let edit = |from: &str, to: &str| {
        assert!(ORDER.contains(from), "{from}");
        ORDER.replacen(from, to, 1)
    };
    // Each update on a fresh copy of the order: its reply and the document
    // after it.
    let rows: Vec<(&[&str], String, String)> = vec![
        (&["JSON.STRAPPEND", "k", "$.status", "\"!\""], "*1\r\n:5\r\n".into(), edit("paid", "paid!")),
        (&["JSON.STRAPPEND", "k", ".user", "\"x\""], ":4\r\n".into(), edit("u42", "u42x")),
        (&["JSON.DEL", "k", "$.shipping.zip"], ":1\r\n".into(), edit(r#","zip":"10115""#, "")),
        (&["JSON.FORGET", "k", ".items[0]"], ":1\r\n".into(), edit(&format!("{item0},"), "")),
        (&["JSON.DEL", "k", "$..price"], ":2\r\n".into(), edit(r#","price":1799.99"#, "").replacen(r#","price":25.5"#, "", 1)),
        (&["JSON.ARRINSERT", "k", "$.items", "0", r#"{"id":"000"}"#], "*1\r\n:3\r\n".into(), edit("[{", r#"[{"id":"000"},{"#)),
        (
            &["JSON.MERGE", "k", "$", r#"{"status":"shipped","shipping":{"express":null},"gift":true}"#],
            "+OK\r\n".into(),
            edit("paid", "shipped").replacen(r#","express":true"#, "", 1).replacen("1850.99}", r#"1850.99,"gift":true}"#, 1),
        ),
        (&["JSON.MERGE", "k", "$.items[1]", r#"{"quantity":5}"#], "+OK\r\n".into(), edit(r#""quantity":2"#, r#""quantity":5"#)),
        (
            &["JSON.MERGE", "k", ".shipping", r#"{"zip":null,"city":{"name":"Paris"},"meta":{"a":null,"b":[1]}}"#],
            "+OK\r\n".into(),
            edit(r#"{"city":"Berlin","zip":"10115","express":true}"#, r#"{"city":{"name":"Paris"},"express":true,"meta":{"b":[1]}}"#),
        ),
        (&["JSON.MERGE", "k", "$..shipping", r#"{"express":null}"#], "+OK\r\n".into(), edit(r#","express":true"#, "")),
        (&["JSON.MERGE", "k", "$.items", r#"[]"#], "+OK\r\n".into(), edit(&format!("[{item0},{item1}]"), "[]")),
        (&["JSON.ARRPOP", "k", ".items"], format!("${}\r\n{item1}\r\n", item1.len()), edit(&format!(",{item1}"), "")),
        (&["JSON.ARRTRIM", "k", "$.items", "1", "1"], "*1\r\n:1\r\n".into(), edit(&format!("{item0},"), "")),
        (&["JSON.CLEAR", "k", "$.shipping"], ":1\r\n".into(), edit(r#""city":"Berlin","zip":"10115","express":true"#, "")),
        (&["JSON.TOGGLE", "k", "$.shipping.express"], "*1\r\n:0\r\n".into(), edit("true", "false")),
        (
            &["JSON.NUMINCRBY", "k", "$..quantity", "1"],
            "$5\r\n[2,3]\r\n".into(),
            edit(r#""quantity":1"#, r#""quantity":2"#).replacen(r#""quantity":2,"price":25.5"#, r#""quantity":3,"price":25.5"#, 1),
        ),
        (&["JSON.SET", "k", "$.items[*].name", "\"-\""], "+OK\r\n".into(), edit("Laptop", "-").replacen("Mouse", "-", 1)),
        (&["JSON.ARRAPPEND", "k", "$..items", "1"], "*1\r\n:3\r\n".into(), edit("25.5}]", "25.5},1]")),
        (&["JSON.ARRINSERT", "k", ".items", "9", "1"], "-ERR index out of bounds\r\n".into(), ORDER.to_string()),
        (&["JSON.STRAPPEND", "k", "$.total", "\"x\""], "*1\r\n$-1\r\n".into(), ORDER.to_string()),
    ];
    for (cmd, reply, after) in &rows {
        assert_eq!(c.cmd(&["JSON.SET", "k", "$", ORDER]), "+OK\r\n");
        assert_eq!(c.cmd(cmd), *reply, "{cmd:?}");
        assert_eq!(c.cmd(&["JSON.GET", "k"]), format!("${}\r\n{after}\r\n", after.len()), "after {cmd:?}");
        assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), text_memory(after), "after {cmd:?}");
    }
    // JSON.MSET of a path updates the same way.
    assert_eq!(c.cmd(&["JSON.SET", "k", "$", ORDER]), "+OK\r\n");
    assert_eq!(c.cmd(&["JSON.MSET", "k", "$..id", "7"]), "+OK\r\n");
    let after = edit(r#""id":"o1""#, r#""id":7"#).replace(r#""id":"001""#, r#""id":7"#).replace(r#""id":"002""#, r#""id":7"#);
    assert_eq!(c.cmd(&["JSON.GET", "k"]), format!("${}\r\n{after}\r\n", after.len()));
    assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), text_memory(&after));
}

#[test]
fn a_document_past_16_kib_is_a_tree() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["JSON.SET", "k", "$", r#"{"a":"x"}"#]), "+OK\r\n");
    assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), text_memory(r#"{"a":"x"}"#));
    // 16,384 bytes of text is the most kept as text.
    let fill = "y".repeat(16_384 - r#"{"a":"x"}"#.len());
    assert_eq!(c.cmd(&["JSON.STRAPPEND", "k", ".a", &format!("\"{fill}\"")]), ":16376\r\n");
    let doc = format!(r#"{{"a":"x{fill}"}}"#);
    assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), text_memory(&doc));
    // One more byte and it is a tree: a 32-byte root node, a one-member
    // object (56 bytes) and the string's 16,377-byte allocation.
    assert_eq!(c.cmd(&["JSON.STRAPPEND", "k", ".a", "\"z\""]), ":16377\r\n");
    assert_eq!(c.cmd(&["JSON.DEBUG", "MEMORY", "k"]), format!(":{}\r\n", 40 + 56 + 16_377));
}
