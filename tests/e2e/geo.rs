//! Geospatial commands against a real server: exact replies, the ones
//! redis-server 7 gives for Redis's documented Sicily example (positions,
//! distances, geohashes, searches by radius and box, and the STORE forms).

use damselfly_tests::Server;

#[test]
fn replies_are_exact() {
    let s = Server::start();
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"], ":2\r\n"),
        (&["GEOADD", "Sicily", "200", "100", "bad"], "-ERR invalid longitude,latitude pair 200.000000,100.000000\r\n"),
        (&["GEODIST", "Sicily", "Palermo", "Catania"], "$11\r\n166274.1516\r\n"),
        (&["GEODIST", "Sicily", "Palermo", "Catania", "km"], "$8\r\n166.2742\r\n"),
        (&["GEODIST", "Sicily", "Palermo", "nope"], "$-1\r\n"),
        (&["GEOPOS", "Sicily", "Palermo", "nope"], "*2\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n"),
        (&["GEOHASH", "Sicily", "Palermo", "Catania"], "*2\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n"),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"],
            "*2\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n",
        ),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "COUNT", "1"], "*1\r\n$7\r\nPalermo\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"], "-ERR could not decode requested zset member\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"], "-ERR wrong number of arguments for 'geosearch' command\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "ASC"], "*2\r\n$7\r\nCatania\r\n$7\r\nPalermo\r\n"),
        (&["GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "200", "km", "DESC"], "*2\r\n$7\r\nCatania\r\n$7\r\nPalermo\r\n"),
        (&["TYPE", "Sicily"], "+zset\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

/// GEOSEARCHSTORE and GEORADIUS[BYMEMBER] STORE / STOREDIST, with the
/// destinations on other shards than the source (four shards), and the
/// search commands' argument checks in Redis's order. The replies are
/// redis-server 7.0's but for the doubles of STOREDIST's scores, printed
/// shortest as Redis 7.2 prints them (docs/COMPATIBILITY.md).
#[test]
fn store_forms_and_errors_are_exact() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"], ":2\r\n"),
        // STORE keeps the geohash scores, STOREDIST the distances in the unit asked; the last of them wins.
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst1"], ":2\r\n"),
        (
            &["ZRANGE", "dst1", "0", "-1", "WITHSCORES"],
            "*4\r\n$7\r\nPalermo\r\n$16\r\n3479099956230698\r\n$7\r\nCatania\r\n$16\r\n3479447370796909\r\n",
        ),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst2"], ":2\r\n"),
        (
            &["ZRANGE", "dst2", "0", "-1", "WITHSCORES"],
            "*4\r\n$7\r\nCatania\r\n$16\r\n56.4412578701582\r\n$7\r\nPalermo\r\n$18\r\n190.44242984775784\r\n",
        ),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst2", "STORE", "dst3"], ":2\r\n"),
        (&["EXISTS", "dst3"], ":1\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "STORE", "dst4"], ":1\r\n"),
        (&["ZRANGE", "dst4", "0", "-1"], "*1\r\n$7\r\nCatania\r\n"),
        (&["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STOREDIST", "dst5", "DESC"], ":2\r\n"),
        (&["ZRANGE", "dst5", "0", "-1", "WITHSCORES"], "*4\r\n$7\r\nPalermo\r\n$1\r\n0\r\n$7\r\nCatania\r\n$18\r\n166.27415156960032\r\n"),
        (&["GEOSEARCHSTORE", "dst6", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"], ":2\r\n"),
        (
            &["ZRANGE", "dst6", "0", "-1", "WITHSCORES"],
            "*4\r\n$7\r\nPalermo\r\n$16\r\n3479099956230698\r\n$7\r\nCatania\r\n$16\r\n3479447370796909\r\n",
        ),
        (
            &["GEOSEARCHSTORE", "dst7", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "STOREDIST", "ASC", "COUNT", "1"],
            ":1\r\n",
        ),
        (&["ZRANGE", "dst7", "0", "-1", "WITHSCORES"], "*2\r\n$7\r\nCatania\r\n$16\r\n56.4412578701582\r\n"),
        // Nothing found, or no source: the destination is deleted.
        (&["GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "dst4"], ":0\r\n"),
        (&["EXISTS", "dst4"], ":0\r\n"),
        (&["GEORADIUS", "nokey", "15", "37", "1", "km", "STORE", "dst1"], ":0\r\n"),
        (&["EXISTS", "dst1"], ":0\r\n"),
        (&["GEORADIUSBYMEMBER", "nokey", "x", "x", "km", "STORE", "dst5"], ":0\r\n"),
        (&["EXISTS", "dst5"], ":0\r\n"),
        (&["GEOSEARCHSTORE", "dst7", "nokey", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"], ":0\r\n"),
        (&["EXISTS", "dst7"], ":0\r\n"),
        // The destination loses its old value and TTL.
        (&["SET", "dst9", "x", "EX", "100"], "+OK\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst9"], ":2\r\n"),
        (&["TTL", "dst9"], ":-1\r\n"),
        (&["TYPE", "dst9"], "+zset\r\n"),
        // Errors, in Redis's order.
        (
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst1", "WITHDIST"],
            "-ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options\r\n",
        ),
        (
            &["GEOSEARCHSTORE", "dst7", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "WITHDIST"],
            "-ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options\r\n",
        ),
        (
            &["GEOSEARCHSTORE", "dst7", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "STORE", "x"],
            "-ERR syntax error\r\n",
        ),
        (&["GEOSEARCHSTORE", "dst7", "Sicily", "BYRADIUS", "1", "km"], "-ERR wrong number of arguments for 'geosearchstore' command\r\n"),
        (&["GEOSEARCHSTORE", "dst7", "Sicily", "FROMMEMBER", "Palermo"], "-ERR wrong number of arguments for 'geosearchstore' command\r\n"),
        (&["SET", "str", "x"], "+OK\r\n"),
        (
            &["GEOSEARCHSTORE", "dst7", "str", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"],
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            &["GEOSEARCH", "str", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "BOGUS"],
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (&["GEORADIUSBYMEMBER", "Sicily", "nope", "200", "km", "STORE", "dst5"], "-ERR could not decode requested zset member\r\n"),
        (&["GEORADIUSBYMEMBER", "Sicily", "Palermo", "x", "km", "STORE", "dst5"], "-ERR need numeric radius\r\n"),
        (&["GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "200", "km", "STORE", "dst5"], "-ERR syntax error\r\n"),
        (&["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst5"], "-ERR syntax error\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"], "-ERR syntax error\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "BYBOX", "1", "1", "km"], "-ERR syntax error\r\n"),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
            "*2\r\n$7\r\nPalermo\r\n$7\r\nCatania\r\n",
        ),
        (&["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"], "-ERR syntax error\r\n"),
        (&["geosearch", "Sicily", "FROMLONLAT", "15", "37", "WITHDIST"], "-ERR wrong number of arguments for 'geosearch' command\r\n"),
        (&["GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "200", "km", "WITHDIST"], "*0\r\n"),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ANY"],
            "-ERR the ANY argument requires COUNT argument\r\n",
        ),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "x", "1", "km"], "-ERR need numeric width\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"], "-ERR need numeric height\r\n"),
        (&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "-1", "1", "km"], "-ERR height or width cannot be negative\r\n"),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "parsec"],
            "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n",
        ),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "FROMLONLAT", "1", "1"], "-ERR syntax error\r\n"),
        (&["GEORADIUS", "Sicily", "x", "37", "200", "km"], "-ERR value is not a valid float\r\n"),
        (&["GEORADIUS", "Sicily", "200", "37", "200", "km"], "-ERR invalid longitude,latitude pair 200.000000,37.000000\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "x", "km"], "-ERR need numeric radius\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"], "-ERR COUNT must be > 0\r\n"),
        (&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE"], "-ERR syntax error\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "command {cmd:?}");
    }
}

/// Searches without an order reply in redis-server's order (the cells
/// around the center, each in geohash order), ANY finds the members it
/// finds, and a search reads only the cells it needs: thousands of stores
/// over Europe, searched side by side with redis-server 7.0.
#[test]
fn unordered_and_any_searches_match_redis_server() {
    let s = Server::start();
    let r = damselfly_tests::Redis::start();
    let (mut ours, mut theirs) = (s.raw(), r.raw());
    let mut add = vec!["GEOADD".to_string(), "stores".to_string()];
    let mut seed = 7u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..3000 {
        add.push(format!("{:.6}", -10.0 + 40.0 * next()));
        add.push(format!("{:.6}", 35.0 + 25.0 * next()));
        add.push(format!("store:{i}"));
    }
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    assert_eq!(ours.cmd(&add), theirs.cmd(&add));
    let searches: &[&[&str]] = &[
        &["GEOSEARCH", "stores", "FROMLONLAT", "13.4", "52.5", "BYRADIUS", "300", "km"],
        &["GEOSEARCH", "stores", "FROMLONLAT", "2.35", "48.85", "BYBOX", "400", "250", "km", "WITHCOORD"],
        &["GEOSEARCH", "stores", "FROMMEMBER", "store:17", "BYRADIUS", "150", "km", "COUNT", "5", "ANY"],
        &["GEOSEARCH", "stores", "FROMLONLAT", "10", "45", "BYRADIUS", "2000", "km", "COUNT", "40", "ANY", "WITHDIST"],
        &["GEORADIUS", "stores", "0", "40", "500", "km", "WITHHASH"],
        &["GEORADIUSBYMEMBER", "stores", "store:2999", "80", "km"],
        &["GEOSEARCH", "stores", "FROMLONLAT", "5", "50", "BYRADIUS", "6000", "km", "COUNT", "10", "ANY"],
    ];
    ours.same_replies(&mut theirs, searches);
    // Redis's own case: a 5000 km radius around a point near the pole.
    let pole: &[&[&str]] =
        &[&["GEOADD", "k1", "45", "65", "n1", "-135", "85.05", "n2"], &["GEORADIUSBYMEMBER", "k1", "n1", "5009431", "m"]];
    ours.same_replies(&mut theirs, pole);
    assert_eq!(ours.cmd(pole[1]), "*2\r\n$2\r\nn1\r\n$2\r\nn2\r\n");
}
