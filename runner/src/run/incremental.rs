//! Incremental runs: a node is up to date when a previous successful run
//! recorded the same fingerprint for it and its persisted outputs still have
//! the recorded fingerprints. The fingerprint covers the function (name and
//! version), the node's inputs (parameter values, stored content, or the
//! fingerprint of the node that produced in-memory data) and its outputs'
//! names.
//!
//! The state is an append-only log, `state.jsonl`, one line per completed
//! node, flushed as each node completes: a killed run keeps what it finished.
//! It is compacted (rewritten atomically) at the end of a run.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::bind::BoundNode;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::fingerprint;
use crate::pipeline::is_parameter;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub node: String,
    pub fingerprint: String,
    /// Persisted outputs and their content fingerprints after the run.
    pub outputs: BTreeMap<String, Option<String>>,
}

pub struct State {
    path: PathBuf,
    /// Per node, the latest completed entry (earlier runs, then this one).
    entries: Mutex<HashMap<String, Entry>>,
    log: Mutex<Option<File>>,
}

impl State {
    /// Reads `<dir>/state.jsonl`; unreadable lines (a run killed mid-write) are ignored.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("state.jsonl");
        let mut recorded = HashMap::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                    recorded.insert(entry.node.clone(), entry);
                }
            }
        }
        Ok(State {
            path,
            entries: Mutex::new(recorded),
            log: Mutex::new(None),
        })
    }

    /// The last completed entry of a node. A node is decided before it runs,
    /// so this is always what an earlier run recorded.
    pub fn recorded(&self, node: &str) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }

    /// Appends one completed node to the log, right away.
    pub fn record(&self, entry: Entry) {
        let line = serde_json::to_string(&entry).unwrap_or_default();
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.node.clone(), entry);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.is_none() {
            let opened = std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))
                .and_then(|_| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(file) => *log = Some(file),
                Err(e) => tracing::warn!("cannot write {}: {e}", self.path.display()),
            }
        }
        if let Some(file) = log.as_mut() {
            if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                tracing::warn!("cannot write {}: {e}", self.path.display());
            }
        }
    }

    /// Rewrites the log with one line per node (temporary file + rename).
    pub fn compact(&self) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.is_empty() {
            return;
        }
        let mut names: Vec<&String> = entries.keys().collect();
        names.sort();
        let text: String = names
            .iter()
            .map(|n| serde_json::to_string(&entries[*n]).unwrap_or_default() + "\n")
            .collect();
        let tmp = self.path.with_extension("jsonl.tmp");
        let done = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &self.path));
        if let Err(e) = done {
            tracing::warn!("cannot compact {}: {e}", self.path.display());
        }
    }
}

/// The fingerprint of a bound node given the fingerprints of in-memory
/// inputs (`memory`, by storage name); `None` when an input cannot be
/// fingerprinted, which means the node must run.
pub fn node_fingerprint(
    node: &BoundNode,
    catalog: &Catalog,
    memory: &HashMap<String, String>,
) -> Option<String> {
    let mut parts: Vec<String> = vec![
        "node-v1".into(),
        node.function.name.clone(),
        node.function.version.clone(),
    ];
    for dataset in &node.args {
        let fp = if is_parameter(dataset) {
            fingerprint::of_bytes(catalog.parameter(dataset)?.to_string().as_bytes())
        } else if catalog.is_ephemeral(dataset) {
            memory.get(catalog.storage_name(dataset))?.clone()
        } else {
            catalog.get(dataset)?.fingerprint().ok()??
        };
        parts.push(dataset.clone());
        parts.push(fp);
    }
    parts.push("->".into());
    parts.extend(node.outputs.iter().cloned());
    Some(fingerprint::of_parts(parts.iter().map(String::as_str)))
}

/// The fingerprint standing for an in-memory output of a node.
pub fn memory_fingerprint(node_fingerprint: &str, output: &str) -> String {
    fingerprint::of_parts([node_fingerprint, output])
}

/// Current fingerprints of a node's persisted outputs.
pub fn output_fingerprints(
    node: &BoundNode,
    catalog: &Catalog,
) -> BTreeMap<String, Option<String>> {
    node.outputs
        .iter()
        .filter(|d| !catalog.is_ephemeral(d))
        .map(|d| {
            let fp = catalog
                .get(d)
                .and_then(|ds| ds.fingerprint().ok().flatten());
            (d.clone(), fp)
        })
        .collect()
}

/// Whether a node with this fingerprint is up to date.
pub fn is_up_to_date(state: &State, node: &BoundNode, catalog: &Catalog, fp: &str) -> bool {
    let Some(entry) = state.recorded(&node.node.name) else {
        return false;
    };
    entry.fingerprint == fp
        && output_fingerprints(node, catalog)
            .iter()
            .all(|(d, now)| now.is_some() && entry.outputs.get(d) == Some(now))
}
