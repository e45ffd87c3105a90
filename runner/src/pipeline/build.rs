//! Resolving a named pipeline of `pipelines.yml` into nodes: composition,
//! namespaces with input/output/parameter mapping, and pipeline tags, with
//! Kedro's naming rules.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::graph::{quoted_list, Pipeline};
use super::node::{is_parameter, Node};
use super::spec::NameMapping;
use crate::config::{yaml, PipelineDef, ProjectConfig};
use crate::error::{Error, Location};

/// Builds the named pipelines of a project, memoising shared sub-pipelines.
pub struct PipelineBuilder<'a> {
    config: &'a ProjectConfig,
    done: HashMap<String, Arc<Vec<Arc<Node>>>>,
    stack: Vec<String>,
}

impl<'a> PipelineBuilder<'a> {
    pub fn new(config: &'a ProjectConfig) -> Self {
        PipelineBuilder {
            config,
            done: HashMap::new(),
            stack: Vec::new(),
        }
    }

    /// The union of the named pipelines, validated.
    pub fn build(&mut self, names: &[String]) -> Result<Pipeline, Error> {
        let mut nodes = Vec::new();
        for name in names {
            if !self.config.pipelines.contains_key(name) {
                return Err(self.unknown_pipeline(name, None));
            }
            nodes.extend(self.nodes_of(name)?.iter().cloned());
        }
        Pipeline::new(nodes)
    }

    fn unknown_pipeline(&self, name: &str, from: Option<&PipelineDef>) -> Error {
        let known: Vec<&String> = self.config.pipelines.keys().collect();
        let message = format!(
            "unknown pipeline '{name}'; pipelines are: {}",
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        match from {
            Some(def) => Error::config(self.location_of(def, None), message),
            None => Error::invalid(message),
        }
    }

    fn location_of(&self, def: &PipelineDef, key: Option<&str>) -> Location {
        let name = self.stack.last().map(String::as_str).unwrap_or("");
        let mut path = vec!["pipelines", name];
        path.extend(key);
        let line = yaml::key_line(&def.file.text, &path)
            .or_else(|| yaml::key_line(&def.file.text, &["pipelines", name]));
        def.file.location(line)
    }

    fn nodes_of(&mut self, name: &str) -> Result<Arc<Vec<Arc<Node>>>, Error> {
        if let Some(done) = self.done.get(name) {
            return Ok(Arc::clone(done));
        }
        let def = &self.config.pipelines[name];
        if self.stack.iter().any(|n| n == name) {
            let start = self.stack.iter().position(|n| n == name).unwrap_or(0);
            let mut cycle = self.stack[start..].to_vec();
            cycle.push(name.to_string());
            return Err(Error::config(
                def.file
                    .location(yaml::key_line(&def.file.text, &["pipelines", name])),
                format!("pipelines include each other: {}", cycle.join(" -> ")),
            ));
        }
        self.stack.push(name.to_string());
        let result = self.resolve(def);
        self.stack.pop();
        let nodes = Arc::new(result?);
        self.done.insert(name.to_string(), Arc::clone(&nodes));
        Ok(nodes)
    }

    fn resolve(&mut self, def: &'a PipelineDef) -> Result<Vec<Arc<Node>>, Error> {
        let spec = &def.spec;
        let name = self.stack.last().cloned().unwrap_or_default();
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        let lines = if spec.nodes.is_empty() {
            Vec::new()
        } else {
            yaml::list_item_lines(&def.file.text, &["pipelines", &name, "nodes"])
        };
        for (i, node) in spec.nodes.iter().enumerate() {
            let line = lines.get(i).copied();
            let base = node.name.clone().unwrap_or_else(|| node.func.clone());
            let full = match &node.namespace {
                Some(ns) => format!("{ns}.{base}"),
                None => base,
            };
            nodes.push(Arc::new(Node {
                name: full,
                func: node.func.clone(),
                inputs: node.inputs.datasets(),
                input_keys: node.inputs.keys(),
                outputs: node.outputs.datasets(),
                output_keys: node.outputs.keys(),
                tags: node.tags.0.iter().cloned().collect(),
                namespace: node.namespace.clone(),
                origin: def.file.location(line),
            }));
        }
        let children = spec.pipelines.iter().chain(spec.pipeline.iter());
        for child in children {
            if !self.config.pipelines.contains_key(child) {
                return Err(self.unknown_pipeline(child, Some(def)));
            }
            nodes.extend(self.nodes_of(child)?.iter().cloned());
        }
        if nodes.is_empty() {
            return Err(Error::config(
                self.location_of(def, None),
                format!(
                    "pipeline '{name}' has no nodes (give `nodes:`, `pipelines:` or `pipeline:`)"
                ),
            ));
        }
        // Validate the union now, so that errors point at this pipeline.
        let union = Pipeline::new(nodes.clone()).map_err(|e| {
            Error::config(
                self.location_of(def, None),
                format!("pipeline '{name}': {e}"),
            )
        })?;
        let mut nodes: Vec<Arc<Node>> = union.nodes().to_vec();

        if !spec.tags.0.is_empty() {
            for node in &mut nodes {
                let mut tagged = (**node).clone();
                tagged.tags.extend(spec.tags.0.iter().cloned());
                *node = Arc::new(tagged);
            }
        }
        let has_mapping = spec.namespace.is_some()
            || spec.inputs.is_some()
            || spec.outputs.is_some()
            || spec.parameters.is_some();
        if has_mapping {
            nodes = self.map_nodes(def, &union, nodes)?;
        }
        Ok(nodes)
    }

    /// Kedro's `pipeline(pipe, namespace=, inputs=, outputs=, parameters=)`.
    fn map_nodes(
        &self,
        def: &PipelineDef,
        pipe: &Pipeline,
        nodes: Vec<Arc<Node>>,
    ) -> Result<Vec<Arc<Node>>, Error> {
        let spec = &def.spec;
        let empty = NameMapping::default();
        let inputs = spec.inputs.as_ref().unwrap_or(&empty);
        let outputs = spec.outputs.as_ref().unwrap_or(&empty);
        let parameters: Vec<(String, String)> = spec
            .parameters
            .as_ref()
            .unwrap_or(&empty)
            .0
            .iter()
            .map(|(k, v)| {
                if k == "parameters" {
                    (k.clone(), k.clone())
                } else {
                    (params_name(k), params_name(v))
                }
            })
            .collect();

        let existing = pipe.datasets();
        let missing: BTreeSet<&String> = inputs
            .0
            .iter()
            .chain(outputs.0.iter())
            .chain(parameters.iter())
            .map(|(k, _)| k)
            .filter(|k| !existing.contains(*k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::config(
                self.location_of(def, None),
                format!(
                    "Failed to map datasets and/or parameters onto the nodes provided: {} not in the pipeline",
                    quoted_list(missing)
                ),
            ));
        }
        if inputs.0.iter().any(|(k, _)| is_parameter(k)) {
            return Err(Error::config(
                self.location_of(def, Some("inputs")),
                "Parameters should be specified in the 'parameters' mapping, not 'inputs'",
            ));
        }
        let free = pipe.inputs();
        if let Some((k, _)) = inputs.0.iter().find(|(k, _)| !free.contains(k)) {
            return Err(Error::config(
                self.location_of(def, Some("inputs")),
                format!("Inputs must not be outputs from another node in the same pipeline: '{k}'"),
            ));
        }
        if let Some((k, _)) = outputs.0.iter().find(|(k, _)| free.contains(k)) {
            return Err(Error::config(
                self.location_of(def, Some("outputs")),
                format!("All outputs must be generated by some node within the pipeline: '{k}'"),
            ));
        }

        let mapping: HashMap<&str, &str> = inputs
            .0
            .iter()
            .chain(outputs.0.iter())
            .chain(parameters.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let namespace = spec.namespace.as_deref();
        let rename = |name: &String| -> String {
            if let Some(new) = mapping.get(name.as_str()) {
                return new.to_string();
            }
            match namespace {
                _ if name == "parameters" => name.clone(),
                Some(ns) if name.starts_with("params:") => {
                    format!("params:{ns}.{}", &name["params:".len()..])
                }
                Some(ns) => format!("{ns}.{name}"),
                None => name.clone(),
            }
        };
        Ok(nodes
            .into_iter()
            .map(|node| {
                let mut mapped = (*node).clone();
                mapped.inputs = node.inputs.iter().map(rename).collect();
                mapped.outputs = node.outputs.iter().map(rename).collect();
                if let Some(ns) = namespace {
                    mapped.namespace = Some(match &node.namespace {
                        Some(inner) => format!("{ns}.{inner}"),
                        None => ns.to_string(),
                    });
                    mapped.name = format!("{ns}.{}", node.name);
                }
                Arc::new(mapped)
            })
            .collect())
    }
}

fn params_name(name: &str) -> String {
    if name.starts_with("params:") {
        name.to_string()
    } else {
        format!("params:{name}")
    }
}
