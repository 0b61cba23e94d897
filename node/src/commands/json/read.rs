//! The JSON commands that only read: JSON.GET (straight from the text of
//! a document kept as text when it can), MGET, TYPE, STRLEN, ARRINDEX,
//! ARRLEN, OBJKEYS, OBJLEN, RESP and DEBUG MEMORY. None of them changes the
//! form a document is kept in: they read a text document's text, or a
//! temporary tree of the part of it they look at (`View`).

use std::borrow::Cow;

use super::*;

/// What a read command evaluates its path on, leaving the document as it
/// is: for a static path in a document kept as text, only the selected
/// value, parsed from its slice of the text; otherwise the whole tree
/// (borrowed from a tree document, parsed afresh from a text one).
pub(super) enum View<'a> {
    Whole(Cow<'a, Json>),
    Static(Option<Json>),
}

impl<'a> View<'a> {
    pub(super) fn of(d: &'a JsonDoc, path: &JsonPath) -> View<'a> {
        if let (Some(t), Some(steps)) = (d.text(), path.static_steps()) {
            // A slice of canonical text is canonical text; it always parses.
            return View::Static(json_text::find(t, &steps).map(|v| Json::parse(v).unwrap_or(Json::Null)));
        }
        View::Whole(d.view())
    }

    /// Every matched value, in match order.
    pub(super) fn select(&self, path: &JsonPath) -> Vec<&Json> {
        match self {
            View::Whole(root) => path.select(root),
            View::Static(v) => v.iter().collect(),
        }
    }

    /// The first matched value.
    pub(super) fn first(&self, path: &JsonPath) -> Option<&Json> {
        match self {
            View::Whole(root) => path.first(root),
            View::Static(v) => v.as_ref(),
        }
    }
}

/// JSON.GET's reply format (RESP3 only besides STRING).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyFormat {
    String,
    Expand1,
    Expand,
}

pub(super) fn get(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut indent, mut newline, mut space): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
    let mut format = ReplyFormat::String;
    let mut paths: Vec<&[u8]> = Vec::new();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let value = || args.get(i + 1).map(|b| &b[..]).ok_or_else(|| CmdError::wrong_arity("json.get"));
        if a.len() > 8 {
            paths.push(a);
        } else if eq_ic(a, "INDENT") {
            indent = value()?;
            i += 1;
        } else if eq_ic(a, "NEWLINE") {
            newline = value()?;
            i += 1;
        } else if eq_ic(a, "SPACE") {
            space = value()?;
            i += 1;
        } else if eq_ic(a, "NOESCAPE") {
            // Accepted and ignored, as RedisJSON does.
        } else if eq_ic(a, "FORMAT") {
            if !out.resp3 {
                return Err(CmdError::err("FORMAT argument is not supported on RESP2"));
            }
            let f = value()?;
            format = if eq_ic(f, "STRING") {
                ReplyFormat::String
            } else if eq_ic(f, "EXPAND1") {
                ReplyFormat::Expand1
            } else if eq_ic(f, "EXPAND") {
                ReplyFormat::Expand
            } else {
                return Err(CmdError::err("wrong reply format"));
            };
            i += 1;
        } else {
            paths.push(a);
        }
        i += 1;
    }
    if paths.is_empty() {
        paths.push(b".");
    }
    let fmt = Format { indent, newline, space };
    let Some(d) = doc(ctx, &args[1])? else {
        out.nil();
        return Ok(());
    };
    if let (Some(text), ReplyFormat::String, true, [p]) = (d.text(), format, fmt.is_compact(), &paths[..]) {
        let p = parse_path(p)?;
        if let Some(found) = find_in_text(text, &p)? {
            out.bulk(&found);
            return Ok(());
        }
    }
    let root = &*d.view();
    if format != ReplyFormat::String {
        out.array(paths.len());
        for p in &paths {
            let matches = parse_path(p).map(|p| p.select(root)).unwrap_or_default();
            out.array(matches.len());
            for v in matches {
                resp3_value(v, format == ReplyFormat::Expand, &fmt, out);
            }
        }
        return Ok(());
    }
    let mut text = Vec::new();
    if paths.len() == 1 {
        let p = parse_path(paths[0])?;
        if p.legacy {
            let v = p.first(root).ok_or_else(|| err::path_missing(&p.normalized))?;
            v.write(&mut text, &fmt);
        } else {
            jv::write_array(p.select(root).into_iter(), &mut text, &fmt);
        }
        out.bulk(&text);
        return Ok(());
    }
    // Several paths: an object keyed by each path as given (once each, in
    // argument order; paths that do not parse are left out, as RedisJSON does).
    let parsed: Vec<(&[u8], JsonPath)> = paths.iter().filter_map(|p| parse_path(p).ok().map(|q| (*p, q))).collect();
    let legacy = paths.iter().all(|p| !p.starts_with(b"$"));
    let mut seen: Vec<&[u8]> = Vec::new();
    text.push(b'{');
    for (orig, p) in &parsed {
        if seen.contains(orig) {
            continue;
        }
        if !seen.is_empty() {
            text.push(b',');
        }
        seen.push(orig);
        fmt.line(&mut text, 1);
        jv::write_str(orig, &mut text);
        text.push(b':');
        text.extend_from_slice(fmt.space);
        if legacy {
            let v = p.first(root).ok_or_else(|| err::path_missing(&String::from_utf8_lossy(orig)))?;
            jv::write_value(v, &mut text, &fmt, 1);
        } else {
            jv::write_seq(p.select(root).into_iter().map(Item::Value), &mut text, &fmt, 1);
        }
    }
    if !seen.is_empty() {
        fmt.line(&mut text, 0);
    }
    text.push(b'}');
    out.bulk(&text);
    Ok(())
}

/// A value as a RESP3 reply: scalars natively; containers natively when
/// `expand`, else as JSON text.
pub(super) fn resp3_value(v: &Json, expand: bool, fmt: &Format, out: &mut Out) {
    match v {
        Json::Null => out.nil(),
        Json::Bool(b) => out.boolean(*b),
        Json::Int(n) => out.int(*n),
        Json::Float(f) => out.double(*f),
        Json::Str(s) => out.bulk(s),
        Json::Array(a) if expand => {
            out.array(a.len());
            for x in a {
                resp3_value(x, true, fmt, out);
            }
        }
        Json::Object(m) if expand => {
            out.map(m.len());
            for (k, x) in m {
                out.bulk(k);
                resp3_value(x, true, fmt, out);
            }
        }
        _ => {
            let mut text = Vec::new();
            v.write(&mut text, fmt);
            out.bulk(&text);
        }
    }
}

/// JSON.GET's reply for one static path read straight from a document kept
/// as text: the slice of the text for a legacy path, the slice in brackets
/// for a `$` path. `None` when the path is not static.
pub(super) fn find_in_text<'t>(text: &'t [u8], p: &JsonPath) -> CmdResult<Option<std::borrow::Cow<'t, [u8]>>> {
    let Some(steps) = p.static_steps() else { return Ok(None) };
    let found = json_text::find(text, &steps);
    Ok(Some(match (p.legacy, found) {
        (true, Some(v)) => v.into(),
        (true, None) => return Err(err::path_missing(&p.normalized)),
        (false, Some(v)) => [&b"["[..], v, b"]"].concat().into(),
        (false, None) => b"[]"[..].into(),
    }))
}

pub(super) fn mget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let keys = &args[1..args.len() - 1];
    // A path that does not parse makes every reply nil, as in RedisJSON.
    let path = parse_path(&args[args.len() - 1]).ok();
    out.array(keys.len());
    ctx.mark(out);
    let now = ctx.now;
    for key in keys {
        let text = match (ctx.db().get(key, now).map(|e| &e.value), &path) {
            (Some(Value::Json(d)), Some(p)) => match d.text().map(|t| find_in_text(t, p)) {
                Some(Ok(Some(found))) => Some(found.into_owned()),
                Some(Err(_)) => None,
                _ => {
                    let root = d.view();
                    if p.legacy {
                        p.first(&root).map(|v| v.to_text())
                    } else {
                        let mut t = Vec::new();
                        jv::write_array(p.select(&root).into_iter(), &mut t, &Format::COMPACT);
                        Some(t)
                    }
                }
            },
            _ => None,
        };
        match text {
            Some(t) => out.bulk(&t),
            None => out.nil(),
        }
        ctx.mark(out);
    }
    Ok(())
}

pub(super) fn type_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.type"));
    }
    let path = path_arg(args, 2)?;
    let resp3 = out.resp3;
    let Some(d) = doc(ctx, &args[1])? else {
        if resp3 {
            out.array(1);
        }
        out.nil();
        return Ok(());
    };
    if resp3 {
        out.array(1);
    }
    // A static path in a text document: the type shows in the value's text.
    let view;
    let types: Vec<&str> = match (d.text(), path.static_steps()) {
        (Some(t), Some(steps)) => json_text::find(t, &steps).map(json_text::type_name).into_iter().collect(),
        _ => {
            view = View::Whole(d.view());
            view.select(&path).into_iter().map(Json::type_name).collect()
        }
    };
    if path.legacy {
        match types.first() {
            Some(t) => out.bulk(t.as_bytes()),
            None => out.nil(),
        }
    } else {
        out.array(types.len());
        for t in types {
            out.bulk(t.as_bytes());
        }
    }
    Ok(())
}

pub(super) fn strlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.strlen"));
    }
    let path = path_arg(args, 2)?;
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        let view = View::of(d, &path);
        match view.first(&path) {
            Some(Json::Str(s)) => out.int(s.len() as i64),
            Some(v) => return Err(err::wrong_type("string", v)),
            None => return Err(err::path_missing(&path.normalized)),
        }
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let view = View::of(d, &path);
    let res: Vec<Option<i64>> = view.select(&path).into_iter().map(|v| v.as_str().map(|s| s.len() as i64)).collect();
    int_array(out, &res);
    Ok(())
}

pub(super) fn arrindex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 6 {
        return Err(CmdError::wrong_arity("json.arrindex"));
    }
    let path = parse_path(&args[2])?;
    let needle = parse_arg(&args[3])?;
    let start = args.get(4).map(|a| parse_i64(a)).transpose()?.unwrap_or(0);
    let stop = args.get(5).map(|a| parse_i64(a)).transpose()?.unwrap_or(0);
    let Some(d) = doc(ctx, &args[1])? else { return Err(err::path_missing_plain()) };
    let find = |v: &Json| -> Option<i64> {
        let Json::Array(a) = v else { return None };
        let (s, e) = ops::index_window(a.len(), start, stop);
        Some((s..e).find(|&i| a[i].same(&needle)).map_or(-1, |i| i as i64))
    };
    if path.legacy {
        let view = View::of(d, &path);
        let v = view.first(&path).ok_or_else(|| err::path_missing(&path.normalized))?;
        out.int(find(v).ok_or_else(|| err::wrong_type("array", v))?);
    } else {
        let view = View::of(d, &path);
        let res: Vec<Option<i64>> = view.select(&path).into_iter().map(find).collect();
        int_array(out, &res);
    }
    Ok(())
}

pub(super) fn arrlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.arrlen"));
    }
    let path = path_arg(args, 2)?;
    let len = |v: &Json| match v {
        Json::Array(a) => Some(a.len() as i64),
        _ => None,
    };
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        let view = View::of(d, &path);
        let v = view.first(&path).ok_or_else(err::path_missing_plain)?;
        out.int(len(v).ok_or_else(|| err::path_missing_or("not an array"))?);
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let view = View::of(d, &path);
    let res: Vec<Option<i64>> = view.select(&path).into_iter().map(len).collect();
    int_array(out, &res);
    Ok(())
}

pub(super) fn keys_reply(v: &Json, out: &mut Out) {
    if let Json::Object(m) = v {
        out.array(m.len());
        for (k, _) in m {
            out.bulk(k);
        }
    }
}

pub(super) fn objkeys(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.objkeys"));
    }
    let path = path_arg(args, 2)?;
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        let view = View::of(d, &path);
        match view.first(&path) {
            Some(v @ Json::Object(_)) => keys_reply(v, out),
            Some(_) => return Err(err::path_missing_or("not an object")),
            None => out.nil(),
        }
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let view = View::of(d, &path);
    let vals = view.select(&path);
    out.array(vals.len());
    for v in vals {
        match v {
            Json::Object(_) => keys_reply(v, out),
            _ => out.nil(),
        }
    }
    Ok(())
}

pub(super) fn objlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.objlen"));
    }
    let path = path_arg(args, 2)?;
    let found = doc(ctx, &args[1])?;
    if path.legacy {
        let Some(d) = found else {
            out.nil();
            return Ok(());
        };
        let view = View::of(d, &path);
        match view.first(&path) {
            Some(Json::Object(m)) => out.int(m.len() as i64),
            Some(v) => return Err(err::wrong_type("object", v)),
            None => out.nil(),
        }
        return Ok(());
    }
    let d = found.ok_or_else(|| err::path_missing_or("not an object"))?;
    let view = View::of(d, &path);
    let res: Vec<Option<i64>> = view
        .select(&path)
        .into_iter()
        .map(|v| match v {
            Json::Object(m) => Some(m.len() as i64),
            _ => None,
        })
        .collect();
    int_array(out, &res);
    Ok(())
}

/// JSON.RESP's encoding of a value.
pub(super) fn resp_value(v: &Json, out: &mut Out) {
    match v {
        Json::Null => out.nil(),
        Json::Bool(b) => out.simple(if *b { "true" } else { "false" }),
        Json::Int(n) => out.int(*n),
        Json::Float(f) => out.double(*f),
        Json::Str(s) => out.bulk(s),
        Json::Array(a) => {
            out.array(a.len() + 1);
            out.simple("[");
            for x in a {
                resp_value(x, out);
            }
        }
        Json::Object(m) => {
            out.array(2 * m.len() + 1);
            out.simple("{");
            for (k, x) in m {
                out.bulk(k);
                resp_value(x, out);
            }
        }
    }
}

pub(super) fn resp(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.resp"));
    }
    let path = path_arg(args, 2)?;
    let Some(d) = doc(ctx, &args[1])? else {
        out.nil();
        return Ok(());
    };
    if path.legacy {
        let view = View::of(d, &path);
        let v = view.first(&path).ok_or_else(|| err::path_missing(&path.normalized))?;
        resp_value(v, out);
    } else {
        let view = View::of(d, &path);
        let vals = view.select(&path);
        out.array(vals.len());
        for v in vals {
            resp_value(v, out);
        }
    }
    Ok(())
}

pub(super) fn debug(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "HELP") {
        out.array(2);
        out.simple("MEMORY <key> [path] - reports memory usage");
        out.simple("HELP                - this message");
        return Ok(());
    }
    if !eq_ic(sub, "MEMORY") {
        return Err(CmdError::err("unknown subcommand - try `JSON.DEBUG HELP`"));
    }
    if args.len() < 3 || args.len() > 4 {
        return Err(CmdError::wrong_arity("json.debug"));
    }
    let path = path_arg(args, 3)?;
    let found = doc(ctx, &args[2])?;
    // The root reports all the document uses (header included). A
    // document kept as text uses the bytes of its text: a static path
    // reports the bytes of its value in the text.
    let text_size = match (&found, path.static_steps()) {
        (Some(d), Some(steps)) if steps.is_empty() => Some(Some(d.heap_size())),
        (Some(d), Some(steps)) => d.text().map(|t| json_text::find(t, &steps).map(<[u8]>::len)),
        _ => None,
    };
    if path.legacy {
        let n = match (found, text_size) {
            (_, Some(n)) => n.ok_or_else(|| err::path_missing(&path.normalized))?,
            (Some(d), None) => path.first(&d.view()).ok_or_else(|| err::path_missing(&path.normalized))?.mem_size(),
            (None, _) => 0,
        };
        out.int(n as i64);
    } else {
        let sizes: Vec<Option<i64>> = match (found, text_size) {
            (_, Some(n)) => n.map(|n| Some(n as i64)).into_iter().collect(),
            (Some(d), None) => path.select(&d.view()).into_iter().map(|v| Some(v.mem_size() as i64)).collect(),
            (None, _) => Vec::new(),
        };
        int_array(out, &sizes);
    }
    Ok(())
}
