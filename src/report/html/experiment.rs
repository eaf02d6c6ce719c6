//! The report of an experiment (`sweep` or `compare`, from results.json and
//! manifest.json): provenance, the headline table per point, variant and workload with
//! 95% CIs, latency CDFs per variant, every swept metric against the first swept parameter
//! with CI bands, and the paired comparisons with cost.

use super::page::{Section, chart, note, render, table, warnings};
use super::run::cdf_points;
use crate::experiment::ExperimentResults;
use crate::experiment::results::GroupSummary;
use crate::report::plot::{
    BandPoint, BandSeries, LineSeries, latency_cdf_svg, metric_vs_param_svg, time_series_svg,
};
use crate::report::table::num;
use crate::stats::Estimate;
use indexmap::IndexMap;
use serde_json::Value;

/// Most metric-against-parameter charts on one page (each is some 20-40 KB of SVG): a
/// larger selection is listed, not drawn, to keep the page a few MB at most.
pub const MAX_SWEEP_CHARTS: usize = 80;

/// The whole page for `results`, with the folder's `manifest` when there is one.
pub fn report(
    results: &ExperimentResults,
    manifest: Option<&Value>,
    series: &RunSeries,
) -> std::io::Result<String> {
    let title = format!("{}: scalesim report", results.experiment);
    let subtitle = format!(
        "{} variant(s), {} point(s), experiment hash {}",
        results.variants.len(),
        results.points.len(),
        &results.experiment_hash[..results.experiment_hash.len().min(12)]
    );
    let mut sections = vec![
        Section::new(
            "model",
            "Experiment and seeds",
            provenance(results, manifest),
        ),
        Section::new("headline", "Headline", headline(results)),
        Section::new("latency", "Latency CDFs", cdfs(results)?),
    ];
    if !series.lines.is_empty() {
        sections.push(Section::new(
            "series",
            "Over time",
            series_charts(results, series)?,
        ));
    }
    if !results.axes.is_empty() {
        sections.push(Section::new(
            "sweep",
            "Metrics against the swept parameter",
            sweep(results)?,
        ));
    }
    if !results.comparisons.is_empty() {
        sections.push(Section::new(
            "comparisons",
            "Paired comparisons",
            comparisons(results),
        ));
    }
    sections.push(Section::new(
        "warnings",
        "Warnings",
        warnings(&experiment_warnings(results)),
    ));
    Ok(render(&title, &subtitle, &sections))
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parameters of point `p`, `path=value, ...` (empty without a sweep).
fn point_label(results: &ExperimentResults, p: usize) -> String {
    results.points.get(p).map_or(String::new(), |pt| {
        pt.iter()
            .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), param_text(v)))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Variants, axes, seeds, replications, models.
pub fn provenance(results: &ExperimentResults, manifest: Option<&Value>) -> String {
    let mut rows = vec![
        vec!["experiment".into(), results.experiment.clone()],
        vec![
            "variants (first is the baseline)".into(),
            results.variants.join(", "),
        ],
    ];
    if !results.axes.is_empty() {
        rows.push(vec!["swept".into(), results.axes.join(", ")]);
    }
    let reps: Vec<usize> = results.groups.iter().map(|g| g.replications).collect();
    if let (Some(lo), Some(hi)) = (reps.iter().min(), reps.iter().max()) {
        rows.push(vec![
            "replications per point".into(),
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo} to {hi}")
            },
        ]);
    }
    if let Some(m) = manifest {
        for (key, label) in [
            ("seed", "base seed"),
            ("replication_seeds", "seeds of the replications"),
            ("experiment_file", "experiment file"),
            ("scalesim_version", "scalesim version"),
            ("rng", "random generator"),
        ] {
            if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
                rows.push(vec![label.into(), short_value(v)]);
            }
        }
    }
    table(&["", "value"], &rows)
}

/// A JSON value as text, a long list cut after 20 entries.
fn short_value(v: &Value) -> String {
    match v {
        Value::Array(a) if a.len() > 20 => {
            let head: Vec<String> = a[..20].iter().map(param_text).collect();
            format!("{}, ... ({} in all)", head.join(", "), a.len())
        }
        Value::Array(a) => a.iter().map(param_text).collect::<Vec<_>>().join(", "),
        other => param_text(other),
    }
}

fn est(e: Option<&Estimate>) -> String {
    match e {
        Some(e) if e.n > 1 && e.ci95.is_finite() => format!("{} ± {}", num(e.mean), num(e.ci95)),
        Some(e) => num(e.mean),
        None => "-".into(),
    }
}

/// The workloads of a group, from its keys `workloads.NAME.*`, in order.
fn workloads(g: &GroupSummary) -> Vec<String> {
    let mut names: Vec<String> = g.pooled_latency.keys().cloned().collect();
    for k in g.metrics.keys() {
        if let Some(rest) = k.strip_prefix("workloads.")
            && let Some((w, _)) = rest.split_once('.')
            && !names.iter().any(|n| n == w)
        {
            names.push(w.to_string());
        }
    }
    names
}

/// Per point, variant and workload: throughput, errors, percentiles ± CI.
pub fn headline(results: &ExperimentResults) -> String {
    let mut rows = Vec::new();
    for g in &results.groups {
        for w in workloads(g) {
            let m = |k: &str| est(g.metrics.get(&format!("workloads.{w}.{k}")));
            let errors: Vec<String> = g
                .metrics
                .iter()
                .filter_map(|(k, e)| {
                    let cause = k.strip_prefix(&format!("workloads.{w}.errors."))?;
                    (e.mean > 0.0).then(|| format!("{cause} {}", num(e.mean)))
                })
                .collect();
            rows.push(vec![
                point_label(results, g.point),
                g.variant.clone(),
                w.clone(),
                m("throughput_per_s"),
                m("goodput_per_s"),
                m("error_share"),
                if errors.is_empty() {
                    "-".into()
                } else {
                    errors.join(", ")
                },
                m("latency.p50_ms"),
                m("latency.p95_ms"),
                m("latency.p99_ms"),
                m("latency.p999_ms"),
            ]);
        }
    }
    let mut s = table(
        &[
            "point",
            "variant",
            "workload",
            "throughput/s",
            "goodput/s",
            "error share",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
        ],
        &rows,
    );
    s.push_str(&note("Means over the replications ± the 95% CI half-width; '-' where the experiment did not keep the metric."));
    s
}

/// Per point (the first few) and workload: one CDF with a line per variant, through the
/// percentiles of all replications' latencies pooled.
pub fn cdfs(results: &ExperimentResults) -> std::io::Result<String> {
    let mut s = String::new();
    let points: Vec<usize> = (0..results.points.len().max(1)).take(6).collect();
    for p in points {
        let groups: Vec<&GroupSummary> = results.groups.iter().filter(|g| g.point == p).collect();
        let names: Vec<String> = groups.first().map_or(Vec::new(), |g| workloads(g));
        for w in names {
            let lines: Vec<LineSeries> = groups
                .iter()
                .filter_map(|g| {
                    Some(LineSeries {
                        name: g.variant.clone(),
                        points: cdf_points(g.pooled_latency.get(&w)?),
                    })
                })
                .collect();
            if lines.iter().all(|l| l.points.is_empty()) {
                continue;
            }
            let label = point_label(results, p);
            let title = if label.is_empty() {
                format!("{w}: latency CDF")
            } else {
                format!("{w}: latency CDF at {label}")
            };
            s.push_str(&chart(&latency_cdf_svg(&title, &lines)?));
        }
    }
    if s.is_empty() {
        s = note("No latency was measured.");
    }
    Ok(s)
}

/// Most replications per variant whose series `run_series` reads (each record is read
/// whole): their mean is drawn.
pub const MAX_SERIES_RUNS: usize = 10;

/// One variant's series of one workload: window width (s), goodput (/s) and mean latency
/// (ms) per window.
pub type SeriesLine = (f64, Vec<f64>, Vec<f64>);

/// The time series of the runs at the first point of an experiment, per variant and
/// workload, averaged over (at most [`MAX_SERIES_RUNS`]) replications, and the fault
/// windows to shade.
#[derive(Debug, Clone, Default)]
pub struct RunSeries {
    /// (variant, workload) → window width (s), goodput per window (/s), mean latency per
    /// window (ms).
    pub lines: IndexMap<(String, String), SeriesLine>,
    /// Fault windows of the runs (start, end, seconds).
    pub shaded: Vec<(f64, f64)>,
}

/// The series of the run records of `dir` at the first point (see [`RunSeries`]); empty
/// when the records keep none (a folder without `runs/`, or models without series).
pub fn run_series(dir: &std::path::Path, results: &ExperimentResults) -> RunSeries {
    let mut out = RunSeries::default();
    let mut sums: IndexMap<(String, String), (SeriesLine, usize)> = IndexMap::new();
    let runs =
        crate::experiment::results::first_point_runs(dir, results.variants.len(), MAX_SERIES_RUNS);
    for (variant, result) in runs {
        for f in &result.faults {
            if !out.shaded.contains(&(f.start_s, f.end_s)) {
                out.shaded.push((f.start_s, f.end_s));
            }
        }
        let variant = results.variants[variant].clone();
        for (workload, s) in &result.series {
            if s.completed.is_empty() {
                continue;
            }
            let e = sums
                .entry((variant.clone(), workload.clone()))
                .or_insert_with(|| ((s.window_s, Vec::new(), Vec::new()), 0));
            let n = s.completed.len();
            let line = &mut e.0;
            line.1.resize(line.1.len().max(n), 0.0);
            line.2.resize(line.2.len().max(n), 0.0);
            for k in 0..n {
                line.1[k] += s.completed[k] as f64 / s.window_s;
                line.2[k] += s.latency_mean_ms.get(k).copied().unwrap_or(0.0);
            }
            e.1 += 1;
        }
    }
    for (key, ((window, goodput, latency), runs)) in sums {
        let runs = runs.max(1) as f64;
        out.lines.insert(
            key,
            (
                window,
                goodput.into_iter().map(|x| x / runs).collect(),
                latency.into_iter().map(|x| x / runs).collect(),
            ),
        );
    }
    out
}

/// Per workload: goodput and mean latency over time, a line per variant (the mean over its
/// replications at the first point), fault windows shaded.
fn series_charts(results: &ExperimentResults, series: &RunSeries) -> std::io::Result<String> {
    let mut workloads: Vec<&String> = series.lines.keys().map(|(_, w)| w).collect();
    workloads.sort();
    workloads.dedup();
    let line = |name: &str, window: f64, values: &[f64]| LineSeries {
        name: name.to_string(),
        points: values
            .iter()
            .enumerate()
            .map(|(k, v)| ((k as f64 + 0.5) * window, *v))
            .collect(),
    };
    let mut s = String::new();
    let at = point_label(results, 0);
    let at = if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    };
    for w in workloads {
        let mut goodput = Vec::new();
        let mut latency = Vec::new();
        for ((variant, workload), (window, g, l)) in &series.lines {
            if workload == w {
                goodput.push(line(variant, *window, g));
                latency.push(line(variant, *window, l));
            }
        }
        s.push_str(&chart(&time_series_svg(
            &format!("{w}: goodput over time{at}"),
            "successful responses/s",
            &goodput,
            &series.shaded,
        )?));
        s.push_str(&chart(&time_series_svg(
            &format!("{w}: mean latency over time{at}"),
            "latency (ms)",
            &latency,
            &series.shaded,
        )?));
    }
    s.push_str(&note(&format!(
        "A line per variant: the mean over its replications (at most {MAX_SERIES_RUNS}) at the first point.{}",
        if series.shaded.is_empty() {
            ""
        } else {
            " Shaded: fault windows and bursts."
        }
    )));
    Ok(s)
}

/// Every metric against the first swept parameter: a line per variant (and per value of
/// the other parameters), with its 95% CI band.
pub fn sweep(results: &ExperimentResults) -> std::io::Result<String> {
    let Some(axis) = results.axes.first() else {
        return Ok(String::new());
    };
    let mut metrics: Vec<&String> = Vec::new();
    for g in &results.groups {
        for k in g.metrics.keys() {
            if !metrics.contains(&k) {
                metrics.push(k);
            }
        }
    }
    let mut s = String::new();
    for (n, metric) in metrics.iter().enumerate() {
        if n == MAX_SWEEP_CHARTS {
            let rest: Vec<&str> = metrics[n..].iter().map(|m| m.as_str()).collect();
            s.push_str(&note(&format!(
                "Not drawn (over {MAX_SWEEP_CHARTS} charts): {}",
                rest.join(", ")
            )));
            break;
        }
        let series = bands(results, axis, metric);
        if series.iter().all(|b| b.points.is_empty()) {
            continue;
        }
        let svg = metric_vs_param_svg(&format!("{metric} against {axis}"), axis, metric, &series)?;
        s.push_str(&chart(&svg));
    }
    Ok(s)
}

fn bands(results: &ExperimentResults, axis: &str, metric: &str) -> Vec<BandSeries> {
    let mut lines: IndexMap<String, Vec<BandPoint>> = IndexMap::new();
    for g in &results.groups {
        let Some(point) = results.points.get(g.point) else {
            continue;
        };
        let Some(x) = point.get(axis).and_then(Value::as_f64) else {
            continue;
        };
        let Some(e) = g.metrics.get(metric) else {
            continue;
        };
        let others: Vec<String> = point
            .iter()
            .filter(|(k, _)| k.as_str() != axis)
            .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), param_text(v)))
            .collect();
        let name = if others.is_empty() {
            g.variant.clone()
        } else {
            format!("{} {}", g.variant, others.join(" "))
        };
        let half = if e.ci95.is_finite() { e.ci95 } else { 0.0 };
        lines.entry(name).or_default().push(BandPoint {
            x,
            mean: e.mean,
            low: e.mean - half,
            high: e.mean + half,
        });
    }
    lines
        .into_iter()
        .map(|(name, points)| BandSeries { name, points })
        .collect()
}

/// Each variant against the baseline: the paired difference and its CI, relative, with
/// cost rows among them.
pub fn comparisons(results: &ExperimentResults) -> String {
    let rows: Vec<Vec<String>> = results
        .comparisons
        .iter()
        .map(|c| {
            vec![
                point_label(results, c.point),
                format!("{} vs {}", c.variant, c.baseline),
                c.metric.clone(),
                num(c.baseline_mean),
                format!("{} ± {}", num(c.difference.mean), num(c.difference.ci95)),
                if c.relative.is_finite() {
                    format!(
                        "{:+.1}% ± {:.1}%",
                        c.relative * 100.0,
                        c.relative_ci95 * 100.0
                    )
                } else {
                    "-".into()
                },
                if c.significant {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    let mut s = table(
        &[
            "point",
            "design",
            "metric",
            "baseline mean",
            "difference ± 95% CI",
            "relative",
            "significant",
        ],
        &rows,
    );
    s.push_str(&note("Paired on common random numbers: replication r of every design uses the same seed. Significant: the 95% CI of the difference excludes zero. Cost rows: cost.*."));
    s
}

/// Points where runs stopped early, and single-replication points (no CI).
pub fn experiment_warnings(results: &ExperimentResults) -> Vec<String> {
    let mut w = Vec::new();
    for g in &results.groups {
        if g.stopped_early > 0 {
            w.push(format!(
                "{} at point {} ({}): {} of {} runs stopped early at max_in_flight (overloaded)",
                g.variant,
                g.point,
                point_label(results, g.point),
                g.stopped_early,
                g.replications
            ));
        }
    }
    if results.groups.iter().any(|g| g.replications < 2) {
        w.push("some points have a single replication: no confidence interval".into());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::results::Comparison;

    fn e(mean: f64, ci95: f64) -> Estimate {
        Estimate {
            n: 3,
            mean,
            sd: 1.0,
            ci95,
        }
    }

    fn results() -> ExperimentResults {
        let group = |point: usize, variant: &str, p99: f64| GroupSummary {
            point,
            variant: variant.into(),
            replications: 3,
            warmup_s: e(1.0, 0.0),
            metrics: [
                ("workloads.users.latency.p99_ms".to_string(), e(p99, 0.5)),
                ("workloads.users.errors.timeout".to_string(), e(2.0, 1.0)),
            ]
            .into_iter()
            .collect(),
            pooled_latency: IndexMap::new(),
            stopped_early: usize::from(point == 1),
        };
        let point = |rate: u32| -> IndexMap<String, Value> {
            [(
                "workloads.users.arrivals.poisson.rate".to_string(),
                Value::from(rate),
            )]
            .into_iter()
            .collect()
        };
        ExperimentResults {
            experiment: "x".into(),
            experiment_hash: "abc".into(),
            variants: vec!["a".into(), "b".into()],
            axes: vec!["workloads.users.arrivals.poisson.rate".into()],
            points: vec![point(100), point(200)],
            groups: vec![
                group(0, "a", 5.0),
                group(0, "b", 6.0),
                group(1, "a", 9.0),
                group(1, "b", 20.0),
            ],
            comparisons: vec![Comparison {
                point: 0,
                variant: "b".into(),
                baseline: "a".into(),
                metric: "workloads.users.latency.p99_ms".into(),
                baseline_mean: 5.0,
                difference: e(1.0, 0.2),
                relative: 0.2,
                relative_ci95: 0.04,
                significant: true,
            }],
        }
    }

    #[test]
    fn the_headline_has_a_row_per_point_variant_and_workload() {
        let h = headline(&results());
        assert_eq!(h.matches("<td>users</td>").count(), 4);
        assert!(
            h.contains("<td>rate=200</td>") && h.contains("timeout 2.000"),
            "{h}"
        );
        assert!(h.contains("9.000 ± 0.500"));
    }

    #[test]
    fn every_metric_is_drawn_against_the_parameter_with_bands() {
        let s = sweep(&results()).unwrap();
        assert_eq!(
            s.matches("<figure class=\"chart\">").count(),
            2,
            "p99 and timeouts"
        );
        let b = bands(
            &results(),
            "workloads.users.arrivals.poisson.rate",
            "workloads.users.latency.p99_ms",
        );
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[1].points[1].x, b[1].points[1].low, b[1].points[1].high),
            (200.0, 19.5, 20.5)
        );
    }

    #[test]
    fn comparisons_and_warnings_are_listed() {
        let c = comparisons(&results());
        assert!(
            c.contains("b vs a") && c.contains("+20.0% ± 4.0%") && c.contains("<td>yes</td>"),
            "{c}"
        );
        let w = experiment_warnings(&results());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("stopped early"));
        let page = report(&results(), None, &RunSeries::default()).unwrap();
        for id in [
            "model",
            "headline",
            "latency",
            "sweep",
            "comparisons",
            "warnings",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
    }
}
