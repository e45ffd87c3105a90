//! Selecting part of a pipeline, exactly as Kedro's `Pipeline.filter` does:
//! each given filter selects a sub-pipeline of the whole, and the result is
//! their intersection.

use std::collections::{BTreeSet, VecDeque};

use super::graph::{quoted_list, Pipeline};
use super::node::strip_transcoding;
use crate::error::Error;

/// The filter flags of `roadsign run`. Empty lists are "not given".
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub tags: Vec<String>,
    pub from_nodes: Vec<String>,
    pub to_nodes: Vec<String>,
    pub node_names: Vec<String>,
    pub from_inputs: Vec<String>,
    pub to_outputs: Vec<String>,
    pub namespaces: Vec<String>,
}

type Selection = BTreeSet<usize>;

impl Pipeline {
    /// Applies every given filter and intersects the selections.
    pub fn filter(&self, filters: &Filters) -> Result<Pipeline, Error> {
        let mut selected: Selection = (0..self.len()).collect();
        let mut intersect = |s: Selection| selected = &selected & &s;
        if !filters.tags.is_empty() {
            intersect(self.only_nodes_with_tags(&filters.tags));
        }
        if !filters.from_nodes.is_empty() {
            intersect(self.from_nodes(&filters.from_nodes)?);
        }
        if !filters.to_nodes.is_empty() {
            intersect(self.to_nodes(&filters.to_nodes)?);
        }
        if !filters.node_names.is_empty() {
            intersect(self.only_nodes(&filters.node_names)?);
        }
        if !filters.from_inputs.is_empty() {
            intersect(self.from_inputs(&filters.from_inputs)?);
        }
        if !filters.to_outputs.is_empty() {
            intersect(self.to_outputs(&filters.to_outputs)?);
        }
        if !filters.namespaces.is_empty() {
            intersect(self.only_nodes_with_namespaces(&filters.namespaces)?);
        }
        if selected.is_empty() {
            return Err(Error::invalid(
                "Pipeline contains no nodes after applying all provided filters",
            ));
        }
        Ok(self.subset(selected))
    }

    /// Nodes having any of the tags.
    pub fn only_nodes_with_tags(&self, tags: &[String]) -> Selection {
        (0..self.len())
            .filter(|&i| tags.iter().any(|t| self.nodes()[i].tags.contains(t)))
            .collect()
    }

    /// Exactly the named nodes; unknown names are an error, and so is a name
    /// given twice (Kedro builds a pipeline of the named nodes, which refuses
    /// duplicates).
    pub fn only_nodes(&self, names: &[String]) -> Result<Selection, Error> {
        let unknown: BTreeSet<&String> = names
            .iter()
            .filter(|n| self.index_of(n).is_none())
            .collect();
        if !unknown.is_empty() {
            let suggestions: Vec<&str> = self
                .nodes()
                .iter()
                .map(|n| n.name.as_str())
                .filter(|full| unknown.iter().any(|u| full.ends_with(&format!(".{u}"))))
                .collect();
            let mut message = format!(
                "Pipeline does not contain nodes named {}.",
                quoted_list(unknown.iter().copied())
            );
            if !suggestions.is_empty() {
                message.push_str(&format!(" Did you mean: {}?", suggestions.join(", ")));
            }
            return Err(Error::invalid(message));
        }
        let selection: Selection = names.iter().filter_map(|n| self.index_of(n)).collect();
        if selection.len() < names.len() {
            let mut seen = BTreeSet::new();
            let repeated: BTreeSet<&String> = names.iter().filter(|n| !seen.insert(*n)).collect();
            return Err(duplicate_nodes(repeated));
        }
        Ok(selection)
    }

    /// The named nodes and everything downstream of them.
    pub fn from_nodes(&self, names: &[String]) -> Result<Selection, Error> {
        let mut selection = self.only_nodes(names)?;
        let outputs: Vec<String> = selection
            .iter()
            .flat_map(|&i| self.nodes()[i].outputs.iter())
            .map(|d| strip_transcoding(d).to_string())
            .collect();
        selection.extend(self.from_inputs(&outputs)?);
        Ok(selection)
    }

    /// The named nodes and everything upstream of them.
    pub fn to_nodes(&self, names: &[String]) -> Result<Selection, Error> {
        let mut selection = self.only_nodes(names)?;
        let inputs: Vec<String> = selection
            .iter()
            .flat_map(|&i| self.nodes()[i].inputs.iter())
            .map(|d| strip_transcoding(d).to_string())
            .collect();
        selection.extend(self.to_outputs(&inputs)?);
        Ok(selection)
    }

    fn check_datasets_exist(&self, datasets: &[String]) -> Result<(), Error> {
        let known = self.datasets();
        let bases: BTreeSet<&str> = known.iter().map(|d| strip_transcoding(d)).collect();
        let missing: BTreeSet<&String> = datasets
            .iter()
            .filter(|d| !known.contains(*d) && !bases.contains(d.as_str()))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "Pipeline does not contain datasets named {}",
                quoted_list(missing)
            )))
        }
    }

    /// Nodes that depend, directly or transitively, on these datasets.
    pub fn from_inputs(&self, datasets: &[String]) -> Result<Selection, Error> {
        self.check_datasets_exist(datasets)?;
        let mut selection = Selection::new();
        // `d@fmt` names one transcoding exactly; `d` names all of them.
        let mut queue: VecDeque<usize> = datasets
            .iter()
            .flat_map(|d| {
                self.consumers_of(d).iter().copied().filter(move |&i| {
                    strip_transcoding(d) == d || self.nodes()[i].inputs.contains(d)
                })
            })
            .collect();
        while let Some(i) = queue.pop_front() {
            if selection.insert(i) {
                for output in &self.nodes()[i].outputs {
                    queue.extend(self.consumers_of(output).iter().copied());
                }
            }
        }
        Ok(selection)
    }

    /// Nodes needed, directly or transitively, to produce these datasets.
    pub fn to_outputs(&self, datasets: &[String]) -> Result<Selection, Error> {
        self.check_datasets_exist(datasets)?;
        let mut selection = Selection::new();
        let mut queue: VecDeque<usize> = datasets
            .iter()
            .filter_map(|d| {
                self.producer_of(d)
                    .filter(|&i| strip_transcoding(d) == d || self.nodes()[i].outputs.contains(d))
            })
            .collect();
        while let Some(i) = queue.pop_front() {
            if selection.insert(i) {
                queue.extend(self.parents(i).iter().copied());
            }
        }
        Ok(selection)
    }

    /// Nodes whose namespace is one of these or nested under one.
    pub fn only_nodes_with_namespaces(&self, namespaces: &[String]) -> Result<Selection, Error> {
        let mut selection = Selection::new();
        let mut unmatched = Vec::new();
        let mut repeated = BTreeSet::new();
        for ns in namespaces {
            let prefix = format!("{ns}.");
            let matching: Vec<usize> = (0..self.len())
                .filter(|&i| {
                    self.nodes()[i]
                        .namespace
                        .as_deref()
                        .is_some_and(|n| n == ns || n.starts_with(&prefix))
                })
                .collect();
            if matching.is_empty() {
                unmatched.push(ns.clone());
            }
            for i in matching {
                if !selection.insert(i) {
                    repeated.insert(&self.nodes()[i].name);
                }
            }
        }
        if !unmatched.is_empty() {
            return Err(Error::invalid(format!(
                "Pipeline does not contain nodes with the following namespaces: {}",
                quoted_list(&unmatched)
            )));
        }
        if !repeated.is_empty() {
            // Kedro collects a node once per matching namespace, then refuses the repeat.
            return Err(duplicate_nodes(repeated));
        }
        Ok(selection)
    }
}

fn duplicate_nodes<'a>(names: impl IntoIterator<Item = &'a String>) -> Error {
    Error::invalid(format!(
        "Pipeline nodes must have unique names. The following node names appear more than once: {}",
        quoted_list(names)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::node;
    use super::*;
    use std::sync::Arc;

    /// a: in -> x ; b: x -> y ; c: y -> out ; d: other -> side
    fn chain() -> Pipeline {
        let mut d = (*node("d", &["other"], &["side"])).clone();
        d.tags.insert("t2".into());
        d.namespace = Some("ns.inner".into());
        d.name = "ns.inner.d".into();
        let mut b = (*node("b", &["x"], &["y"])).clone();
        b.tags.insert("t1".into());
        Pipeline::new(vec![
            node("a", &["in"], &["x"]),
            Arc::new(b),
            node("c", &["y"], &["out"]),
            Arc::new(d),
        ])
        .unwrap()
    }

    fn run(p: &Pipeline, f: Filters) -> Result<Vec<String>, String> {
        p.filter(&f)
            .map(|p| p.nodes().iter().map(|n| n.name.clone()).collect())
            .map_err(|e| e.to_string())
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_filter_selects_like_kedro() {
        let p = chain();
        let f = |set: fn(&mut Filters)| {
            let mut filters = Filters::default();
            set(&mut filters);
            filters
        };
        assert_eq!(
            run(&p, f(|f| f.from_nodes = v(&["b"]))).unwrap(),
            v(&["b", "c"])
        );
        assert_eq!(
            run(&p, f(|f| f.to_nodes = v(&["b"]))).unwrap(),
            v(&["a", "b"])
        );
        assert_eq!(
            run(&p, f(|f| f.node_names = v(&["c", "a"]))).unwrap(),
            v(&["a", "c"])
        );
        assert_eq!(
            run(&p, f(|f| f.from_inputs = v(&["x"]))).unwrap(),
            v(&["b", "c"])
        );
        assert_eq!(
            run(&p, f(|f| f.to_outputs = v(&["y"]))).unwrap(),
            v(&["a", "b"])
        );
        assert_eq!(
            run(&p, f(|f| f.tags = v(&["t1", "t2"]))).unwrap(),
            v(&["b", "ns.inner.d"])
        );
        assert_eq!(
            run(&p, f(|f| f.namespaces = v(&["ns"]))).unwrap(),
            v(&["ns.inner.d"])
        );
        // Intersection of independent selections.
        let both = f(|f| {
            f.from_nodes = v(&["a"]);
            f.to_nodes = v(&["b"]);
        });
        assert_eq!(run(&p, both).unwrap(), v(&["a", "b"]));
        // A terminal dataset is known: from_inputs on it selects nothing.
        let err = run(&p, f(|f| f.from_inputs = v(&["out"]))).unwrap_err();
        assert!(err.contains("no nodes after applying"), "{err}");
    }

    #[test]
    fn unknown_names_are_errors() {
        let p = chain();
        let mut f = Filters {
            node_names: v(&["zz"]),
            ..Default::default()
        };
        assert_eq!(
            run(&p, f.clone()).unwrap_err(),
            "Pipeline does not contain nodes named ['zz']."
        );
        f.node_names = v(&["d"]);
        assert!(run(&p, f)
            .unwrap_err()
            .contains("Did you mean: ns.inner.d?"));
        let f = Filters {
            to_outputs: v(&["nope"]),
            ..Default::default()
        };
        assert_eq!(
            run(&p, f).unwrap_err(),
            "Pipeline does not contain datasets named ['nope']"
        );
        let f = Filters {
            namespaces: v(&["n"]),
            ..Default::default()
        };
        assert!(run(&p, f).unwrap_err().contains("namespaces: ['n']"));
        let f = Filters {
            tags: v(&["none"]),
            ..Default::default()
        };
        assert!(run(&p, f).unwrap_err().contains("no nodes"));
        // a node selected twice is refused, as Kedro refuses duplicate nodes
        let f = Filters {
            namespaces: v(&["ns", "ns.inner"]),
            ..Default::default()
        };
        assert!(run(&p, f)
            .unwrap_err()
            .contains("appear more than once: ['ns.inner.d']"));
    }
}
