//! What an autoscaler did over a run, in the run's results
//! ([`crate::results::RunResult::autoscaling`]): its target's instances over time, its
//! actions, instance-hours and their cost.

use crate::client::Workloads;
use crate::engine::Simulation;
use crate::model::Model;
use crate::time::SimTime;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// What an autoscaler did over a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoscalingResult {
    /// The service it scales.
    pub target: String,
    /// Width of a window of the series, seconds (the workloads' series' windows).
    pub window_s: f64,
    /// Instances running (provisioning, serving or draining: paid for), time average per
    /// window from time zero (warm-up included).
    pub instances: Vec<f64>,
    /// Instances serving (taking new work), time average per window.
    pub serving: Vec<f64>,
    /// Its actions over the whole run, in time order.
    pub actions: Vec<ScalingActionResult>,
    /// Integral of the instances running over the measurement window, hours.
    pub instance_hours: f64,
    /// instance_hours × the target's cost_per_hour.
    pub cost: f64,
}

/// One scaling action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScalingActionResult {
    /// When, seconds.
    pub at_s: f64,
    /// Instances wanted before (provisioning or serving).
    pub from: u32,
    /// Instances wanted after.
    pub to: u32,
    /// Why, with the metric's value.
    pub reason: String,
}

/// What the autoscalers of the finished run `sim` did; `per_hour` counts each autoscaled
/// service at its mean instances running over the measurement window instead of all the
/// instances it was built with.
pub fn autoscaling(
    model: &Model,
    sim: &Simulation<Workloads>,
    per_hour: &mut f64,
) -> IndexMap<String, AutoscalingResult> {
    let mut out = IndexMap::new();
    let (start, end) = sim.window();
    let window_ns = sim
        .context()
        .stats
        .first()
        .map_or(end.0.max(1), |s| s.window_ns);
    let windows = end.0.div_ceil(window_ns).max(1);
    for def in &model.components {
        let Some(h) = sim.scaling(def.first_instance) else {
            continue;
        };
        let target = &model.components[h.target as usize];
        let running = h.integral(start, end, false);
        let span = end.since(start).0 as f64;
        let mean = if span > 0.0 { running / span } else { 0.0 };
        *per_hour += (mean - f64::from(target.replicas)) * target.cost_per_hour;
        let series = |serving: bool| -> Vec<f64> {
            (0..windows)
                .map(|w| {
                    let a = SimTime(w * window_ns);
                    let b = SimTime(((w + 1) * window_ns).min(end.0));
                    let len = b.since(a).0 as f64;
                    if len > 0.0 {
                        h.integral(a, b, serving) / len
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let instance_hours = running / 3.6e12;
        out.insert(
            def.name.clone(),
            AutoscalingResult {
                target: target.name.clone(),
                window_s: window_ns as f64 / 1e9,
                instances: series(false),
                serving: series(true),
                actions: h
                    .actions
                    .iter()
                    .map(|a| ScalingActionResult {
                        at_s: a.at.as_secs_f64(),
                        from: a.from,
                        to: a.to,
                        reason: a.reason.clone(),
                    })
                    .collect(),
                instance_hours,
                cost: instance_hours * target.cost_per_hour,
            },
        );
    }
    out
}
