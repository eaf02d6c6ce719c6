//! From run records to the experiment's result files: tidy.csv (one row per run and
//! metric), summary.csv (one row per point, variant and metric: mean, sd, 95% CI),
//! comparisons.csv (paired differences against the baseline variant), results.json, and
//! the plots. Records are read one at a time in task order; memory holds one point's
//! baseline and one group's histograms, whatever the number of runs.

use super::plan::{Plan, Task};
use super::spec::PlotSpec;
use super::store::{list_records, read_record};
use crate::files::write_atomic;
use crate::metrics::{LatencyHistogram, LatencySummary};
use crate::report::plot::{
    BandPoint, BandSeries, LineSeries, latency_cdf, metric_vs_param, time_series,
};
use crate::stats::headline_metrics;
use crate::stats::{Estimate, Welford};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Pooled latency CDF of a (point, variant, workload), for plots.
type CdfLines = BTreeMap<(usize, usize, String), Vec<(f64, f64)>>;
/// Summed time series of a (point, variant, workload, metric): window width, sums, runs.
type SeriesSums = BTreeMap<(usize, usize, String, String), (f64, Vec<f64>, usize)>;

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
    pub baseline_mean: f64,
    /// Mean and CI of variant − baseline over paired replications.
    pub difference: Estimate,
    /// Difference relative to the baseline mean.
    pub relative: f64,
    /// CI half-width of the relative difference.
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

fn selected(patterns: &Option<Vec<String>>, key: &str) -> bool {
    match patterns {
        None => true,
        Some(ps) => ps.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => p == key,
        }),
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Vec<u8> {
    w.into_inner().expect("flushing CSV to memory")
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Problems found in the records of an output folder.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AggregateError(pub String);

/// Checks that `dir` holds exactly the runs of `plan` (every (point, variant) with
/// replications 0..n, the same n everywhere unless precision decided it), and returns the
/// sorted tasks.
pub fn complete_tasks(
    plan: &Plan,
    dir: &Path,
) -> Result<Vec<(Task, std::path::PathBuf)>, AggregateError> {
    let records =
        list_records(dir).map_err(|e| AggregateError(format!("{}: {e}", dir.display())))?;
    let mut per_group: BTreeMap<(usize, usize), Vec<u32>> = BTreeMap::new();
    for (t, _) in &records {
        if t.point >= plan.points.len() || t.variant >= plan.variants.len() {
            return Err(AggregateError(format!(
                "{}: run {} is not part of this experiment",
                dir.display(),
                t.file_name()
            )));
        }
        per_group
            .entry((t.point, t.variant))
            .or_default()
            .push(t.replication);
    }
    let fixed = plan.spec.precision.is_none();
    for p in 0..plan.points.len() {
        for v in 0..plan.variants.len() {
            let reps = per_group.get(&(p, v)).cloned().unwrap_or_default();
            let n = if fixed {
                plan.replications as usize
            } else {
                reps.len().max(1)
            };
            let missing: Vec<u32> = (0..n as u32).filter(|r| !reps.contains(r)).collect();
            if !missing.is_empty() {
                return Err(AggregateError(format!(
                    "{}: incomplete: point {p}, variant \"{}\" lacks replication(s) {:?}; run the missing shards (or --resume)",
                    dir.display(),
                    plan.variants[v],
                    missing
                )));
            }
            if fixed && reps.len() > n {
                return Err(AggregateError(format!(
                    "{}: point {p}, variant \"{}\" has {} replications, the experiment asks for {n}",
                    dir.display(),
                    plan.variants[v],
                    reps.len()
                )));
            }
        }
    }
    Ok(records)
}

/// Reads every record of `dir` and writes the result files into it.
pub fn aggregate(plan: &Plan, dir: &Path) -> Result<ExperimentResults, AggregateError> {
    let records = complete_tasks(plan, dir)?;
    let io = |file: &str| {
        let path = dir.join(file);
        move |e: std::io::Error| AggregateError(format!("cannot write {}: {e}", path.display()))
    };
    let params: Vec<String> = plan
        .axes
        .iter()
        .map(|(p, _)| format!("param_{p}"))
        .collect();

    let mut tidy = csv_writer();
    let mut header = vec![
        "variant".to_string(),
        "point".into(),
        "replication".into(),
        "seed".into(),
    ];
    header.extend(params.iter().cloned());
    header.extend(["metric".to_string(), "value".into()]);
    tidy.write_record(&header)
        .map_err(|e| AggregateError(e.to_string()))?;

    let mut groups: Vec<GroupSummary> = Vec::new();
    let mut comparisons: Vec<Comparison> = Vec::new();
    // Baseline metrics of the current point, by replication.
    let mut baseline: BTreeMap<u32, IndexMap<String, f64>> = BTreeMap::new();
    // CDF and time series for the plots that ask for them: (point, variant) → lines.
    let mut cdfs: CdfLines = BTreeMap::new();
    let mut series: SeriesSums = BTreeMap::new();
    let plot_specs = plan.spec.plots.clone().unwrap_or_default();

    let mut i = 0;
    while i < records.len() {
        let (p, v) = (records[i].0.point, records[i].0.variant);
        let mut j = i;
        let mut welford: IndexMap<String, Welford> = IndexMap::new();
        let mut warm = Welford::default();
        let mut pooled: Vec<LatencyHistogram> = Vec::new();
        let mut workload_names: Vec<String> = Vec::new();
        let mut diffs: IndexMap<String, Welford> = IndexMap::new();
        let mut base_means: IndexMap<String, Welford> = IndexMap::new();
        while j < records.len() && records[j].0.point == p && records[j].0.variant == v {
            let rec = read_record(&records[j].1).map_err(AggregateError)?;
            if rec.experiment_hash != plan.hash {
                return Err(AggregateError(format!(
                    "{}: made by a different experiment (hash {}, expected {})",
                    records[j].1.display(),
                    rec.experiment_hash,
                    plan.hash
                )));
            }
            warm.add(rec.warmup_s);
            workload_names = rec.result.workloads.keys().cloned().collect();
            let hists = rec
                .latency()
                .map_err(|e| AggregateError(format!("{}: {e}", records[j].1.display())))?;
            if pooled.is_empty() {
                pooled = hists;
            } else {
                for (a, b) in pooled.iter_mut().zip(&hists) {
                    a.merge(b);
                }
            }
            let mut metrics: IndexMap<String, f64> = headline_metrics(&rec.result)
                .into_iter()
                .filter(|(k, _)| selected(&plan.spec.metrics, k))
                .collect();
            // The warm-up each run used (detected by MSER-5, or fixed) is reported too.
            metrics.insert("run.warmup_s".to_string(), rec.warmup_s);
            for (k, x) in &metrics {
                let mut row = vec![
                    plan.variants[v].clone(),
                    p.to_string(),
                    rec.replication.to_string(),
                    rec.seed.to_string(),
                ];
                row.extend(plan.points[p].iter().map(param_text));
                row.extend([k.clone(), x.to_string()]);
                tidy.write_record(&row)
                    .map_err(|e| AggregateError(e.to_string()))?;
                welford.entry(k.clone()).or_default().add(*x);
            }
            // Time series for plots.
            for spec in &plot_specs {
                if let PlotSpec::TimeSeries(ts) = spec {
                    if ts.point.unwrap_or(0) != p {
                        continue;
                    }
                    let wname = ts
                        .workload
                        .clone()
                        .or_else(|| workload_names.first().cloned())
                        .unwrap_or_default();
                    let metric = ts
                        .metric
                        .clone()
                        .unwrap_or_else(|| "latency_mean_ms".into());
                    if let Some(s) = rec.result.series.get(&wname) {
                        let values: Vec<f64> = (0..s.completed.len())
                            .map(|k| match metric.as_str() {
                                "throughput_per_s" => {
                                    (s.completed[k] + s.failed[k]) as f64 / s.window_s
                                }
                                "error_share" => {
                                    let n = s.completed[k] + s.failed[k];
                                    if n > 0 {
                                        s.failed[k] as f64 / n as f64
                                    } else {
                                        0.0
                                    }
                                }
                                _ => s.latency_mean_ms[k],
                            })
                            .collect();
                        let e = series
                            .entry((p, v, wname.clone(), metric.clone()))
                            .or_insert((s.window_s, vec![0.0; values.len()], 0));
                        for (acc, x) in e.1.iter_mut().zip(&values) {
                            *acc += x;
                        }
                        e.2 += 1;
                    }
                }
            }
            if v == 0 {
                baseline.insert(rec.replication, metrics);
            } else if let Some(b) = baseline.get(&rec.replication) {
                for (k, x) in &metrics {
                    if let Some(bx) = b.get(k) {
                        diffs.entry(k.clone()).or_default().add(x - bx);
                        base_means.entry(k.clone()).or_default().add(*bx);
                    }
                }
            }
            j += 1;
        }
        let pooled_latency: IndexMap<String, LatencySummary> = workload_names
            .iter()
            .cloned()
            .zip(pooled.iter().map(LatencyHistogram::summary))
            .collect();
        for spec in &plot_specs {
            if let PlotSpec::LatencyCdf(c) = spec
                && c.point.unwrap_or(0) == p
            {
                let w = c
                    .workload
                    .clone()
                    .or_else(|| workload_names.first().cloned())
                    .unwrap_or_default();
                if let Some(k) = workload_names.iter().position(|n| *n == w) {
                    cdfs.insert((p, v, w), pooled[k].cdf_ms(400));
                }
            }
        }
        for (k, d) in &diffs {
            let d = d.estimate();
            let b = base_means[k].estimate().mean;
            let (relative, relative_ci95) = if b != 0.0 {
                (d.mean / b, d.ci95 / b.abs())
            } else {
                (f64::NAN, f64::NAN)
            };
            comparisons.push(Comparison {
                point: p,
                variant: plan.variants[v].clone(),
                baseline: plan.variants[0].clone(),
                metric: k.clone(),
                baseline_mean: b,
                difference: d,
                relative,
                relative_ci95,
                significant: d.n > 1 && d.mean.abs() > d.ci95,
            });
        }
        groups.push(GroupSummary {
            point: p,
            variant: plan.variants[v].clone(),
            replications: j - i,
            warmup_s: warm.estimate(),
            metrics: welford
                .into_iter()
                .map(|(k, w)| (k, w.estimate()))
                .collect(),
            pooled_latency,
        });
        if v + 1 == plan.variants.len() {
            baseline.clear();
        }
        i = j;
    }

    // summary.csv
    let mut summary = csv_writer();
    let mut header = vec!["variant".to_string(), "point".into()];
    header.extend(params.iter().cloned());
    header.extend(["metric", "n", "mean", "sd", "ci95_low", "ci95_high"].map(String::from));
    summary
        .write_record(&header)
        .map_err(|e| AggregateError(e.to_string()))?;
    for g in &groups {
        let lead = |s: &mut csv::Writer<Vec<u8>>, metric: &str, rest: [String; 5]| {
            let mut row = vec![g.variant.clone(), g.point.to_string()];
            row.extend(plan.points[g.point].iter().map(param_text));
            row.push(metric.to_string());
            row.extend(rest);
            s.write_record(&row).expect("writing CSV to memory");
        };
        for (k, e) in &g.metrics {
            lead(
                &mut summary,
                k,
                [
                    e.n.to_string(),
                    e.mean.to_string(),
                    e.sd.to_string(),
                    (e.mean - e.ci95).to_string(),
                    (e.mean + e.ci95).to_string(),
                ],
            );
        }
        for (w, l) in &g.pooled_latency {
            for (name, x) in [
                ("p50_ms", l.p50_ms),
                ("p90_ms", l.p90_ms),
                ("p95_ms", l.p95_ms),
                ("p99_ms", l.p99_ms),
                ("p999_ms", l.p999_ms),
                ("max_ms", l.max_ms),
            ] {
                let key = format!("workloads.{w}.pooled_latency.{name}");
                if selected(&plan.spec.metrics, &key) || plan.spec.metrics.is_none() {
                    lead(
                        &mut summary,
                        &key,
                        [
                            g.replications.to_string(),
                            x.to_string(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ],
                    );
                }
            }
        }
    }
    write_atomic(&dir.join("tidy.csv"), &finish(tidy)).map_err(io("tidy.csv"))?;
    write_atomic(&dir.join("summary.csv"), &finish(summary)).map_err(io("summary.csv"))?;

    if plan.variants.len() > 1 {
        let mut c = csv_writer();
        let mut header = vec!["point".to_string()];
        header.extend(params.iter().cloned());
        header.extend(
            [
                "variant",
                "baseline",
                "metric",
                "n",
                "baseline_mean",
                "difference",
                "difference_ci95",
                "relative",
                "relative_ci95",
                "significant",
            ]
            .map(String::from),
        );
        c.write_record(&header)
            .map_err(|e| AggregateError(e.to_string()))?;
        for x in &comparisons {
            let mut row = vec![x.point.to_string()];
            row.extend(plan.points[x.point].iter().map(param_text));
            row.extend([
                x.variant.clone(),
                x.baseline.clone(),
                x.metric.clone(),
                x.difference.n.to_string(),
                x.baseline_mean.to_string(),
                x.difference.mean.to_string(),
                x.difference.ci95.to_string(),
                x.relative.to_string(),
                x.relative_ci95.to_string(),
                x.significant.to_string(),
            ]);
            c.write_record(&row)
                .map_err(|e| AggregateError(e.to_string()))?;
        }
        write_atomic(&dir.join("comparisons.csv"), &finish(c)).map_err(io("comparisons.csv"))?;
    }

    let results = ExperimentResults {
        experiment: plan.spec.name.clone(),
        experiment_hash: plan.hash.clone(),
        variants: plan.variants.clone(),
        axes: plan.axes.iter().map(|(p, _)| p.clone()).collect(),
        points: (0..plan.points.len())
            .map(|p| {
                plan.params(p)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect()
            })
            .collect(),
        groups,
        comparisons,
    };
    let json = serde_json::to_vec_pretty(&results).map_err(|e| AggregateError(e.to_string()))?;
    write_atomic(&dir.join("results.json"), &json).map_err(io("results.json"))?;
    draw_plots(plan, dir, &results, &cdfs, &series).map_err(io("plots"))?;
    Ok(results)
}

fn short(path: &str) -> String {
    path.rsplit('.')
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(".")
}

fn draw_plots(
    plan: &Plan,
    dir: &Path,
    results: &ExperimentResults,
    cdfs: &CdfLines,
    series: &SeriesSums,
) -> std::io::Result<()> {
    let plots = dir.join("plots");
    for (n, spec) in plan.spec.plots.iter().flatten().enumerate() {
        match spec {
            PlotSpec::MetricVsParam(m) => {
                let Some(x_axis) =
                    m.x.clone()
                        .or_else(|| plan.axes.first().map(|a| a.0.clone()))
                else {
                    continue;
                };
                let Some(xi) = plan.axes.iter().position(|a| a.0 == x_axis) else {
                    continue;
                };
                // One line per variant and per combination of the other axes.
                let mut lines: IndexMap<String, Vec<BandPoint>> = IndexMap::new();
                for g in &results.groups {
                    let point = &plan.points[g.point];
                    let Some(x) = point[xi].as_f64() else {
                        continue;
                    };
                    let others: Vec<String> = plan
                        .axes
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != xi)
                        .map(|(k, (p, _))| format!("{}={}", short(p), param_text(&point[k])))
                        .collect();
                    let name = if others.is_empty() {
                        g.variant.clone()
                    } else {
                        format!("{} {}", g.variant, others.join(" "))
                    };
                    if let Some(e) = g.metrics.get(&m.metric) {
                        let half = if e.ci95.is_finite() { e.ci95 } else { 0.0 };
                        lines.entry(name).or_default().push(BandPoint {
                            x,
                            mean: e.mean,
                            low: e.mean - half,
                            high: e.mean + half,
                        });
                    }
                }
                let series: Vec<BandSeries> = lines
                    .into_iter()
                    .map(|(name, mut points)| {
                        points.sort_by(|a, b| a.x.total_cmp(&b.x));
                        BandSeries { name, points }
                    })
                    .collect();
                let base = plots.join(format!(
                    "{n:02}-{}-vs-{}",
                    slug(&m.metric),
                    slug(&short(&x_axis))
                ));
                metric_vs_param(
                    &base,
                    &format!("{} — {}", plan.spec.name, short(&m.metric)),
                    &x_axis,
                    &m.metric,
                    &series,
                )?;
            }
            PlotSpec::LatencyCdf(c) => {
                let point = c.point.unwrap_or(0);
                let lines: Vec<LineSeries> = cdfs
                    .iter()
                    .filter(|((p, _, w), _)| {
                        *p == point && c.workload.as_ref().is_none_or(|x| x == w)
                    })
                    .map(|((_, v, _), pts)| LineSeries {
                        name: plan.variants[*v].clone(),
                        points: pts.clone(),
                    })
                    .collect();
                let base = plots.join(format!("{n:02}-latency-cdf-point{point}"));
                latency_cdf(
                    &base,
                    &format!("{} — latency CDF (point {point})", plan.spec.name),
                    &lines,
                )?;
            }
            PlotSpec::TimeSeries(t) => {
                let point = t.point.unwrap_or(0);
                let metric = t.metric.clone().unwrap_or_else(|| "latency_mean_ms".into());
                let lines: Vec<LineSeries> = series
                    .iter()
                    .filter(|((p, _, w, m), _)| {
                        *p == point && *m == metric && t.workload.as_ref().is_none_or(|x| x == w)
                    })
                    .map(|((_, v, _, _), (window, sums, count))| LineSeries {
                        name: plan.variants[*v].clone(),
                        points: sums
                            .iter()
                            .enumerate()
                            .map(|(k, s)| ((k as f64 + 0.5) * window, s / *count as f64))
                            .collect(),
                    })
                    .collect();
                let base = plots.join(format!("{n:02}-{}-over-time-point{point}", slug(&metric)));
                // Fault windows come with the faults component; none can be scheduled yet.
                time_series(
                    &base,
                    &format!("{} — {metric} over time", plan.spec.name),
                    &metric,
                    &lines,
                    &[],
                )?;
            }
        }
    }
    Ok(())
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Relative CI half-width of `metric` for each (point, variant), over replications below
/// `reps` (for replications by precision).
pub fn aggregate_metric(
    plan: &Plan,
    dir: &Path,
    metric: &str,
    reps: u32,
) -> Result<Vec<f64>, AggregateError> {
    let mut per: BTreeMap<(usize, usize), Welford> = BTreeMap::new();
    for (t, path) in list_records(dir).map_err(|e| AggregateError(e.to_string()))? {
        if t.replication >= reps {
            continue;
        }
        let rec = read_record(&path).map_err(AggregateError)?;
        let m = headline_metrics(&rec.result);
        let Some(x) = m.get(metric) else {
            let keys: Vec<&String> = m.keys().collect();
            return Err(AggregateError(format!(
                "precision metric \"{metric}\" is not a metric of this model{}; metrics are: {}",
                crate::error::did_you_mean(metric, keys.iter().map(|k| k.as_str())),
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        per.entry((t.point, t.variant)).or_default().add(*x);
    }
    let _ = plan;
    Ok(per
        .values()
        .map(|w| {
            let e = w.estimate();
            if e.mean == 0.0 {
                0.0
            } else {
                e.ci95 / e.mean.abs()
            }
        })
        .collect())
}
