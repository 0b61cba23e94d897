//! COMMAND DOCS: each command's documentation as Redis 7.2 prints it. The
//! summary and group come from the command's declaration; what Redis's
//! command definitions add (since, complexity, doc_flags,
//! deprecated_since, replaced_by, history, arguments) is `docs.json`,
//! generated from them by `scripts/gen-command-docs.py` and parsed for each
//! COMMAND DOCS (a rare command: about a millisecond), not kept: parsed, it
//! would hold 1.3 MB of the node's memory for good. Commands Redis does not
//! have (the JSON.* family) show what their declaration says.

use serde_json::{Map, Value};

use super::CommandSpec;
use crate::resp::Out;

/// The documentation of every command, parsed from `docs.json`.
pub struct Docs(Map<String, Value>);

pub fn load() -> Docs {
    Docs(serde_json::from_str(include_str!("docs.json")).unwrap_or_default())
}

/// One command's documentation map (its subcommands' inside it).
pub fn write_docs(docs: &Docs, out: &mut Out, c: &CommandSpec, group: &str) {
    let d = docs.0.get(c.name);
    let field = |k: &str| d.and_then(|d| d.get(k));
    let text = |k: &str| field(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let list = |k: &str| field(k).and_then(Value::as_array).filter(|a| !a.is_empty());
    let n = 2
        + usize::from(text("since").is_some())
        + usize::from(text("complexity").is_some())
        + usize::from(list("doc_flags").is_some())
        + usize::from(text("deprecated_since").is_some())
        + usize::from(text("replaced_by").is_some())
        + usize::from(list("history").is_some())
        + usize::from(list("arguments").is_some())
        + usize::from(!c.subs.is_empty());
    out.map(n);
    out.bulk(b"summary");
    out.bulk(c.summary.as_bytes());
    if let Some(s) = text("since") {
        out.bulk(b"since");
        out.bulk(s.as_bytes());
    }
    out.bulk(b"group");
    out.bulk(group.as_bytes());
    if let Some(s) = text("complexity") {
        out.bulk(b"complexity");
        out.bulk(s.as_bytes());
    }
    if let Some(flags) = list("doc_flags") {
        out.bulk(b"doc_flags");
        statuses(out, flags);
    }
    for k in ["deprecated_since", "replaced_by"] {
        if let Some(s) = text(k) {
            out.bulk(k.as_bytes());
            out.bulk(s.as_bytes());
        }
    }
    if let Some(h) = list("history") {
        out.bulk(b"history");
        out.set(h.len());
        for entry in h {
            let pair = entry.as_array().map(Vec::as_slice).unwrap_or_default();
            out.array(pair.len());
            for p in pair {
                out.bulk(p.as_str().unwrap_or_default().as_bytes());
            }
        }
    }
    if let Some(args) = list("arguments") {
        out.bulk(b"arguments");
        write_args(out, args);
    }
    if !c.subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(c.subs.len());
        for s in c.subs {
            out.bulk(s.name.as_bytes());
            write_docs(docs, out, s, group);
        }
    }
}

/// A set of status replies (Redis's flags).
fn statuses(out: &mut Out, flags: &[Value]) {
    out.set(flags.len());
    for f in flags {
        out.simple(f.as_str().unwrap_or_default());
    }
}

/// An argument list (addReplyCommandArgList): each argument a map, its
/// fields in Redis's order.
fn write_args(out: &mut Out, args: &[Value]) {
    out.array(args.len());
    for a in args {
        let Some(a) = a.as_object() else {
            out.map(0);
            continue;
        };
        out.map(a.len());
        for k in ["name", "type", "display_text", "key_spec_index", "token", "summary", "since", "deprecated_since", "flags", "arguments"] {
            let Some(v) = a.get(k) else { continue };
            out.bulk(k.as_bytes());
            match (k, v) {
                ("flags", Value::Array(f)) => statuses(out, f),
                ("arguments", Value::Array(sub)) => write_args(out, sub),
                (_, Value::Number(n)) => out.int(n.as_i64().unwrap_or_default()),
                (_, v) => out.bulk(v.as_str().unwrap_or_default().as_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generated_docs_parse() {
        let d = super::load().0;
        assert!(d.len() > 300);
        assert_eq!(d["get"]["complexity"], "O(1)");
    }
}
