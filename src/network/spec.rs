//! The `network` block of a model file, as written: the zones instances and clients can be
//! placed in, the regions grouping them, and the latency of a message between two zones.
//! [`validate`](super::validate) turns it into a [`NetworkDef`](super::NetworkDef).

use crate::distributions::DistributionSpec;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Zones, regions and latencies: `{"zones": ["a", "b"], "latency": {"zone": ..., "cross_zone":
/// ...}}`. A component is placed in zones by its own `zones` field, a workload's clients by
/// its `zone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Every zone, by name.
    pub zones: Vec<String>,
    /// Zones grouped in regions, e.g. {"eu": ["eu-a", "eu-b"], "us": ["us-a"]}; each zone in
    /// exactly one (default: every zone in one region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<IndexMap<String, Vec<String>>>,
    /// One-way latency of a message (a call, or its reply) by where it goes.
    pub latency: LatencySpec,
    /// Latency between two particular zones, in both directions, in place of `cross_zone` or
    /// `cross_region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<LinkSpec>>,
}

/// One-way latencies, each a distribution of durations drawn for every message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Between two instances of the same zone (needed when any zone talks to itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<DistributionSpec>,
    /// Between two zones of the same region not joined by a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_zone: Option<DistributionSpec>,
    /// Between zones of different regions not joined by a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region: Option<DistributionSpec>,
}

/// The latency between two zones, both ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end.
    pub from: String,
    /// The other end.
    pub to: String,
    /// One-way latency of a message over the link, either way.
    pub latency: DistributionSpec,
}
