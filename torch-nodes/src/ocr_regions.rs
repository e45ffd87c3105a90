//! `detect_text_regions`: the regions of the text signs the detector finds
//! on a split, for the OCR pipeline's end-to-end measure.

use nodes::annotations::SignDataset;
use nodes::detection::ModelFile;
use nodes::ocr::{region, selection, text_signs_of, OcrRegions, PrepareParams, Roi, RoiSource};
use nodes::NodesError;
use yolo::metrics::box_iou;

/// Regions the detector finds on a split, each matched to the ground-truth
/// sign of its class it overlaps most (IoU ≥ 0.5) for its truth.
pub fn detect_text_regions(
    model: ModelFile,
    signs: SignDataset,
    model_input: SignDataset,
    params: runner::Params<PrepareParams>,
) -> Result<OcrRegions, NodesError> {
    let (data, p, split) = selection(signs, &model_input, params)?;
    let device = crate::device(&p.device)?;
    let detector = crate::detector(&model, device)?;
    let nms = yolo::nms::NmsConfig {
        conf: p.conf,
        ..yolo::nms::NmsConfig::predict()
    };
    let records: Vec<_> = data
        .records
        .iter()
        .filter(|r| r.split == Some(split))
        .collect();
    let text_signs = text_signs_of(&data, split, &p.text_classes);
    let mut rois = Vec::new();
    for record in records {
        let truths: Vec<_> = record
            .objects
            .iter()
            .filter(|o| p.text_classes.contains(&o.class))
            .collect();
        let image = nodes::images::decode_record(record)?;
        let found = detector.detect(&[&image], &nms).pop().unwrap_or_default();
        for d in found {
            let class = detector
                .info
                .names
                .get(d.class)
                .cloned()
                .unwrap_or_default();
            if !p.text_classes.contains(&class) {
                continue;
            }
            let truth = truths
                .iter()
                .filter(|o| o.class == class)
                .map(|o| {
                    let b = o.bbox;
                    (
                        box_iou(
                            &[b.xmin as f32, b.ymin as f32, b.xmax as f32, b.ymax as f32],
                            &d.bbox,
                        ),
                        o,
                    )
                })
                .filter(|(iou, _)| *iou >= 0.5)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, o)| *o);
            if let Some((crop, prepared)) = region(&image, d.bbox, &class, &p) {
                rois.push(Roi {
                    image_id: record.id.clone(),
                    class,
                    source: RoiSource::Detector,
                    truth: truth.and_then(|o| o.text.clone()),
                    legibility: truth.and_then(|o| o.legibility),
                    bbox: d.bbox,
                    crop,
                    prepared,
                });
            }
        }
    }
    Ok(OcrRegions { rois, text_signs })
}
