//! Bounded memory (issue 8, point 2): every quantity an input can make large has a limit,
//! checked before anything runs, with a message naming the field or file and exit status 2.
//! The tests use inputs that are refused cheaply (sparse files, counts just over a limit),
//! never ones that allocate what the limit guards against.

use crate::support::scalesim;
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "duration": "10s",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 100}}, "target": "app"}},
        "components": {"app": {"kind": "service", "workers": 2,
                               "service_time": {"exponential": {"mean": "1ms"}}}}
    })
}

/// Runs `scalesim ARGS`; asserts exit status 2, no panic, and each needle in stderr.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let out = scalesim().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "{args:?}: stderr lacks {n:?}:\n{stderr}"
        );
    }
    stderr
}

/// Writes `model` into a fresh folder; returns the folder and the file's path.
fn write_model(model: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, model.to_string()).unwrap();
    let path = file.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn series_windows_are_bounded_and_never_zero() {
    let (_dir, file) = write_model(&base());
    refused(
        &["check", &file, "--set", "series_window=1ns"],
        &[
            "series_window",
            "\"1ns\"",
            "10000000000 windows",
            "100000",
            "at least \"100us\"",
        ],
    );
    refused(
        &["run", &file, "--set", "series_window=0s"],
        &["series_window: must be longer than zero"],
    );
    // At the limit it runs, with that many windows.
    let out = scalesim()
        .args([
            "run",
            &file,
            "--format",
            "json",
            "--set",
            "series_window=100us",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let windows = doc["runs"][0]["series"]["users"]["completed"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(windows, 100_000);
}

#[test]
fn a_model_file_that_never_ends_or_is_too_large_is_refused() {
    refused(
        &["check", "/dev/zero"],
        &["/dev/zero", "larger than 16 MiB"],
    );
    // A sparse file: refused from its size, without reading it.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((16 << 20) + 1)
        .unwrap();
    let big = big.to_str().unwrap();
    refused(&["run", big], &[big, "larger than 16 MiB"]);
    // Experiments are read the same way.
    let exp = dir.path().join("big-experiment.json");
    std::fs::File::create(&exp)
        .unwrap()
        .set_len((16 << 20) + 1)
        .unwrap();
    refused(
        &["sweep", exp.to_str().unwrap()],
        &["big-experiment.json", "larger than 16 MiB"],
    );
}

#[test]
fn a_trace_file_too_large_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("huge.csv");
    std::fs::File::create(&trace)
        .unwrap()
        .set_len((256 << 20) + 1)
        .unwrap();
    let mut m = base();
    m["workloads"]["users"]["arrivals"] = json!({"trace": {"file": "huge.csv"}});
    let file = dir.path().join("m.json");
    std::fs::write(&file, m.to_string()).unwrap();
    refused(
        &["check", file.to_str().unwrap()],
        &[
            "workloads.users.arrivals.trace.file",
            "huge.csv",
            "larger than 256 MiB",
        ],
    );
}

#[test]
fn request_classes_are_bounded() {
    let mut m = base();
    let mix: serde_json::Map<String, Value> =
        (0..10_001).map(|i| (format!("c{i}"), json!(1))).collect();
    m["workloads"]["users"]["classes"] = Value::Object(mix);
    let (_dir, file) = write_model(&m);
    refused(
        &["check", &file],
        &["at most 10000 request classes, got 10001"],
    );

    // 201 components (200 + app) and a workload, 4975 classes: 202 × 4975 > 1,000,000.
    let mut m = base();
    let mix: serde_json::Map<String, Value> =
        (0..4975).map(|i| (format!("c{i}"), json!(1))).collect();
    m["workloads"]["users"]["classes"] = Value::Object(mix);
    for i in 0..200 {
        m["components"][format!("s{i}")] =
            json!({"kind": "service", "service_time": {"constant": "1ms"}});
    }
    let (_dir, file) = write_model(&m);
    refused(
        &["check", &file],
        &["(components + workloads) × request classes may be at most 1000000, got 202 × 4975"],
    );
}
