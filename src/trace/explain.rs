//! Where the time of a run's requests went (`run --explain`): per workload and class, and
//! per component on the requests' path, the mean and 99th percentile of the time a request
//! spent there queueing, in service, on the network to and from it, waiting on the calls
//! it made, and in backoff; and the components on the critical path of the slow requests.
//!
//! A sample of the requests of the measurement window is followed (see
//! [`Watcher`](crate::engine::watch::Watcher)): one in k by their sampling hash, k chosen
//! so that about [`EXPLAIN_SAMPLE`] are, and none while [`EXPLAIN_MAX_OPEN`] calls of
//! followed requests are in flight (the cost of following grows with them). A request's **critical path** is the chain
//! of visits its answer waited on: its first call, and in each stretch a visit waited on
//! calls, the call whose answer ended the wait (the slowest of a fan-out that needs them
//! all). Its time splits exactly along that path: the critical-path times of its
//! components add up to its latency. The slow requests are the slowest 1% of each workload
//! and class (those at or above its p99).

use super::Names;
use crate::engine::watch::{Life, NONE, PhaseKind, Sink, VisitEnd};
use crate::metrics::WaitHistogram;
use crate::model::Model;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// The five parts a request's time at a component is made of.
const PARTS: [PhaseKind; 4] = [
    PhaseKind::Queue,
    PhaseKind::Service,
    PhaseKind::Calls,
    PhaseKind::Backoff,
];

/// A slow request: its latency (ns), its sampling hash, and its critical path by
/// component (ns).
type SlowRequest = (u64, u64, Vec<(u32, u64)>);

/// Per (source, class): what the requests did.
#[derive(Default)]
struct Group {
    latency: WaitHistogram,
    /// Per component: how many requests visited it, their visits, and the histograms of
    /// each request's queue, service, calls, backoff and network time there.
    components: BTreeMap<u32, ComponentTimes>,
    /// The slowest requests seen, with their critical path by component (a min-heap
    /// bounded to 2% of the requests and at least 20; the slowest 1% are taken at the end).
    slow: BinaryHeap<Reverse<SlowRequest>>,
}

#[derive(Default)]
struct ComponentTimes {
    requests: u64,
    visits: u64,
    parts: [WaitHistogram; 5],
    critical_ns: u128,
}

/// About how many requests `--explain` follows in a run: the share it follows is this over
/// the requests the model's workloads are expected to send in the measurement window.
pub const EXPLAIN_SAMPLE: f64 = 20_000.0;

/// Calls of followed requests in flight at most: a request arriving while this many are is
/// not followed. Following costs time per event in proportion to the followed calls at the
/// instance (at every instance for a timeout or a call policy's timer), so this bounds it on
/// an overloaded model.
pub const EXPLAIN_MAX_OPEN: usize = 256;

/// Follows a sample of the requests (a share of them by their sampling hash, so spread
/// over the whole run and the same for the same seed), adding up where the time of the
/// successful ones went.
pub struct ExplainSink {
    groups: BTreeMap<(u32, u16), Group>,
    /// One request in `one_in` is followed: those whose hash is at most `threshold`.
    one_in: u64,
    threshold: u64,
    /// The hashes of the followed requests in flight.
    followed: BTreeSet<u64>,
    /// Requests in the sample not followed because `EXPLAIN_MAX_OPEN` followed calls were
    /// in flight.
    skipped_busy: u64,
}

impl ExplainSink {
    /// A sink following about [`EXPLAIN_SAMPLE`] of the requests `model` is expected to
    /// send in its measurement window (all of them when it sends fewer).
    pub fn new(model: &Model) -> Self {
        let from = SimTime(model.warmup.0);
        let to = SimTime(model.duration.0);
        let expected: f64 = model
            .workloads
            .iter()
            .map(|w| w.expected_requests(from, to))
            .filter(|n| n.is_finite())
            .sum();
        Self::one_in((expected / EXPLAIN_SAMPLE).ceil().max(1.0) as u64)
    }

    /// A sink following one request in `one_in` (at least 1).
    pub fn one_in(one_in: u64) -> Self {
        let one_in = one_in.max(1);
        ExplainSink {
            groups: BTreeMap::new(),
            one_in,
            threshold: u64::MAX / one_in,
            followed: BTreeSet::new(),
            skipped_busy: 0,
        }
    }
}

impl Sink for ExplainSink {
    fn wants(&mut self, hash: u64, open: usize) -> bool {
        if hash > self.threshold {
            return false;
        }
        if open >= EXPLAIN_MAX_OPEN {
            self.skipped_busy += 1;
            return false;
        }
        self.followed.insert(hash)
    }

    fn finished(&mut self, life: Life) {
        if !self.followed.remove(&life.hash) || life.outcome != VisitEnd::Ok {
            return;
        }
        let g = self.groups.entry((life.source, life.class)).or_default();
        let latency = life.latency_ns();
        g.latency.record(latency);
        // Each component's parts, summed over the request's visits to it.
        let mut parts: BTreeMap<u32, ([u64; 5], u64)> = BTreeMap::new();
        for v in &life.visits {
            let e = parts.entry(v.group).or_default();
            e.1 += 1;
            for p in &v.phases {
                let i = PARTS.iter().position(|k| *k == p.kind).expect("a part");
                e.0[i] += p.to.since(p.from).0;
            }
            e.0[4] += v.network_ns();
        }
        for (group, (times, visits)) in &parts {
            let c = g.components.entry(*group).or_default();
            c.requests += 1;
            c.visits += visits;
            for (h, t) in c.parts.iter_mut().zip(times) {
                h.record(*t);
            }
        }
        let mut critical = BTreeMap::new();
        let mut v = 0;
        while v != NONE && (v as usize) < life.visits.len() {
            critical_path(&life, v, &mut critical);
            v = life.visits[v as usize].next;
        }
        for (group, ns) in &critical {
            g.components.entry(*group).or_default().critical_ns += u128::from(*ns);
        }
        let keep = ((g.latency.count() as f64 * 0.02).ceil() as usize).max(20);
        g.slow.push(Reverse((
            latency,
            life.hash,
            critical.into_iter().collect(),
        )));
        while g.slow.len() > keep {
            g.slow.pop();
        }
    }
}

/// Adds to `out`, by component, the time of visit `v` of `life` and of the calls on its
/// critical path.
fn critical_path(life: &Life, v: u32, out: &mut BTreeMap<u32, u64>) {
    let visit = &life.visits[v as usize];
    *out.entry(visit.group).or_default() += visit.network_ns();
    for p in &visit.phases {
        let d = p.to.since(p.from).0;
        if p.kind != PhaseKind::Calls || p.child == NONE {
            *out.entry(visit.group).or_default() += d;
            continue;
        }
        // The chain of visits the answer came through: the call, and the components it
        // was handed on to.
        let mut chain = vec![p.child];
        while let Some(prev) = life
            .visits
            .iter()
            .position(|x| x.next == *chain.last().expect("a visit"))
        {
            chain.push(prev as u32);
        }
        let head = &life.visits[*chain.last().expect("a visit") as usize];
        let last = &life.visits[p.child as usize];
        let spent = last.replied.since(head.sent).0.min(d);
        *out.entry(visit.group).or_default() += d - spent;
        for c in chain.iter().rev() {
            critical_path(life, *c, out);
        }
    }
}

/// Mean and 99th percentile of a time, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanP99 {
    /// Mean, ms.
    pub mean_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl MeanP99 {
    fn of(h: &WaitHistogram) -> Self {
        MeanP99 {
            mean_ms: h.mean_ns() / 1e6,
            p99_ms: h.quantile_ns(0.99) / 1e6,
        }
    }
}

/// Where a component's share of the requests' time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentTime {
    /// The component.
    pub component: String,
    /// Share of the requests that visited it.
    pub requests_share: f64,
    /// Visits per request that visited it.
    pub visits_per_request: f64,
    /// Per request that visited it: time in its queues.
    pub queue: MeanP99,
    /// Time in service (working).
    pub service: MeanP99,
    /// Time on the network, to it and back.
    pub network: MeanP99,
    /// Time waiting on the calls it made.
    pub calls: MeanP99,
    /// Time waiting for a retry of a call it made.
    pub backoff: MeanP99,
    /// Mean over all requests of the time on their critical path spent at this component
    /// (its queue, service, backoff, and network to it): these add up to the mean latency.
    pub critical_path_mean_ms: f64,
}

/// What the slowest requests waited on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowRequests {
    /// Their latency threshold: the p99, ms.
    pub p99_ms: f64,
    /// How many there were.
    pub requests: usize,
    /// Share of their time spent at each component on their critical path, largest first.
    pub critical_path: Vec<CriticalShare>,
}

/// One component's share of the slow requests' time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalShare {
    /// The component.
    pub component: String,
    /// Share of the slow requests' latency.
    pub share: f64,
}

/// Where the time of one workload's requests of one class went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The workload.
    pub workload: String,
    /// The class.
    pub class: String,
    /// Successful requests followed.
    pub requests: u64,
    /// Their mean latency, ms.
    pub latency_mean_ms: f64,
    /// Their p99 latency, ms.
    pub latency_p99_ms: f64,
    /// Per component on their path, in model order.
    pub components: Vec<ComponentTime>,
    /// What the slowest 1% waited on.
    pub slow: SlowRequests,
    /// The sample: one request in this many was followed.
    pub sampled_one_in: u64,
    /// Requests of the sample (of every workload) not followed because
    /// [`EXPLAIN_MAX_OPEN`] calls of followed requests were in flight when they arrived.
    pub not_followed_busy: u64,
}

impl ExplainSink {
    /// The breakdowns, per workload and class in model order.
    pub fn breakdowns(&self, names: &Names) -> Vec<Breakdown> {
        self.groups
            .iter()
            .map(|(&(source, class), g)| {
                let n = g.latency.count();
                let components = g
                    .components
                    .iter()
                    .map(|(&group, c)| ComponentTime {
                        component: names.group(group).to_string(),
                        requests_share: c.requests as f64 / n.max(1) as f64,
                        visits_per_request: c.visits as f64 / c.requests.max(1) as f64,
                        queue: MeanP99::of(&c.parts[0]),
                        service: MeanP99::of(&c.parts[1]),
                        calls: MeanP99::of(&c.parts[2]),
                        backoff: MeanP99::of(&c.parts[3]),
                        network: MeanP99::of(&c.parts[4]),
                        critical_path_mean_ms: c.critical_ns as f64 / n.max(1) as f64 / 1e6,
                    })
                    .collect();
                Breakdown {
                    workload: names.workload(source).to_string(),
                    class: names.class(class).to_string(),
                    requests: n,
                    latency_mean_ms: g.latency.mean_ns() / 1e6,
                    latency_p99_ms: g.latency.quantile_ns(0.99) / 1e6,
                    components,
                    slow: slow(g, names),
                    sampled_one_in: self.one_in,
                    not_followed_busy: self.skipped_busy,
                }
            })
            .collect()
    }
}

/// The slowest 1% of `g`'s requests (at least one), and where their time went.
fn slow(g: &Group, names: &Names) -> SlowRequests {
    let n = g.latency.count();
    let take = ((n as f64 * 0.01).ceil() as usize).max(1);
    let mut all: Vec<&SlowRequest> = g.slow.iter().map(|r| &r.0).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    all.truncate(take);
    let total: u128 = all.iter().map(|r| u128::from(r.0)).sum();
    let mut by: BTreeMap<u32, u128> = BTreeMap::new();
    for r in &all {
        for (group, ns) in &r.2 {
            *by.entry(*group).or_default() += u128::from(*ns);
        }
    }
    let mut critical_path: Vec<CriticalShare> = by
        .into_iter()
        .map(|(group, ns)| CriticalShare {
            component: names.group(group).to_string(),
            share: if total > 0 {
                ns as f64 / total as f64
            } else {
                0.0
            },
        })
        .collect();
    critical_path.sort_by(|a, b| b.share.total_cmp(&a.share));
    SlowRequests {
        p99_ms: g.latency.quantile_ns(0.99) / 1e6,
        requests: all.len(),
        critical_path,
    }
}

/// How the requests of `b` were sampled, for its title ("" when all were followed).
fn sample_text(b: &Breakdown) -> String {
    let mut text = String::new();
    if b.sampled_one_in > 1 {
        text = format!(" followed, 1 in {}", b.sampled_one_in);
    }
    if b.not_followed_busy > 0 {
        text += &format!(
            "; {} of the sample not followed while {EXPLAIN_MAX_OPEN} followed calls were in flight",
            b.not_followed_busy
        );
    }
    text
}

/// The breakdowns as the table `run --explain` prints.
pub fn explain_table(breakdowns: &[Breakdown]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in breakdowns {
        let _ = writeln!(
            out,
            "\nwhere the time went: workload {}, class {} ({} successful requests{}, mean {:.3} ms, p99 {:.3} ms)",
            b.workload,
            b.class,
            b.requests,
            sample_text(b),
            b.latency_mean_ms,
            b.latency_p99_ms
        );
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>19} {:>19} {:>19} {:>19} {:>19} {:>14}",
            "component",
            "visited",
            "visits",
            "queue mean/p99",
            "service mean/p99",
            "network mean/p99",
            "calls mean/p99",
            "backoff mean/p99",
            "critical mean"
        );
        let pair = |m: &MeanP99| format!("{:.3}/{:.3}", m.mean_ms, m.p99_ms);
        for c in &b.components {
            let _ = writeln!(
                out,
                "{:<20} {:>7.1}% {:>8.2} {:>19} {:>19} {:>19} {:>19} {:>19} {:>14.3}",
                c.component,
                c.requests_share * 100.0,
                c.visits_per_request,
                pair(&c.queue),
                pair(&c.service),
                pair(&c.network),
                pair(&c.calls),
                pair(&c.backoff),
                c.critical_path_mean_ms
            );
        }
        let sum: f64 = b.components.iter().map(|c| c.critical_path_mean_ms).sum();
        let _ = writeln!(
            out,
            "times in ms, per request that visited the component; critical means add up to {sum:.3} ms (the mean latency)"
        );
        let named: Vec<String> = b
            .slow
            .critical_path
            .iter()
            .filter(|c| c.share >= 0.005)
            .map(|c| format!("{} {:.0}%", c.component, c.share * 100.0))
            .collect();
        let _ = writeln!(
            out,
            "slow requests (p99 {:.3} ms and above, {}): their time on the critical path went to {}",
            b.slow.p99_ms,
            b.slow.requests,
            named.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::mix64;

    #[test]
    fn the_sample_takes_one_in_k_by_hash_and_none_while_too_many_calls_are_in_flight() {
        let mut sink = ExplainSink::one_in(4);
        let taken = (0..40_000u64).filter(|i| sink.wants(mix64(*i), 0)).count();
        assert!((9_500..10_500).contains(&taken), "{taken} of 40,000 taken");
        let mut busy = ExplainSink::one_in(1);
        assert!(busy.wants(1, EXPLAIN_MAX_OPEN - 1));
        assert!(!busy.wants(2, EXPLAIN_MAX_OPEN));
        assert_eq!(busy.skipped_busy, 1);
        // A request it did not take is not added up when it ends (a trace followed it).
        assert!(!busy.followed.contains(&2));
        assert!(busy.followed.contains(&1));
    }
}
