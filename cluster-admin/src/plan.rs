//! Rebalance planning: how many slots each member should own given its
//! weight, and the moves (source, target, slot ranges) that get there while
//! moving as few slots, in as few moves and ranges, as possible. Pure
//! functions of the cluster status, so the same state always gives the same
//! plan and re-running after an interruption continues where it stopped.

use std::collections::BTreeMap;

use damselfly_proto::admin::{MemberStatus, SlotRange};

use crate::slots::{compress, count, expand, SLOTS};
use crate::Res;

/// One MoveSlots call: `ranges` go from member `from` to member `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub ranges: Vec<SlotRange>,
}

impl Move {
    pub fn slot_count(&self) -> u32 {
        count(&self.ranges)
    }
}

/// The moves that bring every member to its share of the assigned slots:
/// `weights` maps node ids to weights (members not listed weigh 1; weight 0
/// empties a member). Balanced clusters get no moves.
///
/// Targets: a member's share is `assigned * weight / total weight`; it gets
/// that rounded down, and the slots left over by rounding go, one each, to
/// members with a fractional share, first those already owning more than
/// their rounded-down share, then those below it (see [`targets`]). So a
/// member within one slot of its share never gives or takes slots.
///
/// Moves: members above target give, members below take. Givers and takers
/// are paired to need as few moves as possible: a giver and taker whose
/// amounts are equal first, otherwise the largest giver with the largest
/// taker. A giver gives whole ranges of its own when one has exactly the
/// right size, else a piece of its smallest range that is large enough (cut
/// at the end next to a taker's slots), else its largest range and repeats;
/// when it gives to several takers, the lower slots go to the taker whose
/// slots are lower, so that takers tend to get slots next to their own.
pub fn plan(members: &[MemberStatus], weights: &BTreeMap<String, u32>) -> Res<Vec<Move>> {
    if let Some(id) = weights.keys().find(|id| !members.iter().any(|m| &m.node_id == *id)) {
        return Err(format!("weight given for '{id}', which is not a member"));
    }
    let mut members: Vec<&MemberStatus> = members.iter().collect();
    members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let owner = owners(&members)?;
    let counts: Vec<u32> = members.iter().map(|m| count(&m.ranges)).collect();
    let w: Vec<u32> = members.iter().map(|m| weights.get(&m.node_id).copied().unwrap_or(1)).collect();
    let target = targets(&counts, &w)?;

    let mut surplus: Vec<u32> = counts.iter().zip(&target).map(|(c, t)| c.saturating_sub(*t)).collect();
    let mut deficit: Vec<u32> = counts.iter().zip(&target).map(|(c, t)| t.saturating_sub(*c)).collect();
    // (giver, taker, slots), found by pairing.
    let mut pairs: Vec<(usize, usize, u32)> = Vec::new();
    loop {
        let exact = (0..members.len()).filter(|&g| surplus[g] > 0).find_map(|g| {
            let t = (0..members.len()).find(|&t| deficit[t] == surplus[g])?;
            Some((g, t))
        });
        // Largest first; among equals the lowest node id (max_by_key keeps the last maximum).
        let largest = |v: &[u32]| (0..v.len()).rev().filter(|&i| v[i] > 0).max_by_key(|&i| v[i]);
        let (g, t) = match exact {
            Some(p) => p,
            None => match (largest(&surplus), largest(&deficit)) {
                (Some(g), Some(t)) => (g, t),
                _ => break,
            },
        };
        let n = surplus[g].min(deficit[t]);
        surplus[g] -= n;
        deficit[t] -= n;
        pairs.push((g, t, n));
    }

    let mut moves = Vec::new();
    for (g, m) in members.iter().enumerate() {
        let mut mine: Vec<(usize, u32)> = pairs.iter().filter(|p| p.0 == g).map(|p| (p.1, p.2)).collect();
        if mine.is_empty() {
            continue;
        }
        let takers: Vec<usize> = mine.iter().map(|p| p.0).collect();
        let total: u32 = mine.iter().map(|p| p.1).sum();
        let given = pick(&m.ranges, total, |s| owner.get(s as usize).copied().flatten().is_some_and(|o| takers.contains(&o)));
        // Lower slots to the taker whose own slots start lower (empty takers last).
        mine.sort_by_key(|&(t, _)| (members[t].ranges.iter().map(|r| r.first).min().unwrap_or(SLOTS), t));
        let mut rest = given.as_slice();
        for (t, n) in mine {
            let (chunk, tail) = rest.split_at(n as usize);
            rest = tail;
            moves.push(Move { from: m.node_id.clone(), to: members[t].node_id.clone(), ranges: compress(chunk) });
        }
    }
    moves.sort_by_key(|mv| mv.ranges.first().map_or(SLOTS, |r| r.first));
    Ok(moves)
}

/// The moves that empty `node`: the moves of `plan` with `node` weighing 0
/// that start at `node`, so its slots spread over the other members while
/// slots already elsewhere stay where they are.
pub fn drain(members: &[MemberStatus], node: &str) -> Res<Vec<Move>> {
    let weights = BTreeMap::from([(node.to_string(), 0)]);
    Ok(plan(members, &weights)?.into_iter().filter(|m| m.from == node).collect())
}

/// Parses `NODE=W` (W a whole number) into the node as given and the weight.
pub fn parse_weight(s: &str) -> Res<(String, u32)> {
    let bad = || format!("bad weight '{s}': use NODE=W, NODE a node id or client address and W a whole number (0 empties the node)");
    let (node, w) = s.rsplit_once('=').ok_or_else(bad)?;
    let w = w.trim().parse::<u32>().map_err(|_| bad())?;
    if node.trim().is_empty() {
        return Err(bad());
    }
    Ok((node.trim().to_string(), w))
}

/// The owner (index into `members`) of every slot; refuses overlapping ranges.
fn owners(members: &[&MemberStatus]) -> Res<Vec<Option<usize>>> {
    let mut owner = vec![None; SLOTS as usize];
    for (i, m) in members.iter().enumerate() {
        for r in &m.ranges {
            if r.first > r.last || r.last >= SLOTS {
                return Err(format!("member {} reports a bad slot range {}-{}", m.node_id, r.first, r.last));
            }
            for s in r.first..=r.last {
                if let Some(o) = owner[s as usize].replace(i) {
                    return Err(format!("slot {s} is reported for both {} and {}", members[o].node_id, m.node_id));
                }
            }
        }
    }
    Ok(owner)
}

/// Target slot counts: shares of the slots owned in total, proportional to
/// `weights`, rounded as described at [`plan`].
pub fn targets(counts: &[u32], weights: &[u32]) -> Res<Vec<u32>> {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let weight: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if weight == 0 {
        return Err("every member weighs 0: no member would own the slots".into());
    }
    let share = |i: usize| total * u64::from(weights[i]);
    // Each floor fits in u32 as it is at most `total`.
    let mut target: Vec<u32> = (0..counts.len()).map(|i| (share(i) / weight) as u32).collect();
    let left = total - target.iter().map(|&t| u64::from(t)).sum::<u64>();
    let mut fractional: Vec<usize> = (0..counts.len()).filter(|&i| share(i) % weight > 0).collect();
    // Where an extra slot saves the most: a member one slot above its floor
    // then has nothing to give (a slot and a move saved), one further above
    // gives one slot less, one below its floor takes one more slot in a move
    // it needs anyway; last, a member at its floor would take a single slot.
    let rank = |i: usize| match counts[i].cmp(&target[i]) {
        std::cmp::Ordering::Greater if counts[i] == target[i] + 1 => 0,
        std::cmp::Ordering::Greater => 1,
        std::cmp::Ordering::Less => 2,
        std::cmp::Ordering::Equal => 3,
    };
    fractional.sort_by_key(|&i| (rank(i), std::cmp::Reverse(share(i) % weight), i));
    for &i in fractional.iter().take(left as usize) {
        target[i] += 1;
    }
    Ok(target)
}

/// `n` slots of `ranges` (which hold at least `n`), sorted: a range of
/// exactly the size still needed, else a piece of the smallest larger range
/// (at the end where `near` holds for the neighbouring slot, else at the
/// top), else the largest range whole and again.
fn pick(ranges: &[SlotRange], n: u32, near: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut left: Vec<SlotRange> = ranges.to_vec();
    left.sort_by_key(|r| r.first);
    let len = |r: &SlotRange| r.last - r.first + 1;
    let mut taken: Vec<SlotRange> = Vec::new();
    let mut need = n;
    while need > 0 {
        if let Some(i) = left.iter().position(|r| len(r) == need) {
            taken.push(left.remove(i));
            break;
        }
        let larger = left.iter().enumerate().filter(|(_, r)| len(r) > need).min_by_key(|(_, r)| len(r)).map(|(i, _)| i);
        if let Some(i) = larger {
            let r = &left[i];
            let low_end = r.first > 0 && near(r.first - 1) && !(r.last + 1 < SLOTS && near(r.last + 1));
            taken.push(if low_end {
                SlotRange { first: r.first, last: r.first + need - 1 }
            } else {
                SlotRange { first: r.last + 1 - need, last: r.last }
            });
            break;
        }
        // max_by_key keeps the last maximum: search from the top so the lowest wins.
        let Some(i) = (0..left.len()).rev().max_by_key(|&i| len(&left[i])) else { break };
        need -= len(&left[i]);
        taken.push(left.remove(i));
    }
    let mut slots = expand(&taken);
    slots.sort_unstable();
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::parse_slots;

    fn member(id: &str, slots: &str) -> MemberStatus {
        let ranges = if slots.is_empty() { vec![] } else { parse_slots(slots).unwrap() };
        MemberStatus { node_id: id.into(), slot_count: count(&ranges), ranges, ..Default::default() }
    }

    fn cluster(layout: &[(&str, &str)]) -> Vec<MemberStatus> {
        layout.iter().map(|(id, s)| member(id, s)).collect()
    }

    fn weights(w: &[(&str, u32)]) -> BTreeMap<String, u32> {
        w.iter().map(|(id, w)| (id.to_string(), *w)).collect()
    }

    /// The cluster after the moves, checking every move takes slots its
    /// source owns.
    fn apply(members: &[MemberStatus], moves: &[Move]) -> Vec<MemberStatus> {
        let mut owner: Vec<&str> = vec![""; SLOTS as usize];
        for m in members {
            for s in expand(&m.ranges) {
                owner[s as usize] = &m.node_id;
            }
        }
        for mv in moves {
            assert_ne!(mv.from, mv.to);
            assert!(mv.slot_count() > 0, "empty move {mv:?}");
            for s in expand(&mv.ranges) {
                assert_eq!(owner[s as usize], mv.from, "slot {s} of {mv:?}");
                owner[s as usize] = &mv.to;
            }
        }
        members
            .iter()
            .map(|m| {
                let s: Vec<u32> = (0..SLOTS).filter(|&s| owner[s as usize] == m.node_id).collect();
                let ranges = compress(&s);
                MemberStatus { node_id: m.node_id.clone(), slot_count: count(&ranges), ranges, ..Default::default() }
            })
            .collect()
    }

    fn counts(members: &[MemberStatus]) -> Vec<u32> {
        members.iter().map(|m| count(&m.ranges)).collect()
    }

    fn text(moves: &[Move]) -> Vec<String> {
        moves.iter().map(|m| format!("{}>{} {}", m.from, m.to, crate::slots::ranges_text(&m.ranges))).collect()
    }

    const THREE: [(&str, &str); 3] = [("a", "0-5461"), ("b", "5462-10922"), ("c", "10923-16383")];

    #[test]
    fn equal_weights_share_the_slots() {
        assert_eq!(targets(&[16384, 0, 0], &[1, 1, 1]).unwrap(), vec![5462, 5461, 5461]);
        assert_eq!(targets(&[16384, 0, 0, 0], &[1, 1, 1, 1]).unwrap(), vec![4096; 4]);
        assert_eq!(targets(&[10, 0], &[0, 1]).unwrap(), vec![0, 10]);
        assert!(targets(&[10, 0], &[0, 0]).is_err());
        // The slot left over by rounding goes to a member that already has it.
        assert_eq!(targets(&[5461, 5461, 5462], &[1, 1, 1]).unwrap(), vec![5461, 5461, 5462]);
    }

    #[test]
    fn new_empty_member_gets_a_tail_of_each() {
        let c = cluster(&[THREE[0], THREE[1], THREE[2], ("d", "")]);
        let moves = plan(&c, &BTreeMap::new()).unwrap();
        assert_eq!(text(&moves), ["a>d 4096-5461", "b>d 9558-10922", "c>d 15019-16383"]);
        assert_eq!(counts(&apply(&c, &moves)), vec![4096; 4]);
    }

    #[test]
    fn weight_zero_drains_into_neighbours() {
        let c = cluster(&THREE);
        let moves = plan(&c, &weights(&[("b", 0)])).unwrap();
        // a (below b's slots) gets b's low half, c (above) its high half.
        assert_eq!(text(&moves), ["b>a 5462-8191", "b>c 8192-10922"]);
        let after = apply(&c, &moves);
        assert_eq!(counts(&after), vec![8192, 0, 8192]);
        assert_eq!(crate::slots::ranges_text(&after[0].ranges), "0-8191");
        assert_eq!(crate::slots::ranges_text(&after[2].ranges), "8192-16383");
        assert_eq!(drain(&c, "b").unwrap(), moves);
    }

    #[test]
    fn drain_moves_only_the_drained_members_slots() {
        // b and c are unbalanced between themselves; draining a leaves that alone.
        let c = cluster(&[("a", "0-99"), ("b", "100-10099"), ("c", "10100-16383")]);
        let moves = drain(&c, "a").unwrap();
        assert!(moves.iter().all(|m| m.from == "a"));
        assert_eq!(counts(&apply(&c, &moves))[0], 0);
        assert!(drain(&cluster(&[("a", ""), ("b", "0-16383")]), "a").unwrap().is_empty());
        // The slot left over by rounding goes to the member taking slots anyway, not as a one-slot move.
        let c = cluster(&[("a", "0-5460"), ("b", "5461-10921"), ("c", "10922-16383"), ("d", "")]);
        assert_eq!(text(&drain(&c, "c").unwrap()), ["c>d 10922-16383"]);
        assert!(drain(&cluster(&[("a", "0-16383")]), "a").is_err());
    }

    #[test]
    fn balanced_cluster_has_nothing_to_move() {
        assert!(plan(&cluster(&THREE), &BTreeMap::new()).unwrap().is_empty());
        // The odd slot sits on another member than rounding would pick: still balanced.
        let off_by_one = cluster(&[("a", "0-5460"), ("b", "5461-10922"), ("c", "10923-16383")]);
        assert!(plan(&off_by_one, &BTreeMap::new()).unwrap().is_empty());
        let weighted = cluster(&[("a", "0-4095"), ("b", "4096-8191"), ("c", "8192-16383")]);
        assert!(plan(&weighted, &weights(&[("c", 2)])).unwrap().is_empty());
        assert!(plan(&cluster(&[("a", "0-16383")]), &BTreeMap::new()).unwrap().is_empty());
    }

    #[test]
    fn weights_are_proportional() {
        let c = cluster(&THREE);
        let moves = plan(&c, &weights(&[("c", 2)])).unwrap();
        let after = apply(&c, &moves);
        assert_eq!(counts(&after), vec![4096, 4096, 8192]);
        // c takes from both neighbours, each piece cut next to c's slots where possible.
        assert_eq!(text(&moves), ["a>c 4096-5461", "b>c 9558-10922"]);
        let odd = plan(&c, &weights(&[("a", 3), ("b", 0), ("c", 1)])).unwrap();
        assert_eq!(counts(&apply(&c, &odd)), vec![12288, 0, 4096]);
    }

    #[test]
    fn uneven_ranges_prefer_whole_ranges() {
        // a must give 10 and owns a range of exactly 10 slots: it goes whole.
        let c = cluster(&[("a", "0-9,20-8211"), ("b", "10-19,8212-16383")]);
        assert_eq!(counts(&c), vec![8202, 8182]);
        let moves = plan(&c, &BTreeMap::new()).unwrap();
        assert_eq!(text(&moves), ["a>b 0-9"]);
        assert_eq!(crate::slots::ranges_text(&apply(&c, &moves)[1].ranges), "0-19,8212-16383");
        // a must give 58: a piece of its smallest range that is large enough, cut next to b.
        let c = cluster(&[("a", "0-99,200-299,400-449,1000-8999"), ("b", "100-199,300-399,450-999,9000-16383")]);
        assert_eq!(counts(&c), vec![8250, 8134]);
        let moves = plan(&c, &BTreeMap::new()).unwrap();
        assert_eq!(text(&moves), ["a>b 42-99"]);
    }

    #[test]
    fn picking_slots() {
        let r = parse_slots("0-9,100-119,200-229").unwrap();
        // No range is large enough: the largest whole, then a piece of the smallest that fits.
        assert_eq!(compress(&pick(&r, 45, |_| false)), parse_slots("105-119,200-229").unwrap());
        assert_eq!(compress(&pick(&r, 20, |_| false)), parse_slots("100-119").unwrap());
        assert_eq!(expand(&compress(&pick(&r, 60, |_| false))), expand(&r));
        // The piece is cut at the end whose neighbour belongs to a taker.
        assert_eq!(compress(&pick(&r, 5, |s| s == 99)), parse_slots("5-9").unwrap());
        assert_eq!(compress(&pick(&r, 15, |s| s == 99)), parse_slots("100-114").unwrap());
        assert_eq!(compress(&pick(&r, 15, |_| false)), parse_slots("105-119").unwrap());
    }

    #[test]
    fn weight_arguments() {
        assert_eq!(parse_weight("10.0.0.1:7001=3").unwrap(), ("10.0.0.1:7001".to_string(), 3));
        assert_eq!(parse_weight("abc=0").unwrap(), ("abc".to_string(), 0));
        for bad in ["abc", "abc=", "=2", "abc=-1", "abc=1.5", "abc=x"] {
            assert!(parse_weight(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_bad_input() {
        assert!(plan(&cluster(&THREE), &weights(&[("x", 2)])).is_err());
        assert!(plan(&cluster(&THREE), &weights(&[("a", 0), ("b", 0), ("c", 0)])).is_err());
        assert!(plan(&cluster(&[("a", "0-10"), ("b", "10-20")]), &BTreeMap::new()).is_err());
    }

    #[test]
    fn same_state_same_plan() {
        let c = cluster(&[("c", "0-99,5000-16383"), ("a", "100-4999"), ("d", ""), ("b", "")]);
        let mut reversed = c.clone();
        reversed.reverse();
        let w = weights(&[("a", 2)]);
        assert_eq!(plan(&c, &w).unwrap(), plan(&reversed, &w).unwrap());
    }

    #[test]
    fn interrupted_plan_resumes() {
        let c = cluster(&[THREE[0], THREE[1], THREE[2], ("d", ""), ("e", "")]);
        let moves = plan(&c, &BTreeMap::new()).unwrap();
        assert!(moves.len() > 1);
        // Only the first move ran; planning again finishes the job.
        let partial = apply(&c, &moves[..1]);
        let rest = plan(&partial, &BTreeMap::new()).unwrap();
        let done = apply(&partial, &rest);
        assert_eq!(counts(&done), targets(&counts(&c), &[1; 5]).unwrap());
        assert!(plan(&done, &BTreeMap::new()).unwrap().is_empty());
    }

    /// Random layouts and weights: slots are conserved, every member ends
    /// within one slot of its exact share, re-planning finds nothing, and
    /// the moves stay few.
    #[test]
    fn random_layouts_reach_their_targets() {
        let mut seed: u64 = 0x5eed;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let n = 1 + next(7) as usize;
            let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
            let mut owned: Vec<Vec<u32>> = vec![Vec::new(); n];
            let mut slot = 0;
            while slot < SLOTS {
                let len = (1 + next(4000) as u32).min(SLOTS - slot);
                owned[next(n as u64) as usize].extend(slot..slot + len);
                slot += len;
            }
            let c: Vec<MemberStatus> = ids
                .iter()
                .zip(&owned)
                .map(|(id, s)| MemberStatus { node_id: id.clone(), ranges: compress(s), ..Default::default() })
                .collect();
            let mut w: Vec<u32> = (0..n).map(|_| next(4) as u32).collect();
            if w.iter().all(|&x| x == 0) {
                w[0] = 1;
            }
            let wm: BTreeMap<String, u32> = ids.iter().cloned().zip(w.iter().copied()).collect();
            let moves = plan(&c, &wm).unwrap();
            let after = apply(&c, &moves);
            assert_eq!(counts(&after).iter().sum::<u32>(), SLOTS);
            let total_w: u32 = w.iter().sum();
            for (i, &got) in counts(&after).iter().enumerate() {
                let exact = f64::from(SLOTS) * f64::from(w[i]) / f64::from(total_w);
                assert!((f64::from(got) - exact).abs() < 1.0, "member {i} has {got}, share {exact}");
            }
            assert!(plan(&after, &wm).unwrap().is_empty(), "re-planning moved again");
            let before = counts(&c);
            let givers = (0..n).filter(|&i| before[i] > counts(&after)[i]).count();
            let takers = (0..n).filter(|&i| before[i] < counts(&after)[i]).count();
            assert!(moves.len() < givers + takers.max(1), "{} moves for {givers} givers and {takers} takers", moves.len());
            // Nothing moves that need not: each giver only gives, each taker only takes.
            for mv in &moves {
                assert!(moves.iter().all(|o| o.to != mv.from && o.from != mv.to));
            }
        }
    }
}
