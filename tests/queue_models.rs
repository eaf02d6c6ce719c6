//! The lessons of the queue models in models/ (issue 13 point 5): async-email.json (a slow
//! step done in the request against enqueued) and queue-burst.json (a queue absorbs a
//! burst a synchronous service refuses), on seed 1, and the burst's backlog estimate.

use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use std::path::Path;

fn shipped(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_model_str(&text, Format::Json, path.parent().unwrap(), &[]).unwrap()
}

fn run(m: &Model) -> RunResult {
    let r = replicate(m, 1, 1).unwrap().remove(0);
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

#[test]
fn lesson_async_email_users_wait_less_and_emails_arrive_later() {
    let r = run(&shipped("async-email.json"));
    let (sync, asy) = (&r.workloads["sync"], &r.workloads["async"]);
    assert_eq!(sync.failed + asy.failed, 0);
    // The user no longer waits for the email: p99 over a hundred times lower.
    assert!(
        asy.latency.p99_ms * 100.0 < sync.latency.p99_ms,
        "{} {}",
        asy.latency.p99_ms,
        sync.latency.p99_ms
    );
    // The email itself arrives later than when sent in the request: its hotter pool
    // makes it wait longer (mean and p99).
    let delay = r.components["emails"].detail.histogram("delay").unwrap();
    let in_request = r.components["mailer_sync"].total["wait_mean_ms"] + 400.0;
    assert!(
        delay.mean_ms > in_request + 30.0,
        "{} {in_request}",
        delay.mean_ms
    );
    assert!(delay.p99_ms > sync.latency.p99_ms, "{}", delay.p99_ms);
    // Nothing is lost on the way.
    let q = &r.components["emails"].total;
    assert!(q["enqueued"] - q["acked"] <= 40.0, "{q:?}");
}

#[test]
fn lesson_queue_burst_the_queue_absorbs_what_the_synchronous_service_refuses() {
    let m = shipped("queue-burst.json");
    let r = run(&m);
    let (sync, asy) = (&r.workloads["sync"], &r.workloads["async"]);
    // About (400 - 200)/s x 10 s refused by the synchronous path; none by the queue.
    assert!(sync.failed > 1500 && sync.failed < 2500, "{}", sync.failed);
    assert_eq!(sync.errors["queue_full"], sync.failed);
    assert_eq!(asy.failed, 0);
    let q = &r.components["jobs"].total;
    assert!(q["depth_max"] > 1500.0, "{}", q["depth_max"]);
    // The depth rises during the burst (20-30 s) and drains after it: per 5 s window.
    let depth = &r.component_series["jobs"]["depth_mean"];
    let window = |t: f64| depth[(t / 5.0) as usize];
    assert!(window(10.0) < 5.0, "{depth:?}");
    assert!(window(25.0) > 1000.0, "{depth:?}");
    assert!(window(30.0) > window(40.0), "{depth:?}");
    assert!(window(60.0) < 5.0, "{depth:?}");
    assert!(q["enqueued"] - q["acked"] <= 20.0, "{q:?}");
    // The estimate's backlog: (400 - 200)/s x 10 s = 2000 messages, drained in 20 s at
    // the spare 100/s; the simulated depth comes within its tolerance.
    let est = scalesim::analysis::estimate(&m);
    let (_, mine) = est.metrics.iter().find(|(n, _)| n == "jobs").unwrap();
    let b = mine.iter().find(|e| e.metric == "depth_max").unwrap();
    assert!((b.value - 2000.0).abs() < 1e-6, "{b:?}");
    assert!(b.method.contains("drains in 20.0 s"), "{}", b.method);
    assert!((q["depth_max"] - b.value).abs() <= b.tolerance, "{b:?}");
    // No steady-state estimate of a rate that changes.
    assert!(mine.iter().all(|e| e.metric != "delay_mean_ms"), "{mine:?}");
}
