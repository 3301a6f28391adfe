//! `poactl graph`: the spec's resources and what each waits for, offline.

use super::{format, load_env_offline};
use crate::cli::{Global, GraphArgs, GraphFormat, OutputFormat};
use crate::view::GraphNode;
use anyhow::Result;

pub(super) fn graph_cmd(g: &Global, a: GraphArgs) -> Result<u8> {
    let loaded = load_env_offline(g)?;
    let nodes: Vec<GraphNode> = crate::providers::desired(&loaded)
        .into_iter()
        .map(|d| {
            let mut needs: Vec<String> = d.parent.iter().chain(d.depends_on.iter()).map(|x| x.to_string()).collect();
            needs.dedup();
            GraphNode { address: d.address.to_string(), needs }
        })
        .collect();
    let fmt = if format(g) == OutputFormat::Json { GraphFormat::Json } else { a.format };
    match fmt {
        GraphFormat::Mermaid => print!("{}", crate::view::graph_mermaid(&nodes)),
        GraphFormat::Dot => print!("{}", crate::view::graph_dot(&nodes)),
        GraphFormat::Json => println!("{}", serde_json::to_string_pretty(&crate::view::graph_json(&nodes))?),
    }
    Ok(crate::exit::OK)
}
