//! JSONPath: parsing and evaluation.
//!
//! A path that starts with `$` is JSONPath; anything else is a RedisJSON
//! legacy path and is translated first, as RedisJSON does: `.` is the root,
//! `.a.b` becomes `$.a.b`, `a[0]` becomes `$.a[0]`, `[0]` becomes `$[0]`.
//! Both forms then share one grammar:
//!
//! - `.name`, `['name']`, `["name"]`: object member (`.*` / `[*]`: every child);
//! - `..sel`: `sel` applied to the node and every descendant (document order,
//!   a node before its descendants);
//! - `[3]`, `[-1]`: array index (negative counts from the end);
//! - `[start:end:step]`: slices (RFC 9535 semantics, negative steps too);
//! - `[a,b,...]`: unions of any of the above;
//! - `[?(expr)]` or `[?expr]`: filters over array elements and object member
//!   values, with `@` (current node) and `$` (root) paths, literals (numbers,
//!   strings, `true`, `false`, `null`), `== != < <= > >=`, `=~` (regular
//!   expression search), `&&`, `||`, `!` and parentheses. A bare path tests
//!   existence.
//!
//! Evaluation yields either the matched values (reads) or their locations,
//! each a list of child positions from the root (array index or object
//! member position), which the update operations in `ops` follow.
//!
//! Why not jsonpath-rust: it does not parse legacy paths, `=~` or
//! parenthesised filters the way RedisJSON users write them, and its update
//! API goes through normalised path strings that have to be parsed again for
//! every match; RedisJSON's reply shapes also need per-match positions and
//! types. The grammar is small enough that owning it costs less than
//! translating into another crate's dialect and back.

use std::cell::Cell;
use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

use super::value::Json;

/// A location in a document: child positions from the root.
pub type Loc = Vec<u32>;

/// A parsed path.
#[derive(Debug)]
pub struct JsonPath {
    /// A legacy (non-`$`) path: commands reply with the first match only.
    pub legacy: bool,
    /// The path as evaluated (legacy paths translated), for error messages.
    pub normalized: String,
    segments: Vec<Segment>,
}

#[derive(Debug)]
struct Segment {
    descendant: bool,
    selectors: Vec<Selector>,
}

#[derive(Debug)]
enum Selector {
    Name(Vec<u8>),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Expr>),
}

#[derive(Debug)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Query),
    Cmp(Operand, Op, Operand, Option<Regex>),
}

#[derive(Debug)]
struct Query {
    absolute: bool,
    segments: Vec<Segment>,
}

#[derive(Debug)]
enum Operand {
    Query(Query),
    Lit(Json),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
}

/// A path that does not parse; worded as RedisJSON words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub pos: usize,
    pub msg: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Error occurred on position {}, {}", self.pos, self.msg)
    }
}

/// Nesting allowed in filter expressions (parentheses, nested filters).
const MAX_EXPR_DEPTH: usize = 64;

/// Compiled-program size cap for `=~` patterns.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl JsonPath {
    /// Parses a path argument (legacy or `$`).
    pub fn parse(arg: &[u8]) -> Result<JsonPath, PathError> {
        let (legacy, text): (bool, Vec<u8>) = if arg.first() == Some(&b'$') {
            (false, arg.to_vec())
        } else if arg == b"." {
            (true, b"$".to_vec())
        } else if arg.first().is_some_and(|&c| c == b'.' || c == b'[') {
            (true, [b"$", arg].concat())
        } else {
            (true, [b"$.", arg].concat())
        };
        let mut p = Parser { s: &text, i: 1, depth: 0 };
        let segments = p.segments()?;
        if p.i < text.len() {
            return p.err("expected one of the following: '.', '..', '['");
        }
        Ok(JsonPath { legacy, normalized: String::from_utf8_lossy(&text).into_owned(), segments })
    }

    /// The root path (`$` or `.`).
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Every matched value, in match order.
    pub fn select<'a>(&self, root: &'a Json) -> Vec<&'a Json> {
        begin();
        eval(&self.segments, root, root, false).into_iter().map(|(v, _)| v).collect()
    }

    /// The first matched value.
    pub fn first<'a>(&self, root: &'a Json) -> Option<&'a Json> {
        begin();
        eval(&self.segments, root, root, false).into_iter().next().map(|(v, _)| v)
    }

    /// Every match with its location, in match order.
    pub fn locate<'a>(&self, root: &'a Json) -> Vec<(&'a Json, Loc)> {
        begin();
        eval(&self.segments, root, root, true)
    }

    /// The steps of a static path (only single names and indexes, no
    /// wildcards, filters, slices, unions or `..`); `None` otherwise. The
    /// root path has no steps.
    pub fn static_steps(&self) -> Option<Vec<Step<'_>>> {
        self.segments
            .iter()
            .map(|s| match (s.descendant, s.selectors.as_slice()) {
                (false, [Selector::Name(n)]) => Some(Step::Name(n)),
                (false, [Selector::Index(i)]) => Some(Step::Index(*i)),
                _ => None,
            })
            .collect()
    }

    /// For a static path (only single names and indexes, no wildcards,
    /// filters, slices, unions or `..`) with at least one step: the
    /// locations of its parent and its last step. `None` otherwise.
    pub fn static_parent<'a>(&self, root: &'a Json) -> Option<(Vec<(&'a Json, Loc)>, Last<'_>)> {
        let (last, parent) = self.segments.split_last()?;
        let step = |s: &'_ Segment| -> Option<()> {
            if s.descendant || s.selectors.len() != 1 {
                return None;
            }
            matches!(s.selectors[0], Selector::Name(_) | Selector::Index(_)).then_some(())
        };
        for s in &self.segments {
            step(s)?;
        }
        let last = match &last.selectors[0] {
            Selector::Name(n) => Last::Name(n),
            Selector::Index(_) => Last::Index,
            _ => return None,
        };
        begin();
        Some((eval(parent, root, root, true), last))
    }
}

/// One step of a static path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'p> {
    Name(&'p [u8]),
    /// Negative indexes count from the end.
    Index(i64),
}

/// The last step of a static path.
pub enum Last<'p> {
    Name(&'p [u8]),
    Index,
}

/// Most nodes one evaluation may visit or match. Each `..` multiplies the
/// matches by the document's depth (`$..*..*..*` on a deep document), so
/// without a bound one short path could take the shard's time and memory.
pub const WORK_LIMIT: u64 = 4_000_000;

thread_local! {
    /// Work done by the evaluation in progress on this thread.
    static WORK: Cell<u64> = const { Cell::new(0) };
    /// An evaluation on this thread stopped at `WORK_LIMIT` since the last
    /// `take_overflow`.
    static OVERFLOW: Cell<bool> = const { Cell::new(false) };
}

/// Whether a path evaluation on this thread gave up at `WORK_LIMIT` since
/// the last call (clearing the flag). The command runner turns it into an
/// error reply, whatever the command did with the empty match list.
pub fn take_overflow() -> bool {
    OVERFLOW.with(|o| o.replace(false))
}

/// Counts `n` units of work; false once the evaluation is over budget.
fn spend(n: u64) -> bool {
    WORK.with(|w| {
        let used = w.get() + n;
        w.set(used);
        used <= WORK_LIMIT
    })
}

/// A fresh budget for one top-level evaluation (filters inside it share it).
fn begin() {
    WORK.with(|w| w.set(0));
}

fn eval<'a>(segs: &[Segment], root: &'a Json, start: &'a Json, track: bool) -> Vec<(&'a Json, Loc)> {
    let mut cur: Vec<(&'a Json, Loc)> = vec![(start, Vec::new())];
    for seg in segs {
        let mut next = Vec::new();
        for (node, loc) in &cur {
            if !spend(1) {
                OVERFLOW.with(|o| o.set(true));
                return Vec::new();
            }
            let mut emit = |child: &'a Json, rel: &[u32]| {
                let l = if track {
                    let mut l = Vec::with_capacity(loc.len() + rel.len());
                    l.extend_from_slice(loc);
                    l.extend_from_slice(rel);
                    l
                } else {
                    Vec::new()
                };
                next.push((child, l));
            };
            apply_segment(seg, node, root, &mut emit);
        }
        if !spend(next.len() as u64) {
            OVERFLOW.with(|o| o.set(true));
            return Vec::new();
        }
        cur = next;
        if cur.is_empty() {
            break;
        }
    }
    cur
}

fn apply_segment<'a>(seg: &Segment, node: &'a Json, root: &'a Json, emit: &mut dyn FnMut(&'a Json, &[u32])) {
    if seg.descendant {
        let mut stack = Vec::new();
        descend(seg, node, root, &mut stack, emit);
    } else {
        for sel in &seg.selectors {
            apply_selector(sel, node, root, &mut |c, pos| emit(c, &[pos]));
        }
    }
}

fn descend<'a>(seg: &Segment, node: &'a Json, root: &'a Json, stack: &mut Vec<u32>, emit: &mut dyn FnMut(&'a Json, &[u32])) {
    // Over budget: stop walking (eval notices and gives up).
    if !spend(1) {
        return;
    }
    for sel in &seg.selectors {
        apply_selector(sel, node, root, &mut |c, pos| {
            stack.push(pos);
            emit(c, stack);
            stack.pop();
        });
    }
    match node {
        Json::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                stack.push(i as u32);
                descend(seg, c, root, stack, emit);
                stack.pop();
            }
        }
        Json::Object(m) => {
            for (i, (_, c)) in m.iter().enumerate() {
                stack.push(i as u32);
                descend(seg, c, root, stack, emit);
                stack.pop();
            }
        }
        _ => {}
    }
}

fn apply_selector<'a>(sel: &Selector, node: &'a Json, root: &'a Json, f: &mut dyn FnMut(&'a Json, u32)) {
    match (sel, node) {
        (Selector::Name(n), Json::Object(m)) => {
            if let Some(i) = m.iter().position(|(k, _)| &**k == n.as_slice()) {
                f(&m[i].1, i as u32);
            }
        }
        (Selector::Wildcard, Json::Array(a)) => a.iter().enumerate().for_each(|(i, c)| f(c, i as u32)),
        (Selector::Wildcard, Json::Object(m)) => m.iter().enumerate().for_each(|(i, (_, c))| f(c, i as u32)),
        (Selector::Index(i), Json::Array(a)) => {
            let len = a.len() as i64;
            let idx = if *i < 0 { len + i } else { *i };
            if (0..len).contains(&idx) {
                f(&a[idx as usize], idx as u32);
            }
        }
        (Selector::Slice(start, end, step), Json::Array(a)) => {
            for i in slice_indices(a.len(), *start, *end, *step) {
                f(&a[i], i as u32);
            }
        }
        (Selector::Filter(e), Json::Array(a)) => {
            for (i, c) in a.iter().enumerate() {
                if e.test(c, root) {
                    f(c, i as u32);
                }
            }
        }
        (Selector::Filter(e), Json::Object(m)) => {
            for (i, (_, c)) in m.iter().enumerate() {
                if e.test(c, root) {
                    f(c, i as u32);
                }
            }
        }
        _ => {}
    }
}

/// RFC 9535 slice indices, in selection order.
fn slice_indices(len: usize, start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<usize> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    let norm = |i: i64| if i >= 0 { i } else { len.saturating_add(i) };
    let mut out = Vec::new();
    if step > 0 {
        let lower = norm(start.unwrap_or(0)).clamp(0, len);
        let upper = norm(end.unwrap_or(len)).clamp(0, len);
        let mut i = lower;
        while i < upper {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else if step < 0 {
        let upper = start.map(norm).unwrap_or(len - 1).clamp(-1, len - 1);
        let lower = end.map(norm).unwrap_or(-1).clamp(-1, len - 1);
        let mut i = upper;
        while lower < i {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    out
}

impl Expr {
    fn test(&self, cur: &Json, root: &Json) -> bool {
        match self {
            Expr::Or(v) => v.iter().any(|e| e.test(cur, root)),
            Expr::And(v) => v.iter().all(|e| e.test(cur, root)),
            Expr::Not(e) => !e.test(cur, root),
            Expr::Exists(q) => !q.eval(cur, root).is_empty(),
            Expr::Cmp(a, op, b, re) => {
                let (x, y) = (a.value(cur, root), b.value(cur, root));
                compare(*op, x, y, re.as_ref())
            }
        }
    }
}

impl Query {
    fn eval<'a>(&self, cur: &'a Json, root: &'a Json) -> Vec<(&'a Json, Loc)> {
        eval(&self.segments, root, if self.absolute { root } else { cur }, false)
    }
}

impl Operand {
    fn value<'a>(&'a self, cur: &'a Json, root: &'a Json) -> Option<&'a Json> {
        match self {
            Operand::Lit(v) => Some(v),
            Operand::Query(q) => q.eval(cur, root).into_iter().next().map(|(v, _)| v),
        }
    }
}

fn compare(op: Op, a: Option<&Json>, b: Option<&Json>, re: Option<&Regex>) -> bool {
    match op {
        Op::Eq => equal(a, b),
        Op::Ne => !equal(a, b),
        Op::Lt => less(a, b),
        Op::Gt => less(b, a),
        Op::Le => less(a, b) || equal(a, b),
        Op::Ge => less(b, a) || equal(a, b),
        Op::Match => match (a, b) {
            (Some(Json::Str(s)), Some(Json::Str(p))) => match re {
                Some(r) => r.is_match(s),
                None => std::str::from_utf8(p).ok().and_then(compile_regex).is_some_and(|r| r.is_match(s)),
            },
            _ => false,
        },
    }
}

fn compile_regex(p: &str) -> Option<Regex> {
    RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build().ok()
}

fn equal(a: Option<&Json>, b: Option<&Json>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => value_eq(x, y),
        _ => false,
    }
}

/// Filter equality: numbers compare by value whatever their kind.
fn value_eq(x: &Json, y: &Json) -> bool {
    match (x, y) {
        (Json::Int(a), Json::Int(b)) => a == b,
        (a, b) if a.is_number() && b.is_number() => a.as_f64() == b.as_f64(),
        (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(p, q)| value_eq(p, q)),
        (Json::Object(a), Json::Object(_)) => {
            matches!(y, Json::Object(b) if b.len() == a.len()) && a.iter().all(|(k, v)| y.member(k).is_some_and(|(_, w)| value_eq(v, w)))
        }
        _ => x.same(y),
    }
}

fn less(a: Option<&Json>, b: Option<&Json>) -> bool {
    match (a, b) {
        (Some(Json::Int(x)), Some(Json::Int(y))) => x < y,
        (Some(x), Some(y)) if x.is_number() && y.is_number() => x.as_f64() < y.as_f64(),
        (Some(Json::Str(x)), Some(Json::Str(y))) => **x < **y,
        _ => false,
    }
}

mod parse;

use parse::Parser;

#[cfg(test)]
mod tests;
