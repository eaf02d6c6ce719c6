//! The experiment file as written: which model(s), which variants, which sweep, how many
//! replications, what to report and plot. Unknown fields are rejected. The plot requests
//! are defined with the result types the exporters read ([`super::results`]) and
//! re-exported here.

pub use super::results::{CdfPlotSpec, MetricVsParamSpec, PlotSpec, TimeSeriesPlotSpec};
use crate::time::DurationSpec;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Path or URL of the JSON Schema this file follows (for editors); ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Name: also the default output folder, output/NAME.
    pub name: String,
    /// What the experiment shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Model file (relative to this file) every variant starts from, unless a variant
    /// names its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Designs to compare, by name: each a model plus overrides. The first is the baseline
    /// of the paired comparisons. Default: one variant, "base", the model as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<IndexMap<String, VariantSpec>>,
    /// Grid of parameters: a model path (as for `--set`) and its values. Every
    /// combination is a point; the last path varies fastest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<IndexMap<String, Vec<Value>>>,
    /// Independent replications per point and variant (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replications: Option<u32>,
    /// Base seed (default 1). Replication r uses the same seed at every point and in
    /// every variant (common random numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Simulated time of each run, warm-up included (default: the model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// Warm-up: a duration such as "30s", or "mser5" to detect it in each run with the
    /// MSER-5 rule (default: the model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupSpec>,
    /// Metrics to report, as keys of the run summary (e.g.
    /// "workloads.users.latency.p99_ms", "components.app.utilization"; a key ending in
    /// ".*" takes every key with that prefix). Default: every metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
    /// Plots to draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plots: Option<Vec<PlotSpec>>,
    /// Replications by precision instead of a fixed count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionSpec>,
}

/// One design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Model file (relative to the experiment file); default: the experiment's `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Overrides: model path → value, e.g. {"components.lb.policy": "random"}.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub set: IndexMap<String, Value>,
}

/// A fixed warm-up or a detected one.
#[derive(Debug, Clone, Copy, PartialEq, JsonSchema, Serialize)]
#[serde(untagged)]
pub enum WarmupSpec {
    /// A fixed duration.
    Fixed(DurationSpec),
    /// "mser5": detected per run (MSER-5 on the first workload's latency series).
    Detect(#[schemars(regex(pattern = "^mser5$"))] DetectWarmup),
}

/// The literal "mser5".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DetectWarmup;

impl<'de> Deserialize<'de> for WarmupSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "mser5" {
            return Ok(WarmupSpec::Detect(DetectWarmup));
        }
        crate::time::parse_duration_nanos(&s)
            .map(|ns| WarmupSpec::Fixed(DurationSpec(ns)))
            .map_err(|e| serde::de::Error::custom(format!("expected \"mser5\" or a duration: {e}")))
    }
}

/// Replications until a confidence interval is narrow enough.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionSpec {
    /// Metric key whose CI is watched.
    pub metric: String,
    /// Target CI half-width relative to the mean, e.g. 0.02 for 2%.
    pub relative: f64,
    /// Most replications per point (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replications: Option<u32>,
}
