//! Hooks: code that observes a run at Kedro's hook points (pipeline, node,
//! dataset). Hooks may watch and record; they never schedule. Two ship
//! with the runner: [`RunRecords`] and [`TimingSummary`]. The program that
//! embeds the runner decides which are active.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::data::Data;
use crate::pipeline::{Node, Pipeline};
use crate::run::{NodeError, RunFailure, RunReport};

/// What a hook learns about the run as a whole.
pub struct RunInfo<'a> {
    /// Unique and sortable: the run's save version.
    pub run_id: &'a str,
    pub pipeline: &'a Pipeline,
    pub catalog: &'a Catalog,
}

/// Kedro's hook points, all optional. Called from worker threads.
pub trait Hook: Send + Sync {
    fn before_pipeline_run(&self, _run: &RunInfo<'_>) {}
    fn after_pipeline_run(&self, _run: &RunInfo<'_>, _report: &RunReport) {}
    fn on_pipeline_error(&self, _run: &RunInfo<'_>, _failure: &RunFailure) {}
    fn before_node_run(&self, _node: &Node) {}
    fn after_node_run(&self, _node: &Node, _elapsed: Duration) {}
    /// A node that was up to date and did not run.
    fn on_node_skipped(&self, _node: &Node) {}
    fn on_node_error(&self, _node: &Node, _error: &NodeError) {}
    /// A running node said how far it is (see [`crate::context::NodeContext`]).
    fn on_node_progress(&self, _node: &Node, _done: u64, _total: u64) {}
    fn before_dataset_load(&self, _dataset: &str) {}
    fn after_dataset_load(&self, _dataset: &str, _data: &Data) {}
    fn before_dataset_save(&self, _dataset: &str, _data: &Data) {}
    fn after_dataset_save(&self, _dataset: &str, _data: &Data) {}
}

/// The active hooks of a run, called in registration order.
#[derive(Clone, Default)]
pub struct Hooks(pub Vec<Arc<dyn Hook>>);

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hooks({})", self.0.len())
    }
}

impl Hooks {
    pub fn each(&self, call: impl Fn(&dyn Hook)) {
        for hook in &self.0 {
            call(hook.as_ref());
        }
    }
}

#[derive(Clone, Debug, Serialize)]
struct NodeRecord {
    node: String,
    status: &'static str,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Writes `<dir>/<run id>.json` after every run: the command, the git
/// commit, the parameters, each node's status and duration, and the size of
/// every persisted output.
pub struct RunRecords {
    dir: PathBuf,
    command: String,
    git_commit: Option<String>,
    nodes: Mutex<Vec<NodeRecord>>,
}

impl RunRecords {
    pub fn new(dir: PathBuf, command: String, git_commit: Option<String>) -> Self {
        RunRecords {
            dir,
            command,
            git_commit,
            nodes: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, record: NodeRecord) {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }

    fn write(&self, run: &RunInfo<'_>, status: &str) {
        let sizes: BTreeMap<String, Option<u64>> = run
            .pipeline
            .all_outputs()
            .into_iter()
            .filter(|d| run.catalog.is_declared(d))
            .map(|d| {
                let size = run.catalog.get(&d).and_then(|ds| ds.size_bytes());
                (d, size)
            })
            .collect();
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        // Streamed to the file: a run of 10,000 nodes never holds its record
        // as a JSON tree or a string.
        let record = RunRecord {
            run_id: run.run_id,
            status,
            command: &self.command,
            git_commit: &self.git_commit,
            parameters: run.catalog.parameter("parameters").unwrap_or(Value::Null),
            nodes: &nodes,
            dataset_bytes: sizes,
        };
        let path = self.dir.join(format!("{}.json", run.run_id));
        let written = std::fs::create_dir_all(&self.dir).and_then(|_| {
            let tmp = self.dir.join(format!(".{}.json.tmp", run.run_id));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            serde_json::to_writer_pretty(&mut out, &record)?;
            out.into_inner().map_err(|e| e.into_error())?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = written {
            tracing::warn!("cannot write the run record {}: {e}", path.display());
        }
    }
}

/// One run's record file (`runs/<run id>.json`).
#[derive(Serialize)]
struct RunRecord<'a> {
    run_id: &'a str,
    status: &'a str,
    command: &'a str,
    git_commit: &'a Option<String>,
    parameters: Value,
    nodes: &'a [NodeRecord],
    dataset_bytes: BTreeMap<String, Option<u64>>,
}

impl Hook for RunRecords {
    fn after_node_run(&self, node: &Node, elapsed: Duration) {
        self.push(NodeRecord {
            node: node.name.clone(),
            status: "completed",
            duration_ms: elapsed.as_secs_f64() * 1e3,
            error: None,
        });
    }
    fn on_node_skipped(&self, node: &Node) {
        self.push(NodeRecord {
            node: node.name.clone(),
            status: "up to date",
            duration_ms: 0.0,
            error: None,
        });
    }
    fn on_node_error(&self, node: &Node, error: &NodeError) {
        self.push(NodeRecord {
            node: node.name.clone(),
            status: "failed",
            duration_ms: 0.0,
            error: Some(error.to_string()),
        });
    }
    fn after_pipeline_run(&self, run: &RunInfo<'_>, _report: &RunReport) {
        self.write(run, "completed");
    }
    fn on_pipeline_error(&self, run: &RunInfo<'_>, _failure: &RunFailure) {
        self.write(run, "failed");
    }
}

/// Prints the slowest nodes at the end of a run.
pub struct TimingSummary {
    top: usize,
    times: Mutex<Vec<(String, Duration)>>,
}

impl TimingSummary {
    pub fn new(top: usize) -> Self {
        TimingSummary {
            top,
            times: Mutex::new(Vec::new()),
        }
    }

    /// The summary text: slowest first.
    pub fn render(&self) -> String {
        let mut times = self.times.lock().unwrap_or_else(|p| p.into_inner()).clone();
        times.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: Duration = times.iter().map(|(_, d)| *d).sum();
        let mut out = format!(
            "slowest nodes (of {} run, {:.2?} in nodes):\n",
            times.len(),
            total
        );
        for (name, d) in times.iter().take(self.top) {
            let share = if total.is_zero() {
                0.0
            } else {
                d.as_secs_f64() / total.as_secs_f64() * 100.0
            };
            out.push_str(&format!("  {:>10.2?}  {share:>5.1}%  {name}\n", d));
        }
        out
    }
}

impl Hook for TimingSummary {
    fn after_node_run(&self, node: &Node, elapsed: Duration) {
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((node.name.clone(), elapsed));
    }
    fn after_pipeline_run(&self, _run: &RunInfo<'_>, _report: &RunReport) {
        if !self
            .times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            eprint!("{}", self.render());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    fn node(name: &str) -> Node {
        Node {
            name: name.into(),
            func: "noop".into(),
            inputs: vec![],
            input_keys: None,
            outputs: vec!["x".into()],
            output_keys: None,
            tags: Default::default(),
            namespace: None,
            origin: Location::default(),
        }
    }

    #[test]
    fn timing_summary_lists_the_slowest_first() {
        let timing = TimingSummary::new(2);
        timing.after_node_run(&node("fast"), Duration::from_millis(10));
        timing.after_node_run(&node("slow"), Duration::from_millis(30));
        timing.after_node_run(&node("mid"), Duration::from_millis(20));
        let text = timing.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("slowest nodes (of 3 run"), "{text}");
        assert!(lines[1].ends_with("50.0%  slow"), "{text}");
        assert!(lines[2].ends_with("mid"), "{text}");
        assert_eq!(lines.len(), 3, "top 2 only");
        assert_eq!(format!("{:?}", Hooks(vec![Arc::new(timing)])), "Hooks(1)");
    }
}
