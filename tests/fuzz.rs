//! Issue 8, point 9: a fuzz test. Structurally random model and experiment documents,
//! valid and broken (the shipped models and experiments mutated: fields deleted, values
//! replaced by values of other types, huge, negative, zero and tiny numbers, odd strings,
//! deep nesting, subtrees moved elsewhere, components copied and rewired, new components
//! with random handlers), are read, validated, estimated and (when valid) run briefly,
//! in-process. Each case must either give a model or errors that each carry a path, and
//! never panic; an accepted model must be within the stated limits (instances, series
//! windows), so no run can allocate without bound. A subset is also given to the binary under
//! `ulimit -v`, which must exit 0, 1 or 2 (never a panic's 101 or a signal).
//!
//! The cases are drawn from a fixed seed, so a run of the suite is reproducible;
//! `SCALESIM_FUZZ_CASES=N` runs more (or fewer), `SCALESIM_FUZZ_SEED=S` explores elsewhere.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use scalesim::error::ModelError;
use scalesim::experiment::plan::plan_from_spec;
use scalesim::experiment::spec::ExperimentSpec;
use scalesim::limits::MAX_SERIES_WINDOWS;
use scalesim::model::{
    Format, MAX_INSTANCES, Model, deserialize_located, parse_model_str, parse_value,
};
use scalesim::workload::Arrivals;
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Generated model documents per suite run (see the module docs to change it).
const MODEL_CASES: u32 = 1500;
/// Generated experiment documents per suite run.
const EXPERIMENT_CASES: u32 = 300;
/// Every this many model cases, the binary runs the case too, under `ulimit -v`.
const BINARY_EVERY: usize = 75;
/// Virtual memory the binary may use, KiB: far below what an unbounded allocation asks for.
const BINARY_VM_KIB: u64 = 4_000_000;
/// A valid model runs in-process only this long (simulated) and with at most this many
/// requests per workload, so each case takes milliseconds.
const RUN_DURATION: &str = "20ms";
const RUN_REQUESTS: u64 = 300;
/// Models with more instances are validated but not run in-process: each instance takes
/// memory (bounded by `MAX_INSTANCES`), and building 100,000 of them per case would make the
/// suite slow, not reveal more.
const RUN_MAX_INSTANCES: u32 = 2_000;
/// Likewise for closed-loop users (at most `MAX_USERS`), each of which has an event from the
/// start of a run.
const RUN_MAX_USERS: u64 = 20_000;
/// Experiment grids with more points are not planned (a plan validates a model per point and
/// variant; the grid's size has its own limit).
const PLAN_MAX_POINTS: usize = 1_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cases(default: u32) -> u32 {
    std::env::var("SCALESIM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(|n: u32| n.max(1) * default / MODEL_CASES.max(1))
        .unwrap_or(default)
        .max(1)
}

fn runner(cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("SCALESIM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// The shipped model documents, as JSON values.
fn model_bases() -> Vec<Value> {
    let mut files: Vec<PathBuf> = ["models", "benches/models"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            parse_value(&text, Format::of_path(f)).unwrap()
        })
        .collect()
}

/// The shipped experiments, their model paths made absolute.
fn experiment_bases() -> Vec<Value> {
    let dir = root().join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let mut v = parse_value(&std::fs::read_to_string(f).unwrap(), Format::Json).unwrap();
            if let Some(m) = v["model"].as_str() {
                v["model"] = json!(dir.join(m).display().to_string());
            }
            v
        })
        .collect()
}

// ---- mutations --------------------------------------------------------------------------------

/// One mutation: where (an index into the document's paths), what, and a seed for values.
type Mutation = (u32, u8, u64);

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every path of a document, parents before children.
fn paths(v: &Value) -> Vec<Vec<Seg>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        match get(v, &p) {
            Some(Value::Object(m)) => {
                for k in m.keys() {
                    let mut q = p.clone();
                    q.push(Seg::Key(k.clone()));
                    out.push(q);
                }
            }
            Some(Value::Array(a)) => {
                for j in 0..a.len() {
                    let mut q = p.clone();
                    q.push(Seg::Index(j));
                    out.push(q);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, s| match s {
        Seg::Key(k) => cur.get(k),
        Seg::Index(i) => cur.get(i),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, s| match s {
        Seg::Key(k) => cur.get_mut(k),
        Seg::Index(i) => cur.get_mut(i),
    })
}

/// Names used in the document as object keys (components, workloads, classes), to rewire
/// references.
fn names(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["components", "workloads"] {
        if let Some(m) = v.get(field).and_then(Value::as_object) {
            out.extend(m.keys().cloned());
        }
    }
    out.extend(["read", "write", "default"].map(String::from));
    out
}

const WEIRD_STRINGS: &[&str] = &[
    "",
    " ",
    "0s",
    "1ns",
    "0.1ns",
    "-5ms",
    "1e400s",
    "1e-400s",
    "NaN",
    "inf",
    "5",
    "10m",
    "584y",
    "1e19ns",
    "mser5",
    "a.b",
    "app[0]",
    "x=y",
    "\u{200b}",
    "\u{0}",
    "💥",
    "random",
    "priority",
    "service",
    "load_balancer",
    "all",
    "any",
    "service_time",
    "read",
    "write",
];

const WEIRD_NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    1e-300,
    5e-324,
    1e-9,
    1e9,
    1e10,
    1e300,
    f64::MAX,
    -1e300,
    4294967295.0,
    4294967296.0,
    65535.0,
    65536.0,
    100000.0,
    100001.0,
    1e7,
    18446744073709551615.0,
];

fn weird_value(seed: u64, doc: &Value) -> Value {
    let pick = (seed >> 8) as usize;
    match seed % 12 {
        0 => Value::Null,
        1 => json!(seed.is_multiple_of(2)),
        2 => json!(WEIRD_NUMBERS[pick % WEIRD_NUMBERS.len()]),
        3 => json!(
            [
                0i64,
                -1,
                1,
                2,
                3,
                7,
                1000,
                i64::MAX,
                i64::MIN,
                u32::MAX as i64
            ][pick % 10]
        ),
        4 => json!(u64::MAX - (pick as u64 % 3)),
        5 => json!(WEIRD_STRINGS[pick % WEIRD_STRINGS.len()]),
        6 => {
            let n = names(doc);
            json!(n[pick % n.len()])
        }
        7 => json!({}),
        8 => json!([]),
        9 => {
            // Deep nesting, around serde_json's recursion limit of 128.
            let depth = 100 + pick % 200;
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!([v]);
            }
            v
        }
        10 => json!("x".repeat(1 + pick % 5000)),
        _ => {
            let d = [
                json!({"exponential": {"mean": "1ms"}}),
                json!({"constant": "0s"}),
                json!({"gamma": {"shape": 1e-300, "scale": "1ms"}}),
                json!({"pareto": {"shape": 0.5, "scale": "1ms"}}),
                json!({"lognormal": {"mu": 700, "sigma": 30}}),
                json!({"mixture": []}),
                json!({"empirical": {"samples": []}}),
                json!([{"call": "app"}]),
                json!([{"route": {"app": 1.0}}]),
                json!({"poisson": {"rate": 1e9}}),
                json!({"closed": {"users": 10000000, "think": {"constant": "0s"}}}),
                json!({"steps": [{"at": "1h", "rate": 5}]}),
            ];
            d[pick % d.len()].clone()
        }
    }
}

/// A service with a random handler over the document's component names.
fn random_service(seed: u64, doc: &Value) -> Value {
    let n = names(doc);
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let steps: Vec<Value> = (0..1 + next() % 4)
        .map(|_| match next() % 5 {
            0 => json!({"work": "service_time"}),
            1 => json!({"call": n[next() % n.len()]}),
            2 => json!({"fan_out": [n[next() % n.len()], n[next() % n.len()]], "wait": "any"}),
            3 => json!({"route": {n[next() % n.len()].clone(): 0.5, n[next() % n.len()].clone(): 0.5}}),
            _ => json!({"work": {"exponential": {"mean": "1ms"}}}),
        })
        .collect();
    json!({
        "kind": if next().is_multiple_of(4) { "load_balancer" } else { "service" },
        "workers": 1 + next() % 4,
        "service_time": {"exponential": {"mean": "2ms"}},
        "handler": steps,
    })
}

fn mutate(doc: &mut Value, (sel, op, seed): Mutation) {
    let all = paths(doc);
    let path = all[sel as usize % all.len()].clone();
    let weird = weird_value(seed, doc);
    match op % 9 {
        // Delete the field or item.
        0 => {
            if let Some((last, parent)) = path.split_last()
                && let Some(p) = get_mut(doc, parent)
            {
                match (p, last) {
                    (Value::Object(m), Seg::Key(k)) => {
                        m.shift_remove(k);
                    }
                    (Value::Array(a), Seg::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        // Replace with an odd value, often of another type.
        1 | 2 => {
            if let Some(v) = get_mut(doc, &path) {
                *v = weird;
            }
        }
        // Scale a number (or, elsewhere, replace with an odd number).
        3 => {
            if let Some(v) = get_mut(doc, &path) {
                let f = [1e9, 1e-9, -1.0, 0.0, 1e300, 1e-300, 1.5][seed as usize % 7];
                *v = match v.as_f64() {
                    Some(x) => json!(x * f).clone(),
                    None => json!(WEIRD_NUMBERS[seed as usize % WEIRD_NUMBERS.len()]),
                };
                if v.is_null() {
                    *v = json!(0);
                }
            }
        }
        // Replace a string by a name of the document (rewiring references).
        4 => {
            let n = names(doc);
            if let Some(v) = get_mut(doc, &path)
                && v.is_string()
            {
                *v = json!(n[seed as usize % n.len()]);
            }
        }
        // Copy an object entry under a new key (a component or workload more).
        5 => {
            if let Some((Seg::Key(k), parent)) = path.split_last()
                && let Some(Value::Object(m)) = get_mut(doc, parent)
                && let Some(v) = m.get(k).cloned()
            {
                m.insert(format!("{k}{}", seed % 100), v);
            }
        }
        // Move another subtree here.
        6 => {
            let other = all[(seed as usize) % all.len()].clone();
            if let Some(v) = get(doc, &other).cloned()
                && let Some(t) = get_mut(doc, &path)
            {
                *t = v;
            }
        }
        // A new component with a random handler.
        7 => {
            let c = random_service(seed, doc);
            if let Some(Value::Object(m)) = doc.get_mut("components") {
                m.insert(format!("c{}", seed % 1000), c);
            }
        }
        // Wrap the value in a list or an object.
        _ => {
            if let Some(v) = get_mut(doc, &path) {
                let inner = v.take();
                *v = if seed.is_multiple_of(2) {
                    json!([inner])
                } else {
                    let mut m = Map::new();
                    m.insert(
                        WEIRD_STRINGS[seed as usize % WEIRD_STRINGS.len()].into(),
                        inner,
                    );
                    Value::Object(m)
                };
            }
        }
    }
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec((any::<u32>(), any::<u8>(), any::<u64>()), 0..5)
}

// ---- the properties ---------------------------------------------------------------------------

/// Runs `f`, turning a panic into a test failure that shows the document.
fn no_panic<T>(what: &str, text: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {msg}\ndocument:\n{text}"))
    })
}

/// Every error names where it is: a JSON path, or a line and column.
fn located(errors: &[ModelError], text: &str) -> Result<(), TestCaseError> {
    for e in errors {
        let root_shape = e.path.is_empty() && e.message.starts_with("expected an object");
        if e.path.is_empty() && !root_shape {
            return Err(TestCaseError::fail(format!(
                "error without a path: {e}\ndocument:\n{text}"
            )));
        }
        if e.message.is_empty() {
            return Err(TestCaseError::fail(format!("empty message at {}", e.path)));
        }
    }
    Ok(())
}

/// An accepted model is within the limits that bound a run's memory.
fn within_limits(m: &Model, text: &str) -> Result<(), TestCaseError> {
    let windows = m.duration.0.div_ceil(m.series_window.0.max(1));
    prop_assert!(
        m.instance_count() <= MAX_INSTANCES,
        "{} instances accepted:\n{text}",
        m.instance_count()
    );
    prop_assert!(
        m.series_window.0 > 0 && windows <= MAX_SERIES_WINDOWS,
        "{windows} series windows accepted:\n{text}"
    );
    Ok(())
}

/// Whether a run of `m` is cheap enough for every case: few instances (each takes memory,
/// up to `MAX_INSTANCES`) and few closed-loop users (each has an event from the start).
fn cheap_to_run(m: &Model) -> bool {
    let users: u64 = m
        .workloads
        .iter()
        .map(|w| match &w.arrivals {
            Arrivals::Closed { users, .. } => u64::from(*users),
            _ => 0,
        })
        .sum();
    m.instance_count() <= RUN_MAX_INSTANCES && users <= RUN_MAX_USERS
}

/// Shortens a valid model (duration, requests) so that its run takes milliseconds.
fn short_sets(m: &Model) -> Vec<String> {
    let mut sets = vec![
        format!("duration=\"{RUN_DURATION}\""),
        "warmup=\"0s\"".to_string(),
        "series_window=\"1ms\"".to_string(),
    ];
    for w in &m.workloads {
        sets.push(format!("workloads.{}.requests={RUN_REQUESTS}", w.name));
    }
    sets
}

fn check_model_text(text: &str, format: Format) -> Result<(), TestCaseError> {
    let base = root().join("models");
    let parsed = no_panic("validation", text, || {
        parse_model_str(text, format, &base, &[])
    })?;
    let model = match parsed {
        Ok(m) => m,
        Err(errors) => return located(&errors, text),
    };
    within_limits(&model, text)?;
    no_panic("estimate", text, || {
        scalesim::analysis::estimate(&model);
    })?;
    if !cheap_to_run(&model) {
        return Ok(());
    }
    let short = no_panic("validation of the shortened model", text, || {
        parse_model_str(text, format, &base, &short_sets(&model))
    })?;
    let Ok(short) = short else {
        // Shortening can make a valid model invalid (it now sends nothing): not a fault.
        return Ok(());
    };
    let result = no_panic("run", text, || scalesim::results::run_once(&short, 1))?;
    if let Ok(r) = result {
        prop_assert!(r.conservation.holds, "conservation broken:\n{text}");
        no_panic("report", text, || {
            scalesim::stats::headline_metrics(&r);
        })?;
    }
    Ok(())
}

fn model_case(bases: &[Value], base: usize, muts: &[Mutation], yaml: bool) -> (String, Format) {
    let mut doc = bases[base % bases.len()].clone();
    for m in muts {
        mutate(&mut doc, *m);
    }
    let text = serde_json::to_string_pretty(&doc).unwrap();
    // JSON text is YAML too: the same document through the YAML reader.
    (text, if yaml { Format::Yaml } else { Format::Json })
}

#[test]
fn random_models_load_validate_and_run_without_panic() {
    let bases = model_bases();
    let mut runner = runner(cases(MODEL_CASES));
    let started = std::time::Instant::now();
    let strategy = (0..bases.len(), mutations(), any::<bool>());
    let result = runner.run(&strategy, |(base, muts, yaml)| {
        let (text, format) = model_case(&bases, base, &muts, yaml);
        check_model_text(&text, format)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "fuzz: {} model cases in {:.1}s",
        cases(MODEL_CASES),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn random_experiments_plan_without_panic() {
    let bases = experiment_bases();
    let mut runner = runner(cases(EXPERIMENT_CASES));
    let strategy = (0..bases.len(), mutations());
    let file = Path::new("fuzz-experiment.json");
    let result = runner.run(&strategy, |(base, muts)| {
        let mut doc = bases[base % bases.len()].clone();
        for m in &muts {
            mutate(&mut doc, *m);
        }
        let text = serde_json::to_string_pretty(&doc).unwrap();
        let points: usize = doc
            .get("sweep")
            .and_then(Value::as_object)
            .map(|axes| {
                axes.values()
                    .map(|v| v.as_array().map_or(1, |a| a.len().max(1)))
                    .product()
            })
            .unwrap_or(1);
        if points > PLAN_MAX_POINTS {
            return Ok(());
        }
        let planned = no_panic("experiment planning", &text, || {
            let value = parse_value(&text, Format::Json).map_err(|e| vec![e])?;
            let spec: ExperimentSpec = deserialize_located(value.clone()).map_err(|e| vec![e])?;
            plan_from_spec(spec, &value, file, &root().join("experiments"), Some(1))
                .map_err(|e| e.errors)
        })?;
        match planned {
            Ok(plan) => {
                for m in plan.models.iter().flatten() {
                    within_limits(m, &text)?;
                }
                Ok(())
            }
            Err(errors) => located(&errors, &text),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A subset of the cases through the binary, under a virtual-memory limit: `check`, and
/// `run` shortened with `--set`. Exit 0, 1 or 2 only.
#[test]
fn random_models_through_the_binary_stay_within_memory() {
    let bases = model_bases();
    let mut runner = runner(cases(MODEL_CASES) / BINARY_EVERY as u32);
    let dir = tempfile::tempdir().unwrap();
    let strategy = (0..bases.len(), mutations());
    let bin = env!("CARGO_BIN_EXE_scalesim");
    let result = runner.run(&strategy, |(base, muts)| {
        let (text, _) = model_case(&bases, base, &muts, false);
        let file = dir.path().join("m.json");
        std::fs::write(&file, &text).unwrap();
        // Only models cheap to run are run (see `cheap_to_run`); every one is checked.
        let cheap = parse_model_str(&text, Format::Json, &root().join("models"), &[])
            .map(|m| cheap_to_run(&m))
            .unwrap_or(true);
        let mut sets = vec![
            format!("--set=duration=\"{RUN_DURATION}\""),
            "--set=warmup=\"0s\"".to_string(),
        ];
        if let Some(ws) = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("workloads").and_then(Value::as_object).cloned())
        {
            for w in ws.keys() {
                sets.push(format!("--set=workloads.{w}.requests={RUN_REQUESTS}"));
            }
        }
        for command in ["check", "run"] {
            if command == "run" && !cheap {
                continue;
            }
            let script =
                format!("ulimit -v {BINARY_VM_KIB}; exec \"$0\" {command} \"$@\" >/dev/null");
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(&script).arg(bin).arg(&file);
            if command == "run" {
                c.args(&sets);
            }
            let out = c
                .env("RUST_BACKTRACE", "0")
                .env("RAYON_NUM_THREADS", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert!(
                matches!(out.status.code(), Some(0..=2)) && !stderr.contains("panicked"),
                "scalesim {command}: {:?}\n{stderr}\ndocument:\n{text}",
                out.status
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
