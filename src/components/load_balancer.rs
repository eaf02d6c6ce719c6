//! `load_balancer`: spreads calls over the instances of its backends. Round robin, weighted
//! round robin, random, least connections, power of d choices, hash of key or client.
//!
//! The balancer sees its own outstanding calls to each backend instantly and exactly (as a
//! proxy does), so least connections is join-the-shortest-queue.

mod estimate;
pub mod spec;
pub mod validate;

use super::Kind;
use crate::analysis::{Flow, Network, ServiceEstimate};
use crate::engine::{Call, CallId, Component, Ctx, InstanceId};
use crate::metrics::InstanceReport;
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::model::graph::Link;
use crate::random::{Rng, mix64};
use crate::time::SimTime;
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
    /// Backend instances.
    pub backends: Vec<InstanceId>,
    /// Weight of each backend instance.
    pub weights: Vec<u32>,
    /// Its backends, for the call graph.
    pub links: Vec<Link>,
}

impl Kind for BalancerDef {
    fn name(&self) -> &'static str {
        "load_balancer"
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        METRICS
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
    outstanding: Vec<u32>,
    sent: Vec<u64>,
    /// Position of each instance in `backends`, indexed by instance id minus `first`.
    slot_of: Vec<u32>,
    first: InstanceId,
    cursor: usize,
    current_weight: Vec<i64>,
    since: SimTime,
}

impl BalancerInstance {
    /// Instance `id`, named `name`, drawing from `rng`.
    pub fn new(def: Arc<BalancerDef>, id: InstanceId, name: String, rng: Rng) -> Self {
        let n = def.backends.len();
        let first = def.backends.iter().copied().min().unwrap_or(0);
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
            cursor: 0,
            current_weight: vec![0; n],
            since: SimTime::ZERO,
        }
    }

    fn least_loaded(&mut self) -> usize {
        let n = self.outstanding.len();
        // Start the scan at a rotating offset, so ties do not always favour one instance.
        let start = self.cursor;
        self.cursor = (self.cursor + 1) % n;
        let mut best = start;
        for i in 1..n {
            let j = (start + i) % n;
            if self.outstanding[j] < self.outstanding[best] {
                best = j;
            }
        }
        best
    }

    fn power_of_choices(&mut self, choices: u32, distinct: bool) -> usize {
        let n = self.outstanding.len();
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
                if self.outstanding[k] < self.outstanding[best] {
                    best = k;
                }
            }
        } else {
            for _ in 1..d {
                let k = self.rng.random_range(0..n);
                if self.outstanding[k] < self.outstanding[best] {
                    best = k;
                }
            }
        }
        best
    }

    fn weighted_round_robin(&mut self) -> usize {
        // Smooth weighted round robin (as in nginx): add each weight, take the largest,
        // subtract the total from it.
        let total: i64 = self.def.weights.iter().map(|w| i64::from(*w)).sum();
        let mut best = 0;
        for (i, w) in self.def.weights.iter().enumerate() {
            self.current_weight[i] += i64::from(*w);
            if self.current_weight[i] > self.current_weight[best] {
                best = i;
            }
        }
        self.current_weight[best] -= total;
        best
    }

    fn pick(&mut self, call: &Call, user: u32) -> usize {
        let n = self.outstanding.len();
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

impl Component for BalancerInstance {
    #[inline]
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        let c = *ctx.call(call);
        let user = ctx.requests[c.request as usize].user;
        let slot = self.pick(&c, user);
        self.outstanding[slot] += 1;
        self.sent[slot] += 1;
        ctx.call_instance(self.id, call, self.def.backends[slot], c.op);
    }

    #[inline]
    fn on_reply(&mut self, parent: CallId, child: &Call, _current: bool, ctx: &mut Ctx) {
        let slot = self.slot_of[(child.instance - self.first) as usize] as usize;
        self.outstanding[slot] -= 1;
        ctx.reply(parent, child.outcome);
    }

    fn on_timer(&mut self, _tag: u32, _data: u32, _ctx: &mut Ctx) {}

    fn restart_stats(&mut self, now: SimTime) {
        self.sent.iter_mut().for_each(|s| *s = 0);
        self.since = now;
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let total: u64 = self.sent.iter().sum();
        let window_s = now.since(self.since).as_secs_f64();
        let n = self.sent.len() as f64;
        let max = self.sent.iter().copied().max().unwrap_or(0) as f64;
        let mean = total as f64 / n;
        let mut r = InstanceReport::new(&self.name, METRICS);
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
        r
    }
}
