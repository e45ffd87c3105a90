//! `evaluate_yolo`'s parameters and its reports (`data/08_reporting/`); the
//! evaluation through the network runs libtorch (the `torch-nodes` crate).

use polars::prelude::*;
use serde::Deserialize;
use serde_json::json;
use yolo_core::augment::Labeled;
use yolo_core::metrics::{Detection, DetectionMetrics};
use yolo_core::ModelInfo;

use super::dataset::Picture;
use super::training::history_from_table;
use crate::{plots, NodesError};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalParams {
    /// Input size; the model's training size when absent.
    pub imgsz: Option<u32>,
    pub batch: usize,
    /// `auto`, `cpu` or `cuda`.
    pub device: String,
    /// `val` or `test`.
    pub split: String,
    /// Images shown in the predictions grid.
    pub grid_images: usize,
    /// A YOLOv10 answers without NMS (its one-to-one head); false: its
    /// one-to-many head and NMS. YOLOv8 always uses NMS.
    pub end2end: bool,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams {
            imgsz: None,
            batch: 16,
            device: "auto".into(),
            split: "val".into(),
            grid_images: 16,
            end2end: true,
        }
    }
}

/// What `evaluate_yolo` produces: metrics JSON, per-class table, PR curves,
/// confusion matrix, training curves, predictions grid.
pub type Report = (
    serde_json::Value,
    DataFrame,
    Picture,
    Picture,
    Picture,
    Picture,
);

/// How the model ran during an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalRun {
    pub imgsz: u32,
    pub ms_per_image: f64,
    /// YOLOv10 read without NMS.
    pub end2end: bool,
}

/// The report of an evaluation: the metrics JSON, the per-class table and
/// the figures (PR curves, confusion matrix, training curves, predictions
/// grid of the first `grid_images` samples at the predict threshold).
#[allow(clippy::too_many_arguments)]
pub fn report(
    metrics: &DetectionMetrics,
    detections: &[Vec<Detection>],
    samples: &[Labeled],
    info: &ModelInfo,
    run: EvalRun,
    classes: &[String],
    history: &DataFrame,
    grid_images: usize,
) -> Result<Report, NodesError> {
    let summary = metrics_json(metrics, info, run);
    let table = per_class_table(metrics)?;
    // The grid shows what a user would see: detections at the predict threshold.
    let shown: Vec<(&image::RgbImage, &[Detection])> = samples
        .iter()
        .zip(detections)
        .take(grid_images)
        .map(|(sample, dets)| {
            let confident = dets.iter().take_while(|d| d.score >= 0.25).count();
            (&sample.image, &dets[..confident])
        })
        .collect();
    let history = history_from_table(history)?;
    Ok((
        summary,
        table,
        Picture(plots::pr_curves(metrics)?),
        Picture(plots::confusion_matrix(metrics, classes)?),
        Picture(plots::training_curves(&history)?),
        Picture(plots::prediction_grid(&shown, classes, 4, 320)),
    ))
}

fn metrics_json(m: &DetectionMetrics, info: &ModelInfo, run: EvalRun) -> serde_json::Value {
    let EvalRun {
        imgsz,
        ms_per_image,
        end2end,
    } = run;
    json!({
        "model": {"arch": info.arch.to_string(), "scale": info.scale.to_string(), "imgsz": imgsz, "classes": info.names, "end2end": end2end},
        "images": m.images,
        "labels": m.labels,
        "map50": m.map50,
        "map50_95": m.map50_95,
        "precision": m.precision,
        "recall": m.recall,
        "f1": m.f1,
        "best_conf": m.best_conf,
        "per_class": m.per_class,
        "confusion_matrix": {"rows": "predicted (background last)", "columns": "true (background last)", "counts": m.confusion},
        "ms_per_image": ms_per_image,
    })
}

/// One row per class with labels: AP50, AP50-95, precision, recall.
pub fn per_class_table(m: &DetectionMetrics) -> Result<DataFrame, NodesError> {
    let rows = &m.per_class;
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "class".into(),
                rows.iter().map(|r| r.name.clone()).collect::<Vec<String>>(),
            ),
            Column::new(
                "images".into(),
                rows.iter().map(|r| r.images as u32).collect::<Vec<u32>>(),
            ),
            Column::new(
                "labels".into(),
                rows.iter().map(|r| r.labels as u32).collect::<Vec<u32>>(),
            ),
            Column::new(
                "precision".into(),
                rows.iter().map(|r| r.precision).collect::<Vec<f64>>(),
            ),
            Column::new(
                "recall".into(),
                rows.iter().map(|r| r.recall).collect::<Vec<f64>>(),
            ),
            Column::new(
                "ap50".into(),
                rows.iter().map(|r| r.ap50).collect::<Vec<f64>>(),
            ),
            Column::new(
                "ap50_95".into(),
                rows.iter().map(|r| r.ap50_95).collect::<Vec<f64>>(),
            ),
        ],
    )?)
}
