//! A `queue` whose consumers take messages in batches (`batch`): a free worker takes up to
//! `max` waiting messages, waiting up to `max_wait` for more, and holds them for `fixed` +
//! `per_message` × their number; every message of a batch is acknowledged (or retried)
//! together. Batching lifts a consumer pool that saturates one message at a time; a long
//! `max_wait` makes larger batches at a low rate and the delay includes the wait; a small
//! constant case is checked to the nanosecond; bad input is refused at its path.

use crate::support::{check_refuses, scalesim, stdout_ok};
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

/// Producers `api` (instant) enqueue into `q` at `arrivals`, consumed by `worker` (one
/// instance, `workers` workers, 10 ms a message on its own).
fn pipeline(arrivals: Value, duration: &str, queue: Value, workers: u32) -> Value {
    let mut q = json!({"kind": "queue", "consumers": "worker"});
    for (k, v) in queue.as_object().unwrap() {
        q[k] = v.clone();
    }
    json!({
        "duration": duration,
        "workloads": {"w": {"arrivals": arrivals, "target": "api"}},
        "components": {
            "api": {"kind": "service", "workers": 1000, "service_time": {"constant": "0ms"},
                    "handler": [{"call": "q"}]},
            "q": q,
            "worker": {"kind": "service", "workers": workers,
                       "service_time": {"constant": "10ms"}}
        }
    })
}

fn run(v: &Value, seed: u64) -> RunResult {
    let runs = replicate(&model(v), seed, 1).unwrap();
    let r = runs.into_iter().next().unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

fn q(r: &RunResult, metric: &str) -> f64 {
    r.components["q"].total[metric]
}

#[test]
fn batching_lets_a_saturated_consumer_pool_keep_up() {
    // 600 messages/s on 4 workers. One at a time at 10 ms each they do at most
    // 4 / 10 ms = 400/s: the backlog grows for the whole run. In batches of up to 20 at
    // 10 ms + 1 ms per message, full batches would do 4 × 20 / 30 ms = 2,667/s: the pool
    // keeps up, with batches of a few messages.
    let poisson = json!({"poisson": {"rate": 600}});
    let one = pipeline(poisson.clone(), "20s", json!({}), 4);
    let batched = pipeline(
        poisson.clone(),
        "20s",
        json!({"batch": {"max": 20, "fixed": {"constant": "10ms"},
                         "per_message": {"constant": "1ms"}}}),
        4,
    );
    let (a, b) = (run(&one, 7), run(&batched, 7));
    let window = 20.0;
    let capacity_one = 4.0 / 0.010;
    let capacity_full_batches = 4.0 * 20.0 / 0.030;
    println!(
        "one at a time: ack {:.1}/s, delay {:.1} ms; batched: ack {:.1}/s, delay {:.2} ms, batch {:.2}",
        q(&a, "ack_rate_per_s"),
        q(&a, "delay_mean_ms"),
        q(&b, "ack_rate_per_s"),
        q(&b, "delay_mean_ms"),
        q(&b, "batch_size_mean")
    );
    // One at a time: the pool runs flat out at its capacity, far below the arrivals.
    assert!((q(&a, "ack_rate_per_s") - capacity_one).abs() < 0.01 * capacity_one);
    assert!(q(&a, "depth_max") > 0.3 * (600.0 - capacity_one) * window);
    assert!(q(&a, "delay_mean_ms") > 2_000.0);
    // Batched: everything enqueued is acknowledged but the last few, within a batch time.
    let enq = q(&b, "enqueued");
    assert!(
        q(&b, "acked") >= enq - 4.0 * 20.0,
        "{enq} {}",
        q(&b, "acked")
    );
    assert!(q(&b, "ack_rate_per_s") > 0.97 * 600.0);
    assert!(q(&b, "ack_rate_per_s") < capacity_full_batches);
    assert!(q(&b, "delay_mean_ms") < 50.0);
    assert!(q(&b, "delay_mean_ms") >= 11.0, "at least one batch of one");
    let size = q(&b, "batch_size_mean");
    assert!(size > 1.2 && size < 20.0, "{size}");
    assert!((q(&b, "batches") * size - q(&b, "deliveries")).abs() < 1e-6);
    assert_eq!(q(&b, "redeliveries"), 0.0);
    assert_eq!(q(&b, "duplicates"), 0.0);
    // The consumer service counts one request per batch.
    let done = b.components["worker"].total["completed"];
    assert!((done - q(&b, "batches")).abs() <= 4.0, "{done}");

    // Batches of one taking the consumer's own time are the one-at-a-time pipeline.
    let ones = pipeline(
        poisson,
        "20s",
        json!({"batch": {"max": 1, "fixed": {"constant": "10ms"}}}),
        4,
    );
    let c = run(&ones, 7);
    for m in [
        "enqueued",
        "acked",
        "delay_mean_ms",
        "depth_mean",
        "depth_max",
    ] {
        assert_eq!(q(&a, m), q(&c, m), "{m}");
    }
    assert_eq!(q(&c, "batch_size_mean"), 1.0);
}

#[test]
fn a_long_max_wait_makes_larger_batches_at_a_low_rate_and_the_delay_includes_it() {
    // 10 messages/s on one worker, 1 ms + 1 ms a message. Without waiting each message
    // finds the worker free and goes alone (a batch of one, 2 ms). Waiting 500 ms from
    // the first message gathers the next ~5 (capped at 10): the first of each batch waits
    // the whole 500 ms.
    let poisson = json!({"poisson": {"rate": 10}});
    let batch = |wait: &str| {
        json!({"batch": {"max": 10, "max_wait": wait, "fixed": {"constant": "1ms"},
                         "per_message": {"constant": "1ms"}}})
    };
    let now = run(&pipeline(poisson.clone(), "200s", batch("0s"), 1), 3);
    let wait = run(&pipeline(poisson, "200s", batch("500ms"), 1), 3);
    let (s0, s1) = (q(&now, "batch_size_mean"), q(&wait, "batch_size_mean"));
    let (d0, d1) = (q(&now, "delay_mean_ms"), q(&wait, "delay_mean_ms"));
    println!("max_wait 0: batch {s0:.3}, delay {d0:.2} ms; 500ms: batch {s1:.3}, delay {d1:.1} ms");
    assert!(s0 < 1.05, "{s0}");
    assert!(d0 < 3.0, "{d0}");
    // 1 + 10/s × 0.5 s = 6 expected (fewer when 10 came first).
    assert!(s1 > 4.5 && s1 < 7.0, "{s1}");
    // The first of a batch waits 500 ms, the others what is left of it after they came,
    // on average about half: the mean lies between.
    assert!(d1 > 250.0 && d1 < 505.0 + 12.0, "{d1}");
    let p99 = serde_json::to_value(&wait.components["q"]).unwrap()["delay"]["p99_ms"]
        .as_f64()
        .unwrap();
    assert!(p99 >= 500.0, "{p99}");
}

#[test]
fn a_small_constant_case_has_exactly_the_expected_batches_and_delays() {
    // A message every 10 ms; one worker; batches of up to 4, waiting up to 25 ms, taking
    // 5 ms + 1 ms a message. Every 100 ms repeats: the worker sees message 1 free and
    // waits until 25 ms later: 3 messages (8 ms, acked at 33); message 4 arrives while it
    // works, so it waits 25 ms from 33: messages 4-6 at 58 (acked at 66); message 7 comes
    // at 60, the batch fills with message 10 at 90 (4 messages, 9 ms: acked at 99). Delays:
    // 33, 23, 13 | 36, 26, 16 | 39, 29, 19, 9: 243 ms for 10 messages in 3 batches.
    // Arrivals come at 10 ms, 20 ms, ... 10 s: 100 periods, the last one's third batch
    // (taken at 10 s) still out at the end: 1,000 enqueued, 996 acknowledged in 300
    // batches, delays 99 × 243 + (33 + 23 + 13 + 36 + 26 + 16) ms.
    let v = pipeline(
        json!({"constant": {"rate": 100}}),
        "10s",
        json!({"batch": {"max": 4, "max_wait": "25ms", "fixed": {"constant": "5ms"},
                         "per_message": {"constant": "1ms"}}}),
        1,
    );
    let r = run(&v, 1);
    assert_eq!(q(&r, "enqueued"), 1000.0);
    assert_eq!(q(&r, "acked"), 996.0);
    assert_eq!(q(&r, "batches"), 300.0);
    assert_eq!(q(&r, "deliveries"), 1000.0);
    assert_eq!(q(&r, "batch_size_mean"), 1000.0 / 300.0);
    let delays = 99.0 * 243.0 + 33.0 + 23.0 + 13.0 + 36.0 + 26.0 + 16.0;
    assert!((q(&r, "delay_mean_ms") - delays / 996.0).abs() < 1e-9);
    assert_eq!(q(&r, "oldest_age_max_ms"), 39.0);
    // Four wait at most: messages 7 to 10, until the fourth makes the batch full.
    assert_eq!(q(&r, "depth_max"), 4.0);
    // Messages out: 3 for 8 ms, 3 for 8 ms, 4 for 9 ms each period (the last one's
    // third batch taken at the very end): 99 × 84 + 48 message-ms over 10 s.
    assert!((q(&r, "in_flight_mean") - (99.0 * 84.0 + 48.0) / 10_000.0).abs() < 1e-9);
    // The same bytes again.
    let again = run(&v, 1);
    assert_eq!(
        serde_json::to_string(&r.components["q"]).unwrap(),
        serde_json::to_string(&again.components["q"]).unwrap()
    );
}

#[test]
fn every_message_of_a_failed_batch_is_retried_and_dead_lettered_together() {
    // A visibility timeout (20 ms) shorter than a batch's work (30 ms), workers enough
    // for every batch: each batch times out, its messages are delivered again, and after
    // 2 deliveries all of them are dead-lettered; every batch's late answer counts each
    // of its messages as a duplicate.
    let v = pipeline(
        json!({"constant": {"rate": 100}}),
        "5s",
        json!({"visibility_timeout": "20ms", "max_deliveries": 2,
               "batch": {"max": 5, "max_wait": "25ms", "fixed": {"constant": "30ms"}}}),
        1000,
    );
    let r = run(&v, 1);
    let (enq, dead) = (q(&r, "enqueued"), q(&r, "dead_lettered"));
    let (deliveries, duplicates) = (q(&r, "deliveries"), q(&r, "duplicates"));
    println!("enqueued {enq} dead {dead} deliveries {deliveries} duplicates {duplicates}");
    assert_eq!(q(&r, "acked"), 0.0);
    assert!(q(&r, "batch_size_mean") > 1.5);
    // A message is dead-lettered 2 × (up to 25 ms + 20 ms) after it came at the latest.
    assert!(dead >= enq - 10.0 && dead <= enq, "{dead}");
    let firsts = deliveries - q(&r, "redeliveries");
    assert!(firsts <= enq && firsts >= enq - 3.0, "{firsts}");
    assert!(deliveries >= 2.0 * dead && deliveries <= 2.0 * enq);
    // Every delivery's batch ends 30 ms after it, late: but those still in work at the end.
    assert!(
        duplicates <= deliveries && duplicates >= deliveries - 10.0,
        "{duplicates}"
    );
}

#[test]
fn the_table_and_csv_show_the_batches() {
    let v = pipeline(
        json!({"poisson": {"rate": 200}}),
        "5s",
        json!({"batch": {"max": 8, "max_wait": "5ms", "fixed": {"constant": "4ms"},
                         "per_message": {"constant": "1ms"}}}),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, v.to_string()).unwrap();
    let table =
        String::from_utf8(stdout_ok(scalesim().args(["run", file.to_str().unwrap()]))).unwrap();
    assert!(table.contains("batch"), "{table}");
    let csv = String::from_utf8(stdout_ok(scalesim().args([
        "run",
        file.to_str().unwrap(),
        "--format",
        "csv",
    ])))
    .unwrap();
    assert!(csv.contains("batch_size_mean"), "{csv}");
    assert!(csv.contains("batches"), "{csv}");
    // A queue without batch reports no batch metrics.
    let plain = pipeline(json!({"poisson": {"rate": 50}}), "2s", json!({}), 1);
    let r = run(&plain, 1);
    assert!(!r.components["q"].total.contains_key("batches"));
}

#[test]
fn bad_batch_settings_are_refused_at_their_path() {
    let with = |b: Value| {
        pipeline(
            json!({"poisson": {"rate": 10}}),
            "1s",
            json!({"batch": b}),
            1,
        )
    };
    check_refuses(
        &with(json!({"max": 0})),
        "components.q.batch.max",
        "between 1 and",
    );
    check_refuses(
        &with(json!({"max_wait": "-5ms"})),
        "components.q.batch.max_wait",
        "must not be negative",
    );
    check_refuses(&with(json!({"maxx": 3})), "maxx", "unknown field");
    check_refuses(
        &with(json!({"fixed": {"constant": "-1ms"}})),
        "components.q.batch.fixed",
        "negative",
    );
    check_refuses(
        &with(json!({"per_message": {"constant": "-1ms"}})),
        "components.q.batch.per_message",
        "negative",
    );
}
