//! After a failure: which nodes to restart from, as Kedro suggests — the
//! nearest nodes whose inputs are all persisted.

use std::collections::{BTreeSet, VecDeque};

use crate::catalog::Catalog;
use crate::pipeline::{is_parameter, Pipeline};

/// Node names to pass to `--from-nodes` so that every unfinished node runs
/// again, re-running upstream nodes whose outputs were only in memory.
/// Empty when nothing completed (the same command can simply be repeated).
pub fn nodes_to_resume_from(
    pipeline: &Pipeline,
    done: &BTreeSet<usize>,
    catalog: &Catalog,
) -> Vec<String> {
    if done.is_empty() {
        return Vec::new();
    }
    let remaining: BTreeSet<usize> = (0..pipeline.len()).filter(|i| !done.contains(i)).collect();
    let sub = pipeline.subset(remaining.iter().copied());
    let sub_inputs = sub.inputs();

    let mut to_run = remaining.clone();
    let mut queue: VecDeque<usize> = remaining
        .iter()
        .copied()
        .filter(|&i| {
            pipeline.nodes()[i]
                .inputs
                .iter()
                .any(|d| sub_inputs.contains(d))
        })
        .collect();
    let mut visited: BTreeSet<usize> = queue.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        to_run.insert(i);
        for input in &pipeline.nodes()[i].inputs {
            if is_parameter(input) || !catalog.is_ephemeral(input) {
                continue;
            }
            if let Some(parent) = pipeline.producer_of(input) {
                if visited.insert(parent) {
                    queue.push_back(parent);
                }
            }
        }
    }
    let names: Vec<String> = to_run
        .iter()
        .map(|&i| pipeline.nodes()[i].name.clone())
        .collect();
    let downstream = pipeline
        .from_nodes(&names)
        .expect("names come from the pipeline itself");
    let resumed = pipeline.subset(downstream);
    let mut first: Vec<String> = resumed.layers()[0]
        .iter()
        .map(|&i| resumed.nodes()[i].name.clone())
        .collect();
    first.sort();
    first
}
