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

#[cfg(test)]
mod tests {
    use super::*;

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
}
