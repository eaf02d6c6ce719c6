//! Validation of an `autoscaler`: its target (a service, scaled by no other autoscaler),
//! bounds, metric and policy, periods and delays, resolved to an [`AutoscalerDef`], every
//! error at its field's path.

use super::{AutoscalerDef, Metric, OnRemove, Policy};
use crate::error::{Errors, join};
use crate::model::resolve::Resolver;
use crate::model::spec::*;
use crate::time::{DurationSpec, SimDuration, format_duration_nanos, parse_duration_nanos};

/// Default evaluation period.
pub const DEFAULT_EVALUATION_PERIOD: &str = "60s";
/// Default cooldowns (the seeds' "cooldown 300").
pub const DEFAULT_COOLDOWN: &str = "300s";

/// Validates autoscaler `a` at `path`, component number `me` of the model.
pub fn autoscaler(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    a: &AutoscalerSpec,
) -> Option<AutoscalerDef> {
    let before = errs.len();
    let tp = join(path, "target");
    let mut target = 0;
    let mut written = 1;
    let mut feeders = Vec::new();
    if let Some(g) = errs.take(r.group(&tp, &a.target)) {
        target = g;
        written = r.replicas_written[g as usize];
        let gi = g as usize;
        if gi == me {
            errs.push(&tp, "an autoscaler cannot scale itself");
        } else if !matches!(r.kinds.get(gi), Some(KindSpec::Service(_))) {
            errs.push(
                &tp,
                format!(
                    "must name a service (its instances are started and stopped); \"{}\" is not one",
                    a.target
                ),
            );
        }
        let earlier = r.kinds[..me]
            .iter()
            .position(|k| matches!(k, KindSpec::Autoscaler(o) if o.target == a.target));
        if let Some(other) = earlier {
            errs.push(
                &tp,
                format!(
                    "\"{}\" is already scaled by the autoscaler \"{}\"; give a service one autoscaler",
                    a.target, r.names[other]
                ),
            );
        }
        for (q, k) in r.kinds.iter().enumerate() {
            if matches!(k, KindSpec::Queue(s) if s.consumers == a.target) {
                feeders.push(r.first_instance[q]);
            }
        }
    }
    if a.min == 0 {
        errs.push(join(path, "min"), "must be at least 1, got 0");
    }
    if a.min > a.max {
        errs.push(
            join(path, "min"),
            format!("must be at most max ({}), got {}", a.max, a.min),
        );
    }
    let initial = a.initial.unwrap_or(written);
    if a.min <= a.max && !(a.min..=a.max).contains(&initial) {
        let what = if a.initial.is_some() {
            String::new()
        } else {
            format!(" (by default the target's replicas, {written})")
        };
        errs.push(
            join(path, "initial"),
            format!(
                "must be within min ({}) and max ({}), got {initial}{what}",
                a.min, a.max
            ),
        );
    }
    let metric = match a.metric {
        ScalingMetricSpec::Utilization => Metric::Utilization,
        ScalingMetricSpec::QueueDepthPerInstance => Metric::QueueDepthPerInstance,
        ScalingMetricSpec::P99Latency => Metric::P99Latency,
        ScalingMetricSpec::RequestsPerInstance => Metric::RequestsPerInstance,
    };
    let policy = match (&a.target_value, &a.steps) {
        (Some(v), None) => {
            let vp = join(path, "target_value");
            if !(v.is_finite() && *v > 0.0) {
                errs.push(&vp, format!("must be a number above zero, got {v}"));
            } else if metric == Metric::Utilization && *v > 1.0 {
                errs.push(
                    &vp,
                    format!("a utilization is a share from 0 to 1, got {v}"),
                );
            }
            Policy::Target(*v)
        }
        (None, Some(steps)) => steps_policy(errs, &join(path, "steps"), steps),
        (Some(_), Some(_)) => {
            errs.push(
                join(path, "steps"),
                "give either \"target_value\" (target tracking) or \"steps\" (step scaling), not both",
            );
            Policy::Target(1.0)
        }
        (None, None) => {
            errs.push(
                path,
                "needs \"target_value\" (target tracking) or \"steps\" (step scaling)",
            );
            Policy::Target(1.0)
        }
    };
    let period = duration(
        errs,
        path,
        "evaluation_period",
        a.evaluation_period,
        DEFAULT_EVALUATION_PERIOD,
        true,
    );
    let out_cooldown = duration(
        errs,
        path,
        "scale_out_cooldown",
        a.scale_out_cooldown,
        DEFAULT_COOLDOWN,
        false,
    );
    let in_cooldown = duration(
        errs,
        path,
        "scale_in_cooldown",
        a.scale_in_cooldown,
        DEFAULT_COOLDOWN,
        false,
    );
    let delay = duration(
        errs,
        path,
        "provisioning_delay",
        a.provisioning_delay,
        "0s",
        false,
    );
    let on_remove = match a.on_remove {
        Some(OnRemoveSpec::Fail) => OnRemove::Fail,
        _ => OnRemove::Drain,
    };
    if errs.len() > before {
        return None;
    }
    Some(AutoscalerDef {
        target,
        first: r.first_instance[target as usize],
        min: a.min,
        max: a.max,
        initial,
        metric,
        policy,
        period,
        out_cooldown,
        in_cooldown,
        delay,
        on_remove,
        feeders,
    })
}

/// The steps at `path`: each with `above` and `add`, or `below` and `remove`.
fn steps_policy(errs: &mut Errors, path: &str, steps: &[ScalingStepSpec]) -> Policy {
    let mut out = Vec::new();
    let mut inward = Vec::new();
    if steps.is_empty() {
        errs.push(path, "must list at least one step");
    }
    for (i, s) in steps.iter().enumerate() {
        let sp = format!("{path}[{i}]");
        let finite = |v: f64, errs: &mut Errors, field: &str| {
            if !v.is_finite() {
                errs.push(
                    join(&sp, field),
                    format!("must be a finite number, got {v}"),
                );
            }
        };
        match (s.above, s.below, s.add, s.remove) {
            (Some(above), None, Some(add), None) => {
                finite(above, errs, "above");
                if add == 0 {
                    errs.push(join(&sp, "add"), "must be at least 1, got 0");
                }
                out.push((above, add));
            }
            (None, Some(below), None, Some(remove)) => {
                finite(below, errs, "below");
                if remove == 0 {
                    errs.push(join(&sp, "remove"), "must be at least 1, got 0");
                }
                inward.push((below, remove));
            }
            _ => errs.push(
                &sp,
                "a step is {\"above\": X, \"add\": N} or {\"below\": Y, \"remove\": N}",
            ),
        }
    }
    // Highest `above` first, lowest `below` first: the first that applies is taken.
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    inward.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let (Some(lo), Some(hi)) = (out.last(), inward.last())
        && hi.0 > lo.0
    {
        errs.push(
            path,
            format!(
                "a \"below\" ({}) above an \"above\" ({}) would add and remove at once",
                hi.0, lo.0
            ),
        );
    }
    Policy::Steps { out, inward }
}

/// The duration `field` of the autoscaler at `path` (`default` when not given); with
/// `positive`, it must be longer than zero.
fn duration(
    errs: &mut Errors,
    path: &str,
    field: &str,
    d: Option<DurationSpec>,
    default: &str,
    positive: bool,
) -> SimDuration {
    let nanos = match d {
        Some(d) => d.nanos(),
        None => parse_duration_nanos(default).expect("a valid default"),
    };
    let sim = SimDuration::from_nanos_f64(nanos);
    if nanos < 0.0 {
        errs.push(
            join(path, field),
            format!(
                "must not be negative, got \"{}\"",
                format_duration_nanos(nanos)
            ),
        );
    } else if positive && sim.0 == 0 {
        errs.push(
            join(path, field),
            format!(
                "must be longer than zero, got \"{}\"",
                format_duration_nanos(nanos)
            ),
        );
    }
    sim
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors (path, message) of a model with service `app` and autoscaler `a`.
    fn errors(autoscaler: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app"}}}},
                "components": {{
                  "app": {{"kind": "service", "replicas": 2, "service_time": {{"constant": "1ms"}}}},
                  "a": {autoscaler}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    fn first(autoscaler: &str) -> (String, String) {
        errors(autoscaler).into_iter().next().expect("an error")
    }

    #[test]
    fn a_valid_autoscaler_passes() {
        let ok = errors(
            r#"{"kind": "autoscaler", "target": "app", "min": 2, "max": 12,
                "metric": "utilization", "target_value": 0.6}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn min_above_max_is_refused_at_min() {
        let (p, m) = first(
            r#"{"kind": "autoscaler", "target": "app", "min": 5, "max": 3,
                "metric": "utilization", "target_value": 0.6}"#,
        );
        assert_eq!(p, "components.a.min");
        assert!(m.contains("at most max (3)"), "{m}");
    }

    #[test]
    fn a_target_that_is_not_a_service_is_refused() {
        let (p, m) = first(
            r#"{"kind": "autoscaler", "target": "a", "min": 1, "max": 3,
                "metric": "utilization", "target_value": 0.6}"#,
        );
        assert_eq!(p, "components.a.target");
        assert!(m.contains("itself") || m.contains("autoscaler"), "{m}");
    }
}
