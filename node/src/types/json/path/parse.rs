//! The path grammar: a recursive-descent parser from path text (JSONPath
//! or legacy, already translated) to segments, selectors and filters.

use super::*;

pub(super) struct Parser<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    pub(super) depth: usize,
}

fn is_name_byte(c: u8) -> bool {
    !(c.is_ascii_whitespace() || b".[]()'\",=<>!&|?*~:".contains(&c))
}

impl Parser<'_> {
    pub(super) fn err<T>(&self, msg: &str) -> Result<T, PathError> {
        Err(PathError { pos: self.i, msg: msg.to_string() })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.get(self.i + n).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, t: &[u8]) -> bool {
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t' || c == b'\n' || c == b'\r') {
            self.i += 1;
        }
    }

    pub(super) fn segments(&mut self) -> Result<Vec<Segment>, PathError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.peek_at(1) == Some(b'.') => {
                    self.i += 2;
                    let selectors = self.dot_selector()?;
                    out.push(Segment { descendant: true, selectors });
                }
                Some(b'.') => {
                    self.i += 1;
                    let selectors = self.dot_selector()?;
                    out.push(Segment { descendant: false, selectors });
                }
                Some(b'[') => {
                    let selectors = self.bracket()?;
                    out.push(Segment { descendant: false, selectors });
                }
                _ => return Ok(out),
            }
        }
    }

    /// After `.` or `..`: a name, `*`, or a bracket.
    fn dot_selector(&mut self) -> Result<Vec<Selector>, PathError> {
        match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Ok(vec![Selector::Wildcard])
            }
            Some(b'[') => self.bracket(),
            Some(c) if is_name_byte(c) => {
                let start = self.i;
                while self.peek().is_some_and(is_name_byte) {
                    self.i += 1;
                }
                Ok(vec![Selector::Name(self.s[start..self.i].to_vec())])
            }
            _ => self.err("expected one of the following: <string>, '*', '['"),
        }
    }

    fn bracket(&mut self) -> Result<Vec<Selector>, PathError> {
        self.i += 1; // '['
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return self.err("path nested too deeply");
        }
        let mut sels = Vec::new();
        loop {
            self.ws();
            sels.push(self.selector()?);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                break;
            }
            return self.err("expected one of the following: ',', ']'");
        }
        self.depth -= 1;
        Ok(sels)
    }

    fn selector(&mut self) -> Result<Selector, PathError> {
        match self.peek() {
            Some(b'\'') | Some(b'"') => Ok(Selector::Name(self.string()?)),
            Some(b'*') => {
                self.i += 1;
                Ok(Selector::Wildcard)
            }
            Some(b'?') => {
                self.i += 1;
                self.ws();
                Ok(Selector::Filter(Box::new(self.or()?)))
            }
            Some(c) if c == b'-' || c == b':' || c.is_ascii_digit() => {
                let start = if c == b':' { None } else { Some(self.int()?) };
                self.ws();
                if !self.eat(b':') {
                    return match start {
                        Some(i) => Ok(Selector::Index(i)),
                        None => self.err("expected an index"),
                    };
                }
                self.ws();
                let end = self.opt_int()?;
                self.ws();
                let step = if self.eat(b':') {
                    self.ws();
                    self.opt_int()?
                } else {
                    None
                };
                Ok(Selector::Slice(start, end, step))
            }
            _ => self.err("expected one of the following: <string>, <number>, '*', '?', ':'"),
        }
    }

    fn opt_int(&mut self) -> Result<Option<i64>, PathError> {
        match self.peek() {
            Some(c) if c == b'-' || c.is_ascii_digit() => Ok(Some(self.int()?)),
            _ => Ok(None),
        }
    }

    fn int(&mut self) -> Result<i64, PathError> {
        let start = self.i;
        self.eat(b'-');
        let digits = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == digits {
            self.i = start;
            return self.err("expected an integer");
        }
        std::str::from_utf8(&self.s[start..self.i]).ok().and_then(|t| t.parse().ok()).map_or_else(
            || {
                self.i = start;
                self.err("integer out of range")
            },
            Ok,
        )
    }

    /// A quoted string ('...' or "..."), with JSON escapes.
    fn string(&mut self) -> Result<Vec<u8>, PathError> {
        let q = self.s[self.i];
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                self.i = start;
                return self.err("unterminated string");
            };
            self.i += 1;
            if c == q {
                return Ok(out);
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else { return self.err("unterminated string") };
            self.i += 1;
            match e {
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) && self.eat_str(b"\\u") {
                        let lo = self.hex4()?;
                        if (0xDC00..0xE000).contains(&lo) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        }
                    }
                    let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                other => out.push(other),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, PathError> {
        let h = self.s.get(self.i..self.i + 4).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u32::from_str_radix(h, 16).ok());
        match h {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("invalid \\u escape"),
        }
    }

    fn or(&mut self) -> Result<Expr, PathError> {
        let mut v = vec![self.and()?];
        loop {
            self.ws();
            if self.eat_str(b"||") {
                self.ws();
                v.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Expr::Or(v) })
    }

    fn and(&mut self) -> Result<Expr, PathError> {
        let mut v = vec![self.unary()?];
        loop {
            self.ws();
            if self.eat_str(b"&&") {
                self.ws();
                v.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Expr::And(v) })
    }

    fn unary(&mut self) -> Result<Expr, PathError> {
        self.ws();
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return self.err("filter nested too deeply");
        }
        let e = if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.i += 1;
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat(b'(') {
            self.ws();
            let e = self.or()?;
            self.ws();
            if !self.eat(b')') {
                return self.err("expected one of the following: ')', '&&', '||'");
            }
            e
        } else {
            self.comparison()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Expr, PathError> {
        let left = self.operand()?;
        self.ws();
        let op = if self.eat_str(b"==") {
            Op::Eq
        } else if self.eat_str(b"!=") {
            Op::Ne
        } else if self.eat_str(b"<=") {
            Op::Le
        } else if self.eat_str(b">=") {
            Op::Ge
        } else if self.eat_str(b"=~") {
            Op::Match
        } else if self.eat(b'<') {
            Op::Lt
        } else if self.eat(b'>') {
            Op::Gt
        } else {
            return match left {
                Operand::Query(q) => Ok(Expr::Exists(q)),
                Operand::Lit(_) => self.err("expected one of the following: '==', '!=', '<', '<=', '>', '>=', '=~'"),
            };
        };
        self.ws();
        let right = self.operand()?;
        let re = match (&op, &right) {
            (Op::Match, Operand::Lit(Json::Str(p))) => std::str::from_utf8(p).ok().and_then(compile_regex),
            _ => None,
        };
        Ok(Expr::Cmp(left, op, right, re))
    }

    fn operand(&mut self) -> Result<Operand, PathError> {
        match self.peek() {
            Some(b'@') | Some(b'$') => {
                let absolute = self.peek() == Some(b'$');
                self.i += 1;
                Ok(Operand::Query(Query { absolute, segments: self.segments()? }))
            }
            Some(b'\'') | Some(b'"') => {
                let s = self.string()?;
                match String::from_utf8(s) {
                    Ok(s) => Ok(Operand::Lit(Json::Str(crate::types::SmallBytes::from_vec(s.into_bytes())))),
                    Err(_) => self.err("invalid UTF-8 in string"),
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            _ => {
                for (word, v) in [(&b"true"[..], Json::Bool(true)), (b"false", Json::Bool(false)), (b"null", Json::Null)] {
                    if self.s[self.i..].starts_with(word) && !self.peek_at(word.len()).is_some_and(|c| c.is_ascii_alphanumeric()) {
                        self.i += word.len();
                        return Ok(Operand::Lit(v));
                    }
                }
                self.err("expected one of the following: '@', '$', <string>, <number>, 'true', 'false', 'null'")
            }
        }
    }

    fn number(&mut self) -> Result<Operand, PathError> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i > s
        };
        if !digits(self) {
            self.i = start;
            return self.err("expected a number");
        }
        let mut float = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            digits(self);
            float = true;
        }
        if matches!(self.peek(), Some(b'e') | Some(b'E')) {
            let save = self.i;
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) {
                float = true;
            } else {
                self.i = save;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        let v = if float {
            text.parse::<f64>().ok().filter(|f| f.is_finite()).map(Json::Float)
        } else {
            text.parse::<i64>().ok().map(Json::Int).or_else(|| text.parse::<f64>().ok().map(Json::Float))
        };
        match v {
            Some(v) => Ok(Operand::Lit(v)),
            None => {
                self.i = start;
                self.err("number out of range")
            }
        }
    }
}
