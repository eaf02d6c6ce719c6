//! Issue 10, point 10: random *valid* data-tier models run without a panic and keep
//! conservation. Unlike `fuzz.rs` (which mutates shipped models into mostly broken ones),
//! each case here is built to be valid: workloads with a read/write mix over a random key
//! law, in front of a random data tier (shard routers over services, with random
//! strategies and shards added or removed mid-run). Every case must validate, estimate,
//! run briefly, keep arrived = completed + failed + in flight, and give the same result
//! twice from the same seed.
//!
//! The cases come from a fixed seed; `SCALESIM_FUZZ_CASES=N` runs more or fewer.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use scalesim::model::{Format, parse_model_str};
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Generated models per suite run.
const CASES: u32 = 150;

/// A key law as a model file writes it.
fn key_law() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (1u64..20_000_000).prop_map(|keys| Some(json!({"uniform": {"keys": keys}}))),
        (1u64..20_000_000, 0.3f64..1.6)
            .prop_map(|(keys, s)| Some(json!({"zipf": {"keys": keys, "s": s}}))),
        (2u64..1_000_000, 0.001f64..0.5, 0.0f64..1.0).prop_map(|(keys, hot, traffic)| {
            Some(json!({"hot_set": {"keys": keys, "hot_fraction": hot, "traffic": traffic}}))
        }),
    ]
}

/// Arrivals: open (Poisson) or closed.
fn arrivals() -> impl Strategy<Value = Value> {
    prop_oneof![
        (50.0f64..3000.0).prop_map(|rate| json!({"poisson": {"rate": rate}})),
        (1u32..60, 1u32..20).prop_map(|(users, think_ms)| {
            json!({"closed": {"users": users, "think": {"exponential": {"mean": format!("{think_ms}ms")}}}})
        }),
    ]
}

/// One workload sending reads and writes to `target`.
fn workload(target: &'static str) -> impl Strategy<Value = Value> {
    (
        arrivals(),
        key_law(),
        0.0f64..1.0,
        prop::option::of(1u32..50),
    )
        .prop_map(move |(arrivals, keys, writes, timeout_ms)| {
            let mut w = json!({
                "arrivals": arrivals,
                "classes": {"read": 1.0 - writes, "write": writes.max(0.001)},
                "target": target,
            });
            if let Some(k) = keys {
                w["keys"] = k;
            }
            if let Some(t) = timeout_ms {
                w["timeout"] = json!(format!("{t}ms"));
            }
            w
        })
}

/// A service that serves a shard: a few workers, maybe a bounded queue.
fn shard_service(workers: u32, mean_us: u32, queue: Option<u32>) -> Value {
    let mut s = json!({
        "kind": "service",
        "workers": workers,
        "service_time": {"exponential": {"mean": format!("{mean_us}us")}},
    });
    if let Some(q) = queue {
        s["queue"] = json!(q);
    }
    s
}

/// A shard router `front` over `n` services named `s0`.., with a random strategy and
/// random changes during the first 200 ms.
fn sharded_services() -> impl Strategy<Value = Map<String, Value>> {
    (
        2usize..8,
        0u8..3,
        any::<bool>(),
        1u32..8,
        100u32..3000,
        prop::option::of(1u32..100),
        prop::collection::vec((1u32..200, any::<bool>()), 0..3),
        1u32..300,
    )
        .prop_map(
            |(n, strategy, by_client, workers, mean_us, queue, changes, vnodes)| {
                let mut components = Map::new();
                // One spare service a change can add.
                for i in 0..=n {
                    components.insert(format!("s{i}"), shard_service(workers, mean_us, queue));
                }
                let shards: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
                let mut router = json!({"kind": "shards", "shards": shards});
                router["strategy"] = match strategy {
                    0 => json!("hash_mod"),
                    1 => json!({"consistent": {"vnodes": vnodes}}),
                    _ => {
                        // Equal ranges over the first million keys, the last open-ended.
                        let step = 1_000_000 / n as u64;
                        let ranges: Vec<Value> = (0..n)
                            .map(|i| {
                                let mut r =
                                    json!({"shard": format!("s{i}"), "from": i as u64 * step});
                                if i + 1 < n {
                                    r["to"] = json!((i as u64 + 1) * step);
                                }
                                r
                            })
                            .collect();
                        json!({"ranges": ranges})
                    }
                };
                if by_client {
                    router["by"] = json!("client");
                }
                if strategy < 2 && !changes.is_empty() {
                    // Add the spare, or remove the first shard (never the last one left).
                    let mut times: Vec<u32> = changes.iter().map(|c| c.0).collect();
                    times.sort_unstable();
                    times.dedup();
                    let mut added = false;
                    let mut list = Vec::new();
                    for (t, (_, add)) in times.iter().zip(&changes) {
                        if *add && !added {
                            list.push(json!({"at": format!("{t}ms"), "add": format!("s{n}")}));
                            added = true;
                        } else if !*add && list.iter().all(|c| c.get("remove").is_none()) {
                            list.push(json!({"at": format!("{t}ms"), "remove": "s0"}));
                        }
                    }
                    if !list.is_empty() {
                        router["changes"] = Value::Array(list);
                    }
                }
                components.insert("front".to_string(), router);
                components
            },
        )
}

/// A whole model: one or two workloads in front of a random data tier, sometimes through a
/// load balancer over several copies of the router (which passes each call on as a tail
/// call, so the balancer hears back from a shard, not from the copy it chose).
fn model() -> impl Strategy<Value = Value> {
    (
        sharded_services(),
        prop::option::of((0usize..4, 1u32..4)),
        prop::collection::vec(workload("front"), 1..3),
    )
        .prop_map(|(mut components, balancer, workloads)| {
            let mut workloads: Map<String, Value> = workloads
                .into_iter()
                .enumerate()
                .map(|(i, w)| (format!("w{i}"), w))
                .collect();
            if let Some((policy, copies)) = balancer {
                let policy = [
                    "round_robin",
                    "least_connections",
                    "random",
                    "power_of_choices",
                ][policy];
                components["front"]["replicas"] = json!(copies);
                components.insert(
                    "lb".to_string(),
                    json!({"kind": "load_balancer", "policy": policy, "backends": "front"}),
                );
                for w in workloads.values_mut() {
                    w["target"] = json!("lb");
                }
            }
            json!({
                "name": "random data tier",
                "duration": "300ms",
                "series_window": "10ms",
                "workloads": workloads,
                "components": components,
            })
        })
}

fn no_panic<T>(what: &str, text: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {msg}\nmodel:\n{text}"))
    })
}

fn check(doc: &Value) -> Result<(), TestCaseError> {
    let text = serde_json::to_string_pretty(doc).unwrap();
    let base = std::path::Path::new(".");
    let parsed = no_panic("validation", &text, || {
        parse_model_str(&text, Format::Json, base, &[])
    })?;
    let model = parsed.map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        TestCaseError::fail(format!(
            "a valid model was refused: {list:?}\nmodel:\n{text}"
        ))
    })?;
    no_panic("estimate", &text, || scalesim::analysis::estimate(&model))?;
    let run = |seed| no_panic("run", &text, || scalesim::results::run_once(&model, seed));
    let first = run(3)?.map_err(|e| TestCaseError::fail(format!("run failed: {e}\n{text}")))?;
    prop_assert!(first.conservation.holds, "conservation broken:\n{text}");
    let again = run(3)?.map_err(|e| TestCaseError::fail(format!("run failed: {e}\n{text}")))?;
    prop_assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "two runs from one seed differ:\n{}",
        text
    );
    Ok(())
}

#[test]
fn random_valid_data_tier_models_run_and_keep_conservation() {
    let cases = std::env::var("SCALESIM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[10; 32]));
    runner
        .run(&model(), |doc| check(&doc))
        .unwrap_or_else(|e| panic!("{e}"));
}
