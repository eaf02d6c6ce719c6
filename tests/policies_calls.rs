//! Call policies (`calls_to`, issue 12): a per-attempt timeout fails the call for its
//! caller while the callee's work goes on, for services (call, set, fan-out), balancers and
//! caches alike; the per-edge counts add up; bad policies are refused at their path.

use crate::support::{check_refusal, check_refuses as refused, scalesim};
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

/// `app` (1 ms of work, then a call to `db`) in front of `db`, with `policy` on the call.
fn app_db(db_time: Value, policy: Value) -> Value {
    json!({
        "duration": "10s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "app"}},
        "components": {
            "app": {"kind": "service", "workers": 200, "service_time": {"constant": "1ms"},
                    "handler": [{"work": "service_time"}, {"call": "db"}],
                    "calls_to": {"db": policy}},
            "db": {"kind": "service", "workers": 50, "service_time": db_time}
        }
    })
}

#[test]
fn a_timed_out_call_fails_at_the_timeout_while_the_callee_works_on() {
    // Every db call takes 100 ms: every attempt times out at 50 ms, the request fails
    // 51 ms after it arrived, and db still does all the work.
    let r = run(&app_db(
        json!({"constant": "100ms"}),
        json!({"timeout": "50ms"}),
    ));
    let w = &r.workloads["w"];
    assert!(w.arrived > 900, "{w:?}");
    assert_eq!(w.completed, 0);
    assert_eq!(w.errors["timeout"], w.failed);
    let e = &r.edges["app->db"];
    assert_eq!(e.calls, e.attempts);
    // Calls made in the last 50 ms were still out at the end.
    assert!(e.timeouts <= e.calls && e.timeouts + 10 >= e.calls, "{e:?}");
    assert_eq!(e.failed, e.timeouts);
    assert_eq!(e.retries, 0);
    // Every late reply came back except those still at db when the run ended.
    assert!(e.late_replies + 10 >= e.timeouts, "{e:?}");
    let db = &r.components["db"].total;
    assert!(db["completed"] + 15.0 >= w.arrived as f64, "{db:?}");
    // The time to fail: 1 ms of work + the 50 ms timeout; the app's worker was held.
    let app = &r.components["app"].total;
    assert_eq!(app["failed"], w.failed as f64);
}

#[test]
fn a_timeout_cuts_the_tail_only() {
    // Exponential db of mean 20 ms with a 50 ms timeout: P(T > 50 ms) = e^-2.5 = 8.2%.
    let r = run(&app_db(
        json!({"exponential": {"mean": "20ms"}}),
        json!({"timeout": "50ms"}),
    ));
    let w = &r.workloads["w"];
    let share = w.failed as f64 / w.arrived as f64;
    assert!((share - 0.082).abs() < 0.02, "{share}");
    assert!(w.latency.max_ms <= 51.0 + 1e-6, "{:?}", w.latency);
    let e = &r.edges["app->db"];
    assert_eq!(e.timeouts, w.failed);
    assert_eq!(e.succeeded, w.completed);
    assert_eq!(e.attempts_per_call, 1.0);
    // Without the policy: nothing fails, the tail is long, and no edge is reported.
    let mut m = app_db(json!({"exponential": {"mean": "20ms"}}), json!({}));
    m["components"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("calls_to");
    let plain = run(&m);
    assert_eq!(plain.workloads["w"].failed, 0);
    assert!(plain.workloads["w"].latency.max_ms > 60.0);
    assert!(plain.edges.is_empty());
}

#[test]
fn an_empty_policy_changes_nothing_but_is_counted() {
    // A policy with no field: every call goes through the guard and comes back the same.
    let m = app_db(json!({"exponential": {"mean": "20ms"}}), json!({}));
    let r = run(&m);
    let mut plain = m.clone();
    plain["components"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("calls_to");
    let p = run(&plain);
    let (a, b) = (&r.workloads["w"], &p.workloads["w"]);
    assert_eq!(
        (a.arrived, a.completed, a.failed),
        (b.arrived, b.completed, b.failed)
    );
    assert_eq!(a.latency.mean_ms, b.latency.mean_ms);
    assert_eq!(r.edges["app->db"].calls, a.arrived);
    assert_eq!(r.edges["app->db"].succeeded, a.completed);
}

#[test]
fn a_balancer_a_cache_a_set_and_a_fan_out_are_guarded_the_same_way() {
    let m = json!({
        "duration": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 200}}, "target": "lb",
                            "keys": {"uniform": {"keys": 1000}}}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": "least_connections", "backends": "app",
                   "calls_to": {"app": {"timeout": "200ms"}}},
            "app": {"kind": "service", "replicas": 2, "workers": 100,
                    "service_time": {"constant": "1ms"},
                    "handler": [{"work": "service_time"}, {"fan_out": ["slow", "store"], "wait": "any"},
                                {"call": "store", "op": "set"}, {"call": "cache"}],
                    "calls_to": {"cache": {"timeout": "1s"}, "store": {"timeout": "1s"},
                                 "slow": {"timeout": "30ms"}}},
            "cache": {"kind": "cache", "capacity": 100, "on_miss": "store",
                      "hit_time": {"constant": "100us"},
                      "calls_to": {"store": {"timeout": "2ms"}}},
            "store": {"kind": "database", "workers": 50,
                      "read_time": {"constant": "5ms"}, "write_time": {"constant": "1ms"}},
            "slow": {"kind": "service", "workers": 100,
                     "service_time": {"exponential": {"mean": "20ms"}}}
        }
    });
    let r = run(&m);
    let w = &r.workloads["w"];
    // The cache's misses time out (5 ms reads, 2 ms timeout); its hits answer: the calls
    // app makes to the cache fail on a miss.
    let fill = &r.edges["cache->store"];
    assert!(fill.calls > 100, "{fill:?}");
    assert_eq!(fill.timeouts, fill.calls);
    let slow = &r.edges["app->slow"];
    assert!(slow.timeouts > 0 && slow.succeeded > 0, "{slow:?}");
    let set = &r.edges["app->store"];
    assert!(set.calls > 0 && set.failed == 0, "{set:?}");
    let lb = &r.edges["lb->app"];
    assert_eq!(lb.calls, w.arrived);
    assert_eq!(lb.succeeded, w.completed);
    assert_eq!(lb.timeouts, 0);
    // The balancer's own count of what it forwarded is unchanged by the guard.
    assert_eq!(r.components["lb"].total["forwarded"], w.arrived as f64);
    assert!(w.errors["timeout"] > 0);
}

#[test]
fn guarded_runs_are_deterministic() {
    let m = app_db(
        json!({"exponential": {"mean": "20ms"}}),
        json!({"timeout": "30ms"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let out = |jobs: &str| {
        let o = scalesim()
            .args(["run", file.to_str().unwrap(), "--format", "json"])
            .args(["--replications", "3"])
            .env("SCALESIM_JOBS", jobs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("run_info");
        v
    };
    let a = out("1");
    assert_eq!(a, out("2"));
    assert!(
        a["runs"][0]["edges"]["app->db"]["timeouts"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn the_table_and_the_csv_show_the_edges() {
    let m = app_db(json!({"constant": "100ms"}), json!({"timeout": "50ms"}));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let table = scalesim()
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("Call policies"), "{table}");
    assert!(table.contains("app->db"), "{table}");
    let csv = scalesim()
        .args(["run", file.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.lines()
            .any(|l| l.contains("edge,app->db") && l.contains(",timeouts,")),
        "{csv}"
    );
}

#[test]
fn bad_call_policies_are_refused_at_their_path() {
    let base = app_db(json!({"constant": "1ms"}), json!({"timeout": "0ms"}));
    refused(
        &base,
        "components.app.calls_to.db.timeout",
        "must be longer than zero",
    );
    let mut m = base.clone();
    m["components"]["app"]["calls_to"] = json!({"dbb": {"timeout": "1s"}});
    refused(&m, "components.app.calls_to.dbb", "did you mean \"db\"");
    // A callee that exists but is never called.
    let mut m = base.clone();
    m["components"]["other"] = json!({"kind": "service", "service_time": {"constant": "1ms"}});
    m["components"]["app"]["calls_to"] = json!({"other": {"timeout": "1s"}});
    refused(&m, "components.app.calls_to.other", "never calls \"other\"");
    // Reached only by a route: nobody waits, so no policy applies.
    let mut m = base.clone();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"route": {"db": 1.0}}]);
    m["components"]["app"]["calls_to"] = json!({"db": {"timeout": "1s"}});
    refused(&m, "components.app.calls_to.db", "only by a route");
    // Unknown field in a policy.
    let mut m = base.clone();
    m["components"]["app"]["calls_to"] = json!({"db": {"timeuot": "1s"}});
    refused(&m, "components.app.calls_to.db", "timeuot");
}

#[test]
fn policy_mistakes_are_reported_with_the_other_mistakes_in_one_run() {
    // The cache's mistake keeps it from being built, so there is no whole call graph: the
    // call policies are still checked, callee names and blocks alike, in the same run.
    let mut m = app_db(
        json!({"constant": "1ms"}),
        json!({"timeout": "0ms", "retries": {"max": 1000}}),
    );
    m["components"]["c"] = json!({"kind": "cache", "capacity": 100, "eviction": "slru",
                                  "protected": 2.0, "hit_time": {"constant": "300us"}});
    m["components"]["db"]["workers"] = json!(0);
    m["components"]["db"]["calls_to"] = json!({"appp": {"timeout": "1s"}});
    let stderr = check_refusal(&m);
    for needle in [
        "components.c.protected",
        "components.db.workers",
        "components.app.calls_to.db.timeout",
        "components.app.calls_to.db.retries.max",
        "components.db.calls_to.appp",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

/// `app` calling `db` at 200 requests/s with a 500 ms timeout per attempt and `extra` in
/// its policy, `db` a black hole from 10 s to 20 s of a 40 s run.
fn black_holed_db(extra: Value) -> Value {
    let mut policy = json!({"timeout": "500ms"});
    for (k, v) in extra.as_object().unwrap() {
        policy[k] = v.clone();
    }
    json!({
        "duration": "40s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 200}}, "target": "app",
                            "timeout": "2s"}},
        "components": {
            "app": {"kind": "service", "workers": 50, "service_time": {"constant": "1ms"},
                    "handler": [{"work": "service_time"}, {"call": "db"}],
                    "calls_to": {"db": policy}},
            "db": {"kind": "service", "workers": 4,
                   "service_time": {"exponential": {"mean": "5ms"}}}
        },
        "faults": [{"target": "db", "crash": {"mode": "black_hole"}, "at": "10s", "for": "10s"}]
    })
}

#[test]
fn a_breaker_fails_calls_at_once_while_the_callee_is_down_and_closes_after() {
    let breaker = json!({"breaker": {"failure_rate": 0.5, "window": "2s", "min_calls": 10,
                                     "open_for": "2s"}});
    let without = run(&black_holed_db(json!({})));
    let with = run(&black_holed_db(breaker));
    let (e0, e1) = (&without.edges["app->db"], &with.edges["app->db"]);
    // Without a breaker the calls of the outage hold app's workers until they time out,
    // and the requests queued behind them reach their client's timeout.
    assert!(e0.breaker.is_none(), "{e0:?}");
    let timed_out = |r: &RunResult| r.workloads["w"].errors["timeout"];
    assert!(timed_out(&without) > 1000, "{e0:?}");
    // With one, it opens once the window holds enough failures and calls fail at once:
    // only the probes and the calls before it opened time out.
    let b = e1.breaker.as_ref().expect("a breaker reports");
    assert!(b.opened >= 1, "{b:?}");
    assert!(e1.circuit_open > 1000, "{e1:?}");
    assert!(
        timed_out(&with) * 5 < timed_out(&without),
        "{e1:?} against {e0:?}"
    );
    assert_eq!(e1.attempts + e1.circuit_open, e1.calls);
    assert_eq!(with.workloads["w"].errors["circuit_open"], e1.circuit_open);
    let changes = &b.changes;
    let first = changes.first().expect("the breaker changed state");
    assert!(first.at_s > 10.5 && first.at_s < 12.5, "{first:?}");
    // It closes after the outage: the last change, once a probe finds db back.
    let last = changes.last().unwrap();
    assert_eq!(last.state, "closed");
    assert!(last.at_s > 20.0 && last.at_s < 23.0, "{last:?}");
    // The model without a breaker does not list its cause.
    assert!(!without.workloads["w"].errors.contains_key("circuit_open"));
}

#[test]
fn a_fallback_answers_what_would_have_failed_as_degraded() {
    let breaker = json!({"failure_rate": 0.5, "window": "2s", "min_calls": 10, "open_for": "2s"});
    let failing = run(&black_holed_db(json!({"breaker": breaker})));
    let degraded = run(&black_holed_db(
        json!({"breaker": breaker, "fallback": {"answer": "ok"}}),
    ));
    let (f, d) = (&failing.workloads["w"], &degraded.workloads["w"]);
    assert!(f.failed > 1000, "{f:?}");
    // Same draws: every request that failed is answered, counted degraded.
    assert_eq!(d.failed, 0, "{d:?}");
    assert_eq!(degraded.edges["app->db"].degraded, f.failed);
    assert_eq!(d.completed, f.completed + f.failed);
}

#[test]
fn retries_go_to_another_pick_and_multiply_the_attempts() {
    // Each attempt takes 100 ms against a 50 ms timeout, so every attempt times out: max 2
    // retries make three attempts per call, without a budget.
    let policy = json!({"timeout": "50ms",
                        "retries": {"max": 2, "backoff": {"base": "1ms"}, "jitter": "none"}});
    let r = run(&app_db(json!({"constant": "100ms"}), policy));
    let e = &r.edges["app->db"];
    assert!(e.calls > 900, "{e:?}");
    assert!((e.attempts_per_call - 3.0).abs() < 0.02, "{e:?}");
    assert_eq!(e.retries + e.calls, e.attempts);
    let w = &r.workloads["w"];
    // Three timeouts and two 1 ms and 2 ms backoffs: every request fails after 1 + 150 + 3 ms.
    assert_eq!(w.completed, 0);
    assert!(
        (r.amplification["db"] - 3.0).abs() < 0.02,
        "{:?}",
        r.amplification
    );
    assert!((e.attempts_per_request - 3.0).abs() < 0.02);
    // With a budget of 10% and no reserve: retries stay near a tenth of the calls.
    let policy = json!({"timeout": "50ms",
                        "retries": {"max": 2, "backoff": {"base": "1ms"}, "jitter": "none",
                                    "budget": {"ratio": 0.1, "min_per_s": 0}}});
    let r = run(&app_db(json!({"constant": "100ms"}), policy));
    let e = &r.edges["app->db"];
    assert!(e.attempts_per_call < 1.15, "{e:?}");
    assert!(e.budget_exhausted > 800, "{e:?}");
}

#[test]
fn a_retry_reaches_a_healthy_instance_and_the_call_succeeds() {
    // db has two instances taken in turn; one fails every call at once (errors fault):
    // half the first attempts fail, and a retry goes to the next in turn, which is the
    // healthy one unless another call took that turn in between.
    let mut m = app_db(
        json!({"constant": "1ms"}),
        json!({"retries": {"max": 1, "backoff": {"base": "1ms"}}}),
    );
    m["components"]["db"]["replicas"] = json!(2);
    m["faults"] = json!([{"target": "db", "instance": 0, "errors": {"share": 1.0}, "at": "0s"}]);
    let r = run(&m);
    let w = &r.workloads["w"];
    assert!(w.failed * 10 < w.arrived, "{w:?}");
    let e = &r.edges["app->db"];
    // Round robin: a call and its retry take two turns, so most first attempts meet db[0].
    assert!(e.retries > 300 && e.failed * 10 < e.calls, "{e:?}");
}

#[test]
fn bad_retries_on_a_call_are_refused_at_their_path() {
    let m = app_db(
        json!({"constant": "1ms"}),
        json!({"retries": {"budget": {"ratio": 2}}}),
    );
    refused(&m, "components.app.calls_to.db.retries.budget.ratio", "");
    let m = app_db(
        json!({"constant": "1ms"}),
        json!({"breaker": {"window": "0s"}}),
    );
    refused(
        &m,
        "components.app.calls_to.db.breaker.window",
        "longer than zero",
    );
    let m = app_db(
        json!({"constant": "1ms"}),
        json!({"breaker": {"failure_rate": 0}}),
    );
    refused(
        &m,
        "components.app.calls_to.db.breaker.failure_rate",
        "(0, 1]",
    );
}
