//! Zones, regions and the latency between them (DESIGN.md "Links and zones").
//!
//! A component's instances are spread over the zones its `zones` field lists (instance `i`
//! in zone `i mod n`), a workload's clients sit in its `zone`, and the model's `network`
//! block gives the one-way latency of a message within a zone, across zones of a region,
//! across regions, or over a named link. Every call and every reply whose two ends are in
//! zones is delayed by a draw of the latency of that pair of zones, from the network's own
//! random stream (so adding a network moves no other component's draws).
//!
//! An instance or a client with no zone is where whoever talks to it is: a message to or from
//! it crosses nothing, and the calls it makes leave from the zone of the call it is working
//! on. A load balancer with no zones is thus a proxy beside each caller (as a sidecar or a
//! client library is), and a workload with no zone talks to its target at no cost.
//!
//! This module validates the `network` block and the zone fields ([`validate`]) into a
//! [`NetworkDef`], and draws the delays of a run ([`Latencies`]). The engine asks it for the
//! delay of each message when the model has a network, and never otherwise.

pub mod partition;
pub mod spec;

use crate::distributions::Distribution;
use crate::engine::InstanceId;
use crate::error::{Errors, did_you_mean, index, join};
use crate::model::names::check_name;
use crate::model::resolve::dist;
use crate::model::spec::ModelSpec;
use crate::random::Rng;
use crate::time::SimDuration;
pub use partition::{Cuts, NO_SIDE, Sides};
use spec::NetworkSpec;
use std::sync::Arc;

/// A zone as the engine knows it: 0 is "no zone", zone `k` of the model is `k + 1`.
pub type Zone = u16;

/// "No zone": the instance or client is wherever its peer is.
pub const NO_ZONE: Zone = 0;

/// Most zones a model may declare.
pub const MAX_ZONES: usize = 1000;

/// No latency is defined for this pair of zones (neither end is used with the other).
const NO_PAIR: u16 = u16::MAX;

/// A validated network: zones, regions, where each instance and each workload's clients
/// are, and the latency of each pair of zones.
#[derive(Debug, Clone)]
pub struct NetworkDef {
    /// Zone names; zone `k` of the model is engine zone `k + 1`.
    pub zones: Vec<String>,
    /// Region names (one unnamed region when the model gives none).
    pub regions: Vec<String>,
    /// Region of each zone (model order).
    pub region_of: Vec<usize>,
    /// Engine zone of each instance ([`NO_ZONE`] for none).
    pub instance_zone: Vec<Zone>,
    /// Engine zone of the clients of each workload, in model order.
    pub source_zone: Vec<Zone>,
    /// Latency of each pair of engine zones: an index into `dists`, row-major over
    /// `zones.len() + 1` columns.
    pairs: Vec<u16>,
    /// The latency distributions: `zone`, `cross_zone`, `cross_region`, then the links.
    dists: Vec<Distribution>,
}

impl NetworkDef {
    fn pair(&self, from: Zone, to: Zone) -> Option<&Distribution> {
        let stride = self.zones.len() + 1;
        let i = self.pairs[from as usize * stride + to as usize];
        (i != NO_PAIR).then(|| &self.dists[i as usize])
    }

    /// Mean one-way latency between engine zones `from` and `to`, in nanoseconds (0 when
    /// either is [`NO_ZONE`]).
    pub fn mean_ns(&self, from: Zone, to: Zone) -> f64 {
        if from == NO_ZONE || to == NO_ZONE {
            return 0.0;
        }
        self.pair(from, to).map_or(0.0, Distribution::mean_ns)
    }

    /// The name of engine zone `z` (`None` for [`NO_ZONE`]).
    pub fn zone_name(&self, z: Zone) -> Option<&str> {
        (z != NO_ZONE).then(|| self.zones[z as usize - 1].as_str())
    }

    /// The engine zone named `name`, if the network has it.
    pub fn zone(&self, name: &str) -> Option<Zone> {
        self.zones
            .iter()
            .position(|z| z == name)
            .map(|k| k as Zone + 1)
    }

    /// A network of `zones` in one region with no instances, for tests.
    #[cfg(test)]
    pub fn for_tests(zones: &[&str]) -> Self {
        NetworkDef {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            regions: vec![String::new()],
            region_of: vec![0; zones.len()],
            instance_zone: Vec::new(),
            source_zone: Vec::new(),
            pairs: Vec::new(),
            dists: Vec::new(),
        }
    }
}

/// The network of one run: where each instance is, and the delay of each message, drawn
/// from the network's own stream.
#[derive(Debug, Clone)]
pub struct Latencies {
    def: Arc<NetworkDef>,
    rng: Rng,
    /// The model's partitions, and which are on.
    cuts: Cuts,
}

impl Latencies {
    /// The network `def` of a run seeded `seed`.
    pub fn new(def: Arc<NetworkDef>, seed: u64) -> Self {
        Latencies {
            def,
            rng: crate::random::stream(seed, "network:latency"),
            cuts: Cuts::default(),
        }
    }

    /// The same network, with the model's partitions (all off until their faults begin).
    pub fn with_partitions(mut self, cuts: Cuts) -> Self {
        self.cuts = cuts;
        self
    }

    /// Partition fault `fault` begins (`on`) or ends.
    pub fn set_partition(&mut self, fault: u32, on: bool) {
        self.cuts.set(fault, on);
    }

    /// The partition faults on now, in the order they began.
    pub fn partitions_on(&self) -> Vec<u32> {
        self.cuts.on_faults()
    }

    /// True while some partition is on (one predictable branch where a call leaves).
    #[inline(always)]
    pub fn is_cut(&self) -> bool {
        self.cuts.any()
    }

    /// What a message from zone `from` to zone `to` meets now: `None` when it gets
    /// through, else the mode of a partition that cuts them.
    #[inline]
    pub fn cut_between(&self, from: Zone, to: Zone) -> Option<crate::engine::CrashMode> {
        if !self.cuts.any() {
            return None;
        }
        self.cuts.between(from, to)
    }

    /// The zone of instance `i`.
    #[inline(always)]
    pub fn zone_of(&self, i: InstanceId) -> Zone {
        self.def.instance_zone[i as usize]
    }

    /// The zone of the clients of workload `source`.
    #[inline(always)]
    pub fn source_zone(&self, source: u32) -> Zone {
        self.def.source_zone[source as usize]
    }

    /// Number of zones.
    pub fn zones(&self) -> usize {
        self.def.zones.len()
    }

    /// The delay of one message from zone `from` to zone `to`: nothing when either is
    /// [`NO_ZONE`], else a draw of their latency.
    #[inline]
    pub fn delay(&mut self, from: Zone, to: Zone) -> SimDuration {
        if from == NO_ZONE || to == NO_ZONE {
            return SimDuration::ZERO;
        }
        match self.def.pair(from, to) {
            Some(d) => SimDuration::from_nanos_f64(d.sample_ns(&mut self.rng)),
            None => SimDuration::ZERO,
        }
    }
}

/// Validates the model's `network` block and the zones of its components (whose instances
/// are numbered from `first_instance`, `instances` of each) and workloads. `None` when the
/// model places nothing in a zone and has no network (or on errors, pushed to `errs`).
pub fn validate(
    errs: &mut Errors,
    spec: &ModelSpec,
    first_instance: &[u32],
    instances: &[u32],
) -> Option<Arc<NetworkDef>> {
    let Some(net) = &spec.network else {
        for (name, c) in &spec.components {
            if let Some((field, msg)) = c.kind.needs_network() {
                errs.push(join(&join("components", name), field), msg);
            }
            if c.common.zones.is_some() {
                errs.push(
                    join(&join("components", name), "zones"),
                    "zones need a \"network\" block at the top of the model (its \"zones\" and \"latency\")",
                );
            }
        }
        for (name, w) in &spec.workloads {
            if w.zone.is_some() {
                errs.push(
                    join(&join("workloads", name), "zone"),
                    "a zone needs a \"network\" block at the top of the model (its \"zones\" and \"latency\")",
                );
            }
        }
        return None;
    };
    let before = errs.len();
    let zones = zone_names(errs, net);
    let n = zones.len();
    let find = |errs: &mut Errors, path: &str, name: &str| -> Option<usize> {
        let z = zones.iter().position(|z| z == name);
        if z.is_none() {
            errs.push(path, no_such_zone(name, &zones));
        }
        z
    };
    let (regions, region_of) = regions(errs, net, &zones, &find);

    // Links, by pair of zones (model order).
    let mut link_of = vec![None; n * n];
    for (i, link) in net.links.iter().flatten().enumerate() {
        let p = index("network.links", i);
        let from = find(errs, &join(&p, "from"), &link.from);
        let to = find(errs, &join(&p, "to"), &link.to);
        let (Some(a), Some(b)) = (from, to) else {
            continue;
        };
        if a == b {
            errs.push(
                join(&p, "to"),
                format!(
                    "a link joins two different zones, got \"{}\" at both ends; the latency within a zone is latency.zone",
                    link.from
                ),
            );
        } else if link_of[a * n + b].is_some() {
            errs.push(
                &p,
                format!(
                    "zones \"{}\" and \"{}\" are already joined by an earlier link",
                    link.from, link.to
                ),
            );
        } else {
            link_of[a * n + b] = Some(i);
            link_of[b * n + a] = Some(i);
        }
    }

    // Where each instance and each workload's clients are.
    let total = instances
        .iter()
        .zip(first_instance)
        .map(|(r, f)| r + f)
        .max()
        .unwrap_or(0);
    let mut instance_zone = vec![NO_ZONE; total as usize];
    let mut used = vec![false; n];
    for (c, (name, comp)) in spec.components.iter().enumerate() {
        let Some(list) = &comp.common.zones else {
            continue;
        };
        let p = join(&join("components", name), "zones");
        if list.is_empty() {
            errs.push(&p, "must list at least one zone (or leave \"zones\" out)");
            continue;
        }
        let found: Vec<Option<usize>> = list
            .iter()
            .enumerate()
            .map(|(i, z)| find(errs, &index(&p, i), z))
            .collect();
        if found.iter().any(Option::is_none) {
            continue;
        }
        let (Some(first), Some(count)) = (first_instance.get(c), instances.get(c)) else {
            continue;
        };
        for i in 0..*count {
            let z = found[i as usize % found.len()].unwrap_or(0);
            instance_zone[(first + i) as usize] = z as Zone + 1;
            used[z] = true;
        }
    }
    let mut source_zone = Vec::with_capacity(spec.workloads.len());
    let mut client_zone = vec![false; n];
    for (name, w) in &spec.workloads {
        let z = w
            .zone
            .as_ref()
            .and_then(|z| find(errs, &join(&join("workloads", name), "zone"), z));
        if let Some(z) = z {
            client_zone[z] = true;
        }
        source_zone.push(z.map_or(NO_ZONE, |z| z as Zone + 1));
    }

    // The latency of each pair that can carry a message: instance to instance, client to
    // instance.
    let mut dists = Vec::new();
    let mut slot = |errs: &mut Errors, field: &str, d: &Option<_>| -> u16 {
        match d
            .as_ref()
            .and_then(|d| dist(errs, &join("network.latency", field), d))
        {
            Some(d) => {
                dists.push(d);
                (dists.len() - 1) as u16
            }
            None => NO_PAIR,
        }
    };
    let within = slot(errs, "zone", &net.latency.zone);
    let cross_zone = slot(errs, "cross_zone", &net.latency.cross_zone);
    let cross_region = slot(errs, "cross_region", &net.latency.cross_region);
    let links: Vec<u16> = net
        .links
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, l)| {
            match dist(
                errs,
                &join(&index("network.links", i), "latency"),
                &l.latency,
            ) {
                Some(d) => {
                    dists.push(d);
                    (dists.len() - 1) as u16
                }
                None => NO_PAIR,
            }
        })
        .collect();
    if errs.len() > before {
        return None;
    }
    let stride = n + 1;
    let mut pairs = vec![NO_PAIR; stride * stride];
    let mut missing: [Option<(usize, usize)>; 3] = [None; 3];
    for a in 0..n {
        for b in 0..n {
            let carries = used[b] && (used[a] || client_zone[a]);
            let (slot, which) = if a == b {
                (within, 0)
            } else if let Some(l) = link_of[a * n + b] {
                (links[l], 3)
            } else if region_of[a] == region_of[b] {
                (cross_zone, 1)
            } else {
                (cross_region, 2)
            };
            if carries && slot == NO_PAIR && which < 3 && missing[which].is_none() {
                missing[which] = Some((a, b));
            }
            pairs[(a + 1) * stride + b + 1] = slot;
        }
    }
    if let Some((a, _)) = missing[0] {
        errs.push(
            "network.latency.zone",
            format!(
                "missing: zone \"{}\" holds instances that may call each other; give the latency within a zone, e.g. {{\"constant\": \"100us\"}}",
                zones[a]
            ),
        );
    }
    if let Some((a, b)) = missing[1] {
        errs.push(
            "network.latency.cross_zone",
            format!(
                "missing: zones \"{}\" and \"{}\" may talk, are in the same region and no link joins them; give \"cross_zone\" or a link",
                zones[a], zones[b]
            ),
        );
    }
    if let Some((a, b)) = missing[2] {
        errs.push(
            "network.latency.cross_region",
            format!(
                "missing: zones \"{}\" (region \"{}\") and \"{}\" (region \"{}\") may talk and no link joins them; give \"cross_region\" or a link",
                zones[a], regions[region_of[a]], zones[b], regions[region_of[b]]
            ),
        );
    }
    if errs.len() > before {
        return None;
    }
    Some(Arc::new(NetworkDef {
        zones,
        regions,
        region_of,
        instance_zone,
        source_zone,
        pairs,
        dists,
    }))
}

/// The zone names of `net`, each checked once.
/// What to say of a zone `name` that is not one of the network's `zones`.
pub fn no_such_zone(name: &str, zones: &[String]) -> String {
    if zones.is_empty() {
        return format!(
            "no zone named \"{name}\": network.zones lists no zone (give it at least one)"
        );
    }
    format!(
        "no zone named \"{name}\"; zones are {}{}",
        crate::model::resolve::quoted_list(zones),
        did_you_mean(name, zones.iter().map(String::as_str))
    )
}

fn zone_names(errs: &mut Errors, net: &NetworkSpec) -> Vec<String> {
    if net.zones.is_empty() {
        errs.push("network.zones", "a network needs at least one zone");
    }
    if net.zones.len() > MAX_ZONES {
        errs.push(
            "network.zones",
            format!(
                "a model may have at most {MAX_ZONES} zones, got {}",
                net.zones.len()
            ),
        );
    }
    for (i, z) in net.zones.iter().enumerate() {
        let p = index("network.zones", i);
        check_name(errs, &p, z);
        if net.zones[..i].contains(z) {
            errs.push(p, format!("zone \"{z}\" is listed twice"));
        }
    }
    net.zones.iter().take(MAX_ZONES).cloned().collect()
}

/// The region names and the region of each zone: the model's, or one unnamed region.
fn regions(
    errs: &mut Errors,
    net: &NetworkSpec,
    zones: &[String],
    find: &dyn Fn(&mut Errors, &str, &str) -> Option<usize>,
) -> (Vec<String>, Vec<usize>) {
    let Some(regions) = &net.regions else {
        return (vec![String::new()], vec![0; zones.len()]);
    };
    let mut region_of = vec![usize::MAX; zones.len()];
    for (r, (name, list)) in regions.iter().enumerate() {
        let p = join("network.regions", name);
        check_name(errs, &p, name);
        if list.is_empty() {
            errs.push(&p, "a region needs at least one zone");
        }
        for (i, z) in list.iter().enumerate() {
            let zp = index(&p, i);
            let Some(k) = find(errs, &zp, z) else {
                continue;
            };
            if region_of[k] != usize::MAX {
                errs.push(
                    zp,
                    format!(
                        "zone \"{z}\" is already in region \"{}\"",
                        regions.keys().nth(region_of[k]).map_or("", String::as_str)
                    ),
                );
            } else {
                region_of[k] = r;
            }
        }
    }
    let lost: Vec<String> = zones
        .iter()
        .zip(&region_of)
        .filter(|(_, r)| **r == usize::MAX)
        .map(|(z, _)| z.clone())
        .collect();
    if !lost.is_empty() {
        errs.push(
            "network.regions",
            format!(
                "every zone must be in a region; {} in none",
                if lost.len() == 1 {
                    format!("\"{}\" is", lost[0])
                } else {
                    format!("{} are", crate::model::resolve::quoted_list(&lost))
                }
            ),
        );
    }
    let region_of = region_of
        .into_iter()
        .map(|r| r.min(regions.len()))
        .collect();
    (regions.keys().cloned().collect(), region_of)
}
