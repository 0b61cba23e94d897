//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted
//! numerically or (ALPHA) as strings, by themselves or by the values of
//! other keys (`BY pattern`, `*` standing for the element, `key->field` for
//! a hash field), or left unsorted (`BY nosort`), with LIMIT, GET (`#` for
//! the element itself) and STORE into a list. Replies, option checks and
//! error texts are Redis's; in cluster mode BY and GET patterns are refused
//! unless every key they form hashes to the sorted key's slot (Redis 7.4).
//!
//! The pattern keys may live on other shards than the sorted key: the
//! command then holds every shard it may read (each pattern's shard when
//! its hash tag fixes it, else all of them) and reads in steps — the
//! elements, the BY values, then the GET values of the rows it returns —
//! so it sees one consistent state. When everything is on one shard it is
//! a single job there.

use bytes::Bytes;

use super::notify::Notify;
use super::{cmd, flag::*, CommandSpec, Coord, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::{tally_reply, Out};
use crate::shard::Shard;
use crate::slot::{crc16, key_slot};
use crate::store::{Db, Value};
use crate::types::list::{ListShape, ListValue};
use crate::util::{eq_ic, now_ms, parse_f64, parse_i64};

const G: &str = "generic";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "sort",
        -2,
        WRITE | DENYOOM,
        (1, 1, 1),
        &["write", "set", "sortedset", "list", "slow", "dangerous"],
        G,
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        Exec::Coord(handler!(async |cx, a| sort(cx, a, false))),
    )
    .notify(Notify::Store(ks::LIST, "sortstore"))
    .keys(&[
        KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]),
        KeyRule::unknown().with_flags(&["RO", "access"]),
        KeyRule::unknown().with_flags(&["OW", "update"]),
    ])
    .extra_keys(store_key),
    cmd(
        "sort_ro",
        -2,
        READONLY,
        (1, 1, 1),
        &["read", "set", "sortedset", "list", "slow", "dangerous"],
        G,
        "Returns the sorted elements of a list, a set, or a sorted set.",
        Exec::Coord(handler!(async |cx, a| sort(cx, a, true))),
    )
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]), KeyRule::unknown().with_flags(&["RO", "access"])]),
];

/// SORT's STORE key for COMMAND GETKEYS, found as Redis's sortGetKeys
/// finds it: the last `STORE x`, skipping LIMIT's, GET's and BY's
/// arguments.
fn store_key(args: &[Bytes]) -> Option<(usize, &'static [&'static str])> {
    let mut found = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "LIMIT") {
            i += 2;
        } else if eq_ic(a, "GET") || eq_ic(a, "BY") {
            i += 1;
        } else if eq_ic(a, "STORE") && i + 1 < args.len() {
            found = Some(i + 1);
        }
        i += 1;
    }
    found.map(|i| (i, &["OW", "update"][..]))
}

/// A parsed SORT.
#[derive(Clone, Debug)]
struct Req {
    key: Bytes,
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count (count -1: all).
    limit: (i64, i64),
    by: Option<Bytes>,
    /// `BY` a pattern without `*`: no sorting (kept once set, as in Redis).
    dontsort: bool,
    gets: Vec<Bytes>,
    store: Option<Bytes>,
}

/// Redis's patternHashSlot: the slot every key a pattern forms hashes to,
/// `None` when they may hash anywhere.
fn pattern_slot(p: &[u8]) -> Option<u16> {
    let mut open: Option<usize> = None;
    let mut empty_tag = false;
    for (i, &c) in p.iter().enumerate() {
        match c {
            b'*' | b'?' | b'[' | b'\\' => return None,
            b'{' if open.is_none() && !empty_tag => open = Some(i),
            b'}' => {
                if let Some(s) = open {
                    if i == s + 1 {
                        open = None;
                        empty_tag = true;
                    } else {
                        return Some(crc16(&p[s + 1..i]) & 0x3FFF);
                    }
                }
            }
            _ => {}
        }
    }
    Some(crc16(p) & 0x3FFF)
}

/// `acl_full`: the user may read every key (else BY and GET patterns are
/// refused, as Redis refuses them).
fn parse(args: &[Bytes], ro: bool, cluster: bool, acl_full: bool) -> CmdResult<Req> {
    let mut req =
        Req { key: args[1].clone(), desc: false, alpha: false, limit: (0, -1), by: None, dontsort: false, gets: Vec::new(), store: None };
    let slot = key_slot(&args[1]);
    let denied = |opt: &str| {
        CmdError::err(format!("{opt} option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."))
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if eq_ic(a, "ASC") {
            req.desc = false;
        } else if eq_ic(a, "DESC") {
            req.desc = true;
        } else if eq_ic(a, "ALPHA") {
            req.alpha = true;
        } else if eq_ic(a, "LIMIT") && left >= 2 {
            req.limit = (parse_i64(&args[j + 1])?, parse_i64(&args[j + 2])?);
            j += 2;
        } else if !ro && eq_ic(a, "STORE") && left >= 1 {
            req.store = Some(args[j + 1].clone());
            j += 1;
        } else if eq_ic(a, "BY") && left >= 1 {
            let p = &args[j + 1];
            if !p.contains(&b'*') {
                req.dontsort = true;
            } else if cluster && pattern_slot(p) != Some(slot) {
                return Err(denied("BY"));
            } else if !acl_full {
                return Err(CmdError::err("BY option of SORT denied due to insufficient ACL permissions."));
            }
            req.by = Some(p.clone());
            j += 1;
        } else if eq_ic(a, "GET") && left >= 1 {
            if cluster && pattern_slot(&args[j + 1]) != Some(slot) {
                return Err(denied("GET"));
            }
            if !acl_full {
                return Err(CmdError::err("GET option of SORT denied due to insufficient ACL permissions."));
            }
            req.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(req)
}

/// A key a pattern forms for one element, with the hash field it names.
type PatKey = (Vec<u8>, Option<Vec<u8>>);

/// What a pattern gives for an element: the element itself (`#`), the
/// value at a key, or nothing (a pattern without `*`).
enum Want {
    Elem,
    Key(PatKey),
    Nothing,
}

/// Redis's lookupKeyByPattern, up to the lookup: the first `*` is replaced
/// by the element; `->field` after it names a hash field.
fn pattern_key(p: &[u8], elem: &[u8]) -> Want {
    if p == b"#" {
        return Want::Elem;
    }
    let Some(star) = p.iter().position(|&b| b == b'*') else { return Want::Nothing };
    let rest = &p[star + 1..];
    let (post, field) = match rest.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < rest.len() => (&rest[..i], Some(rest[i + 2..].to_vec())),
        _ => (rest, None),
    };
    let mut key = Vec::with_capacity(p.len() + elem.len());
    key.extend_from_slice(&p[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    Want::Key((key, field))
}

/// The value a pattern key names: a string, or a hash's field; `None` for
/// a missing key or field, or another type.
fn lookup(db: &mut Db, k: &PatKey, now: u64) -> Option<Vec<u8>> {
    let e = db.get(&k.0, now)?;
    match (&k.1, &e.value) {
        (Some(f), Value::Hash(h)) => h.get(f).map(<[u8]>::to_vec),
        (Some(_), _) => None,
        (None, v) => v.as_bytes(&mut itoa::Buffer::new()).map(<[u8]>::to_vec),
    }
}

/// The values `keys` name, in order. One key may be named for every
/// element (`GET big*` over a list of one repeated element): what is read
/// is bounded by `reply-max-bytes`, as the reply or the stored list would
/// be.
fn lookup_all(db: &mut Db, keys: &[PatKey], now: u64) -> CmdResult<Vec<Option<Vec<u8>>>> {
    let mut bytes = 0;
    keys.iter()
        .map(|k| {
            let v = lookup(db, k, now);
            tally_reply(&mut bytes, v.as_ref().map_or(0, Vec::len))?;
            Ok(v)
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The elements of the key to sort, in the collection's order (a missing
/// key is an empty list); WRONGTYPE for other types. A sorted set is
/// switched to its tree encoding, as Redis's SORT does.
fn load(db: &mut Db, key: &[u8], now: u64) -> CmdResult<(Kind, Vec<Vec<u8>>)> {
    let Some(idx) = db.lookup(key, now) else { return Ok((Kind::List, Vec::new())) };
    // Redis converts a sorted set it sorts to its large encoding for good
    // (which then keeps a score of -0 as -0): so does this.
    if let Value::ZSet(z) = &mut db.entry_repr_mut(idx).value {
        let _ = z.to_tree();
    }
    Ok(match &db.entry(idx).value {
        Value::List(l) => (Kind::List, l.iter().map(|m| m.to_vec()).collect()),
        Value::Set(s) => (Kind::Set, s.iter().map(|m| m.to_vec()).collect()),
        Value::ZSet(z) => {
            let mut v = Vec::with_capacity(z.len());
            z.for_each(|m, _| v.push(m.to_vec()));
            (Kind::ZSet, v)
        }
        _ => return Err(CmdError::WrongType),
    })
}

/// A sort key as Redis's strtod check reads it: leading spaces allowed,
/// nothing after the number (the text ends at a NUL byte, as a C string
/// does), no NaN, nothing out of a double's range. The empty string reads
/// as 0. `None`: not a number.
fn sort_score(b: &[u8]) -> Option<f64> {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if b.is_empty() {
        return Some(0.0);
    }
    let rest = &b[b.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).unwrap_or(b.len())..];
    parse_f64(rest).ok()
}

/// strcoll in the C locale: bytes up to the first NUL.
fn collate(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let c = |s: &[u8]| s.len().min(s.iter().position(|&x| x == 0).unwrap_or(s.len()));
    a[..c(a)].cmp(&b[..c(b)])
}

/// The sort in progress: the elements, then the rows to return.
struct Sorting {
    req: Req,
    elems: Vec<Vec<u8>>,
    /// Rows `start..=end` of `elems` are the result (empty when end < start).
    start: i64,
    end: i64,
    /// Whether `elems` must be sorted (else they are in their final order).
    sort: bool,
    alpha: bool,
    by: Option<Bytes>,
}

impl Sorting {
    fn new(mut req: Req, kind: Kind, mut elems: Vec<Vec<u8>>, in_script: bool) -> Sorting {
        let (mut dontsort, mut alpha, mut by) = (req.dontsort, req.alpha, req.by.take());
        // A set left unsorted would store (or give a script) its internal
        // order: Redis sorts it as strings instead.
        if dontsort && kind == Kind::Set && (req.store.is_some() || in_script) {
            dontsort = false;
            alpha = true;
            by = None;
        }
        let len = elems.len() as i64;
        let mut start = req.limit.0.max(0).min(len);
        let count = req.limit.1.max(-1).min(len);
        let mut end = if count < 0 { len - 1 } else { start + count - 1 };
        if start >= len {
            start = len - 1;
            end = len - 2;
        }
        end = end.min(len - 1);
        if dontsort && kind != Kind::Set && req.desc {
            elems.reverse();
        }
        Sorting { req, elems, start, end, sort: !dontsort, alpha, by }
    }

    /// The keys BY reads, one per element (`None` when the sort does not
    /// read any).
    fn by_keys(&self) -> Option<Vec<Want>> {
        let by = self.by.as_ref().filter(|_| self.sort)?;
        Some(self.elems.iter().map(|e| pattern_key(by, e)).collect())
    }

    /// Sorts, given the values `by_keys` named (in its order, `None` where
    /// it named nothing or the key was missing).
    fn sort(&mut self, by_vals: Option<Vec<Option<Vec<u8>>>>) -> CmdResult {
        if !self.sort {
            return Ok(());
        }
        let store = self.req.store.is_some();
        let elems = std::mem::take(&mut self.elems);
        let by_vals = by_vals.unwrap_or_default();
        let mut bad = false;
        let mut items: Vec<(Vec<u8>, Option<Vec<u8>>, f64)> = Vec::with_capacity(elems.len());
        for (i, e) in elems.into_iter().enumerate() {
            let byval = if self.by.is_some() { by_vals.get(i).cloned().flatten() } else { None };
            let score = if self.alpha {
                0.0
            } else {
                match if self.by.is_some() { byval.as_deref() } else { Some(&e[..]) } {
                    Some(v) => sort_score(v).unwrap_or_else(|| {
                        bad = true;
                        0.0
                    }),
                    None => 0.0,
                }
            };
            items.push((e, byval, score));
        }
        if bad {
            return Err(CmdError::err("One or more scores can't be converted into double"));
        }
        let text = |a: &[u8], b: &[u8]| if store { a.cmp(b) } else { collate(a, b) };
        let (alpha, by, desc) = (self.alpha, self.by.is_some(), self.req.desc);
        items.sort_by(|a, b| {
            let o = if !alpha {
                a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0))
            } else if by {
                match (&a.1, &b.1) {
                    (Some(x), Some(y)) => text(x, y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            } else {
                text(&a.0, &b.0)
            };
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        self.elems = items.into_iter().map(|(e, _, _)| e).collect();
        Ok(())
    }

    fn rows(&self) -> &[Vec<u8>] {
        if self.end < self.start {
            &[]
        } else {
            &self.elems[self.start as usize..=self.end as usize]
        }
    }

    /// What each GET of each returned row reads, row by row.
    fn get_keys(&self) -> Vec<Want> {
        self.rows().iter().flat_map(|e| self.req.gets.iter().map(move |g| pattern_key(g, e))).collect()
    }

    /// The result: the rows, or their GET values (`None`: missing).
    fn result(&self, get_vals: Vec<Option<Vec<u8>>>) -> Vec<Option<Vec<u8>>> {
        if self.req.gets.is_empty() {
            self.rows().iter().map(|e| Some(e.clone())).collect()
        } else {
            get_vals
        }
    }
}

/// What each of `wants` gives: `#` the element of its row (`rows`, with
/// `per_row` wants each), a key the next of `found` (the lookups of
/// `keys_of(wants)`, in order), a pattern without `*` nothing.
fn resolve(wants: &[Want], rows: &[Vec<u8>], per_row: usize, mut found: impl Iterator<Item = Option<Vec<u8>>>) -> Vec<Option<Vec<u8>>> {
    wants
        .iter()
        .enumerate()
        .map(|(i, w)| match w {
            Want::Elem => rows.get(i / per_row.max(1)).cloned(),
            Want::Key(_) => found.next().flatten(),
            Want::Nothing => None,
        })
        .collect()
}

fn keys_of(wants: &[Want]) -> Vec<PatKey> {
    wants
        .iter()
        .filter_map(|w| match w {
            Want::Key(k) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

/// Replies the result's rows.
fn reply(rows: &[Option<Vec<u8>>], out: &mut Out) {
    out.array(rows.len());
    for r in rows {
        match r {
            Some(v) => out.bulk(v),
            None => out.nil(),
        }
    }
}

/// Stores the result as a list at `dst` (deleting `dst` when it is empty;
/// missing GET values are empty strings) and returns its length.
fn store(db: &mut Db, dst: &[u8], rows: &[Option<Vec<u8>>], shape: ListShape, now: u64) -> usize {
    if rows.is_empty() {
        db.remove(dst, now);
    } else {
        let mut list = ListValue::new(shape);
        for r in rows {
            list.push(false, r.as_deref().unwrap_or_default());
        }
        db.set(dst, Value::List(Box::new(list)), false, now);
    }
    rows.len()
}

/// The whole SORT as one job on the shard that holds every key it reads
/// and writes.
fn sort_local(sh: &mut Shard, db: usize, req: Req, in_script: bool, resp3: bool) -> CmdResult<Vec<u8>> {
    let now = now_ms();
    let shape = sh.cfg.encoding.list_shape();
    let d = sh.db(db);
    let (kind, elems) = load(d, &req.key, now)?;
    let mut s = Sorting::new(req, kind, elems, in_script);
    let by_vals = s.by_keys().map(|w| lookup_all(d, &keys_of(&w), now).map(|found| resolve(&w, &s.elems, 1, found.into_iter())));
    let by_vals = by_vals.transpose()?;
    s.sort(by_vals)?;
    let w = s.get_keys();
    let found = lookup_all(d, &keys_of(&w), now)?;
    let got = resolve(&w, s.rows(), s.req.gets.len(), found.into_iter());
    let rows = s.result(got);
    let mut out = Out::new(resp3);
    match &s.req.store {
        Some(dst) => out.int(store(d, dst, &rows, shape, now) as i64),
        None => reply(&rows, &mut out),
    }
    Ok(out.buf)
}

/// The shards whose keys a pattern may form (`None`: any shard).
fn pattern_shards(cx: &mut dyn Coord, p: &[u8]) -> Option<Vec<usize>> {
    if p == b"#" || !p.contains(&b'*') {
        return Some(Vec::new());
    }
    let n = cx.engine().nshards();
    pattern_slot(p).map(|slot| vec![slot as usize % n])
}

/// Looks `keys` up on their shards (held by the caller), in order.
async fn lookup_spread(cx: &mut dyn Coord, db: usize, keys: Vec<PatKey>) -> CmdResult<Vec<Option<Vec<u8>>>> {
    let n = cx.engine().nshards();
    let mut by_shard: Vec<Vec<(usize, PatKey)>> = vec![Vec::new(); n];
    let total = keys.len();
    for (i, k) in keys.into_iter().enumerate() {
        let s = cx.shard_of(&k.0);
        by_shard[s].push((i, k));
    }
    let mut found = vec![None; total];
    let mut bytes = 0;
    for (s, part) in by_shard.into_iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let (idx, keys): (Vec<usize>, Vec<PatKey>) = part.into_iter().unzip();
        let got = cx.run_on(s, move |sh| lookup_all(sh.db(db), &keys, now_ms())).await?;
        for (i, v) in idx.into_iter().zip(got) {
            tally_reply(&mut bytes, v.as_ref().map_or(0, Vec::len))?;
            found[i] = v;
        }
    }
    Ok(found)
}

/// SORT / SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA] [STORE destination].
pub async fn sort(cx: &mut dyn Coord, args: &[Bytes], ro: bool) -> CmdResult {
    let cluster = cx.engine().cluster.is_some();
    let spec = &COMMANDS[usize::from(ro)];
    let acl_full = cx.acl_user().is_none_or(|u| u.unrestricted() || super::acl::check::reads_every_key(&u, spec, args));
    let req = parse(args, ro, cluster, acl_full)?;
    if cluster && req.store.as_ref().is_some_and(|d| key_slot(d) != key_slot(&req.key)) {
        return Err(CmdError::Other("CROSSSLOT Keys in request don't hash to the same slot".into()));
    }
    let in_script = cx.session().is_none();
    let (db, resp3) = (cx.db(), cx.out().resp3);
    let home = cx.shard_of(&req.key);
    let mut shards = vec![home];
    if let Some(d) = &req.store {
        shards.push(cx.shard_of(d));
    }
    let patterns: Vec<Bytes> = req.by.iter().filter(|_| !req.dontsort).chain(req.gets.iter()).cloned().collect();
    for p in &patterns {
        match pattern_shards(cx, p) {
            Some(s) => shards.extend(s),
            None => shards.extend(0..cx.engine().nshards()),
        }
    }
    shards.sort_unstable();
    shards.dedup();
    if shards == [home] {
        let reply = cx.run_on(home, move |sh| sort_local(sh, db, req, in_script, resp3)).await?;
        cx.out().buf.extend_from_slice(&reply);
        return Ok(());
    }
    // Pattern keys or the destination on other shards: hold them all and
    // read step by step.
    cx.lock(&shards).await;
    let key = req.key.clone();
    let (kind, elems) = cx.run_on(home, move |sh| load(sh.db(db), &key, now_ms())).await?;
    let mut s = Sorting::new(req, kind, elems, in_script);
    let by_vals = match s.by_keys() {
        Some(w) => {
            let found = lookup_spread(cx, db, keys_of(&w)).await?;
            Some(resolve(&w, &s.elems, 1, found.into_iter()))
        }
        None => None,
    };
    s.sort(by_vals)?;
    let w = s.get_keys();
    let found = lookup_spread(cx, db, keys_of(&w)).await?;
    let got = resolve(&w, s.rows(), s.req.gets.len(), found.into_iter());
    let rows = s.result(got);
    match s.req.store.clone() {
        None => reply(&rows, cx.out()),
        Some(dst) => {
            let shard = cx.shard_of(&dst);
            let n = cx
                .run_on(shard, move |sh| {
                    let shape = sh.cfg.encoding.list_shape();
                    store(sh.db(db), &dst, &rows, shape, now_ms())
                })
                .await;
            cx.out().int(n as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_slots_follow_redis() {
        assert_eq!(pattern_slot(b"w_*"), None);
        assert_eq!(pattern_slot(b"{t}w_*"), Some(key_slot(b"{t}")));
        assert_eq!(pattern_slot(b"{}*"), None);
        assert_eq!(pattern_slot(b"fixed"), Some(key_slot(b"fixed")));
        assert_eq!(pattern_slot(b"a\\{t}"), None);
    }

    #[test]
    fn pattern_keys() {
        let k = |p: &[u8], e: &[u8]| match pattern_key(p, e) {
            Want::Key(k) => Some(k),
            _ => None,
        };
        assert_eq!(k(b"w_*", b"1"), Some((b"w_1".to_vec(), None)));
        assert_eq!(k(b"h_*->f", b"1"), Some((b"h_1".to_vec(), Some(b"f".to_vec()))));
        assert_eq!(k(b"h_*->", b"1"), Some((b"h_1->".to_vec(), None)));
        assert_eq!(k(b"a->b*", b"1"), Some((b"a->b1".to_vec(), None)));
        assert_eq!(k(b"nostar", b"1"), None);
        assert!(matches!(pattern_key(b"#", b"1"), Want::Elem));
    }

    #[test]
    fn scores_read_as_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"1\0junk"), Some(1.0));
        assert_eq!(sort_score(b"1 "), None);
        assert_eq!(sort_score(b"  "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
    }
}
