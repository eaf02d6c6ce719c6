//! Independent replications of one model, run in parallel. Each replication is a pure
//! function of (model, seed); results are collected in replication order, so the output
//! does not depend on the number of threads.

use crate::engine::RunError;
use crate::engine::watch::Sink;
use crate::model::Model;
use crate::progress::RunProgress;
use crate::random::replication_seed;
use crate::results::{RunResult, run_observed, run_watched};
use crate::trace::Names;

/// What a watched replication hands back beside the results: its sink, and the names its
/// lives refer to.
pub type Watched = Option<(Box<dyn Sink>, Names)>;
use rayon::prelude::*;

/// Seed of replication `index` for base seed `seed`: replication 0 uses `seed` itself, so
/// a single run is reproducible from the seed it prints.
pub fn seed_of(seed: u64, index: usize) -> u64 {
    if index == 0 {
        seed
    } else {
        replication_seed(seed, index as u64)
    }
}

/// Runs `replications` replications of `model` with seeds derived from `seed`, on the
/// current rayon pool. The first failed replication (in replication order) is the error.
/// The results keep no latency histograms (`RunResult::latency` is empty): they take
/// 150 KB per workload, and replications are summarised from their percentiles.
pub fn replicate(
    model: &Model,
    seed: u64,
    replications: usize,
) -> Result<Vec<RunResult>, RunError> {
    replicate_observed(model, seed, replications, None)
}

/// [`replicate`], each replication adding what it has simulated so far to `progress`.
pub fn replicate_observed(
    model: &Model,
    seed: u64,
    replications: usize,
    progress: Option<&RunProgress>,
) -> Result<Vec<RunResult>, RunError> {
    (0..replications)
        .into_par_iter()
        .map(|i| {
            run_observed(model, seed_of(seed, i), progress).map(|mut r| {
                r.latency = Vec::new();
                r
            })
        })
        .collect()
}

/// [`replicate_observed`], the first replication watched by a watcher handing requests'
/// lives to `sink` (when given; see `engine/watch.rs`): its result is the same as
/// without. Returns the results, and the sink with the names its lives refer to.
pub fn replicate_watched(
    model: &Model,
    seed: u64,
    replications: usize,
    progress: Option<&RunProgress>,
    sink: Option<Box<dyn Sink>>,
) -> Result<(Vec<RunResult>, Watched), RunError> {
    let Some(sink) = sink else {
        return Ok((
            replicate_observed(model, seed, replications, progress)?,
            None,
        ));
    };
    let (first, rest) = rayon::join(
        || run_watched(model, seed_of(seed, 0), progress, sink),
        || {
            (1..replications)
                .into_par_iter()
                .map(|i| run_observed(model, seed_of(seed, i), progress))
                .collect::<Result<Vec<_>, _>>()
        },
    );
    let (first, sink, names) = first?;
    let mut runs = vec![first];
    runs.extend(rest?);
    for r in &mut runs {
        r.latency = Vec::new();
    }
    Ok((runs, Some((sink, names))))
}
