//! What the pop commands of every type share: the MPOP argument form, the
//! blocking timeout, reply shapes, and popping from the first non-empty key
//! with blocking through `shard::blocking` (BLPOP & co., BZPOPMIN & co.,
//! XREAD BLOCK). `Kind` is what a blocked client takes, and tells the
//! type-agnostic blocking controller how (its `Take`), through the list and
//! sorted-set operations.

use bytes::Bytes;

use super::Coord;
use crate::config::Config;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::shard::blocking::{Popped, Take, Waiter};
use crate::shard::journal::JournalForm;
use crate::store::Db;
use crate::util::{eq_ic, now_ms, parse_f64, parse_i64};

/// What a blocked client pops.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Sorted-set members with the highest (else lowest) scores; `mpop`:
    /// for ZMPOP or BZMPOP (journaled with their count).
    ZSet { max: bool, mpop: bool },
    /// List elements from the head (else the tail); `mpop` as above.
    List { left: bool, mpop: bool },
    /// Nothing is taken: the client (XREAD) is woken by a write to a
    /// stream (not by another type taking the key) and reads it again; a
    /// consumer-group reader (`group`) also
    /// when the key was deleted or replaced, which ends its wait (Redis's
    /// unblockDeletedStreamReadgroupClients).
    Stream { group: bool },
}

/// Pops up to `count` items of `kind` from `key` (list items carry score 0).
pub fn pop_kind(db: &mut Db, key: &[u8], kind: Kind, count: usize, now: u64) -> CmdResult<Vec<(Vec<u8>, f64)>> {
    match kind {
        Kind::ZSet { max, .. } => super::zsets::pop_members(db, key, max, count, now),
        Kind::List { left, .. } => Ok(super::lists::pop_items(db, key, left, count, now)?.into_iter().map(|v| (v.to_vec(), 0.0)).collect()),
        Kind::Stream { .. } => Ok(Vec::new()),
    }
}

/// Whether `key` holds items of `kind`.
pub fn has_kind(db: &mut Db, key: &[u8], kind: Kind, now: u64) -> bool {
    match kind {
        Kind::ZSet { .. } => super::zsets::has_members(db, key, now),
        Kind::List { .. } => super::lists::has_items(db, key, now),
        // A plain reader waits through another type taking the key (it
        // reads once a stream is back there), as Redis's XREAD.
        Kind::Stream { group } => group || db.peek(key, now).is_some_and(|(e, _)| matches!(e.value, crate::store::Value::Stream(_))),
    }
}

/// Puts popped items back where they came from.
pub fn push_back(db: &mut Db, key: &[u8], kind: Kind, items: Vec<(Vec<u8>, f64)>, cfg: &Config, now: u64) {
    match kind {
        Kind::ZSet { .. } => super::zsets::push_back(db, key, items, cfg.zset_limits(), now),
        Kind::List { left, .. } => {
            let _ = super::lists::push_items(db, key, left, items.iter().rev().map(|(v, _)| &v[..]), cfg.encoding.list_shape(), now);
        }
        Kind::Stream { .. } => {}
    }
}

impl Take for Kind {
    fn ready(&self, db: &mut Db, key: &[u8], now: u64) -> bool {
        has_kind(db, key, *self, now)
    }

    fn take(&self, db: &mut Db, key: &[u8], count: usize, now: u64) -> CmdResult<Vec<(Vec<u8>, f64)>> {
        let items = pop_kind(db, key, *self, count, now)?;
        if !items.is_empty() {
            popped_events(db, key, *self);
        }
        Ok(items)
    }

    fn put_back(&self, db: &mut Db, key: &[u8], items: Vec<(Vec<u8>, f64)>, cfg: &Config, now: u64) {
        push_back(db, key, *self, items, cfg, now)
    }

    fn journal_form(&self, key: &[u8], n: usize) -> Option<JournalForm> {
        journal_form(*self, key, n)
    }
}

/// The keyspace events of a served blocked pop, as Redis sends them:
/// `lpop`/`rpop`/`zpopmin`/`zpopmax` on the key, then `del` if that
/// emptied it.
pub fn popped_events(db: &mut Db, key: &[u8], kind: Kind) {
    use crate::config::keyspace_events as ks;
    if !crate::store::notify::events() {
        return;
    }
    let (class, event) = match kind {
        Kind::List { left: true, .. } => (ks::LIST, "lpop"),
        Kind::List { left: false, .. } => (ks::LIST, "rpop"),
        Kind::ZSet { max: false, .. } => (ks::ZSET, "zpopmin"),
        Kind::ZSet { max: true, .. } => (ks::ZSET, "zpopmax"),
        Kind::Stream { .. } => return,
    };
    db.push_event(class, event, key);
    if !db.contains(key) {
        db.push_event(ks::GENERIC, "del", key);
    }
}

/// What the journal and the replicas get for `n` items popped from `key`,
/// as Redis propagates the blocking and MPOP forms: `LPOP key` for BLPOP,
/// `LPOP key n` for LMPOP and BLMPOP (n: what they took), `ZPOPMIN key`
/// for BZPOPMIN, `ZPOPMIN key n` for ZMPOP and BZMPOP, and the same from
/// the other end.
fn journal_form(kind: Kind, key: &[u8], n: usize) -> Option<JournalForm> {
    let (name, mpop): (&[u8], bool) = match kind {
        Kind::List { left: true, mpop } => (b"LPOP", mpop),
        Kind::List { left: false, mpop } => (b"RPOP", mpop),
        Kind::ZSet { max: false, mpop } => (b"ZPOPMIN", mpop),
        Kind::ZSet { max: true, mpop } => (b"ZPOPMAX", mpop),
        Kind::Stream { .. } => return None,
    };
    let mut cmd = vec![name.to_vec(), key.to_vec()];
    if mpop || n != 1 {
        cmd.push(n.to_string().into_bytes());
    }
    Some(vec![cmd])
}

/// How a pop command replies.
#[derive(Clone, Copy, PartialEq)]
pub enum PopReply {
    /// BZPOPMIN/BZPOPMAX: key, member, score.
    Flat,
    /// ZMPOP/BZMPOP: key, then the [member, score] pairs.
    Nested,
    /// BLPOP/BRPOP: key, element.
    Pair,
    /// LMPOP/BLMPOP: key, then the elements.
    NestedList,
}

fn write_popped(out: &mut Out, style: PopReply, key: &[u8], items: &[(Vec<u8>, f64)]) {
    match style {
        PopReply::Flat => {
            out.array(3);
            out.bulk(key);
            for (m, sc) in items.iter().take(1) {
                out.bulk(m);
                out.double(*sc);
            }
        }
        PopReply::Pair => {
            out.array(2);
            out.bulk(key);
            for (m, _) in items.iter().take(1) {
                out.bulk(m);
            }
        }
        PopReply::Nested => {
            out.array(2);
            out.bulk(key);
            out.array(items.len());
            for (m, sc) in items {
                out.array(2);
                out.bulk(m);
                out.double(*sc);
            }
        }
        PopReply::NestedList => {
            out.array(2);
            out.bulk(key);
            out.array(items.len());
            for (m, _) in items {
                out.bulk(m);
            }
        }
    }
}

/// The optional count of LPOP, RPOP, SPOP, ZPOPMIN and ZPOPMAX (`key
/// [count]`): `None` without one. Redis gives one message for anything
/// but a count >= 0.
pub fn parse_count(args: &[Bytes]) -> CmdResult<Option<usize>> {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    match args.get(2) {
        None => Ok(None),
        Some(a) => match parse_i64(a) {
            Ok(c) if c >= 0 => Ok(Some(c as usize)),
            _ => Err(CmdError::err("value is out of range, must be positive")),
        },
    }
}

/// The MPOP form: numkeys key [key ...] FIRST|SECOND [COUNT count], with
/// numkeys at `args[at]` (LMPOP: LEFT|RIGHT, ZMPOP: MIN|MAX); (keys, whether
/// SECOND was given, count).
pub fn parse_mpop(args: &[Bytes], at: usize, first: &str, second: &str) -> CmdResult<(Vec<Bytes>, bool, usize)> {
    let n = parse_i64(&args[at]).map_err(|_| CmdError::err("numkeys should be greater than 0"))?;
    if n <= 0 {
        return Err(CmdError::err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n >= args.len() - at - 1 {
        // No room left for the end to pop from.
        return Err(CmdError::Syntax);
    }
    let keys = args[at + 1..at + 1 + n].to_vec();
    let mut rest = args[at + 1 + n..].iter();
    let end = match rest.next() {
        Some(a) if eq_ic(a, first) => false,
        Some(a) if eq_ic(a, second) => true,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = None;
    while let Some(a) = rest.next() {
        if eq_ic(a, "COUNT") && count.is_none() {
            match rest.next().map(|c| parse_i64(c)) {
                Some(Ok(c)) if c > 0 => count = Some(c as usize),
                Some(_) => return Err(CmdError::err("count should be greater than 0")),
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, end, count.unwrap_or(1)))
}

/// A blocking command's timeout in seconds: `None` blocks forever (0).
pub fn parse_timeout(a: &[u8]) -> CmdResult<Option<std::time::Duration>> {
    let t = parse_f64(a).map_err(|_| CmdError::err("timeout is not a float or out of range"))?;
    if t < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if !t.is_finite() || t > 1e10 {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok((t > 0.0).then(|| std::time::Duration::from_secs_f64(t)))
}

/// Pops from the first key, in order, holding items of `kind`; with `block`
/// (and outside a transaction) waits for one otherwise, for at most the
/// given time (`None`: for ever). Replies nil when nothing came. Shared by
/// the list and sorted-set pops.
pub async fn pop_first(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    kind: Kind,
    count: usize,
    style: PopReply,
    block: Option<Option<std::time::Duration>>,
    args: &[Bytes],
) -> CmdResult {
    let db = cx.db();
    let spec = super::lookup(&args[0]).ok_or(CmdError::Syntax)?;
    let mut tries = 0;
    let mut i = 0;
    while i < keys.len() {
        let k = keys[i].clone();
        let shard = cx.engine().shard_of(&k);
        let got = cx
            .run_on(shard, move |sh| {
                // Checked where it runs: see slot::gate.
                if sh.cluster.as_ref().is_some_and(|m| !m.gate.admits(crate::slot::key_slot(&k))) {
                    return Ok(None);
                }
                let now = now_ms();
                let form = |r: &CmdResult<Vec<(Vec<u8>, f64)>>| {
                    r.as_ref().ok().filter(|v| !v.is_empty()).and_then(|v| journal_form(kind, &k, v.len()))
                };
                sh.journal_as(db, |d| pop_kind(d, &k, kind, count, now), form).map(Some)
            })
            .await?;
        match got {
            None if tries < 60 => {
                // A migration holds or took the slot: wait, route again.
                tries += 1;
                cx.after_cutover(spec, args).await?;
                continue;
            }
            None => return Err(CmdError::Other("TRYAGAIN the slot is still being migrated".into())),
            Some(got) if !got.is_empty() => {
                write_popped(cx.out(), style, &keys[i], &got);
                return Ok(());
            }
            Some(_) => i += 1,
        }
    }
    match wait_pop(cx, keys, kind, count, block, args).await? {
        Some(p) => write_popped(cx.out(), style, &p.key, &p.items),
        None => {
            if !cx.client_gone() {
                cx.out().nil_array();
            }
        }
    }
    Ok(())
}

/// A waiter's registrations, per shard: dropped, it has each shard prune
/// the keys' waiters (the waiter is claimed by then, or its client gone).
struct Registered {
    engine: std::sync::Arc<crate::shard::Engine>,
    db: usize,
    by_shard: Vec<Vec<Bytes>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let db = self.db;
        for (shard, keys) in std::mem::take(&mut self.by_shard).into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
            self.engine.send(
                shard,
                crate::shard::NO_TX,
                Box::new(move |sh| {
                    for k in &keys {
                        sh.prune_waiters(db, k);
                    }
                }),
            );
        }
    }
}

/// Blocks (unless `block` is `None` or a transaction runs) until a key of
/// `keys` gets items of `kind`, and pops them: `None` on timeout or when the
/// client left; the redirect when the keys' slot moved away.
pub async fn wait_pop(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    kind: Kind,
    count: usize,
    block: Option<Option<std::time::Duration>>,
    _args: &[Bytes],
) -> CmdResult<Option<Popped>> {
    wait_take(cx, keys, kind, kind, count, block).await
}

/// `wait_pop` with the shards taking items as `take` says (which waits for
/// what `kind` names): a blocked BLMOVE moves the element itself.
pub async fn wait_take<T: Take + Clone + 'static>(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    kind: Kind,
    take: T,
    count: usize,
    block: Option<Option<std::time::Duration>>,
) -> CmdResult<Option<Popped>> {
    let db = cx.db();
    let Some(limit) = block.filter(|_| cx.may_block()) else { return Ok(None) };
    // Nothing is held while waiting (a move's first attempt may have
    // locked its shards).
    cx.release();
    // The waiter is registered on every key's shard; a key that got items
    // meanwhile is marked ready, so its shard serves the waiter right after
    // (every reply goes through the waiter's claim: once).
    let (w, mut rx) = Waiter::new(take.clone(), count);
    let engine = cx.engine().clone();
    let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); engine.nshards()];
    for key in keys {
        by_shard[engine.shard_of(key)].push(key.clone());
    }
    // However the wait ends (or the command is dropped with its client),
    // each shard then forgets the waiter: a waiter whose keys are never
    // written would otherwise stay registered for good.
    let _registered = Registered { engine: engine.clone(), db, by_shard: by_shard.clone() };
    for (shard, keys) in by_shard.into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        let w = w.clone();
        cx.run_on(shard, move |sh| {
            for k in &keys {
                sh.block(db, k, w.clone());
                // (A stream reader has just read: only a later write wakes it.)
                if !matches!(kind, Kind::Stream { .. }) && has_kind(sh.db(db), k, kind, now_ms()) {
                    sh.db(db).mark_ready(k);
                }
            }
        })
        .await;
    }
    let _blocked = crate::shard::blocking::BlockedClient::new(cx.engine().clone(), cx.session().map(|s| s.info.clone()));
    // Nothing polls: the wait ends when a shard serves the waiter, the
    // timeout fires, the client hangs up, or (cluster mode) a key's slot
    // is no longer served here, whichever comes first.
    let deadline = limit.map(|d| tokio::time::Instant::now() + d);
    let moved = cx.session().map(|s| s.keys_moving(keys));
    let me = cx.session().map(|s| s.info.clone());
    let ended = {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let moved = async {
            match moved {
                Some(m) => m.await,
                None => std::future::pending().await,
            }
        };
        let unblocked = async {
            match &me {
                Some(me) => me.unblocked().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut rx => Ok(r),
            () = timeout => Err(End::Timeout),
            () = cx.client_closed() => Err(End::Gone),
            () = moved => Err(End::Moved),
            error = unblocked => Err(End::Unblocked(error)),
        }
    };
    let served = match ended {
        Ok(r) => r,
        Err(end) if w.claim() => {
            // CLIENT UNBLOCK: an error, or the timeout's reply.
            if let End::Unblocked(error) = end {
                if error {
                    return Err(CmdError::Other("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()));
                }
                if let Some(s) = cx.session() {
                    s.unblocked = true;
                }
            }
            if let End::Moved = end {
                // The slot left this node: the client is redirected.
                if let Some(c) = cx.session().and_then(|s| s.cluster.as_mut()) {
                    c.keys_served_here(keys)?;
                }
            }
            return Ok(None);
        }
        // A shard is serving it right now: the reply is on its way.
        Err(_) => rx.await,
    };
    match served {
        Ok(p) if cx.client_gone_now().await => {
            // Nobody to give them to: the items go back.
            let shard = cx.engine().shard_of(&p.key);
            cx.run_on(shard, move |sh| {
                let cfg = sh.cfg.clone();
                take.put_back(sh.db(db), &p.key, p.items, &cfg, now_ms())
            })
            .await;
            Ok(None)
        }
        Ok(p) => Ok(Some(p)),
        Err(_) => Ok(None),
    }
}

/// Why a blocked client stopped waiting without being served.
enum End {
    Timeout,
    Gone,
    Moved,
    /// CLIENT UNBLOCK, with ERROR (true) or TIMEOUT.
    Unblocked(bool),
}
