//! The analytic estimate of a `load_balancer`: it takes no time itself; it splits its flow
//! over its backends by weight (round robin and join-the-shortest-queue policies divide the
//! arrival variability by the number of instances, random and hash policies split it at
//! random), and its response time is the weighted mean of its backends'. Least connections
//! over every instance of a backend marks that share as pooled, so the backend is estimated
//! as one queue with all its workers.

use super::{BalancerDef, Policy};
use crate::analysis::{Flow, Network};

/// First pass: each backend component gets its weight share of the flow.
pub fn pass_flows(b: &BalancerDef, net: &Network, flow: &Flow, flows: &mut [Flow]) {
    let total_w: f64 = b.weights.iter().map(|w| f64::from(*w)).sum();
    for (g2, other) in net.model.components.iter().enumerate() {
        let share: f64 = b
            .backends
            .iter()
            .zip(&b.weights)
            .filter(|(inst, _)| {
                **inst >= other.first_instance && **inst < other.first_instance + other.replicas
            })
            .map(|(_, w)| f64::from(*w))
            .sum::<f64>()
            / total_w;
        if share > 0.0 {
            let instances = b.backends.len() as f64;
            let mut covered = vec![false; other.replicas as usize];
            for i in &b.backends {
                if let Some(c) = i
                    .checked_sub(other.first_instance)
                    .and_then(|k| covered.get_mut(k as usize))
                {
                    *c = true;
                }
            }
            let covers_all = covered.iter().all(|c| *c);
            let scv = match b.policy {
                Policy::RoundRobin | Policy::WeightedRoundRobin => flow.scv() / instances,
                // Join-the-shortest-queue policies smooth arrivals like round robin.
                Policy::LeastConnections | Policy::PowerOfChoices { .. } => flow.scv() / instances,
                _ => {
                    let p = 1.0 / instances;
                    p * flow.scv() + 1.0 - p
                }
            };
            // The backend group sees the share; its instances split it.
            flows[g2].add(&flow.rate, share, scv);
            if b.policy == Policy::LeastConnections && covers_all {
                let added = flow.total() * share;
                flows[g2].pooled_rate += added;
                flows[g2].pooled_scv_weighted += added * flow.scv();
            }
        }
    }
}

/// Second pass: the weighted mean of the backends' response times, ms.
pub fn response(b: &BalancerDef, net: &Network, response_ms: &[f64]) -> f64 {
    let total_w: f64 = b.weights.iter().map(|w| f64::from(*w)).sum();
    let mut r = 0.0;
    for (inst, w) in b.backends.iter().zip(&b.weights) {
        let g2 = net
            .model
            .components
            .iter()
            .position(|c| *inst >= c.first_instance && *inst < c.first_instance + c.replicas)
            .unwrap_or(0);
        r += response_ms[g2] * f64::from(*w) / total_w;
    }
    r
}
