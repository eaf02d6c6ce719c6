//! Run records: one file per finished run under `DIR/runs/`, written atomically. They are
//! the raw material every summary is computed from, so a resumed, sharded or merged
//! experiment gives exactly the files of one uninterrupted run.

use super::plan::{Plan, Task};
use crate::metrics::LatencyHistogram;
use crate::report::write_atomic;
use crate::results::RunResult;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Folder of run records inside an output folder.
pub const RUNS_DIR: &str = "runs";

/// One finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Hash of the experiment plan it belongs to.
    pub experiment_hash: String,
    /// scalesim version that ran it.
    pub scalesim_version: String,
    /// Sweep point.
    pub point: usize,
    /// Variant.
    pub variant: usize,
    /// Replication.
    pub replication: u32,
    /// Seed.
    pub seed: u64,
    /// Warm-up used, seconds (detected with MSER-5, or fixed).
    pub warmup_s: f64,
    /// What the run measured.
    pub result: RunResult,
    /// Latency histogram per workload (see [`LatencyHistogram::to_text`]).
    pub histograms: Vec<String>,
}

impl RunRecord {
    /// The record of `result` for task `t` of `plan`.
    pub fn new(plan: &Plan, t: &Task, seed: u64, warmup_s: f64, result: RunResult) -> Self {
        let histograms = result
            .latency
            .iter()
            .map(LatencyHistogram::to_text)
            .collect();
        RunRecord {
            experiment_hash: plan.hash.clone(),
            scalesim_version: env!("CARGO_PKG_VERSION").to_string(),
            point: t.point,
            variant: t.variant,
            replication: t.replication,
            seed,
            warmup_s,
            result,
            histograms,
        }
    }
    /// The task it ran.
    pub fn task(&self) -> Task {
        Task {
            point: self.point,
            variant: self.variant,
            replication: self.replication,
        }
    }
    /// Its latency histograms, decoded.
    pub fn latency(&self) -> Result<Vec<LatencyHistogram>, String> {
        self.histograms
            .iter()
            .map(|h| LatencyHistogram::from_text(h))
            .collect()
    }
}

/// Path of a task's record.
pub fn record_path(dir: &Path, t: &Task) -> PathBuf {
    dir.join(RUNS_DIR).join(t.file_name())
}

/// Writes a record atomically.
pub fn write_record(dir: &Path, r: &RunRecord) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    write_atomic(&record_path(dir, &r.task()), &bytes)
}

/// Reads a record.
pub fn read_record(path: &Path) -> Result<RunRecord, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a run record: {e}", path.display()))
}

/// The tasks recorded in `dir/runs`, sorted, with their files.
pub fn list_records(dir: &Path) -> std::io::Result<Vec<(Task, PathBuf)>> {
    let runs = dir.join(RUNS_DIR);
    if !runs.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&runs)? {
        let e = e?;
        let name = e.file_name();
        if let Some(t) = name.to_str().and_then(Task::from_file_name) {
            out.push((t, e.path()));
        }
    }
    out.sort();
    Ok(out)
}
