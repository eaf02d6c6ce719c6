//! Health checks and outlier ejection on load balancers (issue 11 points 4 and 9): a
//! crashed instance keeps receiving traffic until it is detected and receives none after,
//! within interval × threshold (+ timeout for a black hole); it comes back within
//! interval × healthy threshold of its recovery; outlier ejection takes out an instance
//! that fails every request; the time to detect is reported; bad fields are refused at
//! their path with status 2.

use crate::support::{scalesim, stdout_ok};
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn parse(v: &Value) -> Result<scalesim::model::Model, Vec<scalesim::error::ModelError>> {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
}

fn run(v: &Value) -> RunResult {
    let m = parse(v).unwrap();
    replicate(&m, 1, 1).unwrap().remove(0)
}

fn errors(r: &RunResult, cause: &str) -> u64 {
    r.workloads["users"].errors[cause]
}

fn lb(r: &RunResult, metric: &str) -> f64 {
    r.components["lb"].total[metric]
}

/// 400 requests a second (a 1 s client timeout) through a round-robin balancer to four app
/// instances for 40 s, windows of 100 ms; the balancer's `extra` fields and `faults`.
fn four_apps(extra: Value, faults: Value) -> Value {
    let mut lb = json!({"kind": "load_balancer", "policy": "round_robin", "backends": "app"});
    for (k, v) in extra.as_object().unwrap() {
        lb[k] = v.clone();
    }
    json!({
        "duration": "40s",
        "series_window": "100ms",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 400}}, "target": "lb",
                                "timeout": "1s"}},
        "components": {
            "lb": lb,
            "app": {"kind": "service", "replicas": 4, "workers": 4,
                    "service_time": {"exponential": {"mean": "2ms"}}}
        },
        "faults": faults
    })
}

/// Probes every second, a 500 ms timeout, out after 2 failures, back after 3 passes.
fn probes() -> Value {
    json!({"health_check": {"interval": "1s", "timeout": "500ms",
                            "unhealthy_threshold": 2, "healthy_threshold": 3}})
}

/// app[1] crashes in `mode` at 10.3 s for 20 s.
fn crash(mode: &str) -> Value {
    json!([{"target": "app", "instance": 1, "crash": {"mode": mode}, "at": "10.3s", "for": "20s"}])
}

/// The time of the last window of the series with a failure, seconds (window end).
fn last_failure_s(r: &RunResult) -> f64 {
    let s = &r.series["users"];
    let last = s.failed.iter().rposition(|f| *f > 0).unwrap();
    (last + 1) as f64 * s.window_s
}

#[test]
fn without_health_checks_a_crashed_instance_keeps_receiving_traffic() {
    let r = run(&four_apps(json!({}), crash("refused")));
    // A quarter of 400/s for 20 s meet the closed port: about 2,000.
    let refused = errors(&r, "refused");
    assert!((1800..=2200).contains(&refused), "{refused}");
    // ...to the end of the crash.
    assert!((29.9..=30.4).contains(&last_failure_s(&r)));
    // A balancer without health checks reports what it always did.
    assert!(!r.components["lb"].total.contains_key("detections"));
}

#[test]
fn health_checks_stop_traffic_to_a_refusing_instance_within_interval_times_threshold() {
    let r = run(&four_apps(probes(), crash("refused")));
    // Probes at 11 s and 12 s fail: out at 12 s, 1.7 s after the crash (at most 1 s × 2).
    assert_eq!(lb(&r, "detections"), 1.0);
    assert_eq!(lb(&r, "marked_unhealthy"), 1.0);
    let ttd = lb(&r, "time_to_detect_max_ms");
    assert!((ttd - 1700.0).abs() < 1e-6, "{ttd}");
    assert_eq!(lb(&r, "time_to_detect_mean_ms"), ttd);
    // No failure after that: the crashed instance gets no more calls.
    let last = last_failure_s(&r);
    assert!((10.3..=12.0).contains(&last), "last failure at {last}s");
    // Every call sent to it while crashed was refused, and only those: a quarter of
    // 400/s over 1.7 s, about 170.
    let refused = errors(&r, "refused");
    assert_eq!(lb(&r, "sent_to_crashed"), refused as f64);
    assert!((110..=240).contains(&refused), "{refused}");
    // Back after 3 passed probes, at 32 s (recovered at 30.3 s: probes at 31, 32, 33 s).
    assert_eq!(lb(&r, "marked_healthy"), 1.0);
    let arrived = |i: usize| r.components["app"].instances[i].metrics["arrived"];
    // Calls reached app[1] for 10.3 s before the crash and from 33 s to 40 s (the calls
    // refused while it was down never arrived): a quarter of 400/s for 17.3 s.
    let expected = 100.0 * (10.3 + 7.0);
    assert!(
        (arrived(1) - expected).abs() < 0.1 * expected,
        "{} against {expected}",
        arrived(1)
    );
    assert!(r.conservation.holds);
}

#[test]
fn a_black_hole_is_detected_after_the_probe_timeout_too() {
    let r = run(&four_apps(probes(), crash("black_hole")));
    // Probes at 11 s and 12 s time out at 11.5 s and 12.5 s: 2.2 s after the crash,
    // within interval × threshold + timeout (2.5 s).
    assert_eq!(lb(&r, "detections"), 1.0);
    let ttd = lb(&r, "time_to_detect_max_ms");
    assert!((ttd - 2200.0).abs() < 1e-6, "{ttd}");
    // The calls sent to it until then time out, 1 s later; then nothing fails.
    let timeouts = errors(&r, "timeout");
    assert_eq!(lb(&r, "sent_to_crashed"), timeouts as f64);
    assert!((150..=300).contains(&timeouts), "{timeouts}");
    let last = last_failure_s(&r);
    assert!((11.3..=13.5).contains(&last), "last failure at {last}s");
    // Without health checks it swallows a quarter of the traffic for 20 s.
    let without = run(&four_apps(json!({}), crash("black_hole")));
    assert!(errors(&without, "timeout") > 8 * timeouts);
}

#[test]
fn the_detection_time_grows_with_interval_and_threshold() {
    let ttd = |interval: &str, threshold: u32| {
        let hc = json!({"health_check": {"interval": interval, "unhealthy_threshold": threshold}});
        let r = run(&four_apps(hc, crash("refused")));
        lb(&r, "time_to_detect_max_ms")
    };
    // Crash at 10.3 s: the first failing probe at the next multiple of the interval.
    assert!((ttd("1s", 1) - 700.0).abs() < 1e-6);
    assert!((ttd("1s", 3) - 2700.0).abs() < 1e-6);
    assert!((ttd("5s", 2) - 9700.0).abs() < 1e-6);
}

#[test]
fn probes_change_nothing_while_every_backend_is_up() {
    let plain = run(&four_apps(json!({}), json!([])));
    let probed = run(&four_apps(probes(), json!([])));
    assert_eq!(
        serde_json::to_string(&plain.workloads).unwrap(),
        serde_json::to_string(&probed.workloads).unwrap()
    );
    assert_eq!(lb(&probed, "marked_unhealthy"), 0.0);
    assert_eq!(lb(&probed, "detections"), 0.0);
    // Only the probe ticks are extra events: one a second.
    assert!(probed.events > plain.events && probed.events <= plain.events + 41);
}

#[test]
fn with_every_backend_down_the_balancer_fails_open() {
    let all = json!([{"target": "app", "crash": {}, "at": "10.3s", "for": "5s"}]);
    let r = run(&four_apps(probes(), all));
    assert_eq!(lb(&r, "marked_unhealthy"), 4.0);
    assert_eq!(lb(&r, "detections"), 4.0);
    // It keeps sending (refused) rather than failing as unavailable, and serves again
    // once they are back.
    assert_eq!(errors(&r, "unavailable"), 0);
    let refused = errors(&r, "refused");
    assert!((1800..=2200).contains(&refused), "{refused}");
    assert_eq!(lb(&r, "marked_healthy"), 4.0);
}

/// Envoy-like outlier ejection: out after 5 failed replies in a row, for 5 s.
fn ejection(max_share: f64) -> Value {
    json!({"outlier_ejection": {"consecutive_failures": 5, "ejection_time": "5s",
                                "max_ejected_share": max_share}})
}

#[test]
fn outlier_ejection_takes_out_an_instance_that_fails_every_request() {
    let failing = json!([{"target": "app", "instance": 1, "errors": {"share": 1}, "at": "10s", "for": "20s"}]);
    let without = run(&four_apps(json!({}), failing.clone()));
    let with = run(&four_apps(ejection(0.5), failing));
    let injected = errors(&without, "injected");
    assert!((1800..=2200).contains(&injected), "{injected}");
    // Ejected after 5 failures, back 5 s later, ejected again after 5 more: 4 times in
    // 20 s, 5 failures each.
    let ejections = lb(&with, "ejections");
    assert_eq!(ejections, 4.0);
    assert_eq!(errors(&with, "injected"), 20);
    assert!(with.workloads["users"].error_share < without.workloads["users"].error_share / 50.0);
    // No crash: nothing detected.
    assert_eq!(lb(&with, "detections"), 0.0);
}

#[test]
fn outlier_ejection_also_finds_a_crash_within_a_few_calls() {
    let r = run(&four_apps(ejection(0.5), crash("refused")));
    assert_eq!(lb(&r, "detections"), 1.0);
    // Five calls, every fourth one to it at 400/s: about 50 ms.
    let ttd = lb(&r, "time_to_detect_max_ms");
    assert!((10.0..150.0).contains(&ttd), "{ttd}");
    // It is ejected again each time it comes back while crashed (4 times), five calls each.
    assert_eq!(lb(&r, "ejections"), 4.0);
    assert_eq!(errors(&r, "refused"), 20);
}

#[test]
fn max_ejected_share_bounds_the_instances_out_at_once() {
    let two_failing = json!([
        {"target": "app", "instance": 1, "errors": {"share": 1}, "at": "10s", "for": "20s"},
        {"target": "app", "instance": 2, "errors": {"share": 1}, "at": "10s", "for": "20s"}
    ]);
    let half = run(&four_apps(ejection(0.5), two_failing.clone()));
    let quarter = run(&four_apps(ejection(0.25), two_failing.clone()));
    let none = run(&four_apps(ejection(0.0), two_failing));
    assert_eq!(lb(&none, "ejections"), 0.0);
    // With half: both out together. With a quarter: one at a time, the other failing.
    assert!(
        errors(&half, "injected") < 100,
        "{}",
        errors(&half, "injected")
    );
    assert!(errors(&quarter, "injected") > 5 * errors(&half, "injected"));
    assert!(errors(&none, "injected") > errors(&quarter, "injected"));
}

#[test]
fn health_checks_are_deterministic_over_balancer_replicas() {
    let mut m = four_apps(
        json!({"health_check": {"interval": "700ms"}, "outlier_ejection": {}}),
        crash("black_hole"),
    );
    m["components"]["lb"]["replicas"] = json!(2);
    let a = serde_json::to_string(&run(&m)).unwrap();
    let b = serde_json::to_string(&run(&m)).unwrap();
    assert_eq!(a, b);
    let r = run(&m);
    // Each balancer instance detects the crash on its own.
    assert_eq!(lb(&r, "detections"), 2.0);
}

/// `scalesim check` on `m`: exit status 2, no panic, `path` and `needle` in the message.
fn refused(lb_extra: Value, path: &str, needle: &str) {
    let m = four_apps(lb_extra, json!([]));
    crate::support::check_refuses(&m, path, needle);
}

#[test]
fn bad_health_check_fields_are_refused_at_their_path() {
    refused(
        json!({"health_check": {"interval": "0s"}}),
        "components.lb.health_check.interval",
        "longer than zero",
    );
    refused(
        json!({"health_check": {"interval": "1s", "timeout": "2s"}}),
        "components.lb.health_check.timeout",
        "at most the interval",
    );
    refused(
        json!({"health_check": {"unhealthy_threshold": 0}}),
        "components.lb.health_check.unhealthy_threshold",
        "at least 1",
    );
    refused(
        json!({"health_check": {"healthy_threshold": 0}}),
        "components.lb.health_check.healthy_threshold",
        "at least 1",
    );
    refused(
        json!({"health_check": {"interval": 5}}),
        "components.lb.health_check.interval",
        "unit",
    );
    refused(
        json!({"health_check": {"intervall": "5s"}}),
        "components.lb.health_check",
        "intervall",
    );
    refused(
        json!({"outlier_ejection": {"consecutive_failures": 0}}),
        "components.lb.outlier_ejection.consecutive_failures",
        "at least 1",
    );
    refused(
        json!({"outlier_ejection": {"ejection_time": "0ms"}}),
        "components.lb.outlier_ejection.ejection_time",
        "longer than zero",
    );
    refused(
        json!({"outlier_ejection": {"max_ejected_share": 1.5}}),
        "components.lb.outlier_ejection.max_ejected_share",
        "between 0 and 1",
    );
    refused(
        json!({"outlier_ejection": {"max_ejected_share": -0.1}}),
        "components.lb.outlier_ejection.max_ejected_share",
        "between 0 and 1",
    );
}

#[test]
fn the_health_checks_model_saves_most_of_the_lost_traffic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/health-checks.json");
    let m = scalesim::model::load_model_file(&path, &[]).unwrap();
    let r = replicate(&m, m.seed, 1).unwrap().remove(0);
    let blind = &r.workloads["blind_users"];
    let checked = &r.workloads["checked_users"];
    // Blind: a quarter of the traffic times out for 30 s of the 55 measured, about 14%.
    assert!(
        (0.11..0.17).contains(&blind.error_share),
        "{}",
        blind.error_share
    );
    // Checked: only until the detection, at most 5 s after the crash.
    assert!(checked.error_share < blind.error_share / 5.0);
    let lb = &r.components["checked_lb"].total;
    assert_eq!(lb["detections"], 1.0);
    assert!(lb["time_to_detect_max_ms"] <= 5000.0);
    assert_eq!(lb["marked_healthy"], 1.0);
    assert_eq!(lb["sent_to_crashed"], checked.errors["timeout"] as f64);
    assert!(!r.components["blind_lb"].total.contains_key("detections"));
}

#[test]
fn the_time_to_detect_is_in_the_table_and_the_csv() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/health-checks.json");
    let table =
        String::from_utf8(stdout_ok(scalesim().arg("run").arg(&model).arg("-q"))).expect("utf-8");
    let header = table
        .lines()
        .find(|l| l.contains("detect ms"))
        .unwrap_or_else(|| panic!("no 'detect ms' column:\n{table}"));
    assert!(header.contains("to crashed"), "{header}");
    let row = table
        .lines()
        .find(|l| l.contains("checked_lb") && l.contains("load_balancer"))
        .unwrap_or_else(|| panic!("no checked_lb row:\n{table}"));
    let m = scalesim::model::load_model_file(&model, &[]).unwrap();
    let r = replicate(&m, m.seed, 1).unwrap().remove(0);
    let detect = r.components["checked_lb"].total["time_to_detect_mean_ms"];
    assert!(detect > 0.0);
    assert!(
        row.contains(&format!("{detect:.0}")),
        "{row} lacks {detect}"
    );
    let csv = String::from_utf8(stdout_ok(
        scalesim()
            .arg("run")
            .arg(&model)
            .args(["-q", "--format", "csv"]),
    ))
    .expect("utf-8");
    let line = csv
        .lines()
        .find(|l| l.contains("checked_lb") && l.contains("time_to_detect_mean_ms"))
        .unwrap_or_else(|| panic!("no time_to_detect_mean_ms row for checked_lb"));
    let value: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
    assert!((value - detect).abs() < 1e-6 * detect.max(1.0), "{line}");
}

#[test]
fn probes_across_a_partition_fail_and_take_the_backends_there_out() {
    // Users and a balancer in zone a, an app instance in each of a, b, c; zone a cut off
    // from 2.3 s to 7.3 s (calls across refused).
    let m = |lb_extra: Value| {
        let mut lb = json!({"kind": "load_balancer", "backends": "app", "zones": ["a"]});
        for (k, v) in lb_extra.as_object().unwrap() {
            lb[k] = v.clone();
        }
        json!({
            "duration": "10s", "series_window": "100ms",
            "network": {"zones": ["a", "b", "c"],
                        "latency": {"zone": {"constant": "100us"}, "cross_zone": {"constant": "1ms"}}},
            "workloads": {"users": {"arrivals": {"poisson": {"rate": 300}}, "target": "lb",
                                    "zone": "a", "timeout": "500ms"}},
            "components": {
                "lb": lb,
                "app": {"kind": "service", "replicas": 3, "zones": ["a", "b", "c"], "workers": 4,
                        "service_time": {"exponential": {"mean": "2ms"}}}},
            "faults": [{"partition": {"groups": [["a"]]}, "at": "2.3s", "for": "5s"}]
        })
    };
    let without = run(&m(json!({})));
    let with = run(&m(probes()));
    // Two thirds of 300/s for 5 s cut off, against 1.7 s until the probes at 3 s and 4 s.
    let cut = errors(&without, "partitioned");
    assert!((850..1150).contains(&cut), "{cut}");
    let cut = errors(&with, "partitioned");
    assert!((250..=450).contains(&cut), "{cut}");
    assert!((2.3..=4.1).contains(&last_failure_s(&with)));
    assert_eq!(lb(&with, "marked_unhealthy"), 2.0);
    assert_eq!(lb(&with, "marked_healthy"), 2.0);
    // A partition is no crash.
    assert_eq!(lb(&with, "detections"), 0.0);
    assert_eq!(lb(&with, "sent_to_crashed"), 0.0);
}
