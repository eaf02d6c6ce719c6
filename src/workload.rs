//! Workloads as the model defines them: the sources of requests. Open loop (Poisson,
//! constant, renewal, a rate that changes over time), closed loop (users with think time)
//! and trace replay; each request gets a class from the workload's mix and a key from a
//! popularity law. A workload during a run (its arrivals, think times, timeout and
//! statistics) is `crate::client`.

use crate::distributions::Distribution;
use crate::policy::retry::RetryPolicy;
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use rand::RngExt;
use std::sync::Arc;

/// A validated workload.
#[derive(Debug, Clone)]
pub struct WorkloadDef {
    /// Name in the model file.
    pub name: String,
    /// How requests arrive.
    pub arrivals: Arrivals,
    /// Request classes (global class ids) with cumulative probabilities; the last is 1.
    pub classes: Vec<(u16, f64)>,
    /// Key popularity.
    pub keys: KeyLaw,
    /// Group (component) the requests are sent to.
    pub target: u32,
    /// Client timeout.
    pub timeout: Option<SimDuration>,
    /// Stop after this many requests.
    pub limit: Option<u64>,
    /// Number of distinct clients requests are spread over (for `hash_client` balancing).
    pub clients: u32,
    /// The operation code ([`Op`](crate::components::op::Op)) of each class, by global
    /// class id.
    pub ops: Vec<u8>,
    /// Its burst of arrivals (a `spike` above its base rate), judged as a fault window by
    /// the recovery analysis.
    pub burst: Option<Burst>,
    /// Its client-side rate limit, and the group a request it refuses is sent to: one
    /// with no member after the components' (see
    /// [`Group::refusing`](crate::engine::Group::refusing)), so it fails unsent.
    pub rate_limit: Option<(crate::components::service::admission::RateLimit, u32)>,
    /// Its client retries: a failed attempt is sent again after a backoff.
    pub retries: Option<RetryPolicy>,
    /// The classes (global ids) whose requests are non-idempotent writes (`"idempotent":
    /// false`: its write classes); a retry of one whose earlier attempt also succeeded
    /// writes twice.
    pub non_idempotent: Vec<u16>,
    /// Its non-idempotent writes carry an idempotency key: duplicates are removed.
    pub idempotency_key: bool,
}

/// A workload's burst: from `start` to `end` at `peak` requests per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// When it starts.
    pub start: SimTime,
    /// When it ends.
    pub end: SimTime,
    /// Its rate, per second.
    pub peak: f64,
}

/// How requests arrive.
#[derive(Debug, Clone)]
pub enum Arrivals {
    /// Independent gaps between arrivals, drawn from a distribution (Poisson: exponential).
    Renewal(Distribution),
    /// A Poisson process whose rate changes over time.
    Profile(RateProfile),
    /// `users` users, each sending a request, waiting for its answer, then thinking.
    Closed {
        /// Number of users.
        users: u32,
        /// Think time between an answer and the next request.
        think: Distribution,
    },
    /// Requests replayed from a trace, in time order.
    Trace(Arc<Vec<TraceRecord>>),
}

/// One line of a trace file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRecord {
    /// When the request arrives.
    pub time: SimTime,
    /// Class id.
    pub class: u16,
    /// Key.
    pub key: u64,
}

/// A request rate (per second) over time, given by points.
#[derive(Debug, Clone)]
pub struct RateProfile {
    /// (time, rate per second), times increasing.
    pub points: Vec<(SimTime, f64)>,
    /// Interpolate linearly between points (otherwise hold each rate until the next point).
    pub linear: bool,
    /// Highest rate anywhere: the rate of the candidate process that thinning accepts from.
    pub max_rate: f64,
}

impl RateProfile {
    /// Rate per second at time `t`.
    pub fn rate_at(&self, t: SimTime) -> f64 {
        let after = self.points.partition_point(|(pt, _)| *pt <= t);
        if after == 0 {
            return self.points[0].1;
        }
        let (t0, r0) = self.points[after - 1];
        if !self.linear || after == self.points.len() {
            return r0;
        }
        let (t1, r1) = self.points[after];
        let f = (t.0 - t0.0) as f64 / (t1.0 - t0.0) as f64;
        r0 + f * (r1 - r0)
    }
    /// Mean rate over `[0, horizon)`, for analytic estimates.
    pub fn mean_rate(&self, horizon: SimTime) -> f64 {
        let steps = 1000u64;
        let dt = (horizon.0 / steps).max(1);
        let sum: f64 = (0..steps)
            .map(|i| self.rate_at(SimTime(i * dt + dt / 2)))
            .sum();
        sum / steps as f64
    }
}

impl RateProfile {
    /// Expected number of arrivals in `[from, to]`: the integral of the rate.
    pub fn expected_between(&self, from: SimTime, to: SimTime) -> f64 {
        let (a, b) = (from.0 as f64, to.0 as f64);
        if b <= a || self.points.is_empty() {
            return 0.0;
        }
        // Integral over [lo, hi] ∩ [a, b] of a rate going linearly from r_lo to r_hi.
        let segment = |lo: f64, hi: f64, r_lo: f64, r_hi: f64| -> f64 {
            let (c0, c1) = (lo.max(a), hi.min(b));
            if c1 <= c0 {
                return 0.0;
            }
            let at = |t: f64| {
                if hi > lo && hi.is_finite() && lo.is_finite() {
                    r_lo + (t - lo) / (hi - lo) * (r_hi - r_lo)
                } else {
                    r_lo
                }
            };
            (c1 - c0) * (at(c0) + at(c1)) / 2.0
        };
        let p = &self.points;
        let mut ns_rate = segment(f64::NEG_INFINITY, p[0].0.0 as f64, p[0].1, p[0].1);
        for w in p.windows(2) {
            let (t0, r0) = (w[0].0.0 as f64, w[0].1);
            let (t1, r1) = (w[1].0.0 as f64, w[1].1);
            ns_rate += segment(t0, t1, r0, if self.linear { r1 } else { r0 });
        }
        let (tl, rl) = p[p.len() - 1];
        ns_rate += segment(tl.0 as f64, f64::INFINITY, rl, rl);
        ns_rate / 1e9
    }
}

/// Expected number of renewals in `[from, to]` of a process whose gaps follow `gap`
/// (exact for a constant gap, the renewal rate times the length otherwise).
fn renewals_between(gap: &Distribution, from: SimTime, to: SimTime) -> f64 {
    if to <= from {
        return 0.0;
    }
    match gap {
        Distribution::Constant { value_ns } => {
            let g = value_ns.round();
            if g < 1.0 {
                return f64::INFINITY;
            }
            // Arrivals at g, 2g, ...: those k with from <= k g <= to.
            let last = (to.0 as f64 / g).floor();
            let first = (from.0 as f64 / g).ceil().max(1.0);
            (last - first + 1.0).max(0.0)
        }
        d => {
            let mean = d.mean_ns();
            if mean > 0.0 {
                (to.0 - from.0) as f64 / mean
            } else {
                f64::INFINITY
            }
        }
    }
}

impl WorkloadDef {
    /// How many requests the workload is expected to send in `[from, to]`: at most this
    /// many for a closed workload (whose users also wait for answers), exactly for a
    /// trace or a constant rate.
    pub fn expected_requests(&self, from: SimTime, to: SimTime) -> f64 {
        let n = match &self.arrivals {
            Arrivals::Renewal(gap) => renewals_between(gap, from, to),
            Arrivals::Profile(p) => p.expected_between(from, to),
            Arrivals::Closed { users, think } => {
                f64::from(*users) * renewals_between(think, SimTime::ZERO, to).max(0.0)
            }
            Arrivals::Trace(records) => records
                .iter()
                .filter(|r| r.time >= from && r.time <= to)
                .count() as f64,
        };
        match self.limit {
            Some(l) => n.min(l as f64),
            None => n,
        }
    }
}

/// Which keys requests are about. Keys are 0..keys, key 0 the most popular.
#[derive(Debug, Clone)]
pub enum KeyLaw {
    /// Every request has key 0.
    None,
    /// Uniform over `keys` keys.
    Uniform {
        /// Number of keys.
        keys: u64,
    },
    /// Zipf with exponent `s` over `keys` keys.
    Zipf {
        /// Number of keys.
        keys: u64,
        /// The sampler.
        sampler: ZipfSampler,
    },
    /// A share of the traffic goes uniformly to a small hot set, the rest to the other keys.
    HotSet {
        /// Number of keys.
        keys: u64,
        /// Keys in the hot set (keys 0..hot).
        hot: u64,
        /// Share of requests that go to the hot set.
        share: f64,
    },
}

impl KeyLaw {
    /// A key drawn from `rng`.
    #[inline(always)]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            KeyLaw::None => 0,
            KeyLaw::Uniform { keys } => rng.random_range(0..*keys),
            KeyLaw::Zipf { keys, sampler } => (sampler.sample(rng) as u64).clamp(1, *keys) - 1,
            KeyLaw::HotSet { keys, hot, share } => {
                if rng.random::<f64>() < *share || hot == keys {
                    rng.random_range(0..*hot)
                } else {
                    rng.random_range(*hot..*keys)
                }
            }
        }
    }
}

/// Zipf's law over `n` keys with exponent `s`, drawn exactly as `rand_distr::Zipf` 0.6
/// draws it (rejection sampling after Jason Crease's approximate inversion: same formulas,
/// same uniforms consumed, bit-identical results), but with most of its `powf` calls
/// skipped. An attempt draws a candidate `x` from the approximate inverse and accepts it when
/// a second uniform `y` is below `ratio = x^-s · inv^s`, where `inv` (the inverse before
/// rounding) lies in `[x − 1, x)`. So `ratio ≥ (1 − 1/x)^max(s,1) ≥ 1 − max(s,1)/x`: when `y`
/// is below that bound (less a margin far above any rounding error), the candidate is
/// accepted without computing `ratio` (the outcome is the same); only the rare `y` near
/// the bound computes it. For a large catalog nearly every draw lands on a large `x`, and
/// two of its three `powf` calls go.
#[derive(Debug, Clone)]
pub struct ZipfSampler {
    s: f64,
    t: f64,
    q: f64,
    /// The inverse's `powf` by whole powers, when `q` is a whole number to within rounding
    /// (`None` otherwise).
    whole: Option<Box<WholePower>>,
}

/// `b^q` for an exponent `q` within rounding of a whole number `n` (`s` = 0.5, 0.8, 0.9,
/// 0.95, 0.99, 1.25, 1.5, 2, ...: `q = 1/(1 − s)`), by `n` multiplications (squaring) in
/// place of `powf`, which is the largest single cost of a draw. Its relative error against
/// the exact `b^q` is at most `error` (the multiplications' rounding, at most (|n| + 2)
/// units of 2^-52, plus `b^(q − n) − 1` over the catalog's range of `b`), so the true
/// `b^q`, and `powf`'s result within half a unit of it, lie in `[v·(1 − margin),
/// v·(1 + margin)]` with `margin = 16·error`. When both ends of that interval floor to the
/// same key, that key is the one `powf` gives (rounding and `floor` are monotone); the
/// rare draw within the margin of a key's boundary computes `powf` as before.
#[derive(Debug, Clone, Copy)]
struct WholePower {
    /// The whole exponent, 1 to 256 in size.
    n: i32,
    /// `1 − margin` and `1 + margin`.
    below: f64,
    above: f64,
}

impl WholePower {
    /// Largest error allowed: a margin of 16 times it (below 2·10^-12) keeps the draws that
    /// need `powf` to a few in 10^5 for a catalog of ten million keys.
    const MAX_ERROR: f64 = 1e-13;

    /// The whole-power form of `b^q` over a catalog of `keys` keys, if `q` is close enough
    /// to a whole number.
    fn of(q: f64, keys: f64) -> Option<Self> {
        let n = q.round();
        if !(1.0..=256.0).contains(&n.abs()) || keys > 2f64.powi(53) {
            return None;
        }
        // b lies between 1 and keys^(1/q) (the inverse of the first and the last key), so
        // |ln b| ≤ ln(keys)/|q| and |b^(q − n) − 1| ≤ 2·|q − n|·ln(keys)/|q| (the
        // exponent is far below 1).
        let drift = 2.0 * (q - n).abs() * keys.ln() / q.abs();
        let error = (n.abs() + 2.0) * f64::EPSILON + drift;
        if error > Self::MAX_ERROR {
            return None;
        }
        let margin = 16.0 * error;
        Some(WholePower {
            n: n as i32,
            below: 1.0 - margin,
            above: 1.0 + margin,
        })
    }

    /// `floor(b^q + 1)` exactly as `powf` gives it, when `b^q` is clear of a whole number
    /// (`None` when it is too close to tell).
    #[inline(always)]
    fn key(&self, b: f64) -> Option<f64> {
        let mut m = self.n.unsigned_abs();
        let (mut base, mut v) = (b, 1.0);
        loop {
            if m & 1 == 1 {
                v *= base;
            }
            m >>= 1;
            if m == 0 {
                break;
            }
            base *= base;
        }
        if self.n < 0 {
            v = 1.0 / v;
        }
        let low = floor_positive(v * self.below + 1.0);
        (low == floor_positive(v * self.above + 1.0)).then_some(low)
    }
}

/// `x.floor()` for `x` at least 0 (or NaN), without the call to the C library's `floor` a
/// processor without SSE4.1 makes: every double from 2^52 up is a whole number already.
/// Below it the value fits a signed integer, whose conversions each way are one
/// instruction (an unsigned one takes several without AVX-512).
#[inline(always)]
fn floor_positive(x: f64) -> f64 {
    debug_assert!(x.is_nan() || x >= 0.0, "floor_positive of {x}");
    if x < 4_503_599_627_370_496.0 {
        (x as i64) as f64
    } else {
        x
    }
}

impl ZipfSampler {
    /// The law over `n` (at least 1) keys with exponent `s` (at least 0); `None` otherwise.
    pub fn new(n: f64, s: f64) -> Option<Self> {
        // As rand_distr::Zipf::new (NaN refused too).
        if s.is_nan() || s < 0.0 || n.is_nan() || n < 1.0 || (n.is_infinite() && s <= 1.0) {
            return None;
        }
        let q = if s != 1.0 { 1.0 / (1.0 - s) } else { 0.0 };
        let t = if s == f64::INFINITY {
            1.0
        } else if s != 1.0 {
            (n.powf(1.0 - s) - s) * q
        } else {
            1.0 + n.ln()
        };
        Some(ZipfSampler {
            s,
            t,
            q,
            whole: if s != 1.0 && s.is_finite() {
                WholePower::of(q, n).map(Box::new)
            } else {
                None
            },
        })
    }

    #[inline(always)]
    fn inv_cdf(&self, p: f64) -> f64 {
        let pt = p * self.t;
        if pt <= 1.0 {
            pt
        } else if self.s != 1.0 {
            (pt * (1.0 - self.s) + self.s).powf(self.q)
        } else {
            (pt - 1.0).exp()
        }
    }

    /// The candidate for uniform `p` and the inverse it is the floor of, plus one.
    #[inline(always)]
    fn candidate(&self, p: f64) -> (f64, Option<f64>) {
        let inv_b = self.inv_cdf(p);
        (floor_positive(inv_b + 1.0), Some(inv_b))
    }

    /// A draw: 1 for the most popular key, up to `n`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        loop {
            let p = rng.random::<f64>();
            // The candidate, and the inverse it comes from when it was computed (`None`
            // when the whole-power form gave the candidate without it).
            let (x, inv_b) = match &self.whole {
                Some(w) if p * self.t > 1.0 => match w.key(p * self.t * (1.0 - self.s) + self.s) {
                    Some(x) => (x, None),
                    None => self.candidate(p),
                },
                _ => self.candidate(p),
            };
            let y: f64 = rng.random();
            if x <= 1.0 {
                // ratio = 1^-s = 1 > y.
                return x;
            }
            // Lower bound of the ratio as computed, rounding errors (below 1e-15 relative)
            // and `inv_b + 1.0` rounding up to `x` (below x · 2^-52) included.
            // (The bound's slope is max(s, 1), worked out here: the sampler is kept as small as
            // it was before the whole-power form, since a larger workload definition costs
            // every model's request generation a few instructions.)
            if y < 1.0 - self.s.max(1.0) / x - 1e-9 {
                return x;
            }
            let inv_b = inv_b.unwrap_or_else(|| self.inv_cdf(p));
            let ratio = x.powf(-self.s) * inv_b.powf(self.s);
            if y < ratio {
                return x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random;

    #[test]
    fn profile_steps_and_interpolates() {
        let p = RateProfile {
            points: vec![(SimTime(0), 100.0), (SimTime(10), 200.0)],
            linear: true,
            max_rate: 200.0,
        };
        assert_eq!(p.rate_at(SimTime(5)), 150.0);
        assert_eq!(p.rate_at(SimTime(20)), 200.0);
        let s = RateProfile { linear: false, ..p };
        assert_eq!(s.rate_at(SimTime(5)), 100.0);
        assert_eq!(s.rate_at(SimTime(10)), 200.0);
    }

    #[test]
    fn hot_set_sends_its_share_to_hot_keys() {
        let law = KeyLaw::HotSet {
            keys: 1000,
            hot: 10,
            share: 0.9,
        };
        let mut rng = random::stream(1, "t");
        let n = 100_000;
        let hot = (0..n).filter(|_| law.sample(&mut rng) < 10).count();
        // Binomial(1e5, 0.9): sd 0.00095 in share; 5 sd.
        assert!((hot as f64 / n as f64 - 0.9).abs() < 0.005);
    }

    #[test]
    fn zipf_sampler_draws_bit_identical_to_rand_distr() {
        use rand_distr::Distribution as _;
        for (n, s) in [
            (1.0, 0.9),
            (10.0, 0.5),
            (1e4, 1.0),
            (1e5, 0.0),
            (1e7, 0.9),
            (1e3, 1.5),
            (50.0, 4.0),
            (1e6, 0.99),
            // Whole powers (q = 1/(1 − s) = 2, 5, 10, 20, 100, −4, −2, −1).
            (1e7, 0.5),
            (1e7, 0.8),
            (1e5, 0.9),
            (1e7, 0.95),
            (1e7, 0.99),
            (1e7, 1.25),
            (1e9, 1.5),
            (1e4, 2.0),
        ] {
            let ours = ZipfSampler::new(n, s).unwrap();
            let theirs = rand_distr::Zipf::new(n, s).unwrap();
            let mut a = random::stream(7, "zipf");
            let mut b = random::stream(7, "zipf");
            for i in 0..200_000 {
                let (x, y) = (ours.sample(&mut a), theirs.sample(&mut b));
                assert_eq!(x.to_bits(), y.to_bits(), "n {n} s {s} draw {i}");
            }
            assert_eq!(
                a.random::<u64>(),
                b.random::<u64>(),
                "same uniforms consumed"
            );
        }
        assert!(ZipfSampler::new(0.5, 1.0).is_none() && ZipfSampler::new(10.0, -1.0).is_none());
    }

    #[test]
    fn whole_powers_stand_in_for_powf_only_where_they_can_tell_the_key() {
        for s in [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.25, 1.5, 2.0] {
            let z = ZipfSampler::new(1e7, s).unwrap();
            assert!(z.whole.is_some(), "s {s} has a whole q");
        }
        for s in [0.3, 0.7, 1.0, 3.0] {
            assert!(ZipfSampler::new(1e7, s).unwrap().whole.is_none(), "s {s}");
        }
        // Too many keys for the error bound.
        assert!(ZipfSampler::new(1e300, 1.5).unwrap().whole.is_none());
        let w = ZipfSampler::new(1e7, 0.9).unwrap().whole.unwrap();
        assert_eq!(w.n, 10);
        // 1.5^10 = 57.665...: key 58, as powf gives it.
        assert_eq!(w.key(1.5), Some((1.5f64.powf(10.0) + 1.0).floor()));
        // 2^10 = 1024 exactly: on a key's boundary, left to powf.
        assert_eq!(w.key(2.0), None);
        let w = ZipfSampler::new(1e7, 2.0).unwrap().whole.unwrap();
        assert_eq!(w.n, -1);
        assert_eq!(w.key(0.3), Some(4.0));
        assert_eq!(w.key(0.25), None);
    }

    #[test]
    fn zipf_favours_key_zero() {
        let law = KeyLaw::Zipf {
            keys: 10_000,
            sampler: ZipfSampler::new(10_000.0, 1.0).unwrap(),
        };
        let mut rng = random::stream(1, "t");
        let n = 200_000;
        let zero = (0..n).filter(|_| law.sample(&mut rng) == 0).count();
        // p_1 = 1/H(10^4, 1) = 0.102170 (validation README, popularity facts).
        assert!((zero as f64 / n as f64 - 0.102170).abs() < 0.004);
    }
}
