//! Time series of a run's metrics over fixed windows, cut afterwards from snapshots taken
//! at each window's end (a run stepped window by window), so nothing is recorded per
//! event: a workload's latency percentile per window from the difference of its
//! histogram between two window ends, and a component's metrics per window from the
//! difference of what its kind reports for the measurement window so far.
//!
//! Which component metrics have a series follows from their declaration: counts (the
//! difference), rates per second and time averages (utilization, mean queue and
//! workers: the difference of value × time over the window's length), and shares weighted
//! by a count (a hit ratio: the difference of value × weight over the difference of the
//! weight). Maxima, means of durations and other ratios have none.

use super::LatencyHistogram;
use super::declare::{Combine, MetricDecl, Saturation, Shape, Unit, numbers};

/// How a number metric is cut into windows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// A count: its increase.
    Count,
    /// A rate or a time average over the measurement window: value × time is cumulative.
    TimeWeighted,
    /// A share weighted by the count at this index of the numbers: value × weight is
    /// cumulative.
    Weighted(usize),
}

/// The series rule of each number metric of a kind (`None`: no series).
fn rules(decls: &[MetricDecl]) -> Vec<Option<Rule>> {
    let nums: Vec<&MetricDecl> = numbers(decls).collect();
    nums.iter()
        .map(|d| match (d.unit, d.combine) {
            (_, Combine::Max) => None,
            (Unit::Count, Combine::Sum) => Some(Rule::Count),
            (Unit::PerSecond, Combine::Sum | Combine::Mean) => Some(Rule::TimeWeighted),
            (Unit::Level, Combine::Sum | Combine::Mean) => Some(Rule::TimeWeighted),
            (Unit::Share, Combine::Mean) if d.saturation == Some(Saturation::Busy) => {
                Some(Rule::TimeWeighted)
            }
            (_, Combine::WeightedBy(w)) => nums
                .iter()
                .position(|x| x.name == w && x.unit == Unit::Count)
                .map(Rule::Weighted),
            _ => None,
        })
        .collect()
}

/// The series of one component's metrics, fed with its combined numbers at each window
/// end.
#[derive(Debug, Clone)]
pub struct ComponentWindows {
    names: Vec<&'static str>,
    rules: Vec<Option<Rule>>,
    /// The numbers at the previous window end, and the measured time then (seconds).
    prev: Vec<f64>,
    prev_t: f64,
    /// One list of values per metric with a rule, in declaration order.
    values: Vec<Vec<f64>>,
}

impl ComponentWindows {
    /// Empty series for a kind declaring `decls`.
    pub fn new(decls: &[MetricDecl]) -> Self {
        let names: Vec<&'static str> = numbers(decls).map(|d| d.name).collect();
        let rules = rules(decls);
        debug_assert!(
            decls
                .iter()
                .all(|d| d.shape != Shape::Number || names.contains(&d.name))
        );
        ComponentWindows {
            prev: vec![0.0; names.len()],
            prev_t: 0.0,
            values: vec![Vec::new(); rules.iter().flatten().count()],
            names,
            rules,
        }
    }
    /// A window before measurement began: every value 0.
    pub fn skip(&mut self) {
        self.values.iter_mut().for_each(|v| v.push(0.0));
    }
    /// A window ends `t` seconds into the measurement, where the kind reports `now` for the
    /// measurement so far (component totals, in declaration order).
    pub fn push(&mut self, t: f64, now: &[f64]) {
        let dt = t - self.prev_t;
        let mut out = self.values.iter_mut();
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(rule) = rule else { continue };
            let v = match *rule {
                Rule::Count => now[i] - self.prev[i],
                Rule::TimeWeighted if dt > 0.0 => (now[i] * t - self.prev[i] * self.prev_t) / dt,
                Rule::TimeWeighted => 0.0,
                Rule::Weighted(w) => {
                    let dw = now[w] - self.prev[w];
                    if dw > 0.0 {
                        (now[i] * now[w] - self.prev[i] * self.prev[w]) / dw
                    } else {
                        0.0
                    }
                }
            };
            // Differences of rounded values: to a millionth, so 1 is not 1.0000000000000009.
            let v = (v * 1e6).round() / 1e6 + 0.0;
            if let Some(list) = out.next() {
                list.push(v);
            }
        }
        self.prev.copy_from_slice(now);
        self.prev_t = t;
    }
    /// The series by metric name, in declaration order.
    pub fn into_series(self) -> Vec<(String, Vec<f64>)> {
        let names = self
            .names
            .iter()
            .zip(&self.rules)
            .filter(|(_, r)| r.is_some())
            .map(|(n, _)| n.to_string());
        names.zip(self.values).collect()
    }
}

/// A workload's 99th latency percentile per window, fed with its latency histogram of the
/// measurement so far at each window end.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindows {
    prev: LatencyHistogram,
    /// 99th percentile of the successful responses of each window, ms (0 when none).
    pub p99_ms: Vec<f64>,
}

impl LatencyWindows {
    /// A window ends, with `now` the histogram of the measurement so far.
    pub fn push(&mut self, now: LatencyHistogram) {
        // A window with no response has a percentile of 0: no difference to take.
        let p99_ns = if now.count() == self.prev.count() {
            0.0
        } else {
            now.since(&self.prev).quantile_ns(0.99)
        };
        self.p99_ms.push(p99_ns / 1e6);
        self.prev = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::declare::Unit::*;

    const DECLS: [MetricDecl; 6] = [
        MetricDecl::number("busy", Share, Combine::Mean).saturates(Saturation::Busy),
        MetricDecl::number("reads", Count, Combine::Sum),
        MetricDecl::number("hit_ratio", Share, Combine::WeightedBy("reads")),
        MetricDecl::number("rate_per_s", PerSecond, Combine::Sum),
        MetricDecl::number("queue_max", Level, Combine::Max),
        MetricDecl::number("wait_mean_ms", Ms, Combine::Mean),
    ];

    #[test]
    fn windows_are_differences_of_the_measurement_so_far() {
        let mut w = ComponentWindows::new(&DECLS);
        w.skip();
        // 0-10 s: busy half the time, 100 reads, 80 hits, 10 per second.
        w.push(10.0, &[0.5, 100.0, 0.8, 10.0, 7.0, 3.0]);
        // 10-20 s: busy all the time, 300 reads of which 60 hits: over 0-20 s busy 75%,
        // 400 reads, 140 hits (0.35), 30 per second on average.
        w.push(20.0, &[0.75, 400.0, 0.35, 30.0, 9.0, 4.0]);
        let s = w.into_series();
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["busy", "reads", "hit_ratio", "rate_per_s"]);
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
        };
        assert!(close(&s[0].1, &[0.0, 0.5, 1.0]), "{:?}", s[0]);
        assert!(close(&s[1].1, &[0.0, 100.0, 300.0]), "{:?}", s[1]);
        assert!(close(&s[2].1, &[0.0, 0.8, 0.2]), "{:?}", s[2]);
        assert!(close(&s[3].1, &[0.0, 10.0, 50.0]), "{:?}", s[3]);
    }

    #[test]
    fn a_window_percentile_sees_only_that_window() {
        let mut h = LatencyHistogram::new();
        let mut w = LatencyWindows::default();
        for _ in 0..1000 {
            h.record(1_000_000);
        }
        w.push(h.clone());
        for _ in 0..1000 {
            h.record(50_000_000);
        }
        w.push(h.clone());
        w.push(h.clone());
        assert!((w.p99_ms[0] - 1.0).abs() < 0.01, "{:?}", w.p99_ms);
        assert!((w.p99_ms[1] - 50.0).abs() < 0.1, "{:?}", w.p99_ms);
        assert_eq!(w.p99_ms[2], 0.0);
    }
}
