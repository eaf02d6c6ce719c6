//! Sessions and statelessness (issue 11 point 8): a service keeping sessions in memory
//! loses them in a crash and behind a balancer that is not sticky; a stateless service
//! with a session store loses none, at the cost of its call; `sessions` refused with the
//! path of the bad field.

use crate::support::scalesim;
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn run(v: &Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    replicate(&m, 1, 1).unwrap().remove(0)
}

fn total(r: &RunResult, component: &str, metric: &str) -> f64 {
    r.components[component].total[metric]
}

/// 200 clients sending 200 requests/s through a `policy` balancer to 4 app instances
/// keeping sessions in memory, for 20 s; `faults` as given.
fn sticky(policy: &str, faults: Value) -> Value {
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 200}}, "clients": 200,
                                "target": "lb", "timeout": "1s"}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": policy, "backends": "app"},
            "app": {"kind": "service", "replicas": 4, "workers": 4,
                    "service_time": {"exponential": {"mean": "2ms"}},
                    "sessions": {}}
        },
        "faults": faults
    })
}

#[test]
fn behind_a_sticky_balancer_every_returning_client_finds_its_session() {
    let r = run(&sticky("hash_client", json!([])));
    // Each of the 200 clients starts one session, then always comes back to it.
    assert_eq!(total(&r, "app", "sessions_started"), 200.0);
    assert_eq!(total(&r, "app", "sessions_lost"), 0.0);
    let requests = r.workloads["users"].arrived as f64;
    assert_eq!(total(&r, "app", "sessions_resumed"), requests - 200.0);
}

#[test]
fn behind_a_random_balancer_three_requests_in_four_lose_their_session() {
    let r = run(&sticky("random", json!([])));
    let share = total(&r, "app", "session_lost_share");
    assert!((0.7..0.8).contains(&share), "{share}");
}

#[test]
fn a_crash_loses_the_sessions_its_instance_held() {
    let r = run(&sticky(
        "hash_client",
        json!([{"target": "app", "instance": 2, "crash": {}, "at": "5s", "for": "2s"}]),
    ));
    // The crashed instance held about a quarter of the 200 sessions; each of those clients
    // loses it once, on its first request after the instance is back.
    let lost = r.components["app"].instances[2].metrics["sessions_lost"];
    assert!((30.0..75.0).contains(&lost), "{lost}");
    for i in [0, 1, 3] {
        assert_eq!(
            r.components["app"].instances[i].metrics["sessions_lost"],
            0.0
        );
    }
}

#[test]
fn a_session_idle_past_its_timeout_expires_instead() {
    let mut m = sticky(
        "hash_client",
        json!([{"target": "app", "instance": 2, "crash": {}, "at": "5s", "for": "2s"}]),
    );
    // Clients come back every second on average: a 100 ms idle timeout lets nearly every
    // session expire before its next request, so almost nothing counts as lost.
    m["components"]["app"]["sessions"] = json!({"idle_timeout": "100ms"});
    let r = run(&m);
    assert!(total(&r, "app", "sessions_lost") < 10.0);
    assert!(total(&r, "app", "sessions_started") > 3000.0);
}

#[test]
fn a_stateless_service_reports_no_sessions() {
    let mut m = sticky("round_robin", json!([]));
    m["components"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("sessions");
    let r = run(&m);
    assert!(!r.components["app"].total.contains_key("sessions_lost"));
}

#[test]
fn sessions_sticky_vs_store_the_store_loses_nothing_and_costs_a_call() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sessions-sticky-vs-store.json");
    let m = scalesim::model::load_model_file(&path, &[]).unwrap();
    let r = replicate(&m, m.seed, 1).unwrap().remove(0);
    // A quarter of the 2,000 clients lived on the crashed instance.
    let lost = total(&r, "sticky_app", "sessions_lost");
    assert!((400.0..600.0).contains(&lost), "{lost}");
    assert!(
        !r.components["store_app"]
            .total
            .contains_key("sessions_lost")
    );
    // The store's call adds its 0.5 ms to every request.
    let p50 = |w: &str| r.workloads[w].latency.p50_ms;
    assert!(p50("store_users") > p50("sticky_users") + 0.3);
    // The knob: a balancer that is not sticky in front of in-memory sessions loses most.
    let rr = scalesim::model::load_model_file(
        &path,
        &["components.sticky_lb.policy=random".to_string()],
    )
    .unwrap();
    let r = replicate(&rr, rr.seed, 1).unwrap().remove(0);
    let share = total(&r, "sticky_app", "session_lost_share");
    assert!(share > 0.7, "{share}");
}

#[test]
fn a_zero_idle_timeout_is_refused_with_its_path() {
    let mut m = sticky("hash_client", json!([]));
    m["components"]["app"]["sessions"] = json!({"idle_timeout": "0s"});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("components.app.sessions.idle_timeout"),
        "{err}"
    );
    m["components"]["app"]["sessions"] = json!({"idle": "1m"});
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
