//! Calls not tied to a client request: *detached roots*. A message in a queue outlives the
//! producer's call (the producer is answered when it is enqueued), so it is a call of its
//! own in the slab, with no client and no [`Request`](super::Request) that waits for it,
//! held by the instance that spawned it (the queue) until that instance frees it.
//!
//! A detached root has `parent` [`DETACHED`] and is its own request (`request` is its own
//! id), so the calls made for it (deliveries to consumers) are ordinary children and their
//! replies come back through the holder's `on_reply`. It is never replied to; it is not
//! counted in the requests in flight or unanswered (the conservation checks count client
//! requests only), but it keeps a run from "running out" while it lives (its work is not
//! done). A crash leaves it to its holder ([`Component::on_crash`](super::Component)
//! decides what a crashed broker keeps); a call of it a black hole swallowed is freed when
//! the holder frees it and an instance recovers (`release_orphans`), and its late reply is
//! not current.

use super::call::{Call, ClientWait, Request};
use super::clients::Clients;
use super::context::Context;
use super::event::{CallId, InstanceId};

/// The parent of a detached root: no instance and no client waits for it.
pub const DETACHED: InstanceId = InstanceId::MAX - 1;

impl<C: Clients + ?Sized> Context<C> {
    /// Starts a detached root held by instance `from`, of class `class`, about `key`, with
    /// operation `op`; returns it. Its holder frees it with [`Context::free`].
    pub fn spawn(&mut self, from: InstanceId, class: u16, key: u64, op: u8) -> CallId {
        let call = self.calls.insert_with(|id| Call {
            request: id,
            class,
            key,
            op,
            parent: DETACHED,
            instance: from,
            ..Call::default()
        });
        let zone = self.zone_of(from);
        self.calls.get_mut(call).zone = zone;
        let slot = call as usize;
        if slot >= self.requests.len() {
            let len = (slot + 1).max(self.requests.len() * 2).max(1024);
            self.requests.resize(len, Request::default());
        }
        // No client waits for it; the entry only answers what components read of a call's
        // request (a balancer hashing its "client").
        self.requests[slot] = Request {
            source: 0,
            user: call,
            created: self.now(),
            client: ClientWait::Answered,
            acts_on_answer: false,
        };
        call
    }

    /// The holder of detached root `call` is done with it (acknowledged, dead-lettered,
    /// dropped): it is freed, and replies still out for it arrive as not current.
    pub fn free(&mut self, call: CallId) {
        debug_assert_eq!(
            self.calls.get(call).parent,
            DETACHED,
            "only a detached root is freed by its holder"
        );
        self.calls.remove(call);
    }

    /// True if `call` is a detached root.
    #[inline]
    pub fn is_detached(&self, call: CallId) -> bool {
        self.calls.get(call).parent == DETACHED
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::metrics::{ErrorCause, InstanceReport};
    use crate::time::{SimDuration, SimTime};
    use std::cell::RefCell;
    use std::rc::Rc;

    const MS: u64 = 1_000_000;
    type Log = Rc<RefCell<Vec<(bool, Outcome, u64)>>>;

    /// Instance 0: spawns one message at start and sends it to instance 1; frees it on a
    /// current reply, or at 20 ms if none came (a visibility timeout).
    struct Holder {
        log: Log,
        root: Option<CallId>,
    }

    impl Component for Holder {
        fn start(&mut self, ctx: &mut Ctx) {
            if self.root.is_none() {
                let m = ctx.spawn(0, 0, 42, 0);
                ctx.call_instance(0, m, 1, 0);
                self.root = Some(m);
                ctx.timer(0, SimDuration(20 * MS), 0, m);
            }
        }
        fn on_arrive(&mut self, _: CallId, _: &mut Ctx) {}
        fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
            self.log
                .borrow_mut()
                .push((current, child.outcome, ctx.now().0 / MS));
            if current {
                ctx.free(parent);
                self.root = None;
            }
        }
        fn on_timer(&mut self, _: u32, data: u32, ctx: &mut Ctx) {
            if self.root == Some(data) {
                let c = ctx.call_mut(data);
                c.round = c.round.wrapping_add(1);
                ctx.free(data);
                self.root = None;
            }
        }
        fn restart_stats(&mut self, _: SimTime) {}
        fn report(&self, _: SimTime) -> InstanceReport {
            InstanceReport::new("holder", &[])
        }
    }

    /// Instance 1: answers every call Ok after 10 ms.
    struct Worker;

    impl Component for Worker {
        fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
            ctx.timer(1, SimDuration(10 * MS), 0, call);
        }
        fn on_reply(&mut self, _: CallId, _: &Call, _: bool, _: &mut Ctx) {}
        fn on_timer(&mut self, _: u32, call: u32, ctx: &mut Ctx) {
            ctx.reply(call, Outcome::Ok);
        }
        fn restart_stats(&mut self, _: SimTime) {}
        fn report(&self, _: SimTime) -> InstanceReport {
            InstanceReport::new("worker", &[])
        }
    }

    fn sim() -> (Simulation<NoClients>, Log) {
        let log = Log::default();
        let topology = Topology {
            instances: vec![
                Box::new(Holder {
                    log: Rc::clone(&log),
                    root: None,
                }),
                Box::new(Worker),
            ],
            groups: vec![
                Group::new("h".into(), vec![0]),
                Group::new("w".into(), vec![1]),
            ],
            clients: NoClients,
            stats: Vec::new(),
            network: None,
        };
        let options = RunOptions {
            duration: SimDuration(100 * MS),
            warmup: SimDuration(0),
            max_in_flight: u64::MAX,
        };
        (Simulation::new(topology, options), log)
    }

    fn crash(sim: &mut Simulation<NoClients>, instance: InstanceId, mode: CrashMode) {
        sim.act(FaultAction::Crash {
            instance,
            mode,
            leaves_group: false,
        });
    }

    #[test]
    fn a_detached_root_is_no_request_and_lives_until_freed() {
        let (mut sim, log) = sim();
        let ctx = sim.context();
        assert_eq!(ctx.calls.live(), 2, "the message and its delivery");
        assert!(ctx.is_detached(0) && !ctx.is_detached(1));
        assert_eq!(
            (ctx.in_flight, ctx.unanswered(), ctx.totals.arrived),
            (0, 0, 0)
        );
        sim.run().unwrap();
        assert_eq!(*log.borrow(), vec![(true, Outcome::Ok, 10)]);
        let ctx = sim.context();
        assert_eq!(
            (ctx.calls.live(), ctx.in_flight, ctx.unanswered()),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_crashed_consumer_fails_the_delivery_back_to_the_holder() {
        let (mut sim, log) = sim();
        sim.advance_to(SimTime(5 * MS));
        crash(&mut sim, 1, CrashMode::Refused);
        sim.run().unwrap();
        let failed = Outcome::Failed(ErrorCause::Crashed);
        // The clock reads the last event's time (the start): the crash happens then.
        assert_eq!(*log.borrow(), vec![(true, failed, 0)]);
        assert_eq!(sim.context().calls.live(), 0);
    }

    #[test]
    fn a_crash_of_the_holder_leaves_the_root_to_it() {
        let (mut sim, log) = sim();
        sim.advance_to(SimTime(5 * MS));
        crash(&mut sim, 0, CrashMode::Refused);
        let ctx = sim.context();
        // Neither failed nor parked: still pending, held by the crashed instance.
        assert_eq!(ctx.call(0).outcome, Outcome::Pending);
        assert!(ctx.is_detached(0) && ctx.calls.is_live(0, 0));
        sim.run().unwrap();
        // The consumer's reply reached the stand-in, which drops it.
        assert!(log.borrow().is_empty());
        assert_eq!(sim.context().calls.live(), 1, "the message is kept");
        assert_eq!(sim.context().unanswered(), 0);
    }

    #[test]
    fn a_delivery_swallowed_by_a_black_hole_is_freed_after_its_root() {
        let (mut sim, log) = sim();
        sim.advance_to(SimTime(5 * MS));
        crash(&mut sim, 1, CrashMode::BlackHole);
        // The holder gives up on its message at 20 ms and frees it; the swallowed delivery
        // fails when the consumer recovers, as a reply no longer awaited.
        sim.advance_to(SimTime(30 * MS));
        assert_eq!(sim.context().calls.live(), 1, "the parked delivery");
        sim.act(FaultAction::Recover {
            instance: 1,
            leaves_group: false,
        });
        sim.run().unwrap();
        let timeout = Outcome::Failed(ErrorCause::Timeout);
        // At the last event's time, the holder's 20 ms timer.
        assert_eq!(*log.borrow(), vec![(false, timeout, 20)]);
        assert_eq!(sim.context().calls.live(), 0);
    }
}
