//! Pipelines: the YAML shape ([`spec`]), resolved [`Node`]s, the validated
//! DAG ([`Pipeline`]), Kedro-compatible [`Filters`], and the builder that
//! turns `pipelines.yml` into pipelines.

pub mod build;
pub mod filter;
pub mod graph;
pub mod node;
pub mod spec;

pub use build::PipelineBuilder;
pub use filter::Filters;
pub use graph::Pipeline;
pub use node::{is_parameter, Node};
