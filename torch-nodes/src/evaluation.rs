//! `evaluate_yolo`: Ultralytics' metrics on a split, through the network; the
//! report and its figures are made by `nodes::detection::evaluation::report`.

use polars::prelude::*;
use runner::Params;

use nodes::annotations::{SignDataset, Split};
use nodes::detection::evaluation::{report, EvalParams, EvalRun, Report};
use nodes::detection::ModelFile;
use nodes::NodesError;

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
    let device = crate::device(&p.device)?;
    let mut detector = crate::detector(&model, device)?;
    detector.set_end_to_end(p.end2end);
    if detector.info.names != data.classes {
        return Err(NodesError::Data(format!(
            "the model knows classes {:?} but the data has {:?}",
            detector.info.names, data.classes
        )));
    }
    let imgsz = p.imgsz.unwrap_or(detector.info.imgsz as u32);
    // Resized to the model's input on load, as Ultralytics' validator does.
    let samples = nodes::detection::labeled_split(&data, split, Some(imgsz))?;
    if samples.is_empty() {
        return Err(NodesError::Data(format!(
            "the model input has no `{}` images",
            p.split
        )));
    }
    let started = std::time::Instant::now();
    let (metrics, detections) = yolo::predict::evaluate(
        &detector.model,
        detector.inference,
        &data.classes,
        &samples,
        imgsz,
        p.batch,
    );
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

    report(
        &metrics,
        &detections,
        &samples,
        &detector.info,
        EvalRun {
            imgsz,
            ms_per_image,
            end2end: detector.inference == yolo::Inference::EndToEnd,
        },
        &data.classes,
        &history,
        p.grid_images,
    )
}
