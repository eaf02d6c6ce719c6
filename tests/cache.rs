//! The `cache` kind: read-through and cache-aside reads, coalescing, time to live, write
//! policies, warm starts, the handler branch on a cache's answer, the per-window and
//! per-class hit ratios, and the estimate beside the simulation. Small deterministic
//! models (constant arrivals, one hot key) give exact counts.

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
