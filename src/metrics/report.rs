//! What one instance reports at the end of a run: a value for each metric its kind
//! declares (see [`super::declare`]), in declaration order, and how the reports of a
//! component's instances combine. The engine only carries these reports from the
//! components to the results.

use super::WaitHistogram;
use super::declare::{Combine, MetricDecl, Shape};

/// Statistics of one instance: one value per declared metric, kept by shape in
/// declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReport {
    /// Instance name, e.g. `app[2]`.
    pub name: String,
    /// What the instance's kind reports.
    pub decls: &'static [MetricDecl],
    /// The numbers, in the order of the declared numbers (NaN until set).
    pub numbers: Vec<f64>,
    /// The distributions, in the order of the declared distributions.
    pub distributions: Vec<Vec<f64>>,
    /// The histograms, in the order of the declared histograms.
    pub histograms: Vec<WaitHistogram>,
}

impl InstanceReport {
    /// A report of instance `name` for the metrics `decls`, every value unset.
    pub fn new(name: &str, decls: &'static [MetricDecl]) -> Self {
        let count = |s: Shape| decls.iter().filter(|d| d.shape == s).count();
        InstanceReport {
            name: name.to_string(),
            decls,
            numbers: vec![f64::NAN; count(Shape::Number)],
            distributions: vec![Vec::new(); count(Shape::Distribution)],
            histograms: vec![WaitHistogram::new(); count(Shape::Histogram)],
        }
    }

    /// Position of metric `name` among the declared metrics of shape `shape`.
    fn slot(&self, name: &str, shape: Shape) -> usize {
        self.decls
            .iter()
            .filter(|d| d.shape == shape)
            .position(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not a declared {shape:?} metric"))
    }

    /// Sets the number `name` (which must be declared).
    pub fn set(&mut self, name: &str, value: f64) -> &mut Self {
        let i = self.slot(name, Shape::Number);
        self.numbers[i] = value;
        self
    }
    /// Sets the distribution `name` (which must be declared).
    pub fn set_distribution(&mut self, name: &str, shares: Vec<f64>) -> &mut Self {
        let i = self.slot(name, Shape::Distribution);
        self.distributions[i] = shares;
        self
    }
    /// Sets the histogram `name` (which must be declared).
    pub fn set_histogram(&mut self, name: &str, histogram: WaitHistogram) -> &mut Self {
        let i = self.slot(name, Shape::Histogram);
        self.histograms[i] = histogram;
        self
    }

    /// The declared metrics of shape `shape`, in order.
    pub fn declared(&self, shape: Shape) -> impl Iterator<Item = &'static MetricDecl> {
        self.decls.iter().filter(move |d| d.shape == shape)
    }

    /// Names of the numbers whose value was never set.
    pub fn unset(&self) -> Vec<&'static str> {
        self.declared(Shape::Number)
            .zip(&self.numbers)
            .filter(|(_, v)| v.is_nan())
            .map(|(d, _)| d.name)
            .collect()
    }
}

/// A component's values: its instances' reports combined metric by metric as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    /// The numbers, in declaration order.
    pub numbers: Vec<f64>,
    /// The distributions, in declaration order.
    pub distributions: Vec<Vec<f64>>,
    /// The histograms, in declaration order.
    pub histograms: Vec<WaitHistogram>,
}

/// Element `k` of distribution `i` over the instances, each weighted by the number named
/// `weight` (the same weight for every element) or by element `k` of the distribution named
/// `weight` (a per-class share by that class's reads); a plain mean where the weights add
/// up to zero.
fn weigh_distribution(
    reports: &[InstanceReport],
    first: &InstanceReport,
    i: usize,
    weight: &str,
    out: &mut [f64],
) {
    let by_number = first.declared(Shape::Number).position(|d| d.name == weight);
    let w_of = |r: &InstanceReport, k: usize| match by_number {
        Some(w) => r.numbers[w],
        None => {
            let w = first.slot(weight, Shape::Distribution);
            r.distributions[w].get(k).copied().unwrap_or(0.0)
        }
    };
    let n = reports.len() as f64;
    for (k, o) in out.iter_mut().enumerate() {
        let value = |r: &InstanceReport| r.distributions[i].get(k).copied().unwrap_or(0.0);
        let total: f64 = reports.iter().map(|r| w_of(r, k)).sum();
        *o = if total > 0.0 {
            reports.iter().map(|r| value(r) * w_of(r, k)).sum::<f64>() / total
        } else {
            reports.iter().map(value).sum::<f64>() / n
        };
    }
}

/// Combines the reports of one component's instances (all of one kind): numbers by
/// their [`Combine`] rule in instance order, distributions entry by entry (a shorter
/// one counts as zeros past its end), histograms merged.
pub fn combine(reports: &[InstanceReport]) -> Combined {
    let Some(first) = reports.first() else {
        return Combined {
            numbers: Vec::new(),
            distributions: Vec::new(),
            histograms: Vec::new(),
        };
    };
    let n = reports.len() as f64;
    let numbers = first
        .declared(Shape::Number)
        .enumerate()
        .map(|(i, d)| match d.combine {
            Combine::Sum => reports.iter().map(|r| r.numbers[i]).fold(0.0, |a, v| a + v),
            Combine::Mean => reports.iter().map(|r| r.numbers[i]).fold(0.0, |a, v| a + v) / n,
            Combine::Max => reports
                .iter()
                .map(|r| r.numbers[i])
                .fold(f64::NEG_INFINITY, f64::max),
            Combine::WeightedBy(weight) => {
                let w = first.slot(weight, Shape::Number);
                let total: f64 = reports.iter().map(|r| r.numbers[w]).sum();
                if total > 0.0 {
                    reports
                        .iter()
                        .map(|r| r.numbers[i] * r.numbers[w])
                        .fold(0.0, |a, v| a + v)
                        / total
                } else {
                    reports.iter().map(|r| r.numbers[i]).fold(0.0, |a, v| a + v) / n
                }
            }
        })
        .collect();
    let distributions = first
        .declared(Shape::Distribution)
        .enumerate()
        .map(|(i, d)| {
            let len = reports.iter().map(|r| r.distributions[i].len()).max();
            let mut out = vec![0.0; len.unwrap_or(0)];
            if let Combine::WeightedBy(weight) = d.combine {
                weigh_distribution(reports, first, i, weight, &mut out);
                return out;
            }
            for r in reports {
                for (o, v) in out.iter_mut().zip(&r.distributions[i]) {
                    match d.combine {
                        Combine::Sum => *o += v,
                        Combine::Mean | Combine::WeightedBy(_) => *o += v / n,
                        Combine::Max => *o = o.max(*v),
                    }
                }
            }
            out
        })
        .collect();
    let histograms = (0..first.histograms.len())
        .map(|i| {
            let mut all = first.histograms[i].clone();
            reports[1..]
                .iter()
                .for_each(|r| all.merge(&r.histograms[i]));
            all
        })
        .collect();
    Combined {
        numbers,
        distributions,
        histograms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::declare::Unit;

    const DECLS: &[MetricDecl] = &[
        MetricDecl::number("busy", Unit::Share, Combine::Mean),
        MetricDecl::distribution("occupancy"),
        MetricDecl::number("served", Unit::Count, Combine::Sum),
        MetricDecl::histogram("wait"),
        MetricDecl::number("peak", Unit::Level, Combine::Max),
    ];

    fn report(
        name: &str,
        busy: f64,
        served: f64,
        peak: f64,
        occ: Vec<f64>,
        wait: u64,
    ) -> InstanceReport {
        let mut r = InstanceReport::new(name, DECLS);
        let mut h = WaitHistogram::new();
        h.record(wait);
        r.set("busy", busy)
            .set("served", served)
            .set("peak", peak)
            .set_distribution("occupancy", occ)
            .set_histogram("wait", h);
        r
    }

    #[test]
    fn values_follow_the_declarations_and_combine_by_their_rule() {
        let a = report("a[0]", 0.5, 10.0, 3.0, vec![0.5, 0.5], 1_000_000);
        let b = report("a[1]", 1.0, 20.0, 7.0, vec![1.0], 3_000_000);
        assert_eq!(a.numbers, [0.5, 10.0, 3.0]);
        assert!(a.unset().is_empty());
        let c = combine(&[a, b]);
        assert_eq!(c.numbers, [0.75, 30.0, 7.0]);
        assert_eq!(c.distributions, [vec![0.75, 0.25]]);
        assert_eq!(c.histograms[0].count(), 2);
        assert_eq!(c.histograms[0].sum_ns(), 4_000_000);
    }

    #[test]
    fn a_weighted_mean_counts_each_instance_by_its_weight() {
        const W: &[MetricDecl] = &[
            MetricDecl::number("hit_ratio", Unit::Share, Combine::WeightedBy("reads")),
            MetricDecl::number("reads", Unit::Count, Combine::Sum),
        ];
        let r = |ratio: f64, reads: f64| {
            let mut r = InstanceReport::new("x", W);
            r.set("hit_ratio", ratio).set("reads", reads);
            r
        };
        // An idle instance does not pull the ratio down: (0.5·300 + 1·100) / 400.
        let c = combine(&[r(0.5, 300.0), r(1.0, 100.0), r(0.0, 0.0)]);
        assert_eq!(c.numbers, [0.625, 400.0]);
        assert_eq!(combine(&[r(0.5, 0.0), r(0.0, 0.0)]).numbers, [0.25, 0.0]);
    }

    #[test]
    fn a_weighted_distribution_counts_each_entry_by_its_weight() {
        const W: &[MetricDecl] = &[
            MetricDecl::number("reads", Unit::Count, Combine::Sum),
            MetricDecl {
                combine: Combine::WeightedBy("reads"),
                ..MetricDecl::distribution("behind")
            },
            MetricDecl {
                combine: Combine::WeightedBy("reads_by_class"),
                ..MetricDecl::distribution("stale_by_class")
            },
            MetricDecl::distribution("reads_by_class"),
        ];
        let r = |reads: f64, behind: Vec<f64>, stale: Vec<f64>, by_class: Vec<f64>| {
            let mut r = InstanceReport::new("x", W);
            r.set("reads", reads);
            r.set_distribution("behind", behind);
            r.set_distribution("stale_by_class", stale);
            r.set_distribution("reads_by_class", by_class);
            r
        };
        let c = combine(&[
            r(300.0, vec![1.0], vec![0.5, 0.0], vec![100.0, 200.0]),
            r(100.0, vec![0.5, 0.5], vec![0.25, 1.0], vec![300.0, 0.0]),
        ]);
        // By reads: (1·300 + 0.5·100) / 400, (0·300 + 0.5·100) / 400.
        assert_eq!(c.distributions[0], [0.875, 0.125]);
        // Class by class: (0.5·100 + 0.25·300) / 400; class 1 only the first has reads.
        assert_eq!(c.distributions[1], [0.3125, 0.0]);
    }

    #[test]
    fn an_unset_number_is_named() {
        let mut r = InstanceReport::new("x", DECLS);
        r.set("served", 1.0);
        assert_eq!(r.unset(), ["busy", "peak"]);
    }

    #[test]
    #[should_panic(expected = "not a declared")]
    fn an_undeclared_metric_is_a_bug() {
        InstanceReport::new("x", DECLS).set("wait", 1.0);
    }
}
