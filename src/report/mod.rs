//! Exporters, one per format: they turn results into what people and scripts read (the
//! JSON document, terminal tables, tidy CSV, an experiment's files and plots, the
//! topology diagram). They compute no statistics (those are in [`crate::stats`] and the
//! experiment's aggregation) and read only the result types of `results` and
//! `experiment`, and the model. Files are written with [`crate::files`].

mod csv_out;
mod diagram;
mod experiment_files;
mod experiment_tables;
pub mod html;
pub mod plot;
pub(crate) mod table;

pub use csv_out::to_csv;
pub use diagram::{DiagramFormat, diagram};
pub use experiment_files::write_experiment_files;
pub use experiment_tables::{
    DEFAULT_TABLE_WIDTH, capacity_answer, capacity_table, comparison_table, experiment_table,
    experiment_table_in,
};
pub use table::{check_table, run_table};

use crate::analysis::Estimates;
use crate::model::Model;
use crate::random::RNG_NAME;
use crate::results::RunResult;
use crate::stats::{Estimate, summarize};
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

/// A warning for each metric estimate that the simulated value (the mean over `runs`) is
/// farther from than its tolerance.
fn divergences(estimates: &Estimates, runs: &[RunResult]) -> Vec<String> {
    let mut warnings = Vec::new();
    // The estimates assume a steady system: a fault or a burst in the run is a reason of
    // its own for the simulation to differ.
    let mut disturbances: Vec<&str> = Vec::new();
    for f in runs.iter().flat_map(|r| &r.faults) {
        if !disturbances.contains(&f.name.as_str()) {
            disturbances.push(&f.name);
        }
    }
    let disturbed = match disturbances.len() {
        0 => String::new(),
        1 => format!(
            "; the run had a fault or burst ({}), which the estimate leaves out",
            disturbances[0]
        ),
        _ => format!(
            "; the run had faults or bursts ({}), which the estimate leaves out",
            disturbances.join(", ")
        ),
    };
    for (name, list) in &estimates.metrics {
        for e in list {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.components.get(name)?.total.get(&e.metric).copied())
                .collect();
            if values.is_empty() {
                continue;
            }
            let simulated = values.iter().sum::<f64>() / values.len() as f64;
            if (simulated - e.value).abs() > e.tolerance {
                warnings.push(format!(
                    "components.{name}.{}: simulated {} is far from the estimated {} ({}){}{}",
                    e.metric,
                    table::num(simulated),
                    table::num(e.value),
                    e.method,
                    if e.caveat.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", e.caveat)
                    },
                    disturbed
                ));
            }
        }
    }
    warnings
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
        warnings.extend(divergences(&estimates, &runs));
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
