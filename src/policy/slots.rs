//! Bulkheads and connection pools: a caller instance may have at most `size` attempts out
//! to one callee (each holds a slot: a bulkhead's permit, a pool's connection); a call
//! that finds them all taken waits first in, first out, and a slot given back goes straight
//! to the next waiter. A bulkhead's queue is bounded (one more call fails at once with
//! `bulkhead_full`); a pool's is not, but a waiter can give up at its acquire timeout
//! (`pool_timeout`). The guard (`engine::guard`) keeps one [`Slots`] per caller instance
//! and callee, built with the run; the queue's memory is reused from call to call.

use crate::metrics::ErrorCause;
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Which of the two an edge has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotsKind {
    /// `bulkhead`: a cap on concurrent attempts with a small queue.
    Bulkhead,
    /// `pool`: connections, a FIFO wait with an acquire timeout.
    Pool,
}

/// A validated `bulkhead` or `pool` block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotsPolicy {
    /// Which one.
    pub kind: SlotsKind,
    /// Slots per caller instance (at least 1).
    pub size: u32,
    /// Waiters allowed (`None`: any number).
    pub queue: Option<u32>,
    /// A waiter fails after this long (`None`: it waits as long as it takes).
    pub acquire_timeout: Option<SimDuration>,
}

impl SlotsPolicy {
    /// How a call fails when the queue is full.
    pub fn full_cause(&self) -> ErrorCause {
        ErrorCause::BulkheadFull
    }
    /// How a call fails at its acquire timeout.
    pub fn timeout_cause(&self) -> ErrorCause {
        ErrorCause::PoolTimeout
    }
}

/// A call waiting for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The logical call.
    pub call: u32,
    /// Its generation.
    pub generation: u32,
    /// When it began to wait.
    pub since: SimTime,
}

/// What [`Slots::acquire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// A slot was free: the caller holds it.
    Now,
    /// Queued: a slot will be handed over by [`Slots::release`].
    Wait,
    /// No slot and no room to wait.
    Full,
}

/// One caller instance's slots to one callee.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    in_use: u32,
    /// Waiters still waiting (the queue may also hold some that gave up).
    waiting: u32,
    queue: VecDeque<Waiter>,
}

impl Slots {
    /// Takes a slot for `w`, or queues it, or refuses it.
    pub fn acquire(&mut self, p: &SlotsPolicy, w: Waiter) -> Acquire {
        if self.in_use < p.size {
            self.in_use += 1;
            Acquire::Now
        } else if p.queue.is_none_or(|q| self.waiting < q) {
            self.queue.push_back(w);
            self.waiting += 1;
            Acquire::Wait
        } else {
            Acquire::Full
        }
    }
    /// Takes a slot if one is free, never waiting (a hedge's copy); true when it did.
    pub fn try_acquire(&mut self, p: &SlotsPolicy) -> bool {
        let free = self.in_use < p.size;
        self.in_use += u32::from(free);
        free
    }
    /// A queued waiter gave up; its entry is skipped when the queue reaches it.
    pub fn left(&mut self) {
        self.waiting -= 1;
    }
    /// A slot is given back: it goes to the first queued waiter that `live` says still
    /// waits (returned; the slot stays taken), else it is free again.
    pub fn release(&mut self, mut live: impl FnMut(&Waiter) -> bool) -> Option<Waiter> {
        while let Some(w) = self.queue.pop_front() {
            if live(&w) {
                self.waiting -= 1;
                return Some(w);
            }
        }
        self.in_use -= 1;
        None
    }
    /// Slots taken now.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }
    /// Calls waiting now.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }
}

/// The time integral of the slots in use on one edge (all caller instances), counted from
/// the end of the warm-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    level: u64,
    area: u128,
    last: SimTime,
    from: SimTime,
}

impl Usage {
    /// Counted from `from` (the measurement window's start).
    pub fn new(from: SimTime) -> Self {
        Usage {
            from,
            ..Usage::default()
        }
    }
    /// The level goes up (`up`) or down by one at `now`.
    #[inline]
    pub fn step(&mut self, now: SimTime, up: bool) {
        let start = self.last.max(self.from);
        if now > start {
            self.area += u128::from(self.level) * u128::from(now.0 - start.0);
        }
        self.last = now;
        if up {
            self.level += 1;
        } else {
            self.level -= 1;
        }
    }
    /// Mean level over the window up to `end`.
    pub fn mean(&self, end: SimTime) -> f64 {
        let start = self.last.max(self.from);
        let area = self.area + u128::from(self.level) * u128::from(end.0.saturating_sub(start.0));
        let span = end.0.saturating_sub(self.from.0);
        if span == 0 {
            self.level as f64
        } else {
            area as f64 / span as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(call: u32) -> Waiter {
        Waiter {
            call,
            generation: 0,
            since: SimTime(0),
        }
    }

    #[test]
    fn a_bulkhead_queues_up_to_its_queue_then_refuses() {
        let p = SlotsPolicy {
            kind: SlotsKind::Bulkhead,
            size: 2,
            queue: Some(1),
            acquire_timeout: None,
        };
        let mut s = Slots::default();
        assert_eq!(s.acquire(&p, w(1)), Acquire::Now);
        assert_eq!(s.acquire(&p, w(2)), Acquire::Now);
        assert_eq!(s.acquire(&p, w(3)), Acquire::Wait);
        assert_eq!(s.acquire(&p, w(4)), Acquire::Full);
        // The slot goes to the waiter, not back to the free ones.
        assert_eq!(s.release(|_| true), Some(w(3)));
        assert_eq!(s.in_use(), 2);
        assert_eq!(s.release(|_| true), None);
        assert_eq!(s.in_use(), 1);
    }

    #[test]
    fn a_pool_hands_slots_first_in_first_out_skipping_who_gave_up() {
        let p = SlotsPolicy {
            kind: SlotsKind::Pool,
            size: 1,
            queue: None,
            acquire_timeout: Some(SimDuration(5)),
        };
        let mut s = Slots::default();
        assert_eq!(s.acquire(&p, w(1)), Acquire::Now);
        for c in 2..6 {
            assert_eq!(s.acquire(&p, w(c)), Acquire::Wait);
        }
        s.left(); // 2 gave up
        assert_eq!(s.waiting(), 3);
        assert_eq!(s.release(|x| x.call != 2), Some(w(3)));
        assert_eq!(s.release(|x| x.call != 2), Some(w(4)));
        assert_eq!(s.release(|x| x.call != 2), Some(w(5)));
        assert_eq!(s.release(|_| true), None);
        assert_eq!((s.in_use(), s.waiting()), (0, 0));
    }

    #[test]
    fn usage_counts_from_the_window_start() {
        let mut u = Usage::new(SimTime(10));
        u.step(SimTime(0), true); // 1 from 0
        u.step(SimTime(20), true); // 2 from 20
        u.step(SimTime(30), false); // 1 from 30
        // Window 10..40: 1 x 10 + 2 x 10 + 1 x 10 = 40 over 30.
        assert!((u.mean(SimTime(40)) - 40.0 / 30.0).abs() < 1e-12);
    }
}
