//! Capacity search: the highest offered load at which a service-level objective still
//! holds with 95% confidence, and the component that saturates first.
//!
//! Every open-loop workload's rate is multiplied by a factor. A level passes when, for
//! each objective, the upper end of the 95% confidence interval of the metric over the
//! replications is below the threshold. The search doubles (or halves) the factor to
//! bracket the capacity, then bisects to the requested relative tolerance.
//!
//! The search always ends. Going up, it stops at [`SATURATION_MULTIPLE`] times the
//! analytic saturation load, at [`MAX_REQUESTS_PER_RUN`], or at the first level far past
//! saturation (busiest service at [`SATURATED_UTILIZATION`] with at least
//! [`DOMINANT_ERROR_SHARE`] of requests failing): an objective that still holds there
//! cannot be broken by load (typically a latency objective with a bounded queue, as
//! failed requests have no latency), and the result says so. Going down, it stops after
//! 30 halvings.

use super::results::{CapacityResult, Level, Outcome, Slo, SloMetric};
use crate::analysis::estimate;
use crate::metrics::MetricDecl;
use crate::metrics::declare::saturation;
use crate::model::{Model, model_from_value};
use crate::replicate::replicate;
use crate::results::RunResult;
use crate::stats::Estimate;
use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::path::Path;

/// The search never tries a load above this multiple of the analytic saturation load:
/// the load at which the first service's offered utilization reaches 100% by the
/// estimates of `check` (see [`crate::analysis`]). At 4 times that load, at least three
/// requests in four offered to that service cannot be served, so an objective that still
/// holds there does not measure the load.
pub const SATURATION_MULTIPLE: f64 = 4.0;
/// A level is far past saturation when its busiest service is at least this busy…
pub const SATURATED_UTILIZATION: f64 = 0.99;
/// …and at least this share of the scaled workloads' requests fail: the search goes no
/// higher.
pub const DOMINANT_ERROR_SHARE: f64 = 0.5;
/// "First to saturate" names a service only when it is at least this busy, or drops
/// requests, at the first load that breaks the objective.
pub const NEAR_SATURATION: f64 = 0.9;
/// Most requests one run of a level may be offered (rate × duration): the search goes no
/// higher, which bounds its time and memory even when no service limits the load.
pub const MAX_REQUESTS_PER_RUN: f64 = 1e7;
/// Halvings of the load the search tries before it calls the objective unreachable.
const MAX_HALVINGS: u32 = 30;

/// Checks the settings of a search; the message names the option.
pub fn check_options(replications: u32, tolerance: f64) -> Result<(), String> {
    if replications < 2 {
        return Err(format!(
            "--replications: a 95% confidence interval needs at least 2 replications per load, got \"{replications}\""
        ));
    }
    if !(tolerance > 0.0 && tolerance < 1.0) {
        return Err(format!(
            "--tolerance: must be a share between 0 and 1 (exclusive), such as 0.02, got \"{tolerance}\""
        ));
    }
    Ok(())
}

/// Parses objectives such as `p99<200ms`, `mean<50ms`, `errors<1%`, comma-separated.
pub fn parse_slo(text: &str) -> Result<Vec<Slo>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Err("expected at least one objective such as \"p99<200ms\", got \"\"".into());
    }
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!(
                "an empty objective in \"{text}\"; separate objectives with one comma, such as \"p99<200ms,errors<1%\""
            ));
        }
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
        if metric == SloMetric::Errors && threshold > 1.0 {
            return Err(format!(
                "a share of errors is at most 100%, got \"{rhs}\" in \"{part}\""
            ));
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
    /// Replications per level (at least 2, see [`check_options`]).
    pub replications: usize,
    /// Base seed.
    pub seed: u64,
    /// Only scale this workload (default: all).
    pub workload: Option<String>,
    /// Stop when the bracket is narrower than this share of the factor, in (0, 1).
    pub tolerance: f64,
    /// Show the level being run on standard error.
    pub progress: bool,
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// The model as written or the objective is wrong.
    #[error("{0}")]
    BadInput(String),
    /// The objective fails even at the lowest load tried.
    #[error("{0}")]
    Unreachable(String),
    /// The model with its rates scaled by the search is invalid (the model as written is
    /// valid).
    #[error(
        "the search's load of {} requests/s ({}× the model's) makes an invalid model (the model as written is valid): {message}",
        rate_text(*.rate_per_s),
        factor_text(*.factor)
    )]
    Scaled {
        /// Factor on the model's rates.
        factor: f64,
        /// The scaled rate, requests per second.
        rate_per_s: f64,
        /// What validation said.
        message: String,
    },
    /// A run failed.
    #[error(
        "a run at the search's load of {} requests/s ({}× the model's) failed: {source}",
        rate_text(*.rate_per_s),
        factor_text(*.factor)
    )]
    Run {
        /// Factor on the model's rates.
        factor: f64,
        /// The scaled rate, requests per second.
        rate_per_s: f64,
        /// The failure.
        source: crate::engine::RunError,
    },
}

/// A rate for a message: 4 significant figures.
fn rate_text(r: f64) -> String {
    if r >= 1000.0 || r == 0.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{}", (r * 10.0).round() / 10.0)
    } else {
        format!("{r:.3e}")
    }
}

fn factor_text(f: f64) -> String {
    if f >= 0.01 {
        format!("{f:.3}")
    } else {
        format!("{f:.3e}")
    }
}

fn model_at(
    source: &Value,
    base: &Path,
    factor: f64,
    workload: Option<&str>,
    base_rate: f64,
) -> Result<Model, CapacityError> {
    let mut v = source.clone();
    scale_rates(&mut v, factor, workload).map_err(CapacityError::BadInput)?;
    model_from_value(v, base).map_err(|errs| {
        let message = errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        if factor == 1.0 {
            CapacityError::BadInput(message)
        } else {
            CapacityError::Scaled {
                factor,
                rate_per_s: base_rate * factor,
                message,
            }
        }
    })
}

/// Offered utilization (offered load over workers) of each service by the estimates.
fn offered_utilization(model: &Model) -> Vec<(String, f64)> {
    estimate(model)
        .services
        .into_iter()
        .map(|(name, e)| (name, e.offered_utilization))
        .collect()
}

/// The factor at which the first service's offered utilization reaches 1, and that
/// service: utilization is taken as linear in the factor (`a + b·f`, from the estimates
/// at factors 1 and 2, so a workload that is not scaled keeps its share).
fn saturation_factor(base_model: &Model, doubled: Option<&Model>) -> Option<(f64, String)> {
    let at1 = offered_utilization(base_model);
    let at2 = doubled.map(offered_utilization);
    at1.iter()
        .filter_map(|(name, u1)| {
            let u2 = match &at2 {
                Some(v) => v.iter().find(|(n, _)| n == name)?.1,
                None => 2.0 * u1,
            };
            let slope = u2 - u1;
            let intercept = u1 - slope;
            (slope > 1e-12 && slope.is_finite()).then(|| ((1.0 - intercept) / slope, name.clone()))
        })
        .filter(|(f, _)| f.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(f, n)| (f.max(0.0), n))
}

/// The highest factor the search tries, and why it stops there.
struct Limit {
    factor: f64,
    reason: String,
}

fn search_limit(saturation: Option<&(f64, String)>, base_rate: f64, duration_s: f64) -> Limit {
    /// A last bound when neither the load nor the requests give one (a rate of zero).
    const MAX_FACTOR: f64 = (1u64 << 30) as f64;
    let requests = base_rate * duration_s;
    let by_requests = if requests > 0.0 {
        MAX_REQUESTS_PER_RUN / requests
    } else {
        MAX_FACTOR
    };
    let limit = match saturation {
        Some((f, name)) if SATURATION_MULTIPLE * f <= by_requests => Limit {
            factor: SATURATION_MULTIPLE * f,
            reason: format!(
                "the search goes no higher than {SATURATION_MULTIPLE} times the load that saturates {name} by the analytic estimates ({} requests/s)",
                rate_text(base_rate * f)
            ),
        },
        _ => Limit {
            factor: by_requests.min(MAX_FACTOR),
            reason: format!(
                "the search goes no higher than {} requests per run, to bound its time and memory",
                rate_text(MAX_REQUESTS_PER_RUN)
            ),
        },
    };
    Limit {
        factor: limit.factor.max(1.0),
        ..limit
    }
}

/// The state of a search: its inputs, the levels run so far and the progress line.
struct Search<'a> {
    source: &'a Value,
    base: &'a Path,
    slo: &'a [Slo],
    opt: &'a CapacityOptions,
    base_rate: f64,
    levels: Vec<Level>,
    bar: ProgressBar,
}

impl Search<'_> {
    fn workload(&self) -> Option<&str> {
        self.opt.workload.as_deref()
    }

    /// Runs the level at `factor`; true when every objective holds.
    fn eval(&mut self, factor: f64) -> Result<bool, CapacityError> {
        self.show(factor);
        let rate_per_s = self.base_rate * factor;
        let m = model_at(
            self.source,
            self.base,
            factor,
            self.workload(),
            self.base_rate,
        )?;
        let runs = replicate(&m, self.opt.seed, self.opt.replications).map_err(|source| {
            CapacityError::Run {
                factor,
                rate_per_s,
                source,
            }
        })?;
        let components: Vec<(&str, &[MetricDecl])> = m
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.kind.metrics()))
            .collect();
        let level = measure(
            &components,
            &runs,
            self.slo,
            self.workload(),
            factor,
            rate_per_s,
        );
        let holds = level.holds;
        self.levels.push(level);
        Ok(holds)
    }

    fn show(&self, factor: f64) {
        let holds = self.levels.iter().filter(|l| l.holds).map(|l| l.rate_per_s);
        let breaks = self
            .levels
            .iter()
            .filter(|l| !l.holds)
            .map(|l| l.rate_per_s);
        let mut known = String::new();
        if let Some(h) = holds.max_by(f64::total_cmp) {
            known.push_str(&format!("; holds at {}/s", rate_text(h)));
        }
        if let Some(b) = breaks.min_by(f64::total_cmp) {
            known.push_str(&format!("; breaks at {}/s", rate_text(b)));
        }
        self.bar.set_message(format!(
            "capacity: load {}: {} requests/s ({}× the model's){known}",
            self.levels.len() + 1,
            rate_text(self.base_rate * factor),
            factor_text(factor)
        ));
    }

    /// Why the last level is far past saturation, if it is.
    fn far_past_saturation(&self) -> Option<String> {
        let l = self.levels.last()?;
        let (_, u) = l.busiest()?;
        (u >= SATURATED_UTILIZATION && l.error_share >= DOMINANT_ERROR_SHARE)
            .then(|| "that is far past saturation, so the search goes no higher".to_string())
    }
}

fn progress_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid progress template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(150));
    bar
}

/// The objectives, utilizations and failures of one level's runs. A component's
/// utilization and drop share are the highest of the metrics its kind declares as
/// saturating (see [`saturation`]); kinds with nothing that can saturate are left out.
fn measure(
    components: &[(&str, &[MetricDecl])],
    runs: &[RunResult],
    slo: &[Slo],
    w: Option<&str>,
    factor: f64,
    rate_per_s: f64,
) -> Level {
    let objectives: Vec<Estimate> = slo
        .iter()
        .map(|s| Estimate::of(&runs.iter().map(|r| s.value(r, w)).collect::<Vec<_>>()))
        .collect();
    let holds = slo
        .iter()
        .zip(&objectives)
        .all(|(s, e)| e.mean.is_finite() && e.mean + e.ci95.min(f64::MAX) < s.threshold);
    let n = runs.len().max(1) as f64;
    let mean_of = |name: &str, key: &str| {
        runs.iter()
            .filter_map(|r| r.components.get(name)?.total.get(key).copied())
            .sum::<f64>()
            / n
    };
    let mut utilization = IndexMap::new();
    let mut drop_share = IndexMap::new();
    for (name, decls) in components {
        if let Some((busy, refused)) = saturation(decls, |key| mean_of(name, key)) {
            utilization.insert(name.to_string(), busy);
            drop_share.insert(name.to_string(), refused);
        }
    }
    let errors = Slo {
        text: String::new(),
        metric: SloMetric::Errors,
        threshold: 1.0,
    };
    let error_share = runs.iter().map(|r| errors.value(r, w)).sum::<f64>() / n;
    Level {
        factor,
        rate_per_s,
        objectives,
        holds,
        utilization,
        drop_share,
        error_share,
    }
}

/// A service drops requests when it refuses at least this share of its arrivals.
const DROPPING: f64 = 0.01;

/// The busiest service near saturation at the first level that fails, with its
/// utilization; or why none is named.
fn first_to_saturate(levels: &[Level]) -> (Option<String>, f64, Option<String>) {
    let Some(first_fail) = levels
        .iter()
        .filter(|l| !l.holds)
        .min_by(|a, b| a.factor.total_cmp(&b.factor))
    else {
        return (None, 0.0, None);
    };
    let near = first_fail
        .utilization
        .iter()
        .filter(|(n, u)| {
            **u >= NEAR_SATURATION
                || first_fail
                    .drop_share
                    .get(*n)
                    .is_some_and(|d| *d >= DROPPING)
        })
        .max_by(|a, b| a.1.total_cmp(b.1));
    match near {
        Some((n, u)) => (Some(n.clone()), *u, None),
        None => {
            let busiest = first_fail
                .busiest()
                .map(|(n, u)| format!("; the busiest, {n}, is {:.0}% busy", u * 100.0))
                .unwrap_or_default();
            let note = format!(
                "no service is near saturation ({:.0}% busy or dropping requests) at {} requests/s, the first load that breaks the objective{busiest}",
                NEAR_SATURATION * 100.0,
                rate_text(first_fail.rate_per_s)
            );
            (None, 0.0, Some(note))
        }
    }
}

/// Why an objective that held up to the last level cannot be broken by load.
fn not_broken_note(slo: &[Slo], last: &Level, stop: &str) -> String {
    let text: Vec<&str> = slo.iter().map(|s| s.text.as_str()).collect();
    let busiest = last
        .busiest()
        .map(|(n, u)| format!(" and {n} is {:.0}% busy", u * 100.0))
        .unwrap_or_default();
    let mut note = format!(
        "at the highest load tried, {:.1}% of requests fail{busiest}; {stop}",
        last.error_share * 100.0
    );
    if slo.iter().any(|s| s.metric == SloMetric::Errors) {
        note.push_str(". Load does not break the objective");
    } else if last.error_share >= DROPPING {
        note.push_str(&format!(
            ". Failed requests do not count toward a latency objective: past saturation, refused and timed-out requests keep the latency of the rest low. Add an error objective, e.g. --slo '{},errors<1%'",
            text.join(",")
        ));
    } else {
        note.push_str(". Load does not break the objective within the search's limit");
    }
    note
}

/// Searches the highest load meeting every objective.
pub fn capacity(
    source: &Value,
    base: &Path,
    slo: Vec<Slo>,
    opt: &CapacityOptions,
) -> Result<CapacityResult, CapacityError> {
    let w = opt.workload.as_deref();
    let base_model = model_at(source, base, 1.0, w, 0.0)?;
    let est = estimate(&base_model);
    let base_rate: f64 = est
        .workloads
        .iter()
        .filter(|(n, _, _)| w.is_none_or(|x| x == n))
        .map(|(_, r, _)| r)
        .sum();
    let doubled = model_at(source, base, 2.0, w, base_rate).ok();
    let saturation = saturation_factor(&base_model, doubled.as_ref());
    let limit = search_limit(
        saturation.as_ref(),
        base_rate,
        base_model.duration.as_secs_f64(),
    );
    let mut s = Search {
        source,
        base,
        slo: &slo,
        opt,
        base_rate,
        levels: Vec::new(),
        bar: progress_bar(opt.progress),
    };
    let outcome = bracket_and_bisect(&mut s, &limit);
    s.bar.finish_and_clear();
    let (lo, stop) = outcome?;
    let (outcome, note, (bottleneck, bottleneck_utilization)) = match stop {
        Some(stop) => {
            let last = s
                .levels
                .iter()
                .max_by(|a, b| a.factor.total_cmp(&b.factor))
                .expect("a level was run");
            (
                Outcome::NotBroken,
                Some(not_broken_note(&slo, last, &stop)),
                (None, 0.0),
            )
        }
        None => {
            let (b, u, note) = first_to_saturate(&s.levels);
            (Outcome::Found, note, (b, u))
        }
    };
    Ok(CapacityResult {
        outcome,
        base_rate_per_s: base_rate,
        factor: lo,
        max_rate_per_s: base_rate * lo,
        saturation_rate_per_s: saturation.map(|(f, _)| base_rate * f),
        limit_rate_per_s: base_rate * limit.factor,
        bottleneck,
        bottleneck_utilization,
        note,
        levels: s.levels,
        slo,
    })
}

/// Brackets the capacity and bisects it: the highest factor found to hold, and why the
/// search stopped going up when no load broke the objective.
fn bracket_and_bisect(
    s: &mut Search,
    limit: &Limit,
) -> Result<(f64, Option<String>), CapacityError> {
    let (mut lo, mut hi);
    if s.eval(1.0)? {
        lo = 1.0;
        loop {
            if let Some(why) = s.far_past_saturation() {
                return Ok((lo, Some(why)));
            }
            if lo >= limit.factor {
                return Ok((lo, Some(limit.reason.clone())));
            }
            let next = (lo * 2.0).min(limit.factor);
            match s.eval(next) {
                Ok(true) => lo = next,
                Ok(false) => {
                    hi = next;
                    break;
                }
                Err(CapacityError::Scaled {
                    rate_per_s,
                    message,
                    ..
                }) => {
                    let why = format!(
                        "the search cannot go to {} requests/s, as the model with that rate is invalid: {message}",
                        rate_text(rate_per_s)
                    );
                    return Ok((lo, Some(why)));
                }
                Err(e) => return Err(e),
            }
        }
    } else {
        hi = 1.0;
        lo = 0.5;
        let mut n = 1;
        while !s.eval(lo)? {
            if n >= MAX_HALVINGS {
                return Err(CapacityError::Unreachable(format!(
                    "the objective fails at every load tried, down to {} requests/s ({}× the model's): is it reachable (e.g. p99 below a service's fixed time)?",
                    rate_text(s.base_rate * lo),
                    factor_text(lo)
                )));
            }
            hi = lo;
            lo /= 2.0;
            n += 1;
        }
    }
    // Each step halves the bracket; the cap ends it when the tolerance is finer than
    // floating point can bisect.
    const MAX_BISECTIONS: u32 = 60;
    let mut steps = 0;
    while (hi - lo) / lo > s.opt.tolerance && steps < MAX_BISECTIONS {
        steps += 1;
        let mid = 0.5 * (lo + hi);
        if s.eval(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((lo, None))
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
        assert_eq!(parse_slo("errors<100%").unwrap()[0].threshold, 1.0);
    }

    #[test]
    fn refuses_empty_objectives_and_error_shares_above_all() {
        for bad in ["", "  ", ",", "p99<5ms,,errors<1%", "p99<5ms,"] {
            let e = parse_slo(bad).unwrap_err();
            assert!(e.contains("objective"), "{bad:?}: {e}");
        }
        for bad in ["errors<150%", "errors<1.5", "errors<inf"] {
            let e = parse_slo(bad).unwrap_err();
            assert!(e.contains("at most 100%"), "{bad}: {e}");
        }
    }

    #[test]
    fn checks_replications_and_tolerance() {
        assert!(check_options(2, 0.02).is_ok());
        assert!(
            check_options(1, 0.02)
                .unwrap_err()
                .contains("--replications")
        );
        assert!(check_options(0, 0.02).unwrap_err().contains("\"0\""));
        for t in [0.0, 1.0, -0.1, 2.0, f64::NAN] {
            assert!(
                check_options(5, t).unwrap_err().contains("--tolerance"),
                "{t}"
            );
        }
    }

    fn level(factor: f64, holds: bool, util: f64, drops: f64) -> Level {
        Level {
            factor,
            rate_per_s: 100.0 * factor,
            objectives: Vec::new(),
            holds,
            utilization: [("app".to_string(), util)].into_iter().collect(),
            drop_share: [("app".to_string(), drops)].into_iter().collect(),
            error_share: drops,
        }
    }

    #[test]
    fn names_a_bottleneck_only_near_saturation() {
        let (b, u, note) =
            first_to_saturate(&[level(1.0, true, 0.5, 0.0), level(2.0, false, 0.95, 0.0)]);
        assert_eq!((b.as_deref(), u, note), (Some("app"), 0.95, None));
        let (b, _, note) = first_to_saturate(&[level(1.0, false, 0.4, 0.0)]);
        assert_eq!(b, None);
        assert!(note.unwrap().contains("no service is near saturation"));
        let (b, _, _) = first_to_saturate(&[level(1.0, false, 0.6, 0.05)]);
        assert_eq!(b.as_deref(), Some("app"), "dropping requests counts");
    }

    /// A run whose only content is its components' totals.
    fn run_with(components: serde_json::Value) -> RunResult {
        serde_json::from_value(serde_json::json!({
            "seed": 1, "window_start_s": 0.0, "window_end_s": 1.0, "events": 0,
            "workloads": {}, "components": components,
            "conservation": {"arrived": 0, "completed": 0, "failed": 0, "in_flight": 0, "holds": true},
            "cost": {"per_hour": 0.0, "per_million_requests": 0.0}, "series": {}
        }))
        .unwrap()
    }

    #[test]
    fn the_bottleneck_is_found_by_the_declared_saturating_metrics() {
        use crate::metrics::declare::{Combine, Saturation, Unit};
        // A kind whose "utilization" is not what saturates: its connection pool is.
        const POOLED: &[MetricDecl] = &[
            MetricDecl::number("utilization", Unit::Share, Combine::Mean),
            MetricDecl::number("pool_in_use", Unit::Share, Combine::Mean)
                .saturates(Saturation::Busy),
            MetricDecl::number("refused", Unit::Share, Combine::Mean)
                .saturates(Saturation::Refused),
        ];
        let run = |pool: f64, app: f64| {
            run_with(serde_json::json!({
                "db": {"kind": "pool", "total": {"utilization": 0.99, "pool_in_use": pool, "refused": 0.0}, "instances": []},
                "lb": {"kind": "load_balancer", "total": {"forwarded": 9.0, "forward_rate_per_s": 9.0, "hot_spot_index": 5.0}, "instances": []},
                "app": {"kind": "service", "total": {"utilization": app, "drop_share": 0.0}, "instances": []}
            }))
        };
        let components = [
            ("db", POOLED),
            ("lb", crate::components::load_balancer::METRICS),
            ("app", crate::components::service::METRICS),
        ];
        let mut l = measure(
            &components,
            &[run(0.9, 0.5), run(1.0, 0.7)],
            &[],
            None,
            2.0,
            200.0,
        );
        assert_eq!(
            l.utilization.get("db"),
            Some(&0.95),
            "the pool, not utilization"
        );
        assert_eq!(l.utilization.get("app"), Some(&0.6));
        assert!(
            !l.utilization.contains_key("lb"),
            "nothing of a balancer saturates"
        );
        assert_eq!(l.busiest(), Some(("db", 0.95)));
        l.holds = false;
        let (b, u, _) = first_to_saturate(&[l]);
        assert_eq!((b.as_deref(), u), (Some("db"), 0.95));
    }

    #[test]
    fn the_search_is_bounded_by_saturation_or_requests() {
        let sat = (1.25, "app".to_string());
        let l = search_limit(Some(&sat), 2400.0, 60.0);
        assert_eq!(l.factor, SATURATION_MULTIPLE * 1.25);
        assert!(l.reason.contains("saturates app"), "{}", l.reason);
        let l = search_limit(None, 2400.0, 60.0);
        assert!((l.factor * 2400.0 * 60.0 - MAX_REQUESTS_PER_RUN).abs() < 1e-3);
        assert!(search_limit(None, 0.0, 60.0).factor.is_finite());
        assert_eq!(
            search_limit(Some(&(0.1, "a".into())), 1e9, 60.0).factor,
            1.0
        );
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
