//! Hedged requests: the `hedge` block of a call policy. An attempt that has had no reply
//! after a delay gets a second copy, sent to another instance of the callee; the first
//! reply answers the call, and the other copy is the loser (ignored, or with `cancel`
//! dropped by the callee if it has not started it). Dean and Barroso, "The Tail at Scale"
//! (CACM 2013): hedging after the 95th percentile cuts the tail for about 5% more load.
//!
//! The delay is fixed (`delay`), or a percentile of the reply times the caller has seen
//! on this edge (`after`), kept in a [`ReplyTimes`]: a fixed log-scale histogram, updated
//! in O(1) per reply, allocated when the run is built. A `max_extra` share caps the
//! hedges with a token bucket ([`super::retry::RetryBudget`], as a retry budget caps
//! retries): every call deposits `max_extra` of a token, every hedge takes one.

use crate::error::{Errors, join, num};
use crate::time::{DurationSpec, SimDuration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A hedge as written in a model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HedgeSpec {
    /// Wait this long for a reply before sending the second copy (> 0). With `after`: the
    /// floor of the delay, and the delay used until `min_replies` replies were seen.
    /// Required without `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationSpec>,
    /// Wait for this percentile of the reply times seen on the edge (`"p95"`, `"p99"`,
    /// `"p99.9"`: "p" and a number in (0, 100)), at least `delay` (default: none, the
    /// fixed `delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// With `after`: replies to see before the percentile is used (default 100, >= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replies: Option<u32>,
    /// Hedges may be at most this share of the calls, in (0, 1] (default: no cap, one
    /// hedge per attempt at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extra: Option<f64>,
    /// The losing copy is dropped by the callee (a service) if it is still in its queue,
    /// instead of being served and its reply ignored (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
}

/// Defaults of a [`HedgeSpec`].
pub mod defaults {
    /// Replies seen before the percentile is used.
    pub const MIN_REPLIES: u32 = 100;
}

/// A validated hedge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgePolicy {
    /// The fixed delay, or the floor and initial delay with a percentile.
    pub delay: SimDuration,
    /// The quantile of the reply times to wait for, in (0, 1) (`None`: the fixed delay).
    pub quantile: Option<f64>,
    /// Replies seen before the percentile is used.
    pub min_replies: u32,
    /// Hedges at most this share of the calls (`None`: no cap).
    pub max_extra: Option<f64>,
    /// The loser is dropped from the callee's queue if it has not started.
    pub cancel: bool,
}

impl HedgePolicy {
    /// The delay before a hedge, given the edge's reply times (with a percentile).
    #[inline]
    pub fn delay(&self, times: Option<&ReplyTimes>) -> SimDuration {
        match times {
            Some(t) if t.seen >= u64::from(self.min_replies) => {
                SimDuration(t.estimate_ns.max(self.delay.0))
            }
            _ => self.delay,
        }
    }
}

/// Validates a `hedge` block at `path`; `instances` is the callee's number of instances
/// (the largest an autoscaler may give it).
pub fn validate(
    errs: &mut Errors,
    path: &str,
    spec: &HedgeSpec,
    instances: Option<u32>,
) -> Option<HedgePolicy> {
    let before = errs.len();
    let quantile = spec
        .after
        .as_deref()
        .and_then(|a| match parse_percentile(a) {
            Some(q) => Some(q),
            None => {
                errs.push(
                    join(path, "after"),
                    format!(
                        "unknown percentile \"{a}\": write \"p\" and a number between 0 and 100 (excluded), such as \"p95\" or \"p99.9\""
                    ),
                );
                None
            }
        });
    let delay = match spec.delay {
        Some(d) => {
            let t = d.to_sim();
            if t.0 == 0 {
                errs.push(
                    join(path, "delay"),
                    format!(
                        "must be longer than zero (a hedge at once doubles every call), got \"{}\"",
                        crate::time::format_duration_nanos(d.nanos())
                    ),
                );
            }
            t
        }
        None if spec.after.is_some() => SimDuration(1_000_000),
        None => {
            errs.push(
                path,
                "needs a \"delay\" (such as \"20ms\") or \"after\" (such as \"p95\", with \"delay\" as its floor)",
            );
            SimDuration::ZERO
        }
    };
    let min_replies = spec.min_replies.unwrap_or(defaults::MIN_REPLIES);
    if min_replies == 0 {
        errs.push(join(path, "min_replies"), "must be at least 1, got 0");
    }
    if spec.min_replies.is_some() && spec.after.is_none() {
        errs.push(
            join(path, "min_replies"),
            "only counts with \"after\" (a fixed delay needs no replies)",
        );
    }
    if let Some(x) = spec.max_extra
        && !(x > 0.0 && x <= 1.0)
    {
        errs.push(
            join(path, "max_extra"),
            format!(
                "must be a share in (0, 1] (hedges per call; one attempt has one hedge at most), got {}",
                num(x)
            ),
        );
    }
    if let Some(n) = instances
        && n < 2
    {
        errs.push(
            path,
            "the callee has one instance: a hedge's copy needs another one to go to (give it replicas, or hedge the calls behind it: a balancer's calls_to its backends)",
        );
    }
    (errs.len() == before).then_some(HedgePolicy {
        delay,
        quantile,
        min_replies: min_replies.max(1),
        max_extra: spec.max_extra,
        cancel: spec.cancel.unwrap_or(false),
    })
}

/// The quantile in (0, 1) of a percentile name such as "p95" or "p99.9".
pub fn parse_percentile(name: &str) -> Option<f64> {
    let digits = name.strip_prefix('p')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let p: f64 = digits.parse().ok()?;
    (p > 0.0 && p < 100.0).then_some(p / 100.0)
}

/// Buckets per doubling of a [`ReplyTimes`] (a resolution of 1/8, 12.5%).
const SUB: u32 = 8;
/// Buckets in all: values 0 to 7 exactly, then 8 per power of two from 2^3 to 2^64.
const BUCKETS: usize = (SUB as usize) * 62;
/// Replies after which every count is halved: the estimate follows the last thousand or
/// two replies, so it moves when the callee slows down or recovers.
const HALF_LIFE: u32 = 1024;
/// Replies between two recomputations of the estimate.
const REFRESH: u32 = 32;

/// The reply times seen on one edge, for a hedge `after` a percentile: a log-scale
/// histogram of fixed size whose counts are halved every [`HALF_LIFE`] replies, and the
/// percentile recomputed every [`REFRESH`] replies (each reply costs an index computation
/// and an increment, plus a share of those scans: O(1)).
#[derive(Debug, Clone)]
pub struct ReplyTimes {
    counts: Box<[u32; BUCKETS]>,
    /// Sum of `counts`.
    total: u32,
    /// Replies since the last recomputation.
    since: u32,
    /// Replies seen over the run.
    seen: u64,
    quantile: f64,
    /// The current estimate of the percentile, nanoseconds.
    estimate_ns: u64,
}

#[inline]
fn bucket_of(ns: u64) -> usize {
    if ns < u64::from(SUB) {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros(); // >= 3
    let m = (ns >> (e - 3)) & u64::from(SUB - 1);
    ((e - 2) * SUB) as usize + m as usize
}

/// The middle of bucket `i`, nanoseconds.
fn middle_of(i: usize) -> u64 {
    let sub = SUB as usize;
    if i < sub {
        return i as u64;
    }
    let e = (i / sub) as u32 + 2;
    let m = (i % sub) as u64;
    let low = (8 + m) << (e - 3);
    low + (1u64 << (e - 3)) / 2
}

impl ReplyTimes {
    /// No reply seen; the estimate is of `quantile`.
    pub fn new(quantile: f64) -> Self {
        ReplyTimes {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            since: 0,
            seen: 0,
            quantile,
            estimate_ns: 0,
        }
    }

    /// A reply that took `ns`.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.total += 1;
        self.seen += 1;
        self.since += 1;
        if self.total >= 2 * HALF_LIFE {
            self.halve();
        }
        if self.since >= REFRESH || self.seen <= u64::from(REFRESH) {
            self.refresh();
        }
    }

    #[cold]
    fn halve(&mut self) {
        self.total = 0;
        for c in self.counts.iter_mut() {
            *c /= 2;
            self.total += *c;
        }
    }

    fn refresh(&mut self) {
        self.since = 0;
        let rank = (self.quantile * f64::from(self.total)).ceil().max(1.0) as u32;
        let mut below = 0;
        for (i, c) in self.counts.iter().enumerate() {
            below += c;
            if below >= rank {
                self.estimate_ns = middle_of(i);
                return;
            }
        }
    }

    /// Replies seen over the run.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The current estimate, nanoseconds (0 before any reply).
    pub fn estimate_ns(&self) -> u64 {
        self.estimate_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_names() {
        assert_eq!(parse_percentile("p95"), Some(0.95));
        assert!((parse_percentile("p99.9").unwrap() - 0.999).abs() < 1e-12);
        for bad in [
            "p100", "p0", "95", "q95", "p", "p-5", "pNaN", "p 95", "median",
        ] {
            assert_eq!(parse_percentile(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_cover_every_value_within_an_eighth() {
        for ns in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            1000,
            123_456_789,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = bucket_of(ns);
            assert!(i < BUCKETS, "{ns}");
            let m = middle_of(i) as f64;
            assert!((m - ns as f64).abs() <= ns as f64 / 8.0 + 1.0, "{ns} {m}");
        }
        // Increasing.
        for i in 1..BUCKETS {
            assert!(middle_of(i) > middle_of(i - 1), "{i}");
        }
    }

    #[test]
    fn the_estimate_finds_the_percentile_and_follows_a_change() {
        let mut t = ReplyTimes::new(0.95);
        // 1..=1000 µs, uniformly: p95 = 950 µs.
        for k in 0..3000u64 {
            t.record((k % 1000 + 1) * 1000);
        }
        let e = t.estimate_ns() as f64 / 1e3;
        assert!((e - 950.0).abs() < 950.0 / 8.0, "{e}");
        // The callee becomes 10 times slower: within a few thousand replies the estimate
        // follows.
        for k in 0..6000u64 {
            t.record((k % 1000 + 1) * 10_000);
        }
        let e = t.estimate_ns() as f64 / 1e3;
        assert!((e - 9500.0).abs() < 9500.0 / 6.0, "{e}");
        assert_eq!(t.seen(), 9000);
    }

    #[test]
    fn the_delay_is_the_floor_until_enough_replies() {
        let p = HedgePolicy {
            delay: SimDuration(5_000_000),
            quantile: Some(0.95),
            min_replies: 10,
            max_extra: None,
            cancel: false,
        };
        let mut t = ReplyTimes::new(0.95);
        for _ in 0..9 {
            t.record(50_000_000);
        }
        assert_eq!(p.delay(Some(&t)), SimDuration(5_000_000));
        t.record(50_000_000);
        let d = p.delay(Some(&t)).0 as f64;
        assert!((d - 50e6).abs() < 50e6 / 8.0, "{d}");
        // A fast callee: the floor holds.
        let mut t = ReplyTimes::new(0.95);
        for _ in 0..100 {
            t.record(1000);
        }
        assert_eq!(p.delay(Some(&t)), SimDuration(5_000_000));
    }
}
