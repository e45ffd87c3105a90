//! Drawing the DAG of nodes and datasets: Mermaid, Graphviz dot, JSON, and a
//! self-contained HTML page (inline SVG, no external assets).

mod html;
mod layout;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pipeline::Pipeline;
pub use layout::Layout;

/// What the drawing knows about each dataset: its catalog type.
pub type DatasetTypesByName = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VizFormat {
    Mermaid,
    Dot,
    Json,
    Html,
}

pub fn render(
    format: VizFormat,
    title: &str,
    pipeline: &Pipeline,
    types: &DatasetTypesByName,
) -> String {
    match format {
        VizFormat::Mermaid => mermaid(pipeline, types),
        VizFormat::Dot => dot(pipeline, types),
        VizFormat::Json => json(pipeline, types),
        VizFormat::Html => html::page(title, pipeline, types),
    }
}

fn type_of<'a>(types: &'a DatasetTypesByName, dataset: &str) -> &'a str {
    types.get(dataset).map_or("memory", String::as_str)
}

/// Stable identifiers for every node and dataset.
struct Ids {
    datasets: BTreeMap<String, String>,
}

impl Ids {
    fn new(pipeline: &Pipeline) -> Self {
        Ids {
            datasets: pipeline
                .datasets()
                .into_iter()
                .enumerate()
                .map(|(i, d)| (d, format!("d{i}")))
                .collect(),
        }
    }
    fn dataset(&self, name: &str) -> &str {
        &self.datasets[name]
    }
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn mermaid(pipeline: &Pipeline, types: &DatasetTypesByName) -> String {
    let ids = Ids::new(pipeline);
    let mut out = String::from("flowchart LR\n");
    for (name, id) in &ids.datasets {
        let kind = type_of(types, name);
        let label = format!(
            "{}<br/><small>{}</small>",
            mermaid_text(name),
            mermaid_text(kind)
        );
        match kind {
            "memory" => out.push_str(&format!("  {id}([\"{label}\"])\n")),
            "parameters" => out.push_str(&format!("  {id}{{{{\"{label}\"}}}}\n")),
            _ => out.push_str(&format!("  {id}[(\"{label}\")]\n")),
        }
    }
    for (i, node) in pipeline.nodes().iter().enumerate() {
        let tags = if node.tags.is_empty() {
            String::new()
        } else {
            format!(
                "<br/><small>#{}</small>",
                node.tags.iter().cloned().collect::<Vec<_>>().join(" #")
            )
        };
        out.push_str(&format!(
            "  n{i}[\"<b>{}</b><br/>{}(){tags}\"]\n",
            mermaid_text(&node.name),
            mermaid_text(&node.func)
        ));
        for input in &node.inputs {
            out.push_str(&format!("  {} --> n{i}\n", ids.dataset(input)));
        }
        for output in &node.outputs {
            out.push_str(&format!("  n{i} --> {}\n", ids.dataset(output)));
        }
    }
    out.push_str("  classDef node fill:#e8f0fe,stroke:#3b6fd8\n");
    out
}

fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(pipeline: &Pipeline, types: &DatasetTypesByName) -> String {
    let ids = Ids::new(pipeline);
    let mut out = String::from(
        "digraph pipeline {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n",
    );
    for (name, id) in &ids.datasets {
        let kind = type_of(types, name);
        let shape = if kind == "memory" {
            "ellipse"
        } else {
            "cylinder"
        };
        out.push_str(&format!(
            "  {id} [shape={shape}, label=\"{}\\n{}\"];\n",
            dot_text(name),
            dot_text(kind)
        ));
    }
    for (i, node) in pipeline.nodes().iter().enumerate() {
        let tags: Vec<String> = node.tags.iter().map(|t| format!("#{t}")).collect();
        out.push_str(&format!(
            "  n{i} [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", label=\"{}\\n{}()\\n{}\"];\n",
            dot_text(&node.name),
            dot_text(&node.func),
            dot_text(&tags.join(" "))
        ));
        for input in &node.inputs {
            out.push_str(&format!("  {} -> n{i};\n", ids.dataset(input)));
        }
        for output in &node.outputs {
            out.push_str(&format!("  n{i} -> {};\n", ids.dataset(output)));
        }
    }
    out.push_str("}\n");
    out
}

#[derive(Serialize)]
struct JsonGraph {
    nodes: Vec<JsonNode>,
    datasets: Vec<JsonDataset>,
    edges: Vec<JsonEdge>,
}

#[derive(Serialize)]
struct JsonNode {
    id: String,
    name: String,
    func: String,
    tags: Vec<String>,
    namespace: Option<String>,
    layer: usize,
}

#[derive(Serialize)]
struct JsonDataset {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
struct JsonEdge {
    from: String,
    to: String,
}

fn json(pipeline: &Pipeline, types: &DatasetTypesByName) -> String {
    let ids = Ids::new(pipeline);
    let mut layer_of = vec![0; pipeline.len()];
    for (layer, members) in pipeline.layers().iter().enumerate() {
        for &i in members {
            layer_of[i] = layer;
        }
    }
    let mut edges = Vec::new();
    let nodes = pipeline
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            for input in &n.inputs {
                edges.push(JsonEdge {
                    from: ids.dataset(input).to_string(),
                    to: format!("n{i}"),
                });
            }
            for output in &n.outputs {
                edges.push(JsonEdge {
                    from: format!("n{i}"),
                    to: ids.dataset(output).to_string(),
                });
            }
            JsonNode {
                id: format!("n{i}"),
                name: n.name.clone(),
                func: n.func.clone(),
                tags: n.tags.iter().cloned().collect(),
                namespace: n.namespace.clone(),
                layer: layer_of[i],
            }
        })
        .collect();
    let datasets = ids
        .datasets
        .iter()
        .map(|(name, id)| JsonDataset {
            id: id.clone(),
            name: name.clone(),
            kind: type_of(types, name).to_string(),
        })
        .collect();
    serde_json::to_string_pretty(&JsonGraph {
        nodes,
        datasets,
        edges,
    })
    .expect("plain data")
}
