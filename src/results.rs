//! What one run measured, in a form that serializes to stable JSON: per workload (and
//! class) latency percentiles, throughput and errors; per component and instance the
//! component's own metrics; and the conservation check.

use crate::engine::{RunError, RunOptions, Simulation};
use crate::metrics::{Combine, ErrorCause, LatencyHistogram, LatencySummary};
use crate::model::Model;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

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
    /// Latency histogram of each workload's successful requests (all classes), for
    /// merging across replications; not serialized.
    #[serde(skip)]
    pub latency: Vec<LatencyHistogram>,
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

/// One component: each instance's metrics, and the component's totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentResult {
    /// Kind, as in the model file.
    pub kind: String,
    /// Metrics combined over instances (sums, means or maxima, per metric).
    pub total: IndexMap<String, f64>,
    /// Share of time with 0, 1, 2, ... requests at an instance (in service or waiting),
    /// averaged over the instances; the last entry of a 64-long list counts 63 or more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occupancy: Vec<f64>,
    /// Queue wait before a worker took the request, over all instances (2 significant
    /// digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<LatencySummary>,
    /// Per instance.
    pub instances: Vec<InstanceResult>,
}

/// One instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceResult {
    /// Name, e.g. `app[2]`.
    pub name: String,
    /// Its metrics.
    pub metrics: IndexMap<String, f64>,
    /// Share of time with 0, 1, 2, ... requests at the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occupancy: Vec<f64>,
    /// Queue wait before a worker took the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<LatencySummary>,
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

/// Runs `model` once with `seed` and collects its result.
pub fn run_once(model: &Model, seed: u64) -> Result<RunResult, RunError> {
    let mut sim = Simulation::new(model, RunOptions { seed });
    sim.run()?;
    Ok(collect(model, &sim, seed))
}

fn collect(model: &Model, sim: &Simulation, seed: u64) -> RunResult {
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
    for w in &ctx.workloads {
        let s = &w.stats;
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
            for cause in ErrorCause::ALL {
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
            },
        );
        latency.push(all);
    }

    let reports = sim.instance_reports();
    let mut components = IndexMap::new();
    for def in &model.components {
        let first = def.first_instance as usize;
        let mine = &reports[first..first + def.replicas as usize];
        let mut total: IndexMap<String, (f64, Combine)> = IndexMap::new();
        for r in mine {
            for (name, v, how) in &r.metrics {
                let e = total.entry(name.clone()).or_insert((
                    match how {
                        Combine::Max => f64::NEG_INFINITY,
                        _ => 0.0,
                    },
                    *how,
                ));
                match how {
                    Combine::Sum | Combine::Mean => e.0 += v,
                    Combine::Max => e.0 = e.0.max(*v),
                }
            }
        }
        let n = mine.len() as f64;
        let total = total
            .into_iter()
            .map(|(k, (v, how))| (k, if how == Combine::Mean { v / n } else { v }))
            .collect();
        let instances = mine
            .iter()
            .map(|r| InstanceResult {
                name: r.name.clone(),
                metrics: r.metrics.iter().map(|(k, v, _)| (k.clone(), *v)).collect(),
                occupancy: r.occupancy.clone(),
                wait: r.wait.as_ref().map(|h| h.summary()),
            })
            .collect();
        let mut occupancy = vec![0.0; mine.iter().map(|r| r.occupancy.len()).max().unwrap_or(0)];
        for r in mine {
            for (sum, share) in occupancy.iter_mut().zip(&r.occupancy) {
                *sum += share / n;
            }
        }
        let mut waits = mine.iter().filter_map(|r| r.wait.as_ref());
        let wait = waits.next().map(|first| {
            let mut all = first.clone();
            waits.for_each(|h| all.merge(h));
            all.summary()
        });
        components.insert(
            def.name.clone(),
            ComponentResult {
                kind: def.kind.name().to_string(),
                total,
                occupancy,
                wait,
                instances,
            },
        );
    }

    let series = ctx
        .workloads
        .iter()
        .map(|w| {
            let s = &w.stats;
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
                },
            )
        })
        .collect();
    let per_hour: f64 = model
        .components
        .iter()
        .map(|c| f64::from(c.replicas) * c.cost_per_hour)
        .sum();
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
        latency,
    }
}
