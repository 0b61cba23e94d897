//! An entry's field/value pairs: `Fields` owns them (what a read keeps
//! after the stream changed), `FieldsRef` reads them where they are, in
//! an owned `Fields` or inside a stream node, whose entries may leave their
//! field names to the node's first entry (Redis's SAMEFIELDS).

use crate::types::pack::{self, get_varint, put_varint, varint_size, Pack};

/// Pairs packed in one allocation of their size: the number of pairs (a
/// LEB128 varint), then field, value, field, value... as a `Pack` lays
/// them out. An entry never changes once added.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(Box<[u8]>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Fields {
        let mut b = FieldsBuilder::default();
        for (f, v) in pairs {
            b.push(f, v);
        }
        b.finish()
    }

    pub fn view(&self) -> FieldsRef<'_> {
        FieldsRef::counted(&self.0)
    }

    pub fn iter(&self) -> FieldIter<'_> {
        self.view().iter()
    }

    pub fn len(&self) -> usize {
        self.view().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v)))).finish()
    }
}

/// Builds `Fields` a pair at a time.
#[derive(Default)]
pub struct FieldsBuilder {
    pack: Pack,
    pairs: usize,
}

impl FieldsBuilder {
    pub fn push(&mut self, f: &[u8], v: &[u8]) {
        self.pack.push_back(f);
        self.pack.push_back(v);
        self.pairs += 1;
    }

    pub fn finish(self) -> Fields {
        counted(self.pairs, self.pack.bytes())
    }
}

/// `Fields` of `pairs` pairs packed in `body`.
fn counted(pairs: usize, body: &[u8]) -> Fields {
    let mut out = vec![0; varint_size(pairs as u64) + body.len()];
    let h = put_varint(&mut out, pairs as u64);
    out[h..].copy_from_slice(body);
    Fields(out.into_boxed_slice())
}

/// An entry's pairs where they lie.
#[derive(Clone, Copy)]
pub struct FieldsRef<'a> {
    /// The packed field names when `body` holds values only.
    names: Option<&'a [u8]>,
    body: &'a [u8],
    pairs: usize,
}

impl<'a> FieldsRef<'a> {
    /// Pairs as `Fields` lays them out: their count, then the pairs.
    pub(super) fn counted(data: &'a [u8]) -> FieldsRef<'a> {
        let (n, h) = get_varint(data);
        FieldsRef { names: None, body: &data[h..], pairs: n as usize }
    }

    /// Values packed in `values` for the `pairs` field names packed in
    /// `names`.
    pub(super) fn with_names(pairs: usize, names: &'a [u8], values: &'a [u8]) -> FieldsRef<'a> {
        FieldsRef { names: Some(names), body: values, pairs }
    }

    pub fn len(&self) -> usize {
        self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    pub fn iter(&self) -> FieldIter<'a> {
        FieldIter { names: self.names.map(pack::entries), body: pack::entries(self.body) }
    }

    pub fn to_fields(&self) -> Fields {
        match self.names {
            None => counted(self.pairs, self.body),
            Some(_) => Fields::from_pairs(self.iter()),
        }
    }
}

impl<'a> IntoIterator for FieldsRef<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldIter<'a>;

    fn into_iter(self) -> FieldIter<'a> {
        self.iter()
    }
}

/// An entry's pairs, in order.
#[derive(Clone)]
pub struct FieldIter<'a> {
    names: Option<pack::Iter<'a>>,
    body: pack::Iter<'a>,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let name = match &mut self.names {
            Some(names) => names.next()?,
            None => self.body.next()?,
        };
        Some((name, self.body.next()?))
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldIter<'a>;

    fn into_iter(self) -> FieldIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_pairs_and_count() {
        assert!(Fields::new().is_empty() && Fields::new().iter().next().is_none());
        let f = Fields::from_pairs([(&b"sku"[..], &b"s1"[..]), (b"", b"x".as_slice())]);
        assert_eq!(f.len(), 2);
        assert_eq!(f.iter().collect::<Vec<_>>(), [(&b"sku"[..], &b"s1"[..]), (&b""[..], &b"x"[..])]);
        let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
        let many = Fields::from_pairs(names.iter().map(|n| (n.as_bytes(), n.as_bytes())));
        assert_eq!(many.len(), 300);
        assert!(many.iter().map(|(f, _)| f).eq(names.iter().map(|n| n.as_bytes())));
        assert_eq!(many.heap_size(), 2 + names.iter().map(|n| 2 * (n.len() + 2)).sum::<usize>());
    }
}
