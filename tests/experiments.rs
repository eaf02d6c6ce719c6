//! Experiments: shipped experiments run, results do not depend on threads, shards merge
//! into exactly the unsplit result, resume finishes an interrupted sweep, compare and
//! capacity answer correctly.

use crate::support::{scalesim, stdout_ok};
use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn ok(c: &mut Command) -> String {
    String::from_utf8(stdout_ok(c)).unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small experiment over the horizontal model: 3 points × 2 variants × 3 replications.
fn small_experiment(dir: &Path) -> PathBuf {
    let model = root().join("models/horizontal-lb.json");
    let exp = serde_json::json!({
        "name": "small",
        "model": model.display().to_string(),
        "variants": {
            "lc": {"set": {"components.lb.policy": "least_connections"}},
            "rr": {"set": {"components.lb.policy": "round_robin"}}
        },
        "sweep": {"workloads.users.arrivals.poisson.rate": [1000, 2000, 2600]},
        "replications": 3,
        "duration": "8s",
        "warmup": "1s",
        "plots": [
            {"metric_vs_param": {"metric": "workloads.users.latency.p99_ms"}},
            {"latency_cdf": {"point": 2}},
            {"time_series": {"point": 2}}
        ]
    });
    let f = dir.join("small.json");
    std::fs::write(&f, serde_json::to_string_pretty(&exp).unwrap()).unwrap();
    f
}

/// Every result file of an output folder except the manifests (which hold wall-clock
/// times), with its bytes.
fn result_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if !rel.starts_with("manifest") {
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    out.sort();
    out
}

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (result_files(a), result_files(b));
    let names_a: Vec<&String> = fa.iter().map(|x| &x.0).collect();
    let names_b: Vec<&String> = fb.iter().map(|x| &x.0).collect();
    assert_eq!(names_a, names_b);
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn a_metric_drawn_beside_another_shares_its_plot() {
    let t = tempfile::tempdir().unwrap();
    // The small experiment, shorter, with one plot of p99 and p50 beside it.
    let f = small_experiment(t.path());
    let mut exp: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    exp["replications"] = 2.into();
    exp["duration"] = "3s".into();
    exp["plots"] = serde_json::json!([{"metric_vs_param": {
        "metric": "workloads.users.latency.p99_ms",
        "beside": "workloads.users.latency.p50_ms"
    }}]);
    std::fs::write(&f, exp.to_string()).unwrap();
    let out = t.path().join("out");
    ok(scalesim().args([
        "sweep",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]));
    let svg = std::fs::read_to_string(
        out.join("plots/00-workloads-users-latency-p99-ms-vs-poisson-rate.svg"),
    )
    .unwrap();
    // Both variants' lines of each metric, in one plot.
    for name in ["lc", "rr"] {
        // Legend entries are text elements of their own lines.
        assert!(svg.contains(&format!(">\n{name}\n<")), "{name}: {svg}");
        assert!(
            svg.contains(&format!(">\n{name} · latency.p50_ms\n<")),
            "{name} beside: {svg}"
        );
    }
}

#[test]
fn sweep_writes_every_output_and_is_identical_on_any_thread_count() {
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let one = t.path().join("one");
    let two = t.path().join("two");
    let table = ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
        "--jobs",
        "1",
        "--quiet",
    ]));
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        two.to_str().unwrap(),
        "--jobs",
        "3",
        "--quiet",
    ]));
    assert!(
        table.contains("lc") && table.contains("rr") && table.contains("± "),
        "{table}"
    );
    for f in [
        "tidy.csv",
        "summary.csv",
        "comparisons.csv",
        "results.json",
        "manifest.json",
    ] {
        assert!(one.join(f).exists(), "{f} missing");
    }
    let plots: Vec<_> = std::fs::read_dir(one.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(plots.len(), 6, "3 plots × (png, svg): {plots:?}");
    assert_same_files(&one, &two);
    // Tidy CSV: one row per run and metric, with a column per swept parameter.
    let tidy = std::fs::read_to_string(one.join("tidy.csv")).unwrap();
    assert!(tidy.starts_with(
        "variant,point,replication,seed,param_workloads.users.arrivals.poisson.rate,metric,value\n"
    ));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["groups"].as_array().unwrap().len(), 6);
    let g = &results["groups"][5];
    let p99 = &g["metrics"]["workloads.users.latency.p99_ms"];
    assert_eq!(p99["n"], 3);
    assert!(p99["ci95"].as_f64().unwrap() > 0.0);
    assert!(g["pooled_latency"]["users"]["p99_ms"].as_f64().unwrap() > 0.0);
    // Common random numbers: both variants see the same arrivals, so the paired
    // difference of arrivals is exactly zero.
    let cmp = results["comparisons"].as_array().unwrap();
    let arrivals = cmp
        .iter()
        .find(|c| c["metric"] == "workloads.users.throughput_per_s" && c["point"] == 0)
        .unwrap();
    assert!(arrivals["difference"]["mean"].as_f64().unwrap().abs() < 1.0);
    // Least connections beats round robin on p99 at high load, significantly.
    let p99cmp = cmp
        .iter()
        .find(|c| c["metric"] == "workloads.users.latency.p99_ms" && c["point"] == 2)
        .unwrap();
    assert!(p99cmp["relative"].as_f64().unwrap() > 0.0, "{p99cmp}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["runs_total"], 18);
    assert!(manifest["rng"].as_str().unwrap().contains("rand 0.10.0"));
}

#[test]
fn shards_merge_into_exactly_the_unsplit_result() {
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let whole = t.path().join("whole");
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]));
    let mut dirs = Vec::new();
    for i in 0..3 {
        let d = t.path().join(format!("shard{i}"));
        ok(scalesim().args([
            "sweep",
            exp.to_str().unwrap(),
            "--out",
            d.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
            "--quiet",
        ]));
        assert!(d.join(format!("manifest-shard-{i}-of-3.json")).exists());
        dirs.push(d);
    }
    // Merging two of three shards is refused: the result would be incomplete.
    let merged = t.path().join("merged");
    let out = scalesim()
        .args([
            "merge",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("incomplete"));
    let merged = t.path().join("merged-all");
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    ok(scalesim().args(&args));
    assert_same_files(&whole, &merged);
}

#[test]
fn shard_index_comes_from_the_scheduler_environment() {
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let slurm = t.path().join("slurm");
    ok(scalesim()
        .args([
            "sweep",
            exp.to_str().unwrap(),
            "--out",
            slurm.to_str().unwrap(),
            "--quiet",
        ])
        .env("SLURM_ARRAY_TASK_ID", "5")
        .env("SLURM_ARRAY_TASK_MIN", "4")
        .env("SLURM_ARRAY_TASK_COUNT", "3"));
    assert!(slurm.join("manifest-shard-1-of-3.json").exists());
    let k8s = t.path().join("k8s");
    ok(scalesim()
        .args([
            "sweep",
            exp.to_str().unwrap(),
            "--out",
            k8s.to_str().unwrap(),
            "--shard-count",
            "3",
            "--quiet",
        ])
        .env("JOB_COMPLETION_INDEX", "1"));
    // Same shard, same runs.
    let runs = |d: &Path| result_files(&d.join("runs"));
    assert_eq!(runs(&slurm), runs(&k8s));
    assert_eq!(runs(&slurm).len(), 6, "18 runs / 3 shards");
}

#[test]
fn gnu_parallel_split_merges_exactly() {
    let have = std::process::Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "GNU parallel must be installed in CI (.ci/run installs it)"
        );
        eprintln!("skipped: GNU parallel is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let bin = assert_cmd::cargo::cargo_bin("scalesim");
    let whole = t.path().join("whole");
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]));
    let status = std::process::Command::new("parallel")
        .args(["--will-cite", "-j", "2"])
        .arg(format!(
            "{} sweep {} --shard {{}}/4 --jobs 1 --quiet --out {}/part{{}}",
            bin.display(),
            exp.display(),
            t.path().display()
        ))
        .args([":::", "0", "1", "2", "3"])
        .status()
        .unwrap();
    assert!(status.success());
    let merged = t.path().join("merged");
    let mut args = vec!["merge".to_string()];
    args.extend((0..4).map(|i| t.path().join(format!("part{i}")).display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    ok(scalesim().args(&args));
    assert_same_files(&whole, &merged);
}

#[test]
fn resume_keeps_finished_runs_and_completes_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let full = t.path().join("full");
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        full.to_str().unwrap(),
        "--quiet",
    ]));
    // Simulate an interruption: a shard's worth of runs is missing, results not written.
    let part = t.path().join("part");
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        part.to_str().unwrap(),
        "--shard",
        "0/2",
        "--quiet",
    ]));
    let kept = std::fs::read_dir(part.join("runs")).unwrap().count();
    assert_eq!(kept, 9);
    let stamp = std::fs::metadata(part.join("runs/p00000-v000-r00000.json"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(part.join("manifest-shard-0-of-2.json")).unwrap();
    ok(scalesim().args([
        "sweep",
        exp.to_str().unwrap(),
        "--out",
        part.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]));
    let after = std::fs::metadata(part.join("runs/p00000-v000-r00000.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(stamp, after, "a finished run is not run again");
    assert_same_files(&full, &part);
    // A folder of another experiment is refused.
    let other = t.path().join("other.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&exp).unwrap()).unwrap();
    v["name"] = "other".into();
    std::fs::write(&other, v.to_string()).unwrap();
    let out = scalesim()
        .args([
            "sweep",
            other.to_str().unwrap(),
            "--out",
            part.to_str().unwrap(),
            "--resume",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different experiment"));
    // Also without --resume: the other experiment's runs are not deleted.
    let before = std::fs::read_dir(part.join("runs")).unwrap().count();
    let out = scalesim()
        .args([
            "sweep",
            other.to_str().unwrap(),
            "--out",
            part.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(part.join("runs")).unwrap().count(),
        before
    );
}

#[test]
fn shipped_experiments_run_in_reduced_form() {
    let dir = root().join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    for f in files {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let table = ok(scalesim().args([
            "sweep",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--replications",
            "2",
            "--quiet",
        ]));
        assert!(table.contains("± "), "{}: {table}", f.display());
        assert!(
            out.join("summary.csv").exists() && out.join("plots").exists(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn compare_reports_paired_differences() {
    let t = tempfile::tempdir().unwrap();
    let a = root().join("models/horizontal-lb.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    v["components"]["app"]["replicas"] = 4.into();
    let b = t.path().join("four-instances.json");
    std::fs::write(&b, v.to_string()).unwrap();
    let out = t.path().join("cmp");
    let table = ok(scalesim().args([
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--replications",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(table.contains("four-instances vs horizontal-lb"), "{table}");
    assert!(
        table.contains("four-instances: p99 -"),
        "scaling out cuts p99: {table}"
    );
    assert!(table.contains("% cost"), "{table}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let p99 = results["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "workloads.users.latency.p99_ms")
        .unwrap();
    assert_eq!(p99["significant"], true);
    let cost = results["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "cost.per_hour")
        .unwrap();
    // 3 → 4 instances at 0.10/h plus a 0.025/h balancer: 0.325 → 0.425.
    assert!((cost["difference"]["mean"].as_f64().unwrap() - 0.1).abs() < 1e-9);
}

#[test]
fn capacity_finds_the_mm1_load_for_a_p99_objective() {
    // M/M/1 with mean service 1ms: p99 = ln(100)/(μ − λ), so p99 < 20ms holds for
    // λ < 1000 − 1000·ln(100)/20 = 769.7/s.
    let out = ok(scalesim().args([
        "capacity",
        "models/single-server.json",
        "--slo",
        "p99<20ms",
        "--replications",
        "4",
        "--set",
        "duration=\"120s\"",
        "--json",
    ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    let rate = v["max_rate_per_s"].as_f64().unwrap();
    assert!((rate / 769.7 - 1.0).abs() < 0.06, "found {rate}/s");
    // Where p99 passes 20ms web is about 77% busy: not near saturation (90%), so no
    // service is named first to saturate, and the note names the busiest.
    assert_eq!(v["bottleneck"], Value::Null);
    let note = v["note"].as_str().unwrap();
    assert!(note.contains("the busiest, web"), "{note}");
    let bad = scalesim()
        .args(["capacity", "models/single-server.json", "--slo", "p98<20ms"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn mser5_and_precision_choose_warmup_and_replications() {
    let t = tempfile::tempdir().unwrap();
    let model = root().join("models/single-server.json");
    let exp = serde_json::json!({
        "name": "adaptive",
        "model": model.display().to_string(),
        "replications": 3,
        "duration": "20s",
        "warmup": "mser5",
        "precision": {"metric": "workloads.users.latency.mean_ms", "relative": 0.03, "max_replications": 24}
    });
    let f = t.path().join("adaptive.json");
    std::fs::write(&f, exp.to_string()).unwrap();
    let out = t.path().join("out");
    ok(scalesim().args([
        "sweep",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let g = &results["groups"][0];
    let n = g["replications"].as_u64().unwrap();
    let mean = &g["metrics"]["workloads.users.latency.mean_ms"];
    let rel = mean["ci95"].as_f64().unwrap() / mean["mean"].as_f64().unwrap();
    assert!(n > 3, "precision added replications");
    assert!(rel <= 0.03 || n == 24, "ci {rel} with {n} replications");
    let warm = g["warmup_s"]["mean"].as_f64().unwrap();
    assert!(
        (0.0..=10.0).contains(&warm),
        "detected warm-up {warm}s within the first half"
    );
}

#[test]
fn sigterm_stops_cleanly_and_keeps_finished_runs() {
    let t = tempfile::tempdir().unwrap();
    let model = root().join("models/horizontal-lb.json");
    // Enough runs that the sweep is still busy when the signal arrives.
    let exp = serde_json::json!({
        "name": "long", "model": model.display().to_string(),
        "sweep": {"workloads.users.arrivals.poisson.rate": [1000, 1500, 2000, 2500]},
        "replications": 100, "duration": "20s"
    });
    let f = t.path().join("long.json");
    std::fs::write(&f, exp.to_string()).unwrap();
    let out = t.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("scalesim");
    let child = std::process::Command::new(bin)
        .args([
            "sweep",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "1",
            "--quiet",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runs = out.join("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no run finished in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let result = child.wait_with_output().unwrap();
    assert_eq!(
        result.status.code(),
        Some(1),
        "a stopped sweep exits non-zero so a scheduler retries it"
    );
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    let kept = std::fs::read_dir(&runs).unwrap().count();
    assert!((2..400).contains(&kept), "{kept} runs kept");
    // Every kept record is complete (written atomically) and no temporary file is left.
    for e in std::fs::read_dir(&runs).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with('p') && name.ends_with(".json"),
            "leftover {name}"
        );
        serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap()).unwrap();
    }
    assert!(
        !out.join("summary.csv").exists(),
        "no summary of an unfinished sweep"
    );
}

#[test]
fn merge_from_another_folder_explains_the_relative_experiment_path() {
    // The sweep is given a relative experiment path; merge runs elsewhere without
    // --experiment: it says where the path counts from and how to fix it, and with
    // --experiment it works.
    let t = tempfile::tempdir().unwrap();
    let exp = small_experiment(t.path());
    let name = exp.file_name().unwrap().to_str().unwrap().to_string();
    ok(scalesim().current_dir(t.path()).args([
        "sweep", &name, "--out", "shard0", "--shard", "0/1", "--quiet",
    ]));
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = scalesim()
        .current_dir(&elsewhere)
        .args(["merge", "../shard0", "--out", "../merged"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "not found from",
        "the folder the sweep ran in",
        "--experiment FILE",
        &name,
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!t.path().join("merged").exists());
    ok(scalesim().current_dir(&elsewhere).args([
        "merge",
        "../shard0",
        "--out",
        "../merged",
        "--experiment",
        &format!("../{name}"),
    ]));
    assert!(t.path().join("merged/summary.csv").exists());
}
