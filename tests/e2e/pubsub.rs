//! Pub/sub against a real server: exact replies and messages in RESP2 and
//! RESP3 (compared with redis-server 7 when they were written), patterns,
//! the subscribed-mode restrictions, and a redis-crate subscriber.

use damselfly_tests::Server;

#[test]
fn messages_and_replies_are_exact() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut sub = s.raw();
    let mut publ = s.raw();
    assert_eq!(sub.cmd(&["SUBSCRIBE", "a", "b"]), "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "n*"]), "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n");
    assert_eq!(
        sub.cmd(&["GET", "x"]),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(sub.cmd(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "a", "hello"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "news", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "zzz", "x"]), ":0\r\n");
    assert_eq!(publ.cmd(&["PUBSUB", "NUMSUB", "a", "zz"]), "*4\r\n$1\r\na\r\n:1\r\n$2\r\nzz\r\n:0\r\n");
    assert_eq!(publ.cmd(&["PUBSUB", "NUMPAT"]), ":1\r\n");
    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "a"]), "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n");
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n");
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n");
    assert_eq!(sub.cmd(&["GET", "x"]), "$-1\r\n");
    // RESP3: pushes, and other commands stay allowed.
    let mut r3 = s.raw();
    assert!(r3.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(r3.cmd(&["SUBSCRIBE", "c"]), ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    assert_eq!(r3.cmd(&["GET", "x"]), "_\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "c", "m3"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&r3.read_reply()), ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nm3\r\n");
    // A closed subscriber is forgotten.
    drop(r3);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(publ.cmd(&["PUBLISH", "c", "m4"]), ":0\r\n");
}

#[test]
fn redis_crate_subscriber_receives_in_order() {
    let s = Server::start();
    let mut c = s.sync_conn();
    let mut p = s.sync_conn();
    let mut ps = c.as_pubsub();
    ps.subscribe("orders").expect("subscribe");
    for i in 0..100 {
        let n: i64 = redis::cmd("PUBLISH").arg("orders").arg(i).query(&mut p).expect("publish");
        assert_eq!(n, 1);
    }
    for i in 0..100 {
        let m = ps.get_message().expect("message");
        assert_eq!(m.get_channel_name(), "orders");
        assert_eq!(m.get_payload::<i64>().expect("payload"), i);
    }
}

/// Sharded pub/sub, the same exchange with damselfly (two shards) and with
/// redis-server 7.0: SSUBSCRIBE / SUNSUBSCRIBE replies count shard channels
/// only, `smessage` deliveries, SPUBLISH counts, PUBSUB SHARDCHANNELS and
/// SHARDNUMSUB, subscribed mode lasting while any subscription is left,
/// and RESP3 pushes.
fn sharded_exchange(port: u16, who: &str) {
    let mut sub = damselfly_tests::Raw::connect(port);
    let mut publ = damselfly_tests::Raw::connect(port);
    let next = |c: &mut damselfly_tests::Raw| String::from_utf8_lossy(&c.read_reply()).into_owned();
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "a", "b", "a"]), "*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n", "{who}");
    assert_eq!(next(&mut sub), "*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:2\r\n", "{who}");
    assert_eq!(next(&mut sub), "*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:2\r\n", "{who}");
    assert_eq!(sub.cmd(&["SUBSCRIBE", "c"]), "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", "{who}");
    assert_eq!(
        sub.cmd(&["GET", "x"]),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
        "{who}"
    );
    let list = publ.cmd(&["CLIENT", "LIST"]);
    assert!(list.contains(" sub=1 psub=0 ssub=2 "), "{who}: {list}");
    assert_eq!(publ.cmd(&["SPUBLISH", "a", "hi"]), ":1\r\n", "{who}");
    assert_eq!(next(&mut sub), "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\nhi\r\n", "{who}");
    // Shard channels and plain channels are apart.
    assert_eq!(publ.cmd(&["PUBLISH", "a", "x"]), ":0\r\n", "{who}");
    assert_eq!(publ.cmd(&["SPUBLISH", "c", "x"]), ":0\r\n", "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDCHANNELS"]).len(), "*2\r\n$1\r\na\r\n$1\r\nb\r\n".len(), "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDCHANNELS", "b*"]), "*1\r\n$1\r\nb\r\n", "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDNUMSUB", "a", "c"]), "*4\r\n$1\r\na\r\n:1\r\n$1\r\nc\r\n:0\r\n", "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDNUMSUB"]), "*0\r\n", "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "NUMSUB", "a", "c"]), "*4\r\n$1\r\na\r\n:0\r\n$1\r\nc\r\n:1\r\n", "{who}");
    assert_eq!(
        publ.cmd(&["PUBSUB", "SHARDCHANNELS", "x", "y"]),
        "-ERR unknown subcommand or wrong number of arguments for 'SHARDCHANNELS'. Try PUBSUB HELP.\r\n",
        "{who}"
    );
    assert_eq!(sub.cmd(&["SUNSUBSCRIBE", "a", "zz"]), "*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:1\r\n", "{who}");
    assert_eq!(next(&mut sub), "*3\r\n$12\r\nsunsubscribe\r\n$2\r\nzz\r\n:1\r\n", "{who}");
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), "*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n", "{who}");
    // Still subscribed to `b`.
    assert!(sub.cmd(&["GET", "x"]).starts_with("-ERR Can't execute 'get'"), "{who}");
    assert_eq!(sub.cmd(&["SUNSUBSCRIBE"]), "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nb\r\n:0\r\n", "{who}");
    assert_eq!(sub.cmd(&["SUNSUBSCRIBE"]), "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n", "{who}");
    assert_eq!(sub.cmd(&["GET", "x"]), "$-1\r\n", "{who}");
    assert_eq!(publ.cmd(&["SPUBLISH", "b", "x"]), ":0\r\n", "{who}");
    // Shard channels are not keys to COMMAND GETKEYS.
    assert_eq!(publ.cmd(&["COMMAND", "GETKEYS", "SPUBLISH", "a", "m"]), "-ERR The command has no key arguments\r\n", "{who}");
    // Errors.
    assert_eq!(publ.cmd(&["SPUBLISH", "b"]), "-ERR wrong number of arguments for 'spublish' command\r\n", "{who}");
    assert_eq!(publ.cmd(&["SSUBSCRIBE"]), "-ERR wrong number of arguments for 'ssubscribe' command\r\n", "{who}");
    assert_eq!(publ.cmd(&["MULTI"]), "+OK\r\n", "{who}");
    assert_eq!(publ.cmd(&["SSUBSCRIBE", "x"]), "+QUEUED\r\n", "{who}");
    assert_eq!(publ.cmd(&["EXEC"]), "*1\r\n-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n", "{who}");
    let refused = publ.cmd(&["EVAL", "return redis.call('SSUBSCRIBE', 'x')", "0"]);
    assert!(refused.starts_with("-ERR This Redis command is not allowed from script"), "{who}: {refused}");
    assert_eq!(publ.cmd(&["EVAL", "return redis.call('SPUBLISH', 'x', 'y')", "0"]), ":0\r\n", "{who}");
    // RESP3: pushes; other commands stay allowed.
    let mut r3 = damselfly_tests::Raw::connect(port);
    assert!(r3.cmd(&["HELLO", "3"]).starts_with('%'), "{who}");
    assert_eq!(r3.cmd(&["SSUBSCRIBE", "d"]), ">3\r\n$10\r\nssubscribe\r\n$1\r\nd\r\n:1\r\n", "{who}");
    assert_eq!(r3.cmd(&["GET", "x"]), "_\r\n", "{who}");
    assert_eq!(r3.cmd(&["PUBSUB", "NUMSUB", "d"]), "*2\r\n$1\r\nd\r\n:0\r\n", "{who}");
    assert_eq!(r3.cmd(&["PUBSUB", "SHARDNUMSUB", "d"]), "*2\r\n$1\r\nd\r\n:1\r\n", "{who}");
    assert_eq!(publ.cmd(&["SPUBLISH", "d", "m"]), ":1\r\n", "{who}");
    assert_eq!(next(&mut r3), ">3\r\n$8\r\nsmessage\r\n$1\r\nd\r\n$1\r\nm\r\n", "{who}");
    assert_eq!(r3.cmd(&["RESET"]), "+RESET\r\n", "{who}");
    assert_eq!(publ.cmd(&["PUBSUB", "SHARDNUMSUB", "d"]), "*2\r\n$1\r\nd\r\n:0\r\n", "{who}");
}

#[test]
fn sharded_pubsub_matches_redis_server() {
    let s = Server::start_with(&["--shards", "2"]);
    sharded_exchange(s.port, "damselfly");
    let r = damselfly_tests::Redis::start();
    sharded_exchange(r.port, "redis-server");
}

/// In cluster mode a PUBLISH on any node reaches the subscribers of every
/// node, in the order it was published (Redis Cluster broadcasts it over
/// its bus); the count replied is the publishing node's own subscribers.
#[test]
fn cluster_publish_reaches_subscribers_on_every_node() {
    use damselfly_tests::cluster::RawAt;
    let (c, _) = damselfly_tests::cluster::Cluster::start(3);
    let mut subs: Vec<damselfly_tests::Raw> = c.ports.iter().map(|&p| Server::raw_at(p)).collect();
    for s in &mut subs {
        assert_eq!(s.cmd(&["SUBSCRIBE", "news"]), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    }
    let mut psub = Server::raw_at(c.ports[2]);
    assert_eq!(psub.cmd(&["PSUBSCRIBE", "n*"]), "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n");
    let mut publ = Server::raw_at(c.ports[1]);
    for i in 0..50 {
        assert_eq!(publ.cmd(&["PUBLISH", "news", &i.to_string()]), ":1\r\n", "only node 1's subscriber counts");
    }
    for (n, s) in subs.iter_mut().enumerate() {
        for i in 0..50 {
            let m = String::from_utf8_lossy(&s.read_reply()).into_owned();
            let want = format!("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n{i}\r\n", i.to_string().len());
            assert_eq!(m, want, "node {n}, message {i}");
        }
    }
    let m = String::from_utf8_lossy(&psub.read_reply()).into_owned();
    assert_eq!(m, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\n0\r\n");
    // Shard channels stay with their slot's node: SPUBLISH is not broadcast.
    let owner = damselfly_tests::cluster::slot_owner_port(c.ports[0], damselfly_tests::key_slot(b"{s}c")).expect("owner");
    let mut ssub = Server::raw_at(owner);
    assert_eq!(ssub.cmd(&["SSUBSCRIBE", "{s}c"]), "*3\r\n$10\r\nssubscribe\r\n$4\r\n{s}c\r\n:1\r\n");
    assert_eq!(Server::raw_at(owner).cmd(&["SPUBLISH", "{s}c", "x"]), ":1\r\n");
    assert_eq!(String::from_utf8_lossy(&ssub.read_reply()), "*3\r\n$8\r\nsmessage\r\n$4\r\n{s}c\r\n$1\r\nx\r\n");
}
