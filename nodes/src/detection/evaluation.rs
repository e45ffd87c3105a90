//! `evaluate_yolo`: Ultralytics' metrics on the validation split, and the
//! reports of `data/08_reporting/`.

use polars::prelude::*;
use runner::Params;
use serde::Deserialize;
use serde_json::json;
use yolo::metrics::DetectionMetrics;

use super::dataset::Picture;
use super::training::history_from_table;
use super::{labeled_split, ModelFile};
use crate::annotations::{SignDataset, Split};
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
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams {
            imgsz: None,
            batch: 16,
            device: "auto".into(),
            split: "val".into(),
            grid_images: 16,
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

/// Evaluates the model on a split of the model input; returns the metrics
/// JSON, the per-class table and the figures (PR curves, confusion matrix,
/// training curves, predictions grid).
pub fn evaluate_yolo(
    model: ModelFile,
    data: SignDataset,
    history: DataFrame,
    params: Params<EvalParams>,
) -> Result<Report, NodesError> {
    let p = params.0;
    let split = match p.split.as_str() {
        "val" => Split::Val,
        "test" => Split::Test,
        other => {
            return Err(NodesError::Params(format!(
                "evaluate.split must be val or test, not {other:?}"
            )))
        }
    };
    let device =
        yolo::train::parse_device(&p.device).map_err(|e| NodesError::Params(e.to_string()))?;
    let detector = model.detector(device)?;
    if detector.info.names != data.classes {
        return Err(NodesError::Data(format!(
            "the model knows classes {:?} but the data has {:?}",
            detector.info.names, data.classes
        )));
    }
    let imgsz = p.imgsz.unwrap_or(detector.info.imgsz as u32);
    // Resized to the model's input on load, as Ultralytics' validator does.
    let samples = labeled_split(&data, split, Some(imgsz))?;
    if samples.is_empty() {
        return Err(NodesError::Data(format!(
            "the model input has no `{}` images",
            p.split
        )));
    }
    let started = std::time::Instant::now();
    let (metrics, detections) =
        yolo::predict::evaluate(&detector.model, &data.classes, &samples, imgsz, p.batch);
    let ms_per_image = started.elapsed().as_secs_f64() * 1000.0 / samples.len() as f64;
    tracing::info!(
        "{} {} images: mAP50 {:.3} · mAP50-95 {:.3} · P {:.3} · R {:.3}",
        p.split,
        samples.len(),
        metrics.map50,
        metrics.map50_95,
        metrics.precision,
        metrics.recall
    );

    let summary = metrics_json(&metrics, &detector.info, imgsz, ms_per_image);
    let table = per_class_table(&metrics)?;
    // The grid shows what a user would see: detections at the predict threshold.
    let shown: Vec<(&image::RgbImage, &[yolo::metrics::Detection])> = samples
        .iter()
        .zip(&detections)
        .take(p.grid_images)
        .map(|(sample, dets)| {
            let confident = dets.iter().take_while(|d| d.score >= 0.25).count();
            (&sample.image, &dets[..confident])
        })
        .collect();
    let history = history_from_table(&history)?;
    Ok((
        summary,
        table,
        Picture(plots::pr_curves(&metrics)?),
        Picture(plots::confusion_matrix(&metrics, &data.classes)?),
        Picture(plots::training_curves(&history)?),
        Picture(plots::prediction_grid(&shown, &data.classes, 4, 320)),
    ))
}

fn metrics_json(
    m: &DetectionMetrics,
    info: &yolo::ModelInfo,
    imgsz: u32,
    ms_per_image: f64,
) -> serde_json::Value {
    json!({
        "model": {"scale": info.scale.to_string(), "imgsz": imgsz, "classes": info.names},
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
