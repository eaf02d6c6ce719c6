//! Issue 8, point 4: every mistake found before the first run. Each class of mistake is
//! refused by `check`/`run`/`sweep`/`compare` with exit status 2, the path of the field and
//! (for a misspelt name) the nearest valid one, before any run starts and before any output
//! is written.

use crate::support::scalesim;
use scalesim::model::{Format, check_name_rule, load_model_file, parse_model_str};
use scalesim::stats::{headline_metrics, metric_keys};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small valid model; each test breaks one thing in it.
fn base() -> Value {
    json!({
        "duration": "10s",
        "workloads": {
            "users": {"arrivals": {"poisson": {"rate": 100}}, "target": "app"}
        },
        "components": {
            "app": {"kind": "service", "workers": 2, "service_time": {"exponential": {"mean": "1ms"}}}
        }
    })
}

/// Runs `scalesim ARGS` in `dir`: exit status 2, nothing on stdout, no panic, every needle
/// in stderr, and nothing written under `dir/output` or `dir/out`. Returns stderr.
fn refused_in(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = scalesim().current_dir(dir).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "scalesim {args:?}: status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(out.stdout.is_empty(), "scalesim {args:?} printed on stdout");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "scalesim {args:?}: stderr lacks {n:?}:\n{stderr}"
        );
    }
    for d in ["output", "out"] {
        assert!(
            !dir.join(d).exists(),
            "scalesim {args:?} wrote {d}/ before refusing"
        );
    }
    stderr
}

/// `scalesim check` on model `m` is refused with every needle in stderr.
fn model_refused(m: &Value, needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    refused_in(dir.path(), &["check", "m.json"], needles);
    refused_in(dir.path(), &["run", "m.json", "--out", "out"], needles)
}

fn model_accepted(m: &Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    let out = scalesim()
        .current_dir(dir.path())
        .args(["check", "m.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- names --------------------------------------------------------------------------------

#[test]
fn names_follow_one_rule() {
    for ok in [
        "app",
        "App-2",
        "db_primary",
        "1st",
        "café",
        "сервис",
        "a-b_c9",
    ] {
        assert_eq!(check_name_rule(ok), Ok(()), "{ok:?}");
    }
    for bad in [
        "",
        "a.b",
        "a[0]",
        "a]",
        "a=b",
        "a*",
        "a,b",
        "a/b",
        "a b",
        "a\tb",
        "a\u{7}",
        "a\u{200b}b",
        "a\u{200d}",
        "\u{feff}a",
        "-a",
        "_a",
    ] {
        assert!(check_name_rule(bad).is_err(), "{bad:?} accepted");
    }
    assert!(check_name_rule(&"a".repeat(101)).is_err());
    assert!(check_name_rule(&"a".repeat(100)).is_ok());
}

#[test]
fn bad_component_workload_and_class_names_are_refused_with_their_path() {
    let mut m = base();
    let app = m["components"]["app"].take();
    m["components"] = json!({"app\u{200b}": app});
    m["workloads"]["users"]["target"] = json!("app\u{200b}");
    model_refused(
        &m,
        &["components.app\u{200b}: name \"app\\u{200b}\" contains an invisible character (U+200B)"],
    );

    let mut m = base();
    let users = m["workloads"]["users"].take();
    m["workloads"] = json!({"us.ers": users});
    model_refused(&m, &["workloads.us.ers: name \"us.ers\" contains \".\""]);

    let mut m = base();
    m["workloads"]["users"]["classes"] = json!({"read": 0.5, "wr\u{1}ite": 0.5});
    model_refused(
        &m,
        &["workloads.users.classes.wr\u{1}ite: name \"wr\\u{1}ite\" contains a control character"],
    );

    let mut m = base();
    m["workloads"]["users"]["classes"] = json!({"read[0]": 1});
    model_refused(&m, &["workloads.users.classes.read[0]", "contains \"[\""]);

    // Letters of any script are letters.
    let mut m = base();
    let app = m["components"]["app"].take();
    m["components"] = json!({"café-2": app});
    m["workloads"]["users"]["target"] = json!("café-2");
    model_accepted(&m);
}

#[test]
fn trace_class_names_follow_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "time,class,key\n0.1,read,1\n0.2,a.b,2\n",
    )
    .unwrap();
    let mut m = base();
    m["workloads"]["users"]["arrivals"] = json!({"trace": {"file": "t.csv"}});
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    refused_in(
        dir.path(),
        &["check", "m.json"],
        &[
            "workloads.users.arrivals.trace.file",
            "t.csv:3: class: name \"a.b\" contains \".\"",
        ],
    );
}

#[test]
fn shipped_models_follow_the_name_rule() {
    let mut files = Vec::new();
    for d in ["models", "benches/models"] {
        for e in std::fs::read_dir(root().join(d)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    assert!(files.len() >= 9);
    for f in files {
        load_model_file(&f, &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

// ---- file encoding ------------------------------------------------------------------------

#[test]
fn json_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(base().to_string().as_bytes());
    std::fs::write(dir.path().join("m.json"), &bytes).unwrap();
    scalesim()
        .current_dir(dir.path())
        .args(["check", "m.json"])
        .assert()
        .success();
    // An experiment file with one, too.
    let mut e = "\u{feff}".as_bytes().to_vec();
    e.extend(
        json!({"name": "bom", "model": "m.json", "replications": 1, "duration": "1s"})
            .to_string()
            .as_bytes(),
    );
    std::fs::write(dir.path().join("e.json"), &e).unwrap();
    scalesim()
        .current_dir(dir.path())
        .args(["sweep", "e.json", "-q"])
        .assert()
        .success();
}

#[test]
fn invalid_utf8_names_the_line_and_column_of_the_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"{\n  \"name\": \"caf\xc3\xa9 \xff\",\n  \"duration\": \"10s\"\n}\n";
    for f in ["m.json", "m.yaml"] {
        std::fs::write(dir.path().join(f), text).unwrap();
        refused_in(
            dir.path(),
            &["check", f],
            &[&format!(
                "{f}: cannot read the model file: invalid UTF-8 at line 2 column 17 (byte 0xff)"
            )],
        );
    }
    std::fs::write(dir.path().join("e.json"), text).unwrap();
    refused_in(
        dir.path(),
        &["sweep", "e.json"],
        &["e.json", "invalid UTF-8 at line 2 column 17"],
    );
}

// ---- experiments: name, metrics, plots, precision, compare --metric -------------------------

/// A folder with the base model (`m.json`) and the experiment `e` (`e.json`).
fn experiment(e: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut m = base();
    m["workloads"]["users"]["classes"] = json!({"read": 0.8, "write": 0.2});
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    std::fs::write(dir.path().join("e.json"), e.to_string()).unwrap();
    dir
}

fn small(extra: Value) -> Value {
    let mut e = json!({
        "name": "exp",
        "model": "m.json",
        "replications": 1,
        "duration": "1s",
        "sweep": {"workloads.users.arrivals.poisson.rate": [50, 100]}
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

#[test]
fn experiment_names_must_be_one_folder_name() {
    for (name, needle) in [
        ("", "name: must not be empty"),
        ("  ", "name: must not be empty"),
        (".", "name: must be a folder name, got \".\""),
        ("..", "name: must be a folder name, got \"..\""),
        ("a/b", "name: must not contain \"/\""),
        ("a\\b", "name: must not contain \"/\" or \"\\\""),
        (
            "a\nb",
            "name: must not contain control characters, got \"a\\nb\"",
        ),
    ] {
        let dir = experiment(small(json!({"name": name})));
        refused_in(dir.path(), &["sweep", "e.json"], &["e.json", needle]);
    }
    let long = "x".repeat(101);
    let dir = experiment(small(json!({ "name": long })));
    refused_in(
        dir.path(),
        &["sweep", "e.json"],
        &["name: must be at most 100 characters"],
    );
}

#[test]
fn misspelt_metrics_and_plots_are_refused_before_any_run() {
    let dir = experiment(small(json!({
        "metrics": ["workloads.users.latency.p99_ms", "workloads.user.*", "workloads.users.latncy.p99_ms", "cost.*", "run.warmup_s", "workloads.users.pooled_latency.p99_ms"],
        "plots": [
            {"metric_vs_param": {"metric": "workloads.users.latency.p99ms"}},
            {"metric_vs_param": {"metric": "components.app.utilization"}},
            {"metric_vs_param": {"metric": "workloads.users.latency.p99_ms", "x": "workloads.users.arrivals.poisson.rat", "beside": "workloads.users.latency.p50ms"}},
            {"latency_cdf": {"workload": "usrs", "point": 2}},
            {"time_series": {"metric": "latency_p99", "workload": "users", "point": 1}}
        ],
        "precision": {"metric": "components.ap.utilization", "relative": 0.1}
    })));
    let stderr = refused_in(
        dir.path(),
        &["sweep", "e.json", "--out", "out"],
        &[
            "e.json: metrics[1]: no metric of the model(s) starts with \"workloads.user.\"; did you mean \"workloads.users.*\"?",
            "e.json: metrics[2]: no metric \"workloads.users.latncy.p99_ms\" in the model(s); did you mean \"workloads.users.latency.p99_ms\"?",
            "e.json: plots[0].metric_vs_param.metric: no metric \"workloads.users.latency.p99ms\" in the model(s); did you mean \"workloads.users.latency.p99_ms\"?",
            "e.json: plots[1].metric_vs_param.metric: metric \"components.app.utilization\" is left out by the experiment's \"metrics\" list; add it there",
            "e.json: plots[2].metric_vs_param.x: \"workloads.users.arrivals.poisson.rat\" is not a swept path",
            "did you mean \"workloads.users.arrivals.poisson.rate\"?",
            "e.json: plots[2].metric_vs_param.beside: no metric \"workloads.users.latency.p50ms\" in the model(s); did you mean \"workloads.users.latency.p50_ms\"?",
            "e.json: plots[3].latency_cdf.workload: no workload named \"usrs\"",
            "e.json: plots[3].latency_cdf.point: must be a sweep point from 0 to 1, got 2",
            "e.json: plots[4].time_series.metric: unknown time-series metric \"latency_p99\"",
            "e.json: precision.metric: no metric \"components.ap.utilization\" in the model(s); did you mean \"components.app.utilization\"?",
        ],
    );
    // Keys that exist are not reported.
    for ok in [
        "metrics[0]",
        "metrics[3]",
        "metrics[4]",
        "metrics[5]",
        "plots[4].time_series.workload",
    ] {
        assert!(!stderr.contains(ok), "{ok} reported:\n{stderr}");
    }
}

#[test]
fn class_metrics_exist_only_for_the_classes_of_the_model() {
    let dir = experiment(small(json!({
        "metrics": ["workloads.users.classes.read.latency.p99_ms", "workloads.users.classes.reed.latency.p99_ms"]
    })));
    refused_in(
        dir.path(),
        &["sweep", "e.json"],
        &[
            "metrics[1]: no metric \"workloads.users.classes.reed.latency.p99_ms\" in the model(s); did you mean \"workloads.users.classes.read.latency.p99_ms\"?",
        ],
    );
}

#[test]
fn a_plot_against_a_parameter_needs_a_numeric_sweep() {
    let mut e = small(
        json!({"plots": [{"metric_vs_param": {"metric": "workloads.users.latency.p99_ms"}}]}),
    );
    e.as_object_mut().unwrap().remove("sweep");
    let dir = experiment(e);
    refused_in(
        dir.path(),
        &["sweep", "e.json"],
        &[
            "plots[0].metric_vs_param: plots a metric against a swept parameter, but the experiment has no \"sweep\"",
        ],
    );
    let e = small(json!({
        "sweep": {"workloads.users.timeout": ["1s", "2s"]},
        "plots": [{"metric_vs_param": {"metric": "workloads.users.latency.p99_ms"}}]
    }));
    let dir = experiment(e);
    refused_in(
        dir.path(),
        &["sweep", "e.json"],
        &[
            "plots[0].metric_vs_param: the values swept at \"workloads.users.timeout\" are not numbers",
        ],
    );
}

#[test]
fn precision_and_compare_metrics_from_the_command_line_are_checked() {
    let dir = experiment(small(json!({})));
    refused_in(
        dir.path(),
        &[
            "sweep",
            "e.json",
            "--precision",
            "5%",
            "--metric",
            "workloads.users.latency.p99ms",
        ],
        &[
            "--metric: no metric \"workloads.users.latency.p99ms\" in the model(s); did you mean \"workloads.users.latency.p99_ms\"?",
        ],
    );
    refused_in(
        dir.path(),
        &[
            "compare",
            "m.json",
            "m.json",
            "--metric",
            "workloads.users.latency.p99_ms",
            "--metric",
            "cost.per_hr",
        ],
        &["--metric: no metric \"cost.per_hr\" in the model(s); did you mean \"cost.per_hour\"?"],
    );
    refused_in(
        dir.path(),
        &[
            "compare",
            "m.json",
            "m.json",
            "--metric",
            "workloads.users.goodput",
            "--precision",
            "5%",
        ],
        &["--metric: no metric \"workloads.users.goodput\""],
    );
}

/// The metric keys found before a run are exactly those a run reports, for every shipped
/// model and for a model with classes.
#[test]
fn metric_keys_before_a_run_are_those_of_a_run() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        // A model with events at times past 200ms (a shard router's changes) runs whole.
        let model = load_model_file(f, &["duration=\"200ms\"".into(), "warmup=\"0s\"".into()])
            .or_else(|_| load_model_file(f, &["warmup=\"0s\"".into()]))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = scalesim::results::run_once(&model, 1).unwrap();
        let keys: Vec<String> = headline_metrics(&run).into_keys().collect();
        assert_eq!(metric_keys(&model), keys, "{}", f.display());
    }
    let mut m = base();
    m["workloads"]["users"]["classes"] = json!({"read": 0.7, "write": 0.3});
    let model = parse_model_str(&m.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    let run = scalesim::results::run_once(&model, 1).unwrap();
    let keys: Vec<String> = headline_metrics(&run).into_keys().collect();
    assert!(keys.iter().any(|k| k.contains("classes.write")));
    assert_eq!(metric_keys(&model), keys);
}

// ---- runs that can never send a request, durations that are always zero --------------------

#[test]
fn a_workload_that_can_never_send_a_request_is_refused() {
    let cases = [
        (json!({"poisson": {"rate": 5e-324}}), "overflows the clock"),
        (
            json!({"poisson": {"rate": 1e-12}}),
            "practically never send",
        ),
        (
            json!({"ramp": {"from": 0, "to": 0, "start": "1s", "end": "5s"}}),
            "sends no request",
        ),
        (
            json!({"steps": [{"at": "20s", "rate": 100}]}),
            "sends no request",
        ),
    ];
    for (arrivals, needle) in cases {
        let mut m = base();
        m["workloads"]["users"]["arrivals"] = arrivals;
        model_refused(&m, &["workloads.users.arrivals", needle]);
    }
    // A trace whose rows all come after the end.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "time,class,key\n20s,read,1\n30s,read,2\n",
    )
    .unwrap();
    let mut m = base();
    m["workloads"]["users"]["arrivals"] = json!({"trace": {"file": "t.csv"}});
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    refused_in(
        dir.path(),
        &["check", "m.json"],
        &["workloads.users.arrivals", "none of the trace's 2 requests"],
    );
}

#[test]
fn a_workload_expected_to_send_under_one_request_is_warned_about() {
    let mut m = base();
    m["workloads"]["users"]["arrivals"] = json!({"poisson": {"rate": 0.05}});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), m.to_string()).unwrap();
    let out = scalesim()
        .current_dir(dir.path())
        .args(["check", "m.json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("expects only about 0.5 request"), "{all}");
}

#[test]
fn a_distribution_whose_draws_all_round_to_zero_is_refused() {
    for (dist, needle) in [
        (
            json!({"gamma": {"shape": 1e-300, "mean": "5ms"}}),
            "practically every draw rounds to 0ns",
        ),
        (json!({"constant": "0.1ns"}), "every draw rounds to 0ns"),
        (
            json!({"exponential": {"mean": "0.2ns"}}),
            "every draw rounds to 0ns",
        ),
    ] {
        let mut m = base();
        m["components"]["app"]["service_time"] = dist;
        model_refused(&m, &["components.app.service_time", needle]);
    }
    // An exact zero is meant, and so is a mixture that is mostly zero.
    let mut m = base();
    m["components"]["app"]["service_time"] = json!({"constant": "0s"});
    model_accepted(&m);
    m["components"]["app"]["service_time"] = json!({"mixture": [
        {"weight": 0.9999, "dist": {"constant": "0s"}},
        {"weight": 0.0001, "dist": {"constant": "10ms"}}
    ]});
    model_accepted(&m);
}
