//! The analytic estimate of a `shards` router: the load share each shard can expect from
//! the key law of the traffic reaching the router, hence the busiest shard's share and the
//! hot-spot index, and the share of the key space each change moves.
//!
//! A shard's load is the probability mass of the keys it owns: `Σ_k p_k [owner(k) = j]`,
//! summed key by key over the [`EXACT_KEYS`] most popular keys and, for a larger catalog,
//! the rest spread by each shard's share of the tail (its share of the hash space: 1/N for
//! a mixed hash, its arcs on a ring, its residues for `key mod N`); range tables take the
//! exact mass of each range. Key laws: uniform, Zipf (`p_k = (k+1)^-s / H(K, s)`, with the
//! generalized harmonic number `H` summed to 1000 terms and continued by Euler–Maclaurin),
//! hot set, and the empirical law of a trace. Several workloads reaching the router mix
//! their laws by the requests they send; the phases between changes weigh by their length
//! in the measurement window.

use super::placement::{EXACT_KEYS, Hash, Moved, NO_SHARD, Placement, moved_share};
use super::{By, ShardsDef};
use crate::analysis::{Flow, MetricEstimate, Network};
use crate::model::spec::KeysSpec;
use crate::time::SimTime;
use crate::workload::{Arrivals, KeyLaw};
use std::collections::BTreeMap;

/// What the estimate expects of a router over the measurement window.
#[derive(Debug, Clone, PartialEq)]
pub struct Loads {
    /// Share of the router's requests each shard takes (by shard index); the rest, when
    /// they sum below 1, find no range.
    pub share: Vec<f64>,
    /// The shards in the table at some time in the window.
    pub present: Vec<bool>,
    /// The share of the busiest shard.
    pub busiest: f64,
    /// The busiest shard's load over the mean of the shards present.
    pub hot_spot: f64,
    /// Share of the key space each change in the window moves, in order.
    pub moved: Vec<Moved>,
    /// Keys in the key space (`0..keys`).
    pub keys: u64,
    /// How the loads were computed.
    pub method: String,
    /// Problems found (keys no range holds).
    pub warnings: Vec<String>,
}

/// The popularity of keys reaching a router.
#[derive(Debug, Clone, PartialEq)]
pub enum Law {
    /// Given keys with their probabilities (a trace, or the single key 0), by key.
    Points(Vec<(u64, f64)>),
    /// Uniform over `0..keys`.
    Uniform {
        /// Number of keys.
        keys: u64,
    },
    /// Zipf: key `k` has probability `(k+1)^-s / h`.
    Zipf {
        /// Number of keys.
        keys: u64,
        /// Exponent.
        s: f64,
        /// Normalisation: `H(keys, s)`.
        h: f64,
    },
    /// A share of the traffic uniformly over keys `0..hot`, the rest over the others.
    HotSet {
        /// Number of keys.
        keys: u64,
        /// Hot keys.
        hot: u64,
        /// Their share of the traffic.
        share: f64,
    },
}

/// Terms of a generalized harmonic number summed one by one before Euler–Maclaurin.
const HARMONIC_HEAD: u64 = 1000;

/// `H(n, s) = Σ_{i=1}^{n} i^-s`: summed term by term up to the first 1,000 (`HARMONIC_HEAD`), continued by the
/// Euler–Maclaurin formula with two correction terms (error below 1e-15 relative).
pub fn harmonic(n: u64, s: f64) -> f64 {
    let head = n.min(HARMONIC_HEAD);
    let mut sum: f64 = (1..=head).map(|i| (i as f64).powf(-s)).sum();
    if n <= HARMONIC_HEAD {
        return sum;
    }
    // Σ_{i=m}^{n} f(i), f(x) = x^-s, with m = head + 1.
    let (m, n) = ((head + 1) as f64, n as f64);
    let t = 1.0 - s;
    let l = (n / m).ln();
    // ∫_m^n x^-s dx = m^(1-s) (e^{(1-s) ln(n/m)} - 1) / (1-s), stable near s = 1.
    let integral = if t.abs() < 1e-12 {
        l
    } else {
        m.powf(t) * (t * l).exp_m1() / t
    };
    let f = |x: f64| x.powf(-s);
    sum += integral + (f(m) + f(n)) / 2.0 + s / 12.0 * (m.powf(-s - 1.0) - n.powf(-s - 1.0))
        - s * (s + 1.0) * (s + 2.0) / 720.0 * (m.powf(-s - 3.0) - n.powf(-s - 3.0));
    sum
}

impl Law {
    /// The law of `keys` as a workload defines it (`spec` gives a Zipf law's exponent).
    pub fn of(keys: &KeyLaw, spec: Option<&KeysSpec>) -> Law {
        match keys {
            KeyLaw::None => Law::Points(vec![(0, 1.0)]),
            KeyLaw::Uniform { keys } => Law::Uniform { keys: *keys },
            KeyLaw::Zipf { keys, .. } => {
                let s = match spec {
                    Some(KeysSpec::Zipf(z)) => z.s,
                    _ => 1.0,
                };
                Law::Zipf {
                    keys: *keys,
                    s,
                    h: harmonic(*keys, s),
                }
            }
            KeyLaw::HotSet { keys, hot, share } => Law::HotSet {
                keys: *keys,
                hot: *hot,
                share: if hot == keys { 1.0 } else { *share },
            },
        }
    }

    /// The empirical law of the keys `keys` (each draw equally likely).
    pub fn empirical(keys: impl Iterator<Item = u64>) -> Law {
        let mut count: BTreeMap<u64, u64> = BTreeMap::new();
        for k in keys {
            *count.entry(k).or_default() += 1;
        }
        let total: u64 = count.values().sum();
        Law::Points(
            count
                .into_iter()
                .map(|(k, c)| (k, c as f64 / total.max(1) as f64))
                .collect(),
        )
    }

    /// One past the largest key it draws.
    pub fn keys(&self) -> u64 {
        match self {
            Law::Points(p) => p.last().map_or(1, |(k, _)| k.saturating_add(1)),
            Law::Uniform { keys } | Law::Zipf { keys, .. } | Law::HotSet { keys, .. } => *keys,
        }
    }

    /// Probability of key `k` (a bounded law).
    fn p(&self, k: u64) -> f64 {
        match self {
            Law::Points(p) => p
                .binary_search_by_key(&k, |(x, _)| *x)
                .map_or(0.0, |i| p[i].1),
            Law::Uniform { keys } => 1.0 / *keys as f64,
            Law::Zipf { s, h, .. } => ((k + 1) as f64).powf(-s) / h,
            Law::HotSet { keys, hot, share } => {
                if k < *hot {
                    share / *hot as f64
                } else {
                    (1.0 - share) / (keys - hot) as f64
                }
            }
        }
    }

    /// Probability that a key falls in `a..b`.
    pub fn mass(&self, a: u64, b: u64) -> f64 {
        let b = b.min(self.keys());
        if b <= a {
            return 0.0;
        }
        match self {
            Law::Points(p) => p
                .iter()
                .filter(|(k, _)| (a..b).contains(k))
                .map(|(_, x)| x)
                .sum(),
            Law::Uniform { keys } => (b - a) as f64 / *keys as f64,
            Law::Zipf { s, h, .. } => (harmonic(b, *s) - harmonic(a, *s)) / h,
            Law::HotSet { keys, hot, share } => {
                let hot_part = b.min(*hot).saturating_sub(a);
                let cold_part = b.saturating_sub(a.max(*hot));
                let mut m = share * hot_part as f64 / *hot as f64;
                if keys > hot {
                    m += (1.0 - share) * cold_part as f64 / (keys - hot) as f64;
                }
                m
            }
        }
    }

    /// The load each of `shards` shards takes under `placement`, and how it was computed.
    pub fn loads(&self, placement: &Placement, shards: usize) -> (Vec<f64>, String) {
        let mut load = vec![0.0; shards];
        let mut add = |s: u32, p: f64| {
            if s != NO_SHARD {
                load[s as usize] += p;
            }
        };
        let keys = self.keys();
        if let Law::Points(points) = self {
            for (k, p) in points {
                add(placement.owner(*k), *p);
            }
            return (load, format!("exact over the {} keys drawn", points.len()));
        }
        if let Placement::Ranges {
            starts,
            owners,
            end,
        } = placement
        {
            for (i, (a, o)) in starts.iter().zip(owners).enumerate() {
                let b = starts.get(i + 1).copied().or(*end).unwrap_or(u64::MAX);
                add(*o, self.mass(*a, b));
            }
            return (load, format!("exact by range over {keys} keys"));
        }
        let top = keys.min(EXACT_KEYS);
        for k in 0..top {
            add(placement.owner(k), self.p(k));
        }
        if top == keys {
            return (load, format!("exact over {keys} keys"));
        }
        let tail = self.mass(top, keys);
        for (s, w) in tail_shares(placement, top, keys, shards).iter().enumerate() {
            load[s] += tail * w;
        }
        (
            load,
            format!(
                "the top {top} keys exactly, the other {} by the mean",
                keys - top
            ),
        )
    }
}

/// Each shard's expected share of the keys `top..keys` under a hash placement.
pub(super) fn tail_shares(placement: &Placement, top: u64, keys: u64, shards: usize) -> Vec<f64> {
    let mut share = vec![0.0; shards];
    match placement {
        Placement::HashMod {
            hash: Hash::Mix,
            members,
        } => members
            .iter()
            .for_each(|m| share[*m as usize] += 1.0 / members.len() as f64),
        Placement::HashMod {
            hash: Hash::Identity,
            members,
        } => {
            let n = members.len() as u64;
            let count = keys - top;
            for (i, m) in members.iter().enumerate() {
                // Keys k in top..keys with k mod n == i.
                let upto = |x: u64| x / n + u64::from(x % n > i as u64);
                share[*m as usize] += (upto(keys) - upto(top)) as f64 / count as f64;
            }
        }
        Placement::Ring(r) => share = r.arc_shares(shards),
        Placement::Ranges { .. } => {}
    }
    share
}

/// The key laws of the traffic that reaches router `group`, each with the requests its
/// workload sends in the measurement window (workloads from which the router can be
/// reached in the call graph).
pub fn laws(net: &Network, by: By) -> Vec<(Law, f64)> {
    let model = net.model;
    let (from, to) = (SimTime(model.warmup.0), SimTime(model.duration.0));
    model
        .workloads
        .iter()
        .filter(|w| {
            model
                .graph
                .shortest_path(&[w.target as usize], net.group)
                .is_some()
        })
        .map(|w| {
            let law = match (by, &w.arrivals) {
                (By::Client, Arrivals::Closed { users, .. }) => Law::Uniform {
                    keys: u64::from(*users),
                },
                (By::Client, _) => Law::Uniform {
                    keys: u64::from(w.clients.max(1)),
                },
                (By::Key, Arrivals::Trace(records)) => {
                    Law::empirical(records.iter().map(|r| r.key))
                }
                (By::Key, _) => {
                    let spec = model
                        .spec
                        .workloads
                        .get(&w.name)
                        .and_then(|s| s.keys.as_ref());
                    Law::of(&w.keys, spec)
                }
            };
            let n = w.expected_requests(from, to);
            (law, if n.is_finite() && n > 0.0 { n } else { 1.0 })
        })
        .collect()
}

/// The expected loads of router `def` (component `net.group`).
pub fn loads(def: &ShardsDef, net: &Network) -> Loads {
    let laws = laws(net, def.by);
    let n = def.shards.len();
    let model = net.model;
    let (start, end) = (model.warmup.0, model.duration.0);
    let total_weight: f64 = laws.iter().map(|(_, w)| w).sum();
    let keys = laws.iter().map(|(l, _)| l.keys()).max().unwrap_or(1);
    let mut share = vec![0.0; n];
    let mut present = vec![false; n];
    let mut moved = Vec::new();
    let mut methods: Vec<String> = Vec::new();
    let mut placement = def.placement.clone();
    for phase in 0..=def.changes.len() {
        if phase > 0 {
            let change = &def.changes[phase - 1];
            let next = change.kind.apply(&placement, &def.shards);
            if (start..end).contains(&change.at.0) {
                moved.push(moved_share(&placement, &next, keys));
            }
            placement = next;
        }
        let from = if phase == 0 {
            0
        } else {
            def.changes[phase - 1].at.0
        };
        let to = def.changes.get(phase).map_or(end, |c| c.at.0);
        let length = to.min(end).saturating_sub(from.max(start));
        if length == 0 {
            continue;
        }
        for m in placement.members() {
            present[m as usize] = true;
        }
        let weight = length as f64 / (end - start).max(1) as f64;
        for (law, w) in &laws {
            let (load, method) = law.loads(&placement, n);
            for (s, l) in share.iter_mut().zip(load) {
                *s += weight * w / total_weight * l;
            }
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    let busiest = share.iter().copied().fold(0.0, f64::max);
    let routed: f64 = share.iter().sum();
    let count = present.iter().filter(|p| **p).count().max(1) as f64;
    let hot_spot = if routed > 0.0 {
        busiest / (routed / count)
    } else {
        0.0
    };
    let mut warnings = Vec::new();
    if routed < 1.0 - 1e-9 && !laws.is_empty() {
        warnings.push(format!(
            "components.{}: no range holds the keys of about {:.2}% of the requests reaching it (the range table ends below the workloads' keys, {} of them); those requests fail as unavailable",
            net.def().name,
            (1.0 - routed) * 100.0,
            keys
        ));
    }
    Loads {
        share,
        present,
        busiest: if routed > 0.0 { busiest / routed } else { 0.0 },
        hot_spot,
        moved,
        keys,
        method: methods.join("; "),
        warnings,
    }
}

/// The estimates beside the simulated metrics: the busiest shard's share, the hot-spot
/// index and, with changes in the window, the share of keys they move.
pub fn metric_estimates(
    loads: &Loads,
    net: &Network,
    flow: &Flow,
    warnings: &mut Vec<String>,
) -> Vec<MetricEstimate> {
    warnings.extend(loads.warnings.iter().cloned());
    let model = net.model;
    let window_s = (model.duration.0 - model.warmup.0) as f64 / 1e9;
    let n = (flow.total() * window_s).max(1.0);
    let p = loads.busiest;
    // The busiest shard's count is binomial over the requests; 4 sd of its share plus 2
    // points for the bias of a maximum and of the key-law approximations.
    let tolerance = 0.02 + 4.0 * (p * (1.0 - p) / n).sqrt();
    let present = loads.present.iter().filter(|x| **x).count() as f64;
    let caveat = "the estimate takes the key laws of the workloads that reach the router, mixed by their requests, and the phases between changes by their length; a workload reaching only some shards, few requests or a changing rate move the simulated value".to_string();
    let mut out = vec![
        MetricEstimate {
            metric: "busiest_share".into(),
            value: p,
            method: loads.method.clone(),
            tolerance,
            caveat: caveat.clone(),
        },
        MetricEstimate {
            metric: "hot_spot_index".into(),
            value: loads.hot_spot,
            method: loads.method.clone(),
            tolerance: tolerance * present.max(1.0),
            caveat,
        },
    ];
    if !loads.moved.is_empty() {
        let share = loads.moved.iter().map(|m| m.share).sum::<f64>() / loads.moved.len() as f64;
        let exact = loads.moved.iter().all(|m| m.exact);
        out.push(MetricEstimate {
            metric: "moved_key_share".into(),
            value: share,
            method: if exact {
                format!("exact over keys 0 to {}", loads.keys - 1)
            } else {
                format!(
                    "over {EXACT_KEYS} evenly spaced keys of 0 to {}",
                    loads.keys - 1
                )
            },
            tolerance: 0.05,
            caveat: "the simulation counts the keys requested before each change, the estimate every key of the key space: few requested keys move the simulated share".into(),
        });
    }
    out
}

/// First pass: each shard gets its expected share of the flow, as a random split (QNA:
/// `p·ca² + 1 − p`).
pub fn pass_flows(loads: &Loads, def: &ShardsDef, flow: &Flow, routed: &mut [Flow]) {
    for (s, p) in def.shards.iter().zip(&loads.share) {
        if *p > 0.0 {
            routed[s.group as usize].add(&flow.rate, *p, p * flow.scv() + 1.0 - p);
        }
    }
}

/// Second pass: the router takes no time; a request's response is its shard's.
pub fn response(loads: &Loads, def: &ShardsDef, response_ms: &[f64]) -> f64 {
    let routed: f64 = loads.share.iter().sum();
    if routed <= 0.0 {
        return 0.0;
    }
    def.shards
        .iter()
        .zip(&loads.share)
        .map(|(s, p)| p / routed * response_ms[s.group as usize])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmonic_numbers_match_direct_sums() {
        for s in [0.0, 0.5, 0.99, 1.0, 1.2, 2.0] {
            for n in [1, 999, 1000, 1001, 5000, 200_000] {
                let direct: f64 = (1..=n).map(|i| (i as f64).powf(-s)).sum();
                let h = harmonic(n, s);
                assert!(
                    ((h - direct) / direct).abs() < 1e-12,
                    "H({n}, {s}) = {h}, direct {direct}"
                );
            }
        }
        // p_1 = 1/H(10^4, 1) = 0.102170 (validation README, popularity facts).
        assert!((1.0 / harmonic(10_000, 1.0) - 0.102170).abs() < 1e-6);
    }

    #[test]
    fn masses_add_up_and_match_probabilities() {
        let laws = [
            Law::Uniform { keys: 1000 },
            Law::Zipf {
                keys: 5000,
                s: 0.9,
                h: harmonic(5000, 0.9),
            },
            Law::HotSet {
                keys: 1000,
                hot: 10,
                share: 0.9,
            },
            Law::empirical([3, 3, 7, 1_000_000].into_iter()),
        ];
        for law in &laws {
            let k = law.keys();
            assert!((law.mass(0, k) - 1.0).abs() < 1e-12, "{law:?}");
            let split = law.mass(0, 7) + law.mass(7, k);
            assert!((split - 1.0).abs() < 1e-12, "{law:?}");
            let by_key: f64 = (0..7.min(k)).map(|i| law.p(i)).sum();
            assert!((law.mass(0, 7) - by_key).abs() < 1e-12, "{law:?}");
        }
    }

    #[test]
    fn a_zipf_law_over_hash_mod_loads_the_shard_of_key_zero() {
        let keys = 2_000_000;
        let law = Law::Zipf {
            keys,
            s: 1.0,
            h: harmonic(keys, 1.0),
        };
        let p = Placement::HashMod {
            hash: Hash::Mix,
            members: (0..8).collect(),
        };
        let (load, method) = law.loads(&p, 8);
        assert!(
            method.starts_with("the top 1048576 keys exactly"),
            "{method}"
        );
        assert!((load.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // Key 0 alone brings 1/H(2e6, 1) = 0.0665 to its shard.
        assert!(load[p.owner(0) as usize] > law.p(0));
        // The tail by its mean is within 0.1% of the key-by-key sum.
        let mut exact = [0.0; 8];
        for k in 0..keys {
            exact[p.owner(k) as usize] += law.p(k);
        }
        for (a, b) in load.iter().zip(exact) {
            assert!((a - b).abs() < 1e-3, "{load:?} against {exact:?}");
        }
        // Identity over ranges gives the exact mass of each range.
        let r = Placement::Ranges {
            starts: vec![0, 10],
            owners: vec![0, 1],
            end: None,
        };
        let (load, _) = law.loads(&r, 2);
        assert!((load[0] - harmonic(10, 1.0) / harmonic(keys, 1.0)).abs() < 1e-12);
    }
}
