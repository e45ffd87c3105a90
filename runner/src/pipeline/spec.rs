//! The shape of `pipelines.yml`, as written by users.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelinesFile {
    pub pipelines: BTreeMap<String, PipelineSpec>,
}

/// One named pipeline: its own nodes and/or other pipelines, optionally
/// reused under a namespace with mapped inputs, outputs and parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Composition: the union of these pipelines.
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// Modular reuse of one pipeline (usually with `namespace`).
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub inputs: Option<NameMapping>,
    #[serde(default)]
    pub outputs: Option<NameMapping>,
    #[serde(default)]
    pub parameters: Option<NameMapping>,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub func: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub inputs: DatasetRefs,
    #[serde(default)]
    pub outputs: DatasetRefs,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `tags: x` or `tags: [x, y]`.
#[derive(Debug, Default, Clone)]
pub struct Tags(pub Vec<String>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::Null => Ok(Tags(Vec::new())),
            serde_yaml::Value::String(s) => Ok(Tags(vec![s])),
            serde_yaml::Value::Sequence(items) => items
                .into_iter()
                .map(|v| match v {
                    serde_yaml::Value::String(s) => Ok(s),
                    _ => Err(D::Error::custom("tags must be strings")),
                })
                .collect::<Result<_, _>>()
                .map(Tags),
            _ => Err(D::Error::custom(
                "tags must be a string or a list of strings",
            )),
        }
    }
}

/// A node's `inputs:`/`outputs:` — a name, a list, or a map `{argument: dataset}`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum DatasetRefs {
    #[default]
    None,
    List(Vec<String>),
    /// Keys (argument or output names) and datasets, in written order.
    Map(Vec<(String, String)>),
}

impl DatasetRefs {
    pub fn datasets(&self) -> Vec<String> {
        match self {
            DatasetRefs::None => Vec::new(),
            DatasetRefs::List(v) => v.clone(),
            DatasetRefs::Map(m) => m.iter().map(|(_, d)| d.clone()).collect(),
        }
    }
    pub fn keys(&self) -> Option<Vec<String>> {
        match self {
            DatasetRefs::Map(m) => Some(m.iter().map(|(k, _)| k.clone()).collect()),
            _ => None,
        }
    }
}

fn string_pairs<E: serde::de::Error>(
    map: serde_yaml::Mapping,
    what: &str,
) -> Result<Vec<(String, String)>, E> {
    map.into_iter()
        .map(|(k, v)| match (k, v) {
            (serde_yaml::Value::String(k), serde_yaml::Value::String(v)) => Ok((k, v)),
            _ => Err(E::custom(format!(
                "{what} map keys and values must be strings"
            ))),
        })
        .collect()
}

fn string_list<E: serde::de::Error>(
    items: Vec<serde_yaml::Value>,
    what: &str,
) -> Result<Vec<String>, E> {
    let mut names = items
        .into_iter()
        .map(|v| match v {
            serde_yaml::Value::String(s) => Ok(s),
            _ => Err(E::custom(format!("{what} must be dataset names (strings)"))),
        })
        .collect::<Result<Vec<String>, E>>()?;
    // Collected in place, the names would keep the values' larger buffer
    // for the rest of the run: 0.3 KiB a node.
    names.shrink_to_fit();
    Ok(names)
}

impl<'de> Deserialize<'de> for DatasetRefs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::Null => Ok(DatasetRefs::None),
            serde_yaml::Value::String(s) => Ok(DatasetRefs::List(vec![s])),
            serde_yaml::Value::Sequence(items) => {
                string_list(items, "inputs and outputs").map(DatasetRefs::List)
            }
            serde_yaml::Value::Mapping(map) => {
                string_pairs(map, "inputs and outputs").map(DatasetRefs::Map)
            }
            _ => Err(D::Error::custom(
                "expected a dataset name, a list of names, or a map {argument: dataset}",
            )),
        }
    }
}

/// A pipeline's `inputs:`/`outputs:`/`parameters:` mapping; a name or a list
/// keeps those names as they are (exposed, not prefixed by the namespace).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameMapping(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for NameMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::Null => Ok(NameMapping(Vec::new())),
            serde_yaml::Value::String(s) => Ok(NameMapping(vec![(s.clone(), s)])),
            serde_yaml::Value::Sequence(items) => string_list(items, "mapped names")
                .map(|v: Vec<String>| NameMapping(v.into_iter().map(|s| (s.clone(), s)).collect())),
            serde_yaml::Value::Mapping(map) => string_pairs(map, "mapping").map(NameMapping),
            _ => Err(D::Error::custom(
                "expected a name, a list of names, or a map {old: new}",
            )),
        }
    }
}
