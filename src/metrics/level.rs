//! Time-weighted level: the time average and maximum of a quantity such as a queue length.

use crate::time::SimTime;

/// Tracks the integral of a level over time, so its time average is exact.
#[derive(Debug, Clone, Default)]
pub struct TimeWeighted {
    level: u64,
    area: u128,
    max: u64,
    since: u64,
    last: u64,
}

impl TimeWeighted {
    /// Sets the level at `now`.
    #[inline]
    pub fn set(&mut self, now: SimTime, level: u64) {
        self.area += u128::from(self.level) * u128::from(now.0 - self.last);
        self.last = now.0;
        self.level = level;
        if level > self.max {
            self.max = level;
        }
    }
    /// Adds one at `now`.
    #[inline]
    pub fn inc(&mut self, now: SimTime) {
        self.set(now, self.level + 1);
    }
    /// Subtracts one at `now`.
    #[inline]
    pub fn dec(&mut self, now: SimTime) {
        self.set(now, self.level - 1);
    }
    /// The current level.
    #[inline]
    pub fn level(&self) -> u64 {
        self.level
    }
    /// Forgets the past: the window starts at `now` with the current level.
    pub fn restart(&mut self, now: SimTime) {
        self.area = 0;
        self.since = now.0;
        self.last = now.0;
        self.max = self.level;
    }
    /// Time average over the window up to `now`.
    pub fn mean(&self, now: SimTime) -> f64 {
        let area = self.area + u128::from(self.level) * u128::from(now.0 - self.last);
        let span = now.0 - self.since;
        if span == 0 {
            self.level as f64
        } else {
            area as f64 / span as f64
        }
    }
    /// Start of the window.
    pub fn since(&self) -> u64 {
        self.since
    }
    /// Largest level seen in the window.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Levels told apart by [`LevelShares`]; the last slot holds this many less one, or more.
pub const LEVEL_SLOTS: usize = 64;

/// The share of time a level (such as the number of requests at an instance) spends at
/// each value 0, 1, 2, ... up to [`LEVEL_SLOTS`] − 1, which also takes every value above.
#[derive(Debug, Clone)]
pub struct LevelShares {
    time_at: [u64; LEVEL_SLOTS],
    level: u64,
    since: u64,
    last: u64,
}

impl Default for LevelShares {
    fn default() -> Self {
        LevelShares {
            time_at: [0; LEVEL_SLOTS],
            level: 0,
            since: 0,
            last: 0,
        }
    }
}

impl LevelShares {
    /// Sets the level at `now`.
    #[inline]
    pub fn set(&mut self, now: SimTime, level: u64) {
        let slot = (self.level as usize).min(LEVEL_SLOTS - 1);
        self.time_at[slot] += now.0 - self.last;
        self.last = now.0;
        self.level = level;
    }
    /// Forgets the past: the window starts at `now` with the current level.
    pub fn restart(&mut self, now: SimTime) {
        self.time_at = [0; LEVEL_SLOTS];
        self.since = now.0;
        self.last = now.0;
    }
    /// Share of the window up to `now` spent at each level, from 0 up to the highest level
    /// seen (the last slot counts every level from `LEVEL_SLOTS - 1` up).
    pub fn shares(&self, now: SimTime) -> Vec<f64> {
        let mut time_at = self.time_at;
        time_at[(self.level as usize).min(LEVEL_SLOTS - 1)] += now.0 - self.last;
        let span = now.0 - self.since;
        let used = time_at.iter().rposition(|t| *t > 0).map_or(0, |i| i + 1);
        if span == 0 {
            let mut at_level = vec![0.0; (self.level as usize).min(LEVEL_SLOTS - 1) + 1];
            *at_level.last_mut().expect("one slot") = 1.0;
            return at_level;
        }
        time_at[..used]
            .iter()
            .map(|t| *t as f64 / span as f64)
            .collect()
    }
}

/// The requests at a service instance: busy workers and waiting requests, each with its
/// exact time average, the most waiting at once, and the share of time spent at each total.
/// One clock step updates all three, since they change at the same moments.
///
/// Requests wait only while every worker is busy, so with `w` workers and `n` requests
/// busy = min(n, w). While `w` is below [`LEVEL_SLOTS`] the busy area follows exactly from
/// the time spent at each level, and only the area of `n` is integrated as it goes.
#[derive(Debug, Clone, Default)]
pub struct InstanceLoad {
    busy: u64,
    waiting: u64,
    workers: u64,
    /// Integral of busy + waiting over the time spent at the last level slot (levels of
    /// `LEVEL_SLOTS - 1` and up); below it the integral follows from the level shares.
    top_area: u128,
    /// Integral of busy, kept only when `workers` is too many for the level shares.
    busy_area: u128,
    waiting_max: u64,
    shares: LevelShares,
}

impl InstanceLoad {
    /// Tracks an instance with `workers` workers.
    pub fn new(workers: u32) -> Self {
        InstanceLoad {
            workers: u64::from(workers),
            ..InstanceLoad::default()
        }
    }
    #[inline(always)]
    fn busy_from_shares(&self) -> bool {
        self.workers < LEVEL_SLOTS as u64
    }
    #[inline(always)]
    fn advance(&mut self, now: SimTime) {
        let dt = now.0 - self.shares.last;
        let n = self.busy + self.waiting;
        if n >= LEVEL_SLOTS as u64 - 1 {
            self.top_area += u128::from(n) * u128::from(dt);
        }
        if !self.busy_from_shares() {
            self.busy_area += u128::from(self.busy) * u128::from(dt);
        }
        self.shares.time_at[(n as usize).min(LEVEL_SLOTS - 1)] += dt;
        self.shares.last = now.0;
    }
    /// A worker becomes busy at `now`.
    #[inline]
    pub fn busy_inc(&mut self, now: SimTime) {
        self.advance(now);
        self.busy += 1;
    }
    /// A worker becomes free at `now`.
    #[inline]
    pub fn busy_dec(&mut self, now: SimTime) {
        self.advance(now);
        self.busy -= 1;
    }
    /// A request starts waiting at `now`.
    #[inline]
    pub fn waiting_inc(&mut self, now: SimTime) {
        self.advance(now);
        self.waiting += 1;
        self.waiting_max = self.waiting_max.max(self.waiting);
    }
    /// A request stops waiting at `now`.
    #[inline]
    pub fn waiting_dec(&mut self, now: SimTime) {
        self.advance(now);
        self.waiting -= 1;
    }
    /// Every request leaves at `now` (the instance crashed): nothing busy, nothing waiting.
    pub fn clear(&mut self, now: SimTime) {
        self.advance(now);
        self.busy = 0;
        self.waiting = 0;
    }
    /// From `now` on, busy workers may be fewer than min(requests, workers) (a fault cut
    /// them): their time average is integrated as it goes instead of derived from the
    /// level shares.
    pub fn track_busy_exactly(&mut self, now: SimTime) {
        if self.busy_from_shares() {
            self.advance(now);
            self.busy_area = self.busy_area();
            self.workers = u64::MAX;
        }
    }
    /// Busy workers now.
    #[inline]
    pub fn busy(&self) -> u64 {
        self.busy
    }
    /// Waiting requests now.
    #[inline]
    pub fn waiting(&self) -> u64 {
        self.waiting
    }
    /// Forgets the past: the window starts at `now` with the current levels.
    pub fn restart(&mut self, now: SimTime) {
        self.top_area = 0;
        self.busy_area = 0;
        self.waiting_max = self.waiting;
        self.shares.level = self.busy + self.waiting;
        self.shares.restart(now);
    }
    /// Start of the window.
    pub fn since(&self) -> u64 {
        self.shares.since
    }
    fn mean(&self, area: u128, level: u64, now: SimTime) -> f64 {
        let area = area + u128::from(level) * u128::from(now.0 - self.shares.last);
        let span = now.0 - self.shares.since;
        if span == 0 {
            level as f64
        } else {
            area as f64 / span as f64
        }
    }
    /// Integral of busy + waiting up to the last change.
    fn in_area(&self) -> u128 {
        let below_top: u128 = (0..LEVEL_SLOTS - 1)
            .map(|n| n as u128 * u128::from(self.shares.time_at[n]))
            .sum();
        below_top + self.top_area
    }
    /// Integral of busy workers up to the last change.
    fn busy_area(&self) -> u128 {
        if self.busy_from_shares() {
            // busy = min(n, workers); the last slot holds n >= LEVEL_SLOTS - 1 > workers.
            (0..LEVEL_SLOTS)
                .map(|n| {
                    u128::from((n as u64).min(self.workers)) * u128::from(self.shares.time_at[n])
                })
                .sum()
        } else {
            self.busy_area
        }
    }
    /// Time-average busy workers over the window up to `now`.
    pub fn busy_mean(&self, now: SimTime) -> f64 {
        self.mean(self.busy_area(), self.busy, now)
    }
    /// Time-average waiting requests over the window up to `now`.
    pub fn waiting_mean(&self, now: SimTime) -> f64 {
        self.mean(self.in_area() - self.busy_area(), self.waiting, now)
    }
    /// Most requests waiting at once in the window.
    pub fn waiting_max(&self) -> u64 {
        self.waiting_max
    }
    /// Share of the window up to `now` with 0, 1, 2, ... requests at the instance.
    pub fn shares(&self, now: SimTime) -> Vec<f64> {
        let mut s = self.shares.clone();
        s.level = self.busy + self.waiting;
        s.shares(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_load_matches_separate_trackers() {
        let mut load = InstanceLoad::new(1);
        let (mut busy, mut waiting, mut shares) = (
            TimeWeighted::default(),
            TimeWeighted::default(),
            LevelShares::default(),
        );
        // Requests wait only while the one worker is busy, as in a service.
        let steps: [(u64, i8, i8); 6] = [
            (3, 1, 0),
            (5, 0, 1),
            (9, 0, 1),
            (12, 0, -1),
            (20, 0, -1),
            (25, -1, 0),
        ];
        for (t, db, dw) in steps {
            let now = SimTime(t);
            match (db, dw) {
                (1, _) => (load.busy_inc(now), busy.inc(now)).0,
                (-1, _) => (load.busy_dec(now), busy.dec(now)).0,
                (_, 1) => (load.waiting_inc(now), waiting.inc(now)).0,
                _ => (load.waiting_dec(now), waiting.dec(now)).0,
            };
            shares.set(now, busy.level() + waiting.level());
        }
        let end = SimTime(40);
        assert_eq!(load.busy_mean(end), busy.mean(end));
        assert_eq!(load.waiting_mean(end), waiting.mean(end));
        assert_eq!(load.waiting_max(), waiting.max());
        assert_eq!(load.shares(end), shares.shares(end));
        load.restart(end);
        load.busy_inc(SimTime(45));
        assert_eq!(load.shares(SimTime(50)), vec![0.5, 0.5]);
        assert_eq!(load.busy_mean(SimTime(50)), 0.5);
    }

    #[test]
    fn shares_of_time_per_level() {
        let mut l = LevelShares::default();
        l.set(SimTime(10), 1); // level 0 for 10
        l.set(SimTime(15), 3); // level 1 for 5
        l.set(SimTime(20), 0); // level 3 for 5
        assert_eq!(l.shares(SimTime(40)), vec![0.75, 0.125, 0.0, 0.125]);
        l.restart(SimTime(40));
        l.set(SimTime(50), 100);
        assert_eq!(l.shares(SimTime(50)), vec![1.0]);
        let s = l.shares(SimTime(60));
        assert_eq!(s.len(), LEVEL_SLOTS);
        assert_eq!(s[LEVEL_SLOTS - 1], 0.5);
    }

    #[test]
    fn averages_over_time() {
        let mut l = TimeWeighted::default();
        l.set(SimTime(0), 2);
        l.set(SimTime(10), 0);
        assert_eq!(l.mean(SimTime(20)), 1.0);
        assert_eq!(l.max(), 2);
        l.restart(SimTime(20));
        l.inc(SimTime(25));
        assert_eq!(l.mean(SimTime(30)), 0.5);
    }

    #[test]
    fn many_workers_integrate_busy_directly() {
        let mut load = InstanceLoad::new(100);
        let mut busy = TimeWeighted::default();
        for t in 0..80u64 {
            load.busy_inc(SimTime(t * 10));
            busy.inc(SimTime(t * 10));
        }
        for t in 80..120u64 {
            load.busy_dec(SimTime(t * 10));
            busy.dec(SimTime(t * 10));
        }
        assert_eq!(load.busy_mean(SimTime(2000)), busy.mean(SimTime(2000)));
        assert_eq!(load.waiting_mean(SimTime(2000)), 0.0);
    }
}
