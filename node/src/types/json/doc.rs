//! What a JSON key holds (`JsonDoc`): a document kept as canonical text or
//! as a tree, moving from the one to the other, its memory accounting and
//! its binary form for DUMP/RESTORE.

use std::borrow::Cow;

use super::text::{is_canonical, TEXT_MAX};
use super::value::{write_compact_within, Json, Members, ParseError, MAX_DEPTH};
use crate::types::codec::{put_len, Reader};
use crate::types::SmallBytes;

impl Json {
    /// Appends the binary form (see `dump_into` of `JsonDoc`).
    fn dump_node(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.push(T_NULL),
            Json::Bool(false) => out.push(T_FALSE),
            Json::Bool(true) => out.push(T_TRUE),
            Json::Int(n) => {
                out.push(T_INT);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Json::Float(f) => {
                out.push(T_FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Json::Str(s) => {
                out.push(T_STR);
                put_len(out, s.len());
                out.extend_from_slice(s);
            }
            Json::Array(a) => {
                out.push(T_ARRAY);
                put_len(out, a.len());
                for v in a {
                    v.dump_node(out);
                }
            }
            Json::Object(m) => {
                out.push(T_OBJECT);
                put_len(out, m.len());
                for (k, v) in m {
                    put_len(out, k.len());
                    out.extend_from_slice(k);
                    v.dump_node(out);
                }
            }
        }
    }
}

// Binary form tags.
const DUMP_VERSION: u8 = 1;
const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_STR: u8 = 5;
const T_ARRAY: u8 = 6;
const T_OBJECT: u8 = 7;

/// Decoding helpers on top of the shared reader.
trait ReadJson {
    fn string(&mut self) -> Option<SmallBytes>;
    fn node(&mut self, depth: usize) -> Option<Json>;
}

impl ReadJson for Reader<'_> {
    fn string(&mut self) -> Option<SmallBytes> {
        let n = self.len()?;
        let s = self.take(n)?;
        std::str::from_utf8(s).ok()?;
        Some(SmallBytes::new(s))
    }
    fn node(&mut self, depth: usize) -> Option<Json> {
        Some(match self.u8()? {
            T_NULL => Json::Null,
            T_FALSE => Json::Bool(false),
            T_TRUE => Json::Bool(true),
            T_INT => Json::Int(self.u64()? as i64),
            T_FLOAT => {
                let f = f64::from_bits(self.u64()?);
                if !f.is_finite() {
                    return None;
                }
                Json::Float(f)
            }
            T_STR => Json::Str(self.string()?),
            T_ARRAY => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let n = self.len()?;
                // Every element takes at least one byte: a bogus count cannot
                // make us reserve more than the input's size.
                let mut v = Vec::with_capacity(n.min(self.remaining()));
                for _ in 0..n {
                    v.push(self.node(depth + 1)?);
                }
                Json::Array(v)
            }
            T_OBJECT => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let n = self.len()?;
                let mut m = Members::with_capacity(n.min(self.remaining() / 2));
                for _ in 0..n {
                    let k = self.string()?;
                    let v = self.node(depth + 1)?;
                    m.push((k, v));
                }
                Json::Object(m)
            }
            _ => return None,
        })
    }
}

/// What a JSON key holds. A document written whole and no larger than
/// `text::TEXT_MAX` is kept as its canonical text (one allocation, about
/// the size of the text itself). Most static-path updates edit the text
/// (`splice`); other updates work on the tree
/// (`tree`) and then print it back (`settle`). Reads use `view`, which
/// never changes the form. Larger documents are kept as trees.
/// A tree document also keeps an upper bound of its memory use (so the
/// document size limit costs nothing per write; see `JsonDoc::reserve`).
#[derive(Clone, Debug)]
pub struct JsonDoc {
    repr: Repr,
    approx_bytes: usize,
}

#[derive(Clone, Debug)]
enum Repr {
    /// Canonical text (`text::is_canonical`).
    Text(Box<[u8]>),
    Tree(Json),
}

/// Largest memory a single JSON document may use (bytes, as `mem_size`
/// counts them).
pub const MAX_DOC_BYTES: usize = 128 << 20;

impl JsonDoc {
    /// A document holding the tree `root`.
    pub fn new(root: Json) -> JsonDoc {
        let approx_bytes = root.mem_size();
        JsonDoc { repr: Repr::Tree(root), approx_bytes }
    }

    /// A document for a whole JSON text (a JSON.SET at the root). Canonical
    /// text of at most `TEXT_MAX` bytes is checked in one pass and copied
    /// as it is, with no tree built; anything else is parsed (refusing what
    /// `Json::parse` refuses) and, when small enough, kept as its canonical
    /// text.
    pub fn parse(text: &[u8]) -> Result<JsonDoc, ParseError> {
        if text.len() <= TEXT_MAX && is_canonical(text) {
            return Ok(JsonDoc { repr: Repr::Text(text.into()), approx_bytes: 0 });
        }
        Ok(JsonDoc::from_tree(Json::parse(text)?))
    }

    /// A document for a parsed value: as text when its text is small enough.
    pub fn from_tree(root: Json) -> JsonDoc {
        if matches!(root, Json::Array(_) | Json::Object(_)) {
            let text = root.to_text();
            if text.len() <= TEXT_MAX {
                return JsonDoc { repr: Repr::Text(text.into()), approx_bytes: 0 };
            }
        }
        JsonDoc::new(root)
    }

    /// The canonical text, when the document is kept as text.
    pub fn text(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Text(t) => Some(t),
            Repr::Tree(_) => None,
        }
    }

    /// Replaces bytes `at` of the text with `with`, which the caller makes
    /// sure leaves the text canonical. Refuses (false) for a tree document
    /// or when the text would pass `TEXT_MAX`.
    pub fn splice(&mut self, at: std::ops::Range<usize>, with: &[u8]) -> bool {
        let Repr::Text(t) = &mut self.repr else { return false };
        let Some(old) = t.get(at.clone()) else { return false };
        if old.len() == with.len() {
            t[at].copy_from_slice(with);
            return true;
        }
        let len = t.len() - old.len() + with.len();
        if len > TEXT_MAX {
            return false;
        }
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&t[..at.start]);
        v.extend_from_slice(with);
        v.extend_from_slice(&t[at.end..]);
        *t = v.into_boxed_slice();
        true
    }

    /// The tree, built from the text first if the document is kept as text
    /// (it stays a tree from then on).
    pub fn tree(&mut self) -> &mut Json {
        if let Repr::Text(t) = &self.repr {
            // Canonical text always parses; a failure would be a bug, and
            // null is the least harmful stand-in.
            let root = Json::parse(t).unwrap_or(Json::Null);
            self.approx_bytes = root.mem_size();
            self.repr = Repr::Tree(root);
        }
        match &mut self.repr {
            Repr::Tree(root) => root,
            Repr::Text(_) => unreachable!("converted above"),
        }
    }

    /// Whether the document is in its compact form: kept as text, or a
    /// scalar (which lives in the header and owns no tree).
    pub fn is_compact(&self) -> bool {
        !matches!(self.repr, Repr::Tree(Json::Array(_) | Json::Object(_)))
    }

    /// Puts a tree document back to its canonical text when that is at
    /// most `TEXT_MAX` bytes (what a write on a compact document ends
    /// with); `hint` is the expected length of the text. Printing stops
    /// once the text passes `TEXT_MAX`, so a large tree costs at most that
    /// much printing.
    pub fn settle(&mut self, hint: usize) {
        let Repr::Tree(root @ (Json::Array(_) | Json::Object(_))) = &self.repr else { return };
        let mut text = Vec::with_capacity(hint.min(TEXT_MAX));
        if write_compact_within(root, &mut text, TEXT_MAX) {
            self.repr = Repr::Text(text.into_boxed_slice());
            self.approx_bytes = 0;
        }
    }

    /// The tree to read, leaving the document as it is: borrowed for a tree
    /// document, parsed afresh from a text one.
    pub fn view(&self) -> Cow<'_, Json> {
        match &self.repr {
            Repr::Tree(root) => Cow::Borrowed(root),
            Repr::Text(t) => Cow::Owned(Json::parse(t).unwrap_or(Json::Null)),
        }
    }

    /// The compact JSON text of the whole document.
    pub fn to_text(&self) -> Cow<'_, [u8]> {
        match &self.repr {
            Repr::Text(t) => Cow::Borrowed(t),
            Repr::Tree(root) => Cow::Owned(root.to_text()),
        }
    }

    /// Accounts for a write that adds up to `added` bytes; refuses it when
    /// the document would exceed `limit`. The running figure only grows (a
    /// replaced value is not subtracted), so when it passes the limit the
    /// real size is measured before refusing.
    pub fn reserve(&mut self, added: usize, limit: usize) -> bool {
        self.tree();
        let projected = self.approx_bytes.saturating_add(added);
        if projected <= limit {
            self.approx_bytes = projected;
            return true;
        }
        self.approx_bytes = self.tree().mem_size();
        let projected = self.approx_bytes.saturating_add(added);
        if projected <= limit {
            self.approx_bytes = projected;
            true
        } else {
            false
        }
    }

    /// Bytes the document uses: this struct (which holds the root node)
    /// plus the tree's heap or the text's allocation.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<JsonDoc>()
            + match &self.repr {
                Repr::Tree(root) => root.heap_size(),
                Repr::Text(t) => t.len(),
            }
    }

    /// Appends the document's binary form: a version byte, then each node as
    /// a tag byte followed by its payload (little-endian numbers, varint
    /// lengths, UTF-8 strings, members as key-value pairs in order).
    pub fn dump_into(&self, out: &mut Vec<u8>) {
        out.push(DUMP_VERSION);
        self.view().dump_node(out);
    }

    /// Reads what `dump_into` wrote; `None` for anything malformed
    /// (truncated, trailing bytes, bad UTF-8, too deep, unknown tags).
    pub fn from_dump(bytes: &[u8]) -> Option<Self> {
        let (&ver, rest) = bytes.split_first()?;
        if ver != DUMP_VERSION {
            return None;
        }
        let mut r = Reader::new(rest);
        let root = r.node(0)?;
        if r.remaining() != 0 {
            return None;
        }
        Some(JsonDoc::from_tree(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Json {
        Json::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn dump_round_trip_and_garbage() {
        let v = p("{\"s\":\"short\",\"l\":\"a string longer than twenty-two bytes\",\"n\":[1,-2,3.25,null,true,false],\"o\":{\"x\":{}}}");
        let doc = JsonDoc::new(v);
        let mut buf = Vec::new();
        doc.dump_into(&mut buf);
        let back = JsonDoc::from_dump(&buf).unwrap();
        assert!(back.view().same(&doc.view()));
        assert_eq!(back.to_text(), doc.to_text());
        for cut in 0..buf.len() {
            assert!(JsonDoc::from_dump(&buf[..cut]).is_none(), "truncated at {cut}");
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert!(JsonDoc::from_dump(&extra).is_none());
        assert!(JsonDoc::from_dump(&[DUMP_VERSION, T_ARRAY, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_none());
        assert!(JsonDoc::from_dump(&[DUMP_VERSION, T_STR, 1, 0xff]).is_none());
        assert!(JsonDoc::from_dump(&[9, T_NULL]).is_none());
        let deep: Vec<u8> = std::iter::once(DUMP_VERSION).chain(std::iter::repeat_n([T_ARRAY, 1], 200).flatten()).chain([T_NULL]).collect();
        assert!(JsonDoc::from_dump(&deep).is_none());
    }

    #[test]
    fn settle_prints_back_what_fits() {
        let small = p("{\"a\":[1,\"\\u0001\"],\"b\":{}}");
        let mut doc = JsonDoc::new(small.clone());
        doc.settle(0);
        assert_eq!(doc.text(), Some(&small.to_text()[..]));
        // Just past the limit, in a string, a key or an array: stays a tree.
        let at = |n: usize| format!("{{\"k\":\"{}\"}}", "x".repeat(n - 8));
        for (text, fits) in [(at(TEXT_MAX), true), (at(TEXT_MAX + 1), false)] {
            let mut doc = JsonDoc::new(p(&text));
            doc.settle(16);
            assert_eq!(doc.text().is_some(), fits, "{}", text.len());
        }
        let long_key = format!("{{\"{}\":1}}", "k".repeat(TEXT_MAX));
        let many = format!("[{}]", vec!["1"; TEXT_MAX / 2 + 1].join(","));
        for text in [long_key, many] {
            let mut doc = JsonDoc::new(p(&text));
            doc.settle(0);
            assert!(doc.text().is_none());
            assert!(doc.view().same(&p(&text)));
        }
    }

    #[test]
    fn size_limit_accounting() {
        let mut doc = JsonDoc::new(p("[1,2,3]"));
        let base = doc.tree().mem_size();
        assert!(doc.reserve(100, base + 100));
        // The running figure over-counts; a real measurement lets it through.
        assert!(doc.reserve(100, base + 100));
        assert!(!doc.reserve(101, base + 100));
    }
}
