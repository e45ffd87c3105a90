//! The `ocr` pipeline: regions of text-bearing signs (from the ground truth, to
//! measure OCR alone, and from the detector, to measure the chain), prepared
//! per class, read by Tesseract on every core (`run_ocr`, in the
//! `tesseract-nodes` crate), corrected against per-class vocabularies, and
//! measured (CER, WER, exact match, end-to-end rate).

pub mod correct;
pub mod engine;
pub mod evaluate;
pub mod preprocess;
pub mod text;

use std::collections::BTreeMap;

use image::{GrayImage, RgbImage};
use rayon::prelude::*;
use serde::Deserialize;

use crate::annotations::{Legibility, SignDataset, SignObject, Split};
use crate::NodesError;
use preprocess::ClassPreprocess;

/// Where a region comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoiSource {
    GroundTruth,
    Detector,
}

impl RoiSource {
    pub fn name(self) -> &'static str {
        match self {
            RoiSource::GroundTruth => "ground_truth",
            RoiSource::Detector => "detector",
        }
    }
}

/// One region to read.
#[derive(Clone, Debug)]
pub struct Roi {
    pub image_id: String,
    pub class: String,
    pub source: RoiSource,
    /// The annotated text of the sign (for detector regions: of the ground
    /// truth sign it matches, if any).
    pub truth: Option<String>,
    /// How readable that text is, when the annotations say.
    pub legibility: Option<Legibility>,
    /// The sign's box in the image (x1, y1, x2, y2), before margins.
    pub bbox: [f32; 4],
    /// The crop as seen (for the worst-reads sheet) and as Tesseract gets it.
    pub crop: RgbImage,
    pub prepared: GrayImage,
}

/// How many text-bearing signs a split holds, per legibility grade
/// (`ungraded` where the annotations do not say).
pub type TextSignCounts = BTreeMap<&'static str, usize>;

/// The grade a sign's text is counted under.
pub fn grade_name(legibility: Option<Legibility>) -> &'static str {
    legibility.map_or("ungraded", Legibility::name)
}

fn count_text_signs<'a>(signs: impl IntoIterator<Item = &'a SignObject>) -> TextSignCounts {
    let mut counts = TextSignCounts::new();
    for sign in signs.into_iter().filter(|s| is_text_sign(s)) {
        *counts.entry(grade_name(sign.legibility)).or_default() += 1;
    }
    counts
}

/// The text-bearing signs of `split` among the `text_classes`, per grade.
pub fn text_signs_of(data: &SignDataset, split: Split, text_classes: &[String]) -> TextSignCounts {
    count_text_signs(
        data.records
            .iter()
            .filter(|r| r.split == Some(split))
            .flat_map(|r| &r.objects)
            .filter(|o| text_classes.contains(&o.class)),
    )
}

/// The regions of a split, and how many text-bearing signs it holds.
#[derive(Clone, Debug, Default)]
pub struct OcrRegions {
    pub rois: Vec<Roi>,
    pub text_signs: TextSignCounts,
}

runner::data_value!(OcrRegions);

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepareParams {
    /// Classes whose signs carry text.
    pub text_classes: Vec<String>,
    /// `val` or `test`.
    pub split: String,
    /// Extra border around a box, as a fraction of its size.
    pub margin: f32,
    /// Detector regions are kept above this confidence.
    pub conf: f32,
    /// `auto`, `cpu` or `cuda` for the detector.
    pub device: String,
    pub classes: BTreeMap<String, ClassPreprocess>,
}

impl Default for PrepareParams {
    fn default() -> Self {
        PrepareParams {
            text_classes: ["speed_limit", "stop", "direction", "street_name", "zone_30"]
                .map(String::from)
                .to_vec(),
            split: "val".into(),
            margin: 0.0,
            conf: 0.25,
            device: "auto".into(),
            classes: BTreeMap::new(),
        }
    }
}

fn split_of(name: &str) -> Result<Split, NodesError> {
    match name {
        "val" => Ok(Split::Val),
        "test" => Ok(Split::Test),
        "train" => Ok(Split::Train),
        other => Err(NodesError::Params(format!(
            "ocr split must be train, val or test, not {other:?}"
        ))),
    }
}

/// The crop of a sign's text area and its preparation for Tesseract;
/// `None` when nothing is left of the crop.
pub fn region(
    image: &RgbImage,
    bbox: [f32; 4],
    class: &str,
    p: &PrepareParams,
) -> Option<(RgbImage, GrayImage)> {
    let config = p.classes.get(class).cloned().unwrap_or_default();
    let crop = preprocess::crop(image, bbox, p.margin, config.inner)?;
    let prepared = preprocess::prepare(&crop, &config);
    Some((crop, prepared))
}

/// The annotated set (texts included) with the split of the model input: the
/// YOLO layout keeps boxes and classes only, the annotations keep the texts.
fn with_splits(annotated: SignDataset, model_input: &SignDataset) -> SignDataset {
    let splits: BTreeMap<&str, Option<Split>> = model_input
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.split))
        .collect();
    let mut data = annotated;
    for record in &mut data.records {
        record.split = splits.get(record.id.as_str()).copied().flatten();
    }
    data
}

/// What both region nodes start from: the annotations with their split, the
/// parameters, and the split asked for.
pub fn selection(
    signs: SignDataset,
    model_input: &SignDataset,
    params: runner::Params<PrepareParams>,
) -> Result<(SignDataset, PrepareParams, Split), NodesError> {
    let split = split_of(&params.0.split)?;
    Ok((with_splits(signs, model_input), params.0, split))
}

/// The text OCR is measured on: annotated text not graded illegible (the
/// public set leaves such signs without text).
pub fn legible_text(text: Option<&str>, legibility: Option<Legibility>) -> Option<&str> {
    text.filter(|_| legibility != Some(Legibility::Illegible))
}

/// Whether a sign counts among the text-bearing signs of a split.
pub fn is_text_sign(sign: &SignObject) -> bool {
    legible_text(sign.text.as_deref(), sign.legibility).is_some()
}

/// Regions of the ground-truth text signs of a split.
pub fn prepare_ocr_data(
    signs: SignDataset,
    model_input: SignDataset,
    params: runner::Params<PrepareParams>,
) -> Result<OcrRegions, NodesError> {
    let (data, p, split) = selection(signs, &model_input, params)?;
    let per_image: Vec<Vec<Roi>> = data
        .records
        .par_iter()
        .filter(|r| r.split == Some(split))
        .map(|record| {
            let signs: Vec<_> = record
                .objects
                .iter()
                .filter(|o| p.text_classes.contains(&o.class))
                .collect();
            if signs.is_empty() {
                return Ok(Vec::new());
            }
            let image = crate::images::decode_record(record)?;
            let rois = signs
                .iter()
                .filter_map(|o| {
                    let b = o.bbox;
                    let bbox = [b.xmin as f32, b.ymin as f32, b.xmax as f32, b.ymax as f32];
                    let (crop, prepared) = region(&image, bbox, &o.class, &p)?;
                    Some(Roi {
                        image_id: record.id.clone(),
                        class: o.class.clone(),
                        source: RoiSource::GroundTruth,
                        truth: o.text.clone(),
                        legibility: o.legibility,
                        bbox,
                        crop,
                        prepared,
                    })
                })
                .collect();
            Ok(rois)
        })
        .collect::<Result<_, NodesError>>()?;
    Ok(OcrRegions {
        rois: per_image.into_iter().flatten().collect(),
        text_signs: text_signs_of(&data, split, &p.text_classes),
    })
}

/// One region read.
#[derive(Clone, Debug)]
pub struct Read {
    pub roi: Roi,
    pub raw: String,
    pub corrected: String,
    pub confidence: f32,
}

/// Every region read, per source.
#[derive(Clone, Debug, Default)]
pub struct OcrReadings {
    pub reads: Vec<Read>,
    /// Text-bearing signs in the split, per source and grade (the end-to-end
    /// denominators).
    pub text_signs: BTreeMap<&'static str, TextSignCounts>,
}

runner::data_value!(OcrReadings);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::BoundingBox;

    #[test]
    fn text_signs_are_counted_per_grade_leaving_out_illegible_and_textless_ones() {
        let sign = |text: Option<&str>, legibility| SignObject {
            class: "stop".into(),
            bbox: BoundingBox {
                xmin: 0.0,
                ymin: 0.0,
                xmax: 10.0,
                ymax: 10.0,
            },
            text: text.map(String::from),
            legibility,
        };
        let signs = [
            sign(Some("STOP"), Some(Legibility::High)),
            sign(Some("STOP"), Some(Legibility::Illegible)),
            sign(None, None),
            sign(Some("STOP"), None),
            sign(Some("STOP"), Some(Legibility::Low)),
            sign(Some("STOP"), Some(Legibility::Low)),
        ];
        let counts = count_text_signs(&signs);
        assert_eq!(counts, [("high", 1), ("low", 2), ("ungraded", 1)].into());
        assert_eq!(
            legible_text(Some("STOP"), Some(Legibility::Illegible)),
            None
        );
        assert_eq!(legible_text(Some("STOP"), None), Some("STOP"));
    }
}
