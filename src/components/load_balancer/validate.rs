//! Validation of a `load_balancer`: its backends (every instance of each named component),
//! its policy and the fields that apply only to some policies, resolved to a [`BalancerDef`].

use super::{BalancerDef, MAX_CHOICES, Policy};
use crate::error::{Errors, index, join};
use crate::model::graph::{Link, LinkKind};
use crate::model::resolve::Resolver;
use crate::model::spec::*;

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
    (n > 0).then_some(BalancerDef {
        policy,
        prefer_zone: b.prefer_zone.unwrap_or(false),
        backends,
        weights,
        links,
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
    fn power_of_choices_over_a_single_instance_draws_it_by_default() {
        let lb = r#"{"kind": "load_balancer", "backends": "b", "policy": "power_of_choices"}"#;
        assert!(model(lb).is_ok());
        let lb = r#"{"kind": "load_balancer", "backends": "b", "policy": "power_of_choices", "choices": 2}"#;
        let e = model(lb).unwrap_err();
        assert_eq!(e[0].0, "components.lb.choices", "{e:?}");
    }
}
