//! Command line: `run`, `check`, `schema`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use scalesim::analysis::estimate;
use scalesim::model::{LoadError, Model, load_model_file};
use scalesim::report::{RunOutput, check_table, run_table, to_csv, write_atomic};
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
    /// Print the JSON Schema of model files.
    Schema,
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
        Command::Schema => {
            print!("{}", scalesim::schema::model_schema_json());
            Ok(())
        }
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
    let seed = a.seed.unwrap_or(model.seed);
    let estimates = estimate(&model);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let runs = pool
        .install(|| scalesim::replicate::replicate(&model, seed, a.replications as usize))
        .with_context(|| format!("{}: the simulation failed", a.model.display()))?;
    let out = RunOutput::new(&model, seed, &a.set, estimates, runs);
    let json = serde_json::to_string_pretty(&out).context("serializing the result")? + "\n";
    let csv = to_csv(&out);
    if let Some(dir) = &a.out {
        write_atomic(&dir.join("result.json"), json.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join("result.json").display()))?;
        write_atomic(&dir.join("result.csv"), csv.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join("result.csv").display()))?;
    }
    match a.format {
        OutputFormat::Table => print!("{}", run_table(&model, &out)),
        OutputFormat::Json => print!("{json}"),
        OutputFormat::Csv => print!("{csv}"),
    }
    Ok(())
}

fn check(a: CheckArgs) -> Result<()> {
    let model = load(&a.model, &a.set)?;
    let est = estimate(&model);
    print!("{}", check_table(&model, &est));
    Ok(())
}
