//! Connection and server commands against a real process: authentication,
//! databases, CLIENT, CONFIG, INFO, COMMAND, flushing, shutdown. CLIENT
//! LIST, INFO and KILL's fields are checked in `clients`, command and error
//! statistics and SLOWLOG in `stats`.

#[path = "server/clients.rs"]
mod clients;
#[path = "server/stats.rs"]
mod stats;

use std::time::Duration;

use damselfly_tests::{Raw, Server};
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
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendonly", "maybe"]),
        "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "NO"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "appendonly"]), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    // A parameter this server cannot honour is refused, never accepted and
    // ignored; setting the value it has is fine (tools do that).
    assert!(c.cmd(&["CONFIG", "SET", "activerehashing", "no"]).starts_with("-ERR CONFIG SET failed"));
    // Save points: Redis's default, its syntax, "" for none.
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$23\r\n3600 1 300 100 60 10000\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", "900 1 300 10"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$12\r\n900 1 300 10\r\n");
    assert!(c.cmd(&["CONFIG", "SET", "save", "900"]).starts_with("-ERR CONFIG SET failed (possibly related to argument 'save')"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    let r = c.cmd(&["CONFIG", "GET", "hash-max-*"]);
    assert!(r.contains("hash-max-listpack-entries") && r.contains("hash-max-ziplist-value"), "{r}");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "no-such-param", "1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'no-such-param'\r\n"
    );
    assert!(c.cmd(&["CONFIG", "SET", "port", "65536"]).starts_with("-ERR CONFIG SET failed (possibly related to argument 'port')"));
    // requirepass set at runtime applies to new connections.
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), "+OK\r\n");
    assert_eq!(s.raw().cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
}

/// CONFIG GET as redis-server answers it: a hidden parameter only by its
/// exact name, `replicaof` and `slaveof` from the replication state; CONFIG
/// SET of a start-up parameter to the value it has succeeds (Redis's
/// "CONFIG sanity" sets every parameter so), to another is refused.
#[test]
fn config_get_and_set_of_special_parameters() {
    let s = Server::start();
    let redis = damselfly_tests::Redis::start();
    let (mut c, mut r) = (s.raw(), redis.raw());
    c.same_replies(
        &mut r,
        &[
            &["CONFIG", "GET", "key-load-*"],
            &["CONFIG", "GET", "key-load-delay"],
            &["CONFIG", "GET", "replicaof"],
            &["CONFIG", "GET", "slaveof"],
            &["CONFIG", "SET", "bind", "127.0.0.1"],
            &["CONFIG", "GET", "bind"],
        ],
    );
    // Several parameters at once: all or nothing (the first two valid,
    // the third refused, the first two put back), and maxmemory-clients's
    // forms and texts.
    c.same_replies(
        &mut r,
        &[
            &["CONFIG", "SET", "maxmemory", "10000002"],
            &["CONFIG", "SET", "maxmemory", "10000001", "maxmemory-clients", "200%", "client-query-buffer-limit", "invalid"],
            &["CONFIG", "SET", "maxmemory", "10000001", "maxmemory-clients", "5%", "client-query-buffer-limit", "invalid"],
            &["CONFIG", "GET", "maxmemory"],
            &["CONFIG", "GET", "maxmemory-clients"],
            &["CONFIG", "GET", "client-query-buffer-limit"],
            &["CONFIG", "SET", "maxmemory-clients", "7%"],
            &["CONFIG", "GET", "maxmemory-clients"],
            &["CONFIG", "SET", "maxmemory-clients", "1mb"],
            &["CONFIG", "GET", "maxmemory-clients"],
            &["CONFIG", "SET", "maxmemory-clients", "-1"],
            &["CONFIG", "SET", "maxmemory", "0", "maxmemory-clients", "0"],
        ],
    );
    let port = s.port.to_string();
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &port]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "shards", "64"]),
        "-ERR CONFIG SET failed (possibly related to argument 'shards') - can't set immutable config\r\n"
    );
    let shards = c.cmd(&["CONFIG", "GET", "shards"]);
    let now = shards.rsplit("\r\n").nth(1).expect("a value").to_string();
    assert_eq!(c.cmd(&["CONFIG", "SET", "shards", &now]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "daemonize", "no"]),
        "-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"
    );
    // A replica reports the primary it follows.
    let replica = Server::start();
    let mut rc = replica.raw();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    let want = format!("127.0.0.1 {port}");
    assert_eq!(
        rc.cmd(&["CONFIG", "GET", "*of"]),
        format!("*4\r\n$9\r\nreplicaof\r\n${}\r\n{want}\r\n$7\r\nslaveof\r\n${}\r\n{want}\r\n", want.len(), want.len())
    );
}

/// CONFIG SET of `port` and `bind` moves the listeners before it answers
/// (Redis's texts when a socket cannot be opened, and nothing changes);
/// connections already open stay.
#[test]
fn config_set_port_and_bind_move_the_listener() {
    let s = Server::start();
    let mut c = s.raw();
    let next = damselfly_tests::free_port();
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &next.to_string()]), "+OK\r\n");
    assert!(Raw::try_connect(s.port).is_none(), "the old port is closed once the change is answered");
    let mut moved = Raw::connect(next);
    assert_eq!(moved.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["INFO", "server"]).lines().find(|l| l.starts_with("tcp_port:")), Some(&*format!("tcp_port:{next}")));
    // A port in use, an address that is not one, and no port at all are
    // refused; the node still listens where it did.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().port().to_string();
    let reply = c.cmd(&["CONFIG", "SET", "port", &taken]);
    assert!(reply.starts_with("-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"), "{reply}");
    let reply = c.cmd(&["CONFIG", "SET", "maxmemory", "1mb", "bind", "999.999.999.999"]);
    assert!(
        reply.starts_with("-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses"),
        "{reply}"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", "the whole call is undone");
    let reply = c.cmd(&["CONFIG", "SET", "port", "0"]);
    assert!(reply.contains("no port would be left open"), "{reply}");
    assert_eq!(c.cmd(&["CONFIG", "GET", "port"]), format!("*2\r\n$4\r\nport\r\n${}\r\n{next}\r\n", next.to_string().len()));
    // New addresses on the same port: the old socket makes room for them.
    assert_eq!(c.cmd(&["CONFIG", "SET", "bind", "127.0.0.1 127.0.0.2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "bind"]), "*2\r\n$4\r\nbind\r\n$19\r\n127.0.0.1 127.0.0.2\r\n");
    let second = std::net::TcpStream::connect(("127.0.0.2", next));
    assert!(second.is_ok(), "listens on the second address: {second:?}");
    assert_eq!(Raw::connect(next).cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(moved.cmd(&["PING"]), "+PONG\r\n", "connections stay");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
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
    std::fs::write(&path, "activerehashing no\n").unwrap();
    let out = std::process::Command::new(damselfly_tests::binary()).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'activerehashing' is fixed at 'yes'"), "{err}");
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
fn container_subcommands() {
    let s = Server::start();
    let mut c = s.raw();
    // Each subcommand has its own COMMAND INFO entry, named in full; the
    // container's lists them and has no flags or keys of its own.
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "client|kill"]),
        "*1\r\n*10\r\n$11\r\nclient|kill\r\n:-3\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n\
         *4\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"
    );
    let object = c.cmd(&["COMMAND", "INFO", "object"]);
    assert!(object.starts_with("*1\r\n*10\r\n$6\r\nobject\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n"), "{object}");
    assert!(object.contains("$15\r\nobject|encoding\r\n:3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"), "{object}");
    assert_eq!(c.cmd(&["COMMAND", "INFO", "object|nosuch", "get|x"]), "*2\r\n*-1\r\n*-1\r\n");
    // COUNT counts commands; LIST names subcommands too, as Redis does.
    let count = c.cmd(&["COMMAND", "COUNT"]);
    let n: usize = count.trim_start_matches(':').trim().parse().unwrap();
    let list = c.cmd(&["COMMAND", "LIST"]);
    assert!(list.contains("$11\r\nclient|kill\r\n"), "{list}");
    assert!(list.lines().next().unwrap().trim_start_matches('*').parse::<usize>().unwrap() > n + 40);
    let objects = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "object|*"]);
    assert!(objects.starts_with("*5\r\n"), "{objects}");
    let docs = c.cmd(&["COMMAND", "DOCS", "client|kill"]);
    assert!(docs.contains("Terminates open connections.") && docs.contains("connection"), "{docs}");
    let docs = c.cmd(&["COMMAND", "DOCS", "config"]);
    assert!(docs.contains("subcommands") && docs.contains("config|set"), "{docs}");
    // GETKEYS follows the subcommand's key spec.
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"]), "*1\r\n$1\r\nk\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "MEMORY", "USAGE"]), "-ERR Invalid number of arguments specified for command\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "OBJECT", "NOPE", "k"]), "-ERR Invalid command specified\r\n");
    // Arity errors name the subcommand; unknown ones get Redis's text.
    let arity = |name: &str| format!("-ERR wrong number of arguments for '{name}' command\r\n");
    assert_eq!(c.cmd(&["CLIENT", "KILL"]), arity("client|kill"));
    assert_eq!(c.cmd(&["client", "id", "x"]), arity("client|id"));
    assert_eq!(c.cmd(&["CLIENT"]), arity("client"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING"]), arity("object|encoding"));
    assert_eq!(c.cmd(&["MEMORY", "USAGE"]), arity("memory|usage"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory"]), arity("config|set"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1", "x"]), arity("config|set"));
    assert_eq!(c.cmd(&["SCRIPT", "KILL", "now"]), arity("script|kill"));
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS"]), arity("command|getkeys"));
    assert_eq!(c.cmd(&["CLUSTER", "SLOTS", "x"]), arity("cluster|slots"));
    assert_eq!(c.cmd(&["OBJECT", "NOPE", "k"]), "-ERR unknown subcommand 'NOPE'. Try OBJECT HELP.\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "NOPE"]), "-ERR unknown subcommand 'NOPE'. Try CLUSTER HELP.\r\n");
    assert_eq!(
        c.cmd(&["PUBSUB", "CHANNELS", "a", "b"]),
        "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
    );
    // A connection's last command is the subcommand.
    let list = c.cmd(&["CLIENT", "LIST"]);
    assert!(list.contains(" cmd=client|list"), "{list}");
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
    // The start-up probe's connection may still be closing: wait until `a`
    // is the only client counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.cmd(&["INFO", "clients"]).contains("connected_clients:1\r\n") {
        assert!(std::time::Instant::now() < deadline, "the probe connection is still counted");
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// LOLWUT: the version line, and Redis 5's "Schotter" for VERSION 5 (its
/// first two rows of squares are not disordered, so a one-row drawing is
/// the same as redis-server's).
#[test]
fn lolwut_draws_as_redis_does() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut redis) = (s.raw(), r.raw());
    let version = |text: String, v: &str| text.replace(v, "VERSION");
    let ours_v = damselfly::REDIS_VERSION;
    for args in [
        &["LOLWUT"][..],
        &["LOLWUT", "VERSION", "5", "1", "1", "1"],
        &["LOLWUT", "VERSION", "5", "40", "6", "2"],
        &["LOLWUT", "VERSION", "9"],
    ] {
        let (a, b) = (ours.cmd(args), redis.cmd(args));
        let strip = |t: &str| t.split_once("\r\n").map_or(String::new(), |p| p.1.to_string());
        assert_eq!(version(strip(&a), ours_v), version(strip(&b), "7.0.15"), "{args:?}");
    }
    assert_eq!(ours.cmd(&["LOLWUT", "VERSION", "x"]), redis.cmd(&["LOLWUT", "VERSION", "x"]));
}

/// CONFIG REWRITE writes the running configuration back into the file the
/// server started with: the file's own lines keep their place (comments
/// too) with current values, repeated `save` lines fold into one, changed
/// parameters the file lacked are appended, and a server started from the
/// result has the same configuration.
#[test]
fn config_rewrite_persists_the_running_configuration() {
    let plain = Server::start();
    assert_eq!(plain.raw().cmd(&["CONFIG", "REWRITE"]), "-ERR The server is running without a config file\r\n");
    let dir = damselfly_tests::cluster::TempDir::new("rewrite");
    let path = format!("{}/damselfly.conf", dir.path());
    std::fs::write(&path, "# shop cache\nmaxmemory 1gb\nsave 900 1\nsave 300 10\n\nmaxmemory-policy noeviction\n").unwrap();
    let s = Server::start_with(&[&path]);
    let mut c = s.raw();
    for (name, value) in [("maxmemory", "2gb"), ("timeout", "30"), ("save", "60 5"), ("maxmemory-policy", "allkeys-lru")] {
        assert_eq!(c.cmd(&["CONFIG", "SET", name, value]), "+OK\r\n", "{name}");
    }
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# shop cache\nmaxmemory 2147483648\nsave 60 5\n\nmaxmemory-policy allkeys-lru\n"), "{text}");
    assert!(text.contains("\n# Generated by CONFIG REWRITE\n") && text.contains("\ntimeout 30\n"), "{text}");
    assert!(!text.contains("save 300 10"), "{text}");
    drop(s);
    let again = Server::start_with(&[&path]);
    let mut c = again.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$10\r\n2147483648\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "timeout"]), "*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$4\r\n60 5\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory-policy"]), "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n");
}
