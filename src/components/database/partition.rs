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

use super::{METRICS, failover};
use crate::engine::{Ctx, InstanceId};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
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

/// Writes of one key on one side by one copy during a cut.
#[derive(Debug, Clone, Copy)]
struct SideWrites {
    side: u32,
    copy: u32,
    count: u64,
    last: u32,
}

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
    /// not reach every copy.
    pub fn wrote(&mut self, slot: u32, side: u32, copy: u32, version: u32) {
        self.split[copy as usize] += 1;
        let list = self.writes.entry(slot).or_default();
        match list.iter_mut().find(|w| w.side == side && w.copy == copy) {
            Some(w) => {
                w.count += 1;
                w.last = w.last.max(version);
            }
            None => list.push(SideWrites {
                side,
                copy,
                count: 1,
                last: version,
            }),
        }
    }

    /// The partition healed: counts the conflicts and lost writes of every logged key, and
    /// returns each key's slot with its winning version, which every copy must take.
    pub fn reconcile(&mut self) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(self.writes.len());
        for (slot, list) in std::mem::take(&mut self.writes) {
            let winner = list.iter().max_by_key(|w| w.last).copied();
            let Some(winner) = winner else { continue };
            if list.iter().any(|w| w.side != winner.side) {
                for w in &list {
                    self.conflicting[w.copy as usize] += w.count;
                    if w.side != winner.side {
                        self.lost[w.copy as usize] += w.count;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_writer_wins_and_the_other_sides_writes_are_lost() {
        let mut log = SplitLog::new(3);
        // Key 0: side 0 (copy 0) writes versions 1 and 3, side 1 (copy 1) version 2.
        log.wrote(0, 0, 0, 1);
        log.wrote(0, 1, 1, 2);
        log.wrote(0, 0, 0, 3);
        // Key 1: only side 1 wrote it; no conflict.
        log.wrote(1, 1, 1, 4);
        let won = log.reconcile();
        assert_eq!(won, [(0, 3), (1, 4)]);
        assert_eq!(log.split, [2, 2, 0]);
        assert_eq!(log.conflicting, [2, 1, 0]);
        assert_eq!(log.lost, [0, 1, 0]);
        assert!(log.reconcile().is_empty(), "reconciled once");
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
