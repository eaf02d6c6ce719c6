//! `autoscaler`: starts and stops the instances of a service on a metric, by target
//! tracking or by steps, between `min` and `max`, with cooldowns, a provisioning delay,
//! and a choice of draining or failing the instances it takes out.
//!
//! It is a component kind, not a model block like `faults`: it has fields of its own that
//! name a target the way a queue names its consumers, one instance that reports its own
//! metrics beside the others (instances over time, actions, instance-hours), and the
//! validation, schema and README section every kind has. What it needs beyond a
//! component, reading other instances and failing them, is the engine's controller hook
//! (`engine/control.rs`): its evaluations are [`Event::Control`](crate::engine::Event)
//! timers, during which it reads the target's instances' [`Gauges`] and hands back
//! [`FaultAction`]s, the same crash and recovery a fault carries out. A model without an
//! autoscaler schedules no such event.
//!
//! The target is built with `max` instances ([`spec::AutoscalerSpec`]'s `instances_of`); those beyond
//! `initial` start down (out of the live membership that health checks and faults use:
//! [`Ctx::set_up`]), so they take no traffic. Scaling out brings back a draining instance
//! at once if there is one, else starts the lowest-numbered one that is off, which serves
//! after the provisioning delay. Scaling in takes the highest-numbered serving instances
//! out: "drain" leaves them out of the membership until they hold no call, "fail" crashes
//! them (their requests fail as `crashed`) and recovers them when they are started again.

pub mod results;
pub mod spec;
pub mod validate;

use super::Kind;
use crate::engine::{
    Call, CallId, Component, CrashMode, Ctx, FaultAction, Gauges, InstanceId, Outcome,
    ScalingAction, ScalingHistory,
};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::metrics::{ErrorCause, InstanceReport, LatencyHistogram};
use crate::model::graph::Link;
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use std::sync::Arc;

/// The metric an autoscaler watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Busy workers over workers, of the instances holding work, over the period.
    Utilization,
    /// Requests waiting now (in the instances' queues and in queues feeding them), per
    /// serving instance.
    QueueDepthPerInstance,
    /// 99th percentile of the clients' latency over the period, ms.
    P99Latency,
    /// Requests arriving per second over the period, per serving instance.
    RequestsPerInstance,
}

impl Metric {
    /// Name as in model files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Utilization => "utilization",
            Metric::QueueDepthPerInstance => "queue_depth_per_instance",
            Metric::P99Latency => "p99_latency",
            Metric::RequestsPerInstance => "requests_per_instance",
        }
    }
}

/// How the metric becomes a number of instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Target tracking: run ceil(serving × metric / target) instances.
    Target(f64),
    /// Step scaling: (above, add), highest first; (below, remove), lowest first.
    Steps {
        /// Steps that add instances.
        out: Vec<(f64, u32)>,
        /// Steps that remove instances.
        inward: Vec<(f64, u32)>,
    },
}

/// What happens to an instance taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRemove {
    /// Out of the membership until it holds no call.
    Drain,
    /// Crashed: the calls it holds fail.
    Fail,
}

/// A validated autoscaler.
#[derive(Debug, Clone)]
pub struct AutoscalerDef {
    /// The target service's group.
    pub target: u32,
    /// Its first instance; it has `max`.
    pub first: InstanceId,
    /// Fewest instances running.
    pub min: u32,
    /// Most instances running.
    pub max: u32,
    /// Instances running at the start.
    pub initial: u32,
    /// What it watches.
    pub metric: Metric,
    /// How it decides.
    pub policy: Policy,
    /// Time between evaluations.
    pub period: SimDuration,
    /// No action after a scale-out for this long.
    pub out_cooldown: SimDuration,
    /// No scale-in after a scale-in for this long.
    pub in_cooldown: SimDuration,
    /// From start to serving.
    pub delay: SimDuration,
    /// What happens to an instance taken out.
    pub on_remove: OnRemove,
    /// Queue instances whose consumers are the target (their depth counts as backlog).
    pub feeders: Vec<InstanceId>,
}

impl Kind for AutoscalerDef {
    fn name(&self) -> &'static str {
        "autoscaler"
    }
    fn links(&self) -> &[Link] {
        &[]
    }
    fn takes_requests(&self) -> bool {
        false
    }
    fn scales(&self) -> Option<usize> {
        Some(self.target as usize)
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        METRICS
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, _rng: Rng) -> Box<dyn Component> {
        Box::new(AutoscalerInstance::new(self, id, name))
    }
}

/// What an autoscaler reports (over the measurement window).
pub const METRICS: &[MetricDecl] = &[
    // Instances running (provisioning, serving or draining: paid for), time average.
    MetricDecl::number("instances_mean", Level, Sum).column("instances", 0),
    MetricDecl::number("instances_max", Level, Max),
    MetricDecl::number("instances_min", Level, Max),
    // Instances taking new work, time average.
    MetricDecl::number("serving_mean", Level, Sum),
    // Integral of the instances running, hours.
    MetricDecl::number("instance_hours", Ratio, Sum),
    MetricDecl::number("scale_outs", Count, Sum),
    MetricDecl::number("scale_ins", Count, Sum),
];

/// Control timer tags (the low two bits); a readiness timer carries the slot's generation
/// above.
const EVALUATE: u32 = 0;
const READY: u32 = 1;
const DRAIN_CHECK: u32 = 2;

/// Most time between two looks at whether a draining instance is empty.
const DRAIN_CHECK_EVERY: SimDuration = SimDuration(1_000_000_000);

/// Where one target instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    Provisioning,
    Serving,
    Draining,
}

/// One target instance, as the autoscaler sees it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    /// Bumped at each start, so a readiness timer of a cancelled start is ignored.
    generation: u32,
    /// Taken out by a crash: it recovers when started again.
    failed_out: bool,
    /// Its gauges at the last evaluation.
    seen: Gauges,
}

/// Integral of a count over time, kept as the count changes.
#[derive(Debug, Clone, Copy, Default)]
struct Area {
    level: u32,
    last: SimTime,
    area: f64,
}

impl Area {
    fn set(&mut self, now: SimTime, level: u32) {
        self.area += f64::from(self.level) * now.since(self.last).0 as f64;
        (self.level, self.last) = (level, now);
    }
    fn at(&self, now: SimTime) -> f64 {
        self.area + f64::from(self.level) * now.since(self.last).0 as f64
    }
}

/// One autoscaler.
pub struct AutoscalerInstance {
    def: Arc<AutoscalerDef>,
    id: InstanceId,
    name: String,
    slots: Vec<Slot>,
    started: bool,
    history: ScalingHistory,
    /// Instances serving or draining (holding work), integrated.
    working: Area,
    /// Instances serving, integrated.
    serving: Area,
    /// The last evaluation, and the integrals then.
    last_eval: SimTime,
    working_then: f64,
    serving_then: f64,
    /// The clients' latency at the last evaluation (for p99_latency).
    latency_then: LatencyHistogram,
    last_out: Option<SimTime>,
    last_in: Option<SimTime>,
    drain_check: bool,
    since: SimTime,
    scale_outs: u64,
    scale_ins: u64,
}

impl AutoscalerInstance {
    /// Instance `id`, named `name`.
    pub fn new(def: Arc<AutoscalerDef>, id: InstanceId, name: String) -> Self {
        let slots = (0..def.max)
            .map(|i| Slot {
                state: if i < def.initial {
                    State::Serving
                } else {
                    State::Off
                },
                generation: 0,
                failed_out: false,
                seen: Gauges::default(),
            })
            .collect();
        AutoscalerInstance {
            history: ScalingHistory {
                target: def.target,
                ..ScalingHistory::default()
            },
            def,
            id,
            name,
            slots,
            started: false,
            working: Area::default(),
            serving: Area::default(),
            last_eval: SimTime::ZERO,
            working_then: 0.0,
            serving_then: 0.0,
            latency_then: LatencyHistogram::new(),
            last_out: None,
            last_in: None,
            drain_check: false,
            since: SimTime::ZERO,
            scale_outs: 0,
            scale_ins: 0,
        }
    }

    fn count(&self, states: &[State]) -> u32 {
        self.slots
            .iter()
            .filter(|s| states.contains(&s.state))
            .count() as u32
    }

    /// Instances started and not taken out: what the policy compares its wish with.
    fn wanted(&self) -> u32 {
        self.count(&[State::Provisioning, State::Serving])
    }

    /// The counts changed at `now`: the history and the integrals follow.
    fn counts_changed(&mut self, now: SimTime) {
        let running = self.count(&[State::Provisioning, State::Serving, State::Draining]);
        let serving = self.count(&[State::Serving]);
        let working = self.count(&[State::Serving, State::Draining]);
        self.history.record(now, running, serving);
        self.serving.set(now, serving);
        self.working.set(now, working);
    }

    fn instance(&self, slot: usize) -> InstanceId {
        self.def.first + slot as InstanceId
    }

    /// The metric over the period ending now; `None` when there is nothing to judge by.
    fn measure(&mut self, ctx: &Ctx, gauges: &dyn Fn(InstanceId) -> Gauges) -> Option<f64> {
        let now = ctx.now();
        let serving_area = self.serving.at(now) - self.serving_then;
        let working_area = self.working.at(now) - self.working_then;
        let (mut busy, mut arrived, mut waiting, mut workers) = (0.0, 0u64, 0u64, 0u32);
        for i in 0..self.slots.len() {
            let g = gauges(self.instance(i));
            let slot = &mut self.slots[i];
            let seen = if g.since == slot.seen.since {
                slot.seen
            } else {
                // Its counters restarted (the warm-up ended): they count from zero.
                Gauges {
                    since: g.since,
                    ..Gauges::default()
                }
            };
            if matches!(slot.state, State::Serving | State::Draining) {
                busy += (g.busy_ns - seen.busy_ns).max(0.0);
                workers = workers.max(g.workers);
            }
            if slot.state == State::Serving {
                waiting += g.waiting;
            }
            arrived += g.arrived.saturating_sub(seen.arrived);
            slot.seen = g;
        }
        let value = match self.def.metric {
            Metric::Utilization => (working_area > 0.0 && workers > 0)
                .then(|| busy / (f64::from(workers) * working_area)),
            Metric::QueueDepthPerInstance => {
                let queued: u64 = self.def.feeders.iter().map(|q| gauges(*q).waiting).sum();
                let serving = self.count(&[State::Serving]).max(1);
                Some((waiting + queued) as f64 / f64::from(serving))
            }
            Metric::RequestsPerInstance => {
                (serving_area > 0.0).then(|| arrived as f64 / (serving_area / 1e9))
            }
            Metric::P99Latency => {
                let mut all = LatencyHistogram::new();
                for s in &ctx.stats {
                    s.latency.iter().for_each(|h| all.merge(h));
                }
                let recent = if all.count() >= self.latency_then.count() {
                    all.since(&self.latency_then)
                } else {
                    all.clone() // the statistics restarted at the end of the warm-up
                };
                self.latency_then = all;
                (recent.count() > 0).then(|| recent.quantile_ns(0.99) / 1e6)
            }
        };
        self.last_eval = now;
        self.serving_then += serving_area;
        self.working_then += working_area;
        value
    }

    /// The instances the policy wants for `value`, with the reason, when it differs from
    /// those wanted now.
    fn decide(&self, value: f64) -> Option<(u32, String)> {
        let wanted = self.wanted();
        let metric = self.def.metric.name();
        let (to, reason) = match &self.def.policy {
            Policy::Target(t) => {
                let serving = self.count(&[State::Serving]).max(1);
                let want = (f64::from(serving) * value / t - 1e-9).ceil().max(0.0);
                let want = want.min(f64::from(self.def.max)) as u32;
                let side = if value > *t { ">" } else { "<" };
                (want, format!("{metric} {} {side} target {t}", show(value)))
            }
            Policy::Steps { out, inward } => {
                if let Some((above, add)) = out.iter().find(|(a, _)| value > *a) {
                    (
                        wanted.saturating_add(*add),
                        format!("{metric} {} above {above}: add {add}", show(value)),
                    )
                } else if let Some((below, remove)) = inward.iter().find(|(b, _)| value < *b) {
                    (
                        wanted.saturating_sub(*remove),
                        format!("{metric} {} below {below}: remove {remove}", show(value)),
                    )
                } else {
                    return None;
                }
            }
        };
        let to = to.clamp(self.def.min, self.def.max);
        (to != wanted).then_some((to, reason))
    }

    fn evaluate(
        &mut self,
        ctx: &mut Ctx,
        gauges: &dyn Fn(InstanceId) -> Gauges,
        actions: &mut Vec<FaultAction>,
    ) {
        ctx.control_timer(self.id, self.def.period, EVALUATE, 0);
        let Some(value) = self.measure(ctx, gauges) else {
            return;
        };
        let Some((to, reason)) = self.decide(value) else {
            return;
        };
        let now = ctx.now();
        let after = |t: Option<SimTime>, d: SimDuration| t.is_none_or(|t| now >= t.after(d));
        let out_over = after(self.last_out, self.def.out_cooldown);
        let from = self.wanted();
        if to > from {
            if !out_over {
                return;
            }
            for _ in from..to {
                self.start_one(ctx, actions);
            }
            self.last_out = Some(now);
            if ctx.measuring {
                self.scale_outs += 1;
            }
        } else {
            let in_over = after(self.last_in, self.def.in_cooldown);
            if !(out_over && in_over) || self.count(&[State::Provisioning]) > 0 {
                return;
            }
            for _ in to..from {
                self.stop_one(ctx, actions);
            }
            self.last_in = Some(now);
            if ctx.measuring {
                self.scale_ins += 1;
            }
        }
        self.history.actions.push(ScalingAction {
            at: now,
            from,
            to,
            reason,
        });
        self.counts_changed(now);
    }

    /// Brings one instance in: a draining one at once, else the lowest that is off, after
    /// the provisioning delay.
    fn start_one(&mut self, ctx: &mut Ctx, actions: &mut Vec<FaultAction>) {
        if let Some(i) = self.slots.iter().rposition(|s| s.state == State::Draining) {
            self.slots[i].state = State::Serving;
            ctx.set_up(self.instance(i), true);
            return;
        }
        let Some(i) = self.slots.iter().position(|s| s.state == State::Off) else {
            return;
        };
        let slot = &mut self.slots[i];
        slot.state = State::Provisioning;
        slot.generation = slot.generation.wrapping_add(1) & (u32::MAX >> 2);
        let generation = slot.generation;
        if self.def.delay.0 == 0 {
            self.ready(i, ctx, actions);
        } else {
            let tag = READY | (generation << 2);
            ctx.control_timer(self.id, self.def.delay, tag, i as u32);
        }
    }

    /// Instance `slot` is provisioned: it joins its group.
    fn ready(&mut self, slot: usize, ctx: &mut Ctx, actions: &mut Vec<FaultAction>) {
        let instance = self.instance(slot);
        let s = &mut self.slots[slot];
        s.state = State::Serving;
        if std::mem::take(&mut s.failed_out) {
            actions.push(FaultAction::Recover {
                instance,
                leaves_group: true,
            });
        } else {
            ctx.set_up(instance, true);
        }
    }

    /// Takes the highest-numbered serving instance out: it drains or fails.
    fn stop_one(&mut self, ctx: &mut Ctx, actions: &mut Vec<FaultAction>) {
        let Some(i) = self.slots.iter().rposition(|s| s.state == State::Serving) else {
            return;
        };
        let instance = self.instance(i);
        match self.def.on_remove {
            OnRemove::Drain => {
                self.slots[i].state = State::Draining;
                ctx.set_up(instance, false);
                if !self.drain_check {
                    self.drain_check = true;
                    let every = self.def.period.min(DRAIN_CHECK_EVERY);
                    ctx.control_timer(self.id, every, DRAIN_CHECK, 0);
                }
            }
            OnRemove::Fail => {
                self.slots[i].state = State::Off;
                self.slots[i].failed_out = true;
                actions.push(FaultAction::Crash {
                    instance,
                    mode: CrashMode::Refused,
                    leaves_group: true,
                });
            }
        }
    }

    /// Draining instances that hold nothing more leave.
    fn check_drained(&mut self, ctx: &mut Ctx, gauges: &dyn Fn(InstanceId) -> Gauges) {
        let mut left = false;
        let mut draining = false;
        for i in 0..self.slots.len() {
            if self.slots[i].state != State::Draining {
                continue;
            }
            let instance = self.instance(i);
            let g = gauges(instance);
            if g.busy == 0 && g.waiting == 0 && ctx.calls_at(instance).is_empty() {
                self.slots[i].state = State::Off;
                left = true;
            } else {
                draining = true;
            }
        }
        if left {
            self.counts_changed(ctx.now());
        }
        self.drain_check = draining;
        if draining {
            let every = self.def.period.min(DRAIN_CHECK_EVERY);
            ctx.control_timer(self.id, every, DRAIN_CHECK, 0);
        }
    }
}

/// A metric value as shown in a reason: four significant digits.
fn show(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Component for AutoscalerInstance {
    fn start(&mut self, ctx: &mut Ctx) {
        let now = ctx.now();
        if !self.started {
            self.started = true;
            for i in self.def.initial..self.def.max {
                ctx.set_up(self.def.first + i, false);
            }
            self.counts_changed(now);
        } else {
            // Back after a crash: its timers were dropped.
            for i in 0..self.slots.len() {
                if self.slots[i].state == State::Provisioning {
                    let tag = READY | (self.slots[i].generation << 2);
                    ctx.control_timer(self.id, self.def.delay, tag, i as u32);
                }
            }
            if self.drain_check {
                ctx.control_timer(self.id, DRAIN_CHECK_EVERY, DRAIN_CHECK, 0);
            }
        }
        ctx.control_timer(self.id, self.def.period, EVALUATE, 0);
    }

    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        // Nothing calls an autoscaler; a call that does is refused.
        ctx.reply(call, Outcome::Failed(ErrorCause::Refused));
    }

    fn on_reply(&mut self, _: CallId, _: &Call, _: bool, _: &mut Ctx) {}

    fn on_timer(&mut self, _: u32, _: u32, _: &mut Ctx) {}

    fn on_control(
        &mut self,
        tag: u32,
        data: u32,
        ctx: &mut Ctx,
        gauges: &dyn Fn(InstanceId) -> Gauges,
        actions: &mut Vec<FaultAction>,
    ) {
        match tag & 3 {
            EVALUATE => self.evaluate(ctx, gauges, actions),
            READY => {
                let slot = data as usize;
                let s = self.slots[slot];
                if s.state == State::Provisioning && s.generation == tag >> 2 {
                    self.ready(slot, ctx, actions);
                    self.counts_changed(ctx.now());
                }
            }
            _ => self.check_drained(ctx, gauges),
        }
    }

    fn scaling(&self) -> Option<&ScalingHistory> {
        Some(&self.history)
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.since = now;
        self.scale_outs = 0;
        self.scale_ins = 0;
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let span = now.since(self.since).0 as f64;
        let h = &self.history;
        let running = h.integral(self.since, now, false);
        let serving = h.integral(self.since, now, true);
        let mean = |area: f64| if span > 0.0 { area / span } else { 0.0 };
        // Counts over the window: the one in force at its start and every later one.
        let in_window = h
            .counts
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.0 < now && h.counts.get(i + 1).is_none_or(|next| next.0 > self.since)
            })
            .map(|(_, c)| c.1);
        let (lo, hi) = in_window.fold((u32::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
        let mut r = InstanceReport::new(&self.name, METRICS);
        r.set("instances_mean", mean(running))
            .set("instances_max", f64::from(hi))
            .set(
                "instances_min",
                if lo == u32::MAX { 0.0 } else { f64::from(lo) },
            )
            .set("serving_mean", mean(serving))
            .set("instance_hours", running / 3.6e12)
            .set("scale_outs", self.scale_outs as f64)
            .set("scale_ins", self.scale_ins as f64);
        r
    }
}
