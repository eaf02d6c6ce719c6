//! Gray failures on a database (issue 11 point 1, with issue 10's "the faults reach every
//! kind the same way"): `slow` multiplies a copy's read and write times, `errors` fails a
//! share of the calls it would serve (cause `injected`), `workers` caps the workers that
//! take calls; each from its own fault, as on a service.

use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn run(v: &Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"));
    let r = replicate(&m, 7, 1).unwrap().remove(0);
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

fn at(r: &RunResult, instance: &str, metric: &str) -> f64 {
    let c = &r.components["db"];
    let i = c.instances.iter().find(|i| i.name == instance);
    i.unwrap_or_else(|| panic!("no instance {instance}"))
        .metrics[metric]
}

/// 800 reads a second straight to a database of a primary and two replicas (2 workers
/// each, 2 ms per read), picked by `balance`, for 20 s; `faults` as given.
fn replicated_reads(balance: &str, faults: Value) -> Value {
    json!({
        "duration": "20s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 800}},
                            "classes": {"read": 1.0}, "target": "db"}},
        "components": {"db": {"kind": "database", "replicas": 2, "workers": 2,
                              "balance": balance,
                              "service_time": {"exponential": {"mean": "2ms"}}}},
        "faults": faults
    })
}

/// 50 writes a second to a lone primary with 8 workers, 10 ms per write (so nearly no
/// queueing), for 20 s; `faults` as given.
fn writes(faults: Value) -> Value {
    json!({
        "duration": "20s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 50}},
                            "classes": {"write": 1.0}, "target": "db"}},
        "components": {"db": {"kind": "database", "workers": 8,
                              "service_time": {"constant": "10ms"}}},
        "faults": faults
    })
}

#[test]
fn a_slowed_replica_behind_least_connections_gets_fewer_reads() {
    let slow = json!([{"target": "db", "instance": 1, "slow": {"factor": 5}, "at": "0s"}]);
    let lc = run(&replicated_reads("least_connections", slow.clone()));
    let (slowed, healthy) = (
        at(&lc, "db.replica[0]", "reads"),
        at(&lc, "db.replica[1]", "reads"),
    );
    assert!(slowed < 0.6 * healthy, "{slowed} {healthy}");
    // Round robin gives it its half whatever its speed: more than it can serve
    // (400/s of 10 ms on 2 workers), so it is saturated.
    let rr = run(&replicated_reads("round_robin", slow));
    let u_slow = at(&rr, "db.replica[0]", "utilization");
    assert!(u_slow > 0.95, "{u_slow}");
}

#[test]
fn a_slowed_primary_raises_write_latency_by_about_the_factor() {
    let base = run(&writes(json!([])));
    let slowed = run(&writes(
        json!([{"target": "db", "slow": {"factor": 3}, "at": "0s"}]),
    ));
    let (b, s) = (
        base.workloads["w"].latency.mean_ms,
        slowed.workloads["w"].latency.mean_ms,
    );
    assert!((9.9..10.5).contains(&b), "{b}");
    assert!((2.85..3.15).contains(&(s / b)), "{b} {s}");
}

#[test]
fn a_database_fails_its_error_share_and_serves_on_its_cut_workers() {
    let r = run(&writes(
        json!([{"target": "db", "errors": {"share": 0.5}, "at": "0s"}]),
    ));
    let w = &r.workloads["w"];
    let injected = w.errors["injected"] as f64;
    let share = injected / (injected + w.completed as f64);
    assert!((0.45..0.55).contains(&share), "{share}");
    // One worker left of eight: 50/s of 10 ms each now queue (ρ = 0.5, M/D/1 wait 5 ms).
    let base = run(&writes(json!([])));
    let cut = run(&writes(
        json!([{"target": "db", "workers": {"to": 1}, "at": "0s"}]),
    ));
    let (b, c) = (
        base.workloads["w"].latency.mean_ms,
        cut.workloads["w"].latency.mean_ms,
    );
    assert!(c > b + 3.0, "{b} {c}");
    // A cut to more workers than it has is refused, as on a service.
    let stderr = crate::support::check_refusal(&writes(json!([
        {"target": "db", "workers": {"to": 8}, "at": "0s"}
    ])));
    assert!(stderr.contains("faults[0].workers.to"), "{stderr}");
    assert!(stderr.contains("between 1 and 7"), "{stderr}");
}
