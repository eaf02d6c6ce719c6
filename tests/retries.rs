//! Client retries (issue 12 points 2 and 6): a workload's `retries` sends a failed attempt
//! again after its backoff, the client's own timeout included (the timed-out attempt's work
//! goes on); latency counts from the first attempt; `arrived` counts original requests;
//! attempts, retries, attempts per request and the budget's refusals are reported for
//! workloads with retries only; the backoff jitter draws from a stream of its own; a retry
//! budget caps retries at its ratio; non-idempotent writes retried after a timeout are
//! written twice (duplicates), an idempotency key removes them; bad fields are refused at
//! their path with status 2.

use crate::support::check_refuses;
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::{RetryResult, RunResult, WorkloadResult};
use serde_json::{Value, json};
use std::path::Path;

fn run(v: &Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let r = replicate(&m, 1, 1).unwrap().remove(0);
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

fn w<'a>(r: &'a RunResult, name: &str) -> &'a WorkloadResult {
    &r.workloads[name]
}

fn retries<'a>(r: &'a RunResult, name: &str) -> &'a RetryResult {
    r.workloads[name].retries.as_ref().expect("a retries block")
}

/// A service answering at once, failing a share `p` of its requests for the whole run;
/// 1,000 requests a second for 20 s; the workload's `retries`.
fn failing(p: f64, retries: Value) -> Value {
    json!({
        "duration": "20s",
        "warmup": "1s",
        "components": {"svc": {"kind": "service", "workers": 100000,
                               "handler": [{"work": {"constant": "0ns"}}]}},
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 1000}}, "target": "svc",
                            "retries": retries}},
        "faults": [{"target": "svc", "errors": {"share": p}, "at": "0s"}]
    })
}

#[test]
fn failed_attempts_are_sent_again_and_latency_counts_from_the_first() {
    let r = run(&failing(
        0.5,
        json!({"max": 3, "backoff": {"base": "100us"}, "jitter": "none"}),
    ));
    let (wr, rt) = (w(&r, "w"), retries(&r, "w"));
    // P(success) = 1 - 0.5^4; attempts (1 - 0.5^4) / 0.5; backoff 0.5·0.1 + 0.25·0.2 + 0.125·0.4.
    let answered = (wr.completed + wr.failed) as f64;
    assert!((wr.completed as f64 / answered - 0.9375).abs() < 0.01);
    assert!((rt.attempts_per_request - 1.875).abs() < 0.03, "{rt:?}");
    assert!((rt.backoff_mean_ms - 0.15).abs() < 0.005, "{rt:?}");
    assert_eq!(rt.attempts, wr.arrived + rt.retries);
    assert_eq!(rt.budget_exhausted, 0);
    // A success waited 0, 0.1, 0.3 or 0.7 ms (the backoffs before it): never more.
    assert_eq!(wr.latency.max_ms, 0.7);
    assert!(wr.latency.mean_ms > 0.1, "{:?}", wr.latency);
    // Only what ran out of retries failed, with the last attempt's cause.
    assert_eq!(wr.errors["injected"], wr.failed);
    // The service saw every attempt.
    let seen = r.components["svc"].total["arrived"];
    assert!(
        (seen / rt.attempts as f64 - 1.0).abs() < 0.01,
        "{seen} {rt:?}"
    );
}

#[test]
fn only_the_causes_listed_are_retried() {
    let r = run(&failing(0.5, json!({"max": 3, "on": ["timeout"]})));
    assert_eq!(retries(&r, "w").retries, 0);
    assert!((w(&r, "w").error_share - 0.5).abs() < 0.02);
    let r = run(&failing(0.5, json!({"max": 0})));
    assert_eq!(retries(&r, "w").attempts_per_request, 1.0);
}

#[test]
fn a_timed_out_attempt_is_retried_and_its_work_goes_on() {
    // Every attempt takes 10 ms; the client gives up after 4 ms and retries twice.
    let m = json!({
        "duration": "10s",
        "components": {"svc": {"kind": "service", "workers": 1000,
                               "handler": [{"work": {"constant": "10ms"}}]}},
        "workloads": {"w": {"arrivals": {"constant": {"rate": 100}}, "target": "svc",
                            "timeout": "4ms",
                            "retries": {"max": 2, "backoff": {"base": "1ms"}, "jitter": "none"}}}
    });
    let r = run(&m);
    let (wr, rt) = (w(&r, "w"), retries(&r, "w"));
    assert_eq!(wr.completed, 0);
    assert_eq!(wr.errors["timeout"], wr.failed);
    assert!((rt.attempts_per_request - 3.0).abs() < 0.01, "{rt:?}");
    // Three attempts' work per request: the service completed about three per request.
    let done = r.components["svc"].total["completed"];
    assert!((done / wr.arrived as f64 - 3.0).abs() < 0.02, "{done}");
    // Each retry leaves 4 ms + backoff after the one before: 1 ms, then 2 ms.
    assert!((rt.backoff_mean_ms - 3.0).abs() < 0.01, "{rt:?}");
}

#[test]
fn a_workload_without_retries_reports_and_runs_as_before() {
    let mut m = failing(0.3, json!({}));
    m["workloads"]["w"]
        .as_object_mut()
        .unwrap()
        .remove("retries");
    let plain = run(&m);
    assert!(w(&plain, "w").retries.is_none());
    let text = serde_json::to_string(&plain.workloads["w"]).unwrap();
    assert!(!text.contains("attempts"), "{text}");
}

#[test]
fn retries_move_no_other_draw() {
    // Two workloads on two services, the first failing; retries on the first (full jitter)
    // change nothing the second sees, and nothing of the first's arrivals.
    let m = |retries: Option<Value>| {
        let mut w1 = json!({"arrivals": {"poisson": {"rate": 500}}, "target": "a",
                            "keys": {"zipf": {"keys": 1000, "s": 1.0}}});
        if let Some(r) = retries {
            w1["retries"] = r;
        }
        json!({
            "duration": "10s",
            "components": {
                "a": {"kind": "service", "workers": 8,
                      "handler": [{"work": {"exponential": {"mean": "1ms"}}}]},
                "b": {"kind": "service", "workers": 2,
                      "handler": [{"work": {"exponential": {"mean": "2ms"}}}]}
            },
            "workloads": {
                "w1": w1,
                "w2": {"arrivals": {"poisson": {"rate": 400}}, "target": "b"}
            },
            "faults": [{"target": "a", "errors": {"share": 0.2}, "at": "0s"}]
        })
    };
    let without = run(&m(None));
    let with = run(&m(Some(json!({"max": 3, "backoff": {"base": "5ms"}}))));
    let json = |x: &WorkloadResult| serde_json::to_value(x).unwrap();
    assert_eq!(json(w(&without, "w2")), json(w(&with, "w2")));
    assert_eq!(w(&without, "w1").arrived, w(&with, "w1").arrived);
    assert!(w(&with, "w1").failed * 20 < w(&without, "w1").failed);
    // The same model twice: the same bytes.
    let again = run(&m(Some(json!({"max": 3, "backoff": {"base": "5ms"}}))));
    assert_eq!(json(w(&with, "w1")), json(w(&again, "w1")));
}

#[test]
fn a_budget_caps_retries_at_its_ratio() {
    let r = run(&failing(
        0.5,
        json!({"max": 3, "backoff": {"base": "1ms"},
               "budget": {"ratio": 0.1, "min_per_s": 0}}),
    ));
    let (wr, rt) = (w(&r, "w"), retries(&r, "w"));
    let share = rt.retries as f64 / wr.arrived as f64;
    assert!(share <= 0.105 && share > 0.09, "{share}");
    assert!(rt.budget_exhausted > 0);
    // Without a token the failure is the answer: most of those failing first fail.
    assert!(wr.error_share > 0.4, "{}", wr.error_share);
    // A reserve of 100 retries a second on 1,000 requests: more, at most 0.1 + 0.1 of them
    // (the reserve comes back in bursts as its withdrawals expire, every ttl).
    let r = run(&failing(
        0.5,
        json!({"max": 3, "backoff": {"base": "1ms"},
               "budget": {"ratio": 0.1, "min_per_s": 100}}),
    ));
    let more = retries(&r, "w").retries as f64 / w(&r, "w").arrived as f64;
    assert!(more > share + 0.03 && more <= 0.205, "{more}");
}

#[test]
fn closed_loop_users_wait_for_the_last_attempt() {
    let m = json!({
        "duration": "10s",
        "components": {"svc": {"kind": "service", "workers": 100,
                               "handler": [{"work": {"constant": "1ms"}}]}},
        "workloads": {"users": {"arrivals": {"closed": {"users": 10,
                                                        "think": {"constant": "9ms"}}},
                                "target": "svc",
                                "retries": {"max": 1, "backoff": {"base": "10ms"},
                                            "jitter": "none"}}},
        "faults": [{"target": "svc", "errors": {"share": 0.5}, "at": "0s"}]
    });
    let r = run(&m);
    let (wr, rt) = (w(&r, "users"), retries(&r, "users"));
    // A cycle: a success takes 1 ms, a failure none; half the first attempts fail and wait
    // 10 ms for a second, which succeeds half the time; then 9 ms of thinking:
    // 0.5·1 + 0.5·(10 + 0.5·1) + 9 = 14.75 ms.
    let per_user = wr.arrived as f64 / 10.0 / 10.0;
    assert!((per_user - 1000.0 / 14.75).abs() < 1.5, "{per_user}");
    assert!((rt.attempts_per_request - 1.5).abs() < 0.03, "{rt:?}");
    assert!((wr.error_share - 0.25).abs() < 0.03);
}

/// Writes whose every attempt takes 30 ms; the client times out after 20 ms and retries
/// once after 1 ms: both attempts finish, the write is done twice.
fn writes(extra: Value) -> Value {
    let mut wl = json!({"arrivals": {"constant": {"rate": 100}}, "target": "svc",
                        "classes": {"read": 0.5, "write": 0.5},
                        "timeout": "20ms",
                        "retries": {"max": 1, "backoff": {"base": "1ms"}, "jitter": "none"}});
    for (k, v) in extra.as_object().unwrap() {
        wl[k] = v.clone();
    }
    json!({
        "duration": "10s",
        "components": {"svc": {"kind": "service", "workers": 1000,
                               "handler": [{"work": {"constant": "30ms"}}]}},
        "workloads": {"w": wl}
    })
}

#[test]
fn a_retried_write_whose_first_attempt_also_succeeded_is_a_duplicate() {
    let r = run(&writes(json!({"idempotent": false})));
    let rt = retries(&r, "w");
    let write_requests = w(&r, "w").classes["write"].arrived;
    let dup = rt.duplicates.unwrap();
    // Every write: both attempts succeed at the service, the second is a duplicate (the
    // last few may not have ended when the run does).
    assert!(dup.abs_diff(write_requests) <= 10, "{dup} {write_requests}");
    assert_eq!(rt.deduplicated, Some(0));
    // With a key, the service drops them.
    let r = run(&writes(
        json!({"idempotent": false, "idempotency_key": true}),
    ));
    let rt = retries(&r, "w");
    assert_eq!(rt.duplicates, Some(0));
    assert_eq!(rt.deduplicated, Some(dup));
    // Idempotent writes (the default) are not counted.
    let r = run(&writes(json!({})));
    assert_eq!(retries(&r, "w").duplicates, None);
}

#[test]
fn a_failed_first_attempt_is_no_duplicate() {
    // The first attempt fails at the service: one write, no duplicate.
    let mut m = writes(json!({"idempotent": false}));
    m["workloads"]["w"]["timeout"] = json!("1s");
    m["faults"] = json!([{"target": "svc", "errors": {"share": 0.5}, "at": "0s"}]);
    let r = run(&m);
    assert!(retries(&r, "w").retries > 100);
    assert_eq!(retries(&r, "w").duplicates, Some(0));
}

#[test]
fn bad_retry_fields_are_refused_at_their_path() {
    let with = |retries: Value| failing(0.1, retries);
    check_refuses(
        &with(json!({"backoff": {"base": "-5ms"}})),
        "workloads.w.retries.backoff.base",
        "negative",
    );
    check_refuses(
        &with(json!({"jitter": "fuzzy"})),
        "workloads.w.retries.jitter",
        "fuzzy",
    );
    check_refuses(
        &with(json!({"budget": {"ratio": 1.5}})),
        "workloads.w.retries.budget.ratio",
        "must be in (0, 1], got 1.5",
    );
    check_refuses(
        &with(json!({"max": 101})),
        "workloads.w.retries.max",
        "at most 100",
    );
    check_refuses(
        &with(json!({"on": ["timout"]})),
        "workloads.w.retries.on[0]",
        "did you mean \"timeout\"",
    );
    check_refuses(
        &with(json!({"backoff": {"multiplier": 0.5}})),
        "workloads.w.retries.backoff.multiplier",
        "at least 1",
    );
    check_refuses(&with(json!({"tries": 3})), "workloads.w.retries", "tries");
    let mut m = with(json!({}));
    m["workloads"]["w"]["idempotency_key"] = json!(true);
    check_refuses(&m, "workloads.w.idempotency_key", "\"idempotent\": false");
    let mut m = with(json!({}));
    m["workloads"]["w"]["idempotent"] = json!(false);
    check_refuses(&m, "workloads.w.idempotent", "no write");
}

#[test]
fn a_client_rate_limit_counts_the_retries_it_sends() {
    // Every attempt fails; 1,000 requests a second against a client-side limit of 1,200 a
    // second: the first attempts fit, but up to three retries each would not.
    let mut m = failing(
        1.0,
        json!({"max": 3, "backoff": {"base": "100us"}, "jitter": "none"}),
    );
    m["workloads"]["w"]["rate_limit"] = json!({"rate": 1200, "burst": 10});
    let r = run(&m);
    let sent = r.components["svc"].total["arrived"];
    // Only what the bucket lets through reaches the service: 1,200/s over the measured
    // 19 s, plus the burst, where 4,000/s would without the limit on retries.
    assert!(sent <= 1200.0 * 19.0 + 10.0 + 1.0, "{sent}");
    assert!(sent > 1100.0 * 19.0, "{sent}");
    // A retry finding no token fails rate_limited (not retried by default).
    assert!(
        w(&r, "w").errors["rate_limited"] > 10_000,
        "{:?}",
        w(&r, "w").errors
    );
}
