//! DEBUG LOADAOF (Redis's tests use it to check that what was journaled
//! gives the data back): the journal is written out, the data emptied and
//! replayed from it, and nothing of that is journaled again. Function
//! libraries come back as the journal has them: the base's first, then the
//! increments' FUNCTION commands (the base's used to be loaded after the
//! increments, replacing what they had loaded).

use damselfly_tests::cluster::TempDir;
use damselfly_tests::repl::cross_shard_writes;
use damselfly_tests::{Raw, Server};

use super::{check_aof, incr_file, loaded, wait_rewrites};

const SHOP: &str = "#!lua name=shop\nredis.register_function('put', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";

/// `always`: each acknowledged write is in the file, so its size is exact.
fn start(dir: &str) -> Server {
    Server::start_with(&[
        "--dir",
        dir,
        "--shards",
        "2",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--enable-debug-command",
        "yes",
    ])
}

#[test]
fn debug_loadaof_gives_the_data_back_and_journals_nothing_again() {
    let dir = TempDir::new("loadaof");
    let s = start(dir.path());
    drop(loaded(&s));
    let mut c = s.raw();
    for cmd in cross_shard_writes() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert!(!c.cmd(&args).starts_with('-'), "{cmd:?}");
    }
    for _ in 0..5 {
        assert!(c.cmd(&["XADD", "stream", "MAXLEN", "2", "*", "f", "v"]).starts_with('$'));
    }
    assert_eq!(c.cmd(&["SET", "ttl", "v", "EX", "1000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", SHOP]), "$4\r\nshop\r\n");
    assert_eq!(c.cmd(&["FCALL", "put", "1", "by-function", "v"]), "+OK\r\n");
    let digest = c.cmd(&["DEBUG", "DIGEST"]);
    let file = incr_file(dir.path());
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), digest);
    assert!(c.cmd(&["FUNCTION", "LIST"]).contains("shop"));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size, "the replay was journaled again");
    assert!(c.cmd(&["INFO", "persistence"]).contains("rdb_changes_since_last_save:0\r\n"));
    // Writes after it are journaled as before.
    assert_eq!(c.cmd(&["SET", "after", "1"]), "+OK\r\n");
    let digest = c.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), digest);
    drop(c);
    drop(s);
    check_aof(dir.path());
}

#[test]
fn libraries_of_the_base_come_before_the_increments() {
    let dir = TempDir::new("loadaof-functions");
    let s = start(dir.path());
    let mut con = loaded(&s);
    let mut c = s.raw();
    // The rewrite that starts the journal is done first.
    wait_rewrites(&mut con, "1");
    let rewrites = 1;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", SHOP]), "$4\r\nshop\r\n");
    assert!(c.cmd(&["BGREWRITEAOF"]).starts_with('+'));
    wait_rewrites(&mut con, &(rewrites + 1).to_string());
    // The base holds `shop`; the increments load `cart` and delete `shop`.
    let cart = SHOP.replace("shop", "cart").replace("'put'", "'add'");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", &cart]), "$4\r\ncart\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "shop"]), "+OK\r\n");
    let list = c.cmd(&["FUNCTION", "LIST"]);
    assert!(list.contains("cart") && !list.contains("shop"), "{list}");
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LIST"]), list);
    drop((c, con));
    drop(s);
    let again = start(dir.path());
    drop(loaded(&again));
    let mut a: Raw = again.raw();
    assert_eq!(a.cmd(&["FUNCTION", "LIST"]), list);
}

#[test]
fn debug_loadaof_without_a_journal_leaves_the_data_alone() {
    let dir = TempDir::new("loadaof-none");
    let s = Server::start_with(&["--dir", dir.path(), "--save", "", "--enable-debug-command", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(c.cmd(&["DEBUG", "LOADAOF"]).starts_with("-ERR there is no append only file"));
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

/// `aof-use-rdb-preamble no`: a rewrite writes the base as commands
/// (`.base.aof`), which redis-check-aof accepts, DEBUG LOADAOF and a
/// restart load, and redis-server loads to the same data.
#[test]
fn a_base_of_commands_loads_here_and_in_redis() {
    let dir = TempDir::new("loadaof-commands-base");
    let s = Server::start_with(&[
        "--dir",
        dir.path(),
        "--shards",
        "2",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--enable-debug-command",
        "yes",
    ]);
    let mut con = loaded(&s);
    wait_rewrites(&mut con, "1");
    let mut c = s.raw();
    for cmd in cross_shard_writes() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert!(!c.cmd(&args).starts_with('-'), "{cmd:?}");
    }
    assert_eq!(c.cmd(&["XADD", "stream", "1-1", "f", "v"]), "$3\r\n1-1\r\n");
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "stream", "g", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", SHOP]), "$4\r\nshop\r\n");
    assert!(c.cmd(&["BGREWRITEAOF"]).starts_with('+'));
    wait_rewrites(&mut con, "2");
    let manifest = std::fs::read_to_string(format!("{}/appendonlydir/appendonly.aof.manifest", dir.path())).unwrap();
    let base = manifest.lines().find(|l| l.contains("type b")).and_then(|l| l.split_whitespace().nth(1)).unwrap().to_string();
    assert!(base.ends_with(".base.aof"), "{manifest}");
    let text = std::fs::read(format!("{}/appendonlydir/{base}", dir.path())).unwrap();
    assert!(text.starts_with(b"*"), "not commands");
    assert_eq!(c.cmd(&["SET", "after", "rewrite"]), "+OK\r\n");
    let want = c.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), want);
    assert!(c.cmd(&["FUNCTION", "LIST"]).contains("shop"));
    drop((c, con));
    drop(s);
    check_aof(dir.path());
    let r = damselfly_tests::Redis::start_with(&["--dir", dir.path(), "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut b = r.raw();
    damselfly_tests::wait_for("redis-server's load", || b.cmd(&["INFO", "persistence"]).contains("loading:0\r\n").then_some(()));
    assert_eq!(b.cmd(&["DEBUG", "DIGEST"]), want);
    assert!(b.cmd(&["FUNCTION", "LIST"]).contains("shop"));
}
