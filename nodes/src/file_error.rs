//! What is wrong with one file of an annotated set: the file is then
//! reported as a problem of the set and skipped, or, for the files that
//! configure a set (`split_ids`, `data.yaml`), its load fails.

use polars::prelude::PolarsError;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad VOC XML: {0}")]
    Xml(#[from] quick_xml::DeError),
    #[error("unreadable image: {0}")]
    UnreadableFile(std::io::Error),
    #[error("unreadable image: {0}")]
    UndecodableImage(image::ImageError),
    /// An image whose header gives no size.
    #[error("{0}")]
    ImageSize(image::ImageError),
    /// An image that cannot be copied or converted (`id`: its record).
    #[error("{id}: {source}")]
    Image {
        id: String,
        source: image::ImageError,
    },
    #[error("{file}: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("unreadable CSV: {0}")]
    Csv(PolarsError),
    #[error("no `{name}` column")]
    NoColumn { name: String },
    #[error(transparent)]
    Table(#[from] PolarsError),
    #[error("unknown <legibility> {grade:?} (high, low or illegible)")]
    Legibility { grade: String },
    /// A CSV row that cannot be used, by its line in the file.
    #[error("line {line}: {problem}")]
    Row { line: usize, problem: RowProblem },
    #[error("not a number: '{field}'")]
    NotANumber { field: String },
    #[error("expected `class cx cy w h`, got '{line}'")]
    LabelFields { line: String },
    #[error("bad class id {0}")]
    ClassId(f64),
    #[error("class id {0} not in data.yaml")]
    UnknownClassId(usize),
    #[error("data.yaml: `names` must be a list or a map")]
    ClassNames,
    #[error("{id}: class '{class}' is not in the class list")]
    NotInClassList { id: String, class: String },
    #[error("unknown class '{class}' (add it to class_map or classes)")]
    UnknownClass { class: String },
    #[error(
        "box [{xmin}, {ymin}, {xmax}, {ymax}] of '{class}' is outside the {width}x{height} image"
    )]
    BoxOutside {
        class: String,
        xmin: f64,
        ymin: f64,
        xmax: f64,
        ymax: f64,
        width: u32,
        height: u32,
    },
}

/// What is wrong with one row of a CSV that configures a set.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    #[error("unknown split {name:?} (train, val or test)")]
    UnknownSplit { name: String },
    #[error("no image {id} in the set")]
    NoImage { id: String },
    #[error("`object_index` is not a number")]
    ObjectIndex,
    #[error("unknown legibility {grade:?} (high, low or illegible)")]
    Legibility { grade: String },
    #[error("no object {index} in {id}")]
    NoObject { index: usize, id: String },
}
