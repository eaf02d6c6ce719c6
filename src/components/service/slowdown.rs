//! Load-dependent service time (`"slowdown"`): a service whose `work` steps take longer
//! when its instance is loaded, as garbage-collection pressure and thrashing make real
//! servers slower under load. Each drawn service time is multiplied by a function of the
//! instance's load at the moment the step starts: 1 up to a knee, then growing linearly or
//! exponentially, capped at `max`. Overload then lowers capacity, which is what lets a short
//! burst leave a service collapsed after the burst is over (a metastable failure).
//!
//! A service without a slowdown pays one predictable branch per `work` step.

use super::spec::{LoadMeasureSpec, SlowdownSpec};
use crate::error::{Errors, join, num};

/// Largest multiplier when the model gives no `max`.
pub const DEFAULT_MAX: f64 = 100.0;

/// The load a slowdown depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMeasure {
    /// Requests holding a worker, the starting one included.
    InService,
    /// Busy workers over workers, the starting request included.
    Utilization,
    /// Requests holding a worker (the starting one included) or waiting.
    InSystem,
}

impl LoadMeasure {
    /// Its name in model files.
    pub fn name(self) -> &'static str {
        match self {
            LoadMeasure::InService => "in_service",
            LoadMeasure::Utilization => "utilization",
            LoadMeasure::InSystem => "in_system",
        }
    }
}

/// How the multiplier grows above the knee.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Curve {
    /// 1 + slope × (load − knee).
    Linear {
        /// Slope per unit of load.
        slope: f64,
    },
    /// e^(rate × (load − knee)).
    Exponential {
        /// Rate per unit of load.
        rate: f64,
    },
}

/// A validated slowdown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    /// The load it depends on.
    pub by: LoadMeasure,
    /// Load up to which service times are unchanged.
    pub knee: f64,
    /// Growth above the knee.
    pub curve: Curve,
    /// Largest multiplier (≥ 1).
    pub max: f64,
}

impl Slowdown {
    /// The multiplier at load `load`.
    pub fn factor_at(&self, load: f64) -> f64 {
        let over = load - self.knee;
        if over <= 0.0 {
            return 1.0;
        }
        let f = match self.curve {
            Curve::Linear { slope } => 1.0 + slope * over,
            Curve::Exponential { rate } => (rate * over).exp(),
        };
        f.min(self.max)
    }

    /// The multiplier of a `work` step starting at an instance with `workers` workers,
    /// `in_service` of them busy (the starting request included) and `waiting` requests
    /// queued. Out of line: only services with a slowdown call it.
    #[inline(never)]
    pub fn factor(&self, in_service: u64, waiting: u64, workers: u32) -> f64 {
        let load = match self.by {
            LoadMeasure::InService => in_service as f64,
            LoadMeasure::Utilization => in_service as f64 / f64::from(workers),
            LoadMeasure::InSystem => (in_service + waiting) as f64,
        };
        self.factor_at(load)
    }

    /// The highest load an instance with `workers` workers and a queue of `queue_capacity`
    /// places reaches, `None` when unbounded (`in_system` with an unbounded queue).
    pub fn highest_load(&self, workers: u32, queue_capacity: Option<u32>) -> Option<f64> {
        match (self.by, queue_capacity) {
            (LoadMeasure::InService, _) => Some(f64::from(workers)),
            (LoadMeasure::Utilization, _) => Some(1.0),
            (LoadMeasure::InSystem, Some(k)) => Some(f64::from(workers) + f64::from(k)),
            (LoadMeasure::InSystem, None) => None,
        }
    }

    /// The largest multiplier an instance with `workers` workers and a queue of
    /// `queue_capacity` places (`None`: unbounded) can reach.
    pub fn worst(&self, workers: u32, queue_capacity: Option<u32>) -> f64 {
        self.highest_load(workers, queue_capacity)
            .map_or(self.max, |l| self.factor_at(l))
    }

    /// How it is written, for messages: `1 + 0.05 × (in_system − 16), at most 4×`.
    pub fn describe(&self) -> String {
        let by = self.by.name();
        let knee = num(self.knee);
        let curve = match self.curve {
            Curve::Linear { slope } => format!("1 + {} × ({by} − {knee})", num(slope)),
            Curve::Exponential { rate } => format!("e^({} × ({by} − {knee}))", num(rate)),
        };
        format!("{curve} above {by} {knee}, at most {}×", num(self.max))
    }
}

/// Validates the slowdown `s` at `path` of a service.
pub fn validate(errs: &mut Errors, path: &str, s: &SlowdownSpec) -> Option<Slowdown> {
    let by = match s.by.unwrap_or(LoadMeasureSpec::InService) {
        LoadMeasureSpec::InService => LoadMeasure::InService,
        LoadMeasureSpec::Utilization => LoadMeasure::Utilization,
        LoadMeasureSpec::InSystem => LoadMeasure::InSystem,
    };
    let (field, knee, curve, growth, growth_name) = match (&s.linear, &s.exponential) {
        (Some(l), None) => (
            "linear",
            l.knee,
            Curve::Linear { slope: l.slope },
            l.slope,
            "slope",
        ),
        (None, Some(e)) => (
            "exponential",
            e.knee,
            Curve::Exponential { rate: e.rate },
            e.rate,
            "rate",
        ),
        (given, _) => {
            let got = if given.is_some() { "both" } else { "none" };
            errs.push(
                path,
                format!(
                    "a slowdown needs exactly one of \"linear\" and \"exponential\"; got {got}"
                ),
            );
            return None;
        }
    };
    let cp = join(path, field);
    let mut ok = check_knee(errs, &join(&cp, "knee"), knee, by);
    if !(growth.is_finite() && growth >= 0.0) {
        ok = false;
        errs.push(
            join(&cp, growth_name),
            format!(
                "must be a number 0 or more (a slowdown cannot make work faster), got {}",
                num(growth)
            ),
        );
    }
    let max = s.max.unwrap_or(DEFAULT_MAX);
    if !(max.is_finite() && max >= 1.0) {
        ok = false;
        errs.push(
            join(path, "max"),
            format!(
                "must be a number 1 or more (the largest multiplier of service times), got {}",
                num(max)
            ),
        );
    }
    ok.then_some(Slowdown {
        by,
        knee,
        curve,
        max,
    })
}

/// The knee must be a load 0 or more, and a share below 1 for "utilization"; false
/// (reported) when it is not. A knee above what the instance can reach (more requests in
/// service than it has workers) is valid, as a point of a sweep over workers or queue
/// sizes: the estimate's warnings say that the slowdown never applies.
fn check_knee(errs: &mut Errors, path: &str, knee: f64, by: LoadMeasure) -> bool {
    if !(knee.is_finite() && knee >= 0.0) {
        errs.push(
            path,
            format!("must be a number 0 or more, got {}", num(knee)),
        );
        return false;
    }
    if by == LoadMeasure::Utilization && knee >= 1.0 {
        errs.push(
            path,
            format!(
                "with \"by\": \"utilization\" the knee is a share of the workers, below 1; got {}",
                num(knee)
            ),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(by: LoadMeasure, knee: f64, slope: f64, max: f64) -> Slowdown {
        Slowdown {
            by,
            knee,
            curve: Curve::Linear { slope },
            max,
        }
    }

    #[test]
    fn the_multiplier_is_one_up_to_the_knee_then_grows_up_to_its_cap() {
        let s = linear(LoadMeasure::InSystem, 16.0, 0.05, 4.0);
        assert_eq!(s.factor(8, 8, 8), 1.0);
        assert!((s.factor(8, 28, 8) - 2.0).abs() < 1e-12);
        assert_eq!(s.factor(8, 1000, 8), 4.0);
        let e = Slowdown {
            by: LoadMeasure::InService,
            knee: 2.0,
            curve: Curve::Exponential { rate: 0.5 },
            max: 100.0,
        };
        assert_eq!(e.factor(2, 50, 4), 1.0);
        assert!((e.factor(4, 0, 4) - 1f64.exp()).abs() < 1e-12);
        // An exponent that overflows is capped, not infinite.
        let huge = Slowdown {
            knee: 0.0,
            curve: Curve::Exponential { rate: 1e6 },
            ..e
        };
        assert_eq!(huge.factor(4, 0, 4), 100.0);
    }

    #[test]
    fn utilization_counts_busy_workers_over_workers() {
        let s = linear(LoadMeasure::Utilization, 0.5, 2.0, 100.0);
        assert_eq!(s.factor(4, 100, 8), 1.0);
        assert!((s.factor(8, 0, 8) - 2.0).abs() < 1e-12);
        assert!((s.worst(8, None) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_worst_multiplier_follows_what_bounds_the_load() {
        let s = linear(LoadMeasure::InSystem, 10.0, 0.5, 20.0);
        assert_eq!(s.worst(4, None), 20.0);
        assert!((s.worst(4, Some(8)) - 2.0).abs() < 1e-12);
        let s = linear(LoadMeasure::InService, 2.0, 0.5, 20.0);
        assert!((s.worst(4, None) - 2.0).abs() < 1e-12);
    }
}
