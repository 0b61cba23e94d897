//! A stream node: consecutive entries packed in one buffer, as Redis packs
//! a listpack of its stream's radix tree. The node's key (its master ID)
//! is the ID of the first entry appended to it; each entry stores its ID
//! as deltas from it, and leaves its field names out when they are those
//! of that first entry (SAMEFIELDS). XDEL and trims cut entries out of the
//! buffer; a node without entries is dropped by its stream.

use super::fields::FieldsRef;
use super::StreamId;
use crate::types::pack::{self, entry_size, get_varint, put_varint, varint_size, write_entry, Pack};

/// The entry's field names are the node's.
const SAMEFIELDS: u8 = 1;

#[derive(Clone, Default)]
pub(super) struct Node {
    /// The field names of the first entry appended: their count (a
    /// varint), then the names as a `Pack` lays them out.
    names: Box<[u8]>,
    /// One entry per stream entry: a flags byte, the ms delta and the seq
    /// (delta when the ms delta is 0) as varints, then the values packed
    /// (SAMEFIELDS) or the pair count and the pairs packed.
    pack: Pack,
    /// Entries in the node.
    pub live: u32,
    /// Entries ever appended to it (what decides it is full, as Redis
    /// counts its live and deleted entries).
    pub added: u32,
}

impl Node {
    /// A node for entries from now on, whose first has `pairs`.
    pub fn new<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Node {
        let (n, size) = pairs.clone().fold((0u64, 0), |(n, size), (f, _)| (n + 1, size + entry_size(f.len())));
        let mut names = vec![0; varint_size(n) + size];
        let mut at = put_varint(&mut names, n);
        for (f, _) in pairs {
            at += put(&mut names[at..], f);
        }
        Node { names: names.into_boxed_slice(), ..Node::default() }
    }

    /// The number of field names and the names packed.
    fn names(&self) -> (usize, &[u8]) {
        let (n, h) = get_varint(&self.names);
        (n as usize, &self.names[h..])
    }

    /// Bytes of the packed entries (what decides the node is full).
    pub fn bytes(&self) -> usize {
        self.pack.bytes().len()
    }

    /// Appends entry `id` (above every ID in the node; `master` is the
    /// node's key).
    pub fn push<'a>(&mut self, master: StreamId, id: StreamId, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) {
        let (count, names) = self.names();
        let n = pairs.clone().count();
        let same = n == count && pairs.clone().map(|(f, _)| f).eq(pack::entries(names));
        let dms = id.ms.wrapping_sub(master.ms);
        let dseq = if dms == 0 { id.seq.wrapping_sub(master.seq) } else { id.seq };
        let body: usize = if same {
            pairs.clone().map(|(_, v)| entry_size(v.len())).sum()
        } else {
            varint_size(n as u64) + pairs.clone().map(|(f, v)| entry_size(f.len()) + entry_size(v.len())).sum::<usize>()
        };
        let len = 1 + varint_size(dms) + varint_size(dseq) + body;
        self.pack.push_back_with(len, |out| {
            out[0] = if same { SAMEFIELDS } else { 0 };
            let mut at = 1 + put_varint(&mut out[1..], dms);
            at += put_varint(&mut out[at..], dseq);
            if !same {
                at += put_varint(&mut out[at..], n as u64);
            }
            for (f, v) in pairs {
                if !same {
                    at += put(&mut out[at..], f);
                }
                at += put(&mut out[at..], v);
            }
        });
        self.live += 1;
        self.added += 1;
    }

    /// The node's entries, oldest first (`master`: the node's key).
    pub fn entries(&self, master: StreamId) -> Entries<'_> {
        let (count, names) = self.names();
        Entries { master, count, names, it: self.pack.iter() }
    }

    /// The ID of the node's newest entry.
    pub fn last_id(&self, master: StreamId) -> StreamId {
        self.pack.iter().next_back().map_or(master, |e| id_of(master, e).0)
    }

    /// Removes entry `id`; whether it was there.
    pub fn remove(&mut self, master: StreamId, id: StreamId) -> bool {
        let mut it = self.pack.iter();
        loop {
            let at = it.offset();
            let Some(e) = it.next() else { return false };
            let found = id_of(master, e).0;
            if found == id {
                self.pack.splice(at, it.offset() - at, None);
                self.live -= 1;
                return true;
            }
            if found > id {
                return false;
            }
        }
    }

    /// Drops the `n` oldest entries (fewer than `live`).
    pub fn drop_front(&mut self, n: usize) {
        self.pack.drop_front(n);
        self.live -= n as u32;
    }

    /// Gives back spare room once no entry will be appended.
    pub fn close(&mut self) {
        self.pack.shrink();
    }

    pub fn heap_size(&self) -> usize {
        self.names.len() + self.pack.heap_size()
    }
}

/// Writes `e` packed at the start of `out`; bytes written.
fn put(out: &mut [u8], e: &[u8]) -> usize {
    let n = entry_size(e.len());
    write_entry(&mut out[..n], e);
    n
}

/// An entry's ID and where its fields start in it.
fn id_of(master: StreamId, e: &[u8]) -> (StreamId, usize) {
    let (dms, a) = get_varint(&e[1..]);
    let (dseq, b) = get_varint(&e[1 + a..]);
    let seq = if dms == 0 { master.seq.wrapping_add(dseq) } else { dseq };
    (StreamId { ms: master.ms.wrapping_add(dms), seq }, 1 + a + b)
}

/// A node's entries, from either end.
pub(super) struct Entries<'a> {
    master: StreamId,
    count: usize,
    names: &'a [u8],
    it: pack::Iter<'a>,
}

impl<'a> Entries<'a> {
    fn decode(&self, e: &'a [u8]) -> (StreamId, FieldsRef<'a>) {
        let (id, at) = id_of(self.master, e);
        let fields =
            if e[0] & SAMEFIELDS != 0 { FieldsRef::with_names(self.count, self.names, &e[at..]) } else { FieldsRef::counted(&e[at..]) };
        (id, fields)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = (StreamId, FieldsRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.it.next()?;
        Some(self.decode(e))
    }
}

impl DoubleEndedIterator for Entries<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let e = self.it.next_back()?;
        Some(self.decode(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

    fn pairs(p: &[(&'static str, &'static str)]) -> Pairs<'static> {
        p.iter().map(|(f, v)| (f.as_bytes(), v.as_bytes())).collect()
    }

    #[test]
    fn entries_keep_ids_and_pairs_whatever_their_names() {
        let master = StreamId { ms: 1000, seq: 5 };
        let a = pairs(&[("sku", "s1"), ("qty", "2")]);
        let b = pairs(&[("sku", "s2")]);
        let mut node = Node::new(a.iter().copied());
        let ids = [master, StreamId { ms: 1000, seq: 9 }, StreamId { ms: 70_000, seq: 0 }, StreamId { ms: u64::MAX, seq: u64::MAX }];
        for (i, id) in ids.iter().enumerate() {
            node.push(master, *id, if i == 1 { b.iter().copied() } else { a.iter().copied() });
        }
        let read: Vec<(StreamId, Pairs<'_>)> = node.entries(master).map(|(id, f)| (id, f.iter().collect())).collect();
        let want: Vec<_> = ids.iter().enumerate().map(|(i, id)| (*id, if i == 1 { b.clone() } else { a.clone() })).collect();
        assert_eq!(read, want);
        assert!(node.entries(master).rev().map(|(id, _)| id).eq(ids.iter().rev().copied()));
        assert_eq!(node.entries(master).nth(2).map(|(_, f)| f.to_fields().len()), Some(2));
        assert_eq!(node.last_id(master), ids[3]);
        assert!(node.remove(master, ids[1]) && !node.remove(master, ids[1]) && !node.remove(master, StreamId { ms: 1000, seq: 10 }));
        node.drop_front(1);
        assert_eq!((node.live, node.added), (2, 4));
        assert!(node.entries(master).map(|(id, _)| id).eq([ids[2], ids[3]]));
    }
}
