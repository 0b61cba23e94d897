//! The error handler scripts run under: any error becomes Redis's error
//! table with the location of the innermost script frame.

use super::*;

/// The error handler runs under: turns any error into
/// `{err=, source=, line=}` with the location of the innermost script frame.
pub fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    // The innermost frame of the script (or library): neither a C function
    // nor our own API code.
    let mut frame: Option<(Option<String>, Option<usize>)> = None;
    for level in 1..64 {
        let Some((what, source, line)) = lua.inspect_stack(level, |d| {
            let src = d.source();
            (src.what, src.source.map(|s| s.into_owned()), d.current_line())
        }) else {
            break;
        };
        if what == "C" || source.as_deref() == Some("=redis") {
            continue;
        }
        frame = Some((source, line));
        break;
    }
    let t = match err {
        Value::Table(t) => {
            if !matches!(t.raw_get::<Value>("err")?, Value::String(_)) {
                t.raw_set("err", "ERR unknown error")?;
            }
            t
        }
        Value::String(s) => {
            let t = lua.create_table()?;
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&s.as_bytes());
            t.raw_set("err", lua.create_string(msg)?)?;
            t
        }
        other => {
            // An error raised by one of our Rust library functions: worded
            // as Lua's own errors are, with the caller's position.
            let text = match &other {
                Value::Error(e) => root_message(e),
                v => v.to_string().unwrap_or_else(|_| "unknown error".into()),
            };
            let at = match &frame {
                Some((Some(src), Some(line))) => format!("{}:{line}: ", src.strip_prefix('@').unwrap_or(src)),
                _ => String::new(),
            };
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {at}{text}"))?;
            t
        }
    };
    if let Some((source, line)) = frame {
        if let Some(source) = source {
            t.raw_set("source", source)?;
        }
        if let Some(line) = line {
            t.raw_set("line", line as i64)?;
        }
    }
    Ok(t)
}

/// The message of the error at the root of a chain of callback errors.
fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    }
}
