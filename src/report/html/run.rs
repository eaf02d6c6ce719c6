//! The report of a `run` (its result.json): provenance, the headline table per workload
//! with the analytic estimates beside it, the topology, per-component metrics, latency
//! CDFs, time series with fault windows shaded, faults and warnings.

use super::page::{Section, chart, escape, note, render, table, warnings};
use super::topology;
use crate::metrics::LatencySummary;
use crate::report::RunOutput;
use crate::report::plot::{LineSeries, latency_cdf_svg, time_series_svg};
use crate::report::table::num;
use crate::results::RunResult;

/// The whole page for `out`; `dot` is the model's topology as DOT, when known.
pub fn report(out: &RunOutput, dot: Option<&str>) -> std::io::Result<String> {
    let m = &out.manifest;
    let title = format!("{}: scalesim report", m.model);
    let subtitle = format!(
        "scalesim {} · model hash {} · {}",
        m.scalesim_version,
        &m.model_hash[..m.model_hash.len().min(12)],
        m.rng
    );
    let mut sections = vec![
        Section::new("model", "Model and seeds", model_section(out)),
        Section::new("headline", "Headline", headline(out)),
        Section::new("topology", "Topology", topology_section(dot)),
        Section::new("components", "Components", components(&out.runs[0])),
        Section::new("latency", "Latency CDFs", cdfs(&out.runs[0])?),
    ];
    let r = &out.runs[0];
    if r.series.values().any(|s| !s.completed.is_empty()) {
        sections.push(Section::new("series", "Over time", series(r)?));
    }
    if !r.faults.is_empty() {
        sections.push(Section::new("faults", "Faults", faults(r)));
    }
    sections.push(Section::new(
        "warnings",
        "Warnings",
        warnings(&out.warnings),
    ));
    Ok(render(&title, &subtitle, &sections))
}

/// The model, its seeds and overrides.
pub fn model_section(out: &RunOutput) -> String {
    let m = &out.manifest;
    let seeds: Vec<String> = out.runs.iter().map(|r| r.seed.to_string()).collect();
    let r = &out.runs[0];
    let mut rows = vec![
        vec!["model".into(), m.model.clone()],
        vec!["base seed".into(), m.seed.to_string()],
        vec!["replications".into(), m.replications.to_string()],
        vec!["seeds of the replications".into(), seeds.join(", ")],
        vec![
            "measured".into(),
            format!(
                "{} s to {} s of simulated time",
                num(r.window_start_s),
                num(r.window_end_s)
            ),
        ],
    ];
    if !m.overrides.is_empty() {
        rows.push(vec!["overrides (--set)".into(), m.overrides.join(", ")]);
    }
    table(&["", "value"], &rows)
}

/// A value with its 95% CI half-width from the summary over replications, when there is one.
fn with_ci(out: &RunOutput, key: &str, value: f64) -> String {
    match out.summary.get(key) {
        Some(e) if out.runs.len() > 1 && e.ci95.is_finite() => {
            format!("{} ± {}", num(e.mean), num(e.ci95))
        }
        Some(e) if out.runs.len() > 1 => num(e.mean),
        _ => num(value),
    }
}

/// Per workload: throughput, errors by cause, percentiles (± CI) and the estimates.
pub fn headline(out: &RunOutput) -> String {
    let r = &out.runs[0];
    let mut rows = Vec::new();
    for (i, (name, w)) in r.workloads.iter().enumerate() {
        let p = format!("workloads.{name}");
        let est = out.estimates.workloads.get(i);
        let errors: Vec<String> = w
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let lat = |k: &str, v: f64| with_ci(out, &format!("{p}.latency.{k}"), v);
        rows.push(vec![
            name.clone(),
            with_ci(out, &format!("{p}.throughput_per_s"), w.throughput_per_s),
            with_ci(out, &format!("{p}.goodput_per_s"), w.goodput_per_s),
            est.map_or("-".into(), |e| num(e.1)),
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            },
            lat("mean_ms", w.latency.mean_ms),
            est.map_or("-".into(), |e| num(e.2)),
            lat("p50_ms", w.latency.p50_ms),
            lat("p95_ms", w.latency.p95_ms),
            lat("p99_ms", w.latency.p99_ms),
            lat("p999_ms", w.latency.p999_ms),
        ]);
    }
    let mut s = table(
        &[
            "workload",
            "throughput/s",
            "goodput/s",
            "est. rate/s",
            "errors by cause",
            "mean ms",
            "est. mean ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
        ],
        &rows,
    );
    let c = r.conservation;
    s.push_str(&note(&format!(
        "{}conservation: arrived {} = completed {} + failed {} + in flight {}: {}; cost {} per hour, {} per million successful requests",
        if out.runs.len() > 1 {
            format!("Figures are means over {} replications ± the 95% CI half-width; counts are the first replication's. ", out.runs.len())
        } else {
            String::new()
        },
        c.arrived,
        c.completed,
        c.failed,
        c.in_flight,
        if c.holds { "holds" } else { "BROKEN" },
        num(r.cost.per_hour),
        num(r.cost.per_million_requests)
    )));
    s
}

/// The topology picture, or a note saying why there is none.
pub fn topology_section(dot: Option<&str>) -> String {
    match dot.and_then(topology::svg) {
        Some(svg) => format!("<div class=\"topology\">{svg}</div>\n"),
        None => note(&format!(
            "No topology: the output folder has no {} (written by `run --out` since the report exists).",
            super::TOPOLOGY_FILE
        )),
    }
}

/// Most instances shown side by side in a component's table.
pub const MAX_INSTANCE_COLUMNS: usize = 8;

/// Per component, a table of its declared metrics: the component's total, then each
/// instance (the metrics are those its kind declares, in declaration order, as the
/// results hold them); histograms as percentiles.
pub fn components(r: &RunResult) -> String {
    let mut s = String::new();
    for (name, c) in &r.components {
        let _ = std::fmt::Write::write_fmt(
            &mut s,
            format_args!(
                "<h3>{} <span class=\"note\">{}</span></h3>\n",
                escape(name),
                escape(&c.kind)
            ),
        );
        // A row per metric, a column for the component and each of its first instances.
        let shown = if c.instances.len() > 1 {
            &c.instances[..c.instances.len().min(MAX_INSTANCE_COLUMNS)]
        } else {
            &[][..]
        };
        let mut header = vec!["metric", "all"];
        header.extend(shown.iter().map(|i| i.name.as_str()));
        let rows: Vec<Vec<String>> = c
            .total
            .iter()
            .map(|(k, v)| {
                let mut row = vec![k.clone(), num(*v)];
                row.extend(
                    shown
                        .iter()
                        .map(|i| i.metrics.get(k).map_or("-".into(), |x| num(*x))),
                );
                row
            })
            .collect();
        if !rows.is_empty() {
            s.push_str(&table(&header, &rows));
        }
        if c.instances.len() > shown.len() && shown.len() > 1 {
            s.push_str(&note(&format!(
                "The first {} of {} instances are shown; result.json has them all.",
                shown.len(),
                c.instances.len()
            )));
        }
        let hist: Vec<Vec<String>> = c
            .detail
            .histograms
            .iter()
            .map(|(k, h)| percentile_row(k, h))
            .collect();
        if !hist.is_empty() {
            s.push_str(&table(
                &[
                    "histogram",
                    "count",
                    "mean ms",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                ],
                &hist,
            ));
        }
    }
    s
}

fn percentile_row(name: &str, h: &LatencySummary) -> Vec<String> {
    vec![
        name.to_string(),
        h.count.to_string(),
        num(h.mean_ms),
        num(h.p50_ms),
        num(h.p99_ms),
        num(h.max_ms),
    ]
}

/// The points of a latency CDF through the reported percentiles.
pub fn cdf_points(l: &LatencySummary) -> Vec<(f64, f64)> {
    if l.count == 0 {
        return Vec::new();
    }
    vec![
        (l.p50_ms, 0.5),
        (l.p90_ms, 0.9),
        (l.p95_ms, 0.95),
        (l.p99_ms, 0.99),
        (l.p999_ms, 0.999),
        (l.max_ms, 1.0),
    ]
}

/// One CDF chart with a line per workload (and per class of a workload that has several).
pub fn cdfs(r: &RunResult) -> std::io::Result<String> {
    let mut lines = Vec::new();
    for (name, w) in &r.workloads {
        lines.push(LineSeries {
            name: name.clone(),
            points: cdf_points(&w.latency),
        });
        for (class, c) in &w.classes {
            lines.push(LineSeries {
                name: format!("{name} {class}"),
                points: cdf_points(&c.latency),
            });
        }
    }
    let svg = latency_cdf_svg(
        "latency CDF (through p50, p90, p95, p99, p99.9, max)",
        &lines,
    )?;
    Ok(chart(&svg))
}

/// Goodput and latency per time window, fault windows shaded.
pub fn series(r: &RunResult) -> std::io::Result<String> {
    let shaded: Vec<(f64, f64)> = r.faults.iter().map(|f| (f.start_s, f.end_s)).collect();
    let line = |name: &str, window: f64, values: Vec<f64>| LineSeries {
        name: name.to_string(),
        points: values
            .into_iter()
            .enumerate()
            .map(|(k, v)| ((k as f64 + 0.5) * window, v))
            .collect(),
    };
    let mut goodput = Vec::new();
    let mut latency = Vec::new();
    for (name, s) in &r.series {
        let per_s = |n: &u64| *n as f64 / s.window_s;
        goodput.push(line(
            name,
            s.window_s,
            s.completed.iter().map(per_s).collect(),
        ));
        latency.push(line(
            &format!("{name} mean"),
            s.window_s,
            s.latency_mean_ms.clone(),
        ));
        if !s.latency_p99_ms.is_empty() {
            latency.push(line(
                &format!("{name} p99"),
                s.window_s,
                s.latency_p99_ms.clone(),
            ));
        }
    }
    let mut s = chart(&time_series_svg(
        "goodput over time",
        "successful responses/s",
        &goodput,
        &shaded,
    )?);
    s.push_str(&chart(&time_series_svg(
        "latency over time",
        "latency (ms)",
        &latency,
        &shaded,
    )?));
    if !shaded.is_empty() {
        s.push_str(&note("Shaded: fault windows and bursts."));
    }
    Ok(s)
}

/// Each fault window with how the system recovered.
pub fn faults(r: &RunResult) -> String {
    let rows: Vec<Vec<String>> = r
        .faults
        .iter()
        .map(|f| {
            let rec = f.recovery.as_ref();
            vec![
                f.name.clone(),
                if f.instance.is_empty() {
                    f.target.clone()
                } else {
                    f.instance.clone()
                },
                format!("{} {}", f.effect, f.detail).trim().to_string(),
                num(f.start_s),
                num(f.end_s),
                rec.and_then(|x| x.time_to_recover_s)
                    .map_or("-".into(), num),
                rec.map_or("-".into(), |x| x.failed_during.to_string()),
                rec.map_or("-".into(), |x| {
                    if x.metastable {
                        "yes".into()
                    } else {
                        "no".into()
                    }
                }),
            ]
        })
        .collect();
    table(
        &[
            "fault",
            "target",
            "effect",
            "start s",
            "end s",
            "recover s",
            "failed during",
            "metastable",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::declare::numbers;
    use crate::model::{Format, parse_model_str};

    fn output(replications: usize) -> (crate::model::Model, RunOutput) {
        let text = r#"{"duration": "2s", "warmup": "0s",
          "workloads": {"u": {"arrivals": {"poisson": {"rate": 400}}, "target": "lb"}},
          "components": {
            "lb": {"kind": "load_balancer", "policy": "round_robin", "backends": "app"},
            "app": {"kind": "service", "replicas": 2, "workers": 1,
                    "service_time": {"exponential": {"mean": "1ms"}}}}}"#;
        let model = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
        let runs = crate::replicate::replicate(&model, 1, replications).unwrap();
        let est = crate::analysis::estimate(&model);
        let out = RunOutput::new(&model, 1, &[], est, runs);
        (model, out)
    }

    #[test]
    fn the_headline_has_percentiles_with_intervals_and_the_estimates() {
        let (_, one) = output(1);
        let h = headline(&one);
        assert!(h.contains("<td>u</td>") && !h.contains(" ± "), "{h}");
        let (_, three) = output(3);
        let h = headline(&three);
        assert!(
            h.contains(" ± ") && h.contains("est. mean ms") && h.contains("p99.9 ms"),
            "{h}"
        );
        assert!(model_section(&three).contains("replications"));
    }

    #[test]
    fn every_declared_metric_of_every_component_is_shown() {
        let (model, out) = output(1);
        let html = components(&out.runs[0]);
        for def in &model.components {
            for d in numbers(def.kind.metrics()) {
                assert!(
                    html.contains(&format!("<td>{}</td>", d.name)),
                    "{}.{}",
                    def.name,
                    d.name
                );
            }
        }
        assert!(html.contains("<th>app[1]</th>"), "instances side by side");
    }

    #[test]
    fn the_cdf_goes_through_the_percentiles_and_is_drawn() {
        let (_, out) = output(1);
        let l = &out.runs[0].workloads["u"].latency;
        let pts = cdf_points(l);
        assert_eq!(pts.len(), 6);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert!(cdfs(&out.runs[0]).unwrap().contains("<polyline"));
        assert!(topology_section(None).contains("No topology"));
    }
}
