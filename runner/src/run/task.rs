//! The one way a node runs, whoever drives it: load its inputs, call its
//! function, save its outputs, with the hooks and a tracing span around it.
//!
//! The sequential and parallel executors drive it with the catalog as the
//! node's I/O; [`crate::PipelineService`] drives it with a request's values.
//! A failure keeps its source error, typed: callers decide what it means
//! (an HTTP status, an exit code) from its type, never from its text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::{NodeContext, RunContext};
use crate::data::Data;
use crate::error::Error;
use crate::function::CallError;
use crate::hooks::Hooks;
use crate::run::BoundNode;

/// Where a node's inputs come from and its outputs go.
pub trait NodeIo {
    fn load(&self, dataset: &str) -> Result<Data, Error>;
    fn save(&self, dataset: &str, data: &Data) -> Result<(), Error>;
}

impl NodeIo for crate::catalog::Catalog {
    fn load(&self, dataset: &str) -> Result<Data, Error> {
        crate::catalog::Catalog::load(self, dataset)
    }
    fn save(&self, dataset: &str, data: &Data) -> Result<(), Error> {
        crate::catalog::Catalog::save(self, dataset, data)
    }
}

/// Why a node failed. The function's own error stays inside, boxed and
/// downcastable: see [`NodeError::find`].
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An input could not be loaded (the catalog's error names it).
    #[error("{source}")]
    Load { dataset: String, source: Error },
    /// An input is not what the argument reading it takes.
    #[error("input '{dataset}': {source}")]
    Argument {
        dataset: String,
        source: crate::function::ArgError,
    },
    /// The function failed, panicked, returned the wrong number of values,
    /// or runs on an engine this program does not load.
    #[error(transparent)]
    Call(CallError),
    /// An output could not be saved; the outputs saved before it stay.
    #[error("{source}")]
    Save { dataset: String, source: Error },
    /// A node this one reads from had to run first, and failed.
    #[error("upstream node '{node}' failed: {source}")]
    Upstream {
        node: String,
        source: Arc<NodeError>,
    },
}

impl NodeError {
    /// The first error of type `E` in this failure: the function's own
    /// error (`Result<_, E>` it returned), or one of the runner's.
    pub fn find<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }
}

/// Runs `node` once: hooks `before_node_run`, each input loaded (with its
/// dataset hooks), the function called (a panic is an error), each output
/// saved as it comes (with its hooks), then `after_node_run` or
/// `on_node_error`; all inside a `node` span. Returns the node's wall
/// time. The outputs go to `io` only: they are dropped before the
/// after-node hooks run (a hook that hands freed memory back to the system
/// then sees it freed).
pub fn run_node(
    node: &BoundNode,
    io: &dyn NodeIo,
    hooks: &Hooks,
    run: &RunContext,
) -> Result<Duration, NodeError> {
    let _span = tracing::info_span!("node", name = %node.node.name).entered();
    let result = load_call_save(node, io, hooks, run);
    match &result {
        Ok(elapsed) => {
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "completed");
            hooks.each(|h| h.after_node_run(&node.node, *elapsed));
        }
        Err(error) => hooks.each(|h| h.on_node_error(&node.node, error)),
    }
    result
}

fn load_call_save(
    node: &BoundNode,
    io: &dyn NodeIo,
    hooks: &Hooks,
    run: &RunContext,
) -> Result<Duration, NodeError> {
    hooks.each(|h| h.before_node_run(&node.node));
    let start = Instant::now();
    let mut args = Vec::with_capacity(node.args.len());
    for dataset in &node.args {
        hooks.each(|h| h.before_dataset_load(dataset));
        let data = io.load(dataset).map_err(|source| NodeError::Load {
            dataset: dataset.clone(),
            source,
        })?;
        hooks.each(|h| h.after_dataset_load(dataset, &data));
        args.push(data);
    }
    let context = NodeContext::new(run.clone(), node.node.clone(), hooks.clone());
    let outputs = node
        .function
        .call(&args, node.outputs.len(), &context)
        .map_err(|error| match error {
            CallError::Argument { index, source } => NodeError::Argument {
                dataset: node.args.get(index).map_or("?", String::as_str).to_string(),
                source,
            },
            other => NodeError::Call(other),
        })?;
    drop(args);
    for (dataset, value) in node.outputs.iter().zip(&outputs) {
        hooks.each(|h| h.before_dataset_save(dataset, value));
        io.save(dataset, value).map_err(|source| NodeError::Save {
            dataset: dataset.clone(),
            source,
        })?;
        hooks.each(|h| h.after_dataset_save(dataset, value));
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::error::Location;
    use crate::function::FunctionRegistry;
    use crate::hooks::Hook;
    use crate::pipeline::Node;

    #[derive(Debug, thiserror::Error)]
    #[error("too dark to read")]
    struct TooDark;

    fn read(level: i64) -> Result<i64, TooDark> {
        match level {
            0 => Err(TooDark),
            n => Ok(n * 2),
        }
    }

    fn bound(registry: &FunctionRegistry, func: &str) -> BoundNode {
        BoundNode {
            node: Arc::new(Node {
                name: "reader".into(),
                func: func.into(),
                inputs: vec!["level".into()],
                input_keys: None,
                outputs: vec!["text".into()],
                output_keys: None,
                tags: Default::default(),
                namespace: None,
                origin: Location::default(),
            }),
            function: registry.get(func).unwrap().clone(),
            args: vec!["level".into()],
            outputs: vec!["text".into()],
        }
    }

    #[derive(Default)]
    struct Values(Mutex<HashMap<String, Data>>);

    impl NodeIo for Values {
        fn load(&self, dataset: &str) -> Result<Data, Error> {
            self.0
                .lock()
                .unwrap()
                .get(dataset)
                .cloned()
                .ok_or_else(|| Error::dataset(dataset, "no value"))
        }
        fn save(&self, dataset: &str, data: &Data) -> Result<(), Error> {
            self.0.lock().unwrap().insert(dataset.into(), data.clone());
            Ok(())
        }
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Hook for Log {
        fn before_node_run(&self, node: &Node) {
            self.0.lock().unwrap().push(format!("before {}", node.name));
        }
        fn after_dataset_load(&self, dataset: &str, _: &Data) {
            self.0.lock().unwrap().push(format!("loaded {dataset}"));
        }
        fn after_dataset_save(&self, dataset: &str, _: &Data) {
            self.0.lock().unwrap().push(format!("saved {dataset}"));
        }
        fn after_node_run(&self, node: &Node, _: Duration) {
            self.0.lock().unwrap().push(format!("after {}", node.name));
        }
        fn on_node_error(&self, node: &Node, error: &NodeError) {
            self.0
                .lock()
                .unwrap()
                .push(format!("error {}: {error}", node.name));
        }
    }

    /// Runs the `read` node once, outside any run.
    fn run_read(
        registry: &FunctionRegistry,
        io: &Values,
        hooks: &Hooks,
    ) -> Result<Duration, NodeError> {
        run_node(&bound(registry, "read"), io, hooks, &RunContext::default())
    }

    fn setup() -> (FunctionRegistry, Values, Arc<Log>, Hooks) {
        let mut registry = FunctionRegistry::new();
        registry.register("read", read);
        let log = Arc::new(Log::default());
        let hooks = Hooks(vec![log.clone() as Arc<dyn Hook>]);
        (registry, Values::default(), log, hooks)
    }

    #[test]
    fn a_node_loads_calls_and_saves_between_its_hooks() {
        let (registry, io, log, hooks) = setup();
        io.save("level", &Data::new(21_i64)).unwrap();
        run_read(&registry, &io, &hooks).unwrap();
        assert_eq!(io.load("text").unwrap().downcast_ref::<i64>(), Some(&42));
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "before reader",
                "loaded level",
                "saved text",
                "after reader"
            ]
        );
    }

    #[test]
    fn the_functions_own_error_stays_typed() {
        let (registry, io, log, hooks) = setup();
        io.save("level", &Data::new(0_i64)).unwrap();
        let error = run_read(&registry, &io, &hooks).unwrap_err();
        assert!(error.find::<TooDark>().is_some(), "{error:?}");
        assert_eq!(error.to_string(), "too dark to read");
        let upstream = NodeError::Upstream {
            node: "reader".into(),
            source: Arc::new(error),
        };
        assert!(upstream.find::<TooDark>().is_some());
        assert_eq!(
            log.0.lock().unwrap().last().unwrap(),
            "error reader: too dark to read"
        );
        assert!(io.load("text").is_err(), "nothing saved");
    }

    #[test]
    fn missing_and_mistyped_inputs_name_the_dataset() {
        let (registry, io, _, hooks) = setup();
        let error = run_read(&registry, &io, &hooks).unwrap_err();
        assert!(matches!(&error, NodeError::Load { dataset, .. } if dataset == "level"));
        assert!(error.find::<Error>().is_some());
        io.save("level", &Data::new("x".to_string())).unwrap();
        let error = run_read(&registry, &io, &hooks).unwrap_err();
        assert_eq!(error.to_string(), "input 'level': expected i64, got String");
        assert!(error.find::<TooDark>().is_none());
    }

    /// A value that says when it is dropped.
    struct Tracked(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    crate::data_value!(Tracked);

    struct Discard;
    impl NodeIo for Discard {
        fn load(&self, dataset: &str) -> Result<Data, Error> {
            Err(Error::dataset(dataset, "nothing"))
        }
        fn save(&self, _: &str, _: &Data) -> Result<(), Error> {
            Ok(())
        }
    }

    struct SeesDropped(Arc<std::sync::atomic::AtomicBool>, Mutex<Option<bool>>);
    impl Hook for SeesDropped {
        fn after_node_run(&self, _: &Node, _: Duration) {
            *self.1.lock().unwrap() = Some(self.0.load(std::sync::atomic::Ordering::SeqCst));
        }
    }

    #[test]
    fn outputs_are_dropped_before_the_after_node_hooks() {
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = dropped.clone();
        let mut registry = FunctionRegistry::new();
        registry.register("make", move || Tracked(flag.clone()));
        let mut node = bound(&registry, "make");
        node.args.clear();
        let hook = Arc::new(SeesDropped(dropped, Mutex::new(None)));
        let hooks = Hooks(vec![hook.clone() as Arc<dyn Hook>]);
        run_node(&node, &Discard, &hooks, &RunContext::default()).unwrap();
        assert_eq!(*hook.1.lock().unwrap(), Some(true));
    }
}
