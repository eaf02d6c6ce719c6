//! The files of an experiment's output folder, written from what aggregation found
//! ([`Aggregate`]): tidy.csv (one row per run and metric), summary.csv (one row per point,
//! variant and metric: mean, sd, 95% CI), comparisons.csv (paired differences against the
//! baseline variant, several variants only), results.json, and the plots the experiment
//! asks for.

use super::plot::{BandPoint, BandSeries, LineSeries, latency_cdf, metric_vs_param, time_series};
use crate::experiment::results::{
    Aggregate, CdfLines, ExperimentLayout, ExperimentResults, PlotSpec, SeriesSums,
};
use crate::files::write_atomic;
use indexmap::IndexMap;
use serde_json::Value;
use std::path::Path;

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

/// Writes the result files of `found`, an experiment laid out as `layout`, into `dir`; an
/// error names the file.
pub fn write_experiment_files(
    layout: &ExperimentLayout,
    dir: &Path,
    found: &Aggregate,
) -> std::io::Result<()> {
    let io = |file: &str| {
        let path = dir.join(file);
        move |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        }
    };
    let results = &found.results;
    let params: Vec<String> = layout.axes.iter().map(|p| format!("param_{p}")).collect();

    let mut tidy = csv_writer();
    let mut header = vec![
        "variant".to_string(),
        "point".into(),
        "replication".into(),
        "seed".into(),
    ];
    header.extend(params.iter().cloned());
    header.extend(["metric".to_string(), "value".into()]);
    tidy.write_record(&header).map_err(std::io::Error::other)?;
    for t in &found.tidy {
        let mut row = vec![
            layout.variants[t.variant].clone(),
            t.point.to_string(),
            t.replication.to_string(),
            t.seed.to_string(),
        ];
        row.extend(layout.points[t.point].iter().map(param_text));
        row.extend([t.metric.clone(), t.value.to_string()]);
        tidy.write_record(&row).map_err(std::io::Error::other)?;
    }

    let mut summary = csv_writer();
    let mut header = vec!["variant".to_string(), "point".into()];
    header.extend(params.iter().cloned());
    header.extend(["metric", "n", "mean", "sd", "ci95_low", "ci95_high"].map(String::from));
    summary
        .write_record(&header)
        .map_err(std::io::Error::other)?;
    for g in &results.groups {
        let lead = |s: &mut csv::Writer<Vec<u8>>, metric: &str, rest: [String; 5]| {
            let mut row = vec![g.variant.clone(), g.point.to_string()];
            row.extend(layout.points[g.point].iter().map(param_text));
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
                if layout.selects(&key) {
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

    if layout.variants.len() > 1 {
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
        c.write_record(&header).map_err(std::io::Error::other)?;
        for x in &results.comparisons {
            let mut row = vec![x.point.to_string()];
            row.extend(layout.points[x.point].iter().map(param_text));
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
            c.write_record(&row).map_err(std::io::Error::other)?;
        }
        write_atomic(&dir.join("comparisons.csv"), &finish(c)).map_err(io("comparisons.csv"))?;
    }

    let json = serde_json::to_vec_pretty(results).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("results.json"), &json).map_err(io("results.json"))?;
    draw_plots(layout, dir, results, &found.cdfs, &found.series).map_err(io("plots"))?;
    Ok(())
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

/// Adds to `lines` the points of `metric` against axis `xi`: a line per variant and per
/// combination of the other axes, its name ending with `label` when given.
fn add_lines(
    lines: &mut IndexMap<String, Vec<BandPoint>>,
    layout: &ExperimentLayout,
    results: &ExperimentResults,
    xi: usize,
    metric: &str,
    label: Option<&str>,
) {
    for g in &results.groups {
        let point = &layout.points[g.point];
        let Some(x) = point[xi].as_f64() else {
            continue;
        };
        let mut name = g.variant.clone();
        for (k, p) in layout.axes.iter().enumerate().filter(|(k, _)| *k != xi) {
            name.push_str(&format!(" {}={}", short(p), param_text(&point[k])));
        }
        if let Some(label) = label {
            name.push_str(&format!(" · {label}"));
        }
        if let Some(e) = g.metrics.get(metric) {
            let half = if e.ci95.is_finite() { e.ci95 } else { 0.0 };
            lines.entry(name).or_default().push(BandPoint {
                x,
                mean: e.mean,
                low: e.mean - half,
                high: e.mean + half,
            });
        }
    }
}

fn draw_plots(
    layout: &ExperimentLayout,
    dir: &Path,
    results: &ExperimentResults,
    cdfs: &CdfLines,
    series: &SeriesSums,
) -> std::io::Result<()> {
    let plots = dir.join("plots");
    for (n, spec) in layout.plots.iter().enumerate() {
        match spec {
            PlotSpec::MetricVsParam(m) => {
                let Some(x_axis) = m.x.clone().or_else(|| layout.axes.first().cloned()) else {
                    continue;
                };
                let Some(xi) = layout.axes.iter().position(|a| *a == x_axis) else {
                    continue;
                };
                // One line per variant and per combination of the other axes, for the
                // metric and for the one drawn beside it.
                let mut lines: IndexMap<String, Vec<BandPoint>> = IndexMap::new();
                add_lines(&mut lines, layout, results, xi, &m.metric, None);
                if let Some(beside) = &m.beside {
                    add_lines(
                        &mut lines,
                        layout,
                        results,
                        xi,
                        beside,
                        Some(&short(beside)),
                    );
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
                    &format!("{} — {}", layout.name, short(&m.metric)),
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
                        name: layout.variants[*v].clone(),
                        points: pts.clone(),
                    })
                    .collect();
                let base = plots.join(format!("{n:02}-latency-cdf-point{point}"));
                latency_cdf(
                    &base,
                    &format!("{} — latency CDF (point {point})", layout.name),
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
                        name: layout.variants[*v].clone(),
                        points: sums
                            .iter()
                            .enumerate()
                            .map(|(k, s)| ((k as f64 + 0.5) * window, s / *count as f64))
                            .collect(),
                    })
                    .collect();
                let base = plots.join(format!("{n:02}-{}-over-time-point{point}", slug(&metric)));
                let shaded = layout.fault_windows.get(point).map_or(&[][..], |w| w);
                time_series(
                    &base,
                    &format!("{} — {metric} over time", layout.name),
                    &metric,
                    &lines,
                    shaded,
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
