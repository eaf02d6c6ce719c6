//! One replication: builds the instances of a model, runs the event loop to the end of the
//! run, and hands back what was measured.

use super::calendar::Calendar;
use super::call::Slab;
use super::context::{Component, Ctx, Group, Totals};
use super::event::{CallId, Event, InstanceId};
use crate::metrics::InstanceReport;
use crate::model::Model;
use crate::time::SimTime;
use crate::workload::{Arrivals, Workload};
use std::sync::Arc;

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

/// Settings of one run that are not part of the model.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Seed of every random stream of the run.
    pub seed: u64,
}

/// A model being simulated.
pub struct Simulation {
    ctx: Ctx,
    components: Vec<Box<dyn Component>>,
    warmup_end: SimTime,
    end: SimTime,
    events: u64,
    finished: bool,
}

impl Simulation {
    /// Builds every instance and workload of `model` and schedules the first events.
    pub fn new(model: &Model, options: RunOptions) -> Self {
        let seed = options.seed;
        let mut components: Vec<Box<dyn Component>> = Vec::new();
        let mut groups = Vec::new();
        for def in &model.components {
            let ids: Vec<u32> = (0..def.replicas).map(|i| def.first_instance + i).collect();
            for index in 0..def.replicas {
                components.push(def.instantiate(index, seed));
            }
            groups.push(Group::new(def.name.clone(), ids));
        }
        let classes = model.classes.len();
        let window = model.series_window.0.max(1);
        let windows = (model.duration.0.div_ceil(window)).max(1) as usize;
        let workloads = model
            .workloads
            .iter()
            .map(|w| Workload::new(Arc::clone(w), seed, classes, windows, window))
            .collect();
        let horizon = SimTime(model.duration.0);
        let mut ctx = Ctx {
            calendar: Calendar::new(),
            calls: Slab::new(),
            requests: Vec::new(),
            groups,
            workloads,
            measuring: model.warmup.0 == 0,
            totals: Totals::default(),
            horizon,
            in_flight: 0,
            max_in_flight: model.max_in_flight,
            stopped_at: None,
            stale_timeouts: 0,
            compact_at: super::context::COMPACT_MIN_STALE,
        };
        schedule_first_arrivals(&mut ctx);
        if model.warmup.0 > 0 {
            ctx.calendar
                .schedule(SimTime(model.warmup.0), Event::WarmupEnd);
        }
        Simulation {
            ctx,
            components,
            warmup_end: SimTime(model.warmup.0),
            end: horizon,
            events: 0,
            finished: false,
        }
    }

    /// Runs until the end of the model's duration, or until nothing is left to happen.
    pub fn run(&mut self) -> Result<(), RunError> {
        let horizon = self.ctx.horizon;
        let mut past_horizon = 0;
        self.ctx.calendar.set_stall_limit(STALL_LIMIT);
        while let Some((now, event)) = self.ctx.calendar.pop() {
            if now > horizon {
                past_horizon = 1;
                break;
            }
            self.dispatch(event);
        }
        self.events = self.ctx.calendar.popped() - past_horizon;
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
        } else if past_horizon == 0 && self.ran_out() {
            self.ctx.now()
        } else {
            horizon
        };
        self.end = last.max(self.warmup_end);
        self.finished = true;
        Ok(())
    }

    /// True when no workload will create another request (each reached its `requests`
    /// limit or replayed its whole trace) and no request is left in the system.
    fn ran_out(&self) -> bool {
        let exhausted = |w: &Workload| {
            !w.may_generate()
                || matches!(&w.def.arrivals, Arrivals::Trace(r) if w.generated >= r.len() as u64)
        };
        self.ctx.calls.live() == 0 && self.ctx.workloads.iter().all(exhausted)
    }

    #[inline]
    fn dispatch(&mut self, event: Event) {
        let ctx = &mut self.ctx;
        match event {
            Event::Arrive { to, call } => self.components[to as usize].on_arrive(call, ctx),
            Event::Reply { to, call } => {
                let child = *ctx.calls.get(call);
                ctx.calls.remove(call);
                let current = ctx.is_awaited(&child);
                self.components[to as usize].on_reply(child.parent_call, &child, current, ctx);
            }
            Event::Timer { to, tag, data } => self.components[to as usize].on_timer(tag, data, ctx),
            Event::Generate { workload, user } => {
                if let Some((to, call)) = generate(ctx, workload, user) {
                    self.components[to as usize].on_arrive(call, ctx);
                }
            }
            Event::ClientTimeout {
                request,
                generation,
            } => ctx.client_timeout(request, generation),
            Event::WarmupEnd => {
                let now = ctx.now();
                ctx.measuring = true;
                for w in &mut ctx.workloads {
                    w.stats.clear();
                }
                for c in &mut self.components {
                    c.restart_stats(now);
                }
            }
        }
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

    /// The engine state (workload statistics, totals).
    pub fn context(&self) -> &Ctx {
        &self.ctx
    }

    /// Statistics of every instance, in instance order.
    pub fn instance_reports(&self) -> Vec<InstanceReport> {
        assert!(self.finished, "reports are taken after the run");
        self.components.iter().map(|c| c.report(self.end)).collect()
    }
}

/// Schedules each workload's first request (or, for a closed workload, each user's).
fn schedule_first_arrivals(ctx: &mut Ctx) {
    let horizon = ctx.horizon;
    for (i, w) in ctx.workloads.iter_mut().enumerate() {
        let workload = i as u32;
        if w.def.limit == Some(0) {
            continue;
        }
        match &w.def.arrivals {
            Arrivals::Renewal(_) | Arrivals::Profile(_) => {
                if let Some(t) = w.next_arrival(SimTime::ZERO, horizon)
                    && t <= horizon
                {
                    ctx.calendar
                        .schedule(t, Event::Generate { workload, user: 0 });
                }
            }
            Arrivals::Closed { users, .. } => {
                for user in 0..*users {
                    // Each user thinks first, so users do not all start at once.
                    let t = SimTime::ZERO.after(w.think());
                    ctx.calendar.schedule(t, Event::Generate { workload, user });
                }
            }
            Arrivals::Trace(records) => {
                if let Some(first) = records.first() {
                    ctx.calendar
                        .schedule(first.time, Event::Generate { workload, user: 0 });
                }
            }
        }
    }
}

/// A new request would pass `max_in_flight`: the run stops now, with what it measured.
#[cold]
#[inline(never)]
fn stop_early(ctx: &mut Ctx) {
    ctx.stopped_at = Some(ctx.now());
    ctx.calendar.halt();
}

/// A workload's generate event: schedule the next arrival, then start this request.
/// Returns where its first call goes.
#[inline]
fn generate(ctx: &mut Ctx, workload: u32, user: u32) -> Option<(InstanceId, CallId)> {
    let now = ctx.now();
    let horizon = ctx.horizon;
    if ctx.in_flight >= ctx.max_in_flight {
        stop_early(ctx);
        return None;
    }
    let w = &mut ctx.workloads[workload as usize];
    if !w.may_generate() {
        return None;
    }
    let more = w.def.limit.is_none_or(|l| w.generated + 1 < l);
    let given = match &w.def.arrivals {
        Arrivals::Renewal(_) | Arrivals::Profile(_) => {
            if more
                && let Some(t) = w.next_arrival(now, horizon)
                && t <= horizon
            {
                ctx.calendar
                    .schedule(t, Event::Generate { workload, user: 0 });
            }
            None
        }
        Arrivals::Closed { .. } => None,
        Arrivals::Trace(records) => {
            let i = user as usize;
            if more && let Some(next) = records.get(i + 1) {
                ctx.calendar.schedule(
                    next.time,
                    Event::Generate {
                        workload,
                        user: user + 1,
                    },
                );
            }
            Some((records[i].class, records[i].key))
        }
    };
    let user = match &w.def.arrivals {
        Arrivals::Closed { .. } => user,
        _ => w.take_client(),
    };
    Some(ctx.start_request(workload, user, given))
}
