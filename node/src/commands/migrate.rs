//! MIGRATE, and RESTORE-ASKING (the RESTORE it sends in cluster mode):
//! moves keys to another server that speaks Redis's protocol
//! (Redis or Damselfly), as Redis does it. The keys' values are read as
//! DUMP payloads (`store::dump`) with their TTLs while their shards are
//! held; the target gets `AUTH`, `SELECT db` and one `RESTORE key ttl
//! payload [REPLACE]` per key (`RESTORE-ASKING` in cluster mode), pipelined;
//! every key the target accepted is then deleted here (unless COPY) before
//! the shards are let go, so no client sees a key both migrated and still
//! here, or changed in between.
//!
//! The exchange with the target uses blocking sockets with Redis's
//! per-operation timeout (connect, each write, each reply line), on
//! tokio's blocking pool for a client and in place inside a script (which
//! holds every shard and runs its commands to their end at once, as
//! Redis's MIGRATE blocks the server). Each MIGRATE opens its own
//! connection: Redis's 10-second connection cache is not kept, so SELECT
//! is sent every time.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::notify::{self, Notify};
use super::{cmd, flag::*, CommandSpec, Coord, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::store::dump;
use crate::util::{eq_ic, now_ms, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "migrate",
        -6,
        WRITE,
        (3, 3, 1),
        &["keyspace", "dangerous"],
        "generic",
        "Atomically transfers a key from one Redis instance to another.",
        Exec::Coord(handler!(async |cx, a| migrate(cx, a))),
    )
    .notify(Notify::Each(ks::GENERIC, "del"))
    .keys(&[
        KeyRule::range(3, 3, 1).with_flags(&["RW", "access", "delete"]),
        KeyRule::after_keyword("KEYS", -2, 0).with_flags(&["RW", "access", "delete", "incomplete"]),
    ])
    .find_keys(key_span)
    .tips(&["nondeterministic_output"]),
    // What MIGRATE sends in cluster mode (Redis's lets an importing slot
    // take it without ASKING); here it is RESTORE.
    cmd(
        "restore-asking",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        &["keyspace", "dangerous"],
        "server",
        "An internal command for migrating keys in a cluster.",
        Exec::Shard(super::keys::restore),
    )
    .notify(Notify::Pick(notify::restore))
    .key_flags(&["OW", "update"]),
];

/// Where MIGRATE's keys are, as Redis's `migrateGetKeys` finds them: the
/// key argument, or everything after the KEYS option (skipping the values
/// of AUTH and AUTH2); none when KEYS comes with a non-empty key argument.
fn key_span(args: &[Bytes]) -> Option<(usize, usize)> {
    let (mut first, mut last) = (3, 3);
    let mut i = 6;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "KEYS") {
            if !args.get(3)?.is_empty() {
                return None;
            }
            (first, last) = (i + 1, args.len().checked_sub(1)?);
            break;
        }
        i += if eq_ic(a, "AUTH") {
            2
        } else if eq_ic(a, "AUTH2") {
            3
        } else {
            1
        };
    }
    (last < args.len() && first <= last).then_some((first, last))
}

/// Redis reads each reply line into a buffer of this size (the rest of a
/// longer line is dropped here).
const LINE_MAX: usize = 1023;
/// Requests are written in chunks of this size, each within the timeout.
const WRITE_CHUNK: usize = 64 * 1024;

/// What MIGRATE's arguments ask for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    copy: bool,
    replace: bool,
    /// AUTH2's user name (with AUTH's or AUTH2's password).
    user: Option<Bytes>,
    password: Option<Bytes>,
    /// Index of the first key argument, and how many there are.
    first_key: usize,
    num_keys: usize,
    timeout: Duration,
    db: i64,
}

/// Parses the arguments in Redis's order: the options first, then the
/// timeout, then the database.
fn parse(args: &[Bytes]) -> CmdResult<Request> {
    let mut r =
        Request { copy: false, replace: false, user: None, password: None, first_key: 3, num_keys: 1, timeout: Duration::ZERO, db: 0 };
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if eq_ic(a, "COPY") {
            r.copy = true;
        } else if eq_ic(a, "REPLACE") {
            r.replace = true;
        } else if eq_ic(a, "AUTH") {
            if more < 1 {
                return Err(CmdError::Syntax);
            }
            r.password = Some(args[j + 1].clone());
            j += 1;
        } else if eq_ic(a, "AUTH2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            r.user = Some(args[j + 1].clone());
            r.password = Some(args[j + 2].clone());
            j += 2;
        } else if eq_ic(a, "KEYS") {
            if !args[3].is_empty() {
                return Err(CmdError::err("When using MIGRATE KEYS option, the key argument must be set to the empty string"));
            }
            r.first_key = j + 1;
            r.num_keys = more;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = parse_i64(&args[5])?;
    r.db = parse_i64(&args[4])?;
    r.timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    Ok(r)
}

/// A key to send: its position among the keys, name, payload and TTL in
/// milliseconds (0: none).
struct Item {
    at: usize,
    key: Bytes,
    payload: Vec<u8>,
    ttl: u64,
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]]
pub async fn migrate(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let req = parse(args)?;
    let keys = &args[req.first_key..req.first_key + req.num_keys];
    let db = cx.db();
    let mut shards: Vec<usize> = keys.iter().map(|k| cx.shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    cx.lock(&shards).await;
    let mut items = Vec::with_capacity(keys.len());
    for &s in &shards {
        let mine: Vec<(usize, Bytes)> = keys.iter().enumerate().filter(|(_, k)| cx.shard_of(k) == s).map(|(i, k)| (i, k.clone())).collect();
        items.extend(cx.run_on(s, move |sh| read_keys(sh.db(db), mine)).await);
    }
    if items.is_empty() {
        cx.out().simple("NOKEY");
        return Ok(());
    }
    items.sort_unstable_by_key(|it| it.at);

    let restore: &[u8] = if cx.engine().cluster.is_some() { b"RESTORE-ASKING" } else { b"RESTORE" };
    let wire = request(&req, restore, &items);
    let target = Target { host: args[1].clone(), port: args[2].clone(), timeout: req.timeout };
    let (auth, nkeys) = (req.password.is_some(), items.len());
    let outcome = if cx.session().is_some() {
        match tokio::task::spawn_blocking(move || target.exchange(&wire, auth, nkeys)).await {
            Ok(o) => o,
            Err(_) => Outcome::Failed(Stage::Read),
        }
    } else {
        target.exchange(&wire, auth, nkeys)
    };

    let (accepted, result) = judge(outcome);
    if !req.copy && !accepted.is_empty() {
        let moved: Vec<Bytes> = accepted.iter().map(|&i| items[i].key.clone()).collect();
        for &s in &shards {
            let mine: Vec<Bytes> = moved.iter().filter(|k| cx.shard_of(k) == s).cloned().collect();
            if !mine.is_empty() {
                cx.run_on(s, move |sh| {
                    let (d, now) = (sh.db(db), now_ms());
                    for k in &mine {
                        d.remove(k, now);
                    }
                })
                .await;
            }
        }
    }
    result?;
    cx.out().ok();
    Ok(())
}

/// Reads the live keys among `keys` (with their positions) as payloads
/// with their remaining TTLs (at least 1 ms, as Redis sends them).
fn read_keys(d: &mut crate::store::Db, keys: Vec<(usize, Bytes)>) -> Vec<Item> {
    let now = now_ms();
    keys.into_iter()
        .filter_map(|(at, key)| {
            let idx = d.lookup(&key, now)?;
            let ttl = d.expire_of(idx).map_or(0, |t| t.saturating_sub(now).max(1));
            Some(Item { at, payload: dump::encode(&d.entry(idx).value), key, ttl })
        })
        .collect()
}

/// The pipelined commands for the target.
fn request(req: &Request, restore: &[u8], items: &[Item]) -> Vec<u8> {
    let mut w = Vec::with_capacity(items.iter().map(|it| it.payload.len() + it.key.len() + 64).sum::<usize>() + 64);
    if let Some(pw) = &req.password {
        match &req.user {
            Some(user) => command(&mut w, &[b"AUTH", user, pw]),
            None => command(&mut w, &[b"AUTH", pw]),
        }
    }
    command(&mut w, &[b"SELECT", req.db.to_string().as_bytes()]);
    for it in items {
        let ttl = it.ttl.to_string();
        if req.replace {
            command(&mut w, &[restore, &it.key, ttl.as_bytes(), &it.payload, b"REPLACE"]);
        } else {
            command(&mut w, &[restore, &it.key, ttl.as_bytes(), &it.payload]);
        }
    }
    w
}

/// Appends one command as a RESP array of bulk strings.
fn command(w: &mut Vec<u8>, parts: &[&[u8]]) {
    w.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        w.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        w.extend_from_slice(p);
        w.extend_from_slice(b"\r\n");
    }
}

/// Where the exchange with the target failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connect,
    Write,
    Read,
}

/// How the exchange with the target went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing usable came back.
    Failed(Stage),
    /// The AUTH and SELECT replies came back; `keys` holds the RESTORE
    /// reply lines read, in order (fewer than sent when reading failed).
    Replied { auth: Option<Vec<u8>>, select: Vec<u8>, keys: Vec<Vec<u8>>, sent: usize },
}

/// Which keys the target accepted (by position among those sent: every
/// one whose RESTORE succeeded, when AUTH and SELECT did), and the reply:
/// the first error the target gave (the AUTH's, the SELECT's, then a
/// RESTORE's), reported once a RESTORE reply has come back, else an I/O
/// error when replies are missing.
fn judge(outcome: Outcome) -> (Vec<usize>, CmdResult) {
    let io = |stage| {
        CmdError::Other(match stage {
            Stage::Connect => "IOERR error or timeout connecting to the client".into(),
            Stage::Write => "IOERR error or timeout writing to target instance".into(),
            Stage::Read => "IOERR error or timeout reading to target instance".into(),
        })
    };
    let (auth, select, keys, sent) = match outcome {
        Outcome::Failed(stage) => return (Vec::new(), Err(io(stage))),
        Outcome::Replied { auth, select, keys, sent } => (auth, select, keys, sent),
    };
    let is_err = |l: &[u8]| l.first() == Some(&b'-');
    let setup_err = auth.filter(|l| is_err(l)).or_else(|| Some(select).filter(|l| is_err(l)));
    let accepted = match setup_err {
        Some(_) => Vec::new(),
        None => (0..keys.len()).filter(|&i| !is_err(&keys[i])).collect(),
    };
    let target_err = if keys.is_empty() { None } else { setup_err.or_else(|| keys.iter().find(|l| is_err(l)).cloned()) };
    let result = match target_err {
        Some(line) => {
            let text = String::from_utf8_lossy(&line[1..]).replace(['\r', '\n'], " ");
            Err(CmdError::err(format!("Target instance replied with error: {text}")))
        }
        None if keys.len() < sent => Err(io(Stage::Read)),
        None => Ok(()),
    };
    (accepted, result)
}

/// The server to migrate to.
struct Target {
    host: Bytes,
    port: Bytes,
    timeout: Duration,
}

impl Target {
    /// Connects, sends `wire` and reads the replies: AUTH's (when `auth`),
    /// SELECT's, and one per key.
    fn exchange(&self, wire: &[u8], auth: bool, nkeys: usize) -> Outcome {
        let Some(sock) = self.connect() else { return Outcome::Failed(Stage::Connect) };
        let mut lines = Lines { sock, buf: Vec::new(), timeout: self.timeout };
        if lines.write(wire).is_err() {
            return Outcome::Failed(Stage::Write);
        }
        let auth = match auth {
            true => match lines.read_line() {
                Ok(l) => Some(l),
                Err(_) => return Outcome::Failed(Stage::Read),
            },
            false => None,
        };
        let Ok(select) = lines.read_line() else { return Outcome::Failed(Stage::Read) };
        let mut keys = Vec::with_capacity(nkeys);
        for _ in 0..nkeys {
            match lines.read_line() {
                Ok(l) => keys.push(l),
                Err(_) => break,
            }
        }
        Outcome::Replied { auth, select, keys, sent: nkeys }
    }

    /// A connection to the target within the timeout (each of its
    /// addresses tried in turn), or `None`.
    fn connect(&self) -> Option<TcpStream> {
        let host = std::str::from_utf8(&self.host).ok()?;
        let port: u16 = std::str::from_utf8(&self.port).ok()?.parse().ok()?;
        let deadline = Deadline::after(self.timeout);
        for addr in (host, port).to_socket_addrs().ok()? {
            let left = deadline.left().ok()?;
            if let Ok(s) = TcpStream::connect_timeout(&addr, left) {
                let _ = s.set_nodelay(true);
                return Some(s);
            }
        }
        None
    }
}

/// Reply lines from the target, each read within the timeout.
struct Lines {
    sock: TcpStream,
    /// Bytes read past the last line.
    buf: Vec<u8>,
    timeout: Duration,
}

/// When an operation on the target must be done by.
struct Deadline {
    /// `None`: the timeout reaches past what the clock can tell, so it
    /// never runs out.
    at: Option<Instant>,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline { at: Instant::now().checked_add(timeout), timeout }
    }

    /// The time left (never zero), or a timeout error once it has run out.
    fn left(&self) -> std::io::Result<Duration> {
        let left = match self.at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => self.timeout,
        };
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Lines {
    /// Writes `data` in chunks, each within the timeout.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(WRITE_CHUNK) {
            let deadline = Deadline::after(self.timeout);
            let mut rest = chunk;
            while !rest.is_empty() {
                let left = deadline.left()?;
                self.sock.set_write_timeout(Some(left))?;
                match self.sock.write(rest)? {
                    0 => return Err(std::io::ErrorKind::WriteZero.into()),
                    n => rest = &rest[n..],
                }
            }
        }
        Ok(())
    }

    /// The next line without its CR LF (its first `LINE_MAX` bytes),
    /// within the timeout.
    fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        let deadline = Deadline::after(self.timeout);
        let mut line = Vec::new();
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let take = nl.min(LINE_MAX.saturating_sub(line.len()));
                line.extend_from_slice(&self.buf[..take]);
                self.buf.drain(..=nl);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            let take = self.buf.len().min(LINE_MAX.saturating_sub(line.len()));
            line.extend_from_slice(&self.buf[..take]);
            self.buf.clear();
            let left = deadline.left()?;
            self.sock.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn parses_as_redis() {
        let r = parse(&args(&["migrate", "h", "1", "k", "3", "0", "copy", "REPLACE", "auth2", "u", "p"])).unwrap();
        assert!(r.copy && r.replace);
        assert_eq!((r.user.as_deref(), r.password.as_deref()), (Some(&b"u"[..]), Some(&b"p"[..])));
        assert_eq!((r.first_key, r.num_keys, r.db, r.timeout), (3, 1, 3, Duration::from_millis(1000)));
        let r = parse(&args(&["migrate", "h", "1", "", "0", "50", "AUTH", "keys", "KEYS", "a", "b"])).unwrap();
        assert_eq!(r.password.as_deref(), Some(&b"keys"[..]));
        assert_eq!((r.first_key, r.num_keys, r.timeout), (9, 2, Duration::from_millis(50)));
        let err = |a: &[&str]| parse(&args(a)).unwrap_err().to_string();
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "5", "nope"]), "ERR syntax error");
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "5", "AUTH"]), "ERR syntax error");
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "5", "AUTH2", "u"]), "ERR syntax error");
        assert_eq!(
            err(&["migrate", "h", "1", "k", "0", "5", "KEYS", "a"]),
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
        );
        // Options first, then the timeout, then the database.
        assert_eq!(err(&["migrate", "h", "1", "k", "x", "y", "nope"]), "ERR syntax error");
        assert_eq!(err(&["migrate", "h", "1", "k", "x", "y"]), "ERR value is not an integer or out of range");
    }

    #[test]
    fn keys_found_as_redis() {
        let keys = |a: &[&str]| super::super::lookup(b"migrate").unwrap().key_indices(&args(a)).collect::<Vec<_>>();
        assert_eq!(keys(&["migrate", "h", "1", "k", "0", "5"]), vec![3]);
        assert_eq!(keys(&["migrate", "h", "1", "k", "0", "5", "COPY", "AUTH", "keys"]), vec![3]);
        assert_eq!(keys(&["migrate", "h", "1", "", "0", "5", "AUTH2", "u", "KEYS", "KEYS", "a", "b"]), vec![10, 11]);
        assert_eq!(keys(&["migrate", "h", "1", "", "0", "5", "REPLACE", "KEYS", "a", "KEYS"]), vec![8, 9]);
        assert_eq!(keys(&["migrate", "h", "1", "", "0", "5", "KEYS"]), Vec::<usize>::new());
        assert_eq!(keys(&["migrate", "h", "1", "k", "0", "5", "KEYS", "a"]), Vec::<usize>::new());
    }

    #[test]
    fn requests_are_pipelined_resp() {
        let req = parse(&args(&["migrate", "h", "1", "k", "2", "0", "REPLACE", "AUTH", "pw"])).unwrap();
        let items = [Item { at: 0, key: Bytes::from_static(b"k"), payload: b"PL".to_vec(), ttl: 5 }];
        let w = request(&req, b"RESTORE", &items);
        assert_eq!(
            w,
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*5\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n5\r\n$2\r\nPL\r\n$7\r\nREPLACE\r\n"
        );
    }

    fn replied(auth: Option<&str>, select: &str, keys: &[&str], sent: usize) -> Outcome {
        let v = |s: &str| s.as_bytes().to_vec();
        Outcome::Replied { auth: auth.map(v), select: v(select), keys: keys.iter().map(|s| v(s)).collect(), sent }
    }

    #[test]
    fn judges_replies_as_redis() {
        let msg = |r: CmdResult| r.unwrap_err().to_string();
        assert_eq!(judge(replied(None, "+OK", &["+OK", "+OK"], 2)), (vec![0, 1], Ok(())));
        // A refused key stays; the others moved; the first error is told.
        let (n, r) = judge(replied(None, "+OK", &["-BUSYKEY Target key name already exists.", "+OK", "-ERR x"], 3));
        assert_eq!((n, msg(r).as_str()), (vec![1], "ERR Target instance replied with error: BUSYKEY Target key name already exists."));
        let (n, r) = judge(replied(Some("-WRONGPASS bad"), "+OK", &["-NOAUTH x"], 1));
        assert_eq!((n, msg(r).as_str()), (vec![], "ERR Target instance replied with error: WRONGPASS bad"));
        let (n, r) = judge(replied(None, "-ERR DB index is out of range", &["+OK"], 1));
        assert_eq!((n, msg(r).as_str()), (vec![], "ERR Target instance replied with error: ERR DB index is out of range"));
        let (n, r) = judge(replied(None, "+OK", &["+OK"], 2));
        assert_eq!((n, msg(r).as_str()), (vec![0], "IOERR error or timeout reading to target instance"));
        // An AUTH error with no RESTORE reply read is an I/O error.
        let (n, r) = judge(replied(Some("-WRONGPASS bad"), "+OK", &[], 1));
        assert_eq!((n, msg(r).as_str()), (vec![], "IOERR error or timeout reading to target instance"));
        let (n, r) = judge(Outcome::Failed(Stage::Connect));
        assert_eq!((n, msg(r).as_str()), (vec![], "IOERR error or timeout connecting to the client"));
    }

    #[test]
    fn deadlines_never_overflow() {
        let far = Deadline::after(Duration::from_millis(i64::MAX as u64));
        assert!(far.left().is_ok_and(|d| d > Duration::from_secs(1 << 40)));
        let now = Deadline { at: Some(Instant::now()), timeout: Duration::from_millis(1) };
        assert_eq!(now.left().map_err(|e| e.kind()), Err(std::io::ErrorKind::TimedOut));
        let target =
            Target { host: Bytes::from_static(b"127.0.0.1"), port: Bytes::from_static(b"99999"), timeout: Duration::from_millis(10) };
        assert!(target.connect().is_none());
    }
}
