//! The topology of a model as a diagram: Mermaid (renders in a GitHub README) or Graphviz
//! DOT. Drawn from the model's call graph, so every kind's edges appear as the kind
//! declares them: workloads into their targets, a service's calls, fan-outs and routes
//! (with probabilities), a balancer's backends, a cache's backend, a router's shards.
//! In a model with zones, a component whose instances all sit in one zone, and a workload
//! whose clients do, are drawn inside that zone's cluster (within its region's when the
//! model names regions); a component spread over several zones stays outside and says
//! which.

use crate::model::Model;
use crate::model::graph::{Link, LinkKind};
use crate::network::NO_ZONE;
use std::fmt::Write;

/// A diagram's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagramFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// One arrow of the diagram.
struct Edge {
    from: String,
    to: String,
    label: String,
    /// A hand-off (a route or a shard): the sender does not wait for the answer.
    dashed: bool,
}

/// The diagram of `model` in `format`.
pub fn diagram(model: &Model, format: DiagramFormat) -> String {
    let edges = edges(model);
    match format {
        DiagramFormat::Mermaid => mermaid(model, &edges),
        DiagramFormat::Dot => dot(model, &edges),
    }
}

fn workload_id(i: usize) -> String {
    format!("w{i}")
}

fn component_id(g: usize) -> String {
    format!("c{g}")
}

/// What a component's box says: its name, its kind, its instances.
fn component_label(model: &Model, g: usize, line_break: &str) -> String {
    let c = &model.components[g];
    let mut label = format!("{}{line_break}{}", c.name, c.kind.name());
    if c.replicas > 1 {
        let _ = write!(label, " ×{}", c.replicas);
    }
    let zones = component_zones(model, g);
    if zones.len() > 1 {
        let names: Vec<&str> = zones.iter().map(|&z| zone_name(model, z)).collect();
        let _ = write!(label, "{line_break}zones {}", names.join(", "));
    }
    label
}

/// The zones (model order) the instances of component `g` sit in, each once.
fn component_zones(model: &Model, g: usize) -> Vec<usize> {
    let Some(net) = &model.network else {
        return Vec::new();
    };
    let c = &model.components[g];
    let first = c.first_instance as usize;
    let mut zones: Vec<usize> = net.instance_zone[first..first + c.replicas as usize]
        .iter()
        .filter(|&&z| z != NO_ZONE)
        .map(|&z| usize::from(z) - 1)
        .collect();
    zones.sort_unstable();
    zones.dedup();
    zones
}

fn zone_name(model: &Model, zone: usize) -> &str {
    model
        .network
        .as_ref()
        .map_or("", |n| n.zones[zone].as_str())
}

/// The nodes of the diagram by where they are drawn: outside any zone, or in zone `k`
/// (model order). Each node is its index among workloads then components.
struct Places {
    outside: Vec<Node>,
    in_zone: Vec<Vec<Node>>,
}

#[derive(Clone, Copy)]
enum Node {
    Workload(usize),
    Component(usize),
}

fn places(model: &Model) -> Places {
    let zones = model.network.as_ref().map_or(0, |n| n.zones.len());
    let mut p = Places {
        outside: Vec::new(),
        in_zone: vec![Vec::new(); zones],
    };
    for i in 0..model.workloads.len() {
        let zone = model.network.as_ref().map_or(NO_ZONE, |n| n.source_zone[i]);
        match zone {
            NO_ZONE => p.outside.push(Node::Workload(i)),
            z => p.in_zone[usize::from(z) - 1].push(Node::Workload(i)),
        }
    }
    for g in 0..model.components.len() {
        match component_zones(model, g)[..] {
            [z] => p.in_zone[z].push(Node::Component(g)),
            _ => p.outside.push(Node::Component(g)),
        }
    }
    p
}

/// The zones to draw, grouped by region: one group per region when the model names
/// several (`Some(region)`), else one group of every zone (`None`). Empty zones are left
/// out.
fn zone_groups(model: &Model, places: &Places) -> Vec<(Option<usize>, Vec<usize>)> {
    let Some(net) = &model.network else {
        return Vec::new();
    };
    let used = |z: &usize| !places.in_zone[*z].is_empty();
    if net.regions.len() <= 1 {
        let zones: Vec<usize> = (0..net.zones.len()).filter(used).collect();
        return vec![(None, zones)];
    }
    (0..net.regions.len())
        .map(|r| {
            let zones = (0..net.zones.len())
                .filter(|z| net.region_of[*z] == r)
                .filter(used)
                .collect::<Vec<_>>();
            (Some(r), zones)
        })
        .filter(|(_, zones)| !zones.is_empty())
        .collect()
}

/// The arrows: each workload into its target, then every component's links in the
/// order the model declares them, then each autoscaler's to the service it scales.
fn edges(model: &Model) -> Vec<Edge> {
    let mut out: Vec<Edge> = model
        .workloads
        .iter()
        .enumerate()
        .map(|(i, w)| Edge {
            from: workload_id(i),
            to: component_id(w.target as usize),
            label: String::new(),
            dashed: false,
        })
        .collect();
    for g in 0..model.components.len() {
        for link in model.graph.links(g) {
            let class = link
                .class
                .map(|c| format!("{}: ", model.classes[usize::from(c)]));
            for &(target, share) in &link.targets {
                out.push(Edge {
                    from: component_id(g),
                    to: component_id(target),
                    label: format!(
                        "{}{}",
                        class.clone().unwrap_or_default(),
                        edge_label(link, share)
                    ),
                    dashed: link.kind == LinkKind::Route,
                });
            }
        }
    }
    // An autoscaler sends no request: a dashed arrow to the service it scales.
    for (g, c) in model.components.iter().enumerate() {
        if let Some(target) = c.kind.scales() {
            out.push(Edge {
                from: component_id(g),
                to: component_id(target),
                label: "scales".to_string(),
                dashed: true,
            });
        }
    }
    // A handler calling the same component twice (a cache read, then a set) draws one
    // arrow.
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert((e.from.clone(), e.to.clone(), e.label.clone(), e.dashed)));
    out
}

/// What an arrow says: the field that makes it when it is not a handler step (`on_miss`,
/// `shards`), a fan-out's wait, a route's probability, an uneven balancer weight.
fn edge_label(link: &Link, share: f64) -> String {
    let field = link.path.rsplit('.').next().unwrap_or("");
    let n = link.targets.len();
    let even = link
        .targets
        .iter()
        .all(|(_, s)| (s - 1.0 / n as f64).abs() < 1e-9);
    match link.kind {
        LinkKind::Wait { need } if n > 1 => match need {
            k if k == n => "fan-out, all".to_string(),
            1 => "fan-out, any".to_string(),
            k => format!("fan-out, {k} of {n}"),
        },
        LinkKind::Wait { .. } if field == "on_miss" => "on miss".to_string(),
        LinkKind::Wait { .. } if link.path.contains(".on_miss[") => "call on miss".to_string(),
        LinkKind::Wait { .. } if link.path.contains(".on_hit[") => "call on hit".to_string(),
        LinkKind::Wait { .. } => "call".to_string(),
        LinkKind::Route if field == "shards" || field.starts_with("shard") => {
            if even {
                "shard".to_string()
            } else {
                format!("shard {}", percent(share))
            }
        }
        LinkKind::Route => format!("route {}", percent(share)),
        LinkKind::Balance if even => String::new(),
        LinkKind::Balance => format!("weight {}", percent(share)),
    }
}

/// A share as a percentage, with a decimal only where it needs one.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn mermaid(model: &Model, edges: &[Edge]) -> String {
    let mut s = String::from("flowchart LR\n");
    let node = |s: &mut String, indent: &str, n: Node| match n {
        Node::Workload(i) => {
            let _ = writeln!(
                s,
                "{indent}{}([\"{}\"])",
                workload_id(i),
                model.workloads[i].name
            );
        }
        Node::Component(g) => {
            let label = component_label(model, g, "<br/>");
            let (open, close) = model.components[g].kind.diagram_shape().mermaid;
            let _ = writeln!(s, "{indent}{}{open}\"{label}\"{close}", component_id(g));
        }
    };
    let places = places(model);
    for &n in &places.outside {
        node(&mut s, "    ", n);
    }
    for (region, zones) in zone_groups(model, &places) {
        let indent = if let Some(r) = region {
            let name = &model.network.as_ref().expect("regions").regions[r];
            let _ = writeln!(s, "    subgraph r{r}[\"region {name}\"]");
            "        "
        } else {
            "    "
        };
        for z in zones {
            let _ = writeln!(s, "{indent}subgraph z{z}[\"zone {}\"]", zone_name(model, z));
            for &n in &places.in_zone[z] {
                node(&mut s, &format!("{indent}    "), n);
            }
            let _ = writeln!(s, "{indent}end");
        }
        if region.is_some() {
            s.push_str("    end\n");
        }
    }
    for e in edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        if e.label.is_empty() {
            let _ = writeln!(s, "    {} {arrow} {}", e.from, e.to);
        } else {
            let _ = writeln!(s, "    {} {arrow}|\"{}\"| {}", e.from, e.label, e.to);
        }
    }
    s
}

fn dot(model: &Model, edges: &[Edge]) -> String {
    let mut s = String::from(
        "digraph scalesim {\n    rankdir=LR;\n    node [fontname=\"Helvetica\"];\n    edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let _ = writeln!(s, "    label=\"{}\";", dot_escape(&model.name));
    let node = |s: &mut String, indent: &str, n: Node| match n {
        Node::Workload(i) => {
            let name = dot_escape(&model.workloads[i].name);
            let _ = writeln!(
                s,
                "{indent}{} [label=\"{name}\", shape=ellipse];",
                workload_id(i)
            );
        }
        Node::Component(g) => {
            let shape = model.components[g].kind.diagram_shape().dot;
            let label = dot_escape(&component_label(model, g, "\n"));
            let _ = writeln!(
                s,
                "{indent}{} [label=\"{label}\", shape={shape}];",
                component_id(g)
            );
        }
    };
    let places = places(model);
    for &n in &places.outside {
        node(&mut s, "    ", n);
    }
    for (region, zones) in zone_groups(model, &places) {
        let indent = if let Some(r) = region {
            let name = dot_escape(&model.network.as_ref().expect("regions").regions[r]);
            let _ = writeln!(s, "    subgraph cluster_r{r} {{");
            let _ = writeln!(s, "        label=\"region {name}\"; style=dashed;");
            "        "
        } else {
            "    "
        };
        for z in zones {
            let _ = writeln!(s, "{indent}subgraph cluster_z{z} {{");
            let name = dot_escape(zone_name(model, z));
            let _ = writeln!(s, "{indent}    label=\"zone {name}\"; style=rounded;");
            for &n in &places.in_zone[z] {
                node(&mut s, &format!("{indent}    "), n);
            }
            let _ = writeln!(s, "{indent}}}");
        }
        if region.is_some() {
            s.push_str("    }\n");
        }
    }
    for e in edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!("label=\"{}\"", dot_escape(&e.label)));
        }
        if e.dashed {
            attrs.push("style=dashed".to_string());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(s, "    {} -> {}{attrs};", e.from, e.to);
    }
    s.push_str("}\n");
    s
}

/// A string inside DOT's double quotes.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, parse_model_str};

    fn model() -> Model {
        let text = r#"{"name": "shop \"demo\"", "duration": "1s",
            "workloads": {"users": {"arrivals": {"poisson": {"rate": 10}}, "target": "lb"}},
            "components": {
                "lb": {"kind": "load_balancer", "backends": "app"},
                "app": {"kind": "service", "replicas": 3, "service_time": {"constant": "1ms"},
                        "handler": [{"call": "cache"},
                                    {"fan_out": ["a", "b"], "wait": "any"},
                                    {"route": {"a": 0.25}}]},
                "cache": {"kind": "cache", "capacity": 10, "on_miss": "db"},
                "db": {"kind": "database", "replicas": 1, "service_time": {"constant": "1ms"}},
                "a": {"kind": "service", "service_time": {"constant": "1ms"}},
                "b": {"kind": "service", "service_time": {"constant": "1ms"}}}}"#;
        parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap()
    }

    #[test]
    fn mermaid_draws_every_component_and_link() {
        let m = diagram(&model(), DiagramFormat::Mermaid);
        let expected = r#"flowchart LR
    w0(["users"])
    c0{{"lb<br/>load_balancer"}}
    c1["app<br/>service ×3"]
    c2[["cache<br/>cache"]]
    c3[("db<br/>database ×2")]
    c4["a<br/>service"]
    c5["b<br/>service"]
    w0 --> c0
    c0 --> c1
    c1 -->|"call"| c2
    c1 -->|"fan-out, any"| c4
    c1 -->|"fan-out, any"| c5
    c1 -.->|"route 25%"| c4
    c2 -->|"on miss"| c3
"#;
        assert_eq!(m, expected);
    }

    #[test]
    fn dot_escapes_names_and_dashes_hand_offs() {
        let d = diagram(&model(), DiagramFormat::Dot);
        assert!(d.starts_with("digraph scalesim {\n"), "{d}");
        assert!(d.contains("label=\"shop \\\"demo\\\"\";"), "{d}");
        assert!(
            d.contains("c3 [label=\"db\\ndatabase ×2\", shape=cylinder];"),
            "{d}"
        );
        assert!(
            d.contains("c1 -> c4 [label=\"route 25%\", style=dashed];"),
            "{d}"
        );
        assert!(d.contains("c0 -> c1;"), "{d}");
        assert!(d.ends_with("}\n"));
    }

    #[test]
    fn zones_and_regions_are_drawn_as_clusters() {
        let text = r#"{"duration": "1s",
            "network": {"zones": ["a", "b", "c"],
                        "regions": {"eu": ["a", "b"], "us": ["c"]},
                        "latency": {"zone": {"constant": "100us"},
                                    "cross_zone": {"constant": "1ms"},
                                    "cross_region": {"constant": "50ms"}}},
            "workloads": {"users": {"arrivals": {"poisson": {"rate": 10}}, "target": "lb",
                                    "zone": "a"}},
            "components": {
                "lb": {"kind": "load_balancer", "backends": "app"},
                "app": {"kind": "service", "replicas": 3, "zones": ["a", "b", "c"],
                        "service_time": {"constant": "1ms"}, "handler": [{"call": "db"}]},
                "db": {"kind": "database", "zones": ["c"],
                       "service_time": {"constant": "1ms"}}}}"#;
        let m = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
        let mermaid = diagram(&m, DiagramFormat::Mermaid);
        let expected = r#"flowchart LR
    c0{{"lb<br/>load_balancer"}}
    c1["app<br/>service ×3<br/>zones a, b, c"]
    subgraph r0["region eu"]
        subgraph z0["zone a"]
            w0(["users"])
        end
    end
    subgraph r1["region us"]
        subgraph z2["zone c"]
            c2[("db<br/>database")]
        end
    end
"#;
        assert!(mermaid.starts_with(expected), "{mermaid}");
        let dot = diagram(&m, DiagramFormat::Dot);
        assert!(dot.contains("    subgraph cluster_r1 {\n        label=\"region us\"; style=dashed;\n        subgraph cluster_z2 {\n            label=\"zone c\"; style=rounded;\n            c2 [label=\"db\\ndatabase\", shape=cylinder];\n        }\n    }\n"), "{dot}");
    }

    #[test]
    fn percentages_keep_a_decimal_only_when_needed() {
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
    }
}
