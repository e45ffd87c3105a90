//! Running a pipeline: binding, then a sequential or a parallel executor over
//! one ready-set scheduler.
//!
//! Both executors share the same rules: a node runs once all its parents
//! completed; its outputs are saved as soon as it returns (so a later failure
//! loses nothing); in-memory data is released after its last reader; a
//! failure stops the scheduling of new nodes, lets running ones finish, and
//! reports every failure with the nodes to resume from.

pub mod bind;
pub mod incremental;
pub mod plan;
pub mod resume;
mod schedule;
pub mod task;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

pub use bind::{bind, BoundNode};
pub use plan::Plan;
pub use task::{NodeError, NodeIo};

use crate::catalog::Catalog;
use crate::error::Error;
use crate::function::FunctionRegistry;
use crate::hooks::{Hooks, RunInfo};
use crate::pipeline::{is_parameter, Pipeline};
use incremental::{
    is_up_to_date, memory_fingerprint, node_fingerprint, output_fingerprints, Decision, Entry,
    Skipping, State,
};

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
    /// What observes the run (records, timings, a progress bar...).
    pub hooks: Hooks,
    /// Where incremental state lives (`data/09_tracking`); `None` runs everything.
    pub state_dir: Option<PathBuf>,
    /// Run every selected node even when it is up to date.
    pub force: bool,
    /// Relative paths in parameters are relative to it (given to nodes
    /// through their [`crate::NodeContext`]); empty: the working directory.
    pub project_dir: PathBuf,
    /// Set it to ask running nodes to stop (nodes poll it).
    pub cancellation: crate::context::Cancellation,
}

/// What a successful run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Completed nodes in completion order, with their wall time.
    pub completed: Vec<(String, Duration)>,
    /// Nodes that were up to date and did not run.
    pub skipped: Vec<String>,
}

/// A node that failed, and why: its error keeps the function's own error
/// typed (see [`NodeError::find`]).
#[derive(Debug, Clone)]
pub struct NodeFailure {
    pub node: String,
    pub error: Arc<NodeError>,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node '{}' failed: {}", self.node, self.error)
    }
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
            write!(f, "{failure}")?;
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

/// Checks that every free input stored in a file or an object store holds
/// something. A pipeline run on its own (`--pipeline ocr` after
/// `--pipeline detection`) thereby reads what an earlier run persisted, or
/// stops before its first node saying what is missing, never midway.
pub fn check_inputs_stored(pipeline: &Pipeline, catalog: &Catalog) -> Result<(), Error> {
    let mut absent = Vec::new();
    for input in pipeline.inputs().iter().filter(|d| !is_parameter(d)) {
        let Some(location) = catalog.get(input).and_then(|d| d.file_location()) else {
            continue;
        };
        // The dataset's own test: a YOLO folder needs its data.yaml, say.
        if !catalog.exists(input)? {
            absent.push(format!("'{input}' ({})", location.display()));
        }
    }
    if absent.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "Pipeline input(s) {} do not exist yet: run the pipeline that writes them first \
         (or the default pipeline), select the nodes that write them too, or point the \
         catalog at where they are",
        absent.join(", ")
    )))
}

/// Validates and runs a pipeline.
pub fn run(
    pipeline: &Pipeline,
    catalog: &mut Catalog,
    registry: &FunctionRegistry,
    options: &RunOptions,
) -> Result<RunReport, Error> {
    let bound = prepare(pipeline, catalog, registry)?;
    let state = match &options.state_dir {
        Some(dir) => Some(State::open(dir)?),
        None => None,
    };
    let work = Work {
        pipeline,
        bound: &bound,
        catalog,
        hooks: &options.hooks,
        context: crate::context::RunContext {
            project_dir: options.project_dir.clone(),
            run_id: catalog.save_version().to_string(),
            cancellation: options.cancellation.clone(),
        },
        state: state.as_ref(),
        fingerprints: (0..pipeline.len()).map(|_| OnceLock::new()).collect(),
        pending: (0..pipeline.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        materialized: (0..pipeline.len()).map(|_| OnceLock::new()).collect(),
        materialized_times: Mutex::new(Vec::new()),
    };
    let report = Executor::new(pipeline, catalog, options, &work).run();
    if let Some(state) = &state {
        state.compact();
    }
    report
}

/// Everything checked before a run, and by a dry run alike: factory
/// datasets resolved, pinned versions, writable outputs, functions bound
/// and typed, free inputs declared and stored.
pub fn prepare(
    pipeline: &Pipeline,
    catalog: &mut Catalog,
    registry: &FunctionRegistry,
) -> Result<Vec<BoundNode>, Error> {
    catalog.resolve(&pipeline.datasets())?;
    catalog.check_load_versions(&pipeline.all_outputs())?;
    for output in pipeline.all_outputs() {
        let location = catalog.get(&output).and_then(|d| d.file_location());
        if let Some(location) = location.filter(|l| l.is_read_only()) {
            return Err(Error::invalid(format!(
                "dataset '{output}' is written by the pipeline, but {} is read-only (http(s):// stores are read-only): save it elsewhere",
                location.display()
            )));
        }
    }
    // Definition errors (arity, types) first: they hold whatever was run before.
    let bound = bind(pipeline, registry, catalog)?;
    check_parameters(&bound, catalog)?;
    check_free_inputs(pipeline, catalog)?;
    check_inputs_stored(pipeline, catalog)?;
    catalog.add_memory_datasets(&pipeline.datasets());
    Ok(bound)
}

/// Every parameter a node takes deserialises into its argument's type: a
/// bad parameter of the last node stops the run before the first node.
fn check_parameters(bound: &[BoundNode], catalog: &Catalog) -> Result<(), Error> {
    for node in bound {
        for (index, name) in node.args.iter().enumerate() {
            if !crate::pipeline::is_parameter(name) {
                continue;
            }
            // A missing parameter is check_free_inputs' to report.
            let Ok(value) = catalog.load(name) else {
                continue;
            };
            node.function.check_arg(index, &value).map_err(|error| {
                Error::config(
                    catalog.parameter_location(name),
                    format!("node '{}': '{name}': {error}", node.node.name),
                )
            })?;
        }
    }
    Ok(())
}

/// The nodes a run would skip as up to date: those whose fingerprint and
/// outputs match the state and none of whose upstream nodes would run.
pub fn predict_up_to_date(
    pipeline: &Pipeline,
    bound: &[BoundNode],
    catalog: &Catalog,
    state_dir: &std::path::Path,
) -> Vec<String> {
    let Ok(state) = State::open(state_dir) else {
        return Vec::new();
    };
    let mut memory = HashMap::new();
    let mut runs = vec![false; pipeline.len()];
    let mut skipped = Vec::new();
    for (i, node) in bound.iter().enumerate() {
        let fp = node_fingerprint(node, catalog, &memory);
        if let Some(fp) = &fp {
            for out in node.outputs.iter().filter(|d| catalog.is_ephemeral(d)) {
                memory.insert(
                    catalog.storage_name(out).to_string(),
                    memory_fingerprint(fp, out),
                );
            }
        }
        let upstream_runs = pipeline.parents(i).iter().any(|&p| runs[p]);
        let fresh = fp.is_some_and(|fp| is_up_to_date(&state, node, catalog, &fp));
        runs[i] = upstream_runs || !fresh;
        if !runs[i] {
            skipped.push(node.node.name.clone());
        }
    }
    skipped
}

/// How a node's run ended: its wall time, or why it failed.
type NodeResult = Result<Duration, Arc<NodeError>>;

/// What worker threads share: running a node, first re-running any
/// up-to-date producer whose in-memory output it needs.
struct Work<'a> {
    pipeline: &'a Pipeline,
    bound: &'a [BoundNode],
    catalog: &'a Catalog,
    hooks: &'a Hooks,
    context: crate::context::RunContext,
    state: Option<&'a State>,
    fingerprints: Vec<OnceLock<String>>,
    pending: Vec<AtomicBool>,
    materialized: Vec<OnceLock<NodeResult>>,
    /// Pending nodes that a reader made run, with their time.
    materialized_times: Mutex<Vec<(usize, Duration)>>,
}

impl Work<'_> {
    fn run_node(&self, i: usize) -> NodeResult {
        let node = &self.bound[i];
        for input in node
            .args
            .iter()
            .filter(|d| !is_parameter(d) && self.catalog.is_ephemeral(d))
        {
            if let Some(p) = self.pipeline.producer_of(input) {
                if self.pending[p].load(Ordering::SeqCst) {
                    self.materialize(p).map_err(|source| {
                        Arc::new(NodeError::Upstream {
                            node: self.bound[p].node.name.clone(),
                            source,
                        })
                    })?;
                }
            }
        }
        let result =
            task::run_node(node, self.catalog, self.hooks, &self.context).map_err(Arc::new);
        if let (Ok(_), Some(state), Some(fp)) = (&result, self.state, self.fingerprints[i].get()) {
            state.record(Entry {
                node: node.node.name.clone(),
                fingerprint: fp.clone(),
                outputs: output_fingerprints(node, self.catalog),
            });
        }
        result
    }

    fn materialize(&self, p: usize) -> NodeResult {
        self.materialized[p]
            .get_or_init(|| {
                let result = self.run_node(p);
                if let Ok(elapsed) = &result {
                    self.materialized_times
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((p, *elapsed));
                }
                result
            })
            .clone()
    }
}

/// Ready-set bookkeeping shared by both executors.
struct Executor<'a> {
    pipeline: &'a Pipeline,
    catalog: &'a Catalog,
    options: &'a RunOptions,
    work: &'a Work<'a>,
    schedule: schedule::Schedule,
    outputs: BTreeSet<String>,
    /// Up-to-date nodes are skipped when the run keeps state.
    skipping: Option<Skipping<'a>>,
    done: BTreeSet<usize>,
    report: RunReport,
    failures: Vec<NodeFailure>,
}

impl<'a> Executor<'a> {
    fn new(
        pipeline: &'a Pipeline,
        catalog: &'a Catalog,
        options: &'a RunOptions,
        work: &'a Work<'a>,
    ) -> Self {
        Executor {
            pipeline,
            catalog,
            options,
            work,
            schedule: schedule::Schedule::new(pipeline, |d| catalog.storage_name(d).to_string()),
            outputs: pipeline
                .outputs()
                .iter()
                .map(|d| catalog.storage_name(d).to_string())
                .collect(),
            skipping: work.state.map(|state| Skipping::new(state, options.force)),
            done: BTreeSet::new(),
            report: RunReport::default(),
            failures: Vec::new(),
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
        // Up-to-date nodes that no reader needed after all are skipped.
        let ran: BTreeSet<usize> = {
            let times = self
                .work
                .materialized_times
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for &(i, elapsed) in times.iter() {
                self.report
                    .completed
                    .push((self.pipeline.nodes()[i].name.clone(), elapsed));
            }
            times.iter().map(|(i, _)| *i).collect()
        };
        for i in 0..self.pipeline.len() {
            if self.work.pending[i].load(Ordering::SeqCst) && !ran.contains(&i) {
                let node = &self.pipeline.nodes()[i];
                hooks.each(|h| h.on_node_skipped(node));
                self.report.skipped.push(node.name.clone());
            }
        }
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

    /// Decides whether a ready node runs: always, unless the run skips
    /// up-to-date nodes (the plugged-in [`Skipping`] policy).
    fn decide(&mut self, i: usize) -> Decision {
        let Some(skipping) = &mut self.skipping else {
            return Decision::Run;
        };
        let (decision, fingerprint) =
            skipping.decide(self.pipeline, &self.work.bound[i], self.catalog);
        if let Some(fp) = fingerprint {
            let _ = self.work.fingerprints[i].set(fp);
        }
        decision
    }

    /// Handles a node that does not run now; returns the nodes it made ready.
    fn pass(&mut self, i: usize, decision: Decision) -> Vec<usize> {
        match decision {
            Decision::Pending => self.work.pending[i].store(true, Ordering::SeqCst),
            _ => {
                let node = &self.pipeline.nodes()[i];
                self.options.hooks.each(|h| h.on_node_skipped(node));
                self.report.skipped.push(node.name.clone());
            }
        }
        self.finish(i, None)
    }

    /// Records a finished node (`None`: not run); returns the nodes it made ready.
    fn finish(&mut self, i: usize, result: Option<NodeResult>) -> Vec<usize> {
        let name = &self.pipeline.nodes()[i].name;
        match result {
            Some(Err(error)) => {
                tracing::debug!(node = %name, "failed: {error}");
                self.failures.push(NodeFailure {
                    node: name.clone(),
                    error,
                });
                return Vec::new();
            }
            Some(Ok(elapsed)) => self.report.completed.push((name.clone(), elapsed)),
            None => {}
        }
        self.done.insert(i);
        // A pending node may still run for a reader: keep what it reads.
        let reads_done = !self.work.pending[i].load(Ordering::SeqCst);
        let (ready, drained) = self.schedule.complete(i, reads_done);
        for input in drained {
            if !self.outputs.contains(&input) && self.catalog.is_ephemeral(&input) {
                self.catalog.release(&input);
            }
        }
        ready
    }

    /// Kedro's SequentialRunner order: the pipeline's execution order.
    fn run_sequential(&mut self) {
        for i in 0..self.pipeline.len() {
            match self.decide(i) {
                Decision::Run => {
                    let result = self.work.run_node(i);
                    self.finish(i, Some(result));
                }
                other => {
                    self.pass(i, other);
                }
            }
            if !self.failures.is_empty() {
                return;
            }
        }
    }

    fn run_parallel(&mut self) {
        let (sender, receiver) = mpsc::channel::<(usize, NodeResult)>();
        let mut ready: BTreeSet<usize> = self.schedule.initially_ready().into_iter().collect();
        // Skipped and pending nodes are settled here; the rest wait to run.
        let mut runnable: BTreeSet<usize> = BTreeSet::new();
        let mut running = 0usize;
        let work = self.work;
        rayon::in_place_scope(|scope| loop {
            while let Some(i) = ready.pop_first() {
                match self.decide(i) {
                    Decision::Run => {
                        runnable.insert(i);
                    }
                    other => ready.extend(self.pass(i, other)),
                }
            }
            // A lone runnable node with nothing running (a chain) runs right
            // here: handing it to another thread would only add latency.
            if self.failures.is_empty() && running == 0 && runnable.len() == 1 {
                let i = runnable.pop_first().expect("one runnable node");
                let result = work.run_node(i);
                ready.extend(self.finish(i, Some(result)));
                continue;
            }
            if self.failures.is_empty() {
                while let Some(i) = runnable.pop_first() {
                    running += 1;
                    let sender = sender.clone();
                    scope.spawn(move |_| {
                        // The receiver outlives the scope: a send cannot fail.
                        let _ = sender.send((i, work.run_node(i)));
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
            ready.extend(self.finish(i, Some(result)));
        });
    }
}
