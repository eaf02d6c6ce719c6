//! Faults that strike by place rather than by component: a zone's outage (every instance
//! placed in the zone, of every component or of the fault's `target` only, each its own
//! fault and window), and a partition of the network between groups of zones (no
//! instance: the network itself, see [`crate::network::partition`]).

use super::spec::{FaultSpec, PartitionSpec};
use super::validate::{crash_mode, timing};
use super::{Effect, FaultDef, NETWORK};
use crate::components::ComponentDef;
use crate::error::{Errors, join};
use crate::model::resolve::Resolver;
use crate::network::{NetworkDef, partition};

/// The components fault `f` (at `path`) strikes in zone `zone` (only `target` when given),
/// each with its group and its instances in the zone, in model order. `None` after an
/// error: no network, an unknown zone or target, nothing placed in the zone.
#[allow(clippy::too_many_arguments)]
pub(super) fn zone_hits<'a>(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    f: &FaultSpec,
    target: Option<&str>,
    zone: &str,
    components: &'a [ComponentDef],
    network: Option<&NetworkDef>,
) -> Option<Vec<(&'a ComponentDef, u32, Vec<u32>)>> {
    let zp = join(path, "zone");
    let Some(net) = network else {
        errs.push(
            zp,
            "a zone fault needs zones: a \"network\" block at the top of the model and \"zones\" on the components",
        );
        return None;
    };
    let Some(z) = net.zone(zone) else {
        errs.push(zp, crate::network::no_such_zone(zone, &net.zones));
        return None;
    };
    if f.instance.is_some() {
        errs.push(
            join(path, "instance"),
            "a zone fault strikes every instance in the zone; to strike one instance, give \"target\" and \"instance\" without \"zone\"",
        );
        return None;
    }
    let group = match target {
        Some(t) => Some(errs.take(r.group(&join(path, "target"), t))?),
        None => None,
    };
    let hits: Vec<_> = components
        .iter()
        .enumerate()
        .filter(|(g, _)| group.is_none_or(|t| t as usize == *g))
        .filter_map(|(g, def)| {
            let inside: Vec<u32> = (0..def.replicas)
                .map(|k| def.first_instance + k)
                .filter(|i| net.instance_zone.get(*i as usize) == Some(&z))
                .collect();
            (!inside.is_empty()).then_some((def, g as u32, inside))
        })
        .collect();
    if hits.is_empty() {
        let what = match target {
            Some(t) => format!("no instance of \"{t}\" is"),
            None => "no instance is".to_string(),
        };
        errs.push(
            zp,
            format!(
                "{what} placed in zone \"{zone}\"; a component's \"zones\" places its instances"
            ),
        );
        return None;
    }
    Some(hits)
}

/// The partition fault `f` (at `path`, number `i`): its sides over the network's zones,
/// its mode and timing. `None` after an error.
pub(super) fn partition(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    i: usize,
    f: &FaultSpec,
    p: &PartitionSpec,
    network: Option<&NetworkDef>,
) -> Option<FaultDef> {
    let others = [
        ("target", f.target.is_some()),
        ("zone", f.zone.is_some()),
        ("instance", f.instance.is_some()),
        ("crash", f.crash.is_some()),
        ("slow", f.slow.is_some()),
        ("errors", f.errors.is_some()),
        ("workers", f.workers.is_some()),
        ("flush", f.flush.is_some()),
    ];
    if let Some((field, _)) = others.iter().find(|(_, given)| *given) {
        errs.push(
            join(path, field),
            format!(
                "a partition cuts the network between zones and strikes no component: remove \"{field}\""
            ),
        );
        return None;
    }
    let gp = join(path, "partition.groups");
    let Some(net) = network else {
        errs.push(
            gp,
            "a partition needs zones: a \"network\" block at the top of the model and \"zones\" on the components",
        );
        return None;
    };
    let sides = partition::sides(errs, &gp, &p.groups, net)?;
    let effect = Effect::Partition(crash_mode(p.mode));
    let timing = timing(r, errs, path, f, &effect)?;
    let label = partition::label(&sides, net);
    Some(FaultDef {
        index: i as u32,
        name: f
            .name
            .clone()
            .unwrap_or_else(|| format!("partition {label}")),
        target: "network".into(),
        group: u32::MAX,
        first_instance: NETWORK,
        instances: vec![NETWORK],
        instance_names: vec![label],
        leaves_group: false,
        effect,
        timing,
        cut: Some(sides),
        zone: None,
    })
}
