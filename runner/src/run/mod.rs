//! Running a pipeline: binding, then a sequential or a parallel executor over
//! one ready-set scheduler.
//!
//! Both executors share the same rules: a node runs once all its parents
//! completed; its outputs are saved as soon as it returns (so a later failure
//! loses nothing); in-memory data is released after its last reader; a
//! failure stops the scheduling of new nodes, lets running ones finish, and
//! reports every failure with the nodes to resume from.

pub mod bind;
pub mod plan;
pub mod resume;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use bind::{bind, BoundNode};
pub use plan::Plan;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::function::FunctionRegistry;
use crate::hooks::{Hooks, RunInfo};
use crate::pipeline::Pipeline;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunnerKind {
    #[default]
    Sequential,
    /// Every ready node at once, on the rayon thread pool.
    Parallel,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub runner: RunnerKind,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
    pub hooks: Hooks,
}

/// What a successful run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Completed nodes in completion order, with their wall time.
    pub completed: Vec<(String, Duration)>,
}

#[derive(Debug, Clone)]
pub struct NodeFailure {
    pub node: String,
    pub message: String,
}

/// Why a run stopped: the failed nodes, and where to resume.
#[derive(Debug, Clone)]
pub struct RunFailure {
    pub failures: Vec<NodeFailure>,
    pub completed: usize,
    pub total: usize,
    /// Names for `--from-nodes`; empty when no node completed.
    pub resume_from: Vec<String>,
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.failures.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "node '{}' failed: {}", failure.node, failure.message)?;
        }
        write!(f, "\n{} of {} nodes completed", self.completed, self.total)
    }
}

/// Checks that everything the pipeline reads from outside exists in the
/// catalog or the parameters.
pub fn check_free_inputs(pipeline: &Pipeline, catalog: &Catalog) -> Result<(), Error> {
    let missing: Vec<String> = pipeline
        .inputs()
        .into_iter()
        .filter(|d| !catalog.can_provide(d))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "Pipeline input(s) {} not found in the catalog or the parameters: declare them in catalog.yml, \
         add them to parameters.yml, or select nodes that produce them",
        crate::pipeline::graph::quoted_list(&missing)
    )))
}

/// Validates and runs a pipeline.
pub fn run(
    pipeline: &Pipeline,
    catalog: &mut Catalog,
    registry: &FunctionRegistry,
    options: &RunOptions,
) -> Result<RunReport, Error> {
    catalog.resolve(&pipeline.datasets())?;
    catalog.check_load_versions(&pipeline.all_outputs())?;
    check_free_inputs(pipeline, catalog)?;
    let bound = bind(pipeline, registry, catalog)?;
    catalog.add_memory_datasets(&pipeline.datasets());
    Executor::new(pipeline, &bound, catalog, options).run()
}

/// Ready-set bookkeeping shared by both executors.
struct Executor<'a> {
    pipeline: &'a Pipeline,
    bound: &'a [BoundNode],
    catalog: &'a Catalog,
    options: &'a RunOptions,
    children: Vec<Vec<usize>>,
    waiting_on: Vec<usize>,
    /// Remaining reads of each dataset before in-memory data can be dropped.
    reads_left: HashMap<&'a str, usize>,
    outputs: BTreeSet<String>,
    done: BTreeSet<usize>,
    report: RunReport,
    failures: Vec<NodeFailure>,
    progress: ProgressBar,
}

fn execute(node: &BoundNode, catalog: &Catalog, hooks: &Hooks) -> Result<Duration, String> {
    let _span = tracing::info_span!("node", name = %node.node.name).entered();
    let result = call_node(node, catalog, hooks);
    match &result {
        Ok(elapsed) => {
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "completed");
            hooks.each(|h| h.after_node_run(&node.node, *elapsed));
        }
        Err(message) => hooks.each(|h| h.on_node_error(&node.node, message)),
    }
    result
}

fn call_node(node: &BoundNode, catalog: &Catalog, hooks: &Hooks) -> Result<Duration, String> {
    hooks.each(|h| h.before_node_run(&node.node));
    let start = Instant::now();
    let mut args = Vec::with_capacity(node.args.len());
    for dataset in &node.args {
        hooks.each(|h| h.before_dataset_load(dataset));
        let data = catalog.load(dataset).map_err(|e| e.to_string())?;
        hooks.each(|h| h.after_dataset_load(dataset, &data));
        args.push(data);
    }
    let results = node
        .function
        .call(&args, node.outputs.len())
        .map_err(|e| match e {
            crate::function::CallError::Argument { index, message } => {
                format!(
                    "input '{}': {message}",
                    node.args.get(index).map_or("?", |s| s.as_str())
                )
            }
            other => other.to_string(),
        })?;
    for (dataset, value) in node.outputs.iter().zip(&results) {
        hooks.each(|h| h.before_dataset_save(dataset, value));
        catalog.save(dataset, value).map_err(|e| e.to_string())?;
        hooks.each(|h| h.after_dataset_save(dataset, value));
    }
    Ok(start.elapsed())
}

impl<'a> Executor<'a> {
    fn new(
        pipeline: &'a Pipeline,
        bound: &'a [BoundNode],
        catalog: &'a Catalog,
        options: &'a RunOptions,
    ) -> Self {
        let n = pipeline.len();
        let mut children = vec![Vec::new(); n];
        let waiting_on: Vec<usize> = (0..n).map(|i| pipeline.parents(i).len()).collect();
        for (i, kids) in (0..n).map(|i| (i, pipeline.parents(i))) {
            for &p in kids {
                children[p].push(i);
            }
        }
        let mut reads_left = HashMap::new();
        for node in pipeline.nodes() {
            let stored: BTreeSet<&str> = node
                .inputs
                .iter()
                .map(|d| catalog.storage_name(d))
                .collect();
            for input in stored {
                *reads_left.entry(input).or_insert(0) += 1;
            }
        }
        let progress = if options.progress && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} nodes {elapsed} {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Executor {
            pipeline,
            bound,
            catalog,
            options,
            children,
            waiting_on,
            reads_left,
            outputs: pipeline
                .outputs()
                .iter()
                .map(|d| catalog.storage_name(d).to_string())
                .collect(),
            done: BTreeSet::new(),
            report: RunReport::default(),
            failures: Vec::new(),
            progress,
        }
    }

    fn run(mut self) -> Result<RunReport, Error> {
        let info = RunInfo {
            run_id: self.catalog.save_version(),
            pipeline: self.pipeline,
            catalog: self.catalog,
        };
        let hooks = &self.options.hooks;
        hooks.each(|h| h.before_pipeline_run(&info));
        match self.options.runner {
            RunnerKind::Sequential => self.run_sequential(),
            RunnerKind::Parallel => self.run_parallel(),
        }
        self.progress.finish_and_clear();
        if self.failures.is_empty() {
            hooks.each(|h| h.after_pipeline_run(&info, &self.report));
            return Ok(self.report);
        }
        let failure = RunFailure {
            failures: std::mem::take(&mut self.failures),
            completed: self.done.len(),
            total: self.pipeline.len(),
            resume_from: resume::nodes_to_resume_from(self.pipeline, &self.done, self.catalog),
        };
        hooks.each(|h| h.on_pipeline_error(&info, &failure));
        Err(Error::Run(failure))
    }

    /// Records a finished node; returns the nodes it made ready.
    fn finish(&mut self, i: usize, result: Result<Duration, String>) -> Vec<usize> {
        let name = &self.pipeline.nodes()[i].name;
        let elapsed = match result {
            Ok(elapsed) => elapsed,
            Err(message) => {
                tracing::debug!(node = %name, "failed: {message}");
                self.failures.push(NodeFailure {
                    node: name.clone(),
                    message,
                });
                return Vec::new();
            }
        };
        self.done.insert(i);
        self.report.completed.push((name.clone(), elapsed));
        self.progress.inc(1);
        self.progress.set_message(name.clone());
        let catalog = self.catalog;
        let stored: BTreeSet<&str> = self.pipeline.nodes()[i]
            .inputs
            .iter()
            .map(|d| catalog.storage_name(d))
            .collect();
        for input in stored {
            if let Some(left) = self.reads_left.get_mut(input) {
                *left -= 1;
                if *left == 0 && !self.outputs.contains(input) && catalog.is_ephemeral(input) {
                    catalog.release(input);
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
        ready
    }

    /// Kedro's SequentialRunner order: the pipeline's execution order.
    fn run_sequential(&mut self) {
        for i in 0..self.pipeline.len() {
            let result = execute(&self.bound[i], self.catalog, &self.options.hooks);
            self.finish(i, result);
            if !self.failures.is_empty() {
                return;
            }
        }
    }

    fn run_parallel(&mut self) {
        let (sender, receiver) = mpsc::channel::<(usize, Result<Duration, String>)>();
        let mut ready: BTreeSet<usize> = (0..self.pipeline.len())
            .filter(|&i| self.waiting_on[i] == 0)
            .collect();
        let bound = self.bound;
        let catalog = self.catalog;
        let hooks = &self.options.hooks;
        rayon::in_place_scope(|scope| {
            let mut running = 0usize;
            loop {
                // A lone ready node with nothing running (a chain) runs right
                // here: handing it to another thread would only add latency.
                while self.failures.is_empty() && running == 0 && ready.len() == 1 {
                    let i = ready.pop_first().expect("one ready node");
                    let result = execute(&bound[i], catalog, hooks);
                    ready.extend(self.finish(i, result));
                }
                if self.failures.is_empty() {
                    while let Some(i) = ready.pop_first() {
                        running += 1;
                        let sender = sender.clone();
                        scope.spawn(move |_| {
                            // The receiver outlives the scope: a send cannot fail.
                            let _ = sender.send((i, execute(&bound[i], catalog, hooks)));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, result)) = receiver.recv() else {
                    break;
                };
                running -= 1;
                ready.extend(self.finish(i, result));
            }
        });
    }
}
