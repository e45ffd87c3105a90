//! The `predict` pipeline: the signs of one image, detected, read and drawn —
//! what `roadsign serve` runs per request and `roadsign predict` per file.
//!
//! Start-up nodes (`load_detector`, `load_sign_reader`) check and hold the
//! model and the OCR settings; per-image nodes (`detect_signs`,
//! `prepare_rois`, `read_sign_texts`, `annotate_image`) take the request's image. libtorch
//! modules and Tesseract handles are not shareable between threads, so each
//! worker thread builds its own on first use and keeps it (see
//! [`crate::ocr::engine`]). The nodes that run the network
//! (`load_detector`, `detect_signs`) are in the `torch-nodes` crate.

pub mod annotate;
pub mod video;

use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};
use yolo_core::metrics::Detection;
use yolo_core::nms_config::NmsConfig;

use crate::detection::dataset::Picture;
use crate::detection::ModelFile;
use crate::ocr::correct::{CorrectionParams, Vocabulary};
use crate::ocr::engine::{self, TesseractConfig, TesseractParams};
use crate::ocr::PrepareParams;
use crate::NodesError;

pub use annotate::{annotate_image, draw_predictions, Jpeg};

/// One sign found in an image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignDetection {
    pub class: String,
    /// The class's index in the model (its colour when drawn).
    #[serde(skip)]
    pub class_id: usize,
    pub confidence: f32,
    /// `[x1, y1, x2, y2]` in the image's pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub text: Option<String>,
    pub text_confidence: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    pub detect: f64,
    pub ocr: f64,
}

/// What `POST /predict` answers for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub detections: Vec<SignDetection>,
    pub image: ImageSize,
    pub timings_ms: Timings,
}

runner::data_value!(Prediction);

/// `params:predict`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictParams {
    pub conf: f32,
    pub iou: f32,
    pub max_det: usize,
    /// Inference size; the model's own when absent.
    pub imgsz: Option<u32>,
    /// `auto`, `cpu` or `cuda`.
    pub device: String,
    /// A YOLOv10 answers with its one-to-one head, without NMS (Ultralytics'
    /// `end2end`); false: its one-to-many head and NMS. YOLOv8 always uses NMS.
    pub end2end: bool,
}

impl Default for PredictParams {
    fn default() -> Self {
        let nms = NmsConfig::predict();
        PredictParams {
            conf: nms.conf,
            iou: nms.iou,
            max_det: nms.max_det,
            imgsz: None,
            device: "auto".into(),
            end2end: true,
        }
    }
}

/// A checked detector: the model's bytes and how to run it. Running it
/// needs libtorch: `torch_nodes::DetectSigns` adds `detect` and
/// `detect_batch`, each thread building its module on first use.
#[derive(Clone, Debug)]
pub struct SignDetector {
    pub model: ModelFile,
    /// `auto`, `cpu` or `cuda`, checked by `load_detector`.
    pub device: String,
    pub imgsz: u32,
    pub nms: NmsConfig,
    /// YOLOv10 without NMS (`params:predict.end2end`).
    pub end2end: bool,
}

runner::data_value!(SignDetector);

impl SignDetector {
    /// A detector from the model and the predict parameters, checked
    /// (image size, thresholds) without building the network.
    pub fn checked(model: ModelFile, p: PredictParams) -> Result<SignDetector, NodesError> {
        let imgsz = p.imgsz.unwrap_or(model.info.imgsz as u32);
        if imgsz == 0 || !imgsz.is_multiple_of(32) {
            return Err(NodesError::Params(format!(
                "predict imgsz must be a positive multiple of 32, not {imgsz}"
            )));
        }
        if !(0.0..=1.0).contains(&p.conf) || !(0.0..=1.0).contains(&p.iou) {
            return Err(NodesError::Params(format!(
                "predict conf and iou must lie in [0, 1], not {} and {}",
                p.conf, p.iou
            )));
        }
        Ok(SignDetector {
            model,
            device: p.device,
            imgsz,
            nms: NmsConfig {
                conf: p.conf,
                iou: p.iou,
                max_det: p.max_det,
                ..NmsConfig::predict()
            },
            end2end: p.end2end,
        })
    }

    /// Detections with their class names, rounded as the API reports them.
    pub fn named(&self, found: Vec<Detection>) -> Vec<SignDetection> {
        found
            .into_iter()
            .map(|d| SignDetection {
                class: self
                    .model
                    .info
                    .names
                    .get(d.class)
                    .cloned()
                    .unwrap_or_else(|| format!("class{}", d.class)),
                class_id: d.class,
                confidence: (d.score * 1000.0).round() / 1000.0,
                bbox: d.bbox.map(|v| (v * 10.0).round() / 10.0),
                text: None,
                text_confidence: None,
            })
            .collect()
    }
}

/// Detections of one image, and how long detection took.
#[derive(Clone, Debug)]
pub struct Detections {
    pub signs: Vec<SignDetection>,
    pub image: ImageSize,
    pub detect_ms: f64,
}

runner::data_value!(Detections);

/// What reading a sign's text needs: Tesseract's settings, the crop
/// preparation per class, and the vocabularies.
pub struct SignReader {
    pub tesseract: TesseractConfig,
    pub prepare: PrepareParams,
    pub vocabulary: Vocabulary,
}

runner::data_value!(SignReader);

/// Checks the OCR settings once, at start-up (language data installed).
pub fn load_sign_reader(
    tesseract: runner::Params<TesseractParams>,
    prepare: runner::Params<PrepareParams>,
    correction: runner::Params<CorrectionParams>,
) -> Result<SignReader, NodesError> {
    Ok(SignReader {
        tesseract: engine::configure_tesseract(tesseract)?,
        prepare: prepare.0,
        vocabulary: Vocabulary::new(&correction.0),
    })
}

impl SignReader {
    /// The region of one sign prepared for Tesseract (cropped to its text
    /// area, scaled, binarised), if its class carries text and a crop is left.
    pub fn prepare_region(&self, image: &RgbImage, sign: &SignDetection) -> Option<GrayImage> {
        if !self.prepare.text_classes.contains(&sign.class) {
            return None;
        }
        crate::ocr::region(image, sign.bbox, &sign.class, &self.prepare).map(|(_, gray)| gray)
    }
}

/// The detections of an image with, for each sign, its region prepared for
/// Tesseract (`None`: no text to read).
#[derive(Clone, Debug)]
pub struct SignRegions {
    pub detections: Detections,
    pub regions: Vec<Option<GrayImage>>,
    pub prepare_ms: f64,
}

runner::data_value!(SignRegions);

/// Crops and prepares the text area of every text-bearing sign found.
pub fn prepare_rois(
    reader: Arc<SignReader>,
    image: Arc<Picture>,
    detections: Detections,
) -> SignRegions {
    let started = Instant::now();
    let regions = detections
        .signs
        .iter()
        .map(|sign| reader.prepare_region(&image.0, sign))
        .collect();
    SignRegions {
        detections,
        regions,
        prepare_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}
