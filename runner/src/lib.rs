//! # runner — a declarative DAG pipeline runner
//!
//! A Kedro-like framework: projects describe datasets (`catalog.yml`),
//! parameters (`parameters.yml`) and pipelines of named functions
//! (`pipelines.yml`); the runner builds the DAG, validates it, filters it the
//! way Kedro does, and runs typed Rust functions sequentially or in parallel.
//!
//! It knows nothing of any domain: node functions and extra dataset types are
//! registered by the program that embeds it.
//!
//! Main types: [`ProjectConfig`] (the files), [`Pipeline`] (the validated
//! DAG), [`Catalog`] (datasets and parameters), [`FunctionRegistry`] (typed
//! node functions), [`run::run`] (the executors).

pub mod catalog;
pub mod config;
pub mod context;
pub mod data;
pub mod error;
pub mod fingerprint;
pub mod function;
pub mod hooks;
pub mod kubeflow;
pub mod pipeline;
pub mod run;
pub mod service;
pub mod viz;

pub use catalog::{Catalog, Dataset, DatasetTypes};
pub use config::{LoadOptions, ProjectConfig};
pub use context::{Cancellation, NodeContext, RunContext};
pub use data::{Data, DataValue, Empty, TypeDesc};
pub use error::{Error, Location, Result};
pub use function::{FunctionRegistry, Outputs, Params};
pub use pipeline::{Filters, Pipeline, PipelineBuilder};
pub use run::{Plan, RunOptions, RunnerKind};
pub use service::{CallFailure, CallOptions, PipelineService, RequestError, ServiceOptions};
