//! The experiment's public result types: what an experiment found, and how it is laid out,
//! for the exporters in `report` to write. The exporters read these types and nothing else
//! of the experiment:
//!
//! - a sweep's [`ExperimentLayout`] (name, variants, swept paths, points, the metrics it
//!   selects, the plots it asks for), built from the plan by `Plan::layout`;
//! - what aggregating its runs found: [`Aggregate`], holding [`ExperimentResults`]
//!   (results.json), every run's metrics and the pooled curves of its plots;
//! - a capacity search's [`CapacityResult`].
//!
//! The plot requests ([`PlotSpec`]) are written in the experiment file and are also
//! re-exported from `experiment::spec`, which parses that file.

use crate::metrics::LatencySummary;
use crate::stats::Estimate;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

// A sweep: its layout, and what aggregating its runs found.

/// How a sweep is laid out, as its exporters need it: the names and values that label
/// rows, columns and lines, which metrics it reports and which plots it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentLayout {
    /// Experiment name.
    pub name: String,
    /// Variant names; the first is the baseline.
    pub variants: Vec<String>,
    /// Swept paths, in the order of each point's values.
    pub axes: Vec<String>,
    /// For each point, the value of each swept path.
    pub points: Vec<Vec<Value>>,
    /// The metrics the experiment lists (keys, or prefixes ending in `*`); `None` when it
    /// lists none: every metric is reported and tables show the default ones.
    pub metrics: Option<Vec<String>>,
    /// The plots the experiment asks for, in order.
    pub plots: Vec<PlotSpec>,
    /// For each point, the scheduled fault windows of its models (start, end in seconds;
    /// random faults differ from run to run and are left out), shaded on time series.
    pub fault_windows: Vec<Vec<(f64, f64)>>,
}

impl ExperimentLayout {
    /// Whether the experiment's metric selection (all when absent) keeps `key`.
    pub fn selects(&self, key: &str) -> bool {
        selects(self.metrics.as_deref(), key)
    }
}

/// Whether the metric selection `patterns` keeps `key`: a pattern is a key, or a prefix
/// followed by `*`; no selection keeps every key.
pub fn selects(patterns: Option<&[String]>, key: &str) -> bool {
    match patterns {
        None => true,
        Some(ps) => ps.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => p == key,
        }),
    }
}

/// Pooled latency CDF of a (point, variant, workload), for plots.
pub type CdfLines = BTreeMap<(usize, usize, String), Vec<(f64, f64)>>;
/// Summed time series of a (point, variant, workload, metric): window width, sums, runs.
pub type SeriesSums = BTreeMap<(usize, usize, String, String), (f64, Vec<f64>, usize)>;

/// What aggregating an experiment's records found, for the exporters to write.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Summaries and comparisons (results.json).
    pub results: ExperimentResults,
    /// Every run's selected metrics, in task order (tidy.csv).
    pub tidy: Vec<TidyRow>,
    /// The pooled latency CDFs the plots ask for.
    pub cdfs: CdfLines,
    /// The summed time series the plots ask for.
    pub series: SeriesSums,
}

/// One metric of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct TidyRow {
    /// Sweep point.
    pub point: usize,
    /// Variant index.
    pub variant: usize,
    /// Replication.
    pub replication: u32,
    /// Seed of the run.
    pub seed: u64,
    /// Metric key.
    pub metric: String,
    /// Its value.
    pub value: f64,
}

/// Summary of one (point, variant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Sweep point.
    pub point: usize,
    /// Variant name.
    pub variant: String,
    /// Replications.
    pub replications: usize,
    /// Warm-up used (seconds) across replications.
    pub warmup_s: Estimate,
    /// Every reported metric across replications.
    pub metrics: IndexMap<String, Estimate>,
    /// Latency percentiles pooled over replications (merged histograms), per workload.
    pub pooled_latency: IndexMap<String, LatencySummary>,
    /// Replications that stopped early at the model's `max_in_flight` (an overloaded
    /// system): their metrics cover the run up to the stop.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stopped_early: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A paired difference between a variant and the baseline at one point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Sweep point.
    pub point: usize,
    /// Variant.
    pub variant: String,
    /// Baseline variant.
    pub baseline: String,
    /// Metric key.
    pub metric: String,
    /// Mean of the baseline.
    #[serde(deserialize_with = "crate::stats::null_as_nan")]
    pub baseline_mean: f64,
    /// Mean and CI of variant − baseline over paired replications.
    pub difference: Estimate,
    /// Difference relative to the baseline mean.
    #[serde(deserialize_with = "crate::stats::null_as_nan")]
    pub relative: f64,
    /// CI half-width of the relative difference.
    #[serde(deserialize_with = "crate::stats::null_as_nan")]
    pub relative_ci95: f64,
    /// True when the 95% CI of the difference excludes zero.
    pub significant: bool,
}

/// Everything the experiment found (results.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// Experiment name.
    pub experiment: String,
    /// Plan hash.
    pub experiment_hash: String,
    /// Variants; the first is the baseline.
    pub variants: Vec<String>,
    /// Swept paths.
    pub axes: Vec<String>,
    /// Parameters of each point.
    pub points: Vec<IndexMap<String, Value>>,
    /// Per point and variant.
    pub groups: Vec<GroupSummary>,
    /// Paired comparisons against the baseline (several variants only).
    pub comparisons: Vec<Comparison>,
}

// The plots an experiment asks for, as written in its file.

/// A plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PlotSpec {
    /// A metric against a swept parameter, one line per variant, with 95% CI bands.
    MetricVsParam(MetricVsParamSpec),
    /// Latency CDF of a workload, one line per variant, pooled over replications.
    LatencyCdf(CdfPlotSpec),
    /// A workload's metric over simulated time, one line per variant, averaged over
    /// replications.
    TimeSeries(TimeSeriesPlotSpec),
}

/// Metric against a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricVsParamSpec {
    /// Metric key, e.g. "workloads.users.latency.p99_ms".
    pub metric: String,
    /// Swept path on the x axis (default: the first sweep path). Other swept paths give
    /// one line per value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// A second metric drawn on the same axes, one line per variant as well (named with
    /// the metric's last part): an
    /// analytic estimate beside the simulated metric, e.g.
    /// "components.cache.hit_ratio_estimate" beside "components.cache.hit_ratio".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<String>,
}

/// Latency CDF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdfPlotSpec {
    /// Workload (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Sweep point index (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<usize>,
}

/// Time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSeriesPlotSpec {
    /// Workload (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// "latency_mean_ms" (default), "throughput_per_s" or "error_share".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Sweep point index (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<usize>,
}

// A capacity search: what it found. It is run, and objectives are parsed and measured,
// by `capacity`.

/// What an objective constrains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Mean latency.
    Mean,
    /// A latency percentile (50, 90, 95, 99, 99.9).
    Percentile(f64),
    /// Share of failed requests.
    Errors,
}

/// One objective: `metric < threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// As written.
    pub text: String,
    /// The metric.
    pub metric: SloMetric,
    /// Threshold: milliseconds for latencies, a share for errors.
    pub threshold: f64,
}

/// One load level tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Level {
    /// Factor on the model's rates.
    pub factor: f64,
    /// Offered rate, requests per second (sum over the scaled workloads).
    pub rate_per_s: f64,
    /// Each objective's metric across replications.
    pub objectives: Vec<Estimate>,
    /// True when every objective holds with 95% confidence.
    pub holds: bool,
    /// Mean utilization of each component whose kind declares a metric that saturates
    /// (the highest such metric; today, each service).
    pub utilization: IndexMap<String, f64>,
    /// Mean share of the requests arriving at each of them that it refused (the
    /// highest metric its kind declares as a refused share).
    pub drop_share: IndexMap<String, f64>,
    /// Mean share of failed requests (the worst of the scaled workloads).
    pub error_share: f64,
}

impl Level {
    /// The busiest component and its utilization.
    pub fn busiest(&self) -> Option<(&str, f64)> {
        self.utilization
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(n, u)| (n.as_str(), *u))
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A load breaks the objective: the capacity is bracketed to the tolerance.
    Found,
    /// The objective held at every load tried up to the search's limit: the capacity is
    /// at least the highest load tried, and the note says why load does not break it.
    NotBroken,
}

/// What the search found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResult {
    /// Objectives.
    pub slo: Vec<Slo>,
    /// How the search ended.
    pub outcome: Outcome,
    /// Offered rate of the model as written, requests per second.
    pub base_rate_per_s: f64,
    /// Highest factor found to hold.
    pub factor: f64,
    /// Highest rate found to hold, requests per second.
    pub max_rate_per_s: f64,
    /// Rate at which the first service's offered utilization reaches 100% by the
    /// analytic estimates (null when no service's load grows with the rate).
    pub saturation_rate_per_s: Option<f64>,
    /// Highest rate the search would try, requests per second.
    pub limit_rate_per_s: f64,
    /// The busiest service near saturation at the first failing level (at least
    /// [`NEAR_SATURATION`](super::capacity::NEAR_SATURATION) busy, or dropping
    /// requests); none when no service is.
    pub bottleneck: Option<String>,
    /// Its utilization there.
    pub bottleneck_utilization: f64,
    /// Why the objective did not break, or why no service is named first to saturate.
    pub note: Option<String>,
    /// Every level tried, in order.
    pub levels: Vec<Level>,
}

/// The file `capacity --out DIR` writes (DIR/capacity.json): what was searched and what
/// the search found, which `scalesim report DIR` draws.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityOutput {
    /// Version of scalesim that searched.
    pub scalesim_version: String,
    /// The model's name.
    pub model: String,
    /// Base seed of every load's replications.
    pub seed: u64,
    /// Replications per load.
    pub replications: u32,
    /// Relative precision asked of the answer.
    pub tolerance: f64,
    /// The scaled workload, when one was named.
    pub workload: Option<String>,
    /// `--set` overrides, as given.
    pub overrides: Vec<String>,
    /// What the search found.
    pub capacity: CapacityResult,
}

/// The run results recorded in experiment folder `dir` at its first sweep point, with
/// their variant, in record order, at most `per_variant` of each of the `variants`
/// variants; empty when the folder keeps no records. A record that cannot be read is
/// skipped.
pub fn first_point_runs(
    dir: &std::path::Path,
    variants: usize,
    per_variant: usize,
) -> Vec<(usize, crate::results::RunResult)> {
    let Ok(records) = super::store::list_records(dir) else {
        return Vec::new();
    };
    let mut read = vec![0usize; variants];
    let mut out = Vec::new();
    for (task, path) in records {
        if task.point != 0 || read.get(task.variant).is_none_or(|n| *n >= per_variant) {
            continue;
        }
        let Ok(rec) = super::store::read_record(&path) else {
            continue;
        };
        read[task.variant] += 1;
        out.push((task.variant, rec.result));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_keeps_listed_keys_and_prefixes_and_no_selection_keeps_all() {
        let listed = vec!["workloads.users.*".to_string(), "cost.per_hour".into()];
        let layout = ExperimentLayout {
            name: "x".into(),
            variants: vec!["base".into()],
            axes: Vec::new(),
            points: vec![Vec::new()],
            metrics: Some(listed),
            plots: Vec::new(),
            fault_windows: Vec::new(),
        };
        assert!(layout.selects("workloads.users.latency.p99_ms"));
        assert!(layout.selects("cost.per_hour"));
        assert!(!layout.selects("cost.per_million_requests"));
        assert!(!layout.selects("workloads.jobs.latency.p99_ms"));
        let all = ExperimentLayout {
            metrics: None,
            ..layout
        };
        assert!(all.selects("components.app.utilization"));
    }
}
