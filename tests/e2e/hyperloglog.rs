//! HyperLogLog against a real server: estimates equal to redis-server 7's
//! for the same elements (checked when these figures were taken), merging
//! across shards, and the errors.

use damselfly_tests::Server;

#[test]
fn estimates_and_errors() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.sync_conn();
    let mut raw = s.raw();
    assert_eq!(raw.cmd(&["PFADD", "h"]), ":1\r\n");
    assert_eq!(raw.cmd(&["PFADD", "h", "a", "b", "c"]), ":1\r\n");
    assert_eq!(raw.cmd(&["PFADD", "h", "a"]), ":0\r\n");
    assert_eq!(raw.cmd(&["PFCOUNT", "h"]), ":3\r\n");
    assert_eq!(raw.cmd(&["PFCOUNT", "nx"]), ":0\r\n");
    assert_eq!(raw.cmd(&["SET", "s", "plain"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["PFADD", "s", "x"]), "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n");
    for n in [1000usize, 20000] {
        let key = format!("k{n}");
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let els: Vec<String> = chunk.iter().map(|j| format!("el{n}-{j}")).collect();
            let _: i64 = redis::cmd("PFADD").arg(&key).arg(els).query(&mut c).expect("PFADD");
        }
    }
    // The figures redis-server gives for the same elements.
    let count = |c: &mut redis::Connection, keys: &[&str]| -> i64 { redis::cmd("PFCOUNT").arg(keys).query(c).expect("PFCOUNT") };
    assert_eq!(count(&mut c, &["k1000"]), 996);
    assert_eq!(count(&mut c, &["k20000"]), 20250);
    assert_eq!(count(&mut c, &["k1000", "k20000"]), 21282);
    let _: () = redis::cmd("PFMERGE").arg("m").arg("k1000").arg("k20000").query(&mut c).expect("PFMERGE");
    assert_eq!(count(&mut c, &["m"]), 21282);
    assert_eq!(raw.cmd(&["TYPE", "m"]), "+string\r\n");
}
