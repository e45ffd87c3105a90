//! Reading road signs in one image: detection at the predict thresholds, in the
//! JSON shape of `POST /predict` (SPEC §7). OCR fills `text` once it runs.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;
use yolo::nms::NmsConfig;
use yolo::Detector;

/// One sign found in an image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignDetection {
    pub class: String,
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timings {
    pub detect: f64,
}

/// What `POST /predict` answers for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub detections: Vec<SignDetection>,
    pub image: ImageSize,
    pub timings_ms: Timings,
}

/// Detects the signs of `image` (letterboxed to `imgsz`).
pub fn predict_image(
    detector: &Detector,
    image: &RgbImage,
    imgsz: u32,
    nms: &NmsConfig,
) -> Prediction {
    let started = Instant::now();
    let found = yolo::predict::detect(&detector.model, &[image], imgsz, 1, nms)
        .pop()
        .unwrap_or_default();
    let detect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let detections = found
        .into_iter()
        .map(|d| SignDetection {
            class: detector
                .info
                .names
                .get(d.class)
                .cloned()
                .unwrap_or_else(|| format!("class{}", d.class)),
            confidence: d.score,
            bbox: d.bbox.map(|v| (v * 10.0).round() / 10.0),
            text: None,
            text_confidence: None,
        })
        .collect();
    Prediction {
        detections,
        image: ImageSize {
            width: image.width(),
            height: image.height(),
        },
        timings_ms: Timings { detect: detect_ms },
    }
}
