//! # nodes — the road-sign project
//!
//! Node functions of the road-sign reader and its dataset types, registered
//! into the runner by [`register`] and [`register_datasets`]:
//! synthetic scenes and dashcam clips ([`synth`]), annotated image sets in
//! Pascal VOC, YOLO and COCO layouts ([`annotations`], [`datasets`]), and the
//! first nodes of the detection pipeline ([`prepare`]).

pub mod annotations;
pub mod datasets;
pub mod detection;
pub mod file_error;
pub mod images;
pub mod ocr;
pub mod plots;
pub mod predict;
pub mod prepare;
pub mod signatures;
pub mod style;
pub mod synth;
pub mod voc;

use polars::prelude::*;
use runner::{DatasetTypes, FunctionRegistry, Params};
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
    /// Two sets merged into one name their classes differently.
    #[error("the merged sets have different classes: {first:?} and {second:?} (map both with the same params:load)")]
    ClassesDiffer {
        first: Vec<String>,
        second: Vec<String>,
    },
    /// Two sets merged into one both have an image of this id.
    #[error("image id '{0}' is in both merged sets")]
    DuplicateImage(String),
    #[error(transparent)]
    Table(#[from] PolarsError),
    #[error("bad parameters: {0}")]
    Params(String),
    #[error("image: {0}")]
    Image(String),
    #[error("video: {0}")]
    Video(String),
    /// An input over a configured limit (size, duration, pixels).
    #[error("{0}")]
    Limit(String),
    /// A job stopped before its end: its deadline passed, its client left,
    /// or the server is shutting down.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// An external program (ffmpeg) is missing or failed on valid input.
    #[error("{0}")]
    Tool(String),
    #[error("{0}")]
    Data(String),
    /// The detector library refused a model (its error kept, downcastable).
    #[error("model: {0}")]
    Model(#[source] runner::function::BoxError),
    #[error("model: {0}")]
    ModelFile(#[from] yolo_core::model_file::ModelFileError),
    #[error("OCR: {0}")]
    Ocr(String),
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

/// Draws a dashcam-style clip (signs approaching) from `params:clip`.
pub fn generate_dashcam_clip(
    params: Params<synth::clip::ClipParams>,
) -> Result<synth::clip::VideoClip, NodesError> {
    synth::clip::generate_clip(&params.0)
}

/// Registers the project's dataset types (`voc.VOCDataset`, `yolo.YOLODataset`, ...).
pub fn register_datasets(types: &mut DatasetTypes) {
    datasets::register(types);
}

/// Registers every node function of the project; those that run libtorch are
/// declared only (see [`signatures`]). Each carries this crate's version: a
/// new release reruns nodes whose results it may change.
pub fn register(registry: &mut FunctionRegistry) {
    registry.default_version(env!("CARGO_PKG_VERSION"));
    registry
        .register("generate_synthetic_data", synth::generate_synthetic_data)
        .args(&["params"])
        .describe("deterministic synthetic road scenes with French signs (Pascal VOC)");
    registry
        .register("generate_dashcam_clip", generate_dashcam_clip)
        .args(&["params"])
        .describe("a dashcam-style clip where signs approach and grow");
    registry
        .register("load_data", prepare::load_data)
        .args(&["raw", "params"])
        .describe("validate an annotated image set and map its classes");
    registry
        .register("preprocess_data", prepare::preprocess_data)
        .args(&["data", "params"])
        .describe("deterministic class-stratified train/val/test split");
    registry
        .register("merge_sign_sets", prepare::merge_sign_sets)
        .args(&["first", "second"])
        .describe("two annotated sets as one (same classes, splits kept)");
    registry
        .register("build_class_table", build_class_table)
        .args(&["classes"])
        .describe("class table (id, name, has_text, description) from parameters");
    registry
        .register("summarize_classes", summarize_classes)
        .args(&["table"])
        .describe("class counts for reports");
    registry
        .register("prepare_ocr_data", ocr::prepare_ocr_data)
        .args(&["signs", "model_input", "params"])
        .describe("regions of the ground-truth text signs, prepared per class");
    registry
        .register("configure_tesseract", ocr::engine::configure_tesseract)
        .args(&["params"])
        .describe("Tesseract languages and modes per class; checks the language data");
    registry
        .register("evaluate_ocr", ocr::evaluate::evaluate_ocr)
        .args(&["readings"])
        .describe("CER, WER, exact match per class, end-to-end rate, table, worst reads");
    registry
        .register("load_sign_reader", predict::load_sign_reader)
        .args(&["tesseract", "prepare", "correction"])
        .describe("Tesseract settings, crop preparation and vocabularies (start-up)");
    registry
        .register("prepare_rois", predict::prepare_rois)
        .args(&["reader", "image", "detections"])
        .describe("the text area of every text-bearing sign, cropped and binarised");
    registry
        .register("annotate_image", predict::annotate_image)
        .args(&["image", "prediction"])
        .describe("every box and its text drawn, as JPEG");
    signatures::declare(registry);
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
