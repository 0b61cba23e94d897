//! The RESP codec: `parse` turns bytes from a client into commands (RESP
//! multibulk or inline), `reply` writes RESP2/RESP3 replies.

pub mod parse;
pub mod reply;

pub use parse::Parser;
pub use reply::{reply_over, reply_too_big, set_reply_max, tally_reply, write_bulk, Out, ReplyBudget};
