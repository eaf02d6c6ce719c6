//! The `database` fields of a model file, as written. [`validate`](super::validate) turns
//! them into a [`DatabaseDef`](super::DatabaseDef).

use crate::distributions::DistributionSpec;
use crate::model::spec::KindFields;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most read replicas a database may have.
pub const MAX_REPLICAS: u32 = 1000;

/// A database: a primary and `replicas` read replicas (the common `replicas` field), or
/// with `quorum` a set of peer copies. Each copy is an instance with its own workers,
/// queue and service times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// Requests a copy serves at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Requests that may wait per copy (default: unbounded); a call finding it full fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
    /// Time a worker takes to serve a read or a write, unless `read_time` or `write_time`
    /// says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<DistributionSpec>,
    /// Time a worker takes to serve a read (default `service_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<DistributionSpec>,
    /// Time a worker takes to serve a write (default `service_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_time: Option<DistributionSpec>,
    /// Where reads go: "primary", "replicas" (default; the primary when there are none),
    /// "any" (the primary or a replica) or "quorum" (with `quorum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<ReadsSpec>,
    /// How a read picks among the copies it may go to (and, with a quorum, a write its
    /// coordinator): "round_robin" (default), "random", "least_connections",
    /// "power_of_choices" (the less busy of two drawn at random) or "hash_key".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<BalanceSpec>,
    /// How writes reach the other copies (default: asynchronous with no lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationSpec>,
    /// Leaderless copies: a read asks `r` of them and takes the newest version, a write
    /// answers once `w` have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumSpec>,
    /// For this long after a client's own write, its reads go to the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_your_writes: Option<DurationSpec>,
    /// Writes commit in batches: up to `max_batch` at a time, the first waiting at most
    /// `max_wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_commit: Option<GroupCommitSpec>,
    /// Primary failover: once the primary has been down for `delay`, the most up-to-date
    /// live replica becomes the primary (default: none; writes fail while the primary is
    /// down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverSpec>,
    /// What a side of a network partition does when the copies sit in zones it cuts apart:
    /// "consistent" (default; only the side with the primary or a quorum serves, the other
    /// fails its calls) or "available" (every side serves: stale reads, writes on both
    /// sides reconciled by last writer wins when the partition heals). Given, the
    /// database also reports its conflicting, lost and split writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_mode: Option<PartitionModeSpec>,
}

/// What a side of a partition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartitionModeSpec {
    /// Only the side with the primary or a quorum serves (CP).
    Consistent,
    /// Every side serves (AP).
    Available,
}

impl KindFields for DatabaseSpec {
    /// A primary and `replicas` replicas (default 0), or the quorum's `n` copies.
    fn instances(&self, replicas: Option<u32>) -> Result<u32, String> {
        let n = self.quorum.as_ref().and_then(|q| q.n);
        match (replicas, n) {
            (Some(r), _) if r > MAX_REPLICAS => Err(format!(
                "a database has at most {MAX_REPLICAS} replicas, got {r}"
            )),
            (Some(r), Some(n)) if r + 1 != n => Err(format!(
                "{r} replicas make {} copies, but quorum.n is {n}; give one of the two",
                r + 1
            )),
            (Some(r), _) => Ok(r + 1),
            (None, Some(n)) if n > MAX_REPLICAS + 1 => Err(format!(
                "a database has at most {} copies, but quorum.n is {n}",
                MAX_REPLICAS + 1
            )),
            (None, Some(n)) => Ok(n.max(1)),
            (None, None) => Ok(1),
        }
    }
}

/// Where reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadsSpec {
    /// Every read to the primary: never stale.
    Primary,
    /// To the replicas (the primary when none is up).
    Replicas,
    /// To any copy, the primary included.
    Any,
    /// To a quorum of `quorum.r` copies; the newest version wins.
    Quorum,
}

/// How a call picks among the copies it may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalanceSpec {
    /// Each in turn.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The copy with the fewest requests (waiting or in service).
    LeastConnections,
    /// The less busy of two copies drawn at random.
    PowerOfChoices,
    /// By a hash of the request's key.
    HashKey,
}

/// How writes reach the other copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ReplicationSpec {
    /// The write answers once the primary has it; each replica applies it after its own
    /// lag: `{"async": {"lag": {"exponential": {"mean": "50ms"}}}}`.
    Async(AsyncSpec),
    /// The write answers once `acks` replicas have applied it (default all of them):
    /// `{"sync": {"lag": {"constant": "2ms"}, "acks": 1}}`.
    Sync(SyncSpec),
}

/// Asynchronous replication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncSpec {
    /// Time from a write's commit until a replica has applied it, drawn per write and per
    /// replica; a replica keeps the newest version it has applied.
    pub lag: DistributionSpec,
}

/// Synchronous (or semi-synchronous) replication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    /// Time from a write's commit until a replica has applied it (and the primary knows),
    /// drawn per write and per replica.
    pub lag: DistributionSpec,
    /// Replicas that must have applied a write before it answers (default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acks: Option<u32>,
}

/// Quorum reads and writes over `n` peer copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuorumSpec {
    /// Copies (default `replicas` + 1; sets the number of copies when `replicas` is not
    /// given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Copies a read asks; the newest version among their answers is returned.
    pub r: u32,
    /// Copies that must have a write before it answers.
    pub w: u32,
}

/// Group commit: writes gather into batches that commit together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCommitSpec {
    /// Most writes in one batch (default 1: each write commits alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<u32>,
    /// Longest a write waits for others to join its batch (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<DurationSpec>,
    /// Time to commit a batch, whatever its size (e.g. the log flush).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_cost: Option<DurationSpec>,
    /// Time added per write in the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_item_cost: Option<DurationSpec>,
}

/// Primary failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverSpec {
    /// Time from the primary's crash until a replica is promoted (the time to detect the
    /// crash and elect a new primary), e.g. "10s".
    pub delay: DurationSpec,
}
