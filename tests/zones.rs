//! Zones and the network: a message between zones takes exactly the latency of its pair of
//! zones (within a zone, across zones, across regions, over a link), a zoneless balancer
//! or client crosses nothing, a balancer that prefers the caller's zone keeps calls there
//! and fails over to other zones when none is live there, the network draws from its own
//! stream, and bad network fields are refused at their path with exit status 2.

use crate::support::{check_refuses as refused, scalesim};
use scalesim::model::{Format, Model, parse_model_str};
use scalesim::results::{RunResult, collect, run_once};
use scalesim::topology::simulation;
use serde_json::{Value, json};
use std::path::Path;

fn model(v: &Value) -> Model {
    parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"))
}

fn run(v: &Value) -> RunResult {
    let r = run_once(&model(v), 1).unwrap();
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

/// Zones a and b in region eu, c in region us; constant latencies: 0.25 ms within a zone,
/// 1 ms across zones, 10 ms across regions.
fn network() -> Value {
    json!({
        "zones": ["a", "b", "c"],
        "regions": {"eu": ["a", "b"], "us": ["c"]},
        "latency": {"zone": {"constant": "250us"},
                    "cross_zone": {"constant": "1ms"},
                    "cross_region": {"constant": "10ms"}}
    })
}

/// One request every 10 ms (never two at once) from clients in `client` (or nowhere) to
/// `target`.
fn spaced(client: Option<&str>, target: &str, components: Value) -> Value {
    let mut w = json!({"arrivals": {"constant": {"rate": 100}}, "target": target});
    if let Some(z) = client {
        w["zone"] = json!(z);
    }
    json!({"duration": "2s", "network": network(), "workloads": {"u": w},
           "components": components})
}

/// The exact latency of every answered request, in ms: the mean, checked to be the
/// maximum too (every request took the same time).
fn exact_latency_ms(r: &RunResult) -> f64 {
    let l = &r.workloads["u"].latency;
    assert!(l.count > 150, "{l:?}");
    assert!((l.mean_ms - l.max_ms).abs() < 1e-9, "{l:?}");
    assert_eq!(r.workloads["u"].failed, 0);
    l.mean_ms
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_database_write_crosses_the_network_to_its_copies_and_their_acks_cross_back() {
    // Copies in a (the primary, beside the client), b (1 ms away) and c (10 ms away); every
    // request a write; 2 ms of work and a 1 ms replication lag.
    let write_ms = |replication: Value| {
        let db = json!({"db": {"kind": "database", "zones": ["a", "b", "c"], "replicas": 2,
                               "service_time": {"constant": "2ms"}, "replication": replication}});
        let mut m = spaced(Some("a"), "db", db);
        m["workloads"]["u"]["classes"] = json!({"write": 1.0});
        m["workloads"]["u"]["keys"] = json!({"zipf": {"keys": 100, "s": 0.9}});
        exact_latency_ms(&run(&m))
    };
    let lag = json!({"constant": "1ms"});
    // 0.25 ms to the primary and back, 2 ms of work; then, waiting for every copy, the
    // farthest one's way there, its lag and its acknowledgement's way back: 10 + 1 + 10.
    assert!(close(write_ms(json!({"sync": {"lag": lag}})), 23.5));
    // Waiting for one: the nearest, 1 + 1 + 1.
    assert!(close(
        write_ms(json!({"sync": {"lag": lag, "acks": 1}})),
        5.5
    ));
    // Asynchronous: the write answers once committed.
    assert!(close(write_ms(json!({"async": {"lag": lag}})), 2.5));
}

#[test]
fn each_crossing_adds_exactly_its_constant_latency_to_the_call_and_to_its_reply() {
    let app = |zone: &str| json!({"app": {"kind": "service", "zones": [zone], "service_time": {"constant": "2ms"}}});
    // The client's call and its reply: within a zone, across zones, across regions.
    for (client, zone, want) in [
        (None, "a", 2.0),
        (Some("a"), "a", 2.5),
        (Some("b"), "a", 4.0),
        (Some("a"), "c", 22.0),
    ] {
        let r = run(&spaced(client, "app", app(zone)));
        let got = exact_latency_ms(&r);
        assert!(
            close(got, want),
            "{client:?} -> {zone}: {got} ms, want {want}"
        );
    }
    // A link overrides the cross-region latency, both ways.
    let mut m = spaced(Some("c"), "app", app("a"));
    m["network"]["links"] = json!([{"from": "a", "to": "c", "latency": {"constant": "5ms"}}]);
    assert!(close(exact_latency_ms(&run(&m)), 12.0));
    // A chain: web in a (1 ms, then calls db) and db in b (1 ms): 0.25 + 1 + 1 + 1 + 1 +
    // 0.25 ms; a zoneless balancer between web and db is beside web and adds nothing.
    let web = json!({"kind": "service", "zones": ["a"], "workers": 4,
                     "handler": [{"work": {"constant": "1ms"}}, {"call": "db"}]});
    let db = json!({"kind": "service", "zones": ["b"], "service_time": {"constant": "1ms"}});
    let direct = spaced(Some("a"), "web", json!({"web": web, "db": db}));
    assert!(close(exact_latency_ms(&run(&direct)), 4.5));
    let mut web_lb = web.clone();
    web_lb["handler"][1] = json!({"call": "lb"});
    let via_lb = spaced(
        Some("a"),
        "web",
        json!({"web": web_lb, "lb": {"kind": "load_balancer", "backends": "db"}, "db": db}),
    );
    assert!(close(exact_latency_ms(&run(&via_lb)), 4.5));
    // A tail call (the balancer passes the client's call on): the reply goes straight back
    // from the backend to the client, b to a.
    let tail = spaced(
        Some("a"),
        "lb",
        json!({"lb": {"kind": "load_balancer", "backends": "db"}, "db": db}),
    );
    assert!(close(exact_latency_ms(&run(&tail)), 3.0));
}

/// Clients in `client` behind a zoneless balancer over four `api` instances spread over
/// zones a and b (api[0], api[2] in a; api[1], api[3] in b).
fn zoned_balancer(prefer_zone: bool, policy: &str) -> Value {
    let mut m = spaced(
        Some("a"),
        "lb",
        json!({
            "lb": {"kind": "load_balancer", "backends": "api", "policy": policy,
                   "prefer_zone": prefer_zone},
            "api": {"kind": "service", "replicas": 4, "zones": ["a", "b"],
                    "service_time": {"constant": "2ms"}}
        }),
    );
    m["workloads"]["u"]["keys"] = json!({"uniform": {"keys": 100}});
    m
}

fn arrived(r: &RunResult, component: &str) -> Vec<f64> {
    r.components[component]
        .instances
        .iter()
        .map(|i| i.metrics["arrived"])
        .collect()
}

#[test]
fn a_balancer_preferring_the_callers_zone_keeps_its_calls_there() {
    for policy in ["round_robin", "least_connections", "random", "hash_key"] {
        let r = run(&zoned_balancer(true, policy));
        let a = arrived(&r, "api");
        assert_eq!((a[1], a[3]), (0.0, 0.0), "{policy}: {a:?}");
        assert!(a[0] > 50.0 && a[2] > 50.0, "{policy}: {a:?}");
        assert!(close(exact_latency_ms(&r), 2.5), "{policy}");
    }
    // Without the preference, round robin sends every other call across: half the
    // requests take 2.5 ms, half 4 ms.
    let r = run(&zoned_balancer(false, "round_robin"));
    let a = arrived(&r, "api");
    assert!(a.iter().all(|n| *n > 40.0), "{a:?}");
    let mean = r.workloads["u"].latency.mean_ms;
    assert!((mean - 3.25).abs() < 0.01, "{mean}");
}

#[test]
fn with_no_live_backend_in_its_zone_a_balancer_fails_over_to_the_others() {
    let m = model(&zoned_balancer(true, "round_robin"));
    let api = m.components[m.component_index("api").unwrap()].first_instance;
    let mut sim = simulation(&m, 1);
    // Zone a's backends go down at 1 s, come back at 1.5 s.
    sim.advance_to(scalesim::time::SimTime(1_000_000_000));
    sim.set_up(api, false);
    sim.set_up(api + 2, false);
    sim.advance_to(scalesim::time::SimTime(1_500_000_000));
    sim.set_up(api, true);
    sim.set_up(api + 2, true);
    sim.run().unwrap();
    let r = collect(&m, &sim, 1);
    let a = arrived(&r, "api");
    // Zone b took the half second (50 requests), none failed; zone a the rest.
    assert_eq!(a[1] + a[3], 50.0, "{a:?}");
    assert!(a[0] + a[2] > 140.0, "{a:?}");
    assert_eq!(r.workloads["u"].failed, 0);
    // Those 50 took 4 ms (two crossings of 1 ms), the others 2.5 ms.
    let l = &r.workloads["u"].latency;
    assert!(close(l.max_ms, 4.0), "{l:?}");
    let n = l.count as f64;
    let want = (50.0 * 4.0 + (n - 50.0) * 2.5) / n;
    assert!((l.mean_ms - want).abs() < 1e-9, "{} {want}", l.mean_ms);
}

#[test]
fn the_network_draws_from_its_own_stream_and_repeats() {
    // A fixed number of requests, never queued: the service's exponential draws are the
    // same with or without a network, so every request is exactly 10 ms slower.
    let base = |client: Option<&str>| {
        let mut m = spaced(
            client,
            "app",
            json!({"app": {"kind": "service", "zones": ["b"],
                           "service_time": {"exponential": {"mean": "1ms"}}}}),
        );
        m["workloads"]["u"]["requests"] = json!(150);
        m["network"]["latency"]["cross_zone"] = json!({"constant": "5ms"});
        m
    };
    let near = run(&base(None)).workloads["u"].latency.mean_ms;
    let far = run(&base(Some("a"))).workloads["u"].latency.mean_ms;
    assert!((far - near - 10.0).abs() < 1e-9, "{near} {far}");
    // Random latencies: the same seed gives the same bytes; another seed does not.
    let mut m = zoned_balancer(false, "random");
    m["network"]["latency"]["cross_zone"] = json!({"exponential": {"mean": "1ms"}});
    let once = serde_json::to_string(&run(&m)).unwrap();
    let again = serde_json::to_string(&run(&m)).unwrap();
    assert_eq!(once, again);
    let other = serde_json::to_string(&run_once(&model(&m), 2).unwrap()).unwrap();
    assert_ne!(once, other);
    // A network whose latencies are all zero changes nothing, to the event.
    let plain = json!({"duration": "2s",
        "workloads": {"u": {"arrivals": {"poisson": {"rate": 300}}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "backends": "api", "policy": "least_connections"},
            "api": {"kind": "service", "replicas": 3,
                    "service_time": {"exponential": {"mean": "5ms"}}}}});
    let mut zero = plain.clone();
    zero["network"] = json!({"zones": ["a", "b"],
        "latency": {"zone": {"constant": "0s"}, "cross_zone": {"constant": "0s"}}});
    zero["components"]["api"]["zones"] = json!(["a", "b"]);
    zero["workloads"]["u"]["zone"] = json!("a");
    let (p, z) = (run(&plain), run(&zero));
    assert_eq!(p.events, z.events);
    assert_eq!(
        serde_json::to_string(&p.workloads).unwrap(),
        serde_json::to_string(&z.workloads).unwrap()
    );
}

#[test]
fn bad_network_fields_are_refused_at_their_path() {
    let good = zoned_balancer(true, "round_robin");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    refused(
        &edit(&|m| m["components"]["api"]["zones"] = json!(["a", "d"])),
        "components.api.zones[1]",
        "no zone named \"d\"",
    );
    refused(
        &edit(&|m| m["workloads"]["u"]["zone"] = json!("bb")),
        "workloads.u.zone",
        "did you mean \"b\"",
    );
    refused(
        &edit(&|m| m["network"]["regions"]["us"] = json!(["c", "x"])),
        "network.regions.us[1]",
        "no zone named \"x\"",
    );
    refused(
        &edit(&|m| m["network"]["regions"] = json!({"eu": ["a", "b"]})),
        "network.regions",
        "\"c\" is in none",
    );
    refused(
        &edit(&|m| {
            m["network"]["links"] =
                json!([{"from": "a", "to": "q", "latency": {"constant": "1ms"}}])
        }),
        "network.links[0].to",
        "no zone named \"q\"",
    );
    refused(
        &edit(&|m| {
            m["network"]["links"] =
                json!([{"from": "a", "to": "a", "latency": {"constant": "1ms"}}])
        }),
        "network.links[0].to",
        "two different zones",
    );
    refused(
        &edit(&|m| {
            m["network"]["latency"]
                .as_object_mut()
                .unwrap()
                .remove("cross_zone");
        }),
        "network.latency.cross_zone",
        "zones \"a\" and \"b\"",
    );
    refused(
        &edit(&|m| {
            m["network"]["latency"]
                .as_object_mut()
                .unwrap()
                .remove("zone");
        }),
        "network.latency.zone",
        "missing",
    );
    // Clients in c call instances in a and b: another region.
    refused(
        &edit(&|m| {
            m["workloads"]["u"]["zone"] = json!("c");
            m["network"]["latency"]
                .as_object_mut()
                .unwrap()
                .remove("cross_region");
        }),
        "network.latency.cross_region",
        "region \"us\"",
    );
    refused(
        &edit(&|m| m["network"]["latency"]["zone"] = json!({"constant": "-1ms"})),
        "network.latency.zone",
        "",
    );
    refused(
        &edit(&|m| m["network"]["zones"] = json!(["a", "b", "c", "a"])),
        "network.zones[3]",
        "listed twice",
    );
    refused(
        &edit(&|m| {
            m.as_object_mut().unwrap().remove("network");
        }),
        "components.api.zones",
        "\"network\" block",
    );
    refused(
        &edit(&|m| {
            m.as_object_mut().unwrap().remove("network");
            m["components"]["api"]
                .as_object_mut()
                .unwrap()
                .remove("zones");
            m["workloads"]["u"].as_object_mut().unwrap().remove("zone");
        }),
        "components.lb.prefer_zone",
        "zones",
    );
    // A model whose zones never meet needs no latency for them: clients and api in a only.
    let mut m = edit(&|m| {
        m["components"]["api"]["zones"] = json!(["a"]);
        m["network"]["latency"] = json!({"zone": {"constant": "1ms"}});
    });
    assert!(close(exact_latency_ms(&run(&m)), 4.0));
    m["network"]["zones"] = json!(["a"]);
    m["network"].as_object_mut().unwrap().remove("regions");
    assert!(close(exact_latency_ms(&run(&m)), 4.0));
}

/// The mean latency (ms) over the workloads of models/multi-zone.json, with `sets`.
fn multi_zone(sets: &[&str]) -> (f64, f64) {
    let mut cmd = scalesim();
    cmd.args(["run", "models/multi-zone.json", "--format", "json"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let v = crate::support::json_ok(&mut cmd);
    let run = &v["runs"][0];
    let (mut sum, mut n, mut util) = (0.0, 0.0, 0.0);
    for w in run["workloads"].as_object().unwrap().values() {
        let count = w["latency"]["count"].as_f64().unwrap();
        sum += w["latency"]["mean_ms"].as_f64().unwrap() * count;
        n += count;
        assert_eq!(w["failed"].as_u64(), Some(0));
    }
    util += run["components"]["api"]["total"]["utilization"]
        .as_f64()
        .unwrap();
    (sum / n, util)
}

#[test]
fn multi_zone_lesson_zone_local_balancing_saves_the_crossings() {
    let (local, local_util) = multi_zone(&[]);
    let (cross, cross_util) = multi_zone(&[
        "components.web_lb.prefer_zone=false",
        "components.api_lb.prefer_zone=false",
    ]);
    // Three calls per request, two in three across zones, 2 x (1 - 0.1) ms more each.
    let added = cross - local;
    assert!((added - 3.6).abs() < 0.4, "{local} -> {cross} ms");
    assert!(
        (local_util - cross_util).abs() < 0.02,
        "{local_util} {cross_util}"
    );
}
