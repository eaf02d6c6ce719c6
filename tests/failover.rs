//! The data tier under failure (issue 11 point 6): a database's primary failover (a
//! replica promoted after the delay, the acknowledged writes it lacked lost and counted,
//! the old primary back as a replica), writes that need copies that are down, and the
//! `failover` field refused with its path.

use crate::support::scalesim;
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn parse(v: &Value) -> Result<scalesim::model::Model, Vec<scalesim::error::ModelError>> {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
}

fn run_seed(v: &Value, seed: u64) -> RunResult {
    let m = parse(v).unwrap();
    replicate(&m, seed, 1).unwrap().remove(0)
}

fn run(v: &Value) -> RunResult {
    run_seed(v, 1)
}

fn instance(r: &RunResult, component: &str, i: usize, metric: &str) -> f64 {
    r.components[component].instances[i].metrics[metric]
}

fn total(r: &RunResult, component: &str, metric: &str) -> f64 {
    r.components[component].total[metric]
}

// ---------------------------------------------------------------------------------------
// Primary failover
// ---------------------------------------------------------------------------------------

/// 400 requests a second (10% writes over 100 keys) straight to a primary with two
/// replicas (asynchronous, exponential lag of mean `lag`), for 20 s; the primary down from
/// 5 s to 15 s; `failover` as given (none when null).
fn primary_crash(lag: &str, failover: Value, replication: Option<Value>) -> Value {
    let mut db = json!({"kind": "database", "replicas": 2, "workers": 4,
                        "service_time": {"constant": "1ms"},
                        "replication": replication.unwrap_or_else(
                            || json!({"async": {"lag": {"exponential": {"mean": lag}}}}))});
    if !failover.is_null() {
        db["failover"] = failover;
    }
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 400}}, "target": "db",
                                "classes": {"read": 0.9, "write": 0.1},
                                "keys": {"uniform": {"keys": 100}}}},
        "components": {"db": db},
        "faults": [{"target": "db", "instance": 0, "crash": {}, "at": "5s", "for": "10s"}]
    })
}

#[test]
fn without_failover_writes_fail_until_the_primary_is_back() {
    let r = run(&primary_crash("100ms", Value::Null, None));
    let w = &r.workloads["users"];
    // 40 writes a second for 10 s.
    assert!((320..=480).contains(&w.failed), "{:?}", w.errors);
    assert_eq!(w.classes["read"].failed, 0);
    assert!(
        !r.components["db"].total.contains_key("failovers"),
        "no failover metrics without failover"
    );
}

#[test]
fn a_replica_is_promoted_after_the_delay_and_takes_the_writes() {
    let r = run(&primary_crash("100ms", json!({"delay": "2s"}), None));
    let w = &r.workloads["users"];
    // Writes fail for the 2 s delay only: about 80, not 400.
    assert!((50..=115).contains(&w.failed), "{:?}", w.errors);
    assert_eq!(w.errors["unavailable"], w.failed);
    assert_eq!(w.classes["read"].failed, 0);
    assert_eq!(total(&r, "db", "failovers"), 1.0);
    // The promoted replica is the primary at the end; the old one came back a replica.
    assert_eq!(instance(&r, "db", 0, "primary"), 0.0);
    assert_eq!(total(&r, "db", "primary"), 1.0);
    let new = if instance(&r, "db", 1, "primary") == 1.0 {
        1
    } else {
        2
    };
    // It took the writes from 7 s on: 13 s of 20 at 40 a second.
    let writes = instance(&r, "db", new, "writes");
    assert!((420.0..620.0).contains(&writes), "{writes}");
    // The old primary wrote nothing after it came back: its 5 s before the crash only.
    let old = instance(&r, "db", 0, "writes");
    assert!((150.0..250.0).contains(&old), "{old}");
    // And it serves reads again as a replica (of the last 5 s, half of 90%).
    assert!(instance(&r, "db", 0, "reads") > 500.0);
    assert!(r.conservation.holds);
}

#[test]
fn the_writes_the_new_primary_lacked_are_lost_and_counted() {
    // A long lag leaves more acknowledged writes behind on the replicas.
    let short = run(&primary_crash("20ms", json!({"delay": "1s"}), None));
    let long = run(&primary_crash("1s", json!({"delay": "1s"}), None));
    let (s, l) = (
        total(&short, "db", "lost_writes"),
        total(&long, "db", "lost_writes"),
    );
    // 40 writes a second: about 40 × lag in flight, the best of two replicas fewer.
    assert!((5.0..=40.0).contains(&l), "long lag lost {l}");
    assert!(s < l, "short lag lost {s}, long {l}");
    // Synchronous replication to both replicas loses none.
    let sync = json!({"sync": {"lag": {"exponential": {"mean": "100ms"}}}});
    let r = run(&primary_crash("", json!({"delay": "1s"}), Some(sync)));
    assert_eq!(total(&r, "db", "failovers"), 1.0);
    assert_eq!(total(&r, "db", "lost_writes"), 0.0);
}

#[test]
fn a_failover_repeats_byte_for_byte() {
    let m = primary_crash("500ms", json!({"delay": "1s"}), None);
    let (a, b) = (run(&m), run(&m));
    assert_eq!(
        serde_json::to_string(&a.components).unwrap(),
        serde_json::to_string(&b.components).unwrap()
    );
    assert_eq!(total(&a, "db", "failovers"), 1.0);
}

#[test]
fn a_primary_back_before_the_delay_keeps_its_role() {
    let r = run(&primary_crash("100ms", json!({"delay": "30s"}), None));
    assert_eq!(total(&r, "db", "failovers"), 0.0);
    assert_eq!(instance(&r, "db", 0, "primary"), 1.0);
    let w = &r.workloads["users"];
    assert!((320..=480).contains(&w.failed), "{:?}", w.errors);
}

#[test]
fn with_every_replica_down_the_first_back_is_promoted() {
    // Replicas down from 1 s to 9 s, the primary from 5 s to 15 s, delay 1 s: at 6 s no
    // replica is up; replica 0 and 1 come back at 9 s and one is promoted at once.
    let mut m = primary_crash("10ms", json!({"delay": "1s"}), None);
    m["faults"] = json!([
        {"target": "db", "instance": 0, "crash": {}, "at": "5s", "for": "10s"},
        {"target": "db", "instance": 1, "crash": {}, "at": "1s", "for": "8s"},
        {"target": "db", "instance": 2, "crash": {}, "at": "1s", "for": "8s"}
    ]);
    let r = run(&m);
    assert_eq!(total(&r, "db", "failovers"), 1.0);
    let w = &r.workloads["users"];
    // From 5 s to 9 s no copy is up: everything fails, about 1600; writes go on from 9 s.
    assert!((1450..=1750).contains(&w.failed), "{:?}", w.errors);
    assert!(instance(&r, "db", 1, "writes") + instance(&r, "db", 2, "writes") > 300.0);
    assert!(r.conservation.holds);
}

#[test]
fn a_promoted_primary_can_fail_over_again() {
    let mut m = primary_crash("10ms", json!({"delay": "500ms"}), None);
    // The first primary down 3 s to 6 s, every instance down once more from 10 s, one
    // at a time: the primary then is a promoted replica.
    m["faults"] = json!([
        {"target": "db", "instance": 0, "crash": {}, "at": "3s", "for": "3s"},
        {"target": "db", "instance": 1, "crash": {}, "at": "10s", "for": "3s"},
        {"target": "db", "instance": 2, "crash": {}, "at": "10s", "for": "3s"}
    ]);
    let r = run(&m);
    // 3 s: replica 0 or 1 promoted; 10 s: both crash, the primary among them; at 10.5 s
    // the old primary (instance 0) is the only live copy and takes the role back.
    assert_eq!(total(&r, "db", "failovers"), 2.0);
    assert_eq!(instance(&r, "db", 0, "primary"), 1.0);
    assert!(r.conservation.holds);
}

#[test]
fn a_write_needing_copies_that_are_down_fails_as_unavailable() {
    // Quorum w = 3 of 3: with one copy down no write can be acknowledged; reads with
    // r = 1 go on.
    let m = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 400}}, "target": "db",
                                "classes": {"read": 0.9, "write": 0.1},
                                "keys": {"uniform": {"keys": 100}}}},
        "components": {"db": {"kind": "database", "workers": 4,
                              "service_time": {"constant": "1ms"},
                              "quorum": {"n": 3, "r": 1, "w": 3},
                              "replication": {"async": {"lag": {"constant": "5ms"}}}}},
        "faults": [{"target": "db", "instance": 2, "crash": {}, "at": "2s", "for": "5s"}]
    });
    let r = run(&m);
    let w = &r.workloads["users"];
    assert!((150..=250).contains(&w.failed), "{:?}", w.errors);
    assert_eq!(w.classes["read"].failed, 0);
    assert_eq!(w.errors["unavailable"], w.failed);
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

fn refused_db(db: Value) -> Vec<(String, String)> {
    let m = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 10}}, "target": "db"}},
        "components": {"db": db}
    });
    parse(&m)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn assert_db_refused(db: Value, path: &str, words: &str) {
    let errs = refused_db(db);
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(words)),
        "{errs:?}"
    );
}

#[test]
fn failover_is_refused_where_it_cannot_apply() {
    assert_db_refused(
        json!({"kind": "database", "service_time": {"constant": "1ms"},
               "failover": {"delay": "1s"}}),
        "components.db.failover",
        "needs a replica to promote",
    );
    assert_db_refused(
        json!({"kind": "database", "service_time": {"constant": "1ms"},
               "quorum": {"n": 3, "r": 2, "w": 2}, "failover": {"delay": "1s"}}),
        "components.db.failover",
        "quorum copies have no primary",
    );
    let errs = refused_db(json!({"kind": "database", "replicas": 1,
                                 "service_time": {"constant": "1ms"},
                                 "failover": {"delay": "-5s"}}));
    assert!(
        errs.iter()
            .any(|(p, m)| p.contains("components.db") && m.contains("must not be negative")),
        "{errs:?}"
    );
    let errs = refused_db(json!({"kind": "database", "replicas": 1,
                                 "service_time": {"constant": "1ms"}, "failover": {}}));
    assert!(
        errs.iter()
            .any(|(p, m)| p == "components.db.failover.delay" && m.contains("missing")),
        "a delay is required: {errs:?}"
    );
    let errs = refused_db(json!({"kind": "database", "replicas": 1,
                                 "service_time": {"constant": "1ms"},
                                 "failover": {"delay": "1s", "promote": "first"}}));
    assert!(errs.iter().any(|(_, m)| m.contains("promote")), "{errs:?}");
    // A zero delay promotes at once.
    let ok = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 10}}, "target": "db"}},
        "components": {"db": {"kind": "database", "replicas": 1,
                              "service_time": {"constant": "1ms"},
                              "failover": {"delay": "0s"}}}
    });
    assert!(parse(&ok).is_ok());
}

#[test]
fn the_command_line_refuses_a_bad_failover_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let model = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 10}}, "target": "db"}},
        "components": {"db": {"kind": "database", "service_time": {"constant": "1ms"},
                              "failover": {"delay": "1s"}}}
    });
    std::fs::write(&file, model.to_string()).unwrap();
    let out = scalesim().arg("run").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("components.db.failover"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

// ---------------------------------------------------------------------------------------
// Shard node failure
// ---------------------------------------------------------------------------------------

/// 1000 requests a second over 10,000 uniform keys through a router (`strategy`) to 4
/// services (s0..s3) for 10 s; s1 down from 3 s to 7 s.
fn shard_crash(strategy: Value) -> Value {
    let service = json!({"kind": "service", "workers": 8,
                         "service_time": {"exponential": {"mean": "1ms"}}});
    json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 1000}}, "target": "router",
                                "keys": {"uniform": {"keys": 10000}}}},
        "components": {
            "router": {"kind": "shards", "shards": ["s0", "s1", "s2", "s3"], "strategy": strategy},
            "s0": service, "s1": service, "s2": service, "s3": service
        },
        "faults": [{"target": "s1", "crash": {}, "at": "3s", "for": "4s"}]
    })
}

fn router_list(r: &RunResult, metric: &str) -> Vec<f64> {
    r.components["router"].detail.distributions[metric].clone()
}

#[test]
fn a_dead_shards_keys_go_to_the_next_node_on_the_ring() {
    let r = run(&shard_crash(json!({"consistent": {"vnodes": 1}})));
    let w = &r.workloads["users"];
    // Only the calls s1 held when it crashed fail; then the router sends its keys on.
    assert!(w.failed <= 10, "{:?}", w.errors);
    assert_eq!(w.errors["refused"], 0);
    assert_eq!(total(&r, "router", "shard_failures"), 1.0);
    let before = router_list(&r, "shard_requests_before");
    let during = router_list(&r, "shard_requests_during");
    let after = router_list(&r, "shard_requests_after");
    assert_eq!(during[1], 0.0, "{during:?}");
    assert!(before[1] > 0.0 && after[1] > 0.0, "{before:?} {after:?}");
    // One shard took every key of s1: its rate grew by s1's, the others' stayed.
    let rate = |v: &[f64], i: usize, secs: f64| v[i] / secs;
    let grew: Vec<usize> = (0..4)
        .filter(|i| *i != 1 && rate(&during, *i, 4.0) > rate(&before, *i, 3.0) * 1.2)
        .collect();
    assert_eq!(grew.len(), 1, "{before:?} {during:?}");
    let g = grew[0];
    let expected = rate(&before, g, 3.0) + rate(&before, 1, 3.0);
    let got = rate(&during, g, 4.0);
    assert!(
        (got / expected - 1.0).abs() < 0.1,
        "{got} against {expected}"
    );
    // The crash and the recovery moved only s1's keys (about its share of those touched).
    let moved = router_list(&r, "moved_keys_by_failure");
    assert_eq!(moved.len(), 2);
    assert!(
        total(&r, "router", "hot_spot_index_during") > total(&r, "router", "hot_spot_index_before")
    );
    assert!(r.conservation.holds);
}

#[test]
fn virtual_nodes_spread_a_dead_shards_keys_and_hash_mod_moves_almost_all() {
    let ring = run(&shard_crash(json!({"consistent": {"vnodes": 1}})));
    let vnodes = run(&shard_crash(json!({"consistent": {"vnodes": 200}})));
    let modn = run(&shard_crash(json!("hash_mod")));
    let during = |r: &RunResult| total(r, "router", "hot_spot_index_during");
    // 200 points a shard: each live shard takes about a third of s1's keys, the busiest
    // near 4/3 of the mean; hash mod N rehashes evenly over the three.
    assert!(
        (1.25..1.45).contains(&during(&vnodes)),
        "{}",
        during(&vnodes)
    );
    assert!((1.25..1.45).contains(&during(&modn)), "{}", during(&modn));
    assert!(during(&ring) > during(&vnodes) + 0.2, "{}", during(&ring));
    let spread = router_list(&vnodes, "shard_requests_during");
    let before = router_list(&vnodes, "shard_requests_before");
    for i in [0, 2, 3] {
        assert!(
            spread[i] / 4.0 > before[i] / 3.0 * 1.2,
            "{before:?} {spread:?}"
        );
    }
    // Keys moved at the crash: a ring moves only s1's (about a quarter of those touched),
    // hash mod N about three quarters.
    let moved = |r: &RunResult| router_list(r, "moved_keys_by_failure")[0];
    let touched_by_3s = 10000.0 * (1.0 - (-0.3f64).exp());
    let share = |r: &RunResult| moved(r) / touched_by_3s;
    assert!((0.18..0.32).contains(&share(&vnodes)), "{}", share(&vnodes));
    assert!((0.65..0.85).contains(&share(&modn)), "{}", share(&modn));
}

#[test]
fn a_dead_shards_range_is_unavailable_until_it_is_back() {
    let ranges = json!({"ranges": [
        {"shard": "s0", "from": 0, "to": 2500}, {"shard": "s1", "from": 2500, "to": 5000},
        {"shard": "s2", "from": 5000, "to": 7500}, {"shard": "s3", "from": 7500}]});
    let r = run(&shard_crash(ranges));
    let w = &r.workloads["users"];
    // A quarter of 1000 a second for 4 s.
    assert!(
        (850..=1150).contains(&w.errors["unavailable"]),
        "{:?}",
        w.errors
    );
    assert_eq!(router_list(&r, "moved_keys_by_failure"), [0.0, 0.0]);
}

#[test]
fn a_cache_shards_crash_sends_its_keys_to_the_others() {
    // Caches as shards, reading through to one database: a crashed cache leaves the
    // ring, its keys miss at their new cache (moved_first_requests) and nothing fails.
    let cache = json!({"kind": "cache", "capacity": 10000, "hit_time": {"constant": "100us"},
                       "on_miss": "db"});
    let m = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 1000}}, "target": "router",
                                "keys": {"uniform": {"keys": 2000}}}},
        "components": {
            "router": {"kind": "shards", "shards": ["c0", "c1", "c2"],
                       "strategy": {"consistent": {"vnodes": 100}}},
            "c0": cache, "c1": cache, "c2": cache,
            "db": {"kind": "service", "workers": 16,
                   "service_time": {"exponential": {"mean": "2ms"}}}
        },
        "faults": [{"target": "c1", "crash": {}, "at": "4s", "for": "3s"}]
    });
    let r = run(&m);
    let w = &r.workloads["users"];
    assert!(w.failed <= 5, "{:?}", w.errors);
    assert_eq!(w.errors["refused"], 0);
    assert!(total(&r, "router", "moved_first_requests") > 500.0);
    assert_eq!(total(&r, "router", "shard_failures"), 1.0);
}

#[test]
fn a_router_in_a_model_without_faults_reports_as_before() {
    let mut m = shard_crash(json!({"consistent": {"vnodes": 1}}));
    m.as_object_mut().unwrap().remove("faults");
    let r = run(&m);
    assert!(!r.components["router"].total.contains_key("shard_failures"));
    assert!(
        !r.components["router"]
            .detail
            .distributions
            .contains_key("shard_requests_during")
    );
}

fn shipped(name: &str) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let m = scalesim::model::load_model_file(&path, &[]).unwrap();
    replicate(&m, m.seed, 1).unwrap().remove(0)
}

#[test]
fn shard_failure_hot_spot_virtual_nodes_spread_the_dead_nodes_keys() {
    let r = shipped("shard-failure-hot-spot.json");
    let hot = |c: &str, phase: &str| total(&r, c, &format!("hot_spot_index_{phase}"));
    // Without virtual nodes the next node on the ring takes all of r2's keys.
    assert!(hot("ring", "during") > 2.2, "{}", hot("ring", "during"));
    assert!(hot("ring", "before") < 1.4 && hot("ring", "after") < 1.4);
    // With 200 points a shard they spread over the other three: near 4/3.
    assert!(
        (1.3..1.55).contains(&hot("vnodes", "during")),
        "{}",
        hot("vnodes", "during")
    );
    assert!(hot("vnodes", "before") < 1.1 && hot("vnodes", "after") < 1.1);
    // The overloaded neighbour times out requests; the spread design loses none.
    let ring = r.workloads["ring_users"].error_share;
    let vnodes = r.workloads["vnode_users"].error_share;
    assert!(ring > 0.1, "{ring}");
    assert!(vnodes < 0.001, "{vnodes}");
    for c in ["ring", "vnodes"] {
        assert_eq!(
            r.components[c].detail.distributions["shard_requests_during"][2],
            0.0
        );
    }
}

#[test]
fn primary_failover_a_promoted_replica_takes_the_writes_and_loses_a_few() {
    let r = shipped("primary-failover.json");
    let manual = &r.workloads["manual_users"];
    let auto = &r.workloads["auto_users"];
    // Without failover writes fail for the whole 30 s outage; with it for the 5 s delay.
    let (m, a) = (
        manual.classes["write"].failed as f64,
        auto.classes["write"].failed as f64,
    );
    assert!(m > 4.0 * a && a > 0.0, "manual {m}, auto {a}");
    assert_eq!(manual.classes["read"].failed, 0);
    assert_eq!(auto.classes["read"].failed, 0);
    assert_eq!(total(&r, "auto_db", "failovers"), 1.0);
    let lost = total(&r, "auto_db", "lost_writes");
    assert!((1.0..=40.0).contains(&lost), "{lost}");
    assert_eq!(instance(&r, "auto_db", 0, "primary"), 0.0);
    // Back as a replica without the writes it missed: many of its reads are stale.
    assert!(instance(&r, "auto_db", 0, "stale_share") > 0.1);
    assert!(!r.components["manual_db"].total.contains_key("failovers"));
}
