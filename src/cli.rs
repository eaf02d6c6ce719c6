//! Command line: `run`, `check`, `sweep`, `merge`, `compare`, `capacity`, `schema`,
//! `graph`, `report`.

use crate::output::{emit, note};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use scalesim::analysis::estimate;
use scalesim::engine::watch::Sink;
use scalesim::experiment::aggregate::AggregateError;
use scalesim::experiment::store::FolderLock;
use scalesim::experiment::{
    ExperimentManifest, ExperimentResults, Plan, Shard, SweepError, install_stop_handler, load_plan,
};
use scalesim::files::write_atomic;
use scalesim::model::{LoadError, Model, load_model_file};
use scalesim::progress::RunProgress;
use scalesim::replicate::replicate_watched;
use scalesim::report::html;
use scalesim::report::{
    DiagramFormat, RunOutput, check_table, diagram, run_table, to_csv, write_experiment_files,
};
use scalesim::trace::explain::{ExplainSink, explain_table};
use scalesim::trace::{Followers, TraceSink, chrome};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// scalesim: a deterministic discrete-event simulator for scaling architectures.
#[derive(Debug, Parser)]
#[command(name = "scalesim", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a model and report latency, throughput, errors and utilization.
    Run(RunArgs),
    /// Validate a model, list its instances and print analytic estimates.
    Check(CheckArgs),
    /// Run an experiment: variants × sweep points × replications, in parallel.
    Sweep(SweepArgs),
    /// Join the output folders of a sharded sweep into the result of one run.
    Merge(MergeArgs),
    /// Compare designs on common random numbers, with paired confidence intervals.
    Compare(CompareArgs),
    /// Find the highest load at which a service-level objective still holds.
    Capacity(CapacityArgs),
    /// Print the JSON Schema of model files (or of experiment files).
    Schema(SchemaArgs),
    /// Draw a model's topology as a Mermaid flowchart or a Graphviz DOT graph.
    Graph(GraphArgs),
    /// Write a self-contained HTML report of an output folder (of run --out, sweep, compare).
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Output folder of `run --out`, `sweep` or `compare`.
    dir: PathBuf,
    /// The HTML file to write (default: DIR/report.html).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct GraphArgs {
    /// Model file (.json, or .yaml/.yml).
    model: PathBuf,
    /// Diagram language: mermaid (renders in a GitHub README) or dot (Graphviz).
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
    /// Override a model field before validation (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz DOT digraph.
    Dot,
}

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Print the schema of experiment files instead of model files.
    #[arg(long)]
    experiment: bool,
}

#[derive(Debug, clap::Args)]
struct SweepArgs {
    /// Experiment file (.json, or .yaml/.yml).
    experiment: PathBuf,
    /// Output folder (default: output/NAME).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Threads (default: RAYON_NUM_THREADS, else SLURM_CPUS_PER_TASK, else all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (I from 0): runs t with t mod N = I. The index defaults from
    /// SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) or JOB_COMPLETION_INDEX when only
    /// --shard-count is given.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Number of shards, with the index taken from the scheduler's environment.
    #[arg(long, value_name = "N", env = "SLURM_ARRAY_TASK_COUNT")]
    shard_count: Option<usize>,
    /// Keep the runs already in the output folder and do only the missing ones.
    #[arg(long)]
    resume: bool,
    /// Replications per point (overrides the experiment file).
    #[arg(long)]
    replications: Option<u32>,
    /// Add replications until the 95% CI half-width of --metric is under this share of
    /// its mean at every point, e.g. 2%.
    #[arg(long, requires = "metric")]
    precision: Option<String>,
    /// Metric watched by --precision, e.g. workloads.users.latency.p99_ms.
    #[arg(long)]
    metric: Option<String>,
    /// Most replications per point with --precision.
    #[arg(long, default_value_t = 100)]
    max_replications: u32,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Also write a self-contained HTML report to this file (see `scalesim report`).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct MergeArgs {
    /// Output folders of the shards (the first is written to unless --out is given).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Folder for the merged result.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The experiment file (default: the one recorded in the shards' manifests).
    #[arg(long)]
    experiment: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Model files; the first is the baseline.
    #[arg(required = true, num_args = 2..)]
    models: Vec<PathBuf>,
    /// Replications of each model (same seeds for every model).
    #[arg(long, default_value_t = 10)]
    replications: u32,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (default: output/compare-A-vs-B, from the designs' names).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// Metrics to show (keys as in summary.csv; default: latency, throughput, errors, cost).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Add replications until this relative CI half-width on the first --metric, e.g. 2%.
    #[arg(long)]
    precision: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct CapacityArgs {
    /// Model file.
    model: PathBuf,
    /// Objectives, e.g. 'p99<200ms' or 'p99<200ms,errors<1%'.
    #[arg(long)]
    slo: String,
    /// Scale only this workload (default: every open-loop workload).
    #[arg(long)]
    workload: Option<String>,
    /// Replications per load level.
    #[arg(long, default_value_t = 5)]
    replications: u32,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Relative precision of the answer.
    #[arg(long, default_value_t = 0.02, value_parser = finite_number)]
    tolerance: f64,
    /// Override a model field (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// Print the JSON result instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
    /// Also write capacity.json and topology.dot into this folder (for `scalesim report`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write a self-contained HTML report of the search to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Model file (.json, or .yaml/.yml).
    model: PathBuf,
    /// Seed of the run (default: the model's `seed`, or 1).
    #[arg(long)]
    seed: Option<u64>,
    /// Override a model field before validation, e.g. components.app.replicas=4 (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Also write result.json and result.csv into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Independent replications (reported as mean ± 95% confidence interval).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    replications: u32,
    /// Threads for replications (default: all cores).
    #[arg(long, env = "SCALESIM_JOBS")]
    jobs: Option<usize>,
    /// Also write a self-contained HTML report to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// No progress line (shown on a terminal when a run takes more than two seconds).
    #[arg(long, short)]
    quiet: bool,
    /// Trace N requests sampled from the seed (1 to 100,000) as Chrome Trace Event JSON
    /// for Perfetto: written to --trace-file, or to DIR/trace.json with --out DIR.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(scalesim::trace::MAX_TRACED)))]
    trace: Option<u32>,
    /// Where --trace writes its trace (default: DIR/trace.json with --out DIR).
    #[arg(long, value_name = "FILE", requires = "trace")]
    trace_file: Option<PathBuf>,
    /// Also show where the requests' time went: per workload, class and component, queue,
    /// service, network, calls and backoff, and the critical path of the slow requests
    /// (a table after the results; an "explain" section in the JSON).
    #[arg(long)]
    explain: bool,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Model file (.json, or .yaml/.yml).
    model: PathBuf,
    /// Override a model field before validation (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// A readable table.
    Table,
    /// The full JSON document.
    Json,
    /// Tidy CSV, one row per metric.
    Csv,
}

/// An error the user caused (exit status 2) rather than a failure while running (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Runs the command line; errors are returned to `main`, which prints them.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run_model(a),
        Command::Check(a) => check(a),
        Command::Sweep(a) => sweep(a),
        Command::Merge(a) => merge(a),
        Command::Compare(a) => compare(a),
        Command::Capacity(a) => capacity(a),
        Command::Graph(a) => {
            let model = load(&a.model, &a.set)?;
            let format = match a.format {
                GraphFormat::Mermaid => DiagramFormat::Mermaid,
                GraphFormat::Dot => DiagramFormat::Dot,
            };
            emit(&diagram(&model, format))
        }
        Command::Report(a) => {
            let out = a.out.unwrap_or_else(|| html::default_path(&a.dir));
            let page = html::report_of_dir(&a.dir).map_err(report_error)?;
            html::write_report(&out, &page).map_err(report_error)?;
            note!("report in {}", out.display());
            Ok(())
        }
        Command::Schema(a) => {
            if a.experiment {
                emit(&scalesim::schema::experiment_schema_json())
            } else {
                emit(&scalesim::schema::model_schema_json())
            }
        }
    }
}

/// A report's error: bad input (exit 2) or a failure to read or write (exit 1).
fn report_error(e: html::ReportError) -> anyhow::Error {
    match e {
        html::ReportError::BadInput(m) => anyhow::Error::new(BadInput(m)),
        html::ReportError::Io(m) => anyhow::anyhow!(m),
    }
}

/// Checks before a run that the folder of a `--report` file can be written.
fn report_target(file: &Option<PathBuf>) -> Result<()> {
    match file {
        Some(f) => writable_folder(
            f.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        ),
        None => Ok(()),
    }
}

fn load(path: &Path, set: &[String]) -> Result<Model> {
    load_model_file(path, set).map_err(|e| match e {
        LoadError::Invalid(errs) => anyhow::Error::new(BadInput(errs.to_string())),
        LoadError::Io { .. } => anyhow::Error::new(BadInput(e.to_string())),
    })
}

fn run_model(a: RunArgs) -> Result<()> {
    let model = load(&a.model, &a.set)?;
    if let Some(dir) = &a.out {
        writable_folder(dir)?;
    }
    report_target(&a.report)?;
    let trace_file = trace_target(&a)?;
    let seed = a.seed.unwrap_or(model.seed);
    check_replications_memory(&model, a.replications)?;
    let estimates = estimate(&model);
    let pool = thread_pool(a.jobs)?;
    let progress = RunProgress::default();
    let shown = !a.quiet && std::io::stderr().is_terminal();
    let followers = (a.trace.is_some() || a.explain).then(|| Followers {
        trace: a.trace.map(TraceSink::new),
        explain: a.explain.then(|| ExplainSink::new(&model)),
    });
    let replicate = || {
        let observer = shown.then_some(&progress);
        pool.install(|| {
            replicate_watched(
                &model,
                seed,
                a.replications as usize,
                observer,
                followers.map(|f| Box::new(f) as Box<dyn Sink>),
            )
        })
    };
    let (runs, watched) = if shown {
        scalesim::progress::shown_while(&progress, u64::from(a.replications), replicate)
    } else {
        replicate()
    }
    .with_context(|| format!("{}: the simulation failed", a.model.display()))?;
    let out = RunOutput::new(&model, seed, &a.set, estimates, runs);
    warn_stopped_early(&out);
    let (followers, names) = match watched {
        Some((sink, names)) => {
            let any: Box<dyn std::any::Any> = sink;
            let f = any.downcast::<Followers>().expect("the sink given");
            (Some(*f), Some(names))
        }
        None => (None, None),
    };
    let breakdowns = match (&followers, &names) {
        (
            Some(Followers {
                explain: Some(e), ..
            }),
            Some(names),
        ) => Some(e.breakdowns(names)),
        _ => None,
    };
    let json = match &breakdowns {
        None => serde_json::to_string_pretty(&out),
        Some(b) => serde_json::to_value(&out).and_then(|mut v| {
            v["explain"] = serde_json::to_value(b)?;
            serde_json::to_string_pretty(&v)
        }),
    }
    .context("serializing the result")?
        + "\n";
    let csv = to_csv(&out);
    // The files first, so that a closed stdout does not lose them; stdout even when the
    // files fail, then their error.
    let mut written = Ok(());
    let dot = diagram(&model, DiagramFormat::Dot);
    if let Some(file) = &a.report {
        written = html::run::report(&out, Some(&dot))
            .with_context(|| format!("cannot write {}", file.display()))
            .and_then(|page| html::write_report(file, &page).map_err(report_error));
    }
    if let Some(dir) = &a.out {
        for (name, bytes) in [
            ("result.json", json.as_bytes()),
            ("result.csv", csv.as_bytes()),
            (html::TOPOLOGY_FILE, dot.as_bytes()),
        ] {
            let path = dir.join(name);
            let w = write_atomic(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()));
            written = written.and(w);
        }
    }
    if let (Some(file), Some(Followers { trace: Some(t), .. }), Some(names)) =
        (&trace_file, followers, &names)
    {
        let lives = t.into_lives();
        let text = chrome::trace_json(&lives, names, &model.name, seed);
        let w = write_atomic(file, text.as_bytes())
            .with_context(|| format!("cannot write {}", file.display()));
        if w.is_ok() {
            note!("trace of {} requests in {}", lives.len(), file.display());
        }
        written = written.and(w);
    }
    let shown = match a.format {
        OutputFormat::Table => {
            let mut text = run_table(&model, &out);
            if let Some(b) = &breakdowns {
                text.push_str(&explain_table(b));
            }
            emit(&text)
        }
        OutputFormat::Json => emit(&json),
        OutputFormat::Csv => emit(&csv),
    };
    written.and(shown)
}

/// The file `run --trace` writes: --trace-file, else DIR/trace.json with --out DIR;
/// checked writable before the run.
fn trace_target(a: &RunArgs) -> Result<Option<PathBuf>> {
    if a.trace.is_none() {
        return Ok(None);
    }
    let file = match (&a.trace_file, &a.out) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join("trace.json"),
        (None, None) => {
            return Err(BadInput(
                "--trace needs a file to write: give --trace-file FILE, or --out DIR (the trace goes to DIR/trace.json)".into(),
            )
            .into());
        }
    };
    report_target(&Some(file.clone()))?;
    Ok(Some(file))
}

/// Creates `dir` if needed and checks that a file can be written in it, so that an
/// unwritable `--out` fails before the simulation, not after it.
fn writable_folder(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let probe = dir.join(format!(".scalesim-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| format!("cannot write to {}", dir.display()))
}

/// Refuses replications whose results would not fit in the results budget.
fn check_replications_memory(model: &Model, replications: u32) -> Result<()> {
    scalesim::limits::check_results_memory(
        model,
        u64::from(replications),
        "--replications",
        "",
        ", or a sweep (which keeps each run on disk)",
    )
    .map_err(|m| BadInput(m).into())
}

/// Refuses an experiment whose runs, at the most replications it may make (the precision
/// cap, which the command line may have set after the file was read), are too many or
/// would not fit in memory while summarised: before the first run. `cap` names the
/// setting of that cap, `replications` that of the fixed count.
fn check_plan_size(plan: &Plan, cap: &str, replications: &str) -> Result<()> {
    let option = if plan.most_replications() > plan.replications {
        cap
    } else {
        replications
    };
    plan.check_size(option).map_err(|m| BadInput(m).into())
}

/// Says on stderr, whatever the output format, that runs stopped at `max_in_flight`.
fn warn_stopped_early(out: &RunOutput) {
    let stopped: Vec<_> = out
        .runs
        .iter()
        .filter(|r| r.stopped_early.is_some())
        .collect();
    if let Some(first) = stopped
        .first()
        .and_then(|r| r.stopped_early.map(|s| (s, r.seed)))
    {
        eprintln!("warning: {}", first.0.message(first.1));
        if stopped.len() > 1 {
            eprintln!(
                "warning: {} of {} runs stopped early",
                stopped.len(),
                out.runs.len()
            );
        }
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let model = load(&a.model, &a.set)?;
    let est = estimate(&model);
    emit(&check_table(&model, &est))
}

/// Most threads per available core: simulations are CPU-bound, so more only costs memory
/// and stacks (`--jobs 100000` would exhaust both).
const MAX_JOBS_PER_CORE: usize = 4;

/// Threads: the flag, else RAYON_NUM_THREADS, else SLURM_CPUS_PER_TASK, else all cores
/// (also for 0), at most [`MAX_JOBS_PER_CORE`] per available core, with a note when lowered.
fn thread_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let from_env = |k: &'static str| {
        let v = std::env::var(k).ok()?.trim().parse::<usize>().ok()?;
        Some((v, format!("{k}={v}")))
    };
    let asked = jobs
        .map(|n| (n, format!("--jobs {n}")))
        .or_else(|| from_env("RAYON_NUM_THREADS"))
        .or_else(|| from_env("SLURM_CPUS_PER_TASK"));
    let max = MAX_JOBS_PER_CORE * cores;
    let n = match asked {
        None | Some((0, _)) => cores,
        Some((n, source)) if n > max => {
            note!(
                "note: {source} is more than {MAX_JOBS_PER_CORE} threads per available core ({cores} cores); using {max} threads"
            );
            max
        }
        Some((n, _)) => n,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .context("cannot start the worker threads")
}

/// A number option: a finite number, echoing the user's text when it is not one (NaN and
/// infinities parse as numbers but mean nothing here).
fn finite_number(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a finite number, got \"{text}\"")),
    }
}

fn parse_share(text: &str) -> Result<f64> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| {
        BadInput(format!(
            "--precision: expected a share such as 2% or 0.02, got \"{text}\""
        ))
    })?;
    if !(v > 0.0 && v < 1.0) {
        return Err(BadInput(format!(
            "--precision: must be between 0% and 100%, got \"{text}\""
        ))
        .into());
    }
    Ok(v)
}

fn shard_of(a: &SweepArgs) -> Result<Option<Shard>> {
    let bad = |m: String| anyhow::Error::new(BadInput(m));
    if let Some(s) = &a.shard {
        let (i, n) = s
            .split_once('/')
            .and_then(|(i, n)| {
                Some((
                    i.trim().parse::<usize>().ok()?,
                    n.trim().parse::<usize>().ok()?,
                ))
            })
            .ok_or_else(|| bad(format!("--shard: expected I/N such as 3/16, got \"{s}\"")))?;
        if n == 0 || i >= n {
            return Err(bad(format!(
                "--shard: the index is counted from 0 and must be below N, got {i}/{n}"
            )));
        }
        return Ok(Some(Shard { index: i, count: n }));
    }
    let Some(n) = a.shard_count else {
        return Ok(None);
    };
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let i = match env("SLURM_ARRAY_TASK_ID") {
        Some(id) => id - env("SLURM_ARRAY_TASK_MIN").unwrap_or(0),
        None => env("JOB_COMPLETION_INDEX")
            .or_else(|| env("AWS_BATCH_JOB_ARRAY_INDEX"))
            .ok_or_else(|| bad("--shard-count needs the shard index: give --shard I/N, or run under a Slurm array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)".into()))?,
    };
    if n == 0 || i >= n {
        return Err(bad(format!(
            "shard index {i} is not below the shard count {n}"
        )));
    }
    Ok(Some(Shard { index: i, count: n }))
}

fn load_experiment(path: &Path, replications: Option<u32>) -> Result<Plan> {
    load_plan(path, replications).map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
}

fn sweep_error(e: SweepError) -> anyhow::Error {
    match e {
        SweepError::Mismatch(m) => anyhow::Error::new(BadInput(m)),
        other => anyhow::Error::new(other),
    }
}

fn sweep(a: SweepArgs) -> Result<()> {
    let shard = shard_of(&a)?;
    let mut plan = load_experiment(&a.experiment, a.replications)?;
    if let Some(p) = &a.precision {
        if shard.is_some() {
            return Err(BadInput("--precision decides the number of runs as it goes, so it cannot be split with --shard".into()).into());
        }
        let metric = a.metric.clone().unwrap_or_default();
        plan.check_metric_options("--metric", std::slice::from_ref(&metric), true)
            .map_err(BadInput)?;
        plan.spec.precision = Some(scalesim::experiment::spec::PrecisionSpec {
            metric,
            relative: parse_share(p)?,
            max_replications: Some(a.max_replications),
        });
    } else if plan.spec.precision.is_some() && shard.is_some() {
        return Err(BadInput(
            "the experiment asks for replications by precision, which cannot be split with --shard"
                .into(),
        )
        .into());
    }
    let in_file = |field: &str| format!("{}: {field}", a.experiment.display());
    check_plan_size(
        &plan,
        &if a.precision.is_some() {
            "--max-replications".to_string()
        } else {
            in_file("precision.max_replications")
        },
        &if a.replications.is_some() {
            "--replications".to_string()
        } else {
            in_file("replications")
        },
    )?;
    let dir = a.out.clone().unwrap_or_else(|| plan.default_out());
    report_target(&a.report)?;
    // One sweep writes a folder at a time (shards of one sweep share it).
    let _lock = FolderLock::acquire(&dir, shard.is_some()).map_err(SweepError::from)?;
    let pool = thread_pool(a.jobs)?;
    install_stop_handler();
    let started = std::time::SystemTime::now();
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let executed = pool
        .install(|| scalesim::experiment::execute(&plan, &dir, shard, a.resume, progress))
        .map_err(sweep_error)?;
    let manifest = ExperimentManifest::new(&plan, executed, shard, started);
    match shard {
        Some(s) => {
            manifest
                .write(
                    &dir,
                    &format!("manifest-shard-{}-of-{}.json", s.index, s.count),
                )
                .with_context(|| {
                    format!(
                        "cannot write {}",
                        dir.join("manifest-shard-*.json").display()
                    )
                })?;
            note!(
                "shard {}/{}: {executed} runs written to {}; join the shards with `scalesim merge`",
                s.index,
                s.count,
                dir.join("runs").display()
            );
        }
        None => {
            let results = aggregate(&plan, &dir).map_err(|e| anyhow::anyhow!(e))?;
            manifest
                .write(&dir, "manifest.json")
                .with_context(|| format!("cannot write {}", dir.join("manifest.json").display()))?;
            if let Some(file) = &a.report {
                let page = html::report_of_dir(&dir).map_err(report_error)?;
                html::write_report(file, &page).map_err(report_error)?;
            }
            emit(&experiment_table(&plan, &results))?;
            note!("results in {}", dir.display());
        }
    }
    Ok(())
}

fn merge(a: MergeArgs) -> Result<()> {
    use scalesim::experiment::store::{list_records, remove_results};
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].clone());
    let experiment = match &a.experiment {
        Some(e) => e.clone(),
        None => recorded_experiment_file(&a.dirs)?,
    };
    let plan = load_experiment(&experiment, None)?;
    // An existing output folder is held while the merge writes there (a shard still
    // running in it is refused) and must belong to this experiment.
    let _lock = if out.is_dir() {
        let lock = FolderLock::acquire(&out, false).map_err(SweepError::from)?;
        scalesim::experiment::run::survey(&plan, &out).map_err(sweep_error)?;
        Some(lock)
    } else {
        None
    };
    // Everything is written aside first, into a sibling folder, and moved into place
    // only once complete: a failed merge leaves no partial output.
    let aside = aside_folder(&out)?;
    let merged = merge_into(&plan, &a.dirs, &aside).and_then(|results| {
        ExperimentManifest::new(&plan, 0, None, std::time::SystemTime::now())
            .write(&aside, "manifest.json")
            .with_context(|| format!("cannot write {}", out.join("manifest.json").display()))?;
        Ok(results)
    });
    let results = match merged {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&aside);
            return Err(e);
        }
    };
    if !out.exists() {
        if let Err(e) = std::fs::rename(&aside, &out) {
            let _ = std::fs::remove_dir_all(&aside);
            return Err(e).with_context(|| format!("cannot create {}", out.display()));
        }
    } else {
        // Into an existing folder (a shard's): its earlier results and any run not in
        // the merge go, the merged files come in by rename, each whole.
        let keep: std::collections::BTreeSet<_> = list_records(&aside)
            .with_context(|| format!("cannot read {}", aside.display()))?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for (t, path) in
            list_records(&out).with_context(|| format!("cannot read {}", out.display()))?
        {
            if !keep.contains(&t) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        remove_results(&out, true)
            .with_context(|| format!("cannot remove the earlier results in {}", out.display()))?;
        move_files(&aside, &out)?;
        let _ = std::fs::remove_dir_all(&aside);
    }
    emit(&experiment_table(&plan, &results))?;
    note!("merged {} folder(s) into {}", a.dirs.len(), out.display());
    Ok(())
}

/// A new, empty sibling of `out` to build it in: `.NAME.merging-PID`.
fn aside_folder(out: &Path) -> Result<PathBuf> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map_or_else(|| "merge".into(), |n| n.to_string_lossy().into_owned());
    let aside = parent.join(format!(".{name}.merging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::create_dir_all(&aside)
        .with_context(|| format!("cannot create {}", aside.display()))?;
    Ok(aside)
}

/// Aggregates the run records of `dir` and writes the experiment's result files there.
fn aggregate(plan: &Plan, dir: &Path) -> Result<ExperimentResults, AggregateError> {
    let found = scalesim::experiment::aggregate(plan, dir)?;
    write_experiment_files(&plan.layout(), dir, &found)
        .map_err(|e| AggregateError(e.to_string()))?;
    Ok(found.results)
}

/// Checks every record of the shard folders `dirs` (errors name the shard's own file),
/// copies them into `aside` and computes the result files there.
fn merge_into(
    plan: &Plan,
    dirs: &[PathBuf],
    aside: &Path,
) -> Result<scalesim::experiment::ExperimentResults> {
    use scalesim::experiment::store::{RunRecord, list_records, record_path};
    let mut sources: std::collections::BTreeMap<scalesim::experiment::Task, PathBuf> =
        Default::default();
    for d in dirs {
        if !d.is_dir() {
            return Err(BadInput(format!("{}: no such folder", d.display())).into());
        }
        for (t, path) in list_records(d).with_context(|| format!("cannot read {}", d.display()))? {
            let bad = |m: String| anyhow::Error::new(BadInput(format!("{}: {m}", path.display())));
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let record: RunRecord = serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("not a run record: {e}")))?;
            if record.experiment_hash != plan.hash {
                return Err(bad(format!(
                    "a run of a different experiment, or of an earlier version of \"{}\" (the experiment or one of its models changed since the shards ran)",
                    plan.spec.name
                )));
            }
            if record.task() != t {
                return Err(bad(format!(
                    "holds the run {}, not the run its name says",
                    record.task().file_name()
                )));
            }
            let target = record_path(aside, &t);
            if let Some(first) = sources.get(&t) {
                if std::fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
                    return Err(bad(format!(
                        "differs from {}, the same run in another shard",
                        first.display()
                    )));
                }
                continue;
            }
            write_atomic(&target, &bytes)
                .with_context(|| format!("cannot write {}", target.display()))?;
            sources.insert(t, path);
        }
    }
    aggregate(plan, aside).map_err(|e| {
        // Name the shard folders, not the folder being built.
        let shown = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let msg = e.to_string().replace(&aside.display().to_string(), &shown);
        anyhow::Error::new(BadInput(msg))
    })
}

/// Moves every file under `from` to the same place under `to`, by rename.
fn move_files(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e.with_context(|| format!("cannot read {}", from.display()))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst)
                .with_context(|| format!("cannot create {}", dst.display()))?;
            move_files(&src, &dst)?;
        } else {
            std::fs::rename(&src, &dst)
                .with_context(|| format!("cannot write {}", dst.display()))?;
        }
    }
    Ok(())
}

/// The experiment file named in the shards' manifests.
fn recorded_experiment_file(dirs: &[PathBuf]) -> Result<PathBuf> {
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            let is_manifest = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("manifest") && n.ends_with(".json"));
            if is_manifest {
                let v: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
                )
                .unwrap_or_default();
                if let Some(f) = v["experiment_file"].as_str() {
                    return located_experiment_file(PathBuf::from(f), &p);
                }
            }
        }
    }
    Err(BadInput(
        "no manifest found in the folders to merge; give the experiment file with --experiment"
            .into(),
    )
    .into())
}

/// The experiment file a shard manifest names, which must be found from here: the manifest
/// keeps the path as the sweep was given it, relative to the folder the sweep ran in.
fn located_experiment_file(file: PathBuf, manifest: &Path) -> Result<PathBuf> {
    if file.is_file() {
        return Ok(file);
    }
    let here = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current folder".into());
    Err(BadInput(format!(
        "{}: the sweep was run with the experiment file {}, which is not found from {here}; \
         a relative path counts from the folder the sweep ran in: run merge from there, or \
         give the file with --experiment FILE",
        manifest.display(),
        file.display()
    ))
    .into())
}

fn compare(a: CompareArgs) -> Result<()> {
    use scalesim::experiment::spec::{ExperimentSpec, PrecisionSpec, VariantSpec};
    let mut variants = indexmap::IndexMap::new();
    for m in &a.models {
        let stem = m
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        let mut name = stem.clone();
        let mut k = 2;
        while variants.contains_key(&name) {
            name = format!("{stem}-{k}");
            k += 1;
        }
        let abs = std::path::absolute(m).unwrap_or_else(|_| m.clone());
        variants.insert(
            name,
            VariantSpec {
                model: Some(abs.display().to_string()),
                set: Default::default(),
            },
        );
    }
    let precision = match &a.precision {
        Some(p) => Some(PrecisionSpec {
            metric: a
                .metrics
                .first()
                .cloned()
                .ok_or_else(|| BadInput("--precision needs a --metric to watch".into()))?,
            relative: parse_share(p)?,
            max_replications: Some(100),
        }),
        None => None,
    };
    let spec = ExperimentSpec {
        schema: None,
        name: comparison_name(variants.keys()),
        description: None,
        model: None,
        variants: Some(variants),
        sweep: None,
        replications: Some(a.replications),
        seed: Some(a.seed),
        duration: None,
        warmup: None,
        metrics: None,
        plots: Some(vec![scalesim::experiment::spec::PlotSpec::LatencyCdf(
            scalesim::experiment::spec::CdfPlotSpec {
                workload: None,
                point: None,
            },
        )]),
        precision,
    };
    let source = serde_json::to_value(&spec).context("serializing the comparison")?;
    // The precision metric is one of the --metric keys, checked below with them.
    let precision = spec.precision.clone();
    let mut plan = scalesim::experiment::plan::plan_from_spec(
        ExperimentSpec {
            precision: None,
            ..spec
        },
        &source,
        Path::new("compare"),
        Path::new("."),
        None,
    )
    .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?;
    plan.check_metric_options("--metric", &a.metrics, false)
        .map_err(BadInput)?;
    if precision.is_some() {
        plan.check_metric_options("--metric", &a.metrics[..1], true)
            .map_err(BadInput)?;
    }
    plan.spec.precision = precision;
    check_plan_size(&plan, "--precision", "--replications")?;
    // Each comparison has its own folder, named after its designs.
    let dir = a.out.clone().unwrap_or_else(|| plan.default_out());
    let _lock = FolderLock::acquire(&dir, false).map_err(SweepError::from)?;
    let pool = thread_pool(a.jobs)?;
    install_stop_handler();
    let started = std::time::SystemTime::now();
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let executed = pool
        .install(|| scalesim::experiment::execute(&plan, &dir, None, false, progress))
        .map_err(sweep_error)?;
    let results = aggregate(&plan, &dir).map_err(|e| anyhow::anyhow!(e))?;
    ExperimentManifest::new(&plan, executed, None, started)
        .write(&dir, "manifest.json")
        .with_context(|| format!("cannot write {}", dir.join("manifest.json").display()))?;
    emit(&comparison_table(&results, &a.metrics))?;
    note!("results in {}", dir.display());
    Ok(())
}

/// The experiment name of a comparison, which also names its default folder:
/// `compare-A-vs-B`, from the designs' names, shortened with a hash when very long.
fn comparison_name<'a>(designs: impl Iterator<Item = &'a String>) -> String {
    use sha2::{Digest, Sha256};
    let joined = designs.map(String::as_str).collect::<Vec<_>>().join("-vs-");
    let slug = scalesim::experiment::plan::file_safe(&format!("compare-{joined}"));
    const LONGEST: usize = 100;
    if slug.len() <= LONGEST {
        return slug;
    }
    let hash = Sha256::digest(slug.as_bytes());
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", &slug[..LONGEST - 13])
}

fn capacity(a: CapacityArgs) -> Result<()> {
    use scalesim::experiment::capacity::{
        CapacityError, CapacityOptions, capacity as search, check_options, parse_slo,
    };
    let slo = parse_slo(&a.slo).map_err(|e| BadInput(format!("--slo: {e}")))?;
    check_options(a.replications, a.tolerance).map_err(BadInput)?;
    // Validate the model as written first, for located errors.
    let model = load(&a.model, &a.set)?;
    if let Some(dir) = &a.out {
        writable_folder(dir)?;
    }
    report_target(&a.report)?;
    // Each load keeps its replications' results together (the load changes no size).
    scalesim::limits::check_results_memory(
        &model,
        u64::from(a.replications),
        "--replications",
        " at each load",
        "",
    )
    .map_err(BadInput)?;
    let text =
        scalesim::limits::read_to_string_capped(&a.model, scalesim::limits::MAX_MODEL_FILE_BYTES)
            .with_context(|| format!("cannot read {}", a.model.display()))?;
    let mut value = scalesim::model::parse_value(&text, scalesim::model::Format::of_path(&a.model))
        .map_err(|e| BadInput(e.to_string()))?;
    for s in &a.set {
        scalesim::model::apply_set(&mut value, s).map_err(|e| BadInput(e.to_string()))?;
    }
    let base = a.model.parent().unwrap_or(Path::new("."));
    let options = CapacityOptions {
        replications: a.replications as usize,
        seed: a.seed,
        workload: a.workload.clone(),
        tolerance: a.tolerance,
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let pool = thread_pool(a.jobs)?;
    let result = pool
        .install(|| search(&value, base, slo, &options))
        .map_err(|e| match e {
            // Only the model as written is the file's fault; a rate the search made is not.
            CapacityError::BadInput(m) => {
                anyhow::Error::new(BadInput(format!("{}: {m}", a.model.display())))
            }
            e @ (CapacityError::Unreachable(_) | CapacityError::Scaled { .. }) => {
                anyhow::Error::new(BadInput(e.to_string()))
            }
            other => anyhow::Error::new(other),
        })?;
    let written = write_capacity_files(&a, &model, &result);
    let shown = if a.json {
        emit(&(serde_json::to_string_pretty(&result)? + "\n"))
    } else {
        emit(&scalesim::report::capacity_table(&result))
    };
    written.and(shown)
}

/// Writes what `capacity --out` and `--report` ask for, each file whole; the first error
/// after trying them all.
fn write_capacity_files(
    a: &CapacityArgs,
    model: &Model,
    result: &scalesim::experiment::results::CapacityResult,
) -> Result<()> {
    if a.out.is_none() && a.report.is_none() {
        return Ok(());
    }
    let out = scalesim::experiment::results::CapacityOutput {
        scalesim_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model.name.clone(),
        seed: a.seed,
        replications: a.replications,
        tolerance: a.tolerance,
        workload: a.workload.clone(),
        overrides: a.set.clone(),
        capacity: result.clone(),
    };
    let dot = diagram(model, DiagramFormat::Dot);
    let mut written = Ok(());
    if let Some(file) = &a.report {
        written = html::capacity::report(&out, Some(&dot))
            .with_context(|| format!("cannot write {}", file.display()))
            .and_then(|page| html::write_report(file, &page).map_err(report_error));
    }
    if let Some(dir) = &a.out {
        let json = serde_json::to_string_pretty(&out).context("serializing the result")? + "\n";
        for (name, bytes) in [
            (html::CAPACITY_FILE, json.as_bytes()),
            (html::TOPOLOGY_FILE, dot.as_bytes()),
        ] {
            let path = dir.join(name);
            let w = write_atomic(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()));
            written = written.and(w);
        }
    }
    written
}

fn experiment_table(plan: &Plan, results: &scalesim::experiment::ExperimentResults) -> String {
    scalesim::report::experiment_table(&plan.layout(), results)
}

fn comparison_table(
    results: &scalesim::experiment::ExperimentResults,
    metrics: &[String],
) -> String {
    scalesim::report::comparison_table(results, metrics)
}
