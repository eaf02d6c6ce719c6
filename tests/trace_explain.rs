//! `run --trace N` (the lives of sampled requests as Chrome Trace Event JSON) and
//! `run --explain` (where the requests' time went).

use crate::support::{json_ok, scalesim, stdout_ok};
use serde_json::{Value, json};
use std::path::Path;

/// Runs `model` with `args`, the trace written to `file`; returns the trace, parsed.
fn trace(model: &Path, file: &Path, args: &[&str]) -> (Value, Vec<u8>) {
    stdout_ok(
        scalesim()
            .arg("run")
            .arg(model)
            .args(["--trace", "25", "-q", "--trace-file"])
            .arg(file)
            .args(args),
    );
    let bytes = std::fs::read(file).unwrap();
    (serde_json::from_slice(&bytes).unwrap(), bytes)
}

/// A span of a track: start, end, name.
type Span = (f64, f64, String);

/// Checks that the complete ("X") events of each track nest: each starts after the one
/// enclosing it and ends before it does.
fn assert_nested(events: &[Value]) {
    let mut tracks: std::collections::BTreeMap<(u64, u64), Vec<Span>> = Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(dur >= 0.0, "{e}");
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        tracks
            .entry(key)
            .or_default()
            .push((ts, ts + dur, e["name"].to_string()));
    }
    const EPS: f64 = 1e-6;
    for (track, mut spans) in tracks {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<Span> = Vec::new();
        for s in spans {
            while stack
                .last()
                .is_some_and(|top| s.0 >= top.1 - EPS && s.1 > top.1 + EPS)
            {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(
                    s.1 <= top.1 + EPS || s.0 >= top.1 - EPS,
                    "track {track:?}: {s:?} overlaps {top:?} without nesting in it"
                );
            }
            stack.push(s);
        }
    }
}

#[test]
fn a_trace_has_the_requests_asked_for_nested_and_the_same_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let model = Path::new("models/fan-out.json");
    let (doc, bytes) = trace(model, &dir.path().join("a.json"), &["--seed", "3"]);
    let events = doc["traceEvents"].as_array().unwrap();
    for e in events {
        for field in ["ph", "name", "pid", "tid"] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
        if e["ph"] == "X" {
            assert!(e["ts"].is_number() && e["dur"].is_number(), "{e}");
        }
    }
    let requests: Vec<&Value> = events.iter().filter(|e| e["cat"] == "request").collect();
    assert_eq!(requests.len(), 25);
    assert_eq!(doc["otherData"]["requests"], 25);
    // A fan-out of four: each request visits the front end and the four shards.
    let visits = events.iter().filter(|e| e["cat"] == "visit").count();
    assert_eq!(visits, 25 * 5);
    for name in ["queue", "service", "calls"] {
        assert!(
            events.iter().any(|e| e["name"] == name),
            "no {name} stretch"
        );
    }
    assert_nested(events);
    // The same seed: the same file, whatever the number of threads.
    let (_, again) = trace(
        model,
        &dir.path().join("b.json"),
        &["--seed", "3", "--replications", "2", "--jobs", "2"],
    );
    assert_eq!(bytes, again);
    let (_, other) = trace(model, &dir.path().join("c.json"), &["--seed", "4"]);
    assert_ne!(bytes, other, "another seed samples other requests");
}

#[test]
fn a_trace_with_out_goes_to_the_folder_and_a_shipped_model_with_a_network_traces() {
    let dir = tempfile::tempdir().unwrap();
    stdout_ok(
        scalesim()
            .args([
                "run",
                "models/multi-zone.json",
                "--trace",
                "10",
                "-q",
                "--out",
            ])
            .arg(dir.path()),
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("trace.json")).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    assert_eq!(events.iter().filter(|e| e["cat"] == "request").count(), 10);
    assert!(
        events.iter().any(|e| e["name"] == "network"),
        "no network leg"
    );
    assert_nested(events);
}

#[test]
fn bad_trace_values_are_refused_before_the_run() {
    for (args, needle) in [
        (vec!["--trace", "0", "--trace-file", "t.json"], "0"),
        (
            vec!["--trace", "100001", "--trace-file", "t.json"],
            "100001",
        ),
        (vec!["--trace", "5"], "--trace-file"),
    ] {
        let out = scalesim()
            .args(["run", "models/fan-out.json", "-q"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!Path::new("t.json").exists());
    }
}

/// A line of three services, the middle one `slow_ms` per request.
fn line(slow_ms: f64) -> Value {
    // Each tier holds a worker while it waits on the next: the front and back have many,
    // so that only the middle one queues.
    let station = |ms: f64, next: Option<&str>| {
        let workers = if ms == slow_ms { 1 } else { 64 };
        let mut s = json!({
            "kind": "service", "workers": workers,
            "service_time": {"exponential": {"mean": format!("{ms}ms")}}
        });
        if let Some(n) = next {
            s["handler"] = json!([{"work": "service_time"}, {"call": n}]);
        }
        s
    };
    json!({
        "name": "line", "duration": "60s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "front"}},
        "components": {
            "front": station(0.25, Some("middle")),
            "middle": station(slow_ms, Some("back")),
            "back": station(0.25, None)
        }
    })
}

fn explain(model: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, model.to_string()).unwrap();
    json_ok(
        scalesim()
            .arg("run")
            .arg(&file)
            .args(["--explain", "--format", "json", "-q"]),
    )
}

#[test]
fn the_parts_of_a_request_add_up_to_its_latency_and_the_slow_tier_is_named() {
    let doc = explain(&line(6.0));
    let run_mean = doc["runs"][0]["workloads"]["w"]["latency"]["mean_ms"]
        .as_f64()
        .unwrap();
    let b = &doc["explain"][0];
    assert_eq!(b["workload"], "w");
    let mean = b["latency_mean_ms"].as_f64().unwrap();
    assert!(
        (mean - run_mean).abs() < 1e-4 * run_mean,
        "{mean} vs {run_mean}"
    );
    let comps = b["components"].as_array().unwrap();
    assert_eq!(comps.len(), 3);
    let part = |c: &Value, k: &str| c[k]["mean_ms"].as_f64().unwrap();
    // Along a line, the critical path is every visit: queue + service + network at each
    // tier add up to the latency, and so do the critical-path means.
    let parts: f64 = comps
        .iter()
        .map(|c| part(c, "queue") + part(c, "service") + part(c, "network"))
        .sum();
    let critical: f64 = comps
        .iter()
        .map(|c| c["critical_path_mean_ms"].as_f64().unwrap())
        .sum();
    assert!((parts - mean).abs() < 1e-3 * mean, "{parts} vs {mean}");
    assert!(
        (critical - mean).abs() < 1e-3 * mean,
        "{critical} vs {mean}"
    );
    // Each tier waits on the next: its calls are the rest of the line.
    let front = &comps[0];
    let below: f64 = comps[1..]
        .iter()
        .map(|c| part(c, "queue") + part(c, "service"))
        .sum();
    assert!((part(front, "calls") - below).abs() < 1e-3 * mean);
    // The queue wait measured per request is the one the service reports.
    let middle_wait = doc["runs"][0]["components"]["middle"]["total"]["wait_mean_ms"]
        .as_f64()
        .unwrap();
    assert!((part(&comps[1], "queue") - middle_wait).abs() < 0.02 * middle_wait + 1e-3);
    // The slow requests spend their time in the slow tier.
    let slow = &b["slow"]["critical_path"][0];
    assert_eq!(slow["component"], "middle", "{}", b["slow"]);
    assert!(slow["share"].as_f64().unwrap() > 0.8, "{}", b["slow"]);
}

#[test]
fn the_explanation_is_only_there_when_asked_for_and_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, line(1.0).to_string()).unwrap();
    let plain = json_ok(
        scalesim()
            .arg("run")
            .arg(&file)
            .args(["--format", "json", "-q"]),
    );
    assert!(plain.get("explain").is_none());
    let explained = explain(&line(1.0));
    // Watching a run does not change it.
    assert_eq!(plain["runs"], explained["runs"]);
    let table = String::from_utf8(stdout_ok(
        scalesim().arg("run").arg(&file).args(["--explain", "-q"]),
    ))
    .unwrap();
    assert!(table.contains("where the time went: workload w"), "{table}");
    assert!(table.contains("slow requests (p99"), "{table}");
}
