//! The model file's call policies: a component's `calls_to` maps each callee to a
//! [`CallPolicySpec`] (`"calls_to": {"db": {"timeout": "200ms"}}`).

use super::hedge::HedgeSpec;
use super::retry::RetrySpec;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a component does about its calls to one callee (every call its instances make to
/// it: a service's `call`, `set` and `fan_out` steps, a balancer's calls to its backends, a
/// cache's calls to its backend).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallPolicySpec {
    /// Each attempt fails with `timeout` after this long without a reply; the callee's
    /// work goes on (default: none, wait for as long as it takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Retries of a failed attempt, to another pick of the callee's group (default: none;
    /// see [`RetrySpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetrySpec>,
    /// A circuit breaker per caller instance (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerSpec>,
    /// A call that failed for good (after its retries, or refused by the breaker) is
    /// answered as a success and counted degraded (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSpec>,
    /// A cap on the attempts each caller instance has out to the callee at once, with a
    /// small waiting queue (default: none; not with `pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<BulkheadSpec>,
    /// A connection pool per caller instance: an attempt needs one of its connections
    /// (default: none; not with `bulkhead`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
    /// A second copy of an attempt with no reply after a delay, to another instance of
    /// the callee; the first reply answers the call (default: none; see [`HedgeSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeSpec>,
}

/// A bulkhead's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkheadSpec {
    /// Attempts a caller instance may have out to the callee at once (at least 1).
    pub max_concurrent: u32,
    /// Calls that may wait (first in, first out) for one of those; one more fails at once
    /// with `bulkhead_full` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
}

/// A connection pool's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Connections per caller instance (at least 1); an attempt holds one until its reply
    /// (or its timeout).
    pub size: u32,
    /// A call waiting this long for a connection fails with `pool_timeout` (default: it
    /// waits as long as it takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_timeout: Option<DurationSpec>,
}

/// A circuit breaker's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Opens when this share of the window's attempts failed, in (0, 1] (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// An attempt that takes at least this long counts as slow (default: none is slow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_call: Option<DurationSpec>,
    /// Opens when this share of the window's attempts was slow, in (0, 1] (default 0.5;
    /// only with `slow_call`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_rate: Option<f64>,
    /// How far back outcomes count (default "10s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DurationSpec>,
    /// Attempts the window must hold before it can open (default 20, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
    /// How long it stays open before probing (default "5s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_for: Option<DurationSpec>,
    /// Probes let through half open (default 3, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_open_calls: Option<u32>,
}

/// How a failed call is answered instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackSpec {
    /// The answer: "ok" (a default answer or a stale copy, counted degraded).
    pub answer: FallbackAnswer,
}

/// A fallback's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackAnswer {
    /// The call succeeds.
    Ok,
}
