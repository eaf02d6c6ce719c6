//! The `queue` kind: a producer is answered once its message is enqueued; the consumer
//! service gets the messages at least once. One consumer with exponential service is an
//! M/M/1 queue (validation case Q1); a visibility timeout shorter than the service time
//! redelivers every message; the dead-letter queue gets exactly the messages that failed
//! `max_deliveries` times; bad input is refused with the field's path.

use crate::support::check_refuses;
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

/// A validation row: its name, how to read it from a run, the reference value and the
/// class S tolerances.
type Check<'a> = (&'a str, &'a dyn Fn(&RunResult) -> f64, f64, f64, f64);

fn model(v: Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

/// Producers `api` (instant) enqueue into `q`, consumed by `worker` with `service`.
fn pipeline(rate: f64, duration: &str, queue: Value, workers: u32, service: Value) -> Value {
    let mut q = json!({"kind": "queue", "consumers": "worker"});
    for (k, v) in queue.as_object().unwrap() {
        q[k] = v.clone();
    }
    json!({
        "duration": duration,
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}}, "target": "api"}},
        "components": {
            "api": {"kind": "service", "workers": 1000, "service_time": {"constant": "0ms"},
                    "handler": [{"call": "q"}]},
            "q": q,
            "worker": {"kind": "service", "workers": workers, "service_time": service}
        }
    })
}

fn q(r: &RunResult, metric: &str) -> f64 {
    r.components["q"].total[metric]
}

fn run(v: Value, seed: u64) -> RunResult {
    let runs = replicate(&model(v), seed, 1).unwrap();
    let r = runs.into_iter().next().unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

#[test]
fn one_consumer_with_exponential_service_is_mm1() {
    // Q1 (Kleinrock Vol. 1 §3.2): λ = 0.8, μ = 1 per ms. The queue holds the waiting
    // messages (one out at a time, the consumer's one worker): its depth is Lq = 3.2 and a
    // message's delay from enqueue to ack is the sojourn time T ~ Exp(μ − λ): mean 5 ms,
    // p99 23.0259 ms. Class S: |m − ref| ≤ 3s + b·ref with precision guard 3s ≤ g·ref.
    let mut v = pipeline(
        800.0,
        "500s",
        json!({}),
        1,
        json!({"exponential": {"mean": "1ms"}}),
    );
    v["warmup"] = json!("10s");
    let runs = replicate(&model(v), 20_261_128, 12).unwrap();
    let stat = |f: &dyn Fn(&RunResult) -> f64| {
        let x: Vec<f64> = runs.iter().map(f).collect();
        let e = scalesim::stats::Estimate::of(&x);
        (e.mean, e.se())
    };
    let p99 = |r: &RunResult| {
        let j = serde_json::to_value(&r.components["q"]).unwrap();
        j["delay"]["p99_ms"].as_f64().unwrap()
    };
    let checks: [Check; 4] = [
        ("W", &|r| q(r, "delay_mean_ms"), 5.0, 0.005, 0.02),
        ("Lq", &|r| q(r, "depth_mean"), 3.2, 0.005, 0.02),
        ("busy", &|r| q(r, "in_flight_mean"), 0.8, 0.005, 0.02),
        ("T p99", &p99, 23.0259, 0.011, 0.04),
    ];
    let mut failures = Vec::new();
    for (what, f, reference, b, g) in checks {
        let (m, s) = stat(f);
        let ok = (m - reference).abs() <= 3.0 * s + b * reference;
        let precise = 3.0 * s <= g * reference;
        println!("{what}: {m:.4} ± {:.4} (3s) against {reference}", 3.0 * s);
        if !(ok && precise) {
            failures.push(format!("{what}: {m} ± {} against {reference}", 3.0 * s));
        }
    }
    for r in &runs {
        assert_eq!(q(r, "redeliveries"), 0.0);
        assert_eq!(q(r, "duplicates"), 0.0);
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_visibility_timeout_shorter_than_the_service_time_redelivers_every_message() {
    // Service 100 ms, visibility 60 ms, 3 deliveries at most, workers enough for every
    // delivery: each delivery times out before its (successful) reply, so each message is
    // delivered 3 times at 0, 60 and 120 ms after it is enqueued, all 3 replies come back
    // late (3 duplicates) and it is dead-lettered at 180 ms. Exact counts.
    let v = pipeline(
        100.0,
        "10s",
        json!({"visibility_timeout": "60ms", "max_deliveries": 3}),
        1000,
        json!({"constant": "100ms"}),
    );
    let r = run(v, 1);
    let n = q(&r, "enqueued");
    assert!(n > 900.0, "{n}");
    let done = q(&r, "dead_lettered");
    // Messages enqueued in the last 180 ms are still in the queue at the end.
    assert!(n - done < 40.0, "{n} enqueued, {done} dead-lettered");
    assert_eq!(q(&r, "acked"), 0.0);
    let started = q(&r, "deliveries");
    let redelivered = q(&r, "redeliveries");
    assert!(started >= 3.0 * done && started <= 3.0 * n);
    // Every message's first delivery is not a redelivery.
    assert_eq!(started - redelivered, n);
    // Every delivery answered before the end came back late: a duplicate.
    assert!(q(&r, "duplicates") >= 3.0 * done - 3.0);
    assert!(q(&r, "duplicates") <= started);

    // A visibility timeout longer than the service time: no redelivery, each acked once.
    let v = pipeline(
        100.0,
        "10s",
        json!({"visibility_timeout": "150ms", "max_deliveries": 3}),
        1000,
        json!({"constant": "100ms"}),
    );
    let r = run(v, 1);
    assert_eq!(q(&r, "redeliveries"), 0.0);
    assert_eq!(q(&r, "duplicates"), 0.0);
    assert_eq!(q(&r, "dead_lettered"), 0.0);
    assert!(q(&r, "enqueued") - q(&r, "acked") < 20.0);
}

#[test]
fn some_deliveries_time_out_and_some_are_acked_at_the_rates_theory_gives() {
    // Service ~ Exp(mean 100 ms), visibility 60 ms, 8 deliveries at most, workers enough
    // for every delivery: each delivery times out independently with p = e^(-0.6), and
    // its reply then comes back late, a duplicate. Per message: deliveries
    // (1 - p^8) / (1 - p), redeliveries one fewer, duplicates p (1 - p^8) / (1 - p) (one
    // per delivery timed out), dead-lettered p^8, acked
    // 1 - p^8. Acknowledged and expired deliveries interleave in the queue's deadlines.
    let v = pipeline(
        100.0,
        "200s",
        json!({"visibility_timeout": "60ms", "max_deliveries": 8}),
        10_000,
        json!({"exponential": {"mean": "100ms"}}),
    );
    let r = run(v, 7);
    let n = q(&r, "enqueued");
    assert!(n > 19_000.0, "{n}");
    let p = (-0.6f64).exp();
    let p8 = p.powi(8);
    let per_message = |metric: &str| q(&r, metric) / n;
    let within = |metric: &str, expected: f64, tolerance: f64| {
        let got = per_message(metric);
        assert!(
            (got - expected).abs() <= tolerance * expected,
            "{metric} per message {got:.4}, expected {expected:.4}"
        );
    };
    // The last second's messages are still out at the end: 0.5% of them.
    within("deliveries", (1.0 - p8) / (1.0 - p), 0.03);
    within("redeliveries", (p - p8) / (1.0 - p), 0.03);
    within("duplicates", p * (1.0 - p8) / (1.0 - p), 0.03);
    within("acked", 1.0 - p8, 0.02);
    // About 165 dead-lettered: within four standard deviations of a binomial count.
    let dead = q(&r, "dead_lettered");
    assert!(
        (dead - n * p8).abs() <= 4.0 * (n * p8).sqrt(),
        "{dead} dead-lettered of {n}, expected {:.0}",
        n * p8
    );
    assert_eq!(q(&r, "deliveries") - q(&r, "redeliveries"), n);
}

#[test]
fn the_dead_letter_queue_gets_exactly_the_messages_that_failed_k_times() {
    // Every delivery fails (an errors fault of share 1 for the whole run): each message is
    // delivered exactly K = 4 times, then dead-lettered.
    let mut v = pipeline(
        200.0,
        "10s",
        json!({"max_deliveries": 4, "retry_backoff": "5ms"}),
        4,
        json!({"constant": "1ms"}),
    );
    v["faults"] = json!([{"target": "worker", "errors": {"share": 1.0}, "at": "0s"}]);
    let r = run(v, 3);
    let n = q(&r, "enqueued");
    let dead = q(&r, "dead_lettered");
    assert!(n > 1500.0, "{n}");
    assert!(n - dead <= 2.0, "{n} enqueued, {dead} dead-lettered");
    assert_eq!(q(&r, "acked"), 0.0);
    assert!(q(&r, "deliveries") >= 4.0 * dead);
    assert!(q(&r, "deliveries") - 4.0 * dead <= 3.0 * (n - dead));
    assert_eq!(q(&r, "duplicates"), 0.0);

    // Half the deliveries fail at random: a message is dead-lettered when its K = 3
    // deliveries all fail, with probability 1/8. Binomial tolerance of 4 standard
    // deviations.
    let mut v = pipeline(
        500.0,
        "20s",
        json!({"max_deliveries": 3}),
        4,
        json!({"constant": "1ms"}),
    );
    v["faults"] = json!([{"target": "worker", "errors": {"share": 0.5}, "at": "0s"}]);
    let r = run(v, 5);
    let n = q(&r, "enqueued");
    let dead = q(&r, "dead_lettered");
    let acked = q(&r, "acked");
    assert!(n - dead - acked <= 5.0);
    let expected = n / 8.0;
    let sd = (n * 0.125 * 0.875).sqrt();
    assert!(
        (dead - expected).abs() <= 4.0 * sd,
        "{dead} dead-lettered of {n}, expected {expected} ± {}",
        4.0 * sd
    );
    // Deliveries: 1 + 1/2 + 1/4 per message on average.
    let per = q(&r, "deliveries") / n;
    assert!((per - 1.75).abs() < 0.03, "{per} deliveries per message");
}

#[test]
fn a_full_queue_refuses_or_drops_the_oldest() {
    // One slow consumer (100 ms) and 100 messages/s: the queue fills to max_depth 10.
    let v = pipeline(
        100.0,
        "10s",
        json!({"max_depth": 10}),
        1,
        json!({"constant": "100ms"}),
    );
    let r = run(v, 1);
    assert_eq!(q(&r, "depth_max"), 10.0);
    assert!(q(&r, "refused") > 500.0);
    assert_eq!(q(&r, "dropped"), 0.0);
    assert_eq!(
        r.workloads["w"].errors["queue_full"] as f64,
        q(&r, "refused")
    );
    let v = pipeline(
        100.0,
        "10s",
        json!({"max_depth": 10, "when_full": "drop_oldest"}),
        1,
        json!({"constant": "100ms"}),
    );
    let r = run(v, 1);
    assert_eq!(q(&r, "refused"), 0.0);
    assert!(q(&r, "dropped") > 500.0);
    assert_eq!(r.workloads["w"].failed, 0);
    // A dropped message waited at most the time to deliver the 10 before it... and those
    // acked waited at most 11 service times.
    assert!(
        q(&r, "oldest_age_max_ms") <= 1200.0,
        "{}",
        q(&r, "oldest_age_max_ms")
    );
}

#[test]
fn the_enqueue_time_is_what_the_producer_waits() {
    let v = pipeline(
        100.0,
        "10s",
        json!({"enqueue_time": {"constant": "2ms"}}),
        1,
        json!({"constant": "5ms"}),
    );
    let r = run(v, 1);
    let w = &r.workloads["w"];
    assert!(
        (w.latency.mean_ms - 2.0).abs() < 1e-6,
        "{}",
        w.latency.mean_ms
    );
    // The delay runs from enqueue to ack: at least the service time.
    assert!(q(&r, "delay_mean_ms") >= 5.0);
}

#[test]
fn bad_queues_are_refused_with_the_field_path() {
    let base = || pipeline(10.0, "1s", json!({}), 1, json!({"constant": "1ms"}));
    let mut v = base();
    v["components"]["q"]["consumers"] = json!("api2");
    check_refuses(&v, "components.q.consumers", "no component named");
    let mut v = base();
    v["components"]["q"]["consumers"] = json!("q");
    check_refuses(&v, "components.q.consumers", "its own messages");
    let mut v = base();
    v["components"]["db"] = json!({"kind": "load_balancer", "backends": "worker"});
    v["components"]["q"]["consumers"] = json!("db");
    check_refuses(&v, "components.q.consumers", "must name a service");
    let mut v = base();
    v["components"]["q"]["visibility_timeout"] = json!("0s");
    check_refuses(&v, "components.q.visibility_timeout", "longer than zero");
    let mut v = base();
    v["components"]["q"]["max_deliveries"] = json!(0);
    check_refuses(&v, "components.q.max_deliveries", "at least 1");
    let mut v = base();
    v["components"]["q"]["max_depth"] = json!(0);
    check_refuses(&v, "components.q.max_depth", "at least 1");
    let mut v = base();
    v["components"]["q"]["when_full"] = json!("drop_oldest");
    check_refuses(&v, "components.q.when_full", "max_depth");
    let mut v = base();
    v["components"]["q"]["when_full"] = json!("drop_newest");
    v["components"]["q"]["max_depth"] = json!(3);
    check_refuses(&v, "components.q.when_full", "unknown name");
    let mut v = base();
    v["components"]["q"]["replicas"] = json!(2);
    check_refuses(&v, "components.q.replicas", "one instance");
    let mut v = base();
    v["components"]["q"]["in_flight_per_consumer"] = json!(0);
    check_refuses(&v, "components.q.in_flight_per_consumer", "at least 1");
    let mut v = base();
    v["components"]["q"]["dead_letter"] = json!("worker");
    check_refuses(&v, "components.q.dead_letter", "must name a queue");
    let mut v = base();
    v["components"]["q"]["dead_letter"] = json!("q");
    check_refuses(&v, "components.q.dead_letter", "its own dead-letter queue");
    let mut v = base();
    v["components"]["q"]["dead_letter"] = json!("dlqq");
    check_refuses(&v, "components.q.dead_letter", "no component named");
    let mut v = base();
    v["components"]["q"]["order"] = json!("lifo");
    check_refuses(&v, "components.q.order", "unknown name");
    let mut v = base();
    v["components"]["q"]["priorities"] = json!({"default": 1});
    check_refuses(
        &v,
        "components.q.priorities",
        "only with \"order\": \"priority\"",
    );
    let mut v = base();
    v["components"]["q"]["order"] = json!("priority");
    v["components"]["q"]["priorities"] = json!({"urgent": 0});
    check_refuses(&v, "components.q.priorities.urgent", "no workload sends");
    let mut v = base();
    v["components"]["q"]["order"] = json!("priority");
    v["components"]["q"]["priorities"] = json!({"default": 256});
    check_refuses(&v, "components.q.priorities", "");
}

#[test]
fn guarded_calls_to_and_from_a_queue() {
    // A producer's call to the queue with a 1 ms timeout against a 2 ms enqueue time: every
    // producer call fails with timeout at 1 ms, yet each message is enqueued (the callee's
    // work goes on) and acked by the consumer.
    let mut v = pipeline(
        100.0,
        "10s",
        json!({"enqueue_time": {"constant": "2ms"}}),
        1,
        json!({"constant": "1ms"}),
    );
    v["components"]["api"]["calls_to"] = json!({"q": {"timeout": "1ms"}});
    let r = run(v, 1);
    let w = &r.workloads["w"];
    assert!(w.arrived > 900, "{w:?}");
    assert_eq!(w.completed, 0);
    assert_eq!(w.errors["timeout"], w.failed);
    assert!(w.latency.max_ms <= 1.0 + 1e-6, "{:?}", w.latency);
    let e = &r.edges["api->q"];
    assert_eq!(e.timeouts, w.failed);
    let n = q(&r, "enqueued");
    assert!(n + 3.0 >= w.arrived as f64 && n <= w.arrived as f64, "{n}");
    assert!(n - q(&r, "acked") <= 2.0);

    // The queue's deliveries guarded by a 50 ms timeout against a 100 ms consumer: each
    // delivery fails at 50 ms (a failed delivery), the message is delivered again, and
    // after max_deliveries 2 it is dead-lettered. The consumer's late Ok replies are
    // absorbed by the guard (late replies of the edge), not duplicates of the queue.
    let mut v = pipeline(
        100.0,
        "10s",
        json!({"max_deliveries": 2}),
        1000,
        json!({"constant": "100ms"}),
    );
    v["components"]["q"]["calls_to"] = json!({"worker": {"timeout": "50ms"}});
    let r = run(v, 1);
    let n = q(&r, "enqueued");
    let dead = q(&r, "dead_lettered");
    assert!(
        n > 900.0 && n - dead <= 15.0,
        "{n} enqueued, {dead} dead-lettered"
    );
    assert_eq!(q(&r, "acked"), 0.0);
    assert_eq!(q(&r, "duplicates"), 0.0);
    let e = &r.edges["q->worker"];
    assert_eq!(e.calls as f64, q(&r, "deliveries"));
    assert!(e.timeouts as f64 >= 2.0 * dead, "{e:?}");
    assert_eq!(e.succeeded, 0);
    // Deliveries time out at 200/s; those that timed out in the last 50 ms (about 10)
    // had not replied late by the end.
    assert!(e.late_replies + 25 >= e.timeouts, "{e:?}");
}

#[test]
fn a_queued_message_is_never_given_up() {
    // A consumer that drops calls whose caller gave up ("deadlines": "drop") behind a
    // queue: nobody waits for a message's answer but the queue, which never gives up, so
    // every message is processed even though the backlog makes them wait long.
    // The queue hands out 20 messages at once to the one worker, so they wait in the
    // worker's own queue and are checked at dequeue.
    let mut v = pipeline(
        100.0,
        "10s",
        json!({"in_flight_per_consumer": 20}),
        1,
        json!({"constant": "9ms"}),
    );
    v["components"]["worker"]["deadlines"] = json!("drop");
    v["workloads"]["w"]["timeout"] = json!("1ms");
    let r = run(v, 2);
    assert_eq!(r.components["worker"].total["deadline_exceeded"], 0.0);
    let n = q(&r, "enqueued");
    assert!(n > 900.0, "{n}");
    assert!(n - q(&r, "acked") <= 5.0, "{n} {}", q(&r, "acked"));
    assert!(q(&r, "delay_mean_ms") > 9.0);
    assert_eq!(q(&r, "dead_lettered"), 0.0);
}

#[test]
fn four_consumers_with_exponential_service_are_mmc_and_the_estimate_says_so() {
    // Q3 (Kleinrock Vol. 1 §3.5), c = 4, λ = 3, μ = 1 per ms: the queue holds what waits
    // for one of the 4 delivery slots (the consumer's workers). W = 1.509434 ms,
    // Lq = 1.52830, T p99 = 6.00631 ms. Class S as Q1.
    let mut v = pipeline(
        3000.0,
        "200s",
        json!({}),
        4,
        json!({"exponential": {"mean": "1ms"}}),
    );
    v["warmup"] = json!("10s");
    let m = model(v);
    let est = scalesim::analysis::estimate(&m);
    let (_, mine) = est.metrics.iter().find(|(n, _)| n == "q").unwrap();
    let get = |metric: &str| mine.iter().find(|e| e.metric == metric).unwrap();
    assert!(
        (get("delay_mean_ms").value - 1.509434).abs() < 1e-5,
        "{mine:?}"
    );
    assert!((get("depth_mean").value - 1.52830).abs() < 1e-4, "{mine:?}");
    assert!(get("delay_mean_ms").method.contains("M/M/4"), "{mine:?}");
    let runs = replicate(&m, 20_261_129, 8).unwrap();
    let stat = |f: &dyn Fn(&RunResult) -> f64| {
        let x: Vec<f64> = runs.iter().map(f).collect();
        let e = scalesim::stats::Estimate::of(&x);
        (e.mean, e.se())
    };
    let p99 = |r: &RunResult| r.components["q"].detail.histogram("delay").unwrap().p99_ms;
    let checks: [Check; 4] = [
        ("W", &|r| q(r, "delay_mean_ms"), 1.509434, 0.005, 0.02),
        ("Lq", &|r| q(r, "depth_mean"), 1.52830, 0.005, 0.02),
        ("busy", &|r| q(r, "in_flight_mean"), 3.0, 0.005, 0.02),
        ("T p99", &p99, 6.00631, 0.011, 0.04),
    ];
    let mut failures = Vec::new();
    for (what, f, reference, b, g) in checks {
        let (m, s) = stat(f);
        let ok = (m - reference).abs() <= 3.0 * s + b * reference;
        let precise = 3.0 * s <= g * reference;
        println!("{what}: {m:.4} ± {:.4} (3s) against {reference}", 3.0 * s);
        if !(ok && precise) {
            failures.push(format!("{what}: {m} ± {} against {reference}", 3.0 * s));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn the_dead_letter_target_receives_exactly_the_dead_lettered_messages() {
    // Half the deliveries fail; after 3 a message goes to `dlq`, whose consumer `audit`
    // acknowledges everything. Every message the first queue dead-letters arrives at the
    // dead-letter queue (those handed over in the last instant excepted), and only those.
    let mut v = pipeline(
        500.0,
        "20s",
        json!({"max_deliveries": 3, "dead_letter": "dlq"}),
        4,
        json!({"constant": "1ms"}),
    );
    v["components"]["dlq"] = json!({"kind": "queue", "consumers": "audit"});
    v["components"]["audit"] =
        json!({"kind": "service", "workers": 2, "service_time": {"constant": "1ms"}});
    v["faults"] = json!([{"target": "worker", "errors": {"share": 0.5}, "at": "0s"}]);
    let r = run(v, 5);
    let dead = q(&r, "dead_lettered");
    let dlq = &r.components["dlq"].total;
    assert!(dead > 800.0, "{dead}");
    assert!(
        dlq["enqueued"] <= dead && dlq["enqueued"] >= dead - 1.0,
        "{dead} {dlq:?}"
    );
    assert!(dlq["acked"] >= dlq["enqueued"] - 2.0, "{dlq:?}");
    // Handing a message over is not a duplicate delivery.
    assert_eq!(q(&r, "duplicates"), 0.0);

    // Every delivery fails: every message enqueued (but the last few) reaches the
    // dead-letter queue after exactly 3 deliveries.
    let mut v = pipeline(
        200.0,
        "10s",
        json!({"max_deliveries": 3, "dead_letter": "dlq"}),
        4,
        json!({"constant": "1ms"}),
    );
    v["components"]["dlq"] = json!({"kind": "queue", "consumers": "audit"});
    v["components"]["audit"] =
        json!({"kind": "service", "workers": 2, "service_time": {"constant": "1ms"}});
    v["faults"] = json!([{"target": "worker", "errors": {"share": 1.0}, "at": "0s"}]);
    let r = run(v, 3);
    let n = q(&r, "enqueued");
    let dead = q(&r, "dead_lettered");
    let dlq = &r.components["dlq"].total;
    assert!(n - dead <= 2.0, "{n} {dead}");
    assert!(
        dlq["enqueued"] <= dead && dlq["enqueued"] >= dead - 1.0,
        "{dead} {dlq:?}"
    );
    assert_eq!(q(&r, "acked"), 0.0);
    assert!(q(&r, "deliveries") >= 3.0 * dead && q(&r, "deliveries") <= 3.0 * n);
}

#[test]
fn priority_order_delivers_the_urgent_class_first() {
    // Two classes, half each, one consumer 90% busy: FIFO gives both the same delay;
    // priority order (high 0, low 1) gives high a delay near M/G/1 non-preemptive priority
    // (high's wait ρ·S/(1 − ρ_high) = 0.9/0.55 = 1.64 ms against 9 ms for FIFO) and low
    // more.
    let mk = |order: Value| {
        let mut v = pipeline(
            900.0,
            "100s",
            order,
            1,
            json!({"exponential": {"mean": "1ms"}}),
        );
        v["workloads"]["w"]["classes"] = json!({"high": 0.5, "low": 0.5});
        v["warmup"] = json!("5s");
        v
    };
    let fifo = run(mk(json!({})), 7);
    let prio = run(
        mk(json!({"order": "priority", "priorities": {"high": 0, "low": 1}})),
        7,
    );
    // FIFO reports no levels.
    assert!(
        fifo.components["q"]
            .detail
            .distribution("delay_mean_ms_by_level")
            .is_empty()
    );
    // The same work in both orders: about the same mean delay (work conserving).
    let (f, p) = (q(&fifo, "delay_mean_ms"), q(&prio, "delay_mean_ms"));
    assert!((f - p).abs() < 0.2 * f, "{f} {p}");
    let levels = prio.components["q"]
        .detail
        .distribution("delay_mean_ms_by_level")
        .to_vec();
    assert_eq!(levels.len(), 2, "{levels:?}");
    let (high, low) = (levels[0], levels[1]);
    // M/M/1 non-preemptive priority (Cobham): W_high = 1 + 0.9/0.55 = 2.64 ms, W_low =
    // 1 + 0.9/(0.55 x 0.1) = 17.4 ms; FIFO 10 ms.
    assert!(high < f / 2.5, "high {high}, fifo {f}");
    assert!(low > f * 1.3, "low {low}, fifo {f}");
    assert!((high - 2.64).abs() < 0.5, "{high}");
}
