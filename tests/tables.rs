//! Tables hide nothing (issue 8 point 6): every listed metric of a sweep is shown, split
//! into several tables when wide; `compare` says when designs have different workloads;
//! an all-zero distribution has percentiles of 0; the data tier's metrics reach the table, JSON
//! and CSV alike.

use crate::support::{json_ok, scalesim, stdout_ok};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(stdout_ok(cmd)).unwrap()
}

/// The single-server model, short, with its workload renamed to `workload`.
fn short_model(dir: &Path, file: &str, workload: &str) -> PathBuf {
    let mut m: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/single-server.json")).unwrap(),
    )
    .unwrap();
    m.as_object_mut().unwrap().remove("$schema");
    m["duration"] = "2s".into();
    m["warmup"] = "500ms".into();
    let w = m["workloads"]["users"].clone();
    m["workloads"] = json!({ workload: w });
    let path = dir.join(file);
    std::fs::write(&path, m.to_string()).unwrap();
    path
}

#[test]
fn sweep_table_shows_every_listed_metric_within_the_width() {
    // Before: only the first 6 listed metrics were shown; p99 and cost were dropped.
    let t = tempfile::tempdir().unwrap();
    let exp = json!({
        "name": "wide",
        "model": root().join("models/horizontal-lb.json").display().to_string(),
        "sweep": {"components.app.replicas": [3, 4]},
        "replications": 2,
        "duration": "2s",
        "warmup": "500ms",
        "metrics": ["workloads.users.*", "components.app.utilization", "cost.*"]
    });
    let f = t.path().join("wide.json");
    std::fs::write(&f, exp.to_string()).unwrap();
    let out = t.path().join("out");
    let table = text(scalesim().args([
        "sweep",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    for label in [
        "users.goodput/s",
        "users p99 ms",
        "users p999 ms",
        "users.classes.write p99 ms",
        "components.app.utilization",
        "cost.per_hour",
        "cost.per_million_requests",
    ] {
        assert!(table.contains(label), "{label} missing:\n{table}");
    }
    assert!(table.contains("metrics in"), "{table}");
    assert!(
        table.matches("replicas").count() > 2,
        "keys in every table: {table}"
    );
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(
        widest <= scalesim::report::DEFAULT_TABLE_WIDTH,
        "a line of {widest} characters:\n{table}"
    );
}

#[test]
fn compare_names_workloads_present_in_one_design_only() {
    let t = tempfile::tempdir().unwrap();
    let a = short_model(t.path(), "a.json", "users");
    let b = short_model(t.path(), "b.json", "api");
    let table = text(scalesim().args([
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--replications",
        "2",
        "--out",
        t.path().join("cmp").to_str().unwrap(),
        "--quiet",
    ]));
    assert!(
        table.contains("\"users\" only in a") && table.contains("\"api\" only in b"),
        "{table}"
    );
    assert!(
        table.contains("users p99 ms") && table.contains("api p99 ms"),
        "{table}"
    );
    // Designs with the same workloads get no note.
    let c = short_model(t.path(), "c.json", "users");
    let same = text(scalesim().args([
        "compare",
        a.to_str().unwrap(),
        c.to_str().unwrap(),
        "--replications",
        "2",
        "--out",
        t.path().join("cmp2").to_str().unwrap(),
        "--quiet",
    ]));
    assert!(!same.contains("note:"), "{same}");
}

#[test]
fn percentiles_of_waits_that_are_all_zero_are_zero() {
    // Before: 1.00e-6 ms, the 1 ns slot zeros were counted in.
    let args = [
        "run",
        "models/single-server.json",
        "--set",
        "duration=2s",
        "--set",
        "warmup=500ms",
        "--set",
        "workloads.users.arrivals.poisson.rate=5",
    ];
    let v = json_ok(scalesim().args(args).args(["--format", "json"]));
    let wait = &v["runs"][0]["components"]["web"]["wait"];
    assert!(wait["count"].as_u64().unwrap() > 0);
    for p in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
        assert_eq!(wait[p], 0.0, "{p}: {wait}");
    }
    let table = text(scalesim().args(args));
    assert!(!table.contains("e-6"), "{table}");
}

/// The data tier's headline metrics reach all three outputs: the table shows the column,
/// and the tidy CSV's row carries exactly the JSON's value.
#[test]
fn data_tier_metrics_are_in_the_table_the_json_and_the_csv() {
    for (model, component, metric, column) in [
        ("cache-aside", "cache", "hit_ratio", "hit ratio"),
        ("cache-aside", "cache", "hit_ratio_estimate", "hit ratio"),
        ("cache-aside", "cache", "evictions", "evictions"),
        ("read-replicas", "db", "stale_share", "stale share"),
        ("sharded-hot-key", "db", "hot_spot_index", "hot spot"),
        ("sharded-hot-key", "db", "busiest_share", "busiest shard"),
    ] {
        let file = root().join(format!("models/{model}.json"));
        let file = file.to_str().unwrap();
        let table = text(scalesim().args(["run", file, "--set", "duration=20s"]));
        assert!(table.contains(column), "{model}: no {column:?} in\n{table}");
        let json =
            json_ok(scalesim().args(["run", file, "--set", "duration=20s", "--format", "json"]));
        let value = &json["runs"][0]["components"][component]["total"][metric];
        let value = value
            .as_f64()
            .unwrap_or_else(|| panic!("{model}: no {component}.{metric} in the JSON"));
        let csv = text(scalesim().args(["run", file, "--set", "duration=20s", "--format", "csv"]));
        let row = format!("0,1,component,{component},,{metric},");
        let line = csv
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("{model}: no {row} in the CSV"));
        let csv_value: f64 = line[row.len()..].parse().unwrap();
        assert_eq!(csv_value, value, "{model} {metric}");
    }
}

#[test]
fn time_series_are_in_the_csv_and_component_series_can_be_asked_for() {
    let file = root().join("models/single-server.json");
    let file = file.to_str().unwrap();
    let run = |extra: &[&str], format: &str| {
        let mut args = vec!["run", file, "--set", "duration=10s", "--format", format];
        args.extend_from_slice(extra);
        scalesim().args(&args).output().unwrap().stdout
    };
    // The CSV row `SCOPE,NAME,,window_K_METRIC` of replication 0.
    let csv_value = |csv: &str, scope: &str, name: &str, metric: &str| -> Option<f64> {
        let row = format!("0,1,{scope},{name},,{metric},");
        let line = csv.lines().find(|l| l.starts_with(&row))?;
        Some(line[row.len()..].parse().unwrap())
    };
    // Without faults or bursts: the workload's series, no component's.
    let plain: Value = serde_json::from_slice(&run(&[], "json")).unwrap();
    let plain_csv = String::from_utf8(run(&[], "csv")).unwrap();
    assert!(plain["runs"][0].get("component_series").is_none());
    let series = &plain["runs"][0]["series"]["users"];
    let completed = series["completed"].as_array().unwrap();
    assert_eq!(completed.len(), 100, "a hundredth of the run each");
    for k in [0, 57, 99] {
        let want = completed[k].as_f64().unwrap();
        let metric = format!("window_{k}_completed");
        assert_eq!(
            csv_value(&plain_csv, "workload", "users", &metric),
            Some(want)
        );
    }
    assert!(!plain_csv.contains(",window_0_utilization,"));
    // Asked for: every component metric by window, the same in the JSON and the CSV, and
    // the simulated numbers unchanged.
    let asked = ["--set", "component_series=true"];
    let with: Value = serde_json::from_slice(&run(&asked, "json")).unwrap();
    let with_csv = String::from_utf8(run(&asked, "csv")).unwrap();
    assert_eq!(
        with["runs"][0]["components"], plain["runs"][0]["components"],
        "asking for series moves nothing"
    );
    let busy = with["runs"][0]["component_series"]["web"]["utilization"]
        .as_array()
        .unwrap_or_else(|| panic!("no utilization series in {}", with["runs"][0]));
    assert_eq!(busy.len(), 100);
    // The warm-up is the first half of the run: its windows are 0.
    let mean = busy[50..].iter().map(|v| v.as_f64().unwrap()).sum::<f64>() / 50.0;
    let total = with["runs"][0]["components"]["web"]["total"]["utilization"]
        .as_f64()
        .unwrap();
    assert!(
        (mean - total).abs() < 0.05,
        "windows {mean} against the run's {total}"
    );
    for k in [0, 42, 99] {
        let want = busy[k].as_f64().unwrap();
        let metric = format!("window_{k}_utilization");
        assert_eq!(
            csv_value(&with_csv, "component", "web", &metric),
            Some(want)
        );
    }
    assert!(
        with["runs"][0]["series"]["users"]["latency_p99_ms"]
            .as_array()
            .is_some_and(|p| p.len() == 100)
    );
}
