//! Analytic estimates for a model, to put beside the simulation: offered load, utilization
//! and queueing delay of every service, from an open-network approximation.
//!
//! Flows are propagated from the workloads down the (acyclic) call graph. `route` steps may
//! lead back up: their flows solve the traffic equations of an open Jackson network,
//! `λ_j = γ_j + Σ_i λ_i·p_ij`, by repeating the pass until the rates settle, and a routing
//! service's response time adds `Σ_j p_ij·R_j` the same way (Jackson, "Networks of waiting
//! lines", Oper. Res. 5(4), 1957: with M/M/c stations the product form makes the
//! per-station formulas exact).
//!
//! Each service instance is treated as a G/G/c queue: Erlang C when service and arrivals are
//! exponential, the Allen-Cunneen approximation `Wq ≈ Wq(M/M/c) · (ca² + cs²) / 2`
//! otherwise, and the exact M/M/c/K birth-death solution when the queue is bounded. Arrival
//! variability moves through the network with Whitt's QNA rules (departures `cd² = 1 +
//! (1-ρ²)(ca²-1) + ρ²(cs²-1)/√c`; round robin over n instances divides `ca²` by n; random
//! splitting with share p, a route step's too, gives `p·ca² + 1 - p`). Closed workloads get
//! their rate from the fixed point `λ = N / (Z + R(λ))`. Sources: Allen, *Probability,
//! Statistics and Queueing Theory* (1990); Whitt, "The Queueing Network Analyzer", Bell
//! System Tech. J. 62(9), 1983.
//!
//! Components that hold keys (caches) are estimated from the rate of each key reaching them
//! ([`keyed_estimates`]): the flow pass is run once per source of keyed traffic (each
//! workload with its key law, and each read-through cache's misses, whose key rates the
//! cache filtered), so each such component learns the per-key rates of every stream it
//! gets ([`Traffic`], built from [`keys::KeyRates`]). What they estimate (the share of
//! reads that hit) then sets the probabilities of the handler branches that depend on it
//! and the flow a cache sends on; the passes repeat until those shares settle.

pub mod keys;

use crate::model::Model;
use crate::workload::Arrivals;
use keys::{KeyRates, OPS};
use serde::{Deserialize, Serialize};

/// Estimate for one service (per instance).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceEstimate {
    /// Requests per second arriving at each instance.
    pub arrival_rate_per_s: f64,
    /// Mean time a request holds a worker, ms (work, plus calls unless asynchronous).
    pub hold_time_ms: f64,
    /// Squared coefficient of variation of the hold time.
    pub hold_time_scv: f64,
    /// Squared coefficient of variation of the arrivals.
    pub arrival_scv: f64,
    /// Offered load per instance, in Erlangs (busy workers needed).
    pub offered_load: f64,
    /// Offered load over workers, less the share refused by a full queue.
    pub utilization: f64,
    /// Offered load over workers, before any refusal (not in the output).
    #[serde(skip)]
    pub offered_utilization: f64,
    /// Share of requests refused by a full queue (bounded queues only).
    pub blocking: f64,
    /// Mean wait before service, ms (infinite, JSON null, when unstable).
    #[serde(deserialize_with = "crate::stats::null_as_infinity")]
    pub wait_mean_ms: f64,
    /// Mean time from arrival to answer, ms (infinite, JSON null, when unstable).
    #[serde(deserialize_with = "crate::stats::null_as_infinity")]
    pub response_mean_ms: f64,
    /// Formula used: erlang_c, allen_cunneen, mmck (bounded queue) or unstable.
    pub method: String,
}

/// An analytic estimate of one number a component kind reports (beyond a service's queue
/// estimate): the run table shows it beside the simulated value of the same metric, and a
/// warning points out a simulated value farther from it than `tolerance`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricEstimate {
    /// The metric it estimates, as the kind declares it (`components.NAME.total.METRIC`).
    pub metric: String,
    /// The estimated value.
    pub value: f64,
    /// How it was computed, for people (e.g. "exact over 1000000 keys").
    pub method: String,
    /// How far (absolute) the simulated value may be from it before a warning points it out.
    pub tolerance: f64,
    /// What can explain a divergence, when known; ends the warning.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub caveat: String,
}

/// Estimates for a whole model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Estimates {
    /// Per service, by component name (file order).
    pub services: Vec<(String, ServiceEstimate)>,
    /// Estimates of other metrics, per component that has some (file order): see
    /// [`MetricEstimate`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<(String, Vec<MetricEstimate>)>,
    /// Per workload: estimated request rate per second and mean response time, ms
    /// (infinite, JSON null, when a service on its path is unstable).
    #[serde(deserialize_with = "workload_estimates")]
    pub workloads: Vec<(String, f64, f64)>,
    /// Problems worth a user's attention, such as utilization at or above 1.
    pub warnings: Vec<String>,
}

/// The traffic reaching a component, key by key: one [`KeyRates`] per stream (a workload's
/// requests, a cache's misses), and the rate of requests whose keys are not known (from a
/// trace).
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Per-key rates of each stream, requests per second by op code.
    pub streams: Vec<KeyRates>,
    /// Requests per second with no key law.
    pub unknown: f64,
    /// All of it as a flow (rates per class, explicit operations).
    pub flow: Flow,
}

impl Traffic {
    /// No traffic, of `classes` classes.
    pub fn new(classes: usize) -> Self {
        Traffic {
            streams: Vec::new(),
            unknown: 0.0,
            flow: Flow::new(classes),
        }
    }
}

/// The operation (code) of requests of class `class` that ask none explicitly: the class's
/// op in the first workload sending it.
pub fn class_op(model: &Model, class: usize) -> u8 {
    model
        .workloads
        .iter()
        .find(|w| w.classes.iter().any(|(c, _)| usize::from(*c) == class))
        .and_then(|w| w.ops.get(class).copied())
        .unwrap_or(0)
}

/// What the estimate of a component that holds keys says, for the rest of the analysis.
#[derive(Debug, Clone)]
pub struct KeyedEstimate {
    /// Share of its answers to reads that say it held the key ([`Found::Hit`]); the
    /// branches of its callers' handlers follow it.
    ///
    /// [`Found::Hit`]: crate::engine::Found::Hit
    pub hit_share: f64,
    /// A keyed stream of its own it sends on (a read-through cache's misses).
    pub sends: Option<KeyedSend>,
}

/// A stream a component sends on: the flow into group `to` (its rates per class and
/// operation), and the rate of each key in it.
#[derive(Debug, Clone)]
pub struct KeyedSend {
    /// Group it goes to.
    pub to: usize,
    /// Its flow.
    pub flow: Flow,
    /// Its per-key rates.
    pub keys: KeyRates,
}

fn workload_estimates<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, f64, f64)>, D::Error> {
    let raw: Vec<(String, Option<f64>, Option<f64>)> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(n, r, t)| (n, r.unwrap_or(f64::NAN), t.unwrap_or(f64::INFINITY)))
        .collect())
}

/// Flow of requests into a group: rate per second per class, and arrival SCV.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Requests per second, per class.
    pub rate: Vec<f64>,
    /// Rate-weighted squared coefficient of variation of the arrivals.
    pub scv_weighted: f64,
    /// The part of the rate that comes through least-connections balancers spreading it
    /// over every instance of the group, and its rate-weighted SCV before the split.
    pub pooled_rate: f64,
    /// Rate-weighted arrival SCV of the pooled part, before the balancer split it.
    pub pooled_scv_weighted: f64,
    /// Per class, the part of its rate asking an explicit operation (a step's `op`), by op
    /// code; empty when no caller says. The rest of a class's rate asks the request's own.
    pub ops: Vec<[f64; OPS]>,
}

/// Where a component's estimate is computed: the model, the component's group id, and what
/// the components holding keys are estimated to answer.
pub struct Network<'a> {
    /// The model.
    pub model: &'a Model,
    /// Group id of the component.
    pub group: usize,
    /// The keyed estimate of each component that has one.
    pub keyed: &'a [Option<KeyedEstimate>],
    /// The pass carries one source of keyed traffic: a component that sends a keyed stream
    /// of its own (a read-through cache's misses) keeps the reads it gets, since its stream
    /// is a source of its own.
    pub by_source: bool,
}

impl Network<'_> {
    /// The share of `group`'s answers to reads that say it held the key, when it says.
    pub fn hit_share(&self, group: usize) -> Option<f64> {
        self.keyed.get(group)?.as_ref().map(|k| k.hit_share)
    }
}

impl Network<'_> {
    /// The component being estimated.
    pub fn def(&self) -> &crate::components::ComponentDef {
        &self.model.components[self.group]
    }
}

impl Flow {
    /// No requests, of `classes` classes.
    pub fn new(classes: usize) -> Self {
        Flow {
            rate: vec![0.0; classes],
            scv_weighted: 0.0,
            pooled_rate: 0.0,
            pooled_scv_weighted: 0.0,
            ops: Vec::new(),
        }
    }
    /// Records that `rate` requests per second of class `class` (already added) ask
    /// operation `op` explicitly.
    pub fn add_op(&mut self, class: usize, op: u8, rate: f64) {
        if self.ops.is_empty() {
            self.ops = vec![[0.0; OPS]; self.rate.len()];
        }
        if let Some(o) = self.ops.get_mut(class).and_then(|o| o.get_mut(op as usize)) {
            *o += rate;
        }
    }
    /// Requests per second by op code, a class's requests without an explicit op taking
    /// `own(class)` (the request's own op).
    pub fn op_rates(&self, own: impl Fn(usize) -> u8) -> [f64; OPS] {
        let mut out = [0.0; OPS];
        for (class, rate) in self.rate.iter().enumerate() {
            let explicit = self.ops.get(class).copied().unwrap_or([0.0; OPS]);
            let implicit = (rate - explicit.iter().sum::<f64>()).max(0.0);
            for (o, x) in out.iter_mut().zip(explicit) {
                *o += x;
            }
            if let Some(o) = out.get_mut(own(class) as usize) {
                *o += implicit;
            }
        }
        out
    }
    /// True when all of the flow comes through least-connections balancers over every
    /// instance: the instances then act together, close to one queue with all their workers.
    pub fn all_pooled(&self) -> bool {
        let t = self.total();
        t > 0.0 && (t - self.pooled_rate).abs() <= 1e-9 * t
    }
    /// Arrival SCV of the pooled flow, before the balancer split it.
    pub fn pooled_scv(&self) -> f64 {
        if self.pooled_rate > 0.0 {
            self.pooled_scv_weighted / self.pooled_rate
        } else {
            1.0
        }
    }
    /// Requests per second, all classes.
    pub fn total(&self) -> f64 {
        self.rate.iter().sum()
    }
    /// Squared coefficient of variation of the arrivals.
    pub fn scv(&self) -> f64 {
        let t = self.total();
        if t > 0.0 { self.scv_weighted / t } else { 1.0 }
    }
    /// Adds another flow to this one (a merge of streams: rates add, SCVs mix by rate).
    pub fn merge(&mut self, other: &Flow) {
        for (r, x) in self.rate.iter_mut().zip(&other.rate) {
            *r += x;
        }
        self.scv_weighted += other.scv_weighted;
        self.pooled_rate += other.pooled_rate;
        self.pooled_scv_weighted += other.pooled_scv_weighted;
        for (class, o) in other.ops.iter().enumerate() {
            for (op, x) in o.iter().enumerate() {
                if *x != 0.0 {
                    self.add_op(class, op as u8, *x);
                }
            }
        }
    }
    /// Largest relative change from this flow to `other`, over the total rate and the
    /// rate-weighted SCV.
    pub fn change(&self, other: &Flow) -> f64 {
        let rel = |a: f64, b: f64| {
            if a == b {
                0.0
            } else {
                (a - b).abs() / a.abs().max(b.abs())
            }
        };
        rel(self.total(), other.total()).max(rel(self.scv_weighted, other.scv_weighted))
    }
    /// Adds `rate` (per class) times `scale`, with arrival SCV `scv`.
    pub fn add(&mut self, rate: &[f64], scale: f64, scv: f64) {
        let mut added = 0.0;
        for (r, x) in self.rate.iter_mut().zip(rate) {
            *r += x * scale;
            added += x * scale;
        }
        self.scv_weighted += added * scv;
    }
}

/// Computes the estimates of `model`.
pub fn estimate(model: &Model) -> Estimates {
    let closed: Vec<usize> = model
        .workloads
        .iter()
        .enumerate()
        .filter(|(_, w)| matches!(w.arrivals, Arrivals::Closed { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut rates: Vec<f64> = model
        .workloads
        .iter()
        .map(|w| open_rate(model, &w.arrivals))
        .collect();
    let keyed = keyed_estimates(model, &keyed_rates(model));
    // Closed workloads: λ = N / (Z + R(λ)), solved by bisection, a few sweeps.
    for _ in 0..3 {
        for &i in &closed {
            let Arrivals::Closed { users, think } = &model.workloads[i].arrivals else {
                continue;
            };
            let n = f64::from(*users);
            let z = think.mean_ns() / 1e9;
            let (mut lo, mut hi) = (0.0, n / z.max(1e-9));
            for _ in 0..60 {
                if hi - lo <= 1e-9 * hi {
                    break;
                }
                let mid = 0.5 * (lo + hi);
                rates[i] = mid;
                let r = solve(model, &rates, &keyed).1[i] / 1e3;
                if mid * (z + r) < n && r.is_finite() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            rates[i] = lo;
        }
    }
    let (services, response_ms, settled, flows) = solve(model, &rates, &keyed);
    let mut warnings = crate::model::lint(model);
    if let Some(net) = &model.network {
        warnings.push(network_caveat(net));
    }
    let metrics = metric_estimates(model, &flows, &keyed, &mut warnings);
    if !settled {
        warnings.push(format!(
            "the flows over route steps do not settle after {MAX_ROUTE_PASSES} passes: requests come back at least as often as they arrive (as through a call into a component whose route leads back to the caller), so these estimates are meaningless"
        ));
    }
    for (name, e) in &services {
        if e.method == "unstable" && !e.offered_load.is_finite() {
            warnings.push(format!(
                "components.{name}: no finite estimate of how long a request holds a worker: it waits on calls into unstable services, or into a loop back to itself"
            ));
        } else if e.method == "unstable" {
            warnings.push(format!(
                "components.{name}: offered load {:.3} Erlangs per instance is {:.0}% of its workers; the queue grows without bound (add workers or replicas, or bound the queue)",
                e.offered_load,
                e.utilization * 100.0
            ));
        }
    }
    let workloads = model
        .workloads
        .iter()
        .enumerate()
        .map(|(i, w)| (w.name.clone(), rates[i], response_ms[i]))
        .collect();
    Estimates {
        services,
        metrics,
        workloads,
        warnings,
    }
}

/// What the estimates leave out in a model with a network: the time messages spend
/// between zones (which zones each call crosses depends on its instances and balancers).
fn network_caveat(net: &crate::network::NetworkDef) -> String {
    let mut pairs: Vec<(f64, String)> = Vec::new();
    let n = net.zones.len() as u16;
    for a in 1..=n {
        for b in a..=n {
            let m = net.mean_ns(a, b);
            if m > 0.0 {
                pairs.push((
                    m,
                    format!(
                        "{}-{}",
                        net.zones[a as usize - 1],
                        net.zones[b as usize - 1]
                    ),
                ));
            }
        }
    }
    let span = match (
        pairs.iter().min_by(|x, y| x.0.total_cmp(&y.0)),
        pairs.iter().max_by(|x, y| x.0.total_cmp(&y.0)),
    ) {
        (Some(lo), Some(hi)) => format!(
            ": each call and each reply between zones adds a mean of {} ({}) to {} ({})",
            crate::time::format_duration_nanos(lo.0),
            lo.1,
            crate::time::format_duration_nanos(hi.0),
            hi.1
        ),
        _ => String::new(),
    };
    format!("network: the estimates leave out network latency{span}")
}

/// Works out the keyed estimates of `model` (its caches'), so that each component keeps
/// what it needs to report beside the simulation. Called once a model is validated.
pub fn prepare(model: &Model) {
    keyed_estimates(model, &keyed_rates(model));
}

/// The workload rates the keyed estimates use: each open workload's mean rate, and a closed
/// workload's users over their think time (its rate when answers are instant: an upper
/// bound). Hit ratios under independent requests do not depend on the rate, so only time
/// to live estimates and mixes of workloads feel the difference.
fn keyed_rates(model: &Model) -> Vec<f64> {
    model
        .workloads
        .iter()
        .map(|w| match &w.arrivals {
            Arrivals::Closed { users, think } => {
                f64::from(*users) / (think.mean_ns() / 1e9).max(1e-9)
            }
            a => open_rate(model, a),
        })
        .collect()
}

/// Most rounds of the keyed estimates before they are taken as settled.
const MAX_KEYED_ROUNDS: usize = 50;
/// The rounds stop when no hit share moves more than this.
const KEYED_TOLERANCE: f64 = 1e-9;

/// The keyed estimate of every component that holds keys (`None` for the others), for
/// workloads sending `rates` requests per second: each round passes each source of keyed
/// traffic alone through the network (the workloads, then each cache's misses, callers
/// first), gives each keyed component the per-key rates it gets, and asks its estimate;
/// the rounds repeat until the hit shares, which set the branch probabilities of the
/// next round, settle.
pub fn keyed_estimates(model: &Model, rates: &[f64]) -> Vec<Option<KeyedEstimate>> {
    let n = model.components.len();
    if !model.components.iter().any(|c| c.kind.reads_keys()) {
        return vec![None; n];
    }
    let order = model.graph.callers_first();
    let laws: Vec<Option<KeyRates>> = model
        .workloads
        .iter()
        .map(|w| match (&w.arrivals, model.spec.workloads.get(&w.name)) {
            (Arrivals::Trace(_), _) | (_, None) => None,
            (_, Some(spec)) => Some(KeyRates::of_law(spec.keys.as_ref())),
        })
        .collect();
    let mut keyed: Vec<Option<KeyedEstimate>> = vec![None; n];
    for _ in 0..MAX_KEYED_ROUNDS {
        let mut traffic = vec![Traffic::new(model.classes.len()); n];
        for (i, w) in model.workloads.iter().enumerate() {
            let external = workload_flows(model, i, rates[i]);
            let flows = propagate(model, &order, external, &keyed, true).0;
            let streams = laws[i].as_ref().map(|law| {
                keys_by_group(model, &flows, |f| {
                    law.scaled_law(&f.op_rates(|class| w.ops.get(class).copied().unwrap_or(0)))
                })
            });
            for (g, f) in flows.iter().enumerate() {
                traffic[g].flow.merge(f);
                match &streams {
                    Some(s) => traffic[g].streams.extend(s[g].iter().cloned()),
                    None => traffic[g].unknown += f.total(),
                }
            }
        }
        let mut next: Vec<Option<KeyedEstimate>> = vec![None; n];
        for &g in &order {
            let kind = &model.components[g].kind;
            if !kind.reads_keys() {
                continue;
            }
            let net = Network {
                model,
                group: g,
                keyed: &keyed,
                by_source: true,
            };
            let Some(est) = kind.keyed(&net, &traffic[g]) else {
                continue;
            };
            if let Some(send) = &est.sends {
                add_sent(model, &order, send, &keyed, &mut traffic);
            }
            next[g] = Some(est);
        }
        let settled = keyed.iter().zip(&next).all(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => (a.hit_share - b.hit_share).abs() <= KEYED_TOLERANCE,
            (None, None) => true,
            _ => false,
        });
        keyed = next;
        if settled {
            break;
        }
    }
    keyed
}

/// The external flows of workload `w` alone at `rate` requests per second.
fn workload_flows(model: &Model, w: usize, rate: f64) -> Vec<Flow> {
    let n = model.components.len();
    let k = model.classes.len();
    let mut external: Vec<Flow> = (0..n).map(|_| Flow::new(k)).collect();
    add_workload(model, w, rate, &mut external);
    external
}

/// Adds the requests of workload `i` at `rate` per second to the flow of its target.
fn add_workload(model: &Model, i: usize, rate: f64, external: &mut [Flow]) {
    let w = &model.workloads[i];
    let mut per_class = vec![0.0; model.classes.len()];
    let mut prev = 0.0;
    for (class, cum) in &w.classes {
        per_class[*class as usize] += rate * (cum - prev);
        prev = *cum;
    }
    let target = &model.components[w.target as usize];
    let split = if target.replicas > 1 {
        1.0 / f64::from(target.replicas)
    } else {
        1.0
    };
    external[w.target as usize].add(&per_class, 1.0, arrival_scv(&w.arrivals) * split);
}

/// Passes the stream `send` alone through the network and adds what reaches each
/// component to its traffic, the per-key rates scaled op by op by how much of the stream
/// gets there. Its requests without an explicit op are reads (a cache reads through).
fn add_sent(
    model: &Model,
    order: &[usize],
    send: &KeyedSend,
    keyed: &[Option<KeyedEstimate>],
    traffic: &mut [Traffic],
) {
    let n = model.components.len();
    let k = model.classes.len();
    let mut external: Vec<Flow> = (0..n).map(|_| Flow::new(k)).collect();
    external[send.to].merge(&send.flow);
    let read = crate::components::op::Op::Read.code();
    let sent = send.flow.op_rates(|_| read);
    let flows = propagate(model, order, external, keyed, true).0;
    let streams = keys_by_group(model, &flows, |f| {
        let got = f.op_rates(|_| read);
        let mut factor = [0.0; OPS];
        for ((x, a), b) in factor.iter_mut().zip(&got).zip(&sent) {
            *x = if *b > 0.0 { a / b } else { 0.0 };
        }
        send.keys.scaled(&factor)
    });
    for ((g, f), s) in flows.iter().enumerate().zip(streams) {
        if f.total() <= 0.0 {
            continue;
        }
        traffic[g].flow.merge(f);
        traffic[g].streams.extend(s);
    }
}

/// The per-key rates of one keyed stream reaching each component whose flow `flows` it
/// reaches: `at(flow)`, the stream's keys scaled to the flow there, except for the targets
/// of a component that partitions keys (a shard router), which get the keys it sends them
/// (all of their stream is taken to come through it).
fn keys_by_group(
    model: &Model,
    flows: &[Flow],
    at: impl Fn(&Flow) -> KeyRates,
) -> Vec<Option<KeyRates>> {
    let mut out: Vec<Option<KeyRates>> = flows
        .iter()
        .map(|f| (f.total() > 0.0).then(|| at(f)))
        .collect();
    let mut given: Vec<Vec<KeyRates>> = vec![Vec::new(); flows.len()];
    for (r, c) in model.components.iter().enumerate() {
        let Some(keys) = &out[r] else {
            continue;
        };
        for (t, part) in c.kind.partition_keys(model, keys).into_iter().flatten() {
            given[t].push(part);
        }
    }
    for (o, parts) in out.iter_mut().zip(given) {
        if !parts.is_empty() {
            *o = Some(KeyRates::sum(&parts));
        }
    }
    out
}

/// The estimates each kind makes of its own metrics, for the settled `flows`; a kind may
/// add warnings about what it found.
fn metric_estimates(
    model: &Model,
    flows: &[Flow],
    keyed: &[Option<KeyedEstimate>],
    warnings: &mut Vec<String>,
) -> Vec<(String, Vec<MetricEstimate>)> {
    let mut all = Vec::new();
    for (g, c) in model.components.iter().enumerate() {
        let net = Network {
            model,
            group: g,
            keyed,
            by_source: false,
        };
        let mine = c.kind.metric_estimates(&net, &flows[g], warnings);
        if !mine.is_empty() {
            all.push((c.name.clone(), mine));
        }
    }
    all
}

fn open_rate(model: &Model, a: &Arrivals) -> f64 {
    match a {
        Arrivals::Renewal(d) => 1e9 / d.mean_ns(),
        Arrivals::Profile(p) => p.mean_rate(crate::time::SimTime(model.duration.0)),
        Arrivals::Closed { .. } => 0.0,
        Arrivals::Trace(records) => records.len() as f64 / model.duration.as_secs_f64().max(1e-9),
    }
}

fn arrival_scv(a: &Arrivals) -> f64 {
    match a {
        Arrivals::Renewal(d) => d.scv(),
        _ => 1.0,
    }
}

/// Most passes of the fixed-point iterations over route edges.
const MAX_ROUTE_PASSES: usize = 10_000;
/// The iterations stop when no value changes by more than this, relatively.
const ROUTE_TOLERANCE: f64 = 1e-12;

/// What [`solve`] finds: the service estimates, the mean response time of each workload
/// (ms), whether the flows over route edges settled, and the flow into each component.
type Solution = (Vec<(String, ServiceEstimate)>, Vec<f64>, bool, Vec<Flow>);

/// The flow into each component when the workloads send `rates` requests per second
/// (and with the keyed estimates `keyed`): for a component's estimate of a scenario other
/// than the mean rates (a queue's burst).
pub fn flows_at(model: &Model, rates: &[f64], keyed: &[Option<KeyedEstimate>]) -> Vec<Flow> {
    let mut external: Vec<Flow> = (0..model.components.len())
        .map(|_| Flow::new(model.classes.len()))
        .collect();
    for (i, rate) in rates.iter().enumerate() {
        add_workload(model, i, *rate, &mut external);
    }
    propagate(model, &model.graph.callers_first(), external, keyed, false).0
}

/// The mean rate of workload `w` over the run (0 for a closed one).
pub fn mean_rate(model: &Model, w: usize) -> f64 {
    open_rate(model, &model.workloads[w].arrivals)
}

/// Propagates flows for given workload rates (and the keyed estimates `keyed`).
fn solve(model: &Model, rates: &[f64], keyed: &[Option<KeyedEstimate>]) -> Solution {
    let n = model.components.len();
    let k = model.classes.len();
    let mut external: Vec<Flow> = (0..n).map(|_| Flow::new(k)).collect();
    for (i, rate) in rates.iter().enumerate() {
        add_workload(model, i, *rate, &mut external);
    }
    let order = model.graph.callers_first();
    let (flows, settled) = propagate(model, &order, external, keyed, false);
    let (est, response_ms) = response_pass(model, &order, &flows, keyed);
    let services = model
        .components
        .iter()
        .zip(est)
        .filter_map(|(c, e)| e.map(|e| (c.name.clone(), e)))
        .collect();
    let workload_ms = model
        .workloads
        .iter()
        .map(|w| response_ms[w.target as usize])
        .collect();
    (services, workload_ms, settled, flows)
}

/// The flows into every component from the external flows `external`, callers first
/// (`order`), and whether the flows over route edges settled. Route edges may form cycles:
/// the traffic equations λ_j = γ_j + Σ_i λ_i·p_ij are solved by repeating the flow pass,
/// each feeding the routed flows of the last one back in.
fn propagate(
    model: &Model,
    order: &[usize],
    external: Vec<Flow>,
    keyed: &[Option<KeyedEstimate>],
    by_source: bool,
) -> (Vec<Flow>, bool) {
    let n = model.components.len();
    let k = model.classes.len();
    let mut routed: Vec<Flow> = (0..n).map(|_| Flow::new(k)).collect();
    let mut flows = external.clone();
    let mut settled = false;
    for _ in 0..MAX_ROUTE_PASSES {
        flows = external.clone();
        for (f, r) in flows.iter_mut().zip(&routed) {
            f.merge(r);
        }
        let next = flow_pass(model, order, &mut flows, keyed, by_source);
        let change = routed
            .iter()
            .zip(&next)
            .map(|(a, b)| a.change(b))
            .fold(0.0, f64::max);
        routed = next;
        if !change.is_finite() {
            break;
        }
        if change <= ROUTE_TOLERANCE {
            settled = true;
            break;
        }
    }
    (flows, settled)
}

/// One pass down the call graph, callers before callees: each component adds the requests
/// it sends on to the flows of its callees, and returns the flows its routes hand on (to be
/// added in the next pass, as routes may lead back up).
fn flow_pass(
    model: &Model,
    order: &[usize],
    flows: &mut [Flow],
    keyed: &[Option<KeyedEstimate>],
    by_source: bool,
) -> Vec<Flow> {
    let k = model.classes.len();
    let mut routed: Vec<Flow> = (0..flows.len()).map(|_| Flow::new(k)).collect();
    for &g in order {
        let flow = flows[g].clone();
        let net = Network {
            model,
            group: g,
            keyed,
            by_source,
        };
        model.components[g]
            .kind
            .pass_flows(&net, &flow, flows, &mut routed);
    }
    routed
}

/// Response times, callees before callers, with the estimate of each component that has
/// one. A `route` step adds Σ p·R of its targets; as routes may lead back up, the pass
/// repeats until the response times settle (R = b + P·R, solved by Gauss-Seidel iteration).
fn response_pass(
    model: &Model,
    order: &[usize],
    flows: &[Flow],
    keyed: &[Option<KeyedEstimate>],
) -> (Vec<Option<ServiceEstimate>>, Vec<f64>) {
    let n = model.components.len();
    let mut est: Vec<Option<ServiceEstimate>> = vec![None; n];
    let mut response_ms = vec![0.0; n];
    for _ in 0..MAX_ROUTE_PASSES {
        let before = response_ms.clone();
        for &g in order.iter().rev() {
            let net = Network {
                model,
                group: g,
                keyed,
                by_source: false,
            };
            let (r, e) = model.components[g]
                .kind
                .response(&net, &flows[g], &response_ms);
            if e.is_some() {
                est[g] = e;
            }
            response_ms[g] = r;
        }
        let settled = before
            .iter()
            .zip(&response_ms)
            .all(|(a, b)| a == b || (a - b).abs() <= ROUTE_TOLERANCE * a.abs().max(b.abs()));
        // An unstable service stays at ∞ (∞ == ∞ settles); NaN never would.
        if settled || response_ms.iter().any(|r| r.is_nan()) {
            break;
        }
    }
    (est, response_ms)
}

/// Draws per fan-out estimate (samples × callees), enough for about 1% at 100 callees.
const FAN_OUT_DRAWS: usize = 2_000_000;

/// Mean time (ms) until `need` of the calls of a fan-out to `groups` have answered: the
/// expected k-th smallest of the callees' response times, each drawn from that callee's
/// own distribution (its handler's work steps as written, its queue wait as exponential
/// with the estimated mean wait), averaged over a fixed-seed sample. A callee whose
/// handler calls, fans out or routes, and a balancer, count as exponential with their
/// estimated mean response. (Waiting for all of n exponential answers of mean m takes
/// m·H(n); for a heavy tail it takes far longer, which averaging means alone misses.)
pub fn fan_out_ms(
    model: &Model,
    class: usize,
    groups: &[u32],
    need: u16,
    response_ms: &[f64],
) -> f64 {
    let n = groups.len();
    if n == 0 || response_ms.is_empty() {
        return 0.0;
    }
    let k = (need as usize).clamp(1, n);
    let samples = (FAN_OUT_DRAWS / n).clamp(100, 20_000);
    let mut rng = crate::random::stream(0, "analysis:fan_out");
    let mut draws = vec![0.0; n];
    let mut sum = 0.0;
    for _ in 0..samples {
        for (d, g) in draws.iter_mut().zip(groups) {
            let g = *g as usize;
            let mean = response_ms.get(g).copied().unwrap_or(0.0);
            *d = match model.components[g]
                .kind
                .sample_response_ms(class, mean, &mut rng)
            {
                Some(ms) => ms,
                None => exp_sample_ms(mean, &mut rng),
            };
        }
        draws.select_nth_unstable_by(k - 1, f64::total_cmp);
        sum += draws[k - 1];
    }
    sum / samples as f64
}

/// One draw from an exponential law of mean `m` ms (`m` itself when not a positive finite
/// number).
pub fn exp_sample_ms(m: f64, rng: &mut crate::random::Rng) -> f64 {
    if m.is_finite() && m > 0.0 {
        let e: f64 = rand_distr::Distribution::sample(&rand_distr::Exp1, rng);
        e * m
    } else {
        m.max(0.0)
    }
}

/// Squared coefficient of variation of the departures of a G/G/c station with arrival SCV
/// `ca2`, service SCV `cs2` and utilization `rho` (Whitt's QNA).
pub fn departure_scv(ca2: f64, cs2: f64, rho: f64, c: u32) -> f64 {
    1.0 + (1.0 - rho * rho) * (ca2 - 1.0) + rho * rho * (cs2 - 1.0) / f64::from(c).sqrt()
}

/// Erlang C: probability that an arrival waits in M/M/c with offered load `a` (< c).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let b = erlang_b(c, a);
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

/// Erlang B: blocking probability of M/G/c/c with offered load `a`, by the stable recursion.
pub fn erlang_b(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
        if b == 0.0 {
            break; // stays zero
        }
    }
    b
}

/// M/M/c/K with `k` waiting places: (blocking probability, mean wait of admitted requests
/// in the same time unit as `s`). Birth-death solution (Gross & Harris §2.5).
pub fn mmck(lambda: f64, s: f64, c: u32, k: u32) -> (f64, f64) {
    if lambda <= 0.0 || s <= 0.0 {
        return (0.0, 0.0);
    }
    let a = lambda * s;
    let cap = c + k;
    let mut p = Vec::with_capacity(cap as usize + 1);
    p.push(1.0f64);
    for n in 1..=cap {
        let servers = f64::from(n.min(c));
        let prev = p[n as usize - 1];
        p.push(prev * a / servers);
    }
    let total: f64 = p.iter().sum();
    let p: Vec<f64> = p.iter().map(|x| x / total).collect();
    let blocking = p[cap as usize];
    let lq: f64 = (c..=cap).map(|n| f64::from(n - c) * p[n as usize]).sum();
    let admitted = lambda * (1.0 - blocking);
    (blocking, if admitted > 0.0 { lq / admitted } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_values_match_the_validation_tables() {
        // ../shared/validation Q4 and Q3.
        assert!((erlang_b(10, 5.0) - 0.0183846).abs() < 1e-6);
        assert!((erlang_b(30, 25.0) - 0.0526032).abs() < 1e-6);
        assert!((erlang_c(10, 8.0) - 0.409180).abs() < 1e-6);
        assert!((erlang_c(4, 3.0) - 0.509434).abs() < 1e-6);
    }

    fn model(text: &str) -> Model {
        crate::model::parse_model_str(
            text,
            crate::model::Format::Json,
            std::path::Path::new("."),
            &[],
        )
        .unwrap()
    }

    /// Validation L3: 10 M/M/1 instances at ρ = 0.9. Least connections pools them into the
    /// M/M/10 bound (W = 1.66873 service times); round robin and random stay per instance.
    #[test]
    fn least_connections_pools_its_instances_into_one_queue() {
        let lb = |policy: &str, queue: &str| {
            model(&format!(
                r#"{{"duration": "1s",
                    "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 9000}}}}, "target": "lb"}}}},
                    "components": {{
                      "lb": {{"kind": "load_balancer", "policy": "{policy}", "backends": "s"}},
                      "s": {{"kind": "service", "replicas": 10 {queue},
                             "service_time": {{"exponential": {{"mean": "1ms"}}}}}}}}}}"#
            ))
        };
        let est = |m: &Model| estimate(m).services[0].1.clone();
        let pooled = est(&lb("least_connections", ""));
        assert_eq!(pooled.method, "pooled");
        assert!(
            (pooled.response_mean_ms - 1.66873).abs() < 1e-4,
            "{pooled:?}"
        );
        assert!((pooled.utilization - 0.9).abs() < 1e-12);
        let random = est(&lb("random", ""));
        assert_eq!(random.method, "erlang_c");
        assert!((random.response_mean_ms - 10.0).abs() < 1e-9, "{random:?}");
        // Bounded queues: M/M/10/(10·K), against M/M/1/K per instance.
        let bounded = est(&lb("least_connections", r#", "queue": 5"#));
        assert_eq!(bounded.method, "pooled_mmck");
        let (blocking, wq) = mmck(9.0, 1.0, 10, 50);
        assert!((bounded.blocking - blocking).abs() < 1e-12);
        assert!((bounded.wait_mean_ms - wq).abs() < 1e-9);
        assert_eq!(est(&lb("round_robin", r#", "queue": 5"#)).method, "mmck");
    }

    #[test]
    fn central_server_network_matches_jackson() {
        // Validation Q10 (a): λ = 1/ms to the cpu (μ = 4), then disk1 0.3, disk2 0.2, exit
        // 0.5; disks (μ = 1) return to the cpu. Visit ratios 2, 0.6, 0.4; product form.
        let e = estimate(&model(include_str!("../models/central-server.json")));
        let u = |name: &str| {
            let (_, s) = e.services.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(s.method, "erlang_c", "{name}");
            s.utilization
        };
        assert!((u("cpu") - 0.5).abs() < 1e-9);
        assert!((u("disk1") - 0.6).abs() < 1e-9);
        assert!((u("disk2") - 0.4).abs() < 1e-9);
        let (_, rate, r_ms) = &e.workloads[0];
        assert!((rate - 1000.0).abs() < 1e-9);
        // R = 0.5 + 0.3·(2.5 + R) + 0.2·(1/0.6 + R), so R = 19/6 ms.
        assert!((r_ms - 19.0 / 6.0).abs() < 1e-9, "{r_ms}");
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn bernoulli_feedback_matches_jackson() {
        // Validation Q10 (b): λ = 0.5, μ = 2, back to the queue with 0.5: ρ = 0.5, T = 2.
        let e = estimate(&model(
            r#"{"duration": "1s", "workloads": {"w": {"arrivals": {"poisson": {"rate": 500}}, "target": "s"}},
                "components": {"s": {"kind": "service", "service_time": {"exponential": {"mean": "0.5ms"}},
                                     "handler": [{"work": "service_time"}, {"route": {"s": 0.5}}]}}}"#,
        ));
        assert!((e.services[0].1.utilization - 0.5).abs() < 1e-9);
        assert!((e.workloads[0].2 - 2.0).abs() < 1e-9);
    }

    #[test]
    fn mmck_matches_the_birth_death_case() {
        // Q5: M/M/2/5, λ = 1.8, μ = 1 → P(block) = 0.141077, Wq of admitted 0.589177.
        let (b, wq) = mmck(1.8, 1.0, 2, 3);
        assert!((b - 0.141077).abs() < 1e-6);
        assert!((wq - 0.589177).abs() < 1e-6);
    }
}
