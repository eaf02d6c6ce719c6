//! The model file as written: serde types that mirror the JSON (or YAML) a user writes.
//! Every struct rejects unknown fields. [`validate`](super::validate) turns a [`ModelSpec`]
//! into a runnable [`Model`](super::Model). The fields of each component kind are declared
//! in that kind's module (`components::<kind>::spec`) and listed once in
//! `component_kinds!`.

use super::resolve::Resolver;
use crate::components::ComponentKind;
pub use crate::components::autoscaler::spec::*;
pub use crate::components::cache::spec::*;
pub use crate::components::database::spec::*;
pub use crate::components::load_balancer::spec::*;
pub use crate::components::queue::spec::*;
pub use crate::components::service::spec::*;
pub use crate::components::shards::spec::*;
use crate::distributions::DistributionSpec;
use crate::error::Errors;
use crate::time::DurationSpec;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
    /// Record every component's metrics and the workloads' p99 window by window too
    /// (`runs[].component_series`), as a model with faults or bursts always does (default
    /// false: a model without them records only the workloads' counts and mean latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_series: Option<bool>,
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
    /// Zones, regions and the latency between them (default: none, messages take no time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::spec::NetworkSpec>,
    /// What fails, how and when (default: nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<crate::faults::spec::FaultSpec>>,
    /// How recovery from faults and bursts is judged (default: goodput within 10% and p99
    /// within 2 times of their level before, metastable when not back a quarter of
    /// `duration` after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<crate::faults::recovery::RecoverySpec>,
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
    /// The operation of each class, e.g. {"checkout": "write", "browse": "read"} (default:
    /// classes named "read" and "write" are those operations, other classes none, which
    /// data components take as a read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<IndexMap<String, OpSpec>>,
    /// The zone of the network its clients are in (default: none, so that a call to the
    /// target crosses nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Client-side token bucket shared by its clients: a request finding no token fails
    /// at once with `rate_limited`, unsent (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Client retries: a failed attempt (the client's own timeout included) is sent again
    /// after a backoff (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<crate::policy::retry::RetrySpec>,
    /// False: its writes (classes whose operation is "write") are not idempotent, so a
    /// retry whose earlier attempt also succeeded is a duplicate write (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Its non-idempotent writes carry an idempotency key: the duplicates are removed
    /// (counted as deduplicated; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<bool>,
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

/// A component: the fields every kind has, and its kind with the kind's own fields, all in
/// one object of the model file: `{"kind": "service", "replicas": 3, "workers": 8, ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// Fields every component has.
    pub common: CommonSpec,
    /// Its kind and the kind's own fields.
    pub kind: KindSpec,
}

/// The fields every component has, whatever its kind: read and checked in one place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommonSpec {
    /// Identical instances (default 1). Calls to a component with several instances and no
    /// load balancer in front go to them in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Price of one instance per hour, in any currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<f64>,
    /// Zones of the network its instances are spread over, instance `i` in the `i mod n`th
    /// (default: none, so that it is where its callers are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// Policies of the calls its instances make, by callee name (timeout, retries,
    /// breaker, fallback; see `crate::policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_to: Option<IndexMap<String, crate::policy::spec::CallPolicySpec>>,
}

/// What the model needs of a kind's fields before they are validated: how many instances
/// the component has. Every kind's spec type implements it (most with the default).
pub trait KindFields {
    /// The number of instances of a component of this kind whose `replicas` field is
    /// `replicas` (`None` when not given), or what is wrong with that number. By default
    /// `replicas` identical instances, at least 1 (1 when not given).
    fn instances(&self, replicas: Option<u32>) -> Result<u32, String> {
        match replicas.unwrap_or(1) {
            0 => Err("must be at least 1, got 0".to_string()),
            r => Ok(r),
        }
    }

    /// True when a component with these fields can fail a request with `cause`, one of
    /// the causes a model meets only when it uses the feature (see
    /// [`crate::model::Model::can_fail_with`]). By default none.
    fn can_fail_with(&self, cause: crate::metrics::ErrorCause) -> bool {
        let _ = cause;
        false
    }

    /// The instances a component with these fields makes component `target` build, when
    /// it needs more than `target`'s own fields say (an autoscaler: its `max`, as every
    /// instance it may run is built); `None` by default.
    fn instances_of(&self, target: &str) -> Option<u32> {
        let _ = target;
        None
    }

    /// The field a component with these fields sets that needs a `network` block, and
    /// what to tell the user when the model has none; `None` by default.
    fn needs_network(&self) -> Option<(&'static str, &'static str)> {
        None
    }
}

/// Names of the fields of [`CommonSpec`], as in model files.
pub const COMMON_FIELDS: [&str; 4] = ["replicas", "cost_per_hour", "zones", "calls_to"];

/// Declares the component kinds, each once: its name in model files, its variant of
/// [`KindSpec`] with the type of its own fields, and the function that validates them into
/// its definition. A new kind is one line here plus its module under `src/components/`.
macro_rules! component_kinds {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($spec:ty, $validate:path)),+ $(,)?) => {
        /// A component's kind, with the fields of that kind.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        // A spec is read once per file; boxing the larger variant would buy nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum KindSpec {
            $($(#[$doc])* $variant($spec),)+
        }

        /// The kinds a component may have, as in model files.
        pub const COMPONENT_KINDS: &[&str] = &[$($name),+];

        impl KindSpec {
            /// The fields `value` (without `kind` and the common fields) of a component of
            /// kind `kind`; `None` for an unknown kind.
            fn from_value<E: de::Error>(kind: &str, value: serde_json::Value) -> Option<Result<Self, E>> {
                match kind {
                    $($name => Some(nested_kind(value).map(KindSpec::$variant)),)+
                    _ => None,
                }
            }

            /// Its number of instances (see [`KindFields::instances`]).
            pub fn instances(&self, replicas: Option<u32>) -> Result<u32, String> {
                match self {
                    $(KindSpec::$variant(s) => s.instances(replicas),)+
                }
            }

            /// True when it can fail a request with `cause` (see [`KindFields::can_fail_with`]).
            pub fn can_fail_with(&self, cause: crate::metrics::ErrorCause) -> bool {
                match self {
                    $(KindSpec::$variant(s) => s.can_fail_with(cause),)+
                }
            }

            /// The instances it makes component `target` build (see [`KindFields::instances_of`]).
            pub fn instances_of(&self, target: &str) -> Option<u32> {
                match self {
                    $(KindSpec::$variant(s) => s.instances_of(target),)+
                }
            }

            /// Its field that needs a network block (see [`KindFields::needs_network`]).
            pub fn needs_network(&self) -> Option<(&'static str, &'static str)> {
                match self {
                    $(KindSpec::$variant(s) => s.needs_network(),)+
                }
            }

            /// Validates the kind's fields at `path`, for component number `me`.
            pub fn validate(
                &self,
                r: &Resolver,
                errs: &mut Errors,
                path: &str,
                me: usize,
            ) -> Option<ComponentKind> {
                match self {
                    $(KindSpec::$variant(s) => {
                        $validate(r, errs, path, me, s).map(|d| Arc::new(d) as ComponentKind)
                    })+
                }
            }
        }

        /// The schema of a component: each kind's fields with the common ones.
        #[derive(JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        #[allow(dead_code, clippy::large_enum_variant)]
        enum ComponentSchema {
            $($(#[$doc])* $variant($spec),)+
        }
    };
}

component_kinds! {
    /// Workers and a queue running a handler per request.
    "service" => Service(ServiceSpec, crate::components::service::validate::service),
    /// Spreads calls over the instances of its backends.
    "load_balancer" => LoadBalancer(LoadBalancerSpec, crate::components::load_balancer::validate::balancer),
    /// Sends each request to the component that owns its key: hash mod N, consistent hashing, key ranges.
    "shards" => Shards(ShardsSpec, crate::components::shards::validate::shards),
    /// A primary with read replicas, or quorum copies, holding versioned keys.
    "database" => Database(DatabaseSpec, crate::components::database::validate::database),
    /// Holds up to `capacity` keys per instance in front of a slower component.
    "cache" => Cache(CacheSpec, crate::components::cache::validate::cache),
    /// A message broker: answers the producer once enqueued, delivers to a consumer service at least once.
    "queue" => Queue(MessageQueueSpec, crate::components::queue::validate::queue),
    /// Starts and stops a service's instances on a metric (target tracking or steps).
    "autoscaler" => Autoscaler(AutoscalerSpec, crate::components::autoscaler::validate::autoscaler),
}

impl JsonSchema for ComponentSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ComponentSpec".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Each kind's object, with the common fields added to its properties.
        let mut schema = ComponentSchema::json_schema(generator);
        let common = CommonSpec::json_schema(generator);
        let common = common
            .get("properties")
            .and_then(|p| p.as_object())
            .cloned()
            .unwrap_or_default();
        if let Some(kinds) = schema.get_mut("oneOf").and_then(|k| k.as_array_mut()) {
            for kind in kinds {
                if let Some(props) = kind.get_mut("properties").and_then(|p| p.as_object_mut()) {
                    props.extend(common.clone());
                }
            }
        }
        schema.insert(
            "description".into(),
            "A component; `kind` says which.".into(),
        );
        schema
    }
}

impl Serialize for ComponentSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(&self.kind).map_err(S::Error::custom)?;
        let common = serde_json::to_value(&self.common).map_err(S::Error::custom)?;
        if let (Some(map), serde_json::Value::Object(common)) = (value.as_object_mut(), common) {
            map.extend(common);
        }
        value.serialize(s)
    }
}

/// Marks a nested path inside an error message, so the loader can join it to the outer one.
pub const NESTED_PATH_MARK: char = '\u{1}';

/// Deserializes `v` as `T`, keeping the path of a field inside it in the error.
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

/// [`nested`] for a kind's own fields: an unknown field lists the common fields too among
/// those expected, since they are allowed in the same object.
fn nested_kind<T: de::DeserializeOwned, E: de::Error>(v: serde_json::Value) -> Result<T, E> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let mut inner = e.into_inner().to_string();
        // An unknown field at the top of the kind's object has itself as its path.
        if let Some(rest) = inner.strip_prefix("unknown field `")
            && let Some((field, expected)) = rest.split_once('`')
            && (path == "." || path == field)
        {
            let own = expected
                .trim_start_matches(", expected one of ")
                .trim_start_matches(", expected ")
                .trim_start_matches(", there are no fields");
            let mut all: Vec<&str> = COMMON_FIELDS.to_vec();
            all.extend(
                own.split(", ")
                    .map(|f| f.trim_matches('`'))
                    .filter(|f| !f.is_empty()),
            );
            let list: Vec<String> = all.iter().map(|f| format!("`{f}`")).collect();
            inner = format!(
                "unknown field `{field}`, expected one of {}",
                list.join(", ")
            );
        }
        if path == "." {
            E::custom(inner)
        } else {
            E::custom(format!("{NESTED_PATH_MARK}{path}{NESTED_PATH_MARK}{inner}"))
        }
    })
}

impl<'de> Deserialize<'de> for ComponentSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read the whole object, take `kind` and the common fields, then deserialize the
        // rest into that kind's struct while tracking the path, so errors point at the
        // field inside.
        let mut value = serde_json::Value::deserialize(d)?;
        let kinds = crate::error::quoted(COMPONENT_KINDS.iter().copied());
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
        if !COMPONENT_KINDS.contains(&kind.as_str()) {
            return Err(de::Error::custom(format!(
                "{NESTED_PATH_MARK}kind{NESTED_PATH_MARK}unknown component kind \"{kind}\"; expected one of {kinds}{}",
                crate::error::did_you_mean(&kind, COMPONENT_KINDS.iter().copied())
            )));
        }
        let mut common = serde_json::Map::new();
        for field in COMMON_FIELDS {
            if let Some(v) = map.shift_remove(field) {
                common.insert(field.to_string(), v);
            }
        }
        let common: CommonSpec = nested(serde_json::Value::Object(common))?;
        match KindSpec::from_value(&kind, value) {
            Some(kind) => Ok(ComponentSpec {
                common,
                kind: kind?,
            }),
            None => Err(de::Error::custom(format!(
                "{NESTED_PATH_MARK}kind{NESTED_PATH_MARK}unknown component kind \"{kind}\"; expected one of {kinds}{}",
                crate::error::did_you_mean(&kind, COMPONENT_KINDS.iter().copied())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, parse_model_str};

    fn model(components: &str) -> Result<crate::model::Model, Vec<crate::error::ModelError>> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "lb"}}}},
                "components": {components}}}"#
        );
        parse_model_str(&text, Format::Json, std::path::Path::new("."), &[])
    }

    #[test]
    fn the_common_fields_are_read_once_for_every_kind() {
        let m = model(
            r#"{"lb": {"kind": "load_balancer", "replicas": 2, "cost_per_hour": 0.5, "backends": "s"},
                "s": {"kind": "service", "cost_per_hour": 1.25, "replicas": 3,
                      "service_time": {"constant": "1ms"}}}"#,
        )
        .unwrap();
        let lb = &m.components[0];
        assert_eq!((lb.replicas, lb.cost_per_hour), (2, 0.5));
        assert_eq!(lb.kind.name(), "load_balancer");
        let s = &m.components[1];
        assert_eq!((s.replicas, s.cost_per_hour), (3, 1.25));
        assert_eq!(s.kind.name(), "service");
        assert_eq!(m.spec.components["s"].common.replicas, Some(3));
    }

    #[test]
    fn a_mistyped_common_field_is_suggested_and_a_bad_one_is_reported_at_its_path() {
        let errs = model(
            r#"{"lb": {"kind": "load_balancer", "replica": 2, "backends": "s"},
                "s": {"kind": "service", "service_time": {"constant": "1ms"}}}"#,
        )
        .unwrap_err();
        assert_eq!(errs[0].path, "components.lb.replica", "{errs:?}");
        assert!(
            errs[0].message.contains("did you mean \"replicas\""),
            "{}",
            errs[0].message
        );
        assert!(
            errs[0].message.contains("\"backends\""),
            "{}",
            errs[0].message
        );
        let errs = model(
            r#"{"lb": {"kind": "load_balancer", "cost_per_hour": -1, "backends": "s"},
                "s": {"kind": "service", "replicas": 0, "service_time": {"constant": "1ms"}}}"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["components.s.replicas", "components.lb.cost_per_hour"],
            "{errs:?}"
        );
    }

    #[test]
    fn a_component_serializes_as_one_object_and_reads_back() {
        let text = r#"{"kind": "service", "replicas": 2, "workers": 4,
                       "service_time": {"constant": "1ms"}}"#;
        let spec: ComponentSpec = serde_json::from_str(text).unwrap();
        let value = serde_json::to_value(&spec).unwrap();
        assert_eq!(value["kind"], "service");
        assert_eq!(value["replicas"], 2);
        assert_eq!(value["workers"], 4);
        let back: ComponentSpec = serde_json::from_value(value).unwrap();
        assert_eq!(back, spec);
    }
}
