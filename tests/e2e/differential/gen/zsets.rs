//! The generator's sorted-set commands: ZADD's flags, the score, lex and
//! rank ranges in all their forms, the multi-key algebra and the pops.

use super::*;

impl Gen {
    pub(super) fn zset_cmd(&mut self) -> Cmd {
        let k = self.key();
        match self.below(26) {
            0..=3 => {
                let mut c = vec![b("ZADD"), k];
                for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                    if self.chance(0.1) {
                        c.push(b(opt));
                    }
                }
                for _ in 0..1 + self.below(3) {
                    c.push(self.float());
                    c.push(self.member());
                }
                c
            }
            4 => vec![b("ZINCRBY"), k, self.float(), self.member()],
            5 => vec![b("ZSCORE"), k, self.member()],
            6 => {
                let mut c = vec![b("ZMSCORE"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.member()));
                c
            }
            7 => vec![self.pick(&["ZRANK", "ZREVRANK"]), k, self.member()],
            8 => vec![b("ZCARD"), k],
            9 => vec![b("ZCOUNT"), k, self.bound(), self.bound()],
            10 => vec![b("ZLEXCOUNT"), k, self.lex(), self.lex()],
            11..=13 => {
                let mut c = vec![b("ZRANGE"), k];
                let mode = self.below(3);
                match mode {
                    0 => c.extend([self.small(), self.small()]),
                    1 => {
                        c.extend([self.bound(), self.bound(), b("BYSCORE")]);
                    }
                    _ => {
                        c.extend([self.lex(), self.lex(), b("BYLEX")]);
                    }
                }
                if self.chance(0.3) {
                    c.push(b("REV"));
                }
                if self.chance(0.3) {
                    c.extend([b("LIMIT"), self.small(), self.small()]);
                }
                if self.chance(0.3) {
                    c.push(b("WITHSCORES"));
                }
                c
            }
            14 => {
                let mut c = vec![self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), k, self.bound(), self.bound()];
                if self.chance(0.3) {
                    c.push(b("WITHSCORES"));
                }
                if self.chance(0.3) {
                    c.extend([b("LIMIT"), self.small(), self.small()]);
                }
                c
            }
            15 => vec![self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), k, self.lex(), self.lex()],
            16 => {
                let mut c = vec![self.pick(&["ZREVRANGE", "ZRANGE"]), k, self.small(), self.small()];
                if self.chance(0.4) {
                    c.push(b("WITHSCORES"));
                }
                c
            }
            17 => {
                let mut c = vec![b("ZREM"), k];
                c.extend((0..1 + self.below(3)).map(|_| self.member()));
                c
            }
            18 => {
                let mut c = vec![self.pick(&["ZPOPMIN", "ZPOPMAX"]), k];
                if self.chance(0.5) {
                    c.push(self.small());
                }
                c
            }
            19 => {
                let n = 1 + self.below(3);
                let name = self.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
                let diff = name == b("ZDIFFSTORE");
                let mut c = vec![name, k, if self.chance(0.9) { b(&n.to_string()) } else { self.small() }];
                c.extend((0..n).map(|_| self.key()));
                if !diff && self.chance(0.4) {
                    c.push(b("WEIGHTS"));
                    c.extend((0..n).map(|_| self.float()));
                }
                if !diff && self.chance(0.4) {
                    c.extend([b("AGGREGATE"), self.pick(&["SUM", "MIN", "MAX", "max", "AVG"])]);
                }
                c
            }
            20 => {
                let n = 1 + self.below(3);
                let mut c = vec![self.pick(&["ZUNION", "ZINTER", "ZDIFF"]), b(&n.to_string())];
                c.extend((0..n).map(|_| self.key()));
                if self.chance(0.4) {
                    c.push(b("WITHSCORES"));
                }
                c
            }
            21 => {
                let mut c = vec![b("ZRANGESTORE"), k, self.key()];
                if self.chance(0.5) {
                    c.extend([self.small(), self.small()]);
                } else {
                    c.extend([self.bound(), self.bound(), b("BYSCORE")]);
                    if self.chance(0.3) {
                        c.extend([b("LIMIT"), self.small(), self.small()]);
                    }
                }
                if self.chance(0.2) {
                    c.push(b("REV"));
                }
                c
            }
            22 => {
                let name = self.pick(&["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"]);
                let (lo, hi) = match name.as_slice() {
                    b"ZREMRANGEBYRANK" => (self.small(), self.small()),
                    b"ZREMRANGEBYSCORE" => (self.bound(), self.bound()),
                    _ => (self.lex(), self.lex()),
                };
                vec![name, k, lo, hi]
            }
            24 => {
                let mut c = vec![b("ZMPOP"), self.small()];
                c.extend(self.keys(1));
                c.push(self.pick(&["MIN", "MAX", "min", "MID"]));
                if self.chance(0.4) {
                    c.extend([b("COUNT"), self.small()]);
                }
                c
            }
            25 => {
                let n = 1 + self.below(3);
                let mut c = vec![b("ZINTERCARD"), if self.chance(0.9) { b(&n.to_string()) } else { self.small() }];
                c.extend((0..n).map(|_| self.key()));
                if self.chance(0.4) {
                    c.extend([b("LIMIT"), self.small()]);
                }
                c
            }
            _ => {
                let mut c = vec![b("ZRANDMEMBER"), k];
                if self.chance(0.6) {
                    c.push(self.small());
                }
                c
            }
        }
    }
}
