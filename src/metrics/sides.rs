//! What a replicated database saw on each side of a network partition (issue 11 point 7):
//! one record per side per stretch of time the same partitions were on. The database
//! counts them (see `components/database/partition.rs`); the engine only carries them to
//! the results, which name the faults and zones.

use crate::network::Zone;
use crate::time::SimTime;

/// Counts of one side of a cut, over the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideCounts {
    /// Reads (calls that are not writes) that reached the database from a caller on the
    /// side.
    pub arrived_reads: u64,
    /// Writes that reached the database from a caller on the side.
    pub arrived_writes: u64,
    /// Of the calls that arrived, those refused as `unavailable` (the side has no primary
    /// or no quorum: consistent mode).
    pub unavailable: u64,
    /// Reads answered (of those that arrived on the side).
    pub reads: u64,
    /// Of those, reads that missed the newest acknowledged version of their key.
    pub stale_reads: u64,
    /// Writes acknowledged (of those that arrived on the side).
    pub writes: u64,
    /// Writes accepted on the side that could not reach every copy.
    pub split_writes: u64,
    /// Of those, writes to a key another side also wrote (found when the copies reconcile).
    pub conflicting_writes: u64,
    /// Of those, writes of the side whose last write lost (last writer wins).
    pub lost_writes: u64,
}

impl SideCounts {
    /// Calls that reached the database on the side.
    pub fn arrived(&self) -> u64 {
        self.arrived_reads + self.arrived_writes
    }
    /// Calls answered successfully on the side.
    pub fn served(&self) -> u64 {
        self.reads + self.writes
    }
    /// A read was answered; `stale` if it missed the newest acknowledged version.
    #[inline]
    pub fn read(&mut self, stale: bool) {
        self.reads += 1;
        self.stale_reads += u64::from(stale);
    }
    /// A call failed with `cause` (counted when the side refused it: unavailable).
    #[inline]
    pub fn failed(&mut self, cause: crate::metrics::ErrorCause) {
        if cause == crate::metrics::ErrorCause::Unavailable {
            self.unavailable += 1;
        }
    }
}

/// One side of the partitions on from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideRecord {
    /// The partition faults on (fault numbers in the model, in the order they began).
    pub faults: Vec<u32>,
    /// When these partitions were on together.
    pub start: SimTime,
    /// When that ended (`None`: still on at the end of the run).
    pub end: Option<SimTime>,
    /// The copies on the side (indexes among the database's copies); empty for the side of
    /// the zones that reach no copy.
    pub copies: Vec<u32>,
    /// The zones on the side, in the network's order.
    pub zones: Vec<Zone>,
    /// What the side saw.
    pub counts: SideCounts,
}
