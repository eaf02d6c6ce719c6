//! The event calendar: future events ordered by (time, sequence), plus a same-time FIFO lane.
//!
//! Events scheduled with zero delay (a message from one component to another) go to the lane,
//! a ring buffer, instead of the heap. Exact (time, seq) order is kept: every heap event due
//! at the current time was scheduled before the current time, so it has a lower sequence than
//! anything in the lane and is popped first.
//!
//! Future events live in a 4-ary min-heap: shallower than a binary heap, with the four
//! children of a node in one or two cache lines.

use super::event::Event;
use crate::time::SimTime;
use std::collections::VecDeque;

/// A heap entry: (time, seq) packed into one integer, so ordering is one comparison.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u128,
    event: Event,
}

impl Entry {
    #[inline(always)]
    fn before(&self, other: &Entry) -> bool {
        self.key < other.key
    }
    #[inline(always)]
    fn time(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

/// Pending events of one run.
#[derive(Debug, Default)]
pub struct Calendar {
    heap: Vec<Entry>,
    lane: VecDeque<Event>,
    next_seq: u64,
    now: u64,
}

const ARITY: usize = 4;

impl Calendar {
    /// An empty calendar at time zero.
    pub fn new() -> Self {
        Calendar {
            heap: Vec::with_capacity(1024),
            lane: VecDeque::with_capacity(256),
            next_seq: 0,
            now: 0,
        }
    }

    /// The time of the event popped last.
    #[inline]
    pub fn now(&self) -> SimTime {
        SimTime(self.now)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len() + self.lane.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `time` (not before now). An event due now goes to the lane.
    #[inline]
    pub fn schedule(&mut self, time: SimTime, event: Event) {
        if time.0 <= self.now {
            self.lane.push_back(event);
        } else {
            self.push_heap(time.0, event);
        }
    }

    /// Schedules `event` at the current time, after everything already due now.
    #[inline]
    pub fn schedule_now(&mut self, event: Event) {
        self.lane.push_back(event);
    }

    /// Removes the next event in (time, seq) order, advancing the clock to its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, Event)> {
        if let Some(top) = self.heap.first()
            && (top.time() <= self.now || self.lane.is_empty())
        {
            let e = self.pop_heap();
            self.now = e.time();
            return Some((SimTime(self.now), e.event));
        }
        self.lane.pop_front().map(|e| (SimTime(self.now), e))
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        if !self.lane.is_empty() {
            return Some(SimTime(self.now));
        }
        self.heap.first().map(|e| SimTime(e.time()))
    }

    #[inline]
    fn push_heap(&mut self, time: u64, event: Event) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            key: (u128::from(time) << 64) | u128::from(seq),
            event,
        };
        let mut i = self.heap.len();
        self.heap.push(entry);
        // Sift up.
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if entry.before(&self.heap[parent]) {
                self.heap[i] = self.heap[parent];
                i = parent;
            } else {
                break;
            }
        }
        self.heap[i] = entry;
    }

    #[inline]
    fn pop_heap(&mut self) -> Entry {
        let top = self.heap[0];
        let last = self.heap.pop().expect("pop_heap on an empty heap");
        let n = self.heap.len();
        if n == 0 {
            return top;
        }
        // Sift `last` down from the root.
        let mut i = 0;
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut best = first;
            for c in first + 1..end {
                if self.heap[c].before(&self.heap[best]) {
                    best = c;
                }
            }
            if self.heap[best].before(&last) {
                self.heap[i] = self.heap[best];
                i = best;
            } else {
                break;
            }
        }
        self.heap[i] = last;
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ev(n: u32) -> Event {
        Event::Timer {
            to: 0,
            tag: 0,
            data: n,
        }
    }
    fn data(e: Event) -> u32 {
        match e {
            Event::Timer { data, .. } => data,
            _ => unreachable!(),
        }
    }

    #[test]
    fn same_time_events_run_in_schedule_order() {
        let mut c = Calendar::new();
        for i in 0..10 {
            c.schedule(SimTime(5), ev(i));
        }
        let order: Vec<u32> = std::iter::from_fn(|| c.pop())
            .map(|(_, e)| data(e))
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn heap_events_due_now_run_before_the_lane() {
        let mut c = Calendar::new();
        c.schedule(SimTime(5), ev(1));
        c.schedule(SimTime(5), ev(2));
        let (t, e) = c.pop().unwrap();
        assert_eq!((t, data(e)), (SimTime(5), 1));
        c.schedule_now(ev(3)); // scheduled while handling event 1, at time 5
        assert_eq!(data(c.pop().unwrap().1), 2);
        assert_eq!(data(c.pop().unwrap().1), 3);
        assert!(c.pop().is_none());
    }

    proptest! {
        /// The calendar pops exactly what a BTreeMap keyed by (time, seq) would.
        #[test]
        fn matches_a_btreemap_shadow(ops in proptest::collection::vec((0u64..50, any::<bool>()), 1..400)) {
            let mut c = Calendar::new();
            let mut shadow: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            let mut seq = 0u64;
            let mut now = 0u64;
            for (i, (delay, pop)) in ops.into_iter().enumerate() {
                if pop {
                    let got = c.pop().map(|(t, e)| (t.0, data(e)));
                    let want = shadow.pop_first().map(|((t, _), d)| (t, d));
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = want { now = t; }
                } else {
                    c.schedule(SimTime(now + delay), ev(i as u32));
                    // Lane events and heap events share one logical sequence.
                    shadow.insert((now + delay, seq), i as u32);
                    seq += 1;
                }
            }
            while let Some(want) = shadow.pop_first() {
                let got = c.pop().map(|(t, e)| (t.0, data(e)));
                prop_assert_eq!(got, Some((want.0.0, want.1)));
            }
        }
    }
}
