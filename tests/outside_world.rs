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

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path that cannot be created, even by root: a folder under a regular file.
fn unwritable(dir: &Path) -> PathBuf {
    let file = dir.join("file.txt");
    std::fs::write(&file, "not a folder").unwrap();
    file.join("sub")
}

/// Asserts a one-line error naming `path`, with the operating system's cause once.
fn assert_one_line_naming(out: &Output, path: &Path) {
    let err = stderr_of(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "cause repeated: {err}");
}

#[test]
fn run_out_to_an_unwritable_folder_fails_before_the_simulation() {
    let t = tempfile::tempdir().unwrap();
    let bad = unwritable(t.path());
    // 100,000 simulated seconds take tens of seconds: refused at once instead.
    let started = std::time::Instant::now();
    let out = bin()
        .args([
            "run",
            "models/single-server.json",
            "--set",
            "duration=100000s",
        ])
        .arg("--out")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_one_line_naming(&out, &bad);
    // Under /proc nothing can be created either.
    let out = bin()
        .args([
            "run",
            "models/single-server.json",
            "--out",
            "/proc/scalesim-x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("/proc/scalesim-x"),
        "{}",
        stderr_of(&out)
    );
    // The folder is writable but a file cannot be: the table still reaches stdout, then
    // the error names the file, and no temporary file is left.
    let dir = t.path().join("res");
    std::fs::create_dir_all(dir.join("result.json")).unwrap();
    let out = bin()
        .args(["run", "models/single-server.json"])
        .args(SHORT)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("p99"),
        "the table is printed"
    );
    assert_one_line_naming(&out, &dir.join("result.json"));
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["result.csv", "result.json", "topology.dot"],
        "no temporary file left"
    );
}

#[test]
fn sweep_and_compare_errors_name_the_path_once() {
    let t = tempfile::tempdir().unwrap();
    let bad = unwritable(t.path());
    let exp = tiny_experiment(t.path(), "tiny", 400);
    let out = bin()
        .args(["sweep", exp.to_str().unwrap(), "-q", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_naming(&out, &bad);
    let out = bin()
        .args([
            "compare",
            "models/single-server.json",
            "models/fan-out.json",
            "-q",
        ])
        .args(["--replications", "2", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_naming(&out, &bad);
}

/// Runs a sweep of `exp` into `out` and returns its output.
fn sweep(exp: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["sweep", exp.to_str().unwrap(), "-q", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_failed_merge_leaves_no_output_and_names_the_shard_file() {
    let t = tempfile::tempdir().unwrap();
    let exp = tiny_experiment(t.path(), "tiny", 400);
    for i in 0..2 {
        let out = sweep(
            &exp,
            &t.path().join(format!("s{i}")),
            &["--shard", &format!("{i}/2")],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let before = files_in(t.path());
    let merge = |extra: &[&str]| {
        bin()
            .current_dir(t.path())
            .args(["merge", "s0", "s1"])
            .args(extra)
            .output()
            .unwrap()
    };
    // A damaged record in the second shard: named as the user's file, nothing written.
    let record = t.path().join("s1/runs/p00000-v000-r00001.json");
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, &good[..good.len() / 2]).unwrap();
    for extra in [&["--out", "merged"][..], &[]] {
        let out = merge(extra);
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.contains("s1/runs/p00000-v000-r00001.json"), "{err}");
        assert!(!err.contains("merging"), "names the copy: {err}");
        assert_eq!(files_in(t.path()), before, "no partial folder is left");
        assert_eq!(
            files_in(&t.path().join("s0")),
            ["manifest-shard-0-of-2.json", "runs"]
        );
    }
    // A run of another experiment in a shard: named too.
    let other = tiny_experiment(t.path(), "other", 500);
    let before = files_in(t.path());
    let o = sweep(&other, &t.path().join("o"), &["--replications", "2"]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    std::fs::copy(t.path().join("o/runs/p00000-v000-r00001.json"), &record).unwrap();
    let out = merge(&["--out", "merged"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("s1/runs/p00000-v000-r00001.json"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("different experiment"),
        "{}",
        stderr_of(&out)
    );
    let mut expected = [&before[..], &["o".to_string()]].concat();
    expected.sort();
    assert_eq!(files_in(t.path()), expected);
    // A missing run: the message names the shard folders, not the copy.
    std::fs::remove_file(&record).unwrap();
    let out = merge(&["--out", "merged"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("s0, s1: incomplete"), "{err}");
    assert!(!t.path().join("merged").exists());
    // Repaired, the merge succeeds, into the first shard's folder by default.
    std::fs::write(&record, &good).unwrap();
    let out = merge(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(t.path().join("s0/summary.csv").exists());
    assert_eq!(
        std::fs::read_dir(t.path().join("s0/runs")).unwrap().count(),
        4
    );
    assert!(t.path().join("s0/manifest-shard-0-of-2.json").exists());
}

#[test]
fn a_second_sweep_into_a_busy_folder_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let long = serde_json::json!({
        "name": "long",
        "model": root().join("models/horizontal-lb.json").display().to_string(),
        "sweep": {"workloads.users.arrivals.poisson.rate": [1000, 1500, 2000, 2500]},
        "replications": 100, "duration": "20s"
    });
    let f = t.path().join("long.json");
    std::fs::write(&f, long.to_string()).unwrap();
    let dir = t.path().join("out");
    let mut first = bin()
        .args(["sweep", f.to_str().unwrap(), "--jobs", "1", "-q", "--out"])
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = dir.join("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no run finished in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(dir.join(".scalesim.lock").exists());
    // The same sweep again, a resumed one, a comparison and a merge into it: refused,
    // and the first one's runs are left alone.
    let tiny = tiny_experiment(t.path(), "tiny", 400);
    for out in [
        sweep(&f, &dir, &[]),
        sweep(&f, &dir, &["--resume"]),
        sweep(&tiny, &dir, &[]),
        bin()
            .args([
                "compare",
                "models/single-server.json",
                "models/fan-out.json",
                "-q",
                "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap(),
        bin()
            .args(["merge", "--experiment", f.to_str().unwrap()])
            .arg(&dir)
            .output()
            .unwrap(),
    ] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(
            err.contains("is in use by another scalesim command"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(std::fs::read_dir(&runs).unwrap().count() >= 1);
    }
    // Killed, the first sweep holds nothing: its lock file stays but blocks no one.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(dir.join(".scalesim.lock").exists());
    let out = sweep(&f, &dir, &["--replications", "1", "--resume"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an edited run count is not resumed"
    );
    assert!(
        stderr_of(&out).contains("earlier version"),
        "{}",
        stderr_of(&out)
    );
    let out = sweep(&f, &dir, &["--replications", "1"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !dir.join(".scalesim.lock").exists(),
        "removed by its last holder"
    );
}

#[test]
fn reruns_after_an_edit_replace_their_own_results() {
    let t = tempfile::tempdir().unwrap();
    let exp = tiny_experiment(t.path(), "tiny", 400);
    let dir = t.path().join("out");
    assert!(sweep(&exp, &dir, &[]).status.success());
    assert!(dir.join("comparisons.csv").exists());
    // The same experiment, edited: one variant, three replications. Without --resume,
    // the earlier results are replaced, including the comparisons it no longer has.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exp).unwrap()).unwrap();
    v["variants"] = serde_json::json!({"one": {"set": {}}});
    v["replications"] = 3.into();
    std::fs::write(&exp, v.to_string()).unwrap();
    let out = sweep(&exp, &dir, &["--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("without --resume"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.join("runs")).unwrap().count(),
        4,
        "kept"
    );
    let out = sweep(&exp, &dir, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        files_in(&dir.join("runs")),
        [
            "p00000-v000-r00000.json",
            "p00000-v000-r00001.json",
            "p00000-v000-r00002.json"
        ]
    );
    assert!(
        !dir.join("comparisons.csv").exists(),
        "no stale comparisons"
    );
    // An edited model counts as an edit of the experiment.
    let model = t.path().join("model.json");
    let mut m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/single-server.json")).unwrap(),
    )
    .unwrap();
    m["components"]["web"]["workers"] = 2.into();
    std::fs::write(&model, m.to_string()).unwrap();
    v["model"] = model.display().to_string().into();
    std::fs::write(&exp, v.to_string()).unwrap();
    assert!(sweep(&exp, &dir, &[]).status.success());
    m["components"]["web"]["workers"] = 3.into();
    std::fs::write(&model, m.to_string()).unwrap();
    let out = sweep(&exp, &dir, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Another experiment is refused, with or without --resume, and deletes nothing.
    let other = tiny_experiment(t.path(), "other", 500);
    for extra in [&[][..], &["--resume"]] {
        let out = sweep(&other, &dir, extra);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr_of(&out).contains("different experiment (\"tiny\")"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 3);
    }
    // compare: its own folder per pair of designs, re-run after an edit just works.
    let a = root().join("models/single-server.json");
    let compare = |b: &Path| {
        bin()
            .current_dir(t.path())
            .args(["compare", "--replications", "2", "-q"])
            .arg(&a)
            .arg(b)
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = compare(&model);
        assert!(out.status.success(), "{}", stderr_of(&out));
        m["components"]["web"]["workers"] = 4.into();
        std::fs::write(&model, m.to_string()).unwrap();
    }
    let out = compare(&root().join("models/fan-out.json"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        files_in(&t.path().join("output")),
        [
            "compare-single-server-vs-fan-out",
            "compare-single-server-vs-model"
        ]
    );
}
