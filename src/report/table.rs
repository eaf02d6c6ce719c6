//! The terminal view: what a person reads after `scalesim run` and `scalesim check`.

use super::RunOutput;
use crate::analysis::{Estimates, ServiceEstimate};
use crate::metrics::MetricDecl;
use crate::metrics::declare::{self, Shape, Unit};
use crate::model::Model;
use crate::results::Detail;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_BORDERS_ONLY};
use indexmap::IndexMap;

/// A number for a table: 3–4 significant figures, ∞ and - for infinite and NaN.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return if v > 0.0 { "∞".into() } else { "-".into() };
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "∞".into()
    }
}

pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(header.iter().map(Cell::new));
    for i in 1..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The table printed by `scalesim run`.
pub fn run_table(model: &Model, out: &RunOutput) -> String {
    let mut s = String::new();
    let r = &out.runs[0];
    let reps = out.runs.len();
    s.push_str(&format!("{}\n", model.name));
    s.push_str(&format!(
        "seed {}{}, measured {}s to {}s, {} events{}\n\n",
        out.manifest.seed,
        if reps > 1 {
            format!(" ({reps} replications; figures are means, ± the 95% CI half-width)")
        } else {
            String::new()
        },
        num(r.window_start_s),
        num(r.window_end_s),
        r.events,
        if reps > 1 { " in the first" } else { "" },
    ));
    let ci = |key: String, v: f64| -> String {
        match out.summary.get(&key) {
            Some(e) if reps > 1 => format!("{} ± {}", num(e.mean), num(e.ci95)),
            _ => num(v),
        }
    };

    let mut t = new_table(&[
        "workload",
        "completed",
        "failed",
        "goodput/s",
        "mean ms",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "est. mean ms",
    ]);
    for (i, (name, w)) in r.workloads.iter().enumerate() {
        let p = format!("workloads.{name}");
        let est = out
            .estimates
            .workloads
            .get(i)
            .map(|e| e.2)
            .unwrap_or(f64::NAN);
        t.add_row(vec![
            name.clone(),
            w.completed.to_string(),
            w.failed.to_string(),
            ci(format!("{p}.goodput_per_s"), w.goodput_per_s),
            ci(format!("{p}.latency.mean_ms"), w.latency.mean_ms),
            ci(format!("{p}.latency.p50_ms"), w.latency.p50_ms),
            ci(format!("{p}.latency.p90_ms"), w.latency.p90_ms),
            ci(format!("{p}.latency.p99_ms"), w.latency.p99_ms),
            ci(format!("{p}.latency.p999_ms"), w.latency.p999_ms),
            num(w.latency.max_ms),
            num(est),
        ]);
        for (class, c) in &w.classes {
            t.add_row(vec![
                format!("  {class}"),
                c.completed.to_string(),
                c.failed.to_string(),
                num(c.goodput_per_s),
                num(c.latency.mean_ms),
                num(c.latency.p50_ms),
                num(c.latency.p90_ms),
                num(c.latency.p99_ms),
                num(c.latency.p999_ms),
                num(c.latency.max_ms),
                String::new(),
            ]);
        }
        let errors: Vec<String> = w
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        if !errors.is_empty() {
            t.add_row(vec![format!("  errors: {}", errors.join(", "))]);
        }
    }
    s.push_str(&t.to_string());
    s.push_str("\n\n");

    s.push_str(&component_table(model, out));
    s.push('\n');
    if !r.faults.is_empty() {
        s.push('\n');
        s.push_str(&fault_table(r));
    }
    let sides = crate::components::database::sides::table(r);
    if !sides.is_empty() {
        s.push('\n');
        s.push_str(&sides);
    }
    if !r.edges.is_empty() {
        s.push('\n');
        s.push_str(&crate::policy::report::edge_table(r));
    }
    let c = r.conservation;
    s.push_str(&format!(
        "\nconservation: arrived {} = completed {} + failed {} + in flight {}: {}\n",
        c.arrived,
        c.completed,
        c.failed,
        c.in_flight,
        if c.holds { "holds" } else { "BROKEN" }
    ));
    if r.cost.per_hour > 0.0 {
        s.push_str(&format!(
            "cost: {} per hour, {} per million successful requests\n",
            num(r.cost.per_hour),
            ci(
                "cost.per_million_requests".into(),
                r.cost.per_million_requests
            ),
        ));
    }
    for w in &out.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

/// The "Faults" section: each fault window (and burst) of the first run, with how the
/// system recovered from it (see [`crate::faults::recovery`]).
fn fault_table(r: &crate::results::RunResult) -> String {
    let mut t = new_table(&[
        "fault",
        "target",
        "effect",
        "start s",
        "end s",
        "recover s",
        "failed during",
        "failed after",
        "metastable",
    ]);
    for f in &r.faults {
        let target = if f.instance.is_empty() {
            f.target.clone()
        } else {
            f.instance.clone()
        };
        let effect = if f.detail.is_empty() {
            f.effect.clone()
        } else {
            format!("{} {}", f.effect, f.detail)
        };
        let mut row = vec![f.name.clone(), target, effect, num(f.start_s), num(f.end_s)];
        match &f.recovery {
            Some(rec) => row.extend([
                match rec.time_to_recover_s {
                    Some(t) => num(t),
                    None if f.end_s >= r.window_end_s - 1e-9 => "on at end".to_string(),
                    None => "never".to_string(),
                },
                rec.failed_during.to_string(),
                rec.failed_after.to_string(),
                if rec.metastable { "yes" } else { "no" }.to_string(),
            ]),
            None => row.extend(["-", "-", "-", "-"].map(String::from)),
        }
        t.add_row(row);
    }
    format!(
        "Faults (recover s: from the fault's start until goodput and p99 are back in their band)\n{t}\n"
    )
}

/// A column of the component table: its label and whether an "est." column follows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Col {
    label: &'static str,
    estimate: bool,
}

/// The columns of the component table for components of kinds declaring `kinds`: each
/// kind's columns in rank order, kinds sharing a label sharing the column. A column new
/// to the table goes just before the next column of its kind already there (else at the
/// end), so the order does not depend on the order of the components.
fn merged_columns(kinds: &[&'static [MetricDecl]]) -> Vec<Col> {
    let mut cols: Vec<Col> = Vec::new();
    for decls in kinds {
        let mine = declare::columns(decls);
        for (i, (_, c)) in mine.iter().enumerate() {
            if let Some(have) = cols.iter_mut().find(|x| x.label == c.label) {
                have.estimate |= c.estimate;
                continue;
            }
            let before = mine[i + 1..]
                .iter()
                .find_map(|(_, next)| cols.iter().position(|x| x.label == next.label))
                .unwrap_or(cols.len());
            cols.insert(
                before,
                Col {
                    label: c.label,
                    estimate: c.estimate,
                },
            );
        }
    }
    cols
}

/// The analytic estimate of metric `name` of a component, where the estimates have one.
fn estimate_of(e: &ServiceEstimate, name: &str) -> Option<f64> {
    match name {
        "utilization" => Some(e.utilization),
        "wait_mean_ms" => Some(e.wait_mean_ms),
        _ => None,
    }
}

/// A value of a metric in a table: a percentage for shares.
fn show(d: &MetricDecl, v: f64) -> String {
    if d.unit == Unit::Share {
        pct(v)
    } else {
        num(v)
    }
}

/// The component section of the run table: a row per component (with its instances
/// below when it has several), the columns its kind declares.
fn component_table(model: &Model, out: &RunOutput) -> String {
    let r = &out.runs[0];
    let reps = out.runs.len();
    let decls_of = |name: &str| {
        model
            .components
            .iter()
            .find(|d| d.name == name)
            .map_or(&[][..], |d| d.kind.metrics())
    };
    let mut kinds: Vec<&'static [MetricDecl]> = Vec::new();
    for name in r.components.keys() {
        let d = decls_of(name);
        if !kinds.iter().any(|k| std::ptr::eq(*k, d)) {
            kinds.push(d);
        }
    }
    let cols = merged_columns(&kinds);
    let mut header = vec!["component", "instance"];
    for c in &cols {
        header.push(c.label);
        if c.estimate {
            header.push("est.");
        }
    }
    let mut t = new_table(&header);
    for (name, c) in &r.components {
        let decls = decls_of(name);
        let mine = declare::columns(decls);
        // A kind that fills only some columns is named, so its empty cells read right.
        let kind = if mine.len() < cols.len() {
            format!(" {}", c.kind)
        } else {
            String::new()
        };
        let est = out
            .estimates
            .services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e);
        let other = out
            .estimates
            .metrics
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[][..], |(_, e)| e.as_slice());
        let rows: Vec<(&str, &IndexMap<String, f64>, &Detail)> = if c.instances.len() > 1 {
            std::iter::once(("(all)", &c.total, &c.detail))
                .chain(
                    c.instances
                        .iter()
                        .map(|i| (i.name.as_str(), &i.metrics, &i.detail)),
                )
                .collect()
        } else {
            vec![("", &c.total, &c.detail)]
        };
        for (inst, m, detail) in rows {
            let is_total = inst == "(all)" || inst.is_empty();
            let mut row = vec![
                if is_total {
                    name.clone()
                } else {
                    String::new()
                },
                format!("{inst}{kind}"),
            ];
            for col in &cols {
                let Some((d, dc)) = mine.iter().find(|(_, x)| x.label == col.label) else {
                    row.push(String::new());
                    if col.estimate {
                        row.push(String::new());
                    }
                    continue;
                };
                let key = format!("components.{name}.{}", d.name);
                row.push(match d.shape {
                    Shape::Number => {
                        let v = m.get(d.name).copied().unwrap_or(f64::NAN);
                        match out.summary.get(&key) {
                            Some(e) if is_total && dc.ci && reps > 1 => {
                                format!("{} ± {}", show(d, e.mean), show(d, e.ci95))
                            }
                            _ => show(d, v),
                        }
                    }
                    Shape::Histogram => detail
                        .histogram(d.name)
                        .map(|w| num(w.p99_ms))
                        .unwrap_or_default(),
                    Shape::Distribution => String::new(),
                });
                if col.estimate {
                    let own = other.iter().find(|e| e.metric == d.name).map(|e| e.value);
                    row.push(
                        est.and_then(|e| estimate_of(e, d.name))
                            .or(own)
                            .filter(|_| is_total && dc.estimate)
                            .map(|v| show(d, v))
                            .unwrap_or_default(),
                    );
                }
            }
            t.add_row(row);
        }
    }
    t.to_string()
}

/// The report printed by `scalesim check`.
pub fn check_table(model: &Model, est: &Estimates) -> String {
    let mut s = format!(
        "{}: valid; {} workload(s), {} component(s), {} instance(s), classes: {}\n\n",
        model.name,
        model.workloads.len(),
        model.components.len(),
        model.instance_count(),
        model.classes.join(", ")
    );
    let mut t = new_table(&["component", "kind", "instances"]);
    for c in &model.components {
        let names: Vec<String> = (0..c.replicas).map(|i| c.instance_name(i)).collect();
        let shown = if names.len() > 6 {
            format!(
                "{} … {} ({})",
                names[..3].join(", "),
                names[names.len() - 1],
                names.len()
            )
        } else {
            names.join(", ")
        };
        t.add_row(vec![c.name.clone(), c.kind.name().to_string(), shown]);
    }
    s.push_str(&t.to_string());
    s.push_str("\n\nanalytic estimates (per instance; Erlang C for exponential service and arrivals, Allen-Cunneen otherwise, M/M/c/K for bounded queues; instances behind a least-connections balancer pooled into one queue)\n");
    let mut t = new_table(&[
        "service",
        "arrivals/s",
        "hold ms",
        "offered load",
        "utilization",
        "wait ms",
        "response ms",
        "blocking",
        "method",
    ]);
    for (name, e) in &est.services {
        t.add_row(vec![
            name.clone(),
            num(e.arrival_rate_per_s),
            num(e.hold_time_ms),
            num(e.offered_load),
            pct(e.utilization),
            num(e.wait_mean_ms),
            num(e.response_mean_ms),
            if e.blocking > 0.0 {
                pct(e.blocking)
            } else {
                "-".into()
            },
            e.method.clone(),
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    if !est.metrics.is_empty() {
        let mut t = new_table(&["component", "metric", "estimate", "method"]);
        for (name, list) in &est.metrics {
            for e in list {
                t.add_row(vec![
                    name.clone(),
                    e.metric.clone(),
                    num(e.value),
                    e.method.clone(),
                ]);
            }
        }
        s.push('\n');
        s.push_str(&t.to_string());
        s.push('\n');
    }
    let mut t = new_table(&["workload", "requests/s", "est. response ms"]);
    for (name, rate, r) in &est.workloads {
        t.add_row(vec![name.clone(), num(*rate), num(*r)]);
    }
    s.push('\n');
    s.push_str(&t.to_string());
    s.push('\n');
    for w in &est.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::{load_balancer, service};
    use crate::metrics::declare::{Combine, Unit};

    fn labels(cols: &[Col]) -> Vec<&str> {
        cols.iter().map(|c| c.label).collect()
    }

    #[test]
    fn columns_come_from_the_declarations_whatever_the_component_order() {
        let a = merged_columns(&[service::METRICS, load_balancer::METRICS]);
        let b = merged_columns(&[load_balancer::METRICS, service::METRICS]);
        assert_eq!(a, b);
        assert_eq!(
            labels(&a),
            [
                "utilization",
                "queue mean",
                "queue max",
                "wait ms",
                "wait p99",
                "dropped",
                "throughput/s"
            ]
        );
        let estimated: Vec<&str> = a.iter().filter(|c| c.estimate).map(|c| c.label).collect();
        assert_eq!(estimated, ["utilization", "wait ms"]);
        // A new kind's own column joins next to the column it shares.
        const CACHE: &[MetricDecl] = &[
            MetricDecl::number("hit_share", Unit::Share, Combine::Mean).column("hit rate", 0),
            MetricDecl::number("rate", Unit::PerSecond, Combine::Sum).column("throughput/s", 1),
        ];
        let c = merged_columns(&[load_balancer::METRICS, CACHE, service::METRICS]);
        assert_eq!(labels(&c)[0], "hit rate");
        assert_eq!(labels(&c).last(), Some(&"throughput/s"));
        assert_eq!(c.len(), 8);
    }
}
