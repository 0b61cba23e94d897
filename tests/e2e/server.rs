//! Connection and server commands against a real process: authentication,
//! databases, CLIENT, CONFIG, INFO, COMMAND, flushing, shutdown.

use std::time::Duration;

use damselfly_tests::Server;
use redis::AsyncCommands;

#[test]
fn requirepass_gates_commands() {
    let s = Server::start_with(&["--requirepass", "s3cret"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd(&["AUTH", "default", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");

    // HELLO with AUTH and SETNAME in one go.
    let mut h = s.raw();
    let r = h.cmd(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "shop-api"]);
    assert!(r.starts_with("%7\r\n"), "{r}");
    assert_eq!(h.cmd(&["CLIENT", "GETNAME"]), "$8\r\nshop-api\r\n");
    assert_eq!(h.cmd(&["GET", "k"]), "$1\r\nv\r\n");

    // RESET drops authentication.
    assert_eq!(h.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(h.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");

    // redis-rs with a password in the URL.
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", s.port)).unwrap();
    let mut rc = client.get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut rc).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn auth_without_password_configured() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(
        c.cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
}

#[tokio::test]
async fn databases_are_isolated() {
    let s = Server::start();
    let mut c0 = s.conn().await;
    let mut c1 = damselfly_tests::connect(&s.client()).await;
    let _: () = redis::cmd("SELECT").arg(1).query_async(&mut c1).await.unwrap();
    let _: () = c0.set("k", "zero").await.unwrap();
    let _: () = c1.set("k", "one").await.unwrap();
    assert_eq!(c0.get::<_, String>("k").await.unwrap(), "zero");
    assert_eq!(c1.get::<_, String>("k").await.unwrap(), "one");
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c1).await.unwrap();
    assert_eq!(n, 1);
    let _: () = redis::cmd("FLUSHDB").query_async(&mut c1).await.unwrap();
    assert!(!c1.exists::<_, bool>("k").await.unwrap());
    assert_eq!(c0.get::<_, String>("k").await.unwrap(), "zero", "FLUSHDB only empties the selected database");
    let _: () = c1.set("k2", "x").await.unwrap();
    let _: () = redis::cmd("FLUSHALL").arg("ASYNC").query_async(&mut c0).await.unwrap();
    let n0: i64 = redis::cmd("DBSIZE").query_async(&mut c0).await.unwrap();
    let n1: i64 = redis::cmd("DBSIZE").query_async(&mut c1).await.unwrap();
    assert_eq!((n0, n1), (0, 0));
    let mut raw = s.raw();
    assert_eq!(raw.cmd(&["SELECT", "15"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SELECT", "16"]), "-ERR DB index is out of range\r\n");
    assert_eq!(raw.cmd(&["SELECT", "x"]), "-ERR value is not an integer or out of range\r\n");
}

#[test]
fn databases_flag_sets_the_count() {
    let s = Server::start_with(&["--databases", "2"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SELECT", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "2"]), "-ERR DB index is out of range\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "databases"]), "*2\r\n$9\r\ndatabases\r\n$1\r\n2\r\n");
}

#[test]
fn client_subcommands() {
    let s = Server::start();
    let mut a = s.raw();
    let mut b = s.raw();
    let id_a = a.cmd(&["CLIENT", "ID"]);
    assert!(id_a.starts_with(':'));
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "checkout"]), "+OK\r\n");
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "has space"]), "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    assert_eq!(a.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]), "+OK\r\n");
    let info = a.cmd(&["CLIENT", "INFO"]);
    assert!(info.contains("name=checkout") && info.contains("lib-name=redis-rs"), "{info}");
    let list = b.cmd(&["CLIENT", "LIST"]);
    assert!(list.contains("name=checkout"), "{list}");
    assert_eq!(list.matches("id=").count(), 2);
    assert_eq!(a.cmd(&["CLIENT", "NOPE"]), "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n");
    // Kill b by id: its connection closes, a stays.
    let id_b = b.cmd(&["CLIENT", "ID"]);
    let id_b = id_b.trim_start_matches(':').trim();
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", id_b]), ":1\r\n");
    assert!(b.is_closed());
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(a.cmd(&["QUIT"]), "+OK\r\n");
    assert!(a.is_closed());
}

#[test]
fn config_get_set() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "100mb"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$9\r\n104857600\r\n");
    // A parameter this server cannot honour is refused, never accepted and
    // ignored; setting the value it has is fine (tools do that).
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendonly", "yes"]),
        "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - 'appendonly' is fixed at 'no' in this server (not supported yet)\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "NO"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "appendonly"]), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    assert!(c.cmd(&["CONFIG", "SET", "save", "3600 1"]).starts_with("-ERR CONFIG SET failed (possibly related to argument 'save')"));
    assert!(c.cmd(&["CONFIG", "SET", "timeout", "30"]).starts_with("-ERR CONFIG SET failed"));
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    let r = c.cmd(&["CONFIG", "GET", "hash-max-*"]);
    assert!(r.contains("hash-max-listpack-entries") && r.contains("hash-max-ziplist-value"), "{r}");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "no-such-param", "1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'no-such-param'\r\n"
    );
    assert!(c.cmd(&["CONFIG", "SET", "port", "1"]).starts_with("-ERR CONFIG SET failed"));
    // requirepass set at runtime applies to new connections.
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), "+OK\r\n");
    assert_eq!(s.raw().cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
}

#[test]
fn config_file_is_read() {
    let dir = std::env::temp_dir().join(format!("damselfly-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damselfly.conf");
    std::fs::write(&path, "# shop cache\nrequirepass filepw\nmaxmemory 1gb\nappendonly no\n").unwrap();
    let s = Server::start_with(&[path.to_str().unwrap()]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["AUTH", "filepw"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n");
    drop(s);
    // A setting the server cannot honour stops start-up with a clear error.
    std::fs::write(&path, "appendonly yes\n").unwrap();
    let out = std::process::Command::new(damselfly_tests::binary()).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'appendonly' is fixed at 'no'"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn info_reports_real_figures() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.conn().await;
    let before: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap();
    let used_before = field(&before, "used_memory");
    let pairs: Vec<(String, String)> = (0..20_000).map(|i| (format!("info:{i}"), "x".repeat(100))).collect();
    for chunk in pairs.chunks(1000) {
        let _: () = c.mset(chunk).await.unwrap();
    }
    let _: () = c.set_ex("volatile", "1", 100).await.unwrap();
    let _: Option<String> = c.get("info:1").await.unwrap();
    let _: Option<String> = c.get("nope").await.unwrap();
    let info: String = redis::cmd("INFO").query_async(&mut c).await.unwrap();
    let used_after = field(&info, "used_memory");
    assert!(used_after > used_before + 20_000 * 100, "used_memory grew by the data: {used_before} -> {used_after}");
    assert!(info.contains("# Keyspace\r\ndb0:keys=20001,expires=1,"), "{info}");
    assert!(info.contains("role:master"));
    assert!(info.contains("shards:3"));
    assert!(field(&info, "keyspace_hits") >= 1);
    assert!(field(&info, "keyspace_misses") >= 1);
    assert!(field(&info, "connected_clients") >= 1);
    let only: String = redis::cmd("INFO").arg("keyspace").query_async(&mut c).await.unwrap();
    assert!(only.starts_with("# Keyspace") && !only.contains("# Memory"));
}

fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

#[test]
fn command_introspection() {
    let s = Server::start();
    let mut c = s.raw();
    let count = c.cmd(&["COMMAND", "COUNT"]);
    let n: usize = count.trim_start_matches(':').trim().parse().unwrap();
    assert!(n >= 50, "{count}");
    let get = c.cmd(&["COMMAND", "INFO", "get"]);
    assert!(get.starts_with("*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"), "{get}");
    assert_eq!(c.cmd(&["COMMAND", "INFO", "nosuch"]), "*1\r\n*-1\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "PING"]), "-ERR The command has no key arguments\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "GET"]), "-ERR Invalid number of arguments specified for command\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "NOPE", "x"]), "-ERR Invalid command specified\r\n");
    let docs = c.cmd(&["COMMAND", "DOCS", "set"]);
    assert!(docs.contains("summary") && docs.contains("string"), "{docs}");
    let list = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "incr*"]);
    assert!(list.starts_with("*3\r\n"), "{list}");
    // Every command in the table answers COMMAND INFO.
    let all = c.cmd(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{n}\r\n")));
}

#[test]
fn time_and_role() {
    let s = Server::start();
    let mut c = s.sync_conn();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut c).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(secs.abs_diff(now) <= 2 && micros < 1_000_000);
    let role: (String, i64, Vec<String>) = redis::cmd("ROLE").query(&mut c).unwrap();
    assert_eq!(role.0, "master");
}

#[test]
fn shutdown_command_stops_the_node() {
    let mut s = Server::start();
    let mut c = s.raw();
    c.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(c.is_closed());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.exited() {
        assert!(std::time::Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_the_node() {
    let mut s = Server::start();
    assert_eq!(s.raw().cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert!(s.terminate(Duration::from_secs(10)), "server did not exit on SIGTERM");
}

#[test]
fn maxclients_refuses_extra_connections() {
    let s = Server::start_with(&["--maxclients", "2"]);
    let mut a = s.raw();
    let mut b = s.raw();
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    let mut c = s.raw();
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "-ERR max number of clients reached\r\n");
    drop(a);
    // Once a slot frees up new clients are served again (bounded retries).
    let mut ok = false;
    for _ in 0..50 {
        let mut d = s.raw();
        d.send(b"PING\r\n");
        if d.read_reply() == b"+PONG\r\n" {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok);
}

/// WAIT: no replicas, so 0; at once when none is asked for, after the
/// timeout otherwise, or not at all when the client leaves first.
#[test]
fn wait_answers_zero_replicas() {
    let s = Server::start();
    let mut c = s.raw();
    assert_eq!(c.cmd(&["WAIT", "0", "0"]), ":0\r\n");
    let t = std::time::Instant::now();
    assert_eq!(c.cmd(&["WAIT", "1", "150"]), ":0\r\n");
    assert!(t.elapsed() >= std::time::Duration::from_millis(140));
    assert_eq!(c.cmd(&["WAIT", "1", "-1"]), "-ERR timeout is negative\r\n");
    // One waiting for ever counts as blocked until it hangs up.
    let mut w = s.raw();
    w.send_cmd(&[b"WAIT", b"1", b"0"]);
    c.wait_blocked(1);
    drop(w);
    c.wait_blocked(0);
}
