//! Inputs a new user writes that used to be accepted silently or refused with a confusing
//! message: each now gets a warning (a valid model that will not do what it seems to) or a
//! clear refusal at its path, and the well-formed variant gets neither.

use crate::support::{check_refusal, check_refuses as refused};
use scalesim::model::{Format, Model, lint, parse_model_str};
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

/// The warnings about `v` that contain `needle`.
fn warned(v: &Value, needle: &str) -> Vec<String> {
    lint(&model(v))
        .into_iter()
        .filter(|w| w.contains(needle))
        .collect()
}

/// 100 requests/s without a timeout through a round-robin balancer to three app
/// instances, one per zone a, b, c.
fn base() -> Value {
    json!({
        "duration": "10s", "warmup": "0s",
        "network": {"zones": ["a", "b", "c"],
                    "latency": {"zone": {"constant": "100us"}, "cross_zone": {"constant": "1ms"}}},
        "workloads": {"u": {"arrivals": {"poisson": {"rate": 100}}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": "round_robin", "backends": "app"},
            "app": {"kind": "service", "replicas": 3, "zones": ["a", "b", "c"],
                    "service_time": {"exponential": {"mean": "2ms"}}}}
    })
}

fn with_faults(faults: Value) -> Value {
    let mut m = base();
    m["faults"] = faults;
    m
}

#[test]
fn a_black_hole_that_nothing_times_out_is_warned_of() {
    let crash = with_faults(json!([{"target": "app", "instance": 0,
        "crash": {"mode": "black_hole"}, "at": "1s", "for": "1s"}]));
    let w = warned(&crash, "never answers");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("faults[0] (\"crash app[0]\")"), "{}", w[0]);
    assert!(w[0].contains("workload(s) \"u\""), "{}", w[0]);
    let partition = with_faults(
        json!([{"partition": {"groups": [["a"]], "mode": "black_hole"},
        "at": "1s", "for": "1s"}]),
    );
    let w = warned(&partition, "never answers");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("black-hole partition"), "{}", w[0]);
    // A client timeout, or a call timeout on the way, frees what it swallows.
    let mut timed = crash.clone();
    timed["workloads"]["u"]["timeout"] = json!("1s");
    assert!(warned(&timed, "never answers").is_empty());
    let mut call_timeout = crash.clone();
    call_timeout["components"]["lb"]["calls_to"] = json!({"app": {"timeout": "200ms"}});
    assert!(warned(&call_timeout, "never answers").is_empty());
    // A refused crash answers at once.
    let mut refused_crash = crash.clone();
    refused_crash["faults"][0]["crash"]["mode"] = json!("refused");
    assert!(warned(&refused_crash, "never answers").is_empty());
    // And a black hole no request reaches is no concern.
    let mut elsewhere = crash;
    elsewhere["components"]["other"] =
        json!({"kind": "service", "service_time": {"constant": "1ms"}});
    elsewhere["faults"][0]["target"] = json!("other");
    assert!(warned(&elsewhere, "never answers").is_empty());
}

#[test]
fn sessions_behind_a_balancer_that_is_not_sticky_are_warned_of() {
    let mut m = base();
    m["components"]["app"]["sessions"] = json!({"idle_timeout": "30m"});
    let w = warned(&m, "not sticky");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("components.app.sessions: "), "{}", w[0]);
    assert!(w[0].contains("\"round_robin\""), "{}", w[0]);
    m["components"]["lb"]["policy"] = json!("hash_client");
    assert!(warned(&m, "not sticky").is_empty());
}

#[test]
fn a_partition_mode_no_partition_can_exercise_is_warned_of() {
    let mut m = base();
    m["components"]["db"] = json!({"kind": "database", "replicas": 2,
        "service_time": {"constant": "1ms"}, "partition_mode": "available"});
    let w = warned(&m, "partition_mode");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("has no \"zones\""), "{}", w[0]);
    m["components"]["db"]["zones"] = json!(["a", "b", "c"]);
    let w = warned(&m, "partition_mode");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("no \"partition\" fault"), "{}", w[0]);
    m["faults"] = json!([{"partition": {"groups": [["a"]]}, "at": "1s", "for": "1s"}]);
    assert!(warned(&m, "partition_mode").is_empty());
}

#[test]
fn a_read_your_writes_window_of_zero_is_refused() {
    let mut m = base();
    m["components"]["db"] = json!({"kind": "database", "replicas": 2,
        "service_time": {"constant": "1ms"}, "read_your_writes": "0s"});
    refused(
        &m,
        "components.db.read_your_writes",
        "must be longer than zero",
    );
}

#[test]
fn a_quorum_size_that_disagrees_with_the_replicas_gives_one_error() {
    let mut m = base();
    m["components"]["db"] = json!({"kind": "database", "replicas": 5,
        "service_time": {"constant": "1ms"}, "quorum": {"n": 3, "r": 2, "w": 2}});
    let stderr = check_refusal(&m);
    assert!(stderr.contains("components.db.replicas"), "{stderr}");
    assert!(stderr.contains("quorum.n is 3"), "{stderr}");
    assert!(!stderr.contains("between 1 and N"), "{stderr}");
    // A quorum larger than a database may be is refused, not cut down silently.
    m["components"]["db"] = json!({"kind": "database",
        "service_time": {"constant": "1ms"}, "quorum": {"n": 5000, "r": 2, "w": 2}});
    refused(&m, "components.db.replicas", "quorum.n is 5000");
}

#[test]
fn two_faults_named_alike_are_refused_at_the_second() {
    let m = with_faults(json!([
        {"name": "x", "target": "app", "crash": {}, "at": "1s", "for": "1s"},
        {"name": "x", "target": "app", "slow": {"factor": 2}, "at": "3s", "for": "1s"}
    ]));
    refused(&m, "faults[1].name", "already the name of faults[0]");
    // A default name taken by a given one.
    let m = with_faults(json!([
        {"name": "crash app", "target": "app", "instance": 0, "crash": {}, "at": "1s", "for": "1s"},
        {"target": "app", "crash": {}, "at": "3s", "for": "1s"}
    ]));
    refused(&m, "faults[1]", "default name \"crash app\"");
    // Two left to their default name share it (two crashes of one component), and a
    // zone fault's windows share theirs.
    let m = with_faults(json!([
        {"target": "app", "crash": {}, "at": "1s", "for": "1s"},
        {"target": "app", "crash": {}, "at": "3s", "for": "1s"},
        {"zone": "a", "slow": {"factor": 2}, "at": "5s", "for": "1s"}
    ]));
    model(&m);
}

#[test]
fn an_empty_zone_list_does_not_list_empty_zones() {
    let mut m = base();
    m["network"]["zones"] = json!([]);
    let stderr = check_refusal(&m);
    assert!(
        stderr.contains("network.zones: a network needs at least one zone"),
        "{stderr}"
    );
    assert!(!stderr.contains("zones are"), "{stderr}");
    assert!(stderr.contains("network.zones lists no zone"), "{stderr}");
}

#[test]
fn a_negative_cache_capacity_asks_for_1_or_more() {
    let mut m = base();
    m["components"]["c"] = json!({"kind": "cache", "capacity": -5});
    refused(
        &m,
        "components.c.capacity",
        "a whole number, 1 or more, got -5",
    );
    m["components"]["c"]["capacity"] = json!(0);
    refused(&m, "components.c.capacity", "at least 1 key");
}
