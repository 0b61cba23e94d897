//! The generator's stream and consumer-group commands, on the stream keys
//! (which no other command touches), with IDs chosen to collide.

use super::*;

impl Gen {
    /// A stream ID among few, so entries, groups and claims collide.
    fn stream_id(&mut self) -> Vec<u8> {
        match self.below(10) {
            0 => self.pick(&["x", "-", "+", "0", "1-x", "$", ">"]),
            1 | 2 => b(&self.below(7).to_string()),
            _ => b(&format!("{}-{}", self.below(7), self.below(3))),
        }
    }

    /// A stream or consumer-group command on the stream keys. Idle times
    /// are 0 or an hour, so which entries they pick does not depend on
    /// when the command runs.
    pub(super) fn stream_cmd(&mut self) -> Cmd {
        let k = self.pick(STREAM_KEYS);
        let group = |g: &mut Gen| g.pick(&["g1", "g2", "g1", "nog"]);
        let consumer = |g: &mut Gen| g.pick(&["c1", "c2", "c3"]);
        let idle = |g: &mut Gen| g.pick(&["0", "0", "3600000", "x", "-5"]);
        let ids = |g: &mut Gen, c: &mut Cmd| {
            for _ in 0..1 + g.below(3) {
                let id = g.stream_id();
                c.push(id);
            }
        };
        match self.below(16) {
            0..=2 => {
                let mut c = vec![b("XADD"), k];
                if self.chance(0.2) {
                    c.push(b("MAXLEN"));
                    c.push(b(&self.below(5).to_string()));
                }
                let id = if self.chance(0.2) { b(&format!("{}-*", self.below(7))) } else { self.stream_id() };
                c.push(id);
                c.push(self.field());
                c.push(self.val());
                c
            }
            3 => {
                let mut c = vec![b("XDEL"), k];
                ids(self, &mut c);
                c
            }
            4 => vec![b("XRANGE"), k, b("-"), b("+")],
            5 => {
                let mut c = vec![b("XGROUP"), b("CREATE"), k, group(self), self.stream_id()];
                if self.chance(0.3) {
                    c.push(b("MKSTREAM"));
                }
                if self.chance(0.2) {
                    c.push(b("ENTRIESREAD"));
                    c.push(self.pick(&["0", "1", "-1", "-2", "x"]));
                }
                c
            }
            6 => match self.below(4) {
                0 => vec![b("XGROUP"), b("SETID"), k, group(self), self.stream_id()],
                1 => vec![b("XGROUP"), b("DESTROY"), k, group(self)],
                2 => vec![b("XGROUP"), b("CREATECONSUMER"), k, group(self), consumer(self)],
                _ => vec![b("XGROUP"), b("DELCONSUMER"), k, group(self), consumer(self)],
            },
            7..=9 => {
                let mut c = vec![b("XREADGROUP"), b("GROUP"), group(self), consumer(self)];
                if self.chance(0.4) {
                    c.push(b("COUNT"));
                    c.push(self.pick(&["1", "2", "0", "-1", "x"]));
                }
                if self.chance(0.2) {
                    c.push(b("NOACK"));
                }
                c.push(b("STREAMS"));
                let keys: Vec<Vec<u8>> = if self.chance(0.2) { vec![k, b("{t}s")] } else { vec![k] };
                let n = keys.len();
                c.extend(keys);
                for _ in 0..n {
                    let id = if self.chance(0.6) { b(">") } else { self.stream_id() };
                    c.push(id);
                }
                c
            }
            10 => {
                let mut c = vec![b("XACK"), k, group(self)];
                ids(self, &mut c);
                c
            }
            11 => {
                let mut c = vec![b("XPENDING"), k, group(self)];
                if self.chance(0.6) {
                    if self.chance(0.3) {
                        c.push(b("IDLE"));
                        c.push(idle(self));
                    }
                    c.push(self.pick(&["-", "0", "(1-0", "2"]));
                    c.push(self.pick(&["+", "5", "(3-0", "x"]));
                    c.push(self.pick(&["10", "1", "0", "x"]));
                    if self.chance(0.4) {
                        c.push(consumer(self));
                    }
                }
                c
            }
            12 => {
                let mut c = vec![b("XCLAIM"), k, group(self), consumer(self), idle(self)];
                ids(self, &mut c);
                for _ in 0..self.below(3) {
                    match self.below(6) {
                        0 => c.push(b("FORCE")),
                        1 => c.push(b("JUSTID")),
                        2 => c.extend([b("IDLE"), self.pick(&["0", "7200000", "x"])]),
                        3 => c.extend([b("RETRYCOUNT"), self.pick(&["0", "5", "x"])]),
                        4 => c.extend([b("LASTID"), self.stream_id()]),
                        _ => c.push(b("BOGUS")),
                    }
                }
                c
            }
            13 => {
                let mut c = vec![b("XAUTOCLAIM"), k, group(self), consumer(self), idle(self), self.stream_id()];
                if self.chance(0.4) {
                    c.push(b("COUNT"));
                    c.push(self.pick(&["1", "2", "0", "x"]));
                }
                if self.chance(0.3) {
                    c.push(b("JUSTID"));
                }
                c
            }
            14 => match self.below(3) {
                0 => vec![b("XINFO"), b("GROUPS"), k],
                1 => vec![b("XINFO"), b("CONSUMERS"), k, group(self)],
                _ => vec![b("XLEN"), k],
            },
            _ => {
                let mut c = vec![b("XSETID"), k, self.stream_id()];
                if self.chance(0.3) {
                    c.push(b("ENTRIESADDED"));
                    c.push(self.pick(&["0", "3", "100", "-1"]));
                }
                c
            }
        }
    }
}
