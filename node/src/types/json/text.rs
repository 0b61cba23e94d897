//! Documents kept as their canonical JSON text: the check that a text is
//! canonical (exactly what `Json::to_text` prints for it), and reading the
//! value at a static path straight out of such a text.
//!
//! A text is canonical when it has no whitespace, no duplicate object keys,
//! strings escaped as `value::write_str` escapes them, integers in `i64`
//! range without `-0`, floats in ryu's shortest form, and nesting within
//! `MAX_DEPTH`. Then parsing it and printing it back gives the same bytes,
//! so the text can stand for the tree: the compact reply of any sub-value is
//! a slice of it. Checking is one pass with no allocation except a key list
//! for objects of more than 8 members.

use super::path::Step;
use super::value::{write_str, MAX_DEPTH};

/// Longest text kept as text. Larger documents are stored as trees, so that
/// reading one field never scans more than this many bytes.
pub const TEXT_MAX: usize = 16 << 10;

/// Whether `s` is a complete JSON text in canonical form.
pub fn is_canonical(s: &[u8]) -> bool {
    let mut c = Canon { s, i: 0, keys: Vec::new() };
    c.value(0) && c.i == s.len()
}

struct Canon<'a> {
    s: &'a [u8],
    i: usize,
    /// Keys of the objects being checked, innermost last.
    keys: Vec<&'a [u8]>,
}

impl<'a> Canon<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b'}') {
            return true;
        }
        let mark = self.keys.len();
        loop {
            let Some(k) = self.string() else { return false };
            self.keys.push(k);
            if !self.eat(b':') || !self.value(depth) {
                return false;
            }
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return false;
            }
        }
        // Escapes are canonical, so equal keys have equal texts.
        let keys = &self.keys[mark..];
        let unique = if keys.len() <= 8 {
            (1..keys.len()).all(|j| !keys[..j].contains(&keys[j]))
        } else {
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            sorted.windows(2).all(|w| w[0] != w[1])
        };
        self.keys.truncate(mark);
        unique
    }

    /// A string literal; returns its escaped contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i + 1)?;
                    match e {
                        b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => self.i += 2,
                        // write_str uses \u00XX (lowercase hex) only for the
                        // control characters without a short escape.
                        b'u' => {
                            let h = self.s.get(self.i + 2..self.i + 6)?;
                            let hex = |c: u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
                            if &h[..2] != b"00" || !hex(h[2]) || !hex(h[3]) || !matches!(h[2], b'0' | b'1') {
                                return None;
                            }
                            if matches!(&h[2..], b"08" | b"09" | b"0a" | b"0c" | b"0d") {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let body = &self.s[start..self.i];
        self.i += 1;
        std::str::from_utf8(body).ok()?;
        Some(body)
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return false,
        }
        let mut float = false;
        if self.eat(b'.') {
            float = true;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return false;
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.i += 1;
            if !self.eat(b'-') {
                self.eat(b'+');
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return false;
            }
            self.digits();
        }
        let text = &self.s[start..self.i];
        // The grammar above admits only ASCII.
        let Ok(t) = std::str::from_utf8(text) else { return false };
        if float {
            match t.parse::<f64>() {
                Ok(f) if f.is_finite() => ryu::Buffer::new().format_finite(f).as_bytes() == text,
                _ => false,
            }
        } else {
            match t.parse::<i64>() {
                Ok(n) => itoa::Buffer::new().format(n).as_bytes() == text,
                Err(_) => false,
            }
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }
}

/// The end of the value starting at `i` in canonical text `s`.
fn skip(s: &[u8], mut i: usize) -> usize {
    match s.get(i) {
        Some(b'"') => skip_string(s, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while i < s.len() {
                match s[i] {
                    b'"' => {
                        i = skip_string(s, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i
        }
        _ => {
            while i < s.len() && !matches!(s[i], b',' | b'}' | b']') {
                i += 1;
            }
            i
        }
    }
}

/// The end of the string literal starting at `i` (just past its quote).
fn skip_string(s: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < s.len() {
        match s[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

/// The elements of the array starting at `i`, as (start, end) spans.
fn elements(s: &[u8], i: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = i + 1;
    std::iter::from_fn(move || {
        if s.get(at).is_none_or(|&c| c == b']') {
            return None;
        }
        let end = skip(s, at);
        let span = (at, end);
        at = end + 1; // past the ',' (or the ']', ending the walk)
        if s.get(end) == Some(&b']') {
            at = end;
        }
        Some(span)
    })
}

/// The number of elements of the array starting at `i` in canonical text.
pub fn array_len(s: &[u8], i: usize) -> usize {
    elements(s, i).count()
}

/// The members of the object starting at `i`: (key start, key end, value
/// start, value end), the key's span including its quotes.
fn members(s: &[u8], i: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    let mut at = Some(i + 1);
    std::iter::from_fn(move || {
        let k = at.filter(|&k| s.get(k) == Some(&b'"'))?;
        let kend = skip_string(s, k);
        let vend = skip(s, kend + 1);
        at = (s.get(vend) == Some(&b',')).then_some(vend + 1);
        Some((k, kend, kend + 1, vend))
    })
}

/// The bytes to cut from canonical text `s` to delete the value a static
/// path of at least one step selects: its member or element with one
/// adjacent comma, so that what remains is canonical.
pub fn removal(s: &[u8], steps: &[Step]) -> Option<(usize, usize)> {
    let (last, parent) = steps.split_last()?;
    let (lo, _) = span(s, parent)?;
    let (entries, i): (Vec<(usize, usize)>, usize) = match (last, s.get(lo)) {
        (Step::Name(n), Some(b'{')) => {
            let mut name = Vec::new();
            write_str(n, &mut name);
            let all: Vec<_> = members(s, lo).collect();
            let i = all.iter().position(|&(k, kend, _, _)| s[k..kend] == name[..])?;
            (all.into_iter().map(|(k, _, _, vend)| (k, vend)).collect(), i)
        }
        (Step::Index(k), Some(b'[')) => {
            let all: Vec<_> = elements(s, lo).collect();
            let i = if *k < 0 { usize::try_from(all.len() as i64 + k).ok()? } else { usize::try_from(*k).ok()? };
            (all, i)
        }
        _ => return None,
    };
    let (a, b) = *entries.get(i)?;
    Some(match (i.checked_sub(1).map(|p| entries[p]), entries.get(i + 1)) {
        (Some((_, prev_end)), _) => (prev_end, b),
        (None, Some(&(next, _))) => (a, next),
        (None, None) => (a, b),
    })
}

/// The length in bytes of the string whose canonical literal (quotes
/// included) is `lit`: every escape stands for one byte.
pub fn str_len(lit: &[u8]) -> usize {
    let body = &lit[1..lit.len().saturating_sub(1).max(1)];
    let mut n = 0;
    let mut i = 0;
    while i < body.len() {
        i += match (body[i], body.get(i + 1)) {
            (b'\\', Some(b'u')) => 6,
            (b'\\', _) => 2,
            _ => 1,
        };
        n += 1;
    }
    n
}

/// Where the elements of the array starting at `i` in canonical text `s`
/// start, and where it ends (its closing bracket).
pub fn element_starts(s: &[u8], i: usize) -> (Vec<usize>, usize) {
    let mut end = i + 1;
    let starts = elements(s, i)
        .map(|(a, b)| {
            end = b;
            a
        })
        .collect();
    (starts, end)
}

/// The JSON.TYPE name of the value whose canonical text is `v`.
pub fn type_name(v: &[u8]) -> &'static str {
    match v.first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        // Canonical integers have neither a fraction nor an exponent.
        _ if v.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) => "number",
        _ => "integer",
    }
}

/// The text of the value a static path selects in canonical text `s`, or
/// `None` when it selects nothing.
pub fn find<'a>(s: &'a [u8], steps: &[Step]) -> Option<&'a [u8]> {
    span(s, steps).map(|(lo, hi)| &s[lo..hi])
}

/// Where the value a static path selects lies in canonical text `s`.
pub fn span(s: &[u8], steps: &[Step]) -> Option<(usize, usize)> {
    let (mut lo, mut hi) = (0, s.len());
    let mut name = Vec::new();
    for step in steps {
        match (step, s.get(lo)) {
            (Step::Name(n), Some(b'{')) => {
                name.clear();
                write_str(n, &mut name);
                let mut at = lo + 1;
                let mut found = None;
                while s.get(at) == Some(&b'"') {
                    let kend = skip_string(s, at);
                    let vstart = kend + 1;
                    let vend = skip(s, vstart);
                    if s[at..kend] == name[..] {
                        found = Some((vstart, vend));
                        break;
                    }
                    if s.get(vend) != Some(&b',') {
                        break;
                    }
                    at = vend + 1;
                }
                (lo, hi) = found?;
            }
            (Step::Index(k), Some(b'[')) => {
                let idx = if *k < 0 {
                    let len = elements(s, lo).count() as i64;
                    usize::try_from(len + k).ok()?
                } else {
                    usize::try_from(*k).ok()?
                };
                (lo, hi) = elements(s, lo).nth(idx)?;
            }
            _ => return None,
        }
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::json::Json;

    #[test]
    fn canonical_texts() {
        for s in [
            "null",
            "0",
            "-12",
            "1.5",
            "2.0",
            "1e20",
            "1.5e-7",
            "\"a\\\"b\\\\c\\n\\u0001\"",
            "\"héllo ✓\"",
            "[]",
            "{}",
            "[1,[2,[3]],{\"a\":{}}]",
            "{\"b\":1,\"a\":2}",
            "{\"k\":{\"k\":1}}",
            "9223372036854775807",
        ] {
            assert!(is_canonical(s.as_bytes()), "{s}");
            assert_eq!(Json::parse(s.as_bytes()).unwrap().to_text(), s.as_bytes());
        }
        let many: String = format!("{{{}}}", (0..20).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        assert!(is_canonical(many.as_bytes()));
        for s in [
            " 1",
            "1 ",
            "[1, 2]",
            "{\"a\":1,\"a\":2}",
            "1E2",
            "1.50",
            "-0",
            "01",
            "1.",
            "18446744073709551615",
            "\"\\/\"",
            "\"\\u0041\"",
            "\"\\u000a\"",
            "\"\\u001F\"",
            "\"a\nb\"",
            "[1,]",
            "{\"a\"}",
            "tru",
            "",
            "1e400",
        ] {
            assert!(!is_canonical(s.as_bytes()), "{s:?}");
        }
        assert!(!is_canonical(b"\"\xff\""));
        let dup: String = format!("{{{},\"k3\":0}}", (0..20).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        assert!(!is_canonical(dup.as_bytes()));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(is_canonical(ok.as_bytes()));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!is_canonical(deep.as_bytes()));
    }

    #[test]
    fn finds_static_paths() {
        let s = br#"{"a":{"b":[10,"x,]}",{"c":null}],"e\"q":true},"z":[]}"#;
        let at = |steps: &[Step]| find(s, steps).map(|v| String::from_utf8(v.to_vec()).unwrap());
        assert_eq!(at(&[]).unwrap(), String::from_utf8(s.to_vec()).unwrap());
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(0)]).unwrap(), "10");
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(1)]).unwrap(), "\"x,]}\"");
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(-1)]).unwrap(), "{\"c\":null}");
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(-1), Step::Name(b"c")]).unwrap(), "null");
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"e\"q")]).unwrap(), "true");
        assert_eq!(at(&[Step::Name(b"z")]).unwrap(), "[]");
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(3)]), None);
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Index(-4)]), None);
        assert_eq!(at(&[Step::Name(b"z"), Step::Index(0)]), None);
        assert_eq!(at(&[Step::Name(b"z"), Step::Index(-1)]), None);
        assert_eq!(at(&[Step::Index(0)]), None);
        assert_eq!(at(&[Step::Name(b"a"), Step::Name(b"b"), Step::Name(b"c")]), None);
        assert_eq!(at(&[Step::Name(b"q")]), None);
        assert_eq!(array_len(s, span(s, &[Step::Name(b"a"), Step::Name(b"b")]).unwrap().0), 3);
        assert_eq!(array_len(b"[]", 0), 0);
    }

    #[test]
    fn removals_leave_canonical_text() {
        let s = br#"{"a":1,"b":[1,[2],3],"c":{"d":"x"},"e\"":null}"#;
        for (steps, left) in [
            (&[Step::Name(b"a")][..], &br#"{"b":[1,[2],3],"c":{"d":"x"},"e\"":null}"#[..]),
            (&[Step::Name(b"b")], br#"{"a":1,"c":{"d":"x"},"e\"":null}"#),
            (&[Step::Name(b"e\"")], br#"{"a":1,"b":[1,[2],3],"c":{"d":"x"}}"#),
            (&[Step::Name(b"c"), Step::Name(b"d")], br#"{"a":1,"b":[1,[2],3],"c":{},"e\"":null}"#),
            (&[Step::Name(b"b"), Step::Index(0)], br#"{"a":1,"b":[[2],3],"c":{"d":"x"},"e\"":null}"#),
            (&[Step::Name(b"b"), Step::Index(1)], br#"{"a":1,"b":[1,3],"c":{"d":"x"},"e\"":null}"#),
            (&[Step::Name(b"b"), Step::Index(-1)], br#"{"a":1,"b":[1,[2]],"c":{"d":"x"},"e\"":null}"#),
            (&[Step::Name(b"b"), Step::Index(1), Step::Index(0)], br#"{"a":1,"b":[1,[],3],"c":{"d":"x"},"e\"":null}"#),
        ] {
            let (lo, hi) = removal(s, steps).unwrap();
            let cut = [&s[..lo], &s[hi..]].concat();
            assert_eq!(String::from_utf8_lossy(&cut), String::from_utf8_lossy(left), "{steps:?}");
            assert!(is_canonical(&cut));
        }
        for steps in
            [&[][..], &[Step::Name(b"z")], &[Step::Name(b"b"), Step::Index(3)], &[Step::Name(b"b"), Step::Index(-4)], &[Step::Index(0)]]
        {
            assert_eq!(removal(s, steps), None, "{steps:?}");
        }
    }

    #[test]
    fn string_lengths_and_element_starts() {
        for s in ["", "abc", "a\"b\\c\n", "\u{1}x", "héllo ✓"] {
            let mut lit = Vec::new();
            write_str(s.as_bytes(), &mut lit);
            assert_eq!(str_len(&lit), s.len(), "{s:?}");
        }
        assert_eq!(element_starts(b"[]", 0), (vec![], 1));
        assert_eq!(element_starts(br#"[1,"a,]",[2]]"#, 0), (vec![1, 3, 9], 12));
    }

    #[test]
    fn type_names_match_the_tree() {
        for s in ["{}", "[1]", "\"x\"", "true", "false", "null", "0", "-12", "1.5", "1e20", "-1.5e-7"] {
            assert_eq!(type_name(s.as_bytes()), Json::parse(s.as_bytes()).unwrap().type_name(), "{s}");
        }
    }
}
