//! `database`: a primary and read replicas, or leaderless copies read and written by
//! quorum. Every copy is an instance with its own workers, queue and service time per
//! operation; every write makes a new version of its key, and every read is measured
//! against the newest acknowledged version: fresh or stale, by how many versions, and
//! since when.
//!
//! How a request moves: calls to the database are routed by its picker ([`DatabasePicker`]): writes
//! to the primary, reads to the primary, the replicas or any copy by a balancing policy,
//! or (with a quorum) every call to the coordinator the policy picks. A copy serves a call
//! on a worker (waiting in its queue if all are busy). A write then commits (alone, or in a
//! group-commit batch): its key gets a new version, which each other copy applies after a
//! lag drawn per write and per copy (the newest version wins); the write answers at once
//! (asynchronous replication), or once `acks` replicas (synchronous) or `w - 1` other
//! copies (a quorum) have applied it. A read answers with the version its copy holds; a
//! quorum read asks `r` copies (its coordinator and the next ones) and answers with the
//! newest version among their answers. The reply carries the version read or written
//! ([`Call::version`](crate::engine::Call::version)).
//!
//! The copies of one database share the run's key versions (`state.rs`); only keys that
//! have been written hold state.

mod estimate;
mod failover;
mod gray;
mod node;
mod partition;
mod pick;
pub mod sides;
pub mod spec;
mod state;
pub mod validate;

use super::Kind;
use crate::analysis::{Flow, MetricEstimate, Network, ServiceEstimate};
use crate::distributions::Distribution;
use crate::engine::{Component, InstanceId, Pick};
use crate::metrics::declare::{Combine::*, MetricDecl, Saturation, Unit::*};
use crate::model::graph::Link;
use crate::random::Rng;
use crate::time::SimDuration;
pub use estimate::{
    quorum_availability, stale_share_constant_lag, stale_share_exponential_lag, stale_share_of_lag,
};
use failover::Role;
pub use node::DatabaseNode;
pub use partition::PartitionMode;
pub use pick::DatabasePicker;
use state::{Loads, Shared};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Where reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// To the primary.
    Primary,
    /// To the replicas (the primary when none is up).
    Replicas,
    /// To any copy.
    Any,
    /// To a quorum of copies, through the coordinator the policy picks.
    Quorum,
}

/// How a call picks among the copies it may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each in turn.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The copy with the fewest requests.
    LeastConnections,
    /// The less busy of two drawn at random.
    PowerOfChoices,
    /// By a hash of the key.
    HashKey,
}

impl Balance {
    /// True when the policy reads the copies' loads.
    pub fn reads_loads(self) -> bool {
        matches!(self, Balance::LeastConnections | Balance::PowerOfChoices)
    }
}

/// Group commit: writes commit in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCommit {
    /// Most writes in a batch.
    pub max_batch: u32,
    /// Longest the first write of a batch waits for others.
    pub max_wait: SimDuration,
    /// Time to commit a batch.
    pub fixed_cost: SimDuration,
    /// Time added per write in the batch.
    pub per_item_cost: SimDuration,
}

/// A validated database.
#[derive(Debug, Clone)]
pub struct DatabaseDef {
    /// Workers per copy.
    pub workers: u32,
    /// Requests that may wait per copy; `None` is unbounded.
    pub queue_capacity: Option<u32>,
    /// Time to serve a read.
    pub read_time: Distribution,
    /// Time to serve a write.
    pub write_time: Distribution,
    /// Copies: the primary and its replicas, or a quorum's `n`.
    pub copies: u32,
    /// Where reads go.
    pub reads: Reads,
    /// How calls pick a copy.
    pub balance: Balance,
    /// Time for a write to reach another copy, drawn per write and per copy.
    pub lag: Distribution,
    /// Other copies a write waits for before it answers: 0 asynchronous, the `acks` of
    /// synchronous replication, or a quorum's `w - 1`.
    pub wait_for: u32,
    /// Copies a quorum read asks (1 without a quorum).
    pub quorum_r: u32,
    /// How long a client's reads go to the primary after its own write.
    pub read_your_writes: Option<SimDuration>,
    /// Group commit, if writes are batched.
    pub group_commit: Option<GroupCommit>,
    /// How long after the primary's crash a replica takes its place (`None`: never).
    pub failover: Option<SimDuration>,
    /// What a side of a network partition does.
    pub partition_mode: PartitionMode,
    /// The model gave `partition_mode`: the partition metrics are reported.
    pub reports_partition: bool,
    /// Number of request classes in the model.
    pub classes: usize,
    /// None: a database calls nobody.
    pub links: Vec<Link>,
}

impl DatabaseDef {
    /// The metrics its copies report: with failover, also its promotions and lost writes;
    /// with a `partition_mode`, then its split, conflicting and lost writes.
    pub fn metrics(&self) -> &'static [MetricDecl] {
        match (self.failover.is_some(), self.reports_partition) {
            (false, false) => METRICS,
            (true, false) => failover::metrics(),
            (false, true) => partition::metrics(),
            (true, true) => partition::metrics_with_failover(),
        }
    }

    /// True for a primary with replicas, false for leaderless quorum copies.
    pub fn has_primary(&self) -> bool {
        self.reads != Reads::Quorum
    }

    /// True when its picker reads what its copies keep: their loads (a load-aware
    /// policy), the primary failover chose, or the calls of each side of a partition.
    fn picker_shares(&self) -> bool {
        self.balance.reads_loads() || self.failover.is_some() || self.reports_partition
    }
}

/// What the copies of a database built and its picker takes: the first copy, their loads,
/// the primary's role, and their shared state.
type Built = (InstanceId, Loads, Role, Rc<RefCell<Shared>>);

thread_local! {
    /// The loads (and the primary's role) of the copies of the databases whose instances
    /// were just built, by first instance, until their picker takes them: the engine builds
    /// a component's instances and then its picker, separately, and a load-aware picker
    /// must read the loads the copies keep, a picker with failover the primary they chose,
    /// the picker of a database with a `partition_mode` the state where it counts the calls
    /// of each side. Used only by the load-aware policies, failover and `partition_mode`.
    static LOADS: RefCell<Vec<Built>> = const { RefCell::new(Vec::new()) };
}

impl Kind for DatabaseDef {
    fn can_degrade(&self) -> bool {
        true
    }
    fn workers(&self) -> Option<u32> {
        Some(self.workers)
    }
    fn crash_leaves_group(&self) -> bool {
        // The copies know each other's state: reads and writes go to the live ones.
        true
    }
    fn name(&self) -> &'static str {
        "database"
    }
    fn diagram_shape(&self) -> crate::components::DiagramShape {
        crate::components::DiagramShape {
            mermaid: ("[(", ")]"),
            dot: "cylinder",
        }
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        DatabaseDef::metrics(self)
    }
    /// A copy built alone (outside a run's topology) is a primary with its own state.
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component> {
        let shared = Rc::new(RefCell::new(Shared::new(
            self.copies as usize,
            self.classes,
        )));
        let loads = state::loads(self.copies as usize);
        let role = Role::default();
        Box::new(DatabaseNode::new(
            self, id, id, name, rng, shared, loads, role,
        ))
    }
    fn instantiate_all(
        self: Arc<Self>,
        first: InstanceId,
        names: Vec<String>,
        rngs: Vec<Rng>,
    ) -> Vec<Box<dyn Component>> {
        let copies = names.len();
        let shared = Rc::new(RefCell::new(Shared::new(copies, self.classes)));
        let loads = state::loads(copies);
        let role = Role::default();
        if self.picker_shares() {
            LOADS.with(|l| {
                let mut l = l.borrow_mut();
                l.retain(|(f, _, _, _)| *f != first);
                let built = (Rc::clone(&loads), Rc::clone(&role), Rc::clone(&shared));
                l.push((first, built.0, built.1, built.2));
            });
        }
        names
            .into_iter()
            .zip(rngs)
            .enumerate()
            .map(|(i, (name, rng))| {
                Box::new(DatabaseNode::new(
                    Arc::clone(&self),
                    first + i as u32,
                    first,
                    name,
                    rng,
                    Rc::clone(&shared),
                    Rc::clone(&loads),
                    Rc::clone(&role),
                )) as Box<dyn Component>
            })
            .collect()
    }
    fn instance_name(&self, component: &str, index: u32, count: u32) -> String {
        match (self.has_primary(), index) {
            (false, _) => super::numbered_instance_name(component, index, count),
            (true, 0) => format!("{component}.primary"),
            (true, i) => format!("{component}.replica[{}]", i - 1),
        }
    }
    fn picker(&self, first: InstanceId, count: u32, rng: Rng) -> Option<Box<dyn Pick>> {
        let built = if self.picker_shares() {
            LOADS.with(|l| {
                let mut l = l.borrow_mut();
                let i = l.iter().position(|(f, _, _, _)| *f == first)?;
                let (_, loads, role, shared) = l.swap_remove(i);
                Some((loads, role, shared))
            })
        } else {
            None
        };
        let (loads, role, shared) = match built {
            Some((loads, role, shared)) => (loads, Some(role), Some(shared)),
            None => (state::loads(count as usize), None, None),
        };
        let picker = DatabasePicker::new(first, count, self.reads, self.balance, rng, loads);
        let picker = match (role, self.failover.is_some()) {
            (Some(role), true) => picker.with_role(role),
            _ => picker,
        };
        let need = (self.wait_for + 1, self.quorum_r);
        let picker = picker.with_partition(self.partition_mode, need);
        let picker = match shared {
            Some(shared) if self.reports_partition => picker.counting_sides(shared),
            _ => picker,
        };
        Some(Box::new(picker))
    }
    fn response(
        &self,
        net: &Network,
        flow: &Flow,
        _response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        estimate::response(self, net, flow)
    }
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        _warnings: &mut Vec<String>,
    ) -> Vec<MetricEstimate> {
        estimate::stale_estimate(self, net, flow)
            .into_iter()
            .collect()
    }
}

/// Timer tags of a copy. An apply timer carries the version in its low 31 bits.
const TAG_WORK_DONE: u32 = 0;
const TAG_ACK: u32 = 1;
const TAG_BATCH_WAIT: u32 = 2;
const TAG_COMMIT_DONE: u32 = 3;
const TAG_APPLY: u32 = 1 << 31;

/// A distribution of counts, added over the copies.
const fn counts(name: &'static str) -> MetricDecl {
    MetricDecl {
        combine: Sum,
        unit: Count,
        ..MetricDecl::distribution(name)
    }
}

/// What a database reports, per copy and combined over its copies. The shares and means
/// over reads (stale share, versions behind, staleness, batch size) are, per copy, of its
/// own reads (stale reads, batches), and the component's combine them weighted by those
/// counts: the database's stale reads over all its reads.
pub const METRICS: &[MetricDecl] = &[
    MetricDecl::number("utilization", Share, Mean)
        .saturates(Saturation::Busy)
        .column("utilization", 0)
        .estimated(),
    MetricDecl::number("queue_mean", Level, Sum).column("queue mean", 1),
    MetricDecl::number("queue_max", Level, Max).column("queue max", 2),
    MetricDecl::number("arrived", Count, Sum),
    MetricDecl::number("dropped", Count, Sum).column("dropped", 5),
    MetricDecl::number("drop_share", Share, Mean).saturates(Saturation::Refused),
    MetricDecl::number("throughput_per_s", PerSecond, Sum).column("throughput/s", 6),
    MetricDecl::number("wait_mean_ms", Ms, Mean)
        .column("wait ms", 3)
        .estimated(),
    MetricDecl::number("reads", Count, Sum),
    MetricDecl::number("writes", Count, Sum),
    MetricDecl::number("stale_reads", Count, Sum),
    MetricDecl::number("stale_share", Share, WeightedBy("reads"))
        .column("stale share", 7)
        .estimated(),
    MetricDecl::number("versions_behind_mean", Ratio, WeightedBy("reads")),
    MetricDecl::number("staleness_mean_ms", Ms, WeightedBy("stale_reads")),
    MetricDecl::number("redirected", Count, Sum),
    MetricDecl::number("quorum_subreads", Count, Sum),
    MetricDecl::number("batches", Count, Sum),
    MetricDecl::number("batch_size_mean", Ratio, WeightedBy("batches")),
    MetricDecl::number("commit_utilization", Share, Max).saturates(Saturation::Busy),
    MetricDecl::number("keys_written", Count, Max),
    // Shares of the reads 0, 1, 2, ... versions behind (the last entry: 63 or more).
    MetricDecl {
        combine: WeightedBy("reads"),
        ..MetricDecl::distribution("versions_behind")
    },
    // Stale share of the reads of each request class (in the model's class order).
    MetricDecl {
        combine: WeightedBy("reads_by_class"),
        ..MetricDecl::distribution("stale_share_by_class")
    },
    // Reads of each request class.
    counts("reads_by_class"),
    // Stale reads of each request class.
    counts("stale_reads_by_class"),
    // Mean versions behind of the reads of each request class.
    MetricDecl {
        combine: WeightedBy("reads_by_class"),
        unit: Ratio,
        ..MetricDecl::distribution("versions_behind_mean_by_class")
    },
    // Mean time since the newest version a stale read of each request class missed was
    // acknowledged, in ms (0 for a class without stale reads).
    MetricDecl {
        combine: WeightedBy("stale_reads_by_class"),
        unit: Ms,
        ..MetricDecl::distribution("staleness_mean_ms_by_class")
    },
    // The same time's 99th percentile for each request class, in ms (over the copies: the
    // largest copy's).
    MetricDecl {
        combine: Max,
        unit: Ms,
        ..MetricDecl::distribution("staleness_p99_ms_by_class")
    },
    // Queue waits before a worker took the request.
    MetricDecl::histogram("wait").column("wait p99", 4),
    // Time since the newest version a stale read missed was acknowledged.
    MetricDecl::histogram("staleness").column("staleness p99", 8),
];
