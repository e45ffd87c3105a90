//! # nodes — the road-sign project
//!
//! Node functions of the road-sign reader, registered into the runner by
//! [`register`]. This crate grows with the project (data generation,
//! YOLO detection, OCR); today it holds the class table the other stages
//! share.

use polars::prelude::*;
use runner::{FunctionRegistry, Params};
use serde::Deserialize;

/// One sign class as configured in `parameters.yml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SignClass {
    pub name: String,
    /// Whether signs of this class carry text to read.
    #[serde(default)]
    pub has_text: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("no sign classes configured")]
    NoClasses,
    #[error("sign class '{0}' is configured twice")]
    DuplicateClass(String),
    #[error(transparent)]
    Table(#[from] PolarsError),
}

/// Builds the class table (id, name, has_text, description) from parameters,
/// checking that names are unique: ids are positions, used by every stage.
pub fn build_class_table(classes: Params<Vec<SignClass>>) -> Result<DataFrame, NodesError> {
    let classes = classes.0;
    if classes.is_empty() {
        return Err(NodesError::NoClasses);
    }
    for (i, class) in classes.iter().enumerate() {
        if classes[..i].iter().any(|c| c.name == class.name) {
            return Err(NodesError::DuplicateClass(class.name.clone()));
        }
    }
    let ids: Vec<u32> = (0..classes.len() as u32).collect();
    let frame = df!(
        "id" => ids,
        "name" => classes.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "has_text" => classes.iter().map(|c| c.has_text).collect::<Vec<_>>(),
        "description" => classes.iter().map(|c| c.description.clone()).collect::<Vec<_>>(),
    )?;
    Ok(frame)
}

/// Summarises the class table for reports.
pub fn summarize_classes(table: DataFrame) -> Result<serde_json::Value, NodesError> {
    let names = table.column("name")?.str()?;
    let names: Vec<String> = (0..names.len())
        .map(|i| names.get(i).unwrap_or_default().to_string())
        .collect();
    let has_text = table.column("has_text")?.bool()?;
    let with_text = (0..has_text.len())
        .filter(|&i| has_text.get(i) == Some(true))
        .count();
    Ok(serde_json::json!({
        "classes": table.height(),
        "classes_with_text": with_text,
        "names": names,
    }))
}

/// Registers every node function of the project.
pub fn register(registry: &mut FunctionRegistry) {
    registry
        .register("build_class_table", build_class_table)
        .args(&["classes"])
        .describe("class table (id, name, has_text, description) from parameters");
    registry
        .register("summarize_classes", summarize_classes)
        .args(&["table"])
        .describe("class counts for reports");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, has_text: bool) -> SignClass {
        SignClass {
            name: name.into(),
            has_text,
            description: String::new(),
        }
    }

    #[test]
    fn builds_and_summarises_the_class_table() {
        let table =
            build_class_table(Params(vec![class("stop", true), class("yield", false)])).unwrap();
        assert_eq!(table.height(), 2);
        let summary = summarize_classes(table).unwrap();
        assert_eq!(summary["classes"], 2);
        assert_eq!(summary["classes_with_text"], 1);
        assert_eq!(summary["names"][1], "yield");
    }

    #[test]
    fn rejects_empty_and_duplicate_classes() {
        assert!(matches!(
            build_class_table(Params(vec![])),
            Err(NodesError::NoClasses)
        ));
        let err =
            build_class_table(Params(vec![class("stop", true), class("stop", false)])).unwrap_err();
        assert_eq!(err.to_string(), "sign class 'stop' is configured twice");
    }

    #[test]
    fn registers_its_functions() {
        let mut registry = FunctionRegistry::new();
        register(&mut registry);
        assert!(registry.get("build_class_table").is_some());
        assert!(registry.get("summarize_classes").is_some());
    }
}
