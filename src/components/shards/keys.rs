//! What a shard router does to a keyed stream, for the estimates of the components holding
//! keys behind it (caches as shards): each shard gets only the keys it owns, at their full
//! rates, not every key at a share of the rate. A cache's hit ratio depends on that: a
//! quarter of the keys at their rates fill a quarter of the capacity one needs for all of
//! them at a quarter of theirs.
//!
//! The popular head of a stream ([`EXACT_PARTITION_KEYS`] keys) is handed out key by key to
//! its owner; the rest of each key range is split by each shard's share of those keys (of
//! the hash space for a mixed hash or a ring, by residue for `key mod N`), rounded to whole
//! keys with the remainders carried from range to range; a range table cuts ranges exactly.
//! Each shard's keys are renumbered from 0 in key order, keeping their rates, since what
//! the estimates read is how many keys are asked for how often. Phases between changes
//! weigh by their length in the measurement window.

use super::estimate::tail_shares;
use super::placement::{NO_SHARD, Placement};
use super::{By, ShardsDef};
use crate::analysis::keys::{KeyRange, KeyRates, OPS};
use crate::model::Model;

/// Keys of a stream handed to their owner one by one.
pub const EXACT_PARTITION_KEYS: u64 = 1 << 16;

/// The keys each target group of router `def` gets of the stream `keys` (by key or, for a
/// router by client, `None`: every shard sees every key).
pub fn partition_keys(
    def: &ShardsDef,
    model: &Model,
    keys: &KeyRates,
) -> Option<Vec<(usize, KeyRates)>> {
    if def.by == By::Client {
        return None;
    }
    let n = def.shards.len();
    let mut parts: Vec<Vec<KeyRates>> = vec![Vec::new(); n];
    for (placement, weight) in phases(def, model) {
        for (j, part) in split(&placement, keys, n).into_iter().enumerate() {
            if !part.ranges.is_empty() {
                parts[j].push(part.scaled(&[weight; OPS]));
            }
        }
    }
    Some(
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(j, p)| (def.shards[j].group as usize, KeyRates::sum(p)))
            .collect(),
    )
}

/// The placements of router `def` over the measurement window of `model`, each with the
/// share of the window it holds (the shares sum to 1).
pub fn phases(def: &ShardsDef, model: &Model) -> Vec<(Placement, f64)> {
    let (start, end) = (model.warmup.0, model.duration.0);
    let mut out = Vec::new();
    let mut placement = def.placement.clone();
    for phase in 0..=def.changes.len() {
        if phase > 0 {
            placement = def.changes[phase - 1].kind.apply(&placement, &def.shards);
        }
        let from = if phase == 0 {
            0
        } else {
            def.changes[phase - 1].at.0
        };
        let to = def.changes.get(phase).map_or(end, |c| c.at.0);
        let length = to.min(end).saturating_sub(from.max(start));
        if length > 0 {
            out.push((
                placement.clone(),
                length as f64 / (end - start).max(1) as f64,
            ));
        }
    }
    out
}

/// Keys renumbered from 0 as they are added, runs of equal rates merged.
#[derive(Default)]
struct Builder {
    ranges: Vec<KeyRange>,
    next: u64,
}

impl Builder {
    fn push(&mut self, count: u64, rates: [f64; OPS]) {
        if count == 0 {
            return;
        }
        match self.ranges.last_mut() {
            Some(last) if last.rates == rates => last.count += count,
            _ => self.ranges.push(KeyRange {
                first: self.next,
                count,
                rates,
            }),
        }
        self.next += count;
    }
}

/// The keys of `keys` each of `n` shards owns under `placement`, renumbered.
fn split(placement: &Placement, keys: &KeyRates, n: usize) -> Vec<KeyRates> {
    let mut out: Vec<Builder> = (0..n).map(|_| Builder::default()).collect();
    if let Placement::Ranges { starts, end, .. } = placement {
        for r in &keys.ranges {
            let stop = r.first + r.count;
            let mut k = r.first;
            while k < stop {
                // The owner holds from k to the next boundary of the table.
                let next = starts
                    .iter()
                    .copied()
                    .chain(*end)
                    .find(|b| *b > k)
                    .unwrap_or(u64::MAX)
                    .min(stop);
                let owner = placement.owner(k);
                if owner != NO_SHARD {
                    out[owner as usize].push(next - k, r.rates);
                }
                k = next;
            }
        }
        return finish(out);
    }
    let mut exact_left = EXACT_PARTITION_KEYS;
    let mut carry = vec![0.0; n];
    for r in &keys.ranges {
        let one_by_one = r.count.min(exact_left);
        for k in r.first..r.first + one_by_one {
            out[placement.owner(k) as usize].push(1, r.rates);
        }
        exact_left -= one_by_one;
        let (a, b) = (r.first + one_by_one, r.first + r.count);
        if a < b {
            let counts = whole_counts(&tail_shares(placement, a, b, n), b - a, &mut carry);
            for (j, c) in counts.into_iter().enumerate() {
                out[j].push(c, r.rates);
            }
        }
    }
    finish(out)
}

fn finish(out: Vec<Builder>) -> Vec<KeyRates> {
    out.into_iter()
        .map(|b| KeyRates { ranges: b.ranges })
        .collect()
}

/// `count` keys split by `shares` into whole numbers summing to `count`: each share's
/// exact part plus what it carried from earlier ranges, rounded down, then the keys left
/// to the largest remainders (ties to the lowest shard); remainders carry on.
fn whole_counts(shares: &[f64], count: u64, carry: &mut [f64]) -> Vec<u64> {
    let exact: Vec<f64> = shares
        .iter()
        .zip(carry.iter())
        .map(|(s, c)| s * count as f64 + c)
        .collect();
    let mut whole: Vec<u64> = exact.iter().map(|x| x.max(0.0).floor() as u64).collect();
    let mut total: u64 = whole.iter().sum();
    let rest = |whole: &[u64], j: usize| exact[j] - whole[j] as f64;
    while total > count {
        let j = (0..whole.len())
            .filter(|j| whole[*j] > 0)
            .min_by(|a, b| rest(&whole, *a).total_cmp(&rest(&whole, *b)))
            .unwrap_or(0);
        whole[j] -= 1;
        total -= 1;
    }
    while total < count {
        let j = (0..whole.len())
            .filter(|j| shares[*j] > 0.0)
            .max_by(|a, b| rest(&whole, *a).total_cmp(&rest(&whole, *b)).then(b.cmp(a)))
            .unwrap_or(0);
        whole[j] += 1;
        total += 1;
    }
    for (j, c) in carry.iter_mut().enumerate() {
        *c = exact[j] - whole[j] as f64;
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::keys::KeyRates;
    use crate::components::shards::placement::{Hash, Ring};
    use crate::model::spec::{KeysSpec, ZipfKeysSpec};

    fn zipf(keys: u64) -> KeyRates {
        KeyRates::of_law(Some(&KeysSpec::Zipf(ZipfKeysSpec { keys, s: 0.9 })))
    }

    #[test]
    fn every_key_goes_to_one_shard_with_its_rate() {
        let keys = zipf(2_000_000);
        let names = ["a", "b", "c", "d"];
        let shards: Vec<(u32, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32, *n))
            .collect();
        for placement in [
            Placement::HashMod {
                hash: Hash::Mix,
                members: vec![0, 1, 2, 3],
            },
            Placement::HashMod {
                hash: Hash::Identity,
                members: vec![0, 1, 2, 3],
            },
            Placement::Ring(Ring::new(50, 0, &shards)),
            Placement::Ranges {
                starts: vec![0, 10, 5000, 100_000],
                owners: vec![0, 1, 2, 3],
                end: None,
            },
        ] {
            let parts = split(&placement, &keys, 4);
            // Keys and rates are conserved.
            let count: u64 = parts.iter().map(|p| p.keys()).sum();
            assert_eq!(count, 2_000_000, "{placement:?}");
            let rate: f64 = parts.iter().map(|p| p.totals()[1]).sum();
            assert!((rate - 1.0).abs() < 1e-9, "{placement:?}");
            // The head key by key: key 0 at its own rate, on its owner only.
            let owner = placement.owner(0) as usize;
            assert_eq!(parts[owner].ranges[0].rates, keys.ranges[0].rates);
            // The load of each shard matches the key-by-key placement within 0.5%.
            let mut exact = [0.0; 4];
            for r in &keys.ranges {
                for k in r.first..r.first + r.count {
                    exact[placement.owner(k) as usize] += r.rates[1];
                }
            }
            for (p, e) in parts.iter().zip(exact) {
                assert!(
                    (p.totals()[1] - e).abs() < 0.005 * e.max(0.01),
                    "{placement:?}: {} against {e}",
                    p.totals()[1]
                );
            }
        }
    }

    #[test]
    fn whole_counts_sum_up_and_carry_remainders() {
        let mut carry = vec![0.0; 3];
        let mut got = [0u64; 3];
        for _ in 0..300 {
            let c = whole_counts(&[0.5, 0.3, 0.2], 7, &mut carry);
            assert_eq!(c.iter().sum::<u64>(), 7);
            for (g, x) in got.iter_mut().zip(c) {
                *g += x;
            }
        }
        // 2100 keys: exactly 1050, 630, 420.
        assert_eq!(got, [1050, 630, 420]);
    }
}
