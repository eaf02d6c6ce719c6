//! Turning results into what people and scripts read: the JSON document, a terminal
//! table, and tidy CSV. Files are written with [`crate::files`].

mod csv_out;
mod experiment_tables;
pub mod plot;
mod table;

pub use csv_out::to_csv;
pub use experiment_tables::{
    DEFAULT_TABLE_WIDTH, capacity_table, comparison_table, experiment_table, experiment_table_in,
};
pub use table::{check_table, run_table};

use crate::analysis::Estimates;
use crate::metrics::declare::numbers;
use crate::model::Model;
use crate::random::RNG_NAME;
use crate::results::RunResult;
use crate::stats::Estimate;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Where the output came from: enough to reproduce it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// scalesim version.
    pub scalesim_version: String,
    /// Model name.
    pub model: String,
    /// SHA-256 of the model (after `--set` overrides).
    pub model_hash: String,
    /// Base seed.
    pub seed: u64,
    /// Number of replications.
    pub replications: usize,
    /// Random generator and the crate versions that fix its values.
    pub rng: String,
    /// Overrides applied with `--set`.
    pub overrides: Vec<String>,
}

/// The JSON document `scalesim run --format json` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutput {
    /// Provenance.
    pub manifest: Manifest,
    /// Analytic estimates (see `scalesim check`).
    pub estimates: Estimates,
    /// Mean and 95% CI across replications of the headline metrics (more than one
    /// replication only).
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    pub summary: IndexMap<String, Estimate>,
    /// Each replication's result, in replication order.
    pub runs: Vec<RunResult>,
    /// Warnings: estimated instability, broken conservation.
    pub warnings: Vec<String>,
}

impl RunOutput {
    /// Assembles the output of `runs` of `model`.
    pub fn new(
        model: &Model,
        seed: u64,
        overrides: &[String],
        estimates: Estimates,
        runs: Vec<RunResult>,
    ) -> Self {
        let mut warnings = estimates.warnings.clone();
        for r in &runs {
            if let Some(stop) = &r.stopped_early {
                warnings.push(stop.message(r.seed));
            }
            if !r.conservation.holds {
                warnings.push(format!(
                    "seed {}: conservation broken: arrived {} != completed {} + failed {} + in flight {}",
                    r.seed, r.conservation.arrived, r.conservation.completed, r.conservation.failed, r.conservation.in_flight
                ));
            }
        }
        let summary = if runs.len() > 1 {
            summarize(&runs)
        } else {
            IndexMap::new()
        };
        RunOutput {
            manifest: Manifest {
                scalesim_version: env!("CARGO_PKG_VERSION").to_string(),
                model: model.name.clone(),
                model_hash: model.hash.clone(),
                seed,
                replications: runs.len(),
                rng: RNG_NAME.to_string(),
                overrides: overrides.to_vec(),
            },
            estimates,
            summary,
            runs,
            warnings,
        }
    }
}

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
    m
}

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
    keys
}

/// Mean and CI of every headline metric across runs.
pub fn summarize(runs: &[RunResult]) -> IndexMap<String, Estimate> {
    let per_run: Vec<IndexMap<String, f64>> = runs.iter().map(headline_metrics).collect();
    let mut out = IndexMap::new();
    for key in per_run[0].keys() {
        let values: Vec<f64> = per_run.iter().filter_map(|m| m.get(key).copied()).collect();
        out.insert(key.clone(), Estimate::of(&values));
    }
    out
}
