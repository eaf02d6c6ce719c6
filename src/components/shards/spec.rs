//! The `shards` fields of a model file, as written. [`validate`](super::validate) turns
//! them into a [`ShardsDef`](super::ShardsDef).

use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A shard router: each request goes to the one component that owns its key (or client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardsSpec {
    /// The components keys are spread over, in order (shard 0, 1, ...): databases, caches,
    /// services. With "ranges" it may be left out (the shards are those the table names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<String>>,
    /// How a key finds its shard (default "hash_mod").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategySpec>,
    /// With "hash_mod": how the key is hashed, "mix" (default: a fixed 64-bit mixer, so
    /// neighbouring keys land on unrelated shards) or "identity" (the key itself: key mod N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<HashSpec>,
    /// What is placed: the request's "key" (default) or its "client" (a closed-loop
    /// user, or one of an open workload's `clients`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<BySpec>,
    /// Shards added or removed during the run, in time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeSpec>>,
}

impl crate::model::spec::KindFields for ShardsSpec {}

/// How keys are placed on shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StrategySpec {
    /// "hash_mod": shard number hash(key) mod N. Adding or removing a shard moves most keys.
    HashMod,
    /// {"consistent": {"vnodes": 100}}: a consistent-hash ring with `vnodes` points per
    /// shard. Adding a shard to N moves about 1/(N+1) of the keys, all to it.
    Consistent(ConsistentSpec),
    /// {"ranges": [{"shard": "db0", "from": 0, "to": 500000}, {"shard": "db1", "from":
    /// 500000}]}: contiguous key ranges from key 0, each owned by a shard.
    Ranges(Vec<RangeSpec>),
}

/// A consistent-hash ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistentSpec {
    /// Points (virtual nodes) per shard on the ring (default 100, at most 10000). More
    /// points spread keys more evenly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnodes: Option<u32>,
    /// Mixed into every point's position (default 0): another seed draws another ring,
    /// to see how much the balance of one placement owes to luck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One range of keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// The component owning the range.
    pub shard: String,
    /// First key of the range.
    pub from: u64,
    /// First key past the range. Every range but the last needs one, equal to the next
    /// range's `from`; without it the last range takes every larger key (with it, a
    /// request for a larger key fails as unavailable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// How keys are hashed by "hash_mod".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HashSpec {
    /// A fixed 64-bit mixer.
    Mix,
    /// The key itself.
    Identity,
}

/// What a router places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BySpec {
    /// The request's key.
    Key,
    /// The request's client.
    Client,
}

/// A change of the shards at a time in the run: exactly one of `add`, `remove` (hash
/// strategies) or `ranges` (a new range table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, from the start of the run (warm-up included), e.g. "5m".
    pub at: DurationSpec,
    /// A component that becomes a shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    /// A shard that stops being one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
    /// With "ranges": the new range table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<RangeSpec>>,
}
