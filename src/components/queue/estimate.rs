//! The analytic estimate of a `queue`: the producer waits only for the enqueue; every
//! message reaches the consumer service once (redeliveries left out), with the arrival
//! variability of the producers' stream.

use super::QueueDef;
use crate::analysis::{Flow, Network};

/// First pass: the consumer service gets the whole flow.
pub fn pass_flows(q: &QueueDef, _net: &Network, flow: &Flow, flows: &mut [Flow]) {
    flows[q.consumers as usize].add(&flow.rate, 1.0, flow.scv());
}

/// Second pass: the producer's mean response time, ms: the mean enqueue time.
pub fn response_ms(q: &QueueDef) -> f64 {
    q.enqueue_time.as_ref().map_or(0.0, |d| d.mean_ns() / 1e6)
}
