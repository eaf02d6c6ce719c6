//! Run records: one file per finished run under `DIR/runs/`, written atomically. They are
//! the raw material every summary is computed from, so a resumed, sharded or merged
//! experiment gives exactly the files of one uninterrupted run.

use super::plan::{Plan, Task};
use crate::files::write_atomic;
use crate::metrics::LatencyHistogram;
use crate::results::RunResult;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Folder of run records inside an output folder.
pub const RUNS_DIR: &str = "runs";

/// One finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Name of the experiment it belongs to (empty in records written before it was
    /// recorded): tells an edited version of the same experiment, whose runs a new
    /// sweep replaces, from another experiment, whose folder is refused.
    #[serde(default)]
    pub experiment: String,
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
            experiment: plan.spec.name.clone(),
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

/// Lock file of an output folder, held while a command writes there.
pub const LOCK_FILE: &str = ".scalesim.lock";

/// The result files a sweep, compare or merge writes next to `runs/`.
const RESULT_FILES: [&str; 5] = [
    "tidy.csv",
    "summary.csv",
    "comparisons.csv",
    "results.json",
    "manifest.json",
];

/// Why an output folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// Another scalesim command holds the folder.
    #[error(
        "{0} is in use by another scalesim command (a sweep, compare or merge writing there); wait for it to finish or choose another --out"
    )]
    Busy(String),
    /// The folder or its lock file cannot be created.
    #[error("{context}")]
    Io {
        /// What failed, naming the path.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// An output folder held by this process: a sweep, a comparison or a merge writes there
/// alone (shards of one sweep share it). The lock is an advisory `flock` on
/// [`LOCK_FILE`], released by the operating system when the process ends however it
/// ends, so a killed sweep never blocks the next one; the file is removed when the last
/// holder lets go.
#[derive(Debug)]
pub struct FolderLock {
    file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it: exclusively, or `shared` with other shards
    /// of a sweep. A folder held by another command is [`FolderError::Busy`].
    pub fn acquire(dir: &Path, shared: bool) -> Result<FolderLock, FolderError> {
        let io = |what: &str, p: &Path| {
            let context = format!("cannot {what} {}", p.display());
            move |source| FolderError::Io { context, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(LOCK_FILE);
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io("create", &path))?;
            let locked = if shared {
                file.try_lock_shared()
            } else {
                file.try_lock()
            };
            match locked {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(FolderError::Busy(dir.display().to_string()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
            }
            // The holder before us may have removed the file between our open and our
            // lock: then we hold a lock on a file no one else can find. Start again.
            if is_same_file(&file, &path) {
                return Ok(FolderLock { file, path });
            }
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Remove the lock file only when no one else holds it (shards share it); closing
        // the file then releases the lock.
        if self.file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn is_same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// Removes the result files of an earlier sweep, compare or merge from `dir` (not the run
/// records): a fresh start must not leave, say, the comparisons of a variant since
/// removed. Shard manifests are kept with `keep_shard_manifests`.
pub fn remove_results(dir: &Path, keep_shard_manifests: bool) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    for name in RESULT_FILES {
        gone(std::fs::remove_file(dir.join(name)))?;
    }
    let entries = |d: &Path| -> std::io::Result<Vec<(String, PathBuf)>> {
        match std::fs::read_dir(d) {
            Ok(it) => it
                .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    };
    if !keep_shard_manifests {
        for (name, path) in entries(dir)? {
            if name.starts_with("manifest-shard-") && name.ends_with(".json") {
                gone(std::fs::remove_file(path))?;
            }
        }
    }
    // Plots are numbered: 01-latency-cdf.png, 01-latency-cdf.svg, ...
    for (name, path) in entries(&dir.join("plots"))? {
        let numbered = name.len() > 3
            && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[2] == b'-';
        if numbered && (name.ends_with(".png") || name.ends_with(".svg")) {
            gone(std::fs::remove_file(path))?;
        }
    }
    Ok(())
}

/// The experiment named in the manifests or results.json of `dir`, if any.
pub fn recorded_owner(dir: &Path) -> Option<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("manifest") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    names.push(dir.join("results.json"));
    names.into_iter().find_map(|p| {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        v["experiment"].as_str().map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_held_by_one_command_or_by_shards_together() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("out");
        let first = FolderLock::acquire(&dir, false).unwrap();
        assert!(dir.join(LOCK_FILE).exists());
        assert!(matches!(
            FolderLock::acquire(&dir, false),
            Err(FolderError::Busy(_))
        ));
        assert!(matches!(
            FolderLock::acquire(&dir, true),
            Err(FolderError::Busy(_))
        ));
        drop(first);
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "the last holder removes the file"
        );
        let a = FolderLock::acquire(&dir, true).unwrap();
        let b = FolderLock::acquire(&dir, true).unwrap();
        assert!(FolderLock::acquire(&dir, false).is_err());
        drop(a);
        assert!(
            dir.join(LOCK_FILE).exists(),
            "still held by the other shard"
        );
        assert!(FolderLock::acquire(&dir, false).is_err());
        drop(b);
        assert!(!dir.join(LOCK_FILE).exists());
        // A lock file left by a killed process is not held by anyone.
        std::fs::write(dir.join(LOCK_FILE), b"").unwrap();
        drop(FolderLock::acquire(&dir, false).unwrap());
    }
}
