//! From a [`ModelSpec`] to a runnable [`Model`]: check every field, resolve names to ids,
//! build distributions, reject call cycles and models in which a request could never be
//! answered (a route loop that is never left, a route back into a waiting caller). All
//! errors are collected, each with the JSON path of its field.
//!
//! Each concept is checked in its own place: the model-wide fields here, workloads in
//! [`workloads`], each component kind in its own module under `src/components/` (e.g.
//! `components::service::validate`), the call graph in [`graph`], names in
//! [`super::names`]; trace files are read by [`super::trace`].

mod graph;
mod workloads;

use super::Model;
use super::graph::CallGraph;
use super::names::check_name;
use super::resolve::Resolver;
use super::spec::*;
use super::trace::Replay;
use crate::components::ComponentDef;
use crate::error::{Errors, ModelError, join};
use crate::limits::{
    DEFAULT_MAX_IN_FLIGHT, MAX_CLASS_TABLE, MAX_CLASSES, MAX_MAX_IN_FLIGHT, MAX_SERIES_WINDOWS,
};
use crate::time::SimDuration;
use graph::{check_can_answer, check_cycles, check_takes_requests};
use indexmap::IndexMap;
use std::sync::Arc;
use workloads::{check_sends, workload};

/// Name of the class of requests whose workload names no classes.
pub const DEFAULT_CLASS: &str = "default";

/// Most component instances a model may have in all: each costs memory for its state and
/// statistics, and a million exhaust a small machine.
pub const MAX_INSTANCES: u32 = 100_000;
/// Most users a closed workload may have.
pub const MAX_USERS: u32 = 10_000_000;
/// Highest arrival rate, per second: one request per nanosecond, the clock's resolution.
pub const MAX_RATE: f64 = 1e9;
/// Fewest requests a workload may be expected to send in the measured part of a run
/// (from the end of the warm-up to the end): below this, no run would send any in practice
/// (fewer than one run in a million), and every statistic would be an empty zero.
/// [`crate::model::lint`] warns below one request.
pub const MIN_EXPECTED_REQUESTS: f64 = 1e-6;

/// Validates `spec`; `replays` holds the trace of each trace workload, read when the model
/// was loaded (or why it could not be read), and `hash` the hash of the spec's source, kept
/// in the model.
pub fn validate(
    spec: ModelSpec,
    replays: IndexMap<String, Result<Replay<'_>, String>>,
    hash: String,
) -> Result<Model, Vec<ModelError>> {
    let mut errs = Errors::new();
    let duration = spec.duration.to_sim();
    if duration.0 == 0 {
        errs.push("duration", "must be longer than zero, got \"0s\"");
    } else if spec.duration.nanos() >= u64::MAX as f64 {
        errs.push(
            "duration",
            format!(
                "must be shorter than about 584 years (the longest the clock holds), got \"{}\"",
                crate::time::format_duration_nanos(spec.duration.nanos())
            ),
        );
    }
    let warmup = spec.warmup.map(|w| w.to_sim()).unwrap_or(SimDuration::ZERO);
    if duration.0 > 0 && warmup >= duration {
        errs.push(
            "warmup",
            format!(
                "must be shorter than duration (\"{}\"), got \"{}\"",
                crate::time::format_duration_nanos(duration.0 as f64),
                crate::time::format_duration_nanos(warmup.0 as f64)
            ),
        );
    }
    if spec.workloads.is_empty() {
        errs.push("workloads", "a model needs at least one workload");
    }
    if spec.components.is_empty() {
        errs.push("components", "a model needs at least one component");
    }
    let names: Vec<&str> = spec.components.keys().map(String::as_str).collect();
    for name in &names {
        check_name(&mut errs, &join("components", name), name);
    }
    for name in spec.workloads.keys() {
        check_name(&mut errs, &join("workloads", name), name);
    }

    // Traces first: their files name classes too.
    let mut traces: IndexMap<String, Replay> = IndexMap::new();
    for (wname, replay) in replays {
        match replay {
            Ok(r) => {
                traces.insert(wname, r);
            }
            Err(msg) => errs.push(join(&join("workloads", &wname), "arrivals.trace.file"), msg),
        }
    }
    for (wname, w) in &spec.workloads {
        for class in w.classes.iter().flat_map(|mix| mix.keys()) {
            check_name(
                &mut errs,
                &join(&join(&join("workloads", wname), "classes"), class),
                class,
            );
        }
    }
    let classes = collect_classes(&spec, &traces);
    if !check_class_table(&mut errs, &spec, &classes) {
        // Building a handler per class for every component would take that memory.
        return Err(errs.into_vec());
    }

    // Instance ids: components in file order, each's replicas consecutive.
    let mut first_instance = Vec::with_capacity(names.len());
    let mut replicas = Vec::with_capacity(names.len());
    let mut replicas_written = Vec::with_capacity(names.len());
    let mut next = 0u32;
    let mut too_many = false;
    for (name, c) in &spec.components {
        let path = join(&join("components", name), "replicas");
        let r = match c.kind.instances(c.common.replicas) {
            Ok(r) => r,
            Err(msg) => {
                errs.push(path.clone(), msg);
                1
            }
        };
        if r > MAX_INSTANCES {
            errs.push(path, format!("must be at most {MAX_INSTANCES}, got {r}"));
            too_many = true;
        }
        let r = r.clamp(1, MAX_INSTANCES);
        replicas_written.push(r);
        // Another component (an autoscaler) may have more of its instances built.
        let r = spec
            .components
            .values()
            .filter_map(|o| o.kind.instances_of(name))
            .fold(r, u32::max)
            .min(MAX_INSTANCES);
        first_instance.push(next);
        replicas.push(r);
        next = next.saturating_add(r);
    }
    if next > MAX_INSTANCES && !too_many {
        errs.push(
            "components",
            format!(
                "a model may have at most {MAX_INSTANCES} instances in all, got {next} (the sum of every component's replicas)"
            ),
        );
    }

    let kinds: Vec<&KindSpec> = spec.components.values().map(|c| &c.kind).collect();
    let hedge_cancelled = hedge_cancelled(&spec, &names);
    let resolver = Resolver {
        names: &names,
        classes: &classes,
        first_instance: &first_instance,
        replicas: &replicas,
        replicas_written: &replicas_written,
        duration,
        faults: spec.faults.as_ref().is_some_and(|f| !f.is_empty()),
        kinds: &kinds,
        hedge_cancelled: &hedge_cancelled,
    };
    let mut components = Vec::with_capacity(names.len());
    for (i, (name, c)) in spec.components.iter().enumerate() {
        let path = join("components", name);
        let cost_per_hour = cost_per_hour(&mut errs, &path, &c.common);
        if let Some(kind) = c.kind.validate(&resolver, &mut errs, &path, i) {
            components.push(ComponentDef {
                name: name.clone(),
                replicas: replicas[i],
                first_instance: first_instance[i],
                cost_per_hour,
                kind,
            });
        }
    }

    let mut workloads = Vec::new();
    for (wname, w) in &spec.workloads {
        let path = join("workloads", wname);
        if let Some(def) = workload(&resolver, &mut errs, &path, wname, w, &traces) {
            workloads.push(Arc::new(def));
        }
    }

    if duration.0 > 0 && warmup < duration {
        for (w, (wname, _)) in workloads.iter().zip(&spec.workloads) {
            check_sends(&mut errs, &join("workloads", wname), w, warmup, duration);
        }
    }
    let network = crate::network::validate(&mut errs, &spec, &first_instance, &replicas);
    let series_window = series_window(&mut errs, &spec, duration);
    let recovery = crate::faults::recovery::validate(&mut errs, spec.recovery.as_ref(), duration);
    let max_in_flight = max_in_flight(&mut errs, &spec);
    // The call graph is built from the components' links, so only when every component
    // built (otherwise their errors are reported first).
    let graph = CallGraph::build(&components);
    if components.len() == names.len() {
        check_cycles(&mut errs, &graph, &components);
        check_can_answer(&mut errs, &graph, &components, &classes);
        let targets: Vec<(&str, usize)> = workloads
            .iter()
            .map(|w| (w.name.as_str(), w.target as usize))
            .collect();
        check_takes_requests(&mut errs, &graph, &components, &targets);
    }
    // Without every component the graph is partial: the policies are checked all the
    // same, all but whether each callee is called.
    let whole = components.len() == names.len();
    let calls =
        crate::policy::validate::calls(&mut errs, &spec, whole.then_some(&graph), &replicas);
    let faults = match &spec.faults {
        Some(list) if components.len() == names.len() => {
            let net = network.as_deref();
            crate::faults::validate::faults(&resolver, &mut errs, list, &components, net)
        }
        _ => Vec::new(),
    };
    if !errs.is_empty() {
        return Err(errs.into_vec());
    }
    let model = Model {
        name: spec
            .name
            .clone()
            .unwrap_or_else(|| "unnamed model".to_string()),
        duration,
        warmup,
        seed: spec.seed.unwrap_or(1),
        series_window,
        component_series: spec.component_series.unwrap_or(false),
        max_in_flight,
        classes,
        workloads,
        components,
        graph,
        network,
        faults: Arc::new(faults),
        calls: Arc::new(calls),
        recovery,
        spec,
        hash,
    };
    crate::analysis::prepare(&model);
    Ok(model)
}

/// Per component: some caller hedges its calls to it with `cancel`, so it drops the
/// losing copies still in its queue.
fn hedge_cancelled(spec: &ModelSpec, names: &[&str]) -> Vec<bool> {
    let mut cancelled = vec![false; names.len()];
    let policies = spec
        .components
        .values()
        .filter_map(|c| c.common.calls_to.as_ref())
        .flatten();
    for (callee, p) in policies {
        if p.hedge.as_ref().is_some_and(|h| h.cancel == Some(true))
            && let Some(i) = names.iter().position(|n| n == callee)
        {
            cancelled[i] = true;
        }
    }
    cancelled
}

/// A component's price per instance-hour: zero or more (0 when not given).
fn cost_per_hour(errs: &mut Errors, path: &str, common: &CommonSpec) -> f64 {
    match common.cost_per_hour {
        Some(c) if !(c.is_finite() && c >= 0.0) => {
            errs.push(
                join(path, "cost_per_hour"),
                format!("must be zero or more, got {c}"),
            );
            0.0
        }
        c => c.unwrap_or(0.0),
    }
}

/// The width of the time-series windows: the model's, or a hundredth of `duration` (at
/// least 1 ms). A duration may hold at most [`MAX_SERIES_WINDOWS`] of them.
fn series_window(errs: &mut Errors, spec: &ModelSpec, duration: SimDuration) -> SimDuration {
    let Some(w) = spec.series_window else {
        return SimDuration((duration.0 / 100).max(1_000_000));
    };
    let window = w.to_sim();
    let text = crate::time::format_duration_nanos(w.nanos());
    if window.0 == 0 {
        errs.push(
            "series_window",
            format!("must be longer than zero, got \"{text}\""),
        );
    } else if duration.0.div_ceil(window.0) > MAX_SERIES_WINDOWS {
        let least =
            crate::time::format_duration_nanos(duration.0.div_ceil(MAX_SERIES_WINDOWS) as f64);
        errs.push(
            "series_window",
            format!(
                "\"{text}\" cuts duration into {} windows, more than the {MAX_SERIES_WINDOWS} allowed; use at least \"{least}\"",
                duration.0.div_ceil(window.0)
            ),
        );
    }
    SimDuration(window.0.max(1))
}

/// The model's `max_in_flight`: at least 1, at most [`MAX_MAX_IN_FLIGHT`], and no fewer than
/// the closed-loop users, who may all have a request out at once.
fn max_in_flight(errs: &mut Errors, spec: &ModelSpec) -> u64 {
    let limit = spec.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if limit == 0 || limit > MAX_MAX_IN_FLIGHT {
        errs.push(
            "max_in_flight",
            format!("must be between 1 and {MAX_MAX_IN_FLIGHT}, got {limit}"),
        );
        return limit.clamp(1, MAX_MAX_IN_FLIGHT);
    }
    let users: u64 = spec
        .workloads
        .values()
        .filter_map(|w| match &w.arrivals {
            ArrivalsSpec::Closed(c) => Some(u64::from(c.users)),
            _ => None,
        })
        .sum();
    if users > limit {
        errs.push(
            "max_in_flight",
            format!(
                "{limit} is below the {users} closed-loop users, who can all have a request in flight at once; raise max_in_flight to at least {users}"
            ),
        );
    }
    limit
}

/// Refuses more request classes than [`MAX_CLASSES`], and a model whose components and
/// workloads would keep more than [`MAX_CLASS_TABLE`] per-class entries. False if refused.
fn check_class_table(errs: &mut Errors, spec: &ModelSpec, classes: &[String]) -> bool {
    let n = classes.len() as u64;
    if classes.len() > MAX_CLASSES {
        errs.push(
            "workloads",
            format!("a model may have at most {MAX_CLASSES} request classes, got {n}"),
        );
        return false;
    }
    let holders = (spec.components.len() + spec.workloads.len()) as u64;
    if holders.saturating_mul(n) > MAX_CLASS_TABLE {
        errs.push(
            "components",
            format!(
                "(components + workloads) × request classes may be at most {MAX_CLASS_TABLE}, got {holders} × {n} (each component keeps a handler, and each workload its counters, per class)"
            ),
        );
        return false;
    }
    true
}

/// Request classes: those of each workload's mix (or trace) in order of first appearance.
fn collect_classes(spec: &ModelSpec, traces: &IndexMap<String, Replay>) -> Vec<String> {
    let mut classes: Vec<String> = Vec::new();
    let mut add = |c: &str| {
        if !classes.iter().any(|k| k == c) {
            classes.push(c.to_string());
        }
    };
    for (wname, w) in &spec.workloads {
        if let Some(records) = traces.get(wname) {
            records.trace.names.iter().for_each(|c| add(c));
        } else {
            match &w.classes {
                Some(mix) => mix.keys().for_each(|c| add(c)),
                None => add(DEFAULT_CLASS),
            }
        }
    }
    if classes.is_empty() {
        classes.push(DEFAULT_CLASS.to_string());
    }
    classes
}
