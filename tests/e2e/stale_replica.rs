//! `replica-serve-stale-data no` against a real process, compared with
//! redis-server 7.0: a replica whose link is down refuses the commands not
//! flagged `stale` with MASTERDOWN — an EXEC whose queue holds one too,
//! discarding the transaction — and scripts unless they declare
//! `allow-stale`, whose calls of such commands then fail.

use damselfly_tests::{free_port, Raw, Redis, Server};

const MASTERDOWN: &str = "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";

/// Steps: which client, the command, the reply wanted. `PRIMARY` stands
/// for a port nothing listens on (the link never comes up).
const STEPS: &[(char, &[&str], &str)] = &[
    ('a', &["SET", "xx", "1"], "+OK\r\n"),
    ('a', &["CONFIG", "SET", "replica-serve-stale-data", "no"], "+OK\r\n"),
    ('a', &["CONFIG", "GET", "slave-serve-stale-data"], "*2\r\n$22\r\nslave-serve-stale-data\r\n$2\r\nno\r\n"),
    // Queued while a primary, refused once stale: the transaction goes.
    ('a', &["MULTI"], "+OK\r\n"),
    ('a', &["GET", "xx"], "+QUEUED\r\n"),
    ('b', &["REPLICAOF", "127.0.0.1", "PRIMARY"], "+OK\r\n"),
    (
        'a',
        &["EXEC"],
        "-EXECABORT Transaction discarded because of: MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    ),
    ('a', &["EXEC"], "-ERR EXEC without MULTI\r\n"),
    ('a', &["GET", "xx"], MASTERDOWN),
    ('a', &["PING"], MASTERDOWN),
    ('a', &["ECHO", "hi"], "$2\r\nhi\r\n"),
    ('a', &["DBSIZE"], MASTERDOWN),
    ('a', &["MULTI"], "+OK\r\n"),
    ('a', &["ECHO", "hi"], "+QUEUED\r\n"),
    ('a', &["EXEC"], "*1\r\n$2\r\nhi\r\n"),
    ('a', &["EVAL", "return 1", "0"], MASTERDOWN),
    ('a', &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"], MASTERDOWN),
    ('a', &["EVAL", "#!lua flags=allow-stale,no-writes\nreturn redis.call('echo', 'x')", "0"], "$1\r\nx\r\n"),
    (
        'a',
        &["EVAL", "#!lua flags=allow-stale,no-writes\nreturn redis.pcall('get', 'xx')['err']", "0"],
        "$50\r\nERR Can not execute the command on a stale replica\r\n",
    ),
    // With stale data allowed again, reads go on.
    ('a', &["CONFIG", "SET", "replica-serve-stale-data", "yes"], "+OK\r\n"),
    ('a', &["GET", "xx"], "$1\r\n1\r\n"),
    ('a', &["CONFIG", "SET", "replica-serve-stale-data", "no"], "+OK\r\n"),
    // A primary is never stale.
    ('b', &["REPLICAOF", "NO", "ONE"], "+OK\r\n"),
    ('a', &["GET", "xx"], "$1\r\n1\r\n"),
];

fn run(port: u16) -> Vec<String> {
    let (mut a, mut b) = (Raw::connect(port), Raw::connect(port));
    let primary = free_port().to_string();
    STEPS
        .iter()
        .map(|(who, cmd, _)| {
            let cmd: Vec<&str> = cmd.iter().map(|&c| if c == "PRIMARY" { primary.as_str() } else { c }).collect();
            if *who == 'a' {
                a.cmd(&cmd)
            } else {
                b.cmd(&cmd)
            }
        })
        .collect()
}

#[test]
fn a_stale_replica_refuses_what_redis_refuses() {
    let want: Vec<String> = STEPS.iter().map(|s| s.2.to_string()).collect();
    let r = Redis::start();
    assert_eq!(run(r.port), want, "redis-server");
    let s = Server::start_with(&["--shards", "2"]);
    assert_eq!(run(s.port), want);
}
