//! Checks on the model's call graph: no call cycle, and every request can be answered
//! (no loop of routes that is never left, no route back into a waiting caller).

use crate::components::service::validate::ROUTE_SUM_SLACK;
use crate::components::{ComponentDef, ComponentKind, Step};
use crate::error::{Errors, index, join};
use crate::model::spec::*;

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
pub fn check_can_answer(
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
pub fn check_cycles(errs: &mut Errors, spec: &ModelSpec, names: &[&str]) {
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
