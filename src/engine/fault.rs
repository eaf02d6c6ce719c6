//! Faults as the engine carries them out: an instance crashes and recovers, or runs
//! degraded (slower, failing a share of its requests, with fewer workers), or a cache
//! forgets what it holds. Which fault happens when is decided outside the engine, by the
//! [`Faults`] plugged into a run (`crate::faults`), through [`Event::Fault`] events in the
//! calendar; the engine knows only instances.
//!
//! A crashed instance's component is swapped for a [`Down`] stand-in that answers every
//! call as the crash's [`CrashMode`] says, so a model without faults runs exactly the
//! instructions it ran before: nothing on the path of a call tests whether an instance is up.

use super::calendar::Calendar;
use super::call::{Call, Outcome};
use super::context::{Component, Ctx};
use super::control::{Gauges, ScalingHistory};
use super::event::{CallId, Event, InstanceId};
use crate::metrics::{ErrorCause, InstanceReport};
use crate::time::SimTime;

/// How a crashed instance answers the calls sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// As a closed port: every call fails at once ([`ErrorCause::Refused`]); the calls it
    /// held fail with [`ErrorCause::Crashed`].
    Refused,
    /// As a dead host: calls, and those it held, get no answer; their callers wait until
    /// the client's timeout, which then frees them.
    BlackHole,
}

/// How much worse than normal an instance runs (a gray failure). The default is normal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Service times are multiplied by this (1 is normal).
    pub slow: f64,
    /// Share of requests that fail at once with [`ErrorCause::Injected`] (0 is normal).
    pub error_share: f64,
    /// At most this many workers run requests (`None` is normal).
    pub workers: Option<u32>,
}

impl Default for Degradation {
    fn default() -> Self {
        Degradation {
            slow: 1.0,
            error_share: 0.0,
            workers: None,
        }
    }
}

impl Degradation {
    /// True when it changes nothing.
    pub fn is_normal(&self) -> bool {
        *self == Degradation::default()
    }
}

/// What a fault does to an instance now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAction {
    /// The instance crashes. With `leaves_group`, its group's live members drop it at once
    /// (a cluster that knows its members' state); otherwise callers keep sending to it.
    Crash {
        /// The instance.
        instance: InstanceId,
        /// How it answers while down.
        mode: CrashMode,
        /// Its group stops sending it calls.
        leaves_group: bool,
    },
    /// The instance comes back, empty, and rejoins its group if it left it.
    Recover {
        /// The instance.
        instance: InstanceId,
        /// It left its group when it crashed.
        leaves_group: bool,
    },
    /// The instance runs with `degradation` from now on.
    Degrade {
        /// The instance.
        instance: InstanceId,
        /// Its new state.
        degradation: Degradation,
    },
    /// The instance forgets the keys it holds (a cache flush).
    Flush {
        /// The instance.
        instance: InstanceId,
    },
    /// A partition of the network (the run's network knows its groups by fault number)
    /// begins or ends; every instance hears of it ([`Component::on_network_change`]).
    Partition {
        /// The fault's number.
        fault: u32,
        /// True when it begins.
        on: bool,
    },
}

/// One fault on one instance, from its start to its end (`None` while it lasts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultWindow {
    /// Index of the fault (the decider's own numbering).
    pub fault: u32,
    /// The instance.
    pub instance: InstanceId,
    /// When it began.
    pub start: SimTime,
    /// When it ended.
    pub end: Option<SimTime>,
}

/// Decides when faults happen: schedules [`Event::Fault`] events and, when one fires,
/// says what happens to which instance.
pub trait Faults: std::fmt::Debug {
    /// The run begins: schedule the first fault events (none after `horizon`).
    fn start(&mut self, calendar: &mut Calendar, horizon: SimTime);
    /// The event (`fault`, `instance`, `begin`) fires now: push what happens onto
    /// `actions` and schedule what comes next.
    fn fire(
        &mut self,
        fault: u32,
        instance: InstanceId,
        begin: bool,
        calendar: &mut Calendar,
        horizon: SimTime,
        actions: &mut Vec<FaultAction>,
    );
    /// Every fault window so far, in the order they began.
    fn windows(&self) -> &[FaultWindow];
}

/// What stands in a crashed instance's place: answers calls as its mode says, drops the
/// replies to calls the instance made before it crashed, and keeps the instance itself
/// (its statistics, to report; its state, emptied, to come back with).
pub(super) struct Down {
    pub(super) mode: CrashMode,
    pub(super) inner: Box<dyn Component>,
}

impl Component for Down {
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        refuse_or_park(self.mode, call, ctx);
    }
    fn on_reply(&mut self, _: CallId, _: &Call, _: bool, _: &mut Ctx) {}
    fn on_timer(&mut self, _: u32, _: u32, _: &mut Ctx) {}
    fn restart_stats(&mut self, now: SimTime) {
        self.inner.restart_stats(now);
    }
    fn report(&self, now: SimTime) -> InstanceReport {
        self.inner.report(now)
    }
    fn set_degradation(&mut self, d: Degradation, ctx: &mut Ctx) {
        self.inner.set_degradation(d, ctx);
    }
    fn on_flush(&mut self, ctx: &mut Ctx) {
        self.inner.on_flush(ctx);
    }
    fn on_network_change(&mut self, ctx: &mut Ctx) {
        self.inner.on_network_change(ctx);
    }
    fn gauges(&self, now: SimTime) -> Gauges {
        self.inner.gauges(now)
    }
    fn scaling(&self) -> Option<&ScalingHistory> {
        self.inner.scaling()
    }
    fn partition_sides(&self) -> Vec<crate::metrics::sides::SideRecord> {
        self.inner.partition_sides()
    }
    fn take_inner(&mut self) -> Option<Box<dyn Component>> {
        Some(std::mem::replace(&mut self.inner, Box::new(Vacant)))
    }
    fn is_stand_in(&self) -> bool {
        true
    }
}

/// A call reaches an instance that is down.
fn refuse_or_park(mode: CrashMode, call: CallId, ctx: &mut Ctx) {
    match mode {
        CrashMode::Refused => ctx.reply(call, Outcome::Failed(ErrorCause::Refused)),
        CrashMode::BlackHole => ctx.park(call),
    }
}

/// Holds an instance's place for a moment while it is swapped.
pub(super) struct Vacant;

impl Component for Vacant {
    fn on_arrive(&mut self, _: CallId, _: &mut Ctx) {
        unreachable!("a call delivered to an instance being swapped")
    }
    fn on_reply(&mut self, _: CallId, _: &Call, _: bool, _: &mut Ctx) {}
    fn on_timer(&mut self, _: u32, _: u32, _: &mut Ctx) {}
    fn restart_stats(&mut self, _: SimTime) {}
    fn report(&self, _: SimTime) -> InstanceReport {
        unreachable!("a report of an instance being swapped")
    }
}

/// Instance `instance` crashes now: the calls on their way to it meet it down, the calls it
/// held fail back to their callers (refused) or are never answered (black hole), its timers
/// are dropped, its state is emptied ([`Component::on_crash`]) and [`Down`] takes its place.
pub(super) fn crash(
    ctx: &mut Ctx,
    components: &mut [Box<dyn Component>],
    instance: InstanceId,
    mode: CrashMode,
) {
    let i = instance as usize;
    if components[i].is_stand_in() {
        return; // already down
    }
    let held = ctx.calls_at(instance);
    let mut arriving = Vec::new();
    ctx.calendar.retain(|e| match e {
        Event::Arrive { to, call } if to == instance => {
            arriving.push(call);
            false
        }
        Event::Timer { to, .. } | Event::Control { to, .. } => to != instance,
        _ => true,
    });
    arriving.sort_unstable();
    let mut inner = std::mem::replace(&mut components[i], Box::new(Vacant));
    inner.on_crash(ctx);
    for call in held {
        if ctx.call(call).parent == super::DETACHED {
            // A detached root (a queued message) is its holder's: its on_crash decided
            // what the crashed instance keeps.
            continue;
        }
        // Replies to the calls it made for this one are no longer awaited.
        let c = ctx.call_mut(call);
        c.round = c.round.wrapping_add(1);
        if arriving.binary_search(&call).is_ok() {
            refuse_or_park(mode, call, ctx);
        } else {
            match mode {
                CrashMode::Refused => ctx.reply(call, Outcome::Failed(ErrorCause::Crashed)),
                CrashMode::BlackHole => ctx.park(call),
            }
        }
    }
    components[i] = Box::new(Down { mode, inner });
    ctx.set_crashed(instance, Some(mode));
}

/// Instance `instance` comes back (if it is down): empty, started again.
pub(super) fn recover(ctx: &mut Ctx, components: &mut [Box<dyn Component>], instance: InstanceId) {
    let i = instance as usize;
    let Some(mut inner) = components[i].take_inner() else {
        return;
    };
    ctx.set_crashed(instance, None);
    ctx.drop_timers(instance);
    ctx.release_orphans();
    inner.start(ctx);
    components[i] = inner;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_degradation_is_normal() {
        assert!(Degradation::default().is_normal());
        let slow = Degradation {
            slow: 2.0,
            ..Degradation::default()
        };
        assert!(!slow.is_normal());
    }
}
