//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH and PUBSUB (CHANNELS, NUMSUB, NUMPAT), with Redis's reply shapes
//! (the registry is `shard::pubsub`). A RESP2 connection with
//! subscriptions only accepts the subscription commands, PING, QUIT and
//! RESET, as in Redis.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, ConnCmd, Exec};
use crate::error::{CmdError, CmdResult};
use crate::server::conn::{Conn, Subscription};
use crate::util::eq_ic;

const P: &[&str] = &["pubsub", "slow"];
const G: &str = "pubsub";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        P,
        G,
        "Listens for messages published to channels.",
        Exec::Conn(ConnCmd::Subscribe),
    ),
    cmd(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        P,
        G,
        "Stops listening to messages posted to channels.",
        Exec::Conn(ConnCmd::Unsubscribe),
    ),
    cmd(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        P,
        G,
        "Listens for messages published to channels that match one or more patterns.",
        Exec::Conn(ConnCmd::PSubscribe),
    ),
    cmd(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        P,
        G,
        "Stops listening to messages published to channels that match one or more patterns.",
        Exec::Conn(ConnCmd::PUnsubscribe),
    ),
    cmd(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        &["pubsub", "fast"],
        G,
        "Posts a message to a channel.",
        Exec::Conn(ConnCmd::Publish),
    ),
    cmd("pubsub", -2, 0, (0, 0, 0), &["slow"], G, "A container for Pub/Sub commands.", Exec::Conn(ConnCmd::PubSub)),
];

/// Whether a RESP2 connection with subscriptions may run `name`.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(name, "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
}

fn sub(conn: &mut Conn) -> &mut Subscription {
    conn.sub.get_or_insert_with(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Box::new(Subscription { tx, rx, channels: Default::default(), patterns: Default::default() })
    })
}

fn confirm(conn: &mut Conn, kind: &[u8], name: Option<&[u8]>) {
    let count = conn.sub.as_ref().map_or(0, |s| s.count());
    conn.out.push(3);
    conn.out.bulk(kind);
    match name {
        Some(n) => conn.out.bulk(n),
        None => conn.out.nil(),
    }
    conn.out.int(count as i64);
}

/// SUBSCRIBE / PSUBSCRIBE.
pub fn subscribe(conn: &mut Conn, args: &[Bytes], pattern: bool) -> CmdResult {
    if conn.exec_tx.is_some() {
        return Err(CmdError::err(format!("{} isn't allowed in this context", if pattern { "PSUBSCRIBE" } else { "SUBSCRIBE" })));
    }
    let id = conn.info.id;
    for name in &args[1..] {
        let s = sub(conn);
        let fresh = if pattern { s.patterns.insert(name.clone()) } else { s.channels.insert(name.clone()) };
        if fresh {
            let tx = s.tx.clone();
            conn.engine.pubsub.subscribe(pattern, name, id, &tx);
        }
        confirm(conn, if pattern { b"psubscribe" } else { b"subscribe" }, Some(name));
    }
    Ok(())
}

/// UNSUBSCRIBE / PUNSUBSCRIBE (all of them without arguments).
pub fn unsubscribe(conn: &mut Conn, args: &[Bytes], pattern: bool) -> CmdResult {
    let kind: &[u8] = if pattern { b"punsubscribe" } else { b"unsubscribe" };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        conn.sub
            .as_ref()
            .map(|s| if pattern { s.patterns.iter().cloned().collect() } else { s.channels.iter().cloned().collect() })
            .unwrap_or_default()
    };
    if names.is_empty() {
        confirm(conn, kind, None);
        return Ok(());
    }
    let id = conn.info.id;
    for name in names {
        if let Some(s) = conn.sub.as_mut() {
            let was = if pattern { s.patterns.remove(&name) } else { s.channels.remove(&name) };
            if was {
                conn.engine.pubsub.unsubscribe(pattern, &name, id);
            }
        }
        confirm(conn, kind, Some(&name));
    }
    if conn.sub.as_ref().is_some_and(|s| s.count() == 0) {
        conn.sub = None;
    }
    Ok(())
}

/// Drops every subscription (the connection closes, or RESET).
pub fn unsubscribe_all(conn: &mut Conn) {
    let Some(s) = conn.sub.take() else { return };
    let id = conn.info.id;
    for c in &s.channels {
        conn.engine.pubsub.unsubscribe(false, c, id);
    }
    for p in &s.patterns {
        conn.engine.pubsub.unsubscribe(true, p, id);
    }
}

pub fn publish(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let n = conn.engine.pubsub.publish(&args[1], &args[2]);
    conn.out.int(n as i64);
    Ok(())
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP.
pub fn pubsub(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "channels") && args.len() <= 3 {
        let chans = conn.engine.pubsub.channels(args.get(2).map(|p| &p[..]));
        conn.out.array(chans.len());
        for c in chans {
            conn.out.bulk(&c);
        }
    } else if eq_ic(sub, "numsub") {
        conn.out.map(args.len() - 2);
        for c in &args[2..] {
            conn.out.bulk(c);
            conn.out.int(conn.engine.pubsub.numsub(c) as i64);
        }
    } else if eq_ic(sub, "numpat") && args.len() == 2 {
        conn.out.int(conn.engine.pubsub.numpat() as i64);
    } else if eq_ic(sub, "help") && args.len() == 2 {
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
        conn.out.array(lines.len());
        for l in lines {
            conn.out.simple(l);
        }
    } else {
        return Err(CmdError::UnknownSubcommand { cmd: "PUBSUB".into(), sub: String::from_utf8_lossy(sub).into_owned() });
    }
    Ok(())
}
