//! The headline metrics of a run, flattened to `scope.name.metric` keys, and their
//! summary over replications: what `run --replications`, the experiment files and the
//! capacity search compare. Keys are known before a run from the model alone.

use super::Estimate;
use crate::metrics::declare::numbers;
use crate::model::Model;
use crate::results::RunResult;
use indexmap::IndexMap;

/// Headline metrics of one run, flattened to `scope.name.metric` keys in a fixed order.
pub fn headline_metrics(r: &RunResult) -> IndexMap<String, f64> {
    let mut m = IndexMap::new();
    for (name, w) in &r.workloads {
        let p = format!("workloads.{name}");
        m.insert(format!("{p}.throughput_per_s"), w.throughput_per_s);
        m.insert(format!("{p}.goodput_per_s"), w.goodput_per_s);
        m.insert(format!("{p}.error_share"), w.error_share);
        m.insert(format!("{p}.latency.mean_ms"), w.latency.mean_ms);
        m.insert(format!("{p}.latency.p50_ms"), w.latency.p50_ms);
        m.insert(format!("{p}.latency.p90_ms"), w.latency.p90_ms);
        m.insert(format!("{p}.latency.p95_ms"), w.latency.p95_ms);
        m.insert(format!("{p}.latency.p99_ms"), w.latency.p99_ms);
        m.insert(format!("{p}.latency.p999_ms"), w.latency.p999_ms);
        for (class, c) in &w.classes {
            m.insert(
                format!("{p}.classes.{class}.latency.mean_ms"),
                c.latency.mean_ms,
            );
            m.insert(
                format!("{p}.classes.{class}.latency.p99_ms"),
                c.latency.p99_ms,
            );
        }
    }
    for (name, c) in &r.components {
        for (k, v) in &c.total {
            m.insert(format!("components.{name}.{k}"), *v);
        }
    }
    m.insert("cost.per_hour".to_string(), r.cost.per_hour);
    m.insert(
        "cost.per_million_requests".to_string(),
        r.cost.per_million_requests,
    );
    // Retry amplification per tier (callees of call policies, in the model's order).
    for (tier, a) in &r.amplification {
        m.insert(format!("amplification.{tier}"), *a);
    }
    fault_metrics(r, &mut m);
    m
}

/// What each fault (by name, over all its windows) cost: `faults.NAME.time_to_recover_s`
/// (the longest), `failed_during` and `failed_after` (sums), `metastable` (1 if any window
/// was), `never_recovered` (1 if the system was not back from some window by the end of
/// the run, a fault still on then included), faults in the order of their names.
///
/// A run that never recovered has no time to recover: NaN (JSON null, "never" in tables),
/// not the time to the end of the run, which would depend on the run's length. A summary
/// over replications (here and in an experiment's) leaves NaN out: its mean is
/// that of the runs that recovered, `n` how many did, and the mean of `never_recovered`
/// the share that did not. A fault none of whose windows has a recovery (nothing measured
/// before it) has a time of NaN and `never_recovered` 0.
fn fault_metrics(r: &RunResult, m: &mut IndexMap<String, f64>) {
    let mut by_name: IndexMap<&str, [f64; 5]> = IndexMap::new();
    for f in &r.faults {
        let e = by_name
            .entry(f.name.as_str())
            .or_insert([f64::NAN, 0.0, 0.0, 0.0, 0.0]);
        let Some(rec) = &f.recovery else { continue };
        match rec.time_to_recover_s {
            // NaN.max(t) is t: the first measured window sets it.
            Some(t) if e[4] == 0.0 => e[0] = e[0].max(t),
            Some(_) => {}
            None => {
                e[0] = f64::NAN;
                e[4] = 1.0;
            }
        }
        e[1] += rec.failed_during as f64;
        e[2] += rec.failed_after as f64;
        e[3] = e[3].max(f64::from(u8::from(rec.metastable)));
    }
    // By name, so the order is known before a run (windows begin in any order).
    by_name.sort_keys();
    for (name, v) in by_name {
        for (k, x) in FAULT_METRICS.iter().zip(v) {
            m.insert(format!("faults.{name}.{k}"), x);
        }
    }
}

/// The metrics of each fault in the headline, in order.
const FAULT_METRICS: [&str; 5] = [
    "time_to_recover_s",
    "failed_during",
    "failed_after",
    "metastable",
    "never_recovered",
];

/// The keys [`headline_metrics`] gives for any run of `model`, in the same order, found
/// before running it: the workload keys from its workloads and classes, each component's
/// from the number metrics its kind declares.
pub fn metric_keys(model: &Model) -> Vec<String> {
    let mut keys = Vec::new();
    for w in &model.workloads {
        let p = format!("workloads.{}", w.name);
        for k in [
            "throughput_per_s",
            "goodput_per_s",
            "error_share",
            "latency.mean_ms",
            "latency.p50_ms",
            "latency.p90_ms",
            "latency.p95_ms",
            "latency.p99_ms",
            "latency.p999_ms",
        ] {
            keys.push(format!("{p}.{k}"));
        }
        if w.classes.len() > 1 {
            for (class, _) in &w.classes {
                let class = &model.classes[*class as usize];
                keys.push(format!("{p}.classes.{class}.latency.mean_ms"));
                keys.push(format!("{p}.classes.{class}.latency.p99_ms"));
            }
        }
    }
    for c in &model.components {
        for d in numbers(c.kind.metrics()) {
            keys.push(format!("components.{}.{}", c.name, d.name));
        }
    }
    keys.push("cost.per_hour".to_string());
    keys.push("cost.per_million_requests".to_string());
    for c in crate::policy::report::amplified_tiers(model) {
        keys.push(format!(
            "amplification.{}",
            model.components[c as usize].name
        ));
    }
    let mut names: Vec<String> = model.faults.iter().map(|f| f.name.clone()).collect();
    names.extend(
        model
            .workloads
            .iter()
            .filter(|w| w.burst.is_some_and(|b| b.start.0 < model.duration.0))
            .map(|w| format!("{} burst", w.name)),
    );
    names.sort();
    names.dedup();
    for name in names {
        keys.extend(FAULT_METRICS.iter().map(|k| format!("faults.{name}.{k}")));
    }
    keys
}

/// Mean and CI of every headline metric across runs (NaN values left out).
pub fn summarize(runs: &[RunResult]) -> IndexMap<String, Estimate> {
    let per_run: Vec<IndexMap<String, f64>> = runs.iter().map(headline_metrics).collect();
    let mut out = IndexMap::new();
    for key in per_run[0].keys() {
        // A NaN is no value (a fault never recovered from): left out, `n` says how many
        // runs had one.
        let values: Vec<f64> = per_run
            .iter()
            .filter_map(|m| m.get(key).copied())
            .filter(|x| !x.is_nan())
            .collect();
        out.insert(key.clone(), Estimate::of(&values));
    }
    out
}
