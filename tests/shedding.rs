//! Admission control (issue 12 point 4): a service's rate limit (token bucket per
//! instance, `rate_limited`), a workload's client-side rate limit (refused unsent), load
//! shedding by queue length and by age (`shed`), and adaptive LIFO; bad settings refused
//! at their paths.

use crate::support::check_refuses;
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

fn err(r: &RunResult, cause: &str) -> u64 {
    r.workloads["users"].errors.get(cause).copied().unwrap_or(0)
}

/// 200 requests/s evenly spaced for 10 s (2,000, the last at 9.995 s) to a fast service.
fn steady(app: Value, users_extra: Value) -> Value {
    let mut users = json!({"arrivals": {"constant": {"rate": 200}}, "target": "app"});
    if let Value::Object(m) = users_extra {
        users.as_object_mut().unwrap().extend(m);
    }
    json!({
        "duration": "10s", "warmup": "0s",
        "workloads": {"users": users},
        "components": {"app": app}
    })
}

fn fast() -> Value {
    json!({"kind": "service", "workers": 10, "service_time": {"constant": "1ms"}})
}

#[test]
fn a_service_rate_limit_refuses_what_is_over_its_rate_after_the_burst() {
    let mut app = fast();
    app["rate_limit"] = json!({"rate": 100, "burst": 10});
    let r = run(&steady(app, json!({})));
    let w = &r.workloads["users"];
    assert_eq!(w.arrived, 2000);
    // The burst of 10, then 100/s: 999 tokens earned by the last arrival.
    assert_eq!(w.completed, 1009);
    assert_eq!(err(&r, "rate_limited"), 991);
    assert_eq!(total(&r, "app", "rate_limited"), 991.0);
    assert_eq!(total(&r, "app", "completed"), 1009.0);
}

#[test]
fn a_client_rate_limit_refuses_without_sending() {
    let r = run(&steady(
        fast(),
        json!({"rate_limit": {"rate": 100, "burst": 10}}),
    ));
    let w = &r.workloads["users"];
    assert_eq!(w.arrived, 2000);
    assert_eq!(err(&r, "rate_limited"), 991);
    // The refused requests never reached the service.
    assert_eq!(total(&r, "app", "arrived"), 1009.0);
    assert_eq!(w.completed, 1009);
    // The default burst is a second of the rate.
    let r = run(&steady(fast(), json!({"rate_limit": {"rate": 100}})));
    assert_eq!(err(&r, "rate_limited"), 2000 - (100 + 999));
}

#[test]
fn rate_limits_are_per_instance() {
    let mut app = fast();
    app["rate_limit"] = json!({"rate": 50, "burst": 5});
    app["replicas"] = json!(2);
    let r = run(&steady(app, json!({})));
    // Two instances taking turns, each 100/s offered against 50/s.
    let refused = err(&r, "rate_limited");
    assert!((985..=1000).contains(&refused), "{refused}");
}

/// An M/M/1 service of capacity 1,000/s offered 1,500/s for 20 s; `policies` added to it.
fn overloaded(policies: Value, timeout: Option<&str>) -> Value {
    let mut app = json!({"kind": "service", "service_time": {"exponential": {"mean": "1ms"}}});
    if let Value::Object(m) = policies {
        app.as_object_mut().unwrap().extend(m);
    }
    let mut users = json!({"arrivals": {"poisson": {"rate": 1500}}, "target": "app"});
    if let Some(t) = timeout {
        users["timeout"] = json!(t);
    }
    json!({"duration": "20s", "workloads": {"users": users}, "components": {"app": app}})
}

#[test]
fn shedding_by_queue_length_keeps_the_latency_of_what_is_served_low() {
    let none = run(&overloaded(json!({}), None));
    let shed = run(&overloaded(json!({"shed": {"queue_length": 20}}), None));
    let p99 = |r: &RunResult| r.workloads["users"].latency.p99_ms;
    // Without: the queue grows by 500/s, the p99 is seconds.
    assert!(p99(&none) > 1000.0, "{}", p99(&none));
    // With: at most 20 wait, a wait of about 20 ms at most.
    assert!(p99(&shed) < 40.0, "{}", p99(&shed));
    // A third of the arrivals are shed, at once; the server stays busy.
    let share = err(&shed, "shed") as f64 / shed.workloads["users"].arrived as f64;
    assert!((0.3..0.37).contains(&share), "{share}");
    assert!(total(&shed, "app", "queue_max") <= 20.0);
    assert!(total(&shed, "app", "utilization") > 0.97);
    assert_eq!(total(&shed, "app", "shed"), err(&shed, "shed") as f64);
}

#[test]
fn shedding_by_age_drops_what_waited_too_long_at_dequeue() {
    let shed = run(&overloaded(json!({"shed": {"wait": "10ms"}}), None));
    let w = &shed.workloads["users"];
    // Served requests waited at most 10 ms: a response under about 10 ms + service.
    assert!(w.latency.p99_ms < 16.0, "{}", w.latency.p99_ms);
    let share = err(&shed, "shed") as f64 / w.arrived as f64;
    assert!((0.3..0.37).contains(&share), "{share}");
    // Shed at dequeue costs no work: the goodput is the capacity.
    assert!(w.goodput_per_s > 950.0, "{}", w.goodput_per_s);
}

#[test]
fn adaptive_lifo_serves_the_newest_first_under_overload() {
    // Clients give up after 50 ms; the service keeps serving what is queued.
    let fifo = run(&overloaded(json!({}), Some("50ms")));
    let lifo = run(&overloaded(
        json!({"adaptive_lifo": {"above": 10}}),
        Some("50ms"),
    ));
    let g = |r: &RunResult| r.workloads["users"].goodput_per_s;
    // FIFO: everything late; adaptive LIFO: the newest are served in time.
    assert!(g(&fifo) < 20.0, "{}", g(&fifo));
    assert!(g(&lifo) > 900.0, "{}", g(&lifo));
    assert!(lifo.workloads["users"].latency.p50_ms < 5.0);
    // Below the threshold it is FIFO: a light load is served in order as before.
    let light = |p: Value| {
        let mut v = overloaded(p, None);
        v["workloads"]["users"]["arrivals"] = json!({"poisson": {"rate": 500}});
        run(&v)
    };
    let (a, b) = (
        light(json!({})),
        light(json!({"adaptive_lifo": {"above": 1000}})),
    );
    assert_eq!(
        a.workloads["users"].latency.p99_ms,
        b.workloads["users"].latency.p99_ms
    );
}

#[test]
fn bad_admission_settings_are_refused_at_their_paths() {
    let with = |p: Value| overloaded(p, None);
    check_refuses(
        &with(json!({"rate_limit": {"rate": 0}})),
        "components.app.rate_limit.rate",
        "above 0",
    );
    check_refuses(
        &with(json!({"rate_limit": {"rate": -5, "burst": 3}})),
        "components.app.rate_limit.rate",
        "above 0",
    );
    check_refuses(
        &with(json!({"rate_limit": {"rate": 10, "burst": 0}})),
        "components.app.rate_limit.burst",
        "at least 1",
    );
    check_refuses(
        &with(json!({"shed": {}})),
        "components.app.shed",
        "queue_length",
    );
    check_refuses(
        &with(json!({"shed": {"queue_length": 0}})),
        "components.app.shed.queue_length",
        "at least 1",
    );
    check_refuses(
        &with(json!({"shed": {"wait": "0s"}})),
        "components.app.shed.wait",
        "longer than zero",
    );
    check_refuses(
        &with(json!({"adaptive_lifo": {"above": 3}, "queue": {"discipline": "lifo"}})),
        "components.app.adaptive_lifo",
        "fifo",
    );
    let mut v = with(json!({}));
    v["workloads"]["users"]["rate_limit"] = json!({"rate": 0});
    check_refuses(&v, "workloads.users.rate_limit.rate", "above 0");
}
