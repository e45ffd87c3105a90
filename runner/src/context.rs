//! What a node may know of the run it is part of, taken as an argument:
//! `fn train(data: SignDataset, ctx: NodeContext)`. A context argument
//! reads no dataset (it is not named in `inputs:`); the runner fills it.
//!
//! This is a node's only way to the project folder, the run's id, its
//! progress and its cancellation: nodes never read the environment.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::hooks::Hooks;
use crate::pipeline::Node;

/// A flag that asks running nodes to stop: set by whoever drives the run
/// (a server whose client left, a deadline), polled by long nodes.
#[derive(Clone, Debug, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the driver of a run gives every node: the same for all its nodes.
#[derive(Clone, Debug, Default)]
pub struct RunContext {
    /// Relative paths in parameters are relative to it; empty: the
    /// working directory.
    pub project_dir: PathBuf,
    /// The run's id (its save version), or a request's.
    pub run_id: String,
    pub cancellation: Cancellation,
}

/// One node's view of its run (see the module's documentation).
#[derive(Clone, Debug)]
pub struct NodeContext {
    run: RunContext,
    node: Arc<Node>,
    hooks: Hooks,
}

impl NodeContext {
    pub fn new(run: RunContext, node: Arc<Node>, hooks: Hooks) -> Self {
        NodeContext { run, node, hooks }
    }

    /// A context for calling a function outside any run (tests, tools).
    pub fn detached(run: RunContext) -> Self {
        NodeContext {
            run,
            node: Arc::new(Node::named("detached")),
            hooks: Hooks::default(),
        }
    }

    pub fn project_dir(&self) -> &Path {
        &self.run.project_dir
    }

    /// `path` from a parameter: relative paths are the project's.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match path.is_relative() {
            true => self.run.project_dir.join(path),
            false => path.to_path_buf(),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The node's name in the pipeline.
    pub fn node_name(&self) -> &str {
        &self.node.name
    }

    pub fn cancellation(&self) -> &Cancellation {
        &self.run.cancellation
    }

    pub fn is_cancelled(&self) -> bool {
        self.run.cancellation.is_cancelled()
    }

    /// Tells the run's hooks how far the node is (`done` of `total` steps).
    pub fn report_progress(&self, done: u64, total: u64) {
        self.hooks
            .each(|h| h.on_node_progress(&self.node, done, total));
    }
}
