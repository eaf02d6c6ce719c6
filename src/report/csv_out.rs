//! Tidy CSV: one row per (replication, scope, name, instance, metric), ready for
//! pandas `pivot_table` or R `pivot_wider`.

use super::RunOutput;

/// The tidy CSV of an output.
pub fn to_csv(out: &RunOutput) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let row = |w: &mut csv::Writer<Vec<u8>>,
               rep: usize,
               seed: u64,
               scope: &str,
               name: &str,
               inst: &str,
               metric: &str,
               value: f64| {
        w.write_record([
            rep.to_string(),
            seed.to_string(),
            scope.to_string(),
            name.to_string(),
            inst.to_string(),
            metric.to_string(),
            value.to_string(),
        ])
        .expect("writing CSV to memory");
    };
    w.write_record([
        "replication",
        "seed",
        "scope",
        "name",
        "instance",
        "metric",
        "value",
    ])
    .expect("writing CSV to memory");
    for (rep, r) in out.runs.iter().enumerate() {
        for (name, wl) in &r.workloads {
            let s = "workload";
            row(
                &mut w,
                rep,
                r.seed,
                s,
                name,
                "",
                "arrived",
                wl.arrived as f64,
            );
            row(
                &mut w,
                rep,
                r.seed,
                s,
                name,
                "",
                "completed",
                wl.completed as f64,
            );
            row(&mut w, rep, r.seed, s, name, "", "failed", wl.failed as f64);
            for (cause, n) in &wl.errors {
                row(
                    &mut w,
                    rep,
                    r.seed,
                    s,
                    name,
                    "",
                    &format!("errors_{cause}"),
                    *n as f64,
                );
            }
            row(
                &mut w,
                rep,
                r.seed,
                s,
                name,
                "",
                "throughput_per_s",
                wl.throughput_per_s,
            );
            row(
                &mut w,
                rep,
                r.seed,
                s,
                name,
                "",
                "goodput_per_s",
                wl.goodput_per_s,
            );
            latency_rows(&mut w, rep, r.seed, s, name, "", &wl.latency, &row);
            for (class, c) in &wl.classes {
                let scope = "class";
                let n = format!("{name}.{class}");
                row(
                    &mut w,
                    rep,
                    r.seed,
                    scope,
                    &n,
                    "",
                    "arrived",
                    c.arrived as f64,
                );
                row(
                    &mut w,
                    rep,
                    r.seed,
                    scope,
                    &n,
                    "",
                    "completed",
                    c.completed as f64,
                );
                row(
                    &mut w,
                    rep,
                    r.seed,
                    scope,
                    &n,
                    "",
                    "failed",
                    c.failed as f64,
                );
                latency_rows(&mut w, rep, r.seed, scope, &n, "", &c.latency, &row);
            }
        }
        for (name, c) in &r.components {
            for (metric, v) in &c.total {
                row(&mut w, rep, r.seed, "component", name, "", metric, *v);
            }
            if c.instances.len() > 1 {
                for i in &c.instances {
                    for (metric, v) in &i.metrics {
                        row(&mut w, rep, r.seed, "instance", name, &i.name, metric, *v);
                    }
                }
            }
        }
    }
    String::from_utf8(w.into_inner().expect("flushing CSV to memory")).expect("CSV is UTF-8")
}

#[allow(clippy::too_many_arguments)]
fn latency_rows(
    w: &mut csv::Writer<Vec<u8>>,
    rep: usize,
    seed: u64,
    scope: &str,
    name: &str,
    inst: &str,
    l: &crate::metrics::LatencySummary,
    row: &dyn Fn(&mut csv::Writer<Vec<u8>>, usize, u64, &str, &str, &str, &str, f64),
) {
    for (metric, v) in [
        ("latency_mean_ms", l.mean_ms),
        ("latency_p50_ms", l.p50_ms),
        ("latency_p90_ms", l.p90_ms),
        ("latency_p95_ms", l.p95_ms),
        ("latency_p99_ms", l.p99_ms),
        ("latency_p999_ms", l.p999_ms),
        ("latency_max_ms", l.max_ms),
    ] {
        row(w, rep, seed, scope, name, inst, metric, v);
    }
}
