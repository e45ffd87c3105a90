//! The `predict` pipeline: the signs of one image, detected, read and drawn —
//! what `roadsign serve` runs per request and `roadsign predict` per file.
//!
//! Start-up nodes (`load_detector`, `load_sign_reader`) check and hold the
//! model and the OCR settings; per-image nodes (`detect_signs`,
//! `prepare_rois`, `read_sign_texts`, `annotate_image`) take the request's image. libtorch
//! modules and Tesseract handles are not shareable between threads, so each
//! worker thread builds its own on first use and keeps it (see [`detector`]
//! and [`crate::ocr::engine`]).

pub mod annotate;
pub mod video;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};
use yolo::nms::NmsConfig;

use crate::detection::dataset::Picture;
use crate::detection::ModelFile;
use crate::ocr::correct::{CorrectionParams, Vocabulary};
use crate::ocr::engine::{self, TesseractConfig, TesseractParams};
use crate::ocr::PrepareParams;
use crate::NodesError;

pub use annotate::{annotate_image, draw_predictions, Jpeg};

/// One sign found in an image (SPEC §7).
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
        }
    }
}

/// A checked detector: the model's bytes and how to run it.
#[derive(Clone, Debug)]
pub struct SignDetector {
    pub model: ModelFile,
    pub device: tch::Device,
    pub imgsz: u32,
    pub nms: NmsConfig,
}

runner::data_value!(SignDetector);

thread_local! {
    /// This thread's libtorch module, with the address of the bytes it came from.
    static DETECTOR: RefCell<Option<(usize, yolo::Detector)>> = const { RefCell::new(None) };
}

impl SignDetector {
    /// Runs `f` with this thread's module, built from the bytes on first use.
    pub fn with_detector<R>(&self, f: impl FnOnce(&yolo::Detector) -> R) -> Result<R, NodesError> {
        let key = Arc::as_ptr(&self.model.bytes) as usize;
        DETECTOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                *slot = Some((key, self.model.detector(self.device)?));
            }
            let (_, detector) = slot.as_ref().expect("detector just set");
            Ok(f(detector))
        })
    }

    /// The signs of `image`, without text.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<SignDetection>, NodesError> {
        Ok(self
            .detect_batch(&[image], self.imgsz, &self.nms)?
            .pop()
            .unwrap_or_default())
    }

    /// The signs of several images, through the network as one batch, at
    /// `imgsz` and with `nms` (a request's own settings).
    pub fn detect_batch(
        &self,
        images: &[&RgbImage],
        imgsz: u32,
        nms: &NmsConfig,
    ) -> Result<Vec<Vec<SignDetection>>, NodesError> {
        let found = self
            .with_detector(|d| yolo::predict::detect(&d.model, images, imgsz, images.len(), nms))?;
        Ok(found.into_iter().map(|signs| self.named(signs)).collect())
    }

    /// Detections with their class names, rounded as the API reports them.
    fn named(&self, found: Vec<yolo::metrics::Detection>) -> Vec<SignDetection> {
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

/// Checks the model and the predict parameters once, at start-up.
pub fn load_detector(
    model: ModelFile,
    params: runner::Params<PredictParams>,
) -> Result<SignDetector, NodesError> {
    let p = params.0;
    let device =
        yolo::train::parse_device(&p.device).map_err(|e| NodesError::Params(e.to_string()))?;
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
    // Build the module once here, so that a corrupt file fails at start-up.
    model.detector(device)?;
    Ok(SignDetector {
        model,
        device,
        imgsz,
        nms: NmsConfig {
            conf: p.conf,
            iou: p.iou,
            max_det: p.max_det,
            ..NmsConfig::predict()
        },
    })
}

/// libtorch's intra-op threads for the process (0 keeps its default, one
/// per core). A server running several inferences at once on its worker
/// threads is faster with 1: the cores are not fought over twice.
pub fn set_torch_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
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

/// Detects the signs of the request's image.
pub fn detect_signs(
    detector: Arc<SignDetector>,
    image: Arc<Picture>,
) -> Result<Detections, NodesError> {
    let started = Instant::now();
    let signs = detector.detect(&image.0)?;
    Ok(Detections {
        signs,
        image: ImageSize {
            width: image.0.width(),
            height: image.0.height(),
        },
        detect_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

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

    /// Tesseract on a prepared region, corrected against the class's
    /// vocabulary; `None` when nothing legible came out.
    pub fn read_region(
        &self,
        class: &str,
        region: &GrayImage,
    ) -> Result<Option<(String, f32)>, NodesError> {
        let reading = engine::read(&self.tesseract, class, region)?;
        let text = self.vocabulary.correct(class, &reading.text);
        if text.trim().is_empty() {
            return Ok(None); // nothing legible: null, not ""
        }
        Ok(Some((
            text,
            (reading.confidence / 100.0 * 1000.0).round() / 1000.0,
        )))
    }

    /// The text of one sign: both steps at once (the video tracker's way).
    pub fn read(
        &self,
        image: &RgbImage,
        sign: &SignDetection,
    ) -> Result<Option<(String, f32)>, NodesError> {
        match self.prepare_region(image, sign) {
            Some(region) => self.read_region(&sign.class, &region),
            None => Ok(None),
        }
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

/// Reads the prepared regions: the answer of `POST /predict`.
pub fn read_sign_texts(
    reader: Arc<SignReader>,
    regions: SignRegions,
) -> Result<Prediction, NodesError> {
    let started = Instant::now();
    let SignRegions {
        detections,
        regions,
        prepare_ms,
    } = regions;
    let mut signs = detections.signs;
    for (sign, region) in signs.iter_mut().zip(&regions) {
        let Some(region) = region else { continue };
        if let Some((text, confidence)) = reader.read_region(&sign.class, region)? {
            sign.text = Some(text);
            sign.text_confidence = Some(confidence);
        }
    }
    Ok(Prediction {
        detections: signs,
        image: detections.image,
        timings_ms: Timings {
            detect: detections.detect_ms,
            ocr: prepare_ms + started.elapsed().as_secs_f64() * 1000.0,
        },
    })
}
