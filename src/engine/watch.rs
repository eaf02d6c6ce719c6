//! Watching single requests: what each visit of a request to a component did, and when.
//!
//! A run that is watched (`run --trace`, `run --explain`) goes through a loop of its own
//! ([`super::Simulation::watch`]): before and after each event, a [`Watcher`] looks at the
//! event and at the calls of the requests it follows, and writes down their lives. Nothing
//! in a component or in the unwatched loop knows about it, so a run that is not watched
//! pays nothing for it, not even a branch per event.
//!
//! What the watcher sees is the engine's own state, read from outside: a call's arrival at
//! an instance (its `Arrive` event, or the first call of a request delivered at once), its
//! answer (its outcome set, or its slot freed), a tail call (its instance changed), the
//! calls it makes (their arrivals), and the timers its instance sets for it. From these, a
//! visit's time splits into:
//!
//! - **service**: up to each firing of a timer its instance set for the call (a service's
//!   work step, a cache's or a database's answer time), from the last thing that happened
//!   to the call before it;
//! - **calls**: from the moment it sends calls until the set it waits on is answered (a
//!   service's round of calls ends, or the last of them replies);
//! - **backoff**: while it still waits on a call but none of its attempts is out (a call
//!   policy waiting to retry);
//! - **queue**: the rest of the time it is at the instance: waiting for a worker (until
//!   its handler's next step starts), in a batch, behind another request's fetch.
//!
//! And a call's **network** time is that between its sending and its arrival, and between
//! its answer and its caller getting it.

use super::call::{CLIENT, ClientWait, Outcome};
use super::clients::Clients;
use super::context::Context;
use super::event::{CallId, Event, InstanceId};
use crate::metrics::ErrorCause;
use crate::random::mix64;
use crate::time::SimTime;
use rustc_hash::FxHashMap;
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

/// No visit (the parent of a request's first visit, the next of a visit that was not
/// handed on).
pub const NONE: u32 = u32::MAX;

/// What a stretch of a visit was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// At the instance, neither working nor waiting on a call of its own.
    Queue,
    /// Working (up to a timer the instance set for the call).
    Service,
    /// Waiting on the calls it made.
    Calls,
    /// Waiting on a call none of whose attempts is out (a policy's retry backoff).
    Backoff,
}

impl PhaseKind {
    /// Its name in a trace and a table.
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::Queue => "queue",
            PhaseKind::Service => "service",
            PhaseKind::Calls => "calls",
            PhaseKind::Backoff => "backoff",
        }
    }
}

/// One stretch of a visit.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// What it was spent on.
    pub kind: PhaseKind,
    /// Start.
    pub from: SimTime,
    /// End.
    pub to: SimTime,
    /// For [`PhaseKind::Calls`]: the visit whose answer ended the wait (its index in the
    /// request's visits), or [`NONE`].
    pub child: u32,
}

/// How a visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitEnd {
    /// Not ended when the run did.
    Open,
    /// Answered successfully.
    Ok,
    /// Answered with a failure.
    Failed(ErrorCause),
    /// Handed on to another component (a tail call: a route, a forward).
    Forwarded,
}

/// Where the watcher stands with a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Working,
    Calling,
    Backoff,
    /// Handed on, not arrived at the next instance yet.
    Transit,
    /// Answered; its caller has not had the answer yet.
    Closed,
}

/// One call's stay at one instance.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The visit that made the call (index in the request's visits), or [`NONE`] for the
    /// request's first call.
    pub parent: u32,
    /// The visit the call was handed on to (a tail call), or [`NONE`].
    pub next: u32,
    /// The instance.
    pub instance: InstanceId,
    /// Its group (component).
    pub group: u32,
    /// When the call left its caller (or the instance that handed it on).
    pub sent: SimTime,
    /// When it arrived.
    pub arrived: SimTime,
    /// When it was answered or handed on.
    pub ended: SimTime,
    /// When its caller had the answer (equal to `ended` for a visit handed on).
    pub replied: SimTime,
    /// How it ended.
    pub end: VisitEnd,
    /// Its time, stretch by stretch, in order.
    pub phases: Vec<Phase>,
    generation: u32,
    step: u16,
    round: u16,
    state: State,
    mark: SimTime,
    outstanding: u32,
    calling_since: SimTime,
    last_child: u32,
}

impl Visit {
    /// Time on the network to and from it, ns.
    pub fn network_ns(&self) -> u64 {
        self.arrived.since(self.sent).0 + self.replied.since(self.ended).0
    }

    /// Ends the current stretch now, as what the visit was doing.
    fn close(&mut self, now: SimTime) {
        let kind = match self.state {
            State::Queued => PhaseKind::Queue,
            State::Working => PhaseKind::Service,
            State::Calling => PhaseKind::Calls,
            State::Backoff => PhaseKind::Backoff,
            State::Transit | State::Closed => return,
        };
        self.close_as(kind, now);
    }

    fn close_as(&mut self, kind: PhaseKind, now: SimTime) {
        if now > self.mark {
            let child = if kind == PhaseKind::Calls {
                self.last_child
            } else {
                NONE
            };
            self.phases.push(Phase {
                kind,
                from: self.mark,
                to: now,
                child,
            });
        }
        self.mark = now;
    }
}

/// The life of one request (one attempt of it: a client's retry is a request of its own).
#[derive(Debug, Clone)]
pub struct Life {
    /// Its sampling hash (from the seed and the order in which requests first arrived).
    pub hash: u64,
    /// The source (workload) that sent it.
    pub source: u32,
    /// Its class.
    pub class: u16,
    /// When it was created.
    pub created: SimTime,
    /// When its client had the answer.
    pub answered: SimTime,
    /// The answer.
    pub outcome: VisitEnd,
    /// Its visits, in the order they began; the first is its first call's.
    pub visits: Vec<Visit>,
    root_freed: bool,
    open: u32,
    /// The ids of the calls of its visits (some since freed, or reused by others).
    calls: Vec<CallId>,
}

impl Life {
    /// Time from its creation to its client's answer, ns.
    pub fn latency_ns(&self) -> u64 {
        self.answered.since(self.created).0
    }
}

/// Where watched lives go: it says which requests to follow and takes each when it ends.
pub trait Sink: Any + Send {
    /// True to follow a request with sampling hash `hash`, while the followed requests have
    /// `open` calls in flight (their visits not yet over).
    fn wants(&mut self, hash: u64, open: usize) -> bool;
    /// A followed request has ended (and every call it made has been answered).
    fn finished(&mut self, life: Life);
}

/// Follows requests through a run (see the module docs).
pub struct Watcher {
    seed: u64,
    warmup_end: SimTime,
    ordinal: u64,
    next_life: u64,
    lives: BTreeMap<u64, Life>,
    /// Open visits by call: (life, visit).
    by_call: FxHashMap<CallId, (u64, u32)>,
    /// The calls of open visits at each instance (the ones an event there can change).
    at: Vec<BTreeSet<CallId>>,
    gone: Vec<(CallId, u32, u32)>,
    scratch: Vec<CallId>,
    sink: Box<dyn Sink>,
}

/// Which followed calls an event could have changed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope {
    /// Those at an instance (an event addressed to it).
    Instance(InstanceId),
    /// One call.
    Call(CallId),
    /// The calls of one followed request (`life`) and those at instance `also`: a call
    /// policy's timer, which changes its request's calls (an attempt abandoned, a logical
    /// call failed, retried or hedged) and hands a reply to the caller at `also`, whose
    /// handler may start another call queued there. Everything else it causes is an event
    /// of its own.
    Life { life: u64, also: InstanceId },
    /// None: an event that changes nothing (a policy's timer for a call already over).
    Nothing,
    /// Any (an event of the engine's: a fault, a client's timeout, a controller).
    All,
}

impl Scope {
    /// The calls `event` could change, for events whose scope needs nothing but the event.
    pub(super) fn of(event: &Event) -> Scope {
        match *event {
            Event::Arrive { to, .. } | Event::Reply { to, .. } | Event::Timer { to, .. } => {
                Scope::Instance(to)
            }
            Event::Answer { call } => Scope::Call(call),
            _ => Scope::All,
        }
    }
}

impl Watcher {
    /// A watcher of the requests created from `warmup_end` on, sampled by `sink` from
    /// hashes of `seed` and their order of arrival.
    pub fn new(seed: u64, warmup_end: SimTime, sink: Box<dyn Sink>) -> Self {
        Watcher {
            seed,
            warmup_end,
            ordinal: 0,
            next_life: 0,
            lives: BTreeMap::new(),
            by_call: FxHashMap::default(),
            at: Vec::new(),
            gone: Vec::new(),
            scratch: Vec::new(),
            sink,
        }
    }

    /// The calls `event` could change, found before it is handled (a call policy's timer
    /// is narrowed to its request and caller: in a retry storm the followed requests hold
    /// a thousand calls, and looking at all of them on every timer took minutes).
    pub(super) fn scope_of<C: Clients + ?Sized>(&self, event: &Event, ctx: &Context<C>) -> Scope {
        let Event::Guard {
            call, generation, ..
        } = *event
        else {
            return Scope::of(event);
        };
        if !ctx.guard_is_live(call, generation) {
            // The timer of a call already over: the policy ignores it.
            return Scope::Nothing;
        }
        if !ctx.calls.is_live(call, generation) {
            return Scope::All;
        }
        let also = ctx.calls.get(call).parent;
        match self.life_of(call, ctx) {
            Some(life) => Scope::Life { life, also },
            None => Scope::Instance(also),
        }
    }

    /// The followed request `call` belongs to: the call's own, or that of the nearest call
    /// above it that is followed (a policy's logical call never arrives anywhere).
    fn life_of<C: Clients + ?Sized>(&self, call: CallId, ctx: &Context<C>) -> Option<u64> {
        let mut at = call;
        for _ in 0..6 {
            if let Some(&(life, _)) = self.by_call.get(&at) {
                return Some(life);
            }
            let c = ctx.calls.get(at);
            if c.parent == CLIENT || !ctx.calls.is_live(c.parent_call, c.parent_generation) {
                return None;
            }
            at = c.parent_call;
        }
        None
    }

    /// The sink, with every request it was given.
    pub fn into_sink(self) -> Box<dyn Sink> {
        self.sink
    }

    /// Before `event` is handled.
    pub(super) fn before<C: Clients + ?Sized>(&mut self, event: &Event, ctx: &Context<C>) {
        if self.by_call.is_empty() && !matches!(event, Event::Arrive { .. }) {
            return;
        }
        let now = ctx.now();
        match *event {
            Event::Arrive { to, call } => self.arrive(to, call, ctx),
            Event::Reply { call, .. } => self.replied(call, now, ctx),
            Event::Timer { to, data, .. } => {
                if let Some(&(life, v)) = self.by_call.get(&data)
                    && let Some(l) = self.lives.get_mut(&life)
                {
                    let v = &mut l.visits[v as usize];
                    if v.instance == to && matches!(v.state, State::Queued | State::Working) {
                        v.close_as(PhaseKind::Service, now);
                        v.state = State::Working;
                    }
                }
            }
            _ => {}
        }
    }

    /// Call `call` arrives at instance `to` (from an `Arrive` event, or delivered at once
    /// as a request starts).
    pub(super) fn arrive<C: Clients + ?Sized>(
        &mut self,
        to: InstanceId,
        call: CallId,
        ctx: &Context<C>,
    ) {
        let now = ctx.now();
        let c = *ctx.calls.get(call);
        let group = ctx.group_of(to);
        if let Some(&(life, v)) = self.by_call.get(&call) {
            // Handed on: a new visit of the same call.
            let Some(l) = self.lives.get_mut(&life) else {
                return;
            };
            let old = &mut l.visits[v as usize];
            if old.state != State::Transit {
                return;
            }
            old.state = State::Closed;
            let (parent, sent) = (old.parent, old.ended);
            let index = l.visits.len() as u32;
            l.visits[v as usize].next = index;
            l.visits.push(new_visit(parent, to, group, sent, now, &c));
            self.by_call.insert(call, (life, index));
            self.place(to, call);
            return;
        }
        if c.parent == CLIENT && c.request == call {
            let r = ctx.requests[call as usize];
            if r.created < self.warmup_end {
                return;
            }
            let hash = mix64(self.seed ^ mix64(self.ordinal.wrapping_add(1)));
            self.ordinal += 1;
            if !self.sink.wants(hash, self.by_call.len()) {
                return;
            }
            let id = self.next_life;
            self.next_life += 1;
            let first = new_visit(NONE, to, group, r.created, now, &c);
            self.lives.insert(
                id,
                Life {
                    hash,
                    source: r.source,
                    class: c.class,
                    created: r.created,
                    answered: r.created,
                    outcome: VisitEnd::Open,
                    visits: vec![first],
                    root_freed: false,
                    open: 1,
                    calls: vec![call],
                },
            );
            self.by_call.insert(call, (id, 0));
            self.place(to, call);
            return;
        }
        // A call made by a visit followed: by the visit itself, or through a call of its
        // own that never arrives anywhere (a call policy's logical call).
        let mut parent_call = (c.parent_call, c.parent_generation);
        let mut found = None;
        for _ in 0..4 {
            if let Some(&(life, v)) = self.by_call.get(&parent_call.0)
                && self.lives[&life].visits[v as usize].generation == parent_call.1
            {
                found = Some((life, v));
                break;
            }
            if !ctx.calls.is_live(parent_call.0, parent_call.1) {
                break;
            }
            let p = ctx.calls.get(parent_call.0);
            if p.parent == CLIENT {
                break;
            }
            parent_call = (p.parent_call, p.parent_generation);
        }
        let Some((life, pv)) = found else {
            return;
        };
        let l = self.lives.get_mut(&life).expect("a followed life");
        let p = &mut l.visits[pv as usize];
        if !matches!(p.state, State::Calling) {
            p.close(now);
            p.state = State::Calling;
            p.calling_since = now;
        }
        p.outstanding += 1;
        let sent = p.calling_since;
        let index = l.visits.len() as u32;
        l.visits.push(new_visit(pv, to, group, sent, now, &c));
        l.open += 1;
        l.calls.push(call);
        self.by_call.insert(call, (life, index));
        self.place(to, call);
    }

    /// The caller of `call` gets its answer.
    fn replied<C: Clients + ?Sized>(&mut self, call: CallId, now: SimTime, ctx: &Context<C>) {
        let Some(&(life, v)) = self.by_call.get(&call) else {
            return;
        };
        let Some(l) = self.lives.get_mut(&life) else {
            return;
        };
        let c = ctx.calls.get(call);
        let visit = &mut l.visits[v as usize];
        if visit.generation != c.generation {
            return;
        }
        if visit.state != State::Closed {
            visit.close(now);
            visit.state = State::Closed;
            visit.ended = now;
            visit.end = end_of(c.outcome);
        }
        Self::unplace(&mut self.at, visit.instance, call);
        visit.replied = now;
        let parent = visit.parent;
        self.by_call.remove(&call);
        l.open -= 1;
        if parent != NONE {
            let p = &mut l.visits[parent as usize];
            p.outstanding = p.outstanding.saturating_sub(1);
            p.last_child = v;
        }
        self.finish_if_done(life);
    }

    /// After an event was handled: what changed in the calls followed that it could have
    /// touched (`scope`).
    pub(super) fn after<C: Clients + ?Sized>(
        &mut self,
        ctx: &Context<C>,
        completed_before: u64,
        scope: Scope,
    ) {
        if self.by_call.is_empty() {
            return;
        }
        let mut calls = std::mem::take(&mut self.scratch);
        calls.clear();
        match scope {
            Scope::Instance(i) => {
                if let Some(set) = self.at.get(i as usize) {
                    calls.extend(set.iter().copied());
                }
            }
            Scope::Call(c) => calls.push(c),
            Scope::Life { life, also } => {
                if let Some(l) = self.lives.get(&life) {
                    calls.extend(
                        l.calls.iter().copied().filter(|c| {
                            self.by_call.get(c).is_some_and(|&(owner, _)| owner == life)
                        }),
                    );
                }
                if let Some(set) = self.at.get(also as usize) {
                    calls.extend(set.iter().copied());
                }
                calls.sort_unstable();
                calls.dedup();
            }
            Scope::Nothing => {}
            Scope::All => {
                calls.extend(self.by_call.keys().copied());
                calls.sort_unstable();
            }
        }
        let mut gone = std::mem::take(&mut self.gone);
        for &call in &calls {
            self.look(call, ctx, completed_before, &mut gone);
        }
        self.scratch = calls;
        for (call, parent, v) in gone.drain(..) {
            if let Some((life, _)) = self.by_call.remove(&call)
                && let Some(l) = self.lives.get_mut(&life)
            {
                l.open -= 1;
                if parent != NONE {
                    let p = &mut l.visits[parent as usize];
                    p.outstanding = p.outstanding.saturating_sub(1);
                    p.last_child = v;
                }
                self.finish_if_done(life);
            }
        }
        self.gone = gone;
    }

    /// Takes call `call` off the calls at instance `instance`.
    fn unplace(at: &mut [BTreeSet<CallId>], instance: InstanceId, call: CallId) {
        if let Some(set) = at.get_mut(instance as usize) {
            set.remove(&call);
        }
    }

    /// Puts call `call` among the calls at instance `instance`.
    fn place(&mut self, instance: InstanceId, call: CallId) {
        let i = instance as usize;
        if i >= self.at.len() {
            self.at.resize_with(i + 1, BTreeSet::new);
        }
        self.at[i].insert(call);
    }

    /// What changed in followed call `call` since it was last looked at.
    fn look<C: Clients + ?Sized>(
        &mut self,
        call: CallId,
        ctx: &Context<C>,
        completed_before: u64,
        gone: &mut Vec<(CallId, u32, u32)>,
    ) {
        let now = ctx.now();
        let Some(&(life, v)) = self.by_call.get(&call) else {
            return;
        };
        let Some(l) = self.lives.get_mut(&life) else {
            return;
        };
        let at = &mut self.at;
        let visit = &mut l.visits[v as usize];
        let slot = ctx.calls.get(call);
        if slot.generation != visit.generation {
            // Freed: a request's first call, answered (or a call its caller dropped).
            let intact = slot.parent == CLIENT && slot.request == call;
            let end = if intact && slot.outcome != Outcome::Pending {
                end_of(slot.outcome)
            } else if ctx.totals.completed > completed_before {
                VisitEnd::Ok
            } else {
                VisitEnd::Failed(ErrorCause::Unavailable)
            };
            if visit.state != State::Closed {
                visit.close(now);
                visit.ended = now;
                visit.end = end;
                visit.state = State::Closed;
            }
            visit.replied = now;
            if visit.parent == NONE && l.outcome == VisitEnd::Open {
                l.answered = now;
                l.outcome = end;
            }
            if visit.parent == NONE {
                l.root_freed = true;
            }
            Self::unplace(at, visit.instance, call);
            gone.push((call, visit.parent, v));
            return;
        }
        if visit.parent == NONE
            && l.outcome == VisitEnd::Open
            && ctx.requests[call as usize].client == ClientWait::Answered
        {
            // The client has its answer: the call's, or its own timeout's.
            l.answered = now;
            l.outcome = match slot.outcome {
                Outcome::Pending => VisitEnd::Failed(ErrorCause::Timeout),
                o => end_of(o),
            };
        }
        if matches!(visit.state, State::Closed | State::Transit) {
            return;
        }
        if slot.outcome != Outcome::Pending {
            visit.close(now);
            visit.state = State::Closed;
            visit.ended = now;
            visit.end = end_of(slot.outcome);
            Self::unplace(at, visit.instance, call);
            return;
        }
        if slot.instance != visit.instance {
            visit.close(now);
            visit.state = State::Transit;
            visit.ended = now;
            visit.replied = now;
            visit.end = VisitEnd::Forwarded;
            Self::unplace(at, visit.instance, call);
            return;
        }
        let stepped = slot.step != visit.step;
        let resumed = |stepped: bool| {
            if !stepped && slot.enqueued_at == now {
                State::Queued
            } else {
                State::Working
            }
        };
        if slot.round != visit.round {
            visit.close(now);
            visit.round = slot.round;
            visit.step = slot.step;
            if slot.pending > 0 {
                visit.state = State::Calling;
                visit.calling_since = now;
            } else {
                visit.state = resumed(stepped);
            }
            return;
        }
        match visit.state {
            State::Queued if stepped => {
                visit.close(now);
                visit.state = State::Working;
            }
            State::Calling if visit.outstanding == 0 => {
                visit.close(now);
                visit.state = if slot.pending > 0 {
                    State::Backoff
                } else {
                    resumed(stepped)
                };
            }
            _ => {}
        }
        visit.step = slot.step;
    }

    /// Hands `life` to the sink if it is over: its first call answered and every call it
    /// made too.
    fn finish_if_done(&mut self, life: u64) {
        let done = self
            .lives
            .get(&life)
            .is_some_and(|l| l.root_freed && l.open == 0);
        if done && let Some(l) = self.lives.remove(&life) {
            self.sink.finished(l);
        }
    }
}

fn end_of(outcome: Outcome) -> VisitEnd {
    match outcome {
        Outcome::Pending => VisitEnd::Open,
        Outcome::Ok => VisitEnd::Ok,
        Outcome::Failed(cause) => VisitEnd::Failed(cause),
    }
}

fn new_visit(
    parent: u32,
    instance: InstanceId,
    group: u32,
    sent: SimTime,
    now: SimTime,
    c: &super::Call,
) -> Visit {
    Visit {
        parent,
        next: NONE,
        instance,
        group,
        sent,
        arrived: now,
        ended: now,
        replied: now,
        end: VisitEnd::Open,
        phases: Vec::new(),
        generation: c.generation,
        step: c.step,
        round: c.round,
        state: State::Queued,
        mark: now,
        outstanding: 0,
        calling_since: now,
        last_child: NONE,
    }
}
