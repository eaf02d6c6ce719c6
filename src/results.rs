//! What one run measured, in a form that serializes to stable JSON: per workload (and
//! class) latency percentiles, throughput and errors; per component and instance the
//! component's own metrics; and the conservation check.

use crate::client::Workloads;
use crate::engine::watch::{Sink, Watcher};
use crate::engine::{RunError, Simulation};
use crate::metrics::declare::{MetricDecl, Shape, numbers};
use crate::metrics::window::{ComponentWindows, LatencyWindows};
use crate::metrics::{LatencyHistogram, LatencySummary, WaitHistogram, combine};
use crate::model::Model;
use crate::policy::report::{AmplificationWindows, ClientAttempts};
use crate::progress::{EVENTS_PER_STEP, RUN_PPM, RunProgress};
use crate::replicate::Watched;
use crate::time::SimTime;
use crate::trace::Names;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use crate::components::autoscaler::results::{AutoscalingResult, ScalingActionResult};
pub use crate::components::database::sides::PartitionSideResult;

/// Result of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Seed of the run.
    pub seed: u64,
    /// Start of the measurement window (end of warm-up), seconds.
    pub window_start_s: f64,
    /// End of the measurement window, seconds.
    pub window_end_s: f64,
    /// Events handled by the engine during the whole run.
    pub events: u64,
    /// Set when the run stopped before `duration` because `max_in_flight` requests were in
    /// flight; the window then ends at that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<StoppedEarly>,
    /// Per workload.
    pub workloads: IndexMap<String, WorkloadResult>,
    /// Per component.
    pub components: IndexMap<String, ComponentResult>,
    /// arrived = completed + failed + in flight, over the whole run.
    pub conservation: Conservation,
    /// What the design costs to run.
    pub cost: Cost,
    /// Per workload: answers and mean latency per time window, over the whole run.
    pub series: IndexMap<String, Series>,
    /// Per component, each of its metrics that can be cut into windows (counts, rates,
    /// time averages, weighted shares), per time window as `series` (only in a model with
    /// faults or bursts, or with `component_series`; 0 before the end of warm-up).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub component_series: IndexMap<String, IndexMap<String, Vec<f64>>>,
    /// Every fault window of the run, and every workload's burst, in the order they began,
    /// with how the system recovered from each (left out without faults or bursts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultWindowResult>,
    /// Per edge with a call policy (`caller->callee`): calls, attempts, retries, timeouts,
    /// the breaker's changes (left out without policies).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub edges: IndexMap<String, crate::policy::report::EdgeResult>,
    /// Retry amplification per tier: attempts reaching each callee of a call policy per
    /// original client request, over all its guarded callers (left out without policies).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub amplification: IndexMap<String, f64>,
    /// The same per time window, as `series`: attempts reaching each tier in a window per
    /// client request that arrived in it (left out without policies; 0 before the end of
    /// warm-up and in a window without arrivals).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub amplification_series: IndexMap<String, Vec<f64>>,
    /// Per autoscaler: instances over time, its actions, instance-hours and their cost
    /// (left out without autoscalers).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub autoscaling: IndexMap<String, AutoscalingResult>,
    /// Latency histogram of each workload's successful requests (all classes), for
    /// merging across replications; not serialized.
    #[serde(skip)]
    pub latency: Vec<LatencyHistogram>,
}

/// One fault on one instance, from its start to its end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultWindowResult {
    /// The fault's name.
    pub name: String,
    /// The component it hit.
    pub target: String,
    /// The instance it hit (empty for a burst).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// What it did: crash, slow, errors, workers or flush; `burst` for a workload's spike
    /// of arrivals (its target is then the workload).
    pub effect: String,
    /// Its setting: the crash mode, the factor, the share, the workers left.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// When it began, seconds of simulated time.
    pub start_s: f64,
    /// When it ended, seconds (the end of the run if it was still on).
    pub end_s: f64,
    /// How the system came back (see [`crate::faults::recovery`]); left out when nothing
    /// was measured before the fault to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryResult>,
}

/// The `effect` of a workload's burst among the fault windows.
pub const BURST: &str = "burst";

/// How the system came back from one fault window (see [`crate::faults::recovery`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecoveryResult {
    /// The workloads judged: those whose requests can reach the fault's component.
    pub workloads: Vec<String>,
    /// Their goodput before the fault, summed, per second.
    pub baseline_goodput_per_s: f64,
    /// Their p99 before the fault (the highest of theirs), ms.
    pub baseline_p99_ms: f64,
    /// When every one was back in its band: the start of the first such window at or
    /// after the fault's end, seconds; null if never (or the fault lasted to the end).
    pub recovered_s: Option<f64>,
    /// From the fault's start to `recovered_s`, seconds.
    pub time_to_recover_s: Option<f64>,
    /// Their requests failed in the windows from the fault's start to its end.
    pub failed_during: u64,
    /// Their requests failed after that until they were back (to the end of the run if
    /// never).
    pub failed_after: u64,
    /// Not back `metastable_after` after the fault's end: a metastable failure.
    pub metastable: bool,
}

/// Why and when a run stopped before its `duration`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct StoppedEarly {
    /// Simulated time of the stop, seconds.
    pub at_s: f64,
    /// Requests in flight then (the model's `max_in_flight`).
    pub in_flight: u64,
}

impl StoppedEarly {
    /// One line for people: when, why, and what to do.
    pub fn message(&self, seed: u64) -> String {
        format!(
            "seed {seed}: stopped early at t = {}s of simulated time: {} requests were in flight, the model's max_in_flight; the system is overloaded (requests arrive faster than they finish, so its queues grow without bound); results cover the run up to that time; lower the load, add capacity, or raise max_in_flight",
            self.at_s, self.in_flight
        )
    }
}

/// What the clients of one workload saw in the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Requests created.
    pub arrived: u64,
    /// Successful responses.
    pub completed: u64,
    /// Failed requests (all causes).
    pub failed: u64,
    /// Failures by cause.
    pub errors: IndexMap<String, u64>,
    /// Answers (successes and failures) per second.
    pub throughput_per_s: f64,
    /// Successful responses per second.
    pub goodput_per_s: f64,
    /// Failed share of answered requests.
    pub error_share: f64,
    /// Latency of successful responses.
    pub latency: LatencySummary,
    /// The same, per request class (only when the workload has several).
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    pub classes: IndexMap<String, ClassResult>,
    /// What its retries did (only for a workload with `retries`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retries: Option<RetryResult>,
}

/// What a workload's client retries did in the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryResult {
    /// Attempts sent: the requests that arrived and their retries.
    pub attempts: u64,
    /// Attempts sent again after a failure.
    pub retries: u64,
    /// Attempts per request that arrived.
    pub attempts_per_request: f64,
    /// Failures not retried because the retry budget had no token.
    pub budget_exhausted: u64,
    /// Time spent waiting to retry (the backoffs), per request that arrived, ms.
    pub backoff_mean_ms: f64,
    /// Non-idempotent writes done more than once (only with `"idempotent": false`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duplicates: Option<u64>,
    /// Duplicates an idempotency key removed (only with `"idempotent": false`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deduplicated: Option<u64>,
}

/// One request class of a workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassResult {
    /// Requests created.
    pub arrived: u64,
    /// Successful responses.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// Successful responses per second.
    pub goodput_per_s: f64,
    /// Latency of successful responses.
    pub latency: LatencySummary,
}

/// One component: each instance's metrics, and the component's totals. Its metrics are
/// those its kind declares (see [`crate::metrics::declare`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentResult {
    /// Kind, as in the model file.
    pub kind: String,
    /// Number metrics combined over instances (sums, means or maxima, as declared).
    pub total: IndexMap<String, f64>,
    /// Distributions and histograms combined over instances: e.g. a service's
    /// `occupancy` (share of time with 0, 1, 2, ... requests at an instance, averaged over
    /// the instances; the last entry of a 64-long list counts 63 or more) and `wait`
    /// (queue wait before a worker took the request, over all instances, 2 significant
    /// digits).
    #[serde(flatten)]
    pub detail: Detail,
    /// For a database with a `partition_mode`: what each side of each network partition
    /// saw (left out otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_sides: Vec<PartitionSideResult>,
    /// Per instance.
    pub instances: Vec<InstanceResult>,
}

/// One instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceResult {
    /// Name, e.g. `app[2]`.
    pub name: String,
    /// Its number metrics.
    pub metrics: IndexMap<String, f64>,
    /// Its distributions and histograms.
    #[serde(flatten)]
    pub detail: Detail,
}

/// The distributions and histograms of a component or instance, by declared name. They
/// are written as fields of their owner: the distributions, then the histograms (as
/// percentiles), each in declaration order; an empty distribution is left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    /// Distributions of shares.
    pub distributions: IndexMap<String, Vec<f64>>,
    /// Histograms of durations.
    pub histograms: IndexMap<String, LatencySummary>,
}

impl Detail {
    /// The named distributions and histograms of values reported for `decls`.
    fn of(decls: &[MetricDecl], distributions: &[Vec<f64>], histograms: &[WaitHistogram]) -> Self {
        let named = |shape: Shape| {
            decls
                .iter()
                .filter(move |d| d.shape == shape)
                .map(|d| d.name.to_string())
        };
        Detail {
            distributions: named(Shape::Distribution)
                .zip(distributions.iter().cloned())
                .collect(),
            histograms: named(Shape::Histogram)
                .zip(histograms.iter().map(WaitHistogram::summary))
                .collect(),
        }
    }
    /// The distribution `name`; empty when there is none.
    pub fn distribution(&self, name: &str) -> &[f64] {
        self.distributions.get(name).map_or(&[], Vec::as_slice)
    }
    /// The histogram `name`, as percentiles.
    pub fn histogram(&self, name: &str) -> Option<&LatencySummary> {
        self.histograms.get(name)
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.distributions.iter().filter(|(_, v)| !v.is_empty()) {
            m.serialize_entry(k, v)?;
        }
        for (k, v) in &self.histograms {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Distribution(Vec<f64>),
            Histogram(LatencySummary),
        }
        let mut detail = Detail::default();
        for (k, v) in IndexMap::<String, Entry>::deserialize(d)? {
            match v {
                Entry::Distribution(x) => detail.distributions.insert(k, x).map(|_| ()),
                Entry::Histogram(x) => detail.histograms.insert(k, x).map(|_| ()),
            };
        }
        Ok(detail)
    }
}

/// Cost of the design: instance prices from the model (`cost_per_hour`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Cost {
    /// Sum over components of instances × price per instance-hour.
    pub per_hour: f64,
    /// Cost per hour spread over the successful responses of an hour, per million.
    pub per_million_requests: f64,
}

/// A workload's answers over time, in fixed windows from time zero (warm-up included).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Series {
    /// Width of a window, seconds.
    pub window_s: f64,
    /// Successful responses per window.
    pub completed: Vec<u64>,
    /// Failures per window.
    pub failed: Vec<u64>,
    /// Mean latency of the successful responses of each window, ms (0 when none).
    pub latency_mean_ms: Vec<f64>,
    /// 99th percentile of the latency of the successful responses of each window, ms (0
    /// when none, and in warm-up); only in a model with faults or bursts, or with
    /// `component_series`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_p99_ms: Vec<f64>,
}

/// The request conservation check over the whole run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Conservation {
    /// Requests created.
    pub arrived: u64,
    /// Answered successfully.
    pub completed: u64,
    /// Answered with a failure.
    pub failed: u64,
    /// Not answered when the run ended.
    pub in_flight: u64,
    /// True when arrived = completed + failed + in flight.
    pub holds: bool,
}

/// Runs `model` once with `seed` and collects its result. A model with faults or bursts
/// runs window by window, its series sampled at each window's end, and gets its recovery
/// analysis; a model with call policies runs window by window too, for its amplification
/// series.
pub fn run_once(model: &Model, seed: u64) -> Result<RunResult, RunError> {
    run_observed(model, seed, None)
}

/// [`run_once`], adding the simulated time it covers and the events it handles to
/// `progress` as it goes (in [`STEPS_PER_RUN`] steps; the result is the same as without).
pub fn run_observed(
    model: &Model,
    seed: u64,
    progress: Option<&RunProgress>,
) -> Result<RunResult, RunError> {
    run_stepped(model, seed, progress, EVENTS_PER_STEP, None).map(|(r, _)| r)
}

/// [`run_observed`], its requests followed by a watcher that hands their lives to `sink`
/// (see `engine/watch.rs`; the result is the same as without). Returns the sink with what
/// it was given, and the names its lives refer to.
pub fn run_watched(
    model: &Model,
    seed: u64,
    progress: Option<&RunProgress>,
    sink: Box<dyn Sink>,
) -> Result<(RunResult, Box<dyn Sink>, Names), RunError> {
    let (r, watched) = run_stepped(model, seed, progress, EVENTS_PER_STEP, Some(sink))?;
    let (sink, names) = watched.expect("a watched run keeps its sink");
    Ok((r, sink, names))
}

/// [`run_observed`], reporting progress every `step` events, watched when `watch` is
/// given.
fn run_stepped(
    model: &Model,
    seed: u64,
    progress: Option<&RunProgress>,
    step: u64,
    watch: Option<Box<dyn Sink>>,
) -> Result<(RunResult, Watched), RunError> {
    let mut sim = crate::topology::simulation(model, seed);
    if let Some(sink) = watch {
        sim = sim.watched(Watcher::new(seed, SimTime(model.warmup.0), sink));
    }
    let mut reported = Reported::default();
    let disturbed = disturbed(model);
    let sampled = disturbed || model.component_series;
    if !sampled && crate::policy::report::amplified_tiers(model).is_empty() {
        if let Some(p) = progress {
            while sim.advance_by(step) {
                reported.to(p, &sim);
            }
        }
        sim.run()?;
        if let Some(p) = progress {
            reported.finish(p, &sim);
        }
        let watched = watched(model, &mut sim);
        return Ok((collect(model, &sim, seed), watched));
    }
    let mut sampler = Sampler::new(model, sampled);
    let window = model.series_window.0.max(1);
    let mut t = window;
    while t < model.duration.0 && sim.stopped_at().is_none() {
        // A run over before its duration (its workloads ran out) has its series cut at its
        // end: the windows past it are not sampled.
        if let Some(end) = sim.over_at()
            && sampler.windows as u64 >= end.0.div_ceil(window).max(1)
        {
            break;
        }
        // Events at a window's end belong to the next window, as answers do.
        sim.advance_to(SimTime(t - 1));
        sampler.sample(model, &sim, SimTime(t));
        if let Some(p) = progress {
            reported.to(p, &sim);
        }
        t += window;
    }
    sim.run()?;
    if let Some(p) = progress {
        reported.finish(p, &sim);
    }
    let end = sim.window().1;
    sampler.sample(model, &sim, end);
    let mut r = collect(model, &sim, seed);
    sampler.finish(model, &mut r);
    if disturbed {
        crate::faults::recovery::analyse(model, &mut r);
    }
    Ok((r, watched(model, &mut sim)))
}

/// The watcher's sink and the names of what it saw, once `sim` has run.
fn watched(model: &Model, sim: &mut Simulation<Workloads>) -> Watched {
    let w = sim.take_watcher()?;
    Some((w.into_sink(), Names::of(model, sim)))
}

/// What a run has added to a [`RunProgress`] so far.
#[derive(Default)]
struct Reported {
    done_ppm: u64,
    events: u64,
}

impl Reported {
    /// Reports the share of its work `sim` has done: the larger of the share of its
    /// duration simulated and, when every workload sends a known number of requests, the
    /// smallest share of them sent.
    fn to(&mut self, progress: &RunProgress, sim: &Simulation<Workloads>) {
        let ctx = sim.context();
        let time = ctx.now().0 as f64 / ctx.horizon.0.max(1) as f64;
        let sent = sim
            .clients()
            .0
            .iter()
            .map(|w| w.sent_share())
            .try_fold(1.0f64, |least, s| s.map(|s| least.min(s)))
            .unwrap_or(0.0);
        let share = time.max(sent).min(1.0);
        self.report(progress, (share * RUN_PPM as f64) as u64, sim);
    }

    /// Reports the whole run done.
    fn finish(&mut self, progress: &RunProgress, sim: &Simulation<Workloads>) {
        self.report(progress, RUN_PPM, sim);
    }

    fn report(&mut self, progress: &RunProgress, done_ppm: u64, sim: &Simulation<Workloads>) {
        let done_ppm = done_ppm.max(self.done_ppm);
        let events = sim.context().calendar.popped().max(self.events);
        progress.add(done_ppm - self.done_ppm, events - self.events);
        self.done_ppm = done_ppm;
        self.events = events;
    }
}

/// True when `model` has faults or a workload's burst: its runs get per-window series of
/// p99 and component metrics, and the recovery analysis.
pub fn disturbed(model: &Model) -> bool {
    !model.faults.is_empty() || model.workloads.iter().any(|w| w.burst.is_some())
}

/// Series taken at each window's end of a run in progress (see [`crate::metrics::window`]).
struct Sampler {
    /// Series of p99 and component metrics (a model with faults or bursts only).
    disturbed: bool,
    latency: Vec<LatencyWindows>,
    components: Vec<ComponentWindows>,
    /// Retry amplification (a model with call policies).
    amplification: AmplificationWindows,
    /// Windows sampled so far.
    windows: usize,
}

impl Sampler {
    fn new(model: &Model, disturbed: bool) -> Self {
        Sampler {
            disturbed,
            amplification: AmplificationWindows::new(model),
            latency: model.workloads.iter().map(|_| Default::default()).collect(),
            components: model
                .components
                .iter()
                .map(|c| ComponentWindows::new(c.kind.metrics()))
                .collect(),
            windows: 0,
        }
    }
    /// The window ending at `t` (or the run's last, ending at `t`) is over.
    fn sample(&mut self, model: &Model, sim: &Simulation<Workloads>, t: SimTime) {
        self.windows += 1;
        let ctx = sim.context();
        let start = sim.window().0;
        if !self.amplification.is_empty() {
            let requests = ctx.stats.iter().flat_map(|s| &s.arrived).sum();
            let client = client_attempts(model, ctx);
            self.amplification
                .push(model, sim.guard_edges(), &client, requests, t > start);
        }
        if !self.disturbed {
            return;
        }
        for (w, s) in self.latency.iter_mut().zip(&ctx.stats) {
            let mut all = LatencyHistogram::new();
            s.latency.iter().for_each(|h| all.merge(h));
            w.push(all);
        }
        if t <= start {
            self.components.iter_mut().for_each(ComponentWindows::skip);
            return;
        }
        let reports = sim.reports_at(t);
        let measured = t.since(start).as_secs_f64();
        for (def, c) in model.components.iter().zip(&mut self.components) {
            let first = def.first_instance as usize;
            let all = combine(&reports[first..first + def.replicas as usize]);
            c.push(measured, &all.numbers);
        }
    }
    /// Puts the series into `r`, cut to its workloads' series' length.
    fn finish(self, model: &Model, r: &mut RunResult) {
        let len = r.series.values().next().map_or(0, |s| s.completed.len());
        r.amplification_series = self.amplification.finish(model, len);
        if !self.disturbed {
            return;
        }
        for (s, w) in r.series.values_mut().zip(self.latency) {
            let mut p99 = w.p99_ms;
            p99.resize(s.completed.len(), 0.0);
            s.latency_p99_ms = p99;
        }
        for (name, c) in r.components.keys().zip(self.components) {
            let mut series = IndexMap::new();
            for (metric, mut values) in c.into_series() {
                values.resize(len, 0.0);
                series.insert(metric, values);
            }
            r.component_series.insert(name.clone(), series);
        }
    }
}

/// The result of `sim`, a finished run of `model` seeded `seed` (for a run driven by hand:
/// instances set down midway).
pub fn collect(model: &Model, sim: &Simulation<Workloads>, seed: u64) -> RunResult {
    let (start, end) = sim.window();
    let window_s = end.since(start).as_secs_f64();
    let per_s = |n: u64| {
        if window_s > 0.0 {
            n as f64 / window_s
        } else {
            0.0
        }
    };
    let ctx = sim.context();
    let mut workloads = IndexMap::new();
    let mut latency = Vec::new();
    let workloads_and_stats = || sim.clients().0.iter().zip(&ctx.stats);
    // A model lists the causes it can fail with: a model without faults or policies lists
    // only those every model can meet.
    let causes = model.causes();
    for (i, (w, s)) in workloads_and_stats().enumerate() {
        let mut all = LatencyHistogram::new();
        let mut classes = IndexMap::new();
        let mut errors: IndexMap<String, u64> = IndexMap::new();
        let (mut arrived, mut completed, mut failed) = (0, 0, 0);
        for (class, _) in &w.def.classes {
            let c = *class as usize;
            all.merge(&s.latency[c]);
            let class_failed: u64 = s.failed[c].iter().sum();
            arrived += s.arrived[c];
            completed += s.completed[c];
            failed += class_failed;
            for &cause in &causes {
                *errors.entry(cause.name().to_string()).or_default() += s.failed[c][cause as usize];
            }
            classes.insert(
                model.classes[c].clone(),
                ClassResult {
                    arrived: s.arrived[c],
                    completed: s.completed[c],
                    failed: class_failed,
                    goodput_per_s: per_s(s.completed[c]),
                    latency: s.latency[c].summary(),
                },
            );
        }
        if classes.len() == 1 {
            classes.clear();
        }
        let answered = completed + failed;
        workloads.insert(
            w.def.name.clone(),
            WorkloadResult {
                arrived,
                completed,
                failed,
                errors,
                throughput_per_s: per_s(answered),
                goodput_per_s: per_s(completed),
                error_share: if answered > 0 {
                    failed as f64 / answered as f64
                } else {
                    0.0
                },
                latency: all.summary(),
                classes,
                retries: retry_result(w, ctx.retry_counts().get(i), arrived),
            },
        );
        latency.push(all);
    }

    let reports = sim.instance_reports();
    let mut components = IndexMap::new();
    for def in &model.components {
        let first = def.first_instance as usize;
        let mine = &reports[first..first + def.replicas as usize];
        let decls = def.kind.metrics();
        let names = || numbers(decls).map(|d| d.name.to_string());
        let all = combine(mine);
        let instance_names: Vec<String> = mine.iter().map(|r| r.name.clone()).collect();
        let sides = sim.partition_sides(def.first_instance);
        let partition_sides =
            crate::components::database::sides::results(model, sides, &instance_names, end);
        let instances = mine
            .iter()
            .map(|r| InstanceResult {
                name: r.name.clone(),
                metrics: names().zip(r.numbers.iter().copied()).collect(),
                detail: Detail::of(decls, &r.distributions, &r.histograms),
            })
            .collect();
        components.insert(
            def.name.clone(),
            ComponentResult {
                kind: def.kind.name().to_string(),
                total: names().zip(all.numbers).collect(),
                detail: Detail::of(decls, &all.distributions, &all.histograms),
                partition_sides,
                instances,
            },
        );
    }

    let series = workloads_and_stats()
        .map(|(w, s)| {
            let last = (end.0.div_ceil(s.window_ns) as usize).clamp(1, s.series.len());
            let win = &s.series[..last];
            (
                w.def.name.clone(),
                Series {
                    window_s: s.window_ns as f64 / 1e9,
                    completed: win.iter().map(|x| x.completed).collect(),
                    failed: win.iter().map(|x| x.failed).collect(),
                    latency_mean_ms: win
                        .iter()
                        .map(|x| {
                            if x.completed > 0 {
                                x.latency_sum_ns as f64 / x.completed as f64 / 1e6
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                    latency_p99_ms: Vec::new(),
                },
            )
        })
        .collect();
    let mut per_hour: f64 = model
        .components
        .iter()
        .map(|c| f64::from(c.replicas) * c.cost_per_hour)
        .sum();
    let autoscaling =
        crate::components::autoscaler::results::autoscaling(model, sim, &mut per_hour);
    let goodput: f64 = workloads
        .values()
        .map(|w: &WorkloadResult| w.goodput_per_s)
        .sum();
    let cost = Cost {
        per_hour,
        per_million_requests: if goodput > 0.0 {
            per_hour / (goodput * 3600.0) * 1e6
        } else {
            0.0
        },
    };
    let t = ctx.totals;
    let in_flight = ctx.unanswered();
    // Client requests that arrived in the window: what amplification is counted against.
    let requests: u64 = workloads.values().map(|w: &WorkloadResult| w.arrived).sum();
    RunResult {
        seed,
        window_start_s: start.as_secs_f64(),
        window_end_s: end.as_secs_f64(),
        events: sim.events(),
        stopped_early: sim.stopped_at().map(|at| StoppedEarly {
            at_s: at.as_secs_f64(),
            in_flight: ctx.in_flight,
        }),
        workloads,
        components,
        conservation: Conservation {
            arrived: t.arrived,
            completed: t.completed,
            failed: t.failed,
            in_flight,
            holds: t.arrived == t.completed + t.failed + in_flight,
        },
        cost,
        series,
        component_series: IndexMap::new(),
        faults: fault_windows(model, sim, end),
        edges: crate::policy::report::edges(model, sim.guard_edges(), requests, end),
        amplification: crate::policy::report::amplification(
            model,
            sim.guard_edges(),
            &client_attempts(model, ctx),
            requests,
        ),
        amplification_series: IndexMap::new(),
        autoscaling,
        latency,
    }
}

/// Attempts sent so far in the measurement window by each workload's clients: the
/// requests that arrived and their client retries (0 for a workload without client
/// retries), for the retry amplification of the tiers they reach.
fn client_attempts(model: &Model, ctx: &crate::engine::Context<Workloads>) -> ClientAttempts {
    let counts = ctx.retry_counts();
    model
        .workloads
        .iter()
        .zip(&ctx.stats)
        .enumerate()
        .map(|(i, (w, s))| match w.retries {
            Some(_) => s.arrived.iter().sum::<u64>() + counts.get(i).map_or(0, |c| c.retries),
            None => 0,
        })
        .collect()
}

/// What the retries of workload `w` did, given the engine's counts for it and the requests
/// that arrived (`None` for a workload without retries).
fn retry_result(
    w: &crate::client::Workload,
    counts: Option<&crate::engine::RetryCounts>,
    arrived: u64,
) -> Option<RetryResult> {
    w.def.retries?;
    let c = counts.copied().unwrap_or_default();
    let attempts = arrived + c.retries;
    let writes = !w.def.non_idempotent.is_empty();
    Some(RetryResult {
        attempts,
        retries: c.retries,
        attempts_per_request: if arrived > 0 {
            attempts as f64 / arrived as f64
        } else {
            0.0
        },
        budget_exhausted: c.budget_exhausted,
        backoff_mean_ms: if arrived > 0 {
            c.backoff_ns as f64 / 1e6 / arrived as f64
        } else {
            0.0
        },
        duplicates: writes.then_some(c.duplicates),
        deduplicated: writes.then_some(c.deduplicated),
    })
}

/// The fault windows of the finished run `sim`, whose window ends at `end`.
fn fault_windows(
    model: &Model,
    sim: &Simulation<Workloads>,
    end: crate::time::SimTime,
) -> Vec<FaultWindowResult> {
    let mut windows: Vec<FaultWindowResult> = sim
        .fault_windows()
        .iter()
        .map(|w| {
            let def = &model.faults[w.fault as usize];
            FaultWindowResult {
                name: def.name.clone(),
                target: def.target.clone(),
                instance: def.instance_name(w.instance).to_string(),
                effect: def.effect.name().to_string(),
                detail: def.effect.detail(),
                start_s: w.start.as_secs_f64(),
                end_s: w.end.unwrap_or(end.max(w.start)).as_secs_f64(),
                recovery: None,
            }
        })
        .collect();
    for w in &model.workloads {
        let Some(b) = w.burst else { continue };
        if b.start >= end {
            continue;
        }
        windows.push(FaultWindowResult {
            name: format!("{} burst", w.name),
            target: w.name.clone(),
            instance: String::new(),
            effect: BURST.to_string(),
            detail: format!("peak {}/s", b.peak),
            start_s: b.start.as_secs_f64(),
            end_s: b.end.min(end).as_secs_f64(),
            recovery: None,
        });
    }
    // In the order they began (the engine's windows already are; a sort that keeps ties
    // in place moves only the bursts).
    windows.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    windows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, parse_model_str};

    #[test]
    fn every_declared_metric_is_reported_in_order_and_written_where_it_was() {
        let text = r#"{"duration": "2s", "warmup": "0s",
          "workloads": {"u": {"arrivals": {"poisson": {"rate": 500}}, "target": "lb"}},
          "components": {
            "lb": {"kind": "load_balancer", "policy": "round_robin", "backends": "app"},
            "app": {"kind": "service", "replicas": 2, "workers": 1,
                    "service_time": {"exponential": {"mean": "1ms"}}}}}"#;
        let model = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
        let r = run_once(&model, 3).unwrap();
        for def in &model.components {
            let decls = def.kind.metrics();
            let c = &r.components[&def.name];
            let declared: Vec<&str> = numbers(decls).map(|d| d.name).collect();
            let named = |shape: Shape| -> Vec<&str> {
                decls
                    .iter()
                    .filter(|d| d.shape == shape)
                    .map(|d| d.name)
                    .collect()
            };
            assert_eq!(c.total.keys().collect::<Vec<_>>(), declared, "{}", def.name);
            assert!(c.total.values().all(|v| v.is_finite()), "{:?}", c.total);
            assert_eq!(
                c.detail.histograms.keys().collect::<Vec<_>>(),
                named(Shape::Histogram)
            );
            for i in &c.instances {
                assert_eq!(i.metrics.keys().collect::<Vec<_>>(), declared);
                assert!(i.metrics.values().all(|v| v.is_finite()));
            }
        }
        // Distributions, then histograms, as fields of their component and instance.
        let json = serde_json::to_value(&r).unwrap();
        let app = json["components"]["app"].as_object().unwrap();
        let keys: Vec<&str> = app.keys().map(String::as_str).collect();
        assert_eq!(keys, ["kind", "total", "occupancy", "wait", "instances"]);
        let first = app["instances"][0].as_object().unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "metrics", "occupancy", "wait"]);
        let lb = json["components"]["lb"].as_object().unwrap();
        assert_eq!(
            lb.keys().collect::<Vec<_>>(),
            ["kind", "total", "instances"]
        );
        // And they read back.
        let back: RunResult = serde_json::from_value(json).unwrap();
        assert_eq!(back.components["app"].detail, r.components["app"].detail);
    }

    /// A run observed for its progress line gives the result it gives unobserved, and
    /// reports its whole simulated time and every event it handled: with and without a
    /// fault (which runs window by window).
    #[test]
    fn an_observed_run_is_the_same_run() {
        let crash = r#", "faults": [{"target": "app", "crash": {"mode": "refused"}, "at": "1s", "for": "500ms"}]"#;
        for (limit, faults) in [("", ""), ("", crash), (r#", "requests": 3000"#, "")] {
            let text = format!(
                r#"{{"duration": "3s", "warmup": "0s",
                  "workloads": {{"u": {{"arrivals": {{"poisson": {{"rate": 800}}}}, "target": "app"{limit}}}}},
                  "components": {{"app": {{"kind": "service", "replicas": 2, "workers": 1,
                    "service_time": {{"exponential": {{"mean": "1ms"}}}}}}}}{faults}}}"#
            );
            let model =
                parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]).unwrap();
            let progress = RunProgress::default();
            let observed = run_stepped(&model, 5, Some(&progress), 1000, None)
                .unwrap()
                .0;
            let plain = run_once(&model, 5).unwrap();
            assert_eq!(
                serde_json::to_string(&observed).unwrap(),
                serde_json::to_string(&plain).unwrap(),
                "{limit} {faults}"
            );
            assert_eq!(progress.done_ppm(), RUN_PPM);
            assert!(
                progress.events() >= plain.events,
                "{} < {}",
                progress.events(),
                plain.events
            );
        }
    }
}
