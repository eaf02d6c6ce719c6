//! From a [`ModelSpec`] to a runnable [`Model`]: check every field, resolve names to ids,
//! build distributions, reject call cycles and models in which a request could never be
//! answered (a route loop that is never left, a route back into a waiting caller). All
//! errors are collected, each with the JSON path of its field.

use super::Model;
use super::spec::*;
use crate::components::{
    BalancerDef, ComponentDef, ComponentKind, Discipline, Policy, RouteTarget, ServiceDef, Step,
    load_balancer::MAX_CHOICES,
};
use crate::distributions::{Distribution, DistributionSpec};
use crate::error::{Errors, ModelError, did_you_mean, index, join, num};
use crate::limits::{
    DEFAULT_MAX_IN_FLIGHT, MAX_CLASS_TABLE, MAX_CLASSES, MAX_MAX_IN_FLIGHT, MAX_SERIES_WINDOWS,
    MAX_TRACE_FILE_BYTES, MAX_TRACE_RECORDS, open_capped,
};
use crate::time::{SimDuration, SimTime, parse_duration_nanos};
use crate::workload::{Arrivals, KeyLaw, RateProfile, TraceRecord, WorkloadDef};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Name of the class of requests whose workload names no classes.
pub const DEFAULT_CLASS: &str = "default";

/// Most component instances a model may have in all: each costs memory for its state and
/// statistics, and a million exhaust a small machine.
pub const MAX_INSTANCES: u32 = 100_000;
/// Most workers an instance may have.
pub const MAX_WORKERS: u32 = 1_000_000;
/// Most users a closed workload may have.
pub const MAX_USERS: u32 = 10_000_000;
/// Highest arrival rate, per second: one request per nanosecond, the clock's resolution.
pub const MAX_RATE: f64 = 1e9;
/// Most components one fan-out step may call.
pub const MAX_FAN_OUT: usize = u16::MAX as usize;
/// Fewest requests a workload may be expected to send in the measured part of a run
/// (from the end of the warm-up to the end): below this, no run would send any in practice
/// (fewer than one run in a million), and every statistic would be an empty zero.
/// [`crate::model::lint`] warns below one request.
pub const MIN_EXPECTED_REQUESTS: f64 = 1e-6;
/// How far the probabilities of a `route` step may sum above 1, for rounding in the file.
pub const ROUTE_SUM_SLACK: f64 = 1e-9;

/// Validates `spec`; `base` is the folder relative file names are resolved against, and
/// `hash` the hash of the spec's source, kept in the model.
pub fn validate(spec: ModelSpec, base: &Path, hash: String) -> Result<Model, Vec<ModelError>> {
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
    let mut traces: IndexMap<String, Trace> = IndexMap::new();
    for (wname, w) in &spec.workloads {
        if let ArrivalsSpec::Trace(t) = &w.arrivals {
            let path = join(&join("workloads", wname), "arrivals.trace.file");
            match read_trace(&base.join(&t.file)) {
                Ok(records) => {
                    traces.insert(wname.clone(), records);
                }
                Err(msg) => errs.push(path, msg),
            }
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
    let mut next = 0u32;
    let mut too_many = false;
    for (name, c) in &spec.components {
        let r = match c {
            ComponentSpec::Service(s) => s.replicas,
            ComponentSpec::LoadBalancer(b) => b.replicas,
        }
        .unwrap_or(1);
        let path = join(&join("components", name), "replicas");
        if r == 0 {
            errs.push(path, "must be at least 1, got 0");
        } else if r > MAX_INSTANCES {
            errs.push(path, format!("must be at most {MAX_INSTANCES}, got {r}"));
            too_many = true;
        }
        let r = r.clamp(1, MAX_INSTANCES);
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

    let resolver = Resolver {
        names: &names,
        classes: &classes,
        first_instance: &first_instance,
        replicas: &replicas,
    };
    let mut components = Vec::with_capacity(names.len());
    for (i, (name, c)) in spec.components.iter().enumerate() {
        let path = join("components", name);
        let kind = match c {
            ComponentSpec::Service(s) => service(&resolver, &mut errs, &path, i, s)
                .map(|d| ComponentKind::Service(Arc::new(d))),
            ComponentSpec::LoadBalancer(b) => balancer(&resolver, &mut errs, &path, i, b)
                .map(|d| ComponentKind::LoadBalancer(Arc::new(d))),
        };
        if let Some(kind) = kind {
            let cost_per_hour = match c {
                ComponentSpec::Service(s) => s.cost_per_hour,
                ComponentSpec::LoadBalancer(b) => b.cost_per_hour,
            }
            .filter(|c| c.is_finite() && *c >= 0.0)
            .unwrap_or(0.0);
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
    let series_window = series_window(&mut errs, &spec, duration);
    let max_in_flight = max_in_flight(&mut errs, &spec);
    check_cycles(&mut errs, &spec, &names);
    // Whether requests can be answered is checked on the resolved handlers, so only when
    // every component built.
    if components.len() == names.len() {
        check_can_answer(&mut errs, &spec, &components, &classes);
    }
    if !errs.is_empty() {
        return Err(errs.into_vec());
    }
    Ok(Model {
        name: spec
            .name
            .clone()
            .unwrap_or_else(|| "unnamed model".to_string()),
        duration,
        warmup,
        seed: spec.seed.unwrap_or(1),
        series_window,
        max_in_flight,
        classes,
        workloads,
        components,
        spec,
        hash,
    })
}

/// Refuses a workload that would send no request in the measured part of the run
/// (`[warmup, duration]`): steps or a ramp whose rate is zero there, a rate so low that
/// fewer than [`MIN_EXPECTED_REQUESTS`] are expected, a trace whose rows all fall outside.
fn check_sends(
    errs: &mut Errors,
    path: &str,
    w: &WorkloadDef,
    warmup: SimDuration,
    duration: SimDuration,
) {
    let n = w.expected_requests(SimTime(warmup.0), SimTime(duration.0));
    if n >= MIN_EXPECTED_REQUESTS {
        return;
    }
    let text = |d: SimDuration| crate::time::format_duration_nanos(d.0 as f64);
    let window = format!(
        "between the end of the warm-up (\"{}\") and the end of the run (\"{}\")",
        text(warmup),
        text(duration)
    );
    let message = match &w.arrivals {
        Arrivals::Trace(records) => format!(
            "none of the trace's {} requests arrives {window}, so the run would measure nothing; shift the trace's times or change the duration",
            records.len()
        ),
        _ if n == 0.0 => format!(
            "sends no request {window}: the rate is zero there, so the run would measure nothing; give it a positive rate in that time"
        ),
        _ => format!(
            "would practically never send a request {window}: {} expected; raise the rate or the duration",
            num(n)
        ),
    };
    errs.push(join(path, "arrivals"), message);
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

fn check_name(errs: &mut Errors, path: &str, name: &str) {
    if let Err(msg) = check_name_rule(name) {
        errs.push(path, msg);
    }
}

/// Longest name of a component, workload or class, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The one rule for the names of components, workloads and request classes: a letter or
/// digit, then letters, digits, `_` or `-`; at most [`MAX_NAME_CHARS`] characters. Names
/// appear in metric keys (`workloads.users.latency.p99_ms`), instance names (`app[2]`),
/// `--set` paths (`PATH=VALUE`), metric patterns (`cost.*`) and CSV columns, so the
/// separators of these (`.`, `[`, `]`, `=`, `*`, `,`, `/`), spaces, control characters and
/// invisible characters (zero-width spaces and joiners, direction marks) are refused.
/// Letters and digits of any script are allowed.
pub fn check_name_rule(name: &str) -> Result<(), String> {
    let shown: String = name.escape_debug().collect();
    let first = name.chars().next();
    let bad = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-'));
    if first.is_none() {
        Err("a name must not be empty".to_string())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(format!(
            "a name must be at most {MAX_NAME_CHARS} characters, got {}",
            name.chars().count()
        ))
    } else if let Some(c) = bad {
        let what = if c.is_control() {
            "a control character".to_string()
        } else if c.is_whitespace() {
            "a space".to_string()
        } else if is_invisible(c) {
            format!("an invisible character (U+{:04X})", c as u32)
        } else {
            format!("\"{c}\"")
        };
        Err(format!(
            "name \"{shown}\" contains {what}; a name is a letter or digit, then letters, digits, \"_\" or \"-\""
        ))
    } else if !first.is_some_and(char::is_alphanumeric) {
        Err(format!(
            "name \"{shown}\" must start with a letter or digit; a name is a letter or digit, then letters, digits, \"_\" or \"-\""
        ))
    } else {
        Ok(())
    }
}

/// Characters that print as nothing: zero-width spaces and joiners, direction marks, the
/// byte order mark, soft hyphens.
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x00AD | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF)
}

/// Request classes: those of each workload's mix (or trace) in order of first appearance.
fn collect_classes(spec: &ModelSpec, traces: &IndexMap<String, Trace>) -> Vec<String> {
    let mut classes: Vec<String> = Vec::new();
    let mut add = |c: &str| {
        if !classes.iter().any(|k| k == c) {
            classes.push(c.to_string());
        }
    };
    for (wname, w) in &spec.workloads {
        if let Some(records) = traces.get(wname) {
            records.names.iter().for_each(|c| add(c));
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

/// Name lookups shared by the validators.
struct Resolver<'a> {
    names: &'a [&'a str],
    classes: &'a [String],
    first_instance: &'a [u32],
    replicas: &'a [u32],
}

impl Resolver<'_> {
    fn group(&self, path: &str, name: &str) -> Result<u32, ModelError> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| i as u32)
            .ok_or_else(|| {
                ModelError::new(
                    path,
                    format!(
                        "no component named \"{name}\"{}",
                        did_you_mean(name, self.names.iter().copied())
                    ),
                )
            })
    }
    fn class(&self, path: &str, name: &str) -> Result<usize, ModelError> {
        self.classes.iter().position(|c| c == name).ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "no workload sends requests of class \"{name}\"; classes are {}{}",
                    quoted_list(self.classes),
                    did_you_mean(name, self.classes.iter().map(String::as_str))
                ),
            )
        })
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn positive_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE {
        Some(rate)
    } else {
        errs.push(
            path,
            format!(
                "rate must be a positive number of requests per second, at most {MAX_RATE:e} (one per nanosecond), got {}",
                num(rate)
            ),
        );
        None
    }
}

/// The mean gap in nanoseconds of a positive `rate` per second; a rate so low that the gap
/// overflows (a request every 10^290 years) sends nothing.
fn gap_of_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    let rate = positive_rate(errs, path.clone(), rate)?;
    let gap = 1e9 / rate;
    if gap.is_finite() {
        Some(gap)
    } else {
        errs.push(
            path,
            format!(
                "is so low that the time between two requests overflows the clock: it would never send a request, got {}",
                num(rate)
            ),
        );
        None
    }
}

fn non_negative_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    if (0.0..=MAX_RATE).contains(&rate) {
        Some(rate)
    } else {
        errs.push(
            path,
            format!(
                "rate must be zero or more requests per second, at most {MAX_RATE:e} (one per nanosecond), got {}",
                num(rate)
            ),
        );
        None
    }
}

fn share(errs: &mut Errors, path: String, v: f64) -> Option<f64> {
    if (0.0..=1.0).contains(&v) {
        Some(v)
    } else {
        errs.push(path, format!("must be between 0 and 1, got {v}"));
        None
    }
}

fn dist(errs: &mut Errors, path: &str, spec: &DistributionSpec) -> Option<Distribution> {
    errs.take(spec.build(path))
}

fn service(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    s: &ServiceSpec,
) -> Option<ServiceDef> {
    let workers = s.workers.unwrap_or(1);
    if workers == 0 {
        errs.push(join(path, "workers"), "must be at least 1, got 0");
    } else if workers > MAX_WORKERS {
        errs.push(
            join(path, "workers"),
            format!("must be at most {MAX_WORKERS}, got {workers}"),
        );
    }
    if let Some(c) = s.cost_per_hour
        && !(c.is_finite() && c >= 0.0)
    {
        errs.push(
            join(path, "cost_per_hour"),
            format!("must be zero or more, got {c}"),
        );
    }
    let (queue_capacity, discipline, queue_timeout) = queue(r, errs, path, s.queue.as_ref());

    // Service time per class.
    let default_time = s
        .service_time
        .as_ref()
        .and_then(|d| dist(errs, &join(path, "service_time"), d));
    let mut class_times: Vec<Option<Distribution>> = vec![default_time.clone(); r.classes.len()];
    // A class whose service time is written but invalid is already reported.
    let mut time_written = vec![s.service_time.is_some(); r.classes.len()];
    if let Some(map) = &s.service_times {
        for (class, d) in map {
            let p = join(&join(path, "service_times"), class);
            if let Some(c) = errs.take(r.class(&p, class)) {
                class_times[c] = dist(errs, &p, d);
                time_written[c] = true;
            }
        }
    }

    // Handler steps per class.
    let default_steps = vec![StepSpec {
        work: Some(WorkSpec::Named("service_time".to_string())),
        call: None,
        fan_out: None,
        route: None,
        wait: None,
        op: None,
    }];
    let mut lists: Vec<(String, &Vec<StepSpec>)> = Vec::new();
    let mut list_of_class = vec![usize::MAX; r.classes.len()];
    match &s.handler {
        None => {
            lists.push((join(path, "handler"), &default_steps));
            list_of_class.iter_mut().for_each(|l| *l = 0);
        }
        Some(HandlerSpec::All(v)) => {
            if v.is_empty() {
                errs.push(join(path, "handler"), "a handler needs at least one step");
            }
            lists.push((join(path, "handler"), v));
            list_of_class.iter_mut().for_each(|l| *l = 0);
        }
        Some(HandlerSpec::PerClass(map)) => {
            for (class, v) in map {
                let p = join(&join(path, "handler"), class);
                if let Some(c) = errs.take(r.class(&p, class)) {
                    if v.is_empty() {
                        errs.push(&p, "a handler needs at least one step");
                    }
                    list_of_class[c] = lists.len();
                    lists.push((p, v));
                }
            }
            let default_index = lists.len();
            lists.push((join(path, "handler"), &default_steps));
            list_of_class
                .iter_mut()
                .filter(|l| **l == usize::MAX)
                .for_each(|l| *l = default_index);
        }
    }
    let plans: Vec<Vec<Option<Plan>>> = lists
        .iter()
        .map(|(p, steps)| {
            steps
                .iter()
                .enumerate()
                .map(|(i, st)| plan_step(r, errs, &index(p, i), me, st, i + 1 == steps.len()))
                .collect()
        })
        .collect();
    let mut handlers = Vec::with_capacity(r.classes.len());
    let mut reported_missing = false;
    for (class, list) in list_of_class.iter().enumerate() {
        let mut steps = Vec::new();
        for plan in plans[*list].iter().flatten() {
            let step = match plan {
                Plan::ServiceTime => match &class_times[class] {
                    Some(d) => Step::Work(d.clone()),
                    None => {
                        if !reported_missing && !time_written[class] {
                            errs.push(
                                join(path, "service_time"),
                                format!(
                                    "missing: a \"work\": \"service_time\" step needs the service time of class \"{}\" (set service_time, or service_times.{})",
                                    r.classes[class], r.classes[class]
                                ),
                            );
                            reported_missing = true;
                        }
                        continue;
                    }
                },
                Plan::Step(s) => s.clone(),
            };
            steps.push(step);
        }
        handlers.push(steps);
    }
    Some(ServiceDef {
        workers: workers.max(1),
        queue_capacity,
        discipline,
        asynchronous: s.asynchronous.unwrap_or(false),
        queue_timeout,
        handlers,
    })
}

fn queue(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    q: Option<&QueueSpec>,
) -> (Option<u32>, Discipline, Option<SimDuration>) {
    match q {
        None => (None, Discipline::Fifo, None),
        Some(QueueSpec::Capacity(c)) => (Some(*c), Discipline::Fifo, None),
        Some(QueueSpec::Full(f)) => {
            let qp = join(path, "queue");
            let discipline = match f.discipline.unwrap_or(DisciplineSpec::Fifo) {
                DisciplineSpec::Fifo => Discipline::Fifo,
                DisciplineSpec::Lifo => Discipline::Lifo,
                DisciplineSpec::Priority => {
                    let mut level_of_class = vec![0u8; r.classes.len()];
                    for (class, level) in f.priorities.iter().flatten() {
                        let p = join(&join(&qp, "priorities"), class);
                        if let Some(c) = errs.take(r.class(&p, class)) {
                            level_of_class[c] = *level;
                        }
                    }
                    let levels = level_of_class.iter().copied().max().unwrap_or(0) as usize + 1;
                    Discipline::Priority {
                        level_of_class,
                        levels,
                    }
                }
            };
            if f.priorities.is_some() && f.discipline != Some(DisciplineSpec::Priority) {
                errs.push(
                    join(&qp, "priorities"),
                    "priorities apply only with \"discipline\": \"priority\"",
                );
            }
            let timeout = f.timeout.map(|t| t.to_sim());
            if timeout == Some(SimDuration::ZERO) {
                errs.push(join(&qp, "timeout"), "must be longer than zero");
            }
            (f.capacity, discipline, timeout)
        }
    }
}

/// A step resolved except for "service_time", which depends on the class.
enum Plan {
    ServiceTime,
    Step(Step),
}

/// Resolves step `st` at `path` of a handler of component `me`; `last` tells whether it is
/// the handler's last step.
fn plan_step(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    st: &StepSpec,
    last: bool,
) -> Option<Plan> {
    let given = [
        st.work.is_some(),
        st.call.is_some(),
        st.fan_out.is_some(),
        st.route.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        errs.push(
            path,
            format!(
                "a step needs exactly one of \"work\", \"call\", \"fan_out\", \"route\"; got {}",
                if given == 0 {
                    "none".to_string()
                } else {
                    given.to_string()
                }
            ),
        );
        return None;
    }
    if st.wait.is_some() && st.fan_out.is_none() {
        errs.push(
            join(path, "wait"),
            "\"wait\" applies only to a \"fan_out\" step",
        );
    }
    if st.op.is_some() && (st.work.is_some() || st.route.is_some()) {
        errs.push(
            join(path, "op"),
            "\"op\" applies only to \"call\" and \"fan_out\" steps",
        );
    }
    let op = match st.op {
        None => 0,
        Some(OpSpec::Read) => 1,
        Some(OpSpec::Write) => 2,
    };
    let callee = |errs: &mut Errors, p: &str, name: &str| -> Option<u32> {
        let g = errs.take(r.group(p, name))?;
        if g as usize == me {
            errs.push(p, format!("a component cannot call itself (\"{name}\")"));
            return None;
        }
        Some(g)
    };
    if let Some(w) = &st.work {
        return match w {
            WorkSpec::Named(_) => Some(Plan::ServiceTime),
            WorkSpec::Distribution(d) => {
                dist(errs, &join(path, "work"), d).map(|d| Plan::Step(Step::Work(d)))
            }
        };
    }
    if let Some(name) = &st.call {
        let g = callee(errs, &join(path, "call"), name)?;
        return Some(Plan::Step(Step::Call { group: g, op }));
    }
    if let Some(targets) = &st.route {
        return route(r, errs, &join(path, "route"), targets, last);
    }
    let targets = st.fan_out.as_ref().expect("one of the four is set");
    let fp = join(path, "fan_out");
    if targets.is_empty() {
        errs.push(&fp, "a fan-out needs at least one component");
        return None;
    }
    if targets.len() > MAX_FAN_OUT {
        errs.push(
            &fp,
            format!(
                "a fan-out may call at most {MAX_FAN_OUT} components, got {}",
                targets.len()
            ),
        );
        return None;
    }
    let mut groups = Vec::new();
    for (i, name) in targets.iter().enumerate() {
        if let Some(g) = callee(errs, &index(&fp, i), name) {
            groups.push(g);
        }
    }
    let n = targets.len() as u16;
    let need = match st.wait.unwrap_or(WaitSpec::All) {
        WaitSpec::All => n,
        WaitSpec::Any => 1,
        WaitSpec::K(k) => {
            if k == 0 || k > n {
                errs.push(
                    join(&join(path, "wait"), "k"),
                    format!("must be between 1 and the number of fanned-out calls ({n}), got {k}"),
                );
            }
            k.clamp(1, n)
        }
    };
    (groups.len() == targets.len()).then_some(Plan::Step(Step::FanOut { groups, need, op }))
}

/// A `route` step at `rp`: known components, probabilities in [0, 1] summing to at most 1,
/// and the last step of its handler. Targets with probability 0 are left out.
fn route(
    r: &Resolver,
    errs: &mut Errors,
    rp: &str,
    targets: &IndexMap<String, f64>,
    last: bool,
) -> Option<Plan> {
    let mut ok = true;
    if !last {
        errs.push(
            rp,
            "a \"route\" step hands the request on (a tail call), so it must be the last step of its handler",
        );
        ok = false;
    }
    let mut out = Vec::with_capacity(targets.len());
    let mut sum = 0.0;
    for (name, p) in targets {
        let tp = join(rp, name);
        let group = errs.take(r.group(&tp, name));
        if !(p.is_finite() && (0.0..=1.0).contains(p)) {
            errs.push(
                &tp,
                format!(
                    "a route probability must be between 0 and 1, got {}",
                    num(*p)
                ),
            );
            ok = false;
            continue;
        }
        sum += p;
        match group {
            Some(group) if *p > 0.0 => out.push(RouteTarget {
                group,
                probability: *p,
                cumulative: sum,
            }),
            Some(_) => {}
            None => ok = false,
        }
    }
    if sum > 1.0 + ROUTE_SUM_SLACK {
        errs.push(
            rp,
            format!(
                "route probabilities must sum to at most 1 (the rest is the chance the request is done here), got {}",
                // Rounded, so 0.7 + 0.5 shows as 1.2 rather than 1.2000000000000002.
                num((sum * 1e9).round() / 1e9)
            ),
        );
        ok = false;
    }
    ok.then_some(Plan::Step(Step::Route(out)))
}

fn balancer(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    b: &LoadBalancerSpec,
) -> Option<BalancerDef> {
    let policy_spec = b.policy.unwrap_or(PolicySpec::RoundRobin);
    let mut backends = Vec::new();
    let names = b.backends.names();
    let bp = join(path, "backends");
    if names.is_empty() {
        errs.push(&bp, "a load balancer needs at least one backend");
    }
    for (i, name) in names.iter().enumerate() {
        let p = if names.len() == 1 && matches!(b.backends, BackendsSpec::One(_)) {
            bp.clone()
        } else {
            index(&bp, i)
        };
        let Some(g) = errs.take(r.group(&p, name)) else {
            continue;
        };
        if g as usize == me {
            errs.push(
                &p,
                format!("a load balancer cannot balance over itself (\"{name}\")"),
            );
            continue;
        }
        if names[..i].contains(name) {
            errs.push(&p, format!("backend \"{name}\" is listed twice"));
            continue;
        }
        let first = r.first_instance[g as usize];
        backends.extend(first..first + r.replicas[g as usize]);
    }
    let n = backends.len();
    let only = |errs: &mut Errors, field: &str, set: bool, policy: &str| {
        if set && policy_spec_name(policy_spec) != policy {
            errs.push(
                join(path, field),
                format!("\"{field}\" applies only with \"policy\": \"{policy}\""),
            );
        }
    };
    only(errs, "weights", b.weights.is_some(), "weighted_round_robin");
    only(errs, "choices", b.choices.is_some(), "power_of_choices");
    only(errs, "distinct", b.distinct.is_some(), "power_of_choices");
    let weights = match (&b.weights, policy_spec) {
        (Some(w), _) => {
            if n > 0 && w.len() != n {
                errs.push(
                    join(path, "weights"),
                    format!(
                        "needs one weight per backend instance ({n}), got {}",
                        w.len()
                    ),
                );
            } else if w.iter().all(|x| *x == 0) {
                errs.push(
                    join(path, "weights"),
                    "at least one weight must be positive",
                );
            }
            w.clone()
        }
        (None, PolicySpec::WeightedRoundRobin) => {
            errs.push(
                join(path, "weights"),
                format!(
                    "missing: \"weighted_round_robin\" needs one weight per backend instance ({n})"
                ),
            );
            vec![1; n]
        }
        (None, _) => vec![1; n],
    };
    let policy = match policy_spec {
        PolicySpec::RoundRobin => Policy::RoundRobin,
        PolicySpec::WeightedRoundRobin => Policy::WeightedRoundRobin,
        PolicySpec::Random => Policy::Random,
        PolicySpec::LeastConnections => Policy::LeastConnections,
        PolicySpec::HashKey => Policy::HashKey,
        PolicySpec::HashClient => Policy::HashClient,
        PolicySpec::PowerOfChoices => {
            let choices = b.choices.unwrap_or(2);
            let distinct = b.distinct.unwrap_or(true);
            let max = if distinct {
                MAX_CHOICES.min(n.max(1))
            } else {
                MAX_CHOICES
            };
            if choices == 0 || choices as usize > max {
                errs.push(
                    join(path, "choices"),
                    format!(
                        "must be between 1 and {max}{}, got {choices}",
                        if distinct && n < MAX_CHOICES {
                            " (the number of backend instances)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Policy::PowerOfChoices { choices, distinct }
        }
    };
    if let Some(c) = b.cost_per_hour
        && !(c.is_finite() && c >= 0.0)
    {
        errs.push(
            join(path, "cost_per_hour"),
            format!("must be zero or more, got {c}"),
        );
    }
    (n > 0).then_some(BalancerDef {
        policy,
        backends,
        weights,
    })
}

fn policy_spec_name(p: PolicySpec) -> &'static str {
    match p {
        PolicySpec::RoundRobin => "round_robin",
        PolicySpec::WeightedRoundRobin => "weighted_round_robin",
        PolicySpec::Random => "random",
        PolicySpec::LeastConnections => "least_connections",
        PolicySpec::PowerOfChoices => "power_of_choices",
        PolicySpec::HashKey => "hash_key",
        PolicySpec::HashClient => "hash_client",
    }
}

fn workload(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    name: &str,
    w: &WorkloadSpec,
    traces: &IndexMap<String, Trace>,
) -> Option<WorkloadDef> {
    let target = errs.take(r.group(&join(path, "target"), &w.target));
    let ap = join(path, "arrivals");
    let arrivals = arrivals(r, errs, &ap, name, &w.arrivals, traces);

    let mut classes = Vec::new();
    match (&w.classes, &w.arrivals) {
        (Some(_), ArrivalsSpec::Trace(_)) => {
            errs.push(
                join(path, "classes"),
                "a trace workload takes its classes from the trace file",
            );
        }
        (Some(mix), _) => {
            if mix.is_empty() {
                errs.push(join(path, "classes"), "needs at least one class");
            }
            let mut total = 0.0;
            for (class, weight) in mix {
                if !(weight.is_finite() && *weight >= 0.0) {
                    errs.push(
                        join(&join(path, "classes"), class),
                        format!("a class share must be zero or more, got {weight}"),
                    );
                }
                total += weight.max(0.0);
            }
            if total <= 0.0 && !mix.is_empty() {
                errs.push(
                    join(path, "classes"),
                    "at least one class share must be positive",
                );
            }
            let mut cum = 0.0;
            for (class, weight) in mix {
                cum += weight.max(0.0) / total;
                let id = r.classes.iter().position(|c| c == class).unwrap_or(0);
                classes.push((id as u16, cum));
            }
            if let Some(last) = classes.last_mut() {
                last.1 = 1.0;
            }
        }
        (None, ArrivalsSpec::Trace(_)) => {
            // Every class the trace names, with its share of the trace's requests.
            if let Some(trace) = traces.get(name) {
                let mut counts = vec![0usize; trace.names.len()];
                for (_, class, _) in &trace.records {
                    counts[*class as usize] += 1;
                }
                let ids = trace.class_ids(r.classes);
                let total = trace.records.len().max(1) as f64;
                let mut cum = 0.0;
                for (id, n) in ids.into_iter().zip(counts) {
                    cum += n as f64 / total;
                    classes.push((id, cum));
                }
            }
            if let Some(last) = classes.last_mut() {
                last.1 = 1.0;
            }
        }
        (None, _) => {
            let id = r
                .classes
                .iter()
                .position(|c| c == DEFAULT_CLASS)
                .unwrap_or(0);
            classes.push((id as u16, 1.0));
        }
    }

    let keys = match &w.keys {
        None => KeyLaw::None,
        Some(k) => keys(errs, &join(path, "keys"), k)?,
    };
    let timeout = w.timeout.map(|t| t.to_sim());
    if timeout == Some(SimDuration::ZERO) {
        errs.push(
            join(path, "timeout"),
            "must be longer than zero, got \"0s\"",
        );
    }
    if w.requests == Some(0) {
        errs.push(join(path, "requests"), "must be at least 1, got 0");
    }
    if w.clients == Some(0) {
        errs.push(join(path, "clients"), "must be at least 1, got 0");
    }
    let clients = match &w.arrivals {
        ArrivalsSpec::Closed(c) => c.users.max(1),
        _ => w.clients.unwrap_or(1000).max(1),
    };
    Some(WorkloadDef {
        name: name.to_string(),
        arrivals: arrivals?,
        classes,
        keys,
        target: target?,
        timeout,
        limit: w.requests,
        clients,
    })
}

fn arrivals(
    r: &Resolver,
    errs: &mut Errors,
    ap: &str,
    name: &str,
    a: &ArrivalsSpec,
    traces: &IndexMap<String, Trace>,
) -> Option<Arrivals> {
    let profile = |points: Vec<(SimTime, f64)>, linear: bool| {
        let max_rate = points.iter().map(|p| p.1).fold(0.0, f64::max);
        Arrivals::Profile(RateProfile {
            points,
            linear,
            max_rate,
        })
    };
    match a {
        ArrivalsSpec::Poisson(p) => gap_of_rate(errs, join(ap, "poisson.rate"), p.rate)
            .map(|gap| Arrivals::Renewal(Distribution::exponential_ns(gap))),
        ArrivalsSpec::Constant(p) => gap_of_rate(errs, join(ap, "constant.rate"), p.rate)
            .map(|gap| Arrivals::Renewal(Distribution::constant_ns(gap))),
        ArrivalsSpec::Interarrival(d) => {
            let p = join(ap, "interarrival");
            let d = dist(errs, &p, d)?;
            if d.mean_ns() < 1.0 {
                errs.push(
                    p,
                    format!(
                        "the mean gap between arrivals must be at least \"1ns\" (the clock's resolution), got \"{}\"",
                        crate::time::format_duration_nanos(d.mean_ns())
                    ),
                );
                return None;
            }
            Some(Arrivals::Renewal(d))
        }
        ArrivalsSpec::Steps(steps) => {
            let sp = join(ap, "steps");
            if steps.is_empty() {
                errs.push(&sp, "needs at least one step");
                return None;
            }
            let mut points = Vec::new();
            if steps[0].at.to_sim().0 > 0 {
                points.push((SimTime::ZERO, 0.0));
            }
            for (i, s) in steps.iter().enumerate() {
                let p = index(&sp, i);
                non_negative_rate(errs, join(&p, "rate"), s.rate);
                let at = SimTime(s.at.to_sim().0);
                if points.last().is_some_and(|(t, _)| *t > at) {
                    errs.push(join(&p, "at"), "steps must be in time order");
                }
                points.push((at, s.rate));
            }
            Some(profile(points, false))
        }
        ArrivalsSpec::Ramp(rp) => {
            let p = join(ap, "ramp");
            non_negative_rate(errs, join(&p, "from"), rp.from);
            non_negative_rate(errs, join(&p, "to"), rp.to);
            if rp.end.to_sim() <= rp.start.to_sim() {
                errs.push(join(&p, "end"), "must be later than start");
                return None;
            }
            Some(profile(
                vec![
                    (SimTime(rp.start.to_sim().0), rp.from),
                    (SimTime(rp.end.to_sim().0), rp.to),
                ],
                true,
            ))
        }
        ArrivalsSpec::Spike(s) => {
            let p = join(ap, "spike");
            non_negative_rate(errs, join(&p, "base"), s.base);
            non_negative_rate(errs, join(&p, "peak"), s.peak);
            let at = SimTime(s.at.to_sim().0);
            let end = at.after(s.length.to_sim());
            let mut points = vec![(SimTime::ZERO, s.base)];
            if at.0 == 0 {
                points.clear();
            }
            points.push((at, s.peak));
            points.push((end, s.base));
            Some(profile(points, false))
        }
        ArrivalsSpec::Closed(c) => {
            let p = join(ap, "closed");
            if c.users == 0 {
                errs.push(join(&p, "users"), "must be at least 1, got 0");
            } else if c.users > MAX_USERS {
                errs.push(
                    join(&p, "users"),
                    format!("must be at most {MAX_USERS}, got {}", c.users),
                );
                return None;
            }
            let think = dist(errs, &join(&p, "think"), &c.think)?;
            Some(Arrivals::Closed {
                users: c.users,
                think,
            })
        }
        ArrivalsSpec::Trace(_) => {
            let trace = traces.get(name)?;
            if trace.records.is_empty() {
                errs.push(join(ap, "trace.file"), "the trace has no requests");
                return None;
            }
            let ids = trace.class_ids(r.classes);
            let mut out: Vec<TraceRecord> = trace
                .records
                .iter()
                .map(|(t, c, k)| TraceRecord {
                    time: *t,
                    class: ids[*c as usize],
                    key: *k,
                })
                .collect();
            out.sort_by_key(|rec| rec.time);
            Some(Arrivals::Trace(Arc::new(out)))
        }
    }
}

fn keys(errs: &mut Errors, kp: &str, k: &KeysSpec) -> Option<KeyLaw> {
    let count = |errs: &mut Errors, field: &str, n: u64| {
        if n == 0 {
            errs.push(join(kp, field), "must be at least 1, got 0");
        }
    };
    match k {
        KeysSpec::Uniform(u) => {
            count(errs, "uniform.keys", u.keys);
            Some(KeyLaw::Uniform {
                keys: u.keys.max(1),
            })
        }
        KeysSpec::Zipf(z) => {
            count(errs, "zipf.keys", z.keys);
            if !(z.s.is_finite() && z.s >= 0.0) {
                errs.push(
                    join(kp, "zipf.s"),
                    format!("must be zero or more, got {}", z.s),
                );
                return None;
            }
            let sampler = rand_distr::Zipf::new(z.keys.max(1) as f64, z.s).ok()?;
            Some(KeyLaw::Zipf {
                keys: z.keys.max(1),
                sampler,
            })
        }
        KeysSpec::HotSet(h) => {
            count(errs, "hot_set.keys", h.keys);
            let frac = h.hot_fraction;
            if !(frac > 0.0 && frac <= 1.0) {
                errs.push(
                    join(kp, "hot_set.hot_fraction"),
                    format!("must be in (0, 1], got {frac}"),
                );
                return None;
            }
            let traffic = share(errs, join(kp, "hot_set.traffic"), h.traffic)?;
            let keys = h.keys.max(1);
            let hot = ((keys as f64 * frac).round() as u64).clamp(1, keys);
            Some(KeyLaw::HotSet {
                keys,
                hot,
                share: traffic,
            })
        }
        KeysSpec::HotKey(h) => {
            count(errs, "hot_key.keys", h.keys);
            let traffic = share(errs, join(kp, "hot_key.traffic"), h.traffic)?;
            Some(KeyLaw::HotSet {
                keys: h.keys.max(1),
                hot: 1,
                share: traffic,
            })
        }
    }
}

/// A trace file as read: its class names in order of first appearance, and its records
/// (time, index into the names, key) in file order.
#[derive(Debug, Default)]
struct Trace {
    names: Vec<String>,
    records: Vec<(SimTime, u32, u64)>,
}

impl Trace {
    /// The model's class id of each of the trace's class names.
    fn class_ids(&self, classes: &[String]) -> Vec<u16> {
        self.names
            .iter()
            .map(|n| classes.iter().position(|c| c == n).unwrap_or(0) as u16)
            .collect()
    }
}

/// Reads a trace CSV: header `time,class,key`. At most [`MAX_TRACE_FILE_BYTES`] and
/// [`MAX_TRACE_RECORDS`] requests.
fn read_trace(path: &Path) -> Result<Trace, String> {
    let file = open_capped(path, MAX_TRACE_FILE_BYTES)
        .map_err(|e| format!("cannot read trace file \"{}\": {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader.headers().cloned();
    if reader.get_ref().exceeded() {
        let e = reader.get_ref().error();
        return Err(format!(
            "cannot read trace file \"{}\": {e}",
            path.display()
        ));
    }
    let headers =
        headers.map_err(|e| format!("cannot read the header of \"{}\": {e}", path.display()))?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(tc), Some(cc), Some(kc)) = (col("time"), col("class"), col("key")) else {
        return Err(format!(
            "trace file \"{}\" needs a header with columns time, class, key; got {}",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let mut out = Trace::default();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    for line in 2.. {
        let more = reader.read_record(&mut rec);
        if reader.get_ref().exceeded() {
            let e = reader.get_ref().error();
            return Err(format!(
                "cannot read trace file \"{}\": {e}",
                path.display()
            ));
        }
        if !more.map_err(|e| format!("{}:{line}: {e}", path.display()))? {
            break;
        }
        if out.records.len() >= MAX_TRACE_RECORDS {
            return Err(format!(
                "{}:{line}: a trace may have at most {MAX_TRACE_RECORDS} requests",
                path.display()
            ));
        }
        let t = rec.get(tc).unwrap_or("");
        let ns = match t.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s * 1e9,
            Ok(s) => {
                return Err(format!(
                    "{}:{line}: time must be zero or more, got {s}",
                    path.display()
                ));
            }
            Err(_) => {
                parse_duration_nanos(t).map_err(|e| format!("{}:{line}: {e}", path.display()))?
            }
        };
        let class = rec.get(cc).unwrap_or("");
        if let Err(m) = check_name_rule(class) {
            return Err(format!("{}:{line}: class: {m}", path.display()));
        }
        let key = rec.get(kc).unwrap_or("").parse::<u64>().map_err(|_| {
            format!(
                "{}:{line}: key must be a whole number, got \"{}\"",
                path.display(),
                rec.get(kc).unwrap_or("")
            )
        })?;
        let next = out.names.len() as u32;
        let id = *ids.entry(class.to_string()).or_insert_with(|| {
            out.names.push(class.to_string());
            next
        });
        out.records
            .push((SimTime(SimDuration::from_nanos_f64(ns).0), id, key));
    }
    Ok(out)
}

/// What holds up a component that can never answer: the first step of its handler that can
/// never complete (a `call` or `fan_out` at this index of the resolved handler, or the
/// closing `route`), or, for a balancer, its backends.
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    Step(usize),
    Route,
    Backends,
}

/// Rejects models in which a request could never be answered. For each class, a component
/// *can answer* if, in the least fixed point:
/// - a service: every `call` of its handler goes to a component that can answer, every
///   `fan_out` has at least as many such components as it waits for, and its closing `route`
///   (if any) sums below 1 or leads with positive probability to a component that can answer;
/// - a balancer: some backend can answer.
///
/// Without routes every component can answer (call cycles are rejected by [`check_cycles`]).
/// With them, a request may loop over routes with probability 1 (`"a" -> "b" -> "a"`), or be
/// routed back into a caller that is waiting for it, so that every pass calls again
/// (`"a"` calls `"b"`, which routes to `"a"`). Each component that cannot answer is held by
/// one step that can never complete, which waits on (or hands the request to) others that
/// cannot answer; following these edges always ends in a closed group of components (a
/// strongly connected component with no edge out). Each such group is reported once, at the
/// `route` step (a loop over routes alone) or the `call`/`fan_out` step (a route back into a
/// waiting caller). Route cycles that can be left are allowed: each pass is a new visit and
/// holds no worker.
fn check_can_answer(
    errs: &mut Errors,
    spec: &ModelSpec,
    components: &[ComponentDef],
    classes: &[String],
) {
    let n = components.len();
    // The components behind each balancer.
    let backends: Vec<Vec<usize>> = components
        .iter()
        .map(|c| match &c.kind {
            ComponentKind::LoadBalancer(b) => b.backend_components(components),
            ComponentKind::Service(_) => Vec::new(),
        })
        .collect();
    let mut reported: Vec<(String, Vec<usize>)> = Vec::new();
    for class in 0..classes.len() {
        // Every requirement of every component: (owner, what holds it, answers still
        // needed, the components whose answers count).
        let mut reqs: Vec<(usize, Hold, usize, Vec<usize>)> = Vec::new();
        for (g, c) in components.iter().enumerate() {
            match &c.kind {
                ComponentKind::Service(s) => {
                    for (i, step) in s.handlers[class].iter().enumerate() {
                        match step {
                            Step::Work(_) => {}
                            Step::Call { group, .. } => {
                                reqs.push((g, Hold::Step(i), 1, vec![*group as usize]))
                            }
                            Step::FanOut { groups, need, .. } => reqs.push((
                                g,
                                Hold::Step(i),
                                usize::from(*need),
                                groups.iter().map(|h| *h as usize).collect(),
                            )),
                            Step::Route(targets) => {
                                let sum: f64 = targets.iter().map(|t| t.probability).sum();
                                if sum >= 1.0 - ROUTE_SUM_SLACK {
                                    let to = targets.iter().map(|t| t.group as usize).collect();
                                    reqs.push((g, Hold::Route, 1, to));
                                }
                            }
                        }
                    }
                }
                ComponentKind::LoadBalancer(_) => {
                    reqs.push((g, Hold::Backends, 1, backends[g].clone()))
                }
            }
        }
        // The least fixed point by propagation: a requirement is met when enough of its
        // components can answer, a component can answer when all its requirements are met.
        let mut pending = vec![0usize; n];
        let mut listeners: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut still: Vec<usize> = Vec::with_capacity(reqs.len());
        for (r, (owner, _, need, on)) in reqs.iter().enumerate() {
            pending[*owner] += 1;
            on.iter().for_each(|h| listeners[*h].push(r));
            still.push(*need);
        }
        let mut answers = vec![false; n];
        let mut todo: Vec<usize> = (0..n).filter(|g| pending[*g] == 0).collect();
        todo.iter().for_each(|g| answers[*g] = true);
        while let Some(h) = todo.pop() {
            for &r in &listeners[h] {
                if still[r] == 0 {
                    continue;
                }
                still[r] -= 1;
                if still[r] == 0 {
                    let owner = reqs[r].0;
                    pending[owner] -= 1;
                    if pending[owner] == 0 {
                        answers[owner] = true;
                        todo.push(owner);
                    }
                }
            }
        }
        if answers.iter().all(|a| *a) {
            continue;
        }
        // What holds each component that cannot answer: its first unmet requirement (in
        // handler order: the request never gets past it), and the components it waits on.
        let mut hold: Vec<Option<Hold>> = vec![None; n];
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (r, (owner, h, _, on)) in reqs.iter().enumerate() {
            if still[r] > 0 && hold[*owner].is_none() {
                hold[*owner] = Some(*h);
                let mut to: Vec<usize> = on.iter().copied().filter(|t| !answers[*t]).collect();
                to.sort_unstable();
                to.dedup();
                edges[*owner] = to;
            }
        }
        for set in closed_groups(&edges, &answers) {
            let holds = |f: &dyn Fn(Hold) -> bool| set.iter().find(|g| hold[**g].is_some_and(f));
            // Groups without a route are call cycles, reported by check_cycles.
            if holds(&|h| h == Hold::Route).is_none() {
                continue;
            }
            let names = crate::error::quoted(set.iter().map(|g| components[*g].name.as_str()));
            let of_class = if classes.len() > 1 {
                format!(" of class \"{}\"", classes[class])
            } else {
                String::new()
            };
            let (path, message) = match holds(&|h| matches!(h, Hold::Step(_))) {
                // Routes alone, possibly through balancers.
                None => {
                    let Some(path) = set
                        .iter()
                        .find_map(|g| route_step_path(spec, &components[*g].name, &classes[class]))
                    else {
                        continue;
                    };
                    (
                        path,
                        format!(
                            "a routed request{of_class} can never leave {names}: every way on from there routes again with probability 1 and none answers; let some route probabilities sum below 1 (the rest is the chance the request is done there)"
                        ),
                    )
                }
                // A route back into a caller that waits.
                Some(&start) => {
                    let cycle = cycle_through(&edges, &set, start);
                    let describe = |g: usize, next: usize| -> String {
                        let (me, to) = (&components[g].name, &components[next].name);
                        match hold[g].expect("every member is held") {
                            Hold::Step(i) => {
                                let p = step_path(spec, components, class, classes, g, i);
                                format!("\"{me}\" waits for \"{to}\" ({p})")
                            }
                            Hold::Route => format!(
                                "\"{me}\" routes it on to \"{to}\" ({})",
                                route_step_path(spec, me, &classes[class])
                                    .unwrap_or_else(|| join("components", me))
                            ),
                            Hold::Backends => {
                                format!("balancer \"{me}\" passes it to \"{to}\"")
                            }
                        }
                    };
                    let Hold::Step(i) = hold[start].expect("start is held by a step") else {
                        unreachable!("start is held by a step")
                    };
                    let mut chain = vec![format!(
                        "\"{}\" waits here for \"{}\"",
                        components[start].name, components[cycle[1]].name
                    )];
                    chain.extend(cycle.windows(2).skip(1).map(|w| describe(w[0], w[1])));
                    (
                        step_path(spec, components, class, classes, start, i),
                        format!(
                            "a request{of_class} can never be answered: {}, and so on without end: each pass waits on the next and none of {names} can ever answer; let a route in this loop sum below 1 (the rest is the chance the request is done there), or lead somewhere that can answer",
                            chain.join(", ")
                        ),
                    )
                }
            };
            if reported.iter().any(|(p, s)| *p == path && *s == set) {
                continue;
            }
            errs.push(&path, message);
            reported.push((path, set));
        }
    }
}

/// The closed groups of the graph `edges` over the nodes not marked in `skip`: its strongly
/// connected components with no edge to another component, each in ascending order.
fn closed_groups(edges: &[Vec<usize>], skip: &[bool]) -> Vec<Vec<usize>> {
    // Tarjan's algorithm, iteratively: (node, next edge to look at).
    let n = edges.len();
    let mut order = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut comp = vec![usize::MAX; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut comps: Vec<Vec<usize>> = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if skip[root] || order[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        order[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (u, ref mut next)) = call.last_mut() {
            if let Some(&v) = edges[u].get(*next) {
                *next += 1;
                if skip[v] {
                    continue;
                }
                if order[v] == usize::MAX {
                    order[v] = counter;
                    low[v] = counter;
                    counter += 1;
                    stack.push(v);
                    on_stack[v] = true;
                    call.push((v, 0));
                } else if on_stack[v] {
                    low[u] = low[u].min(order[v]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[u]);
            }
            if low[u] == order[u] {
                let mut members = Vec::new();
                while let Some(v) = stack.pop() {
                    on_stack[v] = false;
                    comp[v] = comps.len();
                    members.push(v);
                    if v == u {
                        break;
                    }
                }
                members.sort_unstable();
                comps.push(members);
            }
        }
    }
    comps
        .into_iter()
        .enumerate()
        .filter(|(c, members)| {
            members
                .iter()
                .all(|u| edges[*u].iter().all(|v| skip[*v] || comp[*v] == *c))
        })
        .map(|(_, members)| members)
        .collect()
}

/// A shortest cycle from `start` back to itself along `edges`, inside `set`: the nodes in
/// order, `start` first and last.
fn cycle_through(edges: &[Vec<usize>], set: &[usize], start: usize) -> Vec<usize> {
    let mut from = vec![usize::MAX; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for &v in &edges[u] {
            if v == start {
                // Back from u to start, then turned around and closed.
                let mut path = vec![u];
                let mut at = u;
                while at != start {
                    at = from[at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if from[v] == usize::MAX && v != start && set.binary_search(&v).is_ok() {
                from[v] = u;
                queue.push_back(v);
            }
        }
    }
    vec![start, start]
}

/// Path of the `call` or `fan_out` step at index `i` of the resolved handler of `class` in
/// component `g`: the first step of the written handler that makes the same call.
fn step_path(
    spec: &ModelSpec,
    components: &[ComponentDef],
    class: usize,
    classes: &[String],
    g: usize,
    i: usize,
) -> String {
    let name = &components[g].name;
    let fallback = join("components", name);
    let ComponentKind::Service(s) = &components[g].kind else {
        return fallback;
    };
    let Some(ComponentSpec::Service(ss)) = spec.components.get(name) else {
        return fallback;
    };
    let handler = join(&fallback, "handler");
    let (path, steps) = match &ss.handler {
        Some(HandlerSpec::All(v)) => (handler, v),
        Some(HandlerSpec::PerClass(m)) => match m.get(&classes[class]) {
            Some(v) => (join(&handler, &classes[class]), v),
            None => return fallback,
        },
        None => return fallback,
    };
    let group_name = |h: &u32| components[*h as usize].name.as_str();
    let found = steps.iter().position(|st| match &s.handlers[class][i] {
        Step::Call { group, .. } => st.call.as_deref() == Some(group_name(group)),
        Step::FanOut { groups, need, .. } => st.fan_out.as_ref().is_some_and(|names| {
            let n = names.len() as u16;
            let want = match st.wait.unwrap_or(WaitSpec::All) {
                WaitSpec::All => n,
                WaitSpec::Any => 1,
                WaitSpec::K(k) => k.clamp(1, n),
            };
            want == *need
                && names
                    .iter()
                    .map(String::as_str)
                    .eq(groups.iter().map(group_name))
        }),
        _ => false,
    });
    match (found, &s.handlers[class][i]) {
        (Some(k), Step::Call { .. }) => join(&index(&path, k), "call"),
        (Some(k), _) => join(&index(&path, k), "fan_out"),
        (None, _) => fallback,
    }
}

/// Path of the `route` step ending the handler of `class` in service `name`, if it has one.
fn route_step_path(spec: &ModelSpec, name: &str, class: &str) -> Option<String> {
    let ComponentSpec::Service(s) = spec.components.get(name)? else {
        return None;
    };
    let handler = join(&join("components", name), "handler");
    let (path, steps) = match s.handler.as_ref()? {
        HandlerSpec::All(v) => (handler, v),
        HandlerSpec::PerClass(m) => (join(&handler, class), m.get(class)?),
    };
    let last = steps.len().checked_sub(1)?;
    steps[last]
        .route
        .is_some()
        .then(|| join(&index(&path, last), "route"))
}

/// Rejects models in which a component calls itself through others.
fn check_cycles(errs: &mut Errors, spec: &ModelSpec, names: &[&str]) {
    let idx = |n: &str| names.iter().position(|x| *x == n);
    let edges: Vec<Vec<usize>> = spec
        .components
        .values()
        .map(|c| match c {
            ComponentSpec::Service(s) => {
                let mut out = Vec::new();
                let lists: Vec<&Vec<StepSpec>> = match &s.handler {
                    None => vec![],
                    Some(HandlerSpec::All(v)) => vec![v],
                    Some(HandlerSpec::PerClass(m)) => m.values().collect(),
                };
                for l in lists {
                    for st in l {
                        out.extend(st.call.iter().filter_map(|n| idx(n)));
                        out.extend(st.fan_out.iter().flatten().filter_map(|n| idx(n)));
                    }
                }
                out
            }
            ComponentSpec::LoadBalancer(b) => {
                b.backends.names().iter().filter_map(|n| idx(n)).collect()
            }
        })
        .collect();
    // A component naming itself is reported where it does so; look for longer cycles.
    let edges: Vec<Vec<usize>> = edges
        .into_iter()
        .enumerate()
        .map(|(u, out)| out.into_iter().filter(|v| *v != u).collect())
        .collect();
    // Depth-first search with colours; a grey node reached again closes a cycle.
    let mut colour = vec![0u8; names.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        u: usize,
        edges: &[Vec<usize>],
        colour: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        colour[u] = 1;
        stack.push(u);
        for &v in &edges[u] {
            if colour[v] == 1 {
                let start = stack.iter().position(|x| *x == v).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(v);
                return Some(cycle);
            }
            if colour[v] == 0
                && let Some(c) = visit(v, edges, colour, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        colour[u] = 2;
        None
    }
    for u in 0..names.len() {
        if colour[u] == 0
            && let Some(cycle) = visit(u, &edges, &mut colour, &mut stack)
        {
            let text: Vec<&str> = cycle.iter().map(|i| names[*i]).collect();
            errs.push(
                join("components", names[cycle[0]]),
                format!(
                    "call cycle: {}; a request would call itself forever",
                    text.join(" -> ")
                ),
            );
            return;
        }
    }
}
