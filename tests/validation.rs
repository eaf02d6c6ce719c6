//! Validation against queueing theory: the service and load-balancing cases of
//! `tests/validation/` (a copy of the shared reference suite, with its README).
//!
//! Every check follows the suite's tolerance classes (tests/validation/README.md §0):
//! R ≥ 10 independent replications with warm-up deleted, mean `m` and standard error `s`;
//! class S passes when |m − ref| ≤ 3s + b·|ref| with the precision guard 3s ≤ g·|ref|;
//! class M adds the reference's own standard error r: |m − ref| ≤ 3·√(s² + r²) + b·|ref|.
//! The bias allowance b includes the latency histogram's 0.1% resolution.
//! Time unit: u = 1 ms (so μ = 1 is a mean service time of "1ms" and λ = 0.8 is 800/s).

use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

/// Bias allowance for means, probabilities and utilizations (README §0).
const B_MEAN: f64 = 0.005;
/// Bias allowance for p50–p99, plus the histogram's 0.1% resolution.
const B_PCT: f64 = 0.011;
/// Bias allowance for p50–p99 of queue waits, plus the wait histogram's 0.8% resolution
/// (2 significant digits: 128 sub-buckets per half power of two).
const B_WAIT_PCT: f64 = 0.018;
/// Bias allowance for p99.9, plus the histogram's resolution.
const B_P999: f64 = 0.021;
/// Precision guards: 3s must be within these shares of the reference.
const G_MEAN: f64 = 0.02;
const G_P99: f64 = 0.04;
const G_P999: f64 = 0.06;
/// Absolute guard for probabilities below 0.1.
const G_SMALL_PROB_ABS: f64 = 0.005;

/// One reference value from cases.jsonl.
fn reference(case: &str, metric: &str, params: &[(&str, Value)]) -> (f64, Option<f64>) {
    let text = include_str!("validation/cases.jsonl");
    let found: Vec<(f64, Option<f64>)> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("cases.jsonl is JSON lines"))
        .filter(|c| c["case"] == case && c["metric"] == metric)
        .filter(|c| params.iter().all(|(k, v)| &c["params"][*k] == v))
        .map(|c| (c["value"].as_f64().unwrap(), c["se"].as_f64()))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "reference {case}/{metric} {params:?} matched {} lines",
        found.len()
    );
    found[0]
}

/// Replications of one model, and the checks made on them.
struct Experiment {
    label: String,
    runs: Vec<RunResult>,
    failures: Vec<String>,
    passed: usize,
}

fn model(v: Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

impl Experiment {
    fn run(label: &str, v: Value, replications: usize) -> Experiment {
        let m = model(v);
        let runs = replicate(&m, 20_261_122, replications).unwrap();
        for r in &runs {
            assert!(
                r.conservation.holds,
                "{label}: conservation broken: {:?}",
                r.conservation
            );
        }
        Experiment {
            label: label.to_string(),
            runs,
            failures: Vec::new(),
            passed: 0,
        }
    }

    fn stat(&self, f: &dyn Fn(&RunResult) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.runs.iter().map(f).collect();
        let e = scalesim::stats::Estimate::of(&v);
        (e.mean, e.se())
    }

    /// Class S (or M when the reference has its own standard error).
    fn check(
        &mut self,
        what: &str,
        f: &dyn Fn(&RunResult) -> f64,
        reference: (f64, Option<f64>),
        b: f64,
        g: f64,
    ) {
        let (m, s) = self.stat(f);
        let (r, r_se) = reference;
        let tol = match r_se {
            Some(rs) => 3.0 * (s * s + rs * rs).sqrt() + b * r.abs(),
            None => 3.0 * s + b * r.abs(),
        };
        let guard = if r.abs() < 0.1 && g == G_MEAN {
            G_SMALL_PROB_ABS
        } else {
            g * r.abs()
        };
        let ok = (m - r).abs() <= tol;
        let precise = 3.0 * s <= guard;
        // Shown with --nocapture, or with a failure.
        println!(
            "{}: {what}: simulated {m:.6} ± {:.6} (3s), reference {r:.6}, tolerance {tol:.6}, guard {guard:.6}",
            self.label,
            3.0 * s
        );
        if ok && precise {
            self.passed += 1;
        } else {
            self.failures.push(format!(
                "{}: {what}: simulated {m:.6} ± {:.6} (3s), reference {r:.6}, tolerance {tol:.6}{}",
                self.label,
                3.0 * s,
                if precise {
                    String::new()
                } else {
                    format!(", precision guard {guard:.6} not met")
                }
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n{}",
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n")
        );
    }
}

fn total(r: &RunResult, component: &str, metric: &str) -> f64 {
    r.components[component].total[metric]
}
fn w(r: &RunResult) -> &scalesim::results::WorkloadResult {
    &r.workloads["w"]
}

/// One service `s` fed by Poisson arrivals at `rate_per_ms`, time unit 1 ms.
fn station(
    arrivals: Value,
    workers: u32,
    service: Value,
    queue: Option<Value>,
    duration_s: f64,
    warmup_s: f64,
) -> Value {
    let mut s = json!({"kind": "service", "workers": workers, "service_time": service});
    if let Some(q) = queue {
        s["queue"] = q;
    }
    json!({
        "duration": format!("{duration_s}s"),
        "warmup": format!("{warmup_s}s"),
        "workloads": {"w": {"arrivals": arrivals, "target": "s"}},
        "components": {"s": s}
    })
}

fn poisson(per_ms: f64) -> Value {
    json!({"poisson": {"rate": per_ms * 1000.0}})
}
fn exp_ms(mean: f64) -> Value {
    json!({"exponential": {"mean": format!("{mean}ms")}})
}

fn lat(field: &'static str) -> impl Fn(&RunResult) -> f64 {
    move |r| {
        let l = &w(r).latency;
        match field {
            "mean" => l.mean_ms,
            "p50" => l.p50_ms,
            "p90" => l.p90_ms,
            "p95" => l.p95_ms,
            "p99" => l.p99_ms,
            "p999" => l.p999_ms,
            _ => unreachable!(),
        }
    }
}

/// A percentile of the queue wait at component `s`, in ms.
fn wq(field: &'static str) -> impl Fn(&RunResult) -> f64 {
    move |r| {
        let l = r.components["s"]
            .detail
            .histogram("wait")
            .expect("services report waits");
        match field {
            "p50" => l.p50_ms,
            "p90" => l.p90_ms,
            "p99" => l.p99_ms,
            _ => unreachable!(),
        }
    }
}

/// Share of time with exactly `n` requests at an instance of `component` (averaged over
/// its instances).
fn occupancy(r: &RunResult, component: &str, n: usize) -> f64 {
    r.components[component]
        .detail
        .distribution("occupancy")
        .get(n)
        .copied()
        .unwrap_or(0.0)
}

/// Share of time an instance of `component` holds `k` requests or more.
fn at_least(r: &RunResult, component: &str, k: usize) -> f64 {
    1.0 - (0..k).map(|n| occupancy(r, component, n)).sum::<f64>()
}

#[test]
fn q1_mm1_basic() {
    // Kleinrock Vol. 1 §3.2: M/M/1 λ = 0.8, μ = 1. Relaxation time 89 u: warm-up 10 s.
    let case = "mm1_basic";
    let mut e = Experiment::run(
        case,
        station(poisson(0.8), 1, exp_ms(1.0), None, 400.0, 10.0),
        12,
    );
    let r = |m: &str| reference(case, m, &[]);
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        r("utilization"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        r("mean_number_in_system_L"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "Lq",
        &|x| total(x, "s", "queue_mean"),
        r("mean_number_in_queue_Lq"),
        B_MEAN,
        G_MEAN,
    );
    e.check("W", &lat("mean"), r("mean_response_time_W"), B_MEAN, G_MEAN);
    e.check(
        "Wq",
        &|x| total(x, "s", "wait_mean_ms"),
        r("mean_wait_Wq"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "P(wait)",
        &|x| total(x, "s", "wait_share"),
        r("prob_wait"),
        B_MEAN,
        G_MEAN,
    );
    e.check("T p50", &lat("p50"), r("response_time_p50"), B_PCT, G_P99);
    e.check("T p90", &lat("p90"), r("response_time_p90"), B_PCT, G_P99);
    e.check("T p95", &lat("p95"), r("response_time_p95"), B_PCT, G_P99);
    e.check("T p99", &lat("p99"), r("response_time_p99"), B_PCT, G_P99);
    e.check(
        "T p99.9",
        &lat("p999"),
        r("response_time_p99.9"),
        B_P999,
        G_P999,
    );
    e.check("Wq p50", &wq("p50"), r("wait_Wq_p50"), B_WAIT_PCT, G_P99);
    e.check("Wq p90", &wq("p90"), r("wait_Wq_p90"), B_WAIT_PCT, G_P99);
    e.check("Wq p99", &wq("p99"), r("wait_Wq_p99"), B_WAIT_PCT, G_P99);
    e.finish();
}

#[test]
fn q2_hockey_stick_mm1_md1_mm10() {
    // Mean response (and M/M/1 p99) over mean service against load. Run length per ρ from
    // the README's formula; ρ = 0.95 and 0.99 need 10⁷–10⁸ u and have their own test below.
    let case = "hockey_stick";
    // Durations give each replication at least ~100k requests (for the p99) and meet the
    // 2% precision guard on the mean at high load.
    for &(rho, secs) in &[
        (0.1, 1000.0),
        (0.3, 400.0),
        (0.5, 250.0),
        (0.7, 250.0),
        (0.8, 300.0),
        (0.9, 1400.0),
    ] {
        let warm = 60.0 * (1.0 / (1.0 - f64::sqrt(rho)).powi(2)) / 1000.0;
        let mut e = Experiment::run(
            &format!("M/M/1 ρ={rho}"),
            station(poisson(rho), 1, exp_ms(1.0), None, secs, warm.max(1.0)),
            10,
        );
        let p = [("model", json!("M/M/1")), ("lambda", json!(rho))];
        e.check(
            "W",
            &lat("mean"),
            reference(case, "mean_response_time_over_mean_service", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "p99",
            &lat("p99"),
            reference(case, "response_time_p99_over_mean_service", &p),
            B_PCT,
            G_P99,
        );
        e.finish();

        let mut e = Experiment::run(
            &format!("M/D/1 ρ={rho}"),
            station(
                poisson(rho),
                1,
                json!({"constant": "1ms"}),
                None,
                secs / 2.0,
                warm.max(1.0),
            ),
            10,
        );
        let p = [("model", json!("M/D/1")), ("lambda", json!(rho))];
        e.check(
            "W",
            &lat("mean"),
            reference(case, "mean_response_time_over_mean_service", &p),
            B_MEAN,
            G_MEAN,
        );
        e.finish();

        let lambda10 = (rho * 10.0 * 1e6_f64).round() / 1e6;
        let mut e = Experiment::run(
            &format!("M/M/10 ρ={rho}"),
            station(
                poisson(lambda10),
                10,
                exp_ms(1.0),
                None,
                (secs / 10.0).min(60.0),
                2.0,
            ),
            10,
        );
        let p = [("model", json!("M/M/10")), ("lambda", json!(lambda10))];
        e.check(
            "W",
            &lat("mean"),
            reference(case, "mean_response_time_over_mean_service", &p),
            B_MEAN,
            G_MEAN,
        );
        e.finish();
    }
}

/// ρ = 0.99 smoke test (README Q2: "a smoke test with a 5% tolerance, which needs about
/// 2·10⁷ u"). The README's run-length formula gives a relative standard error of 1% for
/// 4·10⁸ u at ρ = 0.99, so 5% for 1.6·10⁷ u ≈ 2·10⁷ u: its 5% is the precision of the mean
/// that such a run buys. So here the precision guard is s ≤ 5% of the reference, that is
/// 3s ≤ 15% in place of the class S guard 3s ≤ 2%, and twice that for the p99, as the
/// default guards double from means (2%) to p99 (4%). The pass rule is class S's own,
/// |m − ref| ≤ 3s + b·|ref|: this catches errors beyond roughly 10–20%, not 1%.
const G_SMOKE_MEAN: f64 = 0.15;
const G_SMOKE_P99: f64 = 0.30;

/// One row of the hockey stick at load `rho`: M/M/1 (W and p99), M/D/1 and M/M/10 (W), ten
/// replications each, measured for `secs` = [M/M/1, M/D/1, M/M/10] seconds after a warm-up
/// of 50 relaxation times (README §0): 1/(1 − √ρ)² u for the single servers, and, by the
/// heavy-traffic likeness of M/M/c to one server c times as fast, a tenth of that for
/// M/M/10. `g_mean` and `g_p99` are the precision guards.
fn hockey_stick_row(rho: f64, secs: [f64; 3], g_mean: f64, g_p99: f64) {
    let case = "hockey_stick";
    let relax_s = 1.0 / (1.0 - f64::sqrt(rho)).powi(2) / 1000.0;
    let warm = (50.0 * relax_s).ceil();
    let mut e = Experiment::run(
        &format!("M/M/1 ρ={rho}"),
        station(poisson(rho), 1, exp_ms(1.0), None, warm + secs[0], warm),
        10,
    );
    let p = [("model", json!("M/M/1")), ("lambda", json!(rho))];
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time_over_mean_service", &p),
        B_MEAN,
        g_mean,
    );
    e.check(
        "p99",
        &lat("p99"),
        reference(case, "response_time_p99_over_mean_service", &p),
        B_PCT,
        g_p99,
    );
    e.finish();

    let mut e = Experiment::run(
        &format!("M/D/1 ρ={rho}"),
        station(
            poisson(rho),
            1,
            json!({"constant": "1ms"}),
            None,
            warm + secs[1],
            warm,
        ),
        10,
    );
    let p = [("model", json!("M/D/1")), ("lambda", json!(rho))];
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time_over_mean_service", &p),
        B_MEAN,
        g_mean,
    );
    e.finish();

    let lambda10 = (rho * 10.0 * 1e6_f64).round() / 1e6;
    let warm10 = (50.0 * relax_s / 10.0).ceil();
    let mut e = Experiment::run(
        &format!("M/M/10 ρ={rho}"),
        station(
            poisson(lambda10),
            10,
            exp_ms(1.0),
            None,
            warm10 + secs[2],
            warm10,
        ),
        10,
    );
    let p = [("model", json!("M/M/10")), ("lambda", json!(lambda10))];
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time_over_mean_service", &p),
        B_MEAN,
        g_mean,
    );
    e.finish();
}

#[test]
fn q2_hockey_stick_at_rho_095() {
    // Class S with the default guards. The README's formula asks T ≈ 3.7·10⁷ u of M/M/1 for
    // the 2% guard on the mean (3s ≤ 2%: s ≤ 0.67%); the p99 (4% guard) needs more: at
    // 10 × 5500 s its 3s was 4.1%, so 10 × 8000 s (3s = 2.0%). M/D/1 converges about twice
    // as fast: 3s = 1.65% at 10 × 3500 s, so 10 × 5000 s for some margin. M/M/10 gave
    // 3s = 2.0% and 1.0% at 10 × 200 s and 10 × 400 s. About 1.6·10⁸ customers: 17 s of
    // CPU, 9 s in release mode on two idle cores.
    hockey_stick_row(0.95, [8_000.0, 5_000.0, 400.0], G_MEAN, G_P99);
}

#[test]
fn q2_hockey_stick_at_rho_099_smoke() {
    // The smoke test (see G_SMOKE_MEAN): 3·10⁷ u measured per single-server model (the
    // README's 2·10⁷ u gave s ≈ 4.9% for the M/M/1 mean here, too close to the 5% guard),
    // and 3·10⁶ u for M/M/10, whose queue drains ten times as fast. The warm-up (50
    // relaxation times: 1990 s, 199 s for M/M/10) adds two thirds again. About 1.5·10⁸
    // customers: 15–19 s of CPU, 8–9 s in release mode on two idle cores.
    hockey_stick_row(0.99, [3_000.0, 3_000.0, 300.0], G_SMOKE_MEAN, G_SMOKE_P99);
}

#[test]
fn q3_mmc_erlang_c() {
    for &(c, lambda, case) in &[
        (10u32, 8.0, "mmc_erlang_c_c10"),
        (4, 3.0, "mmc_erlang_c_c4"),
        (100, 90.0, "mmc_erlang_c_c100"),
    ] {
        let secs = if c == 100 { 30.0 } else { 100.0 };
        let mut e = Experiment::run(
            case,
            station(poisson(lambda), c, exp_ms(1.0), None, secs, 2.0),
            10,
        );
        let r = |m: &str| reference(case, m, &[]);
        e.check(
            "P(wait)",
            &|x| total(x, "s", "wait_share"),
            r("prob_wait_erlang_c"),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "Wq",
            &|x| total(x, "s", "wait_mean_ms"),
            r("mean_wait_Wq"),
            B_MEAN,
            G_MEAN * 2.0,
        );
        e.check("W", &lat("mean"), r("mean_response_time_W"), B_MEAN, G_MEAN);
        e.check(
            "Lq",
            &|x| total(x, "s", "queue_mean"),
            r("mean_number_in_queue_Lq"),
            B_MEAN,
            G_MEAN * 2.0,
        );
        e.check(
            "L",
            &|x| total(x, "s", "in_system_mean"),
            r("mean_number_in_system_L"),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "utilization",
            &|x| total(x, "s", "utilization"),
            r("utilization_per_server"),
            B_MEAN,
            G_MEAN,
        );
        e.check("T p50", &lat("p50"), r("response_time_p50"), B_PCT, G_P99);
        e.check("T p90", &lat("p90"), r("response_time_p90"), B_PCT, G_P99);
        e.check("T p95", &lat("p95"), r("response_time_p95"), B_PCT, G_P99);
        e.check("T p99", &lat("p99"), r("response_time_p99"), B_PCT, G_P99);
        e.check(
            "T p99.9",
            &lat("p999"),
            r("response_time_p99.9"),
            B_P999,
            G_P999,
        );
        e.check("Wq p90", &wq("p90"), r("wait_Wq_p90"), B_WAIT_PCT, G_P99);
        e.check("Wq p99", &wq("p99"), r("wait_Wq_p99"), B_WAIT_PCT, G_P99);
        e.finish();
    }
}

#[test]
fn q4_erlang_b_is_insensitive_to_the_service_distribution() {
    let services = [
        ("exponential", exp_ms(1.0)),
        (
            "lognormal cv 2",
            json!({"lognormal": {"mean": "1ms", "cv": 2.0}}),
        ),
    ];
    for &(c, a) in &[(10u32, 5.0), (10, 8.0), (5, 2.0), (30, 25.0), (100, 90.0)] {
        for (name, svc) in &services {
            let label = format!("erlang_b c={c} a={a} {name}");
            // About 500k requests per replication whatever the load.
            let secs = (500.0_f64 / a).clamp(5.0, 100.0);
            let mut e = Experiment::run(
                &label,
                station(poisson(a), c, svc.clone(), Some(json!(0)), secs, 1.0),
                10,
            );
            let p = [("servers", json!(c)), ("offered_load_erlangs", json!(a))];
            e.check(
                "blocking",
                &|x| total(x, "s", "drop_share"),
                reference("erlang_b", "blocking_probability", &p),
                B_MEAN,
                G_MEAN,
            );
            e.check(
                "busy servers",
                &|x| total(x, "s", "busy_workers_mean"),
                reference("erlang_b", "mean_busy_servers", &p),
                B_MEAN,
                G_MEAN,
            );
            e.finish();
        }
    }
}

#[test]
fn q5_mmck() {
    // M/M/2/5: two workers and three waiting places, λ = 1.8, μ = 1.
    let case = "mmck";
    let mut e = Experiment::run(
        case,
        station(poisson(1.8), 2, exp_ms(1.0), Some(json!(3)), 200.0, 1.0),
        10,
    );
    let r = |m: &str| reference(case, m, &[]);
    e.check(
        "blocking",
        &|x| total(x, "s", "drop_share"),
        r("blocking_probability_PK"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "throughput",
        &|x| w(x).goodput_per_s / 1000.0,
        r("throughput"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        r("mean_number_in_system_L"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "Lq",
        &|x| total(x, "s", "queue_mean"),
        r("mean_number_in_queue_Lq"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "W accepted",
        &lat("mean"),
        r("mean_response_time_accepted_W"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "Wq accepted",
        &|x| total(x, "s", "wait_mean_ms"),
        r("mean_wait_accepted_Wq"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        r("utilization_per_server"),
        B_MEAN,
        G_MEAN,
    );
    // The birth–death chain's state probabilities: share of time with n at the instance.
    for n in 0..=5 {
        e.check(
            &format!("p{n}"),
            &move |x| occupancy(x, "s", n),
            r(&format!("p{n}")),
            B_MEAN,
            G_MEAN,
        );
    }
    e.check(
        "no time above K = 5",
        &|x| at_least(x, "s", 6),
        (0.0, None),
        0.0,
        G_MEAN,
    );
    e.finish();
}

#[test]
fn q6_md1_and_q7_mg1_pollaczek_khinchine() {
    let case = "md1";
    let mut e = Experiment::run(
        case,
        station(
            poisson(0.8),
            1,
            json!({"constant": "1ms"}),
            None,
            300.0,
            10.0,
        ),
        10,
    );
    let r = |m: &str| reference(case, m, &[]);
    e.check(
        "Wq",
        &|x| total(x, "s", "wait_mean_ms"),
        r("mean_wait_Wq"),
        B_MEAN,
        G_MEAN,
    );
    e.check("W", &lat("mean"), r("mean_response_time_W"), B_MEAN, G_MEAN);
    e.check(
        "Lq",
        &|x| total(x, "s", "queue_mean"),
        r("mean_number_in_queue_Lq"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        r("mean_number_in_system_L"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "P(wait)",
        &|x| total(x, "s", "wait_share"),
        r("prob_wait"),
        B_MEAN,
        G_MEAN,
    );
    e.finish();

    // M/G/1 at ρ = 0.7 with SCV 4: lognormal and balanced-means H2 give the same means.
    let h2 = json!({"hyperexponential": {"branches": [
        {"p": 0.887298334620741_7, "mean": format!("{}ms", 1.0 / 1.774_596_669_241_483_4)},
        {"p": 0.112701665379258_3, "mean": format!("{}ms", 1.0 / 0.225_403_330_758_516_6)}]}});
    let logn = json!({"lognormal": {"mean": "1ms", "cv": 2.0}});
    for (name, svc, service) in [
        ("lognormal", logn, "lognormal"),
        ("H2", h2, "hyperexponential_H2_balanced_means"),
    ] {
        let case = "mg1_pk_scv4";
        // Heavy-tailed service: long runs (the variance of Wq grows with the 3rd moment).
        let mut e = Experiment::run(
            &format!("{case} {name}"),
            station(poisson(0.7), 1, svc, None, 1500.0, 20.0),
            12,
        );
        let p = [("service", json!(service))];
        e.check(
            "Wq",
            &|x| total(x, "s", "wait_mean_ms"),
            reference(case, "mean_wait_Wq", &p),
            B_MEAN,
            G_MEAN * 2.0,
        );
        e.check(
            "W",
            &lat("mean"),
            reference(case, "mean_response_time_W", &p),
            B_MEAN,
            G_MEAN * 2.0,
        );
        e.check(
            "L",
            &|x| total(x, "s", "in_system_mean"),
            reference(case, "mean_number_in_system_L", &p),
            B_MEAN,
            G_MEAN * 2.0,
        );
        e.check(
            "utilization",
            &|x| total(x, "s", "utilization"),
            reference(case, "utilization", &p),
            B_MEAN,
            G_MEAN,
        );
        if name == "lognormal" {
            // No closed form: the suite's Monte Carlo (Lindley recursion), class M.
            for (q, metric) in [
                ("p50", "response_time_p50"),
                ("p90", "response_time_p90"),
                ("p99", "response_time_p99"),
            ] {
                e.check(
                    &format!("T {q}"),
                    &lat(q),
                    reference(case, metric, &p),
                    B_PCT,
                    G_P99,
                );
            }
        }
        e.finish();
    }
}

#[test]
fn q7_mg1_pk_scv10() {
    // M/G/1 at ρ = 0.7 with SCV 10 (CV √10): Wq = 12.8333, W = 13.8333, L = 9.68333 whatever
    // the distribution, utilization 0.7. The case's fifth value, the mean response under
    // processor sharing (3.33333), is left out: services are FCFS (or LIFO, priority), and
    // there is no processor sharing to check it against.
    let case = "mg1_pk_scv10";
    let p = |service: &str| [("service", json!(service))];

    // H2 with balanced means: p1 = 0.952267, μ1 = 1.904534, μ2 = 0.095466. Its third and
    // fourth moments (330 and 1.4·10⁴) are like those of the SCV-4 lognormal, and class S
    // holds in full, with the default 2% guard: 3s was 1.0–1.6% of the mean over four seed
    // sets at this length (3·10⁷ u). About 1.5 s in release mode.
    let h2 = json!({"hyperexponential": {"branches": [
        {"p": 0.952_267_016_866_645_4, "mean": format!("{}ms", 1.0 / 1.904_534_033_733_290_8)},
        {"p": 0.047_732_983_133_354_61, "mean": format!("{}ms", 1.0 / 0.095_465_966_266_709_22)}]}});
    let mut e = Experiment::run(
        &format!("{case} H2"),
        station(poisson(0.7), 1, h2, None, 2520.0, 20.0),
        12,
    );
    let service = "hyperexponential_H2_balanced_means";
    e.check(
        "Wq",
        &|x| total(x, "s", "wait_mean_ms"),
        reference(case, "mean_wait_Wq", &p(service)),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time_W", &p(service)),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        reference(case, "mean_number_in_system_L", &p(service)),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        reference(case, "utilization", &p(service)),
        B_MEAN,
        G_MEAN,
    );
    e.finish();

    // Lognormal, ln-σ = 1.5485: E[S³] = e^{3σ²} ≈ 1.3·10³ and E[S⁴] = e^{6σ²} ≈ 1.8·10⁶, a
    // hundred times the SCV-4 lognormal's, and the means converge that much more slowly.
    // DEVIATION from class S, stated: the 2% guard on Wq, W and L is not met within this
    // test's budget. 20 × 7500 s (1.5·10⁸ u, about 13 s here) gave 3s = 2.0%, 2.0% and 3.7%
    // of Wq over three seed sets; meeting 2% reliably would take about 6·10⁸ u, a minute.
    // So at 20 × 5000 s (10⁸ u, about 7 s on two idle cores) the means are checked with the
    // usual pass rule |m − ref| ≤ 3s + b·|ref| but a 6% guard (3s was 2.4–5.6% of Wq over
    // four seed sets). Utilization is checked under class S in full. The whole test is about
    // 10 s of CPU, 5 s in release mode on two idle cores.
    const G_LOGNORMAL_MEANS: f64 = 0.06;
    let logn = json!({"lognormal": {"mean": "1ms", "cv": f64::sqrt(10.0)}});
    let mut e = Experiment::run(
        &format!("{case} lognormal"),
        station(poisson(0.7), 1, logn, None, 5020.0, 20.0),
        20,
    );
    let service = "lognormal";
    e.check(
        "Wq",
        &|x| total(x, "s", "wait_mean_ms"),
        reference(case, "mean_wait_Wq", &p(service)),
        B_MEAN,
        G_LOGNORMAL_MEANS,
    );
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time_W", &p(service)),
        B_MEAN,
        G_LOGNORMAL_MEANS,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        reference(case, "mean_number_in_system_L", &p(service)),
        B_MEAN,
        G_LOGNORMAL_MEANS,
    );
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        reference(case, "utilization", &p(service)),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

#[test]
fn q8_gim1_erlang_and_constant_interarrivals() {
    let case = "gim1";
    let mean_gap = format!("{}ms", 1.0 / 0.9);
    for (model, arrivals) in [
        (
            "E2/M/1",
            json!({"interarrival": {"erlang": {"k": 2, "mean": mean_gap}}}),
        ),
        (
            "E10/M/1",
            json!({"interarrival": {"erlang": {"k": 10, "mean": mean_gap}}}),
        ),
        (
            "E100/M/1",
            json!({"interarrival": {"erlang": {"k": 100, "mean": mean_gap}}}),
        ),
        ("D/M/1", json!({"constant": {"rate": 900.0}})),
    ] {
        let mut e = Experiment::run(
            &format!("{case} {model}"),
            station(arrivals, 1, exp_ms(1.0), None, 1000.0, 10.0),
            10,
        );
        let p = [("model", json!(model))];
        e.check(
            "P(wait)",
            &|x| total(x, "s", "wait_share"),
            reference(case, "sigma_prob_wait", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "W",
            &lat("mean"),
            reference(case, "mean_response_time_W", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "Wq",
            &|x| total(x, "s", "wait_mean_ms"),
            reference(case, "mean_wait_Wq", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "T p99",
            &lat("p99"),
            reference(case, "response_time_p99", &p),
            B_PCT,
            G_P99,
        );
        e.finish();
    }
}

#[test]
fn q9_jackson_tandem() {
    // Two M/M/1 stations in series (asynchronous first station passes the request on).
    let case = "jackson_tandem";
    let v = json!({
        "duration": "300s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 1000.0}}, "target": "s1"}},
        "components": {
            "s1": {"kind": "service", "async": true, "service_time": {"exponential": {"mean": "0.5ms"}},
                   "handler": [{"work": "service_time"}, {"call": "s2"}]},
            "s2": {"kind": "service", "service_time": {"exponential": {"mean": format!("{}ms", 1.0 / 1.5)}}}
        }
    });
    let mut e = Experiment::run(case, v, 10);
    let r = |m: &str| reference(case, m, &[]);
    e.check("W", &lat("mean"), r("mean_response_time"), B_MEAN, G_MEAN);
    e.check(
        "L1",
        &|x| total(x, "s1", "in_system_mean"),
        r("mean_number_station1"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L2",
        &|x| total(x, "s2", "in_system_mean"),
        r("mean_number_station2"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s1", "in_system_mean") + total(x, "s2", "in_system_mean"),
        r("mean_number_in_system"),
        B_MEAN,
        G_MEAN,
    );
    e.check("T p50", &lat("p50"), r("response_time_p50"), B_PCT, G_P99);
    e.check("T p90", &lat("p90"), r("response_time_p90"), B_PCT, G_P99);
    e.check("T p95", &lat("p95"), r("response_time_p95"), B_PCT, G_P99);
    e.check("T p99", &lat("p99"), r("response_time_p99"), B_PCT, G_P99);
    e.finish();
}

#[test]
fn q10_jackson_feedback() {
    // (a) Central server: the cpu (μ = 4) routes to disk1 with 0.3 and disk2 with 0.2 and
    // answers with 0.5; the disks (μ = 1) route back to the cpu. Routes are tail calls, so
    // the stations are independent M/M/1 queues (Jackson's product form). The slowest to
    // settle are the disks: the README's run-length formula asks for ~7.5·10⁵ u in all for
    // the 2% guard on disk1's L (ρ = 0.6); 10 × 400 s gives 4·10⁶, so that the guard on
    // disk2's smaller L is also met with room. Relaxation time 20 u: warm-up 5 s. About 2 s
    // in release mode.
    let case = "jackson_feedback";
    let v = json!({
        "duration": "405s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 1000.0}}, "target": "cpu"}},
        "components": {
            "cpu": {"kind": "service", "service_time": {"exponential": {"mean": "0.25ms"}},
                    "handler": [{"work": "service_time"}, {"route": {"disk1": 0.3, "disk2": 0.2}}]},
            "disk1": {"kind": "service", "service_time": {"exponential": {"mean": "1ms"}},
                      "handler": [{"work": "service_time"}, {"route": {"cpu": 1.0}}]},
            "disk2": {"kind": "service", "service_time": {"exponential": {"mean": "1ms"}},
                      "handler": [{"work": "service_time"}, {"route": {"cpu": 1.0}}]}
        }
    });
    let mut e = Experiment::run("jackson_feedback central server", v, 10);
    let r = |m: &str| reference(case, m, &[("mu_cpu", json!(4.0))]);
    let stations = ["cpu", "disk1", "disk2"];
    for s in stations {
        e.check(
            &format!("X {s}"),
            &|x| total(x, s, "throughput_per_s") / 1000.0,
            r(&format!("throughput_{s}")),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            &format!("U {s}"),
            &|x| total(x, s, "utilization"),
            r(&format!("utilization_{s}")),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            &format!("L {s}"),
            &|x| total(x, s, "in_system_mean"),
            r(&format!("mean_number_{s}")),
            B_MEAN,
            G_MEAN,
        );
    }
    // Each visit counts as a completion at the station: visits = its throughput over the
    // workload's.
    e.check(
        "visits to the cpu",
        &|x| total(x, "cpu", "throughput_per_s") / w(x).goodput_per_s,
        r("mean_visits_cpu"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| stations.iter().map(|s| total(x, s, "in_system_mean")).sum(),
        r("mean_number_in_system"),
        B_MEAN,
        G_MEAN,
    );
    e.check("W", &lat("mean"), r("mean_response_time"), B_MEAN, G_MEAN);
    e.finish();

    // (b) Bernoulli feedback: λ = 0.5, μ = 2, back to the end of the queue with 0.5, so the
    // station sees λ = 1 (ρ = 0.5). ~5·10⁵ service times for the guard on L, more for the
    // total response time (successive visits are correlated); 10 × 400 s is 8·10⁶.
    let v = json!({
        "duration": "402s", "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 500.0}}, "target": "s"}},
        "components": {
            "s": {"kind": "service", "service_time": {"exponential": {"mean": "0.5ms"}},
                  "handler": [{"work": "service_time"}, {"route": {"s": 0.5}}]}
        }
    });
    let mut e = Experiment::run("jackson_feedback Bernoulli", v, 10);
    let r = |m: &str| reference(case, m, &[("feedback_prob", json!(0.5))]);
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        r("utilization"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "L",
        &|x| total(x, "s", "in_system_mean"),
        r("mean_number_in_system"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "T",
        &lat("mean"),
        r("mean_total_response_time"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "visits",
        &|x| total(x, "s", "throughput_per_s") / w(x).goodput_per_s,
        r("mean_visits"),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

#[test]
fn q13_mva_repairman_closed_loop() {
    // N users, think Z = 1 (exponential), one FCFS station with S = 0.1: X and R.
    let case = "mva_repairman";
    for n in [1u32, 5, 10, 15, 20] {
        let v = json!({
            "duration": "50s", "warmup": "1s",
            "workloads": {"w": {"arrivals": {"closed": {"users": n, "think": {"exponential": {"mean": "1ms"}}}}, "target": "s"}},
            "components": {"s": {"kind": "service", "service_time": {"exponential": {"mean": "0.1ms"}}}}
        });
        let mut e = Experiment::run(&format!("{case} N={n}"), v, 10);
        let p = [("N", json!(n))];
        e.check(
            "X",
            &|x| w(x).goodput_per_s / 1000.0,
            reference(case, "throughput_X", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "R",
            &lat("mean"),
            reference(case, "response_time_R", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "U",
            &|x| total(x, "s", "utilization"),
            reference(case, "server_utilization", &p),
            B_MEAN,
            G_MEAN,
        );
        // Interactive response-time law (X1): R = N/X − Z, exact up to sampling noise.
        e.check(
            "R = N/X - Z",
            &|x| f64::from(n) / (w(x).goodput_per_s / 1000.0) - 1.0,
            reference(case, "response_time_R", &p),
            B_MEAN,
            G_MEAN,
        );
        e.finish();
    }
}

#[test]
fn r1_queue_deadline_and_r2_client_timeout() {
    let case = "timeout_queue_deadline";
    for &(lambda, tau) in &[(0.9, 2.0), (1.2, 2.0), (2.0, 5.0)] {
        let q = json!({"timeout": format!("{tau}ms")});
        let mut e = Experiment::run(
            &format!("{case} λ={lambda}"),
            station(poisson(lambda), 1, exp_ms(1.0), Some(q), 200.0, 2.0),
            10,
        );
        let p = [("lambda", json!(lambda))];
        e.check(
            "P(drop)",
            &|x| total(x, "s", "expired") / total(x, "s", "arrived"),
            reference(case, "drop_probability", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "goodput",
            &|x| w(x).goodput_per_s / 1000.0,
            reference(case, "goodput", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "utilization",
            &|x| total(x, "s", "utilization"),
            reference(case, "utilization", &p),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "response of served",
            &lat("mean"),
            reference(case, "mean_response_time_of_served", &p),
            B_MEAN,
            G_MEAN,
        );
        e.finish();
    }

    let case = "timeout_client_mm1";
    let mut v = station(poisson(0.8), 1, exp_ms(1.0), None, 1500.0, 10.0);
    v["workloads"]["w"]["timeout"] = json!("10ms");
    let mut e = Experiment::run(case, v, 10);
    let r = |m: &str| reference(case, m, &[]);
    e.check(
        "timed out",
        &|x| w(x).errors["timeout"] as f64 / (w(x).completed + w(x).failed) as f64,
        r("fraction_timed_out"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "goodput",
        &|x| w(x).goodput_per_s / 1000.0,
        r("goodput"),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "server utilization",
        &|x| total(x, "s", "utilization"),
        r("server_utilization"),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

/// R3: attempts fail independently with probability p (an `errors` fault on a service
/// answering at once, for the whole run); the client retries up to r times with backoff
/// base·2^(k−1) before retry k, no jitter (class S). P(success) is the share of answered
/// requests that succeeded, mean attempts the workload's attempts_per_request, mean backoff
/// its backoff_mean_ms (u = 1 ms, base 0.1 u = 100 µs).
#[test]
fn r3_retries_on_independent_failures() {
    let case = "retry_independent_failures";
    for &(p, r) in &[(0.2, 3), (0.5, 3), (0.9, 5)] {
        let v = json!({
            "duration": "20s",
            "warmup": "1s",
            "components": {"s": {"kind": "service", "workers": 100000,
                                 "handler": [{"work": {"constant": "0ns"}}]}},
            "workloads": {"w": {"arrivals": poisson(1.0), "target": "s",
                                "retries": {"max": r, "backoff": {"base": "100us", "multiplier": 2},
                                            "jitter": "none"}}},
            "faults": [{"target": "s", "errors": {"share": p}, "at": "0s"}]
        });
        let mut e = Experiment::run(&format!("{case} p={p} r={r}"), v, 10);
        let params = [
            ("attempt_failure_prob", json!(p)),
            ("max_retries", json!(r)),
        ];
        let retries = |x: &RunResult| x.workloads["w"].retries.clone().unwrap();
        e.check(
            "P(success)",
            &|x| w(x).completed as f64 / (w(x).completed + w(x).failed) as f64,
            reference(case, "success_probability", &params),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "mean attempts",
            &|x| retries(x).attempts_per_request,
            reference(case, "mean_attempts_per_request", &params),
            B_MEAN,
            G_MEAN,
        );
        e.check(
            "mean backoff",
            &|x| retries(x).backoff_mean_ms,
            reference(case, "mean_backoff_delay_per_request", &params),
            B_MEAN,
            G_MEAN,
        );
        e.finish();
    }
}

/// Ten M/M/1 servers behind a balancer, λ = 0.9 per server.
fn balanced(policy: Value, secs: f64) -> Value {
    let mut lb = json!({"kind": "load_balancer", "backends": "s"});
    for (k, v) in policy.as_object().unwrap() {
        lb[k] = v.clone();
    }
    json!({
        "duration": format!("{secs}s"), "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 9000.0}}, "target": "lb"}},
        "components": {
            "lb": lb,
            "s": {"kind": "service", "replicas": 10, "service_time": {"exponential": {"mean": "1ms"}}}
        }
    })
}

#[test]
fn l3_load_balancing_policies_n10() {
    let case = "lb_n10";
    let p = |policy: &str| [("policy", json!(policy))];
    let mut e = Experiment::run("random", balanced(json!({"policy": "random"}), 250.0), 10);
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time", &p("random")),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "p99",
        &lat("p99"),
        reference(case, "response_time_p99", &p("random")),
        B_PCT,
        G_P99,
    );
    // Under random dispatch each server is an M/M/1 queue at ρ = 0.9: P(N ≥ k) = ρ^k.
    for k in 1..=4 {
        e.check(
            &format!("share of servers with >= {k}"),
            &move |x| at_least(x, "s", k as usize),
            (0.9f64.powi(k), None),
            B_MEAN,
            G_MEAN,
        );
    }
    e.finish();

    let mut e = Experiment::run(
        "round robin",
        balanced(json!({"policy": "round_robin"}), 160.0),
        10,
    );
    e.check(
        "W",
        &lat("mean"),
        reference(case, "mean_response_time", &p("round_robin")),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "P(wait)",
        &|x| total(x, "s", "wait_share"),
        reference(case, "prob_wait", &p("round_robin")),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "p99",
        &lat("p99"),
        reference(case, "response_time_p99", &p("round_robin")),
        B_PCT,
        G_P99,
    );
    e.finish();

    // JSQ's queue-length shares converge slowly (the total behaves like M/M/10 at 0.9):
    // 16 × 220 s meets the precision guard on P(N ≥ 3).
    let mut e = Experiment::run(
        "least connections",
        balanced(json!({"policy": "least_connections"}), 220.0),
        16,
    );
    e.check(
        "W",
        &lat("mean"),
        reference(
            case,
            "mean_response_time",
            &p("join_shortest_queue (= least connections with exact counts)"),
        ),
        B_MEAN,
        G_MEAN,
    );
    check_queue_fractions(
        &mut e,
        "join_shortest_queue (= least connections with exact counts)",
    );
    e.finish();
    for (label, cfg, policy) in [
        (
            "power of 2 distinct",
            json!({"policy": "power_of_choices", "choices": 2}),
            "power_of_2_choices (2 distinct servers)",
        ),
        (
            "power of 2 with replacement",
            json!({"policy": "power_of_choices", "choices": 2, "distinct": false}),
            "power_of_2_choices (2 draws with replacement, Mitzenmacher's model)",
        ),
        (
            "power of 3 distinct",
            json!({"policy": "power_of_choices", "choices": 3}),
            "power_of_3_choices (3 distinct servers)",
        ),
    ] {
        // The tail shares (P(N >= 4)) need the long runs to meet the precision guard;
        // power of 3's share is the smallest, so its runs are longest.
        let secs = if label.starts_with("power of 3") {
            330.0
        } else {
            120.0
        };
        let mut e = Experiment::run(label, balanced(cfg, secs), 16);
        let reference_value =
            std::panic::catch_unwind(|| reference(case, "mean_response_time", &p(policy)));
        let reference_value = reference_value.unwrap_or_else(|_| {
            panic!(
                "no reference for {policy}; policies: {}",
                policies_in_cases()
            )
        });
        e.check("W", &lat("mean"), reference_value, B_MEAN, G_MEAN);
        check_queue_fractions(&mut e, policy);
        e.finish();
    }
}

/// The time-average share of servers holding k or more requests, k = 1..4, against the
/// suite's Monte Carlo values (class M). cases.jsonl gives no standard error for these
/// shares, only for the same runs' mean response time W. We carry that one over by the
/// sensitivity our own replications show: r_k = value × (se(W)/W)_suite × cv(share_k)/cv(W),
/// where cv is the coefficient of variation across our replications. Tail shares move
/// about k times as much as W from run to run, so a fixed relative error would be too tight.
fn check_queue_fractions(e: &mut Experiment, policy: &str) {
    let case = "lb_n10";
    let p = [("policy", json!(policy)), ("n", json!(10))];
    let (w_ref, w_se) = reference(case, "mean_response_time", &p);
    let relative_se = w_se.expect("Monte Carlo references have a standard error") / w_ref;
    let cv = |runs: &[RunResult], f: &dyn Fn(&RunResult) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let est = scalesim::stats::Estimate::of(&v);
        est.sd / est.mean
    };
    let cv_w = cv(&e.runs, &lat("mean"));
    for k in 1..=4usize {
        let (value, _) = reference(case, &format!("fraction_queues_ge_{k}"), &p);
        let sensitivity = cv(&e.runs, &move |x| at_least(x, "s", k)) / cv_w;
        e.check(
            &format!("share of servers with >= {k}"),
            &move |x| at_least(x, "s", k),
            (value, Some(value * relative_se * sensitivity)),
            B_MEAN,
            G_MEAN,
        );
    }
}

fn policies_in_cases() -> String {
    include_str!("validation/cases.jsonl")
        .lines()
        .filter(|l| l.contains("\"lb_n10\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|c| c["params"]["policy"].to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn x1_littles_law_holds_in_every_run() {
    // L = λW at the station, for a multi-class, multi-step model with a balancer.
    let v = json!({
        "duration": "100s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 2000.0}}, "classes": {"read": 0.8, "write": 0.2}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "policy": "least_connections", "backends": "app"},
            "app": {"kind": "service", "replicas": 3, "workers": 2,
                    "service_times": {"read": {"exponential": {"mean": "1ms"}}, "write": {"lognormal": {"mean": "2ms", "cv": 1.5}}},
                    "handler": {"write": [{"work": "service_time"}, {"call": "db"}]}},
            "db": {"kind": "service", "workers": 4, "service_time": {"exponential": {"mean": "0.5ms"}}}
        }
    });
    let runs = replicate(&model(v), 3, 10).unwrap();
    for r in &runs {
        assert!(r.conservation.holds);
        // Whole system seen from the client, with a balancer in front: λ·W vs time-average L.
        let x = r.workloads["w"].goodput_per_s;
        let w_s = r.workloads["w"].latency.mean_ms / 1000.0;
        let l_app = r.components["app"].total["in_system_mean"];
        // Requests at db are also in app (held workers), so app's L is the system's L.
        let rel = (x * w_s - l_app).abs() / l_app;
        assert!(rel < 0.02, "Little's law: λW = {} vs L = {l_app}", x * w_s);
        // Utilization law at db: U = X·S / workers.
        let db = &r.components["db"].total;
        let u = db["throughput_per_s"] * 0.0005 / 4.0;
        assert!(
            (u - db["utilization"]).abs() / u < 0.03,
            "U = XS: {u} vs {}",
            db["utilization"]
        );
    }
}

#[test]
fn x2_capacity_staffing_by_erlang_c() {
    // The fewest M/M/c servers that keep P(wait) under a target at a = 100 Erlangs (class E),
    // from the Erlang C that `scalesim check` uses for its estimates; then the simulated
    // P(wait) at the staffing found for 0.2 against the exact value there (class S).
    let text = include_str!("validation/cases.jsonl");
    let cases: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["case"] == "capacity_staffing" && c["metric"] == "min_servers_erlang_c")
        .collect();
    assert_eq!(cases.len(), 4, "four staffing targets in cases.jsonl");
    for c in &cases {
        let a = c["params"]["offered_load_erlangs"].as_f64().unwrap();
        let target = c["params"]["target_prob_wait"].as_f64().unwrap();
        let servers = (1..1000u32)
            .find(|&n| f64::from(n) > a && scalesim::analysis::erlang_c(n, a) <= target)
            .unwrap();
        assert_eq!(
            u64::from(servers),
            c["value"].as_u64().unwrap(),
            "P(wait) <= {target}"
        );
        let achieved = c["achieved"].as_f64().unwrap();
        assert!((scalesim::analysis::erlang_c(servers, a) / achieved - 1.0).abs() < 1e-5);
    }
    let c = &cases[1];
    assert_eq!(c["params"]["target_prob_wait"], json!(0.2));
    let mut e = Experiment::run(
        "capacity_staffing c = 111",
        station(poisson(100.0), 111, exp_ms(1.0), None, 40.0, 1.0),
        10,
    );
    e.check(
        "P(wait) at c = 111",
        &|x| total(x, "s", "wait_share"),
        (c["achieved"].as_f64().unwrap(), None),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

#[test]
fn x2_halfin_whitt_row_against_the_simulated_p_wait_at_110_servers() {
    // The suite's Halfin–Whitt row (a = 100 Erlangs, c = 110, β = 1) carries the exact Erlang
    // C value beside its approximation. The Erlang C behind `check` gives the exact value
    // (class E, 6 digits), the approximation lies within its stated 6% of it (class A), and
    // the simulated P(wait) at 110 servers matches the exact value (class S).
    let (hw, _) = reference(
        "capacity_staffing",
        "prob_wait_halfin_whitt_approx",
        &[("servers", json!(110))],
    );
    let exact = include_str!("validation/cases.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|c| c["metric"] == "prob_wait_halfin_whitt_approx")
        .and_then(|c| c["exact"].as_f64())
        .expect("the Halfin–Whitt row carries the exact Erlang C value");
    let erlang_c = scalesim::analysis::erlang_c(110, 100.0);
    assert!(
        (erlang_c - exact).abs() < 5e-7,
        "Erlang C(110, 100) = {erlang_c}"
    );
    assert!(
        (hw / exact - 1.0).abs() < 0.06,
        "Halfin–Whitt {hw} against {exact}"
    );
    let mut e = Experiment::run(
        "capacity_staffing c = 110",
        station(poisson(100.0), 110, exp_ms(1.0), None, 40.0, 1.0),
        10,
    );
    e.check(
        "P(wait) at c = 110",
        &|x| total(x, "s", "wait_share"),
        (exact, None),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

/// A balancer over `app` (one worker per instance, exponential service of mean 100 ms:
/// μ = 10 per second), λ = 900 per second, scaled by target tracking on utilization with
/// target `u`, starting from 100 instances, evaluated every 30 s.
fn tracked(u: f64) -> Value {
    json!({
        "duration": "1500s", "series_window": "30s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 900}}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "backends": "app"},
            "app": {"kind": "service", "replicas": 100, "workers": 1,
                    "service_time": {"exponential": {"mean": "100ms"}}},
            "as": {"kind": "autoscaler", "target": "app", "min": 1, "max": 300,
                   "metric": "utilization", "target_value": u, "evaluation_period": "30s",
                   "scale_out_cooldown": "60s", "scale_in_cooldown": "60s"}
        }
    })
}

#[test]
fn x2_target_tracking_settles_at_lambda_over_mu_times_the_target() {
    // The suite's autoscaler rows: target tracking on utilization u* settles where
    // ceil(serving × utilization / u*) = serving, at ceil(λ / (μ u*)) instances (129 for
    // u* = 0.7, 180 for 0.5). The utilization measured over a 30 s period (27,000 arrivals)
    // is off by up to about 1%, and the ceiling turns any excess into one more instance (at
    // 180 for u* = 0.5 the formula is an exact integer, so about half the evaluations ask for
    // 181): the mean of the serving instances over the last 600 s must be within one
    // instance plus 1% of the formula (2.3 and 2.8 instances).
    for (u, expected) in [(0.7, 129.0), (0.5, 180.0)] {
        let (r, _) = reference(
            "capacity_staffing",
            "steady_state_instances_target_tracking",
            &[("target_utilization", json!(u))],
        );
        assert_eq!(r, expected);
        let runs = replicate(&model(tracked(u)), 20_261_128, 3).unwrap();
        for run in &runs {
            assert!(run.conservation.holds, "{:?}", run.conservation);
            let serving = &run.autoscaling["as"].serving;
            let last = &serving[serving.len() - 20..];
            let mean = last.iter().sum::<f64>() / last.len() as f64;
            println!(
                "target tracking u* = {u}: serving {mean:.2} over the last 600 s, formula {r}"
            );
            assert!(
                (mean - r).abs() <= 1.0 + 0.01 * r,
                "u* = {u}: {mean:.2} instances serving, formula {r}; series {serving:?}"
            );
        }
    }
}

#[test]
fn x3_low_rate_window_ends_at_duration() {
    // Issue 8, point 8: an open workload whose next arrival falls after `duration` must
    // still be measured up to `duration`. At λ = 1/s over T = 10 s most runs have their
    // last event well before 10 s; measuring only up to it overstated every rate and time
    // average by about 10% (goodput 1.09/s, utilization 0.109).
    //
    // M/M/1 with λ = 1/s, E[S] = 0.1 s (ρ = 0.1), starting empty, no warm-up. Its relaxation
    // time (about 0.15 s) is short beside T, so the state at T is the stationary one:
    // - arrivals in [0, T] are Poisson(λT): arrival rate λ exactly;
    // - answered by T = arrived − N(T), with E[N] = L = ρ/(1 − ρ): throughput (λT − L)/T;
    // - busy time in [0, T] = work arrived − work left at T, with E[V] = ρ·E[S]/(1 − ρ)
    //   (exponential service, P-K): utilization ρ − E[V]/T.
    // Class S with the suite's tolerances; 4000 replications of ten requests each take a
    // fraction of a second.
    let (lambda, es, t) = (1.0, 0.1, 10.0);
    let rho: f64 = lambda * es;
    let l = rho / (1.0 - rho);
    let v = rho * es / (1.0 - rho);
    let mut e = Experiment::run(
        "low_rate_mm1 λ = 1/s, T = 10 s",
        station(
            poisson(lambda / 1000.0),
            1,
            exp_ms(es * 1000.0),
            None,
            t,
            0.0,
        ),
        4000,
    );
    for r in &e.runs {
        assert_eq!(r.window_end_s, t, "the window ends at duration");
        let windows: usize = r.series["w"].completed.len();
        assert_eq!(windows, 100, "the series covers the whole duration");
    }
    e.check(
        "arrival rate",
        &|x| total(x, "s", "arrival_rate_per_s"),
        (lambda, None),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "throughput",
        &|x| w(x).throughput_per_s,
        ((lambda * t - l) / t, None),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "goodput",
        &|x| w(x).goodput_per_s,
        ((lambda * t - l) / t, None),
        B_MEAN,
        G_MEAN,
    );
    e.check(
        "utilization",
        &|x| total(x, "s", "utilization"),
        (rho - v / t, None),
        B_MEAN,
        G_MEAN,
    );
    e.finish();
}

#[test]
fn x4_fan_out_estimate_uses_the_callees_distribution() {
    // Issue 8, point 8: `check` estimated waiting for all of n answers as H(n) times their
    // mean, which holds for exponential response times only. A front end waits for 100
    // callees whose service is hyperexponential (1% of 1000 ms, 99% of 10 ms; mean 19.9 ms,
    // SCV about 49), so one slow answer out of 100 is likely: the old estimate was
    // H(100)·19.9 = 103 ms. With 1000 workers at 1 request/s nothing waits, and the exact
    // mean is E[max] = ∫ 1 − F(t)^100 dt, F the hyperexponential CDF (integrated here,
    // 817.4 ms). The estimate draws 20,000 samples: within 3%.
    let shards: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    let mut components = serde_json::Map::new();
    components.insert(
        "front".into(),
        json!({"kind": "service", "workers": 1000, "service_time": {"constant": "0ms"},
               "handler": [{"fan_out": shards}]}),
    );
    for s in &shards {
        components.insert(
            s.clone(),
            json!({"kind": "service", "workers": 1000, "service_time": {"hyperexponential":
                {"branches": [{"p": 0.01, "mean": "1000ms"}, {"p": 0.99, "mean": "10ms"}]}}}),
        );
    }
    let m = model(json!({
        "duration": "100s",
        "workloads": {"q": {"arrivals": {"poisson": {"rate": 1}}, "target": "front"}},
        "components": components
    }));
    let cdf = |t: f64| 1.0 - 0.01 * (-t / 1000.0).exp() - 0.99 * (-t / 10.0).exp();
    let h = 0.05;
    let exact: f64 = (0..800_000)
        .map(|i| 1.0 - cdf((f64::from(i) + 0.5) * h).powi(100))
        .sum::<f64>()
        * h;
    assert!((exact - 817.44).abs() < 0.1, "{exact}");
    let est = scalesim::analysis::estimate(&m);
    let got = est.workloads[0].2;
    assert!(
        (got - exact).abs() / exact < 0.03,
        "estimated {got} ms, exact {exact} ms"
    );
}

// ---------------------------------------------------------------------------------------------
// Databases: replication lag and stale reads (D1), quorum availability (D2).
// ---------------------------------------------------------------------------------------------

/// Writes at `write_rate` per key per second to each of 100 uniform keys, and 20 reads
/// per key per second, straight to a database whose writes reach its `replicas` after
/// `lag`, and whose reads go where `reads` says (`balance` random). Instant service, so a
/// read comes at a random time.
fn replicated(write_rate: f64, lag: Value, replicas: u32, reads: &str, secs: u32) -> Value {
    let keys = 100u32;
    let reads_per_s = 20.0 * f64::from(keys);
    let writes_per_s = write_rate * f64::from(keys);
    let total = reads_per_s + writes_per_s;
    let mut db = json!({"kind": "database", "replicas": replicas, "workers": 64,
                        "service_time": {"constant": "0ms"}, "reads": reads,
                        "replication": {"async": {"lag": lag}}});
    if reads != "primary" {
        db["balance"] = json!("random");
    }
    json!({
        "duration": format!("{secs}s"), "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": total}},
                            "classes": {"read": reads_per_s / total, "write": writes_per_s / total},
                            "keys": {"uniform": {"keys": keys}}, "target": "db"}},
        "components": {"db": db}
    })
}

fn stale_share(r: &RunResult) -> f64 {
    total(r, "db", "stale_share")
}

#[test]
fn d1_replica_stale_reads() {
    // ../shared/validation D1: Poisson writes at λ per key, a read at a random time on a
    // replica that applies each write after its lag (newest version wins) is stale with
    // P(L > A), A ~ Exp(λ) the age of the key's newest write.
    let case = "replica_stale_reads";
    let rows: [(f64, &str, f64, u32); 6] = [
        (1.0, "constant", 0.1, 400),
        (1.0, "exponential", 0.1, 400),
        (10.0, "constant", 0.1, 60),
        (10.0, "exponential", 0.1, 60),
        (1.0, "constant", 1.0, 200),
        (1.0, "exponential", 1.0, 200),
    ];
    for (rate, law, lag, secs) in rows {
        let (lag_json, params) = if law == "constant" {
            (
                json!({"constant": format!("{lag}s")}),
                vec![
                    ("write_rate_per_key", json!(rate)),
                    ("replication_lag", json!("constant")),
                    ("lag", json!(lag)),
                    ("read", json!("random time, served by a replica")),
                ],
            )
        } else {
            (
                json!({"exponential": {"mean": format!("{lag}s")}}),
                vec![
                    ("write_rate_per_key", json!(rate)),
                    ("lag_mean", json!(lag)),
                ],
            )
        };
        let label = format!("{case} λ={rate} {law} lag {lag}s");
        let mut e = Experiment::run(&label, replicated(rate, lag_json, 1, "replicas", secs), 10);
        let r = reference(case, "prob_stale_read", &params);
        e.check("P(stale)", &stale_share, r, B_MEAN, G_MEAN);
        e.finish();
    }
}

#[test]
fn d1_stale_reads_spread_over_the_primary_and_two_replicas() {
    // Reads evenly over the 3 copies, constant lag 0.1 s, λ = 1: (2/3)(1 − e^{−0.1}).
    let case = "replica_stale_reads";
    let m = replicated(1.0, json!({"constant": "100ms"}), 2, "any", 400);
    let mut e = Experiment::run("stale reads over 3 copies", m, 10);
    let r = reference(case, "prob_stale_read", &[("replicas", json!(2))]);
    e.check("P(stale)", &stale_share, r, B_MEAN, G_MEAN);
    e.finish();
}

#[test]
fn d1_read_your_writes_violation() {
    // A client reads its key 50 ms after its own write was acknowledged, from a replica
    // whose lag is exponential with mean 100 ms: it misses the write with probability
    // P(L > 0.05) = e^{−0.5}. Keys are drawn from a billion, so no one else writes them.
    let case = "replica_stale_reads";
    let m = json!({
        "duration": "200s", "warmup": "5s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 200}}, "classes": {"update": 1.0},
                            "keys": {"uniform": {"keys": 1_000_000_000u64}}, "target": "app"}},
        "components": {
            "app": {"kind": "service", "workers": 1000, "handler": [
                {"call": "db", "op": "write"}, {"work": {"constant": "50ms"}},
                {"call": "db", "op": "read"}]},
            "db": {"kind": "database", "replicas": 1, "workers": 64,
                   "service_time": {"constant": "0ms"},
                   "replication": {"async": {"lag": {"exponential": {"mean": "100ms"}}}}}}
    });
    let mut e = Experiment::run("read your writes", m, 10);
    let r = reference(
        case,
        "prob_read_your_writes_violation",
        &[("read_after_own_write_delay", json!(0.05))],
    );
    e.check("P(violation)", &stale_share, r, B_MEAN, G_MEAN);
    e.finish();
}

#[test]
fn d2_quorum_availability_formula() {
    // ../shared/validation D2, the part that needs no faults: each node up a share
    // a = MTTF/(MTTF+MTTR) of the time, a quorum of q of n nodes up Σ_{k≥q} C(n,k)a^k(1−a)^{n−k}
    // (class E; the table prints 6 decimals). The runs with crashing copies are below.
    use scalesim::components::database::quorum_availability;
    let text = include_str!("validation/cases.jsonl");
    let mut checked = 0;
    for line in text.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        if c["case"] != "quorum_availability" {
            continue;
        }
        let p = &c["params"];
        let (mttf, mttr) = (p["MTTF"].as_f64().unwrap(), p["MTTR"].as_f64().unwrap());
        let nodes = p["nodes"].as_u64().unwrap() as u32;
        let quorum = p["quorum"].as_u64().unwrap() as u32;
        let got = quorum_availability(nodes, quorum, mttf / (mttf + mttr));
        let want = c["value"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 5e-7,
            "{nodes} nodes, quorum {quorum}: {got} against {want}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4, "the four rows of D2");
}

/// A quorum database of `nodes` copies read and written by quorum `quorum` (r = w), every
/// copy crashing again and again: up for an exponential time of mean MTTF, down for an
/// exponential time of mean MTTR (u = 1 ms, so the 99:1 of the suite is 99 ms and 1 ms).
/// Poisson requests, half reads half writes, instant service and replication: a request
/// succeeds when it arrives with at least `quorum` copies up.
fn crashing_quorum(nodes: u32, quorum: u32, secs: u32) -> Value {
    json!({
        "duration": format!("{secs}s"), "warmup": "1s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": 2000}},
                            "classes": {"read": 0.5, "write": 0.5},
                            "keys": {"uniform": {"keys": 1000}}, "target": "db"}},
        "components": {"db": {"kind": "database", "workers": 64,
                              "service_time": {"constant": "0ms"},
                              "quorum": {"n": nodes, "r": quorum, "w": quorum},
                              "replication": {"async": {"lag": {"constant": "0ms"}}}}},
        "faults": [{"target": "db", "crash": {}, "random": {
            "between": {"exponential": {"mean": "99ms"}},
            "repair": {"exponential": {"mean": "1ms"}}}}]
    })
}

/// The share of `class`'s requests that succeeded.
fn success_share(class: &'static str) -> impl Fn(&RunResult) -> f64 {
    move |r: &RunResult| {
        let c = &w(r).classes[class];
        c.completed as f64 / c.arrived as f64
    }
}

#[test]
fn d2_quorum_availability_with_crashing_copies() {
    // ../shared/validation D2 with faults: each copy up a share a = 99/(99+1) of the time,
    // independently (random crashes from each copy's own stream). By PASTA the share of
    // Poisson requests finding a quorum up is the share of time it is up. Class S on the
    // availability, for reads and writes, on the four rows; the two rows whose
    // unavailability a run sees often enough (3 of 3: 0.0297, 2 of 3: 0.000298) are also
    // checked on 1 − A, with a 30% precision guard (a 2-of-3 outage lasts 0.5 ms on
    // average and comes about every 1.7 s: 150 s runs see some 90 each).
    let case = "quorum_availability";
    for (nodes, quorum, secs) in [(3u32, 2u32, 150u32), (3, 3, 10), (5, 3, 10), (3, 1, 10)] {
        let label = format!("{case} {quorum} of {nodes}");
        let mut e = Experiment::run(&label, crashing_quorum(nodes, quorum, secs), 10);
        let params = [("nodes", json!(nodes)), ("quorum", json!(quorum))];
        let (a, _) = reference(case, "fraction_of_time_quorum_available", &params);
        for class in ["read", "write"] {
            let share = success_share(class);
            e.check(
                &format!("{class} availability"),
                &share,
                (a, None),
                B_MEAN,
                G_MEAN,
            );
            if quorum >= 2 && nodes == 3 {
                let down = |r: &RunResult| 1.0 - share(r);
                e.check(
                    &format!("{class} unavailability"),
                    &down,
                    (1.0 - a, None),
                    B_MEAN,
                    0.3,
                );
            }
        }
        e.finish();
    }
}

// ---------------------------------------------------------------------------------------
// H2 (README §5): keys moved when a shard is added to N or removed (the `shards` router).
// Class E for the exact counts of `key mod N` over keys 0..999999; class S for hash mod N
// and consistent hashing, over the keys (binomial) or over ring draws (Beta(V, NV)).

/// A router `r` over services `s0`.. `s{n-1}` plus a spare `s{n}`, `strategy` and
/// `changes` as given, fed `rate` requests per second over `keys` uniform keys.
fn h2_model(n: usize, router: Value, keys: u64, rate: f64, duration: &str) -> Model {
    let mut components = serde_json::Map::new();
    let mut r = router;
    r["kind"] = json!("shards");
    r["shards"] = json!((0..n).map(|i| format!("s{i}")).collect::<Vec<_>>());
    components.insert("r".into(), r);
    for i in 0..=n {
        components.insert(
            format!("s{i}"),
            json!({"kind": "service", "workers": 64, "service_time": {"constant": "0.1ms"}}),
        );
    }
    model(json!({
        "duration": duration,
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "r",
                            "keys": {"uniform": {"keys": keys}}}},
        "components": components
    }))
}

/// The estimate's share of the key space moved by the router's changes.
fn estimated_moved(m: &Model) -> f64 {
    let est = scalesim::analysis::estimate(m);
    est.metrics[0]
        .1
        .iter()
        .find(|e| e.metric == "moved_key_share")
        .expect("a router with a change estimates the keys it moves")
        .value
}

#[test]
fn h2_hash_mod_n_moves_exact_counts_of_keys_and_n_over_n_plus_one_by_hash() {
    for n in [10usize, 100] {
        let params = [("nodes_before", json!(n)), ("nodes_after", json!(n + 1))];
        // Class E: key mod N -> key mod (N+1) over keys 0..999999, counted key by key.
        let exact = reference("ch_keys_moved", "exact_fraction_of_keys_moved", &params).0;
        let add = json!([{"at": "1s", "add": format!("s{n}")}]);
        let identity = h2_model(
            n,
            json!({"hash": "identity", "changes": add}),
            1_000_000,
            10.0,
            "2s",
        );
        let got = estimated_moved(&identity);
        assert!(
            (got - exact).abs() <= 1e-9 * exact,
            "key mod {n} -> mod {}: {got} against {exact}",
            n + 1
        );
        // Class S over the keys: a mixed hash moves each key with probability N/(N+1), so
        // the share of 10^6 keys is binomial.
        let mut by_hash = params.to_vec();
        by_hash.push(("scheme", json!("hash mod N -> hash mod (N+1)")));
        let expected = reference("ch_keys_moved", "expected_fraction_of_keys_moved", &by_hash).0;
        let mixed = h2_model(n, json!({"changes": add}), 1_000_000, 10.0, "2s");
        let got = estimated_moved(&mixed);
        let s = (expected * (1.0 - expected) / 1e6).sqrt();
        assert!(
            (got - expected).abs() <= 3.0 * s + B_MEAN * expected,
            "hash mod {n} -> mod {}: {got} against {expected} (s = {s})",
            n + 1
        );
    }
}

/// Mean and its standard error, and standard deviation and its standard error (delta
/// method: Var(s²) ≈ (m4 − s⁴)/R), of draws `x`.
fn mean_and_sd(x: &[f64]) -> ((f64, f64), (f64, f64)) {
    let r = x.len() as f64;
    let mean = x.iter().sum::<f64>() / r;
    let m2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (r - 1.0);
    let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / r;
    let sd = m2.sqrt();
    let se_sd = ((m4 - m2 * m2) / r).sqrt() / (2.0 * sd);
    ((mean, sd / r.sqrt()), (sd, se_sd))
}

/// Precision guard for a standard deviation checked over ring draws: its relative standard
/// error is about √((κ−1)/4R) for kurtosis κ, so 3 se within 5% needs R ≈ 900(κ−1) draws
/// (8000 for the skewed V = 1 laws, κ ≈ 9; 2000 to 2400 for V = 100, κ ≈ 3). N = 10 and
/// V = 1 takes 20000, for the 2% guard of its removal share (0.1).
const G_SD: f64 = 0.05;

/// The precision guard of a mean share `reference` (README §0): 2% of it, or 0.005 below 0.1.
fn mean_guard(reference: f64) -> f64 {
    if reference < 0.1 {
        G_SMALL_PROB_ABS
    } else {
        G_MEAN * reference
    }
}

#[test]
fn h2_consistent_hashing_moves_one_in_n_plus_one_over_ring_draws() {
    use rayon::prelude::*;
    use scalesim::components::shards::placement::{Placement, Ring};
    // Class S over ring draws: each seed draws every shard's V points anew; adding shard N
    // moves exactly the arcs its points take (every moved key goes to it), whose share of
    // the hash space is Beta(V, NV): mean 1/(N+1), the reference's standard deviation.
    // Removing one of N moves its arcs: mean 1/N.
    let mut failures = Vec::new();
    for (n, v, draws) in [
        (10u32, 1u32, 20000u64),
        (10, 100, 2000),
        (100, 1, 8000),
        (100, 100, 2400),
    ] {
        let names: Vec<String> = (0..=n).map(|i| format!("s{i}")).collect();
        let shards: Vec<(u32, &str)> = (0..n).map(|i| (i, names[i as usize].as_str())).collect();
        let (added, removed): (Vec<f64>, Vec<f64>) = (0..draws)
            .into_par_iter()
            .map(|seed| {
                let ring = Placement::Ring(Ring::new(v, seed, &shards));
                let Placement::Ring(grown) = ring.with_added(n, &names[n as usize]) else {
                    unreachable!()
                };
                let Placement::Ring(r) = &ring else {
                    unreachable!()
                };
                (
                    grown.arc_shares(n as usize + 1)[n as usize],
                    r.arc_shares(n as usize)[0],
                )
            })
            .unzip();
        let params = |after: u32| vec![("nodes_before", json!(n)), ("nodes_after", json!(after))];
        let mut any_v = params(n + 1);
        any_v.push((
            "scheme",
            json!("consistent hashing (any V), rendezvous, jump hash"),
        ));
        let mean_ref = reference("ch_keys_moved", "expected_fraction_of_keys_moved", &any_v).0;
        let mut with_v = params(n + 1);
        with_v.push(("vnodes_per_node_V", json!(v)));
        let sd_ref = reference("ch_keys_moved", "sd_of_fraction_moved", &with_v).0;
        let remove_ref = reference(
            "ch_keys_moved",
            "expected_fraction_of_keys_moved",
            &params(n - 1),
        )
        .0;
        let ((m, s), (sd, se_sd)) = mean_and_sd(&added);
        let ((rm, rs), _) = mean_and_sd(&removed);
        let label = format!("N = {n}, V = {v}, {draws} rings");
        for (what, got, se, reference, guard) in [
            (
                "share moved by adding",
                m,
                s,
                mean_ref,
                mean_guard(mean_ref),
            ),
            ("its standard deviation", sd, se_sd, sd_ref, G_SD * sd_ref),
            (
                "share moved by removing",
                rm,
                rs,
                remove_ref,
                mean_guard(remove_ref),
            ),
        ] {
            let tol = 3.0 * se + B_MEAN * reference;
            println!(
                "H2 {label}: {what}: {got:.6} ± {:.6} (3s), reference {reference:.6}, tolerance {tol:.6}",
                3.0 * se
            );
            if (got - reference).abs() > tol || 3.0 * se > guard {
                failures.push(format!(
                    "{label}: {what}: {got:.6} ± {:.6} (3s), reference {reference:.6}, tolerance {tol:.6}, guard {guard:.6}",
                    3.0 * se
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn h2_the_router_moves_what_the_references_say() {
    use rayon::prelude::*;
    // Class S through the simulation: the router counts, at the change, the keys requested
    // so far that change owner (about 37 000 of 50 000 keys, a uniform sample). 40 ring
    // seeds for consistent hashing with 1000 points per shard (Beta(1000, 10000) per ring,
    // sd 0.0027, plus the sample's binomial noise: enough for the 2% guard of the removal
    // share, 0.1), 10 replications for hash mod N.
    let n = 10;
    let simulated = |router: Value, seed: u64| {
        let m = h2_model(n, router, 50_000, 10_000.0, "5.5s");
        let r = replicate(&m, 20_261_122 + seed, 1).unwrap().remove(0);
        assert!(r.conservation.holds);
        r.components["r"].total["moved_key_share"]
    };
    let add = json!([{"at": "5s", "add": "s10"}]);
    let remove = json!([{"at": "5s", "remove": "s3"}]);
    let rings = |changes: &Value| -> Vec<f64> {
        (0..40u64)
            .into_par_iter()
            .map(|seed| {
                simulated(
                    json!({"strategy": {"consistent": {"vnodes": 1000, "seed": seed}}, "changes": changes}),
                    seed,
                )
            })
            .collect()
    };
    let modn: Vec<f64> = (0..10u64)
        .into_par_iter()
        .map(|seed| simulated(json!({"changes": add}), seed))
        .collect();
    let params = |after: usize, scheme: &str| {
        vec![
            ("nodes_before", json!(n)),
            ("nodes_after", json!(after)),
            ("scheme", json!(scheme)),
        ]
    };
    let cases = [
        (
            "consistent, add",
            rings(&add),
            params(11, "consistent hashing (any V), rendezvous, jump hash"),
        ),
        (
            "consistent, remove",
            rings(&remove),
            params(9, "consistent hashing, remove one node"),
        ),
        (
            "hash mod N, add",
            modn,
            params(11, "hash mod N -> hash mod (N+1)"),
        ),
    ];
    let mut failures = Vec::new();
    for (label, x, p) in &cases {
        let reference = reference("ch_keys_moved", "expected_fraction_of_keys_moved", p).0;
        let ((m, s), _) = mean_and_sd(x);
        let tol = 3.0 * s + B_MEAN * reference;
        let guard = mean_guard(reference);
        println!(
            "H2 simulated {label}: {m:.6} ± {:.6} (3s), reference {reference:.6}, tolerance {tol:.6}",
            3.0 * s
        );
        if (m - reference).abs() > tol || 3.0 * s > guard {
            failures.push(format!(
                "{label}: {m:.6} ± {:.6} (3s), reference {reference:.6}, tolerance {tol:.6}, guard {guard:.6}",
                3.0 * s
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Caches: LRU, FIFO, random and LFU under independent requests (C1–C4), TTL (C5).
// ---------------------------------------------------------------------------------------------

impl Experiment {
    /// Class A (an analytic approximation): |m − ref| ≤ a·|ref| + 3s, with class S's
    /// precision guard.
    fn check_approx(&mut self, what: &str, f: &dyn Fn(&RunResult) -> f64, r: f64, a: f64) {
        let (m, s) = self.stat(f);
        let tol = a * r.abs() + 3.0 * s;
        let guard = if r.abs() < 0.1 {
            G_SMALL_PROB_ABS
        } else {
            G_MEAN * r.abs()
        };
        println!(
            "{}: {what}: simulated {m:.6} ± {:.6} (3s), approximation {r:.6}, tolerance {tol:.6}",
            self.label,
            3.0 * s
        );
        if (m - r).abs() <= tol && 3.0 * s <= guard {
            self.passed += 1;
        } else {
            self.failures.push(format!(
                "{}: {what}: simulated {m:.6} ± {:.6} (3s), approximation {r:.6}, tolerance {tol:.6}, guard {guard:.6}",
                self.label,
                3.0 * s
            ));
        }
    }
}

/// A read-through cache `c` of `capacity` keys (eviction `eviction`, starting warm with
/// the most popular keys) before a backend that answers at once, read by Poisson requests
/// at `rate` per second on Zipf(`alpha`) keys over `n`: the independent reference model.
/// The warm-up takes `warmup` requests (the suite's max(5C, 2·10⁵) after the cache is
/// full), then `measured` requests per replication.
fn irm_cache(n: u64, alpha: f64, capacity: u64, eviction: &str, measured: f64) -> Value {
    let rate = 200_000.0;
    let warmup = (5.0 * capacity as f64).max(2e5) / rate;
    json!({
        "duration": format!("{}s", warmup + measured / rate), "warmup": format!("{warmup}s"),
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "c",
                            "keys": {"zipf": {"keys": n, "s": alpha}}}},
        "components": {
            "c": {"kind": "cache", "capacity": capacity, "eviction": eviction, "warm": true,
                  "on_miss": "db"},
            "db": {"kind": "service", "service_time": {"constant": "0ms"}}}
    })
}

fn hit_ratio(r: &RunResult) -> f64 {
    total(r, "c", "hit_ratio")
}

fn cache_case(n: u64, alpha: f64) -> String {
    let a = if alpha == 1.0 {
        "1".to_string()
    } else {
        alpha.to_string()
    };
    format!("cache_zipf_N{n}_a{a}")
}

/// Approximation allowance of Che and the FIFO/random approximation against simulation
/// (the suite's class A, a = 1%).
const A_CACHE: f64 = 0.01;

/// The rows of C1–C4 with N = 10⁴, which have a Monte Carlo reference for LRU and FIFO
/// (10 replications of 10⁵ requests each after warm-up: about a second of CPU per row and
/// policy).
const CACHE_ROWS: [(u64, f64, u64); 4] = [
    (10_000, 0.8, 100),
    (10_000, 0.8, 1000),
    (10_000, 1.0, 100),
    (10_000, 1.0, 1000),
];

/// The rows of C3–C4 with N = 10⁵: a Monte Carlo reference for LRU only. The caches start
/// warm (the C most popular keys), so the warm-up is the same max(5C, 2·10⁵) requests as
/// the smaller rows, over ten times LRU's characteristic time t_C (1,169 and 15,606
/// requests for α = 0.8).
const BIG_CACHE_ROWS: [(u64, f64, u64); 4] = [
    (100_000, 0.8, 1000),
    (100_000, 0.8, 10_000),
    (100_000, 1.0, 1000),
    (100_000, 1.0, 10_000),
];

#[test]
fn c1_c4_lru_against_its_monte_carlo_and_che() {
    for (n, alpha, c) in CACHE_ROWS.into_iter().chain(BIG_CACHE_ROWS) {
        let case = cache_case(n, alpha);
        let label = format!("{case} C={c} LRU");
        let mut e = Experiment::run(&label, irm_cache(n, alpha, c, "lru", 1e5), 10);
        let size = ("cache_size_C", json!(c));
        let lru = ("policy", json!("LRU"));
        let mc = reference(&case, "hit_ratio_mc", &[size.clone(), lru.clone()]);
        e.check(
            "hit ratio vs LRU Monte Carlo (M)",
            &hit_ratio,
            mc,
            B_MEAN,
            G_MEAN,
        );
        let che = reference(&case, "hit_ratio_che", &[size, lru]).0;
        e.check_approx("hit ratio vs Che (A)", &hit_ratio, che, A_CACHE);
        e.finish();
    }
}

#[test]
fn c1_c2_fifo_and_random_against_their_monte_carlo_and_approximation() {
    for (n, alpha, c) in CACHE_ROWS {
        let case = cache_case(n, alpha);
        let size = ("cache_size_C", json!(c));
        let approx = reference(
            &case,
            "hit_ratio_approx",
            &[size.clone(), ("policy", json!("FIFO_or_RANDOM"))],
        )
        .0;
        let mut e = Experiment::run(
            &format!("{case} C={c} FIFO"),
            irm_cache(n, alpha, c, "fifo", 1e5),
            10,
        );
        let mc = reference(&case, "hit_ratio_mc", &[size, ("policy", json!("FIFO"))]);
        e.check(
            "hit ratio vs FIFO Monte Carlo (M)",
            &hit_ratio,
            mc,
            B_MEAN,
            G_MEAN,
        );
        e.check_approx("hit ratio vs Dan-Towsley (A)", &hit_ratio, approx, A_CACHE);
        e.finish();
        // Random eviction: the same hit ratio as FIFO under independent requests (Gelenbe).
        let mut e = Experiment::run(
            &format!("{case} C={c} random"),
            irm_cache(n, alpha, c, "random", 1e5),
            10,
        );
        e.check_approx("hit ratio vs Dan-Towsley (A)", &hit_ratio, approx, A_CACHE);
        e.finish();
    }
}

#[test]
fn c3_c4_fifo_and_random_against_their_approximation() {
    // No Monte Carlo at N = 10⁵: class A against Dan–Towsley only.
    for (n, alpha, c) in BIG_CACHE_ROWS {
        let case = cache_case(n, alpha);
        let approx = reference(
            &case,
            "hit_ratio_approx",
            &[
                ("cache_size_C", json!(c)),
                ("policy", json!("FIFO_or_RANDOM")),
            ],
        )
        .0;
        for eviction in ["fifo", "random"] {
            let mut e = Experiment::run(
                &format!("{case} C={c} {eviction}"),
                irm_cache(n, alpha, c, eviction, 1e5),
                10,
            );
            e.check_approx("hit ratio vs Dan-Towsley (A)", &hit_ratio, approx, A_CACHE);
            e.finish();
        }
    }
}

#[test]
fn c1_c4_lfu_holds_the_top_c_keys() {
    // Class S against the top-C sum (perfect LFU). This LFU forgets counts on eviction and
    // starts warm with the C most popular keys, each counted as put and read once: the
    // popular keys' counts soon outgrow any newcomer's, so they stay, and one slot churns
    // (its share, about p_C, is within the bias allowance).
    for (n, alpha, c) in CACHE_ROWS.into_iter().chain(BIG_CACHE_ROWS) {
        let case = cache_case(n, alpha);
        let mut e = Experiment::run(
            &format!("{case} C={c} LFU"),
            irm_cache(n, alpha, c, "lfu", 1e5),
            10,
        );
        let top = reference(
            &case,
            "hit_ratio",
            &[
                ("cache_size_C", json!(c)),
                ("policy", json!("LFU_perfect_or_static_top_C")),
            ],
        );
        e.check("hit ratio vs top-C (S)", &hit_ratio, top, B_MEAN, G_MEAN);
        e.finish();
    }
}

/// A TTL cache with room for every key, read by Poisson requests at `rate` per second on
/// `keys`, entries living `ttl_s` from their fill (or from their last hit with
/// `refresh`), for `secs` after a warm-up of ten TTLs.
fn ttl_cache(keys: Value, rate: f64, ttl_s: f64, refresh: bool, secs: f64) -> Value {
    let warmup = 10.0 * ttl_s;
    json!({
        "duration": format!("{}s", warmup + secs), "warmup": format!("{warmup}s"),
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "c", "keys": keys}},
        "components": {
            "c": {"kind": "cache", "capacity": 1_000_000, "on_miss": "db",
                  "ttl": format!("{ttl_s}s"), "ttl_refresh": refresh},
            "db": {"kind": "service", "service_time": {"constant": "0ms"}}}
    })
}

#[test]
fn c5_ttl_cache() {
    let case = "cache_ttl";
    // One key at 2 per second, T = 1 s: 2/3 set at insertion, 1 − e^{−2} refreshed.
    for (refresh, mode) in [(false, "expire_from_insert"), (true, "refresh_on_hit")] {
        let one = json!({"hot_key": {"keys": 1, "traffic": 1.0}});
        let mut e = Experiment::run(
            &format!("{case} one key {mode}"),
            ttl_cache(one, 2.0, 1.0, refresh, 5000.0),
            10,
        );
        let r = reference(case, "single_key_hit_ratio", &[("ttl_mode", json!(mode))]);
        e.check("hit ratio", &hit_ratio, r, B_MEAN, G_MEAN);
        e.finish();
    }
    // Zipf(0.8) over 10⁴ keys at 1000 per second.
    for ttl in [0.01, 0.1, 1.0] {
        for (refresh, mode) in [(false, "expire_from_insert"), (true, "refresh_on_hit")] {
            let zipf = json!({"zipf": {"keys": 10_000, "s": 0.8}});
            let secs = (20.0f64 / ttl).clamp(50.0, 200.0);
            let mut e = Experiment::run(
                &format!("{case} T={ttl}s {mode}"),
                ttl_cache(zipf, 1000.0, ttl, refresh, secs),
                10,
            );
            let p = |mode: &str| vec![("ttl_T", json!(ttl)), ("ttl_mode", json!(mode))];
            let hit = reference(case, "hit_ratio", &p(mode));
            e.check("hit ratio", &hit_ratio, hit, B_MEAN, G_MEAN);
            let cached = reference(case, "mean_keys_cached", &p(mode));
            e.check(
                "mean keys cached",
                &|r: &RunResult| total(r, "c", "entries_mean"),
                cached,
                B_MEAN,
                G_MEAN,
            );
            if !refresh {
                // The built-in check: the miss rate equals keys cached over T.
                let rate = reference(case, "miss_rate_to_backend", &p(mode));
                e.check(
                    "backend miss rate /s",
                    &|r: &RunResult| total(r, "c", "misses") / (r.window_end_s - r.window_start_s),
                    rate,
                    B_MEAN,
                    G_MEAN,
                );
            }
            e.finish();
        }
    }
}
