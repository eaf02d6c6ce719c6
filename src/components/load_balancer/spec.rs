//! The `load_balancer` fields of a model file, as written. [`validate`](super::validate)
//! turns them into a [`BalancerDef`](super::BalancerDef).

use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// How a backend instance is picked (default "round_robin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// Component(s) behind the balancer: a name or a list of names; every instance of
    /// each is a backend.
    pub backends: BackendsSpec,
    /// With "weighted_round_robin": one weight per backend instance, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<u32>>,
    /// With "power_of_choices": instances drawn per request (default 2, at most 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<u32>,
    /// With "power_of_choices": draw distinct instances (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<bool>,
    /// Pick among the live backends in the caller's zone when there are any, and among all
    /// live backends otherwise (default false). The caller's zone is the balancer
    /// instance's, or, for a balancer with no zones, the zone of whoever called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_zone: Option<bool>,
    /// Active health checks: each balancer instance probes every backend instance each
    /// `interval` and takes it out after `unhealthy_threshold` failed probes in a row, back
    /// after `healthy_threshold` passed ones (default: none, every backend always picked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Passive outlier ejection: a backend instance whose replies fail
    /// `consecutive_failures` times in a row is left out for `ejection_time` (default:
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_ejection: Option<OutlierEjectionSpec>,
}

/// Active health checks of a balancer's backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// Time between two probes of each backend instance (default "5s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    /// A probe with no answer (a black-holed backend) fails after this; at most the
    /// interval (default "2s", or the interval if shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Failed probes in a row that take a backend out (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    /// Passed probes in a row that put it back (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
}

/// Passive outlier ejection of a balancer's backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierEjectionSpec {
    /// Failed replies in a row that eject a backend instance (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// How long an ejected instance is left out (default "30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ejection_time: Option<DurationSpec>,
    /// Largest share of the backend instances ejected at once, 0 to 1 (default 0.5; at
    /// least one instance when above 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejected_share: Option<f64>,
}

impl crate::model::spec::KindFields for LoadBalancerSpec {
    fn needs_network(&self) -> Option<(&'static str, &'static str)> {
        (self.prefer_zone == Some(true)).then_some((
            "prefer_zone",
            "needs backends placed in zones: a \"network\" block at the top of the model and \"zones\" on the backends",
        ))
    }
}

/// Balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicySpec {
    /// Each instance in turn.
    RoundRobin,
    /// In turn, as often as each instance's weight.
    WeightedRoundRobin,
    /// Uniformly at random.
    Random,
    /// Fewest outstanding calls (join the shortest queue).
    LeastConnections,
    /// Fewest outstanding calls among `choices` drawn at random.
    PowerOfChoices,
    /// Hash of the request key.
    HashKey,
    /// Hash of the client.
    HashClient,
}

/// Backends of a balancer.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BackendsSpec {
    /// One component.
    One(String),
    /// Several components.
    Many(Vec<String>),
}

impl BackendsSpec {
    /// The component names, in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            BackendsSpec::One(s) => vec![s.as_str()],
            BackendsSpec::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for BackendsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BackendsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a component name or a list of component names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BackendsSpec, E> {
                Ok(BackendsSpec::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<BackendsSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(BackendsSpec::Many)
            }
        }
        d.deserialize_any(V)
    }
}
