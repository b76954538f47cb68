//! Plans as DOT (Graphviz) and Mermaid text, for docs, reviews and debugging.

use std::fmt::Write;

use super::Plan;
use crate::graph::NodeKind;

impl Plan {
    /// The plan as a Graphviz DOT digraph: stages are clusters, inputs dashed boxes,
    /// overrides grey boxes, requested outputs double octagons.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_id(self.dag().name()));
        out.push_str("  rankdir=LR;\n  node [shape=ellipse];\n");
        for name in self.inputs() {
            let _ = writeln!(out, "  {} [shape=box, style=dashed];", dot_id(name));
        }
        for name in self.overrides() {
            let _ = writeln!(
                out,
                "  {} [shape=box, style=filled, fillcolor=lightgrey];",
                dot_id(name)
            );
        }
        for name in self.outputs() {
            let _ = writeln!(out, "  {} [shape=doubleoctagon];", dot_id(name));
        }
        for stage in self.stages() {
            let _ = writeln!(
                out,
                "  subgraph {} {{",
                dot_id(&format!("cluster_{}", stage.name()))
            );
            let _ = writeln!(out, "    label={};", dot_id(stage.name()));
            for node in self.nodes().filter(|n| n.stage() == Some(stage.name())) {
                let _ = writeln!(out, "    {};", dot_id(node.name()));
            }
            out.push_str("  }\n");
        }
        for node in self.nodes().filter(|n| n.stage().is_none()) {
            let _ = writeln!(out, "  {};", dot_id(node.name()));
        }
        for (from, to) in self.edges() {
            let _ = writeln!(out, "  {} -> {};", dot_id(from), dot_id(to));
        }
        out.push_str("}\n");
        out
    }

    /// The plan as a Mermaid flowchart: stages are subgraphs, inputs and overrides are
    /// rectangles (overrides marked), other nodes rounded.
    pub fn to_mermaid(&self) -> String {
        let mut ids = std::collections::HashMap::new();
        let mut id_of = |name: &str| -> String {
            let next = ids.len();
            ids.entry(name.to_string())
                .or_insert_with(|| format!("n{next}"))
                .clone()
        };
        let mut out = String::from("flowchart LR\n");
        for name in self.inputs() {
            let _ = writeln!(out, "  {}[{}]", id_of(name), mermaid_label(name));
        }
        for name in self.overrides() {
            let label = format!("{name} (override)");
            let _ = writeln!(out, "  {}[{}]", id_of(name), mermaid_label(&label));
        }
        for (index, stage) in self.stages().iter().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph stage{index}[{}]",
                mermaid_label(stage.name())
            );
            for node in self.nodes().filter(|n| n.stage() == Some(stage.name())) {
                let (open, close) = mermaid_shape(node.kind());
                let (id, label) = (id_of(node.name()), mermaid_label(node.name()));
                let _ = writeln!(out, "    {id}{open}{label}{close}");
            }
            out.push_str("  end\n");
        }
        for node in self.nodes().filter(|n| n.stage().is_none()) {
            let (open, close) = mermaid_shape(node.kind());
            let (id, label) = (id_of(node.name()), mermaid_label(node.name()));
            let _ = writeln!(out, "  {id}{open}{label}{close}");
        }
        for (from, to) in self.edges() {
            let _ = writeln!(out, "  {} --> {}", id_of(from), id_of(to));
        }
        out
    }
}

fn dot_id(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\r', "\\r");
    format!("\"{escaped}\"")
}

/// A quoted label; line breaks and other control characters (a name may hold any) would end
/// the statement, so they become spaces.
fn mermaid_label(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", text.replace('"', "#quot;"))
}

/// A node's shape: a stadium for async nodes, rounded for the others.
fn mermaid_shape(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Async => ("([", "])"),
        _ => ("(", ")"),
    }
}
