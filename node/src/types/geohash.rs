//! Geohashes as Redis computes them (geohash.c, geohash_helper.c): a
//! position's 52-bit interleaved hash (the score of a GEOADD member), its
//! cell, and the cells a radius or box search looks in — the cell of the
//! center at a precision the search's size decides and its eight
//! neighbours, in Redis's order, so a search visits the members a sorted
//! set range at a time and replies in the order redis-server does.

/// Latitudes a hash can hold (Web Mercator's limit).
pub const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate of a member's hash.
pub const STEP: u32 = 26;
/// Half the Earth's circumference in Web Mercator meters.
const MERCATOR_MAX: f64 = 20037726.37;
pub const EARTH_RADIUS: f64 = 6372797.560856;

pub fn interleave(lat: u32, lon: u32) -> u64 {
    let mut out = 0u64;
    for i in 0..32 {
        out |= ((lat as u64 >> i) & 1) << (2 * i);
        out |= ((lon as u64 >> i) & 1) << (2 * i + 1);
    }
    out
}

pub fn deinterleave(bits: u64) -> (u32, u32) {
    let (mut lat, mut lon) = (0u32, 0u32);
    for i in 0..32 {
        lat |= (((bits >> (2 * i)) & 1) as u32) << i;
        lon |= (((bits >> (2 * i + 1)) & 1) as u32) << i;
    }
    (lat, lon)
}

/// The geohash of a position over the given latitude range at `STEP`
/// bits (`None` when outside).
pub fn encode(lon: f64, lat: f64, lat_min: f64, lat_max: f64) -> Option<u64> {
    encode_step(lon, lat, lat_min, lat_max, STEP)
}

fn encode_step(lon: f64, lat: f64, lat_min: f64, lat_max: f64, step: u32) -> Option<u64> {
    if !(-180.0..=180.0).contains(&lon) || !(lat_min..=lat_max).contains(&lat) {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_min) / (lat_max - lat_min) * scale;
    let lon_off = (lon + 180.0) / 360.0 * scale;
    Some(interleave(lat_off as u32, lon_off as u32))
}

/// A cell's bounds: (lat_min, lat_max, lon_min, lon_max).
fn area(bits: u64, step: u32) -> (f64, f64, f64, f64) {
    let (ilat, ilon) = deinterleave(bits);
    let scale = (1u64 << step) as f64;
    let lat = |i: f64| -LAT_MAX + (i / scale) * (2.0 * LAT_MAX);
    let lon = |i: f64| -180.0 + (i / scale) * 360.0;
    (lat(ilat as f64), lat(ilat as f64 + 1.0), lon(ilon as f64), lon(ilon as f64 + 1.0))
}

/// The center of a score's cell: (longitude, latitude).
pub fn decode(score: f64) -> (f64, f64) {
    let (lat_min, lat_max, lon_min, lon_max) = area(score as u64, STEP);
    (((lon_min + lon_max) / 2.0).clamp(-180.0, 180.0), ((lat_min + lat_max) / 2.0).clamp(-LAT_MAX, LAT_MAX))
}

/// The neighbouring cell `dx` cells east and `dy` north (wrapping).
fn moved(bits: u64, step: u32, dx: i8, dy: i8) -> u64 {
    let shift = 64 - step * 2;
    let mv = |bits: u64, d: i8, mask: u64| {
        if d == 0 {
            return bits;
        }
        let (this, other) = (bits & mask, bits & !mask);
        let zz = !mask >> shift;
        let this = if d > 0 { this.wrapping_add(zz + 1) } else { (this | zz).wrapping_sub(zz + 1) };
        (this & (mask >> shift)) | other
    };
    const LON: u64 = 0xaaaa_aaaa_aaaa_aaaa;
    const LAT: u64 = 0x5555_5555_5555_5555;
    mv(mv(bits, dx, LON), dy, LAT)
}

/// The hash precision a search of `range` meters around latitude `lat`
/// uses (Redis's geohashEstimateStepsByRadius).
fn steps_for(range: f64, lat: f64) -> u32 {
    if range == 0.0 {
        return 26;
    }
    let (mut range, mut step) = (range, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u32
}

/// The score ranges `[min, max)` a search around (`lon`, `lat`) reads, in
/// the order Redis visits them: the center's cell, then north, south,
/// east, west, north-east, north-west, south-east, south-west, leaving out
/// neighbours wholly outside the shape's bounding box and a cell equal to
/// the one visited before it. `half_w` and `half_h` are the shape's half
/// width and height in meters (the radius twice for a circle), `radius`
/// the distance from its center to its farthest corner.
pub fn search_ranges(lon: f64, lat: f64, radius: f64, half_w: f64, half_h: f64) -> Vec<(f64, f64)> {
    let lat_delta = rad_deg(half_h / EARTH_RADIUS);
    let lon_delta = |at: f64| rad_deg(half_w / EARTH_RADIUS / deg_rad(at).cos());
    let lon_delta = if lat < 0.0 { lon_delta(lat - lat_delta) } else { lon_delta(lat + lat_delta) };
    let (min_lon, max_lon, min_lat, max_lat) = (lon - lon_delta, lon + lon_delta, lat - lat_delta, lat + lat_delta);
    let cells = |step: u32| {
        let bits = encode_step(lon, lat, -LAT_MAX, LAT_MAX, step).unwrap_or(0);
        let at = |dx, dy| moved(bits, step, dx, dy);
        [bits, at(0, 1), at(0, -1), at(1, 0), at(-1, 0), at(1, 1), at(-1, 1), at(1, -1), at(-1, -1)]
    };
    let mut step = steps_for(radius, lat);
    let mut near = cells(step);
    // The neighbours must reach the bounding box, else one step coarser.
    let (north, south, east, west) = (area(near[1], step), area(near[2], step), area(near[3], step), area(near[4], step));
    if step > 1 && (north.1 < max_lat || south.0 > min_lat || east.3 < max_lon || west.2 > min_lon) {
        step -= 1;
        near = cells(step);
    }
    let mut used = [true; 9];
    if step >= 2 {
        let (a_lat_min, a_lat_max, a_lon_min, a_lon_max) = area(near[0], step);
        let mut drop = |cells: [usize; 3]| cells.iter().for_each(|&c| used[c] = false);
        if a_lat_min < min_lat {
            drop([2, 7, 8]);
        }
        if a_lat_max > max_lat {
            drop([1, 5, 6]);
        }
        if a_lon_min < min_lon {
            drop([4, 8, 6]);
        }
        if a_lon_max > max_lon {
            drop([3, 7, 5]);
        }
    }
    let shift = 52 - step * 2;
    let mut last = 0;
    let mut out = Vec::with_capacity(9);
    for (i, &bits) in near.iter().enumerate() {
        // A neighbour equal to the one visited before it is skipped (huge
        // radii wrap onto the same cells); as in Redis, not when that one
        // was the center.
        if !used[i] || (last > 0 && near[last] == bits) {
            continue;
        }
        last = i;
        out.push(((bits << shift) as f64, ((bits + 1) << shift) as f64));
    }
    out
}

/// Degrees to radians and back, as Redis writes them.
pub fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_hash() {
        let bits = encode(13.361389, 38.115556, -LAT_MAX, LAT_MAX).unwrap();
        assert_eq!(bits, 3479099956230698);
        let (lon, lat) = decode(bits as f64);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
    }

    #[test]
    fn neighbours_move_one_cell_and_wrap() {
        let step = 3;
        let c = interleave(2, 5);
        assert_eq!(deinterleave(moved(c, step, 1, 0)), (2, 6));
        assert_eq!(deinterleave(moved(c, step, -1, 1)), (3, 4));
        assert_eq!(deinterleave(moved(interleave(0, 7), step, 1, -1)), (7, 0));
    }

    #[test]
    fn a_small_search_reads_nine_cells_at_most_and_a_huge_one_fewer() {
        let small = search_ranges(13.36, 38.11, 1000.0, 1000.0, 1000.0);
        assert!(!small.is_empty() && small.len() <= 9);
        for (min, max) in &small {
            assert!(min < max);
        }
        // 5000 km around a point near the pole: coarse cells that repeat.
        let huge = search_ranges(45.0, 65.0, 5009431.0, 5009431.0, 5009431.0);
        assert!(!huge.is_empty() && huge.len() <= 9, "{huge:?}");
    }
}
