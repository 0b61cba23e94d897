//! The ACL file (`--aclfile`, Redis's users.acl: `user <name> <rules>...`
//! per line): loading it at start-up and on ACL LOAD (all or nothing, with
//! Redis's error texts), writing it on ACL SAVE (a temporary file renamed
//! over it), and the config file's `user` directives.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rules::{self, has_spaces};
use crate::shard::acl::User;
use crate::shard::Engine;

/// Parses the text of an ACL file into users, or Redis's list of errors.
pub fn parse(path: &str, text: &str) -> Result<BTreeMap<String, User>, String> {
    let mut users: BTreeMap<String, User> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split('\n').enumerate() {
        let linenum = i + 1;
        let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&str> = line.split(' ').collect();
        if argv[0] != "user" || argv.len() < 2 {
            errors.push_str(&format!("{path}:{linenum} should start with user keyword followed by the username. "));
            continue;
        }
        let name = argv[1];
        if has_spaces(name.as_bytes()) {
            errors.push_str(&format!("'{path}:{linenum}: username '{name}' contains invalid characters. "));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!("WARNING: Duplicate user '{name}' found on line {linenum}. "));
            continue;
        }
        let ops: Vec<&[u8]> = argv[2..].iter().map(|a| a.as_bytes()).collect();
        let Ok(merged) = rules::merge_selectors(&ops) else {
            errors.push_str(&format!("{path}:{linenum}: Unmatched parenthesis in selector definition."));
            continue;
        };
        let mut u = User::new(name);
        let mut syntax_error = false;
        for op in merged {
            let op = trim(&op);
            if let Err(e) = rules::set_user(&mut u, op) {
                if e == rules::RuleError::Unknown {
                    errors.push_str(&format!(
                        "{path}:{linenum}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(op),
                        e.text()
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{path}:{linenum}: {}. ", e.text()));
                    syntax_error = true;
                }
            }
        }
        if errors.is_empty() {
            users.insert(name.to_string(), u);
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        Err(errors)
    }
}

fn trim(op: &[u8]) -> &[u8] {
    let start = op.iter().position(|c| !matches!(c, b'\t' | b'\r' | b'\n')).unwrap_or(op.len());
    let end = op.iter().rposition(|c| !matches!(c, b'\t' | b'\r' | b'\n')).map_or(start, |e| e + 1);
    &op[start..end]
}

/// Loads the ACL file over the current users (ACL LOAD, start-up): on any
/// error nothing changes. The default user keeps its connections (and is
/// the default one again if the file has none); those of every other user
/// are closed, as Redis frees the old users.
pub fn load(engine: &Engine) -> Result<(), String> {
    let path = &engine.cfg.aclfile;
    let text = std::fs::read_to_string(path).map_err(|e| format!("Error loading ACLs, opening file '{path}': {e}"))?;
    let mut users = parse(path, &text)?;
    let mut default = users.remove("default").unwrap_or_else(User::default_user);
    default.serial = engine.acl.default_user().serial;
    let mut all: BTreeMap<String, Arc<User>> = users.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    all.insert("default".into(), Arc::new(default));
    engine.acl.replace_all(all);
    super::sync_default(engine);
    engine.clients.kill(|c| c.acl_user().is_some_and(|u| u.name != "default"));
    Ok(())
}

/// Writes every user to the ACL file (ACL SAVE).
pub fn save(engine: &Engine) -> std::io::Result<()> {
    let mut text = String::new();
    for u in engine.acl.users() {
        text.push_str(&format!("user {} {}\n", u.name, rules::describe_user(&u)));
    }
    let path = std::path::Path::new(&engine.cfg.aclfile);
    let tmp = path.with_file_name(format!(
        "{}.tmp-{}-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id(),
        crate::util::now_ms()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The config file's `user` directives, applied in order (`default`
/// starts from `reset`); the first bad rule stops the start.
pub fn load_config_users(engine: &Engine) -> Result<(), String> {
    for words in &engine.cfg.users {
        let name = &words[0];
        if has_spaces(name.as_bytes()) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        let r = engine.acl.update(name, |cur| {
            let mut u = match cur {
                Some(d) if name == "default" => {
                    let mut d = d.clone();
                    rules::set_user(&mut d, b"reset").map_err(|e| e.text().to_string())?;
                    d
                }
                Some(_) => return Err("Duplicate user found. A user can only be defined once in config files".to_string()),
                None => User::new(name),
            };
            for op in &words[1..] {
                rules::set_user(&mut u, op.as_bytes())
                    .map_err(|e| format!("Error loading ACL rule '{op}' for the user named '{name}': {}", e.text()))?;
            }
            Ok(u)
        });
        r?;
    }
    super::sync_default(engine);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_as_redis() {
        let users = parse("f", "user default on nopass ~* &* +@all\n\nuser a on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* (+get ~x*)\n").unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["a"].selectors.len(), 2);
        assert!(users["a"].password_ok(b"p1"));
        assert_eq!(
            parse("f", "user a +nosuch\n").unwrap_err(),
            "f:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
        assert_eq!(
            parse("f", "foo a\n").unwrap_err(),
            "f:1 should start with user keyword followed by the username. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
        assert!(parse("f", "user a on\nuser a off\n").unwrap_err().starts_with("WARNING: Duplicate user 'a' found on line 2. "));
    }
}
