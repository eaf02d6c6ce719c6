//! Validation of a `queue`: its consumers (a service), enqueue time, depth limit, visibility
//! timeout, deliveries and backoff, resolved to a [`QueueDef`], every error at its field's
//! path.

use super::{Batch, QueueDef, WhenFull};
use crate::error::{Errors, join};
use crate::model::graph::{Link, LinkKind};
use crate::model::resolve::{Resolver, dist};
use crate::model::spec::*;
use crate::time::{DurationSpec, SimDuration, format_duration_nanos, parse_duration_nanos};

/// Default visibility timeout (as SQS's).
pub const DEFAULT_VISIBILITY_TIMEOUT: &str = "30s";

/// Default most messages in a batch (as SQS's receive).
pub const DEFAULT_BATCH_MAX: u32 = 10;

/// Validates queue `q` at `path`, component number `me` of the model.
pub fn queue(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    q: &MessageQueueSpec,
) -> Option<QueueDef> {
    let before = errs.len();
    let cp = join(path, "consumers");
    let mut consumers = 0;
    let mut consumer_instances = 1;
    let mut consumers_autoscaled = false;
    let mut workers = 1;
    if let Some(g) = errs.take(r.group(&cp, &q.consumers)) {
        consumers = g;
        if g as usize == me {
            errs.push(&cp, "a queue cannot consume its own messages");
        } else {
            match r.kinds.get(g as usize) {
                Some(KindSpec::Service(s)) => {
                    workers = s.workers.unwrap_or(1).max(1);
                    consumer_instances = r.replicas[g as usize];
                    consumers_autoscaled = r
                        .kinds
                        .iter()
                        .any(|k| matches!(k, KindSpec::Autoscaler(a) if a.target == q.consumers));
                }
                _ => errs.push(
                    &cp,
                    format!(
                        "must name a service (its workers process the messages); \"{}\" is not one",
                        q.consumers
                    ),
                ),
            }
        }
    }
    let enqueue_time = match &q.enqueue_time {
        Some(d) => dist(errs, &join(path, "enqueue_time"), d),
        None => None,
    };
    if q.max_depth == Some(0) {
        errs.push(join(path, "max_depth"), "must be at least 1, got 0");
    }
    if q.when_full.is_some() && q.max_depth.is_none() {
        errs.push(
            join(path, "when_full"),
            "applies only with \"max_depth\" (a queue without one is never full)",
        );
    }
    let when_full = match q.when_full {
        Some(WhenFullSpec::DropOldest) => WhenFull::DropOldest,
        _ => WhenFull::Refuse,
    };
    let vp = join(path, "visibility_timeout");
    let visibility_timeout = match q.visibility_timeout {
        None => SimDuration::from_nanos_f64(
            parse_duration_nanos(DEFAULT_VISIBILITY_TIMEOUT).expect("a valid default"),
        ),
        Some(d) => positive(errs, &vp, d),
    };
    if q.max_deliveries == Some(0) {
        errs.push(join(path, "max_deliveries"), "must be at least 1, got 0");
    }
    let max_deliveries = q
        .max_deliveries
        .unwrap_or(u32::MAX)
        .clamp(1, u32::from(u16::MAX));
    let retry_backoff = match q.retry_backoff {
        None => SimDuration::ZERO,
        Some(d) if d.nanos() < 0.0 => {
            errs.push(join(path, "retry_backoff"), "must be zero or more");
            SimDuration::ZERO
        }
        Some(d) => d.to_sim(),
    };
    if q.in_flight_per_consumer == Some(0) {
        errs.push(
            join(path, "in_flight_per_consumer"),
            "must be at least 1, got 0",
        );
    }
    let per_consumer = q.in_flight_per_consumer.unwrap_or(workers).max(1);
    let dead_letter = q
        .dead_letter
        .as_deref()
        .and_then(|name| dead_letter_target(r, errs, &join(path, "dead_letter"), me, name));
    let level_of_class = order(r, errs, path, q);
    let batch = q
        .batch
        .as_ref()
        .map(|b| batch(errs, &join(path, "batch"), b));
    if errs.len() > before {
        return None;
    }
    let mut links = vec![Link {
        class: None,
        kind: LinkKind::Wait { need: 1 },
        targets: vec![(consumers as usize, 1.0)],
        path: cp,
    }];
    if let Some(d) = dead_letter {
        links.push(Link {
            class: None,
            kind: LinkKind::Wait { need: 1 },
            targets: vec![(d as usize, 1.0)],
            path: join(path, "dead_letter"),
        });
    }
    Some(QueueDef {
        consumers,
        dead_letter,
        level_of_class,
        enqueue_time,
        max_depth: q.max_depth.map_or(usize::MAX, |d| d as usize),
        when_full,
        visibility_timeout,
        max_deliveries: max_deliveries as u16,
        retry_backoff,
        capacity: per_consumer.saturating_mul(consumer_instances),
        consumer_workers: workers.saturating_mul(consumer_instances),
        consumers_autoscaled,
        batch: batch.flatten(),
        links,
    })
}

/// Most messages in a batch a model may ask for.
const MAX_BATCH: u32 = 1_000_000;

/// The batching `b` of a queue, at `path`.
fn batch(errs: &mut Errors, path: &str, b: &BatchSpec) -> Option<Batch> {
    let max = b.max.unwrap_or(DEFAULT_BATCH_MAX);
    if !(1..=MAX_BATCH).contains(&max) {
        errs.push(
            join(path, "max"),
            format!("must be between 1 and {MAX_BATCH}, got {max}"),
        );
    }
    // A negative duration is refused as the file is read.
    let max_wait = b.max_wait.map_or(SimDuration::ZERO, |d| d.to_sim());
    let fixed = b
        .fixed
        .as_ref()
        .and_then(|d| dist(errs, &join(path, "fixed"), d));
    let per_message = b
        .per_message
        .as_ref()
        .and_then(|d| dist(errs, &join(path, "per_message"), d));
    Some(Batch {
        max: max.clamp(1, MAX_BATCH),
        max_wait,
        fixed,
        per_message,
    })
}

/// The dead-letter queue `name` at `path`: another `queue`.
fn dead_letter_target(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    name: &str,
) -> Option<u32> {
    let g = errs.take(r.group(path, name))?;
    if g as usize == me {
        errs.push(
            path,
            "a queue cannot be its own dead-letter queue (name another queue)",
        );
        return None;
    }
    match r.kinds.get(g as usize) {
        Some(KindSpec::Queue(_)) => Some(g),
        _ => {
            errs.push(
                path,
                format!("must name a queue (it receives the dead-lettered messages); \"{name}\" is not one"),
            );
            None
        }
    }
}

/// The priority level of each request class (empty for "fifo" order).
fn order(r: &Resolver, errs: &mut Errors, path: &str, q: &MessageQueueSpec) -> Vec<u8> {
    let pp = join(path, "priorities");
    match q.order {
        Some(OrderSpec::Priority) => {
            let mut level_of_class = vec![0u8; r.classes.len().max(1)];
            for (class, level) in q.priorities.iter().flatten() {
                if let Some(c) = errs.take(r.class(&join(&pp, class), class)) {
                    level_of_class[c] = *level;
                }
            }
            level_of_class
        }
        _ => {
            if q.priorities.is_some() {
                errs.push(pp, "priorities apply only with \"order\": \"priority\"");
            }
            Vec::new()
        }
    }
}

/// A duration at `path` that must be longer than zero.
fn positive(errs: &mut Errors, path: &str, d: DurationSpec) -> SimDuration {
    if d.nanos() <= 0.0 || d.to_sim().0 == 0 {
        errs.push(
            path,
            format!(
                "must be longer than zero, got \"{}\"",
                format_duration_nanos(d.nanos())
            ),
        );
    }
    d.to_sim()
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors (path, message) of a model whose service `app` sends to queue `q`,
    /// consumed by service `worker`.
    fn errors(queue: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app"}}}},
                "components": {{
                  "app": {{"kind": "service", "handler": [{{"call": "q"}}]}},
                  "q": {queue},
                  "worker": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn a_valid_queue_passes() {
        let ok = errors(
            r#"{"kind": "queue", "consumers": "worker", "enqueue_time": {"constant": "2ms"}}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn errors_name_their_field() {
        let errs = errors(r#"{"kind": "queue", "consumers": "q"}"#);
        let (p, m) = errs.first().expect("an error");
        assert_eq!(p, "components.q.consumers", "{errs:?}");
        assert!(m.contains("its own messages"), "{m}");
        let errs = errors(r#"{"kind": "queue", "consumers": "worker", "max_deliveries": 0}"#);
        let (p, _) = errs.first().expect("an error");
        assert_eq!(p, "components.q.max_deliveries", "{errs:?}");
    }
}
