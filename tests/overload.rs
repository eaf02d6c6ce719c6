//! Load-dependent service time (a service's `slowdown`): each drawn service time is
//! multiplied by a function of the instance's load when the work starts; its validation at
//! field paths; the estimate's caveat; and the lesson of models/overload-collapse.json: with
//! the slowdown a short burst leaves the service collapsed long after it, without it the
//! queue drains.

use crate::support::scalesim;
use scalesim::analysis::estimate;
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn parse(v: &Value) -> Result<scalesim::model::Model, Vec<(String, String)>> {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .map_err(|errs| errs.into_iter().map(|e| (e.path, e.message)).collect())
}

fn run(v: Value) -> RunResult {
    replicate(&parse(&v).unwrap(), 1, 1).unwrap().remove(0)
}

/// Three requests 1 ms apart to one worker of a constant 10 ms, slowed by `slowdown`.
fn three_requests(slowdown: Value) -> Value {
    json!({
        "duration": "1s",
        "series_window": "1s",
        "workloads": {"w": {"arrivals": {"constant": {"rate": 1000}}, "requests": 3,
                            "target": "app"}},
        "components": {"app": {"kind": "service", "service_time": {"constant": "10ms"},
                               "slowdown": slowdown}}
    })
}

/// Mean latency (ms) of the answers of workload `w`, from the exact sums of the series.
fn mean_latency_ms(r: &RunResult) -> f64 {
    r.series["w"].latency_mean_ms[0]
}

#[test]
fn a_slowdown_multiplies_the_service_time_by_the_load_when_work_starts() {
    // Arrivals at 1, 2 and 3 ms. The first starts alone (in system 1: ×1) and ends at
    // 11 ms; the second starts with the third waiting (in system 2: ×2, 20 ms) and ends at
    // 31 ms; the third starts alone again (×1) and ends at 41 ms. Latencies 10, 29, 38 ms.
    let r = run(three_requests(
        json!({"by": "in_system", "linear": {"knee": 1, "slope": 1}}),
    ));
    assert!(
        (mean_latency_ms(&r) - 77.0 / 3.0).abs() < 1e-9,
        "{}",
        mean_latency_ms(&r)
    );
    // By requests in service (always 1 here): the knee 1 is never passed, so times are as
    // drawn: 10, 19, 28 ms.
    let r = run(three_requests(
        json!({"by": "in_service", "linear": {"knee": 1, "slope": 1}}),
    ));
    assert!((mean_latency_ms(&r) - 19.0).abs() < 1e-9);
    // Exponential with the knee at 0: every start counts itself, e^(ln 2 × 1) = 2 per
    // request alone, e^(ln 2 × 2) = 4 with one waiting, capped at 3: 20, 20 + 30 - 1 = 49,
    // 50 + 20 - 2 = 68 ms.
    let r = run(three_requests(
        json!({"by": "in_system", "exponential": {"knee": 0, "rate": std::f64::consts::LN_2},
               "max": 3}),
    ));
    assert!(
        (mean_latency_ms(&r) - (20.0 + 49.0 + 68.0) / 3.0).abs() < 1e-6,
        "{}",
        mean_latency_ms(&r)
    );
}

#[test]
fn utilization_is_the_share_of_busy_workers() {
    // Two workers; requests 1 ms apart, 10 ms each. The first starts with 1 of 2 busy
    // (utilization 0.5, at the knee: ×1), the second with 2 of 2 (1.0: ×(1 + 2 × 0.5) = 2,
    // 20 ms), the third waits for the first (free at 11 ms) and starts with 2 of 2 busy: 20
    // ms. Latencies 10, 20, 28 ms.
    let mut m = three_requests(json!({"by": "utilization", "linear": {"knee": 0.5, "slope": 2}}));
    m["components"]["app"]["workers"] = json!(2);
    let r = run(m);
    assert!(
        (mean_latency_ms(&r) - 58.0 / 3.0).abs() < 1e-9,
        "{}",
        mean_latency_ms(&r)
    );
}

/// The errors (path, message) of the three-request model with `slowdown`.
fn slowdown_errors(slowdown: Value) -> Vec<(String, String)> {
    parse(&three_requests(slowdown)).err().unwrap_or_default()
}

#[test]
fn a_bad_slowdown_is_reported_at_its_field() {
    let p = "components.app.slowdown";
    let cases = [
        (
            json!({"linear": {"knee": 2, "slope": -0.5}}),
            format!("{p}.linear.slope"),
            "cannot make work faster",
        ),
        (
            json!({"exponential": {"knee": -1, "rate": 0.1}}),
            format!("{p}.exponential.knee"),
            "0 or more",
        ),
        (
            json!({"by": "utilization", "linear": {"knee": 1.5, "slope": 1}}),
            format!("{p}.linear.knee"),
            "below 1",
        ),
        (
            json!({"linear": {"knee": 2, "slope": 1}, "max": 0.5}),
            format!("{p}.max"),
            "1 or more",
        ),
        (json!({"by": "in_system"}), p.to_string(), "got none"),
        (
            json!({"linear": {"knee": 1, "slope": 1}, "exponential": {"knee": 1, "rate": 1}}),
            p.to_string(),
            "got both",
        ),
    ];
    for (slowdown, path, needle) in cases {
        let e = slowdown_errors(slowdown.clone());
        assert!(
            e.iter().any(|(ep, m)| *ep == path && m.contains(needle)),
            "{slowdown}: {e:?}"
        );
    }
    // Unknown names are caught by the reader, at their path.
    let e = slowdown_errors(json!({"by": "cpu", "linear": {"knee": 1, "slope": 1}}));
    assert!(e.iter().any(|(p, _)| p.contains("slowdown")), "{e:?}");
    let e = slowdown_errors(json!({"linear": {"knee": 1, "slop": 1}}));
    assert!(e.iter().any(|(p, _)| p.contains("slowdown")), "{e:?}");
}

#[test]
fn a_bad_slowdown_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    let m = three_requests(json!({"linear": {"knee": 2, "slope": -0.5}}));
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim()
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("components.app.slowdown.linear.slope"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_estimate_says_it_leaves_the_slowdown_out_and_when_it_never_applies() {
    let at = |rate: f64, slowdown: Value| {
        let mut m = three_requests(slowdown);
        m["workloads"]["w"]["arrivals"] = json!({"poisson": {"rate": rate}});
        estimate(&parse(&m).unwrap()).warnings
    };
    let slow = json!({"by": "in_system", "linear": {"knee": 4, "slope": 1}, "max": 5});
    let w = at(10.0, slow.clone());
    assert!(
        w.iter()
            .any(|w| w.starts_with("components.app:") && w.contains("leaves out its slowdown")),
        "{w:?}"
    );
    // 10 requests/s against a capacity of 20/s fully slowed (one worker, 10 ms × 5): no
    // collapse to warn of. At 50/s (50% busy unslowed) there is.
    assert!(!w.iter().any(|w| w.contains("metastable")), "{w:?}");
    let w = at(50.0, slow);
    assert!(
        w.iter()
            .any(|w| w.contains("at most 20 requests/s") && w.contains("metastable")),
        "{w:?}"
    );
    // One worker, so never more than one request in service: the knee 1 is never passed.
    let m = parse(&three_requests(
        json!({"by": "in_service", "linear": {"knee": 1, "slope": 1}}),
    ))
    .unwrap();
    let w = estimate(&m).warnings;
    assert!(w.iter().any(|w| w.contains("never applies")), "{w:?}");
    // Without a slowdown, nothing is said.
    let mut plain = three_requests(Value::Null);
    plain["components"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("slowdown");
    let w = estimate(&parse(&plain).unwrap()).warnings;
    assert!(!w.iter().any(|w| w.contains("slowdown")), "{w:?}");
}

fn shipped(sets: &[&str], seed: u64) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/overload-collapse.json");
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let m = scalesim::model::load_model_file(&path, &sets).unwrap();
    replicate(&m, seed, 1).unwrap().remove(0)
}

/// Failed share and mean latency (ms) of the users' answers in windows `from..` (2 s each).
fn after(r: &RunResult, from: usize) -> (f64, f64) {
    let s = &r.series["users"];
    let failed: u64 = s.failed[from..].iter().sum();
    let completed: u64 = s.completed[from..].iter().sum();
    let lat: f64 = s.completed[from..]
        .iter()
        .zip(&s.latency_mean_ms[from..])
        .map(|(n, l)| *n as f64 * l)
        .sum();
    let share = failed as f64 / (failed + completed).max(1) as f64;
    (share, lat / (completed.max(1) as f64))
}

#[test]
fn overload_collapse_a_burst_leaves_a_slowing_service_down_and_a_plain_one_recovers() {
    // The burst is at 30-32 s; windows are 2 s, so window 20 starts at 40 s, 8 s after it.
    const AFTER: usize = 20;
    for seed in [1, 2] {
        let slowed = shipped(&[], seed);
        let plain = shipped(&["components.app.slowdown.max=1"], seed);
        // Before the burst both are healthy.
        let before = |r: &RunResult| {
            let s = &r.series["users"];
            s.failed[5..15].iter().sum::<u64>()
        };
        assert_eq!(before(&slowed), 0);
        assert_eq!(before(&plain), 0);
        let (failed, _) = after(&slowed, AFTER);
        assert!(failed > 0.95, "seed {seed}: slowed, failed share {failed}");
        let (failed, latency) = after(&plain, AFTER);
        assert_eq!(failed, 0.0, "seed {seed}: plain");
        assert!(latency < 20.0, "seed {seed}: plain, latency {latency}");
        // The knobs the description names: a bounded queue and a shorter burst recover.
        for knob in [
            "components.app.queue=100",
            "workloads.users.arrivals.spike.for=\"0.5s\"",
            "components.app.slowdown.linear.slope=0.0005",
        ] {
            let r = shipped(&[knob], seed);
            let (failed, latency) = after(&r, AFTER);
            assert_eq!(failed, 0.0, "seed {seed}: {knob}");
            assert!(latency < 20.0, "seed {seed}: {knob}, latency {latency}");
        }
    }
}
