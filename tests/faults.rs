//! Faults (issue 11 point 1): crashes refused or black-holed, the calls a crashed instance
//! held, recovery, conservation and determinism under faults, gray failures, and the
//! model's `faults` refused with the path of the bad field.

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

fn errors(r: &RunResult, cause: &str) -> u64 {
    r.workloads["users"].errors[cause]
}

fn instance(r: &RunResult, component: &str, i: usize, metric: &str) -> f64 {
    r.components[component].instances[i].metrics[metric]
}

/// 300 requests a second, a 500 ms client timeout, through a round-robin balancer to three
/// app instances (4 workers, 5 ms each), for 10 s; `faults` as given.
fn three_apps(faults: Value) -> Value {
    json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 300}}, "target": "lb",
                                "timeout": "500ms"}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": "round_robin", "backends": "app"},
            "app": {"kind": "service", "replicas": 3, "workers": 4,
                    "service_time": {"exponential": {"mean": "5ms"}}}
        },
        "faults": faults
    })
}

/// app[1] down from 3 s to 5 s in `mode`.
fn crash_app1(mode: &str) -> Value {
    three_apps(
        json!([{"target": "app", "instance": 1, "crash": {"mode": mode},
                       "at": "3s", "for": "2s"}]),
    )
}

#[test]
fn a_refused_crash_fails_its_calls_at_once() {
    let r = run(&crash_app1("refused"));
    // A third of 2 s at 300/s: about 200 calls meet the closed port.
    let refused = errors(&r, "refused");
    assert!(
        (150..=250).contains(&refused),
        "{:?}",
        r.workloads["users"].errors
    );
    assert_eq!(errors(&r, "timeout"), 0);
    // The others answer as fast as ever: no request waited for a timeout.
    assert!(r.workloads["users"].latency.max_ms < 200.0);
    assert!(r.conservation.holds);
}

#[test]
fn a_black_hole_gives_client_timeouts_instead() {
    let r = run(&crash_app1("black_hole"));
    let timeouts = errors(&r, "timeout");
    assert!(
        (150..=250).contains(&timeouts),
        "{:?}",
        r.workloads["users"].errors
    );
    assert_eq!(errors(&r, "refused") + errors(&r, "crashed"), 0);
    assert!(r.conservation.holds);
    // The swallowed calls were freed when their clients gave up: nothing is left hanging.
    assert!(r.conservation.in_flight < 20, "{:?}", r.conservation);
    // The failures came 500 ms after the requests: the series shows them after the
    // crash window opens, none before it.
    let failed = &r.series["users"].failed;
    let window_s = r.series["users"].window_s;
    let first = failed.iter().position(|f| *f > 0).unwrap() as f64 * window_s;
    assert!(
        (3.4..3.6).contains(&first),
        "first failure in the window at {first}s"
    );
}

#[test]
fn the_calls_a_crashed_instance_held_fail_back_to_their_callers() {
    // One slow worker: a queue builds at app[1] and is lost when it crashes.
    let mut m = crash_app1("refused");
    m["components"]["app"]["workers"] = json!(1);
    m["components"]["app"]["service_time"] = json!({"constant": "9ms"});
    let r = run(&m);
    assert!(
        errors(&r, "crashed") >= 1,
        "{:?}",
        r.workloads["users"].errors
    );
    assert!(r.conservation.holds);
    assert_eq!(
        r.conservation.arrived,
        r.conservation.completed + r.conservation.failed + r.conservation.in_flight
    );
}

#[test]
fn a_recovered_instance_serves_again() {
    for mode in ["refused", "black_hole"] {
        let r = run(&crash_app1(mode));
        let done = |i| instance(&r, "app", i, "completed");
        // Down 2 s of 10: it served about 80% of what each other instance served.
        let share = done(1) / ((done(0) + done(2)) / 2.0);
        assert!((0.72..0.88).contains(&share), "{mode}: {share}");
    }
}

#[test]
fn a_whole_component_crash_hits_every_instance() {
    let r = run(&three_apps(
        json!([{"target": "app", "crash": {}, "at": "3s", "for": "1s"}]),
    ));
    // Every request of that second is refused: about 300.
    let refused = errors(&r, "refused");
    assert!((240..=360).contains(&refused), "{refused}");
    assert_eq!(r.faults.len(), 3);
    assert!(r.faults.iter().all(|w| w.start_s == 3.0 && w.end_s == 4.0));
}

#[test]
fn the_same_seed_gives_the_same_bytes_under_faults() {
    let m = three_apps(json!([
        {"target": "app", "instance": 0, "crash": {"mode": "black_hole"}, "at": "2s", "for": "1s"},
        {"target": "app", "random": {"between": {"exponential": {"mean": "2s"}},
                                     "repair": {"exponential": {"mean": "200ms"}}},
         "slow": {"factor": 3}},
        {"target": "app", "instance": 2, "errors": {"share": 0.1}, "at": "1s"}
    ]));
    let a = serde_json::to_string(&run_seed(&m, 7)).unwrap();
    let b = serde_json::to_string(&run_seed(&m, 7)).unwrap();
    assert_eq!(a, b);
    let c = serde_json::to_string(&run_seed(&m, 8)).unwrap();
    assert_ne!(a, c);
}

#[test]
fn a_model_without_faults_reports_no_fault_causes() {
    let mut m = three_apps(json!([]));
    m.as_object_mut().unwrap().remove("faults");
    let r = run(&m);
    let causes: Vec<&str> = r.workloads["users"]
        .errors
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        causes,
        ["timeout", "queue_full", "queue_timeout", "unavailable"]
    );
    assert!(r.faults.is_empty());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("faults").is_none());
}

#[test]
fn random_faults_draw_from_their_own_streams() {
    // Adding a second random fault leaves the first one's windows where they were.
    let first = json!({"name": "flaky", "target": "app", "crash": {},
                       "random": {"between": {"exponential": {"mean": "1s"}},
                                  "repair": {"constant": "100ms"}}});
    let second = json!({"target": "app", "slow": {"factor": 2},
                        "random": {"between": {"exponential": {"mean": "3s"}},
                                   "repair": {"constant": "1s"}}});
    let one = run(&three_apps(json!([first.clone()])));
    let two = run(&three_apps(json!([first, second])));
    let flaky = |r: &RunResult| -> Vec<(String, f64, f64)> {
        r.faults
            .iter()
            .filter(|w| w.name == "flaky")
            .map(|w| (w.instance.clone(), w.start_s, w.end_s))
            .collect()
    };
    assert!(flaky(&one).len() >= 10, "{:?}", flaky(&one));
    assert_eq!(flaky(&one), flaky(&two));
    assert!(two.faults.iter().any(|w| w.effect == "slow"));
    // Each repair took its constant 100 ms.
    assert!(
        flaky(&one)
            .iter()
            .all(|w| (w.2 - w.1 - 0.1).abs() < 1e-9 || w.2 == 10.0)
    );
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

/// The errors of the three-app model with `faults`, as (path, message).
fn refused(faults: Value) -> Vec<(String, String)> {
    parse(&three_apps(faults))
        .unwrap_err()
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn assert_refused(faults: Value, path: &str, needle: &str) {
    let errs = refused(faults);
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(needle)),
        "expected {path}: ...{needle}..., got {errs:?}"
    );
}

#[test]
fn a_fault_on_an_unknown_target_is_refused_with_a_suggestion() {
    assert_refused(
        json!([{"target": "ap", "crash": {}, "at": "1s"}]),
        "faults[0].target",
        "did you mean \"app\"",
    );
}

#[test]
fn a_fault_of_no_length_or_a_negative_one_is_refused() {
    assert_refused(
        json!([{"target": "app", "crash": {}, "at": "1s", "for": "0s"}]),
        "faults[0].for",
        "longer than zero",
    );
    let text = three_apps(json!([{"target": "app", "crash": {}, "at": "1s", "for": "-2s"}]));
    let errs = parse(&text).unwrap_err();
    assert!(errs[0].path.contains("faults[0].for"), "{errs:?}");
}

#[test]
fn an_instance_out_of_range_is_refused() {
    assert_refused(
        json!([{"target": "app", "instance": 3, "crash": {}, "at": "1s"}]),
        "faults[0].instance",
        "has 3 instances (0 to 2), got 3",
    );
}

#[test]
fn overlapping_crashes_of_one_instance_are_refused() {
    let faults = json!([
        {"target": "app", "instance": 1, "crash": {}, "at": "1s", "for": "2s"},
        {"target": "app", "crash": {"mode": "black_hole"}, "at": "2s", "for": "1s"}
    ]);
    assert_refused(faults, "faults[1]", "overlaps faults[0]");
    // One after the other, or a crash during a slowdown, is fine.
    let fine = json!([
        {"target": "app", "instance": 1, "crash": {}, "at": "1s", "for": "1s"},
        {"target": "app", "crash": {}, "at": "2s", "for": "1s"},
        {"target": "app", "slow": {"factor": 2}, "at": "1s", "for": "5s"}
    ]);
    assert!(parse(&three_apps(fine)).is_ok());
}

#[test]
fn a_fault_needs_one_effect_and_one_timing_with_sane_settings() {
    assert_refused(
        json!([{"target": "app", "at": "1s"}]),
        "faults[0]",
        "exactly one effect",
    );
    assert_refused(
        json!([{"target": "app", "crash": {}, "slow": {"factor": 2}, "at": "1s"}]),
        "faults[0]",
        "got crash, slow",
    );
    assert_refused(
        json!([{"target": "app", "crash": {}}]),
        "faults[0]",
        "needs \"at\"",
    );
    assert_refused(
        json!([{"target": "app", "slow": {"factor": 0}, "at": "1s"}]),
        "faults[0].slow.factor",
        "more than 0",
    );
    assert_refused(
        json!([{"target": "app", "errors": {"share": 1.5}, "at": "1s"}]),
        "faults[0].errors.share",
        "between 0 and 1",
    );
    assert_refused(
        json!([{"target": "app", "workers": {"to": 4}, "at": "1s"}]),
        "faults[0].workers.to",
        "between 1 and 3",
    );
    assert_refused(
        json!([{"target": "app", "flush": {}, "at": "1s"}]),
        "faults[0].flush",
        "flush a cache",
    );
    assert_refused(
        json!([{"target": "lb", "slow": {"factor": 2}, "at": "1s"}]),
        "faults[0].slow",
        "cannot run degraded",
    );
    assert_refused(
        json!([{"target": "app", "crash": {}, "at": "10s"}]),
        "faults[0].at",
        "before the end of the run",
    );
    assert_refused(
        json!([{"target": "app", "crash": {}, "random": {
            "between": {"constant": "0s"}, "repair": {"constant": "1s"}}}]),
        "faults[0].random.between",
        "longer than zero",
    );
    let errs = refused(json!([{"target": "app", "crash": {"mode": "sleepy"}, "at": "1s"}]));
    assert!(errs[0].0.starts_with("faults[0].crash.mode"), "{errs:?}");
}

#[test]
fn the_command_line_refuses_a_bad_fault_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let model = three_apps(json!([{"target": "nope", "crash": {}, "at": "1s"}]));
    std::fs::write(&file, model.to_string()).unwrap();
    let out = scalesim().arg("run").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("faults[0].target"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

// ---------------------------------------------------------------------------------------
// Gray failures
// ---------------------------------------------------------------------------------------

/// The share of app's requests that app[0] took, slowed 3 times all run, behind `policy`.
fn slowed_share(policy: &str) -> f64 {
    let mut m = three_apps(
        json!([{"target": "app", "instance": 0, "slow": {"factor": 3},
                                   "at": "0s"}]),
    );
    m["components"]["lb"]["policy"] = json!(policy);
    let r = run(&m);
    let arrived = |i| instance(&r, "app", i, "arrived");
    arrived(0) / (arrived(0) + arrived(1) + arrived(2))
}

#[test]
fn a_slowed_instance_gets_less_traffic_behind_least_connections_than_round_robin() {
    let rr = slowed_share("round_robin");
    let lc = slowed_share("least_connections");
    assert!((rr - 1.0 / 3.0).abs() < 0.01, "round robin: {rr}");
    assert!(
        lc < rr - 0.05,
        "least connections {lc} against round robin {rr}"
    );
}

#[test]
fn a_slowed_instance_takes_longer() {
    let r = run(&three_apps(
        json!([{"target": "app", "instance": 0, "slow": {"factor": 3},
                                    "at": "0s"}]),
    ));
    let busy = |i| instance(&r, "app", i, "utilization");
    // Each instance takes 100/s of 5 ms on 4 workers (12.5% busy); app[0] three times that.
    assert!((busy(1) - 0.125).abs() < 0.02, "{}", busy(1));
    assert!(
        (busy(0) / busy(1) - 3.0).abs() < 0.4,
        "{} {}",
        busy(0),
        busy(1)
    );
}

#[test]
fn an_error_share_fails_that_share_of_requests() {
    let r = run(&three_apps(
        json!([{"target": "app", "errors": {"share": 0.2}, "at": "0s"}]),
    ));
    let w = &r.workloads["users"];
    let share = errors(&r, "injected") as f64 / w.arrived as f64;
    // Binomial: 3000 requests, standard deviation sqrt(0.2 * 0.8 / 3000) = 0.0073; 4 of them.
    let sd = (0.2f64 * 0.8 / w.arrived as f64).sqrt();
    assert!((share - 0.2).abs() < 4.0 * sd, "{share}");
    assert_eq!(w.failed, errors(&r, "injected"));
}

#[test]
fn fewer_workers_make_requests_wait_and_more_workers_drain_the_queue() {
    // One instance at 60% of 4 workers; cut to 2 (120%) for 2 s, then back.
    let cut = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 480}}, "target": "app"}},
        "components": {"app": {"kind": "service", "workers": 4,
                               "service_time": {"exponential": {"mean": "5ms"}}}},
        "faults": [{"target": "app", "workers": {"to": 2}, "at": "4s", "for": "2s"}]
    });
    let mut normal = cut.clone();
    normal.as_object_mut().unwrap().remove("faults");
    let (a, b) = (run(&cut), run(&normal));
    let wait = |r: &RunResult| r.components["app"].total["wait_mean_ms"];
    assert!(wait(&a) > 10.0 * wait(&b), "{} {}", wait(&a), wait(&b));
    // The queue drained after the cut: every request was answered.
    assert!(a.conservation.in_flight < 20);
    // Utilization stays exact while busy workers are fewer than requests (at most 100%).
    let u = a.components["app"].total["utilization"];
    assert!((u - 0.6).abs() < 0.05, "{u}");
}

#[test]
fn fault_windows_are_in_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    let m = three_apps(
        json!([{"name": "outage", "target": "app", "instance": 1, "crash": {},
                               "at": "3s", "for": "2s"}]),
    );
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim()
        .arg("run")
        .arg(&file)
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fault,outage,app[1],window_0_start_s,3\n"),
        "{text}"
    );
    assert!(
        text.contains("fault,outage,app[1],window_0_end_s,5\n"),
        "{text}"
    );
    assert!(text.contains("workload,users,,errors_refused,"), "{text}");
}

// ---------------------------------------------------------------------------------------
// The data tier under failure
// ---------------------------------------------------------------------------------------

/// 500 reads a second over 1000 uniform keys through a warm read-through cache of 1000
/// keys in front of a database service, for 10 s; `faults` as given.
fn warm_cache(faults: Value) -> Value {
    json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 500}}, "target": "cache",
                                "keys": {"uniform": {"keys": 1000}}, "timeout": "1s"}},
        "components": {
            "cache": {"kind": "cache", "capacity": 1000, "warm": true, "on_miss": "db",
                      "hit_time": {"constant": "100us"}},
            "db": {"kind": "service", "workers": 8, "service_time": {"constant": "5ms"}}
        },
        "faults": faults
    })
}

#[test]
fn a_flushed_cache_refills_from_its_database() {
    let calm = run(&warm_cache(json!([])));
    let flushed = run(&warm_cache(
        json!([{"target": "cache", "flush": {}, "at": "5s"}]),
    ));
    let fills = |r: &RunResult| r.components["cache"].total["fills"];
    let db = |r: &RunResult| r.components["db"].total["arrived"];
    assert_eq!(fills(&calm), 0.0);
    // After the flush each key requested in the 5 s left is filled once: almost all 1000.
    assert!(
        (900.0..=1000.0).contains(&fills(&flushed)),
        "{}",
        fills(&flushed)
    );
    // Every database read is a fill (one may still be out at the end).
    assert!((0.0..=1.0).contains(&(db(&flushed) - fills(&flushed))));
    assert_eq!(flushed.faults[0].start_s, flushed.faults[0].end_s);
    assert_eq!(flushed.workloads["users"].failed, 0);
}

#[test]
fn a_crashed_cache_comes_back_cold_even_if_it_started_warm() {
    let r = run(&warm_cache(
        json!([{"target": "cache", "crash": {}, "at": "4s",
                                    "for": "1s"}]),
    ));
    // About 500 refused while down; after it every key is a miss once.
    let refused = errors(&r, "refused");
    assert!((400..=600).contains(&refused), "{refused}");
    let fills = r.components["cache"].total["fills"];
    assert!((900.0..=1000.0).contains(&fills), "{fills}");
}

#[test]
fn reads_move_to_the_other_replica_when_one_crashes() {
    // A primary and two replicas; replica 1 (instance 1) down from 2 s to 8 s of 10.
    let m = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 400}}, "target": "db",
                                "classes": {"read": 0.9, "write": 0.1},
                                "keys": {"uniform": {"keys": 100}}}},
        "components": {"db": {"kind": "database", "replicas": 2, "workers": 4,
                              "service_time": {"constant": "1ms"}}},
        "faults": [{"target": "db", "instance": 1, "crash": {}, "at": "2s", "for": "6s"}]
    });
    let r = run(&m);
    assert_eq!(
        r.workloads["users"].failed, 0,
        "{:?}",
        r.workloads["users"].errors
    );
    let reads = |i| instance(&r, "db", i, "reads");
    // Replica 1 read 4 s of 10 at half the reads, replica 2 the rest.
    let share = reads(1) / (reads(1) + reads(2));
    assert!((0.17..0.23).contains(&share), "{share}");
}

#[test]
fn a_crashed_primary_fails_writes_and_keeps_reads() {
    let m = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 400}}, "target": "db",
                                "classes": {"read": 0.9, "write": 0.1},
                                "keys": {"uniform": {"keys": 100}}}},
        "components": {"db": {"kind": "database", "replicas": 1, "workers": 4,
                              "service_time": {"constant": "1ms"}}},
        "faults": [{"target": "db", "instance": 0, "crash": {}, "at": "2s", "for": "5s"}]
    });
    let r = run(&m);
    let w = &r.workloads["users"];
    // 40 writes a second for 5 s fail (unavailable): about 200, and no read.
    assert!((150..=250).contains(&w.failed), "{:?}", w.errors);
    assert_eq!(w.classes["read"].failed, 0);
}

// ---------------------------------------------------------------------------------------
// The shipped models' lessons
// ---------------------------------------------------------------------------------------

fn shipped(name: &str) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let m = scalesim::model::load_model_file(&path, &[]).unwrap();
    replicate(&m, m.seed, 1).unwrap().remove(0)
}

#[test]
fn spof_vs_redundant_a_replica_keeps_the_reads_up() {
    let r = shipped("spof-vs-redundant.json");
    let single = &r.workloads["single_users"];
    let pair = &r.workloads["pair_users"];
    // The single database fails everything for 20 s of the 55 measured: about 36%.
    let s = single.error_share;
    assert!((0.3..0.42).contains(&s), "single {s}");
    // The pair fails only its writes then: about 10% of 36%.
    let p = pair.error_share;
    assert!((0.02..0.05).contains(&p), "pair {p}");
    assert_eq!(pair.classes["read"].failed, 0);
    assert_eq!(r.faults.len(), 2);
}

#[test]
fn gray_failure_least_connections_shields_the_p99() {
    let r = shipped("gray-failure.json");
    let rr = &r.workloads["rr_users"];
    let lc = &r.workloads["lc_users"];
    // Round robin sends the slow instance a quarter of the traffic it cannot carry.
    assert!(
        rr.latency.p99_ms > 10.0 * lc.latency.p99_ms,
        "{} {}",
        rr.latency.p99_ms,
        lc.latency.p99_ms
    );
    let share = |c: &str| {
        let a = |i| instance(&r, c, i, "arrived");
        a(0) / (a(0) + a(1) + a(2) + a(3))
    };
    assert!((share("rr_app") - 0.25).abs() < 0.01);
    assert!(share("lc_app") < 0.22, "{}", share("lc_app"));
}

/// 100 writes (10 a second) over 5 keys to a write-back cache that flushes an entry 5 s
/// after it became dirty, in front of a database service; `faults` as given.
fn write_back_cache(faults: Value) -> Value {
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"constant": {"rate": 10}}, "requests": 100,
                                "target": "cache", "classes": {"write": 1},
                                "keys": {"uniform": {"keys": 5}}}},
        "components": {
            "cache": {"kind": "cache", "capacity": 10, "on_miss": "db",
                      "write": "write_back", "flush_after": "5s"},
            "db": {"kind": "service", "service_time": {"constant": "1ms"}}},
        "faults": faults
    })
}

#[test]
fn a_write_back_cache_that_dies_before_its_flush_loses_its_dirty_writes() {
    let total = |r: &RunResult, c: &str, m: &str| r.components[c].total[m];
    // Down at 4 s: the 40 writes before it dirtied all 5 keys, none due to flush before
    // 5 s, so all 5 are lost. The writes after it comes back dirty the keys again and
    // reach the database.
    let crashed = run(&write_back_cache(
        json!([{"target": "cache", "crash": {}, "at": "4s", "for": "1s"}]),
    ));
    assert_eq!(total(&crashed, "cache", "lost_writes"), 5.0);
    assert_eq!(total(&crashed, "cache", "flush_failures"), 0.0);
    let flushes = total(&crashed, "cache", "flushes");
    assert_eq!(total(&crashed, "db", "arrived"), flushes);
    assert_eq!(total(&crashed, "cache", "dirty_at_end"), 0.0);
    // A `flush` fault discards the dirty entries the same way.
    let flushed = run(&write_back_cache(
        json!([{"target": "cache", "flush": {}, "at": "4s"}]),
    ));
    assert_eq!(total(&flushed, "cache", "lost_writes"), 5.0);
    // A crash after the last flush (writes end at 10 s, flushes by 15 s) loses nothing.
    let late = run(&write_back_cache(
        json!([{"target": "cache", "crash": {}, "at": "17s", "for": "1s"}]),
    ));
    assert_eq!(total(&late, "cache", "lost_writes"), 0.0);
    assert_eq!(
        total(&late, "db", "arrived"),
        total(&late, "cache", "flushes")
    );
    // Without a fault nothing is lost.
    let clean = run(&write_back_cache(json!([])));
    assert_eq!(total(&clean, "cache", "lost_writes"), 0.0);
}
