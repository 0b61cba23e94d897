//! Slot lists: parsing `0-99,250`, printing ranges back, and converting
//! between ranges and lists of single slots.

use damselfly_proto::admin::SlotRange;

use crate::Res;

/// Parses `0-99,250,300-310` into ranges.
pub fn parse_slots(s: &str) -> Res<Vec<SlotRange>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |x: &str| x.trim().parse::<u32>().ok().filter(|&n| n < 16384);
        match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a <= b => out.push(SlotRange { first: a, last: b }),
            _ => return Err(format!("bad slot range '{part}': use slots 0-16383 like 0-99,250")),
        }
    }
    if out.is_empty() {
        return Err("no slots given: use e.g. 0-99,250".into());
    }
    Ok(out)
}

pub fn ranges_text(ranges: &[SlotRange]) -> String {
    let parts: Vec<String> =
        ranges.iter().map(|r| if r.first == r.last { r.first.to_string() } else { format!("{}-{}", r.first, r.last) }).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// The number of hash slots of a cluster.
pub const SLOTS: u32 = 16384;

/// Number of slots in the ranges.
pub fn count(ranges: &[SlotRange]) -> u32 {
    ranges.iter().map(|r| r.last - r.first + 1).sum()
}

/// Every slot of the ranges, in the ranges' order.
pub fn expand(ranges: &[SlotRange]) -> Vec<u32> {
    ranges.iter().flat_map(|r| r.first..=r.last).collect()
}

/// The fewest ranges covering `slots`, which must be sorted and distinct.
pub fn compress(slots: &[u32]) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some(r) if r.last + 1 == s => r.last = s,
            _ => out.push(SlotRange { first: s, last: s }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_lists() {
        let r = parse_slots("0-99, 250").unwrap();
        assert_eq!((r[0].first, r[0].last, r[1].first, r[1].last), (0, 99, 250, 250));
        assert!(parse_slots("5-1").is_err());
        assert!(parse_slots("16384").is_err());
        assert!(parse_slots("").is_err());
        assert!(parse_slots("a-5").is_err());
        assert!(parse_slots("1-2-3").is_err());
    }

    #[test]
    fn ranges_round_trip() {
        let r = parse_slots("0-2,3,7,9-10").unwrap();
        assert_eq!(count(&r), 7);
        assert_eq!(expand(&r), vec![0, 1, 2, 3, 7, 9, 10]);
        assert_eq!(ranges_text(&compress(&expand(&r))), "0-3,7,9-10");
        assert_eq!(ranges_text(&[]), "-");
    }
}
