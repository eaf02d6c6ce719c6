//! The world outside the simulation: a stdout closed by its reader (`| head -1`), a full
//! disk, an absurd thread count, unwritable output folders, failed merges, two sweeps into
//! one folder, re-runs after an edit. None panics, each failure names its path.

use assert_cmd::cargo::cargo_bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, in the clean environment of `support::scalesim`, run from the repository.
fn bin() -> Command {
    let mut c = Command::new(cargo_bin("scalesim"));
    c.current_dir(root())
        .env("RUST_BACKTRACE", "0")
        .env_remove("SCALESIM_JOBS")
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("SLURM_CPUS_PER_TASK")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_MIN")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX");
    c
}

/// A short single-server run (3 s simulated).
const SHORT: [&str; 4] = ["--set", "duration=3s", "--set", "warmup=0s"];

/// A small experiment (one point, two variants, two replications) in `dir`.
fn tiny_experiment(dir: &Path, name: &str, rate: u32) -> PathBuf {
    let exp = serde_json::json!({
        "name": name,
        "model": root().join("models/single-server.json").display().to_string(),
        "variants": {"one": {"set": {}}, "two": {"set": {"components.web.workers": 2}}},
        "sweep": {"workloads.users.arrivals.poisson.rate": [rate]},
        "replications": 2,
        "duration": "2s",
        "warmup": "0s"
    });
    let f = dir.join(format!("{name}.json"));
    std::fs::write(&f, exp.to_string()).unwrap();
    f
}

/// Every command that prints results, with arguments that make it quick; `dir` holds
/// their output folders and inputs.
fn every_command(dir: &Path) -> Vec<Vec<String>> {
    let exp = tiny_experiment(dir, "tiny", 400);
    let swept = dir.join("swept");
    let out = bin()
        .args(["sweep", exp.to_str().unwrap(), "-q", "--out"])
        .arg(&swept)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = |x: &str| x.to_string();
    let p = |x: &Path| x.display().to_string();
    let mut run = vec![s("run"), s("models/single-server.json")];
    run.extend(SHORT.map(s));
    let mut json = run.clone();
    json.extend([s("--format"), s("json"), s("--replications"), s("3")]);
    let mut capacity = vec![
        s("capacity"),
        s("models/single-server.json"),
        s("--slo"),
        s("p99<50ms"),
        s("--replications"),
        s("2"),
    ];
    capacity.extend(SHORT.map(s));
    let mut capacity_json = capacity.clone();
    capacity_json.push(s("--json"));
    vec![
        run,
        json,
        vec![s("check"), s("models/fan-out.json")],
        vec![s("schema")],
        vec![s("schema"), s("--experiment")],
        vec![s("--help")],
        vec![s("sweep"), p(&exp), s("-q"), s("--out"), p(&dir.join("s2"))],
        vec![s("merge"), p(&swept), s("--out"), p(&dir.join("merged"))],
        vec![
            s("compare"),
            s("models/single-server.json"),
            s("models/single-server.json"),
            s("--replications"),
            s("2"),
            s("-q"),
            s("--out"),
            p(&dir.join("cmp")),
        ],
        capacity,
        capacity_json,
    ]
}

fn assert_no_panic(args: &[String], out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "{args:?} panicked: {err}"
    );
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let t = tempfile::tempdir().unwrap();
    for args in every_command(t.path()) {
        // The reader is gone before the command writes anything: every write fails with
        // EPIPE, as behind `| head -1` once head has its line, or `| true`.
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_no_panic(&args, &out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}: a closed pipe is not an error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Through a shell, as a user types it: head gets its line, the rest is dropped.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} schema | head -1",
            cargo_bin("scalesim").display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_a_one_line_error_naming_stdout() {
    let t = tempfile::tempdir().unwrap();
    for args in every_command(t.path()) {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = bin().args(&args).stdout(full).output().unwrap();
        assert_no_panic(&args, &out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: cannot write to stdout: ") && last.contains("No space"),
            "{args:?}: {err}"
        );
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn an_absurd_thread_count_is_capped_with_a_note() {
    let run = |extra: &[&str], env: Option<(&str, &str)>| {
        let mut c = bin();
        c.args(["run", "models/single-server.json", "--format", "json"])
            .args(SHORT)
            .args(["--replications", "4"])
            .args(extra);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.stdout, String::from_utf8(out.stderr).unwrap())
    };
    let (one, quiet) = run(&["--jobs", "1"], None);
    assert!(!quiet.contains("note"), "{quiet}");
    let (many, note) = run(&["--jobs", "100000"], None);
    assert_eq!(one, many, "the result does not depend on the thread count");
    assert!(
        note.contains("--jobs 100000") && note.contains("threads per available core"),
        "{note}"
    );
    assert_eq!(note.lines().count(), 1, "{note}");
    // 0 means all cores, as when --jobs is not given.
    let (zero, quiet) = run(&["--jobs", "0"], None);
    assert_eq!(one, zero);
    assert!(quiet.is_empty(), "{quiet}");
    // The environment's counts are capped too.
    let (env, note) = run(&[], Some(("RAYON_NUM_THREADS", "100000")));
    assert_eq!(one, env);
    assert!(note.contains("RAYON_NUM_THREADS=100000"), "{note}");
    // A sweep, with the cap, still finishes.
    let t = tempfile::tempdir().unwrap();
    let exp = tiny_experiment(t.path(), "tiny", 400);
    let out = bin()
        .args([
            "sweep",
            exp.to_str().unwrap(),
            "-q",
            "--jobs",
            "100000",
            "--out",
        ])
        .arg(t.path().join("o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
