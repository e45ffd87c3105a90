//! The bookkeeping both executors share, and nothing else: which nodes are
//! ready, and which datasets no node will read any more (so that in-memory
//! data can be dropped). No I/O, no threads, no policy.

use std::collections::{BTreeSet, HashMap};

use crate::pipeline::Pipeline;

pub struct Schedule {
    children: Vec<Vec<usize>>,
    waiting_on: Vec<usize>,
    /// Each node's inputs, by the name they are stored under, once each.
    reads: Vec<Vec<String>>,
    /// Remaining reads of each stored dataset.
    reads_left: HashMap<String, usize>,
}

impl Schedule {
    /// `storage_name` maps a dataset to the name it is stored under (two
    /// transcoded names can share one).
    pub fn new(pipeline: &Pipeline, storage_name: impl Fn(&str) -> String) -> Schedule {
        let n = pipeline.len();
        let mut children = vec![Vec::new(); n];
        for i in 0..n {
            for &p in pipeline.parents(i) {
                children[p].push(i);
            }
        }
        let mut reads_left = HashMap::new();
        let reads: Vec<Vec<String>> = pipeline
            .nodes()
            .iter()
            .map(|node| {
                let stored: BTreeSet<String> =
                    node.inputs.iter().map(|d| storage_name(d)).collect();
                for input in &stored {
                    *reads_left.entry(input.clone()).or_insert(0) += 1;
                }
                stored.into_iter().collect()
            })
            .collect();
        Schedule {
            children,
            waiting_on: (0..n).map(|i| pipeline.parents(i).len()).collect(),
            reads,
            reads_left,
        }
    }

    /// The nodes ready before any ran: those without parents.
    pub fn initially_ready(&self) -> Vec<usize> {
        (0..self.waiting_on.len())
            .filter(|&i| self.waiting_on[i] == 0)
            .collect()
    }

    /// Node `i` is done. Returns the nodes it made ready and, when its reads
    /// count (`reads_done`), the datasets it was the last reader of.
    pub fn complete(&mut self, i: usize, reads_done: bool) -> (Vec<usize>, Vec<String>) {
        let mut drained = Vec::new();
        if reads_done {
            for input in &self.reads[i] {
                if let Some(left) = self.reads_left.get_mut(input) {
                    *left -= 1;
                    if *left == 0 {
                        drained.push(input.clone());
                    }
                }
            }
        }
        let mut ready = Vec::new();
        for &child in &self.children[i] {
            self.waiting_on[child] -= 1;
            if self.waiting_on[child] == 0 {
                ready.push(child);
            }
        }
        (ready, drained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, ProjectConfig};
    use crate::pipeline::PipelineBuilder;

    fn pipeline(yaml: &str) -> Pipeline {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pipelines.yml"), yaml).unwrap();
        std::fs::write(dir.path().join("parameters.yml"), "{}\n").unwrap();
        std::fs::write(dir.path().join("catalog.yml"), "{}\n").unwrap();
        let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        PipelineBuilder::new(&config)
            .build(&["p".to_string()])
            .unwrap()
    }

    #[test]
    fn nodes_become_ready_with_their_last_parent_and_data_drains_with_its_last_reader() {
        // a → x; b → y; c(x, y) → z; d(x) → w
        let p = pipeline(
            "pipelines:\n  p:\n    nodes:\n\
             \x20     - {name: a, func: noop, outputs: x}\n\
             \x20     - {name: b, func: noop, outputs: y}\n\
             \x20     - {name: c, func: noop, inputs: [x, y], outputs: z}\n\
             \x20     - {name: d, func: noop, inputs: x, outputs: w}\n",
        );
        let index = |name: &str| p.nodes().iter().position(|n| n.name == name).unwrap();
        let mut schedule = Schedule::new(&p, |d| d.to_string());
        let mut ready = schedule.initially_ready();
        ready.sort();
        assert_eq!(ready, [index("a"), index("b")]);
        let (after_a, drained) = schedule.complete(index("a"), true);
        assert_eq!(after_a, [index("d")]);
        assert!(drained.is_empty(), "a reads nothing");
        let (after_b, _) = schedule.complete(index("b"), true);
        assert_eq!(after_b, [index("c")]);
        let (_, drained) = schedule.complete(index("c"), true);
        assert_eq!(drained, ["y"], "x is still read by d");
        // A node whose reads do not count (it may still run for a reader)
        // keeps what it reads.
        let (_, drained) = schedule.complete(index("d"), false);
        assert!(drained.is_empty());
    }
}
