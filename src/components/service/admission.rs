//! Admission control of a service: what it turns away, and when, so that the work it
//! does is work someone still waits for.
//!
//! - a rate limit (a token bucket per instance): an arrival finding no token fails at
//!   once, `rate_limited`;
//! - shedding by queue length (an arrival finding `queue_length` requests waiting fails
//!   at once, `shed`) and by age (a request that waited longer than `wait` is shed when a
//!   worker would take it);
//! - adaptive LIFO: newest first while the queue is longer than a threshold (see
//!   [`WaitQueue`](super::WaitQueue));
//! - deadlines: a call whose caller has given up ([`Ctx::caller_gave_up`]) is dropped at
//!   dequeue, and with "abort" also between the steps of its handler (a
//!   [`Step::Check`](super::Step::Check) before each step after the first),
//!   `deadline_exceeded`.
//!
//! A service that uses none of this has no [`Admission`] and runs exactly as before: its
//! instance tests one flag it already tested on arrival and at dequeue.

use super::Step;
use super::spec::{DeadlinesSpec, RateLimitSpec, ShedSpec};
use crate::error::{Errors, join, num};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::time::{SimDuration, SimTime};

/// What a service does with a call whose caller has given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deadlines {
    /// Serve it anyway (the work is wasted).
    #[default]
    Ignore,
    /// Drop it when a worker would take it from the queue.
    Drop,
    /// Drop it at dequeue, and stop its handler between steps.
    Abort,
}

/// A token bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub rate: f64,
    /// Tokens the bucket holds (full at the start).
    pub burst: u32,
}

/// The admission policies of a service (present only when it has at least one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Admission {
    /// Token bucket per instance on arrivals.
    pub rate_limit: Option<RateLimit>,
    /// An arrival finding this many waiting is shed.
    pub shed_queue_length: Option<u32>,
    /// A request that waited longer than this is shed at dequeue.
    pub shed_wait: Option<SimDuration>,
    /// Newest first while the queue is longer than this.
    pub adaptive_lifo: Option<u32>,
    /// What to do with calls whose caller gave up.
    pub deadlines: Deadlines,
}

impl Admission {
    /// True when an arrival is checked (a rate limit, or shedding by queue length).
    pub fn checks_arrivals(&self) -> bool {
        self.rate_limit.is_some() || self.shed_queue_length.is_some()
    }
    /// True when a request is checked as a worker takes it from the queue.
    pub fn checks_dequeue(&self) -> bool {
        self.shed_wait.is_some() || self.deadlines != Deadlines::Ignore
    }
}

/// A token bucket: `rate` tokens a second up to `burst`, full at the start; each
/// admitted arrival takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens per nanosecond.
    per_ns: f64,
    burst: f64,
    tokens: f64,
    last: SimTime,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> Self {
        TokenBucket {
            per_ns: limit.rate / 1e9,
            burst: f64::from(limit.burst),
            tokens: f64::from(limit.burst),
            last: SimTime::ZERO,
        }
    }

    /// Takes a token at `now` if there is one (true), after adding those earned since the
    /// last time.
    pub fn take(&mut self, now: SimTime) -> bool {
        let earned = now.since(self.last).0 as f64 * self.per_ns;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Validates a token bucket at `path` (a service's or a workload's `rate_limit`).
pub fn rate_limit(errs: &mut Errors, path: &str, s: &RateLimitSpec) -> Option<RateLimit> {
    let mut ok = true;
    if !(s.rate.is_finite() && s.rate > 0.0) {
        errs.push(
            join(path, "rate"),
            format!(
                "must be a number of tokens per second above 0, got {}",
                num(s.rate)
            ),
        );
        ok = false;
    }
    if s.burst == Some(0) {
        errs.push(join(path, "burst"), "must be at least 1, got 0");
        ok = false;
    }
    let burst = s
        .burst
        .unwrap_or_else(|| s.rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
    ok.then_some(RateLimit {
        rate: s.rate,
        burst,
    })
}

/// Validates a service's `shed` at `path`: (queue length, wait).
pub fn shed(errs: &mut Errors, path: &str, s: &ShedSpec) -> (Option<u32>, Option<SimDuration>) {
    if s.queue_length.is_none() && s.wait.is_none() {
        errs.push(
            path,
            "needs \"queue_length\" (requests waiting) or \"wait\" (a duration), or both",
        );
    }
    if s.queue_length == Some(0) {
        errs.push(
            join(path, "queue_length"),
            "must be at least 1, got 0 (a queue of capacity 0 refuses every wait)",
        );
    }
    let wait = s.wait.map(|w| w.to_sim());
    if wait == Some(SimDuration::ZERO) {
        errs.push(join(path, "wait"), "must be longer than zero");
    }
    (s.queue_length, wait)
}

/// The deadlines mode of a service.
pub fn deadlines(s: Option<DeadlinesSpec>) -> Deadlines {
    match s {
        None | Some(DeadlinesSpec::Ignore) => Deadlines::Ignore,
        Some(DeadlinesSpec::Drop) => Deadlines::Drop,
        Some(DeadlinesSpec::Abort) => Deadlines::Abort,
    }
}

/// The steps of a handler with a [`Step::Check`] before each step after the first that
/// does something (work, a call, a fan-out, a route), branch and jump targets moved to
/// the check before the step they pointed at.
pub fn with_checks(steps: Vec<Step>) -> Vec<Step> {
    let checked = |i: usize, s: &Step| i > 0 && !matches!(s, Step::Branch { .. } | Step::Jump(_));
    // Where old step i lands (its check when it has one); one past the end for the end.
    let mut at = Vec::with_capacity(steps.len() + 1);
    let mut n = 0usize;
    for (i, s) in steps.iter().enumerate() {
        at.push(n);
        n += if checked(i, s) { 2 } else { 1 };
    }
    at.push(n);
    // Validation refuses a handler longer than u16::MAX steps, checks included.
    let at: Vec<u16> = at.into_iter().map(|i| i as u16).collect();
    let mut out = Vec::with_capacity(n);
    for (i, s) in steps.into_iter().enumerate() {
        if checked(i, &s) {
            out.push(Step::Check);
        }
        out.push(match s {
            Step::Branch { hit, miss, after } => Step::Branch {
                hit: at[usize::from(hit)],
                miss: at[usize::from(miss)],
                after: at[usize::from(after)],
            },
            Step::Jump(to) => Step::Jump(at[usize::from(to)]),
            other => other,
        });
    }
    out
}

/// What a service with admission control reports besides [`super::METRICS`].
pub const ADMISSION_METRICS: [MetricDecl; 3] = [
    // Arrivals refused by the rate limit.
    MetricDecl::number("rate_limited", Count, Sum),
    // Arrivals shed by queue length and requests shed by age at dequeue.
    MetricDecl::number("shed", Count, Sum),
    // Calls dropped (at dequeue) or aborted (between steps) because their caller gave up.
    MetricDecl::number("deadline_exceeded", Count, Sum),
];

/// A service's metrics with admission control.
pub const METRICS_WITH_ADMISSION: &[MetricDecl] =
    &super::sessions::concat::<
        { super::METRICS.len() },
        { ADMISSION_METRICS.len() },
        { super::METRICS.len() + ADMISSION_METRICS.len() },
    >(super::sessions::as_array(super::METRICS), ADMISSION_METRICS);

/// A service's metrics with sessions and admission control.
pub const METRICS_WITH_SESSIONS_AND_ADMISSION: &[MetricDecl] = &super::sessions::concat::<
    { super::sessions::METRICS_WITH_SESSIONS.len() },
    { ADMISSION_METRICS.len() },
    { super::sessions::METRICS_WITH_SESSIONS.len() + ADMISSION_METRICS.len() },
>(
    super::sessions::as_array(super::sessions::METRICS_WITH_SESSIONS),
    ADMISSION_METRICS,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_its_rate() {
        let mut b = TokenBucket::new(RateLimit {
            rate: 100.0,
            burst: 5,
        });
        // Five at once, then nothing more at the same time.
        assert_eq!((0..8).filter(|_| b.take(at_ms(0))).count(), 5);
        // 100/s: one token every 10 ms.
        assert!(!b.take(at_ms(5)));
        assert!(b.take(at_ms(10)));
        assert!(!b.take(at_ms(10)));
        // A long pause refills it to the burst only.
        assert_eq!((0..8).filter(|_| b.take(at_ms(10_000))).count(), 5);
    }

    #[test]
    fn arrivals_at_twice_the_rate_pass_half() {
        let mut b = TokenBucket::new(RateLimit {
            rate: 100.0,
            burst: 10,
        });
        // 200/s for 10 s: 2,000 arrivals, 10 + 100 × 10 pass (the last arrival is at
        // 9.995 s: 999 tokens earned, 1,009 passed).
        let passed = (0..2000).filter(|i| b.take(SimTime(i * 5_000_000))).count();
        assert_eq!(passed, 1009);
    }

    #[test]
    fn checks_go_between_steps_and_branches_follow_them() {
        use crate::distributions::Distribution;
        let work = || Step::Work(Distribution::Constant { value_ns: 1.0 });
        let call = Step::Call { group: 1, op: 0 };
        // work, call, branch(hit 3, miss 5, after 6), work (hit), jump past, work (miss)
        let steps = vec![
            work(),
            call.clone(),
            Step::Branch {
                hit: 3,
                miss: 5,
                after: 6,
            },
            work(),
            Step::Jump(6),
            work(),
        ];
        let out = with_checks(steps);
        let kinds: Vec<&str> = out
            .iter()
            .map(|s| match s {
                Step::Work(_) => "work",
                Step::Call { .. } => "call",
                Step::Check => "check",
                Step::Branch { .. } => "branch",
                Step::Jump(_) => "jump",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "work", "check", "call", "branch", "check", "work", "jump", "check", "work"
            ]
        );
        assert!(matches!(
            out[3],
            Step::Branch {
                hit: 4,
                miss: 7,
                after: 9
            }
        ));
        assert!(matches!(out[6], Step::Jump(9)));
    }

    #[test]
    fn bad_settings_are_refused_at_their_path() {
        let mut errs = Errors::default();
        let bad = RateLimitSpec {
            rate: 0.0,
            burst: Some(0),
        };
        assert!(rate_limit(&mut errs, "components.app.rate_limit", &bad).is_none());
        let paths: Vec<String> = errs.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "components.app.rate_limit.rate",
                "components.app.rate_limit.burst"
            ]
        );
        let d = rate_limit(
            &mut Errors::default(),
            "p",
            &RateLimitSpec {
                rate: 2.5,
                burst: None,
            },
        );
        assert_eq!(d.map(|r| r.burst), Some(3));
    }
}
