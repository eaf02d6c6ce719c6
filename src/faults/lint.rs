//! Warnings about faults and fault settings that are valid but will surprise: a black hole
//! that swallows requests nothing ever gives up on, and a database's `partition_mode` that
//! no partition can ever exercise.

use super::{Effect, FaultDef};
use crate::engine::CrashMode;
use crate::model::Model;
use crate::model::spec::KindSpec;

/// The warnings about `model`'s faults, each starting with the path it concerns.
pub fn warnings(model: &Model) -> Vec<String> {
    let mut warnings = hanging_requests(model);
    warnings.extend(idle_partition_modes(model));
    warnings
}

/// A black-hole crash or partition never answers what it swallows: a request that reaches
/// it with no timeout on its way (no client `timeout`, no call `timeout` on an edge it
/// crosses) stays in flight to the end of the run.
fn hanging_requests(model: &Model) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen = Vec::new();
    for def in model.faults.iter() {
        let partition = match def.effect {
            Effect::Crash(CrashMode::BlackHole) => false,
            Effect::Partition(CrashMode::BlackHole) => true,
            _ => continue,
        };
        if seen.contains(&def.index) {
            continue; // a zone fault: one def per component, one warning
        }
        let hanging: Vec<&str> = model
            .workloads
            .iter()
            .filter(|w| w.timeout.is_none())
            .filter(|w| reaches_without_timeout(model, w.target as usize, def, partition))
            .map(|w| w.name.as_str())
            .collect();
        if hanging.is_empty() {
            continue;
        }
        seen.push(def.index);
        let what = if partition { "partition" } else { "crash" };
        warnings.push(format!(
            "faults[{}] (\"{}\"): a black-hole {what} never answers the calls it swallows, and requests of workload(s) {} reach it with no timeout on the way (no client \"timeout\" on the workload, no \"timeout\" in a \"calls_to\" on the path): they will hang until the end of the run. Give the workload a \"timeout\", or use mode \"refused\"",
            def.index,
            def.name,
            hanging
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    warnings
}

/// True when a request entering component `start` can reach what `def` strikes over
/// calls without a timeout (a partition: any component, as any call may cross it).
fn reaches_without_timeout(model: &Model, start: usize, def: &FaultDef, partition: bool) -> bool {
    let struck = |g: usize| {
        partition
            || model
                .faults
                .iter()
                .any(|d| d.index == def.index && d.group as usize == g)
    };
    let mut seen = vec![false; model.graph.len()];
    let mut todo = vec![start];
    seen[start] = true;
    while let Some(g) = todo.pop() {
        if struck(g) {
            return true;
        }
        for next in model.graph.successors(g) {
            let timed = model
                .calls
                .iter()
                .any(|e| e.caller == g && e.callee == next && e.policy.timeout.is_some());
            if !timed && !seen[next] {
                seen[next] = true;
                todo.push(next);
            }
        }
    }
    false
}

/// A database's `partition_mode` acts only while a partition splits its copies: without
/// `zones` they are never split, and without a partition fault nothing splits them.
fn idle_partition_modes(model: &Model) -> Vec<String> {
    let any_partition = model.faults.iter().any(|d| d.cut.is_some());
    model
        .spec
        .components
        .iter()
        .filter_map(|(name, c)| {
            let KindSpec::Database(d) = &c.kind else {
                return None;
            };
            d.partition_mode.as_ref()?;
            let why = if c.common.zones.is_none() {
                "the database has no \"zones\", so no partition can split its copies"
            } else if !any_partition {
                "the model has no \"partition\" fault, so nothing splits its copies"
            } else {
                return None;
            };
            Some(format!(
                "components.{name}.partition_mode: has no effect: {why}"
            ))
        })
        .collect()
}
