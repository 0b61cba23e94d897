//! The ordered part of a large sorted set: an order-statistic B+tree of
//! `(score, member id)` entries.
//!
//! The tree knows nothing about member bytes. Every structural operation is
//! addressed by rank (insert at rank r, remove rank r), and searches take a
//! monotone predicate (`partition_point`) that the caller evaluates with
//! whatever comparison it needs (score, then member bytes looked up by id).
//! Each inner node keeps, per child, the child's entry count (so a rank is
//! found in O(log n)) and the child's first entry (so a predicate can be
//! evaluated without visiting the child).
//!
//! Memory: a leaf holds up to `LEAF_CAP` entries in two parallel arrays (12
//! bytes per entry, 1016 bytes per leaf: one 1 KiB allocator class). A full
//! leaf first shares entries with a neighbour that has room and only splits
//! when both are full, so leaves stay well filled under random inserts and
//! nearly full under ascending ones.

/// Entries per leaf.
pub const LEAF_CAP: usize = 84;
/// Children per inner node.
const INNER_CAP: usize = 64;
/// A leaf with fewer entries is merged with or refilled from a neighbour.
const LEAF_MIN: usize = LEAF_CAP / 3;
/// An inner node with fewer children is merged with or refilled from a neighbour.
const INNER_MIN: usize = INNER_CAP / 3;

#[derive(Clone)]
struct Leaf {
    scores: [f64; LEAF_CAP],
    ids: [u32; LEAF_CAP],
    len: u32,
}

impl Leaf {
    fn new() -> Box<Leaf> {
        Box::new(Leaf { scores: [0.0; LEAF_CAP], ids: [0; LEAF_CAP], len: 0 })
    }

    #[inline]
    fn n(&self) -> usize {
        self.len as usize
    }

    fn insert(&mut self, at: usize, score: f64, id: u32) {
        let n = self.n();
        debug_assert!(n < LEAF_CAP && at <= n);
        self.scores.copy_within(at..n, at + 1);
        self.ids.copy_within(at..n, at + 1);
        self.scores[at] = score;
        self.ids[at] = id;
        self.len += 1;
    }

    fn remove(&mut self, at: usize) -> (f64, u32) {
        let n = self.n();
        let e = (self.scores[at], self.ids[at]);
        self.scores.copy_within(at + 1..n, at);
        self.ids.copy_within(at + 1..n, at);
        self.len -= 1;
        e
    }

    /// Moves the last `k` entries of `self` to the front of `right`.
    fn shift_right(&mut self, right: &mut Leaf, k: usize) {
        let (n, m) = (self.n(), right.n());
        right.scores.copy_within(0..m, k);
        right.ids.copy_within(0..m, k);
        right.scores[..k].copy_from_slice(&self.scores[n - k..n]);
        right.ids[..k].copy_from_slice(&self.ids[n - k..n]);
        self.len -= k as u32;
        right.len += k as u32;
    }

    /// Moves the first `k` entries of `right` to the end of `self`.
    fn shift_left(&mut self, right: &mut Leaf, k: usize) {
        let (n, m) = (self.n(), right.n());
        self.scores[n..n + k].copy_from_slice(&right.scores[..k]);
        self.ids[n..n + k].copy_from_slice(&right.ids[..k]);
        right.scores.copy_within(k..m, 0);
        right.ids.copy_within(k..m, 0);
        self.len += k as u32;
        right.len -= k as u32;
    }
}

#[derive(Clone)]
enum Node {
    Leaf(Box<Leaf>),
    Inner(Vec<Child>),
}

#[derive(Clone)]
struct Child {
    node: Node,
    /// Entries in the subtree.
    count: u32,
    /// The subtree's first entry.
    min_score: f64,
    min_id: u32,
}

impl Child {
    fn new(node: Node) -> Child {
        let mut c = Child { count: node.count() as u32, min_score: 0.0, min_id: 0, node };
        c.refresh_min();
        c
    }

    #[inline]
    fn refresh_min(&mut self) {
        if let Some((s, id)) = self.node.first() {
            self.min_score = s;
            self.min_id = id;
        }
    }

    /// Recomputes the count and the first entry after entries moved.
    fn refresh(&mut self) {
        self.count = self.node.count() as u32;
        self.refresh_min();
    }
}

fn new_inner() -> Vec<Child> {
    Vec::with_capacity(INNER_CAP)
}

impl Node {
    /// Number of slots used (entries of a leaf, children of an inner node).
    fn size(&self) -> usize {
        match self {
            Node::Leaf(l) => l.n(),
            Node::Inner(k) => k.len(),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Node::Leaf(l) => l.n() == LEAF_CAP,
            Node::Inner(k) => k.len() == INNER_CAP,
        }
    }

    fn cap(&self) -> usize {
        match self {
            Node::Leaf(_) => LEAF_CAP,
            Node::Inner(_) => INNER_CAP,
        }
    }

    fn min_size(&self) -> usize {
        match self {
            Node::Leaf(_) => LEAF_MIN,
            Node::Inner(_) => INNER_MIN,
        }
    }

    /// Entries in the subtree.
    fn count(&self) -> usize {
        match self {
            Node::Leaf(l) => l.n(),
            Node::Inner(k) => k.iter().map(|c| c.count as usize).sum(),
        }
    }

    fn first(&self) -> Option<(f64, u32)> {
        match self {
            Node::Leaf(l) => (l.len > 0).then(|| (l.scores[0], l.ids[0])),
            Node::Inner(k) => k.first().map(|c| (c.min_score, c.min_id)),
        }
    }

    /// Splits off the upper half into a new node of the same kind.
    fn split(&mut self) -> Node {
        match self {
            Node::Leaf(l) => {
                let mut right = Leaf::new();
                let k = l.n() / 2;
                l.shift_right(&mut right, k);
                Node::Leaf(right)
            }
            Node::Inner(kids) => {
                let mut right = new_inner();
                let at = kids.len() / 2;
                right.extend(kids.drain(at..));
                Node::Inner(right)
            }
        }
    }
}

/// Moves slots between two neighbouring nodes of the same kind so that
/// their sizes differ by at most one.
fn equalize(left: &mut Node, right: &mut Node) {
    let total = left.size() + right.size();
    let want_left = total.div_ceil(2);
    match (left, right) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            if a.n() > want_left {
                let k = a.n() - want_left;
                a.shift_right(b, k);
            } else if a.n() < want_left {
                let k = want_left - a.n();
                a.shift_left(b, k);
            }
        }
        (Node::Inner(a), Node::Inner(b)) => {
            if a.len() > want_left {
                let moved: Vec<Child> = a.drain(want_left..).collect();
                b.splice(0..0, moved);
            } else if a.len() < want_left {
                let k = want_left - a.len();
                a.extend(b.drain(..k));
            }
        }
        _ => unreachable!("siblings are at the same depth"),
    }
}

/// Appends every slot of `right` to `left` (their total fits in one node).
fn merge(left: &mut Node, right: Node) {
    match (left, right) {
        (Node::Leaf(a), Node::Leaf(mut b)) => {
            let k = b.n();
            a.shift_left(&mut b, k);
        }
        (Node::Inner(a), Node::Inner(b)) => a.extend(b),
        _ => unreachable!("siblings are at the same depth"),
    }
}

/// The child holding rank `rank` for a lookup (`rank` < total), and the rank
/// within it.
fn locate(kids: &[Child], mut rank: usize) -> (usize, usize) {
    let last = kids.len() - 1;
    for (i, c) in kids.iter().enumerate() {
        if rank < c.count as usize || i == last {
            return (i, rank);
        }
        rank -= c.count as usize;
    }
    (last, rank)
}

/// The child an insertion at `rank` (<= total) goes to, and the rank within
/// it. At a boundary the entry is appended to the left child.
fn locate_insert(kids: &[Child], mut rank: usize) -> (usize, usize) {
    let last = kids.len() - 1;
    for (i, c) in kids.iter().enumerate() {
        if rank <= c.count as usize || i == last {
            return (i, rank);
        }
        rank -= c.count as usize;
    }
    (last, rank)
}

#[derive(Clone)]
pub struct BTree {
    root: Node,
    len: usize,
}

impl Default for BTree {
    fn default() -> Self {
        BTree { root: Node::Leaf(Leaf::new()), len: 0 }
    }
}

impl BTree {
    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry at `rank`.
    pub fn get(&self, mut rank: usize) -> Option<(f64, u32)> {
        if rank >= self.len {
            return None;
        }
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(l) => return Some((l.scores[rank], l.ids[rank])),
                Node::Inner(kids) => {
                    let (i, r) = locate(kids, rank);
                    node = &kids[i].node;
                    rank = r;
                }
            }
        }
    }

    /// The number of leading entries for which `pred(score, id)` holds.
    /// `pred` must hold for a prefix of the entries and fail for the rest.
    pub fn partition_point(&self, mut pred: impl FnMut(f64, u32) -> bool) -> usize {
        let mut base = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(l) => {
                    let (mut lo, mut hi) = (0, l.n());
                    while lo < hi {
                        let mid = (lo + hi) / 2;
                        if pred(l.scores[mid], l.ids[mid]) {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    return base + lo;
                }
                Node::Inner(kids) => {
                    let k = kids.partition_point(|c| pred(c.min_score, c.min_id));
                    if k == 0 {
                        return base;
                    }
                    base += kids[..k - 1].iter().map(|c| c.count as usize).sum::<usize>();
                    node = &kids[k - 1].node;
                }
            }
        }
    }

    /// Inserts an entry so that it gets rank `rank` (<= len).
    pub fn insert(&mut self, rank: usize, score: f64, id: u32) {
        debug_assert!(rank <= self.len);
        if self.root.is_full() {
            let mut left = std::mem::replace(&mut self.root, Node::Inner(Vec::new()));
            let right = left.split();
            let mut kids = new_inner();
            kids.push(Child::new(left));
            kids.push(Child::new(right));
            self.root = Node::Inner(kids);
        }
        insert_into(&mut self.root, rank, score, id);
        self.len += 1;
    }

    /// Removes and returns the entry at `rank` (< len).
    pub fn remove(&mut self, rank: usize) -> (f64, u32) {
        debug_assert!(rank < self.len);
        let e = remove_from(&mut self.root, rank);
        self.len -= 1;
        // An inner root left with a single child hands over to it.
        while let Node::Inner(kids) = &mut self.root {
            if kids.len() != 1 {
                break;
            }
            let only = kids.pop().map(|c| c.node).unwrap_or_else(|| Node::Leaf(Leaf::new()));
            self.root = only;
        }
        e
    }

    /// Replaces the member id of the entry at `rank` (the member moved).
    pub fn set_id(&mut self, rank: usize, id: u32) {
        update_at(&mut self.root, rank, &mut |s, i| {
            *i = id;
            let _ = s;
        });
    }

    /// Replaces the score of the entry at `rank`; the caller guarantees the
    /// entry keeps its rank.
    pub fn set_score(&mut self, rank: usize, score: f64) {
        update_at(&mut self.root, rank, &mut |s, _| *s = score);
    }

    /// Calls `f(score, id)` for the entries from rank `from` onwards
    /// (downwards when `rev`) until it returns false.
    pub fn for_each(&self, from: usize, rev: bool, mut f: impl FnMut(f64, u32) -> bool) {
        if from < self.len {
            walk(&self.root, from, rev, &mut f);
        }
    }

    /// Heap bytes used by the nodes.
    pub fn heap_size(&self) -> usize {
        fn node_size(n: &Node) -> usize {
            match n {
                Node::Leaf(_) => std::mem::size_of::<Leaf>(),
                Node::Inner(kids) => {
                    kids.capacity() * std::mem::size_of::<Child>() + kids.iter().map(|c| node_size(&c.node)).sum::<usize>()
                }
            }
        }
        node_size(&self.root)
    }

    /// Number of leaves (for tests and memory reports).
    #[cfg(test)]
    pub fn leaf_count(&self) -> usize {
        fn leaves(n: &Node) -> usize {
            match n {
                Node::Leaf(_) => 1,
                Node::Inner(kids) => kids.iter().map(|c| leaves(&c.node)).sum(),
            }
        }
        leaves(&self.root)
    }

    /// Checks every structural invariant (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        fn check_node(n: &Node, is_root: bool, depth: usize, leaf_depth: &mut Option<usize>) -> usize {
            if !is_root {
                assert!(n.size() >= 1, "empty non-root node");
            }
            match n {
                Node::Leaf(l) => {
                    match leaf_depth {
                        Some(d) => assert_eq!(*d, depth, "leaves at different depths"),
                        None => *leaf_depth = Some(depth),
                    }
                    l.n()
                }
                Node::Inner(kids) => {
                    assert!(kids.len() <= INNER_CAP);
                    assert!(!is_root || kids.len() >= 2, "inner root with one child");
                    let mut total = 0;
                    for c in kids {
                        let cnt = check_node(&c.node, false, depth + 1, leaf_depth);
                        assert_eq!(cnt, c.count as usize, "stale subtree count");
                        let (s, id) = c.node.first().expect("non-empty child");
                        assert!(s.to_bits() == c.min_score.to_bits() && id == c.min_id, "stale first entry");
                        total += cnt;
                    }
                    total
                }
            }
        }
        let mut d = None;
        assert_eq!(check_node(&self.root, true, 0, &mut d), self.len);
    }
}

fn insert_into(node: &mut Node, rank: usize, score: f64, id: u32) {
    match node {
        Node::Leaf(l) => l.insert(rank, score, id),
        Node::Inner(kids) => {
            let (mut i, mut r) = locate_insert(kids, rank);
            if kids[i].node.is_full() {
                make_room(kids, i);
                (i, r) = locate_insert(kids, rank);
            }
            insert_into(&mut kids[i].node, r, score, id);
            kids[i].count += 1;
            kids[i].refresh_min();
        }
    }
}

/// Child `i` is full: share its slots with a neighbour that has room for at
/// least two more, or split it. Afterwards no child an insertion can reach
/// is full. `kids` itself has room for one more child.
fn make_room(kids: &mut Vec<Child>, i: usize) {
    let cap = kids[i].node.cap();
    if i > 0 && kids[i - 1].node.size() + 2 <= cap {
        let (a, b) = kids.split_at_mut(i);
        equalize(&mut a[i - 1].node, &mut b[0].node);
        a[i - 1].refresh();
        b[0].refresh();
    } else if i + 1 < kids.len() && kids[i + 1].node.size() + 2 <= cap {
        let (a, b) = kids.split_at_mut(i + 1);
        equalize(&mut a[i].node, &mut b[0].node);
        a[i].refresh();
        b[0].refresh();
    } else {
        let right = kids[i].node.split();
        kids[i].refresh();
        kids.insert(i + 1, Child::new(right));
    }
}

fn remove_from(node: &mut Node, rank: usize) -> (f64, u32) {
    match node {
        Node::Leaf(l) => l.remove(rank),
        Node::Inner(kids) => {
            let (i, r) = locate(kids, rank);
            let e = remove_from(&mut kids[i].node, r);
            kids[i].count -= 1;
            if kids[i].node.size() < kids[i].node.min_size() && kids.len() > 1 {
                rebalance(kids, i);
            } else {
                kids[i].refresh_min();
            }
            e
        }
    }
}

/// Child `i` is under-full: merge it with a neighbour when both fit in one
/// node, otherwise even them out.
fn rebalance(kids: &mut Vec<Child>, i: usize) {
    let j = if i > 0 { i - 1 } else { i + 1 };
    let (l, r) = (i.min(j), i.max(j));
    if kids[l].node.size() + kids[r].node.size() <= kids[l].node.cap() {
        let right = kids.remove(r).node;
        merge(&mut kids[l].node, right);
        kids[l].refresh();
    } else {
        let (a, b) = kids.split_at_mut(r);
        equalize(&mut a[l].node, &mut b[0].node);
        a[l].refresh();
        b[0].refresh();
    }
}

fn update_at(node: &mut Node, rank: usize, f: &mut dyn FnMut(&mut f64, &mut u32)) {
    match node {
        Node::Leaf(l) => {
            if rank < l.n() {
                f(&mut l.scores[rank], &mut l.ids[rank]);
            }
        }
        Node::Inner(kids) => {
            let (i, r) = locate(kids, rank);
            update_at(&mut kids[i].node, r, f);
            kids[i].refresh_min();
        }
    }
}

/// Visits entries from `from` (a rank within `node`) forwards or backwards;
/// returns false once `f` asked to stop.
fn walk(node: &Node, from: usize, rev: bool, f: &mut dyn FnMut(f64, u32) -> bool) -> bool {
    match node {
        Node::Leaf(l) => {
            if rev {
                (0..=from.min(l.n().saturating_sub(1))).rev().all(|k| f(l.scores[k], l.ids[k]))
            } else {
                (from..l.n()).all(|k| f(l.scores[k], l.ids[k]))
            }
        }
        Node::Inner(kids) => {
            let (i, r) = locate(kids, from);
            if !walk(&kids[i].node, r, rev, f) {
                return false;
            }
            if rev {
                kids[..i].iter().rev().all(|c| c.count == 0 || walk(&c.node, c.count as usize - 1, true, f))
            } else {
                kids[i + 1..].iter().all(|c| walk(&c.node, 0, false, f))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn collect(t: &BTree) -> Vec<(f64, u32)> {
        let mut v = Vec::new();
        t.for_each(0, false, |s, id| {
            v.push((s, id));
            true
        });
        v
    }

    #[test]
    fn leaf_fits_an_allocator_class() {
        assert_eq!(std::mem::size_of::<Leaf>(), 1016);
    }

    #[test]
    fn random_rank_operations_match_a_vector() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut t = BTree::default();
        let mut model: Vec<(f64, u32)> = Vec::new();
        for step in 0..60_000u32 {
            let grow = (step / 10_000) % 2 == 0;
            if model.is_empty() || rng.random_bool(if grow { 0.7 } else { 0.3 }) {
                let r = rng.random_range(0..=model.len());
                t.insert(r, step as f64, step);
                model.insert(r, (step as f64, step));
            } else {
                let r = rng.random_range(0..model.len());
                assert_eq!(t.remove(r), model.remove(r));
            }
            if step % 997 == 0 {
                t.check();
                assert_eq!(collect(&t), model);
            }
        }
        t.check();
        assert_eq!(t.len(), model.len());
        for (r, e) in model.iter().enumerate().step_by(37) {
            assert_eq!(t.get(r), Some(*e));
        }
        let mut back = Vec::new();
        t.for_each(model.len() - 1, true, |s, id| {
            back.push((s, id));
            back.len() < 500
        });
        let want: Vec<_> = model.iter().rev().take(500).copied().collect();
        assert_eq!(back, want);
    }

    #[test]
    fn sorted_inserts_and_partition_point() {
        let mut t = BTree::default();
        for i in 0..10_000u32 {
            t.insert(i as usize, i as f64, i);
        }
        t.check();
        // Ascending inserts keep leaves nearly full.
        assert!(t.leaf_count() <= 10_000 / (LEAF_CAP - 4) + 2, "{} leaves", t.leaf_count());
        for x in [0.0, 0.5, 1.0, 4999.5, 9999.0, 10_000.0] {
            assert_eq!(t.partition_point(|s, _| s < x), (x.ceil() as usize).min(10_000));
        }
        for i in 0..10_000 {
            t.remove(0);
            if i % 1000 == 0 {
                t.check();
            }
        }
        assert!(t.is_empty());
        t.check();
    }

    #[test]
    fn set_score_and_id_refresh_first_entries() {
        let mut t = BTree::default();
        for i in 0..1000u32 {
            t.insert(i as usize, i as f64, i);
        }
        for r in (0..1000).step_by(7) {
            t.set_id(r, 5000 + r as u32);
            t.set_score(r, r as f64 - 0.5);
        }
        t.check();
        assert_eq!(t.get(7), Some((6.5, 5007)));
    }
}
