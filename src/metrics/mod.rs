//! Measurements taken during a run: latency histograms, counters and time-weighted levels.
//!
//! Everything here is cheap to update (no allocation after construction) and restarts at
//! the end of warm-up, so the reported window excludes it. Each component kind declares
//! the metrics it reports ([`declare`]); an [`InstanceReport`] is what an instance hands
//! over at the end of a run, one value per declared metric.

mod client;
pub mod declare;
mod latency;
mod level;
mod report;
pub mod sides;
pub mod window;

pub use client::{ClientStats, ErrorCause, SeriesWindow};
pub use declare::{Combine, MetricDecl};
pub use latency::{DurationHistogram, LatencyHistogram, LatencySummary, WaitHistogram};
pub use level::{InstanceLoad, LEVEL_SLOTS, LevelShares, TimeWeighted};
pub use report::{Combined, InstanceReport, combine};
