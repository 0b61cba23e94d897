//! Where a command's keys are among its arguments: Redis 7's key
//! specifications. A command declares a list of rules; each rule says where
//! to begin looking (a fixed index, or just after a keyword such as XREAD's
//! `STREAMS`) and how to find the keys from there (a range, or a count
//! argument such as EVAL's `numkeys`). Routing to shards, cluster slot
//! checks, COMMAND INFO / GETKEYS and scripts' key checks all read keys
//! through `KeyIter`, so a shape is described once, here, for every command.

use bytes::Bytes;

/// Where a rule starts looking for keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Begin {
    /// At this argument index (the command name is index 0).
    Index(usize),
    /// Just after the first argument equal (case-insensitively) to `word`,
    /// searched from index `from` onwards; a negative `from` searches
    /// backwards from that many arguments before the end (MIGRATE's `KEYS`
    /// is found from the second-to-last argument down), never reaching the
    /// command name.
    Keyword { word: &'static str, from: i32 },
    /// Redis's `unknown`: the keys cannot be found from the arguments
    /// alone (SORT's BY/GET pattern keys, its STORE key); the command finds
    /// them itself.
    Unknown,
}

/// How a rule finds its keys from where it begins.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Find {
    /// Keys from the start to `last` (relative to the start; negative counts
    /// from the end of the arguments), every `step` arguments. With a
    /// `limit` of n > 1 (and a negative `last`), only the first 1/n of the
    /// remaining arguments are keys (XREAD's keys come before as many IDs).
    Range { last: i32, step: usize, limit: usize },
    /// The argument at `count` (relative to the start) says how many keys
    /// there are; they begin at `first` (relative) and are `step` apart.
    KeyNum { count: usize, first: usize, step: usize },
    /// Redis's `unknown` (with `Begin::Unknown`).
    Unknown,
}

/// One key specification.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeyRule {
    pub begin: Begin,
    pub find: Find,
    /// Overrides the command-level access flags COMMAND shows for these
    /// keys (`None`: RW for write commands, RO otherwise).
    pub flags: Option<&'static [&'static str]>,
}

impl KeyRule {
    /// Redis's legacy triple: keys from `first` to `last` (absolute;
    /// negative from the end), `step` apart.
    pub const fn range(first: usize, last: i32, step: usize) -> KeyRule {
        let rel = if last < 0 { last } else { last - first as i32 };
        KeyRule { begin: Begin::Index(first), find: Find::Range { last: rel, step, limit: 0 }, flags: None }
    }

    /// A `numkeys` argument at `at`, the keys right after it.
    pub const fn numkeys(at: usize) -> KeyRule {
        KeyRule { begin: Begin::Index(at), find: Find::KeyNum { count: 0, first: 1, step: 1 }, flags: None }
    }

    /// The one key right after `word` (GEORADIUS's `STORE key`), `word`
    /// searched from index `from` onwards.
    pub const fn keyword(word: &'static str, from: i32) -> KeyRule {
        KeyRule { begin: Begin::Keyword { word, from }, find: Find::Range { last: 0, step: 1, limit: 0 }, flags: None }
    }

    /// Keys after `word`: the first `1/limit` of the rest (limit 0 or 1:
    /// all of it).
    pub const fn after_keyword(word: &'static str, from: i32, limit: usize) -> KeyRule {
        KeyRule { begin: Begin::Keyword { word, from }, find: Find::Range { last: -1, step: 1, limit }, flags: None }
    }

    /// Keys Redis declares as `unknown` (SORT's): listed by COMMAND, found
    /// by the command itself, never by `KeyIter`.
    pub const fn unknown() -> KeyRule {
        KeyRule { begin: Begin::Unknown, find: Find::Unknown, flags: None }
    }

    /// The same rule with its own access flags (as COMMAND prints them).
    pub const fn with_flags(self, flags: &'static [&'static str]) -> KeyRule {
        KeyRule { flags: Some(flags), ..self }
    }

    /// Whether the rule's keys can move (not a fixed index and range): the
    /// command is then `movablekeys`.
    pub const fn movable(&self) -> bool {
        !matches!((self.begin, self.find), (Begin::Index(_), Find::Range { .. }))
    }

    /// The argument indices of this rule's keys in `args`, as an inclusive
    /// start, end and step; `None` when the arguments do not hold them (a
    /// missing keyword, a count that is not a number or runs past the end:
    /// the command reports its own error).
    fn span(&self, args: &[Bytes]) -> Option<(usize, usize, usize)> {
        let argc = args.len();
        let start = match self.begin {
            Begin::Index(i) => i,
            Begin::Keyword { word, from } => keyword_at(args, word, from)? + 1,
            Begin::Unknown => return None,
        };
        if start >= argc {
            return None;
        }
        match self.find {
            Find::Range { last, step, limit } => {
                let end = if last >= 0 {
                    start + last as usize
                } else if limit <= 1 {
                    (argc as i64 + last as i64).max(0) as usize
                } else {
                    let n = (argc - start) / limit;
                    (start + n).checked_sub(1)?
                };
                (end >= start).then_some((start, end.min(argc - 1), step.max(1)))
            }
            Find::KeyNum { count, first, step } => {
                let n = crate::util::parse_i64(args.get(start + count)?).ok()?;
                if n <= 0 {
                    return None;
                }
                let step = step.max(1);
                let first = start + first;
                let end = first + (n as usize - 1) * step;
                (end < argc).then_some((first, end, step))
            }
            Find::Unknown => None,
        }
    }
}

/// The index of `word` among `args` as Redis's keyword search finds it:
/// forwards from `from`, or for a negative `from` backwards from
/// `args.len() + from`, never at index 0.
fn keyword_at(args: &[Bytes], word: &str, from: i32) -> Option<usize> {
    let is = |a: &Bytes| a.eq_ignore_ascii_case(word.as_bytes());
    if from >= 0 {
        let from = from as usize;
        return Some(args.get(from..)?.iter().position(is)? + from);
    }
    let start = args.len().checked_sub(from.unsigned_abs() as usize)?;
    (1..=start).rev().find(|&i| is(&args[i]))
}

/// Most key rules one command has (GEORADIUS: its key, STORE, STOREDIST).
pub const MAX_RULES: usize = 3;

/// A command's key rules, held inline so that command tables stay `const`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeySpecs {
    rules: [KeyRule; MAX_RULES],
    len: u8,
}

const NO_RULE: KeyRule = KeyRule { begin: Begin::Index(0), find: Find::Range { last: 0, step: 1, limit: 0 }, flags: None };

impl KeySpecs {
    pub const NONE: KeySpecs = KeySpecs { rules: [NO_RULE; MAX_RULES], len: 0 };

    /// The given rules (at most `MAX_RULES`; more is a declaration error
    /// caught when the table is built, at compile time).
    pub const fn new(rules: &[KeyRule]) -> KeySpecs {
        assert!(rules.len() <= MAX_RULES, "too many key rules");
        let mut out = KeySpecs::NONE;
        let mut i = 0;
        while i < rules.len() {
            out.rules[i] = rules[i];
            i += 1;
        }
        out.len = rules.len() as u8;
        out
    }

    pub fn rules(&self) -> &[KeyRule] {
        &self.rules[..self.len as usize]
    }

    /// The same rules, each with the access flags `flags`.
    pub const fn with_flags(mut self, flags: &'static [&'static str]) -> KeySpecs {
        let mut i = 0;
        while i < self.len as usize {
            self.rules[i].flags = Some(flags);
            i += 1;
        }
        self
    }

    /// Whether any rule's keys can move (the command is `movablekeys`).
    pub const fn movable(&self) -> bool {
        let mut i = 0;
        while i < self.len as usize {
            if self.rules[i].movable() {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// The key argument indices of a command, rule by rule.
pub struct KeyIter<'a> {
    rules: &'a [KeyRule],
    args: &'a [Bytes],
    /// Next index, last index and step of the current rule.
    at: usize,
    end: usize,
    step: usize,
    done: bool,
}

impl<'a> KeyIter<'a> {
    pub fn new(rules: &'a [KeyRule], args: &'a [Bytes]) -> KeyIter<'a> {
        let mut it = KeyIter { rules, args, at: 1, end: 0, step: 1, done: false };
        it.next_rule();
        it
    }

    /// The keys from one index to another (inclusive), or none.
    pub fn span(range: Option<(usize, usize)>) -> KeyIter<'static> {
        match range {
            Some((at, end)) if at <= end => KeyIter { rules: &[], args: &[], at, end, step: 1, done: false },
            _ => KeyIter { rules: &[], args: &[], at: 1, end: 0, step: 1, done: true },
        }
    }

    /// Moves to the next rule that names keys.
    fn next_rule(&mut self) {
        while let Some((rule, rest)) = self.rules.split_first() {
            self.rules = rest;
            if let Some((at, end, step)) = rule.span(self.args) {
                (self.at, self.end, self.step) = (at, end, step);
                return;
            }
        }
        self.done = true;
    }
}

impl Iterator for KeyIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.done {
                return None;
            }
            if self.at <= self.end {
                let i = self.at;
                self.at += self.step;
                return Some(i);
            }
            self.next_rule();
        }
    }
}

/// Redis's legacy (first key, last key, step) triple for COMMAND, derived
/// from the rules as Redis derives it: the contiguous index-and-range rules
/// (one with a step other than 1 only when it is the only rule).
pub fn legacy_triple(rules: &[KeyRule]) -> (i32, i32, i32) {
    if let [KeyRule { begin: Begin::Index(first), find: Find::Range { last, step, .. }, .. }] = rules {
        let last = if *last < 0 { *last } else { *first as i32 + *last };
        return (*first as i32, last, *step as i32);
    }
    let (mut first, mut last, mut prev_last) = (i32::MAX, 0i32, None::<i32>);
    for r in rules {
        let (Begin::Index(pos), Find::Range { last: rel, step, .. }) = (r.begin, r.find) else { continue };
        if step != 1 {
            return (0, 0, 0);
        }
        let pos = pos as i32;
        if prev_last.is_some_and(|p| p >= 0 && p != pos - 1) {
            return (0, 0, 0);
        }
        let abs = if rel >= 0 { pos + rel } else { rel };
        first = first.min(pos);
        // Redis compares as unsigned: a negative (from the end) beats any
        // positive index, and of two negatives the one nearer -1 wins.
        last = match (last < 0, abs < 0) {
            (true, false) => last,
            (false, true) => abs,
            _ => last.max(abs),
        };
        prev_last = Some(last);
    }
    if first == i32::MAX {
        (0, 0, 0)
    } else {
        (first, last, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn keys(rules: &[KeyRule], a: &[&str]) -> Vec<usize> {
        KeyIter::new(rules, &args(a)).collect()
    }

    #[test]
    fn shapes() {
        let get = [KeyRule::range(1, 1, 1)];
        assert_eq!(keys(&get, &["get", "k"]), vec![1]);
        let mset = [KeyRule::range(1, -1, 2)];
        assert_eq!(keys(&mset, &["mset", "a", "1", "b", "2"]), vec![1, 3]);
        let eval = [KeyRule::numkeys(2)];
        assert_eq!(keys(&eval, &["eval", "s", "2", "a", "b", "x"]), vec![3, 4]);
        for bad in [&["eval", "s", "3", "a"][..], &["eval", "s", "-1", "a"], &["eval", "s", "x", "a"], &["eval", "s", "0"]] {
            assert!(keys(&eval, bad).is_empty(), "{bad:?}");
        }
        let zunionstore = [KeyRule::range(1, 1, 1), KeyRule::numkeys(2)];
        assert_eq!(keys(&zunionstore, &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), vec![1, 3, 4]);
        let xread = [KeyRule::after_keyword("STREAMS", 1, 2)];
        assert_eq!(keys(&xread, &["xread", "COUNT", "2", "STREAMS", "a", "b", "0", "0"]), vec![4, 5]);
        assert!(keys(&xread, &["xread", "COUNT", "2"]).is_empty());
        let georadius = [KeyRule::range(1, 1, 1), KeyRule::keyword("STORE", 6), KeyRule::keyword("STOREDIST", 6)];
        assert_eq!(keys(&georadius, &["georadius", "g", "0", "0", "1", "km", "STORE", "d"]), vec![1, 7]);
        assert_eq!(keys(&georadius, &["georadius", "g", "0", "0", "1", "km", "STOREDIST", "d", "ASC"]), vec![1, 7]);
        assert_eq!(keys(&georadius, &["georadius", "g", "0", "0", "1", "km"]), vec![1]);
        // MIGRATE: the key at 3, or the keys after the last KEYS that
        // leaves at least one argument after it, searched backwards.
        let migrate = [KeyRule::range(3, 3, 1), KeyRule::after_keyword("KEYS", -2, 0)];
        assert_eq!(keys(&migrate, &["migrate", "h", "1", "k", "0", "5"]), vec![3]);
        assert_eq!(keys(&migrate, &["migrate", "h", "1", "", "0", "5", "KEYS", "a", "b"]), vec![3, 7, 8]);
        assert_eq!(keys(&migrate, &["migrate", "h", "1", "", "0", "5", "KEYS", "a", "KEYS"]), vec![3, 7, 8]);
        assert_eq!(keys(&migrate, &["migrate", "h", "1", "", "0", "5", "KEYS"]), vec![3]);
        assert_eq!(keys(&migrate, &["keys", "x"]), Vec::<usize>::new());
    }

    #[test]
    fn legacy_triples() {
        assert_eq!(legacy_triple(&[KeyRule::range(1, 1, 1)]), (1, 1, 1));
        assert_eq!(legacy_triple(&[KeyRule::range(1, -1, 2)]), (1, -1, 2));
        assert_eq!(legacy_triple(&[KeyRule::numkeys(2)]), (0, 0, 0));
        assert_eq!(legacy_triple(&[KeyRule::range(1, 1, 1), KeyRule::numkeys(2)]), (1, 1, 1));
        assert_eq!(legacy_triple(&[KeyRule::range(1, 1, 1), KeyRule::range(2, 2, 1)]), (1, 2, 1));
        assert_eq!(legacy_triple(&[]), (0, 0, 0));
    }
}
