//! Client-side caching's commands and read side: CLIENT TRACKING, CACHING,
//! GETREDIR and TRACKINGINFO (Redis 7.0's replies and errors), and the
//! keys a tracking client's read commands read, remembered on the shard
//! that ran them (`after_read`). The node's registry and the invalidations
//! are `shard::tracking`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::session::Inbox;
use super::{flag, CommandSpec, Coord};
use crate::error::{CmdError, CmdResult};
use crate::shard::clients::ClientInfo;
use crate::shard::tracking::{self, flag as tf, Tracker};
use crate::shard::Shard;
use crate::util::{eq_ic, parse_i64};

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP].
pub fn client_tracking(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let mut redirect: u64 = 0;
    let mut options = 0u8;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq_ic(a, "REDIRECT") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::err("A client can only redirect to a single other client"));
            }
            let id = parse_i64(&args[j])?;
            if id <= 0 || cx.engine().clients.get(id as u64).is_none() {
                return Err(CmdError::err("The client ID you want redirect to does not exist"));
            }
            redirect = id as u64;
        } else if eq_ic(a, "BCAST") {
            options |= tf::BCAST;
        } else if eq_ic(a, "OPTIN") {
            options |= tf::OPTIN;
        } else if eq_ic(a, "OPTOUT") {
            options |= tf::OPTOUT;
        } else if eq_ic(a, "NOLOOP") {
            options |= tf::NOLOOP;
        } else if eq_ic(a, "PREFIX") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let info = cx.client()?.info.clone();
    if eq_ic(&args[2], "OFF") {
        cx.client()?.stop_tracking();
        cx.out().ok();
        return Ok(());
    }
    if !eq_ic(&args[2], "ON") {
        return Err(CmdError::Syntax);
    }
    let old = info.tracking.load(Relaxed);
    check_options(old, options, !prefixes.is_empty())?;
    let mut all = Vec::new();
    if options & tf::BCAST != 0 {
        let existing = if old & tf::ON != 0 { tracking::options(info.id).map(|o| o.1).unwrap_or_default() } else { Vec::new() };
        check_prefixes(&existing, &prefixes)?;
        all = existing;
        if prefixes.is_empty() && all.is_empty() {
            all.push(Bytes::new());
        }
        for p in prefixes {
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    let s = cx.client()?;
    let inbox = s.tracking.get_or_insert_with(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Box::new(Inbox { tx, rx })
    });
    tracking::enable(Tracker { info: info.clone(), inbox: inbox.tx.clone(), redirect, prefixes: all }, options);
    cx.out().ok();
    Ok(())
}

/// The checks Redis makes of CLIENT TRACKING ON's options against each
/// other and against the mode on (`old`).
fn check_options(old: u8, options: u8, prefixes: bool) -> CmdResult {
    if options & tf::BCAST == 0 && prefixes {
        return Err(CmdError::err("PREFIX option requires BCAST mode to be enabled"));
    }
    if old & tf::ON != 0 && (old & tf::BCAST) != (options & tf::BCAST) {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if options & tf::BCAST != 0 && options & (tf::OPTIN | tf::OPTOUT) != 0 {
        return Err(CmdError::err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if options & tf::OPTIN != 0 && options & tf::OPTOUT != 0 {
        return Err(CmdError::err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if (options & tf::OPTIN != 0 && old & tf::OPTOUT != 0) || (options & tf::OPTOUT != 0 && old & tf::OPTIN != 0) {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    Ok(())
}

/// No two prefixes of a client may overlap (Redis's check and texts).
fn check_prefixes(existing: &[Bytes], new: &[Bytes]) -> CmdResult {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(e)
            )));
        }
        if let Some(o) = new[i + 1..].iter().find(|o| overlap(o, p)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(o)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO.
pub fn client_caching(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let info = cx.client()?.info.clone();
    let t = info.tracking.load(Relaxed);
    if t & tf::ON == 0 {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    if eq_ic(&args[2], "YES") {
        if t & tf::OPTIN == 0 {
            return Err(CmdError::err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if eq_ic(&args[2], "NO") {
        if t & tf::OPTOUT == 0 {
            return Err(CmdError::err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    info.tracking.fetch_or(tf::CACHING, Relaxed);
    cx.out().ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirect target, 0 without one, -1 when not
/// tracking.
pub fn client_getredir(cx: &mut dyn Coord) -> CmdResult {
    let info = cx.client()?.info.clone();
    let r = redirect_of(&info);
    cx.out().int(r);
    Ok(())
}

fn redirect_of(info: &ClientInfo) -> i64 {
    if info.tracking.load(Relaxed) & tf::ON == 0 {
        return -1;
    }
    tracking::options(info.id).map_or(-1, |o| o.0 as i64)
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis 7.0.
pub fn client_trackinginfo(cx: &mut dyn Coord) -> CmdResult {
    let info = cx.client()?.info.clone();
    let t = info.tracking.load(Relaxed);
    let mut flags = vec![if t & tf::ON != 0 { "on" } else { "off" }];
    let caching = t & tf::CACHING != 0;
    if t & tf::BCAST != 0 {
        flags.push("bcast");
    }
    if t & tf::OPTIN != 0 {
        flags.push("optin");
        if caching {
            flags.push("caching-yes");
        }
    }
    if t & tf::OPTOUT != 0 {
        flags.push("optout");
        if caching {
            flags.push("caching-no");
        }
    }
    if t & tf::NOLOOP != 0 {
        flags.push("noloop");
    }
    if t & tf::BROKEN != 0 {
        flags.push("broken_redirect");
    }
    let redirect = redirect_of(&info);
    let mut prefixes = if t & tf::ON != 0 { tracking::options(info.id).map(|o| o.1).unwrap_or_default() } else { Vec::new() };
    // In byte order, as Redis keeps them.
    prefixes.sort();
    let out = cx.out();
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(redirect);
    out.bulk(b"prefixes");
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
    Ok(())
}

/// Whether CLIENT CACHING's flag is set for `spec`, the next command
/// (CLIENT's own subcommands leave it for the one after).
#[inline]
pub fn caching_for(info: &ClientInfo, spec: &CommandSpec) -> bool {
    info.tracking.load(Relaxed) & tf::CACHING != 0 && !spec.name.starts_with("client")
}

/// The command CLIENT CACHING was for ran: the flag goes.
pub fn caching_used(info: &ClientInfo) {
    info.tracking.fetch_and(!tf::CACHING, Relaxed);
}

/// The commands `f` runs on `sh` are `info`'s client's (a tracking
/// client's reads are remembered, its writes are its own for NOLOOP).
/// One relaxed load for a client that does not track.
#[inline]
pub fn as_caller<R>(sh: &mut Shard, info: &ClientInfo, f: impl FnOnce(&mut Shard) -> R) -> R {
    let t = info.tracking.load(Relaxed);
    if t == 0 {
        return f(sh);
    }
    let saved = (sh.caller, sh.caller_mode);
    (sh.caller, sh.caller_mode) = (info.id, t);
    let r = f(sh);
    (sh.caller, sh.caller_mode) = saved;
    r
}

/// Whether a client in tracking mode `t` has the keys it reads remembered:
/// tracking on, not BCAST (which tracks prefixes), and not OPTIN without
/// CACHING YES or OPTOUT after CACHING NO.
pub fn remembers_reads(t: u8) -> bool {
    let caching = t & tf::CACHING != 0;
    let opted_in = t & tf::OPTIN == 0 || caching;
    let opted_out = t & tf::OPTOUT != 0 && caching;
    t & tf::ON != 0 && t & tf::BCAST == 0 && opted_in && !opted_out
}

/// After a shard command ran without error on `sh` for the tracking
/// client `sh.caller`: a read command's keys are remembered there, unless
/// OPTIN without CACHING YES, OPTOUT with CACHING NO, or BCAST (which
/// tracks prefixes). A read command inside a script remembers the keys
/// the script declared (`Shard::script_keys`), as Redis does; the script
/// command itself remembers nothing.
pub fn after_read(sh: &mut Shard, spec: &CommandSpec, args: &[Bytes]) {
    let (id, t) = (sh.caller, sh.caller_mode);
    if !spec.has_flag(flag::READONLY) || spec.has_flag(flag::PUBSUB) || !remembers_reads(t) {
        return;
    }
    if matches!(spec.exec, super::Exec::Script(_)) {
        return;
    }
    if let Some(keys) = sh.script_keys.take() {
        let (me, n) = (sh.id, sh.nshards());
        for k in keys.iter().filter(|k| crate::slot::key_slot(k) as usize % n == me) {
            sh.track_read(k, id);
        }
        sh.script_keys = Some(keys);
        return;
    }
    for i in spec.key_indices(args) {
        sh.track_read(&args[i], id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn prefixes_must_not_overlap() {
        assert!(check_prefixes(&[b("user:")], &[b("obj:"), b("x")]).is_ok());
        let e = check_prefixes(&[b("user:")], &[b("user:1")]).unwrap_err().to_string();
        assert!(e.contains("Prefix 'user:1' overlaps with an existing prefix 'user:'"), "{e}");
        let e = check_prefixes(&[], &[b("a"), b("ab")]).unwrap_err().to_string();
        assert!(e.contains("Prefix 'a' overlaps with another provided prefix 'ab'"), "{e}");
        // The empty prefix (BCAST without PREFIX) overlaps every other.
        assert!(check_prefixes(&[b("")], &[b("a")]).is_err());
    }

    #[test]
    fn modes_combine_as_redis_allows() {
        assert!(check_options(0, tf::BCAST, true).is_ok());
        assert!(check_options(0, 0, true).is_err());
        assert!(check_options(tf::ON, tf::BCAST, false).is_err());
        assert!(check_options(0, tf::BCAST | tf::OPTIN, false).is_err());
        assert!(check_options(0, tf::OPTIN | tf::OPTOUT, false).is_err());
        assert!(check_options(tf::ON | tf::OPTIN, tf::OPTOUT, false).is_err());
        assert!(check_options(tf::ON | tf::OPTIN, tf::OPTIN | tf::NOLOOP, false).is_ok());
    }
}
