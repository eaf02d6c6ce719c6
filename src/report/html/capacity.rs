//! The report of a `capacity` search (its capacity.json): what was searched, the answer,
//! the topology, each objective's metric against the offered load with its confidence
//! band and threshold, the busiest components' utilization against the load, and every
//! load tried.

use super::page::{Section, chart, escape, note, render, table};
use super::run::topology_section;
use crate::experiment::results::{CapacityOutput, CapacityResult, Level, SloMetric};
use crate::report::capacity_answer;
use crate::report::plot::{BandPoint, BandSeries, metric_vs_param_svg};
use crate::report::table::num;

/// Most components drawn on the utilization chart (the busiest at the highest load).
pub const MAX_UTILIZATION_LINES: usize = 8;

/// The whole page for `out`; `dot` is the model's topology as DOT, when known.
pub fn report(out: &CapacityOutput, dot: Option<&str>) -> std::io::Result<String> {
    let title = format!("{}: capacity", out.model);
    let subtitle = format!("scalesim {} · capacity search", out.scalesim_version);
    let sections = vec![
        Section::new("search", "Search", search_section(out)),
        Section::new("answer", "Answer", answer(&out.capacity)),
        Section::new("topology", "Topology", topology_section(dot)),
        Section::new(
            "objectives",
            "Objectives against load",
            objectives(&out.capacity)?,
        ),
        Section::new(
            "utilization",
            "Utilization against load",
            utilization(&out.capacity)?,
        ),
        Section::new("levels", "Loads tried", levels(&out.capacity)),
    ];
    Ok(render(&title, &subtitle, &sections))
}

/// The model, the objectives and the search's settings.
pub fn search_section(out: &CapacityOutput) -> String {
    let slo: Vec<&str> = out.capacity.slo.iter().map(|s| s.text.as_str()).collect();
    let mut rows = vec![
        vec!["model".into(), out.model.clone()],
        vec!["objectives".into(), slo.join(", ")],
        vec![
            "scaled workload".into(),
            out.workload
                .clone()
                .unwrap_or_else(|| "every open-loop workload".into()),
        ],
        vec!["base seed".into(), out.seed.to_string()],
        vec!["replications per load".into(), out.replications.to_string()],
        vec![
            "tolerance".into(),
            format!("{}%", num(out.tolerance * 100.0)),
        ],
        vec![
            "the model's own load".into(),
            format!("{} requests/s", num(out.capacity.base_rate_per_s)),
        ],
    ];
    if !out.overrides.is_empty() {
        rows.push(vec!["overrides (--set)".into(), out.overrides.join(", ")]);
    }
    table(&["", "value"], &rows)
}

/// The answer in sentences, with the analytic saturation load and the search's limit.
pub fn answer(r: &CapacityResult) -> String {
    let mut s: String = capacity_answer(r)
        .iter()
        .map(|line| format!("<p>{}</p>\n", escape(line)))
        .collect();
    if let Some(sat) = r.saturation_rate_per_s {
        s.push_str(&note(&format!(
            "The analytic estimates put the first saturation at {} requests/s; the search goes no higher than {} requests/s.",
            num(sat),
            num(r.limit_rate_per_s)
        )));
    }
    s
}

/// The levels in order of load.
fn by_load(r: &CapacityResult) -> Vec<&Level> {
    let mut levels: Vec<&Level> = r.levels.iter().collect();
    levels.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    levels
}

/// One chart per objective: its metric (mean and 95% CI over the replications) against
/// the offered load, with the threshold drawn flat across.
pub fn objectives(r: &CapacityResult) -> std::io::Result<String> {
    let levels = by_load(r);
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return Ok(note("The search ran no load."));
    };
    let mut s = String::new();
    for (i, slo) in r.slo.iter().enumerate() {
        let points = levels
            .iter()
            .filter_map(|l| l.objectives.get(i).map(|e| (l.rate_per_s, e)))
            .map(|(x, e)| {
                let half = if e.ci95.is_finite() { e.ci95 } else { f64::NAN };
                BandPoint {
                    x,
                    mean: e.mean,
                    low: e.mean - half,
                    high: e.mean + half,
                }
            })
            .collect();
        let threshold = |x| BandPoint {
            x,
            mean: slo.threshold,
            low: f64::NAN,
            high: f64::NAN,
        };
        let series = [
            BandSeries {
                name: "simulated (95% CI)".into(),
                points,
            },
            BandSeries {
                name: format!("objective {}", slo.text),
                points: vec![threshold(first.rate_per_s), threshold(last.rate_per_s)],
            },
        ];
        let unit = match slo.metric {
            SloMetric::Errors => "share of requests failed",
            SloMetric::Mean | SloMetric::Percentile(_) => "ms",
        };
        let svg = metric_vs_param_svg(
            &format!("{} against offered load", slo.text),
            "offered load (requests/s)",
            unit,
            &series,
        )?;
        s.push_str(&chart(&svg));
    }
    Ok(s)
}

/// The utilization of the busiest components (at the highest load tried) against the load.
pub fn utilization(r: &CapacityResult) -> std::io::Result<String> {
    let levels = by_load(r);
    let Some(last) = levels.last() else {
        return Ok(note("The search ran no load."));
    };
    let mut names: Vec<(&String, f64)> = last.utilization.iter().map(|(n, u)| (n, *u)).collect();
    if names.is_empty() {
        return Ok(note("No component declares a metric that saturates."));
    }
    names.sort_by(|a, b| b.1.total_cmp(&a.1));
    names.truncate(MAX_UTILIZATION_LINES);
    let series: Vec<BandSeries> = names
        .iter()
        .map(|(name, _)| BandSeries {
            name: (*name).clone(),
            points: levels
                .iter()
                .filter_map(|l| {
                    l.utilization.get(*name).map(|u| BandPoint {
                        x: l.rate_per_s,
                        mean: *u,
                        low: f64::NAN,
                        high: f64::NAN,
                    })
                })
                .collect(),
        })
        .collect();
    let svg = metric_vs_param_svg(
        "utilization against offered load",
        "offered load (requests/s)",
        "utilization",
        &series,
    )?;
    Ok(chart(&svg))
}

/// Every load tried, in order of load.
pub fn levels(r: &CapacityResult) -> String {
    let mut header: Vec<String> = vec!["factor".into(), "requests/s".into()];
    header.extend(r.slo.iter().map(|s| s.text.clone()));
    header.extend(["holds".into(), "failed".into(), "busiest".into()]);
    let rows: Vec<Vec<String>> = by_load(r)
        .iter()
        .map(|l| {
            let mut row = vec![format!("{:.3}", l.factor), num(l.rate_per_s)];
            row.extend(l.objectives.iter().map(|e| {
                if e.ci95.is_finite() {
                    format!("{} ± {}", num(e.mean), num(e.ci95))
                } else {
                    num(e.mean)
                }
            }));
            row.push(if l.holds { "yes" } else { "no" }.into());
            row.push(format!("{:.1}%", l.error_share * 100.0));
            row.push(
                l.busiest()
                    .map(|(n, u)| format!("{n} {:.0}%", u * 100.0))
                    .unwrap_or_default(),
            );
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    table(&header, &rows)
}
