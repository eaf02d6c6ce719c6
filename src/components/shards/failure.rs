//! A shard router whose shards fail (in a model with faults): when every instance of a
//! shard is down (a crash takes a shard's instance out of its group), the router places
//! the shard's keys as its strategy says, as if the shard had been removed: with hash mod
//! N every key is rehashed over the live shards (most keys move); on a consistent-hash
//! ring each of its keys goes to the next live point (without virtual nodes, all of them
//! to one neighbour; with many, spread over every live shard); a range table has no
//! other owner for a range, whose requests fail as unavailable until it is back. When the
//! shard is back its keys return. The keys touched so far that a failure or a recovery
//! moves are counted, and their first requests at their new shard as for a change.
//!
//! The router notices a change of its shards' live members at the next request it routes
//! (one comparison of the engine's membership counter per request, only in a model with
//! faults). The load per shard and the hot-spot index are reported for three phases:
//! **before** the first failure, **during** failures (while any shard is down), and
//! **after** (every shard up again after one was down). The hot-spot index of a phase is
//! the busiest shard's requests over the mean per shard of the table, dead shards
//! included: the load the busiest carries against what each would with all up.

use super::placement::Placement;
use super::{Change, METRICS, Shard, Table, per_router};
use crate::engine::Ctx;
use crate::metrics::InstanceReport;
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use std::sync::OnceLock;

/// The phases, as their metrics name them.
const PHASES: [&str; 3] = ["before", "during", "after"];
const REQUESTS: [&str; 3] = [
    "shard_requests_before",
    "shard_requests_during",
    "shard_requests_after",
];
const HOT_SPOT: [&str; 3] = [
    "hot_spot_index_before",
    "hot_spot_index_during",
    "hot_spot_index_after",
];

/// What a router watching its shards reports besides its own metrics: shard failures, the
/// keys they moved, and per phase the requests per shard and the hot-spot index.
pub fn metrics() -> &'static [MetricDecl] {
    static WITH: OnceLock<&'static [MetricDecl]> = OnceLock::new();
    WITH.get_or_init(|| {
        let mut all = METRICS.to_vec();
        all.push(MetricDecl::number("shard_failures", Count, Max));
        all.push(MetricDecl::number("failure_moved_keys", Count, Max));
        all.extend(HOT_SPOT.map(|name| MetricDecl::number(name, Ratio, Max)));
        all.extend(REQUESTS.map(|name| per_router(name, Count)));
        all.push(per_router("moved_keys_by_failure", Count));
        Box::leak(all.into_boxed_slice())
    })
}

/// The failure state of a router's table.
#[derive(Debug)]
pub struct Failures {
    /// The engine's membership count when the shards were last looked at.
    pub seen: u64,
    /// Each shard down now.
    down: Vec<bool>,
    /// The placement the router would use with every shard up, while some is down.
    configured: Option<Placement>,
    /// 0 before the first failure, 1 while a shard is down, 2 after.
    phase: usize,
    /// The router's requests per shard when the phase began.
    snapshot: Vec<u64>,
    /// Requests per shard in each phase, up to its last start.
    requests: [Vec<u64>; 3],
    /// Shards in the table at some time of each phase.
    present: [Vec<bool>; 3],
    /// Shards that went down.
    failures: u64,
    /// Keys moved at each failure or recovery.
    moved: Vec<u64>,
}

impl Failures {
    /// No failure yet, `n` shards, placed by `placement` at the start.
    pub fn new(n: usize, placement: &Placement) -> Self {
        let mut f = Failures {
            seen: 0,
            down: vec![false; n],
            configured: None,
            phase: 0,
            snapshot: vec![0; n],
            requests: [vec![0; n], vec![0; n], vec![0; n]],
            present: [vec![false; n], vec![false; n], vec![false; n]],
            failures: 0,
            moved: Vec::new(),
        };
        f.mark(placement);
        f
    }

    /// The shards of `p` are in the table in the current phase.
    fn mark(&mut self, p: &Placement) {
        for m in p.members() {
            self.present[self.phase][m as usize] = true;
        }
    }

    /// `configured` without the shards that are down (unchanged if none would be left).
    fn effective(&self, configured: &Placement) -> Placement {
        let mut p = configured.clone();
        for (s, _) in self.down.iter().enumerate().filter(|(_, d)| **d) {
            p = p.with_removed(s as u32);
        }
        if p.members().is_empty() {
            configured.clone()
        } else {
            p
        }
    }

    /// The placement after `change`, from `placement` in force now.
    pub fn change(
        &mut self,
        change: &Change,
        placement: &Placement,
        shards: &[Shard],
    ) -> Placement {
        let next = match self.configured.take() {
            None => {
                let next = change.kind.apply(placement, shards);
                self.mark(&next);
                return next;
            }
            Some(c) => change.kind.apply(&c, shards),
        };
        self.mark(&next);
        let effective = self.effective(&next);
        self.configured = Some(next);
        effective
    }

    /// Adds the requests since the phase began to it.
    fn close_phase(&mut self, requests: &[u64]) {
        for (i, r) in requests.iter().enumerate() {
            self.requests[self.phase][i] += r - self.snapshot[i];
        }
        self.snapshot.copy_from_slice(requests);
    }

    /// The placement the router would use with every shard up, while some is down.
    pub fn configured(&self) -> Option<&Placement> {
        self.configured.as_ref()
    }

    /// The statistics restart (end of warm-up), in the phase of now; `placement` is the
    /// one in force.
    pub fn restart(&mut self, requests: &[u64], placement: &Placement) {
        self.snapshot.copy_from_slice(requests);
        for p in 0..3 {
            self.requests[p].iter_mut().for_each(|r| *r = 0);
            self.present[p].iter_mut().for_each(|x| *x = false);
        }
        self.failures = 0;
        self.moved.clear();
        let table = self.configured.clone().unwrap_or_else(|| placement.clone());
        self.mark(&table);
    }

    /// Sets the failure metrics of a report, `requests` the router's per shard.
    pub fn report(&self, requests: &[u64], r: &mut InstanceReport) {
        let mut per = self.requests.clone();
        for (i, x) in requests.iter().enumerate() {
            per[self.phase][i] += x - self.snapshot[i];
        }
        r.set("shard_failures", self.failures as f64)
            .set("failure_moved_keys", self.moved.iter().sum::<u64>() as f64)
            .set_distribution(
                "moved_keys_by_failure",
                self.moved.iter().map(|m| *m as f64).collect(),
            );
        for p in 0..PHASES.len() {
            let total: u64 = per[p].iter().sum();
            let max = per[p].iter().copied().max().unwrap_or(0);
            let shards = self.present[p].iter().filter(|x| **x).count().max(1);
            let hot = if total > 0 {
                max as f64 * shards as f64 / total as f64
            } else {
                0.0
            };
            r.set(HOT_SPOT[p], hot);
            r.set_distribution(REQUESTS[p], per[p].iter().map(|x| *x as f64).collect());
        }
    }
}

impl Table {
    /// The live members of some group changed: if a shard went down or came back, its
    /// keys move as the strategy says, and a new phase begins.
    #[cold]
    #[inline(never)]
    pub(super) fn shards_changed(&mut self, shards: &[Shard], ctx: &Ctx) {
        let now = ctx.now().0;
        if now >= self.window_end {
            self.next_window(now);
        }
        let Some(f) = self.failures.as_mut() else {
            return;
        };
        f.seen = ctx.membership();
        let down: Vec<bool> = shards
            .iter()
            .map(|s| ctx.groups[s.group as usize].live().is_empty())
            .collect();
        if down == f.down {
            return;
        }
        f.failures += down
            .iter()
            .zip(&f.down)
            .filter(|(now, before)| **now && !**before)
            .count() as u64;
        f.close_phase(&self.requests);
        let any = down.iter().any(|d| *d);
        f.phase = match (any, f.phase) {
            (true, _) => 1,
            (false, 0) => 0,
            (false, _) => 2,
        };
        let configured = f
            .configured
            .take()
            .unwrap_or_else(|| self.placement.clone());
        f.mark(&configured);
        f.down = down;
        let next = f.effective(&configured);
        f.configured = any.then_some(configured);
        let mut moved = 0;
        // A scan at a rare event: the order of the keys does not matter to a count.
        for (key, t) in self.touched.iter_mut() {
            if self.placement.owner(*key) != next.owner(*key) {
                moved += 1;
                t.moved = true;
            }
        }
        f.moved.push(moved);
        for m in next.members() {
            self.present[m as usize] = true;
            self.window_present[m as usize] = true;
        }
        self.placement = next;
    }
}
