//! The `shards` router: each key goes to one shard, shards come and go mid-run with their
//! keys counted as moved, the per-shard and per-window figures add up, the estimate of the
//! busiest shard agrees with the simulation, and bad router fields are refused at their
//! path with exit status 2.

use crate::support::{json_ok, scalesim};
use scalesim::analysis::estimate;
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

fn run(v: &Value, seed: u64) -> RunResult {
    let r = replicate(&model(v), seed, 1).unwrap().remove(0);
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

/// A router `r` over services `db0`.. `db{n-1}` (and spare `db{n}`.. `db{n+2}` that
/// changes may add), fed `rate` requests per second with key law `keys`.
fn sharded(n: usize, router: Value, keys: Value, rate: f64, duration: &str) -> Value {
    let mut components = serde_json::Map::new();
    let mut r = router;
    if r.get("shards").is_none() && r.get("strategy").and_then(|s| s.get("ranges")).is_none() {
        r["shards"] = json!((0..n).map(|i| format!("db{i}")).collect::<Vec<_>>());
    }
    r["kind"] = json!("shards");
    components.insert("r".into(), r);
    for i in 0..n + 3 {
        components.insert(
            format!("db{i}"),
            json!({"kind": "service", "workers": 8,
                   "service_time": {"exponential": {"mean": "1ms"}}}),
        );
    }
    json!({
        "duration": duration,
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "r", "keys": keys}},
        "components": components
    })
}

fn total(r: &RunResult, c: &str, metric: &str) -> f64 {
    r.components[c].total[metric]
}

fn list<'a>(r: &'a RunResult, c: &str, name: &str) -> &'a [f64] {
    r.components[c].detail.distribution(name)
}

#[test]
fn each_key_goes_to_one_shard_and_the_counts_add_up() {
    for strategy in [json!("hash_mod"), json!({"consistent": {"vnodes": 50}})] {
        let v = sharded(
            4,
            json!({"strategy": strategy}),
            json!({"uniform": {"keys": 500}}),
            2000.0,
            "10s",
        );
        let r = run(&v, 1);
        let requests = list(&r, "r", "shard_requests");
        let keys = list(&r, "r", "shard_keys");
        // Per shard: the router's count is the service's arrivals; spares get nothing.
        for i in 0..7 {
            let arrived = total(&r, &format!("db{i}"), "arrived");
            assert_eq!(
                requests.get(i).copied().unwrap_or(0.0),
                arrived,
                "{strategy} db{i}"
            );
        }
        assert_eq!(requests.len(), 4);
        let forwarded = total(&r, "r", "forwarded");
        assert_eq!(requests.iter().sum::<f64>(), forwarded);
        assert_eq!(forwarded, r.workloads["w"].arrived as f64);
        // 20 000 requests over 500 keys touch every key, each on one shard only.
        assert_eq!(keys.iter().sum::<f64>(), 500.0, "{strategy}");
        assert_eq!(total(&r, "r", "keys_touched"), 500.0);
        let shares = list(&r, "r", "shard_share");
        let busiest = shares.iter().copied().fold(0.0, f64::max);
        assert_eq!(total(&r, "r", "busiest_share"), busiest);
        assert!((total(&r, "r", "hot_spot_index") - busiest * 4.0).abs() < 1e-12);
        assert_eq!(total(&r, "r", "moved_keys"), 0.0);
        assert_eq!(total(&r, "r", "shards"), 4.0);
        // One figure per series window of the run (a hundredth of the duration).
        assert_eq!(list(&r, "r", "busiest_share_by_window").len(), 100);
        assert!(
            list(&r, "r", "hot_spot_index_by_window")
                .iter()
                .all(|h| *h >= 1.0)
        );
    }
}

#[test]
fn a_shard_added_mid_run_takes_moved_keys_and_their_first_requests() {
    // 8 shards, a ninth at 10s; 2000 keys all touched before it (20 requests each), and
    // requested again after it.
    let changes = json!([{"at": "10s", "add": "db8"}]);
    let mod_n = sharded(
        8,
        json!({"changes": changes}),
        json!({"uniform": {"keys": 2000}}),
        4000.0,
        "20s",
    );
    let ring = sharded(
        8,
        json!({"strategy": {"consistent": {"vnodes": 200}}, "changes": changes}),
        json!({"uniform": {"keys": 2000}}),
        4000.0,
        "20s",
    );
    let (a, b) = (run(&mod_n, 2), run(&ring, 2));
    let share = |r: &RunResult| total(r, "r", "moved_key_share");
    // mod N -> N+1 moves 8/9 of the keys; a ring about 1/9 (its arcs: within a few points).
    assert!((share(&a) - 8.0 / 9.0).abs() < 0.03, "{}", share(&a));
    assert!((share(&b) - 1.0 / 9.0).abs() < 0.05, "{}", share(&b));
    for r in [&a, &b] {
        let moved = total(r, "r", "moved_keys");
        assert_eq!(list(r, "r", "moved_keys_by_change"), [moved]);
        assert_eq!(total(r, "r", "keys_touched"), 2000.0);
        assert_eq!(moved, (share(r) * 2000.0).round());
        // Every moved key is requested again in the 10s left, first at its new shard.
        assert_eq!(total(r, "r", "moved_first_requests"), moved);
        assert_eq!(total(r, "r", "shards"), 9.0);
        assert!(total(r, "db8", "arrived") > 0.0);
        // The new shard took a ninth of the requests for half of the run.
        let added = list(r, "r", "shard_share")[8];
        assert!((added - 1.0 / 18.0).abs() < 0.02, "{added}");
    }
    // The estimate counts the same share over the whole key space.
    let e = estimate(&model(&mod_n));
    let (_, metrics) = &e.metrics[0];
    let moved = metrics
        .iter()
        .find(|m| m.metric == "moved_key_share")
        .unwrap();
    assert!(
        (moved.value - share(&a)).abs() < 1e-12,
        "all 2000 keys were touched"
    );
}

#[test]
fn a_removed_shard_gives_its_keys_to_the_others_and_takes_them_back() {
    let v = sharded(
        4,
        json!({"strategy": {"consistent": {}},
               "changes": [{"at": "2s", "remove": "db1"}, {"at": "6s", "add": "db1"}]}),
        json!({"uniform": {"keys": 1000}}),
        2000.0,
        "10s",
    );
    let r = run(&v, 3);
    // db1 was away for 4 of 10 seconds: about 60% of its share of a quarter.
    let share = list(&r, "r", "shard_share")[1];
    assert!(share > 0.08 && share < 0.2, "{share}");
    let moved = list(&r, "r", "moved_keys_by_change");
    assert_eq!(moved.len(), 2);
    // Removing a node of a ring moves its keys only; adding it back moves them back (and
    // a few keys first requested meanwhile).
    assert!(
        moved[1] >= moved[0] && moved[1] - moved[0] < 10.0,
        "{moved:?}"
    );
    assert!(moved[0] > 100.0 && moved[0] < 500.0, "{moved:?}");
    // Windows 20..60 (2s to 6s) see three shards: the busiest has at least a third.
    let windows = list(&r, "r", "busiest_share_by_window");
    assert!(
        windows[25..55].iter().all(|b| *b >= 1.0 / 3.0),
        "{windows:?}"
    );
}

#[test]
fn sharding_by_client_keeps_each_user_on_one_shard() {
    let mut v = sharded(
        3,
        json!({"by": "client"}),
        json!({"uniform": {"keys": 100000}}),
        0.0,
        "20s",
    );
    v["workloads"]["w"]["arrivals"] =
        json!({"closed": {"users": 30, "think": {"exponential": {"mean": "10ms"}}}});
    let r = run(&v, 4);
    assert_eq!(total(&r, "r", "keys_touched"), 30.0);
    assert_eq!(list(&r, "r", "shard_keys").iter().sum::<f64>(), 30.0);
}

#[test]
fn keys_past_the_range_table_fail_as_unavailable_and_are_warned_of() {
    let v = sharded(
        2,
        json!({"strategy": {"ranges": [{"shard": "db0", "from": 0, "to": 500},
                                        {"shard": "db1", "from": 500, "to": 900}]}}),
        json!({"uniform": {"keys": 1000}}),
        1000.0,
        "10s",
    );
    let r = run(&v, 5);
    let unrouted = total(&r, "r", "unrouted");
    assert_eq!(unrouted, r.workloads["w"].errors["unavailable"] as f64);
    let share = unrouted / r.workloads["w"].arrived as f64;
    assert!((share - 0.1).abs() < 0.02, "{share}");
    let requests = list(&r, "r", "shard_requests");
    assert!((requests[0] / requests[1] - 500.0 / 400.0).abs() < 0.1);
    let e = estimate(&model(&v));
    assert!(
        e.warnings
            .iter()
            .any(|w| w.contains("components.r: no range holds the keys of about 10.00%")),
        "{:?}",
        e.warnings
    );
}

#[test]
fn the_busiest_shard_matches_its_estimate_under_zipf_keys() {
    // Zipf keys over 8 shards: the shard of the hottest keys is busiest, and the estimate
    // (exact over the 100 000 keys) agrees within its tolerance.
    for strategy in [json!("hash_mod"), json!({"consistent": {"vnodes": 100}})] {
        let v = sharded(
            8,
            json!({"strategy": strategy}),
            json!({"zipf": {"keys": 100000, "s": 1.1}}),
            5000.0,
            "20s",
        );
        let e = estimate(&model(&v));
        let (name, metrics) = &e.metrics[0];
        assert_eq!(name, "r");
        let busiest = metrics
            .iter()
            .find(|m| m.metric == "busiest_share")
            .unwrap();
        assert_eq!(busiest.method, "exact over 100000 keys");
        let r = run(&v, 6);
        let simulated = total(&r, "r", "busiest_share");
        // 100 000 requests: the share's sd is about 0.0013.
        assert!(
            (simulated - busiest.value).abs() < 0.006,
            "{strategy}: {simulated} against {}",
            busiest.value
        );
        assert!(busiest.value > 1.0 / 8.0 + 0.03, "{}", busiest.value);
        // And the service estimates of the shards use the same shares.
        let hot = list(&r, "r", "shard_share")
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let (_, s) = e
            .services
            .iter()
            .find(|(n, _)| *n == format!("db{hot}"))
            .unwrap();
        assert!((s.arrival_rate_per_s / 5000.0 - busiest.value).abs() < 1e-9);
    }
}

#[test]
fn a_divergent_estimate_is_pointed_out() {
    // One shard for the first 5s at 10 requests per second, four from then on at 5000:
    // the estimate weighs the two phases by their length (db0 0.625), the run by their
    // requests (db0 about 0.25), and the warning says so.
    let mut v = sharded(
        1,
        json!({"changes": [{"at": "5s", "add": "db1"}, {"at": "5s", "add": "db2"},
                           {"at": "5s", "add": "db3"}]}),
        json!({"uniform": {"keys": 1000}}),
        0.0,
        "10s",
    );
    v["workloads"]["w"]["arrivals"] =
        json!({"steps": [{"at": "0s", "rate": 10}, {"at": "5s", "rate": 5000}]});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, v.to_string()).unwrap();
    let out = json_ok(scalesim().args(["run", file.to_str().unwrap(), "--format", "json"]));
    let busiest = &out["estimates"]["metrics"][0][1][0];
    assert_eq!(busiest["metric"], "busiest_share");
    assert!(
        (busiest["value"].as_f64().unwrap() - 0.625).abs() < 0.02,
        "{busiest}"
    );
    let sim = out["runs"][0]["components"]["r"]["total"]["busiest_share"]
        .as_f64()
        .unwrap();
    assert!(sim < 0.3, "{sim}");
    let warning = out["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .find(|w| w.starts_with("components.r.busiest_share: simulated"))
        .unwrap_or_else(|| panic!("{}", out["warnings"]));
    assert!(
        warning.contains("is far from the estimated 0.6"),
        "{warning}"
    );
    assert!(warning.contains("a changing rate"), "{warning}");
}

#[test]
fn the_instances_of_a_router_share_one_table() {
    let mut v = sharded(
        3,
        json!({"changes": [{"at": "1s", "add": "db3"}]}),
        json!({"uniform": {"keys": 300}}),
        3000.0,
        "4s",
    );
    v["components"]["r"]["replicas"] = json!(2);
    let r = run(&v, 7);
    let c = &r.components["r"];
    assert_eq!(c.instances.len(), 2);
    let forwarded: Vec<f64> = c.instances.iter().map(|i| i.metrics["forwarded"]).collect();
    assert!(
        forwarded[0] > 1000.0 && forwarded[1] > 1000.0,
        "{forwarded:?}"
    );
    assert_eq!(c.total["forwarded"], forwarded[0] + forwarded[1]);
    // One change, applied once, seen alike by both instances.
    for i in &c.instances {
        assert_eq!(i.metrics["moved_keys"], c.total["moved_keys"]);
        assert_eq!(i.metrics["keys_touched"], 300.0);
    }
    assert_eq!(list(&r, "r", "moved_keys_by_change").len(), 1);
}

#[test]
fn a_change_during_the_warm_up_is_not_counted() {
    let mut v = sharded(
        3,
        json!({"changes": [{"at": "1s", "add": "db3"}]}),
        json!({"uniform": {"keys": 300}}),
        1000.0,
        "4s",
    );
    v["warmup"] = json!("2s");
    let r = run(&v, 8);
    assert_eq!(total(&r, "r", "moved_keys"), 0.0);
    assert!(list(&r, "r", "moved_keys_by_change").is_empty());
    // But the table changed: four shards take the requests of the window.
    assert_eq!(
        list(&r, "r", "shard_requests")
            .iter()
            .filter(|x| **x > 0.0)
            .count(),
        4
    );
    assert!(
        estimate(&model(&v)).metrics[0]
            .1
            .iter()
            .all(|m| m.metric != "moved_key_share")
    );
}

/// Runs `scalesim check` on `v` and expects exit status 2 with `path` and `message` in
/// the error.
fn refused(v: &Value, path: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, serde_json::to_string_pretty(v).unwrap()).unwrap();
    let out = scalesim()
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&format!("bad.json: {path}: ")), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

#[test]
fn bad_router_fields_are_refused_at_their_path() {
    let keys = json!({"uniform": {"keys": 100}});
    let bad = |router: Value| sharded(3, router, keys.clone(), 10.0, "10s");
    refused(
        &bad(json!({"strategy": "round_robin"})),
        "components.r.strategy",
        "unknown name \"round_robin\"; expected one of \"hash_mod\", \"consistent\", \"ranges\"",
    );
    refused(
        &bad(json!({"strategy": {"ranges": [
            {"shard": "db0", "from": 0, "to": 50}, {"shard": "db1", "from": 60}]}})),
        "components.r.strategy.ranges[1].from",
        "gap: keys 50 to 59 belong to no range",
    );
    refused(
        &bad(json!({"strategy": {"ranges": [
            {"shard": "db0", "from": 0, "to": 50}, {"shard": "db1", "from": 40}]}})),
        "components.r.strategy.ranges[1].from",
        "overlap: starts at 40 but the previous range ends at 50",
    );
    refused(
        &bad(json!({"shards": ["db0", "db9"]})),
        "components.r.shards[1]",
        "no component named \"db9\"",
    );
    refused(
        &bad(json!({"changes": [{"at": "10m", "add": "db3"}]})),
        "components.r.changes[0].at",
        "\"10m\" is not within the run (duration \"10s\")",
    );
    refused(
        &bad(json!({"shards": ["db0"], "changes": [{"at": "1s", "remove": "db0"}]})),
        "components.r.changes[0].remove",
        "removing \"db0\" would leave no shard",
    );
    refused(
        &bad(json!({"shards": ["db0", "db1", "db0"]})),
        "components.r.shards[2]",
        "shard \"db0\" is listed twice",
    );
    refused(
        &bad(json!({"strategy": {"consistent": {"vnodes": 20000}}})),
        "components.r.strategy.consistent.vnodes",
        "must be between 1 and 10000, got 20000",
    );
}

/// A shipped model, edited by `edit`, run once at seed 1.
fn shipped(name: &str, edit: impl FnOnce(&mut Value)) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    run(&v, 1)
}

#[test]
fn sharded_hot_key_one_shard_runs_hot_until_the_keys_flatten() {
    // models/sharded-hot-key.json: Zipf s = 1.1 over 8 shards puts one shard far above the
    // others; s = 0.7 evens them out. Shortened to 20s.
    let utilizations = |r: &RunResult| -> Vec<f64> {
        (0..8)
            .map(|i| total(r, &format!("db{i}"), "utilization"))
            .collect()
    };
    let hot = shipped("sharded-hot-key.json", |v| v["duration"] = json!("20s"));
    let u = utilizations(&hot);
    let max = u.iter().copied().fold(0.0, f64::max);
    let min = u.iter().copied().fold(1.0, f64::min);
    assert!(max > 0.8 && min < 0.4, "{u:?}");
    assert!(total(&hot, "db", "busiest_share") > 0.18);
    assert!(total(&hot, "db", "hot_spot_index") > 1.45);
    let flat = shipped("sharded-hot-key.json", |v| {
        v["duration"] = json!("20s");
        v["workloads"]["users"]["keys"]["zipf"]["s"] = json!(0.7);
    });
    let u = utilizations(&flat);
    let max = u.iter().copied().fold(0.0, f64::max);
    assert!(max < 0.6, "{u:?}");
    assert!(total(&flat, "db", "busiest_share") < 0.135);
    // A hot shard queues: its p99 wait is several times the flat one's busiest shard's.
    let wait_p99 = |r: &RunResult| {
        (0..8)
            .map(|i| {
                r.components[&format!("db{i}")]
                    .detail
                    .histogram("wait")
                    .unwrap()
                    .p99_ms
            })
            .fold(0.0, f64::max)
    };
    assert!(wait_p99(&hot) > 2.0 * wait_p99(&flat));
}

#[test]
fn resharding_moves_a_fifth_of_the_keys_on_a_ring_and_hash_mod_n_floods_the_database() {
    // models/resharding.json: a fifth cache joins a ring of four at 60s of 120s.
    let ring = shipped("resharding.json", |_| {});
    let moved = total(&ring, "front", "moved_key_share");
    assert!((moved - 0.2).abs() < 0.05, "{moved}");
    // The cold first requests come in a burst after the change and fade.
    let cold = list(&ring, "front", "moved_first_requests_by_window");
    assert_eq!(cold.len(), 100);
    assert!(cold[..50].iter().all(|c| *c == 0.0), "{cold:?}");
    assert!(cold[50] > 4.0 * cold[99], "{cold:?}");
    assert_eq!(
        cold.iter().sum::<f64>(),
        total(&ring, "front", "moved_first_requests")
    );
    // Each cache's hit ratio is the Che estimate over its own keys (the router hands each
    // its share of the keys at their full rates, not every key at a share of the rate).
    let m = {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/resharding.json");
        scalesim::model::load_model_file(&path, &[]).unwrap()
    };
    let e = estimate(&m);
    for c in ["cache0", "cache1", "cache2", "cache3"] {
        let (_, est) = e.metrics.iter().find(|(n, _)| n == c).unwrap();
        let che = est.iter().find(|x| x.metric == "hit_ratio").unwrap().value;
        let sim = total(&ring, c, "hit_ratio");
        assert!((che - sim).abs() < 0.02, "{c}: {sim} against Che {che}");
    }
    // The fifth cache's room lifts the hit ratio: the latency per window ends lower.
    let latency = &ring.series["users"].latency_mean_ms;
    let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
    let before = mean(&latency[10..50]);
    assert!(mean(&latency[60..]) < before, "{latency:?}");
    assert!(
        latency[50..].iter().all(|l| *l < 2.0 * before),
        "{latency:?}"
    );
    // Hash mod N moves four fifths: every cache goes cold at once and the database floods.
    let modn = shipped("resharding.json", |v| {
        v["components"]["front"]["strategy"] = json!("hash_mod");
    });
    assert!(total(&modn, "front", "moved_key_share") > 0.75);
    assert!(
        total(&modn, "front", "moved_first_requests")
            > 3.0 * total(&ring, "front", "moved_first_requests")
    );
    let hits = list(&modn, "cache0", "hit_ratio_by_window");
    assert!(hits[50] < 0.6 * hits[45], "{hits:?}");
    let latency = &modn.series["users"].latency_mean_ms;
    let peak = latency[50..55].iter().copied().fold(0.0, f64::max);
    assert!(peak > 10.0 * before, "{latency:?}");
}
