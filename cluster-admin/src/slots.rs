//! Slot lists: parsing `0-99,250` and printing ranges back.

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

/// Number of slots in the ranges.
pub fn count(ranges: &[SlotRange]) -> u32 {
    ranges.iter().map(|r| r.last - r.first + 1).sum()
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
}
