//! From run records to what the experiment found ([`Aggregate`]): every run's metrics,
//! each point and variant's summary (mean, sd, 95% CI), paired comparisons against the
//! baseline variant, and the pooled curves its plots ask for. Records are read one at a
//! time in task order; memory holds one point's baseline and one group's histograms,
//! whatever the number of runs. What it finds is made of the result types of
//! [`super::results`]; the files (tidy.csv, summary.csv, comparisons.csv, results.json,
//! plots) are written from them by the exporters in `report`.

use super::plan::{Plan, Task};
use super::results::{
    Aggregate, CdfLines, Comparison, ExperimentResults, GroupSummary, PlotSpec, SeriesSums,
    TidyRow, selects,
};
use super::store::{list_records, read_record};
use crate::metrics::{LatencyHistogram, LatencySummary};
use crate::stats::{Welford, headline_metrics};
use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::path::Path;

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

/// Reads every record of `dir` and aggregates them.
pub fn aggregate(plan: &Plan, dir: &Path) -> Result<Aggregate, AggregateError> {
    let records = complete_tasks(plan, dir)?;
    let mut tidy: Vec<TidyRow> = Vec::new();

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
        let mut stopped_early = 0;
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
            stopped_early += usize::from(rec.result.stopped_early.is_some());
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
                .filter(|(k, _)| {
                    selects(plan.spec.metrics.as_deref(), k) || never_of_selected(plan, k)
                })
                .collect();
            // The warm-up each run used (detected by MSER-5, or fixed) is reported too.
            metrics.insert("run.warmup_s".to_string(), rec.warmup_s);
            for (k, x) in &metrics {
                tidy.push(TidyRow {
                    point: p,
                    variant: v,
                    replication: rec.replication,
                    seed: rec.seed,
                    metric: k.clone(),
                    value: *x,
                });
                // NaN is no value (a fault never recovered from, see
                // `stats::headline`): left out of the mean, whose `n` counts the rest.
                let w = welford.entry(k.clone()).or_default();
                if !x.is_nan() {
                    w.add(*x);
                }
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
                    if let Some(bx) = b.get(k).filter(|bx| !bx.is_nan() && !x.is_nan()) {
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
            stopped_early,
        });
        if v + 1 == plan.variants.len() {
            baseline.clear();
        }
        i = j;
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
    Ok(Aggregate {
        results,
        tidy,
        cdfs,
        series,
    })
}

/// True for a fault's `never_recovered` whose `time_to_recover_s` the experiment lists:
/// kept with it, so a summary can say how many runs never recovered.
fn never_of_selected(plan: &Plan, key: &str) -> bool {
    key.strip_suffix(".never_recovered").is_some_and(|fault| {
        selects(
            plan.spec.metrics.as_deref(),
            &format!("{fault}.time_to_recover_s"),
        )
    })
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
        if !x.is_nan() {
            per.entry((t.point, t.variant)).or_default().add(*x);
        }
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
