//! Checks every component's `calls_to` and builds the [`EdgePolicy`] of each edge, each
//! error at its field's path (`components.app.calls_to.db.timeout`).

use super::breaker::BreakerParams;
use super::slots::{SlotsKind, SlotsPolicy};
use super::spec::{BreakerSpec, CallPolicySpec};
use super::{CallPolicy, EdgePolicy};
use crate::error::{Errors, join};
use crate::model::graph::CallGraph;
use crate::model::spec::ModelSpec;
use crate::time::{DurationSpec, SimDuration, format_duration_nanos};

/// Breaker defaults.
const FAILURE_RATE: f64 = 0.5;
const SLOW_RATE: f64 = 0.5;
const WINDOW_NS: f64 = 10e9;
const MIN_CALLS: u32 = 20;
const OPEN_FOR_NS: f64 = 5e9;
const HALF_OPEN_CALLS: u32 = 3;

/// The call policies of `spec`'s components, in component then file order. `graph` is the
/// call graph of its components (a component's index is its group id) when all of them
/// built; without it (a component has errors of its own) the callee names and every
/// policy block are still checked, so all the model's mistakes come out in one run, but
/// not whether the caller calls the callee.
///
/// `replicas` is each component's number of instances (the most an autoscaler may give
/// it), when known: a hedge needs a callee with two or more.
pub fn calls(
    errs: &mut Errors,
    spec: &ModelSpec,
    graph: Option<&CallGraph>,
    replicas: &[u32],
) -> Vec<EdgePolicy> {
    let names: Vec<&str> = spec.components.keys().map(String::as_str).collect();
    let mut edges = Vec::new();
    for (caller, (name, c)) in spec.components.iter().enumerate() {
        let Some(calls_to) = &c.common.calls_to else {
            continue;
        };
        let base = join(&join("components", name), "calls_to");
        for (callee_name, p) in calls_to {
            let path = join(&base, callee_name);
            let Some(callee) = names.iter().position(|n| n == callee_name) else {
                errs.push(
                    path,
                    format!(
                        "no component named \"{callee_name}\"{}",
                        crate::error::did_you_mean(callee_name, names.iter().copied())
                    ),
                );
                continue;
            };
            if let Some(graph) = graph
                && !graph.waits_on(caller).any(|g| g == callee)
            {
                let routed = graph.successors(caller).contains(&callee);
                errs.push(
                    path,
                    if routed {
                        format!(
                            "\"{name}\" reaches \"{callee_name}\" only by a route (a tail call: the answer goes straight back to its own caller, nobody waits), so no call policy can apply"
                        )
                    } else {
                        format!("\"{name}\" never calls \"{callee_name}\"")
                    },
                );
                continue;
            }
            let instances = replicas.get(callee).copied();
            if let Some(policy) = policy(errs, &path, p, instances) {
                edges.push(EdgePolicy {
                    caller,
                    callee,
                    policy,
                });
            }
        }
    }
    edges
}

/// One edge's policy, or `None` after recording what is wrong with it.
fn policy(
    errs: &mut Errors,
    path: &str,
    p: &CallPolicySpec,
    instances: Option<u32>,
) -> Option<CallPolicy> {
    let before = errs.len();
    let timeout = p.timeout.map(|t| positive(errs, &join(path, "timeout"), t));
    let retry = p
        .retries
        .as_ref()
        .and_then(|r| super::retry::validate(errs, &join(path, "retries"), r));
    let breaker = p
        .breaker
        .as_ref()
        .map(|b| breaker(errs, &join(path, "breaker"), b));
    let slots = slots(errs, path, p);
    let hedge = p
        .hedge
        .as_ref()
        .and_then(|h| super::hedge::validate(errs, &join(path, "hedge"), h, instances));
    (errs.len() == before).then(|| CallPolicy {
        timeout,
        retry,
        breaker,
        fallback: p.fallback.is_some(),
        slots,
        hedge,
    })
}

/// The bulkhead or the connection pool of an edge, if it has one.
fn slots(errs: &mut Errors, path: &str, p: &CallPolicySpec) -> Option<SlotsPolicy> {
    match (&p.bulkhead, &p.pool) {
        (Some(_), Some(_)) => {
            errs.push(
                join(path, "pool"),
                "an edge takes a bulkhead or a connection pool, not both (a pool already caps the attempts out at its size)",
            );
            None
        }
        (Some(b), None) => {
            let path = join(path, "bulkhead");
            Some(SlotsPolicy {
                kind: SlotsKind::Bulkhead,
                size: at_least_one(
                    errs,
                    &join(&path, "max_concurrent"),
                    Some(b.max_concurrent),
                    1,
                ),
                queue: Some(b.queue.unwrap_or(0)),
                acquire_timeout: None,
            })
        }
        (None, Some(pool)) => {
            let path = join(path, "pool");
            Some(SlotsPolicy {
                kind: SlotsKind::Pool,
                size: at_least_one(errs, &join(&path, "size"), Some(pool.size), 1),
                queue: None,
                acquire_timeout: pool
                    .acquire_timeout
                    .map(|t| positive(errs, &join(&path, "acquire_timeout"), t)),
            })
        }
        (None, None) => None,
    }
}

fn breaker(errs: &mut Errors, path: &str, b: &BreakerSpec) -> BreakerParams {
    let window = positive(
        errs,
        &join(path, "window"),
        b.window.unwrap_or(DurationSpec(WINDOW_NS)),
    );
    let open_for = positive(
        errs,
        &join(path, "open_for"),
        b.open_for.unwrap_or(DurationSpec(OPEN_FOR_NS)),
    );
    let slow_call = b
        .slow_call
        .map(|s| positive(errs, &join(path, "slow_call"), s));
    if b.slow_rate.is_some() && b.slow_call.is_none() {
        errs.push(
            join(path, "slow_rate"),
            "needs slow_call (the duration from which an attempt counts as slow)",
        );
    }
    BreakerParams {
        failure_rate: rate(
            errs,
            &join(path, "failure_rate"),
            b.failure_rate,
            FAILURE_RATE,
        ),
        slow_call,
        slow_rate: rate(errs, &join(path, "slow_rate"), b.slow_rate, SLOW_RATE),
        window,
        min_calls: at_least_one(errs, &join(path, "min_calls"), b.min_calls, MIN_CALLS),
        open_for,
        half_open_calls: at_least_one(
            errs,
            &join(path, "half_open_calls"),
            b.half_open_calls,
            HALF_OPEN_CALLS,
        ),
    }
}

/// A duration that must be longer than zero.
fn positive(errs: &mut Errors, path: &str, d: DurationSpec) -> SimDuration {
    let t = d.to_sim();
    if t.0 == 0 {
        errs.push(
            path,
            format!(
                "must be longer than zero, got \"{}\"",
                format_duration_nanos(d.nanos())
            ),
        );
    }
    t
}

/// A share in (0, 1], `default` when not given.
fn rate(errs: &mut Errors, path: &str, r: Option<f64>, default: f64) -> f64 {
    let r = r.unwrap_or(default);
    if !(r > 0.0 && r <= 1.0) {
        errs.push(path, format!("must be in (0, 1], got {r}"));
    }
    r
}

/// A count of at least 1, `default` when not given.
fn at_least_one(errs: &mut Errors, path: &str, n: Option<u32>, default: u32) -> u32 {
    let n = n.unwrap_or(default);
    if n == 0 {
        errs.push(path, "must be at least 1, got 0");
    }
    n.max(1)
}
