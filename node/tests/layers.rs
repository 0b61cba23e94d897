//! The crate's layering, enforced: every top-level module may use only the
//! modules of lower layers (and itself). The layers, bottom to top, are
//! drawn in docs/ARCHITECTURE.md; a `crate::module` reference (outside
//! comments and `#[cfg(test)]` modules) that points upward fails this test.

use std::collections::BTreeSet;
use std::path::Path;

/// Layers, bottom to top; modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["error", "alloc", "slot"],
    &["util"],
    &["resp"],
    &["types"],
    &["store", "config"],
    &["shard"],
    &["scripting", "persist"],
    &["commands"],
    &["cluster"],
    &["server", "fuzzing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Drops `//` comments and `#[cfg(test)] mod name { ... }` blocks.
fn strip(text: &str) -> String {
    let no_comments: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = String::new();
    let mut rest = no_comments.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else { break };
        let header = &after[..open];
        if !header.contains("mod ") {
            // An attribute on something else: keep it.
            out.push_str(&after[..open]);
            rest = &after[open..];
            continue;
        }
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("");
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(mine) = layer_of(module) else {
            unknown.insert(module.to_string());
            continue;
        };
        let text = strip(&std::fs::read_to_string(&file).expect("readable source"));
        for (i, _) in text.match_indices("crate::") {
            let used: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if used == module || used.is_empty() {
                continue;
            }
            match layer_of(&used) {
                Some(theirs) if theirs < mine => {}
                Some(_) => {
                    upward.insert(format!("{} uses crate::{used}", rel.display()));
                }
                // Items of the crate root (REDIS_VERSION, macros).
                None if used.chars().next().is_some_and(|c| c.is_ascii_uppercase()) || used == "handler" => {}
                None => {
                    unknown.insert(used);
                }
            }
        }
    }
    assert!(unknown.is_empty(), "modules missing from LAYERS: {unknown:?}");
    assert!(upward.is_empty(), "imports that go upward or sideways:\n  {}", upward.into_iter().collect::<Vec<_>>().join("\n  "));
}
