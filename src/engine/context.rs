//! What a component sees of the engine: the clock, the calendar, the call slab, and the
//! groups it can call. Components talk only through the context, never to each other.

use super::calendar::Calendar;
use super::call::{CLIENT, Call, ClientWait, Outcome, Request, Slab};
use super::event::{CallId, Event, InstanceId, RequestId};
use crate::metrics::{ErrorCause, InstanceReport};
use crate::time::{SimDuration, SimTime};
use crate::workload::{Arrivals, Workload};

/// A component instance: reacts to calls, replies and its own timers.
pub trait Component {
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
}

/// A named set of instances that calls are addressed to (a component with its replicas).
#[derive(Debug, Clone)]
pub struct Group {
    /// Component name.
    pub name: String,
    /// Its instances.
    pub instances: Vec<InstanceId>,
    next: usize,
}

impl Group {
    /// A group over `instances`.
    pub fn new(name: String, instances: Vec<InstanceId>) -> Self {
        Group {
            name,
            instances,
            next: 0,
        }
    }
    /// The instance that takes the next call: round robin when there are several.
    #[inline]
    pub fn pick(&mut self) -> InstanceId {
        if self.instances.len() == 1 {
            return self.instances[0];
        }
        let i = self.instances[self.next];
        self.next = (self.next + 1) % self.instances.len();
        i
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

/// The engine state components act on.
#[derive(Debug)]
pub struct Ctx {
    /// Pending events.
    pub calendar: Calendar,
    /// Calls in flight.
    pub calls: Slab<Call>,
    /// Requests in flight, by the id of their first call (other slots are stale).
    pub requests: Vec<Request>,
    /// Call targets by group id.
    pub groups: Vec<Group>,
    /// Workloads by index.
    pub workloads: Vec<Workload>,
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
}

/// Stale client timeouts tolerated before the calendar is compacted: below this they cost
/// little memory, and the compaction (which changes the count of events handled) never
/// happens.
pub const COMPACT_MIN_STALE: u64 = 1 << 16;

impl Ctx {
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

    /// Sets a timer for instance `to`, `delay` from now.
    #[inline(always)]
    pub fn timer(&mut self, to: InstanceId, delay: SimDuration, tag: u32, data: u32) {
        let at = self.now().after(delay);
        self.calendar.schedule(at, Event::Timer { to, tag, data });
    }

    /// Makes a child call of `parent` (made by instance `from`) to group `group`, which
    /// delivers it to one of its instances now. Returns the child.
    #[inline]
    pub fn call_group(&mut self, from: InstanceId, parent: CallId, group: u32, op: u8) -> CallId {
        let to = self.groups[group as usize].pick();
        self.call_instance(from, parent, to, op)
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
        let p = *self.calls.get(parent);
        let child = Call {
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
        };
        let id = self.calls.insert(child);
        self.calendar.schedule_now(Event::Arrive { to, call: id });
        id
    }

    /// Moves `call` on to group `group` as a tail call: its answer will go straight to the
    /// call's own parent, and the current instance is done with it.
    #[inline]
    pub fn forward(&mut self, call: CallId, group: u32) {
        let to = self.groups[group as usize].pick();
        let c = self.calls.get_mut(call);
        c.instance = to;
        c.step = 0;
        self.calendar.schedule_now(Event::Arrive { to, call });
    }

    /// Finishes `call` with `outcome` and passes the answer to whoever made it.
    #[inline(always)]
    pub fn reply(&mut self, call: CallId, outcome: Outcome) {
        let c = self.calls.get_mut(call);
        c.outcome = outcome;
        if c.parent == CLIENT {
            // The request's first call has finished (it is the request): the client gets
            // its answer unless it already gave up, and the request ends with the call.
            match self.requests[call as usize].client {
                ClientWait::Waiting => self.answer(call, outcome),
                ClientWait::WaitingWithTimeout => {
                    self.answer(call, outcome);
                    self.stale_timeout();
                }
                ClientWait::Answered => {}
            }
            self.calls.remove(call);
            self.in_flight -= 1;
        } else {
            let to = c.parent;
            self.calendar.schedule_now(Event::Reply { to, call });
        }
    }

    /// True if a reply from `child` is still awaited by its parent call.
    #[inline]
    pub fn is_awaited(&self, child: &Call) -> bool {
        let p = self.calls.get(child.parent_call);
        p.generation == child.parent_generation && p.round == child.parent_round
    }

    /// A client request is created: count it and send its first call to the workload's
    /// target. `given` is the class and key of a trace record; otherwise they are drawn.
    /// Returns the instance the first call goes to and the call: the caller delivers it
    /// at once (the same as a zero-delay message at the head of the lane).
    pub(crate) fn start_request(
        &mut self,
        workload: u32,
        user: u32,
        given: Option<(u16, u64)>,
    ) -> (InstanceId, CallId) {
        let now = self.now();
        let w = &mut self.workloads[workload as usize];
        w.generated += 1;
        let (class, key) = match given {
            Some(ck) => ck,
            None => w.draw_class_and_key(),
        };
        let target = w.def.target;
        let timeout = w.def.timeout;
        if self.measuring {
            w.stats.arrived[class as usize] += 1;
        }
        self.totals.arrived += 1;
        self.in_flight += 1;
        let to = self.groups[target as usize].pick();
        let call = self.calls.insert_with(|id| Call {
            request: id,
            class,
            key,
            parent: CLIENT,
            instance: to,
            ..Call::default()
        });
        let slot = call as usize;
        if slot >= self.requests.len() {
            self.grow_requests(slot);
        }
        self.requests[slot] = Request {
            workload,
            user,
            created: now,
            client: if timeout.is_some() {
                ClientWait::WaitingWithTimeout
            } else {
                ClientWait::Waiting
            },
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
        (to, call)
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
            self.answer(request, Outcome::Failed(ErrorCause::Timeout));
        } else {
            // Its request finished before the timeout: a stale event, now gone.
            self.stale_timeouts = self.stale_timeouts.saturating_sub(1);
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

    /// The client of `request` (the id of its first call, which is still live) gets its
    /// answer.
    #[inline(always)]
    fn answer(&mut self, request: RequestId, outcome: Outcome) {
        let now = self.now();
        let class = self.calls.get(request).class as usize;
        let r = &mut self.requests[request as usize];
        r.client = ClientWait::Answered;
        let r = *r;
        let w = &mut self.workloads[r.workload as usize];
        match outcome {
            Outcome::Ok => {
                self.totals.completed += 1;
                let latency = now.since(r.created).0;
                let win = w.stats.window_mut(now.0);
                win.completed += 1;
                win.latency_sum_ns += u128::from(latency);
                if self.measuring {
                    w.stats.completed[class] += 1;
                    w.stats.latency[class].record(latency);
                }
            }
            Outcome::Failed(cause) => {
                self.totals.failed += 1;
                w.stats.window_mut(now.0).failed += 1;
                if self.measuring {
                    w.stats.failed[class][cause as usize] += 1;
                }
            }
            Outcome::Pending => unreachable!("a request answered with a pending outcome"),
        }
        if let Arrivals::Closed { .. } = w.def.arrivals
            && w.may_generate()
        {
            let at = now.after(w.think());
            if at <= self.horizon {
                self.calendar.schedule(
                    at,
                    Event::Generate {
                        workload: r.workload,
                        user: r.user,
                    },
                );
            }
        }
    }

    /// Requests created but not yet answered, counted from the request slab.
    pub fn unanswered(&self) -> u64 {
        // Live requests minus those answered but still holding their slot (a client
        // timeout answered them; their work is still in the system).
        let live = self.calls.live_map();
        live.iter()
            .enumerate()
            .filter(|&(id, &l)| {
                l && self.calls.get(id as u32).parent == CLIENT
                    && self.requests[id].client != ClientWait::Answered
            })
            .count() as u64
    }
}
