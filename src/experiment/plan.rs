//! From an experiment file to a plan: every (point, variant) as a validated model, and the
//! list of runs (point, variant, replication) in a fixed order.

use super::check::{Vocabulary, check_experiment_name, check_outputs};
use super::results::ExperimentLayout;
use super::spec::{ExperimentSpec, WarmupSpec};
use crate::error::{ModelError, ModelErrors};
use crate::limits::{
    MAX_EXPERIMENT_RESULTS_BYTES, MAX_MODEL_FILE_BYTES, MAX_SWEEP_MODELS, MAX_SWEEP_RUNS,
    experiment_run_bytes, read_to_string_capped,
};
use crate::model::trace::TraceFiles;
use crate::model::{
    Format, Model, deserialize_located, hash_value, model_from_value_with, parse_value, set_path,
};
use crate::replicate::seed_of;
use crate::time::{SimDuration, format_duration_nanos};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default replications per point and variant.
pub const DEFAULT_REPLICATIONS: u32 = 10;

/// How each run's warm-up is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WarmupMode {
    /// The model's own (possibly overridden by the experiment's fixed warm-up).
    Fixed,
    /// Detected per run with MSER-5.
    Mser5,
}

/// An experiment ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The experiment as written.
    pub spec: ExperimentSpec,
    /// Its file.
    pub file: PathBuf,
    /// SHA-256 over the experiment and every model it runs.
    pub hash: String,
    /// Variant names; the first is the baseline.
    pub variants: Vec<String>,
    /// Swept paths and their values.
    pub axes: Vec<(String, Vec<Value>)>,
    /// For each point, the value of each axis.
    pub points: Vec<Vec<Value>>,
    /// Validated models, `[point][variant]`.
    pub models: Vec<Vec<Arc<Model>>>,
    /// Replications per (point, variant).
    pub replications: u32,
    /// Base seed.
    pub seed: u64,
    /// Warm-up mode.
    pub warmup: WarmupMode,
}

/// One run of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Task {
    /// Sweep point.
    pub point: usize,
    /// Variant.
    pub variant: usize,
    /// Replication index.
    pub replication: u32,
}

impl Task {
    /// File name of the run's result: sorts in task order.
    pub fn file_name(&self) -> String {
        format!(
            "p{:05}-v{:03}-r{:05}.json",
            self.point, self.variant, self.replication
        )
    }
    /// Parses a name made by [`Task::file_name`].
    pub fn from_file_name(name: &str) -> Option<Task> {
        let rest = name.strip_prefix('p')?.strip_suffix(".json")?;
        let mut parts = rest.split('-');
        let point = parts.next()?.parse().ok()?;
        let variant = parts.next()?.strip_prefix('v')?.parse().ok()?;
        let replication = parts.next()?.strip_prefix('r')?.parse().ok()?;
        parts.next().is_none().then_some(Task {
            point,
            variant,
            replication,
        })
    }
}

impl Plan {
    /// Every run for `replications` replications, in order: point, then variant, then
    /// replication.
    pub fn tasks(&self, replications: u32) -> Vec<Task> {
        let mut out = Vec::new();
        for point in 0..self.points.len() {
            for variant in 0..self.variants.len() {
                for replication in 0..replications {
                    out.push(Task {
                        point,
                        variant,
                        replication,
                    });
                }
            }
        }
        out
    }
    /// Seed of a replication: the same at every point and in every variant.
    pub fn seed_of(&self, replication: u32) -> u64 {
        seed_of(self.seed, replication as usize)
    }
    /// The model of a task.
    pub fn model(&self, t: &Task) -> &Arc<Model> {
        &self.models[t.point][t.variant]
    }
    /// A point's parameters as (path, value) pairs.
    pub fn params(&self, point: usize) -> Vec<(&str, &Value)> {
        self.axes
            .iter()
            .map(|(p, _)| p.as_str())
            .zip(self.points[point].iter())
            .collect()
    }
    /// How the experiment is laid out, for the exporters that write its files and tables.
    pub fn layout(&self) -> ExperimentLayout {
        ExperimentLayout {
            name: self.spec.name.clone(),
            variants: self.variants.clone(),
            axes: self.axes.iter().map(|(p, _)| p.clone()).collect(),
            points: self.points.clone(),
            metrics: self.spec.metrics.clone(),
            plots: self.spec.plots.clone().unwrap_or_default(),
            fault_windows: self
                .models
                .iter()
                .map(|variants| scheduled_fault_windows(variants))
                .collect(),
        }
    }
    /// Default output folder: output/NAME (NAME made safe for a file system).
    pub fn default_out(&self) -> PathBuf {
        PathBuf::from("output").join(file_safe(&self.spec.name))
    }
}

/// The windows (start, end in seconds) of the scheduled faults of `models` (the variants of
/// one point), each once, in order; a fault with no end lasts to its model's end.
fn scheduled_fault_windows(models: &[Arc<Model>]) -> Vec<(f64, f64)> {
    let mut windows: Vec<(f64, f64)> = Vec::new();
    for m in models {
        for f in m.faults.iter() {
            if let Some((start, end)) = f.span() {
                let end = end.min(crate::time::SimTime(m.duration.0));
                let w = (start.as_secs_f64(), end.as_secs_f64());
                if !windows.contains(&w) {
                    windows.push(w);
                }
            }
        }
    }
    windows
}

/// `name` with every character but ASCII letters, digits, `-` and `_` replaced by `-`, so
/// it can name a folder on any file system.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn err(file: &Path, path: impl Into<String>, msg: impl Into<String>) -> ModelErrors {
    ModelErrors {
        file: file.display().to_string(),
        errors: vec![ModelError::new(path, msg)],
    }
}

/// Reads and checks an experiment file, loading and validating every model it runs.
/// `replications` overrides the file's count.
pub fn load_plan(file: &Path, replications: Option<u32>) -> Result<Plan, ModelErrors> {
    let text = read_to_string_capped(file, MAX_MODEL_FILE_BYTES)
        .map_err(|e| err(file, "", format!("cannot read the experiment file: {e}")))?;
    let value = parse_value(&text, Format::of_path(file)).map_err(|e| ModelErrors {
        file: file.display().to_string(),
        errors: vec![e],
    })?;
    let spec: ExperimentSpec = deserialize_located(value.clone()).map_err(|e| ModelErrors {
        file: file.display().to_string(),
        errors: vec![e],
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    plan_from_spec(spec, &value, file, base, replications)
}

/// Builds a plan from a parsed experiment.
pub fn plan_from_spec(
    spec: ExperimentSpec,
    source: &Value,
    file: &Path,
    base: &Path,
    replications: Option<u32>,
) -> Result<Plan, ModelErrors> {
    if let Err(m) = check_experiment_name(&spec.name) {
        return Err(err(file, "name", m));
    }
    // (name, own model file, overrides)
    type Variant = (String, Option<String>, Vec<(String, Value)>);
    let variants: Vec<Variant> = match &spec.variants {
        Some(v) if !v.is_empty() => v
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    v.model.clone(),
                    v.set.iter().map(|(p, x)| (p.clone(), x.clone())).collect(),
                )
            })
            .collect(),
        Some(_) => return Err(err(file, "variants", "needs at least one variant")),
        None => vec![("base".to_string(), None, Vec::new())],
    };
    let axes: Vec<(String, Vec<Value>)> = spec
        .sweep
        .iter()
        .flatten()
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    for (path, values) in &axes {
        if values.is_empty() {
            return Err(err(
                file,
                format!("sweep.{path}"),
                "needs at least one value",
            ));
        }
    }
    let replications = replications
        .or(spec.replications)
        .unwrap_or(DEFAULT_REPLICATIONS);
    if replications == 0 {
        return Err(err(file, "replications", "must be at least 1, got 0"));
    }
    if let Some(p) = &spec.precision
        && !(p.relative > 0.0 && p.relative < 1.0)
    {
        return Err(err(
            file,
            "precision.relative",
            format!("must be in (0, 1), e.g. 0.02 for 2%, got {}", p.relative),
        ));
    }
    check_grid_size(
        file,
        &axes,
        variants.len(),
        replications,
        spec.precision.as_ref(),
    )?;
    // Cartesian product, last axis fastest.
    let mut points: Vec<Vec<Value>> = vec![Vec::new()];
    for (_, values) in &axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                values
                    .iter()
                    .map(move |v| [p.clone(), vec![v.clone()]].concat())
            })
            .collect();
    }
    let mut model_texts: Vec<Value> = Vec::new();
    for (name, model, _) in &variants {
        let Some(m) = model.as_ref().or(spec.model.as_ref()) else {
            return Err(err(
                file,
                format!("variants.{name}.model"),
                "no model: give \"model\" at the top of the experiment or in this variant",
            ));
        };
        let path = base.join(m);
        let text = read_to_string_capped(&path, MAX_MODEL_FILE_BYTES).map_err(|e| {
            err(
                file,
                if model.is_some() {
                    format!("variants.{name}.model")
                } else {
                    "model".to_string()
                },
                format!("cannot read model file \"{}\": {e}", path.display()),
            )
        })?;
        let v = parse_value(&text, Format::of_path(&path)).map_err(|e| ModelErrors {
            file: path.display().to_string(),
            errors: vec![e],
        })?;
        model_texts.push(v);
    }
    let mut models = Vec::with_capacity(points.len());
    let mut model_hashes = Vec::new();
    // Every point and variant shares one copy of each trace file.
    let traces = TraceFiles::new();
    for (pi, point) in points.iter().enumerate() {
        let mut row = Vec::with_capacity(variants.len());
        for (vi, (vname, vmodel, sets)) in variants.iter().enumerate() {
            let mut value = model_texts[vi].clone();
            for (path, x) in sets {
                set_path(&mut value, path, x.clone())
                    .map_err(|e| err(file, format!("variants.{vname}.set.{path}"), e.message))?;
            }
            for ((path, _), x) in axes.iter().zip(point) {
                set_path(&mut value, path, x.clone())
                    .map_err(|e| err(file, format!("sweep.{path}"), e.message))?;
            }
            if let Some(d) = spec.duration {
                value["duration"] = json!(format_duration_nanos(d.nanos()));
            }
            match spec.warmup {
                Some(WarmupSpec::Fixed(w)) => {
                    value["warmup"] = json!(format_duration_nanos(w.nanos()))
                }
                Some(WarmupSpec::Detect(_)) => value["warmup"] = json!("0s"),
                None => {}
            }
            let model_file = base.join(
                vmodel
                    .as_ref()
                    .or(spec.model.as_ref())
                    .expect("checked above"),
            );
            let dir = model_file.parent().unwrap_or(Path::new("."));
            let m = model_from_value_with(value, dir, &traces).map_err(|errors| {
                let at = if axes.is_empty() {
                    format!("variants.{vname}")
                } else {
                    let params: Vec<String> = axes
                        .iter()
                        .zip(point)
                        .map(|((p, _), x)| format!("{p}={x}"))
                        .collect();
                    format!("sweep point {pi} ({}), variant {vname}", params.join(", "))
                };
                ModelErrors {
                    file: file.display().to_string(),
                    errors: errors
                        .into_iter()
                        .map(|e| {
                            ModelError::new(
                                at.clone(),
                                format!("model {}: {}", model_file.display(), e),
                            )
                        })
                        .collect(),
                }
            })?;
            model_hashes.push(m.hash.clone());
            row.push(Arc::new(m));
        }
        models.push(row);
    }
    // What to report and plot, against what the models can report: before any run.
    let vocabulary = Vocabulary::of(models.iter().flatten());
    let errors = check_outputs(&spec, &axes, points.len(), &vocabulary);
    if !errors.is_empty() {
        return Err(ModelErrors {
            file: file.display().to_string(),
            errors,
        });
    }
    let hash = hash_value(
        &json!({"experiment": source, "models": model_hashes, "replications": replications}),
    );
    let warmup = match spec.warmup {
        Some(WarmupSpec::Detect(_)) => WarmupMode::Mser5,
        _ => WarmupMode::Fixed,
    };
    Ok(Plan {
        seed: spec.seed.unwrap_or(1),
        variants: variants.into_iter().map(|v| v.0).collect(),
        axes,
        points,
        models,
        replications,
        warmup,
        hash,
        file: file.to_path_buf(),
        spec,
    })
}

/// Refuses a grid too large to build or run, from its size alone (the product of the
/// axes' lengths, computed without overflow) before anything is expanded.
fn check_grid_size(
    file: &Path,
    axes: &[(String, Vec<Value>)],
    variants: usize,
    replications: u32,
    precision: Option<&super::spec::PrecisionSpec>,
) -> Result<(), ModelErrors> {
    let lengths: Vec<String> = axes.iter().map(|(_, v)| v.len().to_string()).collect();
    let points = axes
        .iter()
        .try_fold(1u64, |n, (_, v)| n.checked_mul(v.len() as u64));
    let models = points.and_then(|p| p.checked_mul(variants as u64));
    let shape = if lengths.is_empty() {
        format!("{variants} variant(s)")
    } else {
        format!("{} point(s) × {variants} variant(s)", lengths.join(" × "))
    };
    match models {
        Some(m) if m <= MAX_SWEEP_MODELS => {}
        _ => {
            let got = models.map_or("more than 2^64".to_string(), |m| m.to_string());
            return Err(err(
                file,
                "sweep",
                format!(
                    "the experiment has {got} models to run ({shape}), more than the {MAX_SWEEP_MODELS} allowed; split it into several experiments"
                ),
            ));
        }
    }
    // Replications by precision may go up to their cap (100 by default).
    let per_model = precision
        .map_or(0, |p| p.max_replications.unwrap_or(100))
        .max(replications);
    let runs = models.and_then(|m| m.checked_mul(u64::from(per_model)));
    match runs {
        Some(r) if r <= MAX_SWEEP_RUNS => Ok(()),
        _ => Err(err(
            file,
            "replications",
            format!(
                "the experiment has {} runs ({shape} × {per_model} replications), more than the {MAX_SWEEP_RUNS} allowed",
                runs.map_or("more than 2^64".to_string(), |r| r.to_string())
            ),
        )),
    }
}

impl Plan {
    /// The most replications a (point, variant) may run: the fixed count, or the precision
    /// cap when replications are added until a precision is reached (100 by default).
    pub fn most_replications(&self) -> u32 {
        self.spec
            .precision
            .as_ref()
            .map_or(0, |p| p.max_replications.unwrap_or(100))
            .max(self.replications)
    }

    /// Checks, before the first run, that the runs the plan may make at
    /// [`Plan::most_replications`] are not more than [`MAX_SWEEP_RUNS`] and that their
    /// summary fits in [`MAX_EXPERIMENT_RESULTS_BYTES`]. The message starts with `option`,
    /// the setting to change.
    pub fn check_size(&self, option: &str) -> Result<(), String> {
        let per_model = u64::from(self.most_replications());
        let models = self.models.iter().flatten().count() as u64;
        let runs = models.saturating_mul(per_model);
        let shape = format!("{models} model(s) × {per_model} replications");
        if runs > MAX_SWEEP_RUNS {
            return Err(format!(
                "{option}: the experiment may make {runs} runs ({shape}), more than the {MAX_SWEEP_RUNS} allowed"
            ));
        }
        let per_replication: u64 = self
            .models
            .iter()
            .flatten()
            .map(|m| experiment_run_bytes(&crate::stats::metric_keys(m)))
            .sum();
        let total = per_replication.saturating_mul(per_model);
        if total > MAX_EXPERIMENT_RESULTS_BYTES {
            return Err(format!(
                "{option}: the results of {runs} runs ({shape}) would take about {:.1} GiB of memory while they are summarised, more than the {} GiB allowed; use at most {} replications, or split the experiment",
                total as f64 / f64::from(1u32 << 30),
                MAX_EXPERIMENT_RESULTS_BYTES >> 30,
                MAX_EXPERIMENT_RESULTS_BYTES / per_replication.max(1)
            ));
        }
        Ok(())
    }
}

/// A model with its warm-up replaced (for detected warm-ups).
pub fn with_warmup(model: &Model, warmup: SimDuration) -> Model {
    let mut m = model.clone();
    m.warmup = warmup.min(SimDuration(m.duration.0.saturating_sub(1)));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_file_names_round_trip_and_sort_in_task_order() {
        let a = Task {
            point: 2,
            variant: 1,
            replication: 7,
        };
        assert_eq!(Task::from_file_name(&a.file_name()), Some(a));
        let b = Task {
            point: 10,
            variant: 0,
            replication: 0,
        };
        assert!(a.file_name() < b.file_name());
        assert_eq!(Task::from_file_name("p1-v2.json"), None);
    }

    #[test]
    fn layout_carries_what_the_exporters_read_from_the_plan() {
        use super::super::results::{CdfPlotSpec, PlotSpec};
        let source = json!({
            "name": "layout",
            "model": "horizontal-lb.json",
            "variants": {
                "lc": {"set": {"components.lb.policy": "least_connections"}},
                "rnd": {"set": {"components.lb.policy": "random"}}
            },
            "sweep": {
                "workloads.users.arrivals.poisson.rate": [600, 1200],
                "components.app.replicas": [2, 3, 4]
            },
            "metrics": ["workloads.users.*", "cost.per_hour"],
            "plots": [{"latency_cdf": {"point": 5}}]
        });
        let spec: ExperimentSpec = serde_json::from_value(source.clone()).unwrap();
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let plan = plan_from_spec(spec, &source, Path::new("layout.json"), &models, Some(1))
            .expect("a valid experiment");
        let layout = plan.layout();
        assert_eq!(layout.name, "layout");
        assert_eq!(layout.variants, ["lc", "rnd"]);
        assert_eq!(
            layout.axes,
            [
                "workloads.users.arrivals.poisson.rate",
                "components.app.replicas"
            ]
        );
        // Every combination, the last path fastest.
        assert_eq!(layout.points.len(), 6);
        assert_eq!(layout.points[0], [json!(600), json!(2)]);
        assert_eq!(layout.points[2], [json!(600), json!(4)]);
        assert_eq!(layout.points[5], [json!(1200), json!(4)]);
        assert_eq!(layout.points, plan.points);
        assert_eq!(
            layout.metrics.as_deref(),
            Some(&["workloads.users.*".to_string(), "cost.per_hour".into()][..])
        );
        assert_eq!(
            layout.plots,
            [PlotSpec::LatencyCdf(CdfPlotSpec {
                workload: None,
                point: Some(5),
            })]
        );
        assert!(layout.selects("workloads.users.latency.p99_ms"));
        assert!(!layout.selects("components.app.utilization"));
    }
}
