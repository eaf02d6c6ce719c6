//! Experiments: many runs of a model, varied (variants, sweeps) and repeated
//! (replications), run in parallel or split across a cluster, summarised with confidence
//! intervals, compared pairwise on common random numbers, and plotted.
//!
//! The path of an experiment: the file is expanded into a [`Plan`] (every point and
//! variant validated up front), its runs are executed in parallel and each is written as a
//! record under `DIR/runs/` ([`run`]), and the result files are computed from the records
//! alone ([`aggregate()`]) as the result types of [`results`], which the exporters in
//! `report` write. Because of that last step, an interrupted and resumed sweep, or
//! shards merged with `scalesim merge`, give byte for byte the files of one uninterrupted run.

pub mod aggregate;
pub mod capacity;
pub mod check;
pub mod plan;
pub mod results;
pub mod run;
pub mod spec;
pub mod store;

pub use aggregate::aggregate;
pub use plan::{Plan, Task, load_plan};
pub use results::{ExperimentLayout, ExperimentResults};
pub use run::{STOP, Shard, SweepError, install_stop_handler};
pub use spec::ExperimentSpec;

use crate::files::write_atomic;
use crate::random::RNG_NAME;
use serde::Serialize;
use std::path::Path;

/// Provenance of an output folder (manifest.json). The only file with wall-clock times,
/// so every other file can be compared byte for byte.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentManifest {
    /// scalesim version.
    pub scalesim_version: String,
    /// Experiment name.
    pub experiment: String,
    /// Experiment file.
    pub experiment_file: String,
    /// Hash of the plan (experiment and models).
    pub experiment_hash: String,
    /// SHA-256 of each model, `[point][variant]`.
    pub model_hashes: Vec<Vec<String>>,
    /// Base seed and the seed of each replication.
    pub seed: u64,
    /// Seeds of replications 0, 1, ...
    pub replication_seeds: Vec<u64>,
    /// Random generator and the crate versions that fix its values.
    pub rng: String,
    /// Runs in the experiment and runs done by this process.
    pub runs_total: usize,
    /// Runs executed by this invocation (the rest were resumed or come from shards).
    pub runs_executed: usize,
    /// Shard of this invocation, "i/n", if any.
    pub shard: Option<String>,
    /// Threads used.
    pub threads: usize,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Wall-clock duration, seconds.
    pub wall_s: f64,
}

impl ExperimentManifest {
    /// A manifest for `plan`.
    pub fn new(
        plan: &Plan,
        runs_executed: usize,
        shard: Option<Shard>,
        started: std::time::SystemTime,
    ) -> Self {
        let reps = plan.replications.max(1);
        ExperimentManifest {
            scalesim_version: env!("CARGO_PKG_VERSION").to_string(),
            experiment: plan.spec.name.clone(),
            experiment_file: plan.file.display().to_string(),
            experiment_hash: plan.hash.clone(),
            model_hashes: plan
                .models
                .iter()
                .map(|row| row.iter().map(|m| m.hash.clone()).collect())
                .collect(),
            seed: plan.seed,
            replication_seeds: (0..reps).map(|r| plan.seed_of(r)).collect(),
            rng: RNG_NAME.to_string(),
            runs_total: plan.tasks(plan.replications).len(),
            runs_executed,
            shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
            threads: rayon::current_num_threads(),
            started_unix_s: started
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            wall_s: started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0),
        }
    }
    /// Writes it as `name` in `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(name), &bytes)
    }
}

/// Runs the experiment's tasks (all, or a shard's) into `dir`. With `resume`, runs
/// already recorded are kept; otherwise an unsharded sweep starts from an empty `runs/`.
/// With precision asked for, replications are added in rounds until every point's CI
/// is narrow enough. Returns the number of runs executed.
pub fn execute(
    plan: &Plan,
    dir: &Path,
    shard: Option<Shard>,
    resume: bool,
    progress: bool,
) -> Result<usize, SweepError> {
    let runs = dir.join(store::RUNS_DIR);
    std::fs::create_dir_all(&runs).map_err(SweepError::io("create", &runs))?;
    // Never delete the runs of another experiment: a mistyped --out is refused, not
    // emptied. Runs of an earlier version of this experiment are replaced, unless
    // --resume asks to keep runs.
    let found = run::survey(plan, dir)?;
    if resume && !found.stale.is_empty() {
        return Err(run::edited(plan, dir));
    }
    let mut remove = found.stale;
    if !resume && shard.is_none() {
        // Start afresh: no run, and no result file, of an earlier sweep stays (result
        // files only in a folder known to be this experiment's, not any folder's).
        if found.owned {
            store::remove_results(dir, false).map_err(SweepError::io("clean up", dir))?;
        }
        remove.extend(found.done.iter().map(|t| store::record_path(dir, t)));
    }
    for path in remove {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SweepError::io("remove", &path)(e));
            }
            _ => {}
        }
    }
    let mut executed = 0;
    let mut reps = plan.replications;
    loop {
        let all = plan.tasks(reps);
        let mine: Vec<Task> = match shard {
            Some(s) => all
                .iter()
                .enumerate()
                .filter(|(n, _)| s.owns(*n))
                .map(|(_, t)| *t)
                .collect(),
            None => all.clone(),
        };
        let done = run::recorded(plan, dir)?;
        executed += run::run_tasks(plan, &mine, &done, dir, progress)?;
        let Some(p) = &plan.spec.precision else { break };
        let cap = p.max_replications.unwrap_or(100);
        if reps >= cap {
            break;
        }
        // Widest relative CI half-width of the watched metric over the points.
        let results = aggregate::aggregate_metric(plan, dir, &p.metric, reps)
            .map_err(|e| SweepError::Mismatch(e.to_string()))?;
        let worst = results.iter().cloned().fold(0.0, f64::max);
        if worst <= p.relative {
            break;
        }
        // Half-width shrinks like 1/√n: ask for enough, at most doubling per round.
        let need = (f64::from(reps) * (worst / p.relative).powi(2)).ceil() as u32;
        reps = need.clamp(reps + 1, (reps * 2).min(cap));
    }
    Ok(executed)
}
