//! Running the tasks of a plan in parallel: progress bar, Ctrl-C / SIGTERM, resume,
//! shards, warm-up detection. Each finished run is written to disk at once, so memory
//! does not grow with the number of runs and an interruption loses only runs in progress.

use super::plan::{Plan, Task, WarmupMode, with_warmup};
use super::store::{
    FolderError, RUNS_DIR, RunRecord, list_records, read_record, recorded_owner, write_record,
};
use crate::engine::RunError;
use crate::results::run_once;
use crate::stats::mser5;
use crate::time::SimDuration;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the Ctrl-C / SIGTERM handler: no new run starts.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C and SIGTERM handler (once per process).
pub fn install_stop_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            // Not eprintln!: a closed stderr must not panic the handler.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"\nstopping: finishing the runs in progress (press Ctrl-C again to quit now)\n",
            );
        });
    });
}

/// This process's share of a sweep: index `index` of `count`, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Index, from 0.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// True if task number `n` (in plan order) belongs to this shard.
    pub fn owns(&self, n: usize) -> bool {
        n % self.count == self.index
    }
}

/// Why running tasks stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A run failed.
    #[error("run {} failed: {source}", task.file_name())]
    Run {
        /// The task.
        task: Task,
        /// Why.
        source: RunError,
    },
    /// Reading or writing the output folder failed.
    #[error("{context}")]
    Io {
        /// What failed, naming the path.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Ctrl-C or SIGTERM.
    #[error(
        "interrupted: {done} of {total} runs are finished and kept; run again with --resume to finish"
    )]
    Interrupted {
        /// Runs finished (including earlier ones).
        done: usize,
        /// Runs asked for.
        total: usize,
    },
    /// The output folder holds runs of another experiment.
    #[error("{0}")]
    Mismatch(String),
    /// The output folder is in use, or cannot be locked.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

impl SweepError {
    /// An I/O error: "cannot {what} {path}", then the cause.
    pub fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> SweepError {
        let context = format!("cannot {what} {}", path.display());
        move |source| SweepError::Io { context, source }
    }
}

/// The runs recorded in an output folder for a plan.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Runs of this very plan.
    pub done: BTreeSet<Task>,
    /// Records of an earlier version of the same experiment (same name; the experiment
    /// or one of its models was edited since): a new sweep replaces them.
    pub stale: Vec<std::path::PathBuf>,
    /// True when the folder is known to be this experiment's (by a record, a manifest or
    /// results.json), so its earlier result files may be removed.
    pub owned: bool,
}

/// Sorts the records in `dir` into this plan's and stale ones. A folder that belongs to
/// another experiment (by its records, manifests or results) is an error, so a mistyped
/// `--out` is refused, never emptied.
pub fn survey(plan: &Plan, dir: &Path) -> Result<Recorded, SweepError> {
    let name = plan.spec.name.as_str();
    let owner = recorded_owner(dir);
    let foreign = |other: Option<&str>| {
        let whose = match other {
            Some(o) => format!("runs of a different experiment (\"{o}\")"),
            None => "runs of a different experiment".to_string(),
        };
        SweepError::Mismatch(format!(
            "{} holds {whose}; choose another --out or delete the folder",
            dir.display()
        ))
    };
    if let Some(o) = owner.as_deref().filter(|o| *o != name) {
        return Err(foreign(Some(o)));
    }
    let mut found = Recorded {
        owned: owner.is_some(),
        ..Recorded::default()
    };
    for (t, path) in list_records(dir).map_err(SweepError::io("read", &dir.join(RUNS_DIR)))? {
        let r = read_record(&path).map_err(SweepError::Mismatch)?;
        if r.experiment_hash == plan.hash {
            found.done.insert(t);
            continue;
        }
        // Records written before they named their experiment go by the folder's manifest.
        let of = Some(r.experiment.as_str())
            .filter(|n| !n.is_empty())
            .or(owner.as_deref());
        if of == Some(name) {
            found.stale.push(path);
        } else {
            return Err(foreign(of));
        }
    }
    found.owned |= !found.done.is_empty() || !found.stale.is_empty();
    Ok(found)
}

/// The refusal of `--resume` over records of an earlier version of the experiment.
pub fn edited(plan: &Plan, dir: &Path) -> SweepError {
    SweepError::Mismatch(format!(
        "{} holds runs of an earlier version of experiment \"{}\" (the experiment or one of its models changed since); run without --resume to replace them",
        dir.display(),
        plan.spec.name
    ))
}

/// Tasks already recorded in `dir` for this plan. A record of another experiment, or of
/// an earlier version of this one, is an error.
pub fn recorded(plan: &Plan, dir: &Path) -> Result<BTreeSet<Task>, SweepError> {
    let found = survey(plan, dir)?;
    if !found.stale.is_empty() {
        return Err(edited(plan, dir));
    }
    Ok(found.done)
}

/// Runs one task: the model at its seed, with MSER-5 warm-up detection if asked.
pub fn run_task(plan: &Plan, t: &Task) -> Result<RunRecord, RunError> {
    let model = plan.model(t);
    let seed = plan.seed_of(t.replication);
    match plan.warmup {
        WarmupMode::Fixed => {
            let r = run_once(model, seed)?;
            Ok(RunRecord::new(plan, t, seed, model.warmup.as_secs_f64(), r))
        }
        WarmupMode::Mser5 => {
            // Pilot without warm-up, detect the transient on the first workload's latency
            // series, then the same run (same seed) measured after it.
            let pilot = run_once(model, seed)?;
            let (window_s, cut) = pilot
                .series
                .values()
                .next()
                .map(|s| (s.window_s, mser5(&s.latency_mean_ms)))
                .unwrap_or((0.0, 0));
            let warmup = SimDuration::from_secs_f64(window_s * cut as f64);
            let m = with_warmup(model, warmup);
            let r = run_once(&m, seed)?;
            Ok(RunRecord::new(plan, t, seed, m.warmup.as_secs_f64(), r))
        }
    }
}

/// Runs `tasks` not in `skip` on the current rayon pool, writing each record into `dir`.
pub fn run_tasks(
    plan: &Plan,
    tasks: &[Task],
    skip: &BTreeSet<Task>,
    dir: &Path,
    show_progress: bool,
) -> Result<usize, SweepError> {
    let todo: Vec<Task> = tasks
        .iter()
        .filter(|t| !skip.contains(t))
        .copied()
        .collect();
    let already = tasks.len() - todo.len();
    let bar = if show_progress {
        let b = ProgressBar::new(tasks.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {per_sec}  eta {eta}  {msg}")
                .expect("valid progress template"),
        );
        b.set_position(already as u64);
        b
    } else {
        ProgressBar::hidden()
    };
    let outcomes: Vec<Result<bool, SweepError>> = todo
        .par_iter()
        .map(|t| {
            if STOP.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let record =
                run_task(plan, t).map_err(|source| SweepError::Run { task: *t, source })?;
            write_record(dir, &record)
                .map_err(SweepError::io("write", &super::store::record_path(dir, t)))?;
            bar.inc(1);
            Ok(true)
        })
        .collect();
    bar.finish_and_clear();
    let mut done = already;
    for o in outcomes {
        if o? {
            done += 1;
        }
    }
    if done < tasks.len() {
        return Err(SweepError::Interrupted {
            done,
            total: tasks.len(),
        });
    }
    Ok(todo.len())
}
