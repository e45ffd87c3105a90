//! Both executors drive one node task: a failure keeps the function's own
//! error typed, completed outputs are saved, and hooks see the same steps.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runner::hooks::{Hook, Hooks};
use runner::pipeline::Node;
use runner::run::NodeError;
use runner::{Catalog, DatasetTypes, Error, FunctionRegistry, RunOptions, RunnerKind};

#[derive(Debug, thiserror::Error)]
#[error("{count} is too many")]
struct TooMany {
    count: i64,
}

fn count() -> serde_json::Value {
    serde_json::json!(7)
}

fn check(count: serde_json::Value) -> Result<i64, TooMany> {
    let count = count.as_i64().unwrap_or_default();
    match count > 5 {
        true => Err(TooMany { count }),
        false => Ok(count),
    }
}

fn registry() -> FunctionRegistry {
    let mut registry = FunctionRegistry::new();
    registry.register("count", count);
    registry.register("check", check);
    registry
}

const PIPELINES: &str = "pipelines:
  p:
    nodes:
      - {name: counted, func: count, outputs: total}
      - {name: checked, func: check, inputs: total, outputs: verdict}
";

fn project(dir: &Path) -> runner::ProjectConfig {
    std::fs::write(dir.join("pipelines.yml"), PIPELINES).unwrap();
    std::fs::write(dir.join("parameters.yml"), "{}\n").unwrap();
    std::fs::write(
        dir.join("catalog.yml"),
        "total: {type: json.JSONDataset, filepath: data/total.json}\n",
    )
    .unwrap();
    runner::ProjectConfig::load(dir, &runner::LoadOptions::default()).unwrap()
}

#[derive(Default)]
struct Steps(Mutex<Vec<String>>);

impl Hook for Steps {
    fn before_node_run(&self, node: &Node) {
        self.0.lock().unwrap().push(format!("start {}", node.name));
    }
    fn after_dataset_save(&self, dataset: &str, _: &runner::Data) {
        self.0.lock().unwrap().push(format!("saved {dataset}"));
    }
    fn after_node_run(&self, node: &Node, _: Duration) {
        self.0.lock().unwrap().push(format!("done {}", node.name));
    }
    fn on_node_error(&self, node: &Node, error: &NodeError) {
        let typed = error.find::<TooMany>().map(|e| e.count);
        self.0
            .lock()
            .unwrap()
            .push(format!("failed {} ({typed:?})", node.name));
    }
}

#[test]
fn a_failed_node_keeps_its_typed_error_under_both_runners() {
    for kind in [RunnerKind::Sequential, RunnerKind::Parallel] {
        let dir = tempfile::tempdir().unwrap();
        let config = project(dir.path());
        let pipeline = runner::PipelineBuilder::new(&config)
            .build(&["p".to_string()])
            .unwrap();
        let mut catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
        let steps = Arc::new(Steps::default());
        let options = RunOptions {
            runner: kind,
            hooks: Hooks(vec![steps.clone()]),
            ..Default::default()
        };
        let error = runner::run::run(&pipeline, &mut catalog, &registry(), &options).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        let Error::Run(failure) = &error else {
            panic!("{error}");
        };
        assert_eq!(failure.failures.len(), 1);
        let failed = &failure.failures[0];
        assert_eq!(failed.node, "checked");
        assert_eq!(failed.error.find::<TooMany>().map(|e| e.count), Some(7));
        assert_eq!(failure.resume_from, ["checked"], "{kind:?}");
        assert!(error
            .to_string()
            .contains("node 'checked' failed: 7 is too many"));
        // The completed node's output is saved.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("data/total.json")).unwrap(),
            "7"
        );
        assert_eq!(
            *steps.0.lock().unwrap(),
            [
                "start counted",
                "saved total",
                "done counted",
                "start checked",
                "failed checked (Some(7))"
            ],
            "{kind:?}"
        );
    }
}
