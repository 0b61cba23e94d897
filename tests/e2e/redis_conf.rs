//! Damselfly started on the redis.conf that Debian's redis-server package
//! installs (/etc/redis/redis.conf: Redis 7.0's stock file), with only the
//! port, the directory, the log file and the pid file pointed elsewhere.
//! It starts, daemonized as the file says, and the process-level settings
//! do what they say: the pid file, the listen backlog, the process title,
//! transparent huge pages off, the log level (also at run time) and the
//! OOM score.

use std::process::Command;
use std::time::Duration;

use damselfly_tests::cluster::TempDir;
use damselfly_tests::{binary, free_port, wait_for, Raw};

const STOCK: &str = "/etc/redis/redis.conf";

/// Stops the daemon (not a child of the test) however the test ends.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::path::Path::new(&format!("/proc/{}", self.0)).exists() {
            let _ = Command::new("kill").arg("-9").arg(self.0.to_string()).status();
        }
    }
}

fn get(c: &mut Raw, name: &str) -> String {
    let r = c.cmd(&["CONFIG", "GET", name]);
    // *2 $len name $len value
    r.split("\r\n").nth(4).unwrap_or_else(|| panic!("CONFIG GET {name}: {r}")).to_string()
}

fn proc_file(pid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default()
}

#[test]
fn starts_daemonized_on_the_stock_redis_conf_and_honours_it() {
    let stock = std::fs::read_to_string(STOCK)
        .unwrap_or_else(|e| panic!("{STOCK} (from Debian's redis-server package, which scripts/test installs) must exist: {e}"));
    let dir = TempDir::new("stock-conf");
    let port = free_port();
    let (log, pidfile) = (format!("{}/server.log", dir.path()), format!("{}/server.pid", dir.path()));
    let text: Vec<String> = stock
        .lines()
        .map(|l| match l.split_whitespace().next().unwrap_or("") {
            "port" => format!("port {port}"),
            "dir" => format!("dir {}", dir.path()),
            "logfile" => format!("logfile {log}"),
            "pidfile" => format!("pidfile {pidfile}"),
            _ => l.to_string(),
        })
        .collect();
    assert!(text.iter().any(|l| l == "daemonize yes"), "the stock file daemonizes");
    let conf = format!("{}/redis.conf", dir.path());
    std::fs::write(&conf, text.join("\n")).unwrap();

    // The command returns once the daemon is detached.
    let out = Command::new(binary()).arg(&conf).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid: u32 = wait_for("the pid file", || std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok());
    let _daemon = Daemon(pid);
    let mut c = wait_for("the server", || Raw::try_connect(port));
    assert!(c.cmd(&["INFO", "server"]).contains(&format!("process_id:{pid}\r\n")));

    for (name, value) in [
        ("daemonize", "yes"),
        ("loglevel", "notice"),
        ("tcp-backlog", "511"),
        ("disable-thp", "yes"),
        ("set-proc-title", "yes"),
        ("oom-score-adj", "no"),
        ("oom-score-adj-values", "0 200 800"),
        ("jemalloc-bg-thread", "yes"),
        ("auto-aof-rewrite-min-size", "67108864"),
        ("replica-priority", "100"),
    ] {
        assert_eq!(get(&mut c, name), value, "{name}");
    }
    // The listening socket's backlog (ss shows it as Send-Q).
    let ss = Command::new("ss").args(["-Hltn", &format!("sport = :{port}")]).output().expect("ss (iproute2) must be installed");
    let ss = String::from_utf8_lossy(&ss.stdout).to_string();
    assert!(ss.lines().any(|l| l.split_whitespace().nth(2) == Some("511")), "{ss}");
    // The title, from the stock template "{title} {listen-addr} {server-mode}".
    let title = proc_file(pid, "cmdline").replace('\0', " ");
    assert!(title.trim_end().ends_with(&format!("damselfly 127.0.0.1:{port}")), "{title:?}");
    assert!(proc_file(pid, "status").contains("THP_enabled:\t0"));

    // The log level: SAVE logs at notice, not at warning.
    let saved = || std::fs::read_to_string(&log).unwrap_or_default().matches("DB saved on disk").count();
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    let before = wait_for("the save in the log", || Some(saved()).filter(|&n| n == 1));
    assert_eq!(c.cmd(&["CONFIG", "SET", "loglevel", "warning"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "loglevel", "notice"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    wait_for("the third save in the log", || Some(saved()).filter(|&n| n == before + 1));

    // The OOM score, as Redis sets it: absolute values, or added to the
    // score the process started with.
    let base: i32 = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap().trim().parse().unwrap();
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj-values", "300 400 800"]), "+OK\r\n");
    assert_eq!(proc_file(pid, "oom_score_adj").trim(), base.to_string(), "`no` leaves it");
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj", "absolute"]), "+OK\r\n");
    assert_eq!(proc_file(pid, "oom_score_adj").trim(), "300");
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj", "relative"]), "+OK\r\n");
    assert_eq!(proc_file(pid, "oom_score_adj").trim(), (base + 300).clamp(-1000, 1000).to_string());
    assert!(c.cmd(&["CONFIG", "SET", "daemonize", "no"]).starts_with("-ERR CONFIG SET failed"));

    // SHUTDOWN removes the pid file.
    c.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    wait_for("the daemon to exit", || (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()));
    assert!(!std::path::Path::new(&pidfile).exists(), "pid file removed");
}

/// Kills a started server however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `include` applies another file, `replicaof` in a file starts a replica,
/// and `supervised systemd` sends READY=1 to systemd's notification socket
/// once the data is loaded.
#[test]
fn include_replicaof_and_systemd_readiness_from_a_config_file() {
    let primary = damselfly_tests::Server::start();
    let mut p = Raw::connect(primary.port);
    assert_eq!(p.cmd(&["SET", "from-primary", "1"]), "+OK\r\n");
    let dir = TempDir::new("conf-include");
    let extra = format!("{}/extra.conf", dir.path());
    std::fs::write(&extra, "maxclients 123\n").unwrap();
    let conf = format!("{}/redis.conf", dir.path());
    std::fs::write(&conf, format!("include {extra}\nsupervised systemd\nreplicaof 127.0.0.1 {}\n", primary.port)).unwrap();
    let notify_path = format!("{}/notify.sock", dir.path());
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let port = free_port();
    let child = Command::new(binary())
        .args([conf.as_str(), "--port", &port.to_string(), "--dir", dir.path()])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = Child(child);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the server");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    let mut c = wait_for("the server", || Raw::try_connect(port));
    assert_eq!(get(&mut c, "maxclients"), "123");
    assert_eq!(get(&mut c, "supervised"), "systemd");
    assert!(c.cmd(&["ROLE"]).contains("slave"));
    wait_for("the replicated key", || (c.cmd(&["GET", "from-primary"]) == "$1\r\n1\r\n").then_some(()));
    // A file that includes itself stops at a bound, with an error.
    std::fs::write(&extra, format!("include {extra}\n")).unwrap();
    let out = Command::new(binary()).arg(&extra).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("include nested deeper"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `rename-command` gives a command another name or (`""`) takes it away
/// from clients, as Redis's; what the node replays from its own journal
/// keeps the declared names, so a renamed SET still loads after a restart.
#[test]
fn rename_command_renames_and_removes_commands() {
    let dir = TempDir::new("conf-rename");
    let conf = format!("{}/redis.conf", dir.path());
    std::fs::write(&conf, "rename-command FLUSHALL \"\"\nrename-command CONFIG myconfig\nrename-command SET put\nappendonly yes\n")
        .unwrap();
    let port = free_port();
    let start = || {
        let child = Command::new(binary())
            .args([conf.as_str(), "--port", &port.to_string(), "--dir", dir.path(), "--save", ""])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (Child(child), wait_for("the server", || Raw::try_connect(port)))
    };
    let (server, mut c) = start();
    assert!(c.cmd(&["FLUSHALL"]).starts_with("-ERR unknown command 'FLUSHALL'"));
    assert!(c.cmd(&["CONFIG", "GET", "maxmemory"]).starts_with("-ERR unknown command 'CONFIG'"));
    assert_eq!(c.cmd(&["MYCONFIG", "GET", "appendonly"]), "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
    assert!(c.cmd(&["SET", "k", "v"]).starts_with("-ERR unknown command 'SET'"));
    assert_eq!(c.cmd(&["PUT", "k", "v"]), "+OK\r\n");
    wait_for("the journal to load", || (!c.cmd(&["INFO", "persistence"]).contains("loading:1")).then_some(()));
    c.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    let mut server = server;
    wait_for("the server to exit", || server.0.try_wait().ok().flatten().map(|_| ()));
    let (_server, mut c) = start();
    wait_for("the key from the journal", || (c.cmd(&["GET", "k"]) == "$1\r\nv\r\n").then_some(()));
    // A command that does not exist cannot be renamed.
    std::fs::write(&conf, "rename-command NOSUCH other\n").unwrap();
    let out = Command::new(binary()).arg(&conf).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such command in rename-command"), "{}", String::from_utf8_lossy(&out.stderr));
}
