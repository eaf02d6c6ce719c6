//! Measurements taken during a run: latency histograms, counters and time-weighted levels.
//!
//! Everything here is cheap to update (no allocation after construction) and restarts at
//! the end of warm-up, so the reported window excludes it.

mod client;
mod latency;
mod level;

pub use client::{ClientStats, ErrorCause, SeriesWindow};
pub use latency::{DurationHistogram, LatencyHistogram, LatencySummary, WaitHistogram};
pub use level::{InstanceLoad, LEVEL_SLOTS, LevelShares, TimeWeighted};
