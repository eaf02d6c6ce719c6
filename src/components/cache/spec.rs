//! The `cache` fields of a model file, as written. [`validate`](super::validate) turns
//! them into a [`CacheDef`](super::CacheDef).

use crate::distributions::DistributionSpec;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cache: instances holding up to `capacity` keys each, answering reads of the keys they
/// hold, and on a miss either reading through to `on_miss` or (without it) answering
/// "miss" to a cache-aside caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Keys an instance holds at most (at least 1).
    pub capacity: u64,
    /// Which key a full instance drops for a new one: "lru" (default), "lfu", "fifo",
    /// "random" or "slru".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction: Option<EvictionSpec>,
    /// With "slru": share of the capacity in the protected segment, in [0, 1] (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<f64>,
    /// Time to live of an entry from when it is put (default: none; entries stay until
    /// evicted or invalidated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationSpec>,
    /// A hit restarts the entry's time to live (default false: it runs from the put).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_refresh: Option<bool>,
    /// Time to answer a hit, and any operation answered by the cache alone (a set, an
    /// invalidation, a write-back write). Default: no time at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_time: Option<DistributionSpec>,
    /// Time a miss spends at the cache: before the call to `on_miss` (read-through), or
    /// to answer "miss" (cache-aside). Default: `hit_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miss_time: Option<DistributionSpec>,
    /// Component a miss reads through to (a database, a service or another cache); its
    /// answer fills the entry. Default: none (cache-aside: a miss answers with "miss" and
    /// the caller's handler fetches and sets the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_miss: Option<String>,
    /// Concurrent misses of one key share one call to `on_miss` (request coalescing, or
    /// single flight); default false: each miss makes its own call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<bool>,
    /// What a write does: "invalidate" (default), "write_through", "write_back" or
    /// "write_around".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WritePolicySpec>,
    /// With "write_back": how long after its first unflushed write an entry is written to
    /// `on_miss` (default "1s"). A dirty entry evicted, expired or invalidated is flushed at
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_after: Option<DurationSpec>,
    /// Start full with the most popular keys (keys 0 up to the capacity, as if each had been
    /// put and then read once), instead of empty (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<bool>,
}

impl crate::model::spec::KindFields for CacheSpec {}

/// Eviction policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvictionSpec {
    /// Least recently used.
    Lru,
    /// Least frequently used among the keys held (counts forgotten on eviction; ties go
    /// to the least recently used).
    Lfu,
    /// First in, first out.
    Fifo,
    /// A key drawn at random.
    Random,
    /// Segmented LRU: a probation and a protected segment, scan resistant.
    Slru,
}

/// What a write to the cache does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicySpec {
    /// Drop the key; with `on_miss`, the write then goes on to it.
    Invalidate,
    /// Write to `on_miss`, then put the key with the version it answers.
    WriteThrough,
    /// Put the key at once, marked dirty; it is written to `on_miss` later (`flush_after`,
    /// or when it leaves the cache).
    WriteBack,
    /// Write to `on_miss` only; an entry held keeps its old version until it leaves.
    WriteAround,
}

impl WritePolicySpec {
    /// Its name in model files.
    pub const fn name(self) -> &'static str {
        match self {
            WritePolicySpec::Invalidate => "invalidate",
            WritePolicySpec::WriteThrough => "write_through",
            WritePolicySpec::WriteBack => "write_back",
            WritePolicySpec::WriteAround => "write_around",
        }
    }
}
