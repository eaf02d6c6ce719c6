//! Components: the kinds of things a model is built from. Each kind lives in its own module
//! (`service`, `load_balancer`): a validated definition shared by its instances, which
//! implements [`Kind`] (its links in the call graph, its instances, its estimate), its
//! validation (`<kind>/validate.rs`), its estimate (`<kind>/estimate.rs`) and an instance
//! type implementing the engine's [`Component`].
//!
//! A new kind touches: one variant of `model::spec::ComponentSpec` (with its spec type and
//! the line that validates it), and its own module here.

pub mod autoscaler;
pub mod cache;
pub mod database;
pub mod load_balancer;
pub mod op;
pub mod queue;
pub mod service;
pub mod shards;

use crate::analysis::keys::KeyRates;
use crate::analysis::{Flow, KeyedEstimate, MetricEstimate, Network, ServiceEstimate, Traffic};
use crate::engine::{Component, InstanceId, Pick};
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
    /// Name of instance `index`, as its kind names it (by default the component name
    /// alone when it has one instance, `name[index]` otherwise).
    pub fn instance_name(&self, index: u32) -> String {
        self.kind.instance_name(&self.name, index, self.replicas)
    }
}

/// The default name of instance `index` of `count` of component `component`: the
/// component name alone when it has one instance, `component[index]` otherwise.
pub fn numbered_instance_name(component: &str, index: u32, count: u32) -> String {
    if count == 1 {
        component.to_string()
    } else {
        format!("{component}[{index}]")
    }
}

/// How a diagram draws a component of some kind (see [`Kind::diagram_shape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagramShape {
    /// Mermaid node brackets: opening and closing.
    pub mermaid: (&'static str, &'static str),
    /// Graphviz `shape` attribute.
    pub dot: &'static str,
}

impl DiagramShape {
    /// A plain box.
    pub const BOX: DiagramShape = DiagramShape {
        mermaid: ("[", "]"),
        dot: "box",
    };
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

    /// Builds all the instances of a component for one run: instance `i` has global id
    /// `first + i`, name `names[i]` and stream `rngs[i]`. The default builds each alone; a
    /// kind whose instances share the run's state (a database's versions of each key,
    /// read by its primary and replicas) builds it here and hands it to each.
    fn instantiate_all(
        self: Arc<Self>,
        first: InstanceId,
        names: Vec<String>,
        rngs: Vec<Rng>,
    ) -> Vec<Box<dyn Component>> {
        names
            .into_iter()
            .zip(rngs)
            .enumerate()
            .map(|(i, (name, rng))| Arc::clone(&self).instantiate(first + i as u32, name, rng))
            .collect()
    }

    /// Name of instance `index` of the `count` instances of component `component`. The
    /// default numbers them (`app[2]`), or uses the component name alone for one.
    fn instance_name(&self, component: &str, index: u32, count: u32) -> String {
        numbered_instance_name(component, index, count)
    }

    /// How calls to the component choose among its live instances, when not in turn
    /// (the default): for instances `first..first + count` of a run, drawing from `rng`.
    fn picker(&self, first: InstanceId, count: u32, rng: Rng) -> Option<Box<dyn Pick>> {
        let _ = (first, count, rng);
        None
    }

    /// Workers per instance, when a request holds one while it waits on the calls it makes
    /// (a thread-per-request service): a call that can come back here may then deadlock.
    fn workers_held_while_waiting(&self) -> Option<u32> {
        None
    }

    /// Workers per instance, for a kind that runs requests on a pool of them (a fault can
    /// cut them).
    fn workers(&self) -> Option<u32> {
        None
    }

    /// True when its group learns of a crashed instance at once and sends it nothing until
    /// it recovers (a database cluster's membership); otherwise callers keep sending to it.
    fn crash_leaves_group(&self) -> bool {
        false
    }

    /// True when a crashed instance of a component it sends to leaves that component's
    /// group at once (a shard router sees the shard down and places its keys elsewhere);
    /// otherwise a target's own [`Kind::crash_leaves_group`] decides.
    fn crash_takes_targets_out_of_group(&self) -> bool {
        false
    }

    /// How a diagram draws a component of this kind: the Mermaid node brackets (open,
    /// close) and the Graphviz node shape. By default a plain box.
    fn diagram_shape(&self) -> DiagramShape {
        DiagramShape::BOX
    }

    /// True when its instances can run degraded (slower, failing a share of requests, with
    /// fewer workers): see [`crate::engine::Component::set_degradation`].
    fn can_degrade(&self) -> bool {
        false
    }

    /// True when its instances hold keys a fault can flush (a cache).
    fn can_flush(&self) -> bool {
        false
    }

    /// True when it answers the requests sent to it; false for a kind that only acts on
    /// others (an autoscaler), which no call, route, backend or workload may name.
    fn takes_requests(&self) -> bool {
        true
    }

    /// The component (group id) whose instances it starts and stops, for a kind that
    /// scales another (an autoscaler); `None` for the others.
    fn scales(&self) -> Option<usize> {
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

    /// True for a kind whose estimate depends on which keys its requests are about (a
    /// cache): the analysis then works out the rate of each key reaching it and asks
    /// [`Kind::keyed`].
    fn reads_keys(&self) -> bool {
        false
    }

    /// Its keyed estimate, from the per-key rates of the traffic reaching it (see
    /// [`crate::analysis::keyed_estimates`]): the share of reads it answers as hits, the
    /// stream it sends on, and what to report beside the simulation. Only asked of kinds
    /// that [read keys](Kind::reads_keys).
    fn keyed(&self, net: &Network, traffic: &Traffic) -> Option<KeyedEstimate> {
        let _ = (net, traffic);
        None
    }

    /// For a kind that sends each key to one of its targets (a shard router): the per-key
    /// rates `keys` of a keyed stream arriving at it, as each target group gets them. `None`
    /// for the others, whose targets get a stream's keys as they are, scaled by their share
    /// of its flow.
    fn partition_keys(
        &self,
        model: &crate::model::Model,
        keys: &KeyRates,
    ) -> Option<Vec<(usize, KeyRates)>> {
        let _ = (model, keys);
        None
    }

    /// Analytic estimates of metrics the kind declares, other than a service's queue
    /// estimate, for the settled flow `flow` arriving at it; `warnings` takes what the
    /// estimate finds worth a user's attention. The default estimates nothing.
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        warnings: &mut Vec<String>,
    ) -> Vec<MetricEstimate> {
        let _ = (net, flow, warnings);
        Vec::new()
    }

    /// Mean (ms) and SCV of the time a request arriving in `flow` holds a worker doing its
    /// own work (its calls left out), and whether it makes calls: for a kind with workers
    /// (a service) that another component's estimate pools (a queue's consumers). `net`
    /// is this component's.
    fn work_hold(&self, net: &Network, flow: &Flow) -> Option<(f64, f64, bool)> {
        let _ = (net, flow);
        None
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
    /// Builds its instances (global ids from `first_instance`) for a run seeded `seed`.
    /// Instance `index` draws from the stream named `name[index]` whatever the number of
    /// replicas, so scaling a component out leaves its first instances' draws unchanged.
    pub fn instantiate_all(&self, seed: u64) -> Vec<Box<dyn Component>> {
        let names = (0..self.replicas).map(|i| self.instance_name(i)).collect();
        let rngs = (0..self.replicas)
            .map(|i| random::stream(seed, &format!("{}[{i}]", self.name)))
            .collect();
        Arc::clone(&self.kind).instantiate_all(self.first_instance, names, rngs)
    }

    /// How calls to it choose an instance in a run seeded `seed` (from the stream named
    /// `name#pick`), when its kind routes them.
    pub fn picker(&self, seed: u64) -> Option<Box<dyn Pick>> {
        let rng = random::stream(seed, &format!("{}#pick", self.name));
        self.kind.picker(self.first_instance, self.replicas, rng)
    }
}
