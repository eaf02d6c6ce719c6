//! One copy of a database: the primary, a replica, or a peer of a quorum. It serves calls
//! on its workers (FIFO queue), commits writes (alone or in group-commit batches) and
//! replicates them to the other copies, applies the writes that reach it, coordinates
//! quorum reads, and measures the freshness of every read it answers.

use super::failover::{Copies, Role, TAG_FAILOVER};
use super::gray::Gray;
use super::partition::{self, PartitionMode};
use super::state::{Loads, Shared, freshness};
use super::{DatabaseDef, TAG_ACK, TAG_APPLY, TAG_BATCH_WAIT, TAG_COMMIT_DONE, TAG_WORK_DONE};
use crate::components::op::Op;
use crate::engine::{Call, CallId, Component, Ctx, Degradation, InstanceId, Outcome};
use crate::metrics::sides::SideCounts;
use crate::metrics::{ErrorCause, InstanceLoad, InstanceReport, TimeWeighted, WaitHistogram};
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// One copy of a database.
pub struct DatabaseNode {
    def: Arc<DatabaseDef>,
    id: InstanceId,
    /// The first copy's instance id (the primary's, with a primary).
    first: InstanceId,
    /// Index among the copies.
    copy: usize,
    name: String,
    rng: Rng,
    /// Its gray failures now.
    gray: Gray,
    shared: Rc<RefCell<Shared>>,
    loads: Loads,
    /// Which copy is the primary (copy 0 unless a failover promoted another).
    role: Role,
    queue: VecDeque<CallId>,
    load: InstanceLoad,
    waits: WaitHistogram,
    /// Scratch: the lags of the write being replicated.
    lags: Vec<f64>,
    /// Quorum reads coordinated here: the newest acknowledged version of the key when the
    /// read arrived, and when it was acknowledged (what the read must see to be fresh).
    coordinating: FxHashMap<CallId, (u32, SimTime)>,
    /// Writes waiting for their group-commit batch, in order (each's `enqueued_at` is when
    /// it joined).
    batch: VecDeque<CallId>,
    /// The batch being committed.
    committing: Vec<CallId>,
    /// 1 while a batch commits.
    committer: TimeWeighted,
    arrived: u64,
    started: u64,
    served: u64,
    dropped: u64,
    writes: u64,
    redirected: u64,
    subreads: u64,
}

impl DatabaseNode {
    /// Copy `id` of the database whose copies start at `first`, sharing `shared`,
    /// `loads` and `role` with the others.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        def: Arc<DatabaseDef>,
        id: InstanceId,
        first: InstanceId,
        name: String,
        rng: Rng,
        shared: Rc<RefCell<Shared>>,
        loads: Loads,
        role: Role,
    ) -> Self {
        let workers = def.workers;
        let copies = def.copies as usize;
        let gray = Gray::new(workers, &rng);
        DatabaseNode {
            def,
            id,
            first,
            copy: (id - first) as usize,
            name,
            rng,
            gray,
            shared,
            loads,
            role,
            queue: VecDeque::new(),
            load: InstanceLoad::new(workers),
            waits: WaitHistogram::new(),
            lags: Vec::with_capacity(copies),
            coordinating: FxHashMap::default(),
            batch: VecDeque::new(),
            committing: Vec::new(),
            committer: TimeWeighted::default(),
            arrived: 0,
            started: 0,
            served: 0,
            dropped: 0,
            writes: 0,
            redirected: 0,
            subreads: 0,
        }
    }

    /// True when this copy is the primary.
    #[inline]
    fn is_primary(&self) -> bool {
        self.role.get() as usize == self.copy
    }

    /// This copy as failover sees it.
    fn copies(&self) -> Copies<'_> {
        Copies {
            def: &self.def,
            shared: &self.shared,
            role: &self.role,
            first: self.first,
            copy: self.copy,
        }
    }

    /// The other copies that are up.
    fn others_up(&self, ctx: &Ctx) -> usize {
        (0..self.def.copies)
            .filter(|j| *j as usize != self.copy && ctx.is_up(self.first + j))
            .count()
    }

    /// The other copies that are up and on this copy's side of a partition.
    fn others_reachable(&self, ctx: &Ctx) -> usize {
        (0..self.def.copies)
            .map(|j| self.first + j)
            .filter(|to| *to != self.id && ctx.is_up(*to) && !partition::cut(ctx, self.id, *to))
            .count()
    }

    /// The caller's call that `call` serves, with its slot generation: `call` itself, or
    /// for a call a copy passed on here, that copy's call.
    fn callers_call(&self, call: CallId, ctx: &Ctx) -> (CallId, u32) {
        let c = ctx.call(call);
        if self.is_copy(c.parent) {
            (c.parent_call, c.parent_generation)
        } else {
            (call, c.generation)
        }
    }

    /// `call` is answered: `count` counts it for the side of the partition its caller's
    /// call arrived on, if it arrived during a cut (a database with a `partition_mode`).
    #[inline]
    fn settle_side(&self, call: CallId, ctx: &Ctx, count: impl FnOnce(&mut SideCounts)) {
        if !self.def.reports_partition || self.shared.borrow().sides.untagged() {
            return;
        }
        let (front, generation) = self.callers_call(call, ctx);
        if let Some(side) = self.shared.borrow_mut().sides.take(front, generation) {
            count(side);
        }
    }

    /// `call` fails as unavailable: counted for its side, if it arrived during a cut.
    fn refused_on_side(&self, call: CallId, ctx: &Ctx) {
        self.settle_side(call, ctx, |s| s.unavailable += 1);
    }

    /// True when instance `i` is a copy of this database.
    #[inline]
    fn is_copy(&self, i: InstanceId) -> bool {
        i.wrapping_sub(self.first) < self.def.copies
    }

    /// True when this replica takes its side's writes during a partition that cuts it off
    /// from the primary, the one failover made if it promoted a replica (available mode).
    fn leads_side(&self, ctx: &Ctx) -> bool {
        self.def.partition_mode == PartitionMode::Available
            && ctx.is_partitioned()
            && partition::leads_side(ctx, self.first, self.def.copies, self.role.get(), self.id)
    }

    /// True when `call` is a read its client must see its own write in: the client had a
    /// write acknowledged within the database's read-your-writes time.
    fn must_read_own_write(&self, call: &Call, ctx: &Ctx) -> bool {
        let Some(window) = self.def.read_your_writes else {
            return false;
        };
        let client = client_of(call, ctx);
        self.shared
            .borrow()
            .last_write(client)
            .is_some_and(|at| ctx.now().since(at) <= window)
    }

    // ---------------------------------------------------------------------------------
    // The station: workers and a FIFO queue.
    // ---------------------------------------------------------------------------------

    /// Serves `call` on a free worker, or queues it, or refuses it when the queue is full.
    fn admit(&mut self, call: CallId, ctx: &mut Ctx) {
        self.arrived += 1;
        if self.gray.fails() {
            ctx.reply(call, Outcome::Failed(ErrorCause::Injected));
            return;
        }
        if self.load.busy() < u64::from(self.gray.workers) {
            self.load.busy_inc(ctx.now());
            self.start(call, false, ctx);
        } else if self
            .def
            .queue_capacity
            .is_some_and(|cap| self.load.waiting() >= u64::from(cap))
        {
            self.dropped += 1;
            self.settle_side(call, ctx, |s| s.failed(ErrorCause::QueueFull));
            ctx.reply(call, Outcome::Failed(ErrorCause::QueueFull));
            return;
        } else {
            ctx.call_mut(call).enqueued_at = ctx.now();
            self.queue.push_back(call);
            self.load.waiting_inc(ctx.now());
        }
        let l = &self.loads[self.copy];
        l.set(l.get() + 1);
    }

    /// A worker (already counted busy) starts `call`: a write takes the write time, any
    /// other call the read time.
    fn start(&mut self, call: CallId, waited: bool, ctx: &mut Ctx) {
        self.started += 1;
        let c = ctx.call(call);
        if waited {
            let wait = ctx.now().since(c.enqueued_at).0;
            if wait > 0 {
                self.waits.record(wait);
            }
        }
        let time = if Op::of(c.op).is_write() {
            &self.def.write_time
        } else {
            &self.def.read_time
        };
        let ns = time.sample_ns(&mut self.rng) * self.gray.slow;
        ctx.timer(
            self.id,
            SimDuration::from_nanos_f64(ns),
            TAG_WORK_DONE,
            call,
        );
    }

    /// A worker finished `call`: it takes the next waiting call, or goes idle.
    fn work_done(&mut self, call: CallId, ctx: &mut Ctx) {
        self.served += 1;
        let l = &self.loads[self.copy];
        l.set(l.get() - 1);
        let c = ctx.call(call);
        let (op, parent) = (Op::of(c.op), c.parent);
        if op.is_write() {
            self.written(call, ctx);
        } else if !self.def.has_primary() && self.is_copy(parent) {
            self.answer_subread(call, ctx);
        } else {
            self.answer_read(call, ctx);
        }
        let now = ctx.now();
        // A worker above a cut of the workers finishes its call and stops.
        let next = if self.load.busy() <= u64::from(self.gray.workers) {
            self.queue.pop_front()
        } else {
            None
        };
        match next {
            Some(next) => {
                self.load.waiting_dec(now);
                self.start(next, true, ctx);
            }
            None => self.load.busy_dec(now),
        }
    }

    /// Free workers (more of them after a cut ends) take waiting calls.
    fn fill_workers(&mut self, ctx: &mut Ctx) {
        while self.load.busy() < u64::from(self.gray.workers)
            && let Some(next) = self.queue.pop_front()
        {
            let now = ctx.now();
            self.load.waiting_dec(now);
            self.load.busy_inc(now);
            self.start(next, true, ctx);
        }
    }

    // ---------------------------------------------------------------------------------
    // Reads.
    // ---------------------------------------------------------------------------------

    /// A read served here answers with this copy's version of its key, measured against
    /// the newest acknowledged version.
    fn answer_read(&mut self, call: CallId, ctx: &mut Ctx) {
        let now = ctx.now();
        let c = ctx.call_mut(call);
        let mut sh = self.shared.borrow_mut();
        let (version, acked, acked_at) = sh.read(c.key, self.copy);
        let fresh = freshness(version, acked, acked_at, now);
        sh.stats[self.copy].record(c.class as usize, fresh);
        drop(sh);
        c.version = version;
        self.settle_side(call, ctx, |s| s.read(fresh.behind > 0));
        ctx.reply(call, Outcome::Ok);
    }

    /// A coordinator's quorum read asked this copy: it answers with its version.
    fn answer_subread(&mut self, call: CallId, ctx: &mut Ctx) {
        self.subreads += 1;
        let c = ctx.call_mut(call);
        c.version = self.shared.borrow().version_at(c.key, self.copy);
        ctx.reply(call, Outcome::Ok);
    }

    /// A quorum read arrives at its coordinator: it asks `r` copies (itself, then the
    /// next live ones in order) and answers with the newest version among their answers.
    fn coordinate_read(&mut self, call: CallId, ctx: &mut Ctx) {
        let mut r = self.def.quorum_r as usize;
        let n = self.def.copies as usize;
        let copy_in_turn = |i: usize| self.first + ((self.copy + i) % n) as u32;
        let id = self.id;
        let can_ask = |to: InstanceId, ctx: &Ctx| ctx.is_up(to) && !partition::cut(ctx, id, to);
        let askable = (0..n)
            .filter(|i| can_ask(copy_in_turn(*i), ctx))
            .take(r)
            .count();
        if askable < r {
            match partition::acks(self.def.partition_mode, r, askable) {
                Some(fewer) if ctx.is_partitioned() && fewer > 0 => r = fewer,
                _ => {
                    self.refused_on_side(call, ctx);
                    ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
                    return;
                }
            }
        }
        let reference = self.shared.borrow().acked(ctx.call(call).key);
        self.coordinating.insert(call, reference);
        let c = ctx.call_mut(call);
        c.round = c.round.wrapping_add(1);
        c.pending = r as u16;
        c.needed = r as u16;
        c.succeeded = 0;
        c.version = 0;
        let mut asked = 0;
        for i in 0..n {
            let to = copy_in_turn(i);
            if asked < r && can_ask(to, ctx) {
                ctx.call_instance(self.id, call, to, Op::Read.code());
                asked += 1;
            }
        }
    }

    /// A copy answered a quorum read coordinated here.
    fn quorum_reply(&mut self, parent: CallId, child: &Call, ctx: &mut Ctx) {
        let now = ctx.now();
        let c = ctx.call_mut(parent);
        c.pending -= 1;
        let failure = match child.outcome {
            Outcome::Ok => {
                c.succeeded += 1;
                c.version = c.version.max(child.version);
                None
            }
            Outcome::Failed(cause) => Some(cause),
            Outcome::Pending => unreachable!("a reply with a pending outcome"),
        };
        if c.succeeded >= c.needed {
            c.round = c.round.wrapping_add(1);
            let (version, class) = (c.version, c.class as usize);
            let (acked, acked_at) = self.coordinating.remove(&parent).unwrap_or_default();
            let fresh = freshness(version, acked, acked_at, now);
            self.shared.borrow_mut().stats[self.copy].record(class, fresh);
            self.settle_side(parent, ctx, |s| s.read(fresh.behind > 0));
            ctx.reply(parent, Outcome::Ok);
        } else if let Some(cause) = failure
            && c.succeeded + c.pending < c.needed
        {
            c.round = c.round.wrapping_add(1);
            self.coordinating.remove(&parent);
            self.settle_side(parent, ctx, |s| s.failed(cause));
            ctx.reply(parent, Outcome::Failed(cause));
        }
    }

    // ---------------------------------------------------------------------------------
    // Writes.
    // ---------------------------------------------------------------------------------

    /// A worker finished a write: it commits now, or joins the group-commit batch.
    fn written(&mut self, call: CallId, ctx: &mut Ctx) {
        let Some(gc) = &self.def.group_commit else {
            return self.commit(call, ctx);
        };
        let wait = gc.max_wait;
        ctx.call_mut(call).enqueued_at = ctx.now();
        self.batch.push_back(call);
        if self.batch.len() == 1 {
            ctx.timer(self.id, wait, TAG_BATCH_WAIT, 0);
        }
        self.try_flush(ctx);
    }

    /// Commits the next batch if the committer is free and the batch is full or its
    /// first write has waited long enough.
    fn try_flush(&mut self, ctx: &mut Ctx) {
        let Some(gc) = &self.def.group_commit else {
            return;
        };
        let Some(first) = self.batch.front() else {
            return;
        };
        let now = ctx.now();
        let waited = now.since(ctx.call(*first).enqueued_at);
        if !self.committing.is_empty()
            || (self.batch.len() < gc.max_batch as usize && waited < gc.max_wait)
        {
            return;
        }
        let n = self.batch.len().min(gc.max_batch as usize);
        self.committing.extend(self.batch.drain(..n));
        let cost = (gc.per_item_cost.0.saturating_mul(n as u64)).saturating_add(gc.fixed_cost.0);
        self.committer.set(now, 1);
        let mut sh = self.shared.borrow_mut();
        sh.stats[self.copy].batches += 1;
        sh.stats[self.copy].batched += n as u64;
        drop(sh);
        ctx.timer(self.id, SimDuration(cost), TAG_COMMIT_DONE, 0);
    }

    /// The batch being committed is done: each of its writes commits, in order.
    fn batch_done(&mut self, ctx: &mut Ctx) {
        let done = std::mem::take(&mut self.committing);
        for call in &done {
            self.commit(*call, ctx);
        }
        self.committing = done;
        self.committing.clear();
        self.committer.set(ctx.now(), 0);
        if let (Some(first), Some(gc)) = (self.batch.front(), &self.def.group_commit) {
            // The next batch's first write waits at most max_wait from when it joined.
            let due = ctx.call(*first).enqueued_at.after(gc.max_wait);
            let delay = due.since(ctx.now().min(due));
            ctx.timer(self.id, delay, TAG_BATCH_WAIT, 0);
        }
        self.try_flush(ctx);
    }

    /// `call` commits here: its key gets a new version, which the other copies apply
    /// after their lags; it answers now, or once enough of them have applied it (the
    /// live ones: it fails as unavailable when fewer than it needs are up). During a
    /// partition it reaches only the copies on its side; a consistent database fails it
    /// before it is written when they are fewer than it waits for.
    fn commit(&mut self, call: CallId, ctx: &mut Ctx) {
        let mut wait_for = self.def.wait_for as usize;
        if wait_for > 0 && self.others_up(ctx) < wait_for {
            self.refused_on_side(call, ctx);
            ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
            return;
        }
        if wait_for > 0
            && self.def.partition_mode == PartitionMode::Consistent
            && ctx.is_partitioned()
            && self.others_reachable(ctx) < wait_for
        {
            self.refused_on_side(call, ctx);
            ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
            return;
        }
        let key = ctx.call(call).key;
        let (slot, version) = self.shared.borrow_mut().write(key, self.copy);
        ctx.call_mut(call).version = version;
        self.lags.clear();
        let mut cut_off = false;
        for j in 0..self.def.copies as usize {
            if j == self.copy {
                continue;
            }
            let to = self.first + j as u32;
            if partition::cut(ctx, self.id, to) {
                // Across a partition: it gets the write when the copies reconcile.
                cut_off = true;
                continue;
            }
            // The write reaches the copy over the network, and is applied its lag later;
            // a write that waits for the copy's acknowledgement waits for its way back too.
            let lag = self.def.lag.sample_ns(&mut self.rng);
            let there = ctx.message_delay(self.id, to).0 as f64;
            ctx.timer(
                to,
                SimDuration::from_nanos_f64(there + lag),
                TAG_APPLY | version,
                slot,
            );
            if wait_for > 0 && ctx.is_up(to) {
                let back = ctx.message_delay(to, self.id).0 as f64;
                self.lags.push(there + lag + back);
            }
        }
        if cut_off {
            let side = partition::side_of(ctx, self.first, self.def.copies, self.id);
            self.shared
                .borrow_mut()
                .split_write(slot, side, self.copy, version);
            match partition::acks(self.def.partition_mode, wait_for, self.lags.len()) {
                Some(w) => wait_for = w,
                None => {
                    self.refused_on_side(call, ctx);
                    return ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable));
                }
            }
        }
        if wait_for == 0 {
            return self.ack(call, ctx);
        }
        let (_, kth, _) = self
            .lags
            .select_nth_unstable_by(wait_for - 1, f64::total_cmp);
        let delay = SimDuration::from_nanos_f64(*kth);
        ctx.timer(self.id, delay, TAG_ACK, call);
    }

    /// The write `call` is acknowledged: reads must see it from now on.
    fn ack(&mut self, call: CallId, ctx: &mut Ctx) {
        let now = ctx.now();
        let c = ctx.call(call);
        let (key, version) = (c.key, c.version);
        let client = self
            .def
            .read_your_writes
            .is_some()
            .then(|| client_of(c, ctx));
        let mut sh = self.shared.borrow_mut();
        if let Some(slot) = sh.slot(key) {
            sh.ack(slot, version, now);
        }
        if let Some(client) = client {
            sh.wrote(client, now);
        }
        drop(sh);
        self.writes += 1;
        self.settle_side(call, ctx, |s| s.writes += 1);
        ctx.reply(call, Outcome::Ok);
    }
}

/// The client that sent the request of `call`: its workload and its client number.
fn client_of(call: &Call, ctx: &Ctx) -> u64 {
    let r = &ctx.requests[call.request as usize];
    (u64::from(r.source) << 32) | u64::from(r.user)
}

impl Component for DatabaseNode {
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        let c = ctx.call(call);
        let is_write = Op::of(c.op).is_write();
        if self.def.reports_partition && ctx.is_partitioned() && !self.is_copy(c.parent) {
            let mut sh = self.shared.borrow_mut();
            sh.sides.arrived(self.copy, call, c.generation, is_write);
        }
        if self.def.has_primary() {
            // A replica passes writes, and reads that must see their client's own write,
            // to the primary, and relays its answer (a call of its own rather than a tail
            // call, so its caller, such as a balancer counting its calls per copy, hears
            // back from the copy it called).
            if !self.is_primary()
                && (is_write || self.must_read_own_write(c, ctx))
                && !self.leads_side(ctx)
            {
                self.redirected += 1;
                let (op, group) = (c.op, ctx.group_of(self.id));
                ctx.call_group(self.id, call, group, op);
                return;
            }
        } else if !is_write && !self.is_copy(c.parent) {
            return self.coordinate_read(call, ctx);
        }
        self.admit(call, ctx);
    }

    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        if !current {
            return;
        }
        if self.def.has_primary() {
            // The primary answered a call this replica passed on (and counted it for its
            // side, unless it never reached the primary).
            ctx.call_mut(parent).version = child.version;
            if let Outcome::Failed(cause) = child.outcome {
                self.settle_side(parent, ctx, |s| s.failed(cause));
            }
            ctx.reply(parent, child.outcome);
        } else {
            self.quorum_reply(parent, child, ctx);
        }
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        match tag {
            TAG_WORK_DONE => self.work_done(data, ctx),
            TAG_ACK => self.ack(data, ctx),
            TAG_BATCH_WAIT => self.try_flush(ctx),
            TAG_COMMIT_DONE => self.batch_done(ctx),
            TAG_FAILOVER => self.copies().timer(data, ctx),
            _ => {
                let version = tag & !TAG_APPLY;
                self.shared.borrow_mut().apply(data, self.copy, version);
            }
        }
    }

    fn start(&mut self, ctx: &mut Ctx) {
        if self.def.failover.is_some() {
            self.copies().started(ctx);
        }
    }

    fn set_degradation(&mut self, d: Degradation, ctx: &mut Ctx) {
        self.gray.set(d, self.def.workers);
        if self.gray.workers != self.def.workers {
            self.load.track_busy_exactly(ctx.now());
        }
        self.fill_workers(ctx);
    }

    fn on_crash(&mut self, ctx: &mut Ctx) {
        if self.def.failover.is_some() && self.is_primary() {
            self.copies().primary_crashed(ctx);
        }
        // The engine fails or swallows the calls; the writes not yet applied here are lost
        // with the timers that would have applied them.
        let now = ctx.now();
        self.queue.clear();
        self.batch.clear();
        self.committing.clear();
        self.coordinating.clear();
        self.load.clear(now);
        self.committer.set(now, 0);
        self.loads[self.copy].set(0);
    }

    fn on_network_change(&mut self, ctx: &mut Ctx) {
        let mut sh = self.shared.borrow_mut();
        if self.def.reports_partition {
            sh.sides.network_changed(ctx, self.first, self.def.copies);
        }
        if !ctx.is_partitioned() {
            sh.reconcile();
        }
    }

    fn partition_sides(&self) -> Vec<crate::metrics::sides::SideRecord> {
        if !self.def.reports_partition || self.copy != 0 {
            return Vec::new();
        }
        self.shared.borrow().sides.records()
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.load.restart(now);
        self.committer.restart(now);
        self.waits.clear();
        self.arrived = 0;
        self.started = 0;
        self.served = 0;
        self.dropped = 0;
        self.writes = 0;
        self.redirected = 0;
        self.subreads = 0;
        let mut sh = self.shared.borrow_mut();
        sh.stats[self.copy].clear();
        sh.failover.failovers = 0;
        sh.failover.lost_writes = 0;
        sh.split.clear(self.copy);
        sh.sides.restart(now);
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let window_s = now.since(SimTime(self.load.since())).as_secs_f64();
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let share = |n: u64, of: u64| if of > 0 { n as f64 / of as f64 } else { 0.0 };
        let busy_mean = self.load.busy_mean(now);
        let sh = self.shared.borrow();
        let me = &sh.stats[self.copy];
        let (reads, stale, batches) = (me.reads, me.stale, me.batches);
        let mut r = InstanceReport::new(&self.name, self.def.metrics());
        if self.def.reports_partition {
            let log = &sh.split;
            r.set("partition_split_writes", log.split[self.copy] as f64)
                .set(
                    "partition_conflicting_writes",
                    log.conflicting[self.copy] as f64,
                )
                .set("partition_lost_writes", log.lost[self.copy] as f64);
        }
        r.set("utilization", busy_mean / f64::from(self.def.workers))
            .set("queue_mean", self.load.waiting_mean(now))
            .set("queue_max", self.load.waiting_max() as f64)
            .set("arrived", self.arrived as f64)
            .set("dropped", self.dropped as f64)
            .set("drop_share", share(self.dropped, self.arrived))
            .set("throughput_per_s", per_s(self.served))
            .set(
                "wait_mean_ms",
                share_f(self.waits.sum_ns() as f64, self.started) / 1e6,
            )
            .set("reads", me.reads as f64)
            .set("writes", self.writes as f64)
            .set("stale_reads", me.stale as f64)
            .set("stale_share", share(me.stale, reads))
            .set("versions_behind_mean", share(me.behind_sum, reads))
            .set(
                "staleness_mean_ms",
                share_f(me.staleness.sum_ns() as f64, stale) / 1e6,
            )
            .set("redirected", self.redirected as f64)
            .set("quorum_subreads", self.subreads as f64)
            .set("batches", me.batches as f64)
            .set("batch_size_mean", share(me.batched, batches))
            .set("commit_utilization", self.committer.mean(now))
            .set("keys_written", sh.keys_written() as f64);
        if self.def.failover.is_some() {
            r.set("failovers", sh.failover.failovers as f64)
                .set("lost_writes", sh.failover.lost_writes as f64)
                .set("primary", if self.is_primary() { 1.0 } else { 0.0 });
        }
        let used = me.behind.iter().rposition(|n| *n > 0).map_or(0, |i| i + 1);
        let behind = me.behind[..used].iter().map(|n| share(*n, reads)).collect();
        r.set_distribution("versions_behind", behind);
        let by_class = (0..self.def.classes)
            .map(|c| share(me.stale_by_class[c], me.reads_by_class[c]))
            .collect();
        r.set_distribution("stale_share_by_class", by_class);
        let reads_by_class = me.reads_by_class.iter().map(|n| *n as f64).collect();
        r.set_distribution("reads_by_class", reads_by_class);
        let stale_by_class = me.stale_by_class.iter().map(|n| *n as f64).collect();
        r.set_distribution("stale_reads_by_class", stale_by_class);
        let behind_by_class = (0..self.def.classes)
            .map(|c| share(me.behind_sum_by_class[c], me.reads_by_class[c]))
            .collect();
        r.set_distribution("versions_behind_mean_by_class", behind_by_class);
        let ages = &me.staleness_by_class;
        let mean_by_class = ages
            .iter()
            .map(|h| share_f(h.sum_ns() as f64, h.count()) / 1e6)
            .collect();
        r.set_distribution("staleness_mean_ms_by_class", mean_by_class);
        let p99_by_class = ages
            .iter()
            .map(|h| {
                if h.count() == 0 {
                    0.0
                } else {
                    h.quantile_ns(0.99) / 1e6
                }
            })
            .collect();
        r.set_distribution("staleness_p99_ms_by_class", p99_by_class);
        let mut waits = self.waits.clone();
        waits.record_zeros(self.started - self.waits.count());
        r.set_histogram("wait", waits);
        r.set_histogram("staleness", me.staleness.clone());
        r
    }
}

/// `x / n`, or 0 when `n` is 0.
fn share_f(x: f64, n: u64) -> f64 {
    if n > 0 { x / n as f64 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::Kind;
    use crate::components::database::{Balance, DatabaseDef, Reads};
    use crate::distributions::Distribution;
    use crate::engine::{Group, NoClients, RunOptions, Simulation, Topology};

    /// (when in ms, op, version) of each reply the probe got.
    type Log = Rc<RefCell<Vec<(u64, Op, u32)>>>;

    /// A caller that sends, at given times, one call each to the database (group 1) about
    /// key 5, and logs the version each reply carries.
    struct Probe {
        plan: Vec<(u64, Op)>,
        log: Log,
    }

    impl Component for Probe {
        fn start(&mut self, ctx: &mut Ctx) {
            for (i, (ms, _)) in self.plan.iter().enumerate() {
                ctx.timer(0, SimDuration(ms * 1_000_000), 0, i as u32);
            }
        }
        fn on_arrive(&mut self, _: CallId, _: &mut Ctx) {}
        fn on_reply(&mut self, _: CallId, child: &Call, _: bool, ctx: &mut Ctx) {
            let ms = ctx.now().0 / 1_000_000;
            self.log
                .borrow_mut()
                .push((ms, Op::of(child.op), child.version));
        }
        fn on_timer(&mut self, _: u32, data: u32, ctx: &mut Ctx) {
            let parent = ctx.calls.insert(Call {
                key: 5,
                instance: 0,
                ..Call::default()
            });
            ctx.call_group(0, parent, 1, self.plan[data as usize].1.code());
        }
        fn restart_stats(&mut self, _: SimTime) {}
        fn report(&self, _: SimTime) -> InstanceReport {
            InstanceReport::new("probe", &[])
        }
    }

    /// A database of 3 copies whose writes reach the others after exactly 100 ms, with
    /// instant service; `reads` and the quorum's `r`, `w`.
    fn def(reads: Reads, r: u32, w: u32) -> Arc<DatabaseDef> {
        Arc::new(DatabaseDef {
            workers: 4,
            queue_capacity: None,
            read_time: Distribution::constant_ns(0.0),
            write_time: Distribution::constant_ns(0.0),
            copies: 3,
            reads,
            balance: Balance::RoundRobin,
            lag: Distribution::constant_ns(100e6),
            wait_for: w - 1,
            quorum_r: r,
            read_your_writes: None,
            group_commit: None,
            failover: None,
            partition_mode: PartitionMode::Consistent,
            reports_partition: false,
            classes: 1,
            links: Vec::new(),
        })
    }

    /// The replies a probe gets from `db` for calls made at `plan` (ms, op).
    fn replies(db: Arc<DatabaseDef>, plan: &[(u64, Op)]) -> Vec<(u64, Op, u32)> {
        let log = Log::default();
        let mut instances: Vec<Box<dyn Component>> = vec![Box::new(Probe {
            plan: plan.to_vec(),
            log: Rc::clone(&log),
        })];
        let rngs = (0..3).map(|i| crate::random::stream(1, &format!("db[{i}]")));
        let names = (0..3).map(|i| db.instance_name("db", i, 3)).collect();
        instances.extend(Arc::clone(&db).instantiate_all(1, names, rngs.collect()));
        let picker = db.picker(1, 3, crate::random::stream(1, "db#pick"));
        let topology = Topology {
            instances,
            groups: vec![
                Group::new("probe".into(), vec![0]),
                Group::new("db".into(), vec![1, 2, 3]).with_picker(picker),
            ],
            clients: NoClients,
            stats: Vec::new(),
            network: None,
        };
        let options = RunOptions {
            duration: SimDuration(1_000_000_000),
            warmup: SimDuration(0),
            max_in_flight: u64::MAX,
        };
        let mut sim = Simulation::new(topology, options);
        sim.run().unwrap();
        log.take()
    }

    #[test]
    fn replies_carry_the_version_written_or_read() {
        use Op::{Read, Write};
        let plan = [(0, Write), (1, Write), (2, Read), (3, Read), (200, Read)];
        let got = replies(def(Reads::Replicas, 1, 1), &plan);
        // Writes answer at once with versions 1 and 2; the replicas have neither before
        // the lag has passed, and the newest after.
        assert_eq!(
            got,
            [
                (0, Write, 1),
                (1, Write, 2),
                (2, Read, 0),
                (3, Read, 0),
                (200, Read, 2)
            ]
        );
        let got = replies(def(Reads::Primary, 1, 1), &plan);
        assert_eq!(got[2], (2, Read, 2), "the primary has every write");
    }

    #[test]
    fn a_quorum_write_waits_for_w_copies_and_a_read_takes_the_newest_of_r() {
        use Op::{Read, Write};
        // Round robin: the write's coordinator is copy 0, the reads' copies 1 and 2.
        let plan = [(0, Write), (1, Read), (2, Read)];
        // r = 1: copies 1 and 2 answer alone, before the write reached them.
        let got = replies(def(Reads::Quorum, 1, 1), &plan);
        assert_eq!(got, [(0, Write, 1), (1, Read, 0), (2, Read, 0)]);
        // r = 3: every read asks the write's coordinator too, and its version wins.
        let got = replies(def(Reads::Quorum, 3, 1), &plan);
        assert_eq!(got, [(0, Write, 1), (1, Read, 1), (2, Read, 1)]);
        // w = 2: the write answers when one more copy has it, 100 ms later.
        let got = replies(def(Reads::Quorum, 1, 2), &plan);
        assert_eq!(got[2], (100, Write, 1));
    }
}
