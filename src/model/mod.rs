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
            Crashed | Refused => !self.faults.is_empty() || self.fails_on_scale_in(),
            Injected => !self.faults.is_empty(),
            Partitioned => self.faults.iter().any(|f| f.cut.is_some()),
            CircuitOpen => self.calls.iter().any(|e| e.policy.breaker.is_some()),
            RateLimited => {
                self.workloads.iter().any(|w| w.rate_limit.is_some())
                    || self.services().any(|s| s.rate_limit.is_some())
            }
            Shed => self.services().any(|s| s.shed.is_some()),
            DeadlineExceeded => self.services().any(|s| {
                s.deadlines
                    .is_some_and(|d| d != spec::DeadlinesSpec::Ignore)
            }),
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

    /// True when an autoscaler fails the requests of the instances it takes out.
    fn fails_on_scale_in(&self) -> bool {
        self.spec.components.values().any(|c| {
            matches!(&c.kind, spec::KindSpec::Autoscaler(a)
                if a.on_remove == Some(spec::OnRemoveSpec::Fail))
        })
    }

    /// The fields of the model's services.
    fn services(&self) -> impl Iterator<Item = &spec::ServiceSpec> {
        self.spec.components.values().filter_map(|c| match &c.kind {
            spec::KindSpec::Service(s) => Some(s),
            _ => None,
        })
    }

    /// The causes this model's requests can fail with, in report order.
    pub fn causes(&self) -> Vec<ErrorCause> {
        ErrorCause::ALL
            .into_iter()
            .filter(|c| self.can_fail_with(*c))
            .collect()
    }
}
