//! Bounds on memory: every quantity that an input can make large has a limit here, checked
//! before a run starts (or, for requests in flight, a clear stop during it), so no input
//! makes scalesim allocate without bound. README.md, "Limits", lists them.

use std::io::{self, Read};
use std::path::Path;

/// Most bytes of a model or experiment file (JSON or YAML). The parsed document takes
/// several times its size in memory.
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 20;
/// Most bytes of a trace file.
pub const MAX_TRACE_FILE_BYTES: u64 = 256 << 20;
/// Most requests in one trace file (24 bytes each once read).
pub const MAX_TRACE_RECORDS: usize = 10_000_000;
/// Most windows in a workload's time series (`duration / series_window`). A window costs
/// 32 bytes per workload while running and about 60 per workload in each result.
pub const MAX_SERIES_WINDOWS: u64 = 100_000;
/// Most request classes in a model.
pub const MAX_CLASSES: usize = 10_000;
/// Most (components + workloads) × request classes: each component keeps a handler, and
/// each workload its counters, for every class of the model.
pub const MAX_CLASS_TABLE: u64 = 1_000_000;
/// Most models an experiment validates and keeps: sweep points × variants.
pub const MAX_SWEEP_MODELS: u64 = 10_000;
/// Most runs of an experiment: sweep points × variants × replications.
pub const MAX_SWEEP_RUNS: u64 = 1_000_000;
/// Default of the model field `max_in_flight`: requests in flight (created and not yet
/// finished) at which a run stops early. About 150 bytes each, so 150 MB at the default.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 1_000_000;
/// Highest `max_in_flight` a model may set (request ids are 32-bit).
pub const MAX_MAX_IN_FLIGHT: u64 = 100_000_000;

/// Most memory the results of one `scalesim run`, or of one load of `scalesim capacity`,
/// may take: their replications' results are all kept, to print or judge them together.
pub const MAX_RUN_RESULTS_BYTES: u64 = 4 << 30;

/// Most memory the runs of one experiment (`sweep`, `compare`) may take while they are
/// summarised: every run's metrics become rows of results.csv, built in memory, and are
/// kept for the comparison with the baseline (see [`experiment_run_bytes`]).
pub const MAX_EXPERIMENT_RESULTS_BYTES: u64 = 4 << 30;

/// A generous estimate of the memory one run's result takes while `scalesim run` holds
/// it, with its share of the JSON and CSV text made from it: about 4 KB per component
/// instance, 2 KB per component and per workload class, and 100 bytes per time-series
/// window per workload.
pub fn run_result_bytes(model: &crate::model::Model) -> u64 {
    let windows = model
        .duration
        .0
        .div_ceil(model.series_window.0.max(1))
        .max(1);
    let workloads: u64 = model
        .workloads
        .iter()
        .map(|w| (w.classes.len() as u64 + 1) * 2048 + windows * 100)
        .sum();
    8192 + workloads
        + model.components.len() as u64 * 2048
        + u64::from(model.instance_count()) * 4096
}

/// Refuses `replications` results of `model` kept together when they would not fit in
/// [`MAX_RUN_RESULTS_BYTES`]. `option` names the setting to change; `kept` says where they
/// are kept ("" or e.g. " at each load"); `otherwise` ends the message with another way out.
pub fn check_results_memory(
    model: &crate::model::Model,
    replications: u64,
    option: &str,
    kept: &str,
    otherwise: &str,
) -> Result<(), String> {
    let per_run = run_result_bytes(model);
    let total = per_run.saturating_mul(replications);
    if total > MAX_RUN_RESULTS_BYTES {
        return Err(format!(
            "{option}: {replications} replications of this model would keep about {:.1} GiB of results in memory{kept}, more than the {} GiB allowed; use at most {}{otherwise}",
            total as f64 / f64::from(1u32 << 30),
            MAX_RUN_RESULTS_BYTES >> 30,
            MAX_RUN_RESULTS_BYTES / per_run
        ));
    }
    Ok(())
}

/// A generous estimate of the memory one run of an experiment takes while the experiment
/// is summarised, from the keys of the metrics it reports (`metric_keys`): a row of
/// results.csv per metric, and the metric kept by name for the comparison with the
/// baseline.
pub fn experiment_run_bytes(metric_keys: &[String]) -> u64 {
    metric_keys
        .iter()
        .map(|k| 2 * k.len() as u64 + 160)
        .sum::<u64>()
        + 1024
}

/// Reads the whole file at `path` as UTF-8 text, refusing one longer than `limit` bytes.
///
/// The size is checked from the file's metadata first, and the read itself stops after
/// `limit + 1` bytes, so a device or a pipe that never ends (`/dev/zero`) is caught too.
pub fn read_to_string_capped(path: &Path, limit: u64) -> io::Result<String> {
    utf8_text(read_capped(path, limit)?)
}

/// The bytes of a text file as a string. Invalid UTF-8 is an error of kind `InvalidData`
/// that names the line and column of the first bad byte.
pub fn utf8_text(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let bad = e.as_bytes()[good.len()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        // The bytes before the bad one are valid UTF-8: count characters, not bytes.
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "invalid UTF-8 at line {line} column {column} (byte 0x{bad:02x}); save the file as UTF-8"
            ),
        )
    })
}

/// Reads the whole file at `path`, refusing one longer than `limit` bytes (see
/// [`read_to_string_capped`]).
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limit
    {
        return Err(too_big(limit));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit));
    }
    Ok(bytes)
}

/// Opens `path` for streaming reads of at most `limit` bytes: the reader stops after
/// `limit + 1`, and [`CappedReader::exceeded`] tells whether the file was longer.
pub fn open_capped(path: &Path, limit: u64) -> io::Result<CappedReader> {
    let file = std::fs::File::open(path)?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limit
    {
        return Err(too_big(limit));
    }
    Ok(CappedReader {
        inner: file.take(limit + 1),
        limit,
    })
}

/// A file read through [`open_capped`].
#[derive(Debug)]
pub struct CappedReader {
    inner: io::Take<std::fs::File>,
    limit: u64,
}

impl CappedReader {
    /// True once more than the limit has been read.
    pub fn exceeded(&self) -> bool {
        self.inner.limit() == 0
    }
    /// The error of a file longer than the limit.
    pub fn error(&self) -> io::Error {
        too_big(self.limit)
    }
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded() {
            return Err(too_big(self.limit));
        }
        self.inner.read(buf)
    }
}

/// The error of a file longer than `limit` bytes.
fn too_big(limit: u64) -> io::Error {
    io::Error::other(format!(
        "the file is larger than {}, the most scalesim reads",
        bytes_text(limit)
    ))
}

/// `limit` in MiB when it is a whole number of them.
fn bytes_text(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_device_is_refused_after_the_limit() {
        let e = read_capped(Path::new("/dev/zero"), 1000).unwrap_err();
        assert!(e.to_string().contains("larger than 1000 bytes"), "{e}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_at_it_is_read() {
        let dir = std::env::temp_dir().join(format!("scalesim-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ten");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_capped(&f, 10).unwrap().len(), 10);
        assert!(read_capped(&f, 9).is_err());
        let mut r = open_capped(&f, 10).unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert!(!r.exceeded());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stream_over_the_limit_is_flagged() {
        let mut r = open_capped(Path::new("/dev/zero"), 100).unwrap();
        let mut buf = [0u8; 64];
        let mut total = 0;
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        assert!(r.exceeded());
        assert_eq!(total, 101);
    }
}
