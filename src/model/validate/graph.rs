//! Checks on the model's call graph: no cycle of calls, and every request can be answered
//! (no loop of routes that is never left, no route back into a waiting caller). Both read
//! the one [`CallGraph`] built from the components' links.

use crate::components::ComponentDef;
use crate::error::{Errors, join};
use crate::model::graph::{CallGraph, LinkKind, ROUTE_SUM_SLACK};

/// Rejects models in which a component calls itself through others.
pub fn check_cycles(errs: &mut Errors, graph: &CallGraph, components: &[ComponentDef]) {
    if let Some(cycle) = graph.wait_cycle() {
        let text: Vec<&str> = cycle.iter().map(|i| components[*i].name.as_str()).collect();
        errs.push(
            join("components", &components[cycle[0]].name),
            format!(
                "call cycle: {}; a request would call itself forever",
                text.join(" -> ")
            ),
        );
    }
}

/// Rejects requests sent to a component that answers none (an autoscaler): by a link of
/// the call graph (a call, fan-out, route or balancer backend) or by a workload
/// (`workloads`: each one's name and the group it targets).
pub fn check_takes_requests(
    errs: &mut Errors,
    graph: &CallGraph,
    components: &[ComponentDef],
    workloads: &[(&str, usize)],
) {
    let refuse = |errs: &mut Errors, path: String, target: usize| {
        let c = &components[target];
        errs.push(
            path,
            format!(
                "\"{}\" is {} {}, which answers no request: send requests to a component that serves them{}",
                c.name,
                article(c.kind.name()),
                c.kind.name(),
                scaled_hint(components, target)
            ),
        );
    };
    for g in 0..graph.len() {
        for link in graph.links(g) {
            for target in link.groups() {
                if target < components.len() && !components[target].kind.takes_requests() {
                    refuse(errs, link.path.clone(), target);
                }
            }
        }
    }
    for (name, target) in workloads {
        if *target < components.len() && !components[*target].kind.takes_requests() {
            refuse(errs, format!("{}.target", join("workloads", name)), *target);
        }
    }
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// ` (such as "NAME", which it scales)` when the component that answers no request is an
/// autoscaler of another (its target), else nothing.
fn scaled_hint(components: &[ComponentDef], target: usize) -> String {
    components[target]
        .kind
        .scales()
        .map(|g| {
            format!(
                " (such as \"{}\", the service it scales)",
                components[g].name
            )
        })
        .unwrap_or_default()
}

/// What holds up a component that can never answer: the first of its links that can never
/// complete for the class (its index among the component's links) and what kind it is.
#[derive(Clone, Copy, PartialEq)]
struct Hold {
    kind: LinkKind,
    link: usize,
}

impl Hold {
    fn is_route(&self) -> bool {
        self.kind == LinkKind::Route
    }
    fn is_wait(&self) -> bool {
        matches!(self.kind, LinkKind::Wait { .. })
    }
}

/// Rejects models in which a request could never be answered. For each class, a component
/// *can answer* if, in the least fixed point, each of its links for that class can complete:
/// - a wait (a `call`, a `fan_out`) has at least as many targets that can answer as it
///   waits for;
/// - a route that sums to 1 leads with positive probability to a component that can answer
///   (one that sums below 1 may always end here);
/// - a balancer's backends: some backend can answer.
///
/// Without routes every component can answer (call cycles are rejected by [`check_cycles`]).
/// With them, a request may loop over routes with probability 1 (`"a" -> "b" -> "a"`), or be
/// routed back into a caller that is waiting for it, so that every pass calls again
/// (`"a"` calls `"b"`, which routes to `"a"`). Each component that cannot answer is held by
/// one link that can never complete, which waits on (or hands the request to) others that
/// cannot answer; following these edges always ends in a closed group of components (a
/// strongly connected component with no edge out). Each such group is reported once, at the
/// `route` step (a loop over routes alone) or the `call`/`fan_out` step (a route back into a
/// waiting caller). Route cycles that can be left are allowed: each pass is a new visit and
/// holds no worker.
pub fn check_can_answer(
    errs: &mut Errors,
    graph: &CallGraph,
    components: &[ComponentDef],
    classes: &[String],
) {
    let n = components.len();
    let mut reported: Vec<(String, Vec<usize>)> = Vec::new();
    for class in 0..classes.len() {
        // Every requirement of every component: (owner, what holds it, answers still
        // needed, the components whose answers count).
        let mut reqs: Vec<(usize, Hold, usize, Vec<usize>)> = Vec::new();
        for g in 0..n {
            for (i, link) in graph.links(g).iter().enumerate() {
                if !link.applies_to(class) {
                    continue;
                }
                let hold = Hold {
                    kind: link.kind,
                    link: i,
                };
                let on: Vec<usize> = link.groups().collect();
                match link.kind {
                    LinkKind::Wait { need } => reqs.push((g, hold, need, on)),
                    LinkKind::Route => {
                        let sum: f64 = link.targets.iter().map(|(_, p)| p).sum();
                        if sum >= 1.0 - ROUTE_SUM_SLACK {
                            reqs.push((g, hold, 1, on));
                        }
                    }
                    LinkKind::Balance => reqs.push((g, hold, 1, on)),
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
        // link order: the request never gets past it), and the components it waits on.
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
        let path_of = |g: usize, h: Hold| graph.links(g)[h.link].path.clone();
        for set in closed_groups(&edges, &answers) {
            let holds = |f: &dyn Fn(Hold) -> bool| set.iter().find(|g| hold[**g].is_some_and(f));
            // Groups without a route are call cycles, reported by check_cycles.
            if holds(&|h| h.is_route()).is_none() {
                continue;
            }
            let names = crate::error::quoted(set.iter().map(|g| components[*g].name.as_str()));
            let of_class = if classes.len() > 1 {
                format!(" of class \"{}\"", classes[class])
            } else {
                String::new()
            };
            let (path, message) = match holds(&|h| h.is_wait()) {
                // Routes alone, possibly through balancers.
                None => {
                    let Some(path) = set.iter().find_map(|g| {
                        graph
                            .links_of_class(*g, class)
                            .find(|l| l.kind == LinkKind::Route)
                            .map(|l| l.path.clone())
                    }) else {
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
                        let h = hold[g].expect("every member is held");
                        match h.kind {
                            LinkKind::Wait { .. } => {
                                format!("\"{me}\" waits for \"{to}\" ({})", path_of(g, h))
                            }
                            LinkKind::Route => {
                                format!("\"{me}\" routes it on to \"{to}\" ({})", path_of(g, h))
                            }
                            LinkKind::Balance => {
                                format!("balancer \"{me}\" passes it to \"{to}\"")
                            }
                        }
                    };
                    let h = hold[start].expect("start is held by a wait");
                    let mut chain = vec![format!(
                        "\"{}\" waits here for \"{}\"",
                        components[start].name, components[cycle[1]].name
                    )];
                    chain.extend(cycle.windows(2).skip(1).map(|w| describe(w[0], w[1])));
                    (
                        path_of(start, h),
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

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors (path, message) of a model with workload `w` sending to `app` and
    /// components `components` (a JSON object's members).
    fn errors(components: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app"}}}},
                "components": {{{components}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn a_call_cycle_is_reported_at_a_component_of_it() {
        let errs = errors(
            r#""app": {"kind": "service", "handler": [{"call": "db"}]},
               "db": {"kind": "service", "handler": [{"call": "app"}]}"#,
        );
        let (p, m) = errs
            .iter()
            .find(|(_, m)| m.contains("call cycle"))
            .unwrap_or_else(|| panic!("no cycle reported: {errs:?}"));
        assert!(p == "components.app" || p == "components.db", "{p}");
        assert!(m.contains("app") && m.contains("db"), "{m}");
    }

    #[test]
    fn a_workload_sent_to_an_autoscaler_is_refused_at_its_target() {
        let errs = errors(
            r#""app": {"kind": "autoscaler", "target": "svc", "min": 1, "max": 3,
                       "metric": "utilization", "target_value": 0.6},
               "svc": {"kind": "service", "service_time": {"constant": "1ms"}}"#,
        );
        let (p, m) = errs.first().expect("an error");
        assert_eq!(p, "workloads.w.target", "{errs:?}");
        assert!(m.contains("answers no request"), "{m}");
    }

    #[test]
    fn an_acyclic_graph_passes() {
        let errs = errors(
            r#""app": {"kind": "service", "handler": [{"call": "db"}]},
               "db": {"kind": "service", "service_time": {"constant": "1ms"}}"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
    }
}
