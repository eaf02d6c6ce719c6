//! Every model shipped in models/ runs through the command line, and its result is sane.

use crate::support::{json_ok, model_files, scalesim, stdout_ok};
use serde_json::Value;
use std::path::PathBuf;

fn shipped_models() -> Vec<PathBuf> {
    model_files(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
}

#[test]
fn every_shipped_model_runs_and_conserves_requests() {
    let models = shipped_models();
    assert!(models.len() >= 3, "models/ should hold the shipped models");
    for m in models {
        // scalesim's messages name the model file, shown if the run fails.
        let v = json_ok(scalesim().args(["run", m.to_str().unwrap(), "--format", "json"]));
        let run = &v["runs"][0];
        assert_eq!(
            run["conservation"]["holds"],
            Value::Bool(true),
            "{}",
            m.display()
        );
        for (name, w) in run["workloads"].as_object().unwrap() {
            assert!(
                w["completed"].as_u64().unwrap() > 1000,
                "{}: workload {name} completed too little",
                m.display()
            );
        }
        stdout_ok(scalesim().args(["check", m.to_str().unwrap()]));
    }
}

#[test]
fn shipped_models_validate_against_the_committed_schema() {
    // Every JSON model names the schema; the schema file itself is checked for drift in
    // tests/cli.rs. Here: the `$schema` key is accepted and points at the committed file.
    for m in shipped_models() {
        if m.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
        let schema = v["$schema"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no $schema", m.display()));
        let path = m.parent().unwrap().join(schema);
        assert!(
            path.exists(),
            "{}: $schema points at {}",
            m.display(),
            path.display()
        );
    }
}

#[test]
fn the_run_table_shows_the_cost_of_a_priced_design() {
    // horizontal-lb prices its balancer (0.025/h) and 3 app instances (0.10/h each).
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/horizontal-lb.json");
    let table = String::from_utf8(stdout_ok(scalesim().args([
        "run",
        model.to_str().unwrap(),
        "--set",
        "duration=10s",
    ])))
    .unwrap();
    let line = table
        .lines()
        .find(|l| l.starts_with("cost: "))
        .unwrap_or_else(|| panic!("no cost line in\n{table}"));
    assert!(line.starts_with("cost: 0.325 per hour, "), "{line}");
    // An unpriced design prints no cost line.
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/central-server.json");
    let table =
        String::from_utf8(stdout_ok(scalesim().args(["run", model.to_str().unwrap()]))).unwrap();
    assert!(!table.contains("\ncost: "), "{table}");
}
