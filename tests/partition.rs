//! Faults by place (issue 11 points 1, 7, 12): a zone's outage strikes every instance placed
//! in the zone (of every component, or of its target only), each its own window; a
//! partition of the network cuts the calls between groups of zones (refused at once, or
//! black-holed until the client's timeout, with what it swallowed freed), clients included;
//! and the `zone` and `partition` fields refused with their path.

use crate::support::scalesim;
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::results::{RunResult, run_once};
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

fn run(v: &Value) -> RunResult {
    let r = run_once(&model(v), 1).unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

fn errors(r: &RunResult, workload: &str, cause: &str) -> u64 {
    r.workloads[workload].errors[cause]
}

/// Zones a, b, c (0.1 ms within, 1 ms across). 200 requests/s from clients in zone a
/// ("ua") and as many in zone b ("ub"), 500 ms timeout, through a zoneless round-robin
/// balancer (beside each client) to three app instances, one per zone; a cache in zone c.
/// For 10 s, with `faults`.
fn three_zones(faults: Value) -> Value {
    json!({
        "duration": "10s", "warmup": "0s",
        "network": {"zones": ["a", "b", "c"],
                    "latency": {"zone": {"constant": "100us"}, "cross_zone": {"constant": "1ms"}}},
        "workloads": {
            "ua": {"arrivals": {"poisson": {"rate": 200}}, "target": "lb", "zone": "a",
                   "timeout": "500ms"},
            "ub": {"arrivals": {"poisson": {"rate": 200}}, "target": "lb", "zone": "b",
                   "timeout": "500ms"}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": "round_robin", "backends": "app"},
            "app": {"kind": "service", "replicas": 3, "zones": ["a", "b", "c"], "workers": 4,
                    "service_time": {"exponential": {"mean": "2ms"}}},
            "store": {"kind": "cache", "capacity": 10, "zones": ["c"]}},
        "faults": faults
    })
}

#[test]
fn a_zone_outage_strikes_every_instance_placed_in_the_zone() {
    let r = run(&three_zones(json!([
        {"zone": "c", "crash": {"mode": "refused"}, "at": "2s", "for": "3s"}
    ])));
    // app[2] and the cache, each its own window, named after the zone.
    let hit: Vec<(&str, &str)> = r
        .faults
        .iter()
        .map(|w| (w.target.as_str(), w.instance.as_str()))
        .collect();
    assert_eq!(hit, [("app", "app[2]"), ("store", "store")]);
    assert!(
        r.faults
            .iter()
            .all(|w| w.name == "crash zone c" && w.start_s == 2.0 && w.end_s == 5.0)
    );
    // A third of 3 s at 400/s meets a closed port.
    let refused = errors(&r, "ua", "refused") + errors(&r, "ub", "refused");
    assert!((300..500).contains(&refused), "{refused}");
    assert!(!r.workloads["ua"].errors.contains_key("partitioned"));

    // With a target: only its instances in the zone.
    let r = run(&three_zones(json!([
        {"zone": "c", "target": "store", "crash": {}, "at": "2s", "for": "3s"}
    ])));
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.faults[0].instance, "store");
    assert_eq!(r.faults[0].name, "crash store in zone c");
    assert_eq!(r.workloads["ua"].failed + r.workloads["ub"].failed, 0);

    // A slow zone slows only the services placed in it.
    let r = run(&three_zones(json!([
        {"zone": "b", "slow": {"factor": 20}, "at": "0s"}
    ])));
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.faults[0].instance, "app[1]");
    let util = |i: usize| r.components["app"].instances[i].metrics["utilization"];
    assert!(util(1) > 5.0 * util(0), "{} {}", util(1), util(0));
}

#[test]
fn a_refused_partition_fails_the_calls_across_at_once_and_only_those() {
    // Zone a alone against b and c (left out of every group: one side together).
    let r = run(&three_zones(json!([
        {"partition": {"groups": [["a"]]}, "at": "2s", "for": "4s"}
    ])));
    assert_eq!(r.faults.len(), 1);
    let w = &r.faults[0];
    assert_eq!(
        (w.target.as_str(), w.instance.as_str(), w.effect.as_str()),
        ("network", "a | b c", "partition")
    );
    assert_eq!(
        (w.start_s, w.end_s, w.detail.as_str()),
        (2.0, 6.0, "refused")
    );
    // Clients in a reach only app[0] (two calls in three cut), clients in b lose app[0]
    // only (one in three): 4 s at 200/s each.
    let (a, b) = (
        errors(&r, "ua", "partitioned"),
        errors(&r, "ub", "partitioned"),
    );
    assert!((470..600).contains(&a), "{a}");
    assert!((220..320).contains(&b), "{b}");
    // Refused at once: nobody waits for a timeout.
    assert_eq!(errors(&r, "ua", "timeout") + errors(&r, "ub", "timeout"), 0);
    let max_ms = r.workloads["ua"].latency.max_ms;
    assert!(max_ms < 100.0, "{max_ms}");
}

#[test]
fn a_black_hole_partition_hangs_the_calls_across_until_the_clients_timeout() {
    let r = run(&three_zones(json!([
        {"partition": {"groups": [["a"], ["b", "c"]], "mode": "black_hole"},
         "at": "2s", "for": "4s"}
    ])));
    let (a, b) = (errors(&r, "ua", "timeout"), errors(&r, "ub", "timeout"));
    assert!((470..600).contains(&a), "{a}");
    assert!((220..320).contains(&b), "{b}");
    assert_eq!(errors(&r, "ua", "partitioned"), 0);
    // Everything swallowed was freed: the run ends with few requests in flight.
    assert!(r.conservation.in_flight < 10, "{:?}", r.conservation);
}

#[test]
fn clients_are_cut_from_a_balancer_on_the_other_side() {
    // The balancer sits in zone b: clients in a lose everything while the cut lasts.
    let mut m = three_zones(json!([
        {"partition": {"groups": [["a"], ["b"], ["c"]]}, "at": "2s", "for": "2s"}
    ]));
    m["components"]["lb"]["zones"] = json!(["b"]);
    let r = run(&m);
    let a = errors(&r, "ua", "partitioned");
    assert!((330..470).contains(&a), "{a}");
    // Clients in b reach the balancer, which reaches only app[1].
    let b = errors(&r, "ub", "partitioned");
    assert!((220..320).contains(&b), "{b}");
}

#[test]
fn without_a_partition_no_result_lists_the_partitioned_cause() {
    let r = run(&three_zones(json!([
        {"zone": "a", "crash": {}, "at": "2s", "for": "1s"}
    ])));
    assert!(!r.workloads["ua"].errors.contains_key("partitioned"));
    let r = run(&three_zones(json!([
        {"partition": {"groups": [["c"]]}, "at": "2s", "for": "1s"}
    ])));
    assert!(r.workloads["ua"].errors.contains_key("partitioned"));
}

#[test]
fn random_partitions_draw_from_their_own_stream_and_repeat() {
    let m = three_zones(json!([
        {"name": "flaky", "partition": {"groups": [["a"]]},
         "random": {"between": {"exponential": {"mean": "2s"}},
                    "repair": {"exponential": {"mean": "500ms"}}}}
    ]));
    let a = run(&m);
    let b = run(&m);
    assert!(!a.faults.is_empty());
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.workloads["ua"].errors, b.workloads["ua"].errors);
    assert!(a.faults.iter().all(|w| w.name == "flaky"));
}

/// `scalesim check` on `m`: exit status 2, no panic, `path` and `needle` in the message.
fn refused(m: &Value, path: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim()
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(path), "{path}: {stderr}");
    assert!(stderr.contains(needle), "{needle}: {stderr}");
}

#[test]
fn bad_zone_and_partition_faults_are_refused_at_their_path() {
    let at = |mut f: Value| {
        f["at"] = json!("1s");
        f["for"] = json!("1s");
        three_zones(json!([f]))
    };
    refused(
        &at(json!({"zone": "d", "crash": {}})),
        "faults[0].zone",
        "no zone named \"d\"",
    );
    refused(
        &at(json!({"zone": "a", "target": "store", "crash": {}})),
        "faults[0].zone",
        "no instance of \"store\" is placed in zone \"a\"",
    );
    refused(
        &at(json!({"zone": "a", "workers": {"to": 1}})),
        "faults[0].workers",
        "needs a \"target\"",
    );
    refused(
        &at(json!({"zone": "c", "target": "store", "slow": {"factor": 2}})),
        "faults[0].slow",
        "cannot run degraded",
    );
    refused(
        &three_zones(json!([{"zone": "a", "crash": {},
            "random": {"between": {"constant": "1s"}, "repair": {"constant": "1s"}}}])),
        "faults[0].random",
        "give \"at\" and \"for\"",
    );
    refused(
        &at(json!({"crash": {}})),
        "faults[0]",
        "needs a \"target\" (a component) or a \"zone\"",
    );
    refused(
        &at(json!({"partition": {"groups": [["a"], ["x"]]}})),
        "faults[0].partition.groups[1][0]",
        "no zone named \"x\"",
    );
    refused(
        &at(json!({"partition": {"groups": [["a", "b"], ["b", "c"]]}})),
        "faults[0].partition.groups[1][0]",
        "zone \"b\" is already in group 0",
    );
    refused(
        &at(json!({"partition": {"groups": [["a", "b", "c"]]}})),
        "faults[0].partition.groups",
        "cuts nothing",
    );
    refused(
        &at(json!({"partition": {"groups": [["a"], []]}})),
        "faults[0].partition.groups[1]",
        "at least one zone",
    );
    refused(
        &at(json!({"partition": {"groups": [["a"]]}, "target": "app"})),
        "faults[0].target",
        "strikes no component",
    );
    refused(
        &at(json!({"partition": {"groups": [["a"]], "mode": "sideways"}})),
        "faults[0].partition.mode",
        "unknown name \"sideways\"",
    );
    // Two partitions at once contradict each other.
    refused(
        &three_zones(json!([
            {"partition": {"groups": [["a"]]}, "at": "1s", "for": "2s"},
            {"partition": {"groups": [["b"]]}, "at": "2s", "for": "2s"}])),
        "faults[1]",
        "one partition at a time",
    );
    // A zone's crash overlapping a crash of one of its instances.
    refused(
        &three_zones(json!([
            {"zone": "b", "crash": {}, "at": "1s", "for": "2s"},
            {"target": "app", "instance": 1, "crash": {}, "at": "2s", "for": "2s"}])),
        "faults[1]",
        "overlaps faults[0]",
    );
    // No network: no zone to strike, no zones to cut.
    let plain = json!({
        "duration": "2s",
        "workloads": {"u": {"arrivals": {"poisson": {"rate": 10}}, "target": "app"}},
        "components": {"app": {"kind": "service", "service_time": {"constant": "1ms"}}},
        "faults": [{"zone": "a", "crash": {}, "at": "1s"},
                   {"partition": {"groups": [["a"]]}, "at": "1s"}]
    });
    refused(&plain, "faults[0].zone", "a zone fault needs zones");
    refused(
        &plain,
        "faults[1].partition.groups",
        "a partition needs zones",
    );
}
