//! Where a key lives: the placement of keys on shards by hash mod N, on a consistent-hash
//! ring with virtual nodes, or by a table of key ranges; how a placement changes when a
//! shard is added or removed; and how many keys of a key space two placements put on
//! different shards.
//!
//! Hashing is fixed and portable: a key's position is SplitMix64's finaliser applied to the
//! key xor a constant (so that a balancer hashing the same keys with the plain finaliser
//! behind a router does not see them pre-sorted), and a ring point is the same finaliser
//! over the hash of the shard's name, the ring's seed and the point's number. A key on a
//! ring belongs to the first point at or after its position, wrapping around (Karger et al.,
//! "Consistent hashing and random trees", STOC 1997); the owner is found by binary search
//! over the sorted points, O(log(N·V)).

use crate::random::{mix64, stable_hash};

/// A shard, as its position in the router's list of every shard it ever has.
pub type ShardIndex = u32;

/// The owner of a key that no range covers.
pub const NO_SHARD: ShardIndex = ShardIndex::MAX;

/// Xored into a key before it is mixed, so that shard placement is not correlated with a
/// load balancer's `hash_key` (which mixes the bare key).
const KEY_SALT: u64 = 0x243f_6a88_85a3_08d3;

/// Most keys a moved share is counted over one by one; a larger key space is counted over
/// this many evenly spaced keys (or exactly by its period, for `identity` hashing).
pub const EXACT_KEYS: u64 = 1 << 20;

/// How a key becomes the number a hash placement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// A fixed 64-bit mixer: neighbouring keys land on unrelated shards.
    Mix,
    /// The key itself (`key mod N`): neighbouring keys land on neighbouring shards.
    Identity,
}

impl Hash {
    /// The number placed for `key`.
    #[inline(always)]
    pub fn of(self, key: u64) -> u64 {
        match self {
            Hash::Mix => mix64(key ^ KEY_SALT),
            Hash::Identity => key,
        }
    }
}

/// The position on a ring of point `v` of the shard named `name`, on a ring drawn with
/// `seed`.
pub fn ring_point(name: &str, seed: u64, v: u32) -> u64 {
    mix64(stable_hash(name.as_bytes()) ^ mix64(mix64(seed) ^ u64::from(v)))
}

/// A consistent-hash ring: `vnodes` points per shard, sorted by position.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    /// Points per shard.
    pub vnodes: u32,
    /// Seed mixed into every point.
    pub seed: u64,
    /// Point positions, ascending.
    points: Vec<u64>,
    /// Owner of each point.
    owners: Vec<ShardIndex>,
}

impl Ring {
    /// A ring over `shards` (index, name), `vnodes` points each, drawn with `seed`.
    pub fn new(vnodes: u32, seed: u64, shards: &[(ShardIndex, &str)]) -> Self {
        let mut all: Vec<(u64, ShardIndex)> = shards
            .iter()
            .flat_map(|(s, name)| (0..vnodes).map(move |v| (ring_point(name, seed, v), *s)))
            .collect();
        // Equal positions (practically never) go to the lower shard index first.
        all.sort_unstable();
        Ring {
            vnodes,
            seed,
            points: all.iter().map(|p| p.0).collect(),
            owners: all.iter().map(|p| p.1).collect(),
        }
    }

    /// The shard owning position `h`: that of the first point at or after it, wrapping.
    #[inline]
    pub fn owner(&self, h: u64) -> ShardIndex {
        let i = self.points.partition_point(|p| *p < h);
        self.owners[if i == self.points.len() { 0 } else { i }]
    }

    /// The shards on the ring, ascending, once each.
    pub fn members(&self) -> Vec<ShardIndex> {
        let mut m = self.owners.clone();
        m.sort_unstable();
        m.dedup();
        m
    }

    /// The share of the hash space each of `shards` owns (the arcs ending at its points).
    pub fn arc_shares(&self, shards: usize) -> Vec<f64> {
        let mut share = vec![0.0; shards];
        let n = self.points.len();
        for i in 0..n {
            let prev = if i == 0 {
                self.points[n - 1]
            } else {
                self.points[i - 1]
            };
            let arc = self.points[i].wrapping_sub(prev);
            // A ring of one point owns the whole circle (arc 0 means all of it).
            let arc = if n == 1 {
                1.0
            } else {
                arc as f64 / 2f64.powi(64)
            };
            share[self.owners[i] as usize] += arc;
        }
        share
    }
}

/// Which shard owns each key.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Shard `members[hash(key) mod members.len()]`: members in the order they joined.
    HashMod {
        /// How keys are hashed.
        hash: Hash,
        /// The shards, in order.
        members: Vec<ShardIndex>,
    },
    /// A consistent-hash ring.
    Ring(Ring),
    /// Key ranges: range `i` covers keys from `starts[i]` up to the next start (the last up
    /// to `end`, or every larger key when `end` is `None`), and belongs to `owners[i]`.
    Ranges {
        /// First key of each range, ascending, the first 0.
        starts: Vec<u64>,
        /// Owner of each range.
        owners: Vec<ShardIndex>,
        /// First key past the last range, if it ends.
        end: Option<u64>,
    },
}

impl Placement {
    /// The shard owning `key` ([`NO_SHARD`] past the end of a range table).
    #[inline]
    pub fn owner(&self, key: u64) -> ShardIndex {
        match self {
            Placement::HashMod { hash, members } => {
                members[(hash.of(key) % members.len() as u64) as usize]
            }
            Placement::Ring(r) => r.owner(Hash::Mix.of(key)),
            Placement::Ranges {
                starts,
                owners,
                end,
            } => {
                if end.is_some_and(|e| key >= e) {
                    return NO_SHARD;
                }
                let i = starts.partition_point(|s| *s <= key);
                if i == 0 { NO_SHARD } else { owners[i - 1] }
            }
        }
    }

    /// The shards it places keys on, ascending, once each.
    pub fn members(&self) -> Vec<ShardIndex> {
        let mut m = match self {
            Placement::HashMod { members, .. } => members.clone(),
            Placement::Ring(r) => return r.members(),
            Placement::Ranges { owners, .. } => owners.clone(),
        };
        m.sort_unstable();
        m.dedup();
        m
    }

    /// The same placement with shard `s` (named `name`) added: last in a hash-mod list, or
    /// its points on the ring. Unchanged for key ranges (which change by a new table).
    pub fn with_added(&self, s: ShardIndex, name: &str) -> Placement {
        match self {
            Placement::HashMod { hash, members } => {
                let mut members = members.clone();
                members.push(s);
                Placement::HashMod {
                    hash: *hash,
                    members,
                }
            }
            Placement::Ring(r) => {
                let mut all: Vec<(u64, ShardIndex)> = r
                    .points
                    .iter()
                    .copied()
                    .zip(r.owners.iter().copied())
                    .collect();
                all.extend((0..r.vnodes).map(|v| (ring_point(name, r.seed, v), s)));
                all.sort_unstable();
                Placement::Ring(Ring {
                    vnodes: r.vnodes,
                    seed: r.seed,
                    points: all.iter().map(|p| p.0).collect(),
                    owners: all.iter().map(|p| p.1).collect(),
                })
            }
            Placement::Ranges { .. } => self.clone(),
        }
    }

    /// The same placement with shard `s` removed: the others keep their order in a
    /// hash-mod list (so most keys move), and their points on a ring (so only its keys
    /// move). Unchanged for key ranges.
    pub fn with_removed(&self, s: ShardIndex) -> Placement {
        match self {
            Placement::HashMod { hash, members } => Placement::HashMod {
                hash: *hash,
                members: members.iter().copied().filter(|m| *m != s).collect(),
            },
            Placement::Ring(r) => {
                let keep: Vec<usize> = (0..r.owners.len()).filter(|i| r.owners[*i] != s).collect();
                Placement::Ring(Ring {
                    vnodes: r.vnodes,
                    seed: r.seed,
                    points: keep.iter().map(|i| r.points[*i]).collect(),
                    owners: keep.iter().map(|i| r.owners[*i]).collect(),
                })
            }
            Placement::Ranges { .. } => self.clone(),
        }
    }

    /// Period of the owner as a function of the key, when there is a short one (hash mod
    /// N without mixing: N).
    fn period(&self) -> Option<u64> {
        match self {
            Placement::HashMod {
                hash: Hash::Identity,
                members,
            } => Some(members.len() as u64),
            _ => None,
        }
    }
}

/// How the keys `0..keys` moved from `before` to `after`: the share that changed owner,
/// and how it was counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moved {
    /// Share of the keys whose owner differs.
    pub share: f64,
    /// True when every key was counted (otherwise an even sample of them).
    pub exact: bool,
}

/// The share of the keys `0..keys` whose owner differs between `before` and `after`:
/// counted key by key up to [`EXACT_KEYS`] keys, through the joint period of two unmixed
/// hash-mod placements, by interval for two range tables, and over [`EXACT_KEYS`] evenly
/// spaced keys otherwise.
pub fn moved_share(before: &Placement, after: &Placement, keys: u64) -> Moved {
    if keys == 0 {
        return Moved {
            share: 0.0,
            exact: true,
        };
    }
    let differ = |k: u64| before.owner(k) != after.owner(k);
    let count = |from: u64, to: u64| (from..to).filter(|k| differ(*k)).count() as u64;
    if keys <= EXACT_KEYS {
        return Moved {
            share: count(0, keys) as f64 / keys as f64,
            exact: true,
        };
    }
    if let (Some(a), Some(b)) = (before.period(), after.period()) {
        let period = lcm(a, b);
        if period <= EXACT_KEYS {
            let moved = (keys / period) * count(0, period) + count(0, keys % period);
            return Moved {
                share: moved as f64 / keys as f64,
                exact: true,
            };
        }
    }
    if let (Placement::Ranges { .. }, Placement::Ranges { .. }) = (before, after) {
        return Moved {
            share: ranges_moved(before, after, keys) as f64 / keys as f64,
            exact: true,
        };
    }
    let step = keys as f64 / EXACT_KEYS as f64;
    let moved = (0..EXACT_KEYS)
        .filter(|i| differ((*i as f64 * step) as u64))
        .count();
    Moved {
        share: moved as f64 / EXACT_KEYS as f64,
        exact: false,
    }
}

/// Keys of `0..keys` whose owner differs between two range tables: the owner is constant
/// between consecutive boundaries of either table.
fn ranges_moved(before: &Placement, after: &Placement, keys: u64) -> u64 {
    let mut cuts: Vec<u64> = Vec::new();
    for p in [before, after] {
        if let Placement::Ranges { starts, end, .. } = p {
            cuts.extend(starts.iter().copied());
            cuts.extend(end.iter().copied());
        }
    }
    cuts.push(keys);
    cuts.retain(|c| *c <= keys);
    cuts.sort_unstable();
    cuts.dedup();
    let mut moved = 0;
    let mut from = 0;
    for c in cuts {
        if c > from && before.owner(from) != after.owner(from) {
            moved += c - from;
        }
        from = c;
    }
    moved
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b)).saturating_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modn(hash: Hash, n: u32) -> Placement {
        Placement::HashMod {
            hash,
            members: (0..n).collect(),
        }
    }

    #[test]
    fn identity_mod_n_to_n_plus_one_moves_the_exact_counts() {
        // Validation H2: keys 0..999999, key mod 10 -> mod 11 moves 0.909090 of them, and
        // mod 100 -> mod 101 0.990000 (direct counts).
        for (n, expected) in [(10, 0.90909), (100, 0.99)] {
            let before = modn(Hash::Identity, n);
            let after = before.with_added(n, "new");
            let m = moved_share(&before, &after, 1_000_000);
            assert!(m.exact);
            assert_eq!(m.share, expected, "N = {n}");
            // Beyond EXACT_KEYS, counted through the period (N(N+1)) exactly too.
            let big = moved_share(&before, &after, 10_000_000);
            assert!(big.exact);
            let n = u64::from(n);
            let moved = (0..10_000_000u64).filter(|k| k % n != k % (n + 1)).count();
            assert_eq!(big.share, moved as f64 / 1e7, "N = {n}");
        }
    }

    #[test]
    fn mixed_mod_n_moves_about_n_over_n_plus_one() {
        let before = modn(Hash::Mix, 10);
        let after = before.with_added(10, "new");
        let m = moved_share(&before, &after, 1_000_000);
        // Binomial(1e6, 10/11): sd 0.00029; 5 sd.
        assert!((m.share - 10.0 / 11.0).abs() < 0.0015, "{m:?}");
        // Removing shard 3 of 10 shifts the list: about 9/10 move.
        let removed = moved_share(&before, &before.with_removed(3), 1_000_000);
        assert!((removed.share - 0.9).abs() < 0.0015, "{removed:?}");
    }

    #[test]
    fn a_ring_moves_only_the_new_shards_arcs_and_finds_owners_by_search() {
        let names: Vec<String> = (0..10).map(|i| format!("db{i}")).collect();
        let shards: Vec<(ShardIndex, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32, n.as_str()))
            .collect();
        let ring = Placement::Ring(Ring::new(100, 0, &shards));
        let grown = ring.with_added(10, "db10");
        let Placement::Ring(g) = &grown else {
            unreachable!()
        };
        let arcs = g.arc_shares(11);
        assert!((arcs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let keys = 1_000_000;
        let m = moved_share(&ring, &grown, keys);
        // Every moved key went to the new shard, and the share is its arc (± binomial).
        assert!((m.share - arcs[10]).abs() < 0.002, "{m:?} {}", arcs[10]);
        for k in 0..10_000u64 {
            let (a, b) = (ring.owner(k), grown.owner(k));
            assert!(a == b || b == 10, "key {k}: {a} -> {b}");
        }
        // Removing it again restores the ring exactly.
        assert_eq!(grown.with_removed(10), ring);
        // The owner is the first point at or after the position, wrapping.
        let Placement::Ring(r) = &ring else {
            unreachable!()
        };
        let last = *r.points.last().unwrap();
        assert_eq!(r.owner(last.wrapping_add(1)), r.owners[0]);
        assert_eq!(r.owner(r.points[5]), r.owners[5]);
        assert_eq!(r.owner(r.points[5] - 1), r.owners[5]);
    }

    #[test]
    fn ranges_place_by_key_and_count_moves_by_interval() {
        let before = Placement::Ranges {
            starts: vec![0, 100, 200],
            owners: vec![0, 1, 2],
            end: None,
        };
        assert_eq!(before.owner(0), 0);
        assert_eq!(before.owner(199), 1);
        assert_eq!(before.owner(u64::MAX), 2);
        let after = Placement::Ranges {
            starts: vec![0, 150, 200],
            owners: vec![0, 1, 2],
            end: Some(2_000_000),
        };
        assert_eq!(after.owner(2_000_000), NO_SHARD);
        // Keys 100..149 move to shard 0: 50 of 4 000 000, counted by interval.
        let m = moved_share(&before, &after, 4_000_000);
        assert!(m.exact);
        assert_eq!(m.share, (50.0 + 2_000_000.0) / 4e6);
        let small = moved_share(&before, &after, 1000);
        assert!(small.exact);
        assert_eq!(small.share, 0.05);
    }

    #[test]
    fn hashing_is_fixed() {
        // A change here moves every shard placement in every model.
        assert_eq!(Hash::Mix.of(0), mix64(KEY_SALT));
        assert_eq!(Hash::Identity.of(7), 7);
        assert_eq!(ring_point("db0", 0, 0), ring_point("db0", 0, 0));
        assert_ne!(ring_point("db0", 0, 0), ring_point("db0", 1, 0));
        assert_ne!(ring_point("db0", 0, 0), ring_point("db0", 0, 1));
    }
}
