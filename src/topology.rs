//! From a validated model to what the engine runs: every component's instances (built by
//! its kind), one group per component, and the workloads as request sources. The engine
//! knows none of the model's types; this is where they meet.

use crate::client::{Workload, Workloads};
use crate::engine::{Component, Group, RunOptions, Simulation, Topology};
use crate::metrics::ClientStats;
use crate::model::Model;
use std::sync::Arc;

/// The instances, groups and request sources of `model`, for a run seeded `seed`.
pub fn build(model: &Model, seed: u64) -> Topology<Workloads> {
    let mut instances: Vec<Box<dyn Component>> = Vec::new();
    let mut groups = Vec::new();
    for def in &model.components {
        let ids: Vec<u32> = (0..def.replicas).map(|i| def.first_instance + i).collect();
        instances.extend(def.instantiate_all(seed));
        groups.push(Group::new(def.name.clone(), ids).with_picker(def.picker(seed)));
    }
    if model.workloads.iter().any(|w| w.rate_limit.is_some()) {
        // Where a workload's rate limiter sends the requests it refuses.
        groups.push(Group::refusing(
            "client rate limit".into(),
            crate::metrics::ErrorCause::RateLimited,
        ));
    }
    let classes = model.classes.len();
    let window = model.series_window.0.max(1);
    let windows = (model.duration.0.div_ceil(window)).max(1) as usize;
    let workloads = model
        .workloads
        .iter()
        .map(|w| Workload::new(Arc::clone(w), seed))
        .collect();
    let stats = model
        .workloads
        .iter()
        .map(|_| ClientStats::new(classes, windows, window))
        .collect();
    Topology {
        instances,
        groups,
        clients: Workloads(workloads),
        stats,
        network: model.network.as_ref().map(|n| {
            crate::network::Latencies::new(Arc::clone(n), seed)
                .with_partitions(crate::faults::partitions(&model.faults))
        }),
    }
}

/// How long `model` runs, and when it stops early.
pub fn options(model: &Model) -> RunOptions {
    RunOptions {
        duration: model.duration,
        warmup: model.warmup,
        max_in_flight: model.max_in_flight,
    }
}

/// A simulation of `model` seeded `seed`, ready to run.
pub fn simulation(model: &Model, seed: u64) -> Simulation<Workloads> {
    let sim = Simulation::new(build(model, seed), options(model))
        .with_call_policies(&model.calls, seed)
        .with_client_retries(crate::client::client_retries(&model.workloads));
    if model.faults.is_empty() {
        return sim;
    }
    let faults = crate::faults::Controller::new(Arc::clone(&model.faults), seed);
    sim.with_faults(Box::new(faults))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CLIENT, InstanceId};
    use crate::metrics::ErrorCause;
    use crate::model::{Format, parse_model_str};
    use crate::time::SimTime;

    const MS: u64 = 1_000_000;

    fn model(text: &str) -> Model {
        parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap()
    }

    fn instance(model: &Model, name: &str) -> InstanceId {
        let c = model.components.iter().find(|c| c.name == name).unwrap();
        c.first_instance
    }

    /// A metric of every instance of the finished run `sim`, in instance order.
    fn per_instance(sim: &Simulation<Workloads>, metric: &str) -> Vec<f64> {
        let reports = sim.instance_reports();
        let value = |r: &crate::metrics::InstanceReport| {
            let mut numbers = crate::metrics::declare::numbers(r.decls);
            numbers
                .position(|d| d.name == metric)
                .map_or(-1.0, |i| r.numbers[i])
        };
        reports.iter().map(value).collect()
    }

    /// Failures of workload 0 (class 0) by cause.
    fn failures(sim: &Simulation<Workloads>, cause: ErrorCause) -> u64 {
        sim.context().stats[0].failed[0][cause as usize]
    }

    #[test]
    fn the_calls_an_instance_holds_are_found_midway() {
        // One request every ms, each taking 10 ms of the only worker, behind a balancer.
        let m = model(
            r#"{"duration": "1s",
                "workloads": {"u": {"arrivals": {"constant": {"rate": 1000}}, "target": "lb"}},
                "components": {
                  "lb": {"kind": "load_balancer", "backends": "app"},
                  "app": {"kind": "service", "workers": 1,
                          "service_time": {"constant": "10ms"}}}}"#,
        );
        let (lb, app) = (instance(&m, "lb"), instance(&m, "app"));
        let mut sim = simulation(&m, 1);
        sim.advance_to(SimTime(50 * MS + MS / 2));
        // At 50.5 ms: 50 requests arrived (1, 2, ... 50 ms), 4 done (at 11, 21, 31, 41
        // ms), the one that arrived at 5 ms is served since 41 ms, 45 wait.
        let ctx = sim.context();
        let created = |c: crate::engine::CallId| ctx.requests[ctx.call(c).request as usize].created;
        let held = ctx.calls_at(app);
        assert_eq!(held.len(), 46);
        let serving: Vec<_> = held.iter().filter(|c| ctx.call(**c).step > 0).collect();
        assert_eq!(serving.len(), 1);
        assert_eq!(created(*serving[0]), SimTime(5 * MS));
        let mut waiting: Vec<_> = held
            .iter()
            .filter(|c| ctx.call(**c).step == 0)
            .map(|c| created(*c).0 / MS)
            .collect();
        waiting.sort();
        assert_eq!(waiting, (6..=50).collect::<Vec<_>>());
        // The balancer holds the client's calls while app works on them.
        let at_lb = ctx.calls_at(lb);
        assert_eq!(at_lb.len(), 46);
        assert!(at_lb.iter().all(|c| ctx.call(*c).parent == CLIENT));
        assert!(held.iter().all(|c| ctx.call(*c).parent == lb));
        // The run goes on from there as if never stopped.
        sim.run().unwrap();
        let whole = crate::results::run_once(&m, 1).unwrap();
        assert_eq!(sim.events(), whole.events);
    }

    fn balanced(policy: &str) -> Model {
        model(&format!(
            r#"{{"duration": "2s",
                "workloads": {{"u": {{"arrivals": {{"poisson": {{"rate": 300}}}}, "target": "lb",
                                      "keys": {{"uniform": {{"keys": 100}}}}}}}},
                "components": {{
                  "lb": {{"kind": "load_balancer", "policy": "{policy}", "backends": "app"}},
                  "app": {{"kind": "service", "workers": 2, "replicas": 3,
                           "service_time": {{"exponential": {{"mean": "1ms"}}}}}}}}}}"#
        ))
    }

    #[test]
    fn a_balancer_sends_nothing_to_an_instance_that_is_down() {
        for policy in [
            "round_robin",
            "random",
            "least_connections",
            "power_of_choices",
            "hash_key",
            "hash_client",
        ] {
            let m = balanced(policy);
            let app = instance(&m, "app");
            let mut sim = simulation(&m, 1);
            sim.set_up(app + 1, false);
            sim.run().unwrap();
            let arrived = per_instance(&sim, "arrived");
            let (a0, a1, a2) = (arrived[1], arrived[2], arrived[3]);
            assert_eq!(a1, 0.0, "{policy}");
            assert!(a0 > 100.0 && a2 > 100.0, "{policy}: {arrived:?}");
            assert_eq!(per_instance(&sim, "forwarded")[0], a0 + a2, "{policy}");
            assert_eq!(sim.context().totals.failed, 0, "{policy}");
        }
    }

    #[test]
    fn a_balancer_sees_an_instance_come_back() {
        let m = balanced("round_robin");
        let app = instance(&m, "app");
        let mut sim = simulation(&m, 1);
        sim.set_up(app, false);
        sim.advance_to(SimTime(1000 * MS));
        sim.set_up(app, true);
        sim.run().unwrap();
        let arrived = per_instance(&sim, "arrived");
        // Back for the second half of the run: about a sixth of the requests.
        let share = arrived[1] / (arrived[1] + arrived[2] + arrived[3]);
        assert!((share - 1.0 / 6.0).abs() < 0.03, "{arrived:?}");
    }

    #[test]
    fn with_no_live_instance_a_call_fails_as_unavailable() {
        // Behind a balancer, called by a service, or the workload's own target.
        let via_lb = balanced("least_connections");
        let app = instance(&via_lb, "app");
        let call = model(
            r#"{"duration": "1s",
                "workloads": {"u": {"arrivals": {"poisson": {"rate": 100}}, "target": "web"}},
                "components": {
                  "web": {"kind": "service", "workers": 4, "handler": [
                            {"work": {"constant": "1ms"}}, {"call": "db"}]},
                  "db": {"kind": "service", "workers": 1,
                         "service_time": {"constant": "1ms"}}}}"#,
        );
        let db = instance(&call, "db");
        let web = instance(&call, "web");
        for (m, down) in [
            (&via_lb, vec![app, app + 1, app + 2]),
            (&call, vec![db]),
            (&call, vec![web]),
        ] {
            let mut sim = simulation(m, 1);
            for i in &down {
                sim.set_up(*i, false);
            }
            sim.run().unwrap();
            let t = sim.context().totals;
            assert!(t.arrived > 50);
            assert_eq!(t.failed, t.arrived, "{down:?}");
            assert_eq!(failures(&sim, ErrorCause::Unavailable), t.failed);
            assert_eq!(sim.context().in_flight, 0);
            assert_eq!(sim.context().unanswered(), 0);
        }
    }
}
