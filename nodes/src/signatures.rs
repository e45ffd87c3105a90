//! The nodes whose bodies run libtorch or Tesseract, declared by their
//! signatures.
//!
//! Loading libtorch costs a process about 0.2 s and 115 MiB before its first
//! line runs, Tesseract 13 MiB, so the `roadsign` command links neither: it
//! knows these functions by their types (enough to plan, check and dry-run
//! a pipeline) and hands a run that needs one to the executable that links
//! their bodies (`roadsign-ocr`: the `tesseract-nodes` crate;
//! `roadsign-torch`: both it and `torch-nodes`). Each body is registered as
//! `body as XxxFn`, so a body whose types drift from its declaration does
//! not compile.

use std::sync::Arc;

use polars::prelude::DataFrame;
use runner::{FunctionRegistry, NodeContext, Params};
use yolo_core::train_config::TrainConfig;

use crate::annotations::SignDataset;
use crate::detection::dataset::Picture;
use crate::detection::evaluation::{EvalParams, Report};
use crate::detection::ModelFile;
use crate::ocr::correct::CorrectionParams;
use crate::ocr::engine::TesseractConfig;
use crate::ocr::{OcrReadings, OcrRegions, PrepareParams};
use crate::predict::video::{VideoJob, VideoSummary};
use crate::predict::{
    Detections, PredictParams, Prediction, SignDetector, SignReader, SignRegions,
};
use crate::NodesError;

/// The engines the functions below run on.
pub const TORCH: &str = "torch";
pub const TESSERACT: &str = "tesseract";

/// YOLOv8 trained on the train split; the model and its history (relative
/// checkpoint and pretrained paths are the project's: the context says where).
pub type TrainYoloFn =
    fn(SignDataset, Params<TrainConfig>, NodeContext) -> Result<(ModelFile, DataFrame), NodesError>;
/// Ultralytics' metrics on a split, and the report's figures.
pub type EvaluateYoloFn =
    fn(ModelFile, SignDataset, DataFrame, Params<EvalParams>) -> Result<Report, NodesError>;
/// The text-sign regions the detector finds, matched to the ground truth.
pub type DetectTextRegionsFn = fn(
    ModelFile,
    SignDataset,
    SignDataset,
    Params<PrepareParams>,
) -> Result<OcrRegions, NodesError>;
/// The detector checked once (start-up of the `predict` pipeline).
pub type LoadDetectorFn = fn(ModelFile, Params<PredictParams>) -> Result<SignDetector, NodesError>;
/// The signs of one image.
pub type DetectSignsFn = fn(Arc<SignDetector>, Arc<Picture>) -> Result<Detections, NodesError>;

/// Every region read by Tesseract, then corrected.
pub type RunOcrFn = fn(
    OcrRegions,
    OcrRegions,
    TesseractConfig,
    Params<CorrectionParams>,
) -> Result<OcrReadings, NodesError>;
/// The prepared regions read: the answer of `POST /predict`.
pub type ReadSignTextsFn = fn(Arc<SignReader>, SignRegions) -> Result<Prediction, NodesError>;

/// A video's every frame detected, its signs read once per track, drawn and
/// encoded (the request's cancellation stops it; progress is reported per
/// frame). It needs both engines.
pub type AnnotateVideoFn = fn(
    Arc<SignDetector>,
    Arc<SignReader>,
    Arc<VideoJob>,
    NodeContext,
) -> Result<VideoSummary, NodesError>;

/// Declares the libtorch and Tesseract nodes (names, arguments, descriptions).
pub fn declare(registry: &mut FunctionRegistry) {
    registry
        .declare::<RunOcrFn>("run_ocr", &[TESSERACT])
        .args(&["ground_truth", "detected", "config", "params"])
        .describe("every region read in parallel (a Tesseract per thread), then corrected");
    registry
        .declare::<ReadSignTextsFn>("read_sign_texts", &[TESSERACT])
        .args(&["reader", "regions"])
        .describe("Tesseract on the prepared regions, corrected: the POST /predict answer");
    registry
        .declare::<TrainYoloFn>("train_yolo", &[TORCH])
        .args(&["data", "params"])
        .describe("YOLOv8 trained on the train split, best epoch by val mAP50-95");
    registry
        .declare::<EvaluateYoloFn>("evaluate_yolo", &[TORCH])
        .args(&["model", "data", "history", "params"])
        .describe("mAP50, mAP50-95, per-class AP, confusion matrix and report figures");
    registry
        .declare::<DetectTextRegionsFn>("detect_text_regions", &[TORCH])
        .args(&["model", "signs", "model_input", "params"])
        .describe("regions of the text signs the detector finds, matched to the ground truth");
    registry
        .declare::<LoadDetectorFn>("load_detector", &[TORCH])
        .args(&["model", "params"])
        .describe("the detector checked once and its predict thresholds (start-up)");
    registry
        .declare::<DetectSignsFn>("detect_signs", &[TORCH])
        .args(&["detector", "image"])
        .describe("the signs of one image");
    registry
        .declare::<AnnotateVideoFn>("annotate_video", &[TESSERACT, TORCH])
        .args(&["detector", "reader", "video"])
        .describe("every frame of a video detected, its signs read once per track, drawn, as MP4");
}
