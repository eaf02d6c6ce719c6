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

#[cfg(test)]
mod tests {
    use super::*;

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
