//! The `autoscaler` fields of a model file, as written. [`validate`](super::validate) turns
//! them into an [`AutoscalerDef`](super::AutoscalerDef).

use crate::model::spec::KindFields;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scales a service's instances between `min` and `max` on a metric, by target tracking
/// (`target_value`) or by steps (`steps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerSpec {
    /// The service whose instances it starts and stops.
    pub target: String,
    /// Fewest instances running (at least 1).
    pub min: u32,
    /// Most instances running: the target gets this many instances, those beyond the
    /// running ones down.
    pub max: u32,
    /// Instances running at the start (default: the target's `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<u32>,
    /// What it watches over each evaluation period.
    pub metric: ScalingMetricSpec,
    /// Target tracking: the value of the metric to keep (a share for utilization, ms for
    /// p99_latency, requests for queue_depth_per_instance, requests per second for
    /// requests_per_instance). Give this or `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_value: Option<f64>,
    /// Step scaling: [{"above": X, "add": N}, {"below": Y, "remove": N}]; the step with the
    /// highest `above` the metric passes adds, else the one with the lowest `below` it is
    /// under removes. Give this or `target_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<ScalingStepSpec>>,
    /// Time between two evaluations of the metric (default "60s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_period: Option<DurationSpec>,
    /// After a scale-out, no action of either kind for this long (default "300s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<DurationSpec>,
    /// After a scale-in, no other scale-in for this long (default "300s"); a scale-out may
    /// come earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<DurationSpec>,
    /// Time from the decision to start an instance until it takes work (default "0s"). It
    /// is paid for meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_delay: Option<DurationSpec>,
    /// What happens to an instance taken out: "drain" (it takes no new work and leaves
    /// once it holds none) or "fail" (the requests it holds fail at once, as `crashed`)
    /// (default "drain").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_remove: Option<OnRemoveSpec>,
}

/// The metric an autoscaler watches, over the last evaluation period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScalingMetricSpec {
    /// Busy workers over the workers of the serving instances (a share, 0 to 1).
    Utilization,
    /// Requests waiting now, in the serving instances' queues and in the queues whose
    /// consumers are the target, per serving instance.
    QueueDepthPerInstance,
    /// 99th percentile of the latency the workloads' clients saw, ms.
    P99Latency,
    /// Requests arriving per second, per serving instance.
    RequestsPerInstance,
}

/// One step of step scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingStepSpec {
    /// The step applies when the metric is above this (with `add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// The step applies when the metric is below this (with `remove`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Instances to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<u32>,
    /// Instances to take out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<u32>,
}

/// What happens to an instance the autoscaler takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRemoveSpec {
    /// It takes no new work and leaves once it holds none.
    Drain,
    /// The requests it holds fail at once.
    Fail,
}

impl KindFields for AutoscalerSpec {
    fn instances(&self, replicas: Option<u32>) -> Result<u32, String> {
        match replicas.unwrap_or(1) {
            1 => Ok(1),
            r => Err(format!(
                "an autoscaler has one instance (a controller), got {r}"
            )),
        }
    }

    /// An autoscaler that fails the requests of the instances it takes out fails them as
    /// crashed or refused.
    fn can_fail_with(&self, cause: crate::metrics::ErrorCause) -> bool {
        use crate::metrics::ErrorCause::*;
        matches!(cause, Crashed | Refused) && self.on_remove == Some(OnRemoveSpec::Fail)
    }

    /// Every instance the autoscaler may run is built (those it does not run are down).
    fn instances_of(&self, target: &str) -> Option<u32> {
        (self.target == target).then_some(self.max)
    }
}
