//! What a component sees of the engine: the clock, the calendar, the call slab, the
//! groups it can call and the state of every instance. Components talk only through the
//! context, never to each other.

use super::calendar::Calendar;
use super::call::{CLIENT, Call, ClientWait, Outcome, Request, Slab};
use super::clients::{Answer, Clients, NewRequest};
use super::control::{Gauges, ScalingHistory};
use super::event::{CallId, Event, InstanceId, RequestId};
use super::fault::{CrashMode, Degradation, FaultAction};
use crate::metrics::{ClientStats, ErrorCause, InstanceReport};
use crate::network::{Latencies, NO_ZONE, Zone};
use crate::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// The instance a call goes to when its group has no live member (it fails at once).
pub const NOBODY: InstanceId = InstanceId::MAX;

/// A component instance: reacts to calls, replies and its own timers.
pub trait Component {
    /// The run begins (or the instance came back after a restart): set the timers it
    /// owns, read the groups it works with. Called once per instance before the first
    /// event.
    fn start(&mut self, _ctx: &mut Ctx) {}
    /// A call arrives at this instance.
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx);
    /// A call this instance made has finished. `parent` is this instance's call that made
    /// it; `child` is a copy of the finished call (already freed). Replies that arrive after
    /// the parent stopped waiting for them (`current` is false) are delivered too, so a
    /// component that counts outstanding calls stays exact.
    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx);
    /// A timer this instance set expires.
    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx);
    /// The warm-up ends at `now`: forget the statistics gathered so far.
    fn restart_stats(&mut self, now: SimTime);
    /// Statistics of the measurement window ending at `now`.
    fn report(&self, now: SimTime) -> InstanceReport;
    /// The instance crashes now: forget every call it holds (the engine fails them back
    /// to their callers or leaves them unanswered, and drops its timers) and whatever it
    /// keeps in memory (a cache's keys), keeping its statistics. Replies to calls it made
    /// before arrive later as not `current`. [`Component::start`] runs when it recovers.
    fn on_crash(&mut self, _ctx: &mut Ctx) {}
    /// The instance runs degraded from now on (a gray failure), or normally again.
    fn set_degradation(&mut self, _d: Degradation, _ctx: &mut Ctx) {}
    /// The instance forgets the keys it holds (a cache flush); calls go on.
    fn on_flush(&mut self, _ctx: &mut Ctx) {}
    /// A partition of the network began or ended ([`Ctx::reachable`] says what is cut
    /// now): a replicated store reconciles its copies when they can talk again.
    fn on_network_change(&mut self, _ctx: &mut Ctx) {}
    /// What a controller can read of the instance now (see `engine/control.rs`); the
    /// default, for kinds no controller reads, is empty.
    fn gauges(&self, _now: SimTime) -> Gauges {
        Gauges::default()
    }
    /// For a controller (an autoscaler): its control timer fires ([`Context::control_timer`]).
    /// `gauges` reads any other instance; `actions` takes what the engine is to do to them.
    fn on_control(
        &mut self,
        _tag: u32,
        _data: u32,
        _ctx: &mut Ctx,
        _gauges: &dyn Fn(InstanceId) -> Gauges,
        _actions: &mut Vec<FaultAction>,
    ) {
    }
    /// For a controller: what it did over the run.
    fn scaling(&self) -> Option<&ScalingHistory> {
        None
    }
    /// For a replicated database with a `partition_mode`: what each side of each network
    /// partition saw (asked of its first instance only; empty for every other component).
    fn partition_sides(&self) -> Vec<crate::metrics::sides::SideRecord> {
        Vec::new()
    }
    /// For the engine's stand-in of a crashed instance: hands back the instance it holds.
    fn take_inner(&mut self) -> Option<Box<dyn Component>> {
        None
    }
    /// True for the engine's stand-in of a crashed instance.
    fn is_stand_in(&self) -> bool {
        false
    }
    /// The groups this instance calls first with the key of a call it gets (a service: the
    /// first call of each of its handlers, in handler order, without repeats), so the engine
    /// can look past it for the instance that will look the key up (see
    /// [`Component::prefetch`]).
    fn key_callees(&self) -> Vec<u32> {
        Vec::new()
    }
    /// True when the instance reads memory by key that is worth warming before a call
    /// arrives (a large cache): the engine then hands it the keys of the coming requests
    /// through [`Component::prefetch`].
    fn prefetches(&self) -> bool {
        false
    }
    /// Warms the memory the instance will read for the keys of the coming calls: `keys` are
    /// those of the next three requests after the one just created, in order. A hint for
    /// the processor's caches only: it changes no state and no result.
    fn prefetch(&self, _keys: &[u64; 3]) {}
    /// Warms the memory the instance will read for a call with `key` soon (a set after a
    /// fill from the database); a hint like [`Component::prefetch`].
    fn prefetch_key(&self, _key: u64) {}
}

/// How a group chooses the live member that takes a call, for a component whose instances
/// play different parts (a database's primary and its replicas): by the call's operation and
/// key, and by who calls. Groups without one take their live members in turn.
pub trait Pick: std::fmt::Debug {
    /// The member of `live` (the group's instances that are up, in member order) that takes
    /// a call of operation `op` about `key` made by instance `from` (or [`CLIENT`]); `None`
    /// when none of them can (the call then fails as unavailable).
    fn pick(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        live: &[InstanceId],
    ) -> Option<InstanceId>;
    /// While a partition cuts the network: the member of `live` that takes the call, for a
    /// caller that can reach the instances for which `reach` is true (a database sends a
    /// caller to the copies on its side). By default the same as [`Pick::pick`] (the
    /// network then cuts a call sent across).
    fn pick_reachable(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        live: &[InstanceId],
        _reach: &dyn Fn(InstanceId) -> bool,
    ) -> Option<InstanceId> {
        self.pick(from, op, key, live)
    }
}

/// A named set of instances that calls are addressed to (a component with its replicas).
/// Calls go to its live members only; which members are live is the instances' state,
/// changed through [`Ctx::set_up`].
#[derive(Debug)]
pub struct Group {
    /// Component name.
    pub name: String,
    /// Its instances.
    members: Vec<InstanceId>,
    /// The members that are up, in member order.
    live: Vec<InstanceId>,
    next: usize,
    /// Chooses the member that takes a call, when not in turn.
    picker: Option<Box<dyn Pick>>,
    /// For a group with no member that stands for a refusal: how a request sent to it
    /// fails (else [`ErrorCause::Unavailable`]).
    refusal: Option<ErrorCause>,
}

impl Group {
    /// A group over `members`, all up, taking calls in turn.
    pub fn new(name: String, members: Vec<InstanceId>) -> Self {
        Group {
            name,
            live: members.clone(),
            members,
            next: 0,
            picker: None,
            refusal: None,
        }
    }
    /// A group with no member to which a request source sends the requests it refuses
    /// itself (a client's rate limit): they fail at once with `cause`, unsent.
    pub fn refusing(name: String, cause: ErrorCause) -> Self {
        Group {
            refusal: Some(cause),
            ..Group::new(name, Vec::new())
        }
    }
    /// The same group, whose calls `picker` sends to its members.
    pub fn with_picker(mut self, picker: Option<Box<dyn Pick>>) -> Self {
        self.picker = picker;
        self
    }
    /// Every instance of the group, up or down.
    pub fn members(&self) -> &[InstanceId] {
        &self.members
    }
    /// The instances that are up, in member order.
    #[inline]
    pub fn live(&self) -> &[InstanceId] {
        &self.live
    }
    /// The instance that takes the next call: round robin over the live members when
    /// there are several; `None` when none is up.
    #[inline]
    pub fn pick(&mut self) -> Option<InstanceId> {
        let n = self.live.len();
        if n <= 1 {
            return self.live.first().copied();
        }
        let i = self.live[self.next];
        self.next = if self.next + 1 >= n { 0 } else { self.next + 1 };
        Some(i)
    }
    /// The instance that takes a call of operation `op` about `key` from `from`: the
    /// group's picker's choice if it has one, else the next in turn.
    #[inline(always)]
    pub fn pick_for(&mut self, from: InstanceId, op: u8, key: u64) -> Option<InstanceId> {
        match &mut self.picker {
            None => self.pick(),
            Some(p) => p.pick(from, op, key, &self.live),
        }
    }
    /// [`Group::pick_for`] for a caller in the zone `zone` gives: while `net` is cut, a
    /// group with a picker picks among what the caller can reach. Costs nothing more for a
    /// group without a picker, and one branch for one with a picker.
    #[inline(always)]
    pub fn pick_in(
        &mut self,
        from: InstanceId,
        op: u8,
        key: u64,
        net: Option<&Latencies>,
        zone: impl FnOnce() -> Zone,
    ) -> Option<InstanceId> {
        match &mut self.picker {
            None => self.pick(),
            Some(p) => match net {
                Some(net) if net.is_cut() => {
                    let zone = zone();
                    let reach = |i: InstanceId| net.cut_between(zone, net.zone_of(i)).is_none();
                    p.pick_reachable(from, op, key, &self.live, &reach)
                }
                _ => p.pick(from, op, key, &self.live),
            },
        }
    }
    /// Recomputes the live members from the instances' state.
    pub(super) fn refresh(&mut self, up: &[bool]) {
        self.live.clear();
        let up = self.members.iter().filter(|i| up[**i as usize]);
        self.live.extend(up);
        if self.next >= self.live.len() {
            self.next = 0;
        }
    }
}

/// Whole-run request counts, for the conservation check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Requests created.
    pub arrived: u64,
    /// Requests answered successfully.
    pub completed: u64,
    /// Requests answered with a failure (including client timeouts).
    pub failed: u64,
}

/// The engine state components act on, with the run's request sources `C`. Components
/// see it as [`Ctx`] (any sources); the run loop holds it with its own sources' type, so
/// what it asks of them is a direct call.
#[derive(Debug)]
pub struct Context<C: Clients + ?Sized> {
    /// Pending events.
    pub calendar: Calendar,
    /// Calls in flight.
    pub calls: Slab<Call>,
    /// Requests in flight, by the id of their first call (other slots are stale).
    pub requests: Vec<Request>,
    /// Call targets by group id.
    pub groups: Vec<Group>,
    /// The group of each instance.
    pub(crate) group_of: Vec<u32>,
    /// True for each instance that is up (takes calls).
    pub(crate) up: Vec<bool>,
    /// Bumped whenever an instance goes up or down, so a component that keeps a view of
    /// some groups' live members knows when to refresh it.
    pub(crate) membership: u64,
    /// True once warm-up is over.
    pub measuring: bool,
    /// Whole-run counts.
    pub totals: Totals,
    /// Time after which nothing is generated.
    pub horizon: SimTime,
    /// Requests created and not yet finished (answered or not: a request whose client
    /// timed out stays until its work ends).
    pub in_flight: u64,
    /// The model's `max_in_flight`.
    pub max_in_flight: u64,
    /// When the run stopped early because `in_flight` reached `max_in_flight`.
    pub stopped_at: Option<SimTime>,
    /// Client timeout events in the calendar whose request already finished: they will do
    /// nothing when they fire.
    pub stale_timeouts: u64,
    /// Stale timeouts at which the calendar is next considered for compaction.
    pub compact_at: u64,
    /// What the clients of each source saw in the measurement window.
    pub stats: Vec<ClientStats>,
    /// Zones and latencies, in a model with a network: every message between zones is
    /// delayed. `None` costs one predictable branch where a message leaves (boxed, so that
    /// the test is of a pointer against zero).
    pub(crate) network: Option<Box<Latencies>>,
    /// Calls a black-holed instance swallowed, by (request, call): (call generation,
    /// request generation). Freed when their request's client times out.
    pub(crate) parked: BTreeMap<(RequestId, CallId), (u32, u32)>,
    /// Since when and how each crashed instance is down, by instance; empty until the
    /// first crash of the run (see [`Context::crash_state`]).
    pub(crate) crashes: Vec<Option<CrashState>>,
    /// Call policies (`calls_to`), in a model that has any: calls and replies of the
    /// guarded edges go through it (see [`super::guard`]). `None` costs one predictable
    /// branch where a call leaves and where a reply returns.
    pub(crate) guards: Option<Box<super::guard::Guards>>,
    /// Client retries, in a run whose workloads retry (see `engine/retry.rs`). `None`
    /// costs one branch where a failure is answered, nothing where a success is.
    pub(crate) retries: Option<Box<super::retry::ClientRetries>>,
    /// The request sources (the last field, so a context of any sources is a [`Ctx`]).
    pub(crate) clients: C,
}

/// Stale client timeouts tolerated before the calendar is compacted: below this they cost
/// little memory, and the compaction (which changes the count of events handled) never
/// happens.
pub const COMPACT_MIN_STALE: u64 = 1 << 16;

/// An instance that is down after a crash: since when, and how it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashState {
    /// When it crashed.
    pub since: SimTime,
    /// How it answers calls while down.
    pub mode: CrashMode,
}

/// The engine state as components see it.
pub type Ctx = Context<dyn Clients>;

impl<C: Clients + ?Sized> Context<C> {
    /// Current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.calendar.now()
    }

    /// The call `id`.
    #[inline]
    pub fn call(&self, id: CallId) -> &Call {
        self.calls.get(id)
    }

    /// The call `id`, mutably.
    #[inline]
    pub fn call_mut(&mut self, id: CallId) -> &mut Call {
        self.calls.get_mut(id)
    }

    /// Sets a timer for instance `to`, `delay` from now. It is dropped unfired if the
    /// instance restarts meanwhile (see [`Context::drop_timers`]).
    #[inline(always)]
    pub fn timer(&mut self, to: InstanceId, delay: SimDuration, tag: u32, data: u32) {
        let at = self.now().after(delay);
        self.calendar.schedule(at, Event::Timer { to, tag, data });
    }

    /// The group instance `instance` belongs to.
    pub fn group_of(&self, instance: InstanceId) -> u32 {
        self.group_of[instance as usize]
    }

    /// True if instance `instance` is up (takes calls).
    pub fn is_up(&self, instance: InstanceId) -> bool {
        self.up[instance as usize]
    }

    /// Marks instance `instance` up or down: its group's calls go to it again, or no
    /// longer do (calls it already holds are left to whoever brought it down).
    pub fn set_up(&mut self, instance: InstanceId, up: bool) {
        if self.up[instance as usize] == up {
            return;
        }
        self.up[instance as usize] = up;
        let g = self.group_of[instance as usize] as usize;
        self.groups[g].refresh(&self.up);
        self.membership += 1;
    }

    /// Since when and how instance `instance` is down after a crash; `None` while it is
    /// up. A read-only look at the engine's own state, for what models the outside world
    /// finding out (a balancer's health checks); nothing on the path of a call reads it.
    #[inline]
    pub fn crash_state(&self, instance: InstanceId) -> Option<CrashState> {
        self.crashes.get(instance as usize).copied().flatten()
    }

    /// Records that instance `instance` crashed now in `mode` (`Some`) or came back.
    pub(crate) fn set_crashed(&mut self, instance: InstanceId, mode: Option<CrashMode>) {
        if self.crashes.is_empty() {
            if mode.is_none() {
                return;
            }
            self.crashes = vec![None; self.up.len()];
        }
        let since = self.now();
        self.crashes[instance as usize] = mode.map(|mode| CrashState { since, mode });
    }

    /// Counts changes of the live members of any group: equal values mean the same
    /// members are live.
    #[inline]
    pub fn membership(&self) -> u64 {
        self.membership
    }

    /// The pending timers of instance `instance` are stale (it crashed or restarted, and
    /// what they were for is gone): they are removed from the calendar and never fire.
    /// Returns how many there were. This scans the calendar, so that timers cost nothing
    /// extra as long as no instance restarts (a rare event).
    pub fn drop_timers(&mut self, instance: InstanceId) -> usize {
        let before = self.calendar.len();
        self.calendar.retain(
            |e| !matches!(e, Event::Timer { to, .. } | Event::Control { to, .. } if to == instance),
        );
        before - self.calendar.len()
    }

    /// The calls instance `instance` holds and has not answered: waiting in its queue,
    /// being served, or waiting on calls it made. Found by scanning the call slab (the
    /// engine keeps no per-event record of it); for rare events such as a crash.
    pub fn calls_at(&self, instance: InstanceId) -> Vec<CallId> {
        let live = self.calls.live_map();
        (0..live.len() as CallId)
            .filter(|&id| {
                let c = self.calls.get(id);
                live[id as usize] && c.instance == instance && c.outcome == Outcome::Pending
            })
            .collect()
    }

    /// Makes a child call of `parent` (made by instance `from`) to group `group`, which
    /// delivers it to one of its live instances now. Returns the child. With no live
    /// instance the child fails at once ([`ErrorCause::Unavailable`]).
    #[inline]
    pub fn call_group(&mut self, from: InstanceId, parent: CallId, group: u32, op: u8) -> CallId {
        if self.guards.is_some() {
            return self.guarded_call(from, parent, group, NOBODY, op);
        }
        self.pick_and_send(from, parent, group, op)
    }

    /// [`Context::call_group`] without a policy.
    #[inline(always)]
    pub(super) fn pick_and_send(
        &mut self,
        from: InstanceId,
        parent: CallId,
        group: u32,
        op: u8,
    ) -> CallId {
        let p = self.calls.get(parent);
        let (key, zone) = (p.key, p.zone);
        let net = self.network.as_deref();
        match self.groups[group as usize].pick_in(from, op, key, net, || zone) {
            Some(to) => self.send_child(from, parent, to, op),
            None => self.call_unavailable(from, parent, op),
        }
    }

    /// `call` cannot go on: no instance of the group it is sent to is live.
    #[cold]
    #[inline(never)]
    fn unavailable(&mut self, call: CallId) {
        self.reply(call, Outcome::Failed(ErrorCause::Unavailable));
    }

    /// A child call of `parent` to a group with no live instance: it fails at once, and
    /// the failure comes back to `from` as a reply.
    /// A new call of `parent`'s request, made by instance `from` to instance `to` with
    /// operation `op`, answering to `parent`.
    #[inline(always)]
    pub(super) fn child_call(
        &self,
        from: InstanceId,
        parent: CallId,
        to: InstanceId,
        op: u8,
    ) -> Call {
        let p = self.calls.get(parent);
        Call {
            request: p.request,
            class: p.class,
            key: p.key,
            op,
            parent: from,
            parent_call: parent,
            parent_generation: p.generation,
            parent_round: p.round,
            instance: to,
            ..Call::default()
        }
    }

    #[cold]
    #[inline(never)]
    fn call_unavailable(&mut self, from: InstanceId, parent: CallId, op: u8) -> CallId {
        let id = self.calls.insert(Call {
            outcome: Outcome::Failed(ErrorCause::Unavailable),
            ..self.child_call(from, parent, NOBODY, op)
        });
        self.calendar
            .schedule_now(Event::Reply { to: from, call: id });
        id
    }

    /// Makes a child call of `parent` (made by instance `from`) straight to instance `to`.
    #[inline]
    pub fn call_instance(
        &mut self,
        from: InstanceId,
        parent: CallId,
        to: InstanceId,
        op: u8,
    ) -> CallId {
        if self.guards.is_some() {
            let group = self.group_of[to as usize];
            return self.guarded_call(from, parent, group, to, op);
        }
        self.send_child(from, parent, to, op)
    }

    /// [`Context::call_instance`] without a policy.
    #[inline(always)]
    pub(super) fn send_child(
        &mut self,
        from: InstanceId,
        parent: CallId,
        to: InstanceId,
        op: u8,
    ) -> CallId {
        let child = self.child_call(from, parent, to, op);
        let id = self.calls.insert(child);
        if self.network.is_none() {
            self.calendar.schedule_now(Event::Arrive { to, call: id });
        } else {
            let zone = self.calls.get(parent).zone;
            self.send_across(id, zone, to);
        }
        id
    }

    /// Sends `call`, already in the slab and made by its `parent` instance, to instance `to`
    /// (for a component that builds a call of its own rather than a child of one it holds).
    pub fn send(&mut self, call: CallId, to: InstanceId) {
        if self.network.is_none() {
            self.calendar.schedule_now(Event::Arrive { to, call });
        } else {
            let zone = self.zone_of(self.calls.get(call).parent);
            self.send_across(call, zone, to);
        }
    }

    /// True when the model has a network (instances in zones).
    #[inline]
    pub fn has_network(&self) -> bool {
        self.network.is_some()
    }

    /// The network zone of instance `instance` (1 and up; [`NO_ZONE`] when it has none, or
    /// the model has no network, or it is [`CLIENT`]).
    #[inline]
    pub fn zone_of(&self, instance: InstanceId) -> Zone {
        match &self.network {
            Some(net) if instance != CLIENT => net.zone_of(instance),
            _ => NO_ZONE,
        }
    }

    /// The delay of one message of a component's own from instance `from` to instance `to`
    /// (a database copy sending a write to another, or acknowledging it): nothing without a
    /// network or when either has no zone, else a draw of the latency between their zones,
    /// from the network's stream like every call's.
    pub fn message_delay(&mut self, from: InstanceId, to: InstanceId) -> SimDuration {
        let (a, b) = (self.zone_of(from), self.zone_of(to));
        match &mut self.network {
            Some(net) => net.delay(a, b),
            None => SimDuration::ZERO,
        }
    }

    /// Number of zones of the network (0 without one).
    pub fn zones(&self) -> usize {
        self.network.as_deref().map_or(0, Latencies::zones)
    }

    /// Delivers `call` to instance `to` across the network, from zone `from`: the call
    /// takes the zone of `to` and arrives after a draw of the latency between the two; an
    /// instance with no zone is beside its sender (the call keeps `from` and arrives now).
    #[inline(never)]
    pub(super) fn send_across(&mut self, call: CallId, from: Zone, to: InstanceId) {
        let Some(net) = &mut self.network else {
            return self.calendar.schedule_now(Event::Arrive { to, call });
        };
        let (zone, delay) = match net.zone_of(to) {
            NO_ZONE => (from, SimDuration::ZERO),
            z => {
                if net.is_cut()
                    && let Some(mode) = net.cut_between(from, z)
                {
                    return self.cut_off(call, from, mode);
                }
                (z, net.delay(from, z))
            }
        };
        self.calls.get_mut(call).zone = zone;
        self.deliver_after(delay, Event::Arrive { to, call });
    }

    /// `call`, leaving zone `from`, meets a partition: refused, it fails at once where it
    /// is ([`ErrorCause::Partitioned`]); in a black hole, it is never answered, until the
    /// client of its request gives up (as a call to a black-holed instance).
    #[cold]
    #[inline(never)]
    fn cut_off(&mut self, call: CallId, from: Zone, mode: super::fault::CrashMode) {
        let c = self.calls.get_mut(call);
        c.zone = from;
        match mode {
            super::fault::CrashMode::BlackHole => self.park(call),
            super::fault::CrashMode::Refused => {
                let outcome = Outcome::Failed(ErrorCause::Partitioned);
                c.outcome = outcome;
                let (to, class) = (c.parent, c.class);
                if to == CLIENT {
                    self.end_request(call, class, outcome);
                } else {
                    self.calendar.schedule_now(Event::Reply { to, call });
                }
            }
        }
    }

    /// True when a message from zone `from` to zone `to` gets through now: no partition
    /// cuts them (always true without a network or when either is [`NO_ZONE`]).
    #[inline]
    pub fn reachable(&self, from: Zone, to: Zone) -> bool {
        match &self.network {
            Some(net) => net.cut_between(from, to).is_none(),
            None => true,
        }
    }

    /// What a message from zone `from` to zone `to` meets now: `None` when it gets
    /// through, else how the partition that cuts them answers (refused or black hole).
    pub fn cut_between(&self, from: Zone, to: Zone) -> Option<CrashMode> {
        self.network
            .as_deref()
            .and_then(|net| net.cut_between(from, to))
    }

    /// The partition faults on now (fault numbers, in the order they began); empty when
    /// none is or without a network.
    pub fn partitions_on(&self) -> Vec<u32> {
        self.network
            .as_deref()
            .map_or_else(Vec::new, Latencies::partitions_on)
    }

    /// True while a partition cuts the network.
    #[inline]
    pub fn is_partitioned(&self) -> bool {
        self.network.as_deref().is_some_and(Latencies::is_cut)
    }

    /// Schedules `event` `delay` from now: in the same-time lane when `delay` is zero, as
    /// a message with no network would be.
    #[inline(always)]
    fn deliver_after(&mut self, delay: SimDuration, event: Event) {
        if delay.0 == 0 {
            self.calendar.schedule_now(event);
        } else {
            let at = self.now().after(delay);
            self.calendar.schedule(at, event);
        }
    }

    /// The reply of `call` goes back to instance `to` across the network: from the zone
    /// the call was worked on in to its parent's (nothing when an instance with no zone
    /// answers a caller of its own zone: it is beside it).
    #[inline(never)]
    fn reply_across(&mut self, call: CallId, to: InstanceId) {
        let c = *self.calls.get(call);
        let Some(net) = &mut self.network else {
            return self.calendar.schedule_now(Event::Reply { to, call });
        };
        let back = match net.zone_of(to) {
            NO_ZONE => {
                // The parent has no zone: it works where its own call is (if that call is
                // still the one waiting; a stale reply crosses nothing).
                let p = self.calls.get(c.parent_call);
                if p.generation == c.parent_generation {
                    p.zone
                } else {
                    c.zone
                }
            }
            z => z,
        };
        let delay = if back == c.zone && net.zone_of(c.instance) == NO_ZONE {
            SimDuration::ZERO
        } else {
            net.delay(c.zone, back)
        };
        self.deliver_after(delay, Event::Reply { to, call });
    }

    /// The first call of a request from source `source`, to instance `to`, crosses the
    /// network from the clients' zone. Returns it when it arrives at once.
    #[inline(never)]
    pub(super) fn start_across(
        &mut self,
        source: u32,
        call: CallId,
        to: InstanceId,
    ) -> Option<(InstanceId, CallId)> {
        let net = self.network.as_deref_mut()?;
        let from = net.source_zone(source);
        let (zone, delay) = match net.zone_of(to) {
            NO_ZONE => (from, SimDuration::ZERO),
            z => {
                if net.is_cut()
                    && let Some(mode) = net.cut_between(from, z)
                {
                    self.cut_off(call, from, mode);
                    return None;
                }
                (z, net.delay(from, z))
            }
        };
        self.calls.get_mut(call).zone = zone;
        if delay.0 == 0 {
            return Some((to, call));
        }
        let at = self.now().after(delay);
        self.calendar.schedule(at, Event::Arrive { to, call });
        None
    }

    /// The answer to request `call` leaves for its client across the network. False when it
    /// crosses nothing (the client has it now).
    #[inline(never)]
    fn answer_later(&mut self, call: CallId) -> bool {
        let source = self.requests[call as usize].source;
        let zone = self.calls.get(call).zone;
        let Some(net) = &mut self.network else {
            return false;
        };
        let to = net.source_zone(source);
        let instance = self.calls.get(call).instance;
        let delay = if to == zone && net.zone_of(instance) == NO_ZONE {
            SimDuration::ZERO
        } else {
            net.delay(zone, to)
        };
        if delay.0 == 0 {
            return false;
        }
        let at = self.now().after(delay);
        self.calendar.schedule(at, Event::Answer { call });
        true
    }

    /// The answer to request `call` reaches its client (see [`Event::Answer`]).
    pub(crate) fn answer_arrives(&mut self, call: CallId) {
        let c = self.calls.get(call);
        let (class, outcome) = (c.class, c.outcome);
        self.end_request(call, class, outcome);
    }

    /// Moves `call` on to group `group` as a tail call: its answer will go straight to the
    /// call's own parent, and the current instance is done with it. With no live instance
    /// in the group the call fails ([`ErrorCause::Unavailable`]).
    #[inline]
    pub fn forward(&mut self, call: CallId, group: u32) {
        let c = self.calls.get(call);
        let (from, op, key, zone) = (c.instance, c.op, c.key, c.zone);
        let net = self.network.as_deref();
        let Some(to) = self.groups[group as usize].pick_in(from, op, key, net, || zone) else {
            return self.unavailable(call);
        };
        let c = self.calls.get_mut(call);
        c.instance = to;
        c.step = 0;
        if self.network.is_none() {
            self.calendar.schedule_now(Event::Arrive { to, call });
        } else {
            let zone = c.zone;
            self.send_across(call, zone, to);
        }
    }

    /// Finishes `call` with `outcome` and passes the answer to whoever made it.
    #[inline(always)]
    pub fn reply(&mut self, call: CallId, outcome: Outcome) {
        let c = self.calls.get_mut(call);
        debug_assert_ne!(
            c.parent,
            super::DETACHED,
            "a detached root is freed, not replied to"
        );
        c.outcome = outcome;
        if c.parent == CLIENT {
            let class = c.class;
            if self.network.is_some() && self.answer_later(call) {
                return;
            }
            self.end_request(call, class, outcome);
        } else {
            let to = c.parent;
            if self.network.is_none() {
                self.calendar.schedule_now(Event::Reply { to, call });
            } else {
                self.reply_across(call, to);
            }
        }
    }

    /// The request's first call `call`, of class `class`, has finished with `outcome` (it
    /// is the request): the client gets its answer unless it already gave up, and the
    /// request ends with the call.
    #[inline(always)]
    fn end_request(&mut self, call: CallId, class: u16, outcome: Outcome) {
        match self.requests[call as usize].client {
            ClientWait::Waiting => self.answer(call, class, outcome),
            ClientWait::WaitingWithTimeout => {
                self.answer(call, class, outcome);
                self.stale_timeout();
            }
            ClientWait::Answered => {
                if self.retries.is_some() {
                    self.retry_ended_late(call, outcome);
                }
            }
        }
        self.calls.remove(call);
        self.in_flight -= 1;
    }

    /// True if a reply from `child` is still awaited by its parent call.
    #[inline]
    pub fn is_awaited(&self, child: &Call) -> bool {
        let p = self.calls.get(child.parent_call);
        p.generation == child.parent_generation && p.round == child.parent_round
    }

    /// A client request `new` of source `source` is created: count it and send its first
    /// call to its target. Returns the instance the first call goes to and the call: the
    /// caller delivers it at once (the same as a zero-delay message at the head of the
    /// lane). With no live instance in the target the request fails at once and `None`
    /// is returned.
    #[inline(always)]
    pub(crate) fn start_request(
        &mut self,
        source: u32,
        new: NewRequest,
    ) -> Option<(InstanceId, CallId)> {
        let now = self.now();
        let NewRequest {
            user,
            class,
            key,
            op,
            target,
            timeout,
            acts_on_answer,
        } = new;
        self.stats[source as usize].record_arrival(class as usize, self.measuring);
        self.totals.arrived += 1;
        self.in_flight += 1;
        let (call, picked) = self.first_call(source, target, class, key, op);
        let to = picked.unwrap_or(NOBODY);
        let timeout = if picked.is_some() { timeout } else { None };
        let slot = call as usize;
        self.requests[slot] = Request {
            source,
            user,
            created: now,
            client: if timeout.is_some() {
                ClientWait::WaitingWithTimeout
            } else {
                ClientWait::Waiting
            },
            acts_on_answer,
        };
        if let Some(t) = timeout {
            let generation = self.calls.get(call).generation;
            self.calendar.schedule(
                now.after(t),
                Event::ClientTimeout {
                    request: call,
                    generation,
                },
            );
        }
        if picked.is_none() {
            self.refuse_start(call, target);
            return None;
        }
        if self.network.is_some() {
            return self.start_across(source, call, to);
        }
        Some((to, call))
    }

    /// The first call of a new request (or of a client's retry) of source `source` to group
    /// `target`: picks its instance (the client's zone first, where there are zones) and
    /// inserts the call, its request slot ready to be written. Returns the call and the
    /// instance picked, `None` when the group has no live instance.
    #[inline(always)]
    pub(super) fn first_call(
        &mut self,
        source: u32,
        target: u32,
        class: u16,
        key: u64,
        op: u8,
    ) -> (CallId, Option<InstanceId>) {
        let net = self.network.as_deref();
        let zone = || net.map_or(NO_ZONE, |n| n.source_zone(source));
        let picked = self.groups[target as usize].pick_in(CLIENT, op, key, net, zone);
        let call = self.calls.insert_with(|id| Call {
            request: id,
            class,
            key,
            op,
            parent: CLIENT,
            instance: picked.unwrap_or(NOBODY),
            ..Call::default()
        });
        if call as usize >= self.requests.len() {
            self.grow_requests(call as usize);
        }
        (call, picked)
    }

    /// Request `call`, sent to group `target`, finds no live instance there: it fails at
    /// once, unavailable, or as the group refuses it.
    #[cold]
    #[inline(never)]
    pub(super) fn refuse_start(&mut self, call: CallId, target: u32) {
        let cause = self.groups[target as usize]
            .refusal
            .unwrap_or(ErrorCause::Unavailable);
        self.reply(call, Outcome::Failed(cause));
    }

    #[cold]
    fn grow_requests(&mut self, slot: usize) {
        let len = (slot + 1).max(self.requests.len() * 2).max(1024);
        self.requests.resize(len, Request::default());
    }

    /// A client's timeout fires: if the request is still unanswered, it fails with
    /// [`ErrorCause::Timeout`] (the work it started goes on).
    pub(crate) fn client_timeout(&mut self, request: RequestId, generation: u32) {
        if self.calls.is_live(request, generation)
            && self.requests[request as usize].client != ClientWait::Answered
        {
            let class = self.calls.get(request).class;
            self.answer(request, class, Outcome::Failed(ErrorCause::Timeout));
        } else {
            // Its request finished before the timeout: a stale event, now gone.
            self.stale_timeouts = self.stale_timeouts.saturating_sub(1);
        }
        if !self.parked.is_empty() {
            self.release_parked(request, generation);
        }
    }

    /// `call` reaches an instance that is a black hole: it is never answered, until the
    /// client of its request gives up (its client timeout frees it).
    #[cold]
    #[inline(never)]
    pub fn park(&mut self, call: CallId) {
        let c = self.calls.get(call);
        let request = c.request;
        let generations = (c.generation, self.calls.get(request).generation);
        self.parked.insert((request, call), generations);
    }

    /// The client of `request` (generation `generation`) gave up, or its request ended:
    /// the calls of it a black hole swallowed fail now ([`ErrorCause::Timeout`]), so what
    /// waits on them lets go and their memory is freed.
    #[cold]
    #[inline(never)]
    fn release_parked(&mut self, request: RequestId, generation: u32) {
        let mine: Vec<(CallId, u32)> = self
            .parked
            .range((request, 0)..=(request, CallId::MAX))
            .filter(|(_, g)| g.1 == generation)
            .map(|(k, g)| (k.1, g.0))
            .collect();
        for (call, call_generation) in mine {
            self.parked.remove(&(request, call));
            self.fail_parked(call, call_generation);
        }
    }

    /// Fails a swallowed call if it is still the same call, waiting.
    fn fail_parked(&mut self, call: CallId, generation: u32) {
        if self.calls.is_live(call, generation) && self.calls.get(call).outcome == Outcome::Pending
        {
            self.reply(call, Outcome::Failed(ErrorCause::Timeout));
        }
    }

    /// Frees the swallowed calls whose request has ended (an abandoned branch of a
    /// fan-out, a request whose timeout event was compacted away). For rare moments: an
    /// instance recovering.
    pub(crate) fn release_orphans(&mut self) {
        let ended: Vec<((RequestId, CallId), u32)> = self
            .parked
            .iter()
            .filter(|((request, _), g)| !self.calls.is_live(*request, g.1))
            .map(|(k, g)| (*k, g.0))
            .collect();
        for (key, call_generation) in ended {
            self.parked.remove(&key);
            self.fail_parked(key.1, call_generation);
        }
    }

    /// A request with a client timeout finished first: its timeout event is stale. Once
    /// stale events are many (at least [`COMPACT_MIN_STALE`]) and most of the calendar,
    /// they are removed, so refused or fast requests with a long timeout do not pile up
    /// in memory until their timeouts fire.
    #[inline(always)]
    fn stale_timeout(&mut self) {
        self.stale_timeouts += 1;
        if self.stale_timeouts >= self.compact_at {
            self.compact_timeouts();
        }
    }

    #[cold]
    #[inline(never)]
    fn compact_timeouts(&mut self) {
        if self.stale_timeouts * 2 >= self.calendar.len() as u64 {
            let (calls, requests) = (&self.calls, &self.requests);
            self.calendar.retain(|e| match e {
                Event::ClientTimeout {
                    request,
                    generation,
                } => {
                    calls.is_live(request, generation)
                        && requests[request as usize].client != ClientWait::Answered
                }
                _ => true,
            });
            self.stale_timeouts = 0;
        }
        // Amortized: the next compaction waits for as many stale events as remain pending.
        self.compact_at = self.stale_timeouts + COMPACT_MIN_STALE.max(self.calendar.len() as u64);
    }

    /// The client of `request` (the id of its first call, which is still live, of class
    /// `class`) gets its answer.
    #[inline(always)]
    fn answer(&mut self, request: RequestId, class: u16, outcome: Outcome) {
        let now = self.now();
        let c = class as usize;
        let r = &mut self.requests[request as usize];
        r.client = ClientWait::Answered;
        let r = *r;
        let stats = &mut self.stats[r.source as usize];
        match outcome {
            Outcome::Ok => {
                self.totals.completed += 1;
                let latency = now.since(r.created).0;
                stats.record_success(c, now.0, latency, self.measuring);
            }
            Outcome::Failed(cause) => {
                if self.retries.is_some() && self.retry_failed(request, cause) {
                    return;
                }
                let stats = &mut self.stats[r.source as usize];
                self.totals.failed += 1;
                stats.record_failure(c, now.0, cause, self.measuring);
            }
            Outcome::Pending => unreachable!("a request answered with a pending outcome"),
        }
        if r.acts_on_answer {
            self.tell_client(request, r, class, outcome);
        }
    }

    /// The client of `request`, which acts on its answers (a closed-loop user), is told
    /// of it. Out of line: finding the sources of a context of any sources takes some
    /// work, which a request whose client does not act on its answer then never does.
    #[inline(never)]
    fn tell_client(&mut self, request: RequestId, r: Request, class: u16, outcome: Outcome) {
        if self.retries.is_some() {
            self.retry_answered(request, outcome);
        }
        let answer = Answer {
            source: r.source,
            user: r.user,
            class,
            outcome,
            created: r.created,
            at: self.now(),
        };
        self.clients
            .answered(&answer, &mut self.calendar, self.horizon);
    }

    /// The request sources.
    pub fn clients(&self) -> &C {
        &self.clients
    }

    /// Requests created but not yet answered, counted from the request slab.
    pub fn unanswered(&self) -> u64 {
        // Live requests minus those answered but still holding their slot (a client
        // timeout answered them; their work is still in the system).
        // Requests waiting for a retry to leave are not answered either.
        let live = self.calls.live_map();
        live.iter()
            .enumerate()
            .filter(|&(id, &l)| {
                l && self.calls.get(id as u32).parent == CLIENT
                    && self.requests[id].client != ClientWait::Answered
            })
            .count() as u64
            + self.retries_waiting()
    }
}
