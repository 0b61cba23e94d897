//! ACL against a real server, exact replies (as redis-server 7.0.15 gives
//! them): categories, key patterns (%R/%W) in pipelines, MULTI/EXEC,
//! scripts and functions, channels, the ACL LOG, AUTH and HELLO with
//! users, the ACL file (SAVE/LOAD, --aclfile at start-up), changes seen
//! by connected clients, AUTH floods, and the same ACL exchanges sent to
//! redis-server and compared.

use damselfly_tests::{cluster::TempDir, Raw, Redis, Server};

const NOPERM_KEYS: &str = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
const NOPERM_CHANNELS: &str = "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

fn noperm_cmd(name: &str) -> String {
    format!("-NOPERM this user has no permissions to run the '{name}' command\r\n")
}

/// A connection logged in as `user` (created by the caller with `nopass`
/// or the password `pw`).
fn login(s: &Server, user: &str, pw: &str) -> Raw {
    let mut c = s.raw();
    assert_eq!(c.cmd(&["AUTH", user, pw]), "+OK\r\n");
    c
}

fn setuser(admin: &mut Raw, rules: &[&str]) {
    let mut a = vec!["ACL", "SETUSER"];
    a.extend_from_slice(rules);
    assert_eq!(admin.cmd(&a), "+OK\r\n", "{rules:?}");
}

/// The bulk strings (and integers, as text) of a flat array reply.
fn bulks(reply: &str) -> Vec<String> {
    reply
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(|l| l.strip_prefix(':').unwrap_or(l).to_string())
        .collect()
}

#[test]
fn each_category_allows_its_commands_only() {
    // (category, a command of it, its reply, a command of no such category)
    #[rustfmt::skip]
    let table: &[(&str, &[&str], &str, &[&str])] = &[
        ("keyspace", &["EXISTS", "k"], ":0\r\n", &["GET", "k"]),
        ("read", &["GET", "k"], "$-1\r\n", &["SET", "k", "v"]),
        ("write", &["SET", "w", "v"], "+OK\r\n", &["GET", "k"]),
        ("set", &["SCARD", "s"], ":0\r\n", &["LLEN", "l"]),
        ("sortedset", &["ZCARD", "z"], ":0\r\n", &["SCARD", "s"]),
        ("list", &["LLEN", "l"], ":0\r\n", &["HLEN", "h"]),
        ("hash", &["HLEN", "h"], ":0\r\n", &["LLEN", "l"]),
        ("string", &["STRLEN", "k"], ":0\r\n", &["LLEN", "l"]),
        ("bitmap", &["BITCOUNT", "b"], ":0\r\n", &["GET", "k"]),
        ("hyperloglog", &["PFCOUNT", "p"], ":0\r\n", &["GET", "k"]),
        ("geo", &["GEOPOS", "g", "m"], "*1\r\n*-1\r\n", &["GET", "k"]),
        ("stream", &["XLEN", "x"], ":0\r\n", &["GET", "k"]),
        ("pubsub", &["PUBLISH", "c", "m"], ":0\r\n", &["GET", "k"]),
        ("admin", &["SLOWLOG", "RESET"], "+OK\r\n", &["GET", "k"]),
        ("fast", &["GET", "k"], "$-1\r\n", &["KEYS", "nomatch*"]),
        ("slow", &["KEYS", "nomatch*"], "*0\r\n", &["GET", "k"]),
        ("blocking", &["BLPOP", "l", "0.01"], "*-1\r\n", &["GET", "k"]),
        ("dangerous", &["KEYS", "nomatch*"], "*0\r\n", &["GET", "k"]),
        ("connection", &["PING"], "+PONG\r\n", &["GET", "k"]),
        ("transaction", &["UNWATCH"], "+OK\r\n", &["GET", "k"]),
        ("scripting", &["EVAL", "return 1", "0"], ":1\r\n", &["GET", "k"]),
    ];
    let s = Server::start_with(&["--shards", "2"]);
    let mut admin = s.raw();
    let cats = bulks(&admin.cmd(&["ACL", "CAT"]));
    let covered: Vec<String> = table.iter().map(|t| t.0.to_string()).collect();
    assert_eq!(cats, covered, "every category is in the table, in ACL CAT's order");
    for (i, (cat, allowed, reply, denied)) in table.iter().enumerate() {
        let user = format!("u{i}");
        let plus = format!("+@{cat}");
        setuser(&mut admin, &[&user, "on", "nopass", "~*", "&*", "-@all", &plus]);
        let mut c = login(&s, &user, "x");
        assert_eq!(c.cmd(allowed), *reply, "{cat}: {allowed:?}");
        let name = denied[0].to_ascii_lowercase();
        assert_eq!(c.cmd(denied), noperm_cmd(&name), "{cat}: {denied:?}");
        // ACL DRYRUN agrees.
        let mut dry = vec!["ACL", "DRYRUN", &user];
        dry.extend_from_slice(allowed);
        assert_eq!(admin.cmd(&dry), "+OK\r\n", "{cat}");
    }
}

#[test]
fn key_patterns_in_pipelines_multi_scripts_and_functions() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut admin = s.raw();
    setuser(&mut admin, &["u", "on", ">pw", "~a*", "%R~r*", "%W~w*", "+@all"]);
    assert_eq!(admin.cmd(&["SET", "r1", "v"]), "+OK\r\n");
    let mut c = login(&s, "u", "pw");
    // A pipeline across shards: each command checked on its own.
    #[rustfmt::skip]
    let cmds: &[(&[&str], &str)] = &[
        (&["SET", "a1", "1"], "+OK\r\n"),
        (&["GET", "b1"], NOPERM_KEYS),
        (&["MSET", "a2", "2", "a3", "3"], "+OK\r\n"),
        (&["MGET", "a1", "b1"], NOPERM_KEYS),
        (&["MGET", "a1", "a2", "a3"], "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        // %R: read only; %W: write only (by the key specs' access flags).
        (&["GET", "r1"], "$1\r\nv\r\n"),
        (&["SET", "r1", "x"], NOPERM_KEYS),
        (&["LPUSH", "w1", "x"], ":1\r\n"),
        (&["LRANGE", "w1", "0", "-1"], NOPERM_KEYS),
        (&["COPY", "r1", "w2"], ":1\r\n"),
        (&["COPY", "w1", "r2"], NOPERM_KEYS),
        (&["DEL", "w2"], ":1\r\n"),
    ];
    for (args, _) in cmds {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        c.send_cmd(&a);
    }
    for (args, want) in cmds {
        assert_eq!(String::from_utf8_lossy(&c.read_reply()), *want, "{args:?}");
    }
    // MULTI: a denied command fails the transaction when queued.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "a1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["GET", "zz"]), NOPERM_KEYS);
    assert_eq!(c.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    // Rules changed between queueing and EXEC: the command fails there.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "a1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["SET", "a9", "x"]), "+QUEUED\r\n");
    setuser(&mut admin, &["u", "-set"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        "*2\r\n$1\r\n1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n"
    );
    setuser(&mut admin, &["u", "+set"]);
    // Scripts: redis.call of an undeclared key raises, redis.pcall returns the error.
    let denied = "The user executing the script can't access at least one of the keys mentioned in the command arguments";
    assert_eq!(
        c.cmd(&["EVAL", "return redis.call('get','zz')", "0"]),
        format!("-ERR {denied} script: e1865e627da33038e4f491368970810aeb17c8bb, on @user_script:1.\r\n")
    );
    assert_eq!(c.cmd(&["EVAL", "return redis.pcall('get', 'zz')", "0"]), format!("-ERR {denied}\r\n"));
    assert_eq!(c.cmd(&["EVAL", "return redis.call('get', 'a1')", "0"]), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "zz"]), NOPERM_KEYS);
    // A script reaching every shard (wide mode) is checked the same way.
    let wide = "redis.call('set', 'a{x}', 1) redis.call('set', 'a{y}', 1) return redis.call('get', 'b{z}')";
    let sha = admin.cmd(&["SCRIPT", "LOAD", wide]);
    let sha = &sha[5..45];
    assert_eq!(c.cmd(&["EVAL", wide, "0"]), format!("-ERR {denied} script: {sha}, on @user_script:1.\r\n"));
    assert_eq!(
        admin.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('f', function(keys, args) return redis.call('get', args[1]) end)\nredis.register_function('chk', function(keys, args) return redis.acl_check_cmd(unpack(args)) end)"
        ]),
        "$3\r\nlib\r\n"
    );
    assert_eq!(c.cmd(&["FCALL", "f", "0", "zz"]), format!("-ERR {denied} script: f, on @user_function:2.\r\n"));
    assert_eq!(c.cmd(&["FCALL", "f", "0", "a1"]), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["FCALL", "chk", "0", "get", "a1"]), ":1\r\n");
    assert_eq!(c.cmd(&["FCALL", "chk", "0", "get", "zz"]), "$-1\r\n");
    assert_eq!(
        c.cmd(&["FCALL", "chk", "0", "nosuch"]),
        "-ERR Invalid command passed to redis.acl_check_cmd() script: chk, on @user_function:3.\r\n"
    );
}

#[test]
fn a_restricted_default_user_applies_to_scripts() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["ACL", "SETUSER", "default", "resetkeys", "~k*"]), "+OK\r\n");
    // A new connection, never authenticated, runs as the default user.
    let mut d = s.raw();
    assert_eq!(d.cmd(&["GET", "x"]), NOPERM_KEYS);
    assert_eq!(
        d.cmd(&["EVAL", "return redis.pcall('get','x')", "0"]),
        "-ERR The user executing the script can't access at least one of the keys mentioned in the command arguments\r\n"
    );
    assert_eq!(d.cmd(&["EVAL", "return redis.pcall('get','k')", "0"]), "$-1\r\n");
}

#[test]
fn setuser_arguments_are_redacted_in_the_slow_log() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    setuser(&mut c, &["x", "on", ">secret"]);
    let log = c.cmd(&["SLOWLOG", "GET", "2"]);
    let args = "*5\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n";
    assert!(log.contains(args), "{log}");
    assert!(!log.contains("secret"), "{log}");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "hidden"]), "+OK\r\n");
    let log = c.cmd(&["SLOWLOG", "GET", "1"]);
    assert!(log.contains("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$10\r\n(redacted)\r\n"), "{log}");
    for name in ["masterauth", "masteruser"] {
        assert_eq!(c.cmd(&["CONFIG", "SET", name, "hidden"]), "+OK\r\n");
        let log = c.cmd(&["SLOWLOG", "GET", "1"]);
        assert!(log.contains(&format!("$10\r\n{name}\r\n$10\r\n(redacted)\r\n")), "{log}");
        assert!(!log.contains("hidden"), "{log}");
    }
}

#[test]
fn sort_patterns_need_access_to_every_key() {
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["RPUSH", "l", "3", "1", "2"]), ":3\r\n");
    setuser(&mut admin, &["s", "on", "nopass", "~l", "+@all"]);
    setuser(&mut admin, &["r", "on", "nopass", "%R~*", "~l", "+@all"]);
    let mut c = login(&s, "s", "x");
    assert_eq!(c.cmd(&["SORT", "l", "BY", "w_*"]), "-ERR BY option of SORT denied due to insufficient ACL permissions.\r\n");
    assert_eq!(c.cmd(&["SORT", "l", "GET", "#"]), "-ERR GET option of SORT denied due to insufficient ACL permissions.\r\n");
    assert_eq!(c.cmd(&["SORT", "l", "BY", "nosort"]), "*3\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall('sort', 'l', 'get', '#')", "0"]),
        "-ERR GET option of SORT denied due to insufficient ACL permissions.\r\n"
    );
    let mut r = login(&s, "r", "x");
    assert_eq!(r.cmd(&["SORT", "l", "GET", "#"]), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
}

#[test]
fn channels_and_subscribers() {
    let s = Server::start();
    let mut admin = s.raw();
    setuser(&mut admin, &["u", "on", "nopass", "~*", "&news.*", "+@all"]);
    let mut c = login(&s, "u", "x");
    assert_eq!(c.cmd(&["PUBLISH", "other", "m"]), NOPERM_CHANNELS);
    assert_eq!(c.cmd(&["PUBLISH", "news.a", "m"]), ":0\r\n");
    assert_eq!(c.cmd(&["SUBSCRIBE", "other"]), NOPERM_CHANNELS);
    assert_eq!(c.cmd(&["SPUBLISH", "other", "m"]), NOPERM_CHANNELS);
    // PSUBSCRIBE's pattern must be an allowed pattern, literally.
    assert_eq!(c.cmd(&["PSUBSCRIBE", "news.a*"]), NOPERM_CHANNELS);
    assert_eq!(c.cmd(&["PSUBSCRIBE", "news.*"]), "*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n");
    // Losing the channel closes the subscriber, as Redis does.
    setuser(&mut admin, &["u", "resetchannels", "&sport"]);
    assert!(c.is_closed());
}

#[test]
fn acl_log_records_denials_with_redis_fields() {
    let s = Server::start();
    let mut admin = s.raw();
    setuser(&mut admin, &["u", "on", ">pw", "~k*", "&c", "+get", "+publish", "+multi", "+discard", "+eval"]);
    let mut c = login(&s, "u", "pw");
    assert_eq!(c.cmd(&["SET", "k", "v"]), noperm_cmd("set"));
    assert_eq!(c.cmd(&["GET", "x"]), NOPERM_KEYS);
    assert_eq!(c.cmd(&["PUBLISH", "d", "m"]), NOPERM_CHANNELS);
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "y"]), NOPERM_KEYS);
    assert_eq!(c.cmd(&["DISCARD"]), "+OK\r\n");
    assert!(c.cmd(&["EVAL", "return redis.call('get', 'z')", "0"]).starts_with("-ERR The user executing the script"));
    assert_eq!(c.cmd(&["AUTH", "u", "bad"]), WRONGPASS);
    let log = admin.cmd(&["ACL", "LOG"]);
    // Newest first: (reason, context, object, username).
    let want = [
        ("auth", "toplevel", "AUTH", "u"),
        ("key", "lua", "z", "u"),
        ("key", "multi", "y", "u"),
        ("channel", "toplevel", "d", "u"),
        ("key", "toplevel", "x", "u"),
        ("command", "toplevel", "set", "u"),
    ];
    assert!(log.starts_with(&format!("*{}\r\n", want.len())), "{log}");
    let entries: Vec<&str> = log.split("*14\r\n").skip(1).collect();
    assert_eq!(entries.len(), want.len(), "{log}");
    for (e, (reason, ctx, object, user)) in entries.iter().zip(want) {
        let f = bulks(&format!("*14\r\n{e}"));
        assert_eq!(f[0..11], ["count", "1", "reason", reason, "context", ctx, "object", object, "username", user, "age-seconds"], "{e}");
        assert_eq!(f[12], "client-info");
        assert!(f[13].contains(" user=u ") || f[13].contains(" user=default "), "{}", f[13]);
    }
    // The same denial again counts on its entry.
    assert_eq!(c.cmd(&["SET", "k", "v"]), noperm_cmd("set"));
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    assert!(log.contains("$5\r\ncount\r\n:2\r\n$6\r\nreason\r\n$7\r\ncommand\r\n"), "{log}");
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["ACL", "LOG"]), "*0\r\n");
}

#[test]
fn auth_hello_and_requirepass() {
    let s = Server::start_with(&["--requirepass", "secret"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "default", "secret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), "$7\r\ndefault\r\n");
    assert_eq!(
        c.cmd(&["ACL", "LIST"]),
        "*1\r\n$93\r\nuser default on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~* &* +@all\r\n"
    );
    setuser(&mut c, &["alice", "on", ">a1", ">a2", "~*", "+@all"]);
    assert_eq!(c.cmd(&["AUTH", "alice", "a3"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "alice", "a2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), "$5\r\nalice\r\n");
    assert_eq!(c.cmd(&["AUTH", "nobody", "a2"]), WRONGPASS);
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), "$5\r\nalice\r\n");
    // HELLO ... AUTH user pass.
    let mut h = s.raw();
    assert_eq!(h.cmd(&["HELLO", "3", "AUTH", "alice", "nope"]), WRONGPASS);
    assert!(h.cmd(&["HELLO", "3", "AUTH", "alice", "a1"]).starts_with("%7\r\n"));
    assert_eq!(h.cmd(&["ACL", "WHOAMI"]), "$5\r\nalice\r\n");
    // A disabled user cannot log in; CONFIG SET requirepass changes the default user.
    setuser(&mut c, &["alice", "off"]);
    assert_eq!(s.raw().cmd(&["AUTH", "alice", "a1"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "secret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "other"]), "+OK\r\n");
    assert_eq!(s.raw().cmd(&["AUTH", "secret"]), WRONGPASS);
    assert_eq!(s.raw().cmd(&["AUTH", "other"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
    assert_eq!(s.raw().cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(
        s.raw().cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
}

#[test]
fn changes_reach_connected_clients() {
    let s = Server::start();
    let mut admin = s.raw();
    setuser(&mut admin, &["u", "on", "nopass", "~*", "+@all"]);
    let mut c = login(&s, "u", "x");
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    setuser(&mut admin, &["u", "-get"]);
    assert_eq!(c.cmd(&["GET", "k"]), noperm_cmd("get"));
    setuser(&mut admin, &["u", "resetkeys", "~k*", "+get"]);
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(c.cmd(&["GET", "j"]), NOPERM_KEYS);
    // Turned off: already authenticated connections go on (as in Redis).
    setuser(&mut admin, &["u", "off"]);
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    // CLIENT KILL USER: the user's connections (an unknown user is an error).
    setuser(&mut admin, &["v", "on", "nopass", "+@all"]);
    let mut v = login(&s, "v", "x");
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "USER", "nosuch"]), "-ERR No such user 'nosuch'\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "USER", "v"]), ":1\r\n");
    assert!(v.is_closed());
    // Deleted: its connections are closed.
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "u", "nosuch"]), ":1\r\n");
    assert!(c.is_closed());
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "default"]), "-ERR The 'default' user cannot be removed\r\n");
}

#[test]
fn acl_file_save_load_and_startup() {
    let dir = TempDir::new("acl");
    let file = format!("{}/users.acl", dir.path());
    std::fs::write(&file, "user default on nopass ~* &* +@all\nuser a on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* resetchannels -@all +get\n").unwrap();
    let s = Server::start_with(&["--aclfile", &file]);
    let mut admin = s.raw();
    let a = "user a on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* resetchannels -@all +get";
    assert_eq!(bulks(&admin.cmd(&["ACL", "LIST"])), [a, "user default on nopass ~* &* +@all"]);
    let mut c = login(&s, "a", "p1");
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    // SAVE writes what LIST shows; LOAD brings it back (closing the
    // connections of every user but default).
    setuser(&mut admin, &["b", "on", ">x", "(~x* +set)"]);
    assert_eq!(admin.cmd(&["ACL", "SAVE"]), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        saved,
        format!("{a}\nuser b on #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 resetchannels -@all (~x* resetchannels -@all +set)\nuser default on nopass ~* &* +@all\n")
    );
    setuser(&mut admin, &["c", "on"]);
    assert_eq!(admin.cmd(&["ACL", "LOAD"]), "+OK\r\n");
    assert_eq!(bulks(&admin.cmd(&["ACL", "USERS"])), ["a", "b", "default"]);
    assert!(c.is_closed());
    assert_eq!(admin.cmd(&["PING"]), "+PONG\r\n");
    // A bad file changes nothing.
    std::fs::write(&file, "user a on +nosuch\n").unwrap();
    assert_eq!(
        admin.cmd(&["ACL", "LOAD"]),
        format!("-ERR {file}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n")
    );
    assert_eq!(bulks(&admin.cmd(&["ACL", "USERS"])), ["a", "b", "default"]);
    // Without an ACL file, SAVE and LOAD refuse.
    let plain = Server::start();
    assert!(plain.raw().cmd(&["ACL", "SAVE"]).starts_with("-ERR This Redis instance is not configured to use an ACL file."));
    // An ACL file and `user` lines in the config file: refused at start-up.
    let conf = format!("{}/d.conf", dir.path());
    std::fs::write(&conf, "user u on nopass +@all\n").unwrap();
    let err = damselfly_tests::start_refused(&[&conf, "--aclfile", &file]);
    assert!(err.contains("please define either an ACL file or declare users directly in your redis.conf, but not both"), "{err}");
    // `user` lines alone define users.
    let s2 = Server::start_with(&[&conf]);
    assert_eq!(bulks(&s2.raw().cmd(&["ACL", "USERS"])), ["default", "u"]);
}

#[test]
fn auth_floods_do_not_stop_other_clients() {
    let s = Server::start_with(&["--requirepass", "pw"]);
    let port = s.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(c.cmd(&["AUTH", "default", "guess"]), WRONGPASS);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd(&["AUTH", "pw"]), "+OK\r\n");
    let mut served = 0;
    for i in 0..500 {
        assert_eq!(c.cmd(&["SET", "k", &i.to_string()]), "+OK\r\n");
        served += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let wrong: usize = attackers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, 500);
    assert!(wrong > 0);
    assert_eq!(c.cmd(&["GET", "k"]), "$3\r\n499\r\n");
}

/// The same ACL exchanges with damselfly and redis-server 7.0: the replies
/// must be equal byte for byte.
#[test]
fn acl_replies_match_redis() {
    let ours = Server::start();
    let redis = Redis::start();
    #[rustfmt::skip]
    let script: &[&[&str]] = &[
        &["ACL", "SETUSER", "alice"],
        &["ACL", "LIST"],
        &["ACL", "GETUSER", "alice"],
        &["ACL", "SETUSER", "bob", "on", ">p1", "#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", "~foo*", "%R~bar*", "%W~baz*", "&ch*", "-@all", "+@string", "+get", "-set"],
        &["ACL", "GETUSER", "bob"],
        &["ACL", "SETUSER", "bob", "(~x*", "+get)", "(%RW~y* &z +hset)"],
        &["ACL", "LIST"],
        &["ACL", "GETUSER", "bob"],
        &["ACL", "USERS"],
        &["ACL", "DRYRUN", "bob", "get", "foo1"],
        &["ACL", "DRYRUN", "bob", "get", "x1"],
        &["ACL", "DRYRUN", "bob", "get", "q"],
        &["ACL", "DRYRUN", "bob", "set", "foo1", "v"],
        &["ACL", "DRYRUN", "bob", "append", "bar1", "v"],
        &["ACL", "DRYRUN", "bob", "append", "baz1", "v"],
        &["ACL", "DRYRUN", "bob", "hset", "y1", "f", "v"],
        &["ACL", "DRYRUN", "bob", "lpush", "foo", "v"],
        &["ACL", "DRYRUN", "bob", "publish", "ch1", "m"],
        &["ACL", "DRYRUN", "bob", "nosuch"],
        &["ACL", "DRYRUN", "nobody", "get", "x"],
        &["ACL", "DRYRUN", "bob", "get"],
        &["ACL", "SETUSER", "bob", "clearselectors", "resetpass", "nopass", "allkeys", "allchannels", "+@all", "-@dangerous"],
        &["ACL", "GETUSER", "bob"],
        &["ACL", "SETUSER", "bob", "reset"],
        &["ACL", "LIST"],
        &["ACL", "SETUSER", "carol", "on", "+@all", "-@write", "+set", "~*"],
        &["ACL", "GETUSER", "carol"],
        &["ACL", "SETUSER", "carol", "+nosuch"],
        &["ACL", "SETUSER", "carol", "+@nosuch"],
        &["ACL", "SETUSER", "carol", "bogus"],
        &["ACL", "SETUSER", "carol", "(~a", "+get"],
        &["ACL", "SETUSER", "carol", "allkeys", "~a"],
        &["ACL", "SETUSER", "carol", "allchannels", "&a"],
        &["ACL", "SETUSER", "carol", "<notset"],
        &["ACL", "SETUSER", "carol", "#ABC"],
        &["ACL", "SETUSER", "carol", "+client|id|x"],
        &["ACL", "SETUSER", "carol", "+get|"],
        &["ACL", "SETUSER", "carol", "%X~a"],
        &["ACL", "SETUSER", "carol", "%~a"],
        &["ACL", "SETUSER", "dave", "%R", "%R~", "~", "%W~w", "%RW~x", "%R~x"],
        &["ACL", "GETUSER", "dave"],
        &["ACL", "SETUSER", "dave", "+debug|object"],
        &["ACL", "GETUSER", "dave"],
        &["ACL", "SETUSER", "bad name"],
        &["ACL", "SETUSER", "carol", "-@all", "+client|id"],
        &["ACL", "GETUSER", "carol"],
        &["ACL", "DELUSER", "alice", "nosuch"],
        &["ACL", "DELUSER", "default"],
        &["ACL", "GETUSER", "nosuch"],
        &["ACL", "CAT", "nosuch"],
        &["ACL", "GENPASS", "0"],
        &["ACL", "GENPASS", "x"],
        &["ACL", "WHOAMI"],
        &["ACL", "LOG", "x"],
        &["ACL", "LOG", "1", "2"],
        &["ACL", "GENPASS", "1", "2"],
        &["ACL", "CAT", "a", "b"],
        &["ACL", "NOSUCH"],
        &["AUTH", "carol", "x"],
        &["AUTH", "x"],
        // As a restricted user: the errors of each context.
        &["ACL", "SETUSER", "eve", "on", "nopass", "~k*", "&c", "+get", "+set", "+eval", "+multi", "+exec", "+publish", "+acl|whoami"],
        &["AUTH", "eve", "x"],
        &["ACL", "WHOAMI"],
        &["EVAL", "return redis.pcall('del', 'k')", "0"],
        &["EVAL", "return redis.pcall('get', 'x')", "0"],
        &["EVAL", "return redis.pcall('publish', 'd', 'm')", "0"],
        &["EVAL", "return redis.call('del', 'k')", "0"],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "x"],
        &["PUBLISH", "d", "m"],
        &["DEL", "k"],
        &["ACL", "LIST"],
        &["MULTI"],
        &["GET", "k"],
        &["GET", "x"],
        &["EXEC"],
        &["AUTH", "default", "any"],
        &["ACL", "WHOAMI"],
    ];
    let (mut a, mut b) = (ours.raw(), redis.raw());
    for args in script {
        assert_eq!(a.cmd(args), b.cmd(args), "{args:?}");
    }
    // GENPASS: hex of the bits asked for.
    let p = a.cmd(&["ACL", "GENPASS", "10"]);
    assert!(p.starts_with("$3\r\n") && p[4..7].bytes().all(|c| c.is_ascii_hexdigit()), "{p}");
}
