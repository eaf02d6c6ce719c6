//! The metrics vocabulary: what a component kind reports, declared once next to the kind
//! (`METRICS` in each module of `src/components/`). The run's results, the terminal table,
//! the CSV, the experiment summaries and the capacity search's "first to saturate" read
//! these declarations; none of them names a kind.

/// What a metric's values measure, which also says how a table shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A share between 0 and 1 (shown as a percentage).
    Share,
    /// Events counted in the measurement window.
    Count,
    /// Events per second of the measurement window.
    PerSecond,
    /// Milliseconds.
    Ms,
    /// A number of things held at a time (requests waiting, busy workers): a time
    /// average or a maximum.
    Level,
    /// A dimensionless ratio.
    Ratio,
}

/// How the values of one metric combine over the instances of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Add them (counts, rates); histograms are merged.
    Sum,
    /// Average them (utilization, means); distributions are averaged entry by entry.
    Mean,
    /// Take the largest (maxima).
    Max,
    /// Average them weighted by the number metric named here, the count each value is a
    /// share of (a hit ratio by its reads), so idle instances do not pull the component's
    /// value down; a plain mean when every weight is zero. Distributions are averaged.
    WeightedBy(&'static str),
}

/// The shape of a metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One number.
    Number,
    /// A list of shares (e.g. of time spent with 0, 1, 2, ... requests).
    Distribution,
    /// A histogram of durations, reported as percentiles.
    Histogram,
}

/// How a metric tells that its component is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saturation {
    /// A utilization: the share of a resource in use; 1 is saturated.
    Busy,
    /// The share of arrivals refused: any noticeable share means the component is full.
    Refused,
}

/// A column of the terminal table's component section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Header text. Kinds that fill the same column use the same label.
    pub label: &'static str,
    /// Position among the kind's columns (smallest first).
    pub rank: u8,
    /// The component's row shows the 95% CI half-width over replications.
    pub ci: bool,
    /// An "est." column follows with the analytic estimate of this metric.
    pub estimate: bool,
}

/// One metric a component kind reports for each instance and, combined, for the
/// component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDecl {
    /// Name in the results (`components.NAME.METRIC`).
    pub name: &'static str,
    /// What the values measure.
    pub unit: Unit,
    /// How instance values combine into the component's.
    pub combine: Combine,
    /// Number, distribution or histogram.
    pub shape: Shape,
    /// Whether, and how, the metric shows saturation (see [`saturation`]).
    pub saturation: Option<Saturation>,
    /// The table column that shows it (for a histogram: its 99th percentile), if any.
    pub column: Option<Column>,
}

impl MetricDecl {
    /// A number.
    pub const fn number(name: &'static str, unit: Unit, combine: Combine) -> Self {
        MetricDecl {
            name,
            unit,
            combine,
            shape: Shape::Number,
            saturation: None,
            column: None,
        }
    }
    /// A distribution of shares, averaged over instances entry by entry.
    pub const fn distribution(name: &'static str) -> Self {
        MetricDecl {
            shape: Shape::Distribution,
            ..Self::number(name, Unit::Share, Combine::Mean)
        }
    }
    /// A histogram of durations, merged over instances.
    pub const fn histogram(name: &'static str) -> Self {
        MetricDecl {
            shape: Shape::Histogram,
            ..Self::number(name, Unit::Ms, Combine::Sum)
        }
    }
    /// The same metric, showing saturation as `how`.
    pub const fn saturates(self, how: Saturation) -> Self {
        MetricDecl {
            saturation: Some(how),
            ..self
        }
    }
    /// The same metric, shown in the table under `label` at position `rank`.
    pub const fn column(self, label: &'static str, rank: u8) -> Self {
        MetricDecl {
            column: Some(Column {
                label,
                rank,
                ci: false,
                estimate: false,
            }),
            ..self
        }
    }
    /// The same metric, its table column showing the CI over replications and followed
    /// by the analytic estimate.
    pub const fn estimated(self) -> Self {
        let column = match self.column {
            Some(c) => Some(Column {
                ci: true,
                estimate: true,
                ..c
            }),
            None => None,
        };
        MetricDecl { column, ..self }
    }
}

/// The number metrics of `decls`, in order: the keys of a component's `total`.
pub fn numbers(decls: &[MetricDecl]) -> impl Iterator<Item = &MetricDecl> {
    decls.iter().filter(|d| d.shape == Shape::Number)
}

/// The table columns of `decls`, by rank.
pub fn columns(decls: &'static [MetricDecl]) -> Vec<(&'static MetricDecl, Column)> {
    let mut c: Vec<(&MetricDecl, Column)> = decls
        .iter()
        .filter_map(|d| d.column.map(|c| (d, c)))
        .collect();
    c.sort_by_key(|(_, c)| c.rank);
    c
}

/// How close to saturation a component is, from its combined numbers `value(name)`: the
/// highest of its `Busy` metrics and the highest of its `Refused` metrics. `None` when
/// the kind declares no `Busy` metric (it has no resource that can run out).
pub fn saturation(decls: &[MetricDecl], value: impl Fn(&str) -> f64) -> Option<(f64, f64)> {
    let highest = |how: Saturation| {
        numbers(decls)
            .filter(|d| d.saturation == Some(how))
            .map(|d| value(d.name))
            .max_by(f64::total_cmp)
    };
    let busy = highest(Saturation::Busy)?;
    Some((busy, highest(Saturation::Refused).unwrap_or(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &[MetricDecl] = &[
        MetricDecl::number("utilization", Unit::Share, Combine::Mean),
        MetricDecl::number("pool_in_use", Unit::Share, Combine::Mean).saturates(Saturation::Busy),
        MetricDecl::number("cpu", Unit::Share, Combine::Mean).saturates(Saturation::Busy),
        MetricDecl::number("refused_share", Unit::Share, Combine::Mean)
            .saturates(Saturation::Refused),
        MetricDecl::histogram("wait").column("wait p99", 2),
        MetricDecl::number("rate", Unit::PerSecond, Combine::Sum).column("rate", 1),
    ];

    #[test]
    fn saturation_reads_the_declared_metrics_not_their_names() {
        let v = |n: &str| match n {
            "utilization" => 1.0,
            "pool_in_use" => 0.7,
            "cpu" => 0.95,
            "refused_share" => 0.02,
            _ => f64::NAN,
        };
        assert_eq!(saturation(POOL, v), Some((0.95, 0.02)));
        let rates = &POOL[5..];
        assert_eq!(saturation(rates, v), None, "nothing can saturate");
    }

    #[test]
    fn shapes_combine_their_own_way_and_columns_sort_by_rank() {
        assert_eq!(MetricDecl::histogram("h").combine, Combine::Sum);
        assert_eq!(MetricDecl::distribution("d").combine, Combine::Mean);
        assert_eq!(MetricDecl::distribution("d").unit, Unit::Share);
        let names: Vec<&str> = numbers(POOL).map(|d| d.name).collect();
        assert_eq!(names.len(), 5);
        assert!(!names.contains(&"wait"));
        let cols: Vec<&str> = columns(POOL).iter().map(|(_, c)| c.label).collect();
        assert_eq!(cols, ["rate", "wait p99"]);
        let e = MetricDecl::number("x", Unit::Ms, Combine::Mean)
            .column("x", 0)
            .estimated();
        assert!(e.column.unwrap().ci && e.column.unwrap().estimate);
    }
}
