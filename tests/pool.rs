//! Bulkheads and connection pools (`calls_to` `bulkhead` / `pool`, issue 12 point 4): a
//! pool of one serializes the calls through it and shows the wait; an acquire timeout
//! fails the excess with `pool_timeout`; a bulkhead caps the calls out and refuses beyond
//! its queue with `bulkhead_full`; a bulkhead keeps a slow callee from taking all of a
//! caller's workers; bad blocks are refused at their path.

use crate::support::check_refuses as refused;
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

/// `app` (many workers, calls `db` once per request) in front of `db` (10 ms per call,
/// many workers), `rate` requests a second for 10 s, with `policy` on the call.
fn app_db(rate: f64, policy: Value) -> Value {
    json!({
        "duration": "10s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "app"}},
        "components": {
            "app": {"kind": "service", "workers": 1000, "service_time": {"constant": "1ms"},
                    "handler": [{"work": "service_time"}, {"call": "db"}],
                    "calls_to": {"db": policy}},
            "db": {"kind": "service", "workers": 100, "service_time": {"constant": "10ms"}}
        }
    })
}

#[test]
fn a_pool_of_one_serializes_the_calls_and_shows_the_wait() {
    // 80/s offered, one connection held 10 ms per call: 100/s at most, so all get through
    // one at a time, and calls wait for the connection.
    let r = run(&app_db(80.0, json!({"pool": {"size": 1}})));
    let w = &r.workloads["w"];
    assert_eq!(w.failed, 0);
    let p = r.edges["app->db"].pool.as_ref().expect("a pool result");
    assert_eq!(p.size, 1);
    assert_eq!(p.acquired, r.edges["app->db"].attempts);
    assert!(p.queued > p.acquired / 4, "{p:?}");
    assert!(
        p.wait_mean_ms > 5.0 && p.wait_p99_ms > p.wait_mean_ms,
        "{p:?}"
    );
    // Busy 80/s x 10 ms = 80% of the time.
    assert!((p.utilization - 0.8).abs() < 0.05, "{p:?}");
    assert_eq!(p.bulkhead_full, None);

    // 150/s offered: the throughput is 1 / 10 ms, whatever db could do.
    let r = run(&app_db(150.0, json!({"pool": {"size": 1}})));
    let db = r.components["db"].total["completed"];
    assert!((db / 10.0 - 100.0).abs() < 2.0, "db served {db} in 10 s");
    let p = r.edges["app->db"].pool.as_ref().unwrap();
    assert!(p.utilization > 0.99, "{p:?}");
    assert!(p.wait_max_ms > 1000.0, "the backlog grows: {p:?}");
    // Without the pool db serves them all (100 workers).
    let r = run(&app_db(150.0, json!({})));
    assert!(r.components["db"].total["completed"] > 1400.0);
}

#[test]
fn an_acquire_timeout_fails_the_excess_with_pool_timeout() {
    let r = run(&app_db(
        150.0,
        json!({"pool": {"size": 1, "acquire_timeout": "50ms"}}),
    ));
    let w = &r.workloads["w"];
    let e = &r.edges["app->db"];
    let p = e.pool.as_ref().unwrap();
    let timeouts = p.pool_timeout.unwrap();
    assert!(timeouts > 300, "{p:?}");
    assert_eq!(w.errors["pool_timeout"], timeouts);
    assert_eq!(w.failed, timeouts);
    assert!(p.wait_max_ms <= 50.0, "{p:?}");
    // The connection never idles while calls wait: still 100/s through it.
    let db = r.components["db"].total["completed"];
    assert!((db / 10.0 - 100.0).abs() < 3.0, "db served {db}");
    assert!(!r.workloads["w"].errors.contains_key("bulkhead_full"));
}

#[test]
fn a_bulkhead_caps_the_calls_out_and_refuses_beyond_its_queue() {
    // 400/s offered, 2 calls out at once of 10 ms: 200/s get through, the rest are
    // refused at once.
    let r = run(&app_db(
        400.0,
        json!({"bulkhead": {"max_concurrent": 2, "queue": 3}}),
    ));
    let w = &r.workloads["w"];
    let e = &r.edges["app->db"];
    let b = e.bulkhead.as_ref().expect("a bulkhead result");
    let full = b.bulkhead_full.unwrap();
    assert_eq!(w.errors["bulkhead_full"], full);
    assert_eq!(w.failed, full);
    // Every call was sent or refused, except those still waiting at the end (3 at most).
    assert!(
        e.calls >= e.attempts + full && e.calls <= e.attempts + full + 3,
        "{e:?}"
    );
    let db = r.components["db"].total["completed"];
    assert!(
        db <= 2.0 * 100.0 * 10.0 + 2.0,
        "db served {db}: more than 2 at once"
    );
    assert!(db > 1900.0, "db served {db}");
    assert!(full > 1500, "{b:?}");
    // At most 3 waiting ahead: a wait is under 2 calls' time.
    assert!(b.wait_max_ms <= 20.0 + 1e-9, "{b:?}");
    assert!(b.queued > 0 && b.utilization > 0.95, "{b:?}");
    assert_eq!(b.pool_timeout, None);

    // No queue: refused as soon as both are out.
    let r = run(&app_db(400.0, json!({"bulkhead": {"max_concurrent": 2}})));
    let b = r.edges["app->db"].bulkhead.as_ref().unwrap();
    assert_eq!(b.queued, 0);
    assert_eq!(b.wait_max_ms, 0.0);
}

/// `app` (20 workers, a queue of 20) serves two classes: `slow` calls `slow` (2 s a call),
/// `fast` calls `fast` (1 ms); `policy` on the calls to `slow`.
fn two_callees(policy: Value) -> Value {
    json!({
        "duration": "20s",
        "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "app",
                            "classes": {"slow": 0.5, "fast": 0.5}}},
        "components": {
            "app": {"kind": "service", "workers": 20, "queue": 20,
                    "service_time": {"constant": "1ms"},
                    "handler": {"slow": [{"work": "service_time"}, {"call": "slow"}],
                                "fast": [{"work": "service_time"}, {"call": "fast"}]},
                    "calls_to": {"slow": policy}},
            "slow": {"kind": "service", "workers": 1000, "service_time": {"constant": "2s"}},
            "fast": {"kind": "service", "workers": 100, "service_time": {"constant": "1ms"}}
        }
    })
}

#[test]
fn a_bulkhead_keeps_a_slow_callee_from_taking_all_the_workers() {
    // 50 slow calls a second of 2 s each want 100 of app's 20 workers: without a
    // bulkhead they hold them all and fast requests find the queue full.
    let without = run(&two_callees(json!({})));
    let with = run(&two_callees(json!({"bulkhead": {"max_concurrent": 5}})));
    let fast = |r: &RunResult| r.components["fast"].total["completed"];
    // 50 fast requests a second over the 15 s window.
    assert!(fast(&with) > 700.0, "with a bulkhead: {}", fast(&with));
    assert!(
        fast(&without) < fast(&with) / 2.0,
        "without: {}",
        fast(&without)
    );
    let w = &with.workloads["w"];
    assert!(w.errors["bulkhead_full"] > 500, "{:?}", w.errors);
    assert!(!w.errors.contains_key("queue_full") || w.errors["queue_full"] < 10);
    assert!(without.workloads["w"].errors["queue_full"] > 500);
}

#[test]
fn bad_bulkheads_and_pools_are_refused_at_their_path() {
    refused(
        &app_db(10.0, json!({"pool": {"size": 0}})),
        "components.app.calls_to.db.pool.size",
        "at least 1",
    );
    refused(
        &app_db(10.0, json!({"pool": {"size": 2, "acquire_timeout": "0s"}})),
        "components.app.calls_to.db.pool.acquire_timeout",
        "longer than zero",
    );
    refused(
        &app_db(10.0, json!({"bulkhead": {"max_concurrent": 0, "queue": 2}})),
        "components.app.calls_to.db.bulkhead.max_concurrent",
        "at least 1",
    );
    refused(
        &app_db(
            10.0,
            json!({"bulkhead": {"max_concurrent": 2, "queue": -1}}),
        ),
        "components.app.calls_to.db.bulkhead.queue",
        "",
    );
    refused(
        &app_db(10.0, json!({"pool": {"size": 1, "acquire": "1s"}})),
        "components.app.calls_to.db.pool",
        "acquire",
    );
    refused(
        &app_db(
            10.0,
            json!({"bulkhead": {"max_concurrent": 2}, "pool": {"size": 1}}),
        ),
        "components.app.calls_to.db.pool",
        "not both",
    );
}
