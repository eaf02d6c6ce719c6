//! The `autoscaler` kind: a step in load is met by a scale-out within the evaluation
//! period plus the provisioning delay; no action happens inside a cooldown; the
//! instance-hours are the integral of the instance count series and the cost follows them;
//! an instance taken out drains (no failure) or fails its requests, by choice; bad input is
//! refused with the field's path.

use crate::support::check_refuses;
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::{AutoscalingResult, RunResult};
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

fn run(v: &Value) -> RunResult {
    let r = replicate(&model(v), 1, 1)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

/// A balancer in front of `app` (2 instances of 4 workers, 20 ms exponential), scaled by
/// `as` with `scaler`'s fields over defaults; the load steps through `steps` (at s, rate).
fn scaled(steps: &[(u32, f64)], scaler: Value) -> Value {
    let mut a = json!({"kind": "autoscaler", "target": "app", "min": 2, "max": 10,
                       "metric": "utilization", "target_value": 0.6,
                       "evaluation_period": "60s", "scale_out_cooldown": "120s",
                       "scale_in_cooldown": "300s", "provisioning_delay": "90s"});
    for (k, v) in scaler.as_object().unwrap() {
        a[k] = v.clone();
    }
    let steps: Vec<Value> = steps
        .iter()
        .map(|(at, rate)| json!({"at": format!("{at}s"), "rate": rate}))
        .collect();
    json!({
        "duration": "20m", "series_window": "30s",
        "workloads": {"w": {"arrivals": {"steps": steps}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "backends": "app"},
            "app": {"kind": "service", "replicas": 2, "workers": 4, "cost_per_hour": 0.5,
                    "service_time": {"exponential": {"mean": "20ms"}}},
            "as": a
        }
    })
}

fn scaling(r: &RunResult) -> &AutoscalingResult {
    &r.autoscaling["as"]
}

#[test]
fn a_step_in_load_is_met_within_the_period_and_the_delay() {
    // 100/s on 8 workers of 20 ms is 25% busy; 400/s is 100%: the first evaluation after
    // the step (at 360 s) sees it and starts instances that serve 90 s later.
    let r = run(&scaled(&[(0, 100.0), (300, 400.0)], json!({})));
    let s = scaling(&r);
    let first = &s.actions[0];
    assert!(first.at_s > 300.0 && first.at_s <= 360.0, "{:?}", s.actions);
    assert!(first.to > first.from, "{first:?}");
    assert!(first.reason.starts_with("utilization"), "{first:?}");
    // Serving: 2 until the step plus period plus delay (450 s), more from then on.
    let w = s.window_s;
    for (i, n) in s.serving.iter().enumerate() {
        let end = (i + 1) as f64 * w;
        if end <= 360.0 + 90.0 {
            assert_eq!(*n, 2.0, "window {i}: {:?}", s.serving);
        } else if end > 360.0 + 90.0 + w {
            assert!(*n > 2.0, "window {i}: {:?}", s.serving);
        }
    }
    // Paid for from the decision on: running counts them while they are provisioned.
    assert!(s.instances[12] > 2.0, "{:?}", s.instances);
}

#[test]
fn no_action_happens_inside_a_cooldown() {
    // Load swinging every 3 minutes asks for changes more often than the cooldowns allow.
    let steps: Vec<(u32, f64)> = (0..7)
        .map(|i| (i * 180, if i % 2 == 0 { 100.0 } else { 450.0 }))
        .collect();
    for (out, inward) in [("120s", "300s"), ("300s", "60s"), ("0s", "0s")] {
        let v = scaled(
            &steps,
            json!({"scale_out_cooldown": out, "scale_in_cooldown": inward,
                   "provisioning_delay": "30s"}),
        );
        let r = run(&v);
        let a = &scaling(&r).actions;
        assert!(a.len() >= 4, "{out}/{inward}: {a:?}");
        let secs = |d: &str| d.trim_end_matches('s').parse::<f64>().unwrap();
        let (out, inward) = (secs(out), secs(inward));
        let mut last_out: Option<f64> = None;
        let mut last_in: Option<f64> = None;
        for x in a {
            if let Some(t) = last_out {
                assert!(
                    x.at_s >= t + out,
                    "{x:?} within the scale-out cooldown: {a:?}"
                );
            }
            if x.to > x.from {
                last_out = Some(x.at_s);
            } else {
                if let Some(t) = last_in {
                    assert!(x.at_s >= t + inward, "{x:?} within the scale-in cooldown");
                }
                last_in = Some(x.at_s);
            }
        }
    }
}

#[test]
fn instance_hours_are_the_integral_of_the_instance_count_and_cost_follows_them() {
    let r = run(&scaled(
        &[(0, 100.0), (300, 400.0), (840, 100.0)],
        json!({}),
    ));
    let s = scaling(&r);
    assert!(s.actions.len() >= 2, "{:?}", s.actions);
    let integral: f64 = s.instances.iter().map(|n| n * s.window_s / 3600.0).sum();
    assert!(
        (s.instance_hours - integral).abs() < 1e-9,
        "{} vs {integral}",
        s.instance_hours
    );
    let total = &r.components["as"].total;
    assert!((total["instance_hours"] - s.instance_hours).abs() < 1e-12);
    let mean = s.instance_hours / (1200.0 / 3600.0);
    assert!((total["instances_mean"] - mean).abs() < 1e-9);
    assert!(mean > 2.0 && mean < 10.0, "{mean}");
    // The design is paid for by the instance-hour: 0.5 per hour per instance running.
    assert!((s.cost - 0.5 * s.instance_hours).abs() < 1e-12);
    assert!((r.cost.per_hour - 0.5 * mean).abs() < 1e-9, "{:?}", r.cost);
    // Without the autoscaler the two instances cost 1 per hour.
    let mut fixed = scaled(&[(0, 100.0)], json!({}));
    fixed["components"]
        .as_object_mut()
        .unwrap()
        .shift_remove("as");
    fixed["duration"] = json!("2m");
    assert_eq!(run(&fixed).cost.per_hour, 1.0);
}

#[test]
fn a_drained_instance_fails_nothing_a_failed_one_fails_its_requests() {
    // Step scaling holds 6 instances busy at 600/s, then the load falls and one step
    // removes 3 at once, while each still holds requests.
    let steps = [(0, 600.0), (400, 250.0)];
    let scaler = |on_remove: &str| {
        json!({"min": 2, "max": 6, "initial": 6, "metric": "requests_per_instance",
               "target_value": null,
               "steps": [{"above": 150, "add": 1}, {"below": 60, "remove": 3}],
               "scale_in_cooldown": "60s", "on_remove": on_remove})
    };
    let mut drain = scaled(&steps, scaler("drain"));
    let mut fail = scaled(&steps, scaler("fail"));
    for v in [&mut drain, &mut fail] {
        v["components"]["as"]
            .as_object_mut()
            .unwrap()
            .shift_remove("target_value");
    }
    let d = run(&drain);
    let f = run(&fail);
    for r in [&d, &f] {
        let ins: Vec<_> = scaling(r)
            .actions
            .iter()
            .filter(|a| a.to < a.from)
            .collect();
        assert!(!ins.is_empty(), "{:?}", scaling(r).actions);
        assert_eq!(ins[0].from - ins[0].to, 3, "{ins:?}");
    }
    assert_eq!(d.workloads["w"].failed, 0, "{:?}", d.workloads["w"].errors);
    // The requests the instances held fail as crashed; a call already on its way to one
    // of them is refused.
    let errors = &f.workloads["w"].errors;
    let crashed = errors.get("crashed").copied().unwrap_or(0);
    let refused = errors.get("refused").copied().unwrap_or(0);
    assert!(crashed > 0, "{errors:?}");
    assert_eq!(f.workloads["w"].failed, crashed + refused, "{errors:?}");
    // A drained instance is paid for until it is empty, a failed one stops at once.
    assert!(scaling(&d).instance_hours >= scaling(&f).instance_hours);
}

#[test]
fn bad_autoscalers_are_refused_with_the_fields_path() {
    let base = scaled(&[(0, 100.0)], json!({}));
    let with = |field: &str, value: Value| {
        let mut v = base.clone();
        v["components"]["as"][field] = value;
        v
    };
    check_refuses(
        &with("min", json!(11)),
        "components.as.min",
        "at most max (10)",
    );
    check_refuses(
        &with("initial", json!(12)),
        "components.as.initial",
        "within min (2) and max (10)",
    );
    check_refuses(&with("initial", json!(1)), "components.as.initial", "got 1");
    check_refuses(
        &with("target", json!("lb")),
        "components.as.target",
        "must name a service",
    );
    check_refuses(
        &with("target", json!("nope")),
        "components.as.target",
        "no component named",
    );
    check_refuses(
        &with("evaluation_period", json!("0s")),
        "components.as.evaluation_period",
        "longer than zero",
    );
    check_refuses(
        &with("scale_in_cooldown", json!("-5s")),
        "components.as.scale_in_cooldown",
        "negative",
    );
    check_refuses(
        &with("target_value", json!(1.5)),
        "components.as.target_value",
        "share",
    );
    let mut both = with("steps", json!([{"above": 0.8, "add": 1}]));
    check_refuses(&both, "components.as.steps", "not both");
    both["components"]["as"]["steps"] = json!([{"above": 0.8, "remove": 1}]);
    both["components"]["as"]
        .as_object_mut()
        .unwrap()
        .shift_remove("target_value");
    check_refuses(&both, "components.as.steps[0]", "\"above\": X, \"add\": N");
    // The default initial is the target's replicas, which must fit too.
    let mut v = with("min", json!(3));
    v["components"]["as"]
        .as_object_mut()
        .unwrap()
        .shift_remove("initial");
    check_refuses(&v, "components.as.initial", "target's replicas, 2");
}

#[test]
fn requests_sent_to_an_autoscaler_are_refused_before_the_run() {
    // An autoscaler answers no request: naming it as a workload's target, a balancer's
    // backends or a call is a mistake in the file, refused at validation (it used to fail
    // every request at run time).
    let mut v = scaled(&[(0, 100.0)], json!({}));
    v["workloads"]["w"]["target"] = json!("as");
    check_refuses(
        &v,
        "workloads.w.target",
        "\"as\" is an autoscaler, which answers no request",
    );
    let mut v = scaled(&[(0, 100.0)], json!({}));
    v["components"]["lb"]["backends"] = json!("as");
    check_refuses(&v, "components.lb.backends", "the service it scales");
    let mut v = scaled(&[(0, 100.0)], json!({}));
    v["components"]["app"]["handler"] = json!([{"work": {"constant": "1ms"}}, {"call": "as"}]);
    v["components"]["app"]
        .as_object_mut()
        .unwrap()
        .shift_remove("service_time");
    check_refuses(&v, "components.app.handler[1].call", "(such as \"app\"");
}
