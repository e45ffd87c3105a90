//! [`Pipeline`]: a validated DAG of nodes, in execution order.
//!
//! Construction checks what Kedro checks (unique names, unique outputs, no
//! node reading its own output, no cycle) and computes the execution order:
//! layer by layer, a node's layer being its longest path from a source,
//! sorted by name within a layer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::node::{strip_transcoding, Node};
use crate::error::Error;

#[derive(Clone, Debug)]
pub struct Pipeline {
    nodes: Vec<Arc<Node>>,
    layers: Vec<Vec<usize>>,
    parents: Vec<Vec<usize>>,
    by_name: HashMap<String, usize>,
    producer: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
}

impl Pipeline {
    /// Validates the nodes and orders them. The same node given twice is kept once.
    pub fn new(nodes: impl IntoIterator<Item = Arc<Node>>) -> Result<Self, Error> {
        let mut unique: Vec<Arc<Node>> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut duplicate_names = BTreeSet::new();
        for node in nodes {
            match seen.get(&node.name) {
                Some(&i) if unique[i].same_as(&node) => {}
                Some(_) => {
                    duplicate_names.insert(node.name.clone());
                }
                None => {
                    seen.insert(node.name.clone(), unique.len());
                    unique.push(node);
                }
            }
        }
        if !duplicate_names.is_empty() {
            return Err(Error::invalid(format!(
                "Pipeline nodes must have unique names. These names are used by different nodes: {}",
                quoted_list(&duplicate_names)
            )));
        }

        let mut producer: HashMap<String, usize> = HashMap::new();
        let mut duplicate_outputs = BTreeSet::new();
        for (i, node) in unique.iter().enumerate() {
            if node.inputs.is_empty() && node.outputs.is_empty() {
                return Err(Error::invalid(format!(
                    "Invalid Node definition: node '{}' ({}) must have some inputs or outputs",
                    node.name, node.origin
                )));
            }
            for output in &node.outputs {
                let base = strip_transcoding(output);
                if node.inputs.iter().any(|i| strip_transcoding(i) == base) {
                    return Err(Error::invalid(format!(
                        "node '{}' ({}) reads and writes the same dataset '{output}'",
                        node.name, node.origin
                    )));
                }
                if producer.insert(base.to_string(), i).is_some() {
                    duplicate_outputs.insert(base.to_string());
                }
            }
        }
        if !duplicate_outputs.is_empty() {
            let writers: Vec<String> = unique
                .iter()
                .filter(|n| {
                    n.outputs
                        .iter()
                        .any(|o| duplicate_outputs.contains(strip_transcoding(o)))
                })
                .map(|n| format!("'{}' ({})", n.name, n.origin))
                .collect();
            return Err(Error::invalid(format!(
                "Output(s) {} are returned by more than one node: {}. Node outputs must be unique.",
                quoted_list(&duplicate_outputs),
                writers.join(", ")
            )));
        }

        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        let mut bare = BTreeSet::new();
        let mut transcoded = BTreeSet::new();
        for (i, node) in unique.iter().enumerate() {
            for input in &node.inputs {
                let list = consumers
                    .entry(strip_transcoding(input).to_string())
                    .or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            for name in node.inputs.iter().chain(&node.outputs) {
                if name.contains('@') {
                    transcoded.insert(strip_transcoding(name).to_string());
                } else {
                    bare.insert(name.clone());
                }
            }
        }
        let mixed: Vec<&String> = bare.intersection(&transcoded).collect();
        if !mixed.is_empty() {
            return Err(Error::invalid(format!(
                "The following datasets are used with transcoding, but were referenced without the separator: {}",
                quoted_list(mixed)
            )));
        }

        let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(unique.len(), unique.len());
        let index: Vec<NodeIndex> = (0..unique.len()).map(|i| graph.add_node(i)).collect();
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); unique.len()];
        for (child, node) in unique.iter().enumerate() {
            for input in &node.inputs {
                if let Some(&parent) = producer.get(strip_transcoding(input)) {
                    if !parents[child].contains(&parent) {
                        parents[child].push(parent);
                        graph.add_edge(index[parent], index[child], ());
                    }
                }
            }
        }
        let order = toposort(&graph, None).map_err(|_| {
            let mut cycle: Vec<&str> = tarjan_scc(&graph)
                .into_iter()
                .filter(|scc| scc.len() > 1)
                .flatten()
                .map(|ix| unique[graph[ix]].name.as_str())
                .collect();
            cycle.sort_unstable();
            Error::invalid(format!(
                "Circular dependencies exist among the following {} node(s): {}",
                cycle.len(),
                cycle.join(", ")
            ))
        })?;

        let mut layer_of = vec![0usize; unique.len()];
        for ix in &order {
            let i = graph[*ix];
            layer_of[i] = parents[i]
                .iter()
                .map(|&p| layer_of[p] + 1)
                .max()
                .unwrap_or(0);
        }
        let depth = layer_of.iter().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
        for (i, &layer) in layer_of.iter().enumerate() {
            layers[layer].push(i);
        }
        for layer in &mut layers {
            layer.sort_by(|&a, &b| unique[a].name.cmp(&unique[b].name));
        }

        // Store nodes in execution order so that indices follow it.
        let exec: Vec<usize> = layers.iter().flatten().copied().collect();
        let mut new_index = vec![0usize; unique.len()];
        for (pos, &old) in exec.iter().enumerate() {
            new_index[old] = pos;
        }
        let remap = |v: &Vec<usize>| -> Vec<usize> { v.iter().map(|&i| new_index[i]).collect() };
        Ok(Pipeline {
            nodes: exec.iter().map(|&i| Arc::clone(&unique[i])).collect(),
            layers: layers.iter().map(remap).collect(),
            parents: exec.iter().map(|&i| remap(&parents[i])).collect(),
            by_name: exec
                .iter()
                .enumerate()
                .map(|(pos, &i)| (unique[i].name.clone(), pos))
                .collect(),
            producer: producer
                .into_iter()
                .map(|(k, v)| (k, new_index[v]))
                .collect(),
            consumers: consumers.into_iter().map(|(k, v)| (k, remap(&v))).collect(),
        })
    }

    /// Nodes in execution order.
    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node indices grouped by layer.
    pub fn layers(&self) -> &[Vec<usize>] {
        &self.layers
    }

    /// Indices of the nodes producing this node's inputs.
    pub fn parents(&self, index: usize) -> &[usize] {
        &self.parents[index]
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn node(&self, name: &str) -> Option<&Arc<Node>> {
        self.index_of(name).map(|i| &self.nodes[i])
    }

    /// The node that writes a dataset (any transcoding of it).
    pub fn producer_of(&self, dataset: &str) -> Option<usize> {
        self.producer.get(strip_transcoding(dataset)).copied()
    }

    /// The nodes that read a dataset (any transcoding of it).
    pub fn consumers_of(&self, dataset: &str) -> &[usize] {
        self.consumers
            .get(strip_transcoding(dataset))
            .map_or(&[], Vec::as_slice)
    }

    /// Every input name, as written.
    pub fn all_inputs(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .flat_map(|n| n.inputs.iter().cloned())
            .collect()
    }

    /// Every output name, as written.
    pub fn all_outputs(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .flat_map(|n| n.outputs.iter().cloned())
            .collect()
    }

    /// Datasets read but not produced: what must exist before the run.
    pub fn inputs(&self) -> BTreeSet<String> {
        self.all_inputs()
            .into_iter()
            .filter(|d| !self.producer.contains_key(strip_transcoding(d)))
            .collect()
    }

    /// Datasets produced but not read: what the run leaves behind.
    pub fn outputs(&self) -> BTreeSet<String> {
        self.all_outputs()
            .into_iter()
            .filter(|d| !self.consumers.contains_key(strip_transcoding(d)))
            .collect()
    }

    /// Every dataset the pipeline touches, as written.
    pub fn datasets(&self) -> BTreeSet<String> {
        let mut all = self.all_inputs();
        all.extend(self.all_outputs());
        all
    }

    /// A sub-pipeline of the nodes at these indices.
    pub fn subset(&self, indices: impl IntoIterator<Item = usize>) -> Pipeline {
        let nodes: Vec<Arc<Node>> = indices
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|i| Arc::clone(&self.nodes[i]))
            .collect();
        Pipeline::new(nodes).expect("a subset of a valid pipeline is valid")
    }
}

/// `['a', 'b']`, the way Kedro lists names in its messages.
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Location;

    pub fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> Arc<Node> {
        Arc::new(Node {
            name: name.to_string(),
            func: "noop".to_string(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            input_keys: None,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            output_keys: None,
            tags: BTreeSet::new(),
            namespace: None,
            origin: Location::new("pipelines.yml", Some(1)),
        })
    }

    fn names(p: &Pipeline) -> Vec<&str> {
        p.nodes().iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn orders_by_longest_path_then_name() {
        // d depends on a (layer 0) and c (layer 1): it goes to layer 2.
        let p = Pipeline::new(vec![
            node("d", &["x", "z"], &["out"]),
            node("c", &["y"], &["z"]),
            node("b", &[], &["y"]),
            node("a", &["in"], &["x"]),
        ])
        .unwrap();
        assert_eq!(names(&p), vec!["a", "b", "c", "d"]);
        assert_eq!(p.layers(), &[vec![0, 1], vec![2], vec![3]]);
        assert_eq!(p.inputs(), BTreeSet::from(["in".to_string()]));
        assert_eq!(p.outputs(), BTreeSet::from(["out".to_string()]));
        assert_eq!(p.datasets().len(), 5);
        assert_eq!(p.producer_of("z"), p.index_of("c"));
        assert_eq!(p.consumers_of("z"), &[3]);
        assert_eq!(p.parents(3).len(), 2);
        assert_eq!(p.node("b").unwrap().outputs, vec!["y"]);
    }

    #[test]
    fn rejects_invalid_graphs() {
        let err =
            Pipeline::new(vec![node("a", &["y"], &["x"]), node("b", &["x"], &["y"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Circular dependencies exist among the following 2 node(s): a, b"
        );
        let err = Pipeline::new(vec![node("a", &[], &["x"]), node("b", &[], &["x"])]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Output(s) ['x'] are returned by more than one node"));
        let err = Pipeline::new(vec![node("a", &["x"], &["x"])]).unwrap_err();
        assert!(err
            .to_string()
            .contains("reads and writes the same dataset 'x'"));
        let err = Pipeline::new(vec![node("a", &[], &["x"]), node("a", &[], &["y"])]).unwrap_err();
        assert!(err.to_string().contains("unique names"), "{err}");
        // the very same node twice is one node
        let p = Pipeline::new(vec![node("a", &[], &["x"]), node("a", &[], &["x"])]).unwrap();
        assert_eq!(p.len(), 1);
        assert!(!p.is_empty());
    }
}
