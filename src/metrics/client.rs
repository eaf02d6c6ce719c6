//! What the clients of one workload saw: arrivals, successes with their latency per class,
//! failures by cause.

use super::LatencyHistogram;
use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ErrorCause {
    /// The client gave up waiting.
    Timeout = 0,
    /// A service's queue was full.
    QueueFull = 1,
    /// A request waited in a queue longer than the service's queue timeout.
    QueueTimeout = 2,
    /// No instance could take the request.
    Unavailable = 3,
    /// The instance holding the request crashed (refused mode: its callers hear at once).
    Crashed = 4,
    /// The instance called was down and refused the call (a closed port).
    Refused = 5,
    /// The instance failed it on purpose: a fault's share of failing requests.
    Injected = 6,
    /// A partition of the network cut the call off from the instance it went to.
    Partitioned = 7,
    /// The caller's circuit breaker to the callee was open: the call failed at once.
    CircuitOpen = 8,
    /// A rate limiter (token bucket) had no token for it.
    RateLimited = 9,
    /// A service shed it under overload (its queue too long, or its wait too old).
    Shed = 10,
    /// No connection of the caller's pool came free before the acquire timeout.
    PoolTimeout = 11,
    /// The caller's bulkhead to the callee was full, its queue too.
    BulkheadFull = 12,
    /// Its deadline had passed (the caller had given up) when a service came to it.
    DeadlineExceeded = 13,
}

impl ErrorCause {
    /// Every cause, in report order.
    pub const ALL: [ErrorCause; 14] = [
        ErrorCause::Timeout,
        ErrorCause::QueueFull,
        ErrorCause::QueueTimeout,
        ErrorCause::Unavailable,
        ErrorCause::Crashed,
        ErrorCause::Refused,
        ErrorCause::Injected,
        ErrorCause::Partitioned,
        ErrorCause::CircuitOpen,
        ErrorCause::RateLimited,
        ErrorCause::Shed,
        ErrorCause::PoolTimeout,
        ErrorCause::BulkheadFull,
        ErrorCause::DeadlineExceeded,
    ];
    /// The causes every model can fail with (and reports); the others only a model using
    /// the feature that causes them can (see [`Model::can_fail_with`](crate::model::Model::can_fail_with)),
    /// and only such a model reports them.
    pub const ALWAYS: [ErrorCause; 4] = [
        ErrorCause::Timeout,
        ErrorCause::QueueFull,
        ErrorCause::QueueTimeout,
        ErrorCause::Unavailable,
    ];
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCause::Timeout => "timeout",
            ErrorCause::QueueFull => "queue_full",
            ErrorCause::QueueTimeout => "queue_timeout",
            ErrorCause::Unavailable => "unavailable",
            ErrorCause::Crashed => "crashed",
            ErrorCause::Refused => "refused",
            ErrorCause::Injected => "injected",
            ErrorCause::Partitioned => "partitioned",
            ErrorCause::CircuitOpen => "circuit_open",
            ErrorCause::RateLimited => "rate_limited",
            ErrorCause::Shed => "shed",
            ErrorCause::PoolTimeout => "pool_timeout",
            ErrorCause::BulkheadFull => "bulkhead_full",
            ErrorCause::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// Counters and latency histograms of one workload, per request class.
#[derive(Debug, Clone)]
pub struct ClientStats {
    /// Requests created in the window, per class.
    pub arrived: Vec<u64>,
    /// Successful responses in the window, per class.
    pub completed: Vec<u64>,
    /// Failures in the window, per class and cause.
    pub failed: Vec<[u64; ErrorCause::ALL.len()]>,
    /// Latency of successful responses, per class.
    pub latency: Vec<LatencyHistogram>,
    /// Answers per time window over the whole run (warm-up included), all classes.
    pub series: Vec<SeriesWindow>,
    /// Width of a window, ns.
    pub window_ns: u64,
    /// Index of the window answers currently go to.
    window: usize,
    /// End of that window, ns.
    window_end: u64,
}

/// What the clients of a workload saw in one time window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeriesWindow {
    /// Successful responses.
    pub completed: u64,
    /// Failures.
    pub failed: u64,
    /// Sum of the latencies of successful responses, ns.
    pub latency_sum_ns: u128,
}

impl ClientStats {
    /// Empty statistics for `classes` request classes.
    pub fn new(classes: usize, windows: usize, window_ns: u64) -> Self {
        ClientStats {
            series: vec![SeriesWindow::default(); windows.max(1)],
            window_ns: window_ns.max(1),
            window: 0,
            window_end: window_ns.max(1),
            arrived: vec![0; classes],
            completed: vec![0; classes],
            failed: vec![[0; ErrorCause::ALL.len()]; classes],
            latency: (0..classes).map(|_| LatencyHistogram::new()).collect(),
        }
    }
    /// The window holding time `ns` (the last window for anything later).
    #[inline(always)]
    pub fn window_mut(&mut self, ns: u64) -> &mut SeriesWindow {
        // Time only moves forward: step the cursor instead of dividing on every answer,
        // out of line (a window lasts a hundredth of a run).
        if ns >= self.window_end {
            self.step_window(ns);
        }
        &mut self.series[self.window]
    }
    /// Moves the cursor on to the window holding time `ns`; the last window ends never.
    #[cold]
    #[inline(never)]
    fn step_window(&mut self, ns: u64) {
        let last = self.series.len() - 1;
        while ns >= self.window_end && self.window < last {
            self.window += 1;
            self.window_end = self.window_end.saturating_add(self.window_ns);
        }
        if self.window == last {
            self.window_end = u64::MAX;
        }
    }
    /// A request of class `class` was sent (counted in the measurement window only).
    #[inline(always)]
    pub fn record_arrival(&mut self, class: usize, measuring: bool) {
        if measuring {
            self.arrived[class] += 1;
        }
    }

    /// A client got a response to a request of class `class` at `now_ns`, `latency_ns`
    /// after sending it; per class only in the measurement window, in the time series
    /// always.
    #[inline(always)]
    pub fn record_success(&mut self, class: usize, now_ns: u64, latency_ns: u64, measuring: bool) {
        let win = self.window_mut(now_ns);
        win.completed += 1;
        win.latency_sum_ns += u128::from(latency_ns);
        if measuring {
            self.completed[class] += 1;
            self.latency[class].record(latency_ns);
        }
    }

    /// A client's request of class `class` failed with `cause` at `now_ns`.
    #[inline(always)]
    pub fn record_failure(
        &mut self,
        class: usize,
        now_ns: u64,
        cause: ErrorCause,
        measuring: bool,
    ) {
        self.window_mut(now_ns).failed += 1;
        if measuring {
            self.failed[class][cause as usize] += 1;
        }
    }

    /// Forgets everything but the time series (end of warm-up).
    pub fn clear(&mut self) {
        self.arrived.iter_mut().for_each(|c| *c = 0);
        self.completed.iter_mut().for_each(|c| *c = 0);
        self.failed
            .iter_mut()
            .for_each(|c| *c = [0; ErrorCause::ALL.len()]);
        self.latency.iter_mut().for_each(LatencyHistogram::clear);
    }
}
