//! A layered layout of the node/dataset graph for the HTML view: layers by
//! longest path, items within a layer ordered by the barycentre of neighbours to keep edges
//! short and crossings few.

use std::collections::BTreeMap;

use crate::pipeline::Pipeline;

/// One box of the drawing: a node (`Node(i)`) or a dataset (`Dataset(name)`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    Node(usize),
    Dataset(String),
}

pub struct Layout {
    /// Items per layer, first layer first, each in drawing order.
    pub layers: Vec<Vec<Item>>,
    pub position: BTreeMap<Item, (usize, usize)>,
    pub edges: Vec<(Item, Item)>,
}

impl Layout {
    pub fn new(pipeline: &Pipeline) -> Self {
        let mut layer_of: BTreeMap<Item, usize> = BTreeMap::new();
        let mut edges = Vec::new();
        // Nodes are in execution order, so producers are placed before consumers.
        for (i, node) in pipeline.nodes().iter().enumerate() {
            let input_col = node
                .inputs
                .iter()
                .filter_map(|d| layer_of.get(&Item::Dataset(d.clone())).copied())
                .max();
            let col = input_col.map_or(1, |c| c + 1);
            layer_of.insert(Item::Node(i), col);
            for output in &node.outputs {
                layer_of.insert(Item::Dataset(output.clone()), col + 1);
                edges.push((Item::Node(i), Item::Dataset(output.clone())));
            }
            for input in &node.inputs {
                edges.push((Item::Dataset(input.clone()), Item::Node(i)));
            }
        }
        // Free inputs sit just left of their first reader.
        for free in pipeline.inputs() {
            let first_reader = pipeline
                .consumers_of(&free)
                .iter()
                .map(|&i| layer_of[&Item::Node(i)])
                .min()
                .unwrap_or(1);
            layer_of.insert(Item::Dataset(free), first_reader - 1);
        }
        let width = layer_of.values().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<Item>> = vec![Vec::new(); width];
        for (item, &col) in &layer_of {
            layers[col].push(item.clone());
        }
        let mut layout = Layout {
            layers,
            position: BTreeMap::new(),
            edges,
        };
        layout.order_by_barycentre(&layer_of);
        layout
    }

    fn index_positions(&mut self) {
        self.position.clear();
        for (c, items) in self.layers.iter().enumerate() {
            for (r, item) in items.iter().enumerate() {
                self.position.insert(item.clone(), (c, r));
            }
        }
    }

    fn order_by_barycentre(&mut self, layer_of: &BTreeMap<Item, usize>) {
        let mut neighbours: BTreeMap<Item, Vec<Item>> = BTreeMap::new();
        for (a, b) in &self.edges {
            neighbours.entry(a.clone()).or_default().push(b.clone());
            neighbours.entry(b.clone()).or_default().push(a.clone());
        }
        self.index_positions();
        for sweep in 0..4 {
            let forward = sweep % 2 == 0;
            let order: Vec<usize> = if forward {
                (0..self.layers.len()).collect()
            } else {
                (0..self.layers.len()).rev().collect()
            };
            for c in order {
                let position = &self.position;
                let mut keyed: Vec<(f64, Item)> = self.layers[c]
                    .iter()
                    .map(|item| {
                        let rows: Vec<f64> = neighbours
                            .get(item)
                            .into_iter()
                            .flatten()
                            .filter(|n| {
                                let nc = layer_of[*n];
                                if forward {
                                    nc < c
                                } else {
                                    nc > c
                                }
                            })
                            .map(|n| position[n].1 as f64)
                            .collect();
                        let current = position[item].1 as f64;
                        let key = if rows.is_empty() {
                            current
                        } else {
                            rows.iter().sum::<f64>() / rows.len() as f64
                        };
                        (key, item.clone())
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                self.layers[c] = keyed.into_iter().map(|(_, item)| item).collect();
                self.index_positions();
            }
        }
    }
}
