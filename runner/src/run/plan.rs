//! The execution plan: what `--dry-run` prints.

use serde::Serialize;

use crate::pipeline::Pipeline;

#[derive(Debug, Serialize, PartialEq)]
pub struct Plan {
    pub pipeline: String,
    pub nodes: Vec<PlanNode>,
    pub free_inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Nodes an incremental run would skip (omitted when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub up_to_date: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct PlanNode {
    pub name: String,
    pub func: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub tags: Vec<String>,
}

impl Plan {
    pub fn new(name: &str, pipeline: &Pipeline) -> Self {
        Plan {
            pipeline: name.to_string(),
            nodes: pipeline
                .nodes()
                .iter()
                .map(|n| PlanNode {
                    name: n.name.clone(),
                    func: n.func.clone(),
                    inputs: n.inputs.clone(),
                    outputs: n.outputs.clone(),
                    tags: n.tags.iter().cloned().collect(),
                })
                .collect(),
            free_inputs: pipeline.inputs().into_iter().collect(),
            outputs: pipeline.outputs().into_iter().collect(),
            up_to_date: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan is plain data")
    }

    /// A readable listing, in the spirit of Kedro's `describe()`.
    pub fn to_text(&self) -> String {
        let none = |v: &Vec<String>| {
            if v.is_empty() {
                "None".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut out = format!(
            "Pipeline: {}\nInputs: {}\n\n",
            self.pipeline,
            none(&self.free_inputs)
        );
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "{:>4}. {} = {}([{}]) -> [{}]",
                i + 1,
                n.name,
                n.func,
                n.inputs.join(", "),
                n.outputs.join(", ")
            ));
            if !n.tags.is_empty() {
                out.push_str(&format!("  #{}", n.tags.join(" #")));
            }
            if self.up_to_date.contains(&n.name) {
                out.push_str("  (up to date: skipped)");
            }
            out.push('\n');
        }
        out.push_str(&format!("\nOutputs: {}\n", none(&self.outputs)));
        out
    }
}
