//! Tests of what the engine offers components beyond calls: the start hook, instance
//! state and live group members, stale timers, and the calls an instance holds.

use super::*;
use crate::metrics::InstanceReport;
use crate::time::{SimDuration, SimTime};
use std::cell::RefCell;
use std::rc::Rc;

/// What a probe saw: (instance, what, when in ns).
type Log = Rc<RefCell<Vec<(InstanceId, &'static str, u64)>>>;

/// A component that sets a timer from its start hook and logs what happens to it.
struct Probe {
    id: InstanceId,
    delay: SimDuration,
    log: Log,
}

impl Component for Probe {
    fn start(&mut self, ctx: &mut Ctx) {
        self.log.borrow_mut().push((self.id, "start", ctx.now().0));
        ctx.timer(self.id, self.delay, 7, self.id);
    }
    fn on_arrive(&mut self, _: CallId, _: &mut Ctx) {}
    fn on_reply(&mut self, _: CallId, _: &Call, _: bool, _: &mut Ctx) {}
    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        assert_eq!((tag, data), (7, self.id));
        self.log.borrow_mut().push((self.id, "timer", ctx.now().0));
    }
    fn restart_stats(&mut self, _: SimTime) {}
    fn report(&self, _: SimTime) -> InstanceReport {
        InstanceReport::new("probe", &[])
    }
}

/// Probes in one group, instance `i` with a timer `delays_ms[i]` after its start; a run of
/// 100 ms.
fn probes(delays_ms: &[u64]) -> (Simulation<NoClients>, Log) {
    let log = Log::default();
    let n = delays_ms.len() as u32;
    let instances = (0..n)
        .map(|id| {
            Box::new(Probe {
                id,
                delay: SimDuration(delays_ms[id as usize] * MS),
                log: Rc::clone(&log),
            }) as Box<dyn Component>
        })
        .collect();
    let topology = Topology {
        instances,
        groups: vec![Group::new("p".into(), (0..n).collect())],
        clients: NoClients,
        stats: Vec::new(),
        network: None,
    };
    let options = RunOptions {
        duration: SimDuration(100_000_000),
        warmup: SimDuration(0),
        max_in_flight: u64::MAX,
    };
    (Simulation::new(topology, options), log)
}

const MS: u64 = 1_000_000;

#[test]
fn the_start_hook_runs_once_per_instance_before_the_first_event() {
    let (mut sim, log) = probes(&[10, 10, 10]);
    assert_eq!(
        *log.borrow(),
        vec![(0, "start", 0), (1, "start", 0), (2, "start", 0)]
    );
    sim.run().unwrap();
    let fired: Vec<_> = log
        .borrow()
        .iter()
        .filter(|e| e.1 == "timer")
        .copied()
        .collect();
    assert_eq!(
        fired,
        vec![
            (0, "timer", 10 * MS),
            (1, "timer", 10 * MS),
            (2, "timer", 10 * MS)
        ]
    );
}

#[test]
fn a_timer_set_before_its_instance_restarted_is_dropped() {
    let (mut sim, log) = probes(&[3, 10, 12]);
    sim.advance_to(SimTime(4 * MS));
    // Instance 1 restarts at 3 ms (the last event so far): its timer due at 10 ms is
    // stale; its start hook sets a new one, due at 13 ms. The others are untouched.
    sim.restart(1);
    sim.run().unwrap();
    let after: Vec<_> = log.borrow()[3..].to_vec();
    assert_eq!(
        after,
        vec![
            (0, "timer", 3 * MS),
            (1, "start", 3 * MS),
            (2, "timer", 12 * MS),
            (1, "timer", 13 * MS)
        ]
    );
}

#[test]
fn a_restart_makes_timers_stale_however_often_it_happens() {
    let (mut sim, log) = probes(&[10]);
    // Many restarts at one instant: only the last incarnation's timer fires.
    for _ in 0..1000 {
        sim.restart(0);
    }
    sim.run().unwrap();
    let fired = log.borrow().iter().filter(|e| e.1 == "timer").count();
    assert_eq!(fired, 1);
}

#[test]
fn a_group_picks_round_robin_over_its_live_members_only() {
    let mut g = Group::new("g".into(), vec![3, 4, 5]);
    let picks = |g: &mut Group, n| (0..n).map(|_| g.pick()).collect::<Vec<_>>();
    assert_eq!(picks(&mut g, 4), [3, 4, 5, 3].map(Some));
    let mut up = vec![true; 6];
    up[4] = false;
    g.refresh(&up);
    assert_eq!(g.live(), [3, 5]);
    assert_eq!(g.members(), [3, 4, 5]);
    assert_eq!(picks(&mut g, 3), [5, 3, 5].map(Some));
    up[3] = false;
    up[5] = false;
    g.refresh(&up);
    assert_eq!(g.pick(), None);
    up[4] = true;
    g.refresh(&up);
    assert_eq!(picks(&mut g, 2), [4, 4].map(Some));
}

#[test]
fn marking_an_instance_down_changes_its_groups_live_members() {
    let (mut sim, _) = probes(&[10, 10, 10]);
    let before = sim.context().membership();
    sim.set_up(1, false);
    let ctx = sim.context();
    assert!(!ctx.is_up(1) && ctx.is_up(0));
    assert_eq!(ctx.groups[0].live(), [0, 2]);
    assert_ne!(ctx.membership(), before);
    // Marking it down again changes nothing.
    let now = sim.context().membership();
    sim.set_up(1, false);
    assert_eq!(sim.context().membership(), now);
    sim.set_up(1, true);
    assert_eq!(sim.context().groups[0].live(), [0, 1, 2]);
}

/// Writes (op 2) to the first member when it is live, everything else to the last live one.
#[derive(Debug)]
struct WritesFirst {
    primary: InstanceId,
}

impl Pick for WritesFirst {
    fn pick(
        &mut self,
        _from: InstanceId,
        op: u8,
        key: u64,
        live: &[InstanceId],
    ) -> Option<InstanceId> {
        assert_eq!(key, 42);
        if op == 2 {
            live.contains(&self.primary).then_some(self.primary)
        } else {
            live.last().copied()
        }
    }
}

#[test]
fn a_group_with_a_picker_routes_by_op_over_its_live_members() {
    let mut g = Group::new("db".into(), vec![3, 4, 5])
        .with_picker(Some(Box::new(WritesFirst { primary: 3 })));
    assert_eq!(g.pick_for(CLIENT, 2, 42), Some(3));
    assert_eq!(g.pick_for(CLIENT, 1, 42), Some(5));
    let mut up = vec![true; 6];
    up[3] = false;
    up[5] = false;
    g.refresh(&up);
    assert_eq!(
        g.pick_for(CLIENT, 2, 42),
        None,
        "no live primary: a write is unavailable"
    );
    assert_eq!(g.pick_for(CLIENT, 1, 42), Some(4));
    // Without a picker, pick_for takes the live members in turn.
    let mut plain = Group::new("s".into(), vec![7, 8]);
    assert_eq!(
        [plain.pick_for(CLIENT, 2, 42), plain.pick_for(CLIENT, 2, 42)],
        [Some(7), Some(8)]
    );
}
