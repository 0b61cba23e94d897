//! Geospatial commands on sorted sets, as Redis stores them: a member's
//! score is the 52-bit interleaved geohash of its position (latitude range
//! ±85.05112878, longitude ±180). GEOADD, GEOPOS, GEODIST, GEOHASH,
//! GEOSEARCH and the read-only GEORADIUS forms run on the key's shard;
//! GEOSEARCHSTORE and GEORADIUS[BYMEMBER] (whose STORE / STOREDIST may name
//! a key on another shard) search on the source's shard and store on the
//! destination's, holding both. Coordinates, distances and geohash strings
//! are computed and printed as Redis does; arguments are checked in the
//! order of Redis's georadiusGeneric.

use bytes::Bytes;

use super::notify::Notify;
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::geohash::{decode, deg_rad, encode, search_ranges, EARTH_RADIUS, LAT_MAX};
use crate::types::zset::{Outcome, ScoreRange, ZSet};
use crate::util::{eq_ic, now_ms, parse_f64, parse_i64};

const G: &str = "geo";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "geoadd",
        -5,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "geo", "slow"],
        G,
        "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
        Exec::Shard(geoadd),
    )
    .notify(Notify::Each(ks::ZSET, "zadd"))
    .key_flags(&["RW", "update"]),
    cmd(
        "geopos",
        -2,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Returns the longitude and latitude of members from a geospatial index.",
        Exec::Shard(geopos),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "geodist",
        -4,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Returns the distance between two members of a geospatial index.",
        Exec::Shard(geodist),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "geohash",
        -2,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Returns members from a geospatial index as geohash strings.",
        Exec::Shard(geohash),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "geosearch",
        -7,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Queries a geospatial index for members inside an area of a box or a circle.",
        Exec::Shard(geosearch),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        (1, 2, 1),
        &["write", "geo", "slow"],
        G,
        "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.",
        Exec::Coord(handler!(async |cx, a| geo_store(cx, a, Form::SearchStore))),
    )
    .notify(Notify::Store(ks::ZSET, "geosearchstore"))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), KeyRule::range(2, 2, 1).with_flags(&["RO", "access"])]),
    // A write command for its STORE / STOREDIST options.
    cmd(
        "georadius",
        -6,
        WRITE | DENYOOM,
        (0, 0, 0),
        &["write", "geo", "slow"],
        G,
        "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.",
        Exec::Coord(handler!(async |cx, a| geo_store(cx, a, Form::Radius))),
    )
    .notify(Notify::Store(ks::ZSET, "georadiusstore"))
    .keys(&[
        KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]),
        KeyRule::keyword("STORE", 6).with_flags(&["OW", "update"]),
        KeyRule::keyword("STOREDIST", 6).with_flags(&["OW", "update"]),
    ]),
    cmd(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        (0, 0, 0),
        &["write", "geo", "slow"],
        G,
        "Queries a geospatial index for members within a distance from a member, optionally stores the result.",
        Exec::Coord(handler!(async |cx, a| geo_store(cx, a, Form::ByMember))),
    )
    .notify(Notify::Store(ks::ZSET, "georadiusstore"))
    .keys(&[
        KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]),
        KeyRule::keyword("STORE", 5).with_flags(&["OW", "update"]),
        KeyRule::keyword("STOREDIST", 5).with_flags(&["OW", "update"]),
    ]),
    cmd(
        "georadius_ro",
        -6,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Returns members from a geospatial index that are within a distance from a coordinate.",
        Exec::Shard(georadius_ro),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "georadiusbymember_ro",
        -5,
        READONLY,
        (1, 1, 1),
        &["read", "geo", "slow"],
        G,
        "Returns members from a geospatial index that are within a distance from a member.",
        Exec::Shard(georadiusbymember_ro),
    )
    .key_flags(&["RO", "access"]),
];

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters, as Redis computes it.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

fn unit(a: &[u8]) -> CmdResult<f64> {
    match a.to_ascii_lowercase().as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(CmdError::err("unsupported unit provided. please use M, KM, FT, MI")),
    }
}

/// A coordinate as Redis prints it: 17 decimals, trailing zeros cut.
fn coord_text(x: f64) -> String {
    let s = format!("{x:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    super::find_of(db, key, now, |v| matches!(v, Value::ZSet(_)))
}

fn zset(db: &mut Db, idx: u32) -> &mut ZSet {
    match &mut db.entry_mut(idx).value {
        Value::ZSet(z) => z,
        _ => unreachable!("checked by find"),
    }
}

fn read_zset(db: &Db, idx: u32) -> &ZSet {
    match &db.entry(idx).value {
        Value::ZSet(z) => z,
        _ => unreachable!("checked by find"),
    }
}

fn geoadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "NX") {
            nx = true;
        } else if eq_ic(&args[i], "XX") {
            xx = true;
        } else if eq_ic(&args[i], "CH") {
            ch = true;
        } else {
            break;
        }
        i += 1;
    }
    if nx && xx {
        return Err(CmdError::Syntax);
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(3) {
        return Err(CmdError::Syntax);
    }
    let mut items = Vec::with_capacity(rest.len() / 3);
    for t in rest.chunks_exact(3) {
        let (lon, lat) = (parse_f64(&t[0])?, parse_f64(&t[1])?);
        let Some(bits) = encode(lon, lat, -LAT_MAX, LAT_MAX) else {
            return Err(CmdError::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
        };
        items.push((bits as f64, &t[2]));
    }
    let limits = ctx.shard.cfg.zset_limits();
    let now = ctx.now;
    let db = ctx.db();
    let idx = match find(db, &args[1], now)? {
        Some(idx) => idx,
        None if xx => {
            out.int(0);
            return Ok(());
        }
        None => db.insert_new(&args[1], Value::ZSet(Box::new(ZSet::with_hint(items.len(), 16, limits))), 0),
    };
    let z = zset(db, idx);
    let mut n = 0;
    for (score, member) in items {
        let r = z.upsert(member, limits, |cur| match cur {
            Some(_) if nx => None,
            None if xx => None,
            _ => Some(score),
        });
        match r {
            Ok(Outcome::Added) => n += 1,
            Ok(Outcome::Updated) if ch => n += 1,
            Ok(_) => {}
            Err(_) => return Err(CmdError::err("the sorted set is full")),
        }
    }
    if read_zset(db, idx).is_empty() {
        db.remove_idx(idx);
    }
    out.int(n);
    Ok(())
}

fn geopos(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match idx.and_then(|i| read_zset(db, i).score(m)) {
            Some(score) => {
                let (lon, lat) = decode(score);
                out.array(2);
                out.bulk(coord_text(lon).as_bytes());
                out.bulk(coord_text(lat).as_bytes());
            }
            None => out.nil_array(),
        }
    }
    Ok(())
}

fn geodist(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let to_m = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.nil();
        return Ok(());
    };
    let z = read_zset(db, idx);
    match (z.score(&args[2]), z.score(&args[3])) {
        (Some(a), Some(b)) => {
            let ((lon1, lat1), (lon2, lat2)) = (decode(a), decode(b));
            out.bulk(format!("{:.4}", distance(lon1, lat1, lon2, lat2) / to_m).as_bytes());
        }
        _ => out.nil(),
    }
    Ok(())
}

fn geohash(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match idx.and_then(|i| read_zset(db, i).score(m)) {
            Some(score) => {
                // Re-encoded over the standard latitude range.
                let (lon, lat) = decode(score);
                let bits = encode(lon, lat, -90.0, 90.0).unwrap_or(0);
                let text: Vec<u8> =
                    (0..11).map(|i| if i == 10 { ALPHABET[0] } else { ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize] }).collect();
                out.bulk(&text);
            }
            None => out.nil(),
        }
    }
    Ok(())
}

enum Shape {
    Radius(f64),
    Box(f64, f64),
}

/// Which search command is parsing (Redis's georadiusGeneric flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Form {
    /// GEORADIUS[_RO] key lon lat radius unit ...
    Radius,
    /// GEORADIUSBYMEMBER[_RO] key member radius unit ...
    ByMember,
    /// GEOSEARCH key ...
    Search,
    /// GEOSEARCHSTORE dst src ...
    SearchStore,
}

/// A parsed search: where from, what shape, what to reply or store.
struct Query {
    center: (f64, f64),
    shape: Shape,
    /// Meters per unit of the request.
    to_m: f64,
    /// 1 ascending, -1 descending, 0 none.
    sort: i8,
    count: usize,
    any: bool,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    store: Option<Bytes>,
    store_dist: bool,
}

/// What a search produced: a reply, or a sorted set to store (`None`: the
/// destination is deleted) and the count to reply.
enum Found {
    Reply(Vec<u8>),
    Store(Bytes, Option<Vec<(Vec<u8>, f64)>>),
}

fn lonlat(a: &[u8], b: &[u8]) -> CmdResult<(f64, f64)> {
    let (lon, lat) = (parse_f64(a)?, parse_f64(b)?);
    if encode(lon, lat, -LAT_MAX, LAT_MAX).is_none() {
        return Err(CmdError::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

fn radius(a: &[u8], u: &[u8]) -> CmdResult<(f64, f64)> {
    let r = parse_f64(a).map_err(|_| CmdError::err("need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    Ok((r, unit(u)?))
}

fn member_pos(z: &ZSet, m: &[u8]) -> CmdResult<(f64, f64)> {
    z.score(m).map(decode).ok_or_else(|| CmdError::err("could not decode requested zset member"))
}

/// Parses a search's arguments in Redis's order (georadiusGeneric): the
/// key's type first, then the fixed arguments, then the options one by
/// one, then the checks of their combination. `z` is the source set.
fn parse_query(args: &[Bytes], form: Form, nostore: bool, z: Option<&ZSet>) -> CmdResult<Option<Query>> {
    let search = matches!(form, Form::Search | Form::SearchStore);
    let mut q = Query {
        center: (0.0, 0.0),
        shape: Shape::Radius(0.0),
        to_m: 1.0,
        sort: 0,
        count: 0,
        any: false,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        store: None,
        store_dist: false,
    };
    let base = match form {
        Form::Radius => {
            q.center = lonlat(&args[2], &args[3])?;
            let (r, to_m) = radius(&args[4], &args[5])?;
            (q.shape, q.to_m) = (Shape::Radius(r * to_m), to_m);
            6
        }
        Form::ByMember => {
            if let Some(z) = z {
                q.center = member_pos(z, &args[2])?;
                let (r, to_m) = radius(&args[3], &args[4])?;
                (q.shape, q.to_m) = (Shape::Radius(r * to_m), to_m);
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => {
            q.store = Some(args[1].clone());
            3
        }
    };
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let more = rest.len() - i - 1;
        if eq_ic(a, "WITHDIST") {
            q.with_dist = true;
        } else if eq_ic(a, "WITHHASH") {
            q.with_hash = true;
        } else if eq_ic(a, "WITHCOORD") {
            q.with_coord = true;
        } else if eq_ic(a, "ANY") {
            q.any = true;
        } else if eq_ic(a, "ASC") {
            q.sort = 1;
        } else if eq_ic(a, "DESC") {
            q.sort = -1;
        } else if eq_ic(a, "COUNT") && more >= 1 {
            let c = parse_i64(&rest[i + 1])?;
            if c <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            q.count = c as usize;
            i += 1;
        } else if (eq_ic(a, "STORE") || eq_ic(a, "STOREDIST")) && more >= 1 && !nostore && !search {
            q.store = Some(rest[i + 1].clone());
            q.store_dist = eq_ic(a, "STOREDIST");
            i += 1;
        } else if eq_ic(a, "STOREDIST") && form == Form::SearchStore {
            q.store_dist = true;
        } else if eq_ic(a, "FROMMEMBER") && more >= 1 && search && !from_loc {
            if let Some(z) = z {
                q.center = member_pos(z, &rest[i + 1])?;
            }
            from_member = true;
            i += 1;
        } else if eq_ic(a, "FROMLONLAT") && more >= 2 && search && !from_member {
            q.center = lonlat(&rest[i + 1], &rest[i + 2])?;
            from_loc = true;
            i += 2;
        } else if eq_ic(a, "BYRADIUS") && more >= 2 && search && !by_box {
            let (r, to_m) = radius(&rest[i + 1], &rest[i + 2])?;
            (q.shape, q.to_m) = (Shape::Radius(r * to_m), to_m);
            by_radius = true;
            i += 2;
        } else if eq_ic(a, "BYBOX") && more >= 3 && search && !by_radius {
            let w = parse_f64(&rest[i + 1]).map_err(|_| CmdError::err("need numeric width"))?;
            let h = parse_f64(&rest[i + 2]).map_err(|_| CmdError::err("need numeric height"))?;
            if w < 0.0 || h < 0.0 {
                return Err(CmdError::err("height or width cannot be negative"));
            }
            let to_m = unit(&rest[i + 3])?;
            (q.shape, q.to_m) = (Shape::Box(w * to_m, h * to_m), to_m);
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        let what = if form == Form::SearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(CmdError::err(format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if search && !(from_member || from_loc) {
        return Err(CmdError::err(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if search && !(by_radius || by_box) {
        return Err(CmdError::err(format!("exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    Ok(z.map(|_| q))
}

/// The members of `z` inside the query's shape, as (member, distance in
/// meters, score), in the order the query asks for. Without an order, in
/// redis-server's: the cells around the center one sorted-set range at a
/// time (`geohash::search_ranges`), each in score order; with ANY, the
/// first COUNT found that way.
fn search(z: &ZSet, q: &Query) -> Vec<(Vec<u8>, f64, f64)> {
    let (clon, clat) = q.center;
    // Half width and height, and the distance to the farthest corner.
    let (half_w, half_h, radius) = match q.shape {
        Shape::Radius(r) => (r, r, r),
        Shape::Box(w, h) => {
            let (hw, hh) = (w / 2.0, h / 2.0);
            (hw, hh, (hw * hw + hh * hh).sqrt())
        }
    };
    let enough = |hits: &Vec<(Vec<u8>, f64, f64)>| q.any && !hits.is_empty() && hits.len() >= q.count;
    let mut hits: Vec<(Vec<u8>, f64, f64)> = Vec::new();
    for (min, max) in search_ranges(clon, clat, radius, half_w, half_h) {
        if enough(&hits) {
            break;
        }
        let (start, end) = z.score_ranks(&ScoreRange { min, min_ex: false, max, max_ex: true });
        z.for_range(start, end, false, |m, score| {
            if enough(&hits) {
                return;
            }
            let (lon, lat) = decode(score);
            let d = match q.shape {
                Shape::Radius(r) => {
                    let d = distance(clon, clat, lon, lat);
                    (d <= r).then_some(d)
                }
                Shape::Box(..) => {
                    if lat_distance(lat, clat) > half_h || distance(lon, lat, clon, lat) > half_w {
                        None
                    } else {
                        Some(distance(clon, clat, lon, lat))
                    }
                }
            };
            if let Some(d) = d {
                hits.push((m.to_vec(), d, score));
            }
        });
    }
    let sort = if q.count > 0 && q.sort == 0 && !q.any { 1 } else { q.sort };
    if sort != 0 {
        hits.sort_by(|a, b| a.1.total_cmp(&b.1));
        if sort < 0 {
            hits.reverse();
        }
    }
    if q.count > 0 {
        hits.truncate(q.count);
    }
    hits
}

/// Any search command, on the source key's shard: the reply, or what to
/// store.
fn geo_generic(db: &mut Db, args: &[Bytes], form: Form, nostore: bool, now: u64, resp3: bool) -> CmdResult<Found> {
    let src = if form == Form::SearchStore { &args[2] } else { &args[1] };
    let idx = find(db, src, now)?;
    let z = idx.map(|i| read_zset(db, i));
    let mut out = Out::new(resp3);
    let Some(q) = parse_query(args, form, nostore, z)? else {
        // No source: the destination is deleted, or the reply is empty.
        if let Some(dst) = store_key(args, form, nostore) {
            return Ok(Found::Store(dst, None));
        }
        out.array(0);
        return Ok(Found::Reply(out.buf));
    };
    let hits = search(z.expect("parse_query returns a query only for a source"), &q);
    if let Some(dst) = q.store {
        let mut items: Vec<(Vec<u8>, f64)> =
            hits.into_iter().map(|(m, d, score)| (m, if q.store_dist { d / q.to_m } else { score })).collect();
        items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        return Ok(Found::Store(dst, (!items.is_empty()).then_some(items)));
    }
    let extra = q.with_dist as usize + q.with_hash as usize + q.with_coord as usize;
    out.array(hits.len());
    for (m, d, score) in hits {
        if extra == 0 {
            out.bulk(&m);
            continue;
        }
        out.array(1 + extra);
        out.bulk(&m);
        if q.with_dist {
            out.bulk(format!("{:.4}", d / q.to_m).as_bytes());
        }
        if q.with_hash {
            out.int(score as i64);
        }
        if q.with_coord {
            let (lon, lat) = decode(score);
            out.array(2);
            out.bulk(coord_text(lon).as_bytes());
            out.bulk(coord_text(lat).as_bytes());
        }
    }
    Ok(Found::Reply(out.buf))
}

/// The destination a search's arguments name (the last STORE/STOREDIST
/// key, as the parse keeps it), for a search with no source to parse
/// against, and every key one may name (to hold their shards).
fn store_key(args: &[Bytes], form: Form, nostore: bool) -> Option<Bytes> {
    store_candidates(args, form, nostore).pop()
}

fn store_candidates(args: &[Bytes], form: Form, nostore: bool) -> Vec<Bytes> {
    match form {
        Form::SearchStore => vec![args[1].clone()],
        Form::Search => Vec::new(),
        _ if nostore => Vec::new(),
        _ => {
            let base = if form == Form::Radius { 6 } else { 5 };
            let rest = args.get(base..).unwrap_or_default();
            let mut keys = Vec::new();
            let mut i = 0;
            while i + 1 < rest.len() {
                if eq_ic(&rest[i], "STORE") || eq_ic(&rest[i], "STOREDIST") {
                    keys.push(rest[i + 1].clone());
                    i += 2;
                } else {
                    i += 1;
                }
            }
            keys
        }
    }
}

/// Replaces `dst` with the sorted set of `items` (deleting it for `None`);
/// returns the count to reply.
fn store_found(
    db: &mut Db,
    dst: &[u8],
    items: Option<Vec<(Vec<u8>, f64)>>,
    limits: crate::types::zset::ZLimits,
    now: u64,
) -> CmdResult<i64> {
    db.remove(dst, now);
    let Some(items) = items else { return Ok(0) };
    let z = ZSet::from_sorted(&items, limits)?;
    let n = z.len() as i64;
    db.insert_new(dst, Value::ZSet(Box::new(z)), 0);
    Ok(n)
}

fn read_only(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, form: Form) -> CmdResult {
    let now = ctx.now;
    match geo_generic(ctx.db(), args, form, true, now, out.resp3)? {
        Found::Reply(b) => out.buf.extend_from_slice(&b),
        Found::Store(..) => unreachable!("read-only forms do not store"),
    }
    Ok(())
}

fn geosearch(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    read_only(ctx, args, out, Form::Search)
}

/// GEORADIUS_RO key lon lat radius unit [options].
fn georadius_ro(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    read_only(ctx, args, out, Form::Radius)
}

/// GEORADIUSBYMEMBER_RO key member radius unit [options].
fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    read_only(ctx, args, out, Form::ByMember)
}

/// GEORADIUS, GEORADIUSBYMEMBER (with STORE / STOREDIST) and
/// GEOSEARCHSTORE: the search runs on the source's shard; a destination on
/// another shard is written in a second step, both shards held meanwhile.
async fn geo_store(cx: &mut dyn Coord, args: &[Bytes], form: Form) -> CmdResult {
    let (db, resp3) = (cx.db(), cx.out().resp3);
    let src = if form == Form::SearchStore { args[2].clone() } else { args[1].clone() };
    let home = cx.shard_of(&src);
    let mut shards: Vec<usize> = store_candidates(args, form, false).iter().map(|k| cx.shard_of(k)).collect();
    shards.push(home);
    shards.sort_unstable();
    shards.dedup();
    let a: Vec<Bytes> = args.to_vec();
    if shards == [home] {
        let reply = cx
            .run_on(home, move |sh| -> CmdResult<Vec<u8>> {
                let (now, limits) = (now_ms(), sh.cfg.zset_limits());
                let d = sh.db(db);
                match geo_generic(d, &a, form, false, now, resp3)? {
                    Found::Reply(b) => Ok(b),
                    Found::Store(dst, items) => {
                        let mut out = Out::new(resp3);
                        out.int(store_found(d, &dst, items, limits, now)?);
                        Ok(out.buf)
                    }
                }
            })
            .await?;
        cx.out().buf.extend_from_slice(&reply);
        return Ok(());
    }
    cx.lock(&shards).await;
    let found = cx.run_on(home, move |sh| geo_generic(sh.db(db), &a, form, false, now_ms(), resp3)).await?;
    match found {
        Found::Reply(b) => cx.out().buf.extend_from_slice(&b),
        Found::Store(dst, items) => {
            let shard = cx.shard_of(&dst);
            let n = cx
                .run_on(shard, move |sh| {
                    let limits = sh.cfg.zset_limits();
                    store_found(sh.db(db), &dst, items, limits, now_ms())
                })
                .await?;
            cx.out().int(n);
        }
    }
    Ok(())
}
