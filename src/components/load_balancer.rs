//! `load_balancer`: spreads calls over the instances of its backends. Round robin, weighted
//! round robin, random, least connections, power of d choices, hash of key or client.
//!
//! The balancer sees its own outstanding calls to each backend instantly and exactly (as a
//! proxy does), so least connections is join-the-shortest-queue. It picks among the live
//! members of its backend groups, as the engine reports them when it picks: an instance
//! that is down gets no calls, and with none live a call fails as unavailable.
//!
//! A crashed instance that stays in its group (a service) is not known to be down: the
//! balancer keeps sending to it until its health checks or outlier ejection
//! ([`health`]) take it out of the picks.

mod estimate;
pub mod health;
pub mod spec;
pub mod validate;

use super::Kind;
use crate::analysis::{Flow, Network, ServiceEstimate};
use crate::engine::{Call, CallId, Component, Ctx, InstanceId, Outcome};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::metrics::{ErrorCause, InstanceReport};
use crate::model::graph::Link;
use crate::random::{Rng, mix64};
use crate::time::SimTime;
use health::{HealthCheck, OutlierEjection, Watch};
use rand::RngExt;
use std::sync::Arc;

/// How a balancer picks a backend instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Each instance in turn.
    RoundRobin,
    /// Each instance in turn, as often as its weight (smooth weighted round robin).
    WeightedRoundRobin,
    /// Uniformly at random.
    Random,
    /// The instance with the fewest calls outstanding.
    LeastConnections,
    /// Of `choices` instances drawn at random, the one with the fewest calls outstanding.
    PowerOfChoices {
        /// Instances drawn.
        choices: u32,
        /// Draw distinct instances (otherwise with replacement).
        distinct: bool,
    },
    /// By a hash of the request's key.
    HashKey,
    /// By a hash of the request's client.
    HashClient,
}

/// Most instances a power-of-choices balancer draws.
pub const MAX_CHOICES: usize = 8;

/// A validated balancer.
#[derive(Debug, Clone)]
pub struct BalancerDef {
    /// Policy.
    pub policy: Policy,
    /// Pick among the backends in the caller's zone first.
    pub prefer_zone: bool,
    /// Backend instances.
    pub backends: Vec<InstanceId>,
    /// Weight of each backend instance.
    pub weights: Vec<u32>,
    /// Its backends, for the call graph.
    pub links: Vec<Link>,
    /// Active health checks, if any.
    pub health_check: Option<HealthCheck>,
    /// Passive outlier ejection, if any.
    pub outlier_ejection: Option<OutlierEjection>,
}

impl BalancerDef {
    /// True when it watches its backends' health (health checks or outlier ejection).
    pub fn watches(&self) -> bool {
        self.health_check.is_some() || self.outlier_ejection.is_some()
    }
}

impl Kind for BalancerDef {
    fn name(&self) -> &'static str {
        "load_balancer"
    }
    fn diagram_shape(&self) -> crate::components::DiagramShape {
        crate::components::DiagramShape {
            mermaid: ("{{", "}}"),
            dot: "hexagon",
        }
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        if self.watches() {
            WATCHING_METRICS
        } else {
            METRICS
        }
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component> {
        Box::new(BalancerInstance::new(self, id, name, rng))
    }
    fn pass_flows(&self, net: &Network, flow: &Flow, flows: &mut [Flow], _routed: &mut [Flow]) {
        estimate::pass_flows(self, net, flow, flows);
    }
    fn response(
        &self,
        net: &Network,
        _flow: &Flow,
        response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        (estimate::response(self, net, response_ms), None)
    }
}

/// One balancer instance.
pub struct BalancerInstance {
    def: Arc<BalancerDef>,
    id: InstanceId,
    name: String,
    rng: Rng,
    /// Per backend instance (its slot, the position in `backends`): calls outstanding and
    /// sent.
    outstanding: Vec<u32>,
    sent: Vec<u64>,
    /// Slot of each instance, indexed by instance id minus `first`.
    slot_of: Vec<u32>,
    first: InstanceId,
    /// The groups the backends belong to (read at start).
    groups: Vec<u32>,
    /// Slots of the backends that are live, in backend order: the candidates of a pick.
    live: Vec<u32>,
    /// The engine's membership count `live` was read at.
    seen: u64,
    cursor: usize,
    current_weight: Vec<i64>,
    since: SimTime,
    /// With `prefer_zone`: the live candidates in each zone (indexed by zone, 0 unused)
    /// and a round-robin cursor for each, and the zone of each slot.
    by_zone: Vec<Vec<u32>>,
    zone_cursor: Vec<usize>,
    slot_zone: Vec<u16>,
    /// With health checks or outlier ejection: the backends' health as this instance
    /// sees it.
    watch: Option<Box<Watch>>,
}

impl BalancerInstance {
    /// Instance `id`, named `name`, drawing from `rng`.
    pub fn new(def: Arc<BalancerDef>, id: InstanceId, name: String, rng: Rng) -> Self {
        let n = def.backends.len();
        let first = def.backends.iter().copied().min().unwrap_or(0);
        let watch = def
            .watches()
            .then(|| Box::new(Watch::new(def.health_check, def.outlier_ejection, n)));
        let last = def.backends.iter().copied().max().unwrap_or(0);
        let mut slot_of = vec![u32::MAX; (last - first + 1) as usize];
        for (slot, b) in def.backends.iter().enumerate() {
            slot_of[(b - first) as usize] = slot as u32;
        }
        BalancerInstance {
            def,
            id,
            name,
            rng,
            outstanding: vec![0; n],
            sent: vec![0; n],
            slot_of,
            first,
            groups: Vec::new(),
            live: (0..n as u32).collect(),
            seen: 0,
            cursor: 0,
            current_weight: vec![0; n],
            since: SimTime::ZERO,
            by_zone: Vec::new(),
            zone_cursor: Vec::new(),
            slot_zone: Vec::new(),
            watch,
        }
    }

    /// Calls outstanding at candidate `j`.
    #[inline(always)]
    fn load(&self, j: usize) -> u32 {
        self.outstanding[self.live[j] as usize]
    }

    fn least_loaded(&mut self) -> usize {
        let n = self.live.len();
        // Start the scan at a rotating offset, so ties do not always favour one instance.
        let start = self.cursor;
        self.cursor = (self.cursor + 1) % n;
        let mut best = start;
        for i in 1..n {
            let j = (start + i) % n;
            if self.load(j) < self.load(best) {
                best = j;
            }
        }
        best
    }

    fn power_of_choices(&mut self, choices: u32, distinct: bool) -> usize {
        let n = self.live.len();
        let d = (choices as usize).min(n);
        let mut best = self.rng.random_range(0..n);
        if distinct {
            // Draw without replacement by rejection: d is small, so redraws are rare.
            let mut drawn = [usize::MAX; MAX_CHOICES];
            drawn[0] = best;
            for j in 1..d.min(MAX_CHOICES) {
                let k = loop {
                    let k = self.rng.random_range(0..n);
                    if !drawn[..j].contains(&k) {
                        break k;
                    }
                };
                drawn[j] = k;
                if self.load(k) < self.load(best) {
                    best = k;
                }
            }
        } else {
            for _ in 1..d {
                let k = self.rng.random_range(0..n);
                if self.load(k) < self.load(best) {
                    best = k;
                }
            }
        }
        best
    }

    fn weighted_round_robin(&mut self) -> usize {
        // Smooth weighted round robin (as in nginx): add each weight, take the largest,
        // subtract the total from it.
        // Over the live backends only.
        let weights = &self.def.weights;
        let total: i64 = self
            .live
            .iter()
            .map(|s| i64::from(weights[*s as usize]))
            .sum();
        let mut best = 0;
        for (j, s) in self.live.iter().enumerate() {
            let s = *s as usize;
            self.current_weight[s] += i64::from(weights[s]);
            if self.current_weight[s] > self.current_weight[self.live[best] as usize] {
                best = j;
            }
        }
        self.current_weight[self.live[best] as usize] -= total;
        best
    }

    /// The slot that takes `call` with `prefer_zone`: a pick among the live backends in
    /// the call's zone, or among all when none is live there. The zone's candidates and
    /// cursor stand in for the whole list while its policy picks.
    #[inline(never)]
    fn pick_in_zone(&mut self, call: &Call, user: u32) -> usize {
        let z = call.zone as usize;
        if z == 0 || z >= self.by_zone.len() || self.by_zone[z].is_empty() {
            let j = self.pick(call, user, self.live.len());
            return self.live[j] as usize;
        }
        std::mem::swap(&mut self.live, &mut self.by_zone[z]);
        std::mem::swap(&mut self.cursor, &mut self.zone_cursor[z]);
        let j = self.pick(call, user, self.live.len());
        let slot = self.live[j] as usize;
        std::mem::swap(&mut self.live, &mut self.by_zone[z]);
        std::mem::swap(&mut self.cursor, &mut self.zone_cursor[z]);
        slot
    }

    /// The candidate (an index into `live`) that takes the next call; `n` candidates.
    fn pick(&mut self, call: &Call, user: u32, n: usize) -> usize {
        match self.def.policy {
            Policy::RoundRobin => {
                let i = self.cursor;
                self.cursor = (self.cursor + 1) % n;
                i
            }
            Policy::WeightedRoundRobin => self.weighted_round_robin(),
            Policy::Random => self.rng.random_range(0..n),
            Policy::LeastConnections => self.least_loaded(),
            Policy::PowerOfChoices { choices, distinct } => {
                self.power_of_choices(choices, distinct)
            }
            Policy::HashKey => (mix64(call.key) % n as u64) as usize,
            Policy::HashClient => (mix64(u64::from(user)) % n as u64) as usize,
        }
    }
}

/// What a load balancer reports, per instance and combined over its instances.
pub const METRICS: &[MetricDecl] = &[
    MetricDecl::number("forwarded", Count, Sum),
    MetricDecl::number("forward_rate_per_s", PerSecond, Sum).column("throughput/s", 0),
    // Calls sent to the busiest backend over the mean per backend.
    MetricDecl::number("hot_spot_index", Ratio, Max),
];

/// What a load balancer with health checks or outlier ejection reports: [`METRICS`] and
/// what it found out about its backends.
pub const WATCHING_METRICS: &[MetricDecl] = &[
    MetricDecl::number("forwarded", Count, Sum),
    MetricDecl::number("forward_rate_per_s", PerSecond, Sum).column("throughput/s", 0),
    MetricDecl::number("hot_spot_index", Ratio, Max),
    // Backends taken out, and put back, by the health checks.
    MetricDecl::number("marked_unhealthy", Count, Sum),
    MetricDecl::number("marked_healthy", Count, Sum),
    // Backends ejected after consecutive failed replies.
    MetricDecl::number("ejections", Count, Sum),
    // Crashes of a backend found (taken out while crashed), and how long after the crash.
    MetricDecl::number("detections", Count, Sum),
    MetricDecl::number("time_to_detect_mean_ms", Ms, WeightedBy("detections"))
        .column("detect ms", 1),
    MetricDecl::number("time_to_detect_max_ms", Ms, Max),
    // Calls sent to a backend while it was crashed.
    MetricDecl::number("sent_to_crashed", Count, Sum).column("to crashed", 2),
];

impl BalancerInstance {
    /// Reads which backends are live from their groups.
    #[cold]
    #[inline(never)]
    fn refresh(&mut self, ctx: &Ctx) {
        self.live.clear();
        for g in &self.groups {
            for i in ctx.groups[*g as usize].live() {
                self.live.push(self.slot_of[(i - self.first) as usize]);
            }
        }
        if let Some(w) = &self.watch {
            // Fail open: with every live backend left out, pick among them all.
            if self.live.iter().any(|s| !w.excluded(*s)) {
                self.live.retain(|s| !w.excluded(*s));
            }
        }
        if self.cursor >= self.live.len() {
            self.cursor = 0;
        }
        if self.def.prefer_zone {
            for (z, list) in self.by_zone.iter_mut().enumerate() {
                list.clear();
                list.extend(
                    self.live
                        .iter()
                        .filter(|s| self.slot_zone[**s as usize] as usize == z),
                );
                if self.zone_cursor[z] >= list.len() {
                    self.zone_cursor[z] = 0;
                }
            }
        }
        self.seen = ctx.membership();
    }
}

impl Component for BalancerInstance {
    fn start(&mut self, ctx: &mut Ctx) {
        // The backends are whole groups, listed one after the other.
        self.groups.clear();
        for b in &self.def.backends {
            let g = ctx.group_of(*b);
            if !self.groups.contains(&g) {
                self.groups.push(g);
            }
        }
        if self.def.prefer_zone {
            let zones = ctx.zones() + 1;
            self.slot_zone = self.def.backends.iter().map(|b| ctx.zone_of(*b)).collect();
            self.by_zone = vec![Vec::new(); zones];
            self.zone_cursor = vec![0; zones];
        }
        if let Some(w) = &mut self.watch {
            w.start(self.id, ctx);
        }
        self.refresh(ctx);
    }

    #[inline]
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        if self.seen != ctx.membership() {
            self.refresh(ctx);
        }
        let n = self.live.len();
        if n == 0 {
            ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
            return;
        }
        let c = *ctx.call(call);
        let user = ctx.requests[c.request as usize].user;
        let slot = if self.def.prefer_zone {
            self.pick_in_zone(&c, user)
        } else {
            let j = self.pick(&c, user, n);
            self.live[j] as usize
        };
        self.outstanding[slot] += 1;
        self.sent[slot] += 1;
        let backend = self.def.backends[slot];
        if let Some(w) = &mut self.watch {
            w.sent(backend, ctx);
        }
        ctx.call_mut(call).set_memo(slot as u32);
        ctx.call_instance(self.id, call, backend, c.op);
    }

    #[inline]
    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        if !current {
            // Made before this instance crashed: its caller was told, its count reset.
            return;
        }
        // The backend called, remembered on the balancer's own call: the child's
        // `instance` names a later instance when the backend passed it on as a tail call.
        let slot = ctx.call(parent).memo() as usize;
        self.outstanding[slot] -= 1;
        if let Some(w) = &mut self.watch {
            let failed = matches!(child.outcome, Outcome::Failed(_));
            let backend = self.def.backends[slot];
            if w.replied(slot as u32, failed, self.id, backend, ctx) {
                self.refresh(ctx);
            }
        }
        ctx.reply(parent, child.outcome);
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        let Some(w) = &mut self.watch else {
            return;
        };
        if w.on_timer(tag, data, self.id, &self.def.backends, ctx) {
            self.refresh(ctx);
        }
    }

    fn on_crash(&mut self, _ctx: &mut Ctx) {
        // Its calls were failed by the engine; replies to them come back as not current.
        self.outstanding.iter_mut().for_each(|n| *n = 0);
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.sent.iter_mut().for_each(|s| *s = 0);
        self.since = now;
        if let Some(w) = &mut self.watch {
            w.restart_stats();
        }
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let total: u64 = self.sent.iter().sum();
        let window_s = now.since(self.since).as_secs_f64();
        let n = self.sent.len() as f64;
        let max = self.sent.iter().copied().max().unwrap_or(0) as f64;
        let mean = total as f64 / n;
        let mut r = InstanceReport::new(&self.name, self.def.metrics());
        r.set("forwarded", total as f64)
            .set(
                "forward_rate_per_s",
                if window_s > 0.0 {
                    total as f64 / window_s
                } else {
                    0.0
                },
            )
            .set("hot_spot_index", if mean > 0.0 { max / mean } else { 0.0 });
        if let Some(w) = &self.watch {
            w.report(&mut r);
        }
        r
    }
}
