//! The analytic estimate of a `database`: each copy as a G/G/c queue fed by its share of
//! the reads and writes (Erlang C, Allen-Cunneen, or M/M/c/K for a bounded queue, as for a
//! service), and the expected share of stale reads for the write rate of each key and the
//! replication lag.
//!
//! Stale reads (validation D1): writes to a key are Poisson with rate λ, and a read comes
//! at a random time, so the age A of the key's newest write is Exp(λ) (the backward
//! recurrence time; PASTA). A copy that applies each write after an independent lag L,
//! keeping the newest version, lacks the newest write exactly when L > A:
//! `P(stale) = P(L > A) = E[1 − e^{−λL}]`, which is `1 − e^{−λd}` for a constant lag d and
//! `λm / (1 + λm)` for an exponential lag of mean m. Reads spread over copies of which
//! only some lag (the primary never does) are stale in that share of the copies.

use super::{Balance, DatabaseDef, Reads};
use crate::analysis::{Flow, MetricEstimate, Network, ServiceEstimate, erlang_c, mmck};
use crate::components::op::Op;
use crate::components::shards::By;
use crate::components::shards::estimate::{Law, laws};
use crate::distributions::Distribution;
use crate::random::Rng;

/// Draws of the lag for the stale share of a lag that is neither constant nor
/// exponential (a fixed-seed sample: about 0.3% standard error).
const LAG_DRAWS: usize = 20_000;
/// Draws of such a lag per key group when summing over a catalog.
const CATALOG_LAG_DRAWS: usize = 2_000;
/// Keys summed one by one before they are taken in groups of about 1% change in
/// popularity.
const SINGLE_KEYS: u64 = 1024;
/// Width of a group of keys past [`SINGLE_KEYS`], as a ratio of its first key.
const GROUP_RATIO: f64 = 1.01;

/// Expected share of stale reads at a copy with constant lag `lag_s` seconds, for a key
/// written at `rate` per second: `1 − e^{−λd}`.
pub fn stale_share_constant_lag(rate: f64, lag_s: f64) -> f64 {
    -(-rate * lag_s).exp_m1()
}

/// Expected share of stale reads at a copy whose lag is exponential with mean `mean_s`
/// seconds (newest version wins), for a key written at `rate` per second: `λm / (1 + λm)`.
pub fn stale_share_exponential_lag(rate: f64, mean_s: f64) -> f64 {
    let x = rate * mean_s;
    x / (1.0 + x)
}

/// Expected share of stale reads at a copy whose lag follows `lag`, for a key written at
/// `rate` per second: `E[1 − e^{−λL}]`, exact for constant and exponential lags, from a
/// fixed-seed sample of the lag otherwise.
pub fn stale_share_of_lag(rate: f64, lag: &Distribution) -> f64 {
    StaleShare::new(lag, LAG_DRAWS).at(rate)
}

/// `E[1 − e^{−λL}]` as a function of the write rate λ, for one lag distribution.
struct StaleShare {
    /// Constant or exponential: the mean lag, s, and whether exponential.
    exact: Option<(f64, bool)>,
    /// Otherwise: a fixed-seed sample of the lag, s.
    draws: Vec<f64>,
}

impl StaleShare {
    fn new(lag: &Distribution, draws: usize) -> Self {
        let mean_s = lag.mean_ns() / 1e9;
        if lag.variance_ns2() == 0.0 || lag.is_exponential() || mean_s <= 0.0 {
            return StaleShare {
                exact: Some((mean_s, lag.is_exponential())),
                draws: Vec::new(),
            };
        }
        let mut rng: Rng = crate::random::stream(0, "analysis:replication_lag");
        StaleShare {
            exact: None,
            draws: (0..draws).map(|_| lag.sample_ns(&mut rng) / 1e9).collect(),
        }
    }

    fn at(&self, rate: f64) -> f64 {
        if rate <= 0.0 {
            return 0.0;
        }
        match self.exact {
            Some((mean_s, _)) if mean_s <= 0.0 => 0.0,
            Some((mean_s, false)) => stale_share_constant_lag(rate, mean_s),
            Some((mean_s, true)) => stale_share_exponential_lag(rate, mean_s),
            None => {
                let sum: f64 = self.draws.iter().map(|l| -(-rate * l).exp_m1()).sum();
                sum / self.draws.len() as f64
            }
        }
    }

    fn method(&self) -> &'static str {
        match self.exact {
            Some((_, false)) => "1 − e^{−λd} per key",
            Some((_, true)) => "λm / (1 + λm) per key",
            None => "E[1 − e^{−λL}] per key over a sample of the lag",
        }
    }
}

/// The expected stale share of a database's reads, with how it was found: exactly 0 when
/// reads wait for what writes waited for (synchronous replication to every replica, a
/// quorum with r + w > n); for asynchronous replication `Σ_k p_k · P(stale | λ p_k)` over
/// the keys of the traffic reaching it (Poisson writes at λ in all, key k a share p_k of
/// reads and writes alike), times the share of reads on lagging copies. `None` where no
/// formula applies (semi-synchronous replication, a quorum with r + w ≤ n).
pub fn stale_estimate(db: &DatabaseDef, net: &Network, flow: &Flow) -> Option<MetricEstimate> {
    let (reads, writes) = reads_and_writes(net, flow);
    if reads <= 0.0 {
        return None;
    }
    let estimate = |value: f64, method: String, caveat: String| MetricEstimate {
        metric: "stale_share".into(),
        value,
        method,
        tolerance: 0.01 + 0.1 * value,
        caveat,
    };
    let replicas = db.copies - 1;
    if db.reads == Reads::Quorum {
        let n = db.copies;
        return (db.quorum_r + db.wait_for + 1 > n).then(|| {
            estimate(
                0.0,
                "r + w > n: every read asks a copy that has every acknowledged write".into(),
                String::new(),
            )
        });
    }
    if db.wait_for > 0 {
        return (db.wait_for == replicas).then(|| {
            estimate(
                0.0,
                "synchronous: every replica has a write before it answers".into(),
                String::new(),
            )
        });
    }
    let lagging = lagging_share(db)?;
    if lagging == 0.0 || writes <= 0.0 {
        return Some(estimate(
            0.0,
            "no read reaches a lagging copy".into(),
            String::new(),
        ));
    }
    let mixed = laws(net, By::Key);
    let total: f64 = mixed.iter().map(|(_, n)| n).sum();
    if mixed.is_empty() || total <= 0.0 {
        return None;
    }
    let f = StaleShare::new(&db.lag, CATALOG_LAG_DRAWS);
    let keys = mixed.iter().map(|(l, _)| l.keys()).max().unwrap_or(1);
    // Σ over groups of keys of nearly equal popularity: mass · P(stale | λ · mass / size).
    let mut sum = 0.0;
    for (a, b) in key_groups(keys, &mixed) {
        let mass: f64 = mixed.iter().map(|(l, n)| l.mass(a, b) * n / total).sum();
        if mass > 0.0 {
            sum += mass * f.at(writes * mass / (b - a) as f64);
        }
    }
    let mut caveat = "the estimate takes the keys as the workloads draw them (a cache or a shard router in front changes which keys reach the database), Poisson writes and reads at random times".to_string();
    if db.read_your_writes.is_some() {
        caveat.push_str("; read-your-writes sends some reads to the primary");
    }
    let method = format!(
        "{} over {keys} keys, {:.0} writes/s, {:.0}% of reads on lagging copies",
        f.method(),
        writes,
        lagging * 100.0
    );
    Some(estimate(lagging * sum, method, caveat))
}

/// Groups of keys `a..b` covering `0..keys`: single keys first, then groups about
/// [`GROUP_RATIO`] wide, split where a law's popularity steps (a hot set's edge).
fn key_groups(keys: u64, mixed: &[(Law, f64)]) -> Vec<(u64, u64)> {
    let mut edges: Vec<u64> = (0..=SINGLE_KEYS.min(keys)).collect();
    let mut x = SINGLE_KEYS as f64;
    while (x as u64) < keys {
        x = (x * GROUP_RATIO).ceil();
        edges.push((x as u64).min(keys));
    }
    for (l, _) in mixed {
        if let Law::HotSet { hot, .. } = l {
            edges.push((*hot).min(keys));
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Share of the time a quorum of `quorum` of `nodes` copies is up, when each copy is up
/// independently a share `availability` of the time (validation D2): the binomial tail
/// `Σ_{k ≥ q} C(n, k) a^k (1 − a)^{n−k}`. Insensitive to the up and down time
/// distributions (an alternating renewal process is up MTTF / (MTTF + MTTR) of the time).
pub fn quorum_availability(nodes: u32, quorum: u32, availability: f64) -> f64 {
    let a = availability.clamp(0.0, 1.0);
    let mut choose = 1.0; // C(n, k), built up as k grows
    let mut sum = 0.0;
    for k in 0..=nodes {
        if k > 0 {
            choose = choose * f64::from(nodes - k + 1) / f64::from(k);
        }
        if k >= quorum {
            sum += choose * a.powi(k as i32) * (1.0 - a).powi((nodes - k) as i32);
        }
    }
    sum.min(1.0)
}

/// Share of a database's reads answered by copies that lag the newest acknowledged write,
/// by where reads go: none with a primary, all with replicas, `replicas / copies` with
/// any copy. `None` when the copies' lag is not what a read sees (synchronous replication
/// and quorums, whose reads see what a write waited for).
pub fn lagging_share(db: &DatabaseDef) -> Option<f64> {
    if db.wait_for > 0 || db.reads == Reads::Quorum {
        return None;
    }
    let copies = f64::from(db.copies);
    Some(match db.reads {
        Reads::Primary => 0.0,
        Reads::Replicas if db.copies > 1 => 1.0,
        Reads::Replicas => 0.0,
        Reads::Any => (copies - 1.0) / copies,
        Reads::Quorum => unreachable!("handled above"),
    })
}

/// Reads and writes per second in `flow`, by the operation of each class (the
/// workloads' operations; a class no workload maps counts as a read).
fn reads_and_writes(net: &Network, flow: &Flow) -> (f64, f64) {
    let mut writes = 0.0;
    for (class, rate) in flow.rate.iter().enumerate() {
        let is_write = net
            .model
            .workloads
            .iter()
            .any(|w| Op::of(w.ops.get(class).copied().unwrap_or(0)).is_write());
        if is_write {
            writes += rate;
        }
    }
    (flow.total() - writes, writes)
}

/// The queue estimate of one copy taking `reads` and `writes` per second.
fn copy_estimate(db: &DatabaseDef, reads: f64, writes: f64, ca2: f64) -> ServiceEstimate {
    let lambda = reads + writes;
    let (pr, pw) = if lambda > 0.0 {
        (reads / lambda, writes / lambda)
    } else {
        (1.0, 0.0)
    };
    let moments = |d: &Distribution| (d.mean_ns() / 1e6, d.variance_ns2() / 1e12);
    let ((mr, vr), (mw, vw)) = (moments(&db.read_time), moments(&db.write_time));
    let hold_ms = pr * mr + pw * mw;
    let m2 = pr * (vr + mr * mr) + pw * (vw + mw * mw);
    let cs2 = if hold_ms > 0.0 {
        ((m2 - hold_ms * hold_ms) / (hold_ms * hold_ms)).max(0.0)
    } else {
        0.0
    };
    let c = db.workers;
    let a = lambda * hold_ms / 1e3;
    let rho = a / f64::from(c);
    let mut e = ServiceEstimate {
        arrival_rate_per_s: lambda,
        hold_time_ms: hold_ms,
        hold_time_scv: cs2,
        arrival_scv: ca2,
        offered_load: a,
        utilization: rho,
        offered_utilization: rho,
        blocking: 0.0,
        wait_mean_ms: 0.0,
        response_mean_ms: 0.0,
        method: String::new(),
    };
    if let Some(k) = db.queue_capacity {
        let (blocking, wq_s) = mmck(lambda, hold_ms / 1e3, c, k);
        e.blocking = blocking;
        e.wait_mean_ms = wq_s * 1e3;
        e.utilization = rho * (1.0 - blocking);
        e.method = "mmck".into();
    } else if rho >= 1.0 {
        e.wait_mean_ms = f64::INFINITY;
        e.method = "unstable".into();
    } else if a > 0.0 {
        let wq = erlang_c(c, a) * hold_ms / (f64::from(c) - a);
        let exact = (ca2 - 1.0).abs() < 1e-9 && (cs2 - 1.0).abs() < 1e-9;
        e.wait_mean_ms = if exact { wq } else { wq * (ca2 + cs2) / 2.0 };
        e.method = if exact { "erlang_c" } else { "allen_cunneen" }.into();
    } else {
        e.method = "erlang_c".into();
    }
    e.response_mean_ms = e.wait_mean_ms + hold_ms;
    e
}

/// Arrival SCV at copy `i`, which takes `reads` and `writes` per second of `flow` (QNA
/// rules): a random share p of a stream has `p·ca² + 1 − p`; reads taken in turn (round
/// robin, least connections) by m replicas from their own stream divide its SCV by m.
fn copy_scv(db: &DatabaseDef, flow: &Flow, i: usize, reads: f64, writes: f64) -> f64 {
    let total = flow.total();
    if total <= 0.0 {
        return 1.0;
    }
    let ca2 = flow.scv();
    let thinned = |p: f64| p * ca2 + 1.0 - p;
    let in_turn = matches!(db.balance, Balance::RoundRobin | Balance::LeastConnections);
    let m = f64::from(db.copies - 1);
    if db.reads == Reads::Replicas && i > 0 && in_turn && writes == 0.0 && m > 0.0 {
        return thinned(reads * m / total) / m;
    }
    thinned((reads + writes) / total)
}

/// Second pass: the copies' queue estimates, combined as the component's metrics combine
/// (utilization and wait averaged over the copies), and the mean response time of a call
/// (a write adds the mean lag it waits for; a quorum read the wait of its slowest copy,
/// taken as the mean).
pub fn response(db: &DatabaseDef, net: &Network, flow: &Flow) -> (f64, Option<ServiceEstimate>) {
    let (reads, writes) = reads_and_writes(net, flow);
    let n = db.copies as usize;
    let nf = n as f64;
    // Requests per second at each copy.
    let mut load = vec![(0.0, 0.0); n];
    match db.reads {
        Reads::Quorum => load.iter_mut().for_each(|l| {
            *l = (reads * f64::from(db.quorum_r) / nf, writes / nf);
        }),
        _ => {
            load[0].1 = writes;
            match db.reads {
                Reads::Primary => load[0].0 = reads,
                Reads::Replicas if n > 1 => {
                    load[1..].iter_mut().for_each(|l| l.0 = reads / (nf - 1.0))
                }
                Reads::Replicas => load[0].0 = reads,
                _ => load.iter_mut().for_each(|l| l.0 = reads / nf),
            }
        }
    }
    let per_copy: Vec<ServiceEstimate> = load
        .iter()
        .enumerate()
        .map(|(i, (r, w))| copy_estimate(db, *r, *w, copy_scv(db, flow, i, *r, *w)))
        .collect();
    let mean = |f: &dyn Fn(&ServiceEstimate) -> f64| per_copy.iter().map(f).sum::<f64>() / nf;
    // A call's response: the time at the copies it reaches, weighted by their traffic.
    let total: f64 = load.iter().map(|(r, w)| r + w).sum();
    let at_copies = if total > 0.0 {
        per_copy
            .iter()
            .zip(&load)
            .map(|(e, (r, w))| e.response_mean_ms * (r + w) / total)
            .sum::<f64>()
    } else {
        per_copy[0].response_mean_ms
    };
    let lag_ms = db.lag.mean_ns() / 1e6;
    let write_share = if reads + writes > 0.0 {
        writes / (reads + writes)
    } else {
        0.0
    };
    let waits_for_lag = if db.wait_for > 0 { lag_ms } else { 0.0 };
    let response_ms = at_copies + write_share * waits_for_lag;
    let method = per_copy
        .iter()
        .map(|e| e.method.as_str())
        .find(|m| *m == "unstable")
        .unwrap_or(&per_copy[0].method)
        .to_string();
    let e = ServiceEstimate {
        arrival_rate_per_s: mean(&|e| e.arrival_rate_per_s),
        hold_time_ms: mean(&|e| e.hold_time_ms),
        hold_time_scv: mean(&|e| e.hold_time_scv),
        arrival_scv: flow.scv(),
        offered_load: mean(&|e| e.offered_load),
        utilization: mean(&|e| e.utilization),
        offered_utilization: per_copy
            .iter()
            .map(|e| e.offered_utilization)
            .fold(0.0, f64::max),
        blocking: mean(&|e| e.blocking),
        wait_mean_ms: mean(&|e| e.wait_mean_ms),
        response_mean_ms: response_ms,
        method,
    };
    (response_ms, Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_shares_match_the_validation_table() {
        // ../shared/validation D1.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(stale_share_constant_lag(1.0, 0.1), 0.0951626));
        assert!(close(stale_share_exponential_lag(1.0, 0.1), 0.0909091));
        assert!(close(stale_share_constant_lag(10.0, 0.1), 0.632121));
        assert!(close(stale_share_exponential_lag(10.0, 0.1), 0.5));
        assert!(close(stale_share_constant_lag(1.0, 1.0), 0.632121));
        assert!(close(stale_share_exponential_lag(1.0, 1.0), 0.5));
        // Reads over the primary and two replicas: (2/3)(1 − e^{−0.1}).
        assert!(close(
            2.0 / 3.0 * stale_share_constant_lag(1.0, 0.1),
            0.0634417
        ));
        let constant = Distribution::constant_ns(0.1e9);
        let exponential = Distribution::exponential_ns(0.1e9);
        assert!(close(stale_share_of_lag(1.0, &constant), 0.0951626));
        assert!(close(stale_share_of_lag(10.0, &exponential), 0.5));
        assert_eq!(stale_share_of_lag(0.0, &exponential), 0.0);
    }

    #[test]
    fn quorum_availability_is_the_binomial_tail() {
        assert_eq!(quorum_availability(3, 0, 0.5), 1.0);
        assert!((quorum_availability(3, 2, 0.5) - 0.5).abs() < 1e-15);
        assert!((quorum_availability(1, 1, 0.9) - 0.9).abs() < 1e-15);
        assert_eq!(quorum_availability(3, 4, 0.99), 0.0);
    }
}
