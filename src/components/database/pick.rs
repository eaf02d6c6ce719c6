//! How calls to a database choose a copy: writes go to the primary; reads to the primary,
//! the replicas or any copy, balanced by the database's policy; with a quorum, every call
//! to the coordinator the policy picks. A call a copy makes to its own database (passing on a
//! write that reached a replica, or a read that must see its client's own write) goes to the
//! primary.

use super::failover::Role;
use super::state::{Loads, Shared};
use super::{Balance, PartitionMode, Reads};
use crate::components::op::Op;
use crate::engine::{InstanceId, Pick};
use crate::random::{Rng, mix64};
use rand::RngExt;
use std::cell::RefCell;
use std::rc::Rc;

/// The picker of one database's group in one run.
#[derive(Debug)]
pub struct DatabasePicker {
    first: InstanceId,
    count: u32,
    reads: Reads,
    balance: Balance,
    rng: Rng,
    cursor: usize,
    /// Requests at each copy, kept by the copies.
    loads: Loads,
    /// With failover: which copy is the primary (else always the first).
    role: Option<Role>,
    /// Scratch: the live replicas when the primary is not the first copy.
    others: Vec<InstanceId>,
    /// What a side of a partition does, and the copies a quorum write and read need.
    partition: (PartitionMode, (u32, u32)),
    /// Scratch: the live copies a caller reaches during a partition.
    side: Vec<InstanceId>,
    /// For a database with a `partition_mode`: the copies' state, where the calls that
    /// reach each side of a partition are counted.
    sides: Option<Rc<RefCell<Shared>>>,
}

impl DatabasePicker {
    /// The picker of copies `first..first + count`, reading their `loads`.
    pub fn new(
        first: InstanceId,
        count: u32,
        reads: Reads,
        balance: Balance,
        rng: Rng,
        loads: Loads,
    ) -> Self {
        DatabasePicker {
            first,
            count,
            reads,
            balance,
            rng,
            cursor: 0,
            loads,
            role: None,
            others: Vec::new(),
            partition: (PartitionMode::Consistent, (1, 1)),
            side: Vec::new(),
            sides: None,
        }
    }

    /// The same picker, for a database with failover: the primary is the copy `role` says.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// The same picker, whose callers during a partition see their side as `mode` says; a
    /// quorum write needs `need.0` copies and a read `need.1`.
    pub fn with_partition(mut self, mode: PartitionMode, need: (u32, u32)) -> Self {
        self.partition = (mode, need);
        self
    }

    /// The same picker, counting in `shared` the calls it refuses on each side of a
    /// partition.
    pub fn counting_sides(mut self, shared: Rc<RefCell<Shared>>) -> Self {
        self.sides = Some(shared);
        self
    }

    /// The copy that takes a call from a caller whose side (live copies it reaches) is
    /// `side`, during a partition (see the `partition` module). The primary is the one
    /// failover made, if it promoted a replica.
    fn pick_on_side(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        side: &[InstanceId],
    ) -> Option<InstanceId> {
        let (mode, (w, r)) = self.partition;
        let write = Op::of(op).is_write();
        if self.reads == Reads::Quorum {
            let need = if write { w } else { r } as usize;
            if side.is_empty() || (mode == PartitionMode::Consistent && side.len() < need) {
                return None;
            }
        } else if self.primary(side).is_none() {
            // The primary is across the cut (or down): a consistent side refuses; an
            // available one writes through its first live copy and reads from any of its
            // copies.
            if mode == PartitionMode::Consistent {
                return None;
            }
            if write || self.is_member(from) || self.reads == Reads::Primary {
                return side.first().copied();
            }
        }
        self.pick(from, op, key, side)
    }

    #[inline]
    fn is_member(&self, i: InstanceId) -> bool {
        i.wrapping_sub(self.first) < self.count
    }

    #[inline]
    fn load(&self, i: InstanceId) -> u32 {
        self.loads[(i - self.first) as usize].get()
    }

    /// The primary, if it is up (`live` is in member order, the primary first).
    #[inline]
    fn primary(&self, live: &[InstanceId]) -> Option<InstanceId> {
        match &self.role {
            None => live.first().copied().filter(|i| *i == self.first),
            Some(role) => {
                let p = self.first + role.get();
                live.binary_search(&p).is_ok().then_some(p)
            }
        }
    }

    /// One of `candidates` (not empty), by the balancing policy.
    fn balanced(&mut self, key: u64, candidates: &[InstanceId]) -> InstanceId {
        let n = candidates.len();
        let j = match self.balance {
            Balance::RoundRobin => {
                let j = self.cursor % n;
                self.cursor = j + 1;
                j
            }
            Balance::Random => self.rng.random_range(0..n),
            Balance::HashKey => (mix64(key) % n as u64) as usize,
            Balance::LeastConnections => {
                // From a rotating start, so ties do not always favour one copy.
                let start = self.cursor % n;
                self.cursor = self.cursor.wrapping_add(1);
                (0..n)
                    .map(|i| (start + i) % n)
                    .min_by_key(|j| self.load(candidates[*j]))
                    .unwrap_or(start)
            }
            Balance::PowerOfChoices => {
                let a = self.rng.random_range(0..n);
                if n == 1 {
                    a
                } else {
                    // A second, distinct copy.
                    let b = (a + 1 + self.rng.random_range(0..n - 1)) % n;
                    if self.load(candidates[b]) < self.load(candidates[a]) {
                        b
                    } else {
                        a
                    }
                }
            }
        };
        candidates[j]
    }
}

impl Pick for DatabasePicker {
    fn pick(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        live: &[InstanceId],
    ) -> Option<InstanceId> {
        if live.is_empty() {
            return None;
        }
        if self.reads == Reads::Quorum {
            return Some(self.balanced(key, live));
        }
        if Op::of(op).is_write() || self.is_member(from) {
            return self.primary(live);
        }
        match self.reads {
            Reads::Primary => self.primary(live),
            Reads::Any => Some(self.balanced(key, live)),
            Reads::Replicas => {
                let primary = self.primary(live);
                let mut others = Vec::new();
                let replicas = match primary {
                    Some(p) if p == self.first => &live[1..],
                    Some(p) => {
                        // A promoted replica is the primary: the others are the replicas.
                        others = std::mem::take(&mut self.others);
                        others.clear();
                        others.extend(live.iter().filter(|i| **i != p));
                        &others[..]
                    }
                    None => live,
                };
                let picked = if replicas.is_empty() {
                    primary
                } else {
                    Some(self.balanced(key, replicas))
                };
                if others.capacity() > 0 {
                    self.others = others;
                }
                picked
            }
            Reads::Quorum => unreachable!("handled above"),
        }
    }

    fn pick_reachable(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        live: &[InstanceId],
        reach: &dyn Fn(InstanceId) -> bool,
    ) -> Option<InstanceId> {
        let mut side = std::mem::take(&mut self.side);
        side.clear();
        side.extend(live.iter().copied().filter(|i| reach(*i)));
        let picked = self.pick_on_side(from, op, key, &side);
        self.side = side;
        if picked.is_none()
            && let Some(shared) = &self.sides
            && !self.is_member(from)
        {
            // A caller's call refused here arrives and fails on its side: that of the first
            // copy it reaches (up or down), or the side of no copy. (The calls sent to a
            // copy are counted there.)
            let first = (0..self.count).find(|j| reach(self.first + j));
            let side = first.unwrap_or(self.count);
            if let Some(counts) = shared.borrow_mut().sides.of_side(side) {
                if Op::of(op).is_write() {
                    counts.arrived_writes += 1;
                } else {
                    counts.arrived_reads += 1;
                }
                counts.unavailable += 1;
            }
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::stream;
    use std::cell::Cell;

    fn picker(reads: Reads, balance: Balance) -> DatabasePicker {
        let loads: Loads = (0..3).map(|_| Cell::new(0)).collect();
        DatabasePicker::new(10, 3, reads, balance, stream(1, "t"), loads)
    }

    const READ: u8 = Op::Read.code();
    const WRITE: u8 = Op::Write.code();
    const CALLER: InstanceId = 3;

    #[test]
    fn writes_go_to_the_primary_and_reads_where_the_database_says() {
        let live = [10, 11, 12];
        let mut p = picker(Reads::Replicas, Balance::RoundRobin);
        assert_eq!(p.pick(CALLER, WRITE, 0, &live), Some(10));
        let reads: Vec<_> = (0..4).map(|_| p.pick(CALLER, READ, 0, &live)).collect();
        assert_eq!(reads, [Some(11), Some(12), Some(11), Some(12)]);
        assert_eq!(
            p.pick(11, READ, 0, &live),
            Some(10),
            "a copy passes calls to the primary"
        );
        assert_eq!(
            p.pick(CALLER, READ, 0, &[10]),
            Some(10),
            "no replica up: the primary"
        );
        assert_eq!(
            p.pick(CALLER, WRITE, 0, &[11, 12]),
            None,
            "no primary: no write"
        );
        let mut p = picker(Reads::Primary, Balance::RoundRobin);
        assert_eq!(p.pick(CALLER, Op::Unset.code(), 0, &live), Some(10));
        let mut p = picker(Reads::Any, Balance::HashKey);
        let a = p.pick(CALLER, READ, 77, &live);
        assert_eq!(a, p.pick(CALLER, READ, 77, &live), "one key, one copy");
        let mut p = picker(Reads::Quorum, Balance::RoundRobin);
        let coordinators: Vec<_> = (0..3).map(|_| p.pick(CALLER, WRITE, 0, &live)).collect();
        assert_eq!(coordinators, [Some(10), Some(11), Some(12)]);
    }

    #[test]
    fn load_aware_policies_prefer_the_copy_with_fewer_requests() {
        let live = [10, 11, 12];
        let mut p = picker(Reads::Any, Balance::LeastConnections);
        p.loads[0].set(4);
        p.loads[1].set(1);
        p.loads[2].set(3);
        for _ in 0..5 {
            assert_eq!(p.pick(CALLER, READ, 0, &live), Some(11));
        }
        let mut p = picker(Reads::Any, Balance::PowerOfChoices);
        p.loads[0].set(9);
        p.loads[1].set(9);
        p.loads[2].set(0);
        let to_idle = (0..300)
            .filter(|_| p.pick(CALLER, READ, 0, &live) == Some(12))
            .count();
        // The idle copy wins whenever drawn, in 2 of the 3 pairs.
        assert!((170..230).contains(&to_idle), "{to_idle}");
    }
}
