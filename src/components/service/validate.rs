//! Validation of a `service`: workers, queue, service times per class and the handler's
//! steps (work, call, fan-out, route), resolved to a [`ServiceDef`].

use super::{Discipline, RouteTarget, ServiceDef, Step};
use crate::distributions::Distribution;
use crate::error::{Errors, index, join, num};
use crate::model::graph::{Link, LinkKind, ROUTE_SUM_SLACK};
use crate::model::resolve::{Resolver, dist};
use crate::model::spec::*;
use crate::time::SimDuration;
use indexmap::IndexMap;

/// Most workers an instance may have.
pub const MAX_WORKERS: u32 = 1_000_000;
/// How long a session lives unused when `sessions.idle_timeout` is not given.
pub const DEFAULT_SESSION_IDLE: SimDuration = SimDuration(30 * 60 * 1_000_000_000);
/// Most components one fan-out step may call.
pub const MAX_FAN_OUT: usize = u16::MAX as usize;

/// Validates service `s` at `path`, component number `me` of the model.
pub fn service(
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
    let (queue_capacity, discipline, queue_timeout) = queue(r, errs, path, s.queue.as_ref());
    let slowdown = s
        .slowdown
        .as_ref()
        .and_then(|sd| super::slowdown::validate(errs, &join(path, "slowdown"), sd));
    let sessions = s.sessions.as_ref().map(|ss| {
        let idle = ss.idle_timeout.map_or(DEFAULT_SESSION_IDLE, |t| t.to_sim());
        if idle == SimDuration::ZERO {
            errs.push(
                join(&join(path, "sessions"), "idle_timeout"),
                "must be longer than zero",
            );
        }
        idle
    });

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
        on_hit: None,
        on_miss: None,
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
        .map(|(p, steps)| plan_steps(r, errs, p, me, steps, 0))
        .collect();
    let mut handlers: Vec<Vec<Step>> = Vec::with_capacity(r.classes.len());
    let mut flat = Flatten {
        class_times: &class_times,
        time_written: &time_written,
        classes: r.classes,
        reported_missing: false,
    };
    for (class, list) in list_of_class.iter().enumerate() {
        let mut steps = Vec::new();
        flat.steps(errs, path, class, &plans[*list], &mut steps);
        if steps.len() > usize::from(u16::MAX) {
            errs.push(
                join(path, "handler"),
                format!(
                    "a handler may have at most {} steps, branches included, got {}",
                    u16::MAX,
                    steps.len()
                ),
            );
        }
        handlers.push(steps);
    }
    let links = links(&s.handler, &lists, &plans, &list_of_class);
    let admission = admission(errs, path, s);
    if admission
        .as_ref()
        .is_some_and(|a| a.deadlines == super::admission::Deadlines::Abort)
    {
        handlers = handlers
            .into_iter()
            .map(super::admission::with_checks)
            .collect();
        if handlers.iter().any(|h| h.len() > usize::from(u16::MAX)) {
            errs.push(
                join(path, "deadlines"),
                format!(
                    "\"abort\" adds a check between steps: a handler may then have at most {} steps",
                    u16::MAX
                ),
            );
        }
    }
    let cancellable = r.hedge_cancelled.get(me).copied().unwrap_or(false);
    let checks_dequeue = queue_timeout.is_some()
        || cancellable
        || admission.as_ref().is_some_and(|a| a.checks_dequeue());
    let name = r.names.get(me).copied().unwrap_or_default();
    let takes_batches = r
        .kinds
        .iter()
        .any(|k| matches!(k, KindSpec::Queue(q) if q.batch.is_some() && q.consumers == name));
    Some(ServiceDef {
        workers: workers.max(1),
        queue_capacity,
        discipline,
        asynchronous: s.asynchronous.unwrap_or(false),
        queue_timeout,
        handlers,
        links,
        slowdown,
        sessions,
        admission,
        checks_dequeue,
        cancellable,
        takes_batches,
    })
}

/// The admission policies of service `s` at `path` (`None` when it has none).
fn admission(
    errs: &mut Errors,
    path: &str,
    s: &ServiceSpec,
) -> Option<Box<super::admission::Admission>> {
    use super::admission as a;
    if s.rate_limit.is_none()
        && s.shed.is_none()
        && s.adaptive_lifo.is_none()
        && s.deadlines.is_none_or(|d| d == DeadlinesSpec::Ignore)
    {
        return None;
    }
    let rate_limit = s
        .rate_limit
        .as_ref()
        .and_then(|r| a::rate_limit(errs, &join(path, "rate_limit"), r));
    let (shed_queue_length, shed_wait) = s
        .shed
        .as_ref()
        .map_or((None, None), |sh| a::shed(errs, &join(path, "shed"), sh));
    if s.adaptive_lifo.is_some()
        && let Some(QueueSpec::Full(q)) = &s.queue
        && q.discipline.is_some_and(|d| d != DisciplineSpec::Fifo)
    {
        errs.push(
            join(path, "adaptive_lifo"),
            "works on a FIFO queue: leave out queue.discipline, or set it to \"fifo\"",
        );
    }
    Some(Box::new(a::Admission {
        rate_limit,
        shed_queue_length,
        shed_wait,
        adaptive_lifo: s.adaptive_lifo.map(|l| l.above),
        deadlines: a::deadlines(s.deadlines),
    }))
}

/// Turns the plans of one class's handler into its list of steps, branches flattened:
/// a branching call is followed by a [`Step::Branch`], its hit steps (ending in a
/// [`Step::Jump`] past the miss steps when there are some), then its miss steps.
struct Flatten<'a> {
    class_times: &'a [Option<Distribution>],
    time_written: &'a [bool],
    classes: &'a [String],
    reported_missing: bool,
}

impl Flatten<'_> {
    fn steps(
        &mut self,
        errs: &mut Errors,
        path: &str,
        class: usize,
        plans: &[Option<Plan>],
        out: &mut Vec<Step>,
    ) {
        for plan in plans.iter().flatten() {
            let step = match plan {
                Plan::ServiceTime => match &self.class_times[class] {
                    Some(d) => Step::Work(d.clone()),
                    None => {
                        if !self.reported_missing && !self.time_written[class] {
                            errs.push(
                                join(path, "service_time"),
                                format!(
                                    "missing: a \"work\": \"service_time\" step needs the service time of class \"{}\" (set service_time, or service_times.{})",
                                    self.classes[class], self.classes[class]
                                ),
                            );
                            self.reported_missing = true;
                        }
                        continue;
                    }
                },
                Plan::Step(s) => s.clone(),
                Plan::Branch { call, hit, miss } => {
                    out.push(call.clone());
                    let branch = out.len();
                    out.push(Step::Jump(0));
                    let hit_at = out.len();
                    self.steps(errs, path, class, hit, out);
                    let jump = (!miss.is_empty()).then(|| {
                        out.push(Step::Jump(0));
                        out.len() - 1
                    });
                    let miss_at = out.len();
                    self.steps(errs, path, class, miss, out);
                    let after = out.len() as u16;
                    out[branch] = Step::Branch {
                        hit: if hit.is_empty() { after } else { hit_at as u16 },
                        miss: if miss.is_empty() {
                            after
                        } else {
                            miss_at as u16
                        },
                        after,
                    };
                    if let Some(j) = jump {
                        out[j] = Step::Jump(after);
                    }
                    continue;
                }
            };
            out.push(step);
        }
    }
}

/// The call-graph links of a service's handlers, each at the path of its step: one set
/// for every class when one handler is written for all, otherwise each class's own, in
/// class order (the default handler only works, so it links nowhere).
fn links(
    handler: &Option<HandlerSpec>,
    lists: &[(String, &Vec<StepSpec>)],
    plans: &[Vec<Option<Plan>>],
    list_of_class: &[usize],
) -> Vec<Link> {
    let of_list = |list: usize, class: Option<u16>, out: &mut Vec<Link>| {
        let (path, _) = &lists[list];
        plan_links(path, &plans[list], class, out);
    };
    let mut out = Vec::new();
    match handler {
        Some(HandlerSpec::PerClass(_)) => {
            for (class, list) in list_of_class.iter().enumerate() {
                of_list(*list, Some(class as u16), &mut out);
            }
        }
        _ => of_list(0, None, &mut out),
    }
    out
}

/// The links of the steps `plans` of the list at `path`, branches' steps included.
fn plan_links(path: &str, plans: &[Option<Plan>], class: Option<u16>, out: &mut Vec<Link>) {
    for (i, plan) in plans.iter().enumerate() {
        let at = |field: &str| join(&index(path, i), field);
        let step = match plan {
            Some(Plan::Step(step)) => step,
            Some(Plan::Branch { call, hit, miss }) => {
                if let Step::Call { group, .. } | Step::Set { group } = call {
                    out.push(Link {
                        class,
                        kind: LinkKind::Wait { need: 1 },
                        targets: vec![(*group as usize, 1.0)],
                        path: at("call"),
                    });
                }
                plan_links(&at("on_hit"), hit, class, out);
                plan_links(&at("on_miss"), miss, class, out);
                continue;
            }
            _ => continue,
        };
        {
            let (kind, targets, path) = match step {
                Step::Work(_) | Step::Branch { .. } | Step::Jump(_) | Step::Check => continue,
                Step::Call { group, .. } | Step::Set { group } => (
                    LinkKind::Wait { need: 1 },
                    vec![(*group as usize, 1.0)],
                    at("call"),
                ),
                Step::FanOut { groups, need, .. } => (
                    LinkKind::Wait {
                        need: usize::from(*need),
                    },
                    groups.iter().map(|g| (*g as usize, 1.0)).collect(),
                    at("fan_out"),
                ),
                Step::Route(targets) => (
                    LinkKind::Route,
                    targets
                        .iter()
                        .map(|t| (t.group as usize, t.probability))
                        .collect(),
                    at("route"),
                ),
            };
            out.push(Link {
                class,
                kind,
                targets,
                path,
            });
        }
    }
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
    /// A call that branches on its answer, with the plans of its hit and miss steps.
    Branch {
        call: Step,
        hit: Vec<Option<Plan>>,
        miss: Vec<Option<Plan>>,
    },
}

/// Most levels of branches inside branches.
pub const MAX_BRANCH_DEPTH: usize = 8;

/// Resolves the steps `steps` of the list at `path` (a handler, or a branch's steps at
/// depth `depth`).
fn plan_steps(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    steps: &[StepSpec],
    depth: usize,
) -> Vec<Option<Plan>> {
    steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let p = index(path, i);
            let plan = plan_step(r, errs, &p, me, st, i + 1 == steps.len())?;
            branch(r, errs, &p, me, st, plan, depth)
        })
        .collect()
}

/// `plan` (the plan of step `st` at `path`) with the branches `st` gives, if any: only a
/// `call` may branch.
fn branch(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    st: &StepSpec,
    plan: Plan,
    depth: usize,
) -> Option<Plan> {
    if st.on_hit.is_none() && st.on_miss.is_none() {
        return Some(plan);
    }
    let field = if st.on_hit.is_some() {
        "on_hit"
    } else {
        "on_miss"
    };
    let Plan::Step(call @ (Step::Call { .. } | Step::Set { .. })) = plan else {
        errs.push(
            join(path, field),
            format!(
                "\"{field}\" applies only to a \"call\" step (it branches on the callee's answer)"
            ),
        );
        return None;
    };
    if depth >= MAX_BRANCH_DEPTH {
        errs.push(
            join(path, field),
            format!("branches may be nested at most {MAX_BRANCH_DEPTH} deep"),
        );
        return None;
    }
    let mut block = |name: &str, steps: &Option<Vec<StepSpec>>| -> Vec<Option<Plan>> {
        let Some(steps) = steps else {
            return Vec::new();
        };
        let p = join(path, name);
        if steps.is_empty() {
            errs.push(
                &p,
                format!("\"{name}\" needs at least one step (or leave it out)"),
            );
        }
        plan_steps(r, errs, &p, me, steps, depth + 1)
    };
    let hit = block("on_hit", &st.on_hit);
    let miss = block("on_miss", &st.on_miss);
    Some(Plan::Branch { call, hit, miss })
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
    let op = st.op.map_or(0, |o| o.op().code());
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
        if st.op == Some(OpSpec::Set) {
            return Some(Plan::Step(Step::Set { group: g }));
        }
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

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors of a model whose workload calls `app`, defined by `app`.
    fn errors(app: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app",
                                     "classes": {{"read": 0.9, "write": 0.1}}}}}},
                "components": {{"app": {app},
                               "db": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn workers_and_steps_are_checked_at_their_paths() {
        let e = errors(r#"{"kind": "service", "workers": 0, "service_time": {"constant": "1ms"}}"#);
        assert_eq!(e[0].0, "components.app.workers", "{e:?}");
        let e = errors(
            r#"{"kind": "service", "service_time": {"constant": "1ms"},
                "handler": [{"route": {"db": 0.5}}, {"work": "service_time"}]}"#,
        );
        assert_eq!(e[0].0, "components.app.handler[0].route", "{e:?}");
        assert!(e[0].1.contains("must be the last step"), "{e:?}");
        let e = errors(
            r#"{"kind": "service", "service_time": {"constant": "1ms"},
                "handler": [{"fan_out": ["db", "db"], "wait": {"k": 3}}]}"#,
        );
        assert_eq!(e[0].0, "components.app.handler[0].wait.k", "{e:?}");
        let e = errors(
            r#"{"kind": "service", "service_time": {"constant": "1ms"},
                "handler": [{"call": "app"}]}"#,
        );
        assert!(e[0].1.contains("cannot call itself"), "{e:?}");
    }

    #[test]
    fn class_names_in_a_service_must_be_sent_by_some_workload() {
        let e = errors(
            r#"{"kind": "service", "service_times": {"read": {"constant": "1ms"}, "wrte": {"constant": "2ms"}}}"#,
        );
        assert_eq!(e[0].0, "components.app.service_times.wrte", "{e:?}");
        assert!(e[0].1.contains("did you mean \"write\""), "{e:?}");
        // The write class then has no service time for its work step.
        assert_eq!(e[1].0, "components.app.service_time", "{e:?}");
        let ok = errors(
            r#"{"kind": "service", "service_times": {"read": {"constant": "1ms"}, "write": {"constant": "2ms"}},
                "handler": {"write": [{"work": "service_time"}, {"call": "db"}]}}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn a_service_declares_its_calls_and_routes_as_links_at_their_paths() {
        let text = r#"{"duration": "1s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 10}}, "target": "app"}},
            "components": {
              "app": {"kind": "service", "service_time": {"constant": "1ms"},
                      "handler": [{"call": "db"}, {"fan_out": ["db", "cache"], "wait": "any"},
                                  {"route": {"cache": 0.25}}]},
              "db": {"kind": "service", "service_time": {"constant": "1ms"}},
              "cache": {"kind": "service", "service_time": {"constant": "1ms"}}}}"#;
        let m = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
        let links = m.graph.links(0);
        let paths: Vec<&str> = links.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "components.app.handler[0].call",
                "components.app.handler[1].fan_out",
                "components.app.handler[2].route"
            ]
        );
        use crate::model::graph::LinkKind;
        assert_eq!(links[1].kind, LinkKind::Wait { need: 1 });
        assert_eq!(links[1].targets, [(1, 1.0), (2, 1.0)]);
        assert_eq!(links[2].kind, LinkKind::Route);
        assert_eq!(links[2].targets, [(2, 0.25)]);
    }
}
