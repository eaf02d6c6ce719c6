//! `service`: instances with a pool of workers and a queue, running a handler of steps for
//! each request (work, call another component, fan out and wait for all, any or k, route on
//! to a component drawn at random).
//!
//! A call step may branch on what its callee answered (`on_hit`, `on_miss`: a cache's
//! [`Found`]), as a cache-aside handler does: on a miss, read the database, then set the
//! cache. The branches are flattened into the handler's list of steps, joined by jumps.
//!
//! A worker is held from the moment a request starts until its handler ends, including while
//! it waits on calls (thread-per-request). An asynchronous service (an event-loop server)
//! releases the worker while it waits and queues the request again when the answer comes.

pub mod admission;
mod estimate;
pub mod sessions;
pub mod slowdown;
pub mod spec;
pub mod validate;

use super::Kind;
use super::op::Op;
use crate::analysis::{Flow, Network, ServiceEstimate};
use crate::distributions::Distribution;
use crate::engine::{
    Call, CallId, Component, Ctx, Degradation, Found, Gauges, InstanceId, Outcome,
};
use crate::metrics::declare::{Combine::*, MetricDecl, Saturation, Unit::*};
use crate::metrics::{ErrorCause, InstanceLoad, InstanceReport, WaitHistogram};
use crate::model::graph::Link;
use crate::random::{Rng, mix64};
use crate::time::{SimDuration, SimTime};
use rand::{Rng as _, RngExt, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;

/// One step of a handler.
#[derive(Debug, Clone)]
pub enum Step {
    /// Hold the worker for a time drawn from the distribution.
    Work(Distribution),
    /// Call a component and wait for its answer.
    Call {
        /// Group (component) called.
        group: u32,
        /// Operation asked of it.
        op: u8,
    },
    /// Call a component with operation `set` (cache-aside: put the key just read), carrying
    /// the version of the key the request last read, and wait for its answer.
    Set {
        /// Group (component) called.
        group: u32,
    },
    /// After a call: go on at step `hit` when the callee answered that it held the key
    /// ([`Found::Hit`]), at `miss` when it did not ([`Found::Miss`]), at `after` when it
    /// does not say.
    Branch {
        /// First step when it held the key.
        hit: u16,
        /// First step when it did not.
        miss: u16,
        /// The step after the branch.
        after: u16,
    },
    /// Go on at step `to` (the end of a branch's hit steps, past its miss steps).
    Jump(u16),
    /// Call several components at once and wait until `need` of them answered successfully.
    FanOut {
        /// Groups called.
        groups: Vec<u32>,
        /// Operation asked of them (0: the request's own).
        op: u8,
        /// Successful answers needed to go on.
        need: u16,
    },
    /// The last step: hand the request on to a component drawn at random (a tail call), or,
    /// with the probability left over, answer here. The instance is done with the request
    /// either way; the chosen component's answer goes straight to this service's caller.
    Route(Vec<RouteTarget>),
    /// Deadlines "abort": stop here if the caller has given up (`deadline_exceeded`), else
    /// go on with the next step. Put between the steps of a handler by validation, only in
    /// services that abort.
    Check,
}

/// One way out of a [`Step::Route`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteTarget {
    /// Group (component) the request goes on to.
    pub group: u32,
    /// Probability of going there.
    pub probability: f64,
    /// Sum of the probabilities of this target and those before it.
    pub cumulative: f64,
}

/// The target a uniform draw `u` in [0, 1) picks, or `None` when the request is done here.
#[inline]
fn pick_route(targets: &[RouteTarget], u: f64) -> Option<u32> {
    targets.iter().find(|t| u < t.cumulative).map(|t| t.group)
}

/// Order in which waiting requests are served.
#[derive(Debug, Clone, PartialEq)]
pub enum Discipline {
    /// First come, first served.
    Fifo,
    /// Last come, first served.
    Lifo,
    /// By class priority (lower level first), first come first served within a level.
    Priority {
        /// Level of each class id.
        level_of_class: Vec<u8>,
        /// Number of levels.
        levels: usize,
    },
}

/// A validated service.
#[derive(Debug, Clone)]
pub struct ServiceDef {
    /// Workers per instance.
    pub workers: u32,
    /// Requests that may wait per instance; `None` is unbounded.
    pub queue_capacity: Option<u32>,
    /// Queue discipline.
    pub discipline: Discipline,
    /// Release the worker while waiting on calls.
    pub asynchronous: bool,
    /// A request that waited longer than this is dropped when it reaches the head.
    pub queue_timeout: Option<SimDuration>,
    /// Handler steps per class id.
    pub handlers: Vec<Vec<Step>>,
    /// Where its handlers send requests, for the call graph.
    pub links: Vec<Link>,
    /// Load-dependent service time, if any.
    pub slowdown: Option<slowdown::Slowdown>,
    /// In-memory sessions, expiring after this idle time (`None`: a stateless service).
    pub sessions: Option<SimDuration>,
    /// Rate limit, shedding, adaptive LIFO, deadlines (`None`: none of them).
    pub admission: Option<Box<admission::Admission>>,
    /// A request taken from the queue is checked first (a queue timeout, shedding by age,
    /// deadlines, hedge cancellations): one flag for all of them.
    pub checks_dequeue: bool,
    /// A caller hedges its calls here with `cancel`: a losing copy taken from the queue
    /// is dropped unserved.
    pub cancellable: bool,
    /// A `queue` with `batch` delivers batches of messages here: a call with operation
    /// [`Op::BATCH`] holds a worker for the work it carries instead of running a handler.
    pub takes_batches: bool,
}

impl Kind for ServiceDef {
    fn name(&self) -> &'static str {
        "service"
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        match (self.sessions.is_some(), self.admission.is_some()) {
            (false, false) => METRICS,
            (true, false) => sessions::METRICS_WITH_SESSIONS,
            (false, true) => admission::METRICS_WITH_ADMISSION,
            (true, true) => admission::METRICS_WITH_SESSIONS_AND_ADMISSION,
        }
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component> {
        match self.sessions {
            Some(idle) => {
                let plain = vec![ServiceInstance::new(self, id, name, rng)];
                sessions::instances(plain, idle).remove(0)
            }
            None => Box::new(ServiceInstance::new(self, id, name, rng)),
        }
    }
    fn instantiate_all(
        self: Arc<Self>,
        first: InstanceId,
        names: Vec<String>,
        rngs: Vec<Rng>,
    ) -> Vec<Box<dyn Component>> {
        let plain = names
            .into_iter()
            .zip(rngs)
            .enumerate()
            .map(|(i, (name, rng))| {
                ServiceInstance::new(Arc::clone(&self), first + i as u32, name, rng)
            });
        match self.sessions {
            Some(idle) => sessions::instances(plain.collect(), idle),
            None => plain.map(|s| Box::new(s) as Box<dyn Component>).collect(),
        }
    }
    fn workers_held_while_waiting(&self) -> Option<u32> {
        (!self.asynchronous).then_some(self.workers)
    }
    fn workers(&self) -> Option<u32> {
        Some(self.workers)
    }
    fn can_degrade(&self) -> bool {
        true
    }
    fn pass_flows(&self, net: &Network, flow: &Flow, flows: &mut [Flow], routed: &mut [Flow]) {
        estimate::pass_flows(self, net, flow, flows, routed);
    }
    fn response(
        &self,
        net: &Network,
        flow: &Flow,
        response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        estimate::response(self, net, flow, response_ms)
    }
    fn work_hold(&self, net: &Network, flow: &Flow) -> Option<(f64, f64, bool)> {
        Some(estimate::work_hold(self, net, flow))
    }
    fn sample_response_ms(&self, class: usize, mean_ms: f64, rng: &mut Rng) -> Option<f64> {
        estimate::sample_response_ms(self, class, mean_ms, rng)
    }
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        warnings: &mut Vec<String>,
    ) -> Vec<crate::analysis::MetricEstimate> {
        warnings.extend(estimate::slowdown_caveat(self, net, flow));
        Vec::new()
    }
}

impl ServiceDef {
    /// The group every handler calls first with the request's key (before any fan-out,
    /// route or branch; work and checks before it allowed), if they all call the same one.
    pub fn key_callees(&self) -> Vec<u32> {
        let first_call = |steps: &Vec<Step>| {
            steps.iter().find_map(|s| match s {
                Step::Work(_) | Step::Check => None,
                Step::Call { group, .. } | Step::Set { group } => Some(Some(*group)),
                _ => Some(None),
            })?
        };
        let mut groups: Vec<u32> = Vec::new();
        for g in self.handlers.iter().filter_map(first_call) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
    }

    /// Mean time a request of class `class` holds a worker doing work (calls excluded).
    pub fn work_mean_ns(&self, class: usize) -> f64 {
        self.handlers[class]
            .iter()
            .map(|s| match s {
                Step::Work(d) => d.mean_ns(),
                _ => 0.0,
            })
            .sum()
    }
}

const TIMER_WORK_DONE: u32 = 0;

/// The order waiting requests are served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// First come first served; with adaptive LIFO, the newest first while more than
    /// `lifo_above` wait (`usize::MAX` without: one comparison, no order of its own).
    Fifo,
    /// Last come, first served.
    Lifo,
    /// By class priority, first come first served within a level.
    Priority,
}

/// The requests waiting at an instance. A plain struct whose order is one byte, rather
/// than an enum of queues, so that telling the order costs one comparison of a byte.
struct WaitQueue {
    order: Order,
    /// The waiting requests, oldest first (FIFO and LIFO).
    calls: VecDeque<CallId>,
    /// With adaptive LIFO, the newest first while more than this many wait.
    lifo_above: usize,
    /// By priority: one FIFO queue per level, and the level of each class id.
    levels: Vec<VecDeque<CallId>>,
    level_of_class: Vec<u8>,
}

impl WaitQueue {
    fn new(def: &ServiceDef) -> Self {
        let adaptive = def.admission.as_ref().and_then(|a| a.adaptive_lifo);
        let mut queue = WaitQueue {
            order: Order::Fifo,
            calls: VecDeque::new(),
            lifo_above: usize::MAX,
            levels: Vec::new(),
            level_of_class: Vec::new(),
        };
        match (&def.discipline, adaptive) {
            (_, Some(above)) => {
                queue.calls = VecDeque::with_capacity(64);
                queue.lifo_above = above as usize;
            }
            (Discipline::Fifo, None) => queue.calls = VecDeque::with_capacity(64),
            (Discipline::Lifo, None) => {
                queue.order = Order::Lifo;
                queue.calls = VecDeque::with_capacity(64);
            }
            (
                Discipline::Priority {
                    levels,
                    level_of_class,
                },
                None,
            ) => {
                queue.order = Order::Priority;
                queue.levels = (0..*levels).map(|_| VecDeque::new()).collect();
                queue.level_of_class = level_of_class.clone();
            }
        }
        queue
    }
    /// Adds `call`, of class `class` (read only by a priority queue).
    #[inline(always)]
    fn push(&mut self, call: CallId, class: impl FnOnce() -> u16) {
        if self.order == Order::Priority {
            let level = self.level_of_class[class() as usize] as usize;
            self.levels[level].push_back(call);
        } else {
            self.calls.push_back(call);
        }
    }
    /// The next waiting request to serve. `PLAIN` (no adaptive LIFO): a FIFO queue pops
    /// its oldest without looking at its length.
    #[inline(always)]
    fn pop<const PLAIN: bool>(&mut self) -> Option<CallId> {
        match self.order {
            Order::Fifo => {
                if !PLAIN && self.calls.len() > self.lifo_above {
                    self.calls.pop_back()
                } else {
                    self.calls.pop_front()
                }
            }
            Order::Lifo => self.calls.pop_back(),
            Order::Priority => self.levels.iter_mut().find_map(|q| q.pop_front()),
        }
    }
}

/// One instance of a service.
pub struct ServiceInstance {
    def: Arc<ServiceDef>,
    id: InstanceId,
    name: String,
    rng: Rng,
    queue: WaitQueue,
    /// Busy workers and waiting requests over time.
    load: InstanceLoad,
    /// Queue waits longer than zero of the requests that started (zero waits are
    /// `started` minus this histogram's count, added when reporting).
    waits: WaitHistogram,
    arrived: u64,
    completed: u64,
    failed: u64,
    dropped: u64,
    expired: u64,
    started: u64,
    /// Workers that may run requests now: the service's, or fewer while a fault cuts them.
    workers: u32,
    /// Requests that may wait (`u64::MAX`: unbounded), the service's `queue_capacity` at
    /// hand.
    capacity: u64,
    /// Service times are multiplied by this (1 unless a fault slows the instance).
    slow: f64,
    /// Share of arriving requests failed at once (0 unless a fault says otherwise).
    error_share: f64,
    /// Where the draws of injected errors come from: a stream of their own, so the
    /// instance's own sequence of draws (service times, routes) stays that of a run
    /// without the fault.
    injected: Option<Box<Rng>>,
    /// Seed of `injected`: a draw from a copy of the instance's stream at its start.
    injected_seed: u64,
    /// Arrivals are screened out of line: a fault's error share, a rate limit, shedding by
    /// queue length.
    screens: bool,
    /// Nothing out of the ordinary applies to this instance now (see [`plain`]): its event
    /// handlers run the code without the tests for what it does not use.
    plain: bool,
    /// The rate limit's tokens.
    bucket: Option<admission::TokenBucket>,
    /// Arrivals refused by the rate limit.
    rate_limited: u64,
    /// Requests shed (by queue length or age).
    shed: u64,
    /// Calls dropped or aborted because their caller gave up.
    deadline_exceeded: u64,
}

impl ServiceInstance {
    /// Instance `id`, named `name`, drawing from `rng`.
    pub fn new(def: Arc<ServiceDef>, id: InstanceId, name: String, rng: Rng) -> Self {
        let workers = def.workers;
        let queue = WaitQueue::new(&def);
        let admission = def.admission.as_deref();
        let screens = admission.is_some_and(admission::Admission::checks_arrivals);
        let bucket = admission
            .and_then(|a| a.rate_limit)
            .map(admission::TokenBucket::new);
        let injected_seed = rng.clone().next_u64();
        let plain = plain(&def, 1.0, screens);
        let capacity = def.queue_capacity.map_or(u64::MAX, u64::from);
        ServiceInstance {
            def,
            id,
            name,
            rng,
            queue,
            load: InstanceLoad::new(workers),
            waits: WaitHistogram::new(),
            arrived: 0,
            completed: 0,
            failed: 0,
            dropped: 0,
            expired: 0,
            started: 0,
            workers,
            capacity,
            slow: 1.0,
            error_share: 0.0,
            injected: None,
            injected_seed,
            screens,
            plain,
            bucket,
            rate_limited: 0,
            shed: 0,
            deadline_exceeded: 0,
        }
    }

    /// Screens an arrival, out of line: a fault's error share, the rate limit, shedding by
    /// queue length. True when `call` was answered (turned away).
    #[cold]
    #[inline(never)]
    fn screen(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        if self.error_share > 0.0 && self.inject_error(call, ctx) {
            return true;
        }
        if let Some(bucket) = &mut self.bucket
            && !bucket.take(ctx.now())
        {
            self.rate_limited += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::RateLimited));
            return true;
        }
        if let Some(n) = self
            .def
            .admission
            .as_ref()
            .and_then(|a| a.shed_queue_length)
            && !self.has_free_worker()
            && self.load.waiting() >= u64::from(n)
        {
            self.shed += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::Shed));
            return true;
        }
        false
    }

    /// Checks `call`, just taken from the queue, out of line: its queue timeout, shedding
    /// by age, its caller having given up. True when it was answered (not to be served).
    #[cold]
    #[inline(never)]
    fn drop_at_dequeue(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        let now = ctx.now();
        let c = ctx.call(call);
        let waited = now.since(c.enqueued_at);
        let first = c.step == 0;
        if self.def.cancellable && first && ctx.hedge_cancelled(call) {
            // A hedge's loser: its caller has its answer and asked not to serve it.
            ctx.reply(call, Outcome::Failed(ErrorCause::DeadlineExceeded));
            return true;
        }
        if let Some(limit) = self.def.queue_timeout
            && first
            && waited > limit
        {
            self.expired += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::QueueTimeout));
            return true;
        }
        let Some(a) = self.def.admission.as_deref() else {
            return false;
        };
        if let Some(limit) = a.shed_wait
            && first
            && waited > limit
        {
            self.shed += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::Shed));
            return true;
        }
        let check = match a.deadlines {
            admission::Deadlines::Ignore => false,
            admission::Deadlines::Drop => first,
            admission::Deadlines::Abort => true,
        };
        if check && ctx.caller_gave_up(call) {
            self.deadline_exceeded += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::DeadlineExceeded));
            return true;
        }
        false
    }

    #[inline]
    fn has_free_worker(&self) -> bool {
        self.load.busy() < u64::from(self.workers)
    }

    /// A fault's error share: fails `call` at once with probability `error_share` (true
    /// if it did). Out of line: only a degraded instance comes here.
    #[cold]
    #[inline(never)]
    fn inject_error(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        let rng = self.injected.get_or_insert_with(|| {
            // Seeded from the instance's stream as it was created: the same whatever
            // happened before the fault, and leaving that stream untouched.
            Box::new(Rng::seed_from_u64(mix64(self.injected_seed)))
        });
        if rng.random::<f64>() >= self.error_share {
            return false;
        }
        self.failed += 1;
        ctx.reply(call, Outcome::Failed(ErrorCause::Injected));
        true
    }

    /// Free workers (more of them after a cut ends) take waiting requests.
    fn fill_workers(&mut self, ctx: &mut Ctx) {
        // Each one counts as busy, then goes on as a worker that just finished would: it
        // takes the next waiting request, or goes idle again.
        while self.has_free_worker() {
            self.load.busy_inc(ctx.now());
            let Some(next) = self.next_for_free_worker::<false>(ctx) else {
                return;
            };
            self.run::<false>(next, ctx);
        }
    }

    /// Gives `call` a worker and runs its handler from its current step.
    #[inline(always)]
    fn start<const PLAIN: bool>(&mut self, call: CallId, ctx: &mut Ctx) {
        self.load.busy_inc(ctx.now());
        self.count_start(call, ctx);
        self.run::<PLAIN>(call, ctx);
    }

    /// Counts `call` as started on a worker, with its wait, if it is at its first step.
    #[inline(always)]
    fn count_start(&mut self, call: CallId, ctx: &Ctx) {
        let c = ctx.call(call);
        if c.step == 0 {
            let wait = ctx.now().since(c.enqueued_at).0;
            self.started += 1;
            if wait > 0 {
                self.waits.record(wait);
            }
        }
    }

    /// Runs the handler of `call` (which holds a worker) until it must wait or ends. When
    /// the worker comes free it takes the next waiting request and goes on with that one,
    /// in a loop rather than by recursion, so this inlines into the event handlers.
    ///
    /// `PLAIN` when the instance is [`plain`]: the steps leave out the tests for what it
    /// does not use (batches, slowing, checks at dequeue, adaptive LIFO).
    #[inline(always)]
    fn run<const PLAIN: bool>(&mut self, mut call: CallId, ctx: &mut Ctx) {
        loop {
            if !self.step::<PLAIN>(call, ctx) {
                return;
            }
            match self.next_for_free_worker::<PLAIN>(ctx) {
                Some(next) => call = next,
                None => return,
            }
        }
    }

    /// Runs the next step of `call`. Returns true when the worker it held is free.
    #[inline(always)]
    fn step<const PLAIN: bool>(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        let c = ctx.call_mut(call);
        if !PLAIN && self.def.takes_batches && c.op == Op::BATCH {
            return self.batch_step(call, ctx);
        }
        let step = c.step as usize;
        let handler = &self.def.handlers[c.class as usize];
        let Some(s) = handler.get(step) else {
            self.completed += 1;
            ctx.reply(call, Outcome::Ok);
            return true;
        };
        c.step += 1;
        let is_last = step + 1 == handler.len();
        match s {
            Step::Work(d) => {
                let mut ns = d.sample_ns(&mut self.rng);
                if !PLAIN {
                    // Times 1 (exactly the draw) unless a fault slows the instance.
                    ns *= self.slow;
                    if let Some(slow) = &self.def.slowdown {
                        ns *= slow.factor(self.load.busy(), self.load.waiting(), self.def.workers);
                    }
                }
                ctx.timer(
                    self.id,
                    SimDuration::from_nanos_f64(ns),
                    TIMER_WORK_DONE,
                    call,
                );
                false
            }
            &Step::Call { group, op } => {
                let op = if op == 0 { c.op } else { op };
                if self.def.asynchronous && is_last {
                    // Nothing left to do here: pass the call on, answer goes straight back.
                    c.op = op;
                    self.completed += 1;
                    ctx.forward(call, group);
                    return true;
                }
                c.round = c.round.wrapping_add(1);
                c.pending = 1;
                c.needed = 1;
                c.succeeded = 0;
                ctx.call_group(self.id, call, group, op);
                self.def.asynchronous
            }
            &Step::Set { group } => {
                let op = Op::Set.code();
                if self.def.asynchronous && is_last {
                    // The call itself goes on, with the version it carries.
                    c.op = op;
                    self.completed += 1;
                    ctx.forward(call, group);
                    return true;
                }
                let version = c.version;
                c.round = c.round.wrapping_add(1);
                c.pending = 1;
                c.needed = 1;
                c.succeeded = 0;
                let child = ctx.call_group(self.id, call, group, op);
                ctx.call_mut(child).version = version;
                self.def.asynchronous
            }
            &Step::Branch { hit, miss, after } => {
                c.step = match c.found {
                    Found::Hit => hit,
                    Found::Miss => miss,
                    Found::Unknown => after,
                };
                self.control::<PLAIN>(call, ctx)
            }
            &Step::Jump(to) => {
                c.step = to;
                self.control::<PLAIN>(call, ctx)
            }
            Step::Route(targets) => {
                // One uniform per routed request, only when there is somewhere to go.
                let to = if targets.is_empty() {
                    None
                } else {
                    pick_route(targets, self.rng.random::<f64>())
                };
                self.completed += 1;
                match to {
                    None => ctx.reply(call, Outcome::Ok),
                    // A tail call: this visit is complete and the worker is free.
                    Some(group) => ctx.forward(call, group),
                }
                true
            }
            Step::Check => {
                if ctx.caller_gave_up(call) {
                    self.deadline_exceeded += 1;
                    ctx.reply(call, Outcome::Failed(ErrorCause::DeadlineExceeded));
                    return true;
                }
                self.control::<PLAIN>(call, ctx)
            }
            Step::FanOut { groups, need, op } => {
                c.round = c.round.wrapping_add(1);
                c.pending = groups.len() as u16;
                c.needed = *need;
                c.succeeded = 0;
                let op = if *op == 0 { c.op } else { *op };
                for &g in groups {
                    ctx.call_group(self.id, call, g, op);
                }
                self.def.asynchronous
            }
        }
    }

    /// Runs a queue's batch delivery `call`, out of line: hold the worker for the batch's
    /// work ([`Op::batch_work`]), slowed as a work step is, then answer Ok.
    #[cold]
    #[inline(never)]
    fn batch_step(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        let c = ctx.call_mut(call);
        if c.step > 0 {
            self.completed += 1;
            ctx.reply(call, Outcome::Ok);
            return true;
        }
        c.step = 1;
        let mut ns = Op::batch_work(c).0 as f64 * self.slow;
        if let Some(slow) = &self.def.slowdown {
            ns *= slow.factor(self.load.busy(), self.load.waiting(), self.def.workers);
        }
        ctx.timer(
            self.id,
            SimDuration::from_nanos_f64(ns),
            TIMER_WORK_DONE,
            call,
        );
        false
    }

    /// Goes on with `call` at the step a branch or a jump chose (out of line, so handlers
    /// without branches pay nothing for them).
    #[inline(never)]
    fn control<const PLAIN: bool>(&mut self, call: CallId, ctx: &mut Ctx) -> bool {
        self.step::<PLAIN>(call, ctx)
    }

    /// The handler of `call` ends with `outcome`: answer, and free its worker.
    fn finish<const PLAIN: bool>(&mut self, call: CallId, outcome: Outcome, ctx: &mut Ctx) {
        match outcome {
            Outcome::Ok => self.completed += 1,
            _ => self.failed += 1,
        }
        ctx.reply(call, outcome);
        if let Some(next) = self.next_for_free_worker::<PLAIN>(ctx) {
            self.run::<PLAIN>(next, ctx);
        }
    }

    /// A worker is free: it takes the next waiting request (returned, counted as started),
    /// or goes idle.
    #[inline(always)]
    fn next_for_free_worker<const PLAIN: bool>(&mut self, ctx: &mut Ctx) -> Option<CallId> {
        // Requests wait only while every worker is busy, so the freed worker passes
        // straight to the next waiting request: the busy level does not change.
        let now = ctx.now();
        while let Some(next) = self.queue.pop::<PLAIN>() {
            self.load.waiting_dec(now);
            if !PLAIN && self.def.checks_dequeue && self.drop_at_dequeue(next, ctx) {
                continue;
            }
            self.count_start(next, ctx);
            return Some(next);
        }
        self.load.busy_dec(now);
        None
    }

    /// Queues `call` (already counted), or starts it if a worker is free.
    #[inline(always)]
    fn admit<const PLAIN: bool>(&mut self, call: CallId, ctx: &mut Ctx) {
        if self.has_free_worker() {
            self.start::<PLAIN>(call, ctx);
        } else {
            self.enqueue(call, ctx);
        }
    }

    /// Puts `call` in the queue (every worker is busy).
    #[inline(always)]
    fn enqueue(&mut self, call: CallId, ctx: &mut Ctx) {
        self.queue.push(call, || ctx.call(call).class);
        self.load.waiting_inc(ctx.now());
    }
}

/// What a service reports, per instance and combined over its instances.
pub const METRICS: &[MetricDecl] = &[
    MetricDecl::number("utilization", Share, Mean)
        .saturates(Saturation::Busy)
        .column("utilization", 0)
        .estimated(),
    MetricDecl::number("busy_workers_mean", Level, Sum),
    MetricDecl::number("queue_mean", Level, Sum).column("queue mean", 1),
    MetricDecl::number("queue_max", Level, Max).column("queue max", 2),
    MetricDecl::number("in_system_mean", Level, Sum),
    MetricDecl::number("arrived", Count, Sum),
    MetricDecl::number("completed", Count, Sum),
    MetricDecl::number("failed", Count, Sum),
    MetricDecl::number("dropped", Count, Sum).column("dropped", 5),
    MetricDecl::number("expired", Count, Sum),
    MetricDecl::number("arrival_rate_per_s", PerSecond, Sum),
    MetricDecl::number("throughput_per_s", PerSecond, Sum).column("throughput/s", 6),
    MetricDecl::number("wait_mean_ms", Ms, Mean)
        .column("wait ms", 3)
        .estimated(),
    MetricDecl::number("wait_share", Share, Mean),
    MetricDecl::number("drop_share", Share, Mean).saturates(Saturation::Refused),
    // Share of time with 0, 1, 2, ... requests at the instance (waiting or in service).
    MetricDecl::distribution("occupancy"),
    // Time requests waited in the queue before a worker took them.
    MetricDecl::histogram("wait").column("wait p99", 4),
];

impl Component for ServiceInstance {
    fn key_callees(&self) -> Vec<u32> {
        self.def.key_callees()
    }

    #[inline]
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        // The other form out of line: the plain one then holds nothing for it.
        if self.plain {
            self.arrive::<true>(call, ctx);
        } else {
            self.arrive_other(call, ctx);
        }
    }

    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        if self.plain {
            self.reply::<true>(parent, child, current, ctx);
        } else {
            self.reply::<false>(parent, child, current, ctx);
        }
    }

    #[inline]
    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        debug_assert_eq!(tag, TIMER_WORK_DONE);
        if self.plain {
            self.run::<true>(data, ctx);
        } else {
            self.run::<false>(data, ctx);
        }
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.load.restart(now);
        self.waits.clear();
        self.arrived = 0;
        self.completed = 0;
        self.failed = 0;
        self.dropped = 0;
        self.expired = 0;
        self.started = 0;
        self.rate_limited = 0;
        self.shed = 0;
        self.deadline_exceeded = 0;
    }

    fn on_crash(&mut self, ctx: &mut Ctx) {
        // The engine fails or swallows the calls themselves.
        self.queue = WaitQueue::new(&self.def);
        self.load.clear(ctx.now());
    }

    fn set_degradation(&mut self, d: Degradation, ctx: &mut Ctx) {
        self.slow = d.slow;
        self.error_share = d.error_share;
        self.screens = d.error_share > 0.0
            || self
                .def
                .admission
                .as_deref()
                .is_some_and(admission::Admission::checks_arrivals);
        self.plain = plain(&self.def, self.slow, self.screens);
        let workers = d.workers.unwrap_or(self.def.workers);
        if workers != self.def.workers {
            self.load.track_busy_exactly(ctx.now());
        }
        self.workers = workers;
        self.fill_workers(ctx);
    }

    fn gauges(&self, now: SimTime) -> Gauges {
        let since = SimTime(self.busy_since());
        Gauges {
            since,
            busy_ns: self.load.busy_mean(now) * now.since(since).0 as f64,
            workers: self.workers,
            busy: self.load.busy(),
            waiting: self.load.waiting(),
            arrived: self.arrived,
        }
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let window_s = now.since(SimTime(self.busy_since())).as_secs_f64();
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let share = |n: u64, of: u64| if of > 0 { n as f64 / of as f64 } else { 0.0 };
        let busy_mean = self.load.busy_mean(now);
        let queue_mean = self.load.waiting_mean(now);
        let wait_mean_ms = if self.started > 0 {
            self.waits.sum_ns() as f64 / self.started as f64 / 1e6
        } else {
            0.0
        };
        let mut r = InstanceReport::new(&self.name, self.def.metrics());
        r.set("utilization", busy_mean / f64::from(self.def.workers))
            .set("busy_workers_mean", busy_mean)
            .set("queue_mean", queue_mean)
            .set("queue_max", self.load.waiting_max() as f64)
            .set("in_system_mean", busy_mean + queue_mean)
            .set("arrived", self.arrived as f64)
            .set("completed", self.completed as f64)
            .set("failed", self.failed as f64)
            .set("dropped", self.dropped as f64)
            .set("expired", self.expired as f64)
            .set("arrival_rate_per_s", per_s(self.arrived))
            .set("throughput_per_s", per_s(self.completed))
            .set("wait_mean_ms", wait_mean_ms)
            .set("wait_share", share(self.waits.count(), self.started))
            .set("drop_share", share(self.dropped, self.arrived));
        if self.def.admission.is_some() {
            r.set("rate_limited", self.rate_limited as f64)
                .set("shed", self.shed as f64)
                .set("deadline_exceeded", self.deadline_exceeded as f64);
        }
        r.set_distribution("occupancy", self.load.shares(now));
        let mut waits = self.waits.clone();
        waits.record_zeros(self.started - self.waits.count());
        r.set_histogram("wait", waits);
        r
    }
}

impl ServiceInstance {
    fn busy_since(&self) -> u64 {
        self.load.since()
    }

    /// [`Self::arrive`] for an instance that is not [`plain`].
    #[inline(never)]
    fn arrive_other(&mut self, call: CallId, ctx: &mut Ctx) {
        self.arrive::<false>(call, ctx);
    }

    /// A call arrives (see [`Component::on_arrive`]).
    #[inline(always)]
    fn arrive<const PLAIN: bool>(&mut self, call: CallId, ctx: &mut Ctx) {
        let now = ctx.now();
        self.arrived += 1;
        debug_assert_eq!(ctx.call(call).step, 0, "a call arrives at its first step");
        if !PLAIN && self.screens && self.screen(call, ctx) {
            return;
        }
        if self.has_free_worker() {
            // A new call starts at once: a zero wait (counted as such when reporting).
            self.load.busy_inc(now);
            self.started += 1;
            self.run::<PLAIN>(call, ctx);
            return;
        }
        if self.load.waiting() >= self.capacity {
            self.dropped += 1;
            ctx.reply(call, Outcome::Failed(ErrorCause::QueueFull));
            return;
        }
        ctx.call_mut(call).enqueued_at = now;
        self.enqueue(call, ctx);
    }

    /// A call this instance made has finished (see [`Component::on_reply`]).
    #[inline(always)]
    fn reply<const PLAIN: bool>(
        &mut self,
        parent: CallId,
        child: &Call,
        current: bool,
        ctx: &mut Ctx,
    ) {
        if !current {
            return;
        }
        let now = ctx.now();
        let c = ctx.call_mut(parent);
        c.pending -= 1;
        let failure = match child.outcome {
            Outcome::Ok => {
                c.succeeded += 1;
                // What the callee said of the key, for a branch and for a `set` after it.
                c.found = child.found;
                c.version = child.version;
                None
            }
            Outcome::Failed(cause) => Some(cause),
            Outcome::Pending => unreachable!("a reply with a pending outcome"),
        };
        if c.succeeded >= c.needed {
            // Enough answers: go on; later answers of this round are ignored.
            c.round = c.round.wrapping_add(1);
            if self.def.asynchronous {
                c.enqueued_at = now;
                self.admit::<PLAIN>(parent, ctx);
            } else {
                self.run::<PLAIN>(parent, ctx);
            }
        } else if let Some(cause) = failure
            && c.succeeded + c.pending < c.needed
        {
            // Too many failures to ever get enough answers: the request fails.
            c.round = c.round.wrapping_add(1);
            if self.def.asynchronous {
                self.failed += 1;
                ctx.reply(parent, Outcome::Failed(cause));
            } else {
                self.finish::<PLAIN>(parent, Outcome::Failed(cause), ctx);
            }
        }
    }
}

/// True when nothing out of the ordinary applies to an instance of `def` slowed by `slow`
/// (1: not slowed) that screens its arrivals when `screens`: no batches, no load-dependent
/// service time, no checks as a request leaves the queue, no adaptive LIFO. Such an
/// instance runs the plain form of its handlers, without the tests for any of them.
fn plain(def: &ServiceDef, slow: f64, screens: bool) -> bool {
    let adaptive = def
        .admission
        .as_ref()
        .is_some_and(|a| a.adaptive_lifo.is_some());
    slow == 1.0
        && !screens
        && !def.takes_batches
        && !def.checks_dequeue
        && def.slowdown.is_none()
        && !adaptive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_draw_picks_by_cumulative_probability() {
        // {"route": {"disk1": 0.3, "disk2": 0.2}}: [0, 0.3) disk1, [0.3, 0.5) disk2, else here.
        let t = [
            RouteTarget {
                group: 7,
                probability: 0.3,
                cumulative: 0.3,
            },
            RouteTarget {
                group: 9,
                probability: 0.2,
                cumulative: 0.5,
            },
        ];
        assert_eq!(pick_route(&t, 0.0), Some(7));
        assert_eq!(pick_route(&t, 0.29), Some(7));
        assert_eq!(pick_route(&t, 0.3), Some(9));
        assert_eq!(pick_route(&t, 0.49), Some(9));
        assert_eq!(pick_route(&t, 0.5), None);
        assert_eq!(pick_route(&t, 0.999), None);
    }
}
