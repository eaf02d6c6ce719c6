//! What the call policies of a run did, per edge (`caller->callee`), for the results.

use crate::engine::guard::Edge;
use crate::model::Model;
use crate::policy::slots::SlotsKind;
use crate::time::SimTime;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// One edge's counts over the measurement window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EdgeResult {
    /// The calling component.
    pub caller: String,
    /// The called component.
    pub callee: String,
    /// Calls the caller's instances made (each answered once).
    pub calls: u64,
    /// Attempts sent to the callee: first attempts and retries.
    pub attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Attempts per call (1 without retries).
    pub attempts_per_call: f64,
    /// Attempts per original client request (arrived in the window, all workloads).
    pub attempts_per_request: f64,
    /// Attempts abandoned at the policy's timeout (their work went on).
    pub timeouts: u64,
    /// Replies of abandoned attempts that came back later (work nobody waited for).
    pub late_replies: u64,
    /// Calls answered with the callee's success.
    pub succeeded: u64,
    /// Calls answered as failed.
    pub failed: u64,
    /// Attempts failed at once by an open circuit breaker.
    pub circuit_open: u64,
    /// Failed calls answered by the fallback as a success (graceful degradation).
    pub degraded: u64,
    /// Retries not sent for want of retry budget.
    pub budget_exhausted: u64,
    /// With a breaker: its changes of state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerResult>,
    /// With a bulkhead: its slots (permits), waits and refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<SlotsResult>,
    /// With a connection pool: its connections, waits and timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<SlotsResult>,
    /// With a hedge: the second copies sent and how they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeResult>,
}

/// A hedge's measurement window on one edge (all caller instances).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HedgeResult {
    /// Hedge copies sent (each also counted in `attempts`).
    pub hedges: u64,
    /// Hedges per call: the extra load the hedge puts on the callee.
    pub hedges_per_call: f64,
    /// Calls answered by their hedge copy.
    pub wins: u64,
    /// Hedges due but not sent: no token in the `max_extra` budget, no free bulkhead or
    /// pool slot, an open breaker, or no other instance to go to.
    pub skipped: u64,
    /// Losing copies the callee dropped unserved (`cancel`).
    pub cancelled: u64,
    /// Replies of the other losing copies, ignored.
    pub ignored: u64,
    /// The hedge delay at the end of the run, ms: the fixed `delay`, or the percentile
    /// of the reply times seen (at least `delay`).
    pub delay_ms: f64,
}

/// A bulkhead's or a connection pool's measurement window on one edge (all caller
/// instances).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SlotsResult {
    /// Slots per caller instance (`max_concurrent`, or the pool's `size`).
    pub size: u32,
    /// Slots taken: one per attempt sent.
    pub acquired: u64,
    /// Of those, taken after a wait in the queue.
    pub queued: u64,
    /// Mean wait for a slot over every one taken (0 for those free at once), ms.
    pub wait_mean_ms: f64,
    /// 99th percentile of that wait, ms.
    pub wait_p99_ms: f64,
    /// Longest wait, ms.
    pub wait_max_ms: f64,
    /// Time mean of the slots in use over all the caller's slots (size × instances), 0..1.
    pub utilization: f64,
    /// Bulkhead: calls refused at once, its queue full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead_full: Option<u64>,
    /// Pool: calls that gave up at the acquire timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_timeout: Option<u64>,
}

/// A breaker's changes of state on one edge (all caller instances).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BreakerResult {
    /// Times a breaker opened in the measurement window.
    pub opened: u64,
    /// Times one went half open.
    pub half_opened: u64,
    /// Times one closed again.
    pub closed: u64,
    /// Every change over the run, in time order (at most 10,000).
    pub changes: Vec<BreakerChangeResult>,
}

/// One change of a breaker's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BreakerChangeResult {
    /// When, seconds of simulated time.
    pub at_s: f64,
    /// The caller instance whose breaker it is.
    pub instance: String,
    /// The new state: open, half_open or closed.
    pub state: String,
}

/// The results of `edges` (the guard's, in the model's order) of a run of `model` whose
/// measurement window ended at `end`.
pub fn edges(
    model: &Model,
    edges: &[Edge],
    requests: u64,
    end: SimTime,
) -> IndexMap<String, EdgeResult> {
    edges
        .iter()
        .map(|e| {
            let caller = &model.components[e.caller as usize];
            let callee = &model.components[e.callee as usize];
            let s = e.stats;
            let breaker = e.policy.breaker.map(|_| BreakerResult {
                opened: s.opened,
                half_opened: s.half_opened,
                closed: s.closed,
                changes: e
                    .changes
                    .iter()
                    .map(|c| BreakerChangeResult {
                        at_s: c.at.as_secs_f64(),
                        instance: caller.instance_name(c.instance - caller.first_instance),
                        state: c.state.name().to_string(),
                    })
                    .collect(),
            });
            let slots = e.policy.slots.map(|p| {
                let w = e.waits.summary();
                let pool = p.kind == SlotsKind::Pool;
                SlotsResult {
                    size: p.size,
                    acquired: s.acquired,
                    queued: s.queued,
                    wait_mean_ms: w.mean_ms,
                    wait_p99_ms: w.p99_ms,
                    wait_max_ms: w.max_ms,
                    utilization: e.usage.mean(end)
                        / (f64::from(p.size) * f64::from(caller.replicas)),
                    bulkhead_full: (!pool).then_some(s.bulkhead_full),
                    pool_timeout: pool.then_some(s.pool_timeout),
                }
            });
            let (bulkhead, pool) = match e.policy.slots.map(|p| p.kind) {
                Some(SlotsKind::Bulkhead) => (slots, None),
                Some(SlotsKind::Pool) => (None, slots),
                None => (None, None),
            };
            let hedge = e.policy.hedge.map(|h| HedgeResult {
                hedges: s.hedges,
                hedges_per_call: per(s.hedges, s.calls),
                wins: s.hedge_wins,
                skipped: s.hedges_skipped,
                cancelled: s.hedges_cancelled,
                ignored: s.hedges_ignored,
                delay_ms: h.delay(e.reply_times()).0 as f64 / 1e6,
            });
            let result = EdgeResult {
                caller: caller.name.clone(),
                callee: callee.name.clone(),
                calls: s.calls,
                attempts: s.attempts,
                retries: s.retries,
                attempts_per_call: if s.calls > 0 {
                    s.attempts as f64 / s.calls as f64
                } else {
                    0.0
                },
                attempts_per_request: per(s.attempts, requests),
                timeouts: s.timeouts,
                late_replies: s.late_replies,
                succeeded: s.succeeded,
                failed: s.failed,
                circuit_open: s.circuit_open,
                degraded: s.degraded,
                budget_exhausted: s.budget_exhausted,
                breaker,
                bulkhead,
                pool,
                hedge,
            };
            (super::edge_name(&caller.name, &callee.name), result)
        })
        .collect()
}

/// `n` per `of` (0 when `of` is 0).
fn per(n: u64, of: u64) -> f64 {
    if of > 0 { n as f64 / of as f64 } else { 0.0 }
}

/// The tiers whose retry amplification is reported, in the model's order: the callees of
/// call policies and the targets of workloads with client retries.
pub fn amplified_tiers(model: &Model) -> Vec<u32> {
    let mut tiers: Vec<u32> = model.calls.iter().map(|e| e.callee as u32).collect();
    tiers.extend(
        model
            .workloads
            .iter()
            .filter(|w| w.retries.is_some())
            .map(|w| w.target),
    );
    tiers.sort_unstable();
    tiers.dedup();
    tiers
}

/// Attempts sent so far by each workload's clients (first attempts and client retries;
/// 0 for a workload without client retries, whose requests are no retry traffic).
pub type ClientAttempts = Vec<u64>;

/// Attempts reaching `tier`: through the call policies of `edges` and from the clients
/// of the workloads that target it with retries (`client`, per workload).
fn attempts_at(model: &Model, tier: u32, edges: &[Edge], client: &[u64]) -> u64 {
    let called: u64 = edges
        .iter()
        .filter(|e| e.callee == tier)
        .map(|e| e.stats.attempts)
        .sum();
    let sent: u64 = model
        .workloads
        .iter()
        .zip(client)
        .filter(|(w, _)| w.retries.is_some() && w.target == tier)
        .map(|(_, n)| n)
        .sum();
    called + sent
}

/// Attempts reaching each amplified tier ([`amplified_tiers`]) per original request
/// (`requests` arrived): over every guarded caller of it and the retrying clients sending
/// to it, tiers in the model's order.
pub fn amplification(
    model: &Model,
    edges: &[Edge],
    client: &[u64],
    requests: u64,
) -> IndexMap<String, f64> {
    amplified_tiers(model)
        .into_iter()
        .map(|c| {
            (
                model.components[c as usize].name.clone(),
                per(attempts_at(model, c, edges, client), requests),
            )
        })
        .collect()
}

/// Retry amplification per time window: the attempts reaching each amplified tier in a
/// window per client request that arrived in it, cut afterwards from the edges' and the
/// clients' attempt counts and the workloads' arrivals taken at each window's end (as the
/// other series: nothing is counted per attempt beyond those counts). A window without
/// arrivals has 0; windows before the end of warm-up have 0.
#[derive(Debug, Clone)]
pub struct AmplificationWindows {
    /// The tiers, in the model's order.
    tiers: Vec<u32>,
    /// Each tier's attempts and the requests at the previous window end.
    prev: Vec<u64>,
    prev_requests: u64,
    /// One list per tier.
    values: Vec<Vec<f64>>,
}

impl AmplificationWindows {
    /// Empty series for the amplified tiers of `model` (none without call policies or
    /// client retries).
    pub fn new(model: &Model) -> Self {
        let tiers = amplified_tiers(model);
        AmplificationWindows {
            prev: vec![0; tiers.len()],
            prev_requests: 0,
            values: vec![Vec::new(); tiers.len()],
            tiers,
        }
    }
    /// True when there is no tier to follow.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }
    /// The window ending now is over: `edges` and the clients' attempts (`client`) as they
    /// stand and the `requests` arrived since measurement began; `measuring` false for a
    /// window ending before it began.
    pub fn push(
        &mut self,
        model: &Model,
        edges: &[Edge],
        client: &[u64],
        requests: u64,
        measuring: bool,
    ) {
        if !measuring {
            self.prev.iter_mut().for_each(|p| *p = 0);
            self.prev_requests = 0;
            self.values.iter_mut().for_each(|v| v.push(0.0));
            return;
        }
        let arrived = requests.saturating_sub(self.prev_requests);
        self.prev_requests = requests;
        for ((&tier, prev), values) in self.tiers.iter().zip(&mut self.prev).zip(&mut self.values) {
            let attempts = attempts_at(model, tier, edges, client);
            values.push(per(attempts.saturating_sub(*prev), arrived));
            *prev = attempts;
        }
    }
    /// The series per tier name, each cut or padded to `len` windows.
    pub fn finish(self, model: &Model, len: usize) -> IndexMap<String, Vec<f64>> {
        self.tiers
            .into_iter()
            .zip(self.values)
            .map(|(c, mut v)| {
                v.resize(len, 0.0);
                (model.components[c as usize].name.clone(), v)
            })
            .collect()
    }
}

/// The CSV rows of edge `e`: (metric, value), counts as numbers.
pub fn edge_rows(e: &EdgeResult) -> Vec<(&'static str, f64)> {
    let mut rows = vec![
        ("calls", e.calls as f64),
        ("attempts", e.attempts as f64),
        ("retries", e.retries as f64),
        ("attempts_per_call", e.attempts_per_call),
        ("attempts_per_request", e.attempts_per_request),
        ("timeouts", e.timeouts as f64),
        ("late_replies", e.late_replies as f64),
        ("succeeded", e.succeeded as f64),
        ("failed", e.failed as f64),
        ("circuit_open", e.circuit_open as f64),
        ("degraded", e.degraded as f64),
        ("budget_exhausted", e.budget_exhausted as f64),
    ];
    if let Some(b) = &e.breaker {
        rows.push(("breaker_opened", b.opened as f64));
        rows.push(("breaker_half_opened", b.half_opened as f64));
        rows.push(("breaker_closed", b.closed as f64));
    }
    let names = [
        (
            &e.bulkhead,
            [
                "bulkhead_acquired",
                "bulkhead_queued",
                "bulkhead_wait_mean_ms",
                "bulkhead_wait_p99_ms",
                "bulkhead_utilization",
            ],
        ),
        (
            &e.pool,
            [
                "pool_acquired",
                "pool_queued",
                "pool_wait_mean_ms",
                "pool_wait_p99_ms",
                "pool_utilization",
            ],
        ),
    ];
    if let Some(h) = &e.hedge {
        rows.push(("hedges", h.hedges as f64));
        rows.push(("hedges_per_call", h.hedges_per_call));
        rows.push(("hedge_wins", h.wins as f64));
        rows.push(("hedges_skipped", h.skipped as f64));
        rows.push(("hedges_cancelled", h.cancelled as f64));
        rows.push(("hedges_ignored", h.ignored as f64));
        rows.push(("hedge_delay_ms", h.delay_ms));
    }
    for (s, [acquired, queued, mean, p99, utilization]) in names {
        let Some(s) = s else { continue };
        rows.push((acquired, s.acquired as f64));
        rows.push((queued, s.queued as f64));
        rows.push((mean, s.wait_mean_ms));
        rows.push((p99, s.wait_p99_ms));
        rows.push((utilization, s.utilization));
        if let Some(n) = s.bulkhead_full {
            rows.push(("bulkhead_full", n as f64));
        }
        if let Some(n) = s.pool_timeout {
            rows.push(("pool_timeout", n as f64));
        }
    }
    rows
}

/// The terminal's "Call policies" section: a row per edge of the first run.
pub fn edge_table(r: &crate::results::RunResult) -> String {
    use crate::report::table::{new_table, num};
    let mut t = new_table(&[
        "edge",
        "calls",
        "attempts",
        "per call",
        "per request",
        "timeouts",
        "late replies",
        "failed",
        "circuit open",
        "degraded",
        "no budget",
        "breaker opened",
    ]);
    for (name, e) in &r.edges {
        t.add_row(vec![
            name.clone(),
            e.calls.to_string(),
            e.attempts.to_string(),
            num(e.attempts_per_call),
            num(e.attempts_per_request),
            e.timeouts.to_string(),
            e.late_replies.to_string(),
            e.failed.to_string(),
            e.circuit_open.to_string(),
            e.degraded.to_string(),
            e.budget_exhausted.to_string(),
            e.breaker
                .as_ref()
                .map_or("-".to_string(), |b| b.opened.to_string()),
        ]);
    }
    let mut out = format!(
        "Call policies (per caller -> callee; late replies: of attempts abandoned at their timeout)\n{t}\n"
    );
    let limited: Vec<_> = r
        .edges
        .iter()
        .filter_map(|(name, e)| {
            e.bulkhead
                .as_ref()
                .map(|s| (name, "bulkhead", s))
                .or(e.pool.as_ref().map(|s| (name, "pool", s)))
        })
        .collect();
    if !limited.is_empty() {
        let mut t = new_table(&[
            "edge",
            "kind",
            "size",
            "acquired",
            "queued",
            "wait mean ms",
            "wait p99 ms",
            "utilization",
            "refused",
        ]);
        for (name, kind, s) in limited {
            t.add_row(vec![
                name.clone(),
                kind.to_string(),
                s.size.to_string(),
                s.acquired.to_string(),
                s.queued.to_string(),
                num(s.wait_mean_ms),
                num(s.wait_p99_ms),
                num(s.utilization),
                s.bulkhead_full
                    .or(s.pool_timeout)
                    .map_or("-".to_string(), |n| n.to_string()),
            ]);
        }
        out.push_str(&format!(
            "Bulkheads and pools (per caller instance; refused: bulkhead_full or pool_timeout)\n{t}\n"
        ));
    }
    let hedged: Vec<_> = r
        .edges
        .iter()
        .filter_map(|(name, e)| e.hedge.as_ref().map(|h| (name, h)))
        .collect();
    if !hedged.is_empty() {
        let mut t = new_table(&[
            "edge",
            "hedges",
            "per call",
            "won",
            "skipped",
            "cancelled",
            "ignored",
            "delay ms",
        ]);
        for (name, h) in hedged {
            t.add_row(vec![
                name.clone(),
                h.hedges.to_string(),
                num(h.hedges_per_call),
                h.wins.to_string(),
                h.skipped.to_string(),
                h.cancelled.to_string(),
                h.ignored.to_string(),
                num(h.delay_ms),
            ]);
        }
        out.push_str(&format!(
            "Hedges (per call: the extra load; won: calls the hedge answered; cancelled / ignored: the losing copies dropped unserved / served and ignored)\n{t}\n"
        ));
    }
    out
}
