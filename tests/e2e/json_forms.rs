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
