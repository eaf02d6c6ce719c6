//! The topology picture: the model's call graph as an inline SVG, laid out left to right
//! in layers (a node's layer is the longest chain of calls leading to it from a workload).
//! It reads the Graphviz DOT text of [`crate::report::diagram`], so the picture shows the
//! same nodes, labels and edges as `scalesim graph --format dot`, without Graphviz.

use super::page::escape;
use std::fmt::Write as _;

/// A node of the graph: its DOT id and label lines.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    id: String,
    lines: Vec<String>,
}

/// An edge, with the labels of every DOT edge between the same two nodes.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    from: usize,
    to: usize,
    labels: Vec<String>,
}

const BOX_W: f64 = 170.0;
const BOX_H: f64 = 46.0;
const GAP_X: f64 = 190.0;
const GAP_Y: f64 = 34.0;
const MARGIN: f64 = 20.0;

/// The SVG picture of the DOT graph `dot`; `None` when it has no node.
pub fn svg(dot: &str) -> Option<String> {
    let (nodes, edges) = parse(dot);
    if nodes.is_empty() {
        return None;
    }
    let layers = layers(nodes.len(), &edges);
    let places = places(&layers);
    Some(draw(&nodes, &edges, &places))
}

/// The text inside the first pair of double quotes after `key=` in `attrs`, unescaped.
fn quoted(attrs: &str, key: &str) -> Option<String> {
    let start = attrs.find(&format!("{key}=\""))? + key.len() + 2;
    let mut out = String::new();
    let mut chars = attrs[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next() {
                Some('n' | 'l' | 'r') => out.push('\n'),
                Some(o) => out.push(o),
                None => return Some(out),
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// The nodes and edges of a DOT digraph as [`crate::report::diagram`] writes it: one
/// statement per line, `id [label="..."];` and `a -> b [label="..."];`.
fn parse(dot: &str) -> (Vec<Node>, Vec<Edge>) {
    let mut nodes: Vec<Node> = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    let index = |nodes: &mut Vec<Node>, id: &str| match nodes.iter().position(|n| n.id == id) {
        Some(i) => i,
        None => {
            nodes.push(Node {
                id: id.to_string(),
                lines: vec![id.to_string()],
            });
            nodes.len() - 1
        }
    };
    for line in dot.lines().map(str::trim) {
        let (head, attrs) = match line.find('[') {
            Some(i) => (line[..i].trim(), &line[i..]),
            None => (line.trim_end_matches(';').trim(), ""),
        };
        if let Some((a, b)) = head.split_once("->") {
            let (a, b) = (a.trim().trim_matches('"'), b.trim().trim_matches('"'));
            let (from, to) = (index(&mut nodes, a), index(&mut nodes, b));
            let label = quoted(attrs, "label").unwrap_or_default();
            match edges.iter_mut().find(|e| e.from == from && e.to == to) {
                Some(e) => {
                    if !label.is_empty() && !e.labels.contains(&label) {
                        e.labels.push(label)
                    }
                }
                None => edges.push(Edge {
                    from,
                    to,
                    labels: if label.is_empty() {
                        vec![]
                    } else {
                        vec![label]
                    },
                }),
            }
        } else if !attrs.is_empty()
            && !head.is_empty()
            && !matches!(head, "node" | "edge" | "graph")
            && !head.contains(' ')
        {
            let i = index(&mut nodes, head.trim_matches('"'));
            if let Some(l) = quoted(attrs, "label") {
                nodes[i].lines = l.lines().map(String::from).collect();
            }
        }
    }
    (nodes, edges)
}

/// Each node's layer: the longest chain of edges to it from a node nothing calls, counted
/// over at most as many rounds as there are nodes (a cycle stops growing there).
fn layers(n: usize, edges: &[Edge]) -> Vec<usize> {
    let mut layer = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for e in edges.iter().filter(|e| e.from != e.to) {
            if layer[e.to] < layer[e.from] + 1 && layer[e.from] + 1 < n {
                layer[e.to] = layer[e.from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The top-left corner of each node's box: layers as columns, nodes in file order down
/// each column.
fn places(layers: &[usize]) -> Vec<(f64, f64)> {
    let mut row_of_layer: Vec<usize> = Vec::new();
    layers
        .iter()
        .map(|&l| {
            if row_of_layer.len() <= l {
                row_of_layer.resize(l + 1, 0);
            }
            let row = row_of_layer[l];
            row_of_layer[l] += 1;
            (
                MARGIN + l as f64 * (BOX_W + GAP_X),
                MARGIN + row as f64 * (BOX_H + GAP_Y),
            )
        })
        .collect()
}

fn draw(nodes: &[Node], edges: &[Edge], places: &[(f64, f64)]) -> String {
    let width = places.iter().map(|p| p.0).fold(0.0, f64::max) + BOX_W + 2.0 * MARGIN;
    let height = places.iter().map(|p| p.1).fold(0.0, f64::max) + BOX_H + 2.0 * MARGIN;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"topology\">\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>"
    );
    for e in edges {
        draw_edge(&mut s, places[e.from], places[e.to], &e.labels);
    }
    for (n, &(x, y)) in nodes.iter().zip(places) {
        let fill = if n.id.starts_with('w') {
            "#e8f1fb"
        } else {
            "#f7f7f7"
        };
        let _ = write!(
            s,
            "<g class=\"node\"><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#444\"/>"
        );
        let lines = &n.lines[..n.lines.len().min(2)];
        for (k, line) in lines.iter().enumerate() {
            let ty = y + BOX_H / 2.0 + (k as f64 - (lines.len() as f64 - 1.0) / 2.0) * 15.0 + 4.0;
            let weight = if k == 0 { " font-weight=\"bold\"" } else { "" };
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{ty}\" text-anchor=\"middle\"{weight}>{}</text>",
                x + BOX_W / 2.0,
                escape(line)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

fn draw_edge(s: &mut String, from: (f64, f64), to: (f64, f64), labels: &[String]) {
    let label = escape(&labels.join("; "));
    if to.0 > from.0 {
        let (x1, y1) = (from.0 + BOX_W, from.1 + BOX_H / 2.0);
        let (x2, y2) = (to.0, to.1 + BOX_H / 2.0);
        let _ = writeln!(
            s,
            "<g class=\"edge\"><line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{label}</text></g>",
            (x1 + x2) / 2.0,
            (y1 + y2) / 2.0 - 4.0
        );
    } else {
        // Back or same-layer edge: an arc below the boxes.
        let (x1, y1) = (from.0 + BOX_W / 2.0, from.1 + BOX_H);
        let (x2, y2) = (to.0 + BOX_W / 2.0, to.1 + BOX_H);
        let dip = y1.max(y2) + GAP_Y * 0.8;
        let _ = writeln!(
            s,
            "<g class=\"edge\"><path d=\"M{x1},{y1} C{x1},{dip} {x2},{dip} {x2},{y2}\" fill=\"none\" stroke=\"#555\" stroke-dasharray=\"4 3\" marker-end=\"url(#arrow)\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{label}</text></g>",
            (x1 + x2) / 2.0,
            dip - 2.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOT: &str = r#"digraph scalesim {
    rankdir=LR;
    node [fontname="Helvetica"];
    w0 [label="shoppers", shape=ellipse];
    c0 [label="app\nservice ×4", shape=box];
    c1 [label="cache\ncache", shape=box3d];
    c2 [label="db\ndatabase", shape=cylinder];
    w0 -> c0;
    c0 -> c1 [label="read: call"];
    c0 -> c2 [label="read: call on miss"];
    c0 -> c1 [label="write: call"];
}"#;

    #[test]
    fn nodes_go_in_layers_and_parallel_edges_merge() {
        let (nodes, edges) = parse(DOT);
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[1].lines, ["app", "service ×4"]);
        assert_eq!(edges.len(), 3);
        assert_eq!(edges[1].labels, ["read: call", "write: call"]);
        assert_eq!(layers(4, &edges), [0, 1, 2, 2]);
        let svg = svg(DOT).unwrap();
        assert_eq!(svg.matches("class=\"node\"").count(), 4);
        assert_eq!(svg.matches("class=\"edge\"").count(), 3);
        assert!(svg.contains("read: call; write: call"));
    }

    #[test]
    fn a_cycle_ends_and_an_empty_graph_draws_nothing() {
        let (nodes, edges) = parse("a -> b;\nb -> a;\n");
        assert_eq!(nodes.len(), 2);
        let l = layers(2, &edges);
        assert!(l.iter().all(|&x| x < 2));
        assert!(svg("digraph x {\n}\n").is_none());
    }
}
