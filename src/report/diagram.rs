//! The topology of a model as a diagram: Mermaid (renders in a GitHub README) or Graphviz
//! DOT. Drawn from the model's call graph, so every kind's edges appear as the kind
//! declares them: workloads into their targets, a service's calls, fan-outs and routes
//! (with probabilities), a balancer's backends, a cache's backend, a router's shards.

use crate::model::Model;
use crate::model::graph::{Link, LinkKind};
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
    label
}

/// The arrows: each workload into its target, then every component's links in the
/// order the model declares them.
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
    for (i, w) in model.workloads.iter().enumerate() {
        let _ = writeln!(s, "    {}([\"{}\"])", workload_id(i), w.name);
    }
    for g in 0..model.components.len() {
        let label = component_label(model, g, "<br/>");
        let (open, close) = match model.components[g].kind.name() {
            "load_balancer" => ("{{", "}}"),
            "database" => ("[(", ")]"),
            "cache" => ("[[", "]]"),
            "shards" => ("[/", "\\]"),
            _ => ("[", "]"),
        };
        let _ = writeln!(s, "    {}{open}\"{label}\"{close}", component_id(g));
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
    for (i, w) in model.workloads.iter().enumerate() {
        let _ = writeln!(
            s,
            "    {} [label=\"{}\", shape=ellipse];",
            workload_id(i),
            dot_escape(&w.name)
        );
    }
    for g in 0..model.components.len() {
        let shape = match model.components[g].kind.name() {
            "load_balancer" => "hexagon",
            "database" => "cylinder",
            "cache" => "box3d",
            "shards" => "trapezium",
            _ => "box",
        };
        let label = dot_escape(&component_label(model, g, "\n"));
        let _ = writeln!(
            s,
            "    {} [label=\"{label}\", shape={shape}];",
            component_id(g)
        );
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
    fn percentages_keep_a_decimal_only_when_needed() {
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
    }
}
