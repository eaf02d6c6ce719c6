//! Controllers: instances that act on other instances (an autoscaler), not on calls. A
//! controller sets its own [`Event::Control`] timers ([`Context::control_timer`]); when one
//! fires, the engine lends it a read-only look at every instance's [`Gauges`] and carries
//! out the [`FaultAction`]s it asks for (an instance failed out, or brought back), as it
//! carries out a fault's. Bringing an instance into its group or taking it out is the
//! live membership ([`Context::set_up`]) that health checks and faults use.
//!
//! A model without a controller schedules no control event and reads no gauge: its run
//! executes the instructions it did before.

use super::clients::Clients;
use super::context::{Component, Context, Ctx};
use super::event::{Event, InstanceId};
use super::fault::{FaultAction, Vacant};
use crate::time::{SimDuration, SimTime};

/// What a controller can read of an instance now, without changing it. Counters run from
/// `since` (the instance's statistics restart at the end of the warm-up).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    /// Start of the instance's counters.
    pub since: SimTime,
    /// Integral of busy workers since `since`, worker-nanoseconds.
    pub busy_ns: f64,
    /// Workers that may run requests now (0 for a kind without workers).
    pub workers: u32,
    /// Workers busy now.
    pub busy: u64,
    /// Requests (or messages) waiting now.
    pub waiting: u64,
    /// Requests that arrived since `since`.
    pub arrived: u64,
}

/// One change a controller made to the instances it controls.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingAction {
    /// When.
    pub at: SimTime,
    /// Instances wanted before (provisioning or serving).
    pub from: u32,
    /// Instances wanted after.
    pub to: u32,
    /// Why, with the metric's value.
    pub reason: String,
}

/// What a controller did over a run: the number of instances it ran at each change, and its
/// actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalingHistory {
    /// Component (group) id of the instances it controls.
    pub target: u32,
    /// (time, instances running, instances serving) at the start of the run and at each
    /// change, in time order. Running counts those being provisioned and those draining
    /// (they are paid for); serving counts those taking new work.
    pub counts: Vec<(SimTime, u32, u32)>,
    /// Its actions, in time order.
    pub actions: Vec<ScalingAction>,
}

impl ScalingHistory {
    /// Records the counts at `now` (replacing a record made at the same time).
    pub fn record(&mut self, now: SimTime, running: u32, serving: u32) {
        if let Some(last) = self.counts.last_mut() {
            if last.0 == now {
                (last.1, last.2) = (running, serving);
                return;
            }
            if (last.1, last.2) == (running, serving) {
                return;
            }
        }
        self.counts.push((now, running, serving));
    }

    /// Integral of the running instances (`serving`: of those serving) from `from` to
    /// `to`, in instance-nanoseconds.
    pub fn integral(&self, from: SimTime, to: SimTime, serving: bool) -> f64 {
        let mut area = 0.0;
        for (i, &(t, running, serves)) in self.counts.iter().enumerate() {
            let next = self.counts.get(i + 1).map_or(to, |c| c.0);
            let (a, b) = (t.max(from), next.min(to));
            if b > a {
                let n = if serving { serves } else { running };
                area += f64::from(n) * (b.0 - a.0) as f64;
            }
        }
        area
    }
}

impl<C: Clients + ?Sized> Context<C> {
    /// Sets a control timer for controller instance `to`, `delay` from now
    /// ([`Component::on_control`] handles it).
    pub fn control_timer(&mut self, to: InstanceId, delay: SimDuration, tag: u32, data: u32) {
        let at = self.now().after(delay);
        self.calendar.schedule(at, Event::Control { to, tag, data });
    }
}

/// A control timer of instance `to` fires: it reads the other instances' gauges and pushes
/// onto `actions` what the engine is to do.
pub(super) fn fire(
    ctx: &mut Ctx,
    components: &mut [Box<dyn Component>],
    to: InstanceId,
    tag: u32,
    data: u32,
    actions: &mut Vec<FaultAction>,
) {
    let mut me = std::mem::replace(&mut components[to as usize], Box::new(Vacant));
    let now = ctx.now();
    {
        let others: &[Box<dyn Component>] = components;
        let gauges = |i: InstanceId| others[i as usize].gauges(now);
        me.on_control(tag, data, ctx, &gauges, actions);
    }
    components[to as usize] = me;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integral_adds_each_count_over_its_time_inside_the_window() {
        let mut h = ScalingHistory::default();
        h.record(SimTime(0), 2, 2);
        h.record(SimTime(10), 3, 2);
        h.record(SimTime(10), 4, 2); // replaces the record at the same time
        h.record(SimTime(20), 4, 4);
        h.record(SimTime(25), 4, 4); // no change: not recorded
        h.record(SimTime(30), 1, 1);
        assert_eq!(h.counts.len(), 4);
        assert_eq!(
            h.integral(SimTime(0), SimTime(40), false),
            20.0 + 40.0 + 40.0 + 10.0
        );
        assert_eq!(
            h.integral(SimTime(0), SimTime(40), true),
            20.0 + 20.0 + 40.0 + 10.0
        );
        assert_eq!(
            h.integral(SimTime(15), SimTime(35), false),
            20.0 + 40.0 + 5.0
        );
    }
}
