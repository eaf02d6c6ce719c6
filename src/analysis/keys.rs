//! Request rates per key, for the estimates of components that hold keys (a cache's hit
//! ratio depends on how often each key is asked for, not only on the total rate).
//!
//! A [`KeyRates`] is piecewise constant over key ranges: the popular head of a Zipf law key
//! by key, its long tail in ranges whose rates differ by less than [`TAIL_RATIO`] from end
//! to end, so a 10-million-key catalog takes a few thousand ranges. Each range holds the
//! per-key rate of each operation (read, write, invalidate, set).

use crate::components::op::Op;
use crate::model::spec::KeysSpec;

/// Operations told apart, by [`Op`] code (reads and calls without an operation together).
pub const OPS: usize = 5;

/// Keys of a Zipf law kept one by one.
const EXACT_KEYS: u64 = 1000;
/// Largest ratio between the first and last key's rate of a tail range of a Zipf law.
pub const TAIL_RATIO: f64 = 1.002;

/// Keys `first..first + count`, each asked for at the same rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyRange {
    /// First key.
    pub first: u64,
    /// Number of keys.
    pub count: u64,
    /// Per key: requests per second (or probability, for a law) by op code; the
    /// [`Op::Unset`] slot is unused (those are reads).
    pub rates: [f64; OPS],
}

/// Per-key rates over consecutive key ranges from key 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRates {
    /// The ranges, in key order, each starting where the previous ends.
    pub ranges: Vec<KeyRange>,
}

const READ: usize = Op::Read as usize;

impl KeyRates {
    /// The popularity of a key law: the probability of each key in the read slot. `None`
    /// (no keys given) is every request on key 0.
    pub fn of_law(keys: Option<&KeysSpec>) -> KeyRates {
        let one = |first: u64, count: u64, p: f64| {
            let mut rates = [0.0; OPS];
            rates[READ] = p;
            KeyRange {
                first,
                count,
                rates,
            }
        };
        let ranges = match keys {
            None => vec![one(0, 1, 1.0)],
            Some(KeysSpec::Uniform(u)) => {
                let n = u.keys.max(1);
                vec![one(0, n, 1.0 / n as f64)]
            }
            Some(KeysSpec::Zipf(z)) => zipf(z.keys.max(1), z.s)
                .into_iter()
                .map(|(first, count, p)| one(first, count, p))
                .collect(),
            Some(KeysSpec::HotSet(h)) => {
                let keys = h.keys.max(1);
                let hot = ((keys as f64 * h.hot_fraction).round() as u64).clamp(1, keys);
                hot_set(keys, hot, h.traffic, one)
            }
            Some(KeysSpec::HotKey(h)) => hot_set(h.keys.max(1), 1, h.traffic, one),
        };
        KeyRates { ranges }
    }

    /// The same keys with each range's read probability spread over the operations by
    /// `per_op` (requests per second of each op code): rate = probability × `per_op`.
    pub fn scaled_law(&self, per_op: &[f64; OPS]) -> KeyRates {
        self.map(|r| {
            let p = r.rates[READ];
            let mut rates = [0.0; OPS];
            for (o, x) in rates.iter_mut().zip(per_op) {
                *o = p * x;
            }
            rates
        })
    }

    /// Each range's rates multiplied op by op by `factor`.
    pub fn scaled(&self, factor: &[f64; OPS]) -> KeyRates {
        self.map(|r| {
            let mut rates = r.rates;
            for (o, f) in rates.iter_mut().zip(factor) {
                *o *= f;
            }
            rates
        })
    }

    /// The same ranges with rates `f(range)`.
    pub fn map(&self, f: impl Fn(&KeyRange) -> [f64; OPS]) -> KeyRates {
        KeyRates {
            ranges: self
                .ranges
                .iter()
                .map(|r| KeyRange { rates: f(r), ..*r })
                .collect(),
        }
    }

    /// Total rate of each op over all keys.
    pub fn totals(&self) -> [f64; OPS] {
        let mut t = [0.0; OPS];
        for r in &self.ranges {
            for (o, x) in t.iter_mut().zip(&r.rates) {
                *o += x * r.count as f64;
            }
        }
        t
    }

    /// Number of keys covered.
    pub fn keys(&self) -> u64 {
        self.ranges.last().map_or(0, |r| r.first + r.count)
    }

    /// The key-by-key sum of several: each key's rates added (a key beyond a profile's
    /// last range has rate 0 there). Ranges are cut where any input's are.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a KeyRates>) -> KeyRates {
        let all: Vec<&KeyRates> = all.into_iter().filter(|k| !k.ranges.is_empty()).collect();
        match all.len() {
            0 => return KeyRates::default(),
            1 => return all[0].clone(),
            _ => {}
        }
        let end = all.iter().map(|k| k.keys()).max().unwrap_or(0);
        let mut cursor = vec![0usize; all.len()];
        let mut out = Vec::new();
        let mut at = 0u64;
        while at < end {
            let mut next = end;
            let mut rates = [0.0; OPS];
            for (k, c) in all.iter().zip(cursor.iter_mut()) {
                while *c < k.ranges.len() && k.ranges[*c].first + k.ranges[*c].count <= at {
                    *c += 1;
                }
                if let Some(r) = k.ranges.get(*c) {
                    next = next.min(r.first + r.count);
                    for (o, x) in rates.iter_mut().zip(&r.rates) {
                        *o += x;
                    }
                }
            }
            out.push(KeyRange {
                first: at,
                count: next - at,
                rates,
            });
            at = next;
        }
        KeyRates { ranges: out }
    }
}

fn hot_set(
    keys: u64,
    hot: u64,
    traffic: f64,
    one: impl Fn(u64, u64, f64) -> KeyRange,
) -> Vec<KeyRange> {
    if hot >= keys {
        return vec![one(0, keys, 1.0 / keys as f64)];
    }
    vec![
        one(0, hot, traffic / hot as f64),
        one(hot, keys - hot, (1.0 - traffic) / (keys - hot) as f64),
    ]
}

/// Zipf(s) over `n` keys, P(key k−1) = k^−s / H(n, s): (first key, count, probability per
/// key). Tail ranges hold the midpoint-rule mass ∫ x^−s over [a − ½, b − ½], accurate to
/// about s(s+1)/24 k^−2 relatively at rank k (below 10⁻⁷ past the exact head).
fn zipf(n: u64, s: f64) -> Vec<(u64, u64, f64)> {
    let mut out: Vec<(u64, u64, f64)> = Vec::new();
    let exact = n.min(EXACT_KEYS);
    for k in 1..=exact {
        out.push((k - 1, 1, (k as f64).powf(-s)));
    }
    let integral = |a: f64, b: f64| {
        if (s - 1.0).abs() < 1e-12 {
            (b / a).ln()
        } else {
            (b.powf(1.0 - s) - a.powf(1.0 - s)) / (1.0 - s)
        }
    };
    let mut k = exact + 1;
    let step = TAIL_RATIO.powf(1.0 / s.max(1e-9));
    while k <= n {
        let end = ((k as f64 * step).floor() as u64).clamp(k + 1, n + 1);
        let mass = integral(k as f64 - 0.5, end as f64 - 0.5);
        let count = end - k;
        out.push((k - 1, count, mass / count as f64));
        k = end;
    }
    let h: f64 = out.iter().map(|(_, c, p)| *c as f64 * p).sum();
    for r in &mut out {
        r.2 /= h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{HotKeySpec, ZipfKeysSpec};

    #[test]
    fn zipf_matches_the_validation_popularity_facts() {
        // ../shared/validation section 4: p_1 and the share of the top 1% of keys.
        for (n, s, p1, top) in [
            (10_000, 0.8, 0.0368859, 0.300046),
            (10_000, 1.0, 0.102170, 0.529995),
            (100_000, 0.8, 0.0219479, 0.339529),
            (100_000, 1.0, 0.082712, 0.619138),
        ] {
            let k = KeyRates::of_law(Some(&KeysSpec::Zipf(ZipfKeysSpec { keys: n, s })));
            assert_eq!(k.keys(), n);
            let t = k.totals()[READ];
            assert!((t - 1.0).abs() < 1e-9, "{t}");
            assert!((k.ranges[0].rates[READ] - p1).abs() < 1e-6, "{n} {s}");
            let head: f64 = k.ranges[..(n / 100) as usize]
                .iter()
                .map(|r| r.rates[READ])
                .sum();
            assert!((head - top).abs() < 2e-6, "{n} {s}: {head}");
        }
        // Ten million keys in a few thousand ranges.
        let big = KeyRates::of_law(Some(&KeysSpec::Zipf(ZipfKeysSpec {
            keys: 10_000_000,
            s: 0.9,
        })));
        assert!(big.ranges.len() < 12_000, "{}", big.ranges.len());
        assert!((big.totals()[READ] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn sums_cut_ranges_where_either_does() {
        let hot = KeyRates::of_law(Some(&KeysSpec::HotKey(HotKeySpec {
            keys: 10,
            traffic: 0.5,
        })));
        let one = KeyRates::of_law(None).scaled_law(&[0.0, 2.0, 0.0, 0.0, 0.0]);
        let s = KeyRates::sum([&hot, &one]);
        assert_eq!(s.keys(), 10);
        assert_eq!(s.ranges[0].count, 1);
        assert_eq!(s.ranges[0].rates[READ], 2.5);
        assert_eq!(s.ranges[1].rates[READ], 0.5 / 9.0);
        assert!((s.totals()[READ] - 3.0).abs() < 1e-12);
    }
}
