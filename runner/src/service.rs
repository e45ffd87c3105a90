//! Serving a pipeline: start once, then run it per request in memory.
//!
//! A service splits a pipeline at its *request inputs* (datasets that come
//! with requests, such as an uploaded image or video: each request brings
//! those its nodes read). Nodes that do not depend on
//! a request input — loading a model, configuring an engine — run once, in
//! [`PipelineService::start`]; their results and every catalog dataset the
//! per-request nodes read are kept in memory. [`PipelineService::call`] then
//! runs only the nodes needed for the outputs asked for, sequentially on the
//! calling thread, and saves nothing: a request's data lives and dies with it.
//!
//! The service knows nothing of HTTP; a server decides which thread calls it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::context::{Cancellation, RunContext};
use crate::data::{Data, TypeDesc};
use crate::error::Error;
use crate::function::FunctionRegistry;
use crate::hooks::Hooks;
use crate::pipeline::Pipeline;
use crate::run::task::{self, NodeIo};
use crate::run::{bind, BoundNode, NodeFailure};

/// A pipeline ready to answer requests.
pub struct PipelineService {
    /// Per-request nodes, in execution order.
    nodes: Vec<BoundNode>,
    /// What start-up loaded or computed, by dataset name.
    resident: HashMap<String, Data>,
    /// Request inputs and the type each must carry.
    inputs: Vec<(String, TypeDesc)>,
    options: ServiceOptions,
}

/// How a service runs its nodes.
#[derive(Clone, Debug, Default)]
pub struct ServiceOptions {
    /// What observes every node the service runs, at start-up and per request.
    pub hooks: Hooks,
    /// Relative paths in parameters are relative to it (see [`crate::NodeContext`]).
    pub project_dir: std::path::PathBuf,
}

/// What one call brings besides its inputs.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Set by the caller to ask the request's nodes to stop (its client
    /// left, its deadline passed); long nodes poll it through their context.
    pub cancellation: Cancellation,
    /// Observe this call's nodes after the service's own (a request's
    /// progress, say).
    pub hooks: Hooks,
}

/// A request the served pipeline cannot take: the caller's mistake.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("request input '{name}' is missing")]
    MissingInput { name: String },
    #[error("request input '{name}' must be {wanted}, not {given}")]
    WrongType {
        name: String,
        wanted: TypeDesc,
        given: TypeDesc,
    },
    #[error("'{name}' is not an output of the served pipeline")]
    UnknownOutput { name: String },
}

/// A failed call: a request the pipeline cannot take, or a node that failed
/// (its error typed: see [`crate::run::NodeError::find`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailure {
    #[error(transparent)]
    Request(RequestError),
    #[error("{0}")]
    Node(NodeFailure),
}

/// A node's I/O in a service: the request's values, then what start-up
/// made resident. Nothing is persisted: the outputs are handed back to the
/// caller, and a request's data lives and dies with it.
struct InMemory<'a> {
    values: &'a HashMap<String, Data>,
    resident: &'a HashMap<String, Data>,
    produced: std::sync::Mutex<Vec<(String, Data)>>,
}

impl<'a> InMemory<'a> {
    fn new(values: &'a HashMap<String, Data>, resident: &'a HashMap<String, Data>) -> Self {
        InMemory {
            values,
            resident,
            produced: Default::default(),
        }
    }
}

impl NodeIo for InMemory<'_> {
    fn load(&self, dataset: &str) -> Result<Data, Error> {
        self.values
            .get(dataset)
            .or_else(|| self.resident.get(dataset))
            .cloned()
            .ok_or_else(|| Error::dataset(dataset, "no value in this request"))
    }
    fn save(&self, dataset: &str, data: &Data) -> Result<(), Error> {
        self.produced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((dataset.to_string(), data.clone()));
        Ok(())
    }
}

/// Runs `node` on `values` (then `resident`); returns its outputs by name.
fn run_node(
    node: &BoundNode,
    values: &HashMap<String, Data>,
    resident: &HashMap<String, Data>,
    hooks: &Hooks,
    run: &RunContext,
) -> Result<Vec<(String, Data)>, NodeFailure> {
    let io = InMemory::new(values, resident);
    task::run_node(node, &io, hooks, run).map_err(|error| NodeFailure {
        node: node.node.name.clone(),
        error: Arc::new(error),
    })?;
    Ok(io.produced.into_inner().unwrap_or_else(|p| p.into_inner()))
}

impl PipelineService {
    /// Checks the pipeline (functions, arity, types, including the type of
    /// each request input against the arguments that read it), runs the
    /// start-up nodes and loads the catalog datasets the requests read.
    /// `options.hooks` observe every node it runs, now and per request.
    pub fn start(
        pipeline: &Pipeline,
        catalog: &mut Catalog,
        registry: &FunctionRegistry,
        request_inputs: &[(&str, TypeDesc)],
        options: ServiceOptions,
    ) -> Result<PipelineService, Error> {
        let free = pipeline.inputs();
        for (name, _) in request_inputs {
            if !free.contains(*name) {
                return Err(Error::invalid(format!(
                    "request input '{name}' is not an input of the pipeline (its inputs: {})",
                    free.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let request: BTreeSet<&str> = request_inputs.iter().map(|(n, _)| *n).collect();
        catalog.resolve(&pipeline.datasets())?;
        let missing: Vec<String> = free
            .iter()
            .filter(|d| !request.contains(d.as_str()) && !catalog.can_provide(d))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "pipeline input(s) {} are neither request inputs nor in the catalog or the parameters",
                crate::pipeline::graph::quoted_list(&missing)
            )));
        }
        let bound = bind(pipeline, registry, catalog)?;
        for node in &bound {
            let wanted = node.function.arg_types();
            for (i, dataset) in node.args.iter().enumerate() {
                let Some((_, given)) = request_inputs.iter().find(|(n, _)| *n == dataset) else {
                    continue;
                };
                if let Some(Some(wanted)) = wanted.as_ref().map(|t| t[i]) {
                    if wanted != *given {
                        return Err(Error::config(
                            node.node.origin.clone(),
                            format!(
                                "type mismatch in node '{}': argument {} of '{}' wants {wanted}, but request input '{dataset}' is {given}",
                                node.node.name,
                                i + 1,
                                node.node.func
                            ),
                        ));
                    }
                }
            }
        }

        // A node is per-request when it reads a request input or the output
        // of a per-request node (nodes come in execution order).
        let mut tainted: BTreeSet<String> = request.iter().map(|s| s.to_string()).collect();
        let (mut per_request, mut startup) = (Vec::new(), Vec::new());
        for node in bound {
            if node.args.iter().any(|a| tainted.contains(a)) {
                tainted.extend(node.outputs.iter().cloned());
                per_request.push(node);
            } else {
                startup.push(node);
            }
        }

        let mut resident: HashMap<String, Data> = HashMap::new();
        let load = |resident: &mut HashMap<String, Data>, name: &str| -> Result<(), Error> {
            if !resident.contains_key(name) && !tainted.contains(name) {
                let data = catalog.load(name)?;
                resident.insert(name.to_string(), data);
            }
            Ok(())
        };
        let empty = HashMap::new();
        let run = RunContext {
            project_dir: options.project_dir.clone(),
            ..Default::default()
        };
        for node in &startup {
            for arg in &node.args {
                load(&mut resident, arg)?;
            }
            let outputs =
                run_node(node, &empty, &resident, &options.hooks, &run).map_err(|failure| {
                    Error::Run(crate::run::RunFailure {
                        failures: vec![failure],
                        completed: 0,
                        total: startup.len(),
                        resume_from: Vec::new(),
                    })
                })?;
            resident.extend(outputs);
        }
        for node in &per_request {
            for arg in &node.args {
                load(&mut resident, arg)?;
            }
        }
        Ok(PipelineService {
            nodes: per_request,
            resident,
            inputs: request_inputs
                .iter()
                .map(|(n, t)| (n.to_string(), *t))
                .collect(),
            options,
        })
    }

    /// Names of the datasets a call can return.
    pub fn outputs(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(String::as_str))
    }

    /// A dataset computed or loaded at start-up.
    pub fn resident(&self, name: &str) -> Option<&Data> {
        self.resident.get(name)
    }

    /// Runs, on the calling thread, the nodes needed for `wanted` from the
    /// request's `inputs`, and returns the wanted datasets.
    pub fn call(
        &self,
        inputs: HashMap<String, Data>,
        wanted: &[&str],
    ) -> Result<HashMap<String, Data>, CallFailure> {
        self.call_with(inputs, wanted, &CallOptions::default())
    }

    /// [`PipelineService::call`], with what this request brings besides
    /// its inputs: a flag to stop its nodes and hooks of its own. A request
    /// must provide the request inputs its nodes read; others it gives are
    /// type-checked and unused.
    pub fn call_with(
        &self,
        inputs: HashMap<String, Data>,
        wanted: &[&str],
        options: &CallOptions,
    ) -> Result<HashMap<String, Data>, CallFailure> {
        // Walk back from the wanted outputs to the nodes that make them.
        let mut needed: BTreeSet<&str> = BTreeSet::new();
        for name in wanted {
            let known = self.resident.contains_key(*name)
                || inputs.contains_key(*name)
                || self.outputs().any(|o| o == *name);
            if !known {
                return Err(CallFailure::Request(RequestError::UnknownOutput {
                    name: name.to_string(),
                }));
            }
            needed.insert(name);
        }
        let mut run = vec![false; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate().rev() {
            if node.outputs.iter().any(|o| needed.contains(o.as_str())) {
                run[i] = true;
                needed.extend(node.args.iter().map(String::as_str));
            }
        }
        for (name, desc) in &self.inputs {
            match inputs.get(name) {
                None if needed.contains(name.as_str()) => {
                    return Err(CallFailure::Request(RequestError::MissingInput {
                        name: name.clone(),
                    }))
                }
                Some(data) if data.type_desc() != *desc => {
                    return Err(CallFailure::Request(RequestError::WrongType {
                        name: name.clone(),
                        wanted: *desc,
                        given: data.type_desc(),
                    }))
                }
                _ => {}
            }
        }
        // The service's hooks, then the call's own (none: no copy).
        let with_call_hooks;
        let hooks = match options.hooks.0.is_empty() {
            true => &self.options.hooks,
            false => {
                with_call_hooks = Hooks(
                    (self.options.hooks.0.iter())
                        .chain(&options.hooks.0)
                        .cloned()
                        .collect(),
                );
                &with_call_hooks
            }
        };
        let context = RunContext {
            project_dir: self.options.project_dir.clone(),
            run_id: String::new(),
            cancellation: options.cancellation.clone(),
        };
        let mut values = inputs;
        for (node, _) in self.nodes.iter().zip(&run).filter(|(_, run)| **run) {
            let outputs = run_node(node, &values, &self.resident, hooks, &context)
                .map_err(CallFailure::Node)?;
            values.extend(outputs);
        }
        Ok(wanted
            .iter()
            .filter_map(|name| {
                values
                    .get(*name)
                    .or_else(|| self.resident.get(*name))
                    .map(|d| (name.to_string(), d.clone()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::catalog::DatasetTypes;
    use crate::config::{LoadOptions, ProjectConfig};
    use crate::pipeline::PipelineBuilder;

    static LOADS: AtomicUsize = AtomicUsize::new(0);

    fn load_model(scale: crate::Params<i64>) -> i64 {
        LOADS.fetch_add(1, Ordering::SeqCst);
        scale.0 * 10
    }
    #[derive(Debug, thiserror::Error)]
    #[error("zero is not allowed")]
    struct ZeroRequest;

    fn nonzero_param(value: crate::Params<i64>) -> Result<i64, ZeroRequest> {
        fail_on_zero(value.0)
    }
    fn score(model: i64, request: i64) -> i64 {
        model + request
    }
    fn describe(score: i64) -> String {
        format!("score {score}")
    }
    fn fail_on_zero(request: i64) -> Result<i64, ZeroRequest> {
        if request == 0 {
            Err(ZeroRequest)
        } else {
            Ok(request)
        }
    }

    fn registry() -> FunctionRegistry {
        let mut r = FunctionRegistry::new();
        r.register("load_model", load_model);
        r.register("score", score);
        r.register("describe", describe);
        r.register("fail_on_zero", fail_on_zero);
        r.register("nonzero_param", nonzero_param);
        r
    }

    fn service(yaml: &str, inputs: &[(&str, TypeDesc)]) -> Result<PipelineService, Error> {
        service_with(yaml, inputs, ServiceOptions::default())
    }

    fn service_with(
        yaml: &str,
        inputs: &[(&str, TypeDesc)],
        options: ServiceOptions,
    ) -> Result<PipelineService, Error> {
        start_with(yaml, &registry(), inputs, options)
    }

    fn start_with(
        yaml: &str,
        registry: &FunctionRegistry,
        inputs: &[(&str, TypeDesc)],
        options: ServiceOptions,
    ) -> Result<PipelineService, Error> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pipelines.yml"), yaml).unwrap();
        std::fs::write(dir.path().join("parameters.yml"), "scale: 4\nzero: 0\n").unwrap();
        std::fs::write(dir.path().join("catalog.yml"), "{}\n").unwrap();
        let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        let pipeline = PipelineBuilder::new(&config)
            .build(&["serve".to_string()])
            .unwrap();
        let mut catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
        PipelineService::start(&pipeline, &mut catalog, registry, inputs, options)
    }

    const SERVE: &str = r#"
pipelines:
  serve:
    nodes:
      - {func: load_model, inputs: "params:scale", outputs: model}
      - {func: score, inputs: [model, request], outputs: scored}
      - {func: describe, inputs: scored, outputs: text}
      - {func: fail_on_zero, inputs: request, outputs: checked}
"#;

    fn request(v: i64) -> HashMap<String, Data> {
        HashMap::from([("request".to_string(), Data::new(v))])
    }

    #[test]
    fn start_up_nodes_run_once_and_requests_reuse_them() {
        let before = LOADS.load(Ordering::SeqCst);
        let svc = service(SERVE, &[("request", TypeDesc::of::<i64>())]).unwrap();
        assert_eq!(LOADS.load(Ordering::SeqCst), before + 1);
        assert_eq!(
            svc.resident("model").unwrap().downcast_ref::<i64>(),
            Some(&40)
        );
        for v in [1, 2, 3] {
            let out = svc.call(request(v), &["text"]).unwrap();
            let text = out["text"].downcast_ref::<String>().unwrap();
            assert_eq!(text, &format!("score {}", 40 + v));
        }
        assert_eq!(LOADS.load(Ordering::SeqCst), before + 1);
        let outputs: Vec<&str> = svc.outputs().collect();
        assert_eq!(outputs, ["checked", "scored", "text"]);
    }

    #[test]
    fn only_the_nodes_needed_run() {
        let svc = service(SERVE, &[("request", TypeDesc::of::<i64>())]).unwrap();
        // fail_on_zero would fail on 0, but "scored" does not need it.
        let out = svc.call(request(0), &["scored"]).unwrap();
        assert_eq!(out["scored"].downcast_ref::<i64>(), Some(&40));
        let failure = svc.call(request(0), &["checked"]).unwrap_err();
        let CallFailure::Node(node) = &failure else {
            panic!("{failure}");
        };
        assert_eq!(node.node, "fail_on_zero");
        assert!(node.error.find::<ZeroRequest>().is_some(), "{failure:?}");
        assert_eq!(
            failure.to_string(),
            "node 'fail_on_zero' failed: zero is not allowed"
        );
    }

    #[derive(Default)]
    struct NodeLog(std::sync::Mutex<Vec<String>>);

    impl crate::hooks::Hook for NodeLog {
        fn after_node_run(&self, node: &crate::pipeline::Node, _: std::time::Duration) {
            self.0.lock().unwrap().push(node.name.clone());
        }
        fn on_node_error(&self, node: &crate::pipeline::Node, _: &crate::run::NodeError) {
            self.0.lock().unwrap().push(format!("{} failed", node.name));
        }
    }

    #[test]
    fn hooks_observe_start_up_and_every_request() {
        let log = Arc::new(NodeLog::default());
        let options = ServiceOptions {
            hooks: Hooks(vec![log.clone()]),
            ..Default::default()
        };
        let svc = service_with(SERVE, &[("request", TypeDesc::of::<i64>())], options).unwrap();
        svc.call(request(1), &["text"]).unwrap();
        svc.call(request(0), &["checked"]).unwrap_err();
        assert_eq!(
            *log.0.lock().unwrap(),
            ["load_model", "score", "describe", "fail_on_zero failed"]
        );
    }

    #[test]
    fn bad_requests_are_named() {
        let svc = service(SERVE, &[("request", TypeDesc::of::<i64>())]).unwrap();
        let missing = svc.call(HashMap::new(), &["text"]).unwrap_err();
        assert!(matches!(
            &missing,
            CallFailure::Request(RequestError::MissingInput { name }) if name == "request"
        ));
        assert!(
            missing.to_string().contains("'request' is missing"),
            "{missing}"
        );
        let typed = svc
            .call(
                HashMap::from([("request".into(), Data::new("x".to_string()))]),
                &["text"],
            )
            .unwrap_err();
        assert!(
            typed.to_string().contains("must be i64, not String"),
            "{typed}"
        );
        let unknown = svc.call(request(1), &["nothing"]).unwrap_err();
        assert!(
            unknown.to_string().contains("'nothing' is not an output"),
            "{unknown}"
        );
    }

    fn count_down(steps: i64, ctx: crate::NodeContext) -> Result<i64, ZeroRequest> {
        for done in 1..=steps {
            if ctx.is_cancelled() {
                return Err(ZeroRequest);
            }
            ctx.report_progress(done as u64, steps as u64);
        }
        Ok(steps)
    }

    #[derive(Default)]
    struct ProgressLog(std::sync::Mutex<Vec<(u64, u64)>>);

    impl crate::hooks::Hook for ProgressLog {
        fn on_node_progress(&self, _: &crate::pipeline::Node, done: u64, total: u64) {
            self.0.lock().unwrap().push((done, total));
        }
    }

    const TWO_REQUESTS: &str = r#"
pipelines:
  serve:
    nodes:
      - {func: load_model, inputs: "params:scale", outputs: model}
      - {func: score, inputs: [model, request], outputs: scored}
      - {func: count_down, inputs: steps, outputs: counted}
"#;

    fn two_requests() -> PipelineService {
        let mut registry = registry();
        registry.register("count_down", count_down).args(&["steps"]);
        let inputs = [
            ("request", TypeDesc::of::<i64>()),
            ("steps", TypeDesc::of::<i64>()),
        ];
        start_with(TWO_REQUESTS, &registry, &inputs, Default::default()).unwrap()
    }

    #[test]
    fn a_request_provides_only_the_inputs_its_nodes_read() {
        let svc = two_requests();
        let out = svc.call(request(2), &["scored"]).unwrap();
        assert_eq!(out["scored"].downcast_ref::<i64>(), Some(&42));
        let steps = HashMap::from([("steps".to_string(), Data::new(3i64))]);
        let out = svc.call(steps, &["counted"]).unwrap();
        assert_eq!(out["counted"].downcast_ref::<i64>(), Some(&3));
        // What a needed node reads must come; a given input must be typed.
        let missing = svc.call(request(2), &["counted"]).unwrap_err();
        assert!(
            missing.to_string().contains("'steps' is missing"),
            "{missing}"
        );
        let mut mistyped = request(2);
        mistyped.insert("steps".into(), Data::new("3".to_string()));
        let typed = svc.call(mistyped, &["scored"]).unwrap_err();
        assert!(typed.to_string().contains("'steps' must be i64"), "{typed}");
    }

    #[test]
    fn a_call_brings_its_own_hooks_and_cancellation() {
        let svc = two_requests();
        let log = Arc::new(ProgressLog::default());
        let options = CallOptions {
            hooks: Hooks(vec![log.clone()]),
            ..Default::default()
        };
        let steps = || HashMap::from([("steps".to_string(), Data::new(3i64))]);
        svc.call_with(steps(), &["counted"], &options).unwrap();
        assert_eq!(*log.0.lock().unwrap(), [(1, 3), (2, 3), (3, 3)]);
        // Another call does not report to this one's hooks.
        svc.call(steps(), &["counted"]).unwrap();
        assert_eq!(log.0.lock().unwrap().len(), 3);
        let cancelled = CallOptions::default();
        cancelled.cancellation.cancel();
        let failure = svc
            .call_with(steps(), &["counted"], &cancelled)
            .unwrap_err();
        let CallFailure::Node(node) = &failure else {
            panic!("{failure}");
        };
        assert!(node.error.find::<ZeroRequest>().is_some(), "{failure:?}");
    }

    #[test]
    fn mistyped_or_unknown_request_inputs_fail_at_start() {
        let typed = service(SERVE, &[("request", TypeDesc::of::<String>())])
            .err()
            .unwrap();
        assert!(
            typed
                .to_string()
                .contains("wants i64, but request input 'request' is String"),
            "{typed}"
        );
        let unknown = service(SERVE, &[("image", TypeDesc::of::<i64>())])
            .err()
            .unwrap();
        assert!(
            unknown
                .to_string()
                .contains("request input 'image' is not an input"),
            "{unknown}"
        );
        let missing = service(SERVE, &[]).err().unwrap();
        assert!(missing.to_string().contains("'request'"), "{missing}");
    }

    #[test]
    fn a_failing_start_up_node_stops_the_start() {
        let yaml = r#"
pipelines:
  serve:
    nodes:
      - {func: nonzero_param, inputs: "params:zero", outputs: model}
      - {func: score, inputs: [model, request], outputs: scored}
"#;
        let err = service(yaml, &[("request", TypeDesc::of::<i64>())])
            .err()
            .unwrap();
        assert!(err.to_string().contains("zero is not allowed"), "{err}");
    }
}
