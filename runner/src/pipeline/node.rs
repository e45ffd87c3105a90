//! A node of a resolved pipeline: a function applied to named datasets.

use std::collections::BTreeSet;

use crate::error::Location;

#[derive(Clone, Debug)]
pub struct Node {
    /// Full name, namespace included (`eu.preprocess`).
    pub name: String,
    /// The registered function it calls.
    pub func: String,
    /// Input datasets in written order.
    pub inputs: Vec<String>,
    /// Argument names when inputs were written as a map.
    pub input_keys: Option<Vec<String>>,
    /// Output datasets in written order.
    pub outputs: Vec<String>,
    /// Output names when outputs were written as a map.
    pub output_keys: Option<Vec<String>>,
    pub tags: BTreeSet<String>,
    pub namespace: Option<String>,
    /// Where the node was written.
    pub origin: Location,
}

impl Node {
    /// Two nodes are the same node when everything but their origin matches
    /// (composing a pipeline twice brings the same node twice).
    pub fn same_as(&self, other: &Node) -> bool {
        self.name == other.name
            && self.func == other.func
            && self.inputs == other.inputs
            && self.input_keys == other.input_keys
            && self.outputs == other.outputs
            && self.output_keys == other.output_keys
            && self.tags == other.tags
            && self.namespace == other.namespace
    }

    /// Every namespace level, outer first: `a.b` gives `a`, `a.b`.
    pub fn namespace_prefixes(&self) -> Vec<String> {
        let Some(ns) = &self.namespace else {
            return Vec::new();
        };
        let parts: Vec<&str> = ns.split('.').collect();
        (1..=parts.len()).map(|n| parts[..n].join(".")).collect()
    }
}

/// `params:x` or `parameters`: inputs served from the parameter tree.
pub fn is_parameter(dataset: &str) -> bool {
    dataset == "parameters" || dataset.starts_with("params:")
}
