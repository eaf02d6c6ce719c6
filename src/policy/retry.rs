//! Retries: the `retries` block of a model file (shared by a workload's clients and by a
//! component's call policies), its validation, the backoff between attempts and the retry
//! budget.
//!
//! A [`RetrySpec`] is what the file says; [`validate`] checks every field at its path and
//! gives a [`RetryPolicy`]: how many retries at most, after which error causes, how long to
//! wait before retry number k ([`RetryPolicy::backoff`], with the jitter of the AWS
//! architecture blog's "Exponential Backoff And Jitter"), and, when the block has a
//! `budget`, the parameters of a [`RetryBudget`] (Finagle's `RetryBudget`: a token bucket in
//! which every first attempt deposits `ratio` of a token and every retry withdraws one, over
//! a sliding window `ttl`, plus a reserve of `min_per_s` retries per second).
//!
//! Nothing here allocates per event: the policy is a few numbers and a bit set of causes,
//! the budget a fixed ring of counters; the caller owns the random stream the jitter draws
//! from (one of its own, so adding retries moves no other draw).

use crate::error::{Errors, did_you_mean, join, num, quoted};
use crate::metrics::ErrorCause;
use crate::random::Rng;
use crate::time::{DurationSpec, SimDuration, SimTime};
use rand::RngExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest `max` a policy may have.
pub const MAX_RETRIES: u32 = 100;

/// Retries as written in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries after the first attempt, 0 to 100 (default 3): a request is tried at most
    /// `max` + 1 times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Error causes that are retried (default: timeout, queue_full, queue_timeout,
    /// unavailable, crashed, refused, injected, partitioned, shed; not circuit_open,
    /// rate_limited, pool_timeout, bulkhead_full, deadline_exceeded: those are the caller's
    /// own protection or a caller that gave up, and retrying them defeats them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
    /// Wait before retry k: `base` × `multiplier`^(k−1), at most `cap`, then jittered
    /// (default: base 10ms, multiplier 2, no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    /// Randomisation of the wait (default "full").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
    /// A retry budget: retries at most a share of first attempts (default: none, every
    /// failure allowed by `max` and `on` is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
}

/// Exponential backoff with a cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    /// Wait before the first retry (default 10ms; may be 0: retry at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<DurationSpec>,
    /// Growth of the wait per retry, >= 1 (default 2; 1 is a constant backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Longest wait, >= base (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<DurationSpec>,
}

/// How the wait before a retry is randomised (AWS architecture blog, "Exponential Backoff
/// And Jitter"), with `e` = min(cap, base × multiplier^(k−1)) for retry k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `e`.
    None,
    /// Uniform in [0, e].
    Full,
    /// e/2 plus uniform in [0, e/2].
    Equal,
    /// Uniform in [base, 3 × the previous wait] (the first: base), at most cap; the
    /// multiplier is not used.
    Decorrelated,
}

impl Jitter {
    /// Name in model files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

/// A retry budget as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Share of first attempts that may be retried, in (0, 1] (default 0.2): each first
    /// attempt deposits `ratio` of a token, each retry takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Retries per second allowed on top of the ratio, >= 0 (default 10): a reserve of
    /// `min_per_s` × `ttl` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_per_s: Option<f64>,
    /// Deposits and withdrawals count for this long (default 10s, > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationSpec>,
}

/// Defaults of a [`RetrySpec`].
pub mod defaults {
    /// Retries after the first attempt.
    pub const MAX: u32 = 3;
    /// Backoff base, in nanoseconds (10 ms).
    pub const BASE_NS: f64 = 10e6;
    /// Backoff multiplier.
    pub const MULTIPLIER: f64 = 2.0;
    /// Budget ratio (Finagle's default percentCanRetry).
    pub const RATIO: f64 = 0.2;
    /// Budget reserve, retries per second (Finagle's default minRetriesPerSec).
    pub const MIN_PER_S: f64 = 10.0;
    /// Budget window, in nanoseconds (10 s, Finagle's default ttl).
    pub const TTL_NS: f64 = 10e9;
}

/// The causes retried when `on` is not given.
pub const DEFAULT_ON: [ErrorCause; 9] = [
    ErrorCause::Timeout,
    ErrorCause::QueueFull,
    ErrorCause::QueueTimeout,
    ErrorCause::Unavailable,
    ErrorCause::Crashed,
    ErrorCause::Refused,
    ErrorCause::Injected,
    ErrorCause::Partitioned,
    ErrorCause::Shed,
];

/// Longest wait a backoff gives, in nanoseconds (about 146 years: "never" for a run).
const LONGEST_NS: f64 = (1u64 << 62) as f64;

/// A validated retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max: u32,
    /// Bit `c as u8` set: cause `c` is retried.
    on: u32,
    /// Backoff base, nanoseconds.
    base_ns: f64,
    /// Backoff growth per retry.
    multiplier: f64,
    /// Longest wait, nanoseconds (huge without a cap).
    cap_ns: f64,
    /// Randomisation.
    pub jitter: Jitter,
    /// The budget's parameters, if any.
    pub budget: Option<BudgetParams>,
}

/// The validated parameters of a retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetParams {
    /// Share of first attempts that may be retried.
    pub ratio: f64,
    /// Retries per second allowed on top of the ratio.
    pub min_per_s: f64,
    /// Window of deposits and withdrawals.
    pub ttl: SimDuration,
}

impl RetryPolicy {
    /// A policy of `max` retries on the default causes, backoff `base` × `multiplier`^(k−1)
    /// without cap, the given jitter and no budget.
    pub fn new(max: u32, base: SimDuration, multiplier: f64, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max,
            on: mask(&DEFAULT_ON),
            base_ns: base.0 as f64,
            multiplier,
            cap_ns: LONGEST_NS,
            jitter,
            budget: None,
        }
    }

    /// True when a failure of this cause is retried.
    #[inline]
    pub fn retries_on(&self, cause: ErrorCause) -> bool {
        self.on & (1 << cause as u32) != 0
    }

    /// The causes retried, in report order.
    pub fn causes(&self) -> impl Iterator<Item = ErrorCause> + '_ {
        ErrorCause::ALL.into_iter().filter(|c| self.retries_on(*c))
    }

    /// The wait before retry number `retry_number` (1 for the first retry), given the wait
    /// before the previous one (`previous`, used by decorrelated jitter; anything for the
    /// first retry), drawing from `rng` (no draw with jitter "none").
    pub fn backoff(&self, retry_number: u32, previous: SimDuration, rng: &mut Rng) -> SimDuration {
        let ns = match self.jitter {
            Jitter::None => self.exponential_ns(retry_number),
            Jitter::Full => self.exponential_ns(retry_number) * rng.random::<f64>(),
            Jitter::Equal => {
                let e = self.exponential_ns(retry_number);
                e / 2.0 + e / 2.0 * rng.random::<f64>()
            }
            Jitter::Decorrelated => {
                let prev = if retry_number <= 1 {
                    self.base_ns
                } else {
                    previous.0 as f64
                };
                let hi = (prev * 3.0).max(self.base_ns);
                let d = self.base_ns + (hi - self.base_ns) * rng.random::<f64>();
                d.min(self.cap_ns)
            }
        };
        SimDuration::from_nanos_f64(ns.min(LONGEST_NS))
    }

    /// min(cap, base × multiplier^(k−1)) in nanoseconds: the wait before retry k without
    /// jitter.
    fn exponential_ns(&self, retry_number: u32) -> f64 {
        let k = retry_number.max(1) - 1;
        let e = self.base_ns * self.multiplier.powi(k as i32);
        e.min(self.cap_ns).min(LONGEST_NS)
    }

    /// The mean wait before retry k without jitter (for reports and tests), in nanoseconds.
    pub fn mean_wait_ns(&self, retry_number: u32) -> f64 {
        let e = self.exponential_ns(retry_number);
        match self.jitter {
            Jitter::None => e,
            Jitter::Full => e / 2.0,
            Jitter::Equal => 0.75 * e,
            // Depends on the previous draw: no closed form here.
            Jitter::Decorrelated => f64::NAN,
        }
    }

    /// A fresh budget for one caller, if the policy has one.
    pub fn new_budget(&self) -> Option<RetryBudget> {
        self.budget.map(RetryBudget::new)
    }
}

fn mask(causes: &[ErrorCause]) -> u32 {
    causes.iter().fold(0, |m, c| m | 1 << *c as u32)
}

/// Validates a `retries` block at `path` (e.g. `workloads.shoppers.retries`), recording
/// every problem with its field's path.
pub fn validate(errs: &mut Errors, path: &str, spec: &RetrySpec) -> Option<RetryPolicy> {
    let before = errs.len();
    let max = spec.max.unwrap_or(defaults::MAX);
    if max > MAX_RETRIES {
        errs.push(
            join(path, "max"),
            format!("must be at most {MAX_RETRIES} retries, got {max}"),
        );
    }
    let on = match &spec.on {
        None => mask(&DEFAULT_ON),
        Some(names) => {
            let on_path = join(path, "on");
            let mut m = 0;
            for (i, name) in names.iter().enumerate() {
                match ErrorCause::ALL.iter().find(|c| c.name() == name) {
                    Some(c) => m |= 1 << *c as u32,
                    None => errs.push(
                        crate::error::index(&on_path, i),
                        format!(
                            "unknown error cause \"{name}\"{} (causes: {})",
                            did_you_mean(name, ErrorCause::ALL.iter().map(|c| c.name())),
                            quoted(ErrorCause::ALL.iter().map(|c| c.name()))
                        ),
                    ),
                }
            }
            if names.is_empty() {
                errs.push(
                    on_path,
                    "lists no error cause: nothing would be retried (give \"max\": 0 instead)",
                );
            }
            m
        }
    };
    let b = spec.backoff.clone().unwrap_or(BackoffSpec {
        base: None,
        multiplier: None,
        cap: None,
    });
    let bpath = join(path, "backoff");
    let base_ns = b.base.map_or(defaults::BASE_NS, |d| d.nanos());
    let multiplier = b.multiplier.unwrap_or(defaults::MULTIPLIER);
    if !(multiplier.is_finite() && multiplier >= 1.0) {
        errs.push(
            join(&bpath, "multiplier"),
            format!(
                "must be at least 1 (1 is a constant backoff), got {}",
                num(multiplier)
            ),
        );
    }
    let cap_ns = match b.cap {
        None => LONGEST_NS,
        Some(c) => {
            if c.nanos() < base_ns {
                errs.push(
                    join(&bpath, "cap"),
                    format!(
                        "must be at least the base ({}), got {}",
                        crate::time::format_duration_nanos(base_ns),
                        crate::time::format_duration_nanos(c.nanos())
                    ),
                );
            }
            c.nanos().min(LONGEST_NS)
        }
    };
    let budget = spec.budget.as_ref().map(|bs| {
        let p = join(path, "budget");
        let ratio = bs.ratio.unwrap_or(defaults::RATIO);
        if !(ratio > 0.0 && ratio <= 1.0) {
            errs.push(
                join(&p, "ratio"),
                format!("must be in (0, 1], got {}", num(ratio)),
            );
        }
        let min_per_s = bs.min_per_s.unwrap_or(defaults::MIN_PER_S);
        if !(min_per_s.is_finite() && min_per_s >= 0.0) {
            errs.push(
                join(&p, "min_per_s"),
                format!("must be at least 0, got {}", num(min_per_s)),
            );
        }
        let ttl_ns = bs.ttl.map_or(defaults::TTL_NS, |d| d.nanos());
        if ttl_ns < SLOTS as f64 {
            errs.push(
                join(&p, "ttl"),
                format!(
                    "must be longer than zero (at least {SLOTS}ns), got {}",
                    crate::time::format_duration_nanos(ttl_ns)
                ),
            );
        }
        BudgetParams {
            ratio,
            min_per_s,
            ttl: SimDuration::from_nanos_f64(ttl_ns),
        }
    });
    (errs.len() == before).then_some(RetryPolicy {
        max,
        on,
        base_ns,
        multiplier,
        cap_ns,
        jitter: spec.jitter.unwrap_or(Jitter::Full),
        budget,
    })
}

/// Slots of a budget's sliding window.
const SLOTS: usize = 10;
/// Fixed-point units of one token.
const TOKEN: i64 = 1_000_000;

/// The state of one caller's retry budget (Finagle's `RetryBudget`): the balance is the
/// reserve (`min_per_s` × `ttl` tokens) plus the deposits less the withdrawals of the last
/// `ttl` (a ring of ten slots of `ttl`/10 each, so it forgets in steps of a tenth). A retry
/// may go when the balance holds a whole token. Integer arithmetic in millionths of a token:
/// no drift, no allocation.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    /// Net deposits per slot, in millionths of a token.
    slots: [i64; SLOTS],
    /// Index (time / slot length) of the newest slot.
    epoch: u64,
    /// Length of a slot, nanoseconds.
    slot_ns: u64,
    /// What a first attempt deposits.
    deposit: i64,
    /// The reserve.
    reserve: i64,
}

impl RetryBudget {
    /// An empty budget (its balance is the reserve) at time zero.
    pub fn new(p: BudgetParams) -> RetryBudget {
        let slot_ns = (p.ttl.0 / SLOTS as u64).max(1);
        let ttl_s = (slot_ns * SLOTS as u64) as f64 / 1e9;
        RetryBudget {
            slots: [0; SLOTS],
            epoch: 0,
            slot_ns,
            deposit: (p.ratio * TOKEN as f64).round() as i64,
            reserve: (p.min_per_s * ttl_s * TOKEN as f64).round() as i64,
        }
    }

    /// Moves the window to `now`: slots older than `ttl` are forgotten.
    #[inline]
    fn advance(&mut self, now: SimTime) {
        let e = now.0 / self.slot_ns;
        if e <= self.epoch {
            return;
        }
        if e - self.epoch >= SLOTS as u64 {
            self.slots = [0; SLOTS];
        } else {
            for k in self.epoch + 1..=e {
                self.slots[(k % SLOTS as u64) as usize] = 0;
            }
        }
        self.epoch = e;
    }

    /// A first attempt at `now` deposits `ratio` of a token.
    #[inline]
    pub fn deposit(&mut self, now: SimTime) {
        self.advance(now);
        self.slots[(self.epoch % SLOTS as u64) as usize] += self.deposit;
    }

    /// `n` first attempts sent between `from` and `now`, evenly spread over that time,
    /// deposit: each slot of the window gets its share (those older than `ttl` are
    /// forgotten at once). For a caller that learns of its first attempts in bulk.
    pub fn deposit_spread(&mut self, from: SimTime, now: SimTime, n: u64) {
        self.advance(now);
        if n == 0 {
            return;
        }
        let total = self.deposit as f64 * n as f64;
        let span = now.0.saturating_sub(from.0);
        if span == 0 {
            self.slots[(self.epoch % SLOTS as u64) as usize] += total.round() as i64;
            return;
        }
        let first = (from.0 / self.slot_ns).max(self.epoch.saturating_sub(SLOTS as u64 - 1));
        for e in first..=self.epoch {
            let lo = (e * self.slot_ns).max(from.0);
            let hi = ((e + 1) * self.slot_ns).min(now.0);
            if hi > lo {
                let share = (hi - lo) as f64 / span as f64;
                self.slots[(e % SLOTS as u64) as usize] += (total * share).round() as i64;
            }
        }
    }

    /// A retry at `now` takes a token if the balance holds one; false: no token, the
    /// failure goes back as it is (`budget_exhausted`).
    #[inline]
    pub fn try_withdraw(&mut self, now: SimTime) -> bool {
        self.advance(now);
        if self.balance_units() >= TOKEN {
            self.slots[(self.epoch % SLOTS as u64) as usize] -= TOKEN;
            true
        } else {
            false
        }
    }

    /// Gives back the token a withdrawal at `now` took (what it was for did not happen).
    pub fn refund(&mut self, now: SimTime) {
        self.advance(now);
        self.slots[(self.epoch % SLOTS as u64) as usize] += TOKEN;
    }

    fn balance_units(&self) -> i64 {
        self.reserve + self.slots.iter().sum::<i64>()
    }

    /// Tokens available at `now` (for reports and tests).
    pub fn balance(&mut self, now: SimTime) -> f64 {
        self.advance(now);
        self.balance_units() as f64 / TOKEN as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::stream;

    fn spec(json: &str) -> RetrySpec {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str) -> Result<RetryPolicy, Vec<String>> {
        let mut errs = Errors::new();
        match validate(&mut errs, "workloads.w.retries", &spec(json)) {
            Some(p) => Ok(p),
            None => Err(errs.into_vec().iter().map(|e| e.to_string()).collect()),
        }
    }

    fn ms(x: f64) -> SimDuration {
        SimDuration::from_nanos_f64(x * 1e6)
    }

    /// Mean, min and max of n draws of retry k's wait, in ms.
    fn draws(p: &RetryPolicy, k: u32, n: usize) -> (f64, f64, f64) {
        let mut rng = stream(7, "test:retry");
        let (mut sum, mut lo, mut hi) = (0.0, f64::INFINITY, 0.0f64);
        let mut prev = SimDuration::ZERO;
        for _ in 0..n {
            let d = p.backoff(k, prev, &mut rng).as_millis_f64();
            prev = SimDuration::from_nanos_f64(d * 1e6);
            sum += d;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        (sum / n as f64, lo, hi)
    }

    #[test]
    fn defaults() {
        let p = check("{}").unwrap();
        assert_eq!(p.max, 3);
        assert_eq!(p.jitter, Jitter::Full);
        assert!(p.budget.is_none());
        let on: Vec<&str> = p.causes().map(|c| c.name()).collect();
        assert_eq!(
            on,
            [
                "timeout",
                "queue_full",
                "queue_timeout",
                "unavailable",
                "crashed",
                "refused",
                "injected",
                "partitioned",
                "shed"
            ]
        );
        assert!(!p.retries_on(ErrorCause::CircuitOpen));
        assert!(!p.retries_on(ErrorCause::DeadlineExceeded));
        assert_eq!(p.mean_wait_ns(1), 5e6);
        let b = check(r#"{"budget": {}}"#).unwrap().budget.unwrap();
        assert_eq!((b.ratio, b.min_per_s), (0.2, 10.0));
        assert_eq!(b.ttl, SimDuration(10_000_000_000));
    }

    #[test]
    fn no_jitter_is_exponential_with_a_cap() {
        let p = check(
            r#"{"backoff": {"base": "10ms", "multiplier": 2, "cap": "50ms"}, "jitter": "none"}"#,
        )
        .unwrap();
        let mut rng = stream(1, "x");
        let waits: Vec<f64> = (1..=6)
            .map(|k| p.backoff(k, SimDuration::ZERO, &mut rng).as_millis_f64())
            .collect();
        assert_eq!(waits, [10.0, 20.0, 40.0, 50.0, 50.0, 50.0]);
        // Constant backoff.
        let c =
            check(r#"{"backoff": {"base": "7ms", "multiplier": 1}, "jitter": "none"}"#).unwrap();
        assert_eq!(c.backoff(9, SimDuration::ZERO, &mut rng), ms(7.0));
        // 100 retries of multiplier 10 saturate instead of overflowing.
        let h = check(r#"{"max": 100, "backoff": {"multiplier": 10}, "jitter": "none"}"#).unwrap();
        assert_eq!(
            h.backoff(100, SimDuration::ZERO, &mut rng),
            SimDuration(1 << 62)
        );
    }

    #[test]
    fn full_jitter_is_uniform_up_to_the_exponential() {
        let p = check(r#"{"backoff": {"base": "10ms", "cap": "30ms"}, "jitter": "full"}"#).unwrap();
        let (mean, lo, hi) = draws(&p, 2, 20_000);
        assert!((mean - 10.0).abs() < 0.2, "mean {mean}");
        assert!(
            (0.0..0.1).contains(&lo) && hi <= 20.0 && hi > 19.9,
            "{lo} {hi}"
        );
        // Capped: uniform in [0, 30].
        let (mean, _, hi) = draws(&p, 4, 20_000);
        assert!(
            (mean - 15.0).abs() < 0.3 && hi <= 30.0,
            "mean {mean} hi {hi}"
        );
    }

    #[test]
    fn equal_jitter_keeps_half() {
        let p = check(r#"{"backoff": {"base": "8ms"}, "jitter": "equal"}"#).unwrap();
        let (mean, lo, hi) = draws(&p, 3, 20_000);
        // e = 32 ms: uniform in [16, 32].
        assert!((mean - 24.0).abs() < 0.3, "mean {mean}");
        assert!(
            (16.0..16.1).contains(&lo) && hi <= 32.0 && hi > 31.9,
            "{lo} {hi}"
        );
        assert_eq!(p.mean_wait_ns(3), 24e6);
    }

    #[test]
    fn decorrelated_jitter_grows_from_the_previous_wait() {
        let p = check(r#"{"backoff": {"base": "10ms", "cap": "1s"}, "jitter": "decorrelated"}"#)
            .unwrap();
        let mut rng = stream(3, "d");
        // The first retry: uniform in [base, 3 base].
        let mut sum = 0.0;
        for _ in 0..20_000 {
            let d = p.backoff(1, SimDuration(123), &mut rng).as_millis_f64();
            assert!((10.0..=30.0).contains(&d));
            sum += d;
        }
        assert!((sum / 20_000.0 - 20.0).abs() < 0.3);
        // Later: uniform in [base, 3 × previous], mean (base + 3 prev) / 2.
        let mut sum = 0.0;
        for _ in 0..20_000 {
            let d = p.backoff(4, ms(100.0), &mut rng).as_millis_f64();
            assert!((10.0..=300.0).contains(&d));
            sum += d;
        }
        assert!((sum / 20_000.0 - 155.0).abs() < 3.0);
        // The cap holds.
        for _ in 0..1000 {
            assert!(p.backoff(5, ms(900.0), &mut rng) <= ms(1000.0));
        }
    }

    #[test]
    fn budget_allows_ratio_of_deposits_plus_the_reserve() {
        let p = BudgetParams {
            ratio: 0.1,
            min_per_s: 0.0,
            ttl: SimDuration::from_secs_f64(10.0),
        };
        let mut b = RetryBudget::new(p);
        let t = SimTime(1_000_000_000);
        assert!(!b.try_withdraw(t), "empty without a reserve");
        for _ in 0..25 {
            b.deposit(t);
        }
        assert!((b.balance(t) - 2.5).abs() < 1e-9);
        assert!(b.try_withdraw(t));
        assert!(b.try_withdraw(t));
        assert!(!b.try_withdraw(t), "half a token left");
        assert!((b.balance(t) - 0.5).abs() < 1e-9);
        // Ten seconds later the deposits and withdrawals have expired.
        assert_eq!(b.balance(SimTime(11_000_000_001)), 0.0);

        // A reserve of 2 per second over 10 s: 20 retries with no deposit.
        let mut r = RetryBudget::new(BudgetParams {
            ratio: 0.5,
            min_per_s: 2.0,
            ttl: SimDuration::from_secs_f64(10.0),
        });
        let n = (0..100).filter(|_| r.try_withdraw(t)).count();
        assert_eq!(n, 20);
        // Withdrawals expire too: the reserve is back after the window.
        let later = SimTime(t.0 + 10_000_000_000);
        assert_eq!(r.balance(later), 20.0);
        // In steady state retries are at most ratio × requests (+ reserve per window).
        let mut s = RetryBudget::new(BudgetParams {
            ratio: 0.2,
            min_per_s: 0.0,
            ttl: SimDuration::from_secs_f64(1.0),
        });
        let (mut requests, mut retries) = (0, 0);
        for i in 0..100_000u64 {
            let now = SimTime(i * 1_000_000); // one request per ms for 100 s
            s.deposit(now);
            requests += 1;
            // Every request wants three retries.
            for _ in 0..3 {
                retries += s.try_withdraw(now) as u64;
            }
        }
        let share = retries as f64 / requests as f64;
        assert!((share - 0.2).abs() < 0.001, "share {share}");
    }

    #[test]
    fn deposits_spread_over_time_keep_only_the_window() {
        let p = BudgetParams {
            ratio: 0.5,
            min_per_s: 0.0,
            ttl: SimDuration::from_secs_f64(10.0),
        };
        // 40 requests over the last 4 s: 20 tokens.
        let mut b = RetryBudget::new(p);
        b.deposit_spread(SimTime(6_000_000_000), SimTime(10_000_000_000), 40);
        assert!((b.balance(SimTime(10_000_000_000)) - 20.0).abs() < 1e-6);
        // 100 requests from 0.5 s to 20.5 s: only the window's slots count, from 11 s on
        // (47.5 requests, 23.75 tokens).
        let mut b = RetryBudget::new(p);
        b.deposit_spread(SimTime(500_000_000), SimTime(20_500_000_000), 100);
        assert!((b.balance(SimTime(20_500_000_000)) - 23.75).abs() < 1e-6);
        // And they expire with their slots: 5 s later those from 16 s on are left.
        assert!((b.balance(SimTime(25_500_000_000)) - 11.25).abs() < 1e-6);
        // All at one instant.
        let mut b = RetryBudget::new(p);
        b.deposit_spread(SimTime(3), SimTime(3), 4);
        assert!((b.balance(SimTime(3)) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_bad_fields_with_their_paths() {
        let e = check(r#"{"max": 101}"#).unwrap_err();
        assert_eq!(
            e,
            ["workloads.w.retries.max: must be at most 100 retries, got 101"]
        );
        let e = check(r#"{"on": ["timout", "refused"]}"#).unwrap_err();
        assert!(
            e[0].starts_with("workloads.w.retries.on[0]: unknown error cause \"timout\"; did you mean \"timeout\"?"),
            "{e:?}"
        );
        let e = check(r#"{"backoff": {"multiplier": 0.5}}"#).unwrap_err();
        assert!(e[0].starts_with("workloads.w.retries.backoff.multiplier: must be at least 1"));
        let e = check(r#"{"backoff": {"base": "1s", "cap": "10ms"}}"#).unwrap_err();
        assert!(e[0].starts_with("workloads.w.retries.backoff.cap: must be at least the base"));
        let e = check(r#"{"budget": {"ratio": 1.5, "min_per_s": -1, "ttl": "0s"}}"#).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(
            e[0],
            "workloads.w.retries.budget.ratio: must be in (0, 1], got 1.5"
        );
        assert!(e[1].starts_with("workloads.w.retries.budget.min_per_s:"));
        assert!(e[2].starts_with("workloads.w.retries.budget.ttl:"));
        assert!(check(r#"{"budget": {"ratio": 0}}"#).is_err());
        assert!(check(r#"{"on": []}"#).is_err());
        // Serde refuses unknown fields, unknown jitters and negative durations.
        assert!(serde_json::from_str::<RetrySpec>(r#"{"tries": 3}"#).is_err());
        let j = serde_json::from_str::<RetrySpec>(r#"{"jitter": "fuzzy"}"#).unwrap_err();
        assert!(j.to_string().contains("unknown variant"), "{j}");
        let n = serde_json::from_str::<RetrySpec>(r#"{"backoff": {"base": "-5ms"}}"#).unwrap_err();
        assert!(n.to_string().contains("negative"), "{n}");
    }
}
