//! Slot moves: which slots go from which member to which, as one MoveSlots
//! call carries them.

use damselfly_proto::admin::SlotRange;

use crate::slots::count;

/// One MoveSlots call: `ranges` go from member `from` to member `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub ranges: Vec<SlotRange>,
}

impl Move {
    pub fn slot_count(&self) -> u32 {
        count(&self.ranges)
    }
}
