//! From the `faults` list of a model file to [`FaultDef`]s: every field checked, with its
//! path; targets and instances resolved; scheduled faults of the same effect that overlap on
//! one instance refused.

use super::spec::*;
use super::{Effect, FaultDef, Timing};
use crate::components::ComponentDef;
use crate::engine::CrashMode;
use crate::error::{Errors, index, join};
use crate::model::resolve::{Resolver, dist};
use crate::network::NetworkDef;
use crate::time::{SimTime, format_duration_nanos};

/// Validates the model's `faults` (at path `faults`) against its components and its
/// network (zones and partitions need one).
pub fn faults(
    r: &Resolver,
    errs: &mut Errors,
    specs: &[FaultSpec],
    components: &[ComponentDef],
    network: Option<&NetworkDef>,
) -> Vec<FaultDef> {
    let before = errs.len();
    let defs: Vec<FaultDef> = specs
        .iter()
        .enumerate()
        .flat_map(|(i, f)| fault(r, errs, &index("faults", i), i, f, components, network))
        .collect();
    check_names(errs, specs, &defs);
    if errs.len() == before {
        check_overlaps(errs, &defs);
    }
    defs
}

/// Two faults of one name would share one line of results (their windows under one
/// headline): refused when a `name` was given. Two faults left to their default name
/// (as two crashes of one component at different times) share it on purpose.
fn check_names(errs: &mut Errors, specs: &[FaultSpec], defs: &[FaultDef]) {
    let mut first: Vec<(&str, u32)> = Vec::new();
    let mut refused: Vec<u32> = Vec::new();
    for d in defs {
        let Some(&(_, earlier)) = first.iter().find(|(n, _)| *n == d.name) else {
            first.push((&d.name, d.index));
            continue;
        };
        if earlier == d.index || refused.contains(&d.index) {
            continue; // a zone fault's defs share their fault's name
        }
        let given = |i: u32| specs[i as usize].name.is_some();
        let path = index("faults", d.index as usize);
        if given(d.index) {
            errs.push(
                join(&path, "name"),
                format!(
                    "\"{}\" is already the name of faults[{earlier}]; give each fault its own name",
                    d.name
                ),
            );
        } else if given(earlier) {
            errs.push(
                path,
                format!(
                    "its default name \"{}\" is the name given to faults[{earlier}]; give it a \"name\" of its own",
                    d.name
                ),
            );
        } else {
            continue;
        }
        refused.push(d.index);
    }
}

/// What a fault strikes: the component (its def and group) and the instances of it.
struct Hit<'a> {
    def: &'a ComponentDef,
    group: u32,
    instances: Vec<u32>,
}

fn fault(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    i: usize,
    f: &FaultSpec,
    components: &[ComponentDef],
    network: Option<&NetworkDef>,
) -> Vec<FaultDef> {
    if let Some(p) = &f.partition {
        return super::zone::partition(r, errs, path, i, f, p, network)
            .into_iter()
            .collect();
    }
    let hits = match (&f.target, &f.zone) {
        (None, None) => {
            errs.push(
                path,
                "a fault needs a \"target\" (a component) or a \"zone\", or is a \"partition\"",
            );
            return Vec::new();
        }
        (Some(target), None) => match target_hit(r, errs, path, f, target, components) {
            Some(hit) => vec![hit],
            None => return Vec::new(),
        },
        (target, Some(zone)) => {
            match super::zone::zone_hits(
                r,
                errs,
                path,
                f,
                target.as_deref(),
                zone,
                components,
                network,
            ) {
                Some(hits) => hits
                    .into_iter()
                    .map(|(def, group, instances)| Hit {
                        def,
                        group,
                        instances,
                    })
                    .collect(),
                None => return Vec::new(),
            }
        }
    };
    let zone_wide = f.zone.is_some() && f.target.is_none();
    let Some(effect) = effect(errs, path, f, (!zone_wide).then(|| hits[0].def)) else {
        return Vec::new();
    };
    // A zone-wide gray failure hits the kinds that can run degraded.
    let hits: Vec<Hit> = if zone_wide && !matches!(effect, Effect::Crash(_)) {
        let kept: Vec<Hit> = hits
            .into_iter()
            .filter(|h| h.def.kind.can_degrade())
            .collect();
        if kept.is_empty() {
            errs.push(
                join(path, effect.name()),
                format!(
                    "nothing in zone \"{}\" can run degraded; a gray failure hits services and databases",
                    f.zone.as_deref().unwrap_or_default()
                ),
            );
            return Vec::new();
        }
        kept
    } else {
        hits
    };
    let Some(timing) = timing(r, errs, path, f, &effect) else {
        return Vec::new();
    };
    // A random zone fault strikes all its instances at once, at times drawn for the zone.
    let zone = match timing {
        Timing::Random { .. } => f.zone.clone(),
        Timing::Scheduled { .. } => None,
    };
    hits.into_iter()
        .map(|h| {
            let def = h.def;
            let name = f.name.clone().unwrap_or_else(|| {
                let on = match (f.instance, &f.zone, &f.target) {
                    (Some(n), _, _) => def.instance_name(n),
                    (None, Some(z), Some(t)) => format!("{t} in zone {z}"),
                    (None, Some(z), None) => format!("zone {z}"),
                    (None, None, _) => def.name.clone(),
                };
                format!("{} {on}", effect.name())
            });
            FaultDef {
                index: i as u32,
                name,
                target: def.name.clone(),
                group: h.group,
                first_instance: def.first_instance,
                instances: h.instances,
                instance_names: (0..def.replicas).map(|k| def.instance_name(k)).collect(),
                leaves_group: def.kind.crash_leaves_group() || is_a_shard(components, h.group),
                effect,
                timing: timing.clone(),
                cut: None,
                zone: zone.clone(),
            }
        })
        .collect()
}

/// The component `target` of fault `f` and the instances it hits (one, or all).
fn target_hit<'a>(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    f: &FaultSpec,
    target: &str,
    components: &'a [ComponentDef],
) -> Option<Hit<'a>> {
    let group = errs.take(r.group(&join(path, "target"), target))?;
    let def = components.iter().find(|c| c.name == target)?;
    let instances: Vec<u32> = match f.instance {
        Some(n) if n >= def.replicas => {
            errs.push(
                join(path, "instance"),
                format!(
                    "\"{}\" has {} instance{} (0 to {}), got {n}",
                    target,
                    def.replicas,
                    if def.replicas == 1 { "" } else { "s" },
                    def.replicas - 1
                ),
            );
            return None;
        }
        Some(n) => vec![def.first_instance + n],
        None => (0..def.replicas).map(|k| def.first_instance + k).collect(),
    };
    Some(Hit {
        def,
        group,
        instances,
    })
}

/// True when component `group` is a shard of a router: a crash takes its instance out of
/// its group, so that the router sees the shard down and places its keys elsewhere.
fn is_a_shard(components: &[ComponentDef], group: u32) -> bool {
    components.iter().any(|c| {
        c.kind.crash_takes_targets_out_of_group()
            && c.kind
                .links()
                .iter()
                .any(|l| l.targets.iter().any(|(g, _)| *g == group as usize))
    })
}

/// The one effect of fault `f`, on component `def` (`None`: every component of a zone,
/// checked by the caller).
fn effect(
    errs: &mut Errors,
    path: &str,
    f: &FaultSpec,
    def: Option<&ComponentDef>,
) -> Option<Effect> {
    let given: Vec<&str> = [
        ("crash", f.crash.is_some()),
        ("slow", f.slow.is_some()),
        ("errors", f.errors.is_some()),
        ("workers", f.workers.is_some()),
        ("flush", f.flush.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(n, _)| *n)
    .collect();
    if given.len() != 1 {
        let found = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(", ")
        };
        errs.push(
            path,
            format!(
                "a fault needs exactly one effect: \"crash\", \"slow\", \"errors\", \"workers\", \"flush\" or \"partition\", got {found}"
            ),
        );
        return None;
    }
    let Some(def) = def else {
        // A whole zone: a crash, a slowdown or errors, on what each instance runs.
        if f.workers.is_some() || f.flush.is_some() {
            errs.push(
                join(path, given[0]),
                format!(
                    "a zone's fault crashes, slows or fails a share; \"{}\" needs a \"target\" (it may be given with \"zone\")",
                    given[0]
                ),
            );
            return None;
        }
        return settings(errs, path, f);
    };
    let target = &def.name;
    let gray = f.slow.is_some() || f.errors.is_some() || f.workers.is_some();
    if gray && !def.kind.can_degrade() {
        errs.push(
            join(path, given[0]),
            format!(
                "\"{}\" is a {}, which cannot run degraded; a gray failure hits a service or a database",
                target,
                def.kind.name()
            ),
        );
        return None;
    }
    if let Some(w) = &f.workers {
        let Some(has) = def.kind.workers() else {
            errs.push(
                join(path, "workers"),
                format!(
                    "\"{}\" is a {}, which has no workers to cut",
                    target,
                    def.kind.name()
                ),
            );
            return None;
        };
        if w.to == 0 || w.to >= has {
            errs.push(
                join(path, "workers.to"),
                format!(
                    "must be between 1 and {} (\"{}\" has {has} workers), got {}",
                    has.saturating_sub(1),
                    target,
                    w.to
                ),
            );
            return None;
        }
        return Some(Effect::Workers(w.to));
    }
    if f.flush.is_some() {
        if !def.kind.can_flush() {
            errs.push(
                join(path, "flush"),
                format!(
                    "\"{}\" is a {}, which holds no keys to flush; flush a cache",
                    target,
                    def.kind.name()
                ),
            );
            return None;
        }
        return Some(Effect::Flush);
    }
    settings(errs, path, f)
}

/// The crash, slowdown or errors of `f`, their settings checked.
fn settings(errs: &mut Errors, path: &str, f: &FaultSpec) -> Option<Effect> {
    if let Some(c) = &f.crash {
        return Some(Effect::Crash(crash_mode(c.mode)));
    }
    if let Some(s) = &f.slow {
        if !(s.factor.is_finite() && s.factor > 0.0) {
            errs.push(
                join(path, "slow.factor"),
                format!("must be more than 0, got {}", s.factor),
            );
            return None;
        }
        return Some(Effect::Slow(s.factor));
    }
    if let Some(e) = &f.errors {
        if !(0.0..=1.0).contains(&e.share) {
            errs.push(
                join(path, "errors.share"),
                format!("must be between 0 and 1, got {}", e.share),
            );
            return None;
        }
        return Some(Effect::Errors(e.share));
    }
    None
}

/// The engine's crash mode for `mode` (default refused).
pub(super) fn crash_mode(mode: Option<CrashModeSpec>) -> CrashMode {
    match mode {
        Some(CrashModeSpec::BlackHole) => CrashMode::BlackHole,
        _ => CrashMode::Refused,
    }
}

/// When fault `f` happens.
pub(super) fn timing(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    f: &FaultSpec,
    effect: &Effect,
) -> Option<Timing> {
    let flush = matches!(effect, Effect::Flush);
    match (&f.at, &f.random) {
        (Some(_), Some(_)) => {
            errs.push(
                join(path, "random"),
                "a fault is either scheduled (\"at\", \"for\") or random, not both",
            );
            None
        }
        (None, None) => {
            errs.push(
                path,
                "a fault needs \"at\" (with \"for\") or \"random\" ({\"between\": ..., \"repair\": ...})",
            );
            None
        }
        (None, Some(random)) => {
            if f.length.is_some() {
                errs.push(
                    join(path, "for"),
                    "a random fault's length is drawn from \"random.repair\"; remove \"for\"",
                );
                return None;
            }
            if flush {
                errs.push(
                    join(path, "random"),
                    "a flush happens at one moment: give \"at\"",
                );
                return None;
            }
            let between = dist(errs, &join(path, "random.between"), &random.between);
            let repair = dist(errs, &join(path, "random.repair"), &random.repair);
            let between = between?;
            let repair = repair?;
            for (field, d) in [("between", &between), ("repair", &repair)] {
                if d.mean_ns() <= 0.0 {
                    errs.push(
                        join(path, &format!("random.{field}")),
                        "must have a mean longer than zero",
                    );
                    return None;
                }
            }
            Some(Timing::Random { between, repair })
        }
        (Some(at), None) => {
            let start = at.to_sim();
            if r.duration.0 > 0 && start.0 >= r.duration.0 {
                errs.push(
                    join(path, "at"),
                    format!(
                        "must be before the end of the run (duration \"{}\"), got \"{}\"",
                        format_duration_nanos(r.duration.0 as f64),
                        format_duration_nanos(at.nanos())
                    ),
                );
                return None;
            }
            let end = match f.length {
                Some(_) if flush => {
                    errs.push(
                        join(path, "for"),
                        "a flush happens at one moment; remove \"for\"",
                    );
                    return None;
                }
                Some(len) if len.to_sim().0 == 0 || len.nanos() <= 0.0 => {
                    errs.push(
                        join(path, "for"),
                        format!(
                            "must be longer than zero, got \"{}\"",
                            format_duration_nanos(len.nanos())
                        ),
                    );
                    return None;
                }
                Some(len) => Some(SimTime(start.0.saturating_add(len.to_sim().0))),
                None if flush => Some(SimTime(start.0)),
                None => None,
            };
            Some(Timing::Scheduled {
                at: SimTime(start.0),
                until: end,
            })
        }
    }
}

/// Two scheduled faults of the same effect on the same instance at the same time say two
/// things at once (two crashes, two slowdowns): refused.
fn check_overlaps(errs: &mut Errors, defs: &[FaultDef]) {
    for (j, b) in defs.iter().enumerate() {
        for a in &defs[..j] {
            if std::mem::discriminant(&a.effect) != std::mem::discriminant(&b.effect) {
                continue;
            }
            let (Some((a0, a1)), Some((b0, b1))) = (a.span(), b.span()) else {
                continue;
            };
            let Some(shared) = a.instances.iter().find(|i| b.instances.contains(i)) else {
                continue;
            };
            if a0 < b1 && b0 < a1 {
                errs.push(
                    index("faults", b.index as usize),
                    format!(
                        "overlaps faults[{}] (\"{}\"): both {} {} at {}s; {}",
                        a.index,
                        a.name,
                        b.effect.name(),
                        a.instance_names[(shared - a.first_instance) as usize],
                        b0.max(a0).as_secs_f64(),
                        if a.cut.is_some() {
                            "one partition at a time: put every cut in one partition's groups"
                                .to_string()
                        } else {
                            format!("one instance can have one {} at a time", b.effect.name())
                        }
                    ),
                );
            }
        }
    }
}
