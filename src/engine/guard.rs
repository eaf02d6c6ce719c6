//! The guard: where call policies (`crate::policy`) act on calls, for every component kind
//! the same way. A model without a `calls_to` has no guard and pays one untaken branch
//! where calls leave ([`Context::call_group`], [`Context::call_instance`]) and where
//! replies return (the run loop's `Event::Reply`).
//!
//! # How a guarded call runs
//!
//! A call from an instance of component A to component B, where A's `calls_to` names B,
//! is split in two:
//!
//! - the **logical call** `L`: the child the component asked for, returned to it as usual.
//!   It stays in the call slab, never sent (its `instance` is [`NOBODY`] while it is out,
//!   so a crash of any instance leaves it alone), until the guard answers it;
//! - its **attempts**: each a copy of `L` made when it leaves (so fields the component set
//!   on `L` after asking, such as a `set`'s version, go with it), sent to an instance the
//!   callee's group picks (or, for a call to a given instance, that instance while it is
//!   up). The callee sees an ordinary call; its reply comes back to the caller instance,
//!   where the guard takes it before the component.
//!
//! The first attempt leaves through a policy event ([`Event::Guard`] `LAUNCH`) at the same
//! instant, after the component's handler returns. Then:
//!
//! - a reply of the current attempt: success answers `L`; a failure answers it failed (or,
//!   with a fallback, as a success counted degraded), or, with retries, sends a new attempt
//!   after the backoff (`RETRY`);
//! - `TIMEOUT` (the policy's per-attempt timeout): the attempt is abandoned and fails as
//!   `timeout` for the caller, while the callee's work goes on; when its real reply comes
//!   later it is absorbed here and counted `late_replies` (the component already had its
//!   one answer for `L`: delivering a second would break the exact outstanding counts of a
//!   balancer or the flush counts of a cache);
//! - a circuit breaker (per caller instance) may refuse an attempt before it leaves: it
//!   fails at once with `circuit_open`;
//! - a hedge ([`crate::policy::hedge`]): `HEDGE`, the hedge delay after an attempt
//!   left, finds it still without a reply: a second copy leaves to another instance of
//!   the callee (the group's pick, picked again when it is the first one's), provided the
//!   hedge budget (`max_extra`) has a token, the bulkhead or pool a free slot (a hedge
//!   never waits for one) and the breaker admits it; otherwise no hedge is sent (counted
//!   `hedges_skipped`, not a failure). The two copies race: the first success answers
//!   `L` and the other loses (its reply, when it comes, is counted `hedges_ignored`, or
//!   `hedges_cancelled` when the callee dropped it unserved: with `cancel`, a service
//!   drops a loser still in its queue); a copy that fails while the other is out only
//!   tells the breaker, and `L` is retried (or fails) when both failed. Each copy counts
//!   as an attempt (amplification), holds its own slot and has its own timeout;
//! - a bulkhead or a connection pool (per caller instance, [`crate::policy::slots`]): an
//!   attempt leaves holding a slot, given back at its reply or its timeout; with none
//!   free the call waits first in, first out (`L` stays in the slab, its record marked
//!   waiting), and a slot given back goes straight to the first waiter, whose attempt
//!   leaves through `GRANTED`; a full bulkhead queue fails the call at once with
//!   `bulkhead_full`, a pool waiter fails `pool_timeout` at `ACQUIRE_TIMEOUT`.
//!
//! `L` is answered by calling the component's `on_reply` directly, with `current` as for
//! any child: false when its parent no longer waits (the caller crashed, or moved on).
//!
//! # Growing it
//!
//! Each attempt and each logical call has a [`Record`] in a side table indexed by call id
//! (a [`Call`] is a full cache line and gets no field). A policy that holds an attempt
//! before it leaves (a bulkhead, a connection pool) hooks [`Context::send_attempt`]: it
//! may keep `L` waiting and send it later by scheduling `Event::Guard { what: RETRY, .. }`
//! for it. A policy that sends a second copy (a hedge) schedules its own `what` and, when
//! it fires, sends another attempt of the same `L`; the first reply that comes back answers
//! `L` (the other becomes late). Per caller instance state (breakers) is allocated here
//! when the run is built.

use super::call::{Call, Outcome};
use super::clients::Clients;
use super::context::{Context, Group, NOBODY};
use super::event::{CallId, Event, InstanceId};
use crate::metrics::ErrorCause;
use crate::metrics::WaitHistogram;
use crate::policy::breaker::{Admit, Breaker, BreakerState};
use crate::policy::hedge::ReplyTimes;
use crate::policy::retry::{BudgetParams, RetryBudget};
use crate::policy::slots::{Acquire, Slots, Usage, Waiter};
use crate::policy::{CallPolicy, EdgePolicy};
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};

/// `Event::Guard` `what`: the first attempt of a logical call leaves.
pub const LAUNCH: u32 = 0;
/// `Event::Guard` `what`: an attempt's timeout expires.
pub const TIMEOUT: u32 = 1;
/// `Event::Guard` `what`: a new attempt of a logical call leaves (after a backoff).
pub const RETRY: u32 = 2;
/// `Event::Guard` `what`: a waiting logical call was handed a slot: its attempt leaves.
pub const GRANTED: u32 = 3;
/// `Event::Guard` `what`: a logical call waiting for a pool connection gives up.
pub const ACQUIRE_TIMEOUT: u32 = 4;
/// `Event::Guard` `what`: an attempt's hedge delay is over: if it has no reply yet, a
/// second copy leaves.
pub const HEDGE: u32 = 5;

/// No call, no edge.
const NONE: u32 = u32::MAX;

/// The window of a hedge budget: hedges are at most `max_extra` of the calls of the last
/// ten seconds.
const HEDGE_BUDGET_TTL: SimDuration = SimDuration(10_000_000_000);

/// A guarded call is finished: the instance that made it, a copy of it (already freed),
/// and whether its parent still waits for it.
pub type Delivery = (InstanceId, Call, bool);

/// What a call is to the guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Role {
    /// Nothing (unguarded, or finished).
    #[default]
    None,
    /// A component's call, answered by the guard.
    Logical,
    /// One attempt of a logical call, sent to the callee.
    Attempt,
}

/// The guard's record of one call, by call id.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    /// Generation of the call slot it is about.
    generation: u32,
    role: Role,
    /// The edge whose policy applies.
    edge: u32,
    /// Logical: its attempt out now (`NONE` when none); attempt: its logical call.
    other: CallId,
    /// Generation of `other`.
    other_generation: u32,
    /// Logical: attempts sent so far.
    attempts: u32,
    /// Logical: attempts tried so far (sent, or failed before leaving).
    tries: u32,
    /// Logical: the last backoff, nanoseconds (for decorrelated jitter).
    prev_wait: u64,
    /// Logical: the instance asked for ([`NOBODY`]: the group's pick); attempt: the
    /// instance it went to.
    target: InstanceId,
    /// Logical: the callee's group.
    group: u32,
    /// Logical: the instance the last attempt went to.
    last_to: InstanceId,
    /// Attempt: when it left; logical: when it began to wait for a slot.
    sent: SimTime,
    /// Attempt: it holds a slot of its edge's bulkhead or pool.
    holds: bool,
    /// Logical: it waits for a slot.
    waiting: bool,
    /// Logical: the hedge copy out now (`NONE` when none).
    second: CallId,
    /// Generation of `second`.
    second_generation: u32,
    /// Attempt: the other copy answered the call first.
    lost: bool,
}

/// What happened on one edge in the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Calls the caller made (logical calls).
    pub calls: u64,
    /// Attempts sent to the callee (first attempts and retries).
    pub attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Attempts abandoned at their timeout.
    pub timeouts: u64,
    /// Replies of abandoned attempts (the callee's work that nobody waited for).
    pub late_replies: u64,
    /// Calls answered as a success.
    pub succeeded: u64,
    /// Calls answered as a failure.
    pub failed: u64,
    /// Attempts refused at once by an open breaker.
    pub circuit_open: u64,
    /// Failed calls answered by the fallback.
    pub degraded: u64,
    /// Retries not sent for want of budget.
    pub budget_exhausted: u64,
    /// Breaker transitions to open, half open and closed.
    pub opened: u64,
    /// See `opened`.
    pub half_opened: u64,
    /// See `opened`.
    pub closed: u64,
    /// Calls refused at once by a full bulkhead queue.
    pub bulkhead_full: u64,
    /// Calls that gave up waiting for a pool connection.
    pub pool_timeout: u64,
    /// Slots taken (bulkhead permits, pool connections): one per attempt sent.
    pub acquired: u64,
    /// Of those, the ones that had to wait.
    pub queued: u64,
    /// Hedge copies sent (each also counts in `attempts`).
    pub hedges: u64,
    /// Calls answered by their hedge copy.
    pub hedge_wins: u64,
    /// Hedges due but not sent: no token in the hedge budget, no free slot, an open
    /// breaker, or no other instance.
    pub hedges_skipped: u64,
    /// Losing copies the callee dropped unserved (`cancel`).
    pub hedges_cancelled: u64,
    /// Replies of the other losing copies, ignored.
    pub hedges_ignored: u64,
}

/// A breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerChange {
    /// When.
    pub at: SimTime,
    /// Which caller instance's breaker.
    pub instance: InstanceId,
    /// The new state.
    pub state: BreakerState,
}

/// Breaker changes kept per edge; later ones are counted only.
pub const MAX_CHANGES: usize = 10_000;

/// One caller component's calls to one callee, with their policy and state.
#[derive(Debug)]
pub struct Edge {
    /// Caller group.
    pub caller: u32,
    /// Callee group.
    pub callee: u32,
    /// What applies.
    pub policy: CallPolicy,
    /// The caller's first instance (the others follow).
    first_instance: InstanceId,
    /// A breaker per caller instance (empty without a breaker).
    breakers: Vec<Breaker>,
    /// A retry budget per caller instance (empty without one).
    budgets: Vec<RetryBudget>,
    /// The backoff draws of each caller instance (empty without retries), each from a
    /// stream of its own, so retries move no other draw.
    rngs: Vec<Rng>,
    /// Counts in the measurement window.
    pub stats: EdgeStats,
    /// Breaker state changes over the whole run, in time order (at most [`MAX_CHANGES`]).
    pub changes: Vec<BreakerChange>,
    /// The bulkhead's or pool's slots per caller instance (empty without one).
    slots: Vec<Slots>,
    /// Slots in use over time, all caller instances (the measurement window's).
    pub usage: Usage,
    /// How long each slot taken in the window was waited for (0: at once).
    pub waits: WaitHistogram,
    /// With a hedge `after` a percentile: the reply times seen, all caller instances.
    reply_times: Option<ReplyTimes>,
    /// With a hedge's `max_extra`: a hedge budget per caller instance.
    hedge_budgets: Vec<RetryBudget>,
}

impl Edge {
    /// The reply times seen, with a hedge after a percentile.
    pub fn reply_times(&self) -> Option<&ReplyTimes> {
        self.reply_times.as_ref()
    }
}

/// The guard of a run: the edges with a policy, and a record per guarded call.
#[derive(Debug)]
pub struct Guards {
    groups: usize,
    /// Edge index by caller group × groups + callee group; `NONE` for no policy.
    edge_of: Vec<u32>,
    /// Edges in the model's order.
    pub edges: Vec<Edge>,
    /// By call id.
    records: Vec<Record>,
}

impl Guards {
    /// The guard of `edges` over `groups` (each group's instances numbered in a row), in a
    /// run seeded `seed`: instance `i` of a caller draws its backoffs to callee `callee`
    /// from the stream `caller[i]:retry:callee`. Slot usage counts from `warmup_end`.
    pub fn new(edges: &[EdgePolicy], groups: &[Group], seed: u64, warmup_end: SimTime) -> Self {
        let n = groups.len();
        let mut edge_of = vec![NONE; n * n];
        let edges = edges
            .iter()
            .enumerate()
            .map(|(i, e)| {
                edge_of[e.caller * n + e.callee] = i as u32;
                let members = groups[e.caller].members();
                let first_instance = members.first().copied().unwrap_or(0);
                debug_assert!(
                    members
                        .iter()
                        .enumerate()
                        .all(|(k, m)| *m == first_instance + k as u32)
                );
                let breakers = match &e.policy.breaker {
                    Some(p) => vec![Breaker::new(p); members.len()],
                    None => Vec::new(),
                };
                let (budgets, rngs) = match &e.policy.retry {
                    Some(r) => (
                        (0..members.len()).filter_map(|_| r.new_budget()).collect(),
                        (0..members.len())
                            .map(|i| {
                                let name = format!(
                                    "{}[{i}]:retry:{}",
                                    groups[e.caller].name, groups[e.callee].name
                                );
                                crate::random::stream(seed, &name)
                            })
                            .collect(),
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                Edge {
                    caller: e.caller as u32,
                    callee: e.callee as u32,
                    policy: e.policy.clone(),
                    first_instance,
                    breakers,
                    budgets,
                    rngs,
                    stats: EdgeStats::default(),
                    changes: Vec::new(),
                    slots: match e.policy.slots {
                        Some(_) => vec![Slots::default(); members.len()],
                        None => Vec::new(),
                    },
                    usage: Usage::new(warmup_end),
                    waits: WaitHistogram::new(),
                    reply_times: e.policy.hedge.and_then(|h| h.quantile).map(ReplyTimes::new),
                    hedge_budgets: match e.policy.hedge.and_then(|h| h.max_extra) {
                        Some(ratio) => {
                            let p = BudgetParams {
                                ratio,
                                min_per_s: 0.0,
                                ttl: HEDGE_BUDGET_TTL,
                            };
                            vec![RetryBudget::new(p); members.len()]
                        }
                        None => Vec::new(),
                    },
                }
            })
            .collect();
        Guards {
            groups: n,
            edge_of,
            edges,
            records: vec![Record::default(); 1024],
        }
    }

    /// The edge of calls from group `caller` to group `callee`, or `NONE`.
    #[inline]
    fn edge(&self, caller: u32, callee: u32) -> u32 {
        self.edge_of[caller as usize * self.groups + callee as usize]
    }

    /// The record of call `id`, made room for.
    #[inline]
    fn record_mut(&mut self, id: CallId) -> &mut Record {
        let i = id as usize;
        if i >= self.records.len() {
            let len = (i + 1).max(self.records.len() * 2);
            self.records.resize(len, Record::default());
        }
        &mut self.records[i]
    }

    /// The record of call `id` of generation `generation`, if it has one.
    #[inline]
    fn record(&self, id: CallId, generation: u32) -> Option<&Record> {
        self.records
            .get(id as usize)
            .filter(|r| r.role != Role::None && r.generation == generation)
    }

    /// True when `call` (of generation `generation`) is an attempt its caller abandoned at
    /// its timeout: nobody waits for its answer any more.
    pub fn is_abandoned(&self, call: CallId, generation: u32) -> bool {
        let Some(r) = self.record(call, generation) else {
            return false;
        };
        r.role == Role::Attempt
            && self
                .record(r.other, r.other_generation)
                .is_none_or(|l| l.other != call && l.second != call)
    }

    /// Notes that the breaker of caller instance `instance` on edge `edge` changed to
    /// `state` at `now`.
    fn changed(
        &mut self,
        edge: u32,
        instance: InstanceId,
        state: BreakerState,
        now: SimTime,
        measuring: bool,
    ) {
        let e = &mut self.edges[edge as usize];
        if measuring {
            match state {
                BreakerState::Open => e.stats.opened += 1,
                BreakerState::HalfOpen => e.stats.half_opened += 1,
                BreakerState::Closed => e.stats.closed += 1,
            }
        }
        if e.changes.len() < MAX_CHANGES {
            e.changes.push(BreakerChange {
                at: now,
                instance,
                state,
            });
        }
    }

    /// Counts on edge `edge`, when measuring.
    #[inline]
    fn stats(&mut self, edge: u32, measuring: bool) -> Option<&mut EdgeStats> {
        measuring.then(|| &mut self.edges[edge as usize].stats)
    }
}

impl<C: Clients + ?Sized> Context<C> {
    /// True when a call policy's timer for `call` (of generation `generation`) still means
    /// something: the call has a policy record of that generation. A timer that does not
    /// is ignored by [`Context::guard_event`].
    pub(super) fn guard_is_live(&self, call: CallId, generation: u32) -> bool {
        self.guards
            .as_deref()
            .is_some_and(|g| g.record(call, generation).is_some())
    }

    /// A call from instance `from` (for its call `parent`) to group `group`: to the
    /// group's pick, or to instance `target` unless it is [`NOBODY`]. Out of line: only in
    /// a model with a guard.
    #[cold]
    #[inline(never)]
    pub(super) fn guarded_call(
        &mut self,
        from: InstanceId,
        parent: CallId,
        group: u32,
        target: InstanceId,
        op: u8,
    ) -> CallId {
        let guards = self.guards.as_deref().expect("a guarded call has a guard");
        let edge = guards.edge(self.group_of[from as usize], group);
        if edge == NONE {
            return if target != NOBODY {
                self.send_child(from, parent, target, op)
            } else {
                self.pick_and_send(from, parent, group, op)
            };
        }
        let id = self.calls.insert(self.child_call(from, parent, NOBODY, op));
        let generation = self.calls.get(id).generation;
        let measuring = self.measuring;
        let guards = self.guards.as_deref_mut().expect("a guard");
        *guards.record_mut(id) = Record {
            generation,
            role: Role::Logical,
            edge,
            other: NONE,
            other_generation: 0,
            attempts: 0,
            tries: 0,
            prev_wait: 0,
            target,
            group,
            last_to: NOBODY,
            sent: SimTime(0),
            holds: false,
            waiting: false,
            second: NONE,
            second_generation: 0,
            lost: false,
        };
        if let Some(s) = guards.stats(edge, measuring) {
            s.calls += 1;
        }
        self.calendar.schedule_now(Event::Guard {
            what: LAUNCH,
            call: id,
            generation,
        });
        id
    }

    /// A policy event (see [`Event::Guard`]) fires. Returns the logical call it answered,
    /// if it did.
    pub(crate) fn guard_event(
        &mut self,
        what: u32,
        call: CallId,
        generation: u32,
    ) -> Option<Delivery> {
        let guards = self.guards.as_deref()?;
        let r = *guards.record(call, generation)?;
        match (what, r.role) {
            (LAUNCH | RETRY, Role::Logical) => self.send_attempt(call),
            (GRANTED, Role::Logical) => self.granted(call),
            (ACQUIRE_TIMEOUT, Role::Logical) => self.acquire_timeout(call, r),
            (TIMEOUT, Role::Attempt) => {
                let logical = r.other;
                let l = *guards.record(logical, r.other_generation)?;
                let primary = l.other == call;
                if !primary && l.second != call {
                    return None;
                }
                let measuring = self.measuring;
                let guards = self.guards.as_deref_mut().expect("a guard");
                let lr = &mut guards.records[logical as usize];
                let rival = if primary {
                    lr.other = NONE;
                    lr.second
                } else {
                    lr.second = NONE;
                    lr.other
                };
                if let Some(s) = guards.stats(r.edge, measuring) {
                    s.timeouts += 1;
                }
                if r.holds {
                    guards.records[call as usize].holds = false;
                    self.release_slot(r.edge, logical);
                }
                self.breaker_outcome(r.edge, logical, r.sent, true);
                if rival != NONE {
                    // The other copy may still answer.
                    return None;
                }
                self.attempt_failed(logical, ErrorCause::Timeout)
            }
            (HEDGE, Role::Attempt) => {
                let l = guards.record(r.other, r.other_generation)?;
                if l.other != call || l.second != NONE {
                    return None;
                }
                self.send_hedge(r.other, r.target)
            }
            _ => None,
        }
    }

    /// Sends a new attempt of logical call `logical`, unless its breaker refuses it or its
    /// callee has no live instance (it then fails at once).
    pub(super) fn send_attempt(&mut self, logical: CallId) -> Option<Delivery> {
        let l = *self.calls.get(logical);
        if !self.is_awaited(&l) {
            // Its caller no longer waits (it crashed, or went on without it): no attempt.
            return self.finish(logical, Outcome::Failed(ErrorCause::Unavailable), None);
        }
        let now = self.now();
        let measuring = self.measuring;
        let guards = self.guards.as_deref_mut().expect("a guard");
        let lr = &mut guards.records[logical as usize];
        lr.tries += 1;
        let r = *lr;
        let e = &mut guards.edges[r.edge as usize];
        if r.tries == 1 {
            let k = (l.parent - e.first_instance) as usize;
            // Every first attempt adds to its caller's retry budget and hedge budget.
            if let Some(b) = e.budgets.get_mut(k) {
                b.deposit(now);
            }
            if let Some(b) = e.hedge_budgets.get_mut(k) {
                b.deposit(now);
            }
        }
        if let Some(params) = e.policy.breaker {
            let b = &mut e.breakers[(l.parent - e.first_instance) as usize];
            let (admit, change) = b.admit(&params, now);
            if let Some(state) = change {
                guards.changed(r.edge, l.parent, state, now, measuring);
            }
            if admit == Admit::Refuse {
                if let Some(s) = guards.stats(r.edge, measuring) {
                    s.circuit_open += 1;
                }
                return self.attempt_failed(logical, ErrorCause::CircuitOpen);
            }
        }
        let e = &mut guards.edges[r.edge as usize];
        if let Some(p) = e.policy.slots {
            let k = (l.parent - e.first_instance) as usize;
            let waiter = Waiter {
                call: logical,
                generation: l.generation,
                since: now,
            };
            match e.slots[k].acquire(&p, waiter) {
                Acquire::Now => {
                    e.usage.step(now, true);
                    if measuring {
                        e.stats.acquired += 1;
                        e.waits.record(0);
                    }
                }
                Acquire::Wait => {
                    let lr = &mut guards.records[logical as usize];
                    lr.waiting = true;
                    lr.sent = now;
                    if let Some(t) = p.acquire_timeout {
                        self.calendar.schedule(
                            now.after(t),
                            Event::Guard {
                                what: ACQUIRE_TIMEOUT,
                                call: logical,
                                generation: l.generation,
                            },
                        );
                    }
                    return None;
                }
                Acquire::Full => {
                    if measuring {
                        e.stats.bulkhead_full += 1;
                    }
                    return self.attempt_failed(logical, p.full_cause());
                }
            }
        }
        self.dispatch_attempt(logical)
    }

    /// The attempt of `logical` leaves (holding a slot when its edge has slots) to the
    /// instance asked for or the group's pick, or fails at once when there is none.
    fn dispatch_attempt(&mut self, logical: CallId) -> Option<Delivery> {
        let l = *self.calls.get(logical);
        let guards = self.guards.as_deref().expect("a guard");
        let r = guards.records[logical as usize];
        let holds = guards.edges[r.edge as usize].policy.slots.is_some();
        let to = if r.target != NOBODY && self.up[r.target as usize] {
            Some(r.target)
        } else {
            let zone = self.calls.get(l.parent_call).zone;
            let net = self.network.as_deref();
            self.groups[r.group as usize].pick_in(l.parent, l.op, l.key, net, || zone)
        };
        let Some(to) = to else {
            if holds {
                self.release_slot(r.edge, logical);
            }
            return self.attempt_failed(logical, ErrorCause::Unavailable);
        };
        self.launch(logical, to, holds, false);
        None
    }

    /// A copy of logical call `logical` leaves for instance `to`, holding a slot or not:
    /// its attempt, or (`hedge`) the hedge of its attempt out now.
    fn launch(&mut self, logical: CallId, to: InstanceId, holds: bool, hedge: bool) {
        let l = *self.calls.get(logical);
        let now = self.now();
        let measuring = self.measuring;
        let attempt = self.calls.insert(Call {
            outcome: Outcome::Pending,
            instance: to,
            ..l
        });
        let generation = self.calls.get(attempt).generation;
        let guards = self.guards.as_deref_mut().expect("a guard");
        let edge = guards.records[logical as usize].edge;
        *guards.record_mut(attempt) = Record {
            generation,
            role: Role::Attempt,
            edge,
            other: logical,
            other_generation: l.generation,
            target: to,
            sent: now,
            holds,
            ..Record::default()
        };
        let lr = &mut guards.records[logical as usize];
        let retry = if hedge {
            lr.second = attempt;
            lr.second_generation = generation;
            false
        } else {
            lr.other = attempt;
            lr.other_generation = generation;
            lr.attempts += 1;
            lr.last_to = to;
            lr.attempts > 1
        };
        let e = &guards.edges[edge as usize];
        let timeout = e.policy.timeout;
        let hedge_after = match e.policy.hedge {
            Some(h) if !hedge => Some(h.delay(e.reply_times.as_ref())),
            _ => None,
        };
        if let Some(s) = guards.stats(edge, measuring) {
            s.attempts += 1;
            s.retries += u64::from(retry);
            s.hedges += u64::from(hedge);
        }
        if let Some(t) = timeout {
            self.calendar.schedule(
                now.after(t),
                Event::Guard {
                    what: TIMEOUT,
                    call: attempt,
                    generation,
                },
            );
        }
        if let Some(d) = hedge_after {
            self.calendar.schedule(
                now.after(d),
                Event::Guard {
                    what: HEDGE,
                    call: attempt,
                    generation,
                },
            );
        }
        if self.network.is_none() {
            self.calendar
                .schedule_now(Event::Arrive { to, call: attempt });
        } else {
            let zone = self.calls.get(l.parent_call).zone;
            self.send_across(attempt, zone, to);
        }
    }

    /// The attempt of `logical`, sent to `first`, has had no reply for its hedge delay: a
    /// second copy leaves for another instance, if the hedge budget, the slots and the
    /// breaker allow (else it is skipped, which fails nothing).
    fn send_hedge(&mut self, logical: CallId, first: InstanceId) -> Option<Delivery> {
        let l = *self.calls.get(logical);
        if !self.is_awaited(&l) {
            return None;
        }
        let now = self.now();
        let measuring = self.measuring;
        let guards = self.guards.as_deref().expect("a guard");
        let edge = guards.records[logical as usize].edge;
        let group = guards.records[logical as usize].group as usize;
        // Another instance: the group's pick, asked again (a few times at most) while it
        // is the first copy's.
        let zone = self.calls.get(l.parent_call).zone;
        let mut to = None;
        for _ in 0..self.groups[group].live().len().min(4) {
            let net = self.network.as_deref();
            match self.groups[group].pick_in(l.parent, l.op, l.key, net, || zone) {
                Some(i) if i != first => {
                    to = Some(i);
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        let guards = self.guards.as_deref_mut().expect("a guard");
        let e = &mut guards.edges[edge as usize];
        let k = (l.parent - e.first_instance) as usize;
        let budget_ok = to.is_some()
            && e.hedge_budgets
                .get_mut(k)
                .is_none_or(|b| b.try_withdraw(now));
        let slot_ok = budget_ok && e.policy.slots.is_none_or(|p| e.slots[k].try_acquire(&p));
        let holds = slot_ok && e.policy.slots.is_some();
        if holds {
            e.usage.step(now, true);
            if measuring {
                e.stats.acquired += 1;
                e.waits.record(0);
            }
        }
        let mut admitted = slot_ok;
        if slot_ok && let Some(params) = e.policy.breaker {
            let (admit, change) = e.breakers[k].admit(&params, now);
            if let Some(state) = change {
                guards.changed(edge, l.parent, state, now, measuring);
            }
            admitted = admit == Admit::Go;
        }
        let e = &mut guards.edges[edge as usize];
        match to {
            Some(to) if admitted => {
                self.launch(logical, to, holds, true);
                return None;
            }
            _ => {}
        }
        if budget_ok && let Some(b) = e.hedge_budgets.get_mut(k) {
            b.refund(now);
        }
        if measuring {
            e.stats.hedges_skipped += 1;
        }
        if holds {
            self.release_slot(edge, logical);
        }
        None
    }

    /// True when `call` is a hedge's losing copy whose caller asked for it to be dropped
    /// (`hedge.cancel`): a service that has not started it drops it unserved.
    pub fn hedge_cancelled(&self, call: CallId) -> bool {
        let Some(g) = self.guards.as_deref() else {
            return false;
        };
        let generation = self.calls.get(call).generation;
        g.record(call, generation).is_some_and(|r| {
            r.role == Role::Attempt
                && r.lost
                && g.edges[r.edge as usize]
                    .policy
                    .hedge
                    .is_some_and(|h| h.cancel)
        })
    }

    /// The reply of `call` reaches the instance that made it, in a model with a guard:
    /// an attempt is the guard's; any other call goes to the component as usual.
    pub(crate) fn guarded_reply(&mut self, to: InstanceId, call: CallId) -> Option<Delivery> {
        let child = *self.calls.get(call);
        let guards = self.guards.as_deref_mut().expect("a guard");
        let Some(r) = guards.record(call, child.generation).copied() else {
            self.calls.remove(call);
            let current = self.is_awaited(&child);
            return Some((to, child, current));
        };
        guards.records[call as usize].role = Role::None;
        self.calls.remove(call);
        let logical = r.other;
        if r.holds {
            self.release_slot_of(r.edge, child.parent);
        }
        let now = self.now();
        let guards = self.guards.as_deref_mut().expect("a guard");
        let measuring = self.measuring;
        if child.outcome == Outcome::Ok
            && let Some(t) = guards.edges[r.edge as usize].reply_times.as_mut()
        {
            t.record(now.since(r.sent).0);
        }
        let l = guards.record(logical, r.other_generation).copied();
        let (rival, hedge) = match l {
            Some(l) if l.other == call => (l.second, false),
            Some(l) if l.second == call => (l.other, true),
            _ => {
                // Abandoned at its timeout, or a hedge's loser: the caller already has
                // its answer.
                if let Some(s) = guards.stats(r.edge, measuring) {
                    if !r.lost {
                        s.late_replies += 1;
                    } else if child.outcome == Outcome::Failed(ErrorCause::DeadlineExceeded) {
                        s.hedges_cancelled += 1;
                    } else {
                        s.hedges_ignored += 1;
                    }
                }
                return None;
            }
        };
        let lr = &mut guards.records[logical as usize];
        if hedge {
            lr.second = NONE;
        } else {
            lr.other = NONE;
        }
        let failed = child.outcome != Outcome::Ok;
        self.breaker_outcome(r.edge, logical, r.sent, failed);
        match child.outcome {
            // The other copy may still answer.
            Outcome::Failed(_) if rival != NONE => None,
            Outcome::Failed(cause) => self.attempt_failed(logical, cause),
            _ => {
                let guards = self.guards.as_deref_mut().expect("a guard");
                if rival != NONE {
                    guards.records[rival as usize].lost = true;
                }
                guards.records[logical as usize].last_to = r.target;
                if hedge && let Some(s) = guards.stats(r.edge, measuring) {
                    s.hedge_wins += 1;
                }
                self.finish(logical, Outcome::Ok, Some(&child))
            }
        }
    }

    /// A slot of `logical`'s caller on edge `edge` is given back: the first call still
    /// waiting for one gets it (its attempt leaves through `GRANTED`, now), else it is free.
    fn release_slot(&mut self, edge: u32, logical: CallId) {
        let from = self.calls.get(logical).parent;
        self.release_slot_of(edge, from);
    }

    /// A slot of caller instance `from` on edge `edge` is given back (see
    /// [`Context::release_slot`]).
    fn release_slot_of(&mut self, edge: u32, from: InstanceId) {
        let now = self.now();
        let measuring = self.measuring;
        let guards = self.guards.as_deref_mut().expect("a guard");
        let e = &mut guards.edges[edge as usize];
        let k = (from - e.first_instance) as usize;
        let records = &guards.records;
        let next = e.slots[k].release(|w| {
            records.get(w.call as usize).is_some_and(|r| {
                r.role == Role::Logical
                    && r.generation == w.generation
                    && r.waiting
                    && r.sent == w.since
            })
        });
        let Some(w) = next else {
            e.usage.step(now, false);
            return;
        };
        if measuring {
            e.stats.acquired += 1;
            e.stats.queued += 1;
            e.waits.record(now.0 - w.since.0);
        }
        guards.records[w.call as usize].waiting = false;
        self.calendar.schedule_now(Event::Guard {
            what: GRANTED,
            call: w.call,
            generation: w.generation,
        });
    }

    /// Waiting logical call `logical` was handed a slot: its attempt leaves, unless its
    /// caller no longer waits (the slot then goes on to the next waiter).
    fn granted(&mut self, logical: CallId) -> Option<Delivery> {
        let l = *self.calls.get(logical);
        if !self.is_awaited(&l) {
            let edge = self.guards.as_deref().expect("a guard").records[logical as usize].edge;
            self.release_slot(edge, logical);
            return self.finish(logical, Outcome::Failed(ErrorCause::Unavailable), None);
        }
        self.dispatch_attempt(logical)
    }

    /// A pool's acquire timeout of `logical` (record `r` when the event fired) expires: if
    /// it still waits from that time on, it gives up with `pool_timeout`.
    fn acquire_timeout(&mut self, logical: CallId, r: Record) -> Option<Delivery> {
        let now = self.now();
        let measuring = self.measuring;
        let from = self.calls.get(logical).parent;
        let guards = self.guards.as_deref_mut().expect("a guard");
        let e = &mut guards.edges[r.edge as usize];
        let p = e.policy.slots?;
        let t = p.acquire_timeout?;
        if !r.waiting || r.sent.after(t) != now {
            return None;
        }
        e.slots[(from - e.first_instance) as usize].left();
        if measuring {
            e.stats.pool_timeout += 1;
        }
        guards.records[logical as usize].waiting = false;
        self.attempt_failed(logical, p.timeout_cause())
    }

    /// The breaker of `logical`'s caller on edge `edge` learns how an attempt sent at
    /// `sent` ended (now).
    fn breaker_outcome(&mut self, edge: u32, logical: CallId, sent: SimTime, failed: bool) {
        let now = self.now();
        let measuring = self.measuring;
        let from = self.calls.get(logical).parent;
        let guards = self.guards.as_deref_mut().expect("a guard");
        let e = &mut guards.edges[edge as usize];
        let Some(params) = e.policy.breaker else {
            return;
        };
        let b = &mut e.breakers[(from - e.first_instance) as usize];
        if let Some(state) = b.record(&params, sent, now, failed) {
            guards.changed(edge, from, state, now, measuring);
        }
    }

    /// An attempt of `logical` failed with `cause`: it is tried again after a backoff if
    /// its retry policy and budget allow, else the call fails (or falls back).
    fn attempt_failed(&mut self, logical: CallId, cause: ErrorCause) -> Option<Delivery> {
        let measuring = self.measuring;
        let now = self.now();
        let l = *self.calls.get(logical);
        let awaited = self.is_awaited(&l);
        let guards = self.guards.as_deref_mut().expect("a guard");
        let r = guards.records[logical as usize];
        let edge = r.edge;
        let e = &mut guards.edges[edge as usize];
        if let Some(rp) = e.policy.retry
            && r.tries <= rp.max
            && rp.retries_on(cause)
            && awaited
        {
            let k = (l.parent - e.first_instance) as usize;
            let allowed = e.budgets.get_mut(k).is_none_or(|b| b.try_withdraw(now));
            if allowed {
                let wait = rp.backoff(r.tries, SimDuration(r.prev_wait), &mut e.rngs[k]);
                guards.records[logical as usize].prev_wait = wait.0;
                self.calendar.schedule(
                    now.after(wait),
                    Event::Guard {
                        what: RETRY,
                        call: logical,
                        generation: l.generation,
                    },
                );
                return None;
            }
            if let Some(s) = guards.stats(edge, measuring) {
                s.budget_exhausted += 1;
            }
        }
        let fallback = guards.edges[edge as usize].policy.fallback;
        if let Some(s) = guards.stats(edge, measuring) {
            if fallback {
                s.degraded += 1;
            } else {
                s.failed += 1;
            }
        }
        if fallback {
            self.finish(logical, Outcome::Ok, None)
        } else {
            self.finish(logical, Outcome::Failed(cause), None)
        }
    }

    /// Answers `logical` with `outcome` (what the callee said of the key from `reply`, the
    /// successful attempt's answer): it is freed and handed back for delivery.
    fn finish(
        &mut self,
        logical: CallId,
        outcome: Outcome,
        reply: Option<&Call>,
    ) -> Option<Delivery> {
        let guards = self.guards.as_deref_mut().expect("a guard");
        let r = &mut guards.records[logical as usize];
        r.role = Role::None;
        let (last_to, edge) = (r.last_to, r.edge);
        if outcome == Outcome::Ok
            && let Some(s) = guards.stats(edge, self.measuring)
            && reply.is_some()
        {
            s.succeeded += 1;
        }
        let c = self.calls.get_mut(logical);
        c.outcome = outcome;
        c.instance = last_to;
        if let Some(a) = reply {
            c.found = a.found;
            c.version = a.version;
        }
        let child = *c;
        self.calls.remove(logical);
        let current = self.is_awaited(&child);
        Some((child.parent, child, current))
    }
}
