//! Issue 10, point 10: random *valid* data-tier models run without a panic and keep
//! conservation. Unlike `fuzz.rs` (which mutates shipped models into mostly broken ones),
//! each case here is built to be valid: workloads with a read/write mix over a random key
//! law, in front of a random data tier: shard routers over services, with random
//! strategies and shards added or removed mid-run; and mixed kinds: read-through caches
//! stacked two or three deep over a database, a cache-aside service, shard routers over
//! caches (each reading through to its own database) or over databases, and caches over
//! replicated or quorum databases, each cache and database with random settings. Every case must validate, estimate,
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

/// A cache's random settings, made into a cache reading through to a backend (or
/// cache-aside without one) by [`CacheDraw::spec`].
#[derive(Clone, Debug)]
struct CacheDraw {
    capacity: u64,
    eviction: usize,
    ttl_ms: Option<u32>,
    refresh: bool,
    write: usize,
    coalesce: bool,
    warm: bool,
    hit_us: Option<u32>,
    flush_ms: Option<u32>,
}

impl CacheDraw {
    fn spec(&self, on_miss: Option<&str>) -> Value {
        let eviction = ["lru", "lfu", "fifo", "random", "slru"][self.eviction];
        let mut c = json!({"kind": "cache", "capacity": self.capacity, "eviction": eviction,
                           "warm": self.warm});
        if let Some(t) = self.ttl_ms {
            c["ttl"] = json!(format!("{t}ms"));
            c["ttl_refresh"] = json!(self.refresh);
        }
        if let Some(h) = self.hit_us {
            c["hit_time"] = json!({"exponential": {"mean": format!("{h}us")}});
        }
        if let Some(backend) = on_miss {
            c["on_miss"] = json!(backend);
            c["coalesce"] = json!(self.coalesce);
            let write = ["invalidate", "write_through", "write_back", "write_around"][self.write];
            c["write"] = json!(write);
            if let (Some(f), "write_back") = (self.flush_ms, write) {
                c["flush_after"] = json!(format!("{f}ms"));
            }
        }
        c
    }
}

fn cache() -> impl Strategy<Value = CacheDraw> {
    (
        (
            1u64..5000,
            0usize..5,
            prop::option::of(1u32..200),
            any::<bool>(),
        ),
        (0usize..4, any::<bool>(), any::<bool>()),
        (prop::option::of(1u32..300), prop::option::of(1u32..100)),
    )
        .prop_map(
            |(
                (capacity, eviction, ttl_ms, refresh),
                (write, coalesce, warm),
                (hit_us, flush_ms),
            )| {
                CacheDraw {
                    capacity,
                    eviction,
                    ttl_ms,
                    refresh,
                    write,
                    coalesce,
                    warm,
                    hit_us,
                    flush_ms,
                }
            },
        )
}

/// A database with random settings: a primary and replicas (asynchronous or synchronous
/// replication, reads to the primary, the replicas or any copy, read-your-writes) or a
/// quorum of peers, maybe with group commit.
fn database() -> impl Strategy<Value = Value> {
    (
        (0u32..4, 0usize..3, 0usize..5, 0u8..3, 1u32..5),
        (
            prop::option::of(1u32..200),
            prop::option::of((3u32..6, 1u32..6, 1u32..6)),
        ),
        (
            prop::option::of((1u32..20, 0u32..5, 0u32..500, 0u32..100)),
            1u32..8,
            50u32..2000,
        ),
    )
        .prop_map(
            |(
                (replicas, reads, balance, replication, acks),
                (ryw_ms, quorum),
                (group, workers, mean_us),
            )| {
                let balance = [
                    "round_robin",
                    "random",
                    "least_connections",
                    "power_of_choices",
                    "hash_key",
                ][balance];
                let mut d = json!({
                    "kind": "database", "workers": workers,
                    "service_time": {"exponential": {"mean": format!("{mean_us}us")}},
                });
                if let Some((n, r, w)) = quorum {
                    d["quorum"] = json!({"n": n, "r": r.min(n), "w": w.min(n)});
                    d["reads"] = json!("quorum");
                    d["balance"] = json!(balance);
                } else {
                    d["replicas"] = json!(replicas);
                    // Without replicas every read goes to the primary: a choice of copies,
                    // and read-your-writes, would be refused as meaningless.
                    let reads = if replicas == 0 { 0 } else { reads };
                    d["reads"] = json!(["primary", "replicas", "any"][reads]);
                    if reads > 0 {
                        d["balance"] = json!(balance);
                    }
                    let lag = json!({"exponential": {"mean": "2ms"}});
                    d["replication"] = match (replication, replicas) {
                        (0, _) | (_, 0) => json!({"async": {"lag": lag}}),
                        (1, _) => json!({"sync": {"lag": lag, "acks": acks.min(replicas)}}),
                        _ => json!({"sync": {"lag": lag}}),
                    };
                    if let (Some(t), true) = (ryw_ms, reads > 0) {
                        d["read_your_writes"] = json!(format!("{t}ms"));
                    }
                }
                if let Some((batch, wait_ms, fixed_us, per_us)) = group {
                    d["group_commit"] = json!({
                        "max_batch": batch, "max_wait": format!("{wait_ms}ms"),
                        "fixed_cost": format!("{fixed_us}us"),
                        "per_item_cost": format!("{per_us}us"),
                    });
                }
                d
            },
        )
}

/// Mixed data-tier kinds behind `front`: read-through caches stacked two or three deep
/// over a database; a cache-aside service; a shard router over caches, each over its own
/// database; a shard router over databases.
fn mixed_tier() -> impl Strategy<Value = Map<String, Value>> {
    (
        0u8..4,
        prop::collection::vec(cache(), 3),
        prop::collection::vec(database(), 3),
        (2usize..4, any::<bool>(), 1u32..200),
    )
        .prop_map(|(layout, caches, databases, (n, consistent, vnodes))| {
            let mut c = Map::new();
            let strategy = if consistent {
                json!({"consistent": {"vnodes": vnodes}})
            } else {
                json!("hash_mod")
            };
            match layout {
                0 => {
                    // front → cache → ... → db0
                    let depth = n;
                    for (i, draw) in caches.iter().enumerate().take(depth) {
                        let next = if i + 1 < depth {
                            format!("c{}", i + 1)
                        } else {
                            "db0".to_string()
                        };
                        c.insert(format!("c{i}"), draw.spec(Some(&next)));
                    }
                    c.insert("db0".into(), databases[0].clone());
                    c.insert(
                        "front".into(),
                        json!({"kind": "service", "workers": 50,
                               "handler": [{"call": "c0"}]}),
                    );
                }
                1 => {
                    c.insert("cache".into(), caches[0].spec(None));
                    c.insert("db0".into(), databases[0].clone());
                    c.insert(
                        "front".into(),
                        json!({"kind": "service", "workers": 50, "handler": [
                            {"call": "cache",
                             "on_miss": [{"call": "db0"}, {"call": "cache", "op": "set"}]}]}),
                    );
                }
                2 => {
                    for i in 0..n {
                        c.insert(format!("c{i}"), caches[i].spec(Some(&format!("db{i}"))));
                        c.insert(format!("db{i}"), databases[i].clone());
                    }
                    let shards: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
                    c.insert(
                        "front".into(),
                        json!({"kind": "shards", "shards": shards, "strategy": strategy}),
                    );
                }
                _ => {
                    for (i, d) in databases.iter().enumerate().take(n) {
                        c.insert(format!("db{i}"), d.clone());
                    }
                    let shards: Vec<String> = (0..n).map(|i| format!("db{i}")).collect();
                    c.insert(
                        "front".into(),
                        json!({"kind": "shards", "shards": shards, "strategy": strategy}),
                    );
                }
            }
            c
        })
}

/// A whole model: one or two workloads in front of a random data tier, sometimes through a
/// load balancer over several copies of the router (which passes each call on as a tail
/// call, so the balancer hears back from a shard, not from the copy it chose).
fn model() -> impl Strategy<Value = Value> {
    (
        prop_oneof![sharded_services(), mixed_tier()],
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
