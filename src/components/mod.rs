//! Components: the kinds of things a model is built from. Each kind lives in its own module
//! (`service`, `load_balancer`): a validated definition shared by its instances, which
//! implements [`Kind`] (its links in the call graph, its instances, its estimate), its
//! validation (`<kind>/validate.rs`), its estimate (`<kind>/estimate.rs`) and an instance
//! type implementing the engine's [`Component`].
//!
//! A new kind touches: one variant of `model::spec::ComponentSpec` (with its spec type and
//! the line that validates it), and its own module here.

pub mod load_balancer;
pub mod service;

use crate::analysis::{Flow, Network, ServiceEstimate};
use crate::engine::{Component, InstanceId};
use crate::metrics::MetricDecl;
use crate::model::graph::Link;
use crate::random::{self, Rng};
use std::sync::Arc;

pub use load_balancer::{BalancerDef, BalancerInstance, Policy};
pub use service::{Discipline, RouteTarget, ServiceDef, ServiceInstance, Step};

/// A validated component of a model: a name, a number of identical instances, and a kind.
#[derive(Debug, Clone)]
pub struct ComponentDef {
    /// Name in the model file.
    pub name: String,
    /// Number of instances.
    pub replicas: u32,
    /// Id of the first instance; the others follow.
    pub first_instance: InstanceId,
    /// Price of one instance per hour (0 when not given).
    pub cost_per_hour: f64,
    /// What it is.
    pub kind: ComponentKind,
}

impl ComponentDef {
    /// Name of instance `index`: the component name alone when it has one instance,
    /// `name[index]` otherwise.
    pub fn instance_name(&self, index: u32) -> String {
        if self.replicas == 1 {
            self.name.clone()
        } else {
            format!("{}[{index}]", self.name)
        }
    }
}

/// A component kind, on the definition side: what a validated component of this kind is
/// (its fields live in the implementing type), where it sends requests, how it builds its
/// instances, and its analytic estimate. Each kind implements it in its own module under
/// `src/components/`, next to its validation and its instance type; nothing outside names a
/// kind.
pub trait Kind: std::fmt::Debug + Send + Sync {
    /// Kind name, as in model files.
    fn name(&self) -> &'static str;

    /// Where it sends requests: the edges of the model's call graph that start here.
    fn links(&self) -> &[Link];

    /// Builds one instance, with global id `id`, named `name`, drawing from `rng`.
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component>;

    /// Workers per instance, when a request holds one while it waits on the calls it makes
    /// (a thread-per-request service): a call that can come back here may then deadlock.
    fn workers_held_while_waiting(&self) -> Option<u32> {
        None
    }

    /// The metrics an instance of this kind reports, in report order.
    fn metrics(&self) -> &'static [MetricDecl];

    /// Analytic estimate, first pass (callers before callees): adds the requests this
    /// component sends to the `flows` of the components it waits on, and to `routed` those
    /// its routes hand on (added in the next pass, as routes may lead back up). `flow` is
    /// what arrives at it. The default sends nothing on.
    fn pass_flows(&self, net: &Network, flow: &Flow, flows: &mut [Flow], routed: &mut [Flow]) {
        let _ = (net, flow, flows, routed);
    }

    /// Analytic estimate, second pass (callees before callers): the mean response time in
    /// ms of a request arriving in `flow`, given every component's current response time
    /// in `response_ms`, and the estimate to report for it, if any. The default answers at
    /// once.
    fn response(
        &self,
        net: &Network,
        flow: &Flow,
        response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        let _ = (net, flow, response_ms);
        (0.0, None)
    }

    /// One draw of the response time (ms) of a request of class `class` whose mean is
    /// `mean_ms`, where the kind knows its distribution better than an exponential (for
    /// the estimate of a fan-out waiting for the slowest of several).
    fn sample_response_ms(&self, class: usize, mean_ms: f64, rng: &mut Rng) -> Option<f64> {
        let _ = (class, mean_ms, rng);
        None
    }
}

/// The kind of a component, shared by its instances.
pub type ComponentKind = Arc<dyn Kind>;

impl ComponentDef {
    /// Builds instance `index` (global id `first_instance + index`) for a run seeded
    /// `seed`. Its random stream is named `name[index]` whatever the number of replicas, so
    /// scaling a component out leaves its first instances' draws unchanged.
    pub fn instantiate(&self, index: u32, seed: u64) -> Box<dyn Component> {
        let rng = random::stream(seed, &format!("{}[{index}]", self.name));
        Arc::clone(&self.kind).instantiate(
            self.first_instance + index,
            self.instance_name(index),
            rng,
        )
    }
}
