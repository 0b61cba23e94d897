//! The large encoding itself: the arena, the counted B+tree of
//! `(score, id)` and the member index kept in step.

use super::*;
use crate::types::btree::BTree;
use foldhash::fast::FixedState;
use std::hash::BuildHasher;

// ---------------------------------------------------------------- tree encoding

#[derive(Clone)]
pub(super) struct Big {
    pub(super) tree: BTree,
    pub(super) index: Index,
    pub(super) arena: Arena,
    pub(super) hasher: FixedState,
}

impl Big {
    pub(super) fn new() -> Big {
        Big { tree: BTree::default(), index: Index::default(), arena: Arena::default(), hasher: FixedState::with_seed(rand::random()) }
    }

    #[inline]
    pub(super) fn hash(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    /// The first of two steps prefetching a lookup of `member`: starts
    /// loading its home slot in the index; returns its hash for the second.
    #[inline]
    pub(super) fn prefetch_head(&self, member: &[u8]) -> u32 {
        let h = self.hash(member);
        self.index.prefetch_home(h);
        h
    }

    /// The second step: starts loading the arena entries with that hash.
    #[inline]
    pub(super) fn prefetch_chain(&self, h: u32) {
        self.index.each_with_hash(h, |id| self.arena.prefetch(id));
    }

    /// (index position, id) of `member`.
    pub(super) fn find(&self, member: &[u8]) -> Option<((usize, usize), u32)> {
        let arena = &self.arena;
        let mut found = 0;
        let pos = self.index.find(self.hash(member), |id| {
            found = id;
            arena.member(id) == member
        })?;
        Some((pos, found))
    }

    /// Number of entries ordered before (score, member).
    pub(super) fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        let arena = &self.arena;
        self.tree.partition_point(|s, id| less(s, arena.member(id), score, member))
    }

    pub(super) fn insert_new(&mut self, score: f64, member: &[u8]) -> Result<(), ZSetFull> {
        let rank = self.rank_of(score, member);
        self.insert_at(rank, score, member)
    }

    /// Inserts a new member known to belong at `rank`.
    pub(super) fn insert_at(&mut self, rank: usize, score: f64, member: &[u8]) -> Result<(), ZSetFull> {
        let id = self.arena.alloc(score, member).ok_or(ZSetFull)?;
        let h = self.hash(member);
        self.index.insert(h, id);
        self.tree.insert(rank, score, id);
        Ok(())
    }

    pub(super) fn change_score(&mut self, id: u32, old: f64, new: f64) {
        let member = self.arena.member(id);
        let rank = self.rank_of(old, member);
        debug_assert_eq!(self.tree.get(rank).map(|e| e.1), Some(id));
        let prev_ok = rank == 0 || self.tree.get(rank - 1).is_some_and(|(s, p)| less(s, self.arena.member(p), new, member));
        let next_ok = self.tree.get(rank + 1).is_none_or(|(s, n)| less(new, member, s, self.arena.member(n)));
        if prev_ok && next_ok {
            self.tree.set_score(rank, new);
        } else {
            self.tree.remove(rank);
            let member = self.arena.member(id);
            let at = self.rank_of(new, member);
            self.tree.insert(at, new, id);
        }
        self.arena.set_score(id, new);
    }

    /// Removes the entry at `rank`, showing it to `f` first.
    pub(super) fn remove_rank(&mut self, rank: usize, f: impl FnOnce(&[u8], f64)) {
        let (score, id) = self.tree.remove(rank);
        let member = self.arena.member(id);
        f(member, score);
        let h = self.hash(member);
        if let Some(pos) = self.index.find(h, |x| x == id) {
            self.index.remove_at(pos);
        }
        self.forget(id);
    }

    pub(super) fn remove_member(&mut self, member: &[u8]) -> Option<f64> {
        let (pos, id) = self.find(member)?;
        let score = self.arena.score(id);
        let rank = self.rank_of(score, member);
        self.tree.remove(rank);
        self.index.remove_at(pos);
        self.forget(id);
        Some(score)
    }

    /// Frees the arena entry of a member already out of the tree and index.
    pub(super) fn forget(&mut self, id: u32) {
        if let Some(c) = self.arena.free(id, false) {
            self.compact(c);
        }
    }

    /// Moves the live entries of chunk `c` to the tail and frees it.
    pub(super) fn compact(&mut self, c: usize) {
        for old in self.arena.live_in(c) {
            let score = self.arena.score(old);
            let member = self.arena.member(old);
            let rank = self.rank_of(score, member);
            let h = self.hash(member);
            let Some(new) = self.arena.relocate(old) else { return };
            self.tree.set_id(rank, new);
            if let Some(pos) = self.index.find(h, |x| x == old) {
                self.index.set_at(pos, h, new);
            }
        }
        self.arena.release(c);
    }

    pub(super) fn heap_size(&self) -> usize {
        std::mem::size_of::<Big>() + self.tree.heap_size() + self.index.heap_size() + self.arena.heap_size()
    }
}
