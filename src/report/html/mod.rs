//! The HTML report (`scalesim report DIR`, `run --report`, `sweep --report`): one
//! self-contained page that opens without network access: inline CSS, charts as inline SVG
//! drawn by [`super::plot`], the topology as an inline SVG laid out here. A page is a list of
//! sections, each built by a small function of the module for its concept: [`run`] for
//! the output of `run`, [`experiment`] for that of `sweep` and `compare`, [`capacity`] for
//! that of `capacity --out`, [`topology`]
//! for the picture of the model, [`page`] for the shell and the HTML helpers.

pub mod capacity;
pub mod experiment;
pub mod page;
pub mod run;
pub mod topology;

use crate::experiment::ExperimentResults;
use crate::experiment::results::CapacityOutput;
use crate::files::write_atomic;
use crate::report::RunOutput;
use std::path::{Path, PathBuf};

/// The file `run --out` writes next to result.json with the model's topology as Graphviz
/// DOT, which the report draws.
pub const TOPOLOGY_FILE: &str = "topology.dot";

/// The file `capacity --out` writes: what was searched and what the search found.
pub const CAPACITY_FILE: &str = "capacity.json";

/// The report's file name when `scalesim report DIR` is not given `--out`.
pub const DEFAULT_FILE: &str = "report.html";

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder is missing or is not an output folder of scalesim (exit status 2).
    #[error("{0}")]
    BadInput(String),
    /// A file could not be read or written (exit status 1).
    #[error("{0}")]
    Io(String),
}

/// What an output folder holds.
enum Found {
    Run(Box<RunOutput>, Option<String>),
    Experiment(
        Box<ExperimentResults>,
        Option<serde_json::Value>,
        experiment::RunSeries,
    ),
    Capacity(Box<CapacityOutput>, Option<String>),
}

/// The report page of the output folder `dir` of `run --out`, `sweep`, `compare` or
/// `capacity --out`.
pub fn report_of_dir(dir: &Path) -> Result<String, ReportError> {
    match read_dir(dir)? {
        Found::Run(out, dot) => run::report(&out, dot.as_deref()),
        Found::Experiment(results, manifest, series) => {
            experiment::report(&results, manifest.as_ref(), &series)
        }
        Found::Capacity(out, dot) => capacity::report(&out, dot.as_deref()),
    }
    .map_err(|e| ReportError::Io(format!("{}: {e}", dir.display())))
}

/// Writes `html` to `path` whole (through a temporary file and a rename).
pub fn write_report(path: &Path, html: &str) -> Result<(), ReportError> {
    write_atomic(path, html.as_bytes())
        .map_err(|e| ReportError::Io(format!("cannot write {}: {e}", path.display())))
}

/// Where `scalesim report DIR` writes by default: DIR/report.html.
pub fn default_path(dir: &Path) -> PathBuf {
    dir.join(DEFAULT_FILE)
}

fn read_dir(dir: &Path) -> Result<Found, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::BadInput(format!(
            "{}: no such folder (give the output folder of `run --out`, `sweep`, `compare` or `capacity --out`)",
            dir.display()
        )));
    }
    let run = dir.join("result.json");
    let experiment = dir.join("results.json");
    if run.is_file() {
        let out: RunOutput = read_json(&run)?;
        if out.runs.is_empty() {
            return Err(ReportError::BadInput(format!(
                "{}: holds no run",
                run.display()
            )));
        }
        let dot = std::fs::read_to_string(dir.join(TOPOLOGY_FILE)).ok();
        return Ok(Found::Run(Box::new(out), dot));
    }
    if experiment.is_file() {
        let results: ExperimentResults = read_json(&experiment)?;
        let manifest = std::fs::read(dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let series = experiment::run_series(dir, &results);
        return Ok(Found::Experiment(Box::new(results), manifest, series));
    }
    let capacity = dir.join(CAPACITY_FILE);
    if capacity.is_file() {
        let out: CapacityOutput = read_json(&capacity)?;
        let dot = std::fs::read_to_string(dir.join(TOPOLOGY_FILE)).ok();
        return Ok(Found::Capacity(Box::new(out), dot));
    }
    Err(ReportError::BadInput(format!(
        "{}: not an output folder of scalesim: it has no result.json (from `run --out`), results.json (from `sweep` or `compare`) or capacity.json (from `capacity --out`)",
        dir.display()
    )))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ReportError::Io(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ReportError::BadInput(format!(
            "{}: not a result file of this version of scalesim: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_results_is_refused_with_its_path() {
        let dir = tempfile_dir("empty");
        match report_of_dir(&dir) {
            Err(ReportError::BadInput(m)) => {
                assert!(
                    m.contains(&dir.display().to_string()) && m.contains("result.json"),
                    "{m}"
                )
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let missing = dir.join("nope");
        assert!(
            matches!(report_of_dir(&missing), Err(ReportError::BadInput(m)) if m.contains("no such folder"))
        );
        std::fs::write(dir.join("result.json"), "{\"x\": 1}").unwrap();
        assert!(
            matches!(report_of_dir(&dir), Err(ReportError::BadInput(m)) if m.contains("not a result file"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("scalesim-html-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
