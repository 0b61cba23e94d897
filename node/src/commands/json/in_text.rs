//! Updates done on the text of a document kept as text, for static paths
//! (names and indexes only): the new bytes are spliced into the text,
//! which stays canonical, exactly where printing the updated tree would put
//! them. Each returns `None` to leave the update to the tree: a tree
//! document, a path that is not static, or a result longer than
//! `text::TEXT_MAX` (then the document becomes a tree).

use super::*;
use crate::types::json::path::Step;

/// JSON.SET of a static path in a document kept as text, done on the text
/// (which stays canonical): the value's compact text replaces the old
/// value's, or a new member goes at the end of its object, exactly as the
/// tree would place it. `None` leaves the write to the tree: a tree
/// document, a path that is not static, a missing array index, a key that
/// is not UTF-8, or a result longer than `TEXT_MAX`.
pub(super) fn set_in_text(d: &mut JsonDoc, path: &JsonPath, value: &Json, nx: bool, xx: bool) -> CmdResult<Option<bool>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return Ok(None) };
    let Some((last, parent)) = steps.split_last() else { return Ok(None) };
    if let Some((lo, hi)) = json_text::span(text, &steps) {
        if nx {
            return Ok(Some(false));
        }
        check_depth(steps.len(), value)?;
        return Ok(d.splice(lo..hi, &value.to_text()).then_some(true));
    }
    let Step::Name(name) = *last else { return Ok(None) };
    if xx {
        return Ok(Some(false));
    }
    if std::str::from_utf8(name).is_err() {
        return Ok(None);
    }
    let Some((plo, phi)) = json_text::span(text, parent) else { return Ok(Some(false)) };
    if text[plo] != b'{' {
        return Ok(Some(false));
    }
    check_depth(steps.len(), value)?;
    let mut member = Vec::new();
    if phi - plo > 2 {
        member.push(b',');
    }
    jv::write_str(name, &mut member);
    member.push(b':');
    value.write(&mut member, &Format::COMPACT);
    Ok(d.splice(phi - 1..phi - 1, &member).then_some(true))
}

/// JSON.NUMINCRBY/NUMMULTBY of a static path in a document kept as text:
/// the number's text is replaced by the result's. `None` leaves it to the
/// tree (not text, not static, or the text would pass `TEXT_MAX`).
pub(super) fn num_in_text(d: &mut JsonDoc, path: &JsonPath, n: &Json, op: NumOp) -> CmdResult<Option<Vec<Option<Json>>>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return Ok(None) };
    let Some((lo, hi)) = json_text::span(text, &steps) else { return Ok(Some(Vec::new())) };
    if !matches!(text[lo], b'-' | b'0'..=b'9') {
        return Ok(Some(vec![None]));
    }
    let cur = Json::parse(&text[lo..hi]).map_err(err::parse)?;
    let r = ops::num_op(&cur, n, op).ok_or_else(err::not_a_number)?;
    Ok(d.splice(lo..hi, &r.to_text()).then_some(vec![Some(r)]))
}

/// JSON.ARRAPPEND to a static path in a document kept as text: the values'
/// texts go before the array's closing bracket. `None` leaves it to the
/// tree (not text, not static, or the text would pass `TEXT_MAX`).
pub(super) fn append_in_text(d: &mut JsonDoc, path: &JsonPath, values: &[Json]) -> CmdResult<Option<Vec<Option<i64>>>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return Ok(None) };
    let Some((lo, hi)) = json_text::span(text, &steps) else { return Ok(Some(Vec::new())) };
    if text[lo] != b'[' {
        return Ok(Some(vec![None]));
    }
    for v in values {
        check_depth(steps.len() + 1, v)?;
    }
    let len = json_text::array_len(text, lo);
    let mut add = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if len > 0 || i > 0 {
            add.push(b',');
        }
        v.write(&mut add, &Format::COMPACT);
    }
    Ok(d.splice(hi - 1..hi - 1, &add).then_some(vec![Some((len + values.len()) as i64)]))
}

/// JSON.STRAPPEND to a static path: the suffix's escaped text goes before
/// the string's closing quote. Replies as the tree would: the new length,
/// `None` for a value that is not a string, nothing for no match.
pub(super) fn strappend_in_text(d: &mut JsonDoc, path: &JsonPath, suffix: &[u8]) -> Option<Vec<Option<i64>>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return None };
    let Some((lo, hi)) = json_text::span(text, &steps) else { return Some(Vec::new()) };
    if text[lo] != b'"' {
        return Some(vec![None]);
    }
    let len = json_text::str_len(&text[lo..hi]) + suffix.len();
    let mut lit = Vec::with_capacity(suffix.len() + 2);
    jv::write_str(suffix, &mut lit);
    let escaped = &lit[1..lit.len() - 1];
    d.splice(hi - 1..hi - 1, escaped).then_some(vec![Some(len as i64)])
}

/// JSON.DEL of a static path below the root: the member or element is cut
/// out with one comma. The number deleted.
pub(super) fn del_in_text(d: &mut JsonDoc, path: &JsonPath) -> Option<i64> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return None };
    if steps.is_empty() {
        return None;
    }
    match json_text::removal(text, &steps) {
        Some((lo, hi)) => d.splice(lo..hi, b"").then_some(1),
        None => Some(0),
    }
}

/// JSON.TOGGLE of a static path: `true` and `false` trade places. The new
/// value, `None` for a value that is not a boolean, nothing for no match.
pub(super) fn toggle_in_text(d: &mut JsonDoc, path: &JsonPath) -> Option<Vec<Option<bool>>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return None };
    let Some((lo, hi)) = json_text::span(text, &steps) else { return Some(Vec::new()) };
    let now = match &text[lo..hi] {
        b"true" => false,
        b"false" => true,
        _ => return Some(vec![None]),
    };
    d.splice(lo..hi, if now { b"true" } else { b"false" }).then_some(vec![Some(now)])
}

/// JSON.ARRINSERT at a static path: the values' texts go before the element
/// at the insert position (or before the closing bracket). The new length,
/// `None` for a value that is not an array, nothing for no match; an index
/// past either end is refused before anything changes.
pub(super) fn arrinsert_in_text(d: &mut JsonDoc, path: &JsonPath, index: i64, values: &[Json]) -> CmdResult<Option<Vec<Option<i64>>>> {
    let (Some(text), Some(steps)) = (d.text(), path.static_steps()) else { return Ok(None) };
    let Some((lo, _)) = json_text::span(text, &steps) else { return Ok(Some(Vec::new())) };
    if text[lo] != b'[' {
        return Ok(Some(vec![None]));
    }
    let (starts, end) = json_text::element_starts(text, lo);
    let at = ops::insert_position(starts.len(), index).ok_or_else(err::index_out_of_bounds)?;
    for v in values {
        check_depth(steps.len() + 1, v)?;
    }
    let mut add = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 || (at == starts.len() && at > 0) {
            add.push(b',');
        }
        v.write(&mut add, &Format::COMPACT);
    }
    let pos = match starts.get(at) {
        Some(&p) => {
            add.push(b',');
            p
        }
        None => end,
    };
    Ok(d.splice(pos..pos, &add).then_some(vec![Some((starts.len() + values.len()) as i64)]))
}

/// Most members a JSON.MERGE patch may have to be merged on the text (each
/// member costs a copy of the text); larger patches merge on the tree.
const MERGE_TEXT_MEMBERS: usize = 16;

/// JSON.MERGE of an object patch into the object at a static path: each
/// patch member is deleted (null), merged (an object into an object) or
/// set on the text, in patch order, as `ops::merge` does on the tree.
/// `None` leaves the merge to the tree, also after some members were
/// merged on the text (merging again gives the same document).
pub(super) fn merge_in_text(d: &mut JsonDoc, path: &JsonPath, patch: &Json) -> CmdResult<Option<()>> {
    let (Some(text), Some(mut steps)) = (d.text(), path.static_steps()) else { return Ok(None) };
    let Json::Object(pm) = patch else { return Ok(None) };
    if pm.len() > MERGE_TEXT_MEMBERS || json_text::span(text, &steps).is_none_or(|(lo, _)| text[lo] != b'{') {
        return Ok(None);
    }
    check_depth(steps.len(), patch)?;
    Ok(merge_members(d, &mut steps, pm))
}

/// Merges `patch`'s members into the object at `steps`.
fn merge_members<'a>(d: &mut JsonDoc, steps: &mut Vec<Step<'a>>, patch: &'a [(SmallBytes, Json)]) -> Option<()> {
    for (k, pv) in patch {
        steps.push(Step::Name(k));
        let done = merge_member(d, steps, pv);
        steps.pop();
        done?;
    }
    Some(())
}

/// Merges one patch member (its value `pv`) into the member at `steps`.
fn merge_member<'a>(d: &mut JsonDoc, steps: &mut Vec<Step<'a>>, pv: &'a Json) -> Option<()> {
    let text = d.text()?;
    let found = json_text::span(text, steps);
    if let Json::Null = pv {
        return match json_text::removal(text, steps) {
            Some((lo, hi)) => d.splice(lo..hi, b"").then_some(()),
            None => Some(()),
        };
    }
    if let (Some((lo, _)), Json::Object(pm)) = (found, pv) {
        if text[lo] == b'{' {
            return merge_members(d, steps, pm);
        }
    }
    let mut fresh = Json::Null;
    ops::merge(&mut fresh, pv);
    if let Some((lo, hi)) = found {
        return d.splice(lo..hi, &fresh.to_text()).then_some(());
    }
    // A new member goes at the end of its object.
    let (Step::Name(name), parent) = steps.split_last()? else { return None };
    let (plo, phi) = json_text::span(text, parent)?;
    let mut member = Vec::new();
    if phi - plo > 2 {
        member.push(b',');
    }
    jv::write_str(name, &mut member);
    member.push(b':');
    fresh.write(&mut member, &Format::COMPACT);
    d.splice(phi - 1..phi - 1, &member).then_some(())
}
