//! The model file as written: serde types that mirror the JSON (or YAML) a user writes.
//! Every struct rejects unknown fields. [`validate`](super::validate) turns a [`ModelSpec`]
//! into a runnable [`Model`](super::Model).

use crate::distributions::DistributionSpec;
use crate::time::DurationSpec;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Path or URL of the JSON Schema this file follows (for editors); ignored by scalesim.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// What the model shows, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Longer notes for readers of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Simulated time of one run, warm-up included, e.g. "10m".
    pub duration: DurationSpec,
    /// Initial period excluded from every statistic (default "0s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<DurationSpec>,
    /// Width of the windows of the time series in the output (default: a hundredth of
    /// `duration`, at least 1ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_window: Option<DurationSpec>,
    /// Default seed of the run (default 1); `--seed` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Most requests in flight (created and not yet finished) before a run stops early,
    /// reporting what it measured up to then (default 1000000). Only an overloaded model
    /// reaches it: its queues grow without bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u64>,
    /// Sources of requests, by name.
    pub workloads: IndexMap<String, WorkloadSpec>,
    /// The parts of the system, by name.
    pub components: IndexMap<String, ComponentSpec>,
}

/// A source of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// How requests arrive.
    pub arrivals: ArrivalsSpec,
    /// Request classes and their shares, e.g. {"read": 0.95, "write": 0.05} (default: one
    /// class named "default"). Shares are normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<IndexMap<String, f64>>,
    /// Popularity of the keys requests are about (default: every request has key 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeysSpec>,
    /// Component the requests are sent to.
    pub target: String,
    /// The client gives up after this long and counts a timeout (the work goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Stop after this many requests (default: no limit; the run ends at `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Number of distinct clients open-loop requests come from, for `hash_client`
    /// balancing (default 1000; a closed workload has one client per user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<u32>,
}

/// How requests arrive. Rates are requests per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalsSpec {
    /// Poisson arrivals: {"poisson": {"rate": 800}}.
    Poisson(RateSpec),
    /// Evenly spaced arrivals: {"constant": {"rate": 800}}.
    Constant(RateSpec),
    /// Independent gaps drawn from a distribution: {"interarrival": {"erlang": {...}}}.
    Interarrival(DistributionSpec),
    /// Poisson arrivals whose rate steps: {"steps": [{"at": "0s", "rate": 100}, ...]}.
    Steps(Vec<RateStepSpec>),
    /// Poisson arrivals whose rate moves linearly from `from` to `to` between `start` and `end`.
    Ramp(RampSpec),
    /// Poisson arrivals at `base`, at `peak` from `at` for `for`.
    Spike(SpikeSpec),
    /// A closed loop of users, each waiting for its answer and then thinking.
    Closed(ClosedSpec),
    /// Requests replayed from a CSV file with columns time, class, key.
    Trace(TraceSpec),
}

/// A constant rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// Requests per second.
    pub rate: f64,
}

/// The rate from time `at` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateStepSpec {
    /// When this rate starts.
    pub at: DurationSpec,
    /// Requests per second.
    pub rate: f64,
}

/// A linear ramp of the rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RampSpec {
    /// Rate before and at `start`.
    pub from: f64,
    /// Rate at and after `end`.
    pub to: f64,
    /// When the ramp starts.
    pub start: DurationSpec,
    /// When the ramp ends.
    pub end: DurationSpec,
}

/// A spike of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpikeSpec {
    /// Rate outside the spike.
    pub base: f64,
    /// Rate during the spike.
    pub peak: f64,
    /// When the spike starts.
    pub at: DurationSpec,
    /// How long it lasts.
    #[serde(rename = "for")]
    pub length: DurationSpec,
}

/// Closed-loop users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedSpec {
    /// Number of users.
    pub users: u32,
    /// Think time between an answer and the user's next request.
    pub think: DistributionSpec,
}

/// Trace replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// CSV file (relative to the model file) with a header `time,class,key`; time is a
    /// duration with a unit ("12.5ms") or seconds as a number, class a class name, key an
    /// integer.
    pub file: String,
}

/// Popularity of keys. Key 0 is the most popular.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeysSpec {
    /// Every key equally likely: {"uniform": {"keys": 1000}}.
    Uniform(UniformKeysSpec),
    /// Zipf law with exponent `s`: {"zipf": {"keys": 100000, "s": 0.9}}.
    Zipf(ZipfKeysSpec),
    /// A share of traffic to a small set: {"hot_set": {"keys": 100000, "hot_fraction": 0.01, "traffic": 0.9}}.
    HotSet(HotSetSpec),
    /// One key takes a share of traffic: {"hot_key": {"keys": 1000, "traffic": 0.5}}.
    HotKey(HotKeySpec),
}

/// Uniform keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UniformKeysSpec {
    /// Number of keys.
    pub keys: u64,
}

/// Zipf keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZipfKeysSpec {
    /// Number of keys.
    pub keys: u64,
    /// Exponent (0 is uniform; 1 is classic Zipf).
    pub s: f64,
}

/// Hot set of keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HotSetSpec {
    /// Number of keys.
    pub keys: u64,
    /// Fraction of the keys that are hot, in (0, 1].
    pub hot_fraction: f64,
    /// Fraction of the traffic that goes to hot keys, in [0, 1].
    pub traffic: f64,
}

/// A single hot key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HotKeySpec {
    /// Number of keys.
    pub keys: u64,
    /// Fraction of the traffic that goes to key 0, in [0, 1].
    pub traffic: f64,
}

/// A component; `kind` says which.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A spec is read once per file; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ComponentSpec {
    /// Workers and a queue running a handler per request.
    Service(ServiceSpec),
    /// Spreads calls over the instances of its backends.
    LoadBalancer(LoadBalancerSpec),
}

/// The kinds a component may have.
pub const COMPONENT_KINDS: [&str; 2] = ["service", "load_balancer"];

/// Marks a nested path inside an error message, so the loader can join it to the outer one.
pub const NESTED_PATH_MARK: char = '\u{1}';

impl<'de> Deserialize<'de> for ComponentSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read the whole object, take `kind`, then deserialize the rest into that kind's
        // struct while tracking the path, so errors point at the field inside.
        let mut value = serde_json::Value::deserialize(d)?;
        let kinds = crate::error::quoted(COMPONENT_KINDS);
        let Some(map) = value.as_object_mut() else {
            return Err(de::Error::custom(format!(
                "expected an object with a \"kind\" ({kinds}), got {}",
                if value.is_array() {
                    "a list".to_string()
                } else {
                    value.to_string()
                }
            )));
        };
        let kind = match map.shift_remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "{NESTED_PATH_MARK}kind{NESTED_PATH_MARK}expected one of {kinds}, got {other}"
                )));
            }
            None => {
                return Err(de::Error::custom(format!(
                    "{NESTED_PATH_MARK}kind{NESTED_PATH_MARK}required field is missing; expected one of {kinds}"
                )));
            }
        };
        fn nested<T: de::DeserializeOwned, E: de::Error>(v: serde_json::Value) -> Result<T, E> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                if path == "." {
                    E::custom(inner)
                } else {
                    E::custom(format!("{NESTED_PATH_MARK}{path}{NESTED_PATH_MARK}{inner}"))
                }
            })
        }
        match kind.as_str() {
            "service" => nested(value).map(ComponentSpec::Service),
            "load_balancer" => nested(value).map(ComponentSpec::LoadBalancer),
            other => Err(de::Error::custom(format!(
                "{NESTED_PATH_MARK}kind{NESTED_PATH_MARK}unknown component kind \"{other}\"; expected one of {kinds}{}",
                crate::error::did_you_mean(other, COMPONENT_KINDS)
            ))),
        }
    }
}

/// A service: instances with workers and a queue, running a handler per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Identical instances (default 1). Calls to a service with several instances and no
    /// load balancer in front go to them in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
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
    /// Price of one instance per hour, in any currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<f64>,
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
    /// Operation asked of the callee: "read" or "write" (default: the request's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpSpec>,
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

/// Operation asked of a callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpSpec {
    /// A read.
    Read,
    /// A write.
    Write,
}

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// Identical balancer instances (default 1); calls to them go in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
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
    /// Price of one balancer instance per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<f64>,
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
