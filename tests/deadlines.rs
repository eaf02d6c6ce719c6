//! Deadline propagation (issue 12 point 1): a service with `deadlines` "drop" does not
//! serve a call whose caller has given up (dropped at dequeue, `deadline_exceeded`), and
//! with "abort" also stops its handler between steps; "ignore" (the default) serves it,
//! as before. Under overload with a client timeout, dropping keeps the goodput near the
//! capacity where serving everything late gives almost none.

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

/// An M/M/1 service of capacity 1,000/s offered 1,500/s for 20 s by clients who give up
/// after 50 ms; `deadlines` as given (`null`: not written).
fn overloaded(deadlines: Value) -> Value {
    let mut app = json!({"kind": "service", "service_time": {"exponential": {"mean": "1ms"}}});
    if !deadlines.is_null() {
        app["deadlines"] = deadlines;
    }
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 1500}}, "target": "app",
                                "timeout": "50ms"}},
        "components": {"app": app}
    })
}

/// Work the service finished for requests whose client had already given up.
fn wasted(r: &RunResult) -> f64 {
    total(r, "app", "completed") - r.workloads["users"].completed as f64
}

#[test]
fn under_overload_dropping_abandoned_work_keeps_the_goodput() {
    let ignore = run(&overloaded(Value::Null));
    let drop = run(&overloaded(json!("drop")));
    let (g0, g1) = (
        ignore.workloads["users"].goodput_per_s,
        drop.workloads["users"].goodput_per_s,
    );
    // Serving everything first come first served: the queue grows by 500/s, and after
    // the first 50 ms every answer is late.
    assert!(g0 < 20.0, "goodput without deadlines {g0}");
    // Dropping what nobody waits for: the server works only for live requests. First
    // come first served, the head of the queue is always nearly 50 ms old, so about a
    // third of what it starts still finishes late (adaptive LIFO would fix that).
    assert!(g1 > 600.0, "goodput with deadlines drop {g1}");
    assert!(wasted(&ignore) > 15_000.0, "wasted {}", wasted(&ignore));
    assert!(
        wasted(&drop) < 0.5 * wasted(&ignore),
        "wasted {} {}",
        wasted(&drop),
        wasted(&ignore)
    );
    // The dropped calls are counted, and so are the clients' failures by cause.
    let dropped = total(&drop, "app", "deadline_exceeded");
    assert!(dropped > 8_000.0, "{dropped}");
    // The client had already timed out: the drop is not a second failure.
    assert!(
        !ignore.workloads["users"]
            .errors
            .contains_key("deadline_exceeded")
    );
    // Both stay busy: the difference is what the work was for.
    assert!(total(&ignore, "app", "utilization") > 0.99);
}

#[test]
fn ignore_is_the_default_and_changes_nothing() {
    let a = run(&overloaded(Value::Null));
    let b = run(&overloaded(json!("ignore")));
    assert_eq!(
        a.workloads["users"].completed,
        b.workloads["users"].completed
    );
    assert_eq!(total(&a, "app", "completed"), total(&b, "app", "completed"));
    // A service without admission control reports no admission metrics.
    assert!(!a.components["app"].total.contains_key("deadline_exceeded"));
}

/// A front tier calling a slow back end, abandoned by its clients after 50 ms: the back
/// end works 40 ms per request, two steps of 20 ms.
fn two_tiers(front: &str) -> Value {
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 60}}, "target": "front",
                                "timeout": "50ms"}},
        "components": {
            "front": {"kind": "service", "workers": 100,
                      "handler": [{"work": {"constant": "1ms"}}, {"call": "back"},
                                  {"work": {"constant": "1ms"}}]},
            "back": {"kind": "service", "workers": 2, "deadlines": front,
                     "handler": [{"work": {"constant": "20ms"}}, {"work": {"constant": "20ms"}}]}
        }
    })
}

#[test]
fn abort_stops_a_handler_between_steps_and_drop_only_at_dequeue() {
    let ignore = run(&two_tiers("ignore"));
    let drop = run(&two_tiers("drop"));
    let abort = run(&two_tiers("abort"));
    // 60/s of 40 ms on 2 workers: utilization 1.2, an overload.
    let util = |r: &RunResult| total(r, "back", "utilization");
    assert!(util(&ignore) > 0.99);
    // Drop: calls whose client gave up while queued are not started.
    assert!(total(&drop, "back", "deadline_exceeded") > 100.0);
    // Abort: also those whose client gave up during the first step stop after it.
    let aborted = total(&abort, "back", "deadline_exceeded");
    assert!(
        aborted > total(&drop, "back", "deadline_exceeded"),
        "{aborted}"
    );
    let g = |r: &RunResult| r.workloads["users"].goodput_per_s;
    assert!(
        g(&drop) > 5.0 * g(&ignore).max(1.0),
        "{} {}",
        g(&drop),
        g(&ignore)
    );
    assert!(g(&abort) >= g(&drop), "{} {}", g(&abort), g(&drop));
    // The front's caller is the client: its calls end when it gives up; nothing else
    // changes for the front tier.
    assert_eq!(
        ignore.workloads["users"].arrived,
        abort.workloads["users"].arrived
    );
}

#[test]
fn a_fan_out_that_went_on_without_a_call_gives_it_up() {
    // "any": the first success answers; the slow branch's call is no longer awaited.
    let v = json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 100}}, "target": "front"}},
        "components": {
            "front": {"kind": "service", "workers": 100,
                      "handler": [{"fan_out": ["fast", "slow"], "wait": "any"}]},
            "fast": {"kind": "service", "workers": 100, "service_time": {"constant": "1ms"}},
            "slow": {"kind": "service", "workers": 1, "deadlines": "drop",
                     "service_time": {"constant": "5ms"}}
        }
    });
    let r = run(&v);
    // No client timeout, yet the slow copy's queued calls are dropped: their parent
    // already went on with the fast answer.
    let dropped = total(&r, "slow", "deadline_exceeded");
    assert!(dropped > 100.0, "{dropped}");
    assert_eq!(r.workloads["users"].failed, 0);
}

#[test]
fn an_unknown_deadlines_mode_is_refused_at_its_path() {
    check_refuses(
        &overloaded(json!("cancel")),
        "components.app.deadlines",
        "cancel",
    );
}

/// `app` (fast, plenty of workers) calls `db` (M/M/1, 1,000/s) at 1,500/s with a 50 ms
/// timeout per attempt and one retry, no client timeout; `db`'s `deadlines` as given.
/// While the retry is out, the call that made the abandoned first attempt still waits:
/// only the guard knows nobody waits for that attempt.
fn call_timeout_over_overload(deadlines: &str) -> Value {
    json!({
        "duration": "20s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 1500}}, "target": "app"}},
        "components": {
            "app": {"kind": "service", "workers": 1000,
                    "service_time": {"constant": "0ms"},
                    "handler": [{"call": "db"}],
                    "calls_to": {"db": {"timeout": "50ms", "retries":
                        {"max": 1, "backoff": {"base": "1ms"}, "jitter": "none"}}}},
            "db": {"kind": "service", "deadlines": deadlines,
                   "service_time": {"exponential": {"mean": "1ms"}}}
        }
    })
}

#[test]
fn an_attempt_abandoned_at_its_call_timeout_is_dropped_downstream() {
    let ignore = run(&call_timeout_over_overload("ignore"));
    let drop = run(&call_timeout_over_overload("drop"));
    // The caller gave up on the call at its 50 ms timeout, not the client: with "drop"
    // the db skips those attempts at dequeue, so it serves more live calls. While the
    // retry is out the caller still waits for the call: only the guard knows that the
    // first attempt is abandoned (without asking it, goodput stays at 14/s).
    let (g0, g1) = (
        ignore.workloads["users"].goodput_per_s,
        drop.workloads["users"].goodput_per_s,
    );
    assert!(g0 < 20.0, "goodput without deadlines {g0}");
    assert!(g1 > 300.0, "goodput with deadlines drop {g1}");
    assert!(total(&drop, "db", "deadline_exceeded") > 8_000.0);
    // Without propagation the db finishes thousands of calls nobody waits for; with it,
    // only those abandoned while in service (12,322 against 19,769).
    let late = |r: &RunResult| total(r, "db", "completed") - r.workloads["users"].completed as f64;
    assert!(late(&ignore) > 15_000.0, "{}", late(&ignore));
    assert!(
        late(&drop) < 0.7 * late(&ignore),
        "{} {}",
        late(&drop),
        late(&ignore)
    );
}
