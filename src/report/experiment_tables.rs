//! Terminal views of experiments: the sweep summary, paired comparisons, capacity search.

use super::table::num;
use crate::experiment::results::{CapacityResult, ExperimentLayout, ExperimentResults, Outcome};
use crate::stats::Estimate;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_BORDERS_ONLY};

fn ci(e: &Estimate) -> String {
    if e.n > 1 && e.ci95.is_finite() {
        format!("{} ± {}", num(e.mean), num(e.ci95))
    } else {
        num(e.mean)
    }
}

/// The cell of metric `k` in a group's `metrics`: mean ± CI, "-" when absent. A fault's
/// time to recover says how many runs never recovered (its `never_recovered` share times
/// the runs; those runs have no time and are left out of the mean): "never" when none
/// did, "12.0 ± 1.5 (2 of 5 never)" for a mix.
fn cell(metrics: &indexmap::IndexMap<String, Estimate>, k: &str) -> String {
    let Some(e) = metrics.get(k) else {
        return "-".into();
    };
    let never = k
        .strip_suffix(".time_to_recover_s")
        .and_then(|fault| metrics.get(&format!("{fault}.never_recovered")))
        .filter(|n| n.n > 0 && n.mean > 0.0);
    match never {
        None => ci(e),
        Some(_) if e.n == 0 => "never".into(),
        Some(n) => {
            let count = (n.mean * n.n as f64).round();
            format!("{} ({count} of {} never)", ci(e), n.n)
        }
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

/// The workloads of each variant at the first point, in order of first appearance.
fn workloads_by_variant(results: &ExperimentResults) -> Vec<(String, Vec<String>)> {
    results
        .groups
        .iter()
        .filter(|g| g.point == 0)
        .map(|g| {
            (
                g.variant.clone(),
                g.pooled_latency.keys().cloned().collect(),
            )
        })
        .collect()
}

/// Metrics shown by default: each workload's goodput, mean, p99 and errors (every workload
/// of every variant), and cost.
fn default_metrics(results: &ExperimentResults) -> Vec<String> {
    let Some(g) = results.groups.first() else {
        return Vec::new();
    };
    let mut workloads: Vec<String> = Vec::new();
    for (_, ws) in workloads_by_variant(results) {
        for w in ws {
            if !workloads.contains(&w) {
                workloads.push(w);
            }
        }
    }
    let mut keys: Vec<String> = workloads
        .iter()
        .flat_map(|w| {
            [
                "goodput_per_s",
                "latency.mean_ms",
                "latency.p99_ms",
                "error_share",
            ]
            .iter()
            .map(move |k| format!("workloads.{w}.{k}"))
        })
        .collect();
    keys.push("cost.per_million_requests".into());
    keys.retain(|k| results.groups.iter().any(|g| g.metrics.contains_key(k)));
    if keys.is_empty() {
        keys = g.metrics.keys().take(5).cloned().collect();
    }
    keys
}

/// A note when the variants do not all have the same workloads: their rows would be
/// empty for the variants that lack them.
fn workload_mismatch_note(results: &ExperimentResults) -> Option<String> {
    let by_variant = workloads_by_variant(results);
    let mut only: Vec<String> = Vec::new();
    for (_, ws) in &by_variant {
        for w in ws {
            let owners: Vec<&str> = by_variant
                .iter()
                .filter(|(_, other)| other.contains(w))
                .map(|(v, _)| v.as_str())
                .collect();
            let text = format!("\"{w}\" only in {}", owners.join(", "));
            if owners.len() < by_variant.len() && !only.contains(&text) {
                only.push(text);
            }
        }
    }
    (!only.is_empty()).then(|| {
        format!(
            "note: the designs do not have the same workloads ({}); a metric of a workload a design lacks shows \"-\" and is not compared. Give the workloads the same name to compare them\n",
            only.join("; ")
        )
    })
}

fn label(key: &str) -> String {
    key.trim_start_matches("workloads.")
        .replace(".latency.", " ")
        .replace("_ms", " ms")
        .replace("_per_s", "/s")
}

/// Widest table printed when stdout is not a terminal; on a terminal its width is used.
pub const DEFAULT_TABLE_WIDTH: usize = 160;

/// The width tables must fit: the terminal's when stdout is one, else [`DEFAULT_TABLE_WIDTH`].
fn output_width() -> usize {
    Table::new()
        .width()
        .map(usize::from)
        .filter(|w| *w >= 40)
        .unwrap_or(DEFAULT_TABLE_WIDTH)
}

fn rendered_width(t: &Table) -> usize {
    t.to_string()
        .lines()
        .next()
        .map_or(0, |l| l.chars().count())
}

/// Tables of `keys` (columns repeated in every table) followed by as many of `columns`
/// as fit in `width`; a column that does not fit starts the next table, so none is
/// dropped. Every column has a header and one cell per row.
fn split_tables(
    key_header: &[String],
    key_rows: &[Vec<String>],
    columns: &[(String, Vec<String>)],
    width: usize,
) -> Vec<Table> {
    let build = |cols: &[&(String, Vec<String>)]| {
        let mut header = key_header.to_vec();
        header.extend(cols.iter().map(|(h, _)| h.clone()));
        let mut t = table(header);
        for (i, keys) in key_rows.iter().enumerate() {
            let mut row = keys.clone();
            row.extend(cols.iter().map(|(_, cells)| cells[i].clone()));
            t.add_row(row);
        }
        t
    };
    let mut tables = Vec::new();
    let mut chunk: Vec<&(String, Vec<String>)> = Vec::new();
    for col in columns {
        chunk.push(col);
        if chunk.len() > 1 && rendered_width(&build(&chunk)) > width {
            chunk.pop();
            tables.push(build(&chunk));
            chunk = vec![col];
        }
    }
    if !chunk.is_empty() || tables.is_empty() {
        tables.push(build(&chunk));
    }
    tables
}

/// The metrics of the sweep table: every metric the experiment lists (by name or
/// `prefix*`), else the defaults.
fn sweep_metrics(layout: &ExperimentLayout, results: &ExperimentResults) -> Vec<String> {
    match &layout.metrics {
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
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        None => default_metrics(results),
    }
}

/// The table printed after a sweep: one row per point and variant, mean ± 95% CI, every
/// listed metric; split into several tables (each repeating the point columns) when the
/// metrics do not fit the terminal's width (or [`DEFAULT_TABLE_WIDTH`] off a terminal).
pub fn experiment_table(layout: &ExperimentLayout, results: &ExperimentResults) -> String {
    experiment_table_in(layout, results, output_width())
}

/// [`experiment_table`] fitted to `width` columns.
pub fn experiment_table_in(
    layout: &ExperimentLayout,
    results: &ExperimentResults,
    width: usize,
) -> String {
    let shown = sweep_metrics(layout, results);
    let mut key_header: Vec<String> = layout
        .axes
        .iter()
        .map(|p| p.rsplit('.').next().unwrap_or(p).to_string())
        .collect();
    key_header.push("variant".into());
    key_header.push("n".into());
    let key_rows: Vec<Vec<String>> = results
        .groups
        .iter()
        .map(|g| {
            let mut row: Vec<String> = layout.points[g.point]
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect();
            row.push(g.variant.clone());
            // Marked when some of its runs stopped early, explained below the table.
            row.push(if g.stopped_early > 0 {
                format!("{}*", g.replications)
            } else {
                g.replications.to_string()
            });
            row
        })
        .collect();
    let columns: Vec<(String, Vec<String>)> = shown
        .iter()
        .map(|k| {
            let cells = results.groups.iter().map(|g| cell(&g.metrics, k)).collect();
            (label(k), cells)
        })
        .collect();
    let tables = split_tables(&key_header, &key_rows, &columns, width);
    let mut s = format!(
        "{}: {} point(s) × {} variant(s); mean ± 95% CI over replications{}\n",
        layout.name,
        layout.points.len(),
        layout.variants.len(),
        if tables.len() > 1 {
            format!("; {} metrics in {} tables", shown.len(), tables.len())
        } else {
            String::new()
        }
    );
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&t.to_string());
        s.push('\n');
    }
    s.push_str(&stopped_early_note(layout, results));
    if results.variants.len() > 1 {
        s.push_str(&comparison_lines(results, &shown));
    }
    s
}

/// The footnote of the rows marked `*`: which points and variants had runs that stopped
/// early at `max_in_flight`, so their means are not read as those of whole runs.
fn stopped_early_note(layout: &ExperimentLayout, results: &ExperimentResults) -> String {
    let marked: Vec<String> = results
        .groups
        .iter()
        .filter(|g| g.stopped_early > 0)
        .map(|g| {
            let params: Vec<String> = layout
                .axes
                .iter()
                .zip(&layout.points[g.point])
                .map(|(p, x)| format!("{p}={x}"))
                .collect();
            let at = if params.is_empty() {
                format!("variant {}", g.variant)
            } else {
                format!("{}, variant {}", params.join(", "), g.variant)
            };
            format!("{at}: {} of {}", g.stopped_early, g.replications)
        })
        .collect();
    if marked.is_empty() {
        return String::new();
    }
    format!(
        "* runs stopped early at the model's max_in_flight (the system was overloaded; their metrics cover each run up to its stop): {}\n",
        marked.join("; ")
    )
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
            row.push(cell(&g.metrics, k));
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
                None => "-".into(),
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
    if let Some(note) = workload_mismatch_note(results) {
        s.push_str(&note);
    }
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
    header.extend([
        "holds".to_string(),
        "failed".into(),
        "busiest service".into(),
    ]);
    let mut t = table(header);
    let mut levels = r.levels.clone();
    levels.sort_by(|a, b| a.factor.total_cmp(&b.factor));
    for l in &levels {
        let mut row = vec![format!("{:.3}", l.factor), num(l.rate_per_s)];
        row.extend(l.objectives.iter().map(ci));
        row.push(if l.holds { "yes".into() } else { "no".into() });
        row.push(format!("{:.1}%", l.error_share * 100.0));
        row.push(
            l.busiest()
                .map(|(n, u)| format!("{n} {:.0}%", u * 100.0))
                .unwrap_or_default(),
        );
        t.add_row(row);
    }
    let mut s = t.to_string();
    s.push('\n');
    for line in capacity_answer(r) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// What a capacity search found, in sentences: the highest load meeting the objectives
/// (or that none of the loads tried broke them, and why) and the first component to
/// saturate.
pub fn capacity_answer(r: &CapacityResult) -> Vec<String> {
    let slo: Vec<&str> = r.slo.iter().map(|s| s.text.as_str()).collect();
    let mut lines = Vec::new();
    match r.outcome {
        Outcome::Found => {
            lines.push(format!(
                "highest load meeting {} with 95% confidence: {} requests/s ({:.2}× the model's {}/s)",
                slo.join(" and "),
                num(r.max_rate_per_s),
                r.factor,
                num(r.base_rate_per_s)
            ));
            match &r.bottleneck {
                Some(b) => lines.push(format!(
                    "first to saturate: {b} (utilization {:.0}% at the first load that breaks the objective)",
                    r.bottleneck_utilization * 100.0
                )),
                None => lines.push(format!(
                    "first to saturate: none; {}",
                    r.note.as_deref().unwrap_or("no service is near saturation")
                )),
            }
        }
        Outcome::NotBroken => {
            lines.push(format!(
                "{} not broken: it holds at every load tried, up to {} requests/s ({:.2}× the model's {}/s)",
                slo.join(" and "),
                num(r.max_rate_per_s),
                r.factor,
                num(r.base_rate_per_s)
            ));
            if let Some(note) = &r.note {
                lines.push(note.clone());
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_to_recover_says_how_many_runs_never_recovered() {
        let est = |n: usize, mean: f64| Estimate {
            n,
            mean,
            sd: 0.0,
            ci95: if n > 1 { 1.5 } else { f64::INFINITY },
        };
        let k = "faults.f.time_to_recover_s";
        let never = "faults.f.never_recovered";
        let mut m: indexmap::IndexMap<String, Estimate> = indexmap::IndexMap::new();
        // 3 of 5 recovered (mean 12 s over those), 2 never.
        m.insert(k.into(), est(3, 12.0));
        m.insert(never.into(), est(5, 0.4));
        assert_eq!(cell(&m, k), "12.0 ± 1.500 (2 of 5 never)");
        // None recovered: no time at all.
        m.insert(k.into(), est(0, f64::NAN));
        m.insert(never.into(), est(5, 1.0));
        assert_eq!(cell(&m, k), "never");
        // All recovered, and a key without a never count: as any metric.
        m.insert(k.into(), est(5, 7.5));
        m.insert(never.into(), est(5, 0.0));
        assert_eq!(cell(&m, k), "7.500 ± 1.500");
        assert_eq!(cell(&m, "faults.g.time_to_recover_s"), "-");
    }

    #[test]
    fn wide_tables_split_and_keep_every_column() {
        let keys = vec!["replicas".to_string(), "n".to_string()];
        let rows = vec![
            vec!["2".to_string(), "3".into()],
            vec!["8".into(), "3".into()],
        ];
        let columns: Vec<(String, Vec<String>)> = (0..16)
            .map(|i| {
                (
                    format!("metric number {i:02}"),
                    vec![format!("{i}.5 ± 0.25"), format!("{i}.0 ± 1.5")],
                )
            })
            .collect();
        let tables = split_tables(&keys, &rows, &columns, 100);
        assert!(tables.len() > 1);
        let text: Vec<String> = tables.iter().map(ToString::to_string).collect();
        for (i, (h, cells)) in columns.iter().enumerate() {
            let holder: Vec<&String> = text.iter().filter(|t| t.contains(h.as_str())).collect();
            assert_eq!(holder.len(), 1, "column {i} shown once");
            assert!(cells.iter().all(|c| holder[0].contains(c.as_str())));
        }
        for t in &text {
            assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
            assert!(t.contains("replicas"), "keys repeated in every table: {t}");
        }
        // One column wider than the limit still gets a table of its own.
        let wide = vec![("w".repeat(150), vec!["1".into(), "2".into()])];
        assert_eq!(split_tables(&keys, &rows, &wide, 100).len(), 1);
        assert_eq!(split_tables(&keys, &rows, &columns, 10_000).len(), 1);
    }
}
