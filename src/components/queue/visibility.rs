//! The visibility deadlines of a queue's deliveries, kept by the queue itself: one engine
//! timer for the earliest, instead of one per delivery. The timeout is one constant per
//! queue, so deadlines come in delivery order and a deque holds them sorted. A delivery
//! acknowledged (or failed) before its deadline stays in the deque and is skipped when it
//! reaches the front (its serial no longer matches the message's). With thousands of
//! deliveries out, thousands of pending timers had pushed the engine's calendar from its
//! heap into its radix heap, and a queue cost about four service calls per message.

use crate::engine::CallId;
use crate::time::SimTime;
use std::collections::VecDeque;

/// Deadlines of the deliveries out, earliest first.
#[derive(Debug, Default)]
pub struct Deadlines {
    /// (deadline, message or batch call, delivery serial), in delivery order.
    due: VecDeque<(SimTime, CallId, u32)>,
    /// An engine timer is set for the front's deadline.
    armed: bool,
}

impl Deadlines {
    /// Delivery `serial` of `call` must be acknowledged by `at` (no earlier than any
    /// deadline held). True when no timer is set: the caller sets one for `at`.
    pub fn push(&mut self, at: SimTime, call: CallId, serial: u32) -> bool {
        debug_assert!(self.due.back().is_none_or(|&(last, _, _)| last <= at));
        self.due.push_back((at, call, serial));
        !std::mem::replace(&mut self.armed, true)
    }

    /// The next delivery whose deadline is `now` or earlier (stale ones included: the
    /// caller checks the serial), taken out.
    pub fn pop_due(&mut self, now: SimTime) -> Option<(CallId, u32)> {
        match self.due.front() {
            Some(&(at, call, serial)) if at <= now => {
                self.due.pop_front();
                Some((call, serial))
            }
            _ => None,
        }
    }

    /// The earliest deadline's delivery, left in place.
    pub fn front(&self) -> Option<(CallId, u32)> {
        self.due.front().map(|&(_, call, serial)| (call, serial))
    }

    /// Takes out the earliest deadline (a delivery already over).
    pub fn skip(&mut self) {
        self.due.pop_front();
    }

    /// After the timer fired and the due deliveries were taken: the earliest deadline left,
    /// to set the next timer for (None when empty, and no timer is then set).
    pub fn rearm(&mut self) -> Option<SimTime> {
        let next = self.due.front().map(|&(at, _, _)| at);
        self.armed = next.is_some();
        next
    }

    /// Everything forgotten (a crash: the engine dropped the timer, and the deliveries out
    /// are over).
    pub fn clear(&mut self) {
        self.due.clear();
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_for_the_earliest_and_the_rest_in_order() {
        let mut d = Deadlines::default();
        assert!(d.push(SimTime(10), 1, 1), "the first needs a timer");
        assert!(!d.push(SimTime(10), 2, 2), "one timer is enough");
        assert!(!d.push(SimTime(20), 3, 3));
        assert_eq!(d.pop_due(SimTime(10)), Some((1, 1)));
        assert_eq!(d.pop_due(SimTime(10)), Some((2, 2)));
        assert_eq!(d.pop_due(SimTime(10)), None, "20 is not due at 10");
        assert_eq!(d.rearm(), Some(SimTime(20)));
        assert!(!d.push(SimTime(30), 4, 4), "armed for 20 already");
        assert_eq!(d.pop_due(SimTime(25)), Some((3, 3)));
        assert_eq!(d.pop_due(SimTime(25)), None);
        assert_eq!(d.rearm(), Some(SimTime(30)));
        assert_eq!(d.pop_due(SimTime(30)), Some((4, 4)));
        assert_eq!(d.rearm(), None);
        assert!(d.push(SimTime(40), 5, 5), "empty and unarmed: a new timer");
    }

    #[test]
    fn deliveries_over_are_skipped_from_the_front() {
        let mut d = Deadlines::default();
        d.push(SimTime(10), 1, 1);
        d.push(SimTime(20), 2, 2);
        assert_eq!(d.front(), Some((1, 1)));
        d.skip();
        assert_eq!(d.rearm(), Some(SimTime(20)));
    }

    #[test]
    fn a_crash_forgets_everything() {
        let mut d = Deadlines::default();
        d.push(SimTime(10), 1, 1);
        d.clear();
        assert_eq!(d.pop_due(SimTime(100)), None);
        assert!(d.push(SimTime(200), 2, 2), "the dropped timer is set again");
    }
}
