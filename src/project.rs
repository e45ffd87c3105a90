//! The composition root: what a roadsign project is made of — the node
//! functions and dataset types it can name, its configuration, and the
//! hooks its runs carry. Commands, `serve` and `predict` take their
//! registry, dataset types and configuration from here, and build their
//! pipelines and catalogs from those.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use runner::config::LoadOptions;
use runner::hooks::{Hooks, RunRecords, TimingSummary};
use runner::{DatasetTypes, FunctionRegistry, Pipeline, PipelineBuilder, ProjectConfig};

use crate::cli::{Cli, Selection};

/// Every function a pipeline can name: the runner's built-ins and the
/// road-sign nodes, with the bodies of the engine ones where this
/// executable loads their engines (declared only otherwise).
pub fn registry() -> FunctionRegistry {
    let mut registry = FunctionRegistry::new();
    nodes::register(&mut registry);
    if let Some(engine) = crate::engine::loaded() {
        (engine.implement)(&mut registry);
    }
    registry
}

/// Every dataset type a catalog can name: the runner's and the road-sign project's.
pub fn dataset_types() -> DatasetTypes {
    let mut types = DatasetTypes::builtin();
    nodes::register_datasets(&mut types);
    types
}

/// The project's configuration files, in environment `env`, with
/// `--params` overrides.
pub fn load_config(cli: &Cli, env: &Option<String>, params: &[String]) -> Result<ProjectConfig> {
    let options = LoadOptions {
        env: env.clone(),
        param_overrides: params.to_vec(),
    };
    Ok(ProjectConfig::load(&cli.project_dir, &options)?)
}

/// The selected pipelines, as one.
pub fn build_pipeline(config: &ProjectConfig, selection: &Selection) -> Result<Pipeline> {
    Ok(PipelineBuilder::new(config).build(&selection.pipeline_names())?)
}

/// Where runs keep their records and incremental state.
pub fn tracking_dir(project_dir: &Path) -> PathBuf {
    project_dir.join("data").join("09_tracking")
}

/// The hooks `roadsign run` installs: a progress bar, memory handed back
/// after each node, a record of the run (`command`, the git commit) under
/// `tracking`, and the slowest nodes' summary.
pub fn run_hooks(project_dir: &Path, tracking: &Path, command: String) -> Hooks {
    Hooks(vec![
        Arc::new(crate::run_hooks::Progress::new()),
        Arc::new(crate::run_hooks::ReleaseFreeMemory),
        Arc::new(RunRecords::new(
            tracking.join("runs"),
            command,
            git_commit(project_dir),
        )),
        Arc::new(TimingSummary::new(5)),
    ])
}

/// The commit the project is at, when it is a git checkout.
fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
