//! `queue`: a message broker between producers and a consumer service ("enqueue and
//! return"). A producer's call is answered Ok once its message is enqueued (after the
//! enqueue time), not when it is processed. Each message is a detached root call
//! ([`Ctx::spawn`]) held by the queue, which pushes messages in FIFO order to the consumer
//! service while fewer than its capacity are out (no polling events), as ordinary child
//! calls. An Ok reply acknowledges the message; a failed one, or no reply within the
//! visibility timeout, makes it visible again (after the retry backoff), at the head of the
//! line; after `max_deliveries` deliveries it goes to the dead-letter queue. A late reply
//! of a delivery the queue stopped waiting for is counted as a duplicate when it succeeded
//! (the consumer did the work again).
//!
//! The queue keeps each message's delivery count and state in the message's own call
//! (`step`, `pending`, `version`), so it allocates nothing per message once warm. A crashed
//! queue is durable: it keeps its messages, and those out are visible again when it comes
//! back.

mod estimate;
pub mod spec;
pub mod validate;
mod visibility;
mod waiting;

use super::Kind;
use super::op::Op;
use crate::analysis::{Flow, MetricEstimate, Network, ServiceEstimate};
use crate::distributions::Distribution;
use crate::engine::{Call, CallId, Component, Ctx, Gauges, InstanceId, Outcome};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::metrics::{ErrorCause, InstanceReport, TimeWeighted, WaitHistogram};
use crate::model::graph::Link;
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use std::sync::Arc;
use visibility::Deadlines;
use waiting::Waiting;

/// What a full queue does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse it: the producer's call fails ([`ErrorCause::QueueFull`]).
    Refuse,
    /// Drop the oldest waiting message.
    DropOldest,
}

/// A validated queue.
#[derive(Debug, Clone)]
pub struct QueueDef {
    /// The consumer service's group.
    pub consumers: u32,
    /// The queue that receives the dead-lettered messages, if any.
    pub dead_letter: Option<u32>,
    /// Priority level of each request class, lower first (empty: FIFO order).
    pub level_of_class: Vec<u8>,
    /// Time to enqueue (`None`: at once).
    pub enqueue_time: Option<Distribution>,
    /// Most messages waiting (`usize::MAX`: no limit).
    pub max_depth: usize,
    /// What a full queue does.
    pub when_full: WhenFull,
    /// A delivery not acknowledged within this is delivered again.
    pub visibility_timeout: SimDuration,
    /// Deliveries before the dead-letter queue.
    pub max_deliveries: u16,
    /// Wait after a failed delivery before the message is visible again.
    pub retry_backoff: SimDuration,
    /// Most messages out at once (over every consumer instance).
    pub capacity: u32,
    /// Workers of the consumer service, over its instances (for the estimate).
    pub consumer_workers: u32,
    /// An autoscaler sets the consumers' instances (no estimate of the pool).
    pub consumers_autoscaled: bool,
    /// Consumers take messages in batches (`None`: one at a time).
    pub batch: Option<Batch>,
    /// Its consumers, for the call graph.
    pub links: Vec<Link>,
}

/// How a queue's consumers take messages in batches.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Most messages in a batch.
    pub max: u32,
    /// Longest a free worker waits for a batch to fill.
    pub max_wait: SimDuration,
    /// Work of a batch whatever its size, drawn once per batch (`None`: 0).
    pub fixed: Option<Distribution>,
    /// Work each message adds, drawn once per message (`None`: 0).
    pub per_message: Option<Distribution>,
}

impl Kind for QueueDef {
    fn name(&self) -> &'static str {
        "queue"
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        self.metric_decls()
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component> {
        Box::new(QueueInstance::new(self, id, name, rng))
    }
    fn pass_flows(&self, net: &Network, flow: &Flow, flows: &mut [Flow], _routed: &mut [Flow]) {
        estimate::pass_flows(self, net, flow, flows);
    }
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        warnings: &mut Vec<String>,
    ) -> Vec<MetricEstimate> {
        estimate::metric_estimates(self, net, flow, warnings)
    }
    fn response(
        &self,
        _net: &Network,
        _flow: &Flow,
        _response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        (estimate::response_ms(self), None)
    }
}

impl QueueDef {
    /// What this queue reports: the batch metrics only when it batches.
    pub fn metric_decls(&self) -> &'static [MetricDecl] {
        if self.batch.is_some() {
            METRICS_BATCHED
        } else {
            METRICS
        }
    }
}

/// What a queue reports.
pub const METRICS: &[MetricDecl] = METRICS_BATCHED.split_at(METRICS_BATCHED.len() - 2).0;

/// What a queue with `batch` reports: [`METRICS`] and its batches.
pub const METRICS_BATCHED: &[MetricDecl] = &[
    MetricDecl::number("enqueued", Count, Sum),
    MetricDecl::number("acked", Count, Sum),
    MetricDecl::number("ack_rate_per_s", PerSecond, Sum).column("throughput/s", 0),
    // Messages waiting to be delivered: time average and most at once.
    MetricDecl::number("depth_mean", Level, Sum).column("depth", 1),
    MetricDecl::number("depth_max", Level, Max),
    // Messages out to consumers, time average.
    MetricDecl::number("in_flight_mean", Level, Sum),
    // Age of the oldest message not yet acknowledged, its largest value.
    MetricDecl::number("oldest_age_max_ms", Ms, Max),
    MetricDecl::number("delay_mean_ms", Ms, Mean),
    // From enqueue to acknowledgement.
    MetricDecl::histogram("delay").column("delay p99", 2),
    // Priority order only: the mean delay of the messages of each level, most urgent
    // first (left out in FIFO order).
    MetricDecl::distribution("delay_mean_ms_by_level"),
    MetricDecl::number("deliveries", Count, Sum),
    MetricDecl::number("redeliveries", Count, Sum),
    // Deliveries answered Ok after the queue stopped waiting for them.
    MetricDecl::number("duplicates", Count, Sum),
    MetricDecl::number("dead_lettered", Count, Sum),
    MetricDecl::number("dropped", Count, Sum),
    MetricDecl::number("refused", Count, Sum),
    // Batches delivered (with `batch` only, as the next one).
    MetricDecl::number("batches", Count, Sum),
    // Messages per batch delivered, on average.
    MetricDecl::number("batch_size_mean", Ratio, Mean).column("batch", 3),
];

/// Timer tags (the low two bits); a batch's fill timer carries its serial above.
const TAG_ENQUEUE: u32 = 0;
const TAG_VISIBLE_AGAIN: u32 = 1;
const TAG_VISIBILITY: u32 = 2;
const TAG_RETRY_CONSUMERS: u32 = 3;
const SERIAL_BITS: u32 = 30;
const SERIAL_MASK: u32 = (1 << SERIAL_BITS) - 1;

/// A message's state, kept in its call's `pending`.
const WAITING: u16 = 0;
const OUT: u16 = 1;
const BACKING_OFF: u16 = 2;
/// Sent to the dead-letter queue, awaiting its answer.
const DEAD_LETTERING: u16 = 3;
/// Not a message: a batch of them delivered to a consumer (its members are `OUT`), its
/// slot in [`QueueInstance::batches`] in its memo.
const BATCH: u16 = 4;

/// Wait before trying again a consumer service with no live instance.
const RETRY_CONSUMERS: SimDuration = SimDuration(1_000_000_000);

/// One queue (a broker instance).
pub struct QueueInstance {
    def: Arc<QueueDef>,
    id: InstanceId,
    name: String,
    rng: Rng,
    /// Messages waiting to be delivered, with when they were enqueued, in delivery order.
    waiting: Waiting,
    /// Deliveries out now.
    out: u32,
    /// Serial number of the last delivery (stored in the message's `version`).
    serial: u32,
    /// When each delivery out must be acknowledged, under one engine timer.
    deadlines: Deadlines,
    /// A retry of an unavailable consumer service is scheduled.
    retry_scheduled: bool,
    /// With `batch`: the messages of each batch out, by slot (emptied, not dropped, when
    /// the batch is over, so a warm queue allocates nothing).
    batches: Vec<Vec<CallId>>,
    /// Slots of `batches` not in use.
    free_batches: Vec<u32>,
    /// Batches out now.
    batches_out: u32,
    /// A free worker waits for its batch to fill until then (timer serial `fill_serial`).
    fill_due: Option<SimTime>,
    fill_serial: u32,
    batch_count: u64,
    batched_messages: u64,
    depth: TimeWeighted,
    in_flight: TimeWeighted,
    delays: WaitHistogram,
    /// Priority order: delay sum (ns) and count of the acknowledged messages of each level.
    level_delays: Vec<(u64, u64)>,
    oldest_age_max: u64,
    enqueued: u64,
    acked: u64,
    deliveries: u64,
    redeliveries: u64,
    duplicates: u64,
    dead_lettered: u64,
    dropped: u64,
    refused: u64,
    since: SimTime,
}

impl QueueInstance {
    /// Instance `id`, named `name`, drawing its enqueue times from `rng`.
    pub fn new(def: Arc<QueueDef>, id: InstanceId, name: String, rng: Rng) -> Self {
        let levels = def
            .level_of_class
            .iter()
            .max()
            .map_or(0, |&l| usize::from(l) + 1);
        QueueInstance {
            waiting: Waiting::new(levels),
            def,
            id,
            name,
            rng,
            out: 0,
            serial: 0,
            deadlines: Deadlines::default(),
            retry_scheduled: false,
            batches: Vec::new(),
            free_batches: Vec::new(),
            batches_out: 0,
            fill_due: None,
            fill_serial: 0,
            batch_count: 0,
            batched_messages: 0,
            depth: TimeWeighted::default(),
            in_flight: TimeWeighted::default(),
            delays: WaitHistogram::new(),
            level_delays: vec![(0, 0); levels],
            oldest_age_max: 0,
            enqueued: 0,
            acked: 0,
            deliveries: 0,
            redeliveries: 0,
            duplicates: 0,
            dead_lettered: 0,
            dropped: 0,
            refused: 0,
            since: SimTime::ZERO,
        }
    }

    /// The producer's call `call` has its message enqueued now (or refused when full).
    #[inline(always)]
    fn enqueue(&mut self, call: CallId, ctx: &mut Ctx) {
        let now = ctx.now();
        if self.waiting.len() >= self.def.max_depth {
            match self.def.when_full {
                WhenFull::Refuse => {
                    self.refused += 1;
                    return ctx.reply(call, Outcome::Failed(ErrorCause::QueueFull));
                }
                WhenFull::DropOldest => {
                    if let Some((old, at)) = self.waiting.pop_to_drop() {
                        self.dropped += 1;
                        self.finished(at, now);
                        ctx.free(old);
                    }
                }
            }
        }
        let c = ctx.call(call);
        let (class, key, op) = (c.class, c.key, c.op);
        let m = ctx.spawn(self.id, class, key, op);
        self.enqueued += 1;
        let level = self.level(class);
        self.waiting.push_back(level, (m, now));
        self.depth.set(now, self.waiting.len() as u64);
        ctx.reply(call, Outcome::Ok);
        self.pump(ctx);
    }

    /// The priority level of a message of class `class` (0 in FIFO order).
    #[inline]
    fn level(&self, class: u16) -> u8 {
        self.def
            .level_of_class
            .get(class as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Message `m` (enqueued at `created`) is visible again, at the head of its line.
    fn visible_again(&mut self, m: CallId, created: SimTime, ctx: &mut Ctx) {
        let c = ctx.call_mut(m);
        c.pending = WAITING;
        let level = self.level(c.class);
        self.waiting.push_front(level, (m, created));
    }

    /// A message enqueued at `at` leaves the queue for good now: the oldest age seen.
    #[inline]
    fn finished(&mut self, at: SimTime, now: SimTime) {
        self.oldest_age_max = self.oldest_age_max.max(now.since(at).0);
    }

    /// The next delivery serial (never 0).
    #[inline]
    fn next_serial(&mut self) -> u32 {
        self.serial = (self.serial + 1) & SERIAL_MASK;
        if self.serial == 0 {
            self.serial = 1;
        }
        self.serial
    }

    /// True when the consumer service has no live instance: a retry is then scheduled.
    #[inline(always)]
    fn consumers_down(&mut self, ctx: &mut Ctx) -> bool {
        if !ctx.groups[self.def.consumers as usize].live().is_empty() {
            return false;
        }
        self.retry_consumers(ctx);
        true
    }

    /// Tries the consumer service again later (once: a retry already set stands).
    #[cold]
    fn retry_consumers(&mut self, ctx: &mut Ctx) {
        if !self.retry_scheduled {
            self.retry_scheduled = true;
            ctx.timer(self.id, RETRY_CONSUMERS, TAG_RETRY_CONSUMERS, 0);
        }
    }

    /// Delivers waiting messages while fewer than the capacity are out. The check that
    /// nothing can be delivered (the common case after an acknowledgement) is inlined in
    /// every caller; the delivering is not.
    #[inline(always)]
    fn pump(&mut self, ctx: &mut Ctx) {
        if self.def.batch.is_some() {
            return self.pump_batches(ctx);
        }
        if self.out >= self.def.capacity || self.waiting.is_empty() {
            return;
        }
        self.deliver_waiting(ctx);
    }

    /// [`QueueInstance::pump`] when a message waits and a consumer is free, one at a time.
    #[inline(never)]
    fn deliver_waiting(&mut self, ctx: &mut Ctx) {
        if self.consumers_down(ctx) {
            return;
        }
        let now = ctx.now();
        while self.out < self.def.capacity {
            let Some((m, _)) = self.waiting.pop_front() else {
                break;
            };
            self.next_serial();
            let c = ctx.call_mut(m);
            c.step += 1;
            if c.step > 1 {
                self.redeliveries += 1;
            }
            c.pending = OUT;
            c.version = self.serial;
            let op = c.op;
            self.deliveries += 1;
            self.out += 1;
            ctx.call_group(self.id, m, self.def.consumers, op);
            self.watch_visibility(m, self.serial, ctx);
        }
        self.depth.set(now, self.waiting.len() as u64);
        self.in_flight.set(now, u64::from(self.out));
    }

    /// With `batch`: delivers batches while fewer than the capacity are out. A free worker
    /// takes up to `max` waiting messages; when fewer wait it waits for more until
    /// `max_wait` after it could take the first (one batch fills at a time), then takes
    /// what is there.
    #[inline(never)]
    fn pump_batches(&mut self, ctx: &mut Ctx) {
        if self.batches_out >= self.def.capacity || self.waiting.is_empty() {
            return;
        }
        if self.consumers_down(ctx) {
            return;
        }
        let Some(b) = &self.def.batch else { return };
        let (max, max_wait) = (b.max as usize, b.max_wait);
        let now = ctx.now();
        while self.batches_out < self.def.capacity && !self.waiting.is_empty() {
            let waiting = self.waiting.len();
            if waiting < max && max_wait.0 > 0 {
                match self.fill_due {
                    None => {
                        // A worker could take a message now: it waits for more.
                        self.fill_due = Some(now.after(max_wait));
                        self.fill_serial = self.fill_serial % SERIAL_MASK + 1;
                        let tag = TAG_RETRY_CONSUMERS | (self.fill_serial << 2);
                        ctx.timer(self.id, max_wait, tag, 0);
                        break;
                    }
                    Some(due) if now < due => break,
                    Some(_) => {}
                }
            }
            if self.fill_due.take().is_some() {
                // Its timer, if still to come, is now stale.
                self.fill_serial = self.fill_serial % SERIAL_MASK + 1;
            }
            self.deliver_batch(waiting.min(max), ctx);
        }
        self.depth.set(now, self.waiting.len() as u64);
        self.in_flight.set(now, u64::from(self.out));
    }

    /// Delivers the next `n` waiting messages (at least one) as one batch: a call of
    /// operation [`Op::BATCH`] carrying the batch's work, under one visibility timer.
    fn deliver_batch(&mut self, n: usize, ctx: &mut Ctx) {
        let slot = match self.free_batches.pop() {
            Some(s) => s,
            None => {
                self.batches.push(Vec::new());
                (self.batches.len() - 1) as u32
            }
        };
        let mut members = std::mem::take(&mut self.batches[slot as usize]);
        let b = self.def.batch.as_ref().expect("a batching queue");
        let mut work = b.fixed.as_ref().map_or(0.0, |d| d.sample_ns(&mut self.rng));
        let mut class = 0;
        for _ in 0..n {
            let Some((m, _)) = self.waiting.pop_front() else {
                break;
            };
            let c = ctx.call_mut(m);
            c.step += 1;
            if c.step > 1 {
                self.redeliveries += 1;
            }
            c.pending = OUT;
            c.version = 0;
            if members.is_empty() {
                class = c.class;
            }
            members.push(m);
            if let Some(d) = &b.per_message {
                work += d.sample_ns(&mut self.rng);
            }
        }
        let size = members.len() as u32;
        self.batches[slot as usize] = members;
        self.deliveries += u64::from(size);
        self.out += size;
        self.batches_out += 1;
        self.batch_count += 1;
        self.batched_messages += u64::from(size);
        let key = Op::batch_key(SimDuration::from_nanos_f64(work));
        let op = Op::BATCH;
        let batch = ctx.spawn(self.id, class, key, op);
        let serial = self.next_serial();
        let c = ctx.call_mut(batch);
        c.pending = BATCH;
        c.version = serial;
        c.set_memo(slot);
        let child = ctx.call_group(self.id, batch, self.def.consumers, op);
        // Its size, for counting duplicates should its answer come too late.
        ctx.call_mut(child).set_memo(size);
        self.watch_visibility(batch, serial, ctx);
    }

    /// Delivery `serial` of `call` (a message, or a batch) must be acknowledged within the
    /// visibility timeout; the timer is set if none is.
    #[inline]
    fn watch_visibility(&mut self, call: CallId, serial: u32, ctx: &mut Ctx) {
        let timeout = self.def.visibility_timeout;
        if self.deadlines.push(ctx.now().after(timeout), call, serial) {
            ctx.timer(self.id, timeout, TAG_VISIBILITY, 0);
        }
    }

    /// True when delivery `serial` of `call` (a message or a batch) is still out: neither
    /// acknowledged nor given up.
    #[inline]
    fn still_out(&self, call: CallId, serial: u32, ctx: &Ctx) -> bool {
        let c = ctx.call(call);
        ctx.is_detached(call)
            && c.instance == self.id
            && c.version == serial
            && matches!(c.pending, OUT | BATCH)
    }

    /// The visibility timer fired: every delivery whose deadline has come and is still out
    /// is over (visible again, or dead-lettered); the timer is set for the next deadline.
    fn visibility_timer(&mut self, ctx: &mut Ctx) {
        // Still marked armed while it runs: deliveries made meanwhile set no timer of
        // their own (their deadlines come after those left).
        let now = ctx.now();
        while let Some((call, serial)) = self.deadlines.pop_due(now) {
            if self.still_out(call, serial, ctx) {
                match ctx.call(call).pending {
                    OUT => self.not_acked(call, SimDuration::ZERO, ctx),
                    BATCH => self.batch_over(call, false, SimDuration::ZERO, ctx),
                    _ => {}
                }
            }
        }
        // Most deliveries are acknowledged long before their deadline: the next timer is
        // for the first one still out, not for each one over.
        while let Some((call, serial)) = self.deadlines.front() {
            if self.still_out(call, serial, ctx) {
                break;
            }
            self.deadlines.skip();
        }
        if let Some(next) = self.deadlines.rearm() {
            ctx.timer(self.id, next.since(now), TAG_VISIBILITY, 0);
        }
    }

    /// Batch `batch` is over: acknowledged (`ok`), or failed or timed out (its messages
    /// are visible again after `backoff`, or dead-lettered).
    fn batch_over(&mut self, batch: CallId, ok: bool, backoff: SimDuration, ctx: &mut Ctx) {
        let slot = ctx.call(batch).memo() as usize;
        let mut members = std::mem::take(&mut self.batches[slot]);
        for &m in &members {
            if ok {
                self.ack(m, ctx);
            } else {
                self.release(m, backoff, ctx);
            }
        }
        members.clear();
        self.batches[slot] = members;
        self.free_batches.push(slot as u32);
        self.batches_out -= 1;
        ctx.free(batch);
        self.pump(ctx);
    }

    /// Message `m` is acknowledged now: its delay is recorded and it is freed.
    #[inline(always)]
    fn ack(&mut self, m: CallId, ctx: &mut Ctx) {
        let now = ctx.now();
        let created = ctx.requests[m as usize].created;
        let delay = now.since(created).0;
        self.delays.record(delay);
        if !self.level_delays.is_empty() {
            let level = self.level(ctx.call(m).class);
            let d = &mut self.level_delays[usize::from(level)];
            d.0 += delay;
            d.1 += 1;
        }
        self.finished(created, now);
        self.acked += 1;
        self.out -= 1;
        self.in_flight.set(now, u64::from(self.out));
        ctx.call_mut(m).version = 0;
        ctx.free(m);
    }

    /// Delivery of message `m` is over without an acknowledgement (failed, or timed out):
    /// it is visible again (after `backoff`), or dead-lettered after its last delivery.
    fn not_acked(&mut self, m: CallId, backoff: SimDuration, ctx: &mut Ctx) {
        self.release(m, backoff, ctx);
        self.pump(ctx);
    }

    /// [`QueueInstance::not_acked`] without delivering more.
    fn release(&mut self, m: CallId, backoff: SimDuration, ctx: &mut Ctx) {
        let now = ctx.now();
        self.out -= 1;
        self.in_flight.set(now, u64::from(self.out));
        let created = ctx.requests[m as usize].created;
        let c = ctx.call_mut(m);
        // Replies of this delivery are no longer awaited.
        c.round = c.round.wrapping_add(1);
        c.version = 0;
        if c.step >= self.def.max_deliveries {
            self.dead_lettered += 1;
            self.finished(created, now);
            match self.def.dead_letter {
                Some(dlq) => {
                    // Handed to the dead-letter queue as a producer's call; freed once
                    // that queue answers.
                    c.pending = DEAD_LETTERING;
                    c.round = c.round.wrapping_add(1);
                    let op = c.op;
                    ctx.call_group(self.id, m, dlq, op);
                }
                None => ctx.free(m),
            }
        } else if backoff.0 > 0 {
            c.pending = BACKING_OFF;
            ctx.timer(self.id, backoff, TAG_VISIBLE_AGAIN, m);
        } else {
            self.visible_again(m, created, ctx);
            self.depth.set(now, self.waiting.len() as u64);
        }
    }
}

impl Component for QueueInstance {
    fn start(&mut self, ctx: &mut Ctx) {
        self.retry_scheduled = false;
        self.pump(ctx);
    }

    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        match &self.def.enqueue_time {
            None => self.enqueue(call, ctx),
            Some(d) => {
                let t = SimDuration::from_nanos_f64(d.sample_ns(&mut self.rng));
                ctx.timer(self.id, t, TAG_ENQUEUE, call);
            }
        }
    }

    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        if !current {
            let from_dead_letter = self
                .def
                .dead_letter
                .is_some_and(|d| ctx.group_of(child.instance) == d);
            if child.outcome == Outcome::Ok && !from_dead_letter {
                // A batch's messages were all processed again.
                self.duplicates += if child.op == Op::BATCH {
                    u64::from(child.memo())
                } else {
                    1
                };
            }
            return;
        }
        let m = parent;
        match ctx.call(m).pending {
            DEAD_LETTERING => {
                // The dead-letter queue took it (or refused it, counted there).
                ctx.free(m);
                return;
            }
            BATCH => {
                let ok = child.outcome == Outcome::Ok;
                return self.batch_over(m, ok, self.def.retry_backoff, ctx);
            }
            _ => {}
        }
        if child.outcome == Outcome::Ok {
            self.ack(m, ctx);
            self.pump(ctx);
        } else {
            self.not_acked(m, self.def.retry_backoff, ctx);
        }
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        match tag & 3 {
            TAG_ENQUEUE => self.enqueue(data, ctx),
            TAG_VISIBILITY => self.visibility_timer(ctx),
            TAG_VISIBLE_AGAIN => {
                let now = ctx.now();
                let created = ctx.requests[data as usize].created;
                self.visible_again(data, created, ctx);
                self.depth.set(now, self.waiting.len() as u64);
                self.pump(ctx);
            }
            _ if tag >> 2 == 0 => {
                self.retry_scheduled = false;
                self.pump(ctx);
            }
            _ => {
                // A batch's wait to fill is over (unless it was taken full, or the queue
                // crashed, since).
                if tag >> 2 == self.fill_serial && self.fill_due.is_some() {
                    self.pump(ctx);
                }
            }
        }
    }

    fn on_crash(&mut self, ctx: &mut Ctx) {
        // Durable: the waiting messages stay; those out or backing off are visible again,
        // their deliveries' replies no longer awaited. Its timers are dropped by the engine.
        let now = ctx.now();
        let held = ctx.calls_at(self.id);
        for m in held.into_iter().rev() {
            if !ctx.is_detached(m) {
                continue;
            }
            let c = ctx.call_mut(m);
            if c.pending == DEAD_LETTERING || c.pending == BATCH {
                // Already handed to the dead-letter queue; or a batch, whose messages are
                // visible again here.
                ctx.free(m);
            } else if c.pending != WAITING {
                c.round = c.round.wrapping_add(1);
                c.version = 0;
                let created = ctx.requests[m as usize].created;
                self.visible_again(m, created, ctx);
            }
        }
        self.out = 0;
        self.deadlines.clear();
        self.batches_out = 0;
        self.fill_due = None;
        self.free_batches.clear();
        for (slot, members) in self.batches.iter_mut().enumerate() {
            members.clear();
            self.free_batches.push(slot as u32);
        }
        self.depth.set(now, self.waiting.len() as u64);
        self.in_flight.set(now, 0);
    }

    fn gauges(&self, _now: SimTime) -> Gauges {
        // What an autoscaler of the consumers reads: the messages waiting.
        Gauges {
            since: self.since,
            waiting: self.waiting.len() as u64,
            ..Gauges::default()
        }
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.since = now;
        self.depth.restart(now);
        self.in_flight.restart(now);
        self.delays.clear();
        self.level_delays.iter_mut().for_each(|d| *d = (0, 0));
        self.oldest_age_max = 0;
        self.enqueued = 0;
        self.acked = 0;
        self.deliveries = 0;
        self.redeliveries = 0;
        self.duplicates = 0;
        self.dead_lettered = 0;
        self.dropped = 0;
        self.refused = 0;
        self.batch_count = 0;
        self.batched_messages = 0;
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let window_s = now.since(self.since).as_secs_f64();
        let oldest_now = self.waiting.oldest().map_or(0, |at| now.since(at).0);
        let oldest = self.oldest_age_max.max(oldest_now);
        let mut r = InstanceReport::new(&self.name, self.def.metric_decls());
        r.set("enqueued", self.enqueued as f64)
            .set("acked", self.acked as f64)
            .set(
                "ack_rate_per_s",
                if window_s > 0.0 {
                    self.acked as f64 / window_s
                } else {
                    0.0
                },
            )
            .set("depth_mean", self.depth.mean(now))
            .set("depth_max", self.depth.max() as f64)
            .set("in_flight_mean", self.in_flight.mean(now))
            .set("oldest_age_max_ms", oldest as f64 / 1e6)
            .set(
                "delay_mean_ms",
                if self.delays.count() > 0 {
                    self.delays.sum_ns() as f64 / self.delays.count() as f64 / 1e6
                } else {
                    0.0
                },
            )
            .set("deliveries", self.deliveries as f64)
            .set("redeliveries", self.redeliveries as f64)
            .set("duplicates", self.duplicates as f64)
            .set("dead_lettered", self.dead_lettered as f64)
            .set("dropped", self.dropped as f64)
            .set("refused", self.refused as f64)
            .set_distribution(
                "delay_mean_ms_by_level",
                self.level_delays
                    .iter()
                    .map(|&(sum, n)| {
                        if n > 0 {
                            sum as f64 / n as f64 / 1e6
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            )
            .set_histogram("delay", self.delays.clone());
        if self.def.batch.is_some() {
            r.set("batches", self.batch_count as f64).set(
                "batch_size_mean",
                if self.batch_count > 0 {
                    self.batched_messages as f64 / self.batch_count as f64
                } else {
                    0.0
                },
            );
        }
        r
    }
}
