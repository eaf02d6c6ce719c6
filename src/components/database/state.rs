//! What the copies of one database share in a run: the versions of each key (the newest
//! version written, the newest acknowledged and when, and the version each copy has
//! applied), the clients' last writes (for read-your-writes), each copy's load (for the
//! balancing of reads) and each copy's read statistics (so a copy can report its part of
//! the component's shares).
//!
//! Only keys that have been written hold state: a key never written is at version 0
//! everywhere, so reading it costs no memory, and a 10-million-key catalog costs what its
//! written keys cost.

use super::failover::Failover;
use crate::metrics::{LEVEL_SLOTS, WaitHistogram};
use crate::time::SimTime;
use rustc_hash::FxHashMap;
use std::cell::Cell;

/// The newest version a key can reach: versions travel in 31 bits of a timer tag. A key
/// written more often keeps this version (two billion writes to one key in one run).
pub const MAX_VERSION: u32 = (1 << 31) - 1;

/// The versions of one written key.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KeyVersions {
    /// Newest version written (by the primary, or any coordinator of a quorum).
    pub(super) written: u32,
    /// Newest version acknowledged to its writer: what a fresh read must return.
    pub(super) acked: u32,
    /// When `acked` was acknowledged.
    acked_at: SimTime,
}

/// How a read compares with the newest acknowledged write of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Acknowledged versions the read did not see (0: fresh).
    pub behind: u32,
    /// Time since the newest version it missed was acknowledged, ns (0 when fresh).
    pub age_ns: u64,
}

/// One copy's read and batch statistics over the measurement window.
#[derive(Debug, Clone)]
pub struct CopyStats {
    /// Reads answered (a quorum read counts once, at its coordinator).
    pub reads: u64,
    /// Of which stale.
    pub stale: u64,
    /// Sum of the versions behind over all reads.
    pub behind_sum: u64,
    /// Reads by versions behind: 0, 1, ..., the last slot for `LEVEL_SLOTS - 1` or more.
    pub behind: [u64; LEVEL_SLOTS],
    /// Reads by request class.
    pub reads_by_class: Vec<u64>,
    /// Stale reads by request class.
    pub stale_by_class: Vec<u64>,
    /// Sum of the versions behind of the reads of each request class.
    pub behind_sum_by_class: Vec<u64>,
    /// Age of the newest version each stale read missed.
    pub staleness: WaitHistogram,
    /// The same, by request class.
    pub staleness_by_class: Vec<WaitHistogram>,
    /// Group-commit batches committed.
    pub batches: u64,
    /// Writes in those batches.
    pub batched: u64,
}

impl CopyStats {
    fn new(classes: usize) -> Self {
        CopyStats {
            reads: 0,
            stale: 0,
            behind_sum: 0,
            behind: [0; LEVEL_SLOTS],
            reads_by_class: vec![0; classes],
            stale_by_class: vec![0; classes],
            behind_sum_by_class: vec![0; classes],
            staleness: WaitHistogram::new(),
            staleness_by_class: (0..classes).map(|_| WaitHistogram::new()).collect(),
            batches: 0,
            batched: 0,
        }
    }

    /// Counts a read of class `class` with freshness `f`.
    #[inline]
    pub fn record(&mut self, class: usize, f: Freshness) {
        self.reads += 1;
        self.reads_by_class[class] += 1;
        self.behind[(f.behind as usize).min(LEVEL_SLOTS - 1)] += 1;
        if f.behind > 0 {
            self.stale += 1;
            self.stale_by_class[class] += 1;
            self.behind_sum += u64::from(f.behind);
            self.behind_sum_by_class[class] += u64::from(f.behind);
            self.staleness.record(f.age_ns);
            self.staleness_by_class[class].record(f.age_ns);
        }
    }

    /// Forgets everything (end of warm-up).
    pub fn clear(&mut self) {
        *self = CopyStats::new(self.reads_by_class.len());
    }
}

/// The run state shared by the copies of one database.
#[derive(Debug)]
pub struct Shared {
    pub(super) copies: usize,
    /// Slot of each written key.
    slot_of: FxHashMap<u64, u32>,
    /// Versions of each written key, by slot.
    pub(super) keys: Vec<KeyVersions>,
    /// Version applied at each copy: `applied[slot * copies + copy]`.
    pub(super) applied: Vec<u32>,
    /// When each client (source << 32 | user) last had a write acknowledged.
    last_write: FxHashMap<u64, SimTime>,
    /// Read statistics of each copy.
    pub stats: Vec<CopyStats>,
    /// Primary failover: its state and counts (untouched without failover).
    pub failover: Failover,
    /// The writes a network partition kept from some copies, until they reconcile.
    pub split: super::partition::SplitLog,
    /// What each side of each partition saw (a database with a `partition_mode` only).
    pub sides: super::partition::SideLog,
}

impl Shared {
    /// State of a database of `copies` copies, for `classes` request classes.
    pub fn new(copies: usize, classes: usize) -> Self {
        Shared {
            copies,
            slot_of: FxHashMap::default(),
            keys: Vec::new(),
            applied: Vec::new(),
            last_write: FxHashMap::default(),
            stats: (0..copies).map(|_| CopyStats::new(classes)).collect(),
            failover: Failover::default(),
            split: super::partition::SplitLog::new(copies),
            sides: super::partition::SideLog::default(),
        }
    }

    /// The slot of `key`, which has been written; `None` for a key never written.
    #[inline]
    pub fn slot(&self, key: u64) -> Option<u32> {
        self.slot_of.get(&key).copied()
    }

    /// A new version of `key` is written at copy `copy`: returns the key's slot (made on
    /// its first write) and the version.
    pub fn write(&mut self, key: u64, copy: usize) -> (u32, u32) {
        let next = self.keys.len() as u32;
        let slot = *self.slot_of.entry(key).or_insert(next);
        if slot == next {
            self.keys.push(KeyVersions::default());
            self.applied.resize(self.applied.len() + self.copies, 0);
        }
        let k = &mut self.keys[slot as usize];
        k.written = (k.written + 1).min(MAX_VERSION);
        let v = k.written;
        self.apply(slot, copy, v);
        (slot, v)
    }

    /// Copy `copy` applies version `version` of the key in `slot` (the newest wins).
    #[inline]
    pub fn apply(&mut self, slot: u32, copy: usize, version: u32) {
        if !self.failover.discarded.is_empty() && self.failover.discards(slot, version) {
            return;
        }
        let a = &mut self.applied[slot as usize * self.copies + copy];
        *a = (*a).max(version);
    }

    /// Version `version` of the key in `slot` is acknowledged to its writer at `now`.
    pub fn ack(&mut self, slot: u32, version: u32, now: SimTime) {
        let k = &mut self.keys[slot as usize];
        if version > k.acked {
            k.acked = version;
            k.acked_at = now;
        }
    }

    /// The version of `key` copy `copy` holds (0 for a key never written).
    #[inline]
    pub fn version_at(&self, key: u64, copy: usize) -> u32 {
        self.slot(key)
            .map_or(0, |s| self.applied[s as usize * self.copies + copy])
    }

    /// What a read of `key` at copy `copy` finds: the version there, and the newest
    /// acknowledged version with the time it was acknowledged.
    #[inline]
    pub fn read(&self, key: u64, copy: usize) -> (u32, u32, SimTime) {
        self.slot(key).map_or((0, 0, SimTime::ZERO), |s| {
            let k = &self.keys[s as usize];
            let v = self.applied[s as usize * self.copies + copy];
            (v, k.acked, k.acked_at)
        })
    }

    /// The newest acknowledged version of `key` and when it was acknowledged.
    #[inline]
    pub fn acked(&self, key: u64) -> (u32, SimTime) {
        self.slot(key).map_or((0, SimTime::ZERO), |s| {
            let k = &self.keys[s as usize];
            (k.acked, k.acked_at)
        })
    }

    /// The partition healed: every copy takes the winning version of each key written
    /// while some copies could not be reached (see the `partition` module).
    pub fn reconcile(&mut self) {
        for (slot, version) in self.split.reconcile(&mut self.sides) {
            for copy in 0..self.copies {
                self.apply(slot, copy, version);
            }
        }
    }

    /// Copy `copy`, on side `side` of a cut, wrote version `version` of the key in `slot`
    /// and could not reach every copy: logged until the copies reconcile, and counted for
    /// the side (when the sides are logged).
    pub fn split_write(&mut self, slot: u32, side: u32, copy: usize, version: u32) {
        let cut = self.sides.cut();
        if let Some(counts) = self.sides.of_copy(copy) {
            counts.split_writes += 1;
        }
        self.split.wrote(slot, side, copy as u32, version, cut);
    }

    /// Keys written so far (those holding state).
    pub fn keys_written(&self) -> usize {
        self.keys.len()
    }

    /// Client `client` had a write acknowledged at `now`.
    pub fn wrote(&mut self, client: u64, now: SimTime) {
        self.last_write.insert(client, now);
    }

    /// When client `client` last had a write acknowledged.
    #[inline]
    pub fn last_write(&self, client: u64) -> Option<SimTime> {
        self.last_write.get(&client).copied()
    }
}

/// How a read that returned `version` compares with the newest acknowledged version
/// `acked`, acknowledged at `acked_at`, judged at `now`.
#[inline]
pub fn freshness(version: u32, acked: u32, acked_at: SimTime, now: SimTime) -> Freshness {
    if version >= acked {
        Freshness {
            behind: 0,
            age_ns: 0,
        }
    } else {
        Freshness {
            behind: acked - version,
            age_ns: now.since(acked_at).0,
        }
    }
}

/// The number of requests at each copy (waiting or in service), shared by the copies
/// and the picker that balances calls over them by load.
pub type Loads = std::rc::Rc<[Cell<u32>]>;

/// Loads of `copies` copies, all idle.
pub fn loads(copies: usize) -> Loads {
    (0..copies).map(|_| Cell::new(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_written_keys_hold_state_and_the_newest_version_wins() {
        let mut s = Shared::new(3, 1);
        assert_eq!(
            s.version_at(42, 1),
            0,
            "a key never written is at version 0"
        );
        assert_eq!(s.acked(42), (0, SimTime::ZERO));
        assert_eq!(s.keys_written(), 0, "reading creates no state");
        let (slot, v1) = s.write(42, 0);
        let (same, v2) = s.write(42, 0);
        assert_eq!((slot, v1, v2), (same, 1, 2));
        assert_eq!(s.version_at(42, 0), 2, "the writer has what it wrote");
        s.apply(slot, 1, 2);
        s.apply(slot, 1, 1);
        assert_eq!(
            s.version_at(42, 1),
            2,
            "an older version arriving late is ignored"
        );
        assert_eq!(s.version_at(42, 2), 0);
        s.ack(slot, 2, SimTime(50));
        s.ack(slot, 1, SimTime(60));
        assert_eq!(s.acked(42), (2, SimTime(50)), "acks never go back");
        s.write(7, 0);
        assert_eq!(s.keys_written(), 2);
    }

    #[test]
    fn a_read_is_stale_by_the_versions_it_missed_since_the_newest_was_acknowledged() {
        let fresh = freshness(3, 3, SimTime(10), SimTime(99));
        assert_eq!(
            fresh,
            Freshness {
                behind: 0,
                age_ns: 0
            }
        );
        assert_eq!(freshness(4, 3, SimTime(10), SimTime(99)).behind, 0);
        let stale = freshness(1, 3, SimTime(10), SimTime(99));
        assert_eq!(
            stale,
            Freshness {
                behind: 2,
                age_ns: 89
            }
        );
        let mut r = CopyStats::new(2);
        r.record(1, stale);
        r.record(0, fresh);
        assert_eq!((r.reads, r.stale, r.behind_sum), (2, 1, 2));
        assert_eq!((r.behind[0], r.behind[2]), (1, 1));
        assert_eq!((r.reads_by_class[1], r.stale_by_class[1]), (1, 1));
        assert_eq!(r.staleness.count(), 1);
        r.clear();
        assert_eq!(r.reads, 0);
    }
}
