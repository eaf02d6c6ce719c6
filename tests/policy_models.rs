//! The lessons of the policy models in models/ (issue 12 points 9 and 10):
//! cascade-breaker.json, rate-limit-shedding.json, idempotent-retries.json and
//! connection-pool.json, each without and with the knob its description names, on the
//! same seed.

use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn shipped(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run(v: &Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    replicate(&m, 1, 1).unwrap().remove(0)
}

/// A workload's successful answers in the 2 s windows from `from` (inclusive) to `to`.
fn answered(r: &RunResult, workload: &str, from: usize, to: usize) -> u64 {
    r.series[workload].completed[from..to].iter().sum()
}

#[test]
fn lesson_cascade_breaker_a_breaker_keeps_the_other_path_served() {
    let cascade = run(&shipped("cascade-breaker.json"));
    let mut v = shipped("cascade-breaker.json");
    v["components"]["front"]["calls_to"]["payments"]["breaker"] =
        json!({"window": "2s", "min_calls": 10, "open_for": "2s"});
    let breaker = run(&v);
    v["components"]["front"]["calls_to"]["payments"]["fallback"] = json!({"answer": "ok"});
    let fallback = run(&v);
    // Payments black-holed from 20 s to 40 s. Without a breaker, checkouts hold the
    // front's 16 workers for their 1 s call timeout and browse, which never calls
    // payments, waits in the front's queue past its users' 1 s: observed 0 answered from
    // 22 s to 40 s (800 per 2 s window before), 7,979 browse requests failed.
    assert!(answered(&cascade, "browse", 5, 10) > 3_500);
    assert_eq!(answered(&cascade, "browse", 11, 20), 0);
    assert!(cascade.workloads["browse"].failed > 6_000);
    // With a breaker: it opens about a second in, checkouts fail at once (circuit_open,
    // checkout p99 49 ms against 2.6 s), and browse is answered as before from 22 s
    // (observed 7,400 in those 9 windows; 407 failed, all in the first second).
    let e = &breaker.edges["front->payments"];
    let b = e.breaker.as_ref().unwrap();
    assert!(
        b.opened >= 1 && b.changes.last().unwrap().state == "closed",
        "{b:?}"
    );
    assert!(e.circuit_open > 1_500, "{e:?}");
    assert!(answered(&breaker, "browse", 11, 20) > 6_500);
    assert!(breaker.workloads["browse"].failed < 1_000);
    let p99 = |r: &RunResult| r.workloads["checkout"].latency.p99_ms;
    assert!(p99(&breaker) < 100.0 && p99(&cascade) > 1_000.0);
    // With a fallback as well: the failed checkouts are answered, counted degraded.
    assert_eq!(fallback.workloads["checkout"].failed, 0);
    assert_eq!(
        fallback.edges["front->payments"].degraded,
        breaker.workloads["checkout"].failed
    );
}

#[test]
fn lesson_rate_limit_shedding_admission_control_keeps_goodput_and_p99_through_a_burst() {
    let r = run(&shipped("rate-limit-shedding.json"));
    let w = |n: &str| &r.workloads[n];
    let total = |c: &str, m: &str| r.components[c].total[m];
    // 1,500/s for 10 s against 800/s of capacity, clients gone after 1 s. Without
    // admission control the queue reaches 7,215, drains at 200/s, and nothing is answered
    // in time from 24 s to the end (observed goodput 196/s over the run).
    assert!(total("plain", "queue_max") > 5_000.0);
    assert_eq!(answered(&r, "plain", 12, 30), 0);
    // Each policy keeps the goodput near what arrives and can be served (observed
    // 635-638/s, 1.6 times the burst's base in its windows) and its p99 far below the
    // timeout: rate limit 212 ms, shedding 137 ms, adaptive LIFO + drop 52 ms.
    for (n, p99) in [("limited", 300.0), ("shedding", 200.0), ("lifo", 100.0)] {
        assert!(w(n).goodput_per_s > 600.0, "{n} {:?}", w(n));
        assert!(w(n).goodput_per_s > 3.0 * w("plain").goodput_per_s);
        assert!(w(n).latency.p99_ms < p99, "{n} {:?}", w(n).latency);
        assert!(answered(&r, n, 12, 30) > 20_000, "{n}");
    }
    // Each fails by its own cause, at once (the limiter and the shedder) or as the old
    // requests whose clients left (LIFO: the service drops them unserved).
    assert!(w("limited").errors["rate_limited"] > 5_000);
    assert!(w("shedding").errors["shed"] > 5_000);
    assert!(total("lifo", "deadline_exceeded") > 5_000.0);
    assert!(total("shedding", "queue_max") <= 80.0);
    // LIFO with deadlines ignored serves those old requests anyway: the same goodput,
    // and about 6,100 more requests served for clients who had left.
    let mut v = shipped("rate-limit-shedding.json");
    v["components"]["lifo"]["deadlines"] = json!("ignore");
    let ignore = run(&v);
    let wasted = ignore.components["lifo"].total["completed"] - total("lifo", "completed");
    assert!(wasted > 4_000.0, "{wasted}");
}

#[test]
fn lesson_idempotent_retries_a_key_removes_the_duplicate_writes() {
    let r = run(&shipped("idempotent-retries.json"));
    let w = &r.workloads["customers"];
    let rt = w.retries.as_ref().unwrap();
    // A client timeout of 100 ms below the writes' tail (p95 about 110 ms): observed 156
    // retries and 155 duplicates, 5.8% of the 2,679 writes, while only 2 requests failed.
    let writes = w.classes["write"].arrived;
    let dup = rt.duplicates.unwrap();
    assert!(dup > 100 && (dup as f64) > 0.03 * writes as f64, "{rt:?}");
    assert!(w.failed < 10, "{w:?}");
    assert_eq!(rt.deduplicated, Some(0));
    // The key: the same draws, every duplicate removed, nothing else moves.
    let mut v = shipped("idempotent-retries.json");
    v["workloads"]["customers"]["idempotency_key"] = json!(true);
    let k = run(&v);
    let kw = &k.workloads["customers"];
    let krt = kw.retries.as_ref().unwrap();
    assert_eq!(krt.duplicates, Some(0));
    assert_eq!(krt.deduplicated, Some(dup));
    assert_eq!((kw.completed, kw.failed), (w.completed, w.failed));
    // A timeout above the tail: fewer duplicates (observed 25), not none.
    let mut v = shipped("idempotent-retries.json");
    v["workloads"]["customers"]["timeout"] = json!("300ms");
    let long = run(&v);
    let ld = long.workloads["customers"]
        .retries
        .as_ref()
        .unwrap()
        .duplicates
        .unwrap();
    assert!(ld < dup / 3, "{ld} {dup}");
}

#[test]
fn lesson_connection_pool_too_small_queues_too_large_overloads_the_database() {
    let with_pool = |size: u64| {
        let mut v = shipped("connection-pool.json");
        v["components"]["app"]["calls_to"]["db"]["pool"]["size"] = json!(size);
        run(&v)
    };
    let (small, right, large) = (with_pool(2), with_pool(4), with_pool(50));
    fn users(r: &RunResult) -> &scalesim::results::WorkloadResult {
        &r.workloads["users"]
    }
    fn pool(r: &RunResult) -> &scalesim::policy::report::SlotsResult {
        r.edges["app->db"].pool.as_ref().unwrap()
    }
    fn burst(r: &RunResult) -> &scalesim::results::RecoveryResult {
        assert_eq!(r.faults.len(), 1);
        r.faults[0].recovery.as_ref().unwrap()
    }
    // Right (16 connections, the db's knee): the 2 s spike waits in the pool and is
    // absorbed in 4 s; nothing fails; p99 547 ms over the run, pool wait mean 19 ms.
    assert_eq!(users(&right).failed, 0);
    assert!(users(&right).latency.p99_ms < 800.0, "{:?}", users(&right));
    assert!(pool(&right).wait_mean_ms < 40.0, "{:?}", pool(&right));
    assert!(burst(&right).time_to_recover_s.unwrap() < 8.0);
    assert!(!burst(&right).metastable);
    // Too small (8 connections: 1,600 queries/s for 2,000/s): the pool wait is the
    // latency, until the users give up (observed 496 ms mean wait, 103,574 timeouts).
    let p = pool(&small);
    assert!(p.utilization > 0.99 && p.wait_mean_ms > 300.0, "{p:?}");
    assert!(users(&small).failed > 50_000, "{:?}", users(&small));
    assert!(users(&small).errors["timeout"] == users(&small).failed);
    // Too large (200 connections): the spike reaches the db whole, up to 200 queries
    // slow each other and it never catches up: p99 near the users' 2 s, timeouts after
    // the spike, a metastable failure; most of the db's time is spent on many queries at
    // once (in_system_mean 148 against 10 with the right pool).
    let l = users(&large);
    assert!(l.latency.p99_ms > 1_500.0 && l.failed > 1_000, "{l:?}");
    assert!(burst(&large).metastable && burst(&large).time_to_recover_s.is_none());
    let in_db = |r: &RunResult| r.components["db"].total["in_system_mean"];
    assert!(in_db(&large) > 5.0 * in_db(&right));
    // The U: the right pool beats both ends on p99.
    assert!(users(&right).latency.p99_ms * 2.0 < l.latency.p99_ms);
}
