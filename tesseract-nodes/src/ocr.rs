//! `run_ocr`: every region of the `ocr` pipeline read by Tesseract.

use std::collections::BTreeMap;

use nodes::ocr::engine::TesseractConfig;
use nodes::ocr::{OcrReadings, OcrRegions, Read, Roi, RoiSource};
use nodes::NodesError;
use rayon::prelude::*;

/// Reads every region in parallel, one Tesseract per worker thread, and
/// applies the post-correction.
pub fn run_ocr(
    ground_truth: OcrRegions,
    detected: OcrRegions,
    config: TesseractConfig,
    correction: runner::Params<nodes::ocr::correct::CorrectionParams>,
) -> Result<OcrReadings, NodesError> {
    let vocabulary = nodes::ocr::correct::Vocabulary::new(&correction.0);
    let mut text_signs = BTreeMap::new();
    text_signs.insert(RoiSource::GroundTruth.name(), ground_truth.text_signs);
    text_signs.insert(RoiSource::Detector.name(), detected.text_signs);
    let rois: Vec<Roi> = ground_truth.rois.into_iter().chain(detected.rois).collect();
    // A pool of our own, so that every worker's Tesseract is closed before the
    // node returns (a handle left to the end of the process is reported as a
    // leak by Tesseract).
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(|e| NodesError::Ocr(format!("no worker threads: {e}")))?;
    let reads = pool.install(|| {
        rois.into_par_iter()
            .map(|roi| {
                let reading = crate::read(&config, &roi.class, &roi.prepared)?;
                let corrected = vocabulary.correct(&roi.class, &reading.text);
                Ok(Read {
                    roi,
                    raw: reading.text,
                    corrected,
                    confidence: reading.confidence,
                })
            })
            .collect::<Result<Vec<_>, NodesError>>()
    });
    pool.broadcast(|_| crate::close());
    Ok(OcrReadings {
        reads: reads?,
        text_signs,
    })
}
