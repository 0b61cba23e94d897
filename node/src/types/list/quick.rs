//! Redis's quicklist: a deque of nodes, each holding as many elements as
//! `list-max-listpack-size` lets one listpack hold, packed in one buffer
//! (`pack`). With a `list-compress-depth` above 0 the `depth` nodes at
//! each end stay as they are and every node between them is kept
//! LZF-compressed (a long queue is pushed and popped at its ends; its
//! middle is memory). A node is compressed as Redis does: only from 48
//! bytes, and only when that saves at least 8; a node that would not
//! shrink is left as it is until it changes. With depth 0 nothing is
//! compressed, and a node that is no longer at an end is shrunk to its
//! bytes.
//!
//! Elements are found by counting nodes from the nearer end; a compressed
//! node is expanded for a read into a temporary copy, and for a change in
//! place, then compressed again if it is still between the ends.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::Fill;
use crate::types::pack::{self, OwnedIter, Pack};
use crate::types::{lzf, SmallBytes};

/// Redis's `MIN_COMPRESS_BYTES` and `MIN_COMPRESS_IMPROVE`.
const MIN_COMPRESS_BYTES: usize = 48;
const MIN_COMPRESS_IMPROVE: usize = 8;

#[derive(Clone)]
pub struct Quick {
    depth: usize,
    fill: Fill,
    len: usize,
    nodes: VecDeque<Node>,
}

#[derive(Clone)]
struct Node {
    count: usize,
    /// The node's size as a listpack (what `list-max-listpack-size` limits).
    bytes: usize,
    body: Body,
}

#[derive(Clone)]
enum Body {
    /// Elements as they are; `tried`: compressing them did not pay.
    Raw { items: Pack, tried: bool },
    /// The packed elements, LZF-compressed.
    Lzf { raw_len: usize, data: Box<[u8]> },
}

/// A node's elements for reading: borrowed, or expanded from LZF.
pub enum NodeItems<'a> {
    Borrowed(pack::Iter<'a>),
    Owned(OwnedIter),
}

impl<'a> Iterator for NodeItems<'a> {
    type Item = Cow<'a, [u8]>;
    fn next(&mut self) -> Option<Cow<'a, [u8]>> {
        match self {
            NodeItems::Borrowed(it) => it.next().map(Cow::Borrowed),
            NodeItems::Owned(it) => it.next().map(Cow::Owned),
        }
    }
}

impl DoubleEndedIterator for NodeItems<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            NodeItems::Borrowed(it) => it.next_back().map(Cow::Borrowed),
            NodeItems::Owned(it) => it.next_back().map(Cow::Owned),
        }
    }
}

/// A compressed node's packed bytes. The data was written by `compress`
/// below: it decompresses to exactly `raw_len` bytes.
fn expand(raw_len: usize, data: &[u8]) -> Vec<u8> {
    lzf::decompress(data, raw_len).unwrap_or_default()
}

impl Node {
    fn new() -> Node {
        Node { count: 0, bytes: super::LISTPACK_HEADER, body: Body::Raw { items: Pack::default(), tried: false } }
    }

    fn items(&self) -> NodeItems<'_> {
        self.range(0, self.count)
    }

    /// Elements `from..to`.
    fn range(&self, from: usize, to: usize) -> NodeItems<'_> {
        match &self.body {
            Body::Raw { items, .. } => NodeItems::Borrowed(items.range(from, to, self.count)),
            Body::Lzf { raw_len, data } => NodeItems::Owned(OwnedIter::range(expand(*raw_len, data), from, to, self.count)),
        }
    }

    /// The elements, expanded in place if compressed; the node counts as
    /// changed (it may be compressed again).
    fn open(&mut self) -> &mut Pack {
        if let Body::Lzf { raw_len, data } = &self.body {
            let items = Pack::from_bytes(expand(*raw_len, data));
            self.body = Body::Raw { items, tried: false };
        }
        match &mut self.body {
            Body::Raw { items, tried } => {
                *tried = false;
                items
            }
            Body::Lzf { .. } => unreachable!("expanded above"),
        }
    }

    /// The elements, expanded (once) and opened for a change only if one
    /// of them equals `want`.
    fn open_matching(&mut self, want: &[u8]) -> Option<&mut Pack> {
        if let Body::Lzf { raw_len, data } = &self.body {
            let items = Pack::from_bytes(expand(*raw_len, data));
            if !items.iter().any(|e| e == want) {
                return None;
            }
            self.body = Body::Raw { items, tried: false };
        } else if !self.items().any(|e| *e == *want) {
            return None;
        }
        Some(self.open())
    }

    fn compress(&mut self) {
        let Body::Raw { items, tried } = &mut self.body else { return };
        if *tried {
            return;
        }
        *tried = true;
        if self.bytes < MIN_COMPRESS_BYTES {
            return;
        }
        let raw = items.bytes();
        let mut out = Vec::new();
        if raw.len() > MIN_COMPRESS_IMPROVE && lzf::compress(raw, raw.len() - MIN_COMPRESS_IMPROVE - 1, &mut out) {
            self.body = Body::Lzf { raw_len: raw.len(), data: out.into_boxed_slice() };
        }
    }

    fn decompress(&mut self) {
        if matches!(self.body, Body::Lzf { .. }) {
            self.open();
        }
    }

    /// Gives back the spare room of a node that is no longer at an end.
    fn shrink(&mut self) {
        if let Body::Raw { items, .. } = &mut self.body {
            items.shrink();
        }
    }

    fn recount(&mut self) {
        if let Body::Raw { items, .. } = &self.body {
            let (mut count, mut bytes) = (0, super::LISTPACK_HEADER);
            for e in items.iter() {
                count += 1;
                bytes += super::entry_bytes(e.len());
            }
            (self.count, self.bytes) = (count, bytes);
        }
    }

    fn heap_size(&self) -> usize {
        match &self.body {
            Body::Raw { items, .. } => items.heap_size(),
            Body::Lzf { data, .. } => data.len(),
        }
    }
}

impl Quick {
    pub fn new(fill: Fill, depth: usize) -> Quick {
        Quick { depth, fill, len: 0, nodes: VecDeque::new() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn fill(&self) -> Fill {
        self.fill
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// How many of the nodes are held compressed.
    #[cfg(test)]
    pub fn compressed_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.body, Body::Lzf { .. })).count()
    }

    /// Node `k`'s elements (expanded into a copy if compressed).
    pub fn node_items(&self, k: usize) -> NodeItems<'_> {
        self.nodes[k].items()
    }

    /// Node `k`'s elements `from..to`, found from the nearer end of the
    /// node.
    pub fn node_range(&self, k: usize, from: usize, to: usize) -> NodeItems<'_> {
        self.nodes[k].range(from, to)
    }

    pub fn node_len(&self, k: usize) -> usize {
        self.nodes[k].count
    }

    /// The node holding element `i` (< len) and its offset there, counted
    /// from the nearer end.
    pub fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut at = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if at < n.count {
                    return (k, at);
                }
                at -= n.count;
            }
        } else {
            let mut from_end = self.len - 1 - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if from_end < n.count {
                    return (k, n.count - 1 - from_end);
                }
                from_end -= n.count;
            }
        }
        unreachable!("index {i} within a list of {}", self.len)
    }

    /// Compresses the nodes between the ends and expands those within
    /// `depth` of either end (Redis's `__quicklistCompress`), looking only
    /// at the `depth + 1` nodes of each end and at `touched`.
    /// With depth 0 the end nodes keep their spare room for pushes and
    /// the others are shrunk.
    fn settle(&mut self, touched: std::ops::Range<usize>) {
        let n = self.nodes.len();
        let (depth, compress) = (self.depth.max(1), self.depth > 0);
        let inner = |i: usize| i >= depth && i + depth < n;
        let ends = (depth + 1).min(n);
        let fix = |nodes: &mut VecDeque<Node>, i: usize| match (inner(i), compress) {
            (true, true) => nodes[i].compress(),
            (true, false) => nodes[i].shrink(),
            (false, _) => nodes[i].decompress(),
        };
        for i in (0..ends).chain(n - ends..n).chain(touched.start.min(n)..touched.end.min(n)) {
            fix(&mut self.nodes, i);
        }
    }

    pub fn push(&mut self, left: bool, v: &[u8]) {
        let add = super::entry_bytes(v.len());
        let end = if left { self.nodes.front() } else { self.nodes.back() };
        let added = !end.is_some_and(|n| self.fill.allows(n.count, n.bytes + add));
        if added {
            if self.nodes.is_empty() {
                // Most lists are one node: no room for three more.
                self.nodes.reserve_exact(1);
            }
            if left {
                self.nodes.push_front(Node::new());
            } else {
                self.nodes.push_back(Node::new());
            }
        }
        let k = if left { 0 } else { self.nodes.len() - 1 };
        let node = &mut self.nodes[k];
        let items = node.open();
        if left {
            items.push_front(v);
        } else {
            items.push_back(v);
        }
        node.count += 1;
        node.bytes += add;
        self.len += 1;
        // Only a new end node changes which nodes are inner (the end node
        // written to was just opened): a push into room costs no walk.
        if added {
            self.settle(k..k + 1);
        }
    }

    pub fn pop(&mut self, left: bool) -> Option<SmallBytes> {
        let k = if left { 0 } else { self.nodes.len().checked_sub(1)? };
        let node = self.nodes.get_mut(k)?;
        let items = node.open();
        let v = if left { items.pop_front() } else { items.pop_back() }?;
        node.count -= 1;
        node.bytes -= super::entry_bytes(v.len());
        if node.count == 0 {
            self.nodes.remove(k);
        }
        self.len -= 1;
        self.settle(0..0);
        Some(v)
    }

    pub fn get(&self, i: usize) -> Option<Cow<'_, [u8]>> {
        if i >= self.len {
            return None;
        }
        let (k, off) = self.locate(i);
        let node = &self.nodes[k];
        match &node.body {
            Body::Raw { items, .. } => items.get(off, node.count).map(Cow::Borrowed),
            Body::Lzf { .. } => node.items().nth(off),
        }
    }

    /// Changes node `k`'s elements with `f`, then splits the node if it
    /// outgrew `list-max-listpack-size`, drops it if empty, and settles.
    /// `f` gets the node's elements and their count.
    fn edit<R>(&mut self, k: usize, f: impl FnOnce(&mut Pack, usize) -> R) -> R {
        let node = &mut self.nodes[k];
        let count = node.count;
        let r = f(node.open(), count);
        node.recount();
        let mut made = 1;
        if node.count == 0 {
            self.nodes.remove(k);
            made = 0;
        } else if node.count > 1 && !self.fill.allows(node.count, node.bytes) {
            made = self.split(k);
        }
        self.len = self.nodes.iter().map(|n| n.count).sum();
        self.settle(k..k + made);
        r
    }

    /// Splits node `k` into nodes each as full as the fill allows; how
    /// many nodes it became.
    fn split(&mut self, k: usize) -> usize {
        let Body::Raw { items, .. } = &mut self.nodes[k].body else { return 1 };
        let items = std::mem::take(items);
        let mut parts: Vec<Node> = Vec::new();
        for e in items.iter() {
            let add = super::entry_bytes(e.len());
            match parts.last_mut() {
                Some(n) if self.fill.allows(n.count, n.bytes + add) => {
                    n.count += 1;
                    n.bytes += add;
                    n.open().push_back(e);
                }
                _ => {
                    let mut n = Node::new();
                    n.count = 1;
                    n.bytes += add;
                    n.open().push_back(e);
                    parts.push(n);
                }
            }
        }
        let made = parts.len();
        self.nodes.remove(k);
        for (j, n) in parts.into_iter().enumerate() {
            self.nodes.insert(k + j, n);
        }
        made
    }

    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (k, off) = self.locate(i);
        self.edit(k, |items, count| items.set(off, count, v));
        true
    }

    /// Inserts `v` before element `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        if i == 0 || i >= self.len {
            return self.push(i == 0, v);
        }
        let (k, off) = self.locate(i);
        self.edit(k, |items, count| items.insert(off, count, v));
    }

    /// Removes element `i` (the model test's single removals; commands
    /// remove through `remove_matching`).
    #[cfg(test)]
    pub fn remove(&mut self, i: usize) {
        if i < self.len {
            let (k, off) = self.locate(i);
            self.edit(k, |items, count| items.remove(off, count));
        }
    }

    /// Removes up to `limit` elements equal to `want`, from the head (or
    /// the tail), expanding only the nodes that hold a match; how many.
    pub fn remove_matching(&mut self, want: &[u8], limit: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let n = self.nodes.len();
        for j in 0..n {
            if removed == limit {
                break;
            }
            let k = if from_tail { n - 1 - j } else { j };
            let node = &mut self.nodes[k];
            let count = node.count;
            let Some(items) = node.open_matching(want) else { continue };
            removed += super::remove_matches(items, count, want, limit - removed, from_tail);
            node.recount();
        }
        if removed > 0 {
            self.nodes.retain(|n| n.count > 0);
            self.len -= removed;
            let n = self.nodes.len();
            self.settle(0..n);
        }
        removed
    }

    /// Keeps elements `start..=end` (`start <= end < len`), dropping whole
    /// nodes outside the range without expanding them.
    pub fn keep(&mut self, start: usize, end: usize) {
        let mut head = start;
        while head > 0 {
            let count = self.nodes[0].count;
            if count <= head {
                self.nodes.pop_front();
                head -= count;
            } else {
                self.nodes[0].open().drop_front(head);
                self.nodes[0].recount();
                head = 0;
            }
        }
        let mut tail = self.len - 1 - end;
        while tail > 0 {
            let last = self.nodes.len() - 1;
            let count = self.nodes[last].count;
            if count <= tail {
                self.nodes.pop_back();
                tail -= count;
            } else {
                self.nodes[last].open().truncate(count - tail, count);
                self.nodes[last].recount();
                tail = 0;
            }
        }
        self.len = end + 1 - start;
        self.settle(0..0);
    }

    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.nodes.iter().map(Node::heap_size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(q: &Quick) -> Vec<Vec<u8>> {
        (0..q.node_count()).flat_map(|k| q.node_items(k).map(|e| e.to_vec()).collect::<Vec<_>>()).collect()
    }

    fn check(q: &Quick, model: &VecDeque<Vec<u8>>) {
        assert_eq!(q.len(), model.len());
        assert_eq!(all(q), model.iter().cloned().collect::<Vec<_>>());
        let n = q.node_count();
        for k in 0..n {
            let inner = k >= q.depth && k + q.depth < n;
            if !inner {
                assert!(matches!(q.nodes[k].body, Body::Raw { .. }), "node {k} of {n} is within {} of an end", q.depth);
            }
            assert!(q.nodes[k].count > 0, "no empty nodes");
        }
    }

    /// Random operations against a deque, for several fills and depths.
    #[test]
    fn matches_a_deque_under_random_operations() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for (fill, depth) in
            [(Fill(1), 1), (Fill(3), 1), (Fill(5), 2), (Fill(-1), 1), (Fill(-2), 3), (Fill(0), 2), (Fill(3), 0), (Fill(-2), 0)]
        {
            let mut q = Quick::new(fill, depth);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..3000 {
                let v = vec![b'a' + (step % 26) as u8; 1 + rnd(300)];
                match rnd(9) {
                    0 | 1 => {
                        let left = rnd(2) == 0;
                        q.push(left, &v);
                        if left {
                            model.push_front(v)
                        } else {
                            model.push_back(v)
                        }
                    }
                    2 => {
                        let left = rnd(2) == 0;
                        let got = q.pop(left).map(|e| e.to_vec());
                        assert_eq!(got, if left { model.pop_front() } else { model.pop_back() });
                    }
                    3 if !model.is_empty() => {
                        let i = rnd(model.len());
                        assert!(q.set(i, &v));
                        model[i] = v;
                    }
                    4 => {
                        let i = rnd(model.len() + 1);
                        q.insert(i, &v);
                        model.insert(i, v);
                    }
                    5 if !model.is_empty() => {
                        let i = rnd(model.len());
                        q.remove(i);
                        model.remove(i);
                    }
                    7 if !model.is_empty() => {
                        // Push a few copies of an element, then remove some.
                        let want = model[rnd(model.len())].clone();
                        for _ in 0..rnd(3) {
                            let i = rnd(model.len() + 1);
                            q.insert(i, &want);
                            model.insert(i, want.clone());
                        }
                        let (limit, from_tail) = (1 + rnd(3), rnd(2) == 0);
                        let mut gone = 0;
                        let order: Vec<usize> = if from_tail { (0..model.len()).rev().collect() } else { (0..model.len()).collect() };
                        let mut drop_at = Vec::new();
                        for i in order {
                            if gone < limit && model[i] == want {
                                drop_at.push(i);
                                gone += 1;
                            }
                        }
                        drop_at.sort_unstable_by(|a, b| b.cmp(a));
                        for i in drop_at {
                            model.remove(i);
                        }
                        assert_eq!(q.remove_matching(&want, limit, from_tail), gone);
                    }
                    6 if model.len() > 4 && rnd(10) == 0 => {
                        let a = rnd(model.len() / 2);
                        let b = a + rnd(model.len() - a);
                        q.keep(a, b);
                        model.truncate(b + 1);
                        model.drain(..a);
                    }
                    _ if !model.is_empty() => {
                        let i = rnd(model.len());
                        assert_eq!(q.get(i).map(|e| e.to_vec()), Some(model[i].clone()));
                    }
                    _ => {}
                }
                check(&q, &model);
            }
        }
    }

    #[test]
    fn the_middle_is_compressed_and_smaller() {
        let mut q = Quick::new(Fill(-2), 1);
        for i in 0..20_000 {
            q.push(false, format!("order:{i:08}:status:pending").as_bytes());
        }
        let n = q.node_count();
        assert!(n > 10, "{n} nodes");
        assert_eq!(q.compressed_nodes(), n - 2, "all but the two end nodes");
        let raw: usize = 20_000 * std::mem::size_of::<SmallBytes>();
        assert!(q.heap_size() * 3 < raw, "{} bytes against {raw} uncompressed", q.heap_size());
        assert_eq!(&q.get(10_000).expect("in range")[..], b"order:00010000:status:pending");
    }

    #[test]
    fn incompressible_nodes_stay_raw() {
        let mut q = Quick::new(Fill(2), 1);
        let mut x = 7u32;
        for _ in 0..10 {
            let v: Vec<u8> = (0..60)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            q.push(false, &v);
        }
        assert_eq!(q.node_count(), 5);
        assert_eq!(q.compressed_nodes(), 0);
    }
}
