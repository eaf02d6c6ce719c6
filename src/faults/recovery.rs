//! How a design came back from each fault (and each burst of a workload): the time to
//! recover, the requests failed during the fault and after it until recovery, and whether
//! it came back at all (a metastable failure). Worked out after the run from the
//! workloads' time series (answers, failures and the 99th latency percentile per window),
//! so it costs nothing while the run goes on.
//!
//! For each fault window, the workloads judged are those whose requests can reach the
//! fault's component (for a burst: the bursting workload and every workload sharing a
//! component with it). Their level before the fault is taken over the measured windows
//! that end before it starts and overlap no other fault (all measured windows before it if
//! none is clean): goodput, the mean over those windows; p99, the median of their p99s. A
//! workload is back in its band in a window when its goodput is at least `1 -
//! goodput_band` of its level and its p99 at most `p99_factor` times its level. The system
//! recovered at the start of the first window starting at or after the fault's end in
//! which every judged workload is back; the time to recover runs from the fault's start,
//! so it is the fault's length plus what it takes to drain what piled up (rounded up to
//! a window). It is metastable when it had not recovered `metastable_after` after the end
//! (by the end of the run, if that came at least that long after the fault's end; a run
//! ending sooner without recovery leaves the flag off and `recovered_s` null).

use crate::error::{Errors, join};
use crate::model::Model;
use crate::results::{RecoveryResult, RunResult};
use crate::time::{DurationSpec, SimDuration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default `goodput_band`: back within 10% of the goodput before the fault.
pub const DEFAULT_GOODPUT_BAND: f64 = 0.1;
/// Default `p99_factor`: back under twice the p99 before the fault.
pub const DEFAULT_P99_FACTOR: f64 = 2.0;
/// Default `metastable_after`: this share of the run's duration.
pub const DEFAULT_METASTABLE_SHARE: u64 = 4;

/// The model's `recovery` block, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverySpec {
    /// A workload is back when its goodput per window is at least this share below its
    /// level before the fault, 0 to 1 (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_band: Option<f64>,
    /// ... and its p99 per window at most this many times its level before the fault, 1 or
    /// more (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_factor: Option<f64>,
    /// A fault after whose end the system is not back within this long is flagged
    /// metastable (default: a quarter of `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metastable_after: Option<DurationSpec>,
}

/// Validated recovery settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovery {
    /// See [`RecoverySpec::goodput_band`].
    pub goodput_band: f64,
    /// See [`RecoverySpec::p99_factor`].
    pub p99_factor: f64,
    /// See [`RecoverySpec::metastable_after`].
    pub metastable_after: SimDuration,
}

/// The recovery settings of a model running for `duration`.
pub fn validate(errs: &mut Errors, spec: Option<&RecoverySpec>, duration: SimDuration) -> Recovery {
    let spec = spec.cloned().unwrap_or_default();
    let goodput_band = spec.goodput_band.unwrap_or(DEFAULT_GOODPUT_BAND);
    if !(goodput_band.is_finite() && (0.0..=1.0).contains(&goodput_band)) {
        errs.push(
            join("recovery", "goodput_band"),
            format!("must be between 0 and 1, got {goodput_band}"),
        );
    }
    let p99_factor = spec.p99_factor.unwrap_or(DEFAULT_P99_FACTOR);
    if !(p99_factor.is_finite() && p99_factor >= 1.0) {
        errs.push(
            join("recovery", "p99_factor"),
            format!("must be 1 or more, got {p99_factor}"),
        );
    }
    let metastable_after = match spec.metastable_after {
        Some(d) => {
            if d.nanos() <= 0.0 {
                errs.push(
                    join("recovery", "metastable_after"),
                    format!(
                        "must be longer than zero, got \"{}\"",
                        crate::time::format_duration_nanos(d.nanos())
                    ),
                );
            }
            d.to_sim()
        }
        None => SimDuration(duration.0 / DEFAULT_METASTABLE_SHARE),
    };
    Recovery {
        goodput_band,
        p99_factor,
        metastable_after,
    }
}

/// The components each workload's requests can reach (by group id), its target included.
fn reach(model: &Model) -> Vec<Vec<bool>> {
    model
        .workloads
        .iter()
        .map(|w| {
            let mut seen = vec![false; model.components.len()];
            let mut stack = vec![w.target as usize];
            while let Some(g) = stack.pop() {
                if g >= seen.len() || seen[g] {
                    continue;
                }
                seen[g] = true;
                stack.extend(model.graph.successors(g));
            }
            seen
        })
        .collect()
}

/// Half a nanosecond, in seconds: times within this are equal.
const EPS: f64 = 0.5e-9;

/// Fills in the recovery of every fault window of `r`, a run of `model`.
pub fn analyse(model: &Model, r: &mut RunResult) {
    let reach = reach(model);
    let names: Vec<&str> = model.workloads.iter().map(|w| w.name.as_str()).collect();
    let judged: Vec<Vec<usize>> = r
        .faults
        .iter()
        .map(|f| {
            if f.effect == crate::results::BURST {
                let Some(b) = names.iter().position(|n| *n == f.target) else {
                    return Vec::new();
                };
                (0..names.len())
                    .filter(|&a| a == b || reach[a].iter().zip(&reach[b]).any(|(x, y)| *x && *y))
                    .collect()
            } else {
                match model.component_index(&f.target) {
                    Some(g) => (0..names.len()).filter(|&a| reach[a][g]).collect(),
                    None => Vec::new(),
                }
            }
        })
        .collect();
    let spans: Vec<(f64, f64)> = r.faults.iter().map(|f| (f.start_s, f.end_s)).collect();
    for (i, workloads) in judged.into_iter().enumerate() {
        let result = one(model, r, &spans, i, &workloads, &names);
        r.faults[i].recovery = result;
    }
}

/// One workload's series, as the analysis reads them.
struct Lane<'a> {
    completed: &'a [u64],
    failed: &'a [u64],
    p99: &'a [f64],
    base_goodput: f64,
    base_p99: f64,
}

/// The recovery from fault window `i` of `r`, judged on `workloads`.
fn one(
    model: &Model,
    r: &RunResult,
    spans: &[(f64, f64)],
    i: usize,
    workloads: &[usize],
    names: &[&str],
) -> Option<RecoveryResult> {
    let settings = &model.recovery;
    let (start, end) = spans[i];
    let first = r.series.get(names[*workloads.first()?])?;
    let w = first.window_s;
    let n = first.completed.len();
    if w <= 0.0 || n == 0 {
        return None;
    }
    let run_end = r.window_end_s;
    // The length of window k (the last one ends with the run).
    let len = |k: usize| ((k as f64 + 1.0) * w).min(run_end) - k as f64 * w;
    let measured = |k: usize| k as f64 * w >= r.window_start_s - EPS;
    let before = |k: usize| (k as f64 + 1.0) * w <= start + EPS;
    let clean = |k: usize| {
        spans.iter().enumerate().all(|(j, &(s, e))| {
            j == i || (k as f64 + 1.0) * w <= s + EPS || k as f64 * w >= e - EPS
        })
    };
    let mut base: Vec<usize> = (0..n)
        .filter(|&k| measured(k) && before(k) && clean(k))
        .collect();
    if base.is_empty() {
        base = (0..n).filter(|&k| measured(k) && before(k)).collect();
    }
    if base.is_empty() {
        return None;
    }
    let mut lanes = Vec::new();
    for &a in workloads {
        let s = r.series.get(names[a])?;
        let p99: &[f64] = &s.latency_p99_ms;
        if p99.len() != n || s.completed.len() != n {
            return None;
        }
        let base_goodput = base
            .iter()
            .map(|&k| s.completed[k] as f64 / len(k))
            .sum::<f64>()
            / base.len() as f64;
        let mut p: Vec<f64> = base
            .iter()
            .filter(|&&k| s.completed[k] > 0)
            .map(|&k| p99[k])
            .collect();
        p.sort_by(f64::total_cmp);
        let base_p99 = p.get(p.len() / 2).copied().unwrap_or(0.0);
        lanes.push(Lane {
            completed: &s.completed,
            failed: &s.failed,
            p99,
            base_goodput,
            base_p99,
        });
    }
    let in_band = |k: usize| {
        lanes.iter().all(|l| {
            let goodput = l.completed[k] as f64 / len(k);
            let goodput_ok = goodput >= (1.0 - settings.goodput_band) * l.base_goodput - 1e-9;
            let p99_ok = l.base_p99 <= 0.0
                || (l.completed[k] > 0 && l.p99[k] <= settings.p99_factor * l.base_p99);
            goodput_ok && p99_ok
        })
    };
    let k_start = ((start / w + EPS).floor() as usize).min(n);
    let still_on = end >= run_end - EPS;
    let k_end = if still_on {
        n
    } else {
        ((end / w - EPS).ceil().max(0.0) as usize).min(n)
    };
    let recovered = if still_on {
        None
    } else {
        (k_end..n).find(|&k| in_band(k))
    };
    let failed = |from: usize, to: usize| -> u64 {
        lanes
            .iter()
            .map(|l| l.failed[from.min(to)..to].iter().sum::<u64>())
            .sum()
    };
    // Times to the nanosecond, values to a millionth: 40.2, not 40.199999999999996.
    let ns = |t: f64| (t * 1e9).round() / 1e9;
    let micro = |v: f64| (v * 1e6).round() / 1e6;
    let recovered_s = recovered.map(|k| ns(k as f64 * w));
    let after_end = settings.metastable_after.as_secs_f64();
    let metastable = !still_on
        && match recovered_s {
            Some(t) => t - end > after_end + EPS,
            None => run_end - end >= after_end - EPS,
        };
    Some(RecoveryResult {
        workloads: workloads.iter().map(|&a| names[a].to_string()).collect(),
        baseline_goodput_per_s: micro(lanes.iter().map(|l| l.base_goodput).sum()),
        baseline_p99_ms: micro(lanes.iter().map(|l| l.base_p99).fold(0.0, f64::max)),
        recovered_s,
        time_to_recover_s: recovered_s.map(|t| ns((t - start).max(0.0))),
        failed_during: failed(k_start, k_end),
        failed_after: failed(k_end, recovered.unwrap_or(n)),
        metastable,
    })
}
