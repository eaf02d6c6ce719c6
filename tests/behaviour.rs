//! Behaviours without a closed-form reference: queue disciplines, fan-out waits, weighted
//! and hashed balancing, rate profiles. Each compares two settings whose order is certain.

use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn runs(v: Value, replications: usize) -> Vec<RunResult> {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    replicate(&m, 5, replications).unwrap()
}

fn mean(rs: &[RunResult], f: impl Fn(&RunResult) -> f64) -> f64 {
    rs.iter().map(f).sum::<f64>() / rs.len() as f64
}

fn mm1(discipline: &str) -> Value {
    json!({
        "duration": "200s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 800}}, "target": "s"}},
        "components": {"s": {"kind": "service", "queue": {"discipline": discipline},
                             "service_time": {"exponential": {"mean": "1ms"}}}}
    })
}

#[test]
fn lifo_keeps_the_mean_but_stretches_the_tail() {
    // Both disciplines are work-conserving and blind to service times, so the mean response
    // time is the same (5ms at ρ = 0.8); LIFO serves some requests very late.
    let fifo = runs(mm1("fifo"), 4);
    let lifo = runs(mm1("lifo"), 4);
    let w = |r: &RunResult| r.workloads["w"].latency.mean_ms;
    let p999 = |r: &RunResult| r.workloads["w"].latency.p999_ms;
    assert!(
        (mean(&fifo, w) / mean(&lifo, w) - 1.0).abs() < 0.05,
        "{} vs {}",
        mean(&fifo, w),
        mean(&lifo, w)
    );
    assert!(mean(&lifo, p999) > 1.5 * mean(&fifo, p999));
}

#[test]
fn priority_serves_the_urgent_class_first() {
    let v = json!({
        "duration": "100s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 850}}, "classes": {"urgent": 0.2, "bulk": 0.8}, "target": "s"}},
        "components": {"s": {"kind": "service",
            "queue": {"discipline": "priority", "priorities": {"urgent": 0, "bulk": 1}},
            "service_time": {"exponential": {"mean": "1ms"}}}}
    });
    let rs = runs(v, 3);
    let class = |c: &'static str| move |r: &RunResult| r.workloads["w"].classes[c].latency.mean_ms;
    // Non-preemptive priority M/M/1 (Cobham): W_urgent = 1 + ρ/(1 − 0.17) ≈ 2.02ms, W_bulk ≈ 7.2ms.
    let (u, b) = (mean(&rs, class("urgent")), mean(&rs, class("bulk")));
    assert!((u / 2.024 - 1.0).abs() < 0.06, "urgent {u}");
    assert!(b > 3.0 * u, "bulk {b} vs urgent {u}");
}

fn fan_out(wait: Value) -> Value {
    json!({
        "duration": "60s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 200}}, "target": "front"}},
        "components": {
            "front": {"kind": "service", "workers": 100, "handler": [{"fan_out": ["a", "b", "c"], "wait": wait}]},
            "a": {"kind": "service", "workers": 100, "service_time": {"exponential": {"mean": "10ms"}}},
            "b": {"kind": "service", "workers": 100, "service_time": {"exponential": {"mean": "10ms"}}},
            "c": {"kind": "service", "workers": 100, "service_time": {"exponential": {"mean": "10ms"}}}
        }
    })
}

#[test]
fn fan_out_waits_for_all_any_or_k() {
    // Three independent Exp(10ms) answers, no queueing (ample workers): the k-th fastest
    // has mean 10·(H(3) − H(3−k)) ms: 3.33 for any, 8.33 for 2 of 3, 18.33 for all.
    let w = |v: Value| mean(&runs(v, 3), |r| r.workloads["w"].latency.mean_ms);
    let any = w(fan_out(json!("any")));
    let two = w(fan_out(json!({"k": 2})));
    let all = w(fan_out(json!("all")));
    assert!((any / 3.333 - 1.0).abs() < 0.04, "any {any}");
    assert!((two / 8.333 - 1.0).abs() < 0.04, "2 of 3 {two}");
    assert!((all / 18.333 - 1.0).abs() < 0.04, "all {all}");
}

#[test]
fn weighted_and_hashed_balancing_spread_as_asked() {
    let v = |policy: Value| {
        let mut lb = json!({"kind": "load_balancer", "backends": "s"});
        for (k, x) in policy.as_object().unwrap() {
            lb[k] = x.clone();
        }
        json!({
            "duration": "20s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 1000}}, "keys": {"uniform": {"keys": 50}}, "target": "lb"}},
            "components": {"lb": lb, "s": {"kind": "service", "replicas": 3, "workers": 8, "service_time": {"constant": "1ms"}}}
        })
    };
    let r = &runs(
        v(json!({"policy": "weighted_round_robin", "weights": [3, 2, 1]})),
        1,
    )[0];
    let arrived: Vec<f64> = r.components["s"]
        .instances
        .iter()
        .map(|i| i.metrics["arrived"])
        .collect();
    let total: f64 = arrived.iter().sum();
    for (a, share) in arrived.iter().zip([0.5, 1.0 / 3.0, 1.0 / 6.0]) {
        assert!((a / total - share).abs() < 0.002, "{arrived:?}");
    }
    // Hash of the key: with 50 keys over 3 instances, each key always lands on one
    // instance, so the shares follow the keys (not exactly even), and two runs agree.
    let h1 = &runs(v(json!({"policy": "hash_key"})), 1)[0];
    let shares: Vec<f64> = h1.components["s"]
        .instances
        .iter()
        .map(|i| i.metrics["arrived"])
        .collect();
    assert!(shares.iter().all(|s| *s > 0.0));
    assert!(h1.components["lb"].total["hot_spot_index"] >= 1.0);
}

#[test]
fn a_spike_raises_the_rate_only_during_the_spike() {
    let v = json!({
        "duration": "30s", "series_window": "1s",
        "workloads": {"w": {"arrivals": {"spike": {"base": 100, "peak": 1000, "at": "10s", "for": "5s"}}, "target": "s"}},
        "components": {"s": {"kind": "service", "workers": 4, "service_time": {"constant": "1ms"}}}
    });
    let r = &runs(v, 1)[0];
    let s = &r.series["w"];
    let before: u64 = s.completed[2..9].iter().sum();
    let during: u64 = s.completed[11..14].iter().sum();
    let after: u64 = s.completed[17..28].iter().sum();
    // 7 s at 100/s, 3 s at 1000/s, 11 s at 100/s (Poisson: a few % of noise).
    assert!(
        (before as f64 / 700.0 - 1.0).abs() < 0.15,
        "before {before}"
    );
    assert!(
        (during as f64 / 3000.0 - 1.0).abs() < 0.1,
        "during {during}"
    );
    assert!((after as f64 / 1100.0 - 1.0).abs() < 0.15, "after {after}");
    // A ramp from 0 to 1000/s over 20 s offers 10,000 requests.
    let ramp = json!({
        "duration": "20s",
        "workloads": {"w": {"arrivals": {"ramp": {"from": 0, "to": 1000, "start": "0s", "end": "20s"}}, "target": "s"}},
        "components": {"s": {"kind": "service", "workers": 4, "service_time": {"constant": "1ms"}}}
    });
    let n = runs(ramp, 1)[0].conservation.arrived as f64;
    assert!((n / 10_000.0 - 1.0).abs() < 0.05, "ramp offered {n}");
}

#[test]
fn a_route_is_a_tail_call_that_frees_the_worker() {
    // front calls a (1ms, then routes on through a balancer to b, 2ms): the answer reaches
    // front after 3ms, but a holds its worker only for its own 1ms. No queueing (ample
    // workers, constant times), so every number is exact up to the Poisson count.
    let v = json!({
        "duration": "20s", "warmup": "1s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "front"}},
        "components": {
            "front": {"kind": "service", "workers": 100, "handler": [{"call": "a"}]},
            "a": {"kind": "service", "workers": 100, "service_time": {"constant": "1ms"},
                  "handler": [{"work": "service_time"}, {"route": {"lb": 1.0}}]},
            "lb": {"kind": "load_balancer", "backends": "b"},
            "b": {"kind": "service", "workers": 100, "service_time": {"constant": "2ms"}}
        }
    });
    let r = &runs(v, 1)[0];
    assert!(r.conservation.holds);
    let lat = &r.workloads["w"].latency;
    assert!((lat.mean_ms - 3.0).abs() < 0.01, "latency {}", lat.mean_ms);
    let x = r.workloads["w"].goodput_per_s;
    let busy = |c: &str| r.components[c].total["busy_workers_mean"];
    assert!(
        (busy("a") / (x * 0.001) - 1.0).abs() < 0.02,
        "a {}",
        busy("a")
    );
    assert!((busy("front") / (x * 0.003) - 1.0).abs() < 0.02);
    assert_eq!(
        r.components["a"].total["completed"],
        r.components["b"].total["completed"]
    );

    // A route back into the caller: each visit to a returns to front with 0.5, where a new
    // visit calls a again. Visits per request to front: 1 / (1 − 0.5) = 2.
    let v = json!({
        "duration": "20s", "warmup": "1s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "front"}},
        "components": {
            "front": {"kind": "service", "workers": 100, "handler": [{"call": "a"}]},
            "a": {"kind": "service", "workers": 100, "service_time": {"constant": "1ms"},
                  "handler": [{"work": "service_time"}, {"route": {"front": 0.5}}]}
        }
    });
    let r = &runs(v, 1)[0];
    assert!(r.conservation.holds);
    let visits = r.components["front"].total["throughput_per_s"] / r.workloads["w"].goodput_per_s;
    assert!((visits - 2.0).abs() < 0.05, "visits {visits}");
}

/// A balancer whose backends pass its calls on as tail calls (a service ending in a
/// `route`, an asynchronous service ending in a `call`, a shard router): the answer comes
/// back from another instance than the one called, and the balancer still counts it
/// against the backend it chose. Least connections keeps the backends even, and every
/// request is answered.
#[test]
fn a_balancer_hears_back_through_tail_calls() {
    let service = |extra: Value| {
        let mut s = json!({"kind": "service", "replicas": 3,
                           "service_time": {"exponential": {"mean": "1ms"}}});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let fronts = [
        service(json!({"handler": [{"work": "service_time"}, {"route": {"b": 1.0}}]})),
        service(json!({"async": true, "handler": [{"work": "service_time"}, {"call": "b"}]})),
        json!({"kind": "shards", "replicas": 3, "shards": ["b", "c"]}),
    ];
    for front in fronts {
        let v = json!({
            "duration": "20s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 1500}},
                                "keys": {"uniform": {"keys": 1000}}, "target": "lb"}},
            "components": {
                "lb": {"kind": "load_balancer", "policy": "least_connections", "backends": "a"},
                "a": front,
                "b": {"kind": "service", "replicas": 2, "workers": 4,
                      "service_time": {"exponential": {"mean": "1ms"}}},
                "c": {"kind": "service", "workers": 4,
                      "service_time": {"exponential": {"mean": "1ms"}}}
            }
        });
        let r = &runs(v.clone(), 1)[0];
        let w = &r.workloads["w"];
        assert_eq!(w.failed, 0, "{v}");
        assert!(w.completed > 25_000, "{v}: {}", w.completed);
        let hot = r.components["lb"].total["hot_spot_index"];
        assert!(
            hot < 1.1,
            "{v}: least connections uneven, hot-spot index {hot}"
        );
    }
}
