//! The model's call graph, built once from the validated components: who sends a request
//! where, whether the sender waits for the answer, and with what probability or weight.
//!
//! Each component kind declares its own [`Link`]s (a service's calls, fan-outs and routes, a
//! balancer's backends; later a cache's backend or a router's shards), and everything that
//! needs the graph reads it from here: the cycle check and the "can answer" check of
//! validation, the self-wait lint, the analytic estimates' order, and later the topology
//! diagram and the reports.

use crate::components::ComponentDef;
use std::collections::VecDeque;

/// How far the probabilities of a route may sum above 1 (for rounding in the file), and
/// how close to 1 a route's sum counts as 1 (a route that never ends here).
pub const ROUTE_SUM_SLACK: f64 = 1e-9;

/// What a link does with a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkKind {
    /// Sends the request to every target and waits until `need` of them answered (a call
    /// is a wait for one answer from one target; a fan-out waits for all, any or k).
    Wait {
        /// Successful answers needed to go on.
        need: usize,
    },
    /// Hands the request on to one target drawn by probability (a tail call); with the
    /// probability left over it is done here.
    Route,
    /// Passes each request to one instance of the targets, by weight, and relays the answer
    /// (a load balancer's backends).
    Balance,
}

/// One place a component sends requests to.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The request class it applies to; `None` for every class.
    pub class: Option<u16>,
    /// What it does.
    pub kind: LinkKind,
    /// The components (group ids) it sends to, each with its share: the probability of a
    /// route, the weight share of a balancer's backend, 1 for a wait.
    pub targets: Vec<(usize, f64)>,
    /// Path of the field in the model file that makes it, for messages.
    pub path: String,
}

impl Link {
    /// True when the sender waits for the answer (calls, fan-outs, balancers): such links
    /// may not form a cycle.
    pub fn waits(&self) -> bool {
        !matches!(self.kind, LinkKind::Route)
    }

    /// True when the link applies to requests of class `class`.
    pub fn applies_to(&self, class: usize) -> bool {
        self.class.is_none_or(|c| usize::from(c) == class)
    }

    /// The group ids it sends to.
    pub fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.targets.iter().map(|(g, _)| *g)
    }
}

/// The links of every component of a model, by group id.
#[derive(Debug, Clone, Default)]
pub struct CallGraph {
    links: Vec<Vec<Link>>,
}

impl CallGraph {
    /// The graph of `components` (in group order), from the links each kind declares.
    pub fn build(components: &[ComponentDef]) -> Self {
        CallGraph {
            links: components.iter().map(|c| c.kind.links().to_vec()).collect(),
        }
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// True for a graph of no component.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The links of component `g`, in the order its definition gives them (a service's in
    /// handler order).
    pub fn links(&self, g: usize) -> &[Link] {
        &self.links[g]
    }

    /// The links of component `g` that apply to class `class`, in order.
    pub fn links_of_class(&self, g: usize, class: usize) -> impl Iterator<Item = &Link> {
        self.links[g].iter().filter(move |l| l.applies_to(class))
    }

    /// The components `g` waits on (calls, fan-outs, balancer backends), any class, in link
    /// order, with repeats.
    pub fn waits_on(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        self.links[g]
            .iter()
            .filter(|l| l.waits())
            .flat_map(Link::groups)
    }

    /// The components `g` can send a request to (any link, any class), sorted, once each.
    pub fn successors(&self, g: usize) -> Vec<usize> {
        let mut next: Vec<usize> = self.links[g].iter().flat_map(Link::groups).collect();
        next.sort_unstable();
        next.dedup();
        next
    }

    /// Components in an order where every component comes before those it waits on (Kahn's
    /// algorithm over the waiting links, which validation keeps acyclic; route links may
    /// form cycles and are left out). Ties go to the lowest group id first.
    pub fn callers_first(&self) -> Vec<usize> {
        let n = self.len();
        let mut indegree = vec![0; n];
        for g in 0..n {
            for v in self.waits_on(g) {
                indegree[v] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(n);
        while let Some(u) = ready.pop() {
            order.push(u);
            for v in self.waits_on(u) {
                indegree[v] -= 1;
                if indegree[v] == 0 {
                    ready.push(v);
                }
            }
        }
        order
    }

    /// A cycle of waiting links, if there is one: the components in order, the first
    /// repeated at the end. A component waiting on itself is not looked for (validation
    /// refuses it where it is written).
    pub fn wait_cycle(&self) -> Option<Vec<usize>> {
        let n = self.len();
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|u| self.waits_on(u).filter(|v| *v != u).collect())
            .collect();
        // Depth-first search with colours; a grey node reached again closes a cycle.
        let mut colour = vec![0u8; n];
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
        (0..n).find_map(|u| {
            if colour[u] == 0 {
                visit(u, &edges, &mut colour, &mut stack)
            } else {
                None
            }
        })
    }

    /// The shortest path from any of `starts` to `target` along any links (starts and
    /// target included), found breadth first.
    pub fn shortest_path(&self, starts: &[usize], target: usize) -> Option<Vec<usize>> {
        let n = self.len();
        let next: Vec<Vec<usize>> = (0..n).map(|g| self.successors(g)).collect();
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut todo: VecDeque<usize> = VecDeque::new();
        for &s in starts {
            seen[s] = true;
            todo.push_back(s);
        }
        while let Some(h) = todo.pop_front() {
            if h == target {
                let mut path = vec![h];
                let mut at = h;
                while let Some(p) = parent[at] {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                return Some(path);
            }
            for &k in &next[h] {
                if !seen[k] {
                    seen[k] = true;
                    parent[k] = Some(h);
                    todo.push_back(k);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(to: &[usize]) -> Link {
        Link {
            class: None,
            kind: LinkKind::Wait { need: to.len() },
            targets: to.iter().map(|g| (*g, 1.0)).collect(),
            path: String::new(),
        }
    }

    fn route(to: &[(usize, f64)]) -> Link {
        Link {
            class: None,
            kind: LinkKind::Route,
            targets: to.to_vec(),
            path: String::new(),
        }
    }

    fn graph(links: Vec<Vec<Link>>) -> CallGraph {
        CallGraph { links }
    }

    #[test]
    fn callers_come_before_what_they_wait_on_and_routes_do_not_order() {
        // 0 -> 2, 1 -> 0, 2 routes back to 1.
        let g = graph(vec![
            vec![wait(&[2])],
            vec![wait(&[0])],
            vec![route(&[(1, 0.5)])],
        ]);
        assert_eq!(g.callers_first(), vec![1, 0, 2]);
        assert_eq!(g.wait_cycle(), None);
        assert_eq!(g.successors(2), vec![1]);
    }

    #[test]
    fn a_cycle_of_waits_is_found_in_order() {
        let g = graph(vec![
            vec![wait(&[1])],
            vec![wait(&[2, 1])],
            vec![wait(&[0])],
        ]);
        assert_eq!(g.wait_cycle(), Some(vec![0, 1, 2, 0]));
        // Every node is in the cycle, so none is ever ready.
        assert!(g.callers_first().is_empty());
    }

    #[test]
    fn links_of_a_class_and_shortest_paths() {
        let mut read = wait(&[1]);
        read.class = Some(0);
        let mut write = wait(&[2]);
        write.class = Some(1);
        let g = graph(vec![vec![read, write], vec![route(&[(0, 1.0)])], vec![]]);
        let of = |c| {
            g.links_of_class(0, c)
                .flat_map(Link::groups)
                .collect::<Vec<_>>()
        };
        assert_eq!(of(0), vec![1]);
        assert_eq!(of(1), vec![2]);
        assert_eq!(g.shortest_path(&[1], 0), Some(vec![1, 0]));
        assert_eq!(g.shortest_path(&[2], 0), None);
    }
}
