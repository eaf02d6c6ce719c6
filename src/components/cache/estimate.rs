//! The analytic estimate of a `cache`, from the rate of each key reaching it (see
//! [`crate::analysis::keyed_estimates`]), per instance (calls go to the instances in turn,
//! so each sees every key at its share of the rate).
//!
//! Under independent requests (each key `i` read as a Poisson stream of rate λᵢ) each policy
//! is a timer on the entry, fitted so the expected number of entries is the capacity C:
//!
//! - **LRU** (Che, Tung & Wang, IEEE JSAC 20(7) 2002): an entry leaves after being idle
//!   for the characteristic time t_C, solving Σ (1 − e^{−λᵢ t_C}) = C; key `i` hits with
//!   probability 1 − e^{−λᵢ t_C}. The same with a time to live T refreshed by hits, with
//!   the idle timer min(t_C, T).
//! - **FIFO and random** (Dan & Towsley 1990; Gelenbe 1973 shows they are equal under
//!   independent requests): an entry leaves at age T_C, solving Σ λᵢT_C/(1 + λᵢT_C) = C;
//!   hit probability λᵢT_C/(1 + λᵢT_C). A time to live set at insertion is the same timer
//!   (Jung, Berger & Balakrishnan, INFOCOM 2003), so the age limit is min(T_C, T).
//! - **LFU**: the C most requested keys are held (the top-C sum, the hit ratio of perfect
//!   LFU; this cache's LFU forgets counts on eviction, which costs a little, mostly while
//!   it fills).
//! - **SLRU** has no formula as simple: it is estimated as LRU, which it beats when the
//!   popular keys are hit often enough to stay protected.
//! - A time to live and a capacity together (LRU with T from insertion, FIFO with T
//!   refreshed): each key's hit probability is the smaller of the two timers' (an
//!   approximation, said so in the method).
//!
//! Writes and invalidations: with invalidation at rate μᵢ and puts (write-through,
//! write-back writes) at rate πᵢ, accesses that leave the entry in place come at aᵢ = λᵢ +
//! πᵢ. An idle timer t gives hit probability aᵢ/(aᵢ + μᵢ)·(1 − e^{−(aᵢ+μᵢ)t}) (the latest
//! access or invalidation before a read is an access less than t ago); an age limit t
//! gives aᵢL/(1 + aᵢL) with L = (1 − e^{−μᵢt})/μᵢ the mean life of an entry (t when μᵢ =
//! 0). Under Poisson arrivals an entry's presence at a random time has the same
//! probability (PASTA), which is what fills the capacity. Sets (a cache-aside handler's
//! fills after a miss) are taken as the fills a miss implies.
//!
//! The estimate assumes an entry is there as soon as its miss is answered: a slow backend
//! (a fill that takes long against the time between requests for a popular key) and a
//! cache still filling from cold lower the simulated hit ratio; the run warns then.

use super::store::Eviction;
use super::{CacheDef, WritePolicy};
use crate::analysis::keys::{KeyRange, KeyRates};
use crate::analysis::{Flow, KeyedEstimate, KeyedSend, MetricEstimate, Network, Traffic, class_op};
use crate::components::op::Op;

const READ: usize = Op::Read as usize;
const UNSET: usize = Op::Unset as usize;
const WRITE: usize = Op::Write as usize;
const INVALIDATE: usize = Op::Invalidate as usize;
const SET: usize = Op::Set as usize;

/// What the estimate found for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEstimate {
    /// Share of reads that hit.
    pub hit_ratio: f64,
    /// Mean number of entries held.
    pub entries: f64,
    /// Reads per second that miss (the fills asked of the backend without coalescing).
    pub miss_rate_per_s: f64,
    /// Highest per-key read rate (the most popular key), per second.
    pub top_key_rate_per_s: f64,
    /// The formula.
    pub method: &'static str,
}

/// How an entry leaves, by policy: after an idle time, at an age, or by rank (LFU).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Timer {
    Idle,
    Age,
    Rank,
}

/// One key range with its rates per key: reads λ, accesses that keep or put the entry a,
/// invalidations μ.
#[derive(Debug, Clone, Copy)]
struct Key {
    count: f64,
    reads: f64,
    access: f64,
    inval: f64,
}

/// Hit probability (= presence) of a key under timer `kind` of length `t` seconds.
fn presence(kind: Timer, k: &Key, t: f64) -> f64 {
    let (a, mu) = (k.access, k.inval);
    if a <= 0.0 {
        return 0.0;
    }
    match kind {
        Timer::Idle => {
            if t.is_infinite() {
                a / (a + mu)
            } else {
                a / (a + mu) * -(-(a + mu) * t).exp_m1()
            }
        }
        Timer::Age | Timer::Rank => {
            let life = if mu > 0.0 {
                if t.is_infinite() {
                    1.0 / mu
                } else {
                    -(-mu * t).exp_m1() / mu
                }
            } else {
                t
            };
            if life.is_infinite() {
                1.0
            } else {
                a * life / (1.0 + a * life)
            }
        }
    }
}

/// The keys of `traffic` as this cache sees them, per instance (`replicas` share it).
fn keys_of(def: &CacheDef, traffic: &Traffic, replicas: u32) -> Vec<Key> {
    let all = KeyRates::sum(&traffic.streams);
    let per = 1.0 / f64::from(replicas.max(1));
    all.ranges
        .iter()
        .map(|r: &KeyRange| {
            let x = &r.rates;
            let reads = (x[READ] + x[UNSET]) * per;
            let (puts, inval) = match def.write {
                WritePolicy::Invalidate => (0.0, x[WRITE] + x[INVALIDATE]),
                WritePolicy::WriteThrough | WritePolicy::WriteBack => (x[WRITE], x[INVALIDATE]),
                WritePolicy::WriteAround => (0.0, x[INVALIDATE]),
            };
            Key {
                count: r.count as f64,
                reads,
                access: reads + puts * per,
                inval: inval * per,
            }
        })
        .filter(|k| k.access > 0.0)
        .collect()
}

/// The estimate of one instance of `def` for `keys`, with each key range's hit probability.
fn estimate(def: &CacheDef, keys: &[Key]) -> (CacheEstimate, Vec<f64>) {
    let c = f64::from(def.capacity);
    let ttl = (def.ttl_ns > 0).then_some(def.ttl_ns as f64 / 1e9);
    let (kind, method) = match def.eviction {
        Eviction::Lru => (Timer::Idle, "che"),
        Eviction::Slru { .. } => (Timer::Idle, "che_as_lru"),
        Eviction::Fifo | Eviction::Random => (Timer::Age, "dan_towsley"),
        Eviction::Lfu => (Timer::Rank, "top_c"),
    };
    // The timer the TTL sets: an idle time when hits refresh it, an age otherwise.
    let ttl_kind = if def.ttl_refresh {
        Timer::Idle
    } else {
        Timer::Age
    };
    let ttl_h = |k: &Key| ttl.map_or(1.0, |t| presence(ttl_kind, k, t));
    let h: Vec<f64> = if kind == Timer::Rank {
        top_c(keys, c, &ttl_h)
    } else if kind == ttl_kind {
        // One timer of the same kind: the smaller of the fitted one and the TTL.
        let t = fit(keys, c, |k, t| {
            presence(kind, k, ttl.map_or(t, |ttl| t.min(ttl)))
        });
        let t = ttl.map_or(t, |ttl| t.min(ttl));
        keys.iter().map(|k| presence(kind, k, t)).collect()
    } else {
        let t = fit(keys, c, |k, t| presence(kind, k, t).min(ttl_h(k)));
        keys.iter()
            .map(|k| presence(kind, k, t).min(ttl_h(k)))
            .collect()
    };
    let method = match (ttl, kind == ttl_kind || kind == Timer::Rank) {
        (None, _) => method,
        (Some(_), true) if kind == ttl_kind => match kind {
            Timer::Idle if def.eviction == Eviction::Lru => "che_ttl",
            Timer::Idle => "che_as_lru_ttl",
            _ => "dan_towsley_ttl",
        },
        _ => match def.eviction {
            Eviction::Lfu => "top_c_ttl_approximate",
            _ => "timers_min_approximate",
        },
    };
    let reads: f64 = keys.iter().map(|k| k.count * k.reads).sum();
    let hits: f64 = keys
        .iter()
        .zip(&h)
        .map(|(k, h)| k.count * k.reads * h)
        .sum();
    let entries: f64 = keys.iter().zip(&h).map(|(k, h)| k.count * h).sum();
    let top = keys.iter().map(|k| k.reads).fold(0.0, f64::max);
    let est = CacheEstimate {
        hit_ratio: if reads > 0.0 { hits / reads } else { 0.0 },
        entries: entries.min(c),
        miss_rate_per_s: reads - hits,
        top_key_rate_per_s: top,
        method,
    };
    (est, h)
}

/// The timer length t (seconds) at which the expected entries Σ count·p(key, t) equal the
/// capacity `c`; infinite when every key fits.
fn fit(keys: &[Key], c: f64, p: impl Fn(&Key, f64) -> f64) -> f64 {
    let held = |t: f64| keys.iter().map(|k| k.count * p(k, t)).sum::<f64>();
    if held(f64::INFINITY) <= c {
        return f64::INFINITY;
    }
    // Bracket in log space, then bisect.
    let (mut lo, mut hi) = (1e-12f64, 1.0f64);
    while held(hi) < c && hi < 1e15 {
        lo = hi;
        hi *= 16.0;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if held(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// LFU: the most accessed keys are held, as many as fit (each present its share of the
/// time, less than all of it when invalidated), capped by the TTL's presence.
fn top_c(keys: &[Key], c: f64, ttl_h: &impl Fn(&Key) -> f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*b].access.total_cmp(&keys[*a].access).then(a.cmp(b)));
    let mut h = vec![0.0; keys.len()];
    let mut room = c;
    for i in order {
        if room <= 0.0 {
            break;
        }
        let k = &keys[i];
        let each = presence(Timer::Rank, k, f64::INFINITY).min(ttl_h(k));
        let need = k.count * each;
        // A range that does not fit whole holds the share of its keys that does.
        let share = if need <= room { 1.0 } else { room / need };
        h[i] = each * share;
        room -= need * share;
    }
    h
}

/// The keyed estimate of cache `def` (component `net.group`) for `traffic`; the cache
/// keeps the estimate of one instance to report.
pub fn keyed(def: &CacheDef, net: &Network, traffic: &Traffic) -> KeyedEstimate {
    let replicas = net.def().replicas;
    if traffic.streams.is_empty() || traffic.unknown > 0.0 {
        // No reads, or keys from a trace: no law to estimate from. Every read counts as a
        // miss for the rest of the analysis (the backend's load is then an upper bound).
        def.keep_estimate(None);
        return KeyedEstimate {
            hit_share: 0.0,
            sends: None,
        };
    }
    let keys = keys_of(def, traffic, replicas);
    let (est, h) = estimate(def, &keys);
    let sends = def.on_miss.map(|to| KeyedSend {
        to: to as usize,
        flow: miss_flow(net, &traffic.flow, est.hit_ratio),
        keys: miss_keys(&keys, &h, replicas),
    });
    let hit_share = est.hit_ratio;
    def.keep_estimate(Some(est));
    KeyedEstimate { hit_share, sends }
}

/// A simulated hit ratio further than this from the estimate (absolutely, plus
/// [`DIVERGENCE_RELATIVE`] of the estimate) is pointed out.
pub const DIVERGENCE_ABSOLUTE: f64 = 0.02;
/// See [`DIVERGENCE_ABSOLUTE`].
pub const DIVERGENCE_RELATIVE: f64 = 0.05;
/// Requests for a key during its fill from which a fill counts as slow.
const SLOW_FILL_REQUESTS: f64 = 0.05;

/// The estimates to show beside cache `def`'s simulated metrics (component `net.group`,
/// arriving `flow`): the hit ratio, with what can pull the simulated one away from it.
pub fn metric_estimates(
    def: &CacheDef,
    net: &Network,
    flow: &Flow,
    warnings: &mut Vec<String>,
) -> Vec<MetricEstimate> {
    let Some(e) = def.estimate() else {
        if flow.total() > 0.0 {
            warnings.push(format!(
                "components.{}: no hit ratio estimate: the keys of some of its requests come from a trace, whose key law is not known",
                net.def().name
            ));
        }
        return Vec::new();
    };
    vec![MetricEstimate {
        metric: "hit_ratio".to_string(),
        value: e.hit_ratio,
        method: e.method.to_string(),
        tolerance: DIVERGENCE_ABSOLUTE + DIVERGENCE_RELATIVE * e.hit_ratio,
        caveat: caveat(def, &e),
    }]
}

/// What can pull the simulated hit ratio of `def` away from its estimate `e`.
fn caveat(def: &CacheDef, e: &CacheEstimate) -> String {
    let mut parts = Vec::new();
    if def.on_miss.is_some() && e.top_key_rate_per_s > 0.0 {
        parts.push(format!(
            "the estimate puts an entry in as soon as its miss is answered: a fill slower than {} ms (the most popular key is asked for every {} ms) lets requests miss meanwhile{}",
            fmt(SLOW_FILL_REQUESTS * 1e3 / e.top_key_rate_per_s),
            fmt(1e3 / e.top_key_rate_per_s),
            if def.coalesce { " (or wait for the fill, coalesced)" } else { "" }
        ));
    }
    if !def.warm {
        parts.push(format!(
            "a cold cache misses while it fills (about {} entries per instance once full): start it warm or lengthen the warm-up",
            fmt(e.entries)
        ));
    }
    match def.eviction {
        Eviction::Slru { .. } => parts.push(
            "SLRU is estimated as LRU, which it beats when popular keys are hit often enough to stay protected".to_string(),
        ),
        Eviction::Lfu => parts.push(
            "this LFU forgets a key's count when it is evicted, so a popular key evicted early must earn its place again; the estimate is perfect LFU's".to_string(),
        ),
        _ => {}
    }
    if e.method.ends_with("approximate") {
        parts.push("the time to live and the capacity together are only approximated".to_string());
    }
    parts.push(
        "the formula assumes independent requests at steady rates (not a closed loop, bursts or a trace)"
            .to_string(),
    );
    parts.join("; ")
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The reads that miss, per class (the flow the cache sends its backend), as explicit reads.
fn miss_flow(net: &Network, flow: &Flow, hit: f64) -> Flow {
    let mut out = Flow::new(flow.rate.len());
    let reads = read_rates(net, flow);
    out.add(&reads, 1.0 - hit, 1.0);
    for (class, r) in reads.iter().enumerate() {
        if *r > 0.0 {
            out.add_op(class, Op::Read.code(), r * (1.0 - hit));
        }
    }
    out
}

/// The per-key rates of the misses of every instance together.
fn miss_keys(keys: &[Key], h: &[f64], replicas: u32) -> KeyRates {
    let n = f64::from(replicas.max(1));
    let mut first = 0u64;
    let ranges = keys
        .iter()
        .zip(h)
        .map(|(k, h)| {
            let mut rates = [0.0; crate::analysis::keys::OPS];
            rates[READ] = k.reads * (1.0 - h) * n;
            let r = KeyRange {
                first,
                count: k.count as u64,
                rates,
            };
            first += k.count as u64;
            r
        })
        .collect();
    KeyRates { ranges }
}

/// Reads per second per class in `flow`: explicit reads, and the rest of a class whose
/// own op is a read.
fn read_rates(net: &Network, flow: &Flow) -> Vec<f64> {
    flow.rate
        .iter()
        .enumerate()
        .map(|(class, rate)| {
            let explicit = flow.ops.get(class).copied().unwrap_or_default();
            let implicit = (rate - explicit.iter().sum::<f64>()).max(0.0);
            let own = class_op(net.model, class) as usize;
            explicit[READ]
                + explicit[UNSET]
                + if own == READ || own == UNSET {
                    implicit
                } else {
                    0.0
                }
        })
        .collect()
}

/// First pass: misses (reads × the estimated miss share) read through to `on_miss`, and
/// the writes the policy sends there. In a pass of one source of keyed traffic, the reads
/// stay here: the misses are a source of their own.
pub fn pass_flows(def: &CacheDef, net: &Network, flow: &Flow, flows: &mut [Flow]) {
    let Some(to) = def.on_miss else {
        return;
    };
    let to = to as usize;
    let k = flow.rate.len();
    let hit = net.hit_share(net.group).unwrap_or(0.0);
    let reads = read_rates(net, flow);
    if !net.by_source {
        let p = 1.0 - hit;
        flows[to].add(&reads, p, p * flow.scv() + 1.0 - p);
        for (class, r) in reads.iter().enumerate() {
            if *r > 0.0 {
                flows[to].add_op(class, Op::Read.code(), r * p);
            }
        }
    }
    // Writes (explicit or by class) go on, whatever the policy: write-back's flushes are
    // at most one per write.
    let writes: Vec<f64> = (0..k)
        .map(|class| {
            let explicit = flow.ops.get(class).copied().unwrap_or_default();
            let implicit = (flow.rate[class] - explicit.iter().sum::<f64>()).max(0.0);
            explicit[WRITE]
                + if class_op(net.model, class) as usize == WRITE {
                    implicit
                } else {
                    0.0
                }
        })
        .collect();
    if writes.iter().any(|w| *w > 0.0) {
        flows[to].add(&writes, 1.0, flow.scv());
        for (class, w) in writes.iter().enumerate() {
            if *w > 0.0 {
                flows[to].add_op(class, Op::Write.code(), *w);
            }
        }
    }
}

/// Second pass: the mean time to answer (ms), mixing operations by rate.
pub fn response(def: &CacheDef, net: &Network, flow: &Flow, response_ms: &[f64]) -> f64 {
    let ops = flow.op_rates(|class| class_op(net.model, class));
    let total: f64 = ops.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let hit_ms = def.hit_time.mean_ns() / 1e6;
    let miss_ms = def.miss_time.mean_ns() / 1e6;
    let backend = def.on_miss.map_or(0.0, |g| response_ms[g as usize]);
    let h = net.hit_share(net.group).unwrap_or(0.0);
    let read_ms = h * hit_ms + (1.0 - h) * (miss_ms + backend);
    let write_ms = match (def.write, def.on_miss) {
        (WritePolicy::WriteBack, _) | (_, None) => hit_ms,
        _ => backend,
    };
    ((ops[READ] + ops[UNSET]) * read_ms
        + (ops[SET] + ops[INVALIDATE]) * hit_ms
        + ops[WRITE] * write_ms)
        / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributions::Distribution;
    use crate::model::spec::{KeysSpec, ZipfKeysSpec};

    fn def(capacity: u32, eviction: Eviction, ttl_s: f64, refresh: bool) -> CacheDef {
        CacheDef {
            capacity,
            eviction,
            ttl_ns: (ttl_s * 1e9) as u64,
            ttl_refresh: refresh,
            hit_time: Distribution::constant_ns(0.0),
            miss_time: Distribution::constant_ns(0.0),
            on_miss: None,
            coalesce: false,
            write: WritePolicy::Invalidate,
            flush_after_ns: 0,
            warm: false,
            classes: vec!["default".into()],
            links: Vec::new(),
            estimate: Default::default(),
        }
    }

    fn zipf(n: u64, s: f64, rate: f64) -> Vec<Key> {
        let law = KeyRates::of_law(Some(&KeysSpec::Zipf(ZipfKeysSpec { keys: n, s })));
        law.ranges
            .iter()
            .map(|r| Key {
                count: r.count as f64,
                reads: r.rates[READ] * rate,
                access: r.rates[READ] * rate,
                inval: 0.0,
            })
            .collect()
    }

    /// Validation C1–C4 (../shared/validation section 4): Che for LRU, the top-C sum for
    /// LFU and the Dan–Towsley approximation for FIFO, for every row of the table.
    #[test]
    fn the_formulas_give_the_reference_values() {
        let rows = [
            (10_000, 0.8, 100, 0.156625, 0.300046, 0.133625),
            (10_000, 0.8, 1000, 0.436660, 0.570618, 0.394179),
            (10_000, 1.0, 100, 0.390525, 0.529995, 0.342332),
            (10_000, 1.0, 1000, 0.675602, 0.764791, 0.630906),
            (100_000, 0.8, 1000, 0.204334, 0.339529, 0.179212),
            (100_000, 0.8, 10_000, 0.468685, 0.595021, 0.428371),
            (100_000, 1.0, 1000, 0.506170, 0.619138, 0.464789),
            (100_000, 1.0, 10_000, 0.737340, 0.809552, 0.701020),
        ];
        for (n, s, c, lru, lfu, fifo) in rows {
            let keys = zipf(n, s, 1.0);
            let hit = |e: Eviction| estimate(&def(c, e, 0.0, false), &keys).0.hit_ratio;
            assert!((hit(Eviction::Lru) - lru).abs() < 2e-6, "{n} {s} {c} lru");
            assert!((hit(Eviction::Lfu) - lfu).abs() < 2e-6, "{n} {s} {c} lfu");
            assert!(
                (hit(Eviction::Fifo) - fifo).abs() < 2e-6,
                "{n} {s} {c} fifo"
            );
            assert_eq!(hit(Eviction::Random), hit(Eviction::Fifo));
        }
    }

    /// Validation C5: a TTL cache with room for every key.
    #[test]
    fn ttl_formulas_give_the_reference_values() {
        let keys = zipf(10_000, 0.8, 1000.0);
        for (t, insert, insert_keys, refresh, refresh_keys) in [
            (0.01, 0.0256806, 9.74319, 0.0278692, 9.85568),
            (0.1, 0.123990, 87.6010, 0.148574, 90.8564),
            (1.0, 0.332711, 667.289, 0.384301, 722.108),
        ] {
            let (e, _) = estimate(&def(1_000_000, Eviction::Lru, t, false), &keys);
            assert!((e.hit_ratio - insert).abs() < 2e-6, "{t}: {e:?}");
            assert!((e.entries - insert_keys).abs() < 2e-3, "{t}: {e:?}");
            assert!(
                (e.miss_rate_per_s - insert_keys / t).abs() < 2e-2,
                "{t}: {e:?}"
            );
            let (e, _) = estimate(&def(1_000_000, Eviction::Lru, t, true), &keys);
            assert!((e.hit_ratio - refresh).abs() < 2e-6, "{t}: {e:?}");
            assert!((e.entries - refresh_keys).abs() < 2e-3, "{t}: {e:?}");
        }
        // One key at 2 per second, T = 1 s.
        let one = [Key {
            count: 1.0,
            reads: 2.0,
            access: 2.0,
            inval: 0.0,
        }];
        let insert = estimate(&def(10, Eviction::Fifo, 1.0, false), &one).0;
        assert!((insert.hit_ratio - 2.0 / 3.0).abs() < 1e-12);
        let refresh = estimate(&def(10, Eviction::Fifo, 1.0, true), &one).0;
        assert!((refresh.hit_ratio - 0.864665).abs() < 1e-6);
    }

    #[test]
    fn invalidations_lower_the_hit_ratio_and_writes_through_raise_it() {
        // One key read at 1/s and written at 1/s, LRU with room: invalidated, a read hits
        // when the read came after the latest write: 1/2.
        let k = |access: f64, inval: f64| Key {
            count: 1.0,
            reads: 1.0,
            access,
            inval,
        };
        let d = def(10, Eviction::Lru, 0.0, false);
        assert!((estimate(&d, &[k(1.0, 1.0)]).0.hit_ratio - 0.5).abs() < 1e-12);
        assert_eq!(estimate(&d, &[k(2.0, 0.0)]).0.hit_ratio, 1.0);
    }
}
