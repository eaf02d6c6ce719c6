//! The `faults` list of a model file, as written.

use crate::distributions::DistributionSpec;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One fault: what it hits (a component, or one of its instances, or every instance placed
/// in a zone), what it does (exactly one effect), and when (`at` and `for`, or `random`).
/// A `partition` hits no component: it cuts the network between groups of zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Name in the results (default: the effect and the target, e.g. "crash db").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The component it hits (with `zone`: only its instances in that zone; not with
    /// `partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The zone it hits: every instance placed in it (of every component, or of `target`
    /// only), each its own fault window: a zone outage. Crash, slow or errors; scheduled,
    /// or random: the whole zone down and up together, at times drawn for the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The instance of the target it hits, counted from 0 (default: every instance, each
    /// its own fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The instance stops: {"mode": "refused"} (default; calls fail at once, as a closed
    /// port) or {"mode": "black_hole"} (calls hang until the client's timeout, as a dead
    /// host). What it held is lost; it comes back empty (a cache cold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashSpec>,
    /// Service times are multiplied by `factor` (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowSpec>,
    /// A `share` (0 to 1) of the requests arriving fail at once (cause "injected").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorsSpec>,
    /// At most `to` workers run requests (a CPU cut); those above finish what they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersSpec>,
    /// A cache forgets every key at `at` (it refills from its backend); no `for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush: Option<FlushSpec>,
    /// The network is cut between groups of zones: a call from a zone of one group to a
    /// zone of another fails at once (mode "refused") or is never answered (mode
    /// "black_hole"). No `target` or `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionSpec>,
    /// When it begins (with `for`: a scheduled fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DurationSpec>,
    /// How long it lasts (default: to the end of the run).
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub length: Option<DurationSpec>,
    /// Instead of `at`: it strikes each instance again and again (with `zone`: the zone's
    /// instances together), the time between two failures and the time to repair drawn
    /// from distributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomSpec>,
}

/// A crash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// How the instance answers while down (default "refused").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CrashModeSpec>,
}

/// How a crashed instance answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrashModeSpec {
    /// Calls fail at once (a closed port); calls it held fail too.
    Refused,
    /// Calls, and those it held, get no answer until the client's timeout (a dead host).
    BlackHole,
}

/// A slowdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowSpec {
    /// Service times are multiplied by this (> 0; 3 is three times slower).
    pub factor: f64,
}

/// Failing requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSpec {
    /// Share of arriving requests that fail, 0 to 1.
    pub share: f64,
}

/// A cut of the workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkersSpec {
    /// Workers left per instance (at least 1, fewer than it has).
    pub to: u32,
}

/// A cache flush: no fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlushSpec {}

/// Failures again and again, per instance, from the fault's own random stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    /// Time from a repair (or the start of the run) to the next failure (its mean is the
    /// MTBF).
    pub between: DistributionSpec,
    /// Time a failure lasts (its mean is the MTTR).
    pub repair: DistributionSpec,
}

/// A network partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Groups of zones that can still talk among themselves, e.g. `[["a"], ["b", "c"]]`;
    /// the zones left out of every group form one more group together. A zone is in one
    /// group at most.
    pub groups: Vec<Vec<String>>,
    /// What a call across the cut meets (default "refused": it fails at once with cause
    /// "partitioned"; "black_hole": no answer until the client's timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CrashModeSpec>,
}
