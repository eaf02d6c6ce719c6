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

#[test]
fn an_overloaded_model_stops_at_max_in_flight_with_its_results() {
    // 1000 requests/s into one worker serving 10 ms each (ρ = 10): 900 more arrive each
    // second than finish, so 2000 are in flight at about t = 2.2 s, long before the hour.
    let mut m = base();
    m["duration"] = json!("1h");
    m["max_in_flight"] = json!(2000);
    m["workloads"]["users"]["arrivals"] = json!({"poisson": {"rate": 1000}});
    m["components"]["app"] =
        json!({"kind": "service", "workers": 1, "service_time": {"constant": "10ms"}});
    let (_dir, file) = write_model(&m);
    let out = scalesim()
        .args(["run", &file, "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stopped early at t = ") && stderr.contains("max_in_flight"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &doc["runs"][0];
    let at = run["stopped_early"]["at_s"].as_f64().unwrap();
    assert!((1.9..2.6).contains(&at), "stopped at {at}s");
    assert_eq!(run["stopped_early"]["in_flight"], json!(2000));
    assert_eq!(run["window_end_s"].as_f64().unwrap(), at);
    assert_eq!(run["conservation"]["in_flight"], json!(2000));
    assert_eq!(run["conservation"]["holds"], json!(true));
    // Served at full speed up to the stop: 100 per second.
    let throughput = run["components"]["app"]["total"]["throughput_per_s"]
        .as_f64()
        .unwrap();
    assert!((throughput - 100.0).abs() < 5.0, "{throughput}");
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("stopped early")),
        "{}",
        doc["warnings"]
    );
    // The table says it too.
    let table = scalesim().args(["run", &file]).output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("stopped early at t = "));

    // A run below the limit is untouched: no stop, the window ends at duration.
    let mut calm = m.clone();
    calm["duration"] = json!("1s");
    calm["workloads"]["users"]["arrivals"] = json!({"poisson": {"rate": 50}});
    let (_dir2, file) = write_model(&calm);
    let doc: Value = serde_json::from_slice(
        &scalesim()
            .args(["run", &file, "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(doc["runs"][0].get("stopped_early").is_none());
    assert_eq!(doc["runs"][0]["window_end_s"], json!(1.0));
}

#[test]
fn max_in_flight_is_checked_before_the_run() {
    let mut m = base();
    m["max_in_flight"] = json!(0);
    let (_dir, file) = write_model(&m);
    refused(
        &["check", &file],
        &["max_in_flight: must be between 1 and 100000000, got 0"],
    );
    let mut m = base();
    m["max_in_flight"] = json!(50);
    m["workloads"]["users"]["arrivals"] =
        json!({"closed": {"users": 100, "think": {"constant": "1ms"}}});
    let (_dir, file) = write_model(&m);
    refused(
        &["run", &file],
        &["max_in_flight: 50 is below the 100 closed-loop users"],
    );
}

#[test]
fn refused_requests_do_not_keep_their_client_timeouts_in_memory() {
    use scalesim::model::{Format, parse_model_str};
    // 100,000 requests/s at one worker with room for one waiting request: nearly all are
    // refused at once, each leaving a client timeout due in an hour. Kept until they fire,
    // 200,000 of them would sit in the calendar at the end of the 2 s.
    let mut m = base();
    m["duration"] = json!("2s");
    m["workloads"]["users"] = json!({"arrivals": {"poisson": {"rate": 100_000}},
                                     "target": "app", "timeout": "1h"});
    m["components"]["app"] = json!({"kind": "service", "workers": 1, "queue": 1,
                                    "service_time": {"constant": "1ms"}});
    let model =
        parse_model_str(&m.to_string(), Format::Json, std::path::Path::new("."), &[]).unwrap();
    let mut sim = scalesim::topology::simulation(&model, 3);
    sim.run().unwrap();
    let ctx = sim.context();
    assert!(ctx.totals.arrived > 190_000, "{}", ctx.totals.arrived);
    assert!(ctx.totals.failed > 180_000, "{}", ctx.totals.failed);
    let pending = ctx.calendar.len();
    assert!(
        pending <= 70_000,
        "{pending} events pending: stale timeouts were kept"
    );
    // The results are those of a run that kept them: every refusal is counted once.
    let r = scalesim::results::run_once(&model, 3).unwrap();
    assert!(r.conservation.holds);
    // No timeout fired (they are due in an hour): every failure is a refusal.
    assert_eq!(r.workloads["users"].errors["timeout"], 0);
    assert_eq!(
        r.workloads["users"].errors["queue_full"],
        r.workloads["users"].failed
    );
}

#[test]
fn a_huge_sweep_grid_is_refused_from_its_size_before_it_is_built() {
    // 1000 × 1000 × 1000 points: 10^9 models if expanded. Refused from the product of the
    // axes' lengths, at once.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), base().to_string()).unwrap();
    let axis: Vec<u32> = (1..=1000).collect();
    let exp = json!({
        "name": "huge",
        "model": "m.json",
        "sweep": {
            "workloads.users.arrivals.poisson.rate": axis,
            "components.app.workers": axis,
            "seed": axis
        }
    });
    let file = dir.path().join("e.json");
    std::fs::write(&file, exp.to_string()).unwrap();
    let started = std::time::Instant::now();
    refused(
        &["sweep", file.to_str().unwrap()],
        &[
            "sweep: the experiment has 1000000000 models to run (1000 × 1000 × 1000 point(s) × 1 variant(s)), more than the 10000 allowed",
        ],
    );
    assert!(started.elapsed().as_secs() < 20);
    // Within the models limit, too many runs: 100 points × 100,000 replications.
    let exp = json!({
        "name": "many-runs",
        "model": "m.json",
        "replications": 100_000,
        "sweep": {"components.app.workers": (1..=100).collect::<Vec<u32>>()}
    });
    std::fs::write(&file, exp.to_string()).unwrap();
    refused(
        &["sweep", file.to_str().unwrap()],
        &[
            "replications: the experiment has 10000000 runs",
            "1000000 allowed",
        ],
    );
}

#[test]
fn run_replications_are_refused_when_their_results_would_not_fit() {
    // 100,000 series windows take about 10 MB of each result: 500 replications would keep
    // about 5 GB. Refused before anything runs, with the largest count allowed.
    let (_dir, file) = write_model(&base());
    let started = std::time::Instant::now();
    refused(
        &[
            "run",
            &file,
            "--set",
            "series_window=100us",
            "--replications",
            "500",
        ],
        &[
            "--replications: 500 replications",
            "more than the 4 GiB allowed; use at most 428,",
        ],
    );
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn a_sweep_counts_its_runs_at_max_replications_before_the_first_run() {
    // With --precision a point may run up to --max-replications: that many are counted
    // (runs, and the memory of their summary), not the 2 of the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), base().to_string()).unwrap();
    let file = dir.path().join("e.json");
    let out = dir.path().join("out");
    let sweep = |points: u32, max: &str| {
        let exp = json!({
            "name": "precise",
            "model": "m.json",
            "replications": 2,
            "sweep": {"components.app.workers": (1..=points).collect::<Vec<u32>>()}
        });
        std::fs::write(&file, exp.to_string()).unwrap();
        vec![
            "sweep".to_string(),
            file.to_str().unwrap().to_string(),
            "--out".into(),
            out.to_str().unwrap().to_string(),
            "--precision".into(),
            "1%".into(),
            "--metric".into(),
            "workloads.users.latency.p99_ms".into(),
            "--max-replications".into(),
            max.into(),
        ]
    };
    let args = sweep(20, "100000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        &args,
        &[
            "--max-replications: the experiment may make 2000000 runs (20 model(s) × 100000 replications), more than the 1000000 allowed",
        ],
    );
    // Few enough runs, but their summary would not fit.
    let args = sweep(2, "400000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        &args,
        &[
            "--max-replications: the results of 800000 runs (2 model(s) × 400000 replications) would take about",
            "GiB of memory while they are summarised, more than the 4 GiB allowed; use at most",
        ],
    );
    assert!(!out.join("runs").exists(), "nothing ran");
    // The same count in the file is refused with the file's field.
    let exp = json!({
        "name": "precise",
        "model": "m.json",
        "replications": 2,
        "precision": {"metric": "workloads.users.latency.p99_ms", "relative": 0.01, "max_replications": 400000},
        "sweep": {"components.app.workers": [1, 2]}
    });
    std::fs::write(&file, exp.to_string()).unwrap();
    refused(
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["e.json: precision.max_replications: the results of 800000 runs"],
    );
}

#[test]
fn compare_results_are_bounded_before_the_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, base().to_string()).unwrap();
    std::fs::write(&b, base().to_string()).unwrap();
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    refused(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--replications",
            "400000",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            "--replications: the results of 800000 runs (2 model(s) × 400000 replications) would take about",
            "more than the 4 GiB allowed; use at most",
        ],
    );
    assert!(started.elapsed().as_secs() < 20);
    assert!(!out.join("runs").exists(), "nothing ran");
}

#[test]
fn capacity_replications_are_refused_when_their_results_would_not_fit() {
    // Each load keeps its replications' results together, like run --replications.
    let (_dir, file) = write_model(&base());
    let started = std::time::Instant::now();
    refused(
        &[
            "capacity",
            &file,
            "--slo",
            "p99<50ms",
            "--set",
            "series_window=100us",
            "--replications",
            "500",
        ],
        &[
            "--replications: 500 replications",
            "in memory at each load, more than the 4 GiB allowed; use at most 428",
        ],
    );
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn the_most_instances_a_model_may_have_run_in_little_memory() {
    // 100,000 service instances (the limit) with a wait histogram each: the histograms
    // grow only as far as the waits they hold, so the run fits in 1.2 GB of address space
    // (it took 3.5 GB of memory when each histogram held the whole range up to a day).
    let mut m = base();
    m["duration"] = json!("1s");
    m["workloads"]["users"]["arrivals"]["poisson"]["rate"] = json!(100_000);
    m["components"]["app"]["replicas"] = json!(100_000);
    m["components"]["app"]["workers"] = json!(1);
    m["components"]["app"]["service_time"] = json!({"exponential": {"mean": "5ms"}});
    let (_dir, path) = write_model(&m);
    let bin = env!("CARGO_BIN_EXE_scalesim");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 1200000; exec \"$0\" run \"$1\" --format json >/dev/null")
        .arg(bin)
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_sweep_marks_the_points_whose_runs_stopped_early() {
    // Two loads into one 10 ms worker: 50/s is calm, 1000/s passes max_in_flight = 200
    // at about 0.2 s. The sweep table marks the overloaded point and says why.
    let mut m = base();
    m["duration"] = json!("5s");
    m["max_in_flight"] = json!(200);
    m["components"]["app"] =
        json!({"kind": "service", "workers": 1, "service_time": {"constant": "10ms"}});
    let (dir, file) = write_model(&m);
    let exp = json!({
        "name": "overload",
        "model": file,
        "replications": 2,
        "sweep": {"workloads.users.arrivals.poisson.rate": [50, 1000]}
    });
    let exp_file = dir.path().join("exp.json");
    std::fs::write(&exp_file, exp.to_string()).unwrap();
    let out_dir = dir.path().join("out");
    let out = scalesim()
        .args(["sweep", exp_file.to_str().unwrap(), "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2*"), "{stdout}");
    assert!(
        stdout.contains("* runs stopped early at the model's max_in_flight")
            && stdout.contains("workloads.users.arrivals.poisson.rate=1000, variant base: 2 of 2"),
        "{stdout}"
    );
    assert!(!stdout.contains("rate=50,"), "{stdout}");
}

#[test]
fn a_ring_over_its_point_limit_is_refused_before_it_is_built() {
    // 5,000 shards of 10,000 points each would be a 50-million-point ring (about 1.4 GB
    // when it was built before the check): refused within 300 MB of address space.
    let dir = tempfile::tempdir().unwrap();
    let mut components = serde_json::Map::new();
    for i in 0..5000 {
        components.insert(
            format!("s{i}"),
            json!({"kind": "service", "service_time": {"constant": "1ms"}}),
        );
    }
    let shards: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
    components.insert(
        "front".into(),
        json!({"kind": "shards", "shards": shards,
                           "strategy": {"consistent": {"vnodes": 10000}}}),
    );
    let model = json!({"duration": "1s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 100}}, "target": "front"}},
        "components": components});
    let path = dir.path().join("ring.json");
    std::fs::write(&path, model.to_string()).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 300000; exec \"$0\" check \"$1\"")
        .arg(env!("CARGO_BIN_EXE_scalesim"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("components.front.strategy.consistent.vnodes"),
        "{stderr}"
    );
}
