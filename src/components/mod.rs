//! Components: the kinds of things a model is built from. Each kind has a validated
//! definition (shared by its instances) and an instance type implementing
//! [`Component`].

pub mod load_balancer;
pub mod service;

use crate::engine::{Component, InstanceId};
use crate::metrics::MetricDecl;
use crate::random;
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

/// The kinds of component.
#[derive(Debug, Clone)]
pub enum ComponentKind {
    /// A service with workers, a queue and a handler.
    Service(Arc<ServiceDef>),
    /// A load balancer.
    LoadBalancer(Arc<BalancerDef>),
}

impl ComponentKind {
    /// Kind name, as in model files.
    pub fn name(&self) -> &'static str {
        match self {
            ComponentKind::Service(_) => "service",
            ComponentKind::LoadBalancer(_) => "load_balancer",
        }
    }

    /// The metrics an instance of this kind reports, in report order.
    pub fn metrics(&self) -> &'static [MetricDecl] {
        match self {
            ComponentKind::Service(_) => service::METRICS,
            ComponentKind::LoadBalancer(_) => load_balancer::METRICS,
        }
    }

    /// Builds instance `index` (global id `id`) of component `def` for a run seeded `seed`.
    /// Its random stream is named `name[index]` whatever the number of replicas, so
    /// scaling a component out leaves its first instances' draws unchanged.
    pub fn instantiate(
        &self,
        def: &ComponentDef,
        id: InstanceId,
        index: u32,
        seed: u64,
    ) -> Box<dyn Component> {
        let rng = random::stream(seed, &format!("{}[{index}]", def.name));
        let name = def.instance_name(index);
        match self {
            ComponentKind::Service(s) => {
                Box::new(ServiceInstance::new(Arc::clone(s), id, name, rng))
            }
            ComponentKind::LoadBalancer(b) => {
                Box::new(BalancerInstance::new(Arc::clone(b), id, name, rng))
            }
        }
    }
}
