//! Bad input (DESIGN.md "Bad input"): every malformed model gets one clear message naming
//! the file, the path of the bad field, what was expected and what was found; exit status 2;
//! no panic, nothing on stdout and no output file.

use crate::support::{json_ok, scalesim};
use serde_json::{Value, json};
use std::path::Path;

/// A small valid model; each test breaks one thing in it.
fn base() -> Value {
    json!({
        "duration": "10s",
        "workloads": {
            "users": {"arrivals": {"poisson": {"rate": 100}}, "target": "app"}
        },
        "components": {
            "app": {
                "kind": "service",
                "workers": 2,
                "service_time": {"exponential": {"mean": "1ms"}}
            }
        }
    })
}

/// The base model with a `db` service the app may call.
fn with_db() -> Value {
    let mut m = base();
    m["components"]["db"] = json!({"kind": "service", "service_time": {"constant": "1ms"}});
    m
}

/// The base model changed by `edit`, as JSON text.
fn model(edit: impl FnOnce(&mut Value)) -> String {
    let mut m = base();
    edit(&mut m);
    serde_json::to_string_pretty(&m).unwrap()
}

/// Runs `scalesim ARGS` and checks the bad-input contract: exit status 2, nothing on stdout,
/// no panic, and every one of `needles` in stderr. Returns stderr.
fn run_bad(args: &[&str], needles: &[&str]) -> String {
    let output = scalesim().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "scalesim {args:?}: exit status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(
        output.stdout.is_empty(),
        "scalesim {args:?} printed on stdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "scalesim {args:?} panicked:\n{stderr}"
    );
    for n in needles {
        assert!(
            stderr.contains(n),
            "scalesim {args:?}: stderr lacks {n:?}:\n{stderr}"
        );
    }
    stderr
}

/// Writes `text` to a file `name` in a fresh folder and runs `scalesim COMMAND FILE EXTRA`
/// (with `--out` for `run`); checks [`run_bad`], that the message names the file, and that
/// no output was written.
fn rejects_with(name: &str, text: &str, command: &str, extra: &[&str], needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let file_arg = file.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let mut args = vec![command, file_arg];
    if command == "run" {
        args.extend(["--out", out_arg]);
    }
    args.extend(extra);
    let mut all = vec![name];
    all.extend(needles);
    let stderr = run_bad(&args, &all);
    let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        written, 0,
        "scalesim {args:?} wrote {written} output file(s)"
    );
    stderr
}

/// Writes `m` to a model file that `check` accepts; returns the folder (kept while in use)
/// and the file.
fn accepted(m: &Value) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.json");
    std::fs::write(&file, m.to_string()).unwrap();
    scalesim()
        .args(["check", file.to_str().unwrap()])
        .assert()
        .success();
    (dir, file)
}

/// `scalesim run FILE --out DIR` on `text` saved as `model.json`.
fn rejects(text: &str, needles: &[&str]) -> String {
    rejects_with("model.json", text, "run", &[], needles)
}

// ---- syntax ---------------------------------------------------------------------------------

#[test]
fn bad_json_syntax_gives_line_and_column() {
    rejects(
        "{\"duration\": \"10s\" \"workloads\": {}}",
        &["line 1 column 20", "invalid JSON", "expected `,` or `}`"],
    );
}

#[test]
fn yaml_syntax_error_gives_line_and_column() {
    let text = "duration: 10s\nworkloads:\n  users: {arrivals: {poisson: {rate: 1}}, target: app\ncomponents: {}\n";
    rejects_with(
        "model.yaml",
        text,
        "run",
        &[],
        &["line 4 column", "invalid YAML", "expected ',' or '}'"],
    );
}

#[test]
fn yaml_errors_have_json_paths() {
    let text = "duration: 10s\nworkloads:\n  users:\n    arrivals: {poisson: {rate: 100}}\n    target: app\ncomponents:\n  app:\n    kind: service\n    workerz: 2\n    service_time: {constant: 1ms}\n";
    rejects_with(
        "model.yml",
        text,
        "check",
        &[],
        &[
            "components.app.workerz",
            "unknown field \"workerz\"",
            "did you mean \"workers\"?",
        ],
    );
}

#[test]
fn duplicate_key_is_an_error() {
    let text = r#"{"duration": "10s", "duration": "5s", "workloads": {}, "components": {}}"#;
    rejects(
        text,
        &[
            "duration: given twice",
            "expected each key once",
            "line 1 column",
        ],
    );
}

#[test]
fn model_must_be_an_object() {
    rejects(
        "[1, 2]",
        &["expected an object with \"duration\"", "got a list [1,2]"],
    );
}

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nowhere.json");
    run_bad(
        &["run", file.to_str().unwrap()],
        &["nowhere.json", "cannot read the model file"],
    );
    run_bad(
        &["check", file.to_str().unwrap()],
        &["nowhere.json", "cannot read the model file"],
    );
}

// ---- unknown fields and names -----------------------------------------------------------------

#[test]
fn unknown_top_level_field() {
    rejects(
        &model(|m| m["colour"] = json!("blue")),
        &[
            "model.json: colour: unknown field \"colour\"",
            "expected one of",
            "\"duration\"",
        ],
    );
}

#[test]
fn unknown_field_in_a_service() {
    rejects(
        &model(|m| m["components"]["app"]["wrkers"] = json!(4)),
        &[
            "components.app.wrkers: unknown field \"wrkers\"",
            "expected one of",
            "did you mean \"workers\"?",
        ],
    );
}

#[test]
fn unknown_field_inside_a_distribution() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] = json!({"exponential": {"maen": "1ms"}})
        }),
        &[
            "components.app.service_time.exponential.maen: unknown field \"maen\"",
            "expected one of \"mean\", \"rate\"",
            "did you mean \"mean\"?",
        ],
    );
}

#[test]
fn unknown_field_in_a_handler_step_has_an_indexed_path() {
    rejects(
        &model(|m| {
            m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"cal": "db"}])
        }),
        &[
            "components.app.handler[1].cal: unknown field \"cal\"",
            "did you mean \"call\"?",
        ],
    );
}

#[test]
fn unknown_field_in_a_load_balancer() {
    let mut m = base();
    m["components"]["lb"] = json!({"kind": "load_balancer", "backends": "app", "polcy": "random"});
    rejects(
        &m.to_string(),
        &[
            "components.lb.polcy: unknown field \"polcy\"",
            "did you mean \"policy\"?",
        ],
    );
}

#[test]
fn unknown_component_kind_suggests_the_nearest() {
    rejects(
        &model(|m| m["components"]["app"]["kind"] = json!("servce")),
        &[
            "components.app.kind: unknown component kind \"servce\"",
            "expected one of \"service\", \"load_balancer\"",
            "did you mean \"service\"?",
        ],
    );
}

#[test]
fn missing_kind() {
    rejects(
        &model(|m| {
            m["components"]["app"]
                .as_object_mut()
                .unwrap()
                .remove("kind");
        }),
        &[
            "components.app.kind: required field is missing",
            "\"service\"",
        ],
    );
}

#[test]
fn missing_required_field() {
    rejects(
        &model(|m| {
            m["workloads"]["users"]
                .as_object_mut()
                .unwrap()
                .remove("target");
        }),
        &["workloads.users.target: required field is missing"],
    );
}

#[test]
fn call_to_an_unknown_component_suggests_the_nearest() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"call": "dbb"}]);
    rejects_with(
        "calls.json",
        &m.to_string(),
        "check",
        &[],
        &[
            "components.app.handler[0].call: no component named \"dbb\"",
            "did you mean \"db\"?",
        ],
    );
}

#[test]
fn unknown_load_balancer_backend() {
    let mut m = base();
    m["components"]["lb"] = json!({"kind": "load_balancer", "backends": ["ap"]});
    m["workloads"]["users"]["target"] = json!("lb");
    rejects(
        &m.to_string(),
        &[
            "components.lb.backends[0]: no component named \"ap\"",
            "did you mean \"app\"?",
        ],
    );
}

#[test]
fn unknown_distribution_name() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] = json!({"exponentail": {"mean": "1ms"}})
        }),
        &[
            "components.app.service_time: unknown name \"exponentail\"",
            "expected one of \"constant\", \"exponential\"",
            "did you mean \"exponential\"?",
        ],
    );
}

#[test]
fn unknown_policy() {
    let mut m = base();
    m["components"]["lb"] =
        json!({"kind": "load_balancer", "backends": "app", "policy": "round_robbin"});
    rejects(
        &m.to_string(),
        &[
            "components.lb.policy: unknown name \"round_robbin\"",
            "did you mean \"round_robin\"?",
        ],
    );
}

#[test]
fn unknown_class_in_service_times() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_times"] = json!({"defalt": {"constant": "1ms"}})
        }),
        &[
            "components.app.service_times.defalt: no workload sends requests of class \"defalt\"",
            "classes are \"default\"",
            "did you mean \"default\"?",
        ],
    );
}

// ---- numbers out of range -----------------------------------------------------------------------

#[test]
fn negative_rate() {
    rejects(
        &model(|m| m["workloads"]["users"]["arrivals"]["poisson"]["rate"] = json!(-5)),
        &[
            "workloads.users.arrivals.poisson.rate",
            "must be a positive number",
            "got -5",
        ],
    );
}

#[test]
fn zero_rate() {
    rejects(
        &model(|m| m["workloads"]["users"]["arrivals"] = json!({"constant": {"rate": 0}})),
        &[
            "workloads.users.arrivals.constant.rate",
            "must be a positive number",
            "got 0",
        ],
    );
}

#[test]
fn zero_workers() {
    rejects(
        &model(|m| m["components"]["app"]["workers"] = json!(0)),
        &["components.app.workers: must be at least 1, got 0"],
    );
}

#[test]
fn negative_workers() {
    rejects(
        &model(|m| m["components"]["app"]["workers"] = json!(-3)),
        &["components.app.workers: expected a whole number from 0 to 4294967295, got -3"],
    );
}

#[test]
fn workers_of_the_wrong_type() {
    rejects(
        &model(|m| m["components"]["app"]["workers"] = json!("two")),
        &[
            "components.app.workers: expected a whole number",
            "got \"two\"",
        ],
    );
}

#[test]
fn zero_replicas() {
    rejects(
        &model(|m| m["components"]["app"]["replicas"] = json!(0)),
        &["components.app.replicas: must be at least 1, got 0"],
    );
}

#[test]
fn zipf_with_negative_exponent() {
    rejects(
        &model(|m| m["workloads"]["users"]["keys"] = json!({"zipf": {"keys": 1000, "s": -0.5}})),
        &["workloads.users.keys.zipf.s: must be zero or more, got -0.5"],
    );
}

#[test]
fn hot_set_fraction_above_one() {
    rejects(
        &model(|m| {
            m["workloads"]["users"]["keys"] =
                json!({"hot_set": {"keys": 1000, "hot_fraction": 1.5, "traffic": 0.9}})
        }),
        &["workloads.users.keys.hot_set.hot_fraction: must be in (0, 1], got 1.5"],
    );
}

#[test]
fn arrival_rate_beyond_the_clock() {
    rejects(
        &model(|m| m["workloads"]["users"]["arrivals"]["poisson"]["rate"] = json!(1e12)),
        &[
            "workloads.users.arrivals.poisson.rate",
            "at most 1e9 (one per nanosecond)",
            "got 1000000000000",
        ],
    );
}

#[test]
fn arrival_gap_below_the_clock_resolution() {
    rejects(
        &model(|m| {
            m["workloads"]["users"]["arrivals"] = json!({"interarrival": {"constant": "0.1ns"}})
        }),
        &[
            "workloads.users.arrivals.interarrival: every draw rounds to 0ns",
            "the mean 0.1ns is below the clock's resolution of 1ns",
        ],
    );
}

#[test]
fn too_many_instances() {
    let mut m = base();
    m["components"]["app"]["replicas"] = json!(u32::MAX);
    m["components"]["db"] =
        json!({"kind": "service", "replicas": u32::MAX, "service_time": {"constant": "1ms"}});
    rejects(
        &m.to_string(),
        &[
            "components.app.replicas: must be at most 100000, got 4294967295",
            "components.db.replicas: must be at most 100000, got 4294967295",
        ],
    );
    m["components"]["app"]["replicas"] = json!(60_000);
    m["components"]["db"]["replicas"] = json!(60_000);
    rejects(
        &m.to_string(),
        &["components: a model may have at most 100000 instances in all, got 120000"],
    );
}

#[test]
fn too_many_workers_and_users() {
    rejects_with(
        "model.json",
        &model(|m| {
            m["components"]["app"]["workers"] = json!(u32::MAX);
            m["workloads"]["users"]["arrivals"] =
                json!({"closed": {"users": u32::MAX, "think": {"constant": "1s"}}});
        }),
        "check",
        &[],
        &[
            "components.app.workers: must be at most 1000000, got 4294967295",
            "workloads.users.arrivals.closed.users: must be at most 10000000, got 4294967295",
        ],
    );
}

#[test]
fn set_paths_take_list_indexes() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"call": "db"}]);
    rejects_with(
        "model.json",
        &m.to_string(),
        "run",
        &["--set", "components.app.handler[0].call=app"],
        &["components.app.handler[0].call: a component cannot call itself (\"app\")"],
    );
    rejects_with(
        "model.json",
        &m.to_string(),
        "run",
        &["--set", "components.app.handler[3].call=db"],
        &[
            "components.app.handler[3].call: cannot apply --set: index 3 is out of range: \"components.app.handler\" has 1 item",
        ],
    );
}

// ---- distributions ------------------------------------------------------------------------------

#[test]
fn exponential_without_mean_or_rate() {
    let stderr = rejects(
        &model(|m| m["components"]["app"]["service_time"] = json!({"exponential": {}})),
        &["components.app.service_time.exponential: missing \"mean\" (or \"rate\")"],
    );
    // One mistake, one message: the service time is not reported missing as well.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn exponential_with_mean_and_rate() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] =
                json!({"exponential": {"mean": "1ms", "rate": 1000}})
        }),
        &["components.app.service_time.exponential: give either \"mean\" or \"rate\", not both"],
    );
}

#[test]
fn negative_cv() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] = json!({"lognormal": {"mean": "1ms", "cv": -1}})
        }),
        &["components.app.service_time.lognormal.cv: must not be negative, got -1"],
    );
}

#[test]
fn distribution_given_as_a_bare_name() {
    rejects(
        &model(|m| m["components"]["app"]["service_time"] = json!("exponential")),
        &[
            "components.app.service_time: expected an object such as {\"exponential\": {...}}",
            "got the bare name \"exponential\"",
        ],
    );
}

#[test]
fn distribution_with_two_families() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] =
                json!({"constant": "1ms", "exponential": {"mean": "1ms"}})
        }),
        &[
            "components.app.service_time: expected an object with exactly one key",
            "got an object with 2 keys (\"constant\", \"exponential\")",
        ],
    );
}

#[test]
fn empirical_point_of_the_wrong_length() {
    rejects(
        &model(|m| {
            m["components"]["app"]["service_time"] = json!({"empirical": {"cdf": [["1ms"]]}})
        }),
        &[
            "components.app.service_time.empirical.cdf[0]: expected a [duration, probability] pair",
            "got a list of 1 item",
        ],
    );
}

// ---- durations ----------------------------------------------------------------------------------

#[test]
fn unknown_time_unit() {
    rejects(
        &model(|m| m["duration"] = json!("5 parsecs")),
        &[
            "duration: unknown time unit \"parsecs\" in \"5 parsecs\"",
            "expected one of ns, us",
        ],
    );
}

#[test]
fn bare_number_for_a_duration() {
    rejects(
        &model(|m| m["components"]["app"]["service_time"] = json!({"constant": 5})),
        &[
            "components.app.service_time.constant: expected a duration with a unit",
            "got the bare number 5",
        ],
    );
}

#[test]
fn negative_duration() {
    rejects(
        &model(|m| m["workloads"]["users"]["timeout"] = json!("-2s")),
        &[
            "workloads.users.timeout",
            "must not be negative",
            "got \"-2s\"",
        ],
    );
}

#[test]
fn duration_longer_than_the_clock() {
    rejects(
        &model(|m| m["duration"] = json!("1e30s")),
        &[
            "duration: must be shorter than about 584 years",
            "got \"1e30s\"",
        ],
    );
}

#[test]
fn warmup_not_shorter_than_duration() {
    rejects(
        &model(|m| m["warmup"] = json!("10s")),
        &["warmup: must be shorter than duration (\"10s\"), got \"10s\""],
    );
}

// ---- structure ----------------------------------------------------------------------------------

#[test]
fn call_cycle() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"call": "db"}]);
    m["components"]["db"]["handler"] = json!([{"work": "service_time"}, {"call": "app"}]);
    rejects(
        &m.to_string(),
        &["components.app: call cycle: app -> db -> app"],
    );
}

#[test]
fn self_call() {
    rejects(
        &model(|m| m["components"]["app"]["handler"] = json!([{"call": "app"}])),
        &["components.app.handler[0].call: a component cannot call itself (\"app\")"],
    );
}

#[test]
fn route_that_is_not_the_last_step() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"route": {"db": 0.5}}, {"work": "service_time"}]);
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[0].route: a \"route\" step hands the request on (a tail call), so it must be the last step of its handler",
        ],
    );
}

#[test]
fn route_probabilities_summing_over_one() {
    let mut m = with_db();
    m["components"]["app"]["handler"] =
        json!([{"work": "service_time"}, {"route": {"db": 0.7, "app": 0.5}}]);
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[1].route: route probabilities must sum to at most 1 (the rest is the chance the request is done here), got 1.2",
        ],
    );
}

#[test]
fn negative_route_probability() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"route": {"db": -0.1}}]);
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[1].route.db: a route probability must be between 0 and 1, got -0.1",
        ],
    );
}

#[test]
fn route_to_an_unknown_component_suggests_the_nearest() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"route": {"dbb": 0.5}}]);
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[1].route.dbb: no component named \"dbb\"",
            "did you mean \"db\"?",
        ],
    );
}

#[test]
fn route_loop_that_can_never_be_left() {
    // Every way on from app and db routes again with probability 1: nothing ever answers.
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"route": {"db": 1.0}}]);
    m["components"]["db"]["handler"] =
        json!([{"work": "service_time"}, {"route": {"app": 0.25, "db": 0.75}}]);
    rejects(
        &m.to_string(),
        &["components.app.handler[1].route: a routed request can never leave \"app\", \"db\""],
    );
}

#[test]
fn route_loops_that_can_be_left_are_valid() {
    // A route back to the caller, or a call into a component that routes back, is allowed
    // as long as some station can answer.
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"route": {"db": 0.5}}]);
    m["components"]["db"]["handler"] = json!([{"work": "service_time"}, {"route": {"app": 1.0}}]);
    accepted(&m);
}

#[test]
fn route_back_into_a_waiting_caller() {
    // app calls db and waits; db routes every request on to app, whose new visit calls db
    // again: the recursion never ends and nothing ever answers.
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"call": "db"}]);
    m["components"]["db"]["handler"] = json!([{"work": "service_time"}, {"route": {"app": 1.0}}]);
    let stderr = rejects(
        &m.to_string(),
        &[
            "components.app.handler[1].call: a request can never be answered: \"app\" waits here for \"db\", \"db\" routes it on to \"app\" (components.db.handler[1].route), and so on without end",
            "none of \"app\", \"db\" can ever answer",
            "let a route in this loop sum below 1",
        ],
    );
    // One loop, one message.
    assert_eq!(
        stderr.matches("can never be answered").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn route_back_into_a_waiting_caller_of_one_class() {
    // Only writes call db, so only writes loop: reads are answered by app's default handler,
    // and db's route back to app is harmless for them.
    let mut m = with_db();
    m["workloads"]["users"]["classes"] = json!({"read": 0.8, "write": 0.2});
    m["components"]["app"]["handler"] =
        json!({"write": [{"work": "service_time"}, {"call": "db"}]});
    m["components"]["db"]["handler"] = json!([{"work": "service_time"}, {"route": {"app": 1.0}}]);
    let stderr = rejects(
        &m.to_string(),
        &[
            "components.app.handler.write[1].call: a request of class \"write\" can never be answered: \"app\" waits here for \"db\", \"db\" routes it on to \"app\" (components.db.handler[1].route)",
        ],
    );
    assert!(!stderr.contains("\"read\""), "{stderr}");
}

#[test]
fn route_back_through_a_balancer_into_a_waiting_fan_out() {
    // app fans out to db and lb and waits for both; lb's backend sub routes on to app or to
    // itself, with probability 1 in all: every pass fans out again.
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"fan_out": ["db", "lb"]}]);
    m["components"]["lb"] = json!({"kind": "load_balancer", "backends": "sub"});
    m["components"]["sub"] = json!({
        "kind": "service", "service_time": {"constant": "1ms"},
        "handler": [{"work": "service_time"}, {"route": {"app": 0.5, "sub": 0.5}}]
    });
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[0].fan_out: a request can never be answered: \"app\" waits here for \"lb\", balancer \"lb\" passes it to \"sub\", \"sub\" routes it on to \"app\" (components.sub.handler[1].route)",
            "none of \"app\", \"lb\", \"sub\" can ever answer",
        ],
    );
}

#[test]
fn route_back_into_a_waiting_caller_that_may_end_is_valid() {
    // app calls db; db routes back to app with probability 0.5, so each pass ends the
    // recursion with probability 0.5: it terminates with probability 1. app is async: with
    // thread-per-request, the nested visits would hold all of app's workers while waiting
    // and deadlock, which is a matter of capacity, not of the model's shape.
    let mut m = with_db();
    m["duration"] = json!("60s");
    m["workloads"]["users"]["requests"] = json!(300);
    m["components"]["app"]["async"] = json!(true);
    m["components"]["app"]["handler"] = json!([{"work": "service_time"}, {"call": "db"}]);
    m["components"]["db"]["handler"] = json!([{"work": "service_time"}, {"route": {"app": 0.5}}]);
    let (_dir, file) = accepted(&m);
    let doc = json_ok(scalesim().args(["run", file.to_str().unwrap(), "--format", "json"]));
    let c = &doc["runs"][0]["conservation"];
    // The run ends once the 300 requests are answered.
    assert_eq!(c["completed"].as_u64(), Some(300), "{c}");
    assert_eq!(c["in_flight"].as_u64(), Some(0), "{c}");
}

#[test]
fn fan_out_waiting_for_more_answers_than_calls() {
    let mut m = with_db();
    m["components"]["app"]["handler"] = json!([{"fan_out": ["db"], "wait": {"k": 3}}]);
    rejects(
        &m.to_string(),
        &[
            "components.app.handler[0].wait.k: must be between 1 and the number of fanned-out calls (1), got 3",
        ],
    );
}

#[test]
fn weights_of_the_wrong_length() {
    let mut m = base();
    m["components"]["app"]["replicas"] = json!(3);
    m["components"]["lb"] = json!({
        "kind": "load_balancer", "backends": "app",
        "policy": "weighted_round_robin", "weights": [1, 2]
    });
    m["workloads"]["users"]["target"] = json!("lb");
    rejects(
        &m.to_string(),
        &["components.lb.weights: needs one weight per backend instance (3), got 2"],
    );
}

#[test]
fn choices_without_power_of_choices() {
    let mut m = base();
    m["components"]["lb"] = json!({"kind": "load_balancer", "backends": "app", "choices": 2});
    m["workloads"]["users"]["target"] = json!("lb");
    rejects(
        &m.to_string(),
        &["components.lb.choices: \"choices\" applies only with \"policy\": \"power_of_choices\""],
    );
}

#[test]
fn empty_workloads() {
    rejects(
        &model(|m| m["workloads"] = json!({})),
        &["workloads: a model needs at least one workload"],
    );
}

#[test]
fn queue_of_the_wrong_type() {
    rejects(
        &model(|m| m["components"]["app"]["queue"] = json!("big")),
        &[
            "components.app.queue: expected a capacity (a whole number) or an object",
            "got \"big\"",
        ],
    );
}

#[test]
fn handler_of_the_wrong_type() {
    rejects(
        &model(|m| m["components"]["app"]["handler"] = json!(5)),
        &[
            "components.app.handler: expected a list of steps, or an object of step lists by class, got 5",
        ],
    );
}

#[test]
fn trace_file_missing() {
    rejects(
        &model(|m| m["workloads"]["users"]["arrivals"] = json!({"trace": {"file": "absent.csv"}})),
        &[
            "workloads.users.arrivals.trace.file: cannot read trace file",
            "absent.csv",
        ],
    );
}

// ---- --set ----------------------------------------------------------------------------------------

#[test]
fn set_with_an_unknown_component() {
    rejects_with(
        "model.json",
        &model(|_| {}),
        "run",
        &["--set", "components.ap.workers=4"],
        &[
            "components.ap.workers: cannot apply --set: no component named \"ap\"",
            "did you mean \"app\"?",
        ],
    );
}

#[test]
fn set_with_an_unknown_field() {
    rejects_with(
        "model.json",
        &model(|_| {}),
        "check",
        &["--set", "components.app.wrkers=4"],
        &[
            "components.app.wrkers: unknown field \"wrkers\"",
            "did you mean \"workers\"?",
        ],
    );
}

#[test]
fn set_without_a_value() {
    rejects_with(
        "model.json",
        &model(|_| {}),
        "run",
        &["--set", "components.app.workers"],
        &[
            "--set: expected PATH=VALUE",
            "got \"components.app.workers\"",
        ],
    );
}

#[test]
fn set_producing_an_invalid_value() {
    rejects_with(
        "model.json",
        &model(|_| {}),
        "run",
        &["--set", "components.app.workers=0"],
        &["components.app.workers: must be at least 1, got 0"],
    );
    rejects_with(
        "model.json",
        &model(|_| {}),
        "run",
        &["--set", "components.app.service_time.exponential.mean=5"],
        &[
            "components.app.service_time.exponential.mean: expected a duration with a unit",
            "got the bare number 5",
        ],
    );
}

// ---- all at once; run failures --------------------------------------------------------------------

#[test]
fn several_mistakes_are_all_reported() {
    let text = model(|m| {
        m["components"]["app"]["workers"] = json!(0);
        m["components"]["app"]["replicas"] = json!(0);
        m["components"]["app"]["service_time"] = json!({"lognormal": {"mean": "1ms", "cv": -1}});
        m["workloads"]["users"]["arrivals"]["poisson"]["rate"] = json!(-1);
        m["workloads"]["users"]["target"] = json!("ap");
        m["warmup"] = json!("1m");
    });
    let stderr = rejects(
        &text,
        &[
            "components.app.workers: must be at least 1",
            "components.app.replicas: must be at least 1",
            "components.app.service_time.lognormal.cv: must not be negative",
            "workloads.users.arrivals.poisson.rate: rate must be a positive number",
            "workloads.users.target: no component named \"ap\"",
            "warmup: must be shorter than duration",
        ],
    );
    // One line per mistake, each naming the file.
    assert_eq!(stderr.lines().count(), 6, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.contains("model.json: ")),
        "{stderr}"
    );
}

#[test]
fn output_folder_that_cannot_be_created_is_a_run_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.json");
    std::fs::write(&file, model(|_| {})).unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    let out = blocker.join("results");
    let output = scalesim()
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Refused before the run, when the folder is created.
    assert!(stderr.contains("cannot create"), "{stderr}");
    assert!(stderr.contains(&*blocker.to_string_lossy()), "{stderr}");
    assert!(Path::new(&blocker).is_file());
}
