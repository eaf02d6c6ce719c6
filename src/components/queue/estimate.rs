//! The analytic estimate of a `queue`: the producer waits only for the enqueue; every
//! message reaches the consumer service once (redeliveries left out), with the arrival
//! variability of the producers' stream.
//!
//! Beside the simulation (validation Q1 for one consumer): the consumer pool as one
//! M/M/c queue with c = the messages handed out at once (at most the consumers' workers),
//! Allen-Cunneen when arrivals or work are not exponential, giving the mean delay from
//! enqueue to acknowledgement and the mean depth; and for a workload's burst above what
//! the consumers can do, the backlog it leaves (arrival surplus × burst length) and the
//! time it takes to drain (backlog / spare capacity after the burst).

use super::QueueDef;
use crate::analysis::{Flow, MetricEstimate, Network, erlang_c, flows_at, mean_rate};
use crate::workload::Arrivals;

/// First pass: the consumer service gets the whole flow (not with `batch`: it then gets
/// batches of a size the estimate does not know, in place of its handler's work).
pub fn pass_flows(q: &QueueDef, _net: &Network, flow: &Flow, flows: &mut [Flow]) {
    if q.batch.is_none() {
        flows[q.consumers as usize].add(&flow.rate, 1.0, flow.scv());
    }
}

/// With `batch`: no delay estimate (the batch sizes depend on the backlog); a warning when
/// the arrivals exceed what the consumers do in full batches, their greatest capacity:
/// consumers × max / (fixed + max × per_message).
fn batch_capacity_warning(
    q: &QueueDef,
    b: &super::Batch,
    name: &str,
    flow: &Flow,
) -> Option<String> {
    let mean =
        |d: &Option<crate::distributions::Distribution>| d.as_ref().map_or(0.0, |d| d.mean_ns());
    let batch_ns = mean(&b.fixed) + f64::from(b.max) * mean(&b.per_message);
    if batch_ns <= 0.0 || q.consumers_autoscaled {
        return None;
    }
    let servers = q.capacity.min(q.consumer_workers).max(1);
    let capacity = f64::from(servers) * f64::from(b.max) * 1e9 / batch_ns;
    let lambda = flow.total();
    (lambda >= capacity).then(|| {
        format!(
            "components.{name}: {lambda:.1} messages/s arrive, more than its consumers do even in full batches ({servers} x {} / {:.3} ms = {capacity:.1}/s): the backlog grows without bound (raise batch.max or add consumers)",
            b.max,
            batch_ns / 1e6
        )
    })
}

/// Second pass: the producer's mean response time, ms: the mean enqueue time.
pub fn response_ms(q: &QueueDef) -> f64 {
    q.enqueue_time.as_ref().map_or(0.0, |d| d.mean_ns() / 1e6)
}

/// The consumer pool: servers, mean work per message (ms), its SCV, and whether the
/// consumers call on (their calls are left out).
struct Pool {
    servers: u32,
    hold_ms: f64,
    hold_scv: f64,
    calls: bool,
}

impl Pool {
    /// Messages per second the pool acknowledges at full use.
    fn capacity_per_s(&self) -> f64 {
        f64::from(self.servers) * 1e3 / self.hold_ms
    }
}

/// The estimates of queue `q` (at `net`) for the settled flow `flow` arriving at it.
pub fn metric_estimates(
    q: &QueueDef,
    net: &Network,
    flow: &Flow,
    warnings: &mut Vec<String>,
) -> Vec<MetricEstimate> {
    let model = net.model;
    let name = &net.def().name;
    if q.consumers_autoscaled || flow.total() <= 0.0 {
        return Vec::new();
    }
    if let Some(b) = &q.batch {
        warnings.extend(batch_capacity_warning(q, b, name, flow));
        return Vec::new();
    }
    let consumer = Network {
        model,
        group: q.consumers as usize,
        keyed: net.keyed,
        by_source: false,
    };
    let Some((hold_ms, hold_scv, calls)) = model.components[q.consumers as usize]
        .kind
        .work_hold(&consumer, flow)
    else {
        return Vec::new();
    };
    if hold_ms <= 0.0 {
        return Vec::new();
    }
    let pool = Pool {
        servers: q.capacity.min(q.consumer_workers).max(1),
        hold_ms,
        hold_scv,
        calls,
    };
    let caveat = if pool.calls {
        "the consumers' calls are left out of their work".to_string()
    } else {
        String::new()
    };
    // Which workloads reach the queue, and whether their rate changes over the run.
    let mut varying = false;
    let mut out = Vec::new();
    let mut backlog: Option<(f64, String, f64)> = None;
    for (i, w) in model.workloads.iter().enumerate() {
        let mut rates = vec![0.0; model.workloads.len()];
        rates[i] = mean_rate(model, i);
        if flows_at(model, &rates, net.keyed)[net.group].total() <= 0.0 {
            continue;
        }
        if !matches!(w.arrivals, Arrivals::Profile(_)) {
            continue;
        }
        varying = true;
        let Some(b) = w.burst else { continue };
        // Every workload at its rate at time t.
        let at = |t| -> f64 {
            let rates: Vec<f64> = model
                .workloads
                .iter()
                .enumerate()
                .map(|(j, v)| match &v.arrivals {
                    Arrivals::Profile(p) => p.rate_at(t),
                    _ => mean_rate(model, j),
                })
                .collect();
            flows_at(model, &rates, net.keyed)[net.group].total()
        };
        let mid = crate::time::SimTime((b.start.0 + b.end.0) / 2);
        let (peak, base) = (at(mid), at(b.end));
        let mu = pool.capacity_per_s();
        let len_s = b.end.since(b.start).as_secs_f64();
        if peak <= mu {
            continue;
        }
        let left = (peak - mu) * len_s;
        let drain = if mu > base {
            format!(
                "drains in {:.1} s at the spare {:.0}/s",
                left / (mu - base),
                mu - base
            )
        } else {
            "never drains: the consumers do no more than arrives after it".to_string()
        };
        let method = format!(
            "burst of workload {}: ({:.0} - {:.0} consumer capacity)/s x {:.1} s = {:.0} messages; {drain}",
            w.name, peak, mu, len_s, left
        );
        let noise = 4.0 * ((peak + mu) * len_s).sqrt();
        if backlog.as_ref().is_none_or(|(l, _, _)| left > *l) {
            backlog = Some((left, method, 0.1 * left + noise));
        }
    }
    if let Some((left, method, tolerance)) = backlog {
        let (value, method) = if left > q.max_depth as f64 {
            (
                q.max_depth as f64,
                format!(
                    "{method}, beyond max_depth {}: the rest is refused or dropped",
                    q.max_depth
                ),
            )
        } else {
            (left, method)
        };
        out.push(MetricEstimate {
            metric: "depth_max".into(),
            value,
            method,
            tolerance,
            caveat: String::new(),
        });
    }
    if varying {
        // The rate changes over the run: a steady-state queue does not describe it.
        return out;
    }
    let lambda = flow.total();
    let c = pool.servers;
    let a = lambda * pool.hold_ms / 1e3;
    if a >= f64::from(c) {
        warnings.push(format!(
            "components.{name}: its consumers are offered {a:.2} Erlangs on {c} at once: the backlog grows without bound (add consumer workers or replicas)"
        ));
        return out;
    }
    let ca2 = flow.scv();
    let exact = (ca2 - 1.0).abs() < 1e-9 && (pool.hold_scv - 1.0).abs() < 1e-9;
    let wq_ms = erlang_c(c, a) * pool.hold_ms / (f64::from(c) - a) * (ca2 + pool.hold_scv) / 2.0;
    let method = if exact {
        format!("M/M/{c} (Erlang C)")
    } else {
        format!("M/G/{c} (Allen-Cunneen)")
    };
    let delay = wq_ms + pool.hold_ms;
    out.push(MetricEstimate {
        metric: "delay_mean_ms".into(),
        value: delay,
        method: format!("{method}: wait {wq_ms:.3} ms + work {:.3} ms", pool.hold_ms),
        tolerance: 0.1 * delay,
        caveat: caveat.clone(),
    });
    // The queue holds what waits for one of the c delivery slots.
    if q.capacity <= q.consumer_workers {
        let lq = lambda * wq_ms / 1e3;
        out.push(MetricEstimate {
            metric: "depth_mean".into(),
            value: lq,
            method,
            tolerance: 0.1 * lq + 0.05,
            caveat,
        });
    }
    out
}
