//! The circuit breaker: one per caller instance and callee, as in resilience4j's
//! time-based breaker. Closed, it counts the outcomes of the attempts of the last `window`
//! (in ten buckets, so old outcomes leave a tenth of the window at a time); once at least
//! `min_calls` were made in it and the share that failed (or, with `slow_call`, took at
//! least that long) reaches its rate, it opens. Open, every call fails at once
//! (`circuit_open`) for `open_for`; then it lets `half_open_calls` probes through, and
//! closes again if their failed (and slow) shares stay below the rates, else opens again.

use crate::time::{SimDuration, SimTime};

/// Buckets a window is cut into.
pub const BUCKETS: usize = 10;

/// A breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerParams {
    /// Opens when the failed share of the window's attempts reaches this, in (0, 1].
    pub failure_rate: f64,
    /// An attempt that took at least this long counts as slow (`None`: none is).
    pub slow_call: Option<SimDuration>,
    /// Opens when the slow share reaches this, in (0, 1].
    pub slow_rate: f64,
    /// How far back outcomes count.
    pub window: SimDuration,
    /// Attempts the window must hold before the rates are looked at.
    pub min_calls: u32,
    /// How long it stays open before letting probes through.
    pub open_for: SimDuration,
    /// Probes let through half open.
    pub half_open_calls: u32,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail at once.
    Open,
    /// A few probes go through; their outcomes decide.
    HalfOpen,
}

impl BreakerState {
    /// The state's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket of time it counts (time / bucket width).
    epoch: u64,
    calls: u32,
    failed: u32,
    slow: u32,
}

/// One breaker's state.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    /// When it opened (while open).
    opened_at: SimTime,
    /// Probes let through since half open, and their outcomes so far.
    probes: u32,
    probe_outcomes: u32,
    probe_failed: u32,
    probe_slow: u32,
    bucket_ns: u64,
    buckets: [Bucket; BUCKETS],
}

/// What a breaker says of a call about to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It may go.
    Go,
    /// It fails at once.
    Refuse,
}

impl Breaker {
    /// A closed breaker with `params`' window.
    pub fn new(params: &BreakerParams) -> Self {
        Breaker {
            state: BreakerState::Closed,
            opened_at: SimTime(0),
            probes: 0,
            probe_outcomes: 0,
            probe_failed: 0,
            probe_slow: 0,
            bucket_ns: (params.window.0 / BUCKETS as u64).max(1),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// Its state now (an open breaker whose time is up is half open from its next call).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// A call is about to leave at `now`: may it? Returns the new state when asking changed
    /// it (open to half open).
    pub fn admit(&mut self, params: &BreakerParams, now: SimTime) -> (Admit, Option<BreakerState>) {
        match self.state {
            BreakerState::Closed => (Admit::Go, None),
            BreakerState::Open => {
                if now.since(self.opened_at) < params.open_for {
                    return (Admit::Refuse, None);
                }
                self.state = BreakerState::HalfOpen;
                self.probes = 1;
                self.probe_outcomes = 0;
                self.probe_failed = 0;
                self.probe_slow = 0;
                (Admit::Go, Some(BreakerState::HalfOpen))
            }
            BreakerState::HalfOpen => {
                if self.probes < params.half_open_calls {
                    self.probes += 1;
                    (Admit::Go, None)
                } else {
                    (Admit::Refuse, None)
                }
            }
        }
    }

    /// An attempt that left at `sent` ended at `now`, failed or not. Returns the new state
    /// when this outcome changed it.
    pub fn record(
        &mut self,
        params: &BreakerParams,
        sent: SimTime,
        now: SimTime,
        failed: bool,
    ) -> Option<BreakerState> {
        let slow = params.slow_call.is_some_and(|s| now.since(sent) >= s);
        match self.state {
            BreakerState::Closed => {
                let epoch = now.0 / self.bucket_ns;
                let b = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
                if b.epoch != epoch {
                    *b = Bucket {
                        epoch,
                        ..Bucket::default()
                    };
                }
                b.calls += 1;
                b.failed += u32::from(failed);
                b.slow += u32::from(slow);
                let (mut calls, mut fails, mut slows) = (0u32, 0u32, 0u32);
                for b in &self.buckets {
                    if b.calls > 0 && b.epoch + (BUCKETS as u64) > epoch {
                        calls += b.calls;
                        fails += b.failed;
                        slows += b.slow;
                    }
                }
                if calls >= params.min_calls && trips(params, calls, fails, slows) {
                    self.open(now);
                    return Some(BreakerState::Open);
                }
                None
            }
            // An attempt that left before the breaker opened: it no longer counts.
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                self.probe_outcomes += 1;
                self.probe_failed += u32::from(failed);
                self.probe_slow += u32::from(slow);
                if self.probe_outcomes < params.half_open_calls {
                    return None;
                }
                let (n, f, s) = (self.probe_outcomes, self.probe_failed, self.probe_slow);
                if trips(params, n, f, s) {
                    self.open(now);
                    Some(BreakerState::Open)
                } else {
                    self.state = BreakerState::Closed;
                    self.buckets = [Bucket::default(); BUCKETS];
                    Some(BreakerState::Closed)
                }
            }
        }
    }

    fn open(&mut self, now: SimTime) {
        self.state = BreakerState::Open;
        self.opened_at = now;
    }
}

/// True when `failed` (or `slow`) of `calls` reach the breaker's rates.
fn trips(params: &BreakerParams, calls: u32, failed: u32, slow: u32) -> bool {
    let n = f64::from(calls.max(1));
    f64::from(failed) / n >= params.failure_rate
        || (params.slow_call.is_some() && f64::from(slow) / n >= params.slow_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn params() -> BreakerParams {
        BreakerParams {
            failure_rate: 0.5,
            slow_call: Some(SimDuration(100 * MS)),
            slow_rate: 0.8,
            window: SimDuration(1000 * MS),
            min_calls: 4,
            open_for: SimDuration(500 * MS),
            half_open_calls: 2,
        }
    }

    #[test]
    fn opens_at_the_failure_rate_once_min_calls_were_made() {
        let p = params();
        let mut b = Breaker::new(&p);
        let t = |ms| SimTime(ms * MS);
        // Three failures: under min_calls.
        for i in 0..3 {
            assert_eq!(b.record(&p, t(i), t(i + 1), true), None);
        }
        assert_eq!(b.record(&p, t(3), t(4), false), Some(BreakerState::Open));
        assert_eq!(b.admit(&p, t(100)), (Admit::Refuse, None));
        // Half open after open_for; two probes, a third refused.
        assert_eq!(
            b.admit(&p, t(504)),
            (Admit::Go, Some(BreakerState::HalfOpen))
        );
        assert_eq!(b.admit(&p, t(505)), (Admit::Go, None));
        assert_eq!(b.admit(&p, t(506)), (Admit::Refuse, None));
        assert_eq!(b.record(&p, t(504), t(510), false), None);
        assert_eq!(
            b.record(&p, t(505), t(511), false),
            Some(BreakerState::Closed)
        );
        // Closed with a clean window.
        assert_eq!(b.record(&p, t(512), t(513), true), None);
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_old_outcomes_leave_the_window() {
        let p = params();
        let mut b = Breaker::new(&p);
        let t = |ms| SimTime(ms * MS);
        // Two failures long ago, then two successes: 2 of 4 in the window would trip, but
        // the old ones left it.
        b.record(&p, t(0), t(1), true);
        b.record(&p, t(0), t(2), true);
        assert_eq!(b.record(&p, t(2000), t(2001), false), None);
        assert_eq!(b.record(&p, t(2000), t(2002), false), None);
        assert_eq!(b.state(), BreakerState::Closed);
        // Slow calls: 4 of 4 slow opens it.
        let mut b = Breaker::new(&p);
        for i in 0..3 {
            assert_eq!(b.record(&p, t(i), t(i + 200), false), None);
        }
        assert_eq!(b.record(&p, t(3), t(203), false), Some(BreakerState::Open));
        assert_eq!(
            b.admit(&p, t(703)),
            (Admit::Go, Some(BreakerState::HalfOpen))
        );
        b.admit(&p, t(703));
        assert_eq!(b.record(&p, t(703), t(704), true), None);
        assert_eq!(
            b.record(&p, t(703), t(705), false),
            Some(BreakerState::Open)
        );
        assert_eq!(b.admit(&p, t(706)), (Admit::Refuse, None));
    }
}
