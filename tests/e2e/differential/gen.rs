//! Random command generator for the differential test: commands over a
//! small key space with values chosen to hit parser edge cases. Sorted-set
//! commands are made in `zsets`, stream commands in `streams`.

#[path = "gen/streams.rs"]
mod streams;
#[path = "gen/zsets.rs"]
mod zsets;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub type Cmd = Vec<Vec<u8>>;

/// Eight keys, four of them sharing the `{t}` hash tag.
pub const KEYS: &[&str] = &["a", "b", "c", "d", "{t}1", "{t}2", "{t}3", "{t}4"];
/// The keys geo commands use (and no other command).
pub const GEO_KEYS: &[&str] = &["g1", "g2", "g3", "{t}g"];
/// The keys stream commands use (and no other command).
pub const STREAM_KEYS: &[&str] = &["s1", "s2", "{t}s"];
const FIELDS: &[&str] = &["f1", "f2", "f3", "x", "", "1"];
const MEMBERS: &[&str] = &["m1", "m2", "m3", "a", "b", "c", "", "1"];
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "-0",
    "1e3",
    "3.14",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "10",
    "2",
    "-5",
    "007",
    " 1",
    "1 ",
    "0x10",
    "abc",
    "hello",
    "a b",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "0.1",
    "5.0e3",
    "\x00\u{7f}",
];
const INTS: &[&str] = &[
    "-100",
    "-5",
    "-3",
    "-2",
    "-1",
    "0",
    "1",
    "2",
    "3",
    "5",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "abc",
    "1.5",
    "",
    "-0",
    "+1",
    " 2",
];
const FLOATS: &[&str] = &["0", "1", "-1", "1.5", "-2.5", "1e3", "inf", "-inf", "+inf", "nan", "abc", "0.1", "-0", "1e400", "2", "3", "10"];
const BOUNDS: &[&str] = &["-inf", "+inf", "0", "1", "(1", "2", "(2", "-1", "3.5", "(inf", "abc", "nan", "(", "10"];
const LEX: &[&str] = &["-", "+", "[a", "(a", "[b", "(c", "[m1", "(m2", "[", "a", "[", "(", "[z"];

pub struct Gen {
    rng: StdRng,
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen { rng: StdRng::seed_from_u64(seed) }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn pick(&mut self, from: &[&str]) -> Vec<u8> {
        b(from[self.below(from.len())])
    }
    fn key(&mut self) -> Vec<u8> {
        self.pick(KEYS)
    }
    fn field(&mut self) -> Vec<u8> {
        self.pick(FIELDS)
    }
    fn member(&mut self) -> Vec<u8> {
        self.pick(MEMBERS)
    }
    fn val(&mut self) -> Vec<u8> {
        self.pick(VALUES)
    }
    fn small(&mut self) -> Vec<u8> {
        // Mostly small, well-formed integers; sometimes an edge case.
        if self.chance(0.8) {
            b(&self.rng.random_range(-6i64..8).to_string())
        } else {
            self.pick(INTS)
        }
    }
    fn float(&mut self) -> Vec<u8> {
        if self.chance(0.6) {
            b(&self.rng.random_range(-5i64..6).to_string())
        } else {
            self.pick(FLOATS)
        }
    }
    /// INCRBYFLOAT's increment: no values beyond a double's range, which
    /// Redis's long doubles accept (a documented difference).
    fn incr_float(&mut self) -> Vec<u8> {
        let f = self.float();
        if f == b"1e400" {
            b("1.5")
        } else {
            f
        }
    }
    fn bound(&mut self) -> Vec<u8> {
        self.pick(BOUNDS)
    }
    fn lex(&mut self) -> Vec<u8> {
        self.pick(LEX)
    }
    fn keys(&mut self, min: usize) -> Vec<Vec<u8>> {
        let n = min + self.below(3);
        (0..n).map(|_| self.key()).collect()
    }
    /// A far-away TTL: nothing the test sets may expire while it runs, so
    /// both servers see the same keys whatever their speed.
    fn secs(&mut self) -> Vec<u8> {
        match self.below(8) {
            0 => b("0"),
            1 => b("-5"),
            2 => b("abc"),
            3 => b("9223372036854775807"),
            _ => b(&self.rng.random_range(100i64..1_000_000).to_string()),
        }
    }
    fn millis(&mut self) -> Vec<u8> {
        match self.below(8) {
            0 => b("0"),
            1 => b("-5"),
            2 => b("1.5"),
            _ => b(&self.rng.random_range(100_000i64..1_000_000_000).to_string()),
        }
    }
    /// Absolute times: the past (the key goes at once) or far future.
    fn unix(&mut self, ms: bool) -> Vec<u8> {
        let v: i64 = match self.below(4) {
            0 => 1,
            1 => 4_102_444_800,
            2 => 4_102_444_900,
            _ => 5_000_000_000,
        };
        b(&if ms { v * 1000 } else { v }.to_string())
    }

    /// One random command; sometimes with an argument too many or too few.
    pub fn command(&mut self) -> Cmd {
        let mut c = self.command_shape();
        // (SPOP without its count would pop a random member.)
        if c[0] != b"SPOP" && self.chance(0.02) {
            if c.len() > 1 && self.chance(0.5) {
                c.pop();
            } else {
                let extra = self.val();
                c.push(extra);
            }
        }
        c
    }

    fn command_shape(&mut self) -> Cmd {
        match self.below(23) {
            21 | 22 => self.stream_cmd(),
            0..=3 => self.string_cmd(),
            4 | 5 => self.key_cmd(),
            6 | 7 => self.hash_cmd(),
            8 | 9 => self.list_cmd(),
            10 | 11 => self.set_cmd(),
            12..=15 => self.zset_cmd(),
            16 | 17 => self.bit_cmd(),
            18 => self.geo_cmd(),
            _ => self.hll_cmd(),
        }
    }

    /// A geo command on the geo keys (which only geo commands touch, so
    /// their scores stay geohashes or STOREDIST distances), centered
    /// around Sicily; positions are random to the micro-degree, so no two
    /// members are at one distance from a center (whose order Redis leaves
    /// open).
    fn geo_cmd(&mut self) -> Cmd {
        let k = self.pick(GEO_KEYS);
        let lon = |g: &mut Gen| b(&format!("{:.6}", 12.0 + g.rng.random_range(0.0..4.0)));
        let lat = |g: &mut Gen| b(&format!("{:.6}", 36.0 + g.rng.random_range(0.0..3.0)));
        let unit = |g: &mut Gen| g.pick(&["m", "km", "km", "mi", "ft", "KM", "parsec"]);
        let radius = |g: &mut Gen| if g.chance(0.9) { b(&g.below(300).to_string()) } else { g.pick(&["-1", "x", "0", "1e3"]) };
        // Replies in the order redis-server walks its geohash cells, the
        // members ANY finds included (stored as well).
        let opts = |g: &mut Gen, c: &mut Cmd, store: bool| {
            for _ in 0..g.below(4) {
                match g.below(if store { 5 } else { 7 }) {
                    0 => c.push(g.pick(&["WITHDIST", "WITHHASH", "WITHCOORD"])),
                    1 | 2 => c.push(g.pick(&["ASC", "DESC"])),
                    3 | 4 => {
                        c.push(b("COUNT"));
                        c.push(g.pick(&["1", "2", "3", "0", "x"]));
                        if g.chance(0.2) {
                            c.push(b("ANY"));
                        }
                    }
                    5 => c.push(b("ANY")),
                    _ => c.push(g.pick(&["BOGUS", "STORE", "WITHDIST"])),
                }
            }
        };
        match self.below(10) {
            0..=2 => {
                let mut c = vec![b("GEOADD"), k];
                for _ in 0..1 + self.below(3) {
                    if self.chance(0.05) {
                        c.extend([b("200"), b("100")]);
                    } else {
                        c.extend([lon(self), lat(self)]);
                    }
                    c.push(self.member());
                }
                c
            }
            3 => vec![b("GEODIST"), k, self.member(), self.member(), unit(self)],
            4 => vec![b("GEOPOS"), k, self.member(), self.member()],
            5 | 6 => {
                let store = self.chance(0.4);
                let mut c = if store { vec![b("GEOSEARCHSTORE"), self.pick(GEO_KEYS), k] } else { vec![b("GEOSEARCH"), k] };
                if self.chance(0.5) {
                    c.extend([b("FROMMEMBER"), self.member()]);
                } else {
                    c.extend([b("FROMLONLAT"), lon(self), lat(self)]);
                }
                if self.chance(0.5) {
                    c.extend([b("BYRADIUS"), radius(self), unit(self)]);
                } else {
                    c.extend([b("BYBOX"), radius(self), radius(self), unit(self)]);
                }
                opts(self, &mut c, store);
                if store && self.chance(0.5) {
                    c.push(b("STOREDIST"));
                }
                c
            }
            _ => {
                let mut c = if self.chance(0.5) {
                    vec![b(if self.chance(0.7) { "GEORADIUS" } else { "GEORADIUS_RO" }), k, lon(self), lat(self), radius(self), unit(self)]
                } else {
                    let name = if self.chance(0.7) { "GEORADIUSBYMEMBER" } else { "GEORADIUSBYMEMBER_RO" };
                    vec![b(name), k, self.member(), radius(self), unit(self)]
                };
                let store = self.chance(0.4);
                opts(self, &mut c, store);
                if store {
                    c.extend([self.pick(&["STORE", "STOREDIST"]), self.pick(GEO_KEYS)]);
                }
                c
            }
        }
    }

    fn string_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(24) {
            0..=2 => {
                let mut c = vec![b("SET"), k, self.val()];
                for opt in ["NX", "XX", "GET", "EX", "PX", "KEEPTTL", "EXAT"] {
                    if self.chance(0.15) {
                        c.push(b(opt));
                        match opt {
                            "EX" => c.push(self.secs()),
                            "PX" => c.push(self.millis()),
                            // Only future times: a key SET already expired
                            // stays counted by Redis's DBSIZE until reclaimed.
                            "EXAT" => c.push(b(&(4_102_444_800 + self.below(1000)).to_string())),
                            _ => {}
                        }
                    }
                }
                c
            }
            3 => vec![b("GET"), k],
            4 => vec![b("GETSET"), k, self.val()],
            5 => vec![b("GETDEL"), k],
            6 => vec![b("APPEND"), k, self.val()],
            7 => vec![b("INCR"), k],
            8 => vec![b("DECR"), k],
            9 => vec![b("INCRBY"), k, self.small()],
            10 => vec![b("DECRBY"), k, self.small()],
            11 => vec![b("INCRBYFLOAT"), k, self.incr_float()],
            12 => {
                let off = if self.chance(0.9) { self.small() } else { self.pick(&["536870912", "4294967296", "-1"]) };
                vec![b("SETRANGE"), k, off, self.val()]
            }
            13 => vec![b("GETRANGE"), k, self.small(), self.small()],
            14 => vec![b("STRLEN"), k],
            15 => {
                let mut c = vec![b("MSET")];
                for _ in 0..1 + self.below(3) {
                    c.push(self.key());
                    c.push(self.val());
                }
                c
            }
            16 => {
                let mut c = vec![b("MGET")];
                c.extend(self.keys(1));
                c
            }
            17 => {
                let mut c = vec![b("MSETNX")];
                for _ in 0..1 + self.below(3) {
                    c.push(self.key());
                    c.push(self.val());
                }
                c
            }
            18 => vec![b("SETNX"), k, self.val()],
            19 => vec![b("SETEX"), k, self.secs(), self.val()],
            20 => {
                let mut c = vec![b("GETEX"), k];
                match self.below(4) {
                    0 => c.extend([b("EX"), self.secs()]),
                    1 => c.push(b("PERSIST")),
                    2 => c.extend([b("PX"), self.millis()]),
                    _ => {}
                }
                c
            }
            22 => {
                let mut c = vec![b("LCS"), k, self.key()];
                match self.below(4) {
                    0 => c.push(b("LEN")),
                    1 => c.push(b("IDX")),
                    2 => c.extend([b("IDX"), b("MINMATCHLEN"), self.small(), b("WITHMATCHLEN")]),
                    _ => {}
                }
                c
            }
            23 => vec![b("SUBSTR"), k, self.small(), self.small()],
            _ => vec![b("PSETEX"), k, self.millis(), self.val()],
        }
    }

    fn key_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(23) {
            0 => {
                let mut c = vec![b("DEL")];
                c.extend(self.keys(1));
                c
            }
            1 => {
                let mut c = vec![b("EXISTS")];
                c.extend(self.keys(1));
                c
            }
            2 | 3 => vec![b("TYPE"), k],
            4 | 5 => {
                let (name, t) = if self.chance(0.5) { ("EXPIRE", self.secs()) } else { ("PEXPIRE", self.millis()) };
                let mut c = vec![b(name), k, t];
                if self.chance(0.4) {
                    c.push(self.pick(&["NX", "XX", "GT", "LT", "nx", "BAD"]));
                }
                c
            }
            6 => {
                let ms = self.chance(0.5);
                let mut c = vec![b(if ms { "PEXPIREAT" } else { "EXPIREAT" }), k, self.unix(ms)];
                if self.chance(0.5) {
                    c.push(self.pick(&["NX", "XX", "GT", "LT"]));
                }
                c
            }
            7 => vec![b("TTL"), k],
            8 => vec![b("PTTL"), k],
            9 => vec![b("PERSIST"), k],
            10 => vec![b("RENAME"), k, self.key()],
            11 => vec![b("RENAMENX"), k, self.key()],
            12 => {
                let mut c = vec![b("COPY"), k, self.key()];
                if self.chance(0.5) {
                    c.push(b("REPLACE"));
                }
                c
            }
            13 => vec![b("DBSIZE")],
            14 => vec![b("KEYS"), self.pick(&["*", "{t}*", "?", "[ab]", "*1"])],
            15 => vec![b("RANDOMKEY")],
            16 => {
                let mut c = vec![b("UNLINK")];
                c.extend(self.keys(1));
                c
            }
            17 => {
                let mut c = vec![b("TOUCH")];
                c.extend(self.keys(1));
                c
            }
            18 => vec![b("EXPIRETIME"), k],
            19 => vec![b("PEXPIRETIME"), k],
            _ => self.sort_cmd(k),
        }
    }

    /// SORT / SORT_RO with random options; patterns form key names from
    /// the elements (`*` alone names the element's own key). A numeric
    /// sort never stores (Redis may refuse an empty element after an
    /// earlier out-of-range conversion, known.rs, and the stored list
    /// would then differ), nor does an ALPHA sort BY a pattern, whose ties
    /// Redis leaves in any order.
    fn sort_cmd(&mut self, k: Vec<u8>) -> Cmd {
        let ro = self.chance(0.2);
        let mut c = vec![b(if ro { "SORT_RO" } else { "SORT" }), k];
        let alpha = self.chance(0.5);
        let nosort = self.chance(0.2);
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        let by_pattern = !nosort && self.chance(0.4);
        if nosort {
            opts.push(vec![b("BY"), self.pick(&["nosort", "x"])]);
        } else if by_pattern {
            opts.push(vec![b("BY"), self.pick(&["*", "{t}*", "*->f1", "{t}*->x", "*->", "w*"])]);
        }
        // (Which ties an ALPHA sort BY a pattern keeps in a LIMIT is
        // unspecified too.)
        if !(alpha && by_pattern) && self.chance(0.3) {
            opts.push(vec![b("LIMIT"), self.small(), self.small()]);
        }
        for _ in 0..self.below(3) {
            opts.push(vec![b("GET"), self.pick(&["#", "*", "{t}*", "*->f1", "*->x", "nostar"])]);
        }
        if self.chance(0.4) {
            opts.push(vec![self.pick(&["ASC", "DESC", "desc"])]);
        }
        if alpha {
            opts.push(vec![b("ALPHA")]);
        }
        // Stored only when the order is fully specified.
        if ((alpha && !by_pattern) || nosort) && !ro && self.chance(0.3) {
            opts.push(vec![b("STORE"), self.key()]);
        }
        if self.chance(0.03) {
            opts.push(vec![self.pick(&["BOGUS", "LIMIT", "GET"])]);
        }
        // Options in any order.
        for i in (1..opts.len()).rev() {
            let j = self.below(i + 1);
            opts.swap(i, j);
        }
        c.extend(opts.into_iter().flatten());
        c
    }

    fn hash_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(17) {
            0..=2 => {
                let mut c = vec![b(if self.chance(0.8) { "HSET" } else { "HMSET" }), k];
                for _ in 0..1 + self.below(3) {
                    c.push(self.field());
                    c.push(self.val());
                }
                c
            }
            3 => vec![b("HGET"), k, self.field()],
            4 => {
                let mut c = vec![b("HDEL"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.field()));
                c
            }
            5 => vec![b("HGETALL"), k],
            6 => vec![b("HKEYS"), k],
            7 => vec![b("HVALS"), k],
            8 => vec![b("HLEN"), k],
            9 => vec![b("HEXISTS"), k, self.field()],
            10 => vec![b("HINCRBY"), k, self.field(), self.small()],
            11 => vec![b("HINCRBYFLOAT"), k, self.field(), self.incr_float()],
            12 => vec![b("HSETNX"), k, self.field(), self.val()],
            13 => vec![b("HSTRLEN"), k, self.field()],
            14 => {
                let mut c = vec![b("HMGET"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.field()));
                c
            }
            15 => {
                let mut c = vec![b("HRANDFIELD"), k];
                if self.chance(0.6) {
                    c.push(self.small());
                    if self.chance(0.5) {
                        c.push(b("WITHVALUES"));
                    }
                }
                c
            }
            _ => vec![b("HSET"), k],
        }
    }

    fn list_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(20) {
            0..=3 => {
                let name = self.pick(&["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]);
                let mut c = vec![name, k];
                c.extend((0..1 + self.below(3)).map(|_| self.member()));
                c
            }
            4 => {
                let mut c = vec![self.pick(&["LPOP", "RPOP"]), k];
                if self.chance(0.4) {
                    c.push(self.small());
                }
                c
            }
            5 | 6 => vec![b("LRANGE"), k, self.small(), self.small()],
            7 => vec![b("LLEN"), k],
            8 => vec![b("LINDEX"), k, self.small()],
            9 => vec![b("LSET"), k, self.small(), self.member()],
            10 => vec![b("LREM"), k, self.small(), self.member()],
            11 => vec![b("LTRIM"), k, self.small(), self.small()],
            12 => vec![b("LINSERT"), k, self.pick(&["BEFORE", "AFTER", "before", "MIDDLE"]), self.member(), self.member()],
            13 | 14 => {
                let mut c = vec![b("LPOS"), k, self.member()];
                for opt in ["RANK", "COUNT", "MAXLEN"] {
                    if self.chance(0.3) {
                        c.push(b(opt));
                        c.push(self.small());
                    }
                }
                c
            }
            15 => {
                let (a, z) = (self.pick(&["LEFT", "RIGHT", "left", "UP"]), self.pick(&["LEFT", "RIGHT"]));
                vec![b("LMOVE"), k, self.key(), a, z]
            }
            16 => vec![b("RPOPLPUSH"), k, self.key()],
            17 => {
                let mut c = vec![b("LMPOP"), self.small()];
                c.extend(self.keys(1));
                c.push(self.pick(&["LEFT", "RIGHT"]));
                if self.chance(0.4) {
                    c.extend([b("COUNT"), self.small()]);
                }
                c
            }
            _ => vec![b("LINDEX"), k, self.small()],
        }
    }

    fn set_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(20) {
            0..=3 => {
                let mut c = vec![b("SADD"), k];
                c.extend((0..1 + self.below(4)).map(|_| self.member()));
                c
            }
            4 => {
                let mut c = vec![b("SREM"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.member()));
                c
            }
            5 => vec![b("SMEMBERS"), k],
            6 => vec![b("SISMEMBER"), k, self.member()],
            7 => {
                let mut c = vec![b("SMISMEMBER"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.member()));
                c
            }
            8 => vec![b("SCARD"), k],
            9..=11 => {
                let mut c = vec![self.pick(&["SINTER", "SUNION", "SDIFF"])];
                c.extend(self.keys(1));
                c
            }
            12 | 13 => {
                let mut c = vec![self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), k];
                c.extend(self.keys(1));
                c
            }
            14 => {
                let n = 1 + self.below(3);
                let mut c = vec![b("SINTERCARD"), if self.chance(0.9) { b(&n.to_string()) } else { self.small() }];
                c.extend((0..n).map(|_| self.key()));
                if self.chance(0.4) {
                    c.extend([b("LIMIT"), self.small()]);
                }
                c
            }
            15 => vec![b("SMOVE"), k, self.key(), self.member()],
            16 => {
                let mut c = vec![b("SRANDMEMBER"), k];
                if self.chance(0.6) {
                    c.push(self.small());
                }
                c
            }
            // SPOP takes random members: only the count-all form keeps the
            // two servers' data equal.
            17 => vec![b("SPOP"), k, b("100")],
            _ => vec![b("SCARD"), k],
        }
    }

    fn bit_cmd(&mut self) -> Cmd {
        let k = self.key();
        let off = |g: &mut Gen| if g.chance(0.95) { b(&g.below(40).to_string()) } else { g.pick(&["-1", "4294967296", "x"]) };
        match self.below(10) {
            0 | 1 => {
                let o = off(self);
                vec![b("SETBIT"), k, o, self.pick(&["0", "1", "1", "2"])]
            }
            2 => {
                let o = off(self);
                vec![b("GETBIT"), k, o]
            }
            3 | 4 => {
                let mut c = vec![b("BITCOUNT"), k];
                if self.chance(0.6) {
                    c.extend([self.small(), self.small()]);
                    if self.chance(0.3) {
                        c.push(self.pick(&["BYTE", "BIT"]));
                    }
                }
                c
            }
            5 | 6 => {
                let mut c = vec![b("BITPOS"), k, self.pick(&["0", "1", "2"])];
                if self.chance(0.6) {
                    c.push(self.small());
                    if self.chance(0.5) {
                        c.push(self.small());
                        if self.chance(0.3) {
                            c.push(self.pick(&["BYTE", "BIT"]));
                        }
                    }
                }
                c
            }
            8 | 9 => self.bitfield(k),
            _ => {
                let op = self.pick(&["AND", "OR", "XOR", "NOT", "and", "NAND"]);
                let mut c = vec![b("BITOP"), op, k];
                c.extend(self.keys(1));
                c
            }
        }
    }

    /// BITFIELD (or BITFIELD_RO) with one to four operations: mostly valid
    /// types, offsets and values, some at the edges of their ranges.
    fn bitfield(&mut self, k: Vec<u8>) -> Cmd {
        let ro = self.chance(0.2);
        let mut c = vec![b(if ro { "BITFIELD_RO" } else { "BITFIELD" }), k];
        for _ in 0..1 + self.below(4) {
            let ty = if self.chance(0.9) {
                let signed = self.chance(0.5);
                let bits = 1 + self.below(if signed { 64 } else { 63 });
                b(&format!("{}{bits}", if signed { "i" } else { "u" }))
            } else {
                self.pick(&["u64", "i65", "i0", "x8", "u"])
            };
            let off = if self.chance(0.9) {
                b(&format!("{}{}", if self.chance(0.3) { "#" } else { "" }, self.below(24)))
            } else {
                self.pick(&["-1", "#-1", "x", "4294967296"])
            };
            let val = if self.chance(0.7) { b(&self.rng.random_range(-300i64..300).to_string()) } else { self.pick(INTS) };
            match self.below(if ro { 6 } else { 5 }) {
                0 | 1 => c.extend([b("GET"), ty, off]),
                2 => c.extend([b("SET"), ty, off, val]),
                3 => c.extend([b("INCRBY"), ty, off, val]),
                4 => c.extend([b("OVERFLOW"), self.pick(&["WRAP", "SAT", "FAIL", "sat", "BAD"])]),
                _ => c.extend([b("GET"), ty, off]),
            }
        }
        c
    }

    fn hll_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(4) {
            0 | 1 => {
                let mut c = vec![b("PFADD"), k];
                c.extend((0..self.below(4)).map(|_| self.member()));
                c
            }
            2 => {
                let mut c = vec![b("PFCOUNT")];
                c.extend(self.keys(1));
                c
            }
            _ => {
                let mut c = vec![b("PFMERGE"), k];
                c.extend(self.keys(0));
                c
            }
        }
    }
}
