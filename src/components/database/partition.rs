//! A replicated database cut by a network partition (issue 11 point 7: CAP).
//!
//! A copy's side is the set of copies its zone can reach while the network is cut; a
//! caller's side is the set of copies the caller's zone can reach. The database's
//! `partition_mode` says what a side does:
//!
//! - **consistent** (CP): a side serves only if it holds the primary (with replicas) or a
//!   quorum (`w` copies for a write, `r` for a read, leaderless): the other side's calls fail
//!   at once (`unavailable`), and a write whose coordinator cannot reach the copies it must
//!   wait for fails the same way. Nothing conflicts.
//! - **available** (AP): every side serves. A side without the primary writes through its
//!   first live copy (its own leader); a quorum waits for the copies it can reach. Reads on a
//!   side miss the other side's writes (stale reads), and a key written on two sides
//!   conflicts.
//!
//! Writes reach only the copies on their side while the cut lasts; each write that could not
//! reach every copy is logged ([`SplitLog`]). When no cut is left the copies reconcile at
//! once: every copy takes each logged key's newest version (last writer wins, versions
//! being numbered in time order); the writes of a key made on more than one side count as
//! conflicting, and those of the sides whose last write lost count as lost, on the copy
//! that accepted them.
//!
//! A database with a `partition_mode` also reports what each side saw ([`SideLog`]): for
//! each stretch of time the same partitions were on, each side's copies and zones, the
//! calls that reached it and those refused, its reads (stale or not), and its split,
//! conflicting and lost writes. The counting happens only while a cut is on.

use super::{METRICS, failover};
use crate::engine::{CallId, Ctx, InstanceId};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::metrics::sides::{SideCounts, SideRecord};
use crate::network::Zone;
use crate::time::SimTime;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What a side of a partition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMode {
    /// Only the side with the primary or a quorum serves.
    Consistent,
    /// Every side serves; conflicts are reconciled when the partition heals.
    Available,
}

/// The metrics of a database with a `partition_mode`: its usual ones, then these.
pub const PARTITION_METRICS: &[MetricDecl] = &[
    // Writes accepted here to a key that another side also wrote during the same cut.
    MetricDecl::number("partition_conflicting_writes", Count, Sum),
    // Of those, the writes of a side whose last write lost (last writer wins).
    MetricDecl::number("partition_lost_writes", Count, Sum),
    // Writes accepted here that could not reach every copy (reconciled at the heal).
    MetricDecl::number("partition_split_writes", Count, Sum),
];

/// [`METRICS`] followed by [`PARTITION_METRICS`].
pub fn metrics() -> &'static [MetricDecl] {
    static LIST: OnceLock<Vec<MetricDecl>> = OnceLock::new();
    LIST.get_or_init(|| METRICS.iter().chain(PARTITION_METRICS).copied().collect())
}

/// The metrics of a database with failover ([`failover::metrics`]) followed by
/// [`PARTITION_METRICS`].
pub fn metrics_with_failover() -> &'static [MetricDecl] {
    static LIST: OnceLock<Vec<MetricDecl>> = OnceLock::new();
    LIST.get_or_init(|| {
        let with = failover::metrics().iter().chain(PARTITION_METRICS);
        with.copied().collect()
    })
}

/// True when a message from instance `from` to instance `to` is cut now.
#[inline]
pub fn cut(ctx: &Ctx, from: InstanceId, to: InstanceId) -> bool {
    ctx.is_partitioned() && !ctx.reachable(ctx.zone_of(from), ctx.zone_of(to))
}

/// The side of copy `id` of the copies `first..first + copies`: the first copy it can
/// reach (itself at worst).
pub fn side_of(ctx: &Ctx, first: InstanceId, copies: u32, id: InstanceId) -> u32 {
    (0..copies)
        .find(|j| !cut(ctx, id, first + j))
        .unwrap_or(id - first)
}

/// True when copy `id` leads its side in available mode: the primary (copy `primary` of
/// `first..first + copies`: 0 unless failover promoted a replica) is not on its side (cut
/// off from it, or down) and it is the first live copy it can reach.
pub fn leads_side(ctx: &Ctx, first: InstanceId, copies: u32, primary: u32, id: InstanceId) -> bool {
    let primary = first + primary;
    (!ctx.is_up(primary) || cut(ctx, id, primary))
        && (first..first + copies)
            .find(|c| ctx.is_up(*c) && !cut(ctx, id, *c))
            .is_some_and(|c| c == id)
}

/// How many other copies a write that reaches `reached` of them waits for, when it should
/// wait for `wait_for`: `None` when it cannot be acknowledged (consistent mode).
pub fn acks(mode: PartitionMode, wait_for: usize, reached: usize) -> Option<usize> {
    match mode {
        _ if reached >= wait_for => Some(wait_for),
        PartitionMode::Available => Some(reached),
        PartitionMode::Consistent => None,
    }
}

/// Writes of one key on one side by one copy during a cut (the [`SideLog`]'s cut number
/// `cut`, or [`NO_CUT`] when the database does not report its sides).
#[derive(Debug, Clone, Copy)]
struct SideWrites {
    side: u32,
    copy: u32,
    cut: u32,
    count: u64,
    last: u32,
}

/// The cut number of a write made while no side is logged.
pub const NO_CUT: u32 = u32::MAX;

/// The writes that could not reach every copy, until the copies reconcile; and per copy,
/// the counts reconciliation found.
#[derive(Debug)]
pub struct SplitLog {
    /// By key slot (sorted, so reconciliation is in a fixed order).
    writes: BTreeMap<u32, Vec<SideWrites>>,
    /// Per copy: writes accepted during a cut that did not reach every copy.
    pub split: Vec<u64>,
    /// Per copy: conflicting writes.
    pub conflicting: Vec<u64>,
    /// Per copy: lost writes.
    pub lost: Vec<u64>,
}

impl SplitLog {
    /// An empty log for `copies` copies.
    pub fn new(copies: usize) -> Self {
        SplitLog {
            writes: BTreeMap::new(),
            split: vec![0; copies],
            conflicting: vec![0; copies],
            lost: vec![0; copies],
        }
    }

    /// Copy `copy`, on side `side`, wrote version `version` of the key in `slot` and could
    /// not reach every copy, during the [`SideLog`]'s cut `cut`.
    pub fn wrote(&mut self, slot: u32, side: u32, copy: u32, version: u32, cut: u32) {
        self.split[copy as usize] += 1;
        let list = self.writes.entry(slot).or_default();
        match list
            .iter_mut()
            .find(|w| w.side == side && w.copy == copy && w.cut == cut)
        {
            Some(w) => {
                w.count += 1;
                w.last = w.last.max(version);
            }
            None => list.push(SideWrites {
                side,
                copy,
                cut,
                count: 1,
                last: version,
            }),
        }
    }

    /// The partition healed: counts the conflicts and lost writes of every logged key (per
    /// copy here, per side in `sides`), and returns each key's slot with its winning
    /// version, which every copy must take.
    pub fn reconcile(&mut self, sides: &mut SideLog) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(self.writes.len());
        for (slot, list) in std::mem::take(&mut self.writes) {
            let winner = list.iter().max_by_key(|w| w.last).copied();
            let Some(winner) = winner else { continue };
            if list.iter().any(|w| w.side != winner.side) {
                for w in &list {
                    let lost = if w.side != winner.side { w.count } else { 0 };
                    self.conflicting[w.copy as usize] += w.count;
                    self.lost[w.copy as usize] += lost;
                    sides.settled(w.cut, w.copy, w.count, lost);
                }
            }
            out.push((slot, winner.last));
        }
        out
    }

    /// Forgets the counts of copy `copy` (end of warm-up); the pending writes stay.
    pub fn clear(&mut self, copy: usize) {
        self.split[copy] = 0;
        self.conflicting[copy] = 0;
        self.lost[copy] = 0;
    }
}

/// One stretch of time with the same partitions on, and what each side saw.
#[derive(Debug)]
struct Cut {
    /// The partition faults on.
    faults: Vec<u32>,
    start: SimTime,
    end: Option<SimTime>,
    /// Per copy: its side, numbered by the first copy on it.
    side_of: Vec<u32>,
    /// Per side (the last: the zones that reach no copy): its zones.
    zones: Vec<Vec<Zone>>,
    /// Per side, as `zones`: what it saw.
    counts: Vec<SideCounts>,
}

/// What each side of each cut saw, for a database with a `partition_mode` (a database
/// without one never opens a cut: its log stays empty and counts nothing).
///
/// A call counts on the side it arrived on: a copy tags each call a caller makes that
/// reaches it during a cut ([`SideLog::arrived`]), and its answer, whenever it comes, is
/// counted for that side ([`SideLog::take`]); so served calls never outnumber arrived ones.
#[derive(Debug, Default)]
pub struct SideLog {
    cuts: Vec<Cut>,
    /// The cut on now, an index into `cuts`.
    current: Option<usize>,
    /// Start of the measurement window.
    measured_from: SimTime,
    /// The callers' calls that arrived during a cut and are not answered yet, by (call,
    /// generation): their cut and side.
    tags: FxHashMap<(CallId, u32), (u32, u32)>,
}

impl SideLog {
    /// The network changed (a partition began or ended): closes the cut that was on, and
    /// opens one for the partitions on now, with the sides they make of copies
    /// `first..first + copies` and of the network's zones. Every copy hears of the change;
    /// the first to tell it does the work.
    pub fn network_changed(&mut self, ctx: &Ctx, first: InstanceId, copies: u32) {
        let on = ctx.partitions_on();
        if let Some(i) = self.current {
            if self.cuts[i].faults == on {
                return;
            }
            self.cuts[i].end = Some(ctx.now());
            self.current = None;
        }
        if on.is_empty() {
            return;
        }
        let side_of = (0..copies)
            .map(|j| side_of(ctx, first, copies, first + j))
            .collect();
        let mut zones = vec![Vec::new(); copies as usize + 1];
        for z in 1..=ctx.zones() as Zone {
            let side = (0..copies)
                .find(|j| ctx.reachable(z, ctx.zone_of(first + j)))
                .unwrap_or(copies);
            zones[side as usize].push(z);
        }
        // The calls of cuts before the one just closed are long answered or lost (their
        // copy crashed): forget them.
        let this = self.cuts.len() as u32;
        self.tags.retain(|_, (cut, _)| *cut + 1 >= this);
        self.current = Some(self.cuts.len());
        self.cuts.push(Cut {
            faults: on,
            start: ctx.now(),
            end: None,
            side_of,
            zones,
            counts: vec![SideCounts::default(); copies as usize + 1],
        });
    }

    /// The number of the cut on now ([`NO_CUT`] when none is logged).
    pub fn cut(&self) -> u32 {
        self.current.map_or(NO_CUT, |i| i as u32)
    }

    /// A caller's call (`call`, of slot generation `generation`; a write if `write`)
    /// reached copy `copy`: counted for the copy's side of the cut on now, if one is
    /// logged, and tagged so that its answer counts there too.
    pub fn arrived(&mut self, copy: usize, call: CallId, generation: u32, write: bool) {
        let Some(i) = self.current else { return };
        let cut = &mut self.cuts[i];
        let side = cut.side_of[copy];
        let counts = &mut cut.counts[side as usize];
        if write {
            counts.arrived_writes += 1;
        } else {
            counts.arrived_reads += 1;
        }
        self.tags.insert((call, generation), (i as u32, side));
    }

    /// True when no call that arrived during a cut waits for its answer (nothing to count).
    #[inline]
    pub fn untagged(&self) -> bool {
        self.tags.is_empty()
    }

    /// The caller's call (`call`, of slot generation `generation`) is answered: what its
    /// side sees, if it arrived during a cut (its tag is dropped).
    pub fn take(&mut self, call: CallId, generation: u32) -> Option<&mut SideCounts> {
        let (cut, side) = self.tags.remove(&(call, generation))?;
        Some(&mut self.cuts[cut as usize].counts[side as usize])
    }

    /// What the side of copy `copy` sees in the cut on now, if one is logged.
    #[inline]
    pub fn of_copy(&mut self, copy: usize) -> Option<&mut SideCounts> {
        let cut = &mut self.cuts[self.current?];
        let side = cut.side_of[copy] as usize;
        Some(&mut cut.counts[side])
    }

    /// What side `side` (the first copy the caller reaches; the number of copies when it
    /// reaches none) sees in the cut on now, if one is logged.
    #[inline]
    pub fn of_side(&mut self, side: u32) -> Option<&mut SideCounts> {
        let cut = &mut self.cuts[self.current?];
        cut.counts.get_mut(side as usize)
    }

    /// The writes copy `copy` accepted in cut `cut` conflicted (`conflicting` of them), and
    /// `lost` of them lost.
    fn settled(&mut self, cut: u32, copy: u32, conflicting: u64, lost: u64) {
        let Some(cut) = self.cuts.get_mut(cut as usize) else {
            return;
        };
        let side = cut.side_of[copy as usize] as usize;
        cut.counts[side].conflicting_writes += conflicting;
        cut.counts[side].lost_writes += lost;
    }

    /// The measurement window starts at `now`: every count restarts (a cut on goes on), and
    /// the calls that arrived before are forgotten.
    pub fn restart(&mut self, now: SimTime) {
        self.measured_from = now;
        self.tags.clear();
        for cut in &mut self.cuts {
            cut.counts.fill(SideCounts::default());
        }
    }

    /// One record per side of each cut that overlapped the measurement window (or counted
    /// something in it), the cuts in the order they began, the sides by their first copy
    /// (the zones that reach no copy last, if any).
    pub fn records(&self) -> Vec<SideRecord> {
        let mut out = Vec::new();
        for cut in &self.cuts {
            let counted = cut.counts.iter().any(|c| *c != SideCounts::default());
            if !counted && cut.end.is_some_and(|e| e <= self.measured_from) {
                continue;
            }
            for (side, (zones, counts)) in cut.zones.iter().zip(&cut.counts).enumerate() {
                let copies: Vec<u32> = (0..cut.side_of.len() as u32)
                    .filter(|j| cut.side_of[*j as usize] == side as u32)
                    .collect();
                if copies.is_empty() && (zones.is_empty() || side < cut.side_of.len()) {
                    continue;
                }
                out.push(SideRecord {
                    faults: cut.faults.clone(),
                    start: cut.start,
                    end: cut.end,
                    copies,
                    zones: zones.clone(),
                    counts: *counts,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_writer_wins_and_the_other_sides_writes_are_lost() {
        let mut log = SplitLog::new(3);
        // Key 0: side 0 (copy 0) writes versions 1 and 3, side 1 (copy 1) version 2.
        log.wrote(0, 0, 0, 1, NO_CUT);
        log.wrote(0, 1, 1, 2, NO_CUT);
        log.wrote(0, 0, 0, 3, NO_CUT);
        // Key 1: only side 1 wrote it; no conflict.
        log.wrote(1, 1, 1, 4, NO_CUT);
        let mut sides = SideLog::default();
        let won = log.reconcile(&mut sides);
        assert_eq!(won, [(0, 3), (1, 4)]);
        assert_eq!(log.split, [2, 2, 0]);
        assert_eq!(log.conflicting, [2, 1, 0]);
        assert_eq!(log.lost, [0, 1, 0]);
        assert!(log.reconcile(&mut sides).is_empty(), "reconciled once");
        assert!(
            sides.records().is_empty(),
            "no side is logged without a cut"
        );
    }

    #[test]
    fn a_write_waits_for_what_its_side_can_give_only_when_available() {
        assert_eq!(acks(PartitionMode::Consistent, 2, 2), Some(2));
        assert_eq!(acks(PartitionMode::Consistent, 2, 1), None);
        assert_eq!(acks(PartitionMode::Available, 2, 1), Some(1));
        assert_eq!(acks(PartitionMode::Available, 0, 0), Some(0));
    }

    #[test]
    fn the_partition_metrics_follow_the_usual_ones() {
        let m = metrics();
        assert_eq!(m.len(), METRICS.len() + PARTITION_METRICS.len());
        assert_eq!(m[..METRICS.len()], *METRICS);
    }
}
