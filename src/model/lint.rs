//! Warnings about valid models that are likely to surprise: things a run will show, but
//! that are cheaper to hear about before it.

use super::Model;
use crate::time::SimTime;

/// Warnings about `model`, each naming the component concerned.
pub fn lint(model: &Model) -> Vec<String> {
    let mut warnings = few_requests(model);
    warnings.extend(self_waits(model));
    warnings.extend(unsticky_sessions(model));
    warnings.extend(crate::faults::lint::warnings(model));
    warnings
}

/// A service keeping `sessions` in memory behind a balancer that does not send each
/// client back to the same instance (`hash_client`): most requests land where the
/// client's session is not, and it is started again there.
fn unsticky_sessions(model: &Model) -> Vec<String> {
    use super::spec::KindSpec;
    use crate::components::load_balancer::spec::PolicySpec;
    let components = &model.spec.components;
    let mut warnings = Vec::new();
    for (name, c) in components {
        let KindSpec::Service(s) = &c.kind else {
            continue;
        };
        if s.sessions.is_none() {
            continue;
        }
        for (lb_name, lb) in components {
            let KindSpec::LoadBalancer(lb) = &lb.kind else {
                continue;
            };
            let policy = lb.policy.unwrap_or(PolicySpec::RoundRobin);
            if policy != PolicySpec::HashClient && lb.backends.names().contains(&name.as_str()) {
                warnings.push(format!(
                    "components.{name}.sessions: the balancer \"{lb_name}\" in front of it is not sticky (policy \"{}\"), so a client's requests land on instances that do not hold its session and start a new one there; use \"policy\": \"hash_client\" on \"{lb_name}\", or keep sessions in a store",
                    serde_json::to_value(policy)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ));
            }
        }
    }
    warnings
}

/// Workloads expected to send less than one request in the measured part of the run
/// (validation refuses those that practically never send one).
fn few_requests(model: &Model) -> Vec<String> {
    let (from, to) = (SimTime(model.warmup.0), SimTime(model.duration.0));
    model
        .workloads
        .iter()
        .filter_map(|w| {
            let n = w.expected_requests(from, to);
            (n < 1.0).then(|| {
                format!(
                    "workloads.{}: expects only about {} request(s) in the measured part of the run (\"{}\" to \"{}\"), so its statistics will likely be empty; raise the rate or the duration",
                    w.name,
                    crate::error::num((n * 1000.0).round() / 1000.0),
                    crate::time::format_duration_nanos(from.0 as f64),
                    crate::time::format_duration_nanos(to.0 as f64)
                )
            })
        })
        .collect()
}

/// A component whose requests hold a worker while they wait on a call (a synchronous
/// service), and that waits on a call which can lead back to itself: each such request holds
/// a worker while needing another one, so once every worker waits this way nothing moves (a
/// deadlock, as in a real thread-per-request server). Validation rejects loops that can
/// never answer; this is the kind that answers only while workers are to spare.
fn self_waits(model: &Model) -> Vec<String> {
    let graph = &model.graph;
    let mut warnings = Vec::new();
    for (g, c) in model.components.iter().enumerate() {
        let Some(workers) = c.kind.workers_held_while_waiting() else {
            continue;
        };
        let mut called: Vec<usize> = graph.waits_on(g).collect();
        called.sort_unstable();
        called.dedup();
        if let Some(path) = graph.shortest_path(&called, g) {
            let names: Vec<&str> = std::iter::once(g)
                .chain(path)
                .map(|i| model.components[i].name.as_str())
                .collect();
            warnings.push(format!(
                "components.{}: a request holds one of its {workers} worker(s) per instance while it waits on a call that can come back to it ({}); once every worker waits this way nothing moves, a deadlock as in a real thread-per-request server. Give it more workers, make it asynchronous (\"async\": true), or break the loop",
                c.name,
                names.join(" -> ")
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(json: &str) -> Model {
        super::super::parse_model_str(
            json,
            super::super::Format::Json,
            std::path::Path::new("."),
            &[],
        )
        .expect("a valid model")
    }

    #[test]
    fn a_call_that_can_route_back_is_flagged_with_its_loop() {
        let m = model(
            r#"{"duration": "1s",
                "workloads": {"w": {"arrivals": {"poisson": {"rate": 10}}, "target": "a"}},
                "components": {
                  "a": {"kind": "service", "workers": 2, "service_time": {"constant": "1ms"},
                        "handler": [{"work": "service_time"}, {"call": "lb"}]},
                  "lb": {"kind": "load_balancer", "backends": "b"},
                  "b": {"kind": "service", "replicas": 2, "service_time": {"constant": "1ms"},
                        "handler": [{"work": "service_time"}, {"route": {"a": 0.5}}]}}}"#,
        );
        let w = lint(&m);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("components.a: "), "{}", w[0]);
        assert!(w[0].contains("(a -> lb -> b -> a)"), "{}", w[0]);
        assert!(w[0].contains("2 worker(s)"), "{}", w[0]);
    }

    #[test]
    fn asynchronous_callers_and_loops_of_routes_alone_are_not_flagged() {
        let m = model(
            r#"{"duration": "1s",
                "workloads": {"w": {"arrivals": {"poisson": {"rate": 10}}, "target": "a"}},
                "components": {
                  "a": {"kind": "service", "async": true, "service_time": {"constant": "1ms"},
                        "handler": [{"work": "service_time"}, {"call": "b"}]},
                  "b": {"kind": "service", "service_time": {"constant": "1ms"},
                        "handler": [{"work": "service_time"}, {"route": {"a": 0.5, "c": 0.2}}]},
                  "c": {"kind": "service", "service_time": {"constant": "1ms"},
                        "handler": [{"work": "service_time"}, {"route": {"b": 0.5}}]}}}"#,
        );
        assert!(lint(&m).is_empty(), "{:?}", lint(&m));
    }
}
