//! The per-side report of a database with a `partition_mode` (issue 11 point 7): one
//! record per side of each partition it lived through, in the JSON
//! (`components.<db>.partition_sides`), the tidy CSV (scope `partition_side`) and the
//! "Partition sides" table.

use crate::metrics::sides::SideRecord;
use crate::model::Model;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// What one side of a partition saw, over the measurement window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionSideResult {
    /// The partition fault's name (several joined by " + " while they were on together).
    pub fault: String,
    /// When the cut began, seconds of simulated time.
    pub start_s: f64,
    /// When it ended, seconds (the end of the run if it was still on).
    pub end_s: f64,
    /// The side: its zones, space-separated ("a", "b c").
    pub side: String,
    /// Its zones.
    pub zones: Vec<String>,
    /// Its copies, by number among the database's copies (0 the first).
    pub copies: Vec<u32>,
    /// The same copies by instance name.
    pub instances: Vec<String>,
    /// Calls that reached the database from a caller on the side.
    pub arrived: u64,
    /// Of which reads.
    pub arrived_reads: u64,
    /// Of which writes.
    pub arrived_writes: u64,
    /// Of the calls that arrived, those refused as `unavailable` (no primary or no quorum
    /// on the side: consistent mode).
    pub unavailable: u64,
    /// Calls answered successfully on the side: `reads` + `writes`.
    pub served: u64,
    /// served / arrived (null when nothing arrived).
    pub availability: Option<f64>,
    /// Reads answered on the side.
    pub reads: u64,
    /// Of those, reads that missed the newest acknowledged version of their key.
    pub stale_reads: u64,
    /// stale_reads / reads (0 when there were no reads).
    pub stale_share: f64,
    /// Writes acknowledged on the side.
    pub writes: u64,
    /// Writes accepted on the side that could not reach every copy.
    pub split_writes: u64,
    /// Of those, writes to a key another side also wrote during the cut.
    pub conflicting_writes: u64,
    /// Of those, writes of the side whose last write lost when the copies reconciled.
    pub lost_writes: u64,
}

/// The results of the side records `records` of a database of `model` whose copies are
/// named `instances`, in a run whose window ends at `end`.
pub fn results(
    model: &Model,
    records: Vec<SideRecord>,
    instances: &[String],
    end: SimTime,
) -> Vec<PartitionSideResult> {
    let zone = |z| {
        model
            .network
            .as_deref()
            .and_then(|n| n.zone_name(z))
            .unwrap_or("-")
            .to_string()
    };
    records
        .into_iter()
        .map(|r| {
            let c = r.counts;
            let zones: Vec<String> = r.zones.iter().map(|z| zone(*z)).collect();
            let fault = r
                .faults
                .iter()
                .map(|f| model.faults[*f as usize].name.as_str());
            let (arrived, served) = (c.arrived(), c.served());
            PartitionSideResult {
                fault: fault.collect::<Vec<_>>().join(" + "),
                start_s: r.start.as_secs_f64(),
                end_s: r.end.unwrap_or(end.max(r.start)).as_secs_f64(),
                side: zones.join(" "),
                zones,
                instances: r
                    .copies
                    .iter()
                    .map(|j| instances.get(*j as usize).cloned().unwrap_or_default())
                    .collect(),
                copies: r.copies,
                arrived,
                arrived_reads: c.arrived_reads,
                arrived_writes: c.arrived_writes,
                unavailable: c.unavailable,
                served,
                availability: (arrived > 0).then(|| served as f64 / arrived as f64),
                reads: c.reads,
                stale_reads: c.stale_reads,
                stale_share: if c.reads > 0 {
                    c.stale_reads as f64 / c.reads as f64
                } else {
                    0.0
                },
                writes: c.writes,
                split_writes: c.split_writes,
                conflicting_writes: c.conflicting_writes,
                lost_writes: c.lost_writes,
            }
        })
        .collect()
}

/// The tidy CSV's rows of one side: (metric, value), every number of its JSON record
/// (availability NaN where the JSON has null); the side is named in the row's instance
/// column (`FAULT: ZONES`).
pub fn rows(s: &PartitionSideResult) -> [(&'static str, f64); 15] {
    [
        ("start_s", s.start_s),
        ("end_s", s.end_s),
        ("arrived", s.arrived as f64),
        ("arrived_reads", s.arrived_reads as f64),
        ("arrived_writes", s.arrived_writes as f64),
        ("unavailable", s.unavailable as f64),
        ("served", s.served as f64),
        ("availability", s.availability.unwrap_or(f64::NAN)),
        ("reads", s.reads as f64),
        ("stale_reads", s.stale_reads as f64),
        ("stale_share", s.stale_share),
        ("writes", s.writes as f64),
        ("split_writes", s.split_writes as f64),
        ("conflicting_writes", s.conflicting_writes as f64),
        ("lost_writes", s.lost_writes as f64),
    ]
}

/// The "Partition sides" section of the text table: every side of every database with a
/// `partition_mode` in the first run (empty when there is none).
pub fn table(r: &crate::results::RunResult) -> String {
    use crate::report::table::{new_table, num};
    let mut t = new_table(&[
        "database",
        "fault",
        "start s",
        "end s",
        "side",
        "copies",
        "arrived",
        "unavailable",
        "availability",
        "reads",
        "stale",
        "stale share",
        "writes",
        "split",
        "conflicting",
        "lost",
    ]);
    let mut any = false;
    for (name, c) in &r.components {
        for s in &c.partition_sides {
            any = true;
            t.add_row(vec![
                name.clone(),
                s.fault.clone(),
                num(s.start_s),
                num(s.end_s),
                s.side.clone(),
                s.instances.join(" "),
                s.arrived.to_string(),
                s.unavailable.to_string(),
                s.availability.map_or("-".to_string(), num),
                s.reads.to_string(),
                s.stale_reads.to_string(),
                num(s.stale_share),
                s.writes.to_string(),
                s.split_writes.to_string(),
                s.conflicting_writes.to_string(),
                s.lost_writes.to_string(),
            ]);
        }
    }
    if !any {
        return String::new();
    }
    format!(
        "Partition sides (per side of each cut: calls that reached it, refused as unavailable, availability = answered / arrived; its reads and stale reads; its acknowledged, split, conflicting and lost writes)\n{t}\n"
    )
}
