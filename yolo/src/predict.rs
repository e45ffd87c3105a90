//! Inference on images: the input built as Ultralytics' predictor builds it
//! (`predict_input`), batched forward, NMS or the top-k, boxes back in each
//! image's own pixels; and evaluation on labelled images (square letterbox)
//! with Ultralytics' metrics.

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::augment::{letterbox, Labeled, LetterboxInfo};
use crate::metrics::{Detection, DetectionMetrics, Evaluator, GroundTruth, Xyxy};
use crate::model::{Inference, Network, Predicted};
use crate::nms::{non_max_suppression, top_k_detections, NmsConfig};
use crate::predict_input::PredictLetterbox;
use crate::weights::Detector;

/// Images of one size, HWC u8, into a `(B, 3, H, W)` float batch in [0, 1].
pub fn images_to_tensor(images: &[&RgbImage], device: Device) -> Tensor {
    let (w, h) = images[0].dimensions();
    let mut bytes = Vec::with_capacity(images.len() * (w * h * 3) as usize);
    for image in images {
        debug_assert_eq!(image.dimensions(), (w, h), "a batch has one image size");
        bytes.extend_from_slice(image.as_raw());
    }
    Tensor::from_slice(&bytes)
        .view([images.len() as i64, h as i64, w as i64, 3])
        .to_device(device)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 255.0
}

/// The stride the minimum rectangle is a multiple of (the largest of P3-P5).
const MAX_STRIDE: u32 = 32;

/// How images become the model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// As Ultralytics' predictor builds it (`predict_input`): OpenCV's
    /// resize, the minimum rectangle when the batch has one shape.
    Predictor,
    /// The square letterbox of every evaluation figure (images resized at
    /// load, as Ultralytics' validator loads them).
    Square,
}

/// Where one image went in the input, to map boxes back.
enum Placement {
    Predictor(PredictLetterbox),
    Square(LetterboxInfo, u32, u32),
}

impl Placement {
    fn to_original(&self, bbox: Xyxy) -> Xyxy {
        match self {
            Placement::Predictor(lb) => lb.to_original(bbox),
            Placement::Square(info, w, h) => info.to_original(bbox, *w, *h),
        }
    }
}

/// Detections for each image, boxes in the image's pixels, best first: the
/// input built as Ultralytics' predictor builds it, so that a model gives
/// Ultralytics' detections on the same pixels. `nms` gives the confidence
/// threshold and the cap either way; its IoU settings apply when `mode`
/// suppresses.
pub fn detect(
    model: &Network,
    images: &[&RgbImage],
    imgsz: u32,
    batch: usize,
    nms: &NmsConfig,
    mode: Inference,
) -> Vec<Vec<Detection>> {
    detect_laid_out(model, images, imgsz, batch, nms, mode, Layout::Predictor)
}

fn detect_laid_out(
    model: &Network,
    images: &[&RgbImage],
    imgsz: u32,
    batch: usize,
    nms: &NmsConfig,
    mode: Inference,
    layout: Layout,
) -> Vec<Vec<Detection>> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let one_shape = chunk
            .iter()
            .all(|i| i.dimensions() == chunk[0].dimensions());
        let placed: Vec<(RgbImage, Placement)> = chunk
            .iter()
            .map(|img| {
                let (w, h) = img.dimensions();
                match layout {
                    Layout::Predictor => {
                        let lb = PredictLetterbox::new(w, h, imgsz, MAX_STRIDE, one_shape);
                        (lb.apply(img), Placement::Predictor(lb))
                    }
                    Layout::Square => {
                        let (input, info) = letterbox(img, imgsz, imgsz, true);
                        (input, Placement::Square(info, w, h))
                    }
                }
            })
            .collect();
        let inputs: Vec<&RgbImage> = placed.iter().map(|(img, _)| img).collect();
        let batch_detections = match model.infer(
            &images_to_tensor(&inputs, model.device()),
            mode,
            nms.max_det,
        ) {
            Predicted::Dense(decoded) => non_max_suppression(&decoded.y, nms),
            Predicted::TopK(rows) => top_k_detections(&rows, nms),
        };
        for (dets, (_, placement)) in batch_detections.into_iter().zip(&placed) {
            out.push(
                dets.into_iter()
                    .map(|d| Detection {
                        bbox: placement.to_original(d.bbox),
                        ..d
                    })
                    .filter(|d| d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1])
                    .collect(),
            );
        }
    }
    out
}

impl Detector {
    /// Detections for each image at the model's trained size.
    pub fn detect(&self, images: &[&RgbImage], nms: &NmsConfig) -> Vec<Vec<Detection>> {
        detect(
            &self.model,
            images,
            self.info.imgsz as u32,
            8,
            nms,
            self.inference,
        )
    }
}

/// Ground truth of a labelled image, for the evaluator.
pub fn ground_truth(sample: &Labeled) -> Vec<GroundTruth> {
    sample
        .boxes
        .iter()
        .zip(&sample.classes)
        .map(|(&bbox, &class)| GroundTruth { bbox, class })
        .collect()
}

/// Ultralytics' validation: conf 0.001, IoU 0.7, multi-label NMS (or the
/// top-k as it comes, when `mode` is end to end); returns the metrics and
/// every image's detections.
pub fn evaluate(
    model: &Network,
    mode: Inference,
    names: &[String],
    samples: &[Labeled],
    imgsz: u32,
    batch: usize,
) -> (DetectionMetrics, Vec<Vec<Detection>>) {
    let images: Vec<&RgbImage> = samples.iter().map(|s| &s.image).collect();
    let detections = detect_laid_out(
        model,
        &images,
        imgsz,
        batch,
        &NmsConfig::validate(),
        mode,
        Layout::Square,
    );
    let mut evaluator = Evaluator::new(names.to_vec());
    for (sample, dets) in samples.iter().zip(&detections) {
        evaluator.add_image(dets, &ground_truth(sample));
    }
    (evaluator.finish(), detections)
}
