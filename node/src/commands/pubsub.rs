//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH and PUBSUB (CHANNELS, NUMSUB, NUMPAT), with Redis's reply shapes
//! (the registry is `shard::pubsub`). A RESP2 connection with
//! subscriptions only accepts the subscription commands, PING, QUIT and
//! RESET, as in Redis (those declared `flag::SUBSCRIBED`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::session::{Session, Subscription};
use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::Engine;
use crate::util::eq_ic;

const P: &[&str] = &["pubsub", "slow"];
const G: &str = "pubsub";
const PS: &[&str] = &["pubsub", "slow"];

const PUBSUB_: Exec = Exec::Coord(handler!(|cx, a| pubsub(cx, a)));

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (0, 0, 0),
        P,
        G,
        "Listens for messages published to channels.",
        Exec::Coord(handler!(|cx, a| subscribe(cx, a, false))),
    ),
    cmd(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (0, 0, 0),
        P,
        G,
        "Stops listening to messages posted to channels.",
        Exec::Coord(handler!(|cx, a| unsubscribe(cx, a, false))),
    ),
    cmd(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (0, 0, 0),
        P,
        G,
        "Listens for messages published to channels that match one or more patterns.",
        Exec::Coord(handler!(|cx, a| subscribe(cx, a, true))),
    ),
    cmd(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (0, 0, 0),
        P,
        G,
        "Stops listening to messages published to channels that match one or more patterns.",
        Exec::Coord(handler!(|cx, a| unsubscribe(cx, a, true))),
    ),
    cmd(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        &["pubsub", "fast"],
        G,
        "Posts a message to a channel.",
        Exec::Coord(handler!(|cx, a| publish(cx, a))),
    ),
    cmd("pubsub", -2, 0, (0, 0, 0), &["slow"], G, "A container for Pub/Sub commands.", PUBSUB_).subcommands(&[
        super::sub("pubsub|channels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "Returns the active channels.", PUBSUB_),
        super::sub("pubsub|numsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "Returns a count of subscribers to channels.", PUBSUB_),
        super::sub(
            "pubsub|numpat",
            2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            PS,
            "Returns a count of unique pattern subscriptions.",
            PUBSUB_,
        ),
        super::sub(
            "pubsub|help",
            2,
            LOADING | STALE,
            (0, 0, 0),
            &["slow"],
            "Returns helpful text about the different subcommands.",
            PUBSUB_,
        ),
    ]),
];

fn sub(s: &mut Session) -> &mut Subscription {
    s.sub.get_or_insert_with(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Box::new(Subscription { tx, rx, channels: Default::default(), patterns: Default::default() })
    })
}

fn confirm(cx: &mut dyn Coord, count: usize, kind: &[u8], name: Option<&[u8]>) {
    let out = cx.out();
    out.push(3);
    out.bulk(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.nil(),
    }
    out.int(count as i64);
}

/// SUBSCRIBE / PSUBSCRIBE.
pub fn subscribe(cx: &mut dyn Coord, args: &[Bytes], pattern: bool) -> CmdResult {
    if cx.in_exec() {
        return Err(CmdError::err(format!("{} isn't allowed in this context", if pattern { "PSUBSCRIBE" } else { "SUBSCRIBE" })));
    }
    let engine = cx.engine().clone();
    for name in &args[1..] {
        let s = cx.client()?;
        let info = s.info.clone();
        let sb = sub(s);
        let fresh = if pattern { sb.patterns.insert(name.clone()) } else { sb.channels.insert(name.clone()) };
        if fresh {
            engine.pubsub.subscribe(pattern, name, &info, &sb.tx);
        }
        let count = sb.count();
        confirm(cx, count, if pattern { b"psubscribe" } else { b"subscribe" }, Some(name));
    }
    Ok(())
}

/// UNSUBSCRIBE / PUNSUBSCRIBE (all of them without arguments).
pub fn unsubscribe(cx: &mut dyn Coord, args: &[Bytes], pattern: bool) -> CmdResult {
    let engine = cx.engine().clone();
    let kind: &[u8] = if pattern { b"punsubscribe" } else { b"unsubscribe" };
    let s = cx.client()?;
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        s.sub
            .as_ref()
            .map(|s| if pattern { s.patterns.iter().cloned().collect() } else { s.channels.iter().cloned().collect() })
            .unwrap_or_default()
    };
    if names.is_empty() {
        let count = s.sub.as_ref().map_or(0, |s| s.count());
        confirm(cx, count, kind, None);
        return Ok(());
    }
    for name in names {
        let s = cx.client()?;
        let id = s.info.id;
        if let Some(sb) = s.sub.as_mut() {
            let was = if pattern { sb.patterns.remove(&name) } else { sb.channels.remove(&name) };
            if was {
                engine.pubsub.unsubscribe(pattern, &name, id);
            }
        }
        let count = s.sub.as_ref().map_or(0, |s| s.count());
        confirm(cx, count, kind, Some(&name));
    }
    let s = cx.client()?;
    if s.sub.as_ref().is_some_and(|s| s.count() == 0) {
        // Messages still queued go with it (no publisher adds any more).
        s.sub = None;
        s.info.out_pending.store(0, Relaxed);
    }
    Ok(())
}

/// Drops every subscription (the connection closes, or RESET).
pub fn unsubscribe_all(engine: &Engine, s: &mut Session) {
    let Some(sb) = s.sub.take() else { return };
    let id = s.info.id;
    for c in &sb.channels {
        engine.pubsub.unsubscribe(false, c, id);
    }
    for p in &sb.patterns {
        engine.pubsub.unsubscribe(true, p, id);
    }
    s.info.out_pending.store(0, Relaxed);
}

pub fn publish(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let e = cx.engine();
    let n = e.pubsub.publish(&args[1], &args[2], &e.cfg.output_limits[crate::config::CLASS_PUBSUB]);
    cx.out().int(n as i64);
    Ok(())
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP.
pub fn pubsub(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "channels") {
        if args.len() > 3 {
            return Err(CmdError::subcommand_syntax("pubsub", sub));
        }
        let chans = cx.engine().pubsub.channels(args.get(2).map(|p| &p[..]));
        cx.out().array(chans.len());
        for c in chans {
            cx.out().bulk(&c);
        }
    } else if eq_ic(sub, "numsub") {
        cx.out().map(args.len() - 2);
        for c in &args[2..] {
            let n = cx.engine().pubsub.numsub(c);
            cx.out().bulk(c);
            cx.out().int(n as i64);
        }
    } else if eq_ic(sub, "numpat") {
        let n = cx.engine().pubsub.numpat();
        cx.out().int(n as i64);
    } else if eq_ic(sub, "help") {
        let lines = [
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "HELP",
            "    Print this help.",
        ];
        cx.out().help(&lines);
    } else {
        return Err(CmdError::unknown_subcommand("pubsub", sub));
    }
    Ok(())
}
