//! JSON commands (RedisJSON-compatible): JSON.SET/GET/MGET/MSET/MERGE/DEL/
//! FORGET/TYPE/CLEAR/TOGGLE/NUMINCRBY/NUMMULTBY/STRAPPEND/STRLEN/ARRAPPEND/
//! ARRINDEX/ARRINSERT/ARRLEN/ARRPOP/ARRTRIM/OBJKEYS/OBJLEN/RESP/DEBUG.
//!
//! Reply shapes follow RedisJSON: a `$` path replies with an array over all
//! matches (nil where a match has the wrong type); a legacy path replies with
//! one value (the first match, or the last one written) and errors where
//! RedisJSON errors. Every argument (JSON text, path, number) is parsed and
//! every match checked before the document is changed, so a failing command
//! leaves the key as it was.

use bytes::Bytes;

use super::notify::Notify;
use super::{cmd, flag::*, Combine, CommandSpec, Coord, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{SmallBytes, Value};
use crate::types::json::ops::{self, NumOp};
use crate::types::json::path::{Last, Loc};
use crate::types::json::text as json_text;
use crate::types::json::value::{self as jv, Format, Item, MAX_DEPTH, MAX_DOC_BYTES};
use crate::types::json::{err, parse_arg, parse_doc, parse_path, Json, JsonDoc, JsonPath};
use crate::util::{eq_ic, parse_i64};

mod in_text;
mod read;
mod write;

use read::*;
use write::*;

const J: &[&str] = &["json"];
const G: &str = "json";

pub static COMMANDS: &[CommandSpec] = &[
    cmd("json.set", -4, WRITE | DENYOOM | JOURNAL_ARGS, (1, 1, 1), J, G, "Sets or updates the JSON value at a path.", Exec::Shard(set))
        .notify(Notify::Each(ks::MODULE, "json.set")),
    cmd("json.get", -2, READONLY, (1, 1, 1), J, G, "Gets the value at one or more paths in JSON serialized form.", Exec::Shard(get)),
    cmd(
        "json.mget",
        -3,
        READONLY,
        (1, -2, 1),
        J,
        G,
        "Returns the values at a path from one or more keys.",
        Exec::Split(mget, Combine::Array),
    )
    .tips(&["request_policy:multi_shard"]),
    cmd(
        "json.mset",
        -4,
        WRITE | DENYOOM,
        (1, -1, 3),
        J,
        G,
        "Sets or updates the JSON value of one or more keys, atomically.",
        Exec::Coord(handler!(async |cx, a| mset(cx, a))),
    )
    .notify(Notify::Each(ks::MODULE, "json.mset")),
    cmd(
        "json.merge",
        -4,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Merges a given JSON value into matching paths (RFC 7396).",
        Exec::Shard(merge),
    )
    .notify(Notify::Each(ks::MODULE, "json.merge")),
    cmd("json.del", -2, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Deletes a value.", Exec::Shard(del))
        .notify(Notify::Each(ks::MODULE, "json.del")),
    cmd("json.forget", -2, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Deletes a value.", Exec::Shard(del))
        .notify(Notify::Each(ks::MODULE, "json.del")),
    cmd("json.type", -2, READONLY, (1, 1, 1), J, G, "Returns the type of the JSON value at path.", Exec::Shard(type_)),
    cmd(
        "json.clear",
        -2,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Clears all values from an array or an object and sets numeric values to 0.",
        Exec::Shard(clear),
    )
    .notify(Notify::Each(ks::MODULE, "json.clear")),
    cmd("json.toggle", 3, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Toggles a boolean value.", Exec::Shard(toggle))
        .notify(Notify::Each(ks::MODULE, "json.toggle")),
    cmd(
        "json.numincrby",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Increments the numeric value at path by a value.",
        Exec::Shard(numincrby),
    )
    .notify(Notify::Each(ks::MODULE, "json.numincrby")),
    cmd(
        "json.nummultby",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Multiplies the numeric value at path by a value.",
        Exec::Shard(nummultby),
    )
    .notify(Notify::Each(ks::MODULE, "json.nummultby")),
    cmd(
        "json.strappend",
        -3,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Appends a string to a JSON string value at path.",
        Exec::Shard(strappend),
    )
    .notify(Notify::Each(ks::MODULE, "json.strappend")),
    cmd("json.strlen", -2, READONLY, (1, 1, 1), J, G, "Returns the length of the JSON String at path in key.", Exec::Shard(strlen)),
    cmd(
        "json.arrappend",
        -4,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Appends one or more JSON values into the array at path after the last element in it.",
        Exec::Shard(arrappend),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrappend")),
    cmd(
        "json.arrindex",
        -4,
        READONLY,
        (1, 1, 1),
        J,
        G,
        "Returns the index of the first occurrence of a JSON scalar value in the array at path.",
        Exec::Shard(arrindex),
    ),
    cmd(
        "json.arrinsert",
        -5,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Inserts the JSON scalar(s) value at the specified index in the array at path.",
        Exec::Shard(arrinsert),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrinsert")),
    cmd("json.arrlen", -2, READONLY, (1, 1, 1), J, G, "Returns the length of the array at path.", Exec::Shard(arrlen)),
    cmd(
        "json.arrpop",
        -2,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Removes and returns the element at the specified index in the array at path.",
        Exec::Shard(arrpop),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrpop")),
    cmd(
        "json.arrtrim",
        5,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Trims the array at path to contain only the specified inclusive range of indices from start to stop.",
        Exec::Shard(arrtrim),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrtrim")),
    cmd("json.objkeys", -2, READONLY, (1, 1, 1), J, G, "Returns the JSON keys of the object at path.", Exec::Shard(objkeys)),
    cmd("json.objlen", -2, READONLY, (1, 1, 1), J, G, "Returns the number of keys of the object at path.", Exec::Shard(objlen)),
    cmd(
        "json.resp",
        -2,
        READONLY,
        (1, 1, 1),
        J,
        G,
        "Returns the JSON value at path in Redis Serialization Protocol (RESP).",
        Exec::Shard(resp),
    ),
    cmd("json.debug", -2, READONLY, (2, 2, 1), J, G, "Debugging container command (MEMORY, HELP).", Exec::Shard(debug)),
];

/// The document at `key`: `None` when missing, WRONGTYPE for other types.
fn doc<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a mut JsonDoc>> {
    let now = ctx.now;
    match ctx.db().get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Json(d) => Ok(Some(d)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The document at `key`, which must exist.
fn doc_required<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<&'a mut JsonDoc> {
    doc(ctx, key)?.ok_or_else(err::no_key)
}

/// A document a write command updates. However the command ends, dropping
/// it puts a document that was compact before (kept as text, or a scalar)
/// back to its canonical text when that is at most `text::TEXT_MAX`: tree
/// updates work on a temporary tree, and small documents stay as small as
/// they are at rest.
pub struct Editing<'a> {
    doc: &'a mut JsonDoc,
    /// The text's length before the update; `None` for a document that was
    /// not compact (a tree, left as one).
    before: Option<usize>,
}

impl<'a> Editing<'a> {
    pub fn new(doc: &'a mut JsonDoc) -> Editing<'a> {
        let before = doc.is_compact().then(|| doc.text().map_or(0, <[u8]>::len));
        Editing { doc, before }
    }
}

impl std::ops::Deref for Editing<'_> {
    type Target = JsonDoc;
    fn deref(&self) -> &JsonDoc {
        self.doc
    }
}

impl std::ops::DerefMut for Editing<'_> {
    fn deref_mut(&mut self) -> &mut JsonDoc {
        self.doc
    }
}

impl Drop for Editing<'_> {
    fn drop(&mut self) {
        if let Some(len) = self.before {
            // Room for what updates usually add, so printing rarely grows
            // the buffer.
            self.doc.settle(len + len / 8 + 32);
        }
    }
}

/// The document at `key` for a write, which must exist.
fn edit_required<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Editing<'a>> {
    doc_required(ctx, key).map(Editing::new)
}

/// The optional path argument at `i` (the legacy root when absent).
fn path_arg(args: &[Bytes], i: usize) -> CmdResult<JsonPath> {
    parse_path(args.get(i).map(|b| &b[..]).unwrap_or(b"."))
}

/// Locations of the matches; `None` for a match that fails `keep`.
fn typed_locs(root: &Json, path: &JsonPath, keep: impl Fn(&Json) -> bool) -> Vec<Option<Loc>> {
    path.locate(root).into_iter().map(|(v, l)| keep(v).then_some(l)).collect()
}

/// Applies `f` to every kept location in a safe order; results land in
/// match order.
fn mutate<R>(root: &mut Json, locs: Vec<Option<Loc>>, mut f: impl FnMut(&mut Json, &Loc) -> R) -> Vec<Option<R>> {
    let mut res: Vec<Option<R>> = (0..locs.len()).map(|_| None).collect();
    let mut order: Vec<(usize, Loc)> = locs.into_iter().enumerate().filter_map(|(i, l)| l.map(|l| (i, l))).collect();
    ops::sort_for_mutation(&mut order);
    for (i, loc) in order {
        if let Some(n) = ops::node_mut(root, &loc) {
            res[i] = Some(f(n, &loc));
        }
    }
    res
}

fn int_array(out: &mut Out, res: &[Option<i64>]) {
    out.array(res.len());
    for r in res {
        match r {
            Some(n) => out.int(*n),
            None => out.nil(),
        }
    }
}

/// The result for a legacy path: the last written value in match order.
fn last_of<R: Clone>(res: &[Option<R>]) -> Option<R> {
    res.iter().rev().flatten().next().cloned()
}

/// Refuses a value whose nesting below `at_depth` containers would pass the
/// limit.
fn check_depth(at_depth: usize, v: &Json) -> CmdResult {
    if at_depth + v.depth() > MAX_DEPTH {
        return Err(err::too_deep());
    }
    Ok(())
}

fn reserve(d: &mut JsonDoc, added: usize) -> CmdResult {
    if d.reserve(added, MAX_DOC_BYTES) {
        Ok(())
    } else {
        Err(err::too_large())
    }
}

/// A parsed JSON.SET / JSON.MSET value: a whole document for the root path
/// (kept as text when it can be), a tree for any other path.
pub enum NewValue {
    Doc(JsonDoc),
    Tree(Json),
}

impl NewValue {
    fn parse(path: &JsonPath, arg: &[u8]) -> CmdResult<NewValue> {
        if path.is_root() {
            parse_doc(arg).map(NewValue::Doc)
        } else {
            parse_arg(arg).map(NewValue::Tree)
        }
    }

    fn into_doc(self) -> JsonDoc {
        match self {
            NewValue::Doc(d) => d,
            NewValue::Tree(v) => JsonDoc::from_tree(v),
        }
    }

    fn into_tree(self) -> Json {
        match self {
            NewValue::Doc(mut d) => std::mem::replace(d.tree(), Json::Null),
            NewValue::Tree(v) => v,
        }
    }
}

#[cfg(test)]
mod tests;
