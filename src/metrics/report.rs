//! What one instance reports at the end of a run: its metrics, in report order, and how
//! each combines over the instances of its component. The engine only carries these
//! reports from the components to the results.

use super::WaitHistogram;

/// How the values of one metric combine over the instances of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Add them (counts, rates).
    Sum,
    /// Average them (utilization, means).
    Mean,
    /// Take the largest (maxima).
    Max,
}

/// Statistics of one instance, as named numbers in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReport {
    /// Instance name, e.g. `app[2]`.
    pub name: String,
    /// Metric name, value, and how it combines across instances, in report order.
    pub metrics: Vec<(String, f64, Combine)>,
    /// Share of time with 0, 1, 2, ... requests at the instance (waiting or in service);
    /// empty for components that hold no requests.
    pub occupancy: Vec<f64>,
    /// Time requests waited in the instance's queue before a worker took them.
    pub wait: Option<WaitHistogram>,
}

impl InstanceReport {
    /// An empty report for instance `name`.
    pub fn new(name: &str) -> Self {
        InstanceReport {
            name: name.to_string(),
            metrics: Vec::new(),
            occupancy: Vec::new(),
            wait: None,
        }
    }
    /// Adds a metric that sums across instances.
    pub fn sum(&mut self, name: &str, value: f64) -> &mut Self {
        self.metrics.push((name.to_string(), value, Combine::Sum));
        self
    }
    /// Adds a metric that averages across instances.
    pub fn mean(&mut self, name: &str, value: f64) -> &mut Self {
        self.metrics.push((name.to_string(), value, Combine::Mean));
        self
    }
    /// Adds a metric whose component value is the largest instance value.
    pub fn max(&mut self, name: &str, value: f64) -> &mut Self {
        self.metrics.push((name.to_string(), value, Combine::Max));
        self
    }
}
