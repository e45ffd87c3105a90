//! The `predict` pipeline's libtorch side: `load_detector` (start-up),
//! `detect_signs` (per image), and [`DetectSigns`], which runs a
//! [`SignDetector`] on this thread's module.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use nodes::detection::dataset::Picture;
use nodes::detection::ModelFile;
use nodes::predict::{Detections, ImageSize, PredictParams, SignDetection, SignDetector};
use nodes::NodesError;
use yolo::nms::NmsConfig;

thread_local! {
    /// This thread's libtorch module, with the address of the bytes it came from.
    static DETECTOR: RefCell<Option<(usize, yolo::Detector)>> = const { RefCell::new(None) };
}

/// Running a [`SignDetector`]: libtorch modules are not shareable between
/// threads, so each thread builds its own from the model's bytes on first
/// use and keeps it.
pub trait DetectSigns {
    /// Runs `f` with this thread's module, built from the bytes on first use.
    fn with_detector<R>(&self, f: impl FnOnce(&yolo::Detector) -> R) -> Result<R, NodesError>;

    /// The signs of `image`, without text.
    fn detect(&self, image: &RgbImage) -> Result<Vec<SignDetection>, NodesError>;

    /// The signs of several images, through the network as one batch, at
    /// `imgsz` and with `nms` (a request's own settings).
    fn detect_batch(
        &self,
        images: &[&RgbImage],
        imgsz: u32,
        nms: &NmsConfig,
    ) -> Result<Vec<Vec<SignDetection>>, NodesError>;
}

impl DetectSigns for SignDetector {
    fn with_detector<R>(&self, f: impl FnOnce(&yolo::Detector) -> R) -> Result<R, NodesError> {
        let key = Arc::as_ptr(&self.model.bytes) as usize;
        DETECTOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let device = crate::device(&self.device)?;
                let mut detector = crate::detector(&self.model, device)?;
                detector.set_end_to_end(self.end2end);
                *slot = Some((key, detector));
            }
            let (_, detector) = slot.as_ref().expect("detector just set");
            Ok(f(detector))
        })
    }

    fn detect(&self, image: &RgbImage) -> Result<Vec<SignDetection>, NodesError> {
        Ok(self
            .detect_batch(&[image], self.imgsz, &self.nms)?
            .pop()
            .unwrap_or_default())
    }

    fn detect_batch(
        &self,
        images: &[&RgbImage],
        imgsz: u32,
        nms: &NmsConfig,
    ) -> Result<Vec<Vec<SignDetection>>, NodesError> {
        let found = self.with_detector(|d| {
            yolo::predict::detect(&d.model, images, imgsz, images.len(), nms, d.inference)
        })?;
        Ok(found.into_iter().map(|signs| self.named(signs)).collect())
    }
}

/// Checks the model and the predict parameters once, at start-up.
pub fn load_detector(
    model: ModelFile,
    params: runner::Params<PredictParams>,
) -> Result<SignDetector, NodesError> {
    let detector = SignDetector::checked(model, params.0)?;
    // Build the module once here, so that a corrupt file or an unusable
    // device fails at start-up.
    crate::detector(&detector.model, crate::device(&detector.device)?)?;
    Ok(detector)
}

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
