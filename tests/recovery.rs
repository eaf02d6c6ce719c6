//! Time series and recovery (issue 11 points 5, 9, 10): time to recover after a fault,
//! requests failed during and after it, the metastable flag, the per-window series of p99
//! and component metrics, the cache flush herd and the policies-under-a-gray-failure
//! experiment.

use crate::support::scalesim;
use scalesim::model::{Format, parse_model_str};
use scalesim::results::{FaultWindowResult, RecoveryResult, RunResult, run_once};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model(v: &Value) -> scalesim::model::Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap()
}

fn run(v: &Value, seed: u64) -> RunResult {
    run_once(&model(v), seed).unwrap()
}

fn shipped(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("models").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn recovery(f: &FaultWindowResult) -> &RecoveryResult {
    f.recovery.as_ref().expect("a recovery for the fault")
}

/// A primary and a replica of 4 workers of 4 ms each (1000 reads/s a copy), reads from
/// either, at 1400 reads/s (70% busy); the replica crashes from 10 s for `length` seconds.
fn two_copies(length: &str, mode: &str) -> Value {
    json!({
        "duration": "40s", "warmup": "2s", "series_window": "500ms",
        "workloads": {"users": {"arrivals": {"poisson": {"rate": 1400}},
                                "classes": {"read": 1}, "target": "db", "timeout": "60s"}},
        "components": {"db": {"kind": "database", "replicas": 1, "reads": "any", "workers": 4,
                              "service_time": {"exponential": {"mean": "4ms"}}}},
        "faults": [{"name": "replica down", "target": "db", "instance": 1,
                    "crash": {"mode": mode}, "at": "10s", "for": length}]
    })
}

#[test]
fn a_crash_of_one_of_two_copies_recovers_after_its_length_plus_the_drain() {
    for seed in [1, 2] {
        let r = run(&two_copies("5s", "refused"), seed);
        assert_eq!(r.faults.len(), 1);
        let rec = recovery(&r.faults[0]);
        // The primary alone gets 1400/s for 5 s against 1000/s: 2000 requests pile up,
        // which drain at 1000 - 700 = 300/s once the replica is back, in 6.7 s.
        let expected = 5.0 + 2000.0 / 300.0;
        let ttr = rec.time_to_recover_s.unwrap();
        assert!(
            (ttr - expected).abs() < 1.5,
            "seed {seed}: time to recover {ttr} s, expected about {expected}: {rec:?}"
        );
        assert_eq!(rec.recovered_s, Some(10.0 + ttr));
        assert!(!rec.metastable, "an absorbed crash is not metastable");
        assert_eq!(rec.workloads, ["users"]);
        assert!(
            (rec.baseline_goodput_per_s - 1400.0).abs() < 50.0,
            "{rec:?}"
        );
        // Its queue series shows the pile-up and the drain.
        let queue = &r.component_series["db"]["queue_mean"];
        let at = |t: f64| queue[(t / 0.5) as usize];
        assert!(
            at(5.0) < 10.0 && at(14.5) > 1000.0 && at(25.0) < 10.0,
            "{queue:?}"
        );
    }
    // Twice as long a crash piles up twice as much: the drain doubles too.
    let short = recovery(&run(&two_copies("5s", "refused"), 1).faults[0]).clone();
    let long = recovery(&run(&two_copies("10s", "refused"), 1).faults[0]).clone();
    let (s, l) = (
        short.time_to_recover_s.unwrap(),
        long.time_to_recover_s.unwrap(),
    );
    assert!((l - 2.0 * s).abs() < 2.0, "5 s: {s} s, 10 s: {l} s");
}

#[test]
fn the_failed_counts_add_up_with_the_error_counters() {
    // One service calling another that is down from 10 s to 15 s; nothing else fails.
    let base = |mode: &str| {
        json!({
            "duration": "30s", "warmup": "2s",
            "workloads": {"users": {"arrivals": {"poisson": {"rate": 500}}, "target": "app",
                                    "timeout": "1s"}},
            "components": {
                "app": {"kind": "service", "workers": 32,
                        "handler": [{"work": {"exponential": {"mean": "1ms"}}}, {"call": "backend"}]},
                "backend": {"kind": "service", "workers": 8,
                       "service_time": {"exponential": {"mean": "2ms"}}}
            },
            "faults": [{"target": "backend", "crash": {"mode": mode}, "at": "10s", "for": "5s"}]
        })
    };
    for mode in ["refused", "black_hole"] {
        let r = run(&base(mode), 1);
        let w = &r.workloads["users"];
        let rec = recovery(&r.faults[0]);
        assert!(
            w.failed > 2000,
            "{mode}: about 5 s of 500/s fail: {}",
            w.failed
        );
        assert_eq!(
            rec.failed_during + rec.failed_after,
            w.failed,
            "{mode}: {rec:?} against {:?}",
            w.errors
        );
        assert_eq!(w.failed, w.errors.values().sum::<u64>());
        let fault_causes = w.errors["refused"] + w.errors["crashed"] + w.errors["unavailable"];
        match mode {
            "refused" => {
                // Refused at once: every failure falls inside the fault's windows.
                assert_eq!(rec.failed_after, 0, "{rec:?}");
                assert_eq!(fault_causes, w.failed, "{:?}", w.errors);
            }
            _ => {
                // Black-holed calls time out 1 s after they were sent: those sent in the
                // fault's first 4 s fail during it; those of its last second mostly get
                // their answer once the backend is back, a few time out after it.
                assert_eq!(w.errors["timeout"], w.failed, "{:?}", w.errors);
                assert!(
                    rec.failed_during > 1800 && rec.failed_after < rec.failed_during / 10,
                    "{rec:?}"
                );
            }
        }
        assert!(!rec.metastable);
        let ttr = rec.time_to_recover_s.unwrap();
        assert!((5.0..=7.0).contains(&ttr), "{mode}: {ttr}");
    }
}

#[test]
fn overload_collapse_is_flagged_metastable_and_a_short_burst_is_not() {
    let v = shipped("overload-collapse.json");
    for seed in [1, 2] {
        let r = run(&v, seed);
        assert_eq!(r.faults.len(), 1, "the burst is a fault window");
        let f = &r.faults[0];
        assert_eq!((f.effect.as_str(), f.target.as_str()), ("burst", "users"));
        assert_eq!((f.start_s, f.end_s), (30.0, 32.0));
        let rec = recovery(f);
        assert!(rec.metastable, "seed {seed}: {rec:?}");
        assert_eq!(rec.recovered_s, None);
        assert_eq!(rec.time_to_recover_s, None);
        // Everything after the burst fails: the failures after it are most of the run's.
        assert!(rec.failed_after > 40_000, "{rec:?}");
        assert_eq!(
            rec.failed_during + rec.failed_after,
            r.workloads["users"].failed
        );
    }
    let mut short = v.clone();
    short["workloads"]["users"]["arrivals"]["spike"]["for"] = json!("0.5s");
    let r = run(&short, 1);
    let rec = recovery(&r.faults[0]);
    assert!(!rec.metastable, "{rec:?}");
    let ttr = rec.time_to_recover_s.unwrap();
    assert!(ttr < 10.0, "the short burst drains within seconds: {rec:?}");
}

#[test]
fn metastable_after_and_the_bands_are_settings() {
    let mut v = two_copies("5s", "refused");
    // Back 7 s after the end: metastable when that is too long.
    v["recovery"] = json!({"metastable_after": "5s"});
    let rec = recovery(&run(&v, 1).faults[0]).clone();
    assert!(rec.metastable, "{rec:?}");
    assert!(rec.recovered_s.is_some());
    // A looser p99 band takes the system back sooner.
    v["recovery"] = json!({"p99_factor": 100, "goodput_band": 0.5});
    let loose = recovery(&run(&v, 1).faults[0]).clone();
    assert!(
        loose.time_to_recover_s.unwrap() < rec.time_to_recover_s.unwrap() - 2.0,
        "{loose:?} against {rec:?}"
    );
    for (field, value, message) in [
        ("goodput_band", json!(1.5), "between 0 and 1"),
        ("p99_factor", json!(0.5), "1 or more"),
        ("metastable_after", json!("0s"), "longer than zero"),
    ] {
        let mut bad = two_copies("5s", "refused");
        bad["recovery"] = json!({ field: value });
        let errors =
            parse_model_str(&bad.to_string(), Format::Json, Path::new("."), &[]).unwrap_err();
        let e = errors
            .iter()
            .find(|e| e.path == format!("recovery.{field}"))
            .unwrap_or_else(|| panic!("{field}: {errors:?}"));
        assert!(e.message.contains(message), "{e:?}");
    }
}

#[test]
fn component_series_add_up_to_the_totals() {
    let r = run(&shipped("gray-failure.json"), 1);
    let w = r.series["rr_users"].window_s;
    let n = r.series["rr_users"].completed.len();
    assert_eq!(r.series["rr_users"].latency_p99_ms.len(), n);
    for (name, c) in &r.components {
        let s = &r.component_series[name];
        for (metric, values) in s {
            assert_eq!(values.len(), n, "{name}.{metric}");
        }
        // Counts add up to the total; rates and time averages, weighted by the measured
        // part of their window (the window holding the end of warm-up is measured only
        // after it), average to it. Windows wholly in warm-up are 0.
        let measured = r.window_end_s - r.window_start_s;
        let part = |k: usize| {
            let (a, b) = (k as f64 * w, (k as f64 + 1.0) * w);
            (b.min(r.window_end_s) - a.max(r.window_start_s)).max(0.0)
        };
        let first = (r.window_start_s / w).floor() as usize;
        for (metric, total) in &c.total {
            let Some(values) = s.get(metric) else {
                continue;
            };
            assert!(values[..first].iter().all(|v| *v == 0.0), "{name}.{metric}");
            let got = if metric.ends_with("_per_s")
                || metric == "utilization"
                || metric.ends_with("_mean")
            {
                values
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v * part(k))
                    .sum::<f64>()
                    / measured
            } else {
                values.iter().sum()
            };
            assert!(
                (got - total).abs() <= 1e-4 * total.abs().max(1.0),
                "{name}.{metric}: series give {got}, total {total}"
            );
        }
    }
    // The slow instance's fleet: utilization of rr_app rises during the fault.
    let u = &r.component_series["rr_app"]["utilization"];
    let at = |t: f64| u[(t / w) as usize];
    assert!(at(30.0) > at(10.0) + 0.1, "{u:?}");
}

#[test]
fn a_model_without_faults_or_bursts_keeps_its_output() {
    let r = run(&shipped("horizontal-lb.json"), 1);
    assert!(r.faults.is_empty() && r.component_series.is_empty());
    assert!(r.series["users"].latency_p99_ms.is_empty());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("component_series").is_none() && json.get("faults").is_none());
    assert!(json["series"]["users"].get("latency_p99_ms").is_none());
}

#[test]
fn the_faults_table_and_csv_show_each_window_with_its_recovery() {
    let path = root().join("models/spof-vs-redundant.json");
    let out = scalesim()
        .args(["run", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let section = &table[table.find("Faults (").expect("a Faults section")..];
    for word in [
        "single database down",
        "pair primary down",
        "crash refused",
        "recover s",
        "failed during",
        "metastable",
    ] {
        assert!(section.contains(word), "{word}: {section}");
    }
    let out = scalesim()
        .args(["run", path.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    for metric in [
        "window_0_time_to_recover_s",
        "window_0_failed_during",
        "window_0_failed_after",
        "window_0_metastable",
    ] {
        assert!(
            csv.lines()
                .any(|l| l.contains("fault,single database down,") && l.contains(metric)),
            "{metric}"
        );
    }
}

#[test]
fn a_cache_flush_multiplies_database_load_and_coalescing_cuts_it() {
    let v = shipped("cache-flush-herd.json");
    for seed in [1, 2] {
        let r = run(&v, seed);
        let w = r.series["plain_users"].window_s;
        let flush = (30.0 / w).round() as usize;
        let before = |db: &str| {
            let a = &r.component_series[db]["arrived"];
            a[flush - 50..flush].iter().sum::<f64>() / 50.0
        };
        // Database reads per window in the 2 s after the flush, against before.
        let herd = |db: &str| {
            let a = &r.component_series[db]["arrived"];
            let peak = a[flush..flush + 10].iter().fold(0.0_f64, |m, x| m.max(*x));
            let excess: f64 = a[flush..flush + 50].iter().map(|x| x - before(db)).sum();
            (peak / before(db), excess)
        };
        let (plain_peak, plain_excess) = herd("plain_db");
        let (coalesced_peak, coalesced_excess) = herd("coalesced_db");
        assert!(plain_peak > 3.5, "seed {seed}: plain peak {plain_peak}x");
        assert!(
            coalesced_peak > 2.0,
            "seed {seed}: coalesced {coalesced_peak}x"
        );
        assert!(
            coalesced_peak < 0.9 * plain_peak && coalesced_excess < 0.85 * plain_excess,
            "seed {seed}: coalescing cuts the herd: {coalesced_peak}x {coalesced_excess} against {plain_peak}x {plain_excess}"
        );
        let rec = |name: &str| recovery(r.faults.iter().find(|f| f.name == name).unwrap()).clone();
        let (plain, coalesced) = (rec("plain flush"), rec("coalesced flush"));
        assert!(
            plain.failed_after > 300 && coalesced.failed_after < plain.failed_after / 10,
            "seed {seed}: {plain:?} {coalesced:?}"
        );
        assert!(
            plain.time_to_recover_s.unwrap() > 3.0 + coalesced.time_to_recover_s.unwrap(),
            "seed {seed}: {plain:?} {coalesced:?}"
        );
        assert!(!plain.metastable && !coalesced.metastable);
        // The hit ratio falls at the flush and climbs back.
        let hit = &r.component_series["plain_cache"]["hit_ratio"];
        assert!(
            hit[flush] < 0.5 * hit[flush - 1],
            "{:?}",
            &hit[flush - 2..flush + 3]
        );
        assert!(hit[flush + 50] > 0.85 * hit[flush - 1]);
    }
}

#[test]
fn least_connections_fails_fewer_requests_than_round_robin_under_a_gray_failure() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let exp = root().join("experiments/gray-failure-policies.json");
    let status = scalesim()
        .args([
            "sweep",
            exp.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--replications",
            "4",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let comparisons = results["comparisons"].as_array().unwrap();
    for point in 0..3 {
        let c = comparisons
            .iter()
            .find(|c| {
                c["point"] == point
                    && c["variant"] == "round-robin"
                    && c["metric"] == "faults.slow-instance.failed_during"
            })
            .unwrap_or_else(|| panic!("point {point}: {comparisons:?}"));
        // Paired on common random numbers: round robin fails more, significantly.
        assert!(c["difference"]["mean"].as_f64().unwrap() > 1000.0, "{c}");
        assert_eq!(c["significant"], true, "{c}");
    }
}
