//! Terminal views of experiments: the sweep summary, paired comparisons, capacity search.

use super::table::num;
use crate::experiment::capacity::CapacityResult;
use crate::experiment::{ExperimentResults, Plan};
use crate::stats::Estimate;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_BORDERS_ONLY};

fn ci(e: &Estimate) -> String {
    if e.n > 1 && e.ci95.is_finite() {
        format!("{} ± {}", num(e.mean), num(e.ci95))
    } else {
        num(e.mean)
    }
}

fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    let n = header.len();
    t.set_header(header.into_iter().map(Cell::new));
    for i in 1..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Metrics shown by default: the first workload's goodput, mean, p99, errors, and cost.
fn default_metrics(results: &ExperimentResults) -> Vec<String> {
    let Some(g) = results.groups.first() else {
        return Vec::new();
    };
    let w = g.pooled_latency.keys().next().cloned().unwrap_or_default();
    let mut keys: Vec<String> = [
        "goodput_per_s",
        "latency.mean_ms",
        "latency.p99_ms",
        "error_share",
    ]
    .iter()
    .map(|k| format!("workloads.{w}.{k}"))
    .collect();
    keys.push("cost.per_million_requests".into());
    keys.retain(|k| g.metrics.contains_key(k));
    if keys.is_empty() {
        keys = g.metrics.keys().take(5).cloned().collect();
    }
    keys
}

fn label(key: &str) -> String {
    key.trim_start_matches("workloads.")
        .replace(".latency.", " ")
        .replace("_ms", " ms")
        .replace("_per_s", "/s")
}

/// The table printed after a sweep: one row per point and variant, mean ± 95% CI.
pub fn experiment_table(plan: &Plan, results: &ExperimentResults) -> String {
    let shown: Vec<String> = match &plan.spec.metrics {
        Some(m) => results
            .groups
            .first()
            .map(|g| {
                g.metrics
                    .keys()
                    .filter(|k| {
                        m.iter().any(|p| {
                            p == *k || p.strip_suffix('*').is_some_and(|x| k.starts_with(x))
                        })
                    })
                    .take(6)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        None => default_metrics(results),
    };
    let mut header: Vec<String> = plan
        .axes
        .iter()
        .map(|(p, _)| p.rsplit('.').next().unwrap_or(p).to_string())
        .collect();
    header.push("variant".into());
    header.push("n".into());
    header.extend(shown.iter().map(|k| label(k)));
    let mut t = table(header);
    for g in &results.groups {
        let mut row: Vec<String> = plan.points[g.point]
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .collect();
        row.push(g.variant.clone());
        row.push(g.replications.to_string());
        row.extend(
            shown
                .iter()
                .map(|k| g.metrics.get(k).map(ci).unwrap_or_default()),
        );
        t.add_row(row);
    }
    let mut s = format!(
        "{}: {} point(s) × {} variant(s); mean ± 95% CI over replications\n",
        plan.spec.name,
        plan.points.len(),
        plan.variants.len()
    );
    s.push_str(&t.to_string());
    s.push('\n');
    if results.variants.len() > 1 {
        s.push_str(&comparison_lines(results, &shown));
    }
    s
}

fn comparison_lines(results: &ExperimentResults, metrics: &[String]) -> String {
    let mut s = String::new();
    for c in &results.comparisons {
        if !metrics.contains(&c.metric) || !c.relative.is_finite() || !c.metric.contains("latency")
        {
            continue;
        }
        s.push_str(&format!(
            "point {}: {} vs {}: {} {:+.1}% ± {:.1}%{}\n",
            c.point,
            c.variant,
            c.baseline,
            label(&c.metric),
            c.relative * 100.0,
            c.relative_ci95 * 100.0,
            if c.significant {
                " (significant)"
            } else {
                " (not significant)"
            }
        ));
    }
    s
}

/// The table printed by `scalesim compare`.
pub fn comparison_table(results: &ExperimentResults, metrics: &[String]) -> String {
    let shown: Vec<String> = if metrics.is_empty() {
        default_metrics(results)
    } else {
        metrics.to_vec()
    };
    let mut header = vec!["metric".to_string()];
    header.extend(results.variants.iter().cloned());
    for v in results.variants.iter().skip(1) {
        header.push(format!("{v} vs {}", results.variants[0]));
    }
    let mut t = table(header);
    for k in &shown {
        let mut row = vec![label(k)];
        for g in results.groups.iter().filter(|g| g.point == 0) {
            row.push(g.metrics.get(k).map(ci).unwrap_or_default());
        }
        for v in results.variants.iter().skip(1) {
            let c = results
                .comparisons
                .iter()
                .find(|c| c.point == 0 && &c.variant == v && &c.metric == k);
            row.push(match c {
                Some(c) if c.relative.is_finite() => format!(
                    "{:+.1}% ± {:.1}%{}",
                    c.relative * 100.0,
                    c.relative_ci95 * 100.0,
                    if c.significant { " *" } else { "" }
                ),
                Some(c) => format!("{:+} ± {}", num(c.difference.mean), num(c.difference.ci95)),
                None => String::new(),
            });
        }
        t.add_row(row);
    }
    let n = results.groups.first().map(|g| g.replications).unwrap_or(0);
    let mut s = format!(
        "{} design(s), {n} paired replications on common random numbers; mean ± 95% CI; * = significant\n",
        results.variants.len()
    );
    s.push_str(&t.to_string());
    s.push('\n');
    for v in results.variants.iter().skip(1) {
        let find = |m: &str| {
            results
                .comparisons
                .iter()
                .find(|c| c.point == 0 && &c.variant == v && c.metric.ends_with(m))
        };
        if let Some(p99) = find("latency.p99_ms") {
            let cost =
                find("cost.per_hour").filter(|c| c.relative.is_finite() && c.baseline_mean > 0.0);
            s.push_str(&format!(
                "{v}: p99 {:+.0}% ± {:.0}% against {}{}{}\n",
                p99.relative * 100.0,
                p99.relative_ci95 * 100.0,
                results.variants[0],
                match cost {
                    Some(c) => format!(" for {:+.0}% cost", c.relative * 100.0),
                    None => String::new(),
                },
                if p99.significant {
                    ""
                } else {
                    " (not significant)"
                }
            ));
        }
    }
    s
}

/// The report printed by `scalesim capacity`.
pub fn capacity_table(r: &CapacityResult) -> String {
    let mut header = vec!["factor".to_string(), "rate/s".into()];
    header.extend(r.slo.iter().map(|s| s.text.clone()));
    header.extend(["holds".to_string(), "busiest service".into()]);
    let mut t = table(header);
    let mut levels = r.levels.clone();
    levels.sort_by(|a, b| a.factor.total_cmp(&b.factor));
    for l in &levels {
        let mut row = vec![format!("{:.3}", l.factor), num(l.rate_per_s)];
        row.extend(l.objectives.iter().map(ci));
        row.push(if l.holds { "yes".into() } else { "no".into() });
        let busiest = l.utilization.iter().max_by(|a, b| a.1.total_cmp(b.1));
        row.push(
            busiest
                .map(|(n, u)| format!("{n} {:.0}%", u * 100.0))
                .unwrap_or_default(),
        );
        t.add_row(row);
    }
    let mut s = t.to_string();
    s.push('\n');
    let slo: Vec<&str> = r.slo.iter().map(|s| s.text.as_str()).collect();
    s.push_str(&format!(
        "highest load meeting {} with 95% confidence: {} requests/s ({:.2}× the model's {}/s)\n",
        slo.join(" and "),
        num(r.max_rate_per_s),
        r.factor,
        num(r.base_rate_per_s)
    ));
    if let Some(b) = &r.bottleneck {
        s.push_str(&format!(
            "first to saturate: {b} (utilization {:.0}% at the first load that breaks the objective)\n",
            r.bottleneck_utilization * 100.0
        ));
    }
    s
}
