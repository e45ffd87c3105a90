//! Incremental runs: a node is up to date when a previous successful run
//! recorded the same fingerprint for it and its persisted outputs still have
//! the recorded fingerprints. The fingerprint covers the function (name and
//! version), the node's inputs (parameter values, stored content, or the
//! fingerprint of the node that produced in-memory data) and its outputs
//! (names and where they are stored).
//!
//! A node keeps several entries, one per fingerprint: what it read and wrote
//! under one environment or selection does not erase what it did under
//! another, so switching `--env` back and forth reruns nothing that is
//! unchanged.
//!
//! The state is an append-only log, `state.jsonl`, one line per completed
//! node, flushed as each node completes: a killed run keeps what it finished.
//! It is compacted (rewritten atomically) at the end of a run, keeping the
//! latest [`ENTRIES_PER_NODE`] entries of each node.

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
use crate::pipeline::{is_parameter, Pipeline};

/// How many fingerprints of one node the compacted state keeps (the most
/// recent ones): enough for a handful of environments and selections.
pub const ENTRIES_PER_NODE: usize = 8;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub node: String,
    pub fingerprint: String,
    /// Persisted outputs and their content fingerprints after the run.
    pub outputs: BTreeMap<String, Option<String>>,
}

pub struct State {
    path: PathBuf,
    /// Per node, its completed entries, oldest first, one per fingerprint
    /// (earlier runs, then this one).
    entries: Mutex<HashMap<String, Vec<Entry>>>,
    log: Mutex<Option<File>>,
}

/// Adds an entry as the node's latest, replacing one of the same fingerprint.
fn remember(entries: &mut HashMap<String, Vec<Entry>>, entry: Entry) {
    // Most nodes have one entry: no room reserved for more.
    let list = entries
        .entry(entry.node.clone())
        .or_insert_with(|| Vec::with_capacity(1));
    list.retain(|e| e.fingerprint != entry.fingerprint);
    list.push(entry);
}

impl State {
    /// Reads `<dir>/state.jsonl`; unreadable lines (a run killed mid-write) are ignored.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("state.jsonl");
        let mut recorded = HashMap::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                    remember(&mut recorded, entry);
                }
            }
        }
        Ok(State {
            path,
            entries: Mutex::new(recorded),
            log: Mutex::new(None),
        })
    }

    /// The completed entry of a node with this fingerprint. A node is
    /// decided before it runs, so this is always what an earlier run recorded.
    pub fn recorded(&self, node: &str, fingerprint: &str) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)?
            .iter()
            .rev()
            .find(|e| e.fingerprint == fingerprint)
            .cloned()
    }

    /// Appends one completed node to the log, right away.
    pub fn record(&self, entry: Entry) {
        let line = serde_json::to_string(&entry).unwrap_or_default();
        remember(
            &mut self.entries.lock().unwrap_or_else(|p| p.into_inner()),
            entry,
        );
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

    /// Rewrites the log with the latest entries of each node, oldest first
    /// (temporary file + rename).
    pub fn compact(&self) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.is_empty() {
            return;
        }
        let mut names: Vec<&String> = entries.keys().collect();
        names.sort();
        let text: String = names
            .iter()
            .flat_map(|n| {
                let list = &entries[*n];
                list[list.len().saturating_sub(ENTRIES_PER_NODE)..].iter()
            })
            .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
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
        "node-v2".into(),
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
    for output in &node.outputs {
        parts.push(output.clone());
        // Where it is written: two environments that store an output in
        // different places keep an entry each.
        if let Some(location) = catalog.get(output).and_then(|d| d.file_location()) {
            parts.push(location.display());
        }
    }
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
    let Some(entry) = state.recorded(&node.node.name, fp) else {
        return false;
    };
    output_fingerprints(node, catalog)
        .iter()
        .all(|(d, now)| now.is_some() && entry.outputs.get(d) == Some(now))
}

/// What to do with a node that became ready.
pub enum Decision {
    Run,
    /// Up to date; nothing needs its in-memory outputs (yet).
    Skip,
    /// Up to date, but it has in-memory outputs: it runs only if a reader runs.
    Pending,
}

/// Incremental skipping, the policy an executor plugs in when the run keeps
/// state: a ready node whose fingerprint the state holds, with its outputs
/// unchanged, does not run.
pub struct Skipping<'a> {
    state: &'a State,
    /// Run every node, up to date or not (the fingerprints are still recorded).
    force: bool,
    /// Fingerprints standing for in-memory data, by storage name.
    memory_fp: HashMap<String, String>,
}

impl<'a> Skipping<'a> {
    pub fn new(state: &'a State, force: bool) -> Self {
        Skipping {
            state,
            force,
            memory_fp: HashMap::new(),
        }
    }

    /// Decides for a node whose parents were all decided; returns its
    /// fingerprint too, for the state once it ran.
    pub fn decide(
        &mut self,
        pipeline: &Pipeline,
        node: &BoundNode,
        catalog: &Catalog,
    ) -> (Decision, Option<String>) {
        let Some(fp) = node_fingerprint(node, catalog, &self.memory_fp) else {
            return (Decision::Run, None);
        };
        let mut memory_outputs = false;
        for out in node.outputs.iter().filter(|d| catalog.is_ephemeral(d)) {
            memory_outputs |= !pipeline.consumers_of(out).is_empty();
            self.memory_fp.insert(
                catalog.storage_name(out).to_string(),
                memory_fingerprint(&fp, out),
            );
        }
        let fresh = !self.force && is_up_to_date(self.state, node, catalog, &fp);
        let decision = match (fresh, memory_outputs) {
            (false, _) => Decision::Run,
            (true, false) => Decision::Skip,
            (true, true) => Decision::Pending,
        };
        (decision, Some(fp))
    }
}
