//! Tidy CSV: one row per (replication, scope, name, instance, metric), ready for
//! pandas `pivot_table` or R `pivot_wider`.

use super::RunOutput;
use crate::metrics::LatencySummary;
use crate::results::Detail;
use indexmap::IndexMap;

/// Header of the tidy CSV.
pub const CSV_HEADER: [&str; 7] = [
    "replication",
    "seed",
    "scope",
    "name",
    "instance",
    "metric",
    "value",
];

/// Rows of one replication.
struct Tidy<'a> {
    w: &'a mut csv::Writer<Vec<u8>>,
    replication: String,
    seed: String,
}

impl Tidy<'_> {
    fn row(&mut self, scope: &str, name: &str, instance: &str, metric: &str, value: f64) {
        self.w
            .write_record([
                self.replication.as_str(),
                self.seed.as_str(),
                scope,
                name,
                instance,
                metric,
                &value.to_string(),
            ])
            .expect("writing CSV to memory");
    }

    fn latency(&mut self, scope: &str, name: &str, l: &LatencySummary) {
        self.row(scope, name, "", "latency_mean_ms", l.mean_ms);
        self.percentiles(scope, name, "", "latency", l);
        self.row(scope, name, "", "latency_max_ms", l.max_ms);
    }
    /// The rows `PREFIX_p50_ms`, ... `PREFIX_p999_ms` of a duration distribution.
    fn percentiles(
        &mut self,
        scope: &str,
        name: &str,
        instance: &str,
        prefix: &str,
        l: &LatencySummary,
    ) {
        for (metric, v) in [
            ("p50_ms", l.p50_ms),
            ("p90_ms", l.p90_ms),
            ("p95_ms", l.p95_ms),
            ("p99_ms", l.p99_ms),
            ("p999_ms", l.p999_ms),
        ] {
            self.row(scope, name, instance, &format!("{prefix}_{metric}"), v);
        }
    }
    /// The rows of a component or instance, whatever its kind declares: each number;
    /// each histogram `H` as `H_p50_ms` ... `H_p999_ms` and `H_max_ms` (its mean, when a
    /// kind reports one, is among the numbers); each distribution `D` as `D_0`, `D_1`,
    /// ... (e.g. `occupancy_N`: share of time with N requests at an instance).
    fn component(
        &mut self,
        scope: &str,
        name: &str,
        instance: &str,
        numbers: &IndexMap<String, f64>,
        detail: &Detail,
    ) {
        for (metric, v) in numbers {
            self.row(scope, name, instance, metric, *v);
        }
        for (h, l) in &detail.histograms {
            self.percentiles(scope, name, instance, h, l);
            self.row(scope, name, instance, &format!("{h}_max_ms"), l.max_ms);
        }
        for (d, shares) in &detail.distributions {
            for (n, v) in shares.iter().enumerate() {
                self.row(scope, name, instance, &format!("{d}_{n}"), *v);
            }
        }
    }
}

/// The tidy CSV of an output.
pub fn to_csv(out: &RunOutput) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).expect("writing CSV to memory");
    for (rep, r) in out.runs.iter().enumerate() {
        let mut t = Tidy {
            w: &mut w,
            replication: rep.to_string(),
            seed: r.seed.to_string(),
        };
        for (name, wl) in &r.workloads {
            let s = "workload";
            t.row(s, name, "", "arrived", wl.arrived as f64);
            t.row(s, name, "", "completed", wl.completed as f64);
            t.row(s, name, "", "failed", wl.failed as f64);
            for (cause, n) in &wl.errors {
                t.row(s, name, "", &format!("errors_{cause}"), *n as f64);
            }
            t.row(s, name, "", "throughput_per_s", wl.throughput_per_s);
            t.row(s, name, "", "goodput_per_s", wl.goodput_per_s);
            t.row(s, name, "", "error_share", wl.error_share);
            t.latency(s, name, &wl.latency);
            for (class, c) in &wl.classes {
                let n = format!("{name}.{class}");
                t.row("class", &n, "", "arrived", c.arrived as f64);
                t.row("class", &n, "", "completed", c.completed as f64);
                t.row("class", &n, "", "failed", c.failed as f64);
                t.row("class", &n, "", "goodput_per_s", c.goodput_per_s);
                t.latency("class", &n, &c.latency);
            }
        }
        for (name, c) in &r.components {
            t.component("component", name, "", &c.total, &c.detail);
            if c.instances.len() > 1 {
                for i in &c.instances {
                    t.component("instance", name, &i.name, &i.metrics, &i.detail);
                }
            }
        }
        // Fault windows: window k of a fault on an instance as `window_k_start_s` and
        // `window_k_end_s` (k counts that fault's windows on that instance from 0).
        let mut seen: IndexMap<(&str, &str), usize> = IndexMap::new();
        for f in &r.faults {
            let k = seen.entry((&f.name, &f.instance)).or_default();
            t.row(
                "fault",
                &f.name,
                &f.instance,
                &format!("window_{k}_start_s"),
                f.start_s,
            );
            t.row(
                "fault",
                &f.name,
                &f.instance,
                &format!("window_{k}_end_s"),
                f.end_s,
            );
            if let Some(rec) = &f.recovery {
                let mut row = |metric: &str, v: f64| {
                    t.row(
                        "fault",
                        &f.name,
                        &f.instance,
                        &format!("window_{k}_{metric}"),
                        v,
                    )
                };
                row("baseline_goodput_per_s", rec.baseline_goodput_per_s);
                row("baseline_p99_ms", rec.baseline_p99_ms);
                row("recovered_s", rec.recovered_s.unwrap_or(f64::NAN));
                row(
                    "time_to_recover_s",
                    rec.time_to_recover_s.unwrap_or(f64::NAN),
                );
                row("failed_during", rec.failed_during as f64);
                row("failed_after", rec.failed_after as f64);
                row("metastable", f64::from(u8::from(rec.metastable)));
            }
            *k += 1;
        }
        // Partition sides of a database with a `partition_mode`: side k of the sides named
        // `FAULT: ZONES` of a database as `window_k_METRIC` (k counts that side's cuts
        // from 0), every number of its JSON record.
        for (name, c) in &r.components {
            let mut seen: IndexMap<String, usize> = IndexMap::new();
            for side in &c.partition_sides {
                let label = format!("{}: {}", side.fault, side.side);
                let k = seen.entry(label.clone()).or_default();
                for (metric, v) in crate::components::database::sides::rows(side) {
                    let metric = format!("window_{k}_{metric}");
                    t.row("partition_side", name, &label, &metric, v);
                }
                *k += 1;
            }
        }
        // Call policies: one row per edge and count.
        for (name, e) in &r.edges {
            for (metric, v) in crate::policy::report::edge_rows(e) {
                t.row("edge", name, "", metric, v);
            }
        }
        // Retry amplification per tier (callee of a call policy): over the measurement
        // window, and per time window k (from time zero, `series_window` wide).
        for (tier, a) in &r.amplification {
            t.row("tier", tier, "", "amplification", *a);
        }
        for (tier, values) in &r.amplification_series {
            for (k, a) in values.iter().enumerate() {
                t.row("tier", tier, "", &format!("window_{k}_amplification"), *a);
            }
        }
        // Time series: per time window k (from time zero, `series_window` wide), each
        // workload's and each component's values as `window_k_METRIC`.
        for (name, s) in &r.series {
            let counts = [("completed", &s.completed), ("failed", &s.failed)];
            for (metric, values) in counts {
                for (k, v) in values.iter().enumerate() {
                    t.row(
                        "workload",
                        name,
                        "",
                        &format!("window_{k}_{metric}"),
                        *v as f64,
                    );
                }
            }
            let times = [
                ("latency_mean_ms", &s.latency_mean_ms),
                ("latency_p99_ms", &s.latency_p99_ms),
            ];
            for (metric, values) in times {
                for (k, v) in values.iter().enumerate() {
                    t.row("workload", name, "", &format!("window_{k}_{metric}"), *v);
                }
            }
        }
        for (name, metrics) in &r.component_series {
            for (metric, values) in metrics {
                for (k, v) in values.iter().enumerate() {
                    t.row("component", name, "", &format!("window_{k}_{metric}"), *v);
                }
            }
        }
    }
    String::from_utf8(w.into_inner().expect("flushing CSV to memory")).expect("CSV is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_writes_whatever_its_kind_declares() {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut t = Tidy {
            w: &mut w,
            replication: "0".into(),
            seed: "1".into(),
        };
        let numbers: IndexMap<String, f64> = [("hit_share".to_string(), 0.5)].into();
        let mut detail = Detail::default();
        detail.histograms.insert(
            "lookup".into(),
            LatencySummary {
                count: 2,
                p99_ms: 3.0,
                max_ms: 4.0,
                ..Default::default()
            },
        );
        detail.distributions.insert("hits".into(), vec![0.25, 0.75]);
        t.component("component", "cache", "", &numbers, &detail);
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let metrics: Vec<&str> = text.lines().map(|l| l.split(',').nth(5).unwrap()).collect();
        assert_eq!(
            metrics,
            [
                "hit_share",
                "lookup_p50_ms",
                "lookup_p90_ms",
                "lookup_p95_ms",
                "lookup_p99_ms",
                "lookup_p999_ms",
                "lookup_max_ms",
                "hits_0",
                "hits_1"
            ]
        );
        assert!(text.contains("cache,,lookup_p99_ms,3\n"), "{text}");
    }
}
