//! The command line: output formats, files written by --out, the schema, exit statuses.

use crate::support::{json_ok, scalesim, stdout_ok};
use serde_json::Value;

#[test]
fn committed_schema_matches_the_code() {
    let generated = scalesim::schema::model_schema_json();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/model.schema.json"
    ))
    .unwrap();
    assert!(
        generated == committed,
        "schema/model.schema.json is stale: regenerate it with `cargo run --release -- schema > schema/model.schema.json`"
    );
    let out = scalesim().arg("schema").output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["title"], "ModelSpec");
    assert!(v["properties"]["components"].is_object());
}

#[test]
fn run_writes_json_and_csv_with_out() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("result");
    let table = stdout_ok(scalesim().args([
        "run",
        "models/single-server.json",
        "--out",
        out_dir.to_str().unwrap(),
        "--seed",
        "3",
    ]));
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("utilization") && table.contains("p99") && table.contains("wait p99"),
        "{table}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("result.json")).unwrap())
            .unwrap();
    assert_eq!(json["manifest"]["seed"], 3);
    assert_eq!(json["manifest"]["model_hash"].as_str().unwrap().len(), 64);
    assert!(
        json["manifest"]["rng"]
            .as_str()
            .unwrap()
            .contains("Xoshiro256PlusPlus")
    );
    // The queue-wait distribution and the occupancy shares of the service.
    let web = &json["runs"][0]["components"]["web"];
    let wait = &web["wait"];
    assert!(wait["count"].as_u64().unwrap() > 0, "{web}");
    assert!(wait["p50_ms"].as_f64().unwrap() <= wait["p99_ms"].as_f64().unwrap());
    let shares: Vec<f64> = web["occupancy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
        "{shares:?}"
    );
    let csv = std::fs::read_to_string(out_dir.join("result.csv")).unwrap();
    assert!(csv.starts_with("replication,seed,scope,name,instance,metric,value\n"));
    assert!(csv.contains(",workload,users,,latency_p99_ms,"));
    assert!(csv.contains(",component,web,,wait_p99_ms,"));
    assert!(csv.contains(",component,web,,occupancy_0,"));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        3,
        "result.json, result.csv, topology.dot: {leftovers:?}"
    );
}

#[test]
fn set_overrides_change_the_model_and_the_hash() {
    let run = |extra: &[&str]| -> Value {
        json_ok(
            scalesim().args(
                [
                    &["run", "models/single-server.json", "--format", "json"][..],
                    extra,
                ]
                .concat(),
            ),
        )
    };
    let one = run(&[]);
    let two = run(&["--set", "components.web.workers=2"]);
    assert_ne!(one["manifest"]["model_hash"], two["manifest"]["model_hash"]);
    let u1 = one["runs"][0]["components"]["web"]["total"]["utilization"]
        .as_f64()
        .unwrap();
    let u2 = two["runs"][0]["components"]["web"]["total"]["utilization"]
        .as_f64()
        .unwrap();
    assert!(
        (u1 / u2 - 2.0).abs() < 0.05,
        "two workers halve utilization: {u1} vs {u2}"
    );
    assert_eq!(two["manifest"]["overrides"][0], "components.web.workers=2");
}

#[test]
fn replications_report_confidence_intervals() {
    let out = scalesim()
        .args([
            "run",
            "models/single-server.json",
            "--format",
            "json",
            "--replications",
            "4",
            "--set",
            "duration=\"15s\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    let p99 = &v["summary"]["workloads.users.latency.p99_ms"];
    assert_eq!(p99["n"], 4);
    assert!(p99["ci95"].as_f64().unwrap() > 0.0);
    let seeds: Vec<u64> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    let mut unique = seeds.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        4,
        "replications use distinct seeds: {seeds:?}"
    );
}

#[test]
fn check_prints_instances_and_estimates_and_warns_when_unstable() {
    let out = scalesim()
        .args(["check", "models/horizontal-lb.json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("app[0], app[1], app[2]"), "{text}");
    assert!(
        text.contains("erlang_c") || text.contains("allen_cunneen") || text.contains("mmck"),
        "{text}"
    );
    let out = scalesim()
        .args([
            "check",
            "models/single-server.json",
            "--set",
            "workloads.users.arrivals.poisson.rate=1500",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "an unstable model is valid; check only warns"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("warning: components.web"), "{text}");
    // And it runs, saying so.
    let out = scalesim()
        .args([
            "run",
            "models/single-server.json",
            "--set",
            "workloads.users.arrivals.poisson.rate=1500",
            "--set",
            "duration=\"10s\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("grows without bound")
    );
}

#[test]
fn a_worker_pool_that_can_wait_on_itself_is_warned_about_and_deadlocks() {
    // a holds one of its 2 workers while calling b, and b sends half its requests back to
    // a: valid (requests can be answered), but once both workers wait nothing moves.
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("loop.json");
    std::fs::write(
        &m,
        r#"{"duration": "2s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 300}}, "target": "a"}},
            "components": {
              "a": {"kind": "service", "workers": 2, "service_time": {"exponential": {"mean": "1ms"}},
                    "handler": [{"work": "service_time"}, {"call": "b"}]},
              "b": {"kind": "service", "workers": 4, "service_time": {"exponential": {"mean": "1ms"}},
                    "handler": [{"work": "service_time"}, {"route": {"a": 0.5}}]}}}"#,
    )
    .unwrap();
    let out = scalesim().arg("check").arg(&m).output().unwrap();
    assert!(out.status.success(), "a warning, not an error");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("warning: components.a: a request holds one of its 2 worker(s)")
            && text.contains("(a -> b -> a)")
            && text.contains("deadlock"),
        "{text}"
    );
    // The run shows it: almost every request is stuck in flight.
    let out = scalesim()
        .arg("run")
        .arg(&m)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["runs"][0]["conservation"];
    assert!(
        c["in_flight"].as_u64().unwrap() > 10 * c["completed"].as_u64().unwrap(),
        "{c}"
    );
}

#[test]
fn yaml_and_json_forms_of_a_model_give_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let json_text = std::fs::read_to_string("models/single-server.json").unwrap();
    let v: Value = serde_json::from_str(&json_text).unwrap();
    let mut yaml = String::from("# the same model as YAML\n");
    yaml.push_str(&serde_json::to_string(&v).unwrap()); // JSON is YAML
    let y = dir.path().join("m.yaml");
    std::fs::write(&y, yaml).unwrap();
    let a = scalesim()
        .args(["run", "models/single-server.json", "--format", "csv"])
        .output()
        .unwrap();
    let b = scalesim()
        .args(["run", y.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn a_model_whose_clock_cannot_advance_fails_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("stuck.json");
    std::fs::write(
        &m,
        r#"{"duration": "10s",
            "workloads": {"w": {"arrivals": {"closed": {"users": 2, "think": {"constant": "0s"}}}, "target": "s"}},
            "components": {"s": {"kind": "service", "service_time": {"constant": "0s"}}}}"#,
    )
    .unwrap();
    let out = scalesim()
        .args(["run", m.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("stuck") && err.contains("stuck.json"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn unstable_results_read_back_from_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = scalesim()
        .args([
            "run",
            "models/single-server.json",
            "--set",
            "workloads.users.arrivals.poisson.rate=1500",
            "--set",
            "duration=\"8s\"",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("result.json")).unwrap();
    let back: scalesim::report::RunOutput = serde_json::from_str(&text).unwrap();
    assert!(back.estimates.services[0].1.wait_mean_ms.is_infinite());
}

#[test]
fn a_trace_workload_keeps_every_class_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trace.csv"),
        "time,class,key\n0.001,read,1\n2ms,write,2\n0.003,read,3\n4ms,read,1\n",
    )
    .unwrap();
    let m = dir.path().join("m.json");
    std::fs::write(
        &m,
        r#"{"duration": "1s",
            "workloads": {"replay": {"arrivals": {"trace": {"file": "trace.csv"}}, "target": "s"}},
            "components": {"s": {"kind": "service", "service_times": {
                "read": {"constant": "100us"}, "write": {"constant": "500us"}}}}}"#,
    )
    .unwrap();
    let v = json_ok(scalesim().args(["run", m.to_str().unwrap(), "--format", "json"]));
    let w = &v["runs"][0]["workloads"]["replay"];
    assert_eq!(w["arrived"], 4);
    assert_eq!(w["completed"], 4);
    assert_eq!(w["classes"]["read"]["completed"], 3);
    assert_eq!(w["classes"]["write"]["completed"], 1);
    let max = w["classes"]["write"]["latency"]["max_ms"].as_f64().unwrap();
    assert!(
        (max / 0.5 - 1.0).abs() < 1e-3,
        "within the histogram resolution: {max}"
    );
}

#[test]
fn committed_experiment_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/experiment.schema.json"
    ))
    .unwrap();
    assert!(
        scalesim::schema::experiment_schema_json() == committed,
        "schema/experiment.schema.json is stale: regenerate it with `cargo run --release -- schema --experiment > schema/experiment.schema.json`"
    );
}

/// `graph` draws every shipped model in both languages: every workload and component
/// appears, each arrow joins two declared nodes, and the same model always gives the same
/// text. A model with a mistake is refused as `run` refuses it.
#[test]
fn graph_draws_every_shipped_model_in_mermaid_and_dot() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for model in crate::support::model_files(&root.join("models")) {
        let spec: Value = if model.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap()
        } else {
            continue;
        };
        let names: Vec<String> = ["workloads", "components"]
            .iter()
            .flat_map(|k| spec[k].as_object().unwrap().keys().cloned())
            .collect();
        for format in ["mermaid", "dot"] {
            let text = String::from_utf8(stdout_ok(scalesim().args([
                "graph",
                model.to_str().unwrap(),
                "--format",
                format,
            ])))
            .unwrap();
            for name in &names {
                assert!(
                    text.contains(&format!("\"{name}")),
                    "{}: {name} missing from the {format} diagram:\n{text}",
                    model.display()
                );
            }
            // Every component is reached: at least one arrow into each.
            let components = spec["components"].as_object().unwrap().len();
            let arrow = if format == "dot" { " -> " } else { "-->" };
            let arrows = text
                .lines()
                .filter(|l| l.contains(arrow) || l.contains("-.->"))
                .count();
            assert!(
                arrows >= components,
                "{}: too few arrows:\n{text}",
                model.display()
            );
            let again =
                stdout_ok(scalesim().args(["graph", model.to_str().unwrap(), "--format", format]));
            assert_eq!(text.as_bytes(), again.as_slice());
        }
    }
    let out = scalesim()
        .args([
            "graph",
            "models/cache-aside.json",
            "--set",
            "components.cache.capacity=0",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("components.cache.capacity"));
}
