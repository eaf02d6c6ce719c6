//! Validation of a `load_balancer`: its backends (every instance of each named component),
//! its policy and the fields that apply only to some policies, resolved to a [`BalancerDef`].

use super::health::{HealthCheck, OutlierEjection};
use super::{BalancerDef, MAX_CHOICES, Policy};
use crate::error::{Errors, index, join};
use crate::model::graph::{Link, LinkKind};
use crate::model::resolve::Resolver;
use crate::model::spec::*;
use crate::time::{DurationSpec, SimDuration, format_duration_nanos, parse_duration_nanos};

/// Validates balancer `b` at `path`, component number `me` of the model.
pub fn balancer(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    b: &LoadBalancerSpec,
) -> Option<BalancerDef> {
    let policy_spec = b.policy.unwrap_or(PolicySpec::RoundRobin);
    let mut backends = Vec::new();
    let names = b.backends.names();
    let bp = join(path, "backends");
    if names.is_empty() {
        errs.push(&bp, "a load balancer needs at least one backend");
    }
    for (i, name) in names.iter().enumerate() {
        let p = if names.len() == 1 && matches!(b.backends, BackendsSpec::One(_)) {
            bp.clone()
        } else {
            index(&bp, i)
        };
        let Some(g) = errs.take(r.group(&p, name)) else {
            continue;
        };
        if g as usize == me {
            errs.push(
                &p,
                format!("a load balancer cannot balance over itself (\"{name}\")"),
            );
            continue;
        }
        if names[..i].contains(name) {
            errs.push(&p, format!("backend \"{name}\" is listed twice"));
            continue;
        }
        let first = r.first_instance[g as usize];
        backends.extend(first..first + r.replicas[g as usize]);
    }
    let n = backends.len();
    let only = |errs: &mut Errors, field: &str, set: bool, policy: &str| {
        if set && policy_spec_name(policy_spec) != policy {
            errs.push(
                join(path, field),
                format!("\"{field}\" applies only with \"policy\": \"{policy}\""),
            );
        }
    };
    only(errs, "weights", b.weights.is_some(), "weighted_round_robin");
    only(errs, "choices", b.choices.is_some(), "power_of_choices");
    only(errs, "distinct", b.distinct.is_some(), "power_of_choices");
    let weights = match (&b.weights, policy_spec) {
        (Some(w), _) => {
            if n > 0 && w.len() != n {
                errs.push(
                    join(path, "weights"),
                    format!(
                        "needs one weight per backend instance ({n}), got {}",
                        w.len()
                    ),
                );
            } else if w.iter().all(|x| *x == 0) {
                errs.push(
                    join(path, "weights"),
                    "at least one weight must be positive",
                );
            }
            w.clone()
        }
        (None, PolicySpec::WeightedRoundRobin) => {
            errs.push(
                join(path, "weights"),
                format!(
                    "missing: \"weighted_round_robin\" needs one weight per backend instance ({n})"
                ),
            );
            vec![1; n]
        }
        (None, _) => vec![1; n],
    };
    let policy = match policy_spec {
        PolicySpec::RoundRobin => Policy::RoundRobin,
        PolicySpec::WeightedRoundRobin => Policy::WeightedRoundRobin,
        PolicySpec::Random => Policy::Random,
        PolicySpec::LeastConnections => Policy::LeastConnections,
        PolicySpec::HashKey => Policy::HashKey,
        PolicySpec::HashClient => Policy::HashClient,
        PolicySpec::PowerOfChoices => {
            let distinct = b.distinct.unwrap_or(true);
            let max = if distinct {
                MAX_CHOICES.min(n.max(1))
            } else {
                MAX_CHOICES
            };
            // Two by default, or all there are when a single backend instance is listed.
            let choices = b.choices.unwrap_or(2.min(max as u32));
            if choices == 0 || choices as usize > max {
                errs.push(
                    join(path, "choices"),
                    format!(
                        "must be between 1 and {max}{}, got {choices}",
                        if distinct && n < MAX_CHOICES {
                            " (the number of backend instances)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Policy::PowerOfChoices { choices, distinct }
        }
    };
    // The call-graph link: every backend component, in the order listed, with its share
    // of the weight.
    let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
    let mut targets: Vec<(usize, f64)> = Vec::new();
    for (inst, w) in backends.iter().zip(&weights) {
        let g = (0..r.names.len())
            .find(|g| {
                *inst >= r.first_instance[*g] && *inst < r.first_instance[*g] + r.replicas[*g]
            })
            .unwrap_or(0);
        let share = if total > 0.0 {
            f64::from(*w) / total
        } else {
            0.0
        };
        match targets.last_mut() {
            Some((last, s)) if *last == g => *s += share,
            _ => targets.push((g, share)),
        }
    }
    let links = vec![Link {
        class: None,
        kind: LinkKind::Balance,
        targets,
        path: bp,
    }];
    let health_check = b
        .health_check
        .as_ref()
        .and_then(|h| health_check(errs, &join(path, "health_check"), h));
    let outlier_ejection = b
        .outlier_ejection
        .as_ref()
        .and_then(|o| outlier_ejection(errs, &join(path, "outlier_ejection"), o, n));
    (n > 0).then_some(BalancerDef {
        policy,
        prefer_zone: b.prefer_zone.unwrap_or(false),
        backends,
        weights,
        links,
        health_check,
        outlier_ejection,
    })
}

/// Default time between two probes.
pub const DEFAULT_INTERVAL: &str = "5s";
/// Default probe timeout (or the interval if shorter).
pub const DEFAULT_TIMEOUT: &str = "2s";
/// Default failed probes in a row that take a backend out.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 2;
/// Default passed probes in a row that put it back.
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Default failed replies in a row that eject a backend.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Default time an ejected backend stays out.
pub const DEFAULT_EJECTION_TIME: &str = "30s";
/// Default largest share of backends ejected at once.
pub const DEFAULT_MAX_EJECTED_SHARE: f64 = 0.5;

fn default_duration(text: &str) -> SimDuration {
    SimDuration::from_nanos_f64(parse_duration_nanos(text).expect("a valid default"))
}

/// A duration field at `path` that must be longer than zero.
fn positive(errs: &mut Errors, path: &str, d: Option<DurationSpec>, default: &str) -> SimDuration {
    match d {
        None => default_duration(default),
        Some(d) if d.nanos() <= 0.0 || d.to_sim().0 == 0 => {
            errs.push(
                path,
                format!(
                    "must be longer than zero, got \"{}\"",
                    format_duration_nanos(d.nanos())
                ),
            );
            SimDuration::ZERO
        }
        Some(d) => d.to_sim(),
    }
}

/// A threshold field at `path`: at least 1.
fn at_least_one(errs: &mut Errors, path: &str, v: Option<u32>, default: u32) -> u32 {
    let v = v.unwrap_or(default);
    if v == 0 {
        errs.push(path, "must be at least 1, got 0");
    }
    v
}

/// Validates the `health_check` block at `path`.
fn health_check(errs: &mut Errors, path: &str, h: &HealthCheckSpec) -> Option<HealthCheck> {
    let before = errs.len();
    let interval = positive(errs, &join(path, "interval"), h.interval, DEFAULT_INTERVAL);
    let timeout = match h.timeout {
        None => default_duration(DEFAULT_TIMEOUT).min(interval),
        Some(t) => {
            let timeout = positive(errs, &join(path, "timeout"), Some(t), DEFAULT_TIMEOUT);
            if timeout > interval && interval.0 > 0 {
                errs.push(
                    join(path, "timeout"),
                    format!(
                        "must be at most the interval (\"{}\"), got \"{}\"",
                        format_duration_nanos(interval.0 as f64),
                        format_duration_nanos(t.nanos())
                    ),
                );
            }
            timeout
        }
    };
    let unhealthy_threshold = at_least_one(
        errs,
        &join(path, "unhealthy_threshold"),
        h.unhealthy_threshold,
        DEFAULT_UNHEALTHY_THRESHOLD,
    );
    let healthy_threshold = at_least_one(
        errs,
        &join(path, "healthy_threshold"),
        h.healthy_threshold,
        DEFAULT_HEALTHY_THRESHOLD,
    );
    (errs.len() == before).then_some(HealthCheck {
        interval,
        timeout,
        unhealthy_threshold,
        healthy_threshold,
    })
}

/// Validates the `outlier_ejection` block at `path`, for `n` backend instances.
fn outlier_ejection(
    errs: &mut Errors,
    path: &str,
    o: &OutlierEjectionSpec,
    n: usize,
) -> Option<OutlierEjection> {
    let before = errs.len();
    let consecutive_failures = at_least_one(
        errs,
        &join(path, "consecutive_failures"),
        o.consecutive_failures,
        DEFAULT_CONSECUTIVE_FAILURES,
    );
    let ejection_time = positive(
        errs,
        &join(path, "ejection_time"),
        o.ejection_time,
        DEFAULT_EJECTION_TIME,
    );
    let share = o.max_ejected_share.unwrap_or(DEFAULT_MAX_EJECTED_SHARE);
    if !(0.0..=1.0).contains(&share) {
        errs.push(
            join(path, "max_ejected_share"),
            format!("must be between 0 and 1, got {share}"),
        );
    }
    // At least one instance when the share allows any.
    let max_ejected = if share > 0.0 {
        ((share * n as f64).floor() as u32).max(1)
    } else {
        0
    };
    (errs.len() == before).then_some(OutlierEjection {
        consecutive_failures,
        ejection_time,
        max_ejected,
    })
}

fn policy_spec_name(p: PolicySpec) -> &'static str {
    match p {
        PolicySpec::RoundRobin => "round_robin",
        PolicySpec::WeightedRoundRobin => "weighted_round_robin",
        PolicySpec::Random => "random",
        PolicySpec::LeastConnections => "least_connections",
        PolicySpec::PowerOfChoices => "power_of_choices",
        PolicySpec::HashKey => "hash_key",
        PolicySpec::HashClient => "hash_client",
    }
}

#[cfg(test)]
mod tests {
    use crate::model::graph::LinkKind;
    use crate::model::{Format, Model, parse_model_str};

    fn model(lb: &str) -> Result<Model, Vec<(String, String)>> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "lb"}}}},
                "components": {{"lb": {lb},
                               "a": {{"kind": "service", "replicas": 2, "service_time": {{"constant": "1ms"}}}},
                               "b": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        parse_model_str(&text, Format::Json, std::path::Path::new("."), &[])
            .map_err(|errs| errs.into_iter().map(|e| (e.path, e.message)).collect())
    }

    #[test]
    fn policy_fields_apply_only_to_their_policy() {
        let e = model(r#"{"kind": "load_balancer", "backends": "a", "choices": 2}"#).unwrap_err();
        assert_eq!(e[0].0, "components.lb.choices", "{e:?}");
        assert!(e[0].1.contains("\"power_of_choices\""), "{e:?}");
        let e = model(
            r#"{"kind": "load_balancer", "backends": "a", "policy": "weighted_round_robin"}"#,
        )
        .unwrap_err();
        assert_eq!(e[0].0, "components.lb.weights", "{e:?}");
        let e = model(
            r#"{"kind": "load_balancer", "backends": ["a", "b"], "policy": "weighted_round_robin", "weights": [1, 2]}"#,
        )
        .unwrap_err();
        assert!(
            e[0].1.contains("one weight per backend instance (3)"),
            "{e:?}"
        );
        let e = model(r#"{"kind": "load_balancer", "backends": ["a", "a"]}"#).unwrap_err();
        assert_eq!(e[0].0, "components.lb.backends[1]", "{e:?}");
        let e = model(r#"{"kind": "load_balancer", "backends": "a", "policy": "power_of_choices", "choices": 3}"#)
            .unwrap_err();
        assert!(e[0].1.contains("between 1 and 2"), "{e:?}");
    }

    #[test]
    fn a_balancer_links_to_its_backends_in_order_by_weight() {
        let m = model(
            r#"{"kind": "load_balancer", "backends": ["b", "a"], "policy": "weighted_round_robin", "weights": [2, 1, 1]}"#,
        )
        .unwrap();
        let link = &m.graph.links(0)[0];
        assert_eq!(link.kind, LinkKind::Balance);
        assert_eq!(link.path, "components.lb.backends");
        // b (group 2) has weight 2 of 4, a's two instances 1 each.
        assert_eq!(link.targets, [(2, 0.5), (1, 0.5)]);
    }

    #[test]
    fn health_check_and_outlier_ejection_defaults() {
        use super::{health_check, outlier_ejection};
        use crate::error::Errors;
        use crate::time::SimDuration;
        let ms = |x: u64| SimDuration(x * 1_000_000);
        let mut errs = Errors::default();
        let h = health_check(&mut errs, "h", &Default::default()).unwrap();
        assert_eq!((h.interval, h.timeout), (ms(5000), ms(2000)));
        assert_eq!((h.unhealthy_threshold, h.healthy_threshold), (2, 2));
        let o = outlier_ejection(&mut errs, "o", &Default::default(), 3).unwrap();
        assert_eq!((o.consecutive_failures, o.ejection_time), (5, ms(30_000)));
        // Half of three instances, rounded down.
        assert_eq!(o.max_ejected, 1);
        // A short interval shortens the default timeout with it.
        let spec: crate::model::spec::HealthCheckSpec =
            serde_json::from_str(r#"{"interval": "500ms"}"#).unwrap();
        let h = health_check(&mut errs, "h", &spec).unwrap();
        assert_eq!(h.timeout, ms(500));
        // At least one instance when the share allows any, none with 0.
        let share = |s: f64, n: usize| {
            let spec = crate::model::spec::OutlierEjectionSpec {
                max_ejected_share: Some(s),
                ..Default::default()
            };
            outlier_ejection(&mut Errors::default(), "o", &spec, n).map(|o| o.max_ejected)
        };
        assert_eq!(share(0.01, 4), Some(1));
        assert_eq!(share(0.0, 4), Some(0));
        assert_eq!(share(0.5, 8), Some(4));
        assert_eq!(share(1.0, 3), Some(3));
        assert_eq!(share(1.01, 3), None);
        assert_eq!(errs.len(), 0);
        // A balancer without either watches nothing.
        let m = model(r#"{"kind": "load_balancer", "backends": "a"}"#).unwrap();
        assert_eq!(m.components[0].kind.metrics(), super::super::METRICS);
        let m =
            model(r#"{"kind": "load_balancer", "backends": "a", "outlier_ejection": {}}"#).unwrap();
        assert_eq!(
            m.components[0].kind.metrics(),
            super::super::WATCHING_METRICS
        );
    }

    #[test]
    fn power_of_choices_over_a_single_instance_draws_it_by_default() {
        let lb = r#"{"kind": "load_balancer", "backends": "b", "policy": "power_of_choices"}"#;
        assert!(model(lb).is_ok());
        let lb = r#"{"kind": "load_balancer", "backends": "b", "policy": "power_of_choices", "choices": 2}"#;
        let e = model(lb).unwrap_err();
        assert_eq!(e[0].0, "components.lb.choices", "{e:?}");
    }
}
