//! The table `scripts_call_every_command_family_like_redis_server` runs on
//! damselfly and on redis-server: one case per script, grouped by command
//! family, then errors (refused commands, containers' subcommands) and the
//! blocking commands last.

use super::{Case, BASE};

/// A command that scripts may not call: `redis.pcall` gets Redis's error.
macro_rules! refused {
    ($cmd:literal, $args:literal) => {
        Case {
            name: concat!("errors/refused ", $cmd),
            script: concat!("return redis.pcall('", $cmd, "'", $args, ")"),
            keys: &["k1", "k2"],
            ..BASE
        }
    };
}

pub(super) const CASES: &[Case] = &[
    // Strings.
    Case {
        name: "strings/SET GET",
        script: "redis.call('SET', KEYS[1], ARGV[1])\n\
                 redis.call('SET', KEYS[2], ARGV[2], 'NX')\n\
                 local old = redis.call('SET', KEYS[1], 'second', 'GET')\n\
                 return {old, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),\n\
                 redis.call('SET', KEYS[2], 'x', 'NX')}",
        keys: &["k1", "k2", "k3"],
        argv: &["first", "other"],
        after: &[&["MGET", "k1", "k2", "k3"]],
        resp3: true,
        ..BASE
    },
    Case {
        name: "strings/INCRBY DECRBY INCRBYFLOAT",
        script: "redis.call('SET', KEYS[1], 10)\n\
                 return {redis.call('INCRBY', KEYS[1], 5),\n\
                 redis.call('DECRBY', KEYS[2], 3),\n\
                 redis.call('INCR', KEYS[3]),\n\
                 redis.call('DECR', KEYS[1]),\n\
                 redis.call('INCRBYFLOAT', KEYS[4], '1.5')}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["MGET", "k1", "k2", "k3", "k4"]],
        ..BASE
    },
    Case {
        name: "strings/APPEND GETRANGE SETRANGE STRLEN",
        script: "redis.call('APPEND', KEYS[1], 'Hello')\n\
                 redis.call('APPEND', KEYS[1], ' World')\n\
                 redis.call('SETRANGE', KEYS[2], 3, 'xyz')\n\
                 return {redis.call('GETRANGE', KEYS[1], 0, 4),\n\
                 redis.call('GETRANGE', KEYS[1], -5, -1),\n\
                 redis.call('STRLEN', KEYS[1]),\n\
                 redis.call('GET', KEYS[2]),\n\
                 redis.call('SUBSTR', KEYS[1], 6, 100),\n\
                 redis.call('APPEND', KEYS[2], '!')}",
        keys: &["k1", "k2"],
        after: &[&["MGET", "k1", "k2"]],
        ..BASE
    },
    Case {
        name: "strings/MSET MGET",
        script: "redis.call('MSET', KEYS[1], 'a', KEYS[2], 'b', KEYS[3], 'c')\n\
                 return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4])",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["MGET", "k1", "k2", "k3", "k4"]],
        resp3: true,
        ..BASE
    },
    Case {
        name: "strings/MSETNX",
        setup: &[&["SET", "k3", "taken"]],
        script: "return {redis.call('MSETNX', KEYS[1], 'a', KEYS[2], 'b'),\n\
                 redis.call('MSETNX', KEYS[4], 'x', KEYS[3], 'y'),\n\
                 redis.call('MSETNX', KEYS[4], 'z', KEYS[2], 'w'),\n\
                 redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["MGET", "k1", "k2", "k3", "k4"]],
        ..BASE
    },
    Case {
        name: "strings/LCS",
        setup: &[&["MSET", "k1", "ohmytext", "k2", "mynewtext"]],
        script: "return {redis.call('LCS', KEYS[1], KEYS[2]),\n\
                 redis.call('LCS', KEYS[1], KEYS[2], 'LEN'),\n\
                 redis.call('LCS', KEYS[1], KEYS[2], 'IDX', 'MINMATCHLEN', 4, 'WITHMATCHLEN'),\n\
                 redis.call('LCS', KEYS[1], KEYS[3])}",
        keys: &["k1", "k2", "k3"],
        ..BASE
    },
    Case {
        name: "strings/GETDEL GETSET GETEX SETNX SETEX",
        setup: &[&["MSET", "k1", "v1", "k2", "v2"]],
        script: "return {redis.call('GETDEL', KEYS[1]),\n\
                 redis.call('EXISTS', KEYS[1]),\n\
                 redis.call('GETSET', KEYS[2], 'new'),\n\
                 redis.call('GETEX', KEYS[2], 'EX', 100),\n\
                 redis.call('TTL', KEYS[2]),\n\
                 redis.call('SETNX', KEYS[3], 'n'),\n\
                 redis.call('SETNX', KEYS[3], 'm'),\n\
                 redis.call('SETEX', KEYS[4], 50, 'e'),\n\
                 redis.call('TTL', KEYS[4])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["MGET", "k1", "k2", "k3", "k4"]],
        ..BASE
    },
    // Keys.
    Case {
        name: "keys/DEL EXISTS UNLINK TOUCH",
        setup: &[&["MSET", "k1", "1", "k2", "2", "k3", "3"], &["RPUSH", "k4", "x"]],
        script: "return {redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[1], KEYS[5]),\n\
                 redis.call('TOUCH', KEYS[1], KEYS[4], KEYS[5]),\n\
                 redis.call('DEL', KEYS[1], KEYS[2], KEYS[5]),\n\
                 redis.call('UNLINK', KEYS[3], KEYS[4]),\n\
                 redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4])}",
        keys: &["k1", "k2", "k3", "k4", "k5"],
        after: &[&["DBSIZE"]],
        ..BASE
    },
    Case {
        name: "keys/EXPIRE TTL PERSIST EXPIRETIME",
        setup: &[&["MSET", "k1", "v", "k2", "v"]],
        script: "return {redis.call('EXPIRE', KEYS[1], 100),\n\
                 redis.call('TTL', KEYS[1]),\n\
                 redis.call('EXPIRE', KEYS[2], 100, 'NX'),\n\
                 redis.call('EXPIRE', KEYS[2], 50, 'GT'),\n\
                 redis.call('PERSIST', KEYS[2]),\n\
                 redis.call('TTL', KEYS[2]),\n\
                 redis.call('TTL', KEYS[3]),\n\
                 redis.call('EXPIREAT', KEYS[1], 4102444800),\n\
                 redis.call('EXPIRETIME', KEYS[1]),\n\
                 redis.call('PEXPIRETIME', KEYS[1]),\n\
                 redis.call('PEXPIRE', KEYS[3], 100),\n\
                 redis.call('EXPIRETIME', KEYS[2])}",
        keys: &["k1", "k2", "k3"],
        after: &[&["EXPIRETIME", "k1"], &["TTL", "k2"]],
        ..BASE
    },
    Case {
        name: "keys/TYPE",
        setup: &[
            &["SET", "k1", "s"],
            &["RPUSH", "k2", "l"],
            &["SADD", "k3", "m"],
            &["ZADD", "k4", "1", "m"],
            &["HSET", "k5", "f", "v"],
            &["XADD", "k6", "1-1", "f", "v"],
        ],
        script: "local r = {}\n\
                 for i = 1, #KEYS do r[i] = redis.call('TYPE', KEYS[i]) end\n\
                 return r",
        keys: &["k1", "k2", "k3", "k4", "k5", "k6", "k7"],
        ..BASE
    },
    Case {
        name: "keys/RENAME RENAMENX",
        setup: &[&["SET", "k1", "v1"], &["SET", "k3", "v3"], &["EXPIRE", "k1", "1000"]],
        script: "return {redis.call('RENAME', KEYS[1], KEYS[2]),\n\
                 redis.call('TTL', KEYS[2]),\n\
                 redis.call('RENAMENX', KEYS[2], KEYS[3]),\n\
                 redis.call('RENAMENX', KEYS[2], KEYS[4]),\n\
                 redis.call('EXISTS', KEYS[1], KEYS[2]),\n\
                 redis.call('GET', KEYS[4]),\n\
                 redis.pcall('RENAME', KEYS[1], KEYS[2])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["MGET", "k1", "k2", "k3", "k4"], &["TTL", "k4"]],
        ..BASE
    },
    Case {
        name: "keys/COPY",
        setup: &[&["RPUSH", "k1", "a", "b", "c"], &["SET", "k3", "x"]],
        script: "return {redis.call('COPY', KEYS[1], KEYS[2]),\n\
                 redis.call('COPY', KEYS[1], KEYS[3]),\n\
                 redis.call('COPY', KEYS[1], KEYS[3], 'REPLACE'),\n\
                 redis.call('LRANGE', KEYS[2], 0, -1),\n\
                 redis.call('COPY', KEYS[1], KEYS[4], 'DB', 1),\n\
                 redis.call('RPUSH', KEYS[2], 'd'),\n\
                 redis.call('LLEN', KEYS[1])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["LRANGE", "k3", "0", "-1"], &["EXISTS", "k4"], &["SELECT", "1"], &["LRANGE", "k4", "0", "-1"], &["SELECT", "0"]],
        ..BASE
    },
    Case {
        name: "keys/DBSIZE KEYS",
        setup: &[&["MSET", "k1", "1", "k2", "2", "k3", "3", "k4", "4"]],
        script: "local all = redis.call('KEYS', '*')\n\
                 table.sort(all)\n\
                 local some = redis.call('KEYS', 'k[13]')\n\
                 table.sort(some)\n\
                 return {redis.call('DBSIZE'), all, some, redis.call('KEYS', 'nomatch*')}",
        keys: &["k1", "k2", "k3", "k4"],
        resp3: true,
        ..BASE
    },
    Case {
        name: "keys/SCAN",
        setup: &[&["MSET", "k1", "1", "k2", "2", "k3", "3"], &["SADD", "k4", "m"]],
        script: "local r = redis.call('SCAN', 0, 'COUNT', 1000)\n\
                 table.sort(r[2])\n\
                 local s = redis.call('SCAN', 0, 'COUNT', 1000, 'TYPE', 'set')\n\
                 return {r, s}",
        keys: &["k1", "k2", "k3", "k4"],
        ..BASE
    },
    Case {
        name: "keys/RANDOMKEY",
        script: "local empty = redis.call('RANDOMKEY')\n\
                 redis.call('SET', KEYS[1], 'only')\n\
                 return {empty, redis.call('RANDOMKEY')}",
        keys: &["k3"],
        ..BASE
    },
    Case {
        name: "keys/DUMP RESTORE",
        setup: &[&["HSET", "k1", "f", "v"]],
        script: "local d = redis.call('DUMP', KEYS[1])\n\
                 return {redis.call('RESTORE', KEYS[2], 0, d),\n\
                 redis.pcall('RESTORE', KEYS[2], 0, d),\n\
                 redis.call('HGET', KEYS[2], 'f'),\n\
                 redis.call('DUMP', KEYS[3])}",
        keys: &["k1", "k2", "k3"],
        after: &[&["HGET", "k2", "f"]],
        ..BASE
    },
    Case {
        name: "keys/MOVE",
        setup: &[&["SET", "k1", "v"], &["SET", "k2", "w"], &["SELECT", "1"], &["SET", "k2", "there"], &["SELECT", "0"]],
        script: "return {redis.call('MOVE', KEYS[1], 1),\n\
                 redis.call('MOVE', KEYS[2], 1),\n\
                 redis.call('EXISTS', KEYS[1], KEYS[2])}",
        keys: &["k1", "k2"],
        after: &[&["SELECT", "1"], &["MGET", "k1", "k2"], &["SELECT", "0"], &["MGET", "k1", "k2"]],
        ..BASE
    },
    // Hashes.
    Case {
        name: "hashes/HSET HGET HMGET HINCRBY HDEL",
        script: "redis.call('HSET', KEYS[1], 'a', 1, 'b', 2, 'c', 3)\n\
                 local f = redis.call('HKEYS', KEYS[1])\n\
                 table.sort(f)\n\
                 return {redis.call('HGET', KEYS[1], 'a'),\n\
                 redis.call('HMGET', KEYS[1], 'a', 'x', 'c'),\n\
                 redis.call('HINCRBY', KEYS[1], 'b', 10),\n\
                 redis.call('HINCRBYFLOAT', KEYS[1], 'c', '0.5'),\n\
                 redis.call('HLEN', KEYS[1]),\n\
                 redis.call('HEXISTS', KEYS[1], 'z'),\n\
                 redis.call('HSETNX', KEYS[1], 'a', 9),\n\
                 redis.call('HDEL', KEYS[1], 'a', 'nope'),\n\
                 redis.call('HSTRLEN', KEYS[1], 'c'),\n\
                 f,\n\
                 redis.call('HGET', KEYS[2], 'a')}",
        keys: &["k1", "k2"],
        after: &[&["HMGET", "k1", "a", "b", "c"]],
        resp3: true,
        ..BASE
    },
    Case {
        name: "hashes/copy fields across shards",
        setup: &[&["HSET", "k1", "name", "ada", "city", "london"]],
        script: "local t = redis.call('HGETALL', KEYS[1])\n\
                 for i = 1, #t, 2 do redis.call('HSET', KEYS[2], t[i], string.upper(t[i + 1])) end\n\
                 local v = redis.call('HVALS', KEYS[2])\n\
                 table.sort(v)\n\
                 return {redis.call('HLEN', KEYS[2]), v}",
        keys: &["k1", "k2"],
        after: &[&["HMGET", "k2", "name", "city"]],
        ..BASE
    },
    Case {
        name: "hashes/HGETALL as a RESP3 map",
        setup: &[&["HSET", "k1", "f", "v"]],
        script: "redis.setresp(3)\n\
                 return redis.call('HGETALL', KEYS[1])",
        keys: &["k1"],
        resp3: true,
        ..BASE
    },
    // Lists.
    Case {
        name: "lists/LPUSH LRANGE LINSERT LSET LREM LTRIM",
        script: "redis.call('LPUSH', KEYS[1], 'a', 'b', 'c')\n\
                 redis.call('RPUSH', KEYS[2], 'x', 'y')\n\
                 return {redis.call('LRANGE', KEYS[1], 0, -1),\n\
                 redis.call('LLEN', KEYS[2]),\n\
                 redis.call('LINDEX', KEYS[1], 1),\n\
                 redis.call('LPOS', KEYS[1], 'a'),\n\
                 redis.call('LINSERT', KEYS[2], 'BEFORE', 'y', 'm'),\n\
                 redis.call('LSET', KEYS[2], 0, 'X'),\n\
                 redis.call('LREM', KEYS[1], 0, 'b'),\n\
                 redis.call('LTRIM', KEYS[2], 0, 1),\n\
                 redis.call('LRANGE', KEYS[2], 0, -1),\n\
                 redis.call('RPOP', KEYS[1], 5),\n\
                 redis.call('LPUSHX', KEYS[3], 'q'),\n\
                 redis.call('LPOP', KEYS[3])}",
        keys: &["k1", "k2", "k3"],
        after: &[&["LRANGE", "k2", "0", "-1"], &["EXISTS", "k1"]],
        resp3: true,
        ..BASE
    },
    Case {
        name: "lists/LMOVE RPOPLPUSH",
        setup: &[&["RPUSH", "k1", "1", "2", "3", "4"]],
        script: "local moved = {}\n\
                 for i = 1, 3 do moved[i] = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') end\n\
                 moved[4] = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])\n\
                 moved[5] = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])\n\
                 moved[6] = redis.call('LMOVE', KEYS[2], KEYS[2], 'LEFT', 'RIGHT')\n\
                 return {moved, redis.call('LRANGE', KEYS[2], 0, -1)}",
        keys: &["k1", "k2", "k3"],
        after: &[&["LRANGE", "k2", "0", "-1"], &["LRANGE", "k3", "0", "-1"], &["EXISTS", "k1"]],
        ..BASE
    },
    Case {
        name: "lists/LMPOP",
        setup: &[&["RPUSH", "k2", "a", "b", "c"]],
        script: "return {redis.call('LMPOP', 2, KEYS[1], KEYS[2], 'LEFT'),\n\
                 redis.call('LMPOP', 2, KEYS[1], KEYS[2], 'RIGHT', 'COUNT', 5),\n\
                 redis.call('LMPOP', 2, KEYS[1], KEYS[2], 'LEFT')}",
        keys: &["k1", "k2"],
        after: &[&["EXISTS", "k2"]],
        resp3: true,
        ..BASE
    },
    // Sets.
    Case {
        name: "sets/SINTERSTORE SUNION SDIFF SINTERCARD",
        setup: &[&["SADD", "k1", "a", "b", "c", "d"], &["SADD", "k2", "c", "d", "e"], &["SADD", "k3", "d", "e", "f"]],
        script: "local function s(t) table.sort(t) return t end\n\
                 return {redis.call('SINTERSTORE', KEYS[4], KEYS[1], KEYS[2]),\n\
                 s(redis.call('SMEMBERS', KEYS[4])),\n\
                 s(redis.call('SUNION', KEYS[1], KEYS[2], KEYS[3])),\n\
                 s(redis.call('SDIFF', KEYS[1], KEYS[2], KEYS[3])),\n\
                 redis.call('SINTERCARD', 3, KEYS[1], KEYS[2], KEYS[3]),\n\
                 redis.call('SINTERCARD', 2, KEYS[1], KEYS[2], 'LIMIT', 1),\n\
                 s(redis.call('SINTER', KEYS[1], KEYS[2], KEYS[3])),\n\
                 redis.call('SUNIONSTORE', KEYS[5], KEYS[2], KEYS[3]),\n\
                 redis.call('SDIFFSTORE', KEYS[6], KEYS[1], KEYS[3]),\n\
                 s(redis.call('SMEMBERS', KEYS[6]))}",
        keys: &["k1", "k2", "k3", "k4", "k5", "k6"],
        after: &[&["SCARD", "k4"], &["SCARD", "k5"], &["SMISMEMBER", "k6", "a", "b", "c", "d"]],
        ..BASE
    },
    Case {
        name: "sets/SMOVE SISMEMBER SPOP",
        setup: &[&["SADD", "k1", "a", "b"], &["SADD", "k2", "c"]],
        script: "return {redis.call('SMOVE', KEYS[1], KEYS[2], 'a'),\n\
                 redis.call('SMOVE', KEYS[1], KEYS[2], 'zz'),\n\
                 redis.call('SISMEMBER', KEYS[2], 'a'),\n\
                 redis.call('SMISMEMBER', KEYS[1], 'a', 'b'),\n\
                 redis.call('SCARD', KEYS[2]),\n\
                 redis.call('SREM', KEYS[2], 'c', 'x'),\n\
                 redis.call('SMOVE', KEYS[1], KEYS[3], 'b'),\n\
                 redis.call('EXISTS', KEYS[1]),\n\
                 redis.call('SRANDMEMBER', KEYS[3]),\n\
                 redis.call('SPOP', KEYS[3]),\n\
                 redis.call('SPOP', KEYS[3])}",
        keys: &["k1", "k2", "k3"],
        after: &[&["SMISMEMBER", "k2", "a", "c"], &["EXISTS", "k1", "k3"]],
        ..BASE
    },
    // Sorted sets.
    Case {
        name: "zsets/ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZRANGESTORE",
        setup: &[&["ZADD", "k1", "1", "a", "2", "b", "3", "c"], &["ZADD", "k2", "10", "b", "20", "c", "30", "d"]],
        script: "return {redis.call('ZUNIONSTORE', KEYS[3], 2, KEYS[1], KEYS[2], 'WEIGHTS', 1, 2),\n\
                 redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),\n\
                 redis.call('ZINTERSTORE', KEYS[4], 2, KEYS[1], KEYS[2], 'AGGREGATE', 'MAX'),\n\
                 redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES'),\n\
                 redis.call('ZDIFFSTORE', KEYS[5], 2, KEYS[1], KEYS[2]),\n\
                 redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES'),\n\
                 redis.call('ZRANGESTORE', KEYS[6], KEYS[2], 15, 100, 'BYSCORE'),\n\
                 redis.call('ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')}",
        keys: &["k1", "k2", "k3", "k4", "k5", "k6"],
        after: &[&["ZRANGE", "k3", "0", "-1", "WITHSCORES"], &["ZCARD", "k6"]],
        ..BASE
    },
    Case {
        name: "zsets/ZUNION ZINTER ZDIFF ZINTERCARD",
        setup: &[&["ZADD", "k1", "1", "a", "2", "b", "3", "c"], &["ZADD", "k2", "10", "b", "20", "c", "30", "d"]],
        script: "return {redis.call('ZUNION', 2, KEYS[1], KEYS[2], 'WITHSCORES'),\n\
                 redis.call('ZINTER', 2, KEYS[1], KEYS[2], 'WITHSCORES'),\n\
                 redis.call('ZDIFF', 2, KEYS[1], KEYS[2]),\n\
                 redis.call('ZINTERCARD', 2, KEYS[1], KEYS[2]),\n\
                 redis.call('ZINTERCARD', 2, KEYS[1], KEYS[2], 'LIMIT', 1),\n\
                 redis.call('ZUNION', 3, KEYS[1], KEYS[2], KEYS[3])}",
        keys: &["k1", "k2", "k3"],
        resp3: true,
        ..BASE
    },
    Case {
        name: "zsets/ZMPOP",
        setup: &[&["ZADD", "k2", "1", "a", "2", "b", "3", "c"]],
        script: "return {redis.call('ZMPOP', 2, KEYS[1], KEYS[2], 'MIN'),\n\
                 redis.call('ZMPOP', 2, KEYS[1], KEYS[2], 'MAX', 'COUNT', 5),\n\
                 redis.call('ZMPOP', 2, KEYS[1], KEYS[2], 'MIN')}",
        keys: &["k1", "k2"],
        after: &[&["EXISTS", "k2"]],
        resp3: true,
        ..BASE
    },
    Case {
        name: "zsets/ZADD ZINCRBY ZSCORE ZRANK ZRANGE",
        script: "redis.call('ZADD', KEYS[1], 1.5, 'a', 2, 'b')\n\
                 return {redis.call('ZINCRBY', KEYS[1], 2, 'a'),\n\
                 redis.call('ZSCORE', KEYS[1], 'a'),\n\
                 redis.call('ZRANK', KEYS[1], 'a'),\n\
                 redis.call('ZREVRANK', KEYS[1], 'a'),\n\
                 redis.call('ZCARD', KEYS[1]),\n\
                 redis.call('ZCOUNT', KEYS[1], '(2', '+inf'),\n\
                 redis.call('ZRANGE', KEYS[1], '-inf', '+inf', 'BYSCORE', 'WITHSCORES'),\n\
                 redis.call('ZADD', KEYS[1], 'XX', 'CH', 5, 'b', 6, 'z'),\n\
                 redis.call('ZREM', KEYS[1], 'a', 'q'),\n\
                 redis.call('ZMSCORE', KEYS[1], 'b', 'q'),\n\
                 redis.call('ZSCORE', KEYS[2], 'a')}",
        keys: &["k1", "k2"],
        after: &[&["ZRANGE", "k1", "0", "-1", "WITHSCORES"]],
        ..BASE
    },
    Case {
        name: "zsets/scores as RESP3 doubles",
        setup: &[&["ZADD", "k1", "2.5", "m", "1", "n"]],
        script: "redis.setresp(3)\n\
                 return {redis.call('ZSCORE', KEYS[1], 'm'),\n\
                 redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'),\n\
                 redis.call('ZSCORE', KEYS[1], 'nope')}",
        keys: &["k1"],
        resp3: true,
        ..BASE
    },
    // Streams (damselfly has no consumer groups: XGROUP & co. are left out).
    Case {
        name: "streams/XADD XRANGE XLEN",
        script: "return {redis.call('XADD', KEYS[1], '1-1', 'f', 'v1'),\n\
                 redis.call('XADD', KEYS[1], '1-2', 'f', 'v2'),\n\
                 redis.call('XADD', KEYS[2], '5-0', 'g', 'w'),\n\
                 redis.call('XADD', KEYS[2], 'MAXLEN', 1, '6-0', 'g', 'w2'),\n\
                 redis.call('XLEN', KEYS[1]),\n\
                 redis.call('XLEN', KEYS[2]),\n\
                 redis.call('XRANGE', KEYS[1], '-', '+'),\n\
                 redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1),\n\
                 redis.call('XRANGE', KEYS[2], '-', '+'),\n\
                 redis.pcall('XADD', KEYS[1], '1-1', 'f', 'late')}",
        keys: &["k1", "k2"],
        after: &[&["XRANGE", "k2", "-", "+"]],
        ..BASE
    },
    Case {
        name: "streams/XREAD from two shards",
        setup: &[&["XADD", "k1", "1-1", "a", "1"], &["XADD", "k1", "2-1", "a", "2"], &["XADD", "k2", "3-1", "b", "3"]],
        script: "return {redis.call('XREAD', 'COUNT', 10, 'STREAMS', KEYS[1], KEYS[2], '0', '0'),\n\
                 redis.call('XREAD', 'STREAMS', KEYS[1], KEYS[2], '1-1', '3-1'),\n\
                 redis.call('XREAD', 'STREAMS', KEYS[1], KEYS[2], '9-0', '9-0')}",
        keys: &["k1", "k2"],
        resp3: true,
        ..BASE
    },
    Case {
        name: "streams/XDEL XTRIM",
        setup: &[&["XADD", "k1", "1-1", "f", "v"], &["XADD", "k1", "2-1", "f", "v"], &["XADD", "k1", "3-1", "f", "v"]],
        script: "return {redis.call('XDEL', KEYS[1], '2-1', '9-9'),\n\
                 redis.call('XTRIM', KEYS[1], 'MAXLEN', 1),\n\
                 redis.call('XRANGE', KEYS[1], '-', '+'),\n\
                 redis.call('XTRIM', KEYS[2], 'MINID', '5-0'),\n\
                 redis.call('XLEN', KEYS[1])}",
        keys: &["k1", "k2"],
        after: &[&["XLEN", "k1"]],
        ..BASE
    },
    // Bitmaps.
    Case {
        name: "bitmaps/SETBIT BITCOUNT BITOP",
        script: "redis.call('SETBIT', KEYS[1], 1, 1)\n\
                 redis.call('SETBIT', KEYS[1], 7, 1)\n\
                 redis.call('SETBIT', KEYS[2], 7, 1)\n\
                 redis.call('SETBIT', KEYS[2], 12, 1)\n\
                 return {redis.call('GETBIT', KEYS[1], 7),\n\
                 redis.call('BITCOUNT', KEYS[1]),\n\
                 redis.call('BITCOUNT', KEYS[2], 0, 0),\n\
                 redis.call('BITOP', 'AND', KEYS[3], KEYS[1], KEYS[2]),\n\
                 redis.call('GET', KEYS[3]),\n\
                 redis.call('BITOP', 'OR', KEYS[4], KEYS[1], KEYS[2]),\n\
                 redis.call('BITCOUNT', KEYS[4]),\n\
                 redis.call('BITOP', 'XOR', KEYS[3], KEYS[1], KEYS[2], KEYS[4]),\n\
                 redis.call('BITOP', 'NOT', KEYS[5], KEYS[1]),\n\
                 redis.call('GET', KEYS[5]),\n\
                 redis.call('BITPOS', KEYS[2], 1)}",
        keys: &["k1", "k2", "k3", "k4", "k5"],
        after: &[&["MGET", "k3", "k4", "k5"]],
        ..BASE
    },
    // HyperLogLog.
    Case {
        name: "hyperloglog/PFADD PFCOUNT PFMERGE",
        script: "return {redis.call('PFADD', KEYS[1], 'a', 'b', 'c'),\n\
                 redis.call('PFADD', KEYS[1], 'a'),\n\
                 redis.call('PFADD', KEYS[2], 'c', 'd'),\n\
                 redis.call('PFCOUNT', KEYS[1]),\n\
                 redis.call('PFCOUNT', KEYS[1], KEYS[2]),\n\
                 redis.call('PFCOUNT', KEYS[1], KEYS[2], KEYS[3]),\n\
                 redis.call('PFMERGE', KEYS[4], KEYS[1], KEYS[2]),\n\
                 redis.call('PFCOUNT', KEYS[4]),\n\
                 redis.call('EXISTS', KEYS[3])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["PFCOUNT", "k4"], &["PFCOUNT", "k1", "k2"]],
        ..BASE
    },
    // SORT's patterns and destination on other shards than its key: the
    // script reaches them all.
    Case {
        name: "sort/SORT SORT_RO",
        script: "redis.call('RPUSH', KEYS[1], '3', '1', '2', '4')\n\
                 redis.call('MSET', KEYS[2], 'b', KEYS[3], 'a', KEYS[4], 'c')\n\
                 return {redis.call('SORT', KEYS[1]),\n\
                 redis.call('SORT', KEYS[1], 'BY', 'k*', 'ALPHA', 'GET', '#', 'GET', 'k*'),\n\
                 redis.call('SORT_RO', KEYS[1], 'BY', 'nosort', 'DESC', 'LIMIT', '1', '2'),\n\
                 redis.call('SORT', KEYS[1], 'BY', 'k*', 'ALPHA', 'STORE', KEYS[5]),\n\
                 redis.call('LRANGE', KEYS[5], 0, -1),\n\
                 redis.pcall('SORT', KEYS[2])}",
        keys: &["k1", "k2", "k3", "k4", "k5"],
        after: &[&["LRANGE", "k5", "0", "-1"]],
        ..BASE
    },
    Case {
        name: "bitmaps/BITFIELD BITFIELD_RO",
        script: "return {redis.call('BITFIELD', KEYS[1], 'SET', 'u8', '#1', '200', 'INCRBY', 'u8', '#1', '100', 'OVERFLOW', 'FAIL', 'INCRBY', 'u8', '#1', '100'),\n\
                 redis.call('BITFIELD_RO', KEYS[1], 'GET', 'i8', '8', 'GET', 'u4', '8'),\n\
                 redis.pcall('BITFIELD_RO', KEYS[1], 'SET', 'u8', '0', '1')}",
        keys: &["k1"],
        after: &[&["GET", "k1"]],
        resp3: true,
        ..BASE
    },
    // Geo, with STORE destinations on other shards than the source.
    Case {
        name: "geo/GEOSEARCHSTORE GEORADIUS STORE",
        script: "redis.call('GEOADD', KEYS[1], '13.361389', '38.115556', 'Palermo', '15.087269', '37.502669', 'Catania')\n\
                 return {redis.call('GEOSEARCHSTORE', KEYS[2], KEYS[1], 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km'),\n\
                 redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'),\n\
                 redis.call('GEORADIUS', KEYS[1], 15, 37, 100, 'km', 'STORE', KEYS[3]),\n\
                 redis.call('ZRANGE', KEYS[3], 0, -1),\n\
                 redis.call('GEORADIUSBYMEMBER', KEYS[1], 'Palermo', 10, 'km', 'STOREDIST', KEYS[4]),\n\
                 redis.call('ZSCORE', KEYS[4], 'Palermo'),\n\
                 redis.pcall('GEORADIUS', KEYS[1], 15, 37, 100, 'km', 'STORE', KEYS[3], 'WITHDIST')}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["ZRANGE", "k3", "0", "-1"]],
        ..BASE
    },
    Case {
        name: "geo/GEOADD GEODIST GEOPOS GEOSEARCH",
        script: "return {redis.call('GEOADD', KEYS[1], '13.361389', '38.115556', 'Palermo', '15.087269', '37.502669', 'Catania'),\n\
                 redis.call('GEOADD', KEYS[2], '2.3522', '48.8566', 'Paris'),\n\
                 redis.call('GEODIST', KEYS[1], 'Palermo', 'Catania'),\n\
                 redis.call('GEODIST', KEYS[1], 'Palermo', 'Catania', 'km'),\n\
                 redis.call('GEOPOS', KEYS[1], 'Palermo', 'Nowhere'),\n\
                 redis.call('GEOHASH', KEYS[1], 'Palermo'),\n\
                 redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km', 'ASC', 'WITHDIST'),\n\
                 redis.call('GEOSEARCH', KEYS[1], 'FROMMEMBER', 'Palermo', 'BYBOX', 400, 400, 'km', 'DESC', 'WITHCOORD'),\n\
                 redis.call('GEOPOS', KEYS[2], 'Paris')}",
        keys: &["k1", "k2"],
        after: &[&["GEODIST", "k1", "Palermo", "Catania"]],
        ..BASE
    },
    // Pub/sub (a subscriber to `news` is connected to each server).
    Case {
        name: "pubsub/PUBLISH PUBSUB",
        script: "return {redis.call('PUBLISH', 'news', ARGV[1]),\n\
                 redis.call('PUBLISH', 'nobody', 'x'),\n\
                 redis.call('PUBSUB', 'NUMSUB', 'news', 'nobody'),\n\
                 redis.call('PUBSUB', 'CHANNELS', 'new*')}",
        argv: &["from a script"],
        ..BASE
    },
    // Server and connection.
    Case {
        name: "server/TIME shape",
        script: "local t = redis.call('TIME')\n\
                 return {#t, type(t[1]), type(t[2]), tonumber(t[1]) > 1600000000, tonumber(t[2]) < 1000000}",
        ..BASE
    },
    Case {
        name: "server/PING ECHO",
        script: "return {redis.call('PING'),\n\
                 redis.call('PING', 'hi'),\n\
                 redis.call('ECHO', 'e')}",
        resp3: true,
        ..BASE
    },
    Case {
        name: "server/DBSIZE FLUSHDB",
        setup: &[&["MSET", "k1", "1", "k2", "2", "k3", "3"], &["SELECT", "1"], &["SET", "k5", "other db"], &["SELECT", "0"]],
        script: "local before = redis.call('DBSIZE')\n\
                 redis.call('SET', KEYS[4], 'x')\n\
                 local mid = redis.call('DBSIZE')\n\
                 local ok = redis.call('FLUSHDB')\n\
                 redis.call('SET', KEYS[1], 'after')\n\
                 return {before, mid, ok, redis.call('DBSIZE'), redis.call('GET', KEYS[1]), redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4])}",
        keys: &["k1", "k2", "k3", "k4"],
        after: &[&["DBSIZE"], &["GET", "k1"], &["SELECT", "1"], &["GET", "k5"], &["SELECT", "0"]],
        ..BASE
    },
    Case {
        name: "server/SELECT then write",
        script: "redis.call('SET', KEYS[1], 'db0')\n\
                 redis.call('SELECT', 1)\n\
                 redis.call('SET', KEYS[1], 'db1')\n\
                 redis.call('SET', KEYS[2], 'only1')\n\
                 return {redis.call('GET', KEYS[1]), redis.call('DBSIZE')}",
        keys: &["k1", "k2"],
        after: &[&["GET", "k1"], &["EXISTS", "k2"], &["SELECT", "1"], &["MGET", "k1", "k2"], &["DBSIZE"], &["SELECT", "0"], &["DBSIZE"]],
        ..BASE
    },
    // Errors.
    refused!("SUBSCRIBE", ", 'x'"),
    refused!("PSUBSCRIBE", ", 'x*'"),
    refused!("MULTI", ""),
    refused!("EXEC", ""),
    refused!("DISCARD", ""),
    refused!("WATCH", ", KEYS[1]"),
    refused!("UNWATCH", ""),
    refused!("CLIENT", ", 'ID'"),
    // A container's subcommands carry their own flags and arity.
    refused!("CLIENT", ", 'KILL', 'ID', '1'"),
    refused!("CONFIG", ", 'GET', 'maxmemory'"),
    Case {
        name: "containers/subcommands through redis.call",
        setup: &[&["SET", "k1", "12"], &["SET", "k2", "hello"]],
        script: "return {redis.call('OBJECT', 'ENCODING', KEYS[1]),\n\
                 redis.call('OBJECT', 'encoding', KEYS[2]),\n\
                 redis.call('OBJECT', 'REFCOUNT', KEYS[2]),\n\
                 redis.call('OBJECT', 'ENCODING', KEYS[3]),\n\
                 redis.call('PUBSUB', 'NUMPAT'),\n\
                 redis.pcall('OBJECT', 'NOSUCH', KEYS[1]),\n\
                 redis.pcall('OBJECT', 'ENCODING'),\n\
                 redis.pcall('CLUSTER', 'KEYSLOT', KEYS[1])}",
        keys: &["k1", "k2", "k3"],
        ..BASE
    },
    refused!("EVAL", ", 'return 1', 0"),
    refused!("SCRIPT", ", 'FLUSH'"),
    refused!("FUNCTION", ", 'FLUSH'"),
    Case {
        name: "errors/refused command through redis.call",
        script: "return redis.call('MULTI')",
        ..BASE
    },
    Case {
        name: "errors/WRONGTYPE through redis.pcall",
        setup: &[&["RPUSH", "k1", "x"]],
        script: "local e = redis.pcall('GET', KEYS[1])\n\
                 return {type(e), e.err,\n\
                 redis.pcall('INCR', KEYS[1]),\n\
                 redis.pcall('SADD', KEYS[1], 'm')}",
        keys: &["k1"],
        ..BASE
    },
    Case {
        name: "errors/WRONGTYPE through redis.call keeps earlier writes",
        setup: &[&["RPUSH", "k1", "x"]],
        script: "redis.call('SET', KEYS[2], 'written')\n\
                 redis.call('SADD', KEYS[1], 'm')\n\
                 redis.call('SET', KEYS[3], 'not reached')",
        keys: &["k1", "k2", "k3"],
        after: &[&["MGET", "k2", "k3"]],
        ..BASE
    },
    Case {
        name: "errors/unknown command",
        script: "return {redis.pcall('NOSUCHCMD', KEYS[1]), redis.pcall('nosuchcmd')}",
        keys: &["k1"],
        ..BASE
    },
    Case {
        name: "errors/unknown command through redis.call",
        script: "return redis.call('NOSUCHCMD', KEYS[1])",
        keys: &["k1"],
        ..BASE
    },
    Case {
        name: "errors/arity syntax and values",
        setup: &[&["SET", "k1", "abc"]],
        script: "return {redis.pcall('GET'),\n\
                 redis.pcall('SET', KEYS[2], 'v', 'BOGUS'),\n\
                 redis.pcall('INCRBY', KEYS[1], 'abc'),\n\
                 redis.pcall('INCR', KEYS[1]),\n\
                 redis.pcall('LMPOP', 2, KEYS[1]),\n\
                 redis.pcall('ZADD', KEYS[2], 'x', 'm')}",
        keys: &["k1", "k2"],
        after: &[&["EXISTS", "k2"]],
        ..BASE
    },
    // Blocking commands: BLMPOP and BZMPOP may be called and return at once,
    // as if their
    // timeout had passed (timeout 0 would wait for ever outside a script);
    // XREAD refuses BLOCK. Last in the table: a server that really blocked
    // here would be stuck.
    Case {
        name: "blocking/BLMPOP",
        setup: &[&["RPUSH", "k2", "a"]],
        script: "return {redis.call('BLMPOP', 0, 2, KEYS[1], KEYS[3], 'LEFT'),\n\
                 redis.call('BLMPOP', 0, 2, KEYS[1], KEYS[2], 'RIGHT', 'COUNT', 2)}",
        keys: &["k1", "k2", "k3"],
        resp3: true,
        ..BASE
    },
    Case {
        name: "blocking/BZMPOP",
        setup: &[&["ZADD", "k2", "1", "a"]],
        script: "return {redis.call('BZMPOP', 0, 2, KEYS[1], KEYS[3], 'MIN'),\n\
                 redis.call('BZMPOP', 0, 2, KEYS[1], KEYS[2], 'MAX')}",
        keys: &["k1", "k2", "k3"],
        ..BASE
    },
    Case {
        name: "blocking/XREAD BLOCK refused",
        setup: &[&["XADD", "k1", "1-1", "f", "v"]],
        script: "return {redis.pcall('XREAD', 'BLOCK', 0, 'STREAMS', KEYS[1], KEYS[2], '$', '$'),\n\
                 redis.pcall('XREAD', 'BLOCK', 0, 'STREAMS', KEYS[1], KEYS[2], '0', '0')}",
        keys: &["k1", "k2"],
        resp3: true,
        ..BASE
    },
    Case {
        name: "blocking/XREAD BLOCK through redis.call",
        script: "return redis.call('XREAD', 'BLOCK', 100, 'STREAMS', KEYS[1], '$')",
        keys: &["k1"],
        ..BASE
    },
];
