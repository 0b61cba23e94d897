//! Geospatial commands against a real server: exact replies, the ones
//! redis-server 7 gives for Redis's documented Sicily example (positions,
//! distances, geohashes, searches by radius and box).

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

/// GEORADIUS declares its STORE / STOREDIST key (as Redis does, for clients
/// routing by key specs) though STORE is refused: with the destination on
/// another shard the command must still get an error, never a bare OK, and
/// the connection must stay in step.
#[test]
fn store_is_refused_on_any_shard() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo"]), ":1\r\n");
    for i in 0..16 {
        let dst = format!("dst{i}");
        for (cmd, word) in [("GEORADIUS", "STORE"), ("GEORADIUS", "STOREDIST")] {
            let got = c.cmd(&[cmd, "Sicily", "15", "37", "200", "km", word, &dst]);
            assert!(got.starts_with('-'), "{cmd} ... {word} {dst}: {got:?}");
        }
        let got = c.cmd(&["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STORE", &dst]);
        assert!(got.starts_with('-'), "GEORADIUSBYMEMBER ... STORE {dst}: {got:?}");
    }
    assert_eq!(c.cmd(&["GEORADIUS", "Sicily", "15", "37", "200", "km"]), "*1\r\n$7\r\nPalermo\r\n");
}
