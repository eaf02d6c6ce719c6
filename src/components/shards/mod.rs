//! `shards`: a router that sends each request to the one component owning its key (or its
//! client): databases, caches or services as shards, placed by hash mod N, on a
//! consistent-hash ring with virtual nodes, or by key ranges ([`placement`]).
//!
//! The router takes no time: it hands the call on to its shard as a tail call, so the
//! shard answers the caller directly. Shards can be added or removed at times in the run
//! (a timer set at start): at each change the keys requested so far are scanned once,
//! those whose owner changes are counted as moved, and their next request goes to the new
//! owner (where a cold cache misses; the router counts these first requests). Keys are
//! tracked only once touched (`FxHashMap`), never iterated into output.
//!
//! Reported: requests, keys touched and share per shard; the busiest shard's share and the
//! hot-spot index (busiest over mean), overall and per time window of the run's series;
//! keys moved per change. The instances of a router share one table and one set of these
//! statistics (every instance reports the router's figures); a shard's utilization is its
//! own component's. The estimate ([`estimate`]) gives the busiest shard's expected share
//! for the key law reaching the router, and the share of the key space a change moves.
//! For the estimates of caches behind it, the router hands each shard its own keys at
//! their full rates ([`keys`]).

pub mod estimate;
mod failure;
pub mod keys;
pub mod placement;
pub mod spec;
pub mod validate;

use super::Kind;
use crate::analysis::{Flow, MetricEstimate, Network, ServiceEstimate};
use crate::engine::{Call, CallId, Component, Ctx, InstanceId, Outcome};
use crate::metrics::declare::{Combine::*, MetricDecl, Shape, Unit::*};
use crate::metrics::{ErrorCause, InstanceReport};
use crate::model::graph::Link;
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use placement::{NO_SHARD, Placement, ShardIndex};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

/// A shard: a component of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// Component name.
    pub name: String,
    /// Its group id.
    pub group: u32,
}

/// What a router places on shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The request's key.
    Key,
    /// The request's client (user).
    Client,
}

/// What a change does.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// Shard `index` joins.
    Add(ShardIndex),
    /// Shard `index` leaves.
    Remove(ShardIndex),
    /// A new range table.
    Ranges(Placement),
}

impl ChangeKind {
    /// The placement after this change of `p`, among `shards`.
    pub fn apply(&self, p: &Placement, shards: &[Shard]) -> Placement {
        match self {
            ChangeKind::Add(s) => p.with_added(*s, &shards[*s as usize].name),
            ChangeKind::Remove(s) => p.with_removed(*s),
            ChangeKind::Ranges(t) => t.clone(),
        }
    }
}

/// A change of the shards at a time in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When.
    pub at: SimTime,
    /// What.
    pub kind: ChangeKind,
}

/// A validated shard router.
#[derive(Debug)]
pub struct ShardsDef {
    /// Every shard it ever has: those at the start, then those changes add.
    pub shards: Vec<Shard>,
    /// The placement at the start.
    pub placement: Placement,
    /// Changes, in time order.
    pub changes: Vec<Change>,
    /// What is placed.
    pub by: By,
    /// Its shards, for the call graph.
    pub links: Vec<Link>,
    /// The estimate's loads, computed once for the model.
    loads: OnceLock<estimate::Loads>,
    /// In a model with faults: the router watches its shards, places a dead shard's keys
    /// elsewhere and reports its load before, during and after failures (`failure.rs`).
    pub watch: bool,
}

impl ShardsDef {
    /// A router over `shards`.
    pub fn new(
        shards: Vec<Shard>,
        placement: Placement,
        changes: Vec<Change>,
        by: By,
        links: Vec<Link>,
    ) -> Self {
        ShardsDef {
            shards,
            placement,
            changes,
            by,
            links,
            loads: OnceLock::new(),
            watch: false,
        }
    }

    /// The same router, watching its shards fail when `watch`.
    pub fn watching(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    fn loads(&self, net: &Network) -> &estimate::Loads {
        self.loads.get_or_init(|| estimate::loads(self, net))
    }
}

impl Kind for ShardsDef {
    fn name(&self) -> &'static str {
        "shards"
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn crash_takes_targets_out_of_group(&self) -> bool {
        true
    }
    fn diagram_shape(&self) -> crate::components::DiagramShape {
        crate::components::DiagramShape {
            mermaid: ("[/", "\\]"),
            dot: "trapezium",
        }
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        if self.watch {
            failure::metrics()
        } else {
            METRICS
        }
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, _rng: Rng) -> Box<dyn Component> {
        let shared = Rc::new(RefCell::new(Table::new(&self)));
        Box::new(ShardsInstance::new(self, id, name, 0, shared))
    }
    fn instantiate_all(
        self: Arc<Self>,
        first: InstanceId,
        names: Vec<String>,
        _rngs: Vec<Rng>,
    ) -> Vec<Box<dyn Component>> {
        // One table and one set of statistics for the router, whatever instance routes.
        let shared = Rc::new(RefCell::new(Table::new(&self)));
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                Box::new(ShardsInstance::new(
                    Arc::clone(&self),
                    first + i as u32,
                    name,
                    i as u32,
                    Rc::clone(&shared),
                )) as Box<dyn Component>
            })
            .collect()
    }
    fn pass_flows(&self, net: &Network, flow: &Flow, _flows: &mut [Flow], routed: &mut [Flow]) {
        estimate::pass_flows(self.loads(net), self, flow, routed);
    }
    fn response(
        &self,
        net: &Network,
        _flow: &Flow,
        response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        (estimate::response(self.loads(net), self, response_ms), None)
    }
    fn partition_keys(
        &self,
        model: &crate::model::Model,
        keys: &crate::analysis::keys::KeyRates,
    ) -> Option<Vec<(usize, crate::analysis::keys::KeyRates)>> {
        keys::partition_keys(self, model, keys)
    }
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        warnings: &mut Vec<String>,
    ) -> Vec<MetricEstimate> {
        estimate::metric_estimates(self.loads(net), net, flow, warnings)
    }
}

/// A distribution of the router's (the same at every instance, so combined by maximum).
const fn per_router(name: &'static str, unit: crate::metrics::declare::Unit) -> MetricDecl {
    MetricDecl {
        name,
        unit,
        combine: Max,
        shape: Shape::Distribution,
        saturation: None,
        column: None,
    }
}

/// What a shard router reports. `forwarded` and its rate are each instance's own; the
/// others are the router's, reported alike by each of its instances. Per-shard lists are
/// in shard order: the listed shards, then those changes add.
pub const METRICS: &[MetricDecl] = &[
    MetricDecl::number("forwarded", Count, Sum),
    MetricDecl::number("forward_rate_per_s", PerSecond, Sum).column("throughput/s", 4),
    // Requests whose key no range holds (they fail as unavailable).
    MetricDecl::number("unrouted", Count, Max),
    // Shards in the table at the end.
    MetricDecl::number("shards", Level, Max),
    // Distinct keys (or clients) requested.
    MetricDecl::number("keys_touched", Count, Max),
    // The busiest shard's share of the requests.
    MetricDecl::number("busiest_share", Share, Max)
        .column("busiest shard", 0)
        .estimated(),
    // Requests to the busiest shard over the mean per shard (shards in the table at some
    // time in the window).
    MetricDecl::number("hot_spot_index", Ratio, Max)
        .column("hot spot", 1)
        .estimated(),
    // Keys requested before a change that the change moved to another shard.
    MetricDecl::number("moved_keys", Count, Max).column("keys moved", 2),
    // Moved keys over the keys requested before the changes.
    MetricDecl::number("moved_key_share", Share, Max),
    // Requests that reached a moved key's new shard for the first time.
    MetricDecl::number("moved_first_requests", Count, Max),
    per_router("shard_requests", Count),
    per_router("shard_share", Share),
    per_router("shard_keys", Count),
    per_router("busiest_share_by_window", Share),
    per_router("hot_spot_index_by_window", Ratio),
    per_router("moved_first_requests_by_window", Count),
    per_router("moved_keys_by_change", Count),
    per_router("moved_key_share_by_change", Share),
];

/// A touched key: its shard when last requested, the statistics epoch it was last counted
/// in, and whether a change moved it since.
#[derive(Debug, Clone, Copy)]
struct Touch {
    owner: ShardIndex,
    epoch: u32,
    moved: bool,
}

/// The router's state, shared by its instances: the placement in force, the keys touched,
/// and the statistics.
#[derive(Debug)]
struct Table {
    placement: Placement,
    /// Changes applied so far.
    applied: usize,
    /// Bumped when statistics restart, so keys count as touched anew.
    epoch: u32,
    touched: FxHashMap<u64, Touch>,
    /// Per shard, in the measurement window: requests, keys touched.
    requests: Vec<u64>,
    keys: Vec<u64>,
    /// Shards in the table at some time in the window.
    present: Vec<bool>,
    distinct: u64,
    unrouted: u64,
    moved_first: u64,
    /// Per change in the window: keys moved, keys touched before it.
    moved: Vec<u64>,
    touched_at_change: Vec<u64>,
    /// Time windows of the run (from time zero): width, the current one's index and end,
    /// its per-shard requests, which shards it saw, and each finished window's figures.
    window_ns: u64,
    window: u64,
    window_end: u64,
    window_requests: Vec<u64>,
    window_present: Vec<bool>,
    window_moved_first: u64,
    busiest_by_window: Vec<f64>,
    hot_spot_by_window: Vec<f64>,
    moved_first_by_window: Vec<f64>,
    /// Shard failures, when the router watches them (boxed: unused otherwise).
    failures: Option<Box<failure::Failures>>,
}

/// Series window when the run has no workload to take it from.
const DEFAULT_WINDOW: SimDuration = SimDuration(1_000_000_000);

impl Table {
    fn new(def: &ShardsDef) -> Self {
        let n = def.shards.len();
        let mut present = vec![false; n];
        for m in def.placement.members() {
            present[m as usize] = true;
        }
        Table {
            placement: def.placement.clone(),
            applied: 0,
            epoch: 1,
            touched: FxHashMap::default(),
            requests: vec![0; n],
            keys: vec![0; n],
            window_present: present.clone(),
            present,
            distinct: 0,
            unrouted: 0,
            moved_first: 0,
            moved: Vec::new(),
            touched_at_change: Vec::new(),
            window_ns: DEFAULT_WINDOW.0,
            window: 0,
            window_end: DEFAULT_WINDOW.0,
            window_requests: vec![0; n],
            window_moved_first: 0,
            busiest_by_window: Vec::new(),
            hot_spot_by_window: Vec::new(),
            moved_first_by_window: Vec::new(),
            failures: def
                .watch
                .then(|| Box::new(failure::Failures::new(def.shards.len(), &def.placement))),
        }
    }

    /// Counts a request for `key`, owned by `owner`, at time `now_ns`.
    #[inline]
    fn record(&mut self, key: u64, owner: ShardIndex, now_ns: u64) {
        if now_ns >= self.window_end {
            self.next_window(now_ns);
        }
        let o = owner as usize;
        self.requests[o] += 1;
        self.window_requests[o] += 1;
        let epoch = self.epoch;
        match self.touched.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Touch {
                    owner,
                    epoch,
                    moved: false,
                });
                self.keys[o] += 1;
                self.distinct += 1;
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let t = e.get_mut();
                if t.epoch != epoch {
                    self.keys[o] += 1;
                    self.distinct += 1;
                } else if t.owner != owner {
                    // Touched again in this window, on a shard new to it.
                    self.keys[o] += 1;
                }
                if t.moved {
                    self.moved_first += 1;
                    self.window_moved_first += 1;
                }
                *t = Touch {
                    owner,
                    epoch,
                    moved: false,
                };
            }
        }
    }

    /// Closes the time windows up to the one holding `now_ns`.
    #[cold]
    #[inline(never)]
    fn next_window(&mut self, now_ns: u64) {
        let target = now_ns / self.window_ns;
        while self.window < target {
            let (b, h) = window_figures(&self.window_requests, &self.window_present);
            self.busiest_by_window.push(b);
            self.hot_spot_by_window.push(h);
            self.moved_first_by_window
                .push(self.window_moved_first as f64);
            self.window_moved_first = 0;
            self.window_requests.iter_mut().for_each(|r| *r = 0);
            // The table's shards: with a shard down, those the router would use with all up.
            let table = self.failures.as_ref().and_then(|f| f.configured());
            let table = table.unwrap_or(&self.placement);
            self.window_present = members_mask(table, self.window_requests.len());
            self.window += 1;
        }
        self.window_end = (self.window + 1).saturating_mul(self.window_ns);
    }

    /// Applies `change`: the keys touched so far whose owner changes are moved.
    #[cold]
    fn apply(&mut self, change: &Change, shards: &[Shard], now_ns: u64) {
        if now_ns >= self.window_end {
            self.next_window(now_ns);
        }
        let next = match &mut self.failures {
            None => change.kind.apply(&self.placement, shards),
            Some(f) => f.change(change, &self.placement, shards),
        };
        let mut moved = 0;
        // A scan at a rare event: the order of the keys does not matter to a count.
        for (key, t) in self.touched.iter_mut() {
            if self.placement.owner(*key) != next.owner(*key) {
                moved += 1;
                t.moved = true;
            }
        }
        self.moved.push(moved);
        self.touched_at_change.push(self.touched.len() as u64);
        for m in next.members() {
            self.present[m as usize] = true;
            self.window_present[m as usize] = true;
        }
        self.placement = next;
        self.applied += 1;
    }

    /// Forgets the statistics of the warm-up.
    fn restart(&mut self) {
        self.epoch += 1;
        self.requests.iter_mut().for_each(|r| *r = 0);
        self.keys.iter_mut().for_each(|r| *r = 0);
        self.present = members_mask(&self.placement, self.requests.len());
        self.distinct = 0;
        self.unrouted = 0;
        self.moved_first = 0;
        self.moved.clear();
        self.touched_at_change.clear();
        if let Some(f) = &mut self.failures {
            f.restart(&self.requests, &self.placement);
        }
    }

    /// The per-window figures up to the window holding `end` (the current one included):
    /// busiest share, hot-spot index, first requests of moved keys.
    fn windows(&self, end: SimTime) -> [Vec<f64>; 3] {
        let mut all = [
            self.busiest_by_window.clone(),
            self.hot_spot_by_window.clone(),
            self.moved_first_by_window.clone(),
        ];
        let count = end.0.div_ceil(self.window_ns).max(1) as usize;
        if all[0].len() < count {
            let (b, h) = window_figures(&self.window_requests, &self.window_present);
            all[0].push(b);
            all[1].push(h);
            all[2].push(self.window_moved_first as f64);
        }
        // As many as the workloads' series: a window after the last event has none.
        for list in &mut all {
            list.resize(count, 0.0);
        }
        all
    }
}

/// Which of `n` shards `p` places keys on.
fn members_mask(p: &Placement, n: usize) -> Vec<bool> {
    let mut mask = vec![false; n];
    for m in p.members() {
        mask[m as usize] = true;
    }
    mask
}

/// The busiest shard's share of `requests`, and its load over the mean of the `present`
/// shards (both 0 without requests).
fn window_figures(requests: &[u64], present: &[bool]) -> (f64, f64) {
    let total: u64 = requests.iter().sum();
    if total == 0 {
        return (0.0, 0.0);
    }
    let max = requests.iter().copied().max().unwrap_or(0) as f64;
    let count = present.iter().filter(|p| **p).count().max(1) as f64;
    (max / total as f64, max / (total as f64 / count))
}

/// Timer tag of a change (its index is the timer's data).
const CHANGE: u32 = 1;

/// One router instance.
pub struct ShardsInstance {
    def: Arc<ShardsDef>,
    id: InstanceId,
    name: String,
    /// Position among the router's instances: the first sets the change timers and
    /// restarts the shared statistics.
    index: u32,
    table: Rc<RefCell<Table>>,
    forwarded: u64,
    since: SimTime,
}

impl ShardsInstance {
    fn new(
        def: Arc<ShardsDef>,
        id: InstanceId,
        name: String,
        index: u32,
        table: Rc<RefCell<Table>>,
    ) -> Self {
        ShardsInstance {
            def,
            id,
            name,
            index,
            table,
            forwarded: 0,
            since: SimTime::ZERO,
        }
    }
}

impl Component for ShardsInstance {
    fn start(&mut self, ctx: &mut Ctx) {
        let mut t = self.table.borrow_mut();
        if t.window == 0 {
            t.window_ns = ctx
                .stats
                .first()
                .map_or(DEFAULT_WINDOW.0, |s| s.window_ns)
                .max(1);
            t.window_end = t.window_ns;
        }
        if self.index != 0 {
            return;
        }
        let now = ctx.now();
        for (i, c) in self.def.changes.iter().enumerate().skip(t.applied) {
            if c.at >= now {
                ctx.timer(self.id, c.at.since(now), CHANGE, i as u32);
            }
        }
    }

    #[inline]
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        let c = ctx.call(call);
        let key = match self.def.by {
            By::Key => c.key,
            By::Client => u64::from(ctx.requests[c.request as usize].user),
        };
        let now = ctx.now().0;
        let mut t = self.table.borrow_mut();
        if self.def.watch
            && t.failures
                .as_ref()
                .is_some_and(|f| f.seen != ctx.membership())
        {
            t.shards_changed(&self.def.shards, ctx);
        }
        let owner = t.placement.owner(key);
        if owner == NO_SHARD {
            t.unrouted += 1;
            drop(t);
            ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
            return;
        }
        t.record(key, owner, now);
        drop(t);
        self.forwarded += 1;
        ctx.forward(call, self.def.shards[owner as usize].group);
    }

    fn on_reply(&mut self, _parent: CallId, _child: &Call, _current: bool, _ctx: &mut Ctx) {
        // Calls are handed on as tail calls: no reply comes back here.
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        let mut t = self.table.borrow_mut();
        if tag != CHANGE || data as usize != t.applied {
            return;
        }
        let change = &self.def.changes[data as usize];
        t.apply(change, &self.def.shards, ctx.now().0);
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.forwarded = 0;
        self.since = now;
        if self.index == 0 {
            self.table.borrow_mut().restart();
        }
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let t = self.table.borrow();
        let window_s = now.since(self.since).as_secs_f64();
        let total: u64 = t.requests.iter().sum();
        let (busiest, hot_spot) = window_figures(&t.requests, &t.present);
        let moved: u64 = t.moved.iter().sum();
        let before: u64 = t.touched_at_change.iter().sum();
        let share = |x: u64, of: u64| if of > 0 { x as f64 / of as f64 } else { 0.0 };
        let [busiest_by_window, hot_by_window, moved_first_by_window] = t.windows(now);
        let mut r = InstanceReport::new(&self.name, self.def.metrics());
        r.set("forwarded", self.forwarded as f64)
            .set(
                "forward_rate_per_s",
                if window_s > 0.0 {
                    self.forwarded as f64 / window_s
                } else {
                    0.0
                },
            )
            .set("unrouted", t.unrouted as f64)
            .set("shards", t.placement.members().len() as f64)
            .set("keys_touched", t.distinct as f64)
            .set("busiest_share", busiest)
            .set("hot_spot_index", hot_spot)
            .set("moved_keys", moved as f64)
            .set("moved_key_share", share(moved, before))
            .set("moved_first_requests", t.moved_first as f64)
            .set_distribution(
                "shard_requests",
                t.requests.iter().map(|x| *x as f64).collect(),
            )
            .set_distribution(
                "shard_share",
                t.requests.iter().map(|x| share(*x, total)).collect(),
            )
            .set_distribution("shard_keys", t.keys.iter().map(|x| *x as f64).collect())
            .set_distribution("busiest_share_by_window", busiest_by_window)
            .set_distribution("hot_spot_index_by_window", hot_by_window)
            .set_distribution("moved_first_requests_by_window", moved_first_by_window)
            .set_distribution(
                "moved_keys_by_change",
                t.moved.iter().map(|x| *x as f64).collect(),
            )
            .set_distribution(
                "moved_key_share_by_change",
                t.moved
                    .iter()
                    .zip(&t.touched_at_change)
                    .map(|(m, b)| share(*m, *b))
                    .collect(),
            );
        if let Some(f) = &t.failures {
            f.report(&t.requests, &mut r);
        }
        r
    }
}
