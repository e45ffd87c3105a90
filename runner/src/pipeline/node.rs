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
    /// A node of that name calling `noop`, reading and writing nothing.
    pub fn named(name: &str) -> Node {
        Node {
            name: name.to_string(),
            func: "noop".to_string(),
            inputs: Vec::new(),
            input_keys: None,
            outputs: Vec::new(),
            output_keys: None,
            tags: BTreeSet::new(),
            namespace: None,
            origin: Location::default(),
        }
    }

    /// Two nodes are the same node when their name, inputs and outputs match
    /// (Kedro's node identity: tags and function do not count, so composing
    /// a pipeline with a re-tagged copy of itself keeps the first copy).
    pub fn same_as(&self, other: &Node) -> bool {
        fn key(datasets: &[String], keys: &Option<Vec<String>>) -> Vec<(String, String)> {
            match keys {
                // a map is the same map whatever the order it was written in
                Some(keys) => {
                    let mut pairs: Vec<(String, String)> =
                        keys.iter().cloned().zip(datasets.iter().cloned()).collect();
                    pairs.sort();
                    pairs
                }
                None => datasets
                    .iter()
                    .map(|d| (String::new(), d.clone()))
                    .collect(),
            }
        }
        self.name == other.name
            && self.input_keys.is_some() == other.input_keys.is_some()
            && self.output_keys.is_some() == other.output_keys.is_some()
            && key(&self.inputs, &self.input_keys) == key(&other.inputs, &other.input_keys)
            && key(&self.outputs, &self.output_keys) == key(&other.outputs, &other.output_keys)
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

/// The dataset behind a transcoded name: `cars@spark` → `cars` (Kedro's
/// transcoding: one dataset, read or written through different types).
pub fn strip_transcoding(dataset: &str) -> &str {
    dataset.split_once('@').map_or(dataset, |(base, _)| base)
}

/// `params:x` or `parameters`: inputs served from the parameter tree.
pub fn is_parameter(dataset: &str) -> bool {
    dataset == "parameters" || dataset.starts_with("params:")
}
