//! Capacity search: the highest offered load at which a service-level objective still
//! holds with 95% confidence, and the component that saturates first.
//!
//! Every open-loop workload's rate is multiplied by a factor. A level passes when, for
//! each objective, the upper end of the 95% confidence interval of the metric over the
//! replications is below the threshold. The search doubles (or halves) the factor to
//! bracket the capacity, then bisects to the requested relative tolerance.

use crate::analysis::estimate;
use crate::model::{Model, model_from_value};
use crate::replicate::replicate;
use crate::results::RunResult;
use crate::stats::Estimate;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// What an objective constrains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// As written.
    pub text: String,
    /// The metric.
    pub metric: SloMetric,
    /// Threshold: milliseconds for latencies, a share for errors.
    pub threshold: f64,
}

/// Parses objectives such as `p99<200ms`, `mean<50ms`, `errors<1%`, comma-separated.
pub fn parse_slo(text: &str) -> Result<Vec<Slo>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lhs, rhs) = part
            .split_once("<=")
            .or_else(|| part.split_once('<'))
            .ok_or_else(|| {
                format!("expected an objective such as \"p99<200ms\", got \"{part}\"")
            })?;
        let lhs = lhs.trim().to_ascii_lowercase();
        let rhs = rhs.trim();
        let metric = match lhs.as_str() {
            "mean" | "avg" => SloMetric::Mean,
            "errors" | "error_share" => SloMetric::Errors,
            p if p.starts_with('p') => {
                let q: f64 = p[1..].parse().map_err(|_| {
                    format!("unknown percentile \"{lhs}\"; use p50, p90, p95, p99 or p99.9")
                })?;
                let q = if lhs == "p999" { 99.9 } else { q };
                if ![50.0, 90.0, 95.0, 99.0, 99.9].contains(&q) {
                    return Err(format!(
                        "unknown percentile \"{lhs}\"; use p50, p90, p95, p99 or p99.9"
                    ));
                }
                SloMetric::Percentile(q)
            }
            other => {
                return Err(format!(
                    "unknown objective metric \"{other}\"; use mean, p50, p90, p95, p99, p99.9 or errors"
                ));
            }
        };
        let threshold = if metric == SloMetric::Errors {
            match rhs.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
                None => rhs.parse::<f64>(),
            }
            .map_err(|_| format!("expected a share such as \"1%\" or 0.01, got \"{rhs}\""))?
        } else {
            crate::time::parse_duration_nanos(rhs)? / 1e6
        };
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(format!("the threshold must be above zero, got \"{rhs}\""));
        }
        out.push(Slo {
            text: part.to_string(),
            metric,
            threshold,
        });
    }
    if out.is_empty() {
        return Err("expected at least one objective such as \"p99<200ms\"".into());
    }
    Ok(out)
}

impl Slo {
    /// The metric's value in one run (infinite when nothing completed).
    pub fn value(&self, r: &RunResult, workload: Option<&str>) -> f64 {
        let ws: Vec<_> = r
            .workloads
            .iter()
            .filter(|(n, _)| workload.is_none_or(|w| w == n.as_str()))
            .map(|(_, w)| w)
            .collect();
        let mut worst: f64 = 0.0;
        for w in ws {
            let v = match self.metric {
                SloMetric::Errors => w.error_share,
                _ if w.completed == 0 => f64::INFINITY,
                SloMetric::Mean => w.latency.mean_ms,
                SloMetric::Percentile(q) => match q as u32 {
                    50 => w.latency.p50_ms,
                    90 => w.latency.p90_ms,
                    95 => w.latency.p95_ms,
                    99 if q == 99.0 => w.latency.p99_ms,
                    _ => w.latency.p999_ms,
                },
            };
            worst = worst.max(v);
        }
        worst
    }
}

/// One load level tried.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Factor on the model's rates.
    pub factor: f64,
    /// Offered rate, requests per second (sum over the scaled workloads).
    pub rate_per_s: f64,
    /// Each objective's metric across replications.
    pub objectives: Vec<Estimate>,
    /// True when every objective holds with 95% confidence.
    pub holds: bool,
    /// Mean utilization of each service.
    pub utilization: IndexMap<String, f64>,
}

/// What the search found.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityResult {
    /// Objectives.
    pub slo: Vec<Slo>,
    /// Offered rate of the model as written, requests per second.
    pub base_rate_per_s: f64,
    /// Highest factor found to hold.
    pub factor: f64,
    /// Highest rate found to hold, requests per second.
    pub max_rate_per_s: f64,
    /// The service with the highest utilization at the first failing level.
    pub bottleneck: Option<String>,
    /// Its utilization there.
    pub bottleneck_utilization: f64,
    /// Every level tried, in order.
    pub levels: Vec<Level>,
}

/// Multiplies every open-loop rate of the workloads (all, or the one named) by `factor`.
pub fn scale_rates(model: &mut Value, factor: f64, workload: Option<&str>) -> Result<(), String> {
    let workloads = model
        .get_mut("workloads")
        .and_then(Value::as_object_mut)
        .ok_or("the model has no workloads")?;
    let mut scaled = 0;
    for (name, w) in workloads.iter_mut() {
        if workload.is_some_and(|x| x != name) {
            continue;
        }
        let Some(arr) = w.get_mut("arrivals").and_then(Value::as_object_mut) else {
            continue;
        };
        let scale = |v: &mut Value| {
            if let Some(x) = v.as_f64() {
                *v = Value::from(x * factor);
            }
        };
        for (kind, body) in arr.iter_mut() {
            match kind.as_str() {
                "poisson" | "constant" => scale(&mut body["rate"]),
                "steps" => body
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .for_each(|s| scale(&mut s["rate"])),
                "ramp" => {
                    scale(&mut body["from"]);
                    scale(&mut body["to"]);
                }
                "spike" => {
                    scale(&mut body["base"]);
                    scale(&mut body["peak"]);
                }
                other => {
                    return Err(format!(
                        "workloads.{name}.arrivals: capacity search scales arrival rates, but this workload uses \"{other}\"; use poisson, constant, steps, ramp or spike (or --workload to pick another)"
                    ));
                }
            }
        }
        scaled += 1;
    }
    if scaled == 0 {
        return Err(match workload {
            Some(w) => format!("no workload named \"{w}\""),
            None => "the model has no workload to scale".into(),
        });
    }
    Ok(())
}

/// Settings of a search.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    /// Replications per level.
    pub replications: usize,
    /// Base seed.
    pub seed: u64,
    /// Only scale this workload (default: all).
    pub workload: Option<String>,
    /// Stop when the bracket is narrower than this share of the factor.
    pub tolerance: f64,
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// The model or the objective is wrong.
    #[error("{0}")]
    BadInput(String),
    /// A run failed.
    #[error("a run failed: {0}")]
    Run(#[from] crate::engine::RunError),
}

fn model_at(
    source: &Value,
    base: &Path,
    factor: f64,
    workload: Option<&str>,
) -> Result<Model, CapacityError> {
    let mut v = source.clone();
    scale_rates(&mut v, factor, workload).map_err(CapacityError::BadInput)?;
    model_from_value(v, base).map_err(|errs| {
        CapacityError::BadInput(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Searches the highest load meeting every objective.
pub fn capacity(
    source: &Value,
    base: &Path,
    slo: Vec<Slo>,
    opt: &CapacityOptions,
) -> Result<CapacityResult, CapacityError> {
    let w = opt.workload.as_deref();
    let base_model = model_at(source, base, 1.0, w)?;
    let est = estimate(&base_model);
    let base_rate: f64 = est
        .workloads
        .iter()
        .filter(|(n, _, _)| w.is_none_or(|x| x == n))
        .map(|(_, r, _)| r)
        .sum();
    let mut levels: Vec<Level> = Vec::new();
    let mut eval = |factor: f64| -> Result<bool, CapacityError> {
        let m = model_at(source, base, factor, w)?;
        let runs = replicate(&m, opt.seed, opt.replications)?;
        let objectives: Vec<Estimate> = slo
            .iter()
            .map(|s| Estimate::of(&runs.iter().map(|r| s.value(r, w)).collect::<Vec<_>>()))
            .collect();
        let holds = slo
            .iter()
            .zip(&objectives)
            .all(|(s, e)| e.mean.is_finite() && e.mean + e.ci95.min(f64::MAX) < s.threshold);
        let mut utilization = IndexMap::new();
        for (name, c) in &runs[0].components {
            if c.kind == "service" {
                let u = runs
                    .iter()
                    .map(|r| r.components[name].total["utilization"])
                    .sum::<f64>()
                    / runs.len() as f64;
                utilization.insert(name.clone(), u);
            }
        }
        levels.push(Level {
            factor,
            rate_per_s: base_rate * factor,
            objectives,
            holds,
            utilization,
        });
        Ok(holds)
    };
    let (mut lo, mut hi);
    if eval(1.0)? {
        lo = 1.0;
        hi = 2.0;
        let mut n = 0;
        while eval(hi)? {
            lo = hi;
            hi *= 2.0;
            n += 1;
            if n > 30 {
                return Err(CapacityError::BadInput(
                    "the objective still holds at 2^30 times the load: is any service loaded?"
                        .into(),
                ));
            }
        }
    } else {
        hi = 1.0;
        lo = 0.5;
        let mut n = 0;
        while !eval(lo)? {
            hi = lo;
            lo /= 2.0;
            n += 1;
            if n > 30 {
                return Err(CapacityError::BadInput("the objective fails even at a billionth of the load: is it reachable (e.g. p99 below a service's fixed time)?".into()));
            }
        }
    }
    while (hi - lo) / lo > opt.tolerance {
        let mid = 0.5 * (lo + hi);
        if eval(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let first_fail = levels
        .iter()
        .filter(|l| !l.holds)
        .min_by(|a, b| a.factor.total_cmp(&b.factor));
    let (bottleneck, bottleneck_utilization) = first_fail
        .and_then(|l| {
            l.utilization
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(n, u)| (Some(n.clone()), *u))
        })
        .unwrap_or((None, 0.0));
    Ok(CapacityResult {
        slo,
        base_rate_per_s: base_rate,
        factor: lo,
        max_rate_per_s: base_rate * lo,
        bottleneck,
        bottleneck_utilization,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objectives() {
        let s = parse_slo("p99<200ms, errors<1%,mean<=5ms").unwrap();
        assert_eq!(s[0].metric, SloMetric::Percentile(99.0));
        assert_eq!(s[0].threshold, 200.0);
        assert_eq!(s[1].metric, SloMetric::Errors);
        assert!((s[1].threshold - 0.01).abs() < 1e-12);
        assert_eq!(s[2].metric, SloMetric::Mean);
        assert!(parse_slo("p98<1ms").is_err());
        assert!(parse_slo("p99>1ms").is_err());
        assert!(parse_slo("p99<1 parsec").is_err());
    }

    #[test]
    fn scales_every_kind_of_rate() {
        let mut v = serde_json::json!({"workloads": {
            "a": {"arrivals": {"poisson": {"rate": 100.0}}},
            "b": {"arrivals": {"steps": [{"at": "0s", "rate": 10.0}, {"at": "1s", "rate": 20.0}]}}
        }});
        scale_rates(&mut v, 2.0, None).unwrap();
        assert_eq!(v["workloads"]["a"]["arrivals"]["poisson"]["rate"], 200.0);
        assert_eq!(v["workloads"]["b"]["arrivals"]["steps"][1]["rate"], 40.0);
        let mut c = serde_json::json!({"workloads": {"u": {"arrivals": {"closed": {"users": 5}}}}});
        assert!(
            scale_rates(&mut c, 2.0, None)
                .unwrap_err()
                .contains("closed")
        );
    }
}
