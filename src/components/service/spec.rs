//! The `service` fields of a model file, as written. [`validate`](super::validate) turns
//! them into a [`ServiceDef`](super::ServiceDef).

pub use crate::components::op::OpSpec;
use crate::distributions::DistributionSpec;
use crate::time::DurationSpec;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A service: instances with workers and a queue, running a handler per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Requests an instance serves at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Waiting room: a capacity (`1000`) or an object (default: unbounded FIFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSpec>,
    /// Service time of a `work` step, for every class without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<DistributionSpec>,
    /// Service time per class, overriding `service_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_times: Option<IndexMap<String, DistributionSpec>>,
    /// Steps per request: a list for every class, or an object of lists by class
    /// (default: `[{"work": "service_time"}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerSpec>,
    /// Event-loop server: the worker is released while the handler waits on calls
    /// (default false: a worker is held for the whole request).
    #[serde(rename = "async", default, skip_serializing_if = "Option::is_none")]
    pub asynchronous: Option<bool>,
    /// Load-dependent service time: every drawn service time is multiplied by a function
    /// of the instance's load when the step starts (default: none, times do not depend on
    /// load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown: Option<SlowdownSpec>,
    /// Keep each client's session in the memory of the instance that served it (default:
    /// none, a stateless service). A request that finds its session on another instance,
    /// or on this one before a crash, counts as a lost session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsSpec>,
    /// Token bucket on arrivals, per instance: an arrival finding no token fails at once
    /// with `rate_limited` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Load shedding: by queue length at arrival, by age at dequeue (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed: Option<ShedSpec>,
    /// Serve the newest waiting request first while the queue is longer than `above`
    /// (Facebook's adaptive LIFO), the oldest first otherwise (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_lifo: Option<AdaptiveLifoSpec>,
    /// What to do with a call whose caller has given up: "ignore" (default: serve it),
    /// "drop" (at dequeue, unserved, `deadline_exceeded`) or "abort" (also between the
    /// steps of its handler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<DeadlinesSpec>,
}

/// A token bucket, e.g. `{"rate": 100, "burst": 20}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Tokens added per second (> 0): the sustained rate let through.
    pub rate: f64,
    /// Tokens the bucket holds, full at the start (>= 1; default: one second of `rate`,
    /// at least 1): the burst let through at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// Load shedding, e.g. `{"queue_length": 50}` or `{"wait": "100ms"}`; at least one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShedSpec {
    /// An arrival finding this many requests waiting (>= 1) is shed (`shed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_length: Option<u32>,
    /// A request that waited longer than this (> 0) is shed when a worker takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<DurationSpec>,
}

/// Adaptive LIFO, e.g. `{"above": 10}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveLifoSpec {
    /// Queue length above which the newest request is served first (>= 0).
    pub above: u32,
}

/// Deadline propagation at a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlinesSpec {
    /// Serve calls whose caller gave up (the work is wasted).
    Ignore,
    /// Drop them when a worker would take them from the queue.
    Drop,
    /// Drop them at dequeue, and stop their handler between steps.
    Abort,
}

/// In-memory sessions, e.g. `{"idle_timeout": "30m"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsSpec {
    /// A session unused for longer expires (the client starts a new one; not a loss).
    /// Default "30m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<DurationSpec>,
}

/// Load-dependent service time (GC pressure, thrashing): `work` steps take longer when
/// the instance is loaded, e.g. `{"by": "in_system", "linear": {"knee": 16, "slope":
/// 0.05}, "max": 4}`. Exactly one of `linear` and `exponential`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowdownSpec {
    /// The load measured when a `work` step starts (default "in_service").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<LoadMeasureSpec>,
    /// Multiplier 1 + slope × (load − knee) above the knee, 1 below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearSlowdownSpec>,
    /// Multiplier e^(rate × (load − knee)) above the knee, 1 below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential: Option<ExponentialSlowdownSpec>,
    /// Largest multiplier, at least 1 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// What load a slowdown depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadMeasureSpec {
    /// Requests holding a worker of the instance, the starting one included.
    InService,
    /// Busy workers over workers, the starting request included (0 to 1).
    Utilization,
    /// Requests at the instance: holding a worker (the starting one included) or waiting.
    InSystem,
}

/// A linear slowdown above a knee.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinearSlowdownSpec {
    /// Load up to which service times are unchanged (requests, or a share for
    /// "utilization").
    pub knee: f64,
    /// Added to the multiplier per unit of load above the knee (≥ 0).
    pub slope: f64,
}

/// An exponential slowdown above a knee.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExponentialSlowdownSpec {
    /// Load up to which service times are unchanged (requests, or a share for
    /// "utilization").
    pub knee: f64,
    /// Growth rate of the multiplier per unit of load above the knee (≥ 0).
    pub rate: f64,
}

impl crate::model::spec::KindFields for ServiceSpec {
    /// A service fails requests with its own rate limit, load shedding and deadlines.
    fn can_fail_with(&self, cause: crate::metrics::ErrorCause) -> bool {
        use crate::metrics::ErrorCause::*;
        match cause {
            RateLimited => self.rate_limit.is_some(),
            Shed => self.shed.is_some(),
            DeadlineExceeded => self.deadlines.is_some_and(|d| d != DeadlinesSpec::Ignore),
            _ => false,
        }
    }
}

/// A queue: a capacity alone, or the full form.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum QueueSpec {
    /// Capacity: requests that may wait per instance (0: none wait, a loss system).
    Capacity(u32),
    /// Full form.
    Full(QueueFullSpec),
}

/// A queue in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueFullSpec {
    /// Requests that may wait per instance (default: unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Order of service: "fifo" (default), "lifo" or "priority".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discipline: Option<DisciplineSpec>,
    /// With "priority": level of each class, lower served first (default level 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<IndexMap<String, u8>>,
    /// A request that waited longer than this is dropped, unserved, when it reaches the
    /// head of the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
}

/// Queue discipline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisciplineSpec {
    /// First come, first served.
    Fifo,
    /// Last come, first served.
    Lifo,
    /// By class priority.
    Priority,
}

impl<'de> Deserialize<'de> for QueueSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = QueueSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a capacity (a whole number) or an object with capacity, discipline, priorities, timeout")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<QueueSpec, E> {
                u32::try_from(v)
                    .map(QueueSpec::Capacity)
                    .map_err(|_| E::custom(format!("queue capacity {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<QueueSpec, E> {
                Err(E::custom(format!(
                    "queue capacity must be 0 or more, got {v}"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<QueueSpec, E> {
                Err(E::custom(format!(
                    "queue capacity must be a whole number, got {v}"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<QueueSpec, A::Error> {
                QueueFullSpec::deserialize(MapAccessDeserializer::new(map)).map(QueueSpec::Full)
            }
        }
        d.deserialize_any(V)
    }
}

/// Handler steps: one list for every class, or a list per class.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HandlerSpec {
    /// The same steps for every class.
    All(Vec<StepSpec>),
    /// Steps per class; a class not listed gets `[{"work": "service_time"}]`.
    PerClass(IndexMap<String, Vec<StepSpec>>),
}

impl<'de> Deserialize<'de> for HandlerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HandlerSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of steps, or an object of step lists by class")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<HandlerSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(HandlerSpec::All)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HandlerSpec, A::Error> {
                IndexMap::deserialize(MapAccessDeserializer::new(map)).map(HandlerSpec::PerClass)
            }
        }
        d.deserialize_any(V)
    }
}

/// One step of a handler: exactly one of `work`, `call`, `fan_out`, `route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Hold the worker: "service_time" (the class's service time) or a distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<WorkSpec>,
    /// Call this component and wait for its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Call all these components at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<Vec<String>>,
    /// Hand the request on to one of these components, chosen at random with the given
    /// probabilities, e.g. {"disk1": 0.3, "disk2": 0.2}; with the rest (here 0.5) it is done
    /// here. A tail call: this service is done with the request, and the chosen component's
    /// answer goes to this service's caller. Only as the last step; cycles are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<IndexMap<String, f64>>,
    /// With `fan_out`: wait for "all" (default), "any", or {"k": n} successful answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
    /// Operation asked of the callee: "read", "write", "invalidate" or "set" (default: the
    /// request's own). A `set` carries the version of the key the request last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpSpec>,
    /// With `call`: steps taken when the callee answers that it held the key (a cache
    /// hit), before the steps after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_hit: Option<Vec<StepSpec>>,
    /// With `call`: steps taken when the callee answers that it did not hold the key (a
    /// cache miss), e.g. `[{"call": "db"}, {"call": "cache", "op": "set"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_miss: Option<Vec<StepSpec>>,
}

/// How long a `work` step holds the worker.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum WorkSpec {
    /// The service time of the request's class ("service_time").
    Named(String),
    /// A distribution of its own.
    Distribution(DistributionSpec),
}

impl<'de> Deserialize<'de> for WorkSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WorkSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"service_time\" or a distribution such as {\"exponential\": {\"mean\": \"2ms\"}}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WorkSpec, E> {
                if v == "service_time" {
                    Ok(WorkSpec::Named(v.to_string()))
                } else {
                    Err(E::custom(format!(
                        "expected \"service_time\" or a distribution, got \"{v}\""
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WorkSpec, A::Error> {
                DistributionSpec::deserialize(MapAccessDeserializer::new(map))
                    .map(WorkSpec::Distribution)
            }
        }
        d.deserialize_any(V)
    }
}

/// How many answers of a fan-out to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WaitSpec {
    /// Every call must succeed.
    All,
    /// The first success is enough.
    Any,
    /// `k` successes are enough.
    K(u16),
}
