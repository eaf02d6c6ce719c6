//! A database copy running degraded (a gray failure, see [`crate::faults`]): its read and
//! write times multiplied by `slow`, a share of the calls it would serve failed at once
//! with cause `injected`, and at most `workers` of its workers taking calls.

use crate::engine::Degradation;
use crate::random::{Rng, mix64};
use rand::{Rng as _, RngExt, SeedableRng};

/// What a copy's gray failures add up to now (normal: factor 1, no errors, every worker).
pub(super) struct Gray {
    /// Read and write times are multiplied by this.
    pub slow: f64,
    /// Workers that take calls.
    pub workers: u32,
    error_share: f64,
    /// Draws of the error share, made when first needed: the copy's own stream is left
    /// as it was.
    injected: Option<Box<Rng>>,
    /// Seed of `injected`: a draw from a copy of the copy's stream at its start.
    seed: u64,
}

impl Gray {
    /// A copy with `workers` workers and stream `rng`, running normally.
    pub fn new(workers: u32, rng: &Rng) -> Self {
        Gray {
            slow: 1.0,
            workers,
            error_share: 0.0,
            injected: None,
            seed: rng.clone().next_u64(),
        }
    }

    /// From now on, `d` (of a copy with `full` workers).
    pub fn set(&mut self, d: Degradation, full: u32) {
        self.slow = d.slow;
        self.error_share = d.error_share;
        self.workers = d.workers.unwrap_or(full);
    }

    /// True when the call arriving now fails (drawn from the error share).
    #[inline]
    pub fn fails(&mut self) -> bool {
        self.error_share > 0.0 && self.draw() < self.error_share
    }

    #[cold]
    fn draw(&mut self) -> f64 {
        let seed = self.seed;
        let rng = self
            .injected
            .get_or_insert_with(|| Box::new(Rng::seed_from_u64(mix64(seed))));
        rng.random::<f64>()
    }
}
