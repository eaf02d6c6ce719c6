//! Validation of a `database`: workers, queue, service times per operation, where reads go
//! and how they pick a copy, replication, quorum, read-your-writes and group commit,
//! resolved to a [`DatabaseDef`].

use super::spec::*;
use super::{Balance, DatabaseDef, GroupCommit, PartitionMode, Reads};
use crate::components::service::validate::MAX_WORKERS;
use crate::distributions::Distribution;
use crate::error::{Errors, join};
use crate::model::resolve::{Resolver, dist};
use crate::time::{DurationSpec, SimDuration};

/// Most writes one group-commit batch may hold.
pub const MAX_BATCH: u32 = 1_000_000;

/// Validates database `d` at `path`, component number `me` of the model.
pub fn database(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    d: &DatabaseSpec,
) -> Option<DatabaseDef> {
    let copies = r.replicas[me];
    let workers = d.workers.unwrap_or(1);
    if workers == 0 || workers > MAX_WORKERS {
        errs.push(
            join(path, "workers"),
            format!("must be between 1 and {MAX_WORKERS}, got {workers}"),
        );
    }
    let (read_time, write_time) = service_times(errs, path, d);
    let reads = reads(errs, path, d, copies);
    let balance = balance(errs, path, d, reads);
    let (lag, wait_for) = replication(errs, path, d, copies, reads);
    let read_your_writes = read_your_writes(errs, path, d, reads);
    let group_commit = d
        .group_commit
        .as_ref()
        .and_then(|g| group_commit(errs, &join(path, "group_commit"), g));
    let failover = super::failover::validate(errs, path, d, copies, reads);
    let quorum_r = match (&d.quorum, reads) {
        (Some(q), Reads::Quorum) => q.r,
        _ => 1,
    };
    Some(DatabaseDef {
        workers: workers.clamp(1, MAX_WORKERS),
        queue_capacity: d.queue,
        read_time: read_time?,
        write_time: write_time?,
        copies,
        reads,
        balance,
        lag: lag?,
        wait_for,
        quorum_r,
        read_your_writes,
        group_commit,
        failover,
        partition_mode: match d.partition_mode {
            Some(PartitionModeSpec::Available) => PartitionMode::Available,
            _ => PartitionMode::Consistent,
        },
        reports_partition: d.partition_mode.is_some(),
        classes: r.classes.len(),
        links: Vec::new(),
    })
}

/// The service time of reads and of writes: their own field, else `service_time`.
fn service_times(
    errs: &mut Errors,
    path: &str,
    d: &DatabaseSpec,
) -> (Option<Distribution>, Option<Distribution>) {
    let common = d
        .service_time
        .as_ref()
        .and_then(|s| dist(errs, &join(path, "service_time"), s));
    let mut time = |field: &str, own: &Option<_>| match own {
        Some(s) => dist(errs, &join(path, field), s),
        None if d.service_time.is_some() => common.clone(),
        None => {
            errs.push(
                join(path, "service_time"),
                format!(
                    "missing: a database needs the time to serve a {} (set service_time, or {field})",
                    &field[..field.len() - 5]
                ),
            );
            None
        }
    };
    (
        time("read_time", &d.read_time),
        time("write_time", &d.write_time),
    )
}

/// Where reads go: as written, else the replicas (the primary when there are none), or a
/// quorum when `quorum` is given.
fn reads(errs: &mut Errors, path: &str, d: &DatabaseSpec, copies: u32) -> Reads {
    let p = join(path, "reads");
    let reads = match (d.reads, &d.quorum) {
        (None, Some(_)) | (Some(ReadsSpec::Quorum), Some(_)) => Reads::Quorum,
        (Some(ReadsSpec::Quorum), None) => {
            errs.push(
                join(path, "quorum"),
                "missing: \"reads\": \"quorum\" needs {\"quorum\": {\"r\": ..., \"w\": ...}}",
            );
            Reads::Primary
        }
        (Some(other), Some(_)) => {
            errs.push(
                &p,
                format!(
                    "a database with a quorum reads from a quorum, got \"{}\" (leave reads out, or remove quorum)",
                    reads_name(other)
                ),
            );
            Reads::Quorum
        }
        (Some(ReadsSpec::Replicas), None) if copies == 1 => {
            errs.push(
                &p,
                "reads go to the replicas, but the database has none (set replicas, or \"reads\": \"primary\")",
            );
            Reads::Primary
        }
        (Some(ReadsSpec::Primary), None) => Reads::Primary,
        (Some(ReadsSpec::Any), None) => Reads::Any,
        (Some(ReadsSpec::Replicas), None) => Reads::Replicas,
        (None, None) if copies == 1 => Reads::Primary,
        (None, None) => Reads::Replicas,
    };
    if let (Reads::Quorum, Some(q)) = (reads, &d.quorum) {
        quorum(errs, &join(path, "quorum"), q, copies);
    }
    reads
}

fn reads_name(r: ReadsSpec) -> &'static str {
    match r {
        ReadsSpec::Primary => "primary",
        ReadsSpec::Replicas => "replicas",
        ReadsSpec::Any => "any",
        ReadsSpec::Quorum => "quorum",
    }
}

/// A quorum's sizes: each between 1 and the number of copies.
fn quorum(errs: &mut Errors, path: &str, q: &QuorumSpec, copies: u32) {
    if q.n == Some(0) {
        errs.push(join(path, "n"), "must be at least 1, got 0");
    }
    if q.n.is_some_and(|n| n != copies) {
        // Its count of copies was refused (at `replicas`): r and w are not checked
        // against a count that is not the one written.
        return;
    }
    for (field, v) in [("r", q.r), ("w", q.w)] {
        if v == 0 || v > copies {
            errs.push(
                join(path, field),
                format!(
                    "must be between 1 and N = {copies} (the database's copies: replicas + 1), got {v}"
                ),
            );
        }
    }
}

/// How calls pick a copy; only where there is a choice.
fn balance(errs: &mut Errors, path: &str, d: &DatabaseSpec, reads: Reads) -> Balance {
    let Some(b) = d.balance else {
        return Balance::RoundRobin;
    };
    if reads == Reads::Primary {
        errs.push(
            join(path, "balance"),
            "applies only when reads have a choice of copies (\"reads\": \"replicas\", \"any\" or \"quorum\")",
        );
    }
    match b {
        BalanceSpec::RoundRobin => Balance::RoundRobin,
        BalanceSpec::Random => Balance::Random,
        BalanceSpec::LeastConnections => Balance::LeastConnections,
        BalanceSpec::PowerOfChoices => Balance::PowerOfChoices,
        BalanceSpec::HashKey => Balance::HashKey,
    }
}

/// The replication lag, and how many other copies a write waits for before it answers.
fn replication(
    errs: &mut Errors,
    path: &str,
    d: &DatabaseSpec,
    copies: u32,
    reads: Reads,
) -> (Option<Distribution>, u32) {
    let p = join(path, "replication");
    let replicas = copies - 1;
    let (lag, wait_for) = match &d.replication {
        None => (Some(Distribution::constant_ns(0.0)), 0),
        Some(ReplicationSpec::Async(a)) => (dist(errs, &join(&p, "async.lag"), &a.lag), 0),
        Some(ReplicationSpec::Sync(s)) => {
            let lag = dist(errs, &join(&p, "sync.lag"), &s.lag);
            let acks = s.acks.unwrap_or(replicas);
            if reads == Reads::Quorum {
                errs.push(
                    join(&p, "sync"),
                    "with a quorum, quorum.w says how many copies a write waits for: give the lag as {\"async\": {\"lag\": ...}}",
                );
            } else if s.acks.is_some() && (acks == 0 || acks > replicas) {
                errs.push(
                    join(&p, "sync.acks"),
                    format!(
                        "must be between 1 and the number of replicas ({replicas}), got {acks}"
                    ),
                );
            }
            (lag, acks.min(replicas))
        }
    };
    let wait_for = match (&d.quorum, reads) {
        (Some(q), Reads::Quorum) => q.w.clamp(1, copies) - 1,
        _ => wait_for,
    };
    (lag, wait_for)
}

/// How long a client's reads go to the primary after its own write.
fn read_your_writes(
    errs: &mut Errors,
    path: &str,
    d: &DatabaseSpec,
    reads: Reads,
) -> Option<SimDuration> {
    let t = d.read_your_writes?;
    let p = join(path, "read_your_writes");
    if t.to_sim().0 == 0 || t.nanos() <= 0.0 {
        errs.push(
            p,
            format!(
                "must be longer than zero (how long a client's reads go to the primary after its write), got \"{}\"",
                crate::time::format_duration_nanos(t.nanos())
            ),
        );
        return None;
    }
    match reads {
        Reads::Primary => errs.push(p, "has no effect: every read already goes to the primary"),
        Reads::Quorum => errs.push(
            p,
            "applies to a primary with replicas; with a quorum, choose r + w > n to read your writes",
        ),
        _ => {}
    }
    Some(t.to_sim())
}

fn group_commit(errs: &mut Errors, path: &str, g: &GroupCommitSpec) -> Option<GroupCommit> {
    let max_batch = g.max_batch.unwrap_or(1);
    if max_batch == 0 || max_batch > MAX_BATCH {
        errs.push(
            join(path, "max_batch"),
            format!("must be between 1 and {MAX_BATCH}, got {max_batch}"),
        );
    }
    let time = |v: Option<DurationSpec>| v.map_or(SimDuration(0), DurationSpec::to_sim);
    Some(GroupCommit {
        max_batch: max_batch.clamp(1, MAX_BATCH),
        max_wait: time(g.max_wait),
        fixed_cost: time(g.fixed_cost),
        per_item_cost: time(g.per_item_cost),
    })
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors (path, message) of a model whose service `app` calls database `db`.
    fn errors(db: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app"}}}},
                "components": {{
                  "app": {{"kind": "service", "handler": [{{"call": "db"}}]}},
                  "db": {db}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn a_valid_database_passes() {
        let ok = errors(
            r#"{"kind": "database", "workers": 16,
                "read_time": {"exponential": {"mean": "4ms"}},
                "write_time": {"exponential": {"mean": "6ms"}}}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn zero_workers_is_refused_at_its_path() {
        let errs = errors(
            r#"{"kind": "database", "workers": 0,
                "service_time": {"constant": "1ms"}}"#,
        );
        let (p, m) = errs.first().expect("an error");
        assert_eq!(p, "components.db.workers", "{errs:?}");
        assert!(m.contains("got 0"), "{m}");
    }
}
