//! The `cache` kind: read-through and cache-aside reads, coalescing, time to live, write
//! policies, warm starts, the handler branch on a cache's answer, the per-window and
//! per-class hit ratios, and the estimate beside the simulation. Small deterministic
//! models (constant arrivals, one hot key) give exact counts.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn run(v: Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    replicate(&m, 1, 1).unwrap().remove(0)
}

fn total(r: &RunResult, component: &str, metric: &str) -> f64 {
    r.components[component].total[metric]
}

/// `n` requests 100 ms apart (the first at 100 ms), all on key 0, to `target`.
fn every_100ms(n: u64, target: &str, classes: Value) -> Value {
    json!({"arrivals": {"constant": {"rate": 10}}, "requests": n, "target": target,
           "keys": {"hot_key": {"keys": 1, "traffic": 1.0}}, "classes": classes})
}

fn db() -> Value {
    json!({"kind": "service", "workers": 100, "service_time": {"constant": "10ms"}})
}

#[test]
fn a_read_through_cache_fills_on_a_miss_and_answers_hits_itself() {
    let r = run(json!({
        "duration": "10s",
        "workloads": {"w": every_100ms(20, "cache", json!({"read": 1}))},
        "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                                 "hit_time": {"constant": "1ms"}},
                       "db": db()}
    }));
    assert_eq!(total(&r, "cache", "reads"), 20.0);
    assert_eq!(total(&r, "cache", "hits"), 19.0);
    assert_eq!(total(&r, "cache", "fills"), 1.0);
    assert_eq!(total(&r, "db", "arrived"), 1.0);
    // The miss: 1 ms at the cache (miss_time defaults to hit_time) and 10 ms at db.
    let miss = &r.components["cache"].detail.histograms["miss_latency"];
    assert!((miss.max_ms - 11.0).abs() < 1e-9, "{miss:?}");
    assert!((total(&r, "cache", "hit_mean_ms") - 1.0).abs() < 1e-9);
    assert_eq!(total(&r, "cache", "entries_max"), 1.0);
}

#[test]
fn concurrent_misses_share_one_fill_only_when_coalescing() {
    // Requests every 100 ms, fills taking 10 s: every request in the run misses.
    let model = |coalesce: bool| {
        json!({
            "duration": "5s",
            "workloads": {"w": every_100ms(30, "cache", json!({"read": 1}))},
            "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                                     "coalesce": coalesce},
                           "db": {"kind": "service", "workers": 100,
                                  "service_time": {"constant": "10s"}}}
        })
    };
    let each = run(model(false));
    let one = run(model(true));
    assert_eq!(total(&each, "db", "arrived"), 30.0);
    assert_eq!(total(&one, "db", "arrived"), 1.0);
    assert_eq!(total(&one, "cache", "coalesced"), 29.0);
    assert_eq!(total(&one, "cache", "misses"), 30.0);
}

#[test]
fn a_time_to_live_from_insertion_expires_even_a_popular_key() {
    // Reads at 100, 200, ... 3000 ms; entries live 250 ms from their fill (done 10 ms
    // after the miss): the key is put at 110, 410, 710, ... and every third read misses.
    // The run ends with the last answer, before the last entry expires.
    let model = |refresh: bool| {
        json!({
            "duration": "10s",
            "workloads": {"w": every_100ms(30, "cache", json!({"read": 1}))},
            "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                                     "ttl": "250ms", "ttl_refresh": refresh},
                           "db": db()}
        })
    };
    let insert = run(model(false));
    assert_eq!(total(&insert, "cache", "misses"), 10.0);
    assert_eq!(total(&insert, "cache", "expirations"), 9.0);
    // Refreshed by each hit 100 ms apart, it never expires.
    let refresh = run(model(true));
    assert_eq!(total(&refresh, "cache", "misses"), 1.0);
    assert_eq!(total(&refresh, "cache", "expirations"), 0.0);
}

#[test]
fn entries_average_over_time_counts_an_expired_entry_only_while_it_lived() {
    // One read at 100 ms filled at 110 ms (db 10 ms), living 1 s, in a 10 s run (kept
    // going by a workload elsewhere): 1 s of one entry over 10 s.
    let r = run(json!({
        "duration": "10s",
        "workloads": {"w": every_100ms(1, "cache", json!({"read": 1})),
                      "other": {"arrivals": {"constant": {"rate": 1}}, "target": "db"}},
        "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db", "ttl": "1s"},
                       "db": db()}
    }));
    assert!((total(&r, "cache", "entries_mean") - 0.1).abs() < 1e-9);
    assert_eq!(total(&r, "cache", "expirations"), 1.0);
}

fn writes(policy: &str) -> RunResult {
    // Alternating read and write of key 0 every 100 ms (a constant mix is not possible:
    // classes are drawn, so use 90% reads), 2000 requests.
    run(json!({
        "duration": "300s",
        "workloads": {"w": {"arrivals": {"constant": {"rate": 10}}, "requests": 2000,
                            "target": "cache", "classes": {"read": 0.9, "write": 0.1},
                            "keys": {"hot_key": {"keys": 1, "traffic": 1.0}}}},
        "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                                 "write": policy},
                       "db": db()}
    }))
}

#[test]
fn write_policies_send_writes_where_they_say() {
    let inv = writes("invalidate");
    let through = writes("write_through");
    let around = writes("write_around");
    let w = total(&inv, "cache", "writes");
    assert!(w > 150.0 && w < 250.0, "{w}");
    // Invalidate: a write drops the key (when there), so the next read misses.
    let (misses, dropped) = (
        total(&inv, "cache", "misses"),
        total(&inv, "cache", "invalidations"),
    );
    assert!(
        misses == dropped + 1.0 || misses == dropped,
        "{misses} {dropped}"
    );
    assert!(dropped > 0.8 * w && dropped <= w, "{dropped} of {w}");
    assert_eq!(total(&inv, "cache", "backend_writes"), w);
    // Write-through puts the key: at most the very first read misses.
    assert!(total(&through, "cache", "misses") <= 1.0);
    assert_eq!(total(&through, "cache", "backend_writes"), w);
    // Write-around leaves the entry (stale) in place.
    assert_eq!(total(&around, "cache", "misses"), 1.0);
    assert_eq!(total(&around, "db", "arrived"), w + 1.0);
}

#[test]
fn write_back_answers_at_once_and_flushes_later_once_per_dirty_period() {
    let r = run(json!({
        "duration": "20s",
        "workloads": {"w": every_100ms(100, "cache", json!({"write": 1}))},
        "components": {"cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                                 "write": "write_back", "flush_after": "1s",
                                 "hit_time": {"constant": "1ms"}},
                       "db": db()}
    }));
    // 100 writes over 10 s, each dirty period 1 s long: 10 flushes, not 100 writes.
    assert_eq!(total(&r, "cache", "writes"), 100.0);
    assert_eq!(total(&r, "cache", "flushes"), 10.0);
    assert_eq!(total(&r, "db", "arrived"), 10.0);
    assert_eq!(total(&r, "cache", "dirty_at_end"), 0.0);
    assert_eq!(r.workloads["w"].latency.max_ms, 1.0);
    // Conservation holds: flushes are no client's request.
    assert!(r.conservation.holds);
}

#[test]
fn a_dirty_entry_evicted_is_flushed_at_once() {
    let r = run(json!({
        "duration": "20s",
        "workloads": {"w": {"arrivals": {"constant": {"rate": 10}}, "requests": 50,
                            "target": "cache", "classes": {"write": 1},
                            "keys": {"uniform": {"keys": 1000}}}},
        "components": {"cache": {"kind": "cache", "capacity": 1, "on_miss": "db",
                                 "write": "write_back", "flush_after": "1h"},
                       "db": db()}
    }));
    // Each write to a new key evicts the previous dirty one: a flush per eviction.
    let evictions = total(&r, "cache", "evictions");
    assert!(evictions > 40.0, "{evictions}");
    assert_eq!(total(&r, "cache", "flushes"), evictions);
    assert_eq!(total(&r, "cache", "dirty_at_end"), 1.0);
}

fn aside(capacity: u64, warm: bool) -> Value {
    json!({
        "duration": "20s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 2000}},
                            "classes": {"read": 0.9, "write": 0.1},
                            "keys": {"zipf": {"keys": 10000, "s": 0.9}}, "target": "app"}},
        "components": {
            "app": {"kind": "service", "workers": 64, "service_time": {"constant": "100us"},
                    "handler": {
                        "read": [{"work": "service_time"},
                                 {"call": "cache", "on_miss": [{"call": "db"}, {"call": "cache", "op": "set"}]}],
                        "write": [{"call": "db"}, {"call": "cache", "op": "invalidate"}]}},
            "cache": {"kind": "cache", "capacity": capacity, "warm": warm,
                      "hit_time": {"constant": "200us"}},
            "db": {"kind": "service", "workers": 32, "service_time": {"exponential": {"mean": "2ms"}}}
        }
    })
}

#[test]
fn a_cache_aside_handler_reads_the_database_and_sets_the_cache_only_on_a_miss() {
    let r = run(aside(1000, false));
    let (misses, writes) = (
        total(&r, "cache", "misses"),
        total(&r, "app", "completed") - total(&r, "cache", "reads"),
    );
    // Each miss is one database read and one set; each write one database write and one
    // invalidation (counted over the same window, up to the requests in flight at its ends).
    assert!((total(&r, "cache", "sets") - misses).abs() <= 70.0);
    let db = total(&r, "db", "arrived");
    assert!(
        (db - misses - writes).abs() <= 70.0,
        "{db} {misses} {writes}"
    );
    assert!(total(&r, "cache", "hit_ratio") > 0.3);
    // Per-class hit ratios: only reads look keys up.
    assert_eq!(total(&r, "cache", "class_hit_ratio_write"), 0.0);
    assert!(
        (total(&r, "cache", "class_hit_ratio_read") - total(&r, "cache", "hit_ratio")).abs()
            < 1e-12
    );
    // The hit answers are 200 µs at the cache; the misses carry the database's time too.
    let hit = &r.components["cache"].detail.histograms["hit_latency"];
    assert!((hit.max_ms - 0.2).abs() < 1e-9);
    assert!(r.conservation.holds);
}

#[test]
fn a_warm_cache_hits_from_the_start_and_a_cold_one_climbs() {
    let cold = run(aside(2000, false));
    let warm = run(aside(2000, true));
    let by_window =
        |r: &RunResult| r.components["cache"].detail.distributions["hit_ratio_by_window"].clone();
    let (c, w) = (by_window(&cold), by_window(&warm));
    assert_eq!(c.len(), w.len());
    assert!(
        w[0] > c[0] + 0.2,
        "first window: warm {} cold {}",
        w[0],
        c[0]
    );
    // By the end both are near the steady state.
    let last = c.len() - 2;
    assert!((w[last] - c[last]).abs() < 0.1, "{} {}", w[last], c[last]);
}

#[test]
fn the_estimate_sits_beside_the_simulated_hit_ratio() {
    let r = run(aside(1000, true));
    let sim = total(&r, "cache", "hit_ratio");
    let est = total(&r, "cache", "hit_ratio_estimate");
    // Invalidations at a tenth of the reads' rate lower both; the fill delay (a few ms
    // against seconds between requests for all but the top keys) hardly matters.
    assert!((sim - est).abs() < 0.02, "simulated {sim}, estimated {est}");
}

#[test]
fn a_slow_backend_pulls_the_hit_ratio_below_the_estimate_and_the_run_says_why() {
    // Ten hot keys at 180/s each, expiring every second, a fill taking 200 ms: each
    // expiry lets ~36 requests miss while the fill is out, where the formula counts one.
    let out = scalesim_json(json!({
        "duration": "20s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 2000}}, "target": "cache",
                            "keys": {"hot_set": {"keys": 100000, "hot_fraction": 0.0001, "traffic": 0.9}}}},
        "components": {"cache": {"kind": "cache", "capacity": 1000, "eviction": "fifo",
                                 "on_miss": "db", "ttl": "1s"},
                       "db": {"kind": "service", "workers": 1000,
                              "service_time": {"constant": "200ms"}}}
    }));
    let warnings: Vec<String> = serde_json::from_value(out["warnings"].clone()).unwrap();
    let w = warnings
        .iter()
        .find(|w| w.starts_with("components.cache.hit_ratio: simulated"))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(w.contains("far from the estimated"), "{w}");
    assert!(w.contains("a fill slower than"), "{w}");
    let sim = out["runs"][0]["components"]["cache"]["total"]["hit_ratio"]
        .as_f64()
        .unwrap();
    let est = out["estimates"]["metrics"][0][1][0]["value"]
        .as_f64()
        .unwrap();
    assert!(sim < est - 0.1, "simulated {sim}, estimated {est}");
}

fn scalesim_json(model: Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(&path, model.to_string()).unwrap();
    crate::support::json_ok(crate::support::scalesim().args([
        "run",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]))
}

// The shipped cache models: each one's lesson, in the direction its description says.

/// Model `models/NAME.json` with `--set` overrides, run with `replications` at seed 1.
fn shipped(name: &str, sets: &[&str], replications: usize) -> Vec<RunResult> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/{name}.json"));
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let m = scalesim::model::load_model_file(&path, &sets).unwrap();
    replicate(&m, 1, replications).unwrap()
}

fn mean(rs: &[RunResult], f: impl Fn(&RunResult) -> f64) -> f64 {
    rs.iter().map(f).sum::<f64>() / rs.len() as f64
}

#[test]
fn cache_aside_a_smaller_cache_hits_less_and_loads_the_database() {
    let big = shipped("cache-aside", &[], 2);
    let small = shipped("cache-aside", &["components.cache.capacity=1000"], 2);
    let hit = |r: &RunResult| total(r, "cache", "hit_ratio");
    let db = |r: &RunResult| total(r, "db", "utilization");
    let p99 = |r: &RunResult| r.workloads["shoppers"].classes["read"].latency.p99_ms;
    assert!(mean(&big, hit) > mean(&small, hit) + 0.15);
    assert!(mean(&small, db) > mean(&big, db) + 0.1);
    assert!(mean(&small, p99) > mean(&big, p99));
    // Both sit on their estimates.
    for rs in [&big, &small] {
        let est = total(&rs[0], "cache", "hit_ratio_estimate");
        assert!(
            (mean(rs, hit) - est).abs() < 0.01,
            "{} vs {est}",
            mean(rs, hit)
        );
    }
}

#[test]
fn cache_levels_each_level_sees_the_misses_of_the_one_before() {
    let rs = shipped("cache-levels", &[], 1);
    let r = &rs[0];
    let reads = |c: &str| total(r, c, "reads");
    assert!(reads("browser") > reads("cdn") && reads("cdn") > reads("appcache"));
    assert!(reads("appcache") > total(r, "db", "reads"));
    // A level's misses are the next level's reads (up to the requests in flight).
    assert!((total(r, "browser", "misses") - reads("cdn")).abs() < 100.0);
    for c in ["browser", "cdn", "appcache"] {
        let (sim, est) = (total(r, c, "hit_ratio"), total(r, c, "hit_ratio_estimate"));
        assert!((sim - est).abs() < 0.03, "{c}: {sim} vs {est}");
    }
    // Without most of the CDN, the app tier takes its load and its cache holds what the
    // CDN held; shrink that too and the database takes it.
    let small = shipped("cache-levels", &["components.cdn.capacity=100"], 1);
    assert!(total(&small[0], "appcache", "reads") > 1.8 * reads("appcache"));
    let db = total(&small[0], "db", "reads");
    assert!((db / total(r, "db", "reads") - 1.0).abs() < 0.1);
    let both = shipped(
        "cache-levels",
        &[
            "components.cdn.capacity=100",
            "components.appcache.capacity=1000",
        ],
        1,
    );
    assert!(total(&both[0], "db", "reads") > 2.0 * db);
}

#[test]
fn write_policies_trade_hit_ratio_write_latency_and_durability() {
    let run = |w: &str| {
        shipped(
            "write-through-vs-aside",
            &[&format!("components.cache.write=\"{w}\"")],
            1,
        )
        .remove(0)
    };
    let (inv, through, back) = (run("invalidate"), run("write_through"), run("write_back"));
    let hit = |r: &RunResult| total(r, "cache", "hit_ratio");
    let write_ms = |r: &RunResult| r.workloads["users"].classes["write"].latency.mean_ms;
    // Invalidation drops hot keys; writing them through keeps them.
    assert!(hit(&through) > hit(&inv) + 0.1);
    assert!(total(&inv, "db", "reads") > 1.3 * total(&through, "db", "reads"));
    // Write-back answers writes from the cache and coalesces repeated writes of a key.
    assert!(write_ms(&back) < 0.25 * write_ms(&through));
    assert!(total(&back, "db", "writes") < 0.8 * total(&through, "db", "writes"));
    assert!(total(&back, "cache", "dirty_at_end") > 0.0);
    assert_eq!(total(&through, "cache", "dirty_at_end"), 0.0);
}

#[test]
fn thundering_herd_coalescing_keeps_the_database_standing() {
    let herd = shipped("thundering-herd", &[], 1).remove(0);
    let single = shipped("thundering-herd", &["components.cache.coalesce=true"], 1).remove(0);
    // Without coalescing, each expiry of the hot key is a herd of misses; the first one
    // (after about 5 s) sinks the hit ratio, and one of them tips the database over for good.
    assert!(total(&herd, "db", "utilization") > 0.99);
    assert!(total(&herd, "cache", "hit_ratio") < 0.6);
    let windows = &herd.components["cache"].detail.distributions["hit_ratio_by_window"];
    assert!(windows[8] > 0.9 && windows[10] < 0.3, "{windows:?}");
    assert!(*windows.last().unwrap() < 0.3, "{windows:?}");
    // One fill per expiry: the hit ratio never dips far, the database stays about half
    // busy, reads stay fast.
    let windows = &single.components["cache"].detail.distributions["hit_ratio_by_window"];
    assert!(windows[17..].iter().all(|h| *h > 0.8), "{windows:?}");
    assert!(total(&single, "db", "utilization") < 0.6);
    assert!(total(&single, "cache", "coalesced") > 1000.0);
    assert!(single.workloads["readers"].latency.p99_ms < 100.0);
    assert!(herd.workloads["readers"].latency.p99_ms > 1000.0);
}

// Random valid cache models: any mix of policy, capacity, TTL, times, read-through or
// cache-aside, coalescing, write policy and warm start runs without a panic, conserves
// requests and keeps its counts consistent.

/// A random valid model with a cache in it.
fn cache_model() -> impl Strategy<Value = Value> {
    let eviction = prop::sample::select(vec!["lru", "lfu", "fifo", "random", "slru"]);
    let write = prop::sample::select(vec![
        "invalidate",
        "write_through",
        "write_back",
        "write_around",
    ]);
    let time = prop_oneof![
        Just(json!({"constant": "0s"})),
        (1u32..2000).prop_map(|us| json!({"constant": format!("{us}us")})),
        (1u32..2000).prop_map(|us| json!({"exponential": {"mean": format!("{us}us")}})),
    ];
    let keys = prop_oneof![
        (1u64..200).prop_map(|n| json!({"uniform": {"keys": n}})),
        (1u64..5000, 0.0f64..1.5).prop_map(|(n, s)| json!({"zipf": {"keys": n, "s": s}})),
        (2u64..1000).prop_map(|n| json!({"hot_key": {"keys": n, "traffic": 0.7}})),
    ];
    (
        (eviction, 1u64..60, prop::option::of((1u32..300, any::<bool>()))),
        (time.clone(), time, any::<bool>(), any::<bool>(), any::<bool>(), write),
        (keys, 0.0f64..1.0, 50.0f64..3000.0, any::<bool>()),
    )
        .prop_map(
            |((eviction, capacity, ttl), (hit, miss, through, coalesce, warm, write), (keys, writes, rate, aside_app))| {
                let mut cache = json!({"kind": "cache", "capacity": capacity, "eviction": eviction,
                                       "hit_time": hit, "miss_time": miss, "warm": warm});
                if let Some((ms, refresh)) = ttl {
                    cache["ttl"] = json!(format!("{ms}ms"));
                    cache["ttl_refresh"] = json!(refresh);
                }
                if through {
                    cache["on_miss"] = json!("db");
                    cache["coalesce"] = json!(coalesce);
                    cache["write"] = json!(write);
                }
                let app = if aside_app {
                    json!({"kind": "service", "workers": 8, "handler": {
                        "read": [{"call": "cache", "on_miss": [{"call": "db"}, {"call": "cache", "op": "set"}]}],
                        "write": [{"call": "db"}, {"call": "cache", "op": "invalidate"}]}})
                } else {
                    json!({"kind": "service", "workers": 8, "handler": [{"call": "cache"}]})
                };
                json!({
                    "duration": "2s", "warmup": "200ms",
                    "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "keys": keys,
                                        "classes": {"read": 1.0 - writes, "write": writes.max(1e-3)},
                                        "target": "app"}},
                    "components": {"app": app, "cache": cache,
                                   "db": {"kind": "database", "workers": 4,
                                          "service_time": {"exponential": {"mean": "1ms"}}}}
                })
            },
        )
}

#[test]
fn random_cache_models_run_and_keep_their_counts() {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 200,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    runner
        .run(&cache_model(), |v| {
            let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
                .map_err(|e| TestCaseError::fail(format!("{e:?}\n{v}")))?;
            let r = replicate(&m, 3, 1).unwrap().remove(0);
            let c = &r.components["cache"].total;
            prop_assert!(r.conservation.holds, "{v}");
            prop_assert!(c["hits"] <= c["reads"]);
            prop_assert!(
                c["entries_max"] <= v["components"]["cache"]["capacity"].as_f64().unwrap()
            );
            prop_assert!(c["coalesced"] <= c["misses"]);
            prop_assert!((0.0..=1.0).contains(&c["hit_ratio"]));
            Ok(())
        })
        .unwrap();
}

#[test]
fn two_reading_classes_on_different_keys_each_get_their_own_hit_ratio() {
    // `hot` reads 10 keys, `cold` reads uniformly over 100,000: a 1,000-entry LRU cache
    // keeps the hot keys and almost never holds a cold one.
    let r = run(json!({
        "duration": "20s",
        "workloads": {
            "hot": {"arrivals": {"poisson": {"rate": 200}}, "requests": 2000,
                    "target": "cache", "classes": {"hot": 1}, "ops": {"hot": "read"},
                    "keys": {"uniform": {"keys": 10}}},
            "cold": {"arrivals": {"poisson": {"rate": 200}}, "requests": 2000,
                     "target": "cache", "classes": {"cold": 1}, "ops": {"cold": "read"},
                     "keys": {"uniform": {"keys": 100000}}}},
        "components": {"cache": {"kind": "cache", "capacity": 1000, "on_miss": "db"},
                       "db": db()}
    }));
    let hot = total(&r, "cache", "class_hit_ratio_hot");
    let cold = total(&r, "cache", "class_hit_ratio_cold");
    assert!(hot > 0.99, "{hot}");
    assert!(cold < 0.05, "{cold}");
    // Weighted by each class's reads, they make the overall hit ratio.
    // Both workloads end by about 10 s of 20: every request read the cache once.
    let hot_reads = r.workloads["hot"].arrived as f64;
    let cold_reads = r.workloads["cold"].arrived as f64;
    assert_eq!((hot_reads, cold_reads), (2000.0, 2000.0));
    let reads = total(&r, "cache", "reads");
    assert_eq!(reads, hot_reads + cold_reads);
    let overall = (hot * hot_reads + cold * cold_reads) / reads;
    let hit_ratio = total(&r, "cache", "hit_ratio");
    assert!((overall - hit_ratio).abs() < 1e-12, "{overall} {hit_ratio}");
}

#[test]
fn warming_a_large_cache_ahead_of_its_requests_changes_no_result() {
    // A cache of 65,536 keys or more is handed the keys of the coming requests ahead, when
    // the workload's calls reach it through single instances (here: app, then cache), and
    // the workload then draws its classes and keys two requests early. Behind a balancer
    // the engine does not look ahead. Both runs must agree on every count and latency.
    let model = |front: bool| {
        let target = if front { "front" } else { "app" };
        let mut components = json!({
            "app": {"kind": "service", "workers": 100,
                    "handler": [{"call": "cache",
                                 "on_miss": [{"call": "db"}, {"call": "cache", "op": "set"}]}]},
            "cache": {"kind": "cache", "capacity": 70000, "warm": true},
            "db": {"kind": "service", "workers": 100, "service_time": {"exponential": {"mean": "1ms"}}}
        });
        if front {
            components["front"] = json!({"kind": "load_balancer", "backends": ["app"]});
        }
        json!({
            "duration": "1h",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 20000}}, "requests": 30000,
                                "target": target,
                                "keys": {"zipf": {"keys": 1000000, "s": 0.8}},
                                "classes": {"a": 0.2, "b": 0.5, "c": 0.3}}},
            "components": components
        })
    };
    let ahead = run(model(false));
    let plain = run(model(true));
    for component in ["cache", "db"] {
        assert_eq!(
            ahead.components[component].total, plain.components[component].total,
            "{component}"
        );
    }
    assert_eq!(
        serde_json::to_value(&ahead.workloads).unwrap(),
        serde_json::to_value(&plain.workloads).unwrap()
    );
    assert!(total(&ahead, "cache", "evictions") > 1000.0);
}
