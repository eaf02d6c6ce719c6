//! Faults by place (issue 11 points 1, 7, 12): a zone's outage strikes every instance placed
//! in the zone (of every component, or of its target only), each its own window; a
//! partition of the network cuts the calls between groups of zones (refused at once, or
//! black-holed until the client's timeout, with what it swallowed freed), clients included;
//! a replicated database cut by a partition refuses the side without a quorum or primary
//! (consistent) or serves both sides with stale reads and conflicting writes reconciled by
//! last writer wins (available), and reports what each side saw (availability, stale
//! reads, conflicting and lost writes: `partition_sides`, in the JSON, the CSV and the
//! table); the shipped models' lessons; and the `zone`, `partition` and `partition_mode`
//! fields refused with their path.

use crate::support::check_refuses as refused;
use crate::support::{json_ok, scalesim, stdout_ok};
use scalesim::model::{Format, Model, load_model_file, parse_model_str};
use scalesim::results::{PartitionSideResult, RunResult, run_once};
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

/// A random crash of zone c (app[2] and the cache) named "zc", down for about 300 ms
/// after about 1 s up, again and again, beside `others`.
fn random_zone_c(others: Value) -> Value {
    let mut faults = vec![json!(
        {"name": "zc", "zone": "c", "crash": {},
         "random": {"between": {"exponential": {"mean": "1s"}},
                    "repair": {"exponential": {"mean": "300ms"}}}}
    )];
    faults.extend(others.as_array().unwrap().iter().cloned());
    three_zones(Value::Array(faults))
}

/// The (start, end) of every window of fault `name` on `instance`, in order.
fn windows_of(r: &RunResult, name: &str, instance: &str) -> Vec<(f64, f64)> {
    r.faults
        .iter()
        .filter(|w| w.name == name && w.instance == instance)
        .map(|w| (w.start_s, w.end_s))
        .collect()
}

#[test]
fn a_random_zone_outage_strikes_the_whole_zone_together_from_its_own_stream() {
    let m = random_zone_c(json!([]));
    let a = run(&m);
    // Every instance of the zone, down in the same windows; nothing else.
    let app = windows_of(&a, "zc", "app[2]");
    assert!(app.len() >= 3, "{app:?}");
    assert_eq!(windows_of(&a, "zc", "store"), app);
    assert_eq!(a.faults.len(), 2 * app.len());
    assert!(a.faults.iter().all(|w| w.effect == "crash"));
    // Calls to app[2] meet a closed port while the zone is down.
    assert!(errors(&a, "ua", "refused") > 0);
    // The same seed repeats it; another draws other windows.
    let b = run(&m);
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.workloads["ua"].errors, b.workloads["ua"].errors);
    let other = run_once(&model(&m), 2).unwrap();
    assert_ne!(windows_of(&other, "zc", "app[2]"), app);
    assert_eq!(
        windows_of(&other, "zc", "store"),
        windows_of(&other, "zc", "app[2]")
    );
    // A slow zone at random: the same kind of windows, on the service only.
    let mut slow = random_zone_c(json!([]));
    slow["faults"][0].as_object_mut().unwrap().remove("crash");
    slow["faults"][0]["slow"] = json!({"factor": 3});
    let s = run(&slow);
    assert_eq!(windows_of(&s, "zc", "app[2]"), app);
    assert!(windows_of(&s, "zc", "store").is_empty());
}

#[test]
fn every_instance_of_a_randomly_struck_zone_is_down_exactly_in_its_windows() {
    let m = model(&random_zone_c(json!([])));
    let mut sim = scalesim::topology::simulation(&m, 1);
    let instances: Vec<(u32, bool)> = m
        .components
        .iter()
        .flat_map(|c| {
            (0..c.replicas).map(move |k| {
                let in_c = c.name == "store" || (c.name == "app" && k == 2);
                (c.first_instance + k, in_c)
            })
        })
        .collect();
    let (mut down, mut up) = (0, 0);
    for step in 1..1000u64 {
        let t = scalesim::time::SimTime(step * 10_000_000 + 1);
        sim.advance_to(t);
        let windows = sim.fault_windows();
        for &(i, in_c) in &instances {
            let inside = windows
                .iter()
                .any(|w| w.instance == i && w.start <= t && w.end.is_none_or(|e| t < e));
            assert!(in_c || !inside);
            let crashed = sim.context().crash_state(i).is_some();
            assert_eq!(crashed, inside, "instance {i} at {t:?}");
            if in_c {
                if crashed { down += 1 } else { up += 1 }
            }
        }
    }
    // Both states seen, about a quarter of the time down.
    assert!(down > 100 && up > 600, "{down} {up}");
}

#[test]
fn adding_a_random_zone_outage_moves_no_other_draw() {
    let flaky = json!([{"name": "flaky", "target": "app", "instance": 0,
        "slow": {"factor": 2},
        "random": {"between": {"exponential": {"mean": "1s"}},
                   "repair": {"exponential": {"mean": "200ms"}}}}]);
    let alone = run(&three_zones(flaky.clone()));
    let both = run(&random_zone_c(flaky));
    let zone_alone = run(&random_zone_c(json!([])));
    assert!(!windows_of(&alone, "flaky", "app[0]").is_empty());
    assert_eq!(
        windows_of(&both, "flaky", "app[0]"),
        windows_of(&alone, "flaky", "app[0]")
    );
    assert_eq!(
        windows_of(&both, "zc", "app[2]"),
        windows_of(&zone_alone, "zc", "app[2]")
    );
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

fn total(r: &RunResult, component: &str, metric: &str) -> f64 {
    r.components[component].total[metric]
}

/// A primary in zone a with replicas in b and c (`mode`), reads to the replicas, writes
/// reaching the others after 5 ms; clients in zone a and in zone b (100 requests/s each,
/// half writes, over 20 keys); zone a cut off from 2 s to 4 s.
fn primary_and_replicas(mode: &str) -> Value {
    let clients = |zone: &str| {
        json!({"arrivals": {"poisson": {"rate": 100}}, "classes": {"read": 0.5, "write": 0.5},
               "keys": {"uniform": {"keys": 20}}, "target": "db", "zone": zone,
               "timeout": "500ms"})
    };
    json!({
        "duration": "6s", "warmup": "0s",
        "network": {"zones": ["a", "b", "c"],
                    "latency": {"zone": {"constant": "100us"}, "cross_zone": {"constant": "1ms"}}},
        "workloads": {"in-a": clients("a"), "in-b": clients("b")},
        "components": {
            "db": {"kind": "database", "replicas": 2, "zones": ["a", "b", "c"], "workers": 4,
                   "service_time": {"constant": "1ms"},
                   "replication": {"async": {"lag": {"constant": "5ms"}}},
                   "partition_mode": mode}},
        "faults": [{"partition": {"groups": [["a"], ["b", "c"]]}, "at": "2s", "for": "2s"}]
    })
}

#[test]
fn a_consistent_database_refuses_the_side_without_its_primary() {
    let r = run(&primary_and_replicas("consistent"));
    // The side of the primary goes on; the other fails everything for 2 s at 100/s.
    assert_eq!(r.workloads["in-a"].failed, 0);
    let b = errors(&r, "in-b", "unavailable");
    assert!((160..240).contains(&b), "{b}");
    assert_eq!(r.workloads["in-b"].failed, b);
    assert_eq!(total(&r, "db", "partition_conflicting_writes"), 0.0);
    assert_eq!(total(&r, "db", "partition_lost_writes"), 0.0);
    // The primary's writes could not reach the replicas: logged, given to them at the heal.
    assert!(total(&r, "db", "partition_split_writes") > 50.0);
}

#[test]
fn an_available_database_serves_both_sides_and_the_last_writer_wins() {
    let r = run(&primary_and_replicas("available"));
    assert_eq!(r.workloads["in-a"].failed, 0);
    assert_eq!(r.workloads["in-b"].failed, 0);
    // Side b wrote through its first replica, which the primary's writes could not reach.
    let db = &r.components["db"];
    let replica = |i: usize, m: &str| db.instances[1 + i].metrics[m];
    assert!(replica(0, "writes") > 70.0, "{}", replica(0, "writes"));
    assert_eq!(replica(1, "writes"), 0.0);
    // Both sides wrote the 20 keys: they conflict, and about half the writes lose.
    let conflicting = total(&r, "db", "partition_conflicting_writes");
    let lost = total(&r, "db", "partition_lost_writes");
    let split = total(&r, "db", "partition_split_writes");
    assert!(conflicting > 0.9 * split, "{conflicting} of {split}");
    assert!(
        lost > 0.25 * split && lost < 0.75 * split,
        "{lost} of {split}"
    );
    // Reads on each side miss the other's writes.
    assert!(total(&r, "db", "stale_share") > 0.1);
    // Healed: every copy holds the winners; the reads of the last second are fresh.
    let consistent = run(&primary_and_replicas("consistent"));
    assert!(total(&r, "db", "stale_reads") > 5.0 * total(&consistent, "db", "stale_reads"));
}

#[test]
fn without_a_partition_mode_a_database_reports_no_partition_metrics() {
    let mut m = primary_and_replicas("consistent");
    m["components"]["db"]
        .as_object_mut()
        .unwrap()
        .remove("partition_mode");
    let r = run(&m);
    assert!(
        !r.components["db"]
            .total
            .contains_key("partition_lost_writes")
    );
    assert!(r.components["db"].partition_sides.is_empty());
    // The default is consistent.
    assert_eq!(
        r.workloads["in-b"].failed,
        errors(&r, "in-b", "unavailable")
    );
    assert!(r.workloads["in-b"].failed > 150);
}

fn shipped(name: &str) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let m = load_model_file(&path, &[]).unwrap();
    let r = run_once(&m, m.seed).unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

#[test]
fn cap_partition_lesson_consistent_errs_where_available_reads_stale_and_loses_writes() {
    let r = shipped("cap-partition.json");
    // Consistent: the side of one copy fails every request for 20 s at 400/s.
    let cp_a = errors(&r, "cp-a", "unavailable");
    assert!((7200..8800).contains(&cp_a), "{cp_a}");
    assert_eq!(r.workloads["cp-bc"].failed, 0);
    assert_eq!(total(&r, "db_cp", "stale_reads"), 0.0);
    assert_eq!(total(&r, "db_cp", "partition_lost_writes"), 0.0);
    // Available: nothing fails, but reads go stale and writes conflict and are lost.
    assert_eq!(r.workloads["ap-a"].failed + r.workloads["ap-bc"].failed, 0);
    assert!(total(&r, "db_ap", "stale_share") > 0.05);
    let lost = total(&r, "db_ap", "partition_lost_writes");
    let conflicting = total(&r, "db_ap", "partition_conflicting_writes");
    assert!(lost > 500.0 && conflicting > lost, "{lost} {conflicting}");
}

#[test]
fn zone_outage_lesson_spreading_over_zones_limits_the_loss_to_the_zones_share() {
    let r = shipped("zone-outage.json");
    let spread = errors(&r, "spread-users", "refused");
    let single = errors(&r, "single-users", "refused");
    // 20 s at 600/s: all of it for one zone, a third for three.
    assert!((11000..13000).contains(&single), "{single}");
    let ratio = single as f64 / spread as f64;
    assert!((2.6..3.4).contains(&ratio), "{ratio}");
    // Two spread instances and all six single ones were in zone a.
    assert_eq!(r.faults.len(), 8);
}

#[test]
fn a_bad_partition_mode_is_refused_at_its_path() {
    let mut m = primary_and_replicas("consistent");
    m["components"]["db"]["partition_mode"] = json!("eventual");
    refused(
        &m,
        "components.db.partition_mode",
        "unknown name \"eventual\"",
    );
}

/// [`primary_and_replicas`] with failover (500 ms): the primary (zone a) crashes at 1 s and
/// is back at 2.5 s as a replica, replica 1 (zone b) promoted at 1.5 s; from 3 s to 5 s a
/// partition cuts zone b, the new primary alone, off from a and c (the old primary and
/// replica 2).
fn promoted_then_partitioned(mode: &str) -> Value {
    let mut m = primary_and_replicas(mode);
    m["duration"] = json!("7s");
    m["components"]["db"]["failover"] = json!({"delay": "500ms"});
    m["faults"] = json!([
        {"target": "db", "instance": 0, "crash": {}, "at": "1s", "for": "1500ms"},
        {"partition": {"groups": [["b"], ["a", "c"]]}, "at": "3s", "for": "2s"}
    ]);
    m
}

#[test]
fn a_partition_after_a_failover_is_drawn_around_the_promoted_primary() {
    let instance = |r: &RunResult, i: usize, m: &str| r.components["db"].instances[i].metrics[m];
    let cp = run(&promoted_then_partitioned("consistent"));
    assert_eq!(total(&cp, "db", "failovers"), 1.0);
    assert_eq!(instance(&cp, 1, "primary"), 1.0, "replica 1 was promoted");
    assert_eq!(instance(&cp, 0, "primary"), 0.0);
    // Consistent: the side of the promoted primary (b) serves during the cut; a, with the
    // old primary back as a replica, fails everything for 2 s at 100/s. Both lost the
    // writes of the half second before the promotion (about 25 each).
    let (a, b) = (
        errors(&cp, "in-a", "unavailable"),
        errors(&cp, "in-b", "unavailable"),
    );
    assert!((10..60).contains(&b), "in-b {b}");
    assert!((180..300).contains(&a), "in-a {a}");
    assert_eq!(total(&cp, "db", "partition_conflicting_writes"), 0.0);
    assert!(total(&cp, "db", "partition_split_writes") > 50.0);
    // Available: side a writes through its first live copy, the old primary, and the keys
    // both sides wrote conflict when the cut heals.
    let ap = run(&promoted_then_partitioned("available"));
    assert_eq!(instance(&ap, 1, "primary"), 1.0);
    let (a, b) = (
        errors(&ap, "in-a", "unavailable"),
        errors(&ap, "in-b", "unavailable"),
    );
    assert!(a < 60 && b < 60, "in-a {a}, in-b {b}");
    let old_primary_writes = instance(&ap, 0, "writes") - instance(&cp, 0, "writes");
    assert!(old_primary_writes > 70.0, "{old_primary_writes}");
    assert!(total(&ap, "db", "partition_lost_writes") > 0.0);
    assert!(total(&ap, "db", "partition_conflicting_writes") > 0.0);
}

#[test]
fn a_retry_during_a_partition_picks_its_side_as_its_first_attempt_does() {
    // The consistent database's clients in zone a, cut from the primary, retry twice: each
    // retry is refused by their side like the first attempt (unavailable), never sent
    // across the cut (a pick ignoring the partition failed 5,383 of them `partitioned`).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cap-partition.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["workloads"]["cp-a"]["retries"] = json!({"max": 2, "backoff": {"base": "1ms"}});
    let r = run(&v);
    let w = &r.workloads["cp-a"];
    assert!(w.retries.as_ref().unwrap().retries > 10_000, "{w:?}");
    assert!(w.failed > 5_000, "{w:?}");
    assert_eq!(errors(&r, "cp-a", "partitioned"), 0);
    assert_eq!(errors(&r, "cp-a", "unavailable"), w.failed);
}

/// The sides `component` reported, by their zones.
fn sides<'a>(r: &'a RunResult, component: &str) -> Vec<(&'a str, &'a PartitionSideResult)> {
    let c = &r.components[component];
    c.partition_sides
        .iter()
        .map(|s| (s.side.as_str(), s))
        .collect()
}

/// Every side's numbers add up: what arrived was served or refused (no other failure in
/// these models), the reads and stale reads are among the database's, and the split,
/// conflicting and lost writes of the sides are the copies' (the totals).
fn check_sides_add_up(r: &RunResult, component: &str) {
    let list = sides(r, component);
    assert!(!list.is_empty(), "{component}: no sides");
    let sum = |f: fn(&PartitionSideResult) -> u64| list.iter().map(|(_, s)| f(s)).sum::<u64>();
    for (name, s) in &list {
        assert_eq!(s.arrived, s.arrived_reads + s.arrived_writes, "{name}");
        assert_eq!(s.served, s.reads + s.writes, "{name}");
        assert_eq!(s.arrived, s.served + s.unavailable, "{name}: {s:?}");
        assert!(s.stale_reads <= s.reads, "{name}");
        // (The heal finds the conflicts of writes made before the end of the warm-up too.)
        if s.start_s >= r.window_start_s {
            assert!(s.conflicting_writes <= s.split_writes, "{name}: {s:?}");
        }
        assert!(s.lost_writes <= s.conflicting_writes, "{name}");
    }
    let whole = |m: &str| total(r, component, m) as u64;
    for (side, copy) in [
        (sum(|s| s.split_writes), "partition_split_writes"),
        (
            sum(|s| s.conflicting_writes),
            "partition_conflicting_writes",
        ),
        (sum(|s| s.lost_writes), "partition_lost_writes"),
    ] {
        assert_eq!(side, whole(copy), "{component}: {copy}");
        let per_copy: f64 = r.components[component]
            .instances
            .iter()
            .map(|i| i.metrics[copy])
            .sum();
        assert_eq!(side, per_copy as u64, "{component}: {copy} per copy");
    }
    assert!(sum(|s| s.reads) <= whole("reads"));
    assert!(sum(|s| s.stale_reads) <= whole("stale_reads"));
}

#[test]
fn a_consistent_database_reports_the_side_without_its_primary_unavailable() {
    let r = run(&primary_and_replicas("consistent"));
    check_sides_add_up(&r, "db");
    let list = sides(&r, "db");
    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "b c"]);
    let (a, bc) = (list[0].1, list[1].1);
    assert_eq!(a.fault, "partition a | b c");
    assert_eq!((a.start_s, a.end_s), (2.0, 4.0));
    assert_eq!(
        (a.copies.as_slice(), bc.copies.as_slice()),
        (&[0][..], &[1, 2][..])
    );
    assert_eq!(bc.instances, ["db.replica[0]", "db.replica[1]"]);
    // The side of the replicas refuses every call: all of in-b's failures.
    assert!(bc.arrived > 150, "{bc:?}");
    assert_eq!(bc.unavailable, bc.arrived);
    assert_eq!(bc.availability, Some(0.0));
    assert_eq!(bc.unavailable, errors(&r, "in-b", "unavailable"));
    // The primary's side serves everything it gets, and nothing conflicts.
    assert!(a.arrived > 150, "{a:?}");
    assert_eq!((a.unavailable, a.availability), (0, Some(1.0)));
    for s in [a, bc] {
        assert_eq!((s.conflicting_writes, s.lost_writes), (0, 0), "{s:?}");
    }
    assert!(a.split_writes > 50, "{a:?}");
}

#[test]
fn an_available_database_reports_both_sides_served_stale_and_conflicting() {
    let r = run(&primary_and_replicas("available"));
    check_sides_add_up(&r, "db");
    let list = sides(&r, "db");
    let (a, bc) = (list[0].1, list[1].1);
    for s in [a, bc] {
        assert!(s.arrived > 150, "{s:?}");
        assert_eq!((s.unavailable, s.availability), (0, Some(1.0)), "{s:?}");
        assert!(s.conflicting_writes > 0, "{s:?}");
    }
    // The primary's side (one copy) misses the writes the replicas take on theirs.
    assert!(a.stale_reads > 0 && a.stale_share > 0.1, "{a:?}");
    // A shorter run over one key: the key's last write wins, so only the other side loses,
    // and it loses every write it made.
    let mut m = primary_and_replicas("available");
    for w in ["in-a", "in-b"] {
        m["workloads"][w]["keys"] = json!({"uniform": {"keys": 1}});
    }
    let r = run(&m);
    check_sides_add_up(&r, "db");
    let list = sides(&r, "db");
    let (a, bc) = (list[0].1, list[1].1);
    let (lost, won) = if a.lost_writes > 0 { (a, bc) } else { (bc, a) };
    assert_eq!(won.lost_writes, 0, "{won:?}");
    assert_eq!(lost.lost_writes, lost.split_writes, "{lost:?}");
    assert!(
        lost.lost_writes > 0 && won.conflicting_writes > 0,
        "{lost:?} {won:?}"
    );
}

#[test]
fn the_shipped_cap_partition_reports_each_side() {
    let r = shipped("cap-partition.json");
    for db in ["db_cp", "db_ap"] {
        check_sides_add_up(&r, db);
    }
    let cp = sides(&r, "db_cp");
    assert_eq!(cp[0].0, "a");
    assert_eq!(cp[0].1.availability, Some(0.0));
    assert_eq!(cp[0].1.unavailable, errors(&r, "cp-a", "unavailable"));
    assert_eq!(cp[1].1.availability, Some(1.0));
    let ap = sides(&r, "db_ap");
    for (name, s) in &ap {
        assert_eq!(s.availability, Some(1.0), "{name}");
        assert!(s.stale_share > 0.1 && s.lost_writes > 100, "{name}: {s:?}");
    }
}

/// The per-side report is in the text table, and each of its numbers in the tidy CSV
/// carries exactly the JSON's value.
#[test]
fn partition_sides_are_in_the_table_the_json_and_the_csv() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cap-partition.json");
    let file = file.to_str().unwrap();
    let short = ["--set", "duration=30s", "--set", "faults[0].for=5s"];
    let text = |format: &str| {
        let out = stdout_ok(
            scalesim()
                .args(["run", file, "--format", format])
                .args(short),
        );
        String::from_utf8(out).unwrap()
    };
    let table = text("table");
    assert!(table.contains("Partition sides"), "{table}");
    assert!(table.contains("db_ap[1] db_ap[2]"), "{table}");
    let json = json_ok(
        scalesim()
            .args(["run", file, "--format", "json"])
            .args(short),
    );
    let csv = text("csv");
    let mut checked = 0;
    for db in ["db_cp", "db_ap"] {
        let list = json["runs"][0]["components"][db]["partition_sides"]
            .as_array()
            .unwrap_or_else(|| panic!("{db}: no partition_sides in the JSON"));
        assert_eq!(list.len(), 2, "{db}");
        for side in list {
            let label = format!(
                "{}: {}",
                side["fault"].as_str().unwrap(),
                side["side"].as_str().unwrap()
            );
            for (field, value) in side.as_object().unwrap() {
                let Some(value) = value.as_f64() else {
                    continue;
                };
                let row = format!("0,1,partition_side,{db},{label},window_0_{field},");
                let line = csv
                    .lines()
                    .find(|l| l.starts_with(&row))
                    .unwrap_or_else(|| panic!("no {row} in the CSV"));
                let csv_value: f64 = line[row.len()..].parse().unwrap();
                assert_eq!(csv_value, value, "{db} {label} {field}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * 15, "every number of every side");
}

/// A cut the warm-up ends in is reported from the end of the warm-up (its start stays the
/// fault's); zones that reach no copy are a side of their own, every call of it refused.
#[test]
fn a_side_counts_from_the_warm_up_and_zones_without_copies_are_a_side() {
    let mut m = primary_and_replicas("available");
    m["warmup"] = json!("3s");
    m["network"]["zones"] = json!(["a", "b", "c", "d"]);
    m["workloads"]["in-d"] = m["workloads"]["in-a"].clone();
    m["workloads"]["in-d"]["zone"] = json!("d");
    let r = run(&m);
    check_sides_add_up(&r, "db");
    let list = sides(&r, "db");
    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "b c", "d"]);
    let (a, d) = (list[0].1, list[2].1);
    assert_eq!((a.start_s, a.end_s), (2.0, 4.0));
    // One second of the two counted, at 100 requests/s.
    assert!((60..140).contains(&a.arrived), "{a:?}");
    assert!(d.copies.is_empty() && d.instances.is_empty(), "{d:?}");
    assert_eq!(d.unavailable, d.arrived);
    assert_eq!(d.unavailable, errors(&r, "in-d", "unavailable"));
    assert!(d.arrived > 60, "{d:?}");
}
