//! The terminal view: what a person reads after `scalesim run` and `scalesim check`.

use super::RunOutput;
use crate::analysis::Estimates;
use crate::metrics::LatencySummary;
use crate::model::Model;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_BORDERS_ONLY};

/// A number for a table: 3–4 significant figures, ∞ and - for infinite and NaN.
pub(super) fn num(v: f64) -> String {
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

fn new_table(header: &[&str]) -> Table {
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

    let mut t = new_table(&[
        "component",
        "instance",
        "utilization",
        "est.",
        "queue mean",
        "queue max",
        "wait ms",
        "est.",
        "wait p99",
        "dropped",
        "throughput/s",
    ]);
    for (name, c) in &r.components {
        let est = out
            .estimates
            .services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e);
        type Row<'a> = (
            &'a str,
            &'a indexmap::IndexMap<String, f64>,
            Option<&'a LatencySummary>,
        );
        let rows: Vec<Row> = if c.instances.len() > 1 {
            std::iter::once(("(all)", &c.total, c.wait.as_ref()))
                .chain(
                    c.instances
                        .iter()
                        .map(|i| (i.name.as_str(), &i.metrics, i.wait.as_ref())),
                )
                .collect()
        } else {
            vec![("", &c.total, c.wait.as_ref())]
        };
        for (inst, m, wait) in rows {
            let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
            let is_total = inst == "(all)" || inst.is_empty();
            if c.kind == "service" {
                let key = |k: &str| format!("components.{name}.{k}");
                t.add_row(vec![
                    if inst.is_empty() || inst == "(all)" {
                        name.clone()
                    } else {
                        String::new()
                    },
                    inst.to_string(),
                    if is_total && reps > 1 {
                        out.summary
                            .get(&key("utilization"))
                            .map(|e| format!("{} ± {}", pct(e.mean), pct(e.ci95)))
                            .unwrap_or_default()
                    } else {
                        pct(g("utilization"))
                    },
                    if is_total {
                        est.map(|e| pct(e.utilization)).unwrap_or_default()
                    } else {
                        String::new()
                    },
                    num(g("queue_mean")),
                    num(g("queue_max")),
                    if is_total && reps > 1 {
                        ci(key("wait_mean_ms"), g("wait_mean_ms"))
                    } else {
                        num(g("wait_mean_ms"))
                    },
                    if is_total {
                        est.map(|e| num(e.wait_mean_ms)).unwrap_or_default()
                    } else {
                        String::new()
                    },
                    wait.map(|w| num(w.p99_ms)).unwrap_or_default(),
                    num(g("dropped")),
                    num(g("throughput_per_s")),
                ]);
            } else {
                t.add_row(vec![
                    if is_total {
                        name.clone()
                    } else {
                        String::new()
                    },
                    format!("{inst} {}", c.kind),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    num(g("forward_rate_per_s")),
                ]);
            }
        }
    }
    s.push_str(&t.to_string());
    s.push('\n');
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
