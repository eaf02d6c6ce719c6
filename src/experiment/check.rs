//! What an experiment asks to report, checked against what its models can report, before
//! anything runs: its name (the output folder), the metrics it lists, its plots, its
//! precision metric, and `compare --metric`. A typo there would otherwise give an empty
//! plot or table after every run.

use super::plan::Plan;
use super::spec::{ExperimentSpec, PlotSpec};
use crate::error::{ModelError, did_you_mean, index, join};
use crate::model::Model;
use crate::stats::metric_keys;
use indexmap::IndexSet;
use serde_json::Value;
use std::sync::Arc;

/// Longest experiment name, in characters (it names a folder).
pub const MAX_EXPERIMENT_NAME_CHARS: usize = 100;

/// Metrics a time-series plot can draw.
pub const SERIES_METRICS: [&str; 3] = ["latency_mean_ms", "throughput_per_s", "error_share"];

/// Latency keys pooled over replications, per workload, in summary.csv.
const POOLED: [&str; 6] = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"];

/// The metric keys and names the models of an experiment can report.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// Headline metrics of a run (run summary keys), over every model.
    pub headline: IndexSet<String>,
    /// Keys the experiment adds: `run.warmup_s` and the pooled latency percentiles.
    pub extra: IndexSet<String>,
    /// Workload names, over every model.
    pub workloads: IndexSet<String>,
}

impl Vocabulary {
    /// The vocabulary of `models`. Models with the same components, workloads and classes
    /// (the points of a sweep over a rate, say) are looked at once.
    pub fn of<'a>(models: impl IntoIterator<Item = &'a Arc<Model>>) -> Self {
        let mut v = Vocabulary::default();
        let mut seen: Vec<String> = Vec::new();
        for m in models {
            let signature = signature(m);
            if seen.contains(&signature) {
                continue;
            }
            seen.push(signature);
            v.headline.extend(metric_keys(m));
            for w in &m.workloads {
                v.workloads.insert(w.name.clone());
                for p in POOLED {
                    v.extra
                        .insert(format!("workloads.{}.pooled_latency.{p}", w.name));
                }
            }
        }
        v.extra.insert("run.warmup_s".to_string());
        v
    }

    /// Keys a group of an experiment summarises (summary.csv, comparisons, plots).
    fn summarised(&self) -> impl Iterator<Item = &str> + Clone {
        self.headline
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("run.warmup_s"))
    }

    /// Every key `metrics` may name.
    fn all(&self) -> impl Iterator<Item = &str> + Clone {
        self.headline
            .iter()
            .chain(self.extra.iter())
            .map(String::as_str)
    }
}

/// What decides a model's metric keys: class names, workloads with their classes,
/// components with their kinds.
fn signature(m: &Model) -> String {
    let mut s = m.classes.join("\u{1}");
    for w in &m.workloads {
        s.push('\u{2}');
        s.push_str(&w.name);
        for (c, _) in &w.classes {
            s.push_str(&format!(",{c}"));
        }
    }
    for c in &m.components {
        s.push('\u{3}');
        s.push_str(&c.name);
        s.push(':');
        s.push_str(c.kind.name());
    }
    s
}

/// "no metric "X"; did you mean "Y"?", or a few keys with the same first parts.
fn unknown_metric<'a>(
    what: &str,
    key: &str,
    valid: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let hint = did_you_mean(key, valid.clone());
    if !hint.is_empty() {
        return format!("no {what} \"{key}\" in the model(s){hint}");
    }
    // Keys sharing the longest leading part with the one given.
    let parts: Vec<&str> = key.split('.').collect();
    for n in (1..parts.len()).rev() {
        let prefix = format!("{}.", parts[..n].join("."));
        let near: Vec<&str> = valid.clone().filter(|k| k.starts_with(&prefix)).collect();
        if !near.is_empty() {
            let shown: Vec<String> = near.iter().take(12).map(|k| format!("\"{k}\"")).collect();
            let more = if near.len() > 12 { ", ..." } else { "" };
            return format!(
                "no {what} \"{key}\" in the model(s); those under \"{prefix}\" are {}{more}",
                shown.join(", ")
            );
        }
    }
    let shown: Vec<String> = valid.take(6).map(|k| format!("\"{k}\"")).collect();
    format!(
        "no {what} \"{key}\" in the model(s); metrics are the keys of the run summary, such as {}",
        shown.join(", ")
    )
}

/// Whether `key` is among `patterns` (exact keys, or prefixes ending in `*`).
pub fn selected(patterns: &Option<Vec<String>>, key: &str) -> bool {
    match patterns {
        None => true,
        Some(ps) => ps.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => p == key,
        }),
    }
}

/// Checks an experiment's name: it names the output folder `output/NAME`, so it must be a
/// single, visible path component.
pub fn check_experiment_name(name: &str) -> Result<(), String> {
    let shown: String = name.escape_debug().collect();
    if name.trim().is_empty() {
        Err(format!(
            "must not be empty, got \"{shown}\": it names the output folder output/NAME"
        ))
    } else if name == "." || name == ".." {
        Err(format!(
            "must be a folder name, got \"{name}\": it names the output folder output/NAME"
        ))
    } else if name.contains(['/', '\\']) {
        Err(format!(
            "must not contain \"/\" or \"\\\", got \"{shown}\": it names one output folder, output/NAME"
        ))
    } else if name.chars().any(char::is_control) {
        Err(format!(
            "must not contain control characters, got \"{shown}\""
        ))
    } else if name.chars().count() > MAX_EXPERIMENT_NAME_CHARS {
        Err(format!(
            "must be at most {MAX_EXPERIMENT_NAME_CHARS} characters, got {}",
            name.chars().count()
        ))
    } else {
        Ok(())
    }
}

/// Checks a metric key that a group summary must hold (a precision metric, a
/// `compare --metric`): `path` is where the key was given.
pub fn check_summarised_metric(
    vocabulary: &Vocabulary,
    spec_metrics: &Option<Vec<String>>,
    path: &str,
    key: &str,
) -> Result<(), ModelError> {
    if !vocabulary.summarised().any(|k| k == key) {
        return Err(ModelError::new(
            path,
            unknown_metric("metric", key, vocabulary.summarised()),
        ));
    }
    if key != "run.warmup_s" && !selected(spec_metrics, key) {
        return Err(ModelError::new(
            path,
            format!(
                "metric \"{key}\" is left out by the experiment's \"metrics\" list; add it there"
            ),
        ));
    }
    Ok(())
}

/// Every mistake in what an experiment asks to report, each at its path. `axes` and
/// `points` are the sweep's; `models` every model of the plan.
pub fn check_outputs(
    spec: &ExperimentSpec,
    axes: &[(String, Vec<Value>)],
    points: usize,
    vocabulary: &Vocabulary,
) -> Vec<ModelError> {
    let mut errs = Vec::new();
    for (i, pattern) in spec.metrics.iter().flatten().enumerate() {
        let path = index("metrics", i);
        match pattern.strip_suffix('*') {
            Some(prefix) => {
                if !vocabulary.all().any(|k| k.starts_with(prefix)) {
                    // Patterns that would match: each key cut after one of its dots.
                    let patterns: IndexSet<String> = vocabulary
                        .all()
                        .flat_map(|k| {
                            k.match_indices('.')
                                .map(move |(i, _)| format!("{}*", &k[..=i]))
                        })
                        .collect();
                    let hint = did_you_mean(pattern, patterns.iter().map(String::as_str));
                    errs.push(ModelError::new(
                        path,
                        format!("no metric of the model(s) starts with \"{prefix}\"{hint}"),
                    ));
                }
            }
            None => {
                if !vocabulary.all().any(|k| k == pattern) {
                    errs.push(ModelError::new(
                        path,
                        unknown_metric("metric", pattern, vocabulary.all()),
                    ));
                }
            }
        }
    }
    for (i, plot) in spec.plots.iter().flatten().enumerate() {
        let at = index("plots", i);
        match plot {
            PlotSpec::MetricVsParam(m) => {
                let at = join(&at, "metric_vs_param");
                if let Err(e) = check_summarised_metric(
                    vocabulary,
                    &spec.metrics,
                    &join(&at, "metric"),
                    &m.metric,
                ) {
                    errs.push(e);
                }
                if let Some(beside) = &m.beside
                    && let Err(e) = check_summarised_metric(
                        vocabulary,
                        &spec.metrics,
                        &join(&at, "beside"),
                        beside,
                    )
                {
                    errs.push(e);
                }
                check_x(&mut errs, &at, m.x.as_deref(), axes);
            }
            PlotSpec::LatencyCdf(c) => {
                let at = join(&at, "latency_cdf");
                check_workload(&mut errs, &at, c.workload.as_deref(), vocabulary);
                check_point(&mut errs, &at, c.point, points);
            }
            PlotSpec::TimeSeries(t) => {
                let at = join(&at, "time_series");
                if let Some(metric) = &t.metric
                    && !SERIES_METRICS.contains(&metric.as_str())
                {
                    errs.push(ModelError::new(
                        join(&at, "metric"),
                        format!(
                            "unknown time-series metric \"{metric}\"; expected one of {}{}",
                            crate::error::quoted(SERIES_METRICS),
                            did_you_mean(metric, SERIES_METRICS)
                        ),
                    ));
                }
                check_workload(&mut errs, &at, t.workload.as_deref(), vocabulary);
                check_point(&mut errs, &at, t.point, points);
            }
        }
    }
    if let Some(p) = &spec.precision
        && !vocabulary.headline.contains(&p.metric)
    {
        errs.push(ModelError::new(
            "precision.metric",
            unknown_metric(
                "metric",
                &p.metric,
                vocabulary.headline.iter().map(String::as_str),
            ),
        ));
    }
    errs
}

/// A metric-against-parameter plot needs a sweep, and its `x` (default: the first swept
/// path) must be a swept path with numbers among its values.
fn check_x(errs: &mut Vec<ModelError>, at: &str, x: Option<&str>, axes: &[(String, Vec<Value>)]) {
    if axes.is_empty() {
        errs.push(ModelError::new(
            at,
            "plots a metric against a swept parameter, but the experiment has no \"sweep\"",
        ));
        return;
    }
    let (path, name) = match x {
        Some(x) => (join(at, "x"), x),
        None => (at.to_string(), axes[0].0.as_str()),
    };
    let Some((_, values)) = axes.iter().find(|(p, _)| p == name) else {
        errs.push(ModelError::new(
            path,
            format!(
                "\"{name}\" is not a swept path; swept paths are {}{}",
                crate::error::quoted(axes.iter().map(|(p, _)| p.as_str())),
                did_you_mean(name, axes.iter().map(|(p, _)| p.as_str()))
            ),
        ));
        return;
    };
    if !values.iter().any(Value::is_number) {
        errs.push(ModelError::new(
            path,
            format!(
                "the values swept at \"{name}\" are not numbers, so they cannot be an x axis; plot against a numeric swept path"
            ),
        ));
    }
}

fn check_workload(
    errs: &mut Vec<ModelError>,
    at: &str,
    workload: Option<&str>,
    vocabulary: &Vocabulary,
) {
    if let Some(w) = workload
        && !vocabulary.workloads.contains(w)
    {
        errs.push(ModelError::new(
            join(at, "workload"),
            format!(
                "no workload named \"{w}\"; workloads are {}{}",
                crate::error::quoted(vocabulary.workloads.iter().map(String::as_str)),
                did_you_mean(w, vocabulary.workloads.iter().map(String::as_str))
            ),
        ));
    }
}

fn check_point(errs: &mut Vec<ModelError>, at: &str, point: Option<usize>, points: usize) {
    if let Some(p) = point
        && p >= points
    {
        errs.push(ModelError::new(
            join(at, "point"),
            format!(
                "must be a sweep point from 0 to {}, got {p}",
                points.saturating_sub(1)
            ),
        ));
    }
}

impl Plan {
    /// What the plan's models can report.
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary::of(self.models.iter().flatten())
    }

    /// Checks metric keys given on the command line (`option` names it, e.g. `--metric`):
    /// keys every group summarises (`compare --metric`), or, with `headline_only`, keys of
    /// the run summary (a precision metric).
    pub fn check_metric_options(
        &self,
        option: &str,
        keys: &[String],
        headline_only: bool,
    ) -> Result<(), String> {
        let vocabulary = self.vocabulary();
        let errs: Vec<String> = keys
            .iter()
            .filter_map(|k| {
                if headline_only {
                    (!vocabulary.headline.contains(k)).then(|| {
                        format!(
                            "{option}: {}",
                            unknown_metric(
                                "metric",
                                k,
                                vocabulary.headline.iter().map(String::as_str)
                            )
                        )
                    })
                } else {
                    check_summarised_metric(&vocabulary, &self.spec.metrics, option, k)
                        .err()
                        .map(|e| e.to_string())
                }
            })
            .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }
}
