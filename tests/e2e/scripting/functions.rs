//! Functions: FUNCTION LOAD, FCALL and the library commands, names and
//! errors as Redis gives them, and the restricted globals a library loads
//! in.

use damselfly_tests::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_load_and_fcall() {
    let s = Server::start_with(&["--shards", "2"]);
    let mut c = s.raw();
    let lib = "#!lua name=stock\n\
        local function take(keys, args)\n\
          local left = tonumber(redis.call('GET', keys[1]) or '0')\n\
          local n = tonumber(args[1])\n\
          if left < n then return 0 end\n\
          return redis.call('DECRBY', keys[1], n)\n\
        end\n\
        redis.register_function('take', take)\n\
        redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads stock'}\n";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$5\r\nstock\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "-ERR Library 'stock' already exists\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]), "$5\r\nstock\r\n");
    assert_eq!(c.cmd(&["SET", "item", "10"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FCALL", "take", "1", "item", "3"]), ":7\r\n");
    assert_eq!(c.cmd(&["FCALL", "take", "1", "item", "30"]), ":0\r\n");
    assert_eq!(c.cmd(&["FCALL_RO", "peek", "1", "item"]), "$1\r\n7\r\n");
    assert_eq!(c.cmd(&["FCALL_RO", "take", "1", "item", "1"]), "-ERR Can not execute a script with write flag using *_ro command.\r\n");
    assert_eq!(c.cmd(&["FCALL", "nosuch", "0"]), "-ERR Function not found\r\n");
    assert_eq!(c.cmd(&["FCALL", "take", "x"]), "-ERR Bad number of keys provided\r\n");
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST"]),
        "*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nstock\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*2\r\n\
         *6\r\n$4\r\nname\r\n$4\r\ntake\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n\
         *6\r\n$4\r\nname\r\n$4\r\npeek\r\n$11\r\ndescription\r\n$11\r\nreads stock\r\n$5\r\nflags\r\n*1\r\n+no-writes\r\n"
    );
    assert!(c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "sto*", "WITHCODE"]).contains("library_code"));
    assert_eq!(c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "zzz*"]), "*0\r\n");
    // Errors while loading.
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", "return 1"]), "-ERR Missing library metadata\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"]), "-ERR No functions registered\r\n");
    let got = c.cmd(&["FUNCTION", "LOAD", "#!lua name=bad\nredis.call('GET', 'x')"]);
    assert!(got.starts_with("-ERR Error registering functions: "), "{got:?}");
    let got = c.cmd(&["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('take', function() return 1 end)"]);
    assert_eq!(got, "-ERR Function take already exists\r\n");
    // DUMP, FLUSH, RESTORE round trip.
    c.send_cmd(&[b"FUNCTION", b"DUMP"]);
    let dump = c.read_reply();
    let payload = {
        let text_end = dump.windows(2).position(|w| w == b"\r\n").unwrap();
        dump[text_end + 2..dump.len() - 2].to_vec()
    };
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FCALL", "take", "1", "item", "1"]), "-ERR Function not found\r\n");
    c.send_cmd(&[b"FUNCTION", b"RESTORE", &payload]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    assert_eq!(c.cmd(&["FCALL", "take", "1", "item", "1"]), ":6\r\n");
    c.send_cmd(&[b"FUNCTION", b"RESTORE", &payload]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "-ERR Library stock already exists\r\n");
    c.send_cmd(&[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"]);
    assert_eq!(String::from_utf8_lossy(&c.read_reply()), "+OK\r\n");
    assert!(c.cmd(&["FUNCTION", "STATS"]).contains("$15\r\nlibraries_count\r\n:1\r\n$15\r\nfunctions_count\r\n:2\r\n"));
    // A function called from another connection (the other thread) works too.
    let mut ac = s.conn().await;
    let v: i64 = redis::cmd("FCALL").arg("take").arg(1).arg("item").arg(2).query_async(&mut ac).await.unwrap();
    assert_eq!(v, 4);
    assert!(c.cmd(&["INFO", "memory"]).contains("number_of_functions:2\r\nnumber_of_libraries:1\r\n"));
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "stock"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "stock"]), "-ERR Library not found\r\n");
    assert_eq!(c.cmd(&["FCALL", "peek", "1", "item"]), "-ERR Function not found\r\n");
}

/// FCALL finds a function whatever the case of its name, FUNCTION FLUSH's
/// argument errors and RESTORE's collision error are Redis's (compared
/// with redis-server).
#[test]
fn function_names_and_errors_match_redis() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut theirs) = (s.raw(), r.raw());
    let lib = "#!lua name=cart\nredis.register_function('Total', function(keys, args) return 42 end)";
    let cases: &[&[&str]] = &[
        &["FUNCTION", "LOAD", lib],
        &["FCALL", "total", "0"],
        &["FCALL", "TOTAL", "0"],
        &["FCALL", "Total", "0"],
        &["FCALL_RO", "tOtAl", "0"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('TOTAL', function() return 1 end)"],
        &["FUNCTION", "FLUSH", "bad_arg"],
        &["FUNCTION", "FLUSH", "sync", "extra_arg"],
        &["FUNCTION", "FLUSH"],
        &["FCALL", "total", "0"],
    ];
    ours.same_replies(&mut theirs, cases);
}

/// While a library loads it sees only `redis.register_function`,
/// `redis.log` and the constants (no standard library, no `setresp`, no
/// `getmetatable`), and a function that kept the loading `redis` table
/// cannot register later: every reply compared with redis-server 7.0's.
#[test]
fn a_library_loads_in_redis_s_restricted_globals() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut theirs) = (s.raw(), r.raw());
    let kept = "#!lua name=lib1\nlocal lib = redis\nlib.register_function('f1', function() lib.math = math return {ok='OK'} end)\nlib.register_function('f2', function() lib.register_function('f1', function() return 1 end) end)";
    let cases: &[&[&str]] = &[
        &["FUNCTION", "LOAD", "#!lua name=m\nreturn math.random()"],
        &["FUNCTION", "LOAD", "#!lua name=m\nredis.setresp(3)"],
        &["FUNCTION", "LOAD", "#!lua name=m\nlocal t = getmetatable('')"],
        &["FUNCTION", "LOAD", "#!lua name=m\nlocal x = string.len('a')"],
        &["FUNCTION", "LOAD", "#!lua name=m\nredis.math.random()"],
        &["FUNCTION", "LOAD", "#!lua name=m\nredis.redis.call('ping')"],
        &["FUNCTION", "LOAD", "#!lua name=m\nredis.log(redis.LOG_NOTICE, redis.REDIS_VERSION)\nredis.register_function('v', function() return string.len('four') end)"],
        &["FCALL", "v", "0"],
        &["FUNCTION", "LOAD", kept],
        &["FCALL", "f1", "0"],
        &["FCALL", "f2", "0"],
    ];
    ours.same_replies(&mut theirs, cases);
}
