//! Geospatial commands on sorted sets, as Redis stores them: a member's
//! score is the 52-bit interleaved geohash of its position (latitude range
//! ±85.05112878, longitude ±180). GEOADD, GEOPOS, GEODIST, GEOHASH,
//! GEOSEARCH and the read-only GEORADIUS forms run on the key's shard. Coordinates, distances and geohash
//! strings are computed and printed as Redis does.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Ctx, Exec, KeyRule};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::zset::{Outcome, ZSet};
use crate::util::{eq_ic, parse_f64, parse_i64};

const G: &str = "geo";
const LAT_MAX: f64 = 85.05112878;
const STEP: u32 = 26;
const EARTH_RADIUS: f64 = 6372797.560856;

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "geoadd",
        -5,
        WRITE | DENYOOM,
        (1, 1, 1),
        &["write", "geo", "slow"],
        G,
        "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
        Exec::Shard(geoadd),
    )
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
    // STORE and STOREDIST are refused, but their keys are declared as
    // Redis declares them, for clients that route by the key specs.
    cmd(
        "georadius",
        -6,
        WRITE | DENYOOM,
        (0, 0, 0),
        &["write", "geo", "slow"],
        G,
        "Queries a geospatial index for members within a distance from a coordinate (STORE is not supported).",
        Exec::Shard(georadius),
    )
    .keys(&[
        KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]),
        KeyRule::keyword("STORE", 6).with_flags(&["OW", "update"]),
        KeyRule::keyword("STOREDIST", 6).with_flags(&["OW", "update"]),
    ]),
    // STORE and STOREDIST are refused, but their keys are declared as
    // Redis declares them, for clients that route by the key specs.
    cmd(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        (0, 0, 0),
        &["write", "geo", "slow"],
        G,
        "Queries a geospatial index for members within a distance from a member (STORE is not supported).",
        Exec::Shard(georadiusbymember),
    )
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
        Exec::Shard(georadius),
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
        Exec::Shard(georadiusbymember),
    )
    .key_flags(&["RO", "access"]),
];

fn interleave(lat: u32, lon: u32) -> u64 {
    let mut out = 0u64;
    for i in 0..32 {
        out |= ((lat as u64 >> i) & 1) << (2 * i);
        out |= ((lon as u64 >> i) & 1) << (2 * i + 1);
    }
    out
}

fn deinterleave(bits: u64) -> (u32, u32) {
    let (mut lat, mut lon) = (0u32, 0u32);
    for i in 0..32 {
        lat |= (((bits >> (2 * i)) & 1) as u32) << i;
        lon |= (((bits >> (2 * i + 1)) & 1) as u32) << i;
    }
    (lat, lon)
}

/// The geohash of a position over the given ranges (`None` when outside).
fn encode(lon: f64, lat: f64, lat_min: f64, lat_max: f64) -> Option<u64> {
    if !(-180.0..=180.0).contains(&lon) || !(lat_min..=lat_max).contains(&lat) {
        return None;
    }
    let scale = (1u64 << STEP) as f64;
    let lat_off = (lat - lat_min) / (lat_max - lat_min) * scale;
    let lon_off = (lon + 180.0) / 360.0 * scale;
    Some(interleave(lat_off as u32, lon_off as u32))
}

/// The center of a score's cell: (longitude, latitude).
fn decode(score: f64) -> (f64, f64) {
    let (ilat, ilon) = deinterleave(score as u64);
    let scale = (1u64 << STEP) as f64;
    let lat_min = -LAT_MAX + (ilat as f64 / scale) * (2.0 * LAT_MAX);
    let lat_max = -LAT_MAX + ((ilat as f64 + 1.0) / scale) * (2.0 * LAT_MAX);
    let lon_min = -180.0 + (ilon as f64 / scale) * 360.0;
    let lon_max = -180.0 + ((ilon as f64 + 1.0) / scale) * 360.0;
    (((lon_min + lon_max) / 2.0).clamp(-180.0, 180.0), ((lat_min + lat_max) / 2.0).clamp(-LAT_MAX, LAT_MAX))
}

fn rad(d: f64) -> f64 {
    d * std::f64::consts::PI / 180.0
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (rad(lat2) - rad(lat1)).abs()
}

/// Haversine distance in meters, as Redis computes it.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (rad(lat1), rad(lat2));
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

fn geosearch(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut center, mut from_member) = (None, None);
    let (mut shape, mut to_m) = (None, 1.0);
    let (mut sort, mut count, mut any) = (0i8, 0usize, false);
    let (mut with_coord, mut with_dist, mut with_hash) = (false, false, false);
    let mut i = 2;
    let arg = |i: usize| args.get(i).ok_or(CmdError::Syntax);
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "FROMMEMBER") {
            if center.is_some() || from_member.is_some() {
                return Err(CmdError::err("exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"));
            }
            from_member = Some(arg(i + 1)?.clone());
            i += 2;
        } else if eq_ic(a, "FROMLONLAT") {
            if center.is_some() || from_member.is_some() {
                return Err(CmdError::err("exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"));
            }
            let (lon, lat) = (parse_f64(arg(i + 1)?)?, parse_f64(arg(i + 2)?)?);
            if encode(lon, lat, -LAT_MAX, LAT_MAX).is_none() {
                return Err(CmdError::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
            }
            center = Some((lon, lat));
            i += 3;
        } else if eq_ic(a, "BYRADIUS") {
            if shape.is_some() {
                return Err(CmdError::err("exactly one of BYRADIUS and BYBOX arguments must be provided for GEOSEARCH command"));
            }
            let r = parse_f64(arg(i + 1)?).map_err(|_| CmdError::err("need numeric radius"))?;
            if r < 0.0 {
                return Err(CmdError::err("radius cannot be negative"));
            }
            to_m = unit(arg(i + 2)?)?;
            shape = Some(Shape::Radius(r * to_m));
            i += 3;
        } else if eq_ic(a, "BYBOX") {
            if shape.is_some() {
                return Err(CmdError::err("exactly one of BYRADIUS and BYBOX arguments must be provided for GEOSEARCH command"));
            }
            let (w, h) = (parse_f64(arg(i + 1)?)?, parse_f64(arg(i + 2)?)?);
            if w < 0.0 || h < 0.0 {
                return Err(CmdError::err("height or width cannot be negative"));
            }
            to_m = unit(arg(i + 3)?)?;
            shape = Some(Shape::Box(w * to_m, h * to_m));
            i += 4;
        } else if eq_ic(a, "ASC") {
            sort = 1;
            i += 1;
        } else if eq_ic(a, "DESC") {
            sort = -1;
            i += 1;
        } else if eq_ic(a, "COUNT") {
            let c = parse_i64(arg(i + 1)?)?;
            if c <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            count = c as usize;
            i += 2;
            if args.get(i).is_some_and(|a| eq_ic(a, "ANY")) {
                any = true;
                i += 1;
            }
        } else if eq_ic(a, "WITHCOORD") {
            with_coord = true;
            i += 1;
        } else if eq_ic(a, "WITHDIST") {
            with_dist = true;
            i += 1;
        } else if eq_ic(a, "WITHHASH") {
            with_hash = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if center.is_none() && from_member.is_none() {
        return Err(CmdError::err("exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"));
    }
    let Some(shape) = shape else {
        return Err(CmdError::err("exactly one of BYRADIUS and BYBOX arguments must be provided for GEOSEARCH command"));
    };
    if any && count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        if from_member.is_some() {
            return Err(CmdError::err("could not decode requested zset member"));
        }
        out.array(0);
        return Ok(());
    };
    let z = read_zset(db, idx);
    let (clon, clat) = match (center, &from_member) {
        (Some(c), _) => c,
        (None, Some(m)) => decode(z.score(m).ok_or_else(|| CmdError::err("could not decode requested zset member"))?),
        _ => unreachable!("checked above"),
    };
    let mut hits: Vec<(Vec<u8>, f64, f64)> = Vec::new();
    z.for_each(|m, score| {
        let (lon, lat) = decode(score);
        let d = match shape {
            Shape::Radius(r) => {
                let d = distance(clon, clat, lon, lat);
                (d <= r).then_some(d)
            }
            Shape::Box(w, h) => {
                if lat_distance(lat, clat) > h / 2.0 || distance(lon, lat, clon, lat) > w / 2.0 {
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
    if count > 0 && sort == 0 && !any {
        sort = 1;
    }
    if sort != 0 {
        hits.sort_by(|a, b| a.1.total_cmp(&b.1));
        if sort < 0 {
            hits.reverse();
        }
    }
    if count > 0 {
        hits.truncate(count);
    }
    let extra = with_dist as usize + with_hash as usize + with_coord as usize;
    out.array(hits.len());
    for (m, d, score) in hits {
        if extra == 0 {
            out.bulk(&m);
            continue;
        }
        out.array(1 + extra);
        out.bulk(&m);
        if with_dist {
            out.bulk(format!("{:.4}", d / to_m).as_bytes());
        }
        if with_hash {
            out.int(score as i64);
        }
        if with_coord {
            let (lon, lat) = decode(score);
            out.array(2);
            out.bulk(coord_text(lon).as_bytes());
            out.bulk(coord_text(lat).as_bytes());
        }
    }
    Ok(())
}

/// GEORADIUS_RO key lon lat radius unit [options]: GEOSEARCH FROMLONLAT.
fn georadius(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let mut a = vec![args[0].clone(), args[1].clone(), Bytes::from_static(b"FROMLONLAT"), args[2].clone(), args[3].clone()];
    a.extend([Bytes::from_static(b"BYRADIUS"), args[4].clone(), args[5].clone()]);
    a.extend(args[6..].iter().cloned());
    geosearch(ctx, &a, out)
}

/// GEORADIUSBYMEMBER_RO key member radius unit [options]: GEOSEARCH
/// FROMMEMBER.
fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let mut a = vec![args[0].clone(), args[1].clone(), Bytes::from_static(b"FROMMEMBER"), args[2].clone()];
    a.extend([Bytes::from_static(b"BYRADIUS"), args[3].clone(), args[4].clone()]);
    a.extend(args[5..].iter().cloned());
    geosearch(ctx, &a, out)
}
