//! MODULE and INFO `modules`: the built-in JSON module as MODULE LIST and
//! INFO show it, LOAD/LOADEX/UNLOAD behind `enable-module-command`, and
//! the replies that must equal redis-server 7.0's (refusals, failed loads,
//! unknown names, HELP, argument errors).

use damselfly_tests::{cluster::TempDir, Redis, Server};

/// The path MODULE LIST gives the built-in module: the executable server
/// `s` runs (which a `DAMSELFLY_BIN` wrapper script execs).
fn exe(s: &Server) -> String {
    std::fs::read_link(format!("/proc/{}/exe", s.pid())).expect("the server's executable").display().to_string()
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

#[test]
fn list_shows_the_built_in_json_module() {
    let s = Server::start();
    let mut c = s.raw();
    let path = exe(&s);
    let entry = format!("{}{}{}:20624\r\n{}{}{}*0\r\n", bulk("name"), bulk("ReJSON"), bulk("ver"), bulk("path"), bulk(&path), bulk("args"));
    assert_eq!(c.cmd(&["MODULE", "LIST"]), format!("*1\r\n*8\r\n{entry}"));
    assert_eq!(c.cmd(&["module", "list"]), format!("*1\r\n*8\r\n{entry}"));
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["MODULE", "LIST"]), format!("*1\r\n%4\r\n{entry}"));
}

#[test]
fn info_modules_has_one_line_for_json() {
    let s = Server::start();
    let mut c = s.raw();
    let body = "# Modules\r\nmodule:name=ReJSON,ver=20624,filters=0,usedby=[],using=[],options=[]\r\n";
    assert_eq!(c.cmd(&["INFO", "modules"]), bulk(body));
    assert!(c.cmd(&["INFO"]).contains(&format!("\r\n\r\n{body}\r\n")));
}

#[test]
fn load_and_unload_are_refused_by_default_as_in_redis() {
    let s = Server::start();
    let r = Redis::start();
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let refused = "-ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n";
    let cases: &[&[&str]] = &[
        &["MODULE", "LOAD", "/nonexistent/mod.so"],
        &["MODULE", "LOAD", "/nonexistent/mod.so", "a", "b"],
        &["MODULE", "LOADEX", "/nonexistent/mod.so", "CONFIG", "n", "v", "ARGS", "a"],
        &["MODULE", "UNLOAD", "ReJSON"],
        &["MODULE", "UNLOAD", "nosuch"],
    ];
    for c in cases {
        assert_eq!(ours.cmd(c), refused, "{c:?}");
        assert_eq!(redis.cmd(c), refused, "{c:?}");
    }
    let same: &[&[&str]] = &[
        &["CONFIG", "GET", "enable-module-command"],
        &["MODULE", "HELP"],
        &["MODULE", "help"],
        &["MODULE", "LOAD"],
        &["MODULE", "UNLOAD"],
        &["MODULE", "UNLOAD", "a", "b"],
        &["MODULE", "LIST", "x"],
        &["MODULE", "HELP", "x"],
        &["MODULE", "NOPE"],
        &["MODULE"],
    ];
    for c in same {
        assert_eq!(ours.cmd(c), redis.cmd(c), "{c:?}");
    }
    assert_eq!(ours.cmd(&["CONFIG", "GET", "enable-module-command"]), "*2\r\n$21\r\nenable-module-command\r\n$2\r\nno\r\n");
    assert_eq!(ours.cmd(&["MODULE", "HELP"]).lines().next(), Some("*11"));
    // Set at start-up only, as in Redis (whose text ends at "config").
    assert_eq!(
        ours.cmd(&["CONFIG", "SET", "enable-module-command", "yes"]),
        "-ERR CONFIG SET failed (possibly related to argument 'enable-module-command') - can't set immutable config\r\n"
    );
}

#[test]
fn allowed_loads_fail_as_a_failed_load_does_in_redis() {
    for setting in ["yes", "local"] {
        let s = Server::start_with(&["--enable-module-command", setting]);
        let r = Redis::start_with(&["--enable-module-command", setting]);
        let (mut ours, mut redis) = (s.raw(), r.raw());
        let failed = "-ERR Error loading the extension. Please check the server logs.\r\n";
        let cases: &[&[&str]] = &[
            &["MODULE", "LOAD", "/nonexistent/mod.so"],
            &["MODULE", "LOAD", "/nonexistent/mod.so", "a", "b"],
            &["MODULE", "LOADEX", "/nonexistent/mod.so"],
            &["MODULE", "LOADEX", "/nonexistent/mod.so", "CONFIG", "n", "v", "ARGS", "a"],
        ];
        for c in cases {
            assert_eq!(ours.cmd(c), failed, "{setting} {c:?}");
            assert_eq!(redis.cmd(c), failed, "{setting} {c:?}");
        }
        // A name no module has: Redis's text, the same from both.
        let unknown = ["MODULE", "UNLOAD", "nosuch"];
        assert_eq!(ours.cmd(&unknown), "-ERR Error unloading module: no such module with that name\r\n");
        assert_eq!(ours.cmd(&unknown), redis.cmd(&unknown));
        // The built-in module exports a data type (ReJSON-RL): Redis's text
        // for such a module; names are compared without regard to case.
        let exports = "-ERR Error unloading module: the module exports one or more module-side data types, can't unload\r\n";
        assert_eq!(ours.cmd(&["MODULE", "UNLOAD", "ReJSON"]), exports);
        assert_eq!(ours.cmd(&["MODULE", "UNLOAD", "rejson"]), exports);
        assert_eq!(
            ours.cmd(&["CONFIG", "GET", "enable-module-command"]),
            format!("*2\r\n$21\r\nenable-module-command\r\n{}", bulk(setting))
        );
        // JSON is still there.
        assert_eq!(ours.cmd(&["JSON.SET", "k", "$", "[1]"]), "+OK\r\n");
        assert_eq!(ours.cmd(&["MODULE", "LIST"]).lines().nth(5), Some("ReJSON"));
    }
}

#[test]
fn the_setting_can_come_from_the_config_file() {
    let dir = TempDir::new("modules");
    let conf = format!("{}/damselfly.conf", dir.path());
    std::fs::write(&conf, "enable-module-command yes\n").expect("write config");
    let s = Server::start_with(&[&conf]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "enable-module-command"]), "*2\r\n$21\r\nenable-module-command\r\n$3\r\nyes\r\n");
    assert_eq!(c.cmd(&["MODULE", "LOAD", "/nonexistent/mod.so"]), "-ERR Error loading the extension. Please check the server logs.\r\n");
}
