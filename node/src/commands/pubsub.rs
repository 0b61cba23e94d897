//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, the sharded SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH, and PUBSUB
//! (CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB), with Redis's
//! reply shapes (the registry is `shard::pubsub`). A shard channel is
//! declared as a key (Redis's `not_key` key spec), so in cluster mode it is
//! routed by its slot like a key: MOVED elsewhere, CROSSSLOT for several
//! slots in one SSUBSCRIBE. A RESP2 connection with
//! subscriptions only accepts the subscription commands, PING, QUIT and
//! RESET, as in Redis (those declared `flag::SUBSCRIBED`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::session::{Session, Subscription};
use super::{cmd, flag::*, CommandSpec, Coord, Exec, KeyRule};
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
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (0, 0, 0),
        &["pubsub", "fast"],
        G,
        "Posts a message to a channel.",
        Exec::Coord(handler!(|cx, a| publish(cx, a))),
    ),
    cmd(
        "ssubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (1, -1, 1),
        P,
        G,
        "Listens for messages published to shard channels.",
        Exec::Coord(handler!(|cx, a| ssubscribe(cx, a))),
    )
    .keys(&[KeyRule::range(1, -1, 1).with_flags(&["not_key"])]),
    cmd(
        "sunsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED,
        (1, -1, 1),
        P,
        G,
        "Stops listening to messages posted to shard channels.",
        Exec::Coord(handler!(|cx, a| sunsubscribe(cx, a))),
    )
    .keys(&[KeyRule::range(1, -1, 1).with_flags(&["not_key"])]),
    cmd(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (1, 1, 1),
        &["pubsub", "fast"],
        G,
        "Post a message to a shard channel",
        Exec::Coord(handler!(|cx, a| spublish(cx, a))),
    )
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["not_key"])]),
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
        super::sub("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "Returns the active shard channels.", PUBSUB_),
        super::sub(
            "pubsub|shardnumsub",
            -2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            PS,
            "Returns the count of subscribers of shard channels.",
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
        Box::new(Subscription { tx, rx, channels: Default::default(), patterns: Default::default(), shard_channels: Default::default() })
    })
}

fn confirm(cx: &mut dyn Coord, count: usize, kind: &[u8], name: Option<&[u8]>) {
    if let Ok(s) = cx.client() {
        s.pushed = true;
    }
    let out = cx.out();
    out.push(3);
    out.bulk(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.nil(),
    }
    out.int(count as i64);
}

/// A channel name to keep for as long as the subscription: copied, as the
/// argument is a slice of the input buffer it arrived in, which it would
/// keep alive whole (up to 64 KiB per read, for a name of a few bytes).
fn kept(name: &Bytes) -> Bytes {
    Bytes::copy_from_slice(name)
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
        let set = if pattern { &mut sb.patterns } else { &mut sb.channels };
        if !set.contains(name) {
            let name = kept(name);
            set.insert(name.clone());
            engine.pubsub.subscribe(pattern, &name, &info, &sb.tx);
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
    leave_if_unsubscribed(cx.client()?);
    Ok(())
}

/// Leaves subscribed mode when no subscription is left (messages still
/// queued go with it: no publisher adds any more).
fn leave_if_unsubscribed(s: &mut Session) {
    if s.sub.as_ref().is_some_and(|s| s.total() == 0) {
        s.sub = None;
        s.info.out_pending.store(0, Relaxed);
    }
}

/// SSUBSCRIBE shardchannel [shardchannel ...].
pub fn ssubscribe(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if cx.in_exec() {
        return Err(CmdError::err("SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    let engine = cx.engine().clone();
    for name in &args[1..] {
        let s = cx.client()?;
        let info = s.info.clone();
        let sb = sub(s);
        if !sb.shard_channels.contains(name) {
            let name = kept(name);
            sb.shard_channels.insert(name.clone());
            engine.pubsub.subscribe_shard(&name, &info, &sb.tx);
        }
        let count = sb.shard_channels.len();
        confirm(cx, count, b"ssubscribe", Some(name));
    }
    Ok(())
}

/// SUNSUBSCRIBE [shardchannel ...] (all of them without arguments).
pub fn sunsubscribe(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    let s = cx.client()?;
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        s.sub.as_ref().map(|s| s.shard_channels.iter().cloned().collect()).unwrap_or_default()
    };
    if names.is_empty() {
        confirm(cx, 0, b"sunsubscribe", None);
        return Ok(());
    }
    for name in names {
        let s = cx.client()?;
        let id = s.info.id;
        if let Some(sb) = s.sub.as_mut() {
            if sb.shard_channels.remove(&name) {
                engine.pubsub.unsubscribe_shard(&name, id);
            }
        }
        let count = s.sub.as_ref().map_or(0, |s| s.shard_channels.len());
        confirm(cx, count, b"sunsubscribe", Some(&name));
    }
    leave_if_unsubscribed(cx.client()?);
    Ok(())
}

/// SPUBLISH shardchannel message.
pub fn spublish(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let e = cx.engine();
    let n = e.pubsub.publish_shard(&args[1], &args[2], &e.cfg.output_limits[crate::config::CLASS_PUBSUB]);
    cx.out().int(n as i64);
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
    for c in &sb.shard_channels {
        engine.pubsub.unsubscribe_shard(c, id);
    }
    s.info.out_pending.store(0, Relaxed);
}

/// PUBLISH channel message: to this node's subscribers, and in cluster
/// mode to the other nodes' (as Redis Cluster broadcasts it); the count is
/// this node's, as in Redis.
pub fn publish(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let e = cx.engine();
    if let Some(bus) = e.cluster.as_ref().and_then(|m| m.publish.get()) {
        // Best effort, as Redis's bus: a backlog past the queue's bound
        // (a peer that cannot keep up) loses messages rather than memory.
        let _ = bus.try_send((args[1].clone(), args[2].clone()));
    }
    let n = e.pubsub.publish(&args[1], &args[2], &e.cfg.output_limits[crate::config::CLASS_PUBSUB]);
    // A primary's replicas get the message in their stream, as Redis
    // propagates PUBLISH (in cluster mode the bus carries it instead).
    if e.cluster.is_none() && e.repl.active.load(std::sync::atomic::Ordering::Relaxed) && !e.repl.is_replica() {
        let mut bytes = Vec::new();
        crate::shard::journal::command(&mut bytes, &[b"PUBLISH", &args[1], &args[2]]);
        let db = cx.db() as u32;
        cx.engine().journal.send(crate::shard::journal::JournalMsg::ReplOnly { db, bytes });
    }
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
        // A flat array in RESP3 too, as Redis replies it.
        cx.out().array((args.len() - 2) * 2);
        for c in &args[2..] {
            let n = cx.engine().pubsub.numsub(c);
            cx.out().bulk(c);
            cx.out().int(n as i64);
        }
    } else if eq_ic(sub, "shardchannels") {
        if args.len() > 3 {
            return Err(CmdError::subcommand_syntax("pubsub", sub));
        }
        let chans = cx.engine().pubsub.shard_channels(args.get(2).map(|p| &p[..]));
        cx.out().array(chans.len());
        for c in chans {
            cx.out().bulk(&c);
        }
    } else if eq_ic(sub, "shardnumsub") {
        cx.out().array((args.len() - 2) * 2);
        for c in &args[2..] {
            let n = cx.engine().pubsub.shard_numsub(c);
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
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Print this help.",
        ];
        cx.out().help(&lines);
    } else {
        return Err(CmdError::unknown_subcommand("pubsub", sub));
    }
    Ok(())
}
