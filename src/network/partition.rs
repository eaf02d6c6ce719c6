//! Partitions of the network: while one lasts, zones are split into sides, and a message
//! from a zone of one side to a zone of another is cut (refused at once, or lost as in a
//! black hole). A partition is a fault (`crate::faults`): its groups are validated here into
//! [`Sides`], and the run's [`Cuts`] say which partitions are on.
//!
//! A model without partitions has no cut: the network's only cost is one predictable
//! branch where a call leaves (is anything cut now?).

use super::{NO_ZONE, NetworkDef, Zone};
use crate::engine::CrashMode;
use crate::error::{Errors, index};
use std::sync::Arc;

/// The side of each engine zone during a partition (index: the engine zone; [`NO_SIDE`]
/// for [`NO_ZONE`], which is beside whoever talks to it and never cut).
pub type Sides = Arc<[u16]>;

/// The side of "no zone".
pub const NO_SIDE: u16 = u16::MAX;

/// The sides of a partition's `groups` (at `path`) over the zones of `net`: group `k` is
/// side `k`, and the zones in no group together form side `groups.len()`. `None` after an
/// error (a zone unknown or in two groups, an empty group, a cut that cuts nothing).
pub fn sides(
    errs: &mut Errors,
    path: &str,
    groups: &[Vec<String>],
    net: &NetworkDef,
) -> Option<Sides> {
    let before = errs.len();
    let n = net.zones.len();
    let mut side = vec![NO_SIDE; n + 1];
    if groups.is_empty() {
        errs.push(
            path,
            "a partition needs at least one group of zones, e.g. [[\"a\"], [\"b\", \"c\"]]",
        );
        return None;
    }
    for (g, list) in groups.iter().enumerate() {
        let gp = index(path, g);
        if list.is_empty() {
            errs.push(&gp, "a group needs at least one zone");
        }
        for (k, z) in list.iter().enumerate() {
            let zp = index(&gp, k);
            let Some(at) = net.zones.iter().position(|x| x == z) else {
                errs.push(zp, super::no_such_zone(z, &net.zones));
                continue;
            };
            let s = &mut side[at + 1];
            if *s != NO_SIDE {
                errs.push(
                    zp,
                    format!(
                        "zone \"{z}\" is already in group {}; a zone is on one side of a partition",
                        *s
                    ),
                );
            } else {
                *s = g as u16;
            }
        }
    }
    if errs.len() > before {
        return None;
    }
    let rest = groups.len() as u16;
    for s in &mut side[1..] {
        if *s == NO_SIDE {
            *s = rest;
        }
    }
    let distinct = {
        let mut v: Vec<u16> = side[1..].to_vec();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    if distinct < 2 {
        errs.push(
            path,
            "this partition cuts nothing: every zone is on one side; list at least two groups, or leave some zones out of the one group",
        );
        return None;
    }
    Some(side.into())
}

/// How the groups of a partition read in the results: "a | b c" (the zones left out of
/// every group, if any, last).
pub fn label(sides: &[u16], net: &NetworkDef) -> String {
    let most = sides[1..].iter().copied().max().unwrap_or(0);
    (0..=most)
        .map(|s| {
            net.zones
                .iter()
                .enumerate()
                .filter(|(z, _)| sides[z + 1] == s)
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|g| !g.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The partitions of one run, and which are on.
#[derive(Debug, Clone, Default)]
pub struct Cuts {
    /// Every partition of the model: (fault number, sides, mode).
    known: Vec<(u32, Sides, CrashMode)>,
    /// The partitions on now (indexes into `known`), in the order they began.
    on: Vec<usize>,
}

impl Cuts {
    /// The partitions `known` (fault number, sides, mode), all off.
    pub fn new(known: Vec<(u32, Sides, CrashMode)>) -> Self {
        Cuts {
            known,
            on: Vec::new(),
        }
    }

    /// Partition `fault` begins (`on`) or ends. Unknown faults change nothing.
    pub fn set(&mut self, fault: u32, on: bool) {
        let Some(k) = self.known.iter().position(|(f, _, _)| *f == fault) else {
            return;
        };
        self.on.retain(|x| *x != k);
        if on {
            self.on.push(k);
        }
    }

    /// The fault numbers of the partitions on now, in the order they began.
    pub fn on_faults(&self) -> Vec<u32> {
        self.on.iter().map(|k| self.known[*k].0).collect()
    }

    /// True while some partition is on.
    #[inline(always)]
    pub fn any(&self) -> bool {
        !self.on.is_empty()
    }

    /// What a message from zone `from` to zone `to` meets now: `None` when it gets
    /// through, else the mode of the first partition on that cuts them.
    pub fn between(&self, from: Zone, to: Zone) -> Option<CrashMode> {
        if from == NO_ZONE || to == NO_ZONE {
            return None;
        }
        self.on.iter().find_map(|k| {
            let (_, sides, mode) = &self.known[*k];
            (sides[from as usize] != sides[to as usize]).then_some(*mode)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sides_of(groups: &[&[&str]]) -> Vec<u16> {
        let net = NetworkDef::for_tests(&["a", "b", "c", "d"]);
        let groups: Vec<Vec<String>> = groups
            .iter()
            .map(|g| g.iter().map(|z| z.to_string()).collect())
            .collect();
        let mut errs = Errors::default();
        sides(&mut errs, "p", &groups, &net).unwrap().to_vec()
    }

    #[test]
    fn zones_left_out_form_one_more_side_together() {
        assert_eq!(sides_of(&[&["a"], &["b", "c"]]), [NO_SIDE, 0, 1, 1, 2]);
        assert_eq!(sides_of(&[&["b"]]), [NO_SIDE, 1, 0, 1, 1]);
        let net = NetworkDef::for_tests(&["a", "b", "c", "d"]);
        assert_eq!(label(&[NO_SIDE, 1, 0, 1, 1], &net), "b | a c d");
    }

    #[test]
    fn a_cut_separates_sides_only_while_it_is_on_and_never_cuts_no_zone() {
        let s: Sides = vec![NO_SIDE, 0, 1, 1].into();
        let mut c = Cuts::new(vec![(4, s, CrashMode::BlackHole)]);
        assert!(!c.any());
        assert_eq!(c.between(1, 2), None);
        c.set(4, true);
        assert!(c.any());
        assert_eq!(c.between(1, 2), Some(CrashMode::BlackHole));
        assert_eq!(c.between(2, 3), None, "one side");
        assert_eq!(c.between(0, 2), None, "no zone");
        c.set(9, true);
        c.set(4, false);
        assert!(!c.any());
    }
}
