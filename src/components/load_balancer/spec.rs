//! The `load_balancer` fields of a model file, as written. [`validate`](super::validate)
//! turns them into a [`BalancerDef`](super::BalancerDef).

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
}

impl crate::model::spec::KindFields for LoadBalancerSpec {}

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
