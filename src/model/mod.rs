//! Model files: parse (JSON or YAML), apply `--set` overrides, validate, and build the
//! runnable [`Model`].

pub mod graph;
mod lint;
mod load;
pub mod names;
mod overrides;
pub mod resolve;
pub mod spec;
pub mod trace;
mod validate;

pub use lint::lint;
pub use load::{
    Format, LoadError, deserialize_located, hash_value, load_model_file, model_from_value,
    model_from_value_with, parse_model_str, parse_value,
};
pub use names::check_name_rule;
pub use overrides::{apply_set, set_path};
pub use spec::ModelSpec;
pub use validate::{MAX_INSTANCES, validate};

use crate::components::ComponentDef;
use crate::metrics::ErrorCause;
use crate::time::SimDuration;
use crate::workload::WorkloadDef;
use std::sync::Arc;

/// A validated model, ready to run any number of times.
#[derive(Debug, Clone)]
pub struct Model {
    /// Display name.
    pub name: String,
    /// Simulated time of a run, warm-up included.
    pub duration: SimDuration,
    /// Warm-up excluded from statistics.
    pub warmup: SimDuration,
    /// Default seed.
    pub seed: u64,
    /// Width of the time-series windows.
    pub series_window: SimDuration,
    /// Component series asked for (`component_series`), whether or not the model has
    /// faults or bursts.
    pub component_series: bool,
    /// Requests in flight at which a run stops early.
    pub max_in_flight: u64,
    /// Request class names; a class id indexes this.
    pub classes: Vec<String>,
    /// Workloads in file order.
    pub workloads: Vec<Arc<WorkloadDef>>,
    /// Components in file order; a component's index is its group id.
    pub components: Vec<ComponentDef>,
    /// Where each component sends requests.
    pub graph: graph::CallGraph,
    /// Zones and the latency between them, when the model places anything in a zone.
    pub network: Option<Arc<crate::network::NetworkDef>>,
    /// What fails, how and when (empty: nothing).
    pub faults: Arc<Vec<crate::faults::FaultDef>>,
    /// The policies of calls from one component to another (empty: none).
    pub calls: Arc<Vec<crate::policy::EdgePolicy>>,
    /// How recovery from faults and bursts is judged.
    pub recovery: crate::faults::recovery::Recovery,
    /// The spec it was built from (after overrides).
    pub spec: ModelSpec,
    /// SHA-256 of the canonical JSON of the spec, hex.
    pub hash: String,
}

impl Model {
    /// Total number of component instances.
    pub fn instance_count(&self) -> u32 {
        self.components.iter().map(|c| c.replicas).sum()
    }
    /// Index of the component named `name`.
    pub fn component_index(&self, name: &str) -> Option<usize> {
        self.components.iter().position(|c| c.name == name)
    }

    /// True when a request of this model can fail with `cause`: always for the causes
    /// every model can meet ([`ErrorCause::ALWAYS`]), otherwise only when the model uses
    /// the feature that causes it (a fault, a partition, a policy). Reports list these
    /// causes only, so a model's output does not grow with features it does not use.
    pub fn can_fail_with(&self, cause: ErrorCause) -> bool {
        use ErrorCause::*;
        match cause {
            Timeout | QueueFull | QueueTimeout | Unavailable => true,
            Crashed | Refused => !self.faults.is_empty() || self.a_component_can_fail_with(cause),
            Injected => !self.faults.is_empty(),
            Partitioned => self.faults.iter().any(|f| f.cut.is_some()),
            CircuitOpen => self.calls.iter().any(|e| e.policy.breaker.is_some()),
            RateLimited => {
                self.workloads.iter().any(|w| w.rate_limit.is_some())
                    || self.a_component_can_fail_with(cause)
            }
            Shed | DeadlineExceeded => self.a_component_can_fail_with(cause),
            PoolTimeout => self
                .calls
                .iter()
                .any(|e| e.policy.slots.is_some_and(|s| s.acquire_timeout.is_some())),
            BulkheadFull => self.calls.iter().any(|e| {
                e.policy
                    .slots
                    .is_some_and(|s| s.kind == crate::policy::slots::SlotsKind::Bulkhead)
            }),
        }
    }

    /// True when some component's own fields make it fail requests with `cause` (see
    /// [`spec::KindFields::can_fail_with`]).
    fn a_component_can_fail_with(&self, cause: ErrorCause) -> bool {
        self.spec
            .components
            .values()
            .any(|c| c.kind.can_fail_with(cause))
    }

    /// The causes this model's requests can fail with, in report order.
    pub fn causes(&self) -> Vec<ErrorCause> {
        ErrorCause::ALL
            .into_iter()
            .filter(|c| self.can_fail_with(*c))
            .collect()
    }
}
