//! Resilience policies: what happens where calls leave and replies return (retries,
//! timeouts, breakers, ...), declared in the model file and shared by a workload's clients
//! and by every component kind's calls. A model's `calls_to` asks them of the calls one
//! component makes to another, as validated runtime values the engine's guard
//! (`engine::guard`) applies.
//!
//! - [`retry`]: the `retries` block: backoff with jitter and a retry budget.
//! - [`spec`]: the model file's `calls_to` blocks (serde).
//! - [`validate`]: from those blocks to [`EdgePolicy`] values, with field paths.
//! - [`breaker`]: the circuit breaker's state machine, one per caller instance and callee.
//! - [`hedge`]: hedged requests: a second copy after a delay, and the reply times a
//!   percentile delay is taken from.
//! - [`slots`]: bulkheads and connection pools: a bounded number of attempts out per
//!   caller instance, and who waits for the next free one.
//! - [`report`]: what each edge counted, for the results.

pub mod breaker;
pub mod hedge;
pub mod report;
pub mod retry;
pub mod slots;
pub mod spec;
pub mod validate;

use crate::time::SimDuration;

/// What a caller does about its calls to one callee.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallPolicy {
    /// Each attempt fails with `timeout` after this long without a reply (its work goes
    /// on at the callee); `None`: the caller waits for as long as it takes.
    pub timeout: Option<SimDuration>,
    /// Retries of failed attempts, after a backoff, within a budget.
    pub retry: Option<retry::RetryPolicy>,
    /// Opens on failures or slow calls, and fails calls at once while open.
    pub breaker: Option<breaker::BreakerParams>,
    /// A call that failed for good is answered as a success, counted degraded.
    pub fallback: bool,
    /// A bulkhead or a connection pool per caller instance.
    pub slots: Option<slots::SlotsPolicy>,
    /// A second copy of an attempt with no reply after a delay.
    pub hedge: Option<hedge::HedgePolicy>,
}

/// The policy of the calls from one component (the caller) to another (the callee).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgePolicy {
    /// The calling component (its group id, its index in the model).
    pub caller: usize,
    /// The called component.
    pub callee: usize,
    /// What applies to those calls.
    pub policy: CallPolicy,
}

/// The name of an edge in reports: `caller->callee`.
pub fn edge_name(caller: &str, callee: &str) -> String {
    format!("{caller}->{callee}")
}
