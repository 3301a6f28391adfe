//! The resource dependency graph, as Mermaid (which GitHub renders in a pull request
//! comment), Graphviz DOT or JSON: an edge from each resource to what it waits for, the order
//! `apply` takes. Pure: the command builds the nodes.

use serde_json::{Value, json};

/// One resource and the resources it needs first (its parent and its dependencies).
pub struct GraphNode {
    pub address: String,
    pub needs: Vec<String>,
}

fn node_id(i: usize) -> String {
    format!("n{i}")
}

/// `graph TD` with one node per resource (labelled with its address) and an arrow from each
/// resource to what needs it, so the graph reads top-down in apply order.
pub fn graph_mermaid(nodes: &[GraphNode]) -> String {
    let index = |a: &str| nodes.iter().position(|n| n.address == a);
    let mut out = String::from("graph TD\n");
    for (i, n) in nodes.iter().enumerate() {
        out.push_str(&format!("  {}[\"{}\"]\n", node_id(i), n.address.replace('"', "#quot;")));
    }
    for (i, n) in nodes.iter().enumerate() {
        for need in &n.needs {
            if let Some(j) = index(need) {
                out.push_str(&format!("  {} --> {}\n", node_id(j), node_id(i)));
            }
        }
    }
    out
}

pub fn graph_dot(nodes: &[GraphNode]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph poactl {\n  rankdir=TB;\n  node [shape=box];\n");
    for n in nodes {
        out.push_str(&format!("  {};\n", quote(&n.address)));
    }
    for n in nodes {
        for need in &n.needs {
            if nodes.iter().any(|m| &m.address == need) {
                out.push_str(&format!("  {} -> {};\n", quote(need), quote(&n.address)));
            }
        }
    }
    out.push_str("}\n");
    out
}

pub fn graph_json(nodes: &[GraphNode]) -> Value {
    let edges: Vec<Value> = nodes
        .iter()
        .flat_map(|n| {
            n.needs.iter().filter(|need| nodes.iter().any(|m| &m.address == *need)).map(|need| json!({"from": need, "to": n.address}))
        })
        .collect();
    json!({"nodes": nodes.iter().map(|n| n.address.clone()).collect::<Vec<_>>(), "edges": edges})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_point_from_what_is_needed_to_what_needs_it() {
        let nodes = vec![
            GraphNode { address: "storage.buckets.b".into(), needs: vec![] },
            GraphNode { address: "cdn.distributions.d".into(), needs: vec!["storage.buckets.b".into(), "elsewhere.x".into()] },
        ];
        assert_eq!(graph_mermaid(&nodes), "graph TD\n  n0[\"storage.buckets.b\"]\n  n1[\"cdn.distributions.d\"]\n  n0 --> n1\n");
        assert!(graph_dot(&nodes).contains("\"storage.buckets.b\" -> \"cdn.distributions.d\";"));
        assert_eq!(graph_json(&nodes)["edges"], json!([{"from": "storage.buckets.b", "to": "cdn.distributions.d"}]));
    }
}
