//! The event calendar: future events ordered by (time, sequence), plus a same-time FIFO lane.
//!
//! Events scheduled with zero delay (a message from one component to another) go to the lane,
//! a ring buffer, instead of the heap. Exact (time, seq) order is kept: every heap event due
//! at the current time was scheduled before the current time, so it has a lower sequence than
//! anything in the lane and is popped first.
//!
//! Future events live in a 4-ary min-heap while few are pending (shallow, the four children
//! of a node in one or two cache lines), and in a monotone radix heap when many are (tens of
//! thousands of requests in flight): keys only grow, so each entry moves down the radix
//! buckets at most 128 times in all, whatever the number pending.

use super::event::{Event, PackedEvent};
use crate::time::SimTime;
use std::collections::VecDeque;

/// A heap entry: (time, seq) packed into one integer, so ordering is one comparison.
#[derive(Clone, Copy, Debug)]
struct Entry {
    time: u64,
    seq: u64,
    event: PackedEvent,
}

impl Entry {
    #[inline(always)]
    fn before(&self, other: &Entry) -> bool {
        self.key() < other.key()
    }
    #[inline(always)]
    fn time(&self) -> u64 {
        self.time
    }
    /// (time, seq) as one integer.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }
    /// A copy read word by word (see [`PackedEvent`] on why not as a block).
    #[inline(always)]
    fn get(&self) -> Entry {
        Entry {
            time: self.time,
            seq: self.seq,
            event: self.event.get(),
        }
    }
    /// Copies `other` into `self` word by word (see [`PackedEvent`] on why not as a block).
    #[inline(always)]
    fn set(&mut self, other: &Entry) {
        self.time = other.time;
        self.seq = other.seq;
        self.event.set(&other.event);
    }
}

/// Pending future events above which the radix heap takes over.
const TO_RADIX: usize = 4096;
/// Pending future events below which the 4-ary heap takes over again.
const TO_DARY: usize = 512;

/// Pending events of one run.
#[derive(Debug)]
pub struct Calendar {
    dary: DaryHeap,
    radix: RadixHeap,
    use_radix: bool,
    to_radix: usize,
    to_dary: usize,
    lane: VecDeque<PackedEvent>,
    next_seq: u64,
    now: u64,
    /// Lane events popped since the last heap event.
    lane_streak: u64,
    /// Lane events popped in all.
    lane_pops: u64,
    /// Lane events in a row after which the calendar reports a stall.
    stall_limit: u64,
    stalled: bool,
    /// Future events dropped by [`Calendar::halt`], never popped.
    dropped: u64,
    /// No event due after this is popped: the limit set ([`Calendar::set_limit`]), or
    /// the instant before the earliest deferred event if that is sooner.
    limit: u64,
    /// The limit set.
    limit_set: u64,
    /// Events scheduled with [`Calendar::defer`], latest first: they join the heap (with
    /// the sequence they were given) only when the clock reaches them, so until then the
    /// heap every other event goes through does not hold them.
    deferred: Vec<Entry>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self::new()
    }
}

impl Calendar {
    /// An empty calendar at time zero.
    pub fn new() -> Self {
        Self::with_thresholds(TO_RADIX, TO_DARY)
    }

    fn with_thresholds(to_radix: usize, to_dary: usize) -> Self {
        let mut dary = DaryHeap::with_capacity(1024);
        dary.room = dary.items.len().min(to_radix);
        Calendar {
            dary,
            radix: RadixHeap::default(),
            use_radix: false,
            to_radix,
            to_dary,
            lane: VecDeque::with_capacity(256),
            next_seq: 0,
            now: 0,
            lane_streak: 0,
            lane_pops: 0,
            stall_limit: u64::MAX,
            stalled: false,
            dropped: 0,
            limit: u64::MAX,
            limit_set: u64::MAX,
            deferred: Vec::new(),
        }
    }

    /// Makes [`Calendar::pop`] stop (return `None`, with [`Calendar::stalled`] true) once
    /// more than `limit` events in a row happen at one instant.
    ///
    /// Only lane events need counting: an event due now is scheduled into the lane, so an
    /// instant that never ends is an endless run of lane events. Heap events due at the
    /// current time are finite (they were scheduled before it), and each one restarts the
    /// count, which is why the count covers events "in a row".
    pub fn set_stall_limit(&mut self, limit: u64) {
        self.stall_limit = limit;
    }

    /// True if [`Calendar::pop`] stopped because the clock stopped advancing.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// Events popped so far (the pending ones are those scheduled and not yet popped).
    pub fn popped(&self) -> u64 {
        self.next_seq - self.future_len() as u64 - self.dropped + self.lane_pops
    }

    /// Removes the pending events for which `keep` is false; the others keep their order.
    /// They are not counted as popped.
    pub fn retain(&mut self, mut keep: impl FnMut(Event) -> bool) {
        self.lane.retain(|e| keep(e.unpack()));
        let before = self.future_len();
        self.deferred.retain(|e| keep(e.event.unpack()));
        self.limit_to_deferred();
        if self.use_radix {
            self.radix.retain(|e| keep(e.event.unpack()));
        } else {
            let mut items = self.dary.take();
            items.retain(|e| keep(e.event.unpack()));
            items.sort_unstable_by_key(|e| e.key()); // a sorted array is a valid heap
            self.dary.set(items);
            self.dary.room = self.dary.items.len().min(self.to_radix);
        }
        self.dropped += (before - self.future_len()) as u64;
    }

    /// Drops every pending event, so that [`Calendar::pop`] returns `None`: the run stops
    /// after the event being handled. The clock stays where it is.
    pub fn halt(&mut self) {
        self.dropped += self.future_len() as u64;
        self.lane.clear();
        self.deferred.clear();
        self.limit_to_deferred();
        self.dary.take();
        self.dary.room = 0;
        let mut sink = Vec::new();
        self.radix.drain_into(&mut sink);
        self.use_radix = false;
    }

    /// The time of the event popped last.
    #[inline]
    pub fn now(&self) -> SimTime {
        SimTime(self.now)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.future_len() + self.lane.len()
    }

    fn future_len(&self) -> usize {
        self.deferred.len()
            + if self.use_radix {
                self.radix.len
            } else {
                self.dary.entries()
            }
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `time` (not before now). An event due now goes to the lane.
    #[inline(always)]
    pub fn schedule(&mut self, time: SimTime, event: Event) {
        if time.0 <= self.now {
            self.lane.push_back(event.pack());
        } else {
            self.push_future(time.0, event);
        }
    }

    /// Schedules `event` at the current time, after everything already due now.
    #[inline(always)]
    pub fn schedule_now(&mut self, event: Event) {
        self.lane.push_back(event.pack());
    }

    /// [`Self::schedule`] for a rare event scheduled long ahead (a fault's start or end, the
    /// end of the warm-up): it keeps its place in (time, seq) order, but waits outside the
    /// heap until the clock reaches its time, so that it costs the events before it
    /// nothing. Pops stop short of it; the one that finds nothing due before it moves it
    /// into the heap and goes on.
    pub fn defer(&mut self, time: SimTime, event: Event) {
        if time.0 <= self.now {
            return self.schedule(time, event);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            time: time.0,
            seq,
            event: event.pack(),
        };
        // Latest first, so the earliest is popped from the end.
        let at = self.deferred.partition_point(|e| entry.before(e));
        self.deferred.insert(at, entry);
        self.limit_to_deferred();
    }

    /// Sets the limit pops stop at: the one set, or the instant before the earliest
    /// deferred event.
    fn limit_to_deferred(&mut self) {
        self.limit = match self.deferred.last() {
            Some(e) => self.limit_set.min(e.time - 1),
            None => self.limit_set,
        };
    }

    /// Moves the earliest deferred event into the heap if it is due by the limit set;
    /// false when none is (or the calendar stalled). [`Self::pop_packed`] stops short of
    /// deferred events, so that its own path is as it was without them: its caller, on
    /// `None`, calls this and pops again while it returns true ([`Self::pop`] does).
    #[cold]
    #[inline(never)]
    pub fn undefer(&mut self) -> bool {
        if self.stalled {
            return false;
        }
        match self.deferred.last() {
            Some(e) if e.time <= self.limit_set => {}
            _ => return false,
        }
        let entry = self.deferred.pop().expect("a deferred event");
        self.limit_to_deferred();
        if self.use_radix && entry.key() < self.radix.last {
            // The pop that stopped at the limit put its event back under that event's key,
            // past this one: rebase the radix heap on now (every key pending is due now or
            // later), so that it takes this key too.
            let mut items = Vec::with_capacity(self.radix.len);
            self.radix.drain_into(&mut items);
            self.radix.reset(u128::from(self.now) << 64);
            for e in items {
                self.radix.push(e);
            }
        }
        if self.dary.len < self.dary.room {
            self.dary.push(entry);
        } else {
            self.push_slow(entry);
        }
        true
    }

    /// Removes the next event in (time, seq) order, advancing the clock to its time.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, Event)> {
        loop {
            if let Some((t, e)) = self.pop_packed() {
                return Some((t, e.unpack()));
            }
            if !self.undefer() {
                return None;
            }
        }
    }

    /// Makes [`Self::pop`] and [`Self::pop_packed`] leave in place (return `None` for) any
    /// event due after `limit`, until another limit is set; `limit` must not be before now
    /// (the events of the lane are due now). A run loop sets its end here, so that the
    /// test of an event's time against it is the one comparison a pop makes anyway,
    /// whether the loop runs to the end of the run or to the end of a series window.
    pub fn set_limit(&mut self, limit: SimTime) {
        debug_assert!(limit.0 >= self.now, "a limit before now");
        self.limit_set = limit.0;
        self.limit_to_deferred();
    }

    /// [`Self::pop`], the event left packed: a run loop unpacks it right where it
    /// dispatches it, so that the two matches on its kind fold into one.
    #[inline(always)]
    pub fn pop_packed(&mut self) -> Option<(SimTime, PackedEvent)> {
        // With the lane empty the heap's top is next, whenever it is due; a heap event due
        // now goes before the lane (it was scheduled earlier, so its sequence is lower).
        if !self.lane.is_empty() && !self.future_due_now() {
            return self.pop_lane_packed();
        }
        let (time, event) = if self.use_radix {
            self.pop_radix()?
        } else {
            self.dary.pop_until(self.limit)?
        };
        self.now = time;
        self.lane_streak = 0;
        Some((SimTime(time), event))
    }

    /// True if the earliest heap event is due at the current time.
    #[inline]
    fn future_due_now(&self) -> bool {
        if self.use_radix {
            // `last` is past now when an event past the limit was put back.
            self.radix.has_key_at_time_of_last() && (self.radix.last >> 64) as u64 <= self.now
        } else {
            self.dary.first().is_some_and(|top| top.time() <= self.now)
        }
    }

    #[inline]
    fn pop_lane_packed(&mut self) -> Option<(SimTime, PackedEvent)> {
        let e = self.lane.pop_front()?;
        self.lane_pops += 1;
        self.lane_streak += 1;
        if self.lane_streak > self.stall_limit {
            self.stalled = true;
            return None;
        }
        Some((SimTime(self.now), e))
    }

    #[inline(never)]
    fn pop_radix(&mut self) -> Option<(u64, PackedEvent)> {
        if self.radix.len == 0 {
            return None;
        }
        let e = self.radix.pop();
        if e.time > self.limit {
            // Past the limit: back in place, under the key just popped (the radix heap's
            // `last`, which a push may equal).
            self.radix.push(e);
            return None;
        }
        if self.radix.len < self.to_dary {
            self.switch_to_dary();
        }
        Some((e.time, e.event))
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        if !self.lane.is_empty() {
            return Some(SimTime(self.now));
        }
        let heap = if self.use_radix {
            self.radix.min_key().map(|k| (k >> 64) as u64)
        } else {
            self.dary.first().map(|e| e.time())
        };
        let deferred = self.deferred.last().map(|e| e.time);
        match (heap, deferred) {
            (Some(a), Some(b)) => Some(SimTime(a.min(b))),
            (a, b) => a.or(b).map(SimTime),
        }
    }

    #[inline(always)]
    fn push_future(&mut self, time: u64, event: Event) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            time,
            seq,
            event: event.pack(),
        };
        // The 4-ary heap's room ends at the radix threshold (and is zero while the radix
        // heap is in use), so one comparison decides between the fast path and the rest.
        if self.dary.len < self.dary.room {
            self.dary.push(entry);
        } else {
            self.push_slow(entry);
        }
    }

    #[inline(never)]
    fn push_slow(&mut self, entry: Entry) {
        if !self.use_radix {
            if self.dary.len < self.to_radix {
                self.dary.grow(self.to_radix);
                self.dary.push(entry);
                return;
            }
            self.switch_to_radix();
        }
        self.radix.push(entry);
    }

    #[cold]
    #[inline(never)]
    fn switch_to_radix(&mut self) {
        // Every pending event is due now or later, so (now, 0) is a key no larger than any
        // pending or future one: a valid base for the monotone radix heap.
        self.radix.reset(u128::from(self.now) << 64);
        for e in self.dary.take() {
            self.radix.push(e);
        }
        self.dary.room = 0;
        self.use_radix = true;
    }

    fn switch_to_dary(&mut self) {
        let mut items = self.dary.take();
        self.radix.drain_into(&mut items);
        items.sort_unstable_by_key(|e| e.key()); // a sorted array is a valid heap
        self.dary.set(items);
        self.dary.room = self.dary.items.len().min(self.to_radix);
        self.use_radix = false;
    }
}

/// A 4-ary min-heap.
///
/// The first `len` slots of `items` are the heap; slots past it are spare, kept so a push
/// never reallocates (and never calls out) while the new entry is in registers.
///
/// A pop leaves the root empty (a hole) and the next operation fills it: a push puts its
/// entry there and sifts it down, one sift where a pop then a push make two (an event
/// whose handler schedules the next one, as an arrival schedules the next arrival and a
/// finished job starts the next job's timer, is the common case), and anything else moves
/// the last entry there first, as a pop would have done. The order is the same: entries
/// come out by (time, seq), which no two share.
#[derive(Debug, Default)]
struct DaryHeap {
    items: Vec<Entry>,
    /// Slots in use, the hole included.
    len: usize,
    /// The root slot is empty.
    hole: bool,
    /// Entries the heap takes before the calendar must act (grow it, or switch to the
    /// radix heap); never more than `items.len()`.
    room: usize,
}

const ARITY: usize = 4;

const SPARE: Entry = Entry {
    time: 0,
    seq: 0,
    event: PackedEvent::ZERO,
};

impl DaryHeap {
    fn with_capacity(n: usize) -> Self {
        DaryHeap {
            items: vec![SPARE; n],
            len: 0,
            hole: false,
            room: n,
        }
    }

    /// Entries held (the hole not counted).
    #[inline(always)]
    fn entries(&self) -> usize {
        self.len - usize::from(self.hole)
    }

    /// The earliest entry: the root, or with a hole there the earliest of its children
    /// (every entry lies under one of them).
    #[inline(always)]
    fn first(&self) -> Option<&Entry> {
        if !self.hole {
            return self.items[..self.len].first();
        }
        let children = &self.items[1..self.len.min(ARITY + 1)];
        children
            .iter()
            .reduce(|a, b| if b.before(a) { b } else { a })
    }

    /// Fills the hole, if any, with the last entry, sifted down from the root.
    #[inline(always)]
    fn settle(&mut self) {
        if !self.hole {
            return;
        }
        self.hole = false;
        self.len -= 1;
        let n = self.len;
        if n > 0 {
            let last = self.items[n].get();
            self.sift_down(0, last);
        }
    }

    /// Empties the heap, returning its entries in heap order.
    fn take(&mut self) -> Vec<Entry> {
        self.settle();
        let mut items = std::mem::take(&mut self.items);
        items.truncate(self.len);
        self.len = 0;
        items
    }

    /// Makes `items`, which must be in heap order, the heap.
    fn set(&mut self, items: Vec<Entry>) {
        self.len = items.len();
        self.hole = false;
        self.items = items;
    }

    /// Adds `entry`; the caller has checked that `len < room`.
    #[inline(always)]
    fn push(&mut self, entry: Entry) {
        debug_assert!(self.len < self.room && self.room <= self.items.len());
        if self.hole {
            self.hole = false;
            return self.sift_down(0, entry);
        }
        let mut i = self.len;
        self.len += 1;
        // One bounds check for the whole sift: every index below is at most `i`.
        let items = &mut self.items[..=i];
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if entry.before(&items[parent]) {
                let moved = items[parent].get();
                items[i].set(&moved);
                i = parent;
            } else {
                break;
            }
        }
        items[i].set(&entry);
    }

    /// Makes room for more entries, up to `limit` in all.
    #[cold]
    fn grow(&mut self, limit: usize) {
        if self.len == self.items.len() {
            let more = self.items.len().max(64);
            self.items.resize(self.items.len() + more, SPARE);
        }
        self.room = self.items.len().min(limit);
    }

    /// Removes the earliest entry if it is due at or before `limit`, returning its time and
    /// event; `None` when the heap is empty or its earliest entry is due after `limit`. The
    /// root is left a hole.
    ///
    /// The top is read field by field: it was often written field by field a moment ago
    /// (see [`Entry::set`]), and one wide load over those narrow stores would stall.
    #[inline(always)]
    fn pop_until(&mut self, limit: u64) -> Option<(u64, PackedEvent)> {
        self.settle();
        let top = self.items[..self.len].first()?;
        let time = top.time;
        if time > limit {
            return None;
        }
        let event = top.event.get();
        self.hole = true;
        Some((time, event))
    }

    /// Puts `entry` at slot `i`, which is empty, or under it where the heap order wants it.
    #[inline(always)]
    fn sift_down(&mut self, mut i: usize, entry: Entry) {
        let n = self.len;
        // One bounds check for the whole sift: every index below is under `n`.
        let items = &mut self.items[..n];
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut best = first;
            for c in first + 1..end {
                if items[c].before(&items[best]) {
                    best = c;
                }
            }
            if items[best].before(&entry) {
                let moved = items[best].get();
                items[i].set(&moved);
                i = best;
            } else {
                break;
            }
        }
        items[i].set(&entry);
    }
}

/// A monotone radix heap over 128-bit keys (Ahuja, Mehlhorn, Orlin & Tarjan 1990): bucket
/// b > 0 holds the keys whose highest bit differing from `last` is bit b − 1; bucket 0
/// holds keys equal to `last`. Keys pushed are never below `last`.
#[derive(Debug)]
struct RadixHeap {
    buckets: Vec<Vec<Entry>>,
    /// Bit b set when bucket b is not empty.
    occupied: u128,
    occupied_top: bool,
    last: u128,
    len: usize,
}

impl Default for RadixHeap {
    fn default() -> Self {
        RadixHeap {
            buckets: (0..129).map(|_| Vec::new()).collect(),
            occupied: 0,
            occupied_top: false,
            last: 0,
            len: 0,
        }
    }
}

impl RadixHeap {
    #[inline]
    fn bucket_of(&self, key: u128) -> usize {
        128 - (key ^ self.last).leading_zeros() as usize
    }

    #[inline]
    fn mark(&mut self, b: usize) {
        if b == 128 {
            self.occupied_top = true;
        } else {
            self.occupied |= 1u128 << b;
        }
    }

    fn reset(&mut self, last: u128) {
        for b in &mut self.buckets {
            b.clear();
        }
        self.occupied = 0;
        self.occupied_top = false;
        self.last = last;
        self.len = 0;
    }

    #[inline]
    fn push(&mut self, e: Entry) {
        debug_assert!(e.key() >= self.last, "radix heap keys must not decrease");
        let b = self.bucket_of(e.key());
        self.buckets[b].push(e);
        self.mark(b);
        self.len += 1;
    }

    /// True if a pending key has the same time as the key popped last: those keys differ
    /// from it only in the low 64 bits (the sequence), so they sit in buckets 0..=64.
    #[inline]
    fn has_key_at_time_of_last(&self) -> bool {
        self.occupied & ((1u128 << 65) - 1) != 0
    }

    fn first_occupied(&self) -> Option<usize> {
        if self.occupied != 0 {
            Some(self.occupied.trailing_zeros() as usize)
        } else if self.occupied_top {
            Some(128)
        } else {
            None
        }
    }

    fn min_key(&self) -> Option<u128> {
        let b = self.first_occupied()?;
        self.buckets[b].iter().map(|e| e.key()).min()
    }

    #[inline]
    fn pop(&mut self) -> Entry {
        let b = self.first_occupied().expect("pop on an empty radix heap");
        if b > 0 {
            // Move the smallest key of bucket b to `last` and spread the bucket below b.
            let bucket = std::mem::take(&mut self.buckets[b]);
            if b == 128 {
                self.occupied_top = false;
            } else {
                self.occupied &= !(1u128 << b);
            }
            self.last = bucket
                .iter()
                .map(|e| e.key())
                .min()
                .expect("occupied bucket");
            for e in &bucket {
                let nb = self.bucket_of(e.key());
                self.buckets[nb].push(*e);
                self.mark(nb);
            }
            // Give the emptied vector back, keeping its capacity.
            let mut bucket = bucket;
            bucket.clear();
            self.buckets[b] = bucket;
        }
        let e = self.buckets[0].pop().expect("bucket 0 holds the minimum");
        if self.buckets[0].is_empty() {
            self.occupied &= !1;
        }
        self.len -= 1;
        e
    }

    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.len = 0;
        for (b, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.retain(|e| keep(e));
            self.len += bucket.len();
            if bucket.is_empty() {
                if b == 128 {
                    self.occupied_top = false;
                } else {
                    self.occupied &= !(1u128 << b);
                }
            }
        }
    }

    fn drain_into(&mut self, out: &mut Vec<Entry>) {
        for b in &mut self.buckets {
            out.append(b);
        }
        self.occupied = 0;
        self.occupied_top = false;
        self.len = 0;
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

    #[test]
    fn an_endless_instant_stops_at_the_stall_limit() {
        let mut c = Calendar::new();
        c.set_stall_limit(10);
        c.schedule(SimTime(5), ev(0));
        let mut handled = 0;
        // Each event schedules another at the same instant, as a zero-time loop would.
        while let Some((t, _)) = c.pop() {
            assert_eq!(t, SimTime(5));
            handled += 1;
            c.schedule(SimTime(5), ev(handled));
        }
        assert!(c.stalled());
        // The heap event, then 10 lane events in a row; the 11th trips the limit.
        assert_eq!(handled, 11);
        assert_eq!(c.popped(), 12);
    }

    #[test]
    fn a_busy_instant_that_ends_is_not_a_stall() {
        let mut c = Calendar::new();
        c.set_stall_limit(10);
        for round in 0..100u64 {
            c.schedule(SimTime(round + 1), ev(0));
        }
        let mut n = 0;
        // Each heap event sets off 10 events at its instant: busy, but the limit is not passed.
        while let Some((_, e)) = c.pop() {
            n += 1;
            if data(e) == 0 {
                for _ in 0..10 {
                    c.schedule_now(ev(1));
                }
            }
        }
        assert!(!c.stalled());
        assert_eq!(n, 100 * 11);
        assert_eq!(c.popped(), n);
    }

    #[test]
    fn a_deferred_event_keeps_its_place_and_limits_stop_before_it() {
        let mut c = Calendar::new();
        c.defer(SimTime(10), ev(1));
        c.schedule(SimTime(10), ev(2));
        c.schedule(SimTime(5), ev(3));
        c.defer(SimTime(20), ev(4));
        assert_eq!((c.len(), c.peek_time()), (4, Some(SimTime(5))));
        c.set_limit(SimTime(9));
        assert_eq!(c.pop().map(|(t, e)| (t.0, data(e))), Some((5, 3)));
        assert_eq!(c.pop(), None, "nothing due by the limit");
        assert_eq!(c.peek_time(), Some(SimTime(10)));
        c.set_limit(SimTime(15));
        // Deferred first at 10: it was scheduled first.
        assert_eq!(c.pop().map(|(t, e)| (t.0, data(e))), Some((10, 1)));
        assert_eq!(c.pop().map(|(t, e)| (t.0, data(e))), Some((10, 2)));
        assert_eq!(c.pop(), None);
        c.retain(|e| data(e) != 4);
        assert!(c.is_empty());
        c.set_limit(SimTime(100));
        assert_eq!(c.pop(), None);
        assert_eq!(c.popped(), 3);
    }

    #[test]
    fn retain_drops_events_and_keeps_the_order_of_the_rest() {
        for radix_at in [4096usize, 8] {
            let mut c = Calendar::with_thresholds(radix_at, radix_at / 2);
            for i in 0..100u32 {
                c.schedule(SimTime(u64::from(i % 7) + 1), ev(i));
            }
            c.schedule_now(ev(1000));
            c.retain(|e| !data(e).is_multiple_of(3));
            let mut want: Vec<(u64, u32)> = (0..100u32)
                .filter(|i| !i.is_multiple_of(3))
                .map(|i| (u64::from(i % 7) + 1, i))
                .collect();
            want.sort();
            want.insert(0, (0, 1000));
            let got: Vec<(u64, u32)> = std::iter::from_fn(|| c.pop())
                .map(|(t, e)| (t.0, data(e)))
                .collect();
            assert_eq!(got, want);
            assert_eq!(c.popped(), want.len() as u64);
        }
    }

    #[test]
    fn a_limit_stops_before_the_first_later_event_and_leaves_it() {
        for radix_at in [4096usize, 2] {
            let mut c = Calendar::with_thresholds(radix_at, radix_at / 2);
            for (i, t) in [3u64, 1, 2, 5, 2, 4].into_iter().enumerate() {
                c.schedule(SimTime(t), ev(i as u32));
            }
            c.set_limit(SimTime(2));
            let due: Vec<(u64, u32)> = std::iter::from_fn(|| c.pop_packed())
                .map(|(t, e)| (t.0, data(e.unpack())))
                .collect();
            assert_eq!(due, [(1, 1), (2, 2), (2, 4)]);
            assert_eq!(c.popped(), 3);
            // Left in place: the clock stays at the last event popped.
            assert_eq!(c.now(), SimTime(2));
            assert_eq!(c.peek_time(), Some(SimTime(3)));
            // The lane's events are due now, within the limit.
            c.schedule_now(ev(9));
            assert_eq!(c.pop().map(|(t, e)| (t.0, data(e))), Some((2, 9)));
            assert_eq!(c.pop().map(|(t, _)| t), None);
            c.set_limit(SimTime(u64::MAX));
            let rest: Vec<(u64, u32)> = std::iter::from_fn(|| c.pop())
                .map(|(t, e)| (t.0, data(e)))
                .collect();
            assert_eq!(rest, [(3, 0), (4, 5), (5, 3)]);
        }
    }

    proptest! {
        /// The calendar pops exactly what a BTreeMap keyed by (time, seq) would, with the
        /// 4-ary heap and the radix heap (tiny thresholds force switches back and forth).
        #[test]
        fn matches_a_btreemap_shadow(
            ops in proptest::collection::vec((0u64..50, 0u8..5), 1..400),
            radix_at in prop_oneof![Just(4096usize), 2usize..20],
        ) {
            let mut c = Calendar::with_thresholds(radix_at, radix_at / 2);
            let mut shadow: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            let mut seq = 0u64;
            let mut now = 0u64;
            for (i, (delay, op)) in ops.into_iter().enumerate() {
                if op < 2 {
                    let got = c.pop().map(|(t, e)| (t.0, data(e)));
                    let want = shadow.pop_first().map(|((t, _), d)| (t, d));
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = want { now = t; }
                } else {
                    // Some deferred: they keep their place in the order all the same.
                    if op == 4 {
                        c.defer(SimTime(now + delay), ev(i as u32));
                    } else {
                        c.schedule(SimTime(now + delay), ev(i as u32));
                    }
                    // Lane events and heap events share one logical sequence.
                    shadow.insert((now + delay, seq), i as u32);
                    seq += 1;
                }
                // A pop leaves a hole in the 4-ary heap's root: what is pending and when
                // the next is due must not show it.
                prop_assert_eq!(c.len(), shadow.len());
                let next = shadow.first_key_value().map(|((t, _), _)| *t);
                prop_assert_eq!(c.peek_time().map(|t| t.0), next);
            }
            while let Some(want) = shadow.pop_first() {
                let got = c.pop().map(|(t, e)| (t.0, data(e)));
                prop_assert_eq!(got, Some((want.0.0, want.1)));
            }
        }
    }
}
