//! Connection and server commands against a real process: authentication,
//! databases, CLIENT, CONFIG, INFO, COMMAND, flushing, shutdown.

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

/// The `name=value` fields of each line of a CLIENT LIST / CLIENT INFO
/// reply (RESP2: a bulk string).
fn client_lines(reply: &str) -> Vec<Vec<(String, String)>> {
    let body = reply.split_once("\r\n").map_or(reply, |(_, b)| b);
    body.lines()
        .filter(|l| l.starts_with("id="))
        .map(|l| {
            l.split(' ')
                .map(|f| {
                    let (k, v) = f.split_once('=').unwrap_or((f, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn get<'a>(line: &'a [(String, String)], name: &str) -> &'a str {
    line.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no field {name} in {line:?}"))
}

fn num(line: &[(String, String)], name: &str) -> i64 {
    get(line, name).parse().unwrap_or_else(|_| panic!("{name} is not a number in {line:?}"))
}

fn client_id(c: &mut damselfly_tests::Raw) -> String {
    c.cmd(&["CLIENT", "ID"]).trim_start_matches(':').trim().to_string()
}

/// `id`'s line of CLIENT LIST, as `observer` sees it.
fn line_of(observer: &mut damselfly_tests::Raw, id: &str) -> Vec<(String, String)> {
    client_lines(&observer.cmd(&["CLIENT", "LIST", "ID", id])).pop().unwrap_or_else(|| panic!("client {id} is not listed"))
}

/// Polls `id`'s line until `ok` holds (bounded): for state another
/// connection's input makes, which the server sees when it reads it.
fn line_when(observer: &mut damselfly_tests::Raw, id: &str, ok: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let line = line_of(observer, id);
        if ok(&line) {
            return line;
        }
        assert!(std::time::Instant::now() < deadline, "state not reached: {line:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each field of CLIENT LIST reports the connection's real state.
#[test]
fn client_list_reports_connection_state() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut obs = s.raw();

    // In MULTI with two commands queued.
    let mut m = s.raw();
    let m_id = client_id(&mut m);
    assert_eq!(m.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(m.cmd(&["SET", "a", "1"]), "+QUEUED\r\n");
    assert_eq!(m.cmd(&["SET", "b", "22"]), "+QUEUED\r\n");
    let l = line_of(&mut obs, &m_id);
    assert_eq!((get(&l, "flags"), num(&l, "multi")), ("x", 2), "{l:?}");
    // The queued arguments' bytes (3+1+1, 3+1+2) and one handle each.
    let multi_mem = num(&l, "multi-mem");
    assert!(multi_mem >= 11 + 6 * 8, "{l:?}");
    assert!(num(&l, "tot-mem") > multi_mem);
    assert_eq!(get(&l, "cmd"), "set");
    assert_eq!(m.cmd(&["EXEC"]), "*2\r\n+OK\r\n+OK\r\n");
    let l = line_of(&mut obs, &m_id);
    assert_eq!((get(&l, "flags"), num(&l, "multi"), num(&l, "multi-mem")), ("N", -1, 0), "{l:?}");

    // Subscribed to two channels and a pattern.
    let mut p = s.raw();
    let p_id = client_id(&mut p);
    p.send_cmd(&[b"SUBSCRIBE", b"c1", b"c2"]);
    p.read_reply();
    p.read_reply();
    p.send_cmd(&[b"PSUBSCRIBE", b"news.*"]);
    p.read_reply();
    let l = line_of(&mut obs, &p_id);
    assert_eq!((get(&l, "flags"), num(&l, "sub"), num(&l, "psub"), num(&l, "ssub")), ("P", 2, 1, 0), "{l:?}");

    // Watching keys; a write to one of them makes the client's transaction
    // dirty.
    let mut w = s.raw();
    let w_id = client_id(&mut w);
    assert_eq!(w.cmd(&["WATCH", "k1", "k2", "k3", "k1"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "N", "{l:?}");
    assert_eq!(obs.cmd(&["SET", "k2", "v"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "d", "{l:?}");
    assert_eq!(w.cmd(&["UNWATCH"]), "+OK\r\n");
    let l = line_of(&mut obs, &w_id);
    assert_eq!(get(&l, "flags"), "N", "{l:?}");

    // Half a command: its bytes wait in the input buffer.
    let mut h = s.raw();
    let h_id = client_id(&mut h);
    h.send(b"*3\r\n$3\r\nSET\r\n");
    let l = line_when(&mut obs, &h_id, |l| num(l, "qbuf") > 0);
    assert_eq!(num(&l, "qbuf"), 13, "{l:?}");
    h.send(b"$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(String::from_utf8_lossy(&h.read_reply()), "+OK\r\n");
    let l = line_of(&mut obs, &h_id);
    assert_eq!((num(&l, "qbuf"), num(&l, "argv-mem")), (0, 0), "{l:?}");

    // Blocked: the waiting command's arguments are held.
    let mut b = s.raw();
    let b_id = client_id(&mut b);
    b.send_cmd(&[b"BLPOP", b"nolist", b"0"]);
    let l = line_when(&mut obs, &b_id, |l| get(l, "flags") == "b");
    assert_eq!((num(&l, "argv-mem"), get(&l, "cmd")), (12, "blpop"), "{l:?}");
    assert_eq!(obs.cmd(&["RPUSH", "nolist", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&b.read_reply()), "*2\r\n$6\r\nnolist\r\n$1\r\nx\r\n");
    let l = line_when(&mut obs, &b_id, |l| get(l, "flags") == "N");
    assert_eq!(num(&l, "argv-mem"), 0, "{l:?}");

    // NO-EVICT and NO-TOUCH, cleared by RESET.
    let mut e = s.raw();
    let e_id = client_id(&mut e);
    assert_eq!(e.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(e.cmd(&["CLIENT", "NO-TOUCH", "ON"]), "+OK\r\n");
    assert_eq!(e.cmd(&["CLIENT", "NO-TOUCH", "maybe"]), "-ERR syntax error\r\n");
    assert_eq!(get(&line_of(&mut obs, &e_id), "flags"), "eT");
    assert_eq!(e.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(get(&line_of(&mut obs, &e_id), "flags"), "N");

    // The real descriptors: distinct, and not the standard streams.
    let all = client_lines(&obs.cmd(&["CLIENT", "LIST"]));
    let mut fds: Vec<i64> = all.iter().map(|l| num(l, "fd")).collect();
    assert!(fds.iter().all(|&fd| fd > 2), "{fds:?}");
    fds.sort_unstable();
    fds.dedup();
    assert_eq!(fds.len(), all.len());
    for l in &all {
        assert_eq!((get(l, "user"), num(l, "redir"), num(l, "oll")), ("default", -1, 0), "{l:?}");
        assert!(num(l, "rbs") > 0 && num(l, "tot-mem") > 0, "{l:?}");
    }

    // The caller's own line: its command's arguments, and the reply before
    // it in the same pipeline waiting in the output buffer.
    obs.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n");
    assert_eq!(String::from_utf8_lossy(&obs.read_reply()), "$5\r\nhello\r\n");
    let me = client_lines(&String::from_utf8_lossy(&obs.read_reply())).pop().expect("one line");
    assert_eq!((num(&me, "argv-mem"), num(&me, "obl"), num(&me, "omem"), get(&me, "events")), (10, 11, 11, "r"), "{me:?}");

    // TYPE filters on the real type; ID lists the ids asked, in order.
    let pubsub = client_lines(&obs.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]));
    assert_eq!(pubsub.iter().map(|l| get(l, "id")).collect::<Vec<_>>(), [p_id.as_str()]);
    let normal = client_lines(&obs.cmd(&["CLIENT", "LIST", "TYPE", "NORMAL"]));
    assert_eq!(normal.len(), all.len() - 1);
    assert!(normal.iter().all(|l| get(l, "id") != p_id));
    for t in ["master", "replica", "slave"] {
        assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", t]), "$0\r\n\r\n");
    }
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", "bogus"]), "-ERR Unknown client type 'bogus'\r\n");
    let ids = client_lines(&obs.cmd(&["CLIENT", "LIST", "ID", &w_id, "999999", &m_id]));
    assert_eq!(ids.iter().map(|l| get(l, "id")).collect::<Vec<_>>(), [w_id.as_str(), m_id.as_str()]);
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "ID", "x"]), "-ERR Invalid client ID\r\n");
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "ID"]), "-ERR syntax error\r\n");
    assert_eq!(obs.cmd(&["CLIENT", "LIST", "TYPE", "normal", "ID", "1"]), "-ERR syntax error\r\n");
}

/// A reply the client does not read stays in the output buffer: `obl`,
/// `omem` and `events=rw` show it until the write completes.
#[test]
fn client_list_shows_pending_output() {
    let s = Server::start();
    let mut obs = s.raw();
    let big = "x".repeat(32 * 1024 * 1024);
    assert_eq!(obs.cmd(&["SET", "big", &big]), "+OK\r\n");
    let mut slow = s.raw();
    let id = client_id(&mut slow);
    // More than the socket buffers take: the write cannot complete.
    slow.send_cmd(&[b"GET", b"big"]);
    let l = line_when(&mut obs, &id, |l| get(l, "events") == "rw");
    assert!(num(&l, "obl") > 32 * 1024 * 1024 && num(&l, "omem") == num(&l, "obl"), "{l:?}");
    assert!(num(&l, "rbs") >= num(&l, "obl") && num(&l, "rbp") >= num(&l, "obl"), "{l:?}");
    assert!(num(&l, "tot-mem") > num(&l, "rbs"), "{l:?}");
    let reply = slow.read_reply();
    assert_eq!(reply.len(), big.len() + 13);
    let l = line_when(&mut obs, &id, |l| get(l, "events") == "r");
    assert_eq!(num(&l, "obl"), 0, "{l:?}");
}

/// CLIENT KILL's TYPE, USER and MAXAGE filters select clients by their
/// real type, user and age.
#[test]
fn client_kill_filters() {
    let s = Server::start();
    let mut old = s.raw();
    let old_id = client_id(&mut old);
    let mut killer = s.raw();
    let mut sub = s.raw();
    sub.send_cmd(&[b"SUBSCRIBE", b"c"]);
    sub.read_reply();
    let mut plain = s.raw();
    let plain_id = client_id(&mut plain);

    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "bogus"]), "-ERR Unknown client type 'bogus'\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "USER", "nobody"]), "-ERR No such user 'nobody'\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "0"]), "-ERR maxage should be greater than 0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "x"]), "-ERR maxage is not an integer or out of range\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", "0"]), "-ERR client-id should be greater than 0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", "1", "TYPE"]), "-ERR syntax error\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":0\r\n");
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), ":0\r\n");

    // TYPE pubsub: only the subscriber.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), ":1\r\n");
    assert!(sub.is_closed());
    assert_eq!(plain.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(old.cmd(&["PING"]), "+PONG\r\n");

    // MAXAGE: once `old` and `plain` (the later) are a second old, a client
    // that connects now is younger and survives.
    line_when(&mut killer, &plain_id, |l| num(l, "age") >= 1);
    assert!(num(&line_of(&mut killer, &old_id), "age") >= 1);
    let mut young = s.raw();
    let young_id = client_id(&mut young);
    assert_eq!(num(&line_of(&mut killer, &young_id), "age"), 0);
    // Every client but the killer (skipped) and `young`.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "MAXAGE", "1"]), ":2\r\n");
    assert!(old.is_closed());
    assert!(plain.is_closed());
    assert_eq!(young.cmd(&["PING"]), "+PONG\r\n");

    // USER default with TYPE normal: everyone else of that type.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "USER", "default", "TYPE", "normal"]), ":1\r\n");
    assert!(young.is_closed());
    // SKIPME no: the caller too, after its reply.
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]), ":1\r\n");
    assert!(killer.is_closed());
}

/// CLIENT INFO prints Redis's fields in Redis's order: redis-server 7.0's
/// (the reference installed for the differential test) plus what came
/// later: `lib-name` and `lib-ver` (7.2) and `watch` (7.4, after `multi`).
/// And for the same connection states both servers print the same flags
/// and counts.
#[test]
fn client_info_fields_match_redis() {
    const REDIS_7_2: &[&str] = &[
        "id",
        "addr",
        "laddr",
        "fd",
        "name",
        "age",
        "idle",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "multi-mem",
        "rbs",
        "rbp",
        "obl",
        "oll",
        "omem",
        "tot-mem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
        "lib-name",
        "lib-ver",
    ];
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let names = |reply: String| -> Vec<String> { client_lines(&reply).pop().expect("a line").into_iter().map(|(k, _)| k).collect() };
    let ours = names(s.raw().cmd(&["CLIENT", "INFO"]));
    assert_eq!(ours, REDIS_7_2);
    let later = ["lib-name", "lib-ver"];
    let ours_as_7_0: Vec<String> = ours.into_iter().filter(|n| !later.contains(&n.as_str())).collect();
    let theirs: Vec<String> = names(r.raw().cmd(&["CLIENT", "INFO"])).into_iter().filter(|n| !later.contains(&n.as_str())).collect();
    assert_eq!(ours_as_7_0, theirs);

    // The same states on both servers.
    let compare = ["flags", "db", "sub", "psub", "ssub", "multi", "oll", "events", "user", "redir", "resp"];
    let states: &[(&str, &[&[&str]])] = &[
        ("multi", &[&["MULTI"], &["SET", "a", "1"], &["INCR", "n"]]),
        ("watch, dirty", &[&["WATCH", "w"], &["SET", "w", "1"]]),
        ("select, resp3, no-evict", &[&["SELECT", "3"], &["HELLO", "3"], &["CLIENT", "NO-EVICT", "on"]]),
        ("multi in db 1", &[&["SELECT", "1"], &["MULTI"], &["PING"]]),
    ];
    for (what, cmds) in states {
        let mut lines = Vec::new();
        for port in [s.port, r.port] {
            let mut c = damselfly_tests::Raw::connect(port);
            let id = client_id(&mut c);
            for cmd in *cmds {
                c.cmd(cmd);
            }
            let mut o = damselfly_tests::Raw::connect(port);
            let l = line_of(&mut o, &id);
            lines.push(compare.map(|f| format!("{f}={}", get(&l, f))));
            drop(c);
        }
        assert_eq!(lines[0], lines[1], "{what}");
    }
    // A subscriber and a blocked client.
    let mut lines = Vec::new();
    for port in [s.port, r.port] {
        let mut o = damselfly_tests::Raw::connect(port);
        let mut p = damselfly_tests::Raw::connect(port);
        let p_id = client_id(&mut p);
        p.send_cmd(&[b"SUBSCRIBE", b"a", b"b"]);
        p.read_reply();
        p.read_reply();
        p.send_cmd(&[b"PSUBSCRIBE", b"x*"]);
        p.read_reply();
        let mut b = damselfly_tests::Raw::connect(port);
        let b_id = client_id(&mut b);
        b.send_cmd(&[b"BLPOP", b"none", b"0"]);
        let bl = line_when(&mut o, &b_id, |l| get(l, "flags") == "b");
        let pl = line_of(&mut o, &p_id);
        lines.push([&pl, &bl].map(|l| compare.map(|f| format!("{f}={}", get(l, f)))));
    }
    assert_eq!(lines[0], lines[1]);
}

// ------------------------------------------------------------ INFO commandstats, errorstats, SLOWLOG

/// A parsed RESP reply, for comparing replies whose shape matters.
#[derive(Debug, PartialEq, Clone)]
enum V {
    Int(i64),
    Str(String),
    Err(String),
    Arr(Vec<V>),
}

fn parse_resp(b: &[u8], at: &mut usize) -> V {
    let eol = *at + b[*at..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let line = String::from_utf8_lossy(&b[*at + 1..eol]).into_owned();
    let tag = b[*at];
    *at = eol + 2;
    match tag {
        b'+' => V::Str(line),
        b'-' => V::Err(line),
        b':' => V::Int(line.parse().expect("integer")),
        b'$' => {
            let n: usize = line.parse().expect("length");
            let s = String::from_utf8_lossy(&b[*at..*at + n]).into_owned();
            *at += n + 2;
            V::Str(s)
        }
        b'*' => V::Arr((0..line.parse::<usize>().expect("count")).map(|_| parse_resp(b, at)).collect()),
        t => panic!("unexpected RESP type {:?}", t as char),
    }
}

fn resp(c: &mut damselfly_tests::Raw, args: &[&str]) -> V {
    let text = c.cmd(args);
    parse_resp(text.as_bytes(), &mut 0)
}

/// SLOWLOG GET's entries with what differs between runs blanked: the unix
/// time and the duration become 0, the id is taken relative to `base`, a
/// client's port is dropped (a script's `?:0` stays).
fn normalize_slowlog(v: V, base: i64) -> V {
    let V::Arr(entries) = v else { return v };
    V::Arr(
        entries
            .into_iter()
            .map(|e| {
                let V::Arr(f) = e else { panic!("entry is not an array: {e:?}") };
                assert_eq!(f.len(), 6, "an entry has 6 fields: {f:?}");
                let V::Int(id) = f[0] else { panic!("id: {f:?}") };
                assert!(matches!(f[1], V::Int(t) if t > 1_600_000_000), "unix time: {f:?}");
                assert!(matches!(f[2], V::Int(d) if d >= 0), "duration: {f:?}");
                let addr = match &f[4] {
                    V::Str(a) if a == "?:0" => a.clone(),
                    V::Str(a) => a.rsplit_once(':').expect("addr:port").0.to_string(),
                    other => panic!("addr: {other:?}"),
                };
                V::Arr(vec![V::Int(id - base), V::Int(0), V::Int(0), f[3].clone(), V::Str(addr), f[5].clone()])
            })
            .collect(),
    )
}

/// What `run` sees of the slow log, on any server.
fn slowlog_session(c: &mut damselfly_tests::Raw) -> Vec<V> {
    let mut seen = Vec::new();
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), "+OK\r\n");
    // The oldest entry is now SLOWLOG RESET itself: ids count from it.
    let V::Arr(first) = resp(c, &["SLOWLOG", "GET", "-1"]) else { panic!() };
    let V::Arr(oldest) = &first[first.len() - 1] else { panic!() };
    let V::Int(base) = oldest[0] else { panic!() };
    c.cmd(&["CLIENT", "SETNAME", "slowpoke"]);
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["GET"]); // refused: not logged
    let many: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    let mut rpush = vec!["RPUSH", "list"];
    rpush.extend(many.iter().map(String::as_str));
    c.cmd(&rpush);
    let big = "x".repeat(200);
    c.cmd(&["SET", "big", &big]);
    c.cmd(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "m", "1"]);
    c.cmd(&["INCR", "m"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]);
    c.cmd(&["AUTH", "secret"]);
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET", "-1"]), base));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET"]), base));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET", "2"]), base));
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    // A shorter log keeps the newest entries.
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]);
    c.cmd(&["PING"]);
    c.cmd(&["ECHO", "hi"]);
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    seen.push(normalize_slowlog(resp(c, &["SLOWLOG", "GET"]), base));
    // RESET empties it (and is then logged itself).
    seen.push(resp(c, &["SLOWLOG", "RESET"]));
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "-2"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "x"]));
    seen.push(resp(c, &["SLOWLOG", "GET", "1", "2"]));
    seen.push(resp(c, &["SLOWLOG", "NOSUCH"]));
    seen.push(resp(c, &["SLOWLOG"]));
    // A negative threshold logs nothing.
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v2"]);
    seen.push(resp(c, &["SLOWLOG", "LEN"]));
    // (Redis lists parameters in no particular order.)
    let V::Arr(kv) = resp(c, &["CONFIG", "GET", "slowlog-*"]) else { panic!() };
    let mut pairs: Vec<V> = kv.chunks(2).map(|p| V::Arr(p.to_vec())).collect();
    pairs.sort_by_key(|p| format!("{p:?}"));
    seen.push(V::Arr(pairs));
    seen
}

/// A blocking pop is logged once it is served (with its own time, not its
/// wait), after the transaction that served it, as redis-server logs it.
fn slowlog_of_a_served_pop(port: u16) -> V {
    let mut c = damselfly_tests::Raw::connect(port);
    let mut w = damselfly_tests::Raw::connect(port);
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    w.send_cmd(&[b"BLPOP", b"l", b"0"]);
    c.wait_blocked(1);
    for cmd in [&["MULTI"][..], &["LPUSH", "l", "foo"], &["SLOWLOG", "RESET"]] {
        c.cmd(cmd);
    }
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n:1\r\n+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*2\r\n$1\r\nl\r\n$3\r\nfoo\r\n");
    // A pop that times out is logged too; neither counts its wait.
    w.send_cmd(&[b"BLPOP", b"l", b"0.3"]);
    assert_eq!(String::from_utf8_lossy(&w.read_reply()), "*-1\r\n");
    let V::Arr(entries) = resp(&mut c, &["SLOWLOG", "GET"]) else { panic!("SLOWLOG GET") };
    for e in &entries {
        let V::Arr(f) = e else { panic!("entry {e:?}") };
        assert!(matches!(f[2], V::Int(d) if d < 200_000), "a logged duration counts no wait: {f:?}");
    }
    normalize_slowlog(V::Arr(entries), 0)
}

#[test]
fn a_served_blocking_pop_is_logged_as_in_redis() {
    let ours = Server::start_with(&["--shards", "2"]);
    let redis = damselfly_tests::Redis::start();
    let (got, want) = (slowlog_of_a_served_pop(ours.port), slowlog_of_a_served_pop(redis.port));
    // Entry ids differ (each server's own count): compare the rest.
    let strip = |v: V| match v {
        V::Arr(es) => es
            .into_iter()
            .map(|e| {
                if let V::Arr(mut f) = e {
                    f[0] = V::Int(0);
                    V::Arr(f)
                } else {
                    e
                }
            })
            .collect::<Vec<_>>(),
        other => vec![other],
    };
    assert_eq!(strip(got), strip(want));
}

#[test]
fn slowlog_matches_redis() {
    let ours = Server::start_with(&["--shards", "3"]);
    let redis = damselfly_tests::Redis::start();
    let got = slowlog_session(&mut ours.raw());
    let want = slowlog_session(&mut redis.raw());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "step {i}");
    }
    assert_eq!(got.len(), want.len());
    // The shape, spelled out: argument truncation as Redis writes it.
    let V::Arr(all) = &got[0] else { panic!() };
    let argv = |i: usize| match &all[i] {
        V::Arr(f) => f[3].clone(),
        _ => panic!(),
    };
    let find = |name: &str| (0..all.len()).find(|&i| matches!(argv(i), V::Arr(a) if a[0] == V::Str(name.into()))).unwrap();
    let V::Arr(rp) = argv(find("RPUSH")) else { panic!() };
    assert_eq!(rp.len(), 32);
    assert_eq!(rp[31], V::Str("... (11 more arguments)".into()));
    let big = all.iter().find_map(|e| match e {
        V::Arr(f) => match &f[3] {
            V::Arr(a) if a.get(1) == Some(&V::Str("big".into())) => Some(a[2].clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(big, Some(V::Str(format!("{}... (72 more bytes)", "x".repeat(128)))));
    assert!(!ours.raw().cmd(&["SLOWLOG", "HELP"]).is_empty());
}

/// INFO commandstats as (name, calls, rejected_calls, failed_calls),
/// sorted; `usec` and `usec_per_call` are only checked to be there.
fn commandstats(c: &mut damselfly_tests::Raw) -> Vec<(String, u64, u64, u64)> {
    let V::Str(text) = resp(c, &["INFO", "commandstats"]) else { panic!() };
    let mut v: Vec<(String, u64, u64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .map(|l| {
            let (name, fields) = l.split_once(':').unwrap();
            let kv: Vec<(&str, &str)> = fields.split(',').map(|f| f.split_once('=').unwrap()).collect();
            let keys: Vec<&str> = kv.iter().map(|p| p.0).collect();
            assert_eq!(keys, ["calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"], "{l}");
            assert!(kv[2].1.split_once('.').is_some_and(|(_, d)| d.len() == 2), "{l}");
            let n = |i: usize| kv[i].1.parse::<u64>().unwrap();
            (name.to_string(), n(0), n(3), n(4))
        })
        .collect();
    v.sort();
    v
}

fn stats_session(c: &mut damselfly_tests::Raw) -> Vec<String> {
    let mut seen = Vec::new();
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET"]); // arity: rejected
    c.cmd(&["SET", "s", "x"]);
    c.cmd(&["INCR", "s"]); // failed
    c.cmd(&["LPUSH", "s", "x"]); // WRONGTYPE
    c.cmd(&["NOSUCHCMD"]); // no command to count; an error reply
    c.cmd(&["CLIENT", "NOSUCH"]);
    c.cmd(&["CLIENT", "ID"]);
    c.cmd(&["MSET", "k1", "1", "k2", "2", "k3", "3"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "m"]);
    c.cmd(&["SET", "m2", "1"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "a"]);
    c.cmd(&["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "s"]);
    c.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "a"]);
    c.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "s"]);
    c.cmd(&["EVAL", "return {err='MINE custom'}", "0"]);
    seen.push(format!("{:?}", commandstats(c)));
    let V::Str(errors) = resp(c, &["INFO", "errorstats"]) else { panic!() };
    seen.push(errors);
    let V::Str(st) = resp(c, &["INFO", "stats"]) else { panic!() };
    seen.push(format!("total_error_replies:{}", field(&st, "total_error_replies")));
    // RESETSTAT zeroes it all (then counts itself).
    c.cmd(&["CONFIG", "RESETSTAT"]);
    seen.push(format!("{:?}", commandstats(c)));
    let V::Str(errors) = resp(c, &["INFO", "errorstats"]) else { panic!() };
    seen.push(errors);
    seen
}

#[test]
fn commandstats_and_errorstats_match_redis() {
    let ours = Server::start_with(&["--shards", "3"]);
    let redis = damselfly_tests::Redis::start();
    let got = stats_session(&mut ours.raw());
    let want = stats_session(&mut redis.raw());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "step {i}");
    }
    // Spelled out for the commands the task names.
    let s = &got[0];
    for want in [
        "(\"set\", 4, 0, 0)",       // SET a, SET s, SET m2 in MULTI, one from a script
        "(\"get\", 2, 1, 0)",       // GET a, one from a script; GET without a key refused
        "(\"incr\", 4, 0, 3)",      // INCR s fails, INCR m in MULTI, INCR s from two scripts fail
        "(\"client|id\", 1, 0, 0)", // a subcommand by its full name
    ] {
        assert!(s.contains(want), "{want} in {s}");
    }
    // Not in the default INFO, as in Redis; errorstats is.
    let info = ours.raw().cmd(&["INFO"]);
    assert!(!info.contains("# Commandstats") && info.contains("# Errorstats"), "{info}");
    assert!(ours.raw().cmd(&["INFO", "all"]).contains("cmdstat_info:calls="));
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
