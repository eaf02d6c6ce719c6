//! Primary failover of a database with replicas (`"failover": {"delay": "10s"}`).
//!
//! When the primary crashes, every other copy sets a timer `delay` away (the time to
//! detect the crash and elect a successor). The writes still on their way to a replica at
//! the crash (within their replication lag) had not left the primary's log: if a replica
//! is promoted they never arrive anywhere (if the primary comes back first, they arrive
//! as if nothing had happened). The first live copy whose timer fires, if the
//! primary is still down, promotes the **most up-to-date live replica**: the one missing
//! the fewest acknowledged writes (ties: the lowest replica number). From then on writes
//! (and the reads meant for the primary) go to it, and the other copies replicate from it.
//! The writes the old primary had acknowledged that the new one had not applied (the
//! asynchronous replication lag) are lost: they are counted (`lost_writes`), the newest
//! acknowledged version of their key goes back to the new primary's, and every other copy
//! drops them too (it follows the new primary's history; a lost version still on its way
//! to a copy is ignored when it arrives). Writes the old primary had not acknowledged
//! failed back to their callers when it crashed, and are not counted.
//!
//! If no replica is up when the delay ends, the database waits: the first replica to come
//! back is promoted at once; the old primary coming back first takes its role back. An old
//! primary that comes back after a promotion rejoins as a **replica** (it keeps its name,
//! `db.primary`; the names are of the roles at the start). Without `failover` nothing here
//! runs: a crashed primary fails writes until it is back.
//!
//! Which copy is the primary is a cell shared by the copies and the database's picker
//! ([`Role`]), the copy index of the primary (0 at the start).

use super::spec::DatabaseSpec;
use super::state::Shared;
use super::{DatabaseDef, METRICS, Reads};
use crate::engine::{Ctx, InstanceId};
use crate::error::{Errors, join};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::time::{SimDuration, SimTime};
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::OnceLock;

/// The copy index of a database's primary, shared by its copies and its picker.
pub type Role = Rc<Cell<u32>>;

/// Timer tag of a failover timer; its data is the epoch it belongs to.
pub const TAG_FAILOVER: u32 = 4;

/// What a database's copies share about failover.
#[derive(Debug, Default)]
pub struct Failover {
    /// Bumped when the primary crashes and when a crash is resolved: a timer of another
    /// epoch is void.
    pub epoch: u32,
    /// When the primary crashed, while no copy has taken its place.
    pub down_since: Option<SimTime>,
    /// Promotions in the measurement window.
    pub failovers: u64,
    /// Acknowledged writes lost at those promotions.
    pub lost_writes: u64,
    /// The version of each key at each copy when the primary crashed (`Shared::applied`),
    /// while it is down: the writes still on their way to a replica then (within their
    /// lag) were not shipped yet, and a promotion finds the copies as they were.
    pub at_crash: Vec<u32>,
    /// Versions discarded at a promotion, by key slot: `(kept, newest)`, the versions after
    /// `kept` up to `newest` no longer exist; a copy receiving one ignores it.
    pub discarded: FxHashMap<u32, (u32, u32)>,
}

impl Failover {
    /// True when version `version` of the key in `slot` was discarded at a promotion.
    #[inline]
    pub fn discards(&self, slot: u32, version: u32) -> bool {
        self.discarded
            .get(&slot)
            .is_some_and(|(kept, newest)| version > *kept && version <= *newest)
    }
}

impl Shared {
    /// Acknowledged writes copy `copy` has not applied (over every written key).
    pub fn missing_acked(&self, copy: usize) -> u64 {
        self.keys
            .iter()
            .enumerate()
            .map(|(s, k)| u64::from(k.acked.saturating_sub(self.applied[s * self.copies + copy])))
            .sum()
    }

    /// The copy among `candidates` missing the fewest acknowledged writes (the first of
    /// those tied); `None` when there is none.
    pub fn most_up_to_date(&self, candidates: impl Iterator<Item = u32>) -> Option<u32> {
        candidates
            .map(|j| (self.missing_acked(j as usize), j))
            .min()
            .map(|(_, j)| j)
    }

    /// The copies go back to the versions they had when the primary crashed: what reached
    /// them since was still in the crashed primary's log.
    pub fn back_to_crash(&mut self) {
        let at_crash = std::mem::take(&mut self.failover.at_crash);
        let n = at_crash.len().min(self.applied.len());
        self.applied[..n].copy_from_slice(&at_crash[..n]);
    }

    /// Copy `new` becomes the primary: every key goes back to the version it has, in the
    /// history every copy follows from now on. Returns the acknowledged writes lost.
    pub fn promote(&mut self, new: usize) -> u64 {
        let copies = self.copies;
        let mut lost = 0u64;
        for s in 0..self.keys.len() {
            let kept = self.applied[s * copies + new];
            let k = &mut self.keys[s];
            if k.acked > kept {
                lost += u64::from(k.acked - kept);
                k.acked = kept;
            }
            if k.written > kept {
                let newest = k.written;
                self.failover.discarded.insert(s as u32, (kept, newest));
            }
            for a in &mut self.applied[s * copies..(s + 1) * copies] {
                *a = (*a).min(kept);
            }
        }
        lost
    }
}

/// The database's `failover` at `path`: its delay, for a primary with replicas.
pub fn validate(
    errs: &mut Errors,
    path: &str,
    d: &DatabaseSpec,
    copies: u32,
    reads: Reads,
) -> Option<SimDuration> {
    let f = d.failover.as_ref()?;
    let p = join(path, "failover");
    if reads == Reads::Quorum {
        errs.push(
            p,
            "applies to a primary with replicas; quorum copies have no primary to replace (remove failover, or quorum)",
        );
    } else if copies < 2 {
        errs.push(
            p,
            "needs a replica to promote, but the database has none (set replicas to 1 or more)",
        );
    }
    Some(f.delay.to_sim())
}

/// What a database with failover reports: its metrics, then the number of promotions,
/// the acknowledged writes they lost (both the database's, alike at every copy), and
/// whether each copy is the primary at the end (1 or 0; the database's: 1).
pub fn metrics() -> &'static [MetricDecl] {
    static WITH: OnceLock<&'static [MetricDecl]> = OnceLock::new();
    WITH.get_or_init(|| {
        let mut all = METRICS.to_vec();
        all.extend([
            MetricDecl::number("failovers", Count, Max),
            MetricDecl::number("lost_writes", Count, Max),
            MetricDecl::number("primary", Count, Sum),
        ]);
        Box::leak(all.into_boxed_slice())
    })
}

/// The copies of one database as a copy sees them: what failover needs of a copy.
pub struct Copies<'a> {
    /// The database.
    pub def: &'a DatabaseDef,
    /// Their shared state.
    pub shared: &'a RefCell<Shared>,
    /// Which copy is the primary.
    pub role: &'a Cell<u32>,
    /// The first copy's instance.
    pub first: InstanceId,
    /// The copy acting.
    pub copy: usize,
}

impl Copies<'_> {
    /// The primary (this copy) crashes now: the others will see whether to replace it
    /// once the delay has passed.
    pub fn primary_crashed(&self, ctx: &mut Ctx) {
        let Some(delay) = self.def.failover else {
            return;
        };
        let mut sh = self.shared.borrow_mut();
        sh.failover.epoch = sh.failover.epoch.wrapping_add(1);
        sh.failover.down_since = Some(ctx.now());
        sh.failover.at_crash = sh.applied.clone();
        let epoch = sh.failover.epoch;
        for j in 0..self.def.copies {
            if j as usize != self.copy {
                ctx.timer(self.first + j, delay, TAG_FAILOVER, epoch);
            }
        }
    }

    /// This copy starts (the run begins, or it comes back after a crash): the primary
    /// back before its replacement takes its role again; a replica back while the
    /// database waits for one is promoted once the delay has passed.
    pub fn started(&self, ctx: &mut Ctx) {
        let Some(delay) = self.def.failover else {
            return;
        };
        let mut sh = self.shared.borrow_mut();
        let Some(since) = sh.failover.down_since else {
            return;
        };
        if self.role.get() as usize == self.copy {
            // Back in time: what it had shipped reached the replicas.
            sh.failover.at_crash = Vec::new();
            sh.failover.down_since = None;
            sh.failover.epoch = sh.failover.epoch.wrapping_add(1);
            return;
        }
        let wait = since.after(delay).since(ctx.now());
        let me = self.first + self.copy as u32;
        ctx.timer(me, wait, TAG_FAILOVER, sh.failover.epoch);
    }

    /// A failover timer of epoch `epoch` fires at this (live) copy: if the primary is still
    /// down, the most up-to-date live replica takes its place.
    pub fn timer(&self, epoch: u32, ctx: &mut Ctx) {
        let mut sh = self.shared.borrow_mut();
        if sh.failover.epoch != epoch || sh.failover.down_since.is_none() {
            return;
        }
        let old = self.role.get();
        if ctx.is_up(self.first + old) {
            sh.failover.at_crash = Vec::new();
            sh.failover.down_since = None;
            return;
        }
        let mut live = (0..self.def.copies).filter(|j| *j != old && ctx.is_up(self.first + j));
        if live.next().is_none() {
            return; // no replica up: the first one back is promoted
        }
        sh.back_to_crash();
        let live = (0..self.def.copies).filter(|j| *j != old && ctx.is_up(self.first + j));
        let Some(new) = sh.most_up_to_date(live) else {
            return;
        };
        let lost = sh.promote(new as usize);
        let f = &mut sh.failover;
        f.failovers += 1;
        f.lost_writes += lost;
        f.down_since = None;
        f.epoch = f.epoch.wrapping_add(1);
        self.role.set(new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promotion_finds_the_copies_as_they_were_at_the_crash() {
        let mut s = Shared::new(2, 1);
        let (slot, v) = s.write(1, 0);
        s.ack(slot, v, SimTime(1));
        s.failover.at_crash = s.applied.clone();
        // Version 1 reaches the replica after the crash: it was not shipped.
        s.apply(slot, 1, 1);
        s.back_to_crash();
        assert_eq!(s.version_at(1, 1), 0);
        assert!(s.failover.at_crash.is_empty());
        assert_eq!(s.promote(1), 1);
    }

    #[test]
    fn a_promotion_loses_the_acknowledged_writes_the_new_primary_lacks() {
        // Three copies; key 1 written 3 times at the primary, key 2 once.
        let mut s = Shared::new(3, 1);
        for _ in 0..3 {
            let (slot, v) = s.write(1, 0);
            s.ack(slot, v, SimTime(v as u64));
        }
        let (k2, v) = s.write(2, 0);
        s.ack(k2, v, SimTime(9));
        // Replica 1 has key 1 at version 1 and key 2; replica 2 has key 1 at version 2.
        s.apply(0, 1, 1);
        s.apply(k2, 1, 1);
        s.apply(0, 2, 2);
        assert_eq!(s.missing_acked(1), 2);
        assert_eq!(s.missing_acked(2), 2, "key 1 one behind, key 2 missing");
        assert_eq!(s.missing_acked(0), 0);
        assert_eq!(
            s.most_up_to_date([1, 2].into_iter()),
            Some(1),
            "tied: the first"
        );
        s.apply(k2, 2, 1);
        assert_eq!(s.most_up_to_date([1, 2].into_iter()), Some(2));
        assert_eq!(s.most_up_to_date(std::iter::empty()), None);
        let lost = s.promote(1);
        assert_eq!(lost, 2, "versions 2 and 3 of key 1");
        assert_eq!(
            s.acked(1).0,
            1,
            "the history goes back to the new primary's"
        );
        assert_eq!(s.version_at(1, 2), 1, "the other copies follow it");
        assert_eq!(s.version_at(1, 0), 1);
        assert_eq!(
            s.version_at(2, 2),
            1,
            "a copy keeps what the new primary has"
        );
        // A lost version still on its way is ignored; a new write goes past it.
        s.apply(0, 1, 3);
        assert_eq!(s.version_at(1, 1), 1);
        let (_, v) = s.write(1, 1);
        assert_eq!(v, 4);
        s.apply(0, 2, 4);
        assert_eq!(s.version_at(1, 2), 4);
    }
}
