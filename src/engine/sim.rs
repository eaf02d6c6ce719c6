//! One replication: runs a built topology (instances, groups, request sources) to the end
//! of the run, and hands back what was measured.

use super::calendar::Calendar;
use super::call::Slab;
use super::clients::Clients;
use super::context::{Component, Context, Ctx, Group, Totals};
use super::event::{CallId, Event, InstanceId};
use super::fault::{FaultAction, FaultWindow, Faults};
use super::guard::{Edge, Guards};
use super::retry::ClientRetries;
use super::watch::{Scope, Watcher};
use crate::metrics::{ClientStats, InstanceReport};
use crate::network::Latencies;
use crate::time::{SimDuration, SimTime};

/// Events allowed at one instant before a run is declared stuck: a model whose requests
/// take no time at all (zero think time and zero service time) would never advance the
/// clock.
pub const STALL_LIMIT: u64 = 100_000_000;

/// Why a run could not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The clock stopped advancing.
    #[error(
        "the run is stuck: more than {STALL_LIMIT} events happened at t = {at_s}s without the clock moving; give some step of the model a duration longer than zero (think time, service time)"
    )]
    Stalled {
        /// Simulated time, seconds.
        at_s: f64,
    },
}

/// Settings of one run beyond what runs: how long, and when to stop early.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Length of the run: nothing is generated after it.
    pub duration: SimDuration,
    /// Statistics gathered before this are forgotten.
    pub warmup: SimDuration,
    /// The run stops when a new request would pass this many in flight.
    pub max_in_flight: u64,
}

/// What a run is made of, built from a model outside the engine (`crate::topology`):
/// component instances, the groups calls are addressed to, and the request sources `C`.
pub struct Topology<C> {
    /// Every instance, indexed by [`InstanceId`].
    pub instances: Vec<Box<dyn Component>>,
    /// Call targets, indexed by group id; each instance belongs to exactly one.
    pub groups: Vec<Group>,
    /// The request sources.
    pub clients: C,
    /// Empty statistics for the clients of each source, in source order.
    pub stats: Vec<ClientStats>,
    /// Where instances and clients are, and the delays between them (`None`: messages take
    /// no time).
    pub network: Option<Latencies>,
}

/// A model being simulated, with request sources `C`.
pub struct Simulation<C: Clients> {
    ctx: Context<C>,
    components: Vec<Box<dyn Component>>,
    warmup_end: SimTime,
    end: SimTime,
    events: u64,
    finished: bool,
    /// Decides when faults happen; `None` for a model without faults.
    faults: Option<Box<dyn Faults>>,
    /// What the faults firing now do (kept to reuse its memory).
    actions: Vec<FaultAction>,
    /// Follows single requests, in a watched run (`None`: the loops never look at it but
    /// once, where they start).
    watcher: Option<Box<Watcher>>,
    /// By source: the instance that will look up the key of each of its requests and
    /// wants it ahead ([`Component::prefetch`]), `NO_PREFETCH` for none; empty when no
    /// source has one, and the loops then run a form without the prefetch (a watched run
    /// never prefetches: it is a hint only).
    prefetch_to: Vec<InstanceId>,
    /// The one instance every source hands its keys ahead to (`NO_PREFETCH` when there are
    /// none or several): a reply to a caller in front of it, from another instance, tells
    /// it the key the caller is likely to look up next ([`Component::prefetch_key`]).
    reply_prefetch: InstanceId,
}

/// A source whose keys no instance wants ahead.
const NO_PREFETCH: InstanceId = InstanceId::MAX;

/// Calls a request makes before the one to the instance looking its key up, at most (a
/// service in front of a service in front of a cache, ...).
const PREFETCH_HOPS: usize = 4;

impl<C: Clients> Simulation<C> {
    /// Takes `topology` to the start of a run: every instance started (its start hook),
    /// the first requests and the end of the warm-up scheduled.
    pub fn new(topology: Topology<C>, options: RunOptions) -> Self {
        let Topology {
            instances: mut components,
            groups,
            clients,
            stats,
            network,
        } = topology;
        let n = components.len();
        let mut group_of = vec![u32::MAX; n];
        for (g, group) in groups.iter().enumerate() {
            for i in group.members() {
                assert_eq!(
                    group_of[*i as usize],
                    u32::MAX,
                    "instance {i} in two groups"
                );
                group_of[*i as usize] = g as u32;
            }
        }
        assert!(
            !group_of.contains(&u32::MAX),
            "every instance belongs to a group"
        );
        let horizon = SimTime(options.duration.0);
        let network = network.map(Box::new);
        let mut ctx = Context {
            calendar: Calendar::new(),
            calls: Slab::new(),
            requests: Vec::new(),
            groups,
            group_of,
            up: vec![true; n],
            membership: 0,
            clients,
            measuring: options.warmup.0 == 0,
            totals: Totals::default(),
            horizon,
            in_flight: 0,
            max_in_flight: options.max_in_flight,
            stopped_at: None,
            stale_timeouts: 0,
            compact_at: super::context::COMPACT_MIN_STALE,
            stats,
            network,
            parked: Default::default(),
            crashes: Vec::new(),
            guards: None,
            retries: None,
        };
        for c in &mut components {
            c.start(&mut ctx);
        }
        ctx.clients.start(&mut ctx.calendar, horizon);
        let prefetch_to = prefetch_targets(&mut ctx, &components);
        let reply_prefetch = match prefetch_to.split_first() {
            Some((first, rest)) if rest.iter().all(|t| t == first) => *first,
            _ => NO_PREFETCH,
        };
        if options.warmup.0 > 0 {
            ctx.calendar
                .defer(SimTime(options.warmup.0), Event::WarmupEnd);
        }
        Simulation {
            ctx,
            components,
            warmup_end: SimTime(options.warmup.0),
            end: horizon,
            events: 0,
            finished: false,
            faults: None,
            actions: Vec::new(),
            watcher: None,
            prefetch_to,
            reply_prefetch,
        }
    }

    /// The same simulation, watched by `watcher` (see `engine/watch.rs`): its loops then
    /// hand every event to the watcher too. The run itself is the same.
    pub fn watched(mut self, watcher: Watcher) -> Self {
        self.watcher = Some(Box::new(watcher));
        self
    }

    /// The watcher, with what it saw (`None` for a run not watched).
    pub fn take_watcher(&mut self) -> Option<Watcher> {
        self.watcher.take().map(|w| *w)
    }

    /// Handles `event`: with the watcher looking when `WATCHED`, handing a cache the keys
    /// of coming requests when `PREFETCH` (the loops choose once, where they start, so a
    /// run without either has no branch for them per event).
    #[inline(always)]
    fn handle<const WATCHED: bool, const PREFETCH: bool>(&mut self, event: Event) {
        if WATCHED {
            self.dispatch_watched(event);
        } else {
            self.dispatch::<PREFETCH>(event);
        }
    }

    /// [`Self::dispatch`] with the watcher looking before and after; a request's first
    /// call delivered at once is shown to it as it arrives.
    #[inline(never)]
    fn dispatch_watched(&mut self, event: Event) {
        let Some(mut w) = self.watcher.take() else {
            return self.dispatch::<false>(event);
        };
        w.before(&event, &self.ctx);
        let completed = self.ctx.totals.completed;
        let first = match event {
            Event::Generate { source, user } => Some(generate(&mut self.ctx, source, user)),
            Event::ClientRetry { logical } => Some(self.ctx.client_retry(logical)),
            _ => None,
        };
        let scope = match first {
            Some(Some((to, call))) => {
                w.arrive(to, call, &self.ctx);
                self.components[to as usize].on_arrive(call, dyn_ctx(&mut self.ctx));
                Scope::Instance(to)
            }
            // Not delivered yet (or refused at once): no call followed has changed.
            Some(None) => Scope::Instance(InstanceId::MAX),
            None => {
                let scope = w.scope_of(&event, &self.ctx);
                self.dispatch::<false>(event);
                scope
            }
        };
        w.after(&self.ctx, completed, scope);
        self.watcher = Some(w);
    }

    /// The same simulation, whose sources retry failed attempts as `retries` says (see
    /// `engine/retry.rs`); `None` for a run without client retries.
    pub fn with_client_retries(mut self, retries: Option<ClientRetries>) -> Self {
        self.ctx.retries = retries.map(Box::new);
        self
    }

    /// The same simulation, with `faults` deciding when instances fail (their first events
    /// scheduled now).
    pub fn with_faults(mut self, mut faults: Box<dyn Faults>) -> Self {
        faults.start(&mut self.ctx.calendar, self.ctx.horizon);
        self.faults = Some(faults);
        self
    }

    /// The same simulation, with the call policies of `edges` applied by a guard (none
    /// when `edges` is empty), its retry streams seeded from `seed`.
    pub fn with_call_policies(mut self, edges: &[crate::policy::EdgePolicy], seed: u64) -> Self {
        if !edges.is_empty() {
            self.ctx.guards = Some(Box::new(Guards::new(
                edges,
                &self.ctx.groups,
                seed,
                self.warmup_end,
            )));
        }
        self
    }

    /// The call policies' edges and what they counted (empty without policies).
    pub fn guard_edges(&self) -> &[Edge] {
        self.ctx.guards.as_deref().map_or(&[], |g| &g.edges)
    }

    /// Every fault window of the run (empty without faults).
    pub fn fault_windows(&self) -> &[FaultWindow] {
        self.faults.as_ref().map_or(&[], |f| f.windows())
    }

    /// A fault event fires: what its decider says happens, happens.
    #[cold]
    #[inline(never)]
    fn fault(&mut self, fault: u32, instance: InstanceId, begin: bool) {
        let Some(faults) = self.faults.as_mut() else {
            return;
        };
        let mut actions = std::mem::take(&mut self.actions);
        let horizon = self.ctx.horizon;
        faults.fire(
            fault,
            instance,
            begin,
            &mut self.ctx.calendar,
            horizon,
            &mut actions,
        );
        for action in actions.drain(..) {
            self.act(action);
        }
        self.actions = actions;
    }

    /// Carries out one fault action.
    pub fn act(&mut self, action: FaultAction) {
        let ctx = dyn_ctx(&mut self.ctx);
        let components = &mut self.components;
        match action {
            FaultAction::Crash {
                instance,
                mode,
                leaves_group,
            } => {
                super::fault::crash(ctx, components, instance, mode);
                if leaves_group {
                    ctx.set_up(instance, false);
                }
            }
            FaultAction::Recover {
                instance,
                leaves_group,
            } => {
                super::fault::recover(ctx, components, instance);
                if leaves_group {
                    ctx.set_up(instance, true);
                }
            }
            FaultAction::Degrade {
                instance,
                degradation,
            } => components[instance as usize].set_degradation(degradation, ctx),
            FaultAction::Flush { instance } => components[instance as usize].on_flush(ctx),
            FaultAction::Partition { fault, on } => {
                if let Some(net) = ctx.network.as_deref_mut() {
                    net.set_partition(fault, on);
                }
                for c in components.iter_mut() {
                    c.on_network_change(ctx);
                }
                if !on {
                    ctx.release_orphans();
                }
            }
        }
    }

    /// Runs until the end of the model's duration, or until nothing is left to happen.
    pub fn run(&mut self) -> Result<(), RunError> {
        let horizon = self.ctx.horizon;
        if self.ctx.now() <= horizon {
            self.run_to(horizon);
        }
        // Events past the horizon are left pending, never popped.
        self.events = self.ctx.calendar.popped();
        if self.ctx.calendar.stalled() {
            return Err(RunError::Stalled {
                at_s: self.ctx.now().as_secs_f64(),
            });
        }
        // The measurement window closes at `duration`: the calendar running dry means only
        // that nothing more happens before it (the next arrival falls after it, or every
        // request waits forever), and that quiet time is measured too. Only a run whose
        // workloads have all run out (a trace or a `requests` limit) with every request
        // answered ends at its last event.
        let last = if let Some(at) = self.ctx.stopped_at {
            at
        } else if self.ctx.calendar.is_empty() && self.ran_out() {
            self.ctx.now()
        } else {
            horizon
        };
        self.end = last.max(self.warmup_end);
        self.finished = true;
        Ok(())
    }

    /// Handles every event due at or before `until` (not before now), watched or not.
    fn run_to(&mut self, until: SimTime) {
        self.ctx.calendar.set_stall_limit(STALL_LIMIT);
        self.ctx.calendar.set_limit(until);
        match (self.watcher.is_some(), self.prefetch_to.is_empty()) {
            (true, _) => self.run_loop::<true, false>(),
            (false, false) => self.run_loop::<false, true>(),
            (false, true) => self.run_loop::<false, false>(),
        }
    }

    /// The one run loop, for a whole run and for a run stepped window by window alike: the
    /// calendar stops at its limit (the end of the run or of the window), which costs the
    /// one comparison of an event's time a loop needs anyway.
    #[inline(never)]
    fn run_loop<const WATCHED: bool, const PREFETCH: bool>(&mut self) {
        // Unpacked where it is dispatched: the unpacking's match on the event's kind and
        // the dispatch's are then adjacent and fold into one. The pop stops short of a
        // deferred event (a fault's start or end): it joins the calendar here, and the
        // loop goes on.
        loop {
            while let Some((_, event)) = self.ctx.calendar.pop_packed() {
                self.handle::<WATCHED, PREFETCH>(event.unpack());
            }
            if !self.ctx.calendar.undefer() {
                break;
            }
        }
    }

    /// When the run ends, once nothing is left to happen and its workloads have run out
    /// (as [`Self::run`] would then end it: at the last event, or at the end of the
    /// warm-up); `None` while something may still happen.
    pub fn over_at(&self) -> Option<SimTime> {
        (self.ctx.calendar.is_empty() && self.ran_out())
            .then(|| self.ctx.now().max(self.warmup_end))
    }

    /// True when no source will create another request (each reached its `requests`
    /// limit or replayed its whole trace) and no request is left in the system.
    fn ran_out(&self) -> bool {
        self.ctx.calls.live() == 0 && self.ctx.clients.exhausted()
    }

    #[inline(always)]
    fn dispatch<const PREFETCH: bool>(&mut self, event: Event) {
        // Components see the context with any sources; the loop's own calls to the
        // sources (generate, timeouts) are direct.
        let ctx = &mut self.ctx;
        let components = &mut self.components;
        match event {
            Event::Arrive { to, call } => components[to as usize].on_arrive(call, dyn_ctx(ctx)),
            Event::Reply { to, call } => {
                if ctx.guards.is_some() {
                    return guarded_reply(ctx, components, to, call);
                }
                let child = *ctx.calls.get(call);
                ctx.calls.remove(call);
                if PREFETCH
                    && self.reply_prefetch != NO_PREFETCH
                    && child.instance != self.reply_prefetch
                {
                    prefetch_key(components, self.reply_prefetch, child.key);
                }
                let current = ctx.is_awaited(&child);
                components[to as usize].on_reply(child.parent_call, &child, current, dyn_ctx(ctx));
            }
            Event::Timer { to, tag, data } => {
                components[to as usize].on_timer(tag, data, dyn_ctx(ctx));
            }
            Event::Generate { source, user } => {
                if let Some((to, call)) = generate(ctx, source, user) {
                    if PREFETCH {
                        prefetch(ctx, components, &self.prefetch_to, source);
                    }
                    components[to as usize].on_arrive(call, dyn_ctx(ctx));
                }
            }
            Event::ClientTimeout {
                request,
                generation,
            } => ctx.client_timeout(request, generation),
            Event::Answer { call } => ctx.answer_arrives(call),
            Event::WarmupEnd => {
                let now = ctx.now();
                ctx.measuring = true;
                for s in &mut ctx.stats {
                    s.clear();
                }
                for c in components.iter_mut() {
                    c.restart_stats(now);
                }
            }
            Event::Fault {
                fault,
                instance,
                begin,
            } => self.fault(fault, instance, begin),
            Event::Guard {
                what,
                call,
                generation,
            } => {
                if let Some((to, child, current)) = ctx.guard_event(what, call, generation) {
                    components[to as usize].on_reply(
                        child.parent_call,
                        &child,
                        current,
                        dyn_ctx(ctx),
                    );
                }
            }
            Event::ClientRetry { logical } => {
                if let Some((to, call)) = ctx.client_retry(logical) {
                    components[to as usize].on_arrive(call, dyn_ctx(ctx));
                }
            }
            Event::Control { to, tag, data } => self.control(to, tag, data),
        }
    }

    /// A controller's timer fires: it reads the instances' gauges, and what it asks for
    /// happens.
    #[cold]
    #[inline(never)]
    fn control(&mut self, to: InstanceId, tag: u32, data: u32) {
        let mut actions = std::mem::take(&mut self.actions);
        let ctx = dyn_ctx(&mut self.ctx);
        super::control::fire(ctx, &mut self.components, to, tag, data, &mut actions);
        for action in actions.drain(..) {
            self.act(action);
        }
        self.actions = actions;
    }

    /// What the controller instance `instance` did over the run (`None` for an instance
    /// that is not a controller).
    pub fn scaling(&self, instance: InstanceId) -> Option<&super::ScalingHistory> {
        self.components[instance as usize].scaling()
    }

    /// What each side of each network partition saw, as instance `instance` (a
    /// database's first copy) tells it (empty for other instances).
    pub fn partition_sides(&self, instance: InstanceId) -> Vec<crate::metrics::sides::SideRecord> {
        self.components[instance as usize].partition_sides()
    }

    /// Number of events handled so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Start and end of the measurement window.
    pub fn window(&self) -> (SimTime, SimTime) {
        (self.warmup_end, self.end)
    }

    /// When the run stopped early, at `max_in_flight` requests in flight.
    pub fn stopped_at(&self) -> Option<SimTime> {
        self.ctx.stopped_at
    }

    /// The engine state (totals, calls in flight, instance state).
    pub fn context(&self) -> &Context<C> {
        &self.ctx
    }

    /// The request sources (their statistics).
    pub fn clients(&self) -> &C {
        &self.ctx.clients
    }

    /// Handles every event due at or before `until` (for looking at a run midway; `run`
    /// goes on from there). The clock stays at the last event handled.
    pub fn advance_to(&mut self, until: SimTime) {
        if self.ctx.now() <= until {
            self.run_to(until);
        }
    }

    /// Handles at most `events` events, none due after the run's end; false when none is
    /// left to handle before it (the calendar ran dry or the run stopped), so that `run`
    /// only closes the run.
    pub fn advance_by(&mut self, events: u64) -> bool {
        match (self.watcher.is_some(), self.prefetch_to.is_empty()) {
            (true, _) => self.advance_by_loop::<true, false>(events),
            (false, false) => self.advance_by_loop::<false, true>(events),
            (false, true) => self.advance_by_loop::<false, false>(events),
        }
    }

    #[inline(never)]
    fn advance_by_loop<const WATCHED: bool, const PREFETCH: bool>(&mut self, events: u64) -> bool {
        self.ctx.calendar.set_stall_limit(STALL_LIMIT);
        let horizon = self.ctx.horizon;
        if self.ctx.now() > horizon {
            return false;
        }
        self.ctx.calendar.set_limit(horizon);
        for _ in 0..events {
            let Some((_, event)) = self.ctx.calendar.pop() else {
                return false;
            };
            self.handle::<WATCHED, PREFETCH>(event);
        }
        true
    }

    /// Statistics of every instance over the measurement window so far, up to `now` (for
    /// looking at a run midway, after [`Self::advance_to`]).
    pub fn reports_at(&self, now: SimTime) -> Vec<InstanceReport> {
        self.components.iter().map(|c| c.report(now)).collect()
    }

    /// Instance `instance` restarts: its pending timers are dropped as stale, it is up,
    /// and its start hook runs again.
    pub fn restart(&mut self, instance: InstanceId) {
        self.ctx.drop_timers(instance);
        self.ctx.set_up(instance, true);
        self.components[instance as usize].start(&mut self.ctx);
    }

    /// Marks instance `instance` up or down (see [`Ctx::set_up`]).
    pub fn set_up(&mut self, instance: InstanceId, up: bool) {
        self.ctx.set_up(instance, up);
    }

    /// Statistics of every instance, in instance order.
    pub fn instance_reports(&self) -> Vec<InstanceReport> {
        assert!(self.finished, "reports are taken after the run");
        self.components.iter().map(|c| c.report(self.end)).collect()
    }
}

/// The context as components see it.
#[inline(always)]
fn dyn_ctx<C: Clients>(ctx: &mut Context<C>) -> &mut Ctx {
    ctx
}

/// A reply in a model with call policies: the guard takes an attempt's, the component
/// gets the others' and the logical calls the guard answers.
#[cold]
#[inline(never)]
fn guarded_reply<C: Clients>(
    ctx: &mut Context<C>,
    components: &mut [Box<dyn Component>],
    to: InstanceId,
    call: CallId,
) {
    if let Some((to, child, current)) = ctx.guarded_reply(to, call) {
        components[to as usize].on_reply(child.parent_call, &child, current, dyn_ctx(ctx));
    }
}

/// A new request would pass `max_in_flight`: the run stops now, with what it measured.
#[cold]
#[inline(never)]
fn stop_early<C: Clients>(ctx: &mut Context<C>) {
    ctx.stopped_at = Some(ctx.now());
    ctx.calendar.halt();
}

/// For each source: the instance its requests' keys reach first, when it wants them ahead
/// ([`Component::prefetches`]), found by following from the source's first group the
/// single instance of each group and the groups it calls first with the key (the first
/// that leads to one: a service whose reads call a cache first and whose writes call the
/// database first still warms the cache for every request, a hint that costs a write's
/// key little); the sources found are told to draw their keys ahead. Empty when none is
/// found.
fn prefetch_targets<C: Clients>(
    ctx: &mut Context<C>,
    components: &[Box<dyn Component>],
) -> Vec<InstanceId> {
    let mut targets = vec![NO_PREFETCH; ctx.stats.len()];
    for (source, target) in targets.iter_mut().enumerate() {
        let first = ctx.clients.first_group(source as u32);
        if let Some(instance) = first.and_then(|g| prefetcher(ctx, components, g, PREFETCH_HOPS)) {
            *target = instance;
            ctx.clients.look_ahead(source as u32);
        }
    }
    if targets.iter().all(|t| *t == NO_PREFETCH) {
        targets.clear();
    }
    targets
}

/// The instance that looks up the keys of the calls to `group`, within `hops` groups: the
/// group's single instance if it prefetches, or the first found past it.
fn prefetcher<C: Clients>(
    ctx: &Context<C>,
    components: &[Box<dyn Component>],
    group: u32,
    hops: usize,
) -> Option<InstanceId> {
    let &[instance] = ctx.groups[group as usize].members() else {
        return None;
    };
    let component = &components[instance as usize];
    if component.prefetches() {
        return Some(instance);
    }
    let hops = hops.checked_sub(1)?;
    let callees = component.key_callees();
    callees
        .into_iter()
        .find_map(|g| prefetcher(ctx, components, g, hops))
}

/// Hands the instance that will look up the keys of the requests of `source` the keys of
/// the next three (see [`prefetch_targets`]).
/// Out of line: a model that has it spends far more waiting for memory than calling.
#[inline(never)]
fn prefetch<C: Clients>(
    ctx: &Context<C>,
    components: &[Box<dyn Component>],
    targets: &[InstanceId],
    source: u32,
) {
    let to = targets[source as usize];
    if to == NO_PREFETCH {
        return;
    }
    if let Some(keys) = ctx.clients.keys_ahead(source) {
        components[to as usize].prefetch(&keys);
    }
}

/// Hands `key`, that of a reply from another instance (a database's answer to a cache-aside
/// miss), to the instance `to` that looks keys up: the caller will likely look the key up
/// there next (set it).
#[inline(never)]
fn prefetch_key(components: &[Box<dyn Component>], to: InstanceId, key: u64) {
    components[to as usize].prefetch_key(key);
}

/// A source's generate event: the source schedules what comes next, then this request
/// starts. Returns where its first call goes.
#[inline(always)]
fn generate<C: Clients>(
    ctx: &mut Context<C>,
    source: u32,
    user: u32,
) -> Option<(InstanceId, CallId)> {
    if ctx.in_flight >= ctx.max_in_flight {
        stop_early(ctx);
        return None;
    }
    let new = ctx
        .clients
        .generate(source, user, &mut ctx.calendar, ctx.horizon)?;
    ctx.start_request(source, new)
}
